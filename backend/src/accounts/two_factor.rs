//! Two-factor sign-in: TOTP (RFC 6238: HMAC-SHA-1, 6 digits, 30-second steps, one step
//! of clock skew either way) and single-use recovery codes.
//!
//! - The secret (160 random bits) is stored sealed by the encryption key
//!   ([`SecretCipher::seal_text_bound`]) and bound to its user's id
//!   ([`totp_secret_aad`]), so a copied row opens for no other user; `admin reencrypt`
//!   moves it to a new key with the other sealed values. It is stored when the enrolment page is first shown, and switched
//!   on only by a current code of it (and the password).
//! - A code is accepted once: the user's last accepted time step is remembered, and only a
//!   later step is accepted (a conditional update, so of two requests with the same code
//!   one wins).
//! - Ten recovery codes are shown once, when the factor is switched on or the codes are
//!   renewed; only their keyed hashes ([`recovery_code_hmac`]) are stored, and each one is
//!   spent by a conditional update.
//! - Between the password and the code, the browser holds a challenge's token in a cookie
//!   ([`CHALLENGE_COOKIE`]); the database keeps its SHA-256 for [`CHALLENGE_TTL`]. It opens
//!   the second step's form only. Wrong codes count in the login lockout, like wrong
//!   passwords.
//! - An owner can require a second factor of the whole team; a member without one gets a
//!   session that opens the enrolment page only ([`SignedIn::must_enrol`]). An owner
//!   requires it only once their own account has it, and nobody turns it off while it is
//!   required. If a member turns theirs off while an owner requires it at the same moment,
//!   the member's next page is the enrolment page: the requirement is checked on every
//!   request, not only at sign-in.
//!
//! [`recovery_code_hmac`]: crate::crypto::recovery_code_hmac
use std::time::Duration;

use base64::Engine;
use time::OffsetDateTime;
use totp_rs::{Algorithm, TOTP};

use super::{
    check_own_password, login_attempt, open_session, record, record_failure, session_id,
    AccountError, NewSession, SignedIn,
};
use crate::{
    activity::Action as Activity,
    crypto::{random_bytes, recovery_code_hmac, secrets_equal},
    ids::new_id,
    secret::Secret,
    state::AppState,
    store::{
        self,
        entities::{dashboard_challenge, dashboard_recovery_code, dashboard_user::Model as User},
    },
    webhooks::secrets::{totp_secret_aad, SecretCipher},
};

/// The cookie holding the challenge's token between the password and the code.
pub const CHALLENGE_COOKIE: &str = "sp_2fa";
/// How long the second step may wait for its code.
pub const CHALLENGE_TTL: Duration = Duration::from_secs(5 * 60);
/// How many recovery codes a user gets at once.
pub const RECOVERY_CODES: usize = 10;
/// The name authenticator apps show above the account.
pub const ISSUER: &str = "SuperPayment";
const STEP_SECONDS: u64 = 30;
const DIGITS: usize = 6;
/// Steps accepted either side of the server's (clock skew, a code typed at a step's end).
const SKEW_STEPS: u64 = 1;

/// What the enrolment page shows: the secret in the forms an authenticator app takes.
pub struct Enrolment {
    /// Base32, for typing into an app.
    pub secret: Secret<String>,
    /// `otpauth://totp/...`, what the QR code holds.
    pub url: Secret<String>,
    /// The QR code of `url`, as an SVG image in a `data:` URL.
    pub qr_data_url: Secret<String>,
}

/// Which second factor a sign-in or a confirmation used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Factor {
    Totp,
    /// A recovery code (now spent).
    Recovery,
}

fn cipher(state: &AppState) -> &SecretCipher {
    &state.webhooks.cipher
}

/// The authenticator of `user` for the sealed secret `sealed`.
fn authenticator(state: &AppState, user: &User, sealed: &str) -> anyhow::Result<TOTP> {
    let base32 = Secret::new(
        cipher(state)
            .open_text_bound(sealed, &totp_secret_aad(&user.id))
            .map_err(|_| anyhow::anyhow!("a stored TOTP secret does not open"))?,
    );
    let bytes = totp_rs::Secret::Encoded(base32.expose().clone())
        .to_bytes()
        .map_err(|e| anyhow::anyhow!("a stored TOTP secret is malformed: {e:?}"))?;
    TOTP::new(
        Algorithm::SHA1,
        DIGITS,
        0,
        STEP_SECONDS,
        bytes,
        Some(ISSUER.to_owned()),
        user.email.clone(),
    )
    .map_err(|e| anyhow::anyhow!("TOTP parameters: {e}"))
}

/// The time step of `code` within the skew around `now` (Unix seconds), if it is one of
/// the authenticator's.
fn matching_step(totp: &TOTP, code: &str, now: u64) -> Option<i64> {
    if code.len() != DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let current = now / STEP_SECONDS;
    (current.saturating_sub(SKEW_STEPS)..=current + SKEW_STEPS)
        .find(|step| secrets_equal(&totp.generate(step * STEP_SECONDS), code))
        .and_then(|step| i64::try_from(step).ok())
}

fn unix_now() -> u64 {
    u64::try_from(OffsetDateTime::now_utc().unix_timestamp()).unwrap_or(0)
}

/// What was typed, without the spaces and dashes people copy along, lower-cased.
fn normalized(code: &str) -> String {
    code.chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .flat_map(char::to_lowercase)
        .collect()
}

/// A recovery code as typed and shown: ten lower-case hex digits in two groups.
fn is_recovery_code_shape(code: &str) -> bool {
    code.len() == 10 && code.bytes().all(|b| b.is_ascii_hexdigit())
}

/// New recovery codes: 40 random bits each, shown as `xxxxx-xxxxx`.
fn new_recovery_codes() -> Vec<Secret<String>> {
    (0..RECOVERY_CODES)
        .map(|_| {
            let hex = hex::encode(random_bytes::<5>());
            Secret::new(format!("{}-{}", &hex[..5], &hex[5..]))
        })
        .collect()
}

/// Replaces `user`'s recovery codes with new ones, in `db`'s transaction; returns them
/// (the only time they exist in clear).
async fn replace_recovery_codes(
    db: &impl sea_orm::ConnectionTrait,
    state: &AppState,
    user: &User,
) -> Result<Vec<Secret<String>>, AccountError> {
    let codes = new_recovery_codes();
    let now = OffsetDateTime::now_utc();
    store::accounts::delete_recovery_codes(db, &user.id).await?;
    store::accounts::insert_recovery_codes(
        db,
        codes
            .iter()
            .map(|c| dashboard_recovery_code::Model {
                id: new_id("rcv"),
                user_id: user.id.clone(),
                code_hash: recovery_code_hmac(&state.pepper, &user.id, &normalized(c.expose())),
                created_at: now,
                used_at: None,
            })
            .collect(),
    )
    .await?;
    Ok(codes)
}

/// Checks a second factor of `user` (second factor on): a current TOTP code not accepted
/// before, or an unused recovery code, which is spent. None: neither.
async fn check_factor(
    state: &AppState,
    user: &User,
    typed: &str,
) -> Result<Option<Factor>, AccountError> {
    let (Some(sealed), Some(_)) = (&user.totp_secret, user.totp_enabled_at) else {
        return Ok(None);
    };
    let code = normalized(typed);
    if is_recovery_code_shape(&code) {
        let hash = recovery_code_hmac(&state.pepper, &user.id, &code);
        let spent = store::accounts::use_recovery_code(
            &state.db,
            &user.id,
            &hash,
            OffsetDateTime::now_utc(),
        )
        .await?;
        return Ok(spent.then_some(Factor::Recovery));
    }
    let totp = authenticator(state, user, sealed)?;
    let Some(step) = matching_step(&totp, &code, unix_now()) else {
        return Ok(None);
    };
    if store::accounts::accept_totp_step(&state.db, &user.id, step).await? {
        Ok(Some(Factor::Totp))
    } else {
        tracing::warn!(user_id = %user.id, "a TOTP code was offered again");
        Ok(None)
    }
}

/// Opens the challenge of a user whose password was right; returns its token (for the
/// cookie, once).
pub(crate) async fn open_challenge(
    state: &AppState,
    user: &User,
) -> Result<Secret<String>, AccountError> {
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random_bytes::<32>());
    let now = OffsetDateTime::now_utc();
    store::accounts::purge_expired_challenges(&state.db, now).await?;
    store::accounts::insert_challenge(
        &state.db,
        dashboard_challenge::Model {
            id: session_id(&token),
            user_id: user.id.clone(),
            merchant_id: user.merchant_id.clone(),
            created_at: now,
            expires_at: now + CHALLENGE_TTL,
        },
    )
    .await?;
    Ok(Secret::new(token))
}

/// Whether `token` is a live challenge (the second step's form may be shown); with the
/// CSRF token its form carries.
pub async fn challenge_csrf(state: &AppState, token: &str) -> Result<Option<String>, AccountError> {
    let live =
        store::accounts::find_challenge(&state.db, &session_id(token), OffsetDateTime::now_utc())
            .await?;
    Ok(live.map(|_| super::csrf_of(token)))
}

/// Finishes a sign-in: the challenge's `token` (from the cookie) and a code. Wrong codes
/// count in the login lockout and are logged on the account's merchant.
#[tracing::instrument(skip_all)]
pub async fn login_second_factor(
    state: &AppState,
    client: &str,
    token: &str,
    code: &str,
) -> Result<NewSession, AccountError> {
    let id = session_id(token);
    let now = OffsetDateTime::now_utc();
    let Some((_, user)) = store::accounts::find_challenge(&state.db, &id, now).await? else {
        return Err(AccountError::ChallengeExpired);
    };
    if user.disabled {
        return Err(AccountError::ChallengeExpired);
    }
    let attempt = login_attempt(state, client, &user.email);
    if let Some(retry_after) = attempt.refused_for(&state.coord).await {
        record(state, &user, Activity::LoginLockedOut).await?;
        return Err(AccountError::LockedOut { retry_after });
    }
    let Some(factor) = check_factor(state, &user, code).await? else {
        attempt.failed(&state.coord, None).await;
        record_failure(state, &user, client, "wrong two-factor code").await?;
        tracing::info!(user_id = %user.id, "back-office second factor refused");
        return Err(AccountError::WrongCode);
    };
    if !store::accounts::take_challenge(&state.db, &id).await? {
        return Err(AccountError::ChallengeExpired);
    }
    if factor == Factor::Recovery {
        record_recovery_use(state, &user).await?;
    }
    open_session(state, user).await
}

async fn record_recovery_use(state: &AppState, user: &User) -> Result<(), AccountError> {
    let left = store::accounts::recovery_codes_left(&state.db, &user.id).await?;
    crate::activity::record(
        &state.db,
        &user.merchant_id,
        None,
        &user.id,
        Activity::RecoveryCodeUsed,
        None,
        Some(format!("{left} left")),
    )
    .await?;
    Ok(())
}

/// The user as stored now (the session's copy may predate a change).
async fn current_user(state: &AppState, s: &SignedIn) -> Result<User, AccountError> {
    store::accounts::find_user(&state.db, &s.user.merchant_id, &s.user.id)
        .await?
        .ok_or(AccountError::UserNotFound)
}

/// The secret an enrolment offers: the pending one, or a new one stored now.
#[tracing::instrument(skip_all, fields(user_id = %s.user.id))]
pub async fn start_enrolment(state: &AppState, s: &SignedIn) -> Result<Enrolment, AccountError> {
    let mut user = current_user(state, s).await?;
    if user.totp_enabled_at.is_some() {
        return Err(AccountError::TwoFactorOn);
    }
    if user.totp_secret.is_none() {
        let raw = random_bytes::<20>().to_vec();
        let base32 = Secret::new(totp_rs::Secret::Raw(raw).to_encoded().to_string());
        let sealed = cipher(state).seal_text_bound(base32.expose(), &totp_secret_aad(&user.id))?;
        // Two pages opened at once: the first secret stays, both show it.
        store::accounts::offer_totp_secret(&state.db, &user.id, &sealed).await?;
        user = current_user(state, s).await?;
    }
    let sealed = user
        .totp_secret
        .as_deref()
        .ok_or_else(|| anyhow::anyhow!("the pending TOTP secret vanished"))?;
    let totp = authenticator(state, &user, sealed)?;
    let url = Secret::new(totp.get_url());
    let svg = qrcode::QrCode::new(url.expose().as_bytes())
        .map_err(|e| anyhow::anyhow!("QR code: {e}"))?
        .render::<qrcode::render::svg::Color>()
        .min_dimensions(200, 200)
        .build();
    let qr_data_url = Secret::new(format!(
        "data:image/svg+xml;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(svg)
    ));
    Ok(Enrolment {
        secret: Secret::new(totp.get_secret_base32()),
        url,
        qr_data_url,
    })
}

/// Switches the second factor on: the password and a current code of the pending secret.
/// Returns the recovery codes, to be shown once.
#[tracing::instrument(skip_all, fields(user_id = %s.user.id))]
pub async fn enable(
    state: &AppState,
    s: &SignedIn,
    client: &str,
    password: &str,
    code: &str,
) -> Result<Vec<Secret<String>>, AccountError> {
    check_own_password(&s.user, password).await?;
    let user = current_user(state, s).await?;
    if user.totp_enabled_at.is_some() {
        return Err(AccountError::TwoFactorOn);
    }
    let Some(sealed) = user.totp_secret.clone() else {
        return Err(AccountError::TwoFactorOff);
    };
    let attempt = login_attempt(state, client, &user.email);
    if let Some(retry_after) = attempt.refused_for(&state.coord).await {
        return Err(AccountError::LockedOut { retry_after });
    }
    let totp = authenticator(state, &user, &sealed)?;
    let Some(step) = matching_step(&totp, &normalized(code), unix_now()) else {
        attempt.failed(&state.coord, None).await;
        return Err(AccountError::WrongCode);
    };
    let tx = store::begin(&state.db).await?;
    let now = OffsetDateTime::now_utc();
    if !store::accounts::enable_totp(&tx, &user.id, &sealed, step, now).await? {
        return Err(AccountError::TwoFactorOn);
    }
    let codes = replace_recovery_codes(&tx, state, &user).await?;
    crate::activity::record(
        &tx,
        &user.merchant_id,
        None,
        &user.id,
        Activity::TwoFactorEnabled,
        None,
        None,
    )
    .await?;
    tx.commit().await?;
    tracing::info!(user_id = %user.id, "back-office two-factor sign-in on");
    Ok(codes)
}

/// Checks the password and a second factor of a signed-in user confirming a change of
/// the factor itself; wrong codes count in the login lockout.
async fn confirm(
    state: &AppState,
    s: &SignedIn,
    client: &str,
    password: &str,
    code: &str,
) -> Result<User, AccountError> {
    check_own_password(&s.user, password).await?;
    let user = current_user(state, s).await?;
    if user.totp_enabled_at.is_none() {
        return Err(AccountError::TwoFactorOff);
    }
    let attempt = login_attempt(state, client, &user.email);
    if let Some(retry_after) = attempt.refused_for(&state.coord).await {
        return Err(AccountError::LockedOut { retry_after });
    }
    match check_factor(state, &user, code).await? {
        Some(Factor::Totp) => Ok(user),
        Some(Factor::Recovery) => {
            record_recovery_use(state, &user).await?;
            Ok(user)
        }
        None => {
            attempt.failed(&state.coord, None).await;
            Err(AccountError::WrongCode)
        }
    }
}

/// Switches the second factor off (password and a code); refused while the team
/// requires it.
#[tracing::instrument(skip_all, fields(user_id = %s.user.id))]
pub async fn disable(
    state: &AppState,
    s: &SignedIn,
    client: &str,
    password: &str,
    code: &str,
) -> Result<(), AccountError> {
    if store::accounts::team_requires_two_factor(&state.db, &s.user.merchant_id).await? {
        return Err(AccountError::TeamRequiresTwoFactor);
    }
    let user = confirm(state, s, client, password, code).await?;
    let tx = store::begin(&state.db).await?;
    store::accounts::disable_totp(&tx, &user.id).await?;
    crate::activity::record(
        &tx,
        &user.merchant_id,
        None,
        &user.id,
        Activity::TwoFactorDisabled,
        None,
        None,
    )
    .await?;
    tx.commit().await?;
    tracing::info!(user_id = %user.id, "back-office two-factor sign-in off");
    Ok(())
}

/// Replaces the recovery codes (password and a code); the old ones stop working.
#[tracing::instrument(skip_all, fields(user_id = %s.user.id))]
pub async fn regenerate_recovery_codes(
    state: &AppState,
    s: &SignedIn,
    client: &str,
    password: &str,
    code: &str,
) -> Result<Vec<Secret<String>>, AccountError> {
    let user = confirm(state, s, client, password, code).await?;
    let tx = store::begin(&state.db).await?;
    let codes = replace_recovery_codes(&tx, state, &user).await?;
    crate::activity::record(
        &tx,
        &user.merchant_id,
        None,
        &user.id,
        Activity::RecoveryCodesRegenerated,
        None,
        None,
    )
    .await?;
    tx.commit().await?;
    tracing::info!(user_id = %user.id, "back-office recovery codes renewed");
    Ok(codes)
}

/// How many unused recovery codes the user has.
pub async fn recovery_codes_left(state: &AppState, s: &SignedIn) -> Result<u64, AccountError> {
    Ok(store::accounts::recovery_codes_left(&state.db, &s.user.id).await?)
}

/// Whether the team requires a second factor of every member.
pub async fn team_requires(state: &AppState, merchant_id: &str) -> Result<bool, AccountError> {
    Ok(store::accounts::team_requires_two_factor(&state.db, merchant_id).await?)
}

/// Requires (or stops requiring) a second factor of every member of the caller's team.
/// The caller's role must allow [`super::Action::ManageTeam`]; requiring it takes the
/// caller's own second factor first, so no owner locks themselves out.
#[tracing::instrument(skip_all, fields(user_id = %s.user.id))]
pub async fn set_team_requirement(
    state: &AppState,
    s: &SignedIn,
    required: bool,
) -> Result<(), AccountError> {
    let user = current_user(state, s).await?;
    if required && user.totp_enabled_at.is_none() {
        return Err(AccountError::EnrolFirst);
    }
    if store::accounts::team_requires_two_factor(&state.db, &user.merchant_id).await? == required {
        return Ok(());
    }
    let tx = store::begin(&state.db).await?;
    store::accounts::set_team_requires_two_factor(&tx, &user.merchant_id, required).await?;
    crate::activity::record(
        &tx,
        &user.merchant_id,
        None,
        &user.id,
        Activity::TeamTwoFactorRequirement,
        None,
        Some(if required { "required" } else { "optional" }.to_owned()),
    )
    .await?;
    tx.commit().await?;
    tracing::info!(merchant_id = %user.merchant_id, required, "team two-factor requirement changed");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn totp() -> TOTP {
        TOTP::new(
            Algorithm::SHA1,
            DIGITS,
            0,
            STEP_SECONDS,
            b"12345678901234567890".to_vec(),
            Some(ISSUER.to_owned()),
            "owner@shop.example".to_owned(),
        )
        .unwrap()
    }

    #[test]
    fn the_rfc_6238_vector_matches_within_one_step_either_way() {
        // RFC 6238, appendix B: SHA-1 at T = 59 s is 94287082 (8 digits); 6 digits: 287082.
        let t = totp();
        assert_eq!(t.generate(59), "287082");
        assert_eq!(matching_step(&t, "287082", 59), Some(1));
        assert_eq!(matching_step(&t, "287082", 59 + 30), Some(1));
        assert_eq!(matching_step(&t, "287082", 59 - 30), Some(1));
        assert_eq!(matching_step(&t, "287082", 59 + 60), None);
        assert_eq!(matching_step(&t, "28708", 59), None);
        assert_eq!(matching_step(&t, "28708a", 59), None);
    }

    #[test]
    fn recovery_codes_are_ten_distinct_and_read_back_however_typed() {
        let codes = new_recovery_codes();
        assert_eq!(codes.len(), RECOVERY_CODES);
        let set: std::collections::HashSet<_> = codes.iter().map(|c| c.expose().clone()).collect();
        assert_eq!(set.len(), RECOVERY_CODES);
        for c in &codes {
            let typed = format!(" {} ", c.expose().to_uppercase());
            assert!(is_recovery_code_shape(&normalized(&typed)));
            assert_eq!(normalized(&typed), c.expose().replace('-', ""));
        }
    }
}
