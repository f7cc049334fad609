//! The expired vouchers whose balances breakage recognition takes, and the conditional
//! update that takes each.
use sea_orm::{
    sea_query::Expr, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use time::OffsetDateTime;

use super::entities::voucher::{self, VoucherState};

/// Up to `limit` active vouchers of `mode` expired at `now` that still hold money, in id
/// order (the order payments lock vouchers in), locked on PostgreSQL.
pub async fn lock_expired_with_balance(
    db: &impl ConnectionTrait,
    mode: &str,
    now: OffsetDateTime,
    limit: u64,
) -> Result<Vec<voucher::Model>, DbErr> {
    let mut q = voucher::Entity::find()
        .filter(voucher::Column::Mode.eq(mode))
        .filter(voucher::Column::Status.eq(VoucherState::Active))
        .filter(voucher::Column::ExpiresAt.lte(now))
        .filter(voucher::Column::BalanceMinor.gt(0))
        .order_by_asc(voucher::Column::Id)
        .limit(limit);
    if super::is_postgres(db) {
        q = q.lock_exclusive();
    }
    q.all(db).await
}

/// Empties an expired voucher that still holds exactly `balance`; false when it changed
/// meanwhile (it is then left for the next run).
pub async fn take_balance(
    db: &impl ConnectionTrait,
    id: i64,
    balance: i64,
    now: OffsetDateTime,
) -> Result<bool, DbErr> {
    let res = voucher::Entity::update_many()
        .col_expr(voucher::Column::BalanceMinor, Expr::value(0_i64))
        .col_expr(voucher::Column::UpdatedAt, Expr::value(now))
        .filter(voucher::Column::Id.eq(id))
        .filter(voucher::Column::BalanceMinor.eq(balance))
        .filter(voucher::Column::Status.eq(VoucherState::Active))
        .filter(voucher::Column::ExpiresAt.lte(now))
        .exec(db)
        .await?;
    Ok(res.rows_affected == 1)
}
