//! The webhook endpoint and the events sent to it (secret key): set, read, rotate, test;
//! list, retrieve and redeliver events with their delivery attempts.
use std::time::Duration;

use poem_openapi::{
    param::{Path, Query},
    payload::Json,
    Object, OpenApi,
};
use superpayment_core::KeyKind;
use time::OffsetDateTime;

use super::{
    error::{ApiError, ErrorBody},
    security::SecretKey,
    ApiTags,
};
use crate::{
    auth::{authenticate, Caller},
    secret_key_response,
    state::AppState,
    store::entities::{webhook_attempt, webhook_delivery},
    timestamps::rfc3339,
    webhooks::{
        endpoints::{self, EndpointView, DEFAULT_ROTATION_OVERLAP},
        events::{self, EventView},
    },
};

/// Webhook endpoint and events.
pub struct WebhooksApi {
    state: AppState,
}

impl WebhooksApi {
    pub fn new(state: AppState) -> Self {
        Self { state }
    }

    async fn caller(&self, auth: &SecretKey) -> Result<Caller, ApiError> {
        Ok(authenticate(&self.state, Some(&auth.0.token), KeyKind::Secret).await?)
    }
}

/// Where to send this mode's events.
#[derive(Object)]
pub struct SetWebhookEndpoint {
    /// Live mode: `https://` and a host that resolves to public addresses only. Test mode
    /// may also use `http://` and localhost.
    pub url: String,
}

/// A rotation of the signing secret.
#[derive(Object)]
pub struct RotateWebhookSecret {
    /// How long the old secret keeps signing beside the new one (two `v1,` signatures in
    /// `webhook-signature`). Default 86400 (24 h), at most 604800; 0 drops it at once.
    pub overlap_seconds: Option<u64>,
}

/// The webhook endpoint of the key's mode.
#[derive(Object)]
pub struct WebhookEndpoint {
    /// `we_...`.
    pub id: String,
    pub url: String,
    /// `test` or `live`: the mode whose events go here.
    pub mode: String,
    /// `enabled`, or `disabled` (after a 410 answer, or after several deliveries in a row
    /// were given up; set the URL again to enable).
    pub status: String,
    #[oai(skip_serializing_if_is_none)]
    pub disabled_reason: Option<String>,
    /// `whsec_...`: shown when the endpoint is set and when the secret is rotated only.
    #[oai(skip_serializing_if_is_none)]
    pub secret: Option<String>,
    /// While a rotated-out secret still signs: when it stops.
    #[oai(skip_serializing_if_is_none)]
    pub previous_secret_expires_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl WebhookEndpoint {
    fn from_view(v: EndpointView) -> Self {
        let now = OffsetDateTime::now_utc();
        let previous = v
            .previous_secret_active(now)
            .then(|| v.row.previous_secret_expires_at.map(rfc3339))
            .flatten();
        WebhookEndpoint {
            id: v.row.id,
            url: v.row.url,
            mode: v.row.mode.0.as_str().into(),
            status: v.row.status.as_str().into(),
            disabled_reason: v.row.disabled_reason,
            secret: v.secret.map(|s| s.expose().to_owned()),
            previous_secret_expires_at: previous,
            created_at: rfc3339(v.row.created_at),
            updated_at: rfc3339(v.row.updated_at),
        }
    }
}

/// A queued event or delivery.
#[derive(Object)]
pub struct Queued {
    /// `evt_...`.
    pub event_id: String,
    /// The delivery created, for redeliveries.
    #[oai(skip_serializing_if_is_none)]
    pub delivery_id: Option<i64>,
}

/// An event, as POSTed to the endpoint (`payload`) with its delivery history.
#[derive(Object)]
pub struct Event {
    /// `evt_...`; also the `webhook-id` header, so receivers can drop duplicates.
    pub id: String,
    /// `payment.succeeded`, `payment.refunded`, `payment.authorized`, `payment.captured`,
    /// `payment.canceled`, `payment.expired`, `payment.flagged` or `webhook.test`.
    #[oai(rename = "type")]
    pub kind: String,
    pub mode: String,
    #[oai(skip_serializing_if_is_none)]
    pub transaction_id: Option<String>,
    pub created_at: String,
    /// The exact JSON body the endpoint receives.
    pub payload: serde_json::Value,
    pub deliveries: Vec<Delivery>,
    /// Every attempt (retrieving one event only).
    #[oai(skip_serializing_if_is_none)]
    pub attempts: Option<Vec<Attempt>>,
}

/// One event on its way to the endpoint.
#[derive(Object)]
pub struct Delivery {
    pub id: i64,
    /// `pending`, `succeeded`, `failed` (retries exhausted or 410) or `canceled` (endpoint disabled).
    pub status: String,
    pub attempt_count: i32,
    #[oai(skip_serializing_if_is_none)]
    pub next_attempt_at: Option<String>,
    #[oai(skip_serializing_if_is_none)]
    pub last_attempt_at: Option<String>,
    pub created_at: String,
}

/// One HTTP attempt.
#[derive(Object)]
pub struct Attempt {
    pub delivery_id: i64,
    pub attempt_number: i32,
    pub url: String,
    pub started_at: String,
    pub duration_ms: i64,
    /// The endpoint's HTTP status, when it answered.
    #[oai(skip_serializing_if_is_none)]
    pub status_code: Option<i32>,
    /// `succeeded` (2xx), `failed`, or `refused` (the address is not allowed).
    pub outcome: String,
    #[oai(skip_serializing_if_is_none)]
    pub error: Option<String>,
    /// The first 1024 bytes of the response body.
    #[oai(skip_serializing_if_is_none)]
    pub response_excerpt: Option<String>,
}

/// A page of events, newest first.
#[derive(Object)]
pub struct EventList {
    pub data: Vec<Event>,
    /// More events follow: pass the last id as `starting_after`.
    pub has_more: bool,
}

fn delivery_body(d: webhook_delivery::Model) -> Delivery {
    Delivery {
        id: d.id,
        status: d.status.as_str().into(),
        attempt_count: d.attempt_count,
        next_attempt_at: d
            .next_attempt_at
            .filter(|_| d.attempt_count > 0)
            .map(rfc3339),
        last_attempt_at: d.last_attempt_at.map(rfc3339),
        created_at: rfc3339(d.created_at),
    }
}

fn attempt_body(a: webhook_attempt::Model) -> Attempt {
    Attempt {
        delivery_id: a.delivery_id,
        attempt_number: a.attempt_number,
        url: a.url,
        started_at: rfc3339(a.started_at),
        duration_ms: a.duration_ms,
        status_code: a.status_code,
        outcome: a.outcome.as_str().into(),
        error: a.error,
        response_excerpt: a.response_excerpt,
    }
}

fn event_body(v: EventView, with_attempts: bool) -> Event {
    Event {
        id: v.event.id,
        kind: v.event.kind.as_str().into(),
        mode: v.event.mode.0.as_str().into(),
        transaction_id: v.event.transaction_id,
        created_at: rfc3339(v.event.created_at),
        payload: v.event.payload,
        deliveries: v.deliveries.into_iter().map(delivery_body).collect(),
        attempts: with_attempts.then(|| v.attempts.into_iter().map(attempt_body).collect()),
    }
}

secret_key_response! {
    /// Setting the endpoint (created when there is none, so never a 404).
    pub enum SetEndpointResponse {
        /// The endpoint.
        #[oai(status = 200)]
        Ok(Json<WebhookEndpoint>),
        /// Invalid URL: not http(s), http in live mode, credentials in it, or a host that does not resolve or resolves to a loopback, private or link-local address.
        #[oai(status = 400)]
        BadRequest(Json<ErrorBody>),
    }
    errors { 400 => BadRequest }
}

secret_key_response! {
    /// Reading the endpoint (no body, so no 400).
    pub enum GetEndpointResponse {
        /// The endpoint.
        #[oai(status = 200)]
        Ok(Json<WebhookEndpoint>),
        /// No endpoint set for this mode yet.
        #[oai(status = 404)]
        NotFound(Json<ErrorBody>),
    }
    errors { 404 => NotFound }
}

secret_key_response! {
    /// Rotating the endpoint's secret.
    pub enum EndpointResponse {
        /// The endpoint.
        #[oai(status = 200)]
        Ok(Json<WebhookEndpoint>),
        /// `overlap_seconds` above 604800 (`overlap_too_long`), or a malformed body.
        #[oai(status = 400)]
        BadRequest(Json<ErrorBody>),
        /// No endpoint set for this mode yet.
        #[oai(status = 404)]
        NotFound(Json<ErrorBody>),
    }
    errors { 400 => BadRequest, 404 => NotFound }
}

secret_key_response! {
    pub enum QueuedResponse {
        /// Queued; the worker delivers it within moments.
        #[oai(status = 202)]
        Accepted(Json<Queued>),
        /// No enabled endpoint to deliver to.
        #[oai(status = 400)]
        BadRequest(Json<ErrorBody>),
        /// No such event (or endpoint) for this merchant and mode.
        #[oai(status = 404)]
        NotFound(Json<ErrorBody>),
    }
    errors { 400 => BadRequest, 404 => NotFound }
}

secret_key_response! {
    pub enum EventListResponse {
        /// A page of events. Read from the read replica when the server has one:
        /// `Data-Source` (`replica` or `primary`) and `Data-Lag` (seconds the data may be
        /// behind; absent when a replica cannot tell yet), as on the transaction list.
        #[oai(status = 200)]
        Ok(
            Json<EventList>,
            #[oai(header = "Data-Source")] String,
            #[oai(header = "Data-Lag")] Option<String>,
        ),
        /// Invalid limit.
        #[oai(status = 400)]
        BadRequest(Json<ErrorBody>),
    }
    errors { 400 => BadRequest }
}

secret_key_response! {
    pub enum EventResponse {
        /// The event with its deliveries and attempts.
        #[oai(status = 200)]
        Ok(Json<Event>),
        /// No such event for this merchant and mode.
        #[oai(status = 404)]
        NotFound(Json<ErrorBody>),
    }
    errors { 404 => NotFound }
}

/// Checks a page size.
pub fn page_limit(limit: Option<u64>) -> Result<u64, ApiError> {
    match limit {
        None => Ok(20),
        Some(l @ 1..=100) => Ok(l),
        Some(_) => Err(ApiError::InvalidRequest(vec![
            superpayment_core::FieldError::new(
                "limit",
                "invalid_limit",
                "limit must be between 1 and 100.",
            ),
        ])),
    }
}

#[OpenApi(tag = "ApiTags::Webhooks")]
impl WebhooksApi {
    /// Set the webhook endpoint
    ///
    /// Creates the endpoint of the key's mode (with a new `whsec_` secret, returned) or
    /// changes its URL (keeping the secret) and enables it. Events are POSTed signed per
    /// Standard Webhooks: headers `webhook-id`, `webhook-timestamp`, `webhook-signature`.
    #[oai(
        path = "/webhook-endpoint",
        method = "put",
        operation_id = "setWebhookEndpoint"
    )]
    async fn set(&self, auth: SecretKey, body: Json<SetWebhookEndpoint>) -> SetEndpointResponse {
        async {
            let caller = self.caller(&auth).await?;
            let view = endpoints::set_endpoint(&self.state, &caller, &body.url).await?;
            Ok(SetEndpointResponse::Ok(Json(WebhookEndpoint::from_view(
                view,
            ))))
        }
        .await
        .unwrap_or_else(|e: ApiError| e.into())
    }

    /// Read the webhook endpoint
    ///
    /// The secret is not shown again; rotate it if it was lost.
    #[oai(
        path = "/webhook-endpoint",
        method = "get",
        operation_id = "getWebhookEndpoint"
    )]
    async fn get(&self, auth: SecretKey) -> GetEndpointResponse {
        async {
            let caller = self.caller(&auth).await?;
            let view = endpoints::get_endpoint(&self.state, &caller).await?;
            Ok(GetEndpointResponse::Ok(Json(WebhookEndpoint::from_view(
                view,
            ))))
        }
        .await
        .unwrap_or_else(|e: ApiError| e.into())
    }

    /// Rotate the signing secret
    ///
    /// Returns the new secret. During the overlap every message carries two signatures
    /// (new and old), so receivers verifying with either secret keep working.
    #[oai(
        path = "/webhook-endpoint/rotate-secret",
        method = "post",
        operation_id = "rotateWebhookSecret"
    )]
    async fn rotate(&self, auth: SecretKey, body: Json<RotateWebhookSecret>) -> EndpointResponse {
        async {
            let caller = self.caller(&auth).await?;
            let overlap = body
                .overlap_seconds
                .map(Duration::from_secs)
                .unwrap_or(DEFAULT_ROTATION_OVERLAP);
            let view = endpoints::rotate_secret(&self.state, &caller, overlap).await?;
            Ok(EndpointResponse::Ok(Json(WebhookEndpoint::from_view(view))))
        }
        .await
        .unwrap_or_else(|e: ApiError| e.into())
    }

    /// Send a test event
    ///
    /// Queues a `webhook.test` event, delivered and recorded like any other.
    #[oai(
        path = "/webhook-endpoint/test",
        method = "post",
        operation_id = "sendTestWebhook"
    )]
    async fn test(&self, auth: SecretKey) -> QueuedResponse {
        async {
            let caller = self.caller(&auth).await?;
            let event_id = endpoints::send_test_event(&self.state, &caller).await?;
            Ok(QueuedResponse::Accepted(Json(Queued {
                event_id,
                delivery_id: None,
            })))
        }
        .await
        .unwrap_or_else(|e: ApiError| e.into())
    }

    /// List events
    ///
    /// Newest first, with each event's deliveries. Page with `starting_after` (the last
    /// id of the previous page) while `has_more` is true.
    #[oai(path = "/events", method = "get", operation_id = "listEvents")]
    async fn list(
        &self,
        auth: SecretKey,
        /// 1 to 100 (default 20).
        limit: Query<Option<u64>>,
        /// An event id: list the events after it.
        starting_after: Query<Option<String>>,
        /// Only events of this type, e.g. `payment.refunded`.
        #[oai(name = "type")]
        kind: Query<Option<String>>,
    ) -> EventListResponse {
        async {
            let caller = self.caller(&auth).await?;
            let limit = page_limit(limit.0)?;
            let (views, has_more, freshness) = events::list(
                &self.state,
                &caller,
                kind.0.as_deref(),
                starting_after.0.as_deref(),
                limit,
            )
            .await?;
            Ok(EventListResponse::Ok(
                Json(EventList {
                    data: views.into_iter().map(|v| event_body(v, false)).collect(),
                    has_more,
                }),
                freshness.source().to_owned(),
                freshness.lag_header(),
            ))
        }
        .await
        .unwrap_or_else(|e: ApiError| e.into())
    }

    /// Retrieve an event
    ///
    /// With every delivery attempt: status, duration and an excerpt of the response.
    #[oai(path = "/events/:id", method = "get", operation_id = "getEvent")]
    async fn retrieve(&self, auth: SecretKey, id: Path<String>) -> EventResponse {
        async {
            let caller = self.caller(&auth).await?;
            let view = events::retrieve(&self.state, &caller, &id.0).await?;
            Ok(EventResponse::Ok(Json(event_body(view, true))))
        }
        .await
        .unwrap_or_else(|e: ApiError| e.into())
    }

    /// Redeliver an event
    ///
    /// Sends the event again to the current endpoint, whatever happened before (its id is
    /// unchanged, so receivers can still drop duplicates).
    #[oai(
        path = "/events/:id/redeliver",
        method = "post",
        operation_id = "redeliverEvent"
    )]
    async fn redeliver(&self, auth: SecretKey, id: Path<String>) -> QueuedResponse {
        async {
            let caller = self.caller(&auth).await?;
            let delivery = events::redeliver(&self.state, &caller, &id.0).await?;
            Ok(QueuedResponse::Accepted(Json(Queued {
                event_id: id.0.clone(),
                delivery_id: Some(delivery),
            })))
        }
        .await
        .unwrap_or_else(|e: ApiError| e.into())
    }
}
