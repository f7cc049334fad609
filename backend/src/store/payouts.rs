//! Payouts to merchants: the merchant lock that keeps them within the payable, the balance
//! they are checked against, and their rows.
use sea_orm::{ConnectionTrait, DbErr, EntityTrait, FromQueryResult, QuerySelect, Statement};

use super::entities::{merchant, payout};

/// Locks the merchant's row for the rest of the database transaction (PostgreSQL; SQLite's
/// single writer already excludes every other payout), so that two payouts of one merchant
/// are checked against the payable one after the other. None for an unknown merchant.
pub async fn lock_merchant(
    db: &impl ConnectionTrait,
    merchant_id: &str,
) -> Result<Option<merchant::Model>, DbErr> {
    let mut q = merchant::Entity::find_by_id(merchant_id.to_owned());
    if super::is_postgres(db) {
        q = q.lock_exclusive();
    }
    q.one(db).await
}

/// The balance of one ledger account (the sum of its postings).
pub async fn account_balance(db: &impl ConnectionTrait, account: &str) -> Result<i64, DbErr> {
    #[derive(FromQueryResult)]
    struct Total {
        total: Option<i64>,
    }
    let backend = db.get_database_backend();
    let p = super::placeholders(backend, 1, 1);
    let row = Total::find_by_statement(Statement::from_sql_and_values(
        backend,
        format!(
            "SELECT CAST(SUM(amount_minor) AS BIGINT) AS total FROM postings WHERE account = {p}"
        ),
        [account.into()],
    ))
    .one(db)
    .await?;
    Ok(row.and_then(|r| r.total).unwrap_or(0))
}

/// Records a payout.
pub async fn insert(db: &impl ConnectionTrait, row: payout::Model) -> Result<(), DbErr> {
    payout::Entity::insert(payout::ActiveModel::from(row))
        .exec_without_returning(db)
        .await?;
    Ok(())
}
