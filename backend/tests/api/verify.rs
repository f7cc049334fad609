//! verify-transaction: matches, mismatches, isolation between merchants, key kinds.
use serde_json::json;

use crate::helpers::{body, TestApp};

async fn paid(app: &TestApp) -> (crate::helpers::Merchant, String) {
    let m = app.create_merchant(250).await;
    let code = app.issue_one("150.00").await;
    let r = app.pay(&m.pk, "ORDER_123", "99.00", &[&code], None).await;
    assert_eq!(r.status(), 201);
    let id = body(r).await["id"].as_str().unwrap().to_owned();
    (m, id)
}

#[tokio::test]
async fn a_matching_transaction_is_verified_with_its_amounts() {
    let app = TestApp::spawn().await;
    let (m, id) = paid(&app).await;
    for req in [
        json!({"order_id": "ORDER_123", "expected_amount": "99", "expected_currency": "EUR"}),
        json!({"transaction_id": id, "order_id": "ORDER_123", "expected_amount": "99.00", "expected_currency": "EUR"}),
    ] {
        let r = app
            .post("/api/verify-transaction/", &m.sk, &req, None)
            .await;
        assert_eq!(r.status(), 200);
        let v = body(r).await;
        assert_eq!(v["verified"], true, "{v}");
        assert_eq!(v["mismatches"], json!([]));
        assert_eq!(v["transaction"]["id"], id.as_str());
        assert_eq!(v["transaction"]["amount"], "99.00");
        assert_eq!(v["transaction"]["commission"], "2.48");
        assert_eq!(v["transaction"]["net"], "96.52");
        assert_eq!(v["transaction"]["status"], "succeeded");
    }
}

#[tokio::test]
async fn each_mismatch_is_reported() {
    let app = TestApp::spawn().await;
    let (m, id) = paid(&app).await;
    let cases = [
        (
            json!({"transaction_id": id, "order_id": "ORDER_123", "expected_amount": "9.90", "expected_currency": "EUR"}),
            json!(["amount"]),
        ),
        (
            json!({"transaction_id": id, "order_id": "ORDER_123", "expected_amount": "99.00", "expected_currency": "USD"}),
            json!(["currency", "amount"]),
        ),
        (
            json!({"transaction_id": id, "order_id": "ORDER_999", "expected_amount": "99.00", "expected_currency": "EUR"}),
            json!(["order_id"]),
        ),
        (
            json!({"transaction_id": id, "order_id": "ORDER_9", "expected_amount": "1.00", "expected_currency": "GBP"}),
            json!(["order_id", "currency", "amount"]),
        ),
        // What is not stated cannot verify: each missing expectation is named.
        (
            json!({"transaction_id": id}),
            json!([
                "order_id_not_stated",
                "currency_not_stated",
                "amount_not_stated"
            ]),
        ),
        (
            json!({"transaction_id": id, "order_id": "ORDER_123", "expected_currency": "EUR"}),
            json!(["amount_not_stated"]),
        ),
        (
            json!({"order_id": "ORDER_123", "expected_amount": "99.00"}),
            json!(["currency_not_stated"]),
        ),
    ];
    for (req, expected) in cases {
        let v = body(
            app.post("/api/verify-transaction/", &m.sk, &req, None)
                .await,
        )
        .await;
        assert_eq!(v["verified"], false, "{v}");
        assert_eq!(v["mismatches"], expected);
    }
}

#[tokio::test]
async fn another_merchants_transaction_is_not_found() {
    let app = TestApp::spawn().await;
    let (_, id) = paid(&app).await;
    let intruder = app.create_merchant(100).await;
    for req in [
        json!({"transaction_id": id}),
        json!({"order_id": "ORDER_123"}),
    ] {
        let r = app
            .post("/api/verify-transaction", &intruder.sk, &req, None)
            .await;
        assert_eq!(r.status(), 404);
        let text = r.text().await.unwrap();
        assert!(
            !text.contains("99.00") && !text.contains(&id[4..]),
            "{text}"
        );
    }
}

#[tokio::test]
async fn a_live_key_does_not_see_test_transactions() {
    let app = TestApp::spawn().await;
    let (m, id) = paid(&app).await;
    let (_, live_sk) = app.create_live_keys(&m.id);
    assert!(live_sk.starts_with("sk_live_"));
    let r = app
        .post(
            "/api/verify-transaction",
            &live_sk,
            &json!({"transaction_id": id}),
            None,
        )
        .await;
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn a_publishable_key_cannot_verify() {
    let app = TestApp::spawn().await;
    let (m, id) = paid(&app).await;
    let r = app
        .post(
            "/api/verify-transaction/",
            &m.pk,
            &json!({"transaction_id": id}),
            None,
        )
        .await;
    assert_eq!(r.status(), 403);
    assert_eq!(body(r).await["error"]["code"], "secret_key_required");
}

#[tokio::test]
async fn an_unknown_transaction_is_404_and_no_reference_is_400() {
    let app = TestApp::spawn().await;
    let m = app.create_merchant(250).await;
    let r = app
        .post(
            "/api/verify-transaction",
            &m.sk,
            &json!({"transaction_id": "txn_nope"}),
            None,
        )
        .await;
    assert_eq!(r.status(), 404);
    let r = app
        .post("/api/verify-transaction", &m.sk, &json!({}), None)
        .await;
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn money_fields_sent_as_json_numbers_are_refused_and_nothing_is_written() {
    let app = TestApp::spawn().await;
    let (m, id) = paid(&app).await;
    let code = app.issue_one("150.00").await;
    let r = app
        .post(
            "/api/process-payment/",
            &m.pk,
            &json!({"order_id": "ORDER_N", "amount": 12.5, "currency": "EUR", "vouchers": [{"code": code}]}),
            None,
        )
        .await;
    assert_eq!(r.status(), 400);
    assert_eq!(body(r).await["error"]["code"], "amount_not_a_string");
    assert_eq!(app.count("transactions").await, 1);
    let r = app
        .post(
            "/api/verify-transaction/",
            &m.sk,
            &json!({"transaction_id": id, "order_id": "ORDER_123", "expected_amount": 99, "expected_currency": "EUR"}),
            None,
        )
        .await;
    assert_eq!(r.status(), 400);
    assert_eq!(body(r).await["error"]["code"], "amount_not_a_string");
    let r = app
        .post(
            &format!("/api/transactions/{id}/refunds"),
            &m.sk,
            &json!({"amount": 1}),
            None,
        )
        .await;
    assert_eq!(r.status(), 400);
    assert_eq!(body(r).await["error"]["code"], "amount_not_a_string");
    assert_eq!(app.count("refunds").await, 0);
}

/// By id the transaction and its voucher lines come in one statement, by order id in two:
/// both give the vouchers the payment used, in the order applied, as the receipt did.
#[tokio::test]
async fn the_vouchers_of_a_split_payment_are_listed_in_the_order_applied() {
    let app = TestApp::spawn().await;
    let m = app.create_merchant(250).await;
    let first = app.issue_one("30.00").await;
    let second = app.issue_one("100.00").await;
    let r = app
        .pay(&m.pk, "ORDER_SPLIT", "99.00", &[&first, &second], None)
        .await;
    assert_eq!(r.status(), 201);
    let receipt = body(r).await;
    let used: Vec<_> = receipt["vouchers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| json!({"last4": v["last4"], "amount": v["amount"]}))
        .collect();
    assert_eq!(used.len(), 2, "{receipt}");
    assert_eq!(used[0]["amount"], "30.00");
    assert_eq!(used[1]["amount"], "69.00");
    let id = receipt["id"].as_str().unwrap();
    for req in [
        json!({"transaction_id": id, "order_id": "ORDER_SPLIT", "expected_amount": "99.00", "expected_currency": "EUR"}),
        json!({"order_id": "ORDER_SPLIT", "expected_amount": "99.00", "expected_currency": "EUR"}),
    ] {
        let r = app
            .post("/api/verify-transaction/", &m.sk, &req, None)
            .await;
        assert_eq!(r.status(), 200);
        let v = body(r).await;
        assert_eq!(v["verified"], true, "{v}");
        assert_eq!(v["transaction"]["vouchers"], json!(used), "{req}");
    }
    // The same id under another merchant's key is not found.
    let other = app.create_merchant(250).await;
    let r = app
        .post(
            "/api/verify-transaction/",
            &other.sk,
            &json!({"transaction_id": id, "order_id": "ORDER_SPLIT", "expected_amount": "99.00", "expected_currency": "EUR"}),
            None,
        )
        .await;
    assert_eq!(r.status(), 404);
}
