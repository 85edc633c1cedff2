//! The GS1 EPCIS 2.0 example documents in `shared/fixtures/epcis/` (real
//! events no one here wrote) must deserialise, validate with no problem and
//! round-trip; and each validation rule fires on a minimal bad event.

use std::path::{Path, PathBuf};

use lotline_core::epcis::{Event, EventProblem};
use serde_json::{Value, json};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/fixtures/epcis");

fn fixture_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(FIXTURES)
        .unwrap_or_else(|e| panic!("cannot read {FIXTURES}: {e}"))
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonld" || e == "json"))
        .collect();
    files.sort();
    files
}

/// The event list of an EPCISDocument or an EPCISQueryDocument.
fn event_list(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap();
    let doc: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let body = &doc["epcisBody"];
    let list = match doc["type"].as_str() {
        Some("EPCISQueryDocument") => &body["queryResults"]["resultsBody"]["eventList"],
        _ => &body["eventList"],
    };
    list.as_array()
        .unwrap_or_else(|| panic!("{}: no eventList", path.display()))
        .clone()
}

#[test]
fn every_fixture_event_deserialises_validates_and_round_trips() {
    let files = fixture_files();
    assert!(
        files.len() >= 12,
        "expected the 12 GS1 fixtures, found {}",
        files.len()
    );
    let mut events = 0;
    for path in &files {
        let name = path.file_name().unwrap().to_string_lossy();
        for (i, raw) in event_list(path).into_iter().enumerate() {
            let event: Event = serde_json::from_value(raw.clone())
                .unwrap_or_else(|e| panic!("{name} event {i}: {e}"));
            let problems = event.validate();
            assert!(problems.is_empty(), "{name} event {i}: {problems:#?}");
            assert!(event.event_time_ms().is_some(), "{name} event {i}");
            assert!(
                !event.canonical_identifiers().is_empty(),
                "{name} event {i}"
            );

            let json = serde_json::to_value(&event).unwrap();
            let again: Event = serde_json::from_value(json.clone()).unwrap();
            assert_eq!(again, event, "{name} event {i}: round trip");
            let bytes = serde_json::to_vec(&event).unwrap();
            let again: Event = serde_json::from_slice(&bytes).unwrap();
            assert_eq!(again, event, "{name} event {i}: byte round trip");
            events += 1;
        }
    }
    assert!(events >= 15, "only {events} events found");
}

#[test]
fn fixture_identifiers_canonicalise() {
    let path = Path::new(FIXTURES).join("Example_9.6.4-TransformationEventWithDigitalLink.jsonld");
    let event: Event = serde_json::from_value(event_list(&path).remove(0)).unwrap();
    let ids = event.canonical_identifiers();
    let mut sorted = ids.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(ids, sorted, "sorted and deduplicated");
    for expected in [
        "https://id.gs1.org/01/00614141777778/10/987",
        "https://id.gs1.org/01/04012345666663",
        "https://id.gs1.org/01/04012345111118/10/4444",
        "https://id.gs1.org/414/4012345000016",
    ] {
        assert!(
            ids.iter().any(|id| id == expected),
            "{expected} missing from {ids:#?}"
        );
    }
    // The URN and the Digital Link forms of the same classes agree.
    let urn_path = Path::new(FIXTURES).join("Example_9.6.4-TransformationEvent.jsonld");
    let urn_event: Event = serde_json::from_value(event_list(&urn_path).remove(0)).unwrap();
    assert_eq!(urn_event.canonical_identifiers(), ids);
    assert_eq!(event.event_time_ms(), Some(1_383_231_536_591));
}

// ---------------------------------------------------------------- negatives

fn object_event() -> Value {
    json!({
        "type": "ObjectEvent",
        "eventTime": "2024-05-31T10:00:00.000+02:00",
        "eventTimeZoneOffset": "+02:00",
        "eventID": "urn:uuid:6b0a3ad8-1d4c-4b8c-9a3e-2f1f3d3c2b1a",
        "action": "OBSERVE",
        "bizStep": "inspecting",
        "disposition": "conformant",
        "epcList": ["https://id.gs1.org/01/09506000134352/21/1", "urn:epc:id:sgtin:0614141.107346.2017"],
        "quantityList": [{"epcClass": "https://id.gs1.org/01/09506000134352/10/L1", "quantity": 5, "uom": "KGM"}],
        "readPoint": {"id": "urn:epc:id:sgln:0614141.07346.1234"},
        "sensorElementList": [{
            "sensorMetadata": {"startTime": "2024-05-31T09:00:00Z", "endTime": "2024-05-31T09:30:00Z"},
            "sensorReport": [{"type": "Temperature", "minValue": 2.0, "maxValue": 7.5, "uom": "CEL"}]
        }],
        "lotline:quality": {
            "kind": "inspection",
            "result": "pass",
            "measurements": [{"name": "diameter", "value": 10.0, "uom": "MMT", "specMin": 9.9, "specMax": 10.1}]
        }
    })
}

fn problems_of(value: Value) -> Vec<EventProblem> {
    let event: Event = serde_json::from_value(value).unwrap();
    event.validate()
}

/// Asserts a problem at `field` whose reason contains `needle`.
#[track_caller]
fn assert_problem(problems: &[EventProblem], field: &str, needle: &str) {
    assert!(
        problems
            .iter()
            .any(|p| p.field == field && p.reason.contains(needle)),
        "no problem at {field} containing {needle:?} in {problems:#?}"
    );
}

fn with(mut base: Value, f: impl FnOnce(&mut Value)) -> Value {
    f(&mut base);
    base
}

#[test]
fn the_base_event_is_valid() {
    assert_eq!(problems_of(object_event()), vec![]);
}

#[test]
fn unknown_bare_field() {
    let problems = problems_of(with(object_event(), |e| e["bizstep"] = json!("shipping")));
    assert_problem(&problems, "bizstep", "unknown field");
    assert_eq!(problems.len(), 1);
    // Namespaced keys, full IRIs and @context are fine.
    let ok = with(object_event(), |e| {
        e["example:myField"] = json!("x");
        e["https://ns.example.com/epcis/myField"] = json!({"nested": 1});
        e["@context"] = json!(["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"]);
    });
    assert_eq!(problems_of(ok), vec![]);
}

#[test]
fn nested_extension_keys_need_a_namespace() {
    let problems = problems_of(with(object_event(), |e| {
        e["readPoint"]["floor"] = json!(2);
        e["sensorElementList"][0]["sensorMetadata"]["owner"] = json!("x");
        e["sensorElementList"][0]["sensorReport"][0]["note"] = json!("x");
        e["quantityList"][0]["example:grade"] = json!("A");
    }));
    assert_problem(&problems, "readPoint.floor", "unknown field");
    assert_problem(
        &problems,
        "sensorElementList[0].sensorMetadata.owner",
        "unknown field",
    );
    assert_problem(
        &problems,
        "sensorElementList[0].sensorReport[0].note",
        "unknown field",
    );
    assert_problem(&problems, "quantityList[0].example:grade", "unknown field");
    // Standard sensorReport fields the model keeps untyped are fine.
    let ok = with(object_event(), |e| {
        e["sensorElementList"][0]["sensorReport"][0]["sDev"] = json!(0.1);
        e["sensorElementList"][0]["sensorReport"][0]["deviceID"] =
            json!("urn:epc:id:giai:4000001.111");
        e["readPoint"]["example:floor"] = json!(2);
    });
    assert_eq!(problems_of(ok), vec![]);
}

fn aggregation_event() -> Value {
    json!({
        "type": "AggregationEvent",
        "eventTime": "2013-06-08T14:58:56.591Z",
        "eventTimeZoneOffset": "+02:00",
        "parentID": "urn:epc:id:sscc:0614141.1234567890",
        "childEPCs": ["urn:epc:id:sgtin:0614141.107346.2017"],
        "action": "ADD",
        "bizStep": "packing"
    })
}

#[test]
fn aggregation_event_with_input_epc_list() {
    assert_eq!(problems_of(aggregation_event()), vec![]);
    let problems = problems_of(with(aggregation_event(), |e| {
        e["inputEPCList"] = json!(["urn:epc:id:sgtin:0614141.107346.2018"]);
    }));
    assert_problem(&problems, "inputEPCList", "not a field of AggregationEvent");
    assert_eq!(problems.len(), 1);
}

#[test]
fn per_type_required_fields() {
    let problems = problems_of(with(aggregation_event(), |e| {
        e.as_object_mut().unwrap().remove("parentID");
    }));
    assert_problem(&problems, "parentID", "required");
    let observe = with(aggregation_event(), |e| {
        e.as_object_mut().unwrap().remove("parentID");
        e["action"] = json!("OBSERVE");
    });
    assert_eq!(problems_of(observe), vec![]);

    let problems = problems_of(with(object_event(), |e| {
        e.as_object_mut().unwrap().remove("action");
    }));
    assert_problem(&problems, "action", "required");

    let problems = problems_of(with(object_event(), |e| {
        let o = e.as_object_mut().unwrap();
        o.remove("epcList");
        o.remove("quantityList");
        o.remove("sensorElementList");
    }));
    assert_problem(&problems, "epcList", "needs");

    let problems = problems_of(with(object_event(), |e| {
        e["ilmd"] = json!({"example:bestBefore": "2025-01-01"})
    }));
    assert_problem(&problems, "ilmd", "only");
    let ilmd_add = with(object_event(), |e| {
        e["action"] = json!("ADD");
        e["ilmd"] = json!({"example:bestBefore": "2025-01-01"});
    });
    assert_eq!(problems_of(ilmd_add), vec![]);

    let transformation = json!({
        "type": "TransformationEvent",
        "eventTime": "2013-10-31T14:58:56.591Z",
        "eventTimeZoneOffset": "+02:00",
        "action": "ADD",
        "inputEPCList": ["urn:epc:id:sgtin:4012345.011122.25"]
    });
    let problems = problems_of(transformation.clone());
    assert_problem(&problems, "action", "not a field of TransformationEvent");
    assert_problem(&problems, "outputEPCList", "needs outputs");
    let with_id = with(transformation, |e| {
        e.as_object_mut().unwrap().remove("action");
        e["transformationID"] = json!("urn:uuid:1");
    });
    assert_eq!(problems_of(with_id), vec![]);

    let transaction = json!({
        "type": "TransactionEvent",
        "eventTime": "2013-10-31T14:58:56.591Z",
        "eventTimeZoneOffset": "+02:00",
        "action": "ADD",
        "epcList": ["urn:epc:id:sgtin:4012345.011122.25"]
    });
    assert_problem(
        &problems_of(transaction),
        "bizTransactionList",
        "at least one",
    );

    let association = json!({
        "type": "AssociationEvent",
        "eventTime": "2013-10-31T14:58:56.591Z",
        "eventTimeZoneOffset": "+02:00",
        "action": "ADD",
        "childEPCs": ["urn:epc:id:sgtin:4012345.011122.25"],
        "persistentDisposition": {"set": ["conformant"]}
    });
    let problems = problems_of(association);
    assert_problem(&problems, "parentID", "required");
    assert_problem(
        &problems,
        "persistentDisposition",
        "not a field of AssociationEvent",
    );
}

#[test]
fn bad_gtin_check_digit_in_epc_list() {
    let problems = problems_of(with(object_event(), |e| {
        e["epcList"][1] = json!("https://id.gs1.org/01/09506000134353/21/1");
    }));
    assert_problem(&problems, "epcList[1]", "check digit 3, expected 2");
    assert_eq!(problems.len(), 1);
}

#[test]
fn identifiers_must_fit_their_place() {
    let problems = problems_of(with(object_event(), |e| {
        e["epcList"] = json!([
            "urn:epc:class:lgtin:4012345.012345.998877",
            "urn:epc:id:sgtin:0614141.107346.2017",
            "https://id.gs1.org/01/10614141073464/21/2017",
            "not a uri"
        ]);
        e["quantityList"][0]["epcClass"] = json!("urn:epc:id:sgtin:0614141.107346.2017");
        e["readPoint"]["id"] = json!("https://id.gs1.org/01/09506000134352");
    }));
    assert_problem(&problems, "epcList[0]", "class-level");
    assert_problem(&problems, "epcList[2]", "same object as epcList[1]");
    assert_problem(&problems, "epcList[3]", "not a uri");
    assert_problem(&problems, "quantityList[0].epcClass", "instance-level");
    assert_problem(&problems, "readPoint.id", "not a location");
}

#[test]
fn negative_quantity() {
    let problems = problems_of(with(object_event(), |e| {
        e["quantityList"][0]["quantity"] = json!(-1)
    }));
    assert_problem(
        &problems,
        "quantityList[0].quantity",
        "impossible quantity -1",
    );
    let problems = problems_of(with(object_event(), |e| {
        e["quantityList"][0]["uom"] = json!("kg")
    }));
    assert_problem(&problems, "quantityList[0].uom", "unit code");

    // NaN cannot come from JSON, but an event built in code can hold it.
    let mut event: Event = serde_json::from_value(object_event()).unwrap();
    event.quantity_list[0].quantity = Some(f64::NAN);
    assert_problem(
        &event.validate(),
        "quantityList[0].quantity",
        "impossible quantity",
    );
}

#[test]
fn sensor_min_greater_than_max() {
    let problems = problems_of(with(object_event(), |e| {
        e["sensorElementList"][0]["sensorReport"][0]["minValue"] = json!(9.0);
    }));
    assert_problem(
        &problems,
        "sensorElementList[0].sensorReport[0].minValue",
        "greater than maxValue",
    );
    let problems = problems_of(with(object_event(), |e| {
        e["sensorElementList"][0]["sensorReport"][0]["meanValue"] = json!(8.0);
        e["sensorElementList"][0]["sensorMetadata"]["endTime"] = json!("2024-05-31T08:00:00Z");
        e["sensorElementList"][0]["sensorReport"][0]["time"] = json!("yesterday");
    }));
    assert_problem(
        &problems,
        "sensorElementList[0].sensorReport[0].meanValue",
        "outside",
    );
    assert_problem(
        &problems,
        "sensorElementList[0].sensorMetadata.endTime",
        "before startTime",
    );
    assert_problem(
        &problems,
        "sensorElementList[0].sensorReport[0].time",
        "not RFC 3339",
    );
    let mut event: Event = serde_json::from_value(object_event()).unwrap();
    event.sensor_element_list[0].sensor_report[0].value = Some(f64::INFINITY);
    assert_problem(
        &event.validate(),
        "sensorElementList[0].sensorReport[0].value",
        "not a finite number",
    );
}

#[test]
fn pass_with_out_of_spec_inspection() {
    let problems = problems_of(with(object_event(), |e| {
        e["lotline:quality"]["measurements"][0]["value"] = json!(10.4);
    }));
    assert_problem(
        &problems,
        "lotline:quality.measurements[0]",
        "result pass contradicts measurement \"diameter\"",
    );
    // The same measurement with result fail is consistent.
    let fail = with(object_event(), |e| {
        e["lotline:quality"]["measurements"][0]["value"] = json!(10.4);
        e["lotline:quality"]["result"] = json!("fail");
    });
    assert_eq!(problems_of(fail), vec![]);
    let problems = problems_of(with(object_event(), |e| {
        e["lotline:quality"]["measurements"][0]["specMin"] = json!(11);
    }));
    assert_problem(
        &problems,
        "lotline:quality.measurements[0].specMin",
        "greater than specMax",
    );
    let problems = problems_of(with(object_event(), |e| {
        e["lotline:quality"]["instrument"] =
            json!({"id": "caliper-7", "calibratedUntil": "2024-05-30"});
    }));
    assert_problem(
        &problems,
        "lotline:quality.instrument.calibratedUntil",
        "expired",
    );
    let calibrated = with(object_event(), |e| {
        e["lotline:quality"]["instrument"] =
            json!({"id": "caliper-7", "calibratedUntil": "2024-05-31"});
    });
    assert_eq!(problems_of(calibrated), vec![]);
}

#[test]
fn other_quality_facts() {
    let recall = |scope: Value| {
        with(object_event(), |e| {
            e["lotline:quality"] = json!({"kind": "recallOrder", "recallId": "R-1", "reason": "contamination", "class": "I", "scope": scope});
        })
    };
    assert_eq!(
        problems_of(recall(json!([
            "https://id.gs1.org/01/09506000134352/10/L1"
        ]))),
        vec![]
    );
    assert_problem(
        &problems_of(recall(json!([]))),
        "lotline:quality.scope",
        "at least one",
    );
    assert_problem(
        &problems_of(recall(json!(["urn:epc:class:lgtin:4012345.01234.1"]))),
        "lotline:quality.scope[0]",
        "add up",
    );

    let certificate = |from: &str, until: &str, digest: &str| {
        with(object_event(), |e| {
            e["lotline:quality"] = json!({
                "kind": "certificate", "certificateId": "C-1", "issuer": "TÜV", "standard": "EN 10204 3.1",
                "validFrom": from, "validUntil": until,
                "document": {"uri": "https://docs.example.com/c1.pdf", "mediaType": "application/pdf", "blake3": digest}
            });
        })
    };
    let digest = "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262";
    assert_eq!(
        problems_of(certificate("2024-01-01", "2025-01-01T00:00:00Z", digest)),
        vec![]
    );
    let problems = problems_of(certificate(
        "2025-01-01",
        "2024-01-01",
        &digest.to_uppercase(),
    ));
    assert_problem(&problems, "lotline:quality.validUntil", "before validFrom");
    assert_problem(
        &problems,
        "lotline:quality.document.blake3",
        "64 lowercase hex",
    );
    assert_problem(
        &problems_of(certificate("01/01/2024", "2025-01-01", digest)),
        "lotline:quality.validFrom",
        "",
    );
}

#[test]
fn times_and_offsets() {
    let problems = problems_of(with(object_event(), |e| {
        e["eventTime"] = json!("2024-02-30T10:00:00Z");
        e["recordTime"] = json!("2024-05-31T10:00:00");
        e["eventTimeZoneOffset"] = json!("Z");
        e["errorDeclaration"] =
            json!({"declarationTime": "soon", "reason": "typo", "example:note": "x"});
    }));
    assert_problem(&problems, "eventTime", "does not exist");
    assert_problem(&problems, "recordTime", "not RFC 3339");
    assert_problem(&problems, "eventTimeZoneOffset", "");
    assert_problem(
        &problems,
        "errorDeclaration.declarationTime",
        "not RFC 3339",
    );
    assert_problem(&problems, "errorDeclaration.reason", "error reason");
    assert_eq!(problems.len(), 5, "{problems:#?}");
}

#[test]
fn vocabularies() {
    for ok in [
        "shipping",
        "urn:epcglobal:cbv:bizstep:shipping",
        "https://ref.gs1.org/cbv/BizStep-shipping",
        "http://epcis.example.org/hc/bizstep/summarising_discharge",
        "example:myStep",
    ] {
        assert_eq!(
            problems_of(with(object_event(), |e| e["bizStep"] = json!(ok))),
            vec![],
            "{ok}"
        );
    }
    for (bad, needle) in [
        ("", "empty"),
        ("shiping", "neither a CBV 2.0 bizStep nor a URI"),
        ("Shipping", "neither"),
        ("urn:epcglobal:cbv:bizstep:shiping", "not a CBV 2.0 bizStep"),
        ("urn:epcglobal:cbv:disp:in_transit", "another vocabulary"),
        (
            "https://ref.gs1.org/cbv/Disp-in_transit",
            "another vocabulary",
        ),
    ] {
        assert_problem(
            &problems_of(with(object_event(), |e| e["bizStep"] = json!(bad))),
            "bizStep",
            needle,
        );
    }
    let problems = problems_of(with(object_event(), |e| {
        e["disposition"] = json!("shipping");
        e["bizTransactionList"] = json!([{"type": "purchase_order", "bizTransaction": "po-1"}]);
        e["sourceList"] = json!([{"type": "owner", "source": "urn:epc:id:sgln:0614141.07346.0"}]);
    }));
    assert_problem(&problems, "disposition", "disposition");
    assert_problem(
        &problems,
        "bizTransactionList[0].type",
        "business transaction type",
    );
    assert_problem(
        &problems,
        "bizTransactionList[0].bizTransaction",
        "not an absolute URI",
    );
    assert_problem(&problems, "sourceList[0].type", "source/destination type");
}

#[test]
fn identifier_count_is_bounded() {
    let mut event: Event = serde_json::from_value(object_event()).unwrap();
    event.epc_list = (0..=lotline_core::limits::EVENT_IDENTIFIERS_MAX)
        .map(|i| format!("urn:epc:id:sgtin:0614141.107346.{i}"))
        .collect();
    let problems = event.validate();
    let max = lotline_core::limits::EVENT_IDENTIFIERS_MAX;
    assert_problem(
        &problems,
        "epcList",
        &format!("more than the {max} allowed"),
    );
    assert!(problems.len() < 5);
}

#[test]
fn canonical_identifiers_and_event_time() {
    let event: Event = serde_json::from_value(with(object_event(), |e| {
        e["epcList"] = json!([
            "urn:epc:id:sgtin:0614141.107346.2017",
            "https://example.com/01/10614141073464/21/2017",
            "bad one"
        ]);
    }))
    .unwrap();
    assert_eq!(
        event.canonical_identifiers(),
        vec![
            "https://id.gs1.org/01/09506000134352/10/L1".to_owned(),
            "https://id.gs1.org/01/10614141073464/21/2017".to_owned(),
            "https://id.gs1.org/414/0614141073467/254/1234".to_owned(),
        ]
    );
    assert_eq!(event.event_time_ms(), Some(1_717_142_400_000));
}
