//! Token-bucket rate limiting per client address and per account.
//!
//! Each key (an IP address or a handle) owns a bucket holding up to `burst` tokens, refilled at
//! `rate` tokens per second; a request takes one token or is refused with
//! [`Error::RateLimited`] saying when the next token arrives (the `Retry-After` header).
//!
//! Threats: a client flooding the gateway from one address or with one account. Memory stays
//! bounded whatever the number of distinct keys: past [`MAX_KEYS`] buckets, buckets that have
//! refilled completely (indistinguishable from a fresh one) are dropped, and if that is not enough
//! the oldest half is dropped — which can only make the limiter more lenient, never wrong about an
//! honest client.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

use crate::error::{Error, Result};

/// Most buckets kept per limiter before pruning.
pub const MAX_KEYS: usize = 100_000;

/// One token bucket's parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BucketParams {
    /// Tokens added per second.
    pub rate: f64,
    /// Most tokens held (the burst).
    pub burst: f64,
}

#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

impl Bucket {
    fn refill(&mut self, params: BucketParams, now: Instant) {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens = (self.tokens + elapsed * params.rate).min(params.burst);
        self.updated = now;
    }
}

/// Buckets keyed by `K`.
#[derive(Debug)]
pub struct Limiter<K> {
    params: BucketParams,
    buckets: Mutex<HashMap<K, Bucket>>,
}

impl<K: Hash + Eq + Clone> Limiter<K> {
    /// A limiter where every key gets `params`. A rate or burst that is not a positive finite
    /// number disables limiting (every request passes).
    pub fn new(params: BucketParams) -> Self {
        Limiter {
            params,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    fn enabled(&self) -> bool {
        let BucketParams { rate, burst } = self.params;
        rate.is_finite() && burst.is_finite() && rate > 0.0 && burst >= 1.0
    }

    /// Takes one token for `key` at time `now`, or says how many whole seconds to wait.
    pub fn check_at(&self, key: &K, now: Instant) -> Result<()> {
        if !self.enabled() {
            return Ok(());
        }
        let params = self.params;
        // A poisoned lock means a panic elsewhere while holding it; the map is still valid.
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if buckets.len() >= MAX_KEYS && !buckets.contains_key(key) {
            prune(&mut buckets, params, now);
        }
        let bucket = buckets.entry(key.clone()).or_insert(Bucket {
            tokens: params.burst,
            updated: now,
        });
        bucket.refill(params, now);
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            let wait = (1.0 - bucket.tokens) / params.rate;
            // `wait` is positive and finite here (rate > 0); at least one second, as Retry-After
            // counts whole seconds.
            let retry_after_s = wait.ceil().clamp(1.0, 86_400.0) as u64;
            Err(Error::RateLimited { retry_after_s })
        }
    }

    /// [`Limiter::check_at`] now.
    pub fn check(&self, key: &K) -> Result<()> {
        self.check_at(key, Instant::now())
    }

    /// Number of buckets held (for tests).
    pub fn len(&self) -> usize {
        self.buckets
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .len()
    }

    /// Whether no bucket is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn prune<K: Hash + Eq + Clone>(
    buckets: &mut HashMap<K, Bucket>,
    params: BucketParams,
    now: Instant,
) {
    buckets.retain(|_, bucket| {
        let mut bucket = *bucket;
        bucket.refill(params, now);
        bucket.tokens < params.burst
    });
    if buckets.len() >= MAX_KEYS / 2 {
        let mut ages: Vec<Instant> = buckets.values().map(|bucket| bucket.updated).collect();
        ages.sort_unstable();
        if let Some(&cutoff) = ages.get(ages.len() / 2) {
            buckets.retain(|_, bucket| bucket.updated > cutoff);
        }
    }
}

/// The gateway's two limiters.
#[derive(Debug)]
pub struct RateLimiter {
    /// Per client IP address: every request, authenticated or not.
    pub per_address: Limiter<IpAddr>,
    /// Per account: every authenticated request.
    pub per_account: Limiter<String>,
}

impl RateLimiter {
    /// Limiters with the configured rates and bursts.
    pub fn new(config: &crate::Config) -> Self {
        RateLimiter {
            per_address: Limiter::new(BucketParams {
                rate: config.rate_per_address,
                burst: config.burst_per_address,
            }),
            per_account: Limiter::new(BucketParams {
                rate: config.rate_per_account,
                burst: config.burst_per_account,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn limiter(rate: f64, burst: f64) -> Limiter<u32> {
        Limiter::new(BucketParams { rate, burst })
    }

    #[test]
    fn burst_then_refill() {
        let limiter = limiter(2.0, 3.0);
        let start = Instant::now();
        for _ in 0..3 {
            limiter.check_at(&1, start).expect("within burst");
        }
        match limiter.check_at(&1, start) {
            Err(Error::RateLimited { retry_after_s }) => assert_eq!(retry_after_s, 1),
            other => panic!("expected rate limit, got {other:?}"),
        }
        // Another key is independent.
        limiter.check_at(&2, start).expect("other key");
        // Half a second refills one token at 2/s.
        limiter
            .check_at(&1, start + Duration::from_millis(500))
            .expect("refilled");
        assert!(
            limiter
                .check_at(&1, start + Duration::from_millis(500))
                .is_err()
        );
        // Never more than the burst, however long the wait.
        let later = start + Duration::from_secs(3600);
        for _ in 0..3 {
            limiter.check_at(&1, later).expect("refilled to burst");
        }
        assert!(limiter.check_at(&1, later).is_err());
    }

    #[test]
    fn retry_after_rounds_up_slow_rates() {
        let limiter = limiter(0.1, 1.0);
        let start = Instant::now();
        limiter.check_at(&1, start).expect("first");
        match limiter.check_at(&1, start) {
            Err(Error::RateLimited { retry_after_s }) => assert_eq!(retry_after_s, 10),
            other => panic!("expected rate limit, got {other:?}"),
        }
    }

    #[test]
    fn disabled_by_nonpositive_or_nonfinite_params() {
        for (rate, burst) in [
            (0.0, 10.0),
            (1.0, 0.0),
            (f64::NAN, 5.0),
            (f64::INFINITY, 5.0),
        ] {
            let limiter = limiter(rate, burst);
            for _ in 0..100 {
                limiter.check_at(&1, Instant::now()).expect("disabled");
            }
        }
    }

    #[test]
    fn memory_is_bounded() {
        let limiter = limiter(1.0, 2.0);
        let now = Instant::now();
        for key in 0..(MAX_KEYS as u32 + 10) {
            limiter.check_at(&key, now).expect("fresh key");
        }
        assert!(limiter.len() <= MAX_KEYS);
    }
}
