//! An invitation to a merchant's back-office team, stored by the HMAC of its link's token.
use sea_orm::entity::prelude::*;

use super::dashboard_user::Role;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "invitations")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub merchant_id: String,
    /// Lower-cased, like a user's.
    pub email: String,
    /// The role the invited person gets on accepting.
    pub role: Role,
    /// The inviting user's id.
    pub invited_by: String,
    /// Hex HMAC-SHA256 (pepper) of the link's token; the token is never stored.
    pub token_hmac: String,
    pub created_at: TimeDateTimeWithTimeZone,
    pub expires_at: TimeDateTimeWithTimeZone,
    pub accepted_at: Option<TimeDateTimeWithTimeZone>,
    pub accepted_user_id: Option<String>,
    pub revoked_at: Option<TimeDateTimeWithTimeZone>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
