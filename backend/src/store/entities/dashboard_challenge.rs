//! The state between a correct password and its second factor: short-lived, stored by the
//! SHA-256 of the token in the browser's cookie, opening no page but the second step.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "dashboard_login_challenges")]
pub struct Model {
    /// Hex SHA-256 of the token; the token lives only in the browser's cookie.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub user_id: String,
    pub merchant_id: String,
    pub created_at: TimeDateTimeWithTimeZone,
    pub expires_at: TimeDateTimeWithTimeZone,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
