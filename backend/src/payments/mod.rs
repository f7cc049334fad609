//! The payment rules: paying an order with vouchers, verifying a transaction, checking a code.
//!
//! Handlers parse requests into `superpayment_core` types and call exactly one function
//! here; these functions own the order of locks, the database transaction and the
//! idempotency semantics of design §3 and §4.
mod check;
mod process;
pub mod rules;
mod verify;

pub use check::{check_voucher, VoucherStatus};
pub use process::{pay, PayOutcome, PayRequest, PaymentReceipt, ReceiptVoucher};
pub use verify::{verify, TransactionView, VerifyOutcome, VerifyQuery};

/// How long a stored idempotent response is replayed.
pub const IDEMPOTENCY_TTL: time::Duration = time::Duration::hours(24);

/// Refuses an Idempotency-Key header that is not 1 to 255 visible ASCII characters (it is
/// stored and compared as sent, so anything invisible would make keys that look equal differ).
pub fn check_idempotency_key(key: Option<&str>) -> Result<(), crate::api::error::ApiError> {
    match key {
        Some(k) if !(1..=255).contains(&k.len()) || !k.bytes().all(|b| b.is_ascii_graphic()) => {
            Err(crate::api::error::ApiError::InvalidRequest(vec![
                superpayment_core::FieldError::new(
                    "Idempotency-Key",
                    "invalid_idempotency_key",
                    "The Idempotency-Key header must be 1 to 255 visible ASCII characters.",
                ),
            ]))
        }
        _ => Ok(()),
    }
}
