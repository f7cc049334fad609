//! Who is calling: API keys resolved to a merchant, mode and key kind.
use std::{sync::Arc, time::Duration};

use superpayment_core::{ApiKey, KeyKind, Mode};
use time::OffsetDateTime;

use crate::{
    admin::LimitOverrides,
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

/// Why a request was not authenticated, or not allowed with the key it carries.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// No key was sent.
    #[error("no API key")]
    MissingKey,
    /// The key is malformed, unknown, revoked or expired.
    #[error("invalid API key")]
    InvalidKey,
    /// A secret key was sent to an endpoint called from browsers.
    #[error("secret key sent to a browser endpoint")]
    SecretKeyNotAllowed,
    /// A publishable key was sent to an endpoint for the merchant's server.
    #[error("secret key required")]
    SecretKeyRequired,
    /// The key's merchant account is disabled.
    #[error("merchant disabled")]
    MerchantDisabled,
    /// The admin token is missing or wrong.
    #[error("invalid admin token")]
    InvalidAdminToken,
    /// Anything unexpected.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

crate::internal_on_db_error!(AuthError);

impl AuthError {
    /// What an endpoint taking keys of kind `kind` can refuse, for the documentation.
    pub fn examples(kind: KeyKind) -> impl Iterator<Item = AuthError> {
        let wrong_kind = match kind {
            KeyKind::Publishable => AuthError::SecretKeyNotAllowed,
            KeyKind::Secret => AuthError::SecretKeyRequired,
        };
        [
            AuthError::MissingKey,
            AuthError::InvalidKey,
            wrong_kind,
            AuthError::MerchantDisabled,
        ]
        .into_iter()
    }
}

/// Keys looked up recently, by hash, so that most requests need no key query.
///
/// Entries live for KEY_CACHE_TTL (5 s by default). Revoking or rolling a key clears this
/// instance's cache at once; other instances notice within the TTL. Expiry dates are
/// checked on every use, cached or not.
///
/// Keys found nowhere are remembered too, for as long, so that a flood of made-up keys
/// costs one query per distinct key and TTL, not one per request. A key created after its
/// hash was remembered as unknown (by another instance, or the command line) works here
/// within KEY_CACHE_TTL. Both maps are bounded (least recently used entries go first).
pub struct KeyCache {
    entries: Option<moka::sync::Cache<String, Arc<(api_key::Model, merchant::Model)>>>,
    unknown: Option<moka::sync::Cache<String, ()>>,
}

/// What a key is worth before the operation runs, as far as request limits care.
#[derive(Debug, Clone, Copy)]
pub enum KeyStanding {
    /// A key that exists, unrevoked and unexpired: its merchant's limit overrides.
    Live(LimitOverrides),
    /// Malformed, unknown, revoked or expired: a failed authentication.
    Dead,
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
            unknown: (!ttl.is_zero()).then(|| {
                moka::sync::Cache::builder()
                    .max_capacity(100_000)
                    .time_to_live(ttl)
                    .build()
            }),
        }
    }

    /// Forgets every cached key, known and unknown (after a creation, revocation or roll).
    pub fn clear(&self) {
        if let Some(entries) = &self.entries {
            entries.invalidate_all();
        }
        if let Some(unknown) = &self.unknown {
            unknown.invalidate_all();
        }
    }

    /// What this instance remembers of `hash`: `Some(None)` for a key found nowhere,
    /// `None` when it does not know.
    fn cached(&self, hash: &str) -> Option<Option<Arc<(api_key::Model, merchant::Model)>>> {
        if let Some(hit) = self.entries.as_ref().and_then(|e| e.get(hash)) {
            return Some(Some(hit));
        }
        self.unknown
            .as_ref()
            .and_then(|u| u.get(hash))
            .map(|()| None)
    }

    async fn lookup(
        &self,
        state: &AppState,
        hash: String,
    ) -> Result<Option<Arc<(api_key::Model, merchant::Model)>>, AuthError> {
        if let Some(known) = self.cached(&hash) {
            return Ok(known);
        }
        let found = store::merchants::find_key_by_hash(&state.db, &hash)
            .await?
            .map(Arc::new);
        match &found {
            Some(found) => {
                if let Some(entries) = &self.entries {
                    entries.insert(hash, found.clone());
                }
            }
            None => {
                if let Some(unknown) = &self.unknown {
                    unknown.insert(hash, ());
                }
            }
        }
        Ok(found)
    }
}

/// The standing of a key row: live (its merchant's overrides) or dead.
fn standing_of(found: Option<&(api_key::Model, merchant::Model)>) -> KeyStanding {
    let Some((row, merchant)) = found else {
        return KeyStanding::Dead;
    };
    let now = OffsetDateTime::now_utc();
    if row.revoked_at.is_some() || row.expires_at.is_some_and(|e| e <= now) {
        return KeyStanding::Dead;
    }
    let limit = |v: Option<i32>| v.map(|n| u32::try_from(n).unwrap_or(0));
    KeyStanding::Live(LimitOverrides {
        pay_per_client: limit(merchant.pay_limit_per_client),
        pay_per_key: limit(merchant.pay_limit_per_key),
        checks: limit(merchant.check_limit),
        api_per_key: limit(merchant.api_limit_per_key),
    })
}

/// A bearer token and its SHA-256, the form keys are stored and cached under: the gateway
/// hashes a request's token once for its key lookup and its rate-limit counters.
pub struct BearerToken<'a> {
    token: &'a str,
    digest: String,
}

impl<'a> BearerToken<'a> {
    pub fn new(token: &'a str) -> Self {
        let token = token.trim();
        BearerToken {
            token,
            digest: sha256_hex(token),
        }
    }

    /// The token itself.
    pub fn as_str(&self) -> &str {
        self.token
    }

    /// SHA-256 of the token, in hex.
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// The token when it has the shape of a key (else it can only be dead).
    fn key(&self) -> Option<ApiKey> {
        ApiKey::parse(self.token).ok()
    }
}

/// The standing of `token` if it is known without the database (a malformed token, or a
/// key this instance remembers, found or not); `None` when only a lookup can tell.
pub fn cached_standing(state: &AppState, token: &BearerToken<'_>) -> Option<KeyStanding> {
    if token.key().is_none() {
        return Some(KeyStanding::Dead);
    }
    state
        .key_cache
        .cached(token.digest())
        .map(|found| standing_of(found.as_deref()))
}

/// The standing of `token`, looked up through the key cache (so that the operation's own
/// authentication then finds it cached, and a merchant's overrides apply within
/// KEY_CACHE_TTL). An error when the lookup fails (the database unreachable), which is the
/// request's answer.
pub async fn key_standing(
    state: &AppState,
    token: &BearerToken<'_>,
) -> Result<KeyStanding, AuthError> {
    if token.key().is_none() {
        return Ok(KeyStanding::Dead);
    }
    let found = state
        .key_cache
        .lookup(state, token.digest().to_owned())
        .await?;
    Ok(standing_of(found.as_deref()))
}

/// An authenticated merchant key.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The API key's id; or, for a back-office user acting for its merchant through the
    /// same domain functions, the user's id (`usr_...`). The activity log names it.
    pub key_id: String,
    pub merchant_id: String,
    pub mode: Mode,
    pub kind: KeyKind,
    pub commission_bps: u16,
    /// How long the merchant's holds last.
    pub hold_period: time::Duration,
}

impl Caller {
    /// The operator (ADMIN_TOKEN) as the caller of an idempotent operation. Its keys live
    /// in a scope of their own, `admin`, which no merchant id (`mer_...`) can take; the
    /// mode is only part of the scope's name (an operator's keys span both modes).
    pub fn operator() -> Caller {
        Caller {
            key_id: "admin".into(),
            merchant_id: "admin".into(),
            mode: Mode::Live,
            kind: KeyKind::Secret,
            commission_bps: 0,
            hold_period: time::Duration::ZERO,
        }
    }

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
///
/// Its span is a debug one: every request passes here, and at the default level a line
/// logged inside already carries the request's span (request id, method, path).
#[tracing::instrument(level = "debug", skip_all, fields(required = ?required))]
pub async fn authenticate(
    state: &AppState,
    token: Option<&str>,
    required: KeyKind,
) -> Result<Caller, AuthError> {
    let Some(token) = token.map(str::trim).filter(|t| !t.is_empty()) else {
        return Err(AuthError::MissingKey);
    };
    let key = ApiKey::parse(token).map_err(|_| AuthError::InvalidKey)?;
    let found = state
        .key_cache
        .lookup(state, sha256_hex(key.expose()))
        .await?;
    let Some(found) = found else {
        return Err(AuthError::InvalidKey);
    };
    let (row, merchant) = &*found;
    let now = OffsetDateTime::now_utc();
    if row.revoked_at.is_some() || row.expires_at.is_some_and(|e| e <= now) {
        return Err(AuthError::InvalidKey);
    }
    if key.kind() != required {
        if key.kind() == KeyKind::Secret {
            tracing::warn!(key_id = %row.id, merchant_id = %merchant.id, "secret key sent to a browser endpoint; it should be rolled");
            return Err(AuthError::SecretKeyNotAllowed);
        }
        return Err(AuthError::SecretKeyRequired);
    }
    if merchant.status != MerchantStatus::Active {
        return Err(AuthError::MerchantDisabled);
    }
    Ok(Caller {
        key_id: row.id.clone(),
        merchant_id: merchant.id.clone(),
        mode: key.mode(),
        kind: key.kind(),
        commission_bps: u16::try_from(merchant.commission_bps).unwrap_or(0),
        hold_period: time::Duration::seconds(merchant.hold_period_seconds),
    })
}
