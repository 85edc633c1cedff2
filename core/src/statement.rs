//! The statement a member signs: who says what, on which chain, about which
//! EPCIS event.
//!
//! ```json
//! { "version": 1, "chainId": "<hex>", "org": "acme-supplier", "key": "<hex>",
//!   "issuedAtMs": 1763800000000, "nonce": "<hex>", "event": { EPCIS 2.0 event } }
//! ```
//! Unknown fields at the statement level are rejected: a signer must never
//! believe it signed something a node silently ignored.
//!
//! Version 1 has no private section and stays valid. Version 2 carries a
//! `private` section ([`crate::private`]): fields moved out of `event`,
//! encrypted to the orgs entitled to read them, with a salted commitment per
//! field. The envelope, the attestation id and the receipt are unchanged: they
//! cover the section's ciphertext like any other payload byte.

use serde::{Deserialize, Serialize};

use crate::attestation::{Envelope, PAYLOAD_TYPE};
use crate::codec::{self, DecodeError};
use crate::crypto::{PublicKey, SigningKey};
use crate::epcis::Event;
use crate::hash::Digest;
use crate::limits;
use crate::private::PrivateSection;

/// A statement without private fields.
pub const STATEMENT_VERSION: u16 = 1;
/// A statement with a private section.
pub const STATEMENT_VERSION_PRIVATE: u16 = 2;

/// Whether this version of Lotline reads statements of `version`.
pub fn is_supported_version(version: u16) -> bool {
    version == STATEMENT_VERSION || version == STATEMENT_VERSION_PRIVATE
}

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
    /// The public event: everything a node needs for policy, trace and
    /// custody. Private fields are absent here and sealed in `private`.
    pub event: Event,
    /// Version 2 only: the sealed private fields.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private: Option<PrivateSection>,
}

impl Statement {
    /// Parses the exact payload bytes of an envelope.
    ///
    /// A private section must come with version 2 and version 2 with a
    /// private section; the section's shape is checked here
    /// ([`PrivateSection::check`]), so no node stores a malformed one.
    pub fn from_payload(payload: &[u8]) -> Result<Statement, DecodeError> {
        let statement: Statement =
            codec::from_json("statement", payload, limits::STATEMENT_BYTES_MAX)?;
        let malformed = |reason: String| DecodeError::Malformed {
            what: "statement",
            reason,
        };
        match (&statement.private, statement.version) {
            (Some(_), STATEMENT_VERSION) => {
                return Err(malformed(
                    "a version 1 statement has no private section".into(),
                ));
            }
            (None, STATEMENT_VERSION_PRIVATE) => {
                return Err(malformed(
                    "a version 2 statement needs a private section".into(),
                ));
            }
            _ => {}
        }
        if let Some(private) = &statement.private {
            private
                .check()
                .map_err(|e| malformed(format!("private section: {e}")))?;
        }
        Ok(statement)
    }

    /// The version a statement with (or without) `private` carries.
    pub fn version_for(private: &Option<PrivateSection>) -> u16 {
        if private.is_some() {
            STATEMENT_VERSION_PRIVATE
        } else {
            STATEMENT_VERSION
        }
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
