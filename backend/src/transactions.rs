//! Reading a merchant's transactions: filtered listing with keyset pagination, and one
//! transaction with its vouchers and refunds.
use sea_orm::DatabaseConnection;
use superpayment_core::FieldError;
use time::OffsetDateTime;

use crate::{
    auth::Caller,
    payments::{TransactionStatus, TransactionView},
    replica::Freshness,
    state::AppState,
    store::{
        self,
        entities::{refund, refund_allocation, voucher},
        transactions::TransactionFilter,
    },
};

/// Why a listing or a retrieval was refused.
#[derive(Debug, thiserror::Error)]
pub enum TransactionsError {
    /// A filter parameter is not well-formed.
    #[error("invalid filter")]
    InvalidFilter(FieldError),
    /// No such transaction for this merchant and mode.
    #[error("transaction not found")]
    NotFound,
    /// Anything unexpected.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

crate::internal_on_db_error!(TransactionsError);

impl TransactionsError {
    /// Each way a listing's filter is refused, for the documentation.
    pub fn filter_examples() -> impl Iterator<Item = TransactionsError> {
        [
            filter(Some("paid".into()), None, None, None, None),
            filter(None, Some("yesterday"), None, None, None),
        ]
        .into_iter()
        .filter_map(Result::err)
    }
}

/// Largest page of a listing.
pub const MAX_PAGE: u64 = 100;

/// A transaction with what each voucher paid and every refund.
#[derive(Debug)]
pub struct TransactionRecord {
    pub view: TransactionView,
    pub refunds: Vec<RefundRecord>,
}

/// A stored refund with, per voucher, (original last4, credited last4, amount).
#[derive(Debug)]
pub struct RefundRecord {
    pub refund: refund::Model,
    pub vouchers: Vec<(String, String, i64)>,
}

/// A page of the caller's transactions (newest first), whether more follow, and how
/// fresh the page is (it is read from the replica when there is one).
#[tracing::instrument(skip_all, fields(merchant_id = %caller.merchant_id))]
pub async fn list(
    state: &AppState,
    caller: &Caller,
    filter: &TransactionFilter,
    limit: u64,
) -> Result<(Vec<TransactionRecord>, bool, Freshness), TransactionsError> {
    let read = state.read_db().await;
    let (records, has_more) = list_in(
        &read.db,
        &caller.merchant_id,
        caller.mode_str(),
        filter,
        limit,
    )
    .await?;
    Ok((records, has_more, read.freshness))
}

/// [`list`] read from `db`, for readers that choose their connection (the back-office).
pub async fn list_in(
    db: &DatabaseConnection,
    merchant_id: &str,
    mode: &str,
    filter: &TransactionFilter,
    limit: u64,
) -> Result<(Vec<TransactionRecord>, bool), TransactionsError> {
    let limit = limit.clamp(1, MAX_PAGE);
    let mut rows = store::transactions::list(db, merchant_id, mode, filter, limit + 1).await?;
    let has_more = rows.len() as u64 > limit;
    rows.truncate(limit as usize);
    let records = assemble(db, rows).await?;
    Ok((records, has_more))
}

/// One of the caller's transactions; another merchant's or mode's is simply not found.
/// Read from the primary: a merchant fetches a transaction right after it was made, and
/// a replica that has not replayed it yet would answer 404.
pub async fn retrieve(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<TransactionRecord, TransactionsError> {
    retrieve_in(&state.db, &caller.merchant_id, caller.mode_str(), id).await
}

/// [`retrieve`] read from `db`, for readers that choose their connection (the back-office).
pub async fn retrieve_in(
    db: &DatabaseConnection,
    merchant_id: &str,
    mode: &str,
    id: &str,
) -> Result<TransactionRecord, TransactionsError> {
    let row = store::payments::find_transaction(db, merchant_id, mode, id)
        .await?
        .ok_or(TransactionsError::NotFound)?;
    Ok(assemble(db, vec![row])
        .await?
        .pop()
        .expect("one row in, one record out"))
}

async fn assemble(
    db: &DatabaseConnection,
    rows: Vec<store::entities::transaction::Model>,
) -> Result<Vec<TransactionRecord>, TransactionsError> {
    let ids: Vec<String> = rows.iter().map(|t| t.id.clone()).collect();
    let redemptions = store::transactions::redemptions_of_many(db, &ids).await?;
    let refunds = store::refunds::refunds_of(db, &ids).await?;
    let refund_ids: Vec<String> = refunds.iter().map(|r| r.id.clone()).collect();
    let allocations: Vec<refund_allocation::Model> =
        store::refunds::allocations_of(db, &refund_ids).await?;
    let mut voucher_ids: Vec<i64> = redemptions.iter().map(|r| r.voucher_id).collect();
    voucher_ids.extend(allocations.iter().map(|a| a.credited_voucher_id));
    voucher_ids.sort_unstable();
    voucher_ids.dedup();
    let vouchers: Vec<voucher::Model> = store::vouchers::find_by_ids(db, &voucher_ids).await?;
    let last4 = |id: i64| {
        vouchers
            .iter()
            .find(|v| v.id == id)
            .map(|v| v.last4.clone())
            .unwrap_or_default()
    };
    Ok(rows
        .into_iter()
        .map(|row| TransactionRecord {
            refunds: refunds
                .iter()
                .filter(|r| r.transaction_id == row.id)
                .map(|r| RefundRecord {
                    refund: r.clone(),
                    vouchers: allocations
                        .iter()
                        .filter(|a| a.refund_id == r.id)
                        .map(|a| {
                            (
                                last4(a.voucher_id),
                                last4(a.credited_voucher_id),
                                a.amount_minor,
                            )
                        })
                        .collect(),
                })
                .collect(),
            view: TransactionView {
                vouchers: redemptions
                    .iter()
                    .filter(|r| r.transaction_id == row.id)
                    .map(|r| (last4(r.voucher_id), r.amount_minor))
                    .collect(),
                row,
            },
        })
        .collect())
}

/// A listing filter from the query parameters, each checked.
pub fn filter(
    status: Option<String>,
    created_gte: Option<&str>,
    created_lt: Option<&str>,
    order_id: Option<String>,
    starting_after: Option<String>,
) -> Result<TransactionFilter, TransactionsError> {
    let status = status
        .map(|s| {
            TransactionStatus::parse(&s).ok_or_else(|| {
                TransactionsError::InvalidFilter(FieldError::new(
                    "status",
                    "invalid_status",
                    "status must be succeeded, partially_refunded, refunded, authorized, captured, canceled or expired.",
                ))
            })
        })
        .transpose()?;
    Ok(TransactionFilter {
        status,
        created_gte: created_gte
            .map(|v| parse_bound("created_gte", v))
            .transpose()?,
        created_lt: created_lt
            .map(|v| parse_bound("created_lt", v))
            .transpose()?,
        order_id,
        starting_after,
        ..TransactionFilter::default()
    })
}

fn parse_bound(field: &str, value: &str) -> Result<OffsetDateTime, TransactionsError> {
    OffsetDateTime::parse(value, &time::format_description::well_known::Rfc3339).map_err(|_| {
        TransactionsError::InvalidFilter(FieldError::new(
            field,
            "invalid_timestamp",
            format!("{field} must be an RFC 3339 timestamp, e.g. 2026-01-31T00:00:00Z."),
        ))
    })
}
