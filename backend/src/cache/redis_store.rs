//! Redis-backed locks (`SET NX PX`, compare-and-delete) and fixed-window rate limits.
use std::time::Duration;

use redis::{aio::ConnectionManager, Script};

use super::RateDecision;

/// One multiplexed, auto-reconnecting connection shared by every request.
#[derive(Clone)]
pub struct RedisCoordinator {
    conn: ConnectionManager,
    prefix: String,
    // Built once: a Script hashes its source (SHA-1) when created.
    del_if_owner: Script,
    del_if_owner_many: Script,
    hit: Script,
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

impl RedisCoordinator {
    /// Connects (failing fast when Redis is unreachable at start-up).
    pub async fn connect(url: &str, prefix: &str) -> anyhow::Result<Self> {
        let client = redis::Client::open(url)?;
        let conn = tokio::time::timeout(Duration::from_secs(5), ConnectionManager::new(client))
            .await
            .map_err(|_| anyhow::anyhow!("timed out connecting to Redis"))??;
        Ok(Self {
            conn,
            prefix: prefix.to_owned(),
            del_if_owner: Script::new(DEL_IF_OWNER),
            del_if_owner_many: Script::new(DEL_IF_OWNER_MANY),
            hit: Script::new(HIT),
        })
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
        let reply: Option<String> = redis::cmd("SET")
            .arg(self.key(key))
            .arg(token)
            .arg("NX")
            .arg("PX")
            .arg(ttl.as_millis() as u64)
            .query_async(&mut conn)
            .await?;
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
        let replies: Vec<Option<String>> = pipe.query_async(&mut conn).await?;
        Ok(replies.into_iter().map(|r| r.is_some()).collect())
    }

    pub(super) async fn del_if_many(&self, guards: &[super::LockGuard]) -> redis::RedisResult<()> {
        let mut conn = self.conn.clone();
        let mut invocation = self.del_if_owner_many.prepare_invoke();
        for g in guards {
            invocation.key(self.key(&g.key)).arg(&g.token);
        }
        let _: i64 = invocation.invoke_async(&mut conn).await?;
        Ok(())
    }

    pub(super) async fn del_if(&self, key: &str, token: &str) -> redis::RedisResult<()> {
        let mut conn = self.conn.clone();
        let _: i64 = self
            .del_if_owner
            .key(self.key(key))
            .arg(token)
            .invoke_async(&mut conn)
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
        let (count, pttl): (u64, i64) = self
            .hit
            .key(self.key(key))
            .arg(window.as_millis() as u64)
            .invoke_async(&mut conn)
            .await?;
        Ok(if count > u64::from(limit) {
            RateDecision::Limited {
                retry_after: Duration::from_millis(pttl.max(1) as u64),
            }
        } else {
            RateDecision::Allowed
        })
    }

    pub(super) async fn ping(&self) -> anyhow::Result<()> {
        let mut conn = self.conn.clone();
        let _: String = tokio::time::timeout(
            Duration::from_secs(2),
            redis::cmd("PING").query_async(&mut conn),
        )
        .await
        .map_err(|_| anyhow::anyhow!("Redis PING timed out"))??;
        Ok(())
    }
}
