//! Writing one payment: every row of design §4 in one round trip on PostgreSQL.
//!
//! On PostgreSQL the debits and all inserts go out as a single statement of data-modifying
//! CTEs (foreign keys are checked at the end of the statement, so children may name a
//! parent inserted beside them). SQLite has no data-modifying CTEs; there the same rows are
//! written statement by statement, which costs nothing extra on an in-process database.
use sea_orm::{ConnectionTrait, DbBackend, DbErr, Statement, Value};

use super::{
    entities::{event, idempotency_key, redemption, transaction},
    ledger::{self, Lines},
    payments, vouchers, webhooks,
};

/// One voucher debit of a payment.
#[derive(Debug, Clone)]
pub struct Debit {
    pub voucher_id: i64,
    pub amount_minor: i64,
    /// A single-use voucher's forfeited remainder, debited too (posted to breakage).
    pub forfeit_minor: i64,
    pub balance_after_minor: i64,
    pub position: i32,
    pub mark_used: bool,
}

/// Everything one payment writes.
#[derive(Debug, Clone)]
pub struct PaymentWrite {
    pub transaction: transaction::Model,
    pub debits: Vec<Debit>,
    pub lines: Lines,
    pub event: event::Model,
    pub idempotency: Option<idempotency_key::Model>,
}

/// What happened; anything but `Written` means the caller must roll back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOutcome {
    Written,
    /// A debit found less balance than planned (only possible without the row locks).
    BalanceChanged,
    /// The order already has a successful payment (unique index).
    OrderTaken,
    /// Another request stored a response under this idempotency key first.
    IdempotencyKeyTaken,
}

/// Writes the payment inside the caller's transaction.
pub async fn write_payment(
    db: &impl ConnectionTrait,
    w: &PaymentWrite,
) -> Result<WriteOutcome, DbErr> {
    let result = if db.get_database_backend() == DbBackend::Postgres {
        write_postgres(db, w).await
    } else {
        write_sequential(db, w).await
    };
    match result {
        Err(e) => match super::unique_violation(&e) {
            Some(super::Unique::TransactionOrder) => Ok(WriteOutcome::OrderTaken),
            Some(super::Unique::IdempotencyScope) => Ok(WriteOutcome::IdempotencyKeyTaken),
            _ => Err(e),
        },
        ok => ok,
    }
}

/// A payment captured at once is a `payment` journal; a hold is an `authorization`.
fn journal_kind(t: &transaction::Model) -> &'static str {
    if t.hold_state.is_some() {
        "authorization"
    } else {
        "payment"
    }
}

/// Collects bind values and hands out `$n::type` placeholders.
struct Binds(Vec<Value>);

impl Binds {
    fn p(&mut self, v: impl Into<Value>, ty: &str) -> String {
        self.0.push(v.into());
        format!("${}::{ty}", self.0.len())
    }
}

async fn write_postgres(
    db: &impl ConnectionTrait,
    w: &PaymentWrite,
) -> Result<WriteOutcome, DbErr> {
    let mut b = Binds(Vec::with_capacity(64));
    let t = &w.transaction;
    let now = b.p(t.created_at, "timestamptz");

    let debits = w
        .debits
        .iter()
        .map(|d| {
            format!(
                "({}, {}, {}, {}, {}, {})",
                b.p(d.voucher_id, "bigint"),
                b.p(d.amount_minor, "bigint"),
                b.p(d.forfeit_minor, "bigint"),
                b.p(d.mark_used, "boolean"),
                b.p(d.position, "integer"),
                b.p(d.balance_after_minor, "bigint"),
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    let txn_id = b.p(t.id.clone(), "text");
    let txn_values = format!(
        "({txn_id}, {}, {}, {}, {}, {}, {}, {}, {}, 0, {now}, {}, {}, {})",
        b.p(t.merchant_id.clone(), "text"),
        b.p(t.mode, "text"),
        b.p(t.order_id.clone(), "text"),
        b.p(t.status, "text"),
        b.p(t.currency, "text"),
        b.p(t.amount_minor, "bigint"),
        b.p(t.commission_minor, "bigint"),
        b.p(t.net_minor, "bigint"),
        b.p(t.hold_state, "text"),
        b.p(t.authorized_minor, "bigint"),
        b.p(t.hold_expires_at, "timestamptz"),
    );
    let lines = w
        .lines
        .lines()
        .iter()
        .map(|l| {
            format!(
                "({}, {}, {})",
                b.p(l.account.clone(), "text"),
                b.p(l.voucher_id, "bigint"),
                b.p(l.amount_minor, "bigint"),
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    let e = &w.event;
    let event_values = format!(
        "({}, {}, {}, {}, {txn_id}, {}, {now})",
        b.p(e.id.clone(), "text"),
        b.p(e.merchant_id.clone(), "text"),
        b.p(e.mode, "text"),
        b.p(e.kind, "text"),
        b.p(e.payload.clone(), "jsonb"),
    );
    let idem = match &w.idempotency {
        Some(i) => format!(
            ", idem AS (
                INSERT INTO idempotency_keys (merchant_id, mode, operation, key, request_hash, response_status, response_body, created_at, expires_at)
                VALUES ({}, {}, {}, {}, {}, {}, {}, {now}, {})
                ON CONFLICT (merchant_id, mode, operation, key) DO UPDATE SET
                    request_hash = EXCLUDED.request_hash, response_status = EXCLUDED.response_status,
                    response_body = EXCLUDED.response_body, created_at = EXCLUDED.created_at,
                    expires_at = EXCLUDED.expires_at
                WHERE idempotency_keys.expires_at <= EXCLUDED.created_at
                RETURNING 1
            )",
            b.p(i.merchant_id.clone(), "text"),
            b.p(i.mode, "text"),
            b.p(i.operation.clone(), "text"),
            b.p(i.key.clone(), "text"),
            b.p(i.request_hash.clone(), "text"),
            b.p(i.response_status, "integer"),
            b.p(i.response_body.clone(), "text"),
            b.p(i.expires_at, "timestamptz"),
        ),
        None => ", idem AS (SELECT 1 WHERE false)".to_owned(),
    };
    let expected_idem = i64::from(w.idempotency.is_some());
    let sql = format!(
        "WITH d(id, take, forfeit, used, position, balance_after) AS (VALUES {debits}),
        debit AS (
            UPDATE vouchers AS v SET balance_minor = v.balance_minor - d.take - d.forfeit, updated_at = {now},
                first_used_at = COALESCE(v.first_used_at, {now}),
                status = CASE WHEN d.used THEN 'used' ELSE v.status END
            FROM d WHERE v.id = d.id AND v.balance_minor >= d.take + d.forfeit AND v.status = 'active'
            RETURNING v.id
        ),
        txn AS (
            INSERT INTO transactions (id, merchant_id, mode, order_id, status, currency, amount_minor,
                commission_minor, net_minor, refunded_minor, created_at, hold_state, authorized_minor,
                hold_expires_at)
            VALUES {txn_values}
        ),
        red AS (
            INSERT INTO redemptions (transaction_id, voucher_id, position, amount_minor, balance_after_minor, created_at)
            SELECT {txn_id}, d.id, d.position, d.take, d.balance_after, {now} FROM d
        ),
        jr AS (
            INSERT INTO journals (kind, transaction_id, currency, created_at)
            VALUES ({kind}, {txn_id}, {cur}, {now}) RETURNING id
        ),
        po AS (
            INSERT INTO postings (journal_id, account, voucher_id, amount_minor)
            SELECT jr.id, p.account, p.voucher_id, p.amount FROM jr CROSS JOIN (VALUES {lines}) AS p(account, voucher_id, amount)
        ),
        ev AS (
            INSERT INTO events (id, merchant_id, mode, kind, transaction_id, payload, created_at)
            VALUES {event_values}
        ){idem}
        SELECT (SELECT count(*) FROM debit) AS debited, (SELECT count(*) FROM idem) AS idem_written",
        cur = b.p(t.currency, "text"),
        kind = b.p(journal_kind(t), "text"),
    );
    let row = db
        .query_one(Statement::from_sql_and_values(
            DbBackend::Postgres,
            sql,
            b.0,
        ))
        .await?
        .ok_or_else(|| DbErr::Custom("payment statement returned no row".into()))?;
    let debited: i64 = row.try_get("", "debited")?;
    let idem_written: i64 = row.try_get("", "idem_written")?;
    Ok(if debited != w.debits.len() as i64 {
        WriteOutcome::BalanceChanged
    } else if idem_written != expected_idem {
        WriteOutcome::IdempotencyKeyTaken
    } else {
        WriteOutcome::Written
    })
}

async fn write_sequential(
    db: &impl ConnectionTrait,
    w: &PaymentWrite,
) -> Result<WriteOutcome, DbErr> {
    let t = &w.transaction;
    payments::insert_transaction(db, t.clone()).await?;
    for d in &w.debits {
        let debit = d.amount_minor + d.forfeit_minor;
        if !vouchers::debit(db, d.voucher_id, debit, d.mark_used, t.created_at).await? {
            return Ok(WriteOutcome::BalanceChanged);
        }
    }
    payments::insert_redemptions(
        db,
        w.debits
            .iter()
            .map(|d| redemption::Model {
                id: 0,
                transaction_id: t.id.clone(),
                voucher_id: d.voucher_id,
                position: d.position,
                amount_minor: d.amount_minor,
                balance_after_minor: d.balance_after_minor,
                created_at: t.created_at,
            })
            .collect(),
    )
    .await?;
    ledger::post(db, journal_kind(t), Some(&t.id), &w.lines, t.created_at).await?;
    webhooks::insert_event(db, w.event.clone()).await?;
    if let Some(i) = &w.idempotency {
        super::idempotency::insert(db, i.clone()).await?;
    }
    Ok(WriteOutcome::Written)
}
