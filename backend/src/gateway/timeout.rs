//! A time limit on every request, pages included: past it the request is abandoned and
//! answered `503 request_timeout` with Retry-After, so that no client waits without bound
//! and a slow client cannot hold a connection's work open.
use std::time::Duration;

use poem::{http::StatusCode, Endpoint, IntoResponse, Middleware, Request, Response, Result};

use crate::api::error::ApiError;

/// Middleware abandoning requests that run longer than the limit (REQUEST_TIMEOUT).
pub struct RequestTimeout {
    limit: Duration,
}

impl RequestTimeout {
    pub fn new(limit: Duration) -> Self {
        Self { limit }
    }
}

impl<E: Endpoint> Middleware<E> for RequestTimeout {
    type Output = RequestTimeoutEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        RequestTimeoutEndpoint {
            inner,
            limit: self.limit,
        }
    }
}

/// The endpoint produced by [`RequestTimeout`].
pub struct RequestTimeoutEndpoint<E> {
    inner: E,
    limit: Duration,
}

impl<E: Endpoint> Endpoint for RequestTimeoutEndpoint<E> {
    type Output = Response;

    async fn call(&self, req: Request) -> Result<Self::Output> {
        let path = req.uri().path().to_owned();
        match tokio::time::timeout(self.limit, self.inner.call(req)).await {
            Ok(answered) => answered.map(IntoResponse::into_response),
            Err(_) => {
                // Dropping the request's future rolls back a database transaction it had
                // open; a money call retried with its Idempotency-Key is made once.
                tracing::warn!(
                    path,
                    limit_ms = self.limit.as_millis() as u64,
                    "request timed out"
                );
                let err = ApiError::RequestTimeout;
                let retry = err.retry_after_secs().unwrap_or(1);
                Ok(poem_openapi::payload::Json(err.to_body())
                    .with_status(StatusCode::SERVICE_UNAVAILABLE)
                    .with_header("Retry-After", retry)
                    .into_response())
            }
        }
    }
}
