//! Transactions for the merchant's server (secret key): list with filters and cursor
//! pagination, retrieve one with its refunds, refund part or all of one.
use poem_openapi::{
    param::{Header, Path, Query},
    payload::Json,
    Object, OpenApi,
};
use superpayment_core::KeyKind;

use super::{
    amount::DecimalString,
    error::{ApiError, ErrorBody},
    security::SecretKey,
    verify::TransactionDetail,
    webhooks::page_limit,
    ApiTags,
};
use crate::{
    auth::authenticate,
    money::format_minor,
    refunds::{self, RefundOutcome, RefundReceipt, RefundRequest},
    secret_key_response,
    state::AppState,
    store::entities::refund::RefundStatus,
    transactions::{self, RefundRecord, TransactionRecord},
};

/// Listing, retrieving and refunding transactions.
pub struct MerchantTransactionsApi {
    state: AppState,
}

impl MerchantTransactionsApi {
    pub fn new(state: AppState) -> Self {
        Self { state }
    }
}

/// A transaction with its refunds.
#[derive(Object)]
pub struct Transaction {
    #[oai(flatten)]
    pub transaction: TransactionDetail,
    /// Refunds, oldest first.
    pub refunds: Vec<Refund>,
}

/// A page of transactions, newest first.
#[derive(Object)]
pub struct TransactionList {
    pub data: Vec<Transaction>,
    /// More transactions follow: pass the last id as `starting_after`.
    pub has_more: bool,
}

/// A refund.
#[derive(Object)]
pub struct Refund {
    /// `re_...`.
    pub id: String,
    pub transaction_id: String,
    /// Always `succeeded`: a refund is written completely or not at all.
    pub status: String,
    pub amount: String,
    pub currency: String,
    /// Commission returned by SuperPayment with this refund.
    pub commission: String,
    /// Taken from the merchant's balance: amount minus commission.
    pub net: String,
    #[oai(skip_serializing_if_is_none)]
    pub reason: Option<String>,
    /// Where the money went, per voucher of the payment (last applied first).
    pub vouchers: Vec<RefundVoucher>,
    /// In the answer to the refund itself: the transaction's refunded total afterwards.
    #[oai(skip_serializing_if_is_none)]
    pub transaction_refunded_amount: Option<String>,
    pub created_at: String,
}

/// One voucher's share of a refund.
#[derive(Object)]
pub struct RefundVoucher {
    /// The voucher the money came from.
    pub last4: String,
    pub amount: String,
    /// When that voucher had expired: the voucher issued for this share instead.
    #[oai(skip_serializing_if_is_none)]
    pub new_voucher: Option<NewVoucherBody>,
}

/// A voucher issued by a refund.
#[derive(Object)]
pub struct NewVoucherBody {
    /// The code, in the refund's own answer (and its idempotent replays) only: hand it to
    /// the shopper. Never shown again.
    #[oai(skip_serializing_if_is_none)]
    pub code: Option<String>,
    pub last4: String,
    pub amount: String,
    #[oai(skip_serializing_if_is_none)]
    pub expires_at: Option<String>,
}

/// A refund to make.
#[derive(Object)]
#[oai(example, deny_unknown_fields)]
pub struct CreateRefund {
    /// Decimal amount in the transaction's currency; absent refunds everything left.
    #[oai(skip_serializing_if_is_none)]
    pub amount: Option<DecimalString>,
    /// Free text kept with the refund (at most 500 characters).
    #[oai(skip_serializing_if_is_none)]
    pub reason: Option<String>,
}

impl poem_openapi::types::Example for CreateRefund {
    fn example() -> Self {
        CreateRefund {
            amount: Some(DecimalString("10.00".into())),
            reason: Some("One item returned".into()),
        }
    }
}

impl From<RefundReceipt> for Refund {
    fn from(r: RefundReceipt) -> Self {
        Refund {
            id: r.id,
            transaction_id: r.transaction_id,
            status: r.status,
            amount: r.amount,
            currency: r.currency,
            commission: r.commission,
            net: r.net,
            reason: r.reason,
            vouchers: r
                .vouchers
                .into_iter()
                .map(|v| RefundVoucher {
                    last4: v.last4,
                    amount: v.amount,
                    new_voucher: v.new_voucher.map(|n| NewVoucherBody {
                        code: n.code,
                        last4: n.last4,
                        amount: n.amount,
                        expires_at: Some(n.expires_at),
                    }),
                })
                .collect(),
            transaction_refunded_amount: Some(r.transaction_refunded_amount),
            created_at: r.created_at,
        }
    }
}

fn refund_body(r: RefundRecord) -> Result<Refund, ApiError> {
    let currency = r.refund.currency.0;
    Ok(Refund {
        id: r.refund.id,
        transaction_id: r.refund.transaction_id,
        status: RefundStatus::Succeeded.as_str().into(),
        amount: format_minor(r.refund.amount_minor, currency)?,
        currency: currency.code().into(),
        commission: format_minor(r.refund.commission_minor, currency)?,
        net: format_minor(r.refund.net_minor, currency)?,
        reason: r.refund.reason,
        vouchers: r
            .vouchers
            .into_iter()
            .map(|(original, credited, amount)| {
                let amount = format_minor(amount, currency)?;
                Ok(RefundVoucher {
                    new_voucher: (original != credited).then(|| NewVoucherBody {
                        code: None,
                        last4: credited,
                        amount: amount.clone(),
                        expires_at: None,
                    }),
                    last4: original,
                    amount,
                })
            })
            .collect::<Result<_, ApiError>>()?,
        transaction_refunded_amount: None,
        created_at: crate::timestamps::rfc3339(r.refund.created_at),
    })
}

fn transaction_body(r: TransactionRecord) -> Result<Transaction, ApiError> {
    Ok(Transaction {
        transaction: TransactionDetail::from_view(r.view)?,
        refunds: r
            .refunds
            .into_iter()
            .map(refund_body)
            .collect::<Result<_, _>>()?,
    })
}

secret_key_response! {
    pub enum ListTransactionsResponse {
        /// A page of transactions. Read from the read replica when the server has one:
        /// `Data-Source` says which (`replica` or `primary`) and `Data-Lag` how many
        /// seconds the data may be behind (`0.000` when current; absent when a replica
        /// cannot tell yet). A payment made a moment ago may be missing from a lagging
        /// replica's page; retrieve it by id, which always reads the primary.
        #[oai(status = 200)]
        Ok(
            Json<TransactionList>,
            #[oai(header = "Data-Source")] String,
            #[oai(header = "Data-Lag")] Option<String>,
        ),
        /// Invalid filter or limit.
        #[oai(status = 400)]
        BadRequest(Json<ErrorBody>),
    }
    errors { 400 => BadRequest }
}

secret_key_response! {
    pub enum GetTransactionResponse {
        /// The transaction with its vouchers and refunds.
        #[oai(status = 200)]
        Ok(Json<Transaction>),
        /// No such transaction for this merchant and mode.
        #[oai(status = 404)]
        NotFound(Json<ErrorBody>),
    }
    errors { 404 => NotFound }
}

secret_key_response! {
    pub enum CreateRefundResponse {
        /// Refunded. A replay of an earlier request carries `Idempotent-Replayed: true`.
        #[oai(status = 201)]
        Created(
            Json<Refund>,
            #[oai(header = "Idempotent-Replayed")] Option<String>,
        ),
        /// Invalid amount, more than is left to refund (`refund_exceeds_remaining`), or an Idempotency-Key reused with another body.
        #[oai(status = 400)]
        BadRequest(Json<ErrorBody>),
        /// No such transaction for this merchant and mode.
        #[oai(status = 404)]
        NotFound(Json<ErrorBody>),
        /// A request with this Idempotency-Key is still in flight.
        #[oai(status = 409)]
        Conflict(Json<ErrorBody>),
    }
    errors { 400 => BadRequest, 404 => NotFound, 409 => Conflict }
}

#[OpenApi(tag = "ApiTags::Transactions")]
impl MerchantTransactionsApi {
    /// List transactions
    ///
    /// Newest first. Filter by `status`, creation time (`created_gte`, `created_lt`,
    /// RFC 3339) and `order_id`; page with `starting_after` (the last id of the previous
    /// page) while `has_more` is true.
    #[oai(
        path = "/transactions",
        method = "get",
        operation_id = "listTransactions"
    )]
    #[allow(clippy::too_many_arguments)]
    async fn list(
        &self,
        auth: SecretKey,
        /// 1 to 100 (default 20).
        limit: Query<Option<u64>>,
        /// A transaction id: list the transactions after it.
        starting_after: Query<Option<String>>,
        /// `succeeded` (nothing refunded), `partially_refunded` or `refunded`; for payments
        /// authorized first: `authorized`, `captured` (nothing refunded), `canceled`, `expired`.
        status: Query<Option<String>>,
        /// Created at or after this RFC 3339 time.
        created_gte: Query<Option<String>>,
        /// Created before this RFC 3339 time.
        created_lt: Query<Option<String>>,
        /// Exactly this order id.
        order_id: Query<Option<String>>,
    ) -> ListTransactionsResponse {
        async {
            let caller = authenticate(&self.state, Some(&auth.0.token), KeyKind::Secret).await?;
            let limit = page_limit(limit.0)?;
            let filter = transactions::filter(
                status.0,
                created_gte.0.as_deref(),
                created_lt.0.as_deref(),
                order_id.0,
                starting_after.0,
            )?;
            let (records, has_more, freshness) =
                transactions::list(&self.state, &caller, &filter, limit).await?;
            Ok(ListTransactionsResponse::Ok(
                Json(TransactionList {
                    data: records
                        .into_iter()
                        .map(transaction_body)
                        .collect::<Result<_, _>>()?,
                    has_more,
                }),
                freshness.source().to_owned(),
                freshness.lag_header(),
            ))
        }
        .await
        .unwrap_or_else(|e: ApiError| e.into())
    }

    /// Retrieve a transaction
    #[oai(
        path = "/transactions/:id",
        method = "get",
        operation_id = "getTransaction"
    )]
    async fn retrieve(&self, auth: SecretKey, id: Path<String>) -> GetTransactionResponse {
        async {
            let caller = authenticate(&self.state, Some(&auth.0.token), KeyKind::Secret).await?;
            let record = transactions::retrieve(&self.state, &caller, &id.0).await?;
            Ok(GetTransactionResponse::Ok(Json(transaction_body(record)?)))
        }
        .await
        .unwrap_or_else(|e: ApiError| e.into())
    }

    /// Refund a transaction
    ///
    /// Full (no `amount`) or partial; several partial refunds may follow each other up to
    /// the amount paid. The money goes back to the vouchers it came from, the voucher
    /// applied last first; a voucher that has expired since gets its share on a newly
    /// issued voucher, whose code is in this answer only. Emits `payment.refunded`.
    /// Send an `Idempotency-Key` so that a retry cannot refund twice.
    #[oai(
        path = "/transactions/:id/refunds",
        method = "post",
        operation_id = "createRefund"
    )]
    async fn refund(
        &self,
        auth: SecretKey,
        id: Path<String>,
        /// A unique key per refund (e.g. a UUID); replays the first answer for 24 h.
        #[oai(name = "Idempotency-Key")]
        idempotency_key: Header<Option<String>>,
        body: Json<CreateRefund>,
    ) -> CreateRefundResponse {
        async {
            let caller = authenticate(&self.state, Some(&auth.0.token), KeyKind::Secret).await?;
            let request = RefundRequest {
                transaction_id: id.0.clone(),
                amount: body.0.amount.map(|a| a.0),
                reason: body.0.reason,
                idempotency_key: idempotency_key.0,
            };
            Ok(
                match refunds::refund(&self.state, &caller, request).await? {
                    RefundOutcome::Created(r) => {
                        CreateRefundResponse::Created(Json(r.into()), None)
                    }
                    RefundOutcome::Replayed(r) => {
                        CreateRefundResponse::Created(Json(r.into()), Some("true".into()))
                    }
                },
            )
        }
        .await
        .unwrap_or_else(|e: ApiError| e.into())
    }
}
