//! Email test fixtures: a real SMTP server (aiosmtpd from PyPI, installed by
//! scripts/lib/test-deps.sh) writing what it accepts to a Maildir, read back through
//! Python's email package.
//!
//! Ports come from the range 2525-2529: the PostgreSQL run of the suite uses 2525 (the
//! server every email test shares; each test has its own recipients) and 2526 (a server
//! that starts late), the SQLite run 2527 and 2528, so both runs can go at once.
use std::{
    path::{Path, PathBuf},
    process::Stdio,
    time::{Duration, Instant},
};

use serde_json::Value;
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
    sync::OnceCell,
};

use crate::{helpers::is_sqlite, webhook_support::test_deps};

fn support(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/api/support")
        .join(file)
}

/// The shared server's port for this run of the suite.
pub fn shared_port() -> u16 {
    if is_sqlite() {
        2527
    } else {
        2525
    }
}

/// The port of the server that one test starts late (the SMTP server was down).
pub fn late_port() -> u16 {
    if is_sqlite() {
        2528
    } else {
        2526
    }
}

/// A running aiosmtpd.
pub struct SmtpServer {
    pub port: u16,
    maildir: tempfile::TempDir,
    _child: Child,
}

impl SmtpServer {
    /// Starts aiosmtpd on 127.0.0.1:`port` and waits until it accepts connections.
    pub async fn start(port: u16) -> SmtpServer {
        let deps = test_deps().await;
        let maildir = tempfile::tempdir().unwrap();
        let mut child = Command::new(&deps["PYTHON"])
            .arg(support("smtp_server.py"))
            .arg("127.0.0.1")
            .arg(port.to_string())
            .arg(maildir.path().join("Maildir"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("starting aiosmtpd");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let ready = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("aiosmtpd did not start within 30 s")
            .unwrap();
        assert_eq!(
            ready.as_deref(),
            Some("ready"),
            "aiosmtpd did not start on port {port} (in use?)"
        );
        SmtpServer {
            port,
            maildir,
            _child: child,
        }
    }

    /// The SMTP_URL of this server.
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Every message received so far, decoded.
    pub async fn messages(&self) -> Vec<Value> {
        let deps = test_deps().await;
        let out = Command::new(&deps["PYTHON"])
            .arg(support("read_maildir.py"))
            .arg(self.maildir.path().join("Maildir"))
            .output()
            .await
            .unwrap();
        assert!(
            out.status.success(),
            "reading the Maildir: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// The messages to `address` (envelope recipient).
    pub async fn messages_to(&self, address: &str) -> Vec<Value> {
        self.messages()
            .await
            .into_iter()
            .filter(|m| m["envelope_to"].as_str() == Some(address))
            .collect()
    }

    /// Waits (up to 30 s) until `address` has received at least `n` messages; returns them.
    pub async fn wait_for(&self, address: &str, n: usize) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let got = self.messages_to(address).await;
            if got.len() >= n {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "{address} received {} of {n} emails within 30 s",
                got.len()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

static SHARED: OnceCell<SmtpServer> = OnceCell::const_new();

/// The SMTP server every email test of this run shares.
pub async fn shared() -> &'static SmtpServer {
    SHARED
        .get_or_init(|| SmtpServer::start(shared_port()))
        .await
}

/// A recipient no other test uses.
pub fn unique_address(what: &str) -> String {
    format!("{what}+{}@shop.example", uuid::Uuid::new_v4().simple())
}
