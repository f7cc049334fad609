//! Fuzzes the order-signature check the API runs before taking a signed payment: no panic on
//! any `data-signature`, and it accepts exactly the strings that are the order's MAC in hex
//! (either case, surrounding whitespace ignored), for any secret, order id and amount.
#![no_main]

use libfuzzer_sys::fuzz_target;
use superpayment_core::{
    signatures::{order_signature, order_signature_matches},
    Currency, Money, OrderId,
};

fuzz_target!(|input: (&[u8], &str, &str, &str)| {
    let (secret, order, amount, signature) = input;
    let (Ok(order), Ok(amount)) = (OrderId::parse(order), Money::parse(amount, Currency::EUR))
    else {
        return;
    };
    let good = order_signature(secret, &order, amount);
    assert!(order_signature_matches(secret, &order, amount, &good));
    assert!(order_signature_matches(
        secret,
        &order,
        amount,
        &good.to_uppercase()
    ));
    let expected = hex::decode(&good).unwrap();
    let accepted = order_signature_matches(secret, &order, amount, signature);
    let decodes_to_mac = hex::decode(signature.trim()).is_ok_and(|bytes| bytes == expected);
    assert_eq!(accepted, decodes_to_mac, "accepted {signature:?}");
});
