//! SuperPayment's schema, as append-only migrations that run on PostgreSQL and SQLite alike.
//!
//! Money columns are BIGINT minor units (exact on both databases); ids that leave the
//! server are prefixed text (`txn_...`), internal ids are BIGINT sequences.

pub use sea_orm_migration::prelude::*;

mod m20261122_000001_initial;
mod m20261122_100000_checkout_widget;
mod m20261201_000001_merchant_integration;
mod m20261202_000001_journal_transaction_index;
mod m20261202_100000_payment_guarantees;
mod m20261203_200000_fraud_screening;
mod m20261203_300000_payment_holds;
mod m20261204_100000_dashboard_accounts;
mod m20261204_200000_notification_emails;
mod m20261204_300000_voucher_lifecycle;
mod m20261204_400000_payouts;
mod m20261204_500000_merchant_rate_limits;
mod m20261205_100000_dashboard_two_factor;
mod m20261205_200000_team_invitations;
mod m20261205_300000_merchant_api_limit;
mod m20261205_400000_dashboard_day_sums;
mod m20261206_100000_outbox_notify_after_commit;

/// Runs every migration in order.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261122_000001_initial::Migration),
            Box::new(m20261122_100000_checkout_widget::Migration),
            Box::new(m20261201_000001_merchant_integration::Migration),
            Box::new(m20261202_000001_journal_transaction_index::Migration),
            Box::new(m20261202_100000_payment_guarantees::Migration),
            Box::new(m20261203_200000_fraud_screening::Migration),
            Box::new(m20261203_300000_payment_holds::Migration),
            Box::new(m20261204_100000_dashboard_accounts::Migration),
            Box::new(m20261204_200000_notification_emails::Migration),
            Box::new(m20261204_300000_voucher_lifecycle::Migration),
            Box::new(m20261204_400000_payouts::Migration),
            Box::new(m20261204_500000_merchant_rate_limits::Migration),
            Box::new(m20261205_100000_dashboard_two_factor::Migration),
            Box::new(m20261205_200000_team_invitations::Migration),
            Box::new(m20261205_300000_merchant_api_limit::Migration),
            Box::new(m20261205_400000_dashboard_day_sums::Migration),
            Box::new(m20261206_100000_outbox_notify_after_commit::Migration),
        ]
    }
}
