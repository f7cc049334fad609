//! Stored amounts (minor units) as the wire's decimal strings.
use superpayment_core::{Currency, Money};

/// `minor` units of `currency` as a decimal string (`"99.00"`, `"1000"` for JPY); zero
/// and negative amounts are formatted too (a balance, a refunded total, a ledger posting:
/// `"-12.50"`).
pub fn format_minor(minor: i64, currency: Currency) -> anyhow::Result<String> {
    let magnitude = minor
        .checked_abs()
        .ok_or_else(|| anyhow::anyhow!("stored amount out of range"))?;
    let text = Money::from_minor(magnitude, currency)
        .map_err(|e| anyhow::anyhow!("stored amount out of range: {e}"))?
        .to_string();
    Ok(if minor < 0 { format!("-{text}") } else { text })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negative_zero_and_positive_amounts_are_formatted() {
        assert_eq!(format_minor(-1250, Currency::EUR).unwrap(), "-12.50");
        assert_eq!(format_minor(0, Currency::EUR).unwrap(), "0.00");
        assert_eq!(format_minor(1000, Currency::JPY).unwrap(), "1000");
        assert!(format_minor(i64::MIN, Currency::EUR).is_err());
    }
}
