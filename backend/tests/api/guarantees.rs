//! The payment guarantees at their edges: refunded transactions never verify, single-use
//! remainders stay forfeited, payments and refunds keep apart idempotency keys, replays
//! survive a lock that failed open, verify reads the primary, unknown fields are refused,
//! and every ledger account is per currency.
use sea_orm::{ConnectionTrait, Statement};
use serde_json::{json, Value};

use crate::helpers::{body, code_hmac, is_sqlite, TestApp};

async fn refund(app: &TestApp, sk: &str, txn: &str, req: Value, key: Option<&str>) -> Value {
    let r = app
        .post(&format!("/api/transactions/{txn}/refunds"), sk, &req, key)
        .await;
    let status = r.status().as_u16();
    let mut v = body(r).await;
    v["_status"] = json!(status);
    v
}

async fn paid_order(app: &TestApp, pk: &str, order: &str, amount: &str, code: &str) -> String {
    let r = app.pay(pk, order, amount, &[code], None).await;
    assert_eq!(r.status(), 201);
    body(r).await["id"].as_str().unwrap().to_owned()
}

async fn verify(app: &TestApp, sk: &str, req: Value) -> Value {
    let r = app.post("/api/verify-transaction/", sk, &req, None).await;
    assert_eq!(r.status(), 200);
    body(r).await
}

fn assert_audit_clean(app: &TestApp) {
    let (ok, out) = app.audit();
    assert!(ok, "audit failed:\n{out}");
}

#[tokio::test]
async fn a_fully_refunded_transaction_is_never_verified() {
    let app = TestApp::spawn().await;
    let m = app.create_merchant(250).await;
    let code = app.issue_one("150.00").await;
    let txn = paid_order(&app, &m.pk, "ORDER_1", "99.00", &code).await;
    let r = refund(&app, &m.sk, &txn, json!({}), None).await;
    assert_eq!(r["_status"], 201, "{r}");

    let v = verify(
        &app,
        &m.sk,
        json!({"transaction_id": txn, "order_id": "ORDER_1", "expected_amount": "99.00", "expected_currency": "EUR"}),
    )
    .await;
    assert_eq!(v["verified"], false, "{v}");
    assert_eq!(v["mismatches"], json!(["status"]));
    assert_eq!(v["transaction"]["status"], "refunded");
    assert_eq!(v["transaction"]["refunded_amount"], "99.00");
    // Accepting partial refunds never accepts a full one.
    let v = verify(
        &app,
        &m.sk,
        json!({"transaction_id": txn, "order_id": "ORDER_1", "expected_amount": "99.00", "expected_currency": "EUR", "accept_partially_refunded": true}),
    )
    .await;
    assert_eq!(v["verified"], false, "{v}");
    assert_eq!(v["mismatches"], json!(["status"]));
}

#[tokio::test]
async fn a_partially_refunded_transaction_verifies_only_when_the_merchant_accepts_it() {
    let app = TestApp::spawn().await;
    let m = app.create_merchant(250).await;
    let code = app.issue_one("150.00").await;
    let txn = paid_order(&app, &m.pk, "ORDER_1", "99.00", &code).await;
    let r = refund(&app, &m.sk, &txn, json!({"amount": "10.00"}), None).await;
    assert_eq!(r["_status"], 201, "{r}");
    let expected = json!({"transaction_id": txn, "order_id": "ORDER_1", "expected_amount": "99.00", "expected_currency": "EUR"});

    let v = verify(&app, &m.sk, expected.clone()).await;
    assert_eq!(v["verified"], false, "{v}");
    assert_eq!(v["mismatches"], json!(["status"]));
    assert_eq!(v["transaction"]["status"], "partially_refunded");
    assert_eq!(v["transaction"]["refunded_amount"], "10.00");

    let mut accepting = expected.clone();
    accepting["accept_partially_refunded"] = json!(true);
    let v = verify(&app, &m.sk, accepting).await;
    assert_eq!(v["verified"], true, "{v}");
    assert_eq!(v["mismatches"], json!([]));
    assert_eq!(v["transaction"]["status"], "partially_refunded");
    assert_eq!(v["transaction"]["refunded_amount"], "10.00");

    // The listing, the retrieval and the verdict agree on the status.
    let r = app
        .client
        .get(app.url(&format!("/api/transactions/{txn}")))
        .bearer_auth(&m.sk)
        .send()
        .await
        .unwrap();
    assert_eq!(body(r).await["status"], "partially_refunded");
    let r = app
        .client
        .get(app.url("/api/transactions?status=partially_refunded"))
        .bearer_auth(&m.sk)
        .send()
        .await
        .unwrap();
    assert_eq!(body(r).await["data"][0]["id"], txn.as_str());
}

#[tokio::test]
async fn a_partial_refund_does_not_revive_a_single_use_vouchers_forfeited_remainder() {
    let app = TestApp::spawn().await;
    let m = app.create_merchant(250).await;
    let code = app
        .issue("EUR", "100.00", 1, json!({"single_use": true}))
        .await
        .remove(0);
    let txn = paid_order(&app, &m.pk, "ORDER_1", "60.00", &code).await;
    assert_audit_clean(&app);

    let r = refund(&app, &m.sk, &txn, json!({"amount": "0.01"}), None).await;
    assert_eq!(r["_status"], 201, "{r}");
    // The voucher stays used: neither the 40.00 forfeited nor the 0.01 returned can be spent.
    let r = app.pay(&m.pk, "ORDER_2", "0.01", &[&code], None).await;
    assert_eq!(r.status(), 402);
    assert_eq!(body(r).await["error"]["code"], "voucher_already_used");
    let r = app.pay(&m.pk, "ORDER_3", "40.01", &[&code], None).await;
    assert_eq!(r.status(), 402);
    assert_audit_clean(&app);

    // Refunding the whole payment undoes the use: the voucher is as it was issued.
    let r = refund(&app, &m.sk, &txn, json!({}), None).await;
    assert_eq!(r["_status"], 201, "{r}");
    assert_audit_clean(&app);
    let r = app
        .post("/api/vouchers/check", &m.pk, &json!({"code": code}), None)
        .await;
    let v = body(r).await;
    assert_eq!(v["valid"], true, "{v}");
    assert_eq!(v["balance"], "100.00");
    let r = app.pay(&m.pk, "ORDER_4", "100.00", &[&code], None).await;
    assert_eq!(r.status(), 201);
    assert_audit_clean(&app);
}

#[tokio::test]
async fn a_single_use_vouchers_remainder_is_posted_to_breakage() {
    let app = TestApp::spawn().await;
    let m = app.create_merchant(0).await;
    let code = app
        .issue("EUR", "100.00", 1, json!({"single_use": true}))
        .await
        .remove(0);
    paid_order(&app, &m.pk, "ORDER_1", "60.00", &code).await;
    let db = app.db().await;
    let row = db
        .query_one(Statement::from_string(
            db.get_database_backend(),
            "SELECT CAST(SUM(amount_minor) AS BIGINT) AS total FROM postings WHERE account = 'breakage:test:EUR'",
        ))
        .await
        .unwrap()
        .unwrap();
    let total: i64 = row.try_get("", "total").unwrap();
    assert_eq!(total, 4000);
}

#[tokio::test]
async fn a_declined_payment_cannot_take_the_idempotency_key_of_a_later_refund() {
    let app = TestApp::spawn().await;
    let m = app.create_merchant(250).await;
    let big = app.issue_one("150.00").await;
    let small = app.issue_one("1.00").await;
    let txn = paid_order(&app, &m.pk, "ORDER_1", "99.00", &big).await;
    // Anyone holding the public key sends a declined payment under the key...
    let r = app
        .pay(&m.pk, "ORDER_2", "50.00", &[&small], Some("refund-ORDER_1"))
        .await;
    assert_eq!(r.status(), 402);
    // ...which the merchant's refund later uses: the refund is unaffected.
    let r = refund(
        &app,
        &m.sk,
        &txn,
        json!({"amount": "5.00"}),
        Some("refund-ORDER_1"),
    )
    .await;
    assert_eq!(r["_status"], 201, "{r}");
    // And each key still replays within its own operation.
    let again = refund(
        &app,
        &m.sk,
        &txn,
        json!({"amount": "5.00"}),
        Some("refund-ORDER_1"),
    )
    .await;
    assert_eq!(again["id"], r["id"]);
    let r = app
        .pay(&m.pk, "ORDER_2", "50.00", &[&small], Some("refund-ORDER_1"))
        .await;
    assert_eq!(r.status(), 402);
}

#[tokio::test]
async fn the_idempotency_fingerprint_is_over_the_validated_request_and_never_the_code() {
    let app = TestApp::spawn().await;
    let m = app.create_merchant(250).await;
    let code = app.issue_one("150.00").await;
    let r = app
        .pay(&m.pk, "ORDER_1", "99.00", &[&code], Some("key-1"))
        .await;
    assert_eq!(r.status(), 201);
    // The same request written differently (code in lower case without dashes, "99" for
    // "99.00") is the same request: replayed, not refused as another body.
    let sloppy = code.replace('-', "").to_lowercase();
    let r = app
        .pay(&m.pk, "ORDER_1", "99", &[&sloppy], Some("key-1"))
        .await;
    assert_eq!(r.status(), 201);
    assert_eq!(
        r.headers()
            .get("idempotent-replayed")
            .map(|v| v.to_str().unwrap()),
        Some("true")
    );
    // What is stored is no unkeyed hash of anything holding the code.
    let db = app.db().await;
    let row = db
        .query_one(Statement::from_string(
            db.get_database_backend(),
            "SELECT request_hash, response_body FROM idempotency_keys",
        ))
        .await
        .unwrap()
        .unwrap();
    let stored: String = row.try_get("", "request_hash").unwrap();
    let response: String = row.try_get("", "response_body").unwrap();
    assert!(!response.contains(&code[15..]) || !response.contains("ORDER_1"));
    let hmac = code_hmac(&code);
    for candidate in [
        code.clone(),
        serde_json::to_string(&json!({"order_id": "ORDER_1", "amount": "99.00", "currency": "EUR", "vouchers": [{"code": code}]})).unwrap(),
    ] {
        assert_ne!(stored, sha256(&candidate));
    }
    assert!(!stored.contains(&hmac));
}

fn sha256(s: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(s.as_bytes()))
}

#[tokio::test]
async fn a_refund_amount_written_differently_is_the_same_refund() {
    let app = TestApp::spawn().await;
    let m = app.create_merchant(250).await;
    let code = app.issue_one("150.00").await;
    let txn = paid_order(&app, &m.pk, "ORDER_1", "99.00", &code).await;
    let first = refund(&app, &m.sk, &txn, json!({"amount": "10"}), Some("r1")).await;
    assert_eq!(first["_status"], 201, "{first}");
    let again = refund(&app, &m.sk, &txn, json!({"amount": "10.00"}), Some("r1")).await;
    assert_eq!(again["_status"], 201, "{again}");
    assert_eq!(again["id"], first["id"]);
}

#[tokio::test]
async fn the_same_key_and_body_at_two_instances_without_redis_is_replayed_never_409() {
    if is_sqlite() {
        // One SQLite file has one writer; two instances on it is not a supported shape.
        return;
    }
    let app = TestApp::spawn_without_redis(&[]).await;
    let peer = app.spawn_peer(&[]).await;
    let m = app.create_merchant(250).await;
    let codes = app.issue("EUR", "1000.00", 1, json!({})).await;
    let mut statuses = Vec::new();
    for i in 0..20 {
        let order = format!("ORDER_{i}");
        let key = format!("key-{i}");
        let vouchers = [codes[0].as_str()];
        let (a, b) = tokio::join!(
            app.pay(&m.pk, &order, "1.00", &vouchers, Some(&key)),
            peer.pay(&m.pk, &order, "1.00", &vouchers, Some(&key)),
        );
        statuses.push((a.status().as_u16(), b.status().as_u16()));
    }
    assert!(
        statuses.iter().all(|&(a, b)| a == 201 && b == 201),
        "{statuses:?}"
    );
    assert_eq!(app.count("transactions").await, 20);
    assert_audit_clean(&app);
}

#[tokio::test]
async fn verify_right_after_a_payment_reads_the_primary_not_a_lagging_replica() {
    if is_sqlite() {
        return;
    }
    // A replica that has not replayed anything yet: a migrated database of its own.
    let replica = TestApp::empty_database().await;
    let app = TestApp::spawn_with(&[("DATABASE_REPLICA_URL", &replica.url)]).await;
    let m = app.create_merchant(250).await;
    let code = app.issue_one("150.00").await;
    let txn = paid_order(&app, &m.pk, "ORDER_1", "99.00", &code).await;
    let v = verify(
        &app,
        &m.sk,
        json!({"transaction_id": txn, "order_id": "ORDER_1", "expected_amount": "99.00", "expected_currency": "EUR"}),
    )
    .await;
    assert_eq!(v["verified"], true, "{v}");
    let v = verify(
        &app,
        &m.sk,
        json!({"order_id": "ORDER_1", "expected_amount": "99.00", "expected_currency": "EUR"}),
    )
    .await;
    assert_eq!(v["verified"], true, "{v}");
}

#[tokio::test]
async fn unknown_fields_are_refused_on_every_money_call_and_named() {
    let app = TestApp::spawn().await;
    let m = app.create_merchant(250).await;
    let code = app.issue_one("150.00").await;
    let r = app
        .post(
            "/api/process-payment/",
            &m.pk,
            &json!({"order_id": "ORDER_1", "amount": "99.00", "currency": "EUR", "vouchers": [{"code": code}], "capture_method": "manual"}),
            None,
        )
        .await;
    assert_eq!(r.status(), 400);
    let v = body(r).await;
    assert_eq!(v["error"]["code"], "unknown_field", "{v}");
    assert_eq!(v["error"]["param"], "capture_method");
    assert_eq!(app.count("transactions").await, 0);
    let r = app
        .post(
            "/api/process-payment/",
            &m.pk,
            &json!({"order_id": "ORDER_1", "amount": "99.00", "currency": "EUR", "vouchers": [{"code": code, "cvc": "1234"}]}),
            None,
        )
        .await;
    assert_eq!(r.status(), 400);
    assert_eq!(body(r).await["error"]["param"], "cvc");

    let txn = paid_order(&app, &m.pk, "ORDER_1", "99.00", &code).await;
    let r = refund(&app, &m.sk, &txn, json!({"amout": "1.00"}), None).await;
    assert_eq!(r["_status"], 400, "{r}");
    assert_eq!(r["error"]["param"], "amout");
    assert_eq!(app.count("refunds").await, 0);

    let r = app
        .post(
            "/api/verify-transaction/",
            &m.sk,
            &json!({"transaction_id": txn, "expected_ammount": "99.00"}),
            None,
        )
        .await;
    assert_eq!(r.status(), 400);
    assert_eq!(body(r).await["error"]["param"], "expected_ammount");

    let r = app
        .post(
            "/api/admin/vouchers",
            crate::helpers::ADMIN_TOKEN,
            &json!({"currency": "EUR", "amount": "10.00", "count": 1, "singel_use": true}),
            None,
        )
        .await;
    assert_eq!(r.status(), 400);
    assert_eq!(body(r).await["error"]["param"], "singel_use");
}

#[tokio::test]
async fn every_ledger_account_is_per_currency_and_audit_checks_each_currency() {
    let app = TestApp::spawn().await;
    let m = app.create_merchant(250).await;
    let eur = app.issue_one("150.00").await;
    let jpy = app.issue("JPY", "15000", 1, json!({})).await.remove(0);
    let txn = paid_order(&app, &m.pk, "ORDER_EUR", "99.00", &eur).await;
    let r = app
        .post(
            "/api/process-payment/",
            &m.pk,
            &json!({"order_id": "ORDER_JPY", "amount": "9900", "currency": "JPY", "vouchers": [{"code": jpy}]}),
            None,
        )
        .await;
    assert_eq!(r.status(), 201);
    let r = refund(&app, &m.sk, &txn, json!({"amount": "1.00"}), None).await;
    assert_eq!(r["_status"], 201, "{r}");
    assert_audit_clean(&app);

    let db = app.db().await;
    let be = db.get_database_backend();
    let rows = db
        .query_all(Statement::from_string(
            be,
            "SELECT DISTINCT account FROM postings ORDER BY account",
        ))
        .await
        .unwrap();
    let accounts: Vec<String> = rows
        .iter()
        .map(|r| r.try_get::<String>("", "account").unwrap())
        .collect();
    assert!(!accounts.is_empty());
    for a in &accounts {
        assert!(a.ends_with(":EUR") || a.ends_with(":JPY"), "{accounts:?}");
    }
    assert!(accounts.contains(&format!("merchant_payable:{}:test:JPY", m.id)));
    assert!(accounts.contains(&"platform_commission:test:EUR".to_string()));

    // A journal that sums to zero only by adding euro cents to yen is caught.
    let journal: i64 = db
        .query_one(Statement::from_string(
            be,
            "SELECT MIN(id) AS id FROM journals WHERE kind = 'payment'",
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get("", "id")
        .unwrap();
    db.execute(Statement::from_string(
        be,
        format!(
            "INSERT INTO postings (journal_id, account, voucher_id, amount_minor) VALUES
             ({journal}, 'platform_commission:test:EUR', NULL, 100),
             ({journal}, 'platform_commission:test:JPY', NULL, -100)"
        ),
    ))
    .await
    .unwrap();
    let (ok, out) = app.audit();
    assert!(!ok, "{out}");
    assert!(out.contains("per currency"), "{out}");
}

#[tokio::test]
async fn the_check_of_a_voucher_restricted_to_another_merchant_shows_no_balance() {
    let app = TestApp::spawn().await;
    let m = app.create_merchant(250).await;
    let other = app.create_merchant(250).await;
    let code = app
        .issue("EUR", "150.00", 1, json!({"merchant_id": other.id}))
        .await
        .remove(0);
    let r = app
        .post("/api/vouchers/check", &m.pk, &json!({"code": code}), None)
        .await;
    let v = body(r).await;
    assert_eq!(v["valid"], false, "{v}");
    assert!(v["balance"].is_null(), "{v}");
}

#[tokio::test]
async fn a_refund_that_would_credit_a_blocked_voucher_is_refused_and_writes_nothing() {
    let app = TestApp::spawn().await;
    let m = app.create_merchant(250).await;
    let code = app.issue_one("150.00").await;
    let txn = paid_order(&app, &m.pk, "ORDER_1", "99.00", &code).await;
    let r = app
        .post(
            "/api/admin/vouchers/block",
            crate::helpers::ADMIN_TOKEN,
            &json!({"code": code}),
            None,
        )
        .await;
    assert_eq!(r.status(), 200);
    let r = refund(&app, &m.sk, &txn, json!({"amount": "5.00"}), None).await;
    assert_eq!(r["_status"], 409, "{r}");
    assert_eq!(r["error"]["code"], "voucher_blocked");
    assert_eq!(app.count("refunds").await, 0);
    assert_audit_clean(&app);
}

#[tokio::test]
async fn a_request_without_content_type_gets_a_400_saying_what_to_send() {
    let app = TestApp::spawn().await;
    let m = app.create_merchant(250).await;
    let r = app
        .client
        .post(app.url("/api/process-payment/"))
        .bearer_auth(&m.pk)
        .body(r#"{"order_id": "O", "amount": "1.00", "currency": "EUR", "vouchers": []}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v = body(r).await;
    assert_eq!(v["error"]["code"], "unsupported_media_type", "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Content-Type: application/json"),
        "{v}"
    );
}

#[tokio::test]
async fn a_second_process_writing_the_sqlite_file_never_makes_payments_fail() {
    if !is_sqlite() {
        return;
    }
    let app = TestApp::spawn().await;
    let m = app.create_merchant(250).await;
    let code = app.issue("EUR", "100000.00", 1, json!({})).await.remove(0);
    let cli = async {
        let mut ok = true;
        for _ in 0..4 {
            let cmd = app.cli_command(&[
                "admin",
                "issue-vouchers",
                "--currency",
                "EUR",
                "--amount",
                "1.00",
                "--count",
                "3000",
            ]);
            let out = tokio::process::Command::from(cmd).output().await.unwrap();
            ok &= out.status.success();
        }
        ok
    };
    let payments = async {
        let mut statuses = Vec::new();
        for i in 0..60 {
            let r = app
                .pay(&m.pk, &format!("ORDER_{i}"), "1.00", &[&code], None)
                .await;
            statuses.push(r.status().as_u16());
        }
        statuses
    };
    let (cli_ok, statuses) = tokio::join!(cli, payments);
    assert!(cli_ok);
    assert!(statuses.iter().all(|&s| s == 201), "{statuses:?}");
}

#[tokio::test]
async fn the_demo_shop_is_served_only_on_the_embedded_default_or_when_asked() {
    let app = TestApp::spawn().await;
    let status = |app: &TestApp| {
        let url = app.url("/demo/");
        let client = app.client.clone();
        async move { client.get(url).send().await.unwrap().status().as_u16() }
    };
    assert_eq!(status(&app).await, if is_sqlite() { 200 } else { 404 });
    let on = TestApp::spawn_with(&[("DEMO_SHOP", "on")]).await;
    assert_eq!(status(&on).await, 200);
    let off = TestApp::spawn_with(&[("DEMO_SHOP", "off")]).await;
    assert_eq!(status(&off).await, 404);
}
