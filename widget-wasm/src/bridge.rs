//! Messages to the embedding page: height, ready, success and error, and nothing else.
//!
//! Every message goes to the exact origin the loader passed in, never `*`, and carries only
//! outcome fields: a voucher code or token is never part of one.
use js_sys::Object;
use wasm_bindgen::JsValue;

use crate::api::object;

fn post(parent_origin: &str, message: Object) {
    let Some(window) = web_sys::window() else {
        return;
    };
    if let Ok(Some(parent)) = window.parent() {
        // A mismatching target origin makes the browser drop the message, as intended.
        let _ = parent.post_message(&message, parent_origin);
    }
}

fn base(kind: &str) -> Vec<(&'static str, JsValue)> {
    vec![
        ("sp", JsValue::from_f64(1.0)),
        ("type", JsValue::from_str(kind)),
    ]
}

/// The content height in CSS pixels, so the loader can size the iframe.
pub fn height(parent_origin: &str, pixels: f64) {
    let mut m = base("height");
    m.push(("height", JsValue::from_f64(pixels.ceil())));
    post(parent_origin, crate::api::object(&m));
}

/// The pay button is on screen and clickable.
pub fn ready(parent_origin: &str) {
    post(parent_origin, object(&base("ready")));
}

/// The order is paid.
pub fn success(
    parent_origin: &str,
    transaction_id: &str,
    order_id: &str,
    amount: &str,
    currency: &str,
) {
    let mut m = base("success");
    m.extend([
        ("transaction_id", JsValue::from_str(transaction_id)),
        ("order_id", JsValue::from_str(order_id)),
        ("amount", JsValue::from_str(amount)),
        ("currency", JsValue::from_str(currency)),
    ]);
    post(parent_origin, object(&m));
}

/// Something the page may want to know about (a decline, a configuration problem).
pub fn error(parent_origin: &str, code: &str, message: &str) {
    let mut m = base("error");
    m.extend([
        ("code", JsValue::from_str(code)),
        ("message", JsValue::from_str(message)),
    ]);
    post(parent_origin, object(&m));
}
