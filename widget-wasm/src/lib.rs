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
