//! The retry schedule: delays between attempts, with jitter so that retries of many
//! deliveries after an outage do not arrive at the merchant all at once.
use std::time::Duration;

use rand::Rng;

/// The default delays after attempts 1, 2, ...: 14 attempts spread over about 3 days
/// (5 s, 1 min, 5 min, 30 min, 2 h, 5 h, six times 10 h, a last 5 h), each varied by ±20 %.
pub const DEFAULT_SCHEDULE: &str = "5s,1m,5m,30m,2h,5h,10h,10h,10h,10h,10h,10h,5h";

/// Delays between attempts; after the last one a delivery is given up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrySchedule {
    delays: Vec<Duration>,
}

impl RetrySchedule {
    /// Parses a comma-separated list such as `5s,1m,5m` (units ms, s, m, h, d).
    pub fn parse(s: &str) -> anyhow::Result<Self> {
        let delays = s
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| {
                humantime::parse_duration(p)
                    .map_err(|e| anyhow::anyhow!("retry schedule entry {p:?}: {e}"))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Self { delays })
    }

    /// How many attempts a delivery gets in all.
    pub fn max_attempts(&self) -> usize {
        self.delays.len() + 1
    }

    /// The delay after attempt `attempt` (1-based) failed, jittered; None when it was the last.
    pub fn next_delay(&self, attempt: usize) -> Option<Duration> {
        let base = *self.delays.get(attempt.checked_sub(1)?)?;
        let per_mille = rand::thread_rng().gen_range(800..=1200u64);
        let ms = u64::try_from(base.as_millis()).unwrap_or(u64::MAX);
        Some(Duration::from_millis(ms.saturating_mul(per_mille) / 1000))
    }

    /// The total of the delays without jitter.
    pub fn span(&self) -> Duration {
        self.delays.iter().sum()
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
            .find(|l| l.starts_with("| `WEBHOOK_RETRY_SCHEDULE` |"))
            .expect("the README documents WEBHOOK_RETRY_SCHEDULE");
        assert!(
            row.contains(&format!("| `{DEFAULT_SCHEDULE}` |")),
            "README default differs from {DEFAULT_SCHEDULE}: {row}"
        );
        let documented = row.split('`').nth(3).unwrap();
        assert!(RetrySchedule::parse(documented).is_ok());
    }

    #[test]
    fn the_default_schedule_lasts_about_three_days() {
        let s = RetrySchedule::parse(DEFAULT_SCHEDULE).unwrap();
        assert_eq!(s.max_attempts(), 14);
        let hours = s.span().as_secs() / 3600;
        assert_eq!(hours, 72, "{hours} h");
    }

    #[test]
    fn delays_are_jittered_within_twenty_percent_and_end() {
        let s = RetrySchedule::parse("100ms, 1s").unwrap();
        for _ in 0..100 {
            let d = s.next_delay(2).unwrap();
            assert!(d >= Duration::from_millis(800) && d <= Duration::from_millis(1200));
        }
        assert_eq!(s.next_delay(3), None);
        assert_eq!(s.next_delay(0), None);
        assert!(RetrySchedule::parse("5 parsecs").is_err());
    }
}
