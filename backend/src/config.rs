//! Command-line flags with environment fallbacks, and the resolved runtime settings.
use std::{net::SocketAddr, path::PathBuf};

use anyhow::{bail, Context};
use clap::Args;
use rand::RngCore;

use crate::{crypto::secrets_equal, secret::Secret, webhooks::secrets::SecretCipher};

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
    /// Base64 of 32 bytes: the AES-256-GCM key of webhook secrets and sealed idempotent
    /// answers at rest. Required with DATABASE_URL; generated under DATA_DIR on the
    /// embedded default. Rotate with `superpayment admin reencrypt`.
    #[arg(long, env = "ENCRYPTION_KEY", hide_env_values = true)]
    pub encryption_key: Option<Secret<String>>,
    /// The former name of ENCRYPTION_KEY, still read.
    #[arg(long, env = "WEBHOOK_ENCRYPTION_KEY", hide_env_values = true)]
    pub webhook_encryption_key: Option<Secret<String>>,
}

/// Where `/metrics` is served (shared by `serve` and `worker`).
#[derive(Args, Clone, Debug)]
pub struct MetricsArgs {
    /// Address of the Prometheus `/metrics` listener, apart from the API's (e.g.
    /// `127.0.0.1:9464`, or an address only the scraper's network reaches). Unset: not served.
    #[arg(long, env = "METRICS_BIND")]
    pub metrics_bind: Option<SocketAddr>,
    /// Bearer token a scrape must send (`Authorization: Bearer ...`); unset: none asked.
    #[arg(long, env = "METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<Secret<String>>,
}

/// Settings of `superpayment serve`.
#[derive(Args, Clone, Debug)]
pub struct ServeArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// Address to listen on.
    #[arg(long, env = "BIND", default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,
    /// Redis URL; without it dedup locks and rate limits are kept in process. A
    /// comma-separated list of node URLs is a Redis Cluster's seed nodes.
    #[arg(long, env = "REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<Secret<String>>,
    /// Treat a single REDIS_URL as a Redis Cluster seed node (a list always is one).
    #[arg(long, env = "REDIS_CLUSTER")]
    pub redis_cluster: bool,
    /// Prefix of every Redis key, so several deployments (or tests) can share one Redis.
    #[arg(long, env = "REDIS_PREFIX", default_value = "sp:")]
    pub redis_prefix: String,
    /// The externally visible base URL (used in links and the widget's iframe origin).
    #[arg(long, env = "PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Key that derives every merchant's checkout signing secret (`data-signature`);
    /// required with DATABASE_URL, generated under DATA_DIR on the embedded default.
    #[arg(long, env = "SIGNING_KEY", hide_env_values = true)]
    pub signing_key: Option<Secret<String>>,
    /// Bearer token of /api/admin/...; required with DATABASE_URL.
    #[arg(long, env = "ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<Secret<String>>,
    /// `json` (production) or `pretty` (development).
    #[arg(long, env = "LOG_FORMAT", default_value = "json")]
    pub log_format: String,
    /// Folder of the static files (the widget, checkout page and demo shop) to read on
    /// every request instead of those built into the binary: for development, where an
    /// edit or a widget rebuild then shows without rebuilding the server. Relative to the
    /// working directory.
    #[arg(long, env = "WWW_DIR")]
    pub www_dir: Option<PathBuf>,
    /// Do not create the demo merchant on the embedded default's first start.
    #[arg(long, env = "NO_DEMO_SEED")]
    pub no_demo_seed: bool,
    /// Do not apply pending migrations at start-up.
    #[arg(long, env = "NO_MIGRATE")]
    pub no_migrate: bool,
    /// Proxies and load balancers (addresses or CIDR networks, comma-separated) whose
    /// `Forwarded` / `X-Forwarded-For` headers name the client; from any other peer those
    /// headers are ignored and the peer itself is the client.
    #[arg(long, env = "TRUSTED_PROXIES", value_delimiter = ',', value_parser = crate::gateway::parse_trusted_proxy)]
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Failed voucher attempts (unknown, expired, blocked... codes, on check and payment)
    /// per client address, and per code, within GUESS_LOCKOUT_WINDOW before that source is
    /// refused with 429 for GUESS_LOCKOUT_COOLDOWN (0: no lockout).
    #[arg(long, env = "GUESS_LOCKOUT_THRESHOLD", default_value_t = 10)]
    pub guess_lockout_threshold: u32,
    /// The same per publishable key, every shopper of a shop together (0: off). A lockout
    /// of a key refuses all of that shop's shoppers, so it is off unless set.
    #[arg(long, env = "GUESS_LOCKOUT_KEY_THRESHOLD", default_value_t = 0)]
    pub guess_lockout_key_threshold: u32,
    /// The window failed voucher attempts are counted in.
    #[arg(long, env = "GUESS_LOCKOUT_WINDOW", default_value = "15m", value_parser = humantime::parse_duration)]
    pub guess_lockout_window: std::time::Duration,
    /// How long a source past its threshold is refused.
    #[arg(long, env = "GUESS_LOCKOUT_COOLDOWN", default_value = "15m", value_parser = humantime::parse_duration)]
    pub guess_lockout_cooldown: std::time::Duration,
    /// Failed back-office logins per client address within LOGIN_LOCKOUT_WINDOW before that
    /// address is refused for LOGIN_LOCKOUT_COOLDOWN (0: off).
    #[arg(long, env = "LOGIN_LOCKOUT_THRESHOLD", default_value_t = 20)]
    pub login_lockout_threshold: u32,
    /// Failed back-office logins per account (email) within LOGIN_LOCKOUT_WINDOW before
    /// logins to it are refused for LOGIN_LOCKOUT_COOLDOWN (0: off).
    #[arg(long, env = "LOGIN_LOCKOUT_ACCOUNT_THRESHOLD", default_value_t = 5)]
    pub login_lockout_account_threshold: u32,
    /// The window failed back-office logins are counted in.
    #[arg(long, env = "LOGIN_LOCKOUT_WINDOW", default_value = "15m", value_parser = humantime::parse_duration)]
    pub login_lockout_window: std::time::Duration,
    /// How long a locked-out address or account is refused.
    #[arg(long, env = "LOGIN_LOCKOUT_COOLDOWN", default_value = "15m", value_parser = humantime::parse_duration)]
    pub login_lockout_cooldown: std::time::Duration,
    /// A back-office session unused this long ends.
    #[arg(long, env = "SESSION_IDLE_TIMEOUT", default_value = "12h", value_parser = humantime::parse_duration)]
    pub session_idle_timeout: std::time::Duration,
    /// A back-office session ends this long after its login, used or not.
    #[arg(long, env = "SESSION_MAX_AGE", default_value = "7d", value_parser = humantime::parse_duration)]
    pub session_max_age: std::time::Duration,
    /// How long an emailed team invitation's link works.
    #[arg(long, env = "INVITATION_TTL", default_value = "72h", value_parser = humantime::parse_duration)]
    pub invitation_ttl: std::time::Duration,
    /// How long an emailed password-reset link works.
    #[arg(long, env = "PASSWORD_RESET_TTL", default_value = "1h", value_parser = humantime::parse_duration)]
    pub password_reset_ttl: std::time::Duration,
    /// Password-reset requests per client address within PASSWORD_RESET_LIMIT_WINDOW
    /// before that address is refused for the window (0: no limit).
    #[arg(long, env = "PASSWORD_RESET_LIMIT_PER_CLIENT", default_value_t = 10)]
    pub password_reset_limit_per_client: u32,
    /// Password-reset requests per email address within PASSWORD_RESET_LIMIT_WINDOW
    /// before that address is refused for the window (0: no limit).
    #[arg(long, env = "PASSWORD_RESET_LIMIT_PER_EMAIL", default_value_t = 3)]
    pub password_reset_limit_per_email: u32,
    /// The window password-reset requests are counted in.
    #[arg(long, env = "PASSWORD_RESET_LIMIT_WINDOW", default_value = "1h", value_parser = humantime::parse_duration)]
    pub password_reset_limit_window: std::time::Duration,
    /// Payment requests (POST /api/process-payment) allowed per client address per minute (0: no limit).
    #[arg(long, env = "PAY_RATE_LIMIT_PER_CLIENT", default_value_t = 20)]
    pub pay_rate_limit_per_client: u32,
    /// Payment requests allowed per API key per minute, every shopper of a shop together (0: no limit).
    #[arg(long, env = "PAY_RATE_LIMIT_PER_KEY", default_value_t = 600)]
    pub pay_rate_limit_per_key: u32,
    /// Voucher balance checks allowed per key and client address per minute.
    #[arg(long, env = "CHECK_RATE_LIMIT", default_value_t = 30)]
    pub check_rate_limit: u32,
    /// Requests allowed per API key per minute on every other operation taking a key (the
    /// merchant's server routes, remembered vouchers); 0: no limit. Counted in each
    /// instance, each allowing its share (see API_RATE_LIMIT_INSTANCES).
    #[arg(long, env = "API_RATE_LIMIT_PER_KEY", default_value_t = 6000)]
    pub api_rate_limit_per_key: u32,
    /// How many instances serve the API: each allows API_RATE_LIMIT_PER_KEY divided by it.
    #[arg(long, env = "API_RATE_LIMIT_INSTANCES", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub api_rate_limit_instances: u32,
    /// Requests per minute to the expensive operations (report exports, voucher issuance,
    /// payouts, breakage, webhook test and redelivery), per API key or, for the operator's,
    /// per client address; 0: no limit.
    #[arg(long, env = "API_RATE_LIMIT_EXPENSIVE", default_value_t = 60)]
    pub api_rate_limit_expensive: u32,
    /// Operator (/api/admin, ADMIN_TOKEN) requests per client address per minute; 0: no limit.
    #[arg(long, env = "ADMIN_RATE_LIMIT", default_value_t = 600)]
    pub admin_rate_limit: u32,
    /// Bad credentials (malformed, unknown, revoked or expired API keys, a wrong admin
    /// token) per client address within GUESS_LOCKOUT_WINDOW before the address is refused
    /// for GUESS_LOCKOUT_COOLDOWN (0: off).
    #[arg(long, env = "AUTH_LOCKOUT_THRESHOLD", default_value_t = 30)]
    pub auth_lockout_threshold: u32,
    /// How long an authenticated API key is remembered in process (0s: never). A key
    /// revoked on another instance keeps working here for at most this long.
    #[arg(long, env = "KEY_CACHE_TTL", default_value = "5s", value_parser = humantime::parse_duration)]
    pub key_cache_ttl: std::time::Duration,
    /// Longest a request may run, on every route (pages too); past it the answer is `503
    /// request_timeout` with Retry-After. Above the database pool's 5 s acquire timeout, so
    /// that an unreachable database answers `service_unavailable` first, and below the
    /// load balancer's upstream timeout (15 s in deploy/nginx), so that clients get this
    /// documented answer rather than the balancer's.
    #[arg(long, env = "REQUEST_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub request_timeout: std::time::Duration,
    /// Serve the demo shop under /demo/: `auto` (on for the embedded default only), `on` or
    /// `off`. It is a demonstration, not part of a production deployment.
    #[arg(long = "demo-shop", env = "DEMO_SHOP", default_value = "auto", value_parser = ["auto", "on", "off"])]
    pub demo_shop: String,
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
    #[command(flatten)]
    pub fraud: crate::fraud::FraudArgs,
    #[command(flatten)]
    pub email: crate::notify::EmailArgs,
    #[command(flatten)]
    pub metrics: MetricsArgs,
}

/// Secrets resolved for this process: one per purpose, so that none can stand in for another.
#[derive(Clone, Debug)]
pub struct Secrets {
    /// Keys the voucher-code HMACs.
    pub voucher_pepper: Secret<String>,
    pub admin_token: Option<Secret<String>>,
    /// Derives the merchants' checkout signing secrets.
    pub signing_key: Secret<String>,
    /// Encrypts webhook secrets and sealed idempotent answers.
    pub cipher: SecretCipher,
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

    /// The cipher of stored secrets: ENCRYPTION_KEY (or its former name
    /// WEBHOOK_ENCRYPTION_KEY), or on the embedded default the generated one.
    pub fn resolved_cipher(&self) -> anyhow::Result<SecretCipher> {
        let key = match (&self.encryption_key, &self.webhook_encryption_key) {
            (Some(a), Some(b)) if !secrets_equal(a.expose(), b.expose()) => bail!(
                "ENCRYPTION_KEY and WEBHOOK_ENCRYPTION_KEY (its former name) are both set and differ; set only ENCRYPTION_KEY"
            ),
            (Some(key), _) | (None, Some(key)) => key.clone(),
            (None, None) if self.is_embedded() => Secret::new(self.dev_secrets()?.encryption_key),
            (None, None) => bail!(
                "ENCRYPTION_KEY is required when DATABASE_URL is set (base64 of 32 bytes, e.g. `openssl rand -base64 32`; it encrypts webhook secrets and stored refund answers; WEBHOOK_ENCRYPTION_KEY is read as its former name). Webhook secrets stored under the key formerly derived from VOUCHER_PEPPER move to the new key with `superpayment admin reencrypt --old-key-from-pepper`."
            ),
        };
        SecretCipher::from_base64(key.expose())
    }

    /// Reads (or creates) DATA_DIR/dev-secrets.env, the embedded default's generated secrets.
    /// A file from an earlier version gets the keys it lacks appended; the pepper and admin
    /// token it holds are kept (a new pepper would orphan every issued voucher code).
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
                let mut added = String::new();
                let signing_key = get("SIGNING_KEY").unwrap_or_else(|| {
                    let key = random_hex(32);
                    added.push_str(&format!("SIGNING_KEY={key}\n"));
                    key
                });
                let encryption_key = get("ENCRYPTION_KEY").unwrap_or_else(|| {
                    // Earlier versions encrypted webhook secrets under a key derived from the
                    // pepper; carrying that key over keeps what they stored readable.
                    let key = SecretCipher::derived_from(&Secret::new(voucher_pepper.clone()))
                        .to_base64()
                        .expose()
                        .clone();
                    added.push_str(&format!("ENCRYPTION_KEY={key}\n"));
                    key
                });
                if !added.is_empty() {
                    let sep = if text.ends_with('\n') || text.is_empty() {
                        ""
                    } else {
                        "\n"
                    };
                    append_private(&path, &format!("{sep}{added}"))
                        .with_context(|| format!("updating {}", path.display()))?;
                    eprintln!(
                        "Added the new development keys to {} (embedded default only).",
                        path.display()
                    );
                }
                return Ok(DevSecrets {
                    admin_token,
                    voucher_pepper,
                    signing_key,
                    encryption_key,
                });
            }
        }
        std::fs::create_dir_all(&self.data_dir)?;
        let secrets = DevSecrets {
            admin_token: format!("admin_{}", random_hex(24)),
            voucher_pepper: random_hex(32),
            signing_key: random_hex(32),
            encryption_key: SecretCipher::new(crate::crypto::random_bytes::<32>())
                .to_base64()
                .expose()
                .clone(),
        };
        write_private(
            &path,
            &format!(
                "# Generated development secrets of the embedded default. Never use in production.\nADMIN_TOKEN={}\nVOUCHER_PEPPER={}\nSIGNING_KEY={}\nENCRYPTION_KEY={}\n",
                secrets.admin_token, secrets.voucher_pepper, secrets.signing_key, secrets.encryption_key
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
        let signing_key = match &self.signing_key {
            Some(k) if k.expose().len() < 16 => bail!("SIGNING_KEY must be at least 16 characters"),
            Some(k) => k.clone(),
            None if self.db.is_embedded() => Secret::new(self.db.dev_secrets()?.signing_key),
            None => bail!(
                "SIGNING_KEY is required when DATABASE_URL is set (it derives every merchant's checkout signing secret; at least 16 characters, e.g. `openssl rand -hex 32`)"
            ),
        };
        if secrets_equal(signing_key.expose(), voucher_pepper.expose()) {
            bail!("SIGNING_KEY must differ from VOUCHER_PEPPER: each secret has one purpose");
        }
        Ok(Secrets {
            voucher_pepper,
            admin_token,
            signing_key,
            cipher: self.db.resolved_cipher()?,
        })
    }
}

/// Secrets generated for the embedded default.
pub struct DevSecrets {
    pub admin_token: String,
    pub voucher_pepper: String,
    pub signing_key: String,
    /// Base64 of 32 bytes.
    pub encryption_key: String,
}

/// Writes a file only its owner may read: created with mode 0600 (not chmodded after the
/// secret is already on disk), and an existing file is narrowed to 0600 before writing.
pub fn write_private(path: &std::path::Path, contents: &str) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    write_with_mode_0600(path, options, contents)
}

/// Appends to a file only its owner may read (narrowing an existing one to 0600 first).
fn append_private(path: &std::path::Path, contents: &str) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.append(true).create(true);
    write_with_mode_0600(path, options, contents)
}

/// Opens `path` with `options`, creating it 0600 and narrowing an existing file to 0600
/// before anything is written, then writes and syncs `contents`.
fn write_with_mode_0600(
    path: &std::path::Path,
    mut options: std::fs::OpenOptions,
    contents: &str,
) -> std::io::Result<()> {
    use std::io::Write;
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
