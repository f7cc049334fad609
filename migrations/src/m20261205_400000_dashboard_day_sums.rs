//! The back-office overview sums payments and refunds per currency and UTC day of one
//! merchant's mode (`store::dashboard::day_sums`).
//!
//! - Refunds get the `(merchant_id, mode, created_at)` index transactions already have:
//!   without it, the overview's refund sums read every merchant's refunds.
//! - On PostgreSQL, extended statistics on (currency, UTC day) tell the planner that a month
//!   of rows falls into a few dozen groups; without them it expects one group per row, sorts
//!   the whole month (spilling to disk at 100,000 transactions) instead of hashing it, and
//!   the overview's query takes twice as long.
use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261205_400000_dashboard_day_sums"
    }
}

#[derive(DeriveIden)]
enum Refunds {
    Table,
    MerchantId,
    Mode,
    CreatedAt,
}

const STATISTICS: [(&str, &str); 2] = [
    ("stx_transactions_currency_day", "transactions"),
    ("stx_refunds_currency_day", "refunds"),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create()
                    .name("idx_refunds_merchant_created")
                    .table(Refunds::Table)
                    .col(Refunds::MerchantId)
                    .col(Refunds::Mode)
                    .col(Refunds::CreatedAt)
                    .to_owned(),
            )
            .await?;
        if manager.get_database_backend() == sea_orm::DbBackend::Postgres {
            let db = manager.get_connection();
            for (name, table) in STATISTICS {
                db.execute_unprepared(&format!(
                    "CREATE STATISTICS {name} ON currency, ((created_at AT TIME ZONE 'UTC')::date) \
                     FROM {table}"
                ))
                .await?;
                // Statistics count from the next ANALYZE; a sample, cheap on a large table.
                db.execute_unprepared(&format!("ANALYZE {table}")).await?;
            }
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() == sea_orm::DbBackend::Postgres {
            for (name, _) in STATISTICS {
                manager
                    .get_connection()
                    .execute_unprepared(&format!("DROP STATISTICS IF EXISTS {name}"))
                    .await?;
            }
        }
        manager
            .drop_index(
                Index::drop()
                    .name("idx_refunds_merchant_created")
                    .table(Refunds::Table)
                    .to_owned(),
            )
            .await
    }
}
