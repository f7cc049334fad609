//! POST /api/verify-transaction: the merchant's server confirms a sale before releasing goods.
use std::str::FromStr;

use poem_openapi::{payload::Json, Object, OpenApi};
use superpayment_core::{Currency, FieldError, KeyKind, OrderId};

use super::{
    amount::DecimalString,
    error::{ApiError, ErrorBody},
    security::SecretKey,
    ApiTags,
};
use crate::{
    auth::authenticate,
    money::format_minor,
    payments::{self, TransactionStatus, TransactionView, VerifyQuery},
    secret_key_response,
    state::AppState,
};

/// Server-side operations on transactions.
pub struct TransactionsApi {
    state: AppState,
}

impl TransactionsApi {
    pub fn new(state: AppState) -> Self {
        Self { state }
    }
}

/// Which transaction, and what the merchant expects of it.
#[derive(Object)]
#[oai(example, deny_unknown_fields)]
pub struct VerifyRequest {
    /// `txn_...`, as received by the page in `superpayment:success`.
    #[oai(skip_serializing_if_is_none)]
    pub transaction_id: Option<String>,
    /// The merchant's order id (used to find the transaction when no id is given; compared otherwise).
    pub order_id: Option<String>,
    /// The amount the merchant charged, e.g. `"99.00"`.
    pub expected_amount: Option<DecimalString>,
    /// The currency the merchant charged, e.g. `"EUR"`.
    pub expected_currency: Option<String>,
    /// Also verify a partially refunded transaction (default false). A fully refunded one
    /// is never verified: its `status` is then a mismatch whatever this says.
    #[oai(skip_serializing_if_is_none)]
    pub accept_partially_refunded: Option<bool>,
}

impl poem_openapi::types::Example for VerifyRequest {
    fn example() -> Self {
        VerifyRequest {
            transaction_id: None,
            order_id: Some("ORDER_123".into()),
            expected_amount: Some(DecimalString("99.00".into())),
            expected_currency: Some("EUR".into()),
            accept_partially_refunded: None,
        }
    }
}

/// The verdict: `verified` is true only when nothing differs from what was expected and the
/// transaction may release goods: `succeeded`, or `partially_refunded` when
/// `accept_partially_refunded` was asked (see `refunded_amount`). A `refunded` transaction
/// is never verified (`mismatches` then holds `status`).
#[derive(Object)]
pub struct Verification {
    pub verified: bool,
    /// What keeps the transaction from being verified: `order_id`, `amount`, `currency`
    /// (differ from what was stated), `order_id_not_stated`, `amount_not_stated`,
    /// `currency_not_stated` (all three must be stated for `verified: true`), `status`
    /// (refunded, or partially refunded without `accept_partially_refunded`).
    pub mismatches: Vec<String>,
    pub transaction: TransactionDetail,
}

/// A transaction as the merchant sees it.
#[derive(Object)]
pub struct TransactionDetail {
    pub id: String,
    /// `succeeded`, `partially_refunded` or `refunded`; for a payment authorized first
    /// (`capture: false`): `authorized`, then `captured` (then `partially_refunded` or
    /// `refunded`), `canceled` or `expired`.
    pub status: String,
    pub order_id: String,
    pub amount: String,
    pub currency: String,
    /// SuperPayment's commission on this payment.
    pub commission: String,
    /// What the merchant receives: amount minus commission.
    pub net: String,
    pub refunded_amount: String,
    pub mode: String,
    pub vouchers: Vec<TransactionVoucher>,
    pub created_at: String,
    /// Authorized first only: what was held (`amount` is what was captured).
    #[oai(skip_serializing_if_is_none)]
    pub authorized_amount: Option<String>,
    /// Authorized only: when the hold is released unless captured (RFC 3339).
    #[oai(skip_serializing_if_is_none)]
    pub capture_before: Option<String>,
}

/// One voucher's part of a transaction.
#[derive(Object)]
pub struct TransactionVoucher {
    pub last4: String,
    pub amount: String,
}

secret_key_response! {
    pub enum VerifyResponse {
        /// The transaction and the verdict (`verified: false` lists the mismatches).
        #[oai(status = 200)]
        Ok(Json<Verification>),
        /// Neither transaction_id nor order_id, or a malformed expected amount or currency.
        #[oai(status = 400)]
        BadRequest(Json<ErrorBody>),
        /// No such transaction for this merchant and mode.
        #[oai(status = 404)]
        NotFound(Json<ErrorBody>),
    }
    errors { 400 => BadRequest, 404 => NotFound }
}

impl TransactionDetail {
    /// Builds the wire form of a stored transaction.
    pub fn from_view(view: TransactionView) -> Result<Self, ApiError> {
        let t = view.row;
        let currency = t.currency.0;
        let status = TransactionStatus::of(&t);
        let authorized = status == TransactionStatus::Authorized;
        let status = status.as_str().to_owned();
        Ok(TransactionDetail {
            id: t.id,
            status,
            order_id: t.order_id,
            amount: format_minor(t.amount_minor, currency)?,
            currency: currency.code().into(),
            commission: format_minor(t.commission_minor, currency)?,
            net: format_minor(t.net_minor, currency)?,
            refunded_amount: format_minor(t.refunded_minor, currency)?,
            mode: t.mode.0.as_str().into(),
            vouchers: view
                .vouchers
                .into_iter()
                .map(|(last4, minor)| {
                    Ok(TransactionVoucher {
                        last4,
                        amount: format_minor(minor, currency)?,
                    })
                })
                .collect::<Result<_, ApiError>>()?,
            created_at: crate::timestamps::rfc3339(t.created_at),
            authorized_amount: t
                .authorized_minor
                .map(|m| format_minor(m, currency))
                .transpose()?,
            capture_before: authorized
                .then_some(t.hold_expires_at)
                .flatten()
                .map(crate::timestamps::rfc3339),
        })
    }
}

#[OpenApi(tag = "ApiTags::Transactions")]
impl TransactionsApi {
    /// Verify a transaction
    ///
    /// Call it from your server before releasing goods: by `transaction_id` (preferred) or
    /// `order_id`, always stating the `order_id`, `expected_amount` and `expected_currency`
    /// you charged: `verified` is true only when all three are stated and match, and the
    /// transaction is not refunded. Never trust the browser alone.
    #[oai(
        path = "/verify-transaction",
        method = "post",
        operation_id = "verifyTransaction"
    )]
    async fn verify(&self, auth: SecretKey, body: Json<VerifyRequest>) -> VerifyResponse {
        Box::pin(self.handle(auth, body.0))
            .await
            .unwrap_or_else(Into::into)
    }
}

impl TransactionsApi {
    async fn handle(
        &self,
        auth: SecretKey,
        body: VerifyRequest,
    ) -> Result<VerifyResponse, ApiError> {
        let caller = authenticate(&self.state, Some(&auth.0.token), KeyKind::Secret).await?;
        let mut errors = Vec::new();
        let order_id = match body.order_id.as_deref().map(OrderId::parse) {
            Some(Ok(o)) => Some(o),
            Some(Err(e)) => {
                errors.push(FieldError::new("order_id", e.code(), e.to_string()));
                None
            }
            None => None,
        };
        let expected_currency = match body.expected_currency.as_deref().map(Currency::from_str) {
            Some(Ok(c)) => Some(c),
            Some(Err(e)) => {
                errors.push(FieldError::new(
                    "expected_currency",
                    e.code(),
                    e.to_string(),
                ));
                None
            }
            None => None,
        };
        if !errors.is_empty() {
            return Err(ApiError::InvalidRequest(errors));
        }
        let outcome = payments::verify(
            &self.state,
            &caller,
            VerifyQuery {
                transaction_id: body.transaction_id,
                order_id,
                expected_amount: body.expected_amount.map(|a| a.0),
                expected_currency,
                accept_partially_refunded: body.accept_partially_refunded.unwrap_or(false),
            },
        )
        .await?;
        Ok(VerifyResponse::Ok(Json(Verification {
            verified: outcome.verified,
            mismatches: outcome.mismatches.into_iter().map(str::to_owned).collect(),
            transaction: TransactionDetail::from_view(outcome.transaction)?,
        })))
    }
}
