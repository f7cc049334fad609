//! The one error type of the HTTP layer and its wire shape.
//!
//! Layers: `superpayment_core` returns its own parse errors (`FieldError`, `AmountError` ...);
//! each domain module returns its own enum (`PayError`, `VerifyError`, `CheckError`,
//! `RefundError`, `CheckoutError`, `KeyError`, `WebhookError`, `TransactionsError`,
//! `AdminError`, `LifecycleError`, `ReportError`, `PayoutError`, `AuthError`,
//! `IdempotencyError`), which this module alone maps to
//! [`ApiError`]: status, code and the message that says what to do; handlers return
//! [`ApiError`]; `store` returns `anyhow::Error` / `DbErr`, which become
//! [`ApiError::Internal`] — logged with their cause and answered with an opaque 500
//! carrying only the request id, unless the cause is that the database cannot be reached
//! (`store::is_unavailable`): then a retryable `503 service_unavailable` with Retry-After.
//! This is the one place that tells the two apart.
use std::time::Duration;

use poem_openapi::Object;
use superpayment_core::FieldError;

use crate::{
    admin::AdminError,
    auth::AuthError,
    checkout::CheckoutError,
    idempotency::{IdempotencyError, StoredAnswer},
    keys::KeyError,
    lifecycle::LifecycleError,
    payments::{holds::HoldError, CheckError, PayError, VerifyError},
    refunds::RefundError,
    reports::{payouts::PayoutError, ReportError},
    transactions::TransactionsError,
    webhooks::{endpoints::MAX_ROTATION_OVERLAP, WebhookError},
};

pub use crate::payments::DeclineReason;
use crate::telemetry::current_request_id;

/// Every error the API answers with. Each variant names its HTTP status.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: one or more fields are invalid (all of them are listed).
    #[error("invalid request")]
    InvalidRequest(Vec<FieldError>),
    /// 400: the body is not the JSON this operation expects.
    #[error("malformed request body: {0}")]
    MalformedBody(String),
    /// 400: the body is not sent as `application/json` (`unsupported_media_type`).
    #[error("unsupported media type")]
    UnsupportedMediaType,
    /// 405: the path exists, the method does not (`method_not_allowed`); the message says
    /// which methods it takes.
    #[error("method not allowed")]
    MethodNotAllowed(String),
    /// 404: no endpoint at this path (`resource_missing`); the message says what is wrong.
    #[error("no endpoint")]
    NoEndpoint(String),
    /// 411: a body without Content-Length or chunked encoding (`length_required`).
    #[error("length required")]
    LengthRequired,
    /// 413: the body is over the limit (`body_too_large`).
    #[error("body too large")]
    BodyTooLarge,
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
    /// 429: too many failed voucher attempts from this client or on this code (guessing
    /// lockout); retry after the cool-down.
    #[error("too many failed attempts")]
    TooManyFailedAttempts { retry_after: Duration },
    /// 429: too many bad credentials (malformed, unknown, revoked or expired API keys, a
    /// wrong admin token) from this client address; retry after the cool-down.
    #[error("too many failed authentications")]
    TooManyFailedAuthentications { retry_after: Duration },
    /// 503: the request ran longer than REQUEST_TIMEOUT and was abandoned
    /// (`request_timeout`); retry after Retry-After, with the same Idempotency-Key.
    #[error("request timed out")]
    RequestTimeout,
    /// 500: anything unexpected; logged with its cause, answered opaquely. 503
    /// `service_unavailable` with Retry-After instead when the cause is that the database
    /// cannot be reached right now (down, restarting, pool exhausted): the client retries,
    /// with the same Idempotency-Key for a money call.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// What a `503 service_unavailable` asks the client to wait before retrying: about the
/// time a PostgreSQL restart or failover takes to accept connections again.
pub const UNAVAILABLE_RETRY_AFTER: Duration = Duration::from_secs(2);

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
            | Self::UnsupportedMediaType
            | Self::IdempotencyMismatch => 400,
            Self::MethodNotAllowed(_) => 405,
            Self::LengthRequired => 411,
            Self::BodyTooLarge => 413,
            Self::Unauthenticated { .. } => 401,
            Self::Declined { .. } => 402,
            Self::WrongKeyKind { .. } | Self::Forbidden { .. } => 403,
            Self::NotFound(_) | Self::NoEndpoint(_) => 404,
            Self::OrderAlreadyPaid { .. } | Self::IdempotencyInFlight | Self::Conflict { .. } => {
                409
            }
            Self::Replayed { status, .. } => *status,
            Self::RateLimited { .. }
            | Self::TooManyFailedAttempts { .. }
            | Self::TooManyFailedAuthentications { .. } => 429,
            Self::Internal(_) if self.is_unavailable() => 503,
            Self::RequestTimeout => 503,
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
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::MethodNotAllowed(_) => "method_not_allowed",
            Self::LengthRequired => "length_required",
            Self::BodyTooLarge => "body_too_large",
            Self::IdempotencyMismatch => "idempotency_key_reused",
            Self::Unauthenticated { code }
            | Self::WrongKeyKind { code }
            | Self::Forbidden { code, .. }
            | Self::Conflict { code, .. } => code,
            Self::Replayed { .. } => "replayed",
            Self::Declined { reason, .. } => reason.code(),
            Self::NotFound(_) | Self::NoEndpoint(_) => "resource_missing",
            Self::OrderAlreadyPaid { .. } => "order_already_paid",
            Self::IdempotencyInFlight => "idempotency_key_in_use",
            Self::RateLimited { .. } => "rate_limited",
            Self::TooManyFailedAttempts { .. } => "too_many_failed_attempts",
            Self::TooManyFailedAuthentications { .. } => "too_many_failed_authentications",
            Self::Internal(_) if self.is_unavailable() => "service_unavailable",
            Self::RequestTimeout => "request_timeout",
            Self::Internal(_) => "internal_error",
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Self::InvalidRequest(_)
            | Self::MalformedBody(_)
            | Self::AmountNotAString
            | Self::UnsupportedMediaType
            | Self::MethodNotAllowed(_)
            | Self::LengthRequired
            | Self::BodyTooLarge
            | Self::NoEndpoint(_)
            | Self::NotFound(_) => "invalid_request_error",
            Self::IdempotencyMismatch | Self::IdempotencyInFlight => "idempotency_error",
            Self::Unauthenticated { .. } => "authentication_error",
            Self::WrongKeyKind { .. } | Self::Forbidden { .. } => "permission_error",
            Self::Declined { .. } => "voucher_error",
            Self::OrderAlreadyPaid { .. } | Self::Conflict { .. } => "conflict_error",
            Self::Replayed { .. } => "replayed",
            Self::RateLimited { .. }
            | Self::TooManyFailedAttempts { .. }
            | Self::TooManyFailedAuthentications { .. } => "rate_limit_error",
            Self::Internal(_) | Self::RequestTimeout => "api_error",
        }
    }

    fn message(&self) -> String {
        match self {
            Self::InvalidRequest(errors) => match errors.as_slice() {
                [one] => one.message.clone(),
                many => format!("{} fields are invalid; see `errors`.", many.len()),
            },
            Self::MalformedBody(detail) => format!("The request body could not be read: {detail}"),
            Self::UnsupportedMediaType => "The body must be JSON: send `Content-Type: application/json` (and `{}` when there is nothing to say).".into(),
            Self::MethodNotAllowed(message) | Self::NoEndpoint(message) => message.clone(),
            Self::LengthRequired => "Send the body with a Content-Length header (or chunked).".into(),
            Self::BodyTooLarge => "The body is larger than this API accepts (64 KiB).".into(),
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
            Self::TooManyFailedAttempts { .. } => "Too many voucher codes were declined; retry after the delay in Retry-After.".into(),
            Self::TooManyFailedAuthentications { .. } => "Too many requests from this address carried an invalid API key or admin token; check the key, and retry after the delay in Retry-After.".into(),
            Self::RequestTimeout => "The request took longer than this server allows and was abandoned; nothing was changed unless a retry says so. Retry after the delay in Retry-After, with the same Idempotency-Key.".into(),
            Self::Internal(_) if self.is_unavailable() => "The service is briefly unavailable; nothing was changed unless a retry says so. Retry after the delay in Retry-After, with the same Idempotency-Key.".into(),
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

    /// `Idempotent-Replayed: true` for the stored answer of an earlier request with the same
    /// Idempotency-Key (a kept decline), as on a replayed success.
    pub fn replayed_header(&self) -> Option<String> {
        matches!(self, Self::Replayed { .. }).then(|| "true".to_owned())
    }

    /// Seconds for Retry-After, rounded up.
    pub fn retry_after_secs(&self) -> Option<u64> {
        let wait = match self {
            Self::RateLimited { retry_after }
            | Self::TooManyFailedAttempts { retry_after }
            | Self::TooManyFailedAuthentications { retry_after } => *retry_after,
            Self::Internal(_) if self.is_unavailable() => UNAVAILABLE_RETRY_AFTER,
            Self::RequestTimeout => UNAVAILABLE_RETRY_AFTER,
            _ => return None,
        };
        Some(wait.as_millis().div_ceil(1000).max(1) as u64)
    }

    /// An internal error whose cause is that the database cannot be reached.
    fn is_unavailable(&self) -> bool {
        matches!(self, Self::Internal(cause) if crate::store::is_unavailable(cause))
    }

    /// The wire body. 500s and 503s are logged here with their cause, and never echoed.
    pub fn to_body(&self) -> ErrorBody {
        if let Self::Internal(cause) = self {
            if self.is_unavailable() {
                tracing::error!(error = ?cause, "database unavailable");
            } else {
                tracing::error!(error = ?cause, "internal error");
            }
        }
        self.body()
    }

    /// The wire body, without logging (the documentation's examples).
    pub fn body(&self) -> ErrorBody {
        if let Self::Replayed { body, .. } = self {
            return (**body).clone();
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
/// `Conflict` (409), `TooManyRequests` (429, with Retry-After) and `Internal` (500); every
/// operation has `ServiceUnavailable` (503, with Retry-After), which this maps itself.
#[macro_export]
macro_rules! error_responses {
    ($ty:ty { $($status:literal => $variant:ident $(+ $replayable:ident)?),* $(,)? }) => {
        impl From<$crate::api::error::ApiError> for $ty {
            fn from(err: $crate::api::error::ApiError) -> Self {
                #[allow(unused_variables)]
                let retry = err.retry_after_secs().unwrap_or(1);
                #[allow(unused_variables)]
                let replayed = err.replayed_header();
                let body = poem_openapi::payload::Json(err.to_body());
                match err.status() {
                    $($status => $crate::error_responses!(@variant $variant $($replayable)?, body, retry, replayed),)*
                    500 => Self::Internal(body),
                    503 => Self::ServiceUnavailable(body, retry),
                    other => {
                        tracing::error!(status = other, "error status not documented for this operation");
                        Self::Internal(body)
                    }
                }
            }
        }
    };
    (@variant TooManyRequests, $body:ident, $retry:ident, $replayed:ident) => { Self::TooManyRequests($body, $retry) };
    // An operation behind the gateway's rate limits also declares its `RateLimit` headers,
    // which the gateway sets on the way out.
    (@variant RateLimited, $body:ident, $retry:ident, $replayed:ident) => { Self::RateLimited($body, $retry, None, None) };
    // A failure an Idempotency-Key keeps (`402 => PaymentRequired + replayable`): its replay
    // carries `Idempotent-Replayed: true`, as a replayed success does.
    (@variant $variant:ident replayable, $body:ident, $retry:ident, $replayed:ident) => { Self::$variant($body, $replayed) };
    (@variant $variant:ident, $body:ident, $retry:ident, $replayed:ident) => { Self::$variant($body) };
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
            /// Too many requests with this key (`rate_limited`, see the `RateLimit-Policy`
            /// and `RateLimit` headers), or too many bad credentials from this client
            /// (`too_many_failed_authentications`); wait `Retry-After` seconds.
            #[oai(status = 429)]
            RateLimited(
                poem_openapi::payload::Json<$crate::api::error::ErrorBody>,
                #[oai(header = "Retry-After")] u64,
                #[oai(header = "RateLimit-Policy")] Option<String>,
                #[oai(header = "RateLimit")] Option<String>,
            ),
            /// Unexpected error; quote `request_id`.
            #[oai(status = 500)]
            Internal(poem_openapi::payload::Json<$crate::api::error::ErrorBody>),
            /// The database cannot be reached right now (`service_unavailable`); retry after
            /// `Retry-After` seconds.
            #[oai(status = 503)]
            ServiceUnavailable(
                poem_openapi::payload::Json<$crate::api::error::ErrorBody>,
                #[oai(header = "Retry-After")] u64,
            ),
        }
        $crate::error_responses!($name { $($status => $variant,)* 401 => Unauthorized, 403 => Forbidden, 429 => RateLimited });
    };
}

/// A 400 naming one field.
pub(crate) fn invalid(
    field: impl Into<String>,
    code: &'static str,
    message: impl Into<String>,
) -> ApiError {
    ApiError::InvalidRequest(vec![FieldError::new(field, code, message)])
}

impl From<AuthError> for ApiError {
    fn from(err: AuthError) -> Self {
        match err {
            AuthError::MissingKey => ApiError::Unauthenticated {
                code: "missing_api_key",
            },
            AuthError::InvalidKey => ApiError::Unauthenticated {
                code: "invalid_api_key",
            },
            AuthError::InvalidAdminToken => ApiError::Unauthenticated {
                code: "invalid_admin_token",
            },
            AuthError::SecretKeyNotAllowed => ApiError::WrongKeyKind {
                code: "secret_key_not_allowed",
            },
            AuthError::SecretKeyRequired => ApiError::WrongKeyKind {
                code: "secret_key_required",
            },
            AuthError::MerchantDisabled => ApiError::Forbidden {
                code: "merchant_disabled",
                message: "This merchant account is disabled.".into(),
            },
            AuthError::Internal(e) => ApiError::Internal(e),
        }
    }
}

impl From<IdempotencyError> for ApiError {
    fn from(err: IdempotencyError) -> Self {
        match err {
            IdempotencyError::InvalidKey => invalid(
                "Idempotency-Key",
                "invalid_idempotency_key",
                "The Idempotency-Key header must be 1 to 255 visible ASCII characters.",
            ),
            IdempotencyError::KeyReused => ApiError::IdempotencyMismatch,
            IdempotencyError::InFlight => ApiError::IdempotencyInFlight,
            IdempotencyError::StoredFailure { status, body } => {
                match serde_json::from_str::<ErrorBody>(&body) {
                    Ok(body) => ApiError::Replayed {
                        status,
                        body: Box::new(body),
                    },
                    Err(e) => ApiError::Internal(
                        anyhow::Error::new(e).context("reading a stored idempotent answer"),
                    ),
                }
            }
            IdempotencyError::Internal(e) => ApiError::Internal(e),
        }
    }
}

impl From<CheckoutError> for ApiError {
    fn from(err: CheckoutError) -> Self {
        match err {
            CheckoutError::SignatureRequired => invalid(
                "signature",
                "signature_required",
                "This shop requires signed amounts: add data-signature, the HMAC of order id, amount and currency, to the script tag.",
            ),
            CheckoutError::SignatureInvalid => invalid(
                "signature",
                "signature_invalid",
                "The signature does not match this order id, amount and currency; the page may have been altered.",
            ),
            CheckoutError::TokenInvalid { param } => ApiError::Declined {
                reason: DeclineReason::TokenInvalid,
                param,
            },
            CheckoutError::DuplicateVoucher { param } => invalid(
                param,
                "duplicate_voucher",
                "This voucher is already part of the payment.",
            ),
            CheckoutError::Invalid(errors) => ApiError::InvalidRequest(errors),
            CheckoutError::VoucherNotFound => ApiError::NotFound("voucher"),
            CheckoutError::Internal(e) => ApiError::Internal(e),
        }
    }
}

impl From<PayError> for ApiError {
    fn from(err: PayError) -> Self {
        match err {
            PayError::Declined { reason, param } => ApiError::Declined {
                reason: reason.shown_to_shopper(),
                param,
            },
            PayError::OrderAlreadyPaid { transaction_id } => {
                ApiError::OrderAlreadyPaid { transaction_id }
            }
            PayError::Checkout(e) => e.into(),
            PayError::Idempotency(e) => e.into(),
            PayError::TooManyFailedAttempts { retry_after } => {
                ApiError::TooManyFailedAttempts { retry_after }
            }
            PayError::Internal(e) => ApiError::Internal(e),
        }
    }
}

/// The status and body a kept failure was answered with.
fn answer(err: ApiError) -> Option<(u16, String)> {
    Some((err.status(), serde_json::to_string(&err.to_body()).ok()?))
}

impl StoredAnswer for PayError {
    fn stored_answer(&self) -> Option<(u16, String)> {
        answer(match self {
            PayError::Declined { reason, param } => ApiError::Declined {
                reason: reason.shown_to_shopper(),
                param: param.clone(),
            },
            PayError::OrderAlreadyPaid { transaction_id } => ApiError::OrderAlreadyPaid {
                transaction_id: transaction_id.clone(),
            },
            PayError::Checkout(CheckoutError::TokenInvalid { param }) => ApiError::Declined {
                reason: DeclineReason::TokenInvalid,
                param: param.clone(),
            },
            _ => return None,
        })
    }
}

impl From<VerifyError> for ApiError {
    fn from(err: VerifyError) -> Self {
        match err {
            VerifyError::MissingReference => invalid(
                "transaction_id",
                "missing_transaction_reference",
                "Give transaction_id or order_id.",
            ),
            VerifyError::InvalidExpectedAmount(e) => ApiError::InvalidRequest(vec![e]),
            VerifyError::TransactionNotFound => ApiError::NotFound("transaction"),
            VerifyError::Internal(e) => ApiError::Internal(e),
        }
    }
}

impl From<CheckError> for ApiError {
    fn from(err: CheckError) -> Self {
        match err {
            CheckError::TooManyFailedAttempts { retry_after } => {
                ApiError::TooManyFailedAttempts { retry_after }
            }
            CheckError::Internal(e) => ApiError::Internal(e),
        }
    }
}

impl From<RefundError> for ApiError {
    fn from(err: RefundError) -> Self {
        match err {
            RefundError::ReasonTooLong => invalid(
                "reason",
                "reason_too_long",
                format!(
                    "The reason may have at most {} characters.",
                    crate::refunds::MAX_REASON_LEN
                ),
            ),
            RefundError::InvalidAmount(e) => ApiError::InvalidRequest(vec![e]),
            RefundError::TransactionNotFound => ApiError::NotFound("transaction"),
            RefundError::FullyRefunded => invalid(
                "amount",
                "transaction_fully_refunded",
                "This transaction has already been refunded in full.",
            ),
            RefundError::ExceedsRemaining {
                remaining,
                currency,
            } => invalid(
                "amount",
                "refund_exceeds_remaining",
                format!(
                    "At most {remaining} {} of this transaction can still be refunded.",
                    currency.code()
                ),
            ),
            RefundError::NotCaptured { status } => ApiError::Conflict {
                code: "transaction_not_captured",
                message: format!(
                    "This transaction is {}: only captured money can be refunded. Cancel an authorized payment instead.",
                    status.as_str()
                ),
            },
            RefundError::VoucherBlocked { last4 } => ApiError::Conflict {
                code: "voucher_blocked",
                message: format!(
                    "The voucher ending in {last4} that this refund would credit is blocked; an operator must unblock it before it can be refunded."
                ),
            },
            RefundError::Idempotency(e) => e.into(),
            RefundError::Internal(e) => ApiError::Internal(e),
        }
    }
}

impl From<HoldError> for ApiError {
    fn from(err: HoldError) -> Self {
        match err {
            HoldError::InvalidAmount(e) => ApiError::InvalidRequest(vec![e]),
            HoldError::TransactionNotFound => ApiError::NotFound("transaction"),
            HoldError::NotAuthorized { status } => ApiError::Conflict {
                code: "transaction_not_authorized",
                message: format!(
                    "This transaction is {}, not authorized: only an authorized payment can be captured or canceled, once.",
                    status.as_str()
                ),
            },
            HoldError::ExceedsHeld { held, currency } => invalid(
                "amount",
                "capture_exceeds_authorized",
                format!(
                    "At most the {held} {} held can be captured.",
                    currency.code()
                ),
            ),
            HoldError::Idempotency(e) => e.into(),
            HoldError::Internal(e) => ApiError::Internal(e),
        }
    }
}

/// A capture or cancel keeps no failure: a retry with the same key runs again (and finds
/// the hold in the state the first request left it).
impl StoredAnswer for HoldError {
    fn stored_answer(&self) -> Option<(u16, String)> {
        None
    }
}

/// A refund keeps no failure: a retry with the same key runs again.
impl StoredAnswer for RefundError {
    fn stored_answer(&self) -> Option<(u16, String)> {
        None
    }
}

impl From<KeyError> for ApiError {
    fn from(err: KeyError) -> Self {
        match err {
            KeyError::InvalidKind => invalid(
                "kind",
                "invalid_key_kind",
                "kind must be \"publishable\" or \"secret\".",
            ),
            KeyError::OverlapTooLong => invalid(
                "expires_in_seconds",
                "overlap_too_long",
                format!(
                    "A rolled key may keep working for at most {} seconds (7 days).",
                    crate::keys::MAX_ROLL_OVERLAP.as_secs()
                ),
            ),
            KeyError::Inactive => invalid(
                "id",
                "key_inactive",
                "This key is revoked or already rolled; roll its replacement, or revoke it to stop it early.",
            ),
            KeyError::NotFound => ApiError::NotFound("API key"),
            KeyError::Internal(e) => ApiError::Internal(e),
        }
    }
}

impl From<WebhookError> for ApiError {
    fn from(err: WebhookError) -> Self {
        match err {
            WebhookError::InvalidUrl(e) => invalid("url", e.code(), e.to_string()),
            WebhookError::OverlapTooLong => invalid(
                "overlap_seconds",
                "overlap_too_long",
                format!(
                    "The overlap may be at most {} seconds (7 days).",
                    MAX_ROTATION_OVERLAP.as_secs()
                ),
            ),
            WebhookError::EndpointDisabled => invalid(
                "url",
                "webhook_endpoint_disabled",
                "The webhook endpoint is disabled; set its URL again to enable it.",
            ),
            WebhookError::NoEnabledEndpoint => invalid(
                "id",
                "no_enabled_webhook_endpoint",
                "There is no enabled webhook endpoint to deliver to.",
            ),
            WebhookError::EndpointNotFound => ApiError::NotFound("webhook endpoint"),
            WebhookError::EventNotFound => ApiError::NotFound("event"),
            WebhookError::Internal(e) => ApiError::Internal(e),
        }
    }
}

impl From<TransactionsError> for ApiError {
    fn from(err: TransactionsError) -> Self {
        match err {
            TransactionsError::InvalidFilter(e) => ApiError::InvalidRequest(vec![e]),
            TransactionsError::NotFound => ApiError::NotFound("transaction"),
            TransactionsError::Internal(e) => ApiError::Internal(e),
        }
    }
}

impl From<LifecycleError> for ApiError {
    fn from(err: LifecycleError) -> Self {
        match err {
            LifecycleError::Invalid(e) => ApiError::InvalidRequest(vec![e]),
            LifecycleError::VoucherNotFound => ApiError::NotFound("voucher"),
            LifecycleError::Conflict { code, message } => ApiError::Conflict { code, message },
            LifecycleError::Idempotency(e) => e.into(),
            LifecycleError::Internal(e) => ApiError::Internal(e),
        }
    }
}

/// A refused activity keeps no failure: a retry with the same key runs again (and finds
/// the voucher as it is then).
impl StoredAnswer for LifecycleError {
    fn stored_answer(&self) -> Option<(u16, String)> {
        None
    }
}

impl From<AdminError> for ApiError {
    fn from(err: AdminError) -> Self {
        match err {
            AdminError::Invalid(e) => ApiError::InvalidRequest(vec![e]),
            AdminError::MerchantNotFound => ApiError::NotFound("merchant"),
            AdminError::VoucherNotFound => ApiError::NotFound("voucher"),
            AdminError::Internal(e) => ApiError::Internal(e),
        }
    }
}

impl From<ReportError> for ApiError {
    fn from(err: ReportError) -> Self {
        match err {
            ReportError::Invalid(e) => ApiError::InvalidRequest(vec![e]),
            ReportError::Internal(e) => ApiError::Internal(e),
        }
    }
}

impl From<PayoutError> for ApiError {
    fn from(err: PayoutError) -> Self {
        match err {
            PayoutError::Invalid(e) => ApiError::InvalidRequest(vec![e]),
            PayoutError::MerchantNotFound => ApiError::NotFound("merchant"),
            PayoutError::ExceedsPayable { payable, currency } => invalid(
                "amount",
                "payout_exceeds_payable",
                format!(
                    "The merchant is owed {payable} {}; a payout cannot exceed it.",
                    currency.code()
                ),
            ),
            PayoutError::Idempotency(e) => e.into(),
            PayoutError::Internal(e) => ApiError::Internal(e),
        }
    }
}

/// A payout keeps no failure: a retry with the same key runs again (and is checked against
/// the payable as it then stands).
impl StoredAnswer for PayoutError {
    fn stored_answer(&self) -> Option<(u16, String)> {
        None
    }
}
