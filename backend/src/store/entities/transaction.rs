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
    /// None for a payment captured at once; else where its hold stands.
    pub hold_state: Option<HoldState>,
    /// What the hold took from the vouchers (`amount_minor` becomes what was captured).
    pub authorized_minor: Option<i64>,
    /// When an authorized hold is released by the worker.
    pub hold_expires_at: Option<TimeDateTimeWithTimeZone>,
}

/// Where a hold stands; stored as text. Only the conditional updates of
/// `store::holds` move it, and only away from `Authorized`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
pub enum HoldState {
    #[sea_orm(string_value = "authorized")]
    Authorized,
    #[sea_orm(string_value = "captured")]
    Captured,
    #[sea_orm(string_value = "canceled")]
    Canceled,
    #[sea_orm(string_value = "expired")]
    Expired,
}

/// A transaction's status when it was written; stored as text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
pub enum InitialStatus {
    /// Paid in full by its vouchers.
    #[sea_orm(string_value = "succeeded")]
    Succeeded,
    /// The vouchers' money held, to be captured or released (`hold_state`).
    #[sea_orm(string_value = "authorized")]
    Authorized,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
