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

use crate::{secret::Secret, store, webhooks::secrets::SecretCipher};

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
    /// The merchant's team: its notification address (`merchants.notify_email`, if set)
    /// and every enabled owner and admin, each their own message, an address once.
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
/// Fields are stored in the database as they are, so a variant never carries a secret in
/// clear: a link that opens an account is a [`SealedLink`].
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
    /// Someone is invited to a merchant's back-office team.
    Invitation {
        merchant_name: String,
        /// The inviting user's email.
        inviter: String,
        role: String,
        /// RFC 3339.
        expires_at: String,
        /// The invitation's id, which the sealed link is bound to.
        invitation_id: String,
        link: SealedLink,
    },
    /// A user asked to reset a forgotten password.
    PasswordReset {
        merchant_name: String,
        /// RFC 3339.
        expires_at: String,
        /// The reset's id, which the sealed link is bound to.
        reset_id: String,
        link: SealedLink,
    },
    /// A user's password was changed (by a reset or from the account page).
    PasswordChanged {
        merchant_name: String,
        /// RFC 3339.
        changed_at: String,
    },
}

/// A link that opens an account (it carries a single-use token), sealed under
/// ENCRYPTION_KEY and bound to the row it belongs to: the outbox holds it only in this
/// form, and the sender opens it when it renders the message.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SealedLink(String);

impl std::fmt::Debug for SealedLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealedLink(..)")
    }
}

/// Associated data of a sealed link: the kind of email and the row (invitation or reset).
fn link_aad(kind: &str, row_id: &str) -> Vec<u8> {
    [
        b"superpayment/emails.params.link\0".as_slice(),
        kind.as_bytes(),
        b"\0",
        row_id.as_bytes(),
    ]
    .concat()
}

impl SealedLink {
    /// Seals `link` for an email of `kind` (an [`EmailKind::name`]) about `row_id`.
    pub fn seal(
        cipher: &SecretCipher,
        kind: &str,
        row_id: &str,
        link: &Secret<String>,
    ) -> anyhow::Result<Self> {
        Ok(Self(
            cipher.seal_text_bound(link.expose(), &link_aad(kind, row_id))?,
        ))
    }

    fn open(&self, cipher: &SecretCipher, kind: &str, row_id: &str) -> anyhow::Result<String> {
        cipher
            .open_text_bound(&self.0, &link_aad(kind, row_id))
            .map_err(|_| anyhow::anyhow!("the email's link does not open (wrong ENCRYPTION_KEY?)"))
    }
}

impl EmailKind {
    /// The stored name, which is also the templates' name.
    pub fn name(&self) -> &'static str {
        match self {
            EmailKind::ApiKeyCreated { .. } => "api_key_created",
            EmailKind::WebhookEndpointDisabled { .. } => "webhook_endpoint_disabled",
            EmailKind::Invitation { .. } => "invitation",
            EmailKind::PasswordReset { .. } => "password_reset",
            EmailKind::PasswordChanged { .. } => "password_changed",
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
            EmailKind::Invitation { merchant_name, .. } => {
                format!("You are invited to the SuperPayment team of {merchant_name}")
            }
            EmailKind::PasswordReset { .. } => "Reset your SuperPayment password".to_owned(),
            EmailKind::PasswordChanged { .. } => {
                "Your SuperPayment password was changed".to_owned()
            }
        }
    }

    /// The parameters the templates see: the stored ones, with a sealed link opened.
    pub fn template_params(&self, cipher: &SecretCipher) -> anyhow::Result<serde_json::Value> {
        let (name, mut params) = self.split();
        let sealed = match self {
            EmailKind::Invitation {
                invitation_id: id,
                link,
                ..
            }
            | EmailKind::PasswordReset {
                reset_id: id, link, ..
            } => Some((id, link)),
            _ => None,
        };
        if let Some((id, link)) = sealed {
            params["link"] = serde_json::Value::String(link.open(cipher, &name, id)?);
        }
        Ok(params)
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

/// Queues `kind` for `to` inside `conn` (the transaction of the fact it tells about), one
/// message per address. Returns the emails' ids: none when a merchant has neither a
/// notification address nor an enabled owner or admin (that is logged).
#[tracing::instrument(skip_all, fields(kind = kind.name()))]
pub async fn enqueue(
    conn: &impl ConnectionTrait,
    to: Recipient<'_>,
    kind: EmailKind,
) -> Result<Vec<i64>, DbErr> {
    let (merchant_id, addresses) = match to {
        Recipient::Merchant(merchant_id) => {
            (Some(merchant_id), team_addresses(conn, merchant_id).await?)
        }
        Recipient::Address {
            merchant_id,
            address,
        } => (merchant_id, vec![address.as_str().to_owned()]),
    };
    if addresses.is_empty() {
        tracing::info!(
            merchant_id,
            "no notification address, owner or admin: email not queued"
        );
    }
    let (name, params) = kind.split();
    let now = OffsetDateTime::now_utc();
    let mut ids = Vec::with_capacity(addresses.len());
    for address in addresses {
        let id =
            store::emails::insert(conn, merchant_id, &name, &address, params.clone(), now).await?;
        tracing::info!(email_id = id, merchant_id, "email queued");
        ids.push(id);
    }
    Ok(ids)
}

/// Where a merchant's notifications go: the notification address first, then every
/// enabled owner and admin; an address once, whatever its case.
async fn team_addresses(
    conn: &impl ConnectionTrait,
    merchant_id: &str,
) -> Result<Vec<String>, DbErr> {
    use store::entities::dashboard_user::Role;
    let notify = store::emails::notify_email_of(conn, merchant_id).await?;
    let team =
        store::accounts::addresses_of(conn, merchant_id, &[Role::Owner, Role::Admin]).await?;
    let mut out: Vec<String> = Vec::new();
    for address in notify.into_iter().chain(team) {
        if !out.iter().any(|a| a.eq_ignore_ascii_case(&address)) {
            out.push(address);
        }
    }
    Ok(out)
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
