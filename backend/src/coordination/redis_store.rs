//! Redis-backed locks (`SET NX PX`, compare-and-delete) and fixed-window rate limits.
//!
//! The connection is made lazily and remade in the background, and every call is bounded
//! by [`CALL_TIMEOUT`], so an unreachable Redis neither stops a start nor holds a request.
use std::{
    future::Future,
    sync::atomic::{AtomicBool, Ordering},
    sync::Arc,
    time::Duration,
};

use redis::{
    aio::{ConnectionManager, ConnectionManagerConfig},
    RedisResult, Script,
};

use super::{MemoryCoordinator, RateDecision};

/// The longest any request waits for Redis before carrying on without it.
pub const CALL_TIMEOUT: Duration = Duration::from_millis(500);
/// How often the background probe checks an unreachable (or reachable) Redis.
const PROBE_INTERVAL: Duration = Duration::from_secs(2);

/// One multiplexed, auto-reconnecting connection shared by every request.
pub struct RedisCoordinator {
    conn: ConnectionManager,
    prefix: String,
    /// Rate limits kept in this process while Redis is unreachable: an outage narrows the
    /// limits to one instance instead of lifting them.
    pub(super) fallback: MemoryCoordinator,
    /// Whether the last call reached Redis; failures are logged when this flips.
    healthy: Arc<AtomicBool>,
    // Built once: a Script hashes its source (SHA-1) when created.
    del_if_owner: Script,
    del_if_owner_many: Script,
    hit: Script,
    gcra: Script,
}

const DEL_IF_OWNER: &str = r#"
if redis.call("GET", KEYS[1]) == ARGV[1] then
  return redis.call("DEL", KEYS[1])
end
return 0
"#;

const DEL_IF_OWNER_MANY: &str = r#"
local n = 0
for i, key in ipairs(KEYS) do
  if redis.call("GET", key) == ARGV[i] then
    n = n + redis.call("DEL", key)
  end
end
return n
"#;

const HIT: &str = r#"
local n = redis.call("INCR", KEYS[1])
if n == 1 then redis.call("PEXPIRE", KEYS[1], ARGV[1]) end
return {n, redis.call("PTTL", KEYS[1])}
"#;

/// GCRA over one key holding the theoretical arrival time (ms, Redis clock). ARGV: the
/// emission interval and the burst (ms, count). Returns {allowed, remaining, reset_ms,
/// retry_ms}. One key per call, hash-tagged by the caller, so it runs on Redis Cluster.
const GCRA: &str = r#"
local t = redis.call("TIME")
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local interval = tonumber(ARGV[1])
local tolerance = interval * tonumber(ARGV[2])
local tat = tonumber(redis.call("GET", KEYS[1])) or now
if tat < now then tat = now end
local new_tat = tat + interval
local allow_at = new_tat - tolerance
if allow_at > now then
  return {0, 0, tat - now, allow_at - now}
end
redis.call("SET", KEYS[1], new_tat, "PX", new_tat - now)
return {1, math.floor((tolerance - (new_tat - now)) / interval), new_tat - now, 0}
"#;

impl RedisCoordinator {
    /// A coordinator that connects in the background: an unreachable Redis at start-up is
    /// a degraded service (locks fail open, rate limits per instance), not a failed start.
    /// Only a malformed URL is an error. Must be called inside a Tokio runtime.
    pub fn connect_lazily(url: &str, prefix: &str) -> anyhow::Result<Self> {
        let client = redis::Client::open(url)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_millis(300)))
            .set_response_timeout(Some(Duration::from_millis(300)))
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_millis(200));
        let conn = ConnectionManager::new_lazy_with_config(client, config)?;
        let coordinator = Self {
            conn,
            prefix: prefix.to_owned(),
            fallback: MemoryCoordinator::default(),
            healthy: Arc::new(AtomicBool::new(true)),
            del_if_owner: Script::new(DEL_IF_OWNER),
            del_if_owner_many: Script::new(DEL_IF_OWNER_MANY),
            hit: Script::new(HIT),
            gcra: Script::new(GCRA),
        };
        coordinator.spawn_probe();
        Ok(coordinator)
    }

    /// Pings now and then, so the connection is made at start, a lost one is remade even
    /// while no request needs it, and the log says when Redis goes and comes back.
    fn spawn_probe(&self) {
        let conn = self.conn.clone();
        let healthy = self.healthy.clone();
        tokio::spawn(async move {
            loop {
                let mut c = conn.clone();
                let result = bounded(redis::cmd("PING").query_async::<String>(&mut c)).await;
                if result.is_err() {
                    crate::monitoring::redis_error("probe");
                }
                record(&healthy, &result);
                tokio::time::sleep(PROBE_INTERVAL).await;
            }
        });
    }

    /// Runs one call within [`CALL_TIMEOUT`] and notes whether Redis answered.
    /// Failures count in `superpayment_redis_errors_total{operation}`.
    async fn call<T>(
        &self,
        operation: &'static str,
        fut: impl Future<Output = RedisResult<T>>,
    ) -> RedisResult<T> {
        let result = bounded(fut).await;
        record(&self.healthy, &result);
        if result.is_err() {
            crate::monitoring::redis_error(operation);
        }
        result
    }

    fn key(&self, key: &str) -> String {
        format!("{}{}", self.prefix, key)
    }

    pub(super) async fn set_nx(
        &self,
        key: &str,
        token: &str,
        ttl: Duration,
    ) -> redis::RedisResult<bool> {
        let mut conn = self.conn.clone();
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.key(key))
            .arg(token)
            .arg("NX")
            .arg("PX")
            .arg(ttl.as_millis() as u64);
        let reply: Option<String> = self.call("lock", cmd.query_async(&mut conn)).await?;
        Ok(reply.is_some())
    }

    pub(super) async fn set_nx_many(
        &self,
        keys: &[&str],
        tokens: &[String],
        ttl: Duration,
    ) -> redis::RedisResult<Vec<bool>> {
        let mut conn = self.conn.clone();
        let mut pipe = redis::pipe();
        for (key, token) in keys.iter().zip(tokens) {
            pipe.cmd("SET")
                .arg(self.key(key))
                .arg(token)
                .arg("NX")
                .arg("PX")
                .arg(ttl.as_millis() as u64);
        }
        let replies: Vec<Option<String>> = self.call("lock", pipe.query_async(&mut conn)).await?;
        Ok(replies.into_iter().map(|r| r.is_some()).collect())
    }

    pub(super) async fn del_if_many(&self, guards: &[super::LockGuard]) -> redis::RedisResult<()> {
        let mut conn = self.conn.clone();
        let mut invocation = self.del_if_owner_many.prepare_invoke();
        for g in guards {
            invocation.key(self.key(&g.key)).arg(&g.token);
        }
        let _: i64 = self
            .call("unlock", invocation.invoke_async(&mut conn))
            .await?;
        Ok(())
    }

    pub(super) async fn del_if(&self, key: &str, token: &str) -> redis::RedisResult<()> {
        let mut conn = self.conn.clone();
        let mut invocation = self.del_if_owner.key(self.key(key));
        invocation.arg(token);
        let _: i64 = self
            .call("unlock", invocation.invoke_async(&mut conn))
            .await?;
        Ok(())
    }

    pub(super) async fn hit(
        &self,
        key: &str,
        limit: u32,
        window: Duration,
    ) -> redis::RedisResult<RateDecision> {
        let mut conn = self.conn.clone();
        let mut invocation = self.hit.key(self.key(key));
        invocation.arg(window.as_millis() as u64);
        let (count, pttl): (u64, i64) = self
            .call("rate_limit", invocation.invoke_async(&mut conn))
            .await?;
        Ok(if count > u64::from(limit) {
            RateDecision::Limited {
                retry_after: Duration::from_millis(pttl.max(1) as u64),
            }
        } else {
            RateDecision::Allowed
        })
    }

    pub(super) async fn gcra(
        &self,
        key: &str,
        quota: super::Quota,
    ) -> redis::RedisResult<super::GcraDecision> {
        let mut conn = self.conn.clone();
        let mut invocation = self.gcra.key(self.key(key));
        invocation
            .arg(quota.interval().as_millis() as u64)
            .arg(quota.limit);
        let (allowed, remaining, reset, retry): (i64, i64, i64, i64) = self
            .call("rate_limit", invocation.invoke_async(&mut conn))
            .await?;
        let ms = |v: i64| Duration::from_millis(v.max(0) as u64);
        Ok(super::GcraDecision {
            allowed: allowed == 1,
            remaining: remaining.max(0) as u32,
            reset: ms(reset),
            retry_after: ms(retry),
        })
    }

    pub(super) async fn block(&self, key: &str, ttl: Duration) -> redis::RedisResult<()> {
        let mut conn = self.conn.clone();
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.key(key))
            .arg(1)
            .arg("PX")
            .arg(ttl.as_millis().max(1) as u64);
        let _: String = self.call("lockout", cmd.query_async(&mut conn)).await?;
        Ok(())
    }

    pub(super) async fn blocked_for(
        &self,
        keys: &[String],
    ) -> redis::RedisResult<Option<Duration>> {
        let mut conn = self.conn.clone();
        let mut pipe = redis::pipe();
        for key in keys {
            pipe.cmd("PTTL").arg(self.key(key));
        }
        let ttls: Vec<i64> = self.call("lockout", pipe.query_async(&mut conn)).await?;
        Ok(ttls
            .into_iter()
            .filter(|ms| *ms > 0)
            .max()
            .map(|ms| Duration::from_millis(ms as u64)))
    }

    pub(super) async fn ping(&self) -> anyhow::Result<()> {
        let mut conn = self.conn.clone();
        let _: String = self
            .call("ping", redis::cmd("PING").query_async(&mut conn))
            .await?;
        Ok(())
    }
}

async fn bounded<T>(fut: impl Future<Output = RedisResult<T>>) -> RedisResult<T> {
    match tokio::time::timeout(CALL_TIMEOUT, fut).await {
        Ok(result) => result,
        Err(_) => {
            Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "Redis call timed out").into())
        }
    }
}

/// Logs the moment Redis stops or starts answering (not every failed call of an outage).
fn record<T>(healthy: &AtomicBool, result: &RedisResult<T>) {
    let ok = result.is_ok();
    if healthy.swap(ok, Ordering::Relaxed) != ok {
        match result {
            Ok(_) => tracing::info!("Redis reachable again; shared locks and rate limits resumed"),
            Err(e) => tracing::warn!(
                error = %e,
                "Redis unreachable; serving degraded (locks fail open, rate limits per instance)"
            ),
        }
    }
}
