//! Test harness: the real `superpayment` binary on a fresh database per test, over real HTTP.
//!
//! PostgreSQL (default): every test gets `CREATE DATABASE ... TEMPLATE` of a template that
//! is migrated once per migrations content, plus its own Redis key prefix. With
//! `SUPERPAYMENT_TEST_BACKEND=sqlite` the same tests run on the embedded default (a SQLite
//! file in a temporary directory, in-process locks).
use std::{
    io::Read,
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

use reqwest::{Client, Response};
use sea_orm::{ConnectionTrait, Database, Statement};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::sync::OnceCell;

pub const ADMIN_TOKEN: &str = "admin_test_token_0123456789abcdef";
pub const PEPPER: &str = "test-pepper-0123456789abcdef";
pub const SIGNING_KEY: &str = "test-signing-key-0123456789abcdef";
/// Base64 of 32 bytes (ENCRYPTION_KEY).
pub const ENCRYPTION_KEY: &str = "dGVzdC1lbmNyeXB0aW9uLWtleS0wMTIzNDU2Nzg5YWI=";

/// Which database the suite runs on.
pub fn backend() -> String {
    std::env::var("SUPERPAYMENT_TEST_BACKEND").unwrap_or_else(|_| "postgres".into())
}

pub fn is_sqlite() -> bool {
    backend() == "sqlite"
}

fn admin_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// TEST_REDIS_URL: one node, or a Redis Cluster's comma-separated seeds (the server then
/// runs in cluster mode; the per-test prefix has no braces, so it never becomes a hash tag).
fn redis_url() -> String {
    std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn db_url(name: &str) -> String {
    let base = admin_url();
    let (prefix, _) = base.rsplit_once('/').expect("database URL with a path");
    format!("{prefix}/{name}")
}

/// The migrated template's name changes whenever a migration file changes.
fn template_name() -> String {
    let mut hasher = Sha256::new();
    let mut files: Vec<_> = std::fs::read_dir(repo_root().join("migrations/src"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    for f in files {
        hasher.update(f.file_name().unwrap().to_string_lossy().as_bytes());
        hasher.update(std::fs::read(&f).unwrap());
    }
    format!("sp_tpl_{}", &hex::encode(hasher.finalize())[..16])
}

static TEMPLATE: OnceCell<String> = OnceCell::const_new();

async fn template() -> String {
    TEMPLATE
        .get_or_init(|| async {
            let name = template_name();
            let admin = Database::connect(admin_url())
                .await
                .expect("PostgreSQL reachable for tests");
            let be = admin.get_database_backend();
            // Several test processes may start at once: one migrates, the others wait.
            admin
                .execute(Statement::from_string(
                    be,
                    "SELECT pg_advisory_lock(727274)",
                ))
                .await
                .unwrap();
            let exists = admin
                .query_one(Statement::from_string(
                    be,
                    format!("SELECT 1 FROM pg_database WHERE datname = '{name}'"),
                ))
                .await
                .unwrap()
                .is_some();
            if !exists {
                let building = format!("{name}_building");
                admin
                    .execute(Statement::from_string(
                        be,
                        format!("DROP DATABASE IF EXISTS {building} WITH (FORCE)"),
                    ))
                    .await
                    .unwrap();
                admin
                    .execute(Statement::from_string(
                        be,
                        format!("CREATE DATABASE {building}"),
                    ))
                    .await
                    .unwrap();
                let status = Command::new(env!("CARGO_BIN_EXE_superpayment"))
                    .arg("migrate")
                    .env("DATABASE_URL", db_url(&building))
                    .env("VOUCHER_PEPPER", PEPPER)
                    .status()
                    .unwrap();
                assert!(status.success(), "migrating the template failed");
                admin
                    .execute(Statement::from_string(
                        be,
                        format!("ALTER DATABASE {building} RENAME TO {name}"),
                    ))
                    .await
                    .unwrap();
            }
            admin
                .execute(Statement::from_string(
                    be,
                    "SELECT pg_advisory_unlock(727274)",
                ))
                .await
                .unwrap();
            admin.close().await.ok();
            name
        })
        .await
        .clone()
}

/// A local port nothing listens on (until someone binds it).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A merchant created through the admin API.
#[derive(Debug, Clone)]
pub struct Merchant {
    pub id: String,
    pub pk: String,
    pub sk: String,
}

/// A running server with its own database.
pub struct TestApp {
    pub address: String,
    pub client: Client,
    pub database_url: String,
    #[allow(dead_code)]
    pub redis_prefix: Option<String>,
    db_name: Option<String>,
    dir: tempfile::TempDir,
    child: Child,
}

impl TestApp {
    /// Starts the server with default settings.
    pub async fn spawn() -> TestApp {
        Self::spawn_with(&[]).await
    }

    /// Starts the server with extra environment variables.
    pub async fn spawn_with(extra_env: &[(&str, &str)]) -> TestApp {
        Self::start(extra_env, true, None).await
    }

    /// Starts the server with no Redis at all (PostgreSQL still), as instances without a
    /// shared Redis run: every dedup lock is per process.
    pub async fn spawn_without_redis(extra_env: &[(&str, &str)]) -> TestApp {
        Self::start(extra_env, false, None).await
    }

    /// Starts the server in `cwd` without WWW_DIR, as an installed binary is run: nothing
    /// of the repository is reachable by a relative path.
    pub async fn spawn_in(cwd: &Path, extra_env: &[(&str, &str)]) -> TestApp {
        Self::start(extra_env, true, Some(cwd)).await
    }

    /// A server on a database this harness did not create (left in place afterwards),
    /// e.g. the primary that scripts/test-replica starts beside its streaming replica.
    pub async fn spawn_on_database(database_url: &str, extra_env: &[(&str, &str)]) -> TestApp {
        let dir = tempfile::tempdir().unwrap();
        let app = Self::launch(dir, database_url.to_owned(), None, None, extra_env, None);
        app.wait_ready().await;
        app
    }

    /// A second instance on this app's database (its own port, no Redis), for what must
    /// hold between instances. The database stays owned by `self`.
    pub async fn spawn_peer(&self, extra_env: &[(&str, &str)]) -> TestApp {
        let dir = tempfile::tempdir().unwrap();
        let app = Self::launch(dir, self.database_url.clone(), None, None, extra_env, None);
        app.wait_ready().await;
        app
    }

    /// The server on a migrated database it does not own (not dropped with the app), with
    /// no Redis: the private PostgreSQL cluster the outage tests stop and start.
    #[allow(dead_code)]
    pub async fn spawn_on(database_url: &str, extra_env: &[(&str, &str)]) -> TestApp {
        let dir = tempfile::tempdir().unwrap();
        let app = Self::launch(dir, database_url.to_owned(), None, None, extra_env, None);
        app.wait_ready().await;
        app
    }

    /// A freshly migrated database of its own (dropped with the returned handle).
    pub async fn empty_database() -> ScratchDatabase {
        let name = create_test_database().await;
        ScratchDatabase {
            url: db_url(&name),
            name,
        }
    }

    async fn start(extra_env: &[(&str, &str)], with_redis: bool, cwd: Option<&Path>) -> TestApp {
        let dir = tempfile::tempdir().unwrap();
        let (database_url, db_name, redis_prefix) = if is_sqlite() {
            (
                format!("sqlite://{}/superpayment.db?mode=rwc", dir.path().display()),
                None,
                None,
            )
        } else {
            let name = create_test_database().await;
            (
                db_url(&name),
                Some(name),
                with_redis.then(|| format!("sp:test:{}:", uuid::Uuid::new_v4().simple())),
            )
        };
        let app = Self::launch(dir, database_url, db_name, redis_prefix, extra_env, cwd);
        app.wait_ready().await;
        app
    }

    /// Spawns `superpayment serve`; with `cwd`, there and without WWW_DIR.
    fn launch(
        dir: tempfile::TempDir,
        database_url: String,
        db_name: Option<String>,
        redis_prefix: Option<String>,
        extra_env: &[(&str, &str)],
        cwd: Option<&Path>,
    ) -> TestApp {
        let port = free_port();
        let log = std::fs::File::create(dir.path().join("server.log")).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_superpayment"));
        cmd.arg("serve")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("BIND", format!("127.0.0.1:{port}"))
            .env("VOUCHER_PEPPER", PEPPER)
            .env("SIGNING_KEY", SIGNING_KEY)
            .env("ENCRYPTION_KEY", ENCRYPTION_KEY)
            .env("ADMIN_TOKEN", ADMIN_TOKEN)
            .env("LOG_FORMAT", "json")
            .env("RUST_LOG", "info")
            .env("DATA_DIR", dir.path())
            .env("NO_DEMO_SEED", "true")
            // The suite pays hundreds of times from one loopback address, issues vouchers
            // and sends bad keys on purpose; the gateway tests set the limits they check.
            .env("PAY_RATE_LIMIT_PER_CLIENT", "0")
            .env("PAY_RATE_LIMIT_PER_KEY", "0")
            .env("ADMIN_RATE_LIMIT", "0")
            .env("API_RATE_LIMIT_EXPENSIVE", "0")
            .env("AUTH_LOCKOUT_THRESHOLD", "0")
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log));
        match cwd {
            Some(cwd) => cmd.current_dir(cwd),
            None => cmd.env("WWW_DIR", repo_root().join("www")),
        };
        if !is_sqlite() {
            cmd.env("DATABASE_URL", &database_url)
                .env("NO_MIGRATE", "true");
        }
        if let Some(prefix) = &redis_prefix {
            cmd.env("REDIS_URL", redis_url())
                .env("REDIS_PREFIX", prefix);
        }
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("starting superpayment serve");
        TestApp {
            address: format!("http://127.0.0.1:{port}"),
            client: Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .unwrap(),
            database_url,
            redis_prefix,
            db_name,
            dir,
            child,
        }
    }

    async fn wait_ready(&self) {
        for _ in 0..1500 {
            if let Ok(r) = self
                .client
                .get(format!("{}/readyz", self.address))
                .send()
                .await
            {
                if r.status().is_success() {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("server did not become ready; log:\n{}", self.logs());
    }

    /// SIGTERM to the server, then waits for it to exit (bounded, see
    /// [`crate::webhook_support::terminate`]).
    pub async fn terminate(&mut self) -> std::process::ExitStatus {
        crate::webhook_support::terminate(&mut self.child).await
    }

    /// Sends SIGTERM to the server and returns at once.
    #[allow(dead_code)]
    pub fn sigterm(&self) {
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("running kill");
        assert!(sent.success(), "SIGTERM sent");
    }

    /// Waits for the server to exit (bounded like [`TestApp::terminate`]).
    #[allow(dead_code)]
    pub async fn wait_exit(&mut self) -> std::process::ExitStatus {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the server did not exit"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Everything the server wrote to stdout and stderr so far.
    pub fn logs(&self) -> String {
        let mut s = String::new();
        std::fs::File::open(self.dir.path().join("server.log"))
            .and_then(|mut f| f.read_to_string(&mut s))
            .ok();
        s
    }

    /// The OpenAPI document this server serves.
    pub async fn served_spec(&self) -> Value {
        self.client
            .get(self.url("/openapi.json"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    /// POST with a bearer key and an optional Idempotency-Key.
    pub async fn post(
        &self,
        path: &str,
        key: &str,
        body: &Value,
        idempotency_key: Option<&str>,
    ) -> Response {
        let mut req = self.client.post(self.url(path)).bearer_auth(key).json(body);
        if let Some(k) = idempotency_key {
            req = req.header("Idempotency-Key", k);
        }
        req.send().await.unwrap()
    }

    pub async fn create_merchant(&self, commission_bps: u32) -> Merchant {
        self.create_merchant_in("test", commission_bps).await
    }

    pub async fn create_merchant_in(&self, mode: &str, commission_bps: u32) -> Merchant {
        let r = self
            .post(
                "/api/admin/merchants",
                ADMIN_TOKEN,
                &json!({"name": "Shop", "commission_bps": commission_bps, "mode": mode}),
                None,
            )
            .await;
        assert_eq!(r.status(), 201);
        let v: Value = r.json().await.unwrap();
        Merchant {
            id: v["merchant"]["id"].as_str().unwrap().into(),
            pk: v["publishable_key"].as_str().unwrap().into(),
            sk: v["secret_key"].as_str().unwrap().into(),
        }
    }

    /// Issues vouchers through the admin API; `extra` is merged into the request.
    pub async fn issue(
        &self,
        currency: &str,
        amount: &str,
        count: u32,
        extra: Value,
    ) -> Vec<String> {
        let mut body = json!({"currency": currency, "amount": amount, "count": count});
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            for (k, v) in e {
                b.insert(k.clone(), v.clone());
            }
        }
        let r = self
            .post("/api/admin/vouchers", ADMIN_TOKEN, &body, None)
            .await;
        assert_eq!(
            r.status(),
            201,
            "issuing vouchers: {}",
            r.text().await.unwrap()
        );
        let v: Value = r.json().await.unwrap();
        v["vouchers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["code"].as_str().unwrap().to_owned())
            .collect()
    }

    pub async fn issue_one(&self, amount: &str) -> String {
        self.issue("EUR", amount, 1, json!({})).await.remove(0)
    }

    /// POST /api/process-payment/ (the seed's URL, trailing slash included).
    pub async fn pay(
        &self,
        pk: &str,
        order_id: &str,
        amount: &str,
        codes: &[&str],
        idempotency_key: Option<&str>,
    ) -> Response {
        let vouchers: Vec<Value> = codes.iter().map(|c| json!({"code": c})).collect();
        self.post(
            "/api/process-payment/",
            pk,
            &json!({"order_id": order_id, "amount": amount, "currency": "EUR", "vouchers": vouchers}),
            idempotency_key,
        )
        .await
    }

    /// A keyed payment as a client that follows the documented retry rule makes it: a
    /// `503 request_timeout` (the server gave up on a request it could not finish in
    /// REQUEST_TIMEOUT, as a loaded machine can make it) is retried after its Retry-After
    /// with the same Idempotency-Key; any other answer is returned. The key makes the retry
    /// safe: it replays the first attempt's outcome if that one committed after all.
    pub async fn pay_retrying_timeouts(
        &self,
        pk: &str,
        order_id: &str,
        amount: &str,
        codes: &[&str],
        idempotency_key: &str,
    ) -> Response {
        for _ in 0..10 {
            let r = self
                .pay(pk, order_id, amount, codes, Some(idempotency_key))
                .await;
            if r.status() != 503 {
                return r;
            }
            let wait = retry_after(&r);
            let v = body(r).await;
            assert_eq!(v["error"]["code"], "request_timeout", "{v}");
            tokio::time::sleep(std::time::Duration::from_secs(wait)).await;
        }
        panic!("payment {order_id} still timed out after 10 attempts");
    }

    /// A voucher's balance as the voucher check answers it ("" when the check says none).
    pub async fn voucher_balance(&self, pk: &str, code: &str) -> String {
        let r = self
            .post("/api/vouchers/check", pk, &json!({"code": code}), None)
            .await;
        body(r).await["balance"].as_str().unwrap_or("").to_owned()
    }

    /// Live-mode keys for a merchant, made by the CLI: (publishable, secret).
    pub fn create_live_keys(&self, merchant_id: &str) -> (String, String) {
        let (ok, out) = self.cli(&[
            "admin",
            "create-keys",
            "--merchant",
            merchant_id,
            "--mode",
            "live",
        ]);
        assert!(ok, "{out}");
        let field = |name: &str| {
            out.lines()
                .find_map(|l| l.strip_prefix(&format!("{name}=")))
                .unwrap_or_else(|| panic!("no {name} in {out}"))
                .to_owned()
        };
        (field("publishable_key"), field("secret_key"))
    }

    /// Runs `superpayment <args>` against this app's database; returns (success, stdout).
    pub fn cli(&self, args: &[&str]) -> (bool, String) {
        self.cli_with(args, &[])
    }

    /// [`TestApp::cli`] with extra (or overriding) environment variables.
    pub fn cli_with(&self, args: &[&str], extra_env: &[(&str, &str)]) -> (bool, String) {
        let mut cmd = self.cli_command(args);
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    }

    /// The command `superpayment <args>` against this app's database.
    pub fn cli_command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_superpayment"));
        cmd.args(args)
            .env("VOUCHER_PEPPER", PEPPER)
            .env("SIGNING_KEY", SIGNING_KEY)
            .env("ENCRYPTION_KEY", ENCRYPTION_KEY)
            .env("DATA_DIR", self.dir.path());
        if !is_sqlite() {
            cmd.env("DATABASE_URL", &self.database_url);
        } else {
            cmd.env_remove("DATABASE_URL");
        }
        cmd
    }

    /// `superpayment audit` on this app's database.
    pub fn audit(&self) -> (bool, String) {
        self.cli(&["audit"])
    }

    /// A direct connection to this app's database, for assertions on rows.
    pub async fn db(&self) -> sea_orm::DatabaseConnection {
        Database::connect(&self.database_url).await.unwrap()
    }

    /// The first column of the first row `sql` returns, as an integer (a count, a sum cast
    /// to bigint).
    pub async fn scalar(&self, sql: &str) -> i64 {
        let db = self.db().await;
        let n = db
            .query_one(Statement::from_string(db.get_database_backend(), sql))
            .await
            .unwrap()
            .unwrap()
            .try_get_by_index::<i64>(0)
            .unwrap();
        db.close().await.ok();
        n
    }

    /// COUNT(*) of a table.
    pub async fn count(&self, table: &str) -> i64 {
        self.scalar(&format!("SELECT COUNT(*) FROM {table}")).await
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(name) = self.db_name.take() {
            drop_database(name);
        }
        // Every answer the test received was checked by the server against the documented
        // error codes of its operation (api::documented); an undocumented one fails the test.
        let undocumented: Vec<String> = self
            .logs()
            .lines()
            .filter(|l| l.contains("not documented"))
            .map(str::to_owned)
            .collect();
        if !undocumented.is_empty() && !std::thread::panicking() {
            panic!(
                "the server answered with errors its spec does not document:\n{}",
                undocumented.join("\n")
            );
        }
    }
}

/// A migrated database that is dropped when this handle is.
pub struct ScratchDatabase {
    pub url: String,
    name: String,
}

impl Drop for ScratchDatabase {
    fn drop(&mut self) {
        drop_database(self.name.clone());
    }
}

async fn create_test_database() -> String {
    let tpl = template().await;
    let name = format!("sp_test_{}", uuid::Uuid::new_v4().simple());
    let admin = Database::connect(admin_url()).await.unwrap();
    admin
        .execute(Statement::from_string(
            admin.get_database_backend(),
            format!("CREATE DATABASE {name} TEMPLATE {tpl}"),
        ))
        .await
        .unwrap();
    admin.close().await.ok();
    name
}

/// Drops a test database from outside any runtime we may block (a thread of its own).
fn drop_database(name: String) {
    let _ = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            if let Ok(admin) = Database::connect(admin_url()).await {
                let _ = admin
                    .execute(Statement::from_string(
                        admin.get_database_backend(),
                        format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
                    ))
                    .await;
                admin.close().await.ok();
            }
        });
    })
    .join();
}

/// The stored HMAC of a code (how tests find a voucher's row).
pub fn code_hmac(code: &str) -> String {
    let code = superpayment_core::VoucherCode::parse(code).expect("a valid code");
    superpayment_backend::crypto::voucher_hmac(
        &superpayment_backend::secret::Secret::new(PEPPER.to_owned()),
        &code,
    )
}

/// Reads a JSON body.
pub async fn body(r: Response) -> Value {
    r.json().await.unwrap()
}

/// The Retry-After header of a 429 or a 503, in seconds.
pub fn retry_after(r: &Response) -> u64 {
    r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}
