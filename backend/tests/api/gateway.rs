//! The gateway layer: client addresses behind trusted proxies and the voucher-guessing lockout.
use reqwest::Response;
use serde_json::json;

use crate::helpers::{body, retry_after, TestApp};

/// A well-formed code (valid check symbol) that no voucher has.
fn guessed(n: u8) -> String {
    superpayment_core::VoucherCode::generate([n, 7, 7, 7, 7, 7, 7, 7, 7, n]).formatted()
}

async fn check_from(app: &TestApp, pk: &str, from: &str, code: &str) -> Response {
    app.client
        .post(app.url("/api/vouchers/check"))
        .bearer_auth(pk)
        .header("X-Forwarded-For", from)
        .json(&json!({"code": code}))
        .send()
        .await
        .unwrap()
}

async fn pay_from(app: &TestApp, pk: &str, from: &str, order: &str, code: &str) -> Response {
    app.client
        .post(app.url("/api/process-payment/"))
        .bearer_auth(pk)
        .header("X-Forwarded-For", from)
        .json(
            &json!({"order_id": order, "amount": "10.00", "currency": "EUR",
                      "vouchers": [{"code": code}]}),
        )
        .send()
        .await
        .unwrap()
}

async fn assert_locked_out(r: Response) {
    assert_eq!(r.status(), 429);
    let retry = retry_after(&r);
    assert!(retry > 0);
    assert_eq!(body(r).await["error"]["code"], "too_many_failed_attempts");
}

#[tokio::test]
async fn guessing_from_one_address_is_cut_off_on_check_and_payment_while_another_address_pays() {
    let app = TestApp::spawn_with(&[
        ("TRUSTED_PROXIES", "127.0.0.1/32"),
        ("GUESS_LOCKOUT_THRESHOLD", "6"),
    ])
    .await;
    let m = app.create_merchant(0).await;
    let real = app.issue_one("50.00").await;
    let guesser = "198.51.100.7";
    let mut answered = 0;
    for n in 0..50u8 {
        let r = if n % 2 == 0 {
            check_from(&app, &m.pk, guesser, &guessed(n)).await
        } else {
            pay_from(&app, &m.pk, guesser, &format!("G{n}"), &guessed(n)).await
        };
        if r.status() == 429 {
            assert_locked_out(r).await;
            break;
        }
        let expected = if n % 2 == 0 { 200 } else { 402 };
        assert_eq!(r.status(), expected);
        answered += 1;
    }
    assert_eq!(
        answered, 7,
        "the attempt past the threshold is the last one answered"
    );
    // Locked out whatever it tries next, a real code included.
    assert_locked_out(check_from(&app, &m.pk, guesser, &real).await).await;
    assert_locked_out(pay_from(&app, &m.pk, guesser, "G-real", &real).await).await;
    // A shopper of the same shop elsewhere is unaffected.
    let r = pay_from(&app, &m.pk, "203.0.113.9", "ORDER-1", &real).await;
    assert_eq!(r.status(), 201);
}

#[tokio::test]
async fn forwarded_for_from_an_untrusted_peer_is_ignored() {
    let app = TestApp::spawn_with(&[("GUESS_LOCKOUT_THRESHOLD", "2")]).await;
    let m = app.create_merchant(0).await;
    for n in 0..3u8 {
        // Each claims another address; without TRUSTED_PROXIES all are the peer's.
        let r = check_from(&app, &m.pk, &format!("198.51.100.{n}"), &guessed(n)).await;
        assert_eq!(r.status(), 200);
    }
    assert_locked_out(check_from(&app, &m.pk, "203.0.113.50", &guessed(9)).await).await;
}

#[tokio::test]
async fn two_ipv6_addresses_in_one_64_share_a_bucket() {
    let app = TestApp::spawn_with(&[
        ("TRUSTED_PROXIES", "127.0.0.1"),
        ("GUESS_LOCKOUT_THRESHOLD", "2"),
    ])
    .await;
    let m = app.create_merchant(0).await;
    for n in 0..3u8 {
        let from = format!("2001:db8:1:2::{}", n + 1);
        assert_eq!(
            check_from(&app, &m.pk, &from, &guessed(n)).await.status(),
            200
        );
    }
    let same_64 = "2001:db8:1:2:ffff:ffff:ffff:ffff";
    assert_locked_out(check_from(&app, &m.pk, same_64, &guessed(9)).await).await;
    let next_64 = "2001:db8:1:3::1";
    assert_eq!(
        check_from(&app, &m.pk, next_64, &guessed(10))
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn payments_past_the_per_client_limit_get_429_with_retry_after_and_ratelimit_headers() {
    let app = TestApp::spawn_with(&[
        ("TRUSTED_PROXIES", "127.0.0.1"),
        ("PAY_RATE_LIMIT_PER_CLIENT", "3"),
    ])
    .await;
    let m = app.create_merchant(0).await;
    let code = app.issue_one("50.00").await;
    let mut statuses = Vec::new();
    for n in 0..3 {
        let r = pay_from(&app, &m.pk, "198.51.100.7", &format!("R{n}"), &code).await;
        assert!(r.headers()["ratelimit-policy"]
            .to_str()
            .unwrap()
            .contains("\"per-client\";q=3;w=60"));
        assert!(r.headers().contains_key("ratelimit"));
        statuses.push(r.status().as_u16());
    }
    assert_eq!(statuses, [201, 201, 201]);
    let r = pay_from(&app, &m.pk, "198.51.100.7", "R3", &code).await;
    assert_eq!(r.status(), 429);
    let retry = retry_after(&r);
    assert!(retry > 0);
    assert!(r.headers()["ratelimit"]
        .to_str()
        .unwrap()
        .starts_with("\"per-client\";r=0;"));
    assert_eq!(body(r).await["error"]["code"], "rate_limited");
    // Another shopper of the shop still pays.
    let r = pay_from(&app, &m.pk, "203.0.113.9", "R4", &code).await;
    assert_eq!(r.status(), 201);
    // The spec declares the headers these answers carry.
    let spec = app.served_spec().await;
    let responses = &spec["paths"]["/process-payment"]["post"]["responses"];
    for (status, headers) in [
        ("201", &["RateLimit-Policy", "RateLimit"][..]),
        ("429", &["Retry-After", "RateLimit-Policy", "RateLimit"][..]),
    ] {
        for h in headers {
            assert!(
                // poem-openapi writes header names in capitals; HTTP ignores case.
                responses[status]["headers"][h.to_uppercase()].is_object(),
                "{status} does not declare {h}: {}",
                responses[status]
            );
        }
    }
}

#[tokio::test]
async fn every_answer_carries_the_security_headers_and_the_checkout_stays_framable() {
    let app = TestApp::spawn().await;
    let api = app
        .client
        .post(app.url("/api/process-payment/"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    let health = app.client.get(app.url("/healthz")).send().await.unwrap();
    for r in [&api, &health] {
        let h = r.headers();
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert_eq!(h["referrer-policy"], "no-referrer");
        assert_eq!(h["x-frame-options"], "DENY");
        assert!(h["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'"));
        assert!(
            !h.contains_key("strict-transport-security"),
            "no HSTS without https"
        );
    }
    let checkout = app
        .client
        .get(app.url("/checkout.html"))
        .send()
        .await
        .unwrap();
    assert!(!checkout.headers().contains_key("x-frame-options"));
    assert_eq!(checkout.headers()["x-content-type-options"], "nosniff");
}

#[tokio::test]
async fn hsts_is_sent_when_the_public_url_is_https() {
    let app = TestApp::spawn_with(&[("PUBLIC_URL", "https://pay.example")]).await;
    let r = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert!(r.headers()["strict-transport-security"]
        .to_str()
        .unwrap()
        .starts_with("max-age="));
}

/// An answer with what differs between two requests taken out: the request id (body and
/// header), the date and `RateLimit` (the caller's own budget, counting down with each
/// request whatever the code); the check's `last4` echoes the code sent.
async fn uniform_part(r: Response) -> (u16, Vec<(String, String)>, serde_json::Value) {
    let status = r.status().as_u16();
    let mut headers: Vec<(String, String)> = r
        .headers()
        .iter()
        .filter(|(name, _)| !matches!(name.as_str(), "date" | "x-request-id" | "ratelimit"))
        .map(|(n, v)| (n.to_string(), v.to_str().unwrap_or("?").to_owned()))
        .collect();
    headers.sort();
    let mut v = body(r).await;
    if let Some(error) = v.get_mut("error").and_then(|e| e.as_object_mut()) {
        assert!(error.remove("request_id").is_some());
    }
    if let Some(check) = v.as_object_mut() {
        check.remove("last4");
    }
    (status, headers, v)
}

#[tokio::test]
async fn unknown_expired_and_blocked_codes_get_one_uniform_decline_and_each_counts_as_a_failed_attempt(
) {
    let app = TestApp::spawn_with(&[
        ("TRUSTED_PROXIES", "127.0.0.1/32"),
        ("GUESS_LOCKOUT_THRESHOLD", "5"),
    ])
    .await;
    let m = app.create_merchant(0).await;
    let blocked = app.issue_one("50.00").await;
    let r = app
        .post(
            "/api/admin/vouchers/block",
            crate::helpers::ADMIN_TOKEN,
            &json!({"code": blocked, "blocked": true}),
            None,
        )
        .await;
    assert!(r.status().is_success());
    let codes = [
        guessed(1),
        "TEST-EXP1-RED0-000M".to_owned(),
        blocked,
        "TEST-B10C-KED0-000Q".to_owned(),
    ];
    let from = "198.51.100.20";

    let mut payments = Vec::new();
    for (n, code) in codes.iter().enumerate() {
        let r = pay_from(&app, &m.pk, from, &format!("U{n}"), code).await;
        payments.push(uniform_part(r).await);
    }
    assert_eq!(payments[0].0, 402);
    assert_eq!(payments[0].2["error"]["code"], "voucher_declined");
    for other in &payments[1..] {
        assert_eq!(other, &payments[0], "a payment tells the codes apart");
    }

    let mut checks = Vec::new();
    for code in &codes[..1] {
        checks.push(uniform_part(check_from(&app, &m.pk, from, code).await).await);
    }
    assert_eq!(checks[0].0, 200);
    assert_eq!(
        checks[0].2,
        json!({"valid": false, "reason": "voucher_declined"})
    );
    // Past the threshold (5) with the sixth failure: every one of them counted.
    checks.push(uniform_part(check_from(&app, &m.pk, from, &codes[1]).await).await);
    assert_eq!(checks[1], checks[0], "a check tells the codes apart");
    assert_locked_out(check_from(&app, &m.pk, from, &codes[2]).await).await;

    // The secret-key side of the house keeps the precise reason: the operator's log.
    let logs = app.logs();
    assert!(logs.contains("voucher_expired"), "{logs}");
    assert!(logs.contains("voucher_blocked"), "{logs}");
}

#[tokio::test]
async fn cors_shares_the_widget_files_with_any_origin_and_nothing_else() {
    let app = TestApp::spawn().await;
    let m = app.create_merchant(0).await;
    let shop = "https://shop.example";
    // The loader and the Wasm files: any merchant page reads them (SRI, crossorigin).
    for path in ["/widget.js", "/pkg/manifest.json"] {
        let r = app
            .client
            .get(app.url(path))
            .header("Origin", shop)
            .send()
            .await
            .unwrap();
        let status = r.status();
        assert_eq!(
            r.headers()
                .get("access-control-allow-origin")
                .map(|v| v.to_str().unwrap()),
            Some("*"),
            "{path} ({status})"
        );
        assert!(!r.headers().contains_key("access-control-allow-credentials"));
    }
    // The API is called by the checkout iframe from this origin only: a page elsewhere
    // gets no grant, at the preflight or at the call itself, and never with credentials.
    let preflight = app
        .client
        .request(reqwest::Method::OPTIONS, app.url("/api/process-payment/"))
        .header("Origin", shop)
        .header("Access-Control-Request-Method", "POST")
        .header(
            "Access-Control-Request-Headers",
            "authorization, content-type",
        )
        .send()
        .await
        .unwrap();
    assert!(!preflight.status().is_success(), "{}", preflight.status());
    for name in [
        "access-control-allow-origin",
        "access-control-allow-methods",
        "access-control-allow-headers",
        "access-control-allow-credentials",
    ] {
        assert!(!preflight.headers().contains_key(name), "preflight {name}");
    }
    let r = app
        .client
        .post(app.url("/api/vouchers/check"))
        .bearer_auth(&m.pk)
        .header("Origin", shop)
        .json(&json!({"code": guessed(3)}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(!r.headers().contains_key("access-control-allow-origin"));
    assert!(!r.headers().contains_key("access-control-allow-credentials"));
    // The checkout page itself is framed, not fetched across origins.
    let r = app
        .client
        .get(app.url("/checkout.html"))
        .header("Origin", shop)
        .send()
        .await
        .unwrap();
    assert!(!r.headers().contains_key("access-control-allow-origin"));
}

/// PostgreSQL only: the payment is held past the limit by a row lock the test takes on
/// the vouchers, which SQLite (one writer, no row locks) cannot express.
#[tokio::test]
async fn a_request_past_the_time_limit_gets_503_request_timeout_and_its_retry_pays_once() {
    use sea_orm::{ConnectionTrait, Statement, TransactionTrait};
    if crate::helpers::is_sqlite() {
        return;
    }
    let app = TestApp::spawn_with(&[("REQUEST_TIMEOUT", "1s")]).await;
    let m = app.create_merchant(0).await;
    let code = app.issue_one("50.00").await;
    let request = json!({"order_id": "SLOW", "amount": "20.00", "currency": "EUR",
                         "vouchers": [{"code": code}]});
    let db = app.db().await;
    let lock = db.begin().await.unwrap();
    lock.execute(Statement::from_string(
        lock.get_database_backend(),
        "SELECT id FROM vouchers FOR UPDATE",
    ))
    .await
    .unwrap();
    let r = app
        .post("/api/process-payment/", &m.pk, &request, Some("slow-1"))
        .await;
    assert_eq!(r.status(), 503);
    assert!(retry_after(&r) > 0);
    let v = body(r).await;
    assert_eq!(v["error"]["code"], "request_timeout", "{v}");
    assert!(v["error"]["request_id"]
        .as_str()
        .is_some_and(|id| !id.is_empty()));
    lock.rollback().await.unwrap();
    db.close().await.ok();

    // The abandoned attempt changed nothing; the retry with its key pays, once.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let id = loop {
        let r = app
            .post("/api/process-payment/", &m.pk, &request, Some("slow-1"))
            .await;
        match r.status().as_u16() {
            201 => break body(r).await["id"].as_str().unwrap().to_owned(),
            // The abandoned attempt's key lock or row lock may still be on its way out.
            409 | 503 => {
                assert!(std::time::Instant::now() < deadline);
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
            other => panic!("{other}: {}", body(r).await),
        }
    };
    assert!(id.starts_with("txn_"));
    assert_eq!(app.count("transactions").await, 1);
    assert_eq!(app.voucher_balance(&m.pk, &code).await, "30.00");
}

#[tokio::test]
async fn a_merchants_limit_overrides_apply_to_its_keys_and_no_one_elses() {
    let app = TestApp::spawn_with(&[
        ("TRUSTED_PROXIES", "127.0.0.1/32"),
        ("CHECK_RATE_LIMIT", "100"),
        // The harness turns the payment limits off; the override turns one on.
        ("KEY_CACHE_TTL", "0s"),
    ])
    .await;
    let small = app.create_merchant(0).await;
    let other = app.create_merchant(0).await;
    let code = app.issue_one("50.00").await;
    let (ok, out) = app.cli(&[
        "admin",
        "set-limits",
        "--merchant",
        &small.id,
        "--checks",
        "2",
        "--pay-per-client",
        "1",
    ]);
    assert!(ok, "{out}");
    assert!(out.contains("checks=2"), "{out}");

    let from = "198.51.100.30";
    for _ in 0..2 {
        let r = check_from(&app, &small.pk, from, &code).await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["ratelimit-policy"], "\"per-client\";q=2;w=60");
    }
    let r = check_from(&app, &small.pk, from, &code).await;
    assert_eq!(r.status(), 429);
    assert_eq!(body(r).await["error"]["code"], "rate_limited");
    // Another shop at the same address keeps the server's limit.
    let r = check_from(&app, &other.pk, from, &code).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["ratelimit-policy"], "\"per-client\";q=100;w=60");

    // The payment limit the server has off is on for this merchant.
    let r = pay_from(&app, &small.pk, from, "O-1", &code).await;
    assert_eq!(r.status(), 201, "{}", body(r).await);
    let r = pay_from(&app, &small.pk, from, "O-2", &code).await;
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["ratelimit-policy"], "\"per-client\";q=1;w=60");
    let r = pay_from(&app, &other.pk, from, "O-3", &code).await;
    assert_eq!(r.status(), 201);
    assert!(!r.headers().contains_key("ratelimit-policy"));

    // Without overrides, the merchant is back on the server's limits.
    let (ok, out) = app.cli(&["admin", "set-limits", "--merchant", &small.id]);
    assert!(ok, "{out}");
    let r = check_from(&app, &small.pk, from, &code).await;
    assert_eq!(r.headers()["ratelimit-policy"], "\"per-client\";q=100;w=60");
    let (ok, _) = app.cli(&["admin", "set-limits", "--merchant", "mer_missing"]);
    assert!(!ok, "an unknown merchant is an error");
}
