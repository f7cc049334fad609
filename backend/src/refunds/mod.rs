//! Refunds: full or partial, idempotent, back to the vouchers the money came from.
//!
//! One refund is one database transaction: lock the transaction row, raise its refunded
//! total with a conditional update (so concurrent refunds can never exceed the payment),
//! credit the vouchers in reverse order of application ([`plan::allocate`]), post the
//! reverse ledger journal, and write the `payment.refunded` event to the outbox.
//!
//! A voucher that has expired since the payment is not credited (its money could never be
//! spent): a new voucher of the same currency and rules, valid for
//! [`NEW_VOUCHER_VALIDITY`], is issued for that share and its code is returned once in the
//! refund. Stored idempotent answers are encrypted, since they may carry such a code.
pub mod plan;

use std::{str::FromStr, time::Duration};

use sea_orm::{DatabaseTransaction, TransactionTrait};
use serde::{Deserialize, Serialize};
use superpayment_core::{Currency, FieldError, Money, VoucherCode};
use time::{format_description::well_known::Rfc3339, OffsetDateTime};

use crate::{
    api::error::ApiError,
    auth::Caller,
    crypto::{random_bytes, sha256_hex, voucher_hmac},
    ids::new_id,
    payments::IDEMPOTENCY_TTL,
    startup::AppState,
    store::{
        self,
        entities::{idempotency_key, refund, refund_allocation, voucher},
        ledger::Line,
    },
    webhooks::events,
};

/// How long a voucher issued for an expired voucher's refund stays valid.
pub const NEW_VOUCHER_VALIDITY: time::Duration = time::Duration::days(365);
/// Longest free-text reason kept with a refund.
pub const MAX_REASON_LEN: usize = 500;

const LOCK_TTL: Duration = Duration::from_secs(60);

/// A refund request, already authenticated.
#[derive(Debug, Clone)]
pub struct RefundRequest {
    pub transaction_id: String,
    /// Decimal amount in the transaction's currency; None refunds everything left.
    pub amount: Option<String>,
    pub reason: Option<String>,
    pub idempotency_key: Option<String>,
}

/// A refund as answered (and stored, encrypted, for idempotent replays).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RefundReceipt {
    pub id: String,
    pub transaction_id: String,
    pub status: String,
    pub amount: String,
    pub currency: String,
    pub commission: String,
    pub net: String,
    pub reason: Option<String>,
    pub vouchers: Vec<RefundedVoucher>,
    /// The transaction's refunded total after this refund.
    pub transaction_refunded_amount: String,
    pub created_at: String,
}

/// The share of a refund returned for one voucher of the payment.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RefundedVoucher {
    /// Last symbols of the voucher the money came from.
    pub last4: String,
    pub amount: String,
    /// Set when that voucher had expired: the voucher issued instead.
    pub new_voucher: Option<NewVoucher>,
}

/// A voucher issued by a refund; `code` appears only in the refund's own answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NewVoucher {
    pub code: Option<String>,
    pub last4: String,
    pub amount: String,
    pub expires_at: String,
}

/// A new refund, or the stored answer to a repeated Idempotency-Key.
#[derive(Debug)]
pub enum RefundOutcome {
    Created(RefundReceipt),
    Replayed(RefundReceipt),
}

fn invalid(field: &str, code: &'static str, message: &str) -> ApiError {
    ApiError::InvalidRequest(vec![FieldError {
        field: field.into(),
        code,
        message: message.into(),
    }])
}

fn money(minor: i64, currency: Currency) -> Result<String, ApiError> {
    Ok(Money::from_minor(minor, currency)
        .map_err(|e| anyhow::anyhow!("amount out of range: {e}"))?
        .to_string())
}

/// Refunds part or all of one of the caller's transactions.
#[tracing::instrument(skip_all, fields(merchant_id = %caller.merchant_id, transaction_id = %req.transaction_id))]
pub async fn refund(
    state: &AppState,
    caller: &Caller,
    req: RefundRequest,
) -> Result<RefundOutcome, ApiError> {
    if req
        .reason
        .as_ref()
        .is_some_and(|r| r.chars().count() > MAX_REASON_LEN)
    {
        return Err(invalid(
            "reason",
            "reason_too_long",
            "The reason may have at most 500 characters.",
        ));
    }
    crate::payments::check_idempotency_key(req.idempotency_key.as_deref())?;
    let request_hash = sha256_hex(
        &serde_json::to_string(&("refund", &req.transaction_id, &req.amount, &req.reason))
            .map_err(anyhow::Error::from)?,
    );
    let Some(key) = req.idempotency_key.clone() else {
        return refund_once(state, caller, &req, None)
            .await
            .map(RefundOutcome::Created);
    };
    if let Some(stored) = stored(state, caller, &key, &request_hash).await? {
        return Ok(RefundOutcome::Replayed(stored));
    }
    let lock = format!(
        "idem:{}:{}:{}",
        caller.merchant_id,
        caller.mode_str(),
        sha256_hex(&key)
    );
    let Some(guard) = state.coord.try_lock(&lock, LOCK_TTL).await else {
        return Err(ApiError::IdempotencyInFlight);
    };
    let result = async {
        if let Some(stored) = stored(state, caller, &key, &request_hash).await? {
            return Ok(RefundOutcome::Replayed(stored));
        }
        match refund_once(state, caller, &req, Some((&key, &request_hash))).await {
            Ok(receipt) => Ok(RefundOutcome::Created(receipt)),
            Err(ApiError::IdempotencyInFlight) => {
                match stored(state, caller, &key, &request_hash).await? {
                    Some(r) => Ok(RefundOutcome::Replayed(r)),
                    None => Err(ApiError::IdempotencyInFlight),
                }
            }
            Err(e) => Err(e),
        }
    }
    .await;
    state.coord.unlock(guard).await;
    result
}

async fn stored(
    state: &AppState,
    caller: &Caller,
    key: &str,
    request_hash: &str,
) -> Result<Option<RefundReceipt>, ApiError> {
    let Some(row) = store::payments::find_idempotency(
        &state.db,
        &caller.merchant_id,
        caller.mode_str(),
        key,
        OffsetDateTime::now_utc(),
    )
    .await?
    else {
        return Ok(None);
    };
    if row.request_hash != request_hash {
        return Err(ApiError::IdempotencyMismatch);
    }
    let body = state.webhooks.cipher.open_text(&row.response_body)?;
    Ok(Some(
        serde_json::from_str(&body).map_err(anyhow::Error::from)?,
    ))
}

async fn refund_once(
    state: &AppState,
    caller: &Caller,
    req: &RefundRequest,
    idempotency: Option<(&str, &str)>,
) -> Result<RefundReceipt, ApiError> {
    let tx = state.db.begin().await?;
    match write_refund(state, &tx, caller, req, idempotency).await {
        Ok(receipt) => {
            tx.commit().await?;
            state.webhooks.wake.notify_one();
            tracing::info!(refund_id = %receipt.id, amount = %receipt.amount, currency = %receipt.currency, "refund succeeded");
            Ok(receipt)
        }
        Err(e) => {
            tx.rollback().await?;
            Err(e)
        }
    }
}

async fn write_refund(
    state: &AppState,
    tx: &DatabaseTransaction,
    caller: &Caller,
    req: &RefundRequest,
    idempotency: Option<(&str, &str)>,
) -> Result<RefundReceipt, ApiError> {
    let mode = caller.mode_str();
    let txn = store::refunds::lock_transaction(tx, &caller.merchant_id, mode, &req.transaction_id)
        .await?
        .ok_or(ApiError::NotFound("transaction"))?;
    let currency = Currency::from_str(&txn.currency)
        .map_err(|_| anyhow::anyhow!("stored currency {} unknown", txn.currency))?;
    let remaining = txn.amount_minor - txn.refunded_minor;
    let amount = match &req.amount {
        None => remaining,
        Some(raw) => Money::parse(raw, currency)
            .map_err(|e| invalid("amount", e.code(), &e.to_string()))?
            .minor(),
    };
    if remaining == 0 {
        return Err(invalid(
            "amount",
            "transaction_fully_refunded",
            "This transaction has already been refunded in full.",
        ));
    }
    if amount > remaining {
        return Err(ApiError::InvalidRequest(vec![FieldError {
            field: "amount".into(),
            code: "refund_exceeds_remaining",
            message: format!(
                "At most {} {} of this transaction can still be refunded.",
                money(remaining, currency)?,
                currency.code()
            ),
        }]));
    }
    if !store::refunds::add_refunded(tx, &txn.id, amount).await? {
        return Err(invalid(
            "amount",
            "refund_exceeds_remaining",
            "The refund exceeds what is left of the transaction.",
        ));
    }
    let redemptions = store::payments::redemptions_of(tx, &txn.id).await?;
    let taken: Vec<plan::Taken> = redemptions
        .iter()
        .map(|r| plan::Taken {
            voucher_id: r.voucher_id,
            position: r.position,
            amount_minor: r.amount_minor,
        })
        .collect();
    let already = store::refunds::refunded_per_voucher(tx, &txn.id).await?;
    let shares = plan::allocate(&taken, &already, amount).ok_or_else(|| {
        anyhow::anyhow!("refund allocation exceeds the redemptions of {}", txn.id)
    })?;
    let commission = plan::commission_share(
        txn.commission_minor,
        txn.amount_minor,
        txn.refunded_minor,
        txn.refunded_minor + amount,
    )
    .ok_or_else(|| anyhow::anyhow!("commission share out of range"))?;
    let net = amount - commission;

    let now = OffsetDateTime::now_utc();
    let refund_id = new_id("re");
    let mut ids: Vec<i64> = shares.iter().map(|(id, _)| *id).collect();
    ids.sort_unstable();
    let vouchers = store::refunds::lock_vouchers(tx, &ids).await?;
    let mut allocations = Vec::with_capacity(shares.len());
    let mut lines = Vec::with_capacity(shares.len() + 2);
    let mut refunded_vouchers = Vec::with_capacity(shares.len());
    for (voucher_id, share) in &shares {
        let original = vouchers
            .iter()
            .find(|v| v.id == *voucher_id)
            .ok_or_else(|| anyhow::anyhow!("voucher {voucher_id} of a redemption is missing"))?;
        let (credited, new_voucher) = if original.expires_at.is_some_and(|e| e <= now) {
            let (id, issued) =
                issue_replacement(state, tx, original, *share, currency, now).await?;
            (id, Some(issued))
        } else {
            store::refunds::credit_voucher(tx, original.id, *share, now).await?;
            (original.id, None)
        };
        allocations.push(refund_allocation::Model {
            id: 0,
            refund_id: refund_id.clone(),
            voucher_id: original.id,
            credited_voucher_id: credited,
            amount_minor: *share,
            created_at: now,
        });
        lines.push(Line {
            account: "voucher_liability".into(),
            voucher_id: Some(credited),
            amount_minor: *share,
        });
        refunded_vouchers.push(RefundedVoucher {
            last4: original.last4.clone(),
            amount: money(*share, currency)?,
            new_voucher,
        });
    }
    lines.push(Line {
        account: format!("merchant_payable:{}:{}", caller.merchant_id, mode),
        voucher_id: None,
        amount_minor: -net,
    });
    lines.push(Line {
        account: format!("platform_commission:{mode}"),
        voucher_id: None,
        amount_minor: -commission,
    });
    lines.retain(|l| l.amount_minor != 0);
    store::refunds::insert_refund(
        tx,
        refund::Model {
            id: refund_id.clone(),
            transaction_id: txn.id.clone(),
            merchant_id: caller.merchant_id.clone(),
            mode: mode.into(),
            currency: currency.code().into(),
            amount_minor: amount,
            commission_minor: commission,
            net_minor: net,
            reason: req.reason.clone(),
            created_at: now,
        },
        allocations,
    )
    .await?;
    store::ledger::post(tx, "refund", Some(&txn.id), currency.code(), &lines, now).await?;

    let receipt = RefundReceipt {
        id: refund_id,
        transaction_id: txn.id.clone(),
        status: "succeeded".into(),
        amount: money(amount, currency)?,
        currency: currency.code().into(),
        commission: money(commission, currency)?,
        net: money(net, currency)?,
        reason: req.reason.clone(),
        vouchers: refunded_vouchers,
        transaction_refunded_amount: money(txn.refunded_minor + amount, currency)?,
        created_at: now.format(&Rfc3339).map_err(anyhow::Error::from)?,
    };
    // The event tells the merchant's server what happened, never a voucher code.
    let mut public = receipt.clone();
    for v in &mut public.vouchers {
        if let Some(n) = &mut v.new_voucher {
            n.code = None;
        }
    }
    events::record(
        tx,
        &caller.merchant_id,
        mode,
        "payment.refunded",
        Some(&txn.id),
        serde_json::json!({
            "refund": public,
            "transaction": {
                "id": txn.id,
                "order_id": txn.order_id,
                "amount": money(txn.amount_minor, currency)?,
                "currency": currency.code(),
                "refunded_amount": receipt.transaction_refunded_amount,
                "status": if txn.refunded_minor + amount == txn.amount_minor { "refunded" } else { "partially_refunded" },
            },
        }),
        now,
    )
    .await?;

    if let Some((key, hash)) = idempotency {
        let body = serde_json::to_string(&receipt).map_err(anyhow::Error::from)?;
        let row = idempotency_key::Model {
            id: 0,
            merchant_id: caller.merchant_id.clone(),
            mode: mode.into(),
            key: key.into(),
            request_hash: hash.into(),
            response_status: 201,
            response_body: state.webhooks.cipher.seal_text(&body)?,
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

/// Issues the voucher that replaces an expired one's share of a refund.
async fn issue_replacement(
    state: &AppState,
    tx: &DatabaseTransaction,
    original: &voucher::Model,
    amount: i64,
    currency: Currency,
    now: OffsetDateTime,
) -> Result<(i64, NewVoucher), ApiError> {
    let code = VoucherCode::generate(random_bytes::<10>());
    let expires_at = now + NEW_VOUCHER_VALIDITY;
    let ids = store::vouchers::insert_many(
        tx,
        vec![voucher::Model {
            id: 0,
            code_hmac: voucher_hmac(&state.pepper, &code),
            last4: code.last4().into(),
            mode: original.mode.clone(),
            currency: original.currency.clone(),
            initial_minor: amount,
            balance_minor: amount,
            status: "active".into(),
            expires_at: Some(expires_at),
            rules: original.rules.clone(),
            created_at: now,
            updated_at: now,
        }],
    )
    .await?;
    let id = *ids
        .first()
        .ok_or_else(|| anyhow::anyhow!("voucher insert returned no id"))?;
    tracing::info!(
        voucher_id = id,
        replaces = original.id,
        "voucher issued for an expired voucher's refund"
    );
    Ok((
        id,
        NewVoucher {
            code: Some(code.formatted()),
            last4: code.last4().into(),
            amount: money(amount, currency)?,
            expires_at: expires_at.format(&Rfc3339).map_err(anyhow::Error::from)?,
        },
    ))
}
