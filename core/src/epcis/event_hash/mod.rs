//! The CBV 2.0 EPCIS event hash (`ni:///sha-256;{hex}?ver=CBV2.0`): one
//! fingerprint for one event, whatever its syntax (JSON-LD or XML), field
//! order, namespace prefixes or identifier spellings (CBV 2.0 section 8.9;
//! GS1's algorithm description and reference generator,
//! `epcis-event-hash-generator` 1.9.3).
//!
//! Lotline uses it to name events that come without an eventID and to
//! refuse a second capture of an event already committed.
//!
//! ## The pre-hash string
//! The event becomes a tree of named nodes (a JSON object's members, a list
//! as repeated children: `epcList` holds `epc` nodes, `quantityList`
//! `quantityElement` nodes, ...). The string is `eventType=` + the type,
//! then the fields in the *canonical property order* ([`ORDER`]), then
//! everything the order did not take, and no separators anywhere:
//! - a value is `name=value`, a node with children is `name` followed by its
//!   children's strings; siblings of one name are sorted (case-sensitive,
//!   byte order), so list order does not matter;
//! - values are canonical ([`canonical`]): times in UTC milliseconds, numbers
//!   without trailing zeros, CBV URNs and bare CBV words as
//!   `https://ref.gs1.org/cbv/...` URIs, CURIEs expanded, GS1 keys as
//!   constrained canonical Digital Links;
//! - extension names are `{namespace}localName`, the namespace taken from the
//!   event's `@context`;
//! - `eventID`, `recordTime` and `errorDeclaration` are not part of it: the
//!   hash names the event, so a correction hashes like the event it corrects
//!   (which is how a declaration is matched to its event).
//!
//! ## Where this follows the reference generator rather than its README
//! The reference generator is what other implementations test against, so
//! its observable order wins where its README reads otherwise:
//! `bizTransactionList`, `sourceList` and `destinationList` are not placed
//! at positions 20-22 but sorted with the remaining fields after the
//! ordered ones, each entry written `type=...` before its identifier; the
//! extensions of `readPoint`, `bizLocation`, `sensorElement`,
//! `sensorMetadata` and `sensorReport` are appended inside their parent
//! only when their namespace ends in `/` (otherwise they stay with the
//! remaining fields). Where the reference has plain bugs in its JSON path
//! (`True` for a JSON `true`; `gs1:` CURIEs left unexpanded; a crash on a
//! bizTransaction without a type or a context with term definitions), this
//! follows the README. XML `xsi:type` annotations are not data (JSON
//! carries the same information in the value's type), so an XML event and
//! its JSON form hash alike.

mod canonical;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use serde_json::{Map, Value};
use sha2::{Digest as _, Sha256};

use super::{Event, QuantityElement};

pub use canonical::digital_link;

/// The CBV version the hash follows, as written in the `ni` URI.
pub const VERSION: &str = "CBV2.0";

/// One event's CBV 2.0 hash: the SHA-256 of its pre-hash string.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventHash(pub [u8; 32]);

impl EventHash {
    /// `ni:///sha-256;{hex}?ver=CBV2.0` (RFC 6920 named information).
    pub fn uri(&self) -> String {
        format!("ni:///sha-256;{}?ver={VERSION}", hex::encode(self.0))
    }

    /// Reads the `ni` URI form back; `None` for anything else.
    pub fn parse(uri: &str) -> Option<EventHash> {
        let hex = uri.strip_prefix("ni:///sha-256;")?;
        let hex = hex.strip_suffix(&format!("?ver={VERSION}"))?;
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(hex, &mut bytes).ok()?;
        Some(EventHash(bytes))
    }
}

impl fmt::Debug for EventHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.uri())
    }
}

impl fmt::Display for EventHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.uri())
    }
}

/// The event's hash.
pub fn event_hash(event: &Event) -> EventHash {
    EventHash(Sha256::digest(prehash(event).as_bytes()).into())
}

/// What a second capture of the same event repeats, as text: the hash in
/// hex, with `+errorDeclaration` for a correction (which hashes like the
/// event it corrects, yet does not repeat it; a second correction of the
/// same event does).
pub fn duplicate_name(event: &Event) -> String {
    let hash = hex::encode(event_hash(event).0);
    match event.error_declaration {
        Some(_) => format!("{hash}+errorDeclaration"),
        None => hash,
    }
}

/// The pre-hash string of `event` (see the module doc).
///
/// The tree is read from the typed event, borrowing its strings, as its
/// JSON form would give it member by member
/// (`the_typed_walk_is_the_json_forms_walk`). Only the members the model
/// keeps as structs with many optional fields (sensor elements, the
/// quality fact) are turned into JSON values first: serialising the whole
/// event into a value tree was a third of the hash's cost.
pub fn prehash(event: &Event) -> String {
    let namespaces = Namespaces::of(event.extensions.get("@context"));
    let sensors = (!event.sensor_element_list.is_empty())
        .then(|| serde_json::to_value(&event.sensor_element_list).unwrap_or(Value::Null));
    let quality = event
        .quality
        .as_ref()
        .map(|quality| serde_json::to_value(quality).unwrap_or(Value::Null));
    let mut children = Vec::with_capacity(24);
    let json = JsonMembers {
        sensors: sensors.as_ref(),
        quality: quality.as_ref(),
    };
    typed_members(&mut children, event, json, &namespaces);
    string_of(event, children)
}

/// `eventType=` and the type, then the event's nodes in canonical order.
fn string_of(event: &Event, mut children: Vec<Node>) -> String {
    let mut out = format!("eventType={}", event.event_type.as_str());
    out.push_str(&ordered(&mut children, ORDER));
    out.push_str(&generic(&children));
    out
}

/// The members [`prehash`] reads in their JSON form.
#[derive(Clone, Copy)]
struct JsonMembers<'a> {
    sensors: Option<&'a Value>,
    quality: Option<&'a Value>,
}

/// The nodes of every member of `event` that is part of the hash (not
/// [`IGNORED`]), each as [`push_member`] makes them from that member's
/// JSON form: a member the JSON form omits (`None`, an empty list) makes
/// none.
fn typed_members<'a>(
    children: &mut Vec<Node<'a>>,
    event: &'a Event,
    json: JsonMembers<'a>,
    namespaces: &Namespaces,
) {
    let mut text = |key: &'static str, value: &'a str| {
        children.push(field(
            Cow::Borrowed(key),
            scalar_text(value, vocabulary_for("", key), namespaces),
            Vec::new(),
        ));
    };
    text("eventTime", &event.event_time);
    text("eventTimeZoneOffset", &event.event_time_zone_offset);
    if let Some(action) = event.action {
        text("action", action.as_str());
    }
    for (key, value) in [
        ("parentID", &event.parent_id),
        ("transformationID", &event.transformation_id),
        ("bizStep", &event.biz_step),
        ("disposition", &event.disposition),
    ] {
        if let Some(value) = value {
            text(key, value);
        }
    }
    for (key, list) in [
        ("epcList", &event.epc_list),
        ("childEPCs", &event.child_epcs),
        ("inputEPCList", &event.input_epc_list),
        ("outputEPCList", &event.output_epc_list),
    ] {
        children.extend(list_node(key, list, |epc| {
            field(Cow::Borrowed("epc"), namespaces.value(epc), Vec::new())
        }));
    }
    for (key, list) in [
        ("quantityList", &event.quantity_list),
        ("childQuantityList", &event.child_quantity_list),
        ("inputQuantityList", &event.input_quantity_list),
        ("outputQuantityList", &event.output_quantity_list),
    ] {
        children.extend(list_node(key, list, |element| {
            quantity_element(element, namespaces)
        }));
    }
    if let Some(disposition) = &event.persistent_disposition {
        const KEY: &str = "persistentDisposition";
        let mut members = Vec::new();
        for (key, list) in [("set", &disposition.set), ("unset", &disposition.unset)] {
            for item in list {
                members.push(field(
                    Cow::Borrowed(key),
                    scalar_text(item, vocabulary_for(KEY, key), namespaces),
                    Vec::new(),
                ));
            }
        }
        children.push(field(Cow::Borrowed(KEY), Cow::Borrowed(""), members));
    }
    if !event.biz_transaction_list.is_empty() {
        const KEY: &str = "bizTransactionList";
        let pairs = event.biz_transaction_list.iter().map(|item| {
            let kind = item.kind.as_deref();
            let kind = kind.map(|kind| scalar_text(kind, vocabulary_of(KEY), namespaces));
            pair(
                kind,
                "bizTransaction",
                Some(namespaces.value(&item.biz_transaction)),
            )
        });
        children.push(pairs_node(KEY, pairs));
    }
    let sources = event.source_list.iter().map(|s| (&*s.kind, &*s.source));
    push_party_pairs(children, "sourceList", "source", sources, namespaces);
    let destinations = (event.destination_list.iter()).map(|d| (&*d.kind, &*d.destination));
    push_party_pairs(
        children,
        "destinationList",
        "destination",
        destinations,
        namespaces,
    );
    for (key, location) in [
        ("readPoint", &event.read_point),
        ("bizLocation", &event.biz_location),
    ] {
        if let Some(location) = location {
            let mut members = vec![field(
                Cow::Borrowed("id"),
                namespaces.value(&location.id),
                Vec::new(),
            )];
            push_members_in(&mut members, key, &location.extensions, namespaces);
            children.push(field(Cow::Borrowed(key), Cow::Borrowed(""), members));
        }
    }
    if let Some(ilmd) = &event.ilmd {
        let mut members = Vec::with_capacity(ilmd.len());
        push_members_in(&mut members, "ilmd", ilmd, namespaces);
        children.push(field(Cow::Borrowed("ilmd"), Cow::Borrowed(""), members));
    }
    if let Some(info) = &event.certification_info {
        push_member(children, "certificationInfo", info, namespaces);
    }
    if let Some(sensors) = json.sensors {
        push_member(children, "sensorElementList", sensors, namespaces);
    }
    if let Some(quality) = json.quality {
        push_member(children, "lotline:quality", quality, namespaces);
    }
    for (key, value) in &event.extensions {
        if !IGNORED.contains(&key.as_str()) {
            push_member(children, key, value, namespaces);
        }
    }
}

/// The node of a standard list member holding one node per entry; none
/// for an empty list, which the JSON form omits.
fn list_node<'a, T>(
    key: &'static str,
    list: &'a [T],
    entry: impl Fn(&'a T) -> Node<'a>,
) -> Option<Node<'a>> {
    (!list.is_empty()).then(|| {
        field(
            Cow::Borrowed(key),
            Cow::Borrowed(""),
            list.iter().map(entry).collect(),
        )
    })
}

/// One quantity element's node, as its JSON object gives it.
fn quantity_element<'a>(element: &'a QuantityElement, namespaces: &Namespaces) -> Node<'a> {
    const KEY: &str = "quantityElement";
    let mut members = Vec::with_capacity(3 + element.extensions.len());
    members.push(field(
        Cow::Borrowed("epcClass"),
        namespaces.value(&element.epc_class),
        Vec::new(),
    ));
    if let Some(quantity) = element.quantity {
        // The text of the JSON number serde_json writes for the double (a
        // non-finite one is `null`, no text).
        let text = serde_json::Number::from_f64(quantity)
            .map_or(Cow::Borrowed(""), |n| Cow::Owned(n.to_string()));
        members.push(field(Cow::Borrowed("quantity"), text, Vec::new()));
    }
    if let Some(uom) = &element.uom {
        members.push(field(
            Cow::Borrowed("uom"),
            namespaces.value(uom),
            Vec::new(),
        ));
    }
    push_members_in(&mut members, KEY, &element.extensions, namespaces);
    field(Cow::Borrowed(KEY), Cow::Borrowed(""), members)
}

/// Adds a source or destination list's node, none for an empty list:
/// each entry a `(type, identifier)` pair.
fn push_party_pairs<'a>(
    children: &mut Vec<Node<'a>>,
    key: &'static str,
    id_field: &str,
    entries: impl ExactSizeIterator<Item = (&'a str, &'a str)>,
    namespaces: &Namespaces,
) {
    if entries.len() == 0 {
        return;
    }
    let pairs = entries.map(|(kind, id)| {
        pair(
            Some(scalar_text(kind, vocabulary_of(key), namespaces)),
            id_field,
            Some(namespaces.value(id)),
        )
    });
    children.push(pairs_node(key, pairs));
}

/// A bizTransaction, source or destination list's node.
fn pairs_node<'a>(key: &'static str, pairs: impl Iterator<Item = String>) -> Node<'a> {
    field(
        Cow::Borrowed(key),
        Cow::Borrowed(""),
        pairs.map(Node::Pair).collect(),
    )
}

/// Adds the nodes of every member of a JSON object (an extension map of
/// the typed event) whose own name is `parent`.
fn push_members_in<'a>(
    children: &mut Vec<Node<'a>>,
    parent: &str,
    members: &'a BTreeMap<String, Value>,
    namespaces: &Namespaces,
) {
    for (key, value) in members {
        push_member_in(children, parent, key, value, namespaces);
    }
}

/// Members that are not part of the hash: the type is written first,
/// eventID and recordTime are names given by a repository, an
/// errorDeclaration is a statement about the event, not part of it, and
/// the JSON-LD context only supplies namespaces.
const IGNORED: [&str; 5] = [
    "type",
    "eventID",
    "recordTime",
    "errorDeclaration",
    "@context",
];

/// A node of the event tree. Names and values borrow from the typed event
/// (or a member's JSON form) where they are kept as written (most are), so
/// building the tree copies only what canonicalisation changes.
#[derive(Clone, Debug)]
enum Node<'a> {
    Field {
        name: Cow<'a, str>,
        text: Cow<'a, str>,
        children: Vec<Node<'a>>,
    },
    /// A bizTransaction, source or destination: `type=...` then the id,
    /// already canonical.
    Pair(String),
}

impl Node<'_> {
    fn name(&self) -> &str {
        match self {
            Node::Field { name, .. } => name,
            Node::Pair(_) => "",
        }
    }
}

/// One step of the canonical property order: a field name and the order
/// of its children (empty: a value, or children taken as they come).
struct Prop {
    name: &'static str,
    children: &'static [Prop],
}

const fn leaf(name: &'static str) -> Prop {
    Prop {
        name,
        children: &[],
    }
}

const QUANTITY: &[Prop] = &[Prop {
    name: "quantityElement",
    children: &[leaf("epcClass"), leaf("quantity"), leaf("uom")],
}];
const EPC: &[Prop] = &[leaf("epc")];

/// The canonical property order (the reference generator's, which extends
/// the README table with `certificationInfo`; bizTransactionList,
/// sourceList and destinationList are absent on purpose, see the module
/// doc).
const ORDER: &[Prop] = &[
    leaf("eventTime"),
    leaf("eventTimeZoneOffset"),
    leaf("certificationInfo"),
    leaf("parentID"),
    Prop {
        name: "epcList",
        children: EPC,
    },
    Prop {
        name: "inputEPCList",
        children: EPC,
    },
    Prop {
        name: "childEPCs",
        children: EPC,
    },
    Prop {
        name: "quantityList",
        children: QUANTITY,
    },
    Prop {
        name: "childQuantityList",
        children: QUANTITY,
    },
    Prop {
        name: "inputQuantityList",
        children: QUANTITY,
    },
    Prop {
        name: "outputEPCList",
        children: EPC,
    },
    Prop {
        name: "outputQuantityList",
        children: QUANTITY,
    },
    leaf("action"),
    leaf("transformationID"),
    leaf("bizStep"),
    leaf("disposition"),
    Prop {
        name: "persistentDisposition",
        children: &[leaf("set"), leaf("unset")],
    },
    Prop {
        name: "readPoint",
        children: &[leaf("id")],
    },
    Prop {
        name: "bizLocation",
        children: &[leaf("id")],
    },
    Prop {
        name: "sensorElementList",
        children: &[Prop {
            name: "sensorElement",
            children: &[
                Prop {
                    name: "sensorMetadata",
                    children: &[
                        leaf("time"),
                        leaf("startTime"),
                        leaf("endTime"),
                        leaf("deviceID"),
                        leaf("deviceMetadata"),
                        leaf("rawData"),
                        leaf("dataProcessingMethod"),
                        leaf("bizRules"),
                    ],
                },
                Prop {
                    name: "sensorReport",
                    children: &[
                        leaf("type"),
                        leaf("exception"),
                        leaf("deviceID"),
                        leaf("deviceMetadata"),
                        leaf("rawData"),
                        leaf("dataProcessingMethod"),
                        leaf("time"),
                        leaf("microorganism"),
                        leaf("chemicalSubstance"),
                        leaf("value"),
                        leaf("component"),
                        leaf("stringValue"),
                        leaf("booleanValue"),
                        leaf("hexBinaryValue"),
                        leaf("uriValue"),
                        leaf("minValue"),
                        leaf("maxValue"),
                        leaf("meanValue"),
                        leaf("sDev"),
                        leaf("percRank"),
                        leaf("percValue"),
                        leaf("uom"),
                        leaf("coordinateReferenceSystem"),
                    ],
                },
            ],
        }],
    },
];

/// Takes the children `order` names out of `children` (those left without
/// children of their own), and returns their strings in order, siblings of
/// one name sorted; then the extensions of an extension point.
///
/// One pass over the children finds each one's place in `order` (whose
/// names are distinct: `order_names_are_distinct`), instead of one pass
/// per property: a sensor report's two dozen properties are not each
/// compared with every field of every report.
fn ordered(children: &mut Vec<Node>, order: &[Prop]) -> String {
    let extensions = take_extensions(children);
    // (place in `order`, place in `children`), by property then position.
    let mut named: Vec<(usize, usize)> = children
        .iter()
        .enumerate()
        .filter_map(|(at, child)| match child {
            Node::Field { name, .. } => order
                .iter()
                .position(|prop| prop.name == *name)
                .map(|place| (place, at)),
            Node::Pair(_) => None,
        })
        .collect();
    named.sort_unstable();
    let mut taken = vec![false; children.len()];
    let mut out = String::new();
    let mut values = Siblings::default();
    for run in named.chunk_by(|a, b| a.0 == b.0) {
        let prop = &order[run[0].0];
        for &(_, at) in run {
            let Node::Field {
                name,
                text,
                children: grand,
            } = &mut children[at]
            else {
                continue;
            };
            let below = if prop.children.is_empty() {
                String::new()
            } else {
                ordered(grand, prop.children)
            };
            let canonical = if is_time(name) {
                canonical::push_time
            } else {
                canonical::push_value
            };
            // Here (not in `generic`) a node with neither is left out.
            if !text.trim().is_empty() || !below.is_empty() {
                values.push_node(name, text, canonical, &below);
            }
            taken[at] = grand.is_empty();
        }
        values.drain_sorted_into(&mut out);
    }
    let mut taken = taken.into_iter();
    children.retain(|_| !taken.next().unwrap_or(false));
    if !extensions.is_empty() {
        out.push_str(&generic(&extensions));
    }
    out
}

/// The strings of sibling nodes, written into one buffer and sorted as
/// slices of it: a list of hundreds of EPCs makes no string per entry.
#[derive(Default)]
struct Siblings {
    text: String,
    spans: Vec<(usize, usize)>,
}

impl Siblings {
    /// One node's string: `name`, `=` and its value made canonical by
    /// `canonical` if it has one (not blank), then what is below.
    fn push_node(&mut self, name: &str, text: &str, canonical: fn(&str, &mut String), below: &str) {
        let start = self.text.len();
        self.text.push_str(name);
        if !text.trim().is_empty() {
            self.text.push('=');
            canonical(text, &mut self.text);
        }
        self.text.push_str(below);
        self.spans.push((start, self.text.len()));
    }

    /// A string made elsewhere (a bizTransaction, source or destination).
    fn push_str(&mut self, text: &str) {
        let start = self.text.len();
        self.text.push_str(text);
        self.spans.push((start, self.text.len()));
    }

    /// Appends the strings to `out` in byte order, and empties the set.
    fn drain_sorted_into(&mut self, out: &mut String) {
        let text = &self.text;
        self.spans
            .sort_unstable_by(|a, b| text[a.0..a.1].cmp(&text[b.0..b.1]));
        out.reserve(text.len());
        for &(start, end) in &self.spans {
            out.push_str(&text[start..end]);
        }
        self.text.clear();
        self.spans.clear();
    }
}

/// A field whose value is a timestamp (`eventTime`, `startTime`, ...).
fn is_time(name: &str) -> bool {
    contains_ignoring_case(name, "time") && !contains_ignoring_case(name, "offset")
}

/// Whether `haystack` contains `needle` (ASCII lower case), in any ASCII case.
fn contains_ignoring_case(haystack: &str, needle: &str) -> bool {
    haystack
        .as_bytes()
        .windows(needle.len())
        .any(|window| window.eq_ignore_ascii_case(needle.as_bytes()))
}

/// Inside an extension point (not at event level, not in a one-member
/// object), the extensions whose namespace ends in `/`, taken out to be
/// appended after the standard fields.
fn take_extensions<'a>(children: &mut Vec<Node<'a>>) -> Vec<Node<'a>> {
    let appended = |c: &Node| c.name().starts_with('{') && c.name().contains("/}");
    if children.len() <= 1
        || !children.iter().any(appended)
        || children
            .iter()
            .any(|c| c.name().contains("eventTime") || c.name().contains("action"))
    {
        return Vec::new();
    }
    let (extensions, rest): (Vec<Node>, Vec<Node>) =
        std::mem::take(children).into_iter().partition(appended);
    *children = rest;
    extensions
}

/// Every node as `name[=value]` followed by its children, sorted (except the
/// two halves of a bizTransaction, source or destination, which are kept
/// type first).
fn generic(children: &[Node]) -> String {
    let mut values = Siblings::default();
    for child in children {
        match child {
            Node::Pair(s) => values.push_str(s),
            Node::Field {
                name,
                text,
                children,
            } => values.push_node(name, text, canonical::push_value, &generic(children)),
        }
    }
    let mut out = String::new();
    values.drain_sorted_into(&mut out);
    out
}

/// Namespace prefixes bound by the event's `@context`.
struct Namespaces(BTreeMap<String, String>);

impl Namespaces {
    fn of(context: Option<&Value>) -> Namespaces {
        let mut map = BTreeMap::new();
        let mut add = |object: &Map<String, Value>| {
            for (prefix, iri) in object {
                if let Value::String(iri) = iri
                    && !prefix.contains(':')
                    && !prefix.starts_with('@')
                {
                    map.insert(prefix.clone(), iri.clone());
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
        Namespaces(map)
    }

    /// A member name: `prefix:local` as `{namespace}local` when the prefix
    /// is bound.
    fn name<'a>(&self, key: &'a str) -> Cow<'a, str> {
        if let Some((prefix, local)) = key.split_once(':')
            && let Some(iri) = self.0.get(prefix)
        {
            return Cow::Owned(format!("{{{iri}}}{local}"));
        }
        Cow::Borrowed(key)
    }

    /// A value: a CURIE with a bound or standard prefix expanded.
    fn value<'a>(&self, text: &'a str) -> Cow<'a, str> {
        if let Some((prefix, rest)) = text.split_once(':') {
            if let Some(iri) = self.0.get(prefix) {
                return Cow::Owned(format!("{iri}{rest}"));
            }
            if let Some((_, iri)) = canonical::STANDARD_PREFIXES
                .iter()
                .find(|(p, _)| *p == prefix)
            {
                return Cow::Owned(format!("{iri}{rest}"));
            }
        }
        Cow::Borrowed(text)
    }
}

/// Bare CBV words (rule 16) of the fields that hold them, by the vocabulary
/// URI they expand to.
fn vocabulary_of(field: &str) -> Option<&'static str> {
    Some(match field {
        "bizStep" => "https://ref.gs1.org/cbv/BizStep-",
        "disposition" | "set" | "unset" => "https://ref.gs1.org/cbv/Disp-",
        "bizTransactionList" => "https://ref.gs1.org/cbv/BTT-",
        "sourceList" | "destinationList" => "https://ref.gs1.org/cbv/SDT-",
        "sensorReport" => "https://gs1.org/voc/",
        _ => return None,
    })
}

/// A scalar as text, bare words of `vocabulary` and CURIEs expanded.
fn scalar<'a>(value: &'a Value, vocabulary: Option<&str>, namespaces: &Namespaces) -> Cow<'a, str> {
    match value {
        Value::String(s) => scalar_text(s, vocabulary, namespaces),
        Value::Number(n) => Cow::Owned(n.to_string()),
        Value::Bool(true) => Cow::Borrowed("true"),
        Value::Bool(false) => Cow::Borrowed("false"),
        Value::Null | Value::Array(_) | Value::Object(_) => Cow::Borrowed(""),
    }
}

/// A string scalar: a bare word of `vocabulary` as its term URI, a CURIE
/// expanded.
fn scalar_text<'a>(
    text: &'a str,
    vocabulary: Option<&str>,
    namespaces: &Namespaces,
) -> Cow<'a, str> {
    match vocabulary {
        Some(prefix) if !text.contains(':') && !text.trim().is_empty() => {
            Cow::Owned(format!("{prefix}{}", text.trim()))
        }
        _ => namespaces.value(text),
    }
}

/// The child name of each entry of a standard list.
fn element_name(list: &str) -> Option<&'static str> {
    Some(match list {
        "epcList" | "inputEPCList" | "outputEPCList" | "childEPCs" => "epc",
        "quantityList" | "childQuantityList" | "inputQuantityList" | "outputQuantityList" => {
            "quantityElement"
        }
        "sensorElementList" => "sensorElement",
        _ => return None,
    })
}

/// Adds the node(s) of one event member to `children`.
fn push_member<'a>(
    children: &mut Vec<Node<'a>>,
    key: &'a str,
    value: &'a Value,
    namespaces: &Namespaces,
) {
    push_member_in(children, "", key, value, namespaces)
}

/// Adds the node(s) of member `key` of object `parent` to `children` (a
/// list becomes repeated nodes or one node holding its entries); `parent`
/// decides which bare words are vocabulary terms.
fn push_member_in<'a>(
    children: &mut Vec<Node<'a>>,
    parent: &str,
    key: &'a str,
    value: &'a Value,
    namespaces: &Namespaces,
) {
    let name = namespaces.name(key);
    match value {
        Value::Array(items) => {
            if matches!(key, "bizTransactionList" | "sourceList" | "destinationList") {
                let id_field = match key {
                    "bizTransactionList" => "bizTransaction",
                    "sourceList" => "source",
                    _ => "destination",
                };
                let pairs = items
                    .iter()
                    .map(|item| Node::Pair(json_pair(item, key, id_field, namespaces)))
                    .collect();
                children.push(field(name, Cow::Borrowed(""), pairs));
            } else if let Some(element) = element_name(key) {
                let mut list = Vec::with_capacity(items.len());
                for item in items {
                    push_member_in(&mut list, key, element, item, namespaces);
                }
                children.push(field(name, Cow::Borrowed(""), list));
            } else if let Some(element) = element_of(&name) {
                let mut list = Vec::with_capacity(items.len());
                for item in items {
                    list.push(node(element.clone(), item, None, namespaces));
                }
                children.push(field(name, Cow::Borrowed(""), list));
            } else {
                for item in items {
                    children.push(node(
                        name.clone(),
                        item,
                        vocabulary_for(parent, key),
                        namespaces,
                    ));
                }
            }
        }
        _ => children.push(node(name, value, vocabulary_for(parent, key), namespaces)),
    }
}

/// Which bare words of member `key` (inside `parent`) are vocabulary terms.
fn vocabulary_for(parent: &str, key: &str) -> Option<&'static str> {
    match (parent, key) {
        ("", "bizStep" | "disposition") => vocabulary_of(key),
        ("persistentDisposition", "set" | "unset") => vocabulary_of(key),
        ("sensorReport", "type") => vocabulary_of("sensorReport"),
        _ => None,
    }
}

/// The name of each entry of a list named `name` (`…List`): a borrow of the
/// list's own name where that is one.
fn element_of<'a>(name: &Cow<'a, str>) -> Option<Cow<'a, str>> {
    match name {
        Cow::Borrowed(name) => name.strip_suffix("List").map(Cow::Borrowed),
        Cow::Owned(name) => name.strip_suffix("List").map(|e| Cow::Owned(e.to_owned())),
    }
}

fn field<'a>(name: Cow<'a, str>, text: Cow<'a, str>, children: Vec<Node<'a>>) -> Node<'a> {
    Node::Field {
        name,
        text,
        children,
    }
}

/// A node for a scalar or object value.
fn node<'a>(
    name: Cow<'a, str>,
    value: &'a Value,
    vocabulary: Option<&str>,
    namespaces: &Namespaces,
) -> Node<'a> {
    match value {
        Value::Object(object) => {
            let mut children = Vec::with_capacity(object.len());
            // The parent of an object's members is its own (unexpanded)
            // member name: `sensorReport`, `persistentDisposition`, ...
            for (key, value) in object {
                push_member_in(&mut children, &name, key, value, namespaces);
            }
            field(name, Cow::Borrowed(""), children)
        }
        scalar_value => field(
            name,
            scalar(scalar_value, vocabulary, namespaces),
            Vec::new(),
        ),
    }
}

/// A bizTransaction, source or destination entry of a JSON list.
fn json_pair(item: &Value, list: &str, id_field: &str, namespaces: &Namespaces) -> String {
    let kind = item
        .get("type")
        .filter(|v| !v.is_null())
        .map(|kind| scalar(kind, vocabulary_of(list), namespaces));
    let id = item.get(id_field).map(|id| scalar(id, None, namespaces));
    pair(kind, id_field, id)
}

/// `type=...` then the identifier of one bizTransaction, source or
/// destination (both already scalar text), canonical.
fn pair(kind: Option<Cow<str>>, id_field: &str, id: Option<Cow<str>>) -> String {
    let mut out = String::new();
    if let Some(kind) = kind.filter(|kind| !kind.trim().is_empty()) {
        out.push_str("type=");
        canonical::push_value(&kind, &mut out);
    }
    if let Some(id) = id.filter(|id| !id.trim().is_empty()) {
        out.push_str(id_field);
        out.push('=');
        canonical::push_value(&id, &mut out);
    }
    out
}

#[cfg(test)]
mod tests;
