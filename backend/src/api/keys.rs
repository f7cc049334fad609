//! API keys of the merchant (secret key): list, create, roll with an overlap, revoke.
use std::time::Duration;

use poem_openapi::{param::Path, payload::Json, Object, OpenApi};
use superpayment_core::{ApiKey, KeyKind};
use time::OffsetDateTime;

use super::{
    error::{ApiError, ErrorBody},
    security::SecretKey,
    ApiTags,
};
use crate::{
    auth::{authenticate, Caller},
    keys::{self, DEFAULT_ROLL_OVERLAP},
    secret_key_response,
    state::AppState,
    store::entities::api_key,
    timestamps::rfc3339,
};

/// Key management.
pub struct KeysApi {
    state: AppState,
}

impl KeysApi {
    pub fn new(state: AppState) -> Self {
        Self { state }
    }

    async fn caller(&self, auth: &SecretKey) -> Result<Caller, ApiError> {
        Ok(authenticate(&self.state, Some(&auth.0.token), KeyKind::Secret).await?)
    }
}

/// A key as listed: never the key itself.
#[derive(Object)]
pub struct Key {
    /// `key_...`.
    pub id: String,
    /// `publishable` or `secret`.
    pub kind: String,
    pub mode: String,
    /// e.g. `sk_live_`.
    pub prefix: String,
    /// The last 4 symbols, to tell keys apart.
    pub last4: String,
    /// `active`, `expiring` (rolled, still working until `expires_at`), `expired` or `revoked`.
    pub status: String,
    pub created_at: String,
    #[oai(skip_serializing_if_is_none)]
    pub expires_at: Option<String>,
    #[oai(skip_serializing_if_is_none)]
    pub revoked_at: Option<String>,
}

/// A new key, shown this once and stored only as a hash: in `secret_key` or
/// `publishable_key` by its kind, the names merchant creation gives them.
#[derive(Object)]
pub struct NewKey {
    pub key: Key,
    /// The new secret key (`sk_test_...` / `sk_live_...`), when `kind` is `secret`.
    #[oai(skip_serializing_if_is_none)]
    pub secret_key: Option<String>,
    /// The new publishable key (`pk_test_...` / `pk_live_...`), when `kind` is `publishable`.
    #[oai(skip_serializing_if_is_none)]
    pub publishable_key: Option<String>,
    /// Deprecated: the same key under its former name; read `secret_key` or
    /// `publishable_key` instead.
    #[oai(deprecated)]
    pub secret: String,
}

/// A rolled key: the replacement (shown once, in `secret_key` or `publishable_key` by its
/// kind) and the old key with its end of life.
#[derive(Object)]
pub struct RolledKey {
    pub key: Key,
    /// The new secret key, when a secret key was rolled.
    #[oai(skip_serializing_if_is_none)]
    pub secret_key: Option<String>,
    /// The new publishable key, when a publishable key was rolled.
    #[oai(skip_serializing_if_is_none)]
    pub publishable_key: Option<String>,
    /// Deprecated: the same key under its former name; read `secret_key` or
    /// `publishable_key` instead.
    #[oai(deprecated)]
    pub secret: String,
    pub previous: Key,
}

/// A new key under the name of its kind: (`secret_key`, `publishable_key`).
fn named(key: &ApiKey) -> (Option<String>, Option<String>) {
    let shown = key.expose().to_owned();
    match key.kind() {
        KeyKind::Secret => (Some(shown), None),
        KeyKind::Publishable => (None, Some(shown)),
    }
}

/// The keys of the calling key's mode.
#[derive(Object)]
pub struct KeyList {
    pub data: Vec<Key>,
}

/// A key to create.
#[derive(Object)]
pub struct CreateKey {
    /// `publishable` or `secret`; the mode is the calling key's.
    pub kind: String,
}

/// How to roll a key.
#[derive(Object)]
pub struct RollKey {
    /// How long the old key keeps working: default 86400 (24 h), at most 604800; 0 stops it at once.
    pub expires_in_seconds: Option<u64>,
}

fn key_body(k: api_key::Model) -> Key {
    let status = k.status(OffsetDateTime::now_utc());
    Key {
        id: k.id,
        kind: k.kind,
        mode: k.mode.0.as_str().into(),
        prefix: k.prefix,
        last4: k.last4,
        status: status.as_str().into(),
        created_at: rfc3339(k.created_at),
        expires_at: k.expires_at.map(rfc3339),
        revoked_at: k.revoked_at.map(rfc3339),
    }
}

secret_key_response! {
    pub enum ListKeysResponse {
        /// The keys, oldest first. Read from the read replica when the server has one:
        /// `Data-Source` says which (`replica` or `primary`) and `Data-Lag` how many
        /// seconds the data may be behind (`0.000` when current; absent when a replica
        /// cannot tell yet). A key made a moment ago may be missing from a lagging
        /// replica's list.
        #[oai(status = 200)]
        Ok(
            Json<KeyList>,
            #[oai(header = "Data-Source")] String,
            #[oai(header = "Data-Lag")] Option<String>,
        ),
    }
    errors {  }
}

secret_key_response! {
    pub enum CreateKeyResponse {
        /// Created; store the key now, it is never shown again.
        #[oai(status = 201)]
        Created(Json<NewKey>),
        /// Invalid kind.
        #[oai(status = 400)]
        BadRequest(Json<ErrorBody>),
    }
    errors { 400 => BadRequest }
}

// Built once per request and moved straight into the response: boxing buys nothing.
secret_key_response! {
    #[allow(clippy::large_enum_variant)]
    pub enum RollKeyResponse {
        /// Rolled; store the new key now, it is never shown again.
        #[oai(status = 201)]
        Created(Json<RolledKey>),
        /// Overlap too long (`overlap_too_long`), or the key is revoked, expired or already rolled (`key_inactive`).
        #[oai(status = 400)]
        BadRequest(Json<ErrorBody>),
        /// No such key in this merchant's mode.
        #[oai(status = 404)]
        NotFound(Json<ErrorBody>),
    }
    errors { 400 => BadRequest, 404 => NotFound }
}

secret_key_response! {
    pub enum RevokeKeyResponse {
        /// Revoked: the key no longer authenticates.
        #[oai(status = 200)]
        Ok(Json<Key>),
        /// No such key in this merchant's mode.
        #[oai(status = 404)]
        NotFound(Json<ErrorBody>),
    }
    errors { 404 => NotFound }
}

#[OpenApi(tag = "ApiTags::Keys")]
impl KeysApi {
    /// List API keys
    ///
    /// The keys of the calling key's mode, by prefix and last 4 symbols only.
    #[oai(path = "/keys", method = "get", operation_id = "listKeys")]
    async fn list(&self, auth: SecretKey) -> ListKeysResponse {
        async {
            let caller = self.caller(&auth).await?;
            let (rows, freshness) = keys::list(&self.state, &caller).await?;
            Ok(ListKeysResponse::Ok(
                Json(KeyList {
                    data: rows.into_iter().map(key_body).collect(),
                }),
                freshness.source().to_owned(),
                freshness.lag_header(),
            ))
        }
        .await
        .unwrap_or_else(|e: ApiError| e.into())
    }

    /// Create an API key
    #[oai(path = "/keys", method = "post", operation_id = "createKey")]
    async fn create(&self, auth: SecretKey, body: Json<CreateKey>) -> CreateKeyResponse {
        async {
            let caller = self.caller(&auth).await?;
            let kind = keys::kind_from_request(&body.kind)?;
            let (row, key) = keys::create(&self.state, &caller, kind).await?;
            let (secret_key, publishable_key) = named(&key);
            Ok(CreateKeyResponse::Created(Json(NewKey {
                key: key_body(row),
                secret_key,
                publishable_key,
                secret: key.expose().to_owned(),
            })))
        }
        .await
        .unwrap_or_else(|e: ApiError| e.into())
    }

    /// Roll an API key
    ///
    /// Creates a replacement of the same kind; the old key keeps working for
    /// `expires_in_seconds` (default 24 h) so it can be replaced everywhere without downtime.
    #[oai(path = "/keys/:id/roll", method = "post", operation_id = "rollKey")]
    async fn roll(
        &self,
        auth: SecretKey,
        id: Path<String>,
        body: Json<RollKey>,
    ) -> RollKeyResponse {
        async {
            let caller = self.caller(&auth).await?;
            let overlap = body
                .expires_in_seconds
                .map(Duration::from_secs)
                .unwrap_or(DEFAULT_ROLL_OVERLAP);
            let (row, key, old) = keys::roll(&self.state, &caller, &id.0, overlap).await?;
            let (secret_key, publishable_key) = named(&key);
            Ok(RollKeyResponse::Created(Json(RolledKey {
                key: key_body(row),
                secret_key,
                publishable_key,
                secret: key.expose().to_owned(),
                previous: key_body(old),
            })))
        }
        .await
        .unwrap_or_else(|e: ApiError| e.into())
    }

    /// Revoke an API key
    ///
    /// At once. Revoking the key making this call is allowed.
    #[oai(path = "/keys/:id/revoke", method = "post", operation_id = "revokeKey")]
    async fn revoke(&self, auth: SecretKey, id: Path<String>) -> RevokeKeyResponse {
        async {
            let caller = self.caller(&auth).await?;
            let row = keys::revoke(&self.state, &caller, &id.0).await?;
            Ok(RevokeKeyResponse::Ok(Json(key_body(row))))
        }
        .await
        .unwrap_or_else(|e: ApiError| e.into())
    }
}
