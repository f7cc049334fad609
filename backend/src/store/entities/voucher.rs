//! A voucher: only the HMAC of its code and its last 4 symbols are stored.
use sea_orm::entity::prelude::*;

use super::text::{CurrencyColumn, ModeColumn};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "vouchers")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub code_hmac: String,
    pub last4: String,
    pub mode: ModeColumn,
    pub currency: CurrencyColumn,
    pub initial_minor: i64,
    pub balance_minor: i64,
    pub status: VoucherState,
    pub expires_at: Option<TimeDateTimeWithTimeZone>,
    pub rules: Json,
    pub created_at: TimeDateTimeWithTimeZone,
    pub updated_at: TimeDateTimeWithTimeZone,
    /// The merchant the voucher was issued for (None: issued by SuperPayment); its issuer
    /// manages it through the merchant API.
    pub issuer_merchant_id: Option<String>,
    /// When it first paid (a payment or a hold): where a kind expiring N days after first
    /// use starts counting.
    pub first_used_at: Option<TimeDateTimeWithTimeZone>,
    /// The PIN (kinds with `pin_required`) as an Argon2id PHC string; never the PIN.
    pub pin_hash: Option<String>,
}

/// Where a voucher is in its life; stored as text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
pub enum VoucherState {
    /// Can pay.
    #[sea_orm(string_value = "active")]
    Active,
    /// Blocked by an operator: cannot pay, cannot be refunded onto.
    #[sea_orm(string_value = "blocked")]
    Blocked,
    /// A single-use voucher that paid once (until its payment is refunded in full).
    #[sea_orm(string_value = "used")]
    Used,
    /// Deactivated by its issuer or an operator: cannot pay until activated again.
    #[sea_orm(string_value = "inactive")]
    Inactive,
}

impl VoucherState {
    /// The text stored and shown to operators.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Blocked => "blocked",
            Self::Used => "used",
            Self::Inactive => "inactive",
        }
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
