//! Notification emails (design §9): queued in the `emails` outbox inside the transaction of
//! the fact they tell about, rendered from template files and sent over SMTP by the worker,
//! never from a request.
//!
//! A caller that changes something a merchant must hear about calls [`enqueue`] with its
//! own transaction, so the email exists exactly when the change does. The worker
//! ([`sender::Sender`], in `superpayment worker` and in `serve`'s embedded worker) claims due
//! emails with a lease, sends them with lettre, records every attempt and retries on
//! [`crate::webhooks::schedule::RetrySchedule`]. Without SMTP_URL nothing is sent and the
//! emails wait in the outbox.
//!
//! # Layout
//! - [`config`]: SMTP_URL, SMTP_FROM and the retry flags.
//! - [`render`]: the templates under `backend/templates/email/`.
//! - [`sender`]: the sending loop.
pub mod config;
pub mod render;
pub mod sender;

use sea_orm::{ConnectionTrait, DbErr};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

pub use config::EmailArgs;

use crate::store;

/// Whether this process sends the email outbox, as `/readyz` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sending {
    /// Its worker sends through SMTP_URL.
    Configured,
    /// Its worker runs without SMTP_URL: emails stay queued.
    NotConfigured,
    /// It runs no worker (`SERVE_WORKER=off`); `superpayment worker` processes send.
    WorkerOff,
}

impl Sending {
    /// What `/readyz` shows.
    pub fn as_str(self) -> &'static str {
        match self {
            Sending::Configured => "configured",
            Sending::NotConfigured => "not_configured",
            Sending::WorkerOff => "worker_off",
        }
    }
}

/// An email address, parsed once at the boundary (SMTP rules, via lettre).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailAddress(lettre::Address);

impl EmailAddress {
    /// Parses an address such as `ops@shop.example` (no display name).
    pub fn parse(s: &str) -> Result<Self, InvalidEmail> {
        let s = s.trim();
        if s.len() > 254 {
            return Err(InvalidEmail);
        }
        s.parse::<lettre::Address>()
            .map(EmailAddress)
            .map_err(|_| InvalidEmail)
    }

    /// The address as text.
    pub fn as_str(&self) -> &str {
        self.0.as_ref()
    }
}

/// The text is not an email address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a valid email address")]
pub struct InvalidEmail;

/// Who an email goes to.
#[derive(Debug, Clone, Copy)]
pub enum Recipient<'a> {
    /// The merchant's notification address (`merchants.notify_email`); nothing is queued
    /// when it has none.
    Merchant(&'a str),
    /// One explicit address (an invited team member, a user resetting a password), on
    /// behalf of a merchant when there is one.
    Address {
        merchant_id: Option<&'a str>,
        address: &'a EmailAddress,
    },
}

/// One API key as an email names it: never the key, only what the merchant's key list shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeySummary {
    pub id: String,
    /// `publishable` or `secret`.
    pub kind: String,
    pub prefix: String,
    pub last4: String,
}

/// Every message the platform sends; the variant's fields are what its templates show.
/// Fields are stored in the database as they are, so a variant never carries a secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "params", rename_all = "snake_case")]
pub enum EmailKind {
    /// API keys were created (by the merchant, by a roll, or by an operator).
    ApiKeyCreated {
        merchant_name: String,
        /// `test` or `live`.
        mode: String,
        keys: Vec<KeySummary>,
    },
    /// The worker disabled a webhook endpoint; nothing more is sent to it until its URL
    /// is set again.
    WebhookEndpointDisabled {
        merchant_name: String,
        mode: String,
        url: String,
        /// Why, in words for the merchant.
        reason: String,
    },
}

impl EmailKind {
    /// The stored name, which is also the templates' name.
    pub fn name(&self) -> &'static str {
        match self {
            EmailKind::ApiKeyCreated { .. } => "api_key_created",
            EmailKind::WebhookEndpointDisabled { .. } => "webhook_endpoint_disabled",
        }
    }

    /// The subject line.
    pub fn subject(&self) -> String {
        match self {
            EmailKind::ApiKeyCreated { mode, .. } => {
                format!("A new {mode} API key was created")
            }
            EmailKind::WebhookEndpointDisabled { mode, .. } => {
                format!("Your {mode} webhook endpoint was disabled")
            }
        }
    }

    fn split(&self) -> (String, serde_json::Value) {
        let mut v = serde_json::to_value(self).expect("email kinds serialise");
        let params = v
            .get_mut("params")
            .map(serde_json::Value::take)
            .unwrap_or_default();
        (self.name().to_owned(), params)
    }

    /// The kind back from its stored name and params.
    pub fn from_stored(kind: &str, params: &serde_json::Value) -> Result<Self, serde_json::Error> {
        serde_json::from_value(serde_json::json!({"kind": kind, "params": params}))
    }
}

/// Queues `kind` for `to` inside `conn` (the transaction of the fact it tells about).
/// Returns the email's id, or None when a merchant recipient has no notification address
/// (then nothing is queued, and that is logged).
#[tracing::instrument(skip_all, fields(kind = kind.name()))]
pub async fn enqueue(
    conn: &impl ConnectionTrait,
    to: Recipient<'_>,
    kind: EmailKind,
) -> Result<Option<i64>, DbErr> {
    let (merchant_id, address) = match to {
        Recipient::Merchant(merchant_id) => {
            match store::emails::notify_email_of(conn, merchant_id).await? {
                Some(address) => (Some(merchant_id), address),
                None => {
                    tracing::info!(merchant_id, "no notification address: email not queued");
                    return Ok(None);
                }
            }
        }
        Recipient::Address {
            merchant_id,
            address,
        } => (merchant_id, address.as_str().to_owned()),
    };
    let (name, params) = kind.split();
    let id = store::emails::insert(
        conn,
        merchant_id,
        &name,
        &address,
        params,
        OffsetDateTime::now_utc(),
    )
    .await?;
    tracing::info!(email_id = id, merchant_id, "email queued");
    Ok(Some(id))
}

/// The merchant's name for a message ("" if it is gone, which a caller inside the
/// merchant's own transaction never sees).
pub async fn merchant_name(
    conn: &impl ConnectionTrait,
    merchant_id: &str,
) -> Result<String, DbErr> {
    Ok(store::merchants::find_merchant(conn, merchant_id)
        .await?
        .map(|m| m.name)
        .unwrap_or_default())
}

/// Sets (or clears, with None) where a merchant's notification emails go; false when
/// there is no such merchant.
pub async fn set_notify_email(
    conn: &impl ConnectionTrait,
    merchant_id: &str,
    address: Option<&EmailAddress>,
) -> Result<bool, DbErr> {
    let changed =
        store::merchants::set_notify_email(conn, merchant_id, address.map(EmailAddress::as_str))
            .await?;
    if changed {
        tracing::info!(
            merchant_id,
            set = address.is_some(),
            "notification address changed"
        );
    }
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kind_reads_back_from_its_stored_form() {
        let kind = EmailKind::WebhookEndpointDisabled {
            merchant_name: "Shop".into(),
            mode: "test".into(),
            url: "https://shop.example/hooks".into(),
            reason: "gone".into(),
        };
        let (name, params) = kind.split();
        assert_eq!(name, "webhook_endpoint_disabled");
        assert_eq!(params["url"], "https://shop.example/hooks");
        assert_eq!(EmailKind::from_stored(&name, &params).unwrap(), kind);
        assert!(EmailKind::from_stored("no_such_kind", &params).is_err());
    }

    #[test]
    fn addresses_are_parsed_once() {
        assert_eq!(
            EmailAddress::parse(" ops@shop.example ").unwrap().as_str(),
            "ops@shop.example"
        );
        for bad in [
            "",
            "ops",
            "ops@",
            "Ops <ops@shop.example>",
            "a@b\r\nBcc: x@y",
        ] {
            assert!(EmailAddress::parse(bad).is_err(), "{bad:?}");
        }
    }
}
