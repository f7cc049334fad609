//! The back-office's own reads: daily sums per currency, a transaction's ledger postings
//! and its events' webhook deliveries.
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, FromQueryResult, QueryFilter,
    QueryOrder, Statement,
};
use time::OffsetDateTime;

use super::entities::{event, journal, posting};

/// Sums of one currency on one UTC day.
#[derive(Debug, Clone, FromQueryResult)]
pub struct DaySums {
    pub currency: String,
    /// `YYYY-MM-DD`, UTC.
    pub day: String,
    pub n: i64,
    pub amount: i64,
    pub commission: i64,
    pub net: i64,
}

/// The UTC day of a timestamp column, grouped on; [`day_text`] shows it as `YYYY-MM-DD`.
/// SQLite keeps timestamps as text that starts with the date (every timestamp is written in
/// UTC). On PostgreSQL a cast to `date` costs a third of `to_char` over a month of rows.
fn day_of(backend: DbBackend, col: &str) -> String {
    match backend {
        DbBackend::Postgres => format!("({col} AT TIME ZONE 'UTC')::date"),
        _ => format!("substr({col}, 1, 10)"),
    }
}

/// [`day_of`] as text (`YYYY-MM-DD` on both databases).
fn day_text(backend: DbBackend, col: &str) -> String {
    match backend {
        DbBackend::Postgres => format!("CAST({} AS TEXT)", day_of(backend, col)),
        _ => day_of(backend, col),
    }
}

async fn day_sums(
    db: &impl ConnectionTrait,
    table: &str,
    only_money_taken: bool,
    merchant_id: &str,
    mode: &str,
    since: OffsetDateTime,
) -> Result<Vec<DaySums>, DbErr> {
    let backend = db.get_database_backend();
    let p = |i| super::placeholders(backend, i, 1);
    // Holds not captured took no money from the merchant's point of view: no volume.
    let taken = if only_money_taken {
        " AND (hold_state IS NULL OR hold_state = 'captured')"
    } else {
        ""
    };
    let sql = format!(
        "SELECT currency, {day_text} AS day, COUNT(*) AS n, \
         CAST(COALESCE(SUM(amount_minor), 0) AS BIGINT) AS amount, \
         CAST(COALESCE(SUM(commission_minor), 0) AS BIGINT) AS commission, \
         CAST(COALESCE(SUM(net_minor), 0) AS BIGINT) AS net \
         FROM {table} WHERE merchant_id = {p1} AND mode = {p2} AND created_at >= {p3}{taken} \
         GROUP BY currency, {day} ORDER BY currency, day",
        day = day_of(backend, "created_at"),
        day_text = day_text(backend, "created_at"),
        p1 = p(1),
        p2 = p(2),
        p3 = p(3),
    );
    DaySums::find_by_statement(Statement::from_sql_and_values(
        backend,
        sql,
        [merchant_id.into(), mode.into(), since.into()],
    ))
    .all(db)
    .await
}

/// Payments (captured at once or captured holds) per currency and day since `since`.
pub async fn sales_by_day(
    db: &impl ConnectionTrait,
    merchant_id: &str,
    mode: &str,
    since: OffsetDateTime,
) -> Result<Vec<DaySums>, DbErr> {
    day_sums(db, "transactions", true, merchant_id, mode, since).await
}

/// Refunds per currency and day since `since`.
pub async fn refunds_by_day(
    db: &impl ConnectionTrait,
    merchant_id: &str,
    mode: &str,
    since: OffsetDateTime,
) -> Result<Vec<DaySums>, DbErr> {
    day_sums(db, "refunds", false, merchant_id, mode, since).await
}

/// The journals of one transaction (payment, capture, refunds...) with their postings,
/// oldest first. The caller has already checked the transaction is the merchant's.
pub async fn postings_of(
    db: &impl ConnectionTrait,
    transaction_id: &str,
) -> Result<Vec<(journal::Model, Vec<posting::Model>)>, DbErr> {
    let journals = journal::Entity::find()
        .filter(journal::Column::TransactionId.eq(transaction_id))
        .order_by_asc(journal::Column::Id)
        .all(db)
        .await?;
    let ids: Vec<i64> = journals.iter().map(|j| j.id).collect();
    let postings = posting::Entity::find()
        .filter(posting::Column::JournalId.is_in(ids))
        .order_by_asc(posting::Column::Id)
        .all(db)
        .await?;
    Ok(journals
        .into_iter()
        .map(|j| {
            let lines = postings
                .iter()
                .filter(|p| p.journal_id == j.id)
                .cloned()
                .collect();
            (j, lines)
        })
        .collect())
}

/// The events of one of a merchant's transactions, oldest first.
pub async fn events_of_transaction(
    db: &impl ConnectionTrait,
    merchant_id: &str,
    mode: &str,
    transaction_id: &str,
) -> Result<Vec<event::Model>, DbErr> {
    event::Entity::find()
        .filter(event::Column::MerchantId.eq(merchant_id))
        .filter(event::Column::Mode.eq(mode))
        .filter(event::Column::TransactionId.eq(transaction_id))
        .order_by_asc(event::Column::Id)
        .all(db)
        .await
}
