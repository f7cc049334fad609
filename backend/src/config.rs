//! Command-line flags with environment fallbacks, and the resolved runtime settings.
use std::{net::SocketAddr, path::PathBuf};

use anyhow::{bail, Context};
use clap::Args;
use rand::RngCore;

use crate::secret::Secret;

/// Settings shared by every subcommand that touches the database.
#[derive(Args, Clone, Debug)]
pub struct DbArgs {
    /// PostgreSQL URL (`postgres://...`). Without it the embedded SQLite default under
    /// DATA_DIR is used.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<Secret<String>>,
    /// Read replica for dashboard-style reads (listings, verification); defaults to the primary.
    #[arg(long, env = "DATABASE_REPLICA_URL", hide_env_values = true)]
    pub database_replica_url: Option<Secret<String>>,
    /// Maximum connections per pool.
    #[arg(long, env = "DATABASE_POOL_SIZE", default_value_t = 16)]
    pub database_pool_size: u32,
    /// Directory of the embedded default (SQLite file, generated dev secrets).
    #[arg(long, env = "DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,
    /// Pepper of the voucher-code HMAC. Required with DATABASE_URL; generated under
    /// DATA_DIR on the embedded default.
    #[arg(long, env = "VOUCHER_PEPPER", hide_env_values = true)]
    pub voucher_pepper: Option<Secret<String>>,
}

/// Settings of `superpayment serve`.
#[derive(Args, Clone, Debug)]
pub struct ServeArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// Address to listen on.
    #[arg(long, env = "BIND", default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,
    /// Redis URL; without it dedup locks and rate limits are kept in process.
    #[arg(long, env = "REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<Secret<String>>,
    /// Prefix of every Redis key, so several deployments (or tests) can share one Redis.
    #[arg(long, env = "REDIS_PREFIX", default_value = "sp:")]
    pub redis_prefix: String,
    /// The externally visible base URL (used in links and the widget's iframe origin).
    #[arg(long, env = "PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Bearer token of /api/admin/...; required with DATABASE_URL.
    #[arg(long, env = "ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<Secret<String>>,
    /// `json` (production) or `pretty` (development).
    #[arg(long, env = "LOG_FORMAT", default_value = "json")]
    pub log_format: String,
    /// Directory of static files served at / (the widget, checkout page and demo shop).
    #[arg(long, env = "WWW_DIR", default_value = "www")]
    pub www_dir: PathBuf,
    /// Do not create the demo merchant on the embedded default's first start.
    #[arg(long, env = "NO_DEMO_SEED")]
    pub no_demo_seed: bool,
    /// Do not apply pending migrations at start-up.
    #[arg(long, env = "NO_MIGRATE")]
    pub no_migrate: bool,
    /// Voucher balance checks allowed per key and client address per minute.
    #[arg(long, env = "CHECK_RATE_LIMIT", default_value_t = 30)]
    pub check_rate_limit: u32,
    /// How long an authenticated API key is remembered in process (0s: never). A key
    /// revoked on another instance keeps working here for at most this long.
    #[arg(long, env = "KEY_CACHE_TTL", default_value = "5s", value_parser = humantime::parse_duration)]
    pub key_cache_ttl: std::time::Duration,
    /// Publishable key of the demo shop's merchant (/demo/); on the embedded default it is
    /// read from DATA_DIR/demo.txt.
    #[arg(long, env = "DEMO_PUBLISHABLE_KEY")]
    pub demo_publishable_key: Option<String>,
    /// Secret key the demo shop's server side signs amounts and verifies payments with.
    #[arg(long, env = "DEMO_SECRET_KEY", hide_env_values = true)]
    pub demo_secret_key: Option<Secret<String>>,
    /// Base URL the demo shop loads widget.js from (default: this server under its other
    /// loopback name, so that shop and checkout iframe are different origins).
    #[arg(long, env = "DEMO_WIDGET_URL")]
    pub demo_widget_url: Option<String>,
    /// Run a webhook worker inside this server: `auto` (on for the embedded default, off
    /// with DATABASE_URL, where `superpayment worker` processes deliver), `on` or `off`.
    #[arg(long = "worker", env = "SERVE_WORKER", default_value = "auto", value_parser = ["auto", "on", "off"])]
    pub worker: String,
    #[command(flatten)]
    pub webhooks: crate::webhooks::WebhookArgs,
}

/// Secrets resolved for this process.
#[derive(Clone, Debug)]
pub struct Secrets {
    pub voucher_pepper: Secret<String>,
    pub admin_token: Option<Secret<String>>,
}

impl DbArgs {
    /// True when running on the embedded default (no DATABASE_URL).
    pub fn is_embedded(&self) -> bool {
        self.database_url.is_none()
    }

    /// The database URL to connect to, creating the embedded data directory if needed.
    pub fn resolved_database_url(&self) -> anyhow::Result<String> {
        match &self.database_url {
            Some(url) => Ok(url.expose().clone()),
            None => {
                std::fs::create_dir_all(&self.data_dir).with_context(|| {
                    format!("creating data directory {}", self.data_dir.display())
                })?;
                let path = self.data_dir.join("superpayment.db");
                Ok(format!("sqlite://{}?mode=rwc", path.display()))
            }
        }
    }

    /// The voucher pepper: from the environment, or on the embedded default from
    /// DATA_DIR/dev-secrets.env (generated on first use). Production must set it.
    pub fn resolved_pepper(&self) -> anyhow::Result<Secret<String>> {
        if let Some(p) = &self.voucher_pepper {
            if p.expose().len() < 16 {
                bail!("VOUCHER_PEPPER must be at least 16 characters");
            }
            return Ok(p.clone());
        }
        if !self.is_embedded() {
            bail!("VOUCHER_PEPPER is required when DATABASE_URL is set (it keys the HMAC of every voucher code)");
        }
        Ok(Secret::new(self.dev_secrets()?.voucher_pepper))
    }

    /// Reads (or creates) DATA_DIR/dev-secrets.env, the embedded default's generated secrets.
    pub fn dev_secrets(&self) -> anyhow::Result<DevSecrets> {
        let path = self.data_dir.join("dev-secrets.env");
        if let Ok(text) = std::fs::read_to_string(&path) {
            let get = |name: &str| {
                text.lines()
                    .find_map(|l| l.strip_prefix(&format!("{name}=")))
                    .map(str::to_owned)
            };
            if let (Some(admin_token), Some(voucher_pepper)) =
                (get("ADMIN_TOKEN"), get("VOUCHER_PEPPER"))
            {
                return Ok(DevSecrets {
                    admin_token,
                    voucher_pepper,
                });
            }
        }
        std::fs::create_dir_all(&self.data_dir)?;
        let secrets = DevSecrets {
            admin_token: format!("admin_{}", random_hex(24)),
            voucher_pepper: random_hex(32),
        };
        write_private(
            &path,
            &format!(
                "# Generated development secrets of the embedded default. Never use in production.\nADMIN_TOKEN={}\nVOUCHER_PEPPER={}\n",
                secrets.admin_token, secrets.voucher_pepper
            ),
        )
        .with_context(|| format!("writing {}", path.display()))?;
        eprintln!(
            "Generated development secrets in {} (embedded default only).",
            path.display()
        );
        Ok(secrets)
    }
}

impl ServeArgs {
    /// Resolves every secret, failing clearly when production lacks one.
    pub fn secrets(&self) -> anyhow::Result<Secrets> {
        let voucher_pepper = self.db.resolved_pepper()?;
        let admin_token = match &self.admin_token {
            Some(t) if t.expose().len() < 16 => bail!("ADMIN_TOKEN must be at least 16 characters"),
            Some(t) => Some(t.clone()),
            None if self.db.is_embedded() => Some(Secret::new(self.db.dev_secrets()?.admin_token)),
            None => {
                bail!("ADMIN_TOKEN is required when DATABASE_URL is set (it guards /api/admin)")
            }
        };
        Ok(Secrets {
            voucher_pepper,
            admin_token,
        })
    }
}

/// Secrets generated for the embedded default.
pub struct DevSecrets {
    pub admin_token: String,
    pub voucher_pepper: String,
}

/// Writes a file only its owner may read: created with mode 0600 (not chmodded after the
/// secret is already on disk), and an existing file is narrowed to 0600 before writing.
pub fn write_private(path: &std::path::Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    file.write_all(contents.as_bytes())?;
    file.sync_all()
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut buf);
    hex::encode(buf)
}

impl std::str::FromStr for Secret<String> {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Secret::new(s.to_owned()))
    }
}
