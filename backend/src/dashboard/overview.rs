//! The overview: today's and this month's figures per currency and a 30-day chart.
use std::collections::BTreeMap;

use minijinja::context;
use plotters::prelude::*;
use poem::{
    handler,
    http::StatusCode,
    web::{cookie::CookieJar, Data},
    Response,
};
use sea_orm::DatabaseConnection;
use serde::Serialize;
use superpayment_core::Currency;
use time::{Date, Duration, OffsetDateTime, Time};

use super::{frame, reads, report, signed_in, PageError};
use crate::{money::format_minor, state::AppState, store};

/// Days in the chart, today included.
pub const CHART_DAYS: i64 = 30;

/// Sums of one currency over a period, in minor units.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Totals {
    pub count: i64,
    pub volume: i64,
    pub commission: i64,
    pub net: i64,
    pub refund_count: i64,
    pub refunded: i64,
}

impl Totals {
    fn add_sales(&mut self, d: &store::dashboard::DaySums) -> anyhow::Result<()> {
        let add = |a: i64, b: i64| {
            a.checked_add(b)
                .ok_or_else(|| anyhow::anyhow!("sum out of range"))
        };
        self.count = add(self.count, d.n)?;
        self.volume = add(self.volume, d.amount)?;
        self.commission = add(self.commission, d.commission)?;
        self.net = add(self.net, d.net)?;
        Ok(())
    }

    fn add_refunds(&mut self, d: &store::dashboard::DaySums) -> anyhow::Result<()> {
        self.refund_count = self
            .refund_count
            .checked_add(d.n)
            .ok_or_else(|| anyhow::anyhow!("sum out of range"))?;
        self.refunded = self
            .refunded
            .checked_add(d.amount)
            .ok_or_else(|| anyhow::anyhow!("sum out of range"))?;
        Ok(())
    }
}

/// One currency's figures: today, this month (UTC) and each of the last [`CHART_DAYS`] days.
#[derive(Debug, Clone)]
pub struct CurrencyFigures {
    pub currency: Currency,
    pub today: Totals,
    pub month: Totals,
    /// Volume per day, oldest first, [`CHART_DAYS`] entries.
    pub daily_volume: Vec<i64>,
}

fn day_str(d: Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

/// The figures of a merchant in one mode at `now`, per currency (sorted by code).
pub async fn figures(
    db: &DatabaseConnection,
    merchant_id: &str,
    mode: &str,
    now: OffsetDateTime,
) -> anyhow::Result<Vec<CurrencyFigures>> {
    let today = now.date();
    let month_start = today.replace_day(1)?;
    let chart_start = today - Duration::days(CHART_DAYS - 1);
    let since = month_start
        .min(chart_start)
        .with_time(Time::MIDNIGHT)
        .assume_utc();
    let sales = store::dashboard::sales_by_day(db, merchant_id, mode, since).await?;
    let refunds = store::dashboard::refunds_by_day(db, merchant_id, mode, since).await?;
    let today_s = day_str(today);
    let month_s = day_str(month_start);
    let chart_days: Vec<String> = (0..CHART_DAYS)
        .map(|i| day_str(chart_start + Duration::days(i)))
        .collect();
    let mut out: BTreeMap<String, CurrencyFigures> = BTreeMap::new();
    for (rows, is_sale) in [(&sales, true), (&refunds, false)] {
        for d in rows {
            let currency: Currency = d
                .currency
                .parse()
                .map_err(|_| anyhow::anyhow!("stored currency {:?}", d.currency))?;
            let f = out
                .entry(d.currency.clone())
                .or_insert_with(|| CurrencyFigures {
                    currency,
                    today: Totals::default(),
                    month: Totals::default(),
                    daily_volume: vec![0; CHART_DAYS as usize],
                });
            let mut periods = Vec::new();
            if d.day == today_s {
                periods.push(&mut f.today);
            }
            if d.day >= month_s {
                periods.push(&mut f.month);
            }
            for p in periods {
                if is_sale {
                    p.add_sales(d)?;
                } else {
                    p.add_refunds(d)?;
                }
            }
            if is_sale {
                if let Some(i) = chart_days.iter().position(|c| *c == d.day) {
                    f.daily_volume[i] = d.amount;
                }
            }
        }
    }
    Ok(out.into_values().collect())
}

/// The daily volumes as an SVG line chart (drawn by plotters; the labels are the page's,
/// in its own font, so the SVG needs none).
pub fn chart_svg(daily: &[i64]) -> anyhow::Result<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (720, 180)).into_drawing_area();
        root.fill(&WHITE)?;
        let top = daily.iter().copied().max().unwrap_or(0).max(1);
        let mut chart = ChartBuilder::on(&root)
            .margin(12)
            .build_cartesian_2d(0..(daily.len().max(2) as i64 - 1), 0..top)?;
        // Horizontal guides at quarters of the highest day.
        for q in 0..=4 {
            let y = top * q / 4;
            chart.draw_series(LineSeries::new(
                [(0, y), (daily.len() as i64 - 1, y)],
                RGBColor(227, 230, 235).stroke_width(1),
            ))?;
        }
        chart.draw_series(AreaSeries::new(
            daily.iter().enumerate().map(|(i, v)| (i as i64, *v)),
            0,
            RGBColor(46, 160, 67).mix(0.15),
        ))?;
        chart.draw_series(LineSeries::new(
            daily.iter().enumerate().map(|(i, v)| (i as i64, *v)),
            RGBColor(46, 160, 67).stroke_width(2),
        ))?;
        chart.draw_series(
            daily
                .iter()
                .enumerate()
                .map(|(i, v)| Circle::new((i as i64, *v), 2, RGBColor(29, 35, 48).filled())),
        )?;
        root.present()?;
    }
    Ok(svg)
}

#[derive(Serialize)]
struct PeriodView {
    name: &'static str,
    label: &'static str,
    volume: String,
    count: i64,
    commission: String,
    net: String,
    refund_count: i64,
    refunded: String,
}

fn period(
    name: &'static str,
    label: &'static str,
    t: Totals,
    c: Currency,
) -> anyhow::Result<PeriodView> {
    Ok(PeriodView {
        name,
        label,
        volume: format_minor(t.volume, c)?,
        count: t.count,
        commission: format_minor(t.commission, c)?,
        net: format_minor(t.net, c)?,
        refund_count: t.refund_count,
        refunded: format_minor(t.refunded, c)?,
    })
}

#[handler]
pub(crate) async fn page(state: Data<&AppState>, jar: &CookieJar) -> Result<Response, PageError> {
    let s = signed_in(&state, jar).await?;
    let read = reads(&state, jar).await;
    let now = OffsetDateTime::now_utc();
    let figures = figures(&read.db, &s.user.merchant_id, s.mode.as_str(), now).await?;
    let mut currencies = Vec::new();
    for f in figures {
        let peak = f.daily_volume.iter().copied().max().unwrap_or(0);
        currencies.push(context! {
            currency => f.currency.code(),
            today => period("today", "Today", f.today, f.currency)?,
            month => period("month", "This month", f.month, f.currency)?,
            chart => chart_svg(&f.daily_volume)?,
            peak => format_minor(peak, f.currency)?,
        });
    }
    let body = frame::render(
        "dashboard/overview.html",
        frame::report_frame(
            &s,
            "overview",
            &read.freshness,
            context! {
                currencies,
                chart_from => day_str(now.date() - Duration::days(CHART_DAYS - 1)),
                chart_to => day_str(now.date()),
            },
        ),
    )?;
    Ok(report(StatusCode::OK, body, &read.freshness))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_chart_is_an_svg_with_one_point_per_day() {
        let daily: Vec<i64> = (0..30).map(|i| i * 100).collect();
        let svg = super::chart_svg(&daily).unwrap();
        assert!(svg.starts_with("<svg"));
        assert_eq!(svg.matches("<circle").count(), 30);
    }
}
