//! Webhook test fixtures: a real HTTP receiver on 127.0.0.1, standalone workers, and the
//! official Standard Webhooks library (Python) as the judge of our signatures.
use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{
        atomic::{AtomicU16, AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use poem::{
    handler, listener::TcpAcceptor, web::Data, Body, EndpointExt, IntoResponse, Request, Response,
    Route, Server,
};
use serde_json::{json, Value};
use tokio::sync::OnceCell;

use crate::helpers::{TestApp, ENCRYPTION_KEY, PEPPER};

/// The fast schedule tests use: every retry within a second.
pub const FAST_RETRIES: &str = "100ms,200ms,300ms,400ms";

/// Server settings for webhook tests: a worker inside `serve`, fast retries and polls,
/// and test-mode endpoints on loopback (the receivers run here).
pub const FAST_WORKER_ENV: [(&str, &str); 4] = [
    ("SERVE_WORKER", "on"),
    ("WEBHOOK_RETRY_SCHEDULE", FAST_RETRIES),
    ("WEBHOOK_POLL_INTERVAL", "50ms"),
    ("WEBHOOK_LOOPBACK_FOR_TESTS", "true"),
];

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Hit {
    pub headers: HashMap<String, String>,
    pub body: String,
}

impl Hit {
    pub fn id(&self) -> &str {
        &self.headers["webhook-id"]
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap()
    }

    /// The message as the Python verifier reads it.
    pub fn message(&self) -> Value {
        json!({"headers": self.headers, "body": self.body})
    }
}

#[derive(Default)]
struct State {
    hits: Mutex<Vec<Hit>>,
    status: AtomicU16,
    delay_ms: AtomicU64,
}

/// A webhook receiver: records every request and answers with a settable status.
pub struct Receiver {
    pub url: String,
    state: Arc<State>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

#[handler]
async fn receive(req: &Request, body: Body, state: Data<&Arc<State>>) -> Response {
    let headers = req
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
        .collect();
    let body = body.into_string().await.unwrap_or_default();
    state.hits.lock().unwrap().push(Hit { headers, body });
    let delay = state.delay_ms.load(Ordering::SeqCst);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    let status = state.status.load(Ordering::SeqCst);
    "received"
        .with_status(poem::http::StatusCode::from_u16(status).unwrap())
        .into_response()
}

impl Receiver {
    /// A receiver on a free port, answering 200.
    pub async fn start() -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::start_on(listener).await
    }

    /// A receiver on a given port (to bring a "down" receiver back up).
    pub async fn start_on_port(port: u16) -> Receiver {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap();
        Self::start_on(listener).await
    }

    async fn start_on(listener: tokio::net::TcpListener) -> Receiver {
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(State {
            hits: Mutex::new(Vec::new()),
            status: AtomicU16::new(200),
            delay_ms: AtomicU64::new(0),
        });
        let app = Route::new().at("/*path", receive).data(state.clone());
        let acceptor = TcpAcceptor::from_tokio(listener).unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = Server::new_with_acceptor(acceptor)
                .run_with_graceful_shutdown(
                    app,
                    async {
                        let _ = rx.await;
                    },
                    Some(Duration::from_secs(1)),
                )
                .await;
        });
        Receiver {
            url: format!("http://127.0.0.1:{port}/webhooks"),
            state,
            stop: Some(tx),
        }
    }

    /// The status the next requests get.
    pub fn answer(&self, status: u16) {
        self.state.status.store(status, Ordering::SeqCst);
    }

    /// A pause before each answer (a slow receiver).
    pub fn delay(&self, ms: u64) {
        self.state.delay_ms.store(ms, Ordering::SeqCst);
    }

    pub fn hits(&self) -> Vec<Hit> {
        self.state.hits.lock().unwrap().clone()
    }

    /// Waits (up to 30 s) until `pred` holds for the hits so far; returns them.
    pub async fn wait_for(&self, what: &str, pred: impl Fn(&[Hit]) -> bool) -> Vec<Hit> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let hits = self.hits();
            if pred(&hits) {
                return hits;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; got {} hits",
                hits.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

/// A free port with nothing listening on it (a receiver that is down).
pub fn unused_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

static DEPS: OnceCell<HashMap<String, String>> = OnceCell::const_new();

/// Paths of the Python and Node test dependencies, installed by scripts/lib/test-deps.sh.
pub async fn test_deps() -> &'static HashMap<String, String> {
    DEPS.get_or_init(|| async {
        let out = tokio::process::Command::new(repo_root().join("scripts/lib/test-deps.sh"))
            .arg("--print")
            .output()
            .await
            .expect("running scripts/lib/test-deps.sh");
        assert!(
            out.status.success(),
            "scripts/lib/test-deps.sh failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    })
    .await
}

/// Verifies messages with the official library; one Ok(event id) or Err(reason) each.
pub async fn verify_with_library(secret: &str, messages: &[Value]) -> Vec<Result<String, String>> {
    let deps = test_deps().await;
    let mut child = tokio::process::Command::new(&deps["PYTHON"])
        .arg(repo_root().join("backend/tests/api/support/verify_webhook.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let input = json!({"secret": secret, "messages": messages}).to_string();
    use tokio::io::AsyncWriteExt;
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input.as_bytes()).await.unwrap();
    drop(stdin);
    let out = child.wait_with_output().await.unwrap();
    assert!(out.status.success(), "verifier crashed");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            if v["ok"] == true {
                Ok(v["id"].as_str().unwrap().to_owned())
            } else {
                Err(v["error"].as_str().unwrap().to_owned())
            }
        })
        .collect()
}

/// Sets the webhook endpoint of a secret key's mode; returns the response body.
pub async fn set_endpoint(app: &TestApp, sk: &str, url: &str) -> Value {
    let r = app
        .client
        .put(app.url("/api/webhook-endpoint"))
        .bearer_auth(sk)
        .json(&json!({"url": url}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "setting the endpoint");
    r.json().await.unwrap()
}

/// GET with a bearer key; returns (status, JSON body).
pub async fn get(app: &TestApp, path: &str, key: &str) -> (u16, Value) {
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

/// Waits (up to 30 s) until the event's deliveries satisfy `pred`; returns the event.
pub async fn wait_for_event(
    app: &TestApp,
    sk: &str,
    event_id: &str,
    what: &str,
    pred: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, event) = get(app, &format!("/api/events/{event_id}"), sk).await;
        if status == 200 && pred(&event) {
            return event;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {event}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// A `superpayment worker` process on the app's database.
pub struct WorkerProcess {
    child: Child,
}

impl WorkerProcess {
    pub fn start(app: &TestApp, extra: &[(&str, &str)]) -> WorkerProcess {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_superpayment"));
        cmd.arg("worker")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("DATABASE_URL", &app.database_url)
            .env("VOUCHER_PEPPER", PEPPER)
            .env("ENCRYPTION_KEY", ENCRYPTION_KEY)
            .env("LOG_FORMAT", "json")
            .env("WEBHOOK_RETRY_SCHEDULE", FAST_RETRIES)
            .env("WEBHOOK_POLL_INTERVAL", "50ms")
            .env("WEBHOOK_LOOPBACK_FOR_TESTS", "true")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        for (k, v) in extra {
            cmd.env(k, v);
        }
        WorkerProcess {
            child: cmd.spawn().expect("starting superpayment worker"),
        }
    }

    /// SIGTERM, then waits for the process to exit (see [`terminate`]).
    pub async fn terminate(&mut self) -> std::process::ExitStatus {
        terminate(&mut self.child).await
    }

    /// SIGKILL: no chance to finish or hand anything back.
    pub fn kill_9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        self.kill_9();
    }
}

/// Sends SIGTERM to `child` and waits for it to exit; fails the test if it is still running
/// after 60 s (far beyond the grace the tests configure: a bound, not a timing assertion).
/// It waits without blocking the runtime, whose receivers must go on answering meanwhile.
pub async fn terminate(child: &mut Child) -> std::process::ExitStatus {
    let sent = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("running kill");
    assert!(sent.success(), "SIGTERM sent");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "the process did not exit after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
