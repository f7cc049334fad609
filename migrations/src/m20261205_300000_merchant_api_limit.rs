//! Per-merchant override of the secret-key request limit (`superpayment admin set-limits
//! --api-per-key`): NULL keeps the server's default (API_RATE_LIMIT_PER_KEY), 0 turns it
//! off for the merchant.
use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261205_300000_merchant_api_limit"
    }
}

#[derive(DeriveIden)]
enum Merchants {
    Table,
    ApiLimitPerKey,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Merchants::Table)
                    .add_column(ColumnDef::new(Merchants::ApiLimitPerKey).integer().null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Merchants::Table)
                    .drop_column(Merchants::ApiLimitPerKey)
                    .to_owned(),
            )
            .await
    }
}
