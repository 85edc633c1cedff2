//! The statement a member signs: who says what, on which chain, about which
//! EPCIS event.
//!
//! ```json
//! { "version": 1, "chainId": "<hex>", "org": "acme-supplier", "key": "<hex>",
//!   "issuedAtMs": 1763800000000, "nonce": "<hex>", "event": { EPCIS 2.0 event } }
//! ```
//! Unknown fields at the statement level are rejected: a signer must never
//! believe it signed something a node silently ignored. Version 1 has no
//! private section; a later version adds encrypted fields without changing the
//! envelope, the id or the receipt.

use serde::{Deserialize, Serialize};

use crate::attestation::{Envelope, PAYLOAD_TYPE};
use crate::codec::{self, DecodeError};
use crate::crypto::{PublicKey, SigningKey};
use crate::epcis::Event;
use crate::hash::Digest;
use crate::limits;

pub const STATEMENT_VERSION: u16 = 1;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Statement {
    pub version: u16,
    pub chain_id: Digest,
    /// The issuing organisation's id in genesis.
    pub org: String,
    /// The signing key; must equal the envelope's signer.
    pub key: PublicKey,
    /// Signer's clock, unix milliseconds.
    pub issued_at_ms: u64,
    /// Makes two otherwise equal statements distinct attestations.
    pub nonce: String,
    pub event: Event,
}

impl Statement {
    /// Parses the exact payload bytes of an envelope.
    pub fn from_payload(payload: &[u8]) -> Result<Statement, DecodeError> {
        codec::from_json("statement", payload, limits::STATEMENT_BYTES_MAX)
    }

    pub fn to_payload(&self) -> Vec<u8> {
        match serde_json::to_vec(self) {
            Ok(bytes) => bytes,
            Err(e) => panic!("JSON encoding of an in-memory statement failed: {e}"),
        }
    }

    /// Serialises and signs into an envelope.
    pub fn sign(&self, key: &SigningKey) -> Envelope {
        Envelope::sign(self.to_payload(), key)
    }

    /// The payload type under which statements are signed.
    pub fn payload_type() -> &'static str {
        PAYLOAD_TYPE
    }
}
