//! In-process locks and rate limits for the embedded default (one server process).
use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use std::{num::NonZeroU32, sync::Arc};

use governor::{
    clock::{Clock, DefaultClock},
    middleware::StateInformationMiddleware,
    DefaultKeyedRateLimiter, RateLimiter,
};

use super::{GcraDecision, Quota, RateDecision};

type Gcra = DefaultKeyedRateLimiter<String, StateInformationMiddleware>;

/// Maps guarded by a mutex; entries expire like their Redis counterparts.
#[derive(Default)]
pub struct MemoryCoordinator {
    locks: Mutex<HashMap<String, (String, Instant)>>,
    windows: Mutex<HashMap<String, (u32, Instant)>>,
    blocks: Mutex<HashMap<String, Instant>>,
    /// One governor limiter per quota in use.
    gcras: Mutex<HashMap<Quota, Arc<Gcra>>>,
}

impl MemoryCoordinator {
    pub(super) fn set_nx(&self, key: &str, token: &str, ttl: Duration) -> bool {
        let now = Instant::now();
        let mut locks = self.locks.lock().expect("lock map poisoned");
        if locks.len() > 10_000 {
            locks.retain(|_, (_, until)| *until > now);
        }
        match locks.get(key) {
            Some((_, until)) if *until > now => false,
            _ => {
                locks.insert(key.to_owned(), (token.to_owned(), now + ttl));
                true
            }
        }
    }

    pub(super) fn del_if(&self, key: &str, token: &str) {
        let mut locks = self.locks.lock().expect("lock map poisoned");
        if locks.get(key).is_some_and(|(t, _)| t == token) {
            locks.remove(key);
        }
    }

    pub(super) fn gcra(&self, key: &str, quota: Quota) -> GcraDecision {
        let limiter = self
            .gcras
            .lock()
            .expect("limiter map poisoned")
            .entry(quota)
            .or_insert_with(|| {
                let burst = NonZeroU32::new(quota.limit).unwrap_or(NonZeroU32::MIN);
                let q = governor::Quota::with_period(quota.interval())
                    .expect("a positive interval")
                    .allow_burst(burst);
                Arc::new(RateLimiter::keyed(q).with_middleware::<StateInformationMiddleware>())
            })
            .clone();
        if limiter.len() > 10_000 {
            limiter.retain_recent();
        }
        match limiter.check_key(&key.to_owned()) {
            Ok(state) => GcraDecision {
                allowed: true,
                remaining: state.remaining_burst_capacity(),
                reset: quota.interval() * (quota.limit - state.remaining_burst_capacity()),
                retry_after: Duration::ZERO,
            },
            Err(not_until) => {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                GcraDecision {
                    allowed: false,
                    remaining: 0,
                    reset: wait + quota.interval() * (quota.limit - 1),
                    retry_after: wait,
                }
            }
        }
    }

    pub(super) fn block(&self, key: &str, ttl: Duration) {
        let now = Instant::now();
        let mut blocks = self.blocks.lock().expect("block map poisoned");
        if blocks.len() > 10_000 {
            blocks.retain(|_, until| *until > now);
        }
        blocks.insert(key.to_owned(), now + ttl);
    }

    pub(super) fn blocked_for(&self, keys: &[String]) -> Option<Duration> {
        let now = Instant::now();
        let blocks = self.blocks.lock().expect("block map poisoned");
        keys.iter()
            .filter_map(|k| blocks.get(k))
            .filter(|until| **until > now)
            .map(|until| *until - now)
            .max()
    }

    pub(super) fn hit(&self, key: &str, limit: u32, window: Duration) -> RateDecision {
        let now = Instant::now();
        let mut windows = self.windows.lock().expect("rate map poisoned");
        if windows.len() > 10_000 {
            windows.retain(|_, (_, until)| *until > now);
        }
        let entry = windows.entry(key.to_owned()).or_insert((0, now + window));
        if entry.1 <= now {
            *entry = (0, now + window);
        }
        entry.0 += 1;
        if entry.0 > limit {
            RateDecision::Limited {
                retry_after: entry.1 - now,
            }
        } else {
            RateDecision::Allowed
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_lock_refuses_others_until_released_by_its_owner() {
        let m = MemoryCoordinator::default();
        assert!(m.set_nx("k", "a", Duration::from_secs(5)));
        assert!(!m.set_nx("k", "b", Duration::from_secs(5)));
        m.del_if("k", "b");
        assert!(!m.set_nx("k", "b", Duration::from_secs(5)));
        m.del_if("k", "a");
        assert!(m.set_nx("k", "b", Duration::from_secs(5)));
    }

    #[test]
    fn gcra_allows_a_burst_up_to_the_limit_per_key() {
        let m = MemoryCoordinator::default();
        let quota = Quota::new(2, Duration::from_secs(60));
        let first = m.gcra("a", quota);
        assert!(first.allowed);
        assert_eq!(first.remaining, 1);
        assert!(m.gcra("a", quota).allowed);
        let refused = m.gcra("a", quota);
        assert!(!refused.allowed);
        assert!(refused.retry_after > Duration::ZERO);
        assert!(m.gcra("b", quota).allowed);
    }

    #[test]
    fn the_limit_applies_per_window() {
        let m = MemoryCoordinator::default();
        for _ in 0..3 {
            assert_eq!(
                m.hit("r", 3, Duration::from_secs(60)),
                RateDecision::Allowed
            );
        }
        assert!(matches!(
            m.hit("r", 3, Duration::from_secs(60)),
            RateDecision::Limited { .. }
        ));
    }
}
