//! Retrying requests a node turned away for load.
//!
//! A node answers `429 Too Many Requests` when a caller is over its rate and
//! `503 Service Unavailable` with `Retry-After` when it is overloaded (a full
//! mempool, an audit trail that cannot record the access). Either way the
//! request took no effect, so sending it again is safe for every call this
//! SDK makes: reads change nothing, and a submit carries a signed envelope
//! whose id makes it idempotent (a repeat that did arrive is answered
//! `duplicate`). A well-behaved client waits as long as the node asks, plus
//! a little jitter so that many clients refused together do not come back
//! together, and gives up after a bounded number of attempts.

use std::time::Duration;

use rand_core::{OsRng, RngCore};
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, RETRY_AFTER};

/// When and how long to wait before sending a refused request again.
///
/// The default retries up to 4 times, waiting what `Retry-After` asks (at
/// most [`RetryPolicy::max_wait`] each time) plus up to a quarter more at
/// random. [`RetryPolicy::never`] turns retries off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt; 0 sends each request once.
    pub retries: u32,
    /// The longest single wait, whatever `Retry-After` says: a node that asks
    /// for a minute is better reported to the caller than waited on.
    pub max_wait: Duration,
    /// The wait when the node names none (a 429 without `Retry-After`); it
    /// doubles with every further retry, up to `max_wait`.
    pub backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> RetryPolicy {
        RetryPolicy {
            retries: 4,
            max_wait: Duration::from_secs(10),
            backoff: Duration::from_millis(250),
        }
    }
}

impl RetryPolicy {
    /// Each request is sent once; a 429 or 503 is returned to the caller.
    pub const fn never() -> RetryPolicy {
        RetryPolicy {
            retries: 0,
            max_wait: Duration::ZERO,
            backoff: Duration::ZERO,
        }
    }

    /// How long to wait before retry number `retry` (0-based) of a request
    /// answered `status` with `headers`, or `None` when it must not be
    /// retried (not a load refusal, or the retries are used up).
    pub(crate) fn wait(
        &self,
        retry: u32,
        status: StatusCode,
        headers: &HeaderMap,
    ) -> Option<Duration> {
        if retry >= self.retries {
            return None;
        }
        let asked = retry_after(headers);
        let refused_for_load = status == StatusCode::TOO_MANY_REQUESTS
            || (status == StatusCode::SERVICE_UNAVAILABLE && asked.is_some());
        if !refused_for_load {
            return None;
        }
        let base = asked
            .unwrap_or_else(|| self.backoff.saturating_mul(1u32 << retry.min(16)))
            .min(self.max_wait);
        Some(base + jitter(base))
    }
}

/// `Retry-After` in delta-seconds. The HTTP-date form is not used by Lotline
/// nodes; a proxy that sends it gets the policy's backoff instead.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let text = headers.get(RETRY_AFTER)?.to_str().ok()?;
    let secs: u64 = text.trim().parse().ok()?;
    Some(Duration::from_secs(secs))
}

/// Up to a quarter of `base`, at random: never less than the node asked.
fn jitter(base: Duration) -> Duration {
    let quarter = u64::try_from((base / 4).as_micros()).unwrap_or(u64::MAX);
    if quarter == 0 {
        return Duration::ZERO;
    }
    Duration::from_micros(OsRng.next_u64() % (quarter + 1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(retry_after: Option<&str>) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Some(value) = retry_after {
            headers.insert(RETRY_AFTER, HeaderValue::from_str(value).expect("header"));
        }
        headers
    }

    #[test]
    fn a_rate_limited_request_waits_what_the_node_asks_plus_at_most_a_quarter() {
        let policy = RetryPolicy::default();
        for _ in 0..100 {
            let wait = policy
                .wait(0, StatusCode::TOO_MANY_REQUESTS, &headers(Some("2")))
                .expect("retried");
            assert!(wait >= Duration::from_secs(2), "{wait:?}");
            assert!(wait <= Duration::from_millis(2500), "{wait:?}");
        }
    }

    #[test]
    fn waits_are_capped_and_retries_are_bounded() {
        let policy = RetryPolicy::default();
        let wait = policy
            .wait(0, StatusCode::TOO_MANY_REQUESTS, &headers(Some("3600")))
            .expect("retried");
        assert!(wait <= policy.max_wait + policy.max_wait / 4, "{wait:?}");
        assert_eq!(
            policy.wait(
                policy.retries,
                StatusCode::TOO_MANY_REQUESTS,
                &headers(Some("1"))
            ),
            None
        );
        assert_eq!(
            RetryPolicy::never().wait(0, StatusCode::TOO_MANY_REQUESTS, &headers(Some("1"))),
            None
        );
    }

    #[test]
    fn without_retry_after_a_429_backs_off_exponentially() {
        let policy = RetryPolicy::default();
        let first = policy
            .wait(0, StatusCode::TOO_MANY_REQUESTS, &headers(None))
            .expect("retried");
        let third = policy
            .wait(2, StatusCode::TOO_MANY_REQUESTS, &headers(Some("soon")))
            .expect("retried");
        assert!(first >= policy.backoff && first <= policy.backoff * 5 / 4);
        assert!(third >= policy.backoff * 4 && third <= policy.backoff * 5);
    }

    #[test]
    fn only_load_refusals_are_retried() {
        let policy = RetryPolicy::default();
        // A 503 without Retry-After is a node that stopped, not one that is busy.
        assert_eq!(
            policy.wait(0, StatusCode::SERVICE_UNAVAILABLE, &headers(None)),
            None
        );
        assert!(
            policy
                .wait(0, StatusCode::SERVICE_UNAVAILABLE, &headers(Some("1")))
                .is_some()
        );
        for status in [
            StatusCode::OK,
            StatusCode::BAD_REQUEST,
            StatusCode::CONFLICT,
            StatusCode::INTERNAL_SERVER_ERROR,
        ] {
            assert_eq!(
                policy.wait(0, status, &headers(Some("1"))),
                None,
                "{status}"
            );
        }
    }
}
