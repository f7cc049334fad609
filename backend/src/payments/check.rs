//! Checking a voucher's balance and validity before paying (rate limited against guessing
//! by the gateway, `gateway::limits`).
use superpayment_core::{Currency, Money, VoucherCode};
use time::OffsetDateTime;

use super::rules::refusal;
use crate::{
    auth::Caller,
    crypto::voucher_hmac,
    gateway::lockout::Attempt,
    payments::{CheckError, DeclineReason},
    state::AppState,
    store,
};

/// What a shopper may learn about a code.
#[derive(Debug)]
pub struct VoucherStatus {
    pub valid: bool,
    /// Why not, when `valid` is false: the decline code a payment would get.
    pub reason: Option<&'static str>,
    pub balance: Option<Money>,
    pub currency: Option<Currency>,
    pub expires_at: Option<OffsetDateTime>,
    pub last4: String,
    /// A payment must give the voucher's PIN with its code (the widget asks for it).
    pub pin_required: bool,
}

/// Reports balance and validity for the caller's merchant and mode. Unknown codes (and
/// codes of the other mode), expired and blocked ones get one uniform answer
/// ([`DeclineReason::shown_to_shopper`]), and each counts as a failed attempt. Every call
/// counts against the gateway's limit per key and client address, whether the code exists
/// or not.
#[tracing::instrument(skip_all, fields(merchant_id = %caller.merchant_id))]
pub async fn check_voucher(
    state: &AppState,
    caller: &Caller,
    client: &str,
    code: &VoucherCode,
) -> Result<VoucherStatus, CheckError> {
    let attempt = Attempt::new(
        &state.lockout,
        client,
        &caller.key_id,
        vec![voucher_hmac(&state.pepper, code)],
    );
    if let Some(retry_after) = attempt.refused_for(&state.coord).await {
        return Err(CheckError::TooManyFailedAttempts { retry_after });
    }
    let status = answer(state, caller, code).await?;
    if status
        .reason
        .and_then(DeclineReason::from_code)
        .is_some_and(DeclineReason::concerns_code)
    {
        attempt.failed(&state.coord, None).await;
    }
    Ok(status)
}

async fn answer(
    state: &AppState,
    caller: &Caller,
    code: &VoucherCode,
) -> Result<VoucherStatus, CheckError> {
    let row = store::vouchers::find_by_hmac(&state.db, &voucher_hmac(&state.pepper, code)).await?;
    let last4 = code.last4().to_owned();
    let hidden = |reason: DeclineReason| VoucherStatus {
        valid: false,
        reason: Some(reason.code()),
        balance: None,
        currency: None,
        expires_at: None,
        last4: last4.clone(),
        pin_required: false,
    };
    let Some(v) = row.filter(|v| v.mode.0 == caller.mode) else {
        return Ok(hidden(DeclineReason::Unknown));
    };
    let currency = v.currency.0;
    let balance = Money::from_minor(v.balance_minor, currency)
        .map_err(|e| anyhow::anyhow!("stored balance: {e}"))?;
    // Any positive amount in the voucher's own currency: checks what holds for every order.
    let probe = Money::from_minor(1, currency).map_err(|e| anyhow::anyhow!(e))?;
    let voucher: super::rules::Voucher = (&v).into();
    let reason = refusal(
        Some(&voucher),
        &caller.merchant_id,
        caller.mode,
        probe,
        OffsetDateTime::now_utc(),
    )
    .filter(|r| *r != DeclineReason::MinimumOrderNotMet);
    if let Some(precise) = reason {
        let shown = precise.shown_to_shopper();
        if shown != precise {
            // Told apart only here, for the operator; the caller learns no more than
            // for a code that does not exist.
            tracing::info!(reason = precise.code(), "voucher check declined");
        }
        // A voucher this shop does not accept is none of its shoppers' business, and a
        // dead one must look like no voucher at all: no balance either way.
        if matches!(shown, DeclineReason::Unknown | DeclineReason::NotAccepted) {
            return Ok(hidden(shown));
        }
    }
    let mut reason = reason.map(DeclineReason::code);
    if reason.is_none() && balance.is_zero() {
        reason = Some(DeclineReason::InsufficientBalance.code());
    }
    Ok(VoucherStatus {
        valid: reason.is_none(),
        reason,
        balance: Some(balance),
        currency: Some(currency),
        // The effective expiry: a kind expiring after first use counts from there.
        expires_at: super::rules::expiry(&voucher),
        last4,
        pin_required: v.pin_hash.is_some(),
    })
}
