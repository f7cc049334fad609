//! Webhook signing secrets: generation (`whsec_` + base64) and encryption at rest.
//!
//! Signing needs the secret itself, so it cannot be hashed like an API key. It is stored
//! encrypted with AES-256-GCM under a key from configuration (WEBHOOK_ENCRYPTION_KEY, or
//! one derived from VOUCHER_PEPPER), so a database dump alone does not let anyone forge
//! webhooks. The column holds `v1:` + base64(nonce || ciphertext || tag).
use aes_gcm::{aead::Aead, Aes256Gcm, Key, KeyInit, Nonce};
use base64::{engine::general_purpose::STANDARD, Engine};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::{crypto::random_bytes, secret::Secret};

const PREFIX: &str = "whsec_";
const FORMAT: &str = "v1:";

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

impl SecretCipher {
    /// A cipher with an explicit 32-byte key.
    pub fn new(key: [u8; 32]) -> Self {
        Self {
            key: Secret::new(key),
        }
    }

    /// A key derived from the voucher pepper, with domain separation, for deployments that
    /// set no WEBHOOK_ENCRYPTION_KEY of their own.
    pub fn derived_from(pepper: &Secret<String>) -> Self {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(pepper.expose().as_bytes())
            .expect("HMAC accepts keys of any length");
        mac.update(b"superpayment/webhook-secret-encryption/v1");
        Self::new(mac.finalize().into_bytes().into())
    }

    /// Parses WEBHOOK_ENCRYPTION_KEY: base64 of exactly 32 bytes.
    pub fn from_base64(value: &str) -> anyhow::Result<Self> {
        let bytes = STANDARD
            .decode(value.trim())
            .map_err(|_| anyhow::anyhow!("WEBHOOK_ENCRYPTION_KEY must be base64"))?;
        let key: [u8; 32] = bytes
            .try_into()
            .map_err(|_| anyhow::anyhow!("WEBHOOK_ENCRYPTION_KEY must decode to 32 bytes"))?;
        Ok(Self::new(key))
    }

    fn aead(&self) -> Aes256Gcm {
        Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(self.key.expose()))
    }

    /// The stored form of a secret.
    pub fn encrypt(&self, secret: &SigningSecret) -> anyhow::Result<String> {
        self.seal_text(secret.expose())
    }

    /// The secret behind a stored form; an error means a wrong key or a damaged row.
    pub fn decrypt(&self, stored: &str) -> anyhow::Result<SigningSecret> {
        let plain = self.open_text(stored).map_err(|_| {
            anyhow::anyhow!(
                "stored webhook secret does not decrypt (wrong WEBHOOK_ENCRYPTION_KEY?)"
            )
        })?;
        SigningSecret::parse(plain)
            .ok_or_else(|| anyhow::anyhow!("stored webhook secret is malformed"))
    }

    /// Encrypts arbitrary text (secrets, and stored idempotent responses that carry a
    /// voucher code): `v1:` + base64(nonce || ciphertext || tag).
    pub fn seal_text(&self, text: &str) -> anyhow::Result<String> {
        let nonce = random_bytes::<12>();
        let sealed = self
            .aead()
            .encrypt(Nonce::from_slice(&nonce), text.as_bytes())
            .map_err(|_| anyhow::anyhow!("encryption failed"))?;
        let mut out = nonce.to_vec();
        out.extend(sealed);
        Ok(format!("{FORMAT}{}", STANDARD.encode(out)))
    }

    /// Reverses [`SecretCipher::seal_text`].
    pub fn open_text(&self, stored: &str) -> anyhow::Result<String> {
        let raw = stored
            .strip_prefix(FORMAT)
            .and_then(|b| STANDARD.decode(b).ok())
            .filter(|r| r.len() > 12)
            .ok_or_else(|| anyhow::anyhow!("sealed text is malformed"))?;
        let (nonce, sealed) = raw.split_at(12);
        let plain = self
            .aead()
            .decrypt(Nonce::from_slice(nonce), sealed)
            .map_err(|_| anyhow::anyhow!("sealed text does not decrypt"))?;
        Ok(String::from_utf8(plain)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_survives_encryption_and_the_ciphertext_hides_it() {
        let cipher = SecretCipher::derived_from(&Secret::new("pepper-0123456789abcdef".into()));
        let secret = SigningSecret::generate();
        let stored = cipher.encrypt(&secret).unwrap();
        assert!(!stored.contains(&secret.expose()[6..]));
        assert_eq!(cipher.decrypt(&stored).unwrap().expose(), secret.expose());
        assert_eq!(secret.key_bytes().len(), 32);
        let other = SecretCipher::new([9; 32]);
        assert!(other.decrypt(&stored).is_err());
        assert_eq!(format!("{secret:?}"), "whsec_[REDACTED]");
    }
}
