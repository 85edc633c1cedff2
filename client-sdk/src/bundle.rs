//! Offline check of a proof bundle ([`lotline_core::bundle`]): every receipt
//! against the pinned genesis, one verdict per receipt, so a regulator learns
//! *which* events fail rather than only that something does.

use lotline_core::attestation::AttestationId;
use lotline_core::bundle::ProofBundle;
use lotline_core::{Digest, VerifiedReceipt};
use lotline_genesis::{Genesis, ReceiptVerifyError};

/// The verdict on one receipt of a bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptVerdict {
    /// Position in `receipts`.
    pub index: usize,
    /// The id of the attestation as the receipt carries it (recomputed from
    /// its bytes, so an edited attestation shows under its new id).
    pub attestation: AttestationId,
    /// The height the receipt's header claims.
    pub height: u64,
    pub result: Result<VerifiedReceipt, ReceiptVerifyError>,
}

/// Every receipt's verdict, plus whether the bundle is for this chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleReport {
    /// `Some((bundle, genesis))` when the bundle names another chain; its
    /// receipts then fail on their own too.
    pub chain_mismatch: Option<(Digest, Digest)>,
    pub verdicts: Vec<ReceiptVerdict>,
}

impl BundleReport {
    /// True when the bundle is for this chain and every receipt verifies.
    pub fn all_ok(&self) -> bool {
        self.chain_mismatch.is_none() && self.verdicts.iter().all(|v| v.result.is_ok())
    }

    pub fn failures(&self) -> impl Iterator<Item = &ReceiptVerdict> {
        self.verdicts.iter().filter(|v| v.result.is_err())
    }
}

/// Verifies every receipt of `bundle` against `genesis`. Never stops at the
/// first failure.
pub fn verify_bundle(bundle: &ProofBundle, genesis: &Genesis) -> BundleReport {
    let chain_mismatch =
        (bundle.chain_id != genesis.chain_id()).then(|| (bundle.chain_id, genesis.chain_id()));
    let verdicts = bundle
        .receipts
        .iter()
        .enumerate()
        .map(|(index, receipt)| ReceiptVerdict {
            index,
            attestation: receipt.attestation.id(),
            height: receipt.header.height,
            result: genesis.verify_receipt(receipt),
        })
        .collect();
    BundleReport {
        chain_mismatch,
        verdicts,
    }
}
