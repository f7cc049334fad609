//! Supported currencies and their ISO 4217 minor-unit exponents.

use core::fmt;
use core::str::FromStr;

/// A currency SuperPayment accepts, identified by its ISO 4217 code.
///
/// Serialised as the three-letter code (`"EUR"`), the same form the wire format uses.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum Currency {
    /// Euro.
    EUR,
    /// United States dollar.
    USD,
    /// Pound sterling.
    GBP,
    /// Swiss franc.
    CHF,
    /// Swedish krona.
    SEK,
    /// Norwegian krone.
    NOK,
    /// Danish krone.
    DKK,
    /// Polish złoty.
    PLN,
    /// Czech koruna.
    CZK,
    /// Hungarian forint (ISO 4217 keeps two decimals even though cash has none).
    HUF,
    /// Romanian leu.
    RON,
    /// Icelandic króna (no minor unit).
    ISK,
    /// Canadian dollar.
    CAD,
    /// Australian dollar.
    AUD,
    /// New Zealand dollar.
    NZD,
    /// Japanese yen (no minor unit).
    JPY,
    /// Kuwaiti dinar (three decimals).
    KWD,
    /// Bahraini dinar (three decimals).
    BHD,
    /// Omani rial (three decimals).
    OMR,
}

impl Currency {
    /// Whether `s` has the shape of an ISO 4217 code: exactly three upper-case ASCII letters.
    ///
    /// A code of that shape may still be unsupported (`"XYZ"`); parsing decides that. The
    /// widget uses the shape to report a malformed tag apart from an unsupported currency.
    pub fn is_code_shaped(s: &str) -> bool {
        s.len() == 3 && s.bytes().all(|b| b.is_ascii_uppercase())
    }

    /// Every supported currency, in declaration order.
    pub const ALL: &'static [Currency] = &[
        Currency::EUR,
        Currency::USD,
        Currency::GBP,
        Currency::CHF,
        Currency::SEK,
        Currency::NOK,
        Currency::DKK,
        Currency::PLN,
        Currency::CZK,
        Currency::HUF,
        Currency::RON,
        Currency::ISK,
        Currency::CAD,
        Currency::AUD,
        Currency::NZD,
        Currency::JPY,
        Currency::KWD,
        Currency::BHD,
        Currency::OMR,
    ];

    /// The ISO 4217 alphabetic code, e.g. `"EUR"`.
    pub fn code(self) -> &'static str {
        match self {
            Currency::EUR => "EUR",
            Currency::USD => "USD",
            Currency::GBP => "GBP",
            Currency::CHF => "CHF",
            Currency::SEK => "SEK",
            Currency::NOK => "NOK",
            Currency::DKK => "DKK",
            Currency::PLN => "PLN",
            Currency::CZK => "CZK",
            Currency::HUF => "HUF",
            Currency::RON => "RON",
            Currency::ISK => "ISK",
            Currency::CAD => "CAD",
            Currency::AUD => "AUD",
            Currency::NZD => "NZD",
            Currency::JPY => "JPY",
            Currency::KWD => "KWD",
            Currency::BHD => "BHD",
            Currency::OMR => "OMR",
        }
    }

    /// The ISO 4217 minor-unit exponent: how many decimals an amount may have
    /// (EUR 2, JPY 0, KWD 3).
    pub fn exponent(self) -> u32 {
        match self {
            Currency::JPY | Currency::ISK => 0,
            Currency::KWD | Currency::BHD | Currency::OMR => 3,
            _ => 2,
        }
    }

    /// A short symbol for human display (`"€"`, `"$"`, `"CHF"`, `"kr"`).
    ///
    /// Not unique (SEK, NOK, DKK and ISK all show `"kr"`), so never parse it back;
    /// the code is the identifier.
    pub fn symbol(self) -> &'static str {
        match self {
            Currency::EUR => "€",
            Currency::USD => "$",
            Currency::GBP => "£",
            Currency::CHF => "CHF",
            Currency::SEK | Currency::NOK | Currency::DKK | Currency::ISK => "kr",
            Currency::PLN => "zł",
            Currency::CZK => "Kč",
            Currency::HUF => "Ft",
            Currency::RON => "lei",
            Currency::CAD => "CA$",
            Currency::AUD => "A$",
            Currency::NZD => "NZ$",
            Currency::JPY => "¥",
            Currency::KWD => "KWD",
            Currency::BHD => "BHD",
            Currency::OMR => "OMR",
        }
    }
}

/// Why a currency code was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CurrencyError {
    /// Not the exact upper-case code of a supported currency.
    #[error("The currency is not supported; send an upper-case ISO 4217 code such as \"EUR\".")]
    Unsupported,
}

impl CurrencyError {
    /// Stable machine-readable code for API responses.
    pub fn code(&self) -> &'static str {
        match self {
            CurrencyError::Unsupported => "unsupported_currency",
        }
    }
}

impl FromStr for Currency {
    type Err = CurrencyError;

    /// Exact match only: `"eur"` or `" EUR"` are refused rather than guessed, so a
    /// merchant's bug surfaces at integration time instead of as a wrong charge.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Currency::ALL
            .iter()
            .copied()
            .find(|c| c.code() == s)
            .ok_or(CurrencyError::Unsupported)
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_currency_round_trips_through_its_code() {
        for &c in Currency::ALL {
            assert_eq!(c.code().parse::<Currency>(), Ok(c));
            assert_eq!(c.to_string(), c.code());
            assert_eq!(c.code().len(), 3);
        }
    }

    #[test]
    fn exponents_follow_iso_4217() {
        assert_eq!(Currency::EUR.exponent(), 2);
        assert_eq!(Currency::JPY.exponent(), 0);
        assert_eq!(Currency::KWD.exponent(), 3);
        assert_eq!(Currency::HUF.exponent(), 2);
    }

    #[test]
    fn the_code_shape_is_three_upper_case_letters_supported_or_not() {
        for &c in Currency::ALL {
            assert!(Currency::is_code_shaped(c.code()), "{c}");
        }
        assert!(Currency::is_code_shaped("XYZ"));
        for s in ["eur", "Eur", "EURO", "EU", "", " EUR", "E1R", "€UR", "ÉUR"] {
            assert!(!Currency::is_code_shaped(s), "{s:?}");
        }
    }

    #[test]
    fn lenient_spellings_are_refused() {
        for s in ["eur", " EUR", "EUR ", "Eur", "EURO", "", "XXX", "€"] {
            assert_eq!(
                s.parse::<Currency>(),
                Err(CurrencyError::Unsupported),
                "{s:?}"
            );
        }
    }

    #[test]
    fn serde_uses_the_code() {
        assert_eq!(serde_json::to_string(&Currency::KWD).unwrap(), "\"KWD\"");
        assert_eq!(
            serde_json::from_str::<Currency>("\"JPY\"").unwrap(),
            Currency::JPY
        );
        assert!(serde_json::from_str::<Currency>("\"jpy\"").is_err());
    }
}
