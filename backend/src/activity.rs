//! The activity log: who did what and when. Each entry is written by the function that
//! does the action (inside its database transaction where it has one), so no path can act
//! without leaving its line.
use sea_orm::ConnectionTrait;
use superpayment_core::Mode;
use time::OffsetDateTime;

use crate::{auth::Caller, store};

/// What was done.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Login,
    LoginFailed,
    LoginLockedOut,
    Logout,
    LogoutEverywhere,
    PasswordChanged,
    RefundCreated,
    KeyCreated,
    KeyRolled,
    KeyRevoked,
    WebhookEndpointSet,
    WebhookSecretRotated,
    WebhookRedelivered,
    SettingsChanged,
    SigningSecretRotated,
    RoleChanged,
    UserDisabled,
    UserEnabled,
    InvitationSent,
    InvitationRevoked,
    InvitationAccepted,
    PasswordResetRequested,
    PasswordResetDone,
    TwoFactorEnabled,
    TwoFactorDisabled,
    RecoveryCodeUsed,
    RecoveryCodesRegenerated,
    TeamTwoFactorRequirement,
}

impl Action {
    /// Every action, for the log's filter.
    pub const ALL: [Action; 28] = [
        Action::Login,
        Action::LoginFailed,
        Action::LoginLockedOut,
        Action::Logout,
        Action::LogoutEverywhere,
        Action::PasswordChanged,
        Action::RefundCreated,
        Action::KeyCreated,
        Action::KeyRolled,
        Action::KeyRevoked,
        Action::WebhookEndpointSet,
        Action::WebhookSecretRotated,
        Action::WebhookRedelivered,
        Action::SettingsChanged,
        Action::SigningSecretRotated,
        Action::RoleChanged,
        Action::UserDisabled,
        Action::UserEnabled,
        Action::InvitationSent,
        Action::InvitationRevoked,
        Action::InvitationAccepted,
        Action::PasswordResetRequested,
        Action::PasswordResetDone,
        Action::TwoFactorEnabled,
        Action::TwoFactorDisabled,
        Action::RecoveryCodeUsed,
        Action::RecoveryCodesRegenerated,
        Action::TeamTwoFactorRequirement,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Login => "login",
            Action::LoginFailed => "login.failed",
            Action::LoginLockedOut => "login.locked_out",
            Action::Logout => "logout",
            Action::LogoutEverywhere => "logout.everywhere",
            Action::PasswordChanged => "password.changed",
            Action::RefundCreated => "refund.created",
            Action::KeyCreated => "key.created",
            Action::KeyRolled => "key.rolled",
            Action::KeyRevoked => "key.revoked",
            Action::WebhookEndpointSet => "webhook_endpoint.set",
            Action::WebhookSecretRotated => "webhook_endpoint.secret_rotated",
            Action::WebhookRedelivered => "event.redelivered",
            Action::SettingsChanged => "checkout_settings.changed",
            Action::SigningSecretRotated => "checkout_settings.signing_secret_rotated",
            Action::RoleChanged => "user.role_changed",
            Action::UserDisabled => "user.disabled",
            Action::UserEnabled => "user.enabled",
            Action::InvitationSent => "invitation.sent",
            Action::InvitationRevoked => "invitation.revoked",
            Action::InvitationAccepted => "invitation.accepted",
            Action::PasswordResetRequested => "password_reset.requested",
            Action::PasswordResetDone => "password_reset.done",
            Action::TwoFactorEnabled => "two_factor.enabled",
            Action::TwoFactorDisabled => "two_factor.disabled",
            Action::RecoveryCodeUsed => "two_factor.recovery_code_used",
            Action::RecoveryCodesRegenerated => "two_factor.recovery_codes_regenerated",
            Action::TeamTwoFactorRequirement => "team.two_factor_requirement",
        }
    }

    /// Parses a stored or filtered name.
    pub fn parse(s: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

/// Appends an entry for `actor` (`usr_...` or `key_...`) of `merchant_id`.
pub async fn record(
    db: &impl ConnectionTrait,
    merchant_id: &str,
    mode: Option<Mode>,
    actor: &str,
    action: Action,
    target: Option<&str>,
    detail: Option<String>,
) -> Result<(), sea_orm::DbErr> {
    store::activity::append(
        db,
        store::entities::activity::Model {
            id: 0,
            merchant_id: merchant_id.to_owned(),
            mode: mode.map(|m| m.as_str().to_owned()),
            actor: actor.to_owned(),
            action: action.as_str().to_owned(),
            target: target.map(str::to_owned),
            detail,
            created_at: OffsetDateTime::now_utc(),
        },
    )
    .await
}

/// Appends an entry for what `caller` (an API key, or a back-office user acting through
/// the same functions) did in its mode.
pub async fn record_for(
    db: &impl ConnectionTrait,
    caller: &Caller,
    action: Action,
    target: Option<&str>,
    detail: Option<String>,
) -> Result<(), sea_orm::DbErr> {
    record(
        db,
        &caller.merchant_id,
        Some(caller.mode),
        &caller.key_id,
        action,
        target,
        detail,
    )
    .await
}

#[cfg(test)]
mod tests {
    #[test]
    fn action_names_round_trip() {
        for a in super::Action::ALL {
            assert_eq!(super::Action::parse(a.as_str()), Some(a));
        }
    }
}
