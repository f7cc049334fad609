//! API tests: the real server over real HTTP, on PostgreSQL + Redis (or SQLite, see helpers).
mod checkout;
mod cli;
mod concurrency;
mod coordination;
mod docs;
mod helpers;
mod idempotency;
mod keys;
mod merchant_api;
mod openapi;
mod payments;
mod refunds;
mod secrets;
mod verify;
mod vouchers;
mod webhook_support;
mod webhooks;
