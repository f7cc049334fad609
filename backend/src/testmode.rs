//! Magic test voucher codes: fixed test-mode vouchers that every integrator can use to try
//! each path of a payment without issuing anything (documented in docs/integration.md).
//!
//! They are real voucher rows (created at start-up, test mode only, so a live key never
//! sees them) and go through the ordinary payment code. Outside a payment, a magic voucher
//! holds exactly its nominal balance: before a test-mode request uses one it is topped
//! back up, and after a refund credits one it gives back what the refund returned on top
//! of that (an earlier top-up had already replaced the money the refund returns). Either
//! way a `test_top_up` journal moves its face value with its balance, so "always works"
//! and "holds exactly 5.00" hold without breaking any ledger invariant.
use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr};
use superpayment_core::{Currency, Mode, VoucherCode, VoucherRef};
use time::{macros::datetime, OffsetDateTime};

use crate::store::entities::text::AsText;
use crate::{
    auth::Caller,
    crypto::voucher_hmac,
    secret::Secret,
    state::AppState,
    store::{
        self,
        entities::voucher::{self, VoucherState},
        ledger::{Account, Lines},
    },
};

/// One magic voucher.
#[derive(Debug, Clone, Copy)]
pub struct MagicVoucher {
    /// The code, as documented.
    pub code: &'static str,
    /// EUR minor units it always holds.
    pub balance_minor: i64,
    pub status: VoucherState,
    pub expired: bool,
}

/// The magic codes (all EUR, test mode only).
pub const MAGIC_VOUCHERS: [MagicVoucher; 4] = [
    // Always pays: 1,000,000.00 EUR, refilled before every use.
    MagicVoucher {
        code: "TEST-4242-4242-424X",
        balance_minor: 100_000_000,
        status: VoucherState::Active,
        expired: false,
    },
    // Holds 5.00 EUR: larger orders are declined with insufficient_balance.
    MagicVoucher {
        code: "TEST-5000-0000-0004",
        balance_minor: 500,
        status: VoucherState::Active,
        expired: false,
    },
    // Expired: voucher_expired.
    MagicVoucher {
        code: "TEST-EXP1-RED0-000M",
        balance_minor: 10_000,
        status: VoucherState::Active,
        expired: true,
    },
    // Blocked: voucher_blocked.
    MagicVoucher {
        code: "TEST-B10C-KED0-000Q",
        balance_minor: 10_000,
        status: VoucherState::Blocked,
        expired: false,
    },
];

fn magic_hmacs(pepper: &Secret<String>) -> Vec<(MagicVoucher, String)> {
    MAGIC_VOUCHERS
        .iter()
        .map(|m| {
            let code = VoucherCode::parse(m.code).expect("magic codes are valid codes");
            (*m, voucher_hmac(pepper, &code))
        })
        .collect()
}

/// Creates the magic vouchers that do not exist yet (idempotent; safe with several
/// instances starting at once).
pub async fn ensure_magic_vouchers(
    db: &DatabaseConnection,
    pepper: &Secret<String>,
) -> anyhow::Result<()> {
    for (magic, hmac) in magic_hmacs(pepper) {
        if store::vouchers::find_by_hmac(db, &hmac).await?.is_some() {
            continue;
        }
        let now = OffsetDateTime::now_utc();
        let code = VoucherCode::parse(magic.code).expect("magic codes are valid codes");
        let tx = store::begin(db).await?;
        let inserted = store::vouchers::insert_many(
            &tx,
            vec![voucher::Model {
                id: 0,
                code_hmac: hmac,
                last4: code.last4().into(),
                mode: AsText(Mode::Test),
                currency: AsText(Currency::EUR),
                initial_minor: magic.balance_minor,
                balance_minor: magic.balance_minor,
                status: magic.status,
                expires_at: magic.expired.then_some(datetime!(2020-01-01 0:00 UTC)),
                rules: serde_json::json!({}),
                created_at: now,
                updated_at: now,
                issuer_merchant_id: None,
                first_used_at: None,
                pin_hash: None,
            }],
        )
        .await;
        let id = match inserted {
            Ok(ids) => ids[0],
            Err(e) if store::violates(&e, store::Unique::VoucherCode) => {
                tx.rollback().await?;
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        store::ledger::post(
            &tx,
            "issue",
            None,
            &issue_lines(id, magic.balance_minor),
            now,
        )
        .await?;
        tx.commit().await?;
    }
    Ok(())
}

fn issue_lines(voucher_id: i64, amount: i64) -> Lines {
    let mut lines = Lines::new(Mode::Test.as_str(), "EUR");
    lines
        .add(Account::VoucherLiability { voucher_id }, amount)
        .add(Account::VoucherFloat, -amount);
    lines
}

/// Sets the magic vouchers among `vouchers` back to their nominal balance before a
/// test-mode request uses them. Does nothing for live keys or ordinary codes.
pub async fn refill_magic(
    state: &AppState,
    caller: &Caller,
    vouchers: &[VoucherRef],
) -> anyhow::Result<()> {
    if caller.mode != Mode::Test {
        return Ok(());
    }
    for v in vouchers {
        if let VoucherRef::Code(code) = v {
            refill_code(state, code).await?;
        }
    }
    Ok(())
}

/// [`refill_magic`] for a single code (balance checks).
pub async fn refill_magic_code(
    state: &AppState,
    caller: &Caller,
    code: &VoucherCode,
) -> anyhow::Result<()> {
    if caller.mode != Mode::Test {
        return Ok(());
    }
    refill_code(state, code).await
}

async fn refill_code(state: &AppState, code: &VoucherCode) -> anyhow::Result<()> {
    let Some(magic) = MAGIC_VOUCHERS
        .iter()
        .find(|m| VoucherCode::parse(m.code).is_ok_and(|c| &c == code))
    else {
        return Ok(());
    };
    let hmac = voucher_hmac(&state.pepper, code);
    let tx = store::begin(&state.db).await?;
    let row = store::vouchers::lock_by_hmacs(&tx, &[hmac]).await?.pop();
    let Some(row) = row.filter(|r| r.mode.0 == Mode::Test) else {
        tx.rollback().await?;
        return Ok(());
    };
    if hold_at_nominal(&tx, &row, *magic).await? {
        tx.commit().await?;
    } else {
        tx.rollback().await?;
    }
    Ok(())
}

/// After a refund credited `vouchers` (locked by the refund's database transaction), sets
/// the magic ones among them back to their nominal balance. Ordinary vouchers cost no query.
pub async fn settle_after_refund(
    db: &impl ConnectionTrait,
    pepper: &Secret<String>,
    vouchers: &[voucher::Model],
) -> Result<(), DbErr> {
    let magic: Vec<(i64, MagicVoucher)> = magic_hmacs(pepper)
        .into_iter()
        .filter_map(|(magic, hmac)| {
            vouchers
                .iter()
                .find(|v| v.code_hmac == hmac && v.mode.0 == Mode::Test)
                .map(|v| (v.id, magic))
        })
        .collect();
    if magic.is_empty() {
        return Ok(());
    }
    let ids: Vec<i64> = magic.iter().map(|(id, _)| *id).collect();
    // Read again: the refund has just credited them.
    for row in store::refunds::lock_vouchers(db, &ids).await? {
        if let Some((_, m)) = magic.iter().find(|(id, _)| *id == row.id) {
            hold_at_nominal(db, &row, *m).await?;
        }
    }
    Ok(())
}

/// Moves a magic voucher's balance, and its face value with it, to its nominal balance,
/// with a balanced `test_top_up` journal (voucher float against the voucher's liability).
/// False when it already held exactly that.
async fn hold_at_nominal(
    db: &impl ConnectionTrait,
    row: &voucher::Model,
    magic: MagicVoucher,
) -> Result<bool, DbErr> {
    let delta = magic.balance_minor - row.balance_minor;
    if delta == 0 {
        return Ok(false);
    }
    let now = OffsetDateTime::now_utc();
    store::refunds::top_up_voucher(db, row.id, delta, now).await?;
    store::ledger::post(db, "test_top_up", None, &issue_lines(row.id, delta), now).await?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_magic_codes_are_valid_and_distinct() {
        let mut last4: Vec<String> = MAGIC_VOUCHERS
            .iter()
            .map(|m| VoucherCode::parse(m.code).unwrap().last4().to_owned())
            .collect();
        last4.sort();
        last4.dedup();
        assert_eq!(last4.len(), MAGIC_VOUCHERS.len());
    }
}
