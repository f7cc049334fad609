//! The shop the run pays at: a merchant, its vouchers and its webhook endpoint.
use std::path::PathBuf;

use anyhow::{bail, Context};
use serde_json::{json, Value};

use crate::State;

#[derive(clap::Args)]
pub struct SetupArgs {
    /// Base URL of one instance.
    #[arg(long)]
    api: String,
    #[arg(long, env = "ADMIN_TOKEN", hide_env_values = true)]
    admin_token: String,
    /// Where the webhook receiver listens.
    #[arg(long)]
    webhook_url: String,
    /// Ordinary vouchers (500.00 EUR each).
    #[arg(long, default_value_t = 400)]
    vouchers: u32,
    /// Hot vouchers (60.00 EUR each: they run dry under load).
    #[arg(long, default_value_t = 4)]
    hot: u32,
    #[arg(long)]
    out: PathBuf,
}

async fn post(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    token: &str,
    body: Value,
) -> anyhow::Result<Value> {
    let resp = http
        .request(method, &url)
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .with_context(|| url.clone())?;
    let status = resp.status();
    let body: Value = resp.json().await?;
    if !status.is_success() {
        bail!("{url} answered {status}: {body}");
    }
    Ok(body)
}

async fn issue(
    http: &reqwest::Client,
    a: &SetupArgs,
    amount: &str,
    count: u32,
) -> anyhow::Result<Vec<String>> {
    if count == 0 {
        return Ok(Vec::new());
    }
    let body = post(
        http,
        reqwest::Method::POST,
        format!("{}/api/admin/vouchers", a.api),
        &a.admin_token,
        json!({"currency": "EUR", "amount": amount, "count": count}),
    )
    .await?;
    body["vouchers"]
        .as_array()
        .context("no vouchers in the answer")?
        .iter()
        .map(|v| {
            v["code"]
                .as_str()
                .map(str::to_owned)
                .context("voucher without code")
        })
        .collect()
}

pub async fn run(a: SetupArgs) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let merchant = post(
        &http,
        reqwest::Method::POST,
        format!("{}/api/admin/merchants", a.api),
        &a.admin_token,
        json!({"name": "Reliability Shop", "commission_bps": 250}),
    )
    .await?;
    let text = |v: &Value, k: &str| {
        v[k].as_str()
            .map(str::to_owned)
            .with_context(|| format!("no {k} in {v}"))
    };
    let secret_key = text(&merchant, "secret_key")?;
    let endpoint = post(
        &http,
        reqwest::Method::PUT,
        format!("{}/api/webhook-endpoint", a.api),
        &secret_key,
        json!({"url": a.webhook_url}),
    )
    .await?;
    let state = State {
        merchant_id: text(&merchant["merchant"], "id")?,
        publishable_key: text(&merchant, "publishable_key")?,
        secret_key,
        webhook_secret: text(&endpoint, "secret")?,
        codes: issue(&http, &a, "500.00", a.vouchers).await?,
        hot_codes: issue(&http, &a, "60.00", a.hot).await?,
    };
    std::fs::write(&a.out, serde_json::to_vec_pretty(&state)?)?;
    println!(
        "setup: merchant {}, {} vouchers, {} hot vouchers, webhooks to {}",
        state.merchant_id,
        state.codes.len(),
        state.hot_codes.len(),
        a.webhook_url
    );
    Ok(())
}
