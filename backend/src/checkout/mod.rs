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

use superpayment_core::FieldError;

/// What the checkout refuses: a payment's signature or remembered vouchers, settings and
/// tokens that are not well-formed.
#[derive(Debug, thiserror::Error)]
pub enum CheckoutError {
    /// The merchant requires signed amounts and none was sent.
    #[error("signature required")]
    SignatureRequired,
    /// The signature does not match the order id, amount and currency.
    #[error("signature invalid")]
    SignatureInvalid,
    /// A remembered-voucher token is unknown, revoked, expired or another shop's (a
    /// decline of the payment; `param` names it, e.g. `vouchers[0]`).
    #[error("remembered voucher invalid")]
    TokenInvalid { param: Option<String> },
    /// The same voucher twice in one payment (a code and its remembered token).
    #[error("duplicate voucher")]
    DuplicateVoucher { param: String },
    /// Fields that are not well-formed (origins, tokens), all of them listed.
    #[error("invalid request")]
    Invalid(Vec<FieldError>),
    /// No voucher with this code.
    #[error("voucher not found")]
    VoucherNotFound,
    /// Anything unexpected.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

crate::internal_on_db_error!(CheckoutError);

impl CheckoutError {
    /// What the checkout can refuse in a payment, for the documentation.
    pub fn payment_examples() -> impl Iterator<Item = CheckoutError> {
        [
            Self::SignatureRequired,
            Self::SignatureInvalid,
            Self::TokenInvalid {
                param: Some("vouchers[0]".into()),
            },
            Self::DuplicateVoucher {
                param: "vouchers[1]".into(),
            },
        ]
        .into_iter()
    }

    /// What refusing malformed tokens looks like, for the documentation.
    pub fn token_examples() -> impl Iterator<Item = CheckoutError> {
        [
            tokens::parse_tokens(&[]),
            tokens::parse_tokens(&["vt_?".into()]),
        ]
        .into_iter()
        .filter_map(Result::err)
    }

    /// What refusing malformed origins looks like, for the documentation.
    pub fn origin_examples() -> impl Iterator<Item = CheckoutError> {
        [
            settings::normalise_origins(&vec![
                "https://a.example".into();
                settings::MAX_ALLOWED_ORIGINS + 1
            ]),
            settings::normalise_origins(&["https://shop.example/checkout".into()]),
        ]
        .into_iter()
        .filter_map(Result::err)
    }
}
