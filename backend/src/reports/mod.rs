//! The operator's reports (outstanding liability, commission, settlement statements) and
//! payouts, every figure computed from the ledger's postings.
//!
//! # Layout
//! - [`figures`]: the three reports, built from two reads of the postings
//!   ([`crate::store::reports`]): account totals, and each journal's movement on the
//!   merchant side, classified once ([`figures::FlowKind`]).
//! - [`render`]: the CSV form of each report (the JSON form is the API's).
//! - [`payouts`]: a payout of a merchant's payable, recorded as a ledger journal.
//! - [`breakage`]: the balances of expired vouchers recognised as breakage.
//! - [`audit`]: every report compared with the payment, refund, payout and voucher tables,
//!   read independently of the postings.
//!
//! Periods are half-open UTC ranges [from, to); the liability is as of `to`. Reports read
//! through [`reader`] only: the primary (why: see there).
pub mod audit;
pub mod breakage;
pub mod figures;
pub mod payouts;
pub mod render;

use std::str::FromStr;

use sea_orm::DatabaseConnection;
use superpayment_core::{FieldError, Mode};
use time::{format_description::well_known::Rfc3339, Date, OffsetDateTime, Time};

use crate::state::AppState;

/// The connection the reports read from: the primary, also with a read replica. They are
/// money figures that an operator reconciles and records payouts from, and the audit
/// compares them with the payment tables read at the same moment; a statement missing the
/// replica's last seconds would disagree with both (docs/operations.md, Reports).
pub fn reader(state: &AppState) -> &DatabaseConnection {
    &state.db
}

/// Why a report was refused.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// A parameter is not valid (`FieldError` says which and why).
    #[error("invalid report request")]
    Invalid(FieldError),
    /// Anything unexpected.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

crate::internal_on_db_error!(ReportError);

impl ReportError {
    /// Each way a report request is refused, for the documentation.
    pub fn examples() -> impl Iterator<Item = ReportError> {
        [
            ReportParams::parse(Some("2026-13-01"), None, None, None).err(),
            ReportParams::parse(Some("2026-12-02"), Some("2026-12-01"), None, None).err(),
            ReportParams::parse(None, None, Some("production"), None).err(),
            ReportParams::parse(None, None, None, Some("xml")).err(),
        ]
        .into_iter()
        .flatten()
    }
}

/// A half-open UTC range [from, to); either end may be open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Period {
    pub from: Option<OffsetDateTime>,
    pub to: Option<OffsetDateTime>,
}

/// How a report is written out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Csv,
}

/// The parameters every report takes, parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportParams {
    pub period: Period,
    pub mode: Mode,
    pub format: Format,
}

const INVALID_INSTANT: &str =
    "Expected a UTC date (YYYY-MM-DD, meaning its midnight) or an RFC 3339 timestamp.";
const EMPTY_PERIOD: &str = "from must be before to (the period is [from, to)).";

impl ReportParams {
    /// Parses `from`/`to` (a date, meaning its midnight UTC, or an RFC 3339 timestamp),
    /// `mode` (`test` unless given) and `format` (`json` unless given).
    pub fn parse(
        from: Option<&str>,
        to: Option<&str>,
        mode: Option<&str>,
        format: Option<&str>,
    ) -> Result<Self, ReportError> {
        let from = from.map(|s| parse_instant("from", s)).transpose()?;
        let to = to.map(|s| parse_instant("to", s)).transpose()?;
        if let (Some(f), Some(t)) = (from, to) {
            if f >= t {
                return Err(invalid("to", "invalid_period", EMPTY_PERIOD));
            }
        }
        let mode = mode.map_or(Ok(Mode::Test), |m| {
            Mode::from_str(m)
                .map_err(|_| invalid("mode", "invalid_mode", "mode must be `test` or `live`."))
        })?;
        let format = match format {
            None | Some("json") => Format::Json,
            Some("csv") => Format::Csv,
            Some(_) => {
                return Err(invalid(
                    "format",
                    "invalid_format",
                    "format must be `json` or `csv`.",
                ))
            }
        };
        Ok(ReportParams {
            period: Period { from, to },
            mode,
            format,
        })
    }
}

fn invalid(field: &str, code: &'static str, message: &str) -> ReportError {
    ReportError::Invalid(FieldError::new(field, code, message))
}

/// A date (its midnight UTC) or an RFC 3339 timestamp.
pub fn parse_instant(field: &str, s: &str) -> Result<OffsetDateTime, ReportError> {
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        return Ok(t);
    }
    Date::parse(s, time::macros::format_description!("[year]-[month]-[day]"))
        .map(|d| d.with_time(Time::MIDNIGHT).assume_utc())
        .map_err(|_| invalid(field, "invalid_date", INVALID_INSTANT))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_date_means_its_midnight_utc_and_a_timestamp_is_kept() {
        let p = ReportParams::parse(
            Some("2026-12-01"),
            Some("2026-12-02T10:00:00+01:00"),
            Some("live"),
            Some("csv"),
        )
        .unwrap();
        assert_eq!(
            p.period.from,
            Some(time::macros::datetime!(2026-12-01 00:00 UTC))
        );
        assert_eq!(
            p.period.to,
            Some(time::macros::datetime!(2026-12-02 09:00 UTC))
        );
        assert_eq!((p.mode, p.format), (Mode::Live, Format::Csv));
    }

    #[test]
    fn an_empty_or_reversed_period_is_refused() {
        for (from, to) in [("2026-12-02", "2026-12-02"), ("2026-12-02", "2026-12-01")] {
            let err = ReportParams::parse(Some(from), Some(to), None, None).unwrap_err();
            assert!(matches!(err, ReportError::Invalid(e) if e.code == "invalid_period"));
        }
    }

    #[test]
    fn every_refusal_has_an_example() {
        let codes: Vec<&str> = ReportError::examples()
            .map(|e| match e {
                ReportError::Invalid(f) => f.code,
                ReportError::Internal(_) => "internal",
            })
            .collect();
        assert_eq!(
            codes,
            [
                "invalid_date",
                "invalid_period",
                "invalid_mode",
                "invalid_format"
            ]
        );
    }
}
