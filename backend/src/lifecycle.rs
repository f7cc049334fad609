//! Voucher lifecycle: activities (activate, deactivate, block, unblock, adjust, load,
//! clear balance) and a voucher's history.
//!
//! Each activity is ONE database transaction: the voucher is locked and changed by a
//! conditional update (its balance and status as read), the money it moves is a balanced
//! ledger journal, and an activity row records the kind, the amount, the balance after,
//! the reason, the actor and the journal. The accounts:
//! - `adjust_increment` / `adjust_decrement` (reason required): the voucher's liability
//!   against `voucher_adjustments` (value granted or taken back outside any sale);
//! - `load` (only vouchers whose rules say `reloadable`): the voucher's liability against
//!   `voucher_float`, as issuance, since it is new value put into circulation;
//! - `clear_balance` (reason required): the whole balance written off to
//!   `voucher_adjustments`.
//!
//! A voucher's history ([`history`]) lists its activities together with every ledger
//! journal that moved it (issue, payment, authorization, capture, cancel, expiry, refund):
//! those are read from the ledger, where they already are, not copied.
use sea_orm::{ConnectionTrait, DatabaseConnection, DatabaseTransaction};
use serde::{Deserialize, Serialize};
use superpayment_core::{Currency, FieldError, Mode, Money};
use time::OffsetDateTime;

use crate::{
    auth::Caller,
    idempotency::{
        self, Fingerprint, IdempotencyError, IdempotencyKey, IdempotentOperation, Operation,
        Outcome, Recorder,
    },
    money::format_minor,
    payments::rules::VoucherRules,
    state::AppState,
    store::{
        self,
        entities::{
            voucher::{self, VoucherState},
            voucher_activity,
        },
        ledger::{Account, Lines},
    },
    timestamps::rfc3339,
};

/// The longest reason kept with an activity.
pub const MAX_REASON_LEN: usize = 500;

/// What an activity does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActivityKind {
    Activate,
    Deactivate,
    Block,
    Unblock,
    AdjustIncrement,
    AdjustDecrement,
    Load,
    ClearBalance,
}

impl ActivityKind {
    /// Every kind, in the order the documentation lists them.
    pub const ALL: [ActivityKind; 8] = [
        Self::Activate,
        Self::Deactivate,
        Self::Block,
        Self::Unblock,
        Self::AdjustIncrement,
        Self::AdjustDecrement,
        Self::Load,
        Self::ClearBalance,
    ];

    /// The name on the wire and in `voucher_activities.kind`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Activate => "activate",
            Self::Deactivate => "deactivate",
            Self::Block => "block",
            Self::Unblock => "unblock",
            Self::AdjustIncrement => "adjust_increment",
            Self::AdjustDecrement => "adjust_decrement",
            Self::Load => "load",
            Self::ClearBalance => "clear_balance",
        }
    }

    /// The kind with this name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }

    fn takes_amount(self) -> bool {
        matches!(
            self,
            Self::AdjustIncrement | Self::AdjustDecrement | Self::Load
        )
    }

    fn needs_reason(self) -> bool {
        matches!(
            self,
            Self::AdjustIncrement | Self::AdjustDecrement | Self::ClearBalance
        )
    }

    /// The ledger journal's kind for the money this activity moves.
    fn journal(self) -> Option<&'static str> {
        match self {
            Self::AdjustIncrement | Self::AdjustDecrement => Some("adjustment"),
            Self::Load => Some("load"),
            Self::ClearBalance => Some("clear"),
            _ => None,
        }
    }
}

/// Who made an activity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// The operator (ADMIN_TOKEN or the CLI).
    Admin,
    /// A merchant's secret key (its id, `key_...`).
    ApiKey(String),
    /// SuperPayment itself (the fraud screener's blocks): which rule.
    System(String),
}

impl Actor {
    fn parts(&self) -> (&'static str, Option<String>) {
        match self {
            Actor::Admin => ("admin", None),
            Actor::ApiKey(id) => ("api_key", Some(id.clone())),
            Actor::System(rule) => ("system", Some(rule.clone())),
        }
    }
}

/// Whose vouchers a caller may see and change.
#[derive(Debug, Clone)]
pub enum Owner {
    /// The operator: every voucher.
    Operator,
    /// A merchant: the vouchers issued for it, in the mode of its key.
    Merchant { merchant_id: String, mode: Mode },
}

impl Owner {
    fn sees(&self, v: &voucher::Model) -> bool {
        match self {
            Owner::Operator => true,
            Owner::Merchant { merchant_id, mode } => {
                v.mode.0 == *mode && v.issuer_merchant_id.as_deref() == Some(merchant_id)
            }
        }
    }
}

/// Why an activity was refused or a history not given.
#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    /// A field is not valid (`FieldError` says which and why): unknown kind, missing or
    /// invalid amount, missing reason.
    #[error("invalid request")]
    Invalid(FieldError),
    /// No such voucher for this caller (another merchant's voucher is as unknown).
    #[error("voucher not found")]
    VoucherNotFound,
    /// The voucher's state does not allow it: `code` says why.
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// The Idempotency-Key refused or answered the request.
    #[error(transparent)]
    Idempotency(#[from] IdempotencyError),
    /// Anything unexpected.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

crate::internal_on_db_error!(LifecycleError);

fn field(name: &str, code: &'static str, message: &str) -> LifecycleError {
    LifecycleError::Invalid(FieldError::new(name, code, message))
}

const REASON_REQUIRED: &str =
    "A reason is required for adjustments and cleared balances (it is kept in the voucher's history).";
const REASON_TOO_LONG: &str = "reason must have at most 500 characters.";
const AMOUNT_REQUIRED: &str = "amount is required for adjust_increment, adjust_decrement and load.";
const AMOUNT_NOT_ALLOWED: &str =
    "amount is only taken by adjust_increment, adjust_decrement and load.";
const NOT_RELOADABLE: &str = "This voucher's kind is not reloadable: it cannot be loaded.";
const EXCEEDS_BALANCE: &str = "The decrease is larger than the voucher's balance.";
const BALANCE_TOO_LARGE: &str = "The balance would exceed the maximum SuperPayment accepts.";

fn invalid_kind() -> LifecycleError {
    let names: Vec<&str> = ActivityKind::ALL.iter().map(|k| k.as_str()).collect();
    field(
        "kind",
        "invalid_activity_kind",
        &format!("kind must be one of {}.", names.join(", ")),
    )
}

fn status_conflict(status: VoucherState, kind: ActivityKind) -> LifecycleError {
    LifecycleError::Conflict {
        code: "voucher_status_conflict",
        message: format!(
            "This voucher is {}: `{}` does not apply to it.",
            status.as_str(),
            kind.as_str()
        ),
    }
}

impl LifecycleError {
    /// One instance of each answer recording an activity can get, for the documentation.
    pub fn examples() -> Vec<LifecycleError> {
        let mut out = vec![
            invalid_kind(),
            field("reason", "reason_required", REASON_REQUIRED),
            field("reason", "reason_too_long", REASON_TOO_LONG),
            field("amount", "amount_required", AMOUNT_REQUIRED),
            field("amount", "amount_not_allowed", AMOUNT_NOT_ALLOWED),
            LifecycleError::VoucherNotFound,
            LifecycleError::Conflict {
                code: "voucher_not_reloadable",
                message: NOT_RELOADABLE.into(),
            },
            LifecycleError::Conflict {
                code: "adjustment_exceeds_balance",
                message: EXCEEDS_BALANCE.into(),
            },
            field("amount", "balance_too_large", BALANCE_TOO_LARGE),
            status_conflict(VoucherState::Used, ActivityKind::Load),
        ];
        out.extend(
            crate::payments::amount_errors("amount", Currency::EUR)
                .into_iter()
                .map(LifecycleError::Invalid),
        );
        out.extend(IdempotencyError::examples().map(LifecycleError::Idempotency));
        out
    }
}

/// An activity as asked for (already authenticated), before validation.
#[derive(Debug, Clone)]
pub struct ActivityRequest {
    pub voucher_id: String,
    pub kind: String,
    /// Decimal string in the voucher's currency (adjustments and loads only).
    pub amount: Option<String>,
    pub reason: Option<String>,
}

/// A recorded activity as answered (and stored for idempotent replays).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ActivityReceipt {
    pub id: i64,
    pub voucher_id: i64,
    pub kind: String,
    /// Signed decimal string: what the balance moved by (`"0.00"` for a status change).
    pub amount: String,
    /// The balance after the activity.
    pub balance: String,
    pub currency: String,
    /// The voucher's status after the activity.
    pub status: String,
    pub reason: Option<String>,
    /// `admin`, `api_key` or `system`.
    pub actor: String,
    /// The key id (`api_key`) or rule (`system`).
    pub actor_id: Option<String>,
    pub created_at: String,
}

/// A recorded activity, or the stored answer to a repeated Idempotency-Key.
#[derive(Debug)]
pub enum ActivityOutcome {
    Done(ActivityReceipt),
    Replayed(ActivityReceipt),
}

/// An activity with its kind parsed and its reason checked (the amount needs the
/// voucher's currency, known once the voucher is read).
#[derive(Debug, Clone)]
struct Checked {
    voucher_id: i64,
    kind: ActivityKind,
    amount: Option<String>,
    reason: Option<String>,
}

fn check(req: &ActivityRequest) -> Result<Checked, LifecycleError> {
    let voucher_id = parse_id(&req.voucher_id).ok_or(LifecycleError::VoucherNotFound)?;
    let kind = ActivityKind::parse(&req.kind).ok_or_else(invalid_kind)?;
    let reason = req
        .reason
        .as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(str::to_owned);
    if reason
        .as_ref()
        .is_some_and(|r| r.chars().count() > MAX_REASON_LEN)
    {
        return Err(field("reason", "reason_too_long", REASON_TOO_LONG));
    }
    if kind.needs_reason() && reason.is_none() {
        return Err(field("reason", "reason_required", REASON_REQUIRED));
    }
    match (&req.amount, kind.takes_amount()) {
        (None, true) => return Err(field("amount", "amount_required", AMOUNT_REQUIRED)),
        (Some(_), false) => return Err(field("amount", "amount_not_allowed", AMOUNT_NOT_ALLOWED)),
        _ => {}
    }
    Ok(Checked {
        voucher_id,
        kind,
        amount: req.amount.clone(),
        reason,
    })
}

/// A voucher id from a path: ids are positive integers; anything else is no voucher.
pub fn parse_id(raw: &str) -> Option<i64> {
    raw.parse::<i64>().ok().filter(|id| *id > 0)
}

#[derive(Serialize)]
struct Canonical<'a> {
    voucher_id: i64,
    kind: &'a str,
    amount: Option<String>,
    reason: Option<&'a str>,
}

/// Records an activity through the API (admin token or a merchant's secret key), once per
/// Idempotency-Key. Operator requests share one key space of their own (see
/// [`Caller::operator`]).
#[tracing::instrument(skip_all, fields(voucher_id = %req.voucher_id, kind = %req.kind))]
pub async fn record(
    state: &AppState,
    caller: &Caller,
    owner: Owner,
    actor: Actor,
    req: ActivityRequest,
    idempotency_key: Option<String>,
) -> Result<ActivityOutcome, LifecycleError> {
    let key = IdempotencyKey::parse(idempotency_key)?;
    let checked = check(&req)?;
    let fingerprint = Fingerprint::of(&Canonical {
        voucher_id: checked.voucher_id,
        kind: checked.kind.as_str(),
        amount: checked.amount.as_deref().map(|raw| {
            rust_decimal::Decimal::from_str_exact(raw)
                .map(|d| d.normalize().to_string())
                .unwrap_or_else(|_| raw.to_owned())
        }),
        reason: checked.reason.as_deref(),
    })?;
    let op = Record {
        owner: &owner,
        actor: &actor,
        checked: &checked,
    };
    Ok(
        match idempotency::execute(state, caller, key, fingerprint, None, &op).await? {
            Outcome::Fresh(r) => ActivityOutcome::Done(r),
            Outcome::Replayed(r) => ActivityOutcome::Replayed(r),
        },
    )
}

/// Records an activity directly (the CLI: no Idempotency-Key, one transaction).
pub async fn record_direct(
    db: &DatabaseConnection,
    actor: Actor,
    req: ActivityRequest,
) -> Result<ActivityReceipt, LifecycleError> {
    let checked = check(&req)?;
    let tx = store::begin(db).await?;
    let receipt = apply(&tx, &Owner::Operator, &actor, &checked).await?;
    tx.commit().await?;
    Ok(receipt)
}

struct Record<'a> {
    owner: &'a Owner,
    actor: &'a Actor,
    checked: &'a Checked,
}

impl IdempotentOperation for Record<'_> {
    type Output = ActivityReceipt;
    type Error = LifecycleError;
    const OPERATION: Operation = Operation::VoucherActivity;

    async fn run(
        &self,
        tx: &DatabaseTransaction,
        recorder: &Recorder<'_>,
    ) -> Result<ActivityReceipt, LifecycleError> {
        let receipt = apply(tx, self.owner, self.actor, self.checked).await?;
        recorder
            .store(tx, 200, &receipt, OffsetDateTime::now_utc())
            .await?;
        Ok(receipt)
    }

    fn committed(&self, r: &ActivityReceipt) {
        tracing::info!(voucher_id = r.voucher_id, kind = %r.kind, amount = %r.amount, actor = %r.actor, "voucher activity recorded");
    }
}

/// The activity inside `tx`: lock, decide, conditional update, journal, activity row.
async fn apply(
    tx: &DatabaseTransaction,
    owner: &Owner,
    actor: &Actor,
    req: &Checked,
) -> Result<ActivityReceipt, LifecycleError> {
    let v = store::activities::lock_voucher(tx, req.voucher_id)
        .await?
        .filter(|v| owner.sees(v))
        .ok_or(LifecycleError::VoucherNotFound)?;
    let currency = v.currency.0;
    let amount = req
        .amount
        .as_deref()
        .map(|raw| {
            Money::parse(raw, currency).map(Money::minor).map_err(|e| {
                LifecycleError::Invalid(FieldError::new("amount", e.code(), e.to_string()))
            })
        })
        .transpose()?
        .unwrap_or(0);
    use ActivityKind as K;
    use VoucherState as S;
    let (allowed, status): (&[VoucherState], VoucherState) = match req.kind {
        K::Activate => (&[S::Inactive], S::Active),
        K::Deactivate => (&[S::Active], S::Inactive),
        K::Block => (&[S::Active, S::Inactive], S::Blocked),
        K::Unblock => (&[S::Blocked], S::Active),
        // Money moves on any voucher not used up: a used single-use voucher's remainder
        // is forfeited (breakage) and stays so.
        K::AdjustIncrement | K::AdjustDecrement | K::Load | K::ClearBalance => {
            (&[S::Active, S::Inactive, S::Blocked], v.status)
        }
    };
    if !allowed.contains(&v.status) {
        return Err(status_conflict(v.status, req.kind));
    }
    let delta = match req.kind {
        K::AdjustIncrement => amount,
        K::AdjustDecrement => {
            if amount > v.balance_minor {
                return Err(LifecycleError::Conflict {
                    code: "adjustment_exceeds_balance",
                    message: EXCEEDS_BALANCE.into(),
                });
            }
            -amount
        }
        K::Load => {
            let rules = serde_json::from_value::<VoucherRules>(v.rules.clone()).ok();
            if !rules.is_some_and(|r| r.reloadable) {
                return Err(LifecycleError::Conflict {
                    code: "voucher_not_reloadable",
                    message: NOT_RELOADABLE.into(),
                });
            }
            amount
        }
        K::ClearBalance => -v.balance_minor,
        _ => 0,
    };
    let balance_after = v
        .balance_minor
        .checked_add(delta)
        .filter(|b| Money::from_minor(*b, currency).is_ok())
        .ok_or_else(|| field("amount", "balance_too_large", BALANCE_TOO_LARGE))?;
    let now = OffsetDateTime::now_utc();
    if !store::activities::change(tx, &v, delta, status, now).await? {
        // The voucher is locked for this transaction, so nothing can have changed it.
        return Err(anyhow::anyhow!("voucher {} changed while locked", v.id).into());
    }
    let journal_id = match req.kind.journal() {
        Some(kind) if delta != 0 => {
            let other = if req.kind == K::Load {
                Account::VoucherFloat
            } else {
                Account::VoucherAdjustments
            };
            let mut lines = Lines::new(v.mode.0.as_str(), currency.code());
            lines
                .add(Account::VoucherLiability { voucher_id: v.id }, delta)
                .add(other, -delta);
            Some(store::ledger::post(tx, kind, None, &lines, now).await?)
        }
        _ => None,
    };
    let (actor_kind, actor_id) = actor.parts();
    let row = voucher_activity::Model {
        id: 0,
        voucher_id: v.id,
        kind: req.kind.as_str().into(),
        amount_minor: delta,
        balance_after_minor: balance_after,
        reason: req.reason.clone(),
        actor_kind: actor_kind.into(),
        actor_id,
        journal_id,
        created_at: now,
    };
    let id = store::activities::insert(tx, row.clone()).await?;
    Ok(ActivityReceipt {
        id,
        voucher_id: v.id,
        kind: row.kind,
        amount: signed(delta, currency)?,
        balance: format_minor(balance_after, currency)?,
        currency: currency.code().into(),
        status: status.as_str().into(),
        reason: row.reason,
        actor: row.actor_kind,
        actor_id: row.actor_id,
        created_at: rfc3339(now),
    })
}

/// Records a status change made by SuperPayment itself (the fraud screener's block) in the
/// caller's transaction, after its conditional update succeeded.
pub async fn record_system_block(
    db: &impl ConnectionTrait,
    voucher_id: i64,
    rule: &str,
    now: OffsetDateTime,
) -> Result<(), sea_orm::DbErr> {
    let Some(v) = store::activities::find_voucher(db, voucher_id).await? else {
        return Ok(());
    };
    store::activities::insert(
        db,
        voucher_activity::Model {
            id: 0,
            voucher_id,
            kind: ActivityKind::Block.as_str().into(),
            amount_minor: 0,
            balance_after_minor: v.balance_minor,
            reason: None,
            actor_kind: "system".into(),
            actor_id: Some(rule.to_owned()),
            journal_id: None,
            created_at: now,
        },
    )
    .await?;
    Ok(())
}

/// Records an operator's block or unblock made through the older by-code endpoint and
/// CLI command, in their transaction.
pub async fn record_status_change(
    db: &impl ConnectionTrait,
    voucher_id: i64,
    blocked: bool,
    now: OffsetDateTime,
) -> Result<(), sea_orm::DbErr> {
    let Some(v) = store::activities::find_voucher(db, voucher_id).await? else {
        return Ok(());
    };
    let kind = if blocked {
        ActivityKind::Block
    } else {
        ActivityKind::Unblock
    };
    store::activities::insert(
        db,
        voucher_activity::Model {
            id: 0,
            voucher_id,
            kind: kind.as_str().into(),
            amount_minor: 0,
            balance_after_minor: v.balance_minor,
            reason: None,
            actor_kind: "admin".into(),
            actor_id: None,
            journal_id: None,
            created_at: now,
        },
    )
    .await?;
    Ok(())
}

fn signed(minor: i64, currency: Currency) -> anyhow::Result<String> {
    let abs = format_minor(minor.checked_abs().unwrap_or(i64::MAX), currency)?;
    Ok(if minor < 0 { format!("-{abs}") } else { abs })
}

/// One line of a voucher's history.
#[derive(Debug, Clone, Serialize)]
pub struct HistoryEntry {
    /// An activity's kind, or the ledger journal's (`issue`, `payment`, `authorization`,
    /// `capture`, `cancel`, `expiry`, `refund`, `test_top_up`).
    pub kind: String,
    /// Signed: what the balance moved by.
    pub amount: String,
    /// What was moved into (positive) or out of (negative) a hold.
    pub held: String,
    pub balance_after: String,
    pub reason: Option<String>,
    /// `admin`, `api_key`, `system`; None for payments, refunds and holds (their
    /// transaction says who).
    pub actor: Option<String>,
    pub actor_id: Option<String>,
    pub transaction_id: Option<String>,
    pub created_at: String,
}

/// A voucher's history, oldest first.
#[derive(Debug, Clone, Serialize)]
pub struct History {
    pub voucher_id: i64,
    pub last4: String,
    pub currency: String,
    pub mode: String,
    pub status: String,
    pub balance: String,
    pub entries: Vec<HistoryEntry>,
}

/// Every activity of a voucher in order: its lifecycle activities and the ledger journals
/// that moved it. Read from the primary: it is what an operator acts on.
pub async fn history(
    db: &impl ConnectionTrait,
    owner: &Owner,
    raw_id: &str,
) -> Result<History, LifecycleError> {
    let id = parse_id(raw_id).ok_or(LifecycleError::VoucherNotFound)?;
    let v = store::activities::find_voucher(db, id)
        .await?
        .filter(|v| owner.sees(v))
        .ok_or(LifecycleError::VoucherNotFound)?;
    let currency = v.currency.0;
    let activities = store::activities::of_voucher(db, id).await?;
    let shares = store::activities::journal_shares(db, id).await?;
    // Each line with its sort key: the time, then journals and activities in the order
    // written (an activity with a journal takes its journal's place).
    let mut lines: Vec<((OffsetDateTime, i64, i64), HistoryEntry)> = Vec::new();
    let mut balance = 0i64;
    for s in &shares {
        balance += s.balance_minor;
        if activities
            .iter()
            .any(|a| a.journal_id == Some(s.journal.id))
        {
            continue;
        }
        lines.push((
            (s.journal.created_at, s.journal.id, 0),
            HistoryEntry {
                kind: s.journal.kind.clone(),
                amount: signed(s.balance_minor, currency)?,
                held: signed(s.held_minor, currency)?,
                balance_after: format_minor(balance, currency)?,
                reason: None,
                actor: None,
                actor_id: None,
                transaction_id: s.journal.transaction_id.clone(),
                created_at: rfc3339(s.journal.created_at),
            },
        ));
    }
    for a in activities {
        lines.push((
            (a.created_at, a.journal_id.unwrap_or(i64::MAX), a.id),
            HistoryEntry {
                kind: a.kind,
                amount: signed(a.amount_minor, currency)?,
                held: signed(0, currency)?,
                balance_after: format_minor(a.balance_after_minor, currency)?,
                reason: a.reason,
                actor: Some(a.actor_kind),
                actor_id: a.actor_id,
                transaction_id: None,
                created_at: rfc3339(a.created_at),
            },
        ));
    }
    lines.sort_by_key(|(key, _)| *key);
    Ok(History {
        voucher_id: v.id,
        last4: v.last4,
        currency: currency.code().into(),
        mode: v.mode.0.as_str().into(),
        status: v.status.as_str().into(),
        balance: format_minor(v.balance_minor, currency)?,
        entries: lines.into_iter().map(|(_, e)| e).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(kind: &str, amount: Option<&str>, reason: Option<&str>) -> ActivityRequest {
        ActivityRequest {
            voucher_id: "7".into(),
            kind: kind.into(),
            amount: amount.map(Into::into),
            reason: reason.map(Into::into),
        }
    }

    fn code(err: LifecycleError) -> &'static str {
        match err {
            LifecycleError::Invalid(e) => e.code,
            other => panic!("not a field error: {other:?}"),
        }
    }

    #[test]
    fn adjustments_and_clears_need_a_reason_that_is_not_blank() {
        for kind in ["adjust_increment", "adjust_decrement"] {
            assert_eq!(
                code(check(&req(kind, Some("1.00"), None)).unwrap_err()),
                "reason_required"
            );
            assert_eq!(
                code(check(&req(kind, Some("1.00"), Some("   "))).unwrap_err()),
                "reason_required"
            );
            assert!(check(&req(kind, Some("1.00"), Some("goodwill"))).is_ok());
        }
        assert_eq!(
            code(check(&req("clear_balance", None, None)).unwrap_err()),
            "reason_required"
        );
        assert!(check(&req("block", None, None)).is_ok());
    }

    #[test]
    fn amounts_go_with_money_kinds_only() {
        assert_eq!(
            code(check(&req("load", None, None)).unwrap_err()),
            "amount_required"
        );
        assert_eq!(
            code(check(&req("block", Some("1.00"), None)).unwrap_err()),
            "amount_not_allowed"
        );
        assert_eq!(
            code(check(&req("refill", None, None)).unwrap_err()),
            "invalid_activity_kind"
        );
    }

    #[test]
    fn signed_amounts_keep_their_sign() {
        assert_eq!(signed(-500, Currency::EUR).unwrap(), "-5.00");
        assert_eq!(signed(500, Currency::EUR).unwrap(), "5.00");
        assert_eq!(signed(0, Currency::EUR).unwrap(), "0.00");
    }
}
