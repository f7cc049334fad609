//! Keyed hashes: voucher codes (HMAC-SHA256 with the pepper), voucher PINs (Argon2id with
//! a per-voucher salt and the pepper), emailed links' tokens and back-office recovery codes
//! (HMAC-SHA256 with the pepper) and API keys (SHA-256).
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use superpayment_core::{is_well_formed_pin, VoucherCode};

use crate::secret::Secret;

/// HMAC-SHA256(pepper, canonical code) in hex: the only form of a code the database holds.
pub fn voucher_hmac(pepper: &Secret<String>, code: &VoucherCode) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(pepper.expose().as_bytes())
        .expect("HMAC accepts keys of any length");
    mac.update(code.as_str().as_bytes());
    to_hex(&mac.finalize().into_bytes())
}

/// A new random PIN of [`superpayment_core::PIN_DIGITS`] digits.
pub fn random_pin() -> Secret<String> {
    use rand::Rng;
    let n: u32 = rand::rngs::OsRng.gen_range(0..1_000_000);
    let pin = format!("{n:06}");
    debug_assert!(is_well_formed_pin(&pin));
    Secret::new(pin)
}

fn pin_hasher(pepper: &Secret<String>) -> anyhow::Result<argon2::Argon2<'_>> {
    argon2::Argon2::new_with_secret(
        pepper.expose().as_bytes(),
        argon2::Algorithm::Argon2id,
        argon2::Version::V0x13,
        argon2::Params::default(),
    )
    .map_err(|e| anyhow::anyhow!("argon2 parameters: {e}"))
}

/// A PIN as stored: Argon2id (a slow hash: a PIN has few digits) with a random salt per
/// voucher and the pepper as its secret, as a PHC string. Never the PIN itself.
pub fn pin_hash(pepper: &Secret<String>, pin: &Secret<String>) -> anyhow::Result<String> {
    use argon2::password_hash::{rand_core::OsRng, PasswordHasher, SaltString};
    let salt = SaltString::generate(&mut OsRng);
    Ok(pin_hasher(pepper)?
        .hash_password(pin.expose().as_bytes(), &salt)
        .map_err(|e| anyhow::anyhow!("hashing a PIN: {e}"))?
        .to_string())
}

/// Whether `pin` is the one hashed in `stored`. Anything not shaped like a PIN (the rule
/// the widget runs too, from core) is refused without spending a hash on it.
pub fn pin_matches(pepper: &Secret<String>, pin: &str, stored: &str) -> bool {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    if !is_well_formed_pin(pin) {
        return false;
    }
    let (Ok(hasher), Ok(parsed)) = (pin_hasher(pepper), PasswordHash::new(stored)) else {
        return false;
    };
    hasher.verify_password(pin.as_bytes(), &parsed).is_ok()
}

/// Whether `pin` matches the hash `stored` ([`pin_matches`]); with no hash (an unknown
/// code, a voucher without a PIN) the same Argon2 verification is spent on a dummy hash and
/// the answer is no, so that the time a decline takes does not tell a wrong PIN from a code
/// that does not exist.
pub fn pin_matches_or_dummy(pepper: &Secret<String>, pin: &str, stored: Option<&str>) -> bool {
    match stored {
        Some(stored) => pin_matches(pepper, pin, stored),
        None => {
            pin_matches(pepper, pin, dummy_pin_hash());
            false
        }
    }
}

/// A PIN hash with the parameters of real ones, matching no PIN under any pepper.
fn dummy_pin_hash() -> &'static str {
    use argon2::password_hash::{PasswordHasher, SaltString};
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| {
        let salt = SaltString::encode_b64(b"dummy-pin-salt16").expect("a 16-byte salt");
        argon2::Argon2::new(
            argon2::Algorithm::Argon2id,
            argon2::Version::V0x13,
            argon2::Params::default(),
        )
        .hash_password(b"not a PIN", &salt)
        .expect("hashing with default parameters")
        .to_string()
    })
}

/// HMAC-SHA256(pepper, "pin:" + PIN) in hex: how a PIN enters an idempotency fingerprint
/// (keyed, so a stored fingerprint cannot be brute-forced back to the PIN).
pub fn pin_fingerprint(pepper: &Secret<String>, pin: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(pepper.expose().as_bytes())
        .expect("HMAC accepts keys of any length");
    mac.update(b"pin:");
    mac.update(pin.as_bytes());
    to_hex(&mac.finalize().into_bytes())
}

/// HMAC-SHA256(pepper, "link:" + purpose + ":" + token) in hex: how an emailed link's token
/// (an invitation, a password reset) is stored, keyed so that a dump of the table cannot be
/// matched against guesses without the pepper.
pub fn link_token_hmac(pepper: &Secret<String>, purpose: &str, token: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(pepper.expose().as_bytes())
        .expect("HMAC accepts keys of any length");
    mac.update(b"link:");
    mac.update(purpose.as_bytes());
    mac.update(b":");
    mac.update(token.as_bytes());
    to_hex(&mac.finalize().into_bytes())
}

/// HMAC-SHA256(pepper, "recovery:" + user id + ":" + code) in hex: how a back-office
/// recovery code is stored (keyed, and bound to its user).
pub fn recovery_code_hmac(pepper: &Secret<String>, user_id: &str, code: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(pepper.expose().as_bytes())
        .expect("HMAC accepts keys of any length");
    mac.update(b"recovery:");
    mac.update(user_id.as_bytes());
    mac.update(b":");
    mac.update(code.as_bytes());
    to_hex(&mac.finalize().into_bytes())
}

/// SHA-256 in hex. API keys carry 160 random bits, so a fast unsalted hash is enough
/// (no dictionary to attack) and keeps every authenticated request cheap.
pub fn sha256_hex(value: &str) -> String {
    to_hex(&Sha256::digest(value.as_bytes()))
}

/// Lower-case hex, written in one pass into a buffer of the final length (`hex::encode`
/// collects a `String` one `char` at a time: several times the work for every digest of a
/// request).
pub fn to_hex(bytes: &[u8]) -> String {
    let mut buf = vec![0u8; bytes.len() * 2];
    hex::encode_to_slice(bytes, &mut buf).expect("the buffer holds two digits per byte");
    String::from_utf8(buf).expect("hex digits are ASCII")
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
    fn digests_are_written_as_lower_case_hex() {
        // The FIPS 180-2 test vector: stored API key hashes and HMACs keep their form.
        assert_eq!(
            sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(to_hex(&[0x00, 0x0f, 0xa0, 0xff]), "000fa0ff");
        assert_eq!(to_hex(&[]), "");
    }

    #[test]
    fn a_link_tokens_hmac_depends_on_the_pepper_and_the_purpose() {
        let p1 = Secret::new("pepper-one-0123456789".to_owned());
        let p2 = Secret::new("pepper-two-0123456789".to_owned());
        let h = link_token_hmac(&p1, "invitation", "token");
        assert_eq!(h.len(), 64);
        assert_ne!(h, link_token_hmac(&p2, "invitation", "token"));
        assert_ne!(h, link_token_hmac(&p1, "password_reset", "token"));
        assert_ne!(h, sha256_hex("token"), "keyed, not a plain hash");
    }

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
    fn only_a_pin_of_the_core_shape_is_ever_matched() {
        let pepper = Secret::new("pepper-one-0123456789".into());
        let pin = random_pin();
        assert!(is_well_formed_pin(pin.expose()));
        let stored = pin_hash(&pepper, &pin).unwrap();
        assert!(pin_matches(&pepper, pin.expose(), &stored));
        assert!(!pin_matches(&pepper, "", &stored));
        // Hashed but not PIN-shaped (seven digits): refused before any hash is spent.
        let long = Secret::new("1234567".to_owned());
        let stored = pin_hash(&pepper, &long).unwrap();
        assert!(!pin_matches(&pepper, long.expose(), &stored));
    }

    #[test]
    fn a_missing_pin_hash_never_matches_and_a_dummy_is_a_real_hash() {
        let pepper = Secret::new("pepper-0123456789".to_owned());
        assert!(!pin_matches_or_dummy(&pepper, "123456", None));
        let real = pin_hash(&pepper, &Secret::new("123456".to_owned())).unwrap();
        assert!(pin_matches_or_dummy(&pepper, "123456", Some(&real)));
        // Same algorithm and cost as a stored PIN: the dummy costs what a real check costs.
        let params = |phc: &str| phc.split('$').take(4).collect::<Vec<_>>().join("$");
        assert_eq!(params(dummy_pin_hash()), params(&real));
    }

    #[test]
    fn secrets_equal_compares_content() {
        assert!(secrets_equal("abc", "abc"));
        assert!(!secrets_equal("abc", "abd"));
        assert!(!secrets_equal("abc", "abcd"));
    }
}
