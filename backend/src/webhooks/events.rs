//! Events: writing them to the outbox, listing and retrieving them, redelivering on demand.
use sea_orm::ConnectionTrait;
use superpayment_core::Mode;
use time::OffsetDateTime;

use super::WebhookError;
use crate::{
    auth::Caller,
    ids::new_id,
    replica::Freshness,
    state::AppState,
    store::{
        self,
        entities::{
            event::{self, EventKind},
            text::AsText,
            webhook_attempt, webhook_delivery,
            webhook_endpoint::EndpointStatus,
        },
    },
};

/// Largest page of a listing.
pub const MAX_PAGE: u64 = 100;

/// Writes an event to the outbox; call it inside the transaction of the change it
/// announces. The payload follows the payments' shape: `{id, type, created_at, mode, data}`.
pub async fn record(
    db: &impl ConnectionTrait,
    merchant_id: &str,
    mode: Mode,
    kind: EventKind,
    transaction_id: Option<&str>,
    data: serde_json::Value,
    now: OffsetDateTime,
) -> anyhow::Result<String> {
    let id = new_id("evt");
    let created_at = crate::timestamps::rfc3339(now);
    store::webhooks::insert_event(
        db,
        event::Model {
            id: id.clone(),
            merchant_id: merchant_id.into(),
            mode: AsText(mode),
            kind,
            transaction_id: transaction_id.map(str::to_owned),
            payload: serde_json::json!({
                "id": id,
                "type": kind.as_str(),
                "created_at": created_at,
                "mode": mode.as_str(),
                "data": data,
            }),
            created_at: now,
        },
    )
    .await?;
    Ok(id)
}

/// An event with its deliveries and every attempt.
#[derive(Debug)]
pub struct EventView {
    pub event: event::Model,
    pub deliveries: Vec<webhook_delivery::Model>,
    pub attempts: Vec<webhook_attempt::Model>,
}

/// A page of the caller's events, newest first, and how fresh it is (read from the
/// replica when there is one).
pub async fn list(
    state: &AppState,
    caller: &Caller,
    kind: Option<&str>,
    starting_after: Option<&str>,
    limit: u64,
) -> Result<(Vec<EventView>, bool, Freshness), WebhookError> {
    let read = state.read_db().await;
    let (views, has_more) = list_in(&read.db, caller, kind, starting_after, limit).await?;
    Ok((views, has_more, read.freshness))
}

/// [`list`] read from `db`, for readers that choose their connection (the back-office).
pub async fn list_in(
    db: &impl ConnectionTrait,
    caller: &Caller,
    kind: Option<&str>,
    starting_after: Option<&str>,
    limit: u64,
) -> Result<(Vec<EventView>, bool), WebhookError> {
    let limit = limit.clamp(1, MAX_PAGE);
    let mut rows = store::webhooks::list_events(
        db,
        &caller.merchant_id,
        caller.mode_str(),
        kind,
        starting_after,
        limit + 1,
    )
    .await?;
    let has_more = rows.len() as u64 > limit;
    rows.truncate(limit as usize);
    let ids: Vec<String> = rows.iter().map(|e| e.id.clone()).collect();
    let deliveries = store::webhooks::deliveries_of(db, &ids).await?;
    let views = rows
        .into_iter()
        .map(|event| EventView {
            deliveries: deliveries
                .iter()
                .filter(|d| d.event_id == event.id)
                .cloned()
                .collect(),
            attempts: Vec::new(),
            event,
        })
        .collect();
    Ok((views, has_more))
}

/// One of the caller's events with its deliveries and attempts; another merchant's or
/// mode's event is simply not found. Read from the primary, like a transaction: it is
/// fetched right after the change that wrote it.
pub async fn retrieve(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<EventView, WebhookError> {
    let event = store::webhooks::find_event(&state.db, &caller.merchant_id, caller.mode_str(), id)
        .await?
        .ok_or(WebhookError::EventNotFound)?;
    let deliveries =
        store::webhooks::deliveries_of(&state.db, std::slice::from_ref(&event.id)).await?;
    let attempts = store::webhooks::attempts_of(&state.db, &event.id).await?;
    Ok(EventView {
        event,
        deliveries,
        attempts,
    })
}

/// Queues a new delivery of one of the caller's events to its current endpoint, due now.
#[tracing::instrument(skip_all, fields(merchant_id = %caller.merchant_id, event_id = %id))]
pub async fn redeliver(state: &AppState, caller: &Caller, id: &str) -> Result<i64, WebhookError> {
    let event = store::webhooks::find_event(&state.db, &caller.merchant_id, caller.mode_str(), id)
        .await?
        .ok_or(WebhookError::EventNotFound)?;
    let endpoint =
        store::webhooks::find_endpoint(&state.db, &caller.merchant_id, caller.mode_str())
            .await?
            .filter(|e| e.status == EndpointStatus::Enabled)
            .ok_or(WebhookError::NoEnabledEndpoint)?;
    let delivery = store::webhooks::insert_delivery(
        &state.db,
        &event,
        &endpoint.id,
        OffsetDateTime::now_utc(),
    )
    .await?;
    crate::activity::record_for(
        &state.db,
        caller,
        crate::activity::Action::WebhookRedelivered,
        Some(&event.id),
        None,
    )
    .await?;
    state.webhooks.bell.ring();
    tracing::info!(delivery_id = delivery, "redelivery queued");
    Ok(delivery)
}
