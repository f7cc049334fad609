//! The delivery loop: relay new events, claim due deliveries, POST them signed, record;
//! beside it, the sweep that releases expired payment holds.
use std::{future::Future, sync::Arc, time::Duration};

use sea_orm::DatabaseConnection;
use time::OffsetDateTime;
use tokio::sync::{watch, Semaphore};

use super::{
    bell::OutboxBell,
    destination::{self, Destination, DestinationError},
    schedule::RetrySchedule,
    secrets::SigningSecret,
    signature::signature_header,
    WebhookArgs, WebhookSettings,
};
use crate::store::{
    self,
    entities::{
        event,
        webhook_attempt::{self, AttemptOutcome},
        webhook_delivery::{self, DeliveryStatus},
        webhook_endpoint::{self, EndpointStatus},
    },
    webhooks::DeliveryUpdate,
};

/// Characters of a response body kept with an attempt.
const EXCERPT_LEN: usize = 1024;
/// A claim lasts this many request timeouts: long enough for the attempt and its
/// recording, short enough that a crashed worker's deliveries come back soon.
const LEASE_TIMEOUTS: u32 = 2;
/// Bound on handing claims back at shutdown, after the grace.
const RELEASE_TIMEOUT: Duration = Duration::from_secs(5);

/// A webhook worker; any number may run against one database.
#[derive(Clone)]
pub struct Worker {
    db: DatabaseConnection,
    settings: WebhookSettings,
    schedule: RetrySchedule,
    timeout: Duration,
    poll: Duration,
    concurrency: usize,
    /// How long deliveries in flight may go on after shutdown is asked for.
    grace: Duration,
    /// PostgreSQL URL to LISTEN on for new events; None polls only.
    listen_url: Option<String>,
    /// Given-up deliveries in a row that disable an endpoint (0: never).
    disable_after: u64,
}

/// Releases expired holds every `poll` until `stopped` (several workers may sweep at once:
/// each hold is released by exactly one of them, see `payments::holds`).
async fn sweep_holds(
    db: DatabaseConnection,
    bell: OutboxBell,
    poll: Duration,
    mut stopped: watch::Receiver<bool>,
) {
    loop {
        match crate::payments::holds::expire_due(&db).await {
            Ok(0) => {}
            Ok(n) => {
                // Each release wrote a `payment.expired` event.
                bell.ring();
                tracing::info!(released = n, "expired holds released");
            }
            Err(e) => tracing::warn!(error = %e, "releasing expired holds failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(poll) => {},
            _ = stopped.wait_for(|s| *s) => return,
        }
    }
}

/// How one attempt ended.
enum AttemptResult {
    Response { status: u16, excerpt: String },
    Failed(String),
    Refused(DestinationError),
}

impl Worker {
    /// A worker on `db` with the given flags.
    pub fn new(
        db: DatabaseConnection,
        settings: WebhookSettings,
        args: &WebhookArgs,
        listen_url: Option<String>,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            db,
            settings,
            schedule: args.schedule()?,
            timeout: args.webhook_timeout,
            poll: args.webhook_poll_interval,
            concurrency: args.webhook_concurrency.max(1),
            grace: args.webhook_shutdown_grace,
            listen_url: listen_url.filter(|u| u.starts_with("postgres")),
            disable_after: args.webhook_disable_after_failed_deliveries,
        })
    }

    /// Runs until `shutdown` completes, then stops claiming and lets the deliveries in
    /// flight finish for up to the shutdown grace (WEBHOOK_SHUTDOWN_GRACE). Those still
    /// unfinished then are cut short and their claims released (due again at once, no
    /// attempt recorded), so another worker takes them up without waiting for the lease.
    /// A delivery cut short by a crash is retried after its lease.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        if let Some(url) = self.listen_url.clone() {
            tokio::spawn(listen(url, self.settings.clone()));
        }
        tracing::info!(
            concurrency = self.concurrency,
            attempts = self.schedule.max_attempts(),
            "webhook worker started"
        );
        let slots = Arc::new(Semaphore::new(self.concurrency));
        let (stop, stopped) = watch::channel(false);
        tokio::spawn(sweep_holds(
            self.db.clone(),
            self.settings.bell.clone(),
            self.poll,
            stopped.clone(),
        ));
        let worker = Arc::new(self);
        tokio::pin!(shutdown);
        loop {
            let first = tokio::select! {
                permit = slots.clone().acquire_owned() => permit.expect("semaphore never closed"),
                _ = &mut shutdown => break,
            };
            let mut permits = vec![first];
            while let Ok(p) = slots.clone().try_acquire_owned() {
                permits.push(p);
            }
            // A claim waits on the database, which may be unreachable (each statement then
            // waits out the pool's acquire timeout): shutdown does not wait behind it. A
            // claim under way when shutdown comes gets a short bound to finish, and what it
            // claimed is handed back at once.
            let claim = worker.claim(permits.len() as u64);
            tokio::pin!(claim);
            let (claimed, stopping) = tokio::select! {
                claimed = &mut claim => (Some(claimed), false),
                _ = &mut shutdown => (tokio::time::timeout(RELEASE_TIMEOUT, claim).await.ok(), true),
            };
            let (ids, lease) = match claimed {
                Some(Ok(claimed)) => claimed,
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "claiming webhook deliveries failed");
                    (Vec::new(), OffsetDateTime::now_utc())
                }
                None => (Vec::new(), OffsetDateTime::now_utc()),
            };
            if stopping {
                drop(permits);
                for id in ids {
                    worker.release(id, lease).await;
                }
                break;
            }
            if ids.is_empty() {
                drop(permits);
                tokio::select! {
                    _ = worker.settings.bell.rung_here() => {},
                    _ = tokio::time::sleep(worker.poll) => {},
                    _ = &mut shutdown => break,
                }
                continue;
            }
            for (id, permit) in ids.into_iter().zip(permits) {
                let worker = worker.clone();
                let mut stopped = stopped.clone();
                tokio::spawn(async move {
                    crate::monitoring::webhook_in_flight(1.0);
                    let cut_short = tokio::select! {
                        result = worker.deliver(id) => {
                            if let Err(e) = result {
                                tracing::warn!(delivery_id = id, error = %e, "webhook delivery could not be recorded; it will be retried after its lease");
                            }
                            false
                        },
                        _ = stopped.wait_for(|s| *s) => true,
                    };
                    if cut_short {
                        worker.release(id, lease).await;
                    }
                    crate::monitoring::webhook_in_flight(-1.0);
                    drop(permit);
                });
            }
        }
        tracing::info!(
            in_flight = worker.concurrency - slots.available_permits(),
            grace_ms = u64::try_from(worker.grace.as_millis()).unwrap_or(u64::MAX),
            "webhook worker stopping: no new claims; finishing deliveries in flight"
        );
        let all = u32::try_from(worker.concurrency).unwrap_or(u32::MAX);
        if tokio::time::timeout(worker.grace, slots.acquire_many(all))
            .await
            .is_err()
        {
            let _ = stop.send(true);
            // Releasing is one short update per delivery; bounded all the same.
            let _ = tokio::time::timeout(RELEASE_TIMEOUT, slots.acquire_many(all)).await;
        }
        tracing::info!("webhook worker stopped");
    }

    /// Hands a claim back at shutdown (see [`store::webhooks::release_claims`]).
    async fn release(&self, id: i64, lease: OffsetDateTime) {
        let released = tokio::time::timeout(
            RELEASE_TIMEOUT,
            store::webhooks::release_claims(&self.db, &[id], lease, OffsetDateTime::now_utc()),
        )
        .await;
        match released {
            Ok(Ok(n)) => {
                crate::monitoring::webhook_released(n);
                tracing::info!(
                    delivery_id = id,
                    released = n,
                    "webhook delivery cut short by shutdown; its claim was released"
                );
            }
            Ok(Err(e)) => {
                tracing::warn!(delivery_id = id, error = %e, "releasing a webhook claim failed; it will be retried after its lease")
            }
            Err(_) => tracing::warn!(
                delivery_id = id,
                "releasing a webhook claim timed out; it will be retried after its lease"
            ),
        }
    }

    /// Relays new events first (their deliveries come back already claimed), then claims
    /// due retries, up to `limit` in all. Returns them with the lease they were claimed
    /// until (whole seconds, so that it reads back equal from every database).
    async fn claim(&self, limit: u64) -> Result<(Vec<i64>, OffsetDateTime), sea_orm::DbErr> {
        let now = OffsetDateTime::now_utc();
        let lease = (now + self.timeout * LEASE_TIMEOUTS)
            .replace_nanosecond(0)
            .expect("0 is a valid nanosecond");
        let mut ids = store::webhooks::dispatch_events(&self.db, now, lease, limit).await?;
        let left = limit.saturating_sub(ids.len() as u64);
        if left > 0 {
            ids.extend(store::webhooks::claim_due(&self.db, now, lease, left).await?);
        }
        Ok((ids, lease))
    }

    #[tracing::instrument(skip(self), fields(event_id, merchant_id))]
    async fn deliver(&self, id: i64) -> anyhow::Result<()> {
        let Some((delivery, event, endpoint)) =
            store::webhooks::load_delivery(&self.db, id).await?
        else {
            return Ok(());
        };
        let span = tracing::Span::current();
        span.record("event_id", event.id.as_str());
        span.record("merchant_id", delivery.merchant_id.as_str());
        if delivery.status != DeliveryStatus::Pending {
            return Ok(());
        }
        if endpoint.status != EndpointStatus::Enabled {
            store::webhooks::cancel_delivery(&self.db, id).await?;
            return Ok(());
        }
        let started = OffsetDateTime::now_utc();
        let clock = std::time::Instant::now();
        let result = self.attempt(&event, &endpoint, started).await?;
        let duration_ms = i64::try_from(clock.elapsed().as_millis()).unwrap_or(i64::MAX);
        self.record(delivery, &event, &endpoint, started, duration_ms, result)
            .await
    }

    async fn attempt(
        &self,
        event: &event::Model,
        endpoint: &webhook_endpoint::Model,
        started: OffsetDateTime,
    ) -> anyhow::Result<AttemptResult> {
        let mode = endpoint.mode.0;
        let secrets = match self.secrets(endpoint, started) {
            Ok(s) => s,
            // A wrong WEBHOOK_ENCRYPTION_KEY: count it as a failed attempt, so the delivery
            // backs off and ends like any other instead of being retried every lease.
            Err(e) => {
                tracing::error!(endpoint_id = %endpoint.id, error = %e, "webhook secret unavailable");
                return Ok(AttemptResult::Failed(
                    "the endpoint's signing secret could not be read".into(),
                ));
            }
        };
        // Checked at every attempt, not only when saved: DNS may have changed since.
        let dest = match destination::resolve(
            &endpoint.url,
            mode,
            self.settings.allow_test_loopback,
        )
        .await
        {
            Ok(d) => d,
            Err(e) => return Ok(AttemptResult::Refused(e)),
        };
        let body = serde_json::to_vec(&event.payload)?;
        Ok(self
            .post(&dest, &secrets, &event.id, started.unix_timestamp(), body)
            .await)
    }

    /// The current secret, and the rotated-out one while its overlap lasts.
    fn secrets(
        &self,
        endpoint: &webhook_endpoint::Model,
        at: OffsetDateTime,
    ) -> anyhow::Result<Vec<SigningSecret>> {
        let mut secrets = vec![self
            .settings
            .cipher
            .decrypt(&endpoint.secret_ciphertext, &endpoint.id)?];
        if let (Some(previous), Some(until)) = (
            &endpoint.previous_secret_ciphertext,
            endpoint.previous_secret_expires_at,
        ) {
            if until > at {
                secrets.push(self.settings.cipher.decrypt(previous, &endpoint.id)?);
            }
        }
        Ok(secrets)
    }

    async fn post(
        &self,
        dest: &Destination,
        secrets: &[SigningSecret],
        msg_id: &str,
        timestamp: i64,
        body: Vec<u8>,
    ) -> AttemptResult {
        let client = match reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(self.timeout)
            .connect_timeout(self.timeout.min(Duration::from_secs(10)))
            .resolve_to_addrs(&dest.host, &dest.addrs)
            .user_agent(concat!("SuperPayment-Webhooks/", env!("CARGO_PKG_VERSION")))
            .build()
        {
            Ok(c) => c,
            Err(e) => return AttemptResult::Failed(format!("client: {e}")),
        };
        let signature = signature_header(secrets, msg_id, timestamp, &body);
        let sent = client
            .post(dest.url.clone())
            .header("content-type", "application/json")
            .header("webhook-id", msg_id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(body)
            .send()
            .await;
        match sent {
            Ok(mut resp) => {
                let status = resp.status().as_u16();
                let mut excerpt = Vec::new();
                while excerpt.len() < EXCERPT_LEN {
                    match resp.chunk().await {
                        Ok(Some(chunk)) => excerpt.extend_from_slice(&chunk),
                        _ => break,
                    }
                }
                excerpt.truncate(EXCERPT_LEN);
                AttemptResult::Response {
                    status,
                    excerpt: String::from_utf8_lossy(&excerpt).into_owned(),
                }
            }
            Err(e) if e.is_timeout() => {
                AttemptResult::Failed(format!("timed out after {:?}", self.timeout))
            }
            Err(e) if e.is_connect() => AttemptResult::Failed("connection failed".into()),
            Err(e) => AttemptResult::Failed(format!("request failed: {}", without_url(e))),
        }
    }

    async fn record(
        &self,
        delivery: webhook_delivery::Model,
        event: &event::Model,
        endpoint: &webhook_endpoint::Model,
        started: OffsetDateTime,
        duration_ms: i64,
        result: AttemptResult,
    ) -> anyhow::Result<()> {
        let number = delivery.attempt_count + 1;
        let (status_code, outcome, error, excerpt) = match &result {
            AttemptResult::Response { status, excerpt } => (
                Some(i32::from(*status)),
                if (200..300).contains(status) {
                    AttemptOutcome::Succeeded
                } else {
                    AttemptOutcome::Failed
                },
                None,
                Some(excerpt.clone()),
            ),
            AttemptResult::Failed(e) => (None, AttemptOutcome::Failed, Some(e.clone()), None),
            AttemptResult::Refused(e) => (None, AttemptOutcome::Refused, Some(e.to_string()), None),
        };
        let gone = matches!(result, AttemptResult::Response { status: 410, .. });
        let update = if outcome == AttemptOutcome::Succeeded {
            DeliveryUpdate {
                status: DeliveryStatus::Succeeded,
                next_attempt_at: None,
            }
        } else if gone {
            DeliveryUpdate {
                status: DeliveryStatus::Failed,
                next_attempt_at: None,
            }
        } else {
            match self
                .schedule
                .next_delay(usize::try_from(number).unwrap_or(usize::MAX))
            {
                Some(delay) => DeliveryUpdate {
                    status: DeliveryStatus::Pending,
                    next_attempt_at: Some(OffsetDateTime::now_utc() + delay),
                },
                None => DeliveryUpdate {
                    status: DeliveryStatus::Failed,
                    next_attempt_at: None,
                },
            }
        };
        tracing::info!(
            delivery_id = delivery.id,
            attempt = number,
            status_code,
            outcome = outcome.as_str(),
            next = update.status.as_str(),
            duration_ms,
            "webhook attempt"
        );
        crate::monitoring::webhook_attempt(
            outcome.as_str(),
            Duration::from_millis(u64::try_from(duration_ms).unwrap_or(0)),
        );
        let tx = store::begin(&self.db).await?;
        let recorded = store::webhooks::record_attempt(
            &tx,
            webhook_attempt::Model {
                id: 0,
                delivery_id: delivery.id,
                event_id: event.id.clone(),
                attempt_number: number,
                url: endpoint.url.clone(),
                started_at: started,
                duration_ms,
                status_code,
                outcome,
                error,
                response_excerpt: excerpt,
            },
            update.clone(),
            // 410 Gone is the receiver saying it will never want these again.
            gone.then_some((endpoint.id.as_str(), GONE)),
        )
        .await?;
        let mut disabled = recorded.disabled.then_some(GONE);
        // Given up after every retry: one too many in a row disables the endpoint, in the
        // transaction that gave the last one up.
        if recorded.moved
            && !gone
            && update.status == DeliveryStatus::Failed
            && self.disable_after > 0
            && store::webhooks::last_deliveries_failed(
                &tx,
                &endpoint.id,
                endpoint.updated_at,
                self.disable_after,
            )
            .await?
            && store::webhooks::disable_endpoint(&tx, &endpoint.id, FAILING, started).await?
        {
            disabled = Some(FAILING);
        }
        if let Some(reason) = disabled {
            notify_disabled(&tx, endpoint, reason, self.disable_after).await?;
        }
        tx.commit().await?;
        if !recorded.moved {
            tracing::warn!(
                delivery_id = delivery.id,
                attempt = number,
                "another worker recorded this attempt first; its outcome stands"
            );
        }
        match disabled {
            Some(GONE) => {
                tracing::warn!(endpoint_id = %endpoint.id, "webhook endpoint answered 410 and was disabled")
            }
            Some(_) => {
                tracing::warn!(endpoint_id = %endpoint.id, deliveries = self.disable_after, "webhook endpoint disabled: its last deliveries all failed after every retry")
            }
            None => {}
        }
        Ok(())
    }
}

/// Why an endpoint that answered 410 Gone was disabled (`disabled_reason`).
const GONE: &str = "gone";
/// Why an endpoint whose deliveries kept failing was disabled (`disabled_reason`).
const FAILING: &str = "failing";

/// Queues the "your webhook endpoint was disabled" email in the transaction that disabled
/// `endpoint`.
async fn notify_disabled(
    tx: &impl sea_orm::ConnectionTrait,
    endpoint: &webhook_endpoint::Model,
    reason: &str,
    failed_in_a_row: u64,
) -> Result<(), sea_orm::DbErr> {
    use crate::notify::{self, EmailKind, Recipient};
    let reason = match reason {
        GONE => "it answered 410 Gone, which asks for no more deliveries".to_owned(),
        FAILING => format!("its last {failed_in_a_row} deliveries all failed after every retry"),
        other => other.to_owned(),
    };
    let kind = EmailKind::WebhookEndpointDisabled {
        merchant_name: notify::merchant_name(tx, &endpoint.merchant_id).await?,
        mode: endpoint.mode.0.to_string(),
        url: endpoint.url.clone(),
        reason,
    };
    notify::enqueue(tx, Recipient::Merchant(&endpoint.merchant_id), kind).await?;
    Ok(())
}

/// reqwest errors print the URL, which may carry a merchant's token; keep only the cause.
fn without_url(e: reqwest::Error) -> String {
    e.without_url().to_string()
}

/// Wakes the worker whenever another process commits an event (its [`OutboxBell`] sends a
/// NOTIFY), so delivery starts without waiting for the next poll.
///
/// [`OutboxBell`]: super::bell::OutboxBell
async fn listen(url: String, settings: WebhookSettings) {
    use sea_orm::sqlx::postgres::PgListener;
    loop {
        match PgListener::connect(&url).await {
            Ok(mut listener) => {
                if let Err(e) = listener.listen(super::bell::CHANNEL).await {
                    tracing::warn!(error = %e, "LISTEN failed; polling only for now");
                } else {
                    loop {
                        match listener.recv().await {
                            Ok(_) => settings.bell.wake_here(),
                            Err(e) => {
                                tracing::warn!(error = %e, "outbox notifications interrupted");
                                break;
                            }
                        }
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot LISTEN for outbox events; polling only for now")
            }
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
}

/// `superpayment worker`: connects, then delivers and screens payments until SIGINT or
/// SIGTERM.
pub async fn run_standalone(args: super::WorkerArgs) -> anyhow::Result<()> {
    use anyhow::Context;
    args.webhooks.test_loopback(args.db.is_embedded())?;
    let url = args.db.resolved_database_url()?;
    let db = store::connect(&url, args.db.database_pool_size)
        .await
        .context("connecting to the database")?;
    let cipher = args.db.resolved_cipher()?;
    let settings = WebhookSettings::from_args(&args.webhooks, cipher, args.db.is_embedded())?;
    // The screener's `payment.flagged` events wake the other workers too.
    settings.bell.announce(db.clone());
    if let Some(bind) = args.metrics.metrics_bind {
        crate::monitoring::serve(
            bind,
            crate::monitoring::Sources {
                pools: vec![("primary", db.clone())],
                queue: db.clone(),
                token: args.metrics.metrics_token.clone(),
            },
        )
        .await?;
    }
    let screener = args
        .fraud
        .enabled()
        .then(|| crate::fraud::Screener::new(db.clone(), &args.fraud, settings.bell.clone()));
    let sender =
        crate::notify::sender::Sender::new(db.clone(), &args.email, settings.cipher.clone())?;
    let worker = Worker::new(db, settings, &args.webhooks, Some(url))?;
    // One signal stops them all: the delivery loop, the email sender and the screener.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let until_stopped = move || {
        let mut stopped = stopped.clone();
        async move {
            let _ = stopped.wait_for(|s| *s).await;
        }
    };
    let screening = async {
        if let Some(s) = screener {
            s.run(until_stopped()).await;
        }
    };
    let signal = async {
        stop_signal().await;
        let _ = stop.send(true);
    };
    tokio::join!(
        worker.run(until_stopped()),
        sender.run(until_stopped()),
        screening,
        signal
    );
    Ok(())
}

async fn stop_signal() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(t) => t,
                Err(_) => return std::future::pending().await,
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}
