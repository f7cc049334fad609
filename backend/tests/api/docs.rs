//! docs/integration.md: every snippet marked `<!-- test: NAME -->` runs here, unchanged,
//! against a live server (curl and openssl, Node, Python with the official libraries).
use std::{
    path::{Path, PathBuf},
    process::Stdio,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::{
    helpers::{body, Merchant, TestApp},
    webhook_support::{test_deps, unused_port, Receiver, FAST_WORKER_ENV},
};

fn doc() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/integration.md"))
        .unwrap()
}

/// The fenced block right after `<!-- test: NAME -->`.
fn snippet(name: &str) -> String {
    let doc = doc();
    let marker = format!("<!-- test: {name} -->");
    let start = doc
        .find(&marker)
        .unwrap_or_else(|| panic!("no snippet {name}"));
    let rest = &doc[start + marker.len()..];
    let fence = rest.find("```").unwrap();
    let code_start = fence + rest[fence..].find('\n').unwrap() + 1;
    let code_end = code_start + rest[code_start..].find("\n```").unwrap();
    rest[code_start..code_end].to_owned() + "\n"
}

#[test]
fn every_tested_snippet_is_run_by_this_module() {
    let run_here = include_str!("docs.rs");
    for line in doc().lines() {
        if let Some(name) = line
            .strip_prefix("<!-- test: ")
            .and_then(|l| l.strip_suffix(" -->"))
        {
            assert!(
                run_here.contains(&format!("\"{name}\"")),
                "snippet {name} is marked as tested but no test runs it"
            );
        }
    }
}

/// Writes a snippet to a file in `dir` and returns its path.
fn write(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name.replace(".js", ".cjs"));
    std::fs::write(&path, snippet(name)).unwrap();
    path
}

fn interpreter(name: &str, deps: &std::collections::HashMap<String, String>) -> String {
    if name.ends_with(".py") {
        deps["PYTHON"].clone()
    } else if name.ends_with(".js") {
        "node".into()
    } else {
        "bash".into()
    }
}

/// Runs a snippet to completion; returns (success, stdout, stderr).
async fn run(name: &str, env: &[(&str, &str)], args: &[&str]) -> (bool, String, String) {
    let deps = test_deps().await;
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), name);
    let mut cmd = tokio::process::Command::new(interpreter(name, deps));
    cmd.arg(&file)
        .args(args)
        .current_dir(dir.path())
        .env("NODE_PATH", &deps["NODE_PATH"])
        .kill_on_drop(true);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = tokio::time::timeout(Duration::from_secs(60), cmd.output())
        .await
        .expect("snippet finished")
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn pay(app: &TestApp, m: &Merchant, order: &str, amount: &str) -> String {
    let r = app
        .pay(&m.pk, order, amount, &["TEST-4242-4242-424X"], None)
        .await;
    assert_eq!(r.status(), 201);
    body(r).await["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn the_verify_transaction_snippets_accept_a_matching_payment_and_refuse_another() {
    let app = TestApp::spawn().await;
    let m = app.create_merchant(250).await;
    let good = pay(&app, &m, "ORDER_99", "99.00").await;
    let other = pay(&app, &m, "ORDER_50", "50.00").await;
    let same_amount = pay(&app, &m, "ORDER_77", "99.00").await;
    fn env<'a>(
        app: &'a TestApp,
        m: &'a Merchant,
        txn: &'a str,
        order: &'a str,
    ) -> [(&'static str, &'a str); 4] {
        [
            ("SUPERPAYMENT_API", app.address.as_str()),
            ("SUPERPAYMENT_SECRET_KEY", m.sk.as_str()),
            ("TRANSACTION_ID", txn),
            ("ORDER_ID", order),
        ]
    }
    for name in [
        "verify-transaction.sh",
        "verify-transaction.js",
        "verify_transaction.py",
    ] {
        let ok_env = env(&app, &m, &good, "ORDER_99");
        let (ok, out, err) = run(name, &ok_env, &[]).await;
        assert!(ok, "{name} refused a matching payment: {out} {err}");
        if !name.ends_with(".sh") {
            assert!(
                out.contains(&format!("verified {good} 99.00 EUR")),
                "{name}: {out}"
            );
        }
        let bad_env = env(&app, &m, &other, "ORDER_50");
        let (ok, out, err) = run(name, &bad_env, &[]).await;
        assert!(!ok, "{name} accepted a 50.00 payment for 99.00: {out}");
        if !name.ends_with(".sh") {
            assert!(err.contains("mismatches: amount"), "{name}: {err}");
        }
        // The same amount paid for ANOTHER order never verifies this one.
        let foreign_env = env(&app, &m, &same_amount, "ORDER_99");
        let (ok, out, err) = run(name, &foreign_env, &[]).await;
        assert!(!ok, "{name} accepted another order's payment: {out}");
        if !name.ends_with(".sh") {
            assert!(err.contains("mismatches: order_id"), "{name}: {err}");
        }
    }
}

/// A snippet running in the background, its stdout collected line by line.
struct Running {
    lines: Arc<Mutex<Vec<String>>>,
    _child: tokio::process::Child,
}

impl Running {
    async fn start(name: &str, env: &[(&str, &str)], dir: &Path) -> Running {
        let deps = test_deps().await;
        let file = write(dir, name);
        let mut cmd = tokio::process::Command::new(interpreter(name, deps));
        cmd.arg(&file)
            .current_dir(dir)
            .env("NODE_PATH", &deps["NODE_PATH"])
            .stdout(Stdio::piped())
            .kill_on_drop(true);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        tokio::spawn(async move {
            let mut reader = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                sink.lock().unwrap().push(line);
            }
        });
        Running {
            lines,
            _child: child,
        }
    }

    async fn wait_line(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(l) = self.lines.lock().unwrap().iter().find(|l| pred(l)) {
                return l.clone();
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; output: {:?}",
                self.lines.lock().unwrap()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

#[tokio::test]
async fn the_node_and_python_receivers_verify_real_webhooks_and_refuse_forged_ones() {
    let app = TestApp::spawn_with(&FAST_WORKER_ENV).await;
    let m = app.create_merchant(250).await;
    for (i, receiver) in ["webhook-receiver.js", "webhook_receiver.py"]
        .iter()
        .enumerate()
    {
        let dir = tempfile::tempdir().unwrap();
        let port = unused_port();
        let url = format!("http://127.0.0.1:{port}/webhooks");
        let api_env = [
            ("SUPERPAYMENT_API", app.address.as_str()),
            ("SUPERPAYMENT_SECRET_KEY", m.sk.as_str()),
            ("WEBHOOK_URL", url.as_str()),
        ];
        let (ok, secret, err) = run("set-webhook-endpoint.sh", &api_env, &[]).await;
        assert!(ok, "set-webhook-endpoint.sh: {err}");
        let secret = secret.trim().to_owned();
        assert!(secret.starts_with("whsec_"));

        let port_s = port.to_string();
        let running = Running::start(
            receiver,
            &[
                ("SUPERPAYMENT_WEBHOOK_SECRET", secret.as_str()),
                ("PORT", port_s.as_str()),
            ],
            dir.path(),
        )
        .await;
        running
            .wait_line("the receiver to listen", |l| l.starts_with("listening on"))
            .await;

        let order = format!("DOCS_{i}");
        let txn = pay(&app, &m, &order, "99.00").await;
        running
            .wait_line("the payment", |l| {
                l == format!("paid {order} {txn} 99.00 EUR")
            })
            .await;

        let refund_env = [
            ("SUPERPAYMENT_API", app.address.as_str()),
            ("SUPERPAYMENT_SECRET_KEY", m.sk.as_str()),
            ("TRANSACTION_ID", txn.as_str()),
        ];
        let (ok, out, err) = run("refund.sh", &refund_env, &[]).await;
        assert!(ok, "refund.sh: {out} {err}");
        running
            .wait_line("the refund", |l| {
                l.starts_with("refunded re_") && l.ends_with(" 10.00 partially_refunded")
            })
            .await;

        // A forged message and a replay with a changed body are refused.
        let forged = app
            .client
            .post(&url)
            .header("webhook-id", "evt_forged")
            .header(
                "webhook-timestamp",
                time::OffsetDateTime::now_utc().unix_timestamp().to_string(),
            )
            .header(
                "webhook-signature",
                "v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
            )
            .json(&json!({"id": "evt_forged", "type": "payment.succeeded"}))
            .send()
            .await
            .unwrap();
        assert_eq!(forged.status(), 400, "{receiver}");
    }
}

#[tokio::test]
async fn the_shell_snippet_verifies_a_captured_webhook_and_refuses_a_tampered_one() {
    let app = TestApp::spawn_with(&FAST_WORKER_ENV).await;
    let m = app.create_merchant(250).await;
    let receiver = Receiver::start().await;
    let secret = crate::webhook_support::set_endpoint(&app, &m.sk, &receiver.url).await["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    pay(&app, &m, "SHELL_1", "12.34").await;
    let hit = receiver
        .wait_for("the webhook", |h| !h.is_empty())
        .await
        .remove(0);
    let dir = tempfile::tempdir().unwrap();
    let body_file = dir.path().join("body.json");
    let tampered_file = dir.path().join("tampered.json");
    std::fs::write(&body_file, &hit.body).unwrap();
    std::fs::write(&tampered_file, hit.body.replace("12.34", "1.34")).unwrap();
    let env = [("SUPERPAYMENT_WEBHOOK_SECRET", secret.as_str())];
    let args = |file: &Path| {
        vec![
            hit.headers["webhook-id"].clone(),
            hit.headers["webhook-timestamp"].clone(),
            hit.headers["webhook-signature"].clone(),
            file.display().to_string(),
        ]
    };
    let good = args(&body_file);
    let good: Vec<&str> = good.iter().map(String::as_str).collect();
    let (ok, out, err) = run("verify-webhook.sh", &env, &good).await;
    assert!(ok, "{out} {err}");
    assert_eq!(out.trim(), "authentic");
    let bad = args(&tampered_file);
    let bad: Vec<&str> = bad.iter().map(String::as_str).collect();
    let (ok, _, err) = run("verify-webhook.sh", &env, &bad).await;
    assert!(!ok);
    assert!(err.contains("no matching signature"));
}

#[tokio::test]
async fn the_capture_and_cancel_snippets_end_holds() {
    let app = TestApp::spawn().await;
    let m = app.create_merchant(250).await;
    let authorize = |order: &'static str| {
        let (app, m) = (&app, &m);
        async move {
            let r = app
                .post(
                    "/api/process-payment/",
                    &m.pk,
                    &json!({"order_id": order, "amount": "99.00", "currency": "EUR",
                            "vouchers": [{"code": "TEST-4242-4242-424X"}], "capture": false}),
                    None,
                )
                .await;
            assert_eq!(r.status(), 201);
            let v = body(r).await;
            assert_eq!(v["status"], "authorized");
            v["id"].as_str().unwrap().to_owned()
        }
    };
    for (name, order, status) in [
        ("capture.sh", "DOCS_CAPTURE", "captured"),
        ("cancel.sh", "DOCS_CANCEL", "canceled"),
    ] {
        let txn = authorize(order).await;
        let env = [
            ("SUPERPAYMENT_API", app.address.as_str()),
            ("SUPERPAYMENT_SECRET_KEY", m.sk.as_str()),
            ("TRANSACTION_ID", txn.as_str()),
        ];
        let (ok, out, err) = run(name, &env, &[]).await;
        assert!(ok, "{name}: {out} {err}");
        let r = app
            .client
            .get(app.url(&format!("/api/transactions/{txn}")))
            .bearer_auth(&m.sk)
            .send()
            .await
            .unwrap();
        assert_eq!(body(r).await["status"], status, "{name}");
        // Run again: the hold has ended, so the snippet's check fails.
        let (ok, _, _) = run(name, &env, &[]).await;
        assert!(!ok, "{name} succeeded twice");
    }
}
