//! The `events` insert trigger's NOTIFY goes: a transaction that notifies holds
//! PostgreSQL's one notification lock from its commit until the commit is flushed, so every
//! payment (each writes an event) committed behind the previous one. The servers now send
//! the NOTIFY after the commit (`webhooks::bell` in the backend). During a rolling upgrade,
//! events written by instances of the previous version are found at the workers' next poll
//! (`WEBHOOK_POLL_INTERVAL`) instead of at once. Nothing to do on SQLite, which never had
//! the trigger.
use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261206_100000_outbox_notify_after_commit"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != sea_orm::DbBackend::Postgres {
            return Ok(());
        }
        manager
            .get_connection()
            .execute_unprepared(
                super::m20261201_000001_merchant_integration::DROP_OUTBOX_NOTIFY_TRIGGER,
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != sea_orm::DbBackend::Postgres {
            return Ok(());
        }
        manager
            .get_connection()
            .execute_unprepared(super::m20261201_000001_merchant_integration::OUTBOX_NOTIFY_TRIGGER)
            .await?;
        Ok(())
    }
}
