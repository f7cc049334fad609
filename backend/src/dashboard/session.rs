//! Logging in and out, the test/live switch and the password.
use minijinja::context;
use poem::{
    handler,
    http::StatusCode,
    web::{cookie::CookieJar, Data, Form, Query},
    Request, Response,
};
use serde::Deserialize;
use superpayment_core::Mode;

use super::{
    cookie, expired_cookie, frame, html, see_other, signed_in, signed_in_enrolling_for,
    signed_in_for, PageError,
};
use crate::{
    accounts::{self, two_factor, AccountError, Action, LoginStep, SESSION_COOKIE},
    crypto::{random_bytes, secrets_equal},
    state::AppState,
};

/// The cookie holding the login form's CSRF token (there is no session yet to derive it from).
const LOGIN_COOKIE: &str = "sp_login";

#[derive(Deserialize)]
pub(crate) struct LoginNotice {
    #[serde(default)]
    done: Option<String>,
}

/// A CSRF token for a form shown before there is a session (login, forgotten password,
/// invitation, reset): kept in a cookie and echoed by the form.
pub(crate) fn pre_session_token(state: &AppState, jar: &CookieJar) -> String {
    let token = hex::encode(random_bytes::<16>());
    jar.add(cookie(state, LOGIN_COOKIE, &token));
    token
}

/// Whether a pre-session form carries the token of [`pre_session_token`]'s cookie.
pub(crate) fn pre_session_token_matches(jar: &CookieJar, submitted: &str) -> bool {
    let expected = jar
        .get(LOGIN_COOKIE)
        .map(|c| c.value_str().to_owned())
        .unwrap_or_default();
    !expected.is_empty() && secrets_equal(&expected, submitted)
}

/// Drops the cookie of [`pre_session_token`] once its form did its work.
pub(crate) fn end_pre_session(state: &AppState, jar: &CookieJar) {
    jar.add(expired_cookie(state, LOGIN_COOKIE));
}

pub(crate) fn login_form(
    state: &AppState,
    jar: &CookieJar,
    status: StatusCode,
    email: &str,
    error: Option<&str>,
    notice: Option<&str>,
) -> Result<Response, PageError> {
    let token = pre_session_token(state, jar);
    let body = frame::render(
        "dashboard/login.html",
        context! { csrf => token, email, error, notice },
    )?;
    Ok(html(status, body))
}

#[handler]
pub(crate) async fn login_page(
    state: Data<&AppState>,
    jar: &CookieJar,
    Query(q): Query<LoginNotice>,
) -> Result<Response, PageError> {
    if signed_in(&state, jar).await.is_ok() {
        return Ok(see_other("/dashboard/"));
    }
    let notice = match q.done.as_deref() {
        Some("logout") => Some("You are logged out."),
        Some("password") => Some("Password changed: log in again with the new one."),
        Some("everywhere") => Some("Every session of your account has ended."),
        Some("reset") => Some(
            "Password changed and every session of the account ended: log in with the new one.",
        ),
        Some("expired") => Some("The sign-in expired: log in again."),
        _ => None,
    };
    login_form(&state, jar, StatusCode::OK, "", None, notice)
}

#[derive(Deserialize)]
pub(crate) struct LoginForm {
    #[serde(default)]
    csrf: String,
    email: String,
    password: String,
}

#[handler]
pub(crate) async fn login(
    req: &Request,
    state: Data<&AppState>,
    jar: &CookieJar,
    Form(form): Form<LoginForm>,
) -> Result<Response, PageError> {
    if !pre_session_token_matches(jar, &form.csrf) {
        return login_form(
            &state,
            jar,
            StatusCode::FORBIDDEN,
            &form.email,
            Some("The form expired; please try again."),
            None,
        );
    }
    let client = super::client_of(req);
    match accounts::login(&state, &client, &form.email, &form.password).await {
        Ok(LoginStep::Session(new)) => {
            end_pre_session(&state, jar);
            jar.add(cookie(&state, SESSION_COOKIE, new.token.expose()));
            Ok(see_other("/dashboard/"))
        }
        Ok(LoginStep::SecondFactor(token)) => {
            end_pre_session(&state, jar);
            let mut c = cookie(&state, two_factor::CHALLENGE_COOKIE, token.expose());
            c.set_max_age(two_factor::CHALLENGE_TTL);
            jar.add(c);
            Ok(see_other("/dashboard/login/two-factor"))
        }
        Err(AccountError::InvalidCredentials) => login_form(
            &state,
            jar,
            StatusCode::UNAUTHORIZED,
            &form.email,
            Some("Wrong email or password."),
            None,
        ),
        Err(AccountError::LockedOut { retry_after }) => locked_out(
            login_form(
                &state,
                jar,
                StatusCode::TOO_MANY_REQUESTS,
                &form.email,
                Some(&locked_out_message(retry_after)),
                None,
            )?,
            retry_after,
        ),
        Err(e) => Err(e.into()),
    }
}

/// What a locked-out sign-in is told.
pub(crate) fn locked_out_message(retry_after: std::time::Duration) -> String {
    let minutes = retry_after.as_secs().div_ceil(60).max(1);
    format!("Too many failed logins. Try again in {minutes} minute(s).")
}

/// A locked-out answer's `Retry-After`.
pub(crate) fn locked_out(
    mut r: Response,
    retry_after: std::time::Duration,
) -> Result<Response, PageError> {
    r.headers_mut().insert(
        poem::http::header::RETRY_AFTER,
        retry_after.as_secs().max(1).into(),
    );
    Ok(r)
}

#[derive(Deserialize)]
pub(crate) struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

#[handler]
pub(crate) async fn logout(
    state: Data<&AppState>,
    jar: &CookieJar,
    Form(form): Form<CsrfForm>,
) -> Result<Response, PageError> {
    let s = signed_in_enrolling_for(&state, jar, &form.csrf).await?;
    accounts::logout(&state, &s).await?;
    jar.add(expired_cookie(&state, SESSION_COOKIE));
    Ok(see_other("/dashboard/login?done=logout"))
}

#[handler]
pub(crate) async fn logout_everywhere(
    state: Data<&AppState>,
    jar: &CookieJar,
    Form(form): Form<CsrfForm>,
) -> Result<Response, PageError> {
    let s = signed_in_enrolling_for(&state, jar, &form.csrf).await?;
    accounts::logout_everywhere(&state, &s).await?;
    jar.add(expired_cookie(&state, SESSION_COOKIE));
    Ok(see_other("/dashboard/login?done=everywhere"))
}

#[derive(Deserialize)]
pub(crate) struct ModeForm {
    #[serde(default)]
    csrf: String,
    mode: String,
}

#[handler]
pub(crate) async fn switch_mode(
    state: Data<&AppState>,
    jar: &CookieJar,
    Form(form): Form<ModeForm>,
) -> Result<Response, PageError> {
    let s = signed_in_for(&state, jar, &form.csrf, Action::Read).await?;
    // Anything but "live" shows test data: the safe side.
    let mode = form.mode.parse::<Mode>().unwrap_or(Mode::Test);
    accounts::switch_mode(&state, &s, mode).await?;
    Ok(see_other("/dashboard/"))
}

pub(crate) async fn account_form(
    state: &AppState,
    s: &accounts::SignedIn,
    status: StatusCode,
    error: Option<&str>,
    notice: Option<&str>,
) -> Result<Response, PageError> {
    let two_factor_on = s.user.totp_enabled_at.is_some();
    let codes_left = if two_factor_on {
        two_factor::recovery_codes_left(state, s).await?
    } else {
        0
    };
    let team_requires = two_factor::team_requires(state, &s.user.merchant_id).await?;
    let body = frame::render(
        "dashboard/account.html",
        frame::frame(
            s,
            "account",
            context! {
                error,
                notice,
                min_len => accounts::MIN_PASSWORD_LEN,
                two_factor_on,
                two_factor_since => s.user.totp_enabled_at.map(crate::timestamps::rfc3339),
                codes_left,
                team_requires,
            },
        ),
    )?;
    Ok(html(status, body))
}

#[derive(Deserialize)]
pub(crate) struct AccountNotice {
    #[serde(default)]
    done: Option<String>,
}

#[handler]
pub(crate) async fn account_page(
    state: Data<&AppState>,
    jar: &CookieJar,
    Query(q): Query<AccountNotice>,
) -> Result<Response, PageError> {
    let s = signed_in(&state, jar).await?;
    let notice = match q.done.as_deref() {
        Some("two-factor-off") => Some("Two-factor sign-in is off."),
        _ => None,
    };
    account_form(&state, &s, StatusCode::OK, None, notice).await
}

#[derive(Deserialize)]
pub(crate) struct PasswordForm {
    #[serde(default)]
    csrf: String,
    current: String,
    new: String,
}

#[handler]
pub(crate) async fn change_password(
    state: Data<&AppState>,
    jar: &CookieJar,
    Form(form): Form<PasswordForm>,
) -> Result<Response, PageError> {
    let s = signed_in_for(&state, jar, &form.csrf, Action::Read).await?;
    match accounts::change_password(&state, &s, &form.current, &form.new).await {
        Ok(()) => {
            jar.add(expired_cookie(&state, SESSION_COOKIE));
            Ok(see_other("/dashboard/login?done=password"))
        }
        Err(AccountError::InvalidCredentials) => {
            account_form(
                &state,
                &s,
                StatusCode::BAD_REQUEST,
                Some("The current password is wrong."),
                None,
            )
            .await
        }
        Err(AccountError::WeakPassword) => {
            account_form(
                &state,
                &s,
                StatusCode::BAD_REQUEST,
                Some(&format!(
                    "The new password must have {} to {} characters.",
                    accounts::MIN_PASSWORD_LEN,
                    accounts::MAX_PASSWORD_LEN
                )),
                None,
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}
