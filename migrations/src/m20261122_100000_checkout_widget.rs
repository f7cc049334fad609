//! The checkout widget's tables: remembered-voucher tokens and per-merchant checkout settings.
use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261122_100000_checkout_widget"
    }
}

#[derive(DeriveIden)]
enum RememberedVouchers {
    Table,
    Id,
    TokenHash,
    VoucherId,
    MerchantId,
    Mode,
    Last4,
    CreatedAt,
    ExpiresAt,
    RevokedAt,
    LastUsedAt,
}

#[derive(DeriveIden)]
enum CheckoutSettings {
    Table,
    MerchantId,
    Mode,
    RequireSignature,
    AllowedOrigins,
    SigningGeneration,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Vouchers {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Merchants {
    Table,
    Id,
}

fn timestamp<T: IntoIden>(col: T) -> ColumnDef {
    ColumnDef::new(col)
        .timestamp_with_time_zone()
        .not_null()
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // A token stands for one voucher at one merchant; only its SHA-256 is kept, like
        // API keys, because it carries enough random bits that no dictionary exists.
        manager
            .create_table(
                Table::create()
                    .table(RememberedVouchers::Table)
                    .col(
                        ColumnDef::new(RememberedVouchers::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(RememberedVouchers::TokenHash)
                            .string()
                            .not_null()
                            .unique_key(),
                    )
                    .col(
                        ColumnDef::new(RememberedVouchers::VoucherId)
                            .big_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(RememberedVouchers::MerchantId)
                            .string()
                            .not_null(),
                    )
                    .col(ColumnDef::new(RememberedVouchers::Mode).string().not_null())
                    .col(
                        ColumnDef::new(RememberedVouchers::Last4)
                            .string()
                            .not_null(),
                    )
                    .col(timestamp(RememberedVouchers::CreatedAt))
                    .col(timestamp(RememberedVouchers::ExpiresAt))
                    .col(
                        ColumnDef::new(RememberedVouchers::RevokedAt)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .col(
                        ColumnDef::new(RememberedVouchers::LastUsedAt)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(RememberedVouchers::Table, RememberedVouchers::VoucherId)
                            .to(Vouchers::Table, Vouchers::Id),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(RememberedVouchers::Table, RememberedVouchers::MerchantId)
                            .to(Merchants::Table, Merchants::Id),
                    )
                    .to_owned(),
            )
            .await?;
        // Revoking every token of a voucher (operator action) looks them up by voucher.
        manager
            .create_index(
                Index::create()
                    .name("idx_remembered_vouchers_voucher")
                    .table(RememberedVouchers::Table)
                    .col(RememberedVouchers::VoucherId)
                    .to_owned(),
            )
            .await?;

        // No signing secret is stored: it is derived from the server's key and the
        // generation, so rotating is a counter increment and a database dump reveals none.
        manager
            .create_table(
                Table::create()
                    .table(CheckoutSettings::Table)
                    .col(
                        ColumnDef::new(CheckoutSettings::MerchantId)
                            .string()
                            .not_null(),
                    )
                    .col(ColumnDef::new(CheckoutSettings::Mode).string().not_null())
                    .col(
                        ColumnDef::new(CheckoutSettings::RequireSignature)
                            .boolean()
                            .not_null()
                            .default(false),
                    )
                    .col(
                        ColumnDef::new(CheckoutSettings::AllowedOrigins)
                            .json_binary()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(CheckoutSettings::SigningGeneration)
                            .integer()
                            .not_null()
                            .default(1),
                    )
                    .col(timestamp(CheckoutSettings::UpdatedAt))
                    .primary_key(
                        Index::create()
                            .col(CheckoutSettings::MerchantId)
                            .col(CheckoutSettings::Mode),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(CheckoutSettings::Table, CheckoutSettings::MerchantId)
                            .to(Merchants::Table, Merchants::Id),
                    )
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            CheckoutSettings::Table.into_iden(),
            RememberedVouchers::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
