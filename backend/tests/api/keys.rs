//! API keys: kinds, unknown keys, and secrets kept out of logs.
use serde_json::json;

use crate::helpers::{body, TestApp};

#[tokio::test]
async fn a_secret_key_on_a_widget_endpoint_is_forbidden() {
    let app = TestApp::spawn().await;
    let m = app.create_merchant(250).await;
    let code = app.issue_one("50.00").await;
    let r = app.pay(&m.sk, "ORDER_1", "10.00", &[&code], None).await;
    assert_eq!(r.status(), 403);
    assert_eq!(body(r).await["error"]["code"], "secret_key_not_allowed");
    let r = app
        .post("/api/vouchers/check", &m.sk, &json!({"code": code}), None)
        .await;
    assert_eq!(r.status(), 403);
    assert_eq!(app.count("transactions").await, 0);
}

#[tokio::test]
async fn unknown_malformed_and_missing_keys_are_401() {
    let app = TestApp::spawn().await;
    let code = app.issue_one("50.00").await;
    for key in [
        "pk_test_00000000000000000000000000000000",
        "not-a-key",
        "sk_live_",
    ] {
        let r = app.pay(key, "ORDER_1", "10.00", &[&code], None).await;
        assert_eq!(r.status(), 401, "{key}");
        assert_eq!(body(r).await["error"]["type"], "authentication_error");
    }
    let r = app
        .client
        .post(app.url("/api/process-payment/"))
        .json(&json!({"order_id": "O", "amount": "1.00", "currency": "EUR", "vouchers": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(body(r).await["error"]["code"], "missing_api_key");
}

#[tokio::test]
async fn a_key_sent_without_the_bearer_scheme_is_told_to_add_it_and_never_echoed() {
    let app = TestApp::spawn().await;
    let m = app.create_merchant(250).await;
    let basic = format!(
        "Basic {}",
        base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            format!("{}:", m.sk)
        )
    );
    for value in [m.sk.clone(), format!("Token {}", m.sk), basic] {
        let r = app
            .client
            .get(app.url("/api/transactions"))
            .header("Authorization", &value)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{value}");
        let text = r.text().await.unwrap();
        assert!(!text.contains(&m.sk[8..]), "the key is echoed: {text}");
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["error"]["type"], "authentication_error");
        assert_eq!(v["error"]["code"], "invalid_authorization_scheme");
        let message = v["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("`Authorization: Bearer <key>`"),
            "{message}"
        );
    }
    // No header at all, or the scheme alone, is still a missing key.
    for value in [None, Some("Bearer ")] {
        let mut req = app.client.get(app.url("/api/transactions"));
        if let Some(v) = value {
            req = req.header("Authorization", v);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), 401);
        assert_eq!(body(r).await["error"]["code"], "missing_api_key");
    }
    assert!(!app.logs().contains(&m.sk[8..]));
}

#[tokio::test]
async fn logs_never_contain_a_key_or_a_voucher_code() {
    let app = TestApp::spawn().await;
    let m = app.create_merchant(250).await;
    let code = app.issue_one("150.00").await;
    let other = app.issue_one("10.00").await;
    app.post("/api/vouchers/check", &m.pk, &json!({"code": code}), None)
        .await;
    assert_eq!(
        app.pay(&m.pk, "ORDER_1", "99.00", &[&code], Some("k"))
            .await
            .status(),
        201
    );
    app.pay(&m.pk, "ORDER_2", "99.00", &[&other], None).await;
    app.pay(&m.sk, "ORDER_3", "99.00", &[&other], None).await;
    let r = app
        .post(
            "/api/verify-transaction",
            &m.sk,
            &json!({"order_id": "ORDER_1"}),
            None,
        )
        .await;
    assert_eq!(r.status(), 200);

    let logs = app.logs();
    assert!(
        logs.contains("payment succeeded"),
        "the log is captured: {logs}"
    );
    let canonical = |c: &str| c.replace('-', "");
    for secret in [
        m.pk.as_str(),
        m.sk.as_str(),
        &code,
        &other,
        &canonical(&code),
        &canonical(&other),
        &m.sk[8..],
        &m.pk[8..],
    ] {
        assert!(!logs.contains(secret), "log leaks a secret");
    }
}
