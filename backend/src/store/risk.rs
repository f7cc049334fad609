//! Fraud screening's rows: payment attempts with their source, the screener's claims, the
//! facts its rules read, and the flags they raise.
use sea_orm::{
    ConnectionTrait, DatabaseTransaction, DbErr, FromQueryResult, Statement, TransactionTrait,
    Value,
};
use time::OffsetDateTime;

use super::placeholders;
use crate::fraud::rules::{Redemption, VoucherFacts};

/// How a payment attempt ended, as the rules count it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttemptOutcome {
    Succeeded,
    Declined,
}

impl AttemptOutcome {
    fn as_str(self) -> &'static str {
        match self {
            Self::Succeeded => "succeeded",
            Self::Declined => "declined",
        }
    }
}

/// One payment attempt and where it came from.
#[derive(Clone, Debug)]
pub struct NewAttempt<'a> {
    pub merchant_id: &'a str,
    pub mode: &'a str,
    pub api_key_id: &'a str,
    /// The client address as a keyed hash: the rules compare addresses, never read them.
    pub client_ref: &'a str,
    pub outcome: AttemptOutcome,
    pub reason: Option<&'a str>,
    pub transaction_id: Option<&'a str>,
    pub created_at: OffsetDateTime,
}

pub async fn insert_attempt(db: &impl ConnectionTrait, a: &NewAttempt<'_>) -> Result<(), DbErr> {
    let backend = db.get_database_backend();
    db.execute(Statement::from_sql_and_values(
        backend,
        format!(
            "INSERT INTO payment_attempts (merchant_id, mode, api_key_id, client_ref, outcome, reason, transaction_id, created_at) VALUES ({})",
            placeholders(backend, 1, 8)
        ),
        [
            a.merchant_id.into(),
            a.mode.into(),
            a.api_key_id.into(),
            a.client_ref.into(),
            a.outcome.as_str().into(),
            a.reason.map(str::to_owned).into(),
            a.transaction_id.map(str::to_owned).into(),
            a.created_at.into(),
        ],
    ))
    .await?;
    Ok(())
}

/// A successful payment waiting to be screened.
#[derive(Clone, Debug, FromQueryResult)]
pub struct Unscreened {
    pub id: i64,
    pub merchant_id: String,
    pub mode: String,
    pub api_key_id: String,
    pub client_ref: String,
    pub transaction_id: String,
    pub order_id: String,
    /// The transaction's creation.
    pub created_at: OffsetDateTime,
    /// Its attempt row's time: the transaction's own, as the row is written with it (rows
    /// written before that were written just after the commit).
    pub attempt_at: OffsetDateTime,
}

/// Begins a transaction and claims up to `limit` unscreened successes in it: concurrent
/// screeners skip each other's rows (PostgreSQL) or wait for the write lock (SQLite).
pub async fn claim(
    db: &impl TransactionTrait,
    limit: u64,
) -> Result<(DatabaseTransaction, Vec<Unscreened>), DbErr> {
    let tx = super::begin(db).await?;
    let backend = tx.get_database_backend();
    let sql = format!(
        "SELECT a.id, a.merchant_id, a.mode, a.api_key_id, a.client_ref, a.transaction_id, t.order_id, t.created_at, a.created_at AS attempt_at
         FROM payment_attempts a JOIN transactions t ON t.id = a.transaction_id
         WHERE a.outcome = 'succeeded' AND a.screened_at IS NULL
         ORDER BY a.id LIMIT {limit}{}",
        if super::is_postgres(&tx) {
            " FOR UPDATE OF a SKIP LOCKED"
        } else {
            ""
        }
    );
    let rows = Unscreened::find_by_statement(Statement::from_string(backend, sql))
        .all(&tx)
        .await?;
    Ok((tx, rows))
}

pub async fn mark_screened(
    tx: &DatabaseTransaction,
    ids: &[i64],
    now: OffsetDateTime,
) -> Result<(), DbErr> {
    if ids.is_empty() {
        return Ok(());
    }
    let backend = tx.get_database_backend();
    let mut values: Vec<Value> = vec![now.into()];
    values.extend(ids.iter().map(|&id| Value::from(id)));
    tx.execute(Statement::from_sql_and_values(
        backend,
        format!(
            "UPDATE payment_attempts SET screened_at = {} WHERE id IN ({})",
            placeholders(backend, 1, 1),
            placeholders(backend, 2, ids.len())
        ),
        values,
    ))
    .await?;
    Ok(())
}

#[derive(FromQueryResult)]
struct VoucherRow {
    voucher_id: i64,
    last4: String,
    merchants: i64,
}

/// The payment's vouchers, each with the distinct merchants (of the payment's mode) it
/// paid from `since` up to the payment.
pub async fn voucher_spread(
    db: &impl ConnectionTrait,
    transaction_id: &str,
    since: OffsetDateTime,
) -> Result<Vec<VoucherFacts>, DbErr> {
    let backend = db.get_database_backend();
    let p = |n| placeholders(backend, n, 1);
    let sql = format!(
        "SELECT r.voucher_id, v.last4,
            (SELECT COUNT(DISTINCT t2.merchant_id) FROM redemptions r2
               JOIN transactions t2 ON t2.id = r2.transaction_id
              WHERE r2.voucher_id = r.voucher_id AND t2.mode = t.mode
                AND t2.created_at > {since} AND t2.created_at <= t.created_at) AS merchants
         FROM redemptions r
         JOIN transactions t ON t.id = r.transaction_id
         JOIN vouchers v ON v.id = r.voucher_id
         WHERE r.transaction_id = {txn}
         ORDER BY r.position",
        since = p(1),
        txn = p(2),
    );
    let rows = VoucherRow::find_by_statement(Statement::from_sql_and_values(
        backend,
        sql,
        [since.into(), transaction_id.into()],
    ))
    .all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| VoucherFacts {
            voucher_id: r.voucher_id,
            last4: r.last4,
            merchants: u32::try_from(r.merchants).unwrap_or(u32::MAX),
        })
        .collect())
}

#[derive(FromQueryResult)]
struct CountRow {
    n: i64,
}

/// Which source of declines to count.
#[derive(Clone, Copy, Debug)]
pub enum Source<'a> {
    Client(&'a str),
    Key(&'a str),
}

/// Declined attempts from one source in one mode within `(since, until]`.
pub async fn declines(
    db: &impl ConnectionTrait,
    mode: &str,
    source: Source<'_>,
    since: OffsetDateTime,
    until: OffsetDateTime,
) -> Result<u32, DbErr> {
    let backend = db.get_database_backend();
    let (column, value) = match source {
        Source::Client(c) => ("client_ref", c),
        Source::Key(k) => ("api_key_id", k),
    };
    let sql = format!(
        "SELECT COUNT(*) AS n FROM payment_attempts
         WHERE {column} = {} AND mode = {} AND outcome = 'declined'
           AND created_at > {} AND created_at <= {}",
        placeholders(backend, 1, 1),
        placeholders(backend, 2, 1),
        placeholders(backend, 3, 1),
        placeholders(backend, 4, 1),
    );
    let row = CountRow::find_by_statement(Statement::from_sql_and_values(
        backend,
        sql,
        [value.into(), mode.into(), since.into(), until.into()],
    ))
    .one(db)
    .await?;
    Ok(row.map_or(0, |r| u32::try_from(r.n).unwrap_or(u32::MAX)))
}

#[derive(FromQueryResult)]
struct RedemptionRow {
    transaction_id: String,
    amount_minor: i64,
    balance_after_minor: i64,
}

/// The redemptions of one client's successful payments in one mode within `(since, until]`.
pub async fn client_redemptions(
    db: &impl ConnectionTrait,
    mode: &str,
    client_ref: &str,
    since: OffsetDateTime,
    until: OffsetDateTime,
) -> Result<Vec<Redemption>, DbErr> {
    let backend = db.get_database_backend();
    let sql = format!(
        "SELECT r.transaction_id, r.amount_minor, r.balance_after_minor
         FROM payment_attempts a JOIN redemptions r ON r.transaction_id = a.transaction_id
         WHERE a.client_ref = {} AND a.mode = {} AND a.outcome = 'succeeded'
           AND a.created_at > {} AND a.created_at <= {}",
        placeholders(backend, 1, 1),
        placeholders(backend, 2, 1),
        placeholders(backend, 3, 1),
        placeholders(backend, 4, 1),
    );
    let rows = RedemptionRow::find_by_statement(Statement::from_sql_and_values(
        backend,
        sql,
        [client_ref.into(), mode.into(), since.into(), until.into()],
    ))
    .all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| Redemption {
            transaction_id: r.transaction_id,
            amount_minor: r.amount_minor,
            balance_after_minor: r.balance_after_minor,
        })
        .collect())
}

/// Records a broken rule for a transaction; a rule is recorded once per transaction.
pub async fn insert_flag(
    tx: &DatabaseTransaction,
    u: &Unscreened,
    rule: &str,
    detail: &str,
    now: OffsetDateTime,
) -> Result<(), DbErr> {
    let backend = tx.get_database_backend();
    tx.execute(Statement::from_sql_and_values(
        backend,
        format!(
            "INSERT INTO risk_flags (transaction_id, merchant_id, mode, rule, detail, created_at) VALUES ({}) ON CONFLICT (transaction_id, rule) DO NOTHING",
            placeholders(backend, 1, 6)
        ),
        [
            u.transaction_id.as_str().into(),
            u.merchant_id.as_str().into(),
            u.mode.as_str().into(),
            rule.into(),
            detail.into(),
            now.into(),
        ],
    ))
    .await?;
    Ok(())
}

/// Deletes the attempts no rule will read again: written before `before` and either
/// declined or already screened. Flags are kept.
pub async fn purge(db: &impl ConnectionTrait, before: OffsetDateTime) -> Result<u64, DbErr> {
    let backend = db.get_database_backend();
    let done = db
        .execute(Statement::from_sql_and_values(
            backend,
            format!(
                "DELETE FROM payment_attempts WHERE created_at < {} AND (outcome = 'declined' OR screened_at IS NOT NULL)",
                placeholders(backend, 1, 1)
            ),
            [before.into()],
        ))
        .await?;
    Ok(done.rows_affected())
}

#[cfg(test)]
mod tests {
    use time::Duration;

    use super::*;

    async fn database() -> sea_orm::DatabaseConnection {
        let db = crate::store::connect("sqlite::memory:", 1).await.unwrap();
        crate::store::migrate(&db).await.unwrap();
        db
    }

    fn attempt(outcome: AttemptOutcome, at: OffsetDateTime) -> NewAttempt<'static> {
        NewAttempt {
            merchant_id: "mer_1",
            mode: "test",
            api_key_id: "key_1",
            client_ref: "c1",
            outcome,
            reason: None,
            transaction_id: None,
            created_at: at,
        }
    }

    #[tokio::test]
    async fn purging_keeps_recent_attempts_and_successes_not_yet_screened() {
        let db = database().await;
        let now = OffsetDateTime::now_utc();
        let old = now - Duration::hours(3);
        for a in [
            attempt(AttemptOutcome::Declined, old),
            attempt(AttemptOutcome::Succeeded, old),
            attempt(AttemptOutcome::Succeeded, old),
            attempt(AttemptOutcome::Declined, now),
        ] {
            insert_attempt(&db, &a).await.unwrap();
        }
        // The second old success has been screened.
        let tx = crate::store::begin(&db).await.unwrap();
        mark_screened(&tx, &[3], now).await.unwrap();
        tx.commit().await.unwrap();

        assert_eq!(purge(&db, now - Duration::hours(1)).await.unwrap(), 2);
        let left: Vec<(i64, String)> = db
            .query_all(Statement::from_string(
                db.get_database_backend(),
                "SELECT id, outcome FROM payment_attempts ORDER BY id",
            ))
            .await
            .unwrap()
            .into_iter()
            .map(|r| {
                (
                    r.try_get_by_index(0).unwrap(),
                    r.try_get_by_index(1).unwrap(),
                )
            })
            .collect();
        assert_eq!(
            left,
            [(2, "succeeded".to_owned()), (4, "declined".to_owned())]
        );
    }
}
