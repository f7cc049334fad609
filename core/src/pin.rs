//! Voucher PINs: the one rule for their shape, run by the widget before it sends a PIN and
//! by the server before it spends a slow hash on one.

/// Digits of a voucher PIN.
pub const PIN_DIGITS: usize = 6;

/// Whether `pin` has the shape of a voucher PIN: exactly [`PIN_DIGITS`] ASCII digits.
/// Says nothing of whether it is the right PIN; only the server knows that.
pub fn is_well_formed_pin(pin: &str) -> bool {
    pin.len() == PIN_DIGITS && pin.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_six_ascii_digits_are_a_pin() {
        assert!(is_well_formed_pin("000000"));
        assert!(is_well_formed_pin("123456"));
        for bad in [
            "",
            "12345",
            "1234567",
            "12345a",
            " 12345",
            "12 345",
            "１２３４５６",
            "12345\n",
        ] {
            assert!(!is_well_formed_pin(bad), "{bad:?}");
        }
    }
}
