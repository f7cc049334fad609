//! The two signatures SuperPayment computes, in the one place the server, its tests and the
//! fuzz targets share (feature `signatures`; the widget never signs, so it does not carry it).
//!
//! - **Order signatures**: a merchant's server signs `order_id`, amount and currency for the
//!   checkout tag's `data-signature`, and the API checks it before taking a payment:
//!   hex HMAC-SHA256(secret, `"{order_id}|{amount}|{currency}"`), the amount in its wire
//!   format ([`Money`]'s `Display`).
//! - **Webhook signatures** (Standard Webhooks): `v1,` + base64 HMAC-SHA256(key,
//!   `"{msg_id}.{timestamp}.{body}"`), which receivers verify with the official libraries.
use base64::{engine::general_purpose::STANDARD, Engine};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::{Money, OrderId};

type HmacSha256 = Hmac<Sha256>;

fn order_mac(secret: &[u8], order_id: &OrderId, amount: Money) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC accepts keys of any length");
    mac.update(order_id.as_str().as_bytes());
    mac.update(b"|");
    mac.update(amount.to_string().as_bytes());
    mac.update(b"|");
    mac.update(amount.currency().code().as_bytes());
    mac
}

/// The signature a merchant puts in `data-signature` for this order (lowercase hex).
pub fn order_signature(secret: &[u8], order_id: &OrderId, amount: Money) -> String {
    hex::encode(order_mac(secret, order_id, amount).finalize().into_bytes())
}

/// Whether `signature` (hex in either case, surrounding whitespace ignored) is this order's.
/// The decoded bytes are checked by the MAC itself (`verify_slice`, constant time), never
/// compared as strings.
pub fn order_signature_matches(
    secret: &[u8],
    order_id: &OrderId,
    amount: Money,
    signature: &str,
) -> bool {
    hex::decode(signature.trim()).is_ok_and(|bytes| {
        order_mac(secret, order_id, amount)
            .verify_slice(&bytes)
            .is_ok()
    })
}

/// One Standard Webhooks signature (`v1,<base64>`) of a message, with the endpoint
/// secret's key bytes (the base64 part of `whsec_...`, decoded).
pub fn webhook_signature(key: &[u8], msg_id: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(msg_id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Currency;

    /// The example of the Standard Webhooks specification.
    #[test]
    fn a_webhook_signature_matches_the_specification_example() {
        let key = STANDARD.decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        assert_eq!(
            webhook_signature(
                &key,
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1614265330,
                br#"{"test": 2432232314}"#
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    /// The signed text is `order|amount|currency` with the amount in its wire format, so a
    /// merchant computing it in any language gets the same hex (checked with `openssl dgst
    /// -sha256 -hmac key` on `ORDER_123|49.90|EUR`).
    #[test]
    fn an_order_signature_is_the_hmac_of_the_documented_text() {
        let order = OrderId::parse("ORDER_123").unwrap();
        let amount = Money::parse("49.90", Currency::EUR).unwrap();
        let mut mac = HmacSha256::new_from_slice(b"key").unwrap();
        mac.update(b"ORDER_123|49.90|EUR");
        let expected = hex::encode(mac.finalize().into_bytes());
        assert_eq!(order_signature(b"key", &order, amount), expected);
        assert!(order_signature_matches(b"key", &order, amount, &expected));
        assert!(order_signature_matches(
            b"key",
            &order,
            amount,
            &format!(" {} ", expected.to_uppercase())
        ));
        assert!(!order_signature_matches(
            b"key",
            &order,
            amount,
            &expected[..62]
        ));
        assert!(!order_signature_matches(
            b"other", &order, amount, &expected
        ));
    }
}
