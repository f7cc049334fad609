//! An outbox event, written in the same database transaction as the change it announces.
use sea_orm::entity::prelude::*;

use super::text::ModeColumn;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "events")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub merchant_id: String,
    pub mode: ModeColumn,
    pub kind: EventKind,
    pub transaction_id: Option<String>,
    pub payload: Json,
    pub created_at: TimeDateTimeWithTimeZone,
}

/// What an event announces; stored as text, sent as the payload's `type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
pub enum EventKind {
    /// A payment was made.
    #[sea_orm(string_value = "payment.succeeded")]
    PaymentSucceeded,
    /// Part or all of a payment was refunded.
    #[sea_orm(string_value = "payment.refunded")]
    PaymentRefunded,
    /// The fraud screener found a payment breaking a velocity rule.
    #[sea_orm(string_value = "payment.flagged")]
    PaymentFlagged,
    /// Vouchers' money held for a payment to be captured later.
    #[sea_orm(string_value = "payment.authorized")]
    PaymentAuthorized,
    /// A hold captured (in full or in part; the rest went back to the vouchers).
    #[sea_orm(string_value = "payment.captured")]
    PaymentCaptured,
    /// A hold released by the merchant.
    #[sea_orm(string_value = "payment.canceled")]
    PaymentCanceled,
    /// A hold released because its time ran out.
    #[sea_orm(string_value = "payment.expired")]
    PaymentExpired,
    /// Sent on request to check an endpoint.
    #[sea_orm(string_value = "webhook.test")]
    WebhookTest,
}

impl EventKind {
    /// The wire name (`type` in the payload).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PaymentSucceeded => "payment.succeeded",
            Self::PaymentRefunded => "payment.refunded",
            Self::PaymentFlagged => "payment.flagged",
            Self::PaymentAuthorized => "payment.authorized",
            Self::PaymentCaptured => "payment.captured",
            Self::PaymentCanceled => "payment.canceled",
            Self::PaymentExpired => "payment.expired",
            Self::WebhookTest => "webhook.test",
        }
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
