//! The widget's remembered vouchers (publishable key) and the merchant's checkout settings (secret key).
use poem_openapi::{payload::Json, ApiResponse, Object, OpenApi};
use superpayment_core::{validate_voucher_check, KeyKind};

use super::{
    error::{ApiError, ErrorBody},
    security::{AdminToken, PublishableKey, SecretKey},
    ApiTags,
};
use crate::{
    auth::authenticate,
    checkout::{self, SettingsPatch},
    crypto::secrets_equal,
    error_responses, secret_key_response,
    state::AppState,
};

/// Remembered vouchers and checkout settings.
pub struct CheckoutApi {
    state: AppState,
}

impl CheckoutApi {
    pub fn new(state: AppState) -> Self {
        Self { state }
    }
}

/// Tokens the checkout iframe holds for this shop.
#[derive(Object)]
pub struct TokenList {
    /// 1 to 10 `vt_...` tokens.
    pub tokens: Vec<String>,
}

/// What the shopper may see about each remembered voucher, in the order asked.
#[derive(Object)]
pub struct RememberedVoucherList {
    pub vouchers: Vec<RememberedVoucherStatus>,
}

/// One remembered voucher. Unknown, revoked, expired and other shops' tokens all read
/// `valid: false, reason: voucher_token_invalid` with nothing else.
#[derive(Object)]
pub struct RememberedVoucherStatus {
    pub valid: bool,
    /// When not valid: the decline code a payment would get.
    #[oai(skip_serializing_if_is_none)]
    pub reason: Option<String>,
    #[oai(skip_serializing_if_is_none)]
    pub last4: Option<String>,
    #[oai(skip_serializing_if_is_none)]
    pub balance: Option<String>,
    #[oai(skip_serializing_if_is_none)]
    pub currency: Option<String>,
    /// RFC 3339: when the token stops working.
    #[oai(skip_serializing_if_is_none)]
    pub expires_at: Option<String>,
}

/// How many tokens were revoked.
#[derive(Object)]
pub struct Revoked {
    pub revoked: u64,
}

/// A voucher whose remembered tokens should all be revoked.
#[derive(Object)]
pub struct RevokeByCode {
    /// `XXXX-XXXX-XXXX-XXXX`.
    pub code: String,
}

/// The checkout settings of the key's mode.
#[derive(Object)]
pub struct CheckoutSettingsBody {
    /// `test` or `live`.
    pub mode: String,
    /// When true, payments without a valid `signature` are refused.
    pub require_signature: bool,
    /// Origins allowed to embed the checkout iframe (`frame-ancestors`); empty = any.
    pub allowed_origins: Vec<String>,
    /// Key for `data-signature`: lower-case hex HMAC-SHA256 of `"{order_id}|{amount}|{currency}"`
    /// with the amount in canonical form (`"99.00"`). Keep it on your server.
    pub signing_secret: String,
}

/// A change to the checkout settings; absent fields keep their value.
#[derive(Object)]
pub struct CheckoutSettingsUpdate {
    pub require_signature: Option<bool>,
    /// Replaces the list, e.g. `["https://shop.example"]`; at most 20.
    pub allowed_origins: Option<Vec<String>>,
    /// Issue a new signing secret; the old one stops working at once.
    pub rotate_signing_secret: Option<bool>,
}

#[derive(ApiResponse)]
pub enum LookupResponse {
    /// One entry per token, in the order sent.
    #[oai(status = 200)]
    Ok(Json<RememberedVoucherList>),
    /// No tokens, more than 10, or a malformed one.
    #[oai(status = 400)]
    BadRequest(Json<ErrorBody>),
    /// Missing, unknown, revoked or expired publishable key.
    #[oai(status = 401)]
    Unauthorized(Json<ErrorBody>),
    /// A secret key was sent (never put one in a page).
    #[oai(status = 403)]
    Forbidden(Json<ErrorBody>),
    /// Too many requests with this key (`rate_limited`, see the `RateLimit-Policy` and
    /// `RateLimit` headers), or too many bad keys from this client address
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
error_responses!(LookupResponse { 400 => BadRequest, 401 => Unauthorized, 403 => Forbidden, 429 => RateLimited });

#[derive(ApiResponse)]
pub enum RevokeResponse {
    /// How many of the tokens were live and are now revoked.
    #[oai(status = 200)]
    Ok(Json<Revoked>),
    /// No tokens, more than 10, or a malformed one.
    #[oai(status = 400)]
    BadRequest(Json<ErrorBody>),
    /// Missing, unknown, revoked or expired key.
    #[oai(status = 401)]
    Unauthorized(Json<ErrorBody>),
    /// A secret key was sent (never put one in a page).
    #[oai(status = 403)]
    Forbidden(Json<ErrorBody>),
    /// Too many requests with this key (`rate_limited`, see the `RateLimit-Policy` and
    /// `RateLimit` headers), or too many bad keys from this client address
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
error_responses!(RevokeResponse { 400 => BadRequest, 401 => Unauthorized, 403 => Forbidden, 429 => RateLimited });

#[derive(ApiResponse)]
pub enum AdminRevokeResponse {
    /// How many tokens of the voucher were live and are now revoked.
    #[oai(status = 200)]
    Ok(Json<Revoked>),
    /// The code is malformed.
    #[oai(status = 400)]
    BadRequest(Json<ErrorBody>),
    /// Missing or wrong admin token.
    #[oai(status = 401)]
    Unauthorized(Json<ErrorBody>),
    /// No voucher has this code.
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
error_responses!(AdminRevokeResponse { 400 => BadRequest, 401 => Unauthorized, 404 => NotFound, 429 => RateLimited });

#[derive(ApiResponse)]
pub enum SettingsResponse {
    /// The settings, with the current signing secret.
    #[oai(status = 200)]
    Ok(Json<CheckoutSettingsBody>),
    /// An invalid origin or too many of them.
    #[oai(status = 400)]
    BadRequest(Json<ErrorBody>),
    /// Missing, unknown, revoked or expired secret key.
    #[oai(status = 401)]
    Unauthorized(Json<ErrorBody>),
    /// A publishable key was sent; settings need the secret key.
    #[oai(status = 403)]
    Forbidden(Json<ErrorBody>),
    /// Too many requests with this key (`rate_limited`, see the `RateLimit-Policy` and
    /// `RateLimit` headers), or too many bad keys from this client address
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
error_responses!(SettingsResponse { 400 => BadRequest, 401 => Unauthorized, 403 => Forbidden, 429 => RateLimited });

secret_key_response! {
    /// Reading the settings (no body, so no 400).
    pub enum ReadSettingsResponse {
        /// The settings, with the current signing secret.
        #[oai(status = 200)]
        Ok(Json<CheckoutSettingsBody>),
    }
    errors {}
}

fn settings_body(mode: &str, s: checkout::CheckoutSettings) -> CheckoutSettingsBody {
    CheckoutSettingsBody {
        mode: mode.into(),
        require_signature: s.require_signature,
        allowed_origins: s.allowed_origins,
        signing_secret: s.signing_secret.expose().clone(),
    }
}

#[OpenApi]
impl CheckoutApi {
    /// Look up remembered vouchers
    ///
    /// Called by the checkout iframe of a returning shopper to show "Pay with voucher
    /// ••••7F3K (balance €150.00)". Tokens are issued by `process-payment` with
    /// `remember: true` and only ever pay at the shop (and mode) they were issued for.
    #[oai(
        path = "/remembered-vouchers/lookup",
        method = "post",
        operation_id = "lookupRememberedVouchers",
        tag = "ApiTags::Vouchers"
    )]
    async fn lookup(&self, auth: PublishableKey, body: Json<TokenList>) -> LookupResponse {
        self.lookup_inner(auth, body.0)
            .await
            .unwrap_or_else(Into::into)
    }

    /// Forget remembered vouchers
    ///
    /// Revokes the given tokens for good ("forget this voucher" in the widget).
    #[oai(
        path = "/remembered-vouchers/revoke",
        method = "post",
        operation_id = "revokeRememberedVouchers",
        tag = "ApiTags::Vouchers"
    )]
    async fn revoke(&self, auth: PublishableKey, body: Json<TokenList>) -> RevokeResponse {
        self.revoke_inner(auth, body.0)
            .await
            .unwrap_or_else(Into::into)
    }

    /// Revoke every remembered token of a voucher
    ///
    /// For support: a shopper reports a lost device or a stolen code. Blocking the voucher
    /// also stops its tokens; this keeps the voucher usable by code.
    #[oai(
        path = "/admin/vouchers/revoke-remembered",
        method = "post",
        operation_id = "adminRevokeRememberedVouchers",
        tag = "ApiTags::Admin"
    )]
    async fn admin_revoke(
        &self,
        auth: AdminToken,
        body: Json<RevokeByCode>,
    ) -> AdminRevokeResponse {
        self.admin_revoke_inner(auth, body.0)
            .await
            .unwrap_or_else(Into::into)
    }

    /// Read the checkout settings
    ///
    /// Signature policy, allowed embedding origins and the signing secret of the key's mode.
    #[oai(
        path = "/checkout-settings",
        method = "get",
        operation_id = "getCheckoutSettings",
        tag = "ApiTags::Transactions"
    )]
    async fn get_settings(&self, auth: SecretKey) -> ReadSettingsResponse {
        self.settings_inner(auth, None)
            .await
            .map_or_else(Into::into, |b| ReadSettingsResponse::Ok(Json(b)))
    }

    /// Change the checkout settings
    ///
    /// Require signed amounts, restrict which sites may embed the checkout, or rotate the
    /// signing secret.
    #[oai(
        path = "/checkout-settings",
        method = "put",
        operation_id = "updateCheckoutSettings",
        tag = "ApiTags::Transactions"
    )]
    async fn put_settings(
        &self,
        auth: SecretKey,
        body: Json<CheckoutSettingsUpdate>,
    ) -> SettingsResponse {
        self.settings_inner(auth, Some(body.0))
            .await
            .map_or_else(Into::into, |b| SettingsResponse::Ok(Json(b)))
    }
}

impl CheckoutApi {
    async fn lookup_inner(
        &self,
        auth: PublishableKey,
        body: TokenList,
    ) -> Result<LookupResponse, ApiError> {
        let caller = authenticate(&self.state, Some(&auth.0.token), KeyKind::Publishable).await?;
        let statuses = checkout::tokens::lookup(&self.state, &caller, &body.tokens).await?;
        let vouchers = statuses
            .into_iter()
            .map(|s| RememberedVoucherStatus {
                valid: s.valid,
                reason: s.reason.map(str::to_owned),
                last4: s.last4,
                currency: s.balance.map(|b| b.currency().code().to_owned()),
                balance: s.balance.map(|b| b.to_string()),
                expires_at: s.expires_at.map(crate::timestamps::rfc3339),
            })
            .collect();
        Ok(LookupResponse::Ok(Json(RememberedVoucherList { vouchers })))
    }

    async fn revoke_inner(
        &self,
        auth: PublishableKey,
        body: TokenList,
    ) -> Result<RevokeResponse, ApiError> {
        let caller = authenticate(&self.state, Some(&auth.0.token), KeyKind::Publishable).await?;
        let revoked = checkout::tokens::revoke(&self.state, &caller, &body.tokens).await?;
        Ok(RevokeResponse::Ok(Json(Revoked { revoked })))
    }

    async fn admin_revoke_inner(
        &self,
        auth: AdminToken,
        body: RevokeByCode,
    ) -> Result<AdminRevokeResponse, ApiError> {
        match &self.state.admin_token {
            Some(expected) if secrets_equal(expected.expose(), &auth.0.token) => {}
            _ => {
                return Err(ApiError::Unauthenticated {
                    code: "invalid_admin_token",
                })
            }
        }
        let code =
            validate_voucher_check(&body.code).map_err(|e| ApiError::InvalidRequest(vec![e]))?;
        let revoked =
            checkout::tokens::revoke_for_code(&self.state.db, &self.state.pepper, &code).await?;
        Ok(AdminRevokeResponse::Ok(Json(Revoked { revoked })))
    }

    async fn settings_inner(
        &self,
        auth: SecretKey,
        update: Option<CheckoutSettingsUpdate>,
    ) -> Result<CheckoutSettingsBody, ApiError> {
        let caller = authenticate(&self.state, Some(&auth.0.token), KeyKind::Secret).await?;
        let settings = match update {
            None => checkout::settings::get(&self.state, &caller).await?,
            Some(u) => {
                let patch = SettingsPatch {
                    require_signature: u.require_signature,
                    allowed_origins: u.allowed_origins,
                    rotate_signing_secret: u.rotate_signing_secret.unwrap_or(false),
                };
                checkout::settings::update(&self.state, &caller, patch).await?
            }
        };
        Ok(settings_body(caller.mode_str(), settings))
    }
}
