//! The actor's evidence pool, and the rules for evidence in a proposal.
//!
//! Evidence flows like attestations: the engine verifies it (detected or
//! gossiped) and hands it over once ([`lotline_consensus::Output::Evidence`]);
//! the pool keeps it, pending, until a committed block records it; our
//! leader offers it in its next proposal; every validator checks a
//! proposal's evidence ([`check_proposal`]) with the rest of the payload.
//! The pool is bounded ([`PENDING_MAX`]): a Byzantine validator can
//! equivocate in every view, and blocks drain the backlog at
//! [`limits::BLOCK_EVIDENCE_MAX`] per block.

use std::collections::{BTreeMap, BTreeSet};

use lotline_core::ValidatorSet;
use lotline_core::block::Block;
use lotline_core::evidence::{Evidence, EvidenceError, EvidenceKey};
use lotline_core::limits;

use crate::store::{StoreError, StoreReader};

/// Pending offences one node holds at most.
pub const PENDING_MAX: usize = 256;

/// Verified evidence not yet recorded by a committed block.
#[derive(Debug, Default)]
pub struct Pool {
    pending: BTreeMap<EvidenceKey, Evidence>,
}

/// Why a proposal's evidence is refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("evidence {index} does not verify: {source}")]
    Invalid { index: usize, source: EvidenceError },
    #[error("{key:?} is already recorded at height {height}")]
    Recorded { key: EvidenceKey, height: u64 },
    #[error("{key:?} is already recorded by an uncommitted ancestor")]
    InAncestor { key: EvidenceKey },
    #[error("store: {0}")]
    Store(String),
}

impl Pool {
    /// The pending evidence the store kept (after a restart).
    pub fn load(reader: &StoreReader) -> Result<Pool, StoreError> {
        let mut pool = Pool::default();
        for stored in reader.evidence()? {
            if stored.recorded.is_none() {
                pool.keep(stored.evidence);
            }
        }
        Ok(pool)
    }

    /// Keeps verified evidence; `false` if its offence is already pending or
    /// the pool is full.
    pub fn keep(&mut self, evidence: Evidence) -> bool {
        let Some(key) = evidence.key() else {
            return false;
        };
        if self.pending.len() >= PENDING_MAX || self.pending.contains_key(&key) {
            return false;
        }
        self.pending.insert(key, evidence);
        true
    }

    /// What a leader proposes: pending offences that no uncommitted block
    /// we know records yet, in key order (signer, view, kind), at most one
    /// block's worth.
    pub fn select(&self, in_flight: &BTreeSet<EvidenceKey>) -> Vec<Evidence> {
        self.pending
            .iter()
            .filter(|(key, _)| !in_flight.contains(key))
            .take(limits::BLOCK_EVIDENCE_MAX)
            .map(|(_, evidence)| evidence.clone())
            .collect()
    }

    /// Forgets pending evidence of other epochs than `epoch`: a block
    /// records only evidence of its own epoch (its set judges the votes).
    pub fn retain_epoch(&mut self, epoch: u64) {
        self.pending.retain(|_, e| e.first.epoch == epoch);
    }

    /// A committed block recorded these offences: no longer pending.
    pub fn remove_recorded(&mut self, block: &Block) {
        for key in block.evidence.iter().filter_map(Evidence::key) {
            self.pending.remove(&key);
        }
    }

    pub fn len(&self) -> usize {
        self.pending.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }
}

/// The evidence rules for a proposal, beyond the body check (count, shape,
/// one entry per offence, header root; `Block::check_body`): every entry
/// verifies against the validator set, and no committed block (`recorded`
/// answers with its height) nor uncommitted ancestor (`ancestors`) already
/// records the offence. Every honest validator reaches the same verdict:
/// the set, the committed chain and the ancestors are the same for all.
pub fn check_proposal(
    block: &Block,
    set: &ValidatorSet,
    ancestors: &BTreeSet<EvidenceKey>,
    recorded: impl Fn(EvidenceKey) -> Result<Option<u64>, StoreError>,
) -> Result<(), Refusal> {
    for (index, evidence) in block.evidence.iter().enumerate() {
        let key = evidence
            .verify(set)
            .map_err(|source| Refusal::Invalid { index, source })?;
        if ancestors.contains(&key) {
            return Err(Refusal::InAncestor { key });
        }
        if let Some(height) = recorded(key).map_err(|e| Refusal::Store(e.to_string()))? {
            return Err(Refusal::Recorded { key, height });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use lotline_core::block::Header;
    use lotline_core::crypto::SigningKey;
    use lotline_core::evidence::EvidenceKind;
    use lotline_core::hash::Digest;
    use lotline_core::vote::{Vote, VoteKind};

    const CHAIN: Digest = Digest([7; 32]);

    fn keys() -> Vec<SigningKey> {
        (1..=4u8).map(|i| SigningKey::from_seed(&[i; 32])).collect()
    }

    fn set() -> ValidatorSet {
        ValidatorSet::new(CHAIN, keys().iter().map(SigningKey::public_key).collect())
    }

    fn equivocation(signer: u16, view: u64) -> Evidence {
        let key = &keys()[usize::from(signer)];
        let vote = |b: u8| {
            Vote::sign(
                key,
                signer,
                &CHAIN,
                VoteKind::Notarize,
                view,
                Digest([b; 32]),
            )
        };
        Evidence {
            first: vote(1),
            second: vote(2),
        }
    }

    fn block(evidence: Vec<Evidence>) -> Block {
        Block::new(CHAIN, 3, 9, Header::genesis_parent(&CHAIN), 0, 1, vec![])
            .with_evidence(evidence)
    }

    fn key(signer: u16, view: u64) -> EvidenceKey {
        EvidenceKey {
            signer,
            view,
            kind: EvidenceKind::ConflictingNotarize,
        }
    }

    #[test]
    fn the_pool_keeps_each_offence_once_and_is_bounded() {
        let mut pool = Pool::default();
        assert!(pool.keep(equivocation(2, 5)));
        let mut other_pair = equivocation(2, 5);
        other_pair.second = other_pair.first;
        other_pair.first.block = Digest([9; 32]);
        assert!(!pool.keep(other_pair), "same offence, other votes");
        assert!(!pool.keep(equivocation(2, 5)));
        for view in 0..PENDING_MAX as u64 {
            pool.keep(equivocation(3, 100 + view));
        }
        assert_eq!(pool.len(), PENDING_MAX);
        assert!(!pool.keep(equivocation(1, 1)), "full");
    }

    #[test]
    fn a_leader_offers_what_no_block_of_its_own_records_yet() {
        let mut pool = Pool::default();
        for view in 1..=20 {
            pool.keep(equivocation(2, view));
        }
        let in_flight: BTreeSet<_> = [key(2, 1), key(2, 2)].into();
        let offered = pool.select(&in_flight);
        assert_eq!(offered.len(), limits::BLOCK_EVIDENCE_MAX);
        assert_eq!(offered[0].view(), 3, "in-flight offences are left out");
        pool.remove_recorded(&block(offered));
        assert_eq!(pool.len(), 20 - limits::BLOCK_EVIDENCE_MAX);
        assert_eq!(pool.select(&BTreeSet::new())[0].view(), 1);
    }

    #[test]
    fn a_proposal_records_only_valid_new_offences() {
        let set = set();
        let none = |_| Ok(None);
        assert_eq!(
            check_proposal(
                &block(vec![equivocation(2, 5)]),
                &set,
                &BTreeSet::new(),
                none
            ),
            Ok(())
        );
        let mut forged = equivocation(2, 5);
        forged.first.signature.0[0] ^= 1;
        assert!(matches!(
            check_proposal(
                &block(vec![equivocation(1, 4), forged]),
                &set,
                &BTreeSet::new(),
                none
            ),
            Err(Refusal::Invalid {
                index: 1,
                source: EvidenceError::Signature(_)
            })
        ));
        assert_eq!(
            check_proposal(
                &block(vec![equivocation(2, 5)]),
                &set,
                &[key(2, 5)].into(),
                none
            ),
            Err(Refusal::InAncestor { key: key(2, 5) })
        );
        assert_eq!(
            check_proposal(
                &block(vec![equivocation(2, 5)]),
                &set,
                &BTreeSet::new(),
                |k| { Ok((k == key(2, 5)).then_some(4)) }
            ),
            Err(Refusal::Recorded {
                key: key(2, 5),
                height: 4
            })
        );
        let other_chain = ValidatorSet::new(Digest([8; 32]), set.validators.clone());
        assert!(matches!(
            check_proposal(
                &block(vec![equivocation(2, 5)]),
                &other_chain,
                &BTreeSet::new(),
                none
            ),
            Err(Refusal::Invalid { index: 0, .. })
        ));
    }
}
