//! A successful payment (refunds lower `refunded_minor`; the row is never deleted).
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "transactions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub merchant_id: String,
    pub mode: String,
    pub order_id: String,
    pub status: String,
    pub currency: String,
    pub amount_minor: i64,
    pub commission_minor: i64,
    pub net_minor: i64,
    pub refunded_minor: i64,
    pub created_at: TimeDateTimeWithTimeZone,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
