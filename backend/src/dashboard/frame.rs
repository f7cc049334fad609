//! What every signed-in page shares: its frame's context and the stylesheet.
use minijinja::{context, Value};
use poem::{handler, http::header, IntoResponse, Response};

use crate::accounts::SignedIn;
pub(crate) use crate::templates::render;

const STYLESHEET: &str = include_str!("../../templates/dashboard/dashboard.css");

/// What the frame of every signed-in page shows (user, role, mode, CSRF token, active
/// navigation entry), merged with the page's own `ctx`.
pub(crate) fn frame(s: &SignedIn, nav: &str, ctx: Value) -> Value {
    context! {
        email => &s.user.email,
        role => s.user.role.as_str(),
        mode => s.mode.as_str(),
        csrf => &s.csrf,
        nav => nav,
        ..ctx
    }
}

#[handler]
pub(crate) async fn stylesheet() -> Response {
    STYLESHEET
        .with_content_type("text/css; charset=utf-8")
        .with_header(header::CACHE_CONTROL, "public, max-age=300")
        .into_response()
}
