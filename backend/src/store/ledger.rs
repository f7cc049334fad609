//! The double-entry ledger (journals and postings) and the invariant queries behind `audit`.
use sea_orm::{ConnectionTrait, DbErr, EntityTrait, FromQueryResult, Set, Statement};
use time::OffsetDateTime;

use super::entities::{journal, posting};

/// One ledger line to write.
#[derive(Debug, Clone)]
pub struct Line {
    pub account: String,
    pub voucher_id: Option<i64>,
    pub amount_minor: i64,
}

/// The ledger's accounts. Every account is per mode and per currency: its name ends in
/// `:<mode>:<currency>`, and the currency is the journal's, so no posting can add euro
/// cents to yen.
#[derive(Debug, Clone, Copy)]
pub enum Account<'a> {
    /// What the vouchers hold for their owners (one line per voucher).
    VoucherLiability { voucher_id: i64 },
    /// The other side of issuance: value put into circulation.
    VoucherFloat,
    /// What is owed to a merchant.
    MerchantPayable { merchant_id: &'a str },
    /// SuperPayment's commission.
    PlatformCommission,
    /// Forfeited remainders of used single-use vouchers (per voucher, so that a full refund
    /// can give a voucher back exactly what it forfeited).
    Breakage { voucher_id: i64 },
    /// Vouchers' money held for an authorized payment until it is captured or released
    /// (per voucher, so that a release gives each voucher back exactly its share).
    Held { voucher_id: i64 },
    /// The other side of an operator's or issuer's balance adjustment and of a cleared
    /// balance: value granted (debit) or taken back and written off (credit) outside any
    /// sale. Loads (top-ups) are new value and go against [`Account::VoucherFloat`], as
    /// issuance does.
    VoucherAdjustments,
    /// What was paid out of merchants' payables to their banks (a payout moves the
    /// amount here; the bank statement is reconciled against it).
    PayoutsClearing,
}

/// The classes of ledger account, named by the prefix of their account names; what the
/// operator reports group postings by. An account whose prefix is none of these (a class a
/// later journal kind brings) is still counted by the reports, as `other`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AccountClass {
    VoucherLiability,
    VoucherFloat,
    MerchantPayable,
    PlatformCommission,
    Breakage,
    Held,
    PayoutsClearing,
    VoucherAdjustments,
}

impl AccountClass {
    /// Every class.
    pub const ALL: [AccountClass; 8] = [
        AccountClass::VoucherLiability,
        AccountClass::VoucherFloat,
        AccountClass::MerchantPayable,
        AccountClass::PlatformCommission,
        AccountClass::Breakage,
        AccountClass::Held,
        AccountClass::PayoutsClearing,
        AccountClass::VoucherAdjustments,
    ];

    /// The start of every account name of this class, colon included.
    pub fn prefix(self) -> &'static str {
        match self {
            AccountClass::VoucherLiability => "voucher_liability:",
            AccountClass::VoucherFloat => "voucher_float:",
            AccountClass::MerchantPayable => "merchant_payable:",
            AccountClass::PlatformCommission => "platform_commission:",
            AccountClass::Breakage => "breakage:",
            AccountClass::Held => "held:",
            AccountClass::PayoutsClearing => "payouts_clearing:",
            AccountClass::VoucherAdjustments => "voucher_adjustments:",
        }
    }
}

/// A stored account name taken apart: `<class>:[<merchant id>:]<mode>:<currency>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountName<'a> {
    /// None for a class this code does not know.
    pub class: Option<AccountClass>,
    /// The merchant of a payable account.
    pub merchant_id: Option<&'a str>,
    pub mode: &'a str,
    pub currency: &'a str,
}

impl<'a> AccountName<'a> {
    /// Parses a stored account name; None for a name without mode and currency.
    pub fn parse(name: &'a str) -> Option<Self> {
        let (rest, currency) = name.rsplit_once(':')?;
        let (head, mode) = rest.rsplit_once(':')?;
        let class = AccountClass::ALL
            .into_iter()
            .find(|c| name.starts_with(c.prefix()));
        let merchant_id = match class {
            Some(AccountClass::MerchantPayable) => {
                Some(head.strip_prefix(AccountClass::MerchantPayable.prefix())?)
            }
            _ => None,
        };
        Some(AccountName {
            class,
            merchant_id,
            mode,
            currency,
        })
    }
}

impl Account<'_> {
    /// The class of the account.
    pub fn class(&self) -> AccountClass {
        match self {
            Account::VoucherLiability { .. } => AccountClass::VoucherLiability,
            Account::VoucherFloat => AccountClass::VoucherFloat,
            Account::MerchantPayable { .. } => AccountClass::MerchantPayable,
            Account::PlatformCommission => AccountClass::PlatformCommission,
            Account::Breakage { .. } => AccountClass::Breakage,
            Account::Held { .. } => AccountClass::Held,
            Account::PayoutsClearing => AccountClass::PayoutsClearing,
            Account::VoucherAdjustments => AccountClass::VoucherAdjustments,
        }
    }

    /// The stored name of the account in `mode` and `currency` (ISO code).
    pub fn name(&self, mode: &str, currency: &str) -> String {
        format!("{}{mode}:{currency}", self.name_prefix())
    }

    /// The account's name up to the mode: its class prefix and, for a payable, the
    /// merchant.
    pub fn name_prefix(&self) -> String {
        match self {
            Account::MerchantPayable { merchant_id } => {
                format!("{}{merchant_id}:", self.class().prefix())
            }
            _ => self.class().prefix().to_owned(),
        }
    }

    fn voucher_id(&self) -> Option<i64> {
        match self {
            Account::VoucherLiability { voucher_id }
            | Account::Breakage { voucher_id }
            | Account::Held { voucher_id } => Some(*voucher_id),
            _ => None,
        }
    }
}

/// The lines of one journal, in one mode and one currency.
#[derive(Debug, Clone)]
pub struct Lines {
    mode: String,
    currency: String,
    lines: Vec<Line>,
}

impl Lines {
    /// An empty journal in `mode` and `currency` (ISO code).
    pub fn new(mode: &str, currency: &str) -> Self {
        Lines {
            mode: mode.to_owned(),
            currency: currency.to_owned(),
            lines: Vec::new(),
        }
    }

    /// Adds a line; zero amounts are left out.
    pub fn add(&mut self, account: Account<'_>, amount_minor: i64) -> &mut Self {
        if amount_minor != 0 {
            self.lines.push(Line {
                account: account.name(&self.mode, &self.currency),
                voucher_id: account.voucher_id(),
                amount_minor,
            });
        }
        self
    }

    /// The journal's currency.
    pub fn currency(&self) -> &str {
        &self.currency
    }

    /// The lines, in the order added.
    pub fn lines(&self) -> &[Line] {
        &self.lines
    }

    /// The lines, taken.
    pub fn into_lines(self) -> Vec<Line> {
        self.lines
    }
}

/// Writes a journal with its postings and returns the journal's id. Callers build
/// balanced lines; the audit re-checks.
pub async fn post(
    db: &impl ConnectionTrait,
    kind: &str,
    transaction_id: Option<&str>,
    lines: &Lines,
    now: OffsetDateTime,
) -> Result<i64, DbErr> {
    let (currency, lines) = (lines.currency(), lines.lines());
    debug_assert_eq!(lines.iter().map(|l| l.amount_minor).sum::<i64>(), 0);
    let res = journal::Entity::insert(journal::ActiveModel {
        id: sea_orm::NotSet,
        kind: Set(kind.to_owned()),
        transaction_id: Set(transaction_id.map(str::to_owned)),
        currency: Set(currency.to_owned()),
        created_at: Set(now),
    })
    .exec(db)
    .await?;
    let journal_id = res.last_insert_id;
    // Batches keep an issuance of thousands of vouchers under the bind-parameter limits.
    for chunk in lines.chunks(2_000) {
        posting::Entity::insert_many(chunk.iter().map(|l| posting::ActiveModel {
            id: sea_orm::NotSet,
            journal_id: Set(journal_id),
            account: Set(l.account.clone()),
            voucher_id: Set(l.voucher_id),
            amount_minor: Set(l.amount_minor),
        }))
        .exec_without_returning(db)
        .await?;
    }
    Ok(journal_id)
}

/// A voucher's outstanding breakage: what it forfeited, net of what was given back.
pub async fn breakage_of(db: &impl ConnectionTrait, voucher_id: i64) -> Result<i64, DbErr> {
    #[derive(FromQueryResult)]
    struct Total {
        total: Option<i64>,
    }
    let backend = db.get_database_backend();
    let p = if backend == sea_orm::DbBackend::Postgres {
        "$1"
    } else {
        "?"
    };
    let row = Total::find_by_statement(Statement::from_sql_and_values(
        backend,
        format!(
            "SELECT CAST(SUM(amount_minor) AS BIGINT) AS total FROM postings
             WHERE voucher_id = {p} AND account LIKE 'breakage:%'"
        ),
        [voucher_id.into()],
    ))
    .one(db)
    .await?;
    Ok(row.and_then(|r| r.total).unwrap_or(0))
}

/// One violated invariant, as a human-readable line.
#[derive(Debug, Clone, FromQueryResult)]
pub struct Violation {
    pub detail: String,
}

/// Each invariant of the ledger as a query returning one row per violation.
const CHECKS: &[(&str, &str)] = &[
    (
        "every journal sums to zero per currency",
        "SELECT 'journal ' || CAST(journal_id AS TEXT) || ' sums to ' || CAST(SUM(amount_minor) AS TEXT) || ' in ' || substr(account, length(account) - 2) AS detail
         FROM postings GROUP BY journal_id, substr(account, length(account) - 2) HAVING SUM(amount_minor) <> 0",
    ),
    (
        "every account is in its journal's currency",
        "SELECT 'posting ' || CAST(p.id AS TEXT) || ' on ' || p.account || ' in a ' || j.currency || ' journal' AS detail
         FROM postings p JOIN journals j ON j.id = p.journal_id
         WHERE substr(p.account, length(p.account) - 3) <> ':' || j.currency",
    ),
    (
        "every voucher posting is in the voucher's mode and currency",
        "SELECT 'posting ' || CAST(p.id AS TEXT) || ' on ' || p.account || ' for voucher ' || CAST(v.id AS TEXT) AS detail
         FROM postings p JOIN vouchers v ON v.id = p.voucher_id
         WHERE p.account <> 'voucher_liability:' || v.mode || ':' || v.currency
           AND p.account <> 'breakage:' || v.mode || ':' || v.currency
           AND p.account <> 'held:' || v.mode || ':' || v.currency",
    ),
    (
        "breakage comes only from single-use vouchers or from expiry, and is never negative",
        // Expiry breakage (`superpayment admin recognise-breakage`) takes what an expired
        // voucher of any kind still held; any other breakage is a single-use remainder.
        "SELECT 'voucher ' || CAST(v.id AS TEXT) || ' has breakage ' || CAST(b.total AS TEXT) AS detail
         FROM vouchers v JOIN (SELECT p.voucher_id, SUM(p.amount_minor) AS total,
                                      SUM(CASE WHEN j.kind = 'expiry_breakage' THEN p.amount_minor ELSE 0 END) AS expired
                               FROM postings p JOIN journals j ON j.id = p.journal_id
                               WHERE p.account LIKE 'breakage:%' GROUP BY p.voucher_id) b
           ON b.voucher_id = v.id
         WHERE b.total < 0 OR b.expired < 0 OR (b.expired > 0 AND v.expires_at IS NULL)
            OR (b.total - b.expired > 0 AND CAST(v.rules AS TEXT) NOT LIKE '%single_use%')",
    ),
    (
        "a used single-use voucher holds only what refunds of its current payment gave back",
        // Earlier payments of a voucher that is used again were refunded in full (that is
        // what made it usable again), so only refunds of partly refunded payments count.
        "SELECT 'used voucher ' || CAST(v.id AS TEXT) || ' holds ' || CAST(v.balance_minor AS TEXT) || ' but refunds gave back ' || CAST(COALESCE(f.total, 0) AS TEXT) AS detail
         FROM vouchers v LEFT JOIN (
             SELECT a.credited_voucher_id, SUM(a.amount_minor) AS total
             FROM refund_allocations a JOIN refunds r ON r.id = a.refund_id JOIN transactions t ON t.id = r.transaction_id
             WHERE a.credited_voucher_id = a.voucher_id AND t.refunded_minor < t.amount_minor
             GROUP BY a.credited_voucher_id) f
           ON f.credited_voucher_id = v.id
         WHERE v.status = 'used' AND v.balance_minor <> COALESCE(f.total, 0)",
    ),
    (
        "every journal has postings",
        "SELECT 'journal ' || CAST(j.id AS TEXT) || ' has no postings' AS detail FROM journals j
         WHERE NOT EXISTS (SELECT 1 FROM postings p WHERE p.journal_id = j.id)",
    ),
    (
        "no balance is negative or above its initial value plus its loads and adjustments",
        "SELECT 'voucher ' || CAST(v.id AS TEXT) || ' has balance ' || CAST(v.balance_minor AS TEXT) AS detail
         FROM vouchers v LEFT JOIN (SELECT p.voucher_id, SUM(p.amount_minor) AS total FROM postings p JOIN journals j ON j.id = p.journal_id
                                    WHERE j.kind IN ('adjustment', 'load', 'clear') AND p.account LIKE 'voucher_liability:%' GROUP BY p.voucher_id) l
           ON l.voucher_id = v.id
         WHERE v.balance_minor < 0 OR v.balance_minor > v.initial_minor + COALESCE(l.total, 0)",
    ),
    (
        "each voucher's balance equals its liability postings",
        "SELECT 'voucher ' || CAST(v.id AS TEXT) || ' balance ' || CAST(v.balance_minor AS TEXT) || ' but ledger ' || CAST(COALESCE(p.total, 0) AS TEXT) AS detail
         FROM vouchers v LEFT JOIN (SELECT voucher_id, SUM(amount_minor) AS total FROM postings WHERE account LIKE 'voucher_liability:%' GROUP BY voucher_id) p
           ON p.voucher_id = v.id
         WHERE v.balance_minor <> COALESCE(p.total, 0)",
    ),
    (
        "each voucher's balance equals issued minus redeemed plus refunded minus breakage plus loads and adjustments",
        // A refund share credited to a new voucher (the original had expired) is that
        // voucher's issued value, not a refund to it. Breakage is net of what full refunds
        // gave back. Loads, adjustments and cleared balances are the lifecycle journals
        // (`load`, `adjustment`, `clear`), each paired with its activity (checked below).
        "SELECT 'voucher ' || CAST(v.id AS TEXT) || ' balance ' || CAST(v.balance_minor AS TEXT) || ' but issued minus redeemed plus refunded minus breakage plus loads and adjustments is ' || CAST(v.initial_minor - COALESCE(r.total, 0) + COALESCE(f.total, 0) - COALESCE(b.total, 0) + COALESCE(l.total, 0) AS TEXT) AS detail
         FROM vouchers v LEFT JOIN (SELECT voucher_id, SUM(amount_minor) AS total FROM redemptions GROUP BY voucher_id) r
           ON r.voucher_id = v.id
         LEFT JOIN (SELECT credited_voucher_id, SUM(amount_minor) AS total FROM refund_allocations WHERE credited_voucher_id = voucher_id GROUP BY credited_voucher_id) f
           ON f.credited_voucher_id = v.id
         LEFT JOIN (SELECT voucher_id, SUM(amount_minor) AS total FROM postings WHERE account LIKE 'breakage:%' GROUP BY voucher_id) b
           ON b.voucher_id = v.id
         LEFT JOIN (SELECT voucher_id, SUM(amount_minor) AS total FROM voucher_activities GROUP BY voucher_id) l
           ON l.voucher_id = v.id
         WHERE v.balance_minor <> v.initial_minor - COALESCE(r.total, 0) + COALESCE(f.total, 0) - COALESCE(b.total, 0) + COALESCE(l.total, 0)",
    ),
    (
        "each lifecycle journal moves its voucher by exactly its activity's amount",
        // Both ways: a load, adjustment or clear journal without its activity, an
        // activity whose amount differs from its journal, a money activity without one.
        "SELECT 'journal ' || CAST(j.id AS TEXT) || ' (' || j.kind || ') moves ' || CAST(COALESCE(p.total, 0) AS TEXT) || ' but its activity ' || COALESCE(CAST(a.amount_minor AS TEXT), 'is missing') AS detail
         FROM journals j
         LEFT JOIN (SELECT journal_id, SUM(amount_minor) AS total FROM postings WHERE account LIKE 'voucher_liability:%' GROUP BY journal_id) p
           ON p.journal_id = j.id
         LEFT JOIN voucher_activities a ON a.journal_id = j.id
         WHERE j.kind IN ('adjustment', 'load', 'clear') AND (a.id IS NULL OR a.amount_minor <> COALESCE(p.total, 0))
         UNION ALL
         SELECT 'activity ' || CAST(a.id AS TEXT) || ' (' || a.kind || ') moves ' || CAST(a.amount_minor AS TEXT) || ' without a lifecycle journal' AS detail
         FROM voucher_activities a LEFT JOIN journals j ON j.id = a.journal_id
         WHERE a.amount_minor <> 0 AND (j.id IS NULL OR j.kind NOT IN ('adjustment', 'load', 'clear'))",
    ),
    (
        "no voucher gets back more than it paid to a transaction",
        "SELECT 'voucher ' || CAST(a.voucher_id AS TEXT) || ' refunded more than it paid to ' || r.transaction_id AS detail
         FROM refund_allocations a JOIN refunds r ON r.id = a.refund_id
         GROUP BY a.voucher_id, r.transaction_id
         HAVING SUM(a.amount_minor) > (SELECT COALESCE(SUM(d.amount_minor), 0) FROM redemptions d
                                       WHERE d.voucher_id = a.voucher_id AND d.transaction_id = r.transaction_id)",
    ),
    (
        "each transaction's refunded total equals its refunds and stays within its amount",
        "SELECT 'transaction ' || t.id || ' refunded ' || CAST(t.refunded_minor AS TEXT) || ' but refunds total ' || CAST(COALESCE(f.total, 0) AS TEXT) AS detail
         FROM transactions t LEFT JOIN (SELECT transaction_id, SUM(amount_minor) AS total FROM refunds GROUP BY transaction_id) f
           ON f.transaction_id = t.id
         WHERE t.refunded_minor <> COALESCE(f.total, 0) OR t.refunded_minor > t.amount_minor OR t.refunded_minor < 0",
    ),
    (
        "each refund is covered exactly by its allocations, and commission plus net equals amount",
        "SELECT 'refund ' || f.id || ' amount ' || CAST(f.amount_minor AS TEXT) || ' allocated ' || CAST(COALESCE(a.total, 0) AS TEXT) AS detail
         FROM refunds f LEFT JOIN (SELECT refund_id, SUM(amount_minor) AS total FROM refund_allocations GROUP BY refund_id) a
           ON a.refund_id = f.id
         WHERE f.amount_minor <> COALESCE(a.total, 0) OR f.commission_minor + f.net_minor <> f.amount_minor
            OR f.commission_minor < 0 OR f.net_minor < 0",
    ),
    (
        "a fully refunded transaction returned exactly its commission",
        "SELECT 'transaction ' || t.id || ' commission ' || CAST(t.commission_minor AS TEXT) || ' returned ' || CAST(COALESCE(f.total, 0) AS TEXT) AS detail
         FROM transactions t LEFT JOIN (SELECT transaction_id, SUM(commission_minor) AS total FROM refunds GROUP BY transaction_id) f
           ON f.transaction_id = t.id
         WHERE COALESCE(f.total, 0) > t.commission_minor
            OR (t.refunded_minor = t.amount_minor AND COALESCE(f.total, 0) <> t.commission_minor)",
    ),
    (
        "every refund has one balanced refund journal",
        "SELECT 'transaction ' || t.id || ' has ' || CAST((SELECT COUNT(*) FROM refunds f WHERE f.transaction_id = t.id) AS TEXT) || ' refunds but ' || CAST((SELECT COUNT(*) FROM journals j WHERE j.kind = 'refund' AND j.transaction_id = t.id) AS TEXT) || ' refund journals' AS detail
         FROM transactions t
         WHERE (SELECT COUNT(*) FROM refunds f WHERE f.transaction_id = t.id) <> (SELECT COUNT(*) FROM journals j WHERE j.kind = 'refund' AND j.transaction_id = t.id)",
    ),
    (
        "every refund announced exactly once in the outbox",
        "SELECT 'transaction ' || t.id || ' has ' || CAST((SELECT COUNT(*) FROM refunds f WHERE f.transaction_id = t.id) AS TEXT) || ' refunds but ' || CAST((SELECT COUNT(*) FROM events e WHERE e.kind = 'payment.refunded' AND e.transaction_id = t.id) AS TEXT) || ' payment.refunded events' AS detail
         FROM transactions t
         WHERE (SELECT COUNT(*) FROM refunds f WHERE f.transaction_id = t.id) <> (SELECT COUNT(*) FROM events e WHERE e.kind = 'payment.refunded' AND e.transaction_id = t.id)",
    ),
    (
        "each transaction is covered exactly by its redemptions (a released hold by none)",
        "SELECT 'transaction ' || t.id || ' amount ' || CAST(t.amount_minor AS TEXT) || ' redeemed ' || CAST(COALESCE(r.total, 0) AS TEXT) AS detail
         FROM transactions t LEFT JOIN (SELECT transaction_id, SUM(amount_minor) AS total FROM redemptions GROUP BY transaction_id) r
           ON r.transaction_id = t.id
         WHERE (t.hold_state IN ('canceled', 'expired') AND COALESCE(r.total, 0) <> 0)
            OR (COALESCE(t.hold_state, '') NOT IN ('canceled', 'expired') AND t.amount_minor <> COALESCE(r.total, 0))",
    ),
    (
        "held amounts equal the open holds, per transaction and voucher",
        // An authorized transaction holds what it took from each voucher; every other
        // transaction holds nothing.
        "SELECT 'transaction ' || t.id || ' voucher ' || CAST(h.voucher_id AS TEXT) || ' holds ' || CAST(h.total AS TEXT) AS detail
         FROM transactions t JOIN (SELECT j.transaction_id, p.voucher_id, SUM(p.amount_minor) AS total
                                   FROM postings p JOIN journals j ON j.id = p.journal_id
                                   WHERE p.account LIKE 'held:%' GROUP BY j.transaction_id, p.voucher_id) h
           ON h.transaction_id = t.id
         LEFT JOIN redemptions r ON r.transaction_id = t.id AND r.voucher_id = h.voucher_id
         WHERE h.total <> CASE WHEN t.hold_state = 'authorized' THEN COALESCE(r.amount_minor, 0) ELSE 0 END
         UNION ALL
         SELECT 'authorized transaction ' || t.id || ' holds ' || CAST(COALESCE(SUM(p.amount_minor), 0) AS TEXT) || ' of ' || CAST(t.amount_minor AS TEXT) AS detail
         FROM transactions t LEFT JOIN journals j ON j.transaction_id = t.id
         LEFT JOIN postings p ON p.journal_id = j.id AND p.account LIKE 'held:%'
         WHERE t.hold_state = 'authorized'
         GROUP BY t.id, t.amount_minor HAVING COALESCE(SUM(p.amount_minor), 0) <> t.amount_minor",
    ),
    (
        "a hold is consistent: authorized amount set exactly on holds, captured within it",
        "SELECT 'transaction ' || id || ' hold ' || COALESCE(hold_state, 'none') || ' authorized ' || COALESCE(CAST(authorized_minor AS TEXT), 'none') AS detail
         FROM transactions
         WHERE (hold_state IS NULL) <> (authorized_minor IS NULL)
            OR (hold_state IS NOT NULL AND (hold_expires_at IS NULL OR amount_minor > authorized_minor
                OR (hold_state <> 'captured' AND amount_minor <> authorized_minor)))
            OR (hold_state IS NOT NULL AND hold_state <> 'captured' AND refunded_minor <> 0)",
    ),
    (
        "commission plus net equals amount",
        "SELECT 'transaction ' || id || ' commission + net <> amount' AS detail
         FROM transactions WHERE commission_minor + net_minor <> amount_minor OR commission_minor < 0 OR net_minor < 0",
    ),
    (
        "at most one successful or authorized payment per order id",
        "SELECT 'order ' || order_id || ' of ' || merchant_id || ' paid ' || CAST(COUNT(*) AS TEXT) || ' times' AS detail
         FROM transactions WHERE hold_state IS NULL OR hold_state IN ('authorized', 'captured')
         GROUP BY merchant_id, mode, order_id HAVING COUNT(*) > 1",
    ),
    (
        "at most one stored response per idempotency key and operation",
        // Keys are scoped by operation: a capture and a cancel may share one.
        "SELECT 'idempotency key of ' || merchant_id || ' stored ' || CAST(COUNT(*) AS TEXT) || ' times for ' || operation AS detail
         FROM idempotency_keys GROUP BY merchant_id, mode, operation, key HAVING COUNT(*) > 1",
    ),
    (
        "every payment announced exactly once in the outbox",
        "SELECT 'transaction ' || t.id || ' has ' || CAST((SELECT COUNT(*) FROM events e WHERE e.kind = 'payment.succeeded' AND e.transaction_id = t.id) AS TEXT) || ' payment.succeeded events' AS detail
         FROM transactions t WHERE (SELECT COUNT(*) FROM events e WHERE e.kind = 'payment.succeeded' AND e.transaction_id = t.id) <> CASE WHEN t.hold_state IS NULL THEN 1 ELSE 0 END",
    ),
    (
        "every hold announced once when placed and once when it ended",
        "SELECT 'transaction ' || t.id || ' in hold state ' || t.hold_state || ' has the wrong hold events' AS detail
         FROM transactions t WHERE t.hold_state IS NOT NULL AND (
             (SELECT COUNT(*) FROM events e WHERE e.kind = 'payment.authorized' AND e.transaction_id = t.id) <> 1
          OR (SELECT COUNT(*) FROM events e WHERE e.kind IN ('payment.captured', 'payment.canceled', 'payment.expired') AND e.transaction_id = t.id)
             <> CASE WHEN t.hold_state = 'authorized' THEN 0 ELSE 1 END
          OR (t.hold_state <> 'authorized' AND NOT EXISTS (SELECT 1 FROM events e WHERE e.transaction_id = t.id AND e.kind = 'payment.' || t.hold_state)))",
    ),
];

/// Runs every invariant check; returns (check name, violations) pairs.
pub async fn audit(db: &impl ConnectionTrait) -> Result<Vec<(&'static str, Vec<String>)>, DbErr> {
    let backend = db.get_database_backend();
    let mut out = Vec::with_capacity(CHECKS.len());
    for (name, sql) in CHECKS {
        let rows = Violation::find_by_statement(Statement::from_string(backend, *sql))
            .all(db)
            .await?;
        out.push((*name, rows.into_iter().map(|v| v.detail).collect()));
    }
    Ok(out)
}
