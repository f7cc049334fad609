//! Secrets of the process: what production must set, what the embedded default generates
//! (and how it stores it), and the re-encryption of stored secrets under a new key.
use std::{
    path::Path,
    process::{Child, Command, Stdio},
    time::Duration,
};

use sea_orm::{ConnectionTrait, Statement};
use serde_json::{json, Value};
use superpayment_backend::{secret::Secret, webhooks::secrets::SecretCipher};

use crate::{
    helpers::{body, free_port, TestApp, ADMIN_TOKEN, ENCRYPTION_KEY, PEPPER, SIGNING_KEY},
    webhook_support::set_endpoint,
};

fn repo_root() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// `superpayment serve` on the embedded default in `dir`, with nothing configured.
struct EmbeddedServer {
    child: Child,
    address: String,
}

impl EmbeddedServer {
    async fn start(dir: &Path) -> EmbeddedServer {
        let port = free_port();
        let child = Command::new(env!("CARGO_BIN_EXE_superpayment"))
            .arg("serve")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("BIND", format!("127.0.0.1:{port}"))
            .env("DATA_DIR", dir)
            .env("WWW_DIR", repo_root().join("www"))
            .env("LOG_FORMAT", "json")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let server = EmbeddedServer {
            child,
            address: format!("http://127.0.0.1:{port}"),
        };
        let client = reqwest::Client::new();
        for _ in 0..1500 {
            if let Ok(r) = client
                .get(format!("{}/readyz", server.address))
                .send()
                .await
            {
                if r.status().is_success() {
                    return server;
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("the embedded server did not become ready");
    }
}

impl Drop for EmbeddedServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

#[cfg(unix)]
#[tokio::test]
async fn the_embedded_default_writes_its_generated_secrets_and_demo_keys_owner_only() {
    let dir = tempfile::tempdir().unwrap();
    let _server = EmbeddedServer::start(dir.path()).await;
    assert_eq!(mode(&dir.path().join("dev-secrets.env")), 0o600);
    assert_eq!(mode(&dir.path().join("demo.txt")), 0o600);
}

/// Runs `superpayment serve` with exactly `env` (plus PATH) and returns its exit status
/// and stderr; the configurations here are refused before anything is bound.
fn serve_refused(env: &[(&str, &str)]) -> String {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_superpayment"));
    cmd.arg("serve")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("BIND", format!("127.0.0.1:{}", free_port()))
        .stdout(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    assert!(
        !out.status.success(),
        "serve must refuse this configuration"
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A production configuration (the database itself is never reached).
const PRODUCTION: [(&str, &str); 3] = [
    (
        "DATABASE_URL",
        "postgres://postgres@127.0.0.1:1/unreachable",
    ),
    ("VOUCHER_PEPPER", PEPPER),
    ("ADMIN_TOKEN", ADMIN_TOKEN),
];

#[test]
fn serve_with_a_database_refuses_to_start_without_a_signing_key() {
    let err = serve_refused(&[&PRODUCTION[..], &[("ENCRYPTION_KEY", ENCRYPTION_KEY)]].concat());
    assert!(
        err.contains("SIGNING_KEY is required when DATABASE_URL is set"),
        "{err}"
    );
}

#[test]
fn serve_with_a_database_refuses_to_start_without_an_encryption_key() {
    let err = serve_refused(&[&PRODUCTION[..], &[("SIGNING_KEY", SIGNING_KEY)]].concat());
    assert!(
        err.contains("ENCRYPTION_KEY is required when DATABASE_URL is set"),
        "{err}"
    );
}

#[test]
fn serve_refuses_a_signing_key_that_is_the_pepper() {
    let err = serve_refused(
        &[
            &PRODUCTION[..],
            &[("SIGNING_KEY", PEPPER), ("ENCRYPTION_KEY", ENCRYPTION_KEY)],
        ]
        .concat(),
    );
    assert!(
        err.contains("SIGNING_KEY must differ from VOUCHER_PEPPER"),
        "{err}"
    );
}

#[tokio::test]
async fn dev_secrets_of_an_earlier_version_keep_their_pepper_and_gain_the_new_keys() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dev-secrets.env");
    let old = format!("# old\nADMIN_TOKEN={ADMIN_TOKEN}\nVOUCHER_PEPPER={PEPPER}\n");
    std::fs::write(&path, &old).unwrap();
    let server = EmbeddedServer::start(dir.path()).await;
    drop(server);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        text.starts_with(&old),
        "nothing already there changes: {text}"
    );
    let get = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}=")))
            .unwrap_or_else(|| panic!("{name} missing: {text}"))
            .to_owned()
    };
    assert_eq!(get("SIGNING_KEY").len(), 64);
    assert_ne!(get("SIGNING_KEY"), PEPPER);
    // The key earlier versions derived from the pepper, so webhook secrets they stored
    // stay readable.
    assert_eq!(
        get("ENCRYPTION_KEY"),
        *SecretCipher::derived_from(&Secret::new(PEPPER.to_owned()))
            .to_base64()
            .expose()
    );
    #[cfg(unix)]
    assert_eq!(mode(&path), 0o600);

    // A second start finds everything and appends nothing.
    drop(EmbeddedServer::start(dir.path()).await);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
}

async fn rows(app: &TestApp, sql: &str) -> Vec<sea_orm::QueryResult> {
    let db = app.db().await;
    let rows = db
        .query_all(Statement::from_string(
            db.get_database_backend(),
            sql.to_owned(),
        ))
        .await
        .unwrap();
    db.close().await.ok();
    rows
}

async fn endpoint_row(app: &TestApp, merchant_id: &str) -> (String, String) {
    let r = rows(
        app,
        &format!("SELECT id, secret_ciphertext FROM webhook_endpoints WHERE merchant_id = '{merchant_id}'"),
    )
    .await;
    (
        r[0].try_get("", "id").unwrap(),
        r[0].try_get("", "secret_ciphertext").unwrap(),
    )
}

async fn sealed_answer(app: &TestApp) -> String {
    let r = rows(
        app,
        "SELECT response_body FROM idempotency_keys WHERE key = 'refund-rk'",
    )
    .await;
    r[0].try_get("", "response_body").unwrap()
}

const LOOPBACK_ENDPOINTS: [(&str, &str); 1] = [("WEBHOOK_LOOPBACK_FOR_TESTS", "true")];

#[tokio::test]
async fn a_webhook_secret_copied_into_another_endpoint_does_not_open_there() {
    let app = TestApp::spawn_with(&LOOPBACK_ENDPOINTS).await;
    let a = app.create_merchant(250).await;
    let b = app.create_merchant(250).await;
    set_endpoint(&app, &a.sk, "http://127.0.0.1:9/a").await;
    set_endpoint(&app, &b.sk, "http://127.0.0.1:9/b").await;
    let (_, a_secret) = endpoint_row(&app, &a.id).await;
    assert!(a_secret.starts_with("v2:"), "{a_secret}");
    let db = app.db().await;
    db.execute(Statement::from_string(
        db.get_database_backend(),
        format!(
            "UPDATE webhook_endpoints SET secret_ciphertext = '{a_secret}' WHERE merchant_id = '{}'",
            b.id
        ),
    ))
    .await
    .unwrap();
    db.close().await.ok();
    // Setting the URL again shows the endpoint's secret: B's row must not yield A's.
    let r = app
        .client
        .put(app.url("/api/webhook-endpoint"))
        .bearer_auth(&b.sk)
        .json(&json!({"url": "http://127.0.0.1:9/b"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 500);
    let v: Value = r.json().await.unwrap();
    assert!(v.get("secret").is_none(), "{v}");
}

#[tokio::test]
async fn reencrypt_moves_webhook_secrets_and_sealed_refund_answers_to_the_new_key() {
    let app = TestApp::spawn_with(&LOOPBACK_ENDPOINTS).await;
    let m = app.create_merchant(250).await;
    let endpoint = set_endpoint(&app, &m.sk, "http://127.0.0.1:9/hook").await;
    let whsec = endpoint["secret"].as_str().unwrap().to_owned();
    let code = app.issue_one("50.00").await;
    let r = app.pay(&m.pk, "ORDER_RK", "20.00", &[&code], None).await;
    assert_eq!(r.status(), 201);
    let txn = body(r).await["id"].as_str().unwrap().to_owned();
    let r = app
        .post(
            &format!("/api/transactions/{txn}/refunds"),
            &m.sk,
            &json!({"amount": "5.00"}),
            Some("refund-rk"),
        )
        .await;
    assert_eq!(r.status(), 201);
    let receipt = body(r).await;
    let answer_before = sealed_answer(&app).await;

    let new_key = "bmV3LWVuY3J5cHRpb24ta2V5LTAxMjM0NTY3ODlhYmM=";
    let (ok, out) = app.cli_with(
        &["admin", "reencrypt"],
        &[
            ("ENCRYPTION_KEY", new_key),
            ("OLD_ENCRYPTION_KEY", ENCRYPTION_KEY),
        ],
    );
    assert!(ok, "{out}");
    let expected_sealed = if superpayment_backend::webhooks::secrets::is_sealed(&answer_before) {
        2
    } else {
        1
    };
    assert!(
        out.contains(&format!("reencrypted={expected_sealed}\n")),
        "{out}"
    );
    assert!(out.contains("unreadable=0"), "{out}");

    let (id, stored) = endpoint_row(&app, &m.id).await;
    let old = SecretCipher::from_base64(ENCRYPTION_KEY).unwrap();
    let new = SecretCipher::from_base64(new_key).unwrap();
    assert_eq!(new.decrypt(&stored, &id).unwrap().expose(), whsec);
    assert!(old.decrypt(&stored, &id).is_err());
    if expected_sealed == 2 {
        let answer = sealed_answer(&app).await;
        let aad = superpayment_backend::webhooks::secrets::idempotency_body_aad(
            &m.id,
            "test",
            "refund",
            "refund-rk",
        );
        let plain = new.open_text_bound(&answer, &aad).unwrap();
        assert_eq!(
            serde_json::from_str::<Value>(&plain).unwrap()["id"],
            receipt["id"]
        );
        assert!(old.open_text_bound(&answer, &aad).is_err());
    }

    // Running it again finds everything under the current key and changes nothing.
    let (ok, again) = app.cli_with(
        &["admin", "reencrypt", "--old-key", ENCRYPTION_KEY],
        &[("ENCRYPTION_KEY", new_key)],
    );
    assert!(ok, "{again}");
    assert!(again.contains("reencrypted=0\n"), "{again}");
    assert!(
        again.contains(&format!("already_current={expected_sealed}\n")),
        "{again}"
    );
    assert_eq!(endpoint_row(&app, &m.id).await.1, stored);
}

#[test]
fn serve_with_a_database_refuses_loopback_webhooks_meant_for_the_embedded_default() {
    let err = serve_refused(
        &[
            &PRODUCTION[..],
            &[
                ("SIGNING_KEY", SIGNING_KEY),
                ("ENCRYPTION_KEY", ENCRYPTION_KEY),
                ("WEBHOOK_TEST_ALLOW_LOOPBACK", "true"),
            ],
        ]
        .concat(),
    );
    assert!(
        err.contains("WEBHOOK_TEST_ALLOW_LOOPBACK is for the embedded default only"),
        "{err}"
    );
}
