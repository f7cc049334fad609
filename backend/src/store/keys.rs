//! API key management by the merchant: listing, expiry (rolling) and revocation within a mode.
use sea_orm::{
    sea_query::Expr, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
};
use time::OffsetDateTime;

use super::entities::api_key;

/// Keys of a merchant in one mode, oldest first.
pub async fn list_in_mode(
    db: &impl ConnectionTrait,
    merchant_id: &str,
    mode: &str,
) -> Result<Vec<api_key::Model>, DbErr> {
    api_key::Entity::find()
        .filter(api_key::Column::MerchantId.eq(merchant_id))
        .filter(api_key::Column::Mode.eq(mode))
        .order_by_asc(api_key::Column::CreatedAt)
        .order_by_asc(api_key::Column::Id)
        .all(db)
        .await
}

/// One key of a merchant in one mode.
pub async fn find_in_mode(
    db: &impl ConnectionTrait,
    merchant_id: &str,
    mode: &str,
    id: &str,
) -> Result<Option<api_key::Model>, DbErr> {
    api_key::Entity::find_by_id(id.to_owned())
        .filter(api_key::Column::MerchantId.eq(merchant_id))
        .filter(api_key::Column::Mode.eq(mode))
        .one(db)
        .await
}

/// Makes a key that has no end of life yet stop working at `at`; false if it is revoked
/// or already has one (was rolled). The condition is what lets only one of two
/// concurrent rolls of a key succeed.
pub async fn expire_at(
    db: &impl ConnectionTrait,
    id: &str,
    at: OffsetDateTime,
) -> Result<bool, DbErr> {
    let res = api_key::Entity::update_many()
        .col_expr(api_key::Column::ExpiresAt, Expr::value(at))
        .filter(api_key::Column::Id.eq(id))
        .filter(api_key::Column::RevokedAt.is_null())
        .filter(api_key::Column::ExpiresAt.is_null())
        .exec(db)
        .await?;
    Ok(res.rows_affected == 1)
}
