//! Emailed back-office links through real HTTP and a real SMTP server (aiosmtpd): team
//! invitations (invite, accept once, expire, revoke, who may invite whom), password resets
//! (one answer for every email, limits, every session ended) and notification emails that
//! reach the team's owners and admins.
use reqwest::StatusCode;
use sea_orm::{sea_query::Expr, ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use superpayment_backend::store::entities::{activity, email, invitation, password_reset};

use crate::{
    dashboard::{create_user, Browser, PASSWORD},
    helpers::{is_sqlite, Merchant, TestApp},
    smtp_support::{unique_address, SmtpServer},
    webhook_support::FAST_WORKER_ENV,
};
use tokio::sync::OnceCell;

const NEW_PASSWORD: &str = "a brand new passphrase 42";

/// This file's SMTP server: 2533 for the PostgreSQL run, 2534 for the SQLite run.
async fn smtp() -> &'static SmtpServer {
    static SMTP: OnceCell<SmtpServer> = OnceCell::const_new();
    SMTP.get_or_init(|| SmtpServer::start(if is_sqlite() { 2534 } else { 2533 }))
        .await
}

async fn spawn(smtp: &SmtpServer, extra: &[(&str, &str)]) -> TestApp {
    let url = smtp.url();
    let mut env: Vec<(&str, &str)> = FAST_WORKER_ENV.to_vec();
    env.extend([
        ("SMTP_URL", url.as_str()),
        ("SMTP_FROM", "SuperPayment Tests <notify@superpayment.test>"),
        ("EMAIL_POLL_INTERVAL", "50ms"),
    ]);
    env.extend_from_slice(extra);
    TestApp::spawn_with(&env).await
}

/// The path of the first link to `prefix` in the text part of `mail`, checked to point at
/// this server.
fn link_in(app: &TestApp, mail: &serde_json::Value, prefix: &str) -> String {
    let text = mail["text"].as_str().unwrap();
    let url = text
        .split_whitespace()
        .find(|w| w.contains(prefix))
        .unwrap_or_else(|| panic!("no {prefix} link in:\n{text}"));
    let path = url
        .strip_prefix(&app.address)
        .unwrap_or_else(|| panic!("{url} does not point at {}", app.address));
    let token = url.rsplit('/').next().unwrap();
    assert!(
        mail["html"].as_str().unwrap().contains(token),
        "the HTML part has the same link"
    );
    path.to_owned()
}

/// Sends an invitation from a signed-in browser; returns the answer.
async fn invite(b: &mut Browser, email: &str, role: &str) -> crate::dashboard::Page {
    let csrf = b.csrf().await;
    b.post(
        "/dashboard/settings/invitations",
        &[("csrf", &csrf), ("email", email), ("role", role)],
    )
    .await
}

async fn invitations_of(app: &TestApp, m: &Merchant) -> Vec<invitation::Model> {
    let db = app.db().await;
    let rows = invitation::Entity::find()
        .filter(invitation::Column::MerchantId.eq(&m.id))
        .order_by_asc(invitation::Column::CreatedAt)
        .all(&db)
        .await
        .unwrap();
    db.close().await.ok();
    rows
}

async fn actions_of(app: &TestApp, m: &Merchant) -> Vec<String> {
    let db = app.db().await;
    let rows = activity::Entity::find()
        .filter(activity::Column::MerchantId.eq(&m.id))
        .order_by_asc(activity::Column::Id)
        .all(&db)
        .await
        .unwrap();
    db.close().await.ok();
    rows.into_iter().map(|r| r.action).collect()
}

/// The page of an invalid link, without what changes per request.
fn invalid_page(p: &crate::dashboard::Page) -> String {
    assert_eq!(p.status, StatusCode::NOT_FOUND, "{}", p.text);
    assert!(p.text.contains("This link is not valid"), "{}", p.text);
    p.text.clone()
}

/// Accepts an invitation link from a fresh browser with `password`.
async fn accept(app: &TestApp, path: &str, password: &str) -> (Browser, crate::dashboard::Page) {
    let mut b = Browser::new(app);
    let form = b.get(path).await;
    assert_eq!(form.status, 200, "{}", form.text);
    let csrf = form.input("csrf");
    let p = b
        .post(path, &[("csrf", &csrf), ("password", password)])
        .await;
    (b, p)
}

#[tokio::test]
async fn an_invited_staff_member_accepts_the_emailed_link_once_and_is_signed_in_as_staff() {
    let smtp = smtp().await;
    let app = spawn(smtp, &[]).await;
    let m = app.create_merchant(250).await;
    let owner = create_user(&app, &m, "owner");
    let mut b = Browser::signed_in(&app, &owner).await;
    let address = unique_address("invited");

    let p = invite(&mut b, &address, "staff").await;
    assert_eq!(p.status, 200, "{}", p.text);
    assert!(p.text.contains("Invitation sent"), "{}", p.text);
    assert!(p.text.contains(&address), "listed as pending");

    let mails = smtp.wait_for(&address, 1).await;
    let mail = &mails[0];
    assert!(
        mail["subject"].as_str().unwrap().contains("invited"),
        "{mail}"
    );
    assert!(mail["text"].as_str().unwrap().contains(&owner));
    let path = link_in(&app, mail, "/dashboard/invitations/");

    // A password too short is refused and spends nothing.
    let (_, p) = accept(&app, &path, "short").await;
    assert_eq!(p.status, 400, "{}", p.text);
    let (mut joined, p) = accept(&app, &path, NEW_PASSWORD).await;
    assert_eq!(p.status, 303, "{}", p.text);
    assert_eq!(p.location.as_deref(), Some("/dashboard/"));
    let home = joined.get("/dashboard/settings").await;
    assert_eq!(home.status, 200, "signed in at once: {}", home.text);
    assert!(home.text.contains(&address));
    let team_row = home
        .text
        .split("<tr")
        .find(|r| r.contains(&address) && r.contains("data-id=\"usr_"))
        .unwrap_or_else(|| panic!("{}", home.text));
    assert!(team_row.contains("<td>staff</td>"), "{team_row}");
    // Staff may not invite: the form is not shown, and a forged post is refused.
    assert!(!home.text.contains("id=\"invite\""));
    let p = invite(&mut joined, &unique_address("other"), "viewer").await;
    assert_eq!(p.status, 403, "{}", p.text);

    // The link works once.
    let mut again = Browser::new(&app);
    invalid_page(&again.get(&path).await);
    let p = again
        .post(&path, &[("csrf", "x"), ("password", NEW_PASSWORD)])
        .await;
    invalid_page(&p);

    // The new member logs in with the chosen password.
    let p = Browser::new(&app).login(&address, NEW_PASSWORD).await;
    assert_eq!(p.status, 303);

    let rows = invitations_of(&app, &m).await;
    assert_eq!(rows.len(), 1);
    assert!(rows[0].accepted_at.is_some() && rows[0].accepted_user_id.is_some());
    let actions = actions_of(&app, &m).await;
    for a in ["invitation.sent", "invitation.accepted"] {
        assert!(actions.iter().any(|x| x == a), "{a} in {actions:?}");
    }
}

#[tokio::test]
async fn expired_revoked_and_unknown_invitation_links_get_one_page() {
    let smtp = smtp().await;
    let app = spawn(smtp, &[]).await;
    let m = app.create_merchant(250).await;
    let owner = create_user(&app, &m, "owner");
    let mut b = Browser::signed_in(&app, &owner).await;
    let (expiring, revoked) = (unique_address("expiring"), unique_address("revoked"));
    assert_eq!(invite(&mut b, &expiring, "viewer").await.status, 200);
    assert_eq!(invite(&mut b, &revoked, "admin").await.status, 200);
    let expiring_path = link_in(
        &app,
        &smtp.wait_for(&expiring, 1).await[0],
        "/dashboard/invitations/",
    );
    let revoked_path = link_in(
        &app,
        &smtp.wait_for(&revoked, 1).await[0],
        "/dashboard/invitations/",
    );

    // Expire one in the database; revoke the other from the team section.
    let db = app.db().await;
    invitation::Entity::update_many()
        .col_expr(
            invitation::Column::ExpiresAt,
            Expr::value(time::OffsetDateTime::now_utc() - time::Duration::minutes(1)),
        )
        .filter(invitation::Column::Email.eq(&expiring))
        .exec(&db)
        .await
        .unwrap();
    db.close().await.ok();
    let id = invitations_of(&app, &m)
        .await
        .into_iter()
        .find(|i| i.email == revoked)
        .unwrap()
        .id;
    let csrf = b.csrf().await;
    let p = b
        .post(
            &format!("/dashboard/settings/invitations/{id}/revoke"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(p.status, 303, "{}", p.text);

    let mut anon = Browser::new(&app);
    let expired_page = invalid_page(&anon.get(&expiring_path).await);
    let revoked_page = invalid_page(&anon.get(&revoked_path).await);
    let unknown_page = invalid_page(
        &anon
            .get("/dashboard/invitations/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
            .await,
    );
    assert_eq!(expired_page, revoked_page);
    assert_eq!(expired_page, unknown_page);
    // Posting a password to them creates nobody.
    for path in [&expiring_path, &revoked_path] {
        let p = anon
            .post(path, &[("csrf", "x"), ("password", NEW_PASSWORD)])
            .await;
        invalid_page(&p);
    }
    assert_eq!(
        Browser::new(&app)
            .login(&expiring, NEW_PASSWORD)
            .await
            .status,
        401
    );
    assert!(actions_of(&app, &m)
        .await
        .iter()
        .any(|a| a == "invitation.revoked"));
}

#[tokio::test]
async fn an_admin_invites_up_to_admin_never_an_owner_and_members_are_not_invited_again() {
    let smtp = smtp().await;
    let app = spawn(smtp, &[]).await;
    let m = app.create_merchant(250).await;
    let admin = create_user(&app, &m, "admin");
    let staff = create_user(&app, &m, "staff");
    let mut b = Browser::signed_in(&app, &admin).await;

    let page = b.get("/dashboard/settings").await;
    assert!(page.text.contains("id=\"invite\""));
    assert!(
        !page.text.contains("<option value=\"owner\""),
        "owner is not offered to an admin"
    );
    let p = invite(&mut b, &unique_address("owner-wannabe"), "owner").await;
    assert_eq!(p.status, 400, "{}", p.text);
    assert!(p.text.contains("above your own"), "{}", p.text);
    assert!(invitations_of(&app, &m).await.is_empty());

    let p = invite(&mut b, &staff.to_uppercase(), "viewer").await;
    assert_eq!(p.status, 400, "{}", p.text);
    assert!(p.text.contains("already has a back-office account"));
    assert!(invitations_of(&app, &m).await.is_empty());

    let address = unique_address("new-admin");
    assert_eq!(invite(&mut b, &address, "admin").await.status, 200);
    assert_eq!(invitations_of(&app, &m).await.len(), 1);

    let mut s = Browser::signed_in(&app, &staff).await;
    let p = invite(&mut s, &unique_address("by-staff"), "viewer").await;
    assert_eq!(p.status, 403, "{}", p.text);
    assert_eq!(invitations_of(&app, &m).await.len(), 1);
}

#[tokio::test]
async fn a_resent_invitation_replaces_the_old_link() {
    let smtp = smtp().await;
    let app = spawn(smtp, &[]).await;
    let m = app.create_merchant(250).await;
    let owner = create_user(&app, &m, "owner");
    let mut b = Browser::signed_in(&app, &owner).await;
    let address = unique_address("resent");
    assert_eq!(invite(&mut b, &address, "staff").await.status, 200);
    let first = link_in(
        &app,
        &smtp.wait_for(&address, 1).await[0],
        "/dashboard/invitations/",
    );
    let id = invitations_of(&app, &m).await[0].id.clone();
    let csrf = b.csrf().await;
    let p = b
        .post(
            &format!("/dashboard/settings/invitations/{id}/resend"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(p.status, 303, "{}", p.text);
    let mails = smtp.wait_for(&address, 2).await;
    let second = mails
        .iter()
        .map(|m| link_in(&app, m, "/dashboard/invitations/"))
        .find(|l| *l != first)
        .expect("a new link");
    invalid_page(&Browser::new(&app).get(&first).await);
    let (_, p) = accept(&app, &second, NEW_PASSWORD).await;
    assert_eq!(p.status, 303, "{}", p.text);
}

/// Asks for a reset link through the form; returns the answer.
async fn forgot(app: &TestApp, email: &str) -> crate::dashboard::Page {
    let mut b = Browser::new(app);
    let form = b.get("/dashboard/password-reset").await;
    assert_eq!(form.status, 200, "{}", form.text);
    let csrf = form.input("csrf");
    b.post(
        "/dashboard/password-reset",
        &[("csrf", &csrf), ("email", email)],
    )
    .await
}

/// Creates a user of `role` whose address reaches the SMTP server; returns it.
fn create_user_at(app: &TestApp, m: &Merchant, role: &str, email: &str) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("password");
    std::fs::write(&file, format!("{PASSWORD}\n")).unwrap();
    let (ok, out) = app.cli(&[
        "admin",
        "create-user",
        "--merchant",
        &m.id,
        "--email",
        email,
        "--role",
        role,
        "--password-file",
        file.to_str().unwrap(),
    ]);
    assert!(ok, "{out}");
}

#[tokio::test]
async fn a_password_reset_ends_every_session_and_its_link_works_once() {
    let smtp = smtp().await;
    let app = spawn(smtp, &[]).await;
    let m = app.create_merchant(250).await;
    let address = unique_address("forgetful");
    create_user_at(&app, &m, "admin", &address);
    let mut laptop = Browser::signed_in(&app, &address).await;
    let mut phone = Browser::signed_in(&app, &address).await;

    let login = Browser::new(&app).get("/dashboard/login").await;
    assert!(login.text.contains("href=\"/dashboard/password-reset\""));
    let p = forgot(&app, &address.to_uppercase()).await;
    assert_eq!(p.status, 200, "{}", p.text);
    let mails = smtp.wait_for(&address, 1).await;
    let path = link_in(&app, &mails[0], "/dashboard/password-reset/");

    let mut b = Browser::new(&app);
    let form = b.get(&path).await;
    assert_eq!(form.status, 200, "{}", form.text);
    assert!(form.text.contains(&address));
    let csrf = form.input("csrf");
    let p = b
        .post(&path, &[("csrf", &csrf), ("password", "short")])
        .await;
    assert_eq!(p.status, 400, "{}", p.text);
    let csrf = p.input("csrf");
    let p = b
        .post(&path, &[("csrf", &csrf), ("password", NEW_PASSWORD)])
        .await;
    assert_eq!(p.status, 303, "{}", p.text);
    assert_eq!(p.location.as_deref(), Some("/dashboard/login?done=reset"));

    for session in [&mut laptop, &mut phone] {
        let p = session.get("/dashboard/").await;
        assert_eq!(p.status, 303, "every earlier session ended");
    }
    assert_eq!(
        Browser::new(&app).login(&address, PASSWORD).await.status,
        401
    );
    assert_eq!(
        Browser::new(&app)
            .login(&address, NEW_PASSWORD)
            .await
            .status,
        303
    );
    invalid_page(&Browser::new(&app).get(&path).await);

    let mails = smtp.wait_for(&address, 2).await;
    assert!(
        mails
            .iter()
            .any(|m| m["subject"] == "Your SuperPayment password was changed"),
        "{mails:?}"
    );
    let actions = actions_of(&app, &m).await;
    for a in ["password_reset.requested", "password_reset.done"] {
        assert!(actions.iter().any(|x| x == a), "{a} in {actions:?}");
    }
}

#[tokio::test]
async fn a_second_reset_link_dies_when_the_first_one_is_used() {
    let smtp = smtp().await;
    let app = spawn(smtp, &[]).await;
    let m = app.create_merchant(250).await;
    let address = unique_address("two-links");
    create_user_at(&app, &m, "staff", &address);
    assert_eq!(forgot(&app, &address).await.status, 200);
    assert_eq!(forgot(&app, &address).await.status, 200);
    let mails = smtp.wait_for(&address, 2).await;
    let (a, b) = (
        link_in(&app, &mails[0], "/dashboard/password-reset/"),
        link_in(&app, &mails[1], "/dashboard/password-reset/"),
    );
    assert_ne!(a, b);
    let mut br = Browser::new(&app);
    let csrf = br.get(&a).await.input("csrf");
    assert_eq!(
        br.post(&a, &[("csrf", &csrf), ("password", NEW_PASSWORD)])
            .await
            .status,
        303
    );
    invalid_page(&Browser::new(&app).get(&b).await);
}

#[tokio::test]
async fn the_reset_answer_is_the_same_for_an_unknown_email_and_requests_are_limited() {
    let smtp = smtp().await;
    let app = spawn(
        smtp,
        &[
            ("PASSWORD_RESET_LIMIT_PER_EMAIL", "2"),
            ("PASSWORD_RESET_LIMIT_PER_CLIENT", "5"),
        ],
    )
    .await;
    let m = app.create_merchant(250).await;
    let known = unique_address("known");
    create_user_at(&app, &m, "viewer", &known);
    let unknown = unique_address("unknown");

    let a = forgot(&app, &known).await;
    let b = forgot(&app, &unknown).await;
    assert_eq!((a.status, b.status), (StatusCode::OK, StatusCode::OK));
    assert_eq!(a.text, b.text, "one answer, account or not");
    smtp.wait_for(&known, 1).await;

    // Per email: the third request within the window is refused, known or not.
    assert_eq!(forgot(&app, &known).await.status, 200);
    assert_eq!(forgot(&app, &unknown).await.status, 200);
    let (a, b) = (forgot(&app, &known).await, forgot(&app, &unknown).await);
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS, "{}", a.text);
    assert_eq!(b.status, StatusCode::TOO_MANY_REQUESTS, "{}", b.text);
    assert!(a.headers.contains_key("retry-after"));
    // Per client: this address sent 6 requests; a fresh email is refused too.
    let c = forgot(&app, &unique_address("fresh")).await;
    assert_eq!(c.status, StatusCode::TOO_MANY_REQUESTS, "{}", c.text);

    assert!(smtp.messages_to(&unknown).await.is_empty());
    let db = app.db().await;
    let resets = password_reset::Entity::find().all(&db).await.unwrap();
    db.close().await.ok();
    assert_eq!(
        resets.len(),
        2,
        "only the known email's two requests made links"
    );
}

#[tokio::test]
async fn no_link_token_is_stored_in_plain_text() {
    let smtp = smtp().await;
    let app = spawn(smtp, &[]).await;
    let m = app.create_merchant(250).await;
    let owner = unique_address("owner");
    create_user_at(&app, &m, "owner", &owner);
    let mut b = Browser::signed_in(&app, &owner).await;
    let invited = unique_address("invited");
    assert_eq!(invite(&mut b, &invited, "staff").await.status, 200);
    assert_eq!(forgot(&app, &owner).await.status, 200);
    let invitation = link_in(
        &app,
        &smtp.wait_for(&invited, 1).await[0],
        "/dashboard/invitations/",
    );
    let reset = link_in(
        &app,
        &smtp.wait_for(&owner, 1).await[0],
        "/dashboard/password-reset/",
    );
    let tokens = [
        invitation.rsplit('/').next().unwrap().to_owned(),
        reset.rsplit('/').next().unwrap().to_owned(),
    ];
    assert!(tokens.iter().all(|t| t.len() >= 43), "{tokens:?}");
    // Opening the links logs their requests, without the tokens.
    let mut anon = Browser::new(&app);
    assert_eq!(anon.get(&invitation).await.status, 200);
    assert_eq!(anon.get(&reset).await.status, 200);
    let logs = app.logs();
    assert!(
        logs.contains("/dashboard/invitations/{token}"),
        "the request is logged"
    );
    for token in &tokens {
        assert!(!logs.contains(token.as_str()), "a token reached the log");
    }

    let db = app.db().await;
    let mut stored = Vec::new();
    for e in email::Entity::find()
        .filter(email::Column::MerchantId.eq(&m.id))
        .all(&db)
        .await
        .unwrap()
    {
        if e.kind == "invitation" || e.kind == "password_reset" {
            assert!(
                e.params["link"].as_str().unwrap().starts_with("v2:"),
                "sealed: {}",
                e.params
            );
        }
        stored.push(e.params.to_string());
    }
    for i in invitation::Entity::find().all(&db).await.unwrap() {
        stored.push(format!("{i:?}"));
    }
    for r in password_reset::Entity::find().all(&db).await.unwrap() {
        stored.push(format!("{r:?}"));
    }
    db.close().await.ok();
    assert!(stored.len() >= 4, "{stored:?}");
    for token in &tokens {
        for row in &stored {
            assert!(!row.contains(token.as_str()), "token in {row}");
            // Nor its unkeyed SHA-256.
            let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(token.as_bytes()));
            assert!(!row.contains(&sha), "unkeyed hash in {row}");
        }
    }
}

#[tokio::test]
async fn a_new_api_key_is_emailed_to_the_notification_address_and_each_owner_and_admin_once() {
    let smtp = smtp().await;
    let app = spawn(smtp, &[]).await;
    let m = app.create_merchant(250).await;
    let (owner, admin, staff) = (
        unique_address("owner"),
        unique_address("admin"),
        unique_address("staff"),
    );
    create_user_at(&app, &m, "owner", &owner);
    create_user_at(&app, &m, "admin", &admin);
    create_user_at(&app, &m, "staff", &staff);
    let disabled_admin = unique_address("gone-admin");
    create_user_at(&app, &m, "admin", &disabled_admin);
    // The notification address is the owner's, typed otherwise: one message, not two.
    let (ok, out) = app.cli(&[
        "admin",
        "set-notify-email",
        "--merchant",
        &m.id,
        "--email",
        &owner.to_uppercase(),
    ]);
    assert!(ok, "{out}");
    let mut b = Browser::signed_in(&app, &owner).await;
    let id = {
        let p = b.get("/dashboard/settings").await;
        let marker = format!("{disabled_admin}</td>");
        let row = p.text.split("<tr").find(|r| r.contains(&marker)).unwrap();
        let start = row.find("data-id=\"").unwrap() + 9;
        row[start..start + row[start..].find('"').unwrap()].to_owned()
    };
    let csrf = b.csrf().await;
    let p = b
        .post(
            &format!("/dashboard/settings/team/{id}"),
            &[("csrf", &csrf), ("role", "admin"), ("disabled", "on")],
        )
        .await;
    assert_eq!(p.status, 303, "{}", p.text);

    let r = app
        .post(
            "/api/keys",
            &m.sk,
            &serde_json::json!({"kind": "secret"}),
            None,
        )
        .await;
    assert_eq!(r.status(), 201);

    let db = app.db().await;
    let mut to: Vec<String> = email::Entity::find()
        .filter(email::Column::MerchantId.eq(&m.id))
        .filter(email::Column::Kind.eq("api_key_created"))
        .all(&db)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.recipient.to_lowercase())
        .collect();
    db.close().await.ok();
    to.sort();
    let mut want = vec![owner.clone(), admin.clone()];
    want.sort();
    assert_eq!(to, want);
    let got = smtp.wait_for(&admin, 1).await;
    assert_eq!(got[0]["subject"], "A new test API key was created");
    assert!(smtp.messages_to(&staff).await.is_empty());
}

#[tokio::test]
async fn two_racing_acceptances_of_one_link_create_one_account() {
    let smtp = smtp().await;
    let app = spawn(smtp, &[]).await;
    let m = app.create_merchant(250).await;
    let owner = create_user(&app, &m, "owner");
    let mut b = Browser::signed_in(&app, &owner).await;
    let address = unique_address("raced");
    assert_eq!(invite(&mut b, &address, "viewer").await.status, 200);
    let path = link_in(
        &app,
        &smtp.wait_for(&address, 1).await[0],
        "/dashboard/invitations/",
    );
    // Two browsers with the form open submit at once, with different passwords.
    let (mut one, mut two) = (Browser::new(&app), Browser::new(&app));
    let csrf_one = one.get(&path).await.input("csrf");
    let csrf_two = two.get(&path).await.input("csrf");
    let form_one = [("csrf", csrf_one.as_str()), ("password", NEW_PASSWORD)];
    let form_two = [
        ("csrf", csrf_two.as_str()),
        ("password", "another passphrase 77"),
    ];
    let (a, b) = tokio::join!(one.post(&path, &form_one), two.post(&path, &form_two));
    let mut statuses = [a.status.as_u16(), b.status.as_u16()];
    statuses.sort();
    assert_eq!(statuses, [303, 404], "{}\n{}", a.text, b.text);
    let winner = if a.status == 303 {
        NEW_PASSWORD
    } else {
        "another passphrase 77"
    };
    assert_eq!(Browser::new(&app).login(&address, winner).await.status, 303);
    let db = app.db().await;
    let users = superpayment_backend::store::entities::dashboard_user::Entity::find()
        .filter(superpayment_backend::store::entities::dashboard_user::Column::Email.eq(&address))
        .all(&db)
        .await
        .unwrap();
    db.close().await.ok();
    assert_eq!(users.len(), 1);
}

/// The emailed links and the second factor together: a member who joins a team that
/// requires two-factor sign-in reaches only the enrolment page, and a password reset never
/// skips the second factor of an account that has one.
#[tokio::test]
async fn links_never_open_the_back_office_without_the_second_factor() {
    let smtp = smtp().await;
    let app = spawn(smtp, &[]).await;
    let m = app.create_merchant(250).await;
    let owner = unique_address("owner-2fa");
    create_user_at(&app, &m, "owner", &owner);
    let mut o = Browser::signed_in(&app, &owner).await;
    crate::dashboard_totp::enable(&mut o).await;
    let csrf = o.csrf().await;
    let p = o
        .post(
            "/dashboard/settings/two-factor",
            &[("csrf", &csrf), ("required", "on")],
        )
        .await;
    assert_eq!(p.status, 303, "{}", p.text);

    // Joining by an invitation opens a session that must enrol first.
    let address = unique_address("joiner-2fa");
    let p = invite(&mut o, &address, "staff").await;
    assert_eq!(p.status, 200, "{}", p.text);
    let mails = smtp.wait_for(&address, 1).await;
    let path = link_in(&app, &mails[0], "/dashboard/invitations/");
    let (mut joined, p) = accept(&app, &path, NEW_PASSWORD).await;
    assert_eq!(p.status, 303, "{}", p.text);
    for page in [
        "/dashboard/",
        "/dashboard/transactions",
        "/dashboard/settings",
    ] {
        let p = joined.get(page).await;
        assert_eq!(p.status, 303, "{page}: {}", p.text);
        assert_eq!(
            p.location.as_deref(),
            Some("/dashboard/account/two-factor"),
            "{page}"
        );
    }

    // A reset password leads to the code step, not to a session.
    let p = forgot(&app, &owner).await;
    assert_eq!(p.status, 200, "{}", p.text);
    let mails = smtp.wait_for(&owner, 1).await;
    let reset = link_in(&app, &mails[0], "/dashboard/password-reset/");
    let mut b = Browser::new(&app);
    let csrf = b.get(&reset).await.input("csrf");
    let p = b
        .post(&reset, &[("csrf", &csrf), ("password", NEW_PASSWORD)])
        .await;
    assert_eq!(p.status, 303, "{}", p.text);
    let mut again = Browser::new(&app);
    let p = again.login(&owner, NEW_PASSWORD).await;
    assert_eq!(p.status, 303, "{}", p.text);
    assert_eq!(p.location.as_deref(), Some("/dashboard/login/two-factor"));
    let p = again.get("/dashboard/").await;
    assert_eq!(p.status, 303, "no session before the code");
    assert_eq!(p.location.as_deref(), Some("/dashboard/login"));
}
