//! The sending loop of the worker: claim due emails, render, send over SMTP, record.
use std::{future::Future, pin::Pin, time::Duration};

use futures::FutureExt;

use lettre::{
    message::{Mailbox, MultiPart},
    AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
};
use sea_orm::DatabaseConnection;
use time::OffsetDateTime;

use super::{render::render, EmailArgs, EmailKind};
use crate::{
    store::{
        self,
        emails::EmailUpdate,
        entities::{email::EmailStatus, email_attempt},
    },
    webhooks::{schedule::RetrySchedule, secrets::SecretCipher},
};

/// Emails sent one after another per poll; a notification burst is small, and one SMTP
/// connection at a time is what relays throttle least.
const BATCH: u64 = 16;
/// A claim lasts this many SMTP timeouts per email of the batch: enough to send them all
/// and record, short enough that a crashed worker's emails come back soon.
const LEASE_TIMEOUTS: u32 = 2;

/// How one attempt ended.
enum Outcome {
    Sent,
    /// May succeed later (connection refused, timeout, 4xx).
    Failed(String),
    /// Will never succeed (5xx, an unusable address or template): no retry.
    Rejected(String),
}

impl Outcome {
    fn as_str(&self) -> &'static str {
        match self {
            Outcome::Sent => "sent",
            Outcome::Failed(_) => "failed",
            Outcome::Rejected(_) => "rejected",
        }
    }
}

/// Sends the email outbox; any number may run against one database.
pub struct Sender {
    db: DatabaseConnection,
    /// None without SMTP_URL: the emails stay queued.
    transport: Option<AsyncSmtpTransport<Tokio1Executor>>,
    from: Mailbox,
    /// Opens the links sealed in the outbox.
    cipher: SecretCipher,
    schedule: RetrySchedule,
    timeout: Duration,
    poll: Duration,
}

impl Sender {
    /// A sender from the flags; a malformed SMTP_URL or SMTP_FROM is an error here, at
    /// start-up (the URL itself is never printed: it may hold a password).
    pub fn new(
        db: DatabaseConnection,
        args: &EmailArgs,
        cipher: SecretCipher,
    ) -> anyhow::Result<Self> {
        let transport = match &args.smtp_url {
            Some(url) => Some(
                AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose())
                    .map_err(|e| anyhow::anyhow!("SMTP_URL is not a usable SMTP URL: {e}"))?
                    .timeout(Some(args.smtp_timeout))
                    .build(),
            ),
            None => None,
        };
        Ok(Self {
            db,
            transport,
            from: args.from()?,
            cipher,
            schedule: args.schedule()?,
            timeout: args.smtp_timeout,
            poll: args.email_poll_interval,
        })
    }

    /// Sends until `shutdown` completes. An email being sent then is finished (within
    /// SMTP_TIMEOUT: cutting an SMTP conversation short could send it twice); the rest of
    /// its batch is handed back, due at once for another worker.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        let Some(transport) = &self.transport else {
            let pending = store::emails::pending_count(&self.db).await.unwrap_or(0);
            tracing::warn!(
                pending,
                "SMTP_URL is not set: notification emails are queued but not sent until a worker with SMTP_URL runs"
            );
            shutdown.await;
            return;
        };
        tracing::info!(
            attempts = self.schedule.max_attempts(),
            "email sender started"
        );
        loop {
            let (claimed, stopped) = self.send_due(transport, shutdown.as_mut()).await;
            if stopped {
                break;
            }
            if claimed < BATCH {
                tokio::select! {
                    _ = tokio::time::sleep(self.poll) => {},
                    _ = &mut shutdown => break,
                }
            }
        }
        tracing::info!("email sender stopped");
    }

    /// Claims one batch and sends it; returns how many were claimed, and whether
    /// `shutdown` completed meanwhile (then the emails not yet sent were handed back).
    async fn send_due<F: Future<Output = ()>>(
        &self,
        transport: &AsyncSmtpTransport<Tokio1Executor>,
        mut shutdown: Pin<&mut F>,
    ) -> (u64, bool) {
        let now = OffsetDateTime::now_utc();
        let lease = (now + self.timeout * LEASE_TIMEOUTS * BATCH as u32)
            .replace_nanosecond(0)
            .expect("0 is a valid nanosecond");
        let ids = match store::emails::claim_due(&self.db, now, lease, BATCH).await {
            Ok(ids) => ids,
            Err(e) => {
                tracing::warn!(error = %e, "claiming emails failed");
                return (0, shutdown.now_or_never().is_some());
            }
        };
        for (i, &id) in ids.iter().enumerate() {
            if shutdown.as_mut().now_or_never().is_some() {
                let left = &ids[i..];
                match store::emails::release_claims(
                    &self.db,
                    left,
                    lease,
                    OffsetDateTime::now_utc(),
                )
                .await
                {
                    Ok(n) => tracing::info!(
                        released = n,
                        "email sender stopping: unsent claims handed back"
                    ),
                    Err(e) => {
                        tracing::warn!(error = %e, "handing email claims back failed; they are retried after their lease")
                    }
                }
                return (ids.len() as u64, true);
            }
            if let Err(e) = self.send_one(transport, id).await {
                tracing::warn!(email_id = id, error = %e, "an email attempt could not be recorded; it will be retried after its lease");
            }
        }
        (ids.len() as u64, false)
    }

    #[tracing::instrument(skip(self, transport), fields(merchant_id, kind))]
    async fn send_one(
        &self,
        transport: &AsyncSmtpTransport<Tokio1Executor>,
        id: i64,
    ) -> anyhow::Result<()> {
        let Some(email) = store::emails::find(&self.db, id).await? else {
            return Ok(());
        };
        if email.status != EmailStatus::Pending {
            return Ok(());
        }
        let span = tracing::Span::current();
        span.record("merchant_id", email.merchant_id.as_deref().unwrap_or(""));
        span.record("kind", email.kind.as_str());
        let started = OffsetDateTime::now_utc();
        let clock = std::time::Instant::now();
        let outcome = match self.message(&email.kind, &email.params, &email.recipient) {
            Ok(message) => match transport.send(message).await {
                Ok(_) => Outcome::Sent,
                Err(e) if e.is_permanent() => Outcome::Rejected(e.to_string()),
                Err(e) => Outcome::Failed(e.to_string()),
            },
            Err(e) => Outcome::Rejected(format!("{e:#}")),
        };
        let duration_ms = i64::try_from(clock.elapsed().as_millis()).unwrap_or(i64::MAX);
        let number = email.attempt_count + 1;
        let update = match &outcome {
            Outcome::Sent => EmailUpdate {
                status: EmailStatus::Sent,
                next_attempt_at: None,
            },
            Outcome::Rejected(_) => EmailUpdate {
                status: EmailStatus::Failed,
                next_attempt_at: None,
            },
            Outcome::Failed(_) => match self
                .schedule
                .next_delay(usize::try_from(number).unwrap_or(usize::MAX))
            {
                Some(delay) => EmailUpdate {
                    status: EmailStatus::Pending,
                    next_attempt_at: Some(OffsetDateTime::now_utc() + delay),
                },
                None => EmailUpdate {
                    status: EmailStatus::Failed,
                    next_attempt_at: None,
                },
            },
        };
        let error = match &outcome {
            Outcome::Sent => None,
            Outcome::Failed(e) | Outcome::Rejected(e) => Some(e.clone()),
        };
        // The recipient and the body stay out of the log: they are the merchant's data.
        tracing::info!(
            email_id = id,
            attempt = number,
            outcome = outcome.as_str(),
            next = update.status.as_str(),
            error = error.as_deref().unwrap_or(""),
            duration_ms,
            "email attempt"
        );
        crate::monitoring::email_attempt(outcome.as_str());
        let moved = store::emails::record_attempt(
            &self.db,
            email_attempt::Model {
                id: 0,
                email_id: id,
                attempt_number: number,
                started_at: started,
                duration_ms,
                outcome: outcome.as_str().to_owned(),
                error,
            },
            update,
        )
        .await?;
        if !moved {
            tracing::warn!(
                email_id = id,
                attempt = number,
                "another worker recorded this attempt first; its outcome stands"
            );
        }
        Ok(())
    }

    /// The message of a stored email: templates rendered now, text and HTML alternatives.
    fn message(
        &self,
        kind: &str,
        params: &serde_json::Value,
        recipient: &str,
    ) -> anyhow::Result<Message> {
        let kind = EmailKind::from_stored(kind, params)?;
        let rendered = render(&kind, &self.cipher)?;
        let to: Mailbox = recipient
            .parse()
            .map_err(|e| anyhow::anyhow!("recipient address: {e}"))?;
        Ok(Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(rendered.subject)
            .multipart(MultiPart::alternative_plain_html(
                rendered.text,
                rendered.html,
            ))?)
    }
}
