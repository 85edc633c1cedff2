//! One EPCIS 2.0 event (JSON) into the event model, then every pure rule
//! that reads an event: validation, lineage derivation, canonical
//! identifiers.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lotline_core::epcis::Event;
use lotline_core::lineage;
use lotline_fuzz::check_json_round_trip;

fuzz_target!(|data: &[u8]| {
    let Ok(event) = serde_json::from_slice::<Event>(data) else {
        return;
    };
    let problems = event.validate();
    let _ = lineage::derive(&event);
    let _ = event.canonical_identifiers();
    let _ = event.event_time_ms();
    let _ = event.identifiers().count();
    check_json_round_trip(&event);
    // Validation is a function of the value, not of its spelling.
    let again: Event = match serde_json::to_vec(&event).map(|j| serde_json::from_slice(&j)) {
        Ok(Ok(event)) => event,
        other => panic!("own JSON of an event does not decode: {other:?}"),
    };
    assert_eq!(
        again.validate(),
        problems,
        "validation changed across a round trip"
    );
});
