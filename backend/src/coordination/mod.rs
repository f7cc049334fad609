//! Short-lived coordination: dedup locks, rate limits and blocks, in Redis or in process behind one type.
//!
//! Nothing here is a source of truth. Locks make double clicks cheap to refuse; the
//! database's unique constraints and conditional updates are what guarantee correctness,
//! so a Redis failure is logged and the request carries on without the shortcut: locks
//! fail open, rate limits fall back to this process's own counters, and no call waits
//! longer than [`redis_store::CALL_TIMEOUT`]. Redis never makes an instance unready.
mod memory;
mod redis_store;

use std::time::Duration;

pub use memory::MemoryCoordinator;
pub use redis_store::{RedisCoordinator, CALL_TIMEOUT};

/// The name of a coordination key, `namespace:{tag}` or `namespace:{tag}:rest`.
///
/// Redis Cluster places a key by the part in braces, so keys that one call touches together
/// (a request's idempotency and order locks) or that belong together (a source's counter and
/// block marker) are given the same `tag`, and unrelated ones different tags, which spreads
/// them over the cluster. `tag` must not contain braces.
pub fn key(namespace: &str, tag: &str, rest: &str) -> String {
    debug_assert!(!tag.contains(['{', '}']), "a hash tag without braces");
    if rest.is_empty() {
        format!("{namespace}:{{{tag}}}")
    } else {
        format!("{namespace}:{{{tag}}}:{rest}")
    }
}

/// Locks held for the length of a request, released when it ends however it ends: by
/// [`HeldLocks::release`] when it finishes, or, when its future is dropped instead (the
/// client went away, or a shutdown cut it short), by a task the drop spawns. Without that,
/// a cut-off request kept its key locked for the whole TTL and the client's own retry was
/// refused as "in flight" until then.
pub struct HeldLocks {
    coord: std::sync::Arc<Coordinator>,
    guards: Vec<LockGuard>,
}

impl HeldLocks {
    pub fn new(coord: std::sync::Arc<Coordinator>) -> Self {
        Self {
            coord,
            guards: Vec::with_capacity(2),
        }
    }

    pub fn push(&mut self, guard: LockGuard) {
        self.guards.push(guard);
    }

    pub fn extend(&mut self, guards: impl IntoIterator<Item = LockGuard>) {
        self.guards.extend(guards);
    }

    /// Releases every lock (one round trip).
    pub async fn release(mut self) {
        let guards = std::mem::take(&mut self.guards);
        self.coord.unlock_many(guards).await;
    }
}

impl Drop for HeldLocks {
    fn drop(&mut self) {
        if self.guards.is_empty() {
            return;
        }
        let guards = std::mem::take(&mut self.guards);
        let coord = self.coord.clone();
        // Outside a runtime (never in the server) the locks simply expire.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move { coord.unlock_many(guards).await });
        }
    }
}

/// Proof of holding a lock; needed to release it.
#[derive(Debug)]
pub struct LockGuard {
    key: String,
    token: String,
}

/// The answer of a rate limiter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateDecision {
    Allowed,
    Limited { retry_after: Duration },
}

/// A GCRA quota: `limit` requests per `period`, all of which may come at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Quota {
    pub limit: u32,
    pub period: Duration,
}

impl Quota {
    /// `limit` (at least 1) requests per `period`.
    pub fn new(limit: u32, period: Duration) -> Self {
        Self {
            limit: limit.max(1),
            period,
        }
    }

    /// The spacing of requests that keeps within the quota (at least 1 ms).
    pub fn interval(&self) -> Duration {
        (self.period / self.limit).max(Duration::from_millis(1))
    }
}

/// The answer of a GCRA limiter, with what the `RateLimit` header reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GcraDecision {
    pub allowed: bool,
    /// Requests left right now.
    pub remaining: u32,
    /// Until the quota is whole again.
    pub reset: Duration,
    /// When refused: until the next request would be allowed.
    pub retry_after: Duration,
}

/// Redis when REDIS_URL is set, otherwise an in-process equivalent.
// One per process, behind an `Arc`: the variants' sizes never get copied around.
#[allow(clippy::large_enum_variant)]
pub enum Coordinator {
    Redis(RedisCoordinator),
    Memory(MemoryCoordinator),
}

impl Coordinator {
    /// Tries to take `key` for `ttl`; `None` when somebody else holds it.
    pub async fn try_lock(&self, key: &str, ttl: Duration) -> Option<LockGuard> {
        let token = uuid::Uuid::new_v4().simple().to_string();
        let taken = match self {
            Coordinator::Redis(r) => match r.set_nx(key, &token, ttl).await {
                Ok(taken) => taken,
                Err(err) => {
                    tracing::debug!(error = %err, "redis lock unavailable; relying on the database");
                    true
                }
            },
            Coordinator::Memory(m) => m.set_nx(key, &token, ttl),
        };
        taken.then(|| LockGuard {
            key: key.to_owned(),
            token,
        })
    }

    /// Tries to take several keys in one round trip; each is taken or not independently.
    pub async fn try_lock_many(&self, keys: &[&str], ttl: Duration) -> Vec<Option<LockGuard>> {
        let tokens: Vec<String> = keys
            .iter()
            .map(|_| uuid::Uuid::new_v4().simple().to_string())
            .collect();
        let taken = match self {
            Coordinator::Redis(r) => match r.set_nx_many(keys, &tokens, ttl).await {
                Ok(taken) => taken,
                Err(err) => {
                    tracing::debug!(error = %err, "redis lock unavailable; relying on the database");
                    vec![true; keys.len()]
                }
            },
            Coordinator::Memory(m) => keys
                .iter()
                .zip(&tokens)
                .map(|(k, t)| m.set_nx(k, t, ttl))
                .collect(),
        };
        keys.iter()
            .zip(tokens)
            .zip(taken)
            .map(|((key, token), taken)| {
                taken.then(|| LockGuard {
                    key: (*key).to_owned(),
                    token,
                })
            })
            .collect()
    }

    /// Releases several locks in one round trip.
    pub async fn unlock_many(&self, guards: Vec<LockGuard>) {
        if guards.is_empty() {
            return;
        }
        match self {
            Coordinator::Redis(r) => {
                if let Err(err) = r.del_if_many(&guards).await {
                    tracing::debug!(error = %err, "redis unlock failed; the locks will expire");
                }
            }
            Coordinator::Memory(m) => {
                for g in &guards {
                    m.del_if(&g.key, &g.token);
                }
            }
        }
    }

    /// Takes `key`, waiting up to `wait` for the current holder to finish.
    pub async fn lock_waiting(
        &self,
        key: &str,
        ttl: Duration,
        wait: Duration,
    ) -> Option<LockGuard> {
        let deadline = tokio::time::Instant::now() + wait;
        let mut pause = Duration::from_millis(2);
        loop {
            if let Some(guard) = self.try_lock(key, ttl).await {
                return Some(guard);
            }
            if tokio::time::Instant::now() + pause > deadline {
                return None;
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(25));
        }
    }

    /// Releases a lock if it is still ours (it may have expired and been taken since).
    pub async fn unlock(&self, guard: LockGuard) {
        match self {
            Coordinator::Redis(r) => {
                if let Err(err) = r.del_if(&guard.key, &guard.token).await {
                    tracing::debug!(error = %err, "redis unlock failed; the lock will expire");
                }
            }
            Coordinator::Memory(m) => m.del_if(&guard.key, &guard.token),
        }
    }

    /// Counts one hit on `key` in a fixed window. While Redis is unreachable the limit is
    /// counted in this process instead (per instance, so looser, but never lifted).
    pub async fn rate_limit(&self, key: &str, limit: u32, window: Duration) -> RateDecision {
        match self {
            Coordinator::Redis(r) => match r.hit(key, limit, window).await {
                Ok(decision) => decision,
                Err(err) => {
                    tracing::debug!(error = %err, "redis rate limiter unavailable; counting in process");
                    r.fallback.hit(key, limit, window)
                }
            },
            Coordinator::Memory(m) => m.hit(key, limit, window),
        }
    }

    /// Counts one request on each `(key, quota)` against its GCRA quota and answers the
    /// decisions in order: in Redis, shared by every instance, in one round trip per hash
    /// slot (one on a single node); in process (governor) without Redis or while it is
    /// unreachable. Each key is decided on its own: a refusal by one does not undo what
    /// another allowed.
    pub async fn gcra_many(&self, limits: &[(&str, Quota)]) -> Vec<GcraDecision> {
        match self {
            Coordinator::Redis(r) => match r.gcra_many(limits).await {
                Ok(decisions) => decisions,
                Err(err) => {
                    tracing::debug!(error = %err, "redis rate limiter unavailable; counting in process");
                    limits.iter().map(|(k, q)| r.fallback.gcra(k, *q)).collect()
                }
            },
            Coordinator::Memory(m) => limits.iter().map(|(k, q)| m.gcra(k, *q)).collect(),
        }
    }

    /// The same GCRA counted in this process only, whether Redis is configured or not: for
    /// a limit split into per-instance shares, checked without a round trip.
    pub fn gcra_local(&self, key: &str, quota: Quota) -> GcraDecision {
        match self {
            Coordinator::Redis(r) => r.fallback.gcra(key, quota),
            Coordinator::Memory(m) => m.gcra(key, quota),
        }
    }

    /// Marks `key` as blocked for `ttl` (in this process while Redis is unreachable).
    pub async fn block(&self, key: &str, ttl: Duration) {
        match self {
            Coordinator::Redis(r) => {
                if let Err(err) = r.block(key, ttl).await {
                    tracing::debug!(error = %err, "redis unavailable; blocking in process");
                    r.fallback.block(key, ttl);
                }
            }
            Coordinator::Memory(m) => m.block(key, ttl),
        }
    }

    /// How much longer the longest-blocked of `keys` stays blocked, if any is.
    pub async fn blocked_for(&self, keys: &[String]) -> Option<Duration> {
        match self {
            Coordinator::Redis(r) => match r.blocked_for(keys).await {
                Ok(left) => left,
                Err(err) => {
                    tracing::debug!(error = %err, "redis unavailable; reading blocks in process");
                    r.fallback.blocked_for(keys)
                }
            },
            Coordinator::Memory(m) => m.blocked_for(keys),
        }
    }

    /// Whether Redis answers PING within [`CALL_TIMEOUT`] (always in process). A failure
    /// means degraded coordination, never an unready instance.
    pub async fn ping(&self) -> anyhow::Result<()> {
        match self {
            Coordinator::Redis(r) => r.ping().await,
            Coordinator::Memory(_) => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[tokio::test]
    async fn the_locks_of_a_request_cut_short_are_released_not_left_to_expire() {
        let coord = Arc::new(Coordinator::Memory(MemoryCoordinator::default()));
        let name = key("lock", "m:test", "payment:k1");
        let c = coord.clone();
        let lock = name.clone();
        let request = async move {
            let mut held = HeldLocks::new(c.clone());
            held.extend(c.try_lock(&lock, Duration::from_secs(60)).await);
            // The request never gets to release: its future is dropped first.
            std::future::pending::<()>().await;
            held.release().await;
        };
        let cut = tokio::time::timeout(Duration::from_millis(20), request).await;
        assert!(cut.is_err(), "the request was cut short");
        for _ in 0..1000 {
            if coord
                .try_lock(&name, Duration::from_secs(60))
                .await
                .is_some()
            {
                return;
            }
            tokio::task::yield_now().await;
        }
        panic!("the lock of the dropped request is still held");
    }

    #[tokio::test]
    async fn released_locks_are_free_at_once() {
        let coord = Arc::new(Coordinator::Memory(MemoryCoordinator::default()));
        let mut held = HeldLocks::new(coord.clone());
        held.extend(coord.try_lock("lock:{a}", Duration::from_secs(60)).await);
        held.extend(coord.try_lock("lock:{b}", Duration::from_secs(60)).await);
        assert!(coord
            .try_lock("lock:{a}", Duration::from_secs(60))
            .await
            .is_none());
        held.release().await;
        assert!(coord
            .try_lock("lock:{a}", Duration::from_secs(60))
            .await
            .is_some());
        assert!(coord
            .try_lock("lock:{b}", Duration::from_secs(60))
            .await
            .is_some());
    }
}
