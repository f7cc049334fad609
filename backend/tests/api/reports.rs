//! Operator reports and payouts: payments, partial refunds and captured holds in two
//! merchants and both modes across two periods; the liability, commission and settlement
//! reports equal what this test computes from the transactions it made; payouts clear the
//! payable and are refused above it; CSV and JSON agree; the CLI prints the same; the
//! audit is clean.
// Amounts in cents are written `euros_cents` (100_00 is 100.00 EUR).
#![allow(clippy::inconsistent_digit_grouping)]
use std::collections::BTreeMap;

use serde_json::{json, Value};
use time::{format_description::well_known::Rfc3339, OffsetDateTime};

use crate::helpers::{body, TestApp, ADMIN_TOKEN};

/// What the test did, to compute the expected figures from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Sale,
    Refund,
    Payout,
}

#[derive(Debug, Clone)]
struct Made {
    merchant: String,
    mode: &'static str,
    period: u8,
    kind: Kind,
    gross: i64,
    commission: i64,
}

/// `gross × bps / 10000`, for amounts this test picks so that it is exact (no rounding
/// rule is needed to know the answer).
fn commission(gross: i64, bps: i64) -> i64 {
    assert_eq!(
        gross * bps % 10_000,
        0,
        "pick amounts with an exact commission"
    );
    gross * bps / 10_000
}

fn eur(minor: i64) -> String {
    let sign = if minor < 0 { "-" } else { "" };
    format!("{sign}{}.{:02}", minor.abs() / 100, minor.abs() % 100)
}

/// A report's amount in minor units (EUR).
fn minor(v: &Value) -> i64 {
    v.as_str().unwrap().replace('.', "").parse().unwrap()
}

fn now() -> String {
    OffsetDateTime::now_utc().format(&Rfc3339).unwrap()
}

async fn report(app: &TestApp, which: &str, query: &[(&str, &str)]) -> reqwest::Response {
    app.client
        .get(app.url(&format!("/api/admin/reports/{which}")))
        .bearer_auth(ADMIN_TOKEN)
        .query(query)
        .send()
        .await
        .unwrap()
}

async fn report_json(app: &TestApp, which: &str, query: &[(&str, &str)]) -> Value {
    let r = report(app, which, query).await;
    let status = r.status();
    let v = body(r).await;
    assert_eq!(status, 200, "{which} {query:?}: {v}\n{}", app.logs());
    v
}

async fn report_csv(
    app: &TestApp,
    which: &str,
    query: &[(&str, &str)],
) -> Vec<BTreeMap<String, String>> {
    let mut q = query.to_vec();
    q.push(("format", "csv"));
    let r = report(app, which, &q).await;
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    let text = r.text().await.unwrap();
    let mut rows = csv::Reader::from_reader(text.as_bytes());
    let headers = rows.headers().unwrap().clone();
    rows.records()
        .map(|r| {
            let r = r.unwrap();
            headers
                .iter()
                .zip(r.iter())
                .map(|(h, v)| (h.to_owned(), v.to_owned()))
                .collect()
        })
        .collect()
}

async fn pay(app: &TestApp, pk: &str, order: &str, amount: &str, code: &str) -> String {
    let r = app.pay(pk, order, amount, &[code], None).await;
    assert_eq!(r.status(), 201);
    body(r).await["id"].as_str().unwrap().to_owned()
}

async fn payout(app: &TestApp, body_json: Value, key: Option<&str>) -> reqwest::Response {
    app.post("/api/admin/payouts", ADMIN_TOKEN, &body_json, key)
        .await
}

/// Sums of `made` selected by `keep`: (gross sales, gross refunds, commission earned,
/// commission returned, payouts).
fn sums(made: &[Made], keep: impl Fn(&Made) -> bool) -> (i64, i64, i64, i64, i64) {
    made.iter()
        .filter(|m| keep(m))
        .fold((0, 0, 0, 0, 0), |(s, r, e, c, p), m| match m.kind {
            Kind::Sale => (s + m.gross, r, e + m.commission, c, p),
            Kind::Refund => (s, r + m.gross, e, c + m.commission, p),
            Kind::Payout => (s, r, e, c, p + m.gross),
        })
}

#[tokio::test]
async fn reports_equal_the_transactions_made_and_a_payout_clears_the_payable() {
    let app = TestApp::spawn().await;
    let (bps_a, bps_b) = (250_i64, 1000_i64);
    let a = app.create_merchant(bps_a as u32).await;
    let b = app.create_merchant(bps_b as u32).await;
    let (a_live_pk, _) = app.create_live_keys(&a.id);

    // The magic test vouchers exist before anything this test does: what it issues adds
    // to them.
    let before = report_json(&app, "liability", &[("mode", "test")]).await;
    let base = |field: &str| {
        before["currencies"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["currency"] == "EUR")
            .map_or(0, |c| minor(&c[field]))
    };
    assert_eq!(base("redeemed"), 0);
    assert_eq!(base("issued"), base("outstanding"));
    let magic = base("issued");

    // Issued before period 1: 4 x 100.00 in test, 80.00 in live.
    let test_codes = app.issue("EUR", "100.00", 4, json!({})).await;
    let live_code = app
        .issue("EUR", "80.00", 1, json!({"mode": "live"}))
        .await
        .remove(0);
    let issued_test = magic + 4 * 100_00;
    let issued_live = 80_00;
    let mut made: Vec<Made> = Vec::new();
    let sale = |merchant: &str, mode: &'static str, period: u8, gross: i64, bps: i64| Made {
        merchant: merchant.to_owned(),
        mode,
        period,
        kind: Kind::Sale,
        gross,
        commission: commission(gross, bps),
    };

    let start = now();
    // Period 1.
    let a_txn = pay(&app, &a.pk, "A-1", "100.00", &test_codes[0]).await;
    made.push(sale(&a.id, "test", 1, 100_00, bps_a));
    pay(&app, &b.pk, "B-1", "40.00", &test_codes[1]).await;
    made.push(sale(&b.id, "test", 1, 40_00, bps_b));
    pay(&app, &a_live_pk, "A-LIVE-1", "50.00", &live_code).await;
    made.push(sale(&a.id, "live", 1, 50_00, bps_a));
    let cut = now();

    // Period 2: a partial refund, a hold captured in part, another sale, an open hold.
    let r = app
        .post(
            &format!("/api/transactions/{a_txn}/refunds"),
            &a.sk,
            &json!({"amount": "20.00"}),
            None,
        )
        .await;
    assert_eq!(r.status(), 201);
    made.push(Made {
        kind: Kind::Refund,
        period: 2,
        ..sale(&a.id, "test", 2, 20_00, bps_a)
    });
    let mut held_open = 0;
    for (order, amount, code, pk) in [
        ("A-2", "30.00", &test_codes[2], &a.pk),
        ("B-3", "15.00", &test_codes[1], &b.pk),
    ] {
        let req = json!({"order_id": order, "amount": amount, "currency": "EUR",
                         "vouchers": [{"code": code}], "capture": false});
        let r = app.post("/api/process-payment/", pk, &req, None).await;
        assert_eq!(r.status(), 201);
        let id = body(r).await["id"].as_str().unwrap().to_owned();
        if order == "A-2" {
            let r = app
                .post(
                    &format!("/api/transactions/{id}/capture"),
                    &a.sk,
                    &json!({"amount": "20.00"}),
                    None,
                )
                .await;
            assert_eq!(r.status(), 200);
            made.push(sale(&a.id, "test", 2, 20_00, bps_a));
        } else {
            held_open += 15_00;
        }
    }
    pay(&app, &b.pk, "B-2", "10.00", &test_codes[3]).await;
    made.push(sale(&b.id, "test", 2, 10_00, bps_b));

    // Payouts: part of A's payable, then more than is left (refused), then the rest.
    let owed = |made: &[Made], merchant: &str, mode: &str| {
        let (s, r, e, c, p) = sums(made, |m| m.merchant == merchant && m.mode == mode);
        s - e - (r - c) - p
    };
    let r = payout(
        &app,
        json!({"merchant_id": a.id, "currency": "EUR", "amount": "50.00", "reference": "BANK-0001"}),
        Some("payout-1"),
    )
    .await;
    assert_eq!(r.status(), 201);
    let first = body(r).await;
    assert_eq!(first["payable_before"], eur(owed(&made, &a.id, "test")));
    made.push(Made {
        kind: Kind::Payout,
        period: 2,
        commission: 0,
        ..sale(&a.id, "test", 2, 50_00, 0)
    });
    assert_eq!(first["payable_after"], eur(owed(&made, &a.id, "test")));
    // The same key again is the same payout, not a second one.
    let r = payout(
        &app,
        json!({"merchant_id": a.id, "currency": "EUR", "amount": "50.00", "reference": "BANK-0001"}),
        Some("payout-1"),
    )
    .await;
    assert_eq!(r.status(), 201);
    assert_eq!(r.headers()["idempotent-replayed"], "true");
    assert_eq!(body(r).await["id"], first["id"]);

    let left = owed(&made, &a.id, "test");
    assert!(left > 0);
    let r = payout(
        &app,
        json!({"merchant_id": a.id, "currency": "EUR", "amount": eur(left + 1), "reference": "BANK-0002"}),
        Some("payout-2"),
    )
    .await;
    assert_eq!(r.status(), 400);
    let e = body(r).await;
    assert_eq!(e["error"]["code"], "payout_exceeds_payable");
    assert_eq!(e["error"]["param"], "amount");
    let r = payout(
        &app,
        json!({"merchant_id": a.id, "currency": "EUR", "amount": eur(left), "reference": "BANK-0002"}),
        Some("payout-3"),
    )
    .await;
    assert_eq!(r.status(), 201);
    made.push(Made {
        kind: Kind::Payout,
        period: 2,
        commission: 0,
        ..sale(&a.id, "test", 2, left, 0)
    });
    assert_eq!(app.count("payouts").await, 2);
    let end = now();

    // Liability, now and as of the cut, in both modes.
    for (mode, as_of, issued, period_max, held) in [
        ("test", None, issued_test, 2, held_open),
        ("test", Some(cut.as_str()), issued_test, 1, 0),
        ("live", None, issued_live, 2, 0),
    ] {
        let mut q = vec![("mode", mode)];
        if let Some(t) = as_of {
            q.push(("to", t));
        }
        let v = report_json(&app, "liability", &q).await;
        let (s, r, _, _, _) = sums(&made, |m| m.mode == mode && m.period <= period_max);
        let line = &v["currencies"][0];
        assert_eq!(v["currencies"].as_array().unwrap().len(), 1, "{v}");
        assert_eq!(line["currency"], "EUR");
        assert_eq!(line["issued"], eur(issued), "{mode} {as_of:?}: {v}");
        assert_eq!(line["redeemed"], eur(s), "{mode} {as_of:?}: {v}");
        assert_eq!(line["refunded"], eur(r), "{mode} {as_of:?}: {v}");
        assert_eq!(line["breakage"], "0.00");
        assert_eq!(line["held"], eur(held));
        assert_eq!(
            line["outstanding"],
            eur(issued - s + r),
            "{mode} {as_of:?}: {v}"
        );
    }

    // Commission per merchant and period.
    for (mode, from, to, period) in [
        ("test", start.as_str(), cut.as_str(), 1),
        ("test", cut.as_str(), end.as_str(), 2),
        ("live", start.as_str(), end.as_str(), 2),
    ] {
        let v = report_json(
            &app,
            "commission",
            &[("mode", mode), ("from", from), ("to", to)],
        )
        .await;
        let mut merchants: Vec<&String> = made
            .iter()
            .filter(|m| {
                m.mode == mode && (m.period == period || mode == "live") && m.kind != Kind::Payout
            })
            .map(|m| &m.merchant)
            .collect();
        merchants.sort();
        merchants.dedup();
        let lines = v["merchants"].as_array().unwrap();
        assert_eq!(lines.len(), merchants.len(), "{mode} period {period}: {v}");
        for (line, merchant) in lines.iter().zip(merchants) {
            let (s, r, e, c, _) = sums(&made, |m| {
                &m.merchant == merchant && m.mode == mode && (m.period == period || mode == "live")
            });
            assert_eq!(line["merchant_id"], merchant.as_str());
            assert_eq!(line["sales"], eur(s), "{v}");
            assert_eq!(line["refunds"], eur(r), "{v}");
            assert_eq!(line["commission_earned"], eur(e), "{v}");
            assert_eq!(line["commission_returned"], eur(c), "{v}");
            assert_eq!(line["commission_net"], eur(e - c), "{v}");
        }
    }

    // Settlement statements of period 2: opening from period 1, closing at zero for A.
    let v = report_json(
        &app,
        "settlement",
        &[
            ("from", cut.as_str()),
            ("to", end.as_str()),
            ("lines", "true"),
        ],
    )
    .await;
    let statements = v["statements"].as_array().unwrap();
    assert_eq!(statements.len(), 2, "{v}");
    for s in statements {
        let merchant = s["merchant_id"].as_str().unwrap();
        let mine = |m: &Made| m.merchant == merchant && m.mode == "test";
        let (s1, r1, e1, c1, p1) = sums(&made, |m| mine(m) && m.period == 1);
        let (s2, r2, e2, c2, p2) = sums(&made, |m| mine(m) && m.period == 2);
        let opening = s1 - e1 - (r1 - c1) - p1;
        let closing = opening + s2 - e2 - (r2 - c2) - p2;
        assert_eq!(s["currency"], "EUR");
        assert_eq!(s["opening_payable"], eur(opening), "{s}");
        assert_eq!(s["sales"], eur(s2), "{s}");
        assert_eq!(s["commission"], eur(e2), "{s}");
        assert_eq!(s["refunds"], eur(r2), "{s}");
        assert_eq!(s["commission_returned"], eur(c2), "{s}");
        assert_eq!(s["payouts"], eur(p2), "{s}");
        assert_eq!(s["other"], "0.00");
        assert_eq!(s["closing_payable"], eur(closing), "{s}");
        let kinds: Vec<&str> = s["lines"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["kind"].as_str().unwrap())
            .collect();
        if merchant == a.id {
            assert_eq!(closing, 0, "the payouts cleared A's payable");
            assert_eq!(kinds, ["refund", "sale", "payout", "payout"]);
            assert_eq!(s["lines"][2]["reference"], "BANK-0001");
            assert_eq!(s["lines"][3]["reference"], "BANK-0002");
        } else {
            assert_eq!(kinds, ["sale"]);
        }
    }

    // CSV and JSON agree, figure for figure.
    let query = [("from", cut.as_str()), ("to", end.as_str())];
    let json_report = report_json(&app, "settlement", &query).await;
    let csv_report = report_csv(&app, "settlement", &query).await;
    assert_eq!(csv_report.len(), 2);
    for (row, s) in csv_report
        .iter()
        .zip(json_report["statements"].as_array().unwrap())
    {
        for field in [
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
        ] {
            assert_eq!(row[field], s[field].as_str().unwrap(), "{field}");
        }
        assert_eq!(row["mode"], "test");
    }
    let json_report = report_json(&app, "commission", &query).await;
    let csv_report = report_csv(&app, "commission", &query).await;
    assert_eq!(
        csv_report.len(),
        json_report["merchants"].as_array().unwrap().len()
    );
    for (row, l) in csv_report
        .iter()
        .zip(json_report["merchants"].as_array().unwrap())
    {
        for field in [
            "merchant_id",
            "sales",
            "refunds",
            "commission_earned",
            "commission_returned",
            "commission_net",
        ] {
            assert_eq!(row[field], l[field].as_str().unwrap(), "{field}");
        }
    }
    let liability_csv = report_csv(&app, "liability", &[]).await;
    let liability_json = report_json(&app, "liability", &[]).await;
    assert_eq!(
        liability_csv[0]["outstanding"],
        liability_json["currencies"][0]["outstanding"]
            .as_str()
            .unwrap()
    );

    // The CLI prints the same report as the API.
    let (ok, out) = app.cli(&[
        "admin",
        "report",
        "settlement",
        "--from",
        &cut,
        "--to",
        &end,
        "--merchant",
        &a.id,
    ]);
    assert!(ok, "{out}");
    let cli: Value = serde_json::from_str(&out).unwrap();
    let api = report_json(
        &app,
        "settlement",
        &[
            ("from", cut.as_str()),
            ("to", end.as_str()),
            ("merchant_id", a.id.as_str()),
        ],
    )
    .await;
    assert_eq!(cli, api);

    let (ok, audit) = app.audit();
    assert!(ok, "{audit}");
    assert!(audit.contains("ok    the commission report equals the commission account's movements"));
}

#[tokio::test]
async fn a_payout_is_refused_above_the_payable_and_for_bad_input_and_the_cli_records_one() {
    let app = TestApp::spawn().await;
    let m = app.create_merchant(0).await;
    let code = app.issue_one("30.00").await;
    pay(&app, &m.pk, "O-1", "30.00", &code).await;

    for (body_json, status, code) in [
        (
            json!({"merchant_id": m.id, "currency": "EUR", "amount": "30.01", "reference": "R"}),
            400,
            "payout_exceeds_payable",
        ),
        // The live payable is empty: the test sale does not count there.
        (
            json!({"merchant_id": m.id, "mode": "live", "currency": "EUR", "amount": "1.00", "reference": "R"}),
            400,
            "payout_exceeds_payable",
        ),
        (
            json!({"merchant_id": m.id, "currency": "EUR", "amount": "1.00", "reference": " "}),
            400,
            "invalid_reference",
        ),
        (
            json!({"merchant_id": m.id, "currency": "EUR", "amount": "-1.00", "reference": "R"}),
            400,
            "amount_not_positive",
        ),
        (
            json!({"merchant_id": "mer_nobody", "currency": "EUR", "amount": "1.00", "reference": "R"}),
            404,
            "resource_missing",
        ),
        (
            json!({"merchant_id": m.id, "currency": "EUR", "amount": "1.00", "reference": "R", "extra": 1}),
            400,
            "unknown_field",
        ),
    ] {
        let r = payout(&app, body_json.clone(), None).await;
        assert_eq!(r.status(), status, "{body_json}");
        let e = body(r).await;
        assert_eq!(e["error"]["code"], code, "{body_json}: {e}");
    }
    assert_eq!(app.count("payouts").await, 0);

    let (ok, out) = app.cli(&[
        "admin",
        "payout",
        "--merchant",
        &m.id,
        "--currency",
        "EUR",
        "--amount",
        "30.00",
        "--reference",
        "BANK-CLI",
    ]);
    assert!(ok, "{out}");
    assert!(out.contains("payable_after=0.00"), "{out}");
    let (ok, _) = app.cli(&[
        "admin",
        "payout",
        "--merchant",
        &m.id,
        "--currency",
        "EUR",
        "--amount",
        "0.01",
        "--reference",
        "BANK-CLI-2",
    ]);
    assert!(!ok, "nothing is left to pay out");
    let v = report_json(&app, "settlement", &[("merchant_id", m.id.as_str())]).await;
    assert_eq!(v["statements"][0]["payouts"], "30.00");
    assert_eq!(v["statements"][0]["closing_payable"], "0.00");

    let r = report(&app, "settlement", &[("lines", "maybe")]).await;
    assert_eq!(r.status(), 400);
    assert_eq!(body(r).await["error"]["code"], "malformed_body");
    let r = report(
        &app,
        "commission",
        &[("from", "2026-12-02"), ("to", "2026-12-01")],
    )
    .await;
    assert_eq!(r.status(), 400);
    assert_eq!(body(r).await["error"]["code"], "invalid_period");
    let r = app
        .client
        .get(app.url("/api/admin/reports/liability"))
        .bearer_auth("wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    let (ok, audit) = app.audit();
    assert!(ok, "{audit}");
}

#[tokio::test]
async fn the_audit_catches_a_report_that_disagrees_with_the_payments_even_when_the_ledger_balances()
{
    use sea_orm::{ConnectionTrait, Statement};

    let app = TestApp::spawn().await;
    let m = app.create_merchant(250).await;
    let code = app.issue_one("100.00").await;
    let txn = pay(&app, &m.pk, "O-1", "100.00", &code).await;
    let (ok, audit) = app.audit();
    assert!(ok, "{audit}");

    // One cent of the payment's commission booked to the merchant instead: the journal
    // still sums to zero, but the reports no longer match the payment.
    let db = app.db().await;
    let backend = db.get_database_backend();
    for (account, delta) in [
        ("platform_commission:test:EUR".to_owned(), -1),
        (format!("merchant_payable:{}:test:EUR", m.id), 1),
    ] {
        db.execute(Statement::from_string(
            backend,
            format!(
                "UPDATE postings SET amount_minor = amount_minor + ({delta})
                 WHERE account = '{account}'
                   AND journal_id = (SELECT id FROM journals WHERE transaction_id = '{txn}')"
            ),
        ))
        .await
        .unwrap();
    }
    let (ok, audit) = app.audit();
    assert!(!ok, "{audit}");
    for failing in [
        "FAIL  the commission report equals the sales' commission less what refunds returned",
        "FAIL  each settlement statement closes at the sales' net less refunds' net and payouts",
    ] {
        assert!(audit.contains(failing), "{audit}");
    }
    assert!(
        audit.contains("ok    every journal sums to zero per currency"),
        "{audit}"
    );
}

#[tokio::test]
async fn concurrent_payouts_never_pay_out_more_than_the_payable() {
    let app = TestApp::spawn().await;
    let m = app.create_merchant(0).await;
    let code = app.issue_one("30.00").await;
    pay(&app, &m.pk, "O-1", "30.00", &code).await;

    // Each fits the payable alone; three of them use it up, and the rest must be refused.
    let attempts = (0..12).map(|i| {
        payout(
            &app,
            json!({"merchant_id": m.id, "currency": "EUR", "amount": "10.00",
                   "reference": format!("BANK-{i}")}),
            None,
        )
    });
    let statuses: Vec<u16> = futures::future::join_all(attempts)
        .await
        .into_iter()
        .map(|r| r.status().as_u16())
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        3,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| [201, 400].contains(s)),
        "{statuses:?}"
    );
    assert_eq!(app.count("payouts").await, 3);
    let v = report_json(&app, "settlement", &[("merchant_id", m.id.as_str())]).await;
    assert_eq!(v["statements"][0]["closing_payable"], "0.00");
    let (ok, audit) = app.audit();
    assert!(ok, "{audit}");
}

#[tokio::test]
async fn breakage_recognition_moves_expired_balances_out_of_the_liability_once() {
    use sea_orm::{ConnectionTrait, Statement, Value as DbValue};

    let app = TestApp::spawn().await;
    let m = app.create_merchant(250).await;
    let (live_pk, _) = app.create_live_keys(&m.id);
    let tomorrow = (OffsetDateTime::now_utc() + time::Duration::days(1))
        .format(&Rfc3339)
        .unwrap();
    let codes = app
        .issue(
            "EUR",
            "50.00",
            2,
            json!({"mode": "live", "expires_at": tomorrow}),
        )
        .await;
    let lasting = app
        .issue("EUR", "40.00", 1, json!({"mode": "live"}))
        .await
        .remove(0);
    pay(&app, &live_pk, "O-1", "20.00", &codes[0]).await;
    pay(&app, &live_pk, "O-2", "5.00", &lasting).await;
    let test_before = report_json(&app, "liability", &[("mode", "test")]).await;

    // The first voucher expires with 30.00 left; the second one stays valid.
    let db = app.db().await;
    let backend = db.get_database_backend();
    let p = |i: usize| match backend {
        sea_orm::DbBackend::Postgres => format!("${i}"),
        _ => "?".to_owned(),
    };
    db.execute(Statement::from_sql_and_values(
        backend,
        format!(
            "UPDATE vouchers SET expires_at = {} WHERE code_hmac = {}",
            p(1),
            p(2)
        ),
        [
            DbValue::from(OffsetDateTime::now_utc() - time::Duration::hours(1)),
            DbValue::from(crate::helpers::code_hmac(&codes[0])),
        ],
    ))
    .await
    .unwrap();

    let (ok, out) = app.cli(&["admin", "recognise-breakage", "--mode", "live"]);
    assert!(ok, "{out}");
    assert!(out.contains("vouchers=1"), "{out}");
    assert!(out.contains("breakage EUR=30.00"), "{out}");
    // The admin API runs the same recognition: nothing is left to take.
    let r = app
        .post(
            "/api/admin/breakage",
            ADMIN_TOKEN,
            &json!({"mode": "live"}),
            None,
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        body(r).await,
        json!({"vouchers": 0, "currencies": []}),
        "a second run takes nothing"
    );
    let r = app
        .post(
            "/api/admin/breakage",
            ADMIN_TOKEN,
            &json!({"mode": "prod"}),
            None,
        )
        .await;
    assert_eq!(r.status(), 400);
    assert_eq!(body(r).await["error"]["code"], "invalid_mode");

    let v = report_json(&app, "liability", &[("mode", "live")]).await;
    let line = &v["currencies"][0];
    let (issued, redeemed, breakage) = (2 * 50_00 + 40_00, 20_00 + 5_00, 30_00);
    assert_eq!(line["issued"], eur(issued), "{v}");
    assert_eq!(line["redeemed"], eur(redeemed), "{v}");
    assert_eq!(line["breakage"], eur(breakage), "{v}");
    assert_eq!(
        line["outstanding"],
        eur(issued - redeemed - breakage),
        "{v}"
    );
    assert_eq!(
        report_json(&app, "liability", &[("mode", "test")]).await,
        test_before,
        "live breakage leaves test mode alone"
    );
    let (ok, audit) = app.audit();
    assert!(ok, "{audit}");
}
