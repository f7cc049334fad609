//! The checkout widget's server side: remembered vouchers, signed amounts and checkout settings.
//!
//! - [`tokens`]: "remember on this device": revocable, expiring tokens that stand for one
//!   voucher at one merchant, stored as hashes and usable only to pay.
//! - [`settings`]: per merchant and mode, whether amounts must be signed, the signing
//!   secret (derived, never stored) and the origins allowed to embed the checkout.
pub mod settings;
pub mod tokens;

pub use settings::{check_signature, sign_order, CheckoutSettings, SettingsPatch};
pub use tokens::{RememberedVoucher, TokenStatus};
