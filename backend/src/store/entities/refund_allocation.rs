//! The part of a refund returned for one original voucher, and the voucher credited.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "refund_allocations")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub refund_id: String,
    /// The voucher the money originally came from.
    pub voucher_id: i64,
    /// The voucher credited: the original one, or a new one when the original had expired.
    pub credited_voucher_id: i64,
    pub amount_minor: i64,
    pub created_at: TimeDateTimeWithTimeZone,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
