//! Remembered-voucher tokens and checkout settings: the widget's rows.
use sea_orm::{
    sea_query::{Expr, OnConflict},
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, Set,
};
use time::OffsetDateTime;

use super::entities::{checkout_settings, remembered_voucher};

/// Inserts a token row (its hash, never the token).
pub async fn insert_token(
    db: &impl ConnectionTrait,
    row: remembered_voucher::Model,
) -> Result<(), DbErr> {
    remembered_voucher::Entity::insert(remembered_voucher::ActiveModel {
        id: sea_orm::NotSet,
        token_hash: Set(row.token_hash),
        voucher_id: Set(row.voucher_id),
        merchant_id: Set(row.merchant_id),
        mode: Set(row.mode),
        last4: Set(row.last4),
        created_at: Set(row.created_at),
        expires_at: Set(row.expires_at),
        revoked_at: Set(row.revoked_at),
        last_used_at: Set(row.last_used_at),
    })
    .exec_without_returning(db)
    .await?;
    Ok(())
}

/// Tokens by hash that may still pay for this merchant and mode (not revoked, not expired),
/// in no particular order; callers match them back by hash.
pub async fn usable_tokens(
    db: &impl ConnectionTrait,
    hashes: &[String],
    merchant_id: &str,
    mode: &str,
    now: OffsetDateTime,
) -> Result<Vec<remembered_voucher::Model>, DbErr> {
    remembered_voucher::Entity::find()
        .filter(remembered_voucher::Column::TokenHash.is_in(hashes.iter().cloned()))
        .filter(remembered_voucher::Column::MerchantId.eq(merchant_id))
        .filter(remembered_voucher::Column::Mode.eq(mode))
        .filter(remembered_voucher::Column::RevokedAt.is_null())
        .filter(remembered_voucher::Column::ExpiresAt.gt(now))
        .order_by_asc(remembered_voucher::Column::Id)
        .all(db)
        .await
}

/// Records that these tokens paid, for operators deciding what to revoke.
pub async fn touch_tokens(
    db: &impl ConnectionTrait,
    ids: &[i64],
    now: OffsetDateTime,
) -> Result<(), DbErr> {
    if ids.is_empty() {
        return Ok(());
    }
    remembered_voucher::Entity::update_many()
        .col_expr(remembered_voucher::Column::LastUsedAt, Expr::value(now))
        .filter(remembered_voucher::Column::Id.is_in(ids.iter().copied()))
        .exec(db)
        .await?;
    Ok(())
}

/// Revokes the tokens with these hashes at this merchant and mode; returns how many changed.
pub async fn revoke_by_hashes(
    db: &impl ConnectionTrait,
    hashes: &[String],
    merchant_id: &str,
    mode: &str,
    now: OffsetDateTime,
) -> Result<u64, DbErr> {
    let res = remembered_voucher::Entity::update_many()
        .col_expr(remembered_voucher::Column::RevokedAt, Expr::value(now))
        .filter(remembered_voucher::Column::TokenHash.is_in(hashes.iter().cloned()))
        .filter(remembered_voucher::Column::MerchantId.eq(merchant_id))
        .filter(remembered_voucher::Column::Mode.eq(mode))
        .filter(remembered_voucher::Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    Ok(res.rows_affected)
}

/// Revokes every live token of a voucher, wherever it was remembered.
pub async fn revoke_for_voucher(
    db: &impl ConnectionTrait,
    voucher_id: i64,
    now: OffsetDateTime,
) -> Result<u64, DbErr> {
    let res = remembered_voucher::Entity::update_many()
        .col_expr(remembered_voucher::Column::RevokedAt, Expr::value(now))
        .filter(remembered_voucher::Column::VoucherId.eq(voucher_id))
        .filter(remembered_voucher::Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    Ok(res.rows_affected)
}

/// The settings of a merchant in one mode, if ever saved.
pub async fn find_settings(
    db: &impl ConnectionTrait,
    merchant_id: &str,
    mode: &str,
) -> Result<Option<checkout_settings::Model>, DbErr> {
    checkout_settings::Entity::find()
        .filter(checkout_settings::Column::MerchantId.eq(merchant_id))
        .filter(checkout_settings::Column::Mode.eq(mode))
        .one(db)
        .await
}

/// Inserts or replaces the settings of a merchant in one mode.
pub async fn upsert_settings(
    db: &impl ConnectionTrait,
    row: checkout_settings::Model,
) -> Result<(), DbErr> {
    checkout_settings::Entity::insert(checkout_settings::ActiveModel {
        merchant_id: Set(row.merchant_id),
        mode: Set(row.mode),
        require_signature: Set(row.require_signature),
        allowed_origins: Set(row.allowed_origins),
        signing_generation: Set(row.signing_generation),
        updated_at: Set(row.updated_at),
    })
    .on_conflict(
        OnConflict::columns([
            checkout_settings::Column::MerchantId,
            checkout_settings::Column::Mode,
        ])
        .update_columns([
            checkout_settings::Column::RequireSignature,
            checkout_settings::Column::AllowedOrigins,
            checkout_settings::Column::SigningGeneration,
            checkout_settings::Column::UpdatedAt,
        ])
        .to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    Ok(())
}
