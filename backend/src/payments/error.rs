//! What can go wrong paying, verifying and checking, as the payment rules see it; the
//! HTTP layer maps each variant to its status and code (`api::error`).
use std::time::Duration;

use superpayment_core::{Currency, FieldError, Money};

use crate::{checkout::CheckoutError, idempotency::IdempotencyError};

/// Why a voucher payment was declined (HTTP 402). Unknown, expired and blocked codes all
/// answer `voucher_declined` ([`DeclineReason::shown_to_shopper`]) so that the answer never
/// tells a guesser whether a code exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeclineReason {
    /// The vouchers together hold less than the amount.
    InsufficientBalance,
    /// Unknown code, or a code of the other mode (test/live).
    Unknown,
    /// Past its expiry date.
    Expired,
    /// Blocked by an operator.
    Blocked,
    /// Voucher currency differs from the payment currency.
    CurrencyMismatch,
    /// The voucher's merchant allow-list excludes this merchant.
    NotAccepted,
    /// The order is below the voucher's minimum order amount.
    MinimumOrderNotMet,
    /// A single-use voucher that was already used.
    AlreadyUsed,
    /// The remembered-voucher token is unknown, expired or revoked.
    TokenInvalid,
    /// Deactivated by its issuer (not yet or no longer activated).
    Inactive,
    /// The voucher's kind requires its PIN and none was given.
    PinRequired,
    /// The PIN given is not the voucher's.
    PinInvalid,
}

impl DeclineReason {
    /// Stable machine code.
    pub fn code(self) -> &'static str {
        match self {
            Self::InsufficientBalance => "insufficient_balance",
            Self::Unknown => "voucher_declined",
            Self::Expired => "voucher_expired",
            Self::Blocked => "voucher_blocked",
            Self::CurrencyMismatch => "voucher_currency_mismatch",
            Self::NotAccepted => "voucher_not_accepted",
            Self::MinimumOrderNotMet => "minimum_order_not_met",
            Self::AlreadyUsed => "voucher_already_used",
            Self::TokenInvalid => "voucher_token_invalid",
            Self::Inactive => "voucher_inactive",
            Self::PinRequired => "pin_required",
            Self::PinInvalid => "pin_invalid",
        }
    }

    /// Human-readable explanation (safe to show a shopper).
    pub fn message(self) -> &'static str {
        match self {
            Self::InsufficientBalance => "The vouchers' balance does not cover the amount.",
            Self::Unknown => "This voucher cannot be used.",
            Self::Expired => "This voucher has expired.",
            Self::Blocked => "This voucher has been blocked.",
            Self::CurrencyMismatch => "This voucher is in another currency than the order.",
            Self::NotAccepted => "This voucher is not accepted by this shop.",
            Self::MinimumOrderNotMet => "The order is below this voucher's minimum amount.",
            Self::AlreadyUsed => "This single-use voucher has already been used.",
            Self::TokenInvalid => "The remembered voucher is no longer available.",
            Self::Inactive => "This voucher is not active.",
            Self::PinRequired => "This voucher needs its PIN.",
            Self::PinInvalid => "The PIN does not match this voucher.",
        }
    }
}

impl DeclineReason {
    /// Whether the decline says something about the code itself (exists, usable): what a
    /// guesser learns from, and what the guessing lockout counts.
    pub fn concerns_code(self) -> bool {
        matches!(
            self,
            Self::Unknown
                | Self::Expired
                | Self::Blocked
                | Self::NotAccepted
                | Self::AlreadyUsed
                | Self::TokenInvalid
                | Self::Inactive
                | Self::PinRequired
                | Self::PinInvalid
        )
    }

    /// What a caller with a publishable key (the widget, or anyone who read a shop's page)
    /// is told: a code that cannot pay because it is unknown, expired or blocked gets the
    /// one uniform `voucher_declined`, so that a guesser cannot tell a dead code from one
    /// that never existed. The precise reason stays in the logs, the metrics and the fraud
    /// screener's record.
    pub fn shown_to_shopper(self) -> Self {
        match self {
            Self::Expired | Self::Blocked | Self::Inactive => Self::Unknown,
            other => other,
        }
    }

    /// The reason with this machine code.
    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.code() == code)
    }

    /// Every reason, in the order the documentation lists them.
    pub const ALL: [DeclineReason; 12] = [
        Self::InsufficientBalance,
        Self::Unknown,
        Self::Expired,
        Self::Blocked,
        Self::CurrencyMismatch,
        Self::NotAccepted,
        Self::MinimumOrderNotMet,
        Self::AlreadyUsed,
        Self::TokenInvalid,
        Self::Inactive,
        Self::PinRequired,
        Self::PinInvalid,
    ];
}

/// The transaction id the documentation's examples show.
pub const EXAMPLE_TRANSACTION_ID: &str = "txn_0193b5f0c2a87b3e9d1f4c2a8b7e6d5c";

/// Why a payment was not made.
#[derive(Debug, thiserror::Error)]
pub enum PayError {
    /// A voucher (or the vouchers together) cannot pay this order; `param` names the
    /// voucher at fault (`vouchers[1]`), if one is.
    #[error("declined: {reason:?}")]
    Declined {
        reason: DeclineReason,
        param: Option<String>,
    },
    /// The order already has a successful payment (empty id until explained).
    #[error("order already paid")]
    OrderAlreadyPaid { transaction_id: String },
    /// The checkout refused the request (signature, remembered-voucher token).
    #[error(transparent)]
    Checkout(#[from] CheckoutError),
    /// The Idempotency-Key refused or answered the request.
    #[error(transparent)]
    Idempotency(#[from] IdempotencyError),
    /// Too many failed voucher attempts from this client (or on this code); wait.
    #[error("too many failed attempts")]
    TooManyFailedAttempts { retry_after: Duration },
    /// Anything unexpected.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

crate::internal_on_db_error!(PayError);

impl PayError {
    /// One instance of each answer a payment can get, for the documentation.
    pub fn examples() -> Vec<PayError> {
        let mut out: Vec<PayError> = DeclineReason::ALL
            .into_iter()
            .filter(|r| *r != DeclineReason::TokenInvalid)
            .map(|reason| PayError::Declined {
                reason,
                param: Some("vouchers[0]".into()),
            })
            .collect();
        out.push(PayError::OrderAlreadyPaid {
            transaction_id: EXAMPLE_TRANSACTION_ID.into(),
        });
        out.extend(CheckoutError::payment_examples().map(PayError::Checkout));
        out.extend(IdempotencyError::examples().map(PayError::Idempotency));
        out.push(PayError::TooManyFailedAttempts {
            retry_after: Duration::from_secs(600),
        });
        out
    }
}

/// Why a verification could not be answered (a mismatch is an answer, not an error).
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// Neither `transaction_id` nor `order_id` was given.
    #[error("no transaction reference")]
    MissingReference,
    /// `expected_amount` is not an amount of the expected (or the transaction's) currency.
    #[error("invalid expected amount")]
    InvalidExpectedAmount(FieldError),
    /// No such transaction for this merchant and mode.
    #[error("transaction not found")]
    TransactionNotFound,
    /// Anything unexpected.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

crate::internal_on_db_error!(VerifyError);

impl VerifyError {
    /// One instance of each answer, for the documentation: the amount errors are the ones
    /// the amount parser gives for typical mistakes.
    pub fn examples() -> Vec<VerifyError> {
        let mut out = vec![
            VerifyError::MissingReference,
            VerifyError::TransactionNotFound,
        ];
        out.extend(
            amount_errors("expected_amount", Currency::EUR)
                .into_iter()
                .map(VerifyError::InvalidExpectedAmount),
        );
        out
    }
}

/// The field errors the amount parser gives for typical mistakes, for the documentation.
pub fn amount_errors(field: &str, currency: Currency) -> Vec<FieldError> {
    ["", "ten", "-5.00", "0", "10.005", "100000000000"]
        .into_iter()
        .filter_map(|raw| Money::parse(raw, currency).err())
        .map(|e| FieldError::new(field, e.code(), e.to_string()))
        .collect()
}

/// Why a voucher check was not answered.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// Too many failed voucher attempts from this client (or on this code); wait.
    #[error("too many failed attempts")]
    TooManyFailedAttempts { retry_after: Duration },
    /// Anything unexpected.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

crate::internal_on_db_error!(CheckError);
