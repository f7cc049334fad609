//! Notification emails: queued with the fact they tell about, sent by the worker over real
//! SMTP (aiosmtpd), retried while the server is down, never queued without an address.
use std::time::{Duration, Instant};

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use serde_json::{json, Value};
use superpayment_backend::store::entities::{email, email_attempt};

use crate::{
    helpers::{body, TestApp},
    smtp_support::{late_port, shared, unique_address, SmtpServer},
    webhook_support::{get, set_endpoint, Receiver, FAST_WORKER_ENV},
};

/// A worker inside `serve` that sends through `smtp_url` and retries fast.
fn email_env(smtp_url: &str) -> Vec<(&'static str, String)> {
    let mut env: Vec<(&'static str, String)> = FAST_WORKER_ENV
        .iter()
        .map(|(k, v)| (*k, (*v).to_owned()))
        .collect();
    env.push(("SMTP_URL", smtp_url.to_owned()));
    env.push((
        "SMTP_FROM",
        "SuperPayment Tests <notify@superpayment.test>".into(),
    ));
    env.push(("EMAIL_POLL_INTERVAL", "50ms".into()));
    // Many short retries: the server that is down at first is up long before they end.
    env.push(("EMAIL_RETRY_SCHEDULE", vec!["200ms"; 100].join(",")));
    env
}

async fn spawn(env: &[(&'static str, String)]) -> TestApp {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    TestApp::spawn_with(&env).await
}

fn set_notify_email(app: &TestApp, merchant: &str, address: &str) {
    let (ok, out) = app.cli(&[
        "admin",
        "set-notify-email",
        "--merchant",
        merchant,
        "--email",
        address,
    ]);
    assert!(ok, "set-notify-email: {out}");
}

async fn create_key(app: &TestApp, sk: &str, kind: &str) -> Value {
    let r = app
        .post("/api/keys", sk, &json!({"kind": kind}), None)
        .await;
    assert_eq!(r.status(), 201);
    body(r).await
}

async fn emails_of(app: &TestApp, merchant: &str) -> Vec<email::Model> {
    let db = app.db().await;
    let rows = email::Entity::find()
        .filter(email::Column::MerchantId.eq(merchant))
        .order_by_asc(email::Column::Id)
        .all(&db)
        .await
        .unwrap();
    db.close().await.ok();
    rows
}

async fn attempts_of(app: &TestApp, email_id: i64) -> Vec<email_attempt::Model> {
    let db = app.db().await;
    let rows = email_attempt::Entity::find()
        .filter(email_attempt::Column::EmailId.eq(email_id))
        .order_by_asc(email_attempt::Column::Id)
        .all(&db)
        .await
        .unwrap();
    db.close().await.ok();
    rows
}

/// Waits (up to 30 s) until the merchant's emails satisfy `pred`.
async fn wait_for_emails(
    app: &TestApp,
    merchant: &str,
    what: &str,
    pred: impl Fn(&[email::Model]) -> bool,
) -> Vec<email::Model> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let rows = emails_of(app, merchant).await;
        if pred(&rows) {
            return rows;
        }
        if Instant::now() >= deadline {
            let mut attempts = Vec::new();
            for r in &rows {
                attempts.extend(attempts_of(app, r.id).await);
            }
            panic!("{what}: {rows:?} {attempts:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_new_api_key_sends_exactly_one_email_without_the_key() {
    let smtp = shared().await;
    let app = spawn(&email_env(&smtp.url())).await;
    let m = app.create_merchant(250).await;
    let address = unique_address("keys");
    set_notify_email(&app, &m.id, &address);

    let created = create_key(&app, &m.sk, "secret").await;
    let secret = created["secret"].as_str().unwrap();
    let key = &created["key"];

    let got = smtp.wait_for(&address, 1).await;
    assert_eq!(got.len(), 1, "{got:?}");
    let mail = &got[0];
    assert_eq!(mail["subject"], "A new test API key was created");
    assert_eq!(mail["to"], address);
    assert_eq!(
        mail["from"],
        "SuperPayment Tests <notify@superpayment.test>"
    );
    let shown = format!(
        "{}...{}",
        key["prefix"].as_str().unwrap(),
        key["last4"].as_str().unwrap()
    );
    assert!(mail["text"].as_str().unwrap().contains(&shown), "{mail}");
    assert!(mail["html"]
        .as_str()
        .unwrap()
        .contains(key["id"].as_str().unwrap()));
    for part in ["raw", "text", "html"] {
        assert!(
            !mail[part].as_str().unwrap().contains(secret),
            "the key itself is in the email's {part}"
        );
    }
    // Neither the outbox row nor the logs hold it either.
    let rows = emails_of(&app, &m.id).await;
    assert_eq!(rows.len(), 1, "one email for one key");
    assert_eq!(rows[0].status.as_str(), "sent");
    assert!(rows[0].sent_at.is_some());
    assert!(!rows[0].params.to_string().contains(secret));
    assert!(!app.logs().contains(secret));
    let attempts = attempts_of(&app, rows[0].id).await;
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].outcome, "sent");

    // A roll creates a key too: one more email, and still exactly one per key.
    let r = app
        .post(
            &format!("/api/keys/{}/roll", key["id"].as_str().unwrap()),
            &m.sk,
            &json!({}),
            None,
        )
        .await;
    assert_eq!(r.status(), 201);
    let rolled = body(r).await;
    let got = smtp.wait_for(&address, 2).await;
    assert_eq!(got.len(), 2);
    let rolled_id = rolled["key"]["id"].as_str().unwrap();
    assert!(
        got.iter()
            .any(|m| m["text"].as_str().unwrap().contains(rolled_id)),
        "no email names the rolled-in key {rolled_id}"
    );
    assert_eq!(emails_of(&app, &m.id).await.len(), 2);
}

#[tokio::test]
async fn a_merchant_without_a_notification_address_owner_or_admin_gets_no_email_queued() {
    let smtp = shared().await;
    let app = spawn(&email_env(&smtp.url())).await;
    let m = app.create_merchant(250).await;
    create_key(&app, &m.sk, "publishable").await;
    // Queued in the key's own transaction or not at all: the answer is final.
    assert_eq!(app.count("emails").await, 0);

    // The operator sets an address, then clears it: from then on none again.
    let address = unique_address("cleared");
    set_notify_email(&app, &m.id, &address);
    create_key(&app, &m.sk, "publishable").await;
    assert_eq!(app.count("emails").await, 1);
    let (ok, out) = app.cli(&["admin", "set-notify-email", "--merchant", &m.id, "--clear"]);
    assert!(ok, "{out}");
    create_key(&app, &m.sk, "publishable").await;
    assert_eq!(app.count("emails").await, 1);
    assert!(app
        .logs()
        .contains("no notification address, owner or admin: email not queued"));
}

#[tokio::test]
async fn set_notify_email_refuses_what_is_not_an_address_and_unknown_merchants() {
    let app = TestApp::spawn().await;
    let m = app.create_merchant(250).await;
    for bad in [
        "not-an-address",
        "Ops <ops@shop.example>",
        "ops@shop.example\r\nBcc: x@y",
    ] {
        let (ok, out) = app.cli(&[
            "admin",
            "set-notify-email",
            "--merchant",
            &m.id,
            "--email",
            bad,
        ]);
        assert!(!ok, "{bad:?} accepted: {out}");
    }
    let (ok, _) = app.cli(&[
        "admin",
        "set-notify-email",
        "--merchant",
        "mer_nosuch",
        "--email",
        "ops@shop.example",
    ]);
    assert!(!ok, "unknown merchant accepted");
    assert!(emails_of(&app, &m.id).await.is_empty());
}

#[tokio::test]
async fn a_webhook_endpoint_disabled_by_a_410_emails_the_merchant() {
    let smtp = shared().await;
    let app = spawn(&email_env(&smtp.url())).await;
    let m = app.create_merchant(250).await;
    let address = unique_address("webhooks");
    set_notify_email(&app, &m.id, &address);
    let receiver = Receiver::start().await;
    receiver.answer(410);
    set_endpoint(&app, &m.sk, &receiver.url).await;
    let code = app.issue_one("50.00").await;
    let r = app.pay(&m.pk, "ORDER_GONE", "10.00", &[&code], None).await;
    assert_eq!(r.status(), 201);

    let got = smtp.wait_for(&address, 1).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["subject"], "Your test webhook endpoint was disabled");
    let text = got[0]["text"].as_str().unwrap();
    assert!(text.contains(&receiver.url), "{text}");
    assert!(text.contains("410 Gone"), "{text}");
    let (_, endpoint) = get(&app, "/api/webhook-endpoint", &m.sk).await;
    assert_eq!(endpoint["status"], "disabled");
    let rows = emails_of(&app, &m.id).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].kind, "webhook_endpoint_disabled");
}

#[tokio::test]
async fn an_email_waits_while_the_smtp_server_is_down_and_is_delivered_once_when_it_is_up() {
    let port = late_port();
    let app = spawn(&email_env(&format!("smtp://127.0.0.1:{port}"))).await;
    let m = app.create_merchant(250).await;
    let address = unique_address("down");
    set_notify_email(&app, &m.id, &address);
    create_key(&app, &m.sk, "secret").await;

    // Nothing listens: attempts fail and are recorded, the email stays pending.
    let rows = wait_for_emails(&app, &m.id, "two failed attempts", |rows| {
        rows.len() == 1 && rows[0].attempt_count >= 2
    })
    .await;
    assert_eq!(rows[0].status.as_str(), "pending");
    let failed = attempts_of(&app, rows[0].id).await;
    assert!(failed.iter().all(|a| a.outcome == "failed"), "{failed:?}");
    assert!(failed[0].error.is_some());

    let smtp = SmtpServer::start(port).await;
    let rows = wait_for_emails(&app, &m.id, "sent once the server is up", |rows| {
        rows[0].status.as_str() == "sent"
    })
    .await;
    let got = smtp.messages_to(&address).await;
    assert_eq!(got.len(), 1, "delivered exactly once: {got:?}");
    assert_eq!(got[0]["subject"], "A new test API key was created");
    let attempts = attempts_of(&app, rows[0].id).await;
    assert_eq!(attempts.len() as i32, rows[0].attempt_count);
    assert_eq!(attempts.last().unwrap().outcome, "sent");
    assert!(attempts[..attempts.len() - 1]
        .iter()
        .all(|a| a.outcome == "failed"));
    let numbers: Vec<i32> = attempts.iter().map(|a| a.attempt_number).collect();
    assert_eq!(numbers, (1..=attempts.len() as i32).collect::<Vec<_>>());
    assert_eq!(app.count("emails").await, 1, "no copy was queued");
}

#[tokio::test]
async fn without_smtp_url_emails_stay_queued_and_the_worker_says_so() {
    let mut env = email_env("unused");
    env.retain(|(k, _)| *k != "SMTP_URL");
    let app = spawn(&env).await;
    let m = app.create_merchant(250).await;
    let address = unique_address("nosmtp");
    set_notify_email(&app, &m.id, &address);
    create_key(&app, &m.sk, "secret").await;

    let deadline = Instant::now() + Duration::from_secs(30);
    while !app.logs().contains("SMTP_URL is not set") {
        assert!(
            Instant::now() < deadline,
            "no word about SMTP_URL: {}",
            app.logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (status, ready) = {
        let r = app.client.get(app.url("/readyz")).send().await.unwrap();
        (r.status().as_u16(), r.json::<Value>().await.unwrap())
    };
    assert_eq!(status, 200, "emails waiting never make the service unready");
    assert_eq!(ready["emails"]["smtp"], "not_configured", "{ready}");
    assert_eq!(ready["emails"]["pending"], 1, "{ready}");
    let rows = emails_of(&app, &m.id).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].status.as_str(), "pending");
    assert_eq!(rows[0].attempt_count, 0);
}

#[tokio::test]
async fn the_admin_api_sets_and_clears_the_notification_address() {
    use crate::helpers::ADMIN_TOKEN;
    let app = TestApp::spawn().await;
    let m = app.create_merchant(250).await;
    let put = |id: String, body: Value| {
        let app = &app;
        async move {
            let r = app
                .client
                .put(app.url(&format!("/api/admin/merchants/{id}/notify-email")))
                .bearer_auth(ADMIN_TOKEN)
                .json(&body)
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let (status, merchant) = put(m.id.clone(), json!({"email": "ops@shop.example"})).await;
    assert_eq!(status, 200, "{merchant}");
    assert_eq!(merchant["notify_email"], "ops@shop.example");
    let r = app
        .client
        .get(app.url("/api/admin/merchants"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    let all: Value = r.json().await.unwrap();
    assert_eq!(all[0]["notify_email"], "ops@shop.example");

    let (status, err) = put(m.id.clone(), json!({"email": "Ops <ops@shop.example>"})).await;
    assert_eq!(status, 400);
    assert_eq!(err["error"]["code"], "invalid_email");
    assert_eq!(err["error"]["param"], "email");
    let (status, err) = put(m.id.clone(), json!({"email": "a@b.example", "cc": "x"})).await;
    assert_eq!(status, 400, "unknown fields are refused: {err}");
    let (status, _) = put("mer_nosuch".into(), json!({"email": "ops@shop.example"})).await;
    assert_eq!(status, 404);

    let (status, merchant) = put(m.id.clone(), json!({"email": null})).await;
    assert_eq!(status, 200);
    assert!(merchant.get("notify_email").is_none(), "{merchant}");
    create_key(&app, &m.sk, "secret").await;
    assert_eq!(app.count("emails").await, 0);
}

#[tokio::test]
async fn an_endpoint_whose_deliveries_keep_failing_is_disabled_and_the_merchant_emailed() {
    let smtp = shared().await;
    let mut env = email_env(&smtp.url());
    env.push(("WEBHOOK_DISABLE_AFTER_FAILED_DELIVERIES", "2".into()));
    let app = spawn(&env).await;
    let m = app.create_merchant(250).await;
    let address = unique_address("failing");
    set_notify_email(&app, &m.id, &address);
    let receiver = Receiver::start().await;
    receiver.answer(500);
    set_endpoint(&app, &m.sk, &receiver.url).await;
    let code = app.issue_one("50.00").await;

    // One delivery given up: the endpoint stays enabled, nothing is emailed.
    let r = app.pay(&m.pk, "ORDER_1", "10.00", &[&code], None).await;
    assert_eq!(r.status(), 201);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, events) = get(&app, "/api/events", &m.sk).await;
        if events["data"][0]["deliveries"][0]["status"] == "failed" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "first delivery not given up: {events}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (_, endpoint) = get(&app, "/api/webhook-endpoint", &m.sk).await;
    assert_eq!(endpoint["status"], "enabled");
    assert_eq!(app.count("emails").await, 0);

    // The second in a row disables it, in the transaction that gave it up.
    let r = app.pay(&m.pk, "ORDER_2", "10.00", &[&code], None).await;
    assert_eq!(r.status(), 201);
    let got = smtp.wait_for(&address, 1).await;
    assert_eq!(got[0]["subject"], "Your test webhook endpoint was disabled");
    let text = got[0]["text"].as_str().unwrap();
    assert!(
        text.contains("its last 2 deliveries all failed after every retry"),
        "{text}"
    );
    let (_, endpoint) = get(&app, "/api/webhook-endpoint", &m.sk).await;
    assert_eq!(endpoint["status"], "disabled");
    assert_eq!(endpoint["disabled_reason"], "failing");

    // Setting the URL again starts the count afresh: one more failure does not disable it.
    receiver.answer(500);
    set_endpoint(&app, &m.sk, &receiver.url).await;
    let r = app.pay(&m.pk, "ORDER_3", "10.00", &[&code], None).await;
    assert_eq!(r.status(), 201);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, events) = get(&app, "/api/events?limit=1", &m.sk).await;
        if events["data"][0]["deliveries"][0]["status"] == "failed" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "third delivery not given up: {events}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (_, endpoint) = get(&app, "/api/webhook-endpoint", &m.sk).await;
    assert_eq!(endpoint["status"], "enabled");
    assert_eq!(smtp.messages_to(&address).await.len(), 1);
}

#[tokio::test]
async fn the_smtp_password_never_reaches_a_log_or_an_attempt() {
    // Nothing listens there: every attempt fails and says why.
    let password = "smtp-Pa55word-never-logged";
    let url = format!(
        "smtp://mailer:{password}@127.0.0.1:{}",
        crate::helpers::free_port()
    );
    let app = spawn(&email_env(&url)).await;
    let m = app.create_merchant(250).await;
    set_notify_email(&app, &m.id, &unique_address("secret"));
    create_key(&app, &m.sk, "secret").await;
    let rows = wait_for_emails(&app, &m.id, "a failed attempt", |rows| {
        rows.len() == 1 && rows[0].attempt_count >= 1
    })
    .await;
    let attempts = attempts_of(&app, rows[0].id).await;
    assert!(attempts[0].error.is_some());
    for a in &attempts {
        assert!(!a.error.as_deref().unwrap_or("").contains(password));
    }
    let logs = app.logs();
    assert!(logs.contains("email attempt"), "attempts are logged");
    assert!(!logs.contains(password), "the SMTP password is in the logs");
}
