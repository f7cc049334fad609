//! The claim every outbox queue shares (webhook deliveries, emails): due rows taken with
//! a lease, so any number of workers can drain one queue and a dead worker's rows come
//! back when their lease ends.
use sea_orm::{ConnectionTrait, DbErr, FromQueryResult, Statement, Value};
use time::OffsetDateTime;

use super::placeholders;

/// A table drained through [`claim_due`]: it has `id` (BIGINT), `status` (`pending` while
/// work remains) and `next_attempt_at` (due time; while claimed, the lease's end).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Queue {
    WebhookDeliveries,
    Emails,
}

impl Queue {
    fn table(self) -> &'static str {
        match self {
            Queue::WebhookDeliveries => "webhook_deliveries",
            Queue::Emails => "emails",
        }
    }
}

#[derive(Debug, FromQueryResult)]
struct IdRow {
    id: i64,
}

/// Claims up to `limit` due rows of `queue` until `lease_until`: a claimed row is not due
/// for anyone else, and one whose worker died becomes due again when the lease ends.
/// Concurrent claims skip each other's rows on PostgreSQL; SQLite serialises writers.
pub async fn claim_due(
    db: &impl ConnectionTrait,
    queue: Queue,
    now: OffsetDateTime,
    lease_until: OffsetDateTime,
    limit: u64,
) -> Result<Vec<i64>, DbErr> {
    let backend = db.get_database_backend();
    let postgres = backend == sea_orm::DbBackend::Postgres;
    let sql = format!(
        "UPDATE {table} SET next_attempt_at = {p1}
         WHERE id IN (SELECT id FROM {table}
                      WHERE status = 'pending' AND next_attempt_at <= {p2}
                      ORDER BY next_attempt_at LIMIT {limit}{skip})
         RETURNING id",
        table = queue.table(),
        p1 = placeholders(backend, 1, 1),
        p2 = placeholders(backend, 2, 1),
        skip = if postgres {
            " FOR UPDATE SKIP LOCKED"
        } else {
            ""
        },
    );
    Ok(IdRow::find_by_statement(Statement::from_sql_and_values(
        backend,
        sql,
        [lease_until.into(), now.into()],
    ))
    .all(db)
    .await?
    .into_iter()
    .map(|r| r.id)
    .collect())
}

/// Hands claimed rows of `queue` back, due now, without recording an attempt: a stopping
/// worker's claims are taken up by another worker at once instead of after their lease.
/// Only rows still pending under this claim's `lease_until` are touched, so an attempt
/// recorded meanwhile, or another worker's claim, is never undone. Returns how many.
pub async fn release(
    db: &impl ConnectionTrait,
    queue: Queue,
    ids: &[i64],
    lease_until: OffsetDateTime,
    now: OffsetDateTime,
) -> Result<u64, DbErr> {
    if ids.is_empty() {
        return Ok(0);
    }
    let backend = db.get_database_backend();
    let mut values: Vec<Value> = vec![now.into(), lease_until.into()];
    values.extend(ids.iter().map(|id| Value::from(*id)));
    let sql = format!(
        "UPDATE {table} SET next_attempt_at = {p1}
         WHERE status = 'pending' AND next_attempt_at = {p2} AND id IN ({ids})",
        table = queue.table(),
        p1 = placeholders(backend, 1, 1),
        p2 = placeholders(backend, 2, 1),
        ids = placeholders(backend, 3, ids.len()),
    );
    Ok(db
        .execute(Statement::from_sql_and_values(backend, sql, values))
        .await?
        .rows_affected())
}
