//! The back-office's templates, built into the binary and parsed once.
use std::sync::OnceLock;

use minijinja::{context, Environment, Value};
use poem::{handler, http::header, IntoResponse, Response};

use crate::accounts::SignedIn;

/// Every template, by name, with its source compiled in: the binary needs no files.
const TEMPLATES: &[(&str, &str)] = &[
    (
        "base.html",
        include_str!("../../templates/dashboard/base.html"),
    ),
    (
        "login.html",
        include_str!("../../templates/dashboard/login.html"),
    ),
    (
        "error.html",
        include_str!("../../templates/dashboard/error.html"),
    ),
    (
        "overview.html",
        include_str!("../../templates/dashboard/overview.html"),
    ),
    (
        "transactions.html",
        include_str!("../../templates/dashboard/transactions.html"),
    ),
    (
        "transaction.html",
        include_str!("../../templates/dashboard/transaction.html"),
    ),
    (
        "refund_confirm.html",
        include_str!("../../templates/dashboard/refund_confirm.html"),
    ),
    (
        "account.html",
        include_str!("../../templates/dashboard/account.html"),
    ),
    (
        "keys.html",
        include_str!("../../templates/dashboard/keys.html"),
    ),
    (
        "webhooks.html",
        include_str!("../../templates/dashboard/webhooks.html"),
    ),
    (
        "activity.html",
        include_str!("../../templates/dashboard/activity.html"),
    ),
    (
        "settings.html",
        include_str!("../../templates/dashboard/settings.html"),
    ),
];

const STYLESHEET: &str = include_str!("../../templates/dashboard/dashboard.css");

fn env() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        // `.html` names are auto-escaped by minijinja's default callback.
        let mut env = Environment::new();
        for (name, source) in TEMPLATES {
            env.add_template(name, source)
                .unwrap_or_else(|e| panic!("template {name}: {e}"));
        }
        env
    })
}

/// Renders a template with `ctx`.
pub(crate) fn render(name: &str, ctx: Value) -> anyhow::Result<String> {
    env()
        .get_template(name)
        .and_then(|t| t.render(ctx))
        .map_err(|e| anyhow::anyhow!("rendering {name}: {e:#}"))
}

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

#[cfg(test)]
mod tests {
    #[test]
    fn every_template_parses_and_markup_is_escaped() {
        let env = super::env();
        assert_eq!(env.templates().count(), super::TEMPLATES.len());
        let out = super::render(
            "login.html",
            minijinja::context! { email => "<script>x</script>", csrf => "t" },
        )
        .unwrap();
        assert!(out.contains("&lt;script&gt;x"));
        assert!(!out.contains("<script>x"));
    }
}
