//! A merchant account.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "merchants")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub name: String,
    pub commission_bps: i32,
    /// How long a hold (`capture: false`) lasts before it is released.
    pub hold_period_seconds: i64,
    /// Overrides of the gateway's limits (NULL: the server's default; 0: off), requests
    /// per minute: payments per client address, payments per key, voucher checks per key
    /// and client address.
    pub pay_limit_per_client: Option<i32>,
    pub pay_limit_per_key: Option<i32>,
    pub check_limit: Option<i32>,
    pub api_limit_per_key: Option<i32>,
    pub status: MerchantStatus,
    /// Where the merchant's notification emails go (None: none are sent).
    pub notify_email: Option<String>,
    /// Every back-office user of the merchant must sign in with a second factor.
    pub require_two_factor: bool,
    pub created_at: TimeDateTimeWithTimeZone,
}

/// Whether a merchant's keys are accepted; stored as text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
pub enum MerchantStatus {
    /// Its keys work.
    #[sea_orm(string_value = "active")]
    Active,
    /// Set by an operator: every key is refused (403 `merchant_disabled`).
    #[sea_orm(string_value = "disabled")]
    Disabled,
}

impl MerchantStatus {
    /// The text stored and shown to operators.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Disabled => "disabled",
        }
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
