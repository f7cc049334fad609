//! Breakage recognition: the balances left on expired vouchers leave the liability for
//! breakage income, one journal per currency and batch.
//!
//! Only active vouchers are taken (a blocked voucher may be under investigation; a used
//! single-use voucher's remainder was forfeited when it paid). Each voucher is emptied by a
//! conditional update on the balance read under its lock, in the same database transaction
//! as the `expiry_breakage` journal (voucher liability to `breakage:<mode>:<cur>`, per
//! voucher), so a run that races a refund or another run takes each balance at most once.
//! A refund of an earlier payment onto an expired voucher is credited to a newly issued
//! voucher, as always, so the recognised breakage is never given back.
use std::collections::BTreeMap;

use sea_orm::DatabaseConnection;
use superpayment_core::{Currency, Mode};
use time::OffsetDateTime;

use crate::store::{
    self,
    ledger::{Account, Lines},
};

/// Vouchers taken per database transaction.
const BATCH: u64 = 500;

/// What a run recognised.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recognised {
    pub vouchers: u64,
    /// Amount per currency, in minor units.
    pub amounts: BTreeMap<Currency, i64>,
}

/// Moves the balances of `mode`'s vouchers expired at `now` to breakage.
#[tracing::instrument(skip(db))]
pub async fn recognise_expired(
    db: &DatabaseConnection,
    mode: Mode,
    now: OffsetDateTime,
) -> anyhow::Result<Recognised> {
    let mut out = Recognised::default();
    loop {
        let tx = store::begin(db).await?;
        let batch =
            store::breakage::lock_expired_with_balance(&tx, mode.as_str(), now, BATCH).await?;
        if batch.is_empty() {
            tx.rollback().await?;
            break;
        }
        let mut journals: BTreeMap<Currency, Lines> = BTreeMap::new();
        let mut taken = 0;
        for v in &batch {
            if !store::breakage::take_balance(&tx, v.id, v.balance_minor, now).await? {
                continue;
            }
            taken += 1;
            let currency = v.currency.0;
            journals
                .entry(currency)
                .or_insert_with(|| Lines::new(mode.as_str(), currency.code()))
                .add(
                    Account::VoucherLiability { voucher_id: v.id },
                    -v.balance_minor,
                )
                .add(Account::Breakage { voucher_id: v.id }, v.balance_minor);
            let total = out.amounts.entry(currency).or_insert(0);
            *total = total
                .checked_add(v.balance_minor)
                .ok_or_else(|| anyhow::anyhow!("breakage total overflows"))?;
        }
        for lines in journals.values() {
            store::ledger::post(&tx, "expiry_breakage", None, lines, now).await?;
        }
        tx.commit().await?;
        out.vouchers += taken;
        if taken == 0 {
            // Every candidate changed under us; the next run takes them.
            break;
        }
    }
    tracing::info!(vouchers = out.vouchers, "breakage recognised");
    Ok(out)
}
