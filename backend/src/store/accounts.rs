//! Back-office users and their sessions.
use sea_orm::{
    sea_query::Expr, ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait,
    QueryFilter, QueryOrder,
};
use superpayment_core::Mode;
use time::OffsetDateTime;

use super::entities::{
    dashboard_challenge::{self, Model as Challenge},
    dashboard_recovery_code::{self, Model as RecoveryCode},
    dashboard_session::{self, Model as Session},
    dashboard_user::{self, Model as User},
    text::AsText,
};

/// Inserts a user; a taken email violates [`super::Unique::DashboardEmail`].
pub async fn insert_user(db: &impl ConnectionTrait, user: User) -> Result<(), DbErr> {
    dashboard_user::Entity::insert(dashboard_user::ActiveModel {
        id: Set(user.id),
        merchant_id: Set(user.merchant_id),
        email: Set(user.email),
        password_hash: Set(user.password_hash),
        role: Set(user.role),
        totp_secret: Set(user.totp_secret),
        totp_enabled_at: Set(user.totp_enabled_at),
        totp_last_step: Set(user.totp_last_step),
        disabled: Set(user.disabled),
        created_at: Set(user.created_at),
        password_changed_at: Set(user.password_changed_at),
    })
    .exec_without_returning(db)
    .await
    .map(|_| ())
}

/// The user with this (lower-cased) email, of any merchant.
pub async fn find_user_by_email(
    db: &impl ConnectionTrait,
    email: &str,
) -> Result<Option<User>, DbErr> {
    dashboard_user::Entity::find()
        .filter(dashboard_user::Column::Email.eq(email))
        .one(db)
        .await
}

/// One of a merchant's users.
pub async fn find_user(
    db: &impl ConnectionTrait,
    merchant_id: &str,
    id: &str,
) -> Result<Option<User>, DbErr> {
    dashboard_user::Entity::find_by_id(id)
        .filter(dashboard_user::Column::MerchantId.eq(merchant_id))
        .one(db)
        .await
}

/// A merchant's users, oldest first.
pub async fn users_of(db: &impl ConnectionTrait, merchant_id: &str) -> Result<Vec<User>, DbErr> {
    dashboard_user::Entity::find()
        .filter(dashboard_user::Column::MerchantId.eq(merchant_id))
        .order_by_asc(dashboard_user::Column::CreatedAt)
        .all(db)
        .await
}

/// Replaces a user's password hash and revokes every session and every unused reset link
/// of the user, in `db`'s transaction.
pub async fn set_password(
    db: &impl ConnectionTrait,
    user_id: &str,
    hash: &str,
    now: OffsetDateTime,
) -> Result<(), DbErr> {
    dashboard_user::Entity::update_many()
        .col_expr(dashboard_user::Column::PasswordHash, Expr::value(hash))
        .col_expr(dashboard_user::Column::PasswordChangedAt, Expr::value(now))
        .filter(dashboard_user::Column::Id.eq(user_id))
        .exec(db)
        .await?;
    super::links::revoke_resets_of(db, user_id, now).await?;
    revoke_sessions_of(db, user_id, now).await.map(|_| ())
}

/// Stores a new session.
pub async fn insert_session(db: &impl ConnectionTrait, s: Session) -> Result<(), DbErr> {
    dashboard_session::Entity::insert(dashboard_session::ActiveModel {
        id: Set(s.id),
        user_id: Set(s.user_id),
        merchant_id: Set(s.merchant_id),
        mode: Set(s.mode),
        created_at: Set(s.created_at),
        last_seen_at: Set(s.last_seen_at),
        expires_at: Set(s.expires_at),
        revoked_at: Set(s.revoked_at),
    })
    .exec_without_returning(db)
    .await
    .map(|_| ())
}

/// A session by the hash of its token, with its user; revoked and expired ones included
/// (the caller decides).
pub async fn find_session(
    db: &impl ConnectionTrait,
    id: &str,
) -> Result<Option<(Session, User)>, DbErr> {
    let Some(session) = dashboard_session::Entity::find_by_id(id).one(db).await? else {
        return Ok(None);
    };
    let user = find_user(db, &session.merchant_id, &session.user_id).await?;
    Ok(user.map(|u| (session, u)))
}

/// Records that a session was used and pushes its idle expiry to `expires_at`.
pub async fn touch_session(
    db: &impl ConnectionTrait,
    id: &str,
    now: OffsetDateTime,
    expires_at: OffsetDateTime,
) -> Result<(), DbErr> {
    dashboard_session::Entity::update_many()
        .col_expr(dashboard_session::Column::LastSeenAt, Expr::value(now))
        .col_expr(
            dashboard_session::Column::ExpiresAt,
            Expr::value(expires_at),
        )
        .filter(dashboard_session::Column::Id.eq(id))
        .filter(dashboard_session::Column::RevokedAt.is_null())
        .exec(db)
        .await
        .map(|_| ())
}

/// Switches a session between test and live data.
pub async fn set_session_mode(
    db: &impl ConnectionTrait,
    id: &str,
    mode: Mode,
) -> Result<(), DbErr> {
    dashboard_session::Entity::update_many()
        .col_expr(dashboard_session::Column::Mode, Expr::value(AsText(mode)))
        .filter(dashboard_session::Column::Id.eq(id))
        .exec(db)
        .await
        .map(|_| ())
}

/// Revokes one session.
pub async fn revoke_session(
    db: &impl ConnectionTrait,
    id: &str,
    now: OffsetDateTime,
) -> Result<(), DbErr> {
    dashboard_session::Entity::update_many()
        .col_expr(dashboard_session::Column::RevokedAt, Expr::value(now))
        .filter(dashboard_session::Column::Id.eq(id))
        .filter(dashboard_session::Column::RevokedAt.is_null())
        .exec(db)
        .await
        .map(|_| ())
}

/// Revokes every live session of a user; returns how many.
pub async fn revoke_sessions_of(
    db: &impl ConnectionTrait,
    user_id: &str,
    now: OffsetDateTime,
) -> Result<u64, DbErr> {
    dashboard_session::Entity::update_many()
        .col_expr(dashboard_session::Column::RevokedAt, Expr::value(now))
        .filter(dashboard_session::Column::UserId.eq(user_id))
        .filter(dashboard_session::Column::RevokedAt.is_null())
        .exec(db)
        .await
        .map(|r| r.rows_affected)
}

/// Sets a merchant's user's role and disabled flag; revokes every session of the user
/// when it is disabled. Returns false when the user is not the merchant's.
pub async fn set_role(
    db: &impl ConnectionTrait,
    merchant_id: &str,
    user_id: &str,
    role: dashboard_user::Role,
    disabled: bool,
    now: OffsetDateTime,
) -> Result<bool, DbErr> {
    let done = dashboard_user::Entity::update_many()
        .col_expr(dashboard_user::Column::Role, Expr::value(role))
        .col_expr(dashboard_user::Column::Disabled, Expr::value(disabled))
        .filter(dashboard_user::Column::Id.eq(user_id))
        .filter(dashboard_user::Column::MerchantId.eq(merchant_id))
        .exec(db)
        .await?
        .rows_affected
        == 1;
    if done && disabled {
        revoke_sessions_of(db, user_id, now).await?;
    }
    Ok(done)
}

/// The addresses of a merchant's enabled users of these roles, oldest account first.
pub async fn addresses_of(
    db: &impl ConnectionTrait,
    merchant_id: &str,
    roles: &[dashboard_user::Role],
) -> Result<Vec<String>, DbErr> {
    Ok(dashboard_user::Entity::find()
        .filter(dashboard_user::Column::MerchantId.eq(merchant_id))
        .filter(dashboard_user::Column::Role.is_in(roles.iter().copied()))
        .filter(dashboard_user::Column::Disabled.eq(false))
        .order_by_asc(dashboard_user::Column::CreatedAt)
        .all(db)
        .await?
        .into_iter()
        .map(|u| u.email)
        .collect())
}

/// Stores a pending enrolment's sealed secret unless the user already has one (enrolled or
/// pending); returns whether it was stored. Two pages opened at once keep the first secret.
pub async fn offer_totp_secret(
    db: &impl ConnectionTrait,
    user_id: &str,
    sealed: &str,
) -> Result<bool, DbErr> {
    Ok(dashboard_user::Entity::update_many()
        .col_expr(dashboard_user::Column::TotpSecret, Expr::value(sealed))
        .filter(dashboard_user::Column::Id.eq(user_id))
        .filter(dashboard_user::Column::TotpSecret.is_null())
        .exec(db)
        .await?
        .rows_affected
        == 1)
}

/// Switches the second factor on for the pending secret `sealed` (the one the code was
/// checked against), remembering the code's time step; false when it is already on or the
/// pending secret changed meanwhile.
pub async fn enable_totp(
    db: &impl ConnectionTrait,
    user_id: &str,
    sealed: &str,
    step: i64,
    now: OffsetDateTime,
) -> Result<bool, DbErr> {
    Ok(dashboard_user::Entity::update_many()
        .col_expr(dashboard_user::Column::TotpEnabledAt, Expr::value(now))
        .col_expr(dashboard_user::Column::TotpLastStep, Expr::value(step))
        .filter(dashboard_user::Column::Id.eq(user_id))
        .filter(dashboard_user::Column::TotpSecret.eq(sealed))
        .filter(dashboard_user::Column::TotpEnabledAt.is_null())
        .exec(db)
        .await?
        .rows_affected
        == 1)
}

/// Accepts a code's time step once: true when `step` is later than every step accepted
/// before. Of two requests with the same code at once, one gets true.
pub async fn accept_totp_step(
    db: &impl ConnectionTrait,
    user_id: &str,
    step: i64,
) -> Result<bool, DbErr> {
    Ok(dashboard_user::Entity::update_many()
        .col_expr(dashboard_user::Column::TotpLastStep, Expr::value(step))
        .filter(dashboard_user::Column::Id.eq(user_id))
        .filter(dashboard_user::Column::TotpEnabledAt.is_not_null())
        .filter(
            sea_orm::Condition::any()
                .add(dashboard_user::Column::TotpLastStep.is_null())
                .add(dashboard_user::Column::TotpLastStep.lt(step)),
        )
        .exec(db)
        .await?
        .rows_affected
        == 1)
}

/// Switches the second factor off: forgets the secret and the recovery codes.
pub async fn disable_totp(db: &impl ConnectionTrait, user_id: &str) -> Result<(), DbErr> {
    dashboard_user::Entity::update_many()
        .col_expr(
            dashboard_user::Column::TotpSecret,
            Expr::value(Option::<String>::None),
        )
        .col_expr(
            dashboard_user::Column::TotpEnabledAt,
            Expr::value(Option::<OffsetDateTime>::None),
        )
        .col_expr(
            dashboard_user::Column::TotpLastStep,
            Expr::value(Option::<i64>::None),
        )
        .filter(dashboard_user::Column::Id.eq(user_id))
        .exec(db)
        .await?;
    delete_recovery_codes(db, user_id).await
}

/// Deletes every recovery code of a user.
pub async fn delete_recovery_codes(db: &impl ConnectionTrait, user_id: &str) -> Result<(), DbErr> {
    dashboard_recovery_code::Entity::delete_many()
        .filter(dashboard_recovery_code::Column::UserId.eq(user_id))
        .exec(db)
        .await
        .map(|_| ())
}

/// Stores a user's new recovery codes (their hashes).
pub async fn insert_recovery_codes(
    db: &impl ConnectionTrait,
    codes: Vec<RecoveryCode>,
) -> Result<(), DbErr> {
    dashboard_recovery_code::Entity::insert_many(codes.into_iter().map(|c| {
        dashboard_recovery_code::ActiveModel {
            id: Set(c.id),
            user_id: Set(c.user_id),
            code_hash: Set(c.code_hash),
            created_at: Set(c.created_at),
            used_at: Set(c.used_at),
        }
    }))
    .exec_without_returning(db)
    .await
    .map(|_| ())
}

/// Spends one unused recovery code of a user; false when there is none with this hash.
/// Of two requests with the same code at once, one gets true.
pub async fn use_recovery_code(
    db: &impl ConnectionTrait,
    user_id: &str,
    code_hash: &str,
    now: OffsetDateTime,
) -> Result<bool, DbErr> {
    Ok(dashboard_recovery_code::Entity::update_many()
        .col_expr(dashboard_recovery_code::Column::UsedAt, Expr::value(now))
        .filter(dashboard_recovery_code::Column::UserId.eq(user_id))
        .filter(dashboard_recovery_code::Column::CodeHash.eq(code_hash))
        .filter(dashboard_recovery_code::Column::UsedAt.is_null())
        .exec(db)
        .await?
        .rows_affected
        == 1)
}

/// How many unused recovery codes a user has left.
pub async fn recovery_codes_left(db: &impl ConnectionTrait, user_id: &str) -> Result<u64, DbErr> {
    use sea_orm::PaginatorTrait;
    dashboard_recovery_code::Entity::find()
        .filter(dashboard_recovery_code::Column::UserId.eq(user_id))
        .filter(dashboard_recovery_code::Column::UsedAt.is_null())
        .count(db)
        .await
}

/// Stores the state between a password and its second factor.
pub async fn insert_challenge(db: &impl ConnectionTrait, c: Challenge) -> Result<(), DbErr> {
    dashboard_challenge::Entity::insert(dashboard_challenge::ActiveModel {
        id: Set(c.id),
        user_id: Set(c.user_id),
        merchant_id: Set(c.merchant_id),
        created_at: Set(c.created_at),
        expires_at: Set(c.expires_at),
    })
    .exec_without_returning(db)
    .await
    .map(|_| ())
}

/// A live challenge (not expired at `now`) by the hash of its token, with its user.
pub async fn find_challenge(
    db: &impl ConnectionTrait,
    id: &str,
    now: OffsetDateTime,
) -> Result<Option<(Challenge, User)>, DbErr> {
    let Some(c) = dashboard_challenge::Entity::find_by_id(id)
        .filter(dashboard_challenge::Column::ExpiresAt.gt(now))
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    let user = find_user(db, &c.merchant_id, &c.user_id).await?;
    Ok(user.map(|u| (c, u)))
}

/// Deletes the challenges expired at `now` (abandoned second steps).
pub async fn purge_expired_challenges(
    db: &impl ConnectionTrait,
    now: OffsetDateTime,
) -> Result<(), DbErr> {
    dashboard_challenge::Entity::delete_many()
        .filter(dashboard_challenge::Column::ExpiresAt.lte(now))
        .exec(db)
        .await
        .map(|_| ())
}

/// Ends a challenge; false when it was already gone, so that of two requests finishing
/// the same challenge at once only one opens a session.
pub async fn take_challenge(db: &impl ConnectionTrait, id: &str) -> Result<bool, DbErr> {
    Ok(dashboard_challenge::Entity::delete_many()
        .filter(dashboard_challenge::Column::Id.eq(id))
        .exec(db)
        .await?
        .rows_affected
        == 1)
}

/// Whether a merchant requires a second factor of every back-office user.
pub async fn team_requires_two_factor(
    db: &impl ConnectionTrait,
    merchant_id: &str,
) -> Result<bool, DbErr> {
    Ok(super::entities::merchant::Entity::find_by_id(merchant_id)
        .one(db)
        .await?
        .is_some_and(|m| m.require_two_factor))
}

/// Sets whether a merchant requires a second factor of every back-office user.
pub async fn set_team_requires_two_factor(
    db: &impl ConnectionTrait,
    merchant_id: &str,
    required: bool,
) -> Result<(), DbErr> {
    use super::entities::merchant;
    merchant::Entity::update_many()
        .col_expr(merchant::Column::RequireTwoFactor, Expr::value(required))
        .filter(merchant::Column::Id.eq(merchant_id))
        .exec(db)
        .await
        .map(|_| ())
}
