//! The committed spec is the contract: it must match what the code generates.
use crate::helpers::TestApp;

#[tokio::test]
async fn the_committed_spec_matches_the_one_served_without_public_url() {
    let app = TestApp::spawn().await;
    let served = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let committed = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../openapi/openapi.json"
    ))
    .unwrap();
    assert!(
        served == committed,
        "openapi/openapi.json is stale: run `cargo run -p superpayment-backend -- openapi --out openapi/openapi.json`"
    );
}

#[tokio::test]
async fn every_operation_documents_its_errors_with_the_one_schema_and_examples() {
    let committed = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../openapi/openapi.json"
    ))
    .unwrap();
    let doc: serde_json::Value = serde_json::from_str(&committed).unwrap();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            // The probes at the root answer in their own shape, documented as such.
            if method == "servers" || op["tags"] == serde_json::json!(["Operations"]) {
                continue;
            }
            let responses = op["responses"].as_object().unwrap();
            assert!(responses.contains_key("500"), "{method} {path} lacks 500");
            for (status, resp) in responses {
                if status.starts_with('4') || status.starts_with('5') {
                    let media = resp["content"]
                        .as_object()
                        .unwrap()
                        .values()
                        .next()
                        .unwrap();
                    assert_eq!(
                        media["schema"]["$ref"], "#/components/schemas/ErrorBody",
                        "{method} {path} {status}"
                    );
                    assert!(
                        media["examples"].as_object().is_some_and(|e| !e.is_empty()),
                        "{method} {path} {status} lacks examples"
                    );
                }
            }
        }
    }
}

#[tokio::test]
async fn the_seed_urls_with_and_without_trailing_slash_are_served() {
    let app = TestApp::spawn().await;
    for path in [
        "/api/process-payment/",
        "/api/process-payment",
        "/api/verify-transaction/",
        "/api/verify-transaction",
    ] {
        let r = app
            .client
            .post(app.url(path))
            .json(&serde_json::json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{path}");
    }
    let r = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = app.client.get(app.url("/docs/")).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn the_probes_are_in_the_spec_and_answer_as_documented() {
    let app = TestApp::spawn().await;
    let doc = app.served_spec().await;
    for path in ["/healthz", "/readyz"] {
        assert_eq!(doc["paths"][path]["servers"][0]["url"], "/", "{path}");
        assert!(doc["paths"][path]["get"]["responses"]["200"].is_object());
    }
    let r = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "ok");
    let r = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    let schema = &doc["paths"]["/readyz"]["get"]["responses"]["200"]["content"]["application/json"]
        ["schema"];
    for key in schema["required"].as_array().unwrap() {
        assert!(v.get(key.as_str().unwrap()).is_some(), "{v} lacks {key}");
    }
    assert_eq!(v["status"], "ready");
}

#[tokio::test]
async fn the_served_spec_names_public_url_as_its_server() {
    let app = TestApp::spawn_with(&[("PUBLIC_URL", "https://pay.example/")]).await;
    let doc = app.served_spec().await;
    assert_eq!(
        doc["servers"],
        serde_json::json!([{"url": "https://pay.example/api"}])
    );
    for path in ["/healthz", "/readyz"] {
        assert_eq!(
            doc["paths"][path]["servers"],
            serde_json::json!([{"url": "https://pay.example/"}]),
            "{path}"
        );
    }
    // Only the servers differ from the committed contract.
    let mut committed: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../openapi/openapi.json"
        ))
        .unwrap(),
    )
    .unwrap();
    committed["servers"] = doc["servers"].clone();
    for path in ["/healthz", "/readyz"] {
        committed["paths"][path]["servers"] = doc["paths"][path]["servers"].clone();
    }
    assert!(
        committed == doc,
        "the served spec differs beyond its servers"
    );
}

#[tokio::test]
async fn a_method_the_path_does_not_accept_is_405_with_allow_and_what_to_send() {
    let app = TestApp::spawn().await;
    for (path, allow) in [
        ("/api/process-payment/", "POST"),
        ("/api/transactions/txn_0/refunds", "POST"),
        ("/api/webhook-endpoint", "GET, HEAD, PUT"),
    ] {
        let r = app
            .client
            .delete(app.url(path))
            .bearer_auth("sk_test_x")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 405, "{path}");
        assert_eq!(r.headers()["allow"], allow, "{path}");
        let v: serde_json::Value = r.json().await.unwrap();
        assert_eq!(v["error"]["type"], "invalid_request_error");
        assert_eq!(v["error"]["code"], "method_not_allowed");
        let message = v["error"]["message"].as_str().unwrap();
        assert!(
            message.contains(&format!("this path accepts {allow}")),
            "{message}"
        );
        assert!(v["error"]["request_id"].is_string());
    }
}

#[tokio::test]
async fn a_path_with_an_empty_segment_or_no_endpoint_is_404_saying_what_is_wrong() {
    let app = TestApp::spawn().await;
    let m = app.create_merchant(250).await;
    // The transaction id is missing: never read as another path (nor as a 405 of one).
    let r = app
        .post(
            "/api/transactions//refunds",
            &m.sk,
            &serde_json::json!({}),
            None,
        )
        .await;
    assert_eq!(r.status(), 404);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "resource_missing");
    let message = v["error"]["message"].as_str().unwrap();
    assert!(message.contains("empty path segment"), "{message}");
    assert!(message.contains("/api/transactions//refunds"), "{message}");

    // A base URL ending in a slash joined to a path starting with one.
    let r = app
        .client
        .get(format!("{}//api/transactions", app.address))
        .bearer_auth(&m.sk)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "resource_missing");
    assert!(v["error"]["request_id"].is_string());
    let message = v["error"]["message"].as_str().unwrap();
    assert!(message.contains("`GET //api/transactions`"), "{message}");

    let r = app
        .client
        .get(app.url("/api/transactions//"))
        .bearer_auth(&m.sk)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "trailing slashes are still ignored");

    let r = app
        .post("/api/refunds", &m.sk, &serde_json::json!({}), None)
        .await;
    assert_eq!(r.status(), 404);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "resource_missing");
    let message = v["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("No endpoint `POST /api/refunds`"),
        "{message}"
    );
}

/// The request examples of the spec, sent as they stand by a test merchant: each gets a
/// documented success (Swagger's "Try it out" works), in the order a shop would make the
/// calls (the payment first: its transaction is what the others refer to).
#[tokio::test]
async fn every_request_example_in_the_spec_is_answered_with_a_documented_success() {
    let app = TestApp::spawn().await;
    let merchant = app.create_merchant(250).await;
    let doc = app.served_spec().await;
    let schemas = &doc["components"]["schemas"];
    let mut calls = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let Some(schema) = op["requestBody"]["content"]
                .as_object()
                .and_then(|c| c.values().next())
                .and_then(|media| media["schema"]["$ref"].as_str())
                .and_then(|r| r.strip_prefix("#/components/schemas/"))
            else {
                continue;
            };
            if let Some(example) = schemas[schema].get("example") {
                calls.push((path.clone(), method.clone(), op.clone(), example.clone()));
            }
        }
    }
    // Pay first, refund last (a refund would make the example verify answer a mismatch).
    calls.sort_by_key(|(_, _, op, _)| match op["operationId"].as_str() {
        Some("processPayment") => 0,
        Some("createRefund") => 2,
        _ => 1,
    });
    assert!(
        calls.len() >= 4,
        "the spec should carry request examples for payment, verify, check and refund"
    );
    assert_eq!(calls[0].2["operationId"], "processPayment");
    let mut transaction_id = String::new();
    for (path, method, op, example) in calls {
        let scheme = op["security"][0]
            .as_object()
            .unwrap()
            .keys()
            .next()
            .unwrap()
            .clone();
        let key = match scheme.as_str() {
            "PublishableKey" => merchant.pk.clone(),
            "SecretKey" => merchant.sk.clone(),
            "AdminToken" => crate::helpers::ADMIN_TOKEN.to_owned(),
            other => panic!("unknown security scheme {other}"),
        };
        let url = app.url(&format!("/api{}", path.replace("{id}", &transaction_id)));
        let r = app
            .client
            .request(method.to_uppercase().parse().unwrap(), url)
            .bearer_auth(key)
            .header("Idempotency-Key", uuid::Uuid::new_v4().to_string())
            .json(&example)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16().to_string();
        let body: serde_json::Value = r.json().await.unwrap();
        assert!(
            status.starts_with('2') && op["responses"].get(&status).is_some(),
            "{method} {path} with its example answered {status}: {body}"
        );
        match op["operationId"].as_str().unwrap() {
            "processPayment" => transaction_id = body["id"].as_str().unwrap().to_owned(),
            "verifyTransaction" => assert_eq!(body["verified"], true, "{body}"),
            "checkVoucher" => assert_eq!(body["valid"], true, "{body}"),
            _ => {}
        }
    }
}
