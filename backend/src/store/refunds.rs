//! Refunds, their per-voucher allocations, and the voucher credits they (and test top-ups) make.
use sea_orm::{
    sea_query::Expr, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, FromQueryResult,
    QueryFilter, QueryOrder, QuerySelect, Set, Statement,
};
use time::OffsetDateTime;

use super::entities::{
    refund, refund_allocation, transaction,
    voucher::{self, VoucherState},
};

/// A merchant's transaction, locked for the rest of the database transaction (PostgreSQL;
/// SQLite's single writer already excludes every other refund).
pub async fn lock_transaction(
    db: &impl ConnectionTrait,
    merchant_id: &str,
    mode: &str,
    id: &str,
) -> Result<Option<transaction::Model>, DbErr> {
    let mut q = transaction::Entity::find_by_id(id.to_owned())
        .filter(transaction::Column::MerchantId.eq(merchant_id))
        .filter(transaction::Column::Mode.eq(mode));
    if super::is_postgres(db) {
        q = q.lock_exclusive();
    }
    q.one(db).await
}

/// Adds `amount` to the refunded total if it stays within the amount paid; false if not.
/// The condition is the guarantee that concurrent refunds never exceed the payment.
pub async fn add_refunded(
    db: &impl ConnectionTrait,
    transaction_id: &str,
    amount: i64,
) -> Result<bool, DbErr> {
    let res = transaction::Entity::update_many()
        .col_expr(
            transaction::Column::RefundedMinor,
            Expr::col(transaction::Column::RefundedMinor).add(amount),
        )
        .filter(transaction::Column::Id.eq(transaction_id))
        .filter(
            Expr::expr(Expr::col(transaction::Column::RefundedMinor).add(amount))
                .lte(Expr::col(transaction::Column::AmountMinor)),
        )
        .exec(db)
        .await?;
    Ok(res.rows_affected == 1)
}

#[derive(Debug, FromQueryResult)]
struct VoucherTotal {
    voucher_id: i64,
    total: i64,
}

/// How much of a transaction each original voucher has had back so far.
pub async fn refunded_per_voucher(
    db: &impl ConnectionTrait,
    transaction_id: &str,
) -> Result<Vec<(i64, i64)>, DbErr> {
    let backend = db.get_database_backend();
    let p = if backend == sea_orm::DbBackend::Postgres {
        "$1"
    } else {
        "?"
    };
    let rows = VoucherTotal::find_by_statement(Statement::from_sql_and_values(
        backend,
        format!(
            "SELECT a.voucher_id AS voucher_id, CAST(SUM(a.amount_minor) AS BIGINT) AS total
             FROM refund_allocations a JOIN refunds r ON r.id = a.refund_id
             WHERE r.transaction_id = {p} GROUP BY a.voucher_id"
        ),
        [transaction_id.into()],
    ))
    .all(db)
    .await?;
    Ok(rows.into_iter().map(|r| (r.voucher_id, r.total)).collect())
}

/// Vouchers by id, locked in id order (the order payments lock them in, so no deadlock).
pub async fn lock_vouchers(
    db: &impl ConnectionTrait,
    ids: &[i64],
) -> Result<Vec<voucher::Model>, DbErr> {
    let mut q = voucher::Entity::find()
        .filter(voucher::Column::Id.is_in(ids.iter().copied()))
        .order_by_asc(voucher::Column::Id);
    if super::is_postgres(db) {
        q = q.lock_exclusive();
    }
    q.all(db).await
}

/// Credits a voucher. Its status stays as it is: a used single-use voucher becomes usable
/// again only through [`reinstate_voucher`], when its whole payment is refunded.
pub async fn credit_voucher(
    db: &impl ConnectionTrait,
    id: i64,
    amount: i64,
    now: OffsetDateTime,
) -> Result<(), DbErr> {
    voucher::Entity::update_many()
        .col_expr(
            voucher::Column::BalanceMinor,
            Expr::col(voucher::Column::BalanceMinor).add(amount),
        )
        .col_expr(voucher::Column::UpdatedAt, Expr::value(now))
        .filter(voucher::Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}

/// Undoes the use of a used single-use voucher: gives back its forfeited remainder and
/// makes it active again.
pub async fn reinstate_voucher(
    db: &impl ConnectionTrait,
    id: i64,
    forfeited: i64,
    now: OffsetDateTime,
) -> Result<(), DbErr> {
    voucher::Entity::update_many()
        .col_expr(
            voucher::Column::BalanceMinor,
            Expr::col(voucher::Column::BalanceMinor).add(forfeited),
        )
        .col_expr(voucher::Column::Status, Expr::value(VoucherState::Active))
        .col_expr(voucher::Column::UpdatedAt, Expr::value(now))
        .filter(voucher::Column::Id.eq(id))
        .filter(voucher::Column::Status.eq(VoucherState::Used))
        .exec(db)
        .await?;
    Ok(())
}

/// Moves a voucher's face value and balance together by `amount`, up or down (the
/// test-mode top-ups of magic vouchers), so that "balance = issued - redeemed + refunded"
/// keeps holding.
pub async fn top_up_voucher(
    db: &impl ConnectionTrait,
    id: i64,
    amount: i64,
    now: OffsetDateTime,
) -> Result<(), DbErr> {
    voucher::Entity::update_many()
        .col_expr(
            voucher::Column::BalanceMinor,
            Expr::col(voucher::Column::BalanceMinor).add(amount),
        )
        .col_expr(
            voucher::Column::InitialMinor,
            Expr::col(voucher::Column::InitialMinor).add(amount),
        )
        .col_expr(voucher::Column::UpdatedAt, Expr::value(now))
        .filter(voucher::Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}

/// Inserts a refund with its allocations.
pub async fn insert_refund(
    db: &impl ConnectionTrait,
    r: refund::Model,
    allocations: Vec<refund_allocation::Model>,
) -> Result<(), DbErr> {
    refund::Entity::insert(refund::ActiveModel {
        id: Set(r.id),
        transaction_id: Set(r.transaction_id),
        merchant_id: Set(r.merchant_id),
        mode: Set(r.mode),
        currency: Set(r.currency),
        amount_minor: Set(r.amount_minor),
        commission_minor: Set(r.commission_minor),
        net_minor: Set(r.net_minor),
        reason: Set(r.reason),
        created_at: Set(r.created_at),
    })
    .exec_without_returning(db)
    .await?;
    refund_allocation::Entity::insert_many(allocations.into_iter().map(|a| {
        refund_allocation::ActiveModel {
            id: sea_orm::NotSet,
            refund_id: Set(a.refund_id),
            voucher_id: Set(a.voucher_id),
            credited_voucher_id: Set(a.credited_voucher_id),
            amount_minor: Set(a.amount_minor),
            created_at: Set(a.created_at),
        }
    }))
    .exec_without_returning(db)
    .await?;
    Ok(())
}

/// Refunds of some transactions, oldest first.
pub async fn refunds_of(
    db: &impl ConnectionTrait,
    transaction_ids: &[String],
) -> Result<Vec<refund::Model>, DbErr> {
    refund::Entity::find()
        .filter(refund::Column::TransactionId.is_in(transaction_ids.iter().cloned()))
        .order_by_asc(refund::Column::CreatedAt)
        .order_by_asc(refund::Column::Id)
        .all(db)
        .await
}

/// Allocations of some refunds.
pub async fn allocations_of(
    db: &impl ConnectionTrait,
    refund_ids: &[String],
) -> Result<Vec<refund_allocation::Model>, DbErr> {
    refund_allocation::Entity::find()
        .filter(refund_allocation::Column::RefundId.is_in(refund_ids.iter().cloned()))
        .order_by_asc(refund_allocation::Column::Id)
        .all(db)
        .await
}
