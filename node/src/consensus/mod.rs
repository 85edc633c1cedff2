//! Consensus: deciding which block comes next, as a pure state machine.
//!
//! An engine is driven by `handle(input) -> Vec<Output>` and does no I/O: it
//! reads no clock (time arrives in inputs), draws no randomness and iterates
//! no hash map. The actors are the only parts that touch disk, network or
//! time, and they carry out outputs in a fixed order:
//!
//! 1. every `Journal` output of a step is appended to the vote journal, then
//!    one fdatasync;
//! 2. only then `Broadcast`/`Send` (a vote never leaves before it is durable);
//! 3. `Commit`: block + certificate to the block log (fdatasync), then sled,
//!    then waiting clients.
//!
//! Two engines share that boundary. With n = 1 ([`solo`], driven by
//! [`solo_actor`]) the quorum is 1, so the leader's own `notarize` and `finalize`
//! votes are the certificates. With n > 1 the Simplex engine of
//! `lotline_consensus` (messages from peers, timers, proposal verification
//! verdicts) is driven by [`bft`], which adds the network, block sync and
//! proposals by attestation id. Both hand committed blocks to [`commit`].

pub mod bft;
pub mod commit;
pub mod epoch;
pub mod evidence;
pub mod mend;
pub mod solo;
pub mod solo_actor;

pub use lotline_consensus::{Input, Message, Output};

use std::time::Duration;

use crate::state::Shared;
use crate::store::StoreError;
use crate::store::vote_journal::VoteJournalError;

/// When a leader cuts a block (both actors).
#[derive(Clone, Copy, Debug)]
pub struct BlockPolicy {
    pub attestations_max: usize,
    /// Longest an attestation waits for its block to fill.
    pub interval: Duration,
    /// Cut early when no attestation arrived for this long.
    pub linger: Duration,
    /// Least time between two blocks while attestations keep coming (the
    /// BFT leader, [`BlockPolicy::leader_may_cut`]).
    pub gap: Duration,
}

impl BlockPolicy {
    /// The policy of consensus parameters (the genesis's, or a
    /// `setConsensus` in force): blocks of at most `block_max_attestations`
    /// (and [`lotline_core::limits::BLOCK_ATTESTATIONS_MAX`]), cut after
    /// `block_interval_ms`, or after [`BLOCK_LINGER`] of quiet if shorter;
    /// under load a BFT leader keeps [`BLOCK_GAP`] between blocks.
    pub fn of(params: &lotline_genesis::ConsensusParams) -> BlockPolicy {
        let interval = Duration::from_millis(params.block_interval_ms);
        BlockPolicy {
            attestations_max: (params.block_max_attestations as usize)
                .clamp(1, lotline_core::limits::BLOCK_ATTESTATIONS_MAX),
            interval,
            linger: BLOCK_LINGER.min(interval),
            gap: BLOCK_GAP.min(interval),
        }
    }

    /// Whether a BFT leader that owes its view a payload cuts it now: when
    /// the pool fills a block, or when it has lingered since the view
    /// asked and the last block it saw (proposed or received) is `gap` old.
    ///
    /// Why the gap: a block costs every validator the same votes, journal
    /// syncs, frames and index batch whatever it carries (about 8 ms of
    /// CPU across four validators on the bench machine, docs/performance.md,
    /// "What a block costs"). Under a steady trickle of single submits a
    /// leader that cut as soon as a view began made blocks of a few
    /// attestations as fast as notarization allowed, and spent the cores
    /// on blocks rather than attestations. An idle chain is not slowed:
    /// its last block is old, so the first attestation waits only the
    /// linger; and a full pool never waits.
    pub fn leader_may_cut(
        &self,
        pending: usize,
        since_asked: Duration,
        since_last_block: Option<Duration>,
    ) -> bool {
        pending >= self.attestations_max
            || (since_asked >= self.linger && since_last_block.is_none_or(|t| t >= self.gap))
    }

    /// The policy in force for the next block `governance` will commit.
    pub fn next(governance: &crate::governance::Governance) -> BlockPolicy {
        let membership = governance.history().at(governance.next_height());
        BlockPolicy::of(membership.rules().consensus())
    }
}

/// The engine's leader timeout and its cap from consensus parameters
/// (the cap never below the base).
pub fn timeouts(
    params: &lotline_genesis::ConsensusParams,
) -> (std::num::NonZeroU64, std::num::NonZeroU64) {
    use std::num::NonZeroU64;
    let base = NonZeroU64::new(params.timeout_base_ms).unwrap_or(NonZeroU64::MIN);
    let max = NonZeroU64::new(params.timeout_max_ms).unwrap_or(NonZeroU64::MIN);
    (base, max.max(base))
}

/// The default linger: long enough to collect a burst of concurrent submits,
/// short against an fdatasync.
pub const BLOCK_LINGER: Duration = Duration::from_millis(1);

/// The default least gap between blocks under load (capped by
/// `block_interval_ms`): about 50 blocks a second at most while blocks
/// are not full, at the price of up to this long waiting for a block
/// (docs/performance.md, "What a block costs").
pub const BLOCK_GAP: Duration = Duration::from_millis(20);

/// Why a consensus actor stops its node: a vote, block or piece of evidence
/// it could not make durable. Going on would let it vote or answer from a
/// state its disk does not hold, so the node stops instead (health 503) and
/// its operator reads this reason.
#[derive(Debug, thiserror::Error)]
pub enum Halt {
    #[error("vote journal: {0}")]
    Journal(#[from] VoteJournalError),
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// The solo engine commits every non-empty batch; anything else would
    /// leave the batch in flight for good.
    #[error("the single-validator engine did not commit its batch")]
    SoloDidNotCommit,
}

impl Halt {
    /// Stops the node for this reason.
    pub fn stop(self, shared: &Shared) {
        tracing::error!(reason = %self, "storage failed; stopping the node");
        shared.fail(self.to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> BlockPolicy {
        BlockPolicy::of(&lotline_genesis::ConsensusParams::default())
    }

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn a_leader_after_a_quiet_spell_cuts_once_it_has_lingered() {
        let p = policy();
        assert!(!p.leader_may_cut(1, Duration::ZERO, None));
        assert!(p.leader_may_cut(1, p.linger, None));
        assert!(p.leader_may_cut(1, p.linger, Some(p.gap)));
        assert!(p.leader_may_cut(1, p.linger, Some(10 * p.gap)));
    }

    #[test]
    fn a_leader_under_load_keeps_the_gap_since_the_last_block() {
        let p = policy();
        assert_eq!(p.gap, BLOCK_GAP);
        assert!(!p.leader_may_cut(5, 3 * MS, Some(p.gap - MS)));
        assert!(p.leader_may_cut(5, 3 * MS, Some(p.gap)));
    }

    #[test]
    fn a_full_block_is_cut_at_once() {
        let p = policy();
        assert!(p.leader_may_cut(p.attestations_max, Duration::ZERO, Some(Duration::ZERO)));
    }

    #[test]
    fn the_gap_never_exceeds_the_block_interval() {
        let params = lotline_genesis::ConsensusParams {
            block_interval_ms: 10,
            ..Default::default()
        };
        let p = BlockPolicy::of(&params);
        assert_eq!(p.gap, 10 * MS);
        assert!(p.leader_may_cut(1, p.linger, Some(10 * MS)));
    }
}
