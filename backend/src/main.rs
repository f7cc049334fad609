//! `superpayment`: serve the API, migrate, audit the ledger, administer merchants and vouchers,
//! print the operator's reports and record payouts.
use std::{path::PathBuf, process::ExitCode, str::FromStr};

use anyhow::Context;
use clap::{Parser, Subcommand};
use poem_openapi::types::ToJSON;
use superpayment_backend::{
    accounts,
    admin::{self, IssueSpec},
    api::reports as api_reports,
    config::{DbArgs, ServeArgs},
    lifecycle::{self, ActivityKind, ActivityRequest, Actor, LifecycleError, Owner},
    payments::{kinds, rules::VoucherRules},
    reports::{
        self, figures,
        payouts::{self, PayoutOutcome, PayoutRequest},
        render, Format, ReportParams,
    },
    secret::Secret,
    startup::Application,
    state::AppState,
    store, telemetry,
    webhooks::{reencrypt, secrets::SecretCipher, worker, WebhookSettings, WorkerArgs},
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
        /// Can be loaded (topped up) after issuance.
        #[arg(long)]
        reloadable: bool,
        /// Issue the vouchers for this merchant id: it manages them with its secret key.
        #[arg(long)]
        issuer: Option<String>,
        /// The voucher kind's rules as JSON, validated against
        /// backend/schemas/voucher-rules.schema.json (instead of --merchant, --min-order,
        /// --single-use, --reloadable and --expires).
        #[arg(long, conflicts_with_all = ["merchant", "min_order", "single_use", "reloadable", "expires"])]
        rules: Option<String>,
        #[command(flatten)]
        db: DbArgs,
    },
    /// A voucher's lifecycle, by its id: activities and history.
    Voucher {
        #[command(subcommand)]
        action: VoucherAction,
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
    /// Print an operator report computed from the ledger: `liability` (per currency, as of
    /// --to), `commission` or `settlement` (per merchant and currency over [--from, --to)).
    Report {
        #[arg(value_enum)]
        report: ReportKind,
        /// Start (inclusive): a UTC date (its midnight) or an RFC 3339 timestamp.
        #[arg(long)]
        from: Option<String>,
        /// End (exclusive), or the liability's point in time: a UTC date (its midnight) or
        /// an RFC 3339 timestamp; absent = now.
        #[arg(long)]
        to: Option<String>,
        /// Only this merchant (commission, settlement).
        #[arg(long)]
        merchant: Option<String>,
        #[arg(long, default_value = "test")]
        mode: String,
        /// json or csv.
        #[arg(long, default_value = "json")]
        format: String,
        /// Settlement: every journal of each statement (CSV: one row per journal).
        #[arg(long)]
        lines: bool,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Record a payout of a merchant's payable (a ledger journal to the payouts clearing
    /// account); refused above what the merchant is owed.
    Payout {
        #[arg(long)]
        merchant: String,
        #[arg(long)]
        currency: String,
        /// Decimal amount, e.g. 10.00.
        #[arg(long)]
        amount: String,
        /// The bank transfer's reference.
        #[arg(long)]
        reference: String,
        #[arg(long, default_value = "test")]
        mode: String,
        /// Makes a retry safe: the same key and payout within 24 h is recorded once.
        #[arg(long)]
        idempotency_key: Option<String>,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Recognise breakage: move what expired active vouchers still hold from the voucher
    /// liability to breakage (one journal per currency). Safe to run again: an emptied
    /// voucher is not taken twice.
    RecogniseBreakage {
        #[arg(long, default_value = "test")]
        mode: String,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Override the gateway's request limits for one merchant (requests per minute; 0 turns
    /// a limit off for it; a limit not given goes back to the server's default). Instances
    /// apply it within KEY_CACHE_TTL.
    SetLimits {
        #[arg(long)]
        merchant: String,
        /// Payments per client address (default PAY_RATE_LIMIT_PER_CLIENT).
        #[arg(long)]
        pay_per_client: Option<u32>,
        /// Payments per API key (default PAY_RATE_LIMIT_PER_KEY).
        #[arg(long)]
        pay_per_key: Option<u32>,
        /// Voucher checks per API key and client address (default CHECK_RATE_LIMIT).
        #[arg(long)]
        checks: Option<u32>,
        /// Requests per secret key on the merchant's server routes (default
        /// API_RATE_LIMIT_PER_KEY); the lower budget of expensive operations stays.
        #[arg(long)]
        api_per_key: Option<u32>,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Set where a merchant's notification emails go (new API keys, a webhook endpoint
    /// disabled); `--clear` removes the address, and then no email is queued.
    SetNotifyEmail {
        #[arg(long)]
        merchant: String,
        #[arg(long, required_unless_present = "clear", conflicts_with = "clear")]
        email: Option<String>,
        #[arg(long)]
        clear: bool,
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

#[derive(Subcommand)]
enum VoucherAction {
    /// Adjust the balance up (or with --down, down) by --amount; a reason is required.
    Adjust {
        #[arg(long)]
        id: String,
        #[arg(long)]
        amount: String,
        #[arg(long)]
        down: bool,
        #[arg(long)]
        reason: String,
    },
    /// Load (top up) a reloadable voucher by --amount.
    Load {
        #[arg(long)]
        id: String,
        #[arg(long)]
        amount: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Block the voucher: it cannot pay until unblocked.
    Block {
        #[arg(long)]
        id: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Unblock a blocked voucher.
    Unblock {
        #[arg(long)]
        id: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Activate an inactive voucher.
    Activate {
        #[arg(long)]
        id: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Deactivate an active voucher: it cannot pay until activated.
    Deactivate {
        #[arg(long)]
        id: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Clear the balance (written off); a reason is required.
    Clear {
        #[arg(long)]
        id: String,
        #[arg(long)]
        reason: String,
    },
    /// Print the voucher's history as JSON, oldest first.
    History {
        #[arg(long)]
        id: String,
    },
}

impl VoucherAction {
    /// The activity asked for; None for `history`.
    fn request(self) -> Result<ActivityRequest, String> {
        let (id, kind, amount, reason) = match self {
            VoucherAction::Adjust {
                id,
                amount,
                down,
                reason,
            } => (
                id,
                if down {
                    ActivityKind::AdjustDecrement
                } else {
                    ActivityKind::AdjustIncrement
                },
                Some(amount),
                Some(reason),
            ),
            VoucherAction::Load { id, amount, reason } => {
                (id, ActivityKind::Load, Some(amount), reason)
            }
            VoucherAction::Block { id, reason } => (id, ActivityKind::Block, None, reason),
            VoucherAction::Unblock { id, reason } => (id, ActivityKind::Unblock, None, reason),
            VoucherAction::Activate { id, reason } => (id, ActivityKind::Activate, None, reason),
            VoucherAction::Deactivate { id, reason } => {
                (id, ActivityKind::Deactivate, None, reason)
            }
            VoucherAction::Clear { id, reason } => {
                (id, ActivityKind::ClearBalance, None, Some(reason))
            }
            VoucherAction::History { id } => return Err(id),
        };
        Ok(ActivityRequest {
            voucher_id: id,
            kind: kind.as_str().into(),
            amount,
            reason,
        })
    }
}

/// The operator reports.
#[derive(Clone, Copy, clap::ValueEnum)]
enum ReportKind {
    Liability,
    Commission,
    Settlement,
}

/// A request allocates a few hundred small blocks (headers, JSON, SQL values); mimalloc
/// serves them from per-thread pages in a few dozen instructions each, where glibc's
/// malloc spent over a quarter of a payment's instructions (bench/README.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
            let mut results = store::ledger::audit(&conn).await?;
            results.extend(reports::audit::audit(&conn).await?);
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
            reloadable,
            issuer,
            rules,
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
            let (rules, expires_at) = match rules {
                Some(json) => {
                    let value: serde_json::Value =
                        serde_json::from_str(&json).context("--rules is not JSON")?;
                    let kind = kinds::parse(&value, currency)
                        .map_err(|e| anyhow::anyhow!("--rules: {} ({})", e.message, e.field))?;
                    (kind.rules, kind.expires_at)
                }
                None => (
                    VoucherRules {
                        merchants: merchant.map(|m| vec![m]),
                        min_order_minor,
                        single_use,
                        reloadable,
                        expires_after_first_use_days: None,
                        pin_required: false,
                    },
                    expires.as_deref().map(parse_expiry).transpose()?,
                ),
            };
            let spec = IssueSpec {
                currency,
                amount,
                count,
                expires_at,
                mode,
                rules,
                issuer_merchant_id: issuer,
            };
            let conn = open(&db).await?;
            let pepper = db.resolved_pepper()?;
            let issued = admin::issue_vouchers(&conn, &pepper, spec)
                .await
                .map_err(failure)?;
            // The PIN column comes last, and only for kinds with PINs: older readers of
            // this CSV keep their columns.
            let with_pins = issued.iter().any(|v| v.pin.is_some());
            println!(
                "id,code,last4,amount,currency,mode,expires_at{}",
                if with_pins { ",pin" } else { "" }
            );
            for v in issued {
                println!(
                    "{},{},{},{},{},{},{}{}",
                    v.id,
                    v.code.formatted(),
                    v.code.last4(),
                    v.amount,
                    v.amount.currency(),
                    v.mode.as_str(),
                    v.expires_at
                        .map(superpayment_backend::timestamps::rfc3339)
                        .unwrap_or_default(),
                    v.pin
                        .map(|p| format!(",{}", p.expose()))
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
        AdminCommand::Voucher { action, db } => {
            let conn = open(&db).await?;
            let lifecycle_failure = |e: LifecycleError| anyhow::anyhow!("{}", describe(&e.into()));
            match action.request() {
                Ok(req) => {
                    let a = lifecycle::record_direct(&conn, Actor::Admin, req)
                        .await
                        .map_err(lifecycle_failure)?;
                    println!(
                        "voucher {} {} {} {}: balance {} {}, status {}",
                        a.voucher_id, a.kind, a.amount, a.currency, a.balance, a.currency, a.status
                    );
                }
                Err(id) => {
                    let h = lifecycle::history(&conn, &Owner::Operator, &id)
                        .await
                        .map_err(lifecycle_failure)?;
                    println!("{}", serde_json::to_string_pretty(&h)?);
                }
            }
        }
        AdminCommand::Report {
            report,
            from,
            to,
            merchant,
            mode,
            format,
            lines,
            db,
        } => {
            let p = ReportParams::parse(from.as_deref(), to.as_deref(), Some(&mode), Some(&format))
                .map_err(|e| anyhow::anyhow!("{}", describe(&e.into())))?;
            let conn = open(&db).await?;
            let failed = |e: reports::ReportError| anyhow::anyhow!("{}", describe(&e.into()));
            let out = std::io::stdout().lock();
            let json = match report {
                ReportKind::Liability => {
                    let r = figures::liability(&conn, p.mode, p.period.to)
                        .await
                        .map_err(failed)?;
                    match p.format {
                        Format::Csv => {
                            return render::liability_csv(&r, out).map(|()| ExitCode::SUCCESS)
                        }
                        Format::Json => api_reports::liability_body(&r)?.to_json(),
                    }
                }
                ReportKind::Commission => {
                    let r = figures::commission(&conn, p.mode, p.period, merchant.as_deref())
                        .await
                        .map_err(failed)?;
                    match p.format {
                        Format::Csv => {
                            return render::commission_csv(&r, out).map(|()| ExitCode::SUCCESS)
                        }
                        Format::Json => api_reports::commission_body(&r)?.to_json(),
                    }
                }
                ReportKind::Settlement => {
                    let r =
                        figures::settlement(&conn, p.mode, p.period, merchant.as_deref(), lines)
                            .await
                            .map_err(failed)?;
                    match p.format {
                        Format::Csv => {
                            return render::settlement_csv(&r, lines, out)
                                .map(|()| ExitCode::SUCCESS)
                        }
                        Format::Json => api_reports::settlement_body(&r, lines)?.to_json(),
                    }
                }
            };
            println!(
                "{}",
                serde_json::to_string_pretty(&json.unwrap_or_default())?
            );
        }
        AdminCommand::Payout {
            merchant,
            currency,
            amount,
            reference,
            mode,
            idempotency_key,
            db,
        } => {
            let conn = open(&db).await?;
            let state = AppState {
                reads: std::sync::Arc::new(superpayment_backend::replica::ReadPools::new(
                    conn.clone(),
                    None,
                )),
                db: conn,
                webhooks: WebhookSettings {
                    cipher: db.resolved_cipher()?,
                    ..WebhookSettings::for_spec()
                },
                ..AppState::for_spec()
            };
            let req = PayoutRequest {
                merchant_id: merchant,
                mode: Some(mode),
                currency,
                amount,
                reference,
                idempotency_key,
            };
            let (receipt, replayed) = match payouts::record(&state, req)
                .await
                .map_err(|e| anyhow::anyhow!("{}", describe(&e.into())))?
            {
                PayoutOutcome::Recorded(r) => (r, false),
                PayoutOutcome::Replayed(r) => (r, true),
            };
            println!("payout_id={}", receipt.id);
            println!("amount={} {}", receipt.amount, receipt.currency);
            println!("payable_before={}", receipt.payable_before);
            println!("payable_after={}", receipt.payable_after);
            if replayed {
                eprintln!("Already recorded under this idempotency key: nothing was paid again.");
            }
        }
        AdminCommand::RecogniseBreakage { mode, db } => {
            let mode = Mode::from_str(&mode)
                .map_err(|_| anyhow::anyhow!("--mode must be test or live"))?;
            let conn = open(&db).await?;
            let done = reports::breakage::recognise_expired(&conn, mode, OffsetDateTime::now_utc())
                .await?;
            println!("vouchers={}", done.vouchers);
            for (currency, minor) in &done.amounts {
                println!(
                    "breakage {}={}",
                    currency.code(),
                    superpayment_backend::money::format_minor(*minor, *currency)?
                );
            }
        }
        AdminCommand::SetLimits {
            merchant,
            pay_per_client,
            pay_per_key,
            checks,
            api_per_key,
            db,
        } => {
            let conn = open(&db).await?;
            let limits = admin::LimitOverrides {
                pay_per_client,
                pay_per_key,
                checks,
                api_per_key,
            };
            admin::set_rate_limits(&conn, &merchant, limits)
                .await
                .map_err(failure)?;
            let shown = |v: Option<u32>| v.map_or("default".to_owned(), |n| n.to_string());
            println!(
                "merchant {merchant} limits: pay_per_client={} pay_per_key={} checks={} api_per_key={}",
                shown(pay_per_client),
                shown(pay_per_key),
                shown(checks),
                shown(api_per_key)
            );
        }
        AdminCommand::SetNotifyEmail {
            merchant,
            email,
            clear: _,
            db,
        } => {
            let conn = open(&db).await?;
            admin::set_notify_email(&conn, &merchant, email.as_deref())
                .await
                .map_err(failure)?;
            match email {
                Some(e) => println!("merchant {merchant} notification email {}", e.trim()),
                None => println!("merchant {merchant} notification email cleared"),
            }
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
