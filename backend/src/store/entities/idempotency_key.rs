//! A stored response for an Idempotency-Key, replayed for 24 hours.
use sea_orm::entity::prelude::*;

use super::text::ModeColumn;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "idempotency_keys")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub merchant_id: String,
    pub mode: ModeColumn,
    /// The operation the key was used for (`payment`, `refund`): keys are scoped by it.
    pub operation: String,
    pub key: String,
    pub request_hash: String,
    pub response_status: i32,
    pub response_body: String,
    pub created_at: TimeDateTimeWithTimeZone,
    pub expires_at: TimeDateTimeWithTimeZone,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
