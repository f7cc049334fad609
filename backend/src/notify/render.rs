//! Renders an email's text and HTML parts from the template files in
//! `backend/templates/email/` (built into the binary, so it runs from anywhere).
use std::sync::OnceLock;

use minijinja::Environment;

use super::EmailKind;

/// The templates, by name: `<kind>.txt` and `<kind>.html` for every [`EmailKind`].
const TEMPLATES: &[(&str, &str)] = &[
    (
        "api_key_created.txt",
        include_str!("../../templates/email/api_key_created.txt"),
    ),
    (
        "api_key_created.html",
        include_str!("../../templates/email/api_key_created.html"),
    ),
    (
        "webhook_endpoint_disabled.txt",
        include_str!("../../templates/email/webhook_endpoint_disabled.txt"),
    ),
    (
        "webhook_endpoint_disabled.html",
        include_str!("../../templates/email/webhook_endpoint_disabled.html"),
    ),
    (
        "layout.html",
        include_str!("../../templates/email/layout.html"),
    ),
];

fn environment() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        // minijinja escapes `.html` templates for HTML and leaves `.txt` ones as they are.
        let mut env = Environment::new();
        for (name, source) in TEMPLATES {
            env.add_template(name, source)
                .unwrap_or_else(|e| panic!("email template {name}: {e}"));
        }
        env
    })
}

/// A rendered message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// Renders `kind`'s subject, text and HTML parts.
pub fn render(kind: &EmailKind) -> anyhow::Result<Rendered> {
    let env = environment();
    let params = serde_json::to_value(kind)?
        .get("params")
        .cloned()
        .unwrap_or_default();
    let ctx = minijinja::Value::from_serialize(&params);
    let name = kind.name();
    Ok(Rendered {
        subject: kind.subject(),
        text: env.get_template(&format!("{name}.txt"))?.render(&ctx)?,
        html: env.get_template(&format!("{name}.html"))?.render(&ctx)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::KeySummary;

    fn kinds() -> Vec<EmailKind> {
        vec![
            EmailKind::ApiKeyCreated {
                merchant_name: "Shop <b>&</b>".into(),
                mode: "live".into(),
                keys: vec![KeySummary {
                    id: "key_1".into(),
                    kind: "secret".into(),
                    prefix: "sk_live_".into(),
                    last4: "AbCd".into(),
                }],
            },
            EmailKind::WebhookEndpointDisabled {
                merchant_name: "Shop".into(),
                mode: "test".into(),
                url: "https://shop.example/hooks?a=1&b=<2>".into(),
                reason: "gone".into(),
            },
        ]
    }

    #[test]
    fn every_kind_renders_both_parts_and_escapes_html() {
        for kind in kinds() {
            let r = render(&kind).unwrap();
            assert!(!r.text.trim().is_empty() && !r.html.trim().is_empty());
            assert!(
                !r.html.contains("<b>&</b>") && !r.html.contains("<2>"),
                "{}",
                r.html
            );
        }
        let r = render(&kinds()[0]).unwrap();
        assert!(r.text.contains("sk_live_...AbCd"), "{}", r.text);
        assert!(
            r.text.contains("Shop <b>&</b>"),
            "text is not escaped: {}",
            r.text
        );
        let r = render(&kinds()[1]).unwrap();
        assert!(r.text.contains("https://shop.example/hooks?a=1&b=<2>"));
    }
}
