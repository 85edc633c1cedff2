use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::quality::QualityFact;

/// The five EPCIS 2.0 event types.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum EventType {
    ObjectEvent,
    AggregationEvent,
    TransactionEvent,
    TransformationEvent,
    AssociationEvent,
}

impl EventType {
    pub const ALL: [EventType; 5] = [
        EventType::ObjectEvent,
        EventType::AggregationEvent,
        EventType::TransactionEvent,
        EventType::TransformationEvent,
        EventType::AssociationEvent,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::ObjectEvent => "ObjectEvent",
            EventType::AggregationEvent => "AggregationEvent",
            EventType::TransactionEvent => "TransactionEvent",
            EventType::TransformationEvent => "TransformationEvent",
            EventType::AssociationEvent => "AssociationEvent",
        }
    }
}

impl std::str::FromStr for EventType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EventType::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| format!("unknown event type {s:?}"))
    }
}

/// ADD, OBSERVE or DELETE.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Action {
    #[serde(rename = "ADD")]
    Add,
    #[serde(rename = "OBSERVE")]
    Observe,
    #[serde(rename = "DELETE")]
    Delete,
}

impl Action {
    /// The action as EPCIS writes it (its JSON form).
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Add => "ADD",
            Action::Observe => "OBSERVE",
            Action::Delete => "DELETE",
        }
    }
}

/// A class-level quantity: `quantity` of `epcClass` in unit `uom`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QuantityElement {
    pub epc_class: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantity: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uom: Option<String>,
    #[serde(flatten)]
    pub extensions: BTreeMap<String, Value>,
}

/// A read point or business location: `{ "id": ... }`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Location {
    pub id: String,
    #[serde(flatten)]
    pub extensions: BTreeMap<String, Value>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BizTransaction {
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    pub biz_transaction: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Source {
    #[serde(rename = "type")]
    pub kind: String,
    pub source: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Destination {
    #[serde(rename = "type")]
    pub kind: String,
    pub destination: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PersistentDisposition {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub set: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unset: Vec<String>,
}

/// A correction: this event was in error (EPCIS 2.0 section 7.4.1.4).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorDeclaration {
    pub declaration_time: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(
        default,
        rename = "correctiveEventIDs",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub corrective_event_ids: Vec<String>,
    #[serde(flatten)]
    pub extensions: BTreeMap<String, Value>,
}

/// One sensor element: metadata plus reports (EPCIS 2.0 section 7.3.8).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SensorElement {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sensor_metadata: Option<BTreeMap<String, Value>>,
    pub sensor_report: Vec<SensorReport>,
    #[serde(flatten)]
    pub extensions: BTreeMap<String, Value>,
}

/// One sensor report. Numeric fields are typed because queries filter on
/// them (e.g. `GT_maxValue_CEL=8`); everything else is kept verbatim.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SensorReport {
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_value: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_value: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mean_value: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uom: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
    #[serde(flatten)]
    pub extensions: BTreeMap<String, Value>,
}

/// An EPCIS 2.0 event. One struct for all five types; which fields a type may
/// carry is checked by validation, so a misplaced field gets a precise error.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    #[serde(rename = "type")]
    pub event_type: EventType,
    #[serde(default, rename = "eventID", skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    pub event_time: String,
    pub event_time_zone_offset: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certification_info: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_declaration: Option<ErrorDeclaration>,

    // what
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<Action>,
    #[serde(default, rename = "epcList", skip_serializing_if = "Vec::is_empty")]
    pub epc_list: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub quantity_list: Vec<QuantityElement>,
    #[serde(default, rename = "parentID", skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<String>,
    #[serde(default, rename = "childEPCs", skip_serializing_if = "Vec::is_empty")]
    pub child_epcs: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub child_quantity_list: Vec<QuantityElement>,
    #[serde(
        default,
        rename = "inputEPCList",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub input_epc_list: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub input_quantity_list: Vec<QuantityElement>,
    #[serde(
        default,
        rename = "outputEPCList",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub output_epc_list: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub output_quantity_list: Vec<QuantityElement>,
    #[serde(
        default,
        rename = "transformationID",
        skip_serializing_if = "Option::is_none"
    )]
    pub transformation_id: Option<String>,

    // why
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub biz_step: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disposition: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persistent_disposition: Option<PersistentDisposition>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub biz_transaction_list: Vec<BizTransaction>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub source_list: Vec<Source>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub destination_list: Vec<Destination>,

    // where
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_point: Option<Location>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub biz_location: Option<Location>,

    // how
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sensor_element_list: Vec<SensorElement>,

    /// Instance/lot master data (ObjectEvent ADD, TransformationEvent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ilmd: Option<BTreeMap<String, Value>>,

    /// Lotline's namespaced quality extension.
    #[serde(
        default,
        rename = "lotline:quality",
        skip_serializing_if = "Option::is_none"
    )]
    pub quality: Option<QualityFact>,

    /// Every other key. Only namespaced user extensions (`prefix:name`) pass
    /// validation; a bare unknown key is rejected as an unknown field.
    #[serde(flatten)]
    pub extensions: BTreeMap<String, Value>,
}

impl Event {
    /// The bizStep in CBV short form (`shipping`), whichever form was sent.
    pub fn biz_step_short(&self) -> Option<String> {
        self.biz_step.as_deref().map(super::normalize_vocabulary)
    }

    /// Every identifier the event is about, as sent (not canonicalised):
    /// EPCs, classes, parent, inputs, outputs.
    pub fn identifiers(&self) -> impl Iterator<Item = &str> {
        let quantities = self
            .quantity_list
            .iter()
            .chain(&self.child_quantity_list)
            .chain(&self.input_quantity_list)
            .chain(&self.output_quantity_list)
            .map(|q| q.epc_class.as_str());
        self.epc_list
            .iter()
            .chain(&self.child_epcs)
            .chain(&self.input_epc_list)
            .chain(&self.output_epc_list)
            .map(String::as_str)
            .chain(self.parent_id.as_deref())
            .chain(quantities)
    }
}
