//! Fuzzes `ApiKey::parse`: no panic, an accepted key is kept as sent, and its redacted
//! form never shows the whole key.
#![no_main]

use libfuzzer_sys::fuzz_target;
use superpayment_core::ApiKey;

/// Random bytes almost never start with a key prefix; half the inputs get one, so the
/// checks past the prefix are reached too.
const PREFIXES: [&str; 4] = ["pk_test_", "pk_live_", "sk_test_", "sk_live_"];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let Ok(rest) = std::str::from_utf8(rest) else {
        return;
    };
    let text = match PREFIXES.get(pick as usize % 8) {
        Some(prefix) => format!("{prefix}{rest}"),
        None => rest.to_owned(),
    };
    if let Ok(key) = ApiKey::parse(&text) {
        assert_eq!(key.expose(), text);
        assert!(text.starts_with(key.prefix()));
        assert!(text.ends_with(key.last4()));
        assert!(
            !key.redacted().contains(&text),
            "the redacted form shows the key"
        );
    }
});
