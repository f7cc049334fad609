//! How far a streaming replica's data is behind its primary.
use std::time::Duration;

use sea_orm::{ConnectionTrait, DbBackend, DbErr, FromQueryResult, Statement};

/// What a replica says about its own freshness.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplicaLag {
    /// The connection is not a standby (a primary, or a replica since promoted): its data
    /// is current.
    NotAReplica,
    /// It has replayed all the WAL it received: nothing is waiting to be applied, however
    /// long ago the primary's last write was (an idle primary is not a lagging replica).
    CaughtUp,
    /// WAL is waiting to be replayed; the data is at most this old (the time since the
    /// last transaction it replayed committed on the primary).
    Behind(Duration),
    /// WAL is waiting but no transaction has been replayed since it started, so it cannot
    /// tell its age.
    Unknown,
}

/// A position in the primary's write-ahead log, as a byte offset (`pg_lsn - '0/0'`): what
/// a replica must have replayed to show a given write.
pub type WalPosition = i64;

/// What one probe of a replica says: its lag, and how far it has replayed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probe {
    pub lag: ReplicaLag,
    /// The WAL position replayed so far; None when the connection is not a standby.
    pub replayed: Option<WalPosition>,
}

#[derive(Debug, FromQueryResult)]
struct LagRow {
    in_recovery: bool,
    caught_up: Option<bool>,
    lag_ms: Option<i64>,
    replayed: Option<i64>,
}

/// Asks the replica (one round trip). Not PostgreSQL: [`ReplicaLag::NotAReplica`].
pub async fn lag(db: &impl ConnectionTrait) -> Result<ReplicaLag, DbErr> {
    Ok(probe(db).await?.lag)
}

/// [`lag`] with the WAL position the replica has replayed (same round trip).
pub async fn probe(db: &impl ConnectionTrait) -> Result<Probe, DbErr> {
    if db.get_database_backend() != DbBackend::Postgres {
        return Ok(Probe {
            lag: ReplicaLag::NotAReplica,
            replayed: None,
        });
    }
    // clock_timestamp(), not now(): now() is the start of the (implicit) transaction.
    let row = LagRow::find_by_statement(Statement::from_string(
        DbBackend::Postgres,
        "SELECT pg_is_in_recovery() AS in_recovery,
                pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() AS caught_up,
                (EXTRACT(EPOCH FROM clock_timestamp() - pg_last_xact_replay_timestamp()) * 1000)::bigint AS lag_ms,
                (pg_last_wal_replay_lsn() - '0/0'::pg_lsn)::bigint AS replayed",
    ))
    .one(db)
    .await?
    .ok_or_else(|| DbErr::RecordNotFound("replica lag".into()))?;
    let replayed = row.replayed;
    let lag = match row {
        LagRow {
            in_recovery: false, ..
        } => ReplicaLag::NotAReplica,
        LagRow {
            caught_up: Some(true),
            ..
        } => ReplicaLag::CaughtUp,
        LagRow {
            lag_ms: Some(ms), ..
        } => ReplicaLag::Behind(Duration::from_millis(u64::try_from(ms).unwrap_or(0))),
        LagRow { lag_ms: None, .. } => ReplicaLag::Unknown,
    };
    Ok(Probe { lag, replayed })
}

#[derive(Debug, FromQueryResult)]
struct PositionRow {
    position: Option<i64>,
}

/// The primary's current WAL insert position: every transaction committed before this call
/// lies at or before it. None on anything but a PostgreSQL primary.
pub async fn written(db: &impl ConnectionTrait) -> Result<Option<WalPosition>, DbErr> {
    if db.get_database_backend() != DbBackend::Postgres {
        return Ok(None);
    }
    let row = PositionRow::find_by_statement(Statement::from_string(
        DbBackend::Postgres,
        "SELECT CASE WHEN pg_is_in_recovery() THEN NULL
                     ELSE (pg_current_wal_insert_lsn() - '0/0'::pg_lsn)::bigint END AS position",
    ))
    .one(db)
    .await?;
    Ok(row.and_then(|r| r.position))
}
