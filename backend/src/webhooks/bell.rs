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
//! (bench/README.md). A NOTIFY is itself a small transaction with a commit to flush, so the
//! task sends one at a time and leaves [`SPACING`] after each: rings in between fold into
//! the next one. A lone event is announced at once; under load the NOTIFYs stay under
//! 1 / [`SPACING`] a second (100), not one per event, and an event waits at most
//! [`SPACING`] longer for a worker in another process.
use std::{future::Future, sync::Arc, time::Duration};

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend};
use tokio::sync::Notify;

/// The least time between two NOTIFYs of one process.
pub const SPACING: Duration = Duration::from_millis(10);

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

    /// Starts the task that sends a NOTIFY for the rings, one at a time and at least
    /// [`SPACING`] apart (rings in between fold into the next); nothing to do on SQLite,
    /// where one process is the only worker.
    pub fn announce(&self, db: DatabaseConnection) {
        if db.get_database_backend() != DbBackend::Postgres {
            return;
        }
        let sql = format!("SELECT pg_notify('{CHANNEL}', '')");
        tokio::spawn(announce(self.elsewhere.clone(), move || {
            let (db, sql) = (db.clone(), sql.clone());
            async move {
                if let Err(e) = db.execute_unprepared(&sql).await {
                    tracing::debug!(error = %e, "NOTIFY of a new event failed; other workers find it at their next poll");
                }
            }
        }));
    }
}

/// Calls `send` once for the rings so far, then again after [`SPACING`] if more came.
async fn announce<F, Fut>(rings: Arc<Notify>, mut send: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    loop {
        rings.notified().await;
        send().await;
        tokio::time::sleep(SPACING).await;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

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

    /// A lone ring is announced at once; the rings of a burst wait out the spacing and
    /// go as one.
    #[tokio::test(start_paused = true)]
    async fn rings_are_announced_at_once_then_at_most_once_per_spacing() {
        let bell = OutboxBell::default();
        let sent = Arc::new(AtomicUsize::new(0));
        let counter = sent.clone();
        tokio::spawn(announce(bell.elsewhere.clone(), move || {
            counter.fetch_add(1, Ordering::SeqCst);
            async {}
        }));
        // Lets the announcing task run without moving the clock.
        let settle = || async {
            for _ in 0..10 {
                tokio::task::yield_now().await;
            }
        };

        bell.ring();
        settle().await;
        assert_eq!(sent.load(Ordering::SeqCst), 1, "announced at once");
        for _ in 0..50 {
            bell.ring();
            settle().await;
        }
        assert_eq!(
            sent.load(Ordering::SeqCst),
            1,
            "the burst waits out the spacing"
        );
        tokio::time::sleep(SPACING).await;
        settle().await;
        assert_eq!(sent.load(Ordering::SeqCst), 2, "and goes as one");
        tokio::time::sleep(SPACING * 10).await;
        assert_eq!(sent.load(Ordering::SeqCst), 2, "nothing more without rings");
    }
}
