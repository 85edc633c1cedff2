//! BLAKE3 hashing with one domain per kind of hashed thing.
//!
//! Every hash in Lotline is a keyed BLAKE3 hash whose key is derived from a
//! domain string `lotline/v1/<kind>`. Two different kinds of object can
//! therefore never collide even if their bytes are equal (a Merkle leaf can not
//! pose as an inner node, a vote can not pose as a header). Changing a domain
//! string is a breaking change of every stored hash.

use std::fmt;
use std::sync::LazyLock;

/// A 32-byte BLAKE3 digest. Hex in human-readable forms, raw bytes in postcard.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Digest(pub [u8; 32]);

impl Digest {
    pub const ZERO: Digest = Digest([0; 32]);

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses exactly 64 hex digits.
    pub fn from_hex(s: &str) -> Result<Self, DigestParseError> {
        if s.len() != 64 {
            return Err(DigestParseError::Length(s.len()));
        }
        let mut out = [0u8; 32];
        crate::codec::decode_lower_hex(s, &mut out).map_err(|_| DigestParseError::NotHex)?;
        Ok(Digest(out))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestParseError {
    #[error("a digest is 64 hex digits, got {0} characters")]
    Length(usize),
    #[error("a digest must be lowercase hex")]
    NotHex,
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_hex())
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_hex())
    }
}

impl std::str::FromStr for Digest {
    type Err = DigestParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Digest::from_hex(s)
    }
}

crate::codec::hex_or_bytes_serde!(Digest, 32);

/// The kinds of hashed things. Each has its own derived key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Domain {
    /// DSSE pre-authentication encoding of an attestation -> attestation id.
    Attestation,
    /// A Merkle leaf (an attestation id).
    MerkleLeaf,
    /// A Merkle inner node (left || right).
    MerkleNode,
    /// A block header.
    Header,
    /// The canonical encoding of a genesis -> chain id.
    Genesis,
    /// An entry of a hash-chained log (audit trail, journals).
    LogEntry,
    /// An API bearer token -> the hash a node config stores.
    ApiToken,
    /// A block's list of equivocation evidence.
    Evidence,
    /// A quality alert's key -> its statement nonce (one firing, one
    /// envelope).
    AlertNonce,
    /// A salted commitment to one private field (statement version 2).
    PrivateField,
    /// A private section's recipients and commitments: the content AEAD's
    /// associated data.
    PrivateSection,
    /// A field's salt in a compact private section (statement version 3),
    /// derived from the section's content key and the field's path.
    PrivateSalt,
}

impl Domain {
    pub const fn context(self) -> &'static str {
        match self {
            Domain::Attestation => "lotline/v1/attestation",
            Domain::MerkleLeaf => "lotline/v1/merkle-leaf",
            Domain::MerkleNode => "lotline/v1/merkle-node",
            Domain::Header => "lotline/v1/header",
            Domain::Genesis => "lotline/v1/genesis",
            Domain::LogEntry => "lotline/v1/log-entry",
            Domain::ApiToken => "lotline/v1/api-token",
            Domain::Evidence => "lotline/v1/evidence",
            Domain::AlertNonce => "lotline/v1/alert-nonce",
            Domain::PrivateField => "lotline/v1/private-field",
            Domain::PrivateSection => "lotline/v1/private-section",
            Domain::PrivateSalt => "lotline/v2/private-salt",
        }
    }

    const ALL: [Domain; 12] = [
        Domain::Attestation,
        Domain::MerkleLeaf,
        Domain::MerkleNode,
        Domain::Header,
        Domain::Genesis,
        Domain::LogEntry,
        Domain::ApiToken,
        Domain::Evidence,
        Domain::AlertNonce,
        Domain::PrivateField,
        Domain::PrivateSection,
        Domain::PrivateSalt,
    ];

    fn key(self) -> &'static [u8; 32] {
        static KEYS: LazyLock<[[u8; 32]; Domain::ALL.len()]> = LazyLock::new(|| {
            Domain::ALL.map(|d| blake3::derive_key(d.context(), b"lotline domain key"))
        });
        let index = Domain::ALL.iter().position(|d| *d == self).unwrap_or(0);
        &KEYS[index]
    }
}

/// Hashes `data` in `domain`.
pub fn hash(domain: Domain, data: &[u8]) -> Digest {
    Digest(*blake3::keyed_hash(domain.key(), data).as_bytes())
}

/// Hashes the concatenation of `parts` in `domain` without allocating.
pub fn hash_parts(domain: Domain, parts: &[&[u8]]) -> Digest {
    let mut hasher = blake3::Hasher::new_keyed(domain.key());
    for part in parts {
        hasher.update(part);
    }
    Digest(*hasher.finalize().as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_separate_equal_bytes() {
        let data = b"same bytes";
        let mut seen = std::collections::BTreeSet::new();
        for d in Domain::ALL {
            assert!(
                seen.insert(hash(d, data)),
                "{d:?} collides with another domain"
            );
        }
    }

    #[test]
    fn hash_parts_equals_hash_of_concatenation() {
        assert_eq!(
            hash_parts(Domain::MerkleNode, &[b"ab", b"cd"]),
            hash(Domain::MerkleNode, b"abcd")
        );
    }

    #[test]
    fn hex_round_trip_and_errors() {
        let d = hash(Domain::Header, b"x");
        assert_eq!(Digest::from_hex(&d.to_hex()), Ok(d));
        assert_eq!(Digest::from_hex("ab"), Err(DigestParseError::Length(2)));
        assert_eq!(
            Digest::from_hex(&"zz".repeat(32)),
            Err(DigestParseError::NotHex)
        );
    }

    /// Golden value: changing a domain string or the key derivation is a
    /// format change and must be reviewed as one.
    #[test]
    fn golden_attestation_domain() {
        assert_eq!(
            hash(Domain::Attestation, b"").to_hex(),
            GOLDEN_EMPTY_ATTESTATION_HASH
        );
    }
    const GOLDEN_EMPTY_ATTESTATION_HASH: &str =
        "fedcea000f4d3b90032920bed8df47f99d7d20ff7aae0e88e78b89d43d764502";
}
