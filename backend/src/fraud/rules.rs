//! The velocity rules: what the screener knows about one payment, and which rules it breaks.
//!
//! Pure functions over [`Facts`] the store gathered, so each rule is tested on its own.
use std::time::Duration;

/// Which rule a payment broke; stored and sent as its `rule` name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rule {
    /// One voucher paid at several merchants within minutes: a code that leaked and is
    /// being spent by whoever found it.
    VoucherAtManyMerchants,
    /// Many declined attempts from the client address or the API key before this success:
    /// codes being guessed until one works.
    ManyDeclines,
    /// Several payments from one client address that each left a voucher just above zero:
    /// balances drained by someone who knows them.
    AmountsJustUnderBalance,
}

impl Rule {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::VoucherAtManyMerchants => "voucher_at_many_merchants",
            Self::ManyDeclines => "many_declines",
            Self::AmountsJustUnderBalance => "amounts_just_under_balance",
        }
    }
}

/// The rules' thresholds (`FRAUD_*`); a threshold of 0 turns its rule off.
#[derive(Clone, Debug)]
pub struct Rules {
    /// Distinct merchants one voucher paid within `spread_window` (this payment included).
    pub spread_merchants: u32,
    pub spread_window: Duration,
    /// Block a voucher that breaks the spread rule, so its next payment is declined.
    pub spread_blocks_voucher: bool,
    /// Declines from the payment's client address within `decline_window` before it.
    pub declines_per_client: u32,
    /// Declines with the payment's API key (every shopper of a shop) within `decline_window`.
    pub declines_per_key: u32,
    pub decline_window: Duration,
    /// Payments from one client address within `near_balance_window` (this one included)
    /// that each left a voucher above zero and at most `near_balance_percent` % of what it
    /// held before.
    pub near_balance_payments: u32,
    pub near_balance_percent: u32,
    pub near_balance_window: Duration,
}

/// One voucher of the payment.
#[derive(Clone, Debug)]
pub struct VoucherFacts {
    pub voucher_id: i64,
    pub last4: String,
    /// Distinct merchants it paid within the spread window, this payment's included.
    pub merchants: u32,
}

/// One voucher's part of a payment from the same client address within the window.
#[derive(Clone, Debug)]
pub struct Redemption {
    pub transaction_id: String,
    pub amount_minor: i64,
    pub balance_after_minor: i64,
}

/// What the store knows about one successful payment, within each rule's window.
#[derive(Clone, Debug, Default)]
pub struct Facts {
    pub vouchers: Vec<VoucherFacts>,
    pub declines_from_client: u32,
    pub declines_from_key: u32,
    /// Redemptions of the client's payments within the near-balance window, this one's included.
    pub client_redemptions: Vec<Redemption>,
}

/// A broken rule: what to tell the merchant, and the vouchers to block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub rule: Rule,
    pub detail: String,
    pub block: Vec<(i64, String)>,
}

/// Whether a redemption left its voucher above zero and at most `percent` % of what it
/// held before the payment.
pub fn just_under_balance(amount_minor: i64, balance_after_minor: i64, percent: u32) -> bool {
    let before = i128::from(amount_minor) + i128::from(balance_after_minor);
    balance_after_minor > 0 && i128::from(balance_after_minor) * 100 <= i128::from(percent) * before
}

/// Every rule the payment breaks, in a fixed order.
pub fn evaluate(rules: &Rules, facts: &Facts) -> Vec<Finding> {
    let mut found = Vec::new();
    if rules.spread_merchants > 0 {
        let spread: Vec<&VoucherFacts> = facts
            .vouchers
            .iter()
            .filter(|v| v.merchants >= rules.spread_merchants)
            .collect();
        if !spread.is_empty() {
            let detail = spread
                .iter()
                .map(|v| {
                    format!(
                        "voucher ending {} paid at {} merchants within {}",
                        v.last4,
                        v.merchants,
                        humantime::format_duration(rules.spread_window)
                    )
                })
                .collect::<Vec<_>>()
                .join("; ");
            found.push(Finding {
                rule: Rule::VoucherAtManyMerchants,
                detail,
                block: if rules.spread_blocks_voucher {
                    spread
                        .iter()
                        .map(|v| (v.voucher_id, v.last4.clone()))
                        .collect()
                } else {
                    Vec::new()
                },
            });
        }
    }
    let window = humantime::format_duration(rules.decline_window);
    let mut declines = Vec::new();
    if rules.declines_per_client > 0 && facts.declines_from_client >= rules.declines_per_client {
        declines.push(format!(
            "{} declined attempts from this client address within {window}",
            facts.declines_from_client
        ));
    }
    if rules.declines_per_key > 0 && facts.declines_from_key >= rules.declines_per_key {
        declines.push(format!(
            "{} declined attempts with this API key within {window}",
            facts.declines_from_key
        ));
    }
    if !declines.is_empty() {
        found.push(Finding {
            rule: Rule::ManyDeclines,
            detail: declines.join("; "),
            block: Vec::new(),
        });
    }
    if rules.near_balance_payments > 0 {
        let mut payments: Vec<&str> = facts
            .client_redemptions
            .iter()
            .filter(|r| {
                just_under_balance(
                    r.amount_minor,
                    r.balance_after_minor,
                    rules.near_balance_percent,
                )
            })
            .map(|r| r.transaction_id.as_str())
            .collect();
        payments.sort_unstable();
        payments.dedup();
        if payments.len() >= rules.near_balance_payments as usize {
            found.push(Finding {
                rule: Rule::AmountsJustUnderBalance,
                detail: format!(
                    "{} payments from this client address within {} each left a voucher with at most {} % of its balance",
                    payments.len(),
                    humantime::format_duration(rules.near_balance_window),
                    rules.near_balance_percent
                ),
                block: Vec::new(),
            });
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> Rules {
        Rules {
            spread_merchants: 3,
            spread_window: Duration::from_secs(600),
            spread_blocks_voucher: true,
            declines_per_client: 10,
            declines_per_key: 100,
            decline_window: Duration::from_secs(900),
            near_balance_payments: 3,
            near_balance_percent: 5,
            near_balance_window: Duration::from_secs(3600),
        }
    }

    fn voucher(id: i64, merchants: u32) -> VoucherFacts {
        VoucherFacts {
            voucher_id: id,
            last4: format!("{id:04}"),
            merchants,
        }
    }

    fn redemption(txn: &str, amount: i64, after: i64) -> Redemption {
        Redemption {
            transaction_id: txn.into(),
            amount_minor: amount,
            balance_after_minor: after,
        }
    }

    #[test]
    fn a_clean_payment_breaks_no_rule() {
        let facts = Facts {
            vouchers: vec![voucher(1, 2)],
            declines_from_client: 9,
            declines_from_key: 99,
            client_redemptions: vec![redemption("a", 9_500, 500), redemption("b", 100, 900)],
        };
        assert!(evaluate(&rules(), &facts).is_empty());
    }

    #[test]
    fn a_voucher_at_the_threshold_of_merchants_is_flagged_and_blocked() {
        let facts = Facts {
            vouchers: vec![voucher(1, 1), voucher(2, 3)],
            ..Facts::default()
        };
        let found = evaluate(&rules(), &facts);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].rule, Rule::VoucherAtManyMerchants);
        assert_eq!(found[0].block, vec![(2, "0002".to_owned())]);
        assert!(found[0].detail.contains("ending 0002 paid at 3 merchants"));

        let no_block = Rules {
            spread_blocks_voucher: false,
            ..rules()
        };
        assert!(evaluate(&no_block, &facts)[0].block.is_empty());
    }

    #[test]
    fn declines_from_the_client_or_the_key_are_flagged_never_blocked() {
        let client = Facts {
            declines_from_client: 10,
            ..Facts::default()
        };
        let found = evaluate(&rules(), &client);
        assert_eq!(found[0].rule, Rule::ManyDeclines);
        assert!(found[0].detail.contains("client address"));
        assert!(found[0].block.is_empty());

        let key = Facts {
            declines_from_key: 100,
            ..Facts::default()
        };
        assert!(evaluate(&rules(), &key)[0].detail.contains("API key"));
    }

    #[test]
    fn repeated_payments_just_under_a_balance_are_counted_per_payment() {
        // Three redemptions, but two belong to one payment: two payments, under threshold.
        let two = Facts {
            client_redemptions: vec![
                redemption("a", 9_600, 400),
                redemption("a", 1_950, 50),
                redemption("b", 4_800, 200),
            ],
            ..Facts::default()
        };
        assert!(evaluate(&rules(), &two).is_empty());
        let mut three = two.clone();
        three
            .client_redemptions
            .push(redemption("c", 19_000, 1_000));
        let found = evaluate(&rules(), &three);
        assert_eq!(found[0].rule, Rule::AmountsJustUnderBalance);
        assert!(found[0].detail.starts_with("3 payments"));
    }

    #[test]
    fn just_under_means_above_zero_and_within_the_margin() {
        assert!(just_under_balance(9_500, 500, 5));
        assert!(!just_under_balance(9_499, 501, 5));
        assert!(
            !just_under_balance(10_000, 0, 5),
            "emptied is not just under"
        );
        assert!(!just_under_balance(1, 1, 0));
        assert!(just_under_balance(i64::MAX, 1, 5), "no overflow");
    }

    #[test]
    fn a_threshold_of_zero_turns_its_rule_off() {
        let off = Rules {
            spread_merchants: 0,
            declines_per_client: 0,
            declines_per_key: 0,
            near_balance_payments: 0,
            ..rules()
        };
        let facts = Facts {
            vouchers: vec![voucher(1, 50)],
            declines_from_client: 50,
            declines_from_key: 500,
            client_redemptions: (0..10)
                .map(|i| redemption(&i.to_string(), 990, 10))
                .collect(),
        };
        assert!(evaluate(&off, &facts).is_empty());
        assert_eq!(evaluate(&rules(), &facts).len(), 3);
    }
}
