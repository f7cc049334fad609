//! Keyed hashes: voucher codes (HMAC-SHA256 with the pepper) and API keys (SHA-256).
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use superpayment_core::VoucherCode;

use crate::secret::Secret;

/// HMAC-SHA256(pepper, canonical code) in hex: the only form of a code the database holds.
pub fn voucher_hmac(pepper: &Secret<String>, code: &VoucherCode) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(pepper.expose().as_bytes())
        .expect("HMAC accepts keys of any length");
    mac.update(code.as_str().as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// SHA-256 in hex. API keys carry 160 random bits, so a fast unsalted hash is enough
/// (no dictionary to attack) and keeps every authenticated request cheap.
pub fn sha256_hex(value: &str) -> String {
    hex::encode(Sha256::digest(value.as_bytes()))
}

/// Constant-time equality of two secrets, comparing their digests.
pub fn secrets_equal(a: &str, b: &str) -> bool {
    let (da, db) = (Sha256::digest(a.as_bytes()), Sha256::digest(b.as_bytes()));
    da.iter()
        .zip(db.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

/// Fills an array with OS randomness.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    use rand::RngCore;
    let mut buf = [0u8; N];
    rand::rngs::OsRng.fill_bytes(&mut buf);
    buf
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_voucher_hmac_depends_on_the_pepper() {
        let code = VoucherCode::generate([7; 10]);
        let a = voucher_hmac(&Secret::new("pepper-one-0123456789".into()), &code);
        let b = voucher_hmac(&Secret::new("pepper-two-0123456789".into()), &code);
        assert_ne!(a, b);
        assert_eq!(a.len(), 64);
        assert!(!a.contains(code.as_str()));
    }

    #[test]
    fn secrets_equal_compares_content() {
        assert!(secrets_equal("abc", "abc"));
        assert!(!secrets_equal("abc", "abd"));
        assert!(!secrets_equal("abc", "abcd"));
    }
}
