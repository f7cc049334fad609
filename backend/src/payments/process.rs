//! Paying an order with vouchers: idempotency, order dedup and the one ledger transaction.
use std::time::Duration;

use sea_orm::{DatabaseTransaction, TransactionTrait};
use serde::{Deserialize, Serialize};
use superpayment_core::{split_commission, BasisPoints, Money, ValidPayment, VoucherRef};
use time::OffsetDateTime;

use super::{rules, IDEMPOTENCY_TTL};
use crate::{
    api::error::{ApiError, DeclineReason},
    auth::Caller,
    crypto::{sha256_hex, voucher_hmac},
    ids::new_id,
    startup::AppState,
    store::{
        self,
        entities::{event, idempotency_key, redemption, transaction},
        ledger::Line,
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

const IDEMPOTENCY_LOCK_TTL: Duration = Duration::from_secs(60);
const ORDER_LOCK_TTL: Duration = Duration::from_secs(30);
const ORDER_LOCK_WAIT: Duration = Duration::from_secs(10);

/// Pays an order, honouring the three depths of double-payment protection of design §3.
#[tracing::instrument(skip_all, fields(merchant_id = %caller.merchant_id, order_id = %req.payment.order_id, mode = caller.mode_str()))]
pub async fn pay(
    state: &AppState,
    caller: &Caller,
    req: PayRequest,
) -> Result<PayOutcome, ApiError> {
    let Some(key) = req.idempotency_key.clone() else {
        return pay_order_locked(state, caller, &req)
            .await
            .map(PayOutcome::Created);
    };
    if let Some(stored) = stored_response(state, caller, &key).await? {
        return replay(stored, &req.request_hash);
    }
    let lock_key = format!(
        "idem:{}:{}:{}",
        caller.merchant_id,
        caller.mode_str(),
        sha256_hex(&key)
    );
    let Some(guard) = state.coord.try_lock(&lock_key, IDEMPOTENCY_LOCK_TTL).await else {
        return Err(ApiError::IdempotencyInFlight);
    };
    let result = async {
        // The previous holder may have finished between the read above and the lock.
        if let Some(stored) = stored_response(state, caller, &key).await? {
            return replay(stored, &req.request_hash);
        }
        let result = pay_order_locked(state, caller, &req).await;
        match result {
            Ok(receipt) => Ok(PayOutcome::Created(receipt)),
            Err(ApiError::IdempotencyInFlight) => {
                // Lost a race on the key's unique index: the winner's answer is stored.
                match stored_response(state, caller, &key).await? {
                    Some(stored) => replay(stored, &req.request_hash),
                    None => Err(ApiError::IdempotencyInFlight),
                }
            }
            Err(err @ (ApiError::Declined { .. } | ApiError::OrderAlreadyPaid { .. })) => {
                // Outcomes of a request that ran are kept, so a retry gets the same answer.
                remember_failure(state, caller, &key, &req.request_hash, &err).await;
                Err(err)
            }
            Err(err) => Err(err),
        }
    }
    .await;
    state.coord.unlock(guard).await;
    result
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

/// Serialises payments of one order through a short lock, so that a burst of clicks
/// waits for the first attempt and then learns its transaction id instead of racing it.
async fn pay_order_locked(
    state: &AppState,
    caller: &Caller,
    req: &PayRequest,
) -> Result<PaymentReceipt, ApiError> {
    let lock_key = format!(
        "order:{}:{}:{}",
        caller.merchant_id,
        caller.mode_str(),
        sha256_hex(req.payment.order_id.as_str())
    );
    let guard = state
        .coord
        .lock_waiting(&lock_key, ORDER_LOCK_TTL, ORDER_LOCK_WAIT)
        .await;
    let result = pay_order(state, caller, req).await;
    if let Some(guard) = guard {
        state.coord.unlock(guard).await;
    }
    result
}

async fn already_paid(
    state: &AppState,
    caller: &Caller,
    order_id: &str,
) -> Result<Option<ApiError>, ApiError> {
    Ok(store::payments::find_transaction_by_order(
        &state.db,
        &caller.merchant_id,
        caller.mode_str(),
        order_id,
    )
    .await?
    .map(|t| ApiError::OrderAlreadyPaid {
        transaction_id: t.id,
    }))
}

async fn pay_order(
    state: &AppState,
    caller: &Caller,
    req: &PayRequest,
) -> Result<PaymentReceipt, ApiError> {
    let p = &req.payment;
    if let Some(conflict) = already_paid(state, caller, p.order_id.as_str()).await? {
        return Err(conflict);
    }
    let mut hmacs = Vec::with_capacity(p.vouchers.len());
    for (i, v) in p.vouchers.iter().enumerate() {
        match v {
            VoucherRef::Code(code) => hmacs.push(voucher_hmac(&state.pepper, code)),
            VoucherRef::Token(_) => {
                return Err(ApiError::Declined {
                    reason: DeclineReason::TokenInvalid,
                    param: Some(format!("vouchers[{i}].token")),
                })
            }
        }
    }
    let bps = BasisPoints::new(u32::from(caller.commission_bps))
        .map_err(|e| anyhow::anyhow!("merchant commission: {e}"))?;
    let split = split_commission(p.amount, bps);
    let now = OffsetDateTime::now_utc();
    let txn_id = new_id("txn");

    let tx = state.db.begin().await?;
    let inserted = store::payments::insert_transaction(
        &tx,
        transaction::Model {
            id: txn_id.clone(),
            merchant_id: caller.merchant_id.clone(),
            mode: caller.mode_str().into(),
            order_id: p.order_id.as_str().into(),
            status: "succeeded".into(),
            currency: p.amount.currency().code().into(),
            amount_minor: p.amount.minor(),
            commission_minor: split.commission.minor(),
            net_minor: split.net.minor(),
            refunded_minor: 0,
            created_at: now,
        },
    )
    .await;
    if let Err(e) = inserted {
        tx.rollback().await?;
        if store::is_unique_violation(&e) {
            if let Some(conflict) = already_paid(state, caller, p.order_id.as_str()).await? {
                return Err(conflict);
            }
        }
        return Err(e.into());
    }

    let receipt = match apply_vouchers(
        &tx,
        caller,
        req,
        &hmacs,
        &txn_id,
        split.commission,
        split.net,
        now,
    )
    .await
    {
        Ok(receipt) => receipt,
        Err(err) => {
            tx.rollback().await?;
            return Err(err);
        }
    };
    tx.commit().await?;
    tracing::info!(transaction_id = %receipt.id, amount = %receipt.amount, currency = %receipt.currency, vouchers = receipt.vouchers.len(), "payment succeeded");
    Ok(receipt)
}

#[allow(clippy::too_many_arguments)]
async fn apply_vouchers(
    tx: &DatabaseTransaction,
    caller: &Caller,
    req: &PayRequest,
    hmacs: &[String],
    txn_id: &str,
    commission: Money,
    net: Money,
    now: OffsetDateTime,
) -> Result<PaymentReceipt, ApiError> {
    let p = &req.payment;
    let locked = store::vouchers::lock_by_hmacs(tx, hmacs).await?;
    let rows: Vec<_> = hmacs
        .iter()
        .map(|h| locked.iter().find(|v| &v.code_hmac == h))
        .collect();
    let plan = rules::allocate(&rows, &caller.merchant_id, caller.mode_str(), p.amount, now)?;

    for a in &plan {
        if !store::vouchers::debit(tx, a.voucher_id, a.take, a.mark_used, now).await? {
            // Unreachable while the rows are locked; kept as the last line of defence.
            return Err(ApiError::Declined {
                reason: DeclineReason::InsufficientBalance,
                param: Some(format!("vouchers[{}]", a.position)),
            });
        }
    }
    store::payments::insert_redemptions(
        tx,
        plan.iter()
            .map(|a| redemption::Model {
                id: 0,
                transaction_id: txn_id.into(),
                voucher_id: a.voucher_id,
                position: a.position as i32,
                amount_minor: a.take,
                balance_after_minor: a.balance_after,
                created_at: now,
            })
            .collect(),
    )
    .await?;

    let currency = p.amount.currency();
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
        amount_minor: net.minor(),
    });
    lines.push(Line {
        account: format!("platform_commission:{}", caller.mode_str()),
        voucher_id: None,
        amount_minor: commission.minor(),
    });
    lines.retain(|l| l.amount_minor != 0);
    store::ledger::post(tx, "payment", Some(txn_id), currency.code(), &lines, now).await?;

    let money = |minor: i64| -> Result<String, ApiError> {
        Ok(Money::from_minor(minor, currency)
            .map_err(|e| anyhow::anyhow!("amount out of range: {e}"))?
            .to_string())
    };
    let receipt = PaymentReceipt {
        id: txn_id.into(),
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
    store::payments::insert_event(
        tx,
        event::Model {
            id: event_id.clone(),
            merchant_id: caller.merchant_id.clone(),
            mode: caller.mode_str().into(),
            kind: "payment.succeeded".into(),
            transaction_id: Some(txn_id.into()),
            payload: serde_json::json!({
                "id": event_id,
                "type": "payment.succeeded",
                "created_at": receipt.created_at,
                "data": {
                    "transaction": receipt,
                    "commission": commission.to_string(),
                    "net": net.to_string(),
                }
            }),
            created_at: now,
        },
    )
    .await?;

    if let Some(key) = &req.idempotency_key {
        let row = idempotency_key::Model {
            id: 0,
            merchant_id: caller.merchant_id.clone(),
            mode: caller.mode_str().into(),
            key: key.clone(),
            request_hash: req.request_hash.clone(),
            response_status: 201,
            response_body: serde_json::to_string(&receipt).map_err(anyhow::Error::from)?,
            created_at: now,
            expires_at: now + IDEMPOTENCY_TTL,
        };
        if let Err(e) = store::payments::insert_idempotency(tx, row).await {
            return Err(if store::is_unique_violation(&e) {
                ApiError::IdempotencyInFlight
            } else {
                e.into()
            });
        }
    }
    Ok(receipt)
}
