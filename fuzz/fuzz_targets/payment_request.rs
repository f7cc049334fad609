//! Fuzzes the payment request as the API receives it: JSON into `PaymentRequestInput`,
//! then `validate_payment_request`. A refusal names at least one field.
#![no_main]

use libfuzzer_sys::fuzz_target;
use superpayment_core::{validate_payment_request, PaymentRequestInput, MAX_VOUCHERS_PER_PAYMENT};

fuzz_target!(|data: &[u8]| {
    let Ok(input) = serde_json::from_slice::<PaymentRequestInput>(data) else {
        return;
    };
    match validate_payment_request(&input) {
        Ok(valid) => {
            assert_eq!(valid.order_id.as_str(), input.order_id);
            assert!(valid.amount.minor() > 0);
            assert!((1..=MAX_VOUCHERS_PER_PAYMENT).contains(&valid.vouchers.len()));
        }
        Err(errors) => assert!(!errors.is_empty(), "refused without naming a field"),
    }
});
