//! A successful payment (refunds lower `refunded_minor`; the row is never deleted).
use sea_orm::entity::prelude::*;

use super::text::{CurrencyColumn, ModeColumn};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "transactions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub merchant_id: String,
    pub mode: ModeColumn,
    pub order_id: String,
    /// Written once at creation and never updated: what a merchant is told is derived
    /// from the amounts by [`crate::payments::TransactionStatus::of`], never read from here.
    pub status: InitialStatus,
    pub currency: CurrencyColumn,
    pub amount_minor: i64,
    pub commission_minor: i64,
    pub net_minor: i64,
    pub refunded_minor: i64,
    pub created_at: TimeDateTimeWithTimeZone,
}

/// A transaction's status when it was written; stored as text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
pub enum InitialStatus {
    /// Paid in full by its vouchers.
    #[sea_orm(string_value = "succeeded")]
    Succeeded,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
