//! POST /api/vouchers/check: balance and validity of a code before paying.
use poem::Request;
use poem_openapi::{payload::Json, ApiResponse, Object, OpenApi};
use superpayment_core::{validate_voucher_check, KeyKind};

use super::{
    error::{ApiError, ErrorBody},
    security::PublishableKey,
    ApiTags,
};
use crate::{auth::authenticate, error_responses, gateway::ClientAddr, payments, state::AppState};

/// Voucher operations of the checkout widget.
pub struct VouchersApi {
    state: AppState,
}

impl VouchersApi {
    pub fn new(state: AppState) -> Self {
        Self { state }
    }
}

/// A code to check.
#[derive(Object)]
#[oai(example)]
pub struct VoucherCheckRequest {
    /// `XXXX-XXXX-XXXX-XXXX`; case, spaces and dashes are free, I/L read as 1 and O as 0.
    pub code: String,
}

impl poem_openapi::types::Example for VoucherCheckRequest {
    fn example() -> Self {
        VoucherCheckRequest {
            code: crate::testmode::MAGIC_VOUCHERS[0].code.into(),
        }
    }
}

/// What the shopper may know about a voucher.
#[derive(Object)]
pub struct VoucherCheck {
    /// True when the voucher can pay at this shop now.
    pub valid: bool,
    /// When not valid: the decline code a payment would get (the one uniform
    /// `voucher_declined` for unknown, expired and blocked codes).
    #[oai(skip_serializing_if_is_none)]
    pub reason: Option<String>,
    /// Remaining balance (absent for unknown, expired and blocked codes).
    #[oai(skip_serializing_if_is_none)]
    pub balance: Option<String>,
    #[oai(skip_serializing_if_is_none)]
    pub currency: Option<String>,
    /// RFC 3339; absent when the voucher does not expire.
    #[oai(skip_serializing_if_is_none)]
    pub expires_at: Option<String>,
    pub last4: String,
    /// `true` when a payment must give the voucher's PIN with its code (ask the shopper
    /// for it); absent otherwise, and for unknown codes.
    #[oai(skip_serializing_if_is_none)]
    pub pin_required: Option<bool>,
}

#[derive(ApiResponse)]
pub enum CheckVoucherResponse {
    /// The answer, valid or not (unknown, expired and blocked codes get one uniform
    /// `valid: false, reason: "voucher_declined"` and no balance). While the operator's
    /// check limit is on, every answer of this operation carries `RateLimit-Policy`
    /// (`"per-client";q=<checks>;w=60`: per key and client address) and `RateLimit` (`"per-client";r=<left>;t=<seconds until whole>`).
    #[oai(status = 200)]
    Ok(
        Json<VoucherCheck>,
        #[oai(header = "RateLimit-Policy")] Option<String>,
        #[oai(header = "RateLimit")] Option<String>,
    ),
    /// The code is malformed (wrong length, symbol or check symbol).
    #[oai(status = 400)]
    BadRequest(Json<ErrorBody>),
    /// Missing, unknown, revoked or expired publishable key.
    #[oai(status = 401)]
    Unauthorized(Json<ErrorBody>),
    /// A secret key was sent (never put one in a page).
    #[oai(status = 403)]
    Forbidden(Json<ErrorBody>),
    /// Too many checks with this key from this client address (`rate_limited`, see the
    /// `RateLimit-Policy` and `RateLimit` headers), or too many declined voucher codes from
    /// this client or on this code (`too_many_failed_attempts`), or too many bad keys from
    /// this client (`too_many_failed_authentications`); wait `Retry-After` seconds.
    #[oai(status = 429)]
    RateLimited(
        Json<ErrorBody>,
        #[oai(header = "Retry-After")] u64,
        #[oai(header = "RateLimit-Policy")] Option<String>,
        #[oai(header = "RateLimit")] Option<String>,
    ),
    /// Unexpected error; quote `request_id`.
    #[oai(status = 500)]
    Internal(Json<ErrorBody>),
    /// The database cannot be reached right now (`service_unavailable`); retry after
    /// `Retry-After` seconds.
    #[oai(status = 503)]
    ServiceUnavailable(Json<ErrorBody>, #[oai(header = "Retry-After")] u64),
}

error_responses!(CheckVoucherResponse {
    400 => BadRequest,
    401 => Unauthorized,
    403 => Forbidden,
    429 => RateLimited,
});

#[OpenApi(tag = "ApiTags::Vouchers")]
impl VouchersApi {
    /// Check a voucher's balance
    ///
    /// Rate limited per key and client address, since it answers whether a code exists.
    #[oai(
        path = "/vouchers/check",
        method = "post",
        operation_id = "checkVoucher"
    )]
    async fn check(
        &self,
        auth: PublishableKey,
        body: Json<VoucherCheckRequest>,
        req: &Request,
    ) -> CheckVoucherResponse {
        let client = ClientAddr::of_request(req)
            .map(|c| c.to_string())
            .unwrap_or_else(|| "unknown".into());
        self.handle(auth, &body.code, &client)
            .await
            .unwrap_or_else(Into::into)
    }
}

impl VouchersApi {
    async fn handle(
        &self,
        auth: PublishableKey,
        code: &str,
        client: &str,
    ) -> Result<CheckVoucherResponse, ApiError> {
        let caller = authenticate(&self.state, Some(&auth.0.token), KeyKind::Publishable).await?;
        let code = validate_voucher_check(code).map_err(|e| ApiError::InvalidRequest(vec![e]))?;
        crate::testmode::refill_magic_code(&self.state, &caller, &code).await?;
        let status = payments::check_voucher(&self.state, &caller, client, &code).await?;
        Ok(CheckVoucherResponse::Ok(
            Json(VoucherCheck {
                valid: status.valid,
                reason: status.reason.map(str::to_owned),
                balance: status.balance.map(|b| b.to_string()),
                currency: status.currency.map(|c| c.code().to_owned()),
                expires_at: status.expires_at.map(crate::timestamps::rfc3339),
                last4: status.last4,
                pin_required: status.pin_required.then_some(true),
            }),
            // Set by the gateway on the way out (`gateway::limits`).
            None,
            None,
        ))
    }
}
