//! The only module that speaks SeaORM: connections, migrations and every query.
pub mod checkout;
pub mod entities;
pub mod keys;
pub mod ledger;
pub mod merchants;
pub mod payment_write;
pub mod payments;
pub mod refunds;
pub mod sealed;
pub mod transactions;
pub mod vouchers;
pub mod webhooks;

use std::time::Duration;

use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, DbErr, RuntimeErr,
    SqlErr,
};
use superpayment_migrations::Migrator;
use superpayment_migrations::MigratorTrait;

/// Opens a pool. SQLite gets one connection: its writers serialise anyway, and a single
/// connection turns "database is locked" into an orderly queue.
pub async fn connect(url: &str, pool_size: u32) -> anyhow::Result<DatabaseConnection> {
    let sqlite = url.starts_with("sqlite:");
    let mut opts = ConnectOptions::new(url.to_owned());
    opts.max_connections(if sqlite { 1 } else { pool_size })
        .min_connections(if sqlite { 1 } else { 2.min(pool_size) })
        .connect_timeout(Duration::from_secs(5))
        .acquire_timeout(Duration::from_secs(30))
        .sqlx_logging(false);
    let db = Database::connect(opts).await?;
    if sqlite {
        db.execute_unprepared("PRAGMA journal_mode=WAL; PRAGMA foreign_keys=ON; PRAGMA busy_timeout=5000; PRAGMA synchronous=NORMAL;")
            .await?;
    }
    Ok(db)
}

/// Applies pending migrations.
pub async fn migrate(db: &DatabaseConnection) -> Result<(), DbErr> {
    Migrator::up(db, None).await
}

/// True when the database answers a trivial query.
pub async fn ping(db: &DatabaseConnection) -> Result<(), DbErr> {
    db.ping().await
}

/// True when `err` is a unique-constraint violation (on either backend).
pub fn is_unique_violation(err: &DbErr) -> bool {
    matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_)))
}

/// True when `err` is a CHECK-constraint violation (a balance that would go negative).
pub fn is_check_violation(err: &DbErr) -> bool {
    let text = match err {
        DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) => {
            e.to_string()
        }
        _ => return false,
    };
    text.contains("check constraint") || text.contains("CHECK constraint")
}

/// Whether a connection is PostgreSQL (row locks exist) or SQLite (writers serialise).
pub fn is_postgres(db: &impl ConnectionTrait) -> bool {
    db.get_database_backend() == DbBackend::Postgres
}
