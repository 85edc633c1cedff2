//! Token-bucket rate limits per credential and per client IP, with bounded
//! memory.
//!
//! Each key (a credential id, or an IP for anonymous callers and failed
//! logins) has a bucket of `burst` tokens refilled at `per_s` tokens a
//! second; a request takes one token or is refused with the time until the
//! next token (`Retry-After`). At most `buckets_max` buckets are kept: when
//! the table is full, full buckets are dropped first (a full bucket is the
//! same as no bucket, so nothing is forgotten), then the longest idle one.
//! Time is an input (`now`), so the logic is tested without sleeping.

use std::collections::HashMap;
use std::hash::Hash;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One limit: sustained rate and burst.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    pub per_s: NonZeroU32,
    pub burst: NonZeroU32,
}

#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

/// The buckets of one kind of key.
#[derive(Debug)]
pub struct Limiter<K> {
    rate: Rate,
    buckets_max: usize,
    buckets: Mutex<HashMap<K, Bucket>>,
}

impl<K: Eq + Hash + Clone> Limiter<K> {
    pub fn new(rate: Rate, buckets_max: usize) -> Limiter<K> {
        assert!(buckets_max > 0, "a limiter needs room for one bucket");
        Limiter {
            rate,
            buckets_max,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token for `key` at `now`: `Ok` or `Err(wait)` with how long
    /// until a token is available.
    pub fn check(&self, key: &K, now: Instant) -> Result<(), Duration> {
        let per_s = f64::from(self.rate.per_s.get());
        let burst = f64::from(self.rate.burst.get());
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if !buckets.contains_key(key) && buckets.len() >= self.buckets_max {
            evict(&mut buckets, now, per_s, burst);
        }
        let bucket = buckets.entry(key.clone()).or_insert(Bucket {
            tokens: burst,
            updated: now,
        });
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * per_s).min(burst);
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / per_s))
        }
    }

    pub fn len(&self) -> usize {
        self.buckets.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Drops every bucket that has refilled, or else the longest idle one.
fn evict<K: Eq + Hash + Clone>(
    buckets: &mut HashMap<K, Bucket>,
    now: Instant,
    per_s: f64,
    burst: f64,
) {
    let before = buckets.len();
    buckets.retain(|_, b| {
        b.tokens + now.saturating_duration_since(b.updated).as_secs_f64() * per_s < burst
    });
    if buckets.len() < before {
        return;
    }
    let oldest = buckets
        .iter()
        .min_by_key(|(_, b)| b.updated)
        .map(|(k, _)| k.clone());
    if let Some(key) = oldest {
        buckets.remove(&key);
    }
}

/// Seconds for a `Retry-After` header: rounded up, at least 1.
pub fn retry_after_secs(wait: Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0).max(u64::from(wait.as_secs() == 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate(per_s: u32, burst: u32) -> Rate {
        Rate {
            per_s: NonZeroU32::new(per_s).unwrap(),
            burst: NonZeroU32::new(burst).unwrap(),
        }
    }

    #[test]
    fn burst_then_refusal_then_refill() {
        let l = Limiter::new(rate(2, 3), 10);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(l.check(&"a", t0), Ok(()));
        }
        let wait = l.check(&"a", t0).unwrap_err();
        assert!(
            wait > Duration::from_millis(400) && wait <= Duration::from_millis(500),
            "{wait:?}"
        );
        assert_eq!(l.check(&"b", t0), Ok(()), "keys are independent");
        assert_eq!(l.check(&"a", t0 + Duration::from_millis(500)), Ok(()));
        assert!(l.check(&"a", t0 + Duration::from_millis(500)).is_err());
    }

    #[test]
    fn memory_is_bounded_and_full_buckets_go_first() {
        let l = Limiter::new(rate(1, 2), 3);
        let t0 = Instant::now();
        l.check(&1, t0).unwrap();
        l.check(&1, t0).unwrap(); // empty bucket: must survive eviction
        l.check(&2, t0).unwrap();
        l.check(&3, t0).unwrap();
        // At t0 + 1 s, buckets 2 and 3 have refilled; bucket 1 has not.
        let t1 = t0 + Duration::from_secs(1);
        l.check(&4, t1).unwrap();
        assert_eq!(l.len(), 2);
        assert!(l.check(&1, t1).is_ok());
        assert!(l.check(&1, t1).is_err(), "the drained bucket was kept");
        // With no full bucket, the longest idle one goes.
        for key in 5..100 {
            let _ = l.check(&key, t1);
            assert!(l.len() <= 3);
        }
    }

    #[test]
    fn retry_after_rounds_up() {
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1500)), 2);
        assert_eq!(retry_after_secs(Duration::from_secs(3)), 3);
    }
}
