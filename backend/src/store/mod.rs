//! The only module that speaks SeaORM: connections, migrations and every query.
pub mod accounts;
pub mod activities;
pub mod activity;
pub mod breakage;
pub mod cached;
pub mod checkout;
pub mod dashboard;
pub mod emails;
pub mod entities;
pub mod holds;
pub mod idempotency;
pub mod keys;
pub mod ledger;
pub mod links;
pub mod merchants;
pub mod outbox;
pub mod payment_write;
pub mod payments;
pub mod payouts;
pub mod refunds;
pub mod replica;
pub mod reports;
pub mod risk;
pub mod sealed;
pub mod transactions;
pub mod vouchers;
pub mod webhooks;

use std::time::Duration;

use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DatabaseTransaction, DbBackend,
    DbErr, RuntimeErr, SqlxPostgresConnector, TransactionTrait,
};
use superpayment_migrations::Migrator;
use superpayment_migrations::MigratorTrait;

/// How long a SQLite writer waits for another process's write (the CLI, a worker) to end.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a request waits for a pooled connection. While PostgreSQL is down or
/// restarting the pool cannot open one, and the request is answered `503
/// service_unavailable` after this wait instead of hanging ([`is_unavailable`]); a busy
/// pool under normal load hands one over in milliseconds.
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// Opens a pool. SQLite gets one connection: its writers serialise anyway, and a single
/// connection turns "database is locked" into an orderly queue within the process; other
/// processes on the same file are waited for ([`SQLITE_BUSY_TIMEOUT`], see [`begin`]).
/// PostgreSQL gets [`pg_pool`]'s pool.
pub async fn connect(url: &str, pool_size: u32) -> anyhow::Result<DatabaseConnection> {
    if !url.starts_with("sqlite:") {
        let pool = pg_pool(pool_size, 2.min(pool_size), ACQUIRE_TIMEOUT)
            .connect_with(pg_options(url)?)
            .await
            .map_err(|e| DbErr::Conn(RuntimeErr::SqlxError(e)))?;
        return Ok(SqlxPostgresConnector::from_sqlx_postgres_pool(pool));
    }
    let mut opts = ConnectOptions::new(url.to_owned());
    opts.max_connections(1)
        .min_connections(1)
        .connect_timeout(Duration::from_secs(5))
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .sqlx_logging(false);
    // Per connection, so that every connection the pool opens (again) has them.
    opts.map_sqlx_sqlite_opts(|o| {
        o.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
            .foreign_keys(true)
            .busy_timeout(SQLITE_BUSY_TIMEOUT)
            .synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Normal)
    });
    Ok(Database::connect(opts).await?)
}

/// A pool that connects on first use (PostgreSQL): a server that is down now does not
/// fail the caller until a query needs it.
pub async fn connect_lazy(url: &str, pool_size: u32) -> anyhow::Result<DatabaseConnection> {
    let pool = pg_pool(pool_size, 0, Duration::from_secs(5)).connect_lazy_with(pg_options(url)?);
    Ok(SqlxPostgresConnector::from_sqlx_postgres_pool(pool))
}

/// A connection back in the pool for less than this is handed out again without a ping.
pub const ALIVE_BYPASS: Duration = Duration::from_millis(500);

/// The PostgreSQL pool. By default sqlx pings every idle connection before handing it out:
/// a round trip before every query of a request that reads once (verify), and one more
/// before every transaction. sqlx also pings each connection as it is given back, so one
/// that was back for less than [`ALIVE_BYPASS`] answered a moment ago and goes out as it
/// is; only one idle for longer, which a restarted or failed-over server may have dropped,
/// is pinged first (and replaced if it does not answer). What slips through (a server
/// gone within that half second) fails its statement like any lost connection: `503
/// service_unavailable`, and the connection is dropped when it comes back.
fn pg_pool(
    max: u32,
    min: u32,
    acquire_timeout: Duration,
) -> sea_orm::sqlx::pool::PoolOptions<sea_orm::sqlx::Postgres> {
    use sea_orm::sqlx::Connection;
    sea_orm::sqlx::pool::PoolOptions::new()
        .max_connections(max)
        .min_connections(min)
        .acquire_timeout(acquire_timeout)
        .test_before_acquire(false)
        .before_acquire(|conn: &mut sea_orm::sqlx::PgConnection, meta| {
            Box::pin(async move {
                if meta.idle_for >= ALIVE_BYPASS {
                    conn.ping().await?;
                }
                Ok(true)
            })
        })
}

/// The connection options of `url`, without sqlx's statement logging (statements carry
/// values that do not belong in logs).
fn pg_options(url: &str) -> anyhow::Result<sea_orm::sqlx::postgres::PgConnectOptions> {
    use sea_orm::sqlx::ConnectOptions as _;
    let options: sea_orm::sqlx::postgres::PgConnectOptions = url
        .parse()
        .map_err(|e: sea_orm::sqlx::Error| DbErr::Conn(RuntimeErr::SqlxError(e)))?;
    Ok(options.disable_statement_logging())
}

/// Begins a transaction that will write. On SQLite it takes the write lock first, as
/// `BEGIN IMMEDIATE` would (SeaORM only issues a deferred `BEGIN`): a deferred transaction
/// that reads and then writes while another process writes fails at once with
/// SQLITE_BUSY, whereas a transaction whose first statement writes waits for the lock
/// (busy timeout). On PostgreSQL this is a plain `BEGIN`.
pub async fn begin(db: &impl TransactionTrait) -> Result<DatabaseTransaction, DbErr> {
    let tx = db.begin().await?;
    if !is_postgres(&tx) {
        // Writes nothing; being a write, it takes SQLite's RESERVED lock, waiting if need be.
        tx.execute_unprepared("UPDATE merchants SET id = id WHERE 0")
            .await?;
    }
    Ok(tx)
}

/// Applies pending migrations.
pub async fn migrate(db: &DatabaseConnection) -> Result<(), DbErr> {
    Migrator::up(db, None).await
}

/// True when the database answers a trivial query.
pub async fn ping(db: &DatabaseConnection) -> Result<(), DbErr> {
    db.ping().await
}

/// The unique constraints the code tells apart, each matched by its exact name on
/// PostgreSQL and by its exact column list on SQLite (which reports no names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unique {
    /// `uq_transactions_merchant_mode_order`: one successful payment per order.
    TransactionOrder,
    /// `uq_idempotency_scope`: one stored answer per key, merchant, mode and operation.
    IdempotencyScope,
    /// `vouchers_code_hmac_key`: one voucher per code.
    VoucherCode,
    /// `uq_webhook_endpoints_merchant_mode`: one endpoint per merchant and mode.
    WebhookEndpoint,
    /// `uq_dashboard_users_email`: one back-office account per email.
    DashboardEmail,
}

impl Unique {
    const ALL: [(Unique, &'static str, &'static str); 5] = [
        (
            Unique::TransactionOrder,
            "uq_transactions_merchant_mode_order",
            "transactions.merchant_id, transactions.mode, transactions.order_id",
        ),
        (
            Unique::IdempotencyScope,
            "uq_idempotency_scope",
            "idempotency_keys.merchant_id, idempotency_keys.mode, idempotency_keys.operation, idempotency_keys.key",
        ),
        (
            Unique::VoucherCode,
            "vouchers_code_hmac_key",
            "vouchers.code_hmac",
        ),
        (
            Unique::WebhookEndpoint,
            "uq_webhook_endpoints_merchant_mode",
            "webhook_endpoints.merchant_id, webhook_endpoints.mode",
        ),
        (
            Unique::DashboardEmail,
            "uq_dashboard_users_email",
            "dashboard_users.email",
        ),
    ];
}

fn database_error(err: &DbErr) -> Option<&dyn sea_orm::sqlx::error::DatabaseError> {
    match err {
        DbErr::Exec(RuntimeErr::SqlxError(sea_orm::sqlx::Error::Database(e)))
        | DbErr::Query(RuntimeErr::SqlxError(sea_orm::sqlx::Error::Database(e))) => {
            Some(e.as_ref())
        }
        _ => None,
    }
}

/// Which known unique constraint `err` violates, if it is such a violation. `None` for
/// every other error, including violations of constraints not listed in [`Unique`].
pub fn unique_violation(err: &DbErr) -> Option<Unique> {
    let e = database_error(err)?;
    if e.kind() != sea_orm::sqlx::error::ErrorKind::UniqueViolation {
        return None;
    }
    match e.constraint() {
        Some(name) => Unique::ALL.iter().find(|(_, n, _)| *n == name),
        None => {
            let columns = e.message().strip_prefix("UNIQUE constraint failed: ")?;
            Unique::ALL.iter().find(|(_, _, c)| *c == columns)
        }
    }
    .map(|(u, _, _)| *u)
}

/// True when `err` violates the unique constraint `which`.
pub fn violates(err: &DbErr, which: Unique) -> bool {
    unique_violation(err) == Some(which)
}

/// Whether a connection is PostgreSQL (row locks exist) or SQLite (writers serialise).
pub fn is_postgres(db: &impl ConnectionTrait) -> bool {
    db.get_database_backend() == DbBackend::Postgres
}

/// Whether an error says the database cannot be reached right now (a refused or dropped
/// connection, the pool timed out, the server shutting down or starting up) rather than
/// that a statement was wrong: what a client may retry. Constraint and logic errors are
/// never unavailability.
pub fn is_unavailable(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        if let Some(db) = cause.downcast_ref::<DbErr>() {
            return db_err_unavailable(db);
        }
        cause
            .downcast_ref::<sea_orm::sqlx::Error>()
            .is_some_and(sqlx_unavailable)
    })
}

/// An error [`is_unavailable`] recognises: the pool timed out, for the documentation.
pub fn unavailable_example() -> anyhow::Error {
    anyhow::Error::new(DbErr::ConnectionAcquire(sea_orm::ConnAcquireErr::Timeout))
}

fn db_err_unavailable(err: &DbErr) -> bool {
    match err {
        DbErr::ConnectionAcquire(_) => true,
        DbErr::Conn(e) | DbErr::Exec(e) | DbErr::Query(e) => match e {
            sea_orm::RuntimeErr::SqlxError(e) => sqlx_unavailable(e),
            sea_orm::RuntimeErr::Internal(_) => false,
        },
        _ => false,
    }
}

fn sqlx_unavailable(err: &sea_orm::sqlx::Error) -> bool {
    use sea_orm::sqlx::Error as E;
    match err {
        E::Io(_) | E::PoolTimedOut | E::PoolClosed | E::WorkerCrashed => true,
        // SQLSTATE class 08 (connection exception); 57P01 "terminating connection due to
        // administrator command" (a restart), 57P02 crash shutdown, 57P03 "the database
        // system is starting up / shutting down".
        E::Database(db) => db
            .code()
            .is_some_and(|c| c.starts_with("08") || matches!(&*c, "57P01" | "57P02" | "57P03")),
        _ => false,
    }
}

/// Lets a domain error enum take a database error as its `Internal(anyhow::Error)`
/// variant, so that `?` works on store calls: a failing database is unexpected (and
/// answered 503 rather than 500 when it is unreachability, see [`is_unavailable`]).
#[macro_export]
macro_rules! internal_on_db_error {
    ($ty:ty) => {
        impl From<sea_orm::DbErr> for $ty {
            fn from(err: sea_orm::DbErr) -> Self {
                Self::Internal(err.into())
            }
        }
    };
}

/// `n` bind placeholders numbered from `from` (`$3, $4` on PostgreSQL, `?, ?` on SQLite).
pub(crate) fn placeholders(backend: sea_orm::DbBackend, from: usize, n: usize) -> String {
    (from..from + n)
        .map(|i| match backend {
            sea_orm::DbBackend::Postgres => format!("${i}"),
            _ => "?".to_owned(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod unavailable_tests {
    use anyhow::Context;
    use sea_orm::{sqlx, ConnAcquireErr, DbErr, RuntimeErr};

    use super::is_unavailable;

    #[test]
    fn connection_failures_are_unavailability_and_statement_errors_are_not() {
        let down = [
            DbErr::ConnectionAcquire(ConnAcquireErr::Timeout),
            DbErr::Exec(RuntimeErr::SqlxError(sqlx::Error::PoolTimedOut)),
            DbErr::Conn(RuntimeErr::SqlxError(sqlx::Error::Io(
                std::io::ErrorKind::ConnectionRefused.into(),
            ))),
        ];
        for err in down {
            let err = anyhow::Error::new(err).context("paying");
            assert!(is_unavailable(&err), "{err:?}");
        }
        let wrong = [
            DbErr::Custom("duplicate key value violates unique constraint".into()),
            DbErr::Query(RuntimeErr::SqlxError(sqlx::Error::RowNotFound)),
            DbErr::RecordNotFound("voucher".into()),
        ];
        for err in wrong {
            let err = anyhow::Error::new(err);
            assert!(!is_unavailable(&err), "{err:?}");
        }
        let plain: anyhow::Result<()> = Err(anyhow::anyhow!("connection refused"));
        assert!(!is_unavailable(
            &plain.context("a message is not a cause").unwrap_err()
        ));
    }
}
