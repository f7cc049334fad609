//! `Secret<T>`: a wrapper whose Debug and Display never show the value, for keys, tokens and peppers.
use std::fmt;

/// Holds a sensitive value; formatting it prints `[REDACTED]`.
///
/// Deliberately not `PartialEq`: `==` on secrets returns at the first differing byte and
/// leaks a prefix by timing. Compare with [`crate::crypto::secrets_equal`] or a MAC's
/// `verify_slice`.
#[derive(Clone)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    /// Wraps a sensitive value.
    pub fn new(value: T) -> Self {
        Self(value)
    }

    /// The value itself; call sites are easy to audit by searching for `expose`.
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[REDACTED]")
    }
}

impl<T> fmt::Display for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[REDACTED]")
    }
}

impl<T> From<T> for Secret<T> {
    fn from(value: T) -> Self {
        Self(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formatting_never_shows_the_value() {
        let s = Secret::new("sk_live_abc".to_string());
        assert_eq!(format!("{s:?} {s}"), "[REDACTED] [REDACTED]");
        assert_eq!(s.expose(), "sk_live_abc");
    }

    // Method resolution picks `ViaEq` only when `T: PartialEq`, else the autoref fallback.
    struct Probe<T>(std::marker::PhantomData<T>);
    trait ViaEq {
        fn comparable_with_eq(&self) -> bool {
            true
        }
    }
    impl<T: PartialEq> ViaEq for Probe<T> {}
    trait Fallback {
        fn comparable_with_eq(&self) -> bool {
            false
        }
    }
    impl<T> Fallback for &Probe<T> {}

    #[test]
    #[allow(clippy::needless_borrow)] // the borrow is what selects the fallback
    fn secrets_cannot_be_compared_with_eq() {
        assert!((&Probe::<String>(std::marker::PhantomData)).comparable_with_eq());
        assert!(!(&Probe::<Secret<String>>(std::marker::PhantomData)).comparable_with_eq());
    }
}
