//! Webhook endpoints, the outbox relay (events to deliveries), delivery claims and attempts.
use sea_orm::{
    sea_query::Expr, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, FromQueryResult,
    QueryFilter, QueryOrder, QuerySelect, Set, Statement, TransactionTrait, Value,
};
use time::OffsetDateTime;

use super::entities::{
    event, webhook_attempt,
    webhook_delivery::{self, DeliveryStatus},
    webhook_endpoint::{self, EndpointStatus},
};
use super::placeholders;

/// The endpoint of a merchant in one mode.
pub async fn find_endpoint(
    db: &impl ConnectionTrait,
    merchant_id: &str,
    mode: &str,
) -> Result<Option<webhook_endpoint::Model>, DbErr> {
    webhook_endpoint::Entity::find()
        .filter(webhook_endpoint::Column::MerchantId.eq(merchant_id))
        .filter(webhook_endpoint::Column::Mode.eq(mode))
        .one(db)
        .await
}

/// Inserts a new endpoint (the unique index allows one per merchant and mode).
pub async fn insert_endpoint(
    db: &impl ConnectionTrait,
    e: webhook_endpoint::Model,
) -> Result<(), DbErr> {
    webhook_endpoint::Entity::insert(webhook_endpoint::ActiveModel {
        id: Set(e.id),
        merchant_id: Set(e.merchant_id),
        mode: Set(e.mode),
        url: Set(e.url),
        secret_ciphertext: Set(e.secret_ciphertext),
        previous_secret_ciphertext: Set(e.previous_secret_ciphertext),
        previous_secret_expires_at: Set(e.previous_secret_expires_at),
        status: Set(e.status),
        disabled_reason: Set(e.disabled_reason),
        created_at: Set(e.created_at),
        updated_at: Set(e.updated_at),
    })
    .exec_without_returning(db)
    .await?;
    Ok(())
}

/// Points an endpoint at a new URL and enables it. Only these columns are written, so a
/// concurrent secret rotation is never undone.
pub async fn set_endpoint_url(
    db: &impl ConnectionTrait,
    id: &str,
    url: &str,
    now: OffsetDateTime,
) -> Result<(), DbErr> {
    webhook_endpoint::Entity::update_many()
        .col_expr(webhook_endpoint::Column::Url, Expr::value(url))
        .col_expr(
            webhook_endpoint::Column::Status,
            Expr::value(EndpointStatus::Enabled),
        )
        .col_expr(
            webhook_endpoint::Column::DisabledReason,
            Expr::value(Option::<String>::None),
        )
        .col_expr(webhook_endpoint::Column::UpdatedAt, Expr::value(now))
        .filter(webhook_endpoint::Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}

/// Replaces the secrets of an endpoint if its current secret is still `expected`; false
/// when another rotation won meanwhile (the caller re-reads and tries again). URL and
/// status are left alone, so a concurrent change of either is never undone.
pub async fn replace_secrets(
    db: &impl ConnectionTrait,
    id: &str,
    expected: &str,
    secret: &str,
    previous: Option<(&str, OffsetDateTime)>,
    now: OffsetDateTime,
) -> Result<bool, DbErr> {
    let res = webhook_endpoint::Entity::update_many()
        .col_expr(
            webhook_endpoint::Column::SecretCiphertext,
            Expr::value(secret),
        )
        .col_expr(
            webhook_endpoint::Column::PreviousSecretCiphertext,
            Expr::value(previous.map(|(s, _)| s.to_owned())),
        )
        .col_expr(
            webhook_endpoint::Column::PreviousSecretExpiresAt,
            Expr::value(previous.map(|(_, at)| at)),
        )
        .col_expr(webhook_endpoint::Column::UpdatedAt, Expr::value(now))
        .filter(webhook_endpoint::Column::Id.eq(id))
        .filter(webhook_endpoint::Column::SecretCiphertext.eq(expected))
        .exec(db)
        .await?;
    Ok(res.rows_affected == 1)
}

/// Disables an endpoint and cancels what was still queued for it (inside the caller's
/// transaction); false if it was already disabled.
pub async fn disable_endpoint(
    tx: &impl ConnectionTrait,
    id: &str,
    reason: &str,
    now: OffsetDateTime,
) -> Result<bool, DbErr> {
    let res = webhook_endpoint::Entity::update_many()
        .col_expr(
            webhook_endpoint::Column::Status,
            Expr::value(EndpointStatus::Disabled),
        )
        .col_expr(
            webhook_endpoint::Column::DisabledReason,
            Expr::value(reason),
        )
        .col_expr(webhook_endpoint::Column::UpdatedAt, Expr::value(now))
        .filter(webhook_endpoint::Column::Id.eq(id))
        .filter(webhook_endpoint::Column::Status.eq(EndpointStatus::Enabled))
        .exec(tx)
        .await?;
    webhook_delivery::Entity::update_many()
        .col_expr(
            webhook_delivery::Column::Status,
            Expr::value(DeliveryStatus::Canceled),
        )
        .col_expr(
            webhook_delivery::Column::NextAttemptAt,
            Expr::value(Option::<OffsetDateTime>::None),
        )
        .filter(webhook_delivery::Column::EndpointId.eq(id))
        .filter(webhook_delivery::Column::Status.eq(DeliveryStatus::Pending))
        .exec(tx)
        .await?;
    Ok(res.rows_affected == 1)
}

/// Writes an outbox event (inside the transaction of the change it announces).
pub async fn insert_event(db: &impl ConnectionTrait, e: event::Model) -> Result<(), DbErr> {
    event::Entity::insert(event::ActiveModel {
        id: Set(e.id),
        merchant_id: Set(e.merchant_id),
        mode: Set(e.mode),
        kind: Set(e.kind),
        transaction_id: Set(e.transaction_id),
        payload: Set(e.payload),
        created_at: Set(e.created_at),
    })
    .exec_without_returning(db)
    .await?;
    Ok(())
}

#[derive(Debug, FromQueryResult)]
struct IdRow {
    id: String,
}

#[derive(Debug, FromQueryResult)]
struct DeliveryIdRow {
    id: i64,
}

/// The outbox relay: turns up to `limit` undispatched events into deliveries to their
/// merchant's enabled endpoint, already claimed by the caller until `lease_until`.
/// Returns the ids of the deliveries created. Concurrent relays skip each other's rows.
pub async fn dispatch_events(
    db: &impl TransactionTrait,
    now: OffsetDateTime,
    lease_until: OffsetDateTime,
    limit: u64,
) -> Result<Vec<i64>, DbErr> {
    let tx = super::begin(db).await?;
    let backend = tx.get_database_backend();
    let postgres = backend == sea_orm::DbBackend::Postgres;
    let select = format!(
        "SELECT id FROM events WHERE dispatched_at IS NULL ORDER BY created_at LIMIT {limit}{}",
        if postgres {
            " FOR UPDATE SKIP LOCKED"
        } else {
            ""
        }
    );
    let events: Vec<String> = IdRow::find_by_statement(Statement::from_string(backend, select))
        .all(&tx)
        .await?
        .into_iter()
        .map(|r| r.id)
        .collect();
    if events.is_empty() {
        tx.commit().await?;
        return Ok(Vec::new());
    }
    let mut values: Vec<Value> = vec![lease_until.into(), now.into()];
    values.extend(events.iter().map(|id| Value::from(id.clone())));
    let sql = format!(
        "INSERT INTO webhook_deliveries (event_id, endpoint_id, merchant_id, mode, status, attempt_count, next_attempt_at, created_at)
         SELECT e.id, w.id, e.merchant_id, e.mode, 'pending', 0, {p1}, {p2}
         FROM events e JOIN webhook_endpoints w
           ON w.merchant_id = e.merchant_id AND w.mode = e.mode AND w.status = 'enabled'
         WHERE e.id IN ({ids})
         RETURNING id",
        p1 = placeholders(backend, 1, 1),
        p2 = placeholders(backend, 2, 1),
        ids = placeholders(backend, 3, events.len()),
    );
    let created =
        DeliveryIdRow::find_by_statement(Statement::from_sql_and_values(backend, sql, values))
            .all(&tx)
            .await?
            .into_iter()
            .map(|r| r.id)
            .collect();
    // dispatched_at is the relay's own column, deliberately not part of the event entity
    // that payment code writes.
    let mut values: Vec<Value> = vec![now.into()];
    values.extend(events.iter().map(|id| Value::from(id.clone())));
    tx.execute(Statement::from_sql_and_values(
        backend,
        format!(
            "UPDATE events SET dispatched_at = {} WHERE id IN ({})",
            placeholders(backend, 1, 1),
            placeholders(backend, 2, events.len())
        ),
        values,
    ))
    .await?;
    tx.commit().await?;
    Ok(created)
}

/// Claims up to `limit` due deliveries until `lease_until` ([`super::outbox::claim_due`]).
pub async fn claim_due(
    db: &impl ConnectionTrait,
    now: OffsetDateTime,
    lease_until: OffsetDateTime,
    limit: u64,
) -> Result<Vec<i64>, DbErr> {
    super::outbox::claim_due(
        db,
        super::outbox::Queue::WebhookDeliveries,
        now,
        lease_until,
        limit,
    )
    .await
}

/// A delivery with its event and endpoint.
pub async fn load_delivery(
    db: &impl ConnectionTrait,
    id: i64,
) -> Result<
    Option<(
        webhook_delivery::Model,
        event::Model,
        webhook_endpoint::Model,
    )>,
    DbErr,
> {
    let Some(d) = webhook_delivery::Entity::find_by_id(id).one(db).await? else {
        return Ok(None);
    };
    let e = event::Entity::find_by_id(d.event_id.clone())
        .one(db)
        .await?;
    let w = webhook_endpoint::Entity::find_by_id(d.endpoint_id.clone())
        .one(db)
        .await?;
    Ok(match (e, w) {
        (Some(e), Some(w)) => Some((d, e, w)),
        _ => None,
    })
}

/// What an attempt changed about its delivery.
#[derive(Debug, Clone)]
pub struct DeliveryUpdate {
    pub status: DeliveryStatus,
    pub next_attempt_at: Option<OffsetDateTime>,
}

/// What [`record_attempt`] changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recorded {
    /// The delivery moved on (false: another worker recorded this attempt first).
    pub moved: bool,
    /// The endpoint was disabled by this record (false also when it already was).
    pub disabled: bool,
}

/// Records one attempt and moves its delivery on, inside the caller's transaction (`tx`).
/// The attempt is always kept (it happened); the delivery moves on only if no other
/// worker recorded this attempt number first (possible when a slow worker's lease ran out
/// and another claimed the delivery), so a late answer never undoes a newer one.
/// `disable` (endpoint id, reason) disables the endpoint in the same transaction (a 410),
/// so nobody sees the delivery failed while its endpoint is still enabled, and whatever
/// the caller writes about it (the merchant's email) commits with it.
pub async fn record_attempt(
    tx: &impl ConnectionTrait,
    attempt: webhook_attempt::Model,
    update: DeliveryUpdate,
    disable: Option<(&str, &str)>,
) -> Result<Recorded, DbErr> {
    let delivery_id = attempt.delivery_id;
    let started = attempt.started_at;
    let number = attempt.attempt_number;
    webhook_attempt::Entity::insert(webhook_attempt::ActiveModel {
        id: sea_orm::NotSet,
        delivery_id: Set(attempt.delivery_id),
        event_id: Set(attempt.event_id),
        attempt_number: Set(attempt.attempt_number),
        url: Set(attempt.url),
        started_at: Set(attempt.started_at),
        duration_ms: Set(attempt.duration_ms),
        status_code: Set(attempt.status_code),
        outcome: Set(attempt.outcome),
        error: Set(attempt.error),
        response_excerpt: Set(attempt.response_excerpt),
    })
    .exec_without_returning(tx)
    .await?;
    let moved = webhook_delivery::Entity::update_many()
        .col_expr(webhook_delivery::Column::Status, Expr::value(update.status))
        .col_expr(webhook_delivery::Column::AttemptCount, Expr::value(number))
        .col_expr(
            webhook_delivery::Column::NextAttemptAt,
            Expr::value(update.next_attempt_at),
        )
        .col_expr(
            webhook_delivery::Column::LastAttemptAt,
            Expr::value(started),
        )
        .filter(webhook_delivery::Column::Id.eq(delivery_id))
        .filter(webhook_delivery::Column::Status.eq(DeliveryStatus::Pending))
        .filter(webhook_delivery::Column::AttemptCount.eq(number - 1))
        .exec(tx)
        .await?;
    let disabled = match disable {
        Some((endpoint_id, reason)) => disable_endpoint(tx, endpoint_id, reason, started).await?,
        None => false,
    };
    Ok(Recorded {
        moved: moved.rows_affected == 1,
        disabled,
    })
}

/// Whether the endpoint's last `n` finished deliveries since `since` (when its URL was
/// last set) all failed: at least `n` of them, none succeeded. Read inside the
/// transaction that recorded the latest one.
pub async fn last_deliveries_failed(
    db: &impl ConnectionTrait,
    endpoint_id: &str,
    since: OffsetDateTime,
    n: u64,
) -> Result<bool, DbErr> {
    let last = webhook_delivery::Entity::find()
        .filter(webhook_delivery::Column::EndpointId.eq(endpoint_id))
        .filter(
            webhook_delivery::Column::Status
                .is_in([DeliveryStatus::Succeeded, DeliveryStatus::Failed]),
        )
        .filter(webhook_delivery::Column::LastAttemptAt.gte(since))
        .order_by_desc(webhook_delivery::Column::LastAttemptAt)
        .order_by_desc(webhook_delivery::Column::Id)
        .limit(n)
        .all(db)
        .await?;
    Ok(n > 0 && last.len() as u64 == n && last.iter().all(|d| d.status == DeliveryStatus::Failed))
}

/// Ends a delivery without an attempt (its endpoint was disabled or removed meanwhile).
pub async fn cancel_delivery(db: &impl ConnectionTrait, id: i64) -> Result<(), DbErr> {
    webhook_delivery::Entity::update_many()
        .col_expr(
            webhook_delivery::Column::Status,
            Expr::value(DeliveryStatus::Canceled),
        )
        .col_expr(
            webhook_delivery::Column::NextAttemptAt,
            Expr::value(Option::<OffsetDateTime>::None),
        )
        .filter(webhook_delivery::Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}

/// Queues a new delivery of an event, due now (redelivery on demand).
pub async fn insert_delivery(
    db: &impl ConnectionTrait,
    event: &event::Model,
    endpoint_id: &str,
    now: OffsetDateTime,
) -> Result<i64, DbErr> {
    let res = webhook_delivery::Entity::insert(webhook_delivery::ActiveModel {
        id: sea_orm::NotSet,
        event_id: Set(event.id.clone()),
        endpoint_id: Set(endpoint_id.to_owned()),
        merchant_id: Set(event.merchant_id.clone()),
        mode: Set(event.mode),
        status: Set(DeliveryStatus::Pending),
        attempt_count: Set(0),
        next_attempt_at: Set(Some(now)),
        last_attempt_at: Set(None),
        created_at: Set(now),
    })
    .exec(db)
    .await?;
    Ok(res.last_insert_id)
}

/// A merchant's event in one mode.
pub async fn find_event(
    db: &impl ConnectionTrait,
    merchant_id: &str,
    mode: &str,
    id: &str,
) -> Result<Option<event::Model>, DbErr> {
    event::Entity::find_by_id(id.to_owned())
        .filter(event::Column::MerchantId.eq(merchant_id))
        .filter(event::Column::Mode.eq(mode))
        .one(db)
        .await
}

/// A page of a merchant's events, newest first, strictly after the `starting_after` id.
pub async fn list_events(
    db: &impl ConnectionTrait,
    merchant_id: &str,
    mode: &str,
    kind: Option<&str>,
    starting_after: Option<&str>,
    limit: u64,
) -> Result<Vec<event::Model>, DbErr> {
    let mut q = event::Entity::find()
        .filter(event::Column::MerchantId.eq(merchant_id))
        .filter(event::Column::Mode.eq(mode));
    if let Some(kind) = kind {
        q = q.filter(event::Column::Kind.eq(kind));
    }
    if let Some(after) = starting_after {
        q = q.filter(event::Column::Id.lt(after));
    }
    q.order_by_desc(event::Column::Id)
        .limit(limit)
        .all(db)
        .await
}

/// Deliveries of some events.
pub async fn deliveries_of(
    db: &impl ConnectionTrait,
    event_ids: &[String],
) -> Result<Vec<webhook_delivery::Model>, DbErr> {
    webhook_delivery::Entity::find()
        .filter(webhook_delivery::Column::EventId.is_in(event_ids.iter().cloned()))
        .order_by_asc(webhook_delivery::Column::Id)
        .all(db)
        .await
}

/// Attempts of one event, oldest first.
pub async fn attempts_of(
    db: &impl ConnectionTrait,
    event_id: &str,
) -> Result<Vec<webhook_attempt::Model>, DbErr> {
    webhook_attempt::Entity::find()
        .filter(webhook_attempt::Column::EventId.eq(event_id))
        .order_by_asc(webhook_attempt::Column::Id)
        .all(db)
        .await
}

/// Attempts of several events in one query, oldest first (group them by `event_id`): a
/// page of the delivery log costs one read, not one per event.
pub async fn attempts_of_events(
    db: &impl ConnectionTrait,
    event_ids: &[String],
) -> Result<Vec<webhook_attempt::Model>, DbErr> {
    if event_ids.is_empty() {
        return Ok(Vec::new());
    }
    webhook_attempt::Entity::find()
        .filter(webhook_attempt::Column::EventId.is_in(event_ids.iter().cloned()))
        .order_by_asc(webhook_attempt::Column::Id)
        .all(db)
        .await
}

/// The webhook queue as a scrape reports it ([`queue_stats`]).
#[derive(Debug, Clone, Default)]
pub struct QueueStats {
    /// Events not yet relayed into deliveries.
    pub undispatched: u64,
    /// Pending deliveries whose next attempt is due.
    pub due: u64,
    /// Every pending delivery (retries scheduled later and claimed ones included).
    pub pending: u64,
    /// Since when the oldest due work has waited: the oldest undispatched event's creation
    /// or the oldest due delivery's due time.
    pub oldest_due: Option<OffsetDateTime>,
}

#[derive(Debug, FromQueryResult)]
struct CountRow {
    n: i64,
}

#[derive(Debug, FromQueryResult)]
struct CreatedRow {
    created_at: OffsetDateTime,
}

/// Counts the queue at `now`; the oldest items are read by their indexed order.
pub async fn queue_stats(
    db: &impl ConnectionTrait,
    now: OffsetDateTime,
) -> Result<QueueStats, DbErr> {
    use sea_orm::PaginatorTrait;
    let backend = db.get_database_backend();
    let undispatched = CountRow::find_by_statement(Statement::from_string(
        backend,
        "SELECT COUNT(*) AS n FROM events WHERE dispatched_at IS NULL",
    ))
    .one(db)
    .await?
    .map_or(0, |r| r.n);
    let oldest_event = CreatedRow::find_by_statement(Statement::from_string(
        backend,
        "SELECT created_at FROM events WHERE dispatched_at IS NULL ORDER BY created_at LIMIT 1",
    ))
    .one(db)
    .await?
    .map(|r| r.created_at);
    let pending = || {
        webhook_delivery::Entity::find()
            .filter(webhook_delivery::Column::Status.eq(DeliveryStatus::Pending))
    };
    let due_filter = webhook_delivery::Column::NextAttemptAt.lte(now);
    let due = pending().filter(due_filter.clone()).count(db).await?;
    let oldest_delivery = pending()
        .filter(due_filter)
        .order_by_asc(webhook_delivery::Column::NextAttemptAt)
        .one(db)
        .await?
        .and_then(|d| d.next_attempt_at);
    let all = pending().count(db).await?;
    Ok(QueueStats {
        undispatched: u64::try_from(undispatched).unwrap_or(0),
        due,
        pending: all,
        oldest_due: match (oldest_event, oldest_delivery) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        },
    })
}

/// Hands claimed deliveries back at shutdown ([`super::outbox::release`]).
pub async fn release_claims(
    db: &impl ConnectionTrait,
    ids: &[i64],
    lease_until: OffsetDateTime,
    now: OffsetDateTime,
) -> Result<u64, DbErr> {
    super::outbox::release(
        db,
        super::outbox::Queue::WebhookDeliveries,
        ids,
        lease_until,
        now,
    )
    .await
}
