//! Checkout settings: signed amounts (HMAC of order id, amount and currency) and embedding origins.
//!
//! The signing secret is derived as HMAC-SHA256(SIGNING_KEY, merchant, mode, generation), so
//! the database holds only a generation counter: rotating bumps it, and a database dump
//! reveals no secret. Merchants sign `"{order_id}|{amount}|{currency}"` where `amount` is
//! the canonical decimal with exactly the currency's decimals (`"99.00"`, `"1000"` for
//! JPY): lower-case hex of HMAC-SHA256 keyed with the secret string.
use hmac::{Hmac, Mac};
use sha2::Sha256;
use superpayment_core::{crockford_encode, signatures, FieldError, Money, OrderId, ValidPayment};
use time::OffsetDateTime;

use super::CheckoutError;
use crate::store::entities::text::AsText;
use crate::{auth::Caller, secret::Secret, state::AppState, store};

/// The most origins one merchant may allow to embed its checkout.
pub const MAX_ALLOWED_ORIGINS: usize = 20;

/// A merchant's checkout settings in one mode, as the merchant's server sees them.
#[derive(Debug, Clone)]
pub struct CheckoutSettings {
    /// Whether payments without a valid signature are refused.
    pub require_signature: bool,
    /// Origins allowed to frame the checkout; empty means any.
    pub allowed_origins: Vec<String>,
    /// The current signing secret (`sgn_test_...` / `sgn_live_...`).
    pub signing_secret: Secret<String>,
}

/// A change to the settings; absent fields keep their value.
#[derive(Debug, Clone, Default)]
pub struct SettingsPatch {
    /// New signature policy.
    pub require_signature: Option<bool>,
    /// New list of allowed origins (replaces the old one).
    pub allowed_origins: Option<Vec<String>>,
    /// Issue a new signing secret; the old one stops working at once.
    pub rotate_signing_secret: bool,
}

#[derive(Clone)]
struct Stored {
    require_signature: bool,
    allowed_origins: Vec<String>,
    generation: i32,
}

/// Settings read recently, per merchant and mode: every payment consults them, and a
/// lookup of its own would cost each payment a second commit. Entries live as long as
/// API keys in [`crate::auth::KeyCache`] (KEY_CACHE_TTL); a change clears this instance's
/// cache at once and reaches the others within that time.
pub struct SettingsCache {
    entries: Option<moka::sync::Cache<(String, String), Stored>>,
}

impl SettingsCache {
    /// A cache whose entries live `ttl`; zero disables it.
    pub fn new(ttl: std::time::Duration) -> Self {
        SettingsCache {
            entries: (!ttl.is_zero()).then(|| {
                moka::sync::Cache::builder()
                    .max_capacity(10_000)
                    .time_to_live(ttl)
                    .build()
            }),
        }
    }

    fn clear(&self) {
        if let Some(entries) = &self.entries {
            entries.invalidate_all();
        }
    }
}

async fn cached(state: &AppState, merchant_id: &str, mode: &str) -> Result<Stored, CheckoutError> {
    let key = (merchant_id.to_owned(), mode.to_owned());
    if let Some(hit) = state
        .settings_cache
        .entries
        .as_ref()
        .and_then(|e| e.get(&key))
    {
        return Ok(hit);
    }
    let found = stored(&state.db, merchant_id, mode).await?;
    if let Some(entries) = &state.settings_cache.entries {
        entries.insert(key, found.clone());
    }
    Ok(found)
}

async fn stored(
    db: &impl sea_orm::ConnectionTrait,
    merchant_id: &str,
    mode: &str,
) -> Result<Stored, CheckoutError> {
    Ok(
        match store::checkout::find_settings(db, merchant_id, mode).await? {
            Some(row) => Stored {
                require_signature: row.require_signature,
                allowed_origins: serde_json::from_value(row.allowed_origins).unwrap_or_default(),
                generation: row.signing_generation,
            },
            None => Stored {
                require_signature: false,
                allowed_origins: Vec::new(),
                generation: 1,
            },
        },
    )
}

/// The signing secret of a merchant, mode and generation.
fn derive_secret(
    server_key: &Secret<String>,
    merchant_id: &str,
    mode: &str,
    generation: i32,
) -> Secret<String> {
    let mut mac = Hmac::<Sha256>::new_from_slice(server_key.expose().as_bytes())
        .expect("HMAC accepts keys of any length");
    // The NUL separators and the label keep this derivation apart from every other use of
    // the key (voucher code HMACs never contain a NUL).
    mac.update(b"superpayment checkout signing\0");
    mac.update(merchant_id.as_bytes());
    mac.update(b"\0");
    mac.update(mode.as_bytes());
    mac.update(b"\0");
    mac.update(generation.to_string().as_bytes());
    let body = crockford_encode(&mac.finalize().into_bytes(), 40).to_ascii_lowercase();
    Secret::new(format!("sgn_{mode}_{body}"))
}

/// The signature a merchant puts in `data-signature` for this order
/// ([`superpayment_core::signatures`] defines it).
pub fn sign_order(secret: &Secret<String>, order_id: &OrderId, amount: Money) -> String {
    signatures::order_signature(secret.expose().as_bytes(), order_id, amount)
}

/// Whether `signature` (hex, either case) is this order's, checked in constant time.
pub fn verify_order(
    secret: &Secret<String>,
    order_id: &OrderId,
    amount: Money,
    signature: &str,
) -> bool {
    signatures::order_signature_matches(secret.expose().as_bytes(), order_id, amount, signature)
}

/// Refuses a payment whose signature is wrong, or missing where the merchant requires one.
///
/// A signature that is sent is always checked, even when not required: a wrong one means
/// the page was altered.
#[tracing::instrument(skip_all, fields(merchant_id = %caller.merchant_id))]
pub async fn check_signature(
    state: &AppState,
    caller: &Caller,
    payment: &ValidPayment,
    signature: Option<&str>,
) -> Result<(), CheckoutError> {
    let settings = cached(state, &caller.merchant_id, caller.mode_str()).await?;
    let signature = signature.map(str::trim).filter(|s| !s.is_empty());
    let Some(signature) = signature else {
        return if settings.require_signature {
            Err(CheckoutError::SignatureRequired)
        } else {
            Ok(())
        };
    };
    let secret = derive_secret(
        &state.signing_key,
        &caller.merchant_id,
        caller.mode_str(),
        settings.generation,
    );
    if verify_order(&secret, &payment.order_id, payment.amount, signature) {
        Ok(())
    } else {
        tracing::warn!("payment refused: signature does not match order id, amount and currency");
        Err(CheckoutError::SignatureInvalid)
    }
}

/// The caller's settings, with the current signing secret.
pub async fn get(state: &AppState, caller: &Caller) -> Result<CheckoutSettings, CheckoutError> {
    get_in(state, &state.db, caller).await
}

/// [`get`] read from `db`, for readers that choose their connection (the back-office).
pub async fn get_in(
    state: &AppState,
    db: &sea_orm::DatabaseConnection,
    caller: &Caller,
) -> Result<CheckoutSettings, CheckoutError> {
    let s = stored(db, &caller.merchant_id, caller.mode_str()).await?;
    Ok(CheckoutSettings {
        require_signature: s.require_signature,
        signing_secret: derive_secret(
            &state.signing_key,
            &caller.merchant_id,
            caller.mode_str(),
            s.generation,
        ),
        allowed_origins: s.allowed_origins,
    })
}

/// Applies a change to the caller's settings and returns the result.
#[tracing::instrument(skip_all, fields(merchant_id = %caller.merchant_id))]
pub async fn update(
    state: &AppState,
    caller: &Caller,
    patch: SettingsPatch,
) -> Result<CheckoutSettings, CheckoutError> {
    let changed = patch.require_signature.is_some() || patch.allowed_origins.is_some();
    let origins = match patch.allowed_origins {
        Some(list) => Some(normalise_origins(&list)?),
        None => None,
    };
    let s = stored(&state.db, &caller.merchant_id, caller.mode_str()).await?;
    let generation = if patch.rotate_signing_secret {
        s.generation
            .checked_add(1)
            .ok_or_else(|| anyhow::anyhow!("signing generation overflow"))?
    } else {
        s.generation
    };
    let allowed_origins = origins.unwrap_or(s.allowed_origins);
    store::checkout::upsert_settings(
        &state.db,
        store::entities::checkout_settings::Model {
            merchant_id: caller.merchant_id.clone(),
            mode: AsText(caller.mode),
            require_signature: patch.require_signature.unwrap_or(s.require_signature),
            allowed_origins: serde_json::to_value(&allowed_origins).map_err(anyhow::Error::from)?,
            signing_generation: generation,
            updated_at: OffsetDateTime::now_utc(),
        },
    )
    .await?;
    state.settings_cache.clear();
    if changed {
        let detail = format!(
            "require signed amounts: {}; origins: {}",
            patch.require_signature.unwrap_or(s.require_signature),
            if allowed_origins.is_empty() {
                "any".to_owned()
            } else {
                allowed_origins.join(" ")
            }
        );
        crate::activity::record_for(
            &state.db,
            caller,
            crate::activity::Action::SettingsChanged,
            None,
            Some(detail),
        )
        .await?;
    }
    if patch.rotate_signing_secret {
        crate::activity::record_for(
            &state.db,
            caller,
            crate::activity::Action::SigningSecretRotated,
            None,
            None,
        )
        .await?;
        tracing::info!("checkout signing secret rotated");
    }
    get(state, caller).await
}

/// The origins allowed to frame the checkout of the merchant owning this publishable key;
/// empty when any page may embed it (nothing configured, or an unknown key, which the
/// widget reports itself).
pub async fn embedding_origins(state: &AppState, publishable_key: &str) -> Vec<String> {
    async {
        let key = superpayment_core::ApiKey::parse(publishable_key).ok()?;
        let hash = crate::crypto::sha256_hex(key.expose());
        let (row, merchant) = store::merchants::find_key_by_hash(&state.db, &hash)
            .await
            .ok()??;
        Some(
            stored(&state.db, &merchant.id, row.mode.0.as_str())
                .await
                .ok()?
                .allowed_origins,
        )
    }
    .await
    .unwrap_or_default()
}

/// Whether a page of `page_origin` (`scheme://host[:port]`, as `location.origin` writes it)
/// is certainly refused by `frame-ancestors` made of `allowed` (normalised origins).
///
/// Sources match as browsers match them (CSP3): `http` also admits `https`, `*.` any
/// subdomain (not the bare domain), no port the page scheme's default one. Whenever the
/// answer is not certain (nothing configured, an origin that does not parse) this says
/// "not refused": the checkout document is served and the browser has the last word.
pub fn frame_refused(allowed: &[String], page_origin: &str) -> bool {
    let Some(page) = Origin::parse(page_origin) else {
        return false;
    };
    !allowed.is_empty()
        && !allowed
            .iter()
            .any(|source| Origin::parse(source).is_none_or(|s| s.admits(&page)))
}

/// An origin taken apart, lower case.
struct Origin {
    scheme: String,
    host: String,
    port: Option<u16>,
}

impl Origin {
    /// `scheme://host[:port]`; `None` for anything else.
    fn parse(origin: &str) -> Option<Origin> {
        let origin = origin.to_ascii_lowercase();
        let (scheme, rest) = origin.split_once("://")?;
        // A colon after the last `]` (IPv6 literals hold colons of their own) starts the port.
        let (host, port) = match rest.rfind(':').filter(|&i| !rest[i..].contains(']')) {
            Some(i) => (&rest[..i], Some(rest[i + 1..].parse::<u16>().ok()?)),
            None => (rest, None),
        };
        if host.is_empty() || host.contains(['/', '?', '#', '@']) {
            return None;
        }
        Some(Origin {
            scheme: scheme.to_owned(),
            host: host.to_owned(),
            port,
        })
    }

    /// The scheme's default port.
    fn default_port(&self) -> Option<u16> {
        match self.scheme.as_str() {
            "http" => Some(80),
            "https" => Some(443),
            _ => None,
        }
    }

    /// Whether this source expression admits a page of `page`'s origin.
    fn admits(&self, page: &Origin) -> bool {
        let upgrade = self.scheme == "http" && page.scheme == "https";
        let scheme_ok = self.scheme == page.scheme || upgrade;
        let host_ok = match self.host.strip_prefix("*.") {
            Some(domain) => page
                .host
                .strip_suffix(domain)
                .is_some_and(|sub| sub.len() > 1 && sub.ends_with('.')),
            None => self.host == page.host,
        };
        let page_port = page.port.or(page.default_port());
        let port_ok = match self.port {
            None => page_port == page.default_port(),
            Some(port) => {
                Some(port) == page_port || (upgrade && port == 80 && page_port == Some(443))
            }
        };
        scheme_ok && host_ok && port_ok
    }
}

/// Checks and normalises origins such as `https://shop.example` or `https://*.shop.example:8443`.
///
/// Only what a CSP source expression can hold safely gets through: a scheme, a host of
/// letters, digits, dots and dashes (an optional leading `*.`), and a port; no path.
pub fn normalise_origins(list: &[String]) -> Result<Vec<String>, CheckoutError> {
    if list.len() > MAX_ALLOWED_ORIGINS {
        return Err(CheckoutError::Invalid(vec![FieldError::new(
            "allowed_origins",
            "too_many_origins",
            format!("At most {MAX_ALLOWED_ORIGINS} origins can be allowed."),
        )]));
    }
    let mut out: Vec<String> = Vec::with_capacity(list.len());
    for (i, raw) in list.iter().enumerate() {
        let origin = normalise_origin(raw).ok_or_else(|| {
            CheckoutError::Invalid(vec![FieldError::new(
                format!("allowed_origins[{i}]"),
                "invalid_origin",
                "An origin is a scheme and host with an optional port, such as https://shop.example, without a path.",
            )])
        })?;
        if !out.contains(&origin) {
            out.push(origin);
        }
    }
    Ok(out)
}

fn normalise_origin(raw: &str) -> Option<String> {
    let lower = raw.trim().trim_end_matches('/').to_ascii_lowercase();
    let (scheme, rest) = lower.split_once("://")?;
    if scheme != "https" && scheme != "http" {
        return None;
    }
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) if !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()) => {
            (h, Some(p))
        }
        Some(_) => return None,
        None => (rest, None),
    };
    let bare = host.strip_prefix("*.").unwrap_or(host);
    let host_ok = !bare.is_empty()
        && bare.len() <= 253
        && bare.split('.').all(|label| {
            !label.is_empty()
                && !label.starts_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    if !host_ok {
        return None;
    }
    Some(match port {
        Some(p) => format!("{scheme}://{host}:{p}"),
        None => format!("{scheme}://{host}"),
    })
}

#[cfg(test)]
mod tests {
    use superpayment_core::Currency;

    use super::*;

    #[test]
    fn origins_are_normalised_or_refused() {
        let ok = normalise_origins(&[
            "https://Shop.Example/".into(),
            "http://127.0.0.1:8080".into(),
            "https://*.shop.example".into(),
            "https://shop.example".into(),
        ])
        .unwrap();
        assert_eq!(
            ok,
            vec![
                "https://shop.example",
                "http://127.0.0.1:8080",
                "https://*.shop.example"
            ]
        );
        for bad in [
            "shop.example",
            "ftp://shop.example",
            "https://shop.example/path",
            "https://shop example",
            "https://shop.example; script-src *",
            "https://shop.example:",
            "https://",
            "https://-bad.example",
            "https://shop.example:123456",
        ] {
            assert!(normalise_origins(&[bad.into()]).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_page_is_refused_only_when_no_allowed_origin_admits_it() {
        let allowed: Vec<String> = [
            "https://shop.example",
            "https://*.brand.example",
            "http://legacy.example",
            "http://127.0.0.1:8080",
        ]
        .map(String::from)
        .to_vec();
        for admitted in [
            "https://shop.example",
            "https://SHOP.example",
            "https://shop.example:443",
            "https://eu.brand.example",
            "https://a.b.brand.example",
            "http://legacy.example",
            "https://legacy.example",
            "http://127.0.0.1:8080",
        ] {
            assert!(!frame_refused(&allowed, admitted), "{admitted}");
        }
        for refused in [
            "https://evil.example",
            "http://shop.example",
            "https://shop.example:8443",
            "https://brand.example",
            "https://evilbrand.example",
            "https://shop.example.evil.example",
            "http://127.0.0.1:8081",
            "http://localhost:8080",
        ] {
            assert!(frame_refused(&allowed, refused), "{refused}");
        }
    }

    #[test]
    fn when_in_doubt_the_browser_decides() {
        let allowed = vec!["https://shop.example".to_owned()];
        assert!(
            !frame_refused(&[], "https://evil.example"),
            "nothing configured"
        );
        for unclear in [
            "",
            "null",
            "https://",
            "https://x.example/path",
            "https://x.example:99999",
        ] {
            assert!(!frame_refused(&allowed, unclear), "{unclear:?}");
        }
        assert!(frame_refused(&allowed, "http://[::1]:8080"));
        assert!(!frame_refused(
            &["http://[::1]:8080".to_owned()],
            "http://[::1]:8080"
        ));
    }

    #[test]
    fn secrets_differ_by_merchant_mode_and_generation() {
        let key = Secret::new("server-key-0123456789".to_owned());
        let a = derive_secret(&key, "mer_1", "test", 1);
        assert!(a.expose().starts_with("sgn_test_"));
        assert_eq!(a.expose().len(), "sgn_test_".len() + 40);
        assert_eq!(a.expose(), derive_secret(&key, "mer_1", "test", 1).expose());
        assert_ne!(a.expose(), derive_secret(&key, "mer_2", "test", 1).expose());
        assert_ne!(a.expose(), derive_secret(&key, "mer_1", "live", 1).expose());
        assert_ne!(a.expose(), derive_secret(&key, "mer_1", "test", 2).expose());
    }

    #[test]
    fn the_signature_covers_order_amount_and_currency() {
        let secret = Secret::new("sgn_test_example".to_owned());
        let order = OrderId::parse("ORDER_123").unwrap();
        let eur = Money::parse("99.00", Currency::EUR).unwrap();
        let sig = sign_order(&secret, &order, eur);
        assert_eq!(sig.len(), 64);
        // "99" and "99.00" are the same amount, so the same signature.
        assert_eq!(
            sig,
            sign_order(&secret, &order, Money::parse("99", Currency::EUR).unwrap())
        );
        assert_ne!(
            sig,
            sign_order(
                &secret,
                &order,
                Money::parse("9.90", Currency::EUR).unwrap()
            )
        );
        assert_ne!(
            sig,
            sign_order(
                &secret,
                &order,
                Money::parse("99.00", Currency::CHF).unwrap()
            )
        );
        assert_ne!(
            sig,
            sign_order(&secret, &OrderId::parse("ORDER_124").unwrap(), eur)
        );
    }

    #[test]
    fn a_signature_is_verified_on_its_decoded_bytes() {
        let secret = Secret::new("sgn_test_example".to_owned());
        let order = OrderId::parse("ORDER_123").unwrap();
        let eur = Money::parse("99.00", Currency::EUR).unwrap();
        let sig = sign_order(&secret, &order, eur);
        assert!(verify_order(&secret, &order, eur, &sig));
        assert!(verify_order(
            &secret,
            &order,
            eur,
            &sig.to_ascii_uppercase()
        ));
        assert!(!verify_order(&secret, &order, eur, &sig[..62]));
        assert!(!verify_order(&secret, &order, eur, &format!("{sig}00")));
        assert!(!verify_order(&secret, &order, eur, "not hex"));
        assert!(!verify_order(&secret, &order, eur, ""));
        let other = Secret::new("sgn_test_other".to_owned());
        assert!(!verify_order(&other, &order, eur, &sig));
    }
}
