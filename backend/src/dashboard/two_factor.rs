//! Two-factor sign-in pages: the second step of a sign-in, enrolling a second factor,
//! turning it off and renewing the recovery codes (see [`crate::accounts::two_factor`]).
use minijinja::context;
use poem::{
    handler,
    http::StatusCode,
    web::{cookie::CookieJar, Data, Form},
    Request, Response,
};
use serde::Deserialize;

use super::{
    client_of, cookie, expired_cookie, frame, html, see_other, session, signed_in_enrolling,
    signed_in_enrolling_for, signed_in_for, PageError,
};
use crate::{
    accounts::{two_factor, AccountError, Action, SignedIn, SESSION_COOKIE},
    crypto::secrets_equal,
    secret::Secret,
    state::AppState,
};

const WRONG_CODE: &str = "That code is not right (or was used already). Enter the current \
                          code of your authenticator app, or an unused recovery code.";

fn challenge_token(jar: &CookieJar) -> Option<String> {
    jar.get(two_factor::CHALLENGE_COOKIE)
        .map(|c| c.value_str().to_owned())
        .filter(|t| !t.is_empty())
}

/// Back to the password, the challenge cookie dropped.
fn expired(state: &AppState, jar: &CookieJar) -> Response {
    jar.add(expired_cookie(state, two_factor::CHALLENGE_COOKIE));
    see_other("/dashboard/login?done=expired")
}

fn second_step_form(
    status: StatusCode,
    csrf: &str,
    error: Option<&str>,
) -> Result<Response, PageError> {
    let body = frame::render("dashboard/login_two_factor.html", context! { csrf, error })?;
    Ok(html(status, body))
}

#[handler]
pub(crate) async fn second_step_page(
    state: Data<&AppState>,
    jar: &CookieJar,
) -> Result<Response, PageError> {
    let Some(token) = challenge_token(jar) else {
        return Ok(see_other("/dashboard/login"));
    };
    match two_factor::challenge_csrf(&state, &token).await? {
        Some(csrf) => second_step_form(StatusCode::OK, &csrf, None),
        None => Ok(expired(&state, jar)),
    }
}

#[derive(Deserialize)]
pub(crate) struct CodeForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    code: String,
}

#[handler]
pub(crate) async fn second_step(
    req: &Request,
    state: Data<&AppState>,
    jar: &CookieJar,
    Form(form): Form<CodeForm>,
) -> Result<Response, PageError> {
    let Some(token) = challenge_token(jar) else {
        return Ok(see_other("/dashboard/login"));
    };
    let Some(csrf) = two_factor::challenge_csrf(&state, &token).await? else {
        return Ok(expired(&state, jar));
    };
    if !secrets_equal(&csrf, &form.csrf) {
        return second_step_form(
            StatusCode::FORBIDDEN,
            &csrf,
            Some("The form expired; please try again."),
        );
    }
    let client = client_of(req);
    match two_factor::login_second_factor(&state, &client, &token, &form.code).await {
        Ok(new) => {
            jar.add(expired_cookie(&state, two_factor::CHALLENGE_COOKIE));
            jar.add(cookie(&state, SESSION_COOKIE, new.token.expose()));
            Ok(see_other("/dashboard/"))
        }
        Err(AccountError::WrongCode) => {
            second_step_form(StatusCode::UNAUTHORIZED, &csrf, Some(WRONG_CODE))
        }
        Err(AccountError::LockedOut { retry_after }) => session::locked_out(
            second_step_form(
                StatusCode::TOO_MANY_REQUESTS,
                &csrf,
                Some(&session::locked_out_message(retry_after)),
            )?,
            retry_after,
        ),
        Err(AccountError::ChallengeExpired) => Ok(expired(&state, jar)),
        Err(e) => Err(e.into()),
    }
}

/// The enrolment page: the secret as a QR code and as text, and the form confirming it.
async fn enrol_form(
    state: &AppState,
    s: &SignedIn,
    status: StatusCode,
    error: Option<&str>,
) -> Result<Response, PageError> {
    let enrolment = match two_factor::start_enrolment(state, s).await {
        Ok(e) => e,
        Err(AccountError::TwoFactorOn) => return Ok(see_other("/dashboard/account")),
        Err(e) => return Err(e.into()),
    };
    let body = frame::render(
        "dashboard/two_factor_enrol.html",
        frame::frame(
            s,
            "account",
            context! {
                error,
                must_enrol => s.must_enrol,
                secret => enrolment.secret.expose(),
                url => enrolment.url.expose(),
                qr => enrolment.qr_data_url.expose(),
                issuer => two_factor::ISSUER,
            },
        ),
    )?;
    Ok(html(status, body))
}

#[handler]
pub(crate) async fn enrol_page(
    state: Data<&AppState>,
    jar: &CookieJar,
) -> Result<Response, PageError> {
    let s = signed_in_enrolling(&state, jar).await?;
    enrol_form(&state, &s, StatusCode::OK, None).await
}

/// The recovery codes, shown this once.
fn codes_page(s: &SignedIn, codes: &[Secret<String>], first: bool) -> Result<Response, PageError> {
    let codes: Vec<&str> = codes.iter().map(|c| c.expose().as_str()).collect();
    let body = frame::render(
        "dashboard/two_factor_codes.html",
        frame::frame(s, "account", context! { codes, first }),
    )?;
    Ok(html(StatusCode::OK, body))
}

#[derive(Deserialize)]
pub(crate) struct ConfirmForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    code: String,
}

#[handler]
pub(crate) async fn enable(
    req: &Request,
    state: Data<&AppState>,
    jar: &CookieJar,
    Form(form): Form<ConfirmForm>,
) -> Result<Response, PageError> {
    let s = signed_in_enrolling_for(&state, jar, &form.csrf).await?;
    let client = client_of(req);
    match two_factor::enable(&state, &s, &client, &form.password, &form.code).await {
        Ok(codes) => codes_page(&s, &codes, true),
        Err(AccountError::InvalidCredentials) => {
            enrol_form(&state, &s, StatusCode::BAD_REQUEST, Some("The password is wrong.")).await
        }
        Err(AccountError::WrongCode) => {
            enrol_form(
                &state,
                &s,
                StatusCode::BAD_REQUEST,
                Some("That code is not the current one of this secret: check the app and the device's clock, and try the next code."),
            )
            .await
        }
        Err(AccountError::LockedOut { retry_after }) => session::locked_out(
            enrol_form(
                &state,
                &s,
                StatusCode::TOO_MANY_REQUESTS,
                Some(&session::locked_out_message(retry_after)),
            )
            .await?,
            retry_after,
        ),
        Err(AccountError::TwoFactorOn | AccountError::TwoFactorOff) => {
            Ok(see_other("/dashboard/account"))
        }
        Err(e) => Err(e.into()),
    }
}

/// The account page again, with why a confirmation was refused.
async fn refused(state: &AppState, s: &SignedIn, e: AccountError) -> Result<Response, PageError> {
    let message = match e {
        AccountError::InvalidCredentials => "The password is wrong.".to_owned(),
        AccountError::WrongCode => WRONG_CODE.to_owned(),
        AccountError::TeamRequiresTwoFactor => {
            "Your team requires two-factor sign-in: it cannot be turned off.".to_owned()
        }
        AccountError::TwoFactorOff => "Two-factor sign-in is off.".to_owned(),
        AccountError::LockedOut { retry_after } => {
            return session::locked_out(
                session::account_form(
                    state,
                    s,
                    StatusCode::TOO_MANY_REQUESTS,
                    Some(&session::locked_out_message(retry_after)),
                    None,
                )
                .await?,
                retry_after,
            )
        }
        e => return Err(e.into()),
    };
    session::account_form(state, s, StatusCode::BAD_REQUEST, Some(&message), None).await
}

#[handler]
pub(crate) async fn disable(
    req: &Request,
    state: Data<&AppState>,
    jar: &CookieJar,
    Form(form): Form<ConfirmForm>,
) -> Result<Response, PageError> {
    let s = signed_in_for(&state, jar, &form.csrf, Action::Read).await?;
    let client = client_of(req);
    match two_factor::disable(&state, &s, &client, &form.password, &form.code).await {
        Ok(()) => Ok(see_other("/dashboard/account?done=two-factor-off")),
        Err(e) => refused(&state, &s, e).await,
    }
}

#[handler]
pub(crate) async fn regenerate(
    req: &Request,
    state: Data<&AppState>,
    jar: &CookieJar,
    Form(form): Form<ConfirmForm>,
) -> Result<Response, PageError> {
    let s = signed_in_for(&state, jar, &form.csrf, Action::Read).await?;
    let client = client_of(req);
    match two_factor::regenerate_recovery_codes(&state, &s, &client, &form.password, &form.code)
        .await
    {
        Ok(codes) => codes_page(&s, &codes, false),
        Err(e) => refused(&state, &s, e).await,
    }
}
