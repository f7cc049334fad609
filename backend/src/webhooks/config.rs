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
    /// After SIGTERM, how long deliveries in flight may go on before they are cut short
    /// and their claims released (due again at once, for another worker).
    #[arg(long, env = "WEBHOOK_SHUTDOWN_GRACE", default_value = "10s", value_parser = humantime::parse_duration)]
    pub webhook_shutdown_grace: Duration,
    /// Disable an endpoint once this many of its deliveries in a row were given up after
    /// every retry (none succeeded in between, counted since its URL was last set), and
    /// email the merchant; 0: never. A 410 answer disables it at once whatever this is.
    #[arg(
        long,
        env = "WEBHOOK_DISABLE_AFTER_FAILED_DELIVERIES",
        default_value_t = 3
    )]
    pub webhook_disable_after_failed_deliveries: u64,
    /// Deliveries in flight per worker.
    #[arg(long, env = "WEBHOOK_CONCURRENCY", default_value_t = 16)]
    pub webhook_concurrency: usize,
    /// Let test-mode endpoints point at loopback addresses (a developer's own machine).
    /// Default: allowed on the embedded default only, since on a shared deployment a
    /// merchant's "localhost" is the server itself.
    /// With DATABASE_URL this is refused at start-up.
    #[arg(long, env = "WEBHOOK_TEST_ALLOW_LOOPBACK")]
    pub webhook_test_allow_loopback: Option<bool>,
    /// Testing only: let test-mode endpoints point at loopback even with DATABASE_URL, for
    /// the API test suite and scripts whose webhook receivers run on 127.0.0.1. Never set
    /// this in a deployment: a merchant could make the server call its own network.
    #[arg(long, env = "WEBHOOK_LOOPBACK_FOR_TESTS", hide = true)]
    pub webhook_loopback_for_tests: bool,
}

impl WebhookArgs {
    /// Whether test-mode endpoints may resolve to loopback; an error when
    /// WEBHOOK_TEST_ALLOW_LOOPBACK is set on a shared (DATABASE_URL) deployment.
    pub fn test_loopback(&self, embedded: bool) -> anyhow::Result<bool> {
        if self.webhook_loopback_for_tests {
            if !embedded {
                tracing::warn!("WEBHOOK_LOOPBACK_FOR_TESTS is set: test-mode webhooks may call loopback (testing only)");
            }
            return Ok(true);
        }
        match self.webhook_test_allow_loopback {
            Some(true) if !embedded => anyhow::bail!(
                "WEBHOOK_TEST_ALLOW_LOOPBACK is for the embedded default only: with DATABASE_URL a merchant's \"localhost\" is this server's own network"
            ),
            Some(allow) => Ok(allow),
            None => Ok(embedded),
        }
    }

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
    #[command(flatten)]
    pub fraud: crate::fraud::FraudArgs,
    #[command(flatten)]
    pub email: crate::notify::EmailArgs,
    #[command(flatten)]
    pub metrics: crate::config::MetricsArgs,
    /// `json` (production) or `pretty` (development).
    #[arg(long, env = "LOG_FORMAT", default_value = "json")]
    pub log_format: String,
}
