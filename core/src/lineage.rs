//! What one event says about lineage, custody and quality: a pure function of
//! the event and its signer's org.
//!
//! The node indexes these facts at commit, and the SDK re-derives them from
//! the attestations in a trace's proof bundle to check that every edge a node
//! served is really stated by a signed, certified event. One derivation, two
//! users: a served trace cannot claim an edge the chain does not hold.
//!
//! Direction is the flow of material: an edge goes from what existed before
//! (input, child, goods) to what it became part of (output, container,
//! receiver). A backward trace follows edges against that direction.

mod names;

use serde::{Deserialize, Serialize};

use crate::epcis::{Action, Event, EventType, QualityFact, QuantityElement, normalize_vocabulary};
use crate::gs1::Identifier;

pub use names::{Listed, Names};

/// How two identifiers are related.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum EdgeKind {
    /// An input of a TransformationEvent went into an output.
    TransformedInto,
    /// A lot was serialised into an item (commissioning with `lotNumber`).
    Serialised,
    /// A child was packed into a container (AggregationEvent ADD/OBSERVE).
    PackedIn,
    /// A child was associated with a parent (AssociationEvent ADD/OBSERVE).
    AssociatedWith,
    /// Goods were shipped to a party or location (`destinationList`).
    ShippedTo,
}

impl EdgeKind {
    /// Edges a recall follows: the material and its containers, not the
    /// parties goods were shipped to (those are reported as holders).
    pub fn carries_material(self) -> bool {
        !matches!(self, EdgeKind::ShippedTo)
    }
}

/// An amount of a class-level identifier.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Quantity {
    pub value: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uom: Option<String>,
}

/// One lineage edge, identifiers in canonical form.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Edge {
    pub from: String,
    pub to: String,
    pub kind: EdgeKind,
    /// How much of `to` the event names (output or child quantity).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantity: Option<Quantity>,
}

/// Where goods are after an event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "camelCase")]
pub enum CustodyState {
    /// Held by the signing org, at `location` if the event named one.
    #[serde(rename_all = "camelCase")]
    Held { location: Option<String> },
    /// Shipped and not yet received; the destination as the event named it.
    #[serde(rename_all = "camelCase")]
    InTransit {
        to_party: Option<String>,
        to_location: Option<String>,
    },
    /// Decommissioned or destroyed.
    Ended,
}

/// A change of custody of some identifiers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Custody {
    pub subjects: Vec<String>,
    pub state: CustodyState,
}

/// A sensor reading summarised for traces: one entry per report type.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SensorSummary {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uom: Option<String>,
}

/// A quality or condition fact about some identifiers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Fact {
    pub subjects: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quality: Option<QualityFact>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sensors: Vec<SensorSummary>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disposition: Option<String>,
}

/// A recall order over suspect identifiers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecallOrder {
    pub recall_id: String,
    pub reason: String,
    pub class: crate::epcis::RecallClass,
    /// Canonical identifiers of the suspect lots or items.
    pub scope: Vec<String>,
}

/// Everything one event contributes.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Derived {
    pub edges: Vec<Edge>,
    pub custody: Option<Custody>,
    pub facts: Vec<Fact>,
    pub recall: Option<RecallOrder>,
    /// The `eventID` this event declares erroneous (an error declaration
    /// contributes nothing else: it repeats the event it retracts).
    pub retracts: Option<String>,
}

impl Derived {
    pub fn is_empty(&self) -> bool {
        self.edges.is_empty()
            && self.custody.is_none()
            && self.facts.is_empty()
            && self.recall.is_none()
            && self.retracts.is_none()
    }
}

/// Bounds a single event's fan-out (inputs × outputs): an event may list many
/// inputs and outputs, but the graph keeps at most this many edges from it.
pub const EDGES_PER_EVENT_MAX: usize = 4096;

/// bizSteps after which the signer holds the goods.
const HOLDING_STEPS: &[&str] = &[
    "commissioning",
    "creating_class_instance",
    "receiving",
    "accepting",
    "arriving",
    "storing",
    "packing",
    "unpacking",
    "loading",
    "staging_outbound",
];
/// bizSteps after which goods are on their way to the destination.
const TRANSIT_STEPS: &[&str] = &["shipping", "departing"];
/// bizSteps after which goods no longer exist.
const ENDING_STEPS: &[&str] = &["decommissioning", "destroying"];

/// The canonical form of an identifier, or the string as sent when it is not
/// one Lotline parses (validation has already accepted it as a URI).
pub fn canonical(id: &str) -> String {
    Identifier::parse(id)
        .map(|i| i.canonical())
        .unwrap_or_else(|_| id.to_owned())
}

/// What `event` says about lineage, custody and quality.
pub fn derive(event: &Event) -> Derived {
    derive_named(event, &Names::of(event))
}

/// [`derive`], with the event's identifiers parsed already (`names`, of
/// this event): the node's indexer parses them once for the listing and
/// the derivation.
pub fn derive_named(event: &Event, names: &Names<'_>) -> Derived {
    if let Some(event_id) = event
        .error_declaration
        .as_ref()
        .and(event.event_id.as_deref())
    {
        return Derived {
            retracts: Some(event_id.to_owned()),
            ..Derived::default()
        };
    }
    // Canonical once: parsing is a sixth of the write path's CPU
    // (docs/performance.md), and edges, custody and facts each name them.
    let subjects = subjects(event, names);
    let mut derived = Derived {
        edges: edges(event, &subjects, names),
        custody: custody(event, &subjects, names),
        ..Derived::default()
    };
    derived.edges.truncate(EDGES_PER_EVENT_MAX);
    let sensors = sensors(event);
    if let Some(QualityFact::RecallOrder {
        recall_id,
        reason,
        class,
        scope,
    }) = &event.quality
    {
        derived.recall = Some(RecallOrder {
            recall_id: recall_id.clone(),
            reason: reason.clone(),
            class: *class,
            scope: dedup(scope.iter().map(|s| canonical(s)).collect()),
        });
    }
    let disposition = event.disposition.as_deref().map(normalize_vocabulary);
    let notable_disposition = disposition
        .filter(|d| matches!(d.as_str(), "recalled" | "damaged" | "destroyed" | "expired"));
    if !subjects.is_empty()
        && (event.quality.is_some() || !sensors.is_empty() || notable_disposition.is_some())
    {
        derived.facts.push(Fact {
            subjects,
            quality: event.quality.clone(),
            sensors,
            disposition: notable_disposition,
        });
    }
    derived
}

/// The identifiers an event is about, canonical, without locations.
fn subjects(event: &Event, names: &Names<'_>) -> Vec<String> {
    dedup(event.identifiers().map(|id| names.canonical(id)).collect())
}

fn dedup(mut ids: Vec<String>) -> Vec<String> {
    ids.sort();
    ids.dedup();
    ids
}

fn quantity(element: &QuantityElement) -> Option<Quantity> {
    element.quantity.map(|value| Quantity {
        value,
        uom: element.uom.clone(),
    })
}

/// A list's EPCs (no amount), then its quantity elements' classes with
/// their amounts, canonical.
fn with_amounts<'a>(
    names: &'a Names<'_>,
    epcs: &'a [String],
    quantities: &'a [QuantityElement],
) -> impl Iterator<Item = (String, Option<Quantity>)> + 'a {
    epcs.iter().map(|epc| (names.canonical(epc), None)).chain(
        quantities
            .iter()
            .map(|q| (names.canonical(&q.epc_class), quantity(q))),
    )
}

fn adds(event: &Event) -> bool {
    matches!(event.action, Some(Action::Add | Action::Observe))
}

/// `subjects`: the event's [`subjects`].
fn edges(event: &Event, subjects: &[String], names: &Names<'_>) -> Vec<Edge> {
    let mut out = Vec::new();
    match event.event_type {
        EventType::TransformationEvent => {
            let inputs: Vec<String> =
                with_amounts(names, &event.input_epc_list, &event.input_quantity_list)
                    .map(|(input, _)| input)
                    .collect();
            let outputs: Vec<(String, Option<Quantity>)> =
                with_amounts(names, &event.output_epc_list, &event.output_quantity_list).collect();
            for input in &inputs {
                for (output, amount) in &outputs {
                    if input != output {
                        out.push(Edge {
                            from: input.clone(),
                            to: output.clone(),
                            kind: EdgeKind::TransformedInto,
                            quantity: amount.clone(),
                        });
                    }
                }
            }
        }
        EventType::AggregationEvent | EventType::AssociationEvent if adds(event) => {
            let kind = if event.event_type == EventType::AggregationEvent {
                EdgeKind::PackedIn
            } else {
                EdgeKind::AssociatedWith
            };
            if let Some(parent) = event.parent_id.as_deref().map(|p| names.canonical(p)) {
                let children = with_amounts(names, &event.child_epcs, &event.child_quantity_list);
                for (child, amount) in children {
                    if child != parent {
                        out.push(Edge {
                            from: child,
                            to: parent.clone(),
                            kind,
                            quantity: amount,
                        });
                    }
                }
            }
        }
        EventType::ObjectEvent if event.action == Some(Action::Add) => {
            out.extend(serialisations(event, names));
        }
        _ => {}
    }
    if let Some(destination) = destination(event).filter(|_| in_transit(event)) {
        for subject in subjects {
            out.push(Edge {
                from: subject.clone(),
                to: destination.clone(),
                kind: EdgeKind::ShippedTo,
                quantity: None,
            });
        }
    }
    out
}

/// Commissioning serials with a `lotNumber` in ilmd ties each item to its
/// lot: `/01/{gtin}/10/{lot}` → `/01/{gtin}/21/{serial}`.
fn serialisations(event: &Event, names: &Names<'_>) -> Vec<Edge> {
    let Some(lot) = event.ilmd.as_ref().and_then(|ilmd| {
        ilmd.iter()
            .find(|(k, _)| k.as_str() == "lotNumber" || k.ends_with(":lotNumber"))
            .and_then(|(_, v)| v.as_str())
    }) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    // An event commissions serials of one GTIN or a few: each lot's
    // identifier is made once per run of serials of its GTIN.
    let mut last_lot: Option<(crate::gs1::Gtin, String)> = None;
    for epc in &event.epc_list {
        let Some(item) = names.identifier(epc) else {
            continue;
        };
        let (Identifier::Item { .. }, Some(gtin)) = (item.as_ref(), item.gtin()) else {
            continue;
        };
        let from = match &last_lot {
            Some((last, lot_id)) if last == gtin => lot_id.clone(),
            _ => {
                let Ok(lot_id) = Identifier::lot(gtin.clone(), lot) else {
                    continue;
                };
                let lot_id = lot_id.canonical();
                last_lot = Some((gtin.clone(), lot_id.clone()));
                lot_id
            }
        };
        out.push(Edge {
            from,
            to: names.canonical(epc),
            kind: EdgeKind::Serialised,
            quantity: None,
        });
    }
    out
}

fn step(event: &Event) -> Option<String> {
    event.biz_step_short()
}

fn in_transit(event: &Event) -> bool {
    step(event).is_some_and(|s| TRANSIT_STEPS.contains(&s.as_str()))
        || event
            .disposition
            .as_deref()
            .is_some_and(|d| normalize_vocabulary(d) == "in_transit")
}

/// The first destination of a kind (`owning_party`, `location`, ...).
fn destination_of(event: &Event, kind: &str) -> Option<String> {
    event
        .destination_list
        .iter()
        .find(|d| normalize_vocabulary(&d.kind) == kind)
        .map(|d| canonical(&d.destination))
}

/// The party a shipment goes to: owning, else possessing.
fn destination_party(event: &Event) -> Option<String> {
    destination_of(event, "owning_party").or_else(|| destination_of(event, "possessing_party"))
}

/// The carrier of a shipment in transit: the `possessing_party` of its
/// destination list when the list names another party as the goods'
/// `owning_party` (the haulier or logistics provider that holds the goods
/// on their way to their next owner). `None` for events that are not
/// shipments (they derive no [`EdgeKind::ShippedTo`] edge) and for goods
/// their next owner also possesses on arrival. The goods it carried are
/// the subjects of the event's `ShippedTo` edges.
pub fn carrier(event: &Event) -> Option<String> {
    if !in_transit(event) {
        return None;
    }
    let owner = destination_of(event, "owning_party")?;
    destination_of(event, "possessing_party").filter(|party| *party != owner)
}

/// The destination of a shipment: its party, else its location.
fn destination(event: &Event) -> Option<String> {
    destination_party(event).or_else(|| destination_of(event, "location"))
}

/// `event_subjects`: the event's [`subjects`].
fn custody(event: &Event, event_subjects: &[String], names: &Names<'_>) -> Option<Custody> {
    let step = step(event);
    let step = step.as_deref();
    let subjects: Vec<String> = if event.event_type == EventType::TransformationEvent {
        dedup(
            with_amounts(names, &event.output_epc_list, &event.output_quantity_list)
                .map(|(output, _)| output)
                .collect(),
        )
    } else {
        event_subjects.to_vec()
    };
    if subjects.is_empty() {
        return None;
    }
    let location = event
        .biz_location
        .as_ref()
        .map(|l| names.canonical(&l.id))
        .or_else(|| event.read_point.as_ref().map(|l| names.canonical(&l.id)));
    let state = if in_transit(event) {
        CustodyState::InTransit {
            to_party: destination_party(event),
            to_location: destination_of(event, "location"),
        }
    } else if step.is_some_and(|s| ENDING_STEPS.contains(&s)) {
        CustodyState::Ended
    } else if event.event_type == EventType::TransformationEvent
        || step.is_some_and(|s| HOLDING_STEPS.contains(&s))
    {
        CustodyState::Held { location }
    } else {
        return None;
    };
    Some(Custody { subjects, state })
}

fn sensors(event: &Event) -> Vec<SensorSummary> {
    let mut out: Vec<SensorSummary> = Vec::new();
    for report in event
        .sensor_element_list
        .iter()
        .flat_map(|e| &e.sensor_report)
    {
        let Some(kind) = report.kind.as_deref() else {
            continue;
        };
        let kind = kind
            .rsplit([':', '#', '/'])
            .next()
            .unwrap_or(kind)
            .to_owned();
        let low = report.min_value.or(report.value).or(report.mean_value);
        let high = report.max_value.or(report.value).or(report.mean_value);
        match out
            .iter_mut()
            .find(|s| s.kind == kind && s.uom == report.uom)
        {
            Some(summary) => {
                summary.min = min_opt(summary.min, low);
                summary.max = max_opt(summary.max, high);
            }
            None => out.push(SensorSummary {
                kind,
                min: low,
                max: high,
                uom: report.uom.clone(),
            }),
        }
    }
    out
}

fn min_opt(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn max_opt(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}
