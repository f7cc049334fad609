//! Listing a merchant's transactions with filters and keyset pagination.
use sea_orm::{
    sea_query::Expr, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use time::OffsetDateTime;

use super::entities::{
    redemption,
    transaction::{self, HoldState},
};
use crate::payments::TransactionStatus;

/// Which transactions to list.
#[derive(Debug, Default, Clone)]
pub struct TransactionFilter {
    /// Only transactions in this status, as [`TransactionStatus::of`] derives it.
    pub status: Option<TransactionStatus>,
    pub created_gte: Option<OffsetDateTime>,
    pub created_lt: Option<OffsetDateTime>,
    pub order_id: Option<String>,
    /// Only the transaction with this id (the back-office's search box).
    pub id: Option<String>,
    /// Only transactions in this currency (required to bound amounts, which are minor units).
    pub currency: Option<superpayment_core::Currency>,
    /// Only amounts at least / at most these minor units.
    pub amount_gte: Option<i64>,
    pub amount_lte: Option<i64>,
    /// Only transactions listed after this id (ids sort by creation, newest first).
    pub starting_after: Option<String>,
}

/// A page of a merchant's transactions in one mode, newest first.
pub async fn list(
    db: &impl ConnectionTrait,
    merchant_id: &str,
    mode: &str,
    f: &TransactionFilter,
    limit: u64,
) -> Result<Vec<transaction::Model>, DbErr> {
    let mut q = transaction::Entity::find()
        .filter(transaction::Column::MerchantId.eq(merchant_id))
        .filter(transaction::Column::Mode.eq(mode));
    // The same derivation as `TransactionStatus::from_parts`, in SQL (refunds exist only
    // on payments captured at once or captured holds).
    match f.status {
        Some(TransactionStatus::Succeeded) => {
            q = q
                .filter(transaction::Column::HoldState.is_null())
                .filter(transaction::Column::RefundedMinor.eq(0))
        }
        Some(TransactionStatus::Captured) => {
            q = q
                .filter(transaction::Column::HoldState.eq(HoldState::Captured))
                .filter(transaction::Column::RefundedMinor.eq(0))
        }
        Some(TransactionStatus::Authorized) => {
            q = q.filter(transaction::Column::HoldState.eq(HoldState::Authorized))
        }
        Some(TransactionStatus::Canceled) => {
            q = q.filter(transaction::Column::HoldState.eq(HoldState::Canceled))
        }
        Some(TransactionStatus::Expired) => {
            q = q.filter(transaction::Column::HoldState.eq(HoldState::Expired))
        }
        Some(TransactionStatus::PartiallyRefunded) => {
            q = q.filter(transaction::Column::RefundedMinor.gt(0)).filter(
                Expr::col(transaction::Column::RefundedMinor)
                    .lt(Expr::col(transaction::Column::AmountMinor)),
            )
        }
        Some(TransactionStatus::Refunded) => {
            q = q.filter(
                Expr::col(transaction::Column::RefundedMinor)
                    .eq(Expr::col(transaction::Column::AmountMinor)),
            )
        }
        None => {}
    }
    if let Some(t) = f.created_gte {
        q = q.filter(transaction::Column::CreatedAt.gte(t));
    }
    if let Some(t) = f.created_lt {
        q = q.filter(transaction::Column::CreatedAt.lt(t));
    }
    if let Some(o) = &f.order_id {
        q = q.filter(transaction::Column::OrderId.eq(o.as_str()));
    }
    if let Some(id) = &f.id {
        q = q.filter(transaction::Column::Id.eq(id.as_str()));
    }
    if let Some(c) = f.currency {
        q = q.filter(transaction::Column::Currency.eq(super::entities::text::AsText(c)));
    }
    if let Some(a) = f.amount_gte {
        q = q.filter(transaction::Column::AmountMinor.gte(a));
    }
    if let Some(a) = f.amount_lte {
        q = q.filter(transaction::Column::AmountMinor.lte(a));
    }
    if let Some(after) = &f.starting_after {
        q = q.filter(transaction::Column::Id.lt(after.as_str()));
    }
    q.order_by_desc(transaction::Column::Id)
        .limit(limit)
        .all(db)
        .await
}

/// Redemptions of several transactions, by transaction and then position.
pub async fn redemptions_of_many(
    db: &impl ConnectionTrait,
    transaction_ids: &[String],
) -> Result<Vec<redemption::Model>, DbErr> {
    redemption::Entity::find()
        .filter(redemption::Column::TransactionId.is_in(transaction_ids.iter().cloned()))
        .order_by_asc(redemption::Column::TransactionId)
        .order_by_asc(redemption::Column::Position)
        .all(db)
        .await
}
