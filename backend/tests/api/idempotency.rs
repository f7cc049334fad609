//! Idempotency-Key semantics: replay, reuse with another body, concurrent use.
use crate::helpers::{body, TestApp, ADMIN_TOKEN};

#[tokio::test]
async fn a_replay_returns_the_same_body_flagged_and_writes_nothing() {
    let app = TestApp::spawn().await;
    let m = app.create_merchant(250).await;
    let code = app.issue_one("150.00").await;

    let first = app
        .pay(&m.pk, "ORDER_1", "99.00", &[&code], Some("key-1"))
        .await;
    assert_eq!(first.status(), 201);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first_body = first.text().await.unwrap();
    let rows = (
        app.count("transactions").await,
        app.count("redemptions").await,
        app.count("postings").await,
        app.count("events").await,
    );

    let again = app
        .pay(&m.pk, "ORDER_1", "99.00", &[&code], Some("key-1"))
        .await;
    assert_eq!(again.status(), 201);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.text().await.unwrap(), first_body);
    let after = (
        app.count("transactions").await,
        app.count("redemptions").await,
        app.count("postings").await,
        app.count("events").await,
    );
    assert_eq!(rows, after);
}

#[tokio::test]
async fn the_same_key_with_another_body_is_refused() {
    let app = TestApp::spawn().await;
    let m = app.create_merchant(250).await;
    let code = app.issue_one("150.00").await;
    assert_eq!(
        app.pay(&m.pk, "ORDER_1", "99.00", &[&code], Some("key-2"))
            .await
            .status(),
        201
    );
    let r = app
        .pay(&m.pk, "ORDER_1", "98.00", &[&code], Some("key-2"))
        .await;
    assert_eq!(r.status(), 400);
    let v = body(r).await;
    assert_eq!(v["error"]["type"], "idempotency_error");
    assert_eq!(v["error"]["code"], "idempotency_key_reused");
}

#[tokio::test]
async fn a_declined_attempt_is_replayed_as_declined() {
    let app = TestApp::spawn().await;
    let m = app.create_merchant(250).await;
    let code = app.issue_one("10.00").await;
    let first = app
        .pay(&m.pk, "ORDER_1", "99.00", &[&code], Some("key-3"))
        .await;
    assert_eq!(first.status(), 402);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first_body = first.text().await.unwrap();
    let again = app
        .pay(&m.pk, "ORDER_1", "99.00", &[&code], Some("key-3"))
        .await;
    assert_eq!(again.status(), 402);
    // A kept decline replays as a kept success does: flagged.
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.text().await.unwrap(), first_body);
}

/// A retry is not read first: it runs, and only its write of the answer meets the stored
/// one. Here the run itself would now succeed (the voucher was topped up since), so what
/// answers it is that write failing, the rollback and the replay.
#[tokio::test]
async fn a_declined_attempt_is_replayed_as_declined_even_once_the_voucher_could_pay() {
    let app = TestApp::spawn().await;
    let m = app.create_merchant(250).await;
    let code = app.issue_one("10.00").await;
    let first = app
        .pay(&m.pk, "ORDER_1", "99.00", &[&code], Some("key-4"))
        .await;
    assert_eq!(first.status(), 402);
    let first_body = first.text().await.unwrap();
    let id = app.scalar("SELECT max(id) AS n FROM vouchers").await;
    let load = app
        .post(
            &format!("/api/admin/vouchers/{id}/activities"),
            ADMIN_TOKEN,
            &serde_json::json!({"kind": "adjust_increment", "amount": "100.00", "reason": "goodwill"}),
            None,
        )
        .await;
    assert_eq!(load.status(), 200, "{}", load.text().await.unwrap());

    let again = app
        .pay(&m.pk, "ORDER_1", "99.00", &[&code], Some("key-4"))
        .await;
    assert_eq!(again.status(), 402);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.text().await.unwrap(), first_body);
    assert_eq!(app.count("transactions").await, 0);
    assert_eq!(app.voucher_balance(&m.pk, &code).await, "110.00");
    // A new key is a new attempt, and it pays.
    let fresh = app
        .pay(&m.pk, "ORDER_1", "99.00", &[&code], Some("key-5"))
        .await;
    assert_eq!(fresh.status(), 201);
    assert!(app.audit().0);
}

#[tokio::test]
async fn the_same_key_sent_concurrently_pays_once() {
    let app = TestApp::spawn().await;
    let m = app.create_merchant(250).await;
    let code = app.issue_one("500.00").await;
    let codes = [code.as_str()];
    let requests = (0..20).map(|_| app.pay(&m.pk, "ORDER_C", "10.00", &codes, Some("same-key")));
    let responses = futures::future::join_all(requests).await;
    let mut created_fresh = 0;
    let mut ids = std::collections::HashSet::new();
    for r in responses {
        match r.status().as_u16() {
            201 => {
                if r.headers().get("idempotent-replayed").is_none() {
                    created_fresh += 1;
                }
                ids.insert(body(r).await["id"].as_str().unwrap().to_owned());
            }
            409 => {
                let v = body(r).await;
                assert_eq!(v["error"]["code"], "idempotency_key_in_use", "{v}");
            }
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!(created_fresh, 1);
    assert_eq!(ids.len(), 1);
    assert_eq!(app.count("transactions").await, 1);
    assert!(app.audit().0);
}

#[tokio::test]
async fn an_invisible_or_overlong_key_is_refused_before_anything_is_written() {
    let app = TestApp::spawn().await;
    let m = app.create_merchant(250).await;
    let code = app.issue_one("50.00").await;
    let long = "k".repeat(256);
    for key in ["has space", "tab\tkey", long.as_str()] {
        let r = app
            .pay(&m.pk, "ORDER_K", "10.00", &[&code], Some(key))
            .await;
        assert_eq!(r.status(), 400, "{key:?}");
        let v = body(r).await;
        assert_eq!(v["error"]["code"], "invalid_idempotency_key");
        assert_eq!(v["error"]["param"], "Idempotency-Key");
    }
    assert_eq!(app.count("transactions").await, 0);
    assert_eq!(app.count("idempotency_keys").await, 0);
}
