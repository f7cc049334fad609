//! A back-office user: one merchant, one role, an argon2id password hash.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "dashboard_users")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub merchant_id: String,
    /// Lower-cased; unique across the platform.
    pub email: String,
    /// PHC string of argon2id.
    pub password_hash: String,
    pub role: Role,
    /// The TOTP secret (base32), sealed with the encryption key and bound to this user's
    /// id; set while an enrolment waits for its first code, and after.
    pub totp_secret: Option<String>,
    /// When the second factor was switched on (None: off, or an enrolment pending).
    pub totp_enabled_at: Option<TimeDateTimeWithTimeZone>,
    /// The last accepted TOTP time step (Unix time / 30 s): no code is accepted twice.
    pub totp_last_step: Option<i64>,
    pub disabled: bool,
    pub created_at: TimeDateTimeWithTimeZone,
    /// Sessions created before this instant are no longer valid.
    pub password_changed_at: TimeDateTimeWithTimeZone,
}

/// What a user may do is decided from this by `accounts::Role::can`; stored as text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
pub enum Role {
    /// Everything, team and settings included.
    #[sea_orm(string_value = "owner")]
    Owner,
    /// Refunds, keys, webhooks, settings.
    #[sea_orm(string_value = "admin")]
    Admin,
    /// Refunds.
    #[sea_orm(string_value = "staff")]
    Staff,
    /// Read only.
    #[sea_orm(string_value = "viewer")]
    Viewer,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
