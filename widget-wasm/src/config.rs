//! The checkout's settings, read from the iframe URL the loader built out of the tag's data attributes.
//!
//! Query parameters (short, since they travel in every iframe URL): `k` publishable key,
//! `a` amount, `c` currency, `o` order id, `l` locale, `t` theme, `s` signature,
//! `m` manual capture (`1`: the payment only authorizes), `p` origin of the embedding page
//! (where results are posted).
use superpayment_core::{ApiKey, Currency, KeyKind, Locale, Money, OrderId};

/// Light, dark, or whatever the shopper's system prefers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Theme {
    /// Follow `prefers-color-scheme`.
    Auto,
    /// Always light.
    Light,
    /// Always dark.
    Dark,
}

/// A validated checkout configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// The merchant's publishable key.
    pub key: String,
    /// The amount to pay.
    pub amount: Money,
    /// The merchant's order id.
    pub order_id: OrderId,
    /// The language of every text.
    pub locale: Locale,
    /// Colours.
    pub theme: Theme,
    /// Optional HMAC of order id, amount and currency.
    pub signature: Option<String>,
    /// `data-capture="manual"`: pay with `capture: false`, a hold the shop captures later.
    pub manual_capture: bool,
    /// Origin of the page embedding the iframe: the only target of its messages.
    pub parent_origin: String,
}

/// What is wrong with the tag, as a stable code for `superpayment:error`.
///
/// The loader checks only the key's shape (so a secret key never reaches this URL); the
/// other attributes are checked here. A missing or malformed one is `invalid_tag`, the
/// code the loader used to send for it; a well-formed amount or currency that the shared
/// rules refuse has its precise code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigError {
    /// `data-api-key` is not a publishable key.
    InvalidKey,
    /// A secret key was put into a page.
    SecretKeyInPage,
    /// `data-amount` is missing or not a positive decimal (`invalid_tag`).
    MalformedAmount,
    /// `data-currency` is not three upper-case letters (`invalid_tag`).
    MalformedCurrency,
    /// `data-order-id` is missing or breaks the order id rule (`invalid_tag`).
    InvalidOrderId,
    /// `data-amount` is a positive decimal the currency refuses (too many decimals, too large).
    InvalidAmount,
    /// `data-currency` is shaped like a code but not supported.
    InvalidCurrency,
    /// The loader did not pass the page's origin.
    InvalidParentOrigin,
}

impl ConfigError {
    /// Stable code sent to the page.
    pub fn code(self) -> &'static str {
        match self {
            ConfigError::InvalidKey => "invalid_api_key",
            ConfigError::SecretKeyInPage => "secret_key_not_allowed",
            ConfigError::MalformedAmount
            | ConfigError::MalformedCurrency
            | ConfigError::InvalidOrderId => "invalid_tag",
            ConfigError::InvalidAmount => "invalid_amount",
            ConfigError::InvalidCurrency => "invalid_currency",
            ConfigError::InvalidParentOrigin => "invalid_parent_origin",
        }
    }

    /// An English explanation for the integrator (console and event), never shown to shoppers.
    pub fn message(self) -> &'static str {
        match self {
            ConfigError::InvalidKey => "data-api-key must be a publishable key (pk_test_... or pk_live_...).",
            ConfigError::SecretKeyInPage => "data-api-key holds a secret key: never put it in a page, and roll it now.",
            ConfigError::MalformedAmount => "data-amount must be a positive decimal such as 99.00.",
            ConfigError::MalformedCurrency => "data-currency must be an ISO 4217 code such as EUR.",
            ConfigError::InvalidOrderId => "data-order-id must be 1 to 64 of A-Z a-z 0-9 - _ . : # /.",
            ConfigError::InvalidAmount => "data-amount must be a positive decimal such as 99.00, with no more decimals than the currency has.",
            ConfigError::InvalidCurrency => "data-currency must be a supported ISO 4217 code such as EUR.",
            ConfigError::InvalidParentOrigin => "The checkout must be opened by widget.js.",
        }
    }
}

/// `scheme://host[:port]` and nothing more: `postMessage` needs an exact origin.
fn is_origin(s: &str) -> bool {
    let host = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"));
    matches!(host, Some(h) if !h.is_empty()
        && h.len() <= 255
        && h.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']')))
}

impl Config {
    /// Builds the configuration from a parameter lookup (the iframe URL's query).
    pub fn from_params(get: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let key = get("k").unwrap_or_default();
        match ApiKey::parse(&key) {
            Ok(k) if k.kind() == KeyKind::Publishable => {}
            Ok(_) => return Err(ConfigError::SecretKeyInPage),
            Err(_) if key.starts_with("sk_") => return Err(ConfigError::SecretKeyInPage),
            Err(_) => return Err(ConfigError::InvalidKey),
        }
        let amount = get("a").unwrap_or_default();
        let currency = get("c")
            .filter(|c| !c.is_empty())
            .unwrap_or_else(|| "EUR".into());
        // Every attribute's shape before any currency rule, in the order the loader used
        // to check them, so a tag gets the code and message it always got.
        Money::check_positive_decimal(&amount).map_err(|_| ConfigError::MalformedAmount)?;
        if !Currency::is_code_shaped(&currency) {
            return Err(ConfigError::MalformedCurrency);
        }
        let order_id = OrderId::parse(&get("o").unwrap_or_default())
            .map_err(|_| ConfigError::InvalidOrderId)?;
        let currency = currency
            .parse::<Currency>()
            .map_err(|_| ConfigError::InvalidCurrency)?;
        let amount = Money::parse(&amount, currency).map_err(|_| ConfigError::InvalidAmount)?;
        let parent_origin = get("p").unwrap_or_default();
        if !is_origin(&parent_origin) {
            return Err(ConfigError::InvalidParentOrigin);
        }
        let locale = Locale::from_tag(&get("l").unwrap_or_default());
        let theme = match get("t").as_deref() {
            Some("dark") => Theme::Dark,
            Some("light") => Theme::Light,
            _ => Theme::Auto,
        };
        let signature = get("s").filter(|s| !s.is_empty());
        let manual_capture = get("m").as_deref() == Some("1");
        Ok(Config {
            key,
            amount,
            order_id,
            locale,
            theme,
            signature,
            manual_capture,
            parent_origin,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PK: &str = "pk_test_0123456789abcdefghjkmnpqrstvwxyz";

    fn params<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    fn base() -> Vec<(&'static str, &'static str)> {
        vec![
            ("k", PK),
            ("a", "99.00"),
            ("o", "ORDER_123"),
            ("p", "https://shop.example"),
        ]
    }

    #[test]
    fn a_complete_tag_is_accepted_with_defaults() {
        let pairs = base();
        let cfg = Config::from_params(params(&pairs)).unwrap();
        assert_eq!(cfg.amount.minor(), 9900);
        assert_eq!(cfg.amount.currency(), Currency::EUR);
        assert_eq!(cfg.locale, Locale::En);
        assert_eq!(cfg.theme, Theme::Auto);
        assert_eq!(cfg.signature, None);
        assert!(!cfg.manual_capture);
        assert_eq!(cfg.parent_origin, "https://shop.example");
    }

    #[test]
    fn locale_theme_and_currency_are_read() {
        let mut pairs = base();
        pairs.retain(|(k, _)| *k != "a");
        pairs.extend([
            ("l", "fr-CA"),
            ("t", "dark"),
            ("c", "JPY"),
            ("a", "1000"),
            ("s", "ab"),
            ("m", "1"),
        ]);
        let cfg = Config::from_params(params(&pairs)).unwrap();
        assert!(cfg.manual_capture);
        assert_eq!(cfg.locale, Locale::Fr);
        assert_eq!(cfg.theme, Theme::Dark);
        assert_eq!(cfg.amount.minor(), 1000);
        assert_eq!(cfg.signature.as_deref(), Some("ab"));
    }

    #[test]
    fn each_bad_attribute_has_its_error() {
        let cases: &[(&str, &str, ConfigError)] = &[
            ("k", "nonsense", ConfigError::InvalidKey),
            (
                "k",
                "sk_test_0123456789abcdefghjkmnpqrstvwxyz",
                ConfigError::SecretKeyInPage,
            ),
            ("k", "sk_live_short", ConfigError::SecretKeyInPage),
            ("a", "99.001", ConfigError::InvalidAmount),
            ("a", "1000000000000000", ConfigError::InvalidAmount),
            ("a", "-5", ConfigError::MalformedAmount),
            ("a", "", ConfigError::MalformedAmount),
            ("a", "0.00", ConfigError::MalformedAmount),
            ("a", "99,00", ConfigError::MalformedAmount),
            ("c", "XYZ", ConfigError::InvalidCurrency),
            ("c", "eur", ConfigError::MalformedCurrency),
            ("c", "EURO", ConfigError::MalformedCurrency),
            ("o", "order 1", ConfigError::InvalidOrderId),
            ("o", "", ConfigError::InvalidOrderId),
            ("o", "ORDER\"1", ConfigError::InvalidOrderId),
            ("p", "", ConfigError::InvalidParentOrigin),
            (
                "p",
                "https://shop.example/path",
                ConfigError::InvalidParentOrigin,
            ),
            ("p", "javascript:alert(1)", ConfigError::InvalidParentOrigin),
        ];
        for (name, value, expected) in cases {
            let mut pairs = base();
            pairs.retain(|(k, _)| k != name);
            pairs.push((name, value));
            assert_eq!(
                Config::from_params(params(&pairs)).unwrap_err(),
                *expected,
                "{name}={value}"
            );
        }
    }

    #[test]
    fn a_malformed_amount_currency_or_order_id_is_invalid_tag() {
        let long = "x".repeat(65);
        let cases: &[(&[(&str, &str)], ConfigError)] = &[
            (&[("a", "abc")], ConfigError::MalformedAmount),
            (&[("c", "eur")], ConfigError::MalformedCurrency),
            (&[("o", "order 1")], ConfigError::InvalidOrderId),
            (&[("o", long.as_str())], ConfigError::InvalidOrderId),
            // The shape of every attribute comes before the currency's rules.
            (
                &[("c", "JPY"), ("a", "10.50"), ("o", "order 1")],
                ConfigError::InvalidOrderId,
            ),
            (&[("c", "XYZ"), ("a", "-1")], ConfigError::MalformedAmount),
        ];
        for (changes, expected) in cases {
            let mut pairs: Vec<(&str, &str)> = base();
            pairs.retain(|(k, _)| changes.iter().all(|(name, _)| name != k));
            pairs.extend(changes.iter().copied());
            let e = Config::from_params(params(&pairs)).unwrap_err();
            assert_eq!(e, *expected, "{changes:?}");
            assert_eq!(e.code(), "invalid_tag", "{changes:?}");
        }
        assert_eq!(
            ConfigError::InvalidOrderId.message(),
            "data-order-id must be 1 to 64 of A-Z a-z 0-9 - _ . : # /."
        );
        // Well-formed values the shared rules refuse keep their precise codes.
        assert_eq!(ConfigError::InvalidAmount.code(), "invalid_amount");
        assert_eq!(ConfigError::InvalidCurrency.code(), "invalid_currency");
    }
}
