//! The application state every handler and domain function receives ([`AppState`]).
//!
//! It sits at the bottom of the module graph: it names the domain modules' own types (the
//! caches, the coordinator, the webhook settings) and nothing of the HTTP layer, so domain
//! modules can take it without depending on `startup` (which depends on `api`).
use std::{sync::Arc, time::Duration};

use sea_orm::DatabaseConnection;

use crate::{
    coordination::{Coordinator, MemoryCoordinator},
    secret::Secret,
};

/// Everything a request handler may need; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// The primary: every write and every read that decides a write.
    pub db: DatabaseConnection,
    /// The replica (or the primary) for reads that only report; see [`AppState::read_db`].
    pub reads: Arc<crate::replica::ReadPools>,
    pub coord: Arc<Coordinator>,
    /// Keys the HMACs of voucher codes, PIN fingerprints, emailed links' tokens and
    /// recovery codes, and the PIN hashes.
    pub pepper: Secret<String>,
    /// Derives the merchants' checkout signing secrets.
    pub signing_key: Secret<String>,
    pub admin_token: Option<Secret<String>>,
    /// The voucher-guessing lockout's thresholds.
    pub lockout: crate::gateway::lockout::LockoutPolicy,
    /// Recently authenticated API keys.
    pub key_cache: Arc<crate::auth::KeyCache>,
    /// Recently read checkout settings (signature requirement, origins).
    pub settings_cache: Arc<crate::checkout::settings::SettingsCache>,
    /// Where payment attempts are recorded for fraud screening; None when it is off.
    pub fraud: Option<crate::fraud::AttemptLog>,
    /// Webhook secrets' encryption and the bell rung after an event commits.
    pub webhooks: crate::webhooks::WebhookSettings,
    /// Whether this process sends notification emails (for `/readyz`).
    pub email_sending: crate::notify::Sending,
    /// Back-office sessions and the login lockout.
    pub accounts: crate::accounts::AccountSettings,
}

impl AppState {
    /// A state with no database, enough to render the OpenAPI document.
    pub fn for_spec() -> Self {
        AppState {
            db: DatabaseConnection::Disconnected,
            reads: Arc::new(crate::replica::ReadPools::new(
                DatabaseConnection::Disconnected,
                None,
            )),
            coord: Arc::new(Coordinator::Memory(MemoryCoordinator::default())),
            pepper: Secret::new(String::new()),
            signing_key: Secret::new(String::new()),
            admin_token: None,
            lockout: crate::gateway::lockout::LockoutPolicy::off(),
            key_cache: Arc::new(crate::auth::KeyCache::new(Duration::ZERO)),
            settings_cache: Arc::new(crate::checkout::settings::SettingsCache::new(
                Duration::ZERO,
            )),
            fraud: None,
            webhooks: crate::webhooks::WebhookSettings::for_spec(),
            email_sending: crate::notify::Sending::WorkerOff,
            accounts: crate::accounts::AccountSettings::defaults(),
        }
    }
}

impl AppState {
    /// The connection for a read that only reports (lists): the replica when
    /// DATABASE_REPLICA_URL is set and it answers, else the primary; with its freshness,
    /// which list answers show in `Data-Source` and `Data-Lag`. Reads that decide money
    /// (verify, pay, refund, capture) use [`AppState::db`].
    pub async fn read_db(&self) -> crate::replica::ReadDb {
        self.reads.reader().await
    }
}
