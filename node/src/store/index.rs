//! The sled side of the store: attestation records and the indexes over them,
//! all derived from the block log and written in one atomic batch per block.
//!
//! One sled tree, keys prefixed by kind (big-endian integers so keys sort in
//! chain order):
//! ```text
//! a | height | idx / 16                       -> 16 × zstd(postcard(Record))  (id, meta, envelope; `store::grouped`)
//! i | canonical identifier | 0 | height       -> idx (u32 BE) ...  (`store::listing`)
//! o | org id               | 0 | height       -> idx (u32 BE) ...
//! b | height                                  -> postcard(BlockMeta)
//! m | "applied"                               -> height (u64 BE)
//! m | "format"                                -> layout version (u32 BE)
//! m | "dictionary" | id (u32 BE)              -> the `a` records' zstd dictionary
//! e | signer | view | kind                    -> postcard(StoredEvidence)
//! ```
//! Records are keyed by chain position, so a block's records are appended
//! at the end of the tree instead of landing in random leaves (sled copies
//! and rewrites a leaf for every insert into it, and its log keeps the old
//! copies until it cleans the segment), and 16 positions share a key
//! (`store::grouped`: sled keeps metadata in memory for every page). A listing holds one key per name
//! and block whose value packs the indexes of the block's events that name
//! it (`store::listing`); a position is the record's key. An id is found
//! through the block log's committed-id filter and the `b` record of the
//! block it names (`StoreReader::position`), not a key of its own: ids are
//! hashes, and a key per id landed in a random leaf. The chain-order
//! listing of everything is the `a` keyspace itself. An `a` record is compressed on its own (a zstd frame),
//! decompressed in microseconds on a read; after the store's first
//! attestations, with a dictionary trained from them (`store::dictionary`),
//! which takes a record from about a third of its statement's bytes to a
//! tenth. It does not repeat the event's identifiers, which the `i`
//! listings and the statement already hold.

use lotline_core::attestation::{AttestationId, Envelope};
use lotline_core::block::Header;
use lotline_core::certificate::Finality;
use lotline_core::codec::{self, DecodeError};
use lotline_core::limits;
use lotline_core::lineage::{Listed, Names};
use lotline_core::statement::Statement;
use serde::{Deserialize, Serialize};

use super::compression::{self, Dictionary};

pub const PREFIX_ATTESTATION: u8 = b'a';
pub const PREFIX_IDENTIFIER: u8 = b'i';
pub const PREFIX_ORG: u8 = b'o';
pub const PREFIX_BLOCK: u8 = b'b';
pub const KEY_APPLIED: &[u8] = b"mapplied";
/// The layout of everything in sled (key forms and record encodings). A
/// store written under another layout is rebuilt from the block log at open;
/// one without the key is layout 1.
pub const KEY_FORMAT: &[u8] = b"mformat";
/// Names the org keys the index was written with (`store::Opener`).
pub const KEY_OPENER: &[u8] = b"mopener";
/// 4: `a` records are compressed and carry no identifier list.
/// 5: `w`, repeated captures by CBV 2.0 event hash and org (`store::events`).
/// 6: an event's edges in one `j` record and its custody in one `k`
/// record, found through `i` for serials and logistic units (`store::lineage`).
/// 7: a repeated capture committed after the first gets its `w` entry only
/// (no `v`, `s`, `t`, lineage keys; `store::events`, "Repeats at
/// application").
/// 8: `u`, one key per measured event of each GTIN's characteristic, the
/// control charts' series (`quality::series`).
/// 9: a `u` point says whether it came from a record's private section
/// (`store::Opener`).
/// 10: `u` packs a series' points in chunks of up to 2,048 per key
/// (`quality::chunk`), keyed by the chunk's first point.
/// 11: `l`, each lot's serialised units, and `d`, each container's and
/// destination's units with the packing events that put them there
/// (`quality::exposure`): root cause reads them instead of walking.
/// 12: a lineage origin names its event's `readPoint` (root cause ranks
/// process steps by where they ran).
/// 13: listings (`i`, `o`, `v`, `s`, `t`, `w`) hold one key per name and
/// block, the block's indexes packed in the value (`store::listing`),
/// instead of one key per name and event.
/// 14: the sealed points of period-keyed records move from `v` (shared
/// with the eventID listing) to a keyspace of their own, `z`.
/// 15: `f`, the units each carrier carried (`quality::exposure`): root
/// cause ranks carriers.
/// 16: an event's lineage origin, custody statement and edges are one `y`
/// record (`store::lineage`) instead of three keys (`y`, `k`, `j`).
/// 17: a lot's `l` units record carries its serialising event's origin
/// (`quality::exposure`): a population is read without the events' `y`
/// records.
/// 18: the custody statement and edges inside a `y` record, and each `g`
/// group, are one zstd frame when that is smaller (`store::lineage`,
/// `Packed`).
/// 19: `a` records after a store's first 1,024 attestations are compressed
/// with a zstd dictionary trained from those (`store::dictionary`), kept
/// under `m | "dictionary" | id`.
/// 20: the eventID (`v`) and repeated-capture (`w`) listings are keyed by
/// 16 bytes of their name's hash ([`digest_name`]), not the name; no `n`
/// key per attestation (`StoreReader::position`).
/// 21: `v` and `w` hold one sorted run of (name digest, index) per block,
/// found through an in-memory filter (`store::hashed`), instead of a key
/// per name and block.
/// 22: the `a` records and the lineage event records `y` are packed 16
/// positions to a key (`store::grouped`).
/// 23: the listings `i`, `o`, `s`, `t` are packed one key per bucket and
/// block, a bucket being a name less the last 3 bytes of its last segment
/// (`store::listing`), instead of one key per name and block.
/// 24: a node's own custody records `h` are one key per node and block
/// (`store::lineage`, `CustodyPending`), instead of one per event.
pub const FORMAT: u32 = 24;
pub const PREFIX_EVIDENCE: u8 = b'e';
// Prefixes reserved for the derived indexes: the EPCIS query index
// (`store::events`) uses `v` (eventID), `s` (bizStep), `t` (event type),
// `w` (repeated captures, by CBV 2.0 event hash and org; format 5),
// (`p`, the chain-position listing of format 2, is unused); the lineage graph (`store::lineage`) uses `y`
// (an event's origin, custody and edges; `j` and `k` are unused since
// format 16), `g` (edges of unlisted nodes), `h` (custody), `q` (quality facts),
// `r` (recall orders), `x` (error declarations); root cause's exposure
// index (`quality::exposure`) uses `l` (a lot's units), `d` (a
// container's or destination's units) and `f` (a carrier's units).

/// The value of a key that says everything in its key.
pub const EMPTY: &[u8] = &[];

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

/// What the indexes need to know about an attestation, derived from its
/// statement in one place, [`crate::store::StoreReader`]'s block apply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttestationMeta {
    pub org: String,
    pub event_type: String,
    pub event_time: String,
    pub biz_step: Option<String>,
    /// The canonical identifiers the event is listed under, each with its
    /// kind (which the lineage and exposure writers ask of its nodes).
    pub listed: Listed,
}

impl AttestationMeta {
    pub fn of(statement: &Statement) -> AttestationMeta {
        let names = Names::of(&statement.event);
        AttestationMeta::of_named(statement, names)
    }

    /// [`AttestationMeta::of`] with the event's identifiers parsed already.
    pub fn of_named(statement: &Statement, names: Names<'_>) -> AttestationMeta {
        let event = &statement.event;
        AttestationMeta {
            org: statement.org.clone(),
            event_type: event.event_type.as_str().to_owned(),
            event_time: event.event_time.clone(),
            biz_step: event.biz_step_short(),
            listed: names.into_listed(),
        }
    }

    /// The meta of a committed payload that does not parse. It always parsed
    /// at admission; if it does not now, the code changed incompatibly, and
    /// the record is kept and indexed under no org and no event.
    pub fn unparsed() -> AttestationMeta {
        AttestationMeta {
            org: String::new(),
            event_type: String::new(),
            event_time: String::new(),
            biz_step: None,
            listed: Listed::default(),
        }
    }
}

impl AttestationMeta {
    /// What the attestation record keeps: everything but the identifiers.
    pub fn record_meta(&self) -> RecordMeta {
        RecordMeta {
            org: self.org.clone(),
            event_type: self.event_type.clone(),
            event_time: self.event_time.clone(),
            biz_step: self.biz_step.clone(),
        }
    }
}

/// The summary an attestation record keeps next to its envelope, so that
/// listings and visibility checks need not parse the statement.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordMeta {
    pub org: String,
    pub event_type: String,
    pub event_time: String,
    pub biz_step: Option<String>,
}

/// A committed attestation as readers see it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredAttestation {
    pub height: u64,
    pub index: u32,
    pub meta: RecordMeta,
    pub envelope: Envelope,
}

/// The value of an `a` record: its position is its key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub id: AttestationId,
    pub meta: RecordMeta,
    pub envelope: Envelope,
}

/// An `a` record decodes to at most this many bytes: an envelope at its
/// limit and its summary, which repeats a few of the statement's fields.
const RECORD_BYTES_MAX: usize = 2 * limits::ATTESTATION_BYTES_MAX;

/// zstd level of `a` records: the fastest, as records are compressed inside
/// the commit (level 3 gained a few percent for twice the time).
pub(super) const RECORD_COMPRESSION_LEVEL: i32 = 1;

impl Record {
    pub fn at(self, at: Position) -> (AttestationId, StoredAttestation) {
        let stored = StoredAttestation {
            height: at.height,
            index: at.index,
            meta: self.meta,
            envelope: self.envelope,
        };
        (self.id, stored)
    }

    /// The record's encoding before compression: what a store's record
    /// dictionary is trained on (`store::dictionary`).
    pub fn encode(&self) -> Vec<u8> {
        encode(self)
    }

    /// `encoding` ([`Record::encode`]) as sled keeps it: one zstd frame,
    /// with the store's record dictionary once it has one.
    pub fn stored(encoding: &[u8], dictionary: Option<&Dictionary>) -> Vec<u8> {
        match dictionary {
            Some(dictionary) => compression::compress_with(encoding, dictionary),
            None => compression::compress(encoding, RECORD_COMPRESSION_LEVEL),
        }
    }

    /// Decodes what [`Record::stored`] wrote; `dictionary` is the one the
    /// frame names (`store::dictionary::of_frame`), if any.
    pub fn from_stored(
        bytes: &[u8],
        dictionary: Option<&Dictionary>,
    ) -> Result<Record, DecodeError> {
        let what = "attestation";
        let bytes = compression::decompress_with(what, bytes, RECORD_BYTES_MAX, dictionary)?;
        codec::from_bytes(what, &bytes, RECORD_BYTES_MAX)
    }
}

/// A block's header, finality and ids, enough for receipts and block views
/// without reading the block log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockMeta {
    pub header: Header,
    pub finality: Finality,
    pub ids: Vec<AttestationId>,
}

impl BlockMeta {
    /// Where `id` sits in the block whose `b` record is `bytes`, found
    /// without decoding the ids ([`crate::store::StoreReader::position`]):
    /// postcard writes the header, the finality, then the ids as a length
    /// and 32 bytes each, so the ids are compared where they lie. Decoding
    /// them one by one was most of an id lookup (about 50 µs for a block of
    /// 1,000).
    pub fn index_of(bytes: &[u8], id: &AttestationId) -> Result<Option<u32>, DecodeError> {
        let malformed = |reason: String| DecodeError::Malformed {
            what: "block",
            reason,
        };
        let postcard = |e: postcard::Error| malformed(e.to_string());
        let (_, rest) = postcard::take_from_bytes::<Header>(bytes).map_err(postcard)?;
        let (_, rest) = postcard::take_from_bytes::<Finality>(rest).map_err(postcard)?;
        let (count, ids) = postcard::take_from_bytes::<u64>(rest).map_err(postcard)?;
        if count.checked_mul(ID_BYTES as u64) != Some(ids.len() as u64) {
            return Err(malformed(format!(
                "{count} ids in {} bytes of a block record",
                ids.len()
            )));
        }
        Ok(ids
            .chunks_exact(ID_BYTES)
            .position(|committed| committed == id.0.0)
            .map(|index| u32::try_from(index).unwrap_or(u32::MAX)))
    }
}

/// Bytes of an attestation id as postcard writes it (a 32-byte tuple).
const ID_BYTES: usize = 32;

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

/// `prefix | name | 0` — the start of a listing (of a name, or of a
/// `store::listing` bucket, which may end inside a character).
pub fn listing_prefix(prefix: u8, name: impl AsRef<[u8]>) -> Vec<u8> {
    let name = name.as_ref();
    // Room for the height a block key appends.
    let mut key = Vec::with_capacity(name.len() + 2 + 8);
    listing_prefix_into(&mut key, prefix, name);
    key
}

/// [`listing_prefix`] written over `key`, whose allocation is reused.
pub fn listing_prefix_into(key: &mut Vec<u8>, prefix: u8, name: &[u8]) {
    key.clear();
    key.push(prefix);
    key.extend_from_slice(name);
    key.push(0);
}

/// The digest an eventID (`v`) or repeated-capture (`w`) listing entry is
/// kept under (formats 20 and later; `store::hashed`): the first 16 bytes
/// of the name's BLAKE3 hash.
///
/// Why: those listings are only ever looked up whole, by a name the reader
/// holds (an `EQ_eventID` query, the capture being checked), never by a
/// prefix or in name order, so 16 bytes of a hash find them as well as the
/// name, in a third of the length. Two names sharing a digest take about
/// 2^64 names chosen together (a birthday collision, among one's own
/// events); matching a name someone else committed takes about 2^128. An
/// EPCIS query also checks each event it lists against its parameters.
pub fn digest_name(name: &str) -> [u8; 16] {
    let hash = blake3::hash(name.as_bytes());
    let mut digest = [0u8; 16];
    digest.copy_from_slice(&hash.as_bytes()[..16]);
    digest
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
