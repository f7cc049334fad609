//! Emailed links that open an account: team invitations and password resets.
//!
//! A link carries 256 random bits. The database keeps only their HMAC (keyed with the
//! pepper); the email in the outbox keeps the link sealed under ENCRYPTION_KEY and bound to
//! its row ([`SealedLink`]); the clear link exists in the sent message only. A link is spent
//! by one conditional UPDATE inside the transaction that uses it, so of two requests racing
//! on one link exactly one wins. Unknown, expired, used and revoked links get one answer
//! ([`AccountError::InvalidLink`]).
use sea_orm::ConnectionTrait;
use time::OffsetDateTime;

use super::{
    check_password, hash_password, new_token, start_session, AccountError, Email, NewSession, Role,
    SignedIn, User,
};
use crate::{
    activity::Action as Activity,
    crypto::{link_token_hmac, sha256_hex},
    gateway::lockout::Attempt,
    ids::new_id,
    notify::{self, EmailAddress, EmailKind, Recipient, SealedLink},
    secret::Secret,
    state::AppState,
    store::{
        self,
        entities::{invitation::Model as Invitation, password_reset::Model as PasswordReset},
    },
    timestamps::rfc3339,
};

/// Where an invitation's link points, followed by its token.
pub const INVITATION_PATH: &str = "/dashboard/invitations/";
/// Where a password-reset link points, followed by its token.
pub const RESET_PATH: &str = "/dashboard/password-reset/";
/// Paths whose last segment is a link's token: never logged as they are.
pub const TOKEN_PATHS: [&str; 2] = [INVITATION_PATH, RESET_PATH];

const INVITATION: &str = "invitation";
const RESET: &str = "password_reset";

/// A path fit for a log line: a link's token replaced by `{token}`.
pub fn loggable_path(path: &str) -> std::borrow::Cow<'_, str> {
    for prefix in TOKEN_PATHS {
        if path.starts_with(prefix) && path.len() > prefix.len() {
            return format!("{prefix}{{token}}").into();
        }
    }
    path.into()
}

fn link(state: &AppState, path: &str, token: &Secret<String>) -> Secret<String> {
    Secret::new(format!(
        "{}{path}{}",
        state.accounts.public_url.trim_end_matches('/'),
        token.expose()
    ))
}

fn address(email: &str) -> Result<EmailAddress, AccountError> {
    EmailAddress::parse(email).map_err(|_| AccountError::InvalidEmail)
}

fn after(now: OffsetDateTime, d: std::time::Duration) -> OffsetDateTime {
    now + time::Duration::try_from(d).unwrap_or(time::Duration::WEEK)
}

/// Queues the invitation email of `inv` with a fresh `token`, in `conn`'s transaction.
async fn send_invitation(
    conn: &impl ConnectionTrait,
    state: &AppState,
    s: &SignedIn,
    inv: &Invitation,
    token: &Secret<String>,
) -> Result<(), AccountError> {
    let to = address(&inv.email)?;
    let kind = EmailKind::Invitation {
        merchant_name: notify::merchant_name(conn, &inv.merchant_id).await?,
        inviter: s.user.email.clone(),
        role: inv.role.as_str().to_owned(),
        expires_at: rfc3339(inv.expires_at),
        invitation_id: inv.id.clone(),
        link: SealedLink::seal(
            &state.webhooks.cipher,
            INVITATION,
            &inv.id,
            &link(state, INVITATION_PATH, token),
        )?,
    };
    notify::enqueue(
        conn,
        Recipient::Address {
            merchant_id: Some(&inv.merchant_id),
            address: &to,
        },
        kind,
    )
    .await?;
    Ok(())
}

/// Invites `email` to the signed-in user's team as `role`, replacing any pending invitation
/// of that address; the email with the link is queued in the same transaction.
#[tracing::instrument(skip_all, fields(merchant_id = %s.user.merchant_id, role = role.as_str()))]
pub async fn invite(
    state: &AppState,
    s: &SignedIn,
    email: &str,
    role: Role,
) -> Result<Invitation, AccountError> {
    if !s.user.role.may_grant(role) {
        return Err(AccountError::RoleAboveYours);
    }
    let email = Email::parse(email)?;
    address(email.as_str())?;
    // Emails are unique across the platform: an address with an account (here or at
    // another merchant) could never accept.
    if store::accounts::find_user_by_email(&state.db, email.as_str())
        .await?
        .is_some()
    {
        return Err(AccountError::EmailTaken);
    }
    let token = new_token();
    let now = OffsetDateTime::now_utc();
    let inv = Invitation {
        id: new_id("inv"),
        merchant_id: s.user.merchant_id.clone(),
        email: email.as_str().to_owned(),
        role,
        invited_by: s.user.id.clone(),
        token_hmac: link_token_hmac(&state.pepper, INVITATION, token.expose()),
        created_at: now,
        expires_at: after(now, state.accounts.invitation_ttl),
        accepted_at: None,
        accepted_user_id: None,
        revoked_at: None,
    };
    let tx = store::begin(&state.db).await?;
    store::links::revoke_invitations_to(&tx, &inv.merchant_id, &inv.email, now).await?;
    store::links::insert_invitation(&tx, inv.clone()).await?;
    send_invitation(&tx, state, s, &inv, &token).await?;
    crate::activity::record(
        &tx,
        &inv.merchant_id,
        None,
        &s.user.id,
        Activity::InvitationSent,
        Some(&inv.id),
        Some(format!("{} as {}", inv.email, role.as_str())),
    )
    .await?;
    tx.commit().await?;
    tracing::info!(user_id = %s.user.id, invitation_id = %inv.id, "team invitation sent");
    Ok(inv)
}

/// A pending invitation of the signed-in user's team whose role the user may grant.
async fn pending_of(state: &AppState, s: &SignedIn, id: &str) -> Result<Invitation, AccountError> {
    let inv = store::links::find_invitation(&state.db, &s.user.merchant_id, id)
        .await?
        .filter(|i| i.accepted_at.is_none() && i.revoked_at.is_none())
        .ok_or(AccountError::InvitationNotFound)?;
    if !s.user.role.may_grant(inv.role) {
        return Err(AccountError::RoleAboveYours);
    }
    Ok(inv)
}

/// Sends a pending invitation again with a new link and a new expiry; the old link stops
/// working.
pub async fn resend(state: &AppState, s: &SignedIn, id: &str) -> Result<(), AccountError> {
    let mut inv = pending_of(state, s, id).await?;
    let token = new_token();
    let now = OffsetDateTime::now_utc();
    inv.token_hmac = link_token_hmac(&state.pepper, INVITATION, token.expose());
    inv.expires_at = after(now, state.accounts.invitation_ttl);
    let tx = store::begin(&state.db).await?;
    if !store::links::renew_invitation(
        &tx,
        &inv.merchant_id,
        &inv.id,
        &inv.token_hmac,
        inv.expires_at,
    )
    .await?
    {
        // Accepted or revoked since it was read.
        return Err(AccountError::InvitationNotFound);
    }
    send_invitation(&tx, state, s, &inv, &token).await?;
    crate::activity::record(
        &tx,
        &inv.merchant_id,
        None,
        &s.user.id,
        Activity::InvitationSent,
        Some(&inv.id),
        Some(format!(
            "{} as {} (sent again)",
            inv.email,
            inv.role.as_str()
        )),
    )
    .await?;
    tx.commit().await?;
    tracing::info!(user_id = %s.user.id, invitation_id = %inv.id, "team invitation sent again");
    Ok(())
}

/// Revokes a pending invitation: its link stops working.
pub async fn revoke(state: &AppState, s: &SignedIn, id: &str) -> Result<(), AccountError> {
    let inv = pending_of(state, s, id).await?;
    let tx = store::begin(&state.db).await?;
    if !store::links::revoke_invitation(&tx, &inv.merchant_id, &inv.id, OffsetDateTime::now_utc())
        .await?
    {
        return Err(AccountError::InvitationNotFound);
    }
    crate::activity::record(
        &tx,
        &inv.merchant_id,
        None,
        &s.user.id,
        Activity::InvitationRevoked,
        Some(&inv.id),
        Some(inv.email.clone()),
    )
    .await?;
    tx.commit().await?;
    tracing::info!(user_id = %s.user.id, invitation_id = %inv.id, "team invitation revoked");
    Ok(())
}

/// The invitation a link opens, while it is pending and unexpired.
pub async fn invitation_of_link(state: &AppState, token: &str) -> Result<Invitation, AccountError> {
    let hmac = link_token_hmac(&state.pepper, INVITATION, token);
    let now = OffsetDateTime::now_utc();
    store::links::find_invitation_by_token(&state.db, &hmac)
        .await?
        .filter(|i| i.accepted_at.is_none() && i.revoked_at.is_none() && i.expires_at > now)
        .ok_or(AccountError::InvalidLink)
}

/// Accepts an invitation: creates its user with `password` and the invitation's role,
/// spends the link and opens a session, all in one transaction.
#[tracing::instrument(skip_all)]
pub async fn accept(
    state: &AppState,
    token: &str,
    password: &str,
) -> Result<NewSession, AccountError> {
    let inv = invitation_of_link(state, token).await?;
    check_password(password)?;
    let password = password.to_owned();
    let hash = tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|e| anyhow::anyhow!("password hash: {e}"))??;
    let now = OffsetDateTime::now_utc();
    let user = User {
        id: new_id("usr"),
        merchant_id: inv.merchant_id.clone(),
        email: inv.email.clone(),
        password_hash: hash,
        role: inv.role,
        totp_secret: None,
        totp_enabled_at: None,
        totp_last_step: None,
        disabled: false,
        created_at: now,
        password_changed_at: now,
    };
    let tx = store::begin(&state.db).await?;
    // Spend the link first: of two requests racing on it, the second finds it used here
    // (PostgreSQL makes it wait for the first's commit) and creates nothing.
    if !store::links::accept_invitation(&tx, &inv.id, &inv.token_hmac, &user.id, now).await? {
        return Err(AccountError::InvalidLink);
    }
    match store::accounts::insert_user(&tx, user.clone()).await {
        Ok(()) => {}
        // The address got an account since the invitation was sent.
        Err(e) if store::violates(&e, store::Unique::DashboardEmail) => {
            return Err(AccountError::InvalidLink)
        }
        Err(e) => return Err(e.into()),
    }
    crate::activity::record(
        &tx,
        &user.merchant_id,
        None,
        &user.id,
        Activity::InvitationAccepted,
        Some(&inv.id),
        Some(format!("{} as {}", user.email, user.role.as_str())),
    )
    .await?;
    let session = start_session(&tx, &state.accounts, user).await?;
    tx.commit().await?;
    tracing::info!(user_id = %session.user.id, invitation_id = %inv.id, "team invitation accepted");
    Ok(session)
}

/// Asks for a password-reset link for `email`. The answer is the same whether or not the
/// email has an account (the email is sent only when it has); requests are limited per
/// client address and per email, counted whether or not the account exists.
#[tracing::instrument(skip_all)]
pub async fn request_reset(
    state: &AppState,
    client: &str,
    email: &str,
) -> Result<(), AccountError> {
    let typed = email.trim().to_lowercase();
    let account = sha256_hex(&format!("reset:{typed}"));
    let attempt = Attempt::password_reset(&state.accounts.reset_limit, client, &account);
    // Counted first, so the request past the limit is itself refused.
    attempt.failed(&state.coord, None).await;
    if let Some(retry_after) = attempt.refused_for(&state.coord).await {
        return Err(AccountError::TooManyRequests { retry_after });
    }
    let user = match Email::parse(&typed) {
        Ok(e) => store::accounts::find_user_by_email(&state.db, e.as_str()).await?,
        Err(_) => None,
    };
    let Some(user) = user.filter(|u| !u.disabled) else {
        tracing::info!("password reset asked for no enabled account");
        return Ok(());
    };
    let to = address(&user.email)?;
    let token = new_token();
    let now = OffsetDateTime::now_utc();
    let reset = PasswordReset {
        id: new_id("pwr"),
        user_id: user.id.clone(),
        merchant_id: user.merchant_id.clone(),
        token_hmac: link_token_hmac(&state.pepper, RESET, token.expose()),
        created_at: now,
        expires_at: after(now, state.accounts.reset_ttl),
        used_at: None,
        revoked_at: None,
    };
    let tx = store::begin(&state.db).await?;
    store::links::insert_reset(&tx, reset.clone()).await?;
    let kind = EmailKind::PasswordReset {
        merchant_name: notify::merchant_name(&tx, &user.merchant_id).await?,
        expires_at: rfc3339(reset.expires_at),
        reset_id: reset.id.clone(),
        link: SealedLink::seal(
            &state.webhooks.cipher,
            RESET,
            &reset.id,
            &link(state, RESET_PATH, &token),
        )?,
    };
    notify::enqueue(
        &tx,
        Recipient::Address {
            merchant_id: Some(&user.merchant_id),
            address: &to,
        },
        kind,
    )
    .await?;
    crate::activity::record(
        &tx,
        &user.merchant_id,
        None,
        &user.id,
        Activity::PasswordResetRequested,
        Some(&user.id),
        None,
    )
    .await?;
    tx.commit().await?;
    tracing::info!(user_id = %user.id, "password reset link sent");
    Ok(())
}

/// The reset link a token opens, with its user, while it is unused, unrevoked and
/// unexpired and the user enabled.
pub async fn reset_of_link(
    state: &AppState,
    token: &str,
) -> Result<(PasswordReset, User), AccountError> {
    let hmac = link_token_hmac(&state.pepper, RESET, token);
    let now = OffsetDateTime::now_utc();
    let reset = store::links::find_reset_by_token(&state.db, &hmac)
        .await?
        .filter(|r| r.used_at.is_none() && r.revoked_at.is_none() && r.expires_at > now)
        .ok_or(AccountError::InvalidLink)?;
    let user = store::accounts::find_user(&state.db, &reset.merchant_id, &reset.user_id)
        .await?
        .filter(|u| !u.disabled)
        .ok_or(AccountError::InvalidLink)?;
    Ok((reset, user))
}

/// Sets a new password through a reset link: spends the link, ends every session and every
/// other reset link of the user, logs it and queues the "password changed" email.
#[tracing::instrument(skip_all)]
pub async fn reset_password(
    state: &AppState,
    token: &str,
    password: &str,
) -> Result<User, AccountError> {
    let (reset, user) = reset_of_link(state, token).await?;
    check_password(password)?;
    let password = password.to_owned();
    let hash = tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|e| anyhow::anyhow!("password hash: {e}"))??;
    let now = OffsetDateTime::now_utc();
    let tx = store::begin(&state.db).await?;
    if !store::links::use_reset(&tx, &reset.id, now).await? {
        return Err(AccountError::InvalidLink);
    }
    store::accounts::set_password(&tx, &user.id, &hash, now).await?;
    crate::activity::record(
        &tx,
        &user.merchant_id,
        None,
        &user.id,
        Activity::PasswordResetDone,
        Some(&user.id),
        None,
    )
    .await?;
    tell_password_changed(&tx, &user, now).await?;
    tx.commit().await?;
    tracing::info!(user_id = %user.id, "password reset; sessions revoked");
    Ok(user)
}

/// Queues the "your password was changed" email to the user, in `conn`'s transaction.
pub(crate) async fn tell_password_changed(
    conn: &impl ConnectionTrait,
    user: &User,
    at: OffsetDateTime,
) -> Result<(), AccountError> {
    let to = address(&user.email)?;
    let kind = EmailKind::PasswordChanged {
        merchant_name: notify::merchant_name(conn, &user.merchant_id).await?,
        changed_at: rfc3339(at),
    };
    notify::enqueue(
        conn,
        Recipient::Address {
            merchant_id: Some(&user.merchant_id),
            address: &to,
        },
        kind,
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_links_token_never_reaches_a_logged_path() {
        assert_eq!(
            loggable_path("/dashboard/invitations/abcDEF123"),
            "/dashboard/invitations/{token}"
        );
        assert_eq!(
            loggable_path("/dashboard/password-reset/abcDEF123"),
            "/dashboard/password-reset/{token}"
        );
        assert_eq!(
            loggable_path("/dashboard/password-reset"),
            "/dashboard/password-reset"
        );
        assert_eq!(loggable_path("/dashboard/keys"), "/dashboard/keys");
    }
}
