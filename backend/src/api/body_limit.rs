//! Request body cap that lets body-less requests (GET listings, curl without data) through.
//!
//! poem's `SizeLimit` answers 411 to any request without Content-Length, which includes
//! every plain GET; a request with neither Content-Length nor Transfer-Encoding has no
//! body under HTTP/1.1, so only requests that may carry one go through the limit.
use std::sync::Arc;

use poem::{
    http::header::{CONTENT_LENGTH, TRANSFER_ENCODING},
    middleware::SizeLimit,
    Endpoint, IntoResponse, Middleware, Request, Response, Result,
};

/// Refuses bodies over `max` bytes (413) and bodies of unknown length (411).
pub struct BodyLimit {
    max: usize,
}

impl BodyLimit {
    /// A cap of `max` bytes.
    pub fn new(max: usize) -> Self {
        Self { max }
    }
}

impl<E: Endpoint + 'static> Middleware<E> for BodyLimit {
    type Output = BodyLimitEndpoint<E>;

    fn transform(&self, ep: E) -> Self::Output {
        let plain = Arc::new(ep);
        BodyLimitEndpoint {
            limited: SizeLimit::new(self.max).transform(plain.clone()),
            plain,
        }
    }
}

/// The endpoint produced by [`BodyLimit`].
pub struct BodyLimitEndpoint<E: Endpoint + 'static> {
    plain: Arc<E>,
    limited: <SizeLimit as Middleware<Arc<E>>>::Output,
}

impl<E: Endpoint + 'static> Endpoint for BodyLimitEndpoint<E> {
    type Output = Response;

    async fn call(&self, req: Request) -> Result<Self::Output> {
        let may_have_body = req.headers().contains_key(CONTENT_LENGTH)
            || req.headers().contains_key(TRANSFER_ENCODING);
        if may_have_body {
            self.limited
                .call(req)
                .await
                .map(IntoResponse::into_response)
        } else {
            self.plain.call(req).await.map(IntoResponse::into_response)
        }
    }
}
