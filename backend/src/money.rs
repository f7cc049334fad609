//! Stored amounts (minor units) as the wire's decimal strings.
use superpayment_core::{Currency, Money};

/// `minor` units of `currency` as a decimal string (`"99.00"`, `"1000"` for JPY); zero
/// and negative amounts are formatted too (a balance, a refunded total).
pub fn format_minor(minor: i64, currency: Currency) -> anyhow::Result<String> {
    Ok(Money::from_minor(minor, currency)
        .map_err(|e| anyhow::anyhow!("stored amount out of range: {e}"))?
        .to_string())
}
