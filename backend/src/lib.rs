//! SuperPayment backend: the HTTP API, the ledger and the operator CLI.
//!
//! # Layout
//! - [`config`]: flags with environment fallbacks, secrets of the embedded default.
//! - [`startup`]: [`startup::Application::build`] wires state and routes; [`state::AppState`].
//! - [`telemetry`]: logging and request ids.
//! - [`monitoring`]: Prometheus metrics (names, recording, the `/metrics` listener).
//! - [`api`]: one `#[OpenApi]` struct per resource and the one error type ([`api::error`]).
//! - [`auth`]: API keys to merchants.
//! - [`payments`]: the payment rules (pay, verify, check), voucher acceptance rules and
//!   the one derivation of a transaction's status.
//! - [`idempotency`]: the one Idempotency-Key mechanism of every money call.
//! - [`accounts`]: back-office users, roles, sessions, CSRF and the login lockout.
//! - [`activity`]: the activity log, written by the functions that act.
//! - [`dashboard`]: the back-office pages under `/dashboard` (templates in `templates/`).
//! - [`admin`]: operator actions (merchants, issuance, blocking, demo seed).
//! - [`store`]: the only module that speaks SeaORM.
//! - [`checkout`]: the widget's server side: remembered vouchers, signed amounts, settings.
//! - [`web`]: the checkout iframe document, widget assets and the demo shop.
//! - [`coordination`]: dedup locks and rate limits, Redis or in process (never a source of truth).
//! - [`webhooks`]: the outbox, signed deliveries, the worker, endpoint secrets.
//! - [`notify`]: notification emails, queued in the outbox and sent by the worker over SMTP.
//! - [`fraud`]: velocity rules screening payments in the worker (`payment.flagged`).
//! - [`replica`]: which connection serves report-only reads, and how fresh it is.
//! - [`refunds`]: refunds back to the original vouchers.
//! - [`reports`]: the operator's liability, commission and settlement reports; payouts.
//! - [`transactions`]: the merchant's view of its transactions and refunds.
//! - [`keys`]: API keys managed by the merchant (create, roll, revoke).
//! - [`lifecycle`]: voucher activities (block, adjust, load, clear...) and history.
//! - [`money`]: stored amounts as the wire's decimal strings.
//! - [`testmode`]: the documented magic test voucher codes.
//! - [`templates`]: the page templates (back-office, demo shop), built into the binary.
//! - [`timestamps`]: the one RFC 3339 formatting of every timestamp.
pub mod accounts;
pub mod activity;
pub mod admin;
pub mod api;
pub mod auth;
pub mod checkout;
pub mod config;
pub mod coordination;
pub mod crypto;
pub mod dashboard;
pub mod fraud;
pub mod gateway;
pub mod idempotency;
pub mod ids;
pub mod keys;
pub mod lifecycle;
pub mod money;
pub mod monitoring;
pub mod notify;
pub mod payments;
pub mod refunds;
pub mod replica;
pub mod reports;
pub mod secret;
pub mod startup;
pub mod state;
pub mod store;
pub mod telemetry;
pub mod templates;
pub mod testmode;
pub mod timestamps;
pub mod transactions;
pub mod web;
pub mod webhooks;
