//! Index journals by transaction: refunds and the audit look journals up per transaction,
//! and without it `superpayment audit` grows quadratically with the number of payments.
use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261202_000001_journal_transaction_index"
    }
}

#[derive(DeriveIden)]
enum Journals {
    Table,
    TransactionId,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create()
                    .name("idx_journals_transaction")
                    .table(Journals::Table)
                    .col(Journals::TransactionId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("idx_journals_transaction")
                    .table(Journals::Table)
                    .to_owned(),
            )
            .await
    }
}
