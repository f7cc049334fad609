//! A voucher: only the HMAC of its code and its last 4 symbols are stored.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "vouchers")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub code_hmac: String,
    pub last4: String,
    pub mode: String,
    pub currency: String,
    pub initial_minor: i64,
    pub balance_minor: i64,
    pub status: String,
    pub expires_at: Option<TimeDateTimeWithTimeZone>,
    pub rules: Json,
    pub created_at: TimeDateTimeWithTimeZone,
    pub updated_at: TimeDateTimeWithTimeZone,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
