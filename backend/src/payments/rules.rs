//! Voucher acceptance rules and the split of an amount across vouchers (pure functions
//! over domain types: the store turns its rows into [`Voucher`]s).
use serde::{Deserialize, Serialize};
use superpayment_core::{Currency, Mode, Money};
use time::OffsetDateTime;

use crate::payments::{DeclineReason, PayError};

/// Whether a voucher can pay at all, whatever the order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Usability {
    /// Can pay.
    Active,
    /// Blocked by an operator.
    Blocked,
    /// A single-use voucher that was used.
    Used,
    /// Deactivated by its issuer or an operator.
    Inactive,
}

/// A voucher as the payment rules see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Voucher {
    pub id: i64,
    pub last4: String,
    pub mode: Mode,
    pub currency: Currency,
    pub balance_minor: i64,
    pub usability: Usability,
    pub expires_at: Option<OffsetDateTime>,
    /// When it first paid (a payment or a hold), if it has.
    pub first_used_at: Option<OffsetDateTime>,
    /// `None` when the stored rules cannot be read: such a voucher is refused (fails
    /// closed) as not accepted.
    pub rules: Option<VoucherRules>,
}

/// Per-voucher rules, stored as JSON so that new voucher kinds need no migration.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct VoucherRules {
    /// Only these merchants accept the voucher (absent: every merchant).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub merchants: Option<Vec<String>>,
    /// Minimum order amount, in minor units of the voucher's currency.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_order_minor: Option<i64>,
    /// Usable once: the first payment uses it up, whatever remains is forfeited.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub single_use: bool,
    /// Can be topped up (loaded) after issuance.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub reloadable: bool,
    /// Expires this many days after its first payment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_after_first_use_days: Option<u32>,
    /// A payment must give the voucher's PIN with its code.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub pin_required: bool,
}

/// When a voucher expires: its fixed expiry or, for a kind that expires after first use,
/// that many days after its first payment, whichever comes first.
pub fn expiry(v: &Voucher) -> Option<OffsetDateTime> {
    let after_use = v
        .rules
        .as_ref()
        .and_then(|r| r.expires_after_first_use_days)
        .zip(v.first_used_at)
        .map(|(days, first)| first + time::Duration::days(i64::from(days)));
    match (v.expires_at, after_use) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The part of a payment taken from one voucher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allocation {
    pub position: usize,
    pub voucher_id: i64,
    pub last4: String,
    pub take: i64,
    /// What a single-use voucher forfeits beyond `take` (its remainder; 0 otherwise).
    pub forfeit: i64,
    pub balance_after: i64,
    pub mark_used: bool,
}

/// Why one voucher may not pay this order, if any. A voucher of the other mode is as
/// unknown as a missing one.
pub fn refusal(
    voucher: Option<&Voucher>,
    merchant_id: &str,
    mode: Mode,
    amount: Money,
    now: OffsetDateTime,
) -> Option<DeclineReason> {
    let Some(v) = voucher.filter(|v| v.mode == mode) else {
        return Some(DeclineReason::Unknown);
    };
    match v.usability {
        Usability::Active => {}
        Usability::Blocked => return Some(DeclineReason::Blocked),
        Usability::Used => return Some(DeclineReason::AlreadyUsed),
        Usability::Inactive => return Some(DeclineReason::Inactive),
    }
    if expiry(v).is_some_and(|e| e <= now) {
        return Some(DeclineReason::Expired);
    }
    if v.currency != amount.currency() {
        return Some(DeclineReason::CurrencyMismatch);
    }
    let Some(rules) = &v.rules else {
        return Some(DeclineReason::NotAccepted);
    };
    if rules
        .merchants
        .as_ref()
        .is_some_and(|allowed| !allowed.iter().any(|m| m == merchant_id))
    {
        return Some(DeclineReason::NotAccepted);
    }
    if rules
        .min_order_minor
        .is_some_and(|min| amount.minor() < min)
    {
        return Some(DeclineReason::MinimumOrderNotMet);
    }
    None
}

/// Applies the vouchers in the order given: each pays as much as it can of what is left,
/// so only the last one used is taken partially. Vouchers not needed are left untouched.
/// Every voucher is checked first, so a bad voucher anywhere in the list declines the
/// payment (the shopper sees the problem instead of it being silently skipped).
pub fn allocate(
    vouchers: &[Option<&Voucher>],
    merchant_id: &str,
    mode: Mode,
    amount: Money,
    now: OffsetDateTime,
) -> Result<Vec<Allocation>, PayError> {
    for (i, voucher) in vouchers.iter().enumerate() {
        if let Some(reason) = refusal(*voucher, merchant_id, mode, amount, now) {
            return Err(PayError::Declined {
                reason,
                param: Some(format!("vouchers[{i}]")),
            });
        }
    }
    let mut remaining = amount.minor();
    let mut out = Vec::with_capacity(vouchers.len());
    for (position, voucher) in vouchers.iter().enumerate() {
        let v = voucher.expect("refusal() rejects missing vouchers");
        if remaining == 0 {
            break;
        }
        let take = v.balance_minor.min(remaining);
        if take == 0 {
            continue;
        }
        remaining -= take;
        let single_use = v.rules.as_ref().is_some_and(|r| r.single_use);
        let forfeit = if single_use {
            v.balance_minor - take
        } else {
            0
        };
        out.push(Allocation {
            position,
            voucher_id: v.id,
            last4: v.last4.clone(),
            take,
            forfeit,
            balance_after: v.balance_minor - take - forfeit,
            mark_used: single_use,
        });
    }
    if remaining > 0 {
        return Err(PayError::Declined {
            reason: DeclineReason::InsufficientBalance,
            param: Some("vouchers".into()),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn voucher(id: i64, balance: i64) -> Voucher {
        Voucher {
            id,
            last4: format!("{id:04}"),
            mode: Mode::Test,
            currency: Currency::EUR,
            balance_minor: balance,
            usability: Usability::Active,
            expires_at: None,
            first_used_at: None,
            rules: Some(VoucherRules::default()),
        }
    }

    #[test]
    fn a_kind_expiring_after_first_use_expires_that_many_days_after_its_first_payment() {
        let now = OffsetDateTime::now_utc();
        let mut v = voucher(1, 1000);
        v.rules = Some(VoucherRules {
            expires_after_first_use_days: Some(30),
            ..VoucherRules::default()
        });
        // Never used: the clock has not started.
        assert_eq!(refusal(Some(&v), "m", Mode::Test, eur(1), now), None);
        v.first_used_at = Some(now - time::Duration::days(29));
        assert_eq!(refusal(Some(&v), "m", Mode::Test, eur(1), now), None);
        v.first_used_at = Some(now - time::Duration::days(30));
        assert_eq!(
            refusal(Some(&v), "m", Mode::Test, eur(1), now),
            Some(DeclineReason::Expired)
        );
        // A fixed expiry that comes first wins.
        v.first_used_at = Some(now);
        v.expires_at = Some(now + time::Duration::days(1));
        assert_eq!(expiry(&v), v.expires_at);
    }

    fn eur(minor: i64) -> Money {
        Money::from_minor(minor, Currency::EUR).unwrap()
    }

    #[test]
    fn vouchers_pay_in_the_order_given_and_only_the_last_partially() {
        let (a, b, c) = (voucher(1, 6000), voucher(2, 5000), voucher(3, 100));
        let out = allocate(
            &[Some(&a), Some(&b), Some(&c)],
            "m",
            Mode::Test,
            eur(9900),
            OffsetDateTime::now_utc(),
        )
        .unwrap();
        assert_eq!(
            out.iter()
                .map(|x| (x.voucher_id, x.take, x.balance_after))
                .collect::<Vec<_>>(),
            vec![(1, 6000, 0), (2, 3900, 1100)]
        );
    }

    #[test]
    fn a_single_use_voucher_forfeits_its_remainder() {
        let mut a = voucher(1, 10000);
        a.rules = Some(VoucherRules {
            single_use: true,
            ..VoucherRules::default()
        });
        let out = allocate(
            &[Some(&a)],
            "m",
            Mode::Test,
            eur(6000),
            OffsetDateTime::now_utc(),
        )
        .unwrap();
        assert_eq!(
            (
                out[0].take,
                out[0].forfeit,
                out[0].balance_after,
                out[0].mark_used
            ),
            (6000, 4000, 0, true)
        );
    }

    #[test]
    fn not_enough_in_total_is_declined() {
        let (a, b) = (voucher(1, 100), voucher(2, 100));
        let err = allocate(
            &[Some(&a), Some(&b)],
            "m",
            Mode::Test,
            eur(201),
            OffsetDateTime::now_utc(),
        )
        .unwrap_err();
        assert!(matches!(
            err,
            PayError::Declined {
                reason: DeclineReason::InsufficientBalance,
                ..
            }
        ));
    }

    #[test]
    fn each_refusal_has_its_reason() {
        let now = OffsetDateTime::now_utc();
        let mut v = voucher(1, 1000);
        assert_eq!(
            refusal(None, "m", Mode::Test, eur(1), now),
            Some(DeclineReason::Unknown)
        );
        assert_eq!(
            refusal(Some(&v), "m", Mode::Live, eur(1), now),
            Some(DeclineReason::Unknown)
        );
        v.expires_at = Some(now - time::Duration::seconds(1));
        assert_eq!(
            refusal(Some(&v), "m", Mode::Test, eur(1), now),
            Some(DeclineReason::Expired)
        );
        v.expires_at = None;
        v.usability = Usability::Blocked;
        assert_eq!(
            refusal(Some(&v), "m", Mode::Test, eur(1), now),
            Some(DeclineReason::Blocked)
        );
        v.usability = Usability::Active;
        assert_eq!(
            refusal(
                Some(&v),
                "m",
                Mode::Test,
                Money::from_minor(1, Currency::USD).unwrap(),
                now
            ),
            Some(DeclineReason::CurrencyMismatch)
        );
        v.rules = Some(VoucherRules {
            merchants: Some(vec!["other".into()]),
            ..VoucherRules::default()
        });
        assert_eq!(
            refusal(Some(&v), "m", Mode::Test, eur(1), now),
            Some(DeclineReason::NotAccepted)
        );
        v.rules = None;
        assert_eq!(
            refusal(Some(&v), "m", Mode::Test, eur(1), now),
            Some(DeclineReason::NotAccepted)
        );
        v.rules = Some(VoucherRules {
            min_order_minor: Some(500),
            ..VoucherRules::default()
        });
        assert_eq!(
            refusal(Some(&v), "m", Mode::Test, eur(499), now),
            Some(DeclineReason::MinimumOrderNotMet)
        );
        assert_eq!(refusal(Some(&v), "m", Mode::Test, eur(500), now), None);
    }
}
