//! Back-office two-factor sign-in: the last accepted TOTP time step of each user (a code
//! is accepted once), the team's requirement, the users' recovery codes (keyed hashes,
//! single use) and the short-lived state between a password and its second factor.
//!
//! The TOTP secret itself lives in `dashboard_users.totp_secret` (created with the table),
//! sealed with the encryption key and bound to its user; `totp_enabled_at` is NULL while
//! an enrolment waits for its first code.
use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261205_100000_dashboard_two_factor"
    }
}

#[derive(DeriveIden)]
enum DashboardUsers {
    Table,
    TotpLastStep,
}

#[derive(DeriveIden)]
enum Merchants {
    Table,
    RequireTwoFactor,
}

#[derive(DeriveIden)]
enum DashboardRecoveryCodes {
    Table,
    Id,
    UserId,
    CodeHash,
    CreatedAt,
    UsedAt,
}

#[derive(DeriveIden)]
enum DashboardLoginChallenges {
    Table,
    Id,
    UserId,
    MerchantId,
    CreatedAt,
    ExpiresAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(DashboardUsers::Table)
                    .add_column(ColumnDef::new(DashboardUsers::TotpLastStep).big_integer())
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Merchants::Table)
                    .add_column(
                        ColumnDef::new(Merchants::RequireTwoFactor)
                            .boolean()
                            .not_null()
                            .default(false),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(DashboardRecoveryCodes::Table)
                    .col(
                        ColumnDef::new(DashboardRecoveryCodes::Id)
                            .text()
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(DashboardRecoveryCodes::UserId)
                            .text()
                            .not_null(),
                    )
                    // HMAC-SHA256 (keyed with the pepper, bound to the user) of the code.
                    .col(
                        ColumnDef::new(DashboardRecoveryCodes::CodeHash)
                            .text()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(DashboardRecoveryCodes::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(ColumnDef::new(DashboardRecoveryCodes::UsedAt).timestamp_with_time_zone())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_dashboard_recovery_codes_user")
                    .table(DashboardRecoveryCodes::Table)
                    .col(DashboardRecoveryCodes::UserId)
                    .col(DashboardRecoveryCodes::CodeHash)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(DashboardLoginChallenges::Table)
                    // Hex SHA-256 of the token in the browser's cookie.
                    .col(
                        ColumnDef::new(DashboardLoginChallenges::Id)
                            .text()
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(DashboardLoginChallenges::UserId)
                            .text()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(DashboardLoginChallenges::MerchantId)
                            .text()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(DashboardLoginChallenges::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(DashboardLoginChallenges::ExpiresAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(
                Table::drop()
                    .table(DashboardLoginChallenges::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(
                Table::drop()
                    .table(DashboardRecoveryCodes::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Merchants::Table)
                    .drop_column(Merchants::RequireTwoFactor)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(DashboardUsers::Table)
                    .drop_column(DashboardUsers::TotpLastStep)
                    .to_owned(),
            )
            .await
    }
}
