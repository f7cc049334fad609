//! PostgreSQL down and restarting, with a real private cluster that the tests stop and
//! start: money calls answer `503 service_unavailable` with Retry-After while it is down,
//! a client retrying with its Idempotency-Key pays exactly once, and the worker stops on
//! SIGTERM even while the database is unreachable.
//!
//! Ignored by default: they need a cluster of their own. `scripts/test-db-outage` makes one
//! (port 5472), exports `OUTAGE_ADMIN_URL` (its `postgres` database) and `OUTAGE_PGCTL` (a
//! command taking `stop`, `start` or `restart`), runs them one at a time, and drops the
//! cluster.
use std::{
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use reqwest::Response;
use sea_orm::{ConnectionTrait, Database, Statement};
use serde_json::{json, Value};

use crate::helpers::{body, free_port, retry_after, TestApp, ENCRYPTION_KEY, PEPPER};

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: run scripts/test-db-outage"))
}

/// Runs the cluster's control command (`stop`, `start`, `restart`).
fn pgctl(action: &str) {
    let status = Command::new(env("OUTAGE_PGCTL"))
        .arg(action)
        .status()
        .expect("running OUTAGE_PGCTL");
    assert!(status.success(), "pgctl {action}");
}

/// A fresh, migrated database on the private cluster (left for the script to drop with
/// the cluster).
async fn outage_database() -> String {
    pgctl("start");
    let admin_url = env("OUTAGE_ADMIN_URL");
    let name = format!("sp_outage_{}", uuid::Uuid::new_v4().simple());
    let admin = Database::connect(&admin_url).await.unwrap();
    admin
        .execute(Statement::from_string(
            admin.get_database_backend(),
            format!("CREATE DATABASE {name}"),
        ))
        .await
        .unwrap();
    admin.close().await.ok();
    let url = format!("{}/{name}", admin_url.rsplit_once('/').unwrap().0);
    let status = Command::new(env!("CARGO_BIN_EXE_superpayment"))
        .arg("migrate")
        .env("DATABASE_URL", &url)
        .env("VOUCHER_PEPPER", PEPPER)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "migrating {name}");
    url
}

fn payment(order: &str, amount: &str, code: &str) -> Value {
    json!({"order_id": order, "amount": amount, "currency": "EUR", "vouchers": [{"code": code}]})
}

/// The documented retryable answer: 503, `service_unavailable`, Retry-After.
async fn assert_unavailable(r: Response) -> u64 {
    assert_eq!(r.status(), 503);
    let wait = retry_after(&r);
    assert!(wait > 0);
    let v = body(r).await;
    assert_eq!(v["error"]["code"], "service_unavailable", "{v}");
    assert_eq!(v["error"]["retry_after"], wait);
    wait
}

#[tokio::test]
#[ignore = "needs the private PostgreSQL cluster of scripts/test-db-outage"]
async fn payments_get_503_with_retry_after_while_postgresql_is_down_and_pay_exactly_once_after() {
    let url = outage_database().await;
    let app = TestApp::spawn_on(&url, &[]).await;
    let m = app.create_merchant(0).await;
    let code = app.issue_one("1000.00").await;

    // Down: the answer is the documented retryable one, and it comes (the pool's acquire
    // timeout bounds the wait; the client's own timeout is a minute).
    pgctl("stop");
    let first = payment("DOWN-1", "10.00", &code);
    let r = app
        .post("/api/process-payment/", &m.pk, &first, Some("key-down-1"))
        .await;
    assert_unavailable(r).await;
    let r = app
        .post("/api/vouchers/check", &m.pk, &json!({"code": code}), None)
        .await;
    assert_unavailable(r).await;

    // Back: the same key pays once, and again replays that payment.
    pgctl("start");
    let (id, _) = pay_with(&app.client, &app.address, &m.pk, &first, "key-down-1").await;
    let r = app
        .post("/api/process-payment/", &m.pk, &first, Some("key-down-1"))
        .await;
    assert_eq!(r.status(), 201);
    assert_eq!(r.headers()["idempotent-replayed"], "true");
    assert_eq!(body(r).await["id"], id.as_str());

    // Restarted under load: shoppers paying one order after another, each retrying its
    // key, while PostgreSQL restarts (its connections terminated) in the middle.
    let shoppers = 6;
    let orders = 5;
    let mut tasks = Vec::new();
    for s in 0..shoppers {
        let code = app.issue_one("100.00").await;
        let address = app.address.clone();
        let pk = m.pk.clone();
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .unwrap();
            let mut ids = Vec::new();
            for o in 0..orders {
                let request = payment(&format!("S{s}-O{o}"), "7.00", &code);
                let key = format!("key-s{s}-o{o}");
                ids.push(pay_with(&client, &address, &pk, &request, &key).await);
            }
            (code, ids)
        }));
    }
    let restart = Command::new(env("OUTAGE_PGCTL"))
        .arg("restart")
        .status()
        .unwrap();
    assert!(restart.success());
    let mut all_ids = vec![id];
    let mut saw_503 = 0;
    for task in tasks {
        let (code, ids) = task.await.unwrap();
        saw_503 += ids.iter().map(|(_, n)| n).sum::<u32>();
        all_ids.extend(ids.into_iter().map(|(id, _)| id));
        // 100.00 - 5 x 7.00, each payment exactly once.
        assert_eq!(balance_as_retried(&app, &m.pk, &code).await, "65.00");
    }
    let distinct: std::collections::BTreeSet<_> = all_ids.iter().collect();
    assert_eq!(distinct.len(), all_ids.len(), "one transaction per payment");
    assert_eq!(app.count("transactions").await, all_ids.len() as i64);
    assert_eq!(balance_as_retried(&app, &m.pk, &code).await, "990.00");
    let (ok, report) = app.audit();
    assert!(ok, "{report}");
    // How many answers the restart turned into 503s depends on its timing; that none was
    // a 500 and none was lost or doubled is the point.
    eprintln!("503 answers during the restart: {saw_503}");
    assert!(
        !app.logs().contains("\"internal error\""),
        "no opaque 500 while PostgreSQL restarted"
    );
}

/// A voucher's balance as a client that retries the documented `503` reads it. A pooled
/// connection given back less than `store::ALIVE_BYPASS` before the restart goes out
/// without a ping (docs/operations.md, "When the primary fails") and its statement is
/// answered 503, like any lost connection; anything but 200 or that 503 fails the test.
async fn balance_as_retried(app: &TestApp, pk: &str, code: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let r = app
            .post("/api/vouchers/check", pk, &json!({"code": code}), None)
            .await;
        if r.status() != 503 {
            assert_eq!(r.status(), 200);
            return body(r).await["balance"].as_str().unwrap().to_owned();
        }
        let wait = assert_unavailable(r).await;
        assert!(Instant::now() < deadline, "still 503 after a minute");
        tokio::time::sleep(Duration::from_secs(wait)).await;
    }
}

/// Pays as the widget retries: the same Idempotency-Key until an answer that is not
/// `503`, waiting Retry-After between attempts. Returns the transaction id and how many
/// 503s came first. Anything but 201 or 503 fails the test (never an opaque 500).
async fn pay_with(
    client: &reqwest::Client,
    address: &str,
    pk: &str,
    request: &Value,
    key: &str,
) -> (String, u32) {
    let mut unavailable = 0;
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let r = client
            .post(format!("{address}/api/process-payment/"))
            .bearer_auth(pk)
            .header("Idempotency-Key", key)
            .json(request)
            .send()
            .await
            .unwrap();
        match r.status().as_u16() {
            201 => {
                return (
                    body(r).await["id"].as_str().unwrap().to_owned(),
                    unavailable,
                )
            }
            503 => {
                unavailable += 1;
                let wait = assert_unavailable(r).await;
                assert!(Instant::now() < deadline, "still 503 after 3 minutes");
                tokio::time::sleep(Duration::from_secs(wait)).await;
            }
            other => panic!("answer {other} to a retried payment: {}", body(r).await),
        }
    }
}

/// SIGTERM, then the exit status, failing the test past `bound`: the documented bound on
/// a worker's shutdown, far above what it takes, not a measure of speed.
async fn exit_within(child: &mut Child, bound: Duration) -> std::process::ExitStatus {
    let sent = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let deadline = Instant::now() + bound;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            panic!("still running {bound:?} after SIGTERM");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
#[ignore = "needs the private PostgreSQL cluster of scripts/test-db-outage"]
async fn the_worker_stops_on_sigterm_while_postgresql_is_down() {
    let url = outage_database().await;
    let port = free_port();
    let mut worker = Command::new(env!("CARGO_BIN_EXE_superpayment"))
        .arg("worker")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", &url)
        .env("VOUCHER_PEPPER", PEPPER)
        .env("ENCRYPTION_KEY", ENCRYPTION_KEY)
        .env("LOG_FORMAT", "json")
        .env("WEBHOOK_POLL_INTERVAL", "50ms")
        .env("WEBHOOK_SHUTDOWN_GRACE", "1s")
        .env("METRICS_BIND", format!("127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Running: its metrics listener answers.
    let client = reqwest::Client::new();
    let metrics = format!("http://127.0.0.1:{port}/metrics");
    let deadline = Instant::now() + Duration::from_secs(60);
    while client.get(&metrics).send().await.is_err() {
        assert!(Instant::now() < deadline, "the worker did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    pgctl("stop");
    // Its loops are now waiting on a database that refuses connections; it stops anyway,
    // within the grace (1 s) plus the bound on handing claims back (5 s), well inside 15 s.
    let status = exit_within(&mut worker, Duration::from_secs(15)).await;
    pgctl("start");
    assert!(status.success(), "the worker exits cleanly: {status}");
}
