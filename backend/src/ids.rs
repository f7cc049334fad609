//! Public identifiers: a type prefix plus a time-ordered UUIDv7 in lowercase hex.
use uuid::Uuid;

/// A new id such as `txn_0193b5f0c2a87b3e9d1f4c2a8b7e6d5c`; time-ordered so that
/// index pages fill in order and listings sort by creation.
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", Uuid::now_v7().simple())
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_carry_their_prefix_and_are_unique() {
        let a = super::new_id("txn");
        let b = super::new_id("txn");
        assert!(a.starts_with("txn_") && a.len() == 36);
        assert_ne!(a, b);
    }
}
