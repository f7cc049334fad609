//! Emailed back-office links: team invitations and password resets. Each row keeps only an
//! HMAC of its link's token (keyed with the pepper), so a database dump opens no link; the
//! token itself travels sealed in the email outbox and in clear only inside the email.
use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261205_200000_team_invitations"
    }
}

#[derive(DeriveIden)]
enum Invitations {
    Table,
    Id,
    MerchantId,
    Email,
    Role,
    InvitedBy,
    TokenHmac,
    CreatedAt,
    ExpiresAt,
    AcceptedAt,
    AcceptedUserId,
    RevokedAt,
}

#[derive(DeriveIden)]
enum PasswordResets {
    Table,
    Id,
    UserId,
    MerchantId,
    TokenHmac,
    CreatedAt,
    ExpiresAt,
    UsedAt,
    RevokedAt,
}

#[derive(DeriveIden)]
enum Merchants {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum DashboardUsers {
    Table,
    Id,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Invitations::Table)
                    .col(
                        ColumnDef::new(Invitations::Id)
                            .text()
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(Invitations::MerchantId).text().not_null())
                    // Lower-cased like dashboard_users.email.
                    .col(ColumnDef::new(Invitations::Email).text().not_null())
                    .col(ColumnDef::new(Invitations::Role).text().not_null())
                    // The inviting user's id.
                    .col(ColumnDef::new(Invitations::InvitedBy).text().not_null())
                    // Hex HMAC-SHA256 of the link's token; the token is never stored.
                    .col(ColumnDef::new(Invitations::TokenHmac).text().not_null())
                    .col(
                        ColumnDef::new(Invitations::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Invitations::ExpiresAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(ColumnDef::new(Invitations::AcceptedAt).timestamp_with_time_zone())
                    .col(ColumnDef::new(Invitations::AcceptedUserId).text())
                    .col(ColumnDef::new(Invitations::RevokedAt).timestamp_with_time_zone())
                    .foreign_key(
                        ForeignKey::create()
                            .from(Invitations::Table, Invitations::MerchantId)
                            .to(Merchants::Table, Merchants::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_invitations_token_hmac")
                    .table(Invitations::Table)
                    .col(Invitations::TokenHmac)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_invitations_merchant_email")
                    .table(Invitations::Table)
                    .col(Invitations::MerchantId)
                    .col(Invitations::Email)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(PasswordResets::Table)
                    .col(
                        ColumnDef::new(PasswordResets::Id)
                            .text()
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(PasswordResets::UserId).text().not_null())
                    .col(ColumnDef::new(PasswordResets::MerchantId).text().not_null())
                    .col(ColumnDef::new(PasswordResets::TokenHmac).text().not_null())
                    .col(
                        ColumnDef::new(PasswordResets::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(PasswordResets::ExpiresAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(ColumnDef::new(PasswordResets::UsedAt).timestamp_with_time_zone())
                    .col(ColumnDef::new(PasswordResets::RevokedAt).timestamp_with_time_zone())
                    .foreign_key(
                        ForeignKey::create()
                            .from(PasswordResets::Table, PasswordResets::UserId)
                            .to(DashboardUsers::Table, DashboardUsers::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_password_resets_token_hmac")
                    .table(PasswordResets::Table)
                    .col(PasswordResets::TokenHmac)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_password_resets_user")
                    .table(PasswordResets::Table)
                    .col(PasswordResets::UserId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(PasswordResets::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Invitations::Table).to_owned())
            .await
    }
}
