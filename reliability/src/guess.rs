//! The guessing run: random codes from one client address are cut off past the lockout
//! threshold, a shopper at another address still pays, and the metrics show the lockout.
use std::path::PathBuf;

use anyhow::{bail, ensure, Context};
use rand::Rng;
use serde_json::{json, Value};
use superpayment_core::VoucherCode;

use crate::State;

#[derive(clap::Args)]
pub struct GuessArgs {
    #[arg(long)]
    state: PathBuf,
    /// Base URL the guesses and the shopper's payment go to (an instance or the load balancer).
    #[arg(long)]
    base: String,
    #[arg(long, default_value_t = 1000)]
    codes: usize,
    /// The server's GUESS_LOCKOUT_THRESHOLD. The decline that goes past it is still answered
    /// (402); every request after it is refused (429).
    #[arg(long, default_value_t = 10)]
    threshold: usize,
    /// The `/metrics` URLs of the instances (comma-separated); their lockout counters are summed.
    #[arg(long, value_delimiter = ',')]
    metrics: Vec<String>,
}

const GUESSER: &str = "203.0.113.66";
const SHOPPER: &str = "198.51.100.20";

async fn pay(
    http: &reqwest::Client,
    a: &GuessArgs,
    state: &State,
    client: &str,
    code: &str,
    order: &str,
) -> anyhow::Result<(u16, Value)> {
    let resp = http
        .post(format!("{}/api/process-payment/", a.base))
        .bearer_auth(&state.publishable_key)
        .header("Idempotency-Key", uuid::Uuid::new_v4().to_string())
        .header("X-Forwarded-For", client)
        .json(&json!({"order_id": order, "amount": "1.00", "currency": "EUR", "vouchers": [{"code": code}]}))
        .send()
        .await?;
    Ok((resp.status().as_u16(), resp.json().await?))
}

async fn lockouts(http: &reqwest::Client, urls: &[String]) -> anyhow::Result<f64> {
    let mut total = 0.0;
    for url in urls {
        let text = http
            .get(url)
            .send()
            .await?
            .error_for_status()?
            .text()
            .await?;
        let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned())))
            .with_context(|| format!("parsing {url}"))?;
        for s in scrape
            .samples
            .iter()
            .filter(|s| s.metric == "superpayment_lockouts_total")
        {
            if let prometheus_parse::Value::Counter(v) = s.value {
                total += v;
            }
        }
    }
    Ok(total)
}

pub async fn run(a: GuessArgs) -> anyhow::Result<()> {
    let state = State::read(&a.state)?;
    let http = reqwest::Client::new();
    let before = lockouts(&http, &a.metrics).await?;
    let mut answers = std::collections::BTreeMap::<String, usize>::new();
    let mut first_cut = None;
    for i in 0..a.codes {
        let code = VoucherCode::generate(rand::thread_rng().gen()).formatted();
        let (status, body) = pay(&http, &a, &state, GUESSER, &code, &format!("guess-{i}")).await?;
        let code = body["error"]["code"].as_str().unwrap_or("").to_owned();
        if status == 201 {
            bail!("guess {i} paid: a random code matched a voucher");
        }
        if status == 429 && first_cut.is_none() {
            first_cut = Some(i);
        }
        ensure!(
            first_cut.is_none() || status == 429,
            "guess {i} answered {status} {code} after the cut-off at guess {first_cut:?}"
        );
        *answers.entry(format!("{status} {code}")).or_default() += 1;
    }
    let shopper = pay(&http, &a, &state, SHOPPER, &state.codes[0], "guess-shopper").await?;
    let after = lockouts(&http, &a.metrics).await?;
    println!(
        "guessing: {} random codes from {GUESSER}: {answers:?}; cut off after {} declines (threshold {}); \
         shopper at {SHOPPER} answered {}; lockouts_total {before} -> {after}",
        a.codes,
        first_cut.map_or("never".into(), |i| i.to_string()),
        a.threshold,
        shopper.0,
    );
    ensure!(
        first_cut == Some(a.threshold + 1),
        "the cut-off came after {first_cut:?} declines, not after {} (past the threshold of {})",
        a.threshold + 1,
        a.threshold
    );
    ensure!(
        shopper.0 == 201,
        "the shopper at another address was refused: {}",
        shopper.1
    );
    ensure!(after > before, "/metrics shows no lockout");
    Ok(())
}
