//! Voucher lifecycle: who issued a voucher, and the activities that change it.
//!
//! - `vouchers.issuer_merchant_id`: the merchant a voucher was issued for (NULL: issued by
//!   SuperPayment itself). Its issuer manages it through the merchant API.
//! - `vouchers.first_used_at`: its first payment, where a kind that expires N days after
//!   first use starts counting (NULL for vouchers used before this column existed: their
//!   kinds had no such rule).
//! - `vouchers.pin_hash`: the PIN of a voucher whose kind requires one, as an Argon2id PHC
//!   string (per-voucher salt, keyed with the pepper); NULL when its kind has no PIN.
//! - `voucher_activities`: one row per lifecycle operation (activate, deactivate, block,
//!   unblock, adjust up or down, load, clear balance), with its amount, the balance after
//!   it, the reason, the actor and the ledger journal of its money (if it moved any).
//!   Payments, refunds and holds are not copied here: a voucher's history reads them from
//!   the ledger, where they already are.
use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261204_300000_voucher_lifecycle"
    }
}

#[derive(DeriveIden)]
enum Vouchers {
    Table,
    Id,
    IssuerMerchantId,
    FirstUsedAt,
    PinHash,
}

#[derive(DeriveIden)]
enum VoucherActivities {
    Table,
    Id,
    VoucherId,
    Kind,
    AmountMinor,
    BalanceAfterMinor,
    Reason,
    ActorKind,
    ActorId,
    JournalId,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Vouchers::Table)
                    .add_column(ColumnDef::new(Vouchers::IssuerMerchantId).string().null())
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Vouchers::Table)
                    .add_column(
                        ColumnDef::new(Vouchers::FirstUsedAt)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Vouchers::Table)
                    .add_column(ColumnDef::new(Vouchers::PinHash).string().null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_vouchers_issuer")
                    .table(Vouchers::Table)
                    .col(Vouchers::IssuerMerchantId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(VoucherActivities::Table)
                    .col(
                        ColumnDef::new(VoucherActivities::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(VoucherActivities::VoucherId)
                            .big_integer()
                            .not_null(),
                    )
                    .col(ColumnDef::new(VoucherActivities::Kind).string().not_null())
                    // Signed: what the voucher's balance moved by (0 for status changes).
                    .col(
                        ColumnDef::new(VoucherActivities::AmountMinor)
                            .big_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(VoucherActivities::BalanceAfterMinor)
                            .big_integer()
                            .not_null(),
                    )
                    .col(ColumnDef::new(VoucherActivities::Reason).string().null())
                    .col(
                        ColumnDef::new(VoucherActivities::ActorKind)
                            .string()
                            .not_null(),
                    )
                    .col(ColumnDef::new(VoucherActivities::ActorId).string().null())
                    .col(
                        ColumnDef::new(VoucherActivities::JournalId)
                            .big_integer()
                            .null(),
                    )
                    .col(
                        ColumnDef::new(VoucherActivities::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(VoucherActivities::Table, VoucherActivities::VoucherId)
                            .to(Vouchers::Table, Vouchers::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_voucher_activities_voucher")
                    .table(VoucherActivities::Table)
                    .col(VoucherActivities::VoucherId)
                    .col(VoucherActivities::Id)
                    .to_owned(),
            )
            .await?;
        // One activity per journal: the audit pairs them.
        manager
            .create_index(
                Index::create()
                    .name("uq_voucher_activities_journal")
                    .table(VoucherActivities::Table)
                    .col(VoucherActivities::JournalId)
                    .unique()
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, _manager: &SchemaManager) -> Result<(), DbErr> {
        Err(DbErr::Migration(
            "m20261204_300000_voucher_lifecycle is not reversible: restore a backup".into(),
        ))
    }
}
