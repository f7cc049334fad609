//! Non-negative amounts in exact minor units, their wire format and their display.

use core::fmt;

use rust_decimal::Decimal;

use crate::currency::Currency;

/// The largest amount accepted, in minor units of any currency.
///
/// Eleven nines: 999,999,999.99 EUR, 99,999,999.999 KWD or 99,999,999,999 JPY, far above
/// any single voucher payment. The headroom is what makes the rest simple: the sum of two
/// amounts cannot overflow `i64`, `amount * 10_000` for commissions fits easily, a
/// BIGINT `SUM` over more than ninety million maximal rows cannot overflow, and every value
/// stays below 2^53 so JavaScript clients read the minor units of the JSON exactly.
pub const MAX_MINOR: i64 = 99_999_999_999;

/// Longest run of significant integer digits handed to the decimal parser. Anything longer
/// is already far beyond [`MAX_MINOR`]; cutting it off here keeps a 40-digit input from
/// overflowing the 96-bit decimal mantissa.
const MAX_INTEGER_DIGITS: usize = 12;

/// An amount of money: `0 ..= MAX_MINOR` minor units of one currency.
///
/// The fields are private so the invariant holds everywhere: a `Money` value is never
/// negative and never above [`MAX_MINOR`]. `Display` gives the wire format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Money {
    minor: i64,
    currency: Currency,
}

/// Why an amount was refused. Each variant has a stable [`AmountError::code`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    /// The string was empty.
    #[error("The amount is missing.")]
    Empty,
    /// Not a plain decimal: letters, exponents, signs, commas, spaces, `.5` or `5.`.
    #[error(
        "The amount must be a plain decimal number such as \"99.00\": digits with an optional \".\" followed by digits, without spaces, signs, commas or exponents."
    )]
    Invalid,
    /// Below zero (a leading `-`, or a subtraction that would go negative).
    #[error("The amount must not be negative.")]
    Negative,
    /// Exactly zero where a payment needs a positive amount.
    #[error("The amount must be greater than zero.")]
    Zero,
    /// More decimals than the currency's minor unit allows.
    #[error("{}", too_many_decimals_message(*.max))]
    TooManyDecimals {
        /// The currency's exponent: the most decimals it allows.
        max: u32,
    },
    /// Above [`MAX_MINOR`] minor units.
    #[error("The amount is larger than the maximum SuperPayment accepts.")]
    TooLarge,
    /// Arithmetic between two different currencies.
    #[error("The amounts are in different currencies.")]
    CurrencyMismatch,
}

fn too_many_decimals_message(max: u32) -> String {
    match max {
        0 => "This currency has no decimal places: send a whole number.".to_owned(),
        1 => "The amount has too many decimal places: this currency allows at most 1.".to_owned(),
        n => format!("The amount has too many decimal places: this currency allows at most {n}."),
    }
}

impl AmountError {
    /// Stable machine-readable code for API responses.
    ///
    /// `Negative` and `Zero` share `amount_not_positive`: a client reacts to both the same way.
    pub fn code(&self) -> &'static str {
        match self {
            AmountError::Empty => "missing_amount",
            AmountError::Invalid => "invalid_amount",
            AmountError::Negative | AmountError::Zero => "amount_not_positive",
            AmountError::TooManyDecimals { .. } => "amount_too_many_decimals",
            AmountError::TooLarge => "amount_too_large",
            AmountError::CurrencyMismatch => "currency_mismatch",
        }
    }
}

/// The two digit runs of an amount that passed the currency-independent checks.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PlainDecimal<'a> {
    integer: &'a str,
    fraction: &'a str,
}

fn is_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// The part of amount parsing that does not need the currency, so that a request with a
/// bad currency can still report a malformed amount.
///
/// Accepts exactly `[0-9]+(\.[0-9]+)?`. Leading zeros (`"007.50"`) are accepted: the
/// grammar has no octal or other reading that could make them ambiguous, and some
/// merchant systems pad amounts to a fixed width.
pub(crate) fn lex_positive_amount(s: &str) -> Result<PlainDecimal<'_>, AmountError> {
    if s.is_empty() {
        return Err(AmountError::Empty);
    }
    let split = |s| -> Option<PlainDecimal<'_>> {
        match str::split_once(s, '.') {
            None if is_digits(s) => Some(PlainDecimal {
                integer: s,
                fraction: "",
            }),
            Some((i, f)) if is_digits(i) && is_digits(f) => Some(PlainDecimal {
                integer: i,
                fraction: f,
            }),
            _ => None,
        }
    };
    if let Some(rest) = s.strip_prefix('-') {
        // Only a well-formed number behind the sign earns the more specific message.
        return Err(match split(rest) {
            Some(_) => AmountError::Negative,
            None => AmountError::Invalid,
        });
    }
    let plain = split(s).ok_or(AmountError::Invalid)?;
    if plain
        .integer
        .bytes()
        .chain(plain.fraction.bytes())
        .all(|b| b == b'0')
    {
        return Err(AmountError::Zero);
    }
    Ok(plain)
}

impl Money {
    /// An amount from minor units (`9900` EUR is 99.00 EUR).
    ///
    /// Zero is allowed because balances and remainders can be zero; only [`Money::parse`]
    /// insists on a positive payment amount.
    pub fn from_minor(minor: i64, currency: Currency) -> Result<Money, AmountError> {
        if minor < 0 {
            Err(AmountError::Negative)
        } else if minor > MAX_MINOR {
            Err(AmountError::TooLarge)
        } else {
            Ok(Money { minor, currency })
        }
    }

    /// Zero in `currency`.
    pub fn zero(currency: Currency) -> Money {
        Money { minor: 0, currency }
    }

    /// Checks only the currency-independent shape of a payment amount, the first step of
    /// [`Money::parse`]: a positive plain decimal (`[0-9]+(\.[0-9]+)?`, not all zeros).
    ///
    /// Errors are `Empty`, `Invalid`, `Negative` or `Zero`. An amount that passes can still
    /// be refused by [`Money::parse`] for its currency (`TooManyDecimals`, `TooLarge`); the
    /// widget tells the two apart to report a malformed tag apart from one its currency
    /// refuses, even when the currency is unknown.
    pub fn check_positive_decimal(s: &str) -> Result<(), AmountError> {
        lex_positive_amount(s).map(|_| ())
    }

    /// Parses a wire amount (`"99.00"`, `"99"`, `"99.5"`) for a payment: strictly positive.
    ///
    /// The written number of decimals must not exceed the currency's exponent, even when the
    /// extra digits are zeros (`"99.000"` EUR is refused): a third decimal on a euro amount
    /// usually means the sender confused currencies, and guessing would move real money.
    pub fn parse(s: &str, currency: Currency) -> Result<Money, AmountError> {
        let plain = lex_positive_amount(s)?;
        let exponent = currency.exponent();
        if plain.fraction.len() > exponent as usize {
            return Err(AmountError::TooManyDecimals { max: exponent });
        }
        let integer = match plain.integer.trim_start_matches('0') {
            "" => "0",
            significant => significant,
        };
        if integer.len() > MAX_INTEGER_DIGITS {
            return Err(AmountError::TooLarge);
        }
        // The digits, read as one integer with the fraction's length as its scale: at most
        // MAX_INTEGER_DIGITS + 3 digits, so far inside an i64 (and the decimal's 96 bits).
        // Built from the lexed digits rather than through rust_decimal's string parser,
        // whose general grammar (signs, exponents, underscores, rounding) the lexer has
        // already narrowed to this; the arithmetic stays rust_decimal's.
        let digits = integer
            .bytes()
            .chain(plain.fraction.bytes())
            .fold(0i64, |n, d| n * 10 + i64::from(d - b'0'));
        let mut value = Decimal::try_new(digits, plain.fraction.len() as u32)
            .map_err(|_| AmountError::TooLarge)?;
        // Scale only grows here, so the rescale is exact and the mantissa is the minor amount.
        value.rescale(exponent);
        let minor = i64::try_from(value.mantissa()).map_err(|_| AmountError::TooLarge)?;
        Money::from_minor(minor, currency)
    }

    /// The amount in minor units (cents for EUR, yen for JPY, fils for KWD).
    pub fn minor(self) -> i64 {
        self.minor
    }

    /// The amount's currency.
    pub fn currency(self) -> Currency {
        self.currency
    }

    /// Whether the amount is zero.
    pub fn is_zero(self) -> bool {
        self.minor == 0
    }

    /// Adds two amounts of the same currency.
    pub fn checked_add(self, other: Money) -> Result<Money, AmountError> {
        self.same_currency(other)?;
        // Both sides are at most MAX_MINOR, so the i64 sum cannot overflow.
        Money::from_minor(self.minor + other.minor, self.currency)
    }

    /// Subtracts `other`; refuses to go below zero.
    pub fn checked_sub(self, other: Money) -> Result<Money, AmountError> {
        self.same_currency(other)?;
        Money::from_minor(self.minor - other.minor, self.currency)
    }

    /// The smaller of two amounts of the same currency.
    pub fn min(self, other: Money) -> Money {
        debug_assert_eq!(
            self.currency, other.currency,
            "Money::min across currencies"
        );
        if other.minor < self.minor {
            other
        } else {
            self
        }
    }

    /// The exact decimal value in major units (`9900` EUR becomes `99.00`).
    pub fn to_decimal(self) -> Decimal {
        Decimal::new(self.minor, self.currency.exponent())
    }

    /// The amount for people, in the widget's language: en `"€1,234.50"`, fr `"1 234,50 €"`,
    /// de `"1.234,50 €"`, JPY en `"¥1,000"`.
    ///
    /// French groups with U+202F (narrow no-break space) and every symbol placed after the
    /// number, or a letter symbol before it (`"CHF 99.00"`), is joined with U+00A0 so a
    /// line break never separates amount and currency.
    pub fn format_locale(self, locale: Locale) -> String {
        let (group, decimal) = match locale {
            Locale::En => (',', '.'),
            Locale::Fr => ('\u{202F}', ','),
            Locale::De => ('.', ','),
        };
        let symbol = self.currency.symbol();
        let mut out = String::with_capacity(32);
        if locale == Locale::En {
            out.push_str(symbol);
            if symbol.ends_with(|c: char| c.is_alphabetic()) {
                out.push('\u{A0}');
            }
        }
        self.write_number(&mut out, Some(group), decimal);
        if locale != Locale::En {
            out.push('\u{A0}');
            out.push_str(symbol);
        }
        out
    }

    /// The wire format of [`Display`](fmt::Display) as a `String`: `"99.00"`, `"1000"` JPY.
    ///
    /// Built without `core::fmt` (digits from `itoa`), so the widget's Wasm carries no
    /// formatting machinery; `Display` writes the same string.
    pub fn to_wire(self) -> String {
        let mut out = String::with_capacity(24);
        self.write_number(&mut out, None, '.');
        out
    }

    /// Appends the major units (with `group` between thousands, if any), then `decimal` and
    /// the zero-padded fraction digits for currencies that have them.
    fn write_number(self, out: &mut String, group: Option<char>, decimal: char) {
        let exponent = self.currency.exponent();
        let unit = 10_i64.pow(exponent);
        let mut digits = itoa::Buffer::new();
        let major = digits.format(self.minor / unit);
        match group {
            Some(separator) => group_thousands(out, major, separator),
            None => out.push_str(major),
        }
        if exponent > 0 {
            out.push(decimal);
            let fraction = digits.format(self.minor % unit);
            for _ in fraction.len()..exponent as usize {
                out.push('0');
            }
            out.push_str(fraction);
        }
    }

    fn same_currency(self, other: Money) -> Result<(), AmountError> {
        if self.currency == other.currency {
            Ok(())
        } else {
            Err(AmountError::CurrencyMismatch)
        }
    }

    /// For modules that have already proven the invariant (e.g. a commission never exceeds
    /// the amount it is taken from).
    pub(crate) fn from_minor_unchecked(minor: i64, currency: Currency) -> Money {
        debug_assert!((0..=MAX_MINOR).contains(&minor));
        Money { minor, currency }
    }
}

/// Appends the ASCII digits of `digits` with `separator` between groups of three.
fn group_thousands(out: &mut String, digits: &str, separator: char) {
    // The leading group is the short one: 1,234,567 starts with "1".
    let head = match digits.len() % 3 {
        0 => 3.min(digits.len()),
        n => n,
    };
    out.push_str(&digits[..head]);
    for start in (head..digits.len()).step_by(3) {
        out.push(separator);
        out.push_str(&digits[start..start + 3]);
    }
}

impl fmt::Display for Money {
    /// The wire format: exactly `exponent` decimals, `.` as separator, no currency
    /// (`"99.00"`, `"1000"` JPY, `"1.500"` KWD). [`Money::parse`] reads it back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_wire())
    }
}

/// The languages the widget formats amounts for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Locale {
    /// English: `€1,234.50`.
    #[default]
    En,
    /// French: `1 234,50 €`.
    Fr,
    /// German: `1.234,50 €`.
    De,
}

impl Locale {
    /// The locale for a BCP 47 tag such as `"fr-FR"` or `"de_CH"`, by primary language
    /// only; anything unknown falls back to English rather than failing a checkout.
    pub fn from_tag(tag: &str) -> Locale {
        let primary = tag.split(['-', '_']).next().unwrap_or_default().trim();
        if primary.eq_ignore_ascii_case("fr") {
            Locale::Fr
        } else if primary.eq_ignore_ascii_case("de") {
            Locale::De
        } else {
            Locale::En
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn eur(s: &str) -> Result<Money, AmountError> {
        Money::parse(s, Currency::EUR)
    }

    #[test]
    fn the_shape_check_refuses_what_parse_refuses_before_looking_at_the_currency() {
        for s in [
            "", "abc", "-5", "0", "0.00", "1e3", ".5", "5.", " 5", "5,00", "+5",
        ] {
            assert_eq!(
                Money::check_positive_decimal(s),
                Err(eur(s).unwrap_err()),
                "{s:?}"
            );
        }
        // Well formed, refused only by the currency or the maximum.
        for (s, c) in [("10.50", Currency::JPY), ("99.001", Currency::EUR)] {
            assert_eq!(Money::check_positive_decimal(s), Ok(()));
            assert!(matches!(
                Money::parse(s, c),
                Err(AmountError::TooManyDecimals { .. })
            ));
        }
        assert_eq!(Money::check_positive_decimal("1000000000000000"), Ok(()));
        assert_eq!(eur("1000000000000000"), Err(AmountError::TooLarge));
        assert_eq!(Money::check_positive_decimal("007.50"), Ok(()));
    }

    #[test]
    fn accepts_plain_decimals_up_to_the_currency_exponent() {
        assert_eq!(eur("99.00").unwrap().minor(), 9900);
        assert_eq!(eur("99").unwrap().minor(), 9900);
        assert_eq!(eur("99.5").unwrap().minor(), 9950);
        assert_eq!(eur("0.01").unwrap().minor(), 1);
        assert_eq!(Money::parse("1000", Currency::JPY).unwrap().minor(), 1000);
        assert_eq!(Money::parse("1.5", Currency::KWD).unwrap().minor(), 1500);
        assert_eq!(Money::parse("1.234", Currency::BHD).unwrap().minor(), 1234);
    }

    #[test]
    fn leading_zeros_are_accepted() {
        assert_eq!(eur("007.50").unwrap().minor(), 750);
        assert_eq!(eur(&format!("{}1", "0".repeat(60))).unwrap().minor(), 100);
    }

    #[test]
    fn every_listed_rejection_has_its_own_error() {
        let cases: &[(&str, AmountError)] = &[
            ("", AmountError::Empty),
            ("-1", AmountError::Negative),
            ("-0.50", AmountError::Negative),
            ("0", AmountError::Zero),
            ("0.00", AmountError::Zero),
            ("000.0", AmountError::Zero),
            ("99.001", AmountError::TooManyDecimals { max: 2 }),
            ("99.000", AmountError::TooManyDecimals { max: 2 }),
            ("1e3", AmountError::Invalid),
            ("1E3", AmountError::Invalid),
            (" 99", AmountError::Invalid),
            ("99 ", AmountError::Invalid),
            ("9 9", AmountError::Invalid),
            ("99\n", AmountError::Invalid),
            ("99,00", AmountError::Invalid),
            ("1,000.00", AmountError::Invalid),
            ("+5", AmountError::Invalid),
            ("--5", AmountError::Invalid),
            ("-", AmountError::Invalid),
            ("-abc", AmountError::Invalid),
            (".5", AmountError::Invalid),
            ("5.", AmountError::Invalid),
            (".", AmountError::Invalid),
            ("1.2.3", AmountError::Invalid),
            ("1_000", AmountError::Invalid),
            ("abc", AmountError::Invalid),
            ("NaN", AmountError::Invalid),
            ("inf", AmountError::Invalid),
            ("0x10", AmountError::Invalid),
            ("٣", AmountError::Invalid),
            ("１２", AmountError::Invalid),
            ("12\u{A0}", AmountError::Invalid),
            ("12345678901234567890", AmountError::TooLarge),
            ("1000000000.00", AmountError::TooLarge),
            (&"9".repeat(200), AmountError::TooLarge),
        ];
        for (input, expected) in cases {
            assert_eq!(eur(input), Err(*expected), "{input:?}");
        }
    }

    #[test]
    fn decimals_follow_the_currency() {
        assert_eq!(
            Money::parse("1.5", Currency::JPY),
            Err(AmountError::TooManyDecimals { max: 0 })
        );
        assert_eq!(
            Money::parse("1.0001", Currency::KWD),
            Err(AmountError::TooManyDecimals { max: 3 })
        );
    }

    #[test]
    fn the_maximum_is_exact_in_every_currency() {
        assert_eq!(eur("999999999.99").unwrap().minor(), MAX_MINOR);
        assert_eq!(eur("1000000000"), Err(AmountError::TooLarge));
        assert_eq!(
            Money::parse("99999999999", Currency::JPY).unwrap().minor(),
            MAX_MINOR
        );
        assert_eq!(
            Money::parse("100000000000", Currency::JPY),
            Err(AmountError::TooLarge)
        );
        assert_eq!(
            Money::parse("99999999.999", Currency::KWD).unwrap().minor(),
            MAX_MINOR
        );
        assert_eq!(
            Money::parse("100000000", Currency::KWD),
            Err(AmountError::TooLarge)
        );
    }

    #[test]
    fn from_minor_keeps_the_invariant() {
        assert!(Money::from_minor(0, Currency::EUR).unwrap().is_zero());
        assert_eq!(
            Money::from_minor(-1, Currency::EUR),
            Err(AmountError::Negative)
        );
        assert_eq!(
            Money::from_minor(MAX_MINOR + 1, Currency::EUR),
            Err(AmountError::TooLarge)
        );
        assert_eq!(
            Money::from_minor(i64::MAX, Currency::EUR),
            Err(AmountError::TooLarge)
        );
        assert_eq!(Money::zero(Currency::JPY).to_string(), "0");
    }

    #[test]
    fn zero_formats_but_is_not_a_payment() {
        for &c in Currency::ALL {
            let zero = Money::from_minor(0, c).unwrap();
            assert_eq!(Money::parse(&zero.to_string(), c), Err(AmountError::Zero));
        }
        assert_eq!(Money::zero(Currency::EUR).to_string(), "0.00");
    }

    #[test]
    fn wire_format_has_exactly_exponent_decimals() {
        assert_eq!(
            Money::from_minor(9900, Currency::EUR).unwrap().to_string(),
            "99.00"
        );
        assert_eq!(
            Money::from_minor(5, Currency::EUR).unwrap().to_string(),
            "0.05"
        );
        assert_eq!(
            Money::from_minor(1000, Currency::JPY).unwrap().to_string(),
            "1000"
        );
        assert_eq!(
            Money::from_minor(1500, Currency::KWD).unwrap().to_string(),
            "1.500"
        );
        assert_eq!(
            Money::from_minor(MAX_MINOR, Currency::EUR)
                .unwrap()
                .to_string(),
            "999999999.99"
        );
    }

    #[test]
    fn arithmetic_is_checked() {
        let a = Money::from_minor(700, Currency::EUR).unwrap();
        let b = Money::from_minor(300, Currency::EUR).unwrap();
        let max = Money::from_minor(MAX_MINOR, Currency::EUR).unwrap();
        let yen = Money::from_minor(1, Currency::JPY).unwrap();
        assert_eq!(a.checked_add(b).unwrap().minor(), 1000);
        assert_eq!(a.checked_sub(b).unwrap().minor(), 400);
        assert!(a.checked_sub(a).unwrap().is_zero());
        assert_eq!(b.checked_sub(a), Err(AmountError::Negative));
        assert_eq!(max.checked_add(b), Err(AmountError::TooLarge));
        assert_eq!(max.checked_add(max), Err(AmountError::TooLarge));
        assert_eq!(a.checked_add(yen), Err(AmountError::CurrencyMismatch));
        assert_eq!(a.checked_sub(yen), Err(AmountError::CurrencyMismatch));
        assert_eq!(a.min(b), b);
        assert_eq!(b.min(a), b);
    }

    #[test]
    fn to_decimal_is_exact() {
        let m = Money::from_minor(1050, Currency::KWD).unwrap();
        assert_eq!(m.to_decimal().to_string(), "1.050");
        assert_eq!(
            Money::from_minor(MAX_MINOR, Currency::EUR)
                .unwrap()
                .to_decimal()
                .to_string(),
            "999999999.99"
        );
    }

    #[test]
    fn locale_display_matches_common_conventions() {
        let m = |minor, c| Money::from_minor(minor, c).unwrap();
        assert_eq!(m(9900, Currency::EUR).format_locale(Locale::En), "€99.00");
        assert_eq!(
            m(9900, Currency::EUR).format_locale(Locale::Fr),
            "99,00\u{A0}€"
        );
        assert_eq!(
            m(9900, Currency::EUR).format_locale(Locale::De),
            "99,00\u{A0}€"
        );
        assert_eq!(m(1000, Currency::JPY).format_locale(Locale::En), "¥1,000");
        assert_eq!(
            m(123_456_789, Currency::EUR).format_locale(Locale::En),
            "€1,234,567.89"
        );
        assert_eq!(
            m(123_456_789, Currency::EUR).format_locale(Locale::Fr),
            "1\u{202F}234\u{202F}567,89\u{A0}€"
        );
        assert_eq!(
            m(123_456_789, Currency::EUR).format_locale(Locale::De),
            "1.234.567,89\u{A0}€"
        );
        assert_eq!(
            m(9900, Currency::CHF).format_locale(Locale::En),
            "CHF\u{A0}99.00"
        );
        assert_eq!(
            m(1500, Currency::KWD).format_locale(Locale::De),
            "1,500\u{A0}KWD"
        );
        assert_eq!(
            m(100_000, Currency::USD).format_locale(Locale::En),
            "$1,000.00"
        );
        assert_eq!(m(0, Currency::GBP).format_locale(Locale::En), "£0.00");
    }

    #[test]
    fn locale_tags_fall_back_to_english() {
        assert_eq!(Locale::from_tag("fr-FR"), Locale::Fr);
        assert_eq!(Locale::from_tag("FR"), Locale::Fr);
        assert_eq!(Locale::from_tag("de_CH"), Locale::De);
        assert_eq!(Locale::from_tag("en-GB"), Locale::En);
        assert_eq!(Locale::from_tag("es"), Locale::En);
        assert_eq!(Locale::from_tag(""), Locale::En);
    }

    #[test]
    fn grouping_inserts_separators_every_three_digits() {
        let grouped = |digits: &str| {
            let mut out = String::new();
            group_thousands(&mut out, digits, ',');
            out
        };
        assert_eq!(grouped("0"), "0");
        assert_eq!(grouped("999"), "999");
        assert_eq!(grouped("1000"), "1,000");
        assert_eq!(grouped("99999999999"), "99,999,999,999");
    }

    #[test]
    fn error_codes_are_stable() {
        assert_eq!(AmountError::Empty.code(), "missing_amount");
        assert_eq!(AmountError::Invalid.code(), "invalid_amount");
        assert_eq!(AmountError::Zero.code(), "amount_not_positive");
        assert_eq!(
            AmountError::TooManyDecimals { max: 2 }.code(),
            "amount_too_many_decimals"
        );
        assert_eq!(AmountError::TooLarge.code(), "amount_too_large");
        assert!(AmountError::TooManyDecimals { max: 2 }
            .to_string()
            .contains("at most 2"));
    }

    fn any_currency() -> impl Strategy<Value = Currency> {
        proptest::sample::select(Currency::ALL)
    }

    proptest! {
        #[test]
        fn wire_format_round_trips_in_every_currency(minor in 1..=MAX_MINOR) {
            for &currency in Currency::ALL {
                let money = Money::from_minor(minor, currency).unwrap();
                prop_assert_eq!(Money::parse(&money.to_string(), currency), Ok(money));
            }
        }

        #[test]
        fn decimal_round_trips(currency in any_currency(), minor in 0..=MAX_MINOR) {
            let money = Money::from_minor(minor, currency).unwrap();
            let decimal = money.to_decimal();
            prop_assert_eq!(decimal.scale(), currency.exponent());
            prop_assert_eq!(decimal.mantissa(), i128::from(minor));
        }

        #[test]
        fn parsing_arbitrary_text_never_panics(s in "\\PC{0,40}", currency in any_currency()) {
            let _ = Money::parse(&s, currency);
        }

        /// `parse` reads the digits itself; rust_decimal's general string parser (what it
        /// used before) is the oracle: same value, same refusal.
        #[test]
        fn parse_agrees_with_the_decimal_string_parser(
            s in "[0-9]{1,16}(\\.[0-9]{1,4})?",
            currency in any_currency(),
        ) {
            let decimals = s.split_once('.').map_or(0, |(_, f)| f.len());
            let exact = Decimal::from_str_exact(&s).unwrap();
            let expected = if exact.is_zero() {
                Err(AmountError::Zero)
            } else if decimals > currency.exponent() as usize {
                Err(AmountError::TooManyDecimals { max: currency.exponent() })
            } else {
                let mut scaled = exact;
                scaled.rescale(currency.exponent());
                i64::try_from(scaled.mantissa())
                    .map_err(|_| AmountError::TooLarge)
                    .and_then(|minor| Money::from_minor(minor, currency))
            };
            prop_assert_eq!(Money::parse(&s, currency), expected);
        }

        #[test]
        fn anything_parsed_is_within_bounds(s in "[0-9]{1,25}(\\.[0-9]{1,4})?", currency in any_currency()) {
            if let Ok(m) = Money::parse(&s, currency) {
                prop_assert!(m.minor() >= 1 && m.minor() <= MAX_MINOR);
            }
        }
    }
}
