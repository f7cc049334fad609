//! Reads that may be served by the read replica (design §8): lists and reports, never a
//! read that decides money. One place picks the connection and says how fresh its data is.
use std::{
    sync::atomic::{AtomicI64, Ordering},
    time::Duration,
};

use sea_orm::DatabaseConnection;
use time::OffsetDateTime;

use crate::store::{
    self,
    replica::{ReplicaLag, WalPosition},
};

/// How long the freshness probe may take before the primary serves the read instead.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// After a failed probe, reads go to the primary for this long before the replica is
/// tried again, so an unreachable replica costs one slow probe, not one per request.
const RETRY_AFTER: Duration = Duration::from_secs(5);

/// Where a read was served from and how old its data may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// The primary: current.
    Primary,
    /// The replica, at most `lag` behind (zero when it has replayed all it received);
    /// None when it cannot tell yet.
    Replica { lag: Option<Duration> },
}

impl Freshness {
    /// The `Data-Source` header: `primary` or `replica`.
    pub fn source(&self) -> &'static str {
        match self {
            Freshness::Primary => "primary",
            Freshness::Replica { .. } => "replica",
        }
    }

    /// The `Data-Lag` header: seconds with milliseconds (`0.000` when current), absent
    /// when a replica cannot tell.
    pub fn lag_header(&self) -> Option<String> {
        match self {
            Freshness::Primary => Some("0.000".into()),
            Freshness::Replica { lag } => lag.map(|d| format!("{:.3}", d.as_secs_f64())),
        }
    }
}

/// A connection for one report-only read, with how fresh it is.
#[derive(Clone)]
pub struct ReadDb {
    pub db: DatabaseConnection,
    pub freshness: Freshness,
}

impl ReadDb {
    /// A read on the primary `db` (current), for a page rendered by the request that wrote.
    pub fn primary(db: &DatabaseConnection) -> Self {
        ReadDb {
            db: db.clone(),
            freshness: Freshness::Primary,
        }
    }
}

/// The primary and, when DATABASE_REPLICA_URL is set, the replica.
pub struct ReadPools {
    primary: DatabaseConnection,
    replica: Option<DatabaseConnection>,
    /// Unix milliseconds until which the replica is skipped after a failure.
    skip_until_ms: AtomicI64,
}

impl ReadPools {
    /// Reads go to `replica` when given, else to `primary`.
    pub fn new(primary: DatabaseConnection, replica: Option<DatabaseConnection>) -> Self {
        Self {
            primary,
            replica,
            skip_until_ms: AtomicI64::new(0),
        }
    }

    /// The replica pool, if one is configured (for the pool metrics).
    pub fn replica(&self) -> Option<&DatabaseConnection> {
        self.replica.as_ref()
    }

    /// The connection a report-only read should use now: the replica with its measured
    /// lag, or the primary when there is no replica or it does not answer (logged and
    /// counted in `superpayment_replica_fallbacks_total`).
    pub async fn reader(&self) -> ReadDb {
        self.reader_after(None).await
    }

    /// [`reader`](Self::reader) for a reader that must see its own writes: when the
    /// replica has not yet replayed up to `seen` (a position [`written`](Self::written)
    /// returned after the write), the primary serves the read (read-your-writes).
    pub async fn reader_after(&self, seen: Option<WalPosition>) -> ReadDb {
        let Some(replica) = &self.replica else {
            return self.primary();
        };
        let now_ms = now_ms();
        if now_ms < self.skip_until_ms.load(Ordering::Relaxed) {
            crate::monitoring::replica_fallback();
            return self.primary();
        }
        let failure =
            match tokio::time::timeout(PROBE_TIMEOUT, store::replica::probe(replica)).await {
                Ok(Ok(probe)) if !replayed_up_to(probe.replayed, seen) => {
                    return self.primary();
                }
                Ok(Ok(store::replica::Probe { lag, .. })) => {
                    let lag = match lag {
                        ReplicaLag::NotAReplica | ReplicaLag::CaughtUp => Some(Duration::ZERO),
                        ReplicaLag::Behind(d) => Some(d),
                        ReplicaLag::Unknown => None,
                    };
                    return ReadDb {
                        db: replica.clone(),
                        freshness: Freshness::Replica { lag },
                    };
                }
                Ok(Err(e)) => e.to_string(),
                Err(_) => format!("no answer within {PROBE_TIMEOUT:?}"),
            };
        let retry_ms = i64::try_from(RETRY_AFTER.as_millis()).unwrap_or(i64::MAX);
        self.skip_until_ms
            .store(now_ms.saturating_add(retry_ms), Ordering::Relaxed);
        crate::monitoring::replica_fallback();
        tracing::warn!(
            error = %failure,
            retry_after_secs = RETRY_AFTER.as_secs(),
            "read replica unavailable: reads go to the primary"
        );
        self.primary()
    }

    /// The primary's WAL position now, when reads may go to a replica: after a write, a
    /// reader that passes it to [`reader_after`](Self::reader_after) sees that write. None
    /// without a replica (everything is read on the primary) or when the primary cannot
    /// say (logged; the reader then may not see its write until the replica catches up).
    pub async fn written(&self) -> Option<WalPosition> {
        self.replica.as_ref()?;
        match store::replica::written(&self.primary).await {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(error = %e, "reading the primary's WAL position failed");
                None
            }
        }
    }

    fn primary(&self) -> ReadDb {
        ReadDb {
            db: self.primary.clone(),
            freshness: Freshness::Primary,
        }
    }
}

/// Whether a replica that replayed up to `replayed` shows every write at or before
/// `seen`. A standby that cannot tell (`replayed` None: promoted, not a standby) is current.
fn replayed_up_to(replayed: Option<WalPosition>, seen: Option<WalPosition>) -> bool {
    match (replayed, seen) {
        (_, None) | (None, _) => true,
        (Some(r), Some(s)) => r >= s,
    }
}

fn now_ms() -> i64 {
    i64::try_from(OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_say_where_the_data_came_from_and_how_old_it_may_be() {
        assert_eq!(Freshness::Primary.source(), "primary");
        assert_eq!(Freshness::Primary.lag_header().as_deref(), Some("0.000"));
        let behind = Freshness::Replica {
            lag: Some(Duration::from_millis(12_345)),
        };
        assert_eq!(behind.source(), "replica");
        assert_eq!(behind.lag_header().as_deref(), Some("12.345"));
        assert_eq!(Freshness::Replica { lag: None }.lag_header(), None);
    }

    #[test]
    fn a_replica_shows_a_write_once_it_has_replayed_its_position() {
        assert!(replayed_up_to(Some(100), None));
        assert!(replayed_up_to(Some(100), Some(100)));
        assert!(replayed_up_to(Some(101), Some(100)));
        assert!(!replayed_up_to(Some(99), Some(100)));
        // Promoted: no replay position, its data is the primary's.
        assert!(replayed_up_to(None, Some(100)));
    }

    #[tokio::test]
    async fn without_a_replica_reads_go_to_the_primary() {
        let pools = ReadPools::new(DatabaseConnection::Disconnected, None);
        assert_eq!(pools.reader().await.freshness, Freshness::Primary);
    }
}
