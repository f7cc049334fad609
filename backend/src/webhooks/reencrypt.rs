//! `superpayment admin reencrypt`: moves every sealed value from an old ENCRYPTION_KEY to
//! the current one (webhook secrets, sealed idempotent answers, back-office TOTP secrets).
//!
//! Each row is swapped only if it still holds the ciphertext that was read, so a rotation
//! or a new answer written meanwhile is never overwritten; running the command twice is
//! harmless (values already under the current key are counted and left alone, except that
//! an unbound `v1:` webhook secret is rewritten bound to its endpoint).
use sea_orm::ConnectionTrait;

use super::secrets::{endpoint_secret_aad, idempotency_body_aad, totp_secret_aad, SecretCipher};
use crate::store;

/// What one run did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    /// Values opened with the old key and sealed again with the current one.
    pub reencrypted: u64,
    /// Values that already opened with the current key.
    pub already_current: u64,
    /// Values that changed while the run read them (run again to cover them).
    pub changed_meanwhile: u64,
    /// Rows that open under neither key, as "table id" (left untouched).
    pub unreadable: Vec<String>,
}

impl Report {
    /// Counts one resealed value: swapped in, or left because the row changed meanwhile.
    fn resealed(&mut self, swapped: bool) {
        if swapped {
            self.reencrypted += 1;
        } else {
            self.changed_meanwhile += 1;
        }
    }
}

enum Outcome {
    Reseal(String),
    Current,
    Unreadable,
}

/// Decides what to write for one sealed value.
fn plan(
    stored: &str,
    old: &SecretCipher,
    current: &SecretCipher,
    aad: &[u8],
    bound: bool,
) -> anyhow::Result<Outcome> {
    let seal = |plain: &str| {
        if bound {
            current.seal_text_bound(plain, aad)
        } else {
            current.seal_text(plain)
        }
    };
    if let Ok(plain) = old.open_text_bound(stored, aad) {
        return Ok(Outcome::Reseal(seal(&plain)?));
    }
    match current.open_text_bound(stored, aad) {
        Ok(plain) if bound && stored.starts_with("v1:") => Ok(Outcome::Reseal(seal(&plain)?)),
        Ok(_) => Ok(Outcome::Current),
        Err(_) => Ok(Outcome::Unreadable),
    }
}

/// Re-encrypts everything sealed under `old` with `current`.
pub async fn reencrypt_all(
    db: &impl ConnectionTrait,
    old: &SecretCipher,
    current: &SecretCipher,
) -> anyhow::Result<Report> {
    let mut report = Report::default();
    for endpoint in store::sealed::endpoints(db).await? {
        let aad = endpoint_secret_aad(&endpoint.id);
        let columns = [
            (false, Some(endpoint.secret_ciphertext.as_str())),
            (true, endpoint.previous_secret_ciphertext.as_deref()),
        ];
        for (previous, stored) in columns {
            let Some(stored) = stored else { continue };
            match plan(stored, old, current, &aad, true)? {
                Outcome::Reseal(new) => {
                    let swapped = store::sealed::replace_endpoint_secret(
                        db,
                        &endpoint.id,
                        previous,
                        stored,
                        &new,
                    )
                    .await?;
                    report.resealed(swapped);
                }
                Outcome::Current => report.already_current += 1,
                Outcome::Unreadable => report
                    .unreadable
                    .push(format!("webhook_endpoints {}", endpoint.id)),
            }
        }
    }
    for row in store::sealed::sealed_idempotency(db).await? {
        let aad = idempotency_body_aad(
            &row.merchant_id,
            row.mode.0.as_str(),
            &row.operation,
            &row.key,
        );
        // Unbound (`v1:`) answers stay unbound: the code that reads them may not bind yet.
        let bound = row.response_body.starts_with("v2:");
        match plan(&row.response_body, old, current, &aad, bound)? {
            Outcome::Reseal(new) => {
                let swapped =
                    store::sealed::replace_idempotency_body(db, row.id, &row.response_body, &new)
                        .await?;
                report.resealed(swapped);
            }
            Outcome::Current => report.already_current += 1,
            Outcome::Unreadable => report
                .unreadable
                .push(format!("idempotency_keys {}", row.id)),
        }
    }
    for (user_id, stored) in store::sealed::totp_secrets(db).await? {
        match plan(&stored, old, current, &totp_secret_aad(&user_id), true)? {
            Outcome::Reseal(new) => {
                let swapped =
                    store::sealed::replace_totp_secret(db, &user_id, &stored, &new).await?;
                report.resealed(swapped);
            }
            Outcome::Current => report.already_current += 1,
            Outcome::Unreadable => report.unreadable.push(format!("dashboard_users {user_id}")),
        }
    }
    Ok(report)
}
