//! Webhooks: signatures the official library accepts, retries, 410, redelivery, SSRF
//! refusals, and workers that crash or run side by side.
use std::collections::HashMap;

use sea_orm::{ConnectionTrait, Statement};
use serde_json::{json, Value};

use crate::{
    helpers::{body, is_sqlite, TestApp},
    webhook_support::{
        get, set_endpoint, unused_port, verify_with_library, wait_for_event, Receiver,
        WorkerProcess, FAST_WORKER_ENV,
    },
};

async fn pay(app: &TestApp, pk: &str, order: &str, code: &str) -> String {
    let r = app.pay(pk, order, "10.00", &[code], None).await;
    assert_eq!(r.status(), 201);
    body(r).await["id"].as_str().unwrap().to_owned()
}

async fn event_of(app: &TestApp, sk: &str, transaction_id: &str, kind: &str) -> String {
    let (status, list) = get(app, &format!("/api/events?type={kind}&limit=100"), sk).await;
    assert_eq!(status, 200);
    list["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["transaction_id"] == transaction_id)
        .unwrap_or_else(|| panic!("no {kind} event for {transaction_id}: {list}"))["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn delivered(event: &Value) -> bool {
    event["deliveries"]
        .as_array()
        .is_some_and(|d| d.iter().any(|d| d["status"] == "succeeded"))
}

async fn rotate(app: &TestApp, sk: &str, overlap: u64) -> Value {
    let r = app
        .post(
            "/api/webhook-endpoint/rotate-secret",
            sk,
            &json!({"overlap_seconds": overlap}),
            None,
        )
        .await;
    assert_eq!(r.status(), 200);
    body(r).await
}

#[tokio::test]
async fn signatures_verify_with_the_official_library_also_during_a_secret_rotation() {
    let app = TestApp::spawn_with(&FAST_WORKER_ENV).await;
    let m = app.create_merchant(250).await;
    let code = app.issue_one("500.00").await;
    let receiver = Receiver::start().await;
    let endpoint = set_endpoint(&app, &m.sk, &receiver.url).await;
    let first_secret = endpoint["secret"].as_str().unwrap().to_owned();
    assert!(first_secret.starts_with("whsec_"));
    assert_eq!(endpoint["status"], "enabled");

    let txn = pay(&app, &m.pk, "ORDER_1", &code).await;
    let hits = receiver
        .wait_for("the payment webhook", |h| !h.is_empty())
        .await;
    let hit = &hits[0];
    let payload = hit.json();
    assert_eq!(payload["type"], "payment.succeeded");
    assert_eq!(payload["data"]["transaction"]["id"], txn.as_str());
    assert_eq!(hit.id(), payload["id"].as_str().unwrap());
    assert!(hit.headers["webhook-signature"].starts_with("v1,"));

    let mut tampered = hit.message();
    tampered["body"] = json!(hit.body.replace("10.00", "1.00"));
    let mut stale = hit.message();
    let old = hit.headers["webhook-timestamp"].parse::<i64>().unwrap() - 600;
    stale["headers"]["webhook-timestamp"] = json!(old.to_string());
    let verdicts = verify_with_library(&first_secret, &[hit.message(), tampered, stale]).await;
    assert_eq!(verdicts[0], Ok(payload["id"].as_str().unwrap().to_owned()));
    assert_eq!(verdicts[1], Err("No matching signature found".into()));
    assert_eq!(verdicts[2], Err("Message timestamp too old".into()));

    // Rotation with an overlap: both secrets sign, receivers on either keep working.
    let rotated = rotate(&app, &m.sk, 3600).await;
    let second_secret = rotated["secret"].as_str().unwrap().to_owned();
    assert_ne!(second_secret, first_secret);
    assert!(rotated["previous_secret_expires_at"].is_string());
    pay(&app, &m.pk, "ORDER_2", &code).await;
    let hits = receiver
        .wait_for("the second webhook", |h| h.len() >= 2)
        .await;
    let during = &hits[1];
    assert_eq!(during.headers["webhook-signature"].split(' ').count(), 2);
    for secret in [&first_secret, &second_secret] {
        let v = verify_with_library(secret, &[during.message()]).await;
        assert!(v[0].is_ok(), "{v:?}");
    }

    // Ending the overlap: only the newest secret verifies.
    let third_secret = rotate(&app, &m.sk, 0).await["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    pay(&app, &m.pk, "ORDER_3", &code).await;
    let hits = receiver
        .wait_for("the third webhook", |h| h.len() >= 3)
        .await;
    let after = &hits[2];
    assert_eq!(after.headers["webhook-signature"].split(' ').count(), 1);
    assert!(verify_with_library(&third_secret, &[after.message()]).await[0].is_ok());
    for secret in [&first_secret, &second_secret] {
        assert!(verify_with_library(secret, &[after.message()]).await[0].is_err());
    }

    let (_, read) = get(&app, "/api/webhook-endpoint", &m.sk).await;
    assert!(
        read.get("secret").is_none(),
        "the secret is not shown again"
    );
    let logs = app.logs();
    for secret in [&first_secret, &second_secret, &third_secret] {
        assert!(!logs.contains(&secret[6..]), "log leaks a webhook secret");
    }
}

#[tokio::test]
async fn a_receiver_that_is_down_is_retried_and_gets_the_event_once_it_is_back() {
    let app = TestApp::spawn_with(&FAST_WORKER_ENV).await;
    let m = app.create_merchant(250).await;
    let code = app.issue_one("100.00").await;
    let port = unused_port();
    set_endpoint(&app, &m.sk, &format!("http://127.0.0.1:{port}/hooks")).await;
    let txn = pay(&app, &m.pk, "ORDER_1", &code).await;
    let event = event_of(&app, &m.sk, &txn, "payment.succeeded").await;

    let failing = wait_for_event(&app, &m.sk, &event, "two failed attempts", |e| {
        e["attempts"].as_array().is_some_and(|a| a.len() >= 2)
    })
    .await;
    for a in failing["attempts"].as_array().unwrap() {
        assert_eq!(a["outcome"], "failed");
        assert!(a["status_code"].is_null());
        assert!(a["error"].is_string());
    }
    assert_eq!(failing["deliveries"][0]["status"], "pending");

    let receiver = Receiver::start_on_port(port).await;
    let done = wait_for_event(&app, &m.sk, &event, "the delivery", delivered).await;
    let attempts = done["attempts"].as_array().unwrap();
    let numbers: Vec<i64> = attempts
        .iter()
        .map(|a| a["attempt_number"].as_i64().unwrap())
        .collect();
    assert_eq!(numbers, (1..=attempts.len() as i64).collect::<Vec<_>>());
    assert_eq!(attempts.last().unwrap()["outcome"], "succeeded");
    assert_eq!(attempts.last().unwrap()["status_code"], 200);
    assert_eq!(attempts.last().unwrap()["response_excerpt"], "received");
    let hits = receiver.hits();
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].id(), event);
}

#[tokio::test]
async fn retries_stop_after_the_schedule_and_a_410_disables_the_endpoint() {
    let app = TestApp::spawn_with(&FAST_WORKER_ENV).await;
    let m = app.create_merchant(250).await;
    let code = app.issue_one("100.00").await;
    let receiver = Receiver::start().await;
    set_endpoint(&app, &m.sk, &receiver.url).await;

    // 500s: every attempt of the (fast) schedule, then the delivery is given up.
    receiver.answer(500);
    let txn = pay(&app, &m.pk, "ORDER_1", &code).await;
    let event = event_of(&app, &m.sk, &txn, "payment.succeeded").await;
    let failed = wait_for_event(&app, &m.sk, &event, "retries exhausted", |e| {
        e["deliveries"][0]["status"] == "failed"
    })
    .await;
    assert_eq!(
        failed["attempts"].as_array().unwrap().len(),
        5,
        "1 + 4 retries"
    );
    assert_eq!(failed["attempts"][0]["status_code"], 500);

    // 410 Gone: one attempt, the endpoint is disabled, nothing more is sent.
    receiver.answer(410);
    let txn = pay(&app, &m.pk, "ORDER_2", &code).await;
    let gone = event_of(&app, &m.sk, &txn, "payment.succeeded").await;
    let ev = wait_for_event(&app, &m.sk, &gone, "the 410", |e| {
        e["deliveries"][0]["status"] == "failed"
    })
    .await;
    assert_eq!(ev["attempts"].as_array().unwrap().len(), 1);
    assert_eq!(ev["attempts"][0]["status_code"], 410);
    let (_, endpoint) = get(&app, "/api/webhook-endpoint", &m.sk).await;
    assert_eq!(endpoint["status"], "disabled");
    assert_eq!(endpoint["disabled_reason"], "gone");
    let hits_after_410 = receiver.hits().len();

    // A later event of this merchant gets no delivery; another merchant's event, written
    // after it and delivered, proves the relay has been past it.
    let later = pay(&app, &m.pk, "ORDER_3", &code).await;
    let other = app.create_merchant(250).await;
    let other_receiver = Receiver::start().await;
    set_endpoint(&app, &other.sk, &other_receiver.url).await;
    let other_code = app.issue_one("50.00").await;
    pay(&app, &other.pk, "ORDER_X", &other_code).await;
    other_receiver
        .wait_for("the marker event", |h| !h.is_empty())
        .await;
    let later_event = event_of(&app, &m.sk, &later, "payment.succeeded").await;
    let (_, ev) = get(&app, &format!("/api/events/{later_event}"), &m.sk).await;
    assert_eq!(ev["deliveries"], json!([]));
    assert_eq!(receiver.hits().len(), hits_after_410);
    let r = app
        .post("/api/webhook-endpoint/test", &m.sk, &json!({}), None)
        .await;
    assert_eq!(r.status(), 400);

    // Setting the URL again re-enables it.
    receiver.answer(200);
    let endpoint = set_endpoint(&app, &m.sk, &receiver.url).await;
    assert_eq!(endpoint["status"], "enabled");
}

#[tokio::test]
async fn a_test_event_and_a_redelivery_arrive_with_the_same_event_id() {
    let app = TestApp::spawn_with(&FAST_WORKER_ENV).await;
    let m = app.create_merchant(250).await;
    let receiver = Receiver::start().await;
    set_endpoint(&app, &m.sk, &receiver.url).await;
    let r = app
        .post("/api/webhook-endpoint/test", &m.sk, &json!({}), None)
        .await;
    assert_eq!(r.status(), 202);
    let event = body(r).await["event_id"].as_str().unwrap().to_owned();
    let hits = receiver.wait_for("the test event", |h| !h.is_empty()).await;
    assert_eq!(hits[0].json()["type"], "webhook.test");
    assert_eq!(hits[0].id(), event);

    let r = app
        .post(
            &format!("/api/events/{event}/redeliver"),
            &m.sk,
            &json!({}),
            None,
        )
        .await;
    assert_eq!(r.status(), 202);
    let hits = receiver.wait_for("the redelivery", |h| h.len() >= 2).await;
    assert_eq!(hits[1].id(), event);
    assert_eq!(hits[1].body, hits[0].body);
    let ev = wait_for_event(&app, &m.sk, &event, "two deliveries", |e| {
        e["deliveries"].as_array().unwrap().len() == 2
            && e["deliveries"]
                .as_array()
                .unwrap()
                .iter()
                .all(|d| d["status"] == "succeeded")
    })
    .await;
    assert_eq!(ev["attempts"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn live_endpoints_on_internal_addresses_are_refused_at_save_and_at_delivery() {
    let app = TestApp::spawn_with(&FAST_WORKER_ENV).await;
    let live = app.create_merchant_in("live", 250).await;
    let receiver = Receiver::start().await;
    let port = receiver
        .url
        .split(':')
        .nth(2)
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    for (url, code) in [
        (
            format!("https://127.0.0.1:{port}/webhooks"),
            "webhook_url_address_not_allowed",
        ),
        (
            "https://10.0.0.1/webhooks".into(),
            "webhook_url_address_not_allowed",
        ),
        (
            "https://[::1]/webhooks".into(),
            "webhook_url_address_not_allowed",
        ),
        (
            "https://localhost/webhooks".into(),
            "webhook_url_address_not_allowed",
        ),
        (receiver.url.clone(), "webhook_url_https_required"),
    ] {
        let r = app
            .client
            .put(app.url("/api/webhook-endpoint"))
            .bearer_auth(&live.sk)
            .json(&json!({"url": url}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{url}");
        assert_eq!(body(r).await["error"]["code"], code, "{url}");
    }

    // An endpoint that passed the check when saved but points inward at delivery time (a
    // DNS answer that changed): a test-mode endpoint's row is turned into a live one here.
    let test_side = app.create_merchant(250).await;
    set_endpoint(&app, &test_side.sk, &receiver.url).await;
    let db = app.db().await;
    let be = db.get_database_backend();
    db.execute(Statement::from_string(
        be,
        format!(
            "UPDATE webhook_endpoints SET merchant_id = '{}', mode = 'live', url = 'https://127.0.0.1:{port}/webhooks'",
            live.id
        ),
    ))
    .await
    .unwrap();
    let code = app
        .issue("EUR", "100.00", 1, json!({"mode": "live"}))
        .await
        .remove(0);
    let txn = pay(&app, &live.pk, "LIVE_1", &code).await;
    let event = event_of(&app, &live.sk, &txn, "payment.succeeded").await;
    let ev = wait_for_event(&app, &live.sk, &event, "a refused attempt", |e| {
        !e["attempts"].as_array().unwrap().is_empty()
    })
    .await;
    assert_eq!(ev["attempts"][0]["outcome"], "refused");
    assert!(ev["attempts"][0]["error"]
        .as_str()
        .unwrap()
        .contains("not allowed"));

    db.execute(Statement::from_string(
        be,
        "UPDATE webhook_endpoints SET url = 'https://10.0.0.1/webhooks'".to_owned(),
    ))
    .await
    .unwrap();
    let ev = wait_for_event(&app, &live.sk, &event, "a second refused attempt", |e| {
        e["attempts"].as_array().unwrap().len() >= 2
    })
    .await;
    assert_eq!(ev["attempts"][1]["outcome"], "refused");
    assert!(
        receiver.hits().is_empty(),
        "nothing reached the internal address"
    );
}

async fn pay_many(app: &TestApp, pk: &str, n: usize) -> Vec<String> {
    let code = app.issue_one("10000.00").await;
    let mut ids = Vec::new();
    for i in 0..n {
        ids.push(pay(app, pk, &format!("ORDER_{i}"), &code).await);
    }
    ids
}

async fn wait_all_delivered(app: &TestApp, sk: &str, n: usize) -> Vec<Value> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let (_, list) = get(app, "/api/events?type=payment.succeeded&limit=100", sk).await;
        let events = list["data"].as_array().unwrap().clone();
        if events.len() == n && events.iter().all(delivered) {
            return events;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out: {} of {n} events delivered",
            events.iter().filter(|e| delivered(e)).count()
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_worker_killed_mid_delivery_loses_no_event() {
    let app = TestApp::spawn_with(&[
        ("SERVE_WORKER", "off"),
        ("WEBHOOK_LOOPBACK_FOR_TESTS", "true"),
    ])
    .await;
    let m = app.create_merchant(250).await;
    let receiver = Receiver::start().await;
    receiver.delay(300);
    set_endpoint(&app, &m.sk, &receiver.url).await;
    let txns = pay_many(&app, &m.pk, 30).await;

    // A 1 s timeout makes a lease of 2 s: the killed worker's claims come back quickly.
    let env = [("WEBHOOK_TIMEOUT", "1s"), ("WEBHOOK_CONCURRENCY", "4")];
    let mut first = WorkerProcess::start(&app, &env);
    receiver.wait_for("some deliveries", |h| h.len() >= 6).await;
    first.kill_9();
    let before_restart = receiver.hits().len();
    assert!(before_restart < 30, "the worker was killed mid-way");

    receiver.delay(0);
    let _second = WorkerProcess::start(&app, &env);
    wait_all_delivered(&app, &m.sk, txns.len()).await;
    let hits = receiver.hits();
    let mut ids: Vec<&str> = hits.iter().map(|h| h.id()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(
        ids.len(),
        30,
        "every event arrived (duplicates allowed: at least once)"
    );
}

#[tokio::test]
async fn two_workers_never_deliver_the_same_attempt_twice() {
    if is_sqlite() {
        eprintln!(
            "skipped on SQLite: FOR UPDATE SKIP LOCKED between two workers is PostgreSQL behaviour"
        );
        return;
    }
    let app = TestApp::spawn_with(&[
        ("SERVE_WORKER", "off"),
        ("WEBHOOK_LOOPBACK_FOR_TESTS", "true"),
    ])
    .await;
    let m = app.create_merchant(250).await;
    let receiver = Receiver::start().await;
    set_endpoint(&app, &m.sk, &receiver.url).await;
    let txns = pay_many(&app, &m.pk, 60).await;
    let env = [("WEBHOOK_CONCURRENCY", "8")];
    let _a = WorkerProcess::start(&app, &env);
    let _b = WorkerProcess::start(&app, &env);
    wait_all_delivered(&app, &m.sk, txns.len()).await;
    let mut per_id: HashMap<String, usize> = HashMap::new();
    for h in receiver.hits() {
        *per_id.entry(h.id().to_owned()).or_default() += 1;
    }
    assert_eq!(per_id.len(), 60);
    assert!(
        per_id.values().all(|&n| n == 1),
        "an event was delivered twice: {per_id:?}"
    );
    assert_eq!(app.count("webhook_attempts").await, 60);
    assert_eq!(app.count("webhook_deliveries").await, 60);
}

#[tokio::test]
async fn test_mode_loopback_endpoints_are_for_the_embedded_default_only() {
    let app = TestApp::spawn().await;
    let m = app.create_merchant(250).await;
    let r = app
        .client
        .put(app.url("/api/webhook-endpoint"))
        .bearer_auth(&m.sk)
        .json(&json!({"url": format!("http://127.0.0.1:{}/webhooks", unused_port())}))
        .send()
        .await
        .unwrap();
    if is_sqlite() {
        // The embedded default is a developer's own machine.
        assert_eq!(r.status(), 200);
    } else {
        // A shared deployment: the merchant's "localhost" would be the server itself.
        assert_eq!(r.status(), 400);
        assert_eq!(
            body(r).await["error"]["code"],
            "webhook_url_address_not_allowed"
        );
    }
}

#[tokio::test]
async fn a_late_attempt_record_never_undoes_what_another_worker_recorded() {
    use superpayment_backend::store::{
        entities::{
            webhook_attempt::{self, AttemptOutcome},
            webhook_delivery::DeliveryStatus,
        },
        webhooks::{dispatch_events, record_attempt, DeliveryUpdate},
    };
    let app = TestApp::spawn_with(&[
        ("SERVE_WORKER", "off"),
        ("WEBHOOK_LOOPBACK_FOR_TESTS", "true"),
    ])
    .await;
    let m = app.create_merchant(250).await;
    let receiver = Receiver::start().await;
    set_endpoint(&app, &m.sk, &receiver.url).await;
    let code = app.issue_one("50.00").await;
    let txn = pay(&app, &m.pk, "ORDER_LATE", &code).await;
    let event = event_of(&app, &m.sk, &txn, "payment.succeeded").await;

    // Claim the delivery as a worker would; then two workers record attempt 1: the one
    // that claimed it after the first one's lease ran out, and the first one, late.
    let db = app.db().await;
    let now = time::OffsetDateTime::now_utc();
    let claimed = dispatch_events(&db, now, now + time::Duration::seconds(30), 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    let attempt = |outcome: AttemptOutcome, status_code: Option<i32>| webhook_attempt::Model {
        id: 0,
        delivery_id: claimed[0],
        event_id: event.clone(),
        attempt_number: 1,
        url: receiver.url.clone(),
        started_at: now,
        duration_ms: 1,
        status_code,
        outcome,
        error: None,
        response_excerpt: None,
    };
    let succeeded = DeliveryUpdate {
        status: DeliveryStatus::Succeeded,
        next_attempt_at: None,
    };
    assert!(
        record_attempt(
            &db,
            attempt(AttemptOutcome::Succeeded, Some(200)),
            succeeded,
            None
        )
        .await
        .unwrap()
        .moved
    );
    let retry = DeliveryUpdate {
        status: DeliveryStatus::Pending,
        next_attempt_at: Some(now),
    };
    assert!(
        !record_attempt(&db, attempt(AttemptOutcome::Failed, Some(500)), retry, None)
            .await
            .unwrap()
            .moved,
        "the late record must not move the delivery"
    );

    let (_, ev) = get(&app, &format!("/api/events/{event}"), &m.sk).await;
    assert_eq!(ev["deliveries"][0]["status"], "succeeded", "{ev}");
    assert_eq!(ev["deliveries"][0]["attempt_count"], 1);
    assert_eq!(
        ev["attempts"].as_array().unwrap().len(),
        2,
        "both attempts are on record"
    );
}

/// A payment's transaction sends no NOTIFY (one inside it would hold PostgreSQL's global
/// notification lock until its commit is flushed, queueing every payment's commit behind
/// the one before): the server sends it after the commit, and a worker in another process
/// that never polls still hears of the payment at once.
#[tokio::test]
async fn a_worker_elsewhere_hears_of_a_payment_from_the_notify_sent_after_its_commit() {
    if is_sqlite() {
        eprintln!("skipped on SQLite: LISTEN/NOTIFY is PostgreSQL's");
        return;
    }
    let app = TestApp::spawn_with(&[
        ("SERVE_WORKER", "off"),
        ("WEBHOOK_LOOPBACK_FOR_TESTS", "true"),
    ])
    .await;
    let triggers = app
        .scalar("SELECT COUNT(*) FROM pg_trigger WHERE tgrelid = 'events'::regclass AND NOT tgisinternal")
        .await;
    assert_eq!(
        triggers, 0,
        "no trigger notifies inside the event's transaction"
    );

    let m = app.create_merchant(250).await;
    let receiver = Receiver::start().await;
    set_endpoint(&app, &m.sk, &receiver.url).await;
    let _worker = WorkerProcess::start(&app, &[("WEBHOOK_POLL_INTERVAL", "1h")]);
    // The worker's first look finds nothing; from then on only a NOTIFY wakes it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let listening = app
            .scalar("SELECT COUNT(*) FROM pg_stat_activity WHERE query LIKE 'LISTEN%superpayment_outbox%'")
            .await;
        if listening > 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the worker never listened"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let code = app.issue_one("50.00").await;
    let txn = pay(&app, &m.pk, "o-1", &code).await;
    let hits = receiver
        .wait_for("the payment's webhook", |h| !h.is_empty())
        .await;
    assert_eq!(hits[0].json()["data"]["transaction"]["id"], txn.as_str());
}
