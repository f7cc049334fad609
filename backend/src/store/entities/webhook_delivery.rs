//! One event on its way to one endpoint: pending until delivered, failed, or abandoned.
use sea_orm::entity::prelude::*;

use super::text::ModeColumn;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "webhook_deliveries")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub event_id: String,
    pub endpoint_id: String,
    pub merchant_id: String,
    pub mode: ModeColumn,
    pub status: DeliveryStatus,
    pub attempt_count: i32,
    pub next_attempt_at: Option<TimeDateTimeWithTimeZone>,
    pub last_attempt_at: Option<TimeDateTimeWithTimeZone>,
    pub created_at: TimeDateTimeWithTimeZone,
}

/// Where a delivery is; stored as text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
pub enum DeliveryStatus {
    /// Waiting for its next attempt.
    #[sea_orm(string_value = "pending")]
    Pending,
    /// The endpoint answered 2xx.
    #[sea_orm(string_value = "succeeded")]
    Succeeded,
    /// Retries ran out, or the endpoint answered 410 Gone.
    #[sea_orm(string_value = "failed")]
    Failed,
    /// Its endpoint was disabled or removed before it was delivered.
    #[sea_orm(string_value = "canceled")]
    Canceled,
}

impl DeliveryStatus {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Canceled => "canceled",
        }
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
