//! A transaction's status, derived in one place from its stored amounts.
//!
//! Refunds never rewrite the transaction's stored lifecycle state; they raise its refunded
//! total. Every answer, verdict, listing filter and event reads the status from
//! [`TransactionStatus::of`], so what a merchant is shown and what verify decides on can
//! never disagree.
use crate::store::entities::transaction;

/// What a merchant is told about a transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransactionStatus {
    /// Paid, nothing refunded.
    Succeeded,
    /// Paid, part of the amount refunded.
    PartiallyRefunded,
    /// Paid, the whole amount refunded.
    Refunded,
}

impl TransactionStatus {
    /// Every status, in the order of a payment's life.
    pub const ALL: [TransactionStatus; 3] = [
        TransactionStatus::Succeeded,
        TransactionStatus::PartiallyRefunded,
        TransactionStatus::Refunded,
    ];

    /// The status of a stored transaction.
    pub fn of(t: &transaction::Model) -> Self {
        Self::from_amounts(t.amount_minor, t.refunded_minor)
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
        }
    }

    /// A status from its wire name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// Whether goods may be released on a transaction in this status. A refunded payment
    /// never; a partially refunded one only when the merchant says it accepts that.
    pub fn releases_goods(self, accept_partially_refunded: bool) -> bool {
        match self {
            Self::Succeeded => true,
            Self::PartiallyRefunded => accept_partially_refunded,
            Self::Refunded => false,
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
    fn a_refunded_payment_never_releases_goods() {
        assert!(!TransactionStatus::Refunded.releases_goods(true));
        assert!(!TransactionStatus::PartiallyRefunded.releases_goods(false));
        assert!(TransactionStatus::PartiallyRefunded.releases_goods(true));
    }
}
