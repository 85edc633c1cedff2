//! Which validators certify the block at a height: the genesis set in
//! epoch 0, then the sets that committed validator-set changes make
//! (`lotline_genesis::governance`, docs/protocol.md "Validator-set
//! changes").
//!
//! The block log checks every block's finality against the set of the
//! block's own epoch. For a node that set follows from the chain itself:
//! the governance transactions of the blocks below decide it, and a change
//! committed at height `g` takes effect more than half an epoch above `g`.
//! So checking blocks in height order, learning from each one checked
//! ([`ValidatorSets::observe`]), always knows the set of the next.
//!
//! Tools and tests that know one fixed set pass a
//! [`lotline_core::ValidatorSet`]; the node passes its
//! [`crate::governance::Governance`], which it also consults for admission.

use std::borrow::Cow;
use std::sync::Arc;

use lotline_core::block::Block;
use lotline_core::{Digest, ValidatorSet};
use lotline_genesis::History;

use super::{StoreError, StoreReader};
use crate::governance::Governance;

/// The validator set of each height, learnt block by block (module doc).
pub trait ValidatorSets: std::fmt::Debug + Send + Sync {
    fn chain_id(&self) -> Digest;

    /// The set that certifies the block at `height`.
    fn set_at(&self, height: u64) -> Cow<'_, ValidatorSet>;

    /// Learns from a verified block (its governance transactions). Blocks
    /// at or below [`ValidatorSets::observed`] change nothing.
    fn observe(&self, _block: &Block) {}

    /// The highest height learnt from; `u64::MAX` for a fixed set, which
    /// learns nothing.
    fn observed(&self) -> u64 {
        u64::MAX
    }

    /// Starts over from what the index holds through `applied` (at store
    /// open, before the block log is read).
    fn load(&self, _reader: &StoreReader, _applied: u64) -> Result<(), StoreError> {
        Ok(())
    }
}

impl ValidatorSets for ValidatorSet {
    fn chain_id(&self) -> Digest {
        self.chain_id
    }

    fn set_at(&self, _height: u64) -> Cow<'_, ValidatorSet> {
        Cow::Borrowed(self)
    }
}

/// A history read once (a stopped node's store, a membership-history
/// file): the sets of the heights it covers, learning nothing more.
impl ValidatorSets for History {
    fn chain_id(&self) -> Digest {
        self.genesis().chain_id()
    }

    fn set_at(&self, height: u64) -> Cow<'_, ValidatorSet> {
        Cow::Owned(self.validator_set_at(height))
    }
}

impl ValidatorSets for Governance {
    fn chain_id(&self) -> Digest {
        self.history().chain_id()
    }

    fn set_at(&self, height: u64) -> Cow<'_, ValidatorSet> {
        Cow::Owned(self.history().validator_set_at(height))
    }

    fn observe(&self, block: &Block) {
        self.commit(block);
    }

    fn observed(&self) -> u64 {
        self.committed()
    }

    fn load(&self, reader: &StoreReader, applied: u64) -> Result<(), StoreError> {
        self.reload(reader, applied)
    }
}

/// What a store checks finality against: a fixed set, or a node's
/// governance. Cheap to clone.
#[derive(Clone, Debug)]
pub struct ChainSets(Arc<dyn ValidatorSets>);

impl ChainSets {
    pub fn sets(&self) -> &dyn ValidatorSets {
        &*self.0
    }
}

impl std::ops::Deref for ChainSets {
    type Target = dyn ValidatorSets;

    fn deref(&self) -> &Self::Target {
        &*self.0
    }
}

impl From<ValidatorSet> for ChainSets {
    fn from(set: ValidatorSet) -> Self {
        ChainSets(Arc::new(set))
    }
}

impl From<Arc<Governance>> for ChainSets {
    fn from(governance: Arc<Governance>) -> Self {
        ChainSets(governance)
    }
}
