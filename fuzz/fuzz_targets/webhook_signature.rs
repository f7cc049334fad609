//! Fuzzes the server's webhook signatures against the official Standard Webhooks library:
//! for any key, message id, timestamp and body, the server's `v1,...` signature equals the
//! library's, a delivery signed during a secret rotation (two signatures in the header)
//! verifies with the library, and the same delivery with a byte added to its body does not.
#![no_main]

use base64::{engine::general_purpose::STANDARD, Engine};
use http::{HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;
use standardwebhooks::Webhook;
use superpayment_core::signatures::webhook_signature;

fuzz_target!(|input: (&[u8], &str, i64, i16, &str, u8)| {
    let (key, msg_id, timestamp, skew, body, extra) = input;
    let body = body.as_bytes(); // event bodies are JSON, so UTF-8, as the library requires
    let official = Webhook::new(&STANDARD.encode(key)).expect("any key bytes make a secret");
    let ours = webhook_signature(key, msg_id, timestamp, body);
    assert_eq!(ours, official.sign(msg_id, timestamp, body).unwrap());

    // A delivery as the worker sends it, inside the library's five-minute tolerance. Event
    // ids are visible ASCII (`evt_` and Crockford base32); the library reads headers as that.
    if msg_id.is_empty() || !msg_id.bytes().all(|b| b.is_ascii_graphic()) {
        return;
    }
    let id = HeaderValue::from_str(msg_id).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let sent = now + i64::from(skew) % 240;
    let other = webhook_signature(b"the endpoint's previous secret", msg_id, sent, body);
    let header = format!("{other} {}", webhook_signature(key, msg_id, sent, body));
    let mut headers = HeaderMap::new();
    headers.insert("webhook-id", id);
    headers.insert("webhook-timestamp", HeaderValue::from(sent));
    headers.insert("webhook-signature", HeaderValue::from_str(&header).unwrap());
    assert!(official.verify(body, &headers).is_ok());

    let mut tampered = body.to_vec();
    tampered.push(b' ' + extra % 95);
    assert!(official.verify(&tampered, &headers).is_err());
});
