//! One line of a merchant's activity log: who did what, when.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "activity_log")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub merchant_id: String,
    /// `test` or `live`; None for what belongs to no mode (logins, passwords).
    pub mode: Option<String>,
    /// `usr_...` (a back-office user) or `key_...` (an API key).
    pub actor: String,
    pub action: String,
    /// The object acted on (a transaction, a key, an event...).
    pub target: Option<String>,
    /// A short human-readable detail (an amount, a new key's id); never a secret.
    pub detail: Option<String>,
    pub created_at: TimeDateTimeWithTimeZone,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
