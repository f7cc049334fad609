//! Secrets of the process: what production must set, what the embedded default generates
//! (and how it stores it), and the re-encryption of stored secrets under a new key.
use std::{
    path::Path,
    process::{Child, Command, Stdio},
    time::Duration,
};

use crate::helpers::free_port;

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
