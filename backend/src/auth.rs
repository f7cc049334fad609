//! Who is calling: API keys resolved to a merchant, mode and key kind.
use std::{sync::Arc, time::Duration};

use superpayment_core::{ApiKey, KeyKind, Mode};
use time::OffsetDateTime;

use crate::{
    api::error::ApiError,
    crypto::sha256_hex,
    state::AppState,
    store::{
        self,
        entities::{
            api_key,
            merchant::{self, MerchantStatus},
        },
    },
};

/// Keys looked up recently, by hash, so that most requests need no key query.
///
/// Entries live for KEY_CACHE_TTL (5 s by default). Revoking or rolling a key clears this
/// instance's cache at once; other instances notice within the TTL. Expiry dates are
/// checked on every use, cached or not. Unknown keys are never cached.
pub struct KeyCache {
    entries: Option<moka::sync::Cache<String, Arc<(api_key::Model, merchant::Model)>>>,
}

impl KeyCache {
    /// A cache whose entries live `ttl`; zero disables it.
    pub fn new(ttl: Duration) -> Self {
        KeyCache {
            entries: (!ttl.is_zero()).then(|| {
                moka::sync::Cache::builder()
                    .max_capacity(10_000)
                    .time_to_live(ttl)
                    .build()
            }),
        }
    }

    /// Forgets every cached key (after a revocation or a roll).
    pub fn clear(&self) {
        if let Some(entries) = &self.entries {
            entries.invalidate_all();
        }
    }

    async fn lookup(
        &self,
        state: &AppState,
        hash: String,
    ) -> Result<Option<Arc<(api_key::Model, merchant::Model)>>, ApiError> {
        if let Some(hit) = self.entries.as_ref().and_then(|e| e.get(&hash)) {
            return Ok(Some(hit));
        }
        let found = store::merchants::find_key_by_hash(&state.db, &hash)
            .await?
            .map(Arc::new);
        if let (Some(entries), Some(found)) = (&self.entries, &found) {
            entries.insert(hash, found.clone());
        }
        Ok(found)
    }
}

/// An authenticated merchant key.
#[derive(Debug, Clone)]
pub struct Caller {
    pub key_id: String,
    pub merchant_id: String,
    pub mode: Mode,
    pub kind: KeyKind,
    pub commission_bps: u16,
}

impl Caller {
    /// "test" or "live", as stored.
    pub fn mode_str(&self) -> &'static str {
        self.mode.as_str()
    }
}

/// Resolves a bearer token to a live key of the required kind.
///
/// A well-formed key of the other kind is refused with 403 once it is known to exist: a
/// secret key arriving at a widget endpoint was leaked into a page, and operators are
/// told (by key id, never the key).
#[tracing::instrument(skip_all, fields(required = ?required))]
pub async fn authenticate(
    state: &AppState,
    token: Option<&str>,
    required: KeyKind,
) -> Result<Caller, ApiError> {
    let Some(token) = token.map(str::trim).filter(|t| !t.is_empty()) else {
        return Err(ApiError::Unauthenticated {
            code: "missing_api_key",
        });
    };
    let key = ApiKey::parse(token).map_err(|_| ApiError::Unauthenticated {
        code: "invalid_api_key",
    })?;
    let found = state
        .key_cache
        .lookup(state, sha256_hex(key.expose()))
        .await?;
    let Some(found) = found else {
        return Err(ApiError::Unauthenticated {
            code: "invalid_api_key",
        });
    };
    let (row, merchant) = &*found;
    let now = OffsetDateTime::now_utc();
    if row.revoked_at.is_some() || row.expires_at.is_some_and(|e| e <= now) {
        return Err(ApiError::Unauthenticated {
            code: "invalid_api_key",
        });
    }
    if key.kind() != required {
        if key.kind() == KeyKind::Secret {
            tracing::warn!(key_id = %row.id, merchant_id = %merchant.id, "secret key sent to a browser endpoint; it should be rolled");
            return Err(ApiError::WrongKeyKind {
                code: "secret_key_not_allowed",
            });
        }
        return Err(ApiError::WrongKeyKind {
            code: "secret_key_required",
        });
    }
    if merchant.status != MerchantStatus::Active {
        return Err(ApiError::Forbidden {
            code: "merchant_disabled",
            message: "This merchant account is disabled.".into(),
        });
    }
    Ok(Caller {
        key_id: row.id.clone(),
        merchant_id: merchant.id.clone(),
        mode: key.mode(),
        kind: key.kind(),
        commission_bps: u16::try_from(merchant.commission_bps).unwrap_or(0),
    })
}
