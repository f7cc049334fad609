//! The widget's server side: remembered-voucher tokens, signed amounts, checkout settings
//! and the checkout document's security headers.
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::helpers::{body, TestApp, ADMIN_TOKEN};

async fn pay_json(app: &TestApp, pk: &str, payment: Value, key: Option<&str>) -> (u16, Value) {
    let r = app.post("/api/process-payment/", pk, &payment, key).await;
    let status = r.status().as_u16();
    (status, body(r).await)
}

async fn get_json(app: &TestApp, path: &str, key: &str) -> (u16, Value) {
    let r = app
        .client
        .get(app.url(path))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn put_json(app: &TestApp, path: &str, key: &str, v: Value) -> (u16, Value) {
    let r = app
        .client
        .put(app.url(path))
        .bearer_auth(key)
        .json(&v)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn sign(secret: &str, order: &str, amount: &str, currency: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{order}|{amount}|{currency}").as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

#[tokio::test]
async fn a_remembered_voucher_pays_the_next_order_in_one_click_and_is_stored_only_hashed() {
    let app = TestApp::spawn().await;
    let m = app.create_merchant(250).await;
    let code = app.issue_one("150.00").await;

    let first = json!({"order_id": "ORDER_1", "amount": "99.00", "currency": "EUR",
        "vouchers": [{"code": code}], "remember": true});
    let (status, v) = pay_json(&app, &m.pk, first.clone(), Some("attempt-1")).await;
    assert_eq!(status, 201, "{v}");
    let remembered = v["remembered_vouchers"].as_array().unwrap();
    assert_eq!(remembered.len(), 1);
    let token = remembered[0]["token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("vt_") && token.len() == 35, "{token}");
    assert_eq!(remembered[0]["last4"], &code[15..]);
    assert_eq!(remembered[0]["balance"], "51.00");
    assert_eq!(remembered[0]["currency"], "EUR");

    // Only the hash is kept, and the replayed answer carries no token.
    let hash = hex::encode(Sha256::digest(token.as_bytes()));
    assert_eq!(
        app.scalar(&format!(
            "SELECT COUNT(*) AS n FROM remembered_vouchers WHERE token_hash = '{hash}'"
        ))
        .await,
        1
    );
    assert_eq!(
        app.scalar(&format!(
            "SELECT COUNT(*) AS n FROM remembered_vouchers WHERE token_hash = '{token}'"
        ))
        .await,
        0
    );
    assert_eq!(
        app.scalar("SELECT COUNT(*) AS n FROM idempotency_keys WHERE response_body LIKE '%vt!_%' ESCAPE '!'"
        )
        .await,
        0
    );
    let (status, replay) = pay_json(&app, &m.pk, first, Some("attempt-1")).await;
    assert_eq!(status, 201);
    assert!(replay.get("remembered_vouchers").is_none(), "{replay}");

    let (status, looked) = app_lookup(&app, &m.pk, &[&token]).await;
    assert_eq!(status, 200);
    assert_eq!(
        looked["vouchers"][0],
        json!({"valid": true, "last4": &code[15..], "balance": "51.00", "currency": "EUR",
               "expires_at": looked["vouchers"][0]["expires_at"]})
    );

    let (status, v) = pay_json(
        &app,
        &m.pk,
        json!({"order_id": "ORDER_2", "amount": "20.00", "currency": "EUR", "vouchers": [{"token": token}]}),
        Some("attempt-2"),
    )
    .await;
    assert_eq!(status, 201, "{v}");
    assert_eq!(v["vouchers"][0]["remaining_balance"], "31.00");
    assert_eq!(
        app.scalar("SELECT COUNT(*) AS n FROM remembered_vouchers WHERE last_used_at IS NOT NULL")
            .await,
        1
    );
    let (ok, report) = app.audit();
    assert!(ok, "{report}");
}

async fn app_lookup(app: &TestApp, pk: &str, tokens: &[&str]) -> (u16, Value) {
    let r = app
        .post(
            "/api/remembered-vouchers/lookup",
            pk,
            &json!({"tokens": tokens}),
            None,
        )
        .await;
    let status = r.status().as_u16();
    (status, body(r).await)
}

async fn remembered_token(app: &TestApp, pk: &str, code: &str, order: &str) -> String {
    let (status, v) = pay_json(
        app,
        pk,
        json!({"order_id": order, "amount": "10.00", "currency": "EUR",
               "vouchers": [{"code": code}], "remember": true}),
        None,
    )
    .await;
    assert_eq!(status, 201, "{v}");
    v["remembered_vouchers"][0]["token"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn a_token_pays_only_at_its_shop_and_stops_when_revoked() {
    let app = TestApp::spawn().await;
    let shop = app.create_merchant(250).await;
    let other = app.create_merchant(250).await;
    let code = app.issue_one("100.00").await;
    let token = remembered_token(&app, &shop.pk, &code, "A1").await;

    let token_payment = |order: &str| json!({"order_id": order, "amount": "5.00", "currency": "EUR", "vouchers": [{"token": token}]});
    let (status, v) = pay_json(&app, &other.pk, token_payment("B1"), None).await;
    assert_eq!(status, 402);
    assert_eq!(v["error"]["code"], "voucher_token_invalid");
    assert_eq!(v["error"]["param"], "vouchers[0].token");
    let (_, looked) = app_lookup(&app, &other.pk, &[&token]).await;
    assert_eq!(
        looked["vouchers"][0],
        json!({"valid": false, "reason": "voucher_token_invalid"})
    );

    let r = app
        .post(
            "/api/remembered-vouchers/revoke",
            &shop.pk,
            &json!({"tokens": [token]}),
            None,
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(body(r).await["revoked"], 1);
    let (status, v) = pay_json(&app, &shop.pk, token_payment("A2"), None).await;
    assert_eq!(status, 402);
    assert_eq!(v["error"]["code"], "voucher_token_invalid");

    // An operator revokes every token of a voucher (e.g. a reported theft).
    let second = remembered_token(&app, &shop.pk, &code, "A3").await;
    let r = app
        .post(
            "/api/admin/vouchers/revoke-remembered",
            ADMIN_TOKEN,
            &json!({"code": code}),
            None,
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(body(r).await["revoked"], 1);
    let (_, looked) = app_lookup(&app, &shop.pk, &[&second]).await;
    assert_eq!(looked["vouchers"][0]["valid"], false);
    // The voucher itself still pays by code.
    let (status, _) = pay_json(
        &app,
        &shop.pk,
        json!({"order_id": "A4", "amount": "5.00", "currency": "EUR", "vouchers": [{"code": code}]}),
        None,
    )
    .await;
    assert_eq!(status, 201);
}

#[tokio::test]
async fn a_token_and_the_code_it_stands_for_are_the_same_voucher() {
    let app = TestApp::spawn().await;
    let m = app.create_merchant(250).await;
    let code = app.issue_one("100.00").await;
    let token = remembered_token(&app, &m.pk, &code, "O1").await;
    let (status, v) = pay_json(
        &app,
        &m.pk,
        json!({"order_id": "O2", "amount": "5.00", "currency": "EUR",
               "vouchers": [{"token": token}, {"code": code}]}),
        None,
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(v["error"]["code"], "duplicate_voucher");
    assert_eq!(v["error"]["param"], "vouchers[1]");
}

#[tokio::test]
async fn malformed_token_lists_are_refused_and_keys_are_checked() {
    let app = TestApp::spawn().await;
    let m = app.create_merchant(250).await;
    let (status, v) = app_lookup(&app, &m.pk, &[]).await;
    assert_eq!(status, 400, "{v}");
    let (status, v) = app_lookup(&app, &m.pk, &["not-a-token"]).await;
    assert_eq!(status, 400);
    assert_eq!(v["error"]["param"], "tokens[0]");
    let (status, v) = app_lookup(&app, &m.sk, &["vt_abcdefgh"]).await;
    assert_eq!(status, 403);
    assert_eq!(v["error"]["code"], "secret_key_not_allowed");
}

#[tokio::test]
async fn a_shop_requiring_signatures_refuses_unsigned_and_tampered_amounts() {
    let app = TestApp::spawn().await;
    let m = app.create_merchant(250).await;
    let code = app.issue_one("500.00").await;

    let (status, v) = get_json(&app, "/api/checkout-settings", &m.sk).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["require_signature"], false);
    assert_eq!(v["mode"], "test");
    let secret = v["signing_secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("sgn_test_"));
    let (status, _) = get_json(&app, "/api/checkout-settings", &m.pk).await;
    assert_eq!(
        status, 403,
        "a publishable key never sees the signing secret"
    );

    let (status, v) = put_json(
        &app,
        "/api/checkout-settings",
        &m.sk,
        json!({"require_signature": true}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(v["require_signature"], true);
    assert_eq!(v["signing_secret"], secret.as_str());

    let payment = |order: &str, amount: &str, signature: Option<String>| {
        let mut p = json!({"order_id": order, "amount": amount, "currency": "EUR", "vouchers": [{"code": code}]});
        if let Some(s) = signature {
            p["signature"] = json!(s);
        }
        p
    };
    let (status, v) = pay_json(&app, &m.pk, payment("S1", "99.00", None), None).await;
    assert_eq!(status, 400);
    assert_eq!(v["error"]["code"], "signature_required");
    assert_eq!(v["error"]["param"], "signature");

    // Signed for 99.00, sent as 1.00: the page was altered.
    let signed = sign(&secret, "S1", "99.00", "EUR");
    let (status, v) = pay_json(
        &app,
        &m.pk,
        payment("S1", "1.00", Some(signed.clone())),
        None,
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(v["error"]["code"], "signature_invalid");
    let (status, v) = pay_json(
        &app,
        &m.pk,
        payment("S1", "99.00", Some(signed.to_uppercase())),
        None,
    )
    .await;
    assert_eq!(status, 201, "hex case does not matter: {v}");
    // "99" is the same amount as "99.00", so the same signature.
    let (status, _) = pay_json(
        &app,
        &m.pk,
        payment("S2", "99", Some(sign(&secret, "S2", "99.00", "EUR"))),
        None,
    )
    .await;
    assert_eq!(status, 201);

    // After a rotation the old secret's signatures are refused.
    let (_, v) = put_json(
        &app,
        "/api/checkout-settings",
        &m.sk,
        json!({"rotate_signing_secret": true}),
    )
    .await;
    let rotated = v["signing_secret"].as_str().unwrap().to_owned();
    assert_ne!(rotated, secret);
    let (status, _) = pay_json(
        &app,
        &m.pk,
        payment("S3", "5.00", Some(sign(&secret, "S3", "5.00", "EUR"))),
        None,
    )
    .await;
    assert_eq!(status, 400);
    let (status, _) = pay_json(
        &app,
        &m.pk,
        payment("S3", "5.00", Some(sign(&rotated, "S3", "5.00", "EUR"))),
        None,
    )
    .await;
    assert_eq!(status, 201);
}

#[tokio::test]
async fn a_wrong_signature_is_refused_even_where_none_is_required() {
    let app = TestApp::spawn().await;
    let m = app.create_merchant(250).await;
    let code = app.issue_one("50.00").await;
    let (status, v) = pay_json(
        &app,
        &m.pk,
        json!({"order_id": "W1", "amount": "5.00", "currency": "EUR",
               "vouchers": [{"code": code}], "signature": "00ff"}),
        None,
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(v["error"]["code"], "signature_invalid");
}

#[tokio::test]
async fn the_checkout_document_has_a_strict_csp_and_the_merchants_frame_ancestors() {
    let www = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(www.path().join("pkg")).unwrap();
    std::fs::write(
        www.path().join("checkout.html"),
        "<script type=\"module\" src=\"pkg/{{widget.mjs}}\"></script>",
    )
    .unwrap();
    std::fs::write(
        www.path().join("pkg/manifest.json"),
        r#"{"widget.mjs": "widget-abc.mjs", "widget.js": "widget-def.js"}"#,
    )
    .unwrap();
    std::fs::write(www.path().join("pkg/widget-def.js"), "/* loader */").unwrap();
    std::fs::write(www.path().join("pkg/widget-abc.mjs"), "export {}").unwrap();
    let www_dir = www.path().to_str().unwrap().to_owned();
    let app = TestApp::spawn_with(&[("WWW_DIR", www_dir.as_str())]).await;
    let m = app.create_merchant(250).await;

    let page = |key: String| {
        let app = &app;
        async move {
            app.client
                .get(app.url(&format!("/checkout.html?k={key}&a=1")))
                .send()
                .await
                .unwrap()
        }
    };
    let r = page(m.pk.clone()).await;
    assert_eq!(r.status(), 200);
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("script-src 'self' 'wasm-unsafe-eval'"),
        "{csp}"
    );
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert!(
        !csp.contains("frame-ancestors"),
        "nothing configured: {csp}"
    );
    assert_eq!(
        r.text().await.unwrap(),
        "<script type=\"module\" src=\"pkg/widget-abc.mjs\"></script>"
    );

    let (status, v) = put_json(
        &app,
        "/api/checkout-settings",
        &m.sk,
        json!({"allowed_origins": ["https://shop.example", "https://shop.example; script-src *"]}),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(v["error"]["param"], "allowed_origins[1]");
    let (status, v) = put_json(
        &app,
        "/api/checkout-settings",
        &m.sk,
        json!({"allowed_origins": ["https://Shop.example/", "https://*.shop.example"]}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        v["allowed_origins"],
        json!(["https://shop.example", "https://*.shop.example"])
    );
    let csp = page(m.pk.clone()).await.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("frame-ancestors https://shop.example https://*.shop.example"),
        "{csp}"
    );

    let loader = app.client.get(app.url("/widget.js")).send().await.unwrap();
    assert_eq!(loader.headers()["cache-control"], "public, max-age=300");
    assert_eq!(loader.text().await.unwrap(), "/* loader */");
    let asset = app
        .client
        .get(app.url("/pkg/widget-abc.mjs"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        asset.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );
}

#[tokio::test]
async fn a_page_the_merchant_did_not_allow_gets_a_notice_instead_of_the_checkout() {
    let www = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(www.path().join("pkg")).unwrap();
    std::fs::write(www.path().join("checkout.html"), "checkout {{widget.mjs}}").unwrap();
    std::fs::write(
        www.path().join("checkout-refused.html"),
        "notice {{refused.js}}",
    )
    .unwrap();
    std::fs::write(
        www.path().join("pkg/manifest.json"),
        r#"{"widget.mjs": "widget-abc.mjs", "refused.js": "refused-123.js"}"#,
    )
    .unwrap();
    let www_dir = www.path().to_str().unwrap().to_owned();
    let app = TestApp::spawn_with(&[("WWW_DIR", www_dir.as_str())]).await;
    let m = app.create_merchant(250).await;

    let page = |origin: &'static str| {
        let app = &app;
        let pk = m.pk.clone();
        async move {
            let r = app
                .client
                .get(app.url("/checkout.html"))
                .query(&[("k", pk.as_str()), ("a", "1"), ("p", origin)])
                .send()
                .await
                .unwrap();
            let csp = r.headers()["content-security-policy"]
                .to_str()
                .unwrap()
                .to_owned();
            (csp, r.text().await.unwrap())
        }
    };
    // Nothing configured: every page gets the checkout.
    let (_, document) = page("https://elsewhere.example").await;
    assert_eq!(document, "checkout widget-abc.mjs");

    let (status, _) = put_json(
        &app,
        "/api/checkout-settings",
        &m.sk,
        json!({"allowed_origins": ["https://shop.example", "https://*.brand.example"]}),
    )
    .await;
    assert_eq!(status, 200);
    for allowed in ["https://shop.example", "https://eu.brand.example"] {
        let (csp, document) = page(allowed).await;
        assert_eq!(document, "checkout widget-abc.mjs", "{allowed}");
        assert!(csp.contains("frame-ancestors https://shop.example https://*.brand.example"));
    }
    for refused in [
        "https://elsewhere.example",
        "http://shop.example",
        "https://brand.example",
    ] {
        let (csp, document) = page(refused).await;
        assert_eq!(document, "notice refused-123.js", "{refused}");
        // A notice without a form: any page may frame it, and it runs no Wasm.
        assert!(!csp.contains("frame-ancestors"), "{csp}");
        assert!(!csp.contains("wasm-unsafe-eval"), "{csp}");
        assert!(csp.contains("default-src 'none'"), "{csp}");
    }
    // An origin the server cannot judge gets the checkout; the browser has the last word.
    let (csp, document) = page("null").await;
    assert_eq!(document, "checkout widget-abc.mjs");
    assert!(csp.contains("frame-ancestors https://shop.example"));
}

#[tokio::test]
async fn a_server_started_from_another_folder_serves_the_widget_built_into_it() {
    let elsewhere = tempfile::tempdir().unwrap();
    let app = TestApp::spawn_in(elsewhere.path(), &[]).await;
    let www = crate::helpers::repo_root().join("www");
    let manifest: Option<serde_json::Value> = std::fs::read(www.join("pkg/manifest.json"))
        .ok()
        .map(|m| serde_json::from_slice(&m).unwrap());

    let r = app.client.get(app.url("/widget.js")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "public, max-age=300");
    assert_eq!(
        r.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
    let loader = match &manifest {
        Some(m) => www.join("pkg").join(m["widget.js"].as_str().unwrap()),
        None => www.join("widget.js"),
    };
    assert_eq!(
        r.bytes().await.unwrap(),
        std::fs::read(loader).unwrap(),
        "the loader as built"
    );

    let r = app
        .client
        .get(app.url("/checkout.css"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().contains_key("etag"));
    assert_eq!(
        r.bytes().await.unwrap(),
        std::fs::read(www.join("checkout.css")).unwrap()
    );

    let r = app
        .client
        .get(app.url("/checkout.html"))
        .send()
        .await
        .unwrap();
    match &manifest {
        Some(m) => {
            assert_eq!(r.status(), 200);
            let document = r.text().await.unwrap();
            let mjs = m["widget.mjs"].as_str().unwrap();
            assert!(document.contains(mjs), "{document}");
            let r = app
                .client
                .get(app.url(&format!("/pkg/{mjs}")))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            assert_eq!(
                r.headers()["cache-control"],
                "public, max-age=31536000, immutable"
            );
        }
        None => {
            // Built without the widget: it says so, and which files it has.
            assert_eq!(r.status(), 503);
            let message = r.text().await.unwrap();
            assert!(message.contains("scripts/build-widget"), "{message}");
            assert!(message.contains(&www.display().to_string()), "{message}");
        }
    }
}

#[tokio::test]
async fn a_widget_missing_from_www_dir_is_reported_with_the_folder_searched() {
    let empty = tempfile::tempdir().unwrap();
    let folder = empty.path().to_str().unwrap().to_owned();
    let app = TestApp::spawn_with(&[("WWW_DIR", folder.as_str())]).await;
    for path in ["/widget.js", "/checkout.html"] {
        let r = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 503, "{path}");
        let message = r.text().await.unwrap();
        assert!(message.contains("run scripts/build-widget"), "{message}");
        assert!(
            message.contains(&format!("{folder} (WWW_DIR)")),
            "{message}"
        );
    }
}
