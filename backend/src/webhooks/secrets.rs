//! Webhook signing secrets: generation (`whsec_` + base64) and encryption at rest.
//!
//! Signing needs the secret itself, so it cannot be hashed like an API key. It is stored
//! encrypted with AES-256-GCM under ENCRYPTION_KEY (formerly WEBHOOK_ENCRYPTION_KEY), so a
//! database dump alone does not let anyone forge webhooks.
//!
//! Stored forms:
//! - `v2:` + base64(nonce || ciphertext || tag), with associated data naming the row the
//!   text belongs to ([`endpoint_secret_aad`], [`idempotency_body_aad`]): a ciphertext
//!   copied into another row no longer opens. Everything new is written so.
//! - `v1:` the same without associated data: still read, never written by bound callers.
use aes_gcm::{
    aead::{Aead, Payload},
    Aes256Gcm, Key, KeyInit, Nonce,
};
use base64::{engine::general_purpose::STANDARD, Engine};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::{crypto::random_bytes, secret::Secret};

const PREFIX: &str = "whsec_";
const FORMAT_V1: &str = "v1:";
const FORMAT_V2: &str = "v2:";

/// Associated data of a webhook endpoint's signing secrets (current and rotated-out alike:
/// a rotation moves the current ciphertext into the previous column of the same row).
pub fn endpoint_secret_aad(endpoint_id: &str) -> Vec<u8> {
    [
        b"superpayment/webhook_endpoints.secret\0".as_slice(),
        endpoint_id.as_bytes(),
    ]
    .concat()
}

/// Associated data of a back-office user's TOTP secret: the user it belongs to.
pub fn totp_secret_aad(user_id: &str) -> Vec<u8> {
    [
        b"superpayment/dashboard_users.totp_secret\0".as_slice(),
        user_id.as_bytes(),
    ]
    .concat()
}

/// Associated data of a sealed idempotent response: the merchant, mode and key it answers.
pub fn idempotency_body_aad(merchant_id: &str, mode: &str, operation: &str, key: &str) -> Vec<u8> {
    [
        b"superpayment/idempotency_keys.response_body\0".as_slice(),
        merchant_id.as_bytes(),
        b"\0",
        mode.as_bytes(),
        b"\0",
        operation.as_bytes(),
        b"\0",
        key.as_bytes(),
    ]
    .concat()
}

/// True for text written by [`SecretCipher::seal_text`] or [`SecretCipher::seal_text_bound`].
pub fn is_sealed(stored: &str) -> bool {
    stored.starts_with(FORMAT_V1) || stored.starts_with(FORMAT_V2)
}

/// A webhook signing secret, `whsec_` followed by base64 of 32 random bytes, as the
/// Standard Webhooks libraries expect.
#[derive(Clone)]
pub struct SigningSecret(Secret<String>);

impl SigningSecret {
    /// A fresh random secret.
    pub fn generate() -> Self {
        Self(Secret::new(format!(
            "{PREFIX}{}",
            STANDARD.encode(random_bytes::<32>())
        )))
    }

    /// The key bytes used for HMAC (the base64 part, decoded).
    pub fn key_bytes(&self) -> Vec<u8> {
        STANDARD
            .decode(self.0.expose().trim_start_matches(PREFIX))
            .unwrap_or_default()
    }

    /// The full `whsec_...` string, for the one response that shows it.
    pub fn expose(&self) -> &str {
        self.0.expose()
    }

    /// A known secret (tests and fixtures only).
    #[cfg(test)]
    pub fn for_tests(s: &str) -> Self {
        Self(Secret::new(s.to_owned()))
    }

    fn parse(s: String) -> Option<Self> {
        let ok = s.starts_with(PREFIX)
            && STANDARD
                .decode(&s[PREFIX.len()..])
                .is_ok_and(|k| k.len() >= 24);
        ok.then(|| Self(Secret::new(s)))
    }
}

impl std::fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("whsec_[REDACTED]")
    }
}

/// Encrypts and decrypts signing secrets for storage.
#[derive(Clone)]
pub struct SecretCipher {
    key: Secret<[u8; 32]>,
}

impl std::fmt::Debug for SecretCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretCipher([REDACTED])")
    }
}

impl SecretCipher {
    /// A cipher with an explicit 32-byte key.
    pub fn new(key: [u8; 32]) -> Self {
        Self {
            key: Secret::new(key),
        }
    }

    /// The key that earlier versions derived from the voucher pepper when no
    /// WEBHOOK_ENCRYPTION_KEY was set. Only to read what they wrote (`admin reencrypt
    /// --old-key-from-pepper`, and dev-secrets files that predate ENCRYPTION_KEY).
    pub fn derived_from(pepper: &Secret<String>) -> Self {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(pepper.expose().as_bytes())
            .expect("HMAC accepts keys of any length");
        mac.update(b"superpayment/webhook-secret-encryption/v1");
        Self::new(mac.finalize().into_bytes().into())
    }

    /// Parses an encryption key: base64 of exactly 32 bytes (`openssl rand -base64 32`).
    pub fn from_base64(value: &str) -> anyhow::Result<Self> {
        let bytes = STANDARD
            .decode(value.trim())
            .map_err(|_| anyhow::anyhow!("ENCRYPTION_KEY must be base64"))?;
        let key: [u8; 32] = bytes
            .try_into()
            .map_err(|_| anyhow::anyhow!("ENCRYPTION_KEY must decode to 32 bytes"))?;
        Ok(Self::new(key))
    }

    /// The key in the form [`SecretCipher::from_base64`] reads.
    pub fn to_base64(&self) -> Secret<String> {
        Secret::new(STANDARD.encode(self.key.expose()))
    }

    fn aead(&self) -> Aes256Gcm {
        Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(self.key.expose()))
    }

    /// The stored form of a secret of the endpoint `endpoint_id`.
    pub fn encrypt(&self, secret: &SigningSecret, endpoint_id: &str) -> anyhow::Result<String> {
        self.seal_text_bound(secret.expose(), &endpoint_secret_aad(endpoint_id))
    }

    /// The secret behind a stored form of the endpoint `endpoint_id`; an error means a
    /// wrong key, a damaged row, or a ciphertext that belongs to another endpoint.
    pub fn decrypt(&self, stored: &str, endpoint_id: &str) -> anyhow::Result<SigningSecret> {
        let plain = self
            .open_text_bound(stored, &endpoint_secret_aad(endpoint_id))
            .map_err(|_| {
                anyhow::anyhow!(
                    "stored webhook secret does not decrypt (wrong ENCRYPTION_KEY, or not this endpoint's)"
                )
            })?;
        SigningSecret::parse(plain)
            .ok_or_else(|| anyhow::anyhow!("stored webhook secret is malformed"))
    }

    /// Encrypts text bound to the row it is stored in (`aad`, e.g. [`idempotency_body_aad`]):
    /// `v2:` + base64(nonce || ciphertext || tag). Opening it needs the same `aad`.
    pub fn seal_text_bound(&self, text: &str, aad: &[u8]) -> anyhow::Result<String> {
        Ok(format!("{FORMAT_V2}{}", self.seal_raw(text, aad)?))
    }

    /// Reverses [`SecretCipher::seal_text_bound`]; also opens `v1:` text written before
    /// ciphertexts were bound to their rows (those carry no associated data to check).
    pub fn open_text_bound(&self, stored: &str, aad: &[u8]) -> anyhow::Result<String> {
        if let Some(body) = stored.strip_prefix(FORMAT_V2) {
            self.open_raw(body, aad)
        } else if let Some(body) = stored.strip_prefix(FORMAT_V1) {
            self.open_raw(body, b"")
        } else {
            anyhow::bail!("sealed text is malformed")
        }
    }

    /// Encrypts text without binding it to a row (`v1:`). Prefer
    /// [`SecretCipher::seal_text_bound`]: an unbound ciphertext opens wherever it is copied.
    pub fn seal_text(&self, text: &str) -> anyhow::Result<String> {
        Ok(format!("{FORMAT_V1}{}", self.seal_raw(text, b"")?))
    }

    /// Reverses [`SecretCipher::seal_text`] (and opens `v2:` text sealed with empty `aad`).
    pub fn open_text(&self, stored: &str) -> anyhow::Result<String> {
        self.open_text_bound(stored, b"")
    }

    fn seal_raw(&self, text: &str, aad: &[u8]) -> anyhow::Result<String> {
        let nonce = random_bytes::<12>();
        let sealed = self
            .aead()
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: text.as_bytes(),
                    aad,
                },
            )
            .map_err(|_| anyhow::anyhow!("encryption failed"))?;
        let mut out = nonce.to_vec();
        out.extend(sealed);
        Ok(STANDARD.encode(out))
    }

    fn open_raw(&self, body: &str, aad: &[u8]) -> anyhow::Result<String> {
        let raw = STANDARD
            .decode(body)
            .ok()
            .filter(|r| r.len() > 12)
            .ok_or_else(|| anyhow::anyhow!("sealed text is malformed"))?;
        let (nonce, sealed) = raw.split_at(12);
        let plain = self
            .aead()
            .decrypt(Nonce::from_slice(nonce), Payload { msg: sealed, aad })
            .map_err(|_| anyhow::anyhow!("sealed text does not decrypt"))?;
        Ok(String::from_utf8(plain)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_survives_encryption_and_the_ciphertext_hides_it() {
        let cipher = SecretCipher::new([3; 32]);
        let secret = SigningSecret::generate();
        let stored = cipher.encrypt(&secret, "we_1").unwrap();
        assert!(stored.starts_with("v2:"));
        assert!(!stored.contains(&secret.expose()[6..]));
        assert_eq!(
            cipher.decrypt(&stored, "we_1").unwrap().expose(),
            secret.expose()
        );
        assert_eq!(secret.key_bytes().len(), 32);
        let other = SecretCipher::new([9; 32]);
        assert!(other.decrypt(&stored, "we_1").is_err());
        assert_eq!(format!("{secret:?}"), "whsec_[REDACTED]");
    }

    #[test]
    fn a_secret_moved_to_another_endpoint_does_not_open() {
        let cipher = SecretCipher::new([3; 32]);
        let stored = cipher.encrypt(&SigningSecret::generate(), "we_1").unwrap();
        assert!(cipher.decrypt(&stored, "we_2").is_err());
    }

    #[test]
    fn an_idempotent_answer_opens_only_for_its_merchant_mode_and_key() {
        let cipher = SecretCipher::new([4; 32]);
        let aad = idempotency_body_aad("mer_1", "test", "refund", "key-1");
        let stored = cipher.seal_text_bound("{\"id\":1}", &aad).unwrap();
        assert_eq!(cipher.open_text_bound(&stored, &aad).unwrap(), "{\"id\":1}");
        for other in [
            idempotency_body_aad("mer_1", "test", "payment", "key-1"),
            idempotency_body_aad("mer_2", "test", "refund", "key-1"),
            idempotency_body_aad("mer_1", "live", "refund", "key-1"),
            idempotency_body_aad("mer_1", "test", "refund", "key-2"),
            Vec::new(),
        ] {
            assert!(cipher.open_text_bound(&stored, &other).is_err());
        }
        assert!(cipher.open_text(&stored).is_err());
    }

    #[test]
    fn v1_ciphertexts_written_before_binding_still_open() {
        // Written by the previous version: `seal_text` of a secret, no associated data.
        let cipher = SecretCipher::derived_from(&Secret::new("pepper-0123456789abcdef".into()));
        let secret = SigningSecret::generate();
        let nonce = [5u8; 12];
        let mut raw = nonce.to_vec();
        raw.extend(
            cipher
                .aead()
                .encrypt(Nonce::from_slice(&nonce), secret.expose().as_bytes())
                .unwrap(),
        );
        let legacy = format!("v1:{}", STANDARD.encode(raw));
        assert_eq!(
            cipher.decrypt(&legacy, "we_any").unwrap().expose(),
            secret.expose()
        );
        assert_eq!(cipher.open_text(&legacy).unwrap(), secret.expose());
        assert_eq!(
            cipher.open_text_bound(&legacy, b"anything").unwrap(),
            secret.expose()
        );
    }

    #[test]
    fn a_key_survives_its_base64_form() {
        let cipher = SecretCipher::new([7; 32]);
        let again = SecretCipher::from_base64(cipher.to_base64().expose()).unwrap();
        let stored = cipher.seal_text_bound("x", b"row").unwrap();
        assert_eq!(again.open_text_bound(&stored, b"row").unwrap(), "x");
        assert!(SecretCipher::from_base64("c2hvcnQ=").is_err());
    }
}
