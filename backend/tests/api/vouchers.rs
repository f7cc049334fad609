//! POST /api/vouchers/check: balance, validity and rate limiting.
use serde_json::json;

use crate::helpers::{body, retry_after, TestApp};

#[tokio::test]
async fn a_valid_code_shows_its_balance_in_any_spelling() {
    let app = TestApp::spawn().await;
    let m = app.create_merchant(250).await;
    let code = app.issue_one("50.00").await;
    let sloppy = code.to_lowercase().replace('-', " ");
    let v = body(
        app.post("/api/vouchers/check", &m.pk, &json!({"code": sloppy}), None)
            .await,
    )
    .await;
    assert_eq!(
        v,
        json!({"valid": true, "balance": "50.00", "currency": "EUR", "last4": &code[15..]})
    );
}

#[tokio::test]
async fn an_unknown_code_gets_the_uniform_answer() {
    let app = TestApp::spawn().await;
    let m = app.create_merchant(250).await;
    let unknown = superpayment_core::VoucherCode::generate([3; 10]).formatted();
    let v = body(
        app.post(
            "/api/vouchers/check",
            &m.pk,
            &json!({"code": unknown}),
            None,
        )
        .await,
    )
    .await;
    assert_eq!(v["valid"], false);
    assert_eq!(v["reason"], "voucher_declined");
    assert!(v.get("balance").is_none());
}

#[tokio::test]
async fn checking_too_often_is_rate_limited_with_retry_after_and_the_gcra_headers_of_payments() {
    let app = TestApp::spawn_with(&[("CHECK_RATE_LIMIT", "5")]).await;
    let m = app.create_merchant(250).await;
    let code = app.issue_one("50.00").await;
    for left in (0..5).rev() {
        let r = app
            .post("/api/vouchers/check", &m.pk, &json!({"code": code}), None)
            .await;
        assert_eq!(r.status(), 200);
        // The one limiting mechanism (GCRA) and its IETF headers, as on process-payment.
        assert_eq!(r.headers()["ratelimit-policy"], "\"per-client\";q=5;w=60");
        let state = r.headers()["ratelimit"].to_str().unwrap().to_owned();
        assert!(
            state.starts_with(&format!("\"per-client\";r={left};t=")),
            "{state}"
        );
    }
    let r = app
        .post("/api/vouchers/check", &m.pk, &json!({"code": code}), None)
        .await;
    assert_eq!(r.status(), 429);
    let retry = retry_after(&r);
    assert!((1..=60).contains(&retry));
    assert!(r.headers().contains_key("ratelimit"));
    assert_eq!(body(r).await["error"]["code"], "rate_limited");
    // Another shop's key at the same address has a budget of its own.
    let other = app.create_merchant(250).await;
    let r = app
        .post(
            "/api/vouchers/check",
            &other.pk,
            &json!({"code": code}),
            None,
        )
        .await;
    assert_eq!(r.status(), 200);
}
