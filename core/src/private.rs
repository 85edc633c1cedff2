//! The private section of a version 2 statement: fields of an EPCIS event
//! that only entitled organisations can read, sealed once and replicated as
//! ciphertext by every node.
//!
//! ```json
//! "private": {
//!   "suite": "lotline/private/v1",
//!   "nonce": "<24 hex>",
//!   "ciphertext": "<base64>",
//!   "recipients": [ { "org": "bolt-works", "key": "<64 hex>",
//!                     "enc": "<64 hex>", "wrappedKey": "<base64, 48 bytes>" } ],
//!   "fields": [ { "path": "/sensorElementList", "commitment": "<64 hex>" } ]
//! }
//! ```
//!
//! Sealing ([`seal`]):
//! 1. each private field (a JSON pointer to a member of an object in the
//!    event) is moved out of the event, which keeps what trace, custody and
//!    the write policy need;
//! 2. each field gets a fresh 16-byte salt and a commitment,
//!    `BLAKE3(lotline/v1/private-field, salt || len(path) || path || canonical JSON of the value)`;
//! 3. the fields (path, value, salt) are encrypted once under a fresh
//!    32-byte content key with ChaCha20Poly1305; the associated data is
//!    [`PrivateSection::binding`], which covers the suite, the recipients'
//!    org ids and the commitments, so no part of the section can be swapped;
//! 4. the content key is wrapped for each recipient org with HPKE (RFC 9180)
//!    base mode, DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ChaCha20Poly1305,
//!    with info `lotline/v1/private-key-wrap` and the org id as associated
//!    data.
//!
//! The section sits inside the signed statement, so the envelope signature,
//! the attestation id and the receipt cover the ciphertext, the wraps and
//! the commitments. Which orgs must be recipients is a consortium rule
//! (genesis); this module only carries and checks the shape.
//!
//! Selective disclosure: a reader who opened the section hands one
//! [`Disclosure`] (path, value, salt) to a third party, who checks it
//! against the commitment in a verified statement ([`verify_disclosure`])
//! and learns nothing about the other fields.
//!
//! Retention and crypto-shredding: on a consortium with retention classes
//! (genesis `[retention]`), the content key is not wrapped to an org's
//! long-term key but to the org's key for the section's **key period**
//! (`keyPeriod`, bound into the AEAD's associated data). A key period is
//! the period in which the record's retention ends; every node of an org
//! deletes that period's secret key once the committed chain has passed the
//! period's end, and with every org's copy gone the content key of every
//! section of the period is unrecoverable, while the ciphertext, the
//! signatures, the receipts and the certificates stay exactly as they were.
//! Period keys are independent random keys, not derived from the long-term
//! key, so holding the long-term key does not bring a shredded period back.
//!
//! **The compact form** (statement version 3, suite `lotline/private/v2`,
//! [`Suite::Compact`], what [`seal`] makes): `"private"` is one base64
//! string of the section's postcard encoding instead of an object of hex
//! and base64 members, and it carries fewer bytes:
//! - a wrap is 32 bytes: the content key XORed with 32 bytes exported from
//!   the recipient's HPKE context (RFC 9180 §5.3, export-only mode, info
//!   `lotline/v2/private-key-wrap`, exporter context the org id) instead of
//!   a 48-byte HPKE seal of it. A wrong wrap or `enc` gives a wrong content
//!   key, which the content AEAD refuses ([`PrivateError::DecryptFailed`]);
//! - no nonce: the content key is fresh and encrypts once, so it is zero;
//! - no salts in the ciphertext: a field's salt is derived from the content
//!   key and its path (`lotline/v2/private-salt`), so whoever opens the
//!   section recomputes it, and a disclosed salt tells nothing of the key
//!   or of the other fields' salts;
//! - the plaintext is the JSON array of the values in field order (the
//!   paths are in the signed field list already).
//!
//! Commitments, the binding, selective disclosure and key periods are the
//! same in both forms; version 2 statements stay valid, verifiable and
//! openable (docs/performance.md, "Private fields", for what the compact
//! form saves).
//!
//! Non-features: no forward secrecy for the recipients (an org key that
//! leaks opens every section wrapped to it; rotation limits the window), no
//! hiding of which orgs are recipients or how many fields are private.

use std::collections::BTreeSet;
use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use hpke::{Deserializable, Kem as _, OpModeR, OpModeS, Serializable};
use rand_core::{OsRng, RngCore};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use zeroize::Zeroizing;

use crate::codec::{base64_bytes, hex_or_bytes_serde};
use crate::epcis::Event;
use crate::hash::{Digest, Domain, hash_parts};
use crate::limits;

type HpkeKem = hpke::kem::X25519HkdfSha256;
type HpkeKdf = hpke::kdf::HkdfSha256;
type HpkeAead = hpke::aead::ChaCha20Poly1305;

/// The suite of object-form sections (statement version 2).
pub const SUITE: &str = "lotline/private/v1";
/// The suite of compact sections (statement version 3).
pub const SUITE_COMPACT: &str = "lotline/private/v2";
/// HPKE `info` for content-key wraps of [`SUITE`] sections.
const WRAP_INFO: &[u8] = b"lotline/v1/private-key-wrap";
/// HPKE `info` for the exported wrap masks of [`SUITE_COMPACT`] sections.
const WRAP_INFO_COMPACT: &[u8] = b"lotline/v2/private-key-wrap";
/// A content key's bytes.
const CONTENT_KEY_BYTES: usize = 32;

/// The two encodings of a private section (see the module doc).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Suite {
    /// `lotline/private/v1`, statement version 2: a JSON object, 48-byte
    /// HPKE-sealed wraps, a random nonce and salts in the ciphertext.
    Object,
    /// `lotline/private/v2`, statement version 3: one base64 string,
    /// 32-byte exported wraps, derived nonce and salts.
    #[default]
    Compact,
}

impl Suite {
    pub const fn name(self) -> &'static str {
        match self {
            Suite::Object => SUITE,
            Suite::Compact => SUITE_COMPACT,
        }
    }

    pub fn of(name: &str) -> Option<Suite> {
        match name {
            SUITE => Some(Suite::Object),
            SUITE_COMPACT => Some(Suite::Compact),
            _ => None,
        }
    }

    /// A wrapped content key: the key and a 16-byte tag, or the bare
    /// masked key.
    pub const fn wrapped_key_bytes(self) -> usize {
        match self {
            Suite::Object => CONTENT_KEY_BYTES + TAG_BYTES,
            Suite::Compact => CONTENT_KEY_BYTES,
        }
    }
}
/// A ChaCha20Poly1305 tag.
const TAG_BYTES: usize = 16;

/// An org's X25519 public encryption key (in genesis).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EncryptionPublicKey(pub [u8; 32]);
hex_or_bytes_serde!(EncryptionPublicKey, 32);

impl fmt::Debug for EncryptionPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EncryptionPublicKey({})", self.to_hex())
    }
}

impl fmt::Display for EncryptionPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl EncryptionPublicKey {
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    pub fn from_hex(s: &str) -> Result<Self, crate::crypto::KeyParseError> {
        if s.len() != 64 {
            return Err(crate::crypto::KeyParseError::Length {
                expected: 64,
                got: s.len(),
            });
        }
        let mut out = [0u8; 32];
        crate::codec::decode_lower_hex(s, &mut out)
            .map_err(|_| crate::crypto::KeyParseError::NotHex)?;
        Ok(EncryptionPublicKey(out))
    }

    /// True for the all-zero key and the other low-order points' encodings
    /// that X25519 maps to an all-zero shared secret: HPKE refuses to
    /// encapsulate to them, so genesis refuses them up front.
    pub fn is_weak(&self) -> bool {
        let Ok(key) = <HpkeKem as hpke::Kem>::PublicKey::from_bytes(&self.0) else {
            return true;
        };
        hpke::single_shot_seal::<HpkeAead, HpkeKdf, HpkeKem>(&OpModeS::Base, &key, b"", b"", b"")
            .is_err()
    }
}

/// An org's X25519 secret decryption key. Never printed: `Debug` shows only
/// the public key.
pub struct EncryptionSecretKey {
    secret: Zeroizing<[u8; 32]>,
    public: EncryptionPublicKey,
}

impl fmt::Debug for EncryptionSecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EncryptionSecretKey(public {})", self.public.to_hex())
    }
}

impl EncryptionSecretKey {
    /// A fresh key from the operating system's generator.
    pub fn generate() -> Self {
        let mut ikm = Zeroizing::new([0u8; 32]);
        OsRng.fill_bytes(ikm.as_mut());
        Self::derive(&ikm)
    }

    /// The key HPKE's `DeriveKeyPair` gives for `ikm` (RFC 9180, 7.1.3).
    pub fn derive(ikm: &[u8; 32]) -> Self {
        let (secret, public) = HpkeKem::derive_keypair(ikm);
        let mut bytes = Zeroizing::new([0u8; 32]);
        bytes.copy_from_slice(&secret.to_bytes());
        let mut public_bytes = [0u8; 32];
        public_bytes.copy_from_slice(&public.to_bytes());
        EncryptionSecretKey {
            secret: bytes,
            public: EncryptionPublicKey(public_bytes),
        }
    }

    /// Restores a key from its 32 secret bytes (a key file).
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, PrivateError> {
        let secret = <HpkeKem as hpke::Kem>::PrivateKey::from_bytes(bytes)
            .map_err(|_| PrivateError::BadSecretKey)?;
        let public = HpkeKem::sk_to_pk(&secret);
        let mut public_bytes = [0u8; 32];
        public_bytes.copy_from_slice(&public.to_bytes());
        Ok(EncryptionSecretKey {
            secret: Zeroizing::new(*bytes),
            public: EncryptionPublicKey(public_bytes),
        })
    }

    pub fn secret_bytes(&self) -> &[u8; 32] {
        &self.secret
    }

    pub fn public_key(&self) -> EncryptionPublicKey {
        self.public
    }
}

/// One recipient org: its key at sealing time and the wrapped content key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Recipient {
    pub org: String,
    /// The org's encryption key the content key was wrapped to. Naming it
    /// lets a node tell which of its keys (after rotation) opens the wrap.
    pub key: EncryptionPublicKey,
    /// HPKE's encapsulated key.
    pub enc: EncryptionPublicKey,
    #[serde(with = "base64_bytes")]
    pub wrapped_key: Vec<u8>,
}

/// One private field's salted commitment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldCommitment {
    /// A JSON pointer (RFC 6901) into the event.
    pub path: String,
    pub commitment: Digest,
}

/// A field's 16-byte salt.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Salt(pub [u8; 16]);
hex_or_bytes_serde!(Salt, 16);

impl fmt::Debug for Salt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Salt(..)")
    }
}

/// One opened private field: what a reader sees and what a selective
/// disclosure hands over.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Disclosure {
    pub path: String,
    pub value: Value,
    pub salt: Salt,
}

/// A 12-byte AEAD nonce.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ContentNonce(pub [u8; 12]);
hex_or_bytes_serde!(ContentNonce, 12);

/// The private section of a version 2 or 3 statement. Its JSON form
/// follows its suite: an object for [`SUITE`], a base64 string for
/// [`SUITE_COMPACT`] (see the module doc).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrivateSection {
    pub suite: String,
    /// Zero in a compact section (its content key encrypts once).
    pub nonce: ContentNonce,
    pub ciphertext: Vec<u8>,
    pub recipients: Vec<Recipient>,
    pub fields: Vec<FieldCommitment>,
    /// The key period the content key is wrapped for (retention and
    /// crypto-shredding, see [`crate::private`]'s module doc): the
    /// recipients' keys are their keys *for this period*, not their
    /// long-term keys. Absent on a consortium without retention classes.
    pub key_period: Option<u64>,
}

/// The JSON object form of a [`SUITE`] section (statement version 2).
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ObjectForm {
    suite: String,
    nonce: ContentNonce,
    #[serde(with = "base64_bytes")]
    ciphertext: Vec<u8>,
    recipients: Vec<Recipient>,
    fields: Vec<FieldCommitment>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    key_period: Option<u64>,
}

/// The postcard form of a [`SUITE_COMPACT`] section (statement version 3):
/// raw keys, wraps, commitments and ciphertext; no suite (the statement
/// version names it) and no nonce (zero).
#[derive(Serialize, Deserialize)]
struct CompactForm {
    key_period: Option<u64>,
    recipients: Vec<CompactRecipient>,
    fields: Vec<FieldCommitment>,
    #[serde(with = "base64_bytes")]
    ciphertext: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
struct CompactRecipient {
    org: String,
    key: EncryptionPublicKey,
    enc: EncryptionPublicKey,
    #[serde(with = "base64_bytes")]
    wrapped_key: Vec<u8>,
}

impl From<ObjectForm> for PrivateSection {
    fn from(o: ObjectForm) -> Self {
        PrivateSection {
            suite: o.suite,
            nonce: o.nonce,
            ciphertext: o.ciphertext,
            recipients: o.recipients,
            fields: o.fields,
            key_period: o.key_period,
        }
    }
}

impl PrivateSection {
    /// The compact form's bytes (whatever the suite says: the caller
    /// chose the form).
    fn compact_bytes(&self) -> Vec<u8> {
        crate::codec::to_bytes(&CompactForm {
            key_period: self.key_period,
            recipients: self
                .recipients
                .iter()
                .map(|r| CompactRecipient {
                    org: r.org.clone(),
                    key: r.key,
                    enc: r.enc,
                    wrapped_key: r.wrapped_key.clone(),
                })
                .collect(),
            fields: self.fields.clone(),
            ciphertext: self.ciphertext.clone(),
        })
    }

    /// Decodes the compact form (canonical postcard, no trailing bytes).
    fn from_compact(bytes: &[u8]) -> Result<PrivateSection, crate::codec::DecodeError> {
        let form: CompactForm =
            crate::codec::from_bytes("private section", bytes, limits::STATEMENT_BYTES_MAX)?;
        Ok(PrivateSection {
            suite: SUITE_COMPACT.to_owned(),
            nonce: ContentNonce([0u8; 12]),
            ciphertext: form.ciphertext,
            recipients: form
                .recipients
                .into_iter()
                .map(|r| Recipient {
                    org: r.org,
                    key: r.key,
                    enc: r.enc,
                    wrapped_key: r.wrapped_key,
                })
                .collect(),
            fields: form.fields,
            key_period: form.key_period,
        })
    }
}

impl Serialize for PrivateSection {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.suite == SUITE_COMPACT {
            let bytes = self.compact_bytes();
            return if s.is_human_readable() {
                s.serialize_str(&STANDARD.encode(bytes))
            } else {
                s.serialize_bytes(&bytes)
            };
        }
        if !s.is_human_readable() {
            return Err(serde::ser::Error::custom(
                "an object-form private section has only a JSON form",
            ));
        }
        ObjectForm {
            suite: self.suite.clone(),
            nonce: self.nonce,
            ciphertext: self.ciphertext.clone(),
            recipients: self.recipients.clone(),
            fields: self.fields.clone(),
            key_period: self.key_period,
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for PrivateSection {
    /// JSON: an object ([`SUITE`]) or a base64 string ([`SUITE_COMPACT`]);
    /// binary formats: the compact bytes.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::{self, MapAccess, Visitor};
        struct Form;
        impl<'de> Visitor<'de> for Form {
            type Value = PrivateSection;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a private section: an object or a base64 string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<PrivateSection, E> {
                let bytes = STANDARD
                    .decode(v.as_bytes())
                    .map_err(|e| E::custom(format!("compact private section: {e}")))?;
                self.visit_bytes(&bytes)
            }
            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<PrivateSection, E> {
                PrivateSection::from_compact(v).map_err(E::custom)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<PrivateSection, A::Error> {
                let form = ObjectForm::deserialize(de::value::MapAccessDeserializer::new(map))?;
                // The form follows the suite: a compact section read from
                // an object would keep a nonce its own form cannot carry,
                // and so would not encode back to the bytes it came from.
                if form.suite == SUITE_COMPACT {
                    return Err(de::Error::custom(format!(
                        "a {SUITE_COMPACT} private section is one base64 string, not an object"
                    )));
                }
                Ok(form.into())
            }
        }
        if d.is_human_readable() {
            d.deserialize_any(Form)
        } else {
            d.deserialize_bytes(Form)
        }
    }
}

/// What a [`SUITE`] ciphertext decrypts to (a [`SUITE_COMPACT`] one
/// decrypts to the JSON array of the values).
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    fields: Vec<Disclosure>,
}

/// Why a private section (or a disclosure) is refused. The variants that
/// come from decoding name the offending value; the cryptographic failures
/// are deliberately coarse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PrivateError {
    #[error(
        "private section suite {0:?} is not supported (this version knows {SUITE:?} and {SUITE_COMPACT:?})"
    )]
    UnknownSuite(String),
    #[error("a private section needs at least one field and at most {max}; it has {count}")]
    FieldCount { count: usize, max: usize },
    #[error("a private section needs at least one recipient and at most {max}; it has {count}")]
    RecipientCount { count: usize, max: usize },
    #[error("private field path {path:?} is not a JSON pointer to an event member: {reason}")]
    BadPath { path: String, reason: &'static str },
    #[error("private field paths {first:?} and {second:?} overlap or repeat")]
    OverlappingPaths { first: String, second: String },
    #[error("recipient org {0:?} appears twice")]
    DuplicateRecipient(String),
    #[error("recipient {org:?}: the wrapped key is {len} bytes, expected {expected}")]
    WrappedKeyLength {
        org: String,
        len: usize,
        expected: usize,
    },
    #[error("the ciphertext is {len} bytes; it must be between {TAG_BYTES} and {max}")]
    CiphertextLength { len: usize, max: usize },
    #[error("the event has no member at private field path {0:?}")]
    NoSuchField(String),
    #[error("the public event already has a member at private field path {0:?}")]
    FieldNotRemoved(String),
    #[error("recipient key of org {0:?} is not a usable X25519 key")]
    BadRecipientKey(String),
    #[error("org {0:?} is not a recipient of this private section")]
    NotARecipient(String),
    #[error("the key wrap for this org does not open with this key")]
    UnwrapFailed,
    #[error("the wrap for this org is to key {0}, which is not among the keys given")]
    NoKeyFor(EncryptionPublicKey),
    #[error("the private ciphertext does not decrypt under its content key")]
    DecryptFailed,
    #[error("the decrypted private fields do not match the signed commitments")]
    CommitmentMismatch,
    #[error("no private field at path {0:?}")]
    NoCommitment(String),
    #[error("the disclosed value and salt do not match the commitment at {0:?}")]
    DisclosureMismatch(String),
    #[error("an encryption secret key must be 32 bytes of a valid X25519 scalar")]
    BadSecretKey,
    #[error("the event with its private fields restored is not an event: {0}")]
    Restore(String),
}

/// Salted commitment to one field's value.
pub fn commitment(path: &str, value: &Value, salt: &Salt) -> Digest {
    let canonical = canonical_json(value);
    let path_len = u32::try_from(path.len()).unwrap_or(u32::MAX).to_le_bytes();
    hash_parts(
        Domain::PrivateField,
        &[&salt.0, &path_len, path.as_bytes(), &canonical],
    )
}

/// Canonical JSON of a value: object members sorted by key, no whitespace,
/// serde_json's number and string forms. One value, one byte string,
/// whatever member order the holder received it in.
pub fn canonical_json(value: &Value) -> Vec<u8> {
    fn write(value: &Value, out: &mut Vec<u8>) {
        match value {
            Value::Object(map) => {
                out.push(b'{');
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                for (i, key) in keys.into_iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    write(&Value::String(key.clone()), out);
                    out.push(b':');
                    if let Some(v) = map.get(key) {
                        write(v, out);
                    }
                }
                out.push(b'}');
            }
            Value::Array(items) => {
                out.push(b'[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    write(item, out);
                }
                out.push(b']');
            }
            scalar => match serde_json::to_vec(scalar) {
                Ok(bytes) => out.extend_from_slice(&bytes),
                Err(e) => panic!("JSON encoding of a scalar failed: {e}"),
            },
        }
    }
    let mut out = Vec::new();
    write(value, &mut out);
    out
}

/// Checks a path's grammar: `/a/b/c`, each segment non-empty, no array
/// indices (removing an array element would renumber its siblings), at
/// most [`limits::PRIVATE_PATH_BYTES_MAX`] bytes and
/// [`limits::PRIVATE_PATH_DEPTH_MAX`] segments.
fn check_path(path: &str) -> Result<(), PrivateError> {
    let bad = |reason| PrivateError::BadPath {
        path: crate::api::excerpt(path),
        reason,
    };
    if path.len() > limits::PRIVATE_PATH_BYTES_MAX {
        return Err(bad("too long"));
    }
    let Some(rest) = path.strip_prefix('/') else {
        return Err(bad("must start with '/'"));
    };
    let segments: Vec<&str> = rest.split('/').collect();
    if segments.len() > limits::PRIVATE_PATH_DEPTH_MAX {
        return Err(bad("too deep"));
    }
    for segment in segments {
        if segment.is_empty() {
            return Err(bad("empty segment"));
        }
        if segment.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad("array indices are not private fields"));
        }
        if segment.contains('~') {
            return Err(bad("escaped segments are not supported"));
        }
    }
    if matches!(path, "/type" | "/eventTime" | "/eventTimeZoneOffset") {
        return Err(bad("a required event member stays public"));
    }
    Ok(())
}

impl PrivateSection {
    /// Structural checks a node applies before anything else (no keys
    /// needed): suite, counts, sizes, path grammar, no overlapping paths,
    /// distinct recipients.
    pub fn check(&self) -> Result<(), PrivateError> {
        let suite = self.suite_kind()?;
        if self.fields.is_empty() || self.fields.len() > limits::PRIVATE_FIELDS_MAX {
            return Err(PrivateError::FieldCount {
                count: self.fields.len(),
                max: limits::PRIVATE_FIELDS_MAX,
            });
        }
        if self.recipients.is_empty() || self.recipients.len() > limits::PRIVATE_RECIPIENTS_MAX {
            return Err(PrivateError::RecipientCount {
                count: self.recipients.len(),
                max: limits::PRIVATE_RECIPIENTS_MAX,
            });
        }
        if self.ciphertext.len() < TAG_BYTES
            || self.ciphertext.len() > limits::PRIVATE_CIPHERTEXT_BYTES_MAX
        {
            return Err(PrivateError::CiphertextLength {
                len: self.ciphertext.len(),
                max: limits::PRIVATE_CIPHERTEXT_BYTES_MAX,
            });
        }
        for field in &self.fields {
            check_path(&field.path)?;
        }
        // Sorted, a path and any path below it are neighbours ("/a" < "/a/b"
        // < "/a0"), so comparing neighbours finds every overlap.
        let mut paths: Vec<&str> = self.fields.iter().map(|f| f.path.as_str()).collect();
        paths.sort_unstable();
        for pair in paths.windows(2) {
            let (a, b) = (pair[0], pair[1]);
            if a == b || b.strip_prefix(a).is_some_and(|rest| rest.starts_with('/')) {
                return Err(PrivateError::OverlappingPaths {
                    first: a.to_owned(),
                    second: b.to_owned(),
                });
            }
        }
        let mut orgs = BTreeSet::new();
        for r in &self.recipients {
            if !orgs.insert(r.org.as_str()) {
                return Err(PrivateError::DuplicateRecipient(crate::api::excerpt(
                    &r.org,
                )));
            }
            if r.wrapped_key.len() != suite.wrapped_key_bytes() {
                return Err(PrivateError::WrappedKeyLength {
                    org: crate::api::excerpt(&r.org),
                    len: r.wrapped_key.len(),
                    expected: suite.wrapped_key_bytes(),
                });
            }
        }
        Ok(())
    }

    /// Which of the two forms this section is in.
    pub fn suite_kind(&self) -> Result<Suite, PrivateError> {
        Suite::of(&self.suite)
            .ok_or_else(|| PrivateError::UnknownSuite(crate::api::excerpt(&self.suite)))
    }

    /// The content AEAD's associated data: the suite, every recipient org
    /// and key, and every field's path and commitment, hashed.
    pub fn binding(&self) -> Digest {
        let mut parts: Vec<&[u8]> = vec![self.suite.as_bytes()];
        let lens: Vec<[u8; 4]> = self
            .recipients
            .iter()
            .map(|r| u32::try_from(r.org.len()).unwrap_or(u32::MAX).to_le_bytes())
            .collect();
        for (r, len) in self.recipients.iter().zip(&lens) {
            parts.push(len);
            parts.push(r.org.as_bytes());
            parts.push(&r.key.0);
        }
        let path_lens: Vec<[u8; 4]> = self
            .fields
            .iter()
            .map(|f| {
                u32::try_from(f.path.len())
                    .unwrap_or(u32::MAX)
                    .to_le_bytes()
            })
            .collect();
        for (f, len) in self.fields.iter().zip(&path_lens) {
            parts.push(len);
            parts.push(f.path.as_bytes());
            parts.push(f.commitment.as_bytes());
        }
        // Only present with a key period, so sections without one keep the
        // binding they always had. The tag cannot be confused with a
        // recipient or field part: those come in fixed-width triples after
        // the suite, and this is the last part.
        let period = self.key_period.map(u64::to_le_bytes);
        if let Some(period) = &period {
            parts.push(b"key-period");
            parts.push(period);
        }
        hash_parts(Domain::PrivateSection, &parts)
    }

    /// The org ids the content key is wrapped to.
    pub fn recipient_orgs(&self) -> impl Iterator<Item = &str> {
        self.recipients.iter().map(|r| r.org.as_str())
    }

    /// Opens the section as `org` with whichever of `keys` the section's
    /// wrap for `org` names: after a rotation an org holds its current key
    /// and its retired ones, and a record stays readable with the key it
    /// was wrapped to. `NoKeyFor` names the public key that would open it.
    pub fn open_with(
        &self,
        org: &str,
        keys: &[EncryptionSecretKey],
    ) -> Result<Vec<Disclosure>, PrivateError> {
        let recipient = self
            .recipients
            .iter()
            .find(|r| r.org == org)
            .ok_or_else(|| PrivateError::NotARecipient(crate::api::excerpt(org)))?;
        let key = keys
            .iter()
            .find(|k| k.public == recipient.key)
            .ok_or(PrivateError::NoKeyFor(recipient.key))?;
        self.open(org, key)
    }

    /// Opens the section as `org` with `key`: unwraps the content key,
    /// decrypts, and checks every field against its signed commitment.
    pub fn open(
        &self,
        org: &str,
        key: &EncryptionSecretKey,
    ) -> Result<Vec<Disclosure>, PrivateError> {
        self.check()?;
        let suite = self.suite_kind()?;
        let recipient = self
            .recipients
            .iter()
            .find(|r| r.org == org && r.key == key.public)
            .ok_or_else(|| PrivateError::NotARecipient(crate::api::excerpt(org)))?;
        let content_key = unwrap(suite, recipient, key)?;
        let cipher = ChaCha20Poly1305::new(Key::from_slice(content_key.as_ref()));
        let binding = self.binding();
        let plaintext = Zeroizing::new(
            cipher
                .decrypt(
                    Nonce::from_slice(&self.nonce.0),
                    Payload {
                        msg: &self.ciphertext,
                        aad: binding.as_bytes(),
                    },
                )
                .map_err(|_| PrivateError::DecryptFailed)?,
        );
        let fields = match suite {
            Suite::Object => {
                let body: Body = serde_json::from_slice(&plaintext)
                    .map_err(|_| PrivateError::CommitmentMismatch)?;
                body.fields
            }
            Suite::Compact => {
                let values: Vec<Value> = serde_json::from_slice(&plaintext)
                    .map_err(|_| PrivateError::CommitmentMismatch)?;
                if values.len() != self.fields.len() {
                    return Err(PrivateError::CommitmentMismatch);
                }
                values
                    .into_iter()
                    .zip(&self.fields)
                    .map(|(value, signed)| Disclosure {
                        salt: derived_salt(&content_key, &signed.path),
                        path: signed.path.clone(),
                        value,
                    })
                    .collect()
            }
        };
        if fields.len() != self.fields.len() {
            return Err(PrivateError::CommitmentMismatch);
        }
        for (opened, signed) in fields.iter().zip(&self.fields) {
            if opened.path != signed.path
                || commitment(&opened.path, &opened.value, &opened.salt) != signed.commitment
            {
                return Err(PrivateError::CommitmentMismatch);
            }
        }
        Ok(fields)
    }

    /// Checks a selective disclosure against this (signed, verified)
    /// section's commitment for its path.
    pub fn verify_disclosure(&self, disclosure: &Disclosure) -> Result<(), PrivateError> {
        let signed = self
            .fields
            .iter()
            .find(|f| f.path == disclosure.path)
            .ok_or_else(|| PrivateError::NoCommitment(crate::api::excerpt(&disclosure.path)))?;
        if commitment(&disclosure.path, &disclosure.value, &disclosure.salt) != signed.commitment {
            return Err(PrivateError::DisclosureMismatch(crate::api::excerpt(
                &disclosure.path,
            )));
        }
        Ok(())
    }
}

/// Splits a JSON pointer into its parent pointer and last segment.
fn split(path: &str) -> (&str, &str) {
    match path.rfind('/') {
        Some(i) => (&path[..i], &path[i + 1..]),
        None => ("", path),
    }
}

/// The event without the members at `paths`, and the removed values in
/// path order. What the public part of a statement sealing these paths
/// will be: a submitter derives the record's facts (and so its
/// recipients) from it before sealing.
pub fn split_event(
    event: &Event,
    paths: &[String],
) -> Result<(Event, Vec<(String, Value)>), PrivateError> {
    let mut json = serde_json::to_value(event).map_err(|e| PrivateError::Restore(e.to_string()))?;
    let mut removed = Vec::with_capacity(paths.len());
    for path in paths {
        check_path(path)?;
        let (parent, member) = split(path);
        let value = json
            .pointer_mut(parent)
            .and_then(Value::as_object_mut)
            .and_then(|object| object.remove(member))
            .ok_or_else(|| PrivateError::NoSuchField(crate::api::excerpt(path)))?;
        removed.push((path.clone(), value));
    }
    let public: Event =
        serde_json::from_value(json).map_err(|e| PrivateError::Restore(e.to_string()))?;
    Ok((public, removed))
}

/// Seals `paths` of `event` for `recipients` (org id, long-term key):
/// returns the public event (those members removed) and the section. The
/// caller chooses the recipients by the consortium's rule.
pub fn seal(
    event: &Event,
    paths: &[String],
    recipients: &[(String, EncryptionPublicKey)],
) -> Result<(Event, PrivateSection), PrivateError> {
    seal_for_period(event, paths, recipients, None)
}

/// [`seal`] for a consortium with retention classes: `recipients` are the
/// orgs' keys for `key_period`, which the section names (and binds), so
/// destroying those keys destroys the content key of every section sealed
/// for the period.
pub fn seal_for_period(
    event: &Event,
    paths: &[String],
    recipients: &[(String, EncryptionPublicKey)],
    key_period: Option<u64>,
) -> Result<(Event, PrivateSection), PrivateError> {
    seal_as(event, paths, recipients, key_period, Suite::default())
}

/// [`seal_for_period`] in the form `suite` names: [`Suite::Compact`] for
/// new records, [`Suite::Object`] for a submitter that must write version 2
/// statements (and for measuring what the compact form saves).
pub fn seal_as(
    event: &Event,
    paths: &[String],
    recipients: &[(String, EncryptionPublicKey)],
    key_period: Option<u64>,
    suite: Suite,
) -> Result<(Event, PrivateSection), PrivateError> {
    let (public, removed) = split_event(event, paths)?;
    let mut content_key = Zeroizing::new([0u8; CONTENT_KEY_BYTES]);
    OsRng.fill_bytes(content_key.as_mut());
    let mut fields = Vec::with_capacity(removed.len());
    let mut commitments = Vec::with_capacity(removed.len());
    for (path, value) in removed {
        let salt = match suite {
            Suite::Object => {
                let mut salt = Salt([0u8; 16]);
                OsRng.fill_bytes(&mut salt.0);
                salt
            }
            Suite::Compact => derived_salt(&content_key, &path),
        };
        commitments.push(FieldCommitment {
            path: path.clone(),
            commitment: commitment(&path, &value, &salt),
        });
        fields.push(Disclosure { path, value, salt });
    }
    let wraps = recipients
        .iter()
        .map(|(org, key)| wrap(suite, &content_key, org, key))
        .collect::<Result<Vec<_>, _>>()?;
    let mut section = PrivateSection {
        suite: suite.name().to_owned(),
        nonce: ContentNonce([0u8; 12]),
        ciphertext: Vec::new(),
        recipients: wraps,
        fields: commitments,
        key_period,
    };
    let plaintext = match suite {
        Suite::Object => {
            OsRng.fill_bytes(&mut section.nonce.0);
            serde_json::to_vec(&Body { fields })
        }
        Suite::Compact => serde_json::to_vec(&fields.iter().map(|f| &f.value).collect::<Vec<_>>()),
    }
    .map_err(|e| PrivateError::Restore(e.to_string()))?;
    let plaintext = Zeroizing::new(plaintext);
    let cipher = ChaCha20Poly1305::new(Key::from_slice(content_key.as_ref()));
    let binding = section.binding();
    section.ciphertext = cipher
        .encrypt(
            Nonce::from_slice(&section.nonce.0),
            Payload {
                msg: &plaintext,
                aad: binding.as_bytes(),
            },
        )
        .map_err(|_| PrivateError::DecryptFailed)?;
    section.check()?;
    Ok((public, section))
}

/// A compact section's salt for the field at `path`: pseudorandom to
/// anyone without the content key, and one salt does not give another.
fn derived_salt(content_key: &[u8; CONTENT_KEY_BYTES], path: &str) -> Salt {
    let path_len = u32::try_from(path.len()).unwrap_or(u32::MAX).to_le_bytes();
    let digest = hash_parts(
        Domain::PrivateSalt,
        &[content_key, &path_len, path.as_bytes()],
    );
    let mut salt = Salt([0u8; 16]);
    salt.0.copy_from_slice(&digest.as_bytes()[..16]);
    salt
}

/// The content key wrapped for `org`'s `key` in `suite`'s way.
fn wrap(
    suite: Suite,
    content_key: &[u8; CONTENT_KEY_BYTES],
    org: &str,
    key: &EncryptionPublicKey,
) -> Result<Recipient, PrivateError> {
    let bad = || PrivateError::BadRecipientKey(crate::api::excerpt(org));
    let public_key = <HpkeKem as hpke::Kem>::PublicKey::from_bytes(&key.0).map_err(|_| bad())?;
    let (enc, wrapped_key) = match suite {
        Suite::Object => hpke::single_shot_seal::<HpkeAead, HpkeKdf, HpkeKem>(
            &OpModeS::Base,
            &public_key,
            WRAP_INFO,
            content_key,
            org.as_bytes(),
        )
        .map_err(|_| bad())?,
        Suite::Compact => {
            let (enc, context) =
                hpke::setup_sender::<hpke::aead::ExportOnlyAead, HpkeKdf, HpkeKem>(
                    &OpModeS::Base,
                    &public_key,
                    WRAP_INFO_COMPACT,
                )
                .map_err(|_| bad())?;
            let mut mask = Zeroizing::new([0u8; CONTENT_KEY_BYTES]);
            context
                .export(org.as_bytes(), mask.as_mut())
                .map_err(|_| bad())?;
            (enc, xor(content_key, &mask).to_vec())
        }
    };
    let mut enc_bytes = [0u8; 32];
    enc_bytes.copy_from_slice(&enc.to_bytes());
    Ok(Recipient {
        org: org.to_owned(),
        key: *key,
        enc: EncryptionPublicKey(enc_bytes),
        wrapped_key,
    })
}

/// The content key from `recipient`'s wrap, opened with `key`.
fn unwrap(
    suite: Suite,
    recipient: &Recipient,
    key: &EncryptionSecretKey,
) -> Result<Zeroizing<[u8; CONTENT_KEY_BYTES]>, PrivateError> {
    let secret = <HpkeKem as hpke::Kem>::PrivateKey::from_bytes(key.secret.as_ref())
        .map_err(|_| PrivateError::BadSecretKey)?;
    let enc = <HpkeKem as hpke::Kem>::EncappedKey::from_bytes(&recipient.enc.0)
        .map_err(|_| PrivateError::UnwrapFailed)?;
    let mut content_key = Zeroizing::new([0u8; CONTENT_KEY_BYTES]);
    match suite {
        Suite::Object => {
            let opened = Zeroizing::new(
                hpke::single_shot_open::<HpkeAead, HpkeKdf, HpkeKem>(
                    &OpModeR::Base,
                    &secret,
                    &enc,
                    WRAP_INFO,
                    &recipient.wrapped_key,
                    recipient.org.as_bytes(),
                )
                .map_err(|_| PrivateError::UnwrapFailed)?,
            );
            if opened.len() != CONTENT_KEY_BYTES {
                return Err(PrivateError::UnwrapFailed);
            }
            content_key.copy_from_slice(&opened);
        }
        Suite::Compact => {
            let wrapped: &[u8; CONTENT_KEY_BYTES] = recipient
                .wrapped_key
                .as_slice()
                .try_into()
                .map_err(|_| PrivateError::UnwrapFailed)?;
            let context = hpke::setup_receiver::<hpke::aead::ExportOnlyAead, HpkeKdf, HpkeKem>(
                &OpModeR::Base,
                &secret,
                &enc,
                WRAP_INFO_COMPACT,
            )
            .map_err(|_| PrivateError::UnwrapFailed)?;
            let mut mask = Zeroizing::new([0u8; CONTENT_KEY_BYTES]);
            context
                .export(recipient.org.as_bytes(), mask.as_mut())
                .map_err(|_| PrivateError::UnwrapFailed)?;
            *content_key = xor(wrapped, &mask);
        }
    }
    Ok(content_key)
}

fn xor(a: &[u8; CONTENT_KEY_BYTES], b: &[u8; CONTENT_KEY_BYTES]) -> [u8; CONTENT_KEY_BYTES] {
    std::array::from_fn(|i| a[i] ^ b[i])
}

/// The event with opened private fields put back where they were.
pub fn reveal(public: &Event, fields: &[Disclosure]) -> Result<Event, PrivateError> {
    let mut json =
        serde_json::to_value(public).map_err(|e| PrivateError::Restore(e.to_string()))?;
    for field in fields {
        let (parent, member) = split(&field.path);
        let object = json
            .pointer_mut(parent)
            .and_then(Value::as_object_mut)
            .ok_or_else(|| PrivateError::NoSuchField(crate::api::excerpt(&field.path)))?;
        if object.contains_key(member) {
            return Err(PrivateError::FieldNotRemoved(crate::api::excerpt(
                &field.path,
            )));
        }
        object.insert(member.to_owned(), field.value.clone());
    }
    serde_json::from_value(json).map_err(|e| PrivateError::Restore(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event() -> Event {
        serde_json::from_value(serde_json::json!({
            "type": "ObjectEvent",
            "eventTime": "2026-01-02T03:04:05Z",
            "eventTimeZoneOffset": "+00:00",
            "action": "OBSERVE",
            "epcList": ["urn:epc:id:sgtin:4012345.011111.1001"],
            "bizStep": "inspecting",
            "bizTransactionList": [{"type": "po", "bizTransaction": "urn:epcglobal:cbv:bt:4012345000009:PO-42"}],
            "sensorElementList": [{"sensorReport": [{"type": "Temperature", "value": 71.5, "uom": "CEL"}]}]
        }))
        .unwrap()
    }

    fn paths() -> Vec<String> {
        vec!["/sensorElementList".into(), "/bizTransactionList".into()]
    }

    #[test]
    fn sealed_fields_open_for_each_recipient_and_reveal_the_event() {
        // Goal: every recipient opens the same fields; the public event lacks
        // them; revealing gives back the original event.
        let a = EncryptionSecretKey::generate();
        let b = EncryptionSecretKey::generate();
        let recipients = vec![
            ("acme".to_owned(), a.public_key()),
            ("agency".to_owned(), b.public_key()),
        ];
        let (public, section) = seal(&event(), &paths(), &recipients).unwrap();
        assert!(public.sensor_element_list.is_empty());
        assert!(public.biz_transaction_list.is_empty());
        let opened_a = section.open("acme", &a).unwrap();
        let opened_b = section.open("agency", &b).unwrap();
        assert_eq!(opened_a, opened_b);
        assert_eq!(reveal(&public, &opened_a).unwrap(), event());
        for d in &opened_a {
            section.verify_disclosure(d).unwrap();
        }
    }

    #[test]
    fn an_outsider_cannot_open_and_a_wrong_key_fails() {
        // A compact wrap carries no tag of its own: a wrong key shows as
        // the content AEAD failing.
        for (suite, wrong_key) in [
            (Suite::Object, PrivateError::UnwrapFailed),
            (Suite::Compact, PrivateError::DecryptFailed),
        ] {
            let a = EncryptionSecretKey::generate();
            let outsider = EncryptionSecretKey::generate();
            let (_, section) = seal_as(
                &event(),
                &paths(),
                &[("acme".into(), a.public_key())],
                None,
                suite,
            )
            .unwrap();
            assert_eq!(
                section.open("rival", &outsider),
                Err(PrivateError::NotARecipient("rival".into()))
            );
            // Claiming to be acme with another key finds no wrap to that key.
            assert!(matches!(
                section.open("acme", &outsider),
                Err(PrivateError::NotARecipient(_))
            ));
            // A wrap re-labelled with the outsider's key does not open.
            let mut forged = section.clone();
            forged.recipients[0].key = outsider.public_key();
            assert_eq!(forged.open("acme", &outsider), Err(wrong_key), "{suite:?}");
        }
    }

    #[test]
    fn both_forms_open_alike_and_the_compact_one_is_smaller() {
        // Goal: a version 2 (object) and a version 3 (compact) section of
        // the same event open to the same fields for every recipient, each
        // field's disclosure verifies against its own section, each form
        // reads back from its JSON as itself, and the compact JSON is the
        // smaller.
        let keys: Vec<EncryptionSecretKey> =
            (0..3).map(|_| EncryptionSecretKey::generate()).collect();
        let recipients: Vec<(String, EncryptionPublicKey)> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| (format!("org-{i}"), k.public_key()))
            .collect();
        let mut sizes = Vec::new();
        let mut opened = Vec::new();
        for suite in [Suite::Object, Suite::Compact] {
            let (public, section) =
                seal_as(&event(), &paths(), &recipients, Some(7), suite).unwrap();
            assert_eq!(section.suite_kind(), Ok(suite));
            let json = serde_json::to_vec(&section).unwrap();
            assert_eq!(json.first() == Some(&b'"'), suite == Suite::Compact);
            let back: PrivateSection = serde_json::from_slice(&json).unwrap();
            assert_eq!(back, section);
            for ((org, _), key) in recipients.iter().zip(&keys) {
                let fields = back.open(org, key).unwrap();
                assert_eq!(reveal(&public, &fields).unwrap(), event());
                for d in &fields {
                    back.verify_disclosure(d).unwrap();
                }
                opened.push(
                    fields
                        .into_iter()
                        .map(|d| (d.path, d.value))
                        .collect::<Vec<_>>(),
                );
            }
            sizes.push(json.len());
        }
        assert!(opened.windows(2).all(|w| w[0] == w[1]));
        assert!(
            sizes[1] * 10 < sizes[0] * 7,
            "object {} vs compact {} bytes",
            sizes[0],
            sizes[1]
        );
    }

    #[test]
    fn a_statement_version_names_its_sections_form() {
        // Goal: version 2 carries the object form and version 3 the
        // compact one; either form under the other version is refused by
        // the decoder, so one record has one reading.
        use crate::statement::{STATEMENT_VERSION_COMPACT, STATEMENT_VERSION_PRIVATE, Statement};
        let a = EncryptionSecretKey::generate();
        let signer = crate::SigningKey::from_seed(&[3; 32]);
        for (suite, version, other) in [
            (
                Suite::Object,
                STATEMENT_VERSION_PRIVATE,
                STATEMENT_VERSION_COMPACT,
            ),
            (
                Suite::Compact,
                STATEMENT_VERSION_COMPACT,
                STATEMENT_VERSION_PRIVATE,
            ),
        ] {
            let (public, section) = seal_as(
                &event(),
                &paths(),
                &[("acme".into(), a.public_key())],
                None,
                suite,
            )
            .unwrap();
            let statement = Statement {
                version: Statement::version_for(&Some(section.clone())),
                chain_id: crate::Digest([1; 32]),
                org: "acme".into(),
                key: signer.public_key(),
                issued_at_ms: 1,
                nonce: "n".into(),
                event: public,
                private: Some(section),
            };
            assert_eq!(statement.version, version);
            let back = Statement::from_payload(&statement.to_payload()).unwrap();
            assert_eq!(back, statement);
            let mislabelled = Statement {
                version: other,
                ..statement
            };
            assert!(Statement::from_payload(&mislabelled.to_payload()).is_err());
        }
    }

    #[test]
    fn a_damaged_compact_section_is_a_decode_error() {
        let a = EncryptionSecretKey::generate();
        let (_, section) = seal(&event(), &paths(), &[("acme".into(), a.public_key())]).unwrap();
        let json = serde_json::to_string(&section).unwrap();
        let inner = json.trim_matches('"');
        let bytes = STANDARD.decode(inner).unwrap();
        for bad in [
            "\"not base64!\"".to_owned(),
            format!("\"{}\"", STANDARD.encode(&bytes[..bytes.len() - 1])),
            format!("\"{}\"", STANDARD.encode([&bytes[..], &[0u8][..]].concat())),
            "7".to_owned(),
        ] {
            assert!(
                serde_json::from_str::<PrivateSection>(&bad).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn after_a_rotation_old_records_open_with_the_retired_key() {
        // Goal: an org rotates its key; a record wrapped to the old key
        // opens with a keyring holding both, a new record with the new key;
        // a keyring without the old key names the key that is missing.
        let old = EncryptionSecretKey::generate();
        let new = EncryptionSecretKey::generate();
        let (_, before) = seal(&event(), &paths(), &[("acme".into(), old.public_key())]).unwrap();
        let (_, after) = seal(&event(), &paths(), &[("acme".into(), new.public_key())]).unwrap();
        let ring = [
            EncryptionSecretKey::from_bytes(new.secret_bytes()).unwrap(),
            EncryptionSecretKey::from_bytes(old.secret_bytes()).unwrap(),
        ];
        assert_eq!(
            before.open_with("acme", &ring).unwrap(),
            before.open("acme", &old).unwrap()
        );
        after.open_with("acme", &ring).unwrap();
        assert_eq!(
            before.open_with("acme", &ring[..1]),
            Err(PrivateError::NoKeyFor(old.public_key()))
        );
        assert!(matches!(
            before.open_with("rival", &ring),
            Err(PrivateError::NotARecipient(_))
        ));
    }

    #[test]
    fn the_key_period_is_bound_to_the_ciphertext() {
        // Goal: a section sealed for a key period opens with that period's
        // key and names the period; relabelling it as another period (or as
        // none) makes decryption fail, so no node can be fooled into
        // treating shredded data as live or the reverse.
        let period_key = EncryptionSecretKey::generate();
        let (_, section) = seal_for_period(
            &event(),
            &paths(),
            &[("acme".into(), period_key.public_key())],
            Some(58),
        )
        .unwrap();
        assert_eq!(section.key_period, Some(58));
        section.open("acme", &period_key).unwrap();
        for other in [Some(59), None] {
            let mut relabelled = section.clone();
            relabelled.key_period = other;
            assert_eq!(
                relabelled.open("acme", &period_key),
                Err(PrivateError::DecryptFailed)
            );
        }
        // The object form names the period only when there is one.
        let recipients = [("acme".to_owned(), period_key.public_key())];
        let (_, object) =
            seal_as(&event(), &paths(), &recipients, Some(58), Suite::Object).unwrap();
        let json = serde_json::to_value(&object).unwrap();
        assert_eq!(json["keyPeriod"], 58);
        let (_, plain) = seal_as(&event(), &paths(), &recipients, None, Suite::Object).unwrap();
        assert!(
            serde_json::to_value(&plain)
                .unwrap()
                .get("keyPeriod")
                .is_none()
        );
    }

    #[test]
    fn a_compact_suite_in_the_object_form_is_refused() {
        // Found by the fuzz target `private_section`: read as an object, a
        // compact section kept a nonce and re-encoded without it.
        let a = EncryptionSecretKey::generate();
        let recipients = [("acme".to_owned(), a.public_key())];
        let (_, object) = seal_as(&event(), &paths(), &recipients, None, Suite::Object).unwrap();
        let mut json = serde_json::to_value(&object).unwrap();
        serde_json::from_value::<PrivateSection>(json.clone()).unwrap();
        json["suite"] = SUITE_COMPACT.into();
        let refused = serde_json::from_value::<PrivateSection>(json).unwrap_err();
        assert!(
            refused
                .to_string()
                .contains("one base64 string, not an object"),
            "{refused}"
        );
    }

    #[test]
    fn an_edited_disclosure_fails() {
        let a = EncryptionSecretKey::generate();
        let (_, section) = seal(&event(), &paths(), &[("acme".into(), a.public_key())]).unwrap();
        let mut d = section.open("acme", &a).unwrap().remove(0);
        section.verify_disclosure(&d).unwrap();
        d.value = serde_json::json!([{"sensorReport": [{"type": "Temperature", "value": 70.0, "uom": "CEL"}]}]);
        assert!(matches!(
            section.verify_disclosure(&d),
            Err(PrivateError::DisclosureMismatch(_))
        ));
    }

    #[test]
    fn canonical_json_ignores_member_order() {
        let a: Value = serde_json::from_str(r#"{"b":1,"a":{"y":[1,2],"x":"s"}}"#).unwrap();
        let b: Value = serde_json::from_str(r#"{"a":{"x":"s","y":[1,2]},"b":1}"#).unwrap();
        assert_eq!(canonical_json(&a), canonical_json(&b));
        assert_eq!(
            canonical_json(&a),
            br#"{"a":{"x":"s","y":[1,2]},"b":1}"#.to_vec()
        );
    }

    #[test]
    fn malformed_sections_get_specific_errors() {
        let a = EncryptionSecretKey::generate();
        let (_, good) = seal(&event(), &paths(), &[("acme".into(), a.public_key())]).unwrap();
        let edit = |f: &dyn Fn(&mut PrivateSection)| {
            let mut s = good.clone();
            f(&mut s);
            s.check()
        };
        assert!(matches!(
            edit(&|s| s.suite = "x".into()),
            Err(PrivateError::UnknownSuite(_))
        ));
        assert!(matches!(
            edit(&|s| s.fields.clear()),
            Err(PrivateError::FieldCount { .. })
        ));
        assert!(matches!(
            edit(&|s| s.recipients.clear()),
            Err(PrivateError::RecipientCount { .. })
        ));
        assert!(matches!(
            edit(&|s| s.ciphertext.truncate(3)),
            Err(PrivateError::CiphertextLength { .. })
        ));
        assert!(matches!(
            edit(&|s| s.recipients[0].wrapped_key.push(0)),
            Err(PrivateError::WrappedKeyLength { .. })
        ));
        assert!(matches!(
            edit(&|s| s.recipients.push(s.recipients[0].clone())),
            Err(PrivateError::DuplicateRecipient(_))
        ));
        assert!(matches!(
            edit(&|s| s.fields[1].path = "/sensorElementList/x".into()),
            Err(PrivateError::OverlappingPaths { .. })
        ));
        for bad in ["", "a", "/", "/a//b", "/epcList/0", "/type", "/a~1b"] {
            assert!(
                matches!(
                    edit(&|s| s.fields[0].path = bad.into()),
                    Err(PrivateError::BadPath { .. })
                ),
                "{bad}"
            );
        }
        assert!(matches!(
            seal(
                &event(),
                &["/nothingHere".into()],
                &[("acme".into(), a.public_key())]
            ),
            Err(PrivateError::NoSuchField(_))
        ));
    }

    #[test]
    fn weak_recipient_keys_are_refused() {
        assert!(EncryptionPublicKey([0u8; 32]).is_weak());
        assert!(!EncryptionSecretKey::generate().public_key().is_weak());
    }

    #[test]
    fn secret_keys_round_trip_and_never_print() {
        let k = EncryptionSecretKey::generate();
        let back = EncryptionSecretKey::from_bytes(k.secret_bytes()).unwrap();
        assert_eq!(back.public_key(), k.public_key());
        let shown = format!("{k:?}");
        assert!(!shown.contains(&hex::encode(k.secret_bytes())));
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn event_with(po: &str, reading: f64) -> Event {
            serde_json::from_value(serde_json::json!({
                "type": "ObjectEvent",
                "eventTime": "2026-01-02T03:04:05Z",
                "eventTimeZoneOffset": "+00:00",
                "action": "OBSERVE",
                "epcList": ["urn:epc:id:sgtin:4012345.011111.1001"],
                "bizTransactionList": [{"type": "po", "bizTransaction": po}],
                "sensorElementList": [{"sensorReport": [{"type": "Temperature", "value": reading}]}]
            }))
            .unwrap()
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(24))]

            /// Goal: seal then open gives back exactly the event for any
            /// values, and a flipped bit anywhere in the ciphertext, a wrap
            /// or a commitment makes opening fail (never a wrong plaintext).
            #[test]
            fn round_trip_and_tamper(
                compact in any::<bool>(),
                po in "[a-zA-Z0-9:._-]{1,40}",
                reading in -1000.0f64..1000.0,
                which in 0usize..3,
                at in any::<prop::sample::Index>(),
                bit in 0u8..8,
            ) {
                let key = EncryptionSecretKey::generate();
                let e = event_with(&po, reading);
                let suite = if compact { Suite::Compact } else { Suite::Object };
                let (public, section) =
                    seal_as(&e, &paths(), &[("acme".into(), key.public_key())], None, suite).unwrap();
                let json = serde_json::to_vec(&section).unwrap();
                let decoded: PrivateSection = serde_json::from_slice(&json).unwrap();
                prop_assert_eq!(&decoded, &section);
                let opened = decoded.open("acme", &key).unwrap();
                prop_assert_eq!(reveal(&public, &opened).unwrap(), e);

                let mut tampered = section.clone();
                match which {
                    0 => {
                        let i = at.index(tampered.ciphertext.len());
                        tampered.ciphertext[i] ^= 1 << bit;
                    }
                    1 => {
                        let i = at.index(tampered.recipients[0].wrapped_key.len());
                        tampered.recipients[0].wrapped_key[i] ^= 1 << bit;
                    }
                    _ => {
                        let f = at.index(tampered.fields.len());
                        let mut bytes = *tampered.fields[f].commitment.as_bytes();
                        bytes[0] ^= 1 << bit;
                        tampered.fields[f].commitment = Digest::from_hex(&hex::encode(bytes)).unwrap();
                    }
                }
                prop_assert!(tampered.open("acme", &key).is_err());
            }
        }
    }
}
