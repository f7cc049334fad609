//! Voucher rows: issuance, lookup by code HMAC, row locks and conditional debits.
use sea_orm::{
    sea_query::{Expr, Func},
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};
use time::OffsetDateTime;

use super::entities::voucher::{self, VoucherState};
use crate::payments::rules::{Usability, Voucher, VoucherRules};

impl From<&voucher::Model> for Voucher {
    /// The row as the payment rules see it; unreadable rules become `None` (refused).
    fn from(row: &voucher::Model) -> Voucher {
        Voucher {
            id: row.id,
            last4: row.last4.clone(),
            mode: row.mode.0,
            currency: row.currency.0,
            balance_minor: row.balance_minor,
            usability: match row.status {
                VoucherState::Active => Usability::Active,
                VoucherState::Blocked => Usability::Blocked,
                VoucherState::Used => Usability::Used,
                VoucherState::Inactive => Usability::Inactive,
            },
            expires_at: row.expires_at,
            first_used_at: row.first_used_at,
            rules: serde_json::from_value::<VoucherRules>(row.rules.clone()).ok(),
        }
    }
}

/// Inserts vouchers in batches and returns their ids in the order given.
pub async fn insert_many(
    db: &impl ConnectionTrait,
    rows: Vec<voucher::Model>,
) -> Result<Vec<i64>, DbErr> {
    // 1,000 rows x 15 columns stays under both databases' bind-parameter limits.
    const BATCH: usize = 1_000;
    let mut ids = Vec::with_capacity(rows.len());
    for chunk in rows.chunks(BATCH) {
        let inserted =
            voucher::Entity::insert_many(chunk.iter().cloned().map(|row| voucher::ActiveModel {
                id: sea_orm::NotSet,
                code_hmac: sea_orm::Set(row.code_hmac),
                last4: sea_orm::Set(row.last4),
                mode: sea_orm::Set(row.mode),
                currency: sea_orm::Set(row.currency),
                initial_minor: sea_orm::Set(row.initial_minor),
                balance_minor: sea_orm::Set(row.balance_minor),
                status: sea_orm::Set(row.status),
                expires_at: sea_orm::Set(row.expires_at),
                rules: sea_orm::Set(row.rules),
                created_at: sea_orm::Set(row.created_at),
                updated_at: sea_orm::Set(row.updated_at),
                issuer_merchant_id: sea_orm::Set(row.issuer_merchant_id),
                first_used_at: sea_orm::Set(row.first_used_at),
                pin_hash: sea_orm::Set(row.pin_hash),
            }))
            .exec_with_returning_many(db)
            .await?;
        // RETURNING order is not promised for multi-row inserts: match rows by their HMAC.
        let by_hmac: std::collections::HashMap<&str, i64> = inserted
            .iter()
            .map(|v| (v.code_hmac.as_str(), v.id))
            .collect();
        for row in chunk {
            ids.push(
                *by_hmac.get(row.code_hmac.as_str()).ok_or_else(|| {
                    DbErr::Custom("inserted voucher missing from RETURNING".into())
                })?,
            );
        }
    }
    Ok(ids)
}

/// The voucher with this code HMAC, without locking (balance checks, display).
pub async fn find_by_hmac(
    db: &impl ConnectionTrait,
    hmac: &str,
) -> Result<Option<voucher::Model>, DbErr> {
    voucher::Entity::find()
        .filter(voucher::Column::CodeHmac.eq(hmac))
        .one(db)
        .await
}

/// The vouchers with these HMACs, without locking.
pub async fn find_by_hmacs(
    db: &impl ConnectionTrait,
    hmacs: &[String],
) -> Result<Vec<voucher::Model>, DbErr> {
    voucher::Entity::find()
        .filter(voucher::Column::CodeHmac.is_in(hmacs.iter().cloned()))
        .all(db)
        .await
}

/// Vouchers by id.
pub async fn find_by_ids(
    db: &impl ConnectionTrait,
    ids: &[i64],
) -> Result<Vec<voucher::Model>, DbErr> {
    voucher::Entity::find()
        .filter(voucher::Column::Id.is_in(ids.iter().copied()))
        .order_by_asc(voucher::Column::Id)
        .all(db)
        .await
}

/// Locks the vouchers with these HMACs in id order (a fixed order means two payments
/// sharing vouchers can never deadlock). On SQLite the write transaction already excludes
/// every other writer, so no row lock is needed.
pub async fn lock_by_hmacs(
    db: &impl ConnectionTrait,
    hmacs: &[String],
) -> Result<Vec<voucher::Model>, DbErr> {
    use sea_orm::QueryTrait;
    // One kept text per number of codes, for the usual one to four.
    static LOCK: [super::cached::CachedSql; 4] = [const { super::cached::CachedSql::new() }; 4];
    let build = |backend| {
        let q = voucher::Entity::find()
            .filter(voucher::Column::CodeHmac.is_in(hmacs.iter().cloned()))
            .order_by_asc(voucher::Column::Id);
        if backend == sea_orm::DbBackend::Postgres {
            q.lock_exclusive().build(backend)
        } else {
            q.build(backend)
        }
    };
    let backend = db.get_database_backend();
    let statement = match hmacs.len().checked_sub(1).and_then(|i| LOCK.get(i)) {
        Some(kept) => kept.statement(
            backend,
            hmacs.iter().map(|h| h.as_str().into()).collect(),
            build,
        ),
        None => build(backend),
    };
    voucher::Entity::find()
        .from_raw_sql(statement)
        .all(db)
        .await
}

/// Debits `amount` if the balance still covers it; false when it does not.
pub async fn debit(
    db: &impl ConnectionTrait,
    id: i64,
    amount: i64,
    mark_used: bool,
    now: OffsetDateTime,
) -> Result<bool, DbErr> {
    let mut q = voucher::Entity::update_many()
        .col_expr(
            voucher::Column::BalanceMinor,
            Expr::col(voucher::Column::BalanceMinor).sub(amount),
        )
        .col_expr(voucher::Column::UpdatedAt, Expr::value(now))
        .col_expr(
            voucher::Column::FirstUsedAt,
            Func::coalesce([
                Expr::col(voucher::Column::FirstUsedAt).into(),
                Expr::value(now),
            ])
            .into(),
        );
    if mark_used {
        q = q.col_expr(voucher::Column::Status, Expr::value(VoucherState::Used));
    }
    let res = q
        .filter(voucher::Column::Id.eq(id))
        .filter(voucher::Column::BalanceMinor.gte(amount))
        .filter(voucher::Column::Status.eq(VoucherState::Active))
        .exec(db)
        .await?;
    Ok(res.rows_affected == 1)
}

/// What [`set_blocked`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockChange {
    /// The voucher (this id) is now blocked or active as asked.
    Applied(i64),
    /// The voucher is used (or otherwise not active or blocked): left as it is.
    NotChangeable,
    /// No voucher has this code.
    Missing,
}

/// Blocks or unblocks the voucher with this code HMAC in ONE conditional update, so that
/// a payment using a single-use voucher up at the same moment can never be undone (a read
/// followed by an unconditional update could turn `used` back into `active`).
pub async fn set_blocked(
    db: &impl ConnectionTrait,
    hmac: &str,
    blocked: bool,
    now: OffsetDateTime,
) -> Result<BlockChange, DbErr> {
    let changed = voucher::Entity::update_many()
        .col_expr(
            voucher::Column::Status,
            Expr::value(if blocked {
                VoucherState::Blocked
            } else {
                VoucherState::Active
            }),
        )
        .col_expr(voucher::Column::UpdatedAt, Expr::value(now))
        .filter(voucher::Column::CodeHmac.eq(hmac))
        .filter(voucher::Column::Status.is_in([VoucherState::Active, VoucherState::Blocked]))
        .exec_with_returning(db)
        .await?;
    Ok(match changed.first() {
        Some(v) => BlockChange::Applied(v.id),
        None if find_by_hmac(db, hmac).await?.is_some() => BlockChange::NotChangeable,
        None => BlockChange::Missing,
    })
}

/// Blocks an active voucher by id (the fraud screener's action); false when it was not
/// active (used, blocked or gone), which leaves it as it was.
pub async fn block_active(
    db: &impl ConnectionTrait,
    id: i64,
    now: OffsetDateTime,
) -> Result<bool, DbErr> {
    let changed = voucher::Entity::update_many()
        .col_expr(voucher::Column::Status, Expr::value(VoucherState::Blocked))
        .col_expr(voucher::Column::UpdatedAt, Expr::value(now))
        .filter(voucher::Column::Id.eq(id))
        .filter(voucher::Column::Status.eq(VoucherState::Active))
        .exec(db)
        .await?;
    Ok(changed.rows_affected == 1)
}

#[cfg(test)]
mod tests {
    use superpayment_core::{Currency, Mode};

    use super::*;
    use crate::store::entities::text::AsText;

    async fn database() -> sea_orm::DatabaseConnection {
        let db = crate::store::connect("sqlite::memory:", 1).await.unwrap();
        crate::store::migrate(&db).await.unwrap();
        db
    }

    fn row(hmac: &str, status: VoucherState) -> voucher::Model {
        let now = OffsetDateTime::now_utc();
        voucher::Model {
            id: 0,
            code_hmac: hmac.into(),
            last4: "0000".into(),
            mode: AsText(Mode::Test),
            currency: AsText(Currency::EUR),
            initial_minor: 100,
            balance_minor: 0,
            status,
            expires_at: None,
            rules: serde_json::json!({"single_use": true}),
            created_at: now,
            updated_at: now,
            issuer_merchant_id: None,
            first_used_at: None,
            pin_hash: None,
        }
    }

    #[tokio::test]
    async fn unblocking_never_turns_a_used_voucher_active() {
        let db = database().await;
        insert_many(
            &db,
            vec![
                row("used", VoucherState::Used),
                row("live", VoucherState::Active),
            ],
        )
        .await
        .unwrap();
        let now = OffsetDateTime::now_utc();
        for blocked in [false, true] {
            assert_eq!(
                set_blocked(&db, "used", blocked, now).await.unwrap(),
                BlockChange::NotChangeable
            );
            assert_eq!(
                find_by_hmac(&db, "used").await.unwrap().unwrap().status,
                VoucherState::Used
            );
        }
        assert!(matches!(
            set_blocked(&db, "live", true, now).await.unwrap(),
            BlockChange::Applied(_)
        ));
        assert_eq!(
            find_by_hmac(&db, "live").await.unwrap().unwrap().status,
            VoucherState::Blocked
        );
        assert_eq!(
            set_blocked(&db, "none", true, now).await.unwrap(),
            BlockChange::Missing
        );
    }
}
