//! EPCIS 2.0 capture on a real one-node consortium (real sled, real HTTP):
//! every GS1 example document is captured and found again field for field;
//! bad documents are refused with the field named and nothing applied under
//! `rollback`; `proceed` captures the valid part; a node without a capture
//! key says so.

use crate::support;

use std::time::Duration;

use crate::support::Consortium;
use reqwest::StatusCode;
use serde_json::{Value, json};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/fixtures/epcis");

fn fixture(name: &str) -> Value {
    let path = format!("{FIXTURES}/{name}");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap()
}

fn fixture_names() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(FIXTURES)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".jsonld"))
        .collect();
    names.sort();
    names
}

fn event_list(doc: &Value) -> Vec<Value> {
    let body = &doc["epcisBody"];
    let list = if doc["type"] == "EPCISQueryDocument" {
        &body["queryResults"]["resultsBody"]["eventList"]
    } else {
        &body["eventList"]
    };
    list.as_array().cloned().unwrap_or_default()
}

/// POSTs JSON; returns status, Location and the JSON body.
async fn post(
    http: &reqwest::Client,
    url: &str,
    body: &Value,
    behaviour: Option<&str>,
) -> (StatusCode, String, Value) {
    let mut request = http.post(url).json(body);
    if let Some(b) = behaviour {
        request = request.header("GS1-Capture-Error-Behaviour", b);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let location = response
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, location, body)
}

async fn get(http: &reqwest::Client, url: &str) -> (StatusCode, Value) {
    let response = http.get(url).send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Polls a capture job until it is no longer running.
async fn finished_job(http: &reqwest::Client, base: &str, location: &str) -> Value {
    for _ in 0..400 {
        let (status, job) = get(http, &format!("{base}{location}")).await;
        assert_eq!(status, StatusCode::OK, "{job}");
        if job["running"] == false {
            return job;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("capture job {location} did not finish");
}

/// Equal as JSON, numbers compared by value (`5` and `5.0` are one number).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

fn problem_fields(problem: &Value) -> Vec<String> {
    problem["problems"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|p| p["field"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_gs1_example_is_captured_and_found_again_field_for_field() {
    // Goal: the GS1 examples (EPCISDocument and EPCISQueryDocument) are
    // captured as they are, and each event comes back from the query with
    // every field it was sent with, plus recordTime and the attestation.
    // Method: capture each file, wait for its job, look each event up by
    // eventID and by the attestation the job names.
    let consortium = Consortium::with_open_capture_policy();
    let node = consortium.start().await;
    let http = support::http_as(&consortium, consortium.capture_org());
    let base = node.url();
    let names = fixture_names();
    assert!(names.len() >= 12, "{names:?}");
    // GS1's examples state some events twice (URN and Digital Link forms
    // of one event, a query document repeating a capture document): the
    // second capture of an event is refused, naming the first.
    let mut first_of: std::collections::BTreeMap<String, String> = Default::default();
    let mut checked = 0;
    let mut repeats = Vec::new();
    for name in &names {
        let doc = fixture(name);
        let events = event_list(&doc);
        let hashes: Vec<String> = events
            .iter()
            .map(|raw| {
                let event = lotline_node::epcis::capture::read_event(raw, doc.get("@context"), "")
                    .unwrap_or_else(|(p, _)| panic!("{name}: {p:?}"));
                lotline_core::epcis::event_hash::event_hash(&event).uri()
            })
            .collect();
        let (status, location, body) =
            post(&http, &format!("{base}/epcis/capture"), &doc, None).await;
        if let Some(first) = hashes.iter().find_map(|h| first_of.get(h)) {
            assert_eq!(status, StatusCode::CONFLICT, "{name}: {body}");
            assert_eq!(
                body["type"], "https://lotline.dev/problems/duplicate-event",
                "{name}"
            );
            let detail = body["detail"].as_str().unwrap();
            assert!(detail.contains(first.as_str()), "{name}: {detail}");
            repeats.push(name.clone());
            continue;
        }
        assert_eq!(status, StatusCode::ACCEPTED, "{name}: {body}");
        assert!(
            location.starts_with("/epcis/capture/"),
            "{name}: {location}"
        );
        let job = finished_job(&http, &base, &location).await;
        assert_eq!(job["success"], true, "{name}: {job}");
        assert_eq!(job["captureErrorBehaviour"], "rollback");
        let captured = job["lotline:events"]
            .as_array()
            .unwrap_or_else(|| panic!("{name}: {job}"));
        assert_eq!(captured.len(), events.len(), "{name}");
        for ((sent, record), hash) in events.iter().zip(captured).zip(&hashes) {
            // Events sent without an eventID are named by their CBV 2.0 hash.
            let event_id = record["eventID"].as_str().unwrap();
            match sent["eventID"].as_str() {
                Some(sent_id) => assert_eq!(sent_id, event_id),
                None => assert_eq!(event_id, hash),
            }
            // An error declaration hashes like the event it corrects but
            // is not a repeat of it.
            if sent.get("errorDeclaration").is_none() {
                first_of.insert(hash.clone(), event_id.to_owned());
            }
            assert!(record["height"].as_u64().is_some(), "{name}: {job}");
            let url = format!(
                "{base}/epcis/events?EQ_eventID={}",
                lotline_sdk::encode_segment(event_id)
            );
            let (status, result) = get(&http, &url).await;
            assert_eq!(status, StatusCode::OK, "{result}");
            assert_eq!(
                lotline_node::epcis::schema::check(&result),
                vec![],
                "{name}: query output must validate"
            );
            let found = event_list(&result)
                .into_iter()
                .find(|e| e["lotline:attestation"]["id"] == record["attestation"])
                .unwrap_or_else(|| panic!("{name}: {event_id} not found: {result}"));
            for (key, value) in sent.as_object().unwrap() {
                // recordTime is the repository's; an empty list is the
                // same as an absent one in the event model (docs/epcis.md).
                if key == "recordTime" || (value == &json!([]) && found.get(key).is_none()) {
                    continue;
                }
                assert!(
                    same(value, &found[key]),
                    "{name} {event_id}: {key} sent {value} returned {}",
                    found[key]
                );
            }
            assert!(found["recordTime"].is_string());
            assert_eq!(found["lotline:eventHash"], hash.as_str(), "{name}");
            assert!(found.get("lotline:duplicateOf").is_none(), "{found}");
            assert_eq!(found["lotline:attestation"]["org"], "manufacturer");
            checked += 1;
        }
    }
    assert_eq!(
        repeats,
        [
            "Example_9.6.1-ObjectEvent.jsonld",
            "Example_9.6.4-TransformationEventWithDigitalLink.jsonld"
        ],
        "the GS1 examples that repeat an earlier one"
    );
    assert!(checked >= 13, "{checked}");

    // The URN and Digital Link forms of an EPC find the same events.
    let urn = "urn:epc:id:sgtin:0614141.107346.2017";
    let link = "https://id.gs1.org/01/10614141073464/21/2017";
    let (_, by_urn) = get(
        &http,
        &format!(
            "{base}/epcis/epcs/{}/events",
            lotline_sdk::encode_segment(urn)
        ),
    )
    .await;
    let (_, by_link) = get(
        &http,
        &format!(
            "{base}/epcis/events?MATCH_anyEPC={}",
            lotline_sdk::encode_segment(link)
        ),
    )
    .await;
    let ids = |doc: &Value| -> Vec<Value> {
        event_list(doc)
            .iter()
            .map(|e| e["lotline:attestation"]["id"].clone())
            .collect()
    };
    assert!(!ids(&by_urn).is_empty(), "{by_urn}");
    assert_eq!(ids(&by_urn), ids(&by_link));

    // The browse path by eventID answers the latest capture of that id.
    let event_id = "urn:uuid:374d95fc-9457-4a51-bd6a-0bba133845a8";
    let (status, event) = get(
        &http,
        &format!(
            "{base}/epcis/events/{}",
            lotline_sdk::encode_segment(event_id)
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{event}");
    assert_eq!(event["eventID"], event_id);
    assert!(event["errorDeclaration"].is_object(), "{event}");
    let (status, _) = get(&http, &format!("{base}/epcis/events/urn%3Auuid%3Anone")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    node.shutdown().await;
}

fn object_event(lot: &str, quantity: f64) -> Value {
    json!({
        "type": "ObjectEvent",
        "eventTime": "2026-03-02T08:00:00.000Z",
        "eventTimeZoneOffset": "+08:00",
        "action": "OBSERVE",
        "bizStep": "inspecting",
        "quantityList": [{"epcClass": support::lot_uri(lot), "quantity": quantity, "uom": "KGM"}],
        "readPoint": {"id": "https://id.gs1.org/414/9506000134352"}
    })
}

fn document(events: Vec<Value>) -> Value {
    json!({
        "@context": ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": "2026-03-02T08:00:00Z",
        "epcisBody": {"eventList": events}
    })
}

/// Events naming `lot`, via the query.
async fn events_of_lot(http: &reqwest::Client, base: &str, lot: &str) -> Vec<Value> {
    let (status, result) = get(
        http,
        &format!(
            "{base}/epcis/events?MATCH_anyEPCClass={}",
            lotline_sdk::encode_segment(&support::lot_uri(lot))
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{result}");
    event_list(&result)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_documents_name_the_field_and_rollback_applies_nothing() {
    // Goal: every kind of bad capture input gets a specific 4xx that names
    // the field, and under rollback a document with one bad event captures
    // none of its events. Method: send each bad document, then query for
    // the good events it carried and check the chain did not grow.
    let consortium = Consortium::new();
    let node = consortium.start().await;
    let http = support::http_as(&consortium, consortium.capture_org());
    let base = node.url();
    let capture = format!("{base}/epcis/capture");
    let head_before = get(&http, &format!("{base}/v1/head")).await.1["attestations"].clone();

    // An impossible quantity beside a good event: 422, field named, nothing applied.
    let doc = document(vec![object_event("RB-1", 5.0), object_event("RB-2", -5.0)]);
    let (status, _, problem) = post(&http, &capture, &doc, None).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(
        problem["type"],
        "https://lotline.dev/problems/invalid-event"
    );
    assert!(
        problem_fields(&problem)
            .contains(&"epcisBody.eventList[1].quantityList[0].quantity".to_owned()),
        "{problem}"
    );

    // A schema violation: 400 naming the JSON pointer.
    let mut bad = object_event("RB-3", 1.0);
    bad["action"] = json!("SHOUT");
    let (status, _, problem) = post(
        &http,
        &capture,
        &document(vec![object_event("RB-4", 1.0), bad]),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
    assert_eq!(
        problem["type"],
        "https://lotline.dev/problems/schema-violation"
    );
    assert!(
        problem_fields(&problem).contains(&"/epcisBody/eventList/1/action".to_owned()),
        "{problem}"
    );

    // An unknown event type (a URI, so the schema lets it through).
    let mut odd = object_event("RB-5", 1.0);
    odd["type"] = json!("https://ns.example.com/QuantityEvent");
    let (status, _, problem) = post(&http, &capture, &document(vec![odd]), None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
    assert_eq!(
        problem["type"],
        "https://lotline.dev/problems/unknown-event-type"
    );
    assert_eq!(
        problem_fields(&problem),
        vec!["epcisBody.eventList[0].type"]
    );

    // Not an EPCIS document; not JSON; a bad behaviour header.
    let (status, _, problem) = post(&http, &capture, &json!({"type": "Invoice"}), None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        problem["type"],
        "https://lotline.dev/problems/not-an-epcis-document"
    );
    let response = http.post(&capture).body("{not json").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let (status, _, problem) = post(
        &http,
        &capture,
        &document(vec![object_event("RB-6", 1.0)]),
        Some("sometimes"),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        problem_fields(&problem),
        vec!["GS1-Capture-Error-Behaviour"]
    );

    // The manufacturer's role may not emit this bizStep: 403 saying why.
    let transactions = fixture("Example-TransactionEvents-2020_07_03y.jsonld");
    let (status, _, problem) = post(&http, &capture, &transactions, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{problem}");
    assert_eq!(
        problem["type"],
        "https://lotline.dev/problems/policy-denied"
    );
    assert!(
        problem["detail"].as_str().unwrap().contains("transporting")
            || problem.to_string().contains("transporting"),
        "{problem}"
    );

    // Nothing of any refused document was applied.
    for lot in ["RB-1", "RB-4", "RB-6"] {
        assert_eq!(
            events_of_lot(&http, &base, lot).await,
            Vec::<Value>::new(),
            "{lot}"
        );
    }

    // proceed: the good event is captured, the bad one reported by field.
    let doc = document(vec![object_event("PR-1", 5.0), object_event("PR-2", -1.0)]);
    let (status, location, _) = post(&http, &capture, &doc, Some("proceed")).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let job = finished_job(&http, &base, &location).await;
    assert_eq!(job["success"], false, "{job}");
    assert_eq!(job["captureErrorBehaviour"], "proceed");
    assert!(
        job["errors"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["field"] == "epcisBody.eventList[1].quantityList[0].quantity"),
        "{job}"
    );
    assert_eq!(events_of_lot(&http, &base, "PR-1").await.len(), 1);
    assert_eq!(events_of_lot(&http, &base, "PR-2").await.len(), 0);
    let head_after = get(&http, &format!("{base}/v1/head")).await.1["attestations"].clone();
    assert_eq!(
        head_after.as_u64().unwrap(),
        head_before.as_u64().unwrap() + 1,
        "only the one proceed event was committed"
    );

    // One event: 201 once committed, Location of the event, eventID filled
    // in with the event's CBV 2.0 hash.
    let mut single = object_event("SE-1", 2.0);
    single["@context"] = json!("https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld");
    let (status, location, event) =
        post(&http, &format!("{base}/epcis/events"), &single, None).await;
    assert_eq!(status, StatusCode::CREATED, "{event}");
    let event_id = event["eventID"].as_str().unwrap();
    assert!(event_id.starts_with("ni:///sha-256;"), "{event}");
    assert_eq!(event["lotline:eventHash"], event_id, "{event}");
    assert_eq!(
        location,
        format!("/epcis/events/{}", lotline_sdk::encode_segment(event_id))
    );
    let (status, again) = get(&http, &format!("{base}{location}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again["lotline:attestation"], event["lotline:attestation"]);
    // The attestation named is a real one with a receipt.
    let id = event["lotline:attestation"]["id"].as_str().unwrap();
    let (status, _) = get(&http, &format!("{base}/v1/attestations/{id}/receipt")).await;
    assert_eq!(status, StatusCode::OK);
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_without_a_capture_key_says_so() {
    // Goal: capture is opt-in; without [capture] the endpoints answer a
    // clear 501 and queries still work.
    let mut consortium = Consortium::new();
    consortium.config.capture = None;
    let node = consortium.start().await;
    let http = support::http_as(&consortium, "manufacturer");
    let base = node.url();
    for url in [
        format!("{base}/epcis/capture"),
        format!("{base}/epcis/events"),
    ] {
        let (status, _, problem) = post(
            &http,
            &url,
            &document(vec![object_event("NC-1", 1.0)]),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::NOT_IMPLEMENTED, "{url}");
        assert_eq!(
            problem["type"],
            "https://lotline.dev/problems/capture-not-configured"
        );
    }
    let (status, result) = get(&http, &format!("{base}/epcis/events")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(event_list(&result), Vec::<Value>::new());
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_capture_of_the_same_event_is_refused_naming_the_first() {
    // Goal: an event the org already committed is refused when it is
    // captured again, however it is spelled (eventID, URN or Digital Link,
    // list order, CBV form), with 409 duplicate-event naming the first
    // capture; under rollback its document captures nothing; an event sent
    // without an eventID is named by its CBV 2.0 hash. Method: capture one
    // event, wait for the commit, then send respelled copies on both
    // capture routes and check the chain did not grow.
    let consortium = Consortium::new();
    let node = consortium.start().await;
    let http = support::http_as(&consortium, consortium.capture_org());
    let base = node.url();
    let capture = format!("{base}/epcis/capture");
    let mut original = object_event("DUP-1", 5.0);
    original["quantityList"] = json!([
        {"epcClass": support::lot_uri("DUP-1"), "quantity": 5.0, "uom": "KGM"},
        {"epcClass": support::lot_uri("DUP-2"), "quantity": 2, "uom": "KGM"}
    ]);
    let (status, location, body) =
        post(&http, &capture, &document(vec![original.clone()]), None).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let job = finished_job(&http, &base, &location).await;
    assert_eq!(job["success"], true, "{job}");
    let first = job["lotline:events"][0].clone();
    let first_id = first["eventID"].as_str().unwrap().to_owned();
    assert!(first_id.starts_with("ni:///sha-256;"), "{first_id}");
    assert!(first_id.ends_with("?ver=CBV2.0"), "{first_id}");
    let head_before = get(&http, &format!("{base}/v1/head")).await.1["attestations"].clone();

    // The same event respelled: its own eventID, the bizStep as a URI, the
    // quantities in the other order and 5 as 5.0, the read point as a URN.
    let mut respelled = original.clone();
    respelled["eventID"] = json!("urn:uuid:0b7b4c2e-3d1a-4c55-9a53-1f0c6c1d2e3f");
    respelled["bizStep"] = json!("https://ref.gs1.org/cbv/BizStep-inspecting");
    respelled["quantityList"] = json!([
        {"epcClass": support::lot_uri("DUP-2"), "quantity": 2.0, "uom": "KGM"},
        {"epcClass": support::lot_uri("DUP-1"), "quantity": 5, "uom": "KGM"}
    ]);
    respelled["readPoint"] = json!({"id": "urn:epc:id:sgln:9506000.13435.0"});
    let doc = document(vec![object_event("DUP-3", 1.0), respelled.clone()]);
    let (status, _, problem) = post(&http, &capture, &doc, None).await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    assert_eq!(
        problem["type"],
        "https://lotline.dev/problems/duplicate-event"
    );
    let detail = problem["detail"].as_str().unwrap();
    assert!(detail.contains(&first_id), "{detail}");
    assert!(
        detail.contains(first["attestation"].as_str().unwrap()),
        "{detail}"
    );
    assert!(
        problem_fields(&problem).contains(&"epcisBody.eventList[1]".to_owned())
            || problem_fields(&problem)
                .iter()
                .any(|f| f.starts_with("epcisBody.eventList[1]")),
        "{problem}"
    );
    assert!(
        events_of_lot(&http, &base, "DUP-3").await.is_empty(),
        "rollback"
    );

    // The single-event route refuses it the same way.
    let mut single = respelled.clone();
    single["@context"] = json!(["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"]);
    let (status, _, problem) = post(&http, &format!("{base}/epcis/events"), &single, None).await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    assert_eq!(
        problem["type"],
        "https://lotline.dev/problems/duplicate-event"
    );

    // The same event twice in one document: the second repeats the first.
    let twice = document(vec![object_event("DUP-4", 1.0), object_event("DUP-4", 1.0)]);
    let (status, _, problem) = post(&http, &capture, &twice, None).await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    assert_eq!(
        problem["type"],
        "https://lotline.dev/problems/duplicate-event"
    );
    assert_eq!(
        problem_fields(&problem),
        ["epcisBody.eventList[1].duplicate-event"],
        "{problem}"
    );
    assert!(
        events_of_lot(&http, &base, "DUP-4").await.is_empty(),
        "rollback"
    );

    // A different event (another quantity) is not a repeat.
    let mut other = original.clone();
    other["quantityList"][1]["quantity"] = json!(3);
    let (status, location, body) = post(&http, &capture, &document(vec![other]), None).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(finished_job(&http, &base, &location).await["success"], true);
    let head_after = get(&http, &format!("{base}/v1/head")).await.1["attestations"].clone();
    assert_eq!(
        head_after.as_u64().unwrap(),
        head_before.as_u64().unwrap() + 1,
        "only the different event was added"
    );
    node.shutdown().await;
}

const XML_FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/fixtures/epcis-xml"
);

/// POSTs an XML body to `/epcis/capture`.
async fn post_xml(http: &reqwest::Client, url: &str, body: Vec<u8>) -> (StatusCode, String, Value) {
    let response = http
        .post(url)
        .header("content-type", "application/xml")
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xml_documents_are_captured_and_an_xml_bomb_is_refused() {
    // Goal: EPCIS 2.0 and 1.2 XML documents are captured as their JSON-LD
    // form; the same event sent as XML and then as JSON-LD is one event
    // (the second is refused as a repeat); an XML bomb, an external entity,
    // a recursion bomb and a non-EPCIS document get a 4xx naming the reason
    // and capture nothing. Method: real node, real HTTP, GS1's examples.
    let consortium = Consortium::with_open_capture_policy();
    let node = consortium.start().await;
    let http = support::http_as(&consortium, consortium.capture_org());
    let base = node.url();
    let capture = format!("{base}/epcis/capture");
    let read = |name: &str| std::fs::read(format!("{XML_FIXTURES}/{name}")).unwrap();

    let mut captured = Vec::new();
    for name in [
        "Example_9.6.1-ObjectEvent.xml",
        "EPCIS-1.2-AggregationEvent.xml",
    ] {
        let (status, location, body) = post_xml(&http, &capture, read(name)).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{name}: {body}");
        let job = finished_job(&http, &base, &location).await;
        assert_eq!(job["success"], true, "{name}: {job}");
        captured.extend(job["lotline:events"].as_array().unwrap().iter().cloned());
    }
    assert_eq!(captured.len(), 3, "{captured:?}");
    // The XML events are the JSON-LD example's events: same hashes.
    let json = fixture("Example_9.6.1-ObjectEvent.jsonld");
    let hashes: Vec<String> = event_list(&json)
        .iter()
        .map(|raw| {
            let event =
                lotline_node::epcis::capture::read_event(raw, json.get("@context"), "").unwrap();
            lotline_core::epcis::event_hash::event_hash(&event).uri()
        })
        .collect();
    // The first XML event is the JSON-LD example's first event: one hash.
    // The second is not the same event: GS1's XML binds its `example`
    // extension to `http://ns.example.com/epcis`, the JSON-LD to
    // `http://ns.example.com/epcis/`, another namespace.
    for (i, (record, hash)) in captured.iter().zip(&hashes).enumerate() {
        let event_id = record["eventID"].as_str().unwrap();
        let (status, found) = get(
            &http,
            &format!(
                "{base}/epcis/events/{}",
                lotline_sdk::encode_segment(event_id)
            ),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{found}");
        assert_eq!(
            found["lotline:eventHash"] == hash.as_str(),
            i == 0,
            "{i}: {found}"
        );
        assert!(
            found["bizStep"].as_str().is_some_and(|s| !s.contains(':')),
            "{found}"
        );
    }
    // The same events as JSON-LD: a repeat.
    let (status, _, problem) = post(&http, &capture, &json, None).await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    assert_eq!(
        problem["type"],
        "https://lotline.dev/problems/duplicate-event"
    );

    // Query results in XML (Accept: application/xml) say the same events:
    // read back by the node's own XML reader, each hashes as its JSON-LD
    // twin says (lotline:eventHash), once Lotline's members are set aside.
    let response = http
        .get(format!("{base}/epcis/events?perPage=50"))
        .header("accept", "application/xml")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-type"].to_str().unwrap(),
        "application/xml"
    );
    let text = response.text().await.unwrap();
    assert!(text.starts_with("<?xml"), "{text}");
    let document = lotline_node::epcis::xml::read_document(text.as_bytes())
        .unwrap_or_else(|e| panic!("{e}: {text}"));
    let (_, as_json) = get(&http, &format!("{base}/epcis/events?perPage=50")).await;
    let json_events = event_list(&as_json);
    let xml_events = event_list(&document);
    assert_eq!(xml_events.len(), 3, "{text}");
    assert_eq!(xml_events.len(), json_events.len());
    for (from_xml, from_json) in xml_events.iter().zip(&json_events) {
        let mut raw = from_xml.clone();
        let object = raw.as_object_mut().unwrap();
        object.retain(|k, _| !k.starts_with("lotline:"));
        let event =
            lotline_node::epcis::capture::read_event(&raw, document.get("@context"), "").unwrap();
        assert_eq!(
            lotline_core::epcis::event_hash::event_hash(&event).uri(),
            from_json["lotline:eventHash"].as_str().unwrap(),
            "{raw}"
        );
        assert_eq!(
            from_xml["lotline:attestation"]["lotline:id"],
            from_json["lotline:attestation"]["id"]
        );
    }

    let head_before = get(&http, &format!("{base}/v1/head")).await.1["attestations"].clone();
    let bomb = br#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]><epcis:EPCISDocument xmlns:epcis="urn:epcglobal:epcis:xsd:2" schemaVersion="2.0"><EPCISBody><EventList><ObjectEvent><eventTime>&lol1;</eventTime></ObjectEvent></EventList></EPCISBody></epcis:EPCISDocument>"#;
    let xxe = br#"<?xml version="1.0"?><!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><r>&xxe;</r>"#;
    let undeclared = br#"<epcis:EPCISDocument xmlns:epcis="urn:epcglobal:epcis:xsd:2" schemaVersion="2.0">&xxe;</epcis:EPCISDocument>"#;
    let deep = format!("<a>{}</a>", "<a>".repeat(200) + &"</a>".repeat(200));
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (bomb.to_vec(), "xml-entities-refused"),
        (xxe.to_vec(), "xml-entities-refused"),
        (undeclared.to_vec(), "xml-entities-refused"),
        (deep.into_bytes(), "malformed-xml"),
        (b"<html><body/></html>".to_vec(), "not-an-epcis-document"),
        (b"<unclosed>".to_vec(), "malformed-xml"),
    ];
    for (body, slug) in cases {
        let (status, _, problem) = post_xml(&http, &capture, body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{slug}: {problem}");
        assert_eq!(
            problem["type"],
            format!("https://lotline.dev/problems/{slug}"),
            "{problem}"
        );
    }
    let head_after = get(&http, &format!("{base}/v1/head")).await.1["attestations"].clone();
    assert_eq!(head_before, head_after, "nothing captured");
    node.shutdown().await;
}

/// A document carrying only master data in its header.
fn master_data_document(vocabularies: Value, events: Vec<Value>) -> Value {
    let mut doc = document(events);
    doc["epcisHeader"] = json!({"epcisMasterData": {"vocabularyList": vocabularies}});
    doc
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn master_data_is_captured_owned_by_first_claim_and_read_back() {
    // Goal: the master data of a document header (JSON) and of an XML
    // master data document is stored as the capturing org's attestations
    // and read back typed (product name, brand, storage range; place name
    // and address) under any spelling of the identifier; master data for an
    // identifier another org claimed first is refused with 403 not-owner
    // and, under rollback, nothing of its document is captured. Method: a
    // real node; the other org's claim goes through POST /v1/attestations.
    let consortium = Consortium::new();
    let node = consortium.start().await;
    let http = support::http_as(&consortium, consortium.capture_org());
    let base = node.url();
    let capture = format!("{base}/epcis/capture");
    let product = format!("https://id.gs1.org/01/{}", support::GTIN);
    let place = "urn:epc:id:sgln:9506000.13435.0";
    let vocabularies = json!([
        {"type": "urn:epcglobal:epcis:vtype:EPCClass", "vocabularyElementList": [
            {"id": product, "attributes": [
                {"id": "https://gs1.org/voc/productName", "attribute": "Pasteurised milk 1 l"},
                {"id": "https://gs1.org/voc/brandName", "attribute": "Alpine Dairy"},
                {"id": "https://gs1.org/voc/netContent", "attribute": {"value": 1, "unitCode": "LTR"}},
                {"id": "https://lotline.dev/epcis/storageTemperatureMin", "attribute": 0},
                {"id": "https://lotline.dev/epcis/storageTemperatureMax", "attribute": 6.5}
            ]}
        ]},
        {"type": "urn:epcglobal:epcis:vtype:BusinessLocation", "vocabularyElementList": [
            {"id": place, "attributes": [
                {"id": "urn:epcglobal:cbv:mda#name", "attribute": "Dairy plant 1"},
                {"id": "urn:epcglobal:cbv:mda#streetAddressOne", "attribute": "1 Alm Road"},
                {"id": "urn:epcglobal:cbv:mda#city", "attribute": "Bern"}
            ]}
        ]}
    ]);
    let doc = master_data_document(vocabularies, vec![object_event("MD-1", 1.0)]);
    let (status, location, body) = post(&http, &capture, &doc, None).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let job = finished_job(&http, &base, &location).await;
    assert_eq!(job["success"], true, "{job}");
    assert_eq!(job["lotline:eventsCaptured"], 3, "{job}");

    // Read back, the product under its EPC pattern and Digital Link.
    for spelling in [
        product.clone(),
        "urn:epc:idpat:sgtin:9506000.013435.*".to_owned(),
    ] {
        let url = format!(
            "{base}/v1/master-data/{}",
            lotline_sdk::encode_segment(&spelling)
        );
        let (status, entry) = get(&http, &url).await;
        assert_eq!(status, StatusCode::OK, "{spelling}: {entry}");
        assert_eq!(entry["owner"], consortium.capture_org(), "{entry}");
        assert_eq!(entry["product"]["name"], "Pasteurised milk 1 l", "{entry}");
        assert_eq!(entry["product"]["brand"], "Alpine Dairy", "{entry}");
        assert_eq!(entry["product"]["netContent"]["unitCode"], "LTR", "{entry}");
        assert_eq!(entry["product"]["storageTemperature"]["min_celsius"], 0.0);
        assert_eq!(entry["product"]["storageTemperature"]["max_celsius"], 6.5);
    }
    let (status, entry) = get(
        &http,
        &format!(
            "{base}/v1/master-data/{}",
            lotline_sdk::encode_segment("https://id.gs1.org/414/9506000134352")
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{entry}");
    assert_eq!(entry["place"]["name"], "Dairy plant 1", "{entry}");
    assert_eq!(entry["place"]["address"], "1 Alm Road, Bern", "{entry}");
    // The consumer page and the lot report name the product and place.
    let lot = lotline_sdk::encode_segment(&support::lot_uri("MD-1"));
    let (status, view) = get(&http, &format!("{base}/public/v1/provenance/{lot}")).await;
    assert_eq!(status, StatusCode::OK, "{view}");
    assert_eq!(view["productName"], "Pasteurised milk 1 l", "{view}");
    assert_eq!(view["brand"], "Alpine Dairy", "{view}");
    let report = support::http_as(&consortium, "regulator")
        .get(format!("{base}/v1/reports/lots/{lot}?format=csv"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(report.contains("Pasteurised milk 1 l"), "{report}");
    // Master data attestations are not refused as repeats: a new version
    // (another capture time) replaces the old one.
    let newer = master_data_document(
        json!([{"type": "urn:epcglobal:epcis:vtype:BusinessLocation", "vocabularyElementList": [
            {"id": place, "attributes": [{"id": "urn:epcglobal:cbv:mda#name", "attribute": "Dairy plant 1 (north)"}]}
        ]}]),
        vec![],
    );
    let (status, location, body) = post(&http, &capture, &newer, None).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(finished_job(&http, &base, &location).await["success"], true);
    let (_, entry) = get(
        &http,
        &format!(
            "{base}/v1/master-data/{}",
            lotline_sdk::encode_segment(place)
        ),
    )
    .await;
    assert_eq!(entry["place"]["name"], "Dairy plant 1 (north)", "{entry}");

    // Another org claims a GLN first (client-signed); the capture org's
    // master data for it is then refused, and its document's event too.
    let other = "supplier";
    assert_ne!(other, consortium.capture_org());
    let claimed = "https://id.gs1.org/414/9506000000008";
    let claim: lotline_core::epcis::Event = serde_json::from_value(json!({
        "type": "ObjectEvent",
        "eventID": lotline_core::epcis::master_data::event_id(claimed),
        "eventTime": "2026-03-02T08:00:00.000Z",
        "eventTimeZoneOffset": "+00:00",
        "action": "OBSERVE",
        "epcList": [claimed],
        "lotline:masterData": {
            "vocabulary": "urn:epcglobal:epcis:vtype:BusinessLocation",
            "id": claimed,
            "attributes": [{"id": "urn:epcglobal:cbv:mda#name", "attribute": "Supplier yard"}]
        }
    }))
    .unwrap();
    support::client_as(&consortium, &node, other)
        .submit(
            &consortium.attest(other, claim),
            lotline_sdk::Wait::Committed,
        )
        .await
        .expect("the supplier's claim commits");
    let grab = master_data_document(
        json!([{"type": "urn:epcglobal:epcis:vtype:BusinessLocation", "vocabularyElementList": [
            {"id": "urn:epc:id:sgln:9506000.00000.0", "attributes": [{"id": "urn:epcglobal:cbv:mda#name", "attribute": "Ours now"}]}
        ]}]),
        vec![object_event("MD-2", 1.0)],
    );
    let (status, _, problem) = post(&http, &capture, &grab, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{problem}");
    assert_eq!(problem["type"], "https://lotline.dev/problems/not-owner");
    assert!(
        problem_fields(&problem)
            .iter()
            .any(|f| f.starts_with("epcisHeader.epcisMasterData.vocabularyList[0]")),
        "{problem}"
    );
    assert!(
        events_of_lot(&http, &base, "MD-2").await.is_empty(),
        "rollback"
    );
    let (_, entry) = get(
        &http,
        &format!(
            "{base}/v1/master-data/{}",
            lotline_sdk::encode_segment(claimed)
        ),
    )
    .await;
    assert_eq!(entry["owner"], other, "{entry}");
    assert_eq!(entry["place"]["name"], "Supplier yard", "{entry}");

    // An unsupported vocabulary type is a 422 naming the element.
    let bad = master_data_document(
        json!([{"type": "urn:epcglobal:epcis:vtype:BusinessStep", "vocabularyElementList": [
            {"id": "urn:epcglobal:cbv:bizstep:shipping"}
        ]}]),
        vec![],
    );
    let (status, _, problem) = post(&http, &capture, &bad, None).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");

    // The XML master data document (GS1's example) is captured alike.
    let xml = std::fs::read(format!("{FIXTURES}/../epcis-xml/Example-masterData.xml")).unwrap();
    let (status, location, body) = post_xml(&http, &capture, xml).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(finished_job(&http, &base, &location).await["success"], true);
    let (status, entry) = get(
        &http,
        &format!(
            "{base}/v1/master-data/{}",
            lotline_sdk::encode_segment("urn:epc:id:sgln:0037000.00729.0")
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{entry}");
    let attributes = entry["element"]["attributes"].as_array().unwrap();
    assert!(
        attributes
            .iter()
            .any(|a| a["attribute"]["Address"]["Street"] == "100 Nowhere Street"),
        "{entry}"
    );
    assert_eq!(
        entry["element"]["children"].as_array().map(Vec::len),
        Some(3)
    );
    node.shutdown().await;
}

/// The venv with openpyxl and jwcrypto: `scripts/standards-readers`
/// (which reuses `$LOTLINE_STANDARDS_VENV`). Never skipped: without it the
/// test fails.
fn standards_venv() -> std::path::PathBuf {
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/standards-readers");
    let out = std::process::Command::new(&script)
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", script.display()));
    assert!(
        out.status.success(),
        "scripts/standards-readers failed (python3-venv and PyPI are needed): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::path::PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fsma_204_spreadsheet_lists_the_critical_tracking_events_as_csv_and_xlsx() {
    // Goal: for a lot (or a product) and a date range, the FSMA 204
    // sortable spreadsheet holds one row per critical tracking event with
    // its KDEs (names from master data, the TLC source, ship-to, reference
    // document, input lots), leaves non-CTE events out, and its XLSX opens
    // in openpyxl (not ours) with the same cells. Method: a real node; a
    // chain of initial packing, transformation, shipping, an inspection.
    let consortium = Consortium::with_open_capture_policy();
    let node = consortium.start().await;
    let http = support::http_as(&consortium, consortium.capture_org());
    let base = node.url();
    let capture = format!("{base}/epcis/capture");
    let plant = "https://id.gs1.org/414/9506000134352";
    let store = "https://id.gs1.org/414/9506000000008";
    let lot = |l: &str| support::lot_uri(l);
    let vocabularies = json!([
        {"type": "urn:epcglobal:epcis:vtype:EPCClass", "vocabularyElementList": [
            {"id": format!("https://id.gs1.org/01/{}", support::GTIN), "attributes": [
                {"id": "https://gs1.org/voc/productName", "attribute": "Fresh-cut salad"},
                {"id": "https://gs1.org/voc/netContent", "attribute": {"value": 250, "unitCode": "GRM"}}
            ]}
        ]},
        {"type": "urn:epcglobal:epcis:vtype:BusinessLocation", "vocabularyElementList": [
            {"id": plant, "attributes": [
                {"id": "urn:epcglobal:cbv:mda#name", "attribute": "Salad plant"},
                {"id": "urn:epcglobal:cbv:mda#city", "attribute": "Salinas"}
            ]}
        ]}
    ]);
    let at = |time: &str, step: &str, extra: Value| {
        let mut event = json!({
            "type": "ObjectEvent", "eventTime": time, "eventTimeZoneOffset": "-08:00",
            "action": "OBSERVE", "bizStep": step, "bizLocation": {"id": plant}
        });
        for (k, v) in extra.as_object().unwrap() {
            event[k] = v.clone();
        }
        event
    };
    let mut packing = at(
        "2026-03-01T08:00:00-08:00",
        "commissioning",
        json!({
            "quantityList": [{"epcClass": lot("LET-1"), "quantity": 40, "uom": "KGM"}]
        }),
    );
    packing["action"] = json!("ADD");
    let transformation = json!({
        "type": "TransformationEvent", "eventTime": "2026-03-02T09:30:00-08:00",
        "eventTimeZoneOffset": "-08:00", "bizStep": "creating_class_instance",
        "bizLocation": {"id": plant},
        "inputQuantityList": [{"epcClass": lot("LET-1"), "quantity": 40, "uom": "KGM"}],
        "outputQuantityList": [{"epcClass": lot("SAL-1"), "quantity": 160, "uom": "EA"}]
    });
    let shipping = at(
        "2026-03-03T06:00:00-08:00",
        "shipping",
        json!({
            "quantityList": [{"epcClass": lot("SAL-1"), "quantity": 160, "uom": "EA"}],
            "bizTransactionList": [{"type": "bol", "bizTransaction": "urn:epcglobal:cbv:bt:9506000134352:BOL-77"}],
            "destinationList": [{"type": "location", "destination": store}]
        }),
    );
    let inspection = at(
        "2026-03-03T05:00:00-08:00",
        "inspecting",
        json!({
            "quantityList": [{"epcClass": lot("SAL-1"), "quantity": 2, "uom": "EA"}]
        }),
    );
    let doc = master_data_document(
        vocabularies,
        vec![packing, transformation, inspection, shipping],
    );
    let (status, location, body) = post(&http, &capture, &doc, None).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let job = finished_job(&http, &base, &location).await;
    assert_eq!(job["success"], true, "{job}");

    let export = |query: String| {
        let http = http.clone();
        let url = format!("{base}/v1/fsma204?{query}");
        async move {
            let response = http.get(&url).send().await.unwrap();
            (response.status(), response.bytes().await.unwrap().to_vec())
        }
    };
    let sal = lotline_sdk::encode_segment(&lot("SAL-1"));
    let (status, body) = export(format!("tlc={sal}")).await;
    let text = String::from_utf8(body).unwrap();
    assert_eq!(status, StatusCode::OK, "{text}");
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].starts_with(
            "Critical Tracking Event (CTE),Traceability Lot Code (TLC),Product Description"
        ),
        "{text}"
    );
    assert_eq!(
        lines.len(),
        3,
        "transformation and shipping, no inspection: {text}"
    );
    assert!(lines[1].starts_with("Transformation,SAL-1,\"Fresh-cut salad, 250 GRM\",09506000134352,160,EA,2026-03-02,17:30:00,\"Salad plant, Salinas (9506000134352)\""), "{text}");
    assert!(lines[1].contains("LET-1 (GTIN 09506000134352)"), "{text}");
    assert!(lines[2].starts_with("Shipping,SAL-1,"), "{text}");
    assert!(
        lines[2].contains(",9506000000008,bol,urn:epcglobal:cbv:bt:9506000134352:BOL-77,"),
        "{text}"
    );
    // The TLC source: where the lot was first named (the transformation).
    assert!(
        lines[2].contains("\"Salad plant, Salinas (9506000134352)\",9506000134352,"),
        "{text}"
    );

    // By product, and a date range that cuts the packing off.
    let (status, body) = export(format!("gtin={}&format=csv", support::GTIN)).await;
    assert_eq!(status, StatusCode::OK);
    let all = String::from_utf8(body).unwrap();
    assert_eq!(
        all.lines().count(),
        4,
        "packing, transformation, shipping: {all}"
    );
    assert!(
        all.lines()
            .nth(1)
            .unwrap()
            .starts_with("Initial Packing,LET-1,"),
        "{all}"
    );
    let (_, body) = export(format!(
        "gtin={}&from=2026-03-02T00:00:00Z&until=2026-03-03T00:00:00Z",
        support::GTIN
    ))
    .await;
    let ranged = String::from_utf8(body).unwrap();
    assert_eq!(ranged.lines().count(), 2, "{ranged}");

    // The XLSX, read by openpyxl.
    let (status, xlsx) = export(format!("tlc={sal}&format=xlsx")).await;
    assert_eq!(status, StatusCode::OK);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fsma204.xlsx");
    std::fs::write(&path, &xlsx).unwrap();
    let venv = standards_venv();
    let script = "import json, sys, openpyxl\n\
        wb = openpyxl.load_workbook(sys.argv[1])\n\
        ws = wb.active\n\
        rows = [[c for c in r] for r in ws.iter_rows(values_only=True)]\n\
        print(json.dumps({'title': ws.title, 'filter': ws.auto_filter.ref, 'freeze': ws.freeze_panes, 'rows': rows}))\n";
    let run = std::process::Command::new(venv.join("bin/python"))
        .arg("-c")
        .arg(script)
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let read: Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(read["title"], "FSMA 204");
    assert_eq!(read["filter"], "A1:T3", "{read}");
    assert_eq!(read["freeze"], "A2");
    let rows = read["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0][0], "Critical Tracking Event (CTE)");
    assert_eq!(rows[1][1], "SAL-1");
    assert_eq!(rows[1][3], "09506000134352", "lot and GTIN stay text");
    assert_eq!(rows[1][4], 160.0, "quantities are numbers");
    assert_eq!(
        rows[2][15], "urn:epcglobal:cbv:bt:9506000134352:BOL-77",
        "{read}"
    );
    assert_eq!(rows[1][8], "Salad plant, Salinas (9506000134352)", "{read}");

    // Bad requests.
    let (status, _) = export(String::new()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _) = export(format!("tlc={sal}&format=pdf")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = export(format!("gtin={}", support::GTIN.replace('2', "3"))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "check digit");
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_serialised_item_has_a_passport_that_jwcrypto_verifies() {
    // Goal: the resolver links a serialised item to its Digital Product
    // Passport, a UNTP DPP issued as a JOSE-secured VC (EdDSA) whose key
    // the node publishes as did:web; jwcrypto (not ours) verifies it with
    // that document's key and refuses a tampered copy. Method: a real node;
    // master data and a commissioning of one serial, then the public routes.
    let consortium = Consortium::with_open_capture_policy();
    let node = consortium.start().await;
    let http = support::http_as(&consortium, consortium.capture_org());
    let base = node.url();
    let item = format!("https://id.gs1.org/01/{}/21/SER-1", support::GTIN);
    let mut commissioning = object_event("unused", 1.0);
    commissioning["bizStep"] = json!("commissioning");
    commissioning["action"] = json!("ADD");
    commissioning
        .as_object_mut()
        .unwrap()
        .remove("quantityList");
    commissioning["epcList"] = json!([item]);
    let doc = master_data_document(
        json!([{"type": "urn:epcglobal:epcis:vtype:EPCClass", "vocabularyElementList": [
            {"id": format!("https://id.gs1.org/01/{}", support::GTIN), "attributes": [
                {"id": "https://gs1.org/voc/productName", "attribute": "Battery pack 48 V"}
            ]}
        ]}]),
        vec![commissioning],
    );
    let (status, location, body) = post(&http, &format!("{base}/epcis/capture"), &doc, None).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(finished_job(&http, &base, &location).await["success"], true);

    let public = reqwest::Client::new();
    let did_doc: Value = public
        .get(format!("{base}/.well-known/did.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let host = base.trim_start_matches("http://").replace(':', "%3A");
    assert_eq!(did_doc["id"], format!("did:web:{host}"), "{did_doc}");
    let linkset: Value = public
        .get(format!("{base}/01/{}/21/SER-1", support::GTIN))
        .header("accept", "application/linkset+json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let link =
        linkset["linkset"][0]["https://test.uncefact.org/vocabulary/untp/linkType#dpp"][0]["href"]
            .as_str()
            .unwrap_or_else(|| panic!("no passport link: {linkset}"))
            .to_owned();
    let response = public.get(&link).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/vc+jwt");
    let token = response.text().await.unwrap();

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("did.json"), did_doc.to_string()).unwrap();
    let verify = |token: &str| {
        std::fs::write(dir.path().join("token"), token).unwrap();
        let script = "import json, sys\n\
            from jwcrypto import jwk, jws\n\
            doc = json.load(open(sys.argv[1]))\n\
            token = open(sys.argv[2]).read()\n\
            method = doc['verificationMethod'][0]\n\
            key = jwk.JWK(**method['publicKeyJwk'])\n\
            signed = jws.JWS()\n\
            signed.deserialize(token)\n\
            signed.verify(key, alg='EdDSA')\n\
            print(json.dumps({'kid': method['id'], 'header': signed.jose_header, 'payload': json.loads(signed.payload)}))\n";
        std::process::Command::new(standards_venv().join("bin/python"))
            .arg("-c")
            .arg(script)
            .arg(dir.path().join("did.json"))
            .arg(dir.path().join("token"))
            .output()
            .unwrap()
    };
    let run = verify(&token);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let read: Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(read["header"]["alg"], "EdDSA");
    assert_eq!(read["header"]["typ"], "vc+jwt");
    assert_eq!(read["header"]["kid"], read["kid"]);
    let credential = &read["payload"];
    assert_eq!(
        credential["type"],
        json!(["DigitalProductPassport", "VerifiableCredential"])
    );
    assert_eq!(credential["issuer"]["id"], did_doc["id"]);
    let subject = &credential["credentialSubject"];
    assert_eq!(subject["id"], item);
    assert_eq!(subject["product"]["name"], "Battery pack 48 V", "{subject}");
    assert_eq!(subject["product"]["serialNumber"], "SER-1");
    let proofs = subject["lotline:proofs"].as_array().unwrap();
    assert!(!proofs.is_empty(), "{subject}");
    // Each cited attestation has a receipt at the URL the passport gives
    // (for readers the read policy allows; the public proof bundle holds
    // the publicly readable ones).
    assert!(
        subject["lotline:proofBundle"]
            .as_str()
            .unwrap()
            .contains("/public/v1/proof/")
    );
    let receipt = http
        .get(proofs[0]["receipt"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(receipt.status(), StatusCode::OK);

    // A tampered payload does not verify.
    let parts: Vec<&str> = token.split('.').collect();
    let mut payload: Vec<u8> = parts[1].bytes().collect();
    payload[10] = if payload[10] == b'A' { b'B' } else { b'A' };
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        String::from_utf8(payload).unwrap(),
        parts[2]
    );
    assert!(
        !verify(&tampered).status.success(),
        "a tampered passport verified"
    );

    // A lot has no passport.
    let lot = lotline_sdk::encode_segment(&support::lot_uri("L1"));
    let status = public
        .get(format!("{base}/public/v1/dpp/{lot}"))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    node.shutdown().await;
}
