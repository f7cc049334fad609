//! Graceful shutdown with real processes: SIGTERM while a webhook delivery is in flight to a
//! slow receiver. The process exits, and the delivery is either recorded (it finished within
//! the grace) or released (due again at once, no attempt recorded), never left claimed
//! until its lease runs out.
use sea_orm::EntityTrait;
use superpayment_backend::store::entities::webhook_delivery::{self, DeliveryStatus};
use time::OffsetDateTime;

use crate::{
    helpers::{body, free_port, Merchant, TestApp},
    metrics::{scrape, value},
    webhook_support::{set_endpoint, Receiver, WorkerProcess, FAST_WORKER_ENV},
};

/// A long attempt timeout makes a lease of two minutes: a claim left behind would stay
/// claimed far longer than any of these tests waits.
const LONG_TIMEOUT: (&str, &str) = ("WEBHOOK_TIMEOUT", "60s");
/// The receiver holds each request this long: longer than any grace here.
const STUCK_MS: u64 = 120_000;

/// A merchant whose receiver holds each request `delay_ms`, and one payment to it.
async fn paid_once(app: &TestApp, delay_ms: u64) -> (Merchant, Receiver) {
    let m = app.create_merchant(250).await;
    let receiver = Receiver::start().await;
    receiver.delay(delay_ms);
    set_endpoint(app, &m.sk, &receiver.url).await;
    let code = app.issue_one("10.00").await;
    let r = app.pay(&m.pk, "ORDER_1", "10.00", &[&code], None).await;
    assert_eq!(r.status(), 201, "{}", body(r).await);
    (m, receiver)
}

async fn the_delivery(app: &TestApp) -> webhook_delivery::Model {
    let db = app.db().await;
    let all = webhook_delivery::Entity::find().all(&db).await.unwrap();
    db.close().await.ok();
    assert_eq!(all.len(), 1, "one delivery: {all:?}");
    all.into_iter().next().unwrap()
}

/// Pending, unattempted, and due now rather than at the end of a two-minute lease.
fn assert_released(d: &webhook_delivery::Model) {
    assert_eq!(d.status, DeliveryStatus::Pending, "{d:?}");
    assert_eq!(
        d.attempt_count, 0,
        "no attempt recorded for a cut-short delivery"
    );
    let due = d
        .next_attempt_at
        .expect("a pending delivery has a due time");
    assert!(
        due <= OffsetDateTime::now_utc(),
        "the claim was released, not left to its lease: due {due}"
    );
}

#[tokio::test]
async fn sigterm_releases_a_worker_delivery_stuck_on_a_slow_receiver_and_the_worker_exits() {
    let app = TestApp::spawn_with(&[
        ("SERVE_WORKER", "off"),
        ("WEBHOOK_LOOPBACK_FOR_TESTS", "true"),
    ])
    .await;
    let (_m, receiver) = paid_once(&app, STUCK_MS).await;
    let port = free_port();
    let bind = format!("127.0.0.1:{port}");
    let mut worker = WorkerProcess::start(
        &app,
        &[
            LONG_TIMEOUT,
            ("WEBHOOK_SHUTDOWN_GRACE", "500ms"),
            ("METRICS_BIND", &bind),
            ("METRICS_TOKEN", crate::metrics::TOKEN),
        ],
    );
    receiver
        .wait_for("the delivery in flight", |h| h.len() == 1)
        .await;
    // The worker process reports its own metrics.
    let (_, s) = scrape(&app.client, port).await;
    assert_eq!(
        value(&s, "superpayment_webhook_deliveries_in_flight", &[]),
        Some(1.0)
    );

    let status = worker.terminate().await;
    assert!(status.success(), "the worker exits cleanly: {status}");
    assert_released(&the_delivery(&app).await);
    assert_eq!(app.count("webhook_attempts").await, 0);

    // Another worker takes it up at once (its lease would have lasted two minutes).
    receiver.delay(0);
    let _next = WorkerProcess::start(&app, &[LONG_TIMEOUT]);
    let hits = receiver
        .wait_for("the redelivery", |h| h.len() == 2 && h[0].id() == h[1].id())
        .await;
    assert_eq!(hits.len(), 2);
}

#[tokio::test]
async fn sigterm_lets_a_delivery_in_flight_finish_within_the_grace() {
    let app = TestApp::spawn_with(&[
        ("SERVE_WORKER", "off"),
        ("WEBHOOK_LOOPBACK_FOR_TESTS", "true"),
    ])
    .await;
    let (_m, receiver) = paid_once(&app, 1_000).await;
    let mut worker = WorkerProcess::start(&app, &[LONG_TIMEOUT, ("WEBHOOK_SHUTDOWN_GRACE", "60s")]);
    receiver
        .wait_for("the delivery in flight", |h| h.len() == 1)
        .await;
    let status = worker.terminate().await;
    assert!(status.success(), "the worker exits cleanly: {status}");
    let d = the_delivery(&app).await;
    assert_eq!(d.status, DeliveryStatus::Succeeded, "{d:?}");
    assert_eq!(d.attempt_count, 1);
    assert_eq!(app.count("webhook_attempts").await, 1);
}

#[tokio::test]
async fn sigterm_stops_serve_and_its_in_process_worker_releases_the_delivery_in_flight() {
    let mut env = FAST_WORKER_ENV.to_vec();
    env.push(LONG_TIMEOUT);
    env.push(("WEBHOOK_SHUTDOWN_GRACE", "500ms"));
    let mut app = TestApp::spawn_with(&env).await;
    let (_m, receiver) = paid_once(&app, STUCK_MS).await;
    receiver
        .wait_for("the delivery in flight", |h| h.len() == 1)
        .await;
    let status = app.terminate().await;
    assert!(status.success(), "serve exits cleanly: {status}");
    assert_released(&the_delivery(&app).await);
    let logs = app.logs();
    assert!(
        logs.contains("its claim was released"),
        "the release is logged:\n{logs}"
    );
}

/// Waits until `cond` holds, polling; fails the test after a minute.
async fn until<F: std::future::Future<Output = bool>>(what: &str, mut cond: impl FnMut() -> F) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !cond().await {
        assert!(
            std::time::Instant::now() < deadline,
            "waited a minute for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// PostgreSQL only: the payment is held in flight by a row lock the test takes on the
/// vouchers, which SQLite (one writer, no row locks) cannot express.
#[tokio::test]
async fn sigterm_lets_a_payment_in_flight_finish_and_then_serve_exits() {
    use sea_orm::{ConnectionTrait, Statement, TransactionTrait};
    if crate::helpers::is_sqlite() {
        return;
    }
    let mut app = TestApp::spawn_with(&[("SERVE_WORKER", "off")]).await;
    let m = app.create_merchant(0).await;
    let code = app.issue_one("50.00").await;

    // The voucher is locked: the payment reaches its database transaction and waits there.
    let db = app.db().await;
    let lock = db.begin().await.unwrap();
    lock.execute(Statement::from_string(
        lock.get_database_backend(),
        "SELECT id FROM vouchers FOR UPDATE",
    ))
    .await
    .unwrap();
    let client = app.client.clone();
    let url = app.url("/api/process-payment/");
    let pk = m.pk.clone();
    let code_sent = code.clone();
    let payment = tokio::spawn(async move {
        client
            .post(url)
            .bearer_auth(pk)
            .header("Idempotency-Key", "in-flight-1")
            .json(
                &serde_json::json!({"order_id": "IN_FLIGHT", "amount": "20.00",
                "currency": "EUR", "vouchers": [{"code": code_sent}]}),
            )
            .send()
            .await
    });
    let watcher = app.db().await;
    until("the payment waiting on the voucher's lock", || async {
        let row = watcher
            .query_one(Statement::from_string(
                watcher.get_database_backend(),
                "SELECT COUNT(*) AS n FROM pg_stat_activity \
                 WHERE datname = current_database() AND wait_event_type = 'Lock'",
            ))
            .await
            .unwrap()
            .unwrap();
        row.try_get::<i64>("", "n").unwrap() > 0
    })
    .await;

    app.sigterm();
    let address = app.address.trim_start_matches("http://").to_owned();
    until("the listener to close", || async {
        tokio::net::TcpStream::connect(&address).await.is_err()
    })
    .await;
    // Shutting down, no longer accepting: the payment in flight is finished, not cut.
    lock.commit().await.unwrap();
    let r = payment.await.unwrap().expect("the payment is answered");
    assert_eq!(r.status(), 201, "{}", body(r).await);
    let status = app.wait_exit().await;
    assert!(status.success(), "serve exits cleanly: {status}");
    assert_eq!(app.count("transactions").await, 1);
    watcher.close().await.ok();
    db.close().await.ok();
    assert!(app.logs().contains("shutdown requested"));
}
