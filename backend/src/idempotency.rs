//! One Idempotency-Key mechanism for every money call (payments, refunds, captures,
//! cancels, voucher activities, payouts):
//! the key check, the request fingerprint, the operation scope, the lock and the replay.
//!
//! Every operation goes through [`execute`] in the same order: take the key's lock (Redis,
//! or in process; a lock that fails open only costs the shortcut), begin the database
//! transaction, run the operation, which writes its answer in the same transaction as its
//! money ([`Recorder::row`]), commit. The answer's row is unique per key, so a request whose
//! key already has a live answer cannot commit: its write finds the row and the operation
//! fails. Whenever the operation fails, everything is rolled back and the stored answer is
//! read: an earlier request with the same key (a retry, a lock that failed open, two
//! instances without a shared Redis) committed first, and its answer is the one to give (or
//! a different request under the same key is refused). A retry thus costs a rolled-back
//! attempt and one read, and a first attempt, the common case, no read at all.
//!
//! Keys are scoped by merchant, mode AND operation, so a payment (anyone holding the
//! publishable key can send one) can never take the key of a refund. The fingerprint is a
//! SHA-256 over the *validated* request in which voucher codes already are their keyed
//! HMACs and tokens their hashes: it holds nothing a backup could be brute-forced for, and
//! the same request written differently ("99" and "99.00", a code in lower case) is the
//! same request. Stored answers are sealed (AES-256-GCM): a refund's may carry a new code.
use std::{
    future::Future,
    sync::atomic::{AtomicBool, Ordering},
    time::Duration,
};

use sea_orm::{DatabaseTransaction, DbErr};
use serde::{de::DeserializeOwned, Serialize};
use superpayment_core::Mode;
use time::OffsetDateTime;

use crate::store::entities::text::AsText;
use crate::{
    auth::Caller,
    coordination::{self, HeldLocks},
    crypto::sha256_hex,
    state::AppState,
    store::{self, entities::idempotency_key, idempotency::Scope},
    webhooks::secrets::idempotency_body_aad,
};

/// How long a stored answer is replayed.
pub const TTL: time::Duration = time::Duration::hours(24);
/// How long a key's lock lives if its process dies without releasing it (a request that is
/// merely cut short releases it at once, see [`coordination::HeldLocks`]). Short, because
/// the client's retry waits for it; the lock is only the shortcut (a request outliving it
/// is still kept single by the database's unique indexes), and it outlasts [`WAIT`].
const LOCK_TTL: Duration = Duration::from_secs(15);
/// How long a request waits for the holder of its operation's other lock (an earlier
/// attempt at the same order) before it goes on and lets the database decide.
const WAIT: Duration = Duration::from_secs(10);

/// The money operations that take an Idempotency-Key; each has its own key space.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Payment,
    Refund,
    Capture,
    Cancel,
    /// A voucher lifecycle activity (adjust, load, clear, status changes).
    VoucherActivity,
    /// An operator's payout of a merchant's payable (keyed in that merchant's space).
    Payout,
}

impl Operation {
    /// The stored name (`idempotency_keys.operation`).
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Payment => "payment",
            Operation::Refund => "refund",
            Operation::Capture => "capture",
            Operation::Cancel => "cancel",
            Operation::VoucherActivity => "voucher_activity",
            Operation::Payout => "payout",
        }
    }
}

/// Whose key space a request is in: one merchant in one mode. A merchant's own calls are
/// keyed in its space ([`Caller`] converts); an operator's payout to a merchant is keyed in
/// that merchant's space, under its own operation.
#[derive(Debug, Clone, Copy)]
pub struct KeyOwner<'a> {
    pub merchant_id: &'a str,
    pub mode: Mode,
}

impl<'a> From<&'a Caller> for KeyOwner<'a> {
    fn from(caller: &'a Caller) -> Self {
        KeyOwner {
            merchant_id: &caller.merchant_id,
            mode: caller.mode,
        }
    }
}

/// Why the mechanism refused a request, or the failure it answered before.
#[derive(Debug, thiserror::Error)]
pub enum IdempotencyError {
    /// The header is not 1 to 255 visible ASCII characters.
    #[error("invalid Idempotency-Key")]
    InvalidKey,
    /// The key was used with another request of the same operation.
    #[error("Idempotency-Key reused with a different request")]
    KeyReused,
    /// A request with this key is still running.
    #[error("Idempotency-Key in flight")]
    InFlight,
    /// The failure stored for this key by the first request, to be answered again as it
    /// was then: its HTTP status and wire body.
    #[error("stored failure with status {status}")]
    StoredFailure { status: u16, body: String },
    /// Anything unexpected.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<DbErr> for IdempotencyError {
    fn from(err: DbErr) -> Self {
        IdempotencyError::Internal(err.into())
    }
}

impl IdempotencyError {
    /// The refusals every idempotent operation can answer, for the documentation.
    pub fn examples() -> impl Iterator<Item = IdempotencyError> {
        [Self::InvalidKey, Self::KeyReused, Self::InFlight].into_iter()
    }
}

/// How an operation's failure is kept as a key's answer: the HTTP status and wire body it
/// was answered with. The HTTP layer implements it for each operation's error.
pub trait StoredAnswer {
    /// The status and body to store, or `None` for a failure that is never kept.
    fn stored_answer(&self) -> Option<(u16, String)>;
}

/// An Idempotency-Key header that passed [`IdempotencyKey::parse`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// Refuses a key that is not 1 to 255 visible ASCII characters (it is stored and
    /// compared as sent, so anything invisible would make keys that look equal differ).
    pub fn parse(header: Option<String>) -> Result<Option<Self>, IdempotencyError> {
        match header {
            None => Ok(None),
            Some(k) if (1..=255).contains(&k.len()) && k.bytes().all(|b| b.is_ascii_graphic()) => {
                Ok(Some(Self(k)))
            }
            Some(_) => Err(IdempotencyError::InvalidKey),
        }
    }

    /// The key as sent.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// SHA-256 of a canonical form of the validated request (see the module notes: it must
/// hold codes only as their HMACs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint(String);

impl Fingerprint {
    /// The fingerprint of a request's canonical form.
    pub fn of(canonical: &impl Serialize) -> anyhow::Result<Self> {
        let json = serde_json::to_string(canonical).map_err(anyhow::Error::from)?;
        Ok(Self(sha256_hex(&json)))
    }
}

/// A fresh answer, or the stored answer to an earlier request with the same key.
#[derive(Debug)]
pub enum Outcome<T> {
    Fresh(T),
    Replayed(T),
}

/// Builds the record an operation writes beside its money, in its own transaction.
pub struct Recorder<'a> {
    state: &'a AppState,
    owner: KeyOwner<'a>,
    operation: Operation,
    key: Option<&'a IdempotencyKey>,
    fingerprint: &'a Fingerprint,
    /// Whether the operation took its answer's row: a keyed success that did not cannot be
    /// told from a retry, and is refused before its commit (see [`run_once`]).
    taken: AtomicBool,
}

impl Recorder<'_> {
    /// Stores `body` as the answer (status `status`) for this request's key inside the
    /// operation's own transaction `tx`, so that the answer commits with the money it
    /// describes. Nothing when the request has no key; a row already stored under the same
    /// key is [`IdempotencyError::InFlight`], which [`execute`] answers with that row's answer
    /// once it has rolled back (or as 409 while that request has not committed).
    pub async fn store(
        &self,
        tx: &DatabaseTransaction,
        status: u16,
        body: &impl Serialize,
        now: OffsetDateTime,
    ) -> Result<(), IdempotencyError> {
        let Some(row) = self.row(status, body, now)? else {
            return Ok(());
        };
        match store::idempotency::insert(tx, row).await {
            Ok(()) => Ok(()),
            Err(e) if store::violates(&e, store::Unique::IdempotencyScope) => {
                Err(IdempotencyError::InFlight)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The row storing `body` as the answer (status `status`) for this request's key;
    /// `None` when the request has no key.
    pub fn row(
        &self,
        status: u16,
        body: &impl Serialize,
        now: OffsetDateTime,
    ) -> anyhow::Result<Option<idempotency_key::Model>> {
        let Some(key) = self.key else {
            return Ok(None);
        };
        self.taken.store(true, Ordering::Relaxed);
        let json = serde_json::to_string(body)?;
        let aad = idempotency_body_aad(
            self.owner.merchant_id,
            self.owner.mode.as_str(),
            self.operation.as_str(),
            key.as_str(),
        );
        Ok(Some(idempotency_key::Model {
            id: 0,
            merchant_id: self.owner.merchant_id.to_owned(),
            mode: AsText(self.owner.mode),
            operation: self.operation.as_str().into(),
            key: key.as_str().into(),
            request_hash: self.fingerprint.0.clone(),
            response_status: i32::from(status),
            // Bound to its row: a sealed answer copied under another key does not open.
            response_body: self.state.webhooks.cipher.seal_text_bound(&json, &aad)?,
            created_at: now,
            expires_at: now + TTL,
        }))
    }
}

/// A money call that can be made idempotent.
pub trait IdempotentOperation {
    /// The success answer, stored and replayed.
    type Output: Serialize + DeserializeOwned;
    /// Why it failed; errors of the mechanism itself become this type too.
    type Error: From<IdempotencyError> + From<anyhow::Error> + From<DbErr> + StoredAnswer + Send;
    /// The key space.
    const OPERATION: Operation;

    /// Does the work inside `tx`, writing `recorder.row(..)` with its answer (the caller
    /// commits). Errors roll everything back.
    fn run(
        &self,
        tx: &DatabaseTransaction,
        recorder: &Recorder<'_>,
    ) -> impl Future<Output = Result<Self::Output, Self::Error>> + Send;

    /// After a failed run has been rolled back: the error to answer with (a payment says
    /// which transaction already paid its order here).
    fn explain(
        &self,
        err: Self::Error,
    ) -> impl Future<Output = Result<Self::Error, Self::Error>> + Send {
        async { Ok(err) }
    }

    /// Whether a failure is itself the answer to keep for the key (a decline), rather than
    /// something a retry may get past.
    fn keeps(_err: &Self::Error) -> bool {
        false
    }

    /// After the commit of a fresh answer.
    fn committed(&self, _output: &Self::Output) {}
}

/// Runs `op` once per key, in the order the module notes give. `wait_for` names a second
/// lock of the operation's own (an order) within the caller's merchant and mode; when
/// another request holds it, this one waits for it to finish and then lets the database
/// decide.
pub async fn execute<'c, O: IdempotentOperation + Sync>(
    state: &AppState,
    owner: impl Into<KeyOwner<'c>>,
    key: Option<IdempotencyKey>,
    fingerprint: Fingerprint,
    wait_for: Option<String>,
    op: &O,
) -> Result<Outcome<O::Output>, O::Error> {
    let owner = owner.into();
    let (key_lock, wait_for) = lock_names(
        owner.merchant_id,
        owner.mode.as_str(),
        O::OPERATION.as_str(),
        key.as_ref(),
        wait_for,
    );
    let names: Vec<&str> = key_lock
        .iter()
        .chain(wait_for.iter())
        .map(String::as_str)
        .collect();
    // Both locks in one round trip: the common case costs a single Redis call each way.
    let mut taken = state
        .coord
        .try_lock_many(&names, LOCK_TTL)
        .await
        .into_iter();
    let mut held = HeldLocks::new(state.coord.clone());
    if key_lock.is_some() {
        match taken.next().flatten() {
            Some(guard) => held.push(guard),
            None => {
                held.extend(taken.flatten());
                held.release().await;
                return Err(IdempotencyError::InFlight.into());
            }
        }
    }
    if let Some(name) = &wait_for {
        match taken.next().flatten() {
            Some(guard) => held.push(guard),
            None => held.extend(state.coord.lock_waiting(name, LOCK_TTL, WAIT).await),
        }
    }
    let result = run_once(state, owner, key.as_ref(), &fingerprint, op).await;
    held.release().await;
    result
}

/// The names of a call's locks: its key's, and the operation's own (`wait_for`). Both carry
/// the caller's merchant and mode as hash tag, so on a Redis Cluster they share a slot and
/// are taken and released in one call.
fn lock_names(
    merchant_id: &str,
    mode: &str,
    operation: &str,
    key: Option<&IdempotencyKey>,
    wait_for: Option<String>,
) -> (Option<String>, Option<String>) {
    let tag = format!("{merchant_id}:{mode}");
    let key_lock = key.map(|k| {
        coordination::key(
            "idem",
            &tag,
            &format!("{operation}:{}", sha256_hex(k.as_str())),
        )
    });
    (
        key_lock,
        wait_for.map(|name| coordination::key("lock", &tag, &name)),
    )
}

async fn run_once<O: IdempotentOperation + Sync>(
    state: &AppState,
    owner: KeyOwner<'_>,
    key: Option<&IdempotencyKey>,
    fingerprint: &Fingerprint,
    op: &O,
) -> Result<Outcome<O::Output>, O::Error> {
    let scope = key.map(|k| Scope {
        merchant_id: owner.merchant_id,
        mode: owner.mode.as_str(),
        operation: O::OPERATION.as_str(),
        key: k.as_str(),
    });
    let tx = store::begin(&state.db).await?;
    let recorder = Recorder {
        state,
        owner,
        operation: O::OPERATION,
        key,
        fingerprint,
        taken: AtomicBool::new(false),
    };
    // No read of the key first: a live answer under it makes the operation's own write of
    // its answer fail, and the failure path below reads and replays it.
    let err = match op.run(&tx, &recorder).await {
        Ok(output) if key.is_none() || recorder.taken.load(Ordering::Relaxed) => {
            tx.commit().await?;
            op.committed(&output);
            return Ok(Outcome::Fresh(output));
        }
        Ok(_) => {
            tx.rollback().await?;
            return Err(anyhow::anyhow!(
                "the {} operation succeeded without writing its idempotency answer",
                O::OPERATION.as_str()
            )
            .into());
        }
        Err(err) => {
            tx.rollback().await?;
            err
        }
    };
    let Some(scope) = scope else {
        return Err(op.explain(err).await?);
    };
    // Whatever failed, an answer stored under this key wins: a retry's own write of its
    // answer found it, or it is what the first of two concurrent requests got.
    if let Some(stored) =
        store::idempotency::find(&state.db, scope, OffsetDateTime::now_utc()).await?
    {
        return Ok(Outcome::Replayed(replay(state, stored, fingerprint)?));
    }
    let err = op.explain(err).await?;
    if O::keeps(&err) {
        keep_failure(state, &recorder, scope, &err).await?;
    }
    Err(err)
}

/// Stores a failure as the key's answer. If another request stored one first, that one is
/// the key's answer and is given instead.
async fn keep_failure(
    state: &AppState,
    recorder: &Recorder<'_>,
    scope: Scope<'_>,
    err: &impl StoredAnswer,
) -> Result<(), IdempotencyError> {
    let Some((status, body)) = err.stored_answer() else {
        return Ok(());
    };
    let body: serde_json::Value = serde_json::from_str(&body).map_err(anyhow::Error::from)?;
    let Some(row) = recorder.row(status, &body, OffsetDateTime::now_utc())? else {
        return Ok(());
    };
    match store::idempotency::insert(&state.db, row).await {
        Ok(()) => Ok(()),
        Err(e) if store::violates(&e, store::Unique::IdempotencyScope) => {
            match store::idempotency::find(&state.db, scope, OffsetDateTime::now_utc()).await? {
                Some(stored) => Err(replay_error(state, stored, recorder.fingerprint)?),
                None => Ok(()),
            }
        }
        Err(e) => Err(e.into()),
    }
}

fn open(state: &AppState, stored: &idempotency_key::Model) -> anyhow::Result<String> {
    // Answers stored before sealing was introduced are plain JSON.
    if stored.response_body.starts_with('{') {
        return Ok(stored.response_body.clone());
    }
    let aad = idempotency_body_aad(
        &stored.merchant_id,
        stored.mode.0.as_str(),
        &stored.operation,
        &stored.key,
    );
    state
        .webhooks
        .cipher
        .open_text_bound(&stored.response_body, &aad)
}

/// The stored answer: the success output, or the stored failure as
/// [`IdempotencyError::StoredFailure`].
fn replay<T: DeserializeOwned>(
    state: &AppState,
    stored: idempotency_key::Model,
    fingerprint: &Fingerprint,
) -> Result<T, IdempotencyError> {
    if stored.request_hash != fingerprint.0 || !(200..300).contains(&stored.response_status) {
        // Another request under this key, or a stored failure: both answered as errors.
        return Err(replay_error(state, stored, fingerprint)?);
    }
    Ok(serde_json::from_str(&open(state, &stored)?).map_err(anyhow::Error::from)?)
}

fn replay_error(
    state: &AppState,
    stored: idempotency_key::Model,
    fingerprint: &Fingerprint,
) -> Result<IdempotencyError, IdempotencyError> {
    if stored.request_hash != fingerprint.0 {
        return Ok(IdempotencyError::KeyReused);
    }
    Ok(IdempotencyError::StoredFailure {
        status: u16::try_from(stored.response_status).unwrap_or(500),
        body: open(state, &stored)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_calls_key_lock_and_order_lock_share_one_cluster_slot_apart_from_other_merchants() {
        use redis::cluster_routing::Slot;
        let key = IdempotencyKey::parse(Some("k-1".into())).unwrap();
        let slot = |name: &str| Slot::for_key(format!("sp:{name}"));
        let (own, order) = lock_names(
            "mer_a",
            "test",
            "payment",
            key.as_ref(),
            Some("order:abc".into()),
        );
        let (own, order) = (own.unwrap(), order.unwrap());
        assert_ne!(own, order);
        assert_eq!(slot(&own), slot(&order));
        // Other merchants, and the other mode, hash elsewhere: load spreads over masters.
        let others: Vec<Slot> = ["mer_b", "mer_c", "mer_d"]
            .iter()
            .map(|m| {
                lock_names(m, "test", "payment", key.as_ref(), None)
                    .0
                    .unwrap()
            })
            .chain(lock_names("mer_a", "live", "payment", key.as_ref(), None).0)
            .map(|name| slot(&name))
            .collect();
        assert!(others.iter().any(|s| *s != slot(&own)));
    }

    #[test]
    fn keys_must_be_visible_ascii_of_1_to_255_characters() {
        assert!(IdempotencyKey::parse(None).unwrap().is_none());
        assert!(IdempotencyKey::parse(Some("a-b_c.1".into()))
            .unwrap()
            .is_some());
        for bad in ["", "with space", "tab\t", "é", &"x".repeat(256)] {
            assert!(IdempotencyKey::parse(Some(bad.into())).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn operations_have_distinct_key_spaces() {
        assert_ne!(Operation::Payment.as_str(), Operation::Refund.as_str());
    }
}
