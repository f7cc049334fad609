//! The activity log: appended by the functions that act, read by the back-office.
use sea_orm::{
    ActiveValue::{NotSet, Set},
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};

use super::entities::activity::{self, Model as Entry};

/// Appends one entry (its id is assigned).
pub async fn append(db: &impl ConnectionTrait, e: Entry) -> Result<(), DbErr> {
    activity::Entity::insert(activity::ActiveModel {
        id: NotSet,
        merchant_id: Set(e.merchant_id),
        mode: Set(e.mode),
        actor: Set(e.actor),
        action: Set(e.action),
        target: Set(e.target),
        detail: Set(e.detail),
        created_at: Set(e.created_at),
    })
    .exec_without_returning(db)
    .await
    .map(|_| ())
}

/// A page of a merchant's entries of one mode and those of no mode, newest first, with
/// ids below `before`, optionally of one action.
pub async fn list(
    db: &impl ConnectionTrait,
    merchant_id: &str,
    mode: &str,
    action: Option<&str>,
    before: Option<i64>,
    limit: u64,
) -> Result<Vec<Entry>, DbErr> {
    let mut q = activity::Entity::find()
        .filter(activity::Column::MerchantId.eq(merchant_id))
        .filter(
            activity::Column::Mode
                .eq(mode)
                .or(activity::Column::Mode.is_null()),
        );
    if let Some(a) = action {
        q = q.filter(activity::Column::Action.eq(a));
    }
    if let Some(b) = before {
        q = q.filter(activity::Column::Id.lt(b));
    }
    q.order_by_desc(activity::Column::Id)
        .limit(limit)
        .all(db)
        .await
}
