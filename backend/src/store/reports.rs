//! The ledger reads behind the operator reports and their audit: account totals and each
//! journal's movement on the merchant side (payables, commission, payouts).
//!
//! Every figure of the reports is built from these two reads of the postings; the audit
//! compares them with [`business_totals`] and [`voucher_totals`], read from the payment,
//! refund, payout and voucher tables instead.
use sea_orm::{ConnectionTrait, DbBackend, DbErr, FromQueryResult, Statement, Value};
use time::OffsetDateTime;

use super::ledger::AccountClass;

/// A statement under construction whose placeholders are numbered as values are bound.
struct Sql {
    backend: DbBackend,
    text: String,
    values: Vec<Value>,
}

impl Sql {
    fn new(db: &impl ConnectionTrait) -> Self {
        Sql {
            backend: db.get_database_backend(),
            text: String::new(),
            values: Vec::new(),
        }
    }

    /// Binds `v` and returns its placeholder.
    fn bind(&mut self, v: impl Into<Value>) -> String {
        self.values.push(v.into());
        match self.backend {
            DbBackend::Postgres => format!("${}", self.values.len()),
            _ => "?".to_owned(),
        }
    }

    fn push(&mut self, s: &str) -> &mut Self {
        self.text.push_str(s);
        self
    }

    fn statement(self) -> Statement {
        Statement::from_sql_and_values(self.backend, self.text, self.values)
    }
}

/// The condition "posting `p` is on an account of `mode` in its journal's currency".
fn in_mode(sql: &mut Sql, mode: &str) -> String {
    let pattern = sql.bind(format!("%:{mode}:"));
    format!("p.account LIKE ({pattern} || j.currency)")
}

/// The condition "posting `p` is on an account of `class`".
fn of_class(sql: &mut Sql, class: AccountClass) -> String {
    let (a, b) = (sql.bind(class.prefix()), sql.bind(class.prefix()));
    format!("substr(p.account, 1, length({a})) = {b}")
}

/// The sum of one account's postings.
#[derive(Debug, Clone, FromQueryResult)]
pub struct AccountTotal {
    pub account: String,
    pub total: i64,
}

/// Each account's total in `mode` over the journals written before `before` (all when
/// None), optionally only the accounts whose name starts with `prefix`.
pub async fn account_totals(
    db: &impl ConnectionTrait,
    mode: &str,
    before: Option<OffsetDateTime>,
    prefix: Option<&str>,
) -> Result<Vec<AccountTotal>, DbErr> {
    let mut sql = Sql::new(db);
    let mode_cond = in_mode(&mut sql, mode);
    sql.push(&format!(
        "SELECT p.account AS account, CAST(SUM(p.amount_minor) AS BIGINT) AS total
         FROM postings p JOIN journals j ON j.id = p.journal_id
         WHERE {mode_cond}"
    ));
    if let Some(before) = before {
        let b = sql.bind(before);
        sql.push(&format!(" AND j.created_at < {b}"));
    }
    if let Some(prefix) = prefix {
        let a = sql.bind(prefix);
        let b = sql.bind(prefix);
        sql.push(&format!(" AND substr(p.account, 1, length({a})) = {b}"));
    }
    sql.push(" GROUP BY p.account ORDER BY p.account");
    AccountTotal::find_by_statement(sql.statement())
        .all(db)
        .await
}

/// One journal's movement on the merchant side of the ledger.
#[derive(Debug, Clone, FromQueryResult)]
pub struct JournalFlow {
    pub journal_id: i64,
    pub kind: String,
    pub transaction_id: Option<String>,
    pub currency: String,
    pub created_at: OffsetDateTime,
    /// The merchant of the journal's transaction, or of its payout.
    pub merchant_id: Option<String>,
    pub order_id: Option<String>,
    pub payout_id: Option<String>,
    pub reference: Option<String>,
    /// The payable account the journal moved, if any.
    pub payable_account: Option<String>,
    /// Change of the merchant's payable.
    pub payable: i64,
    /// Change of the platform's commission.
    pub commission: i64,
    /// Change of the payouts clearing account.
    pub paid_out: i64,
}

/// Every journal in `mode` written in [`from`, `to`) that moved a payable, the commission
/// or the payouts clearing account, oldest first; with `merchant_id`, only that merchant's
/// (its transactions' journals and the journals that moved its payable).
pub async fn journal_flows(
    db: &impl ConnectionTrait,
    mode: &str,
    from: Option<OffsetDateTime>,
    to: Option<OffsetDateTime>,
    merchant_id: Option<&str>,
) -> Result<Vec<JournalFlow>, DbErr> {
    let mut sql = Sql::new(db);
    let payable = of_class(&mut sql, AccountClass::MerchantPayable);
    let payable_sum = of_class(&mut sql, AccountClass::MerchantPayable);
    let commission = of_class(&mut sql, AccountClass::PlatformCommission);
    let clearing = of_class(&mut sql, AccountClass::PayoutsClearing);
    let mode_cond = in_mode(&mut sql, mode);
    let any = [
        of_class(&mut sql, AccountClass::MerchantPayable),
        of_class(&mut sql, AccountClass::PlatformCommission),
        of_class(&mut sql, AccountClass::PayoutsClearing),
    ]
    .join(" OR ");
    sql.push(&format!(
        "SELECT j.id AS journal_id, j.kind AS kind, j.transaction_id AS transaction_id,
                j.currency AS currency, j.created_at AS created_at,
                COALESCE(t.merchant_id, po.merchant_id) AS merchant_id, t.order_id AS order_id,
                po.id AS payout_id, po.reference AS reference,
                MAX(CASE WHEN {payable} THEN p.account END) AS payable_account,
                CAST(SUM(CASE WHEN {payable_sum} THEN p.amount_minor ELSE 0 END) AS BIGINT) AS payable,
                CAST(SUM(CASE WHEN {commission} THEN p.amount_minor ELSE 0 END) AS BIGINT) AS commission,
                CAST(SUM(CASE WHEN {clearing} THEN p.amount_minor ELSE 0 END) AS BIGINT) AS paid_out
         FROM journals j JOIN postings p ON p.journal_id = j.id
         LEFT JOIN transactions t ON t.id = j.transaction_id
         LEFT JOIN payouts po ON po.journal_id = j.id
         WHERE {mode_cond} AND ({any})"
    ));
    if let Some(from) = from {
        let f = sql.bind(from);
        sql.push(&format!(" AND j.created_at >= {f}"));
    }
    if let Some(to) = to {
        let t = sql.bind(to);
        sql.push(&format!(" AND j.created_at < {t}"));
    }
    if let Some(m) = merchant_id {
        let by_txn = sql.bind(m);
        let by_payout = sql.bind(m);
        let prefix_a = sql.bind(format!("{}{m}:", AccountClass::MerchantPayable.prefix()));
        let prefix_b = sql.bind(format!("{}{m}:", AccountClass::MerchantPayable.prefix()));
        sql.push(&format!(
            " AND (t.merchant_id = {by_txn} OR po.merchant_id = {by_payout}
                   OR j.id IN (SELECT q.journal_id FROM postings q
                               WHERE substr(q.account, 1, length({prefix_a})) = {prefix_b}))"
        ));
    }
    sql.push(
        " GROUP BY j.id, j.kind, j.transaction_id, j.currency, j.created_at, t.merchant_id,
                   po.merchant_id, t.order_id, po.id, po.reference
          ORDER BY j.created_at, j.id",
    );
    JournalFlow::find_by_statement(sql.statement())
        .all(db)
        .await
}

/// Totals of one merchant's business in one mode and currency, from the payment, refund and
/// payout tables (not the ledger).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BusinessTotals {
    /// Captured sales: commission and what the merchant is owed.
    pub sales_commission: i64,
    pub sales_net: i64,
    /// Refunds: commission returned and what the merchant gave back.
    pub refund_commission: i64,
    pub refund_net: i64,
    pub paid_out: i64,
}

/// How one query's row adds to the totals.
type Apply = fn(&mut BusinessTotals, &BusinessRow);

#[derive(FromQueryResult)]
struct BusinessRow {
    merchant_id: String,
    mode: String,
    currency: String,
    commission: i64,
    net: i64,
}

/// [`BusinessTotals`] per (merchant, mode, currency).
pub async fn business_totals(
    db: &impl ConnectionTrait,
) -> Result<std::collections::BTreeMap<(String, String, String), BusinessTotals>, DbErr> {
    let backend = db.get_database_backend();
    let queries: [(&str, Apply); 3] = [
        (
            // A hold that was released is not a sale; one captured is a sale of what it
            // captured (its amount, commission and net are the captured ones).
            "SELECT merchant_id, mode, currency, CAST(SUM(commission_minor) AS BIGINT) AS commission,
                    CAST(SUM(net_minor) AS BIGINT) AS net
             FROM transactions WHERE hold_state IS NULL OR hold_state = 'captured'
             GROUP BY merchant_id, mode, currency",
            |t, r| {
                t.sales_commission = r.commission;
                t.sales_net = r.net;
            },
        ),
        (
            "SELECT merchant_id, mode, currency, CAST(SUM(commission_minor) AS BIGINT) AS commission,
                    CAST(SUM(net_minor) AS BIGINT) AS net
             FROM refunds GROUP BY merchant_id, mode, currency",
            |t, r| {
                t.refund_commission = r.commission;
                t.refund_net = r.net;
            },
        ),
        (
            "SELECT merchant_id, mode, currency, CAST(0 AS BIGINT) AS commission,
                    CAST(SUM(amount_minor) AS BIGINT) AS net
             FROM payouts GROUP BY merchant_id, mode, currency",
            |t, r| t.paid_out = r.net,
        ),
    ];
    let mut out = std::collections::BTreeMap::new();
    for (sql, apply) in queries {
        for row in BusinessRow::find_by_statement(Statement::from_string(backend, sql))
            .all(db)
            .await?
        {
            let entry = out
                .entry((
                    row.merchant_id.clone(),
                    row.mode.clone(),
                    row.currency.clone(),
                ))
                .or_insert_with(BusinessTotals::default);
            apply(entry, &row);
        }
    }
    Ok(out)
}

/// What the vouchers of one mode and currency hold, and what open holds keep aside.
#[derive(Debug, Clone, FromQueryResult)]
pub struct VoucherTotal {
    pub mode: String,
    pub currency: String,
    pub total: i64,
}

/// Sum of voucher balances per (mode, currency), plus the amounts of authorized holds,
/// from the voucher and transaction tables (not the ledger).
pub async fn voucher_totals(db: &impl ConnectionTrait) -> Result<Vec<VoucherTotal>, DbErr> {
    VoucherTotal::find_by_statement(Statement::from_string(
        db.get_database_backend(),
        "SELECT mode, currency, CAST(SUM(total) AS BIGINT) AS total FROM (
             SELECT mode, currency, balance_minor AS total FROM vouchers
             UNION ALL
             SELECT mode, currency, amount_minor AS total FROM transactions WHERE hold_state = 'authorized'
         ) x GROUP BY mode, currency ORDER BY mode, currency",
    ))
    .all(db)
    .await
}
