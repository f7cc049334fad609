//! Merchants and their API keys.
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, Set,
};
use time::OffsetDateTime;

use super::entities::{api_key, merchant};

/// Inserts a merchant.
pub async fn insert_merchant(
    db: &impl ConnectionTrait,
    m: merchant::Model,
) -> Result<(), sea_orm::DbErr> {
    merchant::ActiveModel {
        id: Set(m.id),
        name: Set(m.name),
        commission_bps: Set(m.commission_bps),
        hold_period_seconds: Set(m.hold_period_seconds),
        pay_limit_per_client: Set(m.pay_limit_per_client),
        pay_limit_per_key: Set(m.pay_limit_per_key),
        check_limit: Set(m.check_limit),
        api_limit_per_key: Set(m.api_limit_per_key),
        status: Set(m.status),
        notify_email: Set(m.notify_email),
        require_two_factor: Set(m.require_two_factor),
        created_at: Set(m.created_at),
    }
    .insert(db)
    .await?;
    Ok(())
}

/// Inserts an API key row (hash, prefix and last4 only).
pub async fn insert_key(
    db: &impl ConnectionTrait,
    k: api_key::Model,
) -> Result<(), sea_orm::DbErr> {
    api_key::ActiveModel {
        id: Set(k.id),
        merchant_id: Set(k.merchant_id),
        kind: Set(k.kind),
        mode: Set(k.mode),
        key_hash: Set(k.key_hash),
        prefix: Set(k.prefix),
        last4: Set(k.last4),
        created_at: Set(k.created_at),
        expires_at: Set(k.expires_at),
        revoked_at: Set(k.revoked_at),
    }
    .insert(db)
    .await?;
    Ok(())
}

/// The key with this hash and its merchant, if both exist (one round trip: every
/// authenticated request pays for this query).
pub async fn find_key_by_hash(
    db: &impl ConnectionTrait,
    hash: &str,
) -> Result<Option<(api_key::Model, merchant::Model)>, sea_orm::DbErr> {
    let found = api_key::Entity::find()
        .find_also_related(merchant::Entity)
        .filter(api_key::Column::KeyHash.eq(hash))
        .one(db)
        .await?;
    Ok(found.and_then(|(key, merchant)| merchant.map(|m| (key, m))))
}

/// One merchant by id.
pub async fn find_merchant(
    db: &impl ConnectionTrait,
    id: &str,
) -> Result<Option<merchant::Model>, sea_orm::DbErr> {
    merchant::Entity::find_by_id(id.to_owned()).one(db).await
}

/// Every merchant, oldest first.
pub async fn list_merchants(
    db: &impl ConnectionTrait,
) -> Result<Vec<merchant::Model>, sea_orm::DbErr> {
    merchant::Entity::find()
        .order_by_asc(merchant::Column::CreatedAt)
        .all(db)
        .await
}

/// Keys of one merchant.
pub async fn list_keys(
    db: &impl ConnectionTrait,
    merchant_id: &str,
) -> Result<Vec<api_key::Model>, sea_orm::DbErr> {
    api_key::Entity::find()
        .filter(api_key::Column::MerchantId.eq(merchant_id))
        .order_by_asc(api_key::Column::CreatedAt)
        .all(db)
        .await
}

/// Marks a key revoked now.
pub async fn revoke_key(
    db: &impl ConnectionTrait,
    key_id: &str,
    now: OffsetDateTime,
) -> Result<bool, sea_orm::DbErr> {
    let res = api_key::Entity::update_many()
        .col_expr(
            api_key::Column::RevokedAt,
            sea_orm::sea_query::Expr::value(now),
        )
        .filter(api_key::Column::Id.eq(key_id))
        .filter(api_key::Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    Ok(res.rows_affected == 1)
}

/// Sets how long a merchant's holds last; false when there is no such merchant.
/// Sets a merchant's limit overrides (`None`: back to the server's default). False when
/// there is no such merchant.
pub async fn set_rate_limits(
    db: &impl ConnectionTrait,
    merchant_id: &str,
    pay_per_client: Option<i32>,
    pay_per_key: Option<i32>,
    checks: Option<i32>,
    api_per_key: Option<i32>,
) -> Result<bool, sea_orm::DbErr> {
    use sea_orm::sea_query::Expr;
    let res = merchant::Entity::update_many()
        .col_expr(
            merchant::Column::PayLimitPerClient,
            Expr::value(pay_per_client),
        )
        .col_expr(merchant::Column::PayLimitPerKey, Expr::value(pay_per_key))
        .col_expr(merchant::Column::CheckLimit, Expr::value(checks))
        .col_expr(merchant::Column::ApiLimitPerKey, Expr::value(api_per_key))
        .filter(merchant::Column::Id.eq(merchant_id))
        .exec(db)
        .await?;
    Ok(res.rows_affected == 1)
}

/// Sets how long a merchant's holds last. False when there is no such merchant.
pub async fn set_hold_period(
    db: &impl ConnectionTrait,
    merchant_id: &str,
    seconds: i64,
) -> Result<bool, sea_orm::DbErr> {
    let res = merchant::Entity::update_many()
        .col_expr(
            merchant::Column::HoldPeriodSeconds,
            sea_orm::sea_query::Expr::value(seconds),
        )
        .filter(merchant::Column::Id.eq(merchant_id))
        .exec(db)
        .await?;
    Ok(res.rows_affected == 1)
}

/// Sets (or clears) where a merchant's notification emails go; false when there is no
/// such merchant.
pub async fn set_notify_email(
    db: &impl ConnectionTrait,
    merchant_id: &str,
    email: Option<&str>,
) -> Result<bool, sea_orm::DbErr> {
    let res = merchant::Entity::update_many()
        .col_expr(
            merchant::Column::NotifyEmail,
            sea_orm::sea_query::Expr::value(email.map(str::to_owned)),
        )
        .filter(merchant::Column::Id.eq(merchant_id))
        .exec(db)
        .await?;
    Ok(res.rows_affected == 1)
}
