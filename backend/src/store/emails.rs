//! The email outbox: queued messages, the worker's claims and every attempt.
use sea_orm::{
    sea_query::Expr, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, Set, TransactionTrait,
};
use time::OffsetDateTime;

use super::entities::{
    email::{self, EmailStatus},
    email_attempt, merchant,
};
use super::outbox::{self, Queue};

/// A merchant's notification address, if it has one (None also when there is no such
/// merchant).
pub async fn notify_email_of(
    db: &impl ConnectionTrait,
    merchant_id: &str,
) -> Result<Option<String>, DbErr> {
    Ok(merchant::Entity::find_by_id(merchant_id.to_owned())
        .one(db)
        .await?
        .and_then(|m| m.notify_email))
}

/// Queues an email, due now (inside the caller's transaction). Returns its id.
pub async fn insert(
    db: &impl ConnectionTrait,
    merchant_id: Option<&str>,
    kind: &str,
    recipient: &str,
    params: serde_json::Value,
    now: OffsetDateTime,
) -> Result<i64, DbErr> {
    let res = email::Entity::insert(email::ActiveModel {
        id: sea_orm::NotSet,
        merchant_id: Set(merchant_id.map(str::to_owned)),
        kind: Set(kind.to_owned()),
        recipient: Set(recipient.to_owned()),
        params: Set(params),
        status: Set(EmailStatus::Pending),
        attempt_count: Set(0),
        next_attempt_at: Set(Some(now)),
        last_attempt_at: Set(None),
        sent_at: Set(None),
        created_at: Set(now),
    })
    .exec(db)
    .await?;
    Ok(res.last_insert_id)
}

/// Claims up to `limit` due emails until `lease_until` ([`outbox::claim_due`]).
pub async fn claim_due(
    db: &impl ConnectionTrait,
    now: OffsetDateTime,
    lease_until: OffsetDateTime,
    limit: u64,
) -> Result<Vec<i64>, DbErr> {
    outbox::claim_due(db, Queue::Emails, now, lease_until, limit).await
}

/// Hands claimed emails back at shutdown ([`outbox::release`]).
pub async fn release_claims(
    db: &impl ConnectionTrait,
    ids: &[i64],
    lease_until: OffsetDateTime,
    now: OffsetDateTime,
) -> Result<u64, DbErr> {
    outbox::release(db, Queue::Emails, ids, lease_until, now).await
}

/// One email.
pub async fn find(db: &impl ConnectionTrait, id: i64) -> Result<Option<email::Model>, DbErr> {
    email::Entity::find_by_id(id).one(db).await
}

/// What an attempt changed about its email.
#[derive(Debug, Clone)]
pub struct EmailUpdate {
    pub status: EmailStatus,
    pub next_attempt_at: Option<OffsetDateTime>,
}

/// Records one attempt and moves its email on, in one transaction. The attempt is always
/// kept (it happened); the email moves on only if no other worker recorded this attempt
/// number first (a slow worker whose lease ran out), so a late outcome never undoes a
/// newer one. False in that case.
pub async fn record_attempt(
    db: &impl TransactionTrait,
    attempt: email_attempt::Model,
    update: EmailUpdate,
) -> Result<bool, DbErr> {
    let tx = super::begin(db).await?;
    let number = attempt.attempt_number;
    let email_id = attempt.email_id;
    let started = attempt.started_at;
    email_attempt::Entity::insert(email_attempt::ActiveModel {
        id: sea_orm::NotSet,
        email_id: Set(attempt.email_id),
        attempt_number: Set(attempt.attempt_number),
        started_at: Set(attempt.started_at),
        duration_ms: Set(attempt.duration_ms),
        outcome: Set(attempt.outcome),
        error: Set(attempt.error),
    })
    .exec_without_returning(&tx)
    .await?;
    let sent_at = (update.status == EmailStatus::Sent).then_some(started);
    let moved = email::Entity::update_many()
        .col_expr(email::Column::Status, Expr::value(update.status))
        .col_expr(email::Column::AttemptCount, Expr::value(number))
        .col_expr(
            email::Column::NextAttemptAt,
            Expr::value(update.next_attempt_at),
        )
        .col_expr(email::Column::LastAttemptAt, Expr::value(started))
        .col_expr(email::Column::SentAt, Expr::value(sent_at))
        .filter(email::Column::Id.eq(email_id))
        .filter(email::Column::Status.eq(EmailStatus::Pending))
        .filter(email::Column::AttemptCount.eq(number - 1))
        .exec(&tx)
        .await?;
    tx.commit().await?;
    Ok(moved.rows_affected == 1)
}

/// Attempts of one email, oldest first.
pub async fn attempts_of(
    db: &impl ConnectionTrait,
    email_id: i64,
) -> Result<Vec<email_attempt::Model>, DbErr> {
    email_attempt::Entity::find()
        .filter(email_attempt::Column::EmailId.eq(email_id))
        .order_by_asc(email_attempt::Column::Id)
        .all(db)
        .await
}

/// How many emails wait to be sent.
pub async fn pending_count(db: &impl ConnectionTrait) -> Result<u64, DbErr> {
    email::Entity::find()
        .filter(email::Column::Status.eq(EmailStatus::Pending))
        .count(db)
        .await
}
