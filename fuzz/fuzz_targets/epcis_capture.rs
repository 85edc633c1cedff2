//! `POST /epcis/capture` and `POST /epcis/events`: EPCIS documents and single
//! events as JSON, through the node's reader (JSON, the embedded EPCIS 2.0
//! JSON Schema, event count, the event model), then the event rules.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lotline_core::lineage;
use lotline_node::epcis::capture::{read_document, read_single};

fuzz_target!(|data: &[u8]| {
    for read in [read_document(data), read_single(data)]
        .into_iter()
        .flatten()
    {
        for (_, event) in &read.events {
            let _ = event.validate();
            let _ = lineage::derive(event);
        }
    }
});
