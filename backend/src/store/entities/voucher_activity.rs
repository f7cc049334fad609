//! One lifecycle operation on a voucher (status change, adjustment, load, clear).
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "voucher_activities")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub voucher_id: i64,
    /// `activate`, `deactivate`, `block`, `unblock`, `adjust_increment`,
    /// `adjust_decrement`, `load`, `clear_balance`.
    pub kind: String,
    /// What the balance moved by, signed (0 for a status change).
    pub amount_minor: i64,
    pub balance_after_minor: i64,
    pub reason: Option<String>,
    /// `admin`, `api_key` or `system`.
    pub actor_kind: String,
    /// The API key id for `api_key`, the rule for `system`.
    pub actor_id: Option<String>,
    /// The ledger journal of the money moved, if any.
    pub journal_id: Option<i64>,
    pub created_at: TimeDateTimeWithTimeZone,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
