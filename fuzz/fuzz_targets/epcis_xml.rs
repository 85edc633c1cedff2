//! `POST /epcis/capture` with an XML body: the safe XML reader (no DTD,
//! five entities, depth and element caps) and the conversion of an EPCIS
//! 2.0/1.x XML document to the JSON-LD document, whose events then go
//! through the JSON Schema, the event model and the CBV 2.0 event hash.
//! Any input must end in a document or a typed error, never a panic; a
//! converted document's events are also written back as an XML query
//! document (`Accept: application/xml`) and read again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lotline_core::epcis::event_hash::event_hash;
use lotline_node::epcis::capture::read_event;
use lotline_node::epcis::{schema, xml};

fuzz_target!(|data: &[u8]| {
    let Ok(document) = xml::read_document(data) else {
        return;
    };
    let _ = schema::check(&document);
    let query = serde_json::json!({
        "@context": document.get("@context"),
        "epcisBody": {"queryResults": {"queryName": "SimpleEventQuery",
            "resultsBody": {"eventList": document["epcisBody"]["eventList"]}}}
    });
    let written = xml::write::query_document(&query);
    let _ = xml::read_document(written.as_bytes());
    let context = document.get("@context");
    if let Some(events) = document["epcisBody"]["eventList"].as_array() {
        for raw in events {
            if let Ok(event) = read_event(raw, context, "") {
                let _ = event.validate();
                let _ = event_hash(&event);
            }
        }
    }
});
