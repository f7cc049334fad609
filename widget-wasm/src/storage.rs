//! Remembered vouchers in the iframe's own storage, out of the shop page's reach.
//!
//! Only tokens, last four symbols and the last known balance are kept, never a code.
//! `localStorage` first; where the browser denies a third-party frame its storage (third-
//! party cookies blocked, as Chromium does by default now), a partitioned cookie (CHIPS:
//! `Partitioned; Secure; SameSite=None`) scoped to `/checkout.html` instead. Either way the
//! browser partitions it by top-level site, so a voucher remembered at one shop is offered
//! at that shop only (the server binds the token to that merchant as well).
use wasm_bindgen::JsCast;

use crate::{api::parse_money, flow::Saved};

/// Where this browser lets the iframe keep things.
enum Store {
    Local(web_sys::Storage),
    Cookie(web_sys::HtmlDocument),
}

const COOKIE_ATTRIBUTES: &str = "; Path=/checkout.html; Secure; SameSite=None; Partitioned";
/// Ninety days, the lifetime of a token.
const COOKIE_MAX_AGE: &str = "; Max-Age=7776000";

fn local() -> Option<web_sys::Storage> {
    let s = web_sys::window()?.local_storage().ok().flatten()?;
    let probe = "superpayment:probe";
    let ok = s.set_item(probe, "1").is_ok();
    let _ = s.remove_item(probe);
    ok.then_some(s)
}

fn cookie_jar() -> Option<web_sys::HtmlDocument> {
    let doc: web_sys::HtmlDocument = web_sys::window()?.document()?.dyn_into().ok()?;
    let probe = "superpayment_probe=1";
    doc.set_cookie(&[probe, COOKIE_ATTRIBUTES].concat()).ok()?;
    let ok = doc.cookie().ok()?.contains(probe);
    let _ = doc.set_cookie(&[probe, COOKIE_ATTRIBUTES, "; Max-Age=0"].concat());
    ok.then_some(doc)
}

fn store() -> Option<Store> {
    local()
        .map(Store::Local)
        .or_else(|| cookie_jar().map(Store::Cookie))
}

fn key(publishable_key: &str) -> String {
    ["superpayment_saved_", publishable_key].concat()
}

/// Whether this browser lets the iframe keep anything at all.
pub fn available() -> bool {
    store().is_some()
}

fn read(publishable_key: &str) -> Option<String> {
    let name = key(publishable_key);
    match store()? {
        Store::Local(s) => s.get_item(&name).ok().flatten(),
        Store::Cookie(doc) => {
            let cookies = doc.cookie().ok()?;
            let value = cookies
                .split("; ")
                .find_map(|c| c.strip_prefix(name.as_str())?.strip_prefix('='))?;
            js_sys::decode_uri_component(value).ok().map(String::from)
        }
    }
}

fn write(publishable_key: &str, text: &str) {
    let name = key(publishable_key);
    match store() {
        Some(Store::Local(s)) if text.is_empty() => {
            let _ = s.remove_item(&name);
        }
        Some(Store::Local(s)) => {
            let _ = s.set_item(&name, text);
        }
        Some(Store::Cookie(doc)) => {
            let value = String::from(js_sys::encode_uri_component(text));
            let age = if text.is_empty() {
                "; Max-Age=0"
            } else {
                COOKIE_MAX_AGE
            };
            let _ = doc.set_cookie(&[name.as_str(), "=", &value, COOKIE_ATTRIBUTES, age].concat());
        }
        None => {}
    }
}

/// The vouchers remembered for this shop: one `token last4 balance currency` line each,
/// ending in ` pin` for a voucher that needs its PIN (never the PIN itself).
pub fn load(publishable_key: &str) -> Vec<Saved> {
    let text = read(publishable_key).unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            let mut parts = line.split(' ');
            let (token, last4, balance, currency) =
                (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
            Some(Saved {
                token: token.to_owned(),
                last4: last4.to_owned(),
                balance: parse_money(balance, currency)?,
                pin: parts.next() == Some("pin"),
            })
        })
        .collect()
}

/// Replaces the remembered vouchers of this shop (an empty list removes the entry).
pub fn save(publishable_key: &str, saved: &[Saved]) {
    let mut text = String::new();
    for v in saved {
        for part in [
            v.token.as_str(),
            v.last4.as_str(),
            &v.balance.to_wire(),
            v.balance.currency().code(),
        ] {
            text.push_str(part);
            text.push(' ');
        }
        text.pop();
        if v.pin {
            text.push_str(" pin");
        }
        text.push('\n');
    }
    write(publishable_key, &text);
}
