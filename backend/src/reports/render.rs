//! The CSV form of each report (one header row, then one row per figure line), written
//! with the csv crate to any writer: stdout for the CLI, the response body for the API.
use std::io::Write;

use superpayment_core::Currency;
use time::OffsetDateTime;

use super::figures::{CommissionReport, LiabilityReport, SettlementReport};
use crate::{money::format_minor, timestamps::rfc3339};

fn instant(t: Option<OffsetDateTime>) -> String {
    t.map(rfc3339).unwrap_or_default()
}

fn amounts<const N: usize>(values: [i64; N], currency: Currency) -> anyhow::Result<Vec<String>> {
    values.iter().map(|v| format_minor(*v, currency)).collect()
}

/// The liability report as CSV.
pub fn liability_csv(report: &LiabilityReport, out: impl Write) -> anyhow::Result<()> {
    let mut w = csv::Writer::from_writer(out);
    w.write_record([
        "mode",
        "as_of",
        "currency",
        "issued",
        "redeemed",
        "refunded",
        "breakage",
        "other",
        "outstanding",
        "held",
    ])?;
    for (currency, f) in &report.currencies {
        let mut row = vec![
            report.mode.as_str().to_owned(),
            instant(report.as_of),
            currency.code().to_owned(),
        ];
        row.extend(amounts(
            [
                f.issued,
                f.redeemed,
                f.refunded,
                f.breakage,
                f.other,
                f.outstanding,
                f.held,
            ],
            *currency,
        )?);
        w.write_record(&row)?;
    }
    w.flush()?;
    Ok(())
}

/// The commission report as CSV.
pub fn commission_csv(report: &CommissionReport, out: impl Write) -> anyhow::Result<()> {
    let mut w = csv::Writer::from_writer(out);
    w.write_record([
        "mode",
        "from",
        "to",
        "merchant_id",
        "currency",
        "sales_count",
        "sales",
        "refunds",
        "commission_earned",
        "commission_returned",
        "commission_net",
    ])?;
    for (merchant, currency, f) in &report.lines {
        let mut row = vec![
            report.mode.as_str().to_owned(),
            instant(report.period.from),
            instant(report.period.to),
            merchant.clone(),
            currency.code().to_owned(),
            f.sales_count.to_string(),
        ];
        row.extend(amounts(
            [f.sales, f.refunds, f.earned, f.returned, f.net],
            *currency,
        )?);
        w.write_record(&row)?;
    }
    w.flush()?;
    Ok(())
}

/// The settlement report as CSV: one row per statement, or with `lines` one row per
/// journal of each statement.
pub fn settlement_csv(
    report: &SettlementReport,
    lines: bool,
    out: impl Write,
) -> anyhow::Result<()> {
    let mut w = csv::Writer::from_writer(out);
    if lines {
        w.write_record([
            "mode",
            "merchant_id",
            "currency",
            "journal_id",
            "at",
            "kind",
            "journal_kind",
            "transaction_id",
            "order_id",
            "payout_id",
            "reference",
            "gross",
            "commission",
            "payable",
        ])?;
        for s in &report.statements {
            for l in &s.lines {
                let mut row = vec![
                    report.mode.as_str().to_owned(),
                    s.merchant_id.clone(),
                    s.currency.code().to_owned(),
                    l.journal_id.to_string(),
                    rfc3339(l.at),
                    l.kind.as_str().to_owned(),
                    l.journal_kind.clone(),
                    l.transaction_id.clone().unwrap_or_default(),
                    l.order_id.clone().unwrap_or_default(),
                    l.payout_id.clone().unwrap_or_default(),
                    l.reference.clone().unwrap_or_default(),
                ];
                row.extend(amounts([l.gross, l.commission, l.payable], s.currency)?);
                w.write_record(&row)?;
            }
        }
    } else {
        w.write_record([
            "mode",
            "from",
            "to",
            "merchant_id",
            "currency",
            "opening_payable",
            "sales",
            "commission",
            "refunds",
            "commission_returned",
            "payouts",
            "other",
            "closing_payable",
        ])?;
        for s in &report.statements {
            let f = &s.figures;
            let mut row = vec![
                report.mode.as_str().to_owned(),
                instant(report.period.from),
                instant(report.period.to),
                s.merchant_id.clone(),
                s.currency.code().to_owned(),
            ];
            row.extend(amounts(
                [
                    f.opening,
                    f.sales,
                    f.commission,
                    f.refunds,
                    f.commission_returned,
                    f.payouts,
                    f.other,
                    f.closing,
                ],
                s.currency,
            )?);
            w.write_record(&row)?;
        }
    }
    w.flush()?;
    Ok(())
}
