//! API keys managed by the merchant: create, roll (the old key keeps working for an
//! overlap), revoke. A key manages only keys of its own mode.
use std::time::Duration;

use sea_orm::{ConnectionTrait, DatabaseConnection};
use superpayment_core::{ApiKey, KeyKind, Mode};
use time::OffsetDateTime;

use crate::store::entities::text::AsText;
use crate::{
    auth::Caller,
    crypto::{random_bytes, sha256_hex},
    ids::new_id,
    notify::{self, EmailKind, KeySummary, Recipient},
    replica::Freshness,
    state::AppState,
    store::{self, entities::api_key},
};

/// Why a key operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// `kind` is neither "publishable" nor "secret".
    #[error("invalid key kind")]
    InvalidKind,
    /// The roll overlap is longer than [`MAX_ROLL_OVERLAP`].
    #[error("overlap too long")]
    OverlapTooLong,
    /// The key is revoked or already rolled.
    #[error("key inactive")]
    Inactive,
    /// No such key in this merchant's mode.
    #[error("key not found")]
    NotFound,
    /// Anything unexpected.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

crate::internal_on_db_error!(KeyError);

impl KeyError {
    /// One instance of each refusal, for the documentation.
    pub fn examples() -> impl Iterator<Item = KeyError> {
        [
            KeyError::InvalidKind,
            KeyError::OverlapTooLong,
            KeyError::Inactive,
            KeyError::NotFound,
        ]
        .into_iter()
    }
}

/// Default time a rolled key keeps working.
pub const DEFAULT_ROLL_OVERLAP: Duration = Duration::from_secs(24 * 3600);
/// Longest time a rolled key may keep working.
pub const MAX_ROLL_OVERLAP: Duration = Duration::from_secs(7 * 24 * 3600);

/// "publishable" or "secret", as stored.
pub fn kind_str(kind: KeyKind) -> &'static str {
    match kind {
        KeyKind::Publishable => "publishable",
        KeyKind::Secret => "secret",
    }
}

fn parse_kind(s: &str) -> Option<KeyKind> {
    match s {
        "publishable" => Some(KeyKind::Publishable),
        "secret" => Some(KeyKind::Secret),
        _ => None,
    }
}

/// Parses the `kind` field of a request.
pub fn kind_from_request(s: &str) -> Result<KeyKind, KeyError> {
    parse_kind(s).ok_or(KeyError::InvalidKind)
}

/// Stores a new key (its hash, prefix and last 4) and returns it: the key itself exists
/// only in the returned value. Every way a key is made goes through here.
pub(crate) async fn insert(
    db: &impl ConnectionTrait,
    merchant_id: &str,
    kind: KeyKind,
    mode: Mode,
    now: OffsetDateTime,
) -> Result<(api_key::Model, ApiKey), sea_orm::DbErr> {
    let key = ApiKey::generate(kind, mode, random_bytes::<20>());
    let row = api_key::Model {
        id: new_id("key"),
        merchant_id: merchant_id.to_owned(),
        kind: kind_str(kind).into(),
        mode: AsText(mode),
        key_hash: sha256_hex(key.expose()),
        prefix: key.prefix().into(),
        last4: key.last4().into(),
        created_at: now,
        expires_at: None,
        revoked_at: None,
    };
    store::merchants::insert_key(db, row.clone()).await?;
    Ok((row, key))
}

/// Queues the "a new API key was created" email to the merchant's notification address
/// (inside the transaction that created `keys`); nothing when it has none.
pub async fn notify_created(
    conn: &impl ConnectionTrait,
    merchant_id: &str,
    mode: Mode,
    keys: &[&api_key::Model],
) -> Result<(), sea_orm::DbErr> {
    let kind = EmailKind::ApiKeyCreated {
        merchant_name: notify::merchant_name(conn, merchant_id).await?,
        mode: mode.to_string(),
        keys: keys
            .iter()
            .map(|k| KeySummary {
                id: k.id.clone(),
                kind: k.kind.clone(),
                prefix: k.prefix.clone(),
                last4: k.last4.clone(),
            })
            .collect(),
    };
    notify::enqueue(conn, Recipient::Merchant(merchant_id), kind).await?;
    Ok(())
}

/// The caller's keys of its mode (prefix and last 4 only), and how fresh the list is (it is
/// read from the replica when there is one).
pub async fn list(
    state: &AppState,
    caller: &Caller,
) -> Result<(Vec<api_key::Model>, Freshness), KeyError> {
    let read = state.read_db().await;
    Ok((list_in(&read.db, caller).await?, read.freshness))
}

/// [`list`] read from `db`, for readers that choose their connection (the back-office).
pub async fn list_in(
    db: &DatabaseConnection,
    caller: &Caller,
) -> Result<Vec<api_key::Model>, KeyError> {
    Ok(store::keys::list_in_mode(db, &caller.merchant_id, caller.mode_str()).await?)
}

/// A new key of the caller's mode; the key itself is returned this once.
#[tracing::instrument(skip_all, fields(merchant_id = %caller.merchant_id))]
pub async fn create(
    state: &AppState,
    caller: &Caller,
    kind: KeyKind,
) -> Result<(api_key::Model, ApiKey), KeyError> {
    // The key and the email telling about it commit together.
    let tx = store::begin(&state.db).await?;
    let created = insert(
        &tx,
        &caller.merchant_id,
        kind,
        caller.mode,
        OffsetDateTime::now_utc(),
    )
    .await?;
    notify_created(&tx, &caller.merchant_id, caller.mode, &[&created.0]).await?;
    crate::activity::record_for(
        &tx,
        caller,
        crate::activity::Action::KeyCreated,
        Some(&created.0.id),
        Some(format!("{}...{}", created.0.prefix, created.0.last4)),
    )
    .await?;
    tx.commit().await?;
    tracing::info!(key_id = %created.0.id, "API key created");
    Ok(created)
}

async fn find(state: &AppState, caller: &Caller, id: &str) -> Result<api_key::Model, KeyError> {
    store::keys::find_in_mode(&state.db, &caller.merchant_id, caller.mode_str(), id)
        .await?
        .ok_or(KeyError::NotFound)
}

/// Replaces a key by a new one of the same kind; the old one stops working after
/// `overlap` (zero: at once), long enough to deploy the new key everywhere. A key is
/// rolled once: a second roll would hand out a second replacement of the same key.
#[tracing::instrument(skip_all, fields(merchant_id = %caller.merchant_id, key_id = %id))]
pub async fn roll(
    state: &AppState,
    caller: &Caller,
    id: &str,
    overlap: Duration,
) -> Result<(api_key::Model, ApiKey, api_key::Model), KeyError> {
    if overlap > MAX_ROLL_OVERLAP {
        return Err(KeyError::OverlapTooLong);
    }
    let old = find(state, caller, id).await?;
    let now = OffsetDateTime::now_utc();
    if old.revoked_at.is_some() || old.expires_at.is_some() {
        return Err(KeyError::Inactive);
    }
    let kind = parse_kind(&old.kind).ok_or_else(|| anyhow::anyhow!("stored key kind"))?;
    // One transaction with a conditional expiry: a key revoked or rolled by a concurrent
    // request meanwhile gets no second replacement.
    let tx = store::begin(&state.db).await?;
    let (new_row, key) = insert(&tx, &caller.merchant_id, kind, caller.mode, now).await?;
    if !store::keys::expire_at(&tx, &old.id, now + overlap).await? {
        tx.rollback().await?;
        return Err(KeyError::Inactive);
    }
    notify_created(&tx, &caller.merchant_id, caller.mode, &[&new_row]).await?;
    crate::activity::record_for(
        &tx,
        caller,
        crate::activity::Action::KeyRolled,
        Some(&old.id),
        Some(format!(
            "replaced by {}; old key works {}s more",
            new_row.id,
            overlap.as_secs()
        )),
    )
    .await?;
    tx.commit().await?;
    state.key_cache.clear();
    let old = find(state, caller, id).await?;
    tracing::info!(new_key_id = %new_row.id, overlap_secs = overlap.as_secs(), "API key rolled");
    Ok((new_row, key, old))
}

/// Revokes a key at once.
#[tracing::instrument(skip_all, fields(merchant_id = %caller.merchant_id, key_id = %id))]
pub async fn revoke(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<api_key::Model, KeyError> {
    let row = find(state, caller, id).await?;
    store::merchants::revoke_key(&state.db, &row.id, OffsetDateTime::now_utc()).await?;
    crate::activity::record_for(
        &state.db,
        caller,
        crate::activity::Action::KeyRevoked,
        Some(&row.id),
        None,
    )
    .await?;
    state.key_cache.clear();
    tracing::info!("API key revoked");
    find(state, caller, id).await
}
