//! The operator CLI: issuing prints each code once as CSV, and `audit` catches a broken ledger.
use sea_orm::{ConnectionTrait, Statement};
use serde_json::json;

use crate::helpers::{body, TestApp};

#[tokio::test]
async fn issue_vouchers_prints_usable_codes_as_csv_and_stores_none_of_them() {
    let app = TestApp::spawn().await;
    let m = app.create_merchant(250).await;
    let (ok, out) = app.cli(&[
        "admin",
        "issue-vouchers",
        "--currency",
        "EUR",
        "--amount",
        "50.00",
        "--count",
        "3",
        "--expires",
        "2099-12-31",
    ]);
    assert!(ok, "{out}");
    let mut lines = out.lines();
    assert_eq!(
        lines.next(),
        Some("id,code,last4,amount,currency,mode,expires_at")
    );
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 3);
    for row in &rows {
        assert_eq!(&row[2..6], &[&row[1][15..], "50.00", "EUR", "test"]);
        assert!(
            row[6].starts_with("2100-01-01T00:00:00"),
            "valid through the whole day: {}",
            row[6]
        );
    }
    let code = rows[0][1];
    let check = body(
        app.post("/api/vouchers/check", &m.pk, &json!({"code": code}), None)
            .await,
    )
    .await;
    assert_eq!(check["valid"], true);
    assert_eq!(check["balance"], "50.00");

    let db = app.db().await;
    let dump = db
        .query_all(Statement::from_string(
            db.get_database_backend(),
            "SELECT code_hmac, last4 FROM vouchers".to_owned(),
        ))
        .await
        .unwrap();
    for r in dump {
        let hmac: String = r.try_get("", "code_hmac").unwrap();
        assert!(
            !hmac.contains(&code.replace('-', "")),
            "a code is stored in plain text"
        );
    }
}

#[tokio::test]
async fn audit_fails_when_a_balance_no_longer_matches_the_ledger() {
    let app = TestApp::spawn().await;
    let m = app.create_merchant(250).await;
    let code = app.issue_one("100.00").await;
    assert_eq!(
        app.pay(&m.pk, "ORDER_1", "30.00", &[&code], None)
            .await
            .status(),
        201
    );
    let (ok, report) = app.audit();
    assert!(ok, "{report}");

    let db = app.db().await;
    db.execute(Statement::from_string(
        db.get_database_backend(),
        format!(
            "UPDATE vouchers SET balance_minor = balance_minor + 1 WHERE code_hmac = '{}'",
            crate::helpers::code_hmac(&code)
        ),
    ))
    .await
    .unwrap();
    let (ok, report) = app.audit();
    assert!(!ok, "audit must fail: {report}");
    assert!(
        report.contains("FAIL  each voucher's balance equals its liability postings"),
        "{report}"
    );
}

#[tokio::test]
async fn create_merchant_prints_keys_that_work_once() {
    let app = TestApp::spawn().await;
    let (ok, out) = app.cli(&[
        "admin",
        "create-merchant",
        "--name",
        "Cli Shop",
        "--commission-bps",
        "100",
    ]);
    assert!(ok);
    let pk = out
        .lines()
        .find_map(|l| l.strip_prefix("publishable_key="))
        .unwrap();
    let sk = out
        .lines()
        .find_map(|l| l.strip_prefix("secret_key="))
        .unwrap();
    assert!(pk.starts_with("pk_test_") && sk.starts_with("sk_test_"));
    let code = app.issue_one("20.00").await;
    let r = app.pay(pk, "ORDER_CLI", "20.00", &[&code], None).await;
    assert_eq!(r.status(), 201);
    let id = body(r).await["id"].as_str().unwrap().to_owned();
    let v = body(
        app.post(
            "/api/verify-transaction",
            sk,
            &json!({"transaction_id": id}),
            None,
        )
        .await,
    )
    .await;
    assert_eq!(v["transaction"]["commission"], "0.20");
    assert_eq!(v["transaction"]["net"], "19.80");
}
