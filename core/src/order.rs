//! The merchant's own order identifier, checked but never rewritten.

use core::fmt;

/// A merchant's order id: 1 to 64 ASCII letters, digits and `- _ . : # /`.
///
/// Case-sensitive and never normalised: it is the merchant's key, echoed back exactly in
/// responses and webhooks so they can match it. The character set covers the usual
/// shop-system formats (`ORD-2024/000123`, `shop#42`, `inv:7f3a`) while keeping out
/// whitespace, quotes and control characters that break logs, CSV exports and URLs.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OrderId(String);

/// Why an order id was refused. Each variant has a stable [`OrderIdError::code`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OrderIdError {
    /// The string was empty.
    #[error("The order id is missing.")]
    Empty,
    /// Longer than [`OrderId::MAX_LEN`] characters.
    #[error("The order id must be at most 64 characters long.")]
    TooLong,
    /// A character outside ASCII letters, digits and `- _ . : # /`.
    #[error(
        "The order id contains {ch:?} at position {position}; only ASCII letters, digits and - _ . : # / are allowed."
    )]
    InvalidChar {
        /// The offending character.
        ch: char,
        /// Its 1-based position.
        position: usize,
    },
}

impl OrderIdError {
    /// Stable machine-readable code for API responses.
    pub fn code(&self) -> &'static str {
        match self {
            OrderIdError::Empty => "missing_order_id",
            OrderIdError::TooLong => "order_id_too_long",
            OrderIdError::InvalidChar { .. } => "invalid_order_id",
        }
    }
}

fn is_allowed(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':' | '#' | '/')
}

impl OrderId {
    /// The longest order id accepted, in characters (all ASCII, so also bytes).
    pub const MAX_LEN: usize = 64;

    /// Checks `s` as it is; no trimming or case folding.
    pub fn parse(s: &str) -> Result<OrderId, OrderIdError> {
        if s.is_empty() {
            return Err(OrderIdError::Empty);
        }
        if let Some((index, ch)) = s.chars().enumerate().find(|&(_, c)| !is_allowed(c)) {
            return Err(OrderIdError::InvalidChar {
                ch,
                position: index + 1,
            });
        }
        if s.len() > Self::MAX_LEN {
            return Err(OrderIdError::TooLong);
        }
        Ok(OrderId(s.to_owned()))
    }

    /// The id exactly as the merchant sent it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for OrderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_common_merchant_formats_unchanged() {
        for s in [
            "1",
            "ORD-2024/000123",
            "shop#42",
            "inv:7f3a",
            "a_b.c",
            "AbC",
            &"x".repeat(64),
        ] {
            let id = OrderId::parse(s).unwrap();
            assert_eq!(id.as_str(), s);
            assert_eq!(id.to_string(), s);
        }
        assert_ne!(OrderId::parse("abc"), OrderId::parse("ABC"));
    }

    /// The widget reports a tag whose `data-order-id` breaks this rule as `invalid_tag`
    /// (docs/widget.md documents it as 1 to 64 of `A-Z a-z 0-9 - _ . : # /`), and the API
    /// refuses the same ids: every ASCII character is checked against that list.
    #[test]
    fn admits_exactly_the_documented_characters_and_lengths() {
        let documented = |c: char| {
            c.is_ascii_uppercase()
                || c.is_ascii_lowercase()
                || c.is_ascii_digit()
                || "-_.:#/".contains(c)
        };
        for c in (0u8..=127).map(char::from) {
            let one = c.to_string();
            assert_eq!(OrderId::parse(&one).is_ok(), documented(c), "{c:?}");
            assert_eq!(
                OrderId::parse(&format!("A{c}/64")).is_ok(),
                documented(c),
                "{c:?} inside an id"
            );
        }
        assert!(OrderId::parse(&"#".repeat(64)).is_ok());
        assert_eq!(OrderId::parse(&"/".repeat(65)), Err(OrderIdError::TooLong));
    }

    #[test]
    fn refuses_empty_long_and_odd_characters() {
        assert_eq!(OrderId::parse(""), Err(OrderIdError::Empty));
        assert_eq!(OrderId::parse(&"x".repeat(65)), Err(OrderIdError::TooLong));
        assert_eq!(
            OrderId::parse(" 42"),
            Err(OrderIdError::InvalidChar {
                ch: ' ',
                position: 1
            })
        );
        assert_eq!(
            OrderId::parse("42 "),
            Err(OrderIdError::InvalidChar {
                ch: ' ',
                position: 3
            })
        );
        for s in [
            "a b", "a\nb", "a\"b", "a'b", "a,b", "a;b", "a?b", "a%b", "a\\b", "ördre", "a\u{0}b",
        ] {
            assert_eq!(
                OrderId::parse(s).unwrap_err().code(),
                "invalid_order_id",
                "{s:?}"
            );
        }
        assert_eq!(OrderIdError::Empty.code(), "missing_order_id");
        assert_eq!(OrderIdError::TooLong.code(), "order_id_too_long");
    }
}
