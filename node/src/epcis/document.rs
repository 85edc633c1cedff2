//! Query results as EPCIS 2.0 JSON-LD: each event as captured, with the
//! repository's `recordTime` and the attestation that proves it, inside an
//! `EPCISQueryDocument`.

use serde_json::{Value, json};

use super::query::Found;

/// The GS1 EPCIS 2.0 JSON-LD context.
pub const GS1_CONTEXT: &str = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld";
/// The namespace of Lotline's extensions (`lotline:quality`,
/// `lotline:attestation`).
pub const LOTLINE_NAMESPACE: &str = "https://lotline.dev/epcis/";
/// The query name reported in results (the REST bindings' simple query).
pub const QUERY_NAME: &str = "SimpleEventQuery";

/// The top-level `@context` of every document the node writes.
fn context() -> Value {
    json!([GS1_CONTEXT, {"lotline": LOTLINE_NAMESPACE}])
}

/// One event as the query returns it: the captured event, `recordTime` =
/// commit time, `lotline:eventHash` (its CBV 2.0 hash), `lotline:attestation`
/// naming the attestation (id, height, leaf index, issuing org) whose
/// receipt proves the event, and `lotline:duplicateOf` (the attestation id
/// of the first capture) on a later capture of the same event.
pub fn event_json(found: &Found) -> Value {
    let mut value = serde_json::to_value(&found.event).unwrap_or(Value::Null);
    if let Value::Object(object) = &mut value {
        object.insert(
            "recordTime".into(),
            Value::String(lotline_core::time::format_rfc3339_ms(found.record_time_ms)),
        );
        object.insert("lotline:eventHash".into(), Value::String(found.hash.uri()));
        object.insert(
            "lotline:attestation".into(),
            json!({
                "id": found.id,
                "height": found.at.height,
                "index": found.at.index,
                "org": found.org,
            }),
        );
        if let Some(first) = &found.duplicate_of {
            object.insert("lotline:duplicateOf".into(), json!(first));
        }
    }
    value
}

/// One event on its own (`GET /epcis/events/{eventID}`): with a `@context`
/// when the captured event had none.
pub fn single_event_json(found: &Found) -> Value {
    let mut value = event_json(found);
    if let Value::Object(object) = &mut value
        && !object.contains_key("@context")
    {
        object.insert("@context".into(), context());
    }
    value
}

/// An `EPCISQueryDocument` holding `events`, created at `now_ms`.
pub fn query_document(events: &[Found], now_ms: i64) -> Value {
    let list: Vec<Value> = events.iter().map(event_json).collect();
    json!({
        "@context": context(),
        "type": "EPCISQueryDocument",
        "schemaVersion": "2.0",
        "creationDate": lotline_core::time::format_rfc3339_ms(now_ms),
        "epcisBody": {
            "queryResults": {
                "queryName": QUERY_NAME,
                "resultsBody": {"eventList": list}
            }
        }
    })
}
