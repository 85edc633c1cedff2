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
}

impl BlockPolicy {
    /// The policy of consensus parameters (the genesis's, or a
    /// `setConsensus` in force): blocks of at most `block_max_attestations`
    /// (and [`lotline_core::limits::BLOCK_ATTESTATIONS_MAX`]), cut after
    /// `block_interval_ms`, or after [`BLOCK_LINGER`] of quiet if shorter.
    pub fn of(params: &lotline_genesis::ConsensusParams) -> BlockPolicy {
        let interval = Duration::from_millis(params.block_interval_ms);
        BlockPolicy {
            attestations_max: (params.block_max_attestations as usize)
                .clamp(1, lotline_core::limits::BLOCK_ATTESTATIONS_MAX),
            interval,
            linger: BLOCK_LINGER.min(interval),
        }
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
