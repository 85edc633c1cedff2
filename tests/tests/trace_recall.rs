//! Traceability on a running node: a backward trace from a serial finds
//! every input lot through every transformation level, a forward trace and a
//! recall scope from a raw lot find every product, container and holder, a
//! recall order marks them, an error declaration removes a wrong edge while
//! showing the correction, and `proofs=true` verifies offline.

use crate::support::{Consortium, client_as, commissioning, lot_uri};
use lotline_core::api::{BatchResult, Problem, Wait};
use lotline_core::epcis::Event;
use lotline_core::gs1;
use lotline_core::lineage::{CustodyState, EdgeKind};
use lotline_core::trace::{Direction, NodeKind, RecallScopeRequest, Trace};
use lotline_sdk::{Client, SdkError, verify_trace};
use serde_json::{Value, json};

/// A GTIN-14 on the demo company prefix with a valid check digit.
fn gtin(item: u32) -> String {
    let body = format!("0950600{item:06}");
    let digit = gs1::check_digit(&body).expect("digits");
    format!("{body}{digit}")
}

fn gln(location: u32) -> String {
    let body = format!("950600{location:06}");
    let digit = gs1::check_digit(&body).expect("digits");
    format!("https://id.gs1.org/414/{body}{digit}")
}

fn sscc(serial: u32) -> String {
    let body = format!("09506000{serial:09}");
    let digit = gs1::check_digit(&body).expect("digits");
    format!("https://id.gs1.org/00/{body}{digit}")
}

fn class_lot(item: u32, lot: &str) -> String {
    format!("https://id.gs1.org/01/{}/10/{lot}", gtin(item))
}

fn serial(item: u32, serial: u32) -> String {
    format!("https://id.gs1.org/01/{}/21/{serial}", gtin(item))
}

fn event(value: Value) -> Event {
    serde_json::from_value(value).expect("event")
}

fn base(kind: &str, minute: u32, step: &str) -> serde_json::Map<String, Value> {
    let value = json!({
        "type": kind,
        "eventTime": format!("2026-03-02T{:02}:{:02}:00.000Z", 8 + minute / 60, minute % 60),
        "eventTimeZoneOffset": "+08:00",
        "bizStep": step,
    });
    match value {
        Value::Object(map) => map,
        _ => unreachable!(),
    }
}

fn with(mut map: serde_json::Map<String, Value>, extra: Value) -> Event {
    if let Value::Object(extra) = extra {
        map.extend(extra);
    }
    event(Value::Object(map))
}

fn quantity(class: &str, amount: f64) -> Value {
    json!({"epcClass": class, "quantity": amount, "uom": "KGM"})
}

fn transformation(minute: u32, id: &str, inputs: &[&str], output: &str, amount: f64) -> Event {
    with(
        base("TransformationEvent", minute, "commissioning"),
        json!({
            "eventID": id,
            "inputQuantityList": inputs.iter().map(|i| quantity(i, amount / inputs.len() as f64)).collect::<Vec<_>>(),
            "outputQuantityList": [quantity(output, amount)],
            "bizLocation": {"id": gln(2)},
        }),
    )
}

fn transfer(minute: u32, step: &str, epcs: Vec<String>, classes: Vec<Value>, to: u32) -> Event {
    with(
        base("ObjectEvent", minute, step),
        json!({
            "action": "OBSERVE",
            "epcList": epcs,
            "quantityList": classes,
            "bizLocation": {"id": gln(if step == "receiving" { to } else { 99 })},
            "destinationList": [
                {"type": "owning_party", "destination": gln(to)},
                {"type": "location", "destination": gln(to)},
            ],
        }),
    )
}

/// The story: raw lots R1, R2 (and R3, wrongly booked then retracted) →
/// M1 → F1 → serials S1..S4 → cases C1, C2 → pallet P1 → shipped to and
/// received by the distributor, who logs a temperature excursion.
struct Story {
    r1: String,
    r2: String,
    r3: String,
    m1: String,
    f1: String,
    serials: Vec<String>,
    cases: Vec<String>,
    pallet: String,
}

async fn load(consortium: &Consortium, client: &Client) -> Story {
    let story = Story {
        r1: lot_uri("R1"),
        r2: lot_uri("R2"),
        r3: lot_uri("R3"),
        m1: class_lot(2, "M1"),
        f1: class_lot(3, "F1"),
        serials: (1..=4).map(|s| serial(3, s)).collect(),
        cases: vec![sscc(1), sscc(2)],
        pallet: sscc(3),
    };
    let mut events: Vec<(&str, Event)> = vec![
        ("supplier", commissioning("R1")),
        ("supplier", commissioning("R2")),
        ("supplier", commissioning("R3")),
        (
            "supplier",
            transfer(
                10,
                "shipping",
                vec![],
                vec![
                    quantity(&story.r1, 500.0),
                    quantity(&story.r2, 500.0),
                    quantity(&story.r3, 500.0),
                ],
                2,
            ),
        ),
        (
            "manufacturer",
            transfer(
                20,
                "receiving",
                vec![],
                vec![
                    quantity(&story.r1, 500.0),
                    quantity(&story.r2, 500.0),
                    quantity(&story.r3, 500.0),
                ],
                2,
            ),
        ),
        (
            "manufacturer",
            transformation(
                30,
                "urn:uuid:5b1c0000-0000-4000-8000-000000000001",
                &[&story.r1, &story.r2],
                &story.m1,
                900.0,
            ),
        ),
        (
            "manufacturer",
            transformation(
                40,
                "urn:uuid:5b1c0000-0000-4000-8000-000000000002",
                &[&story.r3],
                &story.m1,
                100.0,
            ),
        ),
        (
            "manufacturer",
            transformation(
                50,
                "urn:uuid:5b1c0000-0000-4000-8000-000000000003",
                &[&story.m1],
                &story.f1,
                880.0,
            ),
        ),
        (
            "manufacturer",
            with(
                base("ObjectEvent", 60, "commissioning"),
                json!({
                    "action": "ADD",
                    "epcList": story.serials,
                    "bizLocation": {"id": gln(2)},
                    "ilmd": {"cbvmda:lotNumber": "F1"},
                    "@context": [{"cbvmda": "urn:epcglobal:cbv:mda:"}],
                }),
            ),
        ),
        (
            "manufacturer",
            with(
                base("ObjectEvent", 61, "inspecting"),
                json!({
                    "action": "OBSERVE",
                    "quantityList": [quantity(&story.f1, 880.0)],
                    "bizLocation": {"id": gln(2)},
                    "lotline:quality": {"kind": "inspection", "result": "pass", "method": "final"},
                }),
            ),
        ),
    ];
    for (case, children) in story.cases.iter().zip(story.serials.chunks(2)) {
        events.push((
            "manufacturer",
            with(
                base("AggregationEvent", 70, "packing"),
                json!({"action": "ADD", "parentID": case, "childEPCs": children, "bizLocation": {"id": gln(2)}}),
            ),
        ));
    }
    events.push((
        "manufacturer",
        with(
            base("AggregationEvent", 80, "packing"),
            json!({"action": "ADD", "parentID": story.pallet, "childEPCs": story.cases, "bizLocation": {"id": gln(2)}}),
        ),
    ));
    events.push((
        "manufacturer",
        transfer(90, "shipping", vec![story.pallet.clone()], vec![], 3),
    ));
    events.push((
        "distributor",
        transfer(120, "receiving", vec![story.pallet.clone()], vec![], 3),
    ));
    events.push((
        "distributor",
        with(
            base("ObjectEvent", 150, "storing"),
            json!({
                "action": "OBSERVE",
                "epcList": [story.pallet],
                "bizLocation": {"id": gln(3)},
                "sensorElementList": [{"sensorReport": [
                    {"type": "gs1:Temperature", "value": 4.0, "uom": "CEL"},
                    {"type": "gs1:Temperature", "value": 9.5, "uom": "CEL"},
                ]}],
            }),
        ),
    ));
    for (org, event) in events {
        let envelope = consortium.attest(org, event);
        client
            .submit(&envelope, Wait::Committed)
            .await
            .unwrap_or_else(|e| panic!("{org}'s event is committed: {e}"));
    }
    story
}

/// The manufacturer's declaration that transformation 2 (R3 into M1) was
/// booked in error: the same event again, with an errorDeclaration.
fn retract_r3(story: &Story) -> Event {
    let mut event = transformation(
        40,
        "urn:uuid:5b1c0000-0000-4000-8000-000000000002",
        &[&story.r3],
        &story.m1,
        100.0,
    );
    event.error_declaration = Some(lotline_core::epcis::ErrorDeclaration {
        declaration_time: "2026-03-02T10:00:00.000Z".to_owned(),
        reason: Some("incorrect_data".to_owned()),
        corrective_event_ids: Vec::new(),
        extensions: Default::default(),
    });
    event
}

fn node_ids(trace: &Trace) -> Vec<&str> {
    trace.nodes.iter().map(|n| n.id.as_str()).collect()
}

fn has_edge(trace: &Trace, from: &str, to: &str, kind: EdgeKind) -> bool {
    trace
        .edges
        .iter()
        .any(|e| e.from == from && e.to == to && e.kind == kind)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backward_trace_finds_every_input_and_follows_corrections() {
    let consortium = Consortium::new();
    let node = consortium.start().await;
    let client = client_as(&consortium, &node, "regulator");
    let story = load(&consortium, &client).await;
    let s1 = &story.serials[0];

    let trace = client
        .trace(s1, Direction::Backward, None, false)
        .await
        .expect("trace");
    assert!(has_edge(&trace, &story.f1, s1, EdgeKind::Serialised));
    assert!(has_edge(
        &trace,
        &story.m1,
        &story.f1,
        EdgeKind::TransformedInto
    ));
    assert!(has_edge(
        &trace,
        &story.r1,
        &story.m1,
        EdgeKind::TransformedInto
    ));
    assert!(has_edge(
        &trace,
        &story.r2,
        &story.m1,
        EdgeKind::TransformedInto
    ));
    assert!(has_edge(
        &trace,
        &story.r3,
        &story.m1,
        EdgeKind::TransformedInto
    ));
    let r1 = trace.nodes.iter().find(|n| n.id == story.r1).expect("R1");
    assert_eq!((r1.depth, r1.kind), (3, NodeKind::Lot));
    assert!(
        trace
            .facts
            .iter()
            .any(|f| f.subject == story.f1 && f.quality.is_some()),
        "the final inspection of F1 is on the trace"
    );
    let root = &trace.nodes[0];
    assert_eq!(root.id, *s1);
    let holder = root.holder.as_ref().expect("S1 has a holder");
    assert_eq!(
        holder.org, "distributor",
        "the pallet holding S1 was received"
    );
    assert_eq!(holder.via, story.pallet);
    assert!(matches!(holder.state, CustodyState::Held { .. }));
    assert!(trace.corrections.is_empty());

    // Depth 1 stops at F1 and says so.
    let shallow = client
        .trace(s1, Direction::Backward, Some(1), false)
        .await
        .expect("trace");
    assert_eq!(node_ids(&shallow), vec![s1.as_str(), story.f1.as_str()]);
    assert!(shallow.truncated);

    // Someone else's declaration does not retract the manufacturer's event.
    let mut forged = with(
        base("ObjectEvent", 100, "receiving"),
        json!({
            "action": "OBSERVE",
            "eventID": "urn:uuid:5b1c0000-0000-4000-8000-000000000002",
            "epcList": [story.pallet],
        }),
    );
    forged.error_declaration = retract_r3(&story).error_declaration;
    client
        .submit(&consortium.attest("distributor", forged), Wait::Committed)
        .await
        .expect("the distributor's declaration is committed");
    let still = client
        .trace(s1, Direction::Backward, None, false)
        .await
        .expect("trace");
    assert!(has_edge(
        &still,
        &story.r3,
        &story.m1,
        EdgeKind::TransformedInto
    ));
    assert!(still.corrections.is_empty());

    // The manufacturer's own declaration does.
    let declaration = consortium.attest("manufacturer", retract_r3(&story));
    client
        .submit(&declaration, Wait::Committed)
        .await
        .expect("declaration committed");
    let corrected = client
        .trace(s1, Direction::Backward, None, false)
        .await
        .expect("trace");
    assert!(!has_edge(
        &corrected,
        &story.r3,
        &story.m1,
        EdgeKind::TransformedInto
    ));
    assert!(!node_ids(&corrected).contains(&story.r3.as_str()));
    assert!(has_edge(
        &corrected,
        &story.r1,
        &story.m1,
        EdgeKind::TransformedInto
    ));
    assert_eq!(corrected.corrections.len(), 1);
    let correction = &corrected.corrections[0];
    assert_eq!(
        correction.event_id,
        "urn:uuid:5b1c0000-0000-4000-8000-000000000002"
    );
    assert_eq!(correction.declaration.attestation, declaration.id());
    assert_eq!(correction.reason.as_deref(), Some("incorrect_data"));
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recall_scope_reaches_every_unit_and_holder_and_the_order_marks_them() {
    let consortium = Consortium::new();
    let node = consortium.start().await;
    let client = client_as(&consortium, &node, "regulator");
    let story = load(&consortium, &client).await;

    let forward = client
        .trace(&story.r1, Direction::Forward, None, false)
        .await
        .expect("forward trace");
    let ids = node_ids(&forward);
    for unit in [&story.m1, &story.f1, &story.pallet]
        .into_iter()
        .chain(&story.serials)
        .chain(&story.cases)
    {
        assert!(ids.contains(&unit.as_str()), "{unit} is downstream of R1");
    }
    assert!(has_edge(
        &forward,
        &story.pallet,
        &gln(3),
        EdgeKind::ShippedTo
    ));
    assert!(
        !ids.contains(&story.r2.as_str()),
        "a sibling input is not downstream"
    );

    let request = RecallScopeRequest {
        suspects: vec![story.r1.clone()],
        from: None,
        until: None,
    };
    let scope = client.recall_scope(&request).await.expect("scope");
    assert_eq!(scope.totals.items, 4);
    assert_eq!(scope.totals.containers, 3);
    assert_eq!(scope.totals.lots, 3, "R1, M1, F1");
    assert_eq!(scope.totals.units, 10);
    let s4 = scope
        .units
        .iter()
        .find(|u| u.id == story.serials[3])
        .expect("S4 in scope");
    assert_eq!(
        s4.holder.as_ref().map(|h| h.org.as_str()),
        Some("distributor")
    );
    let f1 = scope.units.iter().find(|u| u.id == story.f1).expect("F1");
    assert_eq!(f1.quantity.as_ref().map(|q| q.value), Some(880.0));
    assert_eq!(
        f1.holder.as_ref().map(|h| h.org.as_str()),
        Some("manufacturer")
    );
    assert!(scope.units.iter().all(|u| u.recalled.is_none()));
    let distributor_units = scope
        .totals
        .by_holder
        .iter()
        .find(|h| h.org == "distributor")
        .map(|h| h.units);
    assert_eq!(distributor_units, Some(7), "4 serials, 2 cases, 1 pallet");

    // A window after the transformations leaves only the suspect itself.
    let late = RecallScopeRequest {
        from: Some("2026-03-02T12:00:00Z".to_owned()),
        ..request.clone()
    };
    let late = client.recall_scope(&late).await.expect("scope");
    assert_eq!(late.totals.units, 1);

    // The manufacturer orders the recall of R1: every unit shows it.
    let order = with(
        base("ObjectEvent", 200, "holding"),
        json!({
            "action": "OBSERVE",
            "quantityList": [quantity(&story.r1, 500.0)],
            "bizLocation": {"id": gln(2)},
            "disposition": "recalled",
            "lotline:quality": {"kind": "recallOrder", "recallId": "RC-2026-001", "reason": "supplier reported contamination", "class": "II", "scope": [story.r1]},
        }),
    );
    client
        .submit(&consortium.attest("manufacturer", order), Wait::Committed)
        .await
        .expect("recall order committed");
    let scope = client.recall_scope(&request).await.expect("scope");
    assert!(
        scope.units.iter().all(|u| u
            .recalled
            .as_ref()
            .is_some_and(|r| r.recall_id == "RC-2026-001")),
        "every affected unit is marked recalled"
    );
    let back = client
        .trace(&story.serials[0], Direction::Backward, None, false)
        .await
        .expect("trace");
    let mark = back.nodes[0]
        .recalled
        .as_ref()
        .expect("S1 shows the recall");
    assert_eq!(mark.suspect, story.r1);
    let sibling = client
        .trace(&story.r2, Direction::Backward, None, false)
        .await
        .expect("trace");
    assert!(sibling.nodes[0].recalled.is_none(), "R2 is not recalled");
    let mid = client
        .trace(&story.f1, Direction::Forward, None, false)
        .await
        .expect("trace");
    assert!(
        mid.nodes
            .iter()
            .all(|n| n.kind == NodeKind::Location || n.recalled.is_some())
    );
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trace_with_proofs_verifies_offline_and_a_forged_edge_does_not() {
    let consortium = Consortium::new();
    let node = consortium.start().await;
    let client = client_as(&consortium, &node, "regulator");
    let story = load(&consortium, &client).await;

    let trace = client
        .trace(&story.serials[0], Direction::Backward, None, true)
        .await
        .expect("trace with proofs");
    assert!(!trace.receipts.is_empty());
    let verified = verify_trace(&trace, &consortium.genesis).expect("trace verifies");
    assert_eq!(verified.attestations, trace.receipts.len());

    let mut forged = trace.clone();
    forged.edges[0].from = story.r2.clone();
    forged.edges[0].to = story.serials[1].clone();
    assert!(verify_trace(&forged, &consortium.genesis).is_err());

    let mut reattributed = trace.clone();
    reattributed.edges[0].source.org = "supplier".to_owned();
    assert!(verify_trace(&reattributed, &consortium.genesis).is_err());

    let mut stripped = trace.clone();
    stripped.receipts.pop();
    assert!(verify_trace(&stripped, &consortium.genesis).is_err());
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_trace_and_scope_requests_get_a_problem_naming_the_field() {
    let consortium = Consortium::new();
    let node = consortium.start().await;
    let client = client_as(&consortium, &node, "regulator");
    let http = reqwest::Client::new();
    let url = node.url();
    let bad_check_digit = "https%3A%2F%2Fid.gs1.org%2F01%2F09506000134353%2F10%2FX";
    let cases = [
        (
            format!("{url}/v1/trace/{bad_check_digit}"),
            "invalid-identifier",
        ),
        (
            format!("{url}/v1/trace/not%20a%20uri"),
            "invalid-identifier",
        ),
        (
            format!(
                "{url}/v1/trace/{}?depth=1000",
                lotline_sdk::encode_segment(&lot_uri("A"))
            ),
            "bad-query",
        ),
        (
            format!(
                "{url}/v1/trace/{}?direction=sideways",
                lotline_sdk::encode_segment(&lot_uri("A"))
            ),
            "bad-query",
        ),
        (
            format!(
                "{url}/v1/trace/{}?colour=red",
                lotline_sdk::encode_segment(&lot_uri("A"))
            ),
            "bad-query",
        ),
    ];
    for (url, slug) in cases {
        let response = http.get(&url).send().await.expect("request");
        // 422: the request fits the API document, the identifier does not
        // parse; 400: the request does not fit the document.
        let expected = if slug == "invalid-identifier" {
            422
        } else {
            400
        };
        assert_eq!(response.status(), expected, "{url}");
        let problem: lotline_core::api::Problem = response.json().await.expect("problem");
        assert_eq!(problem.slug(), slug, "{url}");
    }
    let scopes = [
        (json!({"suspects": []}), "suspects"),
        (
            json!({"suspects": ["urn:epc:class:lgtin:9506000.134352.X"], "from": "yesterday"}),
            "from",
        ),
        (
            json!({"suspects": [lot_uri("A")], "from": "2026-03-02T12:00:00Z", "until": "2026-03-01T12:00:00Z"}),
            "until",
        ),
    ];
    for (body, field) in scopes {
        let request: RecallScopeRequest = serde_json::from_value(body).expect("shape");
        match client.recall_scope(&request).await {
            Err(SdkError::Rejected {
                status: 400,
                problem,
            }) => {
                assert_eq!(problem.problems[0].field, field);
            }
            other => panic!("{field}: expected a 400, got {other:?}"),
        }
    }
    let unknown_field = http
        .post(format!("{url}/v1/recalls/scope"))
        .json(&json!({"suspects": [lot_uri("A")], "colour": "red"}))
        .send()
        .await
        .expect("request");
    assert_eq!(unknown_field.status(), 400);
    // An unknown identifier is an empty trace, not an error: absence of
    // lineage is an answer.
    let empty = client
        .trace(&lot_uri("NEVER-SEEN"), Direction::Backward, None, false)
        .await
        .expect("trace");
    assert_eq!(empty.nodes.len(), 1);
    assert!(empty.edges.is_empty());
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn goods_held_by_another_org_and_cyclic_lineage_are_refused_naming_the_field() {
    let consortium = Consortium::new();
    let node = consortium.start().await;
    let client = client_as(&consortium, &node, "regulator");
    let story = load(&consortium, &client).await;
    let head = client.head().await.expect("head");

    let refused =
        |org: &'static str, event: Event, status: u16, slug: &'static str, field: &'static str| {
            let envelope = consortium.attest(org, event);
            let client = &client;
            async move {
                match client.submit(&envelope, Wait::Committed).await {
                    Err(SdkError::Rejected {
                        status: got,
                        problem,
                    }) => {
                        assert_eq!((got, problem.slug()), (status, slug), "{problem:?}");
                        assert_eq!(problem.problems[0].field, field, "{problem:?}");
                    }
                    other => panic!("{slug}: expected a rejection, got {other:?}"),
                }
            }
        };
    // R1 was received by the manufacturer: the supplier cannot ship it again.
    refused(
        "supplier",
        transfer(300, "shipping", vec![], vec![quantity(&story.r1, 10.0)], 3),
        409,
        "not-holder",
        "event.quantityList[0].epcClass",
    )
    .await;
    // The distributor holds the pallet: the manufacturer cannot repack its cases.
    refused(
        "manufacturer",
        with(
            base("AggregationEvent", 300, "packing"),
            json!({"action": "ADD", "parentID": sscc(9), "childEPCs": [story.cases[0]]}),
        ),
        409,
        "not-holder",
        "event.childEPCs[0]",
    )
    .await;
    // F1 was made from R1: R1 cannot be made from F1.
    refused(
        "manufacturer",
        transformation(
            300,
            "urn:uuid:5b1c0000-0000-4000-8000-0000000000aa",
            &[&story.f1],
            &story.r1,
            1.0,
        ),
        422,
        "cyclic-lineage",
        "event.outputQuantityList[0].epcClass",
    )
    .await;
    // A lot cannot be transformed into itself.
    refused(
        "manufacturer",
        transformation(
            300,
            "urn:uuid:5b1c0000-0000-4000-8000-0000000000ab",
            &[&story.m1],
            &story.m1,
            1.0,
        ),
        422,
        "cyclic-lineage",
        "event.outputQuantityList[0].epcClass",
    )
    .await;
    assert_eq!(
        client.head().await.expect("head").height,
        head.height,
        "nothing was applied"
    );
    node.shutdown().await;
}

/// Defect: admission walked the lineage graph (store reads, up to 5,000
/// nodes) before it verified the signature, and submitting needs no
/// credential. Goal: an envelope whose signature does not verify is refused
/// as `bad-signature` even when its event would trip the lineage guard, alone
/// and in a batch; the guard's answer is given only for a real signature.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_signature_is_refused_before_any_lineage_check() {
    let consortium = Consortium::new();
    let node = consortium.start().await;
    let client = client_as(&consortium, &node, "regulator");
    let story = load(&consortium, &client).await;
    let head = client.head().await.expect("head");

    // Both events trip the guard when honestly signed (see the test above).
    let not_holder = consortium.attest(
        "supplier",
        transfer(301, "shipping", vec![], vec![quantity(&story.r1, 10.0)], 3),
    );
    let cyclic = consortium.attest(
        "manufacturer",
        transformation(
            301,
            "urn:uuid:5b1c0000-0000-4000-8000-0000000000ac",
            &[&story.f1],
            &story.r1,
            1.0,
        ),
    );
    let forge = |envelope: &lotline_core::Envelope| {
        let mut forged = envelope.clone();
        forged.signatures[0].sig.0[7] ^= 0x40;
        forged
    };
    let http = reqwest::Client::new();
    let submit = |envelope: lotline_core::Envelope| {
        let request = http
            .post(format!("{}/v1/attestations", node.url()))
            .json(&envelope);
        async move {
            let response = request.send().await.expect("post");
            let status = response.status().as_u16();
            let problem: Problem = response.json().await.expect("problem");
            (status, problem)
        }
    };
    for (honest, slug) in [(&not_holder, "not-holder"), (&cyclic, "cyclic-lineage")] {
        let (status, problem) = submit(forge(honest)).await;
        assert_eq!(
            (status, problem.slug(), problem.problems.len()),
            (422, "bad-signature", 1),
            "a forged {slug} envelope must be judged by its signature first: {problem:?}"
        );
        // The same event, honestly signed, still meets the guard.
        let (_, problem) = submit(honest.clone()).await;
        assert_eq!(problem.slug(), slug, "{problem:?}");
    }
    // In a batch, each forged item is refused for its signature alone.
    let batch: BatchResult = http
        .post(format!("{}/v1/attestations/batch", node.url()))
        .json(&vec![forge(&not_holder), forge(&cyclic)])
        .send()
        .await
        .expect("batch")
        .json()
        .await
        .expect("batch result");
    assert_eq!(batch.rejected, 2, "{batch:?}");
    for result in &batch.results {
        let slug = result.problem.as_ref().map(|p| p.slug());
        assert_eq!(slug, Some("bad-signature"), "{batch:?}");
    }
    assert_eq!(
        client.head().await.expect("head").height,
        head.height,
        "nothing was applied"
    );
    node.shutdown().await;
}
