//! Authorize, then capture or cancel: a payment may hold the vouchers' money first.
//!
//! - `transactions.hold_state` (`authorized`, `captured`, `canceled`, `expired`; NULL for a
//!   payment captured at once), `authorized_minor` (what was held) and `hold_expires_at`.
//! - `merchants.hold_period_seconds`: how long a hold lasts before the worker releases it
//!   (default 7 days).
//! - The one-payment-per-order index no longer counts released holds: a canceled or
//!   expired authorization frees its order id for a new payment.
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, Statement};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261203_300000_payment_holds"
    }
}

#[derive(DeriveIden)]
enum Transactions {
    Table,
    HoldState,
    AuthorizedMinor,
    HoldExpiresAt,
}

#[derive(DeriveIden)]
enum Merchants {
    Table,
    HoldPeriodSeconds,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite takes one column per ALTER TABLE.
        for col in [
            ColumnDef::new(Transactions::HoldState)
                .string()
                .null()
                .to_owned(),
            ColumnDef::new(Transactions::AuthorizedMinor)
                .big_integer()
                .null()
                .to_owned(),
            ColumnDef::new(Transactions::HoldExpiresAt)
                .timestamp_with_time_zone()
                .null()
                .to_owned(),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Transactions::Table)
                        .add_column(col)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table(Merchants::Table)
                    .add_column(
                        ColumnDef::new(Merchants::HoldPeriodSeconds)
                            .big_integer()
                            .not_null()
                            .default(604_800),
                    )
                    .to_owned(),
            )
            .await?;
        let db = manager.get_connection();
        let backend = manager.get_database_backend();
        db.execute(Statement::from_string(
            backend,
            "DROP INDEX uq_transactions_merchant_mode_order",
        ))
        .await?;
        // A partial index (both databases have them): released holds do not take the order.
        db.execute(Statement::from_string(
            backend,
            "CREATE UNIQUE INDEX uq_transactions_merchant_mode_order
             ON transactions (merchant_id, mode, order_id)
             WHERE hold_state IS NULL OR hold_state IN ('authorized', 'captured')",
        ))
        .await?;
        db.execute(Statement::from_string(
            backend,
            "CREATE INDEX idx_transactions_open_holds ON transactions (hold_expires_at)
             WHERE hold_state = 'authorized'",
        ))
        .await?;
        Ok(())
    }

    async fn down(&self, _manager: &SchemaManager) -> Result<(), DbErr> {
        Err(DbErr::Migration(
            "m20261203_300000_payment_holds is not reversible: restore a backup".into(),
        ))
    }
}
