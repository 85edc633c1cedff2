//! The retry schedule: exponential from [`BASE`], doubling per failed
//! attempt, capped at [`MAX`]. No jitter: one node has one queue per
//! endpoint, so there is no herd to spread.

use std::time::Duration;

pub const BASE: Duration = Duration::from_millis(250);
pub const MAX: Duration = Duration::from_secs(60);

/// The wait after `failures` consecutive failed attempts (1 = the first).
pub fn delay(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(20);
    BASE.saturating_mul(1u32 << doublings).min(MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_then_caps() {
        assert_eq!(delay(1), BASE);
        assert_eq!(delay(2), BASE * 2);
        assert_eq!(delay(3), BASE * 4);
        assert_eq!(delay(30), MAX);
        assert_eq!(delay(u32::MAX), MAX);
        assert!((1..40).all(|n| delay(n) <= delay(n + 1)));
    }
}
