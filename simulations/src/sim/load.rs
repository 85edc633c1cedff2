//! Intermittent load: when attestations arrive, and the bounds an idle
//! chain must keep, computed here with the simulator's own arithmetic
//! rather than the engine's.
//!
//! * Safety phase: bursts of 1 to 5 attestations at one validator (any,
//!   possibly crashed: then they are lost, as a submit to a dead node is),
//!   which gossips them, with gaps of up to two heartbeats, under the
//!   seed's faults.
//! * Liveness phase (healed network): `settle_ms` without arrivals, for the
//!   leftovers to commit; then an idle window of `idle_ms` in which the
//!   chain may add at most [`Plan::idle_blocks_max`] blocks and
//!   [`Plan::idle_views_max`] views (a few per heartbeat; the protocol
//!   without idle views adds one or two per leader timeout); then the leader of the current (idle)
//!   view crashes, when the others still hold a quorum, and a burst arrives
//!   at an up validator. Every up validator must commit it within
//!   `wake_bound_ms`, which is made of view timeouts and network delays and
//!   is at most half the heartbeat: waiting for the heartbeat fails it.
//!   Then the crashed leader restarts, behind, on a chain that is idle
//!   again: it must reach the others' height within the same bound, which
//!   only holds if reconnecting tells it that it is behind (nothing else
//!   would before the heartbeat).

use crate::sim::Options;
use crate::sim::rng::Rng;

/// One seed's intermittent load.
#[derive(Clone, Debug)]
pub struct Plan {
    pub heartbeat_ms: u64,
    pub wake_bound_ms: u64,
    pub settle_ms: u64,
    pub idle_ms: u64,
    /// Safety-phase bursts: (time, attestations).
    pub bursts: Vec<(u64, u64)>,
}

impl Plan {
    /// Draws a plan from its own generator, so that constant-load seeds
    /// keep their traces.
    pub fn draw(seed: u64, options: &Options) -> Plan {
        let mut rng = Rng::new(seed ^ 0x1D1E_1D1E_1D1E_1D1E);
        let healed = options.network.healed();
        // One hop of the protocol: a message, a payload, a verdict.
        let hop_ms = healed.delay_max_ms + options.build_delay_max_ms + options.verify_delay_max_ms;
        // The dead leader's view ends a leader timeout after the work
        // arrived (base, not yet suspected); the next view may have a silent
        // leader too (twice the base after one nullification). A view
        // timeout (3/2 of the leader timeout) for each, and ten hops for
        // gossip, nullify, certificates, proposal, votes and finalization.
        let base = options.timeout_base_ms;
        let wake_bound_ms = 3 * base / 2 + 3 * base + 10 * hop_ms;
        let heartbeat_ms = 2 * wake_bound_ms + rng.range(0, 2_000);
        let mut bursts = Vec::new();
        let mut at = rng.range(0, 500);
        while at < options.safety_ms {
            bursts.push((at, rng.range(1, 6)));
            at += rng.range(100, 2 * heartbeat_ms);
        }
        Plan {
            heartbeat_ms,
            wake_bound_ms,
            settle_ms: 3 * heartbeat_ms,
            idle_ms: 3 * heartbeat_ms,
            bursts,
        }
    }

    /// The liveness phase: settle, idle window, the wake-up, the rejoin,
    /// and slack.
    pub fn liveness_ms(&self) -> u64 {
        self.settle_ms + self.idle_ms + 2 * self.wake_bound_ms + 10_000
    }

    /// Blocks an idle window may add: each heartbeat (and the one begun
    /// before the window) starts one block, and the views that follow it
    /// until it is final: none when its view finalizes, more when `byzantine`
    /// leaders in a row (or votes that beat tight timeouts) leave it
    /// notarized only, at most one per Byzantine validator and one more.
    pub fn idle_blocks_max(&self, window_ms: u64, byzantine: usize) -> u64 {
        (window_ms / self.heartbeat_ms + 1) * (byzantine as u64 + 2)
    }

    /// Views an idle window may pass: twice the blocks, since a dead or
    /// silent leader's view ends without one.
    pub fn idle_views_max(&self, window_ms: u64, byzantine: usize) -> u64 {
        2 * self.idle_blocks_max(window_ms, byzantine)
    }
}
