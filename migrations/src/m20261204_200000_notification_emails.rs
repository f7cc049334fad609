//! Notification emails: the merchant's notification address and the email outbox.
//!
//! - `merchants.notify_email`: where a merchant's notifications go (NULL: none are queued).
//! - `emails`: one row per message, written in the transaction of the fact it tells about
//!   and sent by the worker (pending until sent, failed when its retries ran out). The
//!   message is rendered when it is sent, from `kind` and `params`.
//! - `email_attempts`: every SMTP attempt, kept for the operator.
use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261204_200000_notification_emails"
    }
}

#[derive(DeriveIden)]
enum Merchants {
    Table,
    NotifyEmail,
}

#[derive(DeriveIden)]
enum Emails {
    Table,
    Id,
    MerchantId,
    Kind,
    Recipient,
    Params,
    Status,
    AttemptCount,
    NextAttemptAt,
    LastAttemptAt,
    SentAt,
    CreatedAt,
}

#[derive(DeriveIden)]
enum EmailAttempts {
    Table,
    Id,
    EmailId,
    AttemptNumber,
    StartedAt,
    DurationMs,
    Outcome,
    Error,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Merchants::Table)
                    .add_column(ColumnDef::new(Merchants::NotifyEmail).text().null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Emails::Table)
                    .col(
                        ColumnDef::new(Emails::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(Emails::MerchantId).text().null())
                    .col(ColumnDef::new(Emails::Kind).text().not_null())
                    .col(ColumnDef::new(Emails::Recipient).text().not_null())
                    .col(ColumnDef::new(Emails::Params).json_binary().not_null())
                    .col(ColumnDef::new(Emails::Status).text().not_null())
                    .col(ColumnDef::new(Emails::AttemptCount).integer().not_null())
                    .col(
                        ColumnDef::new(Emails::NextAttemptAt)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .col(
                        ColumnDef::new(Emails::LastAttemptAt)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .col(
                        ColumnDef::new(Emails::SentAt)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .col(
                        ColumnDef::new(Emails::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        // The worker's claim reads due pending rows in due order.
        manager
            .create_index(
                Index::create()
                    .name("idx_emails_status_next_attempt")
                    .table(Emails::Table)
                    .col(Emails::Status)
                    .col(Emails::NextAttemptAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_emails_merchant")
                    .table(Emails::Table)
                    .col(Emails::MerchantId)
                    .col(Emails::Id)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(EmailAttempts::Table)
                    .col(
                        ColumnDef::new(EmailAttempts::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(EmailAttempts::EmailId)
                            .big_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(EmailAttempts::AttemptNumber)
                            .integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(EmailAttempts::StartedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(EmailAttempts::DurationMs)
                            .big_integer()
                            .not_null(),
                    )
                    .col(ColumnDef::new(EmailAttempts::Outcome).text().not_null())
                    .col(ColumnDef::new(EmailAttempts::Error).text().null())
                    .foreign_key(
                        ForeignKey::create()
                            .from(EmailAttempts::Table, EmailAttempts::EmailId)
                            .to(Emails::Table, Emails::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_email_attempts_email")
                    .table(EmailAttempts::Table)
                    .col(EmailAttempts::EmailId)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }
}
