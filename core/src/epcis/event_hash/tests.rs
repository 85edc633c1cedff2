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
