//! Payouts to merchants and the period index the operator reports read by.
//!
//! - `payouts`: one row per payout recorded by an operator (merchant, mode, currency,
//!   amount in minor units, the bank reference), pointing at the ledger journal that moved
//!   the amount from the merchant's payable to `payouts_clearing:<mode>:<currency>`.
//! - `idx_journals_created_at`: reports select journals by half-open time ranges.
use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261204_400000_payouts"
    }
}

#[derive(DeriveIden)]
enum Payouts {
    Table,
    Id,
    MerchantId,
    Mode,
    Currency,
    AmountMinor,
    Reference,
    JournalId,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Merchants {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Journals {
    Table,
    Id,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Payouts::Table)
                    .col(
                        ColumnDef::new(Payouts::Id)
                            .string()
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(Payouts::MerchantId).string().not_null())
                    .col(ColumnDef::new(Payouts::Mode).string().not_null())
                    .col(ColumnDef::new(Payouts::Currency).string_len(3).not_null())
                    .col(
                        ColumnDef::new(Payouts::AmountMinor)
                            .big_integer()
                            .not_null(),
                    )
                    .col(ColumnDef::new(Payouts::Reference).string().not_null())
                    .col(
                        ColumnDef::new(Payouts::JournalId)
                            .big_integer()
                            .not_null()
                            .unique_key(),
                    )
                    .col(
                        ColumnDef::new(Payouts::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(Payouts::Table, Payouts::MerchantId)
                            .to(Merchants::Table, Merchants::Id),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(Payouts::Table, Payouts::JournalId)
                            .to(Journals::Table, Journals::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_payouts_merchant_mode")
                    .table(Payouts::Table)
                    .col(Payouts::MerchantId)
                    .col(Payouts::Mode)
                    .col(Payouts::CreatedAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_journals_created_at")
                    .table(Journals::Table)
                    .col(Journals::CreatedAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("idx_journals_created_at")
                    .table(Journals::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(Table::drop().table(Payouts::Table).to_owned())
            .await
    }
}
