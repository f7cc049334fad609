//! The reliability driver: sets up a shop, pays thousands of payments across N instances the
//! way shoppers and the widget do (duplicate keys, double clicks, hot vouchers, retries),
//! records every client answer, and checks them against the database and the webhook receiver.
//!
//! Layout:
//! - `setup`: merchant, vouchers and webhook endpoint through the admin and merchant API.
//! - `load`: the payments; every HTTP answer is appended to an answers file.
//! - `check`: the invariants after recovery, read from PostgreSQL, the receiver's log,
//!   `superpayment audit` and the answers; exits 1 on any violation.
//! - `guess`: random codes from one client address until the lockout, then a shopper
//!   elsewhere pays.
mod check;
mod guess;
mod load;
mod setup;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "superpayment-reliability", about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create the merchant, its vouchers and its webhook endpoint; write the state file.
    Setup(setup::SetupArgs),
    /// Send payments across the base URLs; append every answer to the answers file.
    Load(load::LoadArgs),
    /// Check every invariant after recovery; print the figures; exit 1 on a violation.
    Check(check::CheckArgs),
    /// Guess random codes from one client address, then pay from another.
    Guess(guess::GuessArgs),
}

/// The state `setup` writes and the other commands read: the shop and its vouchers.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct State {
    pub merchant_id: String,
    pub publishable_key: String,
    pub secret_key: String,
    pub webhook_secret: String,
    /// Plenty of balance each: most payments succeed.
    pub codes: Vec<String>,
    /// A few vouchers many payments compete for: they run dry, so declines happen too.
    pub hot_codes: Vec<String>,
}

impl State {
    pub fn read(path: &PathBuf) -> anyhow::Result<State> {
        Ok(serde_json::from_slice(&std::fs::read(path)?)?)
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Setup(a) => setup::run(a).await,
        Command::Load(a) => load::run(a).await,
        Command::Check(a) => {
            let violations = check::run(a).await?;
            if violations > 0 {
                std::process::exit(1);
            }
            Ok(())
        }
        Command::Guess(a) => guess::run(a).await,
    }
}
