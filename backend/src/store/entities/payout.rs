//! A payout: an amount of a merchant's payable paid out to its bank, with the bank reference.
use sea_orm::entity::prelude::*;

use super::text::{CurrencyColumn, ModeColumn};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "payouts")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub merchant_id: String,
    pub mode: ModeColumn,
    pub currency: CurrencyColumn,
    pub amount_minor: i64,
    pub reference: String,
    /// The ledger journal that moved the amount out of the merchant's payable.
    pub journal_id: i64,
    pub created_at: TimeDateTimeWithTimeZone,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
