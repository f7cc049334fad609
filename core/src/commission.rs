//! SuperPayment's commission on a sale and the one rounding rule that splits it.

use crate::money::Money;

/// A rate in basis points: `0 ..= 10_000`, where 100 bps is 1 %.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BasisPoints(u16);

/// Why a commission rate was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CommissionError {
    /// Above 10 000 bps, i.e. more than the whole amount.
    #[error("The commission rate must be between 0 and 10000 basis points.")]
    OutOfRange,
}

impl CommissionError {
    /// Stable machine-readable code for API responses.
    pub fn code(&self) -> &'static str {
        match self {
            CommissionError::OutOfRange => "invalid_commission_rate",
        }
    }
}

impl BasisPoints {
    /// The whole amount: 100 %.
    pub const MAX: u16 = 10_000;

    /// A rate, refusing anything above 100 %.
    pub fn new(bps: u32) -> Result<BasisPoints, CommissionError> {
        match u16::try_from(bps) {
            Ok(bps) if bps <= Self::MAX => Ok(BasisPoints(bps)),
            _ => Err(CommissionError::OutOfRange),
        }
    }

    /// The rate in basis points.
    pub fn get(self) -> u16 {
        self.0
    }
}

/// How a payment divides between SuperPayment and the merchant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Split {
    /// SuperPayment's share.
    pub commission: Money,
    /// The merchant's share: always `amount - commission`.
    pub net: Money,
}

/// Splits `amount` at rate `bps`.
///
/// The rule: `commission = amount × bps / 10 000`, rounded half-up (ties away from zero,
/// the same for non-negative amounts) to the minor unit, computed in `i128`;
/// `net = amount − commission`. Deriving net by subtraction instead of rounding it
/// separately is what guarantees `commission + net == amount` to the minor unit, so the
/// ledger always balances. Example: 1.05 EUR at 250 bps is 2.625 cents, so the commission
/// is 0.03 EUR and the net 1.02 EUR.
pub fn split_commission(amount: Money, bps: BasisPoints) -> Split {
    let product = i128::from(amount.minor()) * i128::from(bps.get());
    let commission = (product + 5_000) / 10_000;
    // bps <= 10_000 keeps the commission within 0..=amount, so both parts stay valid Money.
    let commission = i64::try_from(commission).expect("commission never exceeds the amount");
    let currency = amount.currency();
    Split {
        commission: Money::from_minor_unchecked(commission, currency),
        net: Money::from_minor_unchecked(amount.minor() - commission, currency),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::currency::Currency;
    use crate::money::MAX_MINOR;
    use proptest::prelude::*;

    fn split(minor: i64, currency: Currency, bps: u32) -> (i64, i64) {
        let s = split_commission(
            Money::from_minor(minor, currency).unwrap(),
            BasisPoints::new(bps).unwrap(),
        );
        (s.commission.minor(), s.net.minor())
    }

    #[test]
    fn rates_above_one_hundred_percent_are_refused() {
        assert_eq!(BasisPoints::new(10_000).unwrap().get(), 10_000);
        assert_eq!(BasisPoints::new(0).unwrap().get(), 0);
        assert_eq!(BasisPoints::new(10_001), Err(CommissionError::OutOfRange));
        assert_eq!(BasisPoints::new(u32::MAX), Err(CommissionError::OutOfRange));
        assert_eq!(
            BasisPoints::new(65_536 + 100),
            Err(CommissionError::OutOfRange)
        );
    }

    #[test]
    fn rounds_half_up_to_the_minor_unit() {
        // 1.05 EUR at 2.5 % = 2.625 cents.
        assert_eq!(split(105, Currency::EUR, 250), (3, 102));
        // 1.00 EUR at 2.5 % = 2.5 cents: a tie, rounded up.
        assert_eq!(split(100, Currency::EUR, 250), (3, 97));
        // 0.99 EUR at 2.5 % = 2.475 cents.
        assert_eq!(split(99, Currency::EUR, 250), (2, 97));
        // 2 cents at 0.25 % = 0.005 cents: far below half a cent.
        assert_eq!(split(2, Currency::EUR, 25), (0, 2));
        // 1 yen at 50 % = 0.5 yen: a tie, rounded up.
        assert_eq!(split(1, Currency::JPY, 5_000), (1, 0));
        assert_eq!(split(1_000, Currency::KWD, 333), (33, 967));
        assert_eq!(split(1_000, Currency::KWD, 3_333), (333, 667));
    }

    #[test]
    fn edge_rates_take_nothing_or_everything() {
        assert_eq!(split(MAX_MINOR, Currency::EUR, 0), (0, MAX_MINOR));
        assert_eq!(split(MAX_MINOR, Currency::EUR, 10_000), (MAX_MINOR, 0));
        assert_eq!(split(0, Currency::EUR, 250), (0, 0));
    }

    proptest! {
        #[test]
        fn commission_plus_net_is_the_amount(minor in 0..=MAX_MINOR, bps in 0..=10_000_u32) {
            let amount = Money::from_minor(minor, Currency::EUR).unwrap();
            let s = split_commission(amount, BasisPoints::new(bps).unwrap());
            prop_assert_eq!(s.commission.checked_add(s.net), Ok(amount));
            prop_assert_eq!(s.commission.currency(), Currency::EUR);
            // Within half a minor unit of the exact value, ties going up.
            let exact_times_2 = i128::from(minor) * i128::from(bps) * 2;
            let diff = i128::from(s.commission.minor()) * 20_000 - exact_times_2;
            prop_assert!(diff > -10_000 && diff <= 10_000, "diff {}", diff);
        }
    }
}
