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

use std::str::FromStr;

use sea_orm::DatabaseTransaction;
use serde::{Deserialize, Serialize};
use superpayment_core::{Currency, FieldError, Money, VoucherCode};
use time::OffsetDateTime;

use crate::store::entities::text::AsText;
use crate::{
    auth::Caller,
    crypto::{random_bytes, voucher_hmac},
    idempotency::{
        self, Fingerprint, IdempotencyError, IdempotencyKey, IdempotentOperation, Operation,
        Outcome, Recorder,
    },
    ids::new_id,
    money::format_minor as money,
    payments::TransactionStatus,
    state::AppState,
    store::{
        self,
        entities::{
            event::EventKind,
            refund::{self, RefundStatus},
            refund_allocation,
            voucher::{self, VoucherState},
        },
        ledger::{Account, Lines},
    },
    webhooks::events,
};

/// How long a voucher issued for an expired voucher's refund stays valid.
pub const NEW_VOUCHER_VALIDITY: time::Duration = time::Duration::days(365);
/// Longest free-text reason kept with a refund.
pub const MAX_REASON_LEN: usize = 500;

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

/// Why a refund was not made.
#[derive(Debug, thiserror::Error)]
pub enum RefundError {
    /// The reason is longer than [`MAX_REASON_LEN`] characters.
    #[error("reason too long")]
    ReasonTooLong,
    /// The amount is not an amount of the transaction's currency.
    #[error("invalid amount")]
    InvalidAmount(FieldError),
    /// No such transaction for this merchant and mode.
    #[error("transaction not found")]
    TransactionNotFound,
    /// A hold not captured (authorized, canceled or expired): there is no money to refund.
    #[error("transaction not captured")]
    NotCaptured { status: TransactionStatus },
    /// Nothing is left to refund.
    #[error("transaction fully refunded")]
    FullyRefunded,
    /// More than what is left of the transaction (`remaining`, formatted, in `currency`).
    #[error("refund exceeds the remaining amount")]
    ExceedsRemaining {
        remaining: String,
        currency: Currency,
    },
    /// A voucher the refund would credit is blocked (its last symbols).
    #[error("voucher blocked")]
    VoucherBlocked { last4: String },
    /// The Idempotency-Key refused or answered the request.
    #[error(transparent)]
    Idempotency(#[from] IdempotencyError),
    /// Anything unexpected.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

crate::internal_on_db_error!(RefundError);

impl RefundError {
    /// One instance of each answer a refund can get, for the documentation.
    pub fn examples() -> Vec<RefundError> {
        let mut out = vec![
            RefundError::ReasonTooLong,
            RefundError::TransactionNotFound,
            RefundError::FullyRefunded,
            RefundError::NotCaptured {
                status: TransactionStatus::Authorized,
            },
            RefundError::ExceedsRemaining {
                remaining: "40.00".into(),
                currency: Currency::EUR,
            },
            RefundError::VoucherBlocked {
                last4: "424X".into(),
            },
        ];
        out.extend(
            crate::payments::amount_errors("amount", Currency::EUR)
                .into_iter()
                .map(RefundError::InvalidAmount),
        );
        out.extend(IdempotencyError::examples().map(RefundError::Idempotency));
        out
    }
}

/// The request as fingerprinted: the amount as a number, so "10" and "10.00" are one request.
#[derive(Serialize)]
struct Canonical<'a> {
    transaction_id: &'a str,
    amount: Option<String>,
    reason: Option<&'a str>,
}

/// Refunds part or all of one of the caller's transactions.
#[tracing::instrument(skip_all, fields(merchant_id = %caller.merchant_id, transaction_id = %req.transaction_id))]
pub async fn refund(
    state: &AppState,
    caller: &Caller,
    req: RefundRequest,
) -> Result<RefundOutcome, RefundError> {
    if req
        .reason
        .as_ref()
        .is_some_and(|r| r.chars().count() > MAX_REASON_LEN)
    {
        return Err(RefundError::ReasonTooLong);
    }
    let key = IdempotencyKey::parse(req.idempotency_key.clone())?;
    let fingerprint = Fingerprint::of(&Canonical {
        transaction_id: &req.transaction_id,
        // Malformed amounts are refused before anything is stored; kept as sent here.
        amount: req.amount.as_deref().map(|raw| {
            rust_decimal::Decimal::from_str(raw)
                .map(|d| d.normalize().to_string())
                .unwrap_or_else(|_| raw.to_owned())
        }),
        reason: req.reason.as_deref(),
    })?;
    let op = Refund {
        state,
        caller,
        req: &req,
    };
    Ok(
        match idempotency::execute(state, caller, key, fingerprint, None, &op).await? {
            Outcome::Fresh(r) => RefundOutcome::Created(r),
            Outcome::Replayed(r) => RefundOutcome::Replayed(r),
        },
    )
}

/// One refund as an idempotent operation.
struct Refund<'a> {
    state: &'a AppState,
    caller: &'a Caller,
    req: &'a RefundRequest,
}

impl IdempotentOperation for Refund<'_> {
    type Output = RefundReceipt;
    type Error = RefundError;
    const OPERATION: Operation = Operation::Refund;

    async fn run(
        &self,
        tx: &DatabaseTransaction,
        recorder: &Recorder<'_>,
    ) -> Result<RefundReceipt, RefundError> {
        write_refund(self.state, tx, self.caller, self.req, recorder).await
    }

    fn committed(&self, receipt: &RefundReceipt) {
        self.state.webhooks.bell.ring();
        tracing::info!(refund_id = %receipt.id, amount = %receipt.amount, currency = %receipt.currency, "refund succeeded");
    }
}

async fn write_refund(
    state: &AppState,
    tx: &DatabaseTransaction,
    caller: &Caller,
    req: &RefundRequest,
    recorder: &Recorder<'_>,
) -> Result<RefundReceipt, RefundError> {
    let mode = caller.mode_str();
    let txn = store::refunds::lock_transaction(tx, &caller.merchant_id, mode, &req.transaction_id)
        .await?
        .ok_or(RefundError::TransactionNotFound)?;
    if txn
        .hold_state
        .is_some_and(|h| h != crate::store::entities::transaction::HoldState::Captured)
    {
        return Err(RefundError::NotCaptured {
            status: TransactionStatus::of(&txn),
        });
    }
    let currency = txn.currency.0;
    let remaining = txn.amount_minor - txn.refunded_minor;
    let amount = match &req.amount {
        None => remaining,
        Some(raw) => Money::parse(raw, currency)
            .map_err(|e| {
                RefundError::InvalidAmount(FieldError::new("amount", e.code(), e.to_string()))
            })?
            .minor(),
    };
    if remaining == 0 {
        return Err(RefundError::FullyRefunded);
    }
    if amount > remaining {
        return Err(RefundError::ExceedsRemaining {
            remaining: money(remaining, currency)?,
            currency,
        });
    }
    if !store::refunds::add_refunded(tx, &txn.id, amount).await? {
        // A concurrent refund took what was left since the row was read.
        return Err(RefundError::ExceedsRemaining {
            remaining: money(txn.amount_minor - txn.refunded_minor, currency)?,
            currency,
        });
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
    if let Some(blocked) = vouchers.iter().find(|v| v.status == VoucherState::Blocked) {
        return Err(RefundError::VoucherBlocked {
            last4: blocked.last4.clone(),
        });
    }
    // The refund that completes the transaction's also gives each single-use voucher
    // back what it forfeited: the payment is undone as a whole.
    let completes = txn.refunded_minor + amount == txn.amount_minor;
    let mut allocations = Vec::with_capacity(shares.len());
    let mut lines = Lines::new(mode, currency.code());
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
        lines.add(
            Account::VoucherLiability {
                voucher_id: credited,
            },
            *share,
        );
        refunded_vouchers.push(RefundedVoucher {
            last4: original.last4.clone(),
            amount: money(*share, currency)?,
            new_voucher,
        });
    }
    if completes {
        let ids: Vec<i64> = redemptions.iter().map(|r| r.voucher_id).collect();
        for v in vouchers.iter().filter(|v| ids.contains(&v.id)) {
            if v.status != VoucherState::Used || v.expires_at.is_some_and(|e| e <= now) {
                continue;
            }
            let forfeited = store::ledger::breakage_of(tx, v.id).await?;
            store::refunds::reinstate_voucher(tx, v.id, forfeited, now).await?;
            lines
                .add(Account::Breakage { voucher_id: v.id }, -forfeited)
                .add(Account::VoucherLiability { voucher_id: v.id }, forfeited);
        }
    }
    lines
        .add(
            Account::MerchantPayable {
                merchant_id: &caller.merchant_id,
            },
            -net,
        )
        .add(Account::PlatformCommission, -commission);
    store::refunds::insert_refund(
        tx,
        refund::Model {
            id: refund_id.clone(),
            transaction_id: txn.id.clone(),
            merchant_id: caller.merchant_id.clone(),
            mode: AsText(caller.mode),
            currency: AsText(currency),
            amount_minor: amount,
            commission_minor: commission,
            net_minor: net,
            reason: req.reason.clone(),
            created_at: now,
        },
        allocations,
    )
    .await?;
    store::ledger::post(tx, "refund", Some(&txn.id), &lines, now).await?;
    // A magic test voucher was topped up after paying; what the refund returned is now
    // more than it holds between uses.
    crate::testmode::settle_after_refund(tx, &state.pepper, &vouchers).await?;

    let receipt = RefundReceipt {
        id: refund_id,
        transaction_id: txn.id.clone(),
        status: RefundStatus::Succeeded.as_str().into(),
        amount: money(amount, currency)?,
        currency: currency.code().into(),
        commission: money(commission, currency)?,
        net: money(net, currency)?,
        reason: req.reason.clone(),
        vouchers: refunded_vouchers,
        transaction_refunded_amount: money(txn.refunded_minor + amount, currency)?,
        created_at: crate::timestamps::rfc3339(now),
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
        caller.mode,
        EventKind::PaymentRefunded,
        Some(&txn.id),
        serde_json::json!({
            "refund": public,
            "transaction": {
                "id": txn.id,
                "order_id": txn.order_id,
                "amount": money(txn.amount_minor, currency)?,
                "currency": currency.code(),
                "refunded_amount": receipt.transaction_refunded_amount,
                "status": TransactionStatus::from_parts(txn.hold_state, txn.amount_minor, txn.refunded_minor + amount).as_str(),
            },
        }),
        now,
    )
    .await?;
    crate::activity::record_for(
        tx,
        caller,
        crate::activity::Action::RefundCreated,
        Some(&txn.id),
        Some(format!(
            "{} {} ({})",
            receipt.amount, receipt.currency, receipt.id
        )),
    )
    .await?;

    recorder.store(tx, 201, &receipt, now).await?;
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
) -> Result<(i64, NewVoucher), RefundError> {
    let code = VoucherCode::generate(random_bytes::<10>());
    let expires_at = now + NEW_VOUCHER_VALIDITY;
    let ids = store::vouchers::insert_many(
        tx,
        vec![voucher::Model {
            id: 0,
            code_hmac: voucher_hmac(&state.pepper, &code),
            last4: code.last4().into(),
            mode: original.mode,
            currency: original.currency,
            initial_minor: amount,
            balance_minor: amount,
            status: VoucherState::Active,
            expires_at: Some(expires_at),
            rules: original.rules.clone(),
            created_at: now,
            updated_at: now,
            issuer_merchant_id: original.issuer_merchant_id.clone(),
            first_used_at: None,
            // A replacement voucher carries the original's PIN: the shopper knows it.
            pin_hash: original.pin_hash.clone(),
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
            expires_at: crate::timestamps::rfc3339(expires_at),
        },
    ))
}
