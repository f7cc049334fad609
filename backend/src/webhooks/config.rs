//! Flags of the webhook worker (shared by `serve` and `worker`).
use std::time::Duration;

use clap::Args;

use super::schedule::{RetrySchedule, DEFAULT_SCHEDULE};

/// Webhook delivery settings.
#[derive(Args, Clone, Debug)]
pub struct WebhookArgs {
    /// Delays between delivery attempts, comma-separated (ms, s, m, h); each is jittered by ±20 %.
    #[arg(long, env = "WEBHOOK_RETRY_SCHEDULE", default_value = DEFAULT_SCHEDULE)]
    pub webhook_retry_schedule: String,
    /// Timeout of one delivery attempt.
    #[arg(long, env = "WEBHOOK_TIMEOUT", default_value = "15s", value_parser = humantime::parse_duration)]
    pub webhook_timeout: Duration,
    /// How often a worker looks for due deliveries when nothing woke it.
    #[arg(long, env = "WEBHOOK_POLL_INTERVAL", default_value = "1s", value_parser = humantime::parse_duration)]
    pub webhook_poll_interval: Duration,
    /// Deliveries in flight per worker.
    #[arg(long, env = "WEBHOOK_CONCURRENCY", default_value_t = 16)]
    pub webhook_concurrency: usize,
    /// Let test-mode endpoints point at loopback addresses (a developer's own machine).
    /// Default: allowed on the embedded default only, since on a shared deployment a
    /// merchant's "localhost" is the server itself.
    #[arg(long, env = "WEBHOOK_TEST_ALLOW_LOOPBACK")]
    pub webhook_test_allow_loopback: Option<bool>,
}

impl WebhookArgs {
    /// The parsed retry schedule.
    pub fn schedule(&self) -> anyhow::Result<RetrySchedule> {
        RetrySchedule::parse(&self.webhook_retry_schedule)
    }
}

/// Settings of `superpayment worker`.
#[derive(Args, Clone, Debug)]
pub struct WorkerArgs {
    #[command(flatten)]
    pub db: crate::config::DbArgs,
    #[command(flatten)]
    pub webhooks: WebhookArgs,
    /// `json` (production) or `pretty` (development).
    #[arg(long, env = "LOG_FORMAT", default_value = "json")]
    pub log_format: String,
}
