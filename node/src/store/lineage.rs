//! The lineage graph in sled: which lots, serials and containers were made
//! from, packed into or shipped as which, who holds them, and the quality
//! facts and recall orders about them. Written at commit, inside the block's
//! atomic batch, from [`lotline_core::lineage::derive`]; a pure function of
//! the chain, so every node holds the same graph.
//!
//! ```text
//! g | node | 0 | f|b | kind | height | idx | n -> EdgeRecord (f: node is `from`, b: node is `to`)
//! h | node | 0 | height | idx             -> CustodyRecord
//! q | node | 0 | height | idx             -> FactRecord
//! r | node | 0 | height | idx             -> RecallRecord  (node is a suspect)
//! x | eventID | 0 | height | idx          -> Declaration   (an errorDeclaration)
//! ```
//! Nothing is deleted: a retracted event's records stay, and readers skip
//! them by checking `x` ([`StoreReader::declaration`]), so the corrected
//! history and the correction itself are both visible.

use lotline_core::attestation::AttestationId;
use lotline_core::epcis::{QualityFact, RecallClass};
use lotline_core::lineage::{self, CustodyState, EdgeKind, Quantity, SensorSummary};
use lotline_core::statement::Statement;
use serde::{Deserialize, Serialize};

use super::index::{self, Position};
use super::{StoreError, StoreReader};

const PREFIX_EDGE: u8 = b'g';
const PREFIX_CUSTODY: u8 = b'h';
const PREFIX_FACT: u8 = b'q';
const PREFIX_RECALL: u8 = b'r';
const PREFIX_DECLARATION: u8 = b'x';

/// Which end of an edge a node is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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

/// Who stated a record, and where it sits.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origin {
    pub attestation: AttestationId,
    pub org: String,
    pub event_time: String,
    pub event_time_ms: i64,
    /// The event's `eventID`, through which it can be retracted.
    pub event_id: Option<String>,
    pub biz_step: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EdgeRecord {
    pub other: String,
    pub kind: EdgeKind,
    pub quantity: Option<Quantity>,
    pub origin: Origin,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustodyRecord {
    pub state: CustodyState,
    pub origin: Origin,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FactRecord {
    pub quality: Option<QualityFact>,
    pub sensors: Vec<SensorSummary>,
    pub disposition: Option<String>,
    pub origin: Origin,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RecallRecord {
    pub recall_id: String,
    pub reason: String,
    pub class: RecallClass,
    pub origin: Origin,
}

/// An error declaration: the event with `eventID` stated by `origin.org` was
/// in error.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Declaration {
    pub reason: Option<String>,
    pub origin: Origin,
}

/// Records are JSON, not postcard: they hold internally tagged enums
/// (`QualityFact`, `CustodyState`) that postcard cannot decode.
fn encode<T: Serialize>(value: &T) -> Vec<u8> {
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

fn edge_key(node: &str, end: End, kind: EdgeKind, at: Position, n: u16) -> Vec<u8> {
    let mut key = node_key(PREFIX_EDGE, node);
    key.push(end.tag());
    key.push(kind_tag(kind));
    key.extend_from_slice(&at.height.to_be_bytes());
    key.extend_from_slice(&at.index.to_be_bytes());
    key.extend_from_slice(&n.to_be_bytes());
    key
}

/// Adds one committed event's lineage records to the block's batch.
pub(super) fn index(
    batch: &mut sled::Batch,
    at: Position,
    id: &AttestationId,
    statement: &Statement,
) {
    let event = &statement.event;
    let derived = lineage::derive(event);
    if derived.is_empty() {
        return;
    }
    let origin = Origin {
        attestation: *id,
        org: statement.org.clone(),
        event_time: event.event_time.clone(),
        event_time_ms: event.event_time_ms().unwrap_or(0),
        event_id: event.event_id.clone(),
        biz_step: event.biz_step_short(),
    };
    if let Some(event_id) = &derived.retracts {
        let declaration = Declaration {
            reason: event
                .error_declaration
                .as_ref()
                .and_then(|d| d.reason.clone()),
            origin: origin.clone(),
        };
        batch.insert(
            position_key(PREFIX_DECLARATION, event_id, at),
            encode(&declaration),
        );
    }
    for (n, edge) in derived.edges.iter().enumerate() {
        let n = u16::try_from(n).unwrap_or(u16::MAX);
        let forward = EdgeRecord {
            other: edge.to.clone(),
            kind: edge.kind,
            quantity: edge.quantity.clone(),
            origin: origin.clone(),
        };
        batch.insert(
            edge_key(&edge.from, End::From, edge.kind, at, n),
            encode(&forward),
        );
        let backward = EdgeRecord {
            other: edge.from.clone(),
            ..forward
        };
        batch.insert(
            edge_key(&edge.to, End::To, edge.kind, at, n),
            encode(&backward),
        );
    }
    if let Some(custody) = &derived.custody {
        let value = encode(&CustodyRecord {
            state: custody.state.clone(),
            origin: origin.clone(),
        });
        for subject in &custody.subjects {
            batch.insert(position_key(PREFIX_CUSTODY, subject, at), value.clone());
        }
    }
    for fact in &derived.facts {
        let value = encode(&FactRecord {
            quality: fact.quality.clone(),
            sensors: fact.sensors.clone(),
            disposition: fact.disposition.clone(),
            origin: origin.clone(),
        });
        for subject in &fact.subjects {
            batch.insert(position_key(PREFIX_FACT, subject, at), value.clone());
        }
    }
    if let Some(recall) = &derived.recall {
        let value = encode(&RecallRecord {
            recall_id: recall.recall_id.clone(),
            reason: recall.reason.clone(),
            class: recall.class,
            origin,
        });
        for suspect in &recall.scope {
            batch.insert(position_key(PREFIX_RECALL, suspect, at), value.clone());
        }
    }
}

/// The position a `... | height | idx [| n]` key ends with.
fn key_position(key: &[u8], tail: usize) -> Option<Position> {
    let end = key.len().checked_sub(tail)?;
    let (height, index) = index::listing_position(&key[..end])?;
    Some(Position { height, index })
}

impl StoreReader {
    fn scan<T: serde::de::DeserializeOwned>(
        &self,
        what: &'static str,
        prefix: Vec<u8>,
        tail: usize,
    ) -> Result<Vec<At<T>>, StoreError> {
        let mut out = Vec::new();
        for entry in self.db.scan_prefix(prefix) {
            let (key, value) = entry.map_err(|e| self.sled_err(e))?;
            let Some(at) = key_position(&key, tail) else {
                continue;
            };
            let record = serde_json::from_slice(&value)
                .map_err(|source| StoreError::Json { what, source })?;
            out.push((at, record));
        }
        Ok(out)
    }

    /// The edges at one end of `node`, in chain order.
    pub fn edges(&self, node: &str, end: End) -> Result<Vec<At<EdgeRecord>>, StoreError> {
        let mut prefix = node_key(PREFIX_EDGE, node);
        prefix.push(end.tag());
        self.scan("lineage edge", prefix, 2)
    }

    /// The edges of one kind at one end of `node`, in chain order.
    pub fn edges_of_kind(
        &self,
        node: &str,
        end: End,
        kind: EdgeKind,
    ) -> Result<Vec<At<EdgeRecord>>, StoreError> {
        let mut prefix = node_key(PREFIX_EDGE, node);
        prefix.push(end.tag());
        prefix.push(kind_tag(kind));
        self.scan("lineage edge", prefix, 2)
    }

    /// Custody records of `node`, newest first.
    pub fn custody(&self, node: &str) -> Result<Vec<At<CustodyRecord>>, StoreError> {
        let mut records = self.scan("custody", node_key(PREFIX_CUSTODY, node), 0)?;
        records.reverse();
        Ok(records)
    }

    /// Quality facts about `node`, in chain order.
    pub fn facts(&self, node: &str) -> Result<Vec<At<FactRecord>>, StoreError> {
        self.scan("fact", node_key(PREFIX_FACT, node), 0)
    }

    /// Recall orders naming `node` as a suspect, in chain order.
    pub fn recalls(&self, node: &str) -> Result<Vec<At<RecallRecord>>, StoreError> {
        self.scan("recall", node_key(PREFIX_RECALL, node), 0)
    }

    /// The error declaration, by the same org and later in the chain, that
    /// retracts the event `event_id` stated at `at`; `None` if it stands.
    pub fn declaration(
        &self,
        event_id: &str,
        org: &str,
        at: Position,
    ) -> Result<Option<At<Declaration>>, StoreError> {
        let declarations: Vec<At<Declaration>> =
            self.scan("declaration", node_key(PREFIX_DECLARATION, event_id), 0)?;
        Ok(declarations
            .into_iter()
            .find(|(pos, d)| *pos > at && d.origin.org == org))
    }
}
