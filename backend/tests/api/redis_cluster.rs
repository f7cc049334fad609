//! On a Redis Cluster: payments take their locks without a cross-slot error, and go on,
//! losing nothing, while the master holding their locks dies and its replica takes over.
//!
//! Needs the cluster that `scripts/test-redis-cluster` starts (it sets TEST_REDIS_URL to the
//! cluster's seeds and TEST_REDIS_CLUSTER_PORTS to its six ports), hence `#[ignore]` here.
use std::{
    process::Command,
    time::{Duration, Instant},
};

use serde_json::json;

use crate::{
    helpers::{body, free_port, TestApp},
    metrics::{scrape, TOKEN},
};

fn cluster_ports() -> Vec<u16> {
    std::env::var("TEST_REDIS_CLUSTER_PORTS")
        .expect("TEST_REDIS_CLUSTER_PORTS (run scripts/test-redis-cluster)")
        .split_whitespace()
        .map(|p| p.parse().expect("a port"))
        .collect()
}

/// `redis-cli -p port args...`, its output (empty when the node is gone).
fn redis_cli(port: u16, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .arg("-p")
        .arg(port.to_string())
        .args(args)
        .output()
        .expect("redis-cli on PATH");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// The port of the healthy master serving `slot`, as the first answering node sees it.
fn master_of(slot: u16, ports: &[u16]) -> Option<u16> {
    let nodes = ports
        .iter()
        .map(|p| redis_cli(*p, &["cluster", "nodes"]))
        .find(|n| !n.is_empty())?;
    nodes.lines().find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let flags = fields.get(2)?;
        if !flags.split(',').any(|f| f == "master") || flags.contains("fail") {
            return None;
        }
        let serves = fields[8..].iter().any(|range| {
            let (lo, hi) = range.split_once('-').unwrap_or((range, range));
            matches!((lo.parse::<u16>(), hi.parse::<u16>()), (Ok(lo), Ok(hi)) if (lo..=hi).contains(&slot))
        });
        let port = fields.get(1)?.split('@').next()?.rsplit(':').next()?;
        serves.then(|| port.parse().ok()).flatten()
    })
}

fn cluster_state_ok(ports: &[u16]) -> bool {
    ports
        .iter()
        .map(|p| redis_cli(*p, &["cluster", "info"]))
        .filter(|info| !info.is_empty())
        .all(|info| info.contains("cluster_state:ok"))
}

/// Every Redis call the server counted as failed or timed out, all operations together.
async fn redis_errors(app: &TestApp, metrics_port: u16) -> f64 {
    let (_, parsed) = scrape(&app.client, metrics_port).await;
    parsed
        .samples
        .iter()
        .filter(|s| s.metric == "superpayment_redis_errors_total")
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Untyped(v) => v,
            _ => 0.0,
        })
        .sum()
}

async fn coordination_status(app: &TestApp) -> String {
    let r = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 200, "Redis never makes an instance unready");
    let v = body(r).await;
    v["coordination"]["status"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

async fn wait_for_coordination_ok(app: &TestApp) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while coordination_status(app).await != "ok" {
        assert!(
            Instant::now() < deadline,
            "coordination never became ok\n{}",
            app.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Pays 1.00 from `code` under a fresh order id and Idempotency-Key; every payment must
/// succeed: a lost Redis lock only costs the shortcut, the database decides.
async fn pay_one(app: &TestApp, pk: &str, code: &str, n: usize) {
    let key = uuid::Uuid::new_v4().to_string();
    let r = app
        .pay(pk, &format!("ORDER_{n}"), "1.00", &[code], Some(&key))
        .await;
    let status = r.status();
    assert_eq!(status, 201, "payment {n}: {}", body(r).await);
}

#[tokio::test]
#[ignore = "needs the Redis Cluster of scripts/test-redis-cluster"]
async fn payments_go_on_when_a_cluster_master_dies_and_nothing_is_lost() {
    let ports = cluster_ports();
    let metrics_port = free_port();
    let metrics_bind = format!("127.0.0.1:{metrics_port}");
    let app = TestApp::spawn_with(&[
        ("METRICS_BIND", metrics_bind.as_str()),
        ("METRICS_TOKEN", TOKEN),
    ])
    .await;
    let prefix = app.redis_prefix.clone().expect("a Redis prefix");
    wait_for_coordination_ok(&app).await;
    let m = app.create_merchant(250).await;
    let code = app.issue_one("1000.00").await;

    // Healthy cluster: the lock pair of each payment (key and order, one slot) and the
    // voucher check's counter go through without a single failed call.
    let errors_before = redis_errors(&app, metrics_port).await;
    let mut paid = 0;
    for _ in 0..20 {
        pay_one(&app, &m.pk, &code, paid).await;
        paid += 1;
    }
    let r = app
        .post("/api/vouchers/check", &m.pk, &json!({"code": code}), None)
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        redis_errors(&app, metrics_port).await,
        errors_before,
        "no Redis call failed on the cluster\n{}",
        app.logs()
    );
    let stored: Vec<String> = ports
        .iter()
        .flat_map(|p| {
            redis_cli(*p, &["--scan", "--pattern", &format!("{prefix}*")])
                .lines()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(
        stored.iter().any(|k| k.contains("rl:{check:")),
        "the check's counter lives in the cluster: {stored:?}"
    );

    // The master holding this merchant's locks dies mid-run.
    let tag = format!("{{{}:test}}", m.id);
    let slot: u16 = redis_cli(ports[0], &["cluster", "keyslot", &tag])
        .parse()
        .expect("a slot number");
    let victim = master_of(slot, &ports).expect("a master for the slot");
    let victim_id = redis_cli(victim, &["cluster", "myid"]);
    assert!(
        !redis_cli(victim, &["cluster", "replicas", &victim_id]).is_empty(),
        "the master of slot {slot} has a replica to take over"
    );
    let pid = redis_cli(victim, &["info", "server"])
        .lines()
        .find_map(|l| l.strip_prefix("process_id:"))
        .expect("the master's process id")
        .trim()
        .to_owned();
    let killed = Command::new("kill").args(["-9", &pid]).status().unwrap();
    assert!(killed.success());
    let survivors: Vec<u16> = ports.iter().copied().filter(|p| *p != victim).collect();
    let killed_at = Instant::now();

    // Payments go on while the replica is promoted.
    let mut during = 0;
    let promoted = loop {
        pay_one(&app, &m.pk, &code, paid).await;
        paid += 1;
        during += 1;
        // Until the survivors agree it has failed, they still name the dead master.
        match master_of(slot, &survivors) {
            Some(new) if new != victim && cluster_state_ok(&survivors) => break new,
            _ => {}
        }
        assert!(
            killed_at.elapsed() < Duration::from_secs(60),
            "no replica took over slot {slot}"
        );
    };
    println!(
        "master :{victim} killed; replica :{promoted} promoted after {:.1} s, {during} payments meanwhile",
        killed_at.elapsed().as_secs_f64()
    );

    // The client follows the new topology: Redis is shared again, with no failed call.
    wait_for_coordination_ok(&app).await;
    let errors_after_failover = redis_errors(&app, metrics_port).await;
    for _ in 0..20 {
        pay_one(&app, &m.pk, &code, paid).await;
        paid += 1;
    }
    assert_eq!(
        redis_errors(&app, metrics_port).await,
        errors_after_failover,
        "locks are taken on the promoted master without failures\n{}",
        app.logs()
    );

    // Nothing lost, nothing doubled: one succeeded transaction per payment answered 201,
    // the voucher debited by exactly their sum, the ledger balanced.
    assert_eq!(app.count("transactions").await, paid as i64);
    let r = app
        .post("/api/vouchers/check", &m.pk, &json!({"code": code}), None)
        .await;
    let check = body(r).await;
    assert_eq!(check["balance"], format!("{}.00", 1000 - paid));
    let (ok, report) = app.audit();
    assert!(ok, "audit: {report}");
}
