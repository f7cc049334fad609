//! Voucher lifecycle rows: the locked read, the conditional change, activities and the
//! ledger lines a voucher's history is read from.
use sea_orm::{
    sea_query::Expr, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, FromQueryResult,
    QueryFilter, QueryOrder, QuerySelect, Set, Statement,
};
use time::OffsetDateTime;

use super::entities::{
    journal,
    voucher::{self, VoucherState},
    voucher_activity,
};

/// The voucher with this id, locked until the end of the transaction (on SQLite the write
/// transaction already excludes every other writer).
pub async fn lock_voucher(
    db: &impl ConnectionTrait,
    id: i64,
) -> Result<Option<voucher::Model>, DbErr> {
    let mut q = voucher::Entity::find().filter(voucher::Column::Id.eq(id));
    if super::is_postgres(db) {
        q = q.lock_exclusive();
    }
    q.one(db).await
}

/// The voucher with this id, without locking (history).
pub async fn find_voucher(
    db: &impl ConnectionTrait,
    id: i64,
) -> Result<Option<voucher::Model>, DbErr> {
    voucher::Entity::find_by_id(id).one(db).await
}

/// Moves a voucher's balance by `delta` and sets its status, only if it still has the
/// balance and status it was read with: false when anything changed meanwhile, which
/// leaves it untouched (no update is ever lost to a concurrent payment).
pub async fn change(
    db: &impl ConnectionTrait,
    read: &voucher::Model,
    delta: i64,
    status: VoucherState,
    now: OffsetDateTime,
) -> Result<bool, DbErr> {
    let res = voucher::Entity::update_many()
        .col_expr(
            voucher::Column::BalanceMinor,
            Expr::col(voucher::Column::BalanceMinor).add(delta),
        )
        .col_expr(voucher::Column::Status, Expr::value(status))
        .col_expr(voucher::Column::UpdatedAt, Expr::value(now))
        .filter(voucher::Column::Id.eq(read.id))
        .filter(voucher::Column::BalanceMinor.eq(read.balance_minor))
        .filter(voucher::Column::Status.eq(read.status))
        .exec(db)
        .await?;
    Ok(res.rows_affected == 1)
}

/// Records an activity; returns its id.
pub async fn insert(db: &impl ConnectionTrait, row: voucher_activity::Model) -> Result<i64, DbErr> {
    let res = voucher_activity::Entity::insert(voucher_activity::ActiveModel {
        id: sea_orm::NotSet,
        voucher_id: Set(row.voucher_id),
        kind: Set(row.kind),
        amount_minor: Set(row.amount_minor),
        balance_after_minor: Set(row.balance_after_minor),
        reason: Set(row.reason),
        actor_kind: Set(row.actor_kind),
        actor_id: Set(row.actor_id),
        journal_id: Set(row.journal_id),
        created_at: Set(row.created_at),
    })
    .exec(db)
    .await?;
    Ok(res.last_insert_id)
}

/// A voucher's activities, oldest first.
pub async fn of_voucher(
    db: &impl ConnectionTrait,
    voucher_id: i64,
) -> Result<Vec<voucher_activity::Model>, DbErr> {
    voucher_activity::Entity::find()
        .filter(voucher_activity::Column::VoucherId.eq(voucher_id))
        .order_by_asc(voucher_activity::Column::Id)
        .all(db)
        .await
}

/// One voucher's part of one journal: what it moved on the voucher's liability (its
/// balance) and on its held amount.
#[derive(Debug, Clone)]
pub struct JournalShare {
    pub journal: journal::Model,
    pub balance_minor: i64,
    pub held_minor: i64,
}

#[derive(FromQueryResult)]
struct Sums {
    journal_id: i64,
    balance_minor: i64,
    held_minor: i64,
}

/// Every journal that touched the voucher, in the order written.
pub async fn journal_shares(
    db: &impl ConnectionTrait,
    voucher_id: i64,
) -> Result<Vec<JournalShare>, DbErr> {
    let backend = db.get_database_backend();
    let p = if backend == sea_orm::DbBackend::Postgres {
        "$1"
    } else {
        "?"
    };
    let sums = Sums::find_by_statement(Statement::from_sql_and_values(
        backend,
        format!(
            "SELECT journal_id,
                    CAST(SUM(CASE WHEN account LIKE 'voucher_liability:%' THEN amount_minor ELSE 0 END) AS BIGINT) AS balance_minor,
                    CAST(SUM(CASE WHEN account LIKE 'held:%' THEN amount_minor ELSE 0 END) AS BIGINT) AS held_minor
             FROM postings WHERE voucher_id = {p} GROUP BY journal_id"
        ),
        [voucher_id.into()],
    ))
    .all(db)
    .await?;
    let journals = journal::Entity::find()
        .filter(journal::Column::Id.is_in(sums.iter().map(|s| s.journal_id)))
        .order_by_asc(journal::Column::Id)
        .all(db)
        .await?;
    Ok(journals
        .into_iter()
        .filter_map(|journal| {
            let s = sums.iter().find(|s| s.journal_id == journal.id)?;
            Some(JournalShare {
                balance_minor: s.balance_minor,
                held_minor: s.held_minor,
                journal,
            })
        })
        .collect())
}
