//! The payments: shoppers across N base URLs with duplicate keys, double clicks, hot vouchers
//! and the widget's retry with the same key; every HTTP answer is recorded.
use std::{
    path::PathBuf,
    sync::{
        atomic::{AtomicU64, AtomicUsize, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use anyhow::Context;
use rand::{seq::SliceRandom, Rng};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::{io::AsyncWriteExt, sync::mpsc};

use crate::State;

#[derive(clap::Args)]
pub struct LoadArgs {
    #[arg(long)]
    state: PathBuf,
    /// Base URLs of the instances (or of the load balancer), comma-separated; requests go
    /// round-robin and a retry goes to the next one, as behind a load balancer.
    #[arg(long, value_delimiter = ',', required = true)]
    base: Vec<String>,
    /// Logical payments to send (each with its own order id and key).
    #[arg(long, default_value_t = 1000)]
    payments: usize,
    /// Stop starting payments after this many seconds, whatever --payments says.
    #[arg(long)]
    duration_secs: Option<u64>,
    /// Payments in flight at once.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Label of this run (scenario): the order ids start with it.
    #[arg(long, default_value = "run")]
    label: String,
    /// Share of payments resent later with the same key and body (expects the replay).
    #[arg(long, default_value_t = 0.05)]
    duplicate_rate: f64,
    /// Share of payments sent twice at once with the same key (a double click).
    #[arg(long, default_value_t = 0.05)]
    double_click_rate: f64,
    /// Share of payments on one of the few hot vouchers.
    #[arg(long, default_value_t = 0.1)]
    hot_rate: f64,
    /// Share of orders paid again with a new key (expects order_already_paid).
    #[arg(long, default_value_t = 0.02)]
    order_again_rate: f64,
    /// How long one key keeps being retried on retryable answers before it is given up.
    #[arg(long, default_value_t = 120)]
    give_up_secs: u64,
    /// Answers file: one JSON line per HTTP answer, appended.
    #[arg(long)]
    answers: PathBuf,
}

/// Why a payment request was sent.
#[derive(Serialize, Deserialize, Clone, Copy, PartialEq, Eq, Debug)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    First,
    DoubleClick,
    Duplicate,
    OrderAgain,
}

/// One HTTP answer (or transport failure) a client saw.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Answer {
    pub label: String,
    pub order_id: String,
    pub key: String,
    pub kind: Kind,
    pub attempt: u32,
    pub base: String,
    /// None: no HTTP answer (connection refused or reset, timeout).
    pub status: Option<u16>,
    pub transport_error: Option<String>,
    pub code: Option<String>,
    /// The transaction id of a 201, or of a 409 order_already_paid.
    pub txn: Option<String>,
    pub replayed: bool,
    pub retryable: bool,
    /// The last answer of this sender: it stopped retrying (definitive, or gave up).
    pub last: bool,
    pub at_ms: u64,
}

/// Whether the widget would retry the answer with the same key.
pub fn retryable(status: Option<u16>, code: Option<&str>) -> bool {
    match status {
        None => true,
        Some(409) => code != Some("order_already_paid"),
        Some(429) => true,
        Some(s) => s >= 500,
    }
}

struct Ctx {
    state: State,
    http: reqwest::Client,
    bases: Vec<String>,
    label: String,
    give_up: Duration,
    start: Instant,
    round_robin: AtomicUsize,
    tx: mpsc::UnboundedSender<Answer>,
    retries: AtomicU64,
}

struct Payment {
    order_id: String,
    key: String,
    body: Value,
    client: String,
}

impl Ctx {
    /// Sends one request until a definitive answer or the give-up time, as the widget's retry
    /// does: same key, same body; the next attempt may land on another instance.
    async fn send(&self, p: &Payment, kind: Kind) -> Answer {
        let began = Instant::now();
        let first = self.round_robin.fetch_add(1, Ordering::Relaxed);
        let mut attempt = 0u32;
        loop {
            let base = &self.bases[(first + attempt as usize) % self.bases.len()];
            let result = self
                .http
                .post(format!("{base}/api/process-payment/"))
                .bearer_auth(&self.state.publishable_key)
                .header("Idempotency-Key", &p.key)
                .header("X-Forwarded-For", &p.client)
                .json(&p.body)
                .send()
                .await;
            let mut answer = Answer {
                label: self.label.clone(),
                order_id: p.order_id.clone(),
                key: p.key.clone(),
                kind,
                attempt,
                base: base.clone(),
                status: None,
                transport_error: None,
                code: None,
                txn: None,
                replayed: false,
                retryable: true,
                last: false,
                at_ms: self.start.elapsed().as_millis() as u64,
            };
            let mut wait = Duration::from_millis((100u64 << attempt.min(4)).min(1500));
            match result {
                Err(e) => answer.transport_error = Some(without_url(&e)),
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    answer.status = Some(status);
                    answer.replayed = resp
                        .headers()
                        .get("idempotent-replayed")
                        .is_some_and(|v| v == "true");
                    if let Some(s) = resp
                        .headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
                    {
                        wait = Duration::from_secs(s.clamp(1, 5));
                    }
                    match resp.json::<Value>().await {
                        Ok(body) if status == 201 => {
                            answer.txn = body["id"].as_str().map(str::to_owned)
                        }
                        Ok(body) => {
                            answer.code = body["error"]["code"].as_str().map(str::to_owned);
                            answer.txn =
                                body["error"]["transaction_id"].as_str().map(str::to_owned);
                        }
                        // The body was cut off: as good as no answer.
                        Err(e) => {
                            answer.status = None;
                            answer.transport_error = Some(without_url(&e));
                        }
                    }
                }
            }
            answer.retryable = retryable(answer.status, answer.code.as_deref());
            answer.last = !answer.retryable || began.elapsed() + wait >= self.give_up;
            let _ = self.tx.send(answer.clone());
            if answer.last {
                return answer;
            }
            self.retries.fetch_add(1, Ordering::Relaxed);
            attempt += 1;
            let jitter = rand::thread_rng().gen_range(0..=wait.as_millis() as u64 / 4);
            tokio::time::sleep(wait + Duration::from_millis(jitter)).await;
        }
    }
}

/// A transport error's text without the URL (which is not a secret, but is noise).
fn without_url(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connect"
    } else if e.is_body() || e.is_decode() {
        "body"
    } else {
        "request"
    };
    format!(
        "{kind}: {}",
        std::error::Error::source(e).map_or(String::new(), |s| s.to_string())
    )
}

/// Counts of what was sent, printed at the end.
#[derive(Default)]
struct Sent {
    payments: AtomicU64,
    double_clicks: AtomicU64,
    duplicates: AtomicU64,
    orders_again: AtomicU64,
    hot: AtomicU64,
    succeeded: AtomicU64,
    gave_up: AtomicU64,
}

pub async fn run(a: LoadArgs) -> anyhow::Result<()> {
    let state = State::read(&a.state).context("reading the state file")?;
    let (tx, mut rx) = mpsc::unbounded_channel::<Answer>();
    let file = tokio::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&a.answers)
        .await?;
    let writer = tokio::spawn(async move {
        let mut out = tokio::io::BufWriter::new(file);
        while let Some(answer) = rx.recv().await {
            let mut line = serde_json::to_vec(&answer).expect("an answer serializes");
            line.push(b'\n');
            out.write_all(&line).await?;
            // Written as it comes, so the orchestration can wait on the file's progress.
            out.flush().await?;
        }
        anyhow::Ok(())
    });
    let ctx = Arc::new(Ctx {
        state,
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .pool_max_idle_per_host(a.concurrency * 2)
            .build()?,
        bases: a
            .base
            .iter()
            .map(|b| b.trim_end_matches('/').to_owned())
            .collect(),
        label: a.label.clone(),
        give_up: Duration::from_secs(a.give_up_secs),
        start: Instant::now(),
        round_robin: AtomicUsize::new(0),
        tx,
        retries: AtomicU64::new(0),
    });
    let a = Arc::new(a);
    let sent = Arc::new(Sent::default());
    let next = Arc::new(AtomicUsize::new(0));
    let deadline = a.duration_secs.map(Duration::from_secs);
    let mut tasks = Vec::new();
    for _ in 0..a.concurrency {
        let (ctx, a, sent, next) = (ctx.clone(), a.clone(), sent.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let out_of_time = deadline.is_some_and(|d| ctx.start.elapsed() >= d);
                if out_of_time || (deadline.is_none() && i >= a.payments) {
                    return;
                }
                one_payment(&ctx, &a, &sent, i).await;
            }
        }));
    }
    for t in tasks {
        t.await?;
    }
    let elapsed = ctx.start.elapsed().as_secs_f64();
    let retries = ctx.retries.load(Ordering::Relaxed);
    drop(ctx);
    writer.await??;
    let n = |c: &AtomicU64| c.load(Ordering::Relaxed);
    println!(
        "load {}: {} payments sent in {:.1} s ({:.1} succeeded/s): {} succeeded, {} double clicks, \
         {} duplicate keys, {} orders paid again with a new key, {} on hot vouchers, {} retries, {} given up",
        a.label,
        n(&sent.payments),
        elapsed,
        n(&sent.succeeded) as f64 / elapsed,
        n(&sent.succeeded),
        n(&sent.double_clicks),
        n(&sent.duplicates),
        n(&sent.orders_again),
        n(&sent.hot),
        retries,
        n(&sent.gave_up),
    );
    Ok(())
}

async fn one_payment(ctx: &Ctx, a: &LoadArgs, sent: &Sent, i: usize) {
    let (p, hot) = {
        let mut rng = rand::thread_rng();
        let hot = rng.gen_bool(a.hot_rate) && !ctx.state.hot_codes.is_empty();
        let pool = if hot {
            &ctx.state.hot_codes
        } else {
            &ctx.state.codes
        };
        let code = pool.choose(&mut rng).expect("vouchers were issued");
        let minor: u32 = rng.gen_range(100..=2000);
        let order_id = format!("{}-{i}", a.label);
        let p = Payment {
            body: json!({
                "order_id": order_id,
                "amount": format!("{}.{:02}", minor / 100, minor % 100),
                "currency": "EUR",
                "vouchers": [{"code": code}],
            }),
            order_id,
            key: uuid::Uuid::new_v4().to_string(),
            // Shoppers at their own addresses: the server trusts the forwarded address from
            // 127.0.0.1, so per-client limits count each shopper, as behind a load balancer.
            client: format!(
                "10.{}.{}.{}",
                rng.gen::<u8>(),
                rng.gen::<u8>(),
                rng.gen_range(1..255)
            ),
        };
        (p, hot)
    };
    let roll: f64 = rand::thread_rng().gen();
    sent.payments.fetch_add(1, Ordering::Relaxed);
    if hot {
        sent.hot.fetch_add(1, Ordering::Relaxed);
    }
    let first = if roll < a.double_click_rate {
        sent.double_clicks.fetch_add(1, Ordering::Relaxed);
        let (x, y) = tokio::join!(ctx.send(&p, Kind::First), ctx.send(&p, Kind::DoubleClick));
        if x.status == Some(201) {
            x
        } else {
            y
        }
    } else {
        ctx.send(&p, Kind::First).await
    };
    if first.status == Some(201) {
        sent.succeeded.fetch_add(1, Ordering::Relaxed);
    }
    if first.last && first.retryable {
        sent.gave_up.fetch_add(1, Ordering::Relaxed);
    }
    let roll = roll - a.double_click_rate;
    if (0.0..a.duplicate_rate).contains(&roll) {
        sent.duplicates.fetch_add(1, Ordering::Relaxed);
        ctx.send(&p, Kind::Duplicate).await;
    } else if (a.duplicate_rate..a.duplicate_rate + a.order_again_rate).contains(&roll) {
        sent.orders_again.fetch_add(1, Ordering::Relaxed);
        let again = Payment {
            key: uuid::Uuid::new_v4().to_string(),
            ..p
        };
        ctx.send(&again, Kind::OrderAgain).await;
    }
}

#[cfg(test)]
mod tests {
    use super::retryable;

    #[test]
    fn the_widget_retries_what_no_retry_can_make_worse() {
        assert!(retryable(None, None));
        assert!(retryable(Some(500), Some("internal_error")));
        assert!(retryable(Some(503), None));
        assert!(retryable(Some(429), Some("rate_limited")));
        assert!(retryable(Some(409), Some("idempotency_key_in_use")));
    }

    #[test]
    fn answers_about_the_order_or_the_vouchers_are_final() {
        assert!(!retryable(Some(201), None));
        assert!(!retryable(Some(409), Some("order_already_paid")));
        assert!(!retryable(Some(402), Some("insufficient_balance")));
        assert!(!retryable(Some(400), Some("idempotency_error")));
        assert!(!retryable(Some(401), Some("invalid_api_key")));
    }
}
