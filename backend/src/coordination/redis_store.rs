//! Redis-backed locks (`SET NX PX`, compare-and-delete) and rate limits, on one node or a
//! Redis Cluster.
//!
//! The connection is made lazily and remade in the background, and every call is bounded
//! by [`CALL_TIMEOUT`], so an unreachable Redis neither stops a start nor holds a request.
//! On a cluster every command and script touches one slot: callers tag related keys alike
//! (see [`super::key`]) and calls over several keys are split by slot here.
use std::{
    future::Future,
    sync::atomic::{AtomicBool, Ordering},
    sync::Arc,
    time::Duration,
};

use anyhow::Context;
use redis::{
    aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig},
    cluster::{ClusterClientBuilder, ClusterConfig},
    cluster_async::ClusterConnection,
    cluster_routing::Slot,
    Cmd, Pipeline, RedisFuture, RedisResult, Script, Value,
};

use super::{MemoryCoordinator, RateDecision};

/// The longest any request waits for Redis before carrying on without it.
pub const CALL_TIMEOUT: Duration = Duration::from_millis(500);
/// How often the background probe checks an unreachable (or reachable) Redis.
const PROBE_INTERVAL: Duration = Duration::from_secs(2);

/// How the instance reaches Redis: one node, or a cluster through any of its seed nodes.
#[derive(Clone)]
enum Connection {
    /// Multiplexed and remade in the background after a loss.
    Node(ConnectionManager),
    /// Keeps a connection per node, follows MOVED/ASK redirections and refreshes its slot
    /// map when a replica is promoted.
    Cluster(ClusterConnection),
}

// Every command below is written once against this; only routing differs.
impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Connection::Node(c) => c.req_packed_command(cmd),
            Connection::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Connection::Node(c) => c.req_packed_commands(pipeline, offset, count),
            Connection::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Connection::Node(c) => c.get_db(),
            Connection::Cluster(c) => c.get_db(),
        }
    }
}

impl Connection {
    /// Splits `keys` (full names) into groups that one command may touch together: all of
    /// them on one node, one group per hash slot on a cluster (in order of first use).
    fn by_slot(&self, keys: &[String]) -> Vec<Vec<usize>> {
        match self {
            Connection::Node(_) => vec![(0..keys.len()).collect()],
            Connection::Cluster(_) => slot_groups(keys),
        }
    }
}

/// Indexes of `keys` grouped by Redis Cluster hash slot, groups in order of first use.
fn slot_groups(keys: &[String]) -> Vec<Vec<usize>> {
    // A call names a handful of keys: a scan beats a map.
    let mut groups: Vec<(Slot, Vec<usize>)> = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        let slot = Slot::for_key(key);
        match groups.iter_mut().find(|(s, _)| *s == slot) {
            Some((_, members)) => members.push(i),
            None => groups.push((slot, vec![i])),
        }
    }
    groups.into_iter().map(|(_, members)| members).collect()
}

/// One multiplexed, auto-reconnecting connection shared by every request.
pub struct RedisCoordinator {
    conn: Connection,
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

/// GCRA over each of KEYS, each holding its theoretical arrival time (ms, Redis clock),
/// all against one reading of the clock. ARGV: per key, its emission interval and burst (ms,
/// count). Returns, per key, {allowed, remaining, reset_ms, retry_ms}, flattened. Each key
/// is decided on its own, as separate calls would; the caller groups KEYS by hash slot, so
/// it runs on Redis Cluster.
const GCRA: &str = r#"
local t = redis.call("TIME")
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local out = {}
for i, key in ipairs(KEYS) do
  local interval = tonumber(ARGV[2 * i - 1])
  local tolerance = interval * tonumber(ARGV[2 * i])
  local tat = tonumber(redis.call("GET", key)) or now
  if tat < now then tat = now end
  local new_tat = tat + interval
  local allow_at = new_tat - tolerance
  if allow_at > now then
    table.insert(out, 0); table.insert(out, 0)
    table.insert(out, tat - now); table.insert(out, allow_at - now)
  else
    redis.call("SET", key, new_tat, "PX", new_tat - now)
    table.insert(out, 1)
    table.insert(out, math.floor((tolerance - (new_tat - now)) / interval))
    table.insert(out, new_tat - now); table.insert(out, 0)
  end
end
return out
"#;

impl RedisCoordinator {
    /// A coordinator that connects in the background: an unreachable Redis at start-up is
    /// a degraded service (locks fail open, rate limits per instance), not a failed start.
    /// `url` is one node's URL, or a comma-separated list of cluster seed nodes; a list, or
    /// `cluster` with one seed, selects cluster mode. Only a malformed URL or prefix is an
    /// error. Must be called inside a Tokio runtime.
    pub fn connect_lazily(url: &str, cluster: bool, prefix: &str) -> anyhow::Result<Self> {
        // A brace in the prefix would become every key's hash tag: one slot for everything.
        anyhow::ensure!(
            !prefix.contains(['{', '}']),
            "REDIS_PREFIX must not contain braces: they would put every key in one cluster slot"
        );
        let nodes: Vec<&str> = url
            .split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .collect();
        anyhow::ensure!(!nodes.is_empty(), "REDIS_URL names no Redis node");
        let conn = if cluster || nodes.len() > 1 {
            let client = ClusterClientBuilder::new(nodes)
                // Redirections and a promotion are retried quickly; CALL_TIMEOUT bounds all.
                .retries(3)
                .min_retry_wait(10)
                .max_retry_wait(100)
                .build()
                .context("REDIS_URL is not a valid list of Redis Cluster nodes")?;
            let config = ClusterConfig::new()
                .set_connection_timeout(Duration::from_millis(300))
                .set_response_timeout(Duration::from_millis(300));
            Connection::Cluster(client.get_pending_async_connection_with_config(config))
        } else {
            let client =
                redis::Client::open(nodes[0]).context("REDIS_URL is not a valid Redis URL")?;
            let config = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(Duration::from_millis(300)))
                .set_response_timeout(Some(Duration::from_millis(300)))
                .set_number_of_retries(1)
                .set_min_delay(Duration::from_millis(50))
                .set_max_delay(Duration::from_millis(200));
            Connection::Node(ConnectionManager::new_lazy_with_config(client, config)?)
        };
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

    /// Runs `batch` once per group of `keys` that one command may touch together (one
    /// group on a single node, one per slot on a cluster), concurrently, and returns the
    /// answers in the order of `keys`. `batch` answers for the indexes it is given.
    async fn per_slot<T, Fut>(
        &self,
        keys: &[String],
        batch: impl Fn(Connection, Vec<usize>) -> Fut,
    ) -> RedisResult<Vec<T>>
    where
        Fut: Future<Output = RedisResult<Vec<T>>>,
    {
        let groups = self.conn.by_slot(keys);
        let answers = futures::future::try_join_all(
            groups.iter().map(|g| batch(self.conn.clone(), g.clone())),
        )
        .await?;
        let mut slots: Vec<Option<T>> = keys.iter().map(|_| None).collect();
        for (group, values) in groups.iter().zip(answers) {
            for (i, v) in group.iter().zip(values) {
                slots[*i] = Some(v);
            }
        }
        slots
            .into_iter()
            .map(|v| {
                v.ok_or_else(|| {
                    std::io::Error::other("Redis answered fewer replies than commands").into()
                })
            })
            .collect()
    }

    pub(super) async fn set_nx_many(
        &self,
        keys: &[&str],
        tokens: &[String],
        ttl: Duration,
    ) -> redis::RedisResult<Vec<bool>> {
        let keys: Vec<String> = keys.iter().map(|k| self.key(k)).collect();
        let ttl = ttl.as_millis() as u64;
        let taken = self.per_slot(&keys, |mut conn, group| {
            let mut pipe = redis::pipe();
            for &i in &group {
                pipe.cmd("SET")
                    .arg(&keys[i])
                    .arg(&tokens[i])
                    .arg("NX")
                    .arg("PX")
                    .arg(ttl);
            }
            async move {
                let replies: Vec<Option<String>> = pipe.query_async(&mut conn).await?;
                Ok(replies.into_iter().map(|r| r.is_some()).collect())
            }
        });
        self.call("lock", taken).await
    }

    pub(super) async fn del_if_many(&self, guards: &[super::LockGuard]) -> redis::RedisResult<()> {
        let keys: Vec<String> = guards.iter().map(|g| self.key(&g.key)).collect();
        let deleted = self.per_slot(&keys, |mut conn, group| {
            let mut invocation = self.del_if_owner_many.prepare_invoke();
            for &i in &group {
                invocation.key(&keys[i]).arg(&guards[i].token);
            }
            async move {
                let _: i64 = invocation.invoke_async(&mut conn).await?;
                Ok(vec![(); group.len()])
            }
        });
        self.call("unlock", deleted).await?;
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

    /// The GCRA decision of every `(key, quota)`, in order: one script call per hash slot
    /// (one round trip on a single node), each key decided on its own.
    pub(super) async fn gcra_many(
        &self,
        limits: &[(&str, super::Quota)],
    ) -> redis::RedisResult<Vec<super::GcraDecision>> {
        // On a single node `per_slot` makes one call even for no keys.
        if limits.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = limits.iter().map(|(k, _)| self.key(k)).collect();
        let decided = self.per_slot(&keys, |mut conn, group| {
            let mut invocation = self.gcra.prepare_invoke();
            for &i in &group {
                let quota = limits[i].1;
                invocation
                    .key(&keys[i])
                    .arg(quota.interval().as_millis() as u64)
                    .arg(quota.limit);
            }
            async move {
                let flat: Vec<i64> = invocation.invoke_async(&mut conn).await?;
                if flat.len() != group.len() * 4 {
                    return Err(
                        std::io::Error::other("the rate limit script answered short").into(),
                    );
                }
                let ms = |v: i64| Duration::from_millis(v.max(0) as u64);
                Ok(flat
                    .chunks_exact(4)
                    .map(|d| super::GcraDecision {
                        allowed: d[0] == 1,
                        remaining: d[1].max(0) as u32,
                        reset: ms(d[2]),
                        retry_after: ms(d[3]),
                    })
                    .collect())
            }
        });
        self.call("rate_limit", decided).await
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
        let keys: Vec<String> = keys.iter().map(|k| self.key(k)).collect();
        let ttls = self.per_slot(&keys, |mut conn, group| {
            let mut pipe = redis::pipe();
            for &i in &group {
                pipe.cmd("PTTL").arg(&keys[i]);
            }
            async move { pipe.query_async::<Vec<i64>>(&mut conn).await }
        });
        let ttls = self.call("lockout", ttls).await?;
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

#[cfg(test)]
mod tests {
    use redis::cluster_routing::Slot;

    use super::*;
    use crate::coordination::key;

    #[test]
    fn keys_with_one_tag_go_in_one_group_and_other_tags_in_their_own() {
        let keys: Vec<String> = [
            key("idem", "mer_a:test", "payment:1"),
            key("guess", "a:127.0.0.1", "block"),
            key("lock", "mer_a:test", "order:2"),
            key("guess", "k:key_1", "block"),
        ]
        .iter()
        .map(|k| format!("sp:{k}"))
        .collect();
        let groups = slot_groups(&keys);
        assert_eq!(groups, vec![vec![0, 2], vec![1], vec![3]]);
        // Every group, thus every command or script run for it, touches one slot.
        for group in &groups {
            let first = Slot::for_key(&keys[group[0]]);
            assert!(group.iter().all(|i| Slot::for_key(&keys[*i]) == first));
        }
    }

    #[test]
    fn the_prefix_stays_outside_the_hash_tag() {
        let a = format!("sp:{}", key("rl", "pay:a:127.0.0.1", ""));
        let b = format!("other:deploy:{}", key("rl", "pay:a:127.0.0.1", ""));
        assert_eq!(a, "sp:rl:{pay:a:127.0.0.1}");
        assert_eq!(Slot::for_key(&a), Slot::for_key(&b));
    }

    #[tokio::test]
    async fn a_prefix_with_braces_or_an_empty_node_list_is_refused() {
        let err = RedisCoordinator::connect_lazily("redis://127.0.0.1:1", false, "{sp}:")
            .err()
            .expect("refused");
        assert!(err.to_string().contains("REDIS_PREFIX"), "{err}");
        assert!(RedisCoordinator::connect_lazily(" , ", false, "sp:").is_err());
    }

    /// Against the Redis the tests use (`TEST_REDIS_URL`, else 127.0.0.1:6379).
    #[tokio::test]
    async fn one_gcra_call_decides_each_limit_on_its_own() {
        let url =
            std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
        let prefix = format!("sp:unit:{}:", uuid::Uuid::new_v4().simple());
        let redis = RedisCoordinator::connect_lazily(&url, false, &prefix).unwrap();
        let minute = Duration::from_secs(60);
        let one = super::super::Quota::new(1, minute);
        let three = super::super::Quota::new(3, minute);
        let (a, b) = (key("rl", "a", ""), key("rl", "b", ""));

        let first = redis.gcra_many(&[(&a, one), (&b, three)]).await.unwrap();
        assert!(first[0].allowed && first[1].allowed, "{first:?}");
        assert_eq!((first[0].remaining, first[1].remaining), (0, 2));

        // `a` is spent and refused with a wait; `b`, in the same call, is still counted.
        let second = redis.gcra_many(&[(&a, one), (&b, three)]).await.unwrap();
        assert!(!second[0].allowed, "{second:?}");
        assert!(
            second[0].retry_after > Duration::from_secs(50),
            "{second:?}"
        );
        assert!(second[1].allowed && second[1].remaining == 1, "{second:?}");

        // A refusal counts nothing: `b` has its last request left.
        let third = redis.gcra_many(&[(&b, three)]).await.unwrap();
        assert!(third[0].allowed && third[0].remaining == 0, "{third:?}");
        let fourth = redis.gcra_many(&[(&b, three), (&a, one)]).await.unwrap();
        assert!(!fourth[0].allowed && !fourth[1].allowed, "{fourth:?}");
    }

    #[tokio::test]
    async fn a_list_of_nodes_or_the_cluster_switch_selects_cluster_mode() {
        let two = "redis://127.0.0.1:1,redis://127.0.0.1:2";
        let cluster = RedisCoordinator::connect_lazily(two, false, "sp:").unwrap();
        assert!(matches!(cluster.conn, Connection::Cluster(_)));
        let one = RedisCoordinator::connect_lazily("redis://127.0.0.1:1", true, "sp:").unwrap();
        assert!(matches!(one.conn, Connection::Cluster(_)));
        let node = RedisCoordinator::connect_lazily("redis://127.0.0.1:1", false, "sp:").unwrap();
        assert!(matches!(node.conn, Connection::Node(_)));
    }
}
