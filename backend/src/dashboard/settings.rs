//! Settings: the checkout's allowed origins, signed amounts and signing-secret rotation
//! (through the merchant API's checkout-settings function), the team's roles, its
//! invitations and whether the team must sign in with a second factor.
use minijinja::context;
use poem::{
    handler,
    http::StatusCode,
    web::{cookie::CookieJar, Data, Form, Path},
    Response,
};
use serde::Deserialize;

use super::{frame, primary, reads, report, see_other, signed_in, signed_in_for, PageError};
use crate::{
    accounts::{self, two_factor, AccountError, Action, Role, SignedIn},
    checkout::{
        settings::{self, SettingsPatch},
        CheckoutError,
    },
    replica::ReadDb,
    state::AppState,
    store,
    timestamps::rfc3339,
};

async fn page(
    state: &AppState,
    read: &ReadDb,
    s: &SignedIn,
    status: StatusCode,
    new_secret: Option<String>,
    error: Option<String>,
) -> Result<Response, PageError> {
    team_page(state, read, s, status, new_secret, error, None).await
}

async fn team_page(
    state: &AppState,
    read: &ReadDb,
    s: &SignedIn,
    status: StatusCode,
    new_secret: Option<String>,
    error: Option<String>,
    invite_notice: Option<String>,
) -> Result<Response, PageError> {
    let caller = s.as_caller(state).await?;
    let current = settings::get_in(state, &read.db, &caller)
        .await
        .map_err(|e| PageError::Internal(e.into()))?;
    let secret = current.signing_secret.expose();
    let team: Vec<_> = store::accounts::users_of(&read.db, &s.user.merchant_id)
        .await?
        .into_iter()
        .map(|u| {
            context! {
                id => &u.id,
                email => &u.email,
                role => u.role.as_str(),
                disabled => u.disabled,
                created_at => rfc3339(u.created_at),
                is_me => u.id == s.user.id,
                two_factor => u.totp_enabled_at.is_some(),
            }
        })
        .collect();
    let now = time::OffsetDateTime::now_utc();
    let invitations: Vec<_> = store::links::pending_invitations(&read.db, &s.user.merchant_id)
        .await?
        .into_iter()
        .map(|i| {
            context! {
                id => &i.id,
                email => &i.email,
                role => i.role.as_str(),
                expires_at => rfc3339(i.expires_at),
                expired => i.expires_at <= now,
                manageable => s.user.role.may_grant(i.role),
            }
        })
        .collect();
    let grantable: Vec<&str> = ALL_ROLES
        .into_iter()
        .filter(|r| s.user.role.may_grant(*r))
        .map(Role::as_str)
        .collect();
    let team_requires_two_factor = two_factor::team_requires(state, &s.user.merchant_id).await?;
    let body = frame::render(
        "dashboard/settings.html",
        frame::report_frame(
            s,
            "settings",
            &read.freshness,
            context! {
                require_signature => current.require_signature,
                origins => current.allowed_origins.join("\n"),
                secret_hint => format!("…{}", &secret[secret.len().saturating_sub(4)..]),
                new_secret,
                error,
                team,
                roles => ALL_ROLES.map(Role::as_str),
                can_settings => s.can(Action::ManageSettings),
                can_team => s.can(Action::ManageTeam),
                can_invite => s.can(Action::InviteTeam),
                grantable,
                invitations,
                invite_notice,
                invitation_hours => state.accounts.invitation_ttl.as_secs() / 3600,
                team_requires_two_factor,
                me_two_factor => s.user.totp_enabled_at.is_some(),
            },
        ),
    )?;
    Ok(report(status, body, &read.freshness))
}

const ALL_ROLES: [Role; 4] = [Role::Owner, Role::Admin, Role::Staff, Role::Viewer];

#[handler]
pub(crate) async fn show(state: Data<&AppState>, jar: &CookieJar) -> Result<Response, PageError> {
    let s = signed_in(&state, jar).await?;
    let read = reads(&state, jar).await;
    page(&state, &read, &s, StatusCode::OK, None, None).await
}

fn refusal(e: CheckoutError) -> Result<String, PageError> {
    match e {
        CheckoutError::Invalid(fields) => Ok(fields
            .iter()
            .map(|f| f.message.clone())
            .collect::<Vec<_>>()
            .join(" ")),
        CheckoutError::Internal(e) => Err(PageError::Internal(e)),
        other => Err(PageError::Internal(anyhow::anyhow!("unexpected: {other}"))),
    }
}

#[derive(Deserialize)]
pub(crate) struct CheckoutForm {
    #[serde(default)]
    csrf: String,
    /// Present (any value) when the box is ticked: an unticked box sends nothing.
    #[serde(default)]
    require_signature: Option<String>,
    #[serde(default)]
    origins: String,
}

#[handler]
pub(crate) async fn checkout(
    state: Data<&AppState>,
    jar: &CookieJar,
    Form(form): Form<CheckoutForm>,
) -> Result<Response, PageError> {
    let s = signed_in_for(&state, jar, &form.csrf, Action::ManageSettings).await?;
    let caller = s.as_caller(&state).await?;
    let origins: Vec<String> = form
        .origins
        .split(|c: char| c == '\n' || c == ',' || c.is_whitespace())
        .map(str::trim)
        .filter(|o| !o.is_empty())
        .map(str::to_owned)
        .collect();
    let patch = SettingsPatch {
        require_signature: Some(form.require_signature.is_some()),
        allowed_origins: Some(origins),
        rotate_signing_secret: false,
    };
    match settings::update(&state, &caller, patch).await {
        Ok(_) => Ok(see_other("/dashboard/settings")),
        Err(e) => {
            let msg = refusal(e)?;
            page(
                &state,
                &primary(&state),
                &s,
                StatusCode::BAD_REQUEST,
                None,
                Some(msg),
            )
            .await
        }
    }
}

#[derive(Deserialize)]
pub(crate) struct CsrfOnly {
    #[serde(default)]
    csrf: String,
}

#[handler]
pub(crate) async fn rotate_signing_secret(
    state: Data<&AppState>,
    jar: &CookieJar,
    Form(form): Form<CsrfOnly>,
) -> Result<Response, PageError> {
    let s = signed_in_for(&state, jar, &form.csrf, Action::ManageSettings).await?;
    let caller = s.as_caller(&state).await?;
    let patch = SettingsPatch {
        rotate_signing_secret: true,
        ..SettingsPatch::default()
    };
    match settings::update(&state, &caller, patch).await {
        Ok(updated) => {
            let secret = updated.signing_secret.expose().clone();
            page(
                &state,
                &primary(&state),
                &s,
                StatusCode::OK,
                Some(secret),
                None,
            )
            .await
        }
        Err(e) => {
            let msg = refusal(e)?;
            page(
                &state,
                &primary(&state),
                &s,
                StatusCode::BAD_REQUEST,
                None,
                Some(msg),
            )
            .await
        }
    }
}

#[derive(Deserialize)]
pub(crate) struct MemberForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    disabled: Option<String>,
}

#[handler]
pub(crate) async fn member(
    state: Data<&AppState>,
    jar: &CookieJar,
    Path(id): Path<String>,
    Form(form): Form<MemberForm>,
) -> Result<Response, PageError> {
    let s = signed_in_for(&state, jar, &form.csrf, Action::ManageTeam).await?;
    let Some(role) = Role::parse(&form.role) else {
        return page(
            &state,
            &primary(&state),
            &s,
            StatusCode::BAD_REQUEST,
            None,
            Some("Unknown role.".into()),
        )
        .await;
    };
    match accounts::set_role(&state, &s, &id, role, form.disabled.is_some()).await {
        Ok(()) => Ok(see_other("/dashboard/settings")),
        Err(AccountError::UserNotFound) => Err(PageError::NotFound(Box::new(s))),
        Err(AccountError::OwnAccount) => {
            page(
                &state,
                &primary(&state),
                &s,
                StatusCode::BAD_REQUEST,
                None,
                Some("You cannot change your own role or disable your own account.".into()),
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
pub(crate) struct InviteForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    role: String,
}

async fn invitation_refused(
    state: &AppState,
    s: SignedIn,
    e: AccountError,
) -> Result<Response, PageError> {
    let msg = match e {
        AccountError::InvalidEmail => "That is not an email address.",
        AccountError::EmailTaken => "This address already has a back-office account.",
        AccountError::RoleAboveYours => "You cannot invite with a role above your own.",
        AccountError::InvitationNotFound => return Err(PageError::NotFound(Box::new(s))),
        e => return Err(e.into()),
    };
    page(
        state,
        &primary(state),
        &s,
        StatusCode::BAD_REQUEST,
        None,
        Some(msg.into()),
    )
    .await
}

#[handler]
pub(crate) async fn invite(
    state: Data<&AppState>,
    jar: &CookieJar,
    Form(form): Form<InviteForm>,
) -> Result<Response, PageError> {
    let s = signed_in_for(&state, jar, &form.csrf, Action::InviteTeam).await?;
    let Some(role) = Role::parse(&form.role) else {
        return page(
            &state,
            &primary(&state),
            &s,
            StatusCode::BAD_REQUEST,
            None,
            Some("Unknown role.".into()),
        )
        .await;
    };
    match accounts::links::invite(&state, &s, &form.email, role).await {
        Ok(inv) => {
            let notice = format!("Invitation sent to {} as {}.", inv.email, role.as_str());
            team_page(
                &state,
                &primary(&state),
                &s,
                StatusCode::OK,
                None,
                None,
                Some(notice),
            )
            .await
        }
        Err(e) => invitation_refused(&state, s, e).await,
    }
}

#[handler]
pub(crate) async fn resend_invitation(
    state: Data<&AppState>,
    jar: &CookieJar,
    Path(id): Path<String>,
    Form(form): Form<CsrfOnly>,
) -> Result<Response, PageError> {
    let s = signed_in_for(&state, jar, &form.csrf, Action::InviteTeam).await?;
    match accounts::links::resend(&state, &s, &id).await {
        Ok(()) => Ok(see_other("/dashboard/settings")),
        Err(e) => invitation_refused(&state, s, e).await,
    }
}

#[handler]
pub(crate) async fn revoke_invitation(
    state: Data<&AppState>,
    jar: &CookieJar,
    Path(id): Path<String>,
    Form(form): Form<CsrfOnly>,
) -> Result<Response, PageError> {
    let s = signed_in_for(&state, jar, &form.csrf, Action::InviteTeam).await?;
    match accounts::links::revoke(&state, &s, &id).await {
        Ok(()) => Ok(see_other("/dashboard/settings")),
        Err(e) => invitation_refused(&state, s, e).await,
    }
}

#[derive(Deserialize)]
pub(crate) struct TwoFactorForm {
    #[serde(default)]
    csrf: String,
    /// Present (any value) when the box is ticked.
    #[serde(default)]
    required: Option<String>,
}

#[handler]
pub(crate) async fn team_two_factor(
    state: Data<&AppState>,
    jar: &CookieJar,
    Form(form): Form<TwoFactorForm>,
) -> Result<Response, PageError> {
    let s = signed_in_for(&state, jar, &form.csrf, Action::ManageTeam).await?;
    match two_factor::set_team_requirement(&state, &s, form.required.is_some()).await {
        Ok(()) => Ok(see_other("/dashboard/settings")),
        Err(AccountError::EnrolFirst) => {
            page(
                &state,
                &primary(&state),
                &s,
                StatusCode::BAD_REQUEST,
                None,
                Some(
                    "Turn on two-factor sign-in for your own account (Account page) before \
                     requiring it of the team."
                        .into(),
                ),
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}
