//! Waking the delivery workers when an event commits.
//!
//! Whoever commits an event rings the [`OutboxBell`] after the commit: this process's
//! worker wakes at once, and on PostgreSQL one background task sends
//! `NOTIFY superpayment_outbox` for every other process's worker (they `LISTEN`, see
//! `worker::listen`). A worker that hears nothing still finds the event at its next poll
//! (`WEBHOOK_POLL_INTERVAL`).
//!
//! The NOTIFY is sent outside the writing transaction on purpose. A transaction that
//! notifies holds PostgreSQL's one notification lock from its commit until the commit is
//! flushed to disk, so payments that each notified committed one after another instead of
//! sharing WAL flushes: 16 clients inserting one row per transaction on this project's
//! bench machine committed 4,900 times a second without a NOTIFY and 1,500 with one
//! (bench/README.md). Rings that arrive while a NOTIFY is under way fold into one more, so
//! the task sends at most one at a time, whatever the rate of events.
use std::sync::Arc;

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend};
use tokio::sync::Notify;

/// The channel the workers listen on.
pub const CHANNEL: &str = "superpayment_outbox";

/// Rung after every commit that wrote an event; cheap to clone and to ring.
#[derive(Clone, Default)]
pub struct OutboxBell {
    /// This process's worker.
    here: Arc<Notify>,
    /// The task that tells the other processes ([`OutboxBell::announce`]).
    elsewhere: Arc<Notify>,
}

impl OutboxBell {
    /// An event committed: wakes this process's worker and, once `announce` runs, the
    /// others'.
    pub fn ring(&self) {
        self.here.notify_one();
        self.elsewhere.notify_one();
    }

    /// Wakes this process's worker only (another process's NOTIFY was heard).
    pub fn wake_here(&self) {
        self.here.notify_one();
    }

    /// Completes when this process's worker is woken (a permit is kept if nobody waits).
    pub async fn rung_here(&self) {
        self.here.notified().await;
    }

    /// Starts the task that sends the NOTIFY for each ring (folding rings that come while
    /// one is sent); nothing to do on SQLite, where one process is the only worker.
    pub fn announce(&self, db: DatabaseConnection) {
        if db.get_database_backend() != DbBackend::Postgres {
            return;
        }
        let elsewhere = self.elsewhere.clone();
        tokio::spawn(async move {
            let sql = format!("SELECT pg_notify('{CHANNEL}', '')");
            loop {
                elsewhere.notified().await;
                if let Err(e) = db.execute_unprepared(&sql).await {
                    tracing::debug!(error = %e, "NOTIFY of a new event failed; other workers find it at their next poll");
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn a_ring_before_anyone_waits_is_kept_and_rings_fold_into_one() {
        let bell = OutboxBell::default();
        bell.ring();
        bell.ring();
        tokio::time::timeout(Duration::from_secs(1), bell.rung_here())
            .await
            .expect("the first ring was kept");
        assert!(
            tokio::time::timeout(Duration::from_millis(50), bell.rung_here())
                .await
                .is_err(),
            "two rings before a wait are one wake-up"
        );
    }
}
