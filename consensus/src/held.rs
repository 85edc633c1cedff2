//! Uncommitted block bodies, each with its attestation ids: the engine's,
//! and the node actor's (which also keeps committed blocks until they are
//! indexed, for its repeat check).
//!
//! Which ids the uncommitted blocks carry is asked on every proposal and
//! whenever the actor decides whether there is work to order
//! ([`Engine::live_attestations`](crate::engine::Engine::live_attestations)).
//! An id is the BLAKE3 hash of a whole envelope, so deriving them again on
//! each question made hashing 40 % of the consensus thread's time at four
//! validators (docs/performance.md, "Ids hashed once"). They are derived
//! once, when a body is taken in (most callers already have them from
//! [`Block::check_body`]), and forgotten with it.

use std::collections::BTreeMap;

use lotline_core::attestation::AttestationId;
use lotline_core::block::{Block, BlockHash};

/// Bodies by block hash.
#[derive(Debug, Default)]
pub struct HeldBlocks {
    bodies: BTreeMap<BlockHash, Held>,
}

#[derive(Debug)]
struct Held {
    block: Block,
    ids: Vec<AttestationId>,
}

impl HeldBlocks {
    /// Takes in a body whose ids the caller has already derived (from
    /// `Block::check_body` or `Block::new`).
    pub fn insert_with_ids(&mut self, hash: BlockHash, block: Block, ids: Vec<AttestationId>) {
        self.bodies.insert(hash, Held { block, ids });
    }

    /// Takes in a body, deriving its ids.
    pub fn insert(&mut self, hash: BlockHash, block: Block) {
        let ids = block.ids();
        self.insert_with_ids(hash, block, ids);
    }

    pub fn get(&self, hash: &BlockHash) -> Option<&Block> {
        self.bodies.get(hash).map(|held| &held.block)
    }

    /// The body and the ids it carries, in block order.
    pub fn get_with_ids(&self, hash: &BlockHash) -> Option<(&Block, &[AttestationId])> {
        self.bodies
            .get(hash)
            .map(|held| (&held.block, held.ids.as_slice()))
    }

    pub fn contains_key(&self, hash: &BlockHash) -> bool {
        self.bodies.contains_key(hash)
    }

    pub fn remove(&mut self, hash: &BlockHash) -> Option<Block> {
        self.bodies.remove(hash).map(|held| held.block)
    }

    /// Takes out a body with the ids it carries.
    pub fn remove_with_ids(&mut self, hash: &BlockHash) -> Option<(Block, Vec<AttestationId>)> {
        self.bodies.remove(hash).map(|held| (held.block, held.ids))
    }

    /// Keeps the bodies `keep` accepts.
    pub fn retain(&mut self, mut keep: impl FnMut(&Block) -> bool) {
        self.bodies.retain(|_, held| keep(&held.block));
    }

    pub fn blocks(&self) -> impl Iterator<Item = &Block> {
        self.bodies.values().map(|held| &held.block)
    }

    /// Each body with the ids it carries, in block order.
    pub fn blocks_with_ids(&self) -> impl Iterator<Item = (&Block, &[AttestationId])> {
        self.bodies
            .values()
            .map(|held| (&held.block, held.ids.as_slice()))
    }

    /// Every id every held body carries (with repeats across forks).
    pub fn all_ids(&self) -> impl Iterator<Item = &AttestationId> {
        self.bodies.values().flat_map(|held| held.ids.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lotline_core::attestation::Envelope;
    use lotline_core::block::BlockHash;
    use lotline_core::hash::Digest;

    fn block(height: u64, payloads: &[&[u8]]) -> Block {
        let attestations = payloads
            .iter()
            .map(|p| Envelope {
                payload_type: "application/vnd.lotline.statement+json".into(),
                payload: p.to_vec().into(),
                signatures: Vec::new(),
            })
            .collect();
        Block::new(
            Digest([1; 32]),
            height,
            height,
            BlockHash(Digest([0; 32])),
            0,
            0,
            attestations,
        )
    }

    #[test]
    fn ids_are_the_bodies_ids_and_leave_with_them() {
        let mut held = HeldBlocks::default();
        let (a, b) = (block(1, &[b"one", b"two"]), block(2, &[b"three"]));
        held.insert(a.hash(), a.clone());
        held.insert_with_ids(b.hash(), b.clone(), b.ids());
        assert_eq!(held.get_with_ids(&a.hash()).unwrap().1, a.ids().as_slice());
        let mut all: Vec<_> = held.all_ids().copied().collect();
        all.sort();
        let mut expected = [a.ids(), b.ids()].concat();
        expected.sort();
        assert_eq!(all, expected);
        held.retain(|block| block.header.height > 1);
        assert!(!held.contains_key(&a.hash()));
        assert_eq!(held.all_ids().copied().collect::<Vec<_>>(), b.ids());
        assert_eq!(held.remove(&b.hash()), Some(b));
        assert_eq!(held.all_ids().count(), 0);
    }
}
