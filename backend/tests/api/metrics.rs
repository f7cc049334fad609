//! `/metrics`: Prometheus text read by a real parser after a payment, a decline and a
//! webhook delivery; served only on METRICS_BIND, behind METRICS_TOKEN when set.
use prometheus_parse::{Sample, Scrape, Value};
use serde_json::json;

use crate::{
    helpers::{body, free_port, TestApp},
    webhook_support::{get, set_endpoint, wait_for_event, Receiver, FAST_WORKER_ENV},
};

pub const TOKEN: &str = "metrics-token-0123456789";

/// GETs `/metrics` on `port` with the token and parses it.
pub async fn scrape(client: &reqwest::Client, port: u16) -> (String, Scrape) {
    let r = client
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let text = r.text().await.unwrap();
    let parsed = Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).expect("Prometheus text");
    (text, parsed)
}

/// The value of the one sample of `metric` with exactly these labels among others.
pub fn value(scrape: &Scrape, metric: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let found: Vec<&Sample> = scrape
        .samples
        .iter()
        .filter(|s| s.metric == metric && labels.iter().all(|(k, v)| s.labels.get(k) == Some(v)))
        .collect();
    match found.as_slice() {
        [] => None,
        [one] => match &one.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => Some(*v),
            Value::Histogram(buckets) => buckets
                .iter()
                .find(|b| b.less_than.is_infinite())
                .map(|b| b.count),
            Value::Summary(_) => None,
        },
        many => panic!("{} samples of {metric} match {labels:?}", many.len()),
    }
}

#[tokio::test]
async fn metrics_count_requests_payments_declines_and_deliveries_with_bounded_labels() {
    let port = free_port();
    let bind = format!("127.0.0.1:{port}");
    let mut env = FAST_WORKER_ENV.to_vec();
    env.push(("METRICS_BIND", &bind));
    env.push(("METRICS_TOKEN", TOKEN));
    let app = TestApp::spawn_with(&env).await;
    let m = app.create_merchant(250).await;
    let receiver = Receiver::start().await;
    set_endpoint(&app, &m.sk, &receiver.url).await;

    let code = app.issue_one("20.00").await;
    let paid = app.pay(&m.pk, "ORDER_OK", "15.00", &[&code], None).await;
    assert_eq!(paid.status(), 201);
    let txn = body(paid).await["id"].as_str().unwrap().to_owned();
    let declined = app.pay(&m.pk, "ORDER_NO", "15.00", &[&code], None).await;
    assert_eq!(declined.status(), 402);
    assert_eq!(
        body(declined).await["error"]["code"],
        "insufficient_balance"
    );
    let (status, _) = get(&app, &format!("/api/transactions/{txn}"), &m.sk).await;
    assert_eq!(status, 200);

    let (_, events) = get(&app, "/api/events?type=payment.succeeded", &m.sk).await;
    let event_id = events["data"][0]["id"].as_str().unwrap().to_owned();
    wait_for_event(&app, &m.sk, &event_id, "the delivery", |e| {
        e["deliveries"][0]["status"] == "succeeded"
    })
    .await;

    // Not on the API port, and not without the token.
    let on_api = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(on_api.status(), 404);
    let anonymous = app
        .client
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);

    let (text, s) = scrape(&app.client, port).await;
    let payments = "superpayment_payments_total";
    assert_eq!(
        value(
            &s,
            payments,
            &[
                ("mode", "test"),
                ("outcome", "succeeded"),
                ("reason", "none")
            ]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &s,
            payments,
            &[
                ("mode", "test"),
                ("outcome", "declined"),
                ("reason", "insufficient_balance")
            ]
        ),
        Some(1.0)
    );
    let requests = "superpayment_http_requests_total";
    assert_eq!(
        value(
            &s,
            requests,
            &[
                ("route", "processPayment"),
                ("method", "POST"),
                ("status", "201")
            ]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &s,
            requests,
            &[
                ("route", "processPayment"),
                ("method", "POST"),
                ("status", "402")
            ]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &s,
            requests,
            &[
                ("route", "getTransaction"),
                ("method", "GET"),
                ("status", "200")
            ]
        ),
        Some(1.0)
    );
    // The API port's 404 for /metrics is counted under a template, never its path.
    assert_eq!(
        value(
            &s,
            requests,
            &[("route", "/*"), ("method", "GET"), ("status", "404")]
        ),
        Some(1.0)
    );
    assert!(
        value(
            &s,
            requests,
            &[("route", "/readyz"), ("method", "GET"), ("status", "200")]
        )
        .is_some_and(|n| n >= 1.0),
        "the harness's readiness polls are counted"
    );
    assert_eq!(
        value(
            &s,
            "superpayment_http_request_duration_seconds",
            &[("route", "processPayment"), ("method", "POST")]
        ),
        Some(2.0),
        "both payment answers are in the latency histogram"
    );
    assert_eq!(
        value(
            &s,
            "superpayment_webhook_attempts_total",
            &[("outcome", "succeeded")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &s,
            "superpayment_webhook_attempt_duration_seconds",
            &[("outcome", "succeeded")]
        ),
        Some(1.0)
    );
    for state in ["undispatched", "due"] {
        assert_eq!(
            value(&s, "superpayment_webhook_queue_depth", &[("state", state)]),
            Some(0.0),
            "{state}"
        );
    }
    assert_eq!(
        value(&s, "superpayment_webhook_queue_oldest_age_seconds", &[]),
        Some(0.0)
    );
    let in_use = value(
        &s,
        "superpayment_db_pool_connections",
        &[("pool", "primary"), ("state", "in_use")],
    );
    let idle = value(
        &s,
        "superpayment_db_pool_connections",
        &[("pool", "primary"), ("state", "idle")],
    );
    // The pool holds at least the connection that served this test's requests; whether
    // it is idle at the scrape depends on what the embedded worker is doing at that moment.
    assert!(
        matches!((in_use, idle), (Some(u), Some(i)) if u + i >= 1.0),
        "pool gauges: {in_use:?} {idle:?}"
    );
    assert!(s.docs.contains_key("superpayment_payments_total"));

    // Bounded labels: no route is a raw path, and nothing secret reaches the exposition.
    for sample in s.samples.iter().filter(|x| x.metric == requests) {
        let route = sample.labels.get("route").unwrap();
        assert!(
            !route.contains("txn_") && !route.contains("/api/"),
            "raw path as a label: {route}"
        );
    }
    for secret in [code.as_str(), &code.replace('-', ""), &m.sk, &m.pk, &txn] {
        assert!(!text.contains(secret), "{secret} leaked into /metrics");
    }
}

#[tokio::test]
async fn rate_limit_rejections_are_counted_by_limit() {
    let port = free_port();
    let bind = format!("127.0.0.1:{port}");
    let app = TestApp::spawn_with(&[
        ("CHECK_RATE_LIMIT", "1"),
        ("METRICS_BIND", &bind),
        ("METRICS_TOKEN", TOKEN),
    ])
    .await;
    let m = app.create_merchant(250).await;
    let code = app.issue_one("5.00").await;
    let check = json!({"code": code});
    let first = app.post("/api/vouchers/check", &m.pk, &check, None).await;
    assert_eq!(first.status(), 200);
    let second = app.post("/api/vouchers/check", &m.pk, &check, None).await;
    assert_eq!(second.status(), 429);
    let (_, s) = scrape(&app.client, port).await;
    assert_eq!(
        value(
            &s,
            "superpayment_rate_limit_rejections_total",
            &[("limit", "voucher_check"), ("route", "checkVoucher")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &s,
            "superpayment_http_requests_total",
            &[("route", "checkVoucher"), ("status", "429")]
        ),
        Some(1.0)
    );
}

#[tokio::test]
async fn every_log_line_of_a_request_carries_its_request_id() {
    let app = TestApp::spawn().await;
    let m = app.create_merchant(250).await;
    let code = app.issue_one("20.00").await;
    let request_id = "req-log-lines-0123456789";
    let r = app
        .client
        .post(app.url("/api/process-payment/"))
        .bearer_auth(&m.pk)
        .header("x-request-id", request_id)
        .json(
            &json!({"order_id": "ORDER_LOG", "amount": "5.00", "currency": "EUR",
                      "vouchers": [{"code": code}]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(r.headers()["x-request-id"], request_id);

    let lines: Vec<serde_json::Value> = app
        .logs()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .filter(|l: &serde_json::Value| l.to_string().contains(request_id))
        .collect();
    let messages: Vec<&str> = lines
        .iter()
        .map(|l| l["message"].as_str().unwrap_or(""))
        .collect();
    // One line from inside the payment's own span, one closing the request.
    assert!(messages.contains(&"payment succeeded"), "{messages:?}");
    assert!(messages.contains(&"request served"), "{messages:?}");
    for line in &lines {
        assert_eq!(
            line["spans"][0]["name"], "request",
            "the request span comes first: {line}"
        );
        assert_eq!(line["spans"][0]["request_id"], request_id, "{line}");
    }
    // Every line logged inside a domain function's span is inside a request's span too.
    for line in app
        .logs()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
    {
        if line["spans"]
            .as_array()
            .is_some_and(|s| s.iter().any(|s| s["name"] == "pay"))
        {
            assert!(line["spans"][0]["request_id"].is_string(), "{line}");
        }
    }
}
