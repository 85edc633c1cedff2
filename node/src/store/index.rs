//! The sled side of the store: attestation records and the indexes over them,
//! all derived from the block log and written in one atomic batch per block.
//!
//! One sled tree, keys prefixed by kind (big-endian integers so keys sort in
//! chain order):
//! ```text
//! a | id(32)                                  -> postcard(StoredAttestation)
//! i | canonical identifier | 0 | height | idx -> id
//! o | org id               | 0 | height | idx -> id
//! b | height                                  -> postcard(BlockMeta)
//! m | "applied"                               -> height (u64 BE)
//! m | "format"                                -> layout version (u32 BE)
//! e | signer | view | kind                    -> postcard(StoredEvidence)
//! ```

use lotline_core::attestation::{AttestationId, Envelope};
use lotline_core::block::Header;
use lotline_core::certificate::Finality;
use lotline_core::codec::{self, DecodeError};
use lotline_core::hash::Digest;
use lotline_core::statement::Statement;
use serde::{Deserialize, Serialize};

pub const PREFIX_ATTESTATION: u8 = b'a';
pub const PREFIX_IDENTIFIER: u8 = b'i';
pub const PREFIX_ORG: u8 = b'o';
pub const PREFIX_BLOCK: u8 = b'b';
pub const KEY_APPLIED: &[u8] = b"mapplied";
/// The layout of everything in sled (key forms and record encodings). A
/// store written under another layout is rebuilt from the block log at open;
/// one without the key is layout 1.
pub const KEY_FORMAT: &[u8] = b"mformat";
pub const FORMAT: u32 = 2;
pub const PREFIX_EVIDENCE: u8 = b'e';
// Prefixes reserved for the derived indexes: the EPCIS query index
// (`store::events`) uses `v` (eventID), `s` (bizStep), `t` (event type),
// `p` (chain position); the lineage graph (`store::lineage`) uses `y`
// (who stated an event), `g` (edges), `h` (custody), `q` (quality facts),
// `r` (recall orders), `x` (error declarations).

/// Where an attestation sits in the chain: block height and leaf index.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Position {
    pub height: u64,
    pub index: u32,
}

/// `e | signer | view | kind`: one entry per equivocation.
pub fn evidence_key(signer: u16, view: u64, kind: u8) -> [u8; 12] {
    let mut key = [0u8; 12];
    key[0] = PREFIX_EVIDENCE;
    key[1..3].copy_from_slice(&signer.to_be_bytes());
    key[3..11].copy_from_slice(&view.to_be_bytes());
    key[11] = kind;
    key
}

/// What the indexes need to know about an attestation, computed once from its
/// statement at admission (and again only when rebuilding from the log).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttestationMeta {
    pub org: String,
    pub event_type: String,
    pub event_time: String,
    pub biz_step: Option<String>,
    /// Canonical identifiers the event is about.
    pub identifiers: Vec<String>,
}

impl AttestationMeta {
    pub fn of(statement: &Statement) -> AttestationMeta {
        let event = &statement.event;
        AttestationMeta {
            org: statement.org.clone(),
            event_type: event.event_type.as_str().to_owned(),
            event_time: event.event_time.clone(),
            biz_step: event.biz_step_short(),
            identifiers: event.canonical_identifiers(),
        }
    }

    /// Meta of a committed envelope. A committed payload always parsed at
    /// admission; if it does not parse now, the code changed incompatibly and
    /// the record is indexed under its org only.
    pub fn of_committed(envelope: &Envelope) -> AttestationMeta {
        match Statement::from_payload(&envelope.payload) {
            Ok(statement) => AttestationMeta::of(&statement),
            Err(_) => AttestationMeta {
                org: String::new(),
                event_type: String::new(),
                event_time: String::new(),
                biz_step: None,
                identifiers: Vec::new(),
            },
        }
    }
}

/// An attestation as kept in sled.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredAttestation {
    pub height: u64,
    pub index: u32,
    pub meta: AttestationMeta,
    pub envelope: Envelope,
}

/// A block's header, finality and ids, enough for receipts and block views
/// without reading the block log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockMeta {
    pub header: Header,
    pub finality: Finality,
    pub ids: Vec<AttestationId>,
}

pub fn attestation_key(id: &AttestationId) -> [u8; 33] {
    let mut key = [0u8; 33];
    key[0] = PREFIX_ATTESTATION;
    key[1..].copy_from_slice(id.0.as_bytes());
    key
}

pub fn block_key(height: u64) -> [u8; 9] {
    let mut key = [0u8; 9];
    key[0] = PREFIX_BLOCK;
    key[1..].copy_from_slice(&height.to_be_bytes());
    key
}

/// `prefix | height | index`: a key per chain position, in chain order.
pub fn position_key(prefix: u8, at: Position) -> [u8; 13] {
    let mut key = [0u8; 13];
    key[0] = prefix;
    key[1..9].copy_from_slice(&at.height.to_be_bytes());
    key[9..].copy_from_slice(&at.index.to_be_bytes());
    key
}

/// `prefix | name | 0` — the start of a listing.
pub fn listing_prefix(prefix: u8, name: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(name.len() + 2);
    key.push(prefix);
    key.extend_from_slice(name.as_bytes());
    key.push(0);
    key
}

/// `prefix | name | 0 | height | index`.
pub fn listing_key(prefix: u8, name: &str, height: u64, index: u32) -> Vec<u8> {
    let mut key = listing_prefix(prefix, name);
    key.extend_from_slice(&height.to_be_bytes());
    key.extend_from_slice(&index.to_be_bytes());
    key
}

/// The `(height, index)` position encoded at the end of a listing key.
pub fn listing_position(key: &[u8]) -> Option<(u64, u32)> {
    let n = key.len();
    if n < 12 {
        return None;
    }
    let height = u64::from_be_bytes(key[n - 12..n - 4].try_into().ok()?);
    let index = u32::from_be_bytes(key[n - 4..].try_into().ok()?);
    Some((height, index))
}

pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    codec::to_bytes(value)
}

pub fn decode<'a, T: Deserialize<'a> + Serialize>(
    what: &'static str,
    bytes: &'a [u8],
) -> Result<T, DecodeError> {
    codec::from_bytes(what, bytes, usize::MAX)
}

pub fn id_from_value(bytes: &[u8]) -> Option<AttestationId> {
    let arr: [u8; 32] = bytes.try_into().ok()?;
    Some(AttestationId(Digest(arr)))
}
