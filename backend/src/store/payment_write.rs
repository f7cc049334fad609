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
    payments, risk, vouchers, webhooks,
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
    /// The fraud screener's row (`payment_attempts`), written with the payment so that no
    /// success commits without it; `None` with screening off.
    pub attempt: Option<AttemptSource>,
}

/// Where a payment came from, as the fraud screener records it. The merchant, mode,
/// transaction and time are the transaction's own.
#[derive(Debug, Clone)]
pub struct AttemptSource {
    pub api_key_id: String,
    /// The client address as a keyed hash ([`crate::fraud::AttemptLog::source`]).
    pub client_ref: String,
}

/// What happened; anything but `Written` means the caller must roll back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOutcome {
    Written,
    /// A debit found less balance than planned (only possible without the row locks).
    BalanceChanged,
    /// The order already has a successful payment (unique index).
    OrderTaken,
    /// A response is stored under this idempotency key already (a retry, or another
    /// request first): the caller rolls back and replays it.
    IdempotencyKeyTaken,
}

/// Writes the payment inside the caller's transaction.
pub async fn write_payment(
    db: &impl ConnectionTrait,
    w: PaymentWrite,
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

/// The statement's text and its bind values, written in one pass: each value appends its
/// `$n::type` placeholder where it stands in the text.
struct Sql {
    text: String,
    values: Vec<Value>,
}

impl Sql {
    /// Appends literal SQL.
    fn s(&mut self, sql: &str) -> &mut Self {
        self.text.push_str(sql);
        self
    }

    /// Binds `v` and appends its placeholder.
    fn p(&mut self, v: impl Into<Value>, ty: &str) -> &mut Self {
        self.values.push(v.into());
        let n = self.values.len();
        self.placeholder(n, ty)
    }

    /// Appends the placeholder of the `n`th value again (a value the text uses twice).
    fn placeholder(&mut self, n: usize, ty: &str) -> &mut Self {
        self.text.push('$');
        self.text.push_str(itoa::Buffer::new().format(n));
        self.text.push_str("::");
        self.text.push_str(ty);
        self
    }
}

async fn write_postgres(db: &impl ConnectionTrait, w: PaymentWrite) -> Result<WriteOutcome, DbErr> {
    let PaymentWrite {
        transaction: t,
        debits,
        lines,
        event: e,
        idempotency,
        attempt,
    } = w;
    let expected_debits = debits.len() as i64;
    let expected_idem = i64::from(idempotency.is_some());
    let kind = journal_kind(&t);
    let mut q = Sql {
        text: String::with_capacity(4096),
        values: Vec::with_capacity(32 + 6 * debits.len() + 3 * lines.lines().len()),
    };
    // $1 and $2: the time and the transaction id, which the text names several times.
    q.values.push(t.created_at.into());
    q.values.push(t.id.into());
    let now = |q: &mut Sql| {
        q.placeholder(1, "timestamptz");
    };
    let txn_id = |q: &mut Sql| {
        q.placeholder(2, "text");
    };

    q.s("WITH d(id, take, forfeit, used, position, balance_after) AS (VALUES ");
    for (i, d) in debits.iter().enumerate() {
        q.s(if i == 0 { "(" } else { ", (" })
            .p(d.voucher_id, "bigint")
            .s(", ")
            .p(d.amount_minor, "bigint")
            .s(", ")
            .p(d.forfeit_minor, "bigint")
            .s(", ")
            .p(d.mark_used, "boolean")
            .s(", ")
            .p(d.position, "integer")
            .s(", ")
            .p(d.balance_after_minor, "bigint")
            .s(")");
    }
    q.s("),
        debit AS (
            UPDATE vouchers AS v SET balance_minor = v.balance_minor - d.take - d.forfeit, updated_at = ");
    now(&mut q);
    q.s(",
                first_used_at = COALESCE(v.first_used_at, ");
    now(&mut q);
    q.s("),
                status = CASE WHEN d.used THEN 'used' ELSE v.status END
            FROM d WHERE v.id = d.id AND v.balance_minor >= d.take + d.forfeit AND v.status = 'active'
            RETURNING v.id
        ),
        txn AS (
            INSERT INTO transactions (id, merchant_id, mode, order_id, status, currency, amount_minor,
                commission_minor, net_minor, refunded_minor, created_at, hold_state, authorized_minor,
                hold_expires_at)
            VALUES (");
    txn_id(&mut q);
    q.s(", ").p(t.merchant_id, "text");
    let merchant_n = q.values.len();
    q.s(", ").p(t.mode, "text");
    let mode_n = q.values.len();
    q.s(", ")
        .p(t.order_id, "text")
        .s(", ")
        .p(t.status, "text")
        .s(", ")
        .p(t.currency, "text")
        .s(", ")
        .p(t.amount_minor, "bigint")
        .s(", ")
        .p(t.commission_minor, "bigint")
        .s(", ")
        .p(t.net_minor, "bigint")
        .s(", 0, ");
    now(&mut q);
    q.s(", ")
        .p(t.hold_state, "text")
        .s(", ")
        .p(t.authorized_minor, "bigint")
        .s(", ")
        .p(t.hold_expires_at, "timestamptz")
        .s(")
        ),
        red AS (
            INSERT INTO redemptions (transaction_id, voucher_id, position, amount_minor, balance_after_minor, created_at)
            SELECT ");
    txn_id(&mut q);
    q.s(", d.id, d.position, d.take, d.balance_after, ");
    now(&mut q);
    q.s(" FROM d
        ),
        jr AS (
            INSERT INTO journals (kind, transaction_id, currency, created_at)
            VALUES (")
        .p(kind, "text")
        .s(", ");
    txn_id(&mut q);
    q.s(", ").p(t.currency, "text").s(", ");
    now(&mut q);
    q.s(") RETURNING id
        ),
        po AS (
            INSERT INTO postings (journal_id, account, voucher_id, amount_minor)
            SELECT jr.id, p.account, p.voucher_id, p.amount FROM jr CROSS JOIN (VALUES ");
    for (i, l) in lines.into_lines().into_iter().enumerate() {
        q.s(if i == 0 { "(" } else { ", (" })
            .p(l.account, "text")
            .s(", ")
            .p(l.voucher_id, "bigint")
            .s(", ")
            .p(l.amount_minor, "bigint")
            .s(")");
    }
    q.s(") AS p(account, voucher_id, amount)
        ),
        ev AS (
            INSERT INTO events (id, merchant_id, mode, kind, transaction_id, payload, created_at)
            VALUES (")
        .p(e.id, "text")
        .s(", ")
        .p(e.merchant_id, "text")
        .s(", ")
        .p(e.mode, "text")
        .s(", ")
        .p(e.kind, "text")
        .s(", ");
    txn_id(&mut q);
    // As text cast to jsonb: the driver copies every bind value once more before encoding
    // it, which for a JSON tree means cloning each of its maps; a string is one copy.
    q.s(", ").p(e.payload.to_string(), "jsonb").s(", ");
    now(&mut q);
    q.s(")
        )");
    match idempotency {
        Some(i) => {
            q.s(", idem AS (
                INSERT INTO idempotency_keys (merchant_id, mode, operation, key, request_hash, response_status, response_body, created_at, expires_at)
                VALUES (")
                .p(i.merchant_id, "text")
                .s(", ")
                .p(i.mode, "text")
                .s(", ")
                .p(i.operation, "text")
                .s(", ")
                .p(i.key, "text")
                .s(", ")
                .p(i.request_hash, "text")
                .s(", ")
                .p(i.response_status, "integer")
                .s(", ")
                .p(i.response_body, "text")
                .s(", ");
            now(&mut q);
            q.s(", ").p(i.expires_at, "timestamptz").s(
                ")
                ON CONFLICT (merchant_id, mode, operation, key) DO UPDATE SET
                    request_hash = EXCLUDED.request_hash, response_status = EXCLUDED.response_status,
                    response_body = EXCLUDED.response_body, created_at = EXCLUDED.created_at,
                    expires_at = EXCLUDED.expires_at
                WHERE idempotency_keys.expires_at <= EXCLUDED.created_at
                RETURNING 1
            )",
            );
        }
        None => {
            q.s(", idem AS (SELECT 1 WHERE false)");
        }
    }
    if let Some(a) = attempt {
        q.s(", att AS (
                INSERT INTO payment_attempts (merchant_id, mode, api_key_id, client_ref, outcome, transaction_id, created_at)
                VALUES (")
            .placeholder(merchant_n, "text")
            .s(", ")
            .placeholder(mode_n, "text")
            .s(", ")
            .p(a.api_key_id, "text")
            .s(", ")
            .p(a.client_ref, "text")
            .s(", 'succeeded', ");
        txn_id(&mut q);
        q.s(", ");
        now(&mut q);
        q.s(")
            )");
    }
    q.s("
        SELECT (SELECT count(*) FROM debit) AS debited, (SELECT count(*) FROM idem) AS idem_written");
    let row = db
        .query_one(Statement::from_sql_and_values(
            DbBackend::Postgres,
            q.text,
            q.values,
        ))
        .await?
        .ok_or_else(|| DbErr::Custom("payment statement returned no row".into()))?;
    let debited: i64 = row.try_get("", "debited")?;
    let idem_written: i64 = row.try_get("", "idem_written")?;
    Ok(if debited != expected_debits {
        WriteOutcome::BalanceChanged
    } else if idem_written != expected_idem {
        WriteOutcome::IdempotencyKeyTaken
    } else {
        WriteOutcome::Written
    })
}

async fn write_sequential(
    db: &impl ConnectionTrait,
    w: PaymentWrite,
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
    webhooks::insert_event(db, w.event).await?;
    if let Some(i) = w.idempotency {
        super::idempotency::insert(db, i).await?;
    }
    if let Some(a) = &w.attempt {
        risk::insert_attempt(
            db,
            &risk::NewAttempt {
                merchant_id: &t.merchant_id,
                mode: t.mode.0.as_str(),
                api_key_id: &a.api_key_id,
                client_ref: &a.client_ref,
                outcome: risk::AttemptOutcome::Succeeded,
                reason: None,
                transaction_id: Some(&t.id),
                created_at: t.created_at,
            },
        )
        .await?;
    }
    Ok(WriteOutcome::Written)
}
