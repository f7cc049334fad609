//! Voucher lifecycle: activities (block, adjust with a reason, load, clear...) through the
//! admin API, the merchant API and the CLI; the voucher's history; the ledger and audit
//! afterwards, and an adjustment racing payments.
use sea_orm::{ConnectionTrait, Statement};
use serde_json::{json, Value};

use crate::helpers::{body, Merchant, TestApp, ADMIN_TOKEN};

/// Issues one voucher (extra fields merged into the request); returns (id, code).
async fn issue(app: &TestApp, amount: &str, extra: Value) -> (i64, String) {
    let mut req = json!({"currency": "EUR", "amount": amount, "count": 1});
    for (k, v) in extra.as_object().unwrap() {
        req[k] = v.clone();
    }
    let r = app
        .post("/api/admin/vouchers", ADMIN_TOKEN, &req, None)
        .await;
    assert_eq!(r.status(), 201);
    let v = body(r).await;
    (
        v["vouchers"][0]["id"].as_i64().unwrap(),
        v["vouchers"][0]["code"].as_str().unwrap().to_owned(),
    )
}

/// POST an activity with the admin token (`None`) or a merchant's secret key.
async fn activity(
    app: &TestApp,
    sk: Option<&str>,
    id: i64,
    req: Value,
    key: Option<&str>,
) -> reqwest::Response {
    let path = match sk {
        None => format!("/api/admin/vouchers/{id}/activities"),
        Some(_) => format!("/api/vouchers/{id}/activities"),
    };
    app.post(&path, sk.unwrap_or(ADMIN_TOKEN), &req, key).await
}

async fn history(app: &TestApp, sk: Option<&str>, id: i64) -> reqwest::Response {
    let path = match sk {
        None => format!("/api/admin/vouchers/{id}/activities"),
        Some(_) => format!("/api/vouchers/{id}/activities"),
    };
    app.client
        .get(app.url(&path))
        .bearer_auth(sk.unwrap_or(ADMIN_TOKEN))
        .send()
        .await
        .unwrap()
}

async fn balance_minor(app: &TestApp, id: i64) -> i64 {
    app.scalar(&format!(
        "SELECT balance_minor AS n FROM vouchers WHERE id = {id}"
    ))
    .await
}

/// The voucher's liability postings: what the ledger says its balance is.
async fn ledger_balance(app: &TestApp, id: i64) -> i64 {
    app.scalar(&format!(
        "SELECT CAST(COALESCE(SUM(amount_minor), 0) AS BIGINT) AS n FROM postings
             WHERE voucher_id = {id} AND account LIKE 'voucher_liability:%'"
    ))
    .await
}

fn assert_audit_clean(app: &TestApp) {
    let (ok, out) = app.audit();
    assert!(ok, "audit failed:\n{out}");
}

#[tokio::test]
async fn an_adjustment_without_a_reason_is_refused_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let (id, _) = issue(&app, "50.00", json!({})).await;
    for req in [
        json!({"kind": "adjust_increment", "amount": "5.00"}),
        json!({"kind": "adjust_decrement", "amount": "5.00", "reason": "  "}),
        json!({"kind": "clear_balance"}),
    ] {
        let r = activity(&app, None, id, req, None).await;
        assert_eq!(r.status(), 400);
        let e = body(r).await;
        assert_eq!(e["error"]["code"], "reason_required");
        assert_eq!(e["error"]["param"], "reason");
    }
    assert_eq!(balance_minor(&app, id).await, 5000);
    assert_eq!(app.count("voucher_activities").await, 0);

    let r = activity(
        &app,
        None,
        id,
        json!({"kind": "adjust_increment", "amount": "5.00", "reason": "goodwill after a late delivery"}),
        None,
    )
    .await;
    assert_eq!(r.status(), 200);
    let a = body(r).await;
    assert_eq!(a["amount"], "5.00");
    assert_eq!(a["balance"], "55.00");
    assert_eq!(a["actor"], "admin");
    assert_eq!(a["reason"], "goodwill after a late delivery");
    assert_eq!(balance_minor(&app, id).await, 5500);
    assert_audit_clean(&app);
}

#[tokio::test]
async fn history_lists_every_activity_in_order() {
    let app = TestApp::spawn().await;
    let m = app.create_merchant(250).await;
    let (id, code) = issue(
        &app,
        "100.00",
        json!({"issuer_merchant_id": m.id, "reloadable": true}),
    )
    .await;
    let r = app.pay(&m.pk, "ORDER_1", "30.00", &[&code], None).await;
    assert_eq!(r.status(), 201);
    let txn = body(r).await["id"].as_str().unwrap().to_owned();
    let r = app
        .post(
            &format!("/api/transactions/{txn}/refunds"),
            &m.sk,
            &json!({"amount": "10.00"}),
            None,
        )
        .await;
    assert_eq!(r.status(), 201);
    let r = app
        .post(
            "/api/process-payment/",
            &m.pk,
            &json!({"order_id": "ORDER_2", "amount": "20.00", "currency": "EUR",
                    "vouchers": [{"code": code}], "capture": false}),
            None,
        )
        .await;
    assert_eq!(r.status(), 201);
    let held = body(r).await["id"].as_str().unwrap().to_owned();
    let r = app
        .post(
            &format!("/api/transactions/{held}/cancel"),
            &m.sk,
            &json!({}),
            None,
        )
        .await;
    assert_eq!(r.status(), 200);
    let steps = [
        json!({"kind": "adjust_increment", "amount": "5.00", "reason": "goodwill"}),
        json!({"kind": "adjust_decrement", "amount": "2.50", "reason": "correction"}),
        json!({"kind": "block", "reason": "card reported lost"}),
        json!({"kind": "unblock"}),
        json!({"kind": "deactivate"}),
        json!({"kind": "activate"}),
        json!({"kind": "load", "amount": "20.00"}),
        json!({"kind": "clear_balance", "reason": "customer closed the card"}),
    ];
    for (i, step) in steps.iter().enumerate() {
        // Alternate between the merchant's key and the operator: both actors show.
        let sk = (i % 2 == 0).then_some(m.sk.as_str());
        let r = activity(&app, sk, id, step.clone(), None).await;
        assert_eq!(r.status(), 200, "{step}: {}", r.text().await.unwrap());
    }

    let r = history(&app, Some(&m.sk), id).await;
    assert_eq!(r.status(), 200);
    let h = body(r).await;
    let entries = h["entries"].as_array().unwrap();
    let rows: Vec<(&str, &str, &str)> = entries
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap(),
                e["amount"].as_str().unwrap(),
                e["balance_after"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        vec![
            ("issue", "100.00", "100.00"),
            ("payment", "-30.00", "70.00"),
            ("refund", "10.00", "80.00"),
            ("authorization", "-20.00", "60.00"),
            ("cancel", "20.00", "80.00"),
            ("adjust_increment", "5.00", "85.00"),
            ("adjust_decrement", "-2.50", "82.50"),
            ("block", "0.00", "82.50"),
            ("unblock", "0.00", "82.50"),
            ("deactivate", "0.00", "82.50"),
            ("activate", "0.00", "82.50"),
            ("load", "20.00", "102.50"),
            ("clear_balance", "-102.50", "0.00"),
        ]
    );
    assert_eq!(entries[1]["transaction_id"], txn.as_str());
    assert_eq!(entries[3]["held"], "20.00");
    assert_eq!(entries[5]["actor"], "api_key");
    assert!(entries[5]["actor_id"].as_str().unwrap().starts_with("key_"));
    assert_eq!(entries[6]["actor"], "admin");
    assert_eq!(entries[6]["reason"], "correction");
    assert_eq!(entries[7]["reason"], "card reported lost");
    assert_eq!(h["balance"], "0.00");
    assert_eq!(h["status"], "active");

    // The operator sees the same history.
    let r = history(&app, None, id).await;
    assert_eq!(body(r).await["entries"], h["entries"]);
    assert_audit_clean(&app);
}

#[tokio::test]
async fn load_is_refused_on_a_voucher_kind_that_is_not_reloadable() {
    let app = TestApp::spawn().await;
    let (id, _) = issue(&app, "50.00", json!({})).await;
    let r = activity(
        &app,
        None,
        id,
        json!({"kind": "load", "amount": "10.00"}),
        None,
    )
    .await;
    assert_eq!(r.status(), 409);
    assert_eq!(body(r).await["error"]["code"], "voucher_not_reloadable");
    assert_eq!(balance_minor(&app, id).await, 5000);

    let (id, _) = issue(&app, "50.00", json!({"reloadable": true})).await;
    let float = "SELECT CAST(COALESCE(SUM(amount_minor), 0) AS BIGINT) AS n FROM postings WHERE account = 'voucher_float:test:EUR'";
    let before = app.scalar(float).await;
    let r = activity(
        &app,
        None,
        id,
        json!({"kind": "load", "amount": "10.00"}),
        None,
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(body(r).await["balance"], "60.00");
    // A load is new value in circulation: the float's side, like issuance.
    assert_eq!(app.scalar(float).await - before, -1000);
    assert_audit_clean(&app);
}

#[tokio::test]
async fn clearing_a_balance_writes_it_off_and_the_voucher_pays_no_more() {
    let app = TestApp::spawn().await;
    let m = app.create_merchant(250).await;
    let (id, code) = issue(&app, "40.00", json!({})).await;
    let r = activity(
        &app,
        None,
        id,
        json!({"kind": "clear_balance", "reason": "refunded in cash at the till"}),
        None,
    )
    .await;
    assert_eq!(r.status(), 200);
    let a = body(r).await;
    assert_eq!(
        (a["amount"].as_str(), a["balance"].as_str()),
        (Some("-40.00"), Some("0.00"))
    );
    assert_eq!(balance_minor(&app, id).await, 0);
    assert_eq!(
        app.scalar("SELECT CAST(COALESCE(SUM(amount_minor), 0) AS BIGINT) AS n FROM postings WHERE account = 'voucher_adjustments:test:EUR'"
        )
        .await,
        4000
    );
    let r = app.pay(&m.pk, "ORDER_1", "1.00", &[&code], None).await;
    assert_eq!(r.status(), 402);
    assert_eq!(body(r).await["error"]["code"], "insufficient_balance");
    // A decrease beyond the balance is refused rather than going negative.
    let r = activity(
        &app,
        None,
        id,
        json!({"kind": "adjust_decrement", "amount": "0.01", "reason": "x"}),
        None,
    )
    .await;
    assert_eq!(r.status(), 409);
    assert_eq!(body(r).await["error"]["code"], "adjustment_exceeds_balance");
    assert_audit_clean(&app);
}

#[tokio::test]
async fn a_blocked_or_deactivated_voucher_cannot_pay_until_unblocked_or_activated() {
    let app = TestApp::spawn().await;
    let m = app.create_merchant(250).await;
    let (id, code) = issue(&app, "40.00", json!({"issuer_merchant_id": m.id})).await;
    // A publishable key learns only the uniform decline; which stop it was is the
    // operator's to see (the voucher's history).
    for (stop, decline, resume) in [
        ("block", "voucher_declined", "unblock"),
        ("deactivate", "voucher_declined", "activate"),
    ] {
        let r = activity(&app, Some(&m.sk), id, json!({"kind": stop}), None).await;
        assert_eq!(r.status(), 200);
        let r = app
            .pay(&m.pk, &format!("ORDER_{stop}"), "10.00", &[&code], None)
            .await;
        assert_eq!(r.status(), 402);
        assert_eq!(body(r).await["error"]["code"], decline);
        // The same status change twice is a conflict, not a silent no-op.
        let r = activity(&app, Some(&m.sk), id, json!({"kind": stop}), None).await;
        assert_eq!(r.status(), 409);
        assert_eq!(body(r).await["error"]["code"], "voucher_status_conflict");
        let r = activity(&app, Some(&m.sk), id, json!({"kind": resume}), None).await;
        assert_eq!(r.status(), 200);
        let r = app
            .pay(&m.pk, &format!("ORDER_{stop}"), "10.00", &[&code], None)
            .await;
        assert_eq!(r.status(), 201);
    }
    assert_audit_clean(&app);
}

#[tokio::test]
async fn another_merchants_voucher_answers_404() {
    let app = TestApp::spawn().await;
    let issuer = app.create_merchant(250).await;
    let other = app.create_merchant(250).await;
    let (id, _) = issue(&app, "40.00", json!({"issuer_merchant_id": issuer.id})).await;
    let (plain, _) = issue(&app, "40.00", json!({})).await;
    let (_, issuer_live_sk) = app.create_live_keys(&issuer.id);
    let block = json!({"kind": "block"});
    for (sk, voucher) in [
        (other.sk.as_str(), id),
        // Issued by SuperPayment, not by the merchant.
        (issuer.sk.as_str(), plain),
        // The issuer's live key does not reach its test vouchers.
        (issuer_live_sk.as_str(), id),
    ] {
        let r = activity(&app, Some(sk), voucher, block.clone(), None).await;
        assert_eq!(r.status(), 404);
        assert_eq!(body(r).await["error"]["code"], "resource_missing");
        let r = history(&app, Some(sk), voucher).await;
        assert_eq!(r.status(), 404);
    }
    let r = activity(&app, Some(&issuer.sk), 999_999, block.clone(), None).await;
    assert_eq!(r.status(), 404);
    assert_eq!(app.count("voucher_activities").await, 0);
    let r = activity(&app, Some(&issuer.sk), id, block, None).await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn an_activity_is_recorded_once_per_idempotency_key() {
    let app = TestApp::spawn().await;
    let (id, _) = issue(&app, "40.00", json!({})).await;
    let req = json!({"kind": "adjust_increment", "amount": "5.00", "reason": "goodwill"});
    let first = activity(&app, None, id, req.clone(), Some("adj-1")).await;
    assert_eq!(first.status(), 200);
    let first = body(first).await;
    let again = activity(&app, None, id, req, Some("adj-1")).await;
    assert_eq!(again.status(), 200);
    assert_eq!(again.headers().get("Idempotent-Replayed").unwrap(), "true");
    assert_eq!(body(again).await, first);
    assert_eq!(balance_minor(&app, id).await, 4500);
    let other = json!({"kind": "adjust_increment", "amount": "6.00", "reason": "goodwill"});
    let r = activity(&app, None, id, other, Some("adj-1")).await;
    assert_eq!(r.status(), 400);
    assert_eq!(body(r).await["error"]["code"], "idempotency_key_reused");
    assert_eq!(balance_minor(&app, id).await, 4500);
}

#[tokio::test]
async fn audit_is_clean_after_the_lifecycle_and_catches_a_tampered_balance() {
    let app = TestApp::spawn().await;
    let m = app.create_merchant(250).await;
    let (id, code) = issue(&app, "60.00", json!({"reloadable": true})).await;
    for req in [
        json!({"kind": "adjust_increment", "amount": "5.00", "reason": "goodwill"}),
        json!({"kind": "load", "amount": "15.00"}),
        json!({"kind": "adjust_decrement", "amount": "1.00", "reason": "correction"}),
    ] {
        assert_eq!(activity(&app, None, id, req, None).await.status(), 200);
    }
    assert_eq!(
        app.pay(&m.pk, "ORDER_1", "70.00", &[&code], None)
            .await
            .status(),
        201
    );
    assert_eq!(balance_minor(&app, id).await, 900);
    assert_audit_clean(&app);

    let db = app.db().await;
    db.execute(Statement::from_string(
        db.get_database_backend(),
        format!("UPDATE vouchers SET balance_minor = balance_minor + 500 WHERE id = {id}"),
    ))
    .await
    .unwrap();
    let (ok, out) = app.audit();
    assert!(!ok, "audit missed a tampered balance:\n{out}");
    assert!(out.contains(&format!("voucher {id} balance 1400")), "{out}");
}

#[tokio::test]
async fn an_adjustment_racing_payments_leaves_the_balance_equal_to_the_ledger() {
    let app = TestApp::spawn().await;
    let m: Merchant = app.create_merchant(250).await;
    let (id, code) = issue(&app, "100.00", json!({})).await;
    let mut tasks = Vec::new();
    for i in 0..8 {
        let (client, url, pk, sk, code) = (
            app.client.clone(),
            app.address.clone(),
            m.pk.clone(),
            ADMIN_TOKEN.to_owned(),
            code.clone(),
        );
        tasks.push(tokio::spawn(async move {
            if i % 2 == 0 {
                client
                    .post(format!("{url}/api/process-payment/"))
                    .bearer_auth(pk)
                    .json(&json!({"order_id": format!("ORDER_{i}"), "amount": "10.00",
                                  "currency": "EUR", "vouchers": [{"code": code}]}))
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            } else {
                client
                    .post(format!("{url}/api/admin/vouchers/{id}/activities"))
                    .bearer_auth(sk)
                    .json(&json!({"kind": "adjust_decrement", "amount": "3.00", "reason": "race"}))
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            }
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    // The balance covers every one of them: each must have gone through.
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        4,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        4,
        "{statuses:?}"
    );
    assert_eq!(balance_minor(&app, id).await, 10000 - 4 * 1000 - 4 * 300);
    assert_eq!(
        ledger_balance(&app, id).await,
        balance_minor(&app, id).await
    );
    assert_audit_clean(&app);
}

#[tokio::test]
async fn the_cli_adjusts_and_prints_the_history() {
    let app = TestApp::spawn().await;
    let (id, _) = issue(&app, "20.00", json!({})).await;
    let id_s = id.to_string();
    let (ok, _) = app.cli(&[
        "admin", "voucher", "adjust", "--id", &id_s, "--amount", "2.00", "--reason", "",
    ]);
    assert!(!ok, "an empty reason must be refused");
    let (ok, out) = app.cli(&[
        "admin",
        "voucher",
        "adjust",
        "--id",
        &id_s,
        "--amount",
        "2.00",
        "--down",
        "--reason",
        "double issue",
    ]);
    assert!(ok, "{out}");
    assert!(out.contains("balance 18.00 EUR"), "{out}");
    let (ok, out) = app.cli(&["admin", "voucher", "block", "--id", &id_s]);
    assert!(ok, "{out}");
    let (ok, out) = app.cli(&["admin", "voucher", "history", "--id", &id_s]);
    assert!(ok, "{out}");
    let h: Value = serde_json::from_str(&out).unwrap();
    let kinds: Vec<&str> = h["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["issue", "adjust_decrement", "block"]);
    assert_eq!(h["entries"][1]["reason"], "double issue");
    assert_eq!(h["status"], "blocked");
    assert_audit_clean(&app);
}
