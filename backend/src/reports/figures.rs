//! The liability, commission and settlement reports, computed from the ledger's postings.
//!
//! Two reads feed every figure: each account's total, and each journal's movement on the
//! merchant side (payable, commission, payouts clearing). A journal is classified once, by
//! [`FlowKind::of`], from what it moved rather than from its kind, so journals of kinds
//! added later fall into the right figures: value moved from the vouchers to the merchant
//! side is a sale, back to the vouchers a refund, from a payable to the clearing account a
//! payout.
use std::{collections::BTreeMap, str::FromStr};

use sea_orm::ConnectionTrait;
use superpayment_core::{Currency, Mode};
use time::OffsetDateTime;

use super::{Period, ReportError};
use crate::store::{
    self,
    ledger::{Account, AccountClass, AccountName},
    reports::JournalFlow,
};

/// What a journal did on the merchant side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowKind {
    /// Value came from the vouchers to the merchant and the platform (a payment, a capture).
    Sale,
    /// Value went back from the merchant and the platform to the vouchers (a refund).
    Refund,
    /// A payable was paid out to the merchant's bank.
    Payout,
    /// Anything else that moved a payable or the commission.
    Other,
}

impl FlowKind {
    /// Classifies a journal by what it moved.
    pub fn of(f: &JournalFlow) -> FlowKind {
        if f.paid_out != 0 {
            FlowKind::Payout
        } else {
            match (f.payable + f.commission).signum() {
                1 => FlowKind::Sale,
                -1 => FlowKind::Refund,
                _ => FlowKind::Other,
            }
        }
    }

    /// The name written in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            FlowKind::Sale => "sale",
            FlowKind::Refund => "refund",
            FlowKind::Payout => "payout",
            FlowKind::Other => "other",
        }
    }
}

fn currency(code: &str) -> Result<Currency, ReportError> {
    Currency::from_str(code)
        .map_err(|_| anyhow::anyhow!("ledger account in unknown currency {code:?}").into())
}

/// The merchant a journal belongs to: the one whose payable it moved, else the one of its
/// transaction or payout.
fn merchant_of(f: &JournalFlow) -> Option<String> {
    f.payable_account
        .as_deref()
        .and_then(AccountName::parse)
        .and_then(|a| a.merchant_id.map(str::to_owned))
        .or_else(|| f.merchant_id.clone())
}

/// The float still owed to voucher holders in one currency, and how it came about.
///
/// `outstanding = issued - redeemed + refunded - breakage + other`, where `other` is what
/// journals of any other kind gave the vouchers (negative when they took from them).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LiabilityFigures {
    /// Value put into circulation (issuance, top-ups): what the float account gave out.
    pub issued: i64,
    /// Value paid to merchants and the platform by sales.
    pub redeemed: i64,
    /// Value given back to the vouchers by refunds.
    pub refunded: i64,
    /// Forfeited remainders (single-use vouchers), net of what refunds reinstated, and
    /// expired vouchers' balances once recognised.
    pub breakage: i64,
    /// Moved to or from the vouchers by anything else.
    pub other: i64,
    /// Owed to voucher holders: their balances plus what open holds keep aside.
    pub outstanding: i64,
    /// Of which held for authorized payments.
    pub held: i64,
}

/// The liability report: per currency, as of `as_of` (everything when None).
#[derive(Debug, Clone)]
pub struct LiabilityReport {
    pub mode: Mode,
    pub as_of: Option<OffsetDateTime>,
    pub currencies: Vec<(Currency, LiabilityFigures)>,
}

/// Outstanding voucher liability per currency in `mode`, as of `as_of` (exclusive).
pub async fn liability(
    db: &impl ConnectionTrait,
    mode: Mode,
    as_of: Option<OffsetDateTime>,
) -> Result<LiabilityReport, ReportError> {
    let mut by_currency: BTreeMap<Currency, LiabilityFigures> = BTreeMap::new();
    for total in store::reports::account_totals(db, mode.as_str(), as_of, None).await? {
        let Some(name) = AccountName::parse(&total.account) else {
            return Err(anyhow::anyhow!("ledger account {:?} has no mode", total.account).into());
        };
        if name.mode != mode.as_str() {
            continue;
        }
        let f = by_currency.entry(currency(name.currency)?).or_default();
        let t = total.total;
        match name.class {
            Some(AccountClass::VoucherLiability) => f.outstanding += t,
            Some(AccountClass::Held) => {
                f.outstanding += t;
                f.held += t;
            }
            Some(AccountClass::VoucherFloat) => f.issued -= t,
            Some(AccountClass::Breakage) => f.breakage += t,
            // The merchant side is split into sales and refunds per journal, below.
            Some(
                AccountClass::MerchantPayable
                | AccountClass::PlatformCommission
                | AccountClass::PayoutsClearing,
            ) => {}
            // Balance adjustments, cleared balances and any class a later journal kind
            // brings: value that entered or left the vouchers outside a sale.
            Some(AccountClass::VoucherAdjustments) | None => f.other -= t,
        }
    }
    for flow in store::reports::journal_flows(db, mode.as_str(), None, as_of, None).await? {
        let f = by_currency.entry(currency(&flow.currency)?).or_default();
        let moved = flow.payable + flow.commission + flow.paid_out;
        match FlowKind::of(&flow) {
            FlowKind::Sale => f.redeemed += moved,
            FlowKind::Refund => f.refunded -= moved,
            FlowKind::Payout | FlowKind::Other => f.other -= moved,
        }
    }
    Ok(LiabilityReport {
        mode,
        as_of,
        currencies: by_currency.into_iter().collect(),
    })
}

/// One merchant's commission in one currency over a period.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommissionFigures {
    /// Number of sales.
    pub sales_count: u64,
    /// Gross sales (what the vouchers paid).
    pub sales: i64,
    /// Gross refunds (what went back to the vouchers).
    pub refunds: i64,
    /// Commission on the sales.
    pub earned: i64,
    /// Commission given back by refunds.
    pub returned: i64,
    /// `earned - returned`.
    pub net: i64,
}

/// The commission report: per merchant and currency.
#[derive(Debug, Clone)]
pub struct CommissionReport {
    pub mode: Mode,
    pub period: Period,
    /// Sorted by merchant id, then currency.
    pub lines: Vec<(String, Currency, CommissionFigures)>,
}

/// Commission earned per merchant and currency in `mode` over `period`.
pub async fn commission(
    db: &impl ConnectionTrait,
    mode: Mode,
    period: Period,
    merchant_id: Option<&str>,
) -> Result<CommissionReport, ReportError> {
    let flows =
        store::reports::journal_flows(db, mode.as_str(), period.from, period.to, merchant_id)
            .await?;
    let mut lines: BTreeMap<(String, Currency), CommissionFigures> = BTreeMap::new();
    for flow in flows {
        let merchant = merchant_of(&flow).unwrap_or_default();
        if merchant_id.is_some_and(|m| m != merchant) {
            continue;
        }
        let f = lines
            .entry((merchant, currency(&flow.currency)?))
            .or_default();
        match FlowKind::of(&flow) {
            FlowKind::Sale => {
                f.sales_count += 1;
                f.sales += flow.payable + flow.commission;
            }
            FlowKind::Refund => f.refunds -= flow.payable + flow.commission,
            FlowKind::Payout | FlowKind::Other => {}
        }
        if flow.commission > 0 {
            f.earned += flow.commission;
        } else {
            f.returned -= flow.commission;
        }
        f.net += flow.commission;
    }
    lines.retain(|_, f| *f != CommissionFigures::default());
    Ok(CommissionReport {
        mode,
        period,
        lines: lines.into_iter().map(|((m, c), f)| (m, c, f)).collect(),
    })
}

/// One journal of a settlement statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementLine {
    pub journal_id: i64,
    pub at: OffsetDateTime,
    pub kind: FlowKind,
    /// The ledger journal's kind (`payment`, `capture`, `refund`, `payout` ...).
    pub journal_kind: String,
    pub transaction_id: Option<String>,
    pub order_id: Option<String>,
    pub payout_id: Option<String>,
    pub reference: Option<String>,
    /// Sales and refunds: what the vouchers paid or got back; payouts: the amount paid out.
    pub gross: i64,
    /// Commission charged (positive) or returned (negative).
    pub commission: i64,
    /// Change of the payable.
    pub payable: i64,
}

/// What a merchant was owed in one currency at the start and end of a period, and why it
/// changed: `closing = opening + sales - commission - refunds + commission_returned -
/// payouts + other`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatementFigures {
    pub opening: i64,
    pub sales: i64,
    pub commission: i64,
    pub refunds: i64,
    pub commission_returned: i64,
    pub payouts: i64,
    /// Payable changes of any other kind.
    pub other: i64,
    pub closing: i64,
}

/// One merchant's statement in one currency.
#[derive(Debug, Clone)]
pub struct Statement {
    pub merchant_id: String,
    pub currency: Currency,
    pub figures: StatementFigures,
    /// Per journal, oldest first; empty unless asked for.
    pub lines: Vec<StatementLine>,
}

/// The settlement report: per merchant and currency.
#[derive(Debug, Clone)]
pub struct SettlementReport {
    pub mode: Mode,
    pub period: Period,
    /// Sorted by merchant id, then currency.
    pub statements: Vec<Statement>,
}

/// Settlement statements in `mode` over `period`: one merchant's, or every merchant's.
pub async fn settlement(
    db: &impl ConnectionTrait,
    mode: Mode,
    period: Period,
    merchant_id: Option<&str>,
    with_lines: bool,
) -> Result<SettlementReport, ReportError> {
    let mut statements: BTreeMap<(String, Currency), Statement> = BTreeMap::new();
    let mut opening: Vec<(String, Currency, i64)> = Vec::new();
    if let Some(from) = period.from {
        let prefix = match merchant_id {
            Some(m) => Account::MerchantPayable { merchant_id: m }.name_prefix(),
            None => AccountClass::MerchantPayable.prefix().to_owned(),
        };
        for total in
            store::reports::account_totals(db, mode.as_str(), Some(from), Some(&prefix)).await?
        {
            let name = AccountName::parse(&total.account)
                .filter(|n| n.mode == mode.as_str())
                .and_then(|n| Some((n.merchant_id?.to_owned(), n.currency.to_owned())));
            if let Some((merchant, code)) = name {
                opening.push((merchant, currency(&code)?, total.total));
            }
        }
    }
    let flows =
        store::reports::journal_flows(db, mode.as_str(), period.from, period.to, merchant_id)
            .await?;
    for (merchant, currency, total) in opening {
        statement_for(&mut statements, merchant, currency)
            .figures
            .opening += total;
    }
    for flow in flows {
        let Some(merchant) = merchant_of(&flow) else {
            continue;
        };
        if merchant_id.is_some_and(|m| m != merchant) {
            continue;
        }
        let s = statement_for(&mut statements, merchant, currency(&flow.currency)?);
        let kind = FlowKind::of(&flow);
        let f = &mut s.figures;
        let gross = match kind {
            FlowKind::Sale => {
                f.sales += flow.payable + flow.commission;
                f.commission += flow.commission;
                flow.payable + flow.commission
            }
            FlowKind::Refund => {
                f.refunds -= flow.payable + flow.commission;
                f.commission_returned -= flow.commission;
                -(flow.payable + flow.commission)
            }
            FlowKind::Payout => {
                f.payouts -= flow.payable;
                -flow.payable
            }
            FlowKind::Other => {
                f.other += flow.payable;
                flow.payable
            }
        };
        if with_lines {
            s.lines.push(StatementLine {
                journal_id: flow.journal_id,
                at: flow.created_at,
                kind,
                journal_kind: flow.kind.clone(),
                transaction_id: flow.transaction_id.clone(),
                order_id: flow.order_id.clone(),
                payout_id: flow.payout_id.clone(),
                reference: flow.reference.clone(),
                gross,
                commission: flow.commission,
                payable: flow.payable,
            });
        }
        f.closing += flow.payable;
    }
    let mut statements: Vec<Statement> = statements.into_values().collect();
    for s in &mut statements {
        s.figures.closing += s.figures.opening;
    }
    Ok(SettlementReport {
        mode,
        period,
        statements,
    })
}

fn statement_for(
    statements: &mut BTreeMap<(String, Currency), Statement>,
    merchant_id: String,
    currency: Currency,
) -> &mut Statement {
    statements
        .entry((merchant_id.clone(), currency))
        .or_insert_with(|| Statement {
            merchant_id,
            currency,
            figures: StatementFigures::default(),
            lines: Vec::new(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flow(payable: i64, commission: i64, paid_out: i64) -> JournalFlow {
        JournalFlow {
            journal_id: 1,
            kind: "anything".into(),
            transaction_id: None,
            currency: "EUR".into(),
            created_at: OffsetDateTime::UNIX_EPOCH,
            merchant_id: Some("mer_txn".into()),
            order_id: None,
            payout_id: None,
            reference: None,
            payable_account: None,
            payable,
            commission,
            paid_out,
        }
    }

    #[test]
    fn a_journal_is_classified_by_what_it_moved_not_by_its_kind() {
        assert_eq!(FlowKind::of(&flow(9_750, 250, 0)), FlowKind::Sale);
        // A merchant with 100% commission is owed nothing, yet it was a sale.
        assert_eq!(FlowKind::of(&flow(0, 250, 0)), FlowKind::Sale);
        assert_eq!(FlowKind::of(&flow(-1_950, -50, 0)), FlowKind::Refund);
        assert_eq!(FlowKind::of(&flow(-5_000, 0, 5_000)), FlowKind::Payout);
        assert_eq!(FlowKind::of(&flow(100, -100, 0)), FlowKind::Other);
    }

    #[test]
    fn a_journal_belongs_to_the_merchant_whose_payable_it_moved() {
        let mut f = flow(100, 0, 0);
        assert_eq!(merchant_of(&f).as_deref(), Some("mer_txn"));
        f.payable_account = Some("merchant_payable:mer_a:live:EUR".into());
        assert_eq!(merchant_of(&f).as_deref(), Some("mer_a"));
    }

    #[test]
    fn account_names_parse_back_to_what_named_them() {
        let payable = Account::MerchantPayable {
            merchant_id: "mer_x",
        };
        let name = payable.name("live", "KWD");
        assert_eq!(
            AccountName::parse(&name),
            Some(AccountName {
                class: Some(AccountClass::MerchantPayable),
                merchant_id: Some("mer_x"),
                mode: "live",
                currency: "KWD",
            })
        );
        for class in AccountClass::ALL {
            let parsed = format!("{}test:EUR", class.prefix());
            if class != AccountClass::MerchantPayable {
                assert_eq!(AccountName::parse(&parsed).unwrap().class, Some(class));
            }
        }
        // A class added later is still an account, counted as `other`.
        let later = AccountName::parse("promotions:test:EUR").unwrap();
        assert_eq!((later.class, later.mode), (None, "test"));
        assert_eq!(AccountName::parse("no_mode"), None);
    }
}
