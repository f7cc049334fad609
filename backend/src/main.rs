//! `superpayment`: serve the API, migrate, audit the ledger, administer merchants and vouchers.
use std::{path::PathBuf, process::ExitCode, str::FromStr};

use anyhow::Context;
use clap::{Parser, Subcommand};
use superpayment_backend::{
    accounts,
    admin::{self, IssueSpec},
    config::{DbArgs, ServeArgs},
    payments::rules::VoucherRules,
    secret::Secret,
    startup::Application,
    state::AppState,
    store, telemetry,
    webhooks::{reencrypt, secrets::SecretCipher, worker, WorkerArgs},
};
use superpayment_core::{Currency, Mode, Money, VoucherCode};
use time::{format_description::well_known::Rfc3339, Date, OffsetDateTime, Time};

#[derive(Parser)]
#[command(
    name = "superpayment",
    version,
    about = "Voucher checkout: API server, ledger audit and operator tools"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

// Parsed once at start-up: the size of the largest variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Run the HTTP API (and static files of www/).
    Serve(ServeArgs),
    /// Deliver webhooks from the outbox until SIGTERM (any number may run side by side).
    Worker(WorkerArgs),
    /// Apply pending database migrations.
    Migrate(DbArgs),
    /// Print the OpenAPI document (or write it to --out).
    Openapi {
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Check every ledger invariant; exits 1 when one is violated.
    Audit(DbArgs),
    /// Create the demo merchant and test vouchers, and print them.
    SeedDemo(DbArgs),
    /// Operator actions.
    #[command(subcommand)]
    Admin(AdminCommand),
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Create a merchant and print its keys (shown once).
    CreateMerchant {
        #[arg(long)]
        name: String,
        /// Commission in basis points (250 = 2.50%).
        #[arg(long)]
        commission_bps: u32,
        #[arg(long, default_value = "test")]
        mode: String,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Create another key pair for a merchant (e.g. live keys) and print it (shown once).
    CreateKeys {
        #[arg(long)]
        merchant: String,
        #[arg(long, default_value = "test")]
        mode: String,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Issue vouchers and print their codes once, as CSV on stdout.
    IssueVouchers {
        #[arg(long)]
        currency: String,
        /// Face value, e.g. 50.00.
        #[arg(long)]
        amount: String,
        #[arg(long, default_value_t = 1)]
        count: u32,
        /// Expiry: a date (valid through that day, UTC) or an RFC 3339 timestamp.
        #[arg(long)]
        expires: Option<String>,
        /// Restrict the vouchers to this merchant id.
        #[arg(long)]
        merchant: Option<String>,
        #[arg(long, default_value = "test")]
        mode: String,
        /// Minimum order amount.
        #[arg(long)]
        min_order: Option<String>,
        /// Usable for one payment only.
        #[arg(long)]
        single_use: bool,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Re-encrypt every stored webhook secret and sealed idempotent answer under the current
    /// ENCRYPTION_KEY, reading them with the old key. Safe to run again.
    Reencrypt {
        /// The previous ENCRYPTION_KEY (base64 of 32 bytes). Prefer the environment
        /// variable: a flag shows in the process list.
        #[arg(
            long,
            env = "OLD_ENCRYPTION_KEY",
            hide_env_values = true,
            required_unless_present = "old_key_from_pepper",
            conflicts_with = "old_key_from_pepper"
        )]
        old_key: Option<Secret<String>>,
        /// The old key is the one earlier versions derived from VOUCHER_PEPPER when no
        /// WEBHOOK_ENCRYPTION_KEY was set.
        #[arg(long)]
        old_key_from_pepper: bool,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Set how long a merchant's authorized payments (`capture: false`) stay held before
    /// they are released (default 604800, 7 days; at most 31 days).
    SetHoldPeriod {
        #[arg(long)]
        merchant: String,
        #[arg(long)]
        seconds: i64,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Create a back-office user and print its login. The password is read from
    /// --password-file (`-`: standard input, first line); without it one is generated and
    /// printed once. Never a flag of its own: it would land in the shell's history.
    CreateUser {
        #[arg(long)]
        merchant: String,
        #[arg(long)]
        email: String,
        /// owner, admin, staff or viewer.
        #[arg(long, default_value = "owner")]
        role: String,
        #[arg(long)]
        password_file: Option<PathBuf>,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Block (or with --unblock, unblock) a voucher by its code.
    BlockVoucher {
        #[arg(long)]
        code: String,
        #[arg(long)]
        unblock: bool,
        #[command(flatten)]
        db: DbArgs,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn open(db: &DbArgs) -> anyhow::Result<sea_orm::DatabaseConnection> {
    let conn = store::connect(&db.resolved_database_url()?, 4)
        .await
        .context("connecting to the database")?;
    store::migrate(&conn).await.context("applying migrations")?;
    Ok(conn)
}

fn parse_expiry(s: &str) -> anyhow::Result<OffsetDateTime> {
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        return Ok(t);
    }
    let date = Date::parse(s, time::macros::format_description!("[year]-[month]-[day]"))
        .with_context(|| {
            format!("--expires {s:?}: expected YYYY-MM-DD or an RFC 3339 timestamp")
        })?;
    let next = date.next_day().context("date out of range")?;
    Ok(next.with_time(Time::MIDNIGHT).assume_utc())
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve(args) => {
            telemetry::init(&args.log_format);
            let app = Application::build(args).await?;
            app.run_until_stopped().await?;
        }
        Command::Worker(args) => {
            telemetry::init(&args.log_format);
            worker::run_standalone(args).await?;
        }
        Command::Migrate(db) => {
            open(&db).await?;
            eprintln!("migrations applied");
        }
        Command::Openapi { out } => {
            let spec = superpayment_backend::api::spec_json(&AppState::for_spec());
            match out {
                Some(path) => std::fs::write(&path, spec)
                    .with_context(|| format!("writing {}", path.display()))?,
                None => print!("{spec}"),
            }
        }
        Command::Audit(db) => {
            let conn = open(&db).await?;
            let results = store::ledger::audit(&conn).await?;
            let mut failed = false;
            for (name, violations) in results {
                if violations.is_empty() {
                    println!("ok    {name}");
                } else {
                    failed = true;
                    println!("FAIL  {name} ({} violations)", violations.len());
                    for v in violations.iter().take(20) {
                        println!("        {v}");
                    }
                }
            }
            return Ok(if failed {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            });
        }
        Command::SeedDemo(db) => {
            let conn = open(&db).await?;
            let pepper = db.resolved_pepper()?;
            print!(
                "{}",
                admin::seed_demo(&conn, &pepper)
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?
            );
        }
        Command::Admin(cmd) => return admin_command(cmd).await,
    }
    Ok(ExitCode::SUCCESS)
}

async fn admin_command(cmd: AdminCommand) -> anyhow::Result<ExitCode> {
    let failure = |e: admin::AdminError| anyhow::anyhow!("{}", describe(&e.into()));
    match cmd {
        AdminCommand::CreateMerchant {
            name,
            commission_bps,
            mode,
            db,
        } => {
            let mode = Mode::from_str(&mode)
                .map_err(|_| anyhow::anyhow!("--mode must be test or live"))?;
            let conn = open(&db).await?;
            let m = admin::create_merchant(&conn, &name, commission_bps, mode)
                .await
                .map_err(failure)?;
            println!("merchant_id={}", m.merchant.id);
            println!("publishable_key={}", m.publishable_key.expose());
            println!("secret_key={}", m.secret_key.expose());
            eprintln!("Store the secret key now: it is shown only this once.");
        }
        AdminCommand::CreateUser {
            merchant,
            email,
            role,
            password_file,
            db,
        } => {
            let role = accounts::Role::parse(&role)
                .ok_or_else(|| anyhow::anyhow!("--role must be owner, admin, staff or viewer"))?;
            let (password, generated) = match password_file {
                Some(path) => {
                    let text = if path.as_os_str() == "-" {
                        std::io::read_to_string(std::io::stdin()).context("reading stdin")?
                    } else {
                        std::fs::read_to_string(&path)
                            .with_context(|| format!("reading {}", path.display()))?
                    };
                    let line = text.lines().next().unwrap_or_default().to_owned();
                    (line, false)
                }
                None => (accounts::generate_password(), true),
            };
            let conn = open(&db).await?;
            let user = accounts::create_user(&conn, &merchant, &email, role, &password)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("user_id={}", user.id);
            println!("email={}", user.email);
            println!("role={}", user.role.as_str());
            if generated {
                println!("password={password}");
                eprintln!("Store the password now: it is shown only this once.");
            }
        }
        AdminCommand::CreateKeys { merchant, mode, db } => {
            let mode = Mode::from_str(&mode)
                .map_err(|_| anyhow::anyhow!("--mode must be test or live"))?;
            let conn = open(&db).await?;
            let (pk, sk) = admin::create_keys(&conn, &merchant, mode)
                .await
                .map_err(failure)?;
            println!("publishable_key={}", pk.expose());
            println!("secret_key={}", sk.expose());
        }
        AdminCommand::IssueVouchers {
            currency,
            amount,
            count,
            expires,
            merchant,
            mode,
            min_order,
            single_use,
            db,
        } => {
            let currency =
                Currency::from_str(&currency).map_err(|e| anyhow::anyhow!("--currency: {e}"))?;
            let mode = Mode::from_str(&mode)
                .map_err(|_| anyhow::anyhow!("--mode must be test or live"))?;
            let min_order_minor = min_order
                .map(|m| Money::parse(&m, currency).map(Money::minor))
                .transpose()
                .map_err(|e| anyhow::anyhow!("--min-order: {e}"))?;
            let spec = IssueSpec {
                currency,
                amount,
                count,
                expires_at: expires.as_deref().map(parse_expiry).transpose()?,
                mode,
                rules: VoucherRules {
                    merchants: merchant.map(|m| vec![m]),
                    min_order_minor,
                    single_use,
                },
            };
            let conn = open(&db).await?;
            let pepper = db.resolved_pepper()?;
            let issued = admin::issue_vouchers(&conn, &pepper, spec)
                .await
                .map_err(failure)?;
            println!("id,code,last4,amount,currency,mode,expires_at");
            for v in issued {
                println!(
                    "{},{},{},{},{},{},{}",
                    v.id,
                    v.code.formatted(),
                    v.code.last4(),
                    v.amount,
                    v.amount.currency(),
                    v.mode.as_str(),
                    v.expires_at
                        .map(superpayment_backend::timestamps::rfc3339)
                        .unwrap_or_default()
                );
            }
        }
        AdminCommand::Reencrypt {
            old_key,
            old_key_from_pepper,
            db,
        } => {
            let current = db.resolved_cipher()?;
            let old = match old_key {
                Some(key) => SecretCipher::from_base64(key.expose())
                    .context("--old-key / OLD_ENCRYPTION_KEY")?,
                None if old_key_from_pepper => SecretCipher::derived_from(&db.resolved_pepper()?),
                None => {
                    anyhow::bail!("give --old-key (or OLD_ENCRYPTION_KEY) or --old-key-from-pepper")
                }
            };
            let conn = open(&db).await?;
            let report = reencrypt::reencrypt_all(&conn, &old, &current).await?;
            println!("reencrypted={}", report.reencrypted);
            println!("already_current={}", report.already_current);
            println!("changed_meanwhile={}", report.changed_meanwhile);
            println!("unreadable={}", report.unreadable.len());
            for row in &report.unreadable {
                eprintln!("opens under neither key: {row}");
            }
            if report.changed_meanwhile > 0 {
                eprintln!("Some values changed while this ran: run it again to cover them.");
            }
            if !report.unreadable.is_empty() {
                return Ok(ExitCode::FAILURE);
            }
        }
        AdminCommand::SetHoldPeriod {
            merchant,
            seconds,
            db,
        } => {
            let conn = open(&db).await?;
            admin::set_hold_period(&conn, &merchant, seconds)
                .await
                .map_err(failure)?;
            println!("merchant {merchant} hold period {seconds}s");
        }
        AdminCommand::BlockVoucher { code, unblock, db } => {
            let code = VoucherCode::parse(&code).map_err(|e| anyhow::anyhow!("--code: {e}"))?;
            let conn = open(&db).await?;
            let pepper = db.resolved_pepper()?;
            let id = admin::set_voucher_blocked(&conn, &pepper, &code, !unblock)
                .await
                .map_err(failure)?;
            println!(
                "voucher {id} {}",
                if unblock { "unblocked" } else { "blocked" }
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn describe(e: &superpayment_backend::api::error::ApiError) -> String {
    let body = e.to_body();
    match body.error.param {
        Some(p) => format!("{} ({}): {}", p, body.error.code, body.error.message),
        None => format!("{}: {}", body.error.code, body.error.message),
    }
}
