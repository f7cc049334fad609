//! Holds: the conditional update that ends one, its redemptions' release, and the due ones.
use sea_orm::{
    sea_query::Expr, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use time::OffsetDateTime;

use super::entities::{
    redemption,
    transaction::{self, HoldState},
};

/// How a hold ends: its new state and, for a capture, the captured amount and its split.
#[derive(Debug, Clone, Copy)]
pub struct Ending {
    pub state: HoldState,
    /// Captured amount, commission and net; None leaves the authorized amounts standing.
    pub captured: Option<(i64, i64, i64)>,
}

/// Moves an authorized hold to `ending.state`. Only one caller can ever succeed: the update
/// is conditional on the hold still being authorized (and, for a capture or an expiry, on
/// which side of its expiry `now` is), so a capture racing a cancel or the worker's expiry
/// resolves to exactly one outcome on PostgreSQL and SQLite alike. False: not authorized
/// any more.
pub async fn end(
    db: &impl ConnectionTrait,
    transaction_id: &str,
    ending: Ending,
    now: OffsetDateTime,
) -> Result<bool, DbErr> {
    let mut q = transaction::Entity::update_many()
        .col_expr(transaction::Column::HoldState, Expr::value(ending.state))
        .filter(transaction::Column::Id.eq(transaction_id))
        .filter(transaction::Column::HoldState.eq(HoldState::Authorized));
    if let Some((amount, commission, net)) = ending.captured {
        q = q
            .col_expr(transaction::Column::AmountMinor, Expr::value(amount))
            .col_expr(
                transaction::Column::CommissionMinor,
                Expr::value(commission),
            )
            .col_expr(transaction::Column::NetMinor, Expr::value(net));
    }
    q = match ending.state {
        HoldState::Expired => q.filter(transaction::Column::HoldExpiresAt.lte(now)),
        HoldState::Captured => q.filter(transaction::Column::HoldExpiresAt.gt(now)),
        _ => q,
    };
    Ok(q.exec(db).await?.rows_affected == 1)
}

/// Lowers a redemption to what was captured from its voucher; removes it when nothing was.
pub async fn keep_captured(
    db: &impl ConnectionTrait,
    redemption_id: i64,
    captured: i64,
) -> Result<(), DbErr> {
    if captured == 0 {
        redemption::Entity::delete_by_id(redemption_id)
            .exec(db)
            .await?;
    } else {
        redemption::Entity::update_many()
            .col_expr(redemption::Column::AmountMinor, Expr::value(captured))
            .filter(redemption::Column::Id.eq(redemption_id))
            .exec(db)
            .await?;
    }
    Ok(())
}

/// Authorized holds whose time ran out, oldest first (at most `limit`).
pub async fn due(
    db: &impl ConnectionTrait,
    now: OffsetDateTime,
    limit: u64,
) -> Result<Vec<transaction::Model>, DbErr> {
    transaction::Entity::find()
        .filter(transaction::Column::HoldState.eq(HoldState::Authorized))
        .filter(transaction::Column::HoldExpiresAt.lte(now))
        .order_by_asc(transaction::Column::HoldExpiresAt)
        .limit(limit)
        .all(db)
        .await
}

/// A transaction by id alone, locked (PostgreSQL) for the rest of the database transaction.
pub async fn lock_by_id(
    db: &impl ConnectionTrait,
    id: &str,
) -> Result<Option<transaction::Model>, DbErr> {
    let mut q = transaction::Entity::find_by_id(id.to_owned());
    if super::is_postgres(db) {
        q = q.lock_exclusive();
    }
    q.one(db).await
}
