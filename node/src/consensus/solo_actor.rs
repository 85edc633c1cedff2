//! The single validator's actor: the one place where the solo engine's
//! outputs become disk writes and client notifications (several validators:
//! [`super::bft`]). Runs on its own OS thread because every step ends in an
//! fdatasync.

use std::sync::Arc;
use std::time::{Duration, Instant};

use lotline_core::limits;

use super::commit::{self, Indexer};
use super::solo::SoloEngine;
use super::{BlockPolicy, Halt, Input, Output};
use crate::mempool::Admitted;
use crate::state::Shared;
use crate::store::vote_journal::{KeepAbove, VoteJournal};
use crate::store::{BlockRecord, Store};

#[derive(Debug)]
pub struct SoloActor {
    pub engine: SoloEngine,
    pub journal: VoteJournal,
    pub store: Store,
    /// The commit step's second half (`commit.rs`).
    pub indexer: Indexer,
    pub shared: Arc<Shared>,
    pub policy: BlockPolicy,
}

impl SoloActor {
    /// Runs until shutdown; on a storage failure it stops the node.
    pub fn run(mut self) {
        loop {
            // A committed `setConsensus` holds from its effect height on.
            self.policy = BlockPolicy::next(&self.shared.governance);
            let Some(items) = self.next_batch() else {
                break;
            };
            if let Err(reason) = self.step(items) {
                reason.stop(&self.shared);
                return;
            }
        }
        tracing::info!(height = self.store.height(), "consensus actor stopped");
    }

    /// Waits for attestations, then cuts a block when it is full, when
    /// `interval` has passed since the first one, or when arrivals paused for
    /// `linger` — whichever comes first. Without the linger rule, clients that
    /// wait for their commit before sending more could never fill a block, and
    /// every block would wait out the whole interval.
    fn next_batch(&self) -> Option<Vec<Admitted>> {
        let mut pool = self.shared.pool();
        while pool.is_empty() {
            if self.shared.shutting_down() {
                return None;
            }
            pool = self.shared.wait_pool(pool, Duration::from_millis(200));
        }
        let deadline = Instant::now() + self.policy.interval;
        let (mut seen, mut last_arrival) = (pool.len(), Instant::now());
        while pool.len() < self.policy.attestations_max && !self.shared.shutting_down() {
            let now = Instant::now();
            let quiet_until = last_arrival + self.policy.linger;
            if now >= deadline || now >= quiet_until {
                break;
            }
            pool = self.shared.wait_pool(pool, deadline.min(quiet_until) - now);
            if pool.len() != seen {
                (seen, last_arrival) = (pool.len(), Instant::now());
            }
        }
        Some(pool.take(self.policy.attestations_max, limits::BLOCK_BYTES_MAX / 2))
    }

    /// Proposes `items` (taken from the pool: in flight) and commits them.
    /// They leave the pool in one place, the commit step
    /// ([`commit::commit`]); if the store fails the node stops with them
    /// still known, so no client can submit a twin meanwhile.
    fn step(&mut self, items: Vec<Admitted>) -> Result<(), Halt> {
        // The next block's membership decides: a key rotated away or
        // revoked since admission leaves the pool here.
        let governance = &self.shared.governance;
        let next = governance.next_height();
        let (items, stale) =
            crate::admission::sort_for_proposal(items, &governance.history(), next..=next);
        if !stale.is_empty() {
            let ids: Vec<_> = stale.iter().map(|(a, _)| a.id).collect();
            for (item, rejection) in &stale {
                tracing::warn!(id = %item.id, ?rejection, "pending attestation no longer admissible; dropped");
            }
            self.shared.pool().remove_committed(&ids);
        }
        if items.is_empty() {
            return Ok(());
        }
        let batch = items.len();
        let envelopes = items.into_iter().map(|a| a.envelope).collect();
        let outputs = self.engine.handle(Input::Propose {
            attestations: envelopes,
            evidence: Vec::new(),
            now_ms: crate::clock::unix_ms(),
        });
        let mut journaled = false;
        let mut committed = false;
        for output in outputs {
            match output {
                Output::Journal(vote) => {
                    self.journal.append(&vote)?;
                    journaled = true;
                }
                Output::Commit {
                    block,
                    ids,
                    finality,
                } => {
                    if journaled {
                        let journal = &mut self.journal;
                        crate::metrics::timed(&self.shared.metrics.vote_sync_seconds, || {
                            journal.sync()
                        })?;
                        journaled = false;
                    }
                    let keep = KeepAbove::committed(&block.header, &finality);
                    let record = BlockRecord { block, finality };
                    if let Err(e) =
                        commit::commit(&mut self.store, &self.indexer, &self.shared, record, ids)
                    {
                        self.engine.rollback_to(self.store.head());
                        return Err(e.into());
                    }
                    committed = true;
                    // The block log is durable now: its finality is the floor.
                    self.journal.compact(keep)?;
                }
                // A single validator neither sends nor sets timers.
                Output::Broadcast(_) | Output::SetTimer { .. } => {}
                // Outputs of the multi-validator Simplex engine
                // (`lotline_consensus::Engine`); the solo engine never emits
                // them. The multi-validator actor comes with networking.
                Output::Send { .. }
                | Output::Persist(_)
                | Output::Build { .. }
                | Output::Verify { .. }
                | Output::Sync { .. }
                | Output::Evidence(_)
                | Output::Dropped { .. } => {}
            }
        }
        if journaled {
            let journal = &mut self.journal;
            crate::metrics::timed(&self.shared.metrics.vote_sync_seconds, || journal.sync())?;
        }
        if !committed && batch > 0 {
            return Err(Halt::SoloDidNotCommit);
        }
        Ok(())
    }
}
