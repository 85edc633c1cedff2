//! The lineage graph in sled: which lots, serials and containers were made
//! from, packed into or shipped as which, who holds them, and the quality
//! facts and recall orders about them. Written at commit, inside the block's
//! atomic batch, from [`lotline_core::lineage::derive`]; a pure function of
//! the chain, so every node holds the same graph.
//!
//! ```text
//! y | height | idx / 16                     -> postcard(EventRecord)  one per event (`store::grouped`): its origin,
//!                                              custody and every edge it makes, once
//!                                              (the last two zstd-packed when large)
//! g | node | 0 | f|b | kind | height | idx  -> postcard(Packed(Vec<EdgeEnd>)) (f: node is `from`, b: node is `to`)
//! h | node | 0 | height                     -> postcard(Vec<(idx, postcard(StoredCustody))>)
//!                                              the node's own custody records of one block
//! q | node | 0 | height | idx               -> JSON(FactBody)
//! r | node | 0 | height | idx               -> JSON(RecallBody)  (node is a suspect)
//! x | eventID | 0 | height | idx            -> JSON(DeclarationBody)  (an errorDeclaration)
//! ```
//! These choices keep a store of millions of events small and fast to write
//! (sled pays per key, and copies a leaf on every insert):
//! - what an event states once — who stated it (its [`Origin`]), its
//!   custody statement and every edge it makes — is one record `y` under
//!   its chain position (index format 16; three keys, `y`, `j` and `k`,
//!   before). A serial or logistic unit the event names is already listed
//!   under `i | node` at that position (the EPCIS query's identifier
//!   listing), so its edges are found through that listing and `y`, with
//!   no key of its own ([`listed_through_events`]). Only the other ends — lots,
//!   locations, parties, product classes, identifiers the listing does not hold —
//!   keep per-node `g` groups: a distributor's GLN is named by every event
//!   at its site, and reading all of them to find its shipments would make
//!   a hub of every location;
//! - who stated a record (its [`Origin`]) is not repeated in every record
//!   the event makes; readers resolve it through an [`Origins`] cache, once
//!   per event per request, and decode the event's custody and edges (kept
//!   as encoded bytes inside the record) only when they walk them;
//! - the edges one event makes at one end of one node are one record: a lot
//!   serialised into 240 items writes one forward record, not 240;
//! - custody an event states for a node its own edges already name is not
//!   written per node: an item serialised from a lot (the `to` of a
//!   `serialised` edge) and a child packed into a container (the `from` of
//!   a `packedIn` edge) get the event's custody statement in `y`, written once,
//!   and [`StoreReader::latest_custody`] finds it through the node's edges.
//!   Its edges cover them only if every such node is one of its custody
//!   subjects (the statement says whether they do), so the records read back are
//!   exactly the ones stated;
//! - the other custody subjects the event's listing names (serials and
//!   logistic units, by the same rule as edges) are named in it and found
//!   through their listing; only the rest get an `h` record of their own,
//!   and a node's records of one block share one key (index format 24): a
//!   lot received, moved and consumed by a block's events is one insert,
//!   not one per event ([`CustodyPending`]).
//!
//! Nothing is deleted: a retracted event's records stay, and readers skip
//! them by checking `x` ([`StoreReader::declaration`]), so the corrected
//! history and the correction itself are both visible.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use lotline_core::attestation::AttestationId;
use lotline_core::epcis::{QualityFact, RecallClass};
use lotline_core::lineage::{self, CustodyState, EdgeKind, Listed, Quantity, SensorSummary};
use lotline_core::statement::Statement;
use lotline_core::trace::NodeKind;
use serde::{Deserialize, Serialize};

use super::index::{self, Position};
use super::{StoreError, StoreReader, grouped, packed_error};

/// An event's [`EventRecord`]. (`j` and `k`, its edges and custody before
/// index format 16, are unused.)
const PREFIX_EVENT: u8 = b'y';
const PREFIX_EDGE: u8 = b'g';
const PREFIX_CUSTODY: u8 = b'h';
const PREFIX_FACT: u8 = b'q';
const PREFIX_RECALL: u8 = b'r';
const PREFIX_DECLARATION: u8 = b'x';

/// Which end of an edge a node is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum End {
    /// The node is `from`: the edge leads forward to `other`.
    From,
    /// The node is `to`: the edge leads backward to `other`.
    To,
}

impl End {
    fn tag(self) -> u8 {
        match self {
            End::From => b'f',
            End::To => b'b',
        }
    }
}

/// Who stated a record: the event behind it. Stored once per event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origin {
    pub attestation: AttestationId,
    pub org: String,
    pub event_time: String,
    pub event_time_ms: i64,
    /// The event's `eventID`, through which it can be retracted.
    pub event_id: Option<String>,
    pub biz_step: Option<String>,
    /// The event's `readPoint` (a line, a cell, a dock): where the step
    /// happened, a factor root cause ranks (`quality::root_cause`).
    pub read_point: Option<String>,
}

/// One edge as a reader sees it, from the node that was looked up.
#[derive(Clone, Debug, PartialEq)]
pub struct EdgeRecord {
    pub other: String,
    pub kind: EdgeKind,
    pub quantity: Option<Quantity>,
    pub origin: Arc<Origin>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CustodyRecord {
    pub state: CustodyState,
    pub origin: Arc<Origin>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct FactRecord {
    pub quality: Option<QualityFact>,
    pub sensors: Vec<SensorSummary>,
    pub disposition: Option<String>,
    pub origin: Arc<Origin>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct RecallRecord {
    pub recall_id: String,
    pub reason: String,
    pub class: RecallClass,
    pub origin: Arc<Origin>,
}

/// An error declaration: the event with `eventID` stated by `origin.org` was
/// in error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Declaration {
    pub reason: Option<String>,
    pub origin: Arc<Origin>,
}

/// The far end of one edge, as stored in an event's edge group.
#[derive(Serialize, Deserialize)]
struct EdgeEnd {
    other: String,
    /// `(value, uom)`: a plain tuple, so postcard can encode it.
    quantity: Option<(f64, Option<String>)>,
}

/// An amount as stored: `(value, uom)`, a plain tuple postcard can encode.
type StoredQuantity = Option<(f64, Option<String>)>;

/// Every edge one event makes, each node named once (in its [`EventRecord`]).
#[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
struct EventEdges {
    nodes: Vec<String>,
    /// `(from, to, kind tag, quantity)`, nodes as indexes into `nodes`.
    edges: Vec<(u32, u32, u8, StoredQuantity)>,
}

/// One edge read back from `y` or `g`, as the node that was looked up sees it.
struct RawEdge {
    at: Position,
    kind: EdgeKind,
    other: String,
    quantity: StoredQuantity,
}

/// Whether the edges and custody of `node` are found through its
/// identifier listing and the events' `y` records instead of
/// records of its own: serials and logistic units (when the event's listing
/// names them: [`records`] decides for the nodes of its [`Listed`]). Lots
/// keep their own `g` groups: a lot is
/// the one end of its serialisation (one group per event either way), and
/// [`StoreReader::edges_under`] reads every lot of a GTIN in one prefix
/// scan. The writer and every reader decide with this one rule.
fn listed_through_events(node: &str) -> bool {
    found_through_listing(NodeKind::of(node))
}

/// [`listed_through_events`] for a node of a known kind.
fn found_through_listing(kind: NodeKind) -> bool {
    matches!(kind, NodeKind::Item | NodeKind::Container)
}

/// An event's custody statement, once, in its [`EventRecord`].
#[derive(Serialize, Deserialize)]
struct EventCustody {
    state: StoredCustody,
    /// Whether the nodes its edges name at a custody-carrying end are all
    /// custody subjects, so custody reaches them through those edges.
    covers_edges: bool,
    /// The other subjects found through their listing, sorted.
    listed: Vec<String>,
}

/// [`CustodyState`] in an externally tagged form postcard can decode (the
/// API type is internally tagged for its JSON).
#[derive(Serialize, Deserialize)]
enum StoredCustody {
    Held {
        location: Option<String>,
    },
    InTransit {
        to_party: Option<String>,
        to_location: Option<String>,
    },
    Ended,
}

impl From<&CustodyState> for StoredCustody {
    fn from(state: &CustodyState) -> StoredCustody {
        match state.clone() {
            CustodyState::Held { location } => StoredCustody::Held { location },
            CustodyState::InTransit {
                to_party,
                to_location,
            } => StoredCustody::InTransit {
                to_party,
                to_location,
            },
            CustodyState::Ended => StoredCustody::Ended,
        }
    }
}

impl From<StoredCustody> for CustodyState {
    fn from(state: StoredCustody) -> CustodyState {
        match state {
            StoredCustody::Held { location } => CustodyState::Held { location },
            StoredCustody::InTransit {
                to_party,
                to_location,
            } => CustodyState::InTransit {
                to_party,
                to_location,
            },
            StoredCustody::Ended => CustodyState::Ended,
        }
    }
}

/// Quality facts, recall orders and declarations stay JSON: they hold
/// internally tagged enums (`QualityFact`) that postcard cannot decode, and
/// they are few (an inspection or an order names a handful of subjects).
#[derive(Serialize, Deserialize)]
struct FactBody {
    quality: Option<QualityFact>,
    sensors: Vec<SensorSummary>,
    disposition: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct RecallBody {
    recall_id: String,
    reason: String,
    class: RecallClass,
}

#[derive(Serialize, Deserialize)]
struct DeclarationBody {
    reason: Option<String>,
}

fn to_json<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_default()
}

/// A record and where it sits in the chain.
pub type At<T> = (Position, T);

fn node_key(prefix: u8, node: &str) -> Vec<u8> {
    index::listing_prefix(prefix, node)
}

fn position_key(prefix: u8, node: &str, at: Position) -> Vec<u8> {
    index::listing_key(prefix, node, at.height, at.index)
}

/// What the lineage graph keeps once per event, `y | height | idx`: one
/// sled key where there were three (sled pays per key). The custody
/// statement and the edges stay encoded inside it, so a reader that wants
/// only the origin (most do, once per event met) does not decode them.
#[derive(Serialize, Deserialize)]
struct EventRecord<'a> {
    origin: Origin,
    /// `postcard(EventCustody)`, empty if the event's custody needs none.
    #[serde(borrow)]
    custody: Packed<'a>,
    /// `postcard(EventEdges)`, empty if the event makes no edge.
    #[serde(borrow)]
    edges: Packed<'a>,
}

/// Encoded bytes inside an [`EventRecord`] or as a `g` group's value, as
/// they are or as one zstd frame (index format 18). An event's edges and
/// custody, and a lot's forward group, name serials whole, and a
/// serialisation's or a pack's hundreds of names share their stems: they
/// were the largest part of sled's logical bytes (docs/performance.md,
/// "Prepared on every core, lineage records compressed").
#[derive(Serialize, Deserialize)]
struct Packed<'a> {
    zstd: bool,
    #[serde(borrow)]
    bytes: &'a [u8],
}

/// Below this many bytes a record is kept as it is: a frame's header and
/// the work of compressing outweigh what a short list of names saves.
const PACK_MIN: usize = 128;

/// zstd level of packed lineage bytes: the fastest, as they are packed
/// inside the commit (as `a` records are).
const PACK_LEVEL: i32 = 1;

/// A packed record unpacks to at most this many bytes. An event makes at
/// most [`lineage::EDGES_PER_EVENT_MAX`] edges between names taken from an
/// attestation of at most 72 KiB; this bound is far above any of them and
/// only stops a damaged frame from allocating without bound.
const PACKED_BYTES_MAX: usize = 64 << 20;

/// `bytes`, compressed if that is worth it: `(zstd, stored bytes)`.
fn pack(bytes: Vec<u8>) -> (bool, Vec<u8>) {
    if bytes.len() < PACK_MIN {
        return (false, bytes);
    }
    let packed = super::compression::compress(&bytes, PACK_LEVEL);
    if packed.len() < bytes.len() {
        (true, packed)
    } else {
        (false, bytes)
    }
}

/// A record stored on its own (a `g` group) as a [`Packed`]: a lot's
/// forward group names each unit it was serialised into.
fn pack_value(bytes: Vec<u8>) -> Vec<u8> {
    let (zstd, bytes) = pack(bytes);
    index::encode(&Packed {
        zstd,
        bytes: &bytes,
    })
}

/// Decodes what [`pack_value`] stored.
fn unpack_value<T: serde::de::DeserializeOwned + Serialize>(
    what: &'static str,
    value: &[u8],
) -> Result<T, StoreError> {
    postcard::<Packed<'_>>(what, value)?.decode(what)
}

impl Packed<'_> {
    fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Decodes the record packed here.
    fn decode<T: serde::de::DeserializeOwned + Serialize>(
        &self,
        what: &'static str,
    ) -> Result<T, StoreError> {
        if !self.zstd {
            return postcard(what, self.bytes);
        }
        let bytes = super::compression::decompress(what, self.bytes, PACKED_BYTES_MAX)
            .map_err(|source| StoreError::Decode { what, source })?;
        postcard(what, &bytes)
    }
}

/// Whether the event's custody reaches a node through this edge (the node
/// at `end` of an edge of `kind`) instead of a record of the node's own.
fn custody_through_edge(end: End, kind: EdgeKind) -> bool {
    matches!(
        (end, kind),
        (End::From, EdgeKind::PackedIn) | (End::To, EdgeKind::Serialised)
    )
}

/// The custody subjects that need no record of their own: the nodes the
/// event's edges name at a custody-carrying end, if every one of them is a
/// subject (otherwise none, and every subject gets its own record).
fn covered_by_edges<'a>(
    edges: &'a [lineage::Edge],
    subjects: &[String],
) -> std::collections::BTreeSet<&'a str> {
    let mut covered = std::collections::BTreeSet::new();
    for edge in edges {
        for (node, end) in [(&edge.from, End::From), (&edge.to, End::To)] {
            if custody_through_edge(end, edge.kind) {
                if subjects.binary_search(node).is_err() {
                    return std::collections::BTreeSet::new();
                }
                covered.insert(node.as_str());
            }
        }
    }
    covered
}

/// Edges are grouped by kind under each end, so a holder lookup reads a
/// lot's `packedIn` edges without its thousands of `serialised` ones.
fn kind_tag(kind: EdgeKind) -> u8 {
    match kind {
        EdgeKind::TransformedInto => 1,
        EdgeKind::Serialised => 2,
        EdgeKind::PackedIn => 3,
        EdgeKind::AssociatedWith => 4,
        EdgeKind::ShippedTo => 5,
    }
}

fn kind_of_tag(tag: u8) -> Option<EdgeKind> {
    Some(match tag {
        1 => EdgeKind::TransformedInto,
        2 => EdgeKind::Serialised,
        3 => EdgeKind::PackedIn,
        4 => EdgeKind::AssociatedWith,
        5 => EdgeKind::ShippedTo,
        _ => return None,
    })
}

fn edge_prefix(node: &str, end: End) -> Vec<u8> {
    let mut key = node_key(PREFIX_EDGE, node);
    key.push(end.tag());
    key
}

fn edge_key(node: &str, end: End, kind: EdgeKind, at: Position) -> Vec<u8> {
    let mut key = edge_prefix(node, end);
    key.push(kind_tag(kind));
    key.extend_from_slice(&at.height.to_be_bytes());
    key.extend_from_slice(&at.index.to_be_bytes());
    key
}

/// `h | node | 0 | height`: the key of one node's own custody records in
/// one block.
fn custody_key(node: &str, height: u64) -> Vec<u8> {
    let mut key = node_key(PREFIX_CUSTODY, node);
    key.extend_from_slice(&height.to_be_bytes());
    key
}

/// The own custody records of one node in one block, as stored: each
/// event's index in the block and its `postcard(StoredCustody)`, in block
/// order.
type BlockCustody<'a> = Vec<(u32, &'a [u8])>;

/// The block's own custody records, gathered per node and written as one
/// key each when the batch is packed (`super::Writes::pack`).
///
/// Why: sled pays per key, and a node named by many events of a block (a
/// lot received in 8-lot deliveries, a pallet moved and checked) wrote a
/// key for each, all at the end of the node's range, where every insert
/// rewrites, and often splits, the same leaf. Measured on the capture
/// bench (docs/performance.md): 8 keys per event, 98 % of the block's keys.
#[derive(Debug, Default)]
pub(crate) struct CustodyPending {
    /// By node and height: each event's index and record.
    blocks: BTreeMap<(String, u64), Vec<IndexedCustody>>,
}

/// An event's index in its block and its `postcard(StoredCustody)`.
type IndexedCustody = (u32, Arc<[u8]>);

impl CustodyPending {
    /// Keeps `record` as `node`'s custody stated by the event at `at`.
    pub(crate) fn add(&mut self, node: &str, at: Position, record: Arc<[u8]>) {
        match self.blocks.get_mut(&(node.to_owned(), at.height)) {
            Some(records) => records.push((at.index, record)),
            None => {
                self.blocks
                    .insert((node.to_owned(), at.height), vec![(at.index, record)]);
            }
        }
    }

    /// The keys and values to write, each node's records of a block in
    /// block order (events are indexed in block order).
    pub(crate) fn into_writes(self) -> impl Iterator<Item = (Vec<u8>, Vec<u8>)> {
        self.blocks.into_iter().map(|((node, height), records)| {
            let block: BlockCustody<'_> = records.iter().map(|(i, r)| (*i, &r[..])).collect();
            (custody_key(&node, height), index::encode(&block))
        })
    }
}

/// A node's own custody records, newest first, block key by block key.
struct OwnCustody {
    scan: std::iter::Rev<sled::Iter>,
    /// The records of the block key read last, oldest first (taken from
    /// the back).
    block: Vec<(Position, StoredCustody)>,
}

impl OwnCustody {
    fn new(reader: &StoreReader, node: &str) -> OwnCustody {
        OwnCustody {
            scan: reader.db.scan_prefix(node_key(PREFIX_CUSTODY, node)).rev(),
            block: Vec::new(),
        }
    }

    fn next(
        &mut self,
        reader: &StoreReader,
    ) -> Result<Option<(Position, StoredCustody)>, StoreError> {
        loop {
            if let Some(record) = self.block.pop() {
                return Ok(Some(record));
            }
            let Some(entry) = self.scan.next() else {
                return Ok(None);
            };
            let (key, value) = entry.map_err(|e| reader.sled_err(e))?;
            let Some(height) = key
                .len()
                .checked_sub(8)
                .and_then(|start| key.get(start..))
                .and_then(|bytes| <[u8; 8]>::try_from(bytes).ok())
                .map(u64::from_be_bytes)
            else {
                continue;
            };
            let block: BlockCustody<'_> = postcard("custody block", &value)?;
            self.block = block
                .into_iter()
                .map(|(index, record)| {
                    Ok((Position { height, index }, postcard("custody", record)?))
                })
                .collect::<Result<_, StoreError>>()?;
        }
    }
}

/// One event's lineage records, derived without reading the store
/// ([`records`], `super::prepare`, on any thread), written by [`index`]
/// when the event is indexed (not a repeated capture).
#[derive(Debug, PartialEq)]
pub(super) struct Records {
    /// The event's [`EventRecord`], encoded.
    event: Vec<u8>,
    /// The other keys and values for the block's batch, in the order written.
    writes: Vec<(Vec<u8>, Vec<u8>)>,
    /// The custody subjects with a record of their own, and the record
    /// (`postcard(StoredCustody)`), packed per node and block by
    /// [`CustodyPending`].
    custody: Vec<(String, Arc<[u8]>)>,
    origin: Origin,
    derived: lineage::Derived,
}

/// The lineage records of the event at `at`, a pure function of the
/// statement: `derived` is what it says of lineage ([`lineage::derive`]),
/// `listed` the canonical identifiers it is listed under, with their kinds
/// (the nodes the block's `i` listings name at `at`). `None` for an event
/// that says nothing of lineage.
pub(super) fn records(
    at: Position,
    id: &AttestationId,
    statement: &Statement,
    derived: lineage::Derived,
    listed: &Listed,
) -> Option<Records> {
    let event = &statement.event;
    if derived.is_empty() {
        return None;
    }
    let mut writes: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    let origin = Origin {
        attestation: *id,
        org: statement.org.clone(),
        event_time: event.event_time.clone(),
        event_time_ms: event.event_time_ms().unwrap_or(0),
        event_id: event.event_id.clone(),
        biz_step: event.biz_step_short(),
        read_point: event.read_point.as_ref().map(|l| l.id.clone()),
    };
    if let Some(event_id) = &derived.retracts {
        let reason = event
            .error_declaration
            .as_ref()
            .and_then(|d| d.reason.clone());
        writes.push((
            position_key(PREFIX_DECLARATION, event_id, at),
            to_json(&DeclarationBody { reason }),
        ));
    }
    let through_events = |node: &str| listed.kind(node).is_some_and(found_through_listing);
    // Every edge once in the event's record; a `g` group, one per (node,
    // end, kind), only for the ends that are not found through the listing.
    let mut record = EventEdges::default();
    let mut slots: BTreeMap<&str, u32> = BTreeMap::new();
    fn slot<'a>(slots: &mut BTreeMap<&'a str, u32>, nodes: &mut Vec<String>, node: &'a str) -> u32 {
        *slots.entry(node).or_insert_with(|| {
            nodes.push(node.to_owned());
            u32::try_from(nodes.len() - 1).unwrap_or(u32::MAX)
        })
    }
    let mut groups: BTreeMap<(&str, End, EdgeKind), Vec<EdgeEnd>> = BTreeMap::new();
    for edge in &derived.edges {
        let quantity = edge.quantity.as_ref().map(|q| (q.value, q.uom.clone()));
        let from = slot(&mut slots, &mut record.nodes, &edge.from);
        let to = slot(&mut slots, &mut record.nodes, &edge.to);
        record
            .edges
            .push((from, to, kind_tag(edge.kind), quantity.clone()));
        if !through_events(&edge.from) {
            groups
                .entry((&edge.from, End::From, edge.kind))
                .or_default()
                .push(EdgeEnd {
                    other: edge.to.clone(),
                    quantity: quantity.clone(),
                });
        }
        if !through_events(&edge.to) {
            groups
                .entry((&edge.to, End::To, edge.kind))
                .or_default()
                .push(EdgeEnd {
                    other: edge.from.clone(),
                    quantity,
                });
        }
    }
    let edges = if record.edges.is_empty() {
        Vec::new()
    } else {
        index::encode(&record)
    };
    let mut custody_record = Vec::new();
    let mut own_custody = Vec::new();
    for ((node, end, kind), ends) in groups {
        writes.push((
            edge_key(node, end, kind, at),
            pack_value(index::encode(&ends)),
        ));
    }
    if let Some(custody) = &derived.custody {
        let mut subjects = custody.subjects.clone();
        subjects.sort();
        let covered = covered_by_edges(&derived.edges, &subjects);
        let (listed, own): (Vec<&String>, Vec<&String>) = subjects
            .iter()
            .filter(|s| !covered.contains(s.as_str()))
            .partition(|s| through_events(s));
        if !covered.is_empty() || !listed.is_empty() {
            let record = EventCustody {
                state: StoredCustody::from(&custody.state),
                covers_edges: !covered.is_empty(),
                listed: listed.into_iter().cloned().collect(),
            };
            custody_record = index::encode(&record);
        }
        let value: Arc<[u8]> = index::encode(&StoredCustody::from(&custody.state)).into();
        own_custody = own
            .into_iter()
            .map(|subject| (subject.clone(), value.clone()))
            .collect();
    }
    let (custody_zstd, custody_record) = pack(custody_record);
    let (edges_zstd, edges) = pack(edges);
    let record = EventRecord {
        origin,
        custody: Packed {
            zstd: custody_zstd,
            bytes: &custody_record,
        },
        edges: Packed {
            zstd: edges_zstd,
            bytes: &edges,
        },
    };
    let event = index::encode(&record);
    for fact in &derived.facts {
        let value = to_json(&FactBody {
            quality: fact.quality.clone(),
            sensors: fact.sensors.clone(),
            disposition: fact.disposition.clone(),
        });
        for subject in &fact.subjects {
            writes.push((position_key(PREFIX_FACT, subject, at), value.clone()));
        }
    }
    if let Some(recall) = &derived.recall {
        let value = to_json(&RecallBody {
            recall_id: recall.recall_id.clone(),
            reason: recall.reason.clone(),
            class: recall.class,
        });
        for suspect in &recall.scope {
            writes.push((position_key(PREFIX_RECALL, suspect, at), value.clone()));
        }
    }
    let EventRecord { origin, .. } = record;
    Some(Records {
        event,
        writes,
        custody: own_custody,
        origin,
        derived,
    })
}

/// Adds one committed event's lineage [`Records`] to the block's batch,
/// and its measurements to the quality series. `opened` is the event with
/// its private fields restored, when this node opens them
/// (`super::Opener`): only its measurements are indexed (marked private,
/// and sealed under the period's at-rest key for a period-keyed record);
/// everything else is derived from the public event, the same on every
/// node. Returns the event's origin and edges (for
/// `quality::exposure::index`).
pub(super) fn index(
    batch: &mut super::Writes,
    at: Position,
    records: Records,
    opened: Option<&super::OpenedAtCommit>,
) -> (Origin, Vec<lineage::Edge>) {
    let Records {
        event,
        writes,
        custody,
        origin,
        derived,
    } = records;
    batch.record(PREFIX_EVENT, at, event);
    for (key, value) in writes {
        batch.insert(key, value);
    }
    for (node, record) in custody {
        batch.custody.add(&node, at, record);
    }
    crate::quality::series::index(batch, at, &origin, &derived.facts);
    if let Some(opened) = opened {
        let facts = lineage::derive(&opened.event);
        crate::quality::series::index_opened(
            batch,
            at,
            &origin,
            &derived.facts,
            &facts.facts,
            opened.at_rest.as_ref(),
        );
    }
    (origin, derived.edges)
}

/// The position a `... | height | idx` key ends with.
fn key_position(key: &[u8]) -> Option<Position> {
    let (height, index) = index::listing_position(key)?;
    Some(Position { height, index })
}

/// The origins one request has met, each read from sled once: the records
/// of one event (a lot's 240 serials, a case's 12 items) share it.
#[derive(Debug, Default)]
pub struct Origins {
    known: RefCell<HashMap<Position, Arc<Origin>>>,
    /// The edges of the events read so far (a serialisation's 240 items share one).
    event_edges: RefCell<HashMap<Position, Option<Arc<EventEdges>>>>,
}

impl Origins {
    /// Keeps `origin` as the one of the event at `at`, read from another
    /// record that carries it (`quality::exposure`'s lot units), so the
    /// event's own record is not read for it.
    pub(crate) fn know(&self, at: Position, origin: Arc<Origin>) {
        self.known.borrow_mut().entry(at).or_insert(origin);
    }
}

impl StoreReader {
    /// Who stated the event at `at`.
    pub fn origin(&self, at: Position, origins: &Origins) -> Result<Arc<Origin>, StoreError> {
        if let Some(origin) = origins.known.borrow().get(&at) {
            return Ok(origin.clone());
        }
        let what = "lineage origin";
        let (origin, ()) = self
            .event_record(at, origins, |_| Ok(()))?
            .ok_or(StoreError::Missing { what, at })?;
        Ok(origin)
    }

    /// Reads the [`EventRecord`] at `at` (`None` if there is none), hands
    /// it to `read`, and keeps its origin in `origins`.
    fn event_record<T>(
        &self,
        at: Position,
        origins: &Origins,
        read: impl FnOnce(&EventRecord<'_>) -> Result<T, StoreError>,
    ) -> Result<Option<(Arc<Origin>, T)>, StoreError> {
        let Some(bytes) = grouped::get(&self.db, PREFIX_EVENT, at)
            .map_err(|e| packed_error("lineage event", e))?
        else {
            return Ok(None);
        };
        let record: EventRecord<'_> = postcard("lineage event", &bytes)?;
        let out = read(&record)?;
        let origin = origins
            .known
            .borrow_mut()
            .entry(at)
            .or_insert_with(|| Arc::new(record.origin))
            .clone();
        Ok(Some((origin, out)))
    }

    /// The records under `prefix` whose key ends in a position, in chain
    /// order, as `each` decodes them (`None` skips one).
    fn records<T>(
        &self,
        prefix: &[u8],
        mut each: impl FnMut(&[u8], Position, &[u8]) -> Result<Option<T>, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        let mut out = Vec::new();
        for entry in self.db.scan_prefix(prefix) {
            let (key, value) = entry.map_err(|e| self.sled_err(e))?;
            let Some(at) = key_position(&key) else {
                continue;
            };
            if let Some(record) = each(&key, at, &value)? {
                out.push(record);
            }
        }
        Ok(out)
    }

    /// The edges at one end of `node` (of one kind, if given), in chain order.
    pub fn edges(
        &self,
        node: &str,
        end: End,
        kind: Option<EdgeKind>,
        origins: &Origins,
    ) -> Result<Vec<At<EdgeRecord>>, StoreError> {
        let mut out = Vec::new();
        for raw in self.raw_edges(node, end, kind, origins)? {
            let origin = self.origin(raw.at, origins)?;
            out.push((
                raw.at,
                EdgeRecord {
                    other: raw.other,
                    kind: raw.kind,
                    quantity: raw.quantity.map(|(value, uom)| Quantity { value, uom }),
                    origin,
                },
            ));
        }
        Ok(out)
    }

    /// The edges at one end of `node`, in chain order: its own `g` groups
    /// and, for a node found through its listing, the edges in the `y` records of the
    /// events that list it (see [`listed_through_events`]).
    fn raw_edges(
        &self,
        node: &str,
        end: End,
        kind: Option<EdgeKind>,
        origins: &Origins,
    ) -> Result<Vec<RawEdge>, StoreError> {
        let mut prefix = edge_prefix(node, end);
        prefix.extend(kind.map(kind_tag));
        let tag_at = prefix.len() - usize::from(kind.is_some());
        let groups = self.records(&prefix, |key, at, value| {
            let Some(kind) = key.get(tag_at).copied().and_then(kind_of_tag) else {
                return Ok(None);
            };
            let ends: Vec<EdgeEnd> = unpack_value("lineage edge", value)?;
            Ok(Some((at, kind, ends)))
        })?;
        let mut out = Vec::new();
        for (at, kind, ends) in groups {
            out.extend(ends.into_iter().map(|end| RawEdge {
                at,
                kind,
                other: end.other,
                quantity: end.quantity,
            }));
        }
        if listed_through_events(node) {
            for at in self.listed_positions(node)? {
                let Some(record) = self.event_edges(at, origins)? else {
                    continue;
                };
                let slot = |i: u32| record.nodes.get(i as usize).map(String::as_str);
                for (from, to, tag, quantity) in &record.edges {
                    let (Some(from), Some(to), Some(edge_kind)) =
                        (slot(*from), slot(*to), kind_of_tag(*tag))
                    else {
                        continue;
                    };
                    let (here, other) = match end {
                        End::From => (from, to),
                        End::To => (to, from),
                    };
                    if here == node && kind.is_none_or(|k| k == edge_kind) {
                        out.push(RawEdge {
                            at,
                            kind: edge_kind,
                            other: other.to_owned(),
                            quantity: quantity.clone(),
                        });
                    }
                }
            }
        }
        // Groups sort by kind first and the two sources interleave; callers
        // expect chain order.
        out.sort_by_key(|raw| raw.at);
        Ok(out)
    }

    /// The positions `node`'s identifier listing names, in chain order.
    fn listed_positions(&self, node: &str) -> Result<Vec<Position>, StoreError> {
        super::listing::positions(&self.db, index::PREFIX_IDENTIFIER, node, None)
            .collect::<Result<_, _>>()
            .map_err(|e| packed_error("identifier listing", e))
    }

    /// The edges of the event at `at`, read once per request.
    fn event_edges(
        &self,
        at: Position,
        origins: &Origins,
    ) -> Result<Option<Arc<EventEdges>>, StoreError> {
        if let Some(known) = origins.event_edges.borrow().get(&at) {
            return Ok(known.clone());
        }
        let record = self
            .event_record(at, origins, |record| {
                if record.edges.is_empty() {
                    return Ok(None);
                }
                let edges: EventEdges = record.edges.decode("event edges")?;
                Ok(Some(Arc::new(edges)))
            })?
            .and_then(|(_, edges)| edges);
        origins.event_edges.borrow_mut().insert(at, record.clone());
        Ok(record)
    }

    /// Custody records of `node`, newest first, read lazily: `accept` sees
    /// them one at a time and the walk stops at the first it accepts. They
    /// are the node's own records merged with the event records its edges
    /// reach (see the module doc).
    pub fn latest_custody(
        &self,
        node: &str,
        origins: &Origins,
        mut accept: impl FnMut(Position, &CustodyRecord) -> Result<bool, StoreError>,
    ) -> Result<Option<At<CustodyRecord>>, StoreError> {
        // The event records that may hold the node's custody: reached
        // through its edges, or naming it among the subjects its listing finds.
        let by_edges: BTreeSet<Position> = self.custody_edges(node, origins)?.into_iter().collect();
        let by_listing: BTreeSet<Position> = if listed_through_events(node) {
            self.listed_positions(node)?.into_iter().collect()
        } else {
            BTreeSet::new()
        };
        let candidates: BTreeSet<Position> = by_edges.union(&by_listing).copied().collect();
        let mut events = candidates.into_iter().rev().peekable();
        let mut own = OwnCustody::new(self, node);
        let mut next_own = own.next(self)?;
        loop {
            let from_event = match (events.peek(), &next_own) {
                (Some(event), Some((mine, _))) => event > mine,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (None, None) => return Ok(None),
            };
            let (at, state) = if from_event {
                let Some(at) = events.next() else {
                    return Ok(None);
                };
                let record = self.event_record(at, origins, |record| {
                    if record.custody.is_empty() {
                        return Ok(None);
                    }
                    record
                        .custody
                        .decode::<EventCustody>("event custody")
                        .map(Some)
                })?;
                let Some((_, Some(record))) = record else {
                    continue;
                };
                let applies = (record.covers_edges && by_edges.contains(&at))
                    || (by_listing.contains(&at)
                        && record
                            .listed
                            .binary_search_by(|l| l.as_str().cmp(node))
                            .is_ok());
                if !applies {
                    continue;
                }
                (at, record.state)
            } else {
                let Some(mine) = next_own.take() else {
                    return Ok(None);
                };
                next_own = own.next(self)?;
                // One record per event: never the same event twice.
                events.next_if_eq(&mine.0);
                mine
            };
            let record = CustodyRecord {
                state: state.into(),
                origin: self.origin(at, origins)?,
            };
            if accept(at, &record)? {
                return Ok(Some((at, record)));
            }
        }
    }

    /// The positions of the edges through which an event's custody may
    /// reach `node`, in chain order, each once.
    fn custody_edges(&self, node: &str, origins: &Origins) -> Result<Vec<Position>, StoreError> {
        let mut out = Vec::new();
        for end in [End::From, End::To] {
            for raw in self.raw_edges(node, end, None, origins)? {
                if custody_through_edge(end, raw.kind) {
                    out.push(raw.at);
                }
            }
        }
        out.sort();
        out.dedup();
        Ok(out)
    }

    /// Quality facts about `node`, in chain order.
    pub fn facts(&self, node: &str, origins: &Origins) -> Result<Vec<At<FactRecord>>, StoreError> {
        self.records(&node_key(PREFIX_FACT, node), |_, at, value| {
            let body: FactBody = json("fact", value)?;
            Ok(Some((
                at,
                FactRecord {
                    quality: body.quality,
                    sensors: body.sensors,
                    disposition: body.disposition,
                    origin: self.origin(at, origins)?,
                },
            )))
        })
    }

    /// Quality facts about every node whose name starts with `stem` (all
    /// lots and items of one GTIN: `https://id.gs1.org/01/{gtin}/`), each
    /// with its node, in key order (node, then chain position). One prefix
    /// scan: the statistics over a product class read no per-node index.
    pub fn facts_under(
        &self,
        stem: &str,
        origins: &Origins,
    ) -> Result<Vec<(String, At<FactRecord>)>, StoreError> {
        let mut prefix = vec![PREFIX_FACT];
        prefix.extend_from_slice(stem.as_bytes());
        self.records(&prefix, |key, at, value| {
            // `q | node | 0 | height | idx`.
            let Some(node) = key
                .get(1..key.len().saturating_sub(13))
                .and_then(|n| std::str::from_utf8(n).ok())
            else {
                return Ok(None);
            };
            let body: FactBody = json("fact", value)?;
            Ok(Some((
                node.to_owned(),
                (
                    at,
                    FactRecord {
                        quality: body.quality,
                        sensors: body.sensors,
                        disposition: body.disposition,
                        origin: self.origin(at, origins)?,
                    },
                ),
            )))
        })
    }

    /// The edges of `kind` at `end` of every node whose name starts with
    /// `stem`, each with its node, in key order: e.g. every serialisation
    /// of every lot of one GTIN in one prefix scan.
    pub fn edges_under(
        &self,
        stem: &str,
        end: End,
        kind: EdgeKind,
        origins: &Origins,
    ) -> Result<Vec<(String, At<EdgeRecord>)>, StoreError> {
        let mut prefix = vec![PREFIX_EDGE];
        prefix.extend_from_slice(stem.as_bytes());
        let groups = self.records(&prefix, |key, at, value| {
            // `g | node | 0 | end | kind | height | idx`.
            let n = key.len();
            if n < 1 + 1 + 2 + 12 || key[n - 15] != 0 {
                return Ok(None);
            }
            if key[n - 14] != end.tag() || key[n - 13] != kind_tag(kind) {
                return Ok(None);
            }
            let Ok(node) = std::str::from_utf8(&key[1..n - 15]) else {
                return Ok(None);
            };
            let ends: Vec<EdgeEnd> = unpack_value("lineage edge", value)?;
            Ok(Some((node.to_owned(), at, ends)))
        })?;
        let mut out = Vec::new();
        for (node, at, ends) in groups {
            let origin = self.origin(at, origins)?;
            out.extend(ends.into_iter().map(|e| {
                (
                    node.clone(),
                    (
                        at,
                        EdgeRecord {
                            other: e.other,
                            kind,
                            quantity: e.quantity.map(|(value, uom)| Quantity { value, uom }),
                            origin: origin.clone(),
                        },
                    ),
                )
            }));
        }
        Ok(out)
    }

    /// Recall orders naming `node` as a suspect, in chain order.
    pub fn recalls(
        &self,
        node: &str,
        origins: &Origins,
    ) -> Result<Vec<At<RecallRecord>>, StoreError> {
        self.records(&node_key(PREFIX_RECALL, node), |_, at, value| {
            let body: RecallBody = json("recall", value)?;
            Ok(Some((
                at,
                RecallRecord {
                    recall_id: body.recall_id,
                    reason: body.reason,
                    class: body.class,
                    origin: self.origin(at, origins)?,
                },
            )))
        })
    }

    /// The error declaration, by the same org and later in the chain, that
    /// retracts the event `event_id` stated at `at`; `None` if it stands.
    /// The event ids every error declaration names, or `None` if there are
    /// more than `max` declarations (then look each up: `declaration`).
    pub fn declared_event_ids(
        &self,
        max: usize,
    ) -> Result<Option<std::collections::HashSet<String>>, StoreError> {
        let mut out = std::collections::HashSet::new();
        let mut seen = 0usize;
        for entry in self.db.scan_prefix([PREFIX_DECLARATION]) {
            let (key, _) = entry.map_err(|e| self.sled_err(e))?;
            seen += 1;
            if seen > max {
                return Ok(None);
            }
            // `x | event id | 0 | height | idx`.
            if let Some(id) = key
                .get(1..key.len().saturating_sub(13))
                .and_then(|id| std::str::from_utf8(id).ok())
            {
                out.insert(id.to_owned());
            }
        }
        Ok(Some(out))
    }

    pub fn declaration(
        &self,
        event_id: &str,
        org: &str,
        at: Position,
        origins: &Origins,
    ) -> Result<Option<At<Declaration>>, StoreError> {
        let declarations =
            self.records(&node_key(PREFIX_DECLARATION, event_id), |_, pos, value| {
                if pos <= at {
                    return Ok(None);
                }
                let origin = self.origin(pos, origins)?;
                if origin.org != org {
                    return Ok(None);
                }
                let body: DeclarationBody = json("declaration", value)?;
                Ok(Some((
                    pos,
                    Declaration {
                        reason: body.reason,
                        origin,
                    },
                )))
            })?;
        Ok(declarations.into_iter().next())
    }
}

fn postcard<'a, T: Deserialize<'a> + Serialize>(
    what: &'static str,
    bytes: &'a [u8],
) -> Result<T, StoreError> {
    index::decode(what, bytes).map_err(|source| StoreError::Decode { what, source })
}

fn json<T: serde::de::DeserializeOwned>(what: &'static str, bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|source| StoreError::Json { what, source })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// What a lot serialised into `n` items writes: the lot and each item
    /// once, an edge from the lot to each.
    fn serialisation(n: u32) -> EventEdges {
        let mut nodes = vec!["urn:epc:class:lgtin:4012345.012345.LOT-2026-117".to_owned()];
        nodes.extend((0..n).map(|i| format!("urn:epc:id:sgtin:4012345.012345.{:08}", 1_000 + i)));
        EventEdges {
            nodes,
            edges: (1..=n).map(|to| (0, to, 2, None)).collect(),
        }
    }

    fn read(stored: (bool, Vec<u8>)) -> Result<EventEdges, StoreError> {
        let (zstd, bytes) = stored;
        Packed {
            zstd,
            bytes: &bytes,
        }
        .decode("event edges")
    }

    #[test]
    fn a_serialisations_edges_are_stored_as_one_smaller_frame_and_read_back_whole() {
        let edges = serialisation(240);
        let encoded = index::encode(&edges);
        let (zstd, bytes) = pack(encoded.clone());
        assert!(zstd, "240 names sharing their stems are packed");
        assert!(
            bytes.len() * 3 < encoded.len(),
            "{} bytes packed from {}",
            bytes.len(),
            encoded.len()
        );
        assert_eq!(read((zstd, bytes)).expect("read"), edges);
    }

    #[test]
    fn a_short_record_is_kept_as_it_is() {
        let edges = serialisation(1);
        let encoded = index::encode(&edges);
        assert!(encoded.len() < PACK_MIN);
        let stored = pack(encoded.clone());
        assert_eq!(stored, (false, encoded));
        assert_eq!(read(stored).expect("read"), edges);
    }

    #[test]
    fn a_damaged_frame_is_a_decode_error_not_a_panic() {
        let (zstd, mut bytes) = pack(index::encode(&serialisation(240)));
        assert!(zstd);
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x5a;
        bytes.truncate(bytes.len() - 3);
        assert!(matches!(
            read((true, bytes)),
            Err(StoreError::Decode { .. })
        ));
        // Raw bytes marked as a frame are refused the same way.
        let raw = index::encode(&serialisation(240));
        assert!(matches!(read((true, raw)), Err(StoreError::Decode { .. })));
    }

    proptest! {
        #[test]
        fn any_edges_read_back_as_written(
            nodes in proptest::collection::vec("[a-z:.0-9]{0,60}", 0..300),
            edges in proptest::collection::vec(
                (any::<u32>(), any::<u32>(), 1u8..=5, proptest::option::of((any::<f64>().prop_filter("not NaN", |v| !v.is_nan()), proptest::option::of("[A-Z0-9]{1,3}")))),
                0..300,
            ),
        ) {
            let written = EventEdges { nodes, edges };
            let read_back = read(pack(index::encode(&written))).expect("read");
            prop_assert_eq!(read_back, written);
        }
    }
}
