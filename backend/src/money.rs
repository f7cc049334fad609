//! Stored amounts (minor units) as the wire's decimal strings.
use superpayment_core::{Currency, Money};

/// `minor` units of `currency` as a decimal string (`"99.00"`, `"1000"` for JPY); zero
/// and negative amounts are formatted too (a balance, a refunded total, a commission
/// returned, a payable a refund took below zero: `"-0.50"`).
pub fn format_minor(minor: i64, currency: Currency) -> anyhow::Result<String> {
    let abs = minor
        .checked_abs()
        .ok_or_else(|| anyhow::anyhow!("stored amount out of range: {minor}"))?;
    let formatted = Money::from_minor(abs, currency)
        .map_err(|e| anyhow::anyhow!("stored amount out of range: {e}"))?
        .to_string();
    Ok(if minor < 0 {
        format!("-{formatted}")
    } else {
        formatted
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negative_amounts_keep_the_currency_s_decimals_behind_a_minus() {
        assert_eq!(format_minor(-50, Currency::EUR).unwrap(), "-0.50");
        assert_eq!(format_minor(-1_000, Currency::JPY).unwrap(), "-1000");
        assert_eq!(format_minor(0, Currency::EUR).unwrap(), "0.00");
        assert_eq!(format_minor(12_345, Currency::EUR).unwrap(), "123.45");
        assert!(format_minor(i64::MIN, Currency::EUR).is_err());
    }
}
