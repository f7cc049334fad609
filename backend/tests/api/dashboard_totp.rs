//! Two-factor sign-in of the back-office through real HTTP: enrolment, the second step of
//! a sign-in, replays, the lockout, recovery codes, the team's requirement, turning it off,
//! and failed sign-ins in the activity log. Codes are computed with totp-rs from the secret
//! the enrolment page shows, as an authenticator app would.
use sea_orm::{ConnectionTrait, Statement};
use totp_rs::{Algorithm, Secret, TOTP};

use crate::{
    dashboard::{create_user, Browser, Page, PASSWORD},
    helpers::TestApp,
};

/// The authenticator app of the secret shown at enrolment.
fn app_of(secret: &str) -> TOTP {
    TOTP::new(
        Algorithm::SHA1,
        6,
        1,
        30,
        Secret::Encoded(secret.to_owned()).to_bytes().unwrap(),
        None,
        "test".to_owned(),
    )
    .unwrap()
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The code of the step `offset` steps from now (-1, 0 and 1 are accepted), computed when
/// it is used, so that codes taken in order have increasing steps.
fn code(secret: &str, offset: i64) -> String {
    let t = now() as i64 + offset * 30;
    app_of(secret).generate(t as u64)
}

/// A code that is none of the three accepted now.
fn wrong_code(secret: &str) -> String {
    let accepted: Vec<String> = (-1..=1).map(|o| code(secret, o)).collect();
    (0..1_000_000u32)
        .map(|n| format!("{:06}", (n * 7919 + 123_457) % 1_000_000))
        .find(|c| !accepted.contains(c))
        .unwrap()
}

/// The text of the element `<code id="{id}">`.
fn code_element(p: &Page, id: &str) -> String {
    let marker = format!("<code id=\"{id}\">");
    let start = p
        .text
        .find(&marker)
        .unwrap_or_else(|| panic!("no {id} in:\n{}", p.text))
        + marker.len();
    let end = p.text[start..].find('<').unwrap() + start;
    p.text[start..end].to_owned()
}

/// The recovery codes of a codes page.
fn recovery_codes(p: &Page) -> Vec<String> {
    let list = &p.text[p.text.find("id=\"recovery-codes\"").expect("codes list")..];
    let list = &list[..list.find("</ul>").unwrap()];
    list.split("<code>")
        .skip(1)
        .map(|c| c[..c.find("</code>").unwrap()].to_owned())
        .collect()
}

/// Turns two-factor sign-in on for the signed-in browser; returns the secret and the
/// recovery codes. Uses the step before the current one.
pub(crate) async fn enable(b: &mut Browser) -> (String, Vec<String>) {
    let page = b.get("/dashboard/account/two-factor").await;
    assert_eq!(page.status, 200, "{}", page.text);
    let secret = code_element(&page, "two-factor-secret");
    // HTML-escaped in the page, as every text is.
    let url = code_element(&page, "two-factor-url")
        .replace("&#x2f;", "/")
        .replace("&amp;", "&");
    assert!(url.starts_with("otpauth://totp/"), "{url}");
    assert!(url.contains(&format!("secret={secret}")), "{url}");
    assert!(
        page.text
            .replace("&#x2f;", "/")
            .contains("src=\"data:image/svg+xml;base64,"),
        "a QR code"
    );
    let csrf = page.input("csrf");
    let p = b
        .post(
            "/dashboard/account/two-factor/enable",
            &[
                ("csrf", &csrf),
                ("password", PASSWORD),
                ("code", &code(&secret, -1)),
            ],
        )
        .await;
    assert_eq!(p.status, 200, "{}", p.text);
    let codes = recovery_codes(&p);
    assert_eq!(codes.len(), 10, "{}", p.text);
    (secret, codes)
}

/// The password step: a browser holding the sign-in challenge, not a session.
async fn password_step(app: &TestApp, email: &str) -> Browser {
    let mut b = Browser::new(app);
    let p = b.login(email, PASSWORD).await;
    assert_eq!(p.status, 303, "{}", p.text);
    assert_eq!(p.location.as_deref(), Some("/dashboard/login/two-factor"));
    assert!(!b.cookies.contains_key("sp_session"), "no session yet");
    assert!(b.cookies.contains_key("sp_2fa"));
    b
}

/// The second step with `code`.
async fn code_step(b: &mut Browser, code: &str) -> Page {
    let form = b.get("/dashboard/login/two-factor").await;
    assert_eq!(form.status, 200, "{}", form.text);
    let csrf = form.input("csrf");
    b.post(
        "/dashboard/login/two-factor",
        &[("csrf", &csrf), ("code", code)],
    )
    .await
}

async fn activity(b: &mut Browser, action: &str) -> String {
    let p = b.get(&format!("/dashboard/activity?action={action}")).await;
    assert_eq!(p.status, 200, "{}", p.text);
    p.text
}

#[tokio::test]
async fn enrolment_needs_a_current_code_and_then_sign_in_asks_for_one_that_cannot_be_replayed() {
    let app = TestApp::spawn().await;
    let m = app.create_merchant(250).await;
    let email = create_user(&app, &m, "owner");
    let mut b = Browser::signed_in(&app, &email).await;

    let page = b.get("/dashboard/account/two-factor").await;
    assert_eq!(page.status, 200, "{}", page.text);
    let secret = code_element(&page, "two-factor-secret");
    // Shown again (a reload, a second tab): the same pending secret.
    let again = b.get("/dashboard/account/two-factor").await;
    assert_eq!(code_element(&again, "two-factor-secret"), secret);
    // Stored sealed, never as the base32 text.
    let db = app.db().await;
    let row = db
        .query_one(Statement::from_string(
            db.get_database_backend(),
            "SELECT totp_secret FROM dashboard_users".to_owned(),
        ))
        .await
        .unwrap()
        .unwrap();
    let stored: String = row.try_get("", "totp_secret").unwrap();
    assert!(stored.starts_with("v2:"), "{stored}");
    assert!(!stored.contains(&secret));

    // A wrong code, or the right code with a wrong password, switches nothing on.
    let csrf = page.input("csrf");
    let p = b
        .post(
            "/dashboard/account/two-factor/enable",
            &[
                ("csrf", &csrf),
                ("password", PASSWORD),
                ("code", &wrong_code(&secret)),
            ],
        )
        .await;
    assert_eq!(p.status, 400, "{}", p.text);
    let p = b
        .post(
            "/dashboard/account/two-factor/enable",
            &[
                ("csrf", &csrf),
                ("password", "not the password at all"),
                ("code", &code(&secret, -1)),
            ],
        )
        .await;
    assert_eq!(p.status, 400, "{}", p.text);
    assert!(b.get("/dashboard/account").await.text.contains("Off."));

    let (secret2, codes) = enable(&mut b).await;
    assert_eq!(secret2, secret);
    assert_eq!(app.count("dashboard_recovery_codes").await, 10);
    let account = b.get("/dashboard/account").await;
    assert!(
        account.text.contains("Unused recovery codes: 10"),
        "{}",
        account.text
    );
    for c in &codes {
        assert!(!account.text.contains(c.as_str()), "codes are shown once");
    }

    // The password alone opens nothing.
    let mut s = password_step(&app, &email).await;
    for path in [
        "/dashboard/",
        "/dashboard/account",
        "/dashboard/transactions",
    ] {
        let p = s.get(path).await;
        assert_eq!(p.status, 303, "{path}");
        assert_eq!(p.location.as_deref(), Some("/dashboard/login"), "{path}");
    }
    let p = code_step(&mut s, &wrong_code(&secret)).await;
    assert_eq!(p.status, 401, "{}", p.text);
    assert!(!s.cookies.contains_key("sp_session"));
    let good = code(&secret, 0);
    let p = code_step(&mut s, &good).await;
    assert_eq!(p.status, 303, "{}", p.text);
    assert_eq!(p.location.as_deref(), Some("/dashboard/"));
    assert!(s.cookies.contains_key("sp_session"));
    assert!(!s.cookies.contains_key("sp_2fa"), "the challenge is over");
    assert_eq!(s.get("/dashboard/").await.status, 200);

    // The same code again, from another browser that has the password: refused.
    let mut thief = password_step(&app, &email).await;
    let p = code_step(&mut thief, &good).await;
    assert_eq!(p.status, 401, "a code is accepted once");
    assert!(!thief.cookies.contains_key("sp_session"));
    // A later code (one step ahead, within the skew) is accepted.
    let p = code_step(&mut thief, &code(&secret, 1)).await;
    assert_eq!(p.status, 303, "{}", p.text);

    let log = activity(&mut b, "two_factor.enabled").await;
    assert!(log.contains("data-action=\"two_factor.enabled\""), "{log}");
    let log = activity(&mut b, "login.failed").await;
    assert!(log.contains("wrong two-factor code"), "{log}");
}

#[tokio::test]
async fn wrong_codes_count_in_the_login_lockout() {
    let app = TestApp::spawn_with(&[("LOGIN_LOCKOUT_ACCOUNT_THRESHOLD", "3")]).await;
    let m = app.create_merchant(250).await;
    let email = create_user(&app, &m, "owner");
    let mut b = Browser::signed_in(&app, &email).await;
    let (secret, _) = enable(&mut b).await;

    let mut s = password_step(&app, &email).await;
    // Past the threshold, as password failures count: the fourth failure locks.
    for _ in 0..4 {
        let p = code_step(&mut s, &wrong_code(&secret)).await;
        assert_eq!(p.status, 401, "{}", p.text);
    }
    let p = code_step(&mut s, &code(&secret, 0)).await;
    assert_eq!(p.status, 429, "{}", p.text);
    assert!(p.headers.contains_key(reqwest::header::RETRY_AFTER));
    assert!(!s.cookies.contains_key("sp_session"));
    // And the password step of the account is locked too: the same counters.
    let p = Browser::new(&app).login(&email, PASSWORD).await;
    assert_eq!(p.status, 429, "{}", p.text);
}

#[tokio::test]
async fn a_recovery_code_signs_in_once_and_renewed_codes_replace_the_old_ones() {
    let app = TestApp::spawn().await;
    let m = app.create_merchant(250).await;
    let email = create_user(&app, &m, "owner");
    let mut b = Browser::signed_in(&app, &email).await;
    let (secret, codes) = enable(&mut b).await;

    // Typed as people do: upper case, spaces around.
    let typed = format!("  {} ", codes[0].to_uppercase());
    let mut s = password_step(&app, &email).await;
    let p = code_step(&mut s, &typed).await;
    assert_eq!(p.status, 303, "{}", p.text);
    let mut again = password_step(&app, &email).await;
    let p = code_step(&mut again, &codes[0]).await;
    assert_eq!(p.status, 401, "a recovery code is spent once");

    let log = activity(&mut b, "two_factor.recovery_code_used").await;
    assert!(log.contains("9 left"), "{log}");
    assert!(b
        .get("/dashboard/account")
        .await
        .text
        .contains("Unused recovery codes: 9"));

    // Renewing takes the password and a code; the old codes stop working.
    let csrf = b.csrf().await;
    let p = b
        .post(
            "/dashboard/account/two-factor/recovery-codes",
            &[
                ("csrf", &csrf),
                ("password", PASSWORD),
                ("code", &wrong_code(&secret)),
            ],
        )
        .await;
    assert_eq!(p.status, 400, "{}", p.text);
    let p = b
        .post(
            "/dashboard/account/two-factor/recovery-codes",
            &[
                ("csrf", &csrf),
                ("password", PASSWORD),
                ("code", &code(&secret, 0)),
            ],
        )
        .await;
    assert_eq!(p.status, 200, "{}", p.text);
    let renewed = recovery_codes(&p);
    assert_eq!(renewed.len(), 10);
    assert_eq!(app.count("dashboard_recovery_codes").await, 10);
    let mut old = password_step(&app, &email).await;
    assert_eq!(code_step(&mut old, &codes[1]).await.status, 401);
    let p = code_step(&mut old, &renewed[0]).await;
    assert_eq!(p.status, 303, "{}", p.text);
    let log = activity(&mut b, "two_factor.recovery_codes_regenerated").await;
    assert!(log.contains("data-action=\"two_factor.recovery_codes_regenerated\""));
    // No code is ever stored as typed.
    let db = app.db().await;
    let rows = db
        .query_all(Statement::from_string(
            db.get_database_backend(),
            "SELECT code_hash FROM dashboard_recovery_codes".to_owned(),
        ))
        .await
        .unwrap();
    for r in rows {
        let h: String = r.try_get("", "code_hash").unwrap();
        assert_eq!(h.len(), 64);
        assert!(renewed.iter().all(|c| !h.contains(&c.replace('-', ""))));
    }
}

#[tokio::test]
async fn an_owner_requiring_two_factor_sends_members_to_enrol_before_anything_else() {
    let app = TestApp::spawn().await;
    let m = app.create_merchant(250).await;
    let owner = create_user(&app, &m, "owner");
    let staff = create_user(&app, &m, "staff");
    let admin = create_user(&app, &m, "admin");
    let mut o = Browser::signed_in(&app, &owner).await;

    // Not before the owner has it: no owner locks themselves out.
    let csrf = o.csrf().await;
    let p = o
        .post(
            "/dashboard/settings/two-factor",
            &[("csrf", &csrf), ("required", "on")],
        )
        .await;
    assert_eq!(p.status, 400, "{}", p.text);
    assert!(p.text.contains("your own account"), "{}", p.text);
    let (owner_secret, _) = enable(&mut o).await;
    let p = o
        .post(
            "/dashboard/settings/two-factor",
            &[("csrf", &csrf), ("required", "on")],
        )
        .await;
    assert_eq!(p.status, 303, "{}", p.text);
    // Only a role that manages the team may change it.
    let mut a = Browser::signed_in(&app, &admin).await;
    let p = a.get("/dashboard/").await;
    assert_eq!(p.location.as_deref(), Some("/dashboard/account/two-factor"));

    // A member signs in with the password and reaches only the enrolment page.
    let mut s = Browser::new(&app);
    let p = s.login(&staff, PASSWORD).await;
    assert_eq!(p.status, 303, "{}", p.text);
    for path in [
        "/dashboard/",
        "/dashboard/account",
        "/dashboard/transactions",
        "/dashboard/settings",
        "/dashboard/activity",
    ] {
        let p = s.get(path).await;
        assert_eq!(p.status, 303, "{path}");
        assert_eq!(
            p.location.as_deref(),
            Some("/dashboard/account/two-factor"),
            "{path}"
        );
    }
    let enrol = s.get("/dashboard/account/two-factor").await;
    assert_eq!(enrol.status, 200);
    assert!(enrol.text.contains("Your team requires two-factor sign-in"));
    let csrf_admin = enrol.input("csrf");
    let p = s
        .post("/dashboard/settings/two-factor", &[("csrf", &csrf_admin)])
        .await;
    assert_eq!(p.status, 303);
    assert_eq!(p.location.as_deref(), Some("/dashboard/account/two-factor"));
    let (_, _) = enable(&mut s).await;
    assert_eq!(
        s.get("/dashboard/").await.status,
        200,
        "enrolled: the pages open"
    );

    // The owner cannot turn it off while it is required.
    let csrf = o.csrf().await;
    let p = o
        .post(
            "/dashboard/account/two-factor/disable",
            &[
                ("csrf", &csrf),
                ("password", PASSWORD),
                ("code", &code(&owner_secret, 0)),
            ],
        )
        .await;
    assert_eq!(p.status, 400, "{}", p.text);
    assert!(p.text.contains("requires two-factor"), "{}", p.text);
    // The admin (no ManageTeam) may not lift the requirement once enrolled.
    let (_, _) = enable(&mut a).await;
    let csrf_a = a.csrf().await;
    let p = a
        .post("/dashboard/settings/two-factor", &[("csrf", &csrf_a)])
        .await;
    assert_eq!(p.status, 403, "{}", p.text);
    let log = activity(&mut o, "team.two_factor_requirement").await;
    assert!(log.contains("required"), "{log}");
    // Lifting it lets members without a second factor in again.
    let p = o
        .post("/dashboard/settings/two-factor", &[("csrf", &csrf)])
        .await;
    assert_eq!(p.status, 303, "{}", p.text);
}

#[tokio::test]
async fn turning_two_factor_off_needs_the_password_and_a_current_code() {
    let app = TestApp::spawn().await;
    let m = app.create_merchant(250).await;
    let email = create_user(&app, &m, "owner");
    let mut b = Browser::signed_in(&app, &email).await;
    let (secret, _) = enable(&mut b).await;
    let csrf = b.csrf().await;

    for (password, code) in [
        (PASSWORD, wrong_code(&secret)),
        ("not the password at all", code(&secret, 0)),
    ] {
        let p = b
            .post(
                "/dashboard/account/two-factor/disable",
                &[("csrf", &csrf), ("password", password), ("code", &code)],
            )
            .await;
        assert_eq!(p.status, 400, "{}", p.text);
    }
    assert!(b.get("/dashboard/account").await.text.contains("On since"));
    let p = b
        .post(
            "/dashboard/account/two-factor/disable",
            &[
                ("csrf", &csrf),
                ("password", PASSWORD),
                ("code", &code(&secret, 0)),
            ],
        )
        .await;
    assert_eq!(p.status, 303, "{}", p.text);
    assert_eq!(app.count("dashboard_recovery_codes").await, 0);
    let log = activity(&mut b, "two_factor.disabled").await;
    assert!(log.contains("data-action=\"two_factor.disabled\""), "{log}");
    // The password alone signs in again.
    let p = Browser::new(&app).login(&email, PASSWORD).await;
    assert_eq!(p.location.as_deref(), Some("/dashboard/"));
}

#[tokio::test]
async fn failed_sign_ins_are_in_the_merchants_log_and_tell_the_caller_nothing_more() {
    let app = TestApp::spawn().await;
    let m = app.create_merchant(250).await;
    let other = app.create_merchant(250).await;
    let email = create_user(&app, &m, "owner");
    let other_email = create_user(&app, &other, "owner");
    let typed = "a-typed-wrong-password";

    let known = Browser::new(&app).login(&email, typed).await;
    let unknown = Browser::new(&app)
        .login("nobody-here@shop.example", typed)
        .await;
    assert_eq!(known.status, 401);
    assert_eq!(unknown.status, known.status);
    let strip = |p: &Page| {
        let csrf = p.input("csrf");
        p.text
            .replace(&csrf, "")
            .replace("nobody-here@shop.example", "")
            .replace(&email, "")
    };
    assert_eq!(strip(&known), strip(&unknown), "one answer for both");

    let mut b = Browser::signed_in(&app, &email).await;
    let log = activity(&mut b, "login.failed").await;
    assert!(log.contains("wrong password (from "), "{log}");
    assert!(!log.contains(typed), "never the typed password");
    // Not in another merchant's log.
    let mut o = Browser::signed_in(&app, &other_email).await;
    let log = activity(&mut o, "login.failed").await;
    assert!(!log.contains("wrong password"), "{log}");
}

/// The sealed TOTP secret and the id of the only back-office user of the app.
async fn stored_secret(app: &TestApp) -> (String, String) {
    let db = app.db().await;
    let row = db
        .query_one(Statement::from_string(
            db.get_database_backend(),
            "SELECT id, totp_secret FROM dashboard_users".to_owned(),
        ))
        .await
        .unwrap()
        .unwrap();
    db.close().await.ok();
    (
        row.try_get("", "id").unwrap(),
        row.try_get("", "totp_secret").unwrap(),
    )
}

#[tokio::test]
async fn the_totp_secret_is_sealed_to_its_user_and_reencrypt_moves_it_to_a_new_key() {
    use superpayment_backend::webhooks::secrets::{totp_secret_aad, SecretCipher};
    let app = TestApp::spawn().await;
    let m = app.create_merchant(250).await;
    let email = create_user(&app, &m, "owner");
    let mut b = Browser::signed_in(&app, &email).await;
    let (secret, _) = enable(&mut b).await;
    let (user_id, stored) = stored_secret(&app).await;
    let old = SecretCipher::from_base64(crate::helpers::ENCRYPTION_KEY).unwrap();
    assert_eq!(
        old.open_text_bound(&stored, &totp_secret_aad(&user_id))
            .unwrap(),
        secret
    );
    assert!(
        old.open_text_bound(&stored, &totp_secret_aad("usr_someone_else"))
            .is_err(),
        "bound to its user"
    );

    let new_key = "bmV3LWVuY3J5cHRpb24ta2V5LTAxMjM0NTY3ODlhYmM=";
    let (ok, out) = app.cli_with(
        &["admin", "reencrypt"],
        &[
            ("ENCRYPTION_KEY", new_key),
            ("OLD_ENCRYPTION_KEY", crate::helpers::ENCRYPTION_KEY),
        ],
    );
    assert!(ok, "{out}");
    assert!(out.contains("unreadable=0"), "{out}");
    let (_, moved) = stored_secret(&app).await;
    let new = SecretCipher::from_base64(new_key).unwrap();
    assert_eq!(
        new.open_text_bound(&moved, &totp_secret_aad(&user_id))
            .unwrap(),
        secret
    );
    assert!(old
        .open_text_bound(&moved, &totp_secret_aad(&user_id))
        .is_err());
}

#[tokio::test]
async fn the_same_code_sent_twice_at_once_opens_one_session() {
    let app = TestApp::spawn().await;
    let m = app.create_merchant(250).await;
    let email = create_user(&app, &m, "owner");
    let mut b = Browser::signed_in(&app, &email).await;
    let (secret, codes) = enable(&mut b).await;

    // Two browsers with the password each send the same code at the same moment.
    for code in [code(&secret, 0), codes[0].clone()] {
        let mut x = password_step(&app, &email).await;
        let mut y = password_step(&app, &email).await;
        let (cx, cy) = (
            x.get("/dashboard/login/two-factor").await.input("csrf"),
            y.get("/dashboard/login/two-factor").await.input("csrf"),
        );
        let fx = [("csrf", cx.as_str()), ("code", code.as_str())];
        let fy = [("csrf", cy.as_str()), ("code", code.as_str())];
        let (px, py) = tokio::join!(
            x.post("/dashboard/login/two-factor", &fx),
            y.post("/dashboard/login/two-factor", &fy),
        );
        let mut statuses = [px.status.as_u16(), py.status.as_u16()];
        statuses.sort();
        assert_eq!(statuses, [303, 401], "{code}: one wins");
        assert_eq!(
            [&x, &y]
                .iter()
                .filter(|b| b.cookies.contains_key("sp_session"))
                .count(),
            1
        );
    }
}

#[tokio::test]
async fn an_expired_sign_in_challenge_takes_no_code_and_sends_back_to_the_password() {
    let app = TestApp::spawn().await;
    let m = app.create_merchant(250).await;
    let email = create_user(&app, &m, "owner");
    let mut b = Browser::signed_in(&app, &email).await;
    let (secret, _) = enable(&mut b).await;

    let mut s = password_step(&app, &email).await;
    let csrf = s.get("/dashboard/login/two-factor").await.input("csrf");
    // Its five minutes are over (its expiry moved to its start rather than waited for).
    let db = app.db().await;
    db.execute(Statement::from_string(
        db.get_database_backend(),
        "UPDATE dashboard_login_challenges SET expires_at = created_at".to_owned(),
    ))
    .await
    .unwrap();
    db.close().await.ok();
    let p = s
        .post(
            "/dashboard/login/two-factor",
            &[("csrf", &csrf), ("code", &code(&secret, 0))],
        )
        .await;
    assert_eq!(p.status, 303, "{}", p.text);
    assert_eq!(p.location.as_deref(), Some("/dashboard/login?done=expired"));
    assert!(!s.cookies.contains_key("sp_session"));
    assert!(!s.cookies.contains_key("sp_2fa"), "the cookie is dropped");
}
