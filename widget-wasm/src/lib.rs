//! The SuperPayment checkout widget: Rust compiled to Wasm, running inside the provider iframe.
//!
//! Voucher codes exist only here: the shop's page talks to this iframe through the loader
//! (`www/widget.js`) and learns outcomes (transaction id, order id, amount, currency), never
//! a code. Every amount shown and every code check comes from `superpayment-core`, the
//! same rules the server runs.
//!
//! # Layout
//! - [`config`]: the iframe URL's parameters, validated.
//! - [`flow`]: the state machine (DOM-free, tested natively).
//! - [`i18n`]: texts in English, French and German.
//! - `api`, `ui`, `storage`, `bridge` (Wasm only): HTTP calls, rendering and events,
//!   remembered vouchers in the iframe's storage, and messages to the embedding page.

pub mod config;
pub mod flow;
pub mod i18n;

mod api;
mod bridge;
mod storage;
mod ui;

use superpayment_core::Locale;
use wasm_bindgen::prelude::wasm_bindgen;

/// Talc instead of std's dlmalloc: the same growable heap in Wasm memory for less code
/// (the widget is single-threaded, and realloc in place is left out for size).
#[cfg(all(target_family = "wasm", not(target_feature = "atomics")))]
#[global_allocator]
static ALLOCATOR: talc::wasm::WasmDynamicTalc = talc::wasm::new_wasm_dynamic_allocator();

/// Entry point, run as soon as the module is instantiated: reads the iframe URL, then
/// renders the checkout into `<main id="sp">` of `checkout.html`.
#[wasm_bindgen(start)]
pub fn start() {
    let Some(window) = web_sys::window() else {
        return;
    };
    let Some(doc) = window.document() else {
        return;
    };
    let Some(root) = doc.get_element_by_id("sp") else {
        return;
    };
    let search = window.location().search().unwrap_or_default();
    let params = web_sys::UrlSearchParams::new_with_str(&search).ok();
    let browser_language = window.navigator().language().unwrap_or_default();
    // data-locale first, else the browser's language (the loader only passes what is set).
    let get = |name: &str| {
        let value = params.as_ref().and_then(|p| p.get(name));
        match (name, value) {
            ("l", None) => Some(browser_language.clone()),
            (_, value) => value,
        }
    };
    match config::Config::from_params(get) {
        Ok(cfg) => ui::mount(cfg, doc, root),
        Err(e) => {
            let locale = Locale::from_tag(&get("l").unwrap_or_default());
            ui::fatal(&doc, &root, locale, e.message());
            if let Some(origin) = get("p") {
                bridge::error(&origin, e.code(), e.message());
            }
        }
    }
}
