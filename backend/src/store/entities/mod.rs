//! SeaORM entities, one per table of the migrations crate.
pub mod api_key;
pub mod checkout_settings;
pub mod event;
pub mod idempotency_key;
pub mod journal;
pub mod merchant;
pub mod posting;
pub mod redemption;
pub mod refund;
pub mod refund_allocation;
pub mod remembered_voucher;
pub mod text;
pub mod transaction;
pub mod voucher;
pub mod webhook_attempt;
pub mod webhook_delivery;
pub mod webhook_endpoint;
