//! Fuzzes `VoucherCode::parse` and the widget's as-you-type formatting of a code.
#![no_main]

use libfuzzer_sys::fuzz_target;
use superpayment_core::{format_partial_code, validate_voucher_check, VoucherCode};

fuzz_target!(|text: &str| {
    let _ = format_partial_code(text);
    let checked = validate_voucher_check(text);
    match VoucherCode::parse(text) {
        Ok(code) => {
            // What people see reads back as the same code, and so does the canonical form.
            assert_eq!(VoucherCode::parse(&code.formatted()).as_ref(), Ok(&code));
            assert_eq!(VoucherCode::parse(code.as_str()).as_ref(), Ok(&code));
            assert_eq!(code.as_str().len(), 16);
            assert!(code.as_str().ends_with(code.last4()));
            assert_eq!(checked.ok(), Some(code));
        }
        Err(_) => assert!(
            checked.is_err(),
            "{text:?}: check accepts what parse refuses"
        ),
    }
});
