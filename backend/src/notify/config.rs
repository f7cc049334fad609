//! Flags of the email sender (shared by `serve` and `worker`).
use std::time::Duration;

use anyhow::Context;
use clap::Args;

use crate::{secret::Secret, webhooks::schedule::RetrySchedule};

/// The default delays after attempts 1, 2, ...: 9 attempts over about a day and a half.
pub const DEFAULT_EMAIL_SCHEDULE: &str = "30s,2m,10m,30m,1h,3h,6h,12h";

/// Email settings.
#[derive(Args, Clone, Debug)]
pub struct EmailArgs {
    /// SMTP server the worker sends notification emails through: `smtp://host:25` (plain,
    /// for a relay on localhost), `smtp://host:587?tls=required` (STARTTLS), or
    /// `smtps://user:password@host:465` (TLS). Unset: emails stay queued, unsent.
    #[arg(long, env = "SMTP_URL", hide_env_values = true)]
    pub smtp_url: Option<Secret<String>>,
    /// The From: of notification emails (`Name <address>` or an address).
    #[arg(
        long,
        env = "SMTP_FROM",
        default_value = "SuperPayment <notifications@superpayment.invalid>"
    )]
    pub smtp_from: String,
    /// Timeout of one SMTP attempt.
    #[arg(long, env = "SMTP_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    pub smtp_timeout: Duration,
    /// Delays between attempts of one email, comma-separated (ms, s, m, h); each is
    /// jittered by ±20 %.
    #[arg(long, env = "EMAIL_RETRY_SCHEDULE", default_value = DEFAULT_EMAIL_SCHEDULE)]
    pub email_retry_schedule: String,
    /// How often the worker looks for due emails.
    #[arg(long, env = "EMAIL_POLL_INTERVAL", default_value = "5s", value_parser = humantime::parse_duration)]
    pub email_poll_interval: Duration,
}

impl EmailArgs {
    /// The parsed retry schedule.
    pub fn schedule(&self) -> anyhow::Result<RetrySchedule> {
        RetrySchedule::parse(&self.email_retry_schedule).context("EMAIL_RETRY_SCHEDULE")
    }

    /// The parsed From: address.
    pub fn from(&self) -> anyhow::Result<lettre::message::Mailbox> {
        self.smtp_from
            .parse()
            .map_err(|e| anyhow::anyhow!("SMTP_FROM is not an email address: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_readme_states_the_default_schedule_as_it_is_parsed() {
        let readme = include_str!("../../../README.md");
        let row = readme
            .lines()
            .find(|l| l.starts_with("| `EMAIL_RETRY_SCHEDULE` |"))
            .expect("the README documents EMAIL_RETRY_SCHEDULE");
        assert!(
            row.contains(&format!("| `{DEFAULT_EMAIL_SCHEDULE}` |")),
            "README default differs from {DEFAULT_EMAIL_SCHEDULE}: {row}"
        );
    }

    #[test]
    fn the_default_schedule_parses_and_lasts_about_a_day() {
        let s = RetrySchedule::parse(DEFAULT_EMAIL_SCHEDULE).unwrap();
        assert_eq!(s.max_attempts(), 9);
        assert!(s.span() > Duration::from_secs(20 * 3600));
    }
}
