//! A merchant's checkout settings for one mode: signature policy and allowed embedding origins.
use sea_orm::entity::prelude::*;

use super::text::ModeColumn;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "checkout_settings")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub merchant_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub mode: ModeColumn,
    pub require_signature: bool,
    pub allowed_origins: Json,
    pub signing_generation: i32,
    pub updated_at: TimeDateTimeWithTimeZone,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
