//! Paying with one or several vouchers, and every documented refusal.
use serde_json::json;

use crate::helpers::{body, TestApp};

#[tokio::test]
async fn one_voucher_pays_an_order_and_keeps_the_rest_of_its_balance() {
    let app = TestApp::spawn().await;
    let m = app.create_merchant(250).await;
    let code = app.issue_one("150.00").await;

    let r = app
        .pay(&m.pk, "ORDER_123", "99.00", &[&code], Some("k1"))
        .await;
    assert_eq!(r.status(), 201);
    let v = body(r).await;
    assert!(v["id"].as_str().unwrap().starts_with("txn_"));
    assert_eq!(v["status"], "succeeded");
    assert_eq!(v["order_id"], "ORDER_123");
    assert_eq!(v["amount"], "99.00");
    assert_eq!(v["currency"], "EUR");
    assert_eq!(
        v["vouchers"],
        json!([{"last4": &code[15..], "amount": "99.00", "remaining_balance": "51.00"}])
    );
    let (ok, report) = app.audit();
    assert!(ok, "{report}");
}

#[tokio::test]
async fn two_vouchers_cover_the_amount_together_in_the_order_given() {
    let app = TestApp::spawn().await;
    let m = app.create_merchant(250).await;
    let a = app.issue_one("60.00").await;
    let b = app.issue_one("50.00").await;

    let r = app.pay(&m.pk, "ORDER_2", "99.00", &[&a, &b], None).await;
    assert_eq!(r.status(), 201);
    let v = body(r).await;
    assert_eq!(
        v["vouchers"],
        json!([
            {"last4": &a[15..], "amount": "60.00", "remaining_balance": "0.00"},
            {"last4": &b[15..], "amount": "39.00", "remaining_balance": "11.00"}
        ])
    );
    assert!(app.audit().0);
}

#[tokio::test]
async fn insufficient_total_balance_is_declined_and_touches_no_balance() {
    let app = TestApp::spawn().await;
    let m = app.create_merchant(250).await;
    let a = app.issue_one("40.00").await;
    let b = app.issue_one("50.00").await;

    let r = app.pay(&m.pk, "ORDER_3", "99.00", &[&a, &b], None).await;
    assert_eq!(r.status(), 402);
    let v = body(r).await;
    assert_eq!(v["error"]["type"], "voucher_error");
    assert_eq!(v["error"]["code"], "insufficient_balance");
    assert!(v["error"]["request_id"]
        .as_str()
        .unwrap()
        .starts_with("req_"));

    for (code, balance) in [(&a, "40.00"), (&b, "50.00")] {
        let c = body(
            app.post("/api/vouchers/check", &m.pk, &json!({"code": code}), None)
                .await,
        )
        .await;
        assert_eq!(c["balance"], balance);
    }
    assert_eq!(app.count("transactions").await, 0);
    assert_eq!(app.count("redemptions").await, 0);
    assert!(app.audit().0);
}

#[tokio::test]
async fn each_unusable_voucher_gets_its_documented_decline() {
    let app = TestApp::spawn().await;
    let m = app.create_merchant(250).await;
    let other = app.create_merchant(250).await;

    let expired = app.issue("EUR", "50.00", 1, json!({})).await.remove(0);
    // Expire it by moving the clock of the row, as an operator could not issue one in the past.
    let db = app.db().await;
    use sea_orm::{ConnectionTrait, Statement};
    db.execute(Statement::from_string(
        db.get_database_backend(),
        format!(
            "UPDATE vouchers SET expires_at = created_at WHERE code_hmac = '{}'",
            crate::helpers::code_hmac(&expired)
        ),
    ))
    .await
    .unwrap();
    let blocked = app.issue_one("50.00").await;
    let r = app
        .post(
            "/api/admin/vouchers/block",
            crate::helpers::ADMIN_TOKEN,
            &json!({"code": blocked}),
            None,
        )
        .await;
    assert_eq!(r.status(), 200);
    let usd = app.issue("USD", "50.00", 1, json!({})).await.remove(0);
    let restricted = app
        .issue("EUR", "50.00", 1, json!({"merchant_id": other.id}))
        .await
        .remove(0);
    let minimum = app
        .issue("EUR", "50.00", 1, json!({"min_order_amount": "30.00"}))
        .await
        .remove(0);
    let unknown = superpayment_core::VoucherCode::generate([9; 10]).formatted();

    for (code, expected) in [
        // Dead codes look like codes that never existed (the log keeps the reason).
        (&expired, "voucher_declined"),
        (&blocked, "voucher_declined"),
        (&usd, "voucher_currency_mismatch"),
        (&restricted, "voucher_not_accepted"),
        (&minimum, "minimum_order_not_met"),
        (&unknown, "voucher_declined"),
    ] {
        let r = app.pay(&m.pk, "ORDER_X", "10.00", &[code], None).await;
        assert_eq!(r.status(), 402, "{expected}");
        let v = body(r).await;
        assert_eq!(v["error"]["code"], expected);
        assert_eq!(v["error"]["param"], "vouchers[0]");
    }
    // The restricted voucher works for the merchant it belongs to.
    let r = app
        .pay(&other.pk, "ORDER_X", "10.00", &[&restricted], None)
        .await;
    assert_eq!(r.status(), 201);
    assert!(app.audit().0);
}

#[tokio::test]
async fn malformed_amounts_are_refused_naming_the_field() {
    let app = TestApp::spawn().await;
    let m = app.create_merchant(250).await;
    let code = app.issue_one("50.00").await;
    for amount in [
        "99.001",
        "-1",
        "0",
        "1e3",
        " 99",
        "",
        "99,00",
        "12345678901234567890",
    ] {
        let r = app.pay(&m.pk, "ORDER_A", amount, &[&code], None).await;
        assert_eq!(r.status(), 400, "amount {amount:?}");
        let v = body(r).await;
        assert_eq!(
            v["error"]["type"], "invalid_request_error",
            "amount {amount:?}"
        );
        assert_eq!(v["error"]["param"], "amount", "amount {amount:?}: {v}");
    }
    assert_eq!(app.count("transactions").await, 0);
}

#[tokio::test]
async fn every_invalid_field_is_listed_at_once() {
    let app = TestApp::spawn().await;
    let m = app.create_merchant(250).await;
    let r = app
        .post(
            "/api/process-payment",
            &m.pk,
            &json!({"order_id": "bad id!", "amount": "1.5", "currency": "XXX", "vouchers": [{"code": "ABCD"}]}),
            None,
        )
        .await;
    assert_eq!(r.status(), 400);
    let v = body(r).await;
    let params: Vec<&str> = v["error"]["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["param"].as_str().unwrap())
        .collect();
    for p in ["order_id", "currency", "vouchers[0].code"] {
        assert!(params.contains(&p), "{p} missing in {params:?}");
    }
}

#[tokio::test]
async fn a_code_with_one_wrong_symbol_is_refused_before_any_lookup() {
    let app = TestApp::spawn().await;
    let m = app.create_merchant(250).await;
    let code = app.issue_one("50.00").await;
    let mut typo: Vec<char> = code.chars().collect();
    typo[0] = if typo[0] == 'A' { 'B' } else { 'A' };
    let typo: String = typo.into_iter().collect();
    let r = app.pay(&m.pk, "ORDER_T", "10.00", &[&typo], None).await;
    assert_eq!(r.status(), 400);
    assert_eq!(body(r).await["error"]["code"], "invalid_code_checksum");
}

#[tokio::test]
async fn a_body_that_is_not_json_gets_the_one_error_shape() {
    let app = TestApp::spawn().await;
    let m = app.create_merchant(250).await;
    let r = app
        .client
        .post(app.url("/api/process-payment/"))
        .bearer_auth(&m.pk)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v = body(r).await;
    assert_eq!(v["error"]["code"], "malformed_body");
    assert!(v["error"]["request_id"].is_string());
}
