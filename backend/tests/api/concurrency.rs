//! Double-click storms and hot vouchers: the database guarantees hold under concurrency.
use std::collections::HashSet;

use sea_orm::{ConnectionTrait, Statement};

use crate::helpers::{body, TestApp};

#[tokio::test]
async fn fifty_concurrent_payments_of_one_order_succeed_exactly_once() {
    let app = TestApp::spawn().await;
    let m = app.create_merchant(250).await;
    let code = app.issue_one("10000.00").await;
    let keys: Vec<String> = (0..50).map(|i| format!("click-{i}")).collect();
    let codes = [code.as_str()];
    let requests = keys
        .iter()
        .map(|k| app.pay_retrying_timeouts(&m.pk, "ORDER_STORM", "25.00", &codes, k));
    let responses = futures::future::join_all(requests).await;

    let mut success_ids = Vec::new();
    let mut conflict_ids = HashSet::new();
    for r in responses {
        match r.status().as_u16() {
            201 => success_ids.push(body(r).await["id"].as_str().unwrap().to_owned()),
            409 => {
                let v = body(r).await;
                assert_eq!(v["error"]["code"], "order_already_paid", "{v}");
                conflict_ids.insert(v["error"]["transaction_id"].as_str().unwrap().to_owned());
            }
            other => panic!("unexpected status {other}: {}", r.text().await.unwrap()),
        }
    }
    assert_eq!(success_ids.len(), 1, "exactly one success");
    assert_eq!(
        conflict_ids,
        HashSet::from([success_ids[0].clone()]),
        "every 409 names the winner"
    );
    assert_eq!(app.count("transactions").await, 1);
    let check = body(
        app.post(
            "/api/vouchers/check",
            &m.pk,
            &serde_json::json!({"code": code}),
            None,
        )
        .await,
    )
    .await;
    assert_eq!(check["balance"], "9975.00");
    let (ok, report) = app.audit();
    assert!(ok, "{report}");
}

#[tokio::test]
async fn two_hundred_payments_on_one_voucher_never_overdraw_it() {
    let app = TestApp::spawn().await;
    let m = app.create_merchant(250).await;
    let code = app.issue_one("1000.00").await;
    // 200 x 7.00 = 1400.00 asked of 1000.00: exactly 142 fit. The 200 queue on the
    // voucher's row lock; on a loaded machine the last can outlast REQUEST_TIMEOUT and are
    // retried under their keys as the documented 503 asks.
    let orders: Vec<String> = (0..200).map(|i| format!("HOT_{i}")).collect();
    let codes = [code.as_str()];
    let requests = orders
        .iter()
        .map(|o| app.pay_retrying_timeouts(&m.pk, o, "7.00", &codes, o));
    let responses = futures::future::join_all(requests).await;
    let mut ok = 0i64;
    for r in responses {
        match r.status().as_u16() {
            201 => ok += 1,
            402 => assert_eq!(body(r).await["error"]["code"], "insufficient_balance"),
            other => panic!("unexpected status {other}: {}", r.text().await.unwrap()),
        }
    }
    assert_eq!(ok, 142);
    let db = app.db().await;
    let row = db
        .query_one(Statement::from_string(
            db.get_database_backend(),
            format!(
                "SELECT balance_minor AS b, (SELECT CAST(COALESCE(SUM(r.amount_minor), 0) AS BIGINT) FROM redemptions r WHERE r.voucher_id = v.id) AS taken
                 FROM vouchers v WHERE v.code_hmac = '{}'",
                crate::helpers::code_hmac(&code)
            ),
        ))
        .await
        .unwrap()
        .unwrap();
    let balance: i64 = row.try_get("", "b").unwrap();
    let taken: i64 = row.try_get("", "taken").unwrap();
    assert_eq!(taken, 142 * 700);
    assert!(taken <= 100_000);
    assert_eq!(balance, 100_000 - taken);
    assert!(balance >= 0);
    let (ok, report) = app.audit();
    assert!(ok, "{report}");
}
