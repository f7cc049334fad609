//! One notification email in the outbox: pending until sent, failed when retries ran out.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "emails")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// The merchant it concerns (None for a message to no merchant's account).
    pub merchant_id: Option<String>,
    /// Which message (`notify::EmailKind::name`); selects the templates.
    pub kind: String,
    pub recipient: String,
    /// The values the templates are rendered with (never a secret).
    pub params: Json,
    pub status: EmailStatus,
    pub attempt_count: i32,
    pub next_attempt_at: Option<TimeDateTimeWithTimeZone>,
    pub last_attempt_at: Option<TimeDateTimeWithTimeZone>,
    pub sent_at: Option<TimeDateTimeWithTimeZone>,
    pub created_at: TimeDateTimeWithTimeZone,
}

/// Where an email is; stored as text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
pub enum EmailStatus {
    /// Waiting for its next attempt.
    #[sea_orm(string_value = "pending")]
    Pending,
    /// The SMTP server accepted it.
    #[sea_orm(string_value = "sent")]
    Sent,
    /// Retries ran out, or the server refused it for good.
    #[sea_orm(string_value = "failed")]
    Failed,
}

impl EmailStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Sent => "sent",
            Self::Failed => "failed",
        }
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
