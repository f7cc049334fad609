//! Per-merchant overrides of the gateway's request limits (`superpayment admin
//! set-limits`): NULL keeps the server's default (PAY_RATE_LIMIT_PER_CLIENT,
//! PAY_RATE_LIMIT_PER_KEY, CHECK_RATE_LIMIT), 0 turns that limit off for the merchant.
use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261204_500000_merchant_rate_limits"
    }
}

#[derive(DeriveIden)]
enum Merchants {
    Table,
    PayLimitPerClient,
    PayLimitPerKey,
    CheckLimit,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite takes one column per ALTER TABLE.
        for col in [
            Merchants::PayLimitPerClient,
            Merchants::PayLimitPerKey,
            Merchants::CheckLimit,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Merchants::Table)
                        .add_column(ColumnDef::new(col).integer().null())
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for col in [
            Merchants::PayLimitPerClient,
            Merchants::PayLimitPerKey,
            Merchants::CheckLimit,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Merchants::Table)
                        .drop_column(col)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
