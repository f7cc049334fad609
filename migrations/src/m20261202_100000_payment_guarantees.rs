//! Payment guarantees: idempotency keys scoped by operation, every ledger account per
//! currency, and the forfeited remainders of used single-use vouchers posted to breakage.
//!
//! - `idempotency_keys.operation` (`payment`, `refund`) joins the unique key
//!   (`uq_idempotency_scope`), so a payment can never take the key of a refund. Existing
//!   refund answers are the sealed ones (`v1:`...).
//! - Account names end in `:<currency>` (`merchant_payable:<merchant>:<mode>:EUR`, and
//!   `voucher_liability:<mode>:<currency>` instead of the bare `voucher_liability`). A journal
//!   has always had one currency, so renaming each posting after its journal's (or its
//!   voucher's) currency splits the accounts exactly.
//! - A used single-use voucher that kept a balance gets a `breakage` journal moving that
//!   remainder from its liability to `breakage:<mode>:<currency>`, as payments now do.
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, Statement};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261202_100000_payment_guarantees"
    }
}

#[derive(DeriveIden)]
enum IdempotencyKeys {
    Table,
    MerchantId,
    Mode,
    Operation,
    Key,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(IdempotencyKeys::Table)
                    .add_column(
                        ColumnDef::new(IdempotencyKeys::Operation)
                            .string()
                            .not_null()
                            .default("payment"),
                    )
                    .to_owned(),
            )
            .await?;
        let db = manager.get_connection();
        let backend = manager.get_database_backend();
        let run = |sql: String| db.execute(Statement::from_string(backend, sql));
        run(
            "UPDATE idempotency_keys SET operation = 'refund' WHERE response_body LIKE 'v1:%'"
                .into(),
        )
        .await?;
        manager
            .drop_index(
                Index::drop()
                    .name("uq_idempotency_merchant_mode_key")
                    .table(IdempotencyKeys::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_idempotency_scope")
                    .table(IdempotencyKeys::Table)
                    .col(IdempotencyKeys::MerchantId)
                    .col(IdempotencyKeys::Mode)
                    .col(IdempotencyKeys::Operation)
                    .col(IdempotencyKeys::Key)
                    .unique()
                    .to_owned(),
            )
            .await?;

        run("UPDATE postings SET account = 'voucher_liability:' ||
                (SELECT v.mode || ':' || v.currency FROM vouchers v WHERE v.id = postings.voucher_id)
             WHERE account = 'voucher_liability'"
            .into())
        .await?;
        run("UPDATE postings SET account = account || ':' ||
                (SELECT j.currency FROM journals j WHERE j.id = postings.journal_id)
             WHERE account NOT LIKE 'voucher_liability:%'"
            .into())
        .await?;

        let forfeited = db
            .query_all(Statement::from_string(
                backend,
                "SELECT id, mode, currency, balance_minor FROM vouchers
                 WHERE status = 'used' AND balance_minor > 0 ORDER BY id",
            ))
            .await?;
        for row in forfeited {
            let id: i64 = row.try_get("", "id")?;
            let mode: String = row.try_get("", "mode")?;
            let currency: String = row.try_get("", "currency")?;
            let balance: i64 = row.try_get("", "balance_minor")?;
            // Stored values only (ids, a mode and a currency code the server wrote).
            let journal = db
                .query_one(Statement::from_string(
                    backend,
                    format!(
                        "INSERT INTO journals (kind, transaction_id, currency, created_at)
                         SELECT 'breakage',
                                (SELECT r.transaction_id FROM redemptions r WHERE r.voucher_id = v.id ORDER BY r.id DESC LIMIT 1),
                                v.currency, v.updated_at
                         FROM vouchers v WHERE v.id = {id} RETURNING id"
                    ),
                ))
                .await?
                .ok_or_else(|| DbErr::Custom("breakage journal not inserted".into()))?;
            let journal: i64 = journal.try_get("", "id")?;
            run(format!(
                "INSERT INTO postings (journal_id, account, voucher_id, amount_minor) VALUES
                 ({journal}, 'voucher_liability:{mode}:{currency}', {id}, {}),
                 ({journal}, 'breakage:{mode}:{currency}', {id}, {balance})",
                -balance
            ))
            .await?;
            run(format!(
                "UPDATE vouchers SET balance_minor = 0 WHERE id = {id}"
            ))
            .await?;
        }
        Ok(())
    }

    async fn down(&self, _manager: &SchemaManager) -> Result<(), DbErr> {
        Err(DbErr::Migration(
            "m20261202_100000_payment_guarantees is not reversible: restore a backup".into(),
        ))
    }
}
