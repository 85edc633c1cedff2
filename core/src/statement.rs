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
//! cover the section's ciphertext like any other payload byte. Version 3 is
//! version 2 with the section in its compact form (`"private": "<base64>"`,
//! suite `lotline/private/v2`, [`crate::private`]): what new private records
//! are sealed as; version 2 stays valid.

use serde::{Deserialize, Serialize};

use crate::attestation::{Envelope, PAYLOAD_TYPE};
use crate::codec::{self, DecodeError};
use crate::crypto::{PublicKey, SigningKey};
use crate::epcis::Event;
use crate::hash::Digest;
use crate::limits;
use crate::private::{PrivateSection, Suite};

/// A statement without private fields.
pub const STATEMENT_VERSION: u16 = 1;
/// A statement with a private section in its object form.
pub const STATEMENT_VERSION_PRIVATE: u16 = 2;
/// A statement with a private section in its compact form.
pub const STATEMENT_VERSION_COMPACT: u16 = 3;

/// Whether this version of Lotline reads statements of `version`.
pub fn is_supported_version(version: u16) -> bool {
    matches!(
        version,
        STATEMENT_VERSION | STATEMENT_VERSION_PRIVATE | STATEMENT_VERSION_COMPACT
    )
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
    /// Versions 2 and 3 only: the sealed private fields.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private: Option<PrivateSection>,
}

impl Statement {
    /// Parses the exact payload bytes of an envelope.
    ///
    /// A private section must come with the version of its form (2 for the
    /// object form, 3 for the compact one) and versions 2 and 3 with a
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
            (None, STATEMENT_VERSION_PRIVATE | STATEMENT_VERSION_COMPACT) => {
                return Err(malformed(format!(
                    "a version {} statement needs a private section",
                    statement.version
                )));
            }
            _ => {}
        }
        if let Some(private) = &statement.private {
            private
                .check()
                .map_err(|e| malformed(format!("private section: {e}")))?;
            let expected = Statement::version_for(&statement.private);
            if is_supported_version(statement.version) && statement.version != expected {
                return Err(malformed(format!(
                    "a version {} statement carries a {} private section, which version {expected} carries",
                    statement.version, private.suite
                )));
            }
        }
        Ok(statement)
    }

    /// The version a statement with (or without) `private` carries.
    pub fn version_for(private: &Option<PrivateSection>) -> u16 {
        match private.as_ref().map(PrivateSection::suite_kind) {
            None => STATEMENT_VERSION,
            Some(Ok(Suite::Compact)) => STATEMENT_VERSION_COMPACT,
            Some(_) => STATEMENT_VERSION_PRIVATE,
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
