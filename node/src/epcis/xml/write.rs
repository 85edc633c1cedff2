//! Query results as EPCIS 2.0 XML (`Accept: application/xml`): the
//! `EPCISQueryDocument` the JSON-LD query returns, written in the XML
//! binding (the reverse of [`super::convert`]).
//!
//! Every value is escaped; element names come from the document's own
//! member names, which capture already restricted to EPCIS fields and
//! `prefix:name` extensions; a name that is not an XML name is written as
//! a `lotline:member` element with a `name` attribute instead of being
//! trusted.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::{Map, Value};

const EPCIS_NS: &str = "urn:epcglobal:epcis:xsd:2";
const QUERY_NS: &str = "urn:epcglobal:epcis-query:xsd:2";

/// Standard event fields in the order of the EPCIS 2.0 XSD; members not
/// listed (extensions) follow in name order.
const ORDER: [&str; 30] = [
    "eventTime",
    "recordTime",
    "eventTimeZoneOffset",
    "eventID",
    "errorDeclaration",
    "certificationInfo",
    "parentID",
    "epcList",
    "childEPCs",
    "inputEPCList",
    "inputQuantityList",
    "outputEPCList",
    "outputQuantityList",
    "transformationID",
    "quantityList",
    "childQuantityList",
    "action",
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
    "lotline:eventHash",
    "lotline:attestation",
    "lotline:duplicateOf",
];

/// CBV fields whose bare JSON words are URNs in XML, by URN prefix.
fn cbv_urn(field: &str) -> Option<&'static str> {
    Some(match field {
        "bizStep" => "urn:epcglobal:cbv:bizstep:",
        "disposition" | "set" | "unset" => "urn:epcglobal:cbv:disp:",
        "bizTransactionList" => "urn:epcglobal:cbv:btt:",
        "sourceList" | "destinationList" => "urn:epcglobal:cbv:sdt:",
        "reason" => "urn:epcglobal:cbv:er:",
        _ => return None,
    })
}

fn vocabulary(field: &str, value: &str) -> String {
    match cbv_urn(field) {
        Some(urn) if !value.contains(':') => format!("{urn}{value}"),
        _ => value.to_owned(),
    }
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => {
                let _ = write!(out, "&#x{:X};", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

/// True for a name XML accepts as written (`prefix:local` or `local`, ASCII
/// letters, digits, `_`, `-`, `.`; not starting with a digit).
fn is_name(name: &str) -> bool {
    let mut parts = name.split(':');
    let ok = |p: &str| {
        !p.is_empty()
            && !p.starts_with(|c: char| c.is_ascii_digit() || c == '-' || c == '.')
            && p.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
    };
    let first = parts.next().is_some_and(ok);
    let second = parts.next().is_none_or(ok);
    first && second && parts.next().is_none()
}

fn scalar(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

struct Writer {
    out: String,
}

impl Writer {
    fn open(&mut self, name: &str, attributes: &[(String, String)]) {
        self.out.push('<');
        self.out.push_str(name);
        for (key, value) in attributes {
            let _ = write!(self.out, " {key}=\"{}\"", escape(value));
        }
        self.out.push('>');
    }

    fn close(&mut self, name: &str) {
        let _ = write!(self.out, "</{name}>");
    }

    fn leaf(&mut self, name: &str, text: &str) {
        self.open(name, &[]);
        self.out.push_str(&escape(text));
        self.close(name);
    }

    /// A member of an extension (or any value without a standard shape):
    /// objects nest, arrays repeat the element, scalars are text.
    fn generic(&mut self, name: &str, value: &Value) {
        if !is_name(name) {
            let attributes = [("name".to_owned(), name.to_owned())];
            self.open("lotline:member", &attributes);
            self.out.push_str(&escape(&value.to_string()));
            self.close("lotline:member");
            return;
        }
        match value {
            Value::Array(items) => {
                for item in items {
                    self.generic(name, item);
                }
            }
            Value::Object(members) => {
                self.open(name, &[]);
                // Unprefixed members of an extension take its prefix.
                let prefix = name.split_once(':').map(|(p, _)| p);
                for (key, value) in members {
                    let key = match prefix {
                        Some(p) if !key.contains(':') => format!("{p}:{key}"),
                        _ => key.clone(),
                    };
                    self.generic(&key, value);
                }
                self.close(name);
            }
            scalar_value => self.leaf(name, &scalar(scalar_value)),
        }
    }

    fn event(&mut self, event: &Map<String, Value>) {
        let kind = event
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("ObjectEvent");
        let kind = if is_name(kind) { kind } else { "ObjectEvent" };
        self.open(kind, &[]);
        let mut rest: Vec<&String> = event
            .keys()
            .filter(|k| !ORDER.contains(&k.as_str()) && *k != "type" && *k != "@context")
            .collect();
        rest.sort();
        let keys = ORDER
            .iter()
            .filter_map(|k| event.get_key_value(*k).map(|(k, _)| k))
            .chain(rest);
        for key in keys {
            self.field(key, &event[key.as_str()]);
        }
        self.close(kind);
    }

    fn field(&mut self, name: &str, value: &Value) {
        match (name, value) {
            ("epcList" | "childEPCs" | "inputEPCList" | "outputEPCList", Value::Array(items)) => {
                self.open(name, &[]);
                for item in items {
                    self.leaf("epc", &scalar(item));
                }
                self.close(name);
            }
            (
                "quantityList" | "childQuantityList" | "inputQuantityList" | "outputQuantityList",
                Value::Array(items),
            ) => {
                self.open(name, &[]);
                for item in items {
                    self.generic("quantityElement", item);
                }
                self.close(name);
            }
            ("bizTransactionList" | "sourceList" | "destinationList", Value::Array(items)) => {
                let member = match name {
                    "bizTransactionList" => "bizTransaction",
                    "sourceList" => "source",
                    _ => "destination",
                };
                self.open(name, &[]);
                for item in items {
                    let mut attributes = Vec::new();
                    if let Some(kind) = item.get("type") {
                        attributes.push(("type".to_owned(), vocabulary(name, &scalar(kind))));
                    }
                    self.open(member, &attributes);
                    self.out
                        .push_str(&escape(&item.get(member).map(scalar).unwrap_or_default()));
                    self.close(member);
                }
                self.close(name);
            }
            ("bizStep" | "disposition", value) => {
                self.leaf(name, &vocabulary(name, &scalar(value)))
            }
            ("persistentDisposition", Value::Object(members)) => {
                self.open(name, &[]);
                for key in ["unset", "set"] {
                    for item in members
                        .get(key)
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                    {
                        self.leaf(key, &vocabulary(key, &scalar(item)));
                    }
                }
                self.close(name);
            }
            ("errorDeclaration", Value::Object(members)) => {
                self.open(name, &[]);
                for (key, value) in members {
                    match key.as_str() {
                        "reason" => self.leaf("reason", &vocabulary("reason", &scalar(value))),
                        "correctiveEventIDs" => {
                            self.open(key, &[]);
                            for id in value.as_array().into_iter().flatten() {
                                self.leaf("correctiveEventID", &scalar(id));
                            }
                            self.close(key);
                        }
                        _ => self.generic(key, value),
                    }
                }
                self.close(name);
            }
            ("sensorElementList", Value::Array(items)) => {
                self.open(name, &[]);
                for item in items {
                    self.sensor_element(item);
                }
                self.close(name);
            }
            (_, value) => self.generic(name, value),
        }
    }

    fn sensor_element(&mut self, element: &Value) {
        self.open("sensorElement", &[]);
        let empty = Map::new();
        let members = element.as_object().unwrap_or(&empty);
        if let Some(metadata) = members.get("sensorMetadata") {
            self.attributes_element("sensorMetadata", metadata);
        }
        for report in members
            .get("sensorReport")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            self.attributes_element("sensorReport", report);
        }
        for (key, value) in members {
            if key != "sensorMetadata" && key != "sensorReport" {
                self.generic(key, value);
            }
        }
        self.close("sensorElement");
    }

    /// Sensor metadata and reports: JSON members are XML attributes.
    fn attributes_element(&mut self, name: &str, value: &Value) {
        let mut attributes = Vec::new();
        let mut children = Vec::new();
        for (key, member) in value.as_object().into_iter().flatten() {
            match member {
                Value::Object(_) | Value::Array(_) => children.push((key, member)),
                _ if is_name(key) => attributes.push((key.clone(), scalar(member))),
                _ => children.push((key, member)),
            }
        }
        self.open(name, &attributes);
        for (key, member) in children {
            self.generic(key, member);
        }
        self.close(name);
    }
}

/// Namespace prefixes bound by `@context` entries (document and events).
fn bindings(context: Option<&Value>, into: &mut BTreeMap<String, String>) {
    let mut add = |object: &Map<String, Value>| {
        for (prefix, iri) in object {
            if let Value::String(iri) = iri
                && is_name(prefix)
                && !prefix.contains(':')
            {
                into.entry(prefix.clone()).or_insert_with(|| iri.clone());
            }
        }
    };
    match context {
        Some(Value::Object(object)) => add(object),
        Some(Value::Array(items)) => {
            for item in items {
                if let Value::Object(object) = item {
                    add(object);
                }
            }
        }
        _ => {}
    }
}

/// Prefixes of member names (`prefix:name`) anywhere in `object`.
fn prefixes_used(object: &Map<String, Value>, into: &mut std::collections::BTreeSet<String>) {
    for (key, value) in object {
        if key == "@context" {
            continue;
        }
        if let Some((prefix, _)) = key.split_once(':')
            && is_name(key)
        {
            into.insert(prefix.to_owned());
        }
        let mut nested = |value: &Value| {
            if let Value::Object(inner) = value {
                prefixes_used(inner, into);
            }
        };
        match value {
            Value::Array(items) => items.iter().for_each(&mut nested),
            other => nested(other),
        }
    }
}

/// The XML form of an `EPCISQueryDocument` as `document::query_document`
/// writes it.
pub fn query_document(document: &Value) -> String {
    let events: Vec<&Map<String, Value>> = document
        .pointer("/epcisBody/queryResults/resultsBody/eventList")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object)
        .collect();
    let mut namespaces = BTreeMap::new();
    bindings(document.get("@context"), &mut namespaces);
    for event in &events {
        bindings(event.get("@context"), &mut namespaces);
    }
    namespaces.remove("epcis");
    namespaces.remove("epcisq");
    namespaces.remove("xsi");
    // A prefix an event uses without binding it still needs a namespace
    // for the XML to be well-formed: one that says so.
    let mut used = std::collections::BTreeSet::new();
    for event in &events {
        prefixes_used(event, &mut used);
    }
    for prefix in used {
        namespaces
            .entry(prefix.clone())
            .or_insert_with(|| format!("urn:lotline:unbound-prefix:{prefix}"));
    }
    let mut writer = Writer {
        out: String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"),
    };
    let mut attributes = vec![
        ("xmlns:epcis".to_owned(), EPCIS_NS.to_owned()),
        ("xmlns:epcisq".to_owned(), QUERY_NS.to_owned()),
    ];
    for (prefix, iri) in &namespaces {
        attributes.push((format!("xmlns:{prefix}"), iri.clone()));
    }
    attributes.push(("schemaVersion".to_owned(), "2.0".to_owned()));
    if let Some(created) = document.get("creationDate") {
        attributes.push(("creationDate".to_owned(), scalar(created)));
    }
    writer.open("epcisq:EPCISQueryDocument", &attributes);
    writer.open("EPCISBody", &[]);
    writer.open("epcisq:QueryResults", &[]);
    let name = document
        .pointer("/epcisBody/queryResults/queryName")
        .map(scalar)
        .unwrap_or_default();
    writer.leaf("queryName", &name);
    writer.open("resultsBody", &[]);
    writer.open("EventList", &[]);
    for event in events {
        writer.event(event);
    }
    writer.close("EventList");
    writer.close("resultsBody");
    writer.close("epcisq:QueryResults");
    writer.close("EPCISBody");
    writer.close("epcisq:EPCISQueryDocument");
    writer.out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::query_document;
    use crate::epcis::xml::read_document;

    /// Goal: whatever the values hold, the XML is well-formed and reads
    /// back to the same values; a member name XML cannot carry is written
    /// as data, not as markup; a prefix nobody bound is bound. Method: write
    /// a query document with hostile values and names, read it back.
    #[test]
    fn hostile_values_and_names_stay_data() {
        let document = json!({
            "@context": ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld",
                         {"lotline": "https://lotline.dev/epcis/"}],
            "type": "EPCISQueryDocument",
            "creationDate": "2026-01-01T00:00:00.000Z",
            "epcisBody": {"queryResults": {"queryName": "SimpleEventQuery", "resultsBody": {"eventList": [{
                "type": "ObjectEvent",
                "eventTime": "2026-01-01T00:00:00.000Z",
                "eventTimeZoneOffset": "+00:00",
                "action": "OBSERVE",
                "bizStep": "shipping",
                "epcList": ["urn:x:<&>\"'"],
                "ex:note": "</ObjectEvent><evil/>",
                "un:bound": {"deep": [1, 2]},
                "lotline:eventHash": "ni:///sha-256;00?ver=CBV2.0"
            }]}}}
        });
        let text = query_document(&document);
        assert!(!text.contains("<evil/>"), "{text}");
        let back = read_document(text.as_bytes()).unwrap_or_else(|e| panic!("{e}: {text}"));
        let event = &back["epcisBody"]["eventList"][0];
        assert_eq!(event["epcList"][0], "urn:x:<&>\"'");
        assert_eq!(event["ex:note"], "</ObjectEvent><evil/>");
        assert_eq!(event["bizStep"], "shipping");
        assert_eq!(event["un:bound"]["un:deep"], json!(["1", "2"]));
    }
}
