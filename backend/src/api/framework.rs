//! What a request looked like when the framework refused it before any handler ran, so
//! that [`super::framework_error`] can say what to do: the scheme an `Authorization` header
//! lacked, the methods a path accepts (405 with `Allow`), an API path with an empty segment.
use std::sync::Arc;

use poem::{
    http::{header, Method},
    Endpoint, IntoResponse, Middleware, Request, Response, Result,
};

/// The facts about a refused request that its error message needs. Never the key itself.
#[derive(Debug, Clone, Default)]
pub struct Asked {
    /// `POST`, `GET`, ...
    pub method: String,
    /// The path as sent, `/api` included, without the query.
    pub path: String,
    /// What the `Authorization` header held.
    pub authorization: Authorization,
    /// The methods the path accepts, when it names an operation at all.
    pub allowed: Vec<String>,
}

/// The shape of the `Authorization` header (its value is never kept).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Authorization {
    /// No header, or `Bearer` with nothing after it.
    #[default]
    Missing,
    /// `Bearer <token>`.
    Bearer,
    /// A value without the `Bearer` scheme: the bare key, `Basic ...`, `Token ...`.
    OtherScheme,
}

impl Asked {
    fn of(req: &Request) -> Asked {
        Asked {
            method: req.method().as_str().to_owned(),
            path: req.original_uri().path().to_owned(),
            authorization: Authorization::of(req),
            allowed: Vec::new(),
        }
    }
}

impl Authorization {
    fn of(req: &Request) -> Authorization {
        let Some(value) = req.headers().get(header::AUTHORIZATION) else {
            return Authorization::Missing;
        };
        let value = value.to_str().unwrap_or("?").trim();
        let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
        match (
            scheme.eq_ignore_ascii_case("bearer"),
            rest.trim().is_empty(),
        ) {
            (true, true) => Authorization::Missing,
            (true, false) => Authorization::Bearer,
            (false, _) if value.is_empty() => Authorization::Missing,
            (false, _) => Authorization::OtherScheme,
        }
    }
}

/// The credential an operation's security scheme asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// `PublishableKey`: called from shoppers' browsers.
    Publishable,
    /// `SecretKey`: called from the merchant's server.
    Secret,
    /// `AdminToken`: the operator.
    Admin,
    /// No credential.
    None,
}

/// One operation of the spec: its id and the credential it takes.
#[derive(Debug, Clone, Copy)]
pub struct Operation {
    /// `processPayment`, `verifyTransaction`, ... (read once from the spec, kept for the
    /// process: answers name their operation with a `&'static str`).
    pub id: &'static str,
    pub scheme: Scheme,
}

/// The API's operations by path template (`/transactions/{id}/refunds`) and method,
/// read from the generated spec so that they can never disagree with the routes.
#[derive(Debug, Default)]
pub struct PathTable {
    paths: Vec<PathItem>,
}

/// One path template's segments, and its operations by method (`GET`, `POST`, ...).
type PathItem = (Vec<String>, Vec<(String, Operation)>);

impl PathTable {
    /// The operations under `/api` of an OpenAPI document.
    pub fn from_spec(spec: &serde_json::Value) -> PathTable {
        let mut paths = Vec::new();
        for (template, item) in spec["paths"].as_object().into_iter().flatten() {
            // Path items with servers of their own (the probes) are not under /api.
            let Some(ops) = item.as_object().filter(|o| !o.contains_key("servers")) else {
                continue;
            };
            let methods = ops
                .iter()
                .filter(|(m, _)| Method::from_bytes(m.to_uppercase().as_bytes()).is_ok())
                .map(|(m, op)| {
                    let scheme = match op["security"][0].as_object().and_then(|s| s.keys().next()) {
                        Some(s) if s == "PublishableKey" => Scheme::Publishable,
                        Some(s) if s == "SecretKey" => Scheme::Secret,
                        Some(s) if s == "AdminToken" => Scheme::Admin,
                        _ => Scheme::None,
                    };
                    let id = op["operationId"].as_str().unwrap_or("").to_owned();
                    // A few dozen short names, once per built application.
                    let id: &'static str = Box::leak(id.into_boxed_str());
                    (m.to_uppercase(), Operation { id, scheme })
                })
                .collect();
            paths.push((segments(template), methods));
        }
        PathTable { paths }
    }

    /// The templates matching `path`, those with more literal segments first (so that
    /// `/admin/vouchers/block` is not read as `/admin/vouchers/{id}`).
    fn matching(&self, path: &str) -> Vec<&PathItem> {
        let wanted = segments(path);
        let mut found: Vec<_> = self
            .paths
            .iter()
            .filter(|(template, _)| {
                template.len() == wanted.len()
                    && template.iter().zip(&wanted).all(|(t, w)| {
                        (t.starts_with('{') && t.ends_with('}') && !w.is_empty()) || t == w
                    })
            })
            .collect();
        found.sort_by_key(|(template, _)| template.iter().filter(|t| t.starts_with('{')).count());
        found
    }

    /// The operation `method` on `path` (relative to `/api`) reaches, if any (HEAD reaches
    /// the GET operation).
    pub fn operation(&self, method: &Method, path: &str) -> Option<Operation> {
        let method = if method == Method::HEAD {
            "GET"
        } else {
            method.as_str()
        };
        self.matching(path)
            .into_iter()
            .find_map(|(_, ops)| ops.iter().find(|(m, _)| m == method).map(|(_, op)| *op))
    }

    /// The methods `path` (relative to `/api`) accepts; empty when no operation has it.
    /// HEAD is answered wherever GET is.
    pub fn allowed(&self, path: &str) -> Vec<String> {
        let mut methods: Vec<String> = self
            .matching(path)
            .into_iter()
            .flat_map(|(_, m)| m.iter().map(|(m, _)| m.clone()))
            .collect();
        if methods.iter().any(|m| m == "GET") {
            methods.push("HEAD".into());
        }
        let order = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"];
        methods.sort_by_key(|m| order.iter().position(|o| o == m).unwrap_or(order.len()));
        methods.dedup();
        methods
    }
}

/// The segments of a path, trailing slashes ignored (as the API's routes ignore them).
fn segments(path: &str) -> Vec<String> {
    path.trim_end_matches('/')
        .split('/')
        .skip(1)
        .map(str::to_owned)
        .collect()
}

/// True when a path has an empty segment before its end (`/transactions//refunds`): a path
/// parameter is missing, and the path must not be read as another one.
pub fn has_empty_segment(path: &str) -> bool {
    path.trim_end_matches('/').contains("//")
}

/// Refuses an API path with an empty segment, before any route reads it as another path:
/// `/api/transactions//refunds` (the id is missing) and `//api/...` (a base URL ending in a
/// slash, joined to a path starting with one). Wraps the whole application, since the
/// latter never reaches the `/api` routes.
pub struct EmptySegments;

impl<E: Endpoint> Middleware<E> for EmptySegments {
    type Output = EmptySegmentsEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        EmptySegmentsEndpoint { inner }
    }
}

/// The endpoint of [`EmptySegments`].
pub struct EmptySegmentsEndpoint<E> {
    inner: E,
}

impl<E: Endpoint> Endpoint for EmptySegmentsEndpoint<E> {
    type Output = Response;

    async fn call(&self, req: Request) -> Result<Response> {
        let path = req.uri().path();
        if has_empty_segment(path) && is_api_path(path) {
            let asked = Asked::of(&req);
            return Ok(
                super::framework_error(poem::http::StatusCode::NOT_FOUND.into(), &asked).await,
            );
        }
        self.inner.call(req).await.map(IntoResponse::into_response)
    }
}

/// True for `/api` and the paths under it, however many slashes separate the segments.
fn is_api_path(path: &str) -> bool {
    let mut segments = path.split('/').filter(|s| !s.is_empty());
    segments.next() == Some("api")
}

/// Turns every error the framework raises into the one error shape, with what to do.
pub struct HouseErrors {
    paths: Arc<PathTable>,
}

impl HouseErrors {
    pub fn new(paths: Arc<PathTable>) -> Self {
        HouseErrors { paths }
    }
}

impl<E: Endpoint> Middleware<E> for HouseErrors {
    type Output = HouseErrorsEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        HouseErrorsEndpoint {
            inner,
            paths: self.paths.clone(),
        }
    }
}

/// The endpoint of [`HouseErrors`].
pub struct HouseErrorsEndpoint<E> {
    inner: E,
    paths: Arc<PathTable>,
}

impl<E: Endpoint> Endpoint for HouseErrorsEndpoint<E> {
    type Output = Response;

    async fn call(&self, req: Request) -> Result<Response> {
        let relative = req.uri().path().to_owned();
        let mut asked = Asked::of(&req);
        match self.inner.call(req).await {
            Ok(resp) => Ok(resp.into_response()),
            Err(err) => {
                if err.status() == poem::http::StatusCode::METHOD_NOT_ALLOWED {
                    asked.allowed = self.paths.allowed(&relative);
                }
                Ok(super::framework_error(err, &asked).await)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> PathTable {
        PathTable::from_spec(&serde_json::json!({"paths": {
            "/process-payment": {"post": {}},
            "/transactions": {"get": {}},
            "/transactions/{id}": {"get": {}},
            "/transactions/{id}/refunds": {"post": {}},
            "/webhook-endpoint": {"put": {}, "get": {}},
            "/healthz": {"servers": [{"url": "/"}], "get": {}},
            "/admin/vouchers/block": {"post": {"operationId": "block",
                "security": [{"AdminToken": []}]}},
            "/admin/vouchers/{id}": {"post": {"operationId": "other"}},
            "/keys": {"get": {"operationId": "listKeys", "security": [{"SecretKey": []}]}},
        }}))
    }

    #[test]
    fn an_operation_is_found_with_its_scheme_literal_segments_first() {
        let t = table();
        let op = t
            .operation(&Method::POST, "/admin/vouchers/block/")
            .unwrap();
        assert_eq!((op.id, op.scheme), ("block", Scheme::Admin));
        assert_eq!(
            t.operation(&Method::POST, "/admin/vouchers/v_1")
                .unwrap()
                .id,
            "other"
        );
        let op = t.operation(&Method::HEAD, "/keys").unwrap();
        assert_eq!((op.id, op.scheme), ("listKeys", Scheme::Secret));
        assert!(t.operation(&Method::DELETE, "/keys").is_none());
        assert!(t.operation(&Method::GET, "/healthz").is_none());
    }

    #[test]
    fn the_allowed_methods_come_from_the_matching_template() {
        let t = table();
        assert_eq!(t.allowed("/process-payment/"), ["POST"]);
        assert_eq!(t.allowed("/transactions/txn_1"), ["GET", "HEAD"]);
        assert_eq!(t.allowed("/transactions/txn_1/refunds"), ["POST"]);
        assert_eq!(t.allowed("/webhook-endpoint"), ["GET", "HEAD", "PUT"]);
        assert!(t.allowed("/healthz").is_empty());
        assert!(t.allowed("/nothing").is_empty());
    }

    #[test]
    fn an_empty_segment_is_told_from_a_trailing_slash() {
        assert!(has_empty_segment("/api/transactions//refunds"));
        assert!(has_empty_segment("//api/transactions"));
        assert!(!has_empty_segment("/api/process-payment/"));
        assert!(!has_empty_segment("/api/process-payment//"));
        assert!(is_api_path("//api/transactions"));
        assert!(is_api_path("/api"));
        assert!(!is_api_path("/apiary"));
        assert!(!is_api_path("/demo//cart"));
    }

    #[test]
    fn the_authorization_scheme_is_read_without_keeping_the_key() {
        let of = |v: Option<&str>| {
            let mut req = Request::builder();
            if let Some(v) = v {
                req = req.header(header::AUTHORIZATION, v);
            }
            Authorization::of(&req.finish())
        };
        assert_eq!(of(None), Authorization::Missing);
        assert_eq!(of(Some("Bearer ")), Authorization::Missing);
        assert_eq!(of(Some("")), Authorization::Missing);
        assert_eq!(of(Some("Bearer sk_test_x")), Authorization::Bearer);
        assert_eq!(of(Some("bearer sk_test_x")), Authorization::Bearer);
        assert_eq!(of(Some("sk_test_x")), Authorization::OtherScheme);
        assert_eq!(
            of(Some("Basic c2tfdGVzdF94Og==")),
            Authorization::OtherScheme
        );
    }
}
