//! Transactions: search with filters and cursor pagination, the CSV export of every
//! filtered row, one transaction in detail, and refunds through the merchant API's own
//! refund function.
use minijinja::context;
use poem::{
    handler,
    http::{header, StatusCode},
    web::{cookie::CookieJar, Data, Form, Path, Query},
    Body, IntoResponse, Response,
};
use sea_orm::DatabaseConnection;
use serde::{Deserialize, Serialize};
use superpayment_core::{Currency, Money};
use time::{Date, Time};

use super::{
    frame, html, reads, report, see_other, signed_in, signed_in_for, with_freshness, PageError,
};
use crate::{
    accounts::{Action, SignedIn},
    money::format_minor,
    payments::TransactionStatus,
    refunds::{self, RefundError, RefundRequest},
    state::AppState,
    store::{self, entities::transaction, transactions::TransactionFilter},
    timestamps::rfc3339,
    transactions::{self as txns, TransactionsError},
};

/// Rows per page of the list.
const PAGE: u64 = 50;
/// Rows read per query while exporting: what the export holds in memory at once.
const EXPORT_BATCH: u64 = 500;

/// The list's query string, as typed in its form.
#[derive(Debug, Default, Clone, Deserialize, Serialize)]
pub(crate) struct ListQuery {
    #[serde(default, skip_serializing_if = "is_blank")]
    q: Option<String>,
    #[serde(default, skip_serializing_if = "is_blank")]
    status: Option<String>,
    #[serde(default, skip_serializing_if = "is_blank")]
    from: Option<String>,
    #[serde(default, skip_serializing_if = "is_blank")]
    to: Option<String>,
    #[serde(default, skip_serializing_if = "is_blank")]
    currency: Option<String>,
    #[serde(default, skip_serializing_if = "is_blank")]
    min: Option<String>,
    #[serde(default, skip_serializing_if = "is_blank")]
    max: Option<String>,
    #[serde(default, skip_serializing_if = "is_blank")]
    after: Option<String>,
}

fn is_blank(v: &Option<String>) -> bool {
    v.as_deref().is_none_or(|s| s.trim().is_empty())
}

fn given(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

fn parse_date(field: &str, v: &str) -> Result<Date, String> {
    Date::parse(v, time::macros::format_description!("[year]-[month]-[day]"))
        .map_err(|_| format!("{field} must be a date such as 2026-12-31."))
}

impl ListQuery {
    /// The store's filter, each field checked; the message says what to fix.
    fn filter(&self) -> Result<TransactionFilter, String> {
        let mut f = TransactionFilter::default();
        if let Some(q) = given(&self.q) {
            if q.starts_with("txn_") {
                f.id = Some(q.to_owned());
            } else {
                f.order_id = Some(q.to_owned());
            }
        }
        if let Some(s) = given(&self.status) {
            f.status = Some(TransactionStatus::parse(s).ok_or("Unknown status.")?);
        }
        if let Some(d) = given(&self.from) {
            f.created_gte = Some(
                parse_date("From", d)?
                    .with_time(Time::MIDNIGHT)
                    .assume_utc(),
            );
        }
        if let Some(d) = given(&self.to) {
            // Through the whole of that day.
            let next = parse_date("To", d)?
                .next_day()
                .ok_or("To is out of range.")?;
            f.created_lt = Some(next.with_time(Time::MIDNIGHT).assume_utc());
        }
        if let Some(c) = given(&self.currency) {
            f.currency = Some(
                c.to_ascii_uppercase()
                    .parse::<Currency>()
                    .map_err(|_| "Unknown currency.".to_owned())?,
            );
        }
        for (raw, field) in [(&self.min, "Min amount"), (&self.max, "Max amount")] {
            if let Some(a) = given(raw) {
                let currency = f
                    .currency
                    .ok_or_else(|| format!("{field} needs a currency."))?;
                let minor = Money::parse(a, currency)
                    .map_err(|_| format!("{field} is not an amount in {currency}."))?
                    .minor();
                if field == "Min amount" {
                    f.amount_gte = Some(minor);
                } else {
                    f.amount_lte = Some(minor);
                }
            }
        }
        f.starting_after = given(&self.after).map(str::to_owned);
        Ok(f)
    }

    /// `?a=b&...` of the non-empty fields ("" when none).
    fn query_string(&self) -> String {
        match serde_urlencoded::to_string(self) {
            Ok(s) if !s.is_empty() => format!("?{s}"),
            _ => String::new(),
        }
    }
}

#[derive(Serialize)]
struct Row {
    id: String,
    created_at: String,
    order_id: String,
    status: &'static str,
    currency: &'static str,
    amount: String,
    refunded: String,
    net: String,
    commission: String,
}

fn row_of(t: &transaction::Model) -> anyhow::Result<Row> {
    let c = t.currency.0;
    Ok(Row {
        id: t.id.clone(),
        created_at: rfc3339(t.created_at),
        order_id: t.order_id.clone(),
        status: TransactionStatus::of(t).as_str(),
        currency: c.code(),
        amount: format_minor(t.amount_minor, c)?,
        refunded: format_minor(t.refunded_minor, c)?,
        net: format_minor(t.net_minor, c)?,
        commission: format_minor(t.commission_minor, c)?,
    })
}

const STATUSES: [TransactionStatus; 7] = [
    TransactionStatus::Succeeded,
    TransactionStatus::PartiallyRefunded,
    TransactionStatus::Refunded,
    TransactionStatus::Authorized,
    TransactionStatus::Captured,
    TransactionStatus::Canceled,
    TransactionStatus::Expired,
];

fn internal(e: TransactionsError) -> PageError {
    PageError::Internal(e.into())
}

#[handler]
pub(crate) async fn list(
    state: Data<&AppState>,
    jar: &CookieJar,
    Query(q): Query<ListQuery>,
) -> Result<Response, PageError> {
    let s = signed_in(&state, jar).await?;
    let read = reads(&state, jar).await;
    let statuses: Vec<&str> = STATUSES.iter().map(|s| s.as_str()).collect();
    let (rows, next, error, status) = match q.filter() {
        Ok(filter) => {
            let (records, more) = txns::list_in(
                &read.db,
                &s.user.merchant_id,
                s.mode.as_str(),
                &filter,
                PAGE,
            )
            .await
            .map_err(internal)?;
            let rows = records
                .iter()
                .map(|r| row_of(&r.view.row))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let next = match (more, rows.last()) {
                (true, Some(last)) => Some(
                    ListQuery {
                        after: Some(last.id.clone()),
                        ..q.clone()
                    }
                    .query_string(),
                ),
                _ => None,
            };
            (rows, next, None, StatusCode::OK)
        }
        Err(msg) => (Vec::new(), None, Some(msg), StatusCode::BAD_REQUEST),
    };
    let export_query = ListQuery {
        after: None,
        ..q.clone()
    }
    .query_string();
    let body = frame::render(
        "dashboard/transactions.html",
        frame::report_frame(
            &s,
            "transactions",
            &read.freshness,
            context! { rows, next, error, statuses, f => q, query => export_query },
        ),
    )?;
    Ok(report(status, body, &read.freshness))
}

/// One row of the export.
#[derive(Serialize)]
struct CsvRow<'a> {
    id: &'a str,
    created_at: String,
    order_id: &'a str,
    status: &'static str,
    currency: &'static str,
    amount: String,
    commission: String,
    net: String,
    refunded: String,
}

/// Every row `filter` selects as CSV, read [`EXPORT_BATCH`] rows at a time by keyset and
/// sent as each batch is written: memory stays bounded whatever the number of rows.
#[handler]
pub(crate) async fn export(
    state: Data<&AppState>,
    jar: &CookieJar,
    Query(q): Query<ListQuery>,
) -> Result<Response, PageError> {
    let s = signed_in(&state, jar).await?;
    let Ok(filter) = q.filter() else {
        return Ok(see_other(&format!(
            "/dashboard/transactions{}",
            q.query_string()
        )));
    };
    // One connection for the whole export: every batch from the same server.
    let read = reads(&state, jar).await;
    let freshness = read.freshness;
    let db = read.db;
    let merchant = s.user.merchant_id.clone();
    let mode = s.mode.as_str();
    tracing::info!(user_id = %s.user.id, merchant_id = %merchant, "transactions exported");
    // (next filter, header written, finished)
    let stream = futures::stream::unfold((Some(filter), false), move |(filter, header)| {
        let db = db.clone();
        let merchant = merchant.clone();
        async move {
            let filter = filter?;
            let batch = match store::transactions::list(&db, &merchant, mode, &filter, EXPORT_BATCH)
                .await
            {
                Ok(b) => b,
                Err(e) => {
                    tracing::error!(error = %e, "export failed mid-way");
                    return Some((Err(std::io::Error::other("export failed")), (None, true)));
                }
            };
            let mut w = csv::WriterBuilder::new()
                .has_headers(!header)
                .from_writer(Vec::with_capacity(64 * 1024));
            for t in &batch {
                let c = t.currency.0;
                let fmt = |m: i64| format_minor(m, c).unwrap_or_default();
                let r = CsvRow {
                    id: &t.id,
                    created_at: rfc3339(t.created_at),
                    order_id: &t.order_id,
                    status: TransactionStatus::of(t).as_str(),
                    currency: c.code(),
                    amount: fmt(t.amount_minor),
                    commission: fmt(t.commission_minor),
                    net: fmt(t.net_minor),
                    refunded: fmt(t.refunded_minor),
                };
                if let Err(e) = w.serialize(r) {
                    return Some((Err(std::io::Error::other(e)), (None, true)));
                }
            }
            let bytes = match w.into_inner() {
                Ok(b) => b,
                Err(e) => return Some((Err(std::io::Error::other(e.to_string())), (None, true))),
            };
            let next = (batch.len() as u64 == EXPORT_BATCH).then(|| TransactionFilter {
                starting_after: batch.last().map(|t| t.id.clone()),
                ..filter
            });
            if batch.is_empty() && header {
                return None;
            }
            // An empty first batch still sends the header line.
            let bytes = if batch.is_empty() {
                b"id,created_at,order_id,status,currency,amount,commission,net,refunded\n".to_vec()
            } else {
                bytes
            };
            Some((Ok(bytes), (next, true)))
        }
    });
    Ok(with_freshness(
        Body::from_bytes_stream(stream)
            .into_response()
            .with_content_type("text/csv; charset=utf-8")
            .with_header(
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"transactions-{mode}.csv\""),
            )
            .with_header(header::CACHE_CONTROL, "no-store")
            .into_response(),
        &freshness,
    ))
}

/// One of the session's transactions read from `db`: [`reads`] for the detail page, the
/// primary for the refund's confirmation and answer (they decide what may be refunded).
async fn find(
    db: &DatabaseConnection,
    s: &SignedIn,
    id: &str,
) -> Result<txns::TransactionRecord, PageError> {
    match txns::retrieve_in(db, &s.user.merchant_id, s.mode.as_str(), id).await {
        Ok(r) => Ok(r),
        Err(TransactionsError::NotFound) => Err(PageError::NotFound(Box::new(s.clone()))),
        Err(e) => Err(internal(e)),
    }
}

/// A transaction as its page shows it.
#[derive(Serialize)]
struct DetailView {
    #[serde(flatten)]
    row: Row,
    vouchers: Vec<minijinja::Value>,
    refunds: Vec<minijinja::Value>,
    remaining: String,
    refundable: bool,
}

#[derive(Deserialize)]
pub(crate) struct DetailQuery {
    #[serde(default)]
    refunded: Option<String>,
}

#[handler]
pub(crate) async fn detail(
    state: Data<&AppState>,
    jar: &CookieJar,
    Path(id): Path<String>,
    Query(dq): Query<DetailQuery>,
) -> Result<Response, PageError> {
    let s = signed_in(&state, jar).await?;
    let read = reads(&state, jar).await;
    let db = &read.db;
    let record = find(db, &s, &id).await?;
    let t = &record.view.row;
    let c = t.currency.0;
    let status = TransactionStatus::of(t);
    let mut postings = Vec::new();
    for (j, lines) in store::dashboard::postings_of(db, &t.id).await? {
        let jc: Currency = j.currency.parse().unwrap_or(c);
        let lines = lines
            .iter()
            .map(|p| {
                Ok(context! { account => &p.account, amount => format_minor(p.amount_minor, jc)? })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        postings.push(context! { id => j.id, kind => j.kind, lines });
    }
    let events =
        store::dashboard::events_of_transaction(db, &t.merchant_id, t.mode.0.as_str(), &t.id)
            .await?;
    let event_ids: Vec<String> = events.iter().map(|e| e.id.clone()).collect();
    let deliveries = store::webhooks::deliveries_of(db, &event_ids).await?;
    let all_attempts = store::webhooks::attempts_of_events(db, &event_ids).await?;
    let mut event_views = Vec::new();
    for e in &events {
        let attempts = all_attempts.iter().filter(|a| a.event_id == e.id);
        let status = deliveries
            .iter()
            .rev()
            .find(|d| d.event_id == e.id)
            .map(|d| d.status.as_str())
            .unwrap_or("no endpoint");
        let attempts: Vec<_> = attempts
            .map(|a| {
                context! {
                    number => a.attempt_number,
                    started_at => rfc3339(a.started_at),
                    outcome => a.outcome.as_str(),
                    status_code => a.status_code,
                    duration_ms => a.duration_ms,
                    excerpt => a.response_excerpt.as_deref().map(|x| x.chars().take(200).collect::<String>()),
                }
            })
            .collect();
        event_views.push(context! { id => &e.id, kind => e.kind.as_str(), status, attempts });
    }
    let remaining = t.amount_minor.checked_sub(t.refunded_minor).unwrap_or(0);
    let refunds = record
        .refunds
        .iter()
        .map(|r| {
            Ok(context! {
                id => &r.refund.id,
                created_at => rfc3339(r.refund.created_at),
                amount => format_minor(r.refund.amount_minor, c)?,
                reason => &r.refund.reason,
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let vouchers = record
        .view
        .vouchers
        .iter()
        .map(|(last4, amount)| Ok(context! { last4, amount => format_minor(*amount, c)? }))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let row = row_of(t)?;
    let refundable = remaining > 0
        && matches!(
            status,
            TransactionStatus::Succeeded
                | TransactionStatus::Captured
                | TransactionStatus::PartiallyRefunded
        );
    // Only a refund of this transaction is announced: the query string is the visitor's.
    let notice = dq
        .refunded
        .filter(|r| record.refunds.iter().any(|x| x.refund.id == *r))
        .map(|r| format!("Refund {r} made."));
    let body = frame::render(
        "dashboard/transaction.html",
        frame::report_frame(
            &s,
            "transactions",
            &read.freshness,
            context! {
                t => DetailView {
                    row,
                    vouchers,
                    refunds,
                    remaining: format_minor(remaining, c)?,
                    refundable,
                },
                postings,
                events => event_views,
                can_refund => s.can(Action::Refund),
                notice,
            },
        ),
    )?;
    Ok(report(StatusCode::OK, body, &read.freshness))
}

#[derive(Deserialize)]
pub(crate) struct RefundQuery {
    #[serde(default)]
    amount: Option<String>,
    #[serde(default)]
    reason: Option<String>,
}

fn confirm_page(
    s: &SignedIn,
    status: StatusCode,
    t: &transaction::Model,
    amount: Option<String>,
    amount_field: &str,
    reason: &str,
    error: Option<String>,
) -> Result<Response, PageError> {
    let body = frame::render(
        "dashboard/refund_confirm.html",
        frame::frame(
            s,
            "transactions",
            context! {
                id => &t.id,
                order_id => &t.order_id,
                currency => t.currency.0.code(),
                amount,
                amount_field,
                reason,
                error,
                // One key per confirmation page: submitting it twice refunds once.
                idempotency_key => uuid::Uuid::new_v4().to_string(),
            },
        ),
    )?;
    Ok(html(status, body))
}

/// The confirmation step (a page of its own, so that it works without JavaScript).
#[handler]
pub(crate) async fn confirm_refund(
    state: Data<&AppState>,
    jar: &CookieJar,
    Path(id): Path<String>,
    Query(q): Query<RefundQuery>,
) -> Result<Response, PageError> {
    let s = signed_in(&state, jar).await?;
    if !s.can(Action::Refund) {
        return Err(PageError::Forbidden(Box::new(s)));
    }
    let record = find(&state.db, &s, &id).await?;
    let t = &record.view.row;
    let c = t.currency.0;
    let reason = q.reason.unwrap_or_default();
    let field = given(&q.amount).unwrap_or("").to_owned();
    let amount = if field.is_empty() {
        Ok(t.amount_minor.saturating_sub(t.refunded_minor))
    } else {
        Money::parse(&field, c).map(|m| m.minor())
    };
    match amount {
        Ok(minor) => confirm_page(
            &s,
            StatusCode::OK,
            t,
            Some(format_minor(minor, c)?),
            &field,
            &reason,
            None,
        ),
        Err(_) => confirm_page(
            &s,
            StatusCode::BAD_REQUEST,
            t,
            None,
            "",
            "",
            Some(format!("{field:?} is not an amount in {c}.")),
        ),
    }
}

#[derive(Deserialize)]
pub(crate) struct RefundForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    idempotency_key: String,
    #[serde(default)]
    amount: String,
    #[serde(default)]
    reason: String,
}

/// Makes the refund with the merchant API's refund function, under the confirmation
/// page's idempotency key.
#[handler]
pub(crate) async fn refund(
    state: Data<&AppState>,
    jar: &CookieJar,
    Path(id): Path<String>,
    Form(form): Form<RefundForm>,
) -> Result<Response, PageError> {
    let s = signed_in_for(&state, jar, &form.csrf, Action::Refund).await?;
    let caller = s.as_caller(&state).await?;
    let nonempty = |v: &str| Some(v.trim().to_owned()).filter(|v| !v.is_empty());
    let req = RefundRequest {
        transaction_id: id.clone(),
        amount: nonempty(&form.amount),
        reason: nonempty(&form.reason),
        idempotency_key: nonempty(&form.idempotency_key),
    };
    match refunds::refund(&state, &caller, req).await {
        Ok(refunds::RefundOutcome::Created(r) | refunds::RefundOutcome::Replayed(r)) => {
            tracing::info!(user_id = %s.user.id, refund_id = %r.id, "refund made from the back-office");
            Ok(see_other(&format!(
                "/dashboard/transactions/{id}?refunded={}",
                r.id
            )))
        }
        Err(RefundError::TransactionNotFound) => Err(PageError::NotFound(Box::new(s))),
        Err(RefundError::Internal(e)) => Err(PageError::Internal(e)),
        Err(e) => {
            let status = match &e {
                RefundError::Idempotency(_) => StatusCode::CONFLICT,
                _ => StatusCode::BAD_REQUEST,
            };
            let message = match &e {
                RefundError::ExceedsRemaining {
                    remaining,
                    currency,
                } => {
                    format!("At most {remaining} {currency} is left to refund.")
                }
                RefundError::FullyRefunded => "The transaction is already fully refunded.".into(),
                RefundError::InvalidAmount(_) => {
                    "That is not an amount of the transaction's currency.".into()
                }
                RefundError::VoucherBlocked { last4 } => {
                    format!("Voucher •••• {last4} is blocked; it cannot be credited.")
                }
                other => format!("The refund was refused: {other}."),
            };
            let record = find(&state.db, &s, &id).await?;
            confirm_page(&s, status, &record.view.row, None, "", "", Some(message))
        }
    }
}
