//! Templates of the server-rendered pages (the back-office under `dashboard/`, the demo
//! shop under `demo/`), files of `backend/templates/` built into the binary and parsed
//! once: the single binary needs no template files at run time.
use std::sync::OnceLock;

use minijinja::{Environment, Value};

/// Every template, by name, with its source compiled in.
const TEMPLATES: &[(&str, &str)] = &[
    (
        "dashboard/base.html",
        include_str!("../templates/dashboard/base.html"),
    ),
    (
        "dashboard/login.html",
        include_str!("../templates/dashboard/login.html"),
    ),
    (
        "dashboard/error.html",
        include_str!("../templates/dashboard/error.html"),
    ),
    (
        "dashboard/overview.html",
        include_str!("../templates/dashboard/overview.html"),
    ),
    (
        "dashboard/transactions.html",
        include_str!("../templates/dashboard/transactions.html"),
    ),
    (
        "dashboard/transaction.html",
        include_str!("../templates/dashboard/transaction.html"),
    ),
    (
        "dashboard/refund_confirm.html",
        include_str!("../templates/dashboard/refund_confirm.html"),
    ),
    (
        "dashboard/account.html",
        include_str!("../templates/dashboard/account.html"),
    ),
    (
        "dashboard/login_two_factor.html",
        include_str!("../templates/dashboard/login_two_factor.html"),
    ),
    (
        "dashboard/two_factor_enrol.html",
        include_str!("../templates/dashboard/two_factor_enrol.html"),
    ),
    (
        "dashboard/two_factor_codes.html",
        include_str!("../templates/dashboard/two_factor_codes.html"),
    ),
    (
        "dashboard/keys.html",
        include_str!("../templates/dashboard/keys.html"),
    ),
    (
        "dashboard/webhooks.html",
        include_str!("../templates/dashboard/webhooks.html"),
    ),
    (
        "dashboard/activity.html",
        include_str!("../templates/dashboard/activity.html"),
    ),
    (
        "dashboard/link.html",
        include_str!("../templates/dashboard/link.html"),
    ),
    (
        "dashboard/settings.html",
        include_str!("../templates/dashboard/settings.html"),
    ),
    (
        "demo/page.html",
        include_str!("../templates/demo/page.html"),
    ),
    (
        "demo/index.html",
        include_str!("../templates/demo/index.html"),
    ),
    (
        "demo/cart.html",
        include_str!("../templates/demo/cart.html"),
    ),
    (
        "demo/order_table.html",
        include_str!("../templates/demo/order_table.html"),
    ),
    (
        "demo/checkout.html",
        include_str!("../templates/demo/checkout.html"),
    ),
    (
        "demo/confirmation.html",
        include_str!("../templates/demo/confirmation.html"),
    ),
    (
        "demo/message.html",
        include_str!("../templates/demo/message.html"),
    ),
];

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

/// Renders the template `name` with `ctx`.
pub fn render(name: &str, ctx: Value) -> anyhow::Result<String> {
    env()
        .get_template(name)
        .and_then(|t| t.render(ctx))
        .map_err(|e| anyhow::anyhow!("rendering {name}: {e:#}"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_template_parses_and_markup_is_escaped() {
        let env = super::env();
        assert_eq!(env.templates().count(), super::TEMPLATES.len());
        let out = super::render(
            "dashboard/login.html",
            minijinja::context! { email => "<script>x</script>", csrf => "t" },
        )
        .unwrap();
        assert!(out.contains("&lt;script&gt;x"));
        assert!(!out.contains("<script>x"));
    }
}
