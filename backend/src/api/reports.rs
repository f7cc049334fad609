//! /api/admin/reports, /api/admin/payouts and /api/admin/breakage: the operator's reports
//! (JSON or CSV), payouts and breakage recognition, ADMIN_TOKEN only.
use poem_openapi::{
    param::{Header, Query},
    payload::{Binary, Json},
    ApiResponse, Object, OpenApi, ResponseContent,
};
use superpayment_core::Currency;

use super::{
    admin::check_admin,
    amount::DecimalString,
    error::{ApiError, ErrorBody},
    security::AdminToken,
    ApiTags,
};
use crate::{
    error_responses,
    money::format_minor,
    reports::{
        self,
        figures::{self, CommissionReport, LiabilityReport, SettlementReport},
        payouts::{self, PayoutOutcome, PayoutReceipt, PayoutRequest},
        render, Format, ReportParams,
    },
    state::AppState,
    timestamps::rfc3339,
};

/// Operator reports and payouts.
pub struct ReportsApi {
    state: AppState,
}

impl ReportsApi {
    pub fn new(state: AppState) -> Self {
        Self { state }
    }
}

fn money(minor: i64, currency: Currency) -> anyhow::Result<String> {
    format_minor(minor, currency)
}

/// Outstanding voucher liability in one currency: `outstanding = issued - redeemed +
/// refunded - breakage + other`. Amounts are decimal strings in the currency.
#[derive(Object)]
pub struct LiabilityCurrency {
    pub currency: String,
    /// Value put into circulation (issuance, top-ups).
    pub issued: String,
    /// Paid to merchants and the platform by sales.
    pub redeemed: String,
    /// Given back to the vouchers by refunds.
    pub refunded: String,
    /// Forfeited remainders of single-use vouchers (net of what refunds reinstated), and
    /// the balances of expired vouchers once recognised (`superpayment admin
    /// recognise-breakage`).
    pub breakage: String,
    /// Moved to (positive) or from the vouchers by anything else.
    pub other: String,
    /// Still owed to voucher holders: their balances plus open holds.
    pub outstanding: String,
    /// Of which held for authorized payments.
    pub held: String,
}

/// The liability report.
#[derive(Object)]
pub struct LiabilityBody {
    pub mode: String,
    /// The instant the figures stand at (exclusive); absent = now.
    #[oai(skip_serializing_if_is_none)]
    pub as_of: Option<String>,
    pub currencies: Vec<LiabilityCurrency>,
}

/// One merchant's commission in one currency over the period.
#[derive(Object)]
pub struct CommissionLine {
    pub merchant_id: String,
    pub currency: String,
    /// Number of sales (payments captured at once, and captures).
    pub sales_count: u64,
    /// Gross sales.
    pub sales: String,
    /// Gross refunds.
    pub refunds: String,
    /// Commission on the sales.
    pub commission_earned: String,
    /// Commission given back by refunds.
    pub commission_returned: String,
    /// `commission_earned - commission_returned`.
    pub commission_net: String,
}

/// The commission report.
#[derive(Object)]
pub struct CommissionBody {
    pub mode: String,
    #[oai(skip_serializing_if_is_none)]
    pub from: Option<String>,
    #[oai(skip_serializing_if_is_none)]
    pub to: Option<String>,
    pub merchants: Vec<CommissionLine>,
}

/// One journal of a statement.
#[derive(Object)]
pub struct StatementLineBody {
    pub journal_id: i64,
    pub at: String,
    /// `sale`, `refund`, `payout` or `other`.
    pub kind: String,
    /// The ledger journal's kind (`payment`, `capture`, `refund`, `payout` ...).
    pub journal_kind: String,
    #[oai(skip_serializing_if_is_none)]
    pub transaction_id: Option<String>,
    #[oai(skip_serializing_if_is_none)]
    pub order_id: Option<String>,
    #[oai(skip_serializing_if_is_none)]
    pub payout_id: Option<String>,
    /// A payout's bank reference.
    #[oai(skip_serializing_if_is_none)]
    pub reference: Option<String>,
    /// What the vouchers paid (sale) or got back (refund); a payout's amount.
    pub gross: String,
    /// Commission charged (positive) or returned (negative).
    pub commission: String,
    /// Change of the payable.
    pub payable: String,
}

/// What a merchant was owed in one currency over the period: `closing_payable =
/// opening_payable + sales - commission - refunds + commission_returned - payouts + other`.
#[derive(Object)]
pub struct StatementBody {
    pub merchant_id: String,
    pub currency: String,
    pub opening_payable: String,
    pub sales: String,
    pub commission: String,
    pub refunds: String,
    pub commission_returned: String,
    pub payouts: String,
    pub other: String,
    pub closing_payable: String,
    /// Per journal, oldest first (with `lines=true`).
    #[oai(skip_serializing_if_is_none)]
    pub lines: Option<Vec<StatementLineBody>>,
}

/// The settlement report.
#[derive(Object)]
pub struct SettlementBody {
    pub mode: String,
    #[oai(skip_serializing_if_is_none)]
    pub from: Option<String>,
    #[oai(skip_serializing_if_is_none)]
    pub to: Option<String>,
    pub statements: Vec<StatementBody>,
}

/// The liability report as JSON.
pub fn liability_body(r: &LiabilityReport) -> anyhow::Result<LiabilityBody> {
    Ok(LiabilityBody {
        mode: r.mode.as_str().into(),
        as_of: r.as_of.map(rfc3339),
        currencies: r
            .currencies
            .iter()
            .map(|(c, f)| {
                Ok(LiabilityCurrency {
                    currency: c.code().into(),
                    issued: money(f.issued, *c)?,
                    redeemed: money(f.redeemed, *c)?,
                    refunded: money(f.refunded, *c)?,
                    breakage: money(f.breakage, *c)?,
                    other: money(f.other, *c)?,
                    outstanding: money(f.outstanding, *c)?,
                    held: money(f.held, *c)?,
                })
            })
            .collect::<anyhow::Result<_>>()?,
    })
}

/// The commission report as JSON.
pub fn commission_body(r: &CommissionReport) -> anyhow::Result<CommissionBody> {
    Ok(CommissionBody {
        mode: r.mode.as_str().into(),
        from: r.period.from.map(rfc3339),
        to: r.period.to.map(rfc3339),
        merchants: r
            .lines
            .iter()
            .map(|(m, c, f)| {
                Ok(CommissionLine {
                    merchant_id: m.clone(),
                    currency: c.code().into(),
                    sales_count: f.sales_count,
                    sales: money(f.sales, *c)?,
                    refunds: money(f.refunds, *c)?,
                    commission_earned: money(f.earned, *c)?,
                    commission_returned: money(f.returned, *c)?,
                    commission_net: money(f.net, *c)?,
                })
            })
            .collect::<anyhow::Result<_>>()?,
    })
}

/// The settlement report as JSON; `lines` adds each statement's journals.
pub fn settlement_body(r: &SettlementReport, lines: bool) -> anyhow::Result<SettlementBody> {
    let statement = |s: &figures::Statement| -> anyhow::Result<StatementBody> {
        let (f, c) = (&s.figures, s.currency);
        Ok(StatementBody {
            merchant_id: s.merchant_id.clone(),
            currency: c.code().into(),
            opening_payable: money(f.opening, c)?,
            sales: money(f.sales, c)?,
            commission: money(f.commission, c)?,
            refunds: money(f.refunds, c)?,
            commission_returned: money(f.commission_returned, c)?,
            payouts: money(f.payouts, c)?,
            other: money(f.other, c)?,
            closing_payable: money(f.closing, c)?,
            lines: if lines {
                Some(
                    s.lines
                        .iter()
                        .map(|l| {
                            Ok(StatementLineBody {
                                journal_id: l.journal_id,
                                at: rfc3339(l.at),
                                kind: l.kind.as_str().into(),
                                journal_kind: l.journal_kind.clone(),
                                transaction_id: l.transaction_id.clone(),
                                order_id: l.order_id.clone(),
                                payout_id: l.payout_id.clone(),
                                reference: l.reference.clone(),
                                gross: money(l.gross, c)?,
                                commission: money(l.commission, c)?,
                                payable: money(l.payable, c)?,
                            })
                        })
                        .collect::<anyhow::Result<_>>()?,
                )
            } else {
                None
            },
        })
    };
    Ok(SettlementBody {
        mode: r.mode.as_str().into(),
        from: r.period.from.map(rfc3339),
        to: r.period.to.map(rfc3339),
        statements: r
            .statements
            .iter()
            .map(statement)
            .collect::<anyhow::Result<_>>()?,
    })
}

/// A report as JSON (`format=json`, the default) or CSV (`format=csv`).
#[derive(ResponseContent)]
pub enum ReportContent<T: poem_openapi::types::ToJSON + Send + Sync> {
    Json(Json<T>),
    #[oai(content_type = "text/csv; charset=utf-8")]
    Csv(Binary<Vec<u8>>),
}

#[derive(ApiResponse)]
pub enum LiabilityResponse {
    /// The report, as JSON or CSV (`format`).
    #[oai(status = 200)]
    Ok(ReportContent<LiabilityBody>),
    /// Invalid `to`, `mode` or `format`.
    #[oai(status = 400)]
    BadRequest(Json<ErrorBody>),
    /// Missing or wrong admin token.
    #[oai(status = 401)]
    Unauthorized(Json<ErrorBody>),
    /// Too many requests from this client address (`rate_limited`, see the
    /// `RateLimit-Policy` and `RateLimit` headers), or too many wrong tokens from it
    /// (`too_many_failed_authentications`); wait `Retry-After` seconds.
    #[oai(status = 429)]
    RateLimited(
        Json<ErrorBody>,
        #[oai(header = "Retry-After")] u64,
        #[oai(header = "RateLimit-Policy")] Option<String>,
        #[oai(header = "RateLimit")] Option<String>,
    ),
    /// Unexpected error; quote `request_id`.
    #[oai(status = 500)]
    Internal(Json<ErrorBody>),
    /// The database cannot be reached right now (`service_unavailable`); retry after
    /// `Retry-After` seconds.
    #[oai(status = 503)]
    ServiceUnavailable(Json<ErrorBody>, #[oai(header = "Retry-After")] u64),
}
error_responses!(LiabilityResponse { 400 => BadRequest, 401 => Unauthorized, 429 => RateLimited });

#[derive(ApiResponse)]
pub enum CommissionResponse {
    /// The report, as JSON or CSV (`format`).
    #[oai(status = 200)]
    Ok(ReportContent<CommissionBody>),
    /// Invalid `from`, `to` (or an empty period), `mode` or `format`.
    #[oai(status = 400)]
    BadRequest(Json<ErrorBody>),
    /// Missing or wrong admin token.
    #[oai(status = 401)]
    Unauthorized(Json<ErrorBody>),
    /// Too many requests from this client address (`rate_limited`, see the
    /// `RateLimit-Policy` and `RateLimit` headers), or too many wrong tokens from it
    /// (`too_many_failed_authentications`); wait `Retry-After` seconds.
    #[oai(status = 429)]
    RateLimited(
        Json<ErrorBody>,
        #[oai(header = "Retry-After")] u64,
        #[oai(header = "RateLimit-Policy")] Option<String>,
        #[oai(header = "RateLimit")] Option<String>,
    ),
    /// Unexpected error; quote `request_id`.
    #[oai(status = 500)]
    Internal(Json<ErrorBody>),
    /// The database cannot be reached right now (`service_unavailable`); retry after
    /// `Retry-After` seconds.
    #[oai(status = 503)]
    ServiceUnavailable(Json<ErrorBody>, #[oai(header = "Retry-After")] u64),
}
error_responses!(CommissionResponse { 400 => BadRequest, 401 => Unauthorized, 429 => RateLimited });

#[derive(ApiResponse)]
pub enum SettlementResponse {
    /// The statements, as JSON or CSV (`format`; with `lines=true` the CSV has one row
    /// per journal).
    #[oai(status = 200)]
    Ok(ReportContent<SettlementBody>),
    /// Invalid `from`, `to` (or an empty period), `mode` or `format`.
    #[oai(status = 400)]
    BadRequest(Json<ErrorBody>),
    /// Missing or wrong admin token.
    #[oai(status = 401)]
    Unauthorized(Json<ErrorBody>),
    /// Too many requests from this client address (`rate_limited`, see the
    /// `RateLimit-Policy` and `RateLimit` headers), or too many wrong tokens from it
    /// (`too_many_failed_authentications`); wait `Retry-After` seconds.
    #[oai(status = 429)]
    RateLimited(
        Json<ErrorBody>,
        #[oai(header = "Retry-After")] u64,
        #[oai(header = "RateLimit-Policy")] Option<String>,
        #[oai(header = "RateLimit")] Option<String>,
    ),
    /// Unexpected error; quote `request_id`.
    #[oai(status = 500)]
    Internal(Json<ErrorBody>),
    /// The database cannot be reached right now (`service_unavailable`); retry after
    /// `Retry-After` seconds.
    #[oai(status = 503)]
    ServiceUnavailable(Json<ErrorBody>, #[oai(header = "Retry-After")] u64),
}
error_responses!(SettlementResponse { 400 => BadRequest, 401 => Unauthorized, 429 => RateLimited });

/// A payout to record.
#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct CreatePayout {
    pub merchant_id: String,
    /// `test` (default) or `live`.
    pub mode: Option<String>,
    pub currency: String,
    /// Decimal string, at most what the merchant is owed, e.g. `"10.00"`.
    pub amount: DecimalString,
    /// The bank transfer's reference (1 to 140 characters).
    pub reference: String,
}

/// A recorded payout.
#[derive(Object)]
pub struct PayoutBody {
    /// `po_...`.
    pub id: String,
    pub merchant_id: String,
    pub mode: String,
    pub currency: String,
    pub amount: String,
    pub reference: String,
    /// What the merchant was owed before and after this payout.
    pub payable_before: String,
    pub payable_after: String,
    pub created_at: String,
}

impl From<PayoutReceipt> for PayoutBody {
    fn from(r: PayoutReceipt) -> Self {
        PayoutBody {
            id: r.id,
            merchant_id: r.merchant_id,
            mode: r.mode,
            currency: r.currency,
            amount: r.amount,
            reference: r.reference,
            payable_before: r.payable_before,
            payable_after: r.payable_after,
            created_at: r.created_at,
        }
    }
}

#[derive(ApiResponse)]
pub enum CreatePayoutResponse {
    /// Recorded. A replay of an earlier request carries `Idempotent-Replayed: true`.
    #[oai(status = 201)]
    Created(
        Json<PayoutBody>,
        #[oai(header = "Idempotent-Replayed")] Option<String>,
    ),
    /// Invalid field, more than the merchant is owed (`payout_exceeds_payable`), a malformed
    /// body, or an Idempotency-Key reused with another body.
    #[oai(status = 400)]
    BadRequest(Json<ErrorBody>),
    /// Missing or wrong admin token.
    #[oai(status = 401)]
    Unauthorized(Json<ErrorBody>),
    /// No such merchant.
    #[oai(status = 404)]
    NotFound(Json<ErrorBody>),
    /// A request with this Idempotency-Key is still in flight.
    #[oai(status = 409)]
    Conflict(Json<ErrorBody>),
    /// Too many requests from this client address (`rate_limited`, see the
    /// `RateLimit-Policy` and `RateLimit` headers), or too many wrong tokens from it
    /// (`too_many_failed_authentications`); wait `Retry-After` seconds.
    #[oai(status = 429)]
    RateLimited(
        Json<ErrorBody>,
        #[oai(header = "Retry-After")] u64,
        #[oai(header = "RateLimit-Policy")] Option<String>,
        #[oai(header = "RateLimit")] Option<String>,
    ),
    /// Unexpected error; quote `request_id`.
    #[oai(status = 500)]
    Internal(Json<ErrorBody>),
    /// The database cannot be reached right now (`service_unavailable`); retry after
    /// `Retry-After` seconds.
    #[oai(status = 503)]
    ServiceUnavailable(Json<ErrorBody>, #[oai(header = "Retry-After")] u64),
}
error_responses!(CreatePayoutResponse { 400 => BadRequest, 401 => Unauthorized, 404 => NotFound, 409 => Conflict, 429 => RateLimited });

/// Which mode's expired vouchers to take.
#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct RecogniseBreakage {
    /// `test` (default) or `live`.
    pub mode: Option<String>,
}

/// What a breakage run recognised, per currency.
#[derive(Object)]
pub struct BreakageBody {
    /// Vouchers emptied by this run.
    pub vouchers: u64,
    pub currencies: Vec<BreakageCurrency>,
}

/// Breakage recognised in one currency.
#[derive(Object)]
pub struct BreakageCurrency {
    pub currency: String,
    pub amount: String,
}

#[derive(ApiResponse)]
pub enum RecogniseBreakageResponse {
    /// Recognised (nothing when no expired voucher holds money).
    #[oai(status = 200)]
    Ok(Json<BreakageBody>),
    /// Invalid mode, or a malformed body.
    #[oai(status = 400)]
    BadRequest(Json<ErrorBody>),
    /// Missing or wrong admin token.
    #[oai(status = 401)]
    Unauthorized(Json<ErrorBody>),
    /// Too many requests from this client address (`rate_limited`, see the
    /// `RateLimit-Policy` and `RateLimit` headers), or too many wrong tokens from it
    /// (`too_many_failed_authentications`); wait `Retry-After` seconds.
    #[oai(status = 429)]
    RateLimited(
        Json<ErrorBody>,
        #[oai(header = "Retry-After")] u64,
        #[oai(header = "RateLimit-Policy")] Option<String>,
        #[oai(header = "RateLimit")] Option<String>,
    ),
    /// Unexpected error; quote `request_id`.
    #[oai(status = 500)]
    Internal(Json<ErrorBody>),
    /// The database cannot be reached right now (`service_unavailable`); retry after
    /// `Retry-After` seconds.
    #[oai(status = 503)]
    ServiceUnavailable(Json<ErrorBody>, #[oai(header = "Retry-After")] u64),
}
error_responses!(RecogniseBreakageResponse { 400 => BadRequest, 401 => Unauthorized, 429 => RateLimited });

fn csv_bytes(
    write: impl FnOnce(&mut Vec<u8>) -> anyhow::Result<()>,
) -> Result<Binary<Vec<u8>>, ApiError> {
    let mut out = Vec::new();
    write(&mut out)?;
    Ok(Binary(out))
}

#[OpenApi(prefix_path = "/admin", tag = "ApiTags::Admin")]
impl ReportsApi {
    /// Outstanding voucher liability
    ///
    /// Per currency, as of `to` (exclusive; absent = now): what the vouchers still owe
    /// their holders, and how it came about (issued, redeemed, refunded, breakage).
    /// Computed from the ledger's postings.
    #[oai(
        path = "/reports/liability",
        method = "get",
        operation_id = "adminLiabilityReport"
    )]
    async fn liability(
        &self,
        auth: AdminToken,
        /// A UTC date (its midnight) or an RFC 3339 timestamp; absent = now.
        to: Query<Option<String>>,
        /// `test` (default) or `live`.
        mode: Query<Option<String>>,
        /// `json` (default) or `csv`.
        format: Query<Option<String>>,
    ) -> LiabilityResponse {
        async {
            check_admin(&self.state, &auth)?;
            let p = ReportParams::parse(
                None,
                to.0.as_deref(),
                mode.0.as_deref(),
                format.0.as_deref(),
            )?;
            let report =
                figures::liability(reports::reader(&self.state), p.mode, p.period.to).await?;
            Ok(LiabilityResponse::Ok(match p.format {
                Format::Json => ReportContent::Json(Json(liability_body(&report)?)),
                Format::Csv => {
                    ReportContent::Csv(csv_bytes(|out| render::liability_csv(&report, out))?)
                }
            }))
        }
        .await
        .unwrap_or_else(|e: ApiError| e.into())
    }

    /// Commission earned per merchant
    ///
    /// Per merchant and currency over [`from`, `to`): commission on the sales, commission
    /// returned by refunds, and the net. Computed from the ledger's postings.
    #[oai(
        path = "/reports/commission",
        method = "get",
        operation_id = "adminCommissionReport"
    )]
    async fn commission(
        &self,
        auth: AdminToken,
        /// Start (inclusive): a UTC date or an RFC 3339 timestamp; absent = the beginning.
        from: Query<Option<String>>,
        /// End (exclusive): a UTC date or an RFC 3339 timestamp; absent = now.
        to: Query<Option<String>>,
        /// Only this merchant.
        merchant_id: Query<Option<String>>,
        /// `test` (default) or `live`.
        mode: Query<Option<String>>,
        /// `json` (default) or `csv`.
        format: Query<Option<String>>,
    ) -> CommissionResponse {
        async {
            check_admin(&self.state, &auth)?;
            let p = ReportParams::parse(
                from.0.as_deref(),
                to.0.as_deref(),
                mode.0.as_deref(),
                format.0.as_deref(),
            )?;
            let report = figures::commission(
                reports::reader(&self.state),
                p.mode,
                p.period,
                merchant_id.0.as_deref(),
            )
            .await?;
            Ok(CommissionResponse::Ok(match p.format {
                Format::Json => ReportContent::Json(Json(commission_body(&report)?)),
                Format::Csv => {
                    ReportContent::Csv(csv_bytes(|out| render::commission_csv(&report, out))?)
                }
            }))
        }
        .await
        .unwrap_or_else(|e: ApiError| e.into())
    }

    /// Merchant settlement statements
    ///
    /// Per merchant and currency over [`from`, `to`): the payable at the start, sales,
    /// commission, refunds (and the commission they returned), payouts, and the payable at
    /// the end; with `lines=true`, every journal behind them. Computed from the ledger's
    /// postings.
    #[oai(
        path = "/reports/settlement",
        method = "get",
        operation_id = "adminSettlementReport"
    )]
    #[allow(clippy::too_many_arguments)]
    async fn settlement(
        &self,
        auth: AdminToken,
        /// Start (inclusive): a UTC date or an RFC 3339 timestamp; absent = the beginning.
        from: Query<Option<String>>,
        /// End (exclusive): a UTC date or an RFC 3339 timestamp; absent = now.
        to: Query<Option<String>>,
        /// Only this merchant.
        merchant_id: Query<Option<String>>,
        /// `test` (default) or `live`.
        mode: Query<Option<String>>,
        /// `json` (default) or `csv`.
        format: Query<Option<String>>,
        /// Include every journal of each statement.
        lines: Query<Option<bool>>,
    ) -> SettlementResponse {
        async {
            check_admin(&self.state, &auth)?;
            let p = ReportParams::parse(
                from.0.as_deref(),
                to.0.as_deref(),
                mode.0.as_deref(),
                format.0.as_deref(),
            )?;
            let lines = lines.0.unwrap_or(false);
            let report = figures::settlement(
                reports::reader(&self.state),
                p.mode,
                p.period,
                merchant_id.0.as_deref(),
                lines,
            )
            .await?;
            Ok(SettlementResponse::Ok(match p.format {
                Format::Json => ReportContent::Json(Json(settlement_body(&report, lines)?)),
                Format::Csv => ReportContent::Csv(csv_bytes(|out| {
                    render::settlement_csv(&report, lines, out)
                })?),
            }))
        }
        .await
        .unwrap_or_else(|e: ApiError| e.into())
    }

    /// Recognise breakage of expired vouchers
    ///
    /// Moves what active vouchers expired by now still hold from the voucher liability to
    /// breakage, one ledger journal per currency. Running it again takes nothing twice.
    #[oai(
        path = "/breakage",
        method = "post",
        operation_id = "adminRecogniseBreakage"
    )]
    async fn recognise_breakage(
        &self,
        auth: AdminToken,
        body: Json<RecogniseBreakage>,
    ) -> RecogniseBreakageResponse {
        async {
            check_admin(&self.state, &auth)?;
            let mode = ReportParams::parse(None, None, body.0.mode.as_deref(), None)?.mode;
            let done = reports::breakage::recognise_expired(
                &self.state.db,
                mode,
                time::OffsetDateTime::now_utc(),
            )
            .await?;
            Ok(RecogniseBreakageResponse::Ok(Json(BreakageBody {
                vouchers: done.vouchers,
                currencies: done
                    .amounts
                    .iter()
                    .map(|(c, minor)| {
                        Ok(BreakageCurrency {
                            currency: c.code().into(),
                            amount: money(*minor, *c)?,
                        })
                    })
                    .collect::<anyhow::Result<_>>()?,
            })))
        }
        .await
        .unwrap_or_else(|e: ApiError| e.into())
    }

    /// Record a payout to a merchant
    ///
    /// Moves `amount` from the merchant's payable to the payouts clearing account in one
    /// ledger journal and records it with the bank reference; refused above what the
    /// merchant is owed. Send an `Idempotency-Key`.
    #[oai(path = "/payouts", method = "post", operation_id = "adminCreatePayout")]
    async fn create_payout(
        &self,
        auth: AdminToken,
        /// A unique key per payout (e.g. a UUID); replays the first answer for 24 h.
        #[oai(name = "Idempotency-Key")]
        idempotency_key: Header<Option<String>>,
        body: Json<CreatePayout>,
    ) -> CreatePayoutResponse {
        async {
            check_admin(&self.state, &auth)?;
            let b = body.0;
            let req = PayoutRequest {
                merchant_id: b.merchant_id,
                mode: b.mode,
                currency: b.currency,
                amount: b.amount.0,
                reference: b.reference,
                idempotency_key: idempotency_key.0,
            };
            Ok(match payouts::record(&self.state, req).await? {
                PayoutOutcome::Recorded(r) => CreatePayoutResponse::Created(Json(r.into()), None),
                PayoutOutcome::Replayed(r) => {
                    CreatePayoutResponse::Created(Json(r.into()), Some("true".into()))
                }
            })
        }
        .await
        .unwrap_or_else(|e: ApiError| e.into())
    }
}
