//! /api/admin: operator endpoints (merchants, keys, voucher issuance, blocking), ADMIN_TOKEN only.
use std::str::FromStr;

use poem_openapi::{payload::Json, ApiResponse, Object, OpenApi};
use superpayment_core::{Currency, Mode, Money, VoucherCode};
use time::OffsetDateTime;

use super::{
    amount::DecimalString,
    error::{invalid, ApiError, ErrorBody},
    security::AdminToken,
    ApiTags,
};
use crate::{
    admin::{self, IssueSpec},
    crypto::secrets_equal,
    error_responses,
    payments::{kinds, rules::VoucherRules},
    state::AppState,
    store::{self, entities::voucher::VoucherState},
    timestamps::rfc3339,
};

/// Operator endpoints.
pub struct AdminApi {
    state: AppState,
}

impl AdminApi {
    pub fn new(state: AppState) -> Self {
        Self { state }
    }

    fn check(&self, token: &AdminToken) -> Result<(), ApiError> {
        check_admin(&self.state, token)
    }
}

/// Refuses a request without the configured ADMIN_TOKEN (every /api/admin operation).
pub(crate) fn check_admin(state: &AppState, token: &AdminToken) -> Result<(), ApiError> {
    match &state.admin_token {
        Some(expected) if secrets_equal(expected.expose(), &token.0.token) => Ok(()),
        _ => Err(ApiError::Unauthenticated {
            code: "invalid_admin_token",
        }),
    }
}

/// A merchant to create.
#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct CreateMerchant {
    pub name: String,
    /// Commission in basis points (250 = 2.50%), 0 to 10000.
    pub commission_bps: u32,
    /// Mode of the keys created with it: `test` (default) or `live`.
    pub mode: Option<String>,
}

/// A merchant account.
#[derive(Object)]
pub struct MerchantBody {
    pub id: String,
    pub name: String,
    pub commission_bps: i32,
    pub status: String,
    /// Where its notification emails go (new API keys, a webhook endpoint disabled);
    /// absent: none are sent.
    #[oai(skip_serializing_if_is_none)]
    pub notify_email: Option<String>,
    pub created_at: String,
}

/// A merchant's notification address.
#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct SetNotifyEmail {
    /// An address (`ops@shop.example`, no display name), or null to send no more emails.
    pub email: Option<String>,
}

/// A new merchant with its keys: shown this once, stored only as hashes.
#[derive(Object)]
pub struct CreatedMerchant {
    pub merchant: MerchantBody,
    pub publishable_key: String,
    pub secret_key: String,
}

/// Vouchers to issue.
#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct IssueVouchers {
    pub currency: String,
    /// Face value of each voucher, e.g. `"50.00"`.
    pub amount: DecimalString,
    /// How many (1 to 10000).
    pub count: u32,
    /// RFC 3339 expiry; absent = never.
    pub expires_at: Option<String>,
    /// Restrict the vouchers to this merchant.
    pub merchant_id: Option<String>,
    /// `test` (default) or `live`.
    pub mode: Option<String>,
    /// Minimum order amount in the voucher's currency.
    pub min_order_amount: Option<DecimalString>,
    /// Usable for one payment only.
    pub single_use: Option<bool>,
    /// Can be loaded (topped up) after issuance.
    pub reloadable: Option<bool>,
    /// Issue the vouchers for this merchant: it manages them (activities, history) with
    /// its secret key. Absent: issued by SuperPayment, managed by the operator only.
    pub issuer_merchant_id: Option<String>,
    /// The voucher kind's rules, validated against the voucher rules JSON Schema
    /// (`single_use`, `merchants`, `min_order_amount`, `expires_at`,
    /// `expires_after_first_use_days`, `reloadable`; see docs/operations.md). Instead of
    /// `merchant_id`, `min_order_amount`, `single_use`, `reloadable` and `expires_at`,
    /// not with them.
    pub rules: Option<serde_json::Value>,
}

/// Issued vouchers: the codes are shown this once and never stored.
#[derive(Object)]
pub struct IssuedVouchers {
    pub vouchers: Vec<IssuedVoucherBody>,
}

/// One issued voucher.
#[derive(Object)]
pub struct IssuedVoucherBody {
    pub id: i64,
    /// `XXXX-XXXX-XXXX-XXXX`.
    pub code: String,
    pub last4: String,
    /// The voucher's PIN (kinds with `pin_required`): shown this once, stored only hashed.
    #[oai(skip_serializing_if_is_none)]
    pub pin: Option<String>,
    pub amount: String,
    pub currency: String,
    pub mode: String,
    #[oai(skip_serializing_if_is_none)]
    pub expires_at: Option<String>,
}

/// A voucher to block or unblock.
#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct BlockVoucher {
    pub code: String,
    /// true to block (default), false to unblock.
    pub blocked: Option<bool>,
}

/// The voucher whose status changed.
#[derive(Object)]
pub struct VoucherStatusChanged {
    pub id: i64,
    pub status: String,
}

#[derive(ApiResponse)]
pub enum CreateMerchantResponse {
    /// Created; store the secret key now, it is never shown again.
    #[oai(status = 201)]
    Created(Json<CreatedMerchant>),
    /// Invalid name, commission or mode.
    #[oai(status = 400)]
    BadRequest(Json<ErrorBody>),
    /// Missing or wrong admin token.
    #[oai(status = 401)]
    Unauthorized(Json<ErrorBody>),
    /// Too many requests from this client address (`rate_limited`, see the
    /// `RateLimit-Policy` and `RateLimit` headers), or too many wrong tokens from it
    /// (`too_many_failed_authentications`); wait `Retry-After` seconds.
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
error_responses!(CreateMerchantResponse { 400 => BadRequest, 401 => Unauthorized, 429 => RateLimited });

#[derive(ApiResponse)]
pub enum ListMerchantsResponse {
    /// Every merchant, oldest first.
    #[oai(status = 200)]
    Ok(Json<Vec<MerchantBody>>),
    /// Missing or wrong admin token.
    #[oai(status = 401)]
    Unauthorized(Json<ErrorBody>),
    /// Too many requests from this client address (`rate_limited`, see the
    /// `RateLimit-Policy` and `RateLimit` headers), or too many wrong tokens from it
    /// (`too_many_failed_authentications`); wait `Retry-After` seconds.
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
error_responses!(ListMerchantsResponse { 401 => Unauthorized, 429 => RateLimited });

#[derive(ApiResponse)]
pub enum IssueVouchersResponse {
    /// Issued; hand the codes to their owners, they are never shown again.
    #[oai(status = 201)]
    Created(Json<IssuedVouchers>),
    /// Invalid currency, amount, count, expiry, mode or merchant.
    #[oai(status = 400)]
    BadRequest(Json<ErrorBody>),
    /// Missing or wrong admin token.
    #[oai(status = 401)]
    Unauthorized(Json<ErrorBody>),
    /// Too many requests from this client address (`rate_limited`, see the
    /// `RateLimit-Policy` and `RateLimit` headers), or too many wrong tokens from it
    /// (`too_many_failed_authentications`); wait `Retry-After` seconds.
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
error_responses!(IssueVouchersResponse { 400 => BadRequest, 401 => Unauthorized, 429 => RateLimited });

#[derive(ApiResponse)]
pub enum BlockVoucherResponse {
    /// The new status.
    #[oai(status = 200)]
    Ok(Json<VoucherStatusChanged>),
    /// Malformed code, or a used single-use voucher.
    #[oai(status = 400)]
    BadRequest(Json<ErrorBody>),
    /// Missing or wrong admin token.
    #[oai(status = 401)]
    Unauthorized(Json<ErrorBody>),
    /// No voucher with this code.
    #[oai(status = 404)]
    NotFound(Json<ErrorBody>),
    /// Too many requests from this client address (`rate_limited`, see the
    /// `RateLimit-Policy` and `RateLimit` headers), or too many wrong tokens from it
    /// (`too_many_failed_authentications`); wait `Retry-After` seconds.
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
error_responses!(BlockVoucherResponse { 400 => BadRequest, 401 => Unauthorized, 404 => NotFound, 429 => RateLimited });

#[derive(ApiResponse)]
pub enum SetNotifyEmailResponse {
    /// The merchant with its new notification address.
    #[oai(status = 200)]
    Ok(Json<MerchantBody>),
    /// Not an email address, or a malformed body.
    #[oai(status = 400)]
    BadRequest(Json<ErrorBody>),
    /// Missing or wrong admin token.
    #[oai(status = 401)]
    Unauthorized(Json<ErrorBody>),
    /// No such merchant.
    #[oai(status = 404)]
    NotFound(Json<ErrorBody>),
    /// Too many requests from this client address (`rate_limited`, see the
    /// `RateLimit-Policy` and `RateLimit` headers), or too many wrong tokens from it
    /// (`too_many_failed_authentications`); wait `Retry-After` seconds.
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
error_responses!(SetNotifyEmailResponse { 400 => BadRequest, 401 => Unauthorized, 404 => NotFound, 429 => RateLimited });

/// The refusal of an unknown mode, for the documentation.
pub fn invalid_mode_example() -> ApiError {
    parse_mode(Some("production")).expect_err("only test and live are modes")
}

fn parse_mode(mode: Option<&str>) -> Result<Mode, ApiError> {
    mode.map_or(Ok(Mode::Test), |m| {
        Mode::from_str(m)
            .map_err(|_| invalid("mode", "invalid_mode", "mode must be `test` or `live`."))
    })
}

fn merchant_body(m: store::entities::merchant::Model) -> MerchantBody {
    MerchantBody {
        id: m.id,
        name: m.name,
        commission_bps: m.commission_bps,
        status: m.status.as_str().into(),
        notify_email: m.notify_email,
        created_at: rfc3339(m.created_at),
    }
}

#[OpenApi(prefix_path = "/admin", tag = "ApiTags::Admin")]
impl AdminApi {
    /// Create a merchant with a key pair
    #[oai(
        path = "/merchants",
        method = "post",
        operation_id = "adminCreateMerchant"
    )]
    async fn create_merchant(
        &self,
        auth: AdminToken,
        body: Json<CreateMerchant>,
    ) -> CreateMerchantResponse {
        async {
            self.check(&auth)?;
            let mode = parse_mode(body.mode.as_deref())?;
            let m = admin::create_merchant(&self.state.db, &body.name, body.commission_bps, mode)
                .await?;
            Ok(CreateMerchantResponse::Created(Json(CreatedMerchant {
                publishable_key: m.publishable_key.expose().to_owned(),
                secret_key: m.secret_key.expose().to_owned(),
                merchant: merchant_body(m.merchant),
            })))
        }
        .await
        .unwrap_or_else(|e: ApiError| e.into())
    }

    /// List merchants
    #[oai(
        path = "/merchants",
        method = "get",
        operation_id = "adminListMerchants"
    )]
    async fn list_merchants(&self, auth: AdminToken) -> ListMerchantsResponse {
        async {
            self.check(&auth)?;
            let all = store::merchants::list_merchants(&self.state.db).await?;
            Ok(ListMerchantsResponse::Ok(Json(
                all.into_iter().map(merchant_body).collect(),
            )))
        }
        .await
        .unwrap_or_else(|e: ApiError| e.into())
    }

    /// Set a merchant's notification address
    ///
    /// Where the merchant's notification emails go ("a new API key was created", "your
    /// webhook endpoint was disabled"); `null` stops them. Same as
    /// `superpayment admin set-notify-email`.
    #[oai(
        path = "/merchants/:id/notify-email",
        method = "put",
        operation_id = "adminSetNotifyEmail"
    )]
    async fn set_notify_email(
        &self,
        auth: AdminToken,
        id: poem_openapi::param::Path<String>,
        body: Json<SetNotifyEmail>,
    ) -> SetNotifyEmailResponse {
        async {
            self.check(&auth)?;
            admin::set_notify_email(&self.state.db, &id.0, body.email.as_deref()).await?;
            let m = store::merchants::find_merchant(&self.state.db, &id.0)
                .await?
                .ok_or(ApiError::NotFound("merchant"))?;
            Ok(SetNotifyEmailResponse::Ok(Json(merchant_body(m))))
        }
        .await
        .unwrap_or_else(|e: ApiError| e.into())
    }

    /// Issue vouchers
    #[oai(
        path = "/vouchers",
        method = "post",
        operation_id = "adminIssueVouchers"
    )]
    async fn issue_vouchers(
        &self,
        auth: AdminToken,
        body: Json<IssueVouchers>,
    ) -> IssueVouchersResponse {
        async {
            self.check(&auth)?;
            let body = body.0;
            let currency = Currency::from_str(&body.currency)
                .map_err(|e| invalid("currency", e.code(), e.to_string()))?;
            let expires_at = body
                .expires_at
                .as_deref()
                .map(|s| OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339))
                .transpose()
                .map_err(|_| {
                    invalid(
                        "expires_at",
                        "invalid_timestamp",
                        "expires_at must be an RFC 3339 timestamp.",
                    )
                })?;
            let min_order_minor = body
                .min_order_amount
                .as_ref()
                .map(|a| a.0.as_str())
                .map(|a| Money::parse(a, currency).map(Money::minor))
                .transpose()
                .map_err(|e| invalid("min_order_amount", e.code(), e.to_string()))?;
            let flat = VoucherRules {
                merchants: body.merchant_id.map(|m| vec![m]),
                min_order_minor,
                single_use: body.single_use.unwrap_or(false),
                reloadable: body.reloadable.unwrap_or(false),
                expires_after_first_use_days: None,
                pin_required: false,
            };
            let (rules, expires_at) = match body.rules {
                None => (flat, expires_at),
                Some(_) if flat != VoucherRules::default() || expires_at.is_some() => {
                    return Err(ApiError::InvalidRequest(vec![kinds::given_twice()]));
                }
                Some(rules) => {
                    let kind = kinds::parse(&rules, currency)
                        .map_err(|e| ApiError::InvalidRequest(vec![e]))?;
                    (kind.rules, kind.expires_at)
                }
            };
            let spec = IssueSpec {
                currency,
                amount: body.amount.0,
                count: body.count,
                expires_at,
                mode: parse_mode(body.mode.as_deref())?,
                rules,
                issuer_merchant_id: body.issuer_merchant_id,
            };
            let issued = admin::issue_vouchers(&self.state.db, &self.state.pepper, spec).await?;
            Ok(IssueVouchersResponse::Created(Json(IssuedVouchers {
                vouchers: issued
                    .into_iter()
                    .map(|v| IssuedVoucherBody {
                        id: v.id,
                        last4: v.code.last4().to_owned(),
                        code: v.code.formatted(),
                        pin: v.pin.map(|p| p.expose().clone()),
                        amount: v.amount.to_string(),
                        currency: v.amount.currency().code().to_owned(),
                        mode: v.mode.as_str().to_owned(),
                        expires_at: v.expires_at.map(rfc3339),
                    })
                    .collect(),
            })))
        }
        .await
        .unwrap_or_else(|e: ApiError| e.into())
    }

    /// Block or unblock a voucher
    #[oai(
        path = "/vouchers/block",
        method = "post",
        operation_id = "adminBlockVoucher"
    )]
    async fn block_voucher(
        &self,
        auth: AdminToken,
        body: Json<BlockVoucher>,
    ) -> BlockVoucherResponse {
        async {
            self.check(&auth)?;
            let code = VoucherCode::parse(&body.code)
                .map_err(|e| invalid("code", e.code(), e.to_string()))?;
            let blocked = body.blocked.unwrap_or(true);
            let id = admin::set_voucher_blocked(&self.state.db, &self.state.pepper, &code, blocked)
                .await?;
            Ok(BlockVoucherResponse::Ok(Json(VoucherStatusChanged {
                id,
                status: if blocked {
                    VoucherState::Blocked
                } else {
                    VoucherState::Active
                }
                .as_str()
                .into(),
            })))
        }
        .await
        .unwrap_or_else(|e: ApiError| e.into())
    }
}
