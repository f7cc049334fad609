//! Stored answers of Idempotency-Keys, scoped by merchant, mode and operation.
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, Set};
use time::OffsetDateTime;

use super::entities::idempotency_key;

/// Which stored answer: the key as sent, within one merchant, mode and operation.
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    pub merchant_id: &'a str,
    pub mode: &'a str,
    pub operation: &'a str,
    pub key: &'a str,
}

/// The stored answer for a key, if not expired.
pub async fn find(
    db: &impl ConnectionTrait,
    scope: Scope<'_>,
    now: OffsetDateTime,
) -> Result<Option<idempotency_key::Model>, DbErr> {
    use sea_orm::{QuerySelect, QueryTrait};
    static FIND: super::cached::CachedSql = super::cached::CachedSql::new();
    let statement = FIND.statement(
        db.get_database_backend(),
        vec![
            scope.merchant_id.into(),
            scope.mode.into(),
            scope.operation.into(),
            scope.key.into(),
            1u64.into(),
        ],
        |backend| {
            idempotency_key::Entity::find()
                .filter(idempotency_key::Column::MerchantId.eq(scope.merchant_id))
                .filter(idempotency_key::Column::Mode.eq(scope.mode))
                .filter(idempotency_key::Column::Operation.eq(scope.operation))
                .filter(idempotency_key::Column::Key.eq(scope.key))
                .limit(1)
                .build(backend)
        },
    );
    let row = idempotency_key::Entity::find()
        .from_raw_sql(statement)
        .one(db)
        .await?;
    Ok(row.filter(|r| r.expires_at > now))
}

/// Stores an answer, replacing an expired record of the same key. A live record of the
/// key makes this fail with the unique violation of `uq_idempotency_scope`.
pub async fn insert(db: &impl ConnectionTrait, row: idempotency_key::Model) -> Result<(), DbErr> {
    idempotency_key::Entity::delete_many()
        .filter(idempotency_key::Column::MerchantId.eq(row.merchant_id.clone()))
        .filter(idempotency_key::Column::Mode.eq(row.mode))
        .filter(idempotency_key::Column::Operation.eq(row.operation.clone()))
        .filter(idempotency_key::Column::Key.eq(row.key.clone()))
        .filter(idempotency_key::Column::ExpiresAt.lte(row.created_at))
        .exec(db)
        .await?;
    idempotency_key::Entity::insert(idempotency_key::ActiveModel {
        id: sea_orm::NotSet,
        merchant_id: Set(row.merchant_id),
        mode: Set(row.mode),
        operation: Set(row.operation),
        key: Set(row.key),
        request_hash: Set(row.request_hash),
        response_status: Set(row.response_status),
        response_body: Set(row.response_body),
        created_at: Set(row.created_at),
        expires_at: Set(row.expires_at),
    })
    .exec_without_returning(db)
    .await?;
    Ok(())
}

/// Deletes expired records; returns how many.
pub async fn purge(db: &impl ConnectionTrait, now: OffsetDateTime) -> Result<u64, DbErr> {
    let res = idempotency_key::Entity::delete_many()
        .filter(idempotency_key::Column::ExpiresAt.lte(now))
        .exec(db)
        .await?;
    Ok(res.rows_affected)
}
