//! Payouts: an operator records that part of a merchant's payable was paid to its bank.
//!
//! A payout is one database transaction: the merchant's row is locked (two payouts of one
//! merchant are checked one after the other), the payable's balance is read from the
//! ledger, an amount above it is refused, and a `payout` journal moves the amount from
//! `merchant_payable:<merchant>:<mode>:<currency>` to `payouts_clearing:<mode>:<currency>`
//! beside the `payouts` row with the bank reference. It takes an Idempotency-Key through
//! the one mechanism ([`crate::idempotency`]), in the merchant's key space under its own
//! operation, so a retried payout is recorded once. A refund after a payout may leave the
//! payable below zero: the merchant then owes it, and its next statement opens with it.
use std::str::FromStr;

use sea_orm::DatabaseTransaction;
use serde::{Deserialize, Serialize};
use superpayment_core::{Currency, FieldError, Mode, Money};
use time::OffsetDateTime;

use crate::{
    idempotency::{
        self, Fingerprint, IdempotencyError, IdempotencyKey, IdempotentOperation, KeyOwner,
        Operation, Outcome, Recorder,
    },
    ids::new_id,
    money::format_minor,
    state::AppState,
    store::{
        self,
        entities::{payout, text::AsText},
        ledger::{Account, Lines},
    },
    timestamps::rfc3339,
};

/// Longest bank reference kept.
pub const MAX_REFERENCE_LEN: usize = 140;

/// Why a payout was refused.
#[derive(Debug, thiserror::Error)]
pub enum PayoutError {
    /// A field is not valid (`FieldError` says which and why).
    #[error("invalid payout")]
    Invalid(FieldError),
    /// No such merchant.
    #[error("merchant not found")]
    MerchantNotFound,
    /// The amount is above what the merchant is owed (`payable`, formatted).
    #[error("payout exceeds the payable")]
    ExceedsPayable { payable: String, currency: Currency },
    /// The Idempotency-Key refused or answered the request.
    #[error(transparent)]
    Idempotency(#[from] IdempotencyError),
    /// Anything unexpected.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

crate::internal_on_db_error!(PayoutError);

impl PayoutError {
    /// One instance of each answer a payout can get, for the documentation.
    pub fn examples() -> Vec<PayoutError> {
        let mut out = vec![
            PayoutError::MerchantNotFound,
            PayoutError::ExceedsPayable {
                payable: "120.00".into(),
                currency: Currency::EUR,
            },
            invalid("reference", "invalid_reference", &invalid_reference()),
            invalid("mode", "invalid_mode", INVALID_MODE),
        ];
        if let Err(e) = Currency::from_str("XXX") {
            out.push(invalid("currency", e.code(), &e.to_string()));
        }
        out.extend(
            crate::payments::amount_errors("amount", Currency::EUR)
                .into_iter()
                .map(PayoutError::Invalid),
        );
        out.extend(IdempotencyError::examples().map(PayoutError::Idempotency));
        out
    }
}

const INVALID_MODE: &str = "mode must be `test` or `live`.";

fn invalid_reference() -> String {
    format!(
        "reference must have 1 to {MAX_REFERENCE_LEN} characters (the bank transfer's reference)."
    )
}

fn invalid(field: &str, code: &'static str, message: &str) -> PayoutError {
    PayoutError::Invalid(FieldError::new(field, code, message))
}

/// A payout as asked for, before validation.
#[derive(Debug, Clone)]
pub struct PayoutRequest {
    pub merchant_id: String,
    /// `test` unless given.
    pub mode: Option<String>,
    pub currency: String,
    /// Decimal amount, e.g. `"10.00"`.
    pub amount: String,
    pub reference: String,
    pub idempotency_key: Option<String>,
}

/// A recorded payout, as answered (and stored for idempotent replays).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PayoutReceipt {
    pub id: String,
    pub merchant_id: String,
    pub mode: String,
    pub currency: String,
    pub amount: String,
    pub reference: String,
    /// What the merchant was owed before and after the payout.
    pub payable_before: String,
    pub payable_after: String,
    pub created_at: String,
}

/// A payout recorded now, or the stored answer to a repeated Idempotency-Key.
#[derive(Debug)]
pub enum PayoutOutcome {
    Recorded(PayoutReceipt),
    Replayed(PayoutReceipt),
}

struct Valid {
    merchant_id: String,
    mode: Mode,
    amount: Money,
    reference: String,
}

#[derive(Serialize)]
struct Canonical<'a> {
    currency: &'a str,
    amount_minor: i64,
    reference: &'a str,
}

fn validate(req: &PayoutRequest) -> Result<Valid, PayoutError> {
    let mode = req.mode.as_deref().map_or(Ok(Mode::Test), |m| {
        Mode::from_str(m).map_err(|_| invalid("mode", "invalid_mode", INVALID_MODE))
    })?;
    let currency = Currency::from_str(&req.currency)
        .map_err(|e| invalid("currency", e.code(), &e.to_string()))?;
    let amount = Money::parse(&req.amount, currency)
        .map_err(|e| invalid("amount", e.code(), &e.to_string()))?;
    let reference = req.reference.trim();
    if reference.is_empty()
        || reference.chars().count() > MAX_REFERENCE_LEN
        || reference.chars().any(char::is_control)
    {
        return Err(invalid(
            "reference",
            "invalid_reference",
            &invalid_reference(),
        ));
    }
    Ok(Valid {
        merchant_id: req.merchant_id.clone(),
        mode,
        amount,
        reference: reference.to_owned(),
    })
}

/// Records a payout of part or all of a merchant's payable.
#[tracing::instrument(skip_all, fields(merchant_id = %req.merchant_id))]
pub async fn record(state: &AppState, req: PayoutRequest) -> Result<PayoutOutcome, PayoutError> {
    let key = IdempotencyKey::parse(req.idempotency_key.clone())?;
    let valid = validate(&req)?;
    let fingerprint = Fingerprint::of(&Canonical {
        currency: valid.amount.currency().code(),
        amount_minor: valid.amount.minor(),
        reference: &valid.reference,
    })?;
    let owner = KeyOwner {
        merchant_id: &valid.merchant_id,
        mode: valid.mode,
    };
    if store::merchants::find_merchant(&state.db, &valid.merchant_id)
        .await?
        .is_none()
    {
        // Refused before the key space of a merchant that does not exist is touched.
        return Err(PayoutError::MerchantNotFound);
    }
    let op = Pay { valid: &valid };
    Ok(
        match idempotency::execute(state, owner, key, fingerprint, None, &op).await? {
            Outcome::Fresh(r) => PayoutOutcome::Recorded(r),
            Outcome::Replayed(r) => PayoutOutcome::Replayed(r),
        },
    )
}

struct Pay<'a> {
    valid: &'a Valid,
}

impl IdempotentOperation for Pay<'_> {
    type Output = PayoutReceipt;
    type Error = PayoutError;
    const OPERATION: Operation = Operation::Payout;

    async fn run(
        &self,
        tx: &DatabaseTransaction,
        recorder: &Recorder<'_>,
    ) -> Result<PayoutReceipt, PayoutError> {
        let v = self.valid;
        store::payouts::lock_merchant(tx, &v.merchant_id)
            .await?
            .ok_or(PayoutError::MerchantNotFound)?;
        let currency = v.amount.currency();
        let mode = v.mode.as_str();
        let payable_account = Account::MerchantPayable {
            merchant_id: &v.merchant_id,
        };
        let payable =
            store::payouts::account_balance(tx, &payable_account.name(mode, currency.code()))
                .await?;
        let amount = v.amount.minor();
        if amount > payable {
            return Err(PayoutError::ExceedsPayable {
                payable: format_minor(payable, currency)?,
                currency,
            });
        }
        let now = OffsetDateTime::now_utc();
        let mut lines = Lines::new(mode, currency.code());
        lines
            .add(payable_account, -amount)
            .add(Account::PayoutsClearing, amount);
        let journal_id = store::ledger::post(tx, "payout", None, &lines, now).await?;
        let id = new_id("po");
        store::payouts::insert(
            tx,
            payout::Model {
                id: id.clone(),
                merchant_id: v.merchant_id.clone(),
                mode: AsText(v.mode),
                currency: AsText(currency),
                amount_minor: amount,
                reference: v.reference.clone(),
                journal_id,
                created_at: now,
            },
        )
        .await?;
        let receipt = PayoutReceipt {
            id,
            merchant_id: v.merchant_id.clone(),
            mode: mode.to_owned(),
            currency: currency.code().to_owned(),
            amount: v.amount.to_string(),
            reference: v.reference.clone(),
            payable_before: format_minor(payable, currency)?,
            payable_after: format_minor(payable - amount, currency)?,
            created_at: rfc3339(now),
        };
        recorder.store(tx, 201, &receipt, now).await?;
        Ok(receipt)
    }

    fn committed(&self, receipt: &PayoutReceipt) {
        tracing::info!(payout_id = %receipt.id, amount = %receipt.amount, currency = %receipt.currency, "payout recorded");
    }
}
