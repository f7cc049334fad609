//! The HTTP API: one `#[OpenApi]` struct per resource, composed into one documented service.
pub mod admin;
pub mod amount;
pub mod body_limit;
pub mod checkout;
pub mod error;
pub mod framework;
pub mod keys;
pub mod merchant_transactions;
pub mod ops;
pub mod payments;
pub mod security;
pub mod verify;
pub mod vouchers;
pub mod webhooks;

pub use verify::format_minor;

use poem::{http::StatusCode, IntoResponse, Response};
use poem_openapi::{OpenApiService, Tags};

use crate::state::AppState;
use error::{ApiError, ErrorBody, ErrorDetail};

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
        merchant_transactions::MerchantTransactionsApi,
        webhooks::WebhooksApi,
        keys::KeysApi,
        checkout::CheckoutApi,
    ),
    (),
> {
    OpenApiService::new(
        (
            payments::PaymentsApi::new(state.clone()),
            vouchers::VouchersApi::new(state.clone()),
            verify::TransactionsApi::new(state.clone()),
            admin::AdminApi::new(state.clone()),
            merchant_transactions::MerchantTransactionsApi::new(state.clone()),
            webhooks::WebhooksApi::new(state.clone()),
            keys::KeysApi::new(state.clone()),
            checkout::CheckoutApi::new(state.clone()),
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
    error_examples::annotate(&mut doc);
    ops::document(&mut doc, &format!("{base}/"));
    let mut out = serde_json::to_string_pretty(&doc).expect("JSON value serialises");
    out.push('\n');
    out
}

/// Turns errors raised by the framework itself (unparseable body, missing bearer token,
/// unknown path, a method the path does not accept) into the one error shape, saying what
/// to do; `asked` is what the request looked like ([`framework::HouseErrors`]).
pub async fn framework_error(err: poem::Error, asked: &framework::Asked) -> Response {
    let mut status = err.status();
    let api_error = match status {
        StatusCode::BAD_REQUEST => Some(match unknown_field(&err.to_string()) {
            Some(field) => ApiError::InvalidRequest(vec![superpayment_core::FieldError::new(
                field.clone(),
                "unknown_field",
                format!("Unknown field `{field}`: only the documented fields are accepted, so a misspelt or unsupported one is never silently ignored."),
            )]),
            None if err.to_string().contains(amount::NOT_A_STRING) => ApiError::AmountNotAString,
            None => ApiError::MalformedBody(err.to_string()),
        }),
        StatusCode::UNAUTHORIZED => Some(ApiError::Unauthenticated {
            code: match asked.authorization {
                framework::Authorization::Missing => "missing_api_key",
                framework::Authorization::OtherScheme => "invalid_authorization_scheme",
                framework::Authorization::Bearer => "invalid_api_key",
            },
        }),
        s if s.is_server_error() => Some(ApiError::Internal(anyhow::anyhow!(
            "framework error: {err}"
        ))),
        _ => None,
    };
    let body = match api_error {
        Some(e) => e.to_body(),
        None => ErrorBody {
            error: ErrorDetail {
                kind: "invalid_request_error".into(),
                code: match status {
                    StatusCode::NOT_FOUND => "resource_missing".into(),
                    StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed".into(),
                    StatusCode::PAYLOAD_TOO_LARGE => "body_too_large".into(),
                    StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type".into(),
                    _ => "invalid_request".into(),
                },
                message: match status {
                    StatusCode::UNSUPPORTED_MEDIA_TYPE => {
                        "The body must be JSON: send `Content-Type: application/json` (and `{}` when there is nothing to say).".into()
                    }
                    StatusCode::NOT_FOUND if framework::has_empty_segment(&asked.path) => format!(
                        "`{} {}` has an empty path segment (`//`): a path parameter such as an id is missing. The endpoints are listed at /docs.",
                        asked.method, asked.path
                    ),
                    StatusCode::NOT_FOUND => format!(
                        "No endpoint `{} {}`: check the path (the endpoints are listed at /docs).",
                        asked.method, asked.path
                    ),
                    StatusCode::METHOD_NOT_ALLOWED if !asked.allowed.is_empty() => format!(
                        "`{}` is not accepted on `{}`: this path accepts {} (see the `Allow` header).",
                        asked.method,
                        asked.path,
                        asked.allowed.join(", ")
                    ),
                    _ => err.to_string(),
                },
                param: None,
                errors: None,
                transaction_id: None,
                retry_after: None,
                request_id: crate::telemetry::current_request_id(),
            },
        },
    };
    // A body in another media type is a bad request like any other malformed body (every
    // operation with a body documents its 400).
    if status == StatusCode::UNSUPPORTED_MEDIA_TYPE {
        status = StatusCode::BAD_REQUEST;
    }
    let mut response = poem::web::Json(body).with_status(status).into_response();
    if status == StatusCode::METHOD_NOT_ALLOWED && !asked.allowed.is_empty() {
        if let Ok(allow) = asked.allowed.join(", ").parse() {
            response
                .headers_mut()
                .insert(poem::http::header::ALLOW, allow);
        }
    }
    response
}

/// The field named by poem-openapi's `deny_unknown_fields` error, if that is the error.
fn unknown_field(message: &str) -> Option<String> {
    let rest = message.split("unknown field `").nth(1)?;
    Some(rest.split('`').next()?.to_owned())
}

mod error_examples {
    //! Adds, to every documented error response, examples of the codes it can carry.
    use serde_json::{json, Value};

    const EXAMPLES: &[(&str, &str, &str, &str)] = &[
        (
            "400",
            "invalid_request_error",
            "amount_too_many_decimals",
            "EUR amounts have at most 2 decimals.",
        ),
        (
            "400",
            "invalid_request_error",
            "malformed_body",
            "The request body could not be read: ...",
        ),
        (
            "400",
            "idempotency_error",
            "idempotency_key_reused",
            "This Idempotency-Key was already used with a different request body.",
        ),
        (
            "401",
            "authentication_error",
            "invalid_api_key",
            "The API key is unknown, revoked or expired.",
        ),
        (
            "402",
            "voucher_error",
            "insufficient_balance",
            "The vouchers' balance does not cover the amount.",
        ),
        (
            "402",
            "voucher_error",
            "voucher_declined",
            "This voucher cannot be used.",
        ),
        (
            "402",
            "voucher_error",
            "voucher_expired",
            "This voucher has expired.",
        ),
        (
            "402",
            "voucher_error",
            "voucher_blocked",
            "This voucher has been blocked.",
        ),
        (
            "402",
            "voucher_error",
            "voucher_currency_mismatch",
            "This voucher is in another currency than the order.",
        ),
        (
            "402",
            "voucher_error",
            "voucher_not_accepted",
            "This voucher is not accepted by this shop.",
        ),
        (
            "403",
            "permission_error",
            "secret_key_not_allowed",
            "A secret key must never be used in a browser.",
        ),
        (
            "403",
            "permission_error",
            "secret_key_required",
            "This endpoint needs a secret key (sk_...) from your server.",
        ),
        (
            "404",
            "invalid_request_error",
            "resource_missing",
            "No such transaction.",
        ),
        (
            "409",
            "conflict_error",
            "order_already_paid",
            "This order has already been paid; see `transaction_id`.",
        ),
        (
            "409",
            "idempotency_error",
            "idempotency_key_in_use",
            "A request with this Idempotency-Key is still being processed; retry shortly.",
        ),
        (
            "429",
            "rate_limit_error",
            "rate_limited",
            "Too many requests; retry after the delay in Retry-After.",
        ),
        (
            "500",
            "api_error",
            "internal_error",
            "An unexpected error occurred. Quote the request id when contacting support.",
        ),
    ];

    pub fn annotate(doc: &mut Value) {
        let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
            return;
        };
        for item in paths.values_mut() {
            let Some(ops) = item.as_object_mut() else {
                continue;
            };
            for op in ops.values_mut() {
                let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) else {
                    continue;
                };
                for (status, response) in responses.iter_mut() {
                    let examples: serde_json::Map<String, Value> = EXAMPLES
                        .iter()
                        .filter(|(s, ..)| s == status)
                        .map(|(_, kind, code, message)| {
                            let mut detail = json!({"type": kind, "code": code, "message": message, "request_id": "req_4f1c2b0e8d6a4a51b3c7e9d2f0a1b2c3"});
                            if *code == "order_already_paid" {
                                detail["transaction_id"] = json!("txn_0193b5f0c2a87b3e9d1f4c2a8b7e6d5c");
                            }
                            if *status == "429" {
                                detail["retry_after"] = json!(12);
                            }
                            ((*code).to_owned(), json!({"summary": code, "value": {"error": detail}}))
                        })
                        .collect();
                    if examples.is_empty() {
                        continue;
                    }
                    if let Some(content) =
                        response.get_mut("content").and_then(Value::as_object_mut)
                    {
                        for media in content.values_mut() {
                            media["examples"] = Value::Object(examples.clone());
                        }
                    }
                }
            }
        }
    }
}
