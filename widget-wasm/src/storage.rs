//! Remembered vouchers in the iframe's own `localStorage`, out of the shop page's reach.
//!
//! Only tokens, last four symbols and the last known balance are kept, never a code. Browsers
//! partition a third-party iframe's storage by top-level site, so a voucher remembered at
//! one shop is offered again at that shop only (the server binds the token to it as well).
use crate::{api::parse_money, flow::Saved};

fn storage() -> Option<web_sys::Storage> {
    web_sys::window()?.local_storage().ok().flatten()
}

fn key(publishable_key: &str) -> String {
    format!("superpayment:saved:{publishable_key}")
}

/// Whether this browser lets the iframe keep anything (some block third-party storage).
pub fn available() -> bool {
    storage().is_some_and(|s| {
        let probe = "superpayment:probe";
        let ok = s.set_item(probe, "1").is_ok();
        let _ = s.remove_item(probe);
        ok
    })
}

/// The vouchers remembered for this shop: one `token last4 balance currency` line each.
pub fn load(publishable_key: &str) -> Vec<Saved> {
    let text = storage()
        .and_then(|s| s.get_item(&key(publishable_key)).ok().flatten())
        .unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            let mut parts = line.split(' ');
            let (token, last4, balance, currency) =
                (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
            Some(Saved {
                token: token.to_owned(),
                last4: last4.to_owned(),
                balance: parse_money(balance, currency)?,
            })
        })
        .collect()
}

/// Replaces the remembered vouchers of this shop (an empty list removes the entry).
pub fn save(publishable_key: &str, saved: &[Saved]) {
    let Some(s) = storage() else {
        return;
    };
    if saved.is_empty() {
        let _ = s.remove_item(&key(publishable_key));
        return;
    }
    let mut text = String::new();
    for v in saved {
        for part in [
            v.token.as_str(),
            v.last4.as_str(),
            &v.balance.to_string(),
            v.balance.currency().code(),
        ] {
            text.push_str(part);
            text.push(' ');
        }
        text.pop();
        text.push('\n');
    }
    let _ = s.set_item(&key(publishable_key), &text);
}
