//! Merchant integration: webhook endpoints, deliveries and attempts, refunds.
use sea_orm_migration::prelude::*;

/// The events insert trigger this migration created (PostgreSQL); dropped again by
/// `m20261206_100000_outbox_notify_after_commit`, whose `down` restores it.
pub(crate) const OUTBOX_NOTIFY_TRIGGER: &str =
    "CREATE FUNCTION superpayment_outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
     BEGIN PERFORM pg_notify('superpayment_outbox', ''); RETURN NULL; END $$;
     CREATE TRIGGER events_outbox_notify AFTER INSERT ON events
     FOR EACH STATEMENT EXECUTE FUNCTION superpayment_outbox_notify();";

/// Drops [`OUTBOX_NOTIFY_TRIGGER`]'s trigger and function.
pub(crate) const DROP_OUTBOX_NOTIFY_TRIGGER: &str =
    "DROP TRIGGER IF EXISTS events_outbox_notify ON events;
     DROP FUNCTION IF EXISTS superpayment_outbox_notify();";

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261201_000001_merchant_integration"
    }
}

#[derive(DeriveIden)]
enum WebhookEndpoints {
    Table,
    Id,
    MerchantId,
    Mode,
    Url,
    SecretCiphertext,
    PreviousSecretCiphertext,
    PreviousSecretExpiresAt,
    Status,
    DisabledReason,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum WebhookDeliveries {
    Table,
    Id,
    EventId,
    EndpointId,
    MerchantId,
    Mode,
    Status,
    AttemptCount,
    NextAttemptAt,
    LastAttemptAt,
    CreatedAt,
}

#[derive(DeriveIden)]
enum WebhookAttempts {
    Table,
    Id,
    DeliveryId,
    EventId,
    AttemptNumber,
    Url,
    StartedAt,
    DurationMs,
    StatusCode,
    Outcome,
    Error,
    ResponseExcerpt,
}

#[derive(DeriveIden)]
enum Refunds {
    Table,
    Id,
    TransactionId,
    MerchantId,
    Mode,
    Currency,
    AmountMinor,
    CommissionMinor,
    NetMinor,
    Reason,
    CreatedAt,
}

#[derive(DeriveIden)]
enum RefundAllocations {
    Table,
    Id,
    RefundId,
    VoucherId,
    CreditedVoucherId,
    AmountMinor,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Merchants {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Transactions {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Vouchers {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Events {
    Table,
    Id,
    DispatchedAt,
    CreatedAt,
}

fn timestamp<T: IntoIden>(col: T) -> ColumnDef {
    ColumnDef::new(col)
        .timestamp_with_time_zone()
        .not_null()
        .to_owned()
}

fn nullable_timestamp<T: IntoIden>(col: T) -> ColumnDef {
    ColumnDef::new(col)
        .timestamp_with_time_zone()
        .null()
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // The outbox relay's marker: NULL until the worker has turned the event into
        // deliveries. Events written before webhooks existed count as dispatched.
        manager
            .alter_table(
                Table::alter()
                    .table(Events::Table)
                    .add_column(nullable_timestamp(Events::DispatchedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .exec_stmt(
                Query::update()
                    .table(Events::Table)
                    .value(Events::DispatchedAt, Expr::col(Events::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_events_undispatched")
                    .table(Events::Table)
                    .col(Events::DispatchedAt)
                    .col(Events::CreatedAt)
                    .to_owned(),
            )
            .await?;
        if manager.get_database_backend() == sea_orm::DbBackend::Postgres {
            // Wakes every listening worker when an event commits, whichever code wrote it,
            // so delivery starts within milliseconds instead of at the next poll.
            manager
                .get_connection()
                .execute_unprepared(OUTBOX_NOTIFY_TRIGGER)
                .await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(WebhookEndpoints::Table)
                    .col(
                        ColumnDef::new(WebhookEndpoints::Id)
                            .string()
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(WebhookEndpoints::MerchantId)
                            .string()
                            .not_null(),
                    )
                    .col(ColumnDef::new(WebhookEndpoints::Mode).string().not_null())
                    .col(ColumnDef::new(WebhookEndpoints::Url).text().not_null())
                    // Webhook secrets are needed in plaintext to sign, so they are encrypted
                    // (AES-256-GCM) rather than hashed.
                    .col(
                        ColumnDef::new(WebhookEndpoints::SecretCiphertext)
                            .text()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(WebhookEndpoints::PreviousSecretCiphertext)
                            .text()
                            .null(),
                    )
                    .col(nullable_timestamp(
                        WebhookEndpoints::PreviousSecretExpiresAt,
                    ))
                    .col(ColumnDef::new(WebhookEndpoints::Status).string().not_null())
                    .col(
                        ColumnDef::new(WebhookEndpoints::DisabledReason)
                            .string()
                            .null(),
                    )
                    .col(timestamp(WebhookEndpoints::CreatedAt))
                    .col(timestamp(WebhookEndpoints::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(WebhookEndpoints::Table, WebhookEndpoints::MerchantId)
                            .to(Merchants::Table, Merchants::Id),
                    )
                    .to_owned(),
            )
            .await?;
        // One endpoint per merchant and mode: test and live events never share a receiver.
        manager
            .create_index(
                Index::create()
                    .name("uq_webhook_endpoints_merchant_mode")
                    .table(WebhookEndpoints::Table)
                    .col(WebhookEndpoints::MerchantId)
                    .col(WebhookEndpoints::Mode)
                    .unique()
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(WebhookDeliveries::Table)
                    .col(
                        ColumnDef::new(WebhookDeliveries::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(WebhookDeliveries::EventId)
                            .string()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(WebhookDeliveries::EndpointId)
                            .string()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(WebhookDeliveries::MerchantId)
                            .string()
                            .not_null(),
                    )
                    .col(ColumnDef::new(WebhookDeliveries::Mode).string().not_null())
                    .col(
                        ColumnDef::new(WebhookDeliveries::Status)
                            .string()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(WebhookDeliveries::AttemptCount)
                            .integer()
                            .not_null()
                            .default(0),
                    )
                    // Also the lease: a claimed delivery is pushed into the future, so a
                    // worker that dies mid-delivery hands it back when the lease runs out.
                    .col(nullable_timestamp(WebhookDeliveries::NextAttemptAt))
                    .col(nullable_timestamp(WebhookDeliveries::LastAttemptAt))
                    .col(timestamp(WebhookDeliveries::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(WebhookDeliveries::Table, WebhookDeliveries::EventId)
                            .to(Events::Table, Events::Id),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(WebhookDeliveries::Table, WebhookDeliveries::EndpointId)
                            .to(WebhookEndpoints::Table, WebhookEndpoints::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_webhook_deliveries_due")
                    .table(WebhookDeliveries::Table)
                    .col(WebhookDeliveries::Status)
                    .col(WebhookDeliveries::NextAttemptAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_webhook_deliveries_event")
                    .table(WebhookDeliveries::Table)
                    .col(WebhookDeliveries::EventId)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(WebhookAttempts::Table)
                    .col(
                        ColumnDef::new(WebhookAttempts::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(WebhookAttempts::DeliveryId)
                            .big_integer()
                            .not_null(),
                    )
                    .col(ColumnDef::new(WebhookAttempts::EventId).string().not_null())
                    .col(
                        ColumnDef::new(WebhookAttempts::AttemptNumber)
                            .integer()
                            .not_null(),
                    )
                    .col(ColumnDef::new(WebhookAttempts::Url).text().not_null())
                    .col(timestamp(WebhookAttempts::StartedAt))
                    .col(
                        ColumnDef::new(WebhookAttempts::DurationMs)
                            .big_integer()
                            .not_null(),
                    )
                    .col(ColumnDef::new(WebhookAttempts::StatusCode).integer().null())
                    .col(ColumnDef::new(WebhookAttempts::Outcome).string().not_null())
                    .col(ColumnDef::new(WebhookAttempts::Error).text().null())
                    .col(
                        ColumnDef::new(WebhookAttempts::ResponseExcerpt)
                            .text()
                            .null(),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(WebhookAttempts::Table, WebhookAttempts::DeliveryId)
                            .to(WebhookDeliveries::Table, WebhookDeliveries::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_webhook_attempts_event")
                    .table(WebhookAttempts::Table)
                    .col(WebhookAttempts::EventId)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Refunds::Table)
                    .col(
                        ColumnDef::new(Refunds::Id)
                            .string()
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(Refunds::TransactionId).string().not_null())
                    .col(ColumnDef::new(Refunds::MerchantId).string().not_null())
                    .col(ColumnDef::new(Refunds::Mode).string().not_null())
                    .col(ColumnDef::new(Refunds::Currency).string_len(3).not_null())
                    .col(
                        ColumnDef::new(Refunds::AmountMinor)
                            .big_integer()
                            .not_null()
                            .check(Expr::col(Refunds::AmountMinor).gt(0)),
                    )
                    .col(
                        ColumnDef::new(Refunds::CommissionMinor)
                            .big_integer()
                            .not_null(),
                    )
                    .col(ColumnDef::new(Refunds::NetMinor).big_integer().not_null())
                    .col(ColumnDef::new(Refunds::Reason).string().null())
                    .col(timestamp(Refunds::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Refunds::Table, Refunds::TransactionId)
                            .to(Transactions::Table, Transactions::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_refunds_transaction")
                    .table(Refunds::Table)
                    .col(Refunds::TransactionId)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(RefundAllocations::Table)
                    .col(
                        ColumnDef::new(RefundAllocations::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(RefundAllocations::RefundId)
                            .string()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(RefundAllocations::VoucherId)
                            .big_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(RefundAllocations::CreditedVoucherId)
                            .big_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(RefundAllocations::AmountMinor)
                            .big_integer()
                            .not_null()
                            .check(Expr::col(RefundAllocations::AmountMinor).gt(0)),
                    )
                    .col(timestamp(RefundAllocations::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(RefundAllocations::Table, RefundAllocations::RefundId)
                            .to(Refunds::Table, Refunds::Id),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(RefundAllocations::Table, RefundAllocations::VoucherId)
                            .to(Vouchers::Table, Vouchers::Id),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(
                                RefundAllocations::Table,
                                RefundAllocations::CreditedVoucherId,
                            )
                            .to(Vouchers::Table, Vouchers::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_refund_allocations_refund")
                    .table(RefundAllocations::Table)
                    .col(RefundAllocations::RefundId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_refund_allocations_voucher")
                    .table(RefundAllocations::Table)
                    .col(RefundAllocations::VoucherId)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() == sea_orm::DbBackend::Postgres {
            manager
                .get_connection()
                .execute_unprepared(DROP_OUTBOX_NOTIFY_TRIGGER)
                .await?;
        }
        for table in [
            RefundAllocations::Table.into_iden(),
            Refunds::Table.into_iden(),
            WebhookAttempts::Table.into_iden(),
            WebhookDeliveries::Table.into_iden(),
            WebhookEndpoints::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        manager
            .drop_index(
                Index::drop()
                    .name("idx_events_undispatched")
                    .table(Events::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Events::Table)
                    .drop_column(Events::DispatchedAt)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }
}
