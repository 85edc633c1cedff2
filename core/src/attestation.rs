//! Attestations: a member's signed statement in a DSSE envelope.
//!
//! ```text
//! Envelope { payloadType, payload (exact JSON bytes), signatures: [{keyid, sig}] }
//! sig   = Ed25519(key, PAE(payloadType, payload))
//! PAE   = "DSSEv1" SP LEN(type) SP type SP LEN(payload) SP payload   (LEN: ASCII decimal)
//! id    = BLAKE3[lotline/v1/attestation](PAE)
//! ```
//! The payload is signed as exact bytes, so no JSON canonicalisation is needed
//! and a standard DSSE verifier can check Lotline attestations. The id does not
//! cover the signature, so re-signing the same statement can not produce a
//! "new" attestation that escapes duplicate detection.

use std::fmt;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::codec::{self, DecodeError};
use crate::crypto::{PublicKey, Signature, SignatureError, SigningKey};
use crate::hash::{self, Digest, Domain};
use crate::limits;

/// The DSSE payload type of a Lotline statement (JSON, version 1).
pub const PAYLOAD_TYPE: &str = "application/vnd.lotline.statement+json; version=1";

/// The id of an attestation: BLAKE3 of its PAE in the attestation domain.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AttestationId(pub Digest);

impl fmt::Debug for AttestationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AttestationId({})", self.0)
    }
}

impl fmt::Display for AttestationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl std::str::FromStr for AttestationId {
    type Err = crate::hash::DigestParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Digest::from_hex(s).map(AttestationId)
    }
}

/// One DSSE signature.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvelopeSignature {
    /// Lowercase hex of the signer's Ed25519 public key.
    pub keyid: String,
    #[serde(with = "sig_b64")]
    pub sig: Signature,
}

/// A DSSE envelope. JSON form follows the DSSE spec (base64 payload and sig).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Envelope {
    pub payload_type: String,
    /// The exact signed statement bytes, shared: the mempool, a proposal,
    /// the engine's held blocks and the commit step each hold the same
    /// envelope, and a clone of it copies a reference, not the statement.
    #[serde(with = "codec::base64_bytes")]
    pub payload: Bytes,
    pub signatures: Vec<EnvelopeSignature>,
}

/// Why an envelope is not acceptable, before looking at its statement.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error("payloadType must be {PAYLOAD_TYPE:?}, got {0:?}")]
    PayloadType(String),
    #[error("payload is {len} bytes, more than the limit of {max}")]
    PayloadTooLarge { len: usize, max: usize },
    #[error("an attestation carries exactly one signature, this one has {0}")]
    SignatureCount(usize),
    #[error("keyid {0:?} is not the hex of an Ed25519 public key")]
    KeyId(String),
    #[error("signature by {keyid} does not verify: {source}")]
    Signature {
        keyid: String,
        source: SignatureError,
    },
}

impl Envelope {
    /// Signs `payload` (the exact statement bytes) with `key`.
    pub fn sign(payload: Vec<u8>, key: &SigningKey) -> Envelope {
        let sig = key.sign(&pae(PAYLOAD_TYPE, &payload));
        Envelope {
            payload_type: PAYLOAD_TYPE.to_owned(),
            payload: payload.into(),
            signatures: vec![EnvelopeSignature {
                keyid: key.public_key().to_hex(),
                sig,
            }],
        }
    }

    /// The DSSE pre-authentication encoding that the signature covers.
    pub fn pae(&self) -> Vec<u8> {
        pae(&self.payload_type, &self.payload)
    }

    pub fn id(&self) -> AttestationId {
        let len_type = self.payload_type.len().to_string();
        let len_payload = self.payload.len().to_string();
        AttestationId(hash::hash_parts(
            Domain::Attestation,
            &[
                b"DSSEv1 ",
                len_type.as_bytes(),
                b" ",
                self.payload_type.as_bytes(),
                b" ",
                len_payload.as_bytes(),
                b" ",
                &self.payload,
            ],
        ))
    }

    /// Checks the shape of the envelope (type, sizes, one signature, key id)
    /// and returns the signer's key. Does *not* verify the signature, so that
    /// callers can batch verification.
    pub fn check_shape(&self) -> Result<PublicKey, EnvelopeError> {
        if self.payload_type != PAYLOAD_TYPE {
            return Err(EnvelopeError::PayloadType(self.payload_type.clone()));
        }
        if self.payload.len() > limits::STATEMENT_BYTES_MAX {
            return Err(EnvelopeError::PayloadTooLarge {
                len: self.payload.len(),
                max: limits::STATEMENT_BYTES_MAX,
            });
        }
        let [signature] = self.signatures.as_slice() else {
            return Err(EnvelopeError::SignatureCount(self.signatures.len()));
        };
        // from_hex accepts lowercase only, so a key has one keyid spelling.
        PublicKey::from_hex(&signature.keyid)
            .map_err(|_| EnvelopeError::KeyId(signature.keyid.clone()))
    }

    /// The single signature (after [`Envelope::check_shape`] succeeded).
    pub fn signature(&self) -> Option<&EnvelopeSignature> {
        self.signatures.first()
    }

    /// Shape check plus signature verification under ZIP-215.
    pub fn verify(&self) -> Result<PublicKey, EnvelopeError> {
        let key = self.check_shape()?;
        let signature = &self.signatures[0];
        key.verify(&self.pae(), &signature.sig)
            .map_err(|source| EnvelopeError::Signature {
                keyid: signature.keyid.clone(),
                source,
            })?;
        Ok(key)
    }

    /// Decodes the JSON (API) form with the size limit.
    pub fn from_json(bytes: &[u8]) -> Result<Envelope, DecodeError> {
        codec::from_json("attestation", bytes, limits::ATTESTATION_BYTES_MAX)
    }

    /// Decodes the postcard (wire/storage) form with the size limit.
    pub fn from_bytes(bytes: &[u8]) -> Result<Envelope, DecodeError> {
        codec::from_bytes("attestation", bytes, limits::ATTESTATION_BYTES_MAX)
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        codec::to_bytes(self)
    }
}

/// DSSE v1 pre-authentication encoding.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + payload_type.len() + 32);
    out.extend_from_slice(b"DSSEv1 ");
    out.extend_from_slice(payload_type.len().to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload_type.as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload.len().to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload);
    out
}

/// DSSE encodes signatures as base64 in JSON; postcard keeps 64 raw bytes.
mod sig_b64 {
    use super::Signature;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(sig: &Signature, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            crate::codec::base64_bytes::serialize(&sig.0, s)
        } else {
            sig.serialize(s)
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Signature, D::Error> {
        if d.is_human_readable() {
            let bytes: Vec<u8> = crate::codec::base64_bytes::deserialize(d)?;
            let arr: [u8; 64] = bytes.as_slice().try_into().map_err(|_| {
                serde::de::Error::custom(format!("a signature is 64 bytes, got {}", bytes.len()))
            })?;
            Ok(Signature(arr))
        } else {
            Signature::deserialize(d)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope() -> Envelope {
        Envelope::sign(
            br#"{"hello":"lot"}"#.to_vec(),
            &SigningKey::from_seed(&[9; 32]),
        )
    }

    #[test]
    fn pae_matches_the_dsse_spec_example() {
        // The DSSE protocol document's worked example.
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world".to_vec()
        );
    }

    #[test]
    fn id_is_hash_of_pae_and_ignores_signature() {
        let mut env = envelope();
        assert_eq!(env.id().0, hash::hash(Domain::Attestation, &env.pae()));
        let id = env.id();
        env.signatures[0].sig.0[5] ^= 0x10;
        assert_eq!(env.id(), id);
        assert!(matches!(env.verify(), Err(EnvelopeError::Signature { .. })));
    }

    #[test]
    fn json_form_is_standard_dsse() {
        let env = envelope();
        let json: serde_json::Value = serde_json::to_value(&env).unwrap();
        assert_eq!(json["payloadType"], PAYLOAD_TYPE);
        assert_eq!(json["payload"], "eyJoZWxsbyI6ImxvdCJ9");
        assert_eq!(json["signatures"][0]["sig"].as_str().unwrap().len(), 88);
        let back = Envelope::from_json(json.to_string().as_bytes()).unwrap();
        assert_eq!(back, env);
        assert!(back.verify().is_ok());
    }

    #[test]
    fn shape_errors_are_specific() {
        let mut env = envelope();
        env.signatures.push(env.signatures[0].clone());
        assert_eq!(env.check_shape(), Err(EnvelopeError::SignatureCount(2)));
        let mut env = envelope();
        env.payload_type = "text/plain".into();
        assert!(matches!(
            env.check_shape(),
            Err(EnvelopeError::PayloadType(_))
        ));
        let mut env = envelope();
        env.signatures[0].keyid = "nope".into();
        assert!(matches!(env.check_shape(), Err(EnvelopeError::KeyId(_))));
        let err =
            Envelope::from_json(br#"{"payloadType":"x","payload":"","signatures":[],"extra":1}"#);
        assert!(matches!(err, Err(DecodeError::Malformed { .. })));
    }
}
