//! The JSON shapes of traces and recall scopes (`GET /v1/trace/{id}`,
//! `POST /v1/recalls/scope`), shared by the node and the SDK.
//!
//! Every edge, fact and custody entry names the attestation that states it and
//! the block height that certified it; with `proofs=true` the trace carries a
//! receipt per attestation so the whole graph can be checked offline
//! (`lotline_sdk::verify_trace`).

use serde::{Deserialize, Serialize};

use crate::attestation::AttestationId;
use crate::epcis::{QualityFact, RecallClass};
use crate::gs1::Identifier;
use crate::lineage::{CustodyState, EdgeKind, Quantity, SensorSummary};
use crate::receipt::Receipt;

/// Which way a trace follows the material.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// From a product back to its inputs and suppliers (向前查源).
    #[default]
    Backward,
    /// From a material forward to what it became and where it went (向后追踪).
    Forward,
}

/// What an identifier names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum NodeKind {
    Item,
    Lot,
    Product,
    Container,
    Location,
    Other,
}

impl NodeKind {
    /// The kind of a canonical identifier.
    pub fn of(id: &str) -> NodeKind {
        Identifier::parse(id).map_or(NodeKind::Other, |id| NodeKind::of_identifier(&id))
    }

    /// The kind of a parsed identifier.
    pub fn of_identifier(id: &Identifier) -> NodeKind {
        match id {
            Identifier::Item { .. } => NodeKind::Item,
            Identifier::Lot { .. } => NodeKind::Lot,
            Identifier::Product { .. } => NodeKind::Product,
            Identifier::Sscc(_) => NodeKind::Container,
            Identifier::Location { .. } => NodeKind::Location,
            Identifier::Other(_) => NodeKind::Other,
        }
    }

    /// Physical units a recall is about (not places).
    pub fn is_unit(self) -> bool {
        matches!(
            self,
            NodeKind::Item | NodeKind::Lot | NodeKind::Product | NodeKind::Container
        )
    }
}

/// Where a statement sits: the attestation and the block that certified it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Source {
    pub attestation: AttestationId,
    pub height: u64,
    pub org: String,
    pub event_time: String,
}

/// The latest custody of a unit (its own, or its container's if later).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Holder {
    pub org: String,
    #[serde(flatten)]
    pub state: CustodyState,
    /// The identifier whose custody record this is (the unit or a container).
    pub via: String,
    pub source: Source,
}

/// An active recall order that covers a node (directly or through an input).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecallMark {
    pub recall_id: String,
    pub class: RecallClass,
    pub reason: String,
    /// The suspect identifier the order named.
    pub suspect: String,
    pub source: Source,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TraceNode {
    pub id: String,
    pub kind: NodeKind,
    /// Edges from the root.
    pub depth: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub holder: Option<Holder>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recalled: Option<RecallMark>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TraceEdge {
    pub from: String,
    pub to: String,
    pub kind: EdgeKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantity: Option<Quantity>,
    pub source: Source,
}

/// An inspection, non-conformance, certificate, sensor summary or notable
/// disposition about a node.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TraceFact {
    pub subject: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub biz_step: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quality: Option<QualityFact>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sensors: Vec<SensorSummary>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disposition: Option<String>,
    pub source: Source,
}

/// An event declared erroneous that the trace therefore ignored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Correction {
    #[serde(rename = "eventID")]
    pub event_id: String,
    /// The retracted attestation.
    pub retracted: AttestationId,
    /// The error declaration.
    pub declaration: Source,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `GET /v1/trace/{id}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Trace {
    pub root: String,
    pub direction: Direction,
    pub depth: u32,
    pub nodes: Vec<TraceNode>,
    pub edges: Vec<TraceEdge>,
    pub facts: Vec<TraceFact>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub corrections: Vec<Correction>,
    /// True when the depth or node limit cut the graph short.
    pub truncated: bool,
    /// One receipt per attestation the trace cites (`proofs=true`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub receipts: Vec<Receipt>,
}

/// `POST /v1/recalls/scope`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RecallScopeRequest {
    /// Suspect lots or items (Digital Link or EPC URN).
    pub suspects: Vec<String>,
    /// Only follow lineage stated by events at or after this time (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// ... and before this time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AffectedUnit {
    pub id: String,
    pub kind: NodeKind,
    /// Edges from the nearest suspect.
    pub depth: u32,
    /// The amount the producing or packing event stated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantity: Option<Quantity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub holder: Option<Holder>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recalled: Option<RecallMark>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScopeTotals {
    pub units: u64,
    pub items: u64,
    pub lots: u64,
    pub containers: u64,
    /// Summed class-level quantities, one per unit of measure.
    pub quantities: Vec<Quantity>,
    /// Units per current holder org (in transit counts for the receiver's
    /// party as named, under the shipper's org).
    pub by_holder: Vec<HolderCount>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HolderCount {
    pub org: String,
    pub in_transit: bool,
    pub units: u64,
}

/// The answer to a recall scope request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecallScope {
    pub suspects: Vec<String>,
    pub units: Vec<AffectedUnit>,
    pub totals: ScopeTotals,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub corrections: Vec<Correction>,
    pub truncated: bool,
}
