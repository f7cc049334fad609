//! POST /api/transactions/{id}/capture and /cancel: ending a hold (secret key).
use poem_openapi::{
    param::{Header, Path},
    payload::Json,
    Object, OpenApi,
};
use superpayment_core::KeyKind;

use super::{
    amount::DecimalString,
    error::{ApiError, ErrorBody},
    security::SecretKey,
    ApiTags,
};
use crate::{
    auth::authenticate,
    payments::holds::{self, HoldOutcome, HoldReceipt, HoldRequest},
    secret_key_response,
    state::AppState,
};

/// Capturing and canceling authorized payments.
pub struct HoldsApi {
    state: AppState,
}

impl HoldsApi {
    pub fn new(state: AppState) -> Self {
        Self { state }
    }
}

/// Capture an authorized payment, in full (no `amount`) or in part.
#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct CaptureHold {
    /// Decimal string at most the amount held, e.g. `"60.00"`; the rest goes back to the
    /// vouchers. Omit it to capture everything held.
    #[oai(skip_serializing_if_is_none)]
    pub amount: Option<DecimalString>,
}

/// Cancel an authorized payment (an empty object).
#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct CancelHold {}

/// How a hold ended.
#[derive(Object)]
pub struct HoldResult {
    /// The transaction, `txn_...`.
    pub id: String,
    /// `captured` or `canceled` (`expired` in `payment.expired` events).
    pub status: String,
    pub order_id: String,
    /// What was held.
    pub authorized_amount: String,
    /// What the merchant receives (before commission); `0.00` when canceled.
    pub captured_amount: String,
    /// What went back to the vouchers.
    pub released_amount: String,
    pub currency: String,
    /// Per voucher, in the order applied.
    pub vouchers: Vec<HoldVoucherBody>,
    /// RFC 3339 timestamp.
    pub ended_at: String,
}

/// One voucher's part of a hold's end; the code itself is never returned.
#[derive(Object)]
pub struct HoldVoucherBody {
    pub last4: String,
    pub captured: String,
    pub released: String,
}

impl From<HoldReceipt> for HoldResult {
    fn from(r: HoldReceipt) -> Self {
        HoldResult {
            id: r.id,
            status: r.status,
            order_id: r.order_id,
            authorized_amount: r.authorized_amount,
            captured_amount: r.captured_amount,
            released_amount: r.released_amount,
            currency: r.currency,
            vouchers: r
                .vouchers
                .into_iter()
                .map(|v| HoldVoucherBody {
                    last4: v.last4,
                    captured: v.captured,
                    released: v.released,
                })
                .collect(),
            ended_at: r.ended_at,
        }
    }
}

secret_key_response! {
    pub enum CaptureResponse {
        /// Captured. A replay of an earlier request carries `Idempotent-Replayed: true`.
        #[oai(status = 200)]
        Ok(
            Json<HoldResult>,
            #[oai(header = "Idempotent-Replayed")] Option<String>,
        ),
        /// Invalid amount, more than is held (`capture_exceeds_authorized`), a malformed body, or an Idempotency-Key reused with another body.
        #[oai(status = 400)]
        BadRequest(Json<ErrorBody>),
        /// No such transaction for this merchant and mode.
        #[oai(status = 404)]
        NotFound(Json<ErrorBody>),
        /// Not authorized any more (`transaction_not_authorized`: captured, canceled, expired, or never a hold), or the Idempotency-Key is still in flight.
        #[oai(status = 409)]
        Conflict(Json<ErrorBody>),
    }
    errors { 400 => BadRequest, 404 => NotFound, 409 => Conflict }
}

secret_key_response! {
    pub enum CancelResponse {
        /// Canceled: everything held went back to the vouchers. A replay carries `Idempotent-Replayed: true`.
        #[oai(status = 200)]
        Ok(
            Json<HoldResult>,
            #[oai(header = "Idempotent-Replayed")] Option<String>,
        ),
        /// A malformed body, or an Idempotency-Key reused with another body.
        #[oai(status = 400)]
        BadRequest(Json<ErrorBody>),
        /// No such transaction for this merchant and mode.
        #[oai(status = 404)]
        NotFound(Json<ErrorBody>),
        /// Not authorized any more (`transaction_not_authorized`), or the Idempotency-Key is still in flight.
        #[oai(status = 409)]
        Conflict(Json<ErrorBody>),
    }
    errors { 400 => BadRequest, 404 => NotFound, 409 => Conflict }
}

#[OpenApi(tag = "ApiTags::Transactions")]
impl HoldsApi {
    /// Capture an authorized payment
    ///
    /// Once, in full or in part: the captured amount is owed to the merchant (less
    /// commission) and the rest goes back to the vouchers, the voucher applied last first.
    /// A hold past its `capture_before` is released by SuperPayment and can no longer be
    /// captured. Emits `payment.captured`. Send an `Idempotency-Key`.
    #[oai(
        path = "/transactions/:id/capture",
        method = "post",
        operation_id = "captureTransaction"
    )]
    async fn capture(
        &self,
        auth: SecretKey,
        id: Path<String>,
        /// A unique key per capture (e.g. a UUID); replays the first answer for 24 h.
        #[oai(name = "Idempotency-Key")]
        idempotency_key: Header<Option<String>>,
        body: Json<CaptureHold>,
    ) -> CaptureResponse {
        async {
            let caller = authenticate(&self.state, Some(&auth.0.token), KeyKind::Secret).await?;
            let req = HoldRequest {
                transaction_id: id.0,
                amount: body.0.amount.map(|a| a.0),
                idempotency_key: idempotency_key.0,
            };
            Ok(match holds::capture(&self.state, &caller, req).await? {
                HoldOutcome::Done(r) => CaptureResponse::Ok(Json(r.into()), None),
                HoldOutcome::Replayed(r) => {
                    CaptureResponse::Ok(Json(r.into()), Some("true".into()))
                }
            })
        }
        .await
        .unwrap_or_else(|e: ApiError| e.into())
    }

    /// Cancel an authorized payment
    ///
    /// Releases the whole hold back to the vouchers; the order id is free for a new
    /// payment. Emits `payment.canceled`. Send an `Idempotency-Key`.
    #[oai(
        path = "/transactions/:id/cancel",
        method = "post",
        operation_id = "cancelTransaction"
    )]
    async fn cancel(
        &self,
        auth: SecretKey,
        id: Path<String>,
        /// A unique key per cancel (e.g. a UUID); replays the first answer for 24 h.
        #[oai(name = "Idempotency-Key")]
        idempotency_key: Header<Option<String>>,
        body: Json<CancelHold>,
    ) -> CancelResponse {
        let _ = body;
        async {
            let caller = authenticate(&self.state, Some(&auth.0.token), KeyKind::Secret).await?;
            let req = HoldRequest {
                transaction_id: id.0,
                amount: None,
                idempotency_key: idempotency_key.0,
            };
            Ok(match holds::cancel(&self.state, &caller, req).await? {
                HoldOutcome::Done(r) => CancelResponse::Ok(Json(r.into()), None),
                HoldOutcome::Replayed(r) => CancelResponse::Ok(Json(r.into()), Some("true".into())),
            })
        }
        .await
        .unwrap_or_else(|e: ApiError| e.into())
    }
}
