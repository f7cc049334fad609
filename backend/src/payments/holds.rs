//! Authorize, then capture or cancel: ending a hold placed by a payment with `capture: false`.
//!
//! A hold moves the vouchers' money from their liability to `held:<mode>:<currency>` (the
//! vouchers' available balance drops; the merchant is owed nothing yet). It ends exactly
//! once, by the conditional update of [`store::holds::end`]:
//! - [`capture`] (secret key, once): all or part of the held amount goes to the merchant
//!   (payable and commission, as a payment captured at once); the rest goes back to the
//!   vouchers, the voucher applied last first;
//! - [`cancel`] (secret key): everything goes back;
//! - [`expire_due`] (the worker): a hold past `hold_expires_at` (the merchant's hold
//!   period, 7 days unless set otherwise) goes back the same way.
//!
//! Each is one database transaction with its ledger journal and its outbox event
//! (`payment.captured`, `payment.canceled`, `payment.expired`). A released hold leaves its
//! order id free for a new payment; refunds apply to captured money only.
use sea_orm::{DatabaseConnection, DatabaseTransaction, TransactionTrait};
use serde::{Deserialize, Serialize};
use superpayment_core::{split_commission, BasisPoints, Currency, FieldError, Money};
use time::OffsetDateTime;

use super::TransactionStatus;
use crate::{
    auth::Caller,
    idempotency::{
        self, Fingerprint, IdempotencyError, IdempotencyKey, IdempotentOperation, Operation,
        Outcome, Recorder,
    },
    money::format_minor as money,
    state::AppState,
    store::{
        self,
        entities::{
            event::EventKind,
            transaction::{self, HoldState},
            voucher::VoucherState,
        },
        holds::Ending,
        ledger::{Account, Lines},
    },
    webhooks::events,
};

/// How long a hold lasts unless the merchant's setting says otherwise.
pub const DEFAULT_HOLD_PERIOD: time::Duration = time::Duration::days(7);
/// Holds the worker releases per sweep (the next sweep takes the rest).
const SWEEP_BATCH: u64 = 100;

/// Why a hold was not captured or canceled.
#[derive(Debug, thiserror::Error)]
pub enum HoldError {
    /// The amount is not an amount of the transaction's currency.
    #[error("invalid amount")]
    InvalidAmount(FieldError),
    /// No such transaction for this merchant and mode.
    #[error("transaction not found")]
    TransactionNotFound,
    /// The transaction is not an authorized hold any more (or never was): its status.
    #[error("transaction not authorized")]
    NotAuthorized { status: TransactionStatus },
    /// A capture above the held amount (`held`, formatted, in `currency`).
    #[error("capture exceeds the held amount")]
    ExceedsHeld { held: String, currency: Currency },
    /// The Idempotency-Key refused or answered the request.
    #[error(transparent)]
    Idempotency(#[from] IdempotencyError),
    /// Anything unexpected.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

crate::internal_on_db_error!(HoldError);

impl HoldError {
    /// One instance of each answer a capture can get, for the documentation.
    pub fn capture_examples() -> Vec<HoldError> {
        let mut out = vec![
            HoldError::TransactionNotFound,
            HoldError::NotAuthorized {
                status: TransactionStatus::Canceled,
            },
            HoldError::ExceedsHeld {
                held: "40.00".into(),
                currency: Currency::EUR,
            },
        ];
        out.extend(
            super::amount_errors("amount", Currency::EUR)
                .into_iter()
                .map(HoldError::InvalidAmount),
        );
        out.extend(IdempotencyError::examples().map(HoldError::Idempotency));
        out
    }

    /// One instance of each answer a cancel can get, for the documentation.
    pub fn cancel_examples() -> Vec<HoldError> {
        let mut out = vec![
            HoldError::TransactionNotFound,
            HoldError::NotAuthorized {
                status: TransactionStatus::Captured,
            },
        ];
        out.extend(IdempotencyError::examples().map(HoldError::Idempotency));
        out
    }
}

/// A capture or cancel request, already authenticated.
#[derive(Debug, Clone)]
pub struct HoldRequest {
    pub transaction_id: String,
    /// Capture only: decimal amount to capture; None captures everything held.
    pub amount: Option<String>,
    pub idempotency_key: Option<String>,
}

/// A hold's end as answered (and stored for idempotent replays).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HoldReceipt {
    pub id: String,
    /// `captured`, `canceled` or `expired`.
    pub status: String,
    pub order_id: String,
    /// What was held.
    pub authorized_amount: String,
    /// What the merchant got (zero unless captured).
    pub captured_amount: String,
    /// What went back to the vouchers.
    pub released_amount: String,
    pub currency: String,
    /// Per voucher, in the order applied: what it paid in the end and what it got back.
    pub vouchers: Vec<HoldVoucher>,
    pub ended_at: String,
}

/// One voucher's part of a hold's end.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HoldVoucher {
    pub last4: String,
    pub captured: String,
    pub released: String,
}

/// A hold's end, or the stored answer to a repeated Idempotency-Key.
#[derive(Debug)]
pub enum HoldOutcome {
    Done(HoldReceipt),
    Replayed(HoldReceipt),
}

#[derive(Serialize)]
struct Canonical<'a> {
    transaction_id: &'a str,
    amount: Option<String>,
}

/// Captures all or part of one of the caller's authorized transactions.
#[tracing::instrument(skip_all, fields(merchant_id = %caller.merchant_id, transaction_id = %req.transaction_id))]
pub async fn capture(
    state: &AppState,
    caller: &Caller,
    req: HoldRequest,
) -> Result<HoldOutcome, HoldError> {
    run(state, caller, req, Operation::Capture).await
}

/// Releases one of the caller's authorized transactions in full.
#[tracing::instrument(skip_all, fields(merchant_id = %caller.merchant_id, transaction_id = %req.transaction_id))]
pub async fn cancel(
    state: &AppState,
    caller: &Caller,
    req: HoldRequest,
) -> Result<HoldOutcome, HoldError> {
    run(state, caller, req, Operation::Cancel).await
}

async fn run(
    state: &AppState,
    caller: &Caller,
    req: HoldRequest,
    operation: Operation,
) -> Result<HoldOutcome, HoldError> {
    let key = IdempotencyKey::parse(req.idempotency_key.clone())?;
    let fingerprint = Fingerprint::of(&Canonical {
        transaction_id: &req.transaction_id,
        amount: req.amount.as_deref().map(|raw| {
            rust_decimal::Decimal::from_str_exact(raw)
                .map(|d| d.normalize().to_string())
                .unwrap_or_else(|_| raw.to_owned())
        }),
    })?;
    let outcome = if operation == Operation::Capture {
        let op = End::<true> { caller, req: &req };
        idempotency::execute(state, caller, key, fingerprint, None, &op).await?
    } else {
        let op = End::<false> { caller, req: &req };
        idempotency::execute(state, caller, key, fingerprint, None, &op).await?
    };
    if matches!(outcome, Outcome::Fresh(_)) {
        state.webhooks.bell.ring();
    }
    Ok(match outcome {
        Outcome::Fresh(r) => HoldOutcome::Done(r),
        Outcome::Replayed(r) => HoldOutcome::Replayed(r),
    })
}

/// A capture (`CAPTURE = true`) or a cancel as an idempotent operation.
struct End<'a, const CAPTURE: bool> {
    caller: &'a Caller,
    req: &'a HoldRequest,
}

impl<const CAPTURE: bool> IdempotentOperation for End<'_, CAPTURE> {
    type Output = HoldReceipt;
    type Error = HoldError;
    const OPERATION: Operation = if CAPTURE {
        Operation::Capture
    } else {
        Operation::Cancel
    };

    async fn run(
        &self,
        tx: &DatabaseTransaction,
        recorder: &Recorder<'_>,
    ) -> Result<HoldReceipt, HoldError> {
        let caller = self.caller;
        let txn = store::refunds::lock_transaction(
            tx,
            &caller.merchant_id,
            caller.mode_str(),
            &self.req.transaction_id,
        )
        .await?
        .ok_or(HoldError::TransactionNotFound)?;
        let now = OffsetDateTime::now_utc();
        // A hold past its time is the worker's to release, even before it gets there.
        if txn.hold_state != Some(HoldState::Authorized)
            || (CAPTURE && txn.hold_expires_at.is_some_and(|e| e <= now))
        {
            return Err(HoldError::NotAuthorized {
                status: match TransactionStatus::of(&txn) {
                    TransactionStatus::Authorized => TransactionStatus::Expired,
                    other => other,
                },
            });
        }
        let currency = txn.currency.0;
        let captured = if !CAPTURE {
            0
        } else {
            match &self.req.amount {
                None => txn.amount_minor,
                Some(raw) => Money::parse(raw, currency)
                    .map_err(|e| {
                        HoldError::InvalidAmount(FieldError::new("amount", e.code(), e.to_string()))
                    })?
                    .minor(),
            }
        };
        if captured > txn.amount_minor {
            return Err(HoldError::ExceedsHeld {
                held: money(txn.amount_minor, currency)?,
                currency,
            });
        }
        let split = if CAPTURE {
            let bps = BasisPoints::new(u32::from(caller.commission_bps))
                .map_err(|e| anyhow::anyhow!("merchant commission: {e}"))?;
            Some(split_commission(
                Money::from_minor(captured, currency).map_err(|e| anyhow::anyhow!("{e}"))?,
                bps,
            ))
        } else {
            None
        };
        let ending = Ending {
            state: if CAPTURE {
                HoldState::Captured
            } else {
                HoldState::Canceled
            },
            captured: split.map(|s| (captured, s.commission.minor(), s.net.minor())),
        };
        let Some(receipt) = end_hold(tx, &txn, ending, now).await? else {
            // Ended meanwhile (or its time ran out since it was read): say how it stands.
            let status = store::payments::find_transaction(
                tx,
                &caller.merchant_id,
                caller.mode_str(),
                &txn.id,
            )
            .await?
            .map_or(TransactionStatus::Expired, |t| TransactionStatus::of(&t));
            return Err(HoldError::NotAuthorized {
                status: match status {
                    TransactionStatus::Authorized => TransactionStatus::Expired,
                    other => other,
                },
            });
        };
        recorder.store(tx, 200, &receipt, now).await?;
        Ok(receipt)
    }

    fn committed(&self, receipt: &HoldReceipt) {
        tracing::info!(transaction_id = %receipt.id, status = %receipt.status, captured = %receipt.captured_amount, released = %receipt.released_amount, "hold ended");
    }
}

/// Ends `txn`'s hold inside `tx`: the conditional state change first (None when another
/// request or the worker ended it first; nothing is written then), then the vouchers'
/// release, the ledger journal and the outbox event.
async fn end_hold(
    tx: &DatabaseTransaction,
    txn: &transaction::Model,
    ending: Ending,
    now: OffsetDateTime,
) -> Result<Option<HoldReceipt>, HoldError> {
    if !store::holds::end(tx, &txn.id, ending, now).await? {
        return Ok(None);
    }
    let currency = txn.currency.0;
    let mode = txn.mode.0.as_str();
    let held = txn.amount_minor;
    let captured = ending.captured.map_or(0, |(amount, _, _)| amount);
    let redemptions = store::payments::redemptions_of(tx, &txn.id).await?;
    let mut ids: Vec<i64> = redemptions.iter().map(|r| r.voucher_id).collect();
    ids.sort_unstable();
    let vouchers = store::refunds::lock_vouchers(tx, &ids).await?;
    let mut lines = Lines::new(mode, currency.code());
    let mut left = captured;
    let mut shares = Vec::with_capacity(redemptions.len());
    // The capture takes from the vouchers in the order applied, so the voucher applied
    // last gets its money back first (as a refund would).
    for r in &redemptions {
        let voucher = vouchers
            .iter()
            .find(|v| v.id == r.voucher_id)
            .ok_or_else(|| {
                anyhow::anyhow!("voucher {} of a redemption is missing", r.voucher_id)
            })?;
        let kept = left.min(r.amount_minor);
        left -= kept;
        let released = r.amount_minor - kept;
        lines.add(
            Account::Held {
                voucher_id: r.voucher_id,
            },
            -r.amount_minor,
        );
        if released > 0 {
            store::holds::keep_captured(tx, r.id, kept).await?;
            if voucher.status == VoucherState::Used && kept > 0 {
                // A single-use voucher that paid part stays used: what it did not pay is
                // forfeited like the rest of its remainder.
                lines.add(
                    Account::Breakage {
                        voucher_id: r.voucher_id,
                    },
                    released,
                );
            } else {
                store::refunds::credit_voucher(tx, r.voucher_id, released, now).await?;
                lines.add(
                    Account::VoucherLiability {
                        voucher_id: r.voucher_id,
                    },
                    released,
                );
                if voucher.status == VoucherState::Used {
                    // Nothing paid by a single-use voucher: it is usable again, whole.
                    let forfeited = store::ledger::breakage_of(tx, r.voucher_id).await?;
                    store::refunds::reinstate_voucher(tx, r.voucher_id, forfeited, now).await?;
                    lines
                        .add(
                            Account::Breakage {
                                voucher_id: r.voucher_id,
                            },
                            -forfeited,
                        )
                        .add(
                            Account::VoucherLiability {
                                voucher_id: r.voucher_id,
                            },
                            forfeited,
                        );
                }
            }
        }
        shares.push(HoldVoucher {
            last4: voucher.last4.clone(),
            captured: money(kept, currency)?,
            released: money(released, currency)?,
        });
    }
    if let Some((_, commission, net)) = ending.captured {
        lines
            .add(
                Account::MerchantPayable {
                    merchant_id: &txn.merchant_id,
                },
                net,
            )
            .add(Account::PlatformCommission, commission);
    }
    let (journal, kind) = match ending.state {
        HoldState::Captured => ("capture", EventKind::PaymentCaptured),
        HoldState::Expired => ("expiry", EventKind::PaymentExpired),
        _ => ("cancel", EventKind::PaymentCanceled),
    };
    store::ledger::post(tx, journal, Some(&txn.id), &lines, now).await?;
    let status = TransactionStatus::from_parts(Some(ending.state), captured.max(1), 0);
    let receipt = HoldReceipt {
        id: txn.id.clone(),
        status: status.as_str().into(),
        order_id: txn.order_id.clone(),
        authorized_amount: money(held, currency)?,
        captured_amount: money(captured, currency)?,
        released_amount: money(held - captured, currency)?,
        currency: currency.code().into(),
        vouchers: shares,
        ended_at: crate::timestamps::rfc3339(now),
    };
    let mut data = serde_json::json!({ "transaction": receipt });
    if let Some((_, commission, net)) = ending.captured {
        data["commission"] = money(commission, currency)?.into();
        data["net"] = money(net, currency)?.into();
    }
    events::record(
        tx,
        &txn.merchant_id,
        txn.mode.0,
        kind,
        Some(&txn.id),
        data,
        now,
    )
    .await?;
    Ok(Some(receipt))
}

/// Releases every hold whose time ran out (the worker's sweep); returns how many.
/// Each is its own database transaction; one that a capture or cancel ended first is
/// skipped by the conditional update.
pub async fn expire_due(db: &DatabaseConnection) -> anyhow::Result<usize> {
    let now = OffsetDateTime::now_utc();
    let due = store::holds::due(db, now, SWEEP_BATCH).await?;
    let mut released = 0;
    for t in due {
        let tx = db.begin().await?;
        let Some(txn) = store::holds::lock_by_id(&tx, &t.id).await? else {
            continue;
        };
        let ending = Ending {
            state: HoldState::Expired,
            captured: None,
        };
        match end_hold(&tx, &txn, ending, now).await {
            Ok(Some(_)) => {
                tx.commit().await?;
                released += 1;
                tracing::info!(transaction_id = %txn.id, "hold expired and released");
            }
            Ok(None) => {}
            Err(e) => return Err(anyhow::anyhow!("releasing hold {}: {e}", txn.id)),
        }
    }
    Ok(released)
}
