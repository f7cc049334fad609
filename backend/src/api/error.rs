//! The one error type of the HTTP layer and its wire shape.
//!
//! Layers: `superpayment_core` returns its own parse errors (`FieldError`, `AmountError` ...);
//! domain modules (`payments`, `admin`) and handlers return [`ApiError`]; `store` returns
//! `anyhow::Error` / `DbErr`, which become [`ApiError::Internal`] — logged with their cause
//! and answered with an opaque 500 carrying only the request id.
use std::time::Duration;

use poem_openapi::Object;
use superpayment_core::FieldError;

use crate::telemetry::current_request_id;

/// Why a voucher payment was declined (HTTP 402). Unknown codes all get `voucher_declined`
/// so that the answer never tells a guesser whether a code exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeclineReason {
    /// The vouchers together hold less than the amount.
    InsufficientBalance,
    /// Unknown code, or a code of the other mode (test/live).
    Unknown,
    /// Past its expiry date.
    Expired,
    /// Blocked by an operator.
    Blocked,
    /// Voucher currency differs from the payment currency.
    CurrencyMismatch,
    /// The voucher's merchant allow-list excludes this merchant.
    NotAccepted,
    /// The order is below the voucher's minimum order amount.
    MinimumOrderNotMet,
    /// A single-use voucher that was already used.
    AlreadyUsed,
    /// The remembered-voucher token is unknown, expired or revoked.
    TokenInvalid,
}

impl DeclineReason {
    /// Stable machine code.
    pub fn code(self) -> &'static str {
        match self {
            Self::InsufficientBalance => "insufficient_balance",
            Self::Unknown => "voucher_declined",
            Self::Expired => "voucher_expired",
            Self::Blocked => "voucher_blocked",
            Self::CurrencyMismatch => "voucher_currency_mismatch",
            Self::NotAccepted => "voucher_not_accepted",
            Self::MinimumOrderNotMet => "minimum_order_not_met",
            Self::AlreadyUsed => "voucher_already_used",
            Self::TokenInvalid => "voucher_token_invalid",
        }
    }

    /// Human-readable explanation (safe to show a shopper).
    pub fn message(self) -> &'static str {
        match self {
            Self::InsufficientBalance => "The vouchers' balance does not cover the amount.",
            Self::Unknown => "This voucher cannot be used.",
            Self::Expired => "This voucher has expired.",
            Self::Blocked => "This voucher has been blocked.",
            Self::CurrencyMismatch => "This voucher is in another currency than the order.",
            Self::NotAccepted => "This voucher is not accepted by this shop.",
            Self::MinimumOrderNotMet => "The order is below this voucher's minimum amount.",
            Self::AlreadyUsed => "This single-use voucher has already been used.",
            Self::TokenInvalid => "The remembered voucher is no longer available.",
        }
    }
}

/// Every error the API answers with. Each variant names its HTTP status.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: one or more fields are invalid (all of them are listed).
    #[error("invalid request")]
    InvalidRequest(Vec<FieldError>),
    /// 400: the body is not the JSON this operation expects.
    #[error("malformed request body: {0}")]
    MalformedBody(String),
    /// 400: a money field was sent as a JSON number (`amount_not_a_string`).
    #[error("amount sent as a JSON number")]
    AmountNotAString,
    /// 400: the Idempotency-Key was used with another request body.
    #[error("idempotency key reused with a different request")]
    IdempotencyMismatch,
    /// 401: no API key, or an unknown, revoked or expired one.
    #[error("authentication failed")]
    Unauthenticated { code: &'static str },
    /// 403: a key of the wrong kind for this endpoint.
    #[error("wrong key kind: {code}")]
    WrongKeyKind { code: &'static str },
    /// 402: the payment (or check) was declined because of a voucher.
    #[error("declined: {reason:?}")]
    Declined {
        reason: DeclineReason,
        param: Option<String>,
    },
    /// 403: the merchant account is disabled or the request is not allowed for it.
    #[error("forbidden: {code}")]
    Forbidden { code: &'static str, message: String },
    /// 404: no such resource visible to this key.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// 409: this order already has a successful payment.
    #[error("order already paid")]
    OrderAlreadyPaid { transaction_id: String },
    /// 409: a request with this Idempotency-Key is still being processed.
    #[error("idempotency key in flight")]
    IdempotencyInFlight,
    /// 409: the request conflicts with the state of a resource (e.g. a refund onto a
    /// blocked voucher: `voucher_blocked`).
    #[error("conflict: {code}")]
    Conflict { code: &'static str, message: String },
    /// The stored answer to an earlier request with the same Idempotency-Key, replayed as
    /// it was given (status and body).
    #[error("replayed answer with status {status}")]
    Replayed { status: u16, body: Box<ErrorBody> },
    /// 429: too many requests; retry after the given delay.
    #[error("rate limited")]
    RateLimited { retry_after: Duration },
    /// 500: anything unexpected; logged with its cause, answered opaquely.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<sea_orm::DbErr> for ApiError {
    fn from(err: sea_orm::DbErr) -> Self {
        ApiError::Internal(anyhow::Error::new(err))
    }
}

/// The error envelope: `{"error": {...}}`, the same for every operation and status.
#[derive(Debug, Clone, Object, serde::Serialize, serde::Deserialize)]
#[oai(example)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// What went wrong, for machines (`type`, `code`) and humans (`message`).
#[derive(Debug, Clone, Object, serde::Serialize, serde::Deserialize)]
pub struct ErrorDetail {
    /// Error family: `invalid_request_error`, `idempotency_error`, `authentication_error`,
    /// `permission_error`, `voucher_error`, `conflict_error`, `rate_limit_error`, `api_error`.
    #[oai(rename = "type")]
    #[serde(rename = "type")]
    pub kind: String,
    /// Stable machine-readable code, e.g. `insufficient_balance`.
    pub code: String,
    /// Human-readable explanation.
    pub message: String,
    /// The request field at fault, e.g. `amount` or `vouchers[1].code`.
    #[oai(skip_serializing_if_is_none)]
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub param: Option<String>,
    /// Every invalid field, for 400 responses listing several.
    #[oai(skip_serializing_if_is_none)]
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub errors: Option<Vec<FieldErrorBody>>,
    /// For `order_already_paid`: the id of the successful transaction.
    #[oai(skip_serializing_if_is_none)]
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub transaction_id: Option<String>,
    /// For 429: seconds to wait before retrying (also in the Retry-After header).
    #[oai(skip_serializing_if_is_none)]
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub retry_after: Option<u64>,
    /// Quote it when contacting support; it finds the request in the logs.
    pub request_id: String,
}

/// One invalid field.
#[derive(Debug, Clone, Object, serde::Serialize, serde::Deserialize)]
pub struct FieldErrorBody {
    /// Path of the field, e.g. `amount`, `vouchers[0].code`.
    pub param: String,
    /// Stable code, e.g. `amount_too_many_decimals`.
    pub code: String,
    /// Human-readable explanation.
    pub message: String,
}

impl poem_openapi::types::Example for ErrorBody {
    fn example() -> Self {
        ErrorBody {
            error: ErrorDetail {
                kind: "voucher_error".into(),
                code: "insufficient_balance".into(),
                message: DeclineReason::InsufficientBalance.message().into(),
                param: Some("vouchers".into()),
                errors: None,
                transaction_id: None,
                retry_after: None,
                request_id: "req_4f1c2b0e8d6a4a51b3c7e9d2f0a1b2c3".into(),
            },
        }
    }
}

impl ApiError {
    /// HTTP status of this error.
    pub fn status(&self) -> u16 {
        match self {
            Self::InvalidRequest(_)
            | Self::MalformedBody(_)
            | Self::AmountNotAString
            | Self::IdempotencyMismatch => 400,
            Self::Unauthenticated { .. } => 401,
            Self::Declined { .. } => 402,
            Self::WrongKeyKind { .. } | Self::Forbidden { .. } => 403,
            Self::NotFound(_) => 404,
            Self::OrderAlreadyPaid { .. } | Self::IdempotencyInFlight | Self::Conflict { .. } => {
                409
            }
            Self::Replayed { status, .. } => *status,
            Self::RateLimited { .. } => 429,
            Self::Internal(_) => 500,
        }
    }

    /// Stable machine code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidRequest(errors) => {
                errors.first().map(|e| e.code).unwrap_or("invalid_request")
            }
            Self::MalformedBody(_) => "malformed_body",
            Self::AmountNotAString => "amount_not_a_string",
            Self::IdempotencyMismatch => "idempotency_key_reused",
            Self::Unauthenticated { code }
            | Self::WrongKeyKind { code }
            | Self::Forbidden { code, .. }
            | Self::Conflict { code, .. } => code,
            Self::Replayed { .. } => "replayed",
            Self::Declined { reason, .. } => reason.code(),
            Self::NotFound(_) => "resource_missing",
            Self::OrderAlreadyPaid { .. } => "order_already_paid",
            Self::IdempotencyInFlight => "idempotency_key_in_use",
            Self::RateLimited { .. } => "rate_limited",
            Self::Internal(_) => "internal_error",
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Self::InvalidRequest(_)
            | Self::MalformedBody(_)
            | Self::AmountNotAString
            | Self::NotFound(_) => "invalid_request_error",
            Self::IdempotencyMismatch | Self::IdempotencyInFlight => "idempotency_error",
            Self::Unauthenticated { .. } => "authentication_error",
            Self::WrongKeyKind { .. } | Self::Forbidden { .. } => "permission_error",
            Self::Declined { .. } => "voucher_error",
            Self::OrderAlreadyPaid { .. } | Self::Conflict { .. } => "conflict_error",
            Self::Replayed { .. } => "replayed",
            Self::RateLimited { .. } => "rate_limit_error",
            Self::Internal(_) => "api_error",
        }
    }

    fn message(&self) -> String {
        match self {
            Self::InvalidRequest(errors) => match errors.as_slice() {
                [one] => one.message.clone(),
                many => format!("{} fields are invalid; see `errors`.", many.len()),
            },
            Self::MalformedBody(detail) => format!("The request body could not be read: {detail}"),
            Self::AmountNotAString => "Amounts are decimal strings: send \"12.50\" in quotes, never the JSON number 12.5 (a float cannot be trusted to be exact).".into(),
            Self::IdempotencyMismatch => "This Idempotency-Key was already used with a different request body. Use a new key for a new request.".into(),
            Self::Unauthenticated { code: "missing_api_key" } => "No API key: send `Authorization: Bearer <key>`.".into(),
            Self::Unauthenticated { code: "invalid_admin_token" } => "The admin token is missing or wrong.".into(),
            Self::Unauthenticated { code: "invalid_authorization_scheme" } => "The Authorization header lacks the `Bearer` scheme: send `Authorization: Bearer <key>`, the word Bearer and a space before the key.".into(),
            Self::Unauthenticated { .. } => "The API key is unknown, revoked or expired.".into(),
            Self::WrongKeyKind { code: "secret_key_not_allowed" } => "A secret key must never be used in a browser. Use your publishable key (pk_...) here and roll the exposed secret key.".into(),
            Self::WrongKeyKind { .. } => "This endpoint needs a secret key (sk_...) from your server.".into(),
            Self::Forbidden { message, .. } | Self::Conflict { message, .. } => message.clone(),
            Self::Replayed { body, .. } => body.error.message.clone(),
            Self::Declined { reason, .. } => reason.message().into(),
            Self::NotFound(what) => format!("No such {what}."),
            Self::OrderAlreadyPaid { .. } => "This order has already been paid; see `transaction_id`.".into(),
            Self::IdempotencyInFlight => "A request with this Idempotency-Key is still being processed; retry shortly.".into(),
            Self::RateLimited { .. } => "Too many requests; retry after the delay in Retry-After.".into(),
            Self::Internal(_) => "An unexpected error occurred. Quote the request id when contacting support.".into(),
        }
    }

    fn param(&self) -> Option<String> {
        match self {
            Self::InvalidRequest(errors) => errors.first().map(|e| e.field.clone()),
            Self::Declined { param, .. } => param.clone(),
            _ => None,
        }
    }

    /// Seconds for Retry-After, rounded up.
    pub fn retry_after_secs(&self) -> Option<u64> {
        match self {
            Self::RateLimited { retry_after } => {
                Some(retry_after.as_millis().div_ceil(1000).max(1) as u64)
            }
            _ => None,
        }
    }

    /// The wire body. 500s are logged here with their cause, and never echoed.
    pub fn to_body(&self) -> ErrorBody {
        match self {
            Self::Internal(cause) => tracing::error!(error = ?cause, "internal error"),
            Self::Replayed { body, .. } => return (**body).clone(),
            _ => {}
        }
        ErrorBody {
            error: ErrorDetail {
                kind: self.kind().into(),
                code: self.code().into(),
                message: self.message(),
                param: self.param(),
                errors: match self {
                    Self::InvalidRequest(errors) => Some(
                        errors
                            .iter()
                            .map(|e| FieldErrorBody {
                                param: e.field.clone(),
                                code: e.code.into(),
                                message: e.message.clone(),
                            })
                            .collect(),
                    ),
                    _ => None,
                },
                transaction_id: match self {
                    Self::OrderAlreadyPaid { transaction_id } => Some(transaction_id.clone()),
                    _ => None,
                },
                retry_after: self.retry_after_secs(),
                request_id: current_request_id(),
            },
        }
    }
}

/// Implements `From<ApiError>` for an operation's response enum, mapping each status to
/// the variant that documents it. Variants follow one naming scheme: `BadRequest` (400),
/// `Unauthorized` (401), `PaymentRequired` (402), `Forbidden` (403), `NotFound` (404),
/// `Conflict` (409), `TooManyRequests` (429, with Retry-After) and `Internal` (500).
#[macro_export]
macro_rules! error_responses {
    ($ty:ty { $($status:literal => $variant:ident),* $(,)? }) => {
        impl From<$crate::api::error::ApiError> for $ty {
            fn from(err: $crate::api::error::ApiError) -> Self {
                #[allow(unused_variables)]
                let retry = err.retry_after_secs().unwrap_or(1);
                let body = poem_openapi::payload::Json(err.to_body());
                match err.status() {
                    $($status => $crate::error_responses!(@variant $variant, body, retry),)*
                    other => {
                        tracing::error!(status = other, "error status not documented for this operation");
                        Self::Internal(body)
                    }
                }
            }
        }
    };
    (@variant TooManyRequests, $body:ident, $retry:ident) => { Self::TooManyRequests($body, $retry) };
    (@variant $variant:ident, $body:ident, $retry:ident) => { Self::$variant($body) };
}

/// Declares the response enum of an operation called with a secret key: the variants given,
/// plus the 401 (bad key), 403 (publishable key sent) and 500 answers every such operation
/// documents alike, and the `From<ApiError>` mapping (`errors` lists the statuses of the
/// variants given; 401 and 403 are added here).
#[macro_export]
macro_rules! secret_key_response {
    (
        $(#[$meta:meta])*
        pub enum $name:ident { $($variants:tt)* }
        errors { $($status:literal => $variant:ident),* $(,)? }
    ) => {
        $(#[$meta])*
        #[derive(poem_openapi::ApiResponse)]
        pub enum $name {
            $($variants)*
            /// Missing, unknown, revoked or expired secret key.
            #[oai(status = 401)]
            Unauthorized(poem_openapi::payload::Json<$crate::api::error::ErrorBody>),
            /// A publishable key was sent; this endpoint needs the secret key.
            #[oai(status = 403)]
            Forbidden(poem_openapi::payload::Json<$crate::api::error::ErrorBody>),
            /// Unexpected error; quote `request_id`.
            #[oai(status = 500)]
            Internal(poem_openapi::payload::Json<$crate::api::error::ErrorBody>),
        }
        $crate::error_responses!($name { $($status => $variant,)* 401 => Unauthorized, 403 => Forbidden });
    };
}
