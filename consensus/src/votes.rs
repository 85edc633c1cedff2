//! The votes of one view: counted per distinct validator, q = n - f, with
//! conflicting votes turned into evidence.
//!
//! A validator's *first* vote of each kind counts; a later conflicting one
//! is kept only inside the [`Evidence`] it produces. That bounds memory per
//! view to 3n votes whatever a Byzantine validator sends. The tracker also
//! serves as the signature cache: a vote (or certificate signature) equal to
//! a stored one needs no second verification.

use std::collections::{BTreeMap, BTreeSet};

use lotline_core::certificate::Signed;
use lotline_core::crypto::Signature;
use lotline_core::hash::Digest;
use lotline_core::vote::{Vote, VoteKind};

use crate::certificate::QuorumCertificate;
use lotline_core::evidence::{Evidence, EvidenceKind};

/// What inserting a (verified) vote did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Insert {
    /// Counted.
    New,
    /// The same vote again.
    Duplicate,
    /// Conflicts with an earlier vote of the same signer; not counted. The
    /// evidence is there the first time a (signer, kind) conflict is seen.
    Conflict(Option<Box<Evidence>>),
}

#[derive(Debug, Default)]
pub(crate) struct VoteTracker {
    notarize: BTreeMap<u16, Vote>,
    nullify: BTreeMap<u16, Vote>,
    finalize: BTreeMap<u16, Vote>,
    reported: BTreeSet<(u16, EvidenceKind)>,
}

impl VoteTracker {
    fn votes(&self, kind: VoteKind) -> &BTreeMap<u16, Vote> {
        match kind {
            VoteKind::Notarize => &self.notarize,
            VoteKind::Nullify => &self.nullify,
            VoteKind::Finalize => &self.finalize,
        }
    }

    /// True if exactly this signature of `signer` for `(kind, block)` is
    /// stored (and therefore was verified).
    pub(crate) fn has_signature(
        &self,
        kind: VoteKind,
        signer: u16,
        block: &Digest,
        signature: &Signature,
    ) -> bool {
        self.votes(kind)
            .get(&signer)
            .is_some_and(|v| v.block == *block && v.signature == *signature)
    }

    /// True if `signer` has a counted vote of `kind` in this view.
    pub(crate) fn has_vote_of(&self, kind: VoteKind, signer: u16) -> bool {
        self.votes(kind).contains_key(&signer)
    }

    pub(crate) fn contains(&self, vote: &Vote) -> bool {
        self.has_signature(vote.kind, vote.signer, &vote.block, &vote.signature)
    }

    /// Inserts a vote whose signature has been verified (or is our own).
    pub(crate) fn insert(&mut self, vote: Vote) -> Insert {
        let signer = vote.signer;
        let same_kind = match vote.kind {
            VoteKind::Notarize => &mut self.notarize,
            VoteKind::Nullify => &mut self.nullify,
            VoteKind::Finalize => &mut self.finalize,
        };
        if let Some(first) = same_kind.get(&signer) {
            if first.block == vote.block {
                return Insert::Duplicate;
            }
            let first = *first;
            let kind = match vote.kind {
                VoteKind::Notarize => EvidenceKind::ConflictingNotarize,
                VoteKind::Finalize => EvidenceKind::ConflictingFinalize,
                // Nullify carries no block, so two nullifies never differ.
                VoteKind::Nullify => return Insert::Duplicate,
            };
            return Insert::Conflict(self.report(signer, kind, first, vote));
        }
        same_kind.insert(signer, vote);
        // Nullify and finalize of one view by one validator conflict; both
        // still count towards their own certificates.
        let other = match vote.kind {
            VoteKind::Nullify => self.finalize.get(&signer),
            VoteKind::Finalize => self.nullify.get(&signer),
            VoteKind::Notarize => None,
        };
        match other.copied() {
            Some(first) => {
                Insert::Conflict(self.report(signer, EvidenceKind::NullifyFinalize, first, vote))
            }
            None => Insert::New,
        }
    }

    fn report(
        &mut self,
        signer: u16,
        kind: EvidenceKind,
        first: Vote,
        second: Vote,
    ) -> Option<Box<Evidence>> {
        let evidence = Evidence { first, second };
        assert!(
            evidence.kind() == Some(kind),
            "tracker built evidence of the wrong kind"
        );
        self.reported
            .insert((signer, kind))
            .then(|| Box::new(evidence))
    }

    /// A block (the zero digest for nullify) that `quorum` distinct
    /// validators voted `kind` for, if any. With at most f Byzantine
    /// validators there is at most one; the lowest digest wins otherwise.
    /// How many distinct validators voted `kind` (for any block).
    pub(crate) fn signers(&self, kind: VoteKind) -> usize {
        self.votes(kind).len()
    }

    pub(crate) fn quorum(&self, kind: VoteKind, quorum: usize) -> Option<Digest> {
        let mut counts: BTreeMap<Digest, usize> = BTreeMap::new();
        for vote in self.votes(kind).values() {
            let count = counts.entry(vote.block).or_insert(0);
            *count += 1;
        }
        counts
            .into_iter()
            .find(|(_, count)| *count >= quorum)
            .map(|(block, _)| block)
    }

    /// The certificate of every stored `kind` vote for `block`, by signer.
    pub(crate) fn certificate(
        &self,
        kind: VoteKind,
        epoch: u64,
        view: u64,
        block: Digest,
    ) -> QuorumCertificate {
        let signatures: Vec<Signed> = self
            .votes(kind)
            .values()
            .filter(|v| v.block == block)
            .map(|v| Signed {
                signer: v.signer,
                signature: v.signature,
            })
            .collect();
        assert!(!signatures.is_empty(), "certificate without votes");
        QuorumCertificate {
            kind,
            epoch,
            view,
            block,
            signatures,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lotline_core::crypto::SigningKey;

    fn vote(signer: u16, kind: VoteKind, block: u8) -> Vote {
        let key = SigningKey::from_seed(&[signer as u8 + 1; 32]);
        Vote::sign(&key, signer, &Digest::ZERO, kind, 7, Digest([block; 32]))
    }

    /// Steps of (description, vote, expected insert, notarize quorum of 3).
    #[test]
    fn table_of_inserts() {
        use VoteKind::*;
        let mut tracker = VoteTracker::default();
        type Row = (&'static str, Vote, fn(&Insert) -> bool, Option<u8>);
        let steps: Vec<Row> = vec![
            (
                "first notarize counts",
                vote(0, Notarize, 1),
                |i| *i == Insert::New,
                None,
            ),
            (
                "same vote again",
                vote(0, Notarize, 1),
                |i| *i == Insert::Duplicate,
                None,
            ),
            (
                "second signer",
                vote(1, Notarize, 1),
                |i| *i == Insert::New,
                None,
            ),
            (
                "equivocation is evidence",
                vote(1, Notarize, 2),
                |i| matches!(i, Insert::Conflict(Some(_))),
                None,
            ),
            (
                "and is reported once",
                vote(1, Notarize, 3),
                |i| *i == Insert::Conflict(None),
                None,
            ),
            (
                "third distinct signer makes a quorum",
                vote(2, Notarize, 1),
                |i| *i == Insert::New,
                Some(1),
            ),
            (
                "nullify after notarize is fine",
                vote(2, Nullify, 0),
                |i| *i == Insert::New,
                Some(1),
            ),
            (
                "finalize after nullify is evidence",
                vote(2, Finalize, 1),
                |i| matches!(i, Insert::Conflict(Some(_))),
                Some(1),
            ),
        ];
        for (desc, vote, expected, quorum) in steps {
            let got = tracker.insert(vote);
            assert!(expected(&got), "{desc}: got {got:?}");
            assert_eq!(
                tracker.quorum(Notarize, 3),
                quorum.map(|b| Digest([b; 32])),
                "{desc}"
            );
        }
        // The conflicting votes did not count: block 2 has no votes.
        assert_eq!(
            tracker
                .certificate(Notarize, 0, 7, Digest([1; 32]))
                .signatures
                .len(),
            3
        );
        // Both kinds still count for their own certificates.
        assert_eq!(tracker.quorum(Finalize, 1), Some(Digest([1; 32])));
        assert_eq!(tracker.quorum(Nullify, 1), Some(Digest::ZERO));
    }

    #[test]
    fn quorum_counts_distinct_validators_not_votes() {
        let mut tracker = VoteTracker::default();
        for _ in 0..5 {
            tracker.insert(vote(0, VoteKind::Finalize, 1));
        }
        tracker.insert(vote(1, VoteKind::Finalize, 1));
        assert_eq!(tracker.quorum(VoteKind::Finalize, 3), None);
        assert!(tracker.contains(&vote(0, VoteKind::Finalize, 1)));
        assert!(!tracker.contains(&vote(0, VoteKind::Finalize, 2)));
    }
}
