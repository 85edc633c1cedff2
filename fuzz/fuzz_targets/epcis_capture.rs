//! `POST /epcis/capture` and `POST /epcis/events`: EPCIS documents read as
//! a stream (the node's streaming reader, with its document, event and
//! outline byte limits), single events as JSON; every event through the
//! embedded EPCIS 2.0 JSON Schema, the event model with capture's changes,
//! then the event rules and what it says about lineage; the header's master
//! data as the carrier events capture makes of it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lotline_core::lineage;
use lotline_node::epcis::bulk::{self, Input};
use lotline_node::epcis::capture::read_event;
use lotline_node::epcis::master_data;
use lotline_node::epcis::schema;
use lotline_node::epcis::stream::{self, Piece};
use serde_json::Value;

/// A document cap well above the inputs libFuzzer makes, so the reader's
/// own limits (per event, outside the event list) are what stop it.
const DOCUMENT_MAX: u64 = 1 << 20;

fn check(raw: &Value, context: Option<&Value>, path: &str) {
    let _ = schema::check(raw);
    if let Ok(event) = read_event(raw, context, path) {
        let _ = event.validate();
        let _ = lineage::derive(&event);
    }
}

fuzz_target!(|data: &[u8]| {
    let mut context: Option<Value> = None;
    let _ = stream::read(data, DOCUMENT_MAX, &mut |piece| {
        match piece {
            Piece::Context(value) => context = Some(value.clone()),
            // Header master data: each vocabulary element as its carrier
            // event, checked like any event of the list.
            Piece::Header(header) => {
                for carrier in master_data::carriers(header, 1_772_438_400_000) {
                    check(&carrier.raw, context.as_ref(), &carrier.path);
                }
            }
            Piece::Event { index, raw, .. } => check(
                &raw,
                context.as_ref(),
                &format!("epcisBody.eventList[{index}]"),
            ),
        }
        Ok(())
    });
    if let Ok(Input::Chunk { events, .. }) = bulk::single(data) {
        for event in &events {
            check(&event.raw, None, &event.path);
        }
    }
});
