//! Voucher kinds: JSON rules validated against the schema on issuance, and the new rules
//! (minimum order, expiry after first use, allow-list, single use) enforced when paying.
use sea_orm::{ConnectionTrait, Statement, Value as DbValue};
use serde_json::{json, Value};

use crate::helpers::{body, TestApp, ADMIN_TOKEN};

async fn issue_with(app: &TestApp, amount: &str, extra: Value) -> reqwest::Response {
    let mut req = json!({"currency": "EUR", "amount": amount, "count": 1});
    for (k, v) in extra.as_object().unwrap() {
        req[k] = v.clone();
    }
    app.post("/api/admin/vouchers", ADMIN_TOKEN, &req, None)
        .await
}

/// Issues one voucher of the kind `rules`; returns (id, code).
async fn issue_kind(app: &TestApp, amount: &str, rules: Value) -> (i64, String) {
    let r = issue_with(app, amount, json!({ "rules": rules })).await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let v = body(r).await;
    (
        v["vouchers"][0]["id"].as_i64().unwrap(),
        v["vouchers"][0]["code"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test]
async fn invalid_rules_are_refused_with_the_schema_error_path() {
    let app = TestApp::spawn().await;
    for (rules, param) in [
        (json!({"merchants": ["shop-1"]}), "rules/merchants/0"),
        (
            json!({"single_use": true, "reloadable": true}),
            "rules/reloadable",
        ),
        (
            json!({"expires_after_first_use_days": 0}),
            "rules/expires_after_first_use_days",
        ),
        (json!({"min_order": "20.00"}), "rules"),
        (
            json!({"min_order_amount": "20.001"}),
            "rules/min_order_amount",
        ),
        (json!({"expires_at": "next week"}), "rules/expires_at"),
    ] {
        let r = issue_with(&app, "50.00", json!({ "rules": rules })).await;
        assert_eq!(r.status(), 400, "{rules}");
        let e = body(r).await;
        assert_eq!(e["error"]["code"], "invalid_voucher_rules", "{rules}: {e}");
        assert_eq!(e["error"]["param"], param, "{rules}: {e}");
    }
    // The rules are given in one place, not two.
    let r = issue_with(
        &app,
        "50.00",
        json!({"rules": {"single_use": true}, "min_order_amount": "10.00"}),
    )
    .await;
    assert_eq!(r.status(), 400);
    assert_eq!(body(r).await["error"]["param"], "rules");
    assert_eq!(app.count("vouchers WHERE initial_minor = 5000").await, 0);
}

#[tokio::test]
async fn a_minimum_order_in_the_rules_is_enforced_when_paying() {
    let app = TestApp::spawn().await;
    let m = app.create_merchant(250).await;
    let (_, code) = issue_kind(&app, "50.00", json!({"min_order_amount": "20.00"})).await;
    let r = app.pay(&m.pk, "ORDER_1", "19.99", &[&code], None).await;
    assert_eq!(r.status(), 402);
    assert_eq!(body(r).await["error"]["code"], "minimum_order_not_met");
    let r = app.pay(&m.pk, "ORDER_1", "20.00", &[&code], None).await;
    assert_eq!(r.status(), 201);
}

#[tokio::test]
async fn a_kind_expiring_after_first_use_expires_that_many_days_after_its_first_payment() {
    let app = TestApp::spawn().await;
    let m = app.create_merchant(250).await;
    let (id, code) = issue_kind(&app, "50.00", json!({"expires_after_first_use_days": 30})).await;
    // Unused, it does not expire.
    let r = app
        .post("/api/vouchers/check", &m.pk, &json!({"code": code}), None)
        .await;
    assert!(body(r).await.get("expires_at").is_none());
    let r = app.pay(&m.pk, "ORDER_1", "10.00", &[&code], None).await;
    assert_eq!(r.status(), 201);
    let r = app
        .post("/api/vouchers/check", &m.pk, &json!({"code": code}), None)
        .await;
    let checked = body(r).await;
    assert_eq!(checked["valid"], true);
    assert!(checked["expires_at"].is_string(), "{checked}");
    // A later payment does not restart the clock: put the first use 30 days back.
    let db = app.db().await;
    let first_use = time::OffsetDateTime::now_utc() - time::Duration::days(30);
    db.execute(Statement::from_sql_and_values(
        db.get_database_backend(),
        if crate::helpers::is_sqlite() {
            "UPDATE vouchers SET first_used_at = ? WHERE id = ?"
        } else {
            "UPDATE vouchers SET first_used_at = $1 WHERE id = $2"
        },
        [DbValue::from(first_use), DbValue::from(id)],
    ))
    .await
    .unwrap();
    let r = app.pay(&m.pk, "ORDER_2", "10.00", &[&code], None).await;
    assert_eq!(r.status(), 402);
    // Expired: the shopper gets the uniform decline, the precise reason stays in the log.
    assert_eq!(body(r).await["error"]["code"], "voucher_declined");
}

#[tokio::test]
async fn the_allow_list_single_use_and_fixed_expiry_of_a_kind_hold() {
    let app = TestApp::spawn().await;
    let m = app.create_merchant(250).await;
    let other = app.create_merchant(250).await;
    let (_, code) = issue_kind(
        &app,
        "50.00",
        json!({"merchants": [m.id], "single_use": true, "expires_at": "2099-01-01T00:00:00Z"}),
    )
    .await;
    let r = app
        .post("/api/vouchers/check", &m.pk, &json!({"code": code}), None)
        .await;
    assert_eq!(body(r).await["expires_at"], "2099-01-01T00:00:00Z");
    let r = app.pay(&other.pk, "ORDER_1", "10.00", &[&code], None).await;
    assert_eq!(r.status(), 402);
    assert_eq!(body(r).await["error"]["code"], "voucher_not_accepted");
    let r = app.pay(&m.pk, "ORDER_1", "10.00", &[&code], None).await;
    assert_eq!(r.status(), 201);
    let r = app.pay(&m.pk, "ORDER_2", "10.00", &[&code], None).await;
    assert_eq!(r.status(), 402);
    assert_eq!(body(r).await["error"]["code"], "voucher_already_used");
    let (ok, out) = app.audit();
    assert!(ok, "{out}");
}
