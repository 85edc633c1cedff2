//! Round-robin leaders over the genesis order.
//!
//! Views start at 1 (view 0 is "before the first view", the view of the
//! genesis parent), so validator 1 leads view 1 and validator 0 leads view n.

/// The leader of `view` among `n` validators: `view mod n`.
pub fn leader(view: u64, n: usize) -> u16 {
    assert!(n > 0, "no validators");
    let n = u64::try_from(n).unwrap_or(u64::MAX);
    let index = view % n;
    // n <= limits::VALIDATORS_MAX < 2^16, so the index fits.
    u16::try_from(index).unwrap_or(u16::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_robin_from_view_one() {
        let table = [
            (1, 4, 1),
            (3, 4, 3),
            (4, 4, 0),
            (5, 4, 1),
            (7, 7, 0),
            (9, 5, 4),
            (1, 1, 0),
            (u64::MAX, 7, 1),
        ];
        for (view, n, expected) in table {
            assert_eq!(leader(view, n), expected, "view {view}, n {n}");
        }
    }

    #[test]
    fn every_validator_leads_once_per_n_views() {
        for n in 1..=7 {
            let mut led: Vec<u16> = (1..=n as u64).map(|v| leader(v, n)).collect();
            led.sort();
            assert_eq!(led, (0..n as u16).collect::<Vec<_>>());
        }
    }
}
