//! A transaction's status, derived in one place from its stored amounts and hold state.
//!
//! Refunds never rewrite the transaction's stored lifecycle state; they raise its refunded
//! total. Every answer, verdict, listing filter and event reads the status from
//! [`TransactionStatus::of`], so what a merchant is shown and what verify decides on can
//! never disagree.
use crate::store::entities::transaction::{self, HoldState};

/// What a merchant is told about a transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransactionStatus {
    /// Paid, nothing refunded.
    Succeeded,
    /// Paid, part of the amount refunded.
    PartiallyRefunded,
    /// Paid, the whole amount refunded.
    Refunded,
    /// The vouchers' money is held, not yet captured (nothing is paid yet).
    Authorized,
    /// A hold captured, nothing refunded (refunds then make it partially refunded or
    /// refunded, as for any payment).
    Captured,
    /// A hold released by the merchant; nothing was paid.
    Canceled,
    /// A hold released when its time ran out; nothing was paid.
    Expired,
}

impl TransactionStatus {
    /// Every status, in the order of a payment's life.
    pub const ALL: [TransactionStatus; 7] = [
        TransactionStatus::Authorized,
        TransactionStatus::Succeeded,
        TransactionStatus::Captured,
        TransactionStatus::PartiallyRefunded,
        TransactionStatus::Refunded,
        TransactionStatus::Canceled,
        TransactionStatus::Expired,
    ];

    /// The status of a stored transaction.
    pub fn of(t: &transaction::Model) -> Self {
        Self::from_parts(t.hold_state, t.amount_minor, t.refunded_minor)
    }

    /// The status of a transaction in hold state `hold` (None: captured at once).
    pub fn from_parts(hold: Option<HoldState>, amount: i64, refunded: i64) -> Self {
        match hold {
            Some(HoldState::Authorized) => Self::Authorized,
            Some(HoldState::Canceled) => Self::Canceled,
            Some(HoldState::Expired) => Self::Expired,
            Some(HoldState::Captured) => match Self::from_amounts(amount, refunded) {
                Self::Succeeded => Self::Captured,
                other => other,
            },
            None => Self::from_amounts(amount, refunded),
        }
    }

    /// The status of a payment of `amount` of which `refunded` went back.
    pub fn from_amounts(amount: i64, refunded: i64) -> Self {
        if refunded <= 0 {
            Self::Succeeded
        } else if refunded < amount {
            Self::PartiallyRefunded
        } else {
            Self::Refunded
        }
    }

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Succeeded => "succeeded",
            Self::PartiallyRefunded => "partially_refunded",
            Self::Refunded => "refunded",
            Self::Authorized => "authorized",
            Self::Captured => "captured",
            Self::Canceled => "canceled",
            Self::Expired => "expired",
        }
    }

    /// A status from its wire name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// Whether goods may be released on a transaction in this status. A refunded payment
    /// never; a partially refunded one only when the merchant says it accepts that; a
    /// hold only once captured (an authorized one is not paid yet, a released one never
    /// will be).
    pub fn releases_goods(self, accept_partially_refunded: bool) -> bool {
        match self {
            Self::Succeeded | Self::Captured => true,
            Self::PartiallyRefunded => accept_partially_refunded,
            Self::Refunded | Self::Authorized | Self::Canceled | Self::Expired => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_status_follows_the_refunded_total() {
        assert_eq!(
            TransactionStatus::from_amounts(100, 0),
            TransactionStatus::Succeeded
        );
        assert_eq!(
            TransactionStatus::from_amounts(100, 1),
            TransactionStatus::PartiallyRefunded
        );
        assert_eq!(
            TransactionStatus::from_amounts(100, 100),
            TransactionStatus::Refunded
        );
        for s in TransactionStatus::ALL {
            assert_eq!(TransactionStatus::parse(s.as_str()), Some(s));
        }
    }

    #[test]
    fn a_hold_is_paid_only_once_captured() {
        use TransactionStatus as S;
        assert_eq!(
            S::from_parts(Some(HoldState::Authorized), 100, 0),
            S::Authorized
        );
        assert_eq!(S::from_parts(Some(HoldState::Captured), 60, 0), S::Captured);
        assert_eq!(
            S::from_parts(Some(HoldState::Captured), 60, 10),
            S::PartiallyRefunded
        );
        assert_eq!(
            S::from_parts(Some(HoldState::Canceled), 100, 0),
            S::Canceled
        );
        assert_eq!(S::from_parts(Some(HoldState::Expired), 100, 0), S::Expired);
        assert!(!S::Authorized.releases_goods(true));
        assert!(S::Captured.releases_goods(false));
    }

    #[test]
    fn a_refunded_payment_never_releases_goods() {
        assert!(!TransactionStatus::Refunded.releases_goods(true));
        assert!(!TransactionStatus::PartiallyRefunded.releases_goods(false));
        assert!(TransactionStatus::PartiallyRefunded.releases_goods(true));
    }
}
