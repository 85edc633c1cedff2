//! Unit tests of the pre-hash string: each opens with its goal. The
//! comparison with GS1's reference generator on the GS1 examples is
//! `core/tests/event_hash_reference.rs`.

use serde_json::json;

use super::*;

fn event(value: serde_json::Value) -> Event {
    serde_json::from_value(value).unwrap()
}

fn shipping() -> serde_json::Value {
    json!({
        "@context": ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld",
                     {"example": "https://ns.example.com/epcis/"}],
        "type": "ObjectEvent",
        "eventTime": "2005-04-03T20:33:31.116-06:00",
        "eventTimeZoneOffset": "-06:00",
        "epcList": ["urn:epc:id:sgtin:0614141.107346.2018", "urn:epc:id:sgtin:0614141.107346.2017"],
        "action": "OBSERVE",
        "bizStep": "shipping",
        "disposition": "in_transit",
        "readPoint": {"id": "urn:epc:id:sgln:0614141.07346.1234"},
        "bizTransactionList": [{"type": "po", "bizTransaction": "http://transaction.acme.com/po/12345678"}],
        "example:myField": "Example of a vendor/user extension"
    })
}

/// Goal: the pre-hash string is exactly the one the algorithm describes
/// for a small event (checked by hand against GS1's generator output for
/// the same event, Example_9.6.1 event 1 with the extension added).
#[test]
fn pre_hash_string_of_a_small_event() {
    let expected = concat!(
        "eventType=ObjectEvent",
        "eventTime=2005-04-04T02:33:31.116Z",
        "eventTimeZoneOffset=-06:00",
        "epcList",
        "epc=https://id.gs1.org/01/10614141073464/21/2017",
        "epc=https://id.gs1.org/01/10614141073464/21/2018",
        "action=OBSERVE",
        "bizStep=https://ref.gs1.org/cbv/BizStep-shipping",
        "disposition=https://ref.gs1.org/cbv/Disp-in_transit",
        "readPointid=https://id.gs1.org/414/0614141073467/254/1234",
        "bizTransactionListtype=https://ref.gs1.org/cbv/BTT-pobizTransaction=http://transaction.acme.com/po/12345678",
        "{https://ns.example.com/epcis/}myField=Example of a vendor/user extension",
    );
    assert_eq!(prehash(&event(shipping())), expected);
}

/// Goal: what the hash must ignore does not change it (list order, member
/// order, identifier and vocabulary spellings, eventID, recordTime, the
/// prefix chosen for a namespace), and what it must not ignore does.
#[test]
fn the_hash_names_the_event_not_its_spelling() {
    let base = event_hash(&event(shipping()));
    let mut respelled = shipping();
    respelled["epcList"] = json!([
        "https://id.gs1.org/01/10614141073464/21/2017",
        "https://brand.example/01/10614141073464/21/2018?exp=2030"
    ]);
    respelled["bizStep"] = json!("urn:epcglobal:cbv:bizstep:shipping");
    respelled["disposition"] = json!("https://ref.gs1.org/cbv/Disp-in_transit");
    respelled["eventTime"] = json!("2005-04-04T02:33:31.116Z");
    respelled["eventID"] = json!("urn:uuid:5d0a4e9c-0000-4000-8000-000000000000");
    respelled["@context"][1] = json!({"ex2": "https://ns.example.com/epcis/"});
    let value = respelled
        .as_object_mut()
        .unwrap()
        .remove("example:myField")
        .unwrap();
    respelled["ex2:myField"] = value;
    assert_eq!(event_hash(&event(respelled)), base);

    let mut changed = shipping();
    changed["epcList"][0] = json!("urn:epc:id:sgtin:0614141.107346.2019");
    assert_ne!(event_hash(&event(changed)), base);
    let mut offset = shipping();
    offset["eventTime"] = json!("2005-04-03T21:33:31.116-05:00");
    offset["eventTimeZoneOffset"] = json!("-05:00");
    assert_ne!(
        event_hash(&event(offset)),
        base,
        "the offset is part of the event"
    );
    let mut declared = shipping();
    declared["errorDeclaration"] = json!({"declarationTime": "2005-04-05T00:00:00Z"});
    assert_eq!(
        event_hash(&event(declared)),
        base,
        "a correction hashes like the event it corrects"
    );
}

/// Goal: the `ni` URI round-trips and has the form RFC 6920 and CBV 2.0
/// give.
#[test]
fn ni_uri_form() {
    let hash = event_hash(&event(shipping()));
    let uri = hash.uri();
    assert!(uri.starts_with("ni:///sha-256;"), "{uri}");
    assert!(uri.ends_with("?ver=CBV2.0"), "{uri}");
    assert_eq!(uri.len(), "ni:///sha-256;".len() + 64 + "?ver=CBV2.0".len());
    assert_eq!(EventHash::parse(&uri), Some(hash));
    assert_eq!(EventHash::parse("ni:///sha-256;zz?ver=CBV2.0"), None);
}

/// Goal: sensor data follows the nested order (metadata, then reports
/// sorted), bare sensor types and `gs1:` CURIEs expand alike, booleans
/// are JSON's `true`.
#[test]
fn sensor_reports() {
    let with = |kind: &str| {
        event(json!({
            "type": "ObjectEvent",
            "eventTime": "2019-04-02T15:00:00.000+01:00",
            "eventTimeZoneOffset": "+01:00",
            "action": "OBSERVE",
            "sensorElementList": [{
                "sensorMetadata": {"time": "2019-04-02T14:05:00.000+01:00"},
                "sensorReport": [
                    {"type": kind, "value": 26.0, "uom": "CEL", "booleanValue": true},
                    {"type": "Illuminance", "value": 800, "uom": "LUX"}
                ]
            }]
        }))
    };
    let text = prehash(&with("Temperature"));
    assert!(
        text.ends_with(concat!(
            "sensorElementListsensorElementsensorMetadatatime=2019-04-02T13:05:00.000Z",
            "sensorReporttype=https://gs1.org/voc/Illuminancevalue=800uom=LUX",
            "sensorReporttype=https://gs1.org/voc/Temperaturevalue=26booleanValue=trueuom=CEL"
        )),
        "{text}"
    );
    assert_eq!(
        event_hash(&with("gs1:Temperature")),
        event_hash(&with("Temperature"))
    );
}

/// Goal: every table of the canonical order names each property once, which
/// is what lets `ordered` place each field with one lookup.
#[test]
fn order_names_are_distinct() {
    fn check(table: &[Prop], path: &str) {
        let mut names: Vec<&str> = table.iter().map(|prop| prop.name).collect();
        names.sort_unstable();
        let count = names.len();
        names.dedup();
        assert_eq!(names.len(), count, "a name repeats in the order of {path}");
        for prop in table {
            check(prop.children, prop.name);
        }
    }
    check(ORDER, "the event");
}

/// The pre-hash string as the event's whole JSON form gives it: the walk
/// [`prehash`] reads from the typed event instead, and must equal.
fn prehash_of_json_form(event: &Event) -> String {
    let Value::Object(object) = serde_json::to_value(event).unwrap() else {
        panic!("an event serialises as a JSON object");
    };
    let namespaces = Namespaces::of(object.get("@context"));
    let mut children = Vec::new();
    for (key, value) in &object {
        if !IGNORED.contains(&key.as_str()) {
            push_member(&mut children, key, value, &namespaces);
        }
    }
    string_of(event, children)
}

/// Every event of GS1's JSON examples, the document's `@context` copied in.
fn fixture_events() -> Vec<Event> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/fixtures/epcis");
    let mut events = Vec::new();
    for entry in std::fs::read_dir(dir).expect("the GS1 fixtures are present") {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "jsonld") {
            continue;
        }
        let document: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let body = &document["epcisBody"];
        let list = body
            .get("eventList")
            .or_else(|| body.pointer("/queryResults/resultsBody/eventList"));
        for raw in list.and_then(Value::as_array).into_iter().flatten() {
            let mut raw = raw.clone();
            if let Some(context) = document.get("@context") {
                raw["@context"] = context.clone();
            }
            if let Ok(event) = serde_json::from_value::<Event>(raw) {
                events.push(event);
            }
        }
    }
    events
}

/// Goal: reading the typed event gives the pre-hash string its JSON form
/// gives, member for member: on GS1's examples, and on events that carry
/// every member the typed walk reads itself (quantities with extensions
/// and a number without a JSON form, persistent dispositions, sources and
/// destinations, locations with extensions, ILMD, certification info, the
/// quality fact, a bound prefix on an extension name).
#[test]
fn the_typed_walk_is_the_json_forms_walk() {
    let mut events = fixture_events();
    assert!(events.len() >= 15, "{} fixture events", events.len());
    events.push(event(shipping()));
    events.push(event(json!({
        "@context": [{"ex": "https://ns.example.com/epcis/", "lotline": "https://lotline.example/ns/"}],
        "type": "TransformationEvent",
        "eventTime": "2024-01-02T03:04:05.678+08:00",
        "eventTimeZoneOffset": "+08:00",
        "certificationInfo": ["https://cert.example/1", "https://cert.example/2"],
        "inputEPCList": ["urn:epc:id:sgtin:0614141.107346.2017"],
        "inputQuantityList": [
            {"epcClass": "urn:epc:class:lgtin:4012345.012345.998877", "quantity": 200.50, "uom": "KGM"},
            {"epcClass": "urn:epc:idpat:sgtin:4012345.098765.*", "quantity": 10, "ex:grade": "A"}
        ],
        "outputEPCList": ["https://id.gs1.org/01/09506002480235/21/1", "ex:thing"],
        "outputQuantityList": [{"epcClass": "https://id.gs1.org/01/09506002755777/10/SHT1"}],
        "transformationID": "urn:epc:id:gdti:0614141.12345.400",
        "bizStep": "urn:epcglobal:cbv:bizstep:commissioning",
        "disposition": "active",
        "persistentDisposition": {"set": ["completeness_verified", "cbv:Disp-active"], "unset": ["needs_replacement"]},
        "bizTransactionList": [
            {"type": "po", "bizTransaction": "urn:epc:id:gdti:0614141.00001.1618034"},
            {"bizTransaction": "http://transaction.acme.com/po/1"}
        ],
        "sourceList": [{"type": "owning_party", "source": "urn:epc:id:pgln:9520001.11111"}],
        "destinationList": [
            {"type": "urn:epcglobal:cbv:sdt:location", "destination": "urn:epc:id:sgln:9520999.99999.0"},
            {"type": "possessing_party", "destination": "ex:party"}
        ],
        "readPoint": {"id": "urn:epc:id:sgln:0614141.00777.0", "ex:floor": 2},
        "bizLocation": {"id": "https://id.gs1.org/414/9506002000105", "ex:zone": {"ex:code": "Z1"}},
        "ilmd": {"cbvmda:lotNumber": "LOT1", "ex:grade": ["A", "B"], "cbvmda:bestBeforeDate": "2025-01-01"},
        "lotline:quality": {
            "kind": "inspection",
            "result": "pass",
            "measurements": [{"name": "length", "value": 12.5, "uom": "MMT", "specMin": 12.0, "specMax": 13.0}],
            "instrument": {"id": "urn:epc:id:giai:4012345.1"}
        },
        "ex:note": "  spaced  ",
        "ex:flags": [true, false, null]
    })));
    let mut odd = event(shipping());
    odd.quantity_list.push(crate::epcis::QuantityElement {
        epc_class: "urn:epc:class:lgtin:4012345.012345.1".to_owned(),
        quantity: Some(f64::NAN),
        uom: None,
        extensions: Default::default(),
    });
    odd.persistent_disposition = Some(Default::default());
    odd.ilmd = Some(Default::default());
    odd.parent_id = Some(String::new());
    events.push(odd);
    for event in &events {
        assert_eq!(prehash(event), prehash_of_json_form(event), "{event:?}");
    }
}
