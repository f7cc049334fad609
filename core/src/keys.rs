//! API key formats: which kind and mode a key is, and keeping the secret out of logs.

use core::fmt;
use core::str::FromStr;

use crate::crockford::crockford_encode;

/// Test keys touch only test data; live keys move real money.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Sandbox: `pk_test_` / `sk_test_`.
    Test,
    /// Production: `pk_live_` / `sk_live_`.
    Live,
}

impl Mode {
    /// `"test"` or `"live"`, as in key prefixes, JSON and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Test => "test",
            Mode::Live => "live",
        }
    }
}

/// A mode other than `"test"` or `"live"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("The mode must be \"test\" or \"live\".")]
pub struct ModeError;

impl ModeError {
    /// Stable machine-readable code for API responses.
    pub fn code(&self) -> &'static str {
        "invalid_mode"
    }
}

impl FromStr for Mode {
    type Err = ModeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "test" => Ok(Mode::Test),
            "live" => Ok(Mode::Live),
            _ => Err(ModeError),
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who may hold a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyKind {
    /// `pk_…`: embedded in checkout pages, so public by design; widget endpoints only.
    Publishable,
    /// `sk_…`: the merchant's server only.
    Secret,
}

/// Random symbols after the prefix: 32 × 5 = 160 bits.
const KEY_SYMBOLS: usize = 32;
const PREFIXES: [(&str, KeyKind, Mode); 4] = [
    ("pk_test_", KeyKind::Publishable, Mode::Test),
    ("pk_live_", KeyKind::Publishable, Mode::Live),
    ("sk_test_", KeyKind::Secret, Mode::Test),
    ("sk_live_", KeyKind::Secret, Mode::Live),
];

/// An API key: `pk_test_`, `pk_live_`, `sk_test_` or `sk_live_` followed by 32 lower-case
/// Crockford base32 symbols (160 random bits).
///
/// The prefix makes a leaked key recognisable by secret scanners and tells a human at a
/// glance whether it may appear in a page. `Debug` is redacted; the full value is only
/// reachable through [`ApiKey::expose`].
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

/// Why a string is not an API key. Messages never contain key material.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KeyFormatError {
    /// No key at all.
    #[error("The API key is missing.")]
    Empty,
    /// Not one of the four known prefixes.
    #[error("The API key must start with pk_test_, pk_live_, sk_test_ or sk_live_.")]
    UnknownPrefix,
    /// Not 32 symbols after the prefix.
    #[error("The API key has the wrong length.")]
    WrongLength,
    /// A character outside the lower-case Crockford base32 alphabet after the prefix.
    #[error("The API key contains characters that are not allowed.")]
    InvalidSymbol,
}

impl KeyFormatError {
    /// Stable machine-readable code for API responses.
    pub fn code(&self) -> &'static str {
        match self {
            KeyFormatError::Empty => "missing_api_key",
            KeyFormatError::UnknownPrefix => "invalid_api_key_prefix",
            KeyFormatError::WrongLength => "invalid_api_key_length",
            KeyFormatError::InvalidSymbol => "invalid_api_key_symbol",
        }
    }
}

impl ApiKey {
    /// A new key from caller-supplied randomness (core has no random source of its own).
    pub fn generate(kind: KeyKind, mode: Mode, random: [u8; 20]) -> ApiKey {
        let prefix = PREFIXES
            .iter()
            .find(|&&(_, k, m)| k == kind && m == mode)
            .map(|&(p, _, _)| p)
            .expect("every kind and mode has a prefix");
        let body = crockford_encode(&random, KEY_SYMBOLS).to_ascii_lowercase();
        ApiKey(format!("{prefix}{body}"))
    }

    /// Checks the format only; whether the key exists is the backend's question.
    /// Strict on case: keys are copied, never typed, so a changed case means a damaged key.
    pub fn parse(s: &str) -> Result<ApiKey, KeyFormatError> {
        if s.is_empty() {
            return Err(KeyFormatError::Empty);
        }
        let body = PREFIXES
            .iter()
            .find_map(|&(prefix, _, _)| s.strip_prefix(prefix))
            .ok_or(KeyFormatError::UnknownPrefix)?;
        if body.len() != KEY_SYMBOLS {
            return Err(KeyFormatError::WrongLength);
        }
        let allowed = |b: u8| {
            b.is_ascii_digit()
                || (b.is_ascii_lowercase() && !matches!(b, b'i' | b'l' | b'o' | b'u'))
        };
        if !body.bytes().all(allowed) {
            return Err(KeyFormatError::InvalidSymbol);
        }
        Ok(ApiKey(s.to_owned()))
    }

    /// Publishable or secret.
    pub fn kind(&self) -> KeyKind {
        self.parts().1
    }

    /// Test or live.
    pub fn mode(&self) -> Mode {
        self.parts().2
    }

    /// The full key. Named so that every place the secret leaves this type is greppable.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The prefix, e.g. `"sk_live_"`.
    pub fn prefix(&self) -> &'static str {
        self.parts().0
    }

    /// The last four symbols, enough for a merchant to tell keys apart in a dashboard.
    pub fn last4(&self) -> &str {
        &self.0[self.0.len() - 4..]
    }

    /// The safe-to-log form, e.g. `"sk_live_…abcd"` (also what `Debug` prints).
    pub fn redacted(&self) -> String {
        format!("{}…{}", self.prefix(), self.last4())
    }

    fn parts(&self) -> (&'static str, KeyKind, Mode) {
        *PREFIXES
            .iter()
            .find(|(prefix, _, _)| self.0.starts_with(prefix))
            .expect("constructors only accept known prefixes")
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const KEY: &str = "sk_live_0123456789abcdefghjkmnpqrstvwxyz";

    #[test]
    fn generated_keys_carry_kind_and_mode() {
        for (kind, mode, prefix) in [
            (KeyKind::Publishable, Mode::Test, "pk_test_"),
            (KeyKind::Publishable, Mode::Live, "pk_live_"),
            (KeyKind::Secret, Mode::Test, "sk_test_"),
            (KeyKind::Secret, Mode::Live, "sk_live_"),
        ] {
            let key = ApiKey::generate(kind, mode, [0xA5; 20]);
            assert_eq!(key.kind(), kind);
            assert_eq!(key.mode(), mode);
            assert_eq!(key.prefix(), prefix);
            assert_eq!(key.expose().len(), prefix.len() + 32);
            assert_eq!(ApiKey::parse(key.expose()), Ok(key));
        }
    }

    #[test]
    fn parse_checks_prefix_length_and_alphabet() {
        assert!(ApiKey::parse(KEY).is_ok());
        assert_eq!(ApiKey::parse(""), Err(KeyFormatError::Empty));
        assert_eq!(
            ApiKey::parse("rk_live_0123456789abcdefghjkmnpqrstvwxyz"),
            Err(KeyFormatError::UnknownPrefix)
        );
        assert_eq!(
            ApiKey::parse("SK_LIVE_0123456789abcdefghjkmnpqrstvwxyz"),
            Err(KeyFormatError::UnknownPrefix)
        );
        assert_eq!(ApiKey::parse("sk_live_"), Err(KeyFormatError::WrongLength));
        assert_eq!(
            ApiKey::parse(&format!("{KEY}y")),
            Err(KeyFormatError::WrongLength)
        );
        assert_eq!(
            ApiKey::parse("sk_live_0123456789ABCDEFGHJKMNPQRSTVWXYZ"),
            Err(KeyFormatError::InvalidSymbol)
        );
        assert_eq!(
            ApiKey::parse("sk_live_0123456789abcdefghjkmnpqrstvwxyu"),
            Err(KeyFormatError::InvalidSymbol)
        );
        assert_eq!(
            ApiKey::parse("sk_live_0123456789abcdefghjkmnpqrstvwxy\u{e9}"),
            Err(KeyFormatError::WrongLength)
        );
        assert_eq!(
            KeyFormatError::UnknownPrefix.code(),
            "invalid_api_key_prefix"
        );
    }

    #[test]
    fn debug_is_redacted() {
        let key = ApiKey::parse(KEY).unwrap();
        assert_eq!(format!("{key:?}"), "sk_live_…wxyz");
        assert_eq!(key.last4(), "wxyz");
        assert!(!format!("{:?}", Some(&key)).contains("0123"));
    }

    #[test]
    fn modes_read_and_write_as_lowercase_words() {
        assert_eq!("test".parse(), Ok(Mode::Test));
        assert_eq!("live".parse(), Ok(Mode::Live));
        assert_eq!("Live".parse::<Mode>(), Err(ModeError));
        assert_eq!(Mode::Live.to_string(), "live");
        assert_eq!(serde_json::to_string(&Mode::Test).unwrap(), "\"test\"");
        assert_eq!(
            serde_json::from_str::<Mode>("\"live\"").unwrap(),
            Mode::Live
        );
    }

    proptest! {
        #[test]
        fn debug_never_contains_the_random_part(random in any::<[u8; 20]>(), secret in any::<bool>(), live in any::<bool>()) {
            let kind = if secret { KeyKind::Secret } else { KeyKind::Publishable };
            let mode = if live { Mode::Live } else { Mode::Test };
            let key = ApiKey::generate(kind, mode, random);
            let debug = format!("{key:?}");
            prop_assert!(!debug.contains(&key.expose()[8..36]));
            prop_assert_eq!(debug, format!("{}…{}", key.prefix(), key.last4()));
            prop_assert_eq!(ApiKey::parse(key.expose()), Ok(key));
        }
    }
}
