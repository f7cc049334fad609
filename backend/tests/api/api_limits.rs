//! Request limits on the secret-key and admin routes, the per-merchant override of the
//! per-key limit, and the lockout of addresses that keep sending bad credentials.
use reqwest::Response;
use sea_orm::{ConnectionTrait, Statement};
use serde_json::json;
use superpayment_core::{ApiKey, KeyKind, Mode};

use crate::helpers::{body, retry_after, TestApp, ADMIN_TOKEN};

async fn get_from(app: &TestApp, path: &str, key: &str, from: &str) -> Response {
    app.client
        .get(app.url(path))
        .bearer_auth(key)
        .header("X-Forwarded-For", from)
        .send()
        .await
        .unwrap()
}

async fn list_keys(app: &TestApp, sk: &str) -> Response {
    get_from(app, "/api/keys", sk, "198.51.100.1").await
}

fn header(r: &Response, name: &str) -> String {
    r.headers()
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header"))
        .to_str()
        .unwrap()
        .to_owned()
}

/// A 429 `rate_limited` with the three headers, the refusing limit named `policy`.
async fn assert_rate_limited(r: Response, policy: &str) {
    assert_eq!(r.status(), 429);
    assert!(retry_after(&r) > 0);
    assert!(header(&r, "ratelimit-policy").contains(&format!("\"{policy}\";q=")));
    assert!(
        header(&r, "ratelimit").starts_with(&format!("\"{policy}\";r=0;")),
        "{}",
        header(&r, "ratelimit")
    );
    assert_eq!(body(r).await["error"]["code"], "rate_limited");
}

/// A well-formed secret key that no merchant has.
fn made_up_key(n: u8) -> String {
    ApiKey::generate(KeyKind::Secret, Mode::Test, [n; 20])
        .expose()
        .to_owned()
}

#[tokio::test]
async fn a_secret_key_past_its_limit_gets_429_while_other_keys_of_its_merchant_and_others_work() {
    let app = TestApp::spawn_with(&[("API_RATE_LIMIT_PER_KEY", "3")]).await;
    let a = app.create_merchant(0).await;
    let b = app.create_merchant(0).await;
    // A second secret key of merchant A (the first request of A's first key).
    let r = app
        .post("/api/keys", &a.sk, &json!({"kind": "secret"}), None)
        .await;
    assert_eq!(r.status(), 201);
    let a2 = body(r).await["secret_key"].as_str().unwrap().to_owned();
    for _ in 0..2 {
        let r = list_keys(&app, &a.sk).await;
        assert_eq!(r.status(), 200);
        assert_eq!(header(&r, "ratelimit-policy"), "\"per-key\";q=3;w=60");
    }
    assert_rate_limited(list_keys(&app, &a.sk).await, "per-key").await;
    // The limit is per key: every route of the key shares it, and no other key is touched.
    let r = app
        .post(
            "/api/verify-transaction",
            &a.sk,
            &json!({"transaction_id": "txn_0"}),
            None,
        )
        .await;
    assert_eq!(r.status(), 429);
    assert_eq!(list_keys(&app, &a2).await.status(), 200);
    assert_eq!(list_keys(&app, &b.sk).await.status(), 200);
}

#[tokio::test]
async fn a_merchants_api_per_key_override_raises_its_limit_and_only_its_own() {
    let app =
        TestApp::spawn_with(&[("API_RATE_LIMIT_PER_KEY", "2"), ("KEY_CACHE_TTL", "0s")]).await;
    let raised = app.create_merchant(0).await;
    let plain = app.create_merchant(0).await;
    let (ok, out) = app.cli(&[
        "admin",
        "set-limits",
        "--merchant",
        &raised.id,
        "--api-per-key",
        "4",
    ]);
    assert!(ok, "{out}");
    assert!(out.contains("api_per_key=4"), "{out}");
    for _ in 0..4 {
        let r = list_keys(&app, &raised.sk).await;
        assert_eq!(r.status(), 200);
        assert_eq!(header(&r, "ratelimit-policy"), "\"per-key\";q=4;w=60");
    }
    assert_rate_limited(list_keys(&app, &raised.sk).await, "per-key").await;
    for _ in 0..2 {
        assert_eq!(list_keys(&app, &plain.sk).await.status(), 200);
    }
    assert_rate_limited(list_keys(&app, &plain.sk).await, "per-key").await;
}

#[tokio::test]
async fn admin_routes_are_limited_per_client_address_and_expensive_ones_lower() {
    let app = TestApp::spawn_with(&[
        ("TRUSTED_PROXIES", "127.0.0.1"),
        ("ADMIN_RATE_LIMIT", "2"),
        ("API_RATE_LIMIT_EXPENSIVE", "1"),
    ])
    .await;
    let operator = "198.51.100.7";
    for _ in 0..2 {
        let r = get_from(&app, "/api/admin/merchants", ADMIN_TOKEN, operator).await;
        assert_eq!(r.status(), 200);
        assert_eq!(header(&r, "ratelimit-policy"), "\"per-client\";q=2;w=60");
    }
    let r = get_from(&app, "/api/admin/merchants", ADMIN_TOKEN, operator).await;
    assert_rate_limited(r, "per-client").await;
    let r = get_from(&app, "/api/admin/merchants", ADMIN_TOKEN, "203.0.113.9").await;
    assert_eq!(r.status(), 200);

    // A report export has its own, lower budget on top of the admin limit.
    let report = "/api/admin/reports/liability?mode=test";
    let elsewhere = "203.0.113.50";
    let r = get_from(&app, report, ADMIN_TOKEN, elsewhere).await;
    assert_eq!(r.status(), 200, "{}", body(r).await);
    let r = get_from(&app, report, ADMIN_TOKEN, elsewhere).await;
    assert_eq!(
        header(&r, "ratelimit-policy"),
        "\"per-client\";q=2;w=60, \"expensive\";q=1;w=60"
    );
    assert_rate_limited(r, "expensive").await;
}

#[tokio::test]
async fn a_flood_of_bad_keys_from_one_address_is_refused_while_a_valid_key_elsewhere_works() {
    let app = TestApp::spawn_with(&[
        ("TRUSTED_PROXIES", "127.0.0.1"),
        ("AUTH_LOCKOUT_THRESHOLD", "4"),
    ])
    .await;
    let m = app.create_merchant(0).await;
    let flooder = "198.51.100.66";
    let mut answered = 0;
    for n in 0..20u8 {
        // Made-up keys, malformed ones, a publishable route, a wrong admin token: all count.
        let r = match n % 4 {
            0 => get_from(&app, "/api/keys", &made_up_key(n), flooder).await,
            1 => get_from(&app, "/api/keys", "sk_test_nonsense", flooder).await,
            2 => app
                .client
                .post(app.url("/api/vouchers/check"))
                .bearer_auth(format!("pk_test_{}", "x".repeat(32)))
                .header("X-Forwarded-For", flooder)
                .json(&json!({"code": "TEST-4242-4242-424X"}))
                .send()
                .await
                .unwrap(),
            _ => get_from(&app, "/api/admin/merchants", "wrong-admin-token", flooder).await,
        };
        if r.status() == 429 {
            assert!(retry_after(&r) > 0);
            assert_eq!(
                body(r).await["error"]["code"],
                "too_many_failed_authentications"
            );
            break;
        }
        assert_eq!(r.status(), 401);
        answered += 1;
    }
    assert_eq!(
        answered, 5,
        "the failure past the threshold is the last one answered"
    );
    // Refused for the cool-down, made-up key or not...
    let r = get_from(&app, "/api/keys", &made_up_key(99), flooder).await;
    assert_eq!(r.status(), 429);
    // ...while a merchant's valid key from another address works.
    let r = get_from(&app, "/api/keys", &m.sk, "203.0.113.9").await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn a_key_remembered_as_unknown_works_once_the_cache_ttl_has_passed() {
    let app = TestApp::spawn_with(&[("KEY_CACHE_TTL", "3s")]).await;
    let m = app.create_merchant(0).await;
    let newcomer = made_up_key(7);
    assert_eq!(list_keys(&app, &newcomer).await.status(), 401);
    // The key appears (another instance or the command line made it): here it is the
    // merchant's unused second key, whose stored hash becomes the newcomer's.
    let r = app
        .post("/api/keys", &m.sk, &json!({"kind": "secret"}), None)
        .await;
    let spare = body(r).await["secret_key"].as_str().unwrap().to_owned();
    let db = app.db().await;
    let sha = superpayment_backend::crypto::sha256_hex;
    db.execute(Statement::from_string(
        db.get_database_backend(),
        format!(
            "UPDATE api_keys SET key_hash = '{}' WHERE key_hash = '{}'",
            sha(&newcomer),
            sha(&spare)
        ),
    ))
    .await
    .unwrap();
    // Remembered as unknown: still refused, without a lookup...
    assert_eq!(list_keys(&app, &newcomer).await.status(), 401);
    // ...until the entry expires.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let r = list_keys(&app, &newcomer).await;
        if r.status() == 200 {
            break;
        }
        assert_eq!(r.status(), 401);
        assert!(
            std::time::Instant::now() < deadline,
            "the new key never worked"
        );
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
}

#[tokio::test]
async fn every_operation_documents_its_429_with_retry_after_and_the_ratelimit_headers() {
    let app = TestApp::spawn().await;
    let spec = app.served_spec().await;
    let mut checked = 0;
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let Some(id) = op["operationId"].as_str() else {
                continue;
            };
            if op["tags"] == json!(["Operations"]) {
                continue;
            }
            let r = &op["responses"]["429"];
            for h in ["RETRY-AFTER", "RATELIMIT-POLICY", "RATELIMIT"] {
                assert!(
                    r["headers"][h].is_object(),
                    "{method} {path} ({id}): 429 does not declare {h}"
                );
            }
            let examples: Vec<&String> = r["content"]
                .as_object()
                .into_iter()
                .flat_map(|c| c.values())
                .flat_map(|m| m["examples"].as_object().into_iter().flat_map(|e| e.keys()))
                .collect();
            for code in ["rate_limited", "too_many_failed_authentications"] {
                assert!(
                    examples.iter().any(|e| *e == code),
                    "{method} {path} ({id}): 429 has no {code} example: {examples:?}"
                );
            }
            checked += 1;
        }
    }
    assert!(checked > 30, "{checked}");
}
