//! Who is calling: API keys resolved to a merchant, mode and key kind.
use superpayment_core::{ApiKey, KeyKind, Mode};
use time::OffsetDateTime;

use crate::{api::error::ApiError, crypto::sha256_hex, startup::AppState, store};

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
    let found = store::merchants::find_key_by_hash(&state.db, &sha256_hex(key.expose())).await?;
    let Some((row, merchant)) = found else {
        return Err(ApiError::Unauthenticated {
            code: "invalid_api_key",
        });
    };
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
    if merchant.status != "active" {
        return Err(ApiError::Forbidden {
            code: "merchant_disabled",
            message: "This merchant account is disabled.".into(),
        });
    }
    Ok(Caller {
        key_id: row.id,
        merchant_id: merchant.id,
        mode: key.mode(),
        kind: key.kind(),
        commission_bps: u16::try_from(merchant.commission_bps).unwrap_or(0),
    })
}
