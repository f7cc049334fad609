//! Authorize, then capture or cancel: holds on the vouchers, their release (partial
//! capture, cancel, expiry by the worker), races between the three, idempotent replays,
//! and the ledger and audit afterwards.
use std::time::Duration;

use sea_orm::{ConnectionTrait, Statement};
use serde_json::{json, Value};

use crate::{
    helpers::{body, Merchant, TestApp},
    webhook_support::FAST_WORKER_ENV,
};

/// Pays with `capture: false`; returns the answer's body (asserting 201).
async fn authorize(app: &TestApp, pk: &str, order: &str, amount: &str, codes: &[&str]) -> Value {
    let vouchers: Vec<Value> = codes.iter().map(|c| json!({"code": c})).collect();
    let r = app
        .post(
            "/api/process-payment/",
            pk,
            &json!({"order_id": order, "amount": amount, "currency": "EUR",
                    "vouchers": vouchers, "capture": false}),
            None,
        )
        .await;
    assert_eq!(r.status(), 201);
    body(r).await
}

async fn end(
    app: &TestApp,
    sk: &str,
    txn: &str,
    action: &str,
    body_json: Value,
    key: Option<&str>,
) -> reqwest::Response {
    app.post(
        &format!("/api/transactions/{txn}/{action}"),
        sk,
        &body_json,
        key,
    )
    .await
}

async fn status(app: &TestApp, sk: &str, txn: &str) -> String {
    let r = app
        .client
        .get(app.url(&format!("/api/transactions/{txn}")))
        .bearer_auth(sk)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    body(r).await["status"].as_str().unwrap().to_owned()
}

/// The total of the postings on accounts named like `pattern`.
async fn account_total(app: &TestApp, pattern: &str) -> i64 {
    let db = app.db().await;
    let row = db
        .query_one(Statement::from_string(
            db.get_database_backend(),
            format!(
                "SELECT CAST(COALESCE(SUM(amount_minor), 0) AS BIGINT) AS total FROM postings WHERE account LIKE '{pattern}'"
            ),
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get("", "total").unwrap()
}

/// How many events of `kind` announce `txn`.
async fn events(app: &TestApp, kind: &str, txn: &str) -> i64 {
    let db = app.db().await;
    let row = db
        .query_one(Statement::from_string(
            db.get_database_backend(),
            format!("SELECT COUNT(*) AS n FROM events WHERE kind = '{kind}' AND transaction_id = '{txn}'"),
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get("", "n").unwrap()
}

fn assert_audit_clean(app: &TestApp) {
    let (ok, out) = app.audit();
    assert!(ok, "audit failed:\n{out}");
}

fn set_hold_period(app: &TestApp, m: &Merchant, seconds: &str) {
    let (ok, out) = app.cli(&[
        "admin",
        "set-hold-period",
        "--merchant",
        &m.id,
        "--seconds",
        seconds,
    ]);
    assert!(ok, "set-hold-period: {out}");
}

#[tokio::test]
async fn a_hold_captured_in_part_gives_the_rest_back_to_the_vouchers() {
    let app = TestApp::spawn().await;
    let m = app.create_merchant(250).await;
    let a = app.issue_one("60.00").await;
    let b = app.issue_one("50.00").await;
    let hold = authorize(&app, &m.pk, "ORDER_1", "99.00", &[&a, &b]).await;
    assert_eq!(hold["status"], "authorized");
    assert!(hold["capture_before"].is_string());
    let txn = hold["id"].as_str().unwrap().to_owned();
    // The balance available drops; the ledger holds the money, the merchant is owed nothing.
    assert_eq!(app.voucher_balance(&m.pk, &a).await, "0.00");
    assert_eq!(app.voucher_balance(&m.pk, &b).await, "11.00");
    assert_eq!(account_total(&app, "held:test:EUR").await, 9900);
    assert_eq!(account_total(&app, "merchant_payable:%").await, 0);
    assert_eq!(events(&app, "payment.authorized", &txn).await, 1);
    assert_eq!(events(&app, "payment.succeeded", &txn).await, 0);

    // Not paid yet: verify says so, and there is nothing to refund.
    let verify = |amount: &'static str| json!({"transaction_id": txn, "order_id": "ORDER_1", "expected_amount": amount, "expected_currency": "EUR"});
    let r = app
        .post("/api/verify-transaction", &m.sk, &verify("99.00"), None)
        .await;
    let v = body(r).await;
    assert_eq!(v["verified"], false);
    assert_eq!(v["mismatches"], json!(["status"]));
    assert_eq!(v["transaction"]["status"], "authorized");
    let r = end(&app, &m.sk, &txn, "refunds", json!({}), None).await;
    assert_eq!(r.status(), 409);
    assert_eq!(body(r).await["error"]["code"], "transaction_not_captured");

    let r = end(
        &app,
        &m.sk,
        &txn,
        "capture",
        json!({"amount": "99.01"}),
        None,
    )
    .await;
    assert_eq!(r.status(), 400);
    assert_eq!(body(r).await["error"]["code"], "capture_exceeds_authorized");
    let r = end(
        &app,
        &m.sk,
        &txn,
        "capture",
        json!({"amount": "70", "x": 1}),
        None,
    )
    .await;
    assert_eq!(r.status(), 400);

    let r = end(
        &app,
        &m.sk,
        &txn,
        "capture",
        json!({"amount": "70.00"}),
        None,
    )
    .await;
    assert_eq!(r.status(), 200);
    let c = body(r).await;
    assert_eq!(c["status"], "captured");
    assert_eq!(c["authorized_amount"], "99.00");
    assert_eq!(c["captured_amount"], "70.00");
    assert_eq!(c["released_amount"], "29.00");
    assert_eq!(
        c["vouchers"],
        json!([
            {"last4": &a[15..], "captured": "60.00", "released": "0.00"},
            {"last4": &b[15..], "captured": "10.00", "released": "29.00"}
        ])
    );
    assert_eq!(app.voucher_balance(&m.pk, &a).await, "0.00");
    assert_eq!(app.voucher_balance(&m.pk, &b).await, "40.00");
    assert_eq!(account_total(&app, "held:%").await, 0);
    // 2.5 % of 70.00 is 1.75: the merchant is owed the rest of what was captured.
    assert_eq!(account_total(&app, "merchant_payable:%").await, 6825);
    assert_eq!(account_total(&app, "platform_commission:%").await, 175);
    assert_eq!(events(&app, "payment.captured", &txn).await, 1);

    let r = end(&app, &m.sk, &txn, "capture", json!({}), None).await;
    assert_eq!(r.status(), 409);
    assert_eq!(body(r).await["error"]["code"], "transaction_not_authorized");
    let r = end(&app, &m.sk, &txn, "cancel", json!({}), None).await;
    assert_eq!(r.status(), 409);

    let r = app
        .post("/api/verify-transaction", &m.sk, &verify("70.00"), None)
        .await;
    let v = body(r).await;
    assert_eq!(v["verified"], true, "{v}");
    assert_eq!(v["transaction"]["status"], "captured");
    assert_eq!(v["transaction"]["authorized_amount"], "99.00");

    // Captured money refunds like any payment's.
    let r = end(
        &app,
        &m.sk,
        &txn,
        "refunds",
        json!({"amount": "5.00"}),
        None,
    )
    .await;
    assert_eq!(r.status(), 201);
    assert_eq!(app.voucher_balance(&m.pk, &b).await, "45.00");
    assert_eq!(status(&app, &m.sk, &txn).await, "partially_refunded");
    assert_audit_clean(&app);
}

#[tokio::test]
async fn a_canceled_hold_gives_everything_back_and_frees_the_order() {
    let app = TestApp::spawn().await;
    let m = app.create_merchant(250).await;
    let a = app.issue_one("50.00").await;
    let single = app
        .issue("EUR", "40.00", 1, json!({"single_use": true}))
        .await
        .remove(0);
    let hold = authorize(&app, &m.pk, "ORDER_1", "70.00", &[&a, &single]).await;
    let txn = hold["id"].as_str().unwrap().to_owned();
    assert_eq!(app.voucher_balance(&m.pk, &a).await, "0.00");

    let r = app
        .pay(
            &m.pk,
            "ORDER_1",
            "10.00",
            &[&app.issue_one("10.00").await],
            None,
        )
        .await;
    assert_eq!(r.status(), 409, "an authorized order is taken");

    let r = end(&app, &m.sk, &txn, "cancel", json!({"amount": "1"}), None).await;
    assert_eq!(r.status(), 400, "cancel takes no fields");
    let r = end(&app, &m.sk, &txn, "cancel", json!({}), None).await;
    assert_eq!(r.status(), 200);
    let c = body(r).await;
    assert_eq!(c["status"], "canceled");
    assert_eq!(c["captured_amount"], "0.00");
    assert_eq!(c["released_amount"], "70.00");
    assert_eq!(app.voucher_balance(&m.pk, &a).await, "50.00");
    // The single-use voucher is whole and usable again.
    assert_eq!(app.voucher_balance(&m.pk, &single).await, "40.00");
    assert_eq!(account_total(&app, "held:%").await, 0);
    assert_eq!(account_total(&app, "merchant_payable:%").await, 0);
    assert_eq!(status(&app, &m.sk, &txn).await, "canceled");
    assert_eq!(events(&app, "payment.canceled", &txn).await, 1);

    let r = end(&app, &m.sk, &txn, "cancel", json!({}), None).await;
    assert_eq!(r.status(), 409);
    let r = end(&app, &m.sk, &txn, "capture", json!({}), None).await;
    assert_eq!(r.status(), 409);

    // The order id is free again, and verify by order id finds the new payment.
    let r = app
        .pay(&m.pk, "ORDER_1", "70.00", &[&a, &single], None)
        .await;
    assert_eq!(r.status(), 201);
    let paid = body(r).await["id"].as_str().unwrap().to_owned();
    let r = app
        .post(
            "/api/verify-transaction",
            &m.sk,
            &json!({"order_id": "ORDER_1", "expected_amount": "70.00", "expected_currency": "EUR"}),
            None,
        )
        .await;
    let v = body(r).await;
    assert_eq!(v["verified"], true, "{v}");
    assert_eq!(v["transaction"]["id"], paid);
    assert_audit_clean(&app);
}

#[tokio::test]
async fn the_worker_releases_an_expired_hold() {
    let app = TestApp::spawn_with(&FAST_WORKER_ENV).await;
    let m = app.create_merchant(250).await;
    set_hold_period(&app, &m, "1");
    let a = app.issue_one("50.00").await;
    let hold = authorize(&app, &m.pk, "ORDER_1", "30.00", &[&a]).await;
    let txn = hold["id"].as_str().unwrap().to_owned();
    assert_eq!(app.voucher_balance(&m.pk, &a).await, "20.00");

    // Released by the worker within a few of its polls after the second is up.
    let mut last = String::new();
    for _ in 0..200 {
        last = status(&app, &m.sk, &txn).await;
        if last == "expired" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(last, "expired");
    assert_eq!(app.voucher_balance(&m.pk, &a).await, "50.00");
    assert_eq!(account_total(&app, "held:%").await, 0);
    assert_eq!(events(&app, "payment.expired", &txn).await, 1);
    let r = end(&app, &m.sk, &txn, "capture", json!({}), None).await;
    assert_eq!(r.status(), 409);
    assert_audit_clean(&app);
}

#[tokio::test]
async fn capture_racing_cancel_has_exactly_one_winner() {
    let app = TestApp::spawn().await;
    let m = app.create_merchant(250).await;
    const ROUNDS: usize = 12;
    let codes = app.issue("EUR", "20.00", ROUNDS as u32, json!({})).await;
    let mut txns = Vec::new();
    for (i, code) in codes.iter().enumerate() {
        let hold = authorize(&app, &m.pk, &format!("ORDER_{i}"), "15.00", &[code]).await;
        txns.push(hold["id"].as_str().unwrap().to_owned());
    }
    let rounds = txns.iter().map(|txn| {
        let (app, sk) = (&app, &m.sk);
        async move {
            let (c, x) = tokio::join!(
                end(app, sk, txn, "capture", json!({"amount": "10.00"}), None),
                end(app, sk, txn, "cancel", json!({}), None),
            );
            (c.status().as_u16(), x.status().as_u16())
        }
    });
    let outcomes = futures::future::join_all(rounds).await;
    let mut captured = 0;
    for ((c, x), (txn, code)) in outcomes.iter().zip(txns.iter().zip(&codes)) {
        match (c, x) {
            (200, 409) => {
                captured += 1;
                assert_eq!(status(&app, &m.sk, txn).await, "captured");
                assert_eq!(app.voucher_balance(&m.pk, code).await, "10.00");
            }
            (409, 200) => {
                assert_eq!(status(&app, &m.sk, txn).await, "canceled");
                assert_eq!(app.voucher_balance(&m.pk, code).await, "20.00");
            }
            other => panic!("capture and cancel answered {other:?}"),
        }
    }
    assert_eq!(account_total(&app, "held:%").await, 0);
    assert_eq!(
        account_total(&app, "merchant_payable:%").await
            + account_total(&app, "platform_commission:%").await,
        captured * 1000
    );
    assert_audit_clean(&app);
}

#[tokio::test]
async fn capture_racing_expiry_has_exactly_one_winner() {
    let app = TestApp::spawn_with(&FAST_WORKER_ENV).await;
    let m = app.create_merchant(250).await;
    set_hold_period(&app, &m, "1");
    const ROUNDS: usize = 12;
    let codes = app.issue("EUR", "20.00", ROUNDS as u32, json!({})).await;
    let mut holds = Vec::new();
    for (i, code) in codes.iter().enumerate() {
        let hold = authorize(&app, &m.pk, &format!("ORDER_{i}"), "15.00", &[code]).await;
        let until = time::OffsetDateTime::parse(
            hold["capture_before"].as_str().unwrap(),
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap();
        holds.push((hold["id"].as_str().unwrap().to_owned(), until));
    }
    // Each capture is sent at its hold's expiry (give or take the worker's poll), while
    // the worker sweeps: either may win, never both.
    let rounds = holds.iter().enumerate().map(|(i, (txn, until))| {
        let (app, sk) = (&app, &m.sk);
        async move {
            let offset = time::Duration::milliseconds(i as i64 * 20 - 120);
            let wait =
                (*until + offset - time::OffsetDateTime::now_utc()).max(time::Duration::ZERO);
            tokio::time::sleep(wait.unsigned_abs()).await;
            end(app, sk, txn, "capture", json!({}), None)
                .await
                .status()
                .as_u16()
        }
    });
    let answers = futures::future::join_all(rounds).await;
    for ((txn, _), answer) in holds.iter().zip(&answers) {
        // The capture either won (the worker then finds nothing to release) or lost to
        // an expiry, which the worker carries out.
        let mut last = String::new();
        for _ in 0..200 {
            last = status(&app, &m.sk, txn).await;
            if last != "authorized" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        match answer {
            200 => assert_eq!(last, "captured"),
            409 => assert_eq!(last, "expired"),
            other => panic!("capture answered {other}"),
        }
        let ends = events(&app, "payment.captured", txn).await
            + events(&app, "payment.expired", txn).await;
        assert_eq!(ends, 1, "{txn} ended {ends} times");
    }
    assert_eq!(account_total(&app, "held:%").await, 0);
    let captured = answers.iter().filter(|&&a| a == 200).count();
    println!(
        "capture racing expiry: {captured} captured, {} expired of {ROUNDS}",
        ROUNDS - captured
    );
    assert_audit_clean(&app);
}

#[tokio::test]
async fn capture_and_cancel_replay_their_first_answer() {
    let app = TestApp::spawn().await;
    let m = app.create_merchant(250).await;
    let a = app.issue_one("50.00").await;
    let txn = authorize(&app, &m.pk, "ORDER_1", "30.00", &[&a]).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let first = end(
        &app,
        &m.sk,
        &txn,
        "capture",
        json!({"amount": "20"}),
        Some("k-1"),
    )
    .await;
    assert_eq!(first.status(), 200);
    let first = body(first).await;
    let again = end(
        &app,
        &m.sk,
        &txn,
        "capture",
        json!({"amount": "20.00"}),
        Some("k-1"),
    )
    .await;
    assert_eq!(again.status(), 200);
    assert_eq!(again.headers()["Idempotent-Replayed"], "true");
    assert_eq!(body(again).await, first);
    let other = end(
        &app,
        &m.sk,
        &txn,
        "capture",
        json!({"amount": "25.00"}),
        Some("k-1"),
    )
    .await;
    assert_eq!(other.status(), 400);
    assert_eq!(body(other).await["error"]["code"], "idempotency_key_reused");
    assert_eq!(app.voucher_balance(&m.pk, &a).await, "30.00");

    let txn = authorize(&app, &m.pk, "ORDER_2", "30.00", &[&a]).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // The same key is another operation's: a cancel never replays a capture.
    let first = end(&app, &m.sk, &txn, "cancel", json!({}), Some("k-1")).await;
    assert_eq!(first.status(), 200);
    let first = body(first).await;
    assert_eq!(first["status"], "canceled");
    let again = end(&app, &m.sk, &txn, "cancel", json!({}), Some("k-1")).await;
    assert_eq!(again.status(), 200);
    assert_eq!(again.headers()["Idempotent-Replayed"], "true");
    assert_eq!(body(again).await, first);
    assert_eq!(app.voucher_balance(&m.pk, &a).await, "30.00");
    assert_eq!(events(&app, "payment.canceled", &txn).await, 1);
    assert_audit_clean(&app);
}

#[tokio::test]
async fn another_merchants_or_modes_hold_is_not_found() {
    let app = TestApp::spawn().await;
    let m = app.create_merchant(250).await;
    let other = app.create_merchant(250).await;
    let a = app.issue_one("50.00").await;
    let txn = authorize(&app, &m.pk, "ORDER_1", "30.00", &[&a]).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, live_sk) = app.create_live_keys(&m.id);
    for sk in [&other.sk, &live_sk] {
        for action in ["capture", "cancel"] {
            let r = end(&app, sk, &txn, action, json!({}), None).await;
            assert_eq!(r.status(), 404, "{action}");
        }
    }
    // A publishable key is refused outright.
    let r = end(&app, &m.pk, &txn, "capture", json!({}), None).await;
    assert_eq!(r.status(), 403);
    assert_eq!(status(&app, &m.sk, &txn).await, "authorized");
    assert_audit_clean(&app);
}

#[tokio::test]
async fn the_listing_filters_by_hold_status() {
    let app = TestApp::spawn().await;
    let m = app.create_merchant(250).await;
    let a = app.issue_one("100.00").await;
    let held = authorize(&app, &m.pk, "ORDER_1", "10.00", &[&a]).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let canceled = authorize(&app, &m.pk, "ORDER_2", "10.00", &[&a]).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = end(&app, &m.sk, &canceled, "cancel", json!({}), None).await;
    assert_eq!(r.status(), 200);
    let r = app.pay(&m.pk, "ORDER_3", "10.00", &[&a], None).await;
    let paid = body(r).await["id"].as_str().unwrap().to_owned();
    for (status, expected) in [
        ("authorized", &held),
        ("canceled", &canceled),
        ("succeeded", &paid),
    ] {
        let r = app
            .client
            .get(app.url(&format!("/api/transactions?status={status}")))
            .bearer_auth(&m.sk)
            .send()
            .await
            .unwrap();
        let v = body(r).await;
        let ids: Vec<&str> = v["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, vec![expected.as_str()], "{status}");
    }
}
