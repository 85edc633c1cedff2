//! Reading a capture request into events, and turning events into
//! statements signed by the capturing org's key (custodial signing).
//!
//! Order, cheapest and most decisive first: JSON; the EPCIS 2.0 JSON Schema
//! over the whole body (violations name a JSON pointer); the event count;
//! each event into the project's [`Event`] model (unknown event types and
//! shapes the model cannot hold are named by their index). The project's
//! semantic rules (`Event::validate`), the write policy and the signature
//! are then checked by admission, exactly as for `POST /v1/attestations`.
//!
//! What capture changes in an event, and why (EPCIS 2.0 REST bindings):
//! - `recordTime` is dropped: the repository sets it; queries report the
//!   commit time of the block that holds the event.
//! - A missing `eventID` is filled in with a `urn:uuid:` (version 4, from
//!   the statement's random nonce), so every event can be fetched and
//!   corrected by id, as the capture interface description asks.
//! - The document's `@context` is copied into each event that has none, so
//!   the namespaced extensions it uses stay resolvable when the event is
//!   returned on its own.

use lotline_core::Envelope;
use lotline_core::api::FieldProblem;
use lotline_core::crypto::SigningKey;
use lotline_core::epcis::{Event, EventType};
use lotline_core::hash::Digest;
use lotline_core::limits::BATCH_ITEMS_MAX;
use lotline_core::statement::{STATEMENT_VERSION, Statement};
use serde_json::{Map, Value};

use super::schema::{self, Violation};

/// Events in one capture document: a batch submit's limit, since a
/// document is admitted as one batch.
pub const CAPTURE_EVENTS_MAX: usize = BATCH_ITEMS_MAX;

/// What a capture body was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyKind {
    Document,
    QueryDocument,
    Event,
}

/// A capture body that cannot be captured at all (nothing is applied).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ReadError {
    #[error("the body is not JSON: {0}")]
    Json(String),
    #[error("expected {expected}, got a JSON document of type {found:?}")]
    WrongKind {
        expected: &'static str,
        found: String,
    },
    #[error("the document violates the EPCIS 2.0 JSON Schema ({} violation(s))", .0.len())]
    Schema(Vec<Violation>),
    #[error("the document holds {count} events, more than the {CAPTURE_EVENTS_MAX} allowed")]
    TooManyEvents { count: usize },
    #[error("the document holds no events")]
    NoEvents,
    #[error("{} event(s) cannot be read", .problems.len())]
    Events {
        problems: Vec<FieldProblem>,
        /// Some event has a type this repository does not capture.
        unknown_type: bool,
    },
}

/// The events of a capture body, in document order, with the JSON path
/// prefix of each (`epcisBody.eventList[3]`) for naming fields.
#[derive(Debug)]
pub struct Read {
    pub kind: BodyKind,
    pub events: Vec<(String, Event)>,
}

/// Reads an EPCISDocument or EPCISQueryDocument (`POST /epcis/capture`).
pub fn read_document(body: &[u8]) -> Result<Read, ReadError> {
    let document = parse_json(body)?;
    let kind = match document.get("type").and_then(Value::as_str) {
        Some("EPCISDocument") => BodyKind::Document,
        Some("EPCISQueryDocument") => BodyKind::QueryDocument,
        other => {
            return Err(ReadError::WrongKind {
                expected: "an EPCISDocument or EPCISQueryDocument",
                found: other.unwrap_or("(none)").to_owned(),
            });
        }
    };
    check_schema(&document)?;
    let (list, base) = match kind {
        BodyKind::QueryDocument => (
            &document["epcisBody"]["queryResults"]["resultsBody"]["eventList"],
            "epcisBody.queryResults.resultsBody.eventList",
        ),
        _ => (&document["epcisBody"]["eventList"], "epcisBody.eventList"),
    };
    let list = list.as_array().map(Vec::as_slice).unwrap_or_default();
    if list.is_empty() {
        return Err(ReadError::NoEvents);
    }
    if list.len() > CAPTURE_EVENTS_MAX {
        return Err(ReadError::TooManyEvents { count: list.len() });
    }
    let context = document.get("@context");
    let mut events = Vec::with_capacity(list.len());
    let mut problems = Vec::new();
    let mut unknown_type = false;
    for (i, raw) in list.iter().enumerate() {
        let path = format!("{base}[{i}]");
        match read_event(raw, context, &path) {
            Ok(event) => events.push((path, event)),
            Err((problem, unknown)) => {
                problems.push(problem);
                unknown_type |= unknown;
            }
        }
    }
    if !problems.is_empty() {
        return Err(ReadError::Events {
            problems,
            unknown_type,
        });
    }
    Ok(Read { kind, events })
}

/// Reads one event with its own `@context` (`POST /epcis/events`).
pub fn read_single(body: &[u8]) -> Result<Read, ReadError> {
    let value = parse_json(body)?;
    let found = value
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("(none)");
    if matches!(found, "EPCISDocument" | "EPCISQueryDocument") {
        return Err(ReadError::WrongKind {
            expected: "one EPCIS event (documents go to /epcis/capture)",
            found: found.to_owned(),
        });
    }
    check_schema(&value)?;
    let event =
        read_event(&value, None, "").map_err(|(problem, unknown_type)| ReadError::Events {
            problems: vec![problem],
            unknown_type,
        })?;
    Ok(Read {
        kind: BodyKind::Event,
        events: vec![(String::new(), event)],
    })
}

fn parse_json(body: &[u8]) -> Result<Value, ReadError> {
    serde_json::from_slice(body).map_err(|e| ReadError::Json(e.to_string()))
}

fn check_schema(value: &Value) -> Result<(), ReadError> {
    let violations = schema::check(value);
    if violations.is_empty() {
        Ok(())
    } else {
        Err(ReadError::Schema(violations))
    }
}

/// One event of the list into the model, with capture's changes applied
/// (see the module doc). `path` names the event in problems; the flag
/// tells an unknown event type from another unreadable shape.
fn read_event(
    raw: &Value,
    context: Option<&Value>,
    path: &str,
) -> Result<Event, (FieldProblem, bool)> {
    let Some(object) = raw.as_object() else {
        let problem = FieldProblem {
            field: path.to_owned(),
            reason: "an event is a JSON object".into(),
        };
        return Err((problem, false));
    };
    let kind = object.get("type").and_then(Value::as_str).unwrap_or("");
    if kind.parse::<EventType>().is_err() {
        let problem = FieldProblem {
            field: join(path, "type"),
            reason: format!(
                "unknown event type {kind:?}; this repository captures ObjectEvent, \
                 AggregationEvent, TransactionEvent, TransformationEvent and AssociationEvent"
            ),
        };
        return Err((problem, true));
    }
    let mut object: Map<String, Value> = object.clone();
    object.remove("recordTime");
    if !object.contains_key("@context")
        && let Some(context) = context
    {
        object.insert("@context".into(), context.clone());
    }
    serde_json::from_value(Value::Object(object)).map_err(|e| {
        let problem = FieldProblem {
            field: path.to_owned(),
            reason: format!("the event does not fit the EPCIS event model: {e}"),
        };
        (problem, false)
    })
}

/// `base.name`, or `name` at the top level.
pub fn join(base: &str, name: &str) -> String {
    if base.is_empty() {
        name.to_owned()
    } else {
        format!("{base}.{name}")
    }
}

/// The capturing org's signing identity, from the node config's `[capture]`.
#[derive(Debug)]
pub struct Custodian {
    pub org: String,
    pub key: SigningKey,
}

impl Custodian {
    /// Signs `event` as a statement on `chain_id`, filling in a missing
    /// eventID from the fresh nonce. `nonce` must be 16 random bytes.
    pub fn sign(
        &self,
        chain_id: Digest,
        issued_at_ms: u64,
        nonce: [u8; 16],
        mut event: Event,
    ) -> Envelope {
        if event.event_id.is_none() {
            event.event_id = Some(uuid_urn(nonce));
        }
        let statement = Statement {
            version: STATEMENT_VERSION,
            chain_id,
            org: self.org.clone(),
            key: self.key.public_key(),
            issued_at_ms,
            nonce: hex::encode(nonce),
            event,
        };
        statement.sign(&self.key)
    }
}

/// `urn:uuid:` of a version-4 (random) UUID made from 16 random bytes.
pub fn uuid_urn(mut bytes: [u8; 16]) -> String {
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let h = hex::encode(bytes);
    format!(
        "urn:uuid:{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn document(events: Value) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "@context": ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld",
                         {"example": "http://ns.example.com/epcis/"}],
            "type": "EPCISDocument",
            "schemaVersion": "2.0",
            "creationDate": "2024-01-01T00:00:00Z",
            "epcisBody": {"eventList": events}
        }))
        .unwrap()
    }

    fn object_event() -> Value {
        json!({
            "type": "ObjectEvent",
            "eventTime": "2024-01-01T00:00:00Z",
            "eventTimeZoneOffset": "+01:00",
            "recordTime": "2024-01-01T00:00:01Z",
            "action": "OBSERVE",
            "epcList": ["urn:epc:id:sgtin:0614141.107346.2017"],
            "example:note": "kept"
        })
    }

    #[test]
    fn capture_drops_record_time_and_copies_the_document_context() {
        let read = read_document(&document(json!([object_event()]))).unwrap();
        assert_eq!(read.kind, BodyKind::Document);
        let (path, event) = &read.events[0];
        assert_eq!(path, "epcisBody.eventList[0]");
        assert_eq!(event.record_time, None);
        assert_eq!(
            event.extensions["@context"][1]["example"],
            "http://ns.example.com/epcis/"
        );
        assert_eq!(event.extensions["example:note"], "kept");
    }

    #[test]
    fn an_unknown_event_type_is_named_by_its_index() {
        let mut odd = object_event();
        odd["type"] = json!("https://ns.example.com/QuantityEvent");
        let err = read_document(&document(json!([object_event(), odd]))).unwrap_err();
        let ReadError::Events {
            problems,
            unknown_type: true,
        } = err
        else {
            panic!("{err:?}")
        };
        assert_eq!(problems[0].field, "epcisBody.eventList[1].type");
    }

    #[test]
    fn schema_violations_and_wrong_kinds_are_refused() {
        let mut bad = object_event();
        bad["action"] = json!("SHOUT");
        match read_document(&document(json!([bad]))).unwrap_err() {
            ReadError::Schema(v) => assert!(
                v.iter()
                    .any(|v| v.pointer == "/epcisBody/eventList/0/action"),
                "{v:#?}"
            ),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            read_single(&document(json!([object_event()]))),
            Err(ReadError::WrongKind { .. })
        ));
        assert!(matches!(
            read_document(b"{\"type\": 1"),
            Err(ReadError::Json(_))
        ));
        assert!(matches!(
            read_document(&document(json!([]))),
            Err(ReadError::NoEvents)
        ));
    }

    #[test]
    fn filled_in_event_ids_are_version_4_uuids() {
        let urn = uuid_urn([0xff; 16]);
        assert_eq!(urn, "urn:uuid:ffffffff-ffff-4fff-bfff-ffffffffffff");
        let custodian = Custodian {
            org: "o".into(),
            key: SigningKey::from_seed(&[7; 32]),
        };
        let read = read_document(&document(json!([object_event()]))).unwrap();
        let event = read.events[0].1.clone();
        let envelope = custodian.sign(Digest([1; 32]), 5, [0; 16], event);
        let statement = Statement::from_payload(&envelope.payload).unwrap();
        assert_eq!(
            statement.event.event_id.as_deref(),
            Some("urn:uuid:00000000-0000-4000-8000-000000000000")
        );
        assert_eq!(statement.org, "o");
    }
}
