//! The payment rules: paying an order with vouchers (at once, or a hold captured later),
//! verifying a transaction, checking a code.
//!
//! Handlers parse requests into `superpayment_core` types and call exactly one function
//! here; these functions own the order of locks, the database transaction and the
//! idempotency semantics of design §3 and §4.
mod check;
mod error;
pub mod holds;
pub mod kinds;
mod process;
pub mod rules;
mod status;
mod verify;

pub use check::{check_voucher, VoucherStatus};
pub use error::{
    amount_errors, CheckError, DeclineReason, PayError, VerifyError, EXAMPLE_TRANSACTION_ID,
};
pub use process::{pay, PayOutcome, PayRequest, PaymentReceipt, ReceiptVoucher};
pub use status::TransactionStatus;
pub use verify::{verify, TransactionView, VerifyOutcome, VerifyQuery};
