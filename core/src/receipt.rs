//! Receipts: everything needed to prove, offline, that an attestation is
//! committed on a chain, given only that chain's validator set.
//!
//! ```text
//! Receipt v1 = attestation (DSSE envelope)
//!            + leaf index and Merkle path to the header's root
//!            + block header
//!            + descendant headers, when the block is final through a later
//!              block's certificate (empty when certified directly)
//!            + finalization certificate over the last header's hash
//! ```
//! The byte form is postcard of [`Receipt`]; the JSON form is serde JSON of the
//! same type (hex digests and keys, base64 DSSE fields). Both are versioned by
//! the `version` field and covered by golden tests.

use serde::{Deserialize, Serialize};

use crate::attestation::{AttestationId, Envelope, EnvelopeError};
use crate::block::{BlockHash, Header};
use crate::certificate::{Certificate, Finality, FinalityError};
use crate::codec::{self, DecodeError};
use crate::crypto::{BatchVerifier, PublicKey};
use crate::hash::Digest;
use crate::limits;
use crate::merkle;
use crate::validators::ValidatorSet;

pub const RECEIPT_VERSION: u16 = 1;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Receipt {
    pub version: u16,
    pub attestation: Envelope,
    pub leaf_index: u32,
    pub proof: Vec<Digest>,
    pub header: Header,
    /// Headers from the block's child up to the certified block.
    pub descendants: Vec<Header>,
    pub certificate: Certificate,
}

/// What a verified receipt establishes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedReceipt {
    pub id: AttestationId,
    pub signer: PublicKey,
    pub height: u64,
    pub block: BlockHash,
    /// Indexes of the validators whose signatures certify the block.
    pub certified_by: Vec<u16>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReceiptError {
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error("receipt version {0} is not supported (this verifier knows version {RECEIPT_VERSION})")]
    Version(u16),
    #[error("receipt is for chain {got}, the genesis is chain {expected}")]
    ChainId { expected: Digest, got: Digest },
    #[error("the attestation is not valid: {0}")]
    Attestation(#[from] EnvelopeError),
    #[error(
        "the Merkle path does not lead from attestation {id} (leaf {index} of {count}) to the header root"
    )]
    Inclusion {
        id: AttestationId,
        index: u32,
        count: u32,
    },
    #[error("the block is not proven final: {0}")]
    Finality(#[from] FinalityError),
}

impl Receipt {
    pub fn to_bytes(&self) -> Vec<u8> {
        codec::to_bytes(self)
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Receipt, DecodeError> {
        codec::from_bytes("receipt", bytes, limits::RECEIPT_BYTES_MAX)
    }

    pub fn from_json(bytes: &[u8]) -> Result<Receipt, DecodeError> {
        codec::from_json("receipt", bytes, limits::RECEIPT_BYTES_MAX)
    }
}

/// Verifies a receipt against a validator set, with no other state.
///
/// Checks, in order: version; chain id; the attestation's DSSE signature
/// (ZIP-215); the Merkle path from the attestation id to the header root;
/// the descendant headers' links; the certificate's quorum of distinct
/// validator signatures over the last header's hash. Whether the signer is a member of the consortium is a genesis
/// question, answered by `lotline_genesis::Genesis::verify_receipt`.
pub fn verify_receipt(
    receipt: &Receipt,
    set: &ValidatorSet,
) -> Result<VerifiedReceipt, ReceiptError> {
    if receipt.version != RECEIPT_VERSION {
        return Err(ReceiptError::Version(receipt.version));
    }
    if receipt.header.chain_id != set.chain_id {
        return Err(ReceiptError::ChainId {
            expected: set.chain_id,
            got: receipt.header.chain_id,
        });
    }
    let signer = receipt.attestation.check_shape()?;
    let (id, certified_by) = certify(receipt, set, Some(signer))?;
    Ok(VerifiedReceipt {
        id,
        signer,
        height: receipt.header.height,
        block: receipt.header.hash(),
        certified_by,
    })
}

/// What [`verify_certified`] proves: the envelope with this id is in a
/// block of this chain, and the block is final.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Certified {
    pub id: AttestationId,
    pub height: u64,
    pub block: BlockHash,
    pub certified_by: Vec<u16>,
}

/// [`verify_receipt`] without the envelope's own signature: inclusion and
/// finality only. For envelopes whose signatures follow other rules (a
/// governance transaction carries several; the caller checks them).
pub fn verify_certified(receipt: &Receipt, set: &ValidatorSet) -> Result<Certified, ReceiptError> {
    if receipt.version != RECEIPT_VERSION {
        return Err(ReceiptError::Version(receipt.version));
    }
    if receipt.header.chain_id != set.chain_id {
        return Err(ReceiptError::ChainId {
            expected: set.chain_id,
            got: receipt.header.chain_id,
        });
    }
    let (id, certified_by) = certify(receipt, set, None)?;
    Ok(Certified {
        id,
        height: receipt.header.height,
        block: receipt.header.hash(),
        certified_by,
    })
}

/// Inclusion, then finality; the certificate's signatures are verified in
/// one batch with the attestation's when `signer` is given.
fn certify(
    receipt: &Receipt,
    set: &ValidatorSet,
    signer: Option<PublicKey>,
) -> Result<(AttestationId, Vec<u16>), ReceiptError> {
    let id = receipt.attestation.id();
    let (index, count) = (receipt.leaf_index, receipt.header.count);
    let included = match (usize::try_from(index), usize::try_from(count)) {
        (Ok(i), Ok(n)) => merkle::verify_proof(&receipt.header.root, &id, i, n, &receipt.proof),
        _ => false,
    };
    if !included {
        return Err(ReceiptError::Inclusion { id, index, count });
    }
    let finality = Finality {
        certificate: receipt.certificate.clone(),
        descendants: receipt.descendants.clone(),
    };
    let tip = finality.certified_header(&receipt.header)?;
    let msg = receipt
        .certificate
        .check_structure(set, finality.certified_view(tip), &tip.hash())
        .map_err(FinalityError::from)?;
    // The attestation's signature and the certificate's in one batch: the
    // same ZIP-215 verdicts as one by one, for about half the work.
    let pae = receipt.attestation.pae();
    let mut batch = BatchVerifier::with_capacity(1 + receipt.certificate.signatures.len());
    let attestation_sig = match (signer, receipt.attestation.signatures.first()) {
        (Some(signer), Some(sig)) => {
            batch.push(signer, &pae, sig.sig);
            Some(sig)
        }
        _ => None,
    };
    receipt.certificate.push_signatures(set, &msg, &mut batch);
    let mut verdicts = batch.verify().into_iter();
    if let Some(attestation_sig) = attestation_sig
        && let Some(Err(source)) = verdicts.next()
    {
        return Err(ReceiptError::Attestation(EnvelopeError::Signature {
            keyid: attestation_sig.keyid.clone(),
            source,
        }));
    }
    receipt
        .certificate
        .signature_verdicts(verdicts)
        .map_err(FinalityError::from)?;
    Ok((
        id,
        receipt
            .certificate
            .signatures
            .iter()
            .map(|s| s.signer)
            .collect(),
    ))
}
