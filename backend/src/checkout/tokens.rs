//! Remembered vouchers: tokens a returning shopper pays with in one click.
//!
//! A token (`vt_` + 160 random bits) stands for one voucher at one merchant and mode. The
//! server keeps only its SHA-256, so a database leak yields nothing usable; the shopper's
//! browser keeps the token in the checkout iframe's own storage, never in the shop's page.
//! Tokens only pay (they never reveal the code), expire after [`TOKEN_TTL`] and are
//! revoked from the widget ("forget") or by an operator for every token of a voucher.
use std::{collections::HashMap, str::FromStr};

use superpayment_core::{crockford_encode, Currency, FieldError, Money, VoucherCode, VoucherRef};
use time::OffsetDateTime;

use super::CheckoutError;
use crate::store::entities::text::AsText;
use crate::{
    auth::Caller,
    crypto::{random_bytes, sha256_hex, voucher_hmac},
    payments::{rules::refusal, DeclineReason, PaymentReceipt},
    secret::Secret,
    state::AppState,
    store::{
        self,
        entities::{remembered_voucher, voucher::VoucherState},
    },
};

/// How long a remembered voucher stays usable.
pub const TOKEN_TTL: time::Duration = time::Duration::days(90);

/// The most tokens one lookup or revocation may name.
pub const MAX_TOKENS_PER_CALL: usize = 10;

/// A token just issued, returned once to the widget that asked for it.
#[derive(Debug, Clone)]
pub struct RememberedVoucher {
    /// `vt_...`: shown this once, stored only as a hash.
    pub token: Secret<String>,
    /// Last four symbols of the voucher code.
    pub last4: String,
    /// The voucher's balance after the payment.
    pub balance: Money,
    /// When the token stops working.
    pub expires_at: OffsetDateTime,
}

/// What the widget may show about a remembered voucher.
#[derive(Debug, Clone)]
pub struct TokenStatus {
    /// Whether the voucher can pay at this shop now.
    pub valid: bool,
    /// When not valid: the decline code a payment would get.
    pub reason: Option<&'static str>,
    /// Last four symbols (absent for an unknown, revoked or expired token).
    pub last4: Option<String>,
    /// Current balance (absent for an unknown, revoked or expired token).
    pub balance: Option<Money>,
    /// When the token expires.
    pub expires_at: Option<OffsetDateTime>,
}

fn new_token() -> String {
    format!(
        "vt_{}",
        crockford_encode(&random_bytes::<20>(), 32).to_ascii_lowercase()
    )
}

fn token_param(index: usize) -> Option<String> {
    Some(format!("vouchers[{index}].token"))
}

/// A voucher of a request as the server keys it: a typed code as its HMAC(pepper)
/// ([`voucher_hmac`]), a remembered-voucher token as its SHA-256 (the form stored). A
/// payment derives them once ([`keyed`]) for its lockout, its fingerprint, its lookup and
/// what it remembers afterwards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Keyed {
    Code(String),
    Token(String),
}

impl Keyed {
    /// The hex digest, whichever kind it is.
    pub fn digest(&self) -> &str {
        match self {
            Keyed::Code(hmac) | Keyed::Token(hmac) => hmac,
        }
    }
}

/// Every voucher reference of a request, keyed, in request order.
pub fn keyed(state: &AppState, vouchers: &[VoucherRef]) -> Vec<Keyed> {
    vouchers
        .iter()
        .map(|v| match v {
            VoucherRef::Code(code) => Keyed::Code(voucher_hmac(&state.pepper, code)),
            VoucherRef::Token(t) => Keyed::Token(sha256_hex(t)),
        })
        .collect()
}

/// The token hashes among keyed references.
fn token_hashes(vouchers: &[Keyed]) -> Vec<String> {
    vouchers
        .iter()
        .filter_map(|v| match v {
            Keyed::Token(hash) => Some(hash.clone()),
            Keyed::Code(_) => None,
        })
        .collect()
}

/// The HMAC of every voucher of a payment, in request order: codes are already their
/// HMACs, tokens are resolved to the voucher they stand for. A token that is unknown,
/// revoked, expired or from another merchant or mode declines the payment with
/// `voucher_token_invalid`.
pub async fn voucher_hmacs(
    db: &impl sea_orm::ConnectionTrait,
    caller: &Caller,
    vouchers: &[Keyed],
) -> Result<Vec<String>, CheckoutError> {
    let hashes = token_hashes(vouchers);
    let mut by_hash: HashMap<String, String> = HashMap::new();
    if !hashes.is_empty() {
        let now = OffsetDateTime::now_utc();
        let rows = store::checkout::usable_tokens(
            db,
            &hashes,
            &caller.merchant_id,
            caller.mode_str(),
            now,
        )
        .await?;
        let ids: Vec<i64> = rows.iter().map(|r| r.voucher_id).collect();
        let vouchers = store::vouchers::find_by_ids(db, &ids).await?;
        for row in rows {
            if let Some(v) = vouchers.iter().find(|v| v.id == row.voucher_id) {
                by_hash.insert(row.token_hash, v.code_hmac.clone());
            }
        }
    }
    let mut out: Vec<String> = Vec::with_capacity(vouchers.len());
    for (i, v) in vouchers.iter().enumerate() {
        let hmac = match v {
            Keyed::Code(hmac) => hmac.clone(),
            Keyed::Token(hash) => match by_hash.get(hash) {
                Some(hmac) => hmac.clone(),
                None => {
                    return Err(CheckoutError::TokenInvalid {
                        param: token_param(i),
                    })
                }
            },
        };
        // A code typed while the same voucher is also remembered would pay twice from it.
        if out.contains(&hmac) {
            return Err(CheckoutError::DuplicateVoucher {
                param: format!("vouchers[{i}]"),
            });
        }
        out.push(hmac);
    }
    Ok(out)
}

/// After a successful payment: records which tokens paid, and when the shopper asked to be
/// remembered, issues a token for each voucher typed as a code that still has a balance.
#[tracing::instrument(skip_all, fields(merchant_id = %caller.merchant_id, transaction_id = %receipt.id))]
pub async fn after_payment(
    state: &AppState,
    caller: &Caller,
    vouchers: &[Keyed],
    receipt: &PaymentReceipt,
    remember: bool,
) -> Result<Vec<RememberedVoucher>, CheckoutError> {
    let now = OffsetDateTime::now_utc();
    let token_hashes = token_hashes(vouchers);
    if !token_hashes.is_empty() {
        let used = store::checkout::usable_tokens(
            &state.db,
            &token_hashes,
            &caller.merchant_id,
            caller.mode_str(),
            now,
        )
        .await?;
        let ids: Vec<i64> = used.iter().map(|r| r.id).collect();
        store::checkout::touch_tokens(&state.db, &ids, now).await?;
    }
    if !remember {
        return Ok(Vec::new());
    }
    let typed: Vec<&str> = vouchers
        .iter()
        .filter_map(|v| match v {
            Keyed::Code(hmac) => Some(hmac.as_str()),
            Keyed::Token(_) => None,
        })
        .collect();
    let currency = Currency::from_str(&receipt.currency)
        .map_err(|_| anyhow::anyhow!("receipt currency {} unknown", receipt.currency))?;
    let redemptions = store::payments::redemptions_of(&state.db, &receipt.id).await?;
    let ids: Vec<i64> = redemptions.iter().map(|r| r.voucher_id).collect();
    let rows = store::vouchers::find_by_ids(&state.db, &ids).await?;
    let mut issued = Vec::new();
    for r in redemptions.iter().filter(|r| r.balance_after_minor > 0) {
        let Some(v) = rows.iter().find(|v| v.id == r.voucher_id) else {
            continue;
        };
        if !typed.contains(&v.code_hmac.as_str()) || v.status != VoucherState::Active {
            continue;
        }
        let token = new_token();
        let expires_at = now + TOKEN_TTL;
        store::checkout::insert_token(
            &state.db,
            remembered_voucher::Model {
                id: 0,
                token_hash: sha256_hex(&token),
                voucher_id: v.id,
                merchant_id: caller.merchant_id.clone(),
                mode: AsText(caller.mode),
                last4: v.last4.clone(),
                created_at: now,
                expires_at,
                revoked_at: None,
                last_used_at: None,
            },
        )
        .await?;
        issued.push(RememberedVoucher {
            token: Secret::new(token),
            last4: v.last4.clone(),
            balance: Money::from_minor(r.balance_after_minor, currency)
                .map_err(|e| anyhow::anyhow!("stored balance: {e}"))?,
            expires_at,
        });
    }
    tracing::info!(tokens = issued.len(), "vouchers remembered");
    Ok(issued)
}

/// Well-formed tokens only (`vt_` and at most 128 letters, digits or `_`); anything else is
/// reported against its index.
pub(super) fn parse_tokens(tokens: &[String]) -> Result<Vec<String>, CheckoutError> {
    if tokens.is_empty() || tokens.len() > MAX_TOKENS_PER_CALL {
        return Err(CheckoutError::Invalid(vec![FieldError::new(
            "tokens",
            "invalid_token_count",
            format!("Send 1 to {MAX_TOKENS_PER_CALL} tokens."),
        )]));
    }
    let mut errors = Vec::new();
    for (i, t) in tokens.iter().enumerate() {
        let ok = t.starts_with("vt_")
            && (8..=128).contains(&t.len())
            && t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !ok {
            errors.push(FieldError::new(
                format!("tokens[{i}]"),
                "invalid_voucher_token",
                "The voucher token is not valid.",
            ));
        }
    }
    if errors.is_empty() {
        Ok(tokens.to_vec())
    } else {
        Err(CheckoutError::Invalid(errors))
    }
}

/// Balance and validity of remembered vouchers, in the order asked. Revoked, expired,
/// unknown and foreign tokens all get the same answer: `voucher_token_invalid`. Read
/// from the primary: the widget offers a token right after the payment that saved it,
/// and a lagging replica would call it invalid.
#[tracing::instrument(skip_all, fields(merchant_id = %caller.merchant_id, tokens = tokens.len()))]
pub async fn lookup(
    state: &AppState,
    caller: &Caller,
    tokens: &[String],
) -> Result<Vec<TokenStatus>, CheckoutError> {
    let tokens = parse_tokens(tokens)?;
    let now = OffsetDateTime::now_utc();
    let hashes: Vec<String> = tokens.iter().map(|t| sha256_hex(t)).collect();
    let rows = store::checkout::usable_tokens(
        &state.db,
        &hashes,
        &caller.merchant_id,
        caller.mode_str(),
        now,
    )
    .await?;
    let ids: Vec<i64> = rows.iter().map(|r| r.voucher_id).collect();
    let vouchers = store::vouchers::find_by_ids(&state.db, &ids).await?;
    hashes
        .iter()
        .map(|hash| {
            let found = rows.iter().find(|r| &r.token_hash == hash).and_then(|r| {
                vouchers
                    .iter()
                    .find(|v| v.id == r.voucher_id)
                    .map(|v| (r, v))
            });
            let Some((token, v)) = found else {
                return Ok(TokenStatus {
                    valid: false,
                    reason: Some(DeclineReason::TokenInvalid.code()),
                    last4: None,
                    balance: None,
                    expires_at: None,
                });
            };
            let currency = v.currency.0;
            let balance = Money::from_minor(v.balance_minor, currency)
                .map_err(|e| anyhow::anyhow!("stored balance: {e}"))?;
            let probe = Money::from_minor(1, currency).map_err(|e| anyhow::anyhow!(e))?;
            let mut reason = refusal(
                Some(&v.into()),
                &caller.merchant_id,
                caller.mode,
                probe,
                now,
            )
            .filter(|r| *r != DeclineReason::MinimumOrderNotMet)
            .map(DeclineReason::code);
            if reason.is_none() && balance.is_zero() {
                reason = Some(DeclineReason::InsufficientBalance.code());
            }
            Ok(TokenStatus {
                valid: reason.is_none(),
                reason,
                last4: Some(token.last4.clone()),
                balance: Some(balance),
                expires_at: Some(token.expires_at),
            })
        })
        .collect()
}

/// Revokes tokens held by the shopper ("forget this voucher"); returns how many were live.
#[tracing::instrument(skip_all, fields(merchant_id = %caller.merchant_id, tokens = tokens.len()))]
pub async fn revoke(
    state: &AppState,
    caller: &Caller,
    tokens: &[String],
) -> Result<u64, CheckoutError> {
    let tokens = parse_tokens(tokens)?;
    let hashes: Vec<String> = tokens.iter().map(|t| sha256_hex(t)).collect();
    let n = store::checkout::revoke_by_hashes(
        &state.db,
        &hashes,
        &caller.merchant_id,
        caller.mode_str(),
        OffsetDateTime::now_utc(),
    )
    .await?;
    tracing::info!(revoked = n, "remembered vouchers revoked by the shopper");
    Ok(n)
}

/// Revokes every token of the voucher with this code (operator action, e.g. a reported
/// theft); returns how many were live.
pub async fn revoke_for_code(
    db: &sea_orm::DatabaseConnection,
    pepper: &Secret<String>,
    code: &VoucherCode,
) -> Result<u64, CheckoutError> {
    let voucher = store::vouchers::find_by_hmac(db, &voucher_hmac(pepper, code))
        .await?
        .ok_or(CheckoutError::VoucherNotFound)?;
    let n = store::checkout::revoke_for_voucher(db, voucher.id, OffsetDateTime::now_utc()).await?;
    tracing::info!(
        voucher_id = voucher.id,
        revoked = n,
        "remembered vouchers revoked by an operator"
    );
    Ok(n)
}
