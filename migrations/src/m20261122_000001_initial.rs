//! The payment core: merchants, keys, vouchers, transactions, ledger, idempotency, outbox.
use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261122_000001_initial"
    }
}

#[derive(DeriveIden)]
enum Merchants {
    Table,
    Id,
    Name,
    CommissionBps,
    Status,
    CreatedAt,
}

#[derive(DeriveIden)]
enum ApiKeys {
    Table,
    Id,
    MerchantId,
    Kind,
    Mode,
    KeyHash,
    Prefix,
    Last4,
    CreatedAt,
    ExpiresAt,
    RevokedAt,
}

#[derive(DeriveIden)]
enum Vouchers {
    Table,
    Id,
    CodeHmac,
    Last4,
    Mode,
    Currency,
    InitialMinor,
    BalanceMinor,
    Status,
    ExpiresAt,
    Rules,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Transactions {
    Table,
    Id,
    MerchantId,
    Mode,
    OrderId,
    Status,
    Currency,
    AmountMinor,
    CommissionMinor,
    NetMinor,
    RefundedMinor,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Redemptions {
    Table,
    Id,
    TransactionId,
    VoucherId,
    Position,
    AmountMinor,
    BalanceAfterMinor,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Journals {
    Table,
    Id,
    Kind,
    TransactionId,
    Currency,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Postings {
    Table,
    Id,
    JournalId,
    Account,
    VoucherId,
    AmountMinor,
}

#[derive(DeriveIden)]
enum IdempotencyKeys {
    Table,
    Id,
    MerchantId,
    Mode,
    Key,
    RequestHash,
    ResponseStatus,
    ResponseBody,
    CreatedAt,
    ExpiresAt,
}

#[derive(DeriveIden)]
enum Events {
    Table,
    Id,
    MerchantId,
    Mode,
    Kind,
    TransactionId,
    Payload,
    CreatedAt,
}

fn created_at<T: IntoIden>(col: T) -> ColumnDef {
    ColumnDef::new(col)
        .timestamp_with_time_zone()
        .not_null()
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Merchants::Table)
                    .col(ColumnDef::new(Merchants::Id).string().not_null().primary_key())
                    .col(ColumnDef::new(Merchants::Name).string().not_null())
                    .col(
                        ColumnDef::new(Merchants::CommissionBps)
                            .integer()
                            .not_null()
                            .check(Expr::col(Merchants::CommissionBps).between(0, 10_000)),
                    )
                    .col(ColumnDef::new(Merchants::Status).string().not_null())
                    .col(created_at(Merchants::CreatedAt))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(ApiKeys::Table)
                    .col(ColumnDef::new(ApiKeys::Id).string().not_null().primary_key())
                    .col(ColumnDef::new(ApiKeys::MerchantId).string().not_null())
                    .col(ColumnDef::new(ApiKeys::Kind).string().not_null())
                    .col(ColumnDef::new(ApiKeys::Mode).string().not_null())
                    .col(ColumnDef::new(ApiKeys::KeyHash).string().not_null().unique_key())
                    .col(ColumnDef::new(ApiKeys::Prefix).string().not_null())
                    .col(ColumnDef::new(ApiKeys::Last4).string().not_null())
                    .col(created_at(ApiKeys::CreatedAt))
                    .col(ColumnDef::new(ApiKeys::ExpiresAt).timestamp_with_time_zone().null())
                    .col(ColumnDef::new(ApiKeys::RevokedAt).timestamp_with_time_zone().null())
                    .foreign_key(
                        ForeignKey::create()
                            .from(ApiKeys::Table, ApiKeys::MerchantId)
                            .to(Merchants::Table, Merchants::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_api_keys_merchant")
                    .table(ApiKeys::Table)
                    .col(ApiKeys::MerchantId)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Vouchers::Table)
                    .col(
                        ColumnDef::new(Vouchers::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(Vouchers::CodeHmac).string().not_null().unique_key())
                    .col(ColumnDef::new(Vouchers::Last4).string().not_null())
                    .col(ColumnDef::new(Vouchers::Mode).string().not_null())
                    .col(ColumnDef::new(Vouchers::Currency).string_len(3).not_null())
                    .col(
                        ColumnDef::new(Vouchers::InitialMinor)
                            .big_integer()
                            .not_null()
                            .check(Expr::col(Vouchers::InitialMinor).gt(0)),
                    )
                    .col(
                        ColumnDef::new(Vouchers::BalanceMinor)
                            .big_integer()
                            .not_null()
                            .check(Expr::col(Vouchers::BalanceMinor).gte(0)),
                    )
                    .col(ColumnDef::new(Vouchers::Status).string().not_null())
                    .col(ColumnDef::new(Vouchers::ExpiresAt).timestamp_with_time_zone().null())
                    .col(ColumnDef::new(Vouchers::Rules).json_binary().not_null())
                    .col(created_at(Vouchers::CreatedAt))
                    .col(created_at(Vouchers::UpdatedAt))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Transactions::Table)
                    .col(ColumnDef::new(Transactions::Id).string().not_null().primary_key())
                    .col(ColumnDef::new(Transactions::MerchantId).string().not_null())
                    .col(ColumnDef::new(Transactions::Mode).string().not_null())
                    .col(ColumnDef::new(Transactions::OrderId).string().not_null())
                    .col(ColumnDef::new(Transactions::Status).string().not_null())
                    .col(ColumnDef::new(Transactions::Currency).string_len(3).not_null())
                    .col(
                        ColumnDef::new(Transactions::AmountMinor)
                            .big_integer()
                            .not_null()
                            .check(Expr::col(Transactions::AmountMinor).gt(0)),
                    )
                    .col(ColumnDef::new(Transactions::CommissionMinor).big_integer().not_null())
                    .col(ColumnDef::new(Transactions::NetMinor).big_integer().not_null())
                    .col(
                        ColumnDef::new(Transactions::RefundedMinor)
                            .big_integer()
                            .not_null()
                            .default(0),
                    )
                    .col(created_at(Transactions::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Transactions::Table, Transactions::MerchantId)
                            .to(Merchants::Table, Merchants::Id),
                    )
                    .to_owned(),
            )
            .await?;
        // The guarantee behind "one successful payment per order": every row here is a
        // successful payment, so the unique index is the final word on double payments.
        manager
            .create_index(
                Index::create()
                    .name("uq_transactions_merchant_mode_order")
                    .table(Transactions::Table)
                    .col(Transactions::MerchantId)
                    .col(Transactions::Mode)
                    .col(Transactions::OrderId)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_transactions_merchant_created")
                    .table(Transactions::Table)
                    .col(Transactions::MerchantId)
                    .col(Transactions::Mode)
                    .col(Transactions::CreatedAt)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Redemptions::Table)
                    .col(
                        ColumnDef::new(Redemptions::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(Redemptions::TransactionId).string().not_null())
                    .col(ColumnDef::new(Redemptions::VoucherId).big_integer().not_null())
                    .col(ColumnDef::new(Redemptions::Position).integer().not_null())
                    .col(
                        ColumnDef::new(Redemptions::AmountMinor)
                            .big_integer()
                            .not_null()
                            .check(Expr::col(Redemptions::AmountMinor).gt(0)),
                    )
                    .col(ColumnDef::new(Redemptions::BalanceAfterMinor).big_integer().not_null())
                    .col(created_at(Redemptions::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Redemptions::Table, Redemptions::TransactionId)
                            .to(Transactions::Table, Transactions::Id),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(Redemptions::Table, Redemptions::VoucherId)
                            .to(Vouchers::Table, Vouchers::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_redemptions_transaction")
                    .table(Redemptions::Table)
                    .col(Redemptions::TransactionId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_redemptions_voucher")
                    .table(Redemptions::Table)
                    .col(Redemptions::VoucherId)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Journals::Table)
                    .col(
                        ColumnDef::new(Journals::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(Journals::Kind).string().not_null())
                    .col(ColumnDef::new(Journals::TransactionId).string().null())
                    .col(ColumnDef::new(Journals::Currency).string_len(3).not_null())
                    .col(created_at(Journals::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Postings::Table)
                    .col(
                        ColumnDef::new(Postings::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(Postings::JournalId).big_integer().not_null())
                    .col(ColumnDef::new(Postings::Account).string().not_null())
                    .col(ColumnDef::new(Postings::VoucherId).big_integer().null())
                    .col(ColumnDef::new(Postings::AmountMinor).big_integer().not_null())
                    .foreign_key(
                        ForeignKey::create()
                            .from(Postings::Table, Postings::JournalId)
                            .to(Journals::Table, Journals::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_postings_journal")
                    .table(Postings::Table)
                    .col(Postings::JournalId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_postings_voucher")
                    .table(Postings::Table)
                    .col(Postings::VoucherId)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(IdempotencyKeys::Table)
                    .col(
                        ColumnDef::new(IdempotencyKeys::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(IdempotencyKeys::MerchantId).string().not_null())
                    .col(ColumnDef::new(IdempotencyKeys::Mode).string().not_null())
                    .col(ColumnDef::new(IdempotencyKeys::Key).string().not_null())
                    .col(ColumnDef::new(IdempotencyKeys::RequestHash).string().not_null())
                    .col(ColumnDef::new(IdempotencyKeys::ResponseStatus).integer().not_null())
                    .col(ColumnDef::new(IdempotencyKeys::ResponseBody).text().not_null())
                    .col(created_at(IdempotencyKeys::CreatedAt))
                    .col(created_at(IdempotencyKeys::ExpiresAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_idempotency_merchant_mode_key")
                    .table(IdempotencyKeys::Table)
                    .col(IdempotencyKeys::MerchantId)
                    .col(IdempotencyKeys::Mode)
                    .col(IdempotencyKeys::Key)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_idempotency_expires")
                    .table(IdempotencyKeys::Table)
                    .col(IdempotencyKeys::ExpiresAt)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Events::Table)
                    .col(ColumnDef::new(Events::Id).string().not_null().primary_key())
                    .col(ColumnDef::new(Events::MerchantId).string().not_null())
                    .col(ColumnDef::new(Events::Mode).string().not_null())
                    .col(ColumnDef::new(Events::Kind).string().not_null())
                    .col(ColumnDef::new(Events::TransactionId).string().null())
                    .col(ColumnDef::new(Events::Payload).json_binary().not_null())
                    .col(created_at(Events::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_events_transaction")
                    .table(Events::Table)
                    .col(Events::TransactionId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_events_merchant_created")
                    .table(Events::Table)
                    .col(Events::MerchantId)
                    .col(Events::Mode)
                    .col(Events::CreatedAt)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            Events::Table.into_iden(),
            IdempotencyKeys::Table.into_iden(),
            Postings::Table.into_iden(),
            Journals::Table.into_iden(),
            Redemptions::Table.into_iden(),
            Transactions::Table.into_iden(),
            Vouchers::Table.into_iden(),
            ApiKeys::Table.into_iden(),
            Merchants::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
