//! The checks after recovery: the database, the webhook receiver's log, `superpayment audit`
//! and every client answer must tell the same story; each disagreement is a violation.
use std::{
    collections::{BTreeMap, HashMap, HashSet},
    path::PathBuf,
    time::{Duration, Instant},
};

use anyhow::Context;
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, Statement, Value as DbValue};
use serde::Deserialize;

use crate::{
    load::{Answer, Kind},
    State,
};

#[derive(clap::Args)]
pub struct CheckArgs {
    #[arg(long)]
    state: PathBuf,
    #[arg(long)]
    answers: PathBuf,
    /// The webhook receiver's log of verified deliveries (JSON lines).
    #[arg(long)]
    receiver_log: PathBuf,
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    database_url: String,
    /// The `superpayment` binary whose `audit` must come back clean.
    #[arg(long)]
    superpayment: PathBuf,
    /// How long to wait for every committed payment's webhook to arrive.
    #[arg(long, default_value_t = 120)]
    webhook_wait_secs: u64,
    /// The faults the orchestration injected (one line each), printed with the figures.
    #[arg(long)]
    faults: Option<PathBuf>,
}

/// One line of the receiver's log.
#[derive(Deserialize)]
struct Delivery {
    webhook_id: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    txn: Option<String>,
    /// Set when the signature did not verify (the receiver answered 400).
    rejected: Option<String>,
}

struct Report {
    violations: BTreeMap<&'static str, Vec<String>>,
}

impl Report {
    fn add(&mut self, check: &'static str, detail: String) {
        self.violations.entry(check).or_default().push(detail);
    }
    fn total(&self) -> usize {
        self.violations.values().map(Vec::len).sum()
    }
}

async fn rows(
    db: &DatabaseConnection,
    sql: &str,
    merchant: &str,
) -> anyhow::Result<Vec<sea_orm::QueryResult>> {
    Ok(db
        .query_all(Statement::from_sql_and_values(
            db.get_database_backend(),
            sql,
            [DbValue::from(merchant.to_owned())],
        ))
        .await?)
}

fn read_lines<T: for<'de> Deserialize<'de>>(path: &PathBuf) -> anyhow::Result<Vec<T>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).with_context(|| format!("{}: {l}", path.display())))
        .collect()
}

/// Committed payments of the merchant: transaction id -> order id.
async fn committed(
    db: &DatabaseConnection,
    merchant: &str,
) -> anyhow::Result<HashMap<String, String>> {
    rows(
        db,
        "SELECT id, order_id FROM transactions WHERE merchant_id = $1 AND status <> 'failed'",
        merchant,
    )
    .await?
    .iter()
    .map(|r| Ok((r.try_get("", "id")?, r.try_get("", "order_id")?)))
    .collect()
}

/// Transaction id -> the distinct webhook ids its `payment.succeeded` arrived under.
type ByTxn = HashMap<String, HashSet<String>>;

/// Verified `payment.succeeded` deliveries by transaction, plus the number of deliveries
/// (at-least-once repeats included) and the rejected signatures.
fn deliveries(path: &PathBuf) -> anyhow::Result<(ByTxn, usize, Vec<String>)> {
    let mut by_txn = ByTxn::new();
    let (mut hits, mut rejected) = (0, Vec::new());
    for d in read_lines::<Delivery>(path)? {
        if let Some(why) = d.rejected {
            rejected.push(why);
            continue;
        }
        if d.kind.as_deref() != Some("payment.succeeded") {
            continue;
        }
        hits += 1;
        if let (Some(txn), Some(id)) = (d.txn, d.webhook_id) {
            by_txn.entry(txn).or_default().insert(id);
        }
    }
    Ok((by_txn, hits, rejected))
}

pub async fn run(a: CheckArgs) -> anyhow::Result<usize> {
    let state = State::read(&a.state)?;
    let m = state.merchant_id.as_str();
    let db = Database::connect(&a.database_url).await?;
    let mut report = Report {
        violations: BTreeMap::new(),
    };

    // Webhooks are at least once and asynchronous: wait (bounded) until every committed
    // payment has one at the receiver, then judge.
    let waited = Instant::now();
    let (txns, by_txn, hits, rejected) = loop {
        let txns = committed(&db, m).await?;
        let (by_txn, hits, rejected) = deliveries(&a.receiver_log)?;
        let done = txns.keys().all(|t| by_txn.contains_key(t));
        if done || waited.elapsed() >= Duration::from_secs(a.webhook_wait_secs) {
            break (txns, by_txn, hits, rejected);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let webhook_wait = waited.elapsed();

    // The database.
    for (check, sql) in [
        (
            "no negative balance",
            "SELECT 'voucher ' || CAST(id AS TEXT) || ' balance ' || CAST(balance_minor AS TEXT) AS d FROM vouchers WHERE balance_minor < 0 AND $1 <> ''",
        ),
        (
            "balance = ledger for every voucher",
            "SELECT 'voucher ' || CAST(v.id AS TEXT) || ' balance ' || CAST(v.balance_minor AS TEXT) || ' ledger ' || CAST(COALESCE(p.total, 0) AS TEXT) || ' issued-redeemed ' || CAST(v.initial_minor - COALESCE(r.total, 0) AS TEXT) AS d
             FROM vouchers v
             LEFT JOIN (SELECT voucher_id, SUM(amount_minor) AS total FROM postings WHERE account LIKE 'voucher_liability:%' GROUP BY voucher_id) p ON p.voucher_id = v.id
             LEFT JOIN (SELECT voucher_id, SUM(amount_minor) AS total FROM redemptions GROUP BY voucher_id) r ON r.voucher_id = v.id
             WHERE $1 <> '' AND (v.balance_minor <> COALESCE(p.total, 0) OR v.balance_minor <> v.initial_minor - COALESCE(r.total, 0))",
        ),
        (
            "one success per order id",
            "SELECT 'order ' || order_id || ' paid ' || CAST(COUNT(*) AS TEXT) || ' times' AS d FROM transactions
             WHERE merchant_id = $1 AND status <> 'failed' GROUP BY mode, order_id HAVING COUNT(*) > 1",
        ),
        (
            "one success per idempotency key",
            "SELECT 'key ' || key || ' stored ' || CAST(COUNT(*) AS TEXT) || ' times' AS d FROM idempotency_keys
             WHERE merchant_id = $1 GROUP BY mode, operation, key HAVING COUNT(*) > 1",
        ),
    ] {
        for r in rows(&db, sql, m).await? {
            report.add(check, r.try_get("", "d")?);
        }
    }

    // The receiver: exactly one payment.succeeded per payment, none for anything else.
    for (txn, ids) in &by_txn {
        if !txns.contains_key(txn) {
            report.add(
                "webhooks only for committed payments",
                format!("{txn} delivered but not in the database"),
            );
        }
        if ids.len() > 1 {
            report.add(
                "exactly one payment.succeeded per payment",
                format!("{txn} under {} webhook ids", ids.len()),
            );
        }
    }
    for txn in txns.keys().filter(|t| !by_txn.contains_key(*t)) {
        report.add(
            "exactly one payment.succeeded per payment",
            format!("{txn} never delivered"),
        );
    }
    for why in rejected {
        report.add("every delivery's signature verifies", why);
    }

    // `superpayment audit`, the ledger's own invariants.
    let audit = tokio::process::Command::new(&a.superpayment)
        .arg("audit")
        .env("DATABASE_URL", &a.database_url)
        .output()
        .await
        .context("running superpayment audit")?;
    if !audit.status.success() {
        report.add(
            "superpayment audit clean",
            String::from_utf8_lossy(&audit.stdout)
                .lines()
                .filter(|l| !l.starts_with("ok"))
                .collect::<Vec<_>>()
                .join("; "),
        );
    }

    // The client answers against the database.
    let answers: Vec<Answer> = read_lines(&a.answers)?;
    let stored: HashMap<String, i32> = rows(
        &db,
        "SELECT key, response_status FROM idempotency_keys WHERE merchant_id = $1 AND operation = 'payment'",
        m,
    )
    .await?
    .iter()
    .map(|r| Ok((r.try_get("", "key")?, r.try_get("", "response_status")?)))
    .collect::<anyhow::Result<_>>()?;
    let mut by_key: HashMap<&str, Vec<&Answer>> = HashMap::new();
    for answer in &answers {
        by_key.entry(&answer.key).or_default().push(answer);
    }
    let mut answered_orders: HashSet<&str> = HashSet::new();
    let (mut unresolved, mut definitive_errors) = (0usize, 0usize);
    for (key, list) in &by_key {
        answered_orders.insert(&list[0].order_id);
        let successes: HashSet<&str> = list
            .iter()
            .filter(|x| x.status == Some(201))
            .filter_map(|x| x.txn.as_deref())
            .collect();
        if successes.len() > 1 {
            report.add(
                "one transaction per key",
                format!("key {key} answered {successes:?}"),
            );
        }
        for txn in &successes {
            match txns.get(*txn) {
                None => report.add(
                    "every success answered is in the database",
                    format!("{txn} (key {key})"),
                ),
                Some(order) if order != &list[0].order_id => report.add(
                    "every success answered is in the database",
                    format!("{txn} is order {order}, answered for {}", list[0].order_id),
                ),
                Some(_) => {}
            }
        }
        let in_db = stored.get(*key) == Some(&201);
        let errors: Vec<&&Answer> = list
            .iter()
            .filter(|x| x.last && x.status != Some(201))
            .collect();
        for e in &errors {
            if !e.retryable {
                definitive_errors += 1;
            }
            if in_db && !e.retryable {
                report.add(
                    "never an error for a payment in the database",
                    format!(
                        "key {key} ({:?}) answered {:?} {:?} but its payment is committed",
                        e.kind, e.status, e.code
                    ),
                );
            }
            if e.retryable {
                unresolved += 1;
                if in_db {
                    report.add(
                        "never an error for a payment in the database",
                        format!(
                            "key {key} given up after {:?} {:?} but its payment is committed",
                            e.status, e.transport_error
                        ),
                    );
                }
            }
            if e.code.as_deref() == Some("order_already_paid") {
                let paid = txns
                    .iter()
                    .find(|(_, o)| *o == &e.order_id)
                    .map(|(t, _)| t.as_str());
                if paid.is_none() || paid != e.txn.as_deref() {
                    report.add(
                        "order_already_paid names the order's payment",
                        format!(
                            "order {} answered {:?}, database {paid:?}",
                            e.order_id, e.txn
                        ),
                    );
                }
            }
        }
        if !successes.is_empty() && !in_db {
            report.add(
                "every success answered is in the database",
                format!("key {key} answered 201, no stored 201"),
            );
        }
        // A 201 replay must name the same transaction as the first answer: covered by the
        // one-transaction-per-key check above.
    }
    for (txn, order) in &txns {
        if !answered_orders.contains(order.as_str()) {
            report.add(
                "every committed payment was sent by a client",
                format!("{txn} for order {order}"),
            );
        }
    }

    // The figures.
    let count = |f: &dyn Fn(&Answer) -> bool| answers.iter().filter(|x| f(x)).count();
    let first_keys: HashSet<&str> = answers
        .iter()
        .filter(|x| x.kind == Kind::First)
        .map(|x| x.key.as_str())
        .collect();
    let mut status_counts: BTreeMap<String, usize> = BTreeMap::new();
    for x in &answers {
        let s = match (x.status, &x.code) {
            (Some(s), Some(c)) => format!("{s} {c}"),
            (Some(s), None) => s.to_string(),
            (None, _) => "no answer".into(),
        };
        *status_counts.entry(s).or_default() += 1;
    }
    println!("== reliability check ==");
    println!("payments sent (first requests):   {}", first_keys.len());
    println!("committed in the database:        {}", txns.len());
    println!("client answers recorded:          {}", answers.len());
    println!(
        "double clicks sent:               {}",
        count(&|x| x.kind == Kind::DoubleClick && x.attempt == 0)
    );
    println!(
        "duplicate keys sent:              {}",
        count(&|x| x.kind == Kind::Duplicate && x.attempt == 0)
    );
    println!(
        "orders paid again with a new key: {}",
        count(&|x| x.kind == Kind::OrderAgain && x.attempt == 0)
    );
    println!(
        "retries (same key after a retryable answer): {}",
        count(&|x| x.attempt > 0)
    );
    println!(
        "replayed answers (Idempotent-Replayed):      {}",
        count(&|x| x.replayed)
    );
    println!("definitive errors (declines, already paid):   {definitive_errors}");
    println!("given up while still retryable:               {unresolved}");
    println!("answers by status: {status_counts:?}");
    println!(
        "webhooks: {} payment.succeeded deliveries received ({} distinct payments), waited {:.1} s",
        hits,
        by_txn.len(),
        webhook_wait.as_secs_f64()
    );
    if let Some(path) = &a.faults {
        let faults = std::fs::read_to_string(path).unwrap_or_default();
        println!("faults injected ({}):", faults.lines().count());
        for line in faults.lines() {
            println!("  {line}");
        }
    }
    for (check, list) in &report.violations {
        println!(
            "VIOLATION {check}: {} ({})",
            list.len(),
            list.iter().take(5).cloned().collect::<Vec<_>>().join("; ")
        );
    }
    println!("violations: {}", report.total());
    Ok(report.total())
}
