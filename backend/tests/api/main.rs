//! API tests: the real server over real HTTP, on PostgreSQL + Redis (or SQLite, see helpers).
mod concurrency;
mod helpers;
mod idempotency;
mod keys;
mod openapi;
mod payments;
mod verify;
mod vouchers;
mod webhook_support;
mod webhooks;
