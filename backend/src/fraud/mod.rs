//! Fraud screening off the payment path: payments record where they came from, and the
//! worker screens each success against velocity rules, flags it (`payment.flagged`) and
//! may block a voucher.
//!
//! The payment itself never waits on a rule: a flag is a signal to the merchant and the
//! operator after the money moved, the same way card networks' risk alerts arrive. The
//! rules and their thresholds are [`FraudArgs`] (README, "Fraud screening").
pub mod rules;

use std::{future::Future, time::Duration};

use hmac::{Hmac, Mac};
use sea_orm::DatabaseConnection;
use sha2::Sha256;
use superpayment_core::Mode;
use time::OffsetDateTime;

use crate::{
    auth::Caller,
    secret::Secret,
    store::{
        self,
        entities::event::EventKind,
        payment_write::AttemptSource,
        risk::{AttemptOutcome, NewAttempt, Source, Unscreened},
    },
    webhooks::bell::OutboxBell,
};
use rules::{Facts, Rules};

/// Successes screened per claim.
const BATCH: u64 = 100;
/// How often old attempts are deleted.
const PURGE_EVERY: Duration = Duration::from_secs(3600);

/// The screening rules and the screener's pace (`FRAUD_*`); 0 turns a rule off.
#[derive(clap::Args, Clone, Debug)]
pub struct FraudArgs {
    /// `on` records every payment attempt's source and screens successes in the worker;
    /// `off` does neither.
    #[arg(long, env = "FRAUD_SCREENING", default_value = "on", value_parser = ["on", "off"])]
    pub fraud_screening: String,
    /// Flag a payment whose voucher paid this many distinct merchants within the window.
    #[arg(long, env = "FRAUD_VOUCHER_MERCHANTS", default_value_t = 3)]
    pub fraud_voucher_merchants: u32,
    #[arg(long, env = "FRAUD_VOUCHER_MERCHANTS_WINDOW", default_value = "10m", value_parser = humantime::parse_duration)]
    pub fraud_voucher_merchants_window: Duration,
    /// Block such a voucher as well (`on`/`off`), so its next payment is declined.
    #[arg(long, env = "FRAUD_BLOCK_SPREAD_VOUCHERS", default_value = "on", value_parser = ["on", "off"])]
    pub fraud_block_spread_vouchers: String,
    /// Flag a payment preceded by this many declines from its client address.
    #[arg(long, env = "FRAUD_DECLINES_PER_CLIENT", default_value_t = 10)]
    pub fraud_declines_per_client: u32,
    /// Flag a payment preceded by this many declines with its API key.
    #[arg(long, env = "FRAUD_DECLINES_PER_KEY", default_value_t = 100)]
    pub fraud_declines_per_key: u32,
    #[arg(long, env = "FRAUD_DECLINES_WINDOW", default_value = "15m", value_parser = humantime::parse_duration)]
    pub fraud_declines_window: Duration,
    /// Flag the client's payment when this many of its payments within the window each
    /// left a voucher with at most FRAUD_NEAR_BALANCE_PERCENT % of its balance.
    #[arg(long, env = "FRAUD_NEAR_BALANCE_PAYMENTS", default_value_t = 3)]
    pub fraud_near_balance_payments: u32,
    #[arg(long, env = "FRAUD_NEAR_BALANCE_PERCENT", default_value_t = 5)]
    pub fraud_near_balance_percent: u32,
    #[arg(long, env = "FRAUD_NEAR_BALANCE_WINDOW", default_value = "1h", value_parser = humantime::parse_duration)]
    pub fraud_near_balance_window: Duration,
    /// How often the worker looks for payments to screen.
    #[arg(long, env = "FRAUD_SCREEN_INTERVAL", default_value = "1s", value_parser = humantime::parse_duration)]
    pub fraud_screen_interval: Duration,
}

impl FraudArgs {
    pub fn enabled(&self) -> bool {
        self.fraud_screening == "on"
    }

    pub fn rules(&self) -> Rules {
        Rules {
            spread_merchants: self.fraud_voucher_merchants,
            spread_window: self.fraud_voucher_merchants_window,
            spread_blocks_voucher: self.fraud_block_spread_vouchers == "on",
            declines_per_client: self.fraud_declines_per_client,
            declines_per_key: self.fraud_declines_per_key,
            decline_window: self.fraud_declines_window,
            near_balance_payments: self.fraud_near_balance_payments,
            near_balance_percent: self.fraud_near_balance_percent,
            near_balance_window: self.fraud_near_balance_window,
        }
    }
}

/// Writes each payment attempt's source for the screener (in the serving process).
#[derive(Clone)]
pub struct AttemptLog {
    /// Keys the client-address hashes: an HMAC already keyed with a key derived from the
    /// pepper (never the pepper itself), cloned for each hash instead of hashing the key
    /// into a new one every time.
    client_mac: Secret<Hmac<Sha256>>,
}

impl AttemptLog {
    pub fn new(pepper: &Secret<String>) -> Self {
        let mut mac = Hmac::<Sha256>::new_from_slice(pepper.expose().as_bytes())
            .expect("HMAC accepts keys of any length");
        mac.update(b"superpayment fraud client address v1");
        let client_key = mac.finalize().into_bytes();
        Self {
            client_mac: Secret::new(
                Hmac::<Sha256>::new_from_slice(&client_key)
                    .expect("HMAC accepts keys of any length"),
            ),
        }
    }

    /// The client address as the rules compare it: a keyed hash, so the table holds no
    /// address and the hash cannot be reversed by trying the address space.
    fn client_ref(&self, client: &str) -> String {
        let mut mac = self.client_mac.expose().clone();
        mac.update(client.as_bytes());
        crate::crypto::to_hex(&mac.finalize().into_bytes()[..16])
    }

    /// Where a payment comes from, written with a successful payment in its own
    /// transaction ([`crate::store::payment_write::PaymentWrite::attempt`]).
    pub fn source(&self, caller: &Caller, client: &str) -> AttemptSource {
        AttemptSource {
            api_key_id: caller.key_id.clone(),
            client_ref: self.client_ref(client),
        }
    }

    /// Records a declined attempt (a success's row is written with the payment). It runs
    /// after the payment's own transaction and never changes the payment's answer: a
    /// failure is logged and the decline goes uncounted.
    pub async fn record_decline(
        &self,
        db: &DatabaseConnection,
        caller: &Caller,
        source: &AttemptSource,
        reason: &str,
    ) {
        let attempt = NewAttempt {
            merchant_id: &caller.merchant_id,
            mode: caller.mode_str(),
            api_key_id: &source.api_key_id,
            client_ref: &source.client_ref,
            outcome: AttemptOutcome::Declined,
            reason: Some(reason),
            transaction_id: None,
            created_at: OffsetDateTime::now_utc(),
        };
        if let Err(e) = store::risk::insert_attempt(db, &attempt).await {
            tracing::warn!(error = %e, "recording the payment attempt for fraud screening failed");
        }
    }
}

/// The worker's screener; any number may run against one database.
pub struct Screener {
    db: DatabaseConnection,
    rules: Rules,
    interval: Duration,
    /// Rung when a batch committed `payment.flagged` events.
    bell: OutboxBell,
}

impl Screener {
    pub fn new(db: DatabaseConnection, args: &FraudArgs, bell: OutboxBell) -> Self {
        Self {
            db,
            rules: args.rules(),
            interval: args.fraud_screen_interval,
            bell,
        }
    }

    /// Screens until `shutdown` completes; a batch in progress is finished first (it is
    /// one short database transaction).
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        tracing::info!("fraud screener started");
        tokio::pin!(shutdown);
        let mut purged_at = tokio::time::Instant::now();
        loop {
            // Each step waits on the database, which may be unreachable: shutdown does not
            // wait behind it (a step cut short is rolled back and screened again later).
            if purged_at.elapsed() >= PURGE_EVERY {
                purged_at = tokio::time::Instant::now();
                tokio::select! {
                    _ = self.purge() => {},
                    _ = &mut shutdown => break,
                }
            }
            let screened = tokio::select! {
                screened = self.screen_batch() => screened,
                _ = &mut shutdown => break,
            };
            let screened = match screened {
                Ok(n) => n,
                Err(e) => {
                    tracing::warn!(error = %e, "fraud screening failed; retrying");
                    0
                }
            };
            if screened as u64 == BATCH {
                continue;
            }
            tokio::select! {
                _ = tokio::time::sleep(self.interval) => {},
                _ = &mut shutdown => break,
            }
        }
        tracing::info!("fraud screener stopped");
    }

    /// Deletes attempts older than every rule's window (plus an hour of backlog).
    async fn purge(&self) {
        let r = &self.rules;
        let longest = r
            .spread_window
            .max(r.decline_window)
            .max(r.near_balance_window);
        let before = OffsetDateTime::now_utc() - longest - PURGE_EVERY;
        match store::risk::purge(&self.db, before).await {
            Ok(n) if n > 0 => tracing::info!(purged = n, "old payment attempts removed"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "purging payment attempts failed"),
        }
    }

    /// Screens up to one batch of successes in one transaction: flags, events and blocks
    /// are committed together with the rows' screened mark, so each payment is screened
    /// exactly once.
    pub async fn screen_batch(&self) -> Result<usize, sea_orm::DbErr> {
        let (tx, claimed) = store::risk::claim(&self.db, BATCH).await?;
        let now = OffsetDateTime::now_utc();
        let mut broken = Vec::new();
        for payment in &claimed {
            let facts = self.facts(&tx, payment).await?;
            let found = rules::evaluate(&self.rules, &facts);
            if !found.is_empty() {
                self.flag(&tx, payment, &found, now).await?;
                broken.extend(found.iter().map(|f| f.rule.as_str()));
            }
        }
        let ids: Vec<i64> = claimed.iter().map(|c| c.id).collect();
        store::risk::mark_screened(&tx, &ids, now).await?;
        tx.commit().await?;
        if !broken.is_empty() {
            self.bell.ring();
        }
        for rule in broken {
            crate::monitoring::fraud_flagged(rule);
        }
        Ok(claimed.len())
    }

    async fn facts(
        &self,
        db: &impl sea_orm::ConnectionTrait,
        p: &Unscreened,
    ) -> Result<Facts, sea_orm::DbErr> {
        let at = p.created_at;
        let r = &self.rules;
        let mut facts = Facts::default();
        if r.spread_merchants > 0 {
            facts.vouchers =
                store::risk::voucher_spread(db, &p.transaction_id, at - r.spread_window).await?;
        }
        let since = at - r.decline_window;
        if r.declines_per_client > 0 {
            facts.declines_from_client =
                store::risk::declines(db, &p.mode, Source::Client(&p.client_ref), since, at)
                    .await?;
        }
        if r.declines_per_key > 0 {
            facts.declines_from_key =
                store::risk::declines(db, &p.mode, Source::Key(&p.api_key_id), since, at).await?;
        }
        if r.near_balance_payments > 0 {
            facts.client_redemptions = store::risk::client_redemptions(
                db,
                &p.mode,
                &p.client_ref,
                at - r.near_balance_window,
                // A success's attempt row carries its transaction's time: up to this
                // payment, and not the client's later ones when screening runs behind.
                p.attempt_at,
            )
            .await?;
        }
        Ok(facts)
    }

    async fn flag(
        &self,
        tx: &sea_orm::DatabaseTransaction,
        p: &Unscreened,
        found: &[rules::Finding],
        now: OffsetDateTime,
    ) -> Result<(), sea_orm::DbErr> {
        let mut blocked = Vec::new();
        for f in found {
            store::risk::insert_flag(tx, p, f.rule.as_str(), &f.detail, now).await?;
            for (voucher_id, last4) in &f.block {
                if store::vouchers::block_active(tx, *voucher_id, now).await? {
                    crate::lifecycle::record_system_block(
                        tx,
                        *voucher_id,
                        &format!("fraud:{}", f.rule.as_str()),
                        now,
                    )
                    .await?;
                    blocked.push(last4.clone());
                }
            }
        }
        let mode: Mode = p
            .mode
            .parse()
            .map_err(|_| sea_orm::DbErr::Custom(format!("unknown mode {}", p.mode)))?;
        tracing::warn!(
            transaction_id = %p.transaction_id,
            merchant_id = %p.merchant_id,
            rules = %found.iter().map(|f| f.rule.as_str()).collect::<Vec<_>>().join(","),
            vouchers_blocked = blocked.len(),
            "payment flagged"
        );
        crate::webhooks::events::record(
            tx,
            &p.merchant_id,
            mode,
            EventKind::PaymentFlagged,
            Some(&p.transaction_id),
            serde_json::json!({
                "transaction_id": p.transaction_id,
                "order_id": p.order_id,
                "rules": found
                    .iter()
                    .map(|f| serde_json::json!({"rule": f.rule.as_str(), "detail": f.detail}))
                    .collect::<Vec<_>>(),
                "vouchers_blocked": blocked
                    .iter()
                    .map(|last4| serde_json::json!({"last4": last4}))
                    .collect::<Vec<_>>(),
            }),
            now,
        )
        .await
        .map_err(|e| sea_orm::DbErr::Custom(format!("{e:#}")))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_ref_is_the_hmac_of_the_address_under_the_derived_key() {
        // Stored refs are compared across restarts and versions: the prepared MAC must give
        // what keying a new one with the derived key gives.
        let pepper = Secret::new("pepper-0123456789-0123456789".to_owned());
        let mut derive = Hmac::<Sha256>::new_from_slice(pepper.expose().as_bytes()).unwrap();
        derive.update(b"superpayment fraud client address v1");
        let key = derive.finalize().into_bytes();
        let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
        mac.update(b"203.0.113.7");
        let expected = hex::encode(&mac.finalize().into_bytes()[..16]);
        let log = AttemptLog::new(&pepper);
        assert_eq!(log.client_ref("203.0.113.7"), expected);
        assert_eq!(
            log.client_ref("203.0.113.7"),
            expected,
            "the prepared MAC is reused"
        );
        assert_ne!(log.client_ref("203.0.113.8"), expected);
        assert_eq!(log.client_ref("203.0.113.7").len(), 32);
    }
}
