//! Transactions and their redemptions.
use sea_orm::{
    sea_query::Expr, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, Set,
};

use super::entities::{redemption, transaction, voucher};

/// Inserts a transaction row. A concurrent payment of the same order waits on the unique
/// index here and then fails with a unique violation, before touching any voucher.
pub async fn insert_transaction(
    db: &impl ConnectionTrait,
    t: transaction::Model,
) -> Result<(), DbErr> {
    transaction::Entity::insert(transaction::ActiveModel {
        id: Set(t.id),
        merchant_id: Set(t.merchant_id),
        mode: Set(t.mode),
        order_id: Set(t.order_id),
        status: Set(t.status),
        currency: Set(t.currency),
        amount_minor: Set(t.amount_minor),
        commission_minor: Set(t.commission_minor),
        net_minor: Set(t.net_minor),
        refunded_minor: Set(t.refunded_minor),
        created_at: Set(t.created_at),
        hold_state: Set(t.hold_state),
        authorized_minor: Set(t.authorized_minor),
        hold_expires_at: Set(t.hold_expires_at),
    })
    .exec_without_returning(db)
    .await?;
    Ok(())
}

/// Inserts the redemptions of one payment.
pub async fn insert_redemptions(
    db: &impl ConnectionTrait,
    rows: Vec<redemption::Model>,
) -> Result<(), DbErr> {
    redemption::Entity::insert_many(rows.into_iter().map(|r| redemption::ActiveModel {
        id: sea_orm::NotSet,
        transaction_id: Set(r.transaction_id),
        voucher_id: Set(r.voucher_id),
        position: Set(r.position),
        amount_minor: Set(r.amount_minor),
        balance_after_minor: Set(r.balance_after_minor),
        created_at: Set(r.created_at),
    }))
    .exec_without_returning(db)
    .await?;
    Ok(())
}

/// A merchant's transaction by id, within one mode. Looked up by primary key alone and
/// checked here: with a filter on merchant and mode too, the planner may pick the
/// merchant's time index and scan all of its transactions.
pub async fn find_transaction(
    db: &impl ConnectionTrait,
    merchant_id: &str,
    mode: &str,
    id: &str,
) -> Result<Option<transaction::Model>, DbErr> {
    use sea_orm::{QuerySelect, QueryTrait};
    static FIND: super::cached::CachedSql = super::cached::CachedSql::new();
    let statement = FIND.statement(
        db.get_database_backend(),
        vec![id.into(), 1u64.into()],
        |backend| {
            transaction::Entity::find_by_id(id.to_owned())
                .limit(1)
                .build(backend)
        },
    );
    Ok(transaction::Entity::find()
        .from_raw_sql(statement)
        .one(db)
        .await?
        .filter(|t| t.merchant_id == merchant_id && t.mode.0.as_str() == mode))
}

/// The join from a redemption to its voucher (for the voucher's last4).
fn redemption_to_voucher() -> sea_orm::RelationDef {
    redemption::Entity::belongs_to(voucher::Entity)
        .from(redemption::Column::VoucherId)
        .to(voucher::Column::Id)
        .into()
}

/// A merchant's transaction by id within one mode, with its redemption lines (last4 of the
/// voucher, amount taken, in the order applied): one statement, for verify.
pub async fn find_transaction_with_lines(
    db: &impl ConnectionTrait,
    merchant_id: &str,
    mode: &str,
    id: &str,
) -> Result<Option<(transaction::Model, Vec<(String, i64)>)>, DbErr> {
    use sea_orm::{FromQueryResult, JoinType, QuerySelect, QueryTrait};
    static FIND: super::cached::CachedSql = super::cached::CachedSql::new();
    let statement = FIND.statement(
        db.get_database_backend(),
        vec![id.into(), merchant_id.into(), mode.into()],
        |backend| {
            let to_lines: sea_orm::RelationDef =
                transaction::Entity::belongs_to(redemption::Entity)
                    .from(transaction::Column::Id)
                    .to(redemption::Column::TransactionId)
                    .into();
            transaction::Entity::find()
                .column_as(voucher::Column::Last4, "line_last4")
                .column_as(redemption::Column::AmountMinor, "line_amount")
                .join(JoinType::LeftJoin, to_lines)
                .join(JoinType::LeftJoin, redemption_to_voucher())
                .filter(transaction::Column::Id.eq(id))
                .filter(transaction::Column::MerchantId.eq(merchant_id))
                .filter(transaction::Column::Mode.eq(mode))
                .order_by_asc(redemption::Column::Position)
                .build(backend)
        },
    );
    let rows = db.query_all(statement).await?;
    let Some(first) = rows.first() else {
        return Ok(None);
    };
    let transaction = transaction::Model::from_query_result(first, "")?;
    let mut lines = Vec::with_capacity(rows.len());
    for row in &rows {
        let last4: Option<String> = row.try_get("", "line_last4")?;
        let amount: Option<i64> = row.try_get("", "line_amount")?;
        if let (Some(last4), Some(amount)) = (last4, amount) {
            lines.push((last4, amount));
        }
    }
    Ok(Some((transaction, lines)))
}

/// (last4 of the voucher, amount taken) per voucher of a transaction, in the order applied.
pub async fn redemption_lines(
    db: &impl ConnectionTrait,
    transaction_id: &str,
) -> Result<Vec<(String, i64)>, DbErr> {
    use sea_orm::QueryTrait;
    use sea_orm::{JoinType, QuerySelect};
    static LINES: super::cached::CachedSql = super::cached::CachedSql::new();
    let statement = LINES.statement(
        db.get_database_backend(),
        vec![transaction_id.into()],
        |backend| {
            redemption::Entity::find()
                .select_only()
                .column(voucher::Column::Last4)
                .column(redemption::Column::AmountMinor)
                .join(JoinType::InnerJoin, redemption_to_voucher())
                .filter(redemption::Column::TransactionId.eq(transaction_id))
                .order_by_asc(redemption::Column::Position)
                .build(backend)
        },
    );
    db.query_all(statement)
        .await?
        .iter()
        .map(|row| row.try_get_many_by_index::<(String, i64)>())
        .collect()
}

/// A merchant's transaction by order id, within one mode.
pub async fn find_transaction_by_order(
    db: &impl ConnectionTrait,
    merchant_id: &str,
    mode: &str,
    order_id: &str,
) -> Result<Option<transaction::Model>, DbErr> {
    transaction::Entity::find()
        .filter(transaction::Column::MerchantId.eq(merchant_id))
        .filter(transaction::Column::Mode.eq(mode))
        .filter(transaction::Column::OrderId.eq(order_id))
        // A released hold leaves its order id free: the live payment, if any, comes first.
        .order_by_desc(Expr::cust(
            "CASE WHEN hold_state IS NULL OR hold_state IN ('authorized', 'captured') THEN 1 ELSE 0 END",
        ))
        .order_by_desc(transaction::Column::CreatedAt)
        .one(db)
        .await
}

/// Redemptions of a transaction, in the order the vouchers were applied.
pub async fn redemptions_of(
    db: &impl ConnectionTrait,
    transaction_id: &str,
) -> Result<Vec<redemption::Model>, DbErr> {
    redemption::Entity::find()
        .filter(redemption::Column::TransactionId.eq(transaction_id))
        .order_by_asc(redemption::Column::Position)
        .all(db)
        .await
}
