//! The committed spec is the contract: it must match what the code generates.
use crate::helpers::TestApp;

#[tokio::test]
async fn the_committed_spec_matches_the_served_one() {
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
    let doc: serde_json::Value = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
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
