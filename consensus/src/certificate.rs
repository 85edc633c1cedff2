//! Quorum certificates of every vote kind, and how signatures are checked.
//!
//! `lotline_core::certificate::Certificate` is the *finalization* certificate
//! that receipts carry; the engine also needs notarizations and
//! nullifications. A [`QuorumCertificate`] is one of the three, with the
//! same rule: at least q = n - f signatures of distinct validators, sorted
//! by signer, each over the exact vote bytes of its kind.

use std::fmt;

use lotline_core::block::BlockHash;
use lotline_core::certificate::{Certificate, CertificateError, Signed};
use lotline_core::crypto::{BatchVerifier, PublicKey, Signature};
use lotline_core::hash::Digest;
use lotline_core::validators::ValidatorSet;
use lotline_core::vote::{self, Vote, VoteKind};
use serde::{Deserialize, Serialize};

/// Proof that a quorum signed `kind` for `view` (and `block`, except for
/// nullify, whose block is [`Digest::ZERO`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuorumCertificate {
    pub kind: VoteKind,
    pub epoch: u64,
    pub view: u64,
    pub block: Digest,
    /// Strictly increasing by signer.
    pub signatures: Vec<Signed>,
}

impl QuorumCertificate {
    /// The signed votes inside the certificate.
    pub fn votes(&self) -> impl Iterator<Item = Vote> + '_ {
        self.signatures.iter().map(|s| Vote {
            kind: self.kind,
            epoch: self.epoch,
            view: self.view,
            block: self.block,
            signer: s.signer,
            signature: s.signature,
        })
    }

    /// Structure only: quorum size, signer order and range, nullify carries
    /// no block. Cheap; run it before any signature check.
    pub fn check_shape(&self, n: usize, quorum: usize) -> Result<(), CertificateError> {
        if self.signatures.len() < quorum {
            return Err(CertificateError::Quorum {
                got: self.signatures.len(),
                quorum,
                n,
            });
        }
        let mut previous: Option<u16> = None;
        for s in &self.signatures {
            if previous.is_some_and(|p| s.signer <= p) {
                return Err(CertificateError::Order(s.signer));
            }
            previous = Some(s.signer);
            if usize::from(s.signer) >= n {
                return Err(CertificateError::UnknownSigner(s.signer));
            }
        }
        Ok(())
    }

    /// Shape and every signature, under `verifier`.
    pub fn verify(
        &self,
        set: &ValidatorSet,
        verifier: &dyn Verifier,
    ) -> Result<(), CertificateError> {
        self.check_shape(set.len(), set.quorum())?;
        let msg = vote::signing_bytes(&set.chain_id, self.kind, self.epoch, self.view, &self.block);
        let mut items = Vec::with_capacity(self.signatures.len());
        for s in &self.signatures {
            let key = set
                .key(s.signer)
                .ok_or(CertificateError::UnknownSigner(s.signer))?;
            items.push((*key, msg.as_slice(), s.signature));
        }
        let verdicts = verifier.verify(&items);
        assert!(
            verdicts.len() == items.len(),
            "verifier returned {} verdicts for {} items",
            verdicts.len(),
            items.len()
        );
        match self.signatures.iter().zip(verdicts).find(|(_, ok)| !ok) {
            Some((s, _)) => Err(CertificateError::BadSignature(s.signer)),
            None => Ok(()),
        }
    }

    /// The finalization certificate receipts carry, if this is one.
    pub fn to_finalization(&self) -> Option<Certificate> {
        (self.kind == VoteKind::Finalize).then(|| Certificate {
            epoch: self.epoch,
            view: self.view,
            block: BlockHash(self.block),
            signatures: self.signatures.clone(),
        })
    }

    pub fn from_finalization(certificate: &Certificate) -> QuorumCertificate {
        QuorumCertificate {
            kind: VoteKind::Finalize,
            epoch: certificate.epoch,
            view: certificate.view,
            block: certificate.block.0,
            signatures: certificate.signatures.clone(),
        }
    }
}

/// How the engine decides whether signatures are valid. Every implementation
/// must give the verdicts of ZIP-215 ([`PublicKey::verify`]); they differ only
/// in cost (a simulator memoizes verdicts shared by its validators).
pub trait Verifier: fmt::Debug + Send + Sync {
    /// One verdict per item, in order.
    fn verify(&self, items: &[(PublicKey, &[u8], Signature)]) -> Vec<bool>;
}

/// ZIP-215, batched when there is more than one signature (a failed batch
/// falls back to single checks, so each verdict is the single verdict).
#[derive(Clone, Copy, Debug, Default)]
pub struct Zip215;

impl Verifier for Zip215 {
    fn verify(&self, items: &[(PublicKey, &[u8], Signature)]) -> Vec<bool> {
        match items {
            [] => Vec::new(),
            [(key, msg, sig)] => vec![key.verify(msg, sig).is_ok()],
            _ => {
                let mut batch = BatchVerifier::with_capacity(items.len());
                for (key, msg, sig) in items {
                    batch.push(*key, msg, *sig);
                }
                batch
                    .verify()
                    .into_iter()
                    .map(|verdict| verdict.is_ok())
                    .collect()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lotline_core::crypto::SigningKey;

    fn setup(n: u8) -> (ValidatorSet, Vec<SigningKey>) {
        let keys: Vec<_> = (0..n)
            .map(|i| SigningKey::from_seed(&[i + 1; 32]))
            .collect();
        (
            ValidatorSet::new(
                Digest([9; 32]),
                keys.iter().map(SigningKey::public_key).collect(),
            ),
            keys,
        )
    }

    fn certify(
        set: &ValidatorSet,
        keys: &[SigningKey],
        kind: VoteKind,
        signers: &[u16],
    ) -> QuorumCertificate {
        let block = if kind == VoteKind::Nullify {
            Digest::ZERO
        } else {
            Digest([4; 32])
        };
        let signatures = signers
            .iter()
            .map(|&i| {
                let vote = Vote::sign(&keys[usize::from(i)], i, &set.chain_id, kind, 3, block);
                Signed {
                    signer: i,
                    signature: vote.signature,
                }
            })
            .collect();
        QuorumCertificate {
            kind,
            epoch: 0,
            view: 3,
            block,
            signatures,
        }
    }

    #[test]
    fn table_of_certificates() {
        let (set, keys) = setup(5);
        type Row = (
            &'static str,
            VoteKind,
            &'static [u16],
            Result<(), CertificateError>,
        );
        let table: [Row; 5] = [
            (
                "quorum of 4 of 5",
                VoteKind::Notarize,
                &[0, 1, 2, 4],
                Ok(()),
            ),
            (
                "3 of 5 is not a quorum",
                VoteKind::Nullify,
                &[0, 1, 2],
                Err(CertificateError::Quorum {
                    got: 3,
                    quorum: 4,
                    n: 5,
                }),
            ),
            (
                "repeated signer",
                VoteKind::Finalize,
                &[0, 1, 1, 2],
                Err(CertificateError::Order(1)),
            ),
            (
                "unsorted",
                VoteKind::Finalize,
                &[0, 2, 1, 3],
                Err(CertificateError::Order(1)),
            ),
            ("nullify quorum", VoteKind::Nullify, &[1, 2, 3, 4], Ok(())),
        ];
        for (desc, kind, signers, expected) in table {
            assert_eq!(
                certify(&set, &keys, kind, signers).verify(&set, &Zip215),
                expected,
                "{desc}"
            );
        }
    }

    #[test]
    fn kind_is_bound_and_bad_signer_is_named() {
        let (set, keys) = setup(4);
        let mut as_finalize = certify(&set, &keys, VoteKind::Notarize, &[0, 1, 2]);
        as_finalize.kind = VoteKind::Finalize;
        assert_eq!(
            as_finalize.verify(&set, &Zip215),
            Err(CertificateError::BadSignature(0))
        );
        let mut bad = certify(&set, &keys, VoteKind::Notarize, &[0, 1, 3]);
        bad.signatures[2].signature.0[5] ^= 1;
        assert_eq!(
            bad.verify(&set, &Zip215),
            Err(CertificateError::BadSignature(3))
        );
        let mut unknown = certify(&set, &keys, VoteKind::Notarize, &[0, 1, 3]);
        unknown.signatures[2].signer = 4;
        assert_eq!(
            unknown.verify(&set, &Zip215),
            Err(CertificateError::UnknownSigner(4))
        );
    }

    #[test]
    fn finalization_round_trips_to_the_receipt_certificate() {
        let (set, keys) = setup(4);
        let cert = certify(&set, &keys, VoteKind::Finalize, &[0, 2, 3]);
        let core = cert.to_finalization().unwrap();
        assert_eq!(core.verify(&set, 3, &BlockHash(Digest([4; 32]))), Ok(()));
        assert_eq!(QuorumCertificate::from_finalization(&core), cert);
        assert!(
            certify(&set, &keys, VoteKind::Notarize, &[0, 2, 3])
                .to_finalization()
                .is_none()
        );
    }
}
