//! POST /api/process-payment: the widget pays an order with vouchers.
use poem::Request;
use poem_openapi::{param::Header, payload::Json, ApiResponse, Object, OpenApi};
use superpayment_core::{validate_payment_request, KeyKind, PaymentRequestInput, VoucherInput};

use super::{
    amount::DecimalString,
    error::{ApiError, ErrorBody},
    security::PublishableKey,
    ApiTags,
};
use crate::{
    auth::authenticate,
    error_responses,
    gateway::ClientAddr,
    payments::{self, PayOutcome, PayRequest, PaymentReceipt},
    secret::Secret,
    state::AppState,
};

/// Operations of the checkout widget.
pub struct PaymentsApi {
    state: AppState,
}

impl PaymentsApi {
    pub fn new(state: AppState) -> Self {
        Self { state }
    }
}

/// Pay an order with one or more vouchers (applied in the order given).
#[derive(Object)]
#[oai(example, deny_unknown_fields)]
pub struct PaymentRequest {
    /// The merchant's order id: 1-64 of `A-Z a-z 0-9 - _ . : # /`.
    pub order_id: String,
    /// Decimal string, e.g. `"99.00"`.
    pub amount: DecimalString,
    /// ISO 4217 code, e.g. `"EUR"`.
    pub currency: String,
    /// 1 to 10 vouchers; each gives exactly one of `code` or `token`.
    pub vouchers: Vec<VoucherSource>,
    /// HMAC of order id, amount and currency with the merchant's signing secret (optional).
    #[oai(skip_serializing_if_is_none)]
    pub signature: Option<String>,
    /// Remember the typed vouchers on this device: the answer then carries a token per
    /// voucher with a balance left (`remembered_vouchers`) for one-click payments later.
    #[oai(skip_serializing_if_is_none)]
    pub remember: Option<bool>,
    /// `false` only authorizes: the vouchers' money is held (status `authorized`) until
    /// the merchant's server captures or cancels it, or the hold expires (7 days unless
    /// the merchant's hold period says otherwise). Default `true`: paid at once.
    #[oai(skip_serializing_if_is_none)]
    pub capture: Option<bool>,
}

/// A voucher by code (`XXXX-XXXX-XXXX-XXXX`, case and dashes free) or remembered token.
#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct VoucherSource {
    #[oai(skip_serializing_if_is_none)]
    pub code: Option<String>,
    #[oai(skip_serializing_if_is_none)]
    pub token: Option<String>,
    /// The voucher's PIN, when its kind requires one (the balance check answers
    /// `pin_required: true`). Missing: `402 pin_required`; wrong: `402 pin_invalid`,
    /// counted by the guessing lockout like a wrong code.
    #[oai(skip_serializing_if_is_none)]
    pub pin: Option<String>,
}

impl poem_openapi::types::Example for PaymentRequest {
    fn example() -> Self {
        PaymentRequest {
            order_id: "ORDER_123".into(),
            amount: DecimalString("99.00".into()),
            currency: "EUR".into(),
            vouchers: vec![VoucherSource {
                // A magic test voucher (docs/integration.md): with a test key, the example
                // pays as it stands.
                code: Some(crate::testmode::MAGIC_VOUCHERS[0].code.into()),
                token: None,
                pin: None,
            }],
            signature: None,
            remember: None,
            capture: None,
        }
    }
}

/// A successful payment.
#[derive(Object)]
pub struct Payment {
    /// Transaction id, `txn_...`.
    pub id: String,
    /// `succeeded`, or `authorized` for `capture: false`.
    pub status: String,
    pub order_id: String,
    pub amount: String,
    pub currency: String,
    /// `test` or `live`, the mode of the key used.
    pub mode: String,
    /// What each voucher paid, in the order applied.
    pub vouchers: Vec<PaymentVoucher>,
    /// RFC 3339 timestamp.
    pub created_at: String,
    /// Authorized only: when the hold is released unless captured (RFC 3339).
    #[oai(skip_serializing_if_is_none)]
    pub capture_before: Option<String>,
    /// Only when `remember` was asked, and only in the first answer (never in replays):
    /// tokens standing for the typed vouchers that still have a balance.
    #[oai(skip_serializing_if_is_none)]
    pub remembered_vouchers: Option<Vec<RememberedVoucherBody>>,
}

/// A remembered voucher: the token the checkout iframe keeps to pay with it again.
#[derive(Object)]
pub struct RememberedVoucherBody {
    /// `vt_...`; shown once, stored by SuperPayment only as a hash. Pays only at this shop.
    pub token: String,
    pub last4: String,
    /// Balance after this payment.
    pub balance: String,
    pub currency: String,
    /// RFC 3339: when the token stops working.
    pub expires_at: String,
}

/// One voucher's part of a payment; the code itself is never returned.
#[derive(Object)]
pub struct PaymentVoucher {
    pub last4: String,
    pub amount: String,
    pub remaining_balance: String,
}

impl From<PaymentReceipt> for Payment {
    fn from(r: PaymentReceipt) -> Self {
        Payment {
            id: r.id,
            status: r.status,
            order_id: r.order_id,
            amount: r.amount,
            currency: r.currency,
            mode: r.mode,
            vouchers: r
                .vouchers
                .into_iter()
                .map(|v| PaymentVoucher {
                    last4: v.last4,
                    amount: v.amount,
                    remaining_balance: v.remaining_balance,
                })
                .collect(),
            created_at: r.created_at,
            capture_before: r.capture_before,
            remembered_vouchers: None,
        }
    }
}

#[derive(ApiResponse)]
pub enum ProcessPaymentResponse {
    /// The payment succeeded. A replay of an earlier request carries `Idempotent-Replayed: true`.
    /// While the operator's payment rate limits are on, every answer of this operation carries
    /// `RateLimit-Policy` (each limit: `"per-client";q=<requests>;w=<seconds>`, and
    /// `"per-key"`) and `RateLimit` (the limit closest to refusing: `"<name>";r=<left>;t=<seconds
    /// until whole>`), as in the IETF draft "RateLimit header fields for HTTP".
    #[oai(status = 201)]
    Created(
        Json<Payment>,
        #[oai(header = "Idempotent-Replayed")] Option<String>,
        #[oai(header = "RateLimit-Policy")] Option<String>,
        #[oai(header = "RateLimit")] Option<String>,
    ),
    /// Invalid fields (all listed in `errors`), a malformed body, or an Idempotency-Key reused with another body.
    #[oai(status = 400)]
    BadRequest(Json<ErrorBody>),
    /// Missing, unknown, revoked or expired publishable key.
    #[oai(status = 401)]
    Unauthorized(Json<ErrorBody>),
    /// Declined: insufficient balance, or a voucher unknown, expired, blocked, in another currency or not accepted here.
    /// A decline is kept for its Idempotency-Key: a replay carries `Idempotent-Replayed: true`.
    #[oai(status = 402)]
    PaymentRequired(
        Json<ErrorBody>,
        #[oai(header = "Idempotent-Replayed")] Option<String>,
    ),
    /// A secret key was sent (never put one in a page), or the merchant is disabled.
    #[oai(status = 403)]
    Forbidden(Json<ErrorBody>),
    /// The order is already paid (`transaction_id` says by which transaction), or the Idempotency-Key is still in flight.
    /// An order already paid is kept for the Idempotency-Key: a replay carries `Idempotent-Replayed: true`.
    #[oai(status = 409)]
    Conflict(
        Json<ErrorBody>,
        #[oai(header = "Idempotent-Replayed")] Option<String>,
    ),
    /// Too many requests from this client or with this key (`rate_limited`, see the
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

error_responses!(ProcessPaymentResponse {
    400 => BadRequest,
    401 => Unauthorized,
    402 => PaymentRequired + replayable,
    403 => Forbidden,
    409 => Conflict + replayable,
    429 => RateLimited,
});

#[OpenApi(tag = "ApiTags::Payments")]
impl PaymentsApi {
    /// Pay an order with vouchers
    ///
    /// Applies the vouchers in the order given (only the last one used is taken partially)
    /// in one database transaction. Send an `Idempotency-Key` (a UUID per attempt) so that
    /// retries after a network failure cannot pay twice.
    #[oai(
        path = "/process-payment",
        method = "post",
        operation_id = "processPayment"
    )]
    async fn process_payment(
        &self,
        auth: PublishableKey,
        /// A unique key per payment attempt (e.g. a UUID); replays the first answer for 24 h.
        #[oai(name = "Idempotency-Key")]
        idempotency_key: Header<Option<String>>,
        body: Json<PaymentRequest>,
        req: &Request,
    ) -> ProcessPaymentResponse {
        let client = ClientAddr::of_request(req)
            .map(|c| c.to_string())
            .unwrap_or_else(|| "unknown".into());
        Box::pin(self.handle(auth, idempotency_key.0, body.0, client))
            .await
            .unwrap_or_else(Into::into)
    }
}

impl PaymentsApi {
    async fn handle(
        &self,
        auth: PublishableKey,
        key: Option<String>,
        body: PaymentRequest,
        client: String,
    ) -> Result<ProcessPaymentResponse, ApiError> {
        let caller = authenticate(&self.state, Some(&auth.0.token), KeyKind::Publishable).await?;
        // Validation keeps the vouchers in the order sent, one for one, so the PINs stay
        // aligned with them.
        let pins = body
            .vouchers
            .iter()
            .map(|v| v.pin.clone().map(Secret::new))
            .collect();
        let input = PaymentRequestInput {
            order_id: body.order_id,
            amount: body.amount.0,
            currency: body.currency,
            vouchers: body
                .vouchers
                .into_iter()
                .map(|v| VoucherInput {
                    code: v.code,
                    token: v.token,
                })
                .collect(),
        };
        let request = PayRequest {
            payment: validate_payment_request(&input).map_err(ApiError::InvalidRequest)?,
            signature: body.signature,
            remember: body.remember.unwrap_or(false),
            capture: body.capture.unwrap_or(true),
            idempotency_key: key,
            client,
            pins,
        };
        let remember = request.remember;
        Ok(match payments::pay(&self.state, &caller, request).await? {
            PayOutcome::Created {
                receipt,
                remembered,
            } => {
                let mut payment = Payment::from(receipt);
                if remember {
                    payment.remembered_vouchers = Some(
                        remembered
                            .into_iter()
                            .map(|r| RememberedVoucherBody {
                                token: r.token.expose().clone(),
                                last4: r.last4,
                                balance: r.balance.to_string(),
                                currency: r.balance.currency().code().into(),
                                expires_at: crate::timestamps::rfc3339(r.expires_at),
                            })
                            .collect(),
                    );
                }
                ProcessPaymentResponse::Created(Json(payment), None, None, None)
            }
            PayOutcome::Replayed(receipt) => ProcessPaymentResponse::Created(
                Json(receipt.into()),
                Some("true".into()),
                None,
                None,
            ),
        })
    }
}
