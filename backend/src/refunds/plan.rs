//! Pure refund arithmetic: which vouchers get how much back, and the commission share.

/// What a payment took from one voucher.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Taken {
    pub voucher_id: i64,
    /// Order in which the voucher was applied to the payment.
    pub position: i32,
    pub amount_minor: i64,
}

/// Splits a refund over the vouchers a payment came from, in reverse order of application:
/// the voucher applied last (the only one taken partially) is refilled first, so a partial
/// refund leaves the payment as if its tail had never happened. No voucher gets back more
/// than it paid, counting earlier refunds. Returns (voucher id, amount) pairs, or None when
/// the vouchers' remaining refundable total is below `amount`.
pub fn allocate(taken: &[Taken], already: &[(i64, i64)], amount: i64) -> Option<Vec<(i64, i64)>> {
    let mut order: Vec<&Taken> = taken.iter().collect();
    order.sort_by_key(|t| std::cmp::Reverse(t.position));
    let mut left = amount;
    let mut out = Vec::new();
    for t in order {
        if left == 0 {
            break;
        }
        let refunded: i64 = already
            .iter()
            .filter(|(id, _)| *id == t.voucher_id)
            .map(|(_, a)| *a)
            .sum();
        let room = t.amount_minor.checked_sub(refunded)?.max(0);
        let share = room.min(left);
        if share > 0 {
            out.push((t.voucher_id, share));
            left -= share;
        }
    }
    (left == 0).then_some(out)
}

/// The commission returned when the refunded total goes from `before` to `after`:
/// the cumulative share `commission × refunded / amount`, rounded down, so that partial
/// refunds add up to exactly the commission once everything is refunded.
pub fn commission_share(commission: i64, amount: i64, before: i64, after: i64) -> Option<i64> {
    let cumulative = |r: i64| -> Option<i64> {
        let v = i128::from(commission).checked_mul(i128::from(r))? / i128::from(amount);
        i64::try_from(v).ok()
    };
    if amount <= 0 || before < 0 || after < before || after > amount {
        return None;
    }
    Some(cumulative(after)? - cumulative(before)?)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn taken() -> Vec<Taken> {
        vec![
            Taken {
                voucher_id: 1,
                position: 0,
                amount_minor: 6000,
            },
            Taken {
                voucher_id: 2,
                position: 1,
                amount_minor: 3900,
            },
        ]
    }

    #[test]
    fn the_last_applied_voucher_is_refilled_first() {
        assert_eq!(allocate(&taken(), &[], 1000), Some(vec![(2, 1000)]));
        assert_eq!(
            allocate(&taken(), &[], 5000),
            Some(vec![(2, 3900), (1, 1100)])
        );
        assert_eq!(allocate(&taken(), &[(2, 3900)], 100), Some(vec![(1, 100)]));
        assert_eq!(allocate(&taken(), &[(2, 3900), (1, 6000)], 1), None);
        assert_eq!(allocate(&taken(), &[], 9901), None);
    }

    #[test]
    fn a_full_refund_returns_the_whole_commission() {
        assert_eq!(commission_share(248, 9900, 0, 9900), Some(248));
        let parts: i64 = [(0, 1000), (1000, 1001), (1001, 5000), (5000, 9900)]
            .iter()
            .map(|(b, a)| commission_share(248, 9900, *b, *a).unwrap())
            .sum();
        assert_eq!(parts, 248);
        assert_eq!(commission_share(248, 9900, 0, 9901), None);
    }

    proptest! {
        #[test]
        fn partial_refunds_never_return_more_than_paid(
            amounts in proptest::collection::vec(1i64..5000, 1..4),
            refunds in proptest::collection::vec(1i64..20000, 1..6),
            bps in 0i64..=10000,
        ) {
            let taken: Vec<Taken> = amounts.iter().enumerate().map(|(i, a)| Taken {
                voucher_id: i as i64, position: i as i32, amount_minor: *a }).collect();
            let total: i64 = amounts.iter().sum();
            let commission = total * bps / 10000;
            let mut already: Vec<(i64, i64)> = Vec::new();
            let (mut refunded, mut commission_back) = (0i64, 0i64);
            for r in refunds {
                match allocate(&taken, &already, r) {
                    Some(plan) => {
                        prop_assert!(refunded + r <= total);
                        prop_assert_eq!(plan.iter().map(|(_, a)| a).sum::<i64>(), r);
                        commission_back += commission_share(commission, total, refunded, refunded + r).unwrap();
                        refunded += r;
                        already.extend(plan);
                    }
                    None => prop_assert!(refunded + r > total),
                }
            }
            for t in &taken {
                let back: i64 = already.iter().filter(|(id, _)| *id == t.voucher_id).map(|(_, a)| a).sum();
                prop_assert!(back <= t.amount_minor);
            }
            prop_assert!(commission_back <= commission);
            if refunded == total { prop_assert_eq!(commission_back, commission); }
        }
    }
}
