//! The node's wall clock, read in one place.
//!
//! The consensus engine reads no clock: time reaches it as inputs, which
//! its actors take from here. Everything else on the node that stamps a
//! record or a document with the time (audit entries, capture jobs, EPCIS
//! query documents, backups, the last-commit gauge, webhook signatures)
//! reads it here too, so there is one place to look when a clock is wrong.
//! A clock set before 1970 reads as 0 instead of failing: the values are
//! stamps and timeouts, never consensus decisions.

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch.
pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// [`unix_ms`] as the signed milliseconds EPCIS documents and
/// `lotline_core::time` use.
pub fn unix_ms_i64() -> i64 {
    i64::try_from(unix_ms()).unwrap_or(i64::MAX)
}

/// Seconds since the Unix epoch, with a fraction (Prometheus gauges).
pub fn unix_seconds() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// The time as RFC 3339 with milliseconds, for "generated at" stamps.
pub fn now_rfc3339() -> String {
    lotline_core::time::format_rfc3339_ms(unix_ms_i64())
}
