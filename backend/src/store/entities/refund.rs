//! A refund of part or all of a transaction.
use sea_orm::entity::prelude::*;

use super::text::{CurrencyColumn, ModeColumn};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "refunds")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub transaction_id: String,
    pub merchant_id: String,
    pub mode: ModeColumn,
    pub currency: CurrencyColumn,
    pub amount_minor: i64,
    pub commission_minor: i64,
    pub net_minor: i64,
    pub reason: Option<String>,
    pub created_at: TimeDateTimeWithTimeZone,
}

/// A refund's status on the wire. Not a column: a refund is written whole in one database
/// transaction or not at all, so every stored refund succeeded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefundStatus {
    /// Written: the money is back on the vouchers.
    Succeeded,
}

impl RefundStatus {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Succeeded => "succeeded",
        }
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
