//! Blocks: a header that commits to an ordered list of attestations and to
//! the equivocation evidence the block records.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::attestation::{AttestationId, Envelope};
use crate::codec::{self, DecodeError};
use crate::evidence::{self, Evidence, EvidenceKey};
use crate::hash::{self, Digest, Domain};
use crate::limits;
use crate::merkle;

/// The hash of a block header.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct BlockHash(pub Digest);

impl fmt::Debug for BlockHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BlockHash({})", self.0)
    }
}

impl fmt::Display for BlockHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// A block header. Field order is the encoding order; changing it is a
/// format change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Header {
    /// Format version of the header, currently 1.
    pub version: u16,
    pub chain_id: Digest,
    /// Height 1 is the first block; its parent is the chain id.
    pub height: u64,
    /// The consensus view in which the block was proposed.
    pub view: u64,
    pub parent: BlockHash,
    /// Merkle root over the attestation ids, in block order.
    pub root: Digest,
    pub count: u32,
    /// Commitment to the block's equivocation evidence
    /// ([`evidence::root`]): a certificate of the header certifies it too.
    pub evidence_root: Digest,
    /// Proposer's clock, unix milliseconds. Informational: not a consensus rule.
    pub timestamp_ms: u64,
    /// Index of the proposer in the validator set.
    pub proposer: u16,
}

/// Version 2 added `evidence_root`.
pub const HEADER_VERSION: u16 = 2;

impl Header {
    pub fn hash(&self) -> BlockHash {
        BlockHash(hash::hash(Domain::Header, &codec::to_bytes(self)))
    }

    /// The parent hash a first block must carry: the chain id itself.
    pub fn genesis_parent(chain_id: &Digest) -> BlockHash {
        BlockHash(*chain_id)
    }
}

/// A block: header plus the attestations and evidence it commits to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Block {
    pub header: Header,
    pub attestations: Vec<Envelope>,
    /// Equivocations recorded on chain by this block, at most
    /// [`limits::BLOCK_EVIDENCE_MAX`], each offence ([`EvidenceKey`]) once.
    /// Their signatures are checked by the validators that vote for the
    /// block, not here.
    pub evidence: Vec<Evidence>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlockError {
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error("block header version {0} is not supported")]
    Version(u16),
    #[error("block is for chain {got}, this chain is {expected}")]
    ChainId { expected: Digest, got: Digest },
    #[error("block has {0} attestations, more than the limit")]
    TooMany(usize),
    #[error("header count {header} does not match the {actual} attestations")]
    Count { header: u32, actual: usize },
    #[error("header Merkle root {header} does not match the attestations' root {actual}")]
    Root { header: Digest, actual: Digest },
    #[error("attestation {0} appears twice in the block")]
    Duplicate(AttestationId),
    #[error("block carries {0} pieces of evidence, more than the limit")]
    TooMuchEvidence(usize),
    #[error("evidence {index} is not two conflicting votes of one validator")]
    NotEvidence { index: usize },
    #[error("evidence {index} repeats an offence of the same block: {key:?}")]
    DuplicateEvidence { index: usize, key: EvidenceKey },
    #[error("header evidence root {header} does not match the evidence's root {actual}")]
    EvidenceRoot { header: Digest, actual: Digest },
    #[error("block at height {height} has parent {got}, expected {expected}")]
    Parent {
        height: u64,
        expected: BlockHash,
        got: BlockHash,
    },
    #[error("block height {got} does not follow {expected}")]
    Height { expected: u64, got: u64 },
    #[error(
        "no block can follow a parent at the last height there is ({})",
        u64::MAX
    )]
    PastLastHeight,
}

impl Block {
    /// Builds a block over `attestations`, computing count and root.
    pub fn new(
        chain_id: Digest,
        height: u64,
        view: u64,
        parent: BlockHash,
        timestamp_ms: u64,
        proposer: u16,
        attestations: Vec<Envelope>,
    ) -> Block {
        Block::new_hashed(
            chain_id,
            height,
            view,
            parent,
            timestamp_ms,
            proposer,
            attestations,
        )
        .0
    }

    /// [`Block::new`], with the attestation ids the root was built from:
    /// an id is a hash of the whole envelope, so whoever holds the block
    /// next ([`Block::check_hashed`], the block log) takes them instead of
    /// hashing every body again.
    pub fn new_hashed(
        chain_id: Digest,
        height: u64,
        view: u64,
        parent: BlockHash,
        timestamp_ms: u64,
        proposer: u16,
        attestations: Vec<Envelope>,
    ) -> (Block, Vec<AttestationId>) {
        let ids: Vec<AttestationId> = attestations.iter().map(Envelope::id).collect();
        let count = u32::try_from(attestations.len()).unwrap_or(u32::MAX);
        let block = Block {
            header: Header {
                version: HEADER_VERSION,
                chain_id,
                height,
                view,
                parent,
                root: merkle::root(&ids),
                count,
                evidence_root: evidence::root(&[]),
                timestamp_ms,
                proposer,
            },
            attestations,
            evidence: Vec::new(),
        };
        (block, ids)
    }

    /// The same block recording `evidence` (the header's commitment follows).
    pub fn with_evidence(mut self, evidence: Vec<Evidence>) -> Block {
        self.header.evidence_root = evidence::root(&evidence);
        self.evidence = evidence;
        self
    }

    pub fn hash(&self) -> BlockHash {
        self.header.hash()
    }

    pub fn ids(&self) -> Vec<AttestationId> {
        self.attestations.iter().map(Envelope::id).collect()
    }

    /// Checks that the body matches the header (version, chain, count, root,
    /// no duplicate ids; evidence count, shape, no repeated offence, root).
    /// Returns the ids so callers need not hash again.
    pub fn check_body(&self, chain_id: &Digest) -> Result<Vec<AttestationId>, BlockError> {
        // The header's claims first: hashing the bodies is the costly part.
        self.check_shape(chain_id)?;
        let ids = self.ids();
        self.check_ids(&ids)?;
        Ok(ids)
    }

    /// [`Block::check_body`] with the ids this process already derived from
    /// these very bodies ([`Block::new_hashed`], or an earlier
    /// `check_body` of the same block, as the consensus engine keeps them):
    /// every check but hashing each envelope again. Ids from anywhere else
    /// (a peer, a compact proposal) are claims, not hashes: check those
    /// blocks with `check_body`.
    pub fn check_hashed(&self, chain_id: &Digest, ids: &[AttestationId]) -> Result<(), BlockError> {
        self.check_shape(chain_id)?;
        self.check_ids(ids)
    }

    /// Version, chain, and a count within the limit and equal to the body's.
    fn check_shape(&self, chain_id: &Digest) -> Result<(), BlockError> {
        if self.header.version != HEADER_VERSION {
            return Err(BlockError::Version(self.header.version));
        }
        if self.header.chain_id != *chain_id {
            return Err(BlockError::ChainId {
                expected: *chain_id,
                got: self.header.chain_id,
            });
        }
        if self.attestations.len() > limits::BLOCK_ATTESTATIONS_MAX {
            return Err(BlockError::TooMany(self.attestations.len()));
        }
        if usize::try_from(self.header.count).ok() != Some(self.attestations.len()) {
            return Err(BlockError::Count {
                header: self.header.count,
                actual: self.attestations.len(),
            });
        }
        Ok(())
    }

    /// The ids of the body: one per attestation, none twice, under the
    /// header's root; then the evidence.
    fn check_ids(&self, ids: &[AttestationId]) -> Result<(), BlockError> {
        if ids.len() != self.attestations.len() {
            return Err(BlockError::Count {
                header: self.header.count,
                actual: ids.len(),
            });
        }
        let mut seen = std::collections::BTreeSet::new();
        for id in ids {
            if !seen.insert(*id) {
                return Err(BlockError::Duplicate(*id));
            }
        }
        let actual = merkle::root(ids);
        if actual != self.header.root {
            return Err(BlockError::Root {
                header: self.header.root,
                actual,
            });
        }
        self.check_evidence()
    }

    /// The evidence part of [`Block::check_body`].
    fn check_evidence(&self) -> Result<(), BlockError> {
        if self.evidence.len() > limits::BLOCK_EVIDENCE_MAX {
            return Err(BlockError::TooMuchEvidence(self.evidence.len()));
        }
        let mut seen = std::collections::BTreeSet::new();
        for (index, item) in self.evidence.iter().enumerate() {
            let key = item.key().ok_or(BlockError::NotEvidence { index })?;
            if !seen.insert(key) {
                return Err(BlockError::DuplicateEvidence { index, key });
            }
        }
        let actual = evidence::root(&self.evidence);
        if actual != self.header.evidence_root {
            return Err(BlockError::EvidenceRoot {
                header: self.header.evidence_root,
                actual,
            });
        }
        Ok(())
    }

    /// Checks that this block directly extends `parent` (or the chain start).
    pub fn check_link(&self, parent: Option<&Header>) -> Result<(), BlockError> {
        let (expected_height, expected_parent) = match parent {
            // Nothing extends the last height there is (a hostile header
            // may claim it).
            Some(p) => match p.height.checked_add(1) {
                Some(height) => (height, p.hash()),
                None => return Err(BlockError::PastLastHeight),
            },
            None => (1, Header::genesis_parent(&self.header.chain_id)),
        };
        if self.header.height != expected_height {
            return Err(BlockError::Height {
                expected: expected_height,
                got: self.header.height,
            });
        }
        if self.header.parent != expected_parent {
            return Err(BlockError::Parent {
                height: self.header.height,
                expected: expected_parent,
                got: self.header.parent,
            });
        }
        Ok(())
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        codec::to_bytes(self)
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Block, DecodeError> {
        codec::from_bytes("block", bytes, limits::BLOCK_BYTES_MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::SigningKey;

    fn block(chain: Digest, payloads: &[&[u8]]) -> (Block, Vec<AttestationId>) {
        let key = SigningKey::from_seed(&[9; 32]);
        let attestations = payloads
            .iter()
            .map(|p| Envelope::sign(p.to_vec(), &key))
            .collect();
        Block::new_hashed(
            chain,
            1,
            1,
            Header::genesis_parent(&chain),
            0,
            0,
            attestations,
        )
    }

    #[test]
    fn a_block_checks_the_same_with_its_own_ids_as_by_hashing_its_bodies() {
        let chain = Digest([5; 32]);
        let (block, ids) = block(chain, &[b"a", b"b", b"c"]);
        assert_eq!(ids, block.ids(), "new_hashed hands over the bodies' ids");
        assert_eq!(block.check_body(&chain), Ok(ids.clone()));
        assert_eq!(block.check_hashed(&chain, &ids), Ok(()));
        // The header's claims are checked before any id.
        assert!(matches!(
            block.check_hashed(&Digest([6; 32]), &ids),
            Err(BlockError::ChainId { .. })
        ));
    }

    #[test]
    fn ids_of_other_bodies_are_refused() {
        let chain = Digest([5; 32]);
        let (block, ids) = block(chain, &[b"a", b"b", b"c"]);
        let (_, others) = block_of_others(chain);
        assert!(matches!(
            block.check_hashed(&chain, &others),
            Err(BlockError::Root { .. })
        ));
        assert!(matches!(
            block.check_hashed(&chain, &ids[..2]),
            Err(BlockError::Count { .. })
        ));
        let repeated = vec![ids[0], ids[0], ids[2]];
        assert!(matches!(
            block.check_hashed(&chain, &repeated),
            Err(BlockError::Duplicate(_))
        ));
        let mut swapped = ids.clone();
        swapped.swap(0, 1);
        assert!(matches!(
            block.check_hashed(&chain, &swapped),
            Err(BlockError::Root { .. })
        ));
    }

    fn block_of_others(chain: Digest) -> (Block, Vec<AttestationId>) {
        block(chain, &[b"x", b"y", b"z"])
    }
}
