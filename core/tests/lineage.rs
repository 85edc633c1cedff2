//! What each EPCIS event contributes to the lineage graph
//! (`lotline_core::lineage::derive`), on the GS1 examples and on edge cases.

use std::path::Path;

use lotline_core::epcis::Event;
use lotline_core::lineage::{CustodyState, EdgeKind, canonical, carrier, derive};
use serde_json::{Value, json};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/fixtures/epcis");

fn fixture_events(name: &str) -> Vec<Event> {
    let path = Path::new(FIXTURES).join(name);
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    doc["epcisBody"]["eventList"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| serde_json::from_value(e.clone()).unwrap())
        .collect()
}

fn event(value: Value) -> Event {
    serde_json::from_value(value).unwrap()
}

#[test]
fn a_transformation_links_every_input_to_every_output() {
    let events = fixture_events("Example_9.6.4-TransformationEvent.jsonld");
    let derived = derive(&events[0]);
    // 2 input EPCs + 3 input classes, times 4 output EPCs.
    assert_eq!(derived.edges.len(), 5 * 4);
    assert!(
        derived
            .edges
            .iter()
            .all(|e| e.kind == EdgeKind::TransformedInto)
    );
    let input = canonical("urn:epc:class:lgtin:4012345.011111.4444");
    let output = canonical("urn:epc:id:sgtin:4012345.077889.25");
    assert!(
        derived
            .edges
            .iter()
            .any(|e| e.from == input && e.to == output)
    );
    assert!(
        input.starts_with("https://id.gs1.org/01/"),
        "edges use canonical ids"
    );
    // The outputs are held by whoever signed the transformation.
    let custody = derived.custody.expect("custody");
    assert_eq!(custody.subjects.len(), 4);
    assert!(matches!(custody.state, CustodyState::Held { .. }));
}

#[test]
fn the_digital_link_and_urn_forms_give_the_same_edges() {
    let urn = derive(&fixture_events("Example_9.6.4-TransformationEvent.jsonld")[0]);
    let dl = derive(&fixture_events("Example_9.6.4-TransformationEventWithDigitalLink.jsonld")[0]);
    let key = |d: &lotline_core::lineage::Derived| {
        let mut edges: Vec<(String, String)> = d
            .edges
            .iter()
            .map(|e| (e.from.clone(), e.to.clone()))
            .collect();
        edges.sort();
        edges
    };
    assert_eq!(key(&urn), key(&dl));
}

#[test]
fn aggregation_add_packs_children_into_the_parent_and_delete_does_not() {
    let events = fixture_events("Example_9.6.3-AggregationEvent.jsonld");
    let derived = derive(&events[0]);
    let parent = canonical(events[0].parent_id.as_deref().unwrap());
    assert!(!derived.edges.is_empty());
    assert!(
        derived
            .edges
            .iter()
            .all(|e| e.kind == EdgeKind::PackedIn && e.to == parent)
    );
    let mut unpack = events[0].clone();
    unpack.action = Some(lotline_core::epcis::Action::Delete);
    assert!(
        derive(&unpack)
            .edges
            .iter()
            .all(|e| e.kind != EdgeKind::PackedIn)
    );
}

#[test]
fn an_error_declaration_only_retracts() {
    let events = fixture_events("ErrorDeclarationAndCorrectiveEvent.jsonld");
    let declaration = events
        .iter()
        .find(|e| e.error_declaration.is_some())
        .expect("the fixture has a declaration");
    let derived = derive(declaration);
    assert_eq!(derived.retracts, declaration.event_id);
    assert!(derived.edges.is_empty() && derived.custody.is_none() && derived.facts.is_empty());
}

#[test]
fn commissioning_serials_with_a_lot_number_ties_them_to_the_lot() {
    let derived = derive(&event(json!({
        "type": "ObjectEvent", "action": "ADD", "bizStep": "commissioning",
        "eventTime": "2026-03-02T08:00:00Z", "eventTimeZoneOffset": "+08:00",
        "epcList": ["https://id.gs1.org/01/09506000134352/21/7", "urn:epc:id:sgtin:9506000.013435.8"],
        "ilmd": {"cbvmda:lotNumber": "L1"},
    })));
    let lot = "https://id.gs1.org/01/09506000134352/10/L1";
    assert_eq!(derived.edges.len(), 2);
    assert!(
        derived
            .edges
            .iter()
            .all(|e| e.kind == EdgeKind::Serialised && e.from == lot)
    );
}

#[test]
fn shipping_puts_goods_in_transit_to_the_owning_party() {
    let derived = derive(&event(json!({
        "type": "ObjectEvent", "action": "OBSERVE", "bizStep": "urn:epcglobal:cbv:bizstep:shipping",
        "eventTime": "2026-03-02T08:00:00Z", "eventTimeZoneOffset": "+08:00",
        "epcList": ["https://id.gs1.org/00/095060000000000014"],
        "destinationList": [
            {"type": "location", "destination": "urn:epc:id:sgln:9506000.00003.0"},
            {"type": "owning_party", "destination": "urn:epc:id:pgln:9506000.00003"},
        ],
    })));
    let custody = derived.custody.expect("custody");
    match custody.state {
        CustodyState::InTransit {
            to_party,
            to_location,
        } => {
            assert_eq!(to_party.as_deref(), Some("urn:epc:id:pgln:9506000.00003"));
            assert!(to_location.is_some());
        }
        other => panic!("expected in transit, got {other:?}"),
    }
    assert_eq!(derived.edges[0].kind, EdgeKind::ShippedTo);
}

#[test]
fn a_shipment_is_carried_by_the_party_that_possesses_goods_another_will_own() {
    // Goal: the carrier of a shipment is the possessing party of its
    // destination list beside a different owning party; a receiver that
    // both owns and possesses is no carrier, and neither is a party named
    // on an event that ships nothing.
    let shipment = |step: &str, possessing: &str| {
        event(json!({
            "type": "ObjectEvent", "action": "OBSERVE", "bizStep": step,
            "eventTime": "2026-03-02T08:00:00Z", "eventTimeZoneOffset": "+08:00",
            "epcList": ["https://id.gs1.org/00/095060000000000014"],
            "destinationList": [
                {"type": "owning_party", "destination": "urn:epc:id:pgln:9506000.00003"},
                {"type": "possessing_party", "destination": possessing},
            ],
        }))
    };
    let haulier = "urn:epc:id:pgln:9506006.00001";
    assert_eq!(
        carrier(&shipment("shipping", haulier)).as_deref(),
        Some(haulier)
    );
    // The goods are still shipped to their next owner.
    let derived = derive(&shipment("shipping", haulier));
    assert_eq!(derived.edges[0].kind, EdgeKind::ShippedTo);
    assert_eq!(derived.edges[0].to, "urn:epc:id:pgln:9506000.00003");
    assert_eq!(
        carrier(&shipment("shipping", "urn:epc:id:pgln:9506000.00003")),
        None
    );
    assert_eq!(carrier(&shipment("receiving", haulier)), None);
}

#[test]
fn sensor_reports_are_summarised_per_type_and_an_inspection_without_subjects_is_no_fact() {
    for event in fixture_events("SensorDataExample1.jsonld") {
        let derived = derive(&event);
        for fact in &derived.facts {
            assert!(!fact.subjects.is_empty());
            for s in &fact.sensors {
                assert!(
                    s.min.unwrap_or(f64::MIN) <= s.max.unwrap_or(f64::MAX),
                    "{s:?}"
                );
            }
        }
    }
    let observation = derive(&event(json!({
        "type": "ObjectEvent", "action": "OBSERVE", "bizStep": "inspecting",
        "eventTime": "2026-03-02T08:00:00Z", "eventTimeZoneOffset": "+08:00",
        "readPoint": {"id": "urn:epc:id:sgln:9506000.00003.0"},
        "sensorElementList": [{"sensorReport": [{"type": "gs1:Temperature", "value": 9.0, "uom": "CEL"}]}],
    })));
    assert!(
        observation.facts.is_empty(),
        "a reading about no goods is about a place"
    );
}

#[test]
fn derive_never_panics_on_any_fixture_event() {
    for entry in std::fs::read_dir(FIXTURES).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if name.starts_with("EPCISQueryDocument") {
            continue;
        }
        for event in fixture_events(&name) {
            let derived = derive(&event);
            assert!(
                derived.edges.iter().all(|e| e.from != e.to),
                "{name}: a self edge"
            );
        }
    }
}
