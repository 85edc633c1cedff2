//! Who leads a view, and which leaders we suspect to be dead.
//!
//! Leaders rotate round-robin over the genesis order. Views start at 1
//! (view 0 is "before the first view", the view of the genesis parent), so
//! validator 1 leads view 1 and validator 0 leads view n.
//!
//! # Suspected leaders
//!
//! A stopped or frozen validator keeps its turn: every n-th view waits for
//! its proposal until the leader timer fires. With the full timer that is
//! one second per turn, and commit latency with one validator down grows
//! from tens of milliseconds to a second. So each engine keeps a set of
//! *suspects*: a leader is suspected once we leave a view it led (by the
//! view's nullification or by jumping ahead on a later certificate) without
//! any sign that it proposed (no proposal, no `notarize` of its own in that
//! view, no notarization or finalization of the view); views we jump over
//! judge nobody. It is cleared the moment such a sign appears for any view
//! it leads. A suspected leader's view gets a short leader timer
//! ([`crate::Config::suspect_timeout_ms`]); nothing else changes.
//!
//! Why a local timer and not a changed leader schedule (leader reputation,
//! skipping leaders): timers never matter for safety — a validator signs at
//! most one `notarize` per view whoever it thinks leads — and suspicion
//! needs no agreement, so validators that momentarily disagree about a
//! suspect only differ in how long they wait. A schedule that depends on
//! history must be computed from state every honest validator holds (the
//! finalized chain some views back) or they disagree about who leads and
//! lose views; and a demoted validator needs a way back. The price of the
//! local rule: a dead leader still costs its short timer per turn (not
//! zero), and a live leader that first misses a turn and then proposes too
//! slowly for the short timer loses every second turn until it is faster.
//! Suspicion is not persisted: after a restart the first missed turn costs
//! the full timer again.

use std::collections::BTreeSet;

/// The leader of `view` among `n` validators: `view mod n`.
pub fn leader(view: u64, n: usize) -> u16 {
    assert!(n > 0, "no validators");
    let n = u64::try_from(n).unwrap_or(u64::MAX);
    let index = view % n;
    // n <= limits::VALIDATORS_MAX < 2^16, so the index fits.
    u16::try_from(index).unwrap_or(u16::MAX)
}

/// The leaders we suspect to be dead (see the module documentation).
#[derive(Clone, Debug, Default)]
pub(crate) struct Suspects {
    suspected: BTreeSet<u16>,
}

impl Suspects {
    /// `leader`'s view was nullified and it showed no sign of proposing.
    pub(crate) fn missed_turn(&mut self, leader: u16) {
        self.suspected.insert(leader);
    }

    /// `leader` proposed in a view it leads: it is alive.
    pub(crate) fn proposed(&mut self, leader: u16) {
        self.suspected.remove(&leader);
    }

    pub(crate) fn contains(&self, validator: u16) -> bool {
        self.suspected.contains(&validator)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missed_turn_suspects_until_the_next_proposal() {
        let mut suspects = Suspects::default();
        assert!(!suspects.contains(2));
        suspects.missed_turn(2);
        suspects.missed_turn(2);
        assert!(suspects.contains(2) && !suspects.contains(1));
        suspects.proposed(1);
        assert!(
            suspects.contains(2),
            "another leader's proposal clears nobody else"
        );
        suspects.proposed(2);
        assert!(!suspects.contains(2));
    }

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
