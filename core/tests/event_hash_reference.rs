//! The CBV 2.0 event hash against GS1's reference generator
//! (`epcis-event-hash-generator` from PyPI) on every JSON-LD example in
//! `shared/fixtures/`: for each event, Lotline's pre-hash string must be
//! the generator's, character for character (so the hashes agree).
//!
//! The generator runs in a venv: `$LOTLINE_EVENT_HASH_VENV`, or
//! `~/.cache/lotline/epcis-event-hash-generator-<version>` (created here
//! with `python3 -m venv` + pip when missing). The test fails, never skips,
//! when the venv cannot be made. `event_hash_reference.py` states the three
//! input-side adjustments made for bugs of the generator's JSON path.

use std::path::{Path, PathBuf};
use std::process::Command;

use lotline_core::epcis::Event;
use lotline_core::epcis::event_hash::{event_hash, prehash};
use serde_json::Value;
use sha2::{Digest, Sha256};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/fixtures");
const DRIVER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/event_hash_reference.py");
const GENERATOR_VERSION: &str = "1.9.3";

/// The venv's python, created (once) if missing.
fn generator_python() -> PathBuf {
    let venv = std::env::var_os("LOTLINE_EVENT_HASH_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let home = std::env::var_os("HOME").expect("HOME is set");
            Path::new(&home).join(format!(
                ".cache/lotline/epcis-event-hash-generator-{GENERATOR_VERSION}"
            ))
        });
    let python = venv.join("bin/python");
    let ready = |python: &Path| {
        Command::new(python)
            .args(["-c", "import epcis_event_hash_generator"])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if !ready(&python) {
        let status = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .expect("python3 (with venv) is required for the event hash reference test");
        assert!(status.success(), "python3 -m venv {venv:?} failed");
        let status = Command::new(venv.join("bin/pip"))
            .args([
                "install",
                "--quiet",
                "--disable-pip-version-check",
                &format!("epcis-event-hash-generator=={GENERATOR_VERSION}"),
            ])
            .status()
            .expect("pip runs");
        assert!(
            status.success(),
            "pip install epcis-event-hash-generator failed"
        );
        assert!(
            ready(&python),
            "the generator does not import after install"
        );
    }
    python
}

/// The reference pre-hash strings of a document's events.
fn reference(python: &Path, document: &Path) -> Vec<Option<String>> {
    let output = Command::new(python)
        .arg(DRIVER)
        .arg(document)
        .output()
        .expect("the reference driver runs");
    assert!(
        output.status.success(),
        "reference driver failed on {document:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("the driver prints a JSON list")
}

/// The document's events in Lotline's model, with the document's
/// `@context` copied into each (as capture does).
fn events(document: &Value) -> Vec<Event> {
    let body = &document["epcisBody"];
    let list = body
        .get("eventList")
        .or_else(|| body.pointer("/queryResults/resultsBody/eventList"))
        .and_then(Value::as_array)
        .expect("an event list");
    list.iter()
        .map(|raw| {
            let mut raw = raw.clone();
            if let Some(context) = document.get("@context") {
                raw["@context"] = context.clone();
            }
            serde_json::from_value(raw).expect("a GS1 example fits the event model")
        })
        .collect()
}

fn json_fixtures() -> Vec<PathBuf> {
    let mut files = Vec::new();
    for dir in ["epcis", "epcis-xml"] {
        for entry in std::fs::read_dir(Path::new(FIXTURES).join(dir)).expect("fixtures present") {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if name.ends_with(".jsonld") || name.ends_with(".json") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// Goal: Lotline's pre-hash string (and so its hash) equals the reference
/// generator's for every event of every JSON example. Method: run both on
/// each document; compare event by event; the events the generator cannot
/// hash at all are listed and must be exactly the known one (a
/// bizTransaction without a type, on which the generator crashes).
#[test]
fn every_json_example_hashes_as_the_reference_generator_hashes_it() {
    let python = generator_python();
    let mut compared = 0;
    let mut unhashable = Vec::new();
    let mut mismatches = Vec::new();
    for path in json_fixtures() {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let document: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let ours = events(&document);
        let theirs = reference(&python, &path);
        assert_eq!(ours.len(), theirs.len(), "{name}: event count");
        for (i, (event, expected)) in ours.iter().zip(theirs).enumerate() {
            let Some(expected) = expected else {
                unhashable.push(format!("{name}#{i}"));
                continue;
            };
            compared += 1;
            let got = prehash(event);
            if got != expected {
                mismatches.push(format!(
                    "{name}#{i}:\n  ours:   {got}\n  theirs: {expected}"
                ));
                continue;
            }
            let digest: [u8; 32] = Sha256::digest(expected.as_bytes()).into();
            assert_eq!(event_hash(event).0, digest, "{name}#{i}");
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
    assert_eq!(
        unhashable,
        ["Example-TransactionEvents-2020_07_03y.jsonld#0"],
        "events the reference generator cannot hash"
    );
    assert!(compared >= 15, "only {compared} events compared");
}
