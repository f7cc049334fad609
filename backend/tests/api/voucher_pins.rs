//! Optional PINs per voucher kind: shown once at issuance, stored only hashed, required by
//! payments, and a wrong PIN counted by the guessing lockout like a wrong code.
use sea_orm::{ConnectionTrait, Statement};
use serde_json::{json, Value};

use crate::helpers::{body, TestApp, ADMIN_TOKEN};

/// Issues one voucher whose kind requires a PIN; returns (id, code, pin).
async fn issue_with_pin(app: &TestApp, amount: &str) -> (i64, String, String) {
    let r = app
        .post(
            "/api/admin/vouchers",
            ADMIN_TOKEN,
            &json!({"currency": "EUR", "amount": amount, "count": 1, "rules": {"pin_required": true}}),
            None,
        )
        .await;
    assert_eq!(r.status(), 201);
    let v = body(r).await;
    let v = &v["vouchers"][0];
    (
        v["id"].as_i64().unwrap(),
        v["code"].as_str().unwrap().to_owned(),
        v["pin"].as_str().unwrap().to_owned(),
    )
}

async fn pay_with_pin(
    app: &TestApp,
    pk: &str,
    order: &str,
    code: &str,
    pin: Option<&str>,
) -> reqwest::Response {
    let mut voucher = json!({"code": code});
    if let Some(pin) = pin {
        voucher["pin"] = Value::from(pin);
    }
    app.post(
        "/api/process-payment/",
        pk,
        &json!({"order_id": order, "amount": "10.00", "currency": "EUR", "vouchers": [voucher]}),
        None,
    )
    .await
}

fn wrong(pin: &str) -> String {
    let n: u32 = pin.parse().unwrap();
    format!("{:06}", (n + 1) % 1_000_000)
}

#[tokio::test]
async fn a_voucher_whose_kind_requires_a_pin_pays_only_with_its_pin() {
    let app = TestApp::spawn().await;
    let m = app.create_merchant(250).await;
    let (id, code, pin) = issue_with_pin(&app, "50.00").await;
    assert_eq!(pin.len(), 6);
    assert!(pin.bytes().all(|b| b.is_ascii_digit()));

    // Stored only as an Argon2id hash, never as the PIN.
    let db = app.db().await;
    let row = db
        .query_one(Statement::from_string(
            db.get_database_backend(),
            format!("SELECT pin_hash FROM vouchers WHERE id = {id}"),
        ))
        .await
        .unwrap()
        .unwrap();
    let stored: String = row.try_get("", "pin_hash").unwrap();
    assert!(stored.starts_with("$argon2id$"), "{stored}");
    assert!(!stored.contains(&pin));

    let r = app
        .post("/api/vouchers/check", &m.pk, &json!({"code": code}), None)
        .await;
    assert_eq!(body(r).await["pin_required"], true);
    let plain = app.issue_one("50.00").await;
    let r = app
        .post("/api/vouchers/check", &m.pk, &json!({"code": plain}), None)
        .await;
    assert!(body(r).await.get("pin_required").is_none());

    let r = pay_with_pin(&app, &m.pk, "ORDER_1", &code, None).await;
    assert_eq!(r.status(), 402);
    let e = body(r).await;
    assert_eq!(e["error"]["code"], "pin_required");
    assert_eq!(e["error"]["param"], "vouchers[0]");
    let r = pay_with_pin(&app, &m.pk, "ORDER_1", &code, Some(&wrong(&pin))).await;
    assert_eq!(r.status(), 402);
    assert_eq!(body(r).await["error"]["code"], "pin_invalid");
    let r = pay_with_pin(&app, &m.pk, "ORDER_1", &code, Some(&pin)).await;
    assert_eq!(r.status(), 201);
    assert_eq!(app.voucher_balance(&m.pk, &code).await, "40.00");
    // A voucher without a PIN ignores none being sent.
    let r = pay_with_pin(&app, &m.pk, "ORDER_2", &plain, None).await;
    assert_eq!(r.status(), 201);
    let logs = app.logs();
    assert!(!logs.contains(&pin), "the PIN reached a log line");
}

#[tokio::test]
async fn a_wrong_pin_is_counted_by_the_guessing_lockout_like_a_wrong_code() {
    let app = TestApp::spawn_with(&[("GUESS_LOCKOUT_THRESHOLD", "2")]).await;
    let m = app.create_merchant(250).await;
    let (_, code, pin) = issue_with_pin(&app, "50.00").await;
    for n in 0..3 {
        let r = pay_with_pin(
            &app,
            &m.pk,
            &format!("ORDER_{n}"),
            &code,
            Some(&wrong(&pin)),
        )
        .await;
        assert_eq!(r.status(), 402);
        assert_eq!(body(r).await["error"]["code"], "pin_invalid");
    }
    // Locked out now, even with the right PIN: guessing PINs costs what guessing codes does.
    let r = pay_with_pin(&app, &m.pk, "ORDER_9", &code, Some(&pin)).await;
    assert_eq!(r.status(), 429);
    assert_eq!(body(r).await["error"]["code"], "too_many_failed_attempts");
}

/// The missing PIN is found whichever voucher lacks it and whether or not another voucher of
/// the payment carries one (a payment without any PIN finds it on the rows it locks, one with
/// some PIN when it checks them), and nothing is debited.
#[tokio::test]
async fn a_missing_pin_is_named_at_its_place_among_several_vouchers() {
    let app = TestApp::spawn().await;
    let m = app.create_merchant(250).await;
    let (_, code, pin) = issue_with_pin(&app, "50.00").await;
    let (_, other, other_pin) = issue_with_pin(&app, "50.00").await;
    let plain = app.issue_one("50.00").await;
    let pay = |vouchers: Value| {
        let pk = m.pk.clone();
        let app = &app;
        async move {
            let r = app
                .post(
                    "/api/process-payment/",
                    &pk,
                    &json!({"order_id": "ORDER_1", "amount": "60.00", "currency": "EUR", "vouchers": vouchers}),
                    None,
                )
                .await;
            (r.status().as_u16(), body(r).await)
        }
    };
    let (status, e) = pay(json!([{"code": plain}, {"code": code}])).await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (402, Some("pin_required"))
    );
    assert_eq!(e["error"]["param"], "vouchers[1]");
    let (status, e) = pay(json!([{"code": other, "pin": other_pin}, {"code": code}])).await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (402, Some("pin_required"))
    );
    assert_eq!(e["error"]["param"], "vouchers[1]");
    for c in [&code, &other, &plain] {
        assert_eq!(app.voucher_balance(&m.pk, c).await, "50.00");
    }
    let (status, _) = pay(json!([{"code": code, "pin": pin}, {"code": plain}])).await;
    assert_eq!(status, 201);
}
