//! The pages of emailed links, shown before there is a session: accepting a team
//! invitation, asking for a password-reset link and setting the new password.
use minijinja::context;
use poem::{
    handler,
    http::{header, StatusCode},
    web::{cookie::CookieJar, Data, Form, Path},
    Request, Response,
};
use serde::Deserialize;

use super::{
    cookie, frame, html, see_other,
    session::{end_pre_session, pre_session_token, pre_session_token_matches},
    PageError,
};
use crate::{
    accounts::{
        self,
        links::{INVITATION_PATH, RESET_PATH},
        AccountError, SESSION_COOKIE,
    },
    state::AppState,
};

/// A page of [`link.html`]: `kind` is `invitation`, `reset`, `forgot` or `invalid`.
fn link_page(status: StatusCode, ctx: minijinja::Value) -> Result<Response, PageError> {
    Ok(html(status, frame::render("dashboard/link.html", ctx)?))
}

/// The one answer for a link that is unknown, expired, used or revoked: nothing tells
/// them apart.
fn invalid_link() -> Result<Response, PageError> {
    link_page(
        StatusCode::NOT_FOUND,
        context! {
            kind => "invalid",
            title => "This link is not valid",
            message => "The link is unknown, has expired, or was already used or revoked. \
                        Ask for a new one: an owner or admin of the account sends invitations, \
                        and the login page sends password-reset links.",
        },
    )
}

fn weak_password() -> String {
    format!(
        "The password must have {} to {} characters.",
        accounts::MIN_PASSWORD_LEN,
        accounts::MAX_PASSWORD_LEN
    )
}

fn invitation_form(
    state: &AppState,
    jar: &CookieJar,
    token: &str,
    inv: &crate::store::entities::invitation::Model,
    status: StatusCode,
    error: Option<String>,
) -> Result<Response, PageError> {
    let csrf = pre_session_token(state, jar);
    link_page(
        status,
        context! {
            kind => "invitation",
            title => "Join the team",
            inviter_note => format!(
                "You are invited to this SuperPayment back-office as {}. Choose a password to join.",
                inv.role.as_str()
            ),
            email => &inv.email,
            action => format!("{INVITATION_PATH}{token}"),
            csrf,
            error,
            min_len => accounts::MIN_PASSWORD_LEN,
        },
    )
}

#[handler]
pub(crate) async fn invitation_page(
    state: Data<&AppState>,
    jar: &CookieJar,
    Path(token): Path<String>,
) -> Result<Response, PageError> {
    match accounts::links::invitation_of_link(&state, &token).await {
        Ok(inv) => invitation_form(&state, jar, &token, &inv, StatusCode::OK, None),
        Err(AccountError::InvalidLink) => invalid_link(),
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
pub(crate) struct PasswordForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    password: String,
}

#[handler]
pub(crate) async fn accept(
    state: Data<&AppState>,
    jar: &CookieJar,
    Path(token): Path<String>,
    Form(form): Form<PasswordForm>,
) -> Result<Response, PageError> {
    let inv = match accounts::links::invitation_of_link(&state, &token).await {
        Ok(inv) => inv,
        Err(AccountError::InvalidLink) => return invalid_link(),
        Err(e) => return Err(e.into()),
    };
    if !pre_session_token_matches(jar, &form.csrf) {
        return invitation_form(
            &state,
            jar,
            &token,
            &inv,
            StatusCode::FORBIDDEN,
            Some("The form expired; please try again.".into()),
        );
    }
    match accounts::links::accept(&state, &token, &form.password).await {
        Ok(new) => {
            end_pre_session(&state, jar);
            jar.add(cookie(&state, SESSION_COOKIE, new.token.expose()));
            Ok(see_other("/dashboard/"))
        }
        Err(AccountError::WeakPassword) => invitation_form(
            &state,
            jar,
            &token,
            &inv,
            StatusCode::BAD_REQUEST,
            Some(weak_password()),
        ),
        Err(AccountError::InvalidLink) => invalid_link(),
        Err(e) => Err(e.into()),
    }
}

fn forgot_form(
    state: &AppState,
    jar: &CookieJar,
    status: StatusCode,
    email: &str,
    error: Option<String>,
    notice: Option<String>,
) -> Result<Response, PageError> {
    let csrf = pre_session_token(state, jar);
    link_page(
        status,
        context! { kind => "forgot", title => "Forgot your password?", email, csrf, error, notice },
    )
}

#[handler]
pub(crate) async fn forgot_page(
    state: Data<&AppState>,
    jar: &CookieJar,
) -> Result<Response, PageError> {
    forgot_form(&state, jar, StatusCode::OK, "", None, None)
}

#[derive(Deserialize)]
pub(crate) struct ForgotForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    email: String,
}

#[handler]
pub(crate) async fn forgot(
    req: &Request,
    state: Data<&AppState>,
    jar: &CookieJar,
    Form(form): Form<ForgotForm>,
) -> Result<Response, PageError> {
    if !pre_session_token_matches(jar, &form.csrf) {
        return forgot_form(
            &state,
            jar,
            StatusCode::FORBIDDEN,
            &form.email,
            Some("The form expired; please try again.".into()),
            None,
        );
    }
    let client = super::client_of(req);
    match accounts::links::request_reset(&state, &client, &form.email).await {
        Ok(()) => {
            let minutes = state.accounts.reset_ttl.as_secs().div_ceil(60).max(1);
            forgot_form(
                &state,
                jar,
                StatusCode::OK,
                "",
                None,
                Some(format!(
                    "If an account has this email, a link to choose a new password was sent to it. \
                     The link works once, for {minutes} minutes."
                )),
            )
        }
        Err(AccountError::TooManyRequests { retry_after }) => {
            let minutes = retry_after.as_secs().div_ceil(60).max(1);
            let mut r = forgot_form(
                &state,
                jar,
                StatusCode::TOO_MANY_REQUESTS,
                &form.email,
                Some(format!(
                    "Too many requests. Try again in {minutes} minute(s)."
                )),
                None,
            )?;
            r.headers_mut()
                .insert(header::RETRY_AFTER, retry_after.as_secs().max(1).into());
            Ok(r)
        }
        Err(e) => Err(e.into()),
    }
}

fn reset_form(
    state: &AppState,
    jar: &CookieJar,
    token: &str,
    email: &str,
    status: StatusCode,
    error: Option<String>,
) -> Result<Response, PageError> {
    let csrf = pre_session_token(state, jar);
    link_page(
        status,
        context! {
            kind => "reset",
            title => "Choose a new password",
            email,
            action => format!("{RESET_PATH}{token}"),
            csrf,
            error,
            min_len => accounts::MIN_PASSWORD_LEN,
        },
    )
}

#[handler]
pub(crate) async fn reset_page(
    state: Data<&AppState>,
    jar: &CookieJar,
    Path(token): Path<String>,
) -> Result<Response, PageError> {
    match accounts::links::reset_of_link(&state, &token).await {
        Ok((_, user)) => reset_form(&state, jar, &token, &user.email, StatusCode::OK, None),
        Err(AccountError::InvalidLink) => invalid_link(),
        Err(e) => Err(e.into()),
    }
}

#[handler]
pub(crate) async fn reset(
    state: Data<&AppState>,
    jar: &CookieJar,
    Path(token): Path<String>,
    Form(form): Form<PasswordForm>,
) -> Result<Response, PageError> {
    let user = match accounts::links::reset_of_link(&state, &token).await {
        Ok((_, user)) => user,
        Err(AccountError::InvalidLink) => return invalid_link(),
        Err(e) => return Err(e.into()),
    };
    if !pre_session_token_matches(jar, &form.csrf) {
        return reset_form(
            &state,
            jar,
            &token,
            &user.email,
            StatusCode::FORBIDDEN,
            Some("The form expired; please try again.".into()),
        );
    }
    match accounts::links::reset_password(&state, &token, &form.password).await {
        Ok(_) => {
            end_pre_session(&state, jar);
            // This browser's own session, if any, ended with the others.
            jar.add(super::expired_cookie(&state, SESSION_COOKIE));
            Ok(see_other("/dashboard/login?done=reset"))
        }
        Err(AccountError::WeakPassword) => reset_form(
            &state,
            jar,
            &token,
            &user.email,
            StatusCode::BAD_REQUEST,
            Some(weak_password()),
        ),
        Err(AccountError::InvalidLink) => invalid_link(),
        Err(e) => Err(e.into()),
    }
}
