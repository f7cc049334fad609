//! Fraud screening: every payment attempt's source (API key, client address as a keyed
//! hash) for the worker's velocity rules, and the flags those rules raise.
//!
//! Attempts are written after the payment's own transaction, off its path; the partial
//! index holds only the successes not yet screened, so the worker's queue stays small.
use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261203_200000_fraud_screening"
    }
}

#[derive(DeriveIden)]
enum PaymentAttempts {
    Table,
    Id,
    MerchantId,
    Mode,
    ApiKeyId,
    ClientRef,
    Outcome,
    Reason,
    TransactionId,
    CreatedAt,
    ScreenedAt,
}

#[derive(DeriveIden)]
enum RiskFlags {
    Table,
    Id,
    TransactionId,
    MerchantId,
    Mode,
    Rule,
    Detail,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(PaymentAttempts::Table)
                    .col(
                        ColumnDef::new(PaymentAttempts::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(PaymentAttempts::MerchantId)
                            .text()
                            .not_null(),
                    )
                    .col(ColumnDef::new(PaymentAttempts::Mode).text().not_null())
                    .col(ColumnDef::new(PaymentAttempts::ApiKeyId).text().not_null())
                    .col(ColumnDef::new(PaymentAttempts::ClientRef).text().not_null())
                    .col(ColumnDef::new(PaymentAttempts::Outcome).text().not_null())
                    .col(ColumnDef::new(PaymentAttempts::Reason).text())
                    .col(ColumnDef::new(PaymentAttempts::TransactionId).text())
                    .col(
                        ColumnDef::new(PaymentAttempts::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(ColumnDef::new(PaymentAttempts::ScreenedAt).timestamp_with_time_zone())
                    .to_owned(),
            )
            .await?;
        for (name, col) in [
            ("idx_payment_attempts_client", PaymentAttempts::ClientRef),
            ("idx_payment_attempts_key", PaymentAttempts::ApiKeyId),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(PaymentAttempts::Table)
                        .col(col)
                        .col(PaymentAttempts::CreatedAt)
                        .to_owned(),
                )
                .await?;
        }
        // Partial indexes read the same on PostgreSQL and SQLite; the builder has none.
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE INDEX idx_payment_attempts_unscreened ON payment_attempts (id) \
                 WHERE outcome = 'succeeded' AND screened_at IS NULL",
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(RiskFlags::Table)
                    .col(
                        ColumnDef::new(RiskFlags::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(RiskFlags::TransactionId).text().not_null())
                    .col(ColumnDef::new(RiskFlags::MerchantId).text().not_null())
                    .col(ColumnDef::new(RiskFlags::Mode).text().not_null())
                    .col(ColumnDef::new(RiskFlags::Rule).text().not_null())
                    .col(ColumnDef::new(RiskFlags::Detail).text().not_null())
                    .col(
                        ColumnDef::new(RiskFlags::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_risk_flags_transaction_rule")
                    .table(RiskFlags::Table)
                    .col(RiskFlags::TransactionId)
                    .col(RiskFlags::Rule)
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(RiskFlags::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(PaymentAttempts::Table).to_owned())
            .await
    }
}
