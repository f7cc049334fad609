//! Lockouts after repeated failures: voucher guessing (failed code attempts counted per
//! client address, per API key and per code fingerprint) and back-office logins (per client
//! address and per account), password-reset requests (per client address and per email); a
//! source past its threshold is refused for a cool-down.
//!
//! The counters live in the [`Coordinator`] (Redis, or this process while it is
//! unreachable): a lockout narrows who may try, it never decides money.
use std::time::Duration;

use crate::coordination::{self, Coordinator, RateDecision};

/// Thresholds of the lockout (`GUESS_LOCKOUT_*`); a threshold of 0 turns its counter off.
#[derive(Clone, Debug)]
pub struct LockoutPolicy {
    /// Failed attempts per client address, and per code, within `window`.
    pub threshold: u32,
    /// Failed attempts per publishable key (every shopper of a shop together) within `window`.
    pub key_threshold: u32,
    pub window: Duration,
    /// How long a source past its threshold is refused.
    pub cooldown: Duration,
}

impl LockoutPolicy {
    /// No lockout at all (the OpenAPI document's state).
    pub fn off() -> Self {
        Self {
            threshold: 0,
            key_threshold: 0,
            window: Duration::from_secs(900),
            cooldown: Duration::from_secs(900),
        }
    }
}

/// One counter an attempt is held against: its key in the coordinator, its threshold,
/// and its scope as reported in logs and metrics.
struct Source {
    name: String,
    threshold: u32,
    scope: &'static str,
    /// A code's counter: only the code at fault counts a failure.
    is_code: bool,
}

/// Who makes one attempt. Voucher guessing: the client address, the API key and the codes
/// tried (as HMAC fingerprints, never the codes). Back-office login: the client address
/// and the account's email (as a hash).
pub struct Attempt<'a> {
    policy: &'a LockoutPolicy,
    sources: Vec<Source>,
}

impl<'a> Attempt<'a> {
    pub fn new(policy: &'a LockoutPolicy, client: &str, key_id: &str, codes: Vec<String>) -> Self {
        let mut sources = vec![
            Source {
                name: format!("a:{client}"),
                threshold: policy.threshold,
                scope: "client",
                is_code: false,
            },
            Source {
                name: format!("k:{key_id}"),
                threshold: policy.key_threshold,
                scope: "key",
                is_code: false,
            },
        ];
        // Half an HMAC-SHA256 still tells codes apart and keeps Redis keys short.
        sources.extend(codes.into_iter().map(|h| Source {
            name: format!("c:{}", &h[..h.len().min(32)]),
            threshold: policy.threshold,
            scope: "code",
            is_code: true,
        }));
        Self { policy, sources }
    }

    /// A back-office login: counted per client address (`threshold`) and per account
    /// (`key_threshold`, so that one address rotating through many accounts and many
    /// addresses trying one account are both stopped). `account` is a hash of the email,
    /// so that no address lands in Redis; the counters are apart from voucher guessing.
    pub fn login(policy: &'a LockoutPolicy, client: &str, account: &str) -> Self {
        Self {
            policy,
            sources: vec![
                Source {
                    name: format!("la:{client}"),
                    threshold: policy.threshold,
                    scope: "login_client",
                    is_code: false,
                },
                Source {
                    name: format!("lu:{}", &account[..account.len().min(32)]),
                    threshold: policy.key_threshold,
                    scope: "login_account",
                    is_code: false,
                },
            ],
        }
    }

    /// A password-reset request: counted per client address (`threshold`) and per typed
    /// email (`key_threshold`, a hash of it), every request whether or not the email has
    /// an account, so the limit tells nothing about accounts. Apart from the login counters.
    pub fn password_reset(policy: &'a LockoutPolicy, client: &str, account: &str) -> Self {
        Self {
            policy,
            sources: vec![
                Source {
                    name: format!("ra:{client}"),
                    threshold: policy.threshold,
                    scope: "reset_client",
                    is_code: false,
                },
                Source {
                    name: format!("ru:{}", &account[..account.len().min(32)]),
                    threshold: policy.key_threshold,
                    scope: "reset_account",
                    is_code: false,
                },
            ],
        }
    }

    /// Presented credentials (an API key or the admin token) that are malformed, unknown,
    /// revoked or expired: counted per client address (`threshold`), apart from guessing
    /// and logins. A flood of made-up keys from one address is then refused before any
    /// key lookup.
    pub fn authentication(policy: &'a LockoutPolicy, client: &str) -> Self {
        Self {
            policy,
            sources: vec![Source {
                name: format!("af:{client}"),
                threshold: policy.threshold,
                scope: "authentication",
                is_code: false,
            }],
        }
    }

    fn sources(&self) -> impl Iterator<Item = &Source> {
        self.sources.iter().filter(|s| s.threshold > 0)
    }

    /// How long this attempt must wait when any of its sources is locked out.
    pub async fn refused_for(&self, coord: &Coordinator) -> Option<Duration> {
        let keys: Vec<String> = self.sources().map(|s| block_key(&s.name)).collect();
        if keys.is_empty() {
            return None;
        }
        coord.blocked_for(&keys).await
    }

    /// Counts a failed attempt against the client, the key and the codes at fault (`None`:
    /// every code of the attempt), and locks out each source that passes its threshold.
    pub async fn failed(&self, coord: &Coordinator, at_fault: Option<usize>) {
        let codes: Vec<&Source> = self.sources.iter().filter(|s| s.is_code).collect();
        let fault = at_fault.and_then(|f| codes.get(f)).map(|s| s.name.as_str());
        for source in self.sources() {
            if source.is_code && fault.is_some_and(|f| f != source.name) {
                continue;
            }
            let count = count_key(&source.name);
            if let RateDecision::Limited { .. } = coord
                .rate_limit(&count, source.threshold, self.policy.window)
                .await
            {
                tracing::warn!(scope = source.scope, "lockout after repeated failures");
                crate::monitoring::locked_out(source.scope);
                coord
                    .block(&block_key(&source.name), self.policy.cooldown)
                    .await;
            }
        }
    }
}

/// The failure counter of a source.
fn count_key(source: &str) -> String {
    coordination::key("guess", source, "n")
}

/// The blocked marker of a source, in the same cluster slot as the source's counter.
fn block_key(source: &str) -> String {
    coordination::key("guess", source, "block")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coordination::MemoryCoordinator;

    #[test]
    fn a_sources_counter_and_block_share_a_cluster_slot_and_sources_are_spread() {
        use redis::cluster_routing::Slot;
        let slot = |name: String| Slot::for_key(format!("sp:{name}"));
        let sources = ["a:127.0.0.1", "k:key_1", "c:0123456789abcdef"];
        for source in sources {
            assert_eq!(slot(count_key(source)), slot(block_key(source)), "{source}");
        }
        assert_ne!(slot(block_key(sources[0])), slot(block_key(sources[1])));
    }

    fn policy() -> LockoutPolicy {
        LockoutPolicy {
            threshold: 3,
            key_threshold: 0,
            window: Duration::from_secs(60),
            cooldown: Duration::from_secs(30),
        }
    }

    #[tokio::test]
    async fn a_client_past_the_threshold_is_refused_and_another_is_not() {
        let coord = Coordinator::Memory(MemoryCoordinator::default());
        let p = policy();
        for n in 0..4 {
            let a = Attempt::new(&p, "198.51.100.7", "key_1", vec![format!("{n:064}")]);
            assert_eq!(a.refused_for(&coord).await, None);
            a.failed(&coord, None).await;
        }
        let again = Attempt::new(&p, "198.51.100.7", "key_1", vec![]);
        assert!(again.refused_for(&coord).await.is_some());
        let other = Attempt::new(&p, "203.0.113.9", "key_1", vec![]);
        assert_eq!(other.refused_for(&coord).await, None);
    }

    #[tokio::test]
    async fn a_code_tried_from_many_addresses_is_locked_out() {
        let coord = Coordinator::Memory(MemoryCoordinator::default());
        let p = policy();
        let code = "ab".repeat(32);
        for n in 0..4 {
            Attempt::new(&p, &format!("198.51.100.{n}"), "key_1", vec![code.clone()])
                .failed(&coord, Some(0))
                .await;
        }
        let a = Attempt::new(&p, "203.0.113.9", "key_1", vec![code]);
        assert!(a.refused_for(&coord).await.is_some());
    }
}
