//! Equivocation evidence: two valid, conflicting votes by one validator.
//!
//! Self-contained: anyone with the validator set checks it
//! ([`Evidence::verify`]), so it can be gossiped and recorded in a block for
//! every organisation (and the regulator) to see.

use lotline_core::crypto::SignatureError;
use lotline_core::validators::ValidatorSet;
use lotline_core::vote::{Vote, VoteKind};
use serde::{Deserialize, Serialize};

/// The kinds of conflict (commonware's `ConflictingNotarize`,
/// `ConflictingFinalize`, `NullifyFinalize`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum EvidenceKind {
    /// `notarize(v, a)` and `notarize(v, b)`, `a != b`.
    ConflictingNotarize,
    /// `finalize(v, a)` and `finalize(v, b)`, `a != b`.
    ConflictingFinalize,
    /// `nullify(v)` and `finalize(v, _)`.
    NullifyFinalize,
}

/// Two signed votes that no honest validator signs together.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
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

    /// Checks that both votes are by the same validator of `set`, conflict,
    /// and carry valid signatures. Returns what they prove.
    pub fn verify(&self, set: &ValidatorSet) -> Result<EvidenceKind, EvidenceError> {
        let (a, b) = (&self.first, &self.second);
        if a.signer != b.signer {
            return Err(EvidenceError::Signers(a.signer, b.signer));
        }
        if a.view != b.view || a.epoch != b.epoch {
            return Err(EvidenceError::Views);
        }
        let kind = self.kind().ok_or(EvidenceError::NoConflict)?;
        let key = set
            .key(a.signer)
            .ok_or(EvidenceError::UnknownSigner(a.signer))?;
        a.verify(&set.chain_id, key)
            .map_err(EvidenceError::Signature)?;
        b.verify(&set.chain_id, key)
            .map_err(EvidenceError::Signature)?;
        Ok(kind)
    }

    /// The validator the evidence accuses.
    pub fn signer(&self) -> u16 {
        self.first.signer
    }

    pub fn view(&self) -> u64 {
        self.first.view
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lotline_core::crypto::SigningKey;
    use lotline_core::hash::Digest;

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
        use VoteKind::*;
        let table = [
            (
                "two notarize",
                vote(1, Notarize, 5, 1),
                vote(1, Notarize, 5, 2),
                Ok(EvidenceKind::ConflictingNotarize),
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
                Ok(EvidenceKind::ConflictingFinalize),
            ),
            (
                "nullify then finalize",
                vote(0, Nullify, 5, 0),
                vote(0, Finalize, 5, 3),
                Ok(EvidenceKind::NullifyFinalize),
            ),
            (
                "finalize then nullify",
                vote(0, Finalize, 5, 3),
                vote(0, Nullify, 5, 0),
                Ok(EvidenceKind::NullifyFinalize),
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
    }
}
