//! Fraud screening: each velocity rule flags the payment that breaks it (`payment.flagged`,
//! to that payment's merchant only), the spread rule blocks the voucher, and a payment that
//! breaks nothing is screened and left alone.
use std::time::{Duration, Instant};

use reqwest::Response;
use sea_orm::{ConnectionTrait, Statement};
use serde_json::{json, Value};

use crate::{
    helpers::{body, free_port, is_sqlite, Merchant, TestApp},
    metrics,
    webhook_support::{get, WorkerProcess},
};

/// A worker inside `serve` that screens every 50 ms, behind a trusted proxy so each test
/// can speak from several client addresses.
const SCREENING: [(&str, &str); 4] = [
    ("SERVE_WORKER", "on"),
    ("FRAUD_SCREEN_INTERVAL", "50ms"),
    ("TRUSTED_PROXIES", "127.0.0.1/32"),
    // The guessing lockout would cut the declines short; these tests are about the rules.
    ("GUESS_LOCKOUT_THRESHOLD", "0"),
];

async fn pay_from(
    app: &TestApp,
    pk: &str,
    from: &str,
    order: &str,
    amount: &str,
    code: &str,
) -> Response {
    app.client
        .post(app.url("/api/process-payment/"))
        .bearer_auth(pk)
        .header("X-Forwarded-For", from)
        .json(
            &json!({"order_id": order, "amount": amount, "currency": "EUR",
                      "vouchers": [{"code": code}]}),
        )
        .send()
        .await
        .unwrap()
}

async fn paid(r: Response) -> String {
    let status = r.status();
    let b = body(r).await;
    assert_eq!(status, 201, "{b}");
    b["id"].as_str().unwrap().to_owned()
}

/// Waits (up to 30 s) until the screener has screened `n` successful payments.
async fn wait_screened(app: &TestApp, n: i64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let done = app.scalar("SELECT COUNT(*) FROM payment_attempts WHERE outcome = 'succeeded' AND screened_at IS NOT NULL",
        )
        .await;
        if done >= n {
            assert_eq!(done, n, "more payments screened than made");
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out: {done} of {n} payments screened"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The merchant's `payment.flagged` events, as its API lists them.
async fn flagged(app: &TestApp, m: &Merchant) -> Vec<Value> {
    let (status, list) = get(app, "/api/events?type=payment.flagged&limit=100", &m.sk).await;
    assert_eq!(status, 200, "{list}");
    list["data"].as_array().unwrap().clone()
}

fn rules_of(event: &Value) -> Vec<String> {
    event["payload"]["data"]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["rule"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_voucher_paid_at_three_merchants_within_minutes_is_flagged_and_blocked() {
    let port = free_port();
    let bind = format!("127.0.0.1:{port}");
    let mut env = SCREENING.to_vec();
    env.extend([
        ("METRICS_BIND", bind.as_str()),
        ("METRICS_TOKEN", metrics::TOKEN),
    ]);
    let app = TestApp::spawn_with(&env).await;
    let shops = [
        app.create_merchant(200).await,
        app.create_merchant(200).await,
        app.create_merchant(200).await,
    ];
    let code = app.issue_one("100.00").await;
    let mut paid_at = Vec::new();
    for (i, shop) in shops.iter().enumerate() {
        let from = format!("198.51.100.{i}");
        paid_at.push(
            paid(pay_from(&app, &shop.pk, &from, &format!("o-{i}"), "10.00", &code).await).await,
        );
    }
    wait_screened(&app, 3).await;

    // Only the third merchant's payment crossed the threshold, and only it is told.
    assert!(flagged(&app, &shops[0]).await.is_empty());
    assert!(flagged(&app, &shops[1]).await.is_empty());
    let events = flagged(&app, &shops[2]).await;
    assert_eq!(events.len(), 1, "{events:?}");
    let e = &events[0];
    assert_eq!(e["transaction_id"], paid_at[2].as_str());
    assert_eq!(rules_of(e), ["voucher_at_many_merchants"]);
    let data = &e["payload"]["data"];
    assert_eq!(data["order_id"], "o-2");
    let last4 = &code[code.len() - 4..];
    assert_eq!(data["vouchers_blocked"], json!([{"last4": last4}]));
    let detail = data["rules"][0]["detail"].as_str().unwrap();
    assert!(detail.contains("3 merchants"), "{detail}");
    assert!(
        !e.to_string().contains(&code),
        "the code never leaves in an event"
    );

    // Blocked: the next payment with it is declined, at any shop, with the uniform decline
    // a shopper gets for any dead code; the log says why.
    let r = pay_from(&app, &shops[0].pk, "198.51.100.0", "o-3", "10.00", &code).await;
    assert_eq!(r.status(), 402);
    assert_eq!(body(r).await["error"]["code"], "voucher_declined");
    assert!(app.logs().contains("\"voucher_blocked\""));
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM risk_flags").await,
        1,
        "one flag, on the payment that broke the rule"
    );
    let (_, scraped) = metrics::scrape(&app.client, port).await;
    assert_eq!(
        metrics::value(
            &scraped,
            "superpayment_fraud_flags_total",
            &[("rule", "voucher_at_many_merchants")]
        ),
        Some(1.0)
    );
    let (ok, out) = app.audit();
    assert!(ok, "{out}");
}

#[tokio::test]
async fn many_declines_from_one_address_flag_its_next_success_and_not_another_addresss() {
    let app = TestApp::spawn_with(&[
        SCREENING[0],
        SCREENING[1],
        SCREENING[2],
        SCREENING[3],
        ("FRAUD_DECLINES_PER_CLIENT", "5"),
    ])
    .await;
    let m = app.create_merchant(200).await;
    let good = app.issue("EUR", "50.00", 2, json!({})).await;
    for n in 0..5 {
        let guess =
            superpayment_core::VoucherCode::generate([n, 3, 3, 3, 3, 3, 3, 3, 3, n]).formatted();
        let r = pay_from(
            &app,
            &m.pk,
            "203.0.113.66",
            &format!("g-{n}"),
            "10.00",
            &guess,
        )
        .await;
        assert_eq!(r.status(), 402);
    }
    let guessed =
        paid(pay_from(&app, &m.pk, "203.0.113.66", "g-ok", "10.00", &good[0]).await).await;
    let shopper = paid(pay_from(&app, &m.pk, "192.0.2.10", "s-ok", "10.00", &good[1]).await).await;
    wait_screened(&app, 2).await;

    let events = flagged(&app, &m).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["transaction_id"], guessed.as_str());
    assert_eq!(rules_of(&events[0]), ["many_declines"]);
    let detail = events[0]["payload"]["data"]["rules"][0]["detail"]
        .as_str()
        .unwrap();
    assert!(
        detail.starts_with("5 declined attempts from this client address"),
        "{detail}"
    );
    assert_eq!(events[0]["payload"]["data"]["vouchers_blocked"], json!([]));
    assert_ne!(guessed, shopper);
    // The table keeps no client address, only its keyed hash.
    let db = app.db().await;
    let rows = db
        .query_all(Statement::from_string(
            db.get_database_backend(),
            "SELECT client_ref FROM payment_attempts",
        ))
        .await
        .unwrap();
    assert_eq!(rows.len(), 7);
    for row in rows {
        let r: String = row.try_get_by_index(0).unwrap();
        assert!(!r.contains("203.0.113") && !r.contains("192.0.2"), "{r}");
        assert_eq!(r.len(), 32);
    }
}

#[tokio::test]
async fn payments_that_each_leave_a_voucher_just_above_zero_are_flagged_on_the_third() {
    let app = TestApp::spawn_with(&SCREENING).await;
    let m = app.create_merchant(200).await;
    let cards = app.issue("EUR", "100.00", 4, json!({})).await;
    let mut ids = Vec::new();
    for (i, card) in cards.iter().take(3).enumerate() {
        // 96.00 of 100.00 leaves 4 %: under the default 5 % margin.
        ids.push(
            paid(
                pay_from(
                    &app,
                    &m.pk,
                    "198.51.100.9",
                    &format!("d-{i}"),
                    "96.00",
                    card,
                )
                .await,
            )
            .await,
        );
        wait_screened(&app, i as i64 + 1).await;
    }
    // The same from another address, leaving 50 %: not near the balance.
    paid(pay_from(&app, &m.pk, "198.51.100.10", "d-other", "50.00", &cards[3]).await).await;
    wait_screened(&app, 4).await;

    let events = flagged(&app, &m).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["transaction_id"], ids[2].as_str());
    assert_eq!(rules_of(&events[0]), ["amounts_just_under_balance"]);
}

#[tokio::test]
async fn two_screeners_on_one_database_screen_each_payment_once() {
    if is_sqlite() {
        // A standalone worker needs DATABASE_URL; the embedded default is one process.
        return;
    }
    let app = TestApp::spawn_with(&SCREENING).await;
    let _second = WorkerProcess::start(&app, &[("FRAUD_SCREEN_INTERVAL", "10ms")]);
    let shops = [
        app.create_merchant(200).await,
        app.create_merchant(200).await,
        app.create_merchant(200).await,
    ];
    let codes = app.issue("EUR", "100.00", 10, json!({})).await;
    // The magic test vouchers include a blocked one.
    let blocked_before = app
        .scalar("SELECT COUNT(*) FROM vouchers WHERE status = 'blocked'")
        .await;
    for (c, code) in codes.iter().enumerate() {
        for (i, shop) in shops.iter().enumerate() {
            paid(
                pay_from(
                    &app,
                    &shop.pk,
                    "198.51.100.1",
                    &format!("o-{c}-{i}"),
                    "1.00",
                    code,
                )
                .await,
            )
            .await;
        }
    }
    wait_screened(&app, 30).await;
    // Each code's third payment breaks the spread rule: ten flags, ten events, ten blocks.
    assert_eq!(flagged(&app, &shops[2]).await.len(), 10);
    assert_eq!(app.scalar("SELECT COUNT(*) FROM risk_flags").await, 10);
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM events WHERE kind = 'payment.flagged'")
            .await,
        10
    );
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM vouchers WHERE status = 'blocked'")
            .await,
        blocked_before + 10
    );
}

#[tokio::test]
async fn with_screening_off_nothing_is_recorded_or_flagged() {
    let app = TestApp::spawn_with(&[SCREENING[0], SCREENING[1], ("FRAUD_SCREENING", "off")]).await;
    let shops = [
        app.create_merchant(200).await,
        app.create_merchant(200).await,
        app.create_merchant(200).await,
    ];
    let code = app.issue_one("100.00").await;
    for (i, shop) in shops.iter().enumerate() {
        paid(
            app.pay(&shop.pk, &format!("o-{i}"), "10.00", &[&code], None)
                .await,
        )
        .await;
    }
    assert_eq!(app.count("payment_attempts").await, 0);
    assert_eq!(app.count("risk_flags").await, 0);
    let r = app.pay(&shops[0].pk, "o-3", "10.00", &[&code], None).await;
    assert_eq!(r.status(), 201, "the voucher stays usable");
}

/// A success and its attempt row commit together: when the row cannot be written the
/// payment is not made (nothing debited, no transaction), so no success escapes screening,
/// and the row carries its transaction's time.
#[tokio::test]
async fn a_success_commits_only_with_its_attempt_row() {
    let app = TestApp::spawn_with(&SCREENING).await;
    let shop = app.create_merchant(200).await;
    let code = app.issue_one("50.00").await;
    let db = app.db().await;
    let refuse = if is_sqlite() {
        "CREATE TRIGGER refuse_attempts BEFORE INSERT ON payment_attempts \
         BEGIN SELECT RAISE(ABORT, 'refused'); END"
    } else {
        "ALTER TABLE payment_attempts ADD CONSTRAINT refuse_attempts CHECK (false) NOT VALID"
    };
    db.execute_unprepared(refuse).await.unwrap();

    let r = pay_from(&app, &shop.pk, "198.51.100.7", "o-1", "10.00", &code).await;
    assert_eq!(r.status(), 500, "{}", body(r).await);
    assert_eq!(app.count("transactions").await, 0);
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM vouchers WHERE balance_minor = 5000")
            .await,
        1,
        "nothing was debited"
    );

    let allow = if is_sqlite() {
        "DROP TRIGGER refuse_attempts"
    } else {
        "ALTER TABLE payment_attempts DROP CONSTRAINT refuse_attempts"
    };
    db.execute_unprepared(allow).await.unwrap();
    let txn = paid(pay_from(&app, &shop.pk, "198.51.100.7", "o-1", "10.00", &code).await).await;
    assert_eq!(
        app.scalar(&format!(
                "SELECT COUNT(*) FROM payment_attempts a JOIN transactions t ON t.id = a.transaction_id \
                 WHERE t.id = '{txn}' AND a.outcome = 'succeeded' AND a.created_at = t.created_at \
                 AND a.merchant_id = t.merchant_id AND a.mode = t.mode"
            )
        )
        .await,
        1
    );
    let (ok, out) = app.audit();
    assert!(ok, "{out}");
}
