//! Security headers on every answer: nosniff, Referrer-Policy, framing rules, HSTS; and
//! the one CORS rule (widget files readable from any origin, nothing else shared).
//!
//! A response that sets its own header keeps it. Pages that bring their own
//! Content-Security-Policy decide their own framing: the checkout iframe must be framed by
//! merchants' pages (its `frame-ancestors` names which), so it never gets
//! `X-Frame-Options`. Everything else may not be framed.
use poem::{
    http::{header, HeaderValue},
    Endpoint, IntoResponse, Middleware, Request, Response, Result,
};

/// HSTS for a year, subdomains included: only sent when the public URL is https.
const HSTS: &str = "max-age=31536000; includeSubDomains";
/// For answers without a policy of their own (JSON, the spec, static files): nothing may
/// load from them and nobody may frame them.
const DEFAULT_CSP: &str = "default-src 'none'; frame-ancestors 'none'";

/// Middleware adding the security headers.
pub struct SecurityHeaders {
    hsts: bool,
}

impl SecurityHeaders {
    /// `public_url`: PUBLIC_URL, whose scheme says whether clients reach us over https.
    pub fn new(public_url: Option<&str>) -> Self {
        Self {
            hsts: public_url.is_some_and(|u| u.to_ascii_lowercase().starts_with("https://")),
        }
    }
}

impl<E: Endpoint> Middleware<E> for SecurityHeaders {
    type Output = SecurityHeadersEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        SecurityHeadersEndpoint {
            inner,
            hsts: self.hsts,
        }
    }
}

/// The endpoint produced by [`SecurityHeaders`].
pub struct SecurityHeadersEndpoint<E> {
    inner: E,
    hsts: bool,
}

impl<E: Endpoint> Endpoint for SecurityHeadersEndpoint<E> {
    type Output = Response;

    async fn call(&self, req: Request) -> Result<Self::Output> {
        let checkout = req.uri().path() == "/checkout.html";
        // CORS exactly as the widget needs: merchants' pages load the loader and the Wasm
        // files from another origin (`crossorigin="anonymous"`, SRI), without credentials.
        // Nothing else is shared: the checkout iframe calls the API from this origin, so
        // the API answers no origin but its own (and never with credentials).
        let widget_file = req.uri().path() == "/widget.js" || req.uri().path().starts_with("/pkg/");
        // The Swagger UI runs inline scripts: it gets the framing rule, not the default policy.
        let docs = req.uri().path().starts_with("/docs");
        let mut resp = match self.inner.call(req).await {
            Ok(resp) => resp.into_response(),
            Err(err) => err.into_response(),
        };
        let h = resp.headers_mut();
        let mut set = |name: header::HeaderName, value: &'static str| {
            if !h.contains_key(&name) {
                h.insert(name, HeaderValue::from_static(value));
            }
        };
        if widget_file {
            set(header::ACCESS_CONTROL_ALLOW_ORIGIN, "*");
        }
        set(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
        set(header::REFERRER_POLICY, "no-referrer");
        if self.hsts {
            set(header::STRICT_TRANSPORT_SECURITY, HSTS);
        }
        let own_policy = resp.headers().contains_key(header::CONTENT_SECURITY_POLICY);
        if !checkout && !own_policy {
            let h = resp.headers_mut();
            h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
            h.insert(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(if docs {
                    "frame-ancestors 'none'"
                } else {
                    DEFAULT_CSP
                }),
            );
        }
        Ok(resp)
    }
}
