//! Event validation: every rule an EPCIS event must pass before a member may
//! attest it, reporting *all* problems at once.
//!
//! The per-type rules follow the EPCIS 2.0 JSON Schema
//! (`shared/standards/EPCIS-JSON-Schema.json`): which fields each event type
//! may carry, which are required, and which vocabulary forms are accepted.
//! Where the schema is looser than the standard's text, the text wins
//! (an AggregationEvent needs `parentID` unless its action is OBSERVE).
//! On top come Lotline's own rules: identifiers must parse as
//! [`Identifier`]s and be of the right level (instance in `epcList`, class in
//! `quantityList`), quantities and sensor values must be possible, and the
//! `lotline:quality` extension must be self-consistent.
//!
//! Two limits of the event model show through: an empty list is
//! indistinguishable from an absent one (so `"epcList": []` counts as absent),
//! and the keys of `bizTransactionList`, `sourceList`, `destinationList` and
//! `persistentDisposition` entries are not kept beyond the typed ones, so an
//! unknown key there cannot be reported.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde_json::Value;

use super::cbv::{
    BIZ_STEP, BIZ_TRANSACTION_TYPE, COMPONENT, DISPOSITION, ERROR_REASON, MEASUREMENT_TYPE,
    SENSOR_ALERT_TYPE, SOURCE_DESTINATION_TYPE, Vocabulary,
};
use super::{
    Action, DocumentRef, Event, EventType, InspectionResult, Location, QualityFact,
    QuantityElement, SensorElement, SensorReport,
};
use crate::gs1::{Identifier, is_absolute_uri};
use crate::limits::{EVENT_IDENTIFIERS_MAX, IDENTIFIER_BYTES_MAX};
use crate::time;

/// One problem found in an event, naming the field.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct EventProblem {
    /// Path of the field relative to the event, JSON-pointer-ish:
    /// `epcList[2]`, `sensorElementList[0].sensorReport[1].minValue`,
    /// `lotline:quality.measurements[0]`. A caller holding the event inside
    /// something else prefixes it (`event.epcList[2]` in a statement).
    pub field: String,
    pub reason: String,
}

/// CBV vocabulary short form: `urn:epcglobal:cbv:bizstep:shipping` and
/// `https://ref.gs1.org/cbv/BizStep-shipping` both become `shipping`.
pub fn normalize_vocabulary(value: &str) -> String {
    if let Some(rest) = value.strip_prefix("urn:epcglobal:cbv:") {
        return rest.rsplit(':').next().unwrap_or(rest).to_owned();
    }
    if let Some(rest) = value.strip_prefix("https://ref.gs1.org/cbv/") {
        return rest
            .split_once('-')
            .map(|(_, s)| s)
            .unwrap_or(rest)
            .to_owned();
    }
    value.to_owned()
}

/// Event fields beyond the common ones, as the schema allows them per type.
const OBJECT_FIELDS: &[&str] = &[
    "action",
    "epcList",
    "quantityList",
    "bizStep",
    "disposition",
    "persistentDisposition",
    "readPoint",
    "bizLocation",
    "bizTransactionList",
    "sourceList",
    "destinationList",
    "sensorElementList",
    "ilmd",
];
const AGGREGATION_FIELDS: &[&str] = &[
    "parentID",
    "childEPCs",
    "childQuantityList",
    "action",
    "bizStep",
    "disposition",
    "readPoint",
    "bizLocation",
    "bizTransactionList",
    "sourceList",
    "destinationList",
    "sensorElementList",
];
const TRANSACTION_FIELDS: &[&str] = &[
    "bizTransactionList",
    "parentID",
    "epcList",
    "quantityList",
    "action",
    "bizStep",
    "disposition",
    "readPoint",
    "bizLocation",
    "sourceList",
    "destinationList",
    "sensorElementList",
];
const TRANSFORMATION_FIELDS: &[&str] = &[
    "inputEPCList",
    "inputQuantityList",
    "outputEPCList",
    "outputQuantityList",
    "transformationID",
    "bizStep",
    "disposition",
    "persistentDisposition",
    "readPoint",
    "bizLocation",
    "bizTransactionList",
    "sourceList",
    "destinationList",
    "sensorElementList",
    "ilmd",
];
/// AssociationEvent allows the same fields as AggregationEvent.
const ASSOCIATION_FIELDS: &[&str] = AGGREGATION_FIELDS;

/// Standard `sensorMetadata` keys.
const SENSOR_METADATA_KEYS: &[&str] = &[
    "time",
    "startTime",
    "endTime",
    "deviceID",
    "deviceMetadata",
    "rawData",
    "dataProcessingMethod",
    "bizRules",
];

/// Standard `sensorReport` keys the model keeps in `extensions`, by the JSON
/// type their value must have.
const SENSOR_REPORT_URI_KEYS: &[&str] = &[
    "deviceID",
    "deviceMetadata",
    "rawData",
    "dataProcessingMethod",
    "bizRules",
    "microorganism",
    "chemicalSubstance",
    "coordinateReferenceSystem",
    "uriValue",
];
const SENSOR_REPORT_NUMBER_KEYS: &[&str] = &["sDev", "percRank", "percValue"];

/// Where an identifier sits decides which kinds of identifier fit there.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Level {
    /// EPC lists and parentID: one physical thing.
    Instance,
    /// `epcClass`: a lot or product.
    Class,
    /// readPoint, bizLocation, sources and destinations.
    Place,
}

#[derive(Default)]
struct Problems(Vec<EventProblem>);

impl Problems {
    fn add(&mut self, field: impl Into<String>, reason: impl fmt::Display) {
        self.0.push(EventProblem {
            field: field.into(),
            reason: reason.to_string(),
        });
    }

    fn time(&mut self, field: impl Into<String>, value: &str) -> Option<i64> {
        match time::parse_rfc3339_ms(value) {
            Ok(ms) => Some(ms),
            Err(e) => {
                self.add(field, e);
                None
            }
        }
    }

    fn date_or_time(&mut self, field: impl Into<String>, value: &str) -> Option<i64> {
        match time::parse_date_or_rfc3339_ms(value) {
            Ok(ms) => Some(ms),
            Err(e) => {
                self.add(field, e);
                None
            }
        }
    }

    /// An absolute URI of bounded length.
    fn uri(&mut self, field: impl Into<String>, value: &str) {
        if value.is_empty() {
            self.add(field, "empty; expected an absolute URI");
        } else if value.len() > IDENTIFIER_BYTES_MAX {
            self.add(
                field,
                format!(
                    "{} bytes long, more than the {IDENTIFIER_BYTES_MAX} allowed",
                    value.len()
                ),
            );
        } else if !is_absolute_uri(value) {
            self.add(field, format!("{value:?} is not an absolute URI"));
        }
    }

    /// A short text (code, name, id) that must be present and bounded.
    fn short_text(&mut self, field: impl Into<String>, value: &str) {
        if value.trim().is_empty() {
            self.add(field, "empty");
        } else if value.len() > IDENTIFIER_BYTES_MAX {
            self.add(
                field,
                format!(
                    "{} bytes long, more than the {IDENTIFIER_BYTES_MAX} allowed",
                    value.len()
                ),
            );
        }
    }

    fn finite(&mut self, field: impl Into<String>, value: f64) -> bool {
        if value.is_finite() {
            true
        } else {
            self.add(field, format!("{value} is not a finite number"));
            false
        }
    }

    /// A term of `vocabulary` (short, URN or GS1 web URI form) or a URI of
    /// the user's own vocabulary.
    fn vocabulary(&mut self, field: impl Into<String>, value: &str, vocabulary: &Vocabulary) {
        if let Err(reason) = vocabulary.check(value) {
            self.add(field, reason);
        }
    }

    /// Keys of a user-extension map must be namespaced (`prefix:name` or a
    /// full IRI); `allowed` lists the bare keys that are standard there.
    fn extension_keys<'a>(
        &mut self,
        path: &str,
        keys: impl IntoIterator<Item = &'a String>,
        allowed: &[&str],
        what: &str,
    ) {
        for key in keys {
            if !allowed.contains(&key.as_str()) && !is_absolute_uri(key) {
                self.add(
                    join(path, key),
                    format!("unknown field {key:?} in {what} (extensions need a namespace prefix)"),
                );
            }
        }
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

fn type_fields(event_type: EventType) -> &'static [&'static str] {
    match event_type {
        EventType::ObjectEvent => OBJECT_FIELDS,
        EventType::AggregationEvent => AGGREGATION_FIELDS,
        EventType::TransactionEvent => TRANSACTION_FIELDS,
        EventType::TransformationEvent => TRANSFORMATION_FIELDS,
        EventType::AssociationEvent => ASSOCIATION_FIELDS,
    }
}

impl Event {
    /// Every problem with the event; empty when it is valid.
    pub fn validate(&self) -> Vec<EventProblem> {
        let mut p = Problems::default();
        self.check_when(&mut p);
        self.check_shape(&mut p);
        self.check_what(&mut p);
        self.check_why(&mut p);
        self.check_where(&mut p);
        self.check_how(&mut p);
        self.check_extensions(&mut p);
        if let Some(quality) = &self.quality {
            check_quality(&mut p, quality, self.event_time_ms());
        }
        p.0
    }

    /// The typed fields this event carries, by JSON name (beyond the common
    /// ones every type has).
    fn present_fields(&self) -> Vec<&'static str> {
        let fields: [(&'static str, bool); 21] = [
            ("action", self.action.is_some()),
            ("epcList", !self.epc_list.is_empty()),
            ("quantityList", !self.quantity_list.is_empty()),
            ("parentID", self.parent_id.is_some()),
            ("childEPCs", !self.child_epcs.is_empty()),
            ("childQuantityList", !self.child_quantity_list.is_empty()),
            ("inputEPCList", !self.input_epc_list.is_empty()),
            ("inputQuantityList", !self.input_quantity_list.is_empty()),
            ("outputEPCList", !self.output_epc_list.is_empty()),
            ("outputQuantityList", !self.output_quantity_list.is_empty()),
            ("transformationID", self.transformation_id.is_some()),
            ("bizStep", self.biz_step.is_some()),
            ("disposition", self.disposition.is_some()),
            (
                "persistentDisposition",
                self.persistent_disposition.is_some(),
            ),
            ("bizTransactionList", !self.biz_transaction_list.is_empty()),
            ("sourceList", !self.source_list.is_empty()),
            ("destinationList", !self.destination_list.is_empty()),
            ("readPoint", self.read_point.is_some()),
            ("bizLocation", self.biz_location.is_some()),
            ("sensorElementList", !self.sensor_element_list.is_empty()),
            ("ilmd", self.ilmd.is_some()),
        ];
        fields
            .into_iter()
            .filter(|(_, present)| *present)
            .map(|(name, _)| name)
            .collect()
    }

    /// eventTime, recordTime, eventTimeZoneOffset, eventID, certificationInfo,
    /// errorDeclaration.
    fn check_when(&self, p: &mut Problems) {
        p.time("eventTime", &self.event_time);
        if let Some(record_time) = &self.record_time {
            p.time("recordTime", record_time);
        }
        if let Err(e) = time::parse_offset_minutes(&self.event_time_zone_offset) {
            p.add("eventTimeZoneOffset", e);
        }
        if let Some(id) = &self.event_id {
            p.uri("eventID", id);
        }
        match &self.certification_info {
            None => {}
            Some(Value::String(uri)) => p.uri("certificationInfo", uri),
            Some(Value::Array(items)) => {
                for (i, item) in items.iter().enumerate() {
                    match item {
                        Value::String(uri) => p.uri(format!("certificationInfo[{i}]"), uri),
                        _ => p.add(format!("certificationInfo[{i}]"), "expected a URI string"),
                    }
                }
            }
            Some(_) => p.add("certificationInfo", "expected a URI or a list of URIs"),
        }
        if let Some(declaration) = &self.error_declaration {
            p.time(
                "errorDeclaration.declarationTime",
                &declaration.declaration_time,
            );
            if let Some(reason) = &declaration.reason {
                p.vocabulary("errorDeclaration.reason", reason, &ERROR_REASON);
            }
            for (i, id) in declaration.corrective_event_ids.iter().enumerate() {
                p.uri(format!("errorDeclaration.correctiveEventIDs[{i}]"), id);
            }
            p.extension_keys(
                "errorDeclaration",
                declaration.extensions.keys(),
                &[],
                "errorDeclaration",
            );
        }
    }

    /// Which fields the event type allows and which it requires.
    fn check_shape(&self, p: &mut Problems) {
        let kind = self.event_type.as_str();
        let allowed = type_fields(self.event_type);
        for field in self.present_fields() {
            if !allowed.contains(&field) {
                p.add(field, format!("{field} is not a field of {kind}"));
            }
        }
        let action = self.action;
        let require_action = |p: &mut Problems| {
            if action.is_none() {
                p.add("action", format!("action is required in {kind}"));
            }
        };
        let deleting = action == Some(Action::Delete);
        match self.event_type {
            EventType::ObjectEvent => {
                require_action(p);
                let has_sensor_data =
                    !self.sensor_element_list.is_empty() && self.read_point.is_some();
                if self.epc_list.is_empty() && self.quantity_list.is_empty() && !has_sensor_data {
                    p.add(
                        "epcList",
                        "an ObjectEvent needs a non-empty epcList or quantityList, \
                         or sensorElementList with a readPoint",
                    );
                }
                if self.ilmd.is_some() && action != Some(Action::Add) {
                    p.add(
                        "ilmd",
                        "ilmd is allowed only in an ObjectEvent with action ADD",
                    );
                }
            }
            EventType::AggregationEvent | EventType::AssociationEvent => {
                require_action(p);
                let parent_optional = self.event_type == EventType::AggregationEvent
                    && action == Some(Action::Observe);
                if self.parent_id.is_none() && !parent_optional {
                    let when = if self.event_type == EventType::AggregationEvent {
                        " unless action is OBSERVE"
                    } else {
                        ""
                    };
                    p.add("parentID", format!("parentID is required in {kind}{when}"));
                }
                if self.child_epcs.is_empty() && self.child_quantity_list.is_empty() && !deleting {
                    p.add(
                        "childEPCs",
                        format!(
                            "{kind} needs childEPCs or childQuantityList unless action is DELETE"
                        ),
                    );
                }
            }
            EventType::TransactionEvent => {
                require_action(p);
                if self.biz_transaction_list.is_empty() {
                    p.add(
                        "bizTransactionList",
                        "a TransactionEvent needs at least one business transaction",
                    );
                }
                if self.epc_list.is_empty() && self.quantity_list.is_empty() && !deleting {
                    p.add(
                        "epcList",
                        "a TransactionEvent needs epcList or quantityList unless action is DELETE",
                    );
                }
            }
            EventType::TransformationEvent => {
                let inputs =
                    !self.input_epc_list.is_empty() || !self.input_quantity_list.is_empty();
                let outputs =
                    !self.output_epc_list.is_empty() || !self.output_quantity_list.is_empty();
                if !inputs && !outputs {
                    p.add(
                        "inputEPCList",
                        "a TransformationEvent needs at least one input or output",
                    );
                } else if self.transformation_id.is_none() {
                    if !inputs {
                        p.add(
                            "inputEPCList",
                            "a TransformationEvent without transformationID needs inputs",
                        );
                    }
                    if !outputs {
                        p.add(
                            "outputEPCList",
                            "a TransformationEvent without transformationID needs outputs",
                        );
                    }
                }
            }
        }
    }

    /// Identifiers (parse, level, duplicates, count) and quantities.
    fn check_what(&self, p: &mut Problems) {
        let count = self.identifiers().count();
        if count > EVENT_IDENTIFIERS_MAX {
            // Parsing them all would only produce a flood of problems.
            let reason = format!(
                "the event names {count} identifiers, more than the {EVENT_IDENTIFIERS_MAX} allowed"
            );
            p.add("epcList", reason);
            return;
        }
        let lists: [(&str, &Vec<String>); 4] = [
            ("epcList", &self.epc_list),
            ("childEPCs", &self.child_epcs),
            ("inputEPCList", &self.input_epc_list),
            ("outputEPCList", &self.output_epc_list),
        ];
        for (name, list) in lists {
            let mut seen: BTreeMap<String, usize> = BTreeMap::new();
            for (i, epc) in list.iter().enumerate() {
                let field = format!("{name}[{i}]");
                if let Some(id) = check_identifier(p, &field, epc, Level::Instance) {
                    let canonical = id.canonical();
                    match seen.get(&canonical) {
                        Some(first) => p.add(
                            field,
                            format!("{epc:?} names the same object as {name}[{first}]"),
                        ),
                        None => {
                            seen.insert(canonical, i);
                        }
                    }
                }
            }
        }
        if let Some(parent) = &self.parent_id {
            check_identifier(p, "parentID", parent, Level::Instance);
        }
        if let Some(id) = &self.transformation_id {
            p.uri("transformationID", id);
        }
        let quantity_lists: [(&str, &Vec<QuantityElement>); 4] = [
            ("quantityList", &self.quantity_list),
            ("childQuantityList", &self.child_quantity_list),
            ("inputQuantityList", &self.input_quantity_list),
            ("outputQuantityList", &self.output_quantity_list),
        ];
        for (name, list) in quantity_lists {
            for (i, element) in list.iter().enumerate() {
                check_quantity(p, &format!("{name}[{i}]"), element);
            }
        }
    }

    /// bizStep, disposition, persistentDisposition, business transactions,
    /// sources and destinations.
    fn check_why(&self, p: &mut Problems) {
        if let Some(step) = &self.biz_step {
            p.vocabulary("bizStep", step, &BIZ_STEP);
        }
        if let Some(disposition) = &self.disposition {
            p.vocabulary("disposition", disposition, &DISPOSITION);
        }
        if let Some(persistent) = &self.persistent_disposition {
            if persistent.set.is_empty() && persistent.unset.is_empty() {
                p.add(
                    "persistentDisposition",
                    "persistentDisposition needs set or unset",
                );
            }
            for (name, list) in [("set", &persistent.set), ("unset", &persistent.unset)] {
                for (i, value) in list.iter().enumerate() {
                    p.vocabulary(
                        format!("persistentDisposition.{name}[{i}]"),
                        value,
                        &DISPOSITION,
                    );
                }
            }
            for (i, value) in persistent.unset.iter().enumerate() {
                if persistent.set.contains(value) {
                    p.add(
                        format!("persistentDisposition.unset[{i}]"),
                        format!("{value:?} is both set and unset"),
                    );
                }
            }
        }
        for (i, transaction) in self.biz_transaction_list.iter().enumerate() {
            if let Some(kind) = &transaction.kind {
                p.vocabulary(
                    format!("bizTransactionList[{i}].type"),
                    kind,
                    &BIZ_TRANSACTION_TYPE,
                );
            }
            p.uri(
                format!("bizTransactionList[{i}].bizTransaction"),
                &transaction.biz_transaction,
            );
        }
        for (i, source) in self.source_list.iter().enumerate() {
            p.vocabulary(
                format!("sourceList[{i}].type"),
                &source.kind,
                &SOURCE_DESTINATION_TYPE,
            );
            check_identifier(
                p,
                &format!("sourceList[{i}].source"),
                &source.source,
                Level::Place,
            );
        }
        for (i, destination) in self.destination_list.iter().enumerate() {
            p.vocabulary(
                format!("destinationList[{i}].type"),
                &destination.kind,
                &SOURCE_DESTINATION_TYPE,
            );
            check_identifier(
                p,
                &format!("destinationList[{i}].destination"),
                &destination.destination,
                Level::Place,
            );
        }
    }

    fn check_where(&self, p: &mut Problems) {
        for (name, location) in [
            ("readPoint", &self.read_point),
            ("bizLocation", &self.biz_location),
        ] {
            if let Some(location) = location {
                check_location(p, name, location);
            }
        }
    }

    fn check_how(&self, p: &mut Problems) {
        for (i, element) in self.sensor_element_list.iter().enumerate() {
            check_sensor_element(p, &format!("sensorElementList[{i}]"), element);
        }
    }

    /// Event-level and ilmd keys beyond the typed fields.
    fn check_extensions(&self, p: &mut Problems) {
        p.extension_keys(
            "",
            self.extensions.keys(),
            &["@context"],
            self.event_type.as_str(),
        );
        if let Some(ilmd) = &self.ilmd {
            p.extension_keys("ilmd", ilmd.keys(), &[], "ilmd");
        }
        match super::master_data::element_of(self) {
            Some(Err(reason)) => p.add(super::master_data::KEY, reason),
            Some(Ok(element))
                if !super::master_data::VTYPES.contains(&element.vocabulary.as_str()) =>
            {
                p.add(
                    format!("{}.vocabulary", super::master_data::KEY),
                    format!(
                        "vocabulary type {:?} is not stored (only {})",
                        element.vocabulary,
                        super::master_data::VTYPES.join(", ")
                    ),
                )
            }
            _ => {}
        }
    }
}

/// Parses an identifier and checks it fits where it is.
fn check_identifier(
    p: &mut Problems,
    field: &str,
    value: &str,
    level: Level,
) -> Option<Identifier> {
    let id = match Identifier::parse(value) {
        Ok(id) => id,
        Err(e) => {
            p.add(field, e);
            return None;
        }
    };
    let misplaced = match (&id, level) {
        (Identifier::Lot { .. } | Identifier::Product { .. }, Level::Instance) => {
            Some("is a class-level identifier (lot or product); list it in a quantity list")
        }
        (
            Identifier::Item { .. } | Identifier::Sscc(_) | Identifier::Location { .. },
            Level::Class,
        ) => Some("is an instance-level identifier, not a class (lot or product)"),
        (
            Identifier::Item { .. }
            | Identifier::Lot { .. }
            | Identifier::Product { .. }
            | Identifier::Sscc(_),
            Level::Place,
        ) => Some("is not a location or party"),
        _ => None,
    };
    match misplaced {
        Some(reason) => {
            p.add(field, format!("{value:?} {reason}"));
            None
        }
        None => Some(id),
    }
}

fn check_quantity(p: &mut Problems, path: &str, element: &QuantityElement) {
    check_identifier(
        p,
        &format!("{path}.epcClass"),
        &element.epc_class,
        Level::Class,
    );
    if let Some(quantity) = element.quantity
        && !(quantity.is_finite() && quantity >= 0.0)
    {
        p.add(
            format!("{path}.quantity"),
            format!("impossible quantity {quantity}"),
        );
    }
    if let Some(uom) = &element.uom {
        let code = (2..=3).contains(&uom.len())
            && uom
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
        if !code {
            p.add(
                format!("{path}.uom"),
                format!("{uom:?} is not a UN/ECE Recommendation 20 unit code"),
            );
        }
        if element.quantity.is_none() {
            p.add(format!("{path}.uom"), "uom without quantity");
        }
    }
    // The schema closes quantity elements (additionalProperties: false).
    for key in element.extensions.keys() {
        p.add(
            join(path, key),
            format!(
                "unknown field {key:?}: a quantity element has only epcClass, quantity and uom"
            ),
        );
    }
}

fn check_location(p: &mut Problems, path: &str, location: &Location) {
    check_identifier(p, &format!("{path}.id"), &location.id, Level::Place);
    p.extension_keys(path, location.extensions.keys(), &[], path);
}

fn check_sensor_element(p: &mut Problems, path: &str, element: &SensorElement) {
    if let Some(metadata) = &element.sensor_metadata {
        let meta_path = format!("{path}.sensorMetadata");
        p.extension_keys(
            &meta_path,
            metadata.keys(),
            SENSOR_METADATA_KEYS,
            "sensorMetadata",
        );
        let mut times = [None, None];
        for (key, value) in metadata {
            let field = format!("{meta_path}.{key}");
            match (key.as_str(), value) {
                ("time" | "startTime" | "endTime", Value::String(s)) => {
                    let ms = p.time(field, s);
                    match key.as_str() {
                        "startTime" => times[0] = ms,
                        "endTime" => times[1] = ms,
                        _ => {}
                    }
                }
                ("time" | "startTime" | "endTime", _) => {
                    p.add(field, "expected an RFC 3339 time string")
                }
                (
                    "deviceID" | "deviceMetadata" | "rawData" | "dataProcessingMethod" | "bizRules",
                    Value::String(s),
                ) => p.uri(field, s),
                (
                    "deviceID" | "deviceMetadata" | "rawData" | "dataProcessingMethod" | "bizRules",
                    _,
                ) => p.add(field, "expected a URI string"),
                _ => {}
            }
        }
        if let [Some(start), Some(end)] = times
            && start > end
        {
            p.add(
                format!("{meta_path}.endTime"),
                "endTime is before startTime",
            );
        }
    }
    if element.sensor_report.is_empty() {
        p.add(
            format!("{path}.sensorReport"),
            "a sensor element needs at least one sensorReport",
        );
    }
    for (j, report) in element.sensor_report.iter().enumerate() {
        check_sensor_report(p, &format!("{path}.sensorReport[{j}]"), report);
    }
    p.extension_keys(path, element.extensions.keys(), &[], "sensorElement");
}

fn check_sensor_report(p: &mut Problems, path: &str, report: &SensorReport) {
    match &report.kind {
        Some(kind) => p.vocabulary(format!("{path}.type"), kind, &MEASUREMENT_TYPE),
        None => p.add(format!("{path}.type"), "type is required in a sensorReport"),
    }
    let numbers = [
        ("value", report.value),
        ("minValue", report.min_value),
        ("maxValue", report.max_value),
        ("meanValue", report.mean_value),
    ];
    let mut finite = [None; 4];
    for (k, (name, value)) in numbers.into_iter().enumerate() {
        if let Some(v) = value
            && p.finite(format!("{path}.{name}"), v)
        {
            finite[k] = Some(v);
        }
    }
    let [_, min, max, mean] = finite;
    if let (Some(min), Some(max)) = (min, max) {
        if min > max {
            p.add(
                format!("{path}.minValue"),
                format!("minValue {min} is greater than maxValue {max}"),
            );
        } else if let Some(mean) = mean
            && !(min..=max).contains(&mean)
        {
            p.add(
                format!("{path}.meanValue"),
                format!("meanValue {mean} is outside [minValue {min}, maxValue {max}]"),
            );
        }
    }
    if let Some(t) = &report.time {
        p.time(format!("{path}.time"), t);
    }
    if let Some(uom) = &report.uom {
        p.short_text(format!("{path}.uom"), uom);
    }
    let standard: Vec<&str> = SENSOR_REPORT_URI_KEYS
        .iter()
        .chain(SENSOR_REPORT_NUMBER_KEYS)
        .chain(&[
            "exception",
            "component",
            "stringValue",
            "booleanValue",
            "hexBinaryValue",
        ])
        .copied()
        .collect();
    p.extension_keys(path, report.extensions.keys(), &standard, "sensorReport");
    for (key, value) in &report.extensions {
        let field = format!("{path}.{key}");
        let key = key.as_str();
        match value {
            Value::String(s) if SENSOR_REPORT_URI_KEYS.contains(&key) => p.uri(field, s),
            Value::Number(_) if SENSOR_REPORT_NUMBER_KEYS.contains(&key) => {}
            Value::String(s) if key == "exception" => p.vocabulary(field, s, &SENSOR_ALERT_TYPE),
            Value::String(s) if key == "component" => p.vocabulary(field, s, &COMPONENT),
            Value::String(_) if key == "stringValue" => {}
            Value::Bool(_) if key == "booleanValue" => {}
            Value::String(s)
                if key == "hexBinaryValue"
                    && (s.is_empty() || !s.bytes().all(|b| b.is_ascii_hexdigit())) =>
            {
                p.add(field, format!("{s:?} is not hexadecimal"));
            }
            Value::String(_) if key == "hexBinaryValue" => {}
            _ if standard.contains(&key) => p.add(field, format!("wrong JSON type for {key}")),
            _ => {}
        }
    }
}

/// `lotline:quality`: self-consistency of the quality fact.
fn check_quality(p: &mut Problems, fact: &QualityFact, event_time_ms: Option<i64>) {
    const Q: &str = "lotline:quality";
    match fact {
        QualityFact::Inspection {
            result,
            method,
            measurements,
            instrument,
            ..
        } => {
            if let Some(method) = method {
                p.short_text(format!("{Q}.method"), method);
            }
            for (i, m) in measurements.iter().enumerate() {
                let path = format!("{Q}.measurements[{i}]");
                p.short_text(format!("{path}.name"), &m.name);
                let mut ok = p.finite(format!("{path}.value"), m.value);
                for (name, limit) in [("specMin", m.spec_min), ("specMax", m.spec_max)] {
                    if let Some(limit) = limit {
                        ok &= p.finite(format!("{path}.{name}"), limit);
                    }
                }
                if let (Some(min), Some(max)) = (m.spec_min, m.spec_max)
                    && min > max
                {
                    p.add(
                        format!("{path}.specMin"),
                        format!("specMin {min} is greater than specMax {max}"),
                    );
                    ok = false;
                }
                if ok && *result == InspectionResult::Pass && !m.within_spec() {
                    let spec = match (m.spec_min, m.spec_max) {
                        (Some(min), Some(max)) => format!("[{min}, {max}]"),
                        (Some(min), None) => format!(">= {min}"),
                        (None, Some(max)) => format!("<= {max}"),
                        (None, None) => String::new(),
                    };
                    p.add(
                        path,
                        format!(
                            "result pass contradicts measurement {:?} = {} outside spec {spec}",
                            m.name, m.value
                        ),
                    );
                }
            }
            if let Some(instrument) = instrument {
                p.short_text(format!("{Q}.instrument.id"), &instrument.id);
                if let Some(raw) = &instrument.calibrated_until {
                    let field = format!("{Q}.instrument.calibratedUntil");
                    if let (Some(until), Some(at)) =
                        (p.date_or_time(field.clone(), raw), event_time_ms)
                    {
                        // A date (10 characters) means "through that day".
                        let until_end = if raw.len() == 10 {
                            until + 86_400_000 - 1
                        } else {
                            until
                        };
                        if until_end < at {
                            p.add(
                                field,
                                "the instrument's calibration had expired at eventTime",
                            );
                        }
                    }
                }
            }
        }
        QualityFact::NonConformance {
            code, description, ..
        } => {
            p.short_text(format!("{Q}.code"), code);
            if description.trim().is_empty() {
                p.add(format!("{Q}.description"), "empty");
            }
        }
        QualityFact::RecallOrder {
            recall_id,
            reason,
            scope,
            ..
        } => {
            p.short_text(format!("{Q}.recallId"), recall_id);
            if reason.trim().is_empty() {
                p.add(format!("{Q}.reason"), "empty");
            }
            if scope.is_empty() {
                p.add(
                    format!("{Q}.scope"),
                    "a recall order needs at least one lot or item in scope",
                );
            }
            let mut seen = BTreeSet::new();
            for (i, id) in scope.iter().enumerate() {
                let field = format!("{Q}.scope[{i}]");
                match Identifier::parse(id) {
                    Ok(parsed) => {
                        if !seen.insert(parsed.canonical()) {
                            p.add(field, format!("{id:?} is listed twice"));
                        }
                    }
                    Err(e) => p.add(field, e),
                }
            }
        }
        QualityFact::Certificate {
            certificate_id,
            issuer,
            standard,
            valid_from,
            valid_until,
            document,
        } => {
            p.short_text(format!("{Q}.certificateId"), certificate_id);
            p.short_text(format!("{Q}.issuer"), issuer);
            p.short_text(format!("{Q}.standard"), standard);
            let from = p.date_or_time(format!("{Q}.validFrom"), valid_from);
            let until = p.date_or_time(format!("{Q}.validUntil"), valid_until);
            if let (Some(from), Some(until)) = (from, until)
                && from > until
            {
                p.add(
                    format!("{Q}.validUntil"),
                    format!("validUntil {valid_until} is before validFrom {valid_from}"),
                );
            }
            if let Some(document) = document {
                check_document(p, &format!("{Q}.document"), document);
            }
        }
        QualityFact::Document { document } => check_document(p, &format!("{Q}.document"), document),
        QualityFact::Alert {
            key,
            subject,
            summary,
            trigger,
            ..
        } => {
            p.short_text(format!("{Q}.key"), key);
            p.short_text(format!("{Q}.subject"), subject);
            if summary.trim().is_empty() {
                p.add(format!("{Q}.summary"), "empty");
            }
            if summary.len() > ALERT_SUMMARY_BYTES_MAX {
                p.add(
                    format!("{Q}.summary"),
                    format!(
                        "{} bytes, more than the {ALERT_SUMMARY_BYTES_MAX} allowed",
                        summary.len()
                    ),
                );
            }
            let hex = trigger.len() == 64
                && trigger
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
            if !hex {
                p.add(
                    format!("{Q}.trigger"),
                    "the triggering attestation id is 64 lowercase hex digits",
                );
            }
        }
    }
}

/// Longest alert summary: one sentence, not a report.
const ALERT_SUMMARY_BYTES_MAX: usize = 1_024;

fn check_document(p: &mut Problems, path: &str, document: &DocumentRef) {
    p.uri(format!("{path}.uri"), &document.uri);
    let media_type = document
        .media_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim();
    let valid_media_type = media_type.split_once('/').is_some_and(|(t, s)| {
        !t.is_empty() && !s.is_empty() && !media_type.contains(char::is_whitespace)
    });
    if !valid_media_type || document.media_type.len() > IDENTIFIER_BYTES_MAX {
        p.add(
            format!("{path}.mediaType"),
            format!(
                "{:?} is not a media type (type/subtype)",
                document.media_type
            ),
        );
    }
    let hex = &document.blake3;
    if hex.len() != 64
        || !hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        p.add(
            format!("{path}.blake3"),
            format!("{hex:?} is not 64 lowercase hex digits (a BLAKE3-256 digest)"),
        );
    }
}

impl Event {
    /// The canonical forms ([`Identifier::canonical`]) of everything
    /// [`Event::identifiers`] yields plus the readPoint and bizLocation ids:
    /// deduplicated, sorted, skipping any that fail to parse. These are the
    /// keys the event is indexed under.
    pub fn canonical_identifiers(&self) -> Vec<String> {
        crate::lineage::Names::of(self).into_listed().into_names()
    }

    /// `eventTime` as unix milliseconds, `None` if it does not parse.
    pub fn event_time_ms(&self) -> Option<i64> {
        time::parse_rfc3339_ms(&self.event_time).ok()
    }
}
