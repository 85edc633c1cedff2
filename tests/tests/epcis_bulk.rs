//! Bulk EPCIS capture on a real one-node consortium (real sled, real HTTP):
//! a document far larger than one batch streams in, every event commits and
//! the node never holds more than a chunk of admitted events outside the
//! mempool; a break in the middle of a stream captures nothing under
//! `rollback` and the part before it under `proceed`; an oversized document
//! gets 413; a large document must give its `@context` first.

use crate::support;

use std::time::Duration;

use crate::support::Consortium;
use lotline_core::limits::CAPTURE_CHUNK_EVENTS;
use reqwest::StatusCode;
use serde_json::{Value, json};

const CONTEXT: &str = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld";

fn object_event(lot: &str, i: usize, quantity: f64) -> Value {
    json!({
        "type": "ObjectEvent",
        // One millisecond apart: events with the same content are one event
        // (CBV 2.0 event hash) and a repeat is refused.
        "eventTime": format!("2026-03-02T08:{:02}:{:02}.{:03}Z", i / 60_000 % 60, i / 1000 % 60, i % 1000),
        "eventTimeZoneOffset": "+08:00",
        "action": "OBSERVE",
        "bizStep": "inspecting",
        "eventID": format!("urn:uuid:00000000-0000-4000-8000-{i:012}"),
        "quantityList": [{"epcClass": support::lot_uri(lot), "quantity": quantity, "uom": "KGM"}],
        "readPoint": {"id": "https://id.gs1.org/414/9506000134352"}
    })
}

/// The bytes of a document of `count` events of `lot`, `@context` first;
/// `bad` events get a negative quantity; `tail` replaces the end of the
/// document (to break it).
fn document(lot: &str, count: usize, bad: &[usize], tail: Option<&str>) -> Vec<u8> {
    let mut out = format!(
        "{{\"@context\": [\"{CONTEXT}\"], \"type\": \"EPCISDocument\", \"schemaVersion\": \"2.0\", \
         \"creationDate\": \"2026-03-02T08:00:00Z\", \"epcisBody\": {{\"eventList\": ["
    )
    .into_bytes();
    for i in 0..count {
        if i > 0 {
            out.push(b',');
        }
        let quantity = if bad.contains(&i) { -1.0 } else { 5.0 };
        serde_json::to_writer(&mut out, &object_event(lot, i, quantity)).unwrap();
    }
    out.extend_from_slice(tail.unwrap_or("]}}").as_bytes());
    out
}

async fn post(
    http: &reqwest::Client,
    base: &str,
    body: Vec<u8>,
    behaviour: &str,
) -> (StatusCode, String, Value) {
    let response = http
        .post(format!("{base}/epcis/capture"))
        .header("content-type", "application/ld+json")
        .header("GS1-Capture-Error-Behaviour", behaviour)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let location = response
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (
        status,
        location,
        response.json().await.unwrap_or(Value::Null),
    )
}

async fn finished_job(http: &reqwest::Client, base: &str, location: &str) -> Value {
    for _ in 0..2400 {
        let job: Value = http
            .get(format!("{base}{location}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if job["running"] == false {
            return job;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("capture job {location} did not finish");
}

async fn committed(http: &reqwest::Client, base: &str) -> u64 {
    let head: Value = http
        .get(format!("{base}/v1/head"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    head["attestations"].as_u64().unwrap()
}

/// A metric's value from `/metrics` (operator credential).
async fn metric(consortium: &Consortium, base: &str, name: &str) -> f64 {
    let text = reqwest::Client::new()
        .get(format!("{base}/metrics"))
        .bearer_auth(&consortium.operator_token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} not in /metrics"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_20k_event_document_streams_in_and_every_event_commits_in_bounded_memory() {
    // Goal: a document of 20 batches' worth of events is captured whole
    // (rollback, the default), every event commits, and at no time did the
    // node hold more than one chunk of admitted events outside the mempool
    // and spool. Method: one POST over real HTTP, the job followed to its
    // end, the head's attestation count and the node's own high-water
    // metric compared.
    let consortium = Consortium::with_open_capture_policy();
    let node = consortium.start().await;
    let http = support::http_as(&consortium, consortium.capture_org());
    let base = node.url();
    let count = 20_000;
    let before = committed(&http, &base).await;
    let (status, location, job) = post(
        &http,
        &base,
        document("BULK-1", count, &[], None),
        "rollback",
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{job}");
    assert_eq!(job["lotline:eventsCaptured"], count, "{job}");
    let job = finished_job(&http, &base, &location).await;
    assert_eq!(job["success"], true, "{job}");
    assert_eq!(job["lotline:eventsCommitted"], count);
    assert_eq!(
        job["lotline:events"].as_array().unwrap().len(),
        1000,
        "a job lists the first events only"
    );
    assert_eq!(committed(&http, &base).await, before + count as u64);
    let held_max = metric(&consortium, &base, "lotline_epcis_capture_held_events_max").await;
    assert!(held_max > 0.0, "the metric moved");
    // One chunk being prepared a core, at most.
    let bound = CAPTURE_CHUNK_EVENTS * lotline_node::epcis::bulk::prepare_ahead();
    assert!(
        held_max <= bound as f64,
        "held {held_max} admitted events at once (at most {bound})"
    );
    assert_eq!(
        metric(&consortium, &base, "lotline_epcis_captured_events_total").await,
        count as f64
    );
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_break_in_the_middle_captures_nothing_under_rollback_and_the_part_before_under_proceed() {
    // Goal: the two behaviours on a stream that breaks after more than two
    // chunks — malformed JSON, and one invalid event — are what docs/epcis.md
    // says. Method: the same broken documents under both behaviours; the
    // committed count before and after each.
    let consortium = Consortium::with_open_capture_policy();
    let node = consortium.start().await;
    let http = support::http_as(&consortium, consortium.capture_org());
    let base = node.url();
    let before = committed(&http, &base).await;

    let truncated = || document("BRK-1", 2_500, &[], Some(", {\"type\": ]"));
    let (status, _, problem) = post(&http, &base, truncated(), "rollback").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
    assert!(
        problem["type"].as_str().unwrap().ends_with("malformed"),
        "{problem}"
    );
    let bad_middle = || document("BRK-2", 3_000, &[1_500], None);
    let (status, _, problem) = post(&http, &base, bad_middle(), "rollback").await;
    assert!(status.is_client_error(), "{status} {problem}");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .starts_with("1 of 3000 event(s) rejected; nothing was captured"),
        "{problem}"
    );
    assert!(
        problem["problems"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["field"] == "epcisBody.eventList[1500].quantityList[0].quantity"),
        "{problem}"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        committed(&http, &base).await,
        before,
        "rollback applied nothing"
    );

    let (status, location, job) = post(&http, &base, truncated(), "proceed").await;
    assert_eq!(status, StatusCode::ACCEPTED, "{job}");
    let job = finished_job(&http, &base, &location).await;
    assert_eq!(job["success"], false, "{job}");
    assert_eq!(job["lotline:eventsCommitted"], 2_500, "{job}");
    assert!(
        job["errors"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["field"] == "document"),
        "{job}"
    );
    let (status, location, job) = post(&http, &base, bad_middle(), "proceed").await;
    assert_eq!(status, StatusCode::ACCEPTED, "{job}");
    let job = finished_job(&http, &base, &location).await;
    assert_eq!(job["lotline:eventsCommitted"], 2_999, "{job}");
    assert_eq!(job["lotline:eventsRejected"], 1, "{job}");
    assert_eq!(committed(&http, &base).await, before + 2_500 + 2_999);

    // Control: the same document unbroken succeeds under proceed.
    let whole = document("BRK-3", 2_500, &[], None);
    let (status, location, job) = post(&http, &base, whole, "proceed").await;
    assert_eq!(status, StatusCode::ACCEPTED, "{job}");
    let job = finished_job(&http, &base, &location).await;
    assert_eq!(job["success"], true, "{job}");
    assert_eq!(job["errors"], json!([]), "{job}");
    assert_eq!(job["lotline:eventsCommitted"], 2_500, "{job}");
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_documents_get_413_and_a_late_context_is_named() {
    // Goal: a document over the configured maximum is refused with 413
    // before anything is captured; a document of more than a chunk whose
    // @context follows its events is refused by name.
    let mut consortium = Consortium::with_open_capture_policy();
    if let Some(capture) = consortium.config.capture.as_mut() {
        capture.document_bytes_max = 1024 * 1024;
    }
    let node = consortium.start().await;
    let http = support::http_as(&consortium, consortium.capture_org());
    let base = node.url();
    let before = committed(&http, &base).await;
    for behaviour in ["rollback", "proceed"] {
        let (status, _, problem) =
            post(&http, &base, document("BIG-1", 5_000, &[], None), behaviour).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{problem}");
        assert!(
            problem["type"].as_str().unwrap().ends_with("too-large"),
            "{problem}"
        );
    }

    let mut late = br#"{"type": "EPCISDocument", "schemaVersion": "2.0", "creationDate": "2026-03-02T08:00:00Z", "epcisBody": {"eventList": ["#.to_vec();
    for i in 0..CAPTURE_CHUNK_EVENTS + 1 {
        if i > 0 {
            late.push(b',');
        }
        serde_json::to_writer(&mut late, &object_event("LATE-1", i, 1.0)).unwrap();
    }
    late.extend_from_slice(format!("]}}, \"@context\": [\"{CONTEXT}\"]}}").as_bytes());
    let (status, _, problem) = post(&http, &base, late, "proceed").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
    assert!(
        problem["type"]
            .as_str()
            .unwrap()
            .ends_with("context-after-events"),
        "{problem}"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(committed(&http, &base).await, before);
    node.shutdown().await;
}
