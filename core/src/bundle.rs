//! Proof bundles: a set of receipts that together back one report (a lot's
//! history, a recall, an org's events in a period), in one versioned JSON
//! document a regulator can keep and check offline.
//!
//! ```text
//! { "version": 1, "kind": "lotline-proof-bundle", "chainId": "<hex>",
//!   "subject": "lot https://id.gs1.org/01/.../10/L1", "generatedAt": "<RFC 3339>",
//!   "receipts": [ <receipt v1 JSON>, ... ],
//!   "withheld": [ {"attestation": "<hex>", "height": 7, "reason": "..."} ] }
//! ```
//! Each receipt proves one event on its own (see [`crate::receipt`]); the
//! bundle adds no trust of its own. `withheld` names events a public bundle
//! leaves out because their payload holds private fields (R19): they are
//! listed so the reader knows they exist, not proven.

use serde::{Deserialize, Serialize};

use crate::attestation::AttestationId;
use crate::codec::{self, DecodeError};
use crate::hash::Digest;
use crate::limits;
use crate::receipt::Receipt;

/// The one version this code writes and reads.
pub const BUNDLE_VERSION: u16 = 1;
/// The `kind` field: tells a bundle apart from a lone receipt.
pub const BUNDLE_KIND: &str = "lotline-proof-bundle";

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProofBundle {
    pub version: u16,
    pub kind: String,
    pub chain_id: Digest,
    /// What the bundle is about, in words (`lot ...`, `recall ...`).
    pub subject: String,
    /// When the node generated it (RFC 3339, the node's clock; informative).
    pub generated_at: String,
    pub receipts: Vec<Receipt>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub withheld: Vec<Withheld>,
}

/// An event left out of a public bundle, named but not proven.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Withheld {
    pub attestation: AttestationId,
    pub height: u64,
    pub reason: String,
}

/// Why bytes are not a bundle this code can check.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BundleError {
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error("kind is {0:?}, not {BUNDLE_KIND:?}")]
    Kind(String),
    #[error("bundle version {0} is not supported (this verifier knows version {BUNDLE_VERSION})")]
    Version(u16),
    #[error("the bundle holds {0} receipts; at most {max} are accepted", max = limits::BUNDLE_RECEIPTS_MAX)]
    TooManyReceipts(usize),
}

impl ProofBundle {
    /// An empty bundle for `chain_id`.
    pub fn new(chain_id: Digest, subject: String, generated_at: String) -> ProofBundle {
        ProofBundle {
            version: BUNDLE_VERSION,
            kind: BUNDLE_KIND.to_owned(),
            chain_id,
            subject,
            generated_at,
            receipts: Vec::new(),
            withheld: Vec::new(),
        }
    }

    /// Parses a bundle and checks its envelope (kind, version, size); the
    /// receipts themselves are checked by the verifier, one by one.
    pub fn from_json(bytes: &[u8]) -> Result<ProofBundle, BundleError> {
        let bundle: ProofBundle =
            codec::from_json("proof bundle", bytes, limits::BUNDLE_BYTES_MAX)?;
        if bundle.kind != BUNDLE_KIND {
            return Err(BundleError::Kind(bundle.kind));
        }
        if bundle.version != BUNDLE_VERSION {
            return Err(BundleError::Version(bundle.version));
        }
        if bundle.receipts.len() > limits::BUNDLE_RECEIPTS_MAX {
            return Err(BundleError::TooManyReceipts(bundle.receipts.len()));
        }
        Ok(bundle)
    }

    /// True if `bytes` look like a bundle rather than a lone receipt (the
    /// `kind` field is only in bundles); used to pick the decoder.
    pub fn sniff(bytes: &[u8]) -> bool {
        bytes.first() == Some(&b'{')
            && bytes
                .windows(BUNDLE_KIND.len() + 2)
                .any(|w| w.get(1..w.len() - 1) == Some(BUNDLE_KIND.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_and_version_are_checked_before_receipts() {
        let bundle = ProofBundle::new(
            Digest([7; 32]),
            "lot x".into(),
            "2026-01-01T00:00:00Z".into(),
        );
        let json = serde_json::to_vec(&bundle).unwrap();
        assert!(ProofBundle::sniff(&json));
        assert_eq!(ProofBundle::from_json(&json).unwrap(), bundle);

        let mut other = bundle.clone();
        other.kind = "something-else".into();
        let json = serde_json::to_vec(&other).unwrap();
        assert!(matches!(
            ProofBundle::from_json(&json),
            Err(BundleError::Kind(_))
        ));

        let mut newer = bundle;
        newer.version = 2;
        let json = serde_json::to_vec(&newer).unwrap();
        assert!(matches!(
            ProofBundle::from_json(&json),
            Err(BundleError::Version(2))
        ));
        assert!(!ProofBundle::sniff(b"{\"version\":1}"));
    }
}
