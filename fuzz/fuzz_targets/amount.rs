//! Fuzzes `Money::parse`: no panic on any text, and an accepted amount survives formatting.
#![no_main]

use libfuzzer_sys::fuzz_target;
use superpayment_core::{Currency, Locale, Money};

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let currency = Currency::ALL[pick as usize % Currency::ALL.len()];
    let Ok(money) = Money::parse(text, currency) else {
        return;
    };
    assert!(
        money.minor() > 0,
        "{text:?} parsed to a non-positive amount"
    );
    // The decimal the API answers with must read back as the same amount.
    let again =
        Money::parse(&money.to_decimal().to_string(), currency).expect("a formatted amount parses");
    assert_eq!(again, money);
    for locale in [Locale::En, Locale::Fr, Locale::De] {
        let _ = money.format_locale(locale);
    }
    let _ = money.checked_add(money);
    assert_eq!(money.checked_sub(money).map(Money::minor), Ok(0));
});
