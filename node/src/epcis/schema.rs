//! The GS1 EPCIS 2.0 JSON Schema, embedded and compiled once.
//!
//! Why a schema check on top of [`lotline_core::epcis::Event::validate`]: the
//! schema is the standard's own statement of shape (document envelope,
//! `@context`, `propertyNames` of every object, formats), and it covers the
//! parts of a document that the event model never sees (`epcisHeader`,
//! `creationDate`, `schemaVersion`). The project's validation then adds what
//! the schema cannot say (GS1 check digits, identifier levels, possible
//! quantities, the quality extension).
//!
//! The schema has only internal references, so the validator is built with
//! no retriever: nothing is fetched over the network or read from disk.

use std::sync::LazyLock;

use serde_json::Value;

/// The schema text, copied unchanged from the standards folder (see
/// `schema/README.md`).
pub const SCHEMA_JSON: &str = include_str!("schema/EPCIS-JSON-Schema.json");

/// At most this many schema violations are reported for one document: a
/// broken generator can produce thousands, and the first few locate the bug.
pub const VIOLATIONS_MAX: usize = 50;

/// Longest reason text kept per violation (the validator quotes the
/// offending value, which may be large).
const REASON_CHARS_MAX: usize = 300;

/// One schema violation: where (a JSON pointer into the document) and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// RFC 6901 JSON pointer of the offending value, `""` for the root.
    pub pointer: String,
    pub reason: String,
}

static VALIDATOR: LazyLock<Result<jsonschema::Validator, String>> = LazyLock::new(|| {
    let schema: Value = serde_json::from_str(SCHEMA_JSON).map_err(|e| e.to_string())?;
    jsonschema::options()
        .with_draft(jsonschema::Draft::Draft7)
        .should_validate_formats(true)
        .build(&schema)
        .map_err(|e| e.to_string())
});

/// Checks `document` (an EPCISDocument, EPCISQueryDocument or one event with
/// its `@context`) against the schema. Empty when it conforms.
///
/// Panics only if the embedded schema itself does not compile, which a unit
/// test rules out for the shipped file.
pub fn check(document: &Value) -> Vec<Violation> {
    let validator = match &*VALIDATOR {
        Ok(validator) => validator,
        Err(e) => panic!("the embedded EPCIS JSON Schema does not compile: {e}"),
    };
    validator
        .iter_errors(document)
        .take(VIOLATIONS_MAX)
        .map(|error| Violation {
            pointer: error.instance_path().to_string(),
            reason: truncate(&error.to_string()),
        })
        .collect()
}

fn truncate(reason: &str) -> String {
    if reason.chars().count() <= REASON_CHARS_MAX {
        return reason.to_owned();
    }
    let mut out: String = reason.chars().take(REASON_CHARS_MAX).collect();
    out.push_str("...");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/fixtures/epcis");
    const STANDARD: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/standards/EPCIS-JSON-Schema.json"
    );

    #[test]
    fn the_embedded_schema_is_the_standards_copy() {
        // Goal: an update of the standard in shared/ is noticed. Skipped when
        // the standards folder is not beside the repository.
        if let Ok(text) = std::fs::read_to_string(STANDARD) {
            assert_eq!(text, SCHEMA_JSON);
        }
    }

    #[test]
    fn every_gs1_example_conforms() {
        let Ok(dir) = std::fs::read_dir(FIXTURES) else {
            return;
        };
        let mut checked = 0;
        for entry in dir {
            let path = entry.unwrap().path();
            let doc: Value =
                serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            assert_eq!(check(&doc), vec![], "{}", path.display());
            checked += 1;
        }
        assert!(checked >= 12);
    }

    #[test]
    fn a_violation_names_the_json_pointer() {
        let doc = json!({
            "@context": "https://ref.gs1.org/standards/epcis/epcis-context.jsonld",
            "type": "EPCISDocument",
            "schemaVersion": "2.0",
            "creationDate": "2024-01-01T00:00:00Z",
            "epcisBody": {"eventList": [{
                "type": "ObjectEvent",
                "eventTime": "not a time",
                "eventTimeZoneOffset": "+01:00",
                "action": "OBSERVE",
                "epcList": ["urn:epc:id:sgtin:0614141.107346.2017"]
            }]}
        });
        let violations = check(&doc);
        assert!(
            violations
                .iter()
                .any(|v| v.pointer == "/epcisBody/eventList/0/eventTime"),
            "{violations:#?}"
        );
    }
}
