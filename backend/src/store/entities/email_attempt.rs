//! One SMTP attempt of an email, kept for the operator.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "email_attempts")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub email_id: i64,
    pub attempt_number: i32,
    pub started_at: TimeDateTimeWithTimeZone,
    pub duration_ms: i64,
    /// `sent`, `failed` (may succeed later) or `rejected` (permanent SMTP refusal).
    pub outcome: String,
    pub error: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
