//! Reading a capture request into events, and turning events into
//! statements signed by the capturing org's key (custodial signing).
//!
//! Documents are read as a stream ([`super::stream`], driven by
//! [`super::bulk`]). Each event, in order, cheapest and most decisive first:
//! the EPCIS 2.0 JSON Schema (violations name a JSON pointer from the
//! document root); the project's [`Event`] model ([`read_event`]: unknown
//! event types and shapes the model cannot hold are named by their index).
//! The project's semantic rules (`Event::validate`), the write policy and
//! the signature are then checked by admission, exactly as for
//! `POST /v1/attestations`. The document's own members are checked against
//! the schema when it ends.
//!
//! What capture changes in an event, and why (EPCIS 2.0 REST bindings):
//! - `recordTime` is dropped: the repository sets it; queries report the
//!   commit time of the block that holds the event.
//! - A missing `eventID` is filled in with the event's CBV 2.0 hash
//!   (`ni:///sha-256;...?ver=CBV2.0`, [`lotline_core::epcis::event_hash`]),
//!   so every event can be fetched and corrected by id, as the capture
//!   interface description asks, and the id can be recomputed by anyone
//!   holding the event (CBV 2.0 section 8.9).
//! - The document's `@context` is copied into each event that has none, so
//!   the namespaced extensions it uses stay resolvable when the event is
//!   returned on its own.
//! - `lotline:private` ([`PRIVATE_KEY`], [`take_private`]) is an instruction
//!   to capture, not part of the event: it names the members (JSON pointers
//!   such as `/sensorElementList`, `/ilmd`) to seal into the statement's
//!   private section (statement version 2, `docs/confidentiality.md`),
//!   exactly as `lotline attest --private` does
//!   ([`lotline_genesis::Genesis::seal_private`]). A missing eventID is
//!   then the hash of the *public* event: a hash over the private values
//!   would let anyone confirm a guess of them.

use lotline_core::Envelope;
use lotline_core::api::FieldProblem;
use lotline_core::crypto::SigningKey;
use lotline_core::epcis::{Event, EventType};
use lotline_core::hash::Digest;
use lotline_core::statement::{STATEMENT_VERSION, Statement};
use lotline_genesis::{Genesis, SealError};
use serde_json::{Map, Value};

use super::schema::Violation;

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
    #[error("the document holds no events")]
    NoEvents,
}

/// One event of the list into the model, with capture's changes applied
/// (see the module doc). `path` names the event in problems; the flag
/// tells an unknown event type from another unreadable shape.
pub fn read_event(
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

/// The event member naming the members capture seals privately: a JSON
/// pointer, or an array of them (XML: one `<lotline:private>` element per
/// pointer, namespace `https://lotline.dev/epcis/`).
pub const PRIVATE_KEY: &str = "lotline:private";

/// Takes `lotline:private` out of a raw event: the pointers to seal (none
/// without it). `path` names the event in the problem.
pub fn take_private(raw: &mut Value, path: &str) -> Result<Vec<String>, FieldProblem> {
    let Some(value) = raw.as_object_mut().and_then(|o| o.remove(PRIVATE_KEY)) else {
        return Ok(Vec::new());
    };
    let problem = || FieldProblem {
        field: join(path, PRIVATE_KEY),
        reason: "a JSON pointer to a member of the event (\"/ilmd\"), or an array of them".into(),
    };
    let pointers = match value {
        Value::String(pointer) => vec![pointer],
        Value::Array(items) if !items.is_empty() => items
            .into_iter()
            .map(|item| match item {
                Value::String(pointer) => Ok(pointer),
                _ => Err(problem()),
            })
            .collect::<Result<_, _>>()?,
        _ => return Err(problem()),
    };
    Ok(pointers)
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
    /// Signs `event` as a statement on `chain_id`, naming it first
    /// ([`name_event`]). `nonce` must be 16 random bytes.
    pub fn sign(
        &self,
        chain_id: Digest,
        issued_at_ms: u64,
        nonce: [u8; 16],
        event: Event,
    ) -> Envelope {
        let mut statement = self.statement(chain_id, issued_at_ms, nonce, event);
        name_event(&mut statement.event);
        statement.sign(&self.key)
    }

    /// The statement of `event` with the members at `private` sealed for
    /// the orgs `rules` (the membership in force) entitle, not yet named
    /// or signed: [`name_event`] names its public event, then
    /// `Statement::sign` with [`Custodian::key`].
    pub fn seal(
        &self,
        rules: &Genesis,
        chain_id: Digest,
        issued_at_ms: u64,
        nonce: [u8; 16],
        event: Event,
        private: &[String],
    ) -> Result<Statement, SealError> {
        let mut statement = self.statement(chain_id, issued_at_ms, nonce, event);
        rules.seal_private(&mut statement, private)?;
        Ok(statement)
    }

    fn statement(
        &self,
        chain_id: Digest,
        issued_at_ms: u64,
        nonce: [u8; 16],
        event: Event,
    ) -> Statement {
        Statement {
            version: STATEMENT_VERSION,
            chain_id,
            org: self.org.clone(),
            key: self.key.public_key(),
            issued_at_ms,
            nonce: hex::encode(nonce),
            event,
            private: None,
        }
    }
}

/// Fills in a missing eventID with the event's CBV 2.0 hash, and returns
/// the eventID.
pub fn name_event(event: &mut Event) -> String {
    if event.event_id.is_none() {
        event.event_id = Some(lotline_core::epcis::event_hash::event_hash(event).uri());
    }
    event.event_id.clone().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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

    fn context() -> Value {
        json!(["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld",
               {"example": "http://ns.example.com/epcis/"}])
    }

    #[test]
    fn capture_drops_record_time_and_copies_the_document_context() {
        let event =
            read_event(&object_event(), Some(&context()), "epcisBody.eventList[0]").unwrap();
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
        let (problem, unknown) = read_event(&odd, None, "epcisBody.eventList[1]").unwrap_err();
        assert!(unknown);
        assert_eq!(problem.field, "epcisBody.eventList[1].type");
        let (problem, unknown) = read_event(&json!(5), None, "epcisBody.eventList[2]").unwrap_err();
        assert!(!unknown);
        assert_eq!(problem.field, "epcisBody.eventList[2]");
    }

    #[test]
    fn lotline_private_is_taken_out_as_pointers_or_named_as_a_problem() {
        let mut raw = object_event();
        assert_eq!(take_private(&mut raw, "e").unwrap(), Vec::<String>::new());
        raw[PRIVATE_KEY] = json!("/example:note");
        assert_eq!(take_private(&mut raw, "e").unwrap(), vec!["/example:note"]);
        assert!(raw.get(PRIVATE_KEY).is_none(), "the instruction stays");
        raw[PRIVATE_KEY] = json!(["/example:note", "/epcList"]);
        assert_eq!(take_private(&mut raw, "e").unwrap().len(), 2);
        for bad in [json!([]), json!([1]), json!(5), json!({"p": "/x"})] {
            raw[PRIVATE_KEY] = bad;
            let problem = take_private(&mut raw, "epcisBody.eventList[3]").unwrap_err();
            assert_eq!(problem.field, "epcisBody.eventList[3].lotline:private");
        }
    }

    #[test]
    fn filled_in_event_ids_are_the_event_hash() {
        let custodian = Custodian {
            org: "o".into(),
            key: SigningKey::from_seed(&[7; 32]),
        };
        let event = read_event(&object_event(), None, "").unwrap();
        let envelope = custodian.sign(Digest([1; 32]), 5, [0; 16], event);
        let statement = Statement::from_payload(&envelope.payload).unwrap();
        let hash = lotline_core::epcis::event_hash::event_hash(&statement.event).uri();
        assert!(hash.starts_with("ni:///sha-256;"), "{hash}");
        assert_eq!(statement.event.event_id.as_deref(), Some(hash.as_str()));
        assert_eq!(statement.org, "o");
    }
}
