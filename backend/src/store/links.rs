//! Emailed back-office links: team invitations and password resets, found by the HMAC of
//! their token. Every change that spends or ends a link is one conditional UPDATE, so two
//! requests racing on one link cannot both use it.
use sea_orm::{
    sea_query::Expr, ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait,
    QueryFilter, QueryOrder,
};
use time::OffsetDateTime;

use super::entities::{
    invitation::{self, Model as Invitation},
    password_reset::{self, Model as PasswordReset},
};

/// Stores a new invitation.
pub async fn insert_invitation(db: &impl ConnectionTrait, i: Invitation) -> Result<(), DbErr> {
    invitation::Entity::insert(invitation::ActiveModel {
        id: Set(i.id),
        merchant_id: Set(i.merchant_id),
        email: Set(i.email),
        role: Set(i.role),
        invited_by: Set(i.invited_by),
        token_hmac: Set(i.token_hmac),
        created_at: Set(i.created_at),
        expires_at: Set(i.expires_at),
        accepted_at: Set(i.accepted_at),
        accepted_user_id: Set(i.accepted_user_id),
        revoked_at: Set(i.revoked_at),
    })
    .exec_without_returning(db)
    .await
    .map(|_| ())
}

fn pending_invitation() -> sea_orm::Condition {
    sea_orm::Condition::all()
        .add(invitation::Column::AcceptedAt.is_null())
        .add(invitation::Column::RevokedAt.is_null())
}

/// A merchant's invitations neither accepted nor revoked (expired ones included), newest
/// first.
pub async fn pending_invitations(
    db: &impl ConnectionTrait,
    merchant_id: &str,
) -> Result<Vec<Invitation>, DbErr> {
    invitation::Entity::find()
        .filter(invitation::Column::MerchantId.eq(merchant_id))
        .filter(pending_invitation())
        .order_by_desc(invitation::Column::CreatedAt)
        .all(db)
        .await
}

/// One of a merchant's invitations.
pub async fn find_invitation(
    db: &impl ConnectionTrait,
    merchant_id: &str,
    id: &str,
) -> Result<Option<Invitation>, DbErr> {
    invitation::Entity::find_by_id(id)
        .filter(invitation::Column::MerchantId.eq(merchant_id))
        .one(db)
        .await
}

/// The invitation whose token has this HMAC, in any state.
pub async fn find_invitation_by_token(
    db: &impl ConnectionTrait,
    token_hmac: &str,
) -> Result<Option<Invitation>, DbErr> {
    invitation::Entity::find()
        .filter(invitation::Column::TokenHmac.eq(token_hmac))
        .one(db)
        .await
}

/// Revokes a pending invitation of the merchant; false when there is none by that id.
pub async fn revoke_invitation(
    db: &impl ConnectionTrait,
    merchant_id: &str,
    id: &str,
    now: OffsetDateTime,
) -> Result<bool, DbErr> {
    let r = invitation::Entity::update_many()
        .col_expr(invitation::Column::RevokedAt, Expr::value(now))
        .filter(invitation::Column::Id.eq(id))
        .filter(invitation::Column::MerchantId.eq(merchant_id))
        .filter(pending_invitation())
        .exec(db)
        .await?;
    Ok(r.rows_affected == 1)
}

/// Revokes every pending invitation of the merchant to `email` (a new one replaces them);
/// returns how many.
pub async fn revoke_invitations_to(
    db: &impl ConnectionTrait,
    merchant_id: &str,
    email: &str,
    now: OffsetDateTime,
) -> Result<u64, DbErr> {
    let r = invitation::Entity::update_many()
        .col_expr(invitation::Column::RevokedAt, Expr::value(now))
        .filter(invitation::Column::MerchantId.eq(merchant_id))
        .filter(invitation::Column::Email.eq(email))
        .filter(pending_invitation())
        .exec(db)
        .await?;
    Ok(r.rows_affected)
}

/// Gives a pending invitation a new token and expiry (the old link stops working); false
/// when it is no longer pending.
pub async fn renew_invitation(
    db: &impl ConnectionTrait,
    merchant_id: &str,
    id: &str,
    token_hmac: &str,
    expires_at: OffsetDateTime,
) -> Result<bool, DbErr> {
    let r = invitation::Entity::update_many()
        .col_expr(invitation::Column::TokenHmac, Expr::value(token_hmac))
        .col_expr(invitation::Column::ExpiresAt, Expr::value(expires_at))
        .filter(invitation::Column::Id.eq(id))
        .filter(invitation::Column::MerchantId.eq(merchant_id))
        .filter(pending_invitation())
        .exec(db)
        .await?;
    Ok(r.rows_affected == 1)
}

/// Spends an invitation for the user it created: true for exactly one caller, and only
/// while it is pending and unexpired.
pub async fn accept_invitation(
    db: &impl ConnectionTrait,
    id: &str,
    token_hmac: &str,
    user_id: &str,
    now: OffsetDateTime,
) -> Result<bool, DbErr> {
    let r = invitation::Entity::update_many()
        .col_expr(invitation::Column::AcceptedAt, Expr::value(now))
        .col_expr(invitation::Column::AcceptedUserId, Expr::value(user_id))
        .filter(invitation::Column::Id.eq(id))
        .filter(invitation::Column::TokenHmac.eq(token_hmac))
        .filter(invitation::Column::ExpiresAt.gt(now))
        .filter(pending_invitation())
        .exec(db)
        .await?;
    Ok(r.rows_affected == 1)
}

/// Stores a new password-reset link.
pub async fn insert_reset(db: &impl ConnectionTrait, r: PasswordReset) -> Result<(), DbErr> {
    password_reset::Entity::insert(password_reset::ActiveModel {
        id: Set(r.id),
        user_id: Set(r.user_id),
        merchant_id: Set(r.merchant_id),
        token_hmac: Set(r.token_hmac),
        created_at: Set(r.created_at),
        expires_at: Set(r.expires_at),
        used_at: Set(r.used_at),
        revoked_at: Set(r.revoked_at),
    })
    .exec_without_returning(db)
    .await
    .map(|_| ())
}

/// The reset link whose token has this HMAC, in any state.
pub async fn find_reset_by_token(
    db: &impl ConnectionTrait,
    token_hmac: &str,
) -> Result<Option<PasswordReset>, DbErr> {
    password_reset::Entity::find()
        .filter(password_reset::Column::TokenHmac.eq(token_hmac))
        .one(db)
        .await
}

/// Spends a reset link: true for exactly one caller, while it is unused, unrevoked and
/// unexpired.
pub async fn use_reset(
    db: &impl ConnectionTrait,
    id: &str,
    now: OffsetDateTime,
) -> Result<bool, DbErr> {
    let r = password_reset::Entity::update_many()
        .col_expr(password_reset::Column::UsedAt, Expr::value(now))
        .filter(password_reset::Column::Id.eq(id))
        .filter(password_reset::Column::UsedAt.is_null())
        .filter(password_reset::Column::RevokedAt.is_null())
        .filter(password_reset::Column::ExpiresAt.gt(now))
        .exec(db)
        .await?;
    Ok(r.rows_affected == 1)
}

/// Ends every unused reset link of a user; returns how many.
pub async fn revoke_resets_of(
    db: &impl ConnectionTrait,
    user_id: &str,
    now: OffsetDateTime,
) -> Result<u64, DbErr> {
    let r = password_reset::Entity::update_many()
        .col_expr(password_reset::Column::RevokedAt, Expr::value(now))
        .filter(password_reset::Column::UserId.eq(user_id))
        .filter(password_reset::Column::UsedAt.is_null())
        .filter(password_reset::Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    Ok(r.rows_affected)
}
