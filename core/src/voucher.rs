//! Voucher codes: generation, tolerant parsing, the check symbol and redacted display.
//!
//! A code is 16 Crockford base32 symbols: 15 random (75 bits) and one check symbol.
//!
//! Check scheme: symbol `i` (0-based, the check symbol is `i = 15`) has weight `2i + 1`,
//! and a code is valid when `Σ weight_i · value_i ≡ 0 (mod 32)`. Because the check weight
//! is 31 ≡ −1, the check symbol is simply `Σ_{i<15} (2i + 1) · value_i mod 32`.
//!
//! - Every weight is odd, hence invertible mod 32, so changing any one symbol (the check
//!   symbol included) always changes the sum: every single-symbol typo is caught.
//! - Swapping neighbours `a`,`b` changes the sum by `(w_i − w_{i+1})(a − b) = ±2(a − b)`.
//!   Differences of odd weights are always even, so with a modulus of 32 no weighting can
//!   do better than a difference of 2, which misses only `a − b ≡ 16`: 30 of every 31
//!   adjacent transpositions of distinct symbols are caught (96.8 %).
//! - Swapping symbols two apart changes the sum by `±4(a − b)`, missing `a − b ≡ 8, 16, 24`:
//!   28 of 31 are caught (90.3 %).

use core::fmt;

use crate::crockford::{crockford_encode, symbol_value, CROCKFORD_ALPHABET};

/// Symbols in a code, check symbol included.
const CODE_LEN: usize = 16;
/// Random symbols in a code.
const PAYLOAD_LEN: usize = CODE_LEN - 1;
/// Symbols between dashes in the displayed form.
const GROUP: usize = 4;

/// A voucher code in canonical form: 16 upper-case Crockford symbols, no dashes.
///
/// It is a bearer secret: `Debug` shows only the last four symbols and there is
/// deliberately no `Display`, so printing one takes an explicit [`VoucherCode::formatted`].
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct VoucherCode(String);

/// Why a voucher code was refused. Each variant has a stable [`CodeError::code`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CodeError {
    /// Nothing but separators (or nothing at all).
    #[error("Enter a voucher code.")]
    Empty,
    /// A character that is neither a code symbol nor a separator.
    #[error("The voucher code contains '{symbol}' at position {position}, which is not allowed.")]
    InvalidSymbol {
        /// The character as typed.
        symbol: char,
        /// 1-based position of the character in the input as typed, separators included.
        position: usize,
    },
    /// Not 16 symbols once separators are removed.
    #[error("A voucher code has 16 characters, but this one has {len}.")]
    WrongLength {
        /// How many symbols were found.
        len: usize,
    },
    /// Well-formed, but the check symbol does not match: almost certainly a typo.
    #[error("This voucher code is not valid. Please check it for typos.")]
    CheckFailed,
}

impl CodeError {
    /// Stable machine-readable code for API responses.
    pub fn code(&self) -> &'static str {
        match self {
            CodeError::Empty => "missing_code",
            CodeError::InvalidSymbol { .. } => "invalid_code_symbol",
            CodeError::WrongLength { .. } => "invalid_code_length",
            CodeError::CheckFailed => "invalid_code_checksum",
        }
    }
}

/// Characters people put between symbols, including typographic dashes a word processor
/// substitutes and the no-break spaces of formatted e-mails.
fn is_separator(c: char) -> bool {
    c == '-' || ('\u{2010}'..='\u{2015}').contains(&c) || c == '\u{2212}' || c.is_whitespace()
}

/// The canonical symbol for a typed character: case folded, and the letters Crockford
/// leaves out read as the digits they resemble.
fn canonical_symbol(c: char) -> Option<char> {
    if !c.is_ascii() {
        return None;
    }
    let upper = match c.to_ascii_uppercase() {
        'I' | 'L' => '1',
        'O' => '0',
        other => other,
    };
    // The char is ASCII, so the narrowing cannot lose information.
    symbol_value(upper as u8).map(|_| upper)
}

fn weighted_sum(values: impl Iterator<Item = u8>) -> u32 {
    values
        .zip((1_u32..).step_by(2))
        .map(|(v, w)| u32::from(v) * w)
        .sum::<u32>()
        % 32
}

impl VoucherCode {
    /// A new code from caller-supplied randomness (core does no I/O, so it owns no random
    /// source). Uses the first 75 of the 80 bits.
    pub fn generate(random: [u8; 10]) -> VoucherCode {
        let mut code = crockford_encode(&random, PAYLOAD_LEN);
        let check = Self::check_symbol(&code).expect("encoder emits canonical symbols");
        code.push(check);
        VoucherCode(code)
    }

    /// Reads a code as a person typed or pasted it.
    ///
    /// Normalisation: ASCII case-insensitive; spaces (any Unicode white space, NBSP
    /// included) and dashes (`-`, U+2010..U+2015, U+2212) are dropped; `I` and `L` read
    /// as `1`, `O` as `0`. Then: 16 symbols of the alphabet with a matching check symbol.
    pub fn parse(input: &str) -> Result<VoucherCode, CodeError> {
        let mut code = String::with_capacity(CODE_LEN);
        let mut len = 0_usize;
        for (index, c) in input.chars().enumerate() {
            if is_separator(c) {
                continue;
            }
            let symbol = canonical_symbol(c).ok_or(CodeError::InvalidSymbol {
                symbol: c,
                position: index + 1,
            })?;
            len += 1;
            // Counting past 16 without storing keeps a pasted novel from allocating.
            if len <= CODE_LEN {
                code.push(symbol);
            }
        }
        match len {
            0 => Err(CodeError::Empty),
            CODE_LEN => {
                let (payload, check) = code.split_at(PAYLOAD_LEN);
                if check.chars().next() == Self::check_symbol(payload) {
                    Ok(VoucherCode(code))
                } else {
                    Err(CodeError::CheckFailed)
                }
            }
            len => Err(CodeError::WrongLength { len }),
        }
    }

    /// The canonical 16 symbols, e.g. `"ABCDEFGHJKMNPQR7"`: the form to hash and compare.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The form shown to people: `"ABCD-EFGH-JKMN-PQR7"`.
    pub fn formatted(&self) -> String {
        group_symbols(&self.0)
    }

    /// The last four symbols: safe to store and show, as they identify without granting.
    pub fn last4(&self) -> &str {
        &self.0[CODE_LEN - 4..]
    }

    /// The check symbol for 15 canonical payload symbols, or `None` if `payload15` is not
    /// exactly that (no normalisation is applied here).
    pub fn check_symbol(payload15: &str) -> Option<char> {
        if payload15.len() != PAYLOAD_LEN {
            return None;
        }
        let mut values = [0_u8; PAYLOAD_LEN];
        for (value, symbol) in values.iter_mut().zip(payload15.bytes()) {
            *value = symbol_value(symbol)?;
        }
        let sum = weighted_sum(values.into_iter());
        // With a check weight of 31 ≡ −1 the check value equals the payload's weighted sum.
        Some(char::from(CROCKFORD_ALPHABET[sum as usize]))
    }
}

impl fmt::Debug for VoucherCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VoucherCode(****-****-****-{})", self.last4())
    }
}

fn group_symbols(symbols: &str) -> String {
    let mut out = String::with_capacity(symbols.len() + symbols.len() / GROUP);
    for (i, c) in symbols.chars().enumerate() {
        if i > 0 && i % GROUP == 0 {
            out.push('-');
        }
        out.push(c);
    }
    out
}

/// Live formatting for the widget's code field: what has been typed so far, normalised
/// like [`VoucherCode::parse`] (upper case, `I`/`L`→`1`, `O`→`0`), with anything that can
/// never be part of a code dropped, cut at 16 symbols and grouped `XXXX-XXXX-…`.
pub fn format_partial_code(typed: &str) -> String {
    let symbols: String = typed
        .chars()
        .filter_map(canonical_symbol)
        .take(CODE_LEN)
        .collect();
    group_symbols(&symbols)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn code_from(seed: u8) -> VoucherCode {
        let mut random = [0_u8; 10];
        for (i, b) in random.iter_mut().enumerate() {
            *b = seed
                .wrapping_mul(37)
                .wrapping_add((i as u8).wrapping_mul(101));
        }
        VoucherCode::generate(random)
    }

    fn symbols() -> impl Iterator<Item = char> {
        CROCKFORD_ALPHABET.iter().map(|&b| char::from(b))
    }

    /// A valid code whose symbol at `pos` is `first` and at `pos + gap` is `second`.
    fn code_with(pos: usize, gap: usize, first: char, second: char) -> String {
        let mut payload: Vec<char> = "7QK3M9XW2BD5TNC".chars().collect();
        payload[pos] = first;
        let with_check = |payload: &[char]| {
            let payload: String = payload.iter().collect();
            let check = VoucherCode::check_symbol(&payload).unwrap();
            (format!("{payload}{check}"), check)
        };
        if pos + gap < PAYLOAD_LEN {
            payload[pos + gap] = second;
            return with_check(&payload).0;
        }
        // `second` is the check symbol: tune symbol 0, whose odd weight reaches every value.
        symbols()
            .find_map(|s| {
                payload[0] = s;
                let (code, check) = with_check(&payload);
                (check == second).then_some(code)
            })
            .expect("an odd weight reaches every check value")
    }

    fn caught_transpositions(gap: usize) -> (usize, usize) {
        let (mut caught, mut total) = (0, 0);
        for pos in 0..CODE_LEN - gap {
            for a in symbols() {
                for b in symbols().filter(|&b| b != a) {
                    let code = code_with(pos, gap, a, b);
                    assert!(VoucherCode::parse(&code).is_ok(), "{code}");
                    let mut swapped: Vec<char> = code.chars().collect();
                    swapped.swap(pos, pos + gap);
                    let swapped: String = swapped.into_iter().collect();
                    total += 1;
                    if VoucherCode::parse(&swapped) == Err(CodeError::CheckFailed) {
                        caught += 1;
                    }
                }
            }
        }
        (caught, total)
    }

    #[test]
    fn generated_codes_parse_back() {
        for seed in 0..=255 {
            let code = code_from(seed);
            assert_eq!(code.as_str().len(), 16);
            assert_eq!(VoucherCode::parse(code.as_str()), Ok(code.clone()));
            assert_eq!(VoucherCode::parse(&code.formatted()), Ok(code));
        }
    }

    #[test]
    fn generation_uses_the_first_75_bits() {
        let zeros = VoucherCode::generate([0; 10]);
        assert_eq!(zeros.as_str(), "0000000000000000");
        // The last five bits are ignored.
        assert_eq!(
            VoucherCode::generate([0, 0, 0, 0, 0, 0, 0, 0, 0, 0x1F]),
            zeros
        );
        let ones = VoucherCode::generate([0xFF; 10]);
        assert_eq!(&ones.as_str()[..15], "ZZZZZZZZZZZZZZZ");
        assert!(VoucherCode::parse(ones.as_str()).is_ok());
    }

    #[test]
    fn normalises_what_people_type() {
        let code = code_from(7);
        let canonical = code.as_str().to_owned();
        let formatted = code.formatted();
        let variants = [
            canonical.to_lowercase(),
            formatted.clone(),
            formatted.to_lowercase(),
            formatted.replace('-', " "),
            formatted.replace('-', "\u{2013}"),
            formatted.replace('-', "\u{2010}"),
            formatted.replace('-', "\u{A0}"),
            format!("  {formatted}\n"),
            canonical.replace('1', "I").replace('0', "o"),
            canonical.replace('1', "l").replace('0', "O"),
        ];
        for v in variants {
            assert_eq!(VoucherCode::parse(&v), Ok(code.clone()), "{v:?}");
        }
    }

    #[test]
    fn look_alike_letters_read_as_digits() {
        let code = VoucherCode::generate([0; 10]);
        assert_eq!(VoucherCode::parse("OOOO-oooo-0000-0000"), Ok(code));
        let payload = "1111111111111111"[..15].to_owned();
        let check = VoucherCode::check_symbol(&payload).unwrap();
        let code = VoucherCode::parse(&format!("{payload}{check}")).unwrap();
        assert_eq!(
            VoucherCode::parse(&format!("iIlL-1111-1111-111{check}")),
            Ok(code)
        );
    }

    #[test]
    fn reports_what_is_wrong() {
        assert_eq!(VoucherCode::parse(""), Err(CodeError::Empty));
        assert_eq!(VoucherCode::parse(" - -"), Err(CodeError::Empty));
        assert_eq!(
            VoucherCode::parse("ABCD-EFGU"),
            Err(CodeError::InvalidSymbol {
                symbol: 'U',
                position: 9
            })
        );
        assert_eq!(
            VoucherCode::parse("ABCé"),
            Err(CodeError::InvalidSymbol {
                symbol: 'é',
                position: 4
            })
        );
        assert_eq!(
            VoucherCode::parse("ABCD_EFGH"),
            Err(CodeError::InvalidSymbol {
                symbol: '_',
                position: 5
            })
        );
        assert_eq!(
            VoucherCode::parse("ABCD-EFGH"),
            Err(CodeError::WrongLength { len: 8 })
        );
        let code = code_from(3);
        assert_eq!(
            VoucherCode::parse(&format!("{}0", code.as_str())),
            Err(CodeError::WrongLength { len: 17 })
        );
        assert_eq!(
            VoucherCode::parse(&"A".repeat(10_000)),
            Err(CodeError::WrongLength { len: 10_000 })
        );
        assert_eq!(CodeError::CheckFailed.code(), "invalid_code_checksum");
        assert_eq!(CodeError::Empty.code(), "missing_code");
        assert_eq!(
            CodeError::WrongLength { len: 3 }.code(),
            "invalid_code_length"
        );
        assert_eq!(
            CodeError::InvalidSymbol {
                symbol: 'U',
                position: 1
            }
            .code(),
            "invalid_code_symbol"
        );
    }

    #[test]
    fn display_forms() {
        let code = VoucherCode::parse(&code_from(9).formatted()).unwrap();
        let s = code.as_str();
        assert_eq!(
            code.formatted(),
            format!("{}-{}-{}-{}", &s[..4], &s[4..8], &s[8..12], &s[12..])
        );
        assert_eq!(code.last4(), &s[12..]);
    }

    #[test]
    fn debug_never_shows_the_secret_part() {
        let code = code_from(42);
        let debug = format!("{code:?}");
        assert_eq!(
            debug,
            format!("VoucherCode(****-****-****-{})", code.last4())
        );
        assert!(!debug.contains(&code.as_str()[..12]));
        let pretty = format!("{:#?}", Some(code.clone()));
        assert!(!pretty.contains(&code.as_str()[..12]));
    }

    #[test]
    fn check_symbol_needs_fifteen_canonical_symbols() {
        assert_eq!(VoucherCode::check_symbol("000000000000000"), Some('0'));
        // Only position 0 (weight 1) set to 1.
        assert_eq!(VoucherCode::check_symbol("100000000000000"), Some('1'));
        // Position 1 has weight 3.
        assert_eq!(VoucherCode::check_symbol("010000000000000"), Some('3'));
        assert_eq!(VoucherCode::check_symbol("00000000000000"), None);
        assert_eq!(VoucherCode::check_symbol("0000000000000000"), None);
        assert_eq!(VoucherCode::check_symbol("00000000000000a"), None);
        assert_eq!(VoucherCode::check_symbol("00000000000000I"), None);
        assert_eq!(VoucherCode::check_symbol("0000000000000é"), None);
    }

    #[test]
    fn adjacent_transpositions_are_caught_30_times_in_31() {
        let (caught, total) = caught_transpositions(1);
        assert_eq!(total, 15 * 32 * 31);
        assert_eq!(caught * 31, total * 30, "caught {caught} of {total}");
    }

    #[test]
    fn jump_transpositions_are_caught_28_times_in_31() {
        let (caught, total) = caught_transpositions(2);
        assert_eq!(caught * 31, total * 28, "caught {caught} of {total}");
    }

    #[test]
    fn partial_input_is_grouped_as_typed() {
        assert_eq!(format_partial_code(""), "");
        assert_eq!(format_partial_code("abc"), "ABC");
        assert_eq!(format_partial_code("abcd"), "ABCD");
        assert_eq!(format_partial_code("abcde"), "ABCD-E");
        assert_eq!(format_partial_code("ABCD-"), "ABCD");
        assert_eq!(format_partial_code("ab cd-ef"), "ABCD-EF");
        assert_eq!(format_partial_code("ilo u!é"), "110");
        assert_eq!(
            format_partial_code("0123456789abcdefghjkmnp"),
            "0123-4567-89AB-CDEF"
        );
    }

    proptest! {
        #[test]
        fn every_single_symbol_substitution_is_caught(random in any::<[u8; 10]>()) {
            let code = VoucherCode::generate(random);
            for pos in 0..CODE_LEN {
                for replacement in symbols() {
                    let mut typo: Vec<char> = code.as_str().chars().collect();
                    if typo[pos] == replacement {
                        continue;
                    }
                    typo[pos] = replacement;
                    let typo: String = typo.into_iter().collect();
                    prop_assert_eq!(VoucherCode::parse(&typo), Err(CodeError::CheckFailed));
                }
            }
        }

        #[test]
        fn generated_codes_always_round_trip(random in any::<[u8; 10]>()) {
            let code = VoucherCode::generate(random);
            prop_assert_eq!(VoucherCode::parse(&code.formatted().to_lowercase()), Ok(code.clone()));
            prop_assert_eq!(format_partial_code(code.as_str()), code.formatted());
        }

        #[test]
        fn parsing_arbitrary_text_never_panics(s in "\\PC{0,40}") {
            let _ = VoucherCode::parse(&s);
            prop_assert!(format_partial_code(&s).len() <= 19);
        }
    }
}
