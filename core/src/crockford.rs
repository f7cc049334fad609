//! Crockford base32, the alphabet shared by voucher codes and API keys.

/// The 32 symbols in value order. `I`, `L`, `O` and `U` are left out so a code read aloud
/// or copied by hand cannot be confused with `1` and `0` (or spell words).
pub const CROCKFORD_ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// Encodes the first `symbols * 5` bits of `bytes`, most significant bit first, as
/// upper-case Crockford symbols. Left-over bits are ignored, so callers choose exactly how
/// much entropy a value carries.
///
/// # Panics
/// If `bytes` holds fewer than `symbols * 5` bits: a caller bug, never input-dependent.
pub fn crockford_encode(bytes: &[u8], symbols: usize) -> String {
    assert!(
        bytes.len() * 8 >= symbols * 5,
        "crockford_encode: {} bytes cannot supply {symbols} symbols",
        bytes.len()
    );
    (0..symbols)
        .map(|i| char::from(CROCKFORD_ALPHABET[usize::from(bits_at(bytes, i * 5))]))
        .collect()
}

/// The 5-bit group starting at bit `start` (big-endian bit order).
fn bits_at(bytes: &[u8], start: usize) -> u8 {
    (0..5).fold(0, |acc, k| {
        let bit = start + k;
        let set = (bytes[bit / 8] >> (7 - bit % 8)) & 1;
        (acc << 1) | set
    })
}

/// The value `0..32` of a canonical (upper-case) symbol, or `None`.
pub(crate) fn symbol_value(symbol: u8) -> Option<u8> {
    CROCKFORD_ALPHABET
        .iter()
        .position(|&s| s == symbol)
        .and_then(|v| u8::try_from(v).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_bits_most_significant_first() {
        assert_eq!(crockford_encode(&[0x00, 0x00], 3), "000");
        assert_eq!(crockford_encode(&[0xFF, 0xFF], 3), "ZZZ");
        // 0b00001_00010_00011_0 -> 1, 2, 3
        assert_eq!(crockford_encode(&[0b0000_1000, 0b1000_0110], 3), "123");
        assert_eq!(crockford_encode(&[0xFF; 20], 32), "Z".repeat(32));
    }

    #[test]
    fn every_symbol_has_its_value() {
        for (i, &s) in CROCKFORD_ALPHABET.iter().enumerate() {
            assert_eq!(symbol_value(s), Some(i as u8));
        }
        for s in [b'I', b'L', b'O', b'U', b'a', b'-'] {
            assert_eq!(symbol_value(s), None);
        }
    }

    #[test]
    #[should_panic(expected = "cannot supply")]
    fn too_few_bytes_is_a_caller_bug() {
        crockford_encode(&[0; 9], 15);
    }
}
