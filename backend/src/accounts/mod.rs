//! Back-office accounts: users and roles, passwords (argon2id), server-side sessions,
//! CSRF tokens, the login lockout, and emailed links (invitations, password resets:
//! [`links`]).
//!
//! A session's token (256 random bits) lives only in the browser's cookie; the database
//! keeps its SHA-256, so a leaked table opens no session. The CSRF token of a session is
//! derived from its token, so it needs no storage and dies with the session.
//!
//! A user with a second factor ([`two_factor`]) gets no session from the password alone:
//! the password opens a short-lived challenge, and the code (or a recovery code) turns it
//! into the session.
pub mod links;
pub mod roles;
pub mod two_factor;

use std::time::Duration;

use argon2::{
    password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString},
    Argon2,
};
use base64::Engine;
use superpayment_core::Mode;
use time::OffsetDateTime;

pub use roles::{Action, Role};

use crate::{
    activity::Action as Activity,
    crypto::{random_bytes, secrets_equal, sha256_hex},
    gateway::lockout::{Attempt, LockoutPolicy},
    ids::new_id,
    state::AppState,
    store::{
        self,
        entities::{dashboard_session, dashboard_user::Model as User, text::AsText},
    },
};

/// Shortest password accepted (NIST SP 800-63B asks for at least 8; a back-office that
/// refunds money asks for more).
pub const MIN_PASSWORD_LEN: usize = 12;
/// Longest password accepted (argon2 takes any length; this bounds the work per login).
pub const MAX_PASSWORD_LEN: usize = 256;
/// The session cookie's name.
pub const SESSION_COOKIE: &str = "sp_session";

/// Sessions, logins and emailed links, from the flags (`SESSION_*`, `LOGIN_LOCKOUT_*`,
/// `PUBLIC_URL`, `INVITATION_TTL`, `PASSWORD_RESET_*`).
#[derive(Clone, Debug)]
pub struct AccountSettings {
    /// Per client address (`threshold`) and per account (`key_threshold`).
    pub login_lockout: LockoutPolicy,
    /// A session unused this long ends.
    pub session_idle: Duration,
    /// A session ends this long after the login, used or not.
    pub session_max: Duration,
    /// Cookies carry `Secure` (PUBLIC_URL is https).
    pub secure_cookie: bool,
    /// Where emailed links point: PUBLIC_URL, else `http://BIND` (never a request's Host,
    /// which a client chooses).
    pub public_url: String,
    /// How long an invitation's link works (INVITATION_TTL).
    pub invitation_ttl: Duration,
    /// How long a password-reset link works (PASSWORD_RESET_TTL).
    pub reset_ttl: Duration,
    /// Password-reset requests per client address (`threshold`) and per email
    /// (`key_threshold`) (`PASSWORD_RESET_LIMIT_*`).
    pub reset_limit: LockoutPolicy,
}

impl AccountSettings {
    /// The defaults, for the OpenAPI document's state and unit tests.
    pub fn defaults() -> Self {
        Self {
            login_lockout: LockoutPolicy {
                threshold: 20,
                key_threshold: 5,
                window: Duration::from_secs(900),
                cooldown: Duration::from_secs(900),
            },
            session_idle: Duration::from_secs(12 * 3600),
            session_max: Duration::from_secs(7 * 24 * 3600),
            secure_cookie: false,
            public_url: "http://127.0.0.1:8080".into(),
            invitation_ttl: Duration::from_secs(72 * 3600),
            reset_ttl: Duration::from_secs(3600),
            reset_limit: LockoutPolicy {
                threshold: 10,
                key_threshold: 3,
                window: Duration::from_secs(3600),
                cooldown: Duration::from_secs(3600),
            },
        }
    }
}

/// Why an account action was refused.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// Not an email address.
    #[error("invalid email")]
    InvalidEmail,
    /// Shorter than [`MIN_PASSWORD_LEN`] or longer than [`MAX_PASSWORD_LEN`] characters.
    #[error("password must have {MIN_PASSWORD_LEN} to {MAX_PASSWORD_LEN} characters")]
    WeakPassword,
    /// Another account has this email.
    #[error("email already in use")]
    EmailTaken,
    /// No such merchant.
    #[error("unknown merchant")]
    UnknownMerchant,
    /// Unknown email, wrong password or disabled account: one answer for all three.
    #[error("wrong email or password")]
    InvalidCredentials,
    /// Too many failed logins from this address or for this account.
    #[error("too many failed logins")]
    LockedOut { retry_after: Duration },
    /// No such user in this merchant's team.
    #[error("user not found")]
    UserNotFound,
    /// An owner may not demote or disable their own account (the team keeps an owner).
    #[error("you cannot change your own role")]
    OwnAccount,
    /// An invitation with a role above the inviter's own.
    #[error("you cannot invite with a role above your own")]
    RoleAboveYours,
    /// No such pending invitation in this merchant's team.
    #[error("invitation not found")]
    InvitationNotFound,
    /// An emailed link that is unknown, expired, used or revoked: one answer for all.
    #[error("this link is not valid")]
    InvalidLink,
    /// Too many password-reset requests from this address or for this email.
    #[error("too many password-reset requests")]
    TooManyRequests { retry_after: Duration },
    /// Not a current code of the user's authenticator (nor an unused recovery code), or
    /// one already accepted.
    #[error("wrong code")]
    WrongCode,
    /// The state between the password and the second factor is gone (expired, or used).
    #[error("sign-in expired")]
    ChallengeExpired,
    /// Two-factor sign-in is already on for this account.
    #[error("two-factor sign-in is already on")]
    TwoFactorOn,
    /// Two-factor sign-in is off for this account.
    #[error("two-factor sign-in is off")]
    TwoFactorOff,
    /// The team requires two-factor sign-in: it cannot be turned off.
    #[error("the team requires two-factor sign-in")]
    TeamRequiresTwoFactor,
    /// An owner requiring two-factor sign-in of the team must have it first.
    #[error("turn on two-factor sign-in for your own account first")]
    EnrolFirst,
    /// Anything unexpected.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

crate::internal_on_db_error!(AccountError);

/// A lower-cased email address, checked once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    /// Trims and lower-cases; refuses what cannot be an address.
    pub fn parse(raw: &str) -> Result<Self, AccountError> {
        let e = raw.trim().to_lowercase();
        let valid = e.len() <= 254
            && !e.chars().any(|c| c.is_whitespace() || c.is_control())
            && matches!(e.split_once('@'), Some((local, domain))
                if !local.is_empty() && domain.contains('.') && !domain.contains('@')
                    && !domain.starts_with('.') && !domain.ends_with('.'));
        if valid {
            Ok(Self(e))
        } else {
            Err(AccountError::InvalidEmail)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn check_password(password: &str) -> Result<(), AccountError> {
    let n = password.chars().count();
    if (MIN_PASSWORD_LEN..=MAX_PASSWORD_LEN).contains(&n) {
        Ok(())
    } else {
        Err(AccountError::WeakPassword)
    }
}

/// The argon2id PHC string of a password (the crate's defaults: 19 MiB, 2 passes, the
/// OWASP minimum).
pub fn hash_password(password: &str) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("hashing a password: {e}"))
}

/// Whether `password` matches the stored PHC string.
pub fn verify_password(stored: &str, password: &str) -> bool {
    PasswordHash::new(stored)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

/// A random password for `create-user` and the demo seed: 20 base64url symbols (120 bits).
pub fn generate_password() -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random_bytes::<15>())
}

/// Creates a user of `merchant_id`.
#[tracing::instrument(skip_all, fields(merchant_id = %merchant_id, role = ?role))]
pub async fn create_user(
    db: &sea_orm::DatabaseConnection,
    merchant_id: &str,
    email: &str,
    role: Role,
    password: &str,
) -> Result<User, AccountError> {
    let email = Email::parse(email)?;
    check_password(password)?;
    if store::merchants::find_merchant(db, merchant_id)
        .await?
        .is_none()
    {
        return Err(AccountError::UnknownMerchant);
    }
    let now = OffsetDateTime::now_utc();
    let user = User {
        id: new_id("usr"),
        merchant_id: merchant_id.to_owned(),
        email: email.0,
        password_hash: hash_password(password)?,
        role,
        totp_secret: None,
        totp_enabled_at: None,
        totp_last_step: None,
        disabled: false,
        created_at: now,
        password_changed_at: now,
    };
    match store::accounts::insert_user(db, user.clone()).await {
        Ok(()) => Ok(user),
        Err(e) if store::violates(&e, store::Unique::DashboardEmail) => {
            Err(AccountError::EmailTaken)
        }
        Err(e) => Err(e.into()),
    }
}

/// A signed-in request: the session, its user and the mode it shows.
#[derive(Debug, Clone)]
pub struct SignedIn {
    /// The session's id (the hash of its token).
    pub session_id: String,
    pub user: User,
    pub mode: Mode,
    /// The token every form of this session must carry.
    pub csrf: String,
    /// The team requires a second factor and this user has none: the session opens the
    /// enrolment page (and logging out) only.
    pub must_enrol: bool,
}

impl SignedIn {
    /// Whether this user's role allows `action`.
    pub fn can(&self, action: Action) -> bool {
        self.user.role.can(action)
    }

    /// The user acting as its merchant in the session's mode, for the domain functions
    /// the merchant API also calls (refunds, keys, webhooks), which take a [`Caller`].
    ///
    /// [`Caller`]: crate::auth::Caller
    pub async fn as_caller(&self, state: &AppState) -> anyhow::Result<crate::auth::Caller> {
        let merchant = store::merchants::find_merchant(&state.db, &self.user.merchant_id)
            .await?
            .ok_or_else(|| anyhow::anyhow!("the session's merchant is gone"))?;
        Ok(crate::auth::Caller {
            key_id: self.user.id.clone(),
            merchant_id: merchant.id,
            mode: self.mode,
            kind: superpayment_core::KeyKind::Secret,
            commission_bps: u16::try_from(merchant.commission_bps)
                .map_err(|_| anyhow::anyhow!("stored commission out of range"))?,
            hold_period: time::Duration::seconds(merchant.hold_period_seconds),
        })
    }
}

/// A new session: the token goes in the cookie, once.
pub struct NewSession {
    pub token: crate::secret::Secret<String>,
    pub user: User,
}

/// What a correct password leads to.
pub enum LoginStep {
    /// Signed in.
    Session(NewSession),
    /// The user has a second factor: the challenge's token goes in a cookie, and
    /// [`two_factor::login_second_factor`] finishes the sign-in.
    SecondFactor(crate::secret::Secret<String>),
}

pub(crate) fn session_id(token: &str) -> String {
    sha256_hex(token)
}

/// The CSRF token of the session (or sign-in challenge) holding `token`.
pub(crate) fn csrf_of(token: &str) -> String {
    sha256_hex(&format!("csrf:{token}"))
}

/// Checks a form's CSRF token against the session's, in constant time.
pub fn csrf_matches(signed_in: &SignedIn, submitted: &str) -> bool {
    secrets_equal(&signed_in.csrf, submitted)
}

/// The lockout's attempt of a sign-in to the account typed as `email`: the password step
/// and the second factor count against the same counters.
pub(crate) fn login_attempt<'a>(state: &'a AppState, client: &str, email: &str) -> Attempt<'a> {
    // The lockout counts a hash of what was typed, valid address or not.
    let account = sha256_hex(&format!("login:{}", email.trim().to_lowercase()));
    Attempt::login(&state.accounts.login_lockout, client, &account)
}

/// Checks a password login, counting failures against the client and the account. A
/// failure on an existing account is written to its merchant's activity log (the answer
/// is the same whether the account exists or not).
#[tracing::instrument(skip_all)]
pub async fn login(
    state: &AppState,
    client: &str,
    email: &str,
    password: &str,
) -> Result<LoginStep, AccountError> {
    let typed = email.trim().to_lowercase();
    let attempt = login_attempt(state, client, &typed);
    if let Some(retry_after) = attempt.refused_for(&state.coord).await {
        // The owner sees in the log that someone keeps trying an account.
        if let Ok(e) = Email::parse(&typed) {
            if let Some(u) = store::accounts::find_user_by_email(&state.db, e.as_str()).await? {
                record(state, &u, Activity::LoginLockedOut).await?;
            }
        }
        return Err(AccountError::LockedOut { retry_after });
    }
    let user = match Email::parse(&typed) {
        Ok(e) => store::accounts::find_user_by_email(&state.db, e.as_str()).await?,
        Err(_) => None,
    };
    // An unknown email costs one hash too, so that timing does not tell accounts apart.
    let stored = user
        .as_ref()
        .map(|u| u.password_hash.clone())
        .unwrap_or_else(|| dummy_hash().to_owned());
    let password = password.to_owned();
    let matches = tokio::task::spawn_blocking(move || verify_password(&stored, &password))
        .await
        .map_err(|e| anyhow::anyhow!("password check: {e}"))?;
    let user = match user {
        Some(u) if matches && !u.disabled => u,
        other => {
            attempt.failed(&state.coord, None).await;
            if let Some(u) = other {
                let why = if matches {
                    "account disabled"
                } else {
                    "wrong password"
                };
                record_failure(state, &u, client, why).await?;
            }
            tracing::info!("back-office login refused");
            return Err(AccountError::InvalidCredentials);
        }
    };
    if user.totp_enabled_at.is_some() {
        let token = two_factor::open_challenge(state, &user).await?;
        tracing::info!(user_id = %user.id, "back-office password accepted; second factor asked");
        return Ok(LoginStep::SecondFactor(token));
    }
    open_session(state, user).await.map(LoginStep::Session)
}

/// A failed sign-in on `user`'s account, in its merchant's log: what failed and from
/// where, never what was typed.
pub(crate) async fn record_failure(
    state: &AppState,
    user: &User,
    client: &str,
    why: &str,
) -> Result<(), AccountError> {
    crate::activity::record(
        &state.db,
        &user.merchant_id,
        None,
        &user.id,
        Activity::LoginFailed,
        None,
        Some(format!("{why} (from {client})")),
    )
    .await?;
    Ok(())
}

/// Opens a session of `user` (every factor checked) and logs the login.
pub(crate) async fn open_session(state: &AppState, user: User) -> Result<NewSession, AccountError> {
    let new = start_session(&state.db, &state.accounts, user).await?;
    record(state, &new.user, Activity::Login).await?;
    tracing::info!(user_id = %new.user.id, merchant_id = %new.user.merchant_id, "back-office login");
    Ok(new)
}

/// A random token of 256 bits, base64url: a session's, or an emailed link's.
pub(crate) fn new_token() -> crate::secret::Secret<String> {
    crate::secret::Secret::new(
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random_bytes::<32>()),
    )
}

/// Opens a session of `user` (in `db`'s transaction, when it is one), showing test data.
pub(crate) async fn start_session(
    db: &impl sea_orm::ConnectionTrait,
    settings: &AccountSettings,
    user: User,
) -> Result<NewSession, AccountError> {
    let token = new_token();
    let now = OffsetDateTime::now_utc();
    store::accounts::insert_session(
        db,
        dashboard_session::Model {
            id: session_id(token.expose()),
            user_id: user.id.clone(),
            merchant_id: user.merchant_id.clone(),
            mode: AsText(Mode::Test),
            created_at: now,
            last_seen_at: now,
            expires_at: now + settings.session_idle,
            revoked_at: None,
        },
    )
    .await?;
    Ok(NewSession { token, user })
}

/// Appends an account event (of no mode) to the merchant's activity log.
pub(crate) async fn record(
    state: &AppState,
    user: &User,
    action: Activity,
) -> Result<(), AccountError> {
    crate::activity::record(
        &state.db,
        &user.merchant_id,
        None,
        &user.id,
        action,
        None,
        None,
    )
    .await?;
    Ok(())
}

/// A PHC string no password matches in practice, verified when the email is unknown.
fn dummy_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| hash_password(&generate_password()).expect("hashing a random password"))
}

/// The live session holding `token`: not revoked, not idle past its expiry, not older than
/// the maximum, not older than its user's last password change, user not disabled.
pub async fn authenticate(state: &AppState, token: &str) -> Result<Option<SignedIn>, AccountError> {
    let id = session_id(token);
    let Some((session, user)) = store::accounts::find_session(&state.db, &id).await? else {
        return Ok(None);
    };
    let now = OffsetDateTime::now_utc();
    let live = session.revoked_at.is_none()
        && session.expires_at > now
        && session.created_at + state.accounts.session_max > now
        && session.created_at >= user.password_changed_at
        && !user.disabled;
    if !live {
        return Ok(None);
    }
    let must_enrol = user.totp_enabled_at.is_none()
        && store::accounts::team_requires_two_factor(&state.db, &user.merchant_id).await?;
    // One write a minute at most per session keeps reads cheap.
    if now - session.last_seen_at > time::Duration::MINUTE {
        store::accounts::touch_session(&state.db, &id, now, now + state.accounts.session_idle)
            .await?;
    }
    Ok(Some(SignedIn {
        session_id: id,
        user,
        mode: session.mode.0,
        csrf: csrf_of(token),
        must_enrol,
    }))
}

/// Ends this session.
pub async fn logout(state: &AppState, s: &SignedIn) -> Result<(), AccountError> {
    store::accounts::revoke_session(&state.db, &s.session_id, OffsetDateTime::now_utc()).await?;
    record(state, &s.user, Activity::Logout).await?;
    tracing::info!(user_id = %s.user.id, "back-office logout");
    Ok(())
}

/// Ends every session of this user, this one included.
pub async fn logout_everywhere(state: &AppState, s: &SignedIn) -> Result<u64, AccountError> {
    let n = store::accounts::revoke_sessions_of(&state.db, &s.user.id, OffsetDateTime::now_utc())
        .await?;
    record(state, &s.user, Activity::LogoutEverywhere).await?;
    tracing::info!(user_id = %s.user.id, sessions = n, "back-office logout everywhere");
    Ok(n)
}

/// Changes a team member's role and whether the account is disabled (a disabled account's
/// sessions end at once). The caller's role must allow [`Action::ManageTeam`]; nobody
/// changes their own account, so a team always keeps the owner who manages it.
pub async fn set_role(
    state: &AppState,
    s: &SignedIn,
    user_id: &str,
    role: Role,
    disabled: bool,
) -> Result<(), AccountError> {
    if user_id == s.user.id {
        return Err(AccountError::OwnAccount);
    }
    let before = store::accounts::find_user(&state.db, &s.user.merchant_id, user_id)
        .await?
        .ok_or(AccountError::UserNotFound)?;
    let tx = store::begin(&state.db).await?;
    let now = OffsetDateTime::now_utc();
    if !store::accounts::set_role(&tx, &s.user.merchant_id, user_id, role, disabled, now).await? {
        return Err(AccountError::UserNotFound);
    }
    let mut changes = Vec::new();
    if before.role != role {
        changes.push((
            Activity::RoleChanged,
            Some(format!(
                "{} from {} to {}",
                before.email,
                before.role.as_str(),
                role.as_str()
            )),
        ));
    }
    if before.disabled != disabled {
        let action = if disabled {
            Activity::UserDisabled
        } else {
            Activity::UserEnabled
        };
        changes.push((action, Some(before.email.clone())));
    }
    for (action, detail) in changes {
        crate::activity::record(
            &tx,
            &s.user.merchant_id,
            None,
            &s.user.id,
            action,
            Some(user_id),
            detail,
        )
        .await?;
    }
    tx.commit().await?;
    tracing::info!(user_id = %s.user.id, target = %user_id, role = role.as_str(), disabled, "team member changed");
    Ok(())
}

/// Checks the password of a signed-in user confirming a change (off the async threads:
/// argon2 is slow on purpose).
pub(crate) async fn check_own_password(user: &User, password: &str) -> Result<(), AccountError> {
    let stored = user.password_hash.clone();
    let password = password.to_owned();
    let ok = tokio::task::spawn_blocking(move || verify_password(&stored, &password))
        .await
        .map_err(|e| anyhow::anyhow!("password check: {e}"))?;
    if ok {
        Ok(())
    } else {
        Err(AccountError::InvalidCredentials)
    }
}

/// Switches the session between test and live data.
pub async fn switch_mode(state: &AppState, s: &SignedIn, mode: Mode) -> Result<(), AccountError> {
    store::accounts::set_session_mode(&state.db, &s.session_id, mode).await?;
    Ok(())
}

/// Changes the user's password after checking the current one; every session of the user
/// ends (the caller signs in again).
pub async fn change_password(
    state: &AppState,
    s: &SignedIn,
    current: &str,
    new: &str,
) -> Result<(), AccountError> {
    check_own_password(&s.user, current).await?;
    check_password(new)?;
    let hash = hash_password(new)?;
    let tx = store::begin(&state.db).await?;
    let now = OffsetDateTime::now_utc();
    store::accounts::set_password(&tx, &s.user.id, &hash, now).await?;
    crate::activity::record(
        &tx,
        &s.user.merchant_id,
        None,
        &s.user.id,
        Activity::PasswordChanged,
        None,
        None,
    )
    .await?;
    links::tell_password_changed(&tx, &s.user, now).await?;
    tx.commit().await?;
    tracing::info!(user_id = %s.user.id, "back-office password changed; sessions revoked");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_lower_cased_and_non_addresses_refused() {
        assert_eq!(
            Email::parse(" Owner@Shop.Example ").unwrap().as_str(),
            "owner@shop.example"
        );
        for bad in [
            "",
            "owner",
            "@shop.example",
            "a@b",
            "a b@shop.example",
            "a@@b.c",
            "a@b.",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_password_hash_verifies_only_its_password() {
        let h = hash_password("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password(&h, "correct horse battery"));
        assert!(!verify_password(&h, "correct horse batterz"));
        assert!(!verify_password("not a hash", "correct horse battery"));
    }

    #[test]
    fn the_csrf_token_is_not_the_session_token_nor_its_stored_hash() {
        let t = "token";
        assert_ne!(csrf_of(t), t);
        assert_ne!(csrf_of(t), session_id(t));
    }
}
