//! The back-office under /dashboard through real HTTP: logins, sessions, CSRF, roles,
//! merchant and mode scoping, the CSV export and the overview's figures.
use std::collections::HashMap;

use reqwest::{header, redirect, StatusCode};
use rust_decimal::Decimal;
use serde_json::{json, Value};

use crate::helpers::{body, Merchant, TestApp};

pub(crate) const PASSWORD: &str = "correct horse battery staple";

/// A browser without JavaScript: keeps cookies, follows no redirect, reads forms' tokens.
pub(crate) struct Browser {
    base: String,
    client: reqwest::Client,
    pub(crate) cookies: HashMap<String, String>,
    /// The raw Set-Cookie headers of the last answer.
    pub(crate) set_cookies: Vec<String>,
}

pub(crate) struct Page {
    pub(crate) status: StatusCode,
    pub(crate) location: Option<String>,
    pub(crate) text: String,
    pub(crate) headers: header::HeaderMap,
}

impl Page {
    /// The value of the first hidden input `name` of the page.
    pub(crate) fn input(&self, name: &str) -> String {
        let marker = format!("name=\"{name}\" value=\"");
        let start = self
            .text
            .find(&marker)
            .unwrap_or_else(|| panic!("no input {name} in:\n{}", self.text))
            + marker.len();
        let end = self.text[start..].find('"').unwrap() + start;
        self.text[start..end].to_owned()
    }
}

impl Browser {
    pub(crate) fn new(app: &TestApp) -> Self {
        Self {
            base: app.address.clone(),
            client: reqwest::Client::builder()
                .redirect(redirect::Policy::none())
                .build()
                .unwrap(),
            cookies: HashMap::new(),
            set_cookies: Vec::new(),
        }
    }

    pub(crate) fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    pub(crate) async fn read(&mut self, r: reqwest::Response) -> Page {
        self.set_cookies = r
            .headers()
            .get_all(header::SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect();
        for c in &self.set_cookies {
            let pair = c.split(';').next().unwrap();
            let (k, v) = pair.split_once('=').unwrap();
            if v.is_empty() || c.contains("Max-Age=0") {
                self.cookies.remove(k);
            } else {
                self.cookies.insert(k.to_owned(), v.to_owned());
            }
        }
        let status = r.status();
        let headers = r.headers().clone();
        let location = headers
            .get(header::LOCATION)
            .map(|v| v.to_str().unwrap().to_owned());
        Page {
            status,
            location,
            text: r.text().await.unwrap(),
            headers,
        }
    }

    pub(crate) async fn get(&mut self, path: &str) -> Page {
        let r = self
            .client
            .get(format!("{}{path}", self.base))
            .header(header::COOKIE, self.cookie_header())
            .send()
            .await
            .unwrap();
        self.read(r).await
    }

    pub(crate) async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let r = self
            .client
            .post(format!("{}{path}", self.base))
            .header(header::COOKIE, self.cookie_header())
            .form(form)
            .send()
            .await
            .unwrap();
        self.read(r).await
    }

    /// Logs in through the form; returns the login POST's answer.
    pub(crate) async fn login(&mut self, email: &str, password: &str) -> Page {
        let form = self.get("/dashboard/login").await;
        assert_eq!(form.status, 200, "{}", form.text);
        let csrf = form.input("csrf");
        self.post(
            "/dashboard/login",
            &[("csrf", &csrf), ("email", email), ("password", password)],
        )
        .await
    }

    /// The CSRF token of the signed-in session, read from a page's forms.
    pub(crate) async fn csrf(&mut self) -> String {
        let p = self.get("/dashboard/account").await;
        assert_eq!(p.status, 200, "{}", p.text);
        p.input("csrf")
    }

    pub(crate) async fn signed_in(app: &TestApp, email: &str) -> Browser {
        let mut b = Browser::new(app);
        let p = b.login(email, PASSWORD).await;
        assert_eq!(p.status, 303, "{}", p.text);
        assert_eq!(p.location.as_deref(), Some("/dashboard/"));
        b
    }
}

/// Creates a back-office user with the CLI; returns its email.
pub(crate) fn create_user(app: &TestApp, merchant: &Merchant, role: &str) -> String {
    let email = format!("{role}-{}@shop.example", &merchant.id[4..16]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("password");
    std::fs::write(&file, format!("{PASSWORD}\n")).unwrap();
    let (ok, out) = app.cli(&[
        "admin",
        "create-user",
        "--merchant",
        &merchant.id,
        "--email",
        &email,
        "--role",
        role,
        "--password-file",
        file.to_str().unwrap(),
    ]);
    assert!(ok, "{out}");
    assert!(out.contains(&format!("email={email}")), "{out}");
    assert!(
        !out.contains(PASSWORD),
        "the password is never printed back"
    );
    email
}

/// A paid transaction's id.
async fn paid(app: &TestApp, m: &Merchant, order: &str, amount: &str) -> String {
    let code = app.issue_one("100.00").await;
    let r = app.pay(&m.pk, order, amount, &[&code], None).await;
    assert_eq!(r.status(), 201);
    body(r).await["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_user_logs_in_and_out_and_a_wrong_password_opens_nothing() {
    let app = TestApp::spawn().await;
    let m = app.create_merchant(250).await;
    let email = create_user(&app, &m, "owner");
    let mut b = Browser::new(&app);

    let p = b.get("/dashboard/").await;
    assert_eq!(p.status, 303);
    assert_eq!(p.location.as_deref(), Some("/dashboard/login"));

    let p = b.login(&email, "wrong password entirely").await;
    assert_eq!(p.status, 401);
    assert!(p.text.contains("Wrong email or password"));
    assert!(!b.cookies.contains_key("sp_session"));
    let p = b.login("nobody@shop.example", PASSWORD).await;
    assert_eq!(p.status, 401);

    let p = b.login(&email.to_uppercase(), PASSWORD).await;
    assert_eq!(p.status, 303, "emails are matched case-insensitively");
    let session = b
        .set_cookies
        .iter()
        .find(|c| c.starts_with("sp_session="))
        .expect("a session cookie")
        .clone();
    assert!(session.contains("HttpOnly"), "{session}");
    assert!(session.contains("SameSite=Lax"), "{session}");
    assert!(session.contains("Path=/dashboard"), "{session}");
    assert!(!session.contains("Secure"), "plain http: {session}");
    let token = b.cookies["sp_session"].clone();
    assert!(token.len() >= 43, "256 random bits");
    assert_eq!(
        app.count(&format!("dashboard_sessions WHERE id = '{token}'"))
            .await,
        0,
        "the token itself is never stored"
    );

    let p = b.get("/dashboard/").await;
    assert_eq!(p.status, 200);
    assert!(p.text.contains(&email));
    assert!(p
        .headers
        .get(header::CONTENT_SECURITY_POLICY)
        .is_some_and(|v| v.to_str().unwrap().contains("frame-ancestors 'none'")));

    let csrf = p.input("csrf");
    let old = b.cookies.clone();
    let p = b.post("/dashboard/logout", &[("csrf", &csrf)]).await;
    assert_eq!(p.status, 303);
    assert!(!b.cookies.contains_key("sp_session"));
    // The old cookie, replayed, no longer opens anything: the session is revoked server-side.
    b.cookies = old;
    let p = b.get("/dashboard/").await;
    assert_eq!(p.status, 303);
    assert_eq!(p.location.as_deref(), Some("/dashboard/login"));
}

#[tokio::test]
async fn the_session_cookie_is_secure_when_the_public_url_is_https() {
    let app = TestApp::spawn_with(&[("PUBLIC_URL", "https://pay.shop.example")]).await;
    let m = app.create_merchant(250).await;
    let email = create_user(&app, &m, "viewer");
    let b = Browser::signed_in(&app, &email).await;
    let session = b
        .set_cookies
        .iter()
        .find(|c| c.starts_with("sp_session="))
        .unwrap();
    assert!(session.contains("Secure"), "{session}");
    assert!(session.contains("HttpOnly") && session.contains("SameSite=Lax"));
}

#[tokio::test]
async fn an_account_is_locked_out_after_repeated_failures_even_with_the_right_password() {
    let app = TestApp::spawn_with(&[("LOGIN_LOCKOUT_ACCOUNT_THRESHOLD", "3")]).await;
    let m = app.create_merchant(250).await;
    let email = create_user(&app, &m, "owner");
    let mut b = Browser::new(&app);
    // Past the threshold, as the voucher-guessing lockout counts: the fourth failure locks.
    for _ in 0..4 {
        assert_eq!(b.login(&email, "not the password").await.status, 401);
    }
    let p = b.login(&email, PASSWORD).await;
    assert_eq!(p.status, 429, "{}", p.text);
    assert!(p.headers.contains_key(header::RETRY_AFTER));
    assert!(!b.cookies.contains_key("sp_session"));
    // Another account from the same address is not locked by it.
    let other = create_user(&app, &m, "staff");
    assert_eq!(Browser::new(&app).login(&other, PASSWORD).await.status, 303);
}

#[tokio::test]
async fn a_form_without_the_sessions_csrf_token_is_refused_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let m = app.create_merchant(250).await;
    let email = create_user(&app, &m, "owner");
    let txn = paid(&app, &m, "ORDER_CSRF", "40.00").await;
    let mut b = Browser::signed_in(&app, &email).await;

    let p = b.post("/dashboard/logout", &[]).await;
    assert_eq!(p.status, 403);
    let p = b.post("/dashboard/logout", &[("csrf", "forged")]).await;
    assert_eq!(p.status, 403);
    assert_eq!(b.get("/dashboard/").await.status, 200, "still signed in");

    let refund = format!("/dashboard/transactions/{txn}/refund");
    let p = b
        .post(&refund, &[("amount", "10.00"), ("idempotency_key", "k1")])
        .await;
    assert_eq!(p.status, 403);
    assert_eq!(app.count("refunds").await, 0);

    // Another session's token does not fit either.
    let mut other = Browser::signed_in(&app, &email).await;
    let foreign = other.csrf().await;
    let p = b
        .post(&refund, &[("csrf", &foreign), ("amount", "10.00")])
        .await;
    assert_eq!(p.status, 403);
    assert_eq!(app.count("refunds").await, 0);

    // The login form has its own token too.
    let mut fresh = Browser::new(&app);
    let p = fresh
        .post(
            "/dashboard/login",
            &[("email", &email), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(p.status, 403);
    assert!(!fresh.cookies.contains_key("sp_session"));
}

#[tokio::test]
async fn a_password_change_and_logout_everywhere_end_every_session_of_the_user() {
    let app = TestApp::spawn().await;
    let m = app.create_merchant(250).await;
    let email = create_user(&app, &m, "admin");
    let mut a = Browser::signed_in(&app, &email).await;
    let mut b = Browser::signed_in(&app, &email).await;

    let csrf = a.csrf().await;
    let p = a
        .post(
            "/dashboard/account/password",
            &[
                ("csrf", &csrf),
                ("current", "wrong"),
                ("new", "a new long password"),
            ],
        )
        .await;
    assert_eq!(p.status, 400);
    let p = a
        .post(
            "/dashboard/account/password",
            &[("csrf", &csrf), ("current", PASSWORD), ("new", "short")],
        )
        .await;
    assert_eq!(p.status, 400);
    assert_eq!(b.get("/dashboard/").await.status, 200);

    let p = a
        .post(
            "/dashboard/account/password",
            &[
                ("csrf", &csrf),
                ("current", PASSWORD),
                ("new", "a new long password"),
            ],
        )
        .await;
    assert_eq!(p.status, 303);
    assert_eq!(a.get("/dashboard/").await.status, 303);
    assert_eq!(
        b.get("/dashboard/").await.status,
        303,
        "the other session ended too"
    );
    assert_eq!(Browser::new(&app).login(&email, PASSWORD).await.status, 401);

    let mut c = Browser::new(&app);
    assert_eq!(c.login(&email, "a new long password").await.status, 303);
    let mut d = Browser::new(&app);
    assert_eq!(d.login(&email, "a new long password").await.status, 303);
    let csrf = c.csrf().await;
    let p = c
        .post("/dashboard/logout-everywhere", &[("csrf", &csrf)])
        .await;
    assert_eq!(p.status, 303);
    assert_eq!(c.get("/dashboard/").await.status, 303);
    assert_eq!(d.get("/dashboard/").await.status, 303);
}

#[tokio::test]
async fn a_viewer_cannot_refund_and_staff_refunds_once_on_a_double_submit() {
    let app = TestApp::spawn().await;
    let m = app.create_merchant(250).await;
    let viewer = create_user(&app, &m, "viewer");
    let staff = create_user(&app, &m, "staff");
    let txn = paid(&app, &m, "ORDER_ROLES", "40.00").await;
    let refund = format!("/dashboard/transactions/{txn}/refund");

    let mut v = Browser::signed_in(&app, &viewer).await;
    let detail = v.get(&format!("/dashboard/transactions/{txn}")).await;
    assert_eq!(detail.status, 200, "{}", app.logs());
    assert!(
        !detail.text.contains("id=\"refund\""),
        "no refund button for a viewer"
    );
    assert_eq!(v.get(&format!("{refund}?amount=10.00")).await.status, 403);
    let csrf = detail.input("csrf");
    let p = v
        .post(
            &refund,
            &[
                ("csrf", &csrf),
                ("amount", "10.00"),
                ("idempotency_key", "v1"),
            ],
        )
        .await;
    assert_eq!(p.status, 403);
    assert_eq!(app.count("refunds").await, 0);

    let mut s = Browser::signed_in(&app, &staff).await;
    let confirm = s
        .get(&format!("{refund}?amount=10.00&reason=damaged"))
        .await;
    assert_eq!(confirm.status, 200, "{}", confirm.text);
    assert!(confirm.text.contains("10.00 EUR"));
    let form = [
        ("csrf", confirm.input("csrf")),
        ("idempotency_key", confirm.input("idempotency_key")),
        ("amount", confirm.input("amount")),
        ("reason", confirm.input("reason")),
    ];
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let first = s.post(&refund, &form).await;
    assert_eq!(first.status, 303, "{}", first.text);
    let second = s.post(&refund, &form).await;
    assert_eq!(second.status, 303, "{}", second.text);
    assert_eq!(
        first.location, second.location,
        "the same refund both times"
    );
    assert_eq!(app.count("refunds").await, 1);

    let p = s.get(first.location.as_deref().unwrap()).await;
    assert!(p.text.contains("partially_refunded"), "{}", p.text);
    assert!(p.text.contains("damaged"));
    let r = app
        .client
        .get(app.url(&format!("/api/transactions/{txn}")))
        .bearer_auth(&m.sk)
        .send()
        .await
        .unwrap();
    assert_eq!(body(r).await["refunded_amount"], "10.00");
    let (ok, out) = app.audit();
    assert!(ok, "{out}");
}

#[tokio::test]
async fn a_user_never_sees_another_merchants_transaction_even_by_its_url() {
    let app = TestApp::spawn().await;
    let a = app.create_merchant(250).await;
    let b = app.create_merchant(250).await;
    let owner_a = create_user(&app, &a, "owner");
    let txn_b = paid(&app, &b, "ORDER_OF_B", "25.00").await;
    let mut br = Browser::signed_in(&app, &owner_a).await;

    assert_eq!(
        br.get(&format!("/dashboard/transactions/{txn_b}"))
            .await
            .status,
        404
    );
    assert_eq!(
        br.get(&format!("/dashboard/transactions/{txn_b}/refund"))
            .await
            .status,
        404
    );
    let csrf = br.csrf().await;
    let p = br
        .post(
            &format!("/dashboard/transactions/{txn_b}/refund"),
            &[("csrf", &csrf), ("idempotency_key", "x")],
        )
        .await;
    assert_eq!(p.status, 404);
    assert_eq!(app.count("refunds").await, 0);
    let list = br.get("/dashboard/transactions?q=ORDER_OF_B").await;
    assert!(!list.text.contains(&txn_b));
    let csv = br.get("/dashboard/transactions.csv").await;
    assert!(!csv.text.contains(&txn_b));
}

#[tokio::test]
async fn the_mode_switch_shows_only_that_modes_transactions() {
    let app = TestApp::spawn().await;
    let m = app.create_merchant(250).await;
    let owner = create_user(&app, &m, "owner");
    let test_txn = paid(&app, &m, "ORDER_TEST", "10.00").await;
    let (live_pk, _) = app.create_live_keys(&m.id);
    let live_code = app
        .issue("EUR", "50.00", 1, json!({"mode": "live"}))
        .await
        .remove(0);
    let r = app
        .pay(&live_pk, "ORDER_LIVE", "20.00", &[&live_code], None)
        .await;
    assert_eq!(r.status(), 201);
    let live_txn = body(r).await["id"].as_str().unwrap().to_owned();

    let mut b = Browser::signed_in(&app, &owner).await;
    let p = b.get("/dashboard/transactions").await;
    assert!(p.text.contains(&test_txn) && !p.text.contains(&live_txn));
    assert!(p.text.contains("test data"));
    assert_eq!(
        b.get(&format!("/dashboard/transactions/{live_txn}"))
            .await
            .status,
        404
    );

    let csrf = p.input("csrf");
    assert_eq!(
        b.post("/dashboard/mode", &[("csrf", &csrf), ("mode", "live")])
            .await
            .status,
        303
    );
    let p = b.get("/dashboard/transactions").await;
    assert!(p.text.contains(&live_txn) && !p.text.contains(&test_txn));
    assert!(p.text.contains("live data"));
    let overview = b.get("/dashboard/").await;
    assert!(overview.text.contains("20.00") && !overview.text.contains(">10.00<"));
    assert_eq!(
        b.get(&format!("/dashboard/transactions/{test_txn}"))
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn the_csv_export_holds_every_filtered_row_and_search_finds_by_order_or_transaction_id() {
    let app = TestApp::spawn().await;
    let m = app.create_merchant(250).await;
    let owner = create_user(&app, &m, "viewer");
    let mut ids = Vec::new();
    for (i, amount) in ["10.00", "12.50", "30.00", "7.25"].iter().enumerate() {
        ids.push(paid(&app, &m, &format!("ORDER_CSV_{i}"), amount).await);
    }
    let mut b = Browser::signed_in(&app, &owner).await;

    let csv = b.get("/dashboard/transactions.csv").await;
    assert_eq!(csv.status, 200);
    assert!(csv.headers[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    let mut reader = csv::Reader::from_reader(csv.text.as_bytes());
    let headers = reader.headers().unwrap().clone();
    assert_eq!(
        headers.iter().collect::<Vec<_>>(),
        [
            "id",
            "created_at",
            "order_id",
            "status",
            "currency",
            "amount",
            "commission",
            "net",
            "refunded"
        ]
    );
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 4);
    for row in &rows {
        let r = app
            .client
            .get(app.url(&format!("/api/transactions/{}", &row[0])))
            .bearer_auth(&m.sk)
            .send()
            .await
            .unwrap();
        let t = body(r).await;
        assert_eq!(t["order_id"], row[2]);
        assert_eq!(t["status"], row[3]);
        assert_eq!(t["amount"], row[5]);
        assert_eq!(t["commission"], row[6]);
        assert_eq!(t["net"], row[7]);
    }
    let mut exported: Vec<&str> = rows.iter().map(|r| r.get(0).unwrap()).collect();
    exported.sort();
    let mut expected: Vec<&str> = ids.iter().map(String::as_str).collect();
    expected.sort();
    assert_eq!(exported, expected);

    // Filters apply to the export: amounts of at least 12.00 EUR.
    let csv = b
        .get("/dashboard/transactions.csv?currency=EUR&min=12.00")
        .await;
    let n = csv::Reader::from_reader(csv.text.as_bytes())
        .records()
        .count();
    assert_eq!(n, 2);
    let p = b.get("/dashboard/transactions?min=12.00").await;
    assert_eq!(p.status, 400, "an amount needs its currency");
    let p = b.get("/dashboard/transactions?q=ORDER_CSV_2").await;
    assert!(p.text.contains(&ids[2]) && !p.text.contains(&ids[1]));
    let p = b
        .get(&format!("/dashboard/transactions?q={}", ids[1]))
        .await;
    assert!(p.text.contains(&ids[1]) && !p.text.contains(&ids[2]));
}

fn dec(v: &Value) -> Decimal {
    v.as_str().unwrap().parse().unwrap()
}

/// The figure of `field` in the `period` row of the overview.
fn figure(page: &str, period: &str, field: &str) -> String {
    let row = &page[page.find(&format!("data-period=\"{period}\"")).unwrap()..];
    let marker = format!("data-field=\"{field}\">");
    let start = row.find(&marker).unwrap() + marker.len();
    row[start..start + row[start..].find('<').unwrap()].to_owned()
}

#[tokio::test]
async fn the_overview_figures_equal_the_sums_of_the_transactions() {
    let app = TestApp::spawn().await;
    let m = app.create_merchant(275).await;
    let owner = create_user(&app, &m, "owner");
    let mut ids = Vec::new();
    for (i, amount) in ["19.99", "5.01", "42.00"].iter().enumerate() {
        ids.push(paid(&app, &m, &format!("ORDER_SUM_{i}"), amount).await);
    }
    let r = app
        .post(
            &format!("/api/transactions/{}/refunds", ids[2]),
            &m.sk,
            &json!({"amount": "2.50"}),
            Some(&uuid::Uuid::new_v4().to_string()),
        )
        .await;
    assert_eq!(r.status(), 201);

    let (mut volume, mut commission, mut net) = (Decimal::ZERO, Decimal::ZERO, Decimal::ZERO);
    for id in &ids {
        let r = app
            .client
            .get(app.url(&format!("/api/transactions/{id}")))
            .bearer_auth(&m.sk)
            .send()
            .await
            .unwrap();
        let t = body(r).await;
        volume += dec(&t["amount"]);
        commission += dec(&t["commission"]);
        net += dec(&t["net"]);
    }
    let mut b = Browser::signed_in(&app, &owner).await;
    let page = b.get("/dashboard/").await;
    assert_eq!(page.status, 200);
    for period in ["today", "month"] {
        assert_eq!(figure(&page.text, period, "volume"), format!("{volume:.2}"));
        assert_eq!(figure(&page.text, period, "count"), "3");
        assert_eq!(
            figure(&page.text, period, "commission"),
            format!("{commission:.2}")
        );
        assert_eq!(figure(&page.text, period, "net"), format!("{net:.2}"));
        assert_eq!(figure(&page.text, period, "refund_count"), "1");
        assert_eq!(figure(&page.text, period, "refunded"), "2.50");
    }
    assert!(page.text.contains("<svg"), "the 30-day chart");
}

/// The id of the merchant's secret test key `sk`, from the keys page's data.
async fn key_row_ids(b: &mut Browser) -> Vec<String> {
    let p = b.get("/dashboard/keys").await;
    assert_eq!(p.status, 200, "{}", p.text);
    p.text
        .match_indices("<tr data-id=\"")
        .map(|(i, m)| {
            let rest = &p.text[i + m.len()..];
            rest[..rest.find('"').unwrap()].to_owned()
        })
        .collect()
}

#[tokio::test]
async fn staff_cannot_roll_a_key_and_an_admins_roll_shows_the_new_key_once() {
    let app = TestApp::spawn().await;
    let m = app.create_merchant(250).await;
    let staff = create_user(&app, &m, "staff");
    let admin = create_user(&app, &m, "admin");

    let mut s = Browser::signed_in(&app, &staff).await;
    let ids = key_row_ids(&mut s).await;
    assert_eq!(
        ids.len(),
        2,
        "the merchant's publishable and secret test keys"
    );
    let page = s.get("/dashboard/keys").await;
    assert!(!page.text.contains("/roll\""), "no roll form for staff");
    let csrf = page.input("csrf");
    let before = app.count("api_keys").await;
    for id in &ids {
        let p = s
            .post(
                &format!("/dashboard/keys/{id}/roll"),
                &[("csrf", &csrf), ("overlap", "0")],
            )
            .await;
        assert_eq!(p.status, 403);
        let p = s
            .post(&format!("/dashboard/keys/{id}/revoke"), &[("csrf", &csrf)])
            .await;
        assert_eq!(p.status, 403);
    }
    let p = s
        .post("/dashboard/keys", &[("csrf", &csrf), ("kind", "secret")])
        .await;
    assert_eq!(p.status, 403);
    assert_eq!(app.count("api_keys").await, before);
    assert_eq!(
        app.count("api_keys WHERE expires_at IS NOT NULL OR revoked_at IS NOT NULL")
            .await,
        0
    );
    let r = app
        .client
        .get(app.url("/api/transactions"))
        .bearer_auth(&m.sk)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "the secret key still works");

    // An admin rolls the secret key without overlap: the new key is shown once and works;
    // the old one stops.
    let mut a = Browser::signed_in(&app, &admin).await;
    let page = a.get("/dashboard/keys").await;
    let csrf = page.input("csrf");
    let sk_last4 = &m.sk[m.sk.len() - 4..];
    let sk_id = ids
        .iter()
        .find(|id| {
            let row = &page.text[page.text.find(&format!("data-id=\"{id}\"")).unwrap()..];
            row[..row.find("</tr>").unwrap()].contains(sk_last4)
        })
        .unwrap()
        .clone();
    let p = a
        .post(
            &format!("/dashboard/keys/{sk_id}/roll"),
            &[("csrf", &csrf), ("overlap", "0")],
        )
        .await;
    assert_eq!(p.status, 200, "{}", p.text);
    let marker = "<code id=\"new-key\">";
    let start = p.text.find(marker).unwrap() + marker.len();
    let new_sk = p.text[start..start + p.text[start..].find('<').unwrap()].to_owned();
    assert!(new_sk.starts_with("sk_test_"), "{new_sk}");
    let again = a.get("/dashboard/keys").await;
    assert!(!again.text.contains(&new_sk), "shown only once");
    let status = |key: String| {
        let app = &app;
        async move {
            app.client
                .get(app.url("/api/transactions"))
                .bearer_auth(key)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(status(new_sk.clone()).await, 200);
    // The key cache may remember the old key for KEY_CACHE_TTL; the database says rolled.
    assert_eq!(
        app.count(&format!(
            "api_keys WHERE id = '{sk_id}' AND expires_at IS NOT NULL"
        ))
        .await,
        1
    );

    // The activity log names who rolled it.
    let log = a.get("/dashboard/activity?action=key.rolled").await;
    assert_eq!(log.status, 200);
    let row = &log.text[log.text.find("data-action=\"key.rolled\"").unwrap()..];
    assert!(row[..row.find("</tr>").unwrap()].contains(&admin), "{row}");
    assert!(row.contains(&sk_id));
}

#[tokio::test]
async fn the_activity_log_records_logins_refunds_and_api_changes_by_their_actor() {
    let app = TestApp::spawn().await;
    let m = app.create_merchant(250).await;
    let owner = create_user(&app, &m, "owner");
    let txn = paid(&app, &m, "ORDER_ACTIVITY", "30.00").await;
    let mut b = Browser::signed_in(&app, &owner).await;

    let confirm = b
        .get(&format!("/dashboard/transactions/{txn}/refund?amount=5.00"))
        .await;
    let form = [
        ("csrf", confirm.input("csrf")),
        ("idempotency_key", confirm.input("idempotency_key")),
        ("amount", confirm.input("amount")),
    ];
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_eq!(
        b.post(&format!("/dashboard/transactions/{txn}/refund"), &form)
            .await
            .status,
        303
    );
    // A refund through the API with the secret key is logged under that key.
    let r = app
        .post(
            &format!("/api/transactions/{txn}/refunds"),
            &m.sk,
            &json!({"amount": "1.00"}),
            Some(&uuid::Uuid::new_v4().to_string()),
        )
        .await;
    assert_eq!(r.status(), 201);

    let log = b.get("/dashboard/activity").await;
    assert_eq!(log.status, 200);
    let rows: Vec<&str> = log.text.split("<tr data-action=").skip(1).collect();
    let of = |action: &str| -> Vec<&str> {
        rows.iter()
            .copied()
            .filter(|r| r.starts_with(&format!("\"{action}\"")))
            .collect()
    };
    assert_eq!(of("login").len(), 1);
    assert!(of("login")[0].contains(&owner));
    let refunds = of("refund.created");
    assert_eq!(refunds.len(), 2, "{}", log.text);
    assert!(refunds
        .iter()
        .any(|r| r.contains(&owner) && r.contains("5.00 EUR")));
    assert!(refunds
        .iter()
        .any(|r| r.contains("API key key_") && r.contains("1.00 EUR")));

    let csv = b.get("/dashboard/activity.csv?action=refund.created").await;
    assert_eq!(csv.status, 200);
    let n = csv::Reader::from_reader(csv.text.as_bytes())
        .records()
        .count();
    assert_eq!(n, 2);

    // Live mode shows none of the test refunds; the login (of no mode) stays.
    let csrf = log.input("csrf");
    b.post("/dashboard/mode", &[("csrf", &csrf), ("mode", "live")])
        .await;
    let live = b.get("/dashboard/activity").await;
    assert!(!live.text.contains("data-action=\"refund.created\""));
    assert!(live.text.contains("data-action=\"login\""));
}

#[tokio::test]
async fn an_admin_sets_the_endpoint_rotates_its_secret_and_redelivers_while_staff_cannot() {
    use crate::webhook_support::{Receiver, FAST_WORKER_ENV};
    let app = TestApp::spawn_with(&FAST_WORKER_ENV).await;
    let receiver = Receiver::start().await;
    let m = app.create_merchant(250).await;
    let admin = create_user(&app, &m, "admin");
    let staff = create_user(&app, &m, "staff");
    let mut a = Browser::signed_in(&app, &admin).await;

    let page = a.get("/dashboard/webhooks").await;
    assert_eq!(page.status, 200);
    let csrf = page.input("csrf");
    let p = a
        .post(
            "/dashboard/webhooks/endpoint",
            &[("csrf", &csrf), ("url", &receiver.url)],
        )
        .await;
    assert_eq!(p.status, 200, "{}", p.text);
    assert!(p.text.contains("whsec_"), "the secret, shown once");
    assert!(!a.get("/dashboard/webhooks").await.text.contains("whsec_"));

    let txn = paid(&app, &m, "ORDER_HOOKS", "12.00").await;
    let hits = receiver
        .wait_for("the payment's event", |h| !h.is_empty())
        .await;
    let event_id = hits[0].id().to_owned();
    // The delivery log shows the attempt with its HTTP code.
    let mut log = String::new();
    for _ in 0..200 {
        log = a.get("/dashboard/webhooks").await.text;
        if log.contains("HTTP 200") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert!(log.contains(&event_id) && log.contains("HTTP 200"), "{log}");
    let detail = a.get(&format!("/dashboard/transactions/{txn}")).await;
    assert!(detail.text.contains(&event_id) && detail.text.contains("HTTP 200"));

    // Staff may look but not redeliver nor rotate.
    let mut s = Browser::signed_in(&app, &staff).await;
    let staff_page = s.get("/dashboard/webhooks").await;
    assert!(!staff_page.text.contains("/redeliver\""));
    let staff_csrf = staff_page.input("csrf");
    let p = s
        .post(
            &format!("/dashboard/webhooks/events/{event_id}/redeliver"),
            &[("csrf", &staff_csrf)],
        )
        .await;
    assert_eq!(p.status, 403);
    let p = s
        .post(
            "/dashboard/webhooks/rotate-secret",
            &[("csrf", &staff_csrf), ("overlap", "0")],
        )
        .await;
    assert_eq!(p.status, 403);
    assert_eq!(receiver.hits().len(), 1);

    let p = a
        .post(
            &format!("/dashboard/webhooks/events/{event_id}/redeliver"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(p.status, 303);
    receiver
        .wait_for("the redelivery", |h| {
            h.iter().filter(|x| x.id() == event_id).count() == 2
        })
        .await;

    let p = a
        .post(
            "/dashboard/webhooks/rotate-secret",
            &[("csrf", &csrf), ("overlap", "86400")],
        )
        .await;
    assert_eq!(p.status, 200, "{}", p.text);
    assert!(p.text.contains("whsec_") && p.text.contains("still signs until"));

    let activity = a.get("/dashboard/activity").await.text;
    for action in [
        "webhook_endpoint.set",
        "event.redelivered",
        "webhook_endpoint.secret_rotated",
    ] {
        assert!(
            activity.contains(&format!("data-action=\"{action}\"")),
            "{action}"
        );
    }
}

#[tokio::test]
async fn settings_change_the_checkout_and_only_an_owner_changes_the_team() {
    let app = TestApp::spawn().await;
    let m = app.create_merchant(250).await;
    let owner = create_user(&app, &m, "owner");
    let admin = create_user(&app, &m, "admin");
    let staff = create_user(&app, &m, "staff");
    let settings = |app: &TestApp| {
        let (client, url, sk) = (
            app.client.clone(),
            app.url("/api/checkout-settings"),
            m.sk.clone(),
        );
        async move { body(client.get(url).bearer_auth(sk).send().await.unwrap()).await }
    };
    let before = settings(&app).await;

    let mut a = Browser::signed_in(&app, &admin).await;
    let page = a.get("/dashboard/settings").await;
    assert_eq!(page.status, 200);
    assert!(
        !page.text.contains("/settings/team/"),
        "no team forms for an admin"
    );
    let csrf = page.input("csrf");
    let p = a
        .post(
            "/dashboard/settings/checkout",
            &[("csrf", &csrf), ("origins", "not an origin")],
        )
        .await;
    assert_eq!(p.status, 400, "{}", p.text);
    let p = a
        .post(
            "/dashboard/settings/checkout",
            &[
                ("csrf", &csrf),
                ("require_signature", "on"),
                ("origins", "https://shop.example\nhttps://www.shop.example"),
            ],
        )
        .await;
    assert_eq!(p.status, 303, "{}", p.text);
    let after = settings(&app).await;
    assert_eq!(after["require_signature"], true);
    assert_eq!(
        after["allowed_origins"],
        json!(["https://shop.example", "https://www.shop.example"])
    );
    let p = a
        .post(
            "/dashboard/settings/rotate-signing-secret",
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(p.status, 200);
    let rotated = settings(&app).await["signing_secret"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(before["signing_secret"].as_str().unwrap(), rotated);
    assert!(p.text.contains(&rotated), "the new secret, shown once");
    assert!(!a.get("/dashboard/settings").await.text.contains(&rotated));

    // The team: an admin may not change roles; the owner disables staff, whose session ends.
    let staff_id = {
        let page = a.get("/dashboard/settings").await;
        let i = page.text.find(&staff).unwrap();
        let row = &page.text[..i];
        let start = row.rfind("<tr data-id=\"").unwrap() + "<tr data-id=\"".len();
        row[start..start + row[start..].find('"').unwrap()].to_owned()
    };
    let mut st = Browser::signed_in(&app, &staff).await;
    let p = a
        .post(
            &format!("/dashboard/settings/team/{staff_id}"),
            &[("csrf", &csrf), ("role", "owner")],
        )
        .await;
    assert_eq!(p.status, 403);
    let mut o = Browser::signed_in(&app, &owner).await;
    let ocsrf = o.csrf().await;
    let p = o
        .post(
            &format!("/dashboard/settings/team/{staff_id}"),
            &[("csrf", &ocsrf), ("role", "viewer"), ("disabled", "on")],
        )
        .await;
    assert_eq!(p.status, 303, "{}", p.text);
    assert_eq!(st.get("/dashboard/").await.status, 303, "the session ended");
    assert_eq!(Browser::new(&app).login(&staff, PASSWORD).await.status, 401);
    let owner_id = {
        let page = o.get("/dashboard/settings").await;
        let i = page.text.find("(you)").unwrap();
        let row = &page.text[..i];
        let start = row.rfind("<tr data-id=\"").unwrap() + "<tr data-id=\"".len();
        row[start..start + row[start..].find('"').unwrap()].to_owned()
    };
    let p = o
        .post(
            &format!("/dashboard/settings/team/{owner_id}"),
            &[("csrf", &ocsrf), ("role", "viewer")],
        )
        .await;
    assert_eq!(p.status, 400, "an owner keeps their own role");

    let log = o.get("/dashboard/activity").await.text;
    for action in [
        "checkout_settings.changed",
        "checkout_settings.signing_secret_rotated",
        "user.role_changed",
        "user.disabled",
    ] {
        assert!(
            log.contains(&format!("data-action=\"{action}\"")),
            "{action}"
        );
    }
}

#[tokio::test]
async fn the_transaction_list_pages_by_cursor_without_gaps_or_repeats() {
    let app = TestApp::spawn().await;
    let m = app.create_merchant(250).await;
    let viewer = create_user(&app, &m, "viewer");
    let code = app.issue_one("100.00").await;
    let mut ids = Vec::new();
    for i in 0..52 {
        let r = app
            .pay(&m.pk, &format!("ORDER_PAGE_{i}"), "1.00", &[&code], None)
            .await;
        assert_eq!(r.status(), 201);
        ids.push(body(r).await["id"].as_str().unwrap().to_owned());
    }
    let mut b = Browser::signed_in(&app, &viewer).await;
    let listed = |text: &str| -> Vec<String> {
        text.match_indices("<tr data-id=\"")
            .map(|(i, m)| {
                let rest = &text[i + m.len()..];
                rest[..rest.find('"').unwrap()].to_owned()
            })
            .collect()
    };
    let first = b.get("/dashboard/transactions").await;
    let page1 = listed(&first.text);
    assert_eq!(page1.len(), 50);
    let marker = "rel=\"next\" href=\"";
    let start = first.text.find(marker).expect("a next link") + marker.len();
    let next =
        first.text[start..start + first.text[start..].find('"').unwrap()].replace("&amp;", "&");
    let second = b.get(&next).await;
    let page2 = listed(&second.text);
    assert_eq!(page2.len(), 2);
    assert!(
        !second.text.contains(marker),
        "the last page has no next link"
    );
    let mut all: Vec<String> = page1.into_iter().chain(page2).collect();
    // Newest first: the reverse of the order they were paid in.
    let mut expected = ids.clone();
    expected.reverse();
    assert_eq!(all, expected);
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 52);
}

/// The pages that only report, with their paths (`{txn}`: a transaction's id).
const REPORT_PAGES: [&str; 9] = [
    "/dashboard/",
    "/dashboard/transactions",
    "/dashboard/transactions.csv",
    "/dashboard/transactions/{txn}",
    "/dashboard/webhooks",
    "/dashboard/activity",
    "/dashboard/activity.csv",
    "/dashboard/keys",
    "/dashboard/settings",
];

fn header_of(p: &Page, name: &str) -> Option<String> {
    p.headers.get(name).map(|v| v.to_str().unwrap().to_owned())
}

#[tokio::test]
async fn every_report_page_says_where_it_was_read_and_a_current_one_shows_no_banner() {
    let app = TestApp::spawn().await;
    let m = app.create_merchant(250).await;
    let owner = create_user(&app, &m, "owner");
    let txn = paid(&app, &m, "ORDER_FRESH", "10.00").await;
    let mut b = Browser::signed_in(&app, &owner).await;
    assert!(
        !b.cookies.contains_key("sp_wrote"),
        "without a replica, no write position is kept"
    );
    for path in REPORT_PAGES {
        let p = b.get(&path.replace("{txn}", &txn)).await;
        assert_eq!(p.status, 200, "{path}: {}", p.text);
        assert_eq!(
            header_of(&p, "data-source").as_deref(),
            Some("primary"),
            "{path}"
        );
        assert_eq!(
            header_of(&p, "data-lag").as_deref(),
            Some("0.000"),
            "{path}"
        );
        assert!(!p.text.contains("data-testid=\"freshness\""), "{path}");
    }

    if crate::helpers::is_sqlite() {
        // A replica is a PostgreSQL server; the embedded default has none.
        return;
    }
    // A replica URL naming the primary itself: read "on the replica", which is current.
    let peer = app
        .spawn_peer(&[("DATABASE_REPLICA_URL", &app.database_url)])
        .await;
    let mut b = Browser::signed_in(&peer, &owner).await;
    assert!(
        b.cookies
            .get("sp_wrote")
            .is_some_and(|v| v.parse::<i64>().is_ok()),
        "a form's write leaves its WAL position: {:?}",
        b.set_cookies
    );
    for path in REPORT_PAGES {
        let p = b.get(&path.replace("{txn}", &txn)).await;
        assert_eq!(p.status, 200, "{path}: {}", p.text);
        assert_eq!(
            header_of(&p, "data-source").as_deref(),
            Some("replica"),
            "{path}"
        );
        assert_eq!(
            header_of(&p, "data-lag").as_deref(),
            Some("0.000"),
            "{path}"
        );
        assert!(!p.text.contains("data-testid=\"freshness\""), "{path}");
    }
    // A refused form writes nothing and leaves no new position.
    let csrf = b.csrf().await;
    let before = b.cookies.get("sp_wrote").cloned();
    let p = b
        .post(
            "/dashboard/webhooks/endpoint",
            &[("csrf", "forged"), ("url", "x")],
        )
        .await;
    assert_eq!(p.status, 403);
    assert!(!b.set_cookies.iter().any(|c| c.starts_with("sp_wrote=")));
    assert_eq!(b.cookies.get("sp_wrote").cloned(), before);
    let p = b
        .post("/dashboard/mode", &[("csrf", &csrf), ("mode", "live")])
        .await;
    assert_eq!(p.status, 303);
    assert!(b.set_cookies.iter().any(|c| c.starts_with("sp_wrote=")
        && c.contains("HttpOnly")
        && c.contains("Path=/dashboard")));
}

/// The transactions page as the replica test sees it: `Data-Source`, whether ORDER_PAGE_A
/// and ORDER_PAGE_B are listed, whether the freshness banner shows.
fn page_state(p: &Page) -> (String, bool, bool, bool) {
    (
        header_of(p, "data-source").unwrap_or_default(),
        p.text.contains("ORDER_PAGE_A"),
        p.text.contains("ORDER_PAGE_B"),
        p.text.contains("data-testid=\"freshness\""),
    )
}

/// Fetches the transactions page until `check` holds (up to 60 s).
async fn wait_page(b: &mut Browser, what: &str, check: impl Fn(&Page) -> bool) -> Page {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let p = b.get("/dashboard/transactions").await;
        assert_eq!(p.status, 200, "{}", p.text);
        if check(&p) {
            return p;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{what}: {:?}",
            page_state(&p)
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// Run by scripts/test-replica (SP_REPLICA_PRIMARY_URL, SP_REPLICA_URL: a primary and its
/// streaming replica, migrated). With replay paused, the pages read the replica: a new
/// payment is missing and the page shows its lag; a refund from the back-office is made on
/// the primary and its user sees it at once (read-your-writes); once replay resumes, the
/// pages are current again.
#[tokio::test]
#[ignore = "needs a streaming replica: run by scripts/test-replica"]
async fn pages_read_the_replica_show_its_lag_and_their_users_own_writes() {
    use crate::replica::{pause_replay, resume_replay, standby};
    let primary = std::env::var("SP_REPLICA_PRIMARY_URL").expect("SP_REPLICA_PRIMARY_URL");
    let replica = std::env::var("SP_REPLICA_URL").expect("SP_REPLICA_URL");
    let app = TestApp::spawn_on_database(&primary, &[("DATABASE_REPLICA_URL", &replica)]).await;
    let standby = standby(&replica).await;
    let m = app.create_merchant(250).await;
    let owner = create_user(&app, &m, "owner");
    let txn_a = paid(&app, &m, "ORDER_PAGE_A", "20.00").await;
    let mut b = Browser::signed_in(&app, &owner).await;
    wait_page(&mut b, "ORDER_PAGE_A replicated", |p| {
        page_state(p) == ("replica".into(), true, false, false)
    })
    .await;

    pause_replay(&standby).await;
    paid(&app, &m, "ORDER_PAGE_B", "10.00").await;
    let p = wait_page(&mut b, "the lag banner", |p| {
        let (source, _, _, banner) = page_state(p);
        source == "replica" && banner
    })
    .await;
    assert!(
        !p.text.contains("ORDER_PAGE_B"),
        "the replica does not have it yet"
    );
    assert!(p.text.contains("(read replica)"), "{}", p.text);
    let lag: f64 = header_of(&p, "data-lag").unwrap().parse().unwrap();
    assert!(lag >= 1.0, "{lag}");
    println!("paused replica: the page reports Data-Lag {lag}");

    // A refund decides money: made on the primary, and its user sees it right after.
    let refund = format!("/dashboard/transactions/{txn_a}/refund");
    let confirm = b.get(&format!("{refund}?amount=5.00&reason=replica")).await;
    assert_eq!(confirm.status, 200, "{}", confirm.text);
    let form = [
        ("csrf", confirm.input("csrf")),
        ("idempotency_key", confirm.input("idempotency_key")),
        ("amount", confirm.input("amount")),
        ("reason", confirm.input("reason")),
    ];
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let done = b.post(&refund, &form).await;
    assert_eq!(done.status, 303, "{}", done.text);
    let p = b.get(done.location.as_deref().unwrap()).await;
    assert_eq!(p.status, 200);
    assert!(p.text.contains("partially_refunded"), "{}", p.text);
    assert!(p.text.contains("made."), "the refund's notice: {}", p.text);
    assert_eq!(header_of(&p, "data-source").as_deref(), Some("primary"));
    assert!(!p.text.contains("data-testid=\"freshness\""));
    // Another browser, with no write of its own, still reads the lagging replica.
    let mut other = Browser::signed_in(&app, &owner).await;
    other.cookies.remove("sp_wrote");
    let p = other.get(&format!("/dashboard/transactions/{txn_a}")).await;
    assert_eq!(header_of(&p, "data-source").as_deref(), Some("replica"));
    assert!(!p.text.contains("partially_refunded"), "not replayed yet");

    resume_replay(&standby).await;
    wait_page(&mut b, "current again", |p| {
        page_state(p) == ("replica".into(), true, true, false)
    })
    .await;
    standby.close().await.ok();
}
