//! A merchant's webhook endpoint for one mode, with its signing secrets encrypted at rest.
use sea_orm::entity::prelude::*;

use super::text::ModeColumn;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "webhook_endpoints")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub merchant_id: String,
    pub mode: ModeColumn,
    pub url: String,
    pub secret_ciphertext: String,
    pub previous_secret_ciphertext: Option<String>,
    pub previous_secret_expires_at: Option<TimeDateTimeWithTimeZone>,
    pub status: EndpointStatus,
    pub disabled_reason: Option<String>,
    pub created_at: TimeDateTimeWithTimeZone,
    pub updated_at: TimeDateTimeWithTimeZone,
}

/// Whether events are sent to an endpoint; stored as text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
pub enum EndpointStatus {
    /// Events are delivered.
    #[sea_orm(string_value = "enabled")]
    Enabled,
    /// Nothing is sent (see `disabled_reason`); setting the URL again enables it.
    #[sea_orm(string_value = "disabled")]
    Disabled,
}

impl EndpointStatus {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Enabled => "enabled",
            Self::Disabled => "disabled",
        }
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
