//! Back-office accounts: dashboard users (one merchant each, a role, an argon2id password
//! hash), their server-side sessions, stored by the SHA-256 of the cookie's token, and the
//! activity log (who did what: logins, refunds, key and webhook changes).
//!
//! An email is unique across the whole platform: the login form asks for an email and a
//! password only, so one email must name one account. A person working for two merchants
//! uses two addresses.
use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261204_100000_dashboard_accounts"
    }
}

#[derive(DeriveIden)]
enum DashboardUsers {
    Table,
    Id,
    MerchantId,
    Email,
    PasswordHash,
    Role,
    TotpSecret,
    TotpEnabledAt,
    Disabled,
    CreatedAt,
    PasswordChangedAt,
}

#[derive(DeriveIden)]
enum DashboardSessions {
    Table,
    Id,
    UserId,
    MerchantId,
    Mode,
    CreatedAt,
    LastSeenAt,
    ExpiresAt,
    RevokedAt,
}

#[derive(DeriveIden)]
enum ActivityLog {
    Table,
    Id,
    MerchantId,
    Mode,
    Actor,
    Action,
    Target,
    Detail,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Transactions {
    Table,
    MerchantId,
    Mode,
    OrderId,
}

#[derive(DeriveIden)]
enum Merchants {
    Table,
    Id,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(DashboardUsers::Table)
                    .col(
                        ColumnDef::new(DashboardUsers::Id)
                            .text()
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(DashboardUsers::MerchantId).text().not_null())
                    // Stored lower-cased, so the unique index is case-insensitive.
                    .col(ColumnDef::new(DashboardUsers::Email).text().not_null())
                    .col(
                        ColumnDef::new(DashboardUsers::PasswordHash)
                            .text()
                            .not_null(),
                    )
                    .col(ColumnDef::new(DashboardUsers::Role).text().not_null())
                    // Encrypted like webhook secrets when the second factor is enabled.
                    .col(ColumnDef::new(DashboardUsers::TotpSecret).text())
                    .col(ColumnDef::new(DashboardUsers::TotpEnabledAt).timestamp_with_time_zone())
                    .col(
                        ColumnDef::new(DashboardUsers::Disabled)
                            .boolean()
                            .not_null()
                            .default(false),
                    )
                    .col(
                        ColumnDef::new(DashboardUsers::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(DashboardUsers::PasswordChangedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(DashboardUsers::Table, DashboardUsers::MerchantId)
                            .to(Merchants::Table, Merchants::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_dashboard_users_email")
                    .table(DashboardUsers::Table)
                    .col(DashboardUsers::Email)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_dashboard_users_merchant")
                    .table(DashboardUsers::Table)
                    .col(DashboardUsers::MerchantId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(DashboardSessions::Table)
                    // Hex SHA-256 of the 256-bit token in the cookie; the token itself is
                    // never stored.
                    .col(
                        ColumnDef::new(DashboardSessions::Id)
                            .text()
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(DashboardSessions::UserId).text().not_null())
                    .col(
                        ColumnDef::new(DashboardSessions::MerchantId)
                            .text()
                            .not_null(),
                    )
                    .col(ColumnDef::new(DashboardSessions::Mode).text().not_null())
                    .col(
                        ColumnDef::new(DashboardSessions::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(DashboardSessions::LastSeenAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(DashboardSessions::ExpiresAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(ColumnDef::new(DashboardSessions::RevokedAt).timestamp_with_time_zone())
                    .foreign_key(
                        ForeignKey::create()
                            .from(DashboardSessions::Table, DashboardSessions::UserId)
                            .to(DashboardUsers::Table, DashboardUsers::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_dashboard_sessions_user")
                    .table(DashboardSessions::Table)
                    .col(DashboardSessions::UserId)
                    .to_owned(),
            )
            .await?;
        // The back-office's search by order id: the unique index on (merchant, mode, order)
        // is partial (released holds free their order id), so it serves only the payment path.
        manager
            .create_index(
                Index::create()
                    .name("idx_transactions_merchant_mode_order")
                    .table(Transactions::Table)
                    .col(Transactions::MerchantId)
                    .col(Transactions::Mode)
                    .col(Transactions::OrderId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ActivityLog::Table)
                    .col(
                        ColumnDef::new(ActivityLog::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(ActivityLog::MerchantId).text().not_null())
                    // None for what is not of one mode (a login, a password change).
                    .col(ColumnDef::new(ActivityLog::Mode).text())
                    // `usr_...` (a back-office user) or `key_...` (an API key).
                    .col(ColumnDef::new(ActivityLog::Actor).text().not_null())
                    .col(ColumnDef::new(ActivityLog::Action).text().not_null())
                    .col(ColumnDef::new(ActivityLog::Target).text())
                    .col(ColumnDef::new(ActivityLog::Detail).text())
                    .col(
                        ColumnDef::new(ActivityLog::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_activity_log_merchant")
                    .table(ActivityLog::Table)
                    .col(ActivityLog::MerchantId)
                    .col(ActivityLog::Id)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(ActivityLog::Table).to_owned())
            .await?;
        manager
            .drop_index(
                Index::drop()
                    .name("idx_transactions_merchant_mode_order")
                    .table(Transactions::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(Table::drop().table(DashboardSessions::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(DashboardUsers::Table).to_owned())
            .await
    }
}
