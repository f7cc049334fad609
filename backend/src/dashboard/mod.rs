//! The back-office under `/dashboard`: server-rendered pages (templates in
//! `backend/templates/dashboard/`, built into the binary by [`crate::templates`]) over one merchant's data in the
//! session's mode. Every form is a plain POST carrying the session's CSRF token, so the
//! pages work without JavaScript.
//!
//! - [`session`]: log in and out, the test/live switch, the password.
//! - [`links`]: the pages of emailed links: accepting an invitation, resetting a password.
//! - [`two_factor`]: the second step of a sign-in, enrolling a second factor, turning it
//!   off, renewing recovery codes.
//! - [`overview`]: today's and this month's figures and the 30-day chart.
//! - [`transactions`]: search, detail, refunds, CSV export.
//! - [`keys`]: API keys: create, roll, revoke.
//! - [`webhooks`]: the endpoint, secret rotation, the delivery log, redelivery.
//! - [`settings`]: checkout settings, the team's roles and invitations.
//! - [`activity`]: the activity log.
mod activity;
mod frame;
mod keys;
mod links;
mod overview;
mod session;
mod settings;
mod transactions;
mod two_factor;
mod webhooks;

use std::{sync::Arc, time::Duration};

use poem::{
    get,
    http::{header, Method, StatusCode},
    post,
    web::{
        cookie::{Cookie, CookieJar, SameSite},
        Redirect,
    },
    Endpoint, EndpointExt, IntoResponse, Request, Response, Route,
};

use crate::{
    accounts::{self, Action, SignedIn},
    replica::{Freshness, ReadDb},
    state::AppState,
    store::replica::WalPosition,
};

/// The cookie that carries, after a form's write, the primary's WAL position at that
/// moment, so the pages that follow read their own writes (see [`reads`]).
pub(crate) const WROTE_COOKIE: &str = "sp_wrote";

/// How long [`WROTE_COOKIE`] lives: past it, a page may be served by a replica that is
/// still behind the write (its banner then says how far).
const WROTE_FOR: Duration = Duration::from_secs(300);

/// The connection a page that only reports reads from, and how fresh it is: the one
/// place that points pages at the replica (design §8). The replica when
/// DATABASE_REPLICA_URL is set, answers, and has replayed this browser's last write
/// ([`WROTE_COOKIE`]); else the primary. Anything that decides or writes (the session,
/// CSRF and role checks, a read right before a write, a page rendered by the request
/// that wrote) reads [`AppState::db`] instead.
pub(crate) async fn reads(state: &AppState, jar: &CookieJar) -> ReadDb {
    let seen = jar
        .get(WROTE_COOKIE)
        .and_then(|c| c.value_str().parse::<WalPosition>().ok());
    state.reads.reader_after(seen).await
}

/// The primary, for a page rendered by the request that wrote: it shows its own write.
pub(crate) fn primary(state: &AppState) -> ReadDb {
    ReadDb::primary(&state.db)
}

/// Read-your-writes: after every form post that did not fail, the browser gets the
/// primary's WAL position in [`WROTE_COOKIE`], so the page it is sent to next reads the
/// primary until the replica has replayed that far. Without a replica, nothing is set.
async fn remember_writes<E: Endpoint>(ep: Arc<E>, req: Request) -> poem::Result<Response> {
    let post = req.method() == Method::POST;
    let state = req.data::<AppState>().cloned();
    let jar = req.cookie().clone();
    let resp = ep.call(req).await?.into_response();
    if post && !resp.status().is_client_error() && !resp.status().is_server_error() {
        if let Some(state) = state {
            if let Some(at) = state.reads.written().await {
                let mut c = cookie(&state, WROTE_COOKIE, &at.to_string());
                c.set_max_age(WROTE_FOR);
                jar.add(c);
            }
        }
    }
    Ok(resp)
}

/// A page that reports: [`html`] with the `Data-Source` and `Data-Lag` headers of the
/// API's lists for the connection it was read from.
pub(crate) fn report(status: StatusCode, body: String, freshness: &Freshness) -> Response {
    with_freshness(html(status, body), freshness)
}

/// `resp` with the `Data-Source` and `Data-Lag` headers of `freshness`.
pub(crate) fn with_freshness(resp: Response, freshness: &Freshness) -> Response {
    let resp = resp.with_header("Data-Source", freshness.source());
    match freshness.lag_header() {
        Some(lag) => resp.with_header("Data-Lag", lag).into_response(),
        None => resp.into_response(),
    }
}

/// Adds the back-office under `/dashboard`.
pub fn mount(route: Route) -> Route {
    route.nest(
        "/dashboard",
        Route::new()
            .at("/", get(overview::page))
            .at("/login", get(session::login_page).post(session::login))
            .at(
                "/login/two-factor",
                get(two_factor::second_step_page).post(two_factor::second_step),
            )
            .at("/logout", post(session::logout))
            .at("/logout-everywhere", post(session::logout_everywhere))
            .at("/mode", post(session::switch_mode))
            .at("/account", get(session::account_page))
            .at("/account/password", post(session::change_password))
            .at("/account/two-factor", get(two_factor::enrol_page))
            .at("/account/two-factor/enable", post(two_factor::enable))
            .at("/account/two-factor/disable", post(two_factor::disable))
            .at(
                "/account/two-factor/recovery-codes",
                post(two_factor::regenerate),
            )
            .at("/transactions", get(transactions::list))
            .at("/transactions.csv", get(transactions::export))
            .at("/transactions/:id", get(transactions::detail))
            .at(
                "/transactions/:id/refund",
                get(transactions::confirm_refund).post(transactions::refund),
            )
            .at("/keys", get(keys::list).post(keys::create))
            .at("/keys/:id/roll", post(keys::roll))
            .at("/keys/:id/revoke", post(keys::revoke))
            .at("/webhooks", get(webhooks::show))
            .at("/webhooks/endpoint", post(webhooks::set_endpoint))
            .at("/webhooks/rotate-secret", post(webhooks::rotate))
            .at("/webhooks/events/:id/redeliver", post(webhooks::redeliver))
            .at("/settings", get(settings::show))
            .at("/settings/checkout", post(settings::checkout))
            .at(
                "/settings/rotate-signing-secret",
                post(settings::rotate_signing_secret),
            )
            .at("/settings/team/:id", post(settings::member))
            .at("/settings/invitations", post(settings::invite))
            .at(
                "/settings/invitations/:id/resend",
                post(settings::resend_invitation),
            )
            .at(
                "/settings/invitations/:id/revoke",
                post(settings::revoke_invitation),
            )
            .at(
                "/invitations/:token",
                get(links::invitation_page).post(links::accept),
            )
            .at(
                "/password-reset",
                get(links::forgot_page).post(links::forgot),
            )
            .at(
                "/password-reset/:token",
                get(links::reset_page).post(links::reset),
            )
            .at("/settings/two-factor", post(settings::team_two_factor))
            .at("/activity", get(activity::page))
            .at("/activity.csv", get(activity::export))
            .at("/assets/dashboard.css", get(frame::stylesheet))
            .around(remember_writes)
            .with(poem::middleware::CookieJarManager::new())
            // Forms are small; cap them like the API's bodies.
            .with(crate::api::body_limit::BodyLimit::new(16 * 1024))
            .with(crate::telemetry::RouteLabel("/dashboard/*")),
    )
}

/// The policy of every page: nothing inline but the chart's SVG, no framing.
const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; \
                   form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// A rendered page with the back-office's headers.
pub(crate) fn html(status: StatusCode, body: String) -> Response {
    body.with_content_type("text/html; charset=utf-8")
        .with_status(status)
        .with_header(header::CONTENT_SECURITY_POLICY, CSP)
        .with_header(header::CACHE_CONTROL, "no-store")
        // Some addresses carry an emailed link's token: never hand them on.
        .with_header(header::REFERRER_POLICY, "no-referrer")
        .into_response()
}

/// Why a page was not shown.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PageError {
    /// No live session: back to the login page.
    #[error("not signed in")]
    SignedOut,
    /// The team requires a second factor this user has not set up: to the enrolment page.
    #[error("two-factor sign-in required")]
    MustEnrol,
    /// A form without this session's CSRF token.
    #[error("form expired")]
    Csrf(Box<SignedIn>),
    /// The role does not allow it.
    #[error("forbidden")]
    Forbidden(Box<SignedIn>),
    /// Not this merchant's (in this mode), or does not exist.
    #[error("not found")]
    NotFound(Box<SignedIn>),
    /// Anything unexpected: logged, answered with an opaque page.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<sea_orm::DbErr> for PageError {
    fn from(e: sea_orm::DbErr) -> Self {
        Self::Internal(e.into())
    }
}

impl From<accounts::AccountError> for PageError {
    fn from(e: accounts::AccountError) -> Self {
        Self::Internal(e.into())
    }
}

impl poem::error::ResponseError for PageError {
    fn status(&self) -> StatusCode {
        match self {
            PageError::SignedOut | PageError::MustEnrol => StatusCode::SEE_OTHER,
            PageError::Csrf(_) | PageError::Forbidden(_) => StatusCode::FORBIDDEN,
            PageError::NotFound(_) => StatusCode::NOT_FOUND,
            PageError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn as_response(&self) -> Response {
        let (s, heading, message) = match self {
            PageError::SignedOut => {
                return Redirect::see_other("/dashboard/login").into_response();
            }
            PageError::MustEnrol => {
                return Redirect::see_other(ENROL_PAGE).into_response();
            }
            PageError::Csrf(s) => (
                Some(s),
                "Form expired",
                "This form was not sent from this session. Reload the page and try again.",
            ),
            PageError::Forbidden(s) => (
                Some(s),
                "Not allowed",
                "Your role does not allow this. Ask an owner of the account.",
            ),
            PageError::NotFound(s) => (
                Some(s),
                "Not found",
                "There is no such page in this account and mode.",
            ),
            PageError::Internal(e) => {
                tracing::error!(error = ?e, "back-office page failed");
                (
                    None,
                    "Something went wrong",
                    "The page could not be shown; try again.",
                )
            }
        };
        let body = match s {
            Some(s) => frame::render(
                "dashboard/error.html",
                frame::frame(s, "", minijinja::context! { heading, message }),
            ),
            None => Ok(format!("{heading}: {message}")),
        };
        match body {
            Ok(b) => html(self.status(), b),
            Err(e) => {
                tracing::error!(error = ?e, "rendering an error page failed");
                StatusCode::INTERNAL_SERVER_ERROR.into_response()
            }
        }
    }
}

/// Where a member whose team requires a second factor is sent until they have one.
pub(crate) const ENROL_PAGE: &str = "/dashboard/account/two-factor";

/// The signed-in session of the request, or [`PageError::SignedOut`]; a session that must
/// enrol a second factor first opens nothing ([`PageError::MustEnrol`]).
pub(crate) async fn signed_in(state: &AppState, jar: &CookieJar) -> Result<SignedIn, PageError> {
    let s = signed_in_enrolling(state, jar).await?;
    if s.must_enrol {
        return Err(PageError::MustEnrol);
    }
    Ok(s)
}

/// The signed-in session of the request, even one that must enrol a second factor first:
/// for the enrolment page and logging out only.
pub(crate) async fn signed_in_enrolling(
    state: &AppState,
    jar: &CookieJar,
) -> Result<SignedIn, PageError> {
    let Some(cookie) = jar.get(accounts::SESSION_COOKIE) else {
        return Err(PageError::SignedOut);
    };
    accounts::authenticate(state, cookie.value_str())
        .await?
        .ok_or(PageError::SignedOut)
}

/// The signed-in session of a form post: its CSRF token checked, and its role allowing
/// `action` (the one role check of every handler that changes something).
pub(crate) async fn signed_in_for(
    state: &AppState,
    jar: &CookieJar,
    csrf: &str,
    action: Action,
) -> Result<SignedIn, PageError> {
    checked_form(signed_in(state, jar).await?, csrf, action)
}

/// [`signed_in_for`] of the enrolment forms and logging out, which a session that must
/// enrol a second factor first may send.
pub(crate) async fn signed_in_enrolling_for(
    state: &AppState,
    jar: &CookieJar,
    csrf: &str,
) -> Result<SignedIn, PageError> {
    checked_form(signed_in_enrolling(state, jar).await?, csrf, Action::Read)
}

fn checked_form(s: SignedIn, csrf: &str, action: Action) -> Result<SignedIn, PageError> {
    if !accounts::csrf_matches(&s, csrf) {
        tracing::warn!(user_id = %s.user.id, "back-office form without its CSRF token");
        return Err(PageError::Csrf(Box::new(s)));
    }
    if !s.can(action) {
        tracing::warn!(user_id = %s.user.id, role = s.user.role.as_str(), ?action, "back-office action refused");
        return Err(PageError::Forbidden(Box::new(s)));
    }
    Ok(s)
}

/// A cookie of the back-office: HttpOnly, SameSite=Lax, Secure when PUBLIC_URL is https,
/// sent to `/dashboard` only.
pub(crate) fn cookie(state: &AppState, name: &str, value: &str) -> Cookie {
    let mut c = Cookie::new_with_str(name, value);
    c.set_http_only(true);
    c.set_same_site(SameSite::Lax);
    c.set_secure(state.accounts.secure_cookie);
    c.set_path("/dashboard");
    c
}

/// A cookie of [`cookie`]'s kind that the browser drops at once.
pub(crate) fn expired_cookie(state: &AppState, name: &str) -> Cookie {
    let mut c = cookie(state, name, "");
    c.set_max_age(std::time::Duration::ZERO);
    c
}

/// Where a form's POST ends: a 303 to `to` (the browser then GETs it).
pub(crate) fn see_other(to: &str) -> Response {
    Redirect::see_other(to).into_response()
}

/// The client address as the gateway resolved it.
pub(crate) fn client_of(req: &Request) -> String {
    crate::gateway::ClientAddr::of_request(req)
        .map(|c| c.to_string())
        .unwrap_or_else(|| "unknown".into())
}
