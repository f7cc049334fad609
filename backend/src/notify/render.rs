//! Renders an email's text and HTML parts from the template files in
//! `backend/templates/email/` (built into the binary, so it runs from anywhere).
use std::sync::OnceLock;

use minijinja::Environment;

use super::EmailKind;
use crate::webhooks::secrets::SecretCipher;

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
        "invitation.txt",
        include_str!("../../templates/email/invitation.txt"),
    ),
    (
        "invitation.html",
        include_str!("../../templates/email/invitation.html"),
    ),
    (
        "password_reset.txt",
        include_str!("../../templates/email/password_reset.txt"),
    ),
    (
        "password_reset.html",
        include_str!("../../templates/email/password_reset.html"),
    ),
    (
        "password_changed.txt",
        include_str!("../../templates/email/password_changed.txt"),
    ),
    (
        "password_changed.html",
        include_str!("../../templates/email/password_changed.html"),
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

/// Renders `kind`'s subject, text and HTML parts; `cipher` opens a sealed link, which
/// exists in clear only in the returned message.
pub fn render(kind: &EmailKind, cipher: &SecretCipher) -> anyhow::Result<Rendered> {
    let env = environment();
    let params = kind.template_params(cipher)?;
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
    use crate::{
        notify::{KeySummary, SealedLink},
        secret::Secret,
    };

    fn cipher() -> SecretCipher {
        SecretCipher::new([7; 32])
    }

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
            EmailKind::Invitation {
                merchant_name: "Shop <b>&</b>".into(),
                inviter: "owner@shop.example".into(),
                role: "staff".into(),
                expires_at: "2026-12-08T10:00:00Z".into(),
                invitation_id: "inv_1".into(),
                link: SealedLink::seal(
                    &cipher(),
                    "invitation",
                    "inv_1",
                    &Secret::new("https://pay.example/dashboard/invitations/TOKEN".into()),
                )
                .unwrap(),
            },
            EmailKind::PasswordReset {
                merchant_name: "Shop".into(),
                expires_at: "2026-12-05T10:00:00Z".into(),
                reset_id: "pwr_1".into(),
                link: SealedLink::seal(
                    &cipher(),
                    "password_reset",
                    "pwr_1",
                    &Secret::new("https://pay.example/dashboard/password-reset/TOKEN".into()),
                )
                .unwrap(),
            },
            EmailKind::PasswordChanged {
                merchant_name: "Shop".into(),
                changed_at: "2026-12-05T10:00:00Z".into(),
            },
        ]
    }

    #[test]
    fn a_sealed_link_is_stored_sealed_and_opens_only_for_its_row_and_key() {
        let kind = &kinds()[2];
        let stored = serde_json::to_string(kind).unwrap();
        assert!(!stored.contains("TOKEN"), "{stored}");
        let r = render(kind, &cipher()).unwrap();
        assert!(
            r.text
                .contains("https://pay.example/dashboard/invitations/TOKEN"),
            "{}",
            r.text
        );
        // The HTML part escapes it (`/` too), which a mail client reads back as the link.
        assert!(r.html.contains("invitations&#x2f;TOKEN\""), "{}", r.html);
        assert!(render(kind, &SecretCipher::new([8; 32])).is_err());
        let EmailKind::Invitation { link, .. } = kind.clone() else {
            unreachable!()
        };
        let moved = EmailKind::PasswordReset {
            merchant_name: "Shop".into(),
            expires_at: "2026-12-05T10:00:00Z".into(),
            reset_id: "inv_1".into(),
            link,
        };
        assert!(
            render(&moved, &cipher()).is_err(),
            "a link copied into another kind of email does not open"
        );
    }

    #[test]
    fn every_kind_renders_both_parts_and_escapes_html() {
        for kind in kinds() {
            let r = render(&kind, &cipher()).unwrap();
            assert!(!r.text.trim().is_empty() && !r.html.trim().is_empty());
            assert!(
                !r.html.contains("<b>&</b>") && !r.html.contains("<2>"),
                "{}",
                r.html
            );
        }
        let r = render(&kinds()[0], &cipher()).unwrap();
        assert!(r.text.contains("sk_live_...AbCd"), "{}", r.text);
        assert!(
            r.text.contains("Shop <b>&</b>"),
            "text is not escaped: {}",
            r.text
        );
        let r = render(&kinds()[1], &cipher()).unwrap();
        assert!(r.text.contains("https://shop.example/hooks?a=1&b=<2>"));
    }
}
