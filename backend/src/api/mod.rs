//! The HTTP API: one `#[OpenApi]` struct per resource, composed into one documented service.
pub mod admin;
pub mod amount;
pub mod body_limit;
pub mod checkout;
pub mod documented;
pub mod error;
pub mod framework;
pub mod holds;
pub mod keys;
pub mod merchant_transactions;
pub mod ops;
pub mod payments;
pub mod reports;
pub mod security;
pub mod verify;
pub mod voucher_activities;
pub mod vouchers;
pub mod webhooks;

pub use crate::money::format_minor;

use poem::{http::StatusCode, IntoResponse, Response};
use poem_openapi::{OpenApiService, Tags};

use crate::state::AppState;
use error::ApiError;

/// Groups of operations in the spec.
#[derive(Tags)]
pub enum ApiTags {
    /// Called by the checkout widget with a publishable key.
    Payments,
    /// Vouchers as the shopper sees them.
    Vouchers,
    /// Called by the merchant's server with a secret key.
    Transactions,
    /// Operator endpoints, guarded by ADMIN_TOKEN.
    Admin,
    /// The webhook endpoint and the events sent to it (secret key).
    Webhooks,
    /// API keys: create, roll, revoke (secret key).
    Keys,
    /// Vouchers issued for the merchant: lifecycle activities and history (secret key).
    IssuedVouchers,
}

/// Builds the documented API service (mounted at `/api`).
// The type is the list of resources itself; an alias would only move it.
#[allow(clippy::type_complexity)]
pub fn service(
    state: &AppState,
    server_url: &str,
) -> OpenApiService<
    (
        payments::PaymentsApi,
        vouchers::VouchersApi,
        verify::TransactionsApi,
        admin::AdminApi,
        reports::ReportsApi,
        merchant_transactions::MerchantTransactionsApi,
        holds::HoldsApi,
        webhooks::WebhooksApi,
        keys::KeysApi,
        checkout::CheckoutApi,
        voucher_activities::VoucherActivitiesApi,
    ),
    (),
> {
    OpenApiService::new(
        (
            payments::PaymentsApi::new(state.clone()),
            vouchers::VouchersApi::new(state.clone()),
            verify::TransactionsApi::new(state.clone()),
            admin::AdminApi::new(state.clone()),
            reports::ReportsApi::new(state.clone()),
            merchant_transactions::MerchantTransactionsApi::new(state.clone()),
            holds::HoldsApi::new(state.clone()),
            webhooks::WebhooksApi::new(state.clone()),
            keys::KeysApi::new(state.clone()),
            checkout::CheckoutApi::new(state.clone()),
            voucher_activities::VoucherActivitiesApi::new(state.clone()),
        ),
        "SuperPayment API",
        env!("CARGO_PKG_VERSION"),
    )
    .description(include_str!("description.md"))
    .server(server_url)
}

/// The OpenAPI document as pretty JSON, exactly as committed in openapi/openapi.json: its
/// servers are `/api` (and `/` for the probes), relative to wherever it is served.
pub fn spec_json(state: &AppState) -> String {
    spec_json_at(state, None)
}

/// The OpenAPI document a deployment serves: with PUBLIC_URL (`https://pay.example`) its
/// servers are `https://pay.example/api` and `https://pay.example/`; without, as committed.
pub fn spec_json_at(state: &AppState, public_url: Option<&str>) -> String {
    let base = public_url.map_or("", |u| u.trim_end_matches('/'));
    let raw = service(state, &format!("{base}/api")).spec();
    let mut doc: serde_json::Value = serde_json::from_str(&raw).expect("poem-openapi emits JSON");
    for problem in documented::annotate(&mut doc) {
        tracing::error!(%problem, "error catalogue entry not documented in the spec");
    }
    ops::document(&mut doc, &format!("{base}/"));
    let mut out = serde_json::to_string_pretty(&doc).expect("JSON value serialises");
    out.push('\n');
    out
}

/// Turns errors raised by the framework itself (unparseable body, missing bearer token,
/// unknown path, a method the path does not accept, body limits) into the one error
/// shape, saying what to do; `asked` is what the request looked like
/// ([`framework::HouseErrors`]). The operation it happened in is kept on the answer (for
/// [`documented::check_answer`]).
pub async fn framework_error(err: poem::Error, asked: &framework::Asked) -> Response {
    let api_error = match err.status() {
        StatusCode::BAD_REQUEST => match unknown_field(&err.to_string()) {
            Some(field) => unknown_field_error(field),
            None if err.to_string().contains(amount::NOT_A_STRING) => ApiError::AmountNotAString,
            None => ApiError::MalformedBody(err.to_string()),
        },
        StatusCode::UNAUTHORIZED => ApiError::Unauthenticated {
            code: match asked.authorization {
                framework::Authorization::Missing => "missing_api_key",
                framework::Authorization::OtherScheme => "invalid_authorization_scheme",
                framework::Authorization::Bearer => "invalid_api_key",
            },
        },
        StatusCode::NOT_FOUND if framework::has_empty_segment(&asked.path) => {
            ApiError::NoEndpoint(format!(
                "`{} {}` has an empty path segment (`//`): a path parameter such as an id is missing. The endpoints are listed at /docs.",
                asked.method, asked.path
            ))
        }
        StatusCode::NOT_FOUND => ApiError::NoEndpoint(format!(
            "No endpoint `{} {}`: check the path (the endpoints are listed at /docs).",
            asked.method, asked.path
        )),
        StatusCode::METHOD_NOT_ALLOWED => ApiError::MethodNotAllowed(if asked.allowed.is_empty() {
            format!("`{}` is not accepted on `{}`.", asked.method, asked.path)
        } else {
            format!(
                "`{}` is not accepted on `{}`: this path accepts {} (see the `Allow` header).",
                asked.method,
                asked.path,
                asked.allowed.join(", ")
            )
        }),
        StatusCode::LENGTH_REQUIRED => ApiError::LengthRequired,
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::BodyTooLarge,
        // A body in another media type is a bad request like any other malformed body
        // (every operation with a body documents its 400).
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::UnsupportedMediaType,
        s if s.is_server_error() => ApiError::Internal(anyhow::anyhow!("framework error: {err}")),
        _ => ApiError::MalformedBody(err.to_string()),
    };
    let status = StatusCode::from_u16(api_error.status()).unwrap_or(StatusCode::BAD_REQUEST);
    let mut resp = poem::web::Json(api_error.to_body())
        .with_status(status)
        .into_response();
    if status == StatusCode::METHOD_NOT_ALLOWED && !asked.allowed.is_empty() {
        if let Ok(allow) = asked.allowed.join(", ").parse() {
            resp.headers_mut().insert(poem::http::header::ALLOW, allow);
        }
    }
    if let Some(id) = err.data::<poem_openapi::OperationId>() {
        resp.set_data(*id);
    }
    resp
}

/// The 400 for a field the operation does not know.
pub fn unknown_field_error(field: String) -> ApiError {
    ApiError::InvalidRequest(vec![superpayment_core::FieldError::new(
        field.clone(),
        "unknown_field",
        format!("Unknown field `{field}`: only the documented fields are accepted, so a misspelt or unsupported one is never silently ignored."),
    )])
}

/// The field named by poem-openapi's `deny_unknown_fields` error, if that is the error.
fn unknown_field(message: &str) -> Option<String> {
    let rest = message.split("unknown field `").nth(1)?;
    Some(rest.split('`').next()?.to_owned())
}
