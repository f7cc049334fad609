//! SeaORM entities, one per table of the migrations crate.
pub mod api_key;
pub mod event;
pub mod idempotency_key;
pub mod journal;
pub mod merchant;
pub mod posting;
pub mod redemption;
pub mod transaction;
pub mod voucher;
