//! Redis is a shortcut, never a dependency: an instance without it starts, stays ready and
//! keeps its rate limits in process, and picks Redis up again when it comes back.
use std::{
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::{json, Value};

use crate::helpers::{body, free_port, TestApp};

async fn readiness(app: &TestApp) -> (u16, Value) {
    let r = app.client.get(app.url("/readyz")).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

/// Waits until /readyz reports `coordination.status == want` (the server's probe runs
/// every couple of seconds).
async fn wait_for_coordination(app: &TestApp, want: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, v) = readiness(app).await;
        if v["coordination"]["status"] == want {
            assert_eq!(status, 200, "{v}");
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "coordination never became {want}: {v}\n{}",
            app.logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn an_unreachable_redis_leaves_the_server_ready_paying_and_rate_limited_in_process() {
    let redis_url = format!("redis://127.0.0.1:{}", free_port());
    ready_paying_and_limited_without(&redis_url).await;
}

#[tokio::test]
async fn an_unreachable_redis_cluster_leaves_the_server_ready_paying_and_rate_limited_in_process() {
    let seeds = format!(
        "redis://127.0.0.1:{},redis://127.0.0.1:{}",
        free_port(),
        free_port()
    );
    ready_paying_and_limited_without(&seeds).await;
}

/// With `redis_url` naming nothing that answers: ready, degraded, paying, and the voucher
/// check still limited (in process).
async fn ready_paying_and_limited_without(redis_url: &str) {
    let app = TestApp::spawn_with(&[("REDIS_URL", redis_url), ("CHECK_RATE_LIMIT", "3")]).await;
    let (status, ready) = readiness(&app).await;
    assert_eq!(status, 200, "{ready}");
    assert_eq!(ready["status"], "ready");
    assert_eq!(ready["database"], "ok");
    assert_eq!(
        ready["coordination"],
        json!({"kind": "redis", "status": "degraded"})
    );

    let m = app.create_merchant(250).await;
    let code = app.issue_one("50.00").await;
    let r = app
        .pay(
            &m.pk,
            "ORDER_NO_REDIS",
            "20.00",
            &[&code],
            Some(&uuid::Uuid::new_v4().to_string()),
        )
        .await;
    assert_eq!(r.status(), 201);
    assert_eq!(body(r).await["status"], "succeeded");

    for _ in 0..3 {
        let r = app
            .post("/api/vouchers/check", &m.pk, &json!({"code": code}), None)
            .await;
        assert_eq!(r.status(), 200);
    }
    let r = app
        .post("/api/vouchers/check", &m.pk, &json!({"code": code}), None)
        .await;
    assert_eq!(r.status(), 429, "the in-process fallback still limits");
    assert!(r.headers().contains_key("retry-after"));
}

/// A throwaway `redis-server` on its own port, without persistence.
struct RedisProcess(Child);

impl RedisProcess {
    fn start(port: u16) -> RedisProcess {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server on PATH");
        RedisProcess(child)
    }

    fn stop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for RedisProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

fn redis_keys(port: u16, pattern: &str) -> Vec<String> {
    let out = Command::new("redis-cli")
        .args(["-p", &port.to_string(), "--scan", "--pattern", pattern])
        .output()
        .expect("redis-cli on PATH");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn a_redis_that_comes_back_is_used_again() {
    let port = free_port();
    let mut redis = RedisProcess::start(port);
    let redis_url = format!("redis://127.0.0.1:{port}");
    let prefix = format!("sp:back:{}:", uuid::Uuid::new_v4().simple());
    let app = TestApp::spawn_with(&[
        ("REDIS_URL", redis_url.as_str()),
        ("REDIS_PREFIX", prefix.as_str()),
    ])
    .await;
    wait_for_coordination(&app, "ok").await;
    let m = app.create_merchant(250).await;
    let code = app.issue_one("50.00").await;

    redis.stop();
    wait_for_coordination(&app, "degraded").await;
    let r = app
        .post("/api/vouchers/check", &m.pk, &json!({"code": code}), None)
        .await;
    assert_eq!(r.status(), 200, "checks go on while Redis is away");

    let _redis = RedisProcess::start(port);
    wait_for_coordination(&app, "ok").await;
    let r = app
        .post("/api/vouchers/check", &m.pk, &json!({"code": code}), None)
        .await;
    assert_eq!(r.status(), 200);
    let keys = redis_keys(port, &format!("{prefix}*"));
    assert!(
        !keys.is_empty(),
        "the rate limit is counted in the restarted Redis again"
    );
}
