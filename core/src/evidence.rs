//! Equivocation evidence: two valid, conflicting votes by one validator.
//!
//! Self-contained: anyone with the validator set checks it
//! ([`Evidence::verify`]), so it can be gossiped between validators and
//! recorded in a block ([`crate::block::Block::evidence`]) for every
//! organisation, and the regulator, to see who equivocated.
//!
//! Evidence is identified by what it proves, [`EvidenceKey`] (validator,
//! view, kind), not by its bytes: two different pairs of votes that prove
//! the same offence are the same evidence, and a chain records it once.

use serde::{Deserialize, Serialize};

use crate::codec;
use crate::crypto::{PublicKey, SignatureError};
use crate::hash::{self, Digest, Domain};
use crate::validators::ValidatorSet;
use crate::vote::{Vote, VoteKind};

/// The kinds of conflict (commonware's `ConflictingNotarize`,
/// `ConflictingFinalize`, `NullifyFinalize`). Tags are explicit bytes; they
/// appear in storage keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[repr(u8)]
pub enum EvidenceKind {
    /// `notarize(v, a)` and `notarize(v, b)`, `a != b`.
    ConflictingNotarize = 0,
    /// `finalize(v, a)` and `finalize(v, b)`, `a != b`.
    ConflictingFinalize = 1,
    /// `nullify(v)` and `finalize(v, _)`.
    NullifyFinalize = 2,
}

/// What a piece of evidence proves: who, in which view, which rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EvidenceKey {
    pub signer: u16,
    pub view: u64,
    pub kind: EvidenceKind,
}

/// Two signed votes that no honest validator signs together.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Evidence {
    pub first: Vote,
    pub second: Vote,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EvidenceError {
    #[error("the votes are by different validators, {0} and {1}")]
    Signers(u16, u16),
    #[error("the votes are for different views or epochs")]
    Views,
    #[error("the votes do not conflict")]
    NoConflict,
    #[error("validator {0} is not in the set")]
    UnknownSigner(u16),
    #[error("a signature does not verify: {0}")]
    Signature(SignatureError),
    /// Indices and keys of one epoch mean nothing in another.
    #[error("the votes are of epoch {votes}, the validator set is epoch {set}'s")]
    Epoch { votes: u64, set: u64 },
}

impl Evidence {
    /// What the two votes prove, from their content alone (no signatures).
    pub fn kind(&self) -> Option<EvidenceKind> {
        let (a, b) = (&self.first, &self.second);
        if a.signer != b.signer || a.view != b.view || a.epoch != b.epoch {
            return None;
        }
        match (a.kind, b.kind) {
            (VoteKind::Notarize, VoteKind::Notarize) if a.block != b.block => {
                Some(EvidenceKind::ConflictingNotarize)
            }
            (VoteKind::Finalize, VoteKind::Finalize) if a.block != b.block => {
                Some(EvidenceKind::ConflictingFinalize)
            }
            (VoteKind::Nullify, VoteKind::Finalize) | (VoteKind::Finalize, VoteKind::Nullify) => {
                Some(EvidenceKind::NullifyFinalize)
            }
            _ => None,
        }
    }

    /// The offence this evidence proves, if the votes conflict by content.
    pub fn key(&self) -> Option<EvidenceKey> {
        self.kind().map(|kind| EvidenceKey {
            signer: self.first.signer,
            view: self.first.view,
            kind,
        })
    }

    /// Everything but the signatures: the votes are by one validator of
    /// `set`, for one view, and conflict. Returns what they prove and the
    /// key that must have signed both (callers that batch signature checks
    /// use this, then verify both votes against that key).
    pub fn check<'s>(
        &self,
        set: &'s ValidatorSet,
    ) -> Result<(EvidenceKey, &'s PublicKey), EvidenceError> {
        let (a, b) = (&self.first, &self.second);
        if a.signer != b.signer {
            return Err(EvidenceError::Signers(a.signer, b.signer));
        }
        if a.view != b.view || a.epoch != b.epoch {
            return Err(EvidenceError::Views);
        }
        if a.epoch != set.epoch {
            return Err(EvidenceError::Epoch {
                votes: a.epoch,
                set: set.epoch,
            });
        }
        let key = self.key().ok_or(EvidenceError::NoConflict)?;
        let public = set
            .key(a.signer)
            .ok_or(EvidenceError::UnknownSigner(a.signer))?;
        Ok((key, public))
    }

    /// Checks that both votes are by the same validator of `set`, conflict,
    /// and carry valid signatures. Returns what they prove.
    pub fn verify(&self, set: &ValidatorSet) -> Result<EvidenceKey, EvidenceError> {
        let (key, public) = self.check(set)?;
        for vote in [&self.first, &self.second] {
            vote.verify(&set.chain_id, public)
                .map_err(EvidenceError::Signature)?;
        }
        Ok(key)
    }

    /// The validator the evidence accuses.
    pub fn signer(&self) -> u16 {
        self.first.signer
    }

    pub fn view(&self) -> u64 {
        self.first.view
    }
}

/// The header's commitment to a block's evidence list (in block order).
/// Evidence is rare and small, so the list is hashed whole: nobody needs a
/// proof for one item without the others.
pub fn root(evidence: &[Evidence]) -> Digest {
    hash::hash(Domain::Evidence, &codec::to_bytes(&evidence))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::SigningKey;

    #[test]
    fn table_of_pairs() {
        let keys: Vec<_> = (1..=4u8).map(|i| SigningKey::from_seed(&[i; 32])).collect();
        let set = ValidatorSet::new(
            Digest([3; 32]),
            keys.iter().map(SigningKey::public_key).collect(),
        );
        let vote = |signer: u16, kind, view, block: u8| {
            Vote::sign(
                &keys[usize::from(signer)],
                signer,
                &set.chain_id,
                kind,
                view,
                Digest([block; 32]),
            )
        };
        let key = |signer, view, kind| EvidenceKey { signer, view, kind };
        use VoteKind::*;
        let table = [
            (
                "two notarize",
                vote(1, Notarize, 5, 1),
                vote(1, Notarize, 5, 2),
                Ok(key(1, 5, EvidenceKind::ConflictingNotarize)),
            ),
            (
                "same notarize",
                vote(1, Notarize, 5, 1),
                vote(1, Notarize, 5, 1),
                Err(EvidenceError::NoConflict),
            ),
            (
                "two finalize",
                vote(2, Finalize, 5, 1),
                vote(2, Finalize, 5, 3),
                Ok(key(2, 5, EvidenceKind::ConflictingFinalize)),
            ),
            (
                "nullify then finalize",
                vote(0, Nullify, 5, 0),
                vote(0, Finalize, 5, 3),
                Ok(key(0, 5, EvidenceKind::NullifyFinalize)),
            ),
            (
                "finalize then nullify",
                vote(0, Finalize, 5, 3),
                vote(0, Nullify, 5, 0),
                Ok(key(0, 5, EvidenceKind::NullifyFinalize)),
            ),
            (
                "notarize and nullify is allowed",
                vote(0, Notarize, 5, 3),
                vote(0, Nullify, 5, 0),
                Err(EvidenceError::NoConflict),
            ),
            (
                "notarize and finalize is allowed",
                vote(0, Notarize, 5, 3),
                vote(0, Finalize, 5, 3),
                Err(EvidenceError::NoConflict),
            ),
            (
                "different views",
                vote(1, Notarize, 5, 1),
                vote(1, Notarize, 6, 2),
                Err(EvidenceError::Views),
            ),
            (
                "different signers",
                vote(1, Notarize, 5, 1),
                vote(2, Notarize, 5, 2),
                Err(EvidenceError::Signers(1, 2)),
            ),
        ];
        for (desc, first, second, expected) in table {
            assert_eq!(Evidence { first, second }.verify(&set), expected, "{desc}");
        }
        let mut forged = Evidence {
            first: vote(1, Notarize, 5, 1),
            second: vote(1, Notarize, 5, 2),
        };
        forged.second.signature.0[0] ^= 1;
        assert!(matches!(
            forged.verify(&set),
            Err(EvidenceError::Signature(_))
        ));
        let mut outsider = Evidence {
            first: vote(1, Notarize, 5, 1),
            second: vote(1, Notarize, 5, 2),
        };
        outsider.first.signer = 9;
        outsider.second.signer = 9;
        assert_eq!(outsider.verify(&set), Err(EvidenceError::UnknownSigner(9)));
    }

    #[test]
    fn the_root_commits_to_content_and_order() {
        let key = SigningKey::from_seed(&[1; 32]);
        let vote = |block: u8| {
            Vote::sign(
                &key,
                0,
                &Digest::ZERO,
                VoteKind::Notarize,
                4,
                Digest([block; 32]),
            )
        };
        let a = Evidence {
            first: vote(1),
            second: vote(2),
        };
        let b = Evidence {
            first: vote(3),
            second: vote(4),
        };
        assert_ne!(root(&[]), root(std::slice::from_ref(&a)));
        assert_ne!(root(&[a.clone(), b.clone()]), root(&[b, a]));
    }
}
