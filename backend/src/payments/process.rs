//! Paying an order with vouchers: the whole flow behind POST /api/process-payment.
//!
//! [`pay`] owns it: test-mode refills, the amount's signature, the request fingerprint,
//! the idempotent run (key, order lock, the one ledger transaction) and remembering the
//! shopper's vouchers afterwards.
use sea_orm::DatabaseTransaction;
use serde::{Deserialize, Serialize};
use superpayment_core::{split_commission, BasisPoints, ValidPayment};
use time::OffsetDateTime;

use super::{rules, DeclineReason, PayError, TransactionStatus};
use crate::store::entities::text::AsText;
use crate::{
    auth::Caller,
    checkout::{
        self,
        tokens::{Keyed, RememberedVoucher},
        CheckoutError,
    },
    crypto::{pin_fingerprint, pin_matches_or_dummy, sha256_hex},
    gateway::lockout::Attempt,
    idempotency::{
        self, Fingerprint, IdempotencyError, IdempotencyKey, IdempotentOperation, Operation,
        Outcome, Recorder,
    },
    ids::new_id,
    secret::Secret,
    state::AppState,
    store::{
        self,
        entities::{
            event::{self, EventKind},
            transaction::{self, HoldState, InitialStatus},
            voucher,
        },
        ledger::{Account, Lines},
        payment_write::{AttemptSource, Debit, PaymentWrite, WriteOutcome},
    },
};

/// A validated payment request.
pub struct PayRequest {
    pub payment: ValidPayment,
    /// The widget's `data-signature`, if any.
    pub signature: Option<String>,
    /// The shopper asked to be remembered on this device.
    pub remember: bool,
    /// False places a hold, captured or canceled later (`payments::holds`).
    pub capture: bool,
    /// The Idempotency-Key header, as sent.
    pub idempotency_key: Option<String>,
    /// The client address the guessing lockout counts against.
    pub client: String,
    /// The PIN given with each voucher, in the order of `payment.vouchers`.
    pub pins: Vec<Option<Secret<String>>>,
}

/// The answer to a successful payment (also stored for idempotent replays).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PaymentReceipt {
    pub id: String,
    pub status: String,
    pub order_id: String,
    pub amount: String,
    pub currency: String,
    pub mode: String,
    pub vouchers: Vec<ReceiptVoucher>,
    pub created_at: String,
    /// A hold only: when it is released unless captured (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capture_before: Option<String>,
}

/// What one voucher contributed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReceiptVoucher {
    pub last4: String,
    pub amount: String,
    pub remaining_balance: String,
}

/// A fresh payment (with the vouchers remembered for the shopper, if asked), or the stored
/// answer replayed for a repeated Idempotency-Key (never with remembered vouchers).
#[derive(Debug)]
pub enum PayOutcome {
    Created {
        receipt: PaymentReceipt,
        remembered: Vec<RememberedVoucher>,
    },
    Replayed(PaymentReceipt),
}

/// The request as fingerprinted: validated, codes as their HMACs and tokens as their hashes.
#[derive(Serialize)]
struct Canonical<'a> {
    order_id: &'a str,
    amount_minor: i64,
    currency: &'a str,
    vouchers: Vec<String>,
    signature: Option<&'a str>,
    remember: bool,
    capture: bool,
    /// Keyed HMACs of the PINs given; left out when none is, so a request without PINs
    /// keeps the fingerprint it had before PINs existed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pins: Vec<Option<String>>,
}

/// Pays an order, honouring the three depths of double-payment protection of design §3:
/// the idempotency key ([`idempotency::execute`]), the order (a lock, then the unique
/// index), and the conditional debits inside one database transaction.
#[tracing::instrument(skip_all, fields(merchant_id = %caller.merchant_id, order_id = %req.payment.order_id, mode = caller.mode_str()))]
pub async fn pay(
    state: &AppState,
    caller: &Caller,
    req: PayRequest,
) -> Result<PayOutcome, PayError> {
    let result = pay_guarded(state, caller, req).await;
    let (outcome, reason) = match &result {
        Ok(PayOutcome::Created { .. }) => ("succeeded", "none"),
        Ok(PayOutcome::Replayed(_)) => ("replayed", "none"),
        Err(PayError::Declined { reason, .. }) => ("declined", reason.code()),
        Err(PayError::OrderAlreadyPaid { .. }) => ("refused", "order_already_paid"),
        Err(PayError::TooManyFailedAttempts { .. }) => ("refused", "too_many_failed_attempts"),
        Err(PayError::Checkout(_)) => ("refused", "checkout"),
        Err(PayError::Idempotency(IdempotencyError::StoredFailure { .. })) => ("replayed", "none"),
        Err(PayError::Idempotency(IdempotencyError::Internal(_))) | Err(PayError::Internal(_)) => {
            ("error", "none")
        }
        Err(PayError::Idempotency(_)) => ("refused", "idempotency_key"),
    };
    crate::monitoring::payment(caller.mode_str(), outcome, reason);
    if let Err(PayError::Declined { reason, param }) = &result {
        // The precise reason, which the shopper's answer may hide (`shown_to_shopper`).
        tracing::info!(
            reason = reason.code(),
            param = param.as_deref(),
            "payment declined"
        );
    }
    result
}

/// [`pay`] behind the voucher-guessing lockout: a locked-out source is refused before
/// anything is read, and a decline that concerns a code counts against it. Successes and
/// declines are recorded for the fraud screener ([`crate::fraud`]).
async fn pay_guarded(
    state: &AppState,
    caller: &Caller,
    req: PayRequest,
) -> Result<PayOutcome, PayError> {
    // Each voucher keyed once: the lockout, the fingerprint, the lookup and what is
    // remembered afterwards all read these.
    let keyed = checkout::tokens::keyed(state, &req.payment.vouchers);
    // A token is not guessable in 256 bits; its place keeps `vouchers[i]` aligned.
    let codes = keyed.iter().map(|k| k.digest().to_owned()).collect();
    let attempt = Attempt::new(&state.lockout, &req.client, &caller.key_id, codes);
    if let Some(retry_after) = attempt.refused_for(&state.coord).await {
        return Err(PayError::TooManyFailedAttempts { retry_after });
    }
    let source = state
        .fraud
        .as_ref()
        .map(|log| (log, log.source(caller, &req.client)));
    let result = pay_unguarded(state, caller, req, &keyed, source.as_ref().map(|s| &s.1)).await;
    // A success's attempt row was written in its transaction.
    if let (Some((log, source)), Err(PayError::Declined { reason, .. })) = (&source, &result) {
        log.record_decline(&state.db, caller, source, reason.code())
            .await;
    }
    let failed = match &result {
        Err(PayError::Declined { reason, param }) if reason.concerns_code() => Some(
            param
                .as_deref()
                .and_then(|p| p.strip_prefix("vouchers["))
                .and_then(|p| p.strip_suffix(']'))
                .and_then(|i| i.parse::<usize>().ok()),
        ),
        Err(PayError::Checkout(CheckoutError::TokenInvalid { .. })) => Some(None),
        _ => None,
    };
    if let Some(at_fault) = failed {
        attempt.failed(&state.coord, at_fault).await;
    }
    result
}

async fn pay_unguarded(
    state: &AppState,
    caller: &Caller,
    req: PayRequest,
    keyed: &[Keyed],
    source: Option<&AttemptSource>,
) -> Result<PayOutcome, PayError> {
    let p = &req.payment;
    crate::testmode::refill_magic(state, caller, &p.vouchers).await?;
    let key = IdempotencyKey::parse(req.idempotency_key.clone())?;
    checkout::check_signature(state, caller, p, req.signature.as_deref()).await?;
    let fingerprint = Fingerprint::of(&Canonical {
        order_id: p.order_id.as_str(),
        amount_minor: p.amount.minor(),
        currency: p.amount.currency().code(),
        vouchers: keyed
            .iter()
            .map(|k| match k {
                Keyed::Code(hmac) => format!("code:{hmac}"),
                Keyed::Token(hash) => format!("token:{hash}"),
            })
            .collect(),
        signature: req.signature.as_deref(),
        remember: req.remember,
        capture: req.capture,
        pins: if req.pins.iter().any(Option::is_some) {
            req.pins
                .iter()
                .map(|p| {
                    p.as_ref()
                        .map(|p| pin_fingerprint(&state.pepper, p.expose()))
                })
                .collect()
        } else {
            Vec::new()
        },
    })?;
    // Scoped to the merchant and mode by `execute`.
    let order_lock = format!("order:{}", sha256_hex(p.order_id.as_str()));
    let op = Payment {
        state,
        caller,
        payment: p,
        keyed,
        capture: req.capture,
        pins: &req.pins,
        source,
    };
    match idempotency::execute(state, caller, key, fingerprint, Some(order_lock), &op).await? {
        Outcome::Replayed(receipt) => Ok(PayOutcome::Replayed(receipt)),
        Outcome::Fresh(receipt) => {
            let remembered =
                checkout::tokens::after_payment(state, caller, keyed, &receipt, req.remember)
                    .await
                    // The payment stands either way; the shopper just is not remembered.
                    .unwrap_or_else(|e| {
                        tracing::warn!(error = %e, "remembering the vouchers failed");
                        Vec::new()
                    });
            Ok(PayOutcome::Created {
                receipt,
                remembered,
            })
        }
    }
}

/// One payment as an idempotent operation.
struct Payment<'a> {
    state: &'a AppState,
    caller: &'a Caller,
    payment: &'a ValidPayment,
    keyed: &'a [Keyed],
    capture: bool,
    pins: &'a [Option<Secret<String>>],
    /// The fraud screener's record of a success, `None` with screening off.
    source: Option<&'a AttemptSource>,
}

impl IdempotentOperation for Payment<'_> {
    type Output = PaymentReceipt;
    type Error = PayError;
    const OPERATION: Operation = Operation::Payment;

    /// Locks the vouchers in id order, plans the debits and writes everything (one
    /// statement on PostgreSQL) in the caller's transaction.
    async fn run(
        &self,
        tx: &DatabaseTransaction,
        recorder: &Recorder<'_>,
    ) -> Result<PaymentReceipt, PayError> {
        // Typed codes and remembered-voucher tokens both end up as the code's HMAC.
        let hmacs = checkout::tokens::voucher_hmacs(tx, self.caller, self.keyed).await?;
        check_pins(self.state, tx, self.caller, &hmacs, self.pins).await?;
        plan_and_write(tx, self, &hmacs, recorder).await
    }

    /// A repeat of an order that is already paid is answered as such, even when its
    /// vouchers no longer cover it (the first payment used them).
    async fn explain(&self, err: PayError) -> Result<PayError, PayError> {
        if !Self::keeps(&err) {
            return Ok(err);
        }
        let paid = store::payments::find_transaction_by_order(
            &self.state.db,
            &self.caller.merchant_id,
            self.caller.mode_str(),
            self.payment.order_id.as_str(),
        )
        .await?;
        Ok(match paid {
            Some(t) => PayError::OrderAlreadyPaid {
                transaction_id: t.id,
            },
            None => err,
        })
    }

    /// Outcomes of a request that ran are kept, so a retry gets the same answer.
    fn keeps(err: &PayError) -> bool {
        matches!(
            err,
            PayError::Declined { .. }
                | PayError::OrderAlreadyPaid { .. }
                | PayError::Checkout(CheckoutError::TokenInvalid { .. })
        )
    }

    fn committed(&self, receipt: &PaymentReceipt) {
        self.state.webhooks.bell.ring();
        tracing::info!(transaction_id = %receipt.id, amount = %receipt.amount, currency = %receipt.currency, vouchers = receipt.vouchers.len(), "payment succeeded");
    }
}

/// The stored PIN hash of each voucher of the request (by HMAC, in request order), `None`
/// for a code that is unknown, of the other mode or without a PIN; refuses the first
/// voucher that has a PIN when the request gives none for it (`pin_required`).
fn stored_pins(
    caller: &Caller,
    hmacs: &[String],
    pins: &[Option<Secret<String>>],
    rows: &[voucher::Model],
) -> Result<Vec<Option<String>>, PayError> {
    let mut stored = Vec::with_capacity(hmacs.len());
    for (i, hmac) in hmacs.iter().enumerate() {
        let hash = rows
            .iter()
            .filter(|v| v.mode.0 == caller.mode)
            .find(|v| &v.code_hmac == hmac)
            .and_then(|v| v.pin_hash.clone());
        if hash.is_some() && pins.get(i).is_none_or(Option::is_none) {
            return Err(PayError::Declined {
                reason: DeclineReason::PinRequired,
                param: Some(format!("vouchers[{i}]")),
            });
        }
        stored.push(hash);
    }
    Ok(stored)
}

/// Refuses a voucher whose kind requires a PIN when the request gives a wrong one
/// (`pin_invalid`) or none (`pin_required`, checked here when some PIN is given, else by
/// [`plan_and_write`] on the rows it locks: a request without PINs, the usual one, reads
/// the vouchers once). Both declines concern the code, so the guessing lockout counts them
/// as it counts a wrong code. A PIN never changes after issuance, so a given one is checked
/// before the vouchers are locked; the slow hashes run off the async workers.
async fn check_pins(
    state: &AppState,
    tx: &DatabaseTransaction,
    caller: &Caller,
    hmacs: &[String],
    pins: &[Option<Secret<String>>],
) -> Result<(), PayError> {
    if pins.iter().all(Option::is_none) {
        return Ok(());
    }
    let found = store::vouchers::find_by_hmacs(tx, hmacs).await?;
    let stored = stored_pins(caller, hmacs, pins, &found)?;
    let checks: Vec<_> = stored
        .into_iter()
        .enumerate()
        .filter_map(|(i, stored)| Some((i, pins.get(i)?.clone()?, stored)))
        .collect();
    // A PIN given for a code without one (unknown, of the other mode, or a kind without
    // PINs) costs the same Argon2 verification as a wrong PIN: the decline that follows
    // takes as long as `pin_invalid` does.
    let pepper = state.pepper.clone();
    let wrong = tokio::task::spawn_blocking(move || {
        checks
            .into_iter()
            .find(|(_, pin, stored)| {
                // Verified first, whether there is a hash or not; a code without one is
                // not refused here (its own decline, if any, follows).
                !pin_matches_or_dummy(&pepper, pin.expose(), stored.as_deref()) && stored.is_some()
            })
            .map(|(i, _, _)| i)
    })
    .await
    .map_err(anyhow::Error::from)?;
    match wrong {
        Some(i) => Err(PayError::Declined {
            reason: DeclineReason::PinInvalid,
            param: Some(format!("vouchers[{i}]")),
        }),
        None => Ok(()),
    }
}

async fn plan_and_write(
    tx: &DatabaseTransaction,
    op: &Payment<'_>,
    hmacs: &[String],
    recorder: &Recorder<'_>,
) -> Result<PaymentReceipt, PayError> {
    let &Payment {
        caller,
        payment: p,
        capture,
        pins,
        source,
        ..
    } = op;
    let now = OffsetDateTime::now_utc();
    let locked = store::vouchers::lock_by_hmacs(tx, hmacs).await?;
    // A PIN that is needed and not given (`check_pins` hashed any that were).
    stored_pins(caller, hmacs, pins, &locked)?;
    let vouchers: Vec<Option<rules::Voucher>> = hmacs
        .iter()
        .map(|h| locked.iter().find(|v| &v.code_hmac == h).map(Into::into))
        .collect();
    let vouchers: Vec<Option<&rules::Voucher>> = vouchers.iter().map(Option::as_ref).collect();
    let plan = rules::allocate(&vouchers, &caller.merchant_id, caller.mode, p.amount, now)?;

    let bps = BasisPoints::new(u32::from(caller.commission_bps))
        .map_err(|e| anyhow::anyhow!("merchant commission: {e}"))?;
    let split = split_commission(p.amount, bps);
    let currency = p.amount.currency();
    let txn_id = new_id("txn");

    let mut lines = Lines::new(caller.mode_str(), currency.code());
    for a in &plan {
        let voucher_id = a.voucher_id;
        lines.add(Account::VoucherLiability { voucher_id }, -a.take);
        if !capture {
            lines.add(Account::Held { voucher_id }, a.take);
        }
        // A single-use voucher's remainder is forfeited: it leaves the liability for good.
        lines
            .add(Account::VoucherLiability { voucher_id }, -a.forfeit)
            .add(Account::Breakage { voucher_id }, a.forfeit);
    }
    // A hold owes the merchant nothing yet: the capture posts what it captures.
    if capture {
        lines
            .add(
                Account::MerchantPayable {
                    merchant_id: &caller.merchant_id,
                },
                split.net.minor(),
            )
            .add(Account::PlatformCommission, split.commission.minor());
    }
    let (status, kind, hold_expires_at) = if capture {
        (
            TransactionStatus::Succeeded,
            EventKind::PaymentSucceeded,
            None,
        )
    } else {
        (
            TransactionStatus::Authorized,
            EventKind::PaymentAuthorized,
            Some(now + caller.hold_period),
        )
    };

    let money = |minor: i64| crate::money::format_minor(minor, currency);
    let receipt = PaymentReceipt {
        id: txn_id.clone(),
        status: status.as_str().into(),
        order_id: p.order_id.as_str().into(),
        amount: p.amount.to_string(),
        currency: currency.code().into(),
        mode: caller.mode_str().into(),
        vouchers: plan
            .iter()
            .map(|a| {
                Ok(ReceiptVoucher {
                    last4: a.last4.clone(),
                    amount: money(a.take)?,
                    remaining_balance: money(a.balance_after)?,
                })
            })
            .collect::<anyhow::Result<_>>()?,
        created_at: crate::timestamps::rfc3339(now),
        capture_before: hold_expires_at.map(crate::timestamps::rfc3339),
    };
    let event_id = new_id("evt");
    let write = PaymentWrite {
        transaction: transaction::Model {
            id: txn_id.clone(),
            merchant_id: caller.merchant_id.clone(),
            mode: AsText(caller.mode),
            order_id: p.order_id.as_str().into(),
            status: if capture {
                InitialStatus::Succeeded
            } else {
                InitialStatus::Authorized
            },
            currency: AsText(currency),
            amount_minor: p.amount.minor(),
            commission_minor: split.commission.minor(),
            net_minor: split.net.minor(),
            refunded_minor: 0,
            created_at: now,
            hold_state: (!capture).then_some(HoldState::Authorized),
            authorized_minor: (!capture).then_some(p.amount.minor()),
            hold_expires_at,
        },
        debits: plan
            .iter()
            .map(|a| Debit {
                voucher_id: a.voucher_id,
                amount_minor: a.take,
                forfeit_minor: a.forfeit,
                balance_after_minor: a.balance_after,
                position: a.position as i32,
                mark_used: a.mark_used,
            })
            .collect(),
        lines,
        event: event::Model {
            id: event_id.clone(),
            merchant_id: caller.merchant_id.clone(),
            mode: AsText(caller.mode),
            kind,
            transaction_id: Some(txn_id.clone()),
            payload: serde_json::json!({
                "id": event_id,
                "type": kind.as_str(),
                "created_at": receipt.created_at,
                "data": {
                    "transaction": receipt,
                    "commission": split.commission.to_string(),
                    "net": split.net.to_string(),
                }
            }),
            created_at: now,
        },
        idempotency: recorder.row(201, &receipt, now)?,
        attempt: source.cloned(),
    };
    match store::payment_write::write_payment(tx, write).await? {
        WriteOutcome::Written => Ok(receipt),
        // Unreachable while the rows are locked; kept as the last line of defence.
        WriteOutcome::BalanceChanged => Err(PayError::Declined {
            reason: DeclineReason::InsufficientBalance,
            param: Some("vouchers".into()),
        }),
        WriteOutcome::OrderTaken => Err(PayError::OrderAlreadyPaid {
            transaction_id: String::new(),
        }),
        WriteOutcome::IdempotencyKeyTaken => Err(IdempotencyError::InFlight.into()),
    }
}
