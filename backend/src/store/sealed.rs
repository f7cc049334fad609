//! Rows that hold text sealed under ENCRYPTION_KEY, read and swapped for re-encryption.
use sea_orm::{
    sea_query::Expr, ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, QueryFilter,
    QueryOrder,
};

use super::entities::{dashboard_user, idempotency_key, webhook_endpoint};

/// Every back-office user's sealed TOTP secret (enrolled or pending), as (user id, sealed).
pub async fn totp_secrets(db: &impl ConnectionTrait) -> Result<Vec<(String, String)>, DbErr> {
    Ok(dashboard_user::Entity::find()
        .filter(dashboard_user::Column::TotpSecret.is_not_null())
        .order_by_asc(dashboard_user::Column::Id)
        .all(db)
        .await?
        .into_iter()
        .filter_map(|u| u.totp_secret.map(|s| (u.id, s)))
        .collect())
}

/// Replaces a user's sealed TOTP secret if it is still `old` (turned off or renewed in
/// between wins); false when it changed.
pub async fn replace_totp_secret(
    db: &impl ConnectionTrait,
    user_id: &str,
    old: &str,
    new: &str,
) -> Result<bool, DbErr> {
    let res = dashboard_user::Entity::update_many()
        .col_expr(dashboard_user::Column::TotpSecret, Expr::value(new))
        .filter(dashboard_user::Column::Id.eq(user_id))
        .filter(dashboard_user::Column::TotpSecret.eq(old))
        .exec(db)
        .await?;
    Ok(res.rows_affected == 1)
}

/// Every webhook endpoint (their secrets are always sealed).
pub async fn endpoints(db: &impl ConnectionTrait) -> Result<Vec<webhook_endpoint::Model>, DbErr> {
    webhook_endpoint::Entity::find()
        .order_by_asc(webhook_endpoint::Column::Id)
        .all(db)
        .await
}

/// Replaces one sealed secret of an endpoint if it is still `old` (a rotation in between
/// wins); false when it changed.
pub async fn replace_endpoint_secret(
    db: &impl ConnectionTrait,
    id: &str,
    previous: bool,
    old: &str,
    new: &str,
) -> Result<bool, DbErr> {
    let column = if previous {
        webhook_endpoint::Column::PreviousSecretCiphertext
    } else {
        webhook_endpoint::Column::SecretCiphertext
    };
    let res = webhook_endpoint::Entity::update_many()
        .col_expr(column, Expr::value(new))
        .filter(webhook_endpoint::Column::Id.eq(id))
        .filter(column.eq(old))
        .exec(db)
        .await?;
    Ok(res.rows_affected == 1)
}

/// Stored idempotent answers that are sealed (`v1:`/`v2:`); plain JSON ones are skipped.
pub async fn sealed_idempotency(
    db: &impl ConnectionTrait,
) -> Result<Vec<idempotency_key::Model>, DbErr> {
    idempotency_key::Entity::find()
        .filter(
            Condition::any()
                .add(idempotency_key::Column::ResponseBody.starts_with("v1:"))
                .add(idempotency_key::Column::ResponseBody.starts_with("v2:")),
        )
        .order_by_asc(idempotency_key::Column::Id)
        .all(db)
        .await
}

/// Replaces a sealed idempotent answer if it is still `old`; false when it changed.
pub async fn replace_idempotency_body(
    db: &impl ConnectionTrait,
    id: i64,
    old: &str,
    new: &str,
) -> Result<bool, DbErr> {
    let res = idempotency_key::Entity::update_many()
        .col_expr(idempotency_key::Column::ResponseBody, Expr::value(new))
        .filter(idempotency_key::Column::Id.eq(id))
        .filter(idempotency_key::Column::ResponseBody.eq(old))
        .exec(db)
        .await?;
    Ok(res.rows_affected == 1)
}
