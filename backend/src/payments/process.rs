//! Paying an order with vouchers: idempotency, order dedup and the one ledger transaction.
use std::time::Duration;

use sea_orm::{DatabaseTransaction, TransactionTrait};
use serde::{Deserialize, Serialize};
use superpayment_core::{split_commission, BasisPoints, Money, ValidPayment};
use time::OffsetDateTime;

use super::{rules, IDEMPOTENCY_TTL};
use crate::{
    api::error::{ApiError, DeclineReason},
    auth::Caller,
    cache::LockGuard,
    crypto::sha256_hex,
    ids::new_id,
    startup::AppState,
    store::{
        self,
        entities::{event, idempotency_key, transaction},
        ledger::Line,
        payment_write::{Debit, PaymentWrite, WriteOutcome},
    },
};

/// A validated payment request with its idempotency context.
pub struct PayRequest {
    pub payment: ValidPayment,
    /// The Idempotency-Key header, already checked for length and characters.
    pub idempotency_key: Option<String>,
    /// SHA-256 of the canonical request body, to tell a replay from a reused key.
    pub request_hash: String,
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
}

/// What one voucher contributed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReceiptVoucher {
    pub last4: String,
    pub amount: String,
    pub remaining_balance: String,
}

/// A fresh result, or a stored one replayed for a repeated Idempotency-Key.
#[derive(Debug)]
pub enum PayOutcome {
    Created(PaymentReceipt),
    /// The stored status and JSON body of the first request with this key.
    Replayed {
        status: u16,
        body: String,
    },
}

/// How long a dedup lock lives if its holder dies without releasing it.
const LOCK_TTL: Duration = Duration::from_secs(60);
/// How long a request waits for an earlier attempt at the same order to finish.
const ORDER_LOCK_WAIT: Duration = Duration::from_secs(10);

/// Pays an order, honouring the three depths of double-payment protection of design §3:
/// the idempotency key (lock, then stored answer), the order (lock, then unique index),
/// and the conditional debits inside one database transaction.
#[tracing::instrument(skip_all, fields(merchant_id = %caller.merchant_id, order_id = %req.payment.order_id, mode = caller.mode_str()))]
pub async fn pay(
    state: &AppState,
    caller: &Caller,
    req: PayRequest,
) -> Result<PayOutcome, ApiError> {
    let scope = format!("{}:{}", caller.merchant_id, caller.mode_str());
    let order_lock = format!(
        "order:{scope}:{}",
        sha256_hex(req.payment.order_id.as_str())
    );
    let idem_lock = req
        .idempotency_key
        .as_deref()
        .map(|k| format!("idem:{scope}:{}", sha256_hex(k)));
    let mut keys = vec![order_lock.as_str()];
    keys.extend(idem_lock.as_deref());
    // Both locks in one round trip: the common case costs a single Redis call each way.
    let mut taken = state.coord.try_lock_many(&keys, LOCK_TTL).await.into_iter();
    let order_guard = taken.next().flatten();
    let idem_guard = taken.next().flatten();
    if idem_lock.is_some() && idem_guard.is_none() {
        state
            .coord
            .unlock_many(order_guard.into_iter().collect())
            .await;
        return Err(ApiError::IdempotencyInFlight);
    }
    let mut held: Vec<LockGuard> = idem_guard.into_iter().collect();
    let result = pay_holding_key(state, caller, &req, &order_lock, order_guard, &mut held).await;
    state.coord.unlock_many(held).await;
    result
}

async fn pay_holding_key(
    state: &AppState,
    caller: &Caller,
    req: &PayRequest,
    order_lock: &str,
    order_guard: Option<LockGuard>,
    held: &mut Vec<LockGuard>,
) -> Result<PayOutcome, ApiError> {
    let order_guard = match order_guard {
        Some(g) => Some(g),
        // Another attempt at this order is running (a double click): wait for it, then
        // learn its outcome from the database instead of racing it.
        None => {
            state
                .coord
                .lock_waiting(order_lock, LOCK_TTL, ORDER_LOCK_WAIT)
                .await
        }
    };
    held.extend(order_guard);
    let result = pay_order(state, caller, req).await;
    let Some(key) = &req.idempotency_key else {
        return result;
    };
    match result {
        Ok(outcome) => Ok(outcome),
        Err(ApiError::IdempotencyInFlight) => {
            // Lost a race on the key's unique index (a lock that failed open): the winner's
            // answer is stored.
            match stored_response(state, caller, key).await? {
                Some(stored) => replay(stored, &req.request_hash),
                None => Err(ApiError::IdempotencyInFlight),
            }
        }
        Err(err @ (ApiError::Declined { .. } | ApiError::OrderAlreadyPaid { .. })) => {
            // Outcomes of a request that ran are kept, so a retry gets the same answer.
            remember_failure(state, caller, key, &req.request_hash, &err).await;
            Err(err)
        }
        Err(err) => Err(err),
    }
}

async fn stored_response(
    state: &AppState,
    caller: &Caller,
    key: &str,
) -> Result<Option<idempotency_key::Model>, ApiError> {
    Ok(store::payments::find_idempotency(
        &state.db,
        &caller.merchant_id,
        caller.mode_str(),
        key,
        OffsetDateTime::now_utc(),
    )
    .await?)
}

fn replay(stored: idempotency_key::Model, request_hash: &str) -> Result<PayOutcome, ApiError> {
    if stored.request_hash != request_hash {
        return Err(ApiError::IdempotencyMismatch);
    }
    Ok(PayOutcome::Replayed {
        status: u16::try_from(stored.response_status).unwrap_or(500),
        body: stored.response_body,
    })
}

async fn remember_failure(
    state: &AppState,
    caller: &Caller,
    key: &str,
    request_hash: &str,
    err: &ApiError,
) {
    let now = OffsetDateTime::now_utc();
    let body = match serde_json::to_string(&err.to_body()) {
        Ok(body) => body,
        Err(_) => return,
    };
    let row = idempotency_key::Model {
        id: 0,
        merchant_id: caller.merchant_id.clone(),
        mode: caller.mode_str().into(),
        key: key.into(),
        request_hash: request_hash.into(),
        response_status: i32::from(err.status()),
        response_body: body,
        created_at: now,
        expires_at: now + IDEMPOTENCY_TTL,
    };
    if let Err(e) = store::payments::insert_idempotency(&state.db, row).await {
        if !store::is_unique_violation(&e) {
            tracing::warn!(error = %e, "could not store the declined response for replay");
        }
    }
}

async fn paid_by(
    state: &AppState,
    caller: &Caller,
    order_id: &str,
) -> Result<Option<String>, ApiError> {
    Ok(store::payments::find_transaction_by_order(
        &state.db,
        &caller.merchant_id,
        caller.mode_str(),
        order_id,
    )
    .await?
    .map(|t| t.id))
}

/// Runs the payment's database transaction: lock the vouchers in id order, plan the
/// debits, write everything (one statement on PostgreSQL), commit.
async fn pay_order(
    state: &AppState,
    caller: &Caller,
    req: &PayRequest,
) -> Result<PayOutcome, ApiError> {
    let p = &req.payment;
    // Everything from here to the commit shares one database transaction, so a payment
    // costs a single commit.
    let tx = state.db.begin().await?;
    if let Some(key) = &req.idempotency_key {
        // Read under the key's lock: a completed request's answer is stored by now.
        let stored = store::payments::find_idempotency(
            &tx,
            &caller.merchant_id,
            caller.mode_str(),
            key,
            OffsetDateTime::now_utc(),
        )
        .await?;
        if let Some(stored) = stored {
            tx.rollback().await?;
            return replay(stored, &req.request_hash);
        }
    }
    // Typed codes and remembered-voucher tokens both end up as the code's HMAC.
    let planned =
        match crate::checkout::tokens::voucher_hmacs(state, &tx, caller, &p.vouchers).await {
            Ok(hmacs) => plan_and_write(&tx, caller, req, &hmacs).await,
            Err(err) => Err(err),
        };
    match planned {
        Ok(receipt) => {
            tx.commit().await?;
            tracing::info!(transaction_id = %receipt.id, amount = %receipt.amount, currency = %receipt.currency, vouchers = receipt.vouchers.len(), "payment succeeded");
            Ok(PayOutcome::Created(receipt))
        }
        Err(err) => {
            tx.rollback().await?;
            match err {
                // A repeat of an order that is already paid is answered as such, even
                // when its vouchers no longer cover it (the first payment used them).
                ApiError::Declined { .. } | ApiError::OrderAlreadyPaid { .. } => {
                    match paid_by(state, caller, p.order_id.as_str()).await? {
                        Some(transaction_id) => Err(ApiError::OrderAlreadyPaid { transaction_id }),
                        None => Err(err),
                    }
                }
                other => Err(other),
            }
        }
    }
}

async fn plan_and_write(
    tx: &DatabaseTransaction,
    caller: &Caller,
    req: &PayRequest,
    hmacs: &[String],
) -> Result<PaymentReceipt, ApiError> {
    let p = &req.payment;
    let now = OffsetDateTime::now_utc();
    let locked = store::vouchers::lock_by_hmacs(tx, hmacs).await?;
    let rows: Vec<_> = hmacs
        .iter()
        .map(|h| locked.iter().find(|v| &v.code_hmac == h))
        .collect();
    let plan = rules::allocate(&rows, &caller.merchant_id, caller.mode_str(), p.amount, now)?;

    let bps = BasisPoints::new(u32::from(caller.commission_bps))
        .map_err(|e| anyhow::anyhow!("merchant commission: {e}"))?;
    let split = split_commission(p.amount, bps);
    let currency = p.amount.currency();
    let txn_id = new_id("txn");

    let mut lines: Vec<Line> = plan
        .iter()
        .map(|a| Line {
            account: "voucher_liability".into(),
            voucher_id: Some(a.voucher_id),
            amount_minor: -a.take,
        })
        .collect();
    lines.push(Line {
        account: format!(
            "merchant_payable:{}:{}",
            caller.merchant_id,
            caller.mode_str()
        ),
        voucher_id: None,
        amount_minor: split.net.minor(),
    });
    lines.push(Line {
        account: format!("platform_commission:{}", caller.mode_str()),
        voucher_id: None,
        amount_minor: split.commission.minor(),
    });
    lines.retain(|l| l.amount_minor != 0);

    let money = |minor: i64| -> Result<String, ApiError> {
        Ok(Money::from_minor(minor, currency)
            .map_err(|e| anyhow::anyhow!("amount out of range: {e}"))?
            .to_string())
    };
    let receipt = PaymentReceipt {
        id: txn_id.clone(),
        status: "succeeded".into(),
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
            .collect::<Result<_, ApiError>>()?,
        created_at: now
            .format(&time::format_description::well_known::Rfc3339)
            .map_err(|e| anyhow::anyhow!(e))?,
    };
    let event_id = new_id("evt");
    let write = PaymentWrite {
        transaction: transaction::Model {
            id: txn_id.clone(),
            merchant_id: caller.merchant_id.clone(),
            mode: caller.mode_str().into(),
            order_id: p.order_id.as_str().into(),
            status: "succeeded".into(),
            currency: currency.code().into(),
            amount_minor: p.amount.minor(),
            commission_minor: split.commission.minor(),
            net_minor: split.net.minor(),
            refunded_minor: 0,
            created_at: now,
        },
        debits: plan
            .iter()
            .map(|a| Debit {
                voucher_id: a.voucher_id,
                amount_minor: a.take,
                balance_after_minor: a.balance_after,
                position: a.position as i32,
                mark_used: a.mark_used,
            })
            .collect(),
        lines,
        event: event::Model {
            id: event_id.clone(),
            merchant_id: caller.merchant_id.clone(),
            mode: caller.mode_str().into(),
            kind: "payment.succeeded".into(),
            transaction_id: Some(txn_id.clone()),
            payload: serde_json::json!({
                "id": event_id,
                "type": "payment.succeeded",
                "created_at": receipt.created_at,
                "data": {
                    "transaction": receipt,
                    "commission": split.commission.to_string(),
                    "net": split.net.to_string(),
                }
            }),
            created_at: now,
        },
        idempotency: match &req.idempotency_key {
            Some(key) => Some(idempotency_key::Model {
                id: 0,
                merchant_id: caller.merchant_id.clone(),
                mode: caller.mode_str().into(),
                key: key.clone(),
                request_hash: req.request_hash.clone(),
                response_status: 201,
                response_body: serde_json::to_string(&receipt).map_err(anyhow::Error::from)?,
                created_at: now,
                expires_at: now + IDEMPOTENCY_TTL,
            }),
            None => None,
        },
    };
    match store::payment_write::write_payment(tx, &write).await? {
        WriteOutcome::Written => Ok(receipt),
        // Unreachable while the rows are locked; kept as the last line of defence.
        WriteOutcome::BalanceChanged => Err(ApiError::Declined {
            reason: DeclineReason::InsufficientBalance,
            param: Some("vouchers".into()),
        }),
        WriteOutcome::OrderTaken => Err(ApiError::OrderAlreadyPaid {
            transaction_id: String::new(),
        }),
        WriteOutcome::IdempotencyKeyTaken => Err(ApiError::IdempotencyInFlight),
    }
}
