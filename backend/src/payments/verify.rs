//! Verifying a transaction from the merchant's server before goods are released.
use superpayment_core::{Currency, Money, OrderId};

use super::{TransactionStatus, VerifyError};
use crate::{
    auth::Caller,
    state::AppState,
    store::{self, entities::transaction},
};

/// What the merchant asks about, already syntactically checked.
#[derive(Debug, Default)]
pub struct VerifyQuery {
    pub transaction_id: Option<String>,
    pub order_id: Option<OrderId>,
    pub expected_amount: Option<String>,
    pub expected_currency: Option<Currency>,
    /// Release goods on a partially refunded transaction too (a fully refunded one never).
    pub accept_partially_refunded: bool,
}

/// A transaction as the merchant's server sees it.
#[derive(Debug, Clone)]
pub struct TransactionView {
    pub row: transaction::Model,
    /// (last4, amount taken) per voucher, in the order applied.
    pub vouchers: Vec<(String, i64)>,
}

/// The verdict.
#[derive(Debug)]
pub struct VerifyOutcome {
    pub verified: bool,
    pub mismatches: Vec<&'static str>,
    pub transaction: TransactionView,
}

/// Looks the transaction up (by id, else by order id) within the caller's merchant and
/// mode, and compares it with what the merchant expected. Another merchant's transaction
/// is simply not found.
///
/// Reads the primary: the merchant releases goods on this answer, typically a moment after
/// the widget's success, when a replica may not have the payment yet.
#[tracing::instrument(skip_all, fields(merchant_id = %caller.merchant_id))]
pub async fn verify(
    state: &AppState,
    caller: &Caller,
    q: VerifyQuery,
) -> Result<VerifyOutcome, VerifyError> {
    let db = &state.db;
    // By id (the usual case) the transaction and its voucher lines come in one statement.
    let found = match (&q.transaction_id, &q.order_id) {
        (Some(id), _) => store::payments::find_transaction_with_lines(
            db,
            &caller.merchant_id,
            caller.mode_str(),
            id,
        )
        .await?
        .map(|(row, lines)| (row, Some(lines))),
        (None, Some(order)) => store::payments::find_transaction_by_order(
            db,
            &caller.merchant_id,
            caller.mode_str(),
            order.as_str(),
        )
        .await?
        .map(|row| (row, None)),
        (None, None) => return Err(VerifyError::MissingReference),
    };
    let (row, lines) = found.ok_or(VerifyError::TransactionNotFound)?;
    let currency = row.currency.0;

    // A verdict is only as good as what was asked: whatever the merchant did not state
    // is a mismatch too, so that nobody verifies another order's or another amount's
    // transaction by leaving a field out (or misspelling it, which is refused earlier).
    let mut mismatches = Vec::new();
    match &q.order_id {
        None => mismatches.push("order_id_not_stated"),
        Some(o) if o.as_str() != row.order_id => mismatches.push("order_id"),
        Some(_) => {}
    }
    match q.expected_currency {
        None => mismatches.push("currency_not_stated"),
        Some(expected) if expected != currency => mismatches.push("currency"),
        Some(_) => {}
    }
    if q.expected_amount.is_none() {
        mismatches.push("amount_not_stated");
    }
    if let Some(expected) = &q.expected_amount {
        let parse_in = q.expected_currency.unwrap_or(currency);
        let expected = Money::parse(expected, parse_in).map_err(|e| {
            VerifyError::InvalidExpectedAmount(superpayment_core::FieldError::new(
                "expected_amount",
                e.code(),
                e.to_string(),
            ))
        })?;
        if expected.minor() != row.amount_minor || expected.currency() != currency {
            mismatches.push("amount");
        }
    }
    if !TransactionStatus::of(&row).releases_goods(q.accept_partially_refunded) {
        mismatches.push("status");
    }
    let vouchers = match lines {
        Some(lines) => lines,
        None => store::payments::redemption_lines(db, &row.id).await?,
    };
    Ok(VerifyOutcome {
        verified: mismatches.is_empty(),
        mismatches,
        transaction: TransactionView { row, vouchers },
    })
}
