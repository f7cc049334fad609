//! The merchant's webhook endpoint: set, read, rotate the secret, send a test event.
use std::time::Duration;

use time::OffsetDateTime;

use super::{destination, events, secrets::SigningSecret, WebhookError};
use crate::store::entities::text::AsText;
use crate::{
    auth::Caller,
    ids::new_id,
    state::AppState,
    store::{
        self,
        entities::{
            event::EventKind,
            webhook_endpoint::{self, EndpointStatus},
        },
    },
};

/// Longest overlap during which a rotated-out secret still signs.
pub const MAX_ROTATION_OVERLAP: Duration = Duration::from_secs(7 * 24 * 3600);
/// Default overlap of a rotation.
pub const DEFAULT_ROTATION_OVERLAP: Duration = Duration::from_secs(24 * 3600);

/// An endpoint as the merchant sees it; `secret` only where the API shows it.
#[derive(Debug)]
pub struct EndpointView {
    pub row: webhook_endpoint::Model,
    pub secret: Option<SigningSecret>,
}

impl EndpointView {
    /// True while a rotated-out secret still signs alongside the current one.
    pub fn previous_secret_active(&self, now: OffsetDateTime) -> bool {
        self.row.previous_secret_ciphertext.is_some()
            && self.row.previous_secret_expires_at.is_some_and(|e| e > now)
    }
}

/// Sets (creates or replaces the URL of) the caller's endpoint for its mode, enabling it.
/// The secret is created with the endpoint and kept when the URL changes.
#[tracing::instrument(skip_all, fields(merchant_id = %caller.merchant_id, mode = caller.mode_str()))]
pub async fn set_endpoint(
    state: &AppState,
    caller: &Caller,
    url: &str,
) -> Result<EndpointView, WebhookError> {
    let settings = &state.webhooks;
    let dest = destination::resolve(url, caller.mode, settings.allow_test_loopback)
        .await
        .map_err(WebhookError::InvalidUrl)?;
    let now = OffsetDateTime::now_utc();
    let existing =
        store::webhooks::find_endpoint(&state.db, &caller.merchant_id, caller.mode_str()).await?;
    let row = match existing {
        Some(mut row) => {
            row.url = dest.url.to_string();
            row.status = EndpointStatus::Enabled;
            row.disabled_reason = None;
            row.updated_at = now;
            store::webhooks::set_endpoint_url(&state.db, &row.id, &row.url, now).await?;
            row
        }
        None => {
            let secret = SigningSecret::generate();
            let id = new_id("we");
            let row = webhook_endpoint::Model {
                secret_ciphertext: settings.cipher.encrypt(&secret, &id)?,
                id,
                merchant_id: caller.merchant_id.clone(),
                mode: AsText(caller.mode),
                url: dest.url.to_string(),
                previous_secret_ciphertext: None,
                previous_secret_expires_at: None,
                status: EndpointStatus::Enabled,
                disabled_reason: None,
                created_at: now,
                updated_at: now,
            };
            if let Err(e) = store::webhooks::insert_endpoint(&state.db, row.clone()).await {
                if store::violates(&e, store::Unique::WebhookEndpoint) {
                    // A concurrent first call created it: apply this URL to that one.
                    return Box::pin(set_endpoint(state, caller, url)).await;
                }
                return Err(e.into());
            }
            row
        }
    };
    crate::activity::record_for(
        &state.db,
        caller,
        crate::activity::Action::WebhookEndpointSet,
        Some(&row.id),
        Some(row.url.clone()),
    )
    .await?;
    tracing::info!(endpoint_id = %row.id, "webhook endpoint set");
    let secret = settings.cipher.decrypt(&row.secret_ciphertext, &row.id)?;
    Ok(EndpointView {
        row,
        secret: Some(secret),
    })
}

/// The caller's endpoint for its mode (without its secret).
pub async fn get_endpoint(state: &AppState, caller: &Caller) -> Result<EndpointView, WebhookError> {
    get_endpoint_in(&state.db, caller).await
}

/// [`get_endpoint`] read from `db`, for readers that choose their connection (the
/// back-office).
pub async fn get_endpoint_in(
    db: &impl sea_orm::ConnectionTrait,
    caller: &Caller,
) -> Result<EndpointView, WebhookError> {
    let row = store::webhooks::find_endpoint(db, &caller.merchant_id, caller.mode_str())
        .await?
        .ok_or(WebhookError::EndpointNotFound)?;
    Ok(EndpointView { row, secret: None })
}

/// Replaces the signing secret. For `overlap` the old secret keeps signing beside the new
/// one (two `v1,` signatures), so receivers can switch without losing a message.
#[tracing::instrument(skip_all, fields(merchant_id = %caller.merchant_id, mode = caller.mode_str()))]
pub async fn rotate_secret(
    state: &AppState,
    caller: &Caller,
    overlap: Duration,
) -> Result<EndpointView, WebhookError> {
    if overlap > MAX_ROTATION_OVERLAP {
        return Err(WebhookError::OverlapTooLong);
    }
    let secret = SigningSecret::generate();
    // Compare-and-swap on the current secret: two rotations at once must not both return
    // a secret while only the later one is stored.
    let row = loop {
        let mut row =
            store::webhooks::find_endpoint(&state.db, &caller.merchant_id, caller.mode_str())
                .await?
                .ok_or(WebhookError::EndpointNotFound)?;
        // Sealed for this row: the ciphertext is bound to the endpoint's id.
        let sealed = state.webhooks.cipher.encrypt(&secret, &row.id)?;
        let now = OffsetDateTime::now_utc();
        let current = std::mem::replace(&mut row.secret_ciphertext, sealed.clone());
        if overlap.is_zero() {
            row.previous_secret_ciphertext = None;
            row.previous_secret_expires_at = None;
        } else {
            row.previous_secret_ciphertext = Some(current.clone());
            row.previous_secret_expires_at = Some(now + overlap);
        }
        row.updated_at = now;
        let previous = row
            .previous_secret_ciphertext
            .as_deref()
            .zip(row.previous_secret_expires_at);
        if store::webhooks::replace_secrets(&state.db, &row.id, &current, &sealed, previous, now)
            .await?
        {
            break row;
        }
    };
    crate::activity::record_for(
        &state.db,
        caller,
        crate::activity::Action::WebhookSecretRotated,
        Some(&row.id),
        Some(format!("old secret signs {}s more", overlap.as_secs())),
    )
    .await?;
    tracing::info!(endpoint_id = %row.id, overlap_secs = overlap.as_secs(), "webhook secret rotated");
    Ok(EndpointView {
        row,
        secret: Some(secret),
    })
}

/// Queues a `webhook.test` event to the caller's endpoint; returns the event id.
pub async fn send_test_event(state: &AppState, caller: &Caller) -> Result<String, WebhookError> {
    let endpoint = get_endpoint(state, caller).await?;
    if endpoint.row.status != EndpointStatus::Enabled {
        return Err(WebhookError::EndpointDisabled);
    }
    let id = events::record(
        &state.db,
        &caller.merchant_id,
        caller.mode,
        EventKind::WebhookTest,
        None,
        serde_json::json!({"message": "A test event from SuperPayment."}),
        OffsetDateTime::now_utc(),
    )
    .await?;
    state.webhooks.bell.ring();
    Ok(id)
}
