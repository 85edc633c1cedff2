//! The node's membership history: the committed governance transactions
//! ([`lotline_genesis::governance`]) and the membership they produce at each
//! height, shared by admission, the consensus actor and the API.
//!
//! The actor feeds it each block at commit (after the block log's
//! fdatasync, in height order), so from then on admission judges new
//! submissions by the membership of the next height. It is rebuilt at open
//! from the store's governance keyspace ([`crate::store::governance`]).
//! The rules themselves live in the genesis crate: this file only keeps the
//! state current and answers "which membership holds at height h".

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use lotline_core::block::Block;
use lotline_genesis::Genesis;
use lotline_genesis::governance::{History, PAYLOAD_TYPE};

use crate::store::{StoreError, StoreReader};

/// The history of committed governance transactions (module doc).
#[derive(Debug)]
pub struct Governance {
    history: RwLock<Arc<History>>,
    /// The highest committed height fed in.
    committed: AtomicU64,
}

impl Governance {
    /// A chain with no governance transaction committed yet.
    pub fn new(genesis: Arc<Genesis>) -> Governance {
        Governance {
            history: RwLock::new(Arc::new(History::new(genesis))),
            committed: AtomicU64::new(0),
        }
    }

    /// The history of a store whose index holds `height` blocks.
    pub fn open(
        genesis: Arc<Genesis>,
        reader: &StoreReader,
        height: u64,
    ) -> Result<Governance, StoreError> {
        let governance = Governance::new(genesis);
        governance.reload(reader, height)?;
        Ok(governance)
    }

    /// Starts over from the governance transactions of a store whose index
    /// holds `height` blocks (the store does this at open, before it reads
    /// the block log: `store::epochs`).
    pub fn reload(&self, reader: &StoreReader, height: u64) -> Result<(), StoreError> {
        let mut history = History::new(self.history().genesis().clone());
        for (at, envelope) in reader.governance()? {
            if let Err(error) = history.record(at.height, at.index, &envelope) {
                // Consensus ordered it, so a quorum judged it valid; a node
                // that disagrees says so loudly and keeps the chain's order.
                tracing::error!(height = at.height, %error, "committed governance transaction does not verify here");
            }
        }
        *self.history.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(history);
        self.committed.store(height, Ordering::Release);
        Ok(())
    }

    /// The current history (cheap: an `Arc`).
    pub fn history(&self) -> Arc<History> {
        self.history
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The orgs, keys and read policy in force for the next block: what
    /// every read path judges a caller by (`access::visibility`), so an
    /// org voted in reads from its effect height and a removed one stops.
    pub fn rules_now(&self) -> Arc<Genesis> {
        self.history().at(self.next_height()).rules_shared()
    }

    /// The highest committed height this history has seen.
    pub fn committed(&self) -> u64 {
        self.committed.load(Ordering::Acquire)
    }

    /// The height of the next block: the one new submissions are judged for.
    pub fn next_height(&self) -> u64 {
        self.committed().saturating_add(1)
    }

    /// Feeds a committed block. Blocks at or below the committed height
    /// (a repeat after sync) change nothing.
    pub fn commit(&self, block: &Block) {
        let height = block.header.height;
        if height <= self.committed() {
            return;
        }
        let has_governance = block
            .attestations
            .iter()
            .any(|e| e.payload_type == PAYLOAD_TYPE);
        if has_governance {
            let mut guard = self.history.write().unwrap_or_else(|p| p.into_inner());
            let mut history = (**guard).clone();
            record_block(&mut history, block);
            *guard = Arc::new(history);
        }
        self.committed.store(height, Ordering::Release);
    }
}

/// Records a block's governance transactions into `history`, in block
/// order. One that does not verify is logged and skipped (see
/// [`Governance::open`]).
pub fn record_block(history: &mut History, block: &Block) {
    let height = block.header.height;
    for (i, envelope) in block.attestations.iter().enumerate() {
        if envelope.payload_type != PAYLOAD_TYPE {
            continue;
        }
        let index = u32::try_from(i).unwrap_or(u32::MAX);
        match history.record(height, index, envelope) {
            Ok(()) => {
                tracing::info!(height, id = %envelope.id(), "governance transaction committed")
            }
            Err(error) => {
                tracing::error!(height, %error, "committed governance transaction does not verify here")
            }
        }
    }
}
