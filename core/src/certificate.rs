//! Finalization certificates: q = n - f distinct validator signatures over a
//! `finalize(view, block)` vote.

use serde::{Deserialize, Serialize};

use crate::block::BlockHash;
use crate::crypto::{BatchVerifier, Signature};
use crate::hash::Digest;
use crate::validators::ValidatorSet;
use crate::vote::{self, VoteKind};

/// One validator's signature inside a certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signed {
    pub signer: u16,
    pub signature: Signature,
}

/// Proof that a quorum finalized `block` in `view`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Certificate {
    pub epoch: u64,
    pub view: u64,
    pub block: BlockHash,
    /// Sorted by signer index, strictly increasing (so signers are distinct).
    pub signatures: Vec<Signed>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertificateError {
    #[error("certificate is for block {got}, expected {expected}")]
    Block { expected: BlockHash, got: BlockHash },
    #[error("certificate is for view {got}, the header says view {expected}")]
    View { expected: u64, got: u64 },
    #[error("certificate is of epoch {got}, the block is in epoch {expected}")]
    Epoch { expected: u64, got: u64 },
    #[error("certificate has {got} signatures, a quorum is {quorum} of {n}")]
    Quorum { got: usize, quorum: usize, n: usize },
    #[error(
        "certificate signers must be strictly increasing; signer {0} repeats or is out of order"
    )]
    Order(u16),
    #[error("signer {0} is not a validator of this chain")]
    UnknownSigner(u16),
    #[error("signature of validator {0} does not verify")]
    BadSignature(u16),
}

impl Certificate {
    /// The bytes every signer signed.
    pub fn signing_bytes(chain_id: &Digest, epoch: u64, view: u64, block: &BlockHash) -> Vec<u8> {
        vote::signing_bytes(chain_id, VoteKind::Finalize, epoch, view, &block.0)
    }

    /// Verifies structure and every signature (batched, ZIP-215).
    pub fn verify(
        &self,
        set: &ValidatorSet,
        view: u64,
        block: &BlockHash,
    ) -> Result<(), CertificateError> {
        let msg = self.check_structure(set, view, block)?;
        let mut batch = BatchVerifier::with_capacity(self.signatures.len());
        self.push_signatures(set, &msg, &mut batch);
        self.signature_verdicts(batch.verify().into_iter())
    }

    /// Everything but the signatures: block, view, quorum of distinct known
    /// signers. Returns the bytes the signers signed.
    pub fn check_structure(
        &self,
        set: &ValidatorSet,
        view: u64,
        block: &BlockHash,
    ) -> Result<Vec<u8>, CertificateError> {
        if self.block != *block {
            return Err(CertificateError::Block {
                expected: *block,
                got: self.block,
            });
        }
        if self.view != view {
            return Err(CertificateError::View {
                expected: view,
                got: self.view,
            });
        }
        if self.epoch != set.epoch {
            return Err(CertificateError::Epoch {
                expected: set.epoch,
                got: self.epoch,
            });
        }
        // An empty set certifies nothing (its "quorum" would be 0).
        let quorum = set.quorum().max(1);
        if self.signatures.len() < quorum {
            return Err(CertificateError::Quorum {
                got: self.signatures.len(),
                quorum,
                n: set.len(),
            });
        }
        let mut previous: Option<u16> = None;
        for s in &self.signatures {
            if previous.is_some_and(|p| s.signer <= p) {
                return Err(CertificateError::Order(s.signer));
            }
            previous = Some(s.signer);
            if set.key(s.signer).is_none() {
                return Err(CertificateError::UnknownSigner(s.signer));
            }
        }
        Ok(Self::signing_bytes(
            &set.chain_id,
            self.epoch,
            self.view,
            &self.block,
        ))
    }

    /// Adds every signature to `batch` (after [`Certificate::check_structure`],
    /// which guarantees every signer has a key), so callers can verify them
    /// together with other signatures.
    pub fn push_signatures<'a>(
        &self,
        set: &ValidatorSet,
        msg: &'a [u8],
        batch: &mut BatchVerifier<'a>,
    ) {
        for s in &self.signatures {
            if let Some(key) = set.key(s.signer) {
                batch.push(*key, msg, s.signature);
            }
        }
    }

    /// Maps the verdicts of the pushed signatures (in order) to a result.
    pub fn signature_verdicts(
        &self,
        verdicts: impl Iterator<Item = Result<(), crate::crypto::SignatureError>>,
    ) -> Result<(), CertificateError> {
        let mut count = 0;
        for (s, verdict) in self.signatures.iter().zip(verdicts) {
            count += 1;
            if verdict.is_err() {
                return Err(CertificateError::BadSignature(s.signer));
            }
        }
        assert_eq!(count, self.signatures.len(), "one verdict per signature");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::SigningKey;

    fn setup(n: usize) -> (ValidatorSet, Vec<SigningKey>) {
        let keys: Vec<_> = (0..n)
            .map(|i| SigningKey::from_seed(&[i as u8 + 1; 32]))
            .collect();
        let set = ValidatorSet::new(
            Digest([7; 32]),
            keys.iter().map(SigningKey::public_key).collect(),
        );
        (set, keys)
    }

    fn certify(
        set: &ValidatorSet,
        keys: &[SigningKey],
        signers: &[u16],
        block: BlockHash,
    ) -> Certificate {
        let msg = Certificate::signing_bytes(&set.chain_id, 0, 3, &block);
        Certificate {
            epoch: 0,
            view: 3,
            block,
            signatures: signers
                .iter()
                .map(|&i| Signed {
                    signer: i,
                    signature: keys[usize::from(i)].sign(&msg),
                })
                .collect(),
        }
    }

    #[test]
    fn quorum_of_distinct_signers_verifies() {
        let (set, keys) = setup(5);
        let block = BlockHash(Digest([4; 32]));
        assert_eq!(
            certify(&set, &keys, &[0, 1, 2, 4], block).verify(&set, 3, &block),
            Ok(())
        );
        // n = 5 needs 4, not 3.
        assert_eq!(
            certify(&set, &keys, &[0, 1, 2], block).verify(&set, 3, &block),
            Err(CertificateError::Quorum {
                got: 3,
                quorum: 4,
                n: 5
            })
        );
    }

    #[test]
    fn repeated_signer_does_not_count_twice() {
        let (set, keys) = setup(4);
        let block = BlockHash(Digest([4; 32]));
        let cert = certify(&set, &keys, &[0, 1, 1], block);
        assert_eq!(
            cert.verify(&set, 3, &block),
            Err(CertificateError::Order(1))
        );
    }

    #[test]
    fn wrong_block_view_or_signature_fails() {
        let (set, keys) = setup(4);
        let block = BlockHash(Digest([4; 32]));
        let cert = certify(&set, &keys, &[0, 1, 3], block);
        assert!(cert.verify(&set, 4, &block).is_err());
        assert!(cert.verify(&set, 3, &BlockHash(Digest([5; 32]))).is_err());
        let mut bad = cert.clone();
        bad.signatures[2].signature.0[0] ^= 1;
        assert_eq!(
            bad.verify(&set, 3, &block),
            Err(CertificateError::BadSignature(3))
        );
        let mut unknown = cert;
        unknown.signatures[2].signer = 9;
        assert_eq!(
            unknown.verify(&set, 3, &block),
            Err(CertificateError::UnknownSigner(9))
        );
    }
}

/// Why a block is final: a finalization certificate for the block itself
/// (`descendants` empty) or for a descendant, with the headers that link the
/// block to it. In Simplex a block notarized in view v whose own finalize
/// quorum never forms (some validators nullified v) is finalized by the
/// finalization of a later block that extends it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Finality {
    pub certificate: Certificate,
    /// Headers from the block's child up to the certified block, in height order.
    pub descendants: Vec<crate::block::Header>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FinalityError {
    #[error("descendant {index} does not extend the header before it")]
    Link { index: usize },
    #[error("more than {max} descendant headers", max = crate::limits::FINALITY_DESCENDANTS_MAX)]
    TooLong,
    #[error(transparent)]
    Certificate(#[from] CertificateError),
}

impl Finality {
    /// A certificate for the block itself.
    pub fn direct(certificate: Certificate) -> Finality {
        Finality {
            certificate,
            descendants: Vec::new(),
        }
    }

    /// Checks that `header` is final under `set`: the descendant headers link
    /// up from it, and the certificate certifies the last of them (or it).
    pub fn verify(
        &self,
        set: &ValidatorSet,
        header: &crate::block::Header,
    ) -> Result<(), FinalityError> {
        let tip = self.certified_header(header)?;
        self.certificate
            .verify(set, self.certified_view(tip), &tip.hash())?;
        Ok(())
    }

    /// [`Finality::verify`] but the signatures: the links, and a
    /// certificate of the right block, view and epoch with a quorum of
    /// distinct known signers. For a finality whose signatures the caller
    /// has verified already, each once: the consensus engine's own commits
    /// (`lotline_consensus::Output::Commit`), which the block log checks
    /// again only for shape.
    pub fn check_structure(
        &self,
        set: &ValidatorSet,
        header: &crate::block::Header,
    ) -> Result<(), FinalityError> {
        let tip = self.certified_header(header)?;
        self.certificate
            .check_structure(set, self.certified_view(tip), &tip.hash())?;
        Ok(())
    }

    /// The view the certificate must be for: the certified block's own
    /// view, or a later one. The last block of an epoch may be re-proposed
    /// in a later view of its epoch and finalized there (docs/protocol.md,
    /// "Validator-set changes"); finalize votes are for the block's hash,
    /// and honest validators sign `finalize(w, h)` only for a notarization
    /// of `h` in `w`, so a quorum in any view at or above the block's own
    /// proves it final. A certificate below the block's view is refused.
    pub fn certified_view(&self, tip: &crate::block::Header) -> u64 {
        self.certificate.view.max(tip.view)
    }

    /// Checks the descendant links and returns the header the certificate
    /// must certify (the last descendant, or `header` itself).
    pub fn certified_header<'a>(
        &'a self,
        header: &'a crate::block::Header,
    ) -> Result<&'a crate::block::Header, FinalityError> {
        if self.descendants.len() > crate::limits::FINALITY_DESCENDANTS_MAX {
            return Err(FinalityError::TooLong);
        }
        let mut tip = header;
        for (index, next) in self.descendants.iter().enumerate() {
            if next.parent != tip.hash()
                || Some(next.height) != tip.height.checked_add(1)
                || next.chain_id != tip.chain_id
            {
                return Err(FinalityError::Link { index });
            }
            tip = next;
        }
        Ok(tip)
    }
}
