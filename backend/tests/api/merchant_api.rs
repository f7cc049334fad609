//! The merchant API: transaction listings, isolation between merchants and modes, API key
//! rotation, and the magic test voucher codes.
use serde_json::{json, Value};

use crate::{
    helpers::{body, TestApp},
    webhook_support::{get, set_endpoint, Receiver},
};

async fn pay(app: &TestApp, pk: &str, order: &str, amount: &str, code: &str) -> String {
    let r = app.pay(pk, order, amount, &[code], None).await;
    assert_eq!(r.status(), 201, "{order}");
    body(r).await["id"].as_str().unwrap().to_owned()
}

fn ids(page: &Value) -> Vec<String> {
    page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn transactions_are_listed_newest_first_with_cursor_pagination_and_filters() {
    let app = TestApp::spawn().await;
    let m = app.create_merchant(250).await;
    let code = app.issue_one("1000.00").await;
    let mut created = Vec::new();
    for i in 0..7 {
        created.push(pay(&app, &m.pk, &format!("ORDER_{i}"), "10.00", &code).await);
    }
    created.reverse();

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/transactions?limit=3&starting_after={c}"),
            None => "/api/transactions?limit=3".to_owned(),
        };
        let (status, page) = get(&app, &path, &m.sk).await;
        assert_eq!(status, 200, "{page}");
        let page_ids = ids(&page);
        seen.extend(page_ids.clone());
        if page["has_more"] == false {
            break;
        }
        cursor = page_ids.last().cloned();
    }
    assert_eq!(seen, created);

    let (_, page) = get(&app, "/api/transactions?order_id=ORDER_3", &m.sk).await;
    assert_eq!(page["data"].as_array().unwrap().len(), 1);
    assert_eq!(page["data"][0]["order_id"], "ORDER_3");
    assert_eq!(page["data"][0]["vouchers"][0]["last4"], &code[15..]);

    let r = app
        .post(
            &format!("/api/transactions/{}/refunds", created[0]),
            &m.sk,
            &json!({"amount": "1.00"}),
            None,
        )
        .await;
    assert_eq!(r.status(), 201);
    let r = app
        .post(
            &format!("/api/transactions/{}/refunds", created[1]),
            &m.sk,
            &json!({}),
            None,
        )
        .await;
    assert_eq!(r.status(), 201);
    for (status, expected) in [
        ("partially_refunded", vec![created[0].clone()]),
        ("refunded", vec![created[1].clone()]),
        ("succeeded", created[2..].to_vec()),
    ] {
        let (_, page) = get(&app, &format!("/api/transactions?status={status}"), &m.sk).await;
        assert_eq!(ids(&page), expected, "{status}");
    }

    let (_, all) = get(
        &app,
        "/api/transactions?created_gte=2000-01-01T00:00:00Z",
        &m.sk,
    )
    .await;
    assert_eq!(all["data"].as_array().unwrap().len(), 7);
    let (_, none) = get(
        &app,
        "/api/transactions?created_lt=2000-01-01T00:00:00Z",
        &m.sk,
    )
    .await;
    assert_eq!(none["data"], json!([]));
    let (status, err) = get(&app, "/api/transactions?created_lt=yesterday", &m.sk).await;
    assert_eq!(status, 400);
    assert_eq!(err["error"]["code"], "invalid_timestamp");
    let (status, _) = get(&app, "/api/transactions?status=pending", &m.sk).await;
    assert_eq!(status, 400);
    let (status, _) = get(&app, "/api/transactions?limit=101", &m.sk).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn a_merchant_never_reads_refunds_or_redelivers_what_belongs_to_another() {
    let app = TestApp::spawn_with(&crate::webhook_support::FAST_WORKER_ENV).await;
    let a = app.create_merchant(250).await;
    let b = app.create_merchant(250).await;
    let receiver = Receiver::start().await;
    set_endpoint(&app, &a.sk, &receiver.url).await;
    set_endpoint(&app, &b.sk, &receiver.url).await;
    let code = app.issue_one("100.00").await;
    let txn = pay(&app, &a.pk, "A_1", "10.00", &code).await;
    receiver.wait_for("A's event", |h| !h.is_empty()).await;
    let (_, events) = get(&app, "/api/events", &a.sk).await;
    let event = events["data"][0]["id"].as_str().unwrap().to_owned();

    for path in [
        format!("/api/transactions/{txn}"),
        format!("/api/events/{event}"),
    ] {
        let (status, v) = get(&app, &path, &b.sk).await;
        assert_eq!(status, 404, "{path}");
        assert_eq!(v["error"]["code"], "resource_missing");
    }
    let r = app
        .post(
            &format!("/api/transactions/{txn}/refunds"),
            &b.sk,
            &json!({}),
            None,
        )
        .await;
    assert_eq!(r.status(), 404);
    let r = app
        .post(
            &format!("/api/events/{event}/redeliver"),
            &b.sk,
            &json!({}),
            None,
        )
        .await;
    assert_eq!(r.status(), 404);
    let r = app
        .post(
            "/api/verify-transaction",
            &b.sk,
            &json!({"transaction_id": txn}),
            None,
        )
        .await;
    assert_eq!(r.status(), 404);
    let (_, list) = get(&app, "/api/transactions", &b.sk).await;
    assert_eq!(list["data"], json!([]));
    let (_, list) = get(&app, "/api/events", &b.sk).await;
    assert_eq!(list["data"], json!([]));
    let (_, keys) = get(&app, "/api/keys", &b.sk).await;
    let a_keys: Vec<Value> = get(&app, "/api/keys", &a.sk).await.1["data"]
        .as_array()
        .unwrap()
        .clone();
    let a_key_id = a_keys[0]["id"].as_str().unwrap();
    assert!(!keys.to_string().contains(a_key_id));
    let r = app
        .post(
            &format!("/api/keys/{a_key_id}/revoke"),
            &b.sk,
            &json!({}),
            None,
        )
        .await;
    assert_eq!(r.status(), 404);
    assert_eq!(receiver.hits().len(), 1, "B's endpoint never got A's event");

    // The publishable key reads nothing of the merchant API.
    let (status, v) = get(&app, "/api/transactions", &a.pk).await;
    assert_eq!(status, 403);
    assert_eq!(v["error"]["code"], "secret_key_required");
    let (ok, report) = app.audit();
    assert!(ok, "{report}");
}

#[tokio::test]
async fn test_keys_see_only_test_data_and_live_keys_only_live_data() {
    let app = TestApp::spawn().await;
    let m = app.create_merchant(250).await;
    let (live_pk, live_sk) = app.create_live_keys(&m.id);
    let test_code = app.issue_one("100.00").await;
    let live_code = app
        .issue("EUR", "100.00", 1, json!({"mode": "live"}))
        .await
        .remove(0);
    let test_txn = pay(&app, &m.pk, "SAME_ORDER", "10.00", &test_code).await;
    let live_txn = pay(&app, &live_pk, "SAME_ORDER", "10.00", &live_code).await;

    assert_eq!(
        ids(&get(&app, "/api/transactions", &m.sk).await.1),
        vec![test_txn.clone()]
    );
    assert_eq!(
        ids(&get(&app, "/api/transactions", &live_sk).await.1),
        vec![live_txn.clone()]
    );
    assert_eq!(
        get(&app, &format!("/api/transactions/{live_txn}"), &m.sk)
            .await
            .0,
        404
    );
    assert_eq!(
        get(&app, &format!("/api/transactions/{test_txn}"), &live_sk)
            .await
            .0,
        404
    );
    let r = app
        .post(
            &format!("/api/transactions/{live_txn}/refunds"),
            &m.sk,
            &json!({}),
            None,
        )
        .await;
    assert_eq!(r.status(), 404);
    let (_, events) = get(&app, "/api/events", &m.sk).await;
    assert!(events["data"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["mode"] == "test"));
    let (_, keys) = get(&app, "/api/keys", &m.sk).await;
    assert!(keys["data"]
        .as_array()
        .unwrap()
        .iter()
        .all(|k| k["mode"] == "test"));
    // A test code is unknown to a live key and vice versa.
    let r = app.pay(&live_pk, "X", "1.00", &[&test_code], None).await;
    assert_eq!(body(r).await["error"]["code"], "voucher_declined");
    let r = app
        .pay(&live_pk, "Y", "1.00", &["TEST-4242-4242-424X"], None)
        .await;
    assert_eq!(body(r).await["error"]["code"], "voucher_declined");
}

#[tokio::test]
async fn keys_are_created_rolled_with_an_overlap_and_revoked() {
    let app = TestApp::spawn().await;
    let m = app.create_merchant(250).await;
    let (status, list) = get(&app, "/api/keys", &m.sk).await;
    assert_eq!(status, 200);
    let keys = list["data"].as_array().unwrap();
    assert_eq!(keys.len(), 2);
    assert!(
        !list.to_string().contains(&m.sk[8..]),
        "keys are listed without their secret"
    );
    let sk_row = keys.iter().find(|k| k["kind"] == "secret").unwrap();
    assert_eq!(sk_row["prefix"], "sk_test_");
    assert_eq!(sk_row["last4"], &m.sk[m.sk.len() - 4..]);
    let sk_id = sk_row["id"].as_str().unwrap().to_owned();

    // Roll with the default overlap: both keys work until the old one expires.
    let r = app
        .post(&format!("/api/keys/{sk_id}/roll"), &m.sk, &json!({}), None)
        .await;
    assert_eq!(r.status(), 201);
    let rolled = body(r).await;
    let new_sk = rolled["secret_key"].as_str().unwrap().to_owned();
    assert!(new_sk.starts_with("sk_test_"));
    assert_eq!(rolled["previous"]["status"], "expiring");
    assert!(rolled["previous"]["expires_at"].is_string());
    assert_eq!(get(&app, "/api/transactions", &m.sk).await.0, 200);
    assert_eq!(get(&app, "/api/transactions", &new_sk).await.0, 200);

    // Roll the new one with no overlap: it stops at once.
    let new_id = rolled["key"]["id"].as_str().unwrap().to_owned();
    let r = app
        .post(
            &format!("/api/keys/{new_id}/roll"),
            &new_sk,
            &json!({"expires_in_seconds": 0}),
            None,
        )
        .await;
    assert_eq!(r.status(), 201);
    let newest = body(r).await["secret_key"].as_str().unwrap().to_owned();
    assert_eq!(get(&app, "/api/transactions", &new_sk).await.0, 401);
    assert_eq!(get(&app, "/api/transactions", &newest).await.0, 200);

    // Create a publishable key, then revoke the original secret key.
    let r = app
        .post("/api/keys", &newest, &json!({"kind": "publishable"}), None)
        .await;
    assert_eq!(r.status(), 201);
    let pk = body(r).await["publishable_key"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(pk.starts_with("pk_test_"));
    let code = app.issue_one("10.00").await;
    assert_eq!(
        app.pay(&pk, "O1", "1.00", &[&code], None).await.status(),
        201
    );
    let r = app
        .post(
            &format!("/api/keys/{sk_id}/revoke"),
            &newest,
            &json!({}),
            None,
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(body(r).await["status"], "revoked");
    assert_eq!(get(&app, "/api/transactions", &m.sk).await.0, 401);
    let r = app
        .post("/api/keys", &newest, &json!({"kind": "root"}), None)
        .await;
    assert_eq!(r.status(), 400);
    let r = app
        .post(
            &format!("/api/keys/{sk_id}/roll"),
            &newest,
            &json!({"expires_in_seconds": 999999}),
            None,
        )
        .await;
    assert_eq!(r.status(), 400);
    assert!(!app.logs().contains(&newest[8..]));
}

#[tokio::test]
async fn a_new_or_rolled_key_has_the_name_merchant_creation_gives_it() {
    let app = TestApp::spawn().await;
    let m = app.create_merchant(250).await;
    let (_, list) = get(&app, "/api/keys", &m.sk).await;
    let id_of = |kind: &str| {
        list["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["kind"] == kind)
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let (sk_id, pk_id) = (id_of("secret"), id_of("publishable"));
    let answers = [
        (
            "secret_key",
            "sk_test_",
            app.post("/api/keys", &m.sk, &json!({"kind": "secret"}), None)
                .await,
        ),
        (
            "publishable_key",
            "pk_test_",
            app.post("/api/keys", &m.sk, &json!({"kind": "publishable"}), None)
                .await,
        ),
        (
            "publishable_key",
            "pk_test_",
            app.post(&format!("/api/keys/{pk_id}/roll"), &m.sk, &json!({}), None)
                .await,
        ),
        (
            "secret_key",
            "sk_test_",
            app.post(&format!("/api/keys/{sk_id}/roll"), &m.sk, &json!({}), None)
                .await,
        ),
    ];
    for (name, prefix, r) in answers {
        assert_eq!(r.status(), 201);
        let v = body(r).await;
        let key = v[name]
            .as_str()
            .unwrap_or_else(|| panic!("no {name} in {v}"));
        assert!(key.starts_with(prefix), "{v}");
        let other = if name == "secret_key" {
            "publishable_key"
        } else {
            "secret_key"
        };
        assert!(v.get(other).is_none(), "{v}");
        // The former name still carries the same key while integrations move over.
        assert_eq!(v["secret"], key);
    }
    let spec = app.served_spec().await;
    for schema in ["NewKey", "RolledKey"] {
        let props = &spec["components"]["schemas"][schema]["properties"];
        assert_eq!(props["secret"]["deprecated"], true, "{schema}");
        assert!(props["secret_key"].is_object(), "{schema}");
        assert!(props["publishable_key"].is_object(), "{schema}");
    }
}

#[tokio::test]
async fn the_magic_test_codes_always_behave_as_documented() {
    let app = TestApp::spawn().await;
    let m = app.create_merchant(250).await;
    for i in 0..3 {
        // The 5.00 voucher pays 5.00 every time: it is refilled before each use.
        let r = app
            .pay(
                &m.pk,
                &format!("FIVE_{i}"),
                "5.00",
                &["TEST-5000-0000-0004"],
                None,
            )
            .await;
        assert_eq!(r.status(), 201);
    }
    let r = app
        .pay(&m.pk, "FIVE_BIG", "5.01", &["TEST-5000-0000-0004"], None)
        .await;
    assert_eq!(r.status(), 402);
    assert_eq!(body(r).await["error"]["code"], "insufficient_balance");
    let r = app
        .pay(&m.pk, "PLENTY", "999.99", &["test-4242-4242-424x"], None)
        .await;
    assert_eq!(r.status(), 201);
    let r = app
        .pay(&m.pk, "EXPIRED", "1.00", &["TEST-EXP1-RED0-000M"], None)
        .await;
    assert_eq!(body(r).await["error"]["code"], "voucher_declined");
    let r = app
        .pay(&m.pk, "BLOCKED", "1.00", &["TEST-B10C-KED0-000Q"], None)
        .await;
    assert_eq!(body(r).await["error"]["code"], "voucher_declined");
    let r = app
        .post(
            "/api/vouchers/check",
            &m.pk,
            &json!({"code": "TEST-5000-0000-0004"}),
            None,
        )
        .await;
    assert_eq!(body(r).await["balance"], "5.00");
    let (ok, report) = app.audit();
    assert!(ok, "{report}");
}

#[tokio::test]
async fn a_key_is_rolled_once_even_by_concurrent_requests() {
    let app = TestApp::spawn().await;
    let m = app.create_merchant(250).await;
    let (_, list) = get(&app, "/api/keys", &m.sk).await;
    let sk_id = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kind"] == "secret")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/api/keys/{sk_id}/roll");
    let empty = json!({});
    let rolls =
        futures::future::join_all((0..4).map(|_| app.post(&path, &m.sk, &empty, None))).await;
    let mut statuses: Vec<u16> = rolls.iter().map(|r| r.status().as_u16()).collect();
    statuses.sort_unstable();
    assert_eq!(statuses, [201, 400, 400, 400], "exactly one roll wins");

    // The old key, now expiring, cannot be rolled into yet another replacement.
    let r = app.post(&path, &m.sk, &json!({}), None).await;
    assert_eq!(r.status(), 400);
    assert_eq!(body(r).await["error"]["code"], "key_inactive");
    let (_, list) = get(&app, "/api/keys", &m.sk).await;
    let secrets = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["kind"] == "secret")
        .count();
    assert_eq!(secrets, 2, "the original key and one replacement");
}
