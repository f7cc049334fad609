//! An API key, stored as its SHA-256 hash with a displayable prefix and last 4 symbols.
use sea_orm::entity::prelude::*;

use super::text::ModeColumn;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "api_keys")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub merchant_id: String,
    pub kind: String,
    pub mode: ModeColumn,
    pub key_hash: String,
    pub prefix: String,
    pub last4: String,
    pub created_at: TimeDateTimeWithTimeZone,
    pub expires_at: Option<TimeDateTimeWithTimeZone>,
    pub revoked_at: Option<TimeDateTimeWithTimeZone>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::merchant::Entity",
        from = "Column::MerchantId",
        to = "super::merchant::Column::Id"
    )]
    Merchant,
}

impl Related<super::merchant::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Merchant.def()
    }
}

impl Model {
    /// Where the key is in its life at `now`, from its revocation and expiry.
    pub fn status(&self, now: TimeDateTimeWithTimeZone) -> KeyStatus {
        match (self.revoked_at, self.expires_at) {
            (Some(_), _) => KeyStatus::Revoked,
            (None, Some(e)) if e <= now => KeyStatus::Expired,
            (None, Some(_)) => KeyStatus::Expiring,
            (None, None) => KeyStatus::Active,
        }
    }
}

/// A key's status: not stored, derived by [`Model::status`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyStatus {
    /// Works, with no end set.
    Active,
    /// Rolled: works until `expires_at`.
    Expiring,
    /// Past `expires_at`.
    Expired,
    /// Revoked by the merchant.
    Revoked,
}

impl KeyStatus {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Expiring => "expiring",
            Self::Expired => "expired",
            Self::Revoked => "revoked",
        }
    }
}

impl ActiveModelBehavior for ActiveModel {}
