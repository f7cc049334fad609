//! Every report checked against the ledger and the business tables, computed two
//! independent ways so that a bug in either shows: the reports from the postings
//! ([`super::figures`]), the other side from the voucher, payment, refund and payout tables
//! or from the accounts' own totals.
use std::collections::BTreeMap;

use sea_orm::ConnectionTrait;
use superpayment_core::Mode;

use super::figures;
use crate::store::{
    self,
    ledger::{AccountClass, AccountName},
    reports::BusinessTotals,
};

type Key = (String, String, String);

fn compare(
    out: &mut Vec<String>,
    what: &str,
    report: &BTreeMap<Key, i64>,
    other: &BTreeMap<Key, i64>,
) {
    let keys: std::collections::BTreeSet<&Key> = report.keys().chain(other.keys()).collect();
    for k in keys {
        let (a, b) = (
            report.get(k).copied().unwrap_or(0),
            other.get(k).copied().unwrap_or(0),
        );
        if a != b {
            out.push(format!(
                "{what} of {} {} {}: report {a} but {b}",
                k.0, k.1, k.2
            ));
        }
    }
}

/// Runs every report check (as of now, over all history); returns (check name,
/// violations) pairs like [`store::ledger::audit`].
pub async fn audit(db: &impl ConnectionTrait) -> anyhow::Result<Vec<(&'static str, Vec<String>)>> {
    let mut adds_up = Vec::new();
    let mut liability_vs_vouchers = Vec::new();
    let mut statements_add_up = Vec::new();
    let mut settlement_vs_business = Vec::new();
    let mut settlement_vs_accounts = Vec::new();
    let mut commission_vs_business = Vec::new();
    let mut commission_vs_account = Vec::new();

    let business = store::reports::business_totals(db).await?;
    let vouchers: BTreeMap<(String, String), i64> = store::reports::voucher_totals(db)
        .await?
        .into_iter()
        .map(|v| ((v.mode, v.currency), v.total))
        .collect();

    for mode in [Mode::Test, Mode::Live] {
        let m = mode.as_str();
        let liability = figures::liability(db, mode, None)
            .await
            .map_err(|e| anyhow::anyhow!("liability report: {e}"))?;
        let mut reported = BTreeMap::new();
        for (currency, f) in &liability.currencies {
            if f.issued - f.redeemed + f.refunded - f.breakage + f.other != f.outstanding {
                adds_up.push(format!("{m} {currency}: {f:?}"));
            }
            reported.insert(
                (String::new(), m.to_owned(), currency.code().to_owned()),
                f.outstanding,
            );
        }
        let held: BTreeMap<Key, i64> = vouchers
            .iter()
            .filter(|((mode, _), _)| mode == m)
            .map(|((mode, c), t)| ((String::new(), mode.clone(), c.clone()), *t))
            .collect();
        compare(
            &mut liability_vs_vouchers,
            "outstanding liability",
            &reported,
            &held,
        );

        let settlement = figures::settlement(db, mode, Default::default(), None, false)
            .await
            .map_err(|e| anyhow::anyhow!("settlement report: {e}"))?;
        let mut closing = BTreeMap::new();
        for s in &settlement.statements {
            let f = &s.figures;
            if f.opening + f.sales - f.commission - f.refunds + f.commission_returned - f.payouts
                + f.other
                != f.closing
            {
                statements_add_up.push(format!("{} {m} {}: {f:?}", s.merchant_id, s.currency));
            }
            closing.insert(
                (
                    s.merchant_id.clone(),
                    m.to_owned(),
                    s.currency.code().to_owned(),
                ),
                f.closing,
            );
        }
        let owed: BTreeMap<Key, i64> = business
            .iter()
            .filter(|(k, _)| k.1 == m)
            .map(|(k, t): (&Key, &BusinessTotals)| {
                (k.clone(), t.sales_net - t.refund_net - t.paid_out)
            })
            .collect();
        compare(
            &mut settlement_vs_business,
            "closing payable",
            &closing,
            &owed,
        );

        let mut accounts = BTreeMap::new();
        let mut commission_account = BTreeMap::new();
        for total in store::reports::account_totals(db, m, None, None).await? {
            let Some(name) = AccountName::parse(&total.account).filter(|n| n.mode == m) else {
                continue;
            };
            match (name.class, name.merchant_id) {
                (Some(AccountClass::MerchantPayable), Some(merchant)) => {
                    accounts.insert(
                        (merchant.to_owned(), m.to_owned(), name.currency.to_owned()),
                        total.total,
                    );
                }
                (Some(AccountClass::PlatformCommission), _) => {
                    commission_account.insert(
                        (String::new(), m.to_owned(), name.currency.to_owned()),
                        total.total,
                    );
                }
                _ => {}
            }
        }
        compare(
            &mut settlement_vs_accounts,
            "closing payable",
            &closing,
            &accounts,
        );

        let commission = figures::commission(db, mode, Default::default(), None)
            .await
            .map_err(|e| anyhow::anyhow!("commission report: {e}"))?;
        let mut per_merchant = BTreeMap::new();
        let mut per_currency = BTreeMap::new();
        for (merchant, currency, f) in &commission.lines {
            per_merchant.insert(
                (merchant.clone(), m.to_owned(), currency.code().to_owned()),
                f.net,
            );
            *per_currency
                .entry((String::new(), m.to_owned(), currency.code().to_owned()))
                .or_insert(0) += f.net;
        }
        let earned: BTreeMap<Key, i64> = business
            .iter()
            .filter(|(k, _)| k.1 == m)
            .map(|(k, t)| (k.clone(), t.sales_commission - t.refund_commission))
            .collect();
        compare(
            &mut commission_vs_business,
            "net commission",
            &per_merchant,
            &earned,
        );
        compare(
            &mut commission_vs_account,
            "net commission",
            &per_currency,
            &commission_account,
        );
    }
    Ok(vec![
        (
            "the liability report adds up: issued - redeemed + refunded - breakage + other = outstanding",
            adds_up,
        ),
        (
            "the liability report equals the vouchers' balances plus open holds",
            liability_vs_vouchers,
        ),
        (
            "each settlement statement adds up from its opening to its closing payable",
            statements_add_up,
        ),
        (
            "each settlement statement closes at the sales' net less refunds' net and payouts",
            settlement_vs_business,
        ),
        (
            "the settlement statements' closing payables equal the payable accounts' balances",
            settlement_vs_accounts,
        ),
        (
            "the commission report equals the sales' commission less what refunds returned",
            commission_vs_business,
        ),
        (
            "the commission report equals the commission account's movements",
            commission_vs_account,
        ),
    ])
}
