//! Who validates in which epoch (`vopr --reconfigure`), and the mapping
//! between simulated nodes and their index in an epoch.
//!
//! The simulator names nodes by a fixed id (their slot); the engine names
//! validators by their position in the epoch's set. An epoch's *roster*
//! is its validators in order, followed by every other node in id order,
//! so every node has an index in every epoch: a non-member's is at or
//! above the set's size (the engine then follows the chain without
//! voting). Without `--reconfigure` there is one epoch whose roster is the
//! identity, and nothing of a run changes.
//!
//! Changes are drawn per epoch from the seed: add a spare node, remove a
//! validator (never below `validators_min`: the run's Byzantine validators
//! stay within f of every epoch), or rotate a validator's key. Epoch k + 1 starts at height
//! `k * epoch_blocks + 1` (its boundary block is at `k * epoch_blocks`).

use lotline_consensus::Reconfiguration;
use lotline_core::crypto::{PublicKey, SigningKey};
use lotline_core::hash::Digest;
use lotline_core::validators::ValidatorSet;

use crate::sim::rng::Rng;

/// Epochs drawn for a reconfiguring run (later ones are never reached).
pub const EPOCHS: usize = 24;

/// One epoch's validators.
#[derive(Clone, Debug)]
pub struct Epoch {
    /// The epoch's first height.
    pub from_height: u64,
    /// Node ids in validator order.
    pub members: Vec<u16>,
    /// Every node's signing key in this epoch, by node id.
    signing: Vec<SigningKey>,
    /// What changed at the start of this epoch (for logs).
    pub change: &'static str,
}

impl Epoch {
    pub fn keys(&self) -> Vec<PublicKey> {
        self.members
            .iter()
            .map(|&node| self.signing[usize::from(node)].public_key())
            .collect()
    }

    pub fn n(&self) -> usize {
        self.members.len()
    }
}

#[derive(Clone, Debug)]
pub struct Roster {
    chain_id: Digest,
    nodes: usize,
    epochs: Vec<Epoch>,
}

/// Node `node`'s key after `rotations` rotations, in the run of `seed`.
pub fn node_key(seed: u64, node: u16, rotations: u8) -> SigningKey {
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_be_bytes());
    bytes[8] = node as u8;
    bytes[9] = 0xC0u8.wrapping_add(rotations);
    SigningKey::from_seed(&bytes)
}

impl Roster {
    /// One epoch: validators `0..n`, as every run without `--reconfigure`.
    pub fn fixed(chain_id: Digest, seed: u64, n: usize) -> Roster {
        let signing = (0..n as u16).map(|node| node_key(seed, node, 0)).collect();
        Roster {
            chain_id,
            nodes: n,
            epochs: vec![Epoch {
                from_height: 1,
                members: (0..n as u16).collect(),
                signing,
                change: "genesis",
            }],
        }
    }

    /// Validators `0..n` first, `spares` more nodes, and a change at every
    /// boundary, drawn from `rng`; a removal never leaves fewer than
    /// `validators_min`.
    pub fn draw(
        chain_id: Digest,
        seed: u64,
        (n, spares, validators_min): (usize, usize, usize),
        epoch_blocks: u64,
        rng: &mut Rng,
    ) -> Roster {
        let nodes = n + spares;
        let mut roster = Roster::fixed(chain_id, seed, n);
        roster.nodes = nodes;
        roster.epochs[0].signing = (0..nodes as u16).map(|i| node_key(seed, i, 0)).collect();
        let mut rotations = vec![0u8; nodes];
        for k in 1..EPOCHS {
            let previous = &roster.epochs[k - 1];
            let mut members = previous.members.clone();
            let mut signing = previous.signing.clone();
            let outside: Vec<u16> = (0..nodes as u16)
                .filter(|node| !members.contains(node))
                .collect();
            let change = match rng.below(3) {
                0 if !outside.is_empty() => {
                    let node = outside[rng.below(outside.len() as u64) as usize];
                    members.push(node);
                    "add"
                }
                1 if members.len() > validators_min => {
                    members.remove(rng.below(members.len() as u64) as usize);
                    "remove"
                }
                _ => {
                    let node = members[rng.below(members.len() as u64) as usize];
                    rotations[usize::from(node)] += 1;
                    signing[usize::from(node)] = node_key(seed, node, rotations[usize::from(node)]);
                    "rotate"
                }
            };
            roster.epochs.push(Epoch {
                from_height: k as u64 * epoch_blocks + 1,
                members,
                signing,
                change,
            });
        }
        roster
    }

    pub fn chain_id(&self) -> Digest {
        self.chain_id
    }

    /// All nodes, members of some epoch or not.
    pub fn nodes(&self) -> usize {
        self.nodes
    }

    pub fn epoch(&self, epoch: u64) -> Option<&Epoch> {
        self.epochs.get(usize::try_from(epoch).ok()?)
    }

    /// The epoch height `height` belongs to.
    pub fn epoch_of_height(&self, height: u64) -> u64 {
        self.epochs
            .iter()
            .rposition(|e| e.from_height <= height)
            .unwrap_or(0) as u64
    }

    /// The last height of `epoch`, if a later epoch is drawn.
    pub fn boundary(&self, epoch: u64) -> Option<u64> {
        self.epoch(epoch + 1).map(|next| next.from_height - 1)
    }

    pub fn is_member(&self, epoch: u64, node: u16) -> bool {
        self.epoch(epoch).is_some_and(|e| e.members.contains(&node))
    }

    /// `node`'s index in `epoch`: its position among the validators, or
    /// after them for a non-member.
    pub fn index_of(&self, epoch: u64, node: u16) -> u16 {
        let Some(e) = self.epoch(epoch) else {
            return node;
        };
        if let Some(position) = e.members.iter().position(|&m| m == node) {
            return position as u16;
        }
        let before = (0..node).filter(|other| !e.members.contains(other)).count();
        (e.n() + before) as u16
    }

    /// The node with `index` in `epoch`.
    pub fn node_of(&self, epoch: u64, index: u16) -> Option<u16> {
        let e = self.epoch(epoch)?;
        if let Some(&node) = e.members.get(usize::from(index)) {
            return Some(node);
        }
        let rest = usize::from(index).checked_sub(e.n())?;
        (0..self.nodes as u16)
            .filter(|node| !e.members.contains(node))
            .nth(rest)
    }

    /// `node`'s signing key in `epoch`.
    pub fn key(&self, epoch: u64, node: u16) -> SigningKey {
        let e = self
            .epoch(epoch)
            .unwrap_or_else(|| &self.epochs[self.epochs.len() - 1]);
        e.signing[usize::from(node)].clone()
    }

    pub fn validator_set(&self, epoch: u64) -> Option<ValidatorSet> {
        self.epoch(epoch)
            .map(|e| ValidatorSet::new(self.chain_id, e.keys()).in_epoch(epoch))
    }

    /// What `node`'s actor tells its engine about `epoch`.
    pub fn reconfiguration(&self, epoch: u64, node: u16, voting: bool) -> Option<Reconfiguration> {
        let e = self.epoch(epoch)?;
        Some(Reconfiguration {
            epoch,
            from_height: e.from_height,
            validators: e.keys(),
            index: self.index_of(epoch, node),
            key: self.key(epoch, node),
            voting: voting && self.is_member(epoch, node),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_node_has_one_index_per_epoch_and_back() {
        let mut rng = Rng::new(7);
        let roster = Roster::draw(Digest::ZERO, 7, (4, 2, 4), 5, &mut rng);
        for epoch in 0..EPOCHS as u64 {
            let e = roster.epoch(epoch).unwrap();
            assert!(e.n() >= 4);
            let mut seen = std::collections::BTreeSet::new();
            for node in 0..6u16 {
                let index = roster.index_of(epoch, node);
                assert!(seen.insert(index));
                assert_eq!(roster.node_of(epoch, index), Some(node));
                assert_eq!(usize::from(index) < e.n(), roster.is_member(epoch, node));
            }
        }
        assert_eq!(roster.epoch_of_height(5), 0);
        assert_eq!(roster.epoch_of_height(6), 1);
        assert_eq!(roster.boundary(0), Some(5));
        let fixed = Roster::fixed(Digest::ZERO, 7, 4);
        assert_eq!((fixed.index_of(0, 3), fixed.node_of(0, 2)), (3, Some(2)));
        assert_eq!(fixed.boundary(0), None);
    }
}
