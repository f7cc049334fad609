//! Signed webhooks from the outbox (design §5): endpoints, secrets, events, the worker.
//!
//! Events are written to the `events` table inside the database transaction of the change
//! they announce (payments, refunds). The worker relays each new event into a delivery to
//! the merchant's endpoint of that mode, claims due deliveries with `FOR UPDATE SKIP
//! LOCKED` (PostgreSQL) so any number of workers can run, POSTs them signed per Standard
//! Webhooks, records every attempt and retries on [`schedule::RetrySchedule`].
//!
//! # Layout
//! - [`bell`]: waking the workers after an event commits.
//! - [`config`]: flags shared by `serve` and `worker`.
//! - [`secrets`]: `whsec_` secrets and their encryption at rest.
//! - [`signature`]: the `webhook-signature` header.
//! - [`destination`]: URL rules and the SSRF address check.
//! - [`reencrypt`]: moving sealed values to a new ENCRYPTION_KEY.
//! - [`schedule`]: retry delays with jitter.
//! - [`endpoints`]: set, read, rotate, test (the merchant API's rules).
//! - [`events`]: writing, listing and redelivering events.
//! - [`worker`]: the delivery loop.
pub mod bell;
pub mod config;
pub mod destination;
pub mod endpoints;
pub mod events;
pub mod reencrypt;
pub mod schedule;
pub mod secrets;
pub mod signature;
pub mod worker;

use destination::DestinationError;

/// Why a webhook or event operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// The endpoint URL is refused (`DestinationError::code` says why).
    #[error("webhook URL refused: {0}")]
    InvalidUrl(DestinationError),
    /// The secret rotation's overlap is longer than [`endpoints::MAX_ROTATION_OVERLAP`].
    #[error("overlap too long")]
    OverlapTooLong,
    /// The endpoint is disabled (set its URL again to enable it).
    #[error("webhook endpoint disabled")]
    EndpointDisabled,
    /// There is no enabled endpoint to deliver to.
    #[error("no enabled webhook endpoint")]
    NoEnabledEndpoint,
    /// The merchant has no endpoint in this mode.
    #[error("webhook endpoint not found")]
    EndpointNotFound,
    /// No such event for this merchant and mode.
    #[error("event not found")]
    EventNotFound,
    /// Anything unexpected.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

crate::internal_on_db_error!(WebhookError);

impl WebhookError {
    /// Each way a URL is refused, for the documentation.
    pub fn url_examples() -> impl Iterator<Item = WebhookError> {
        [
            DestinationError::Invalid,
            DestinationError::HttpsRequired,
            DestinationError::Credentials,
            DestinationError::Unresolvable,
            DestinationError::AddressNotAllowed,
        ]
        .into_iter()
        .map(WebhookError::InvalidUrl)
    }
}

pub use config::{WebhookArgs, WorkerArgs};
use secrets::SecretCipher;

/// What request handlers and the worker share about webhooks.
#[derive(Clone)]
pub struct WebhookSettings {
    /// Encrypts endpoint secrets (and sealed idempotent responses) at rest.
    pub cipher: SecretCipher,
    /// Whether test-mode endpoints may resolve to loopback.
    pub allow_test_loopback: bool,
    /// Rung after each commit that wrote an event.
    pub bell: bell::OutboxBell,
}

impl WebhookSettings {
    /// Settings from flags and the configured cipher ([`crate::config::DbArgs::resolved_cipher`]).
    pub fn from_args(
        args: &WebhookArgs,
        cipher: SecretCipher,
        embedded: bool,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            cipher,
            allow_test_loopback: args.test_loopback(embedded)?,
            bell: bell::OutboxBell::default(),
        })
    }

    /// Settings for rendering the spec (no secrets needed).
    pub fn for_spec() -> Self {
        Self {
            cipher: SecretCipher::new([0; 32]),
            allow_test_loopback: false,
            bell: bell::OutboxBell::default(),
        }
    }
}
