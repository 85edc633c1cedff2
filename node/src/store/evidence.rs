//! Equivocation evidence in the index: *pending* (this node verified it; its
//! leaders will propose it) or *recorded* (a finalized block holds it, at a
//! height every node agrees on).
//!
//! ```text
//! e | signer (u16 BE) | view (u64 BE) | kind (u8) -> postcard(StoredEvidence)
//! ```
//!
//! One entry per offence ([`EvidenceKey`]): two different vote pairs proving
//! the same offence are the same evidence. Recording is part of the block's
//! atomic sled batch ([`index_block`]) and overwrites a pending entry;
//! keeping pending evidence ([`StoreReader::keep_evidence`]) never
//! overwrites anything, so a recorded entry stays recorded. Rebuilding sled
//! from the block log brings back every recorded entry (pending ones are
//! local and are learnt again from gossip).

use lotline_core::block::{Block, BlockHash};
use lotline_core::evidence::{Evidence, EvidenceKey};
use serde::{Deserialize, Serialize};

use super::index;
use super::{StoreError, StoreReader};

/// The value of an evidence entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredEvidence {
    pub evidence: Evidence,
    /// `None` while pending.
    pub recorded: Option<Recorded>,
}

/// Where the chain records an offence.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recorded {
    pub height: u64,
    pub block: BlockHash,
}

fn key_of(key: EvidenceKey) -> [u8; 12] {
    index::evidence_key(key.signer, key.view, key.kind as u8)
}

/// Adds the evidence a committed block records to its sled batch. A block
/// that passed the body check holds only conflicting pairs; anything else
/// (impossible) is skipped rather than indexed under a wrong key.
pub(super) fn index_block(batch: &mut super::Writes, block: &Block) {
    if block.evidence.is_empty() {
        return;
    }
    let recorded = Recorded {
        height: block.header.height,
        block: block.hash(),
    };
    for evidence in &block.evidence {
        if let Some(key) = evidence.key() {
            let stored = StoredEvidence {
                evidence: evidence.clone(),
                recorded: Some(recorded),
            };
            batch.insert(&key_of(key)[..], index::encode(&stored));
        }
    }
}

impl StoreReader {
    /// Keeps verified evidence as pending unless its offence is already
    /// known (pending or recorded). Returns whether it was new. The caller
    /// verified it (`Evidence::verify`); evidence that does not conflict by
    /// content is refused with `false`.
    pub fn keep_evidence(&self, evidence: &Evidence) -> Result<bool, StoreError> {
        let Some(key) = evidence.key() else {
            return Ok(false);
        };
        let stored = StoredEvidence {
            evidence: evidence.clone(),
            recorded: None,
        };
        let swapped = self
            .db
            .compare_and_swap(
                key_of(key),
                None as Option<&[u8]>,
                Some(index::encode(&stored)),
            )
            .map_err(|e| self.sled_err(e))?;
        Ok(swapped.is_ok())
    }

    /// Where the chain records `key`, if a committed block does.
    pub fn evidence_recorded(&self, key: EvidenceKey) -> Result<Option<Recorded>, StoreError> {
        let stored: Option<StoredEvidence> = self.get("evidence", &key_of(key))?;
        Ok(stored.and_then(|s| s.recorded))
    }

    /// Every offence this node knows, by signer and view.
    pub fn evidence(&self) -> Result<Vec<StoredEvidence>, StoreError> {
        let mut out = Vec::new();
        for entry in self.db.scan_prefix([index::PREFIX_EVIDENCE]) {
            let (_, value) = entry.map_err(|e| self.sled_err(e))?;
            out.push(
                index::decode("evidence", &value).map_err(|source| StoreError::Decode {
                    what: "evidence",
                    source,
                })?,
            );
        }
        Ok(out)
    }
}
