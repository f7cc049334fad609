//! Money, currencies, voucher codes, order ids, API key formats and payment request
//! validation, shared by the SuperPayment widget (compiled to Wasm) and the backend so the
//! browser and the server can never disagree.
//!
//! No I/O and no source of randomness: callers pass random bytes in. Amounts are exact
//! integers of minor units; floating point never touches money.
//!
//! # Layout
//! - [`currency`]: supported currencies and their ISO 4217 exponents.
//! - [`money`]: [`Money`], amount parsing, the wire format and locale display.
//! - [`commission`]: basis points and the commission/net split.
//! - [`voucher`]: voucher codes with their check symbol.
//! - [`pin`]: the shape of voucher PINs.
//! - [`order`]: merchant order ids.
//! - [`keys`]: API key formats and modes.
//! - [`crockford`]: the base32 alphabet codes and keys share.
//! - [`validate`]: the payment request rules both sides run.
//!
//! Everything is re-exported at the crate root.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod commission;
pub mod crockford;
pub mod currency;
pub mod keys;
pub mod money;
pub mod order;
pub mod pin;
#[cfg(feature = "signatures")]
pub mod signatures;
pub mod validate;
pub mod voucher;

pub use commission::{split_commission, BasisPoints, CommissionError, Split};
pub use crockford::{crockford_encode, CROCKFORD_ALPHABET};
pub use currency::{Currency, CurrencyError};
pub use keys::{ApiKey, KeyFormatError, KeyKind, Mode, ModeError};
pub use money::{AmountError, Locale, Money, MAX_MINOR};
pub use order::{OrderId, OrderIdError};
pub use pin::{is_well_formed_pin, PIN_DIGITS};
pub use validate::{
    validate_payment_request, validate_voucher_check, FieldError, PaymentRequestInput,
    ValidPayment, VoucherInput, VoucherRef, MAX_VOUCHERS_PER_PAYMENT,
};
pub use voucher::{format_partial_code, CodeError, VoucherCode};
