//! Fuzzes `OrderId::parse`: no panic, and an accepted id is kept exactly as sent.
#![no_main]

use libfuzzer_sys::fuzz_target;
use superpayment_core::OrderId;

fuzz_target!(|text: &str| {
    if let Ok(id) = OrderId::parse(text) {
        assert_eq!(id.as_str(), text);
        assert!(!text.is_empty() && text.len() <= OrderId::MAX_LEN);
    }
});
