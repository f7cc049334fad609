//! Refunds: partial then the rest, over-refunds, concurrency, expired vouchers, idempotency,
//! the ledger afterwards and the payment.refunded event.
use sea_orm::{ConnectionTrait, Statement, Value as DbValue};
use serde_json::{json, Value};

use crate::{
    helpers::{body, TestApp},
    webhook_support::{get, set_endpoint, Receiver, FAST_WORKER_ENV},
};

async fn refund(
    app: &TestApp,
    sk: &str,
    txn: &str,
    body_json: Value,
    key: Option<&str>,
) -> reqwest::Response {
    app.post(
        &format!("/api/transactions/{txn}/refunds"),
        sk,
        &body_json,
        key,
    )
    .await
}

#[tokio::test]
async fn a_partial_refund_then_the_rest_goes_back_to_the_vouchers_last_applied_first() {
    let app = TestApp::spawn_with(&FAST_WORKER_ENV).await;
    let m = app.create_merchant(250).await;
    let receiver = Receiver::start().await;
    set_endpoint(&app, &m.sk, &receiver.url).await;
    let a = app.issue_one("60.00").await;
    let b = app.issue_one("50.00").await;
    let r = app.pay(&m.pk, "ORDER_1", "99.00", &[&a, &b], None).await;
    assert_eq!(r.status(), 201);
    let txn = body(r).await["id"].as_str().unwrap().to_owned();

    let r = refund(
        &app,
        &m.sk,
        &txn,
        json!({"amount": "45.00", "reason": "two items back"}),
        None,
    )
    .await;
    assert_eq!(r.status(), 201);
    let first = body(r).await;
    assert!(first["id"].as_str().unwrap().starts_with("re_"));
    assert_eq!(first["amount"], "45.00");
    assert_eq!(first["transaction_refunded_amount"], "45.00");
    assert_eq!(
        first["vouchers"],
        json!([
            {"last4": &b[15..], "amount": "39.00"},
            {"last4": &a[15..], "amount": "6.00"}
        ])
    );
    assert_eq!(app.voucher_balance(&m.pk, &b).await, "50.00");
    assert_eq!(app.voucher_balance(&m.pk, &a).await, "6.00");

    let r = refund(&app, &m.sk, &txn, json!({"amount": "54.01"}), None).await;
    assert_eq!(r.status(), 400);
    assert_eq!(body(r).await["error"]["code"], "refund_exceeds_remaining");

    let r = refund(&app, &m.sk, &txn, json!({}), None).await;
    assert_eq!(r.status(), 201);
    let rest = body(r).await;
    assert_eq!(rest["amount"], "54.00");
    assert_eq!(rest["transaction_refunded_amount"], "99.00");
    assert_eq!(app.voucher_balance(&m.pk, &a).await, "60.00");
    // Commission comes back pro rata; together exactly what the payment charged (2.48).
    let commission = |v: &Value| {
        v["commission"]
            .as_str()
            .unwrap()
            .replace('.', "")
            .parse::<i64>()
            .unwrap()
    };
    assert_eq!(commission(&first) + commission(&rest), 248);

    let r = refund(&app, &m.sk, &txn, json!({"amount": "0.01"}), None).await;
    assert_eq!(r.status(), 400);
    assert_eq!(body(r).await["error"]["code"], "transaction_fully_refunded");

    let (status, t) = get(&app, &format!("/api/transactions/{txn}"), &m.sk).await;
    assert_eq!(status, 200);
    assert_eq!(t["status"], "refunded");
    assert_eq!(t["refunded_amount"], "99.00");
    assert_eq!(t["refunds"].as_array().unwrap().len(), 2);
    assert_eq!(t["refunds"][0]["reason"], "two items back");

    let hits = receiver
        .wait_for("three webhooks", |h| {
            h.iter()
                .filter(|h| h.json()["type"] == "payment.refunded")
                .count()
                == 2
        })
        .await;
    let refunded: Vec<Value> = hits
        .iter()
        .map(|h| h.json())
        .filter(|p| p["type"] == "payment.refunded")
        .collect();
    assert_eq!(refunded[1]["data"]["refund"]["id"], rest["id"]);
    assert_eq!(refunded[1]["data"]["transaction"]["status"], "refunded");
    assert_eq!(
        refunded[0]["data"]["transaction"]["status"],
        "partially_refunded"
    );

    let (ok, report) = app.audit();
    assert!(ok, "{report}");
}

#[tokio::test]
async fn concurrent_refunds_never_exceed_the_amount_paid() {
    let app = TestApp::spawn().await;
    let m = app.create_merchant(250).await;
    let code = app.issue_one("100.00").await;
    let r = app.pay(&m.pk, "ORDER_1", "10.00", &[&code], None).await;
    let txn = body(r).await["id"].as_str().unwrap().to_owned();
    // 25 refunds of 1.00 at once against 10.00: exactly 10 can succeed.
    let requests = (0..25).map(|_| refund(&app, &m.sk, &txn, json!({"amount": "1.00"}), None));
    let responses = futures::future::join_all(requests).await;
    let mut ok = 0;
    for r in responses {
        match r.status().as_u16() {
            201 => ok += 1,
            400 => {
                let code = body(r).await["error"]["code"].as_str().unwrap().to_owned();
                assert!(
                    code == "refund_exceeds_remaining" || code == "transaction_fully_refunded",
                    "{code}"
                );
            }
            other => panic!("unexpected {other}: {}", r.text().await.unwrap()),
        }
    }
    assert_eq!(ok, 10);
    assert_eq!(app.voucher_balance(&m.pk, &code).await, "100.00");
    let (ok, report) = app.audit();
    assert!(ok, "{report}");
}

#[tokio::test]
async fn an_expired_voucher_gets_its_share_on_a_newly_issued_voucher() {
    let app = TestApp::spawn().await;
    let m = app.create_merchant(250).await;
    let code = app.issue_one("80.00").await;
    let r = app.pay(&m.pk, "ORDER_1", "30.00", &[&code], None).await;
    let txn = body(r).await["id"].as_str().unwrap().to_owned();

    // The voucher expires after the payment.
    let db = app.db().await;
    let past = time::OffsetDateTime::now_utc() - time::Duration::days(1);
    db.execute(Statement::from_sql_and_values(
        db.get_database_backend(),
        if crate::helpers::is_sqlite() {
            "UPDATE vouchers SET expires_at = ?"
        } else {
            "UPDATE vouchers SET expires_at = $1"
        },
        [DbValue::from(past)],
    ))
    .await
    .unwrap();
    let r = app
        .post("/api/vouchers/check", &m.pk, &json!({"code": code}), None)
        .await;
    assert_eq!(body(r).await["reason"], "voucher_declined");

    let r = refund(
        &app,
        &m.sk,
        &txn,
        json!({"amount": "12.50"}),
        Some("refund-1"),
    )
    .await;
    assert_eq!(r.status(), 201);
    let v = body(r).await;
    let new_voucher = &v["vouchers"][0]["new_voucher"];
    assert_eq!(v["vouchers"][0]["last4"], &code[15..]);
    assert_eq!(new_voucher["amount"], "12.50");
    let new_code = new_voucher["code"].as_str().unwrap().to_owned();
    assert_eq!(new_voucher["last4"], &new_code[15..]);

    // The replay of the same request shows the same new code; nothing is issued twice.
    let r = refund(
        &app,
        &m.sk,
        &txn,
        json!({"amount": "12.50"}),
        Some("refund-1"),
    )
    .await;
    assert_eq!(r.status(), 201);
    assert_eq!(r.headers()["idempotent-replayed"], "true");
    assert_eq!(body(r).await, v);
    let r = refund(
        &app,
        &m.sk,
        &txn,
        json!({"amount": "1.00"}),
        Some("refund-1"),
    )
    .await;
    assert_eq!(r.status(), 400);
    assert_eq!(body(r).await["error"]["code"], "idempotency_key_reused");
    assert_eq!(app.count("refunds").await, 1);

    // The new voucher pays; the transaction shows the new voucher by last4 only.
    assert_eq!(app.voucher_balance(&m.pk, &new_code).await, "12.50");
    let r = app.pay(&m.pk, "ORDER_2", "12.50", &[&new_code], None).await;
    assert_eq!(r.status(), 201);
    let (_, t) = get(&app, &format!("/api/transactions/{txn}"), &m.sk).await;
    assert_eq!(
        t["refunds"][0]["vouchers"][0]["new_voucher"]["last4"],
        &new_code[15..]
    );
    assert!(t["refunds"][0]["vouchers"][0]["new_voucher"]
        .get("code")
        .is_none());
    assert!(!app.logs().contains(&new_code.replace('-', "")));
    let (ok, report) = app.audit();
    assert!(ok, "{report}");
}

#[tokio::test]
async fn a_reason_is_limited_in_characters_not_bytes() {
    let app = TestApp::spawn().await;
    let m = app.create_merchant(250).await;
    let code = app.issue_one("50.00").await;
    let r = app
        .pay(&m.pk, "ORDER_REASON", "20.00", &[&code], None)
        .await;
    assert_eq!(r.status(), 201);
    let txn = body(r).await["id"].as_str().unwrap().to_owned();

    // 500 characters of two bytes each are within the documented limit ...
    let r = refund(
        &app,
        &m.sk,
        &txn,
        json!({"amount": "1.00", "reason": "é".repeat(500)}),
        None,
    )
    .await;
    assert_eq!(r.status(), 201);
    // ... 501 are not.
    let r = refund(
        &app,
        &m.sk,
        &txn,
        json!({"amount": "1.00", "reason": "é".repeat(501)}),
        None,
    )
    .await;
    assert_eq!(r.status(), 400);
    assert_eq!(body(r).await["error"]["code"], "reason_too_long");
}

/// A voucher's stored balance, read from its row (no request, so nothing tops it up first).
async fn stored_balance(app: &TestApp, code: &str) -> i64 {
    let db = app.db().await;
    let row = db
        .query_one(Statement::from_string(
            db.get_database_backend(),
            format!(
                "SELECT balance_minor FROM vouchers WHERE code_hmac = '{}'",
                crate::helpers::code_hmac(code)
            ),
        ))
        .await
        .unwrap()
        .unwrap();
    db.close().await.ok();
    row.try_get("", "balance_minor").unwrap()
}

#[tokio::test]
async fn a_magic_test_voucher_holds_its_nominal_balance_after_refunds() {
    let app = TestApp::spawn().await;
    let m = app.create_merchant(250).await;
    let five = "TEST-5000-0000-0004";
    // Paid twice: it is topped back up to 5.00 before the second payment.
    let mut paid = Vec::new();
    for order in ["MAGIC_1", "MAGIC_2"] {
        let r = app.pay(&m.pk, order, "5.00", &[five], None).await;
        assert_eq!(r.status(), 201);
        paid.push(body(r).await["id"].as_str().unwrap().to_owned());
    }
    // Both refunded: 10.00 goes back to a voucher that holds 5.00 between uses.
    for txn in &paid {
        let r = refund(&app, &m.sk, txn, json!({}), None).await;
        assert_eq!(r.status(), 201);
    }
    assert_eq!(stored_balance(&app, five).await, 500);
    assert_eq!(app.voucher_balance(&m.pk, five).await, "5.00");
    let r = app.pay(&m.pk, "MAGIC_BIG", "5.01", &[five], None).await;
    assert_eq!(r.status(), 402);
    assert_eq!(body(r).await["error"]["code"], "insufficient_balance");

    // The same for the always-paying code, refunded in part.
    let always = "TEST-4242-4242-424X";
    let r = app.pay(&m.pk, "ALWAYS_1", "10.00", &[always], None).await;
    assert_eq!(r.status(), 201);
    let first = body(r).await["id"].as_str().unwrap().to_owned();
    let r = app.pay(&m.pk, "ALWAYS_2", "1.00", &[always], None).await;
    assert_eq!(r.status(), 201);
    let r = refund(&app, &m.sk, &first, json!({"amount": "4.00"}), None).await;
    assert_eq!(r.status(), 201);
    assert_eq!(stored_balance(&app, always).await, 100_000_000);
    assert_eq!(app.voucher_balance(&m.pk, always).await, "1000000.00");

    let (ok, report) = app.audit();
    assert!(ok, "{report}");
}
