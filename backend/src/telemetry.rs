//! Logging set-up and the request-id middleware that ties log lines, error bodies and the
//! request metrics together.
use std::time::Instant;

use poem::{Endpoint, IntoResponse, Middleware, Request, Response};
use tracing::Instrument;
use tracing_subscriber::{fmt, prelude::*, EnvFilter};

tokio::task_local! {
    static REQUEST_ID: String;
}

/// Installs the global subscriber: JSON lines in production, human-readable in development.
pub fn init(format: &str) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,sea_orm=warn,poem=warn"));
    let registry = tracing_subscriber::registry().with(filter);
    let result = if format == "pretty" {
        registry.with(fmt::layer().with_target(false)).try_init()
    } else {
        registry
            .with(
                json_subscriber::fmt::layer()
                    .flatten_event(true)
                    // The whole chain, so that a line logged inside a domain function's
                    // span still carries the request span's `request_id`; the innermost
                    // span is its last entry, so it is not written a second time apart.
                    .with_current_span(false)
                    .with_span_list(true),
            )
            .try_init()
    };
    // A second init (tests, repeated CLI calls in one process) keeps the first subscriber.
    let _ = result;
}

/// The id of the request being served, or "none" outside a request.
pub fn current_request_id() -> String {
    REQUEST_ID
        .try_with(Clone::clone)
        .unwrap_or_else(|_| "none".to_owned())
}

/// Gives every request an id (`X-Request-Id`, echoed back), a span and one access log line.
pub struct RequestId;

impl<E: Endpoint> Middleware<E> for RequestId {
    type Output = RequestIdEndpoint<E>;

    fn transform(&self, ep: E) -> Self::Output {
        RequestIdEndpoint(ep)
    }
}

pub struct RequestIdEndpoint<E>(E);

fn acceptable_incoming_id(value: &str) -> bool {
    (8..=64).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl<E: Endpoint> Endpoint for RequestIdEndpoint<E> {
    type Output = Response;

    async fn call(&self, req: Request) -> poem::Result<Self::Output> {
        let id = req
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .filter(|v| acceptable_incoming_id(v))
            .map(str::to_owned)
            .unwrap_or_else(|| format!("req_{}", uuid::Uuid::new_v4().simple()));
        // Only the path: query strings may carry data that does not belong in logs, and an
        // emailed link's token is cut from its path.
        let path = crate::accounts::links::loggable_path(req.uri().path());
        let span =
            tracing::info_span!("request", request_id = %id, method = %req.method(), path = %path);
        let started = Instant::now();
        let method = req.method().clone();
        let inner = &self.0;
        let fut = REQUEST_ID.scope(id.clone(), async move {
            match inner.call(req).await {
                Ok(resp) => resp.into_response(),
                Err(err) => err.into_response(),
            }
        });
        let mut resp = fut.instrument(span.clone()).await;
        let status = resp.status().as_u16();
        let elapsed = started.elapsed();
        crate::monitoring::http_request(route_of(&resp), method.as_str(), status, elapsed);
        let elapsed_ms = elapsed.as_secs_f64() * 1000.0;
        span.in_scope(|| {
            if status >= 500 {
                tracing::error!(status, elapsed_ms, "request failed");
            } else {
                tracing::info!(status, elapsed_ms, "request served");
            }
        });
        if let Ok(value) = id.parse() {
            resp.headers_mut().insert("x-request-id", value);
        }
        Ok(resp)
    }
}

/// The route template of an endpoint outside `/api`, kept on its answers for the request
/// metrics; API operations are named by their operation id instead.
#[derive(Debug, Clone, Copy)]
pub struct RouteLabel(pub &'static str);

impl<E: Endpoint> Middleware<E> for RouteLabel {
    type Output = RouteLabelEndpoint<E>;

    fn transform(&self, ep: E) -> Self::Output {
        RouteLabelEndpoint(ep, self.0)
    }
}

/// The endpoint of [`RouteLabel`].
pub struct RouteLabelEndpoint<E>(E, &'static str);

impl<E: Endpoint> Endpoint for RouteLabelEndpoint<E> {
    type Output = Response;

    async fn call(&self, req: Request) -> poem::Result<Self::Output> {
        let mut resp = match self.0.call(req).await {
            Ok(resp) => resp.into_response(),
            Err(err) => err.into_response(),
        };
        if resp.data::<RouteLabel>().is_none() {
            resp.set_data(RouteLabel(self.1));
        }
        Ok(resp)
    }
}

/// The metrics label of an answer: its operation id, else its route template, else `other`.
/// Never the raw path, which holds ids and whatever a client sends.
fn route_of(resp: &Response) -> &'static str {
    resp.data::<poem_openapi::OperationId>()
        .map(|id| id.0)
        .or_else(|| resp.data::<RouteLabel>().map(|r| r.0))
        .unwrap_or("other")
}
