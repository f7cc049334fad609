//! One HTTP attempt of a delivery, kept for the merchant to inspect.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "webhook_attempts")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub delivery_id: i64,
    pub event_id: String,
    pub attempt_number: i32,
    pub url: String,
    pub started_at: TimeDateTimeWithTimeZone,
    pub duration_ms: i64,
    pub status_code: Option<i32>,
    pub outcome: AttemptOutcome,
    pub error: Option<String>,
    pub response_excerpt: Option<String>,
}

/// How one attempt ended; stored as text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
pub enum AttemptOutcome {
    /// The endpoint answered 2xx.
    #[sea_orm(string_value = "succeeded")]
    Succeeded,
    /// Another answer, a timeout or a connection failure.
    #[sea_orm(string_value = "failed")]
    Failed,
    /// Not sent: the destination is not allowed (e.g. a private address in live mode).
    #[sea_orm(string_value = "refused")]
    Refused,
}

impl AttemptOutcome {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Refused => "refused",
        }
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
