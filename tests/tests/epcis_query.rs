//! EPCIS 2.0 query over HTTP on a real one-node consortium: each query
//! parameter includes the event it should and excludes it when the filter
//! is wrong; paging walks every result exactly once; the browse paths work;
//! every answer validates against the EPCIS JSON Schema; bad parameters are
//! 400s naming the parameter.

use crate::support;

use std::collections::BTreeSet;
use std::time::Duration;

use crate::support::{Consortium, lot_uri};
use reqwest::StatusCode;
use serde_json::{Value, json};

const S1_URN: &str = "urn:epc:id:sgtin:0614141.107346.2017";
const S1_LINK: &str = "https://id.gs1.org/01/10614141073464/21/2017";
const S2: &str = "urn:epc:id:sgtin:0614141.107346.2018";
const S3: &str = "urn:epc:id:sgtin:0614141.107346.2019";
const S4: &str = "urn:epc:id:sgtin:0614141.107346.2020";
const SSCC: &str = "urn:epc:id:sscc:0614141.1234567890";
const OTHER_SSCC: &str = "urn:epc:id:sscc:0614141.1234567891";
const B1_URN: &str = "urn:epc:id:sgln:0614141.07346.1234";
const B1_LINK: &str = "https://id.gs1.org/414/0614141073467/254/1234";
const B2: &str = "urn:epc:id:sgln:0614141.07346.0";
const R1: &str = "https://id.gs1.org/414/9506000134352";
const R2: &str = "https://id.gs1.org/414/9506000134352/254/9";
/// Filler events that page.
const RECEIVING: usize = 20;

fn id(n: usize) -> String {
    format!("https://lotline.test/event/{n}")
}

fn base_event(n: usize, kind: &str, day: u32) -> Value {
    json!({
        "type": kind,
        "eventID": id(n),
        "eventTime": format!("2026-03-{day:02}T00:00:00Z"),
        "eventTimeZoneOffset": "+00:00",
    })
}

fn with(mut event: Value, fields: Value) -> Value {
    for (k, v) in fields.as_object().unwrap() {
        event[k] = v.clone();
    }
    event
}

/// E1..E5 (see each), then the receiving fillers.
fn events() -> Vec<Value> {
    let mut list = vec![
        with(
            base_event(1, "ObjectEvent", 1),
            json!({
                "action": "ADD", "bizStep": "commissioning", "disposition": "active",
                "quantityList": [{"epcClass": lot_uri("A"), "quantity": 5, "uom": "KGM"}],
                "readPoint": {"id": R1}, "bizLocation": {"id": B1_URN}
            }),
        ),
        with(
            base_event(2, "ObjectEvent", 2),
            json!({
                "action": "OBSERVE", "bizStep": "shipping", "disposition": "in_transit",
                "epcList": [S1_URN],
                "sensorElementList": [{"sensorReport": [
                    {"type": "Temperature", "minValue": 2.0, "maxValue": 9.5, "uom": "CEL"}
                ]}]
            }),
        ),
        with(
            base_event(3, "TransformationEvent", 3),
            json!({
                "bizStep": "commissioning",
                "inputEPCList": [S4],
                "inputQuantityList": [{"epcClass": lot_uri("A"), "quantity": 5, "uom": "KGM"}],
                "outputEPCList": [S2],
                "outputQuantityList": [{"epcClass": lot_uri("B"), "quantity": 4, "uom": "KGM"}]
            }),
        ),
        with(
            base_event(4, "AggregationEvent", 4),
            json!({
                "action": "ADD", "bizStep": "packing", "parentID": SSCC, "childEPCs": [S1_LINK]
            }),
        ),
        with(
            base_event(5, "ObjectEvent", 5),
            json!({
                "action": "OBSERVE", "bizStep": "inspecting", "epcList": [S3],
                "errorDeclaration": {"declarationTime": "2026-03-06T00:00:00Z", "reason": "incorrect_data"}
            }),
        ),
    ];
    // The fillers are distinct events (a minute apart): events that differ
    // only in eventID have the same CBV event hash and are one event.
    for n in 0..RECEIVING {
        list.push(with(
            base_event(100 + n, "ObjectEvent", 10),
            json!({
                "eventTime": format!("2026-03-10T00:{n:02}:00Z"),
                "action": "OBSERVE", "bizStep": "receiving",
                "quantityList": [{"epcClass": lot_uri("C"), "quantity": 1, "uom": "KGM"}]
            }),
        ));
    }
    list
}

async fn get(http: &reqwest::Client, url: &str) -> (StatusCode, Option<String>, Value) {
    let response = http.get(url).send().await.unwrap();
    let status = response.status();
    let link = response
        .headers()
        .get("link")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, link, response.json().await.unwrap_or(Value::Null))
}

fn event_ids(result: &Value) -> Vec<String> {
    result["epcisBody"]["queryResults"]["resultsBody"]["eventList"]
        .as_array()
        .unwrap_or_else(|| panic!("not a query document: {result}"))
        .iter()
        .map(|e| e["eventID"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// One page of `path_and_query`, checked to validate against the schema.
async fn query(
    http: &reqwest::Client,
    base: &str,
    path_and_query: &str,
) -> (Vec<String>, Option<String>) {
    let (status, link, result) = get(http, &format!("{base}{path_and_query}")).await;
    assert_eq!(status, StatusCode::OK, "{path_and_query}: {result}");
    assert_eq!(
        lotline_node::epcis::schema::check(&result),
        vec![],
        "{path_and_query}: output must validate"
    );
    (event_ids(&result), link)
}

/// Every page, following `Link: <...>; rel="next"`.
async fn query_all(
    http: &reqwest::Client,
    base: &str,
    path_and_query: &str,
) -> (Vec<String>, usize) {
    let mut all = Vec::new();
    let mut next = Some(path_and_query.to_owned());
    let mut pages = 0;
    while let Some(url) = next {
        let (ids, link) = query(http, base, &url).await;
        all.extend(ids);
        pages += 1;
        assert!(pages < 100, "paging does not end");
        next = link.map(|l| {
            let start = l.find('<').unwrap() + 1;
            let end = l.find('>').unwrap();
            assert!(l.ends_with("rel=\"next\""), "{l}");
            l[start..end].to_owned()
        });
    }
    (all, pages)
}

fn enc(s: &str) -> String {
    lotline_sdk::encode_segment(s)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_parameters_select_page_and_refuse_bad_input() {
    // Goal: the query interface, parameter by parameter, over real HTTP.
    // Method: capture 25 known events in one document, wait for the job,
    // then run a right and a wrong filter for each parameter.
    let consortium = Consortium::new();
    let node = consortium.start().await;
    let http = support::http_as(&consortium, consortium.capture_org());
    let base = node.url();
    let doc = json!({
        "@context": ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"],
        "type": "EPCISDocument", "schemaVersion": "2.0", "creationDate": "2026-03-01T00:00:00Z",
        "epcisBody": {"eventList": events()}
    });
    let response = http
        .post(format!("{base}/epcis/capture"))
        .json(&doc)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let mut finished = false;
    for _ in 0..400 {
        let (_, _, job) = get(&http, &format!("{base}{location}")).await;
        if job["running"] == false {
            assert_eq!(job["success"], true, "{job}");
            finished = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(finished, "capture job did not finish");

    // (right filter, wrong filter, the event the right one must include).
    let cases: Vec<(String, String, usize)> = vec![
        (
            "eventType=TransformationEvent".into(),
            "eventType=AssociationEvent|AggregationEvent".into(),
            3,
        ),
        (
            "GE_eventTime=2026-03-03T00:00:00Z&LT_eventTime=2026-03-04T00:00:00Z".into(),
            "GE_eventTime=2026-03-04T00:00:00Z".into(),
            3,
        ),
        (
            "LT_eventTime=2026-03-02T00:00:00Z".into(),
            "LT_eventTime=2026-03-01T00:00:00Z".into(),
            1,
        ),
        (
            "EQ_bizStep=shipping".into(),
            "EQ_bizStep=receiving".into(),
            2,
        ),
        (
            "EQ_bizStep=urn:epcglobal:cbv:bizstep:shipping".into(),
            "EQ_bizStep=packing|inspecting".into(),
            2,
        ),
        (
            "EQ_disposition=in_transit".into(),
            "EQ_disposition=active".into(),
            2,
        ),
        (
            format!("EQ_bizLocation={}", enc(B1_LINK)),
            format!("EQ_bizLocation={}", enc(B2)),
            1,
        ),
        (
            format!("EQ_readPoint={}", enc(R1)),
            format!("EQ_readPoint={}", enc(R2)),
            1,
        ),
        (
            format!("MATCH_epc={}", enc(S1_LINK)),
            format!("MATCH_epc={}", enc(S2)),
            2,
        ),
        (
            format!("MATCH_anyEPC={}", enc(S1_URN)),
            format!("MATCH_anyEPC={}", enc(S3)),
            4,
        ),
        (
            format!("MATCH_parentID={}", enc(SSCC)),
            format!("MATCH_parentID={}", enc(OTHER_SSCC)),
            4,
        ),
        (
            format!("MATCH_inputEPC={}", enc(S4)),
            format!("MATCH_outputEPC={}", enc(S4)),
            3,
        ),
        (
            format!("MATCH_outputEPC={}", enc(S2)),
            format!("MATCH_inputEPC={}", enc(S2)),
            3,
        ),
        (
            format!("MATCH_epcClass={}", enc(&lot_uri("A"))),
            format!("MATCH_epcClass={}", enc(&lot_uri("B"))),
            1,
        ),
        (
            format!("MATCH_inputEPCClass={}", enc(&lot_uri("A"))),
            format!("MATCH_outputEPCClass={}", enc(&lot_uri("A"))),
            3,
        ),
        (
            format!("MATCH_anyEPCClass={}", enc(&lot_uri("B"))),
            format!("MATCH_anyEPCClass={}", enc(&lot_uri("C"))),
            3,
        ),
        (
            format!("EQ_eventID={}", enc(&id(5))),
            format!("EQ_eventID={}", enc(&id(6))),
            5,
        ),
        (
            "EXISTS_errorDeclaration".into(),
            "EXISTS_errorDeclaration&EQ_bizStep=shipping".into(),
            5,
        ),
        (
            "EQ_type=Temperature&GT_maxValue_CEL=8".into(),
            "EQ_type=Temperature&GT_maxValue_CEL=10".into(),
            2,
        ),
        ("GE_minValue_CEL=2".into(), "GT_minValue_CEL=2".into(), 2),
        (
            "EQ_bizStep=shipping&eventType=ObjectEvent".into(),
            "EQ_bizStep=shipping&eventType=TransformationEvent".into(),
            2,
        ),
    ];
    for (right, wrong, n) in &cases {
        let target = id(*n);
        let (all, _) = query_all(&http, &base, &format!("/epcis/events?{right}")).await;
        assert!(
            all.contains(&target),
            "{right} should find event {n}: {all:?}"
        );
        let (all, _) = query_all(&http, &base, &format!("/epcis/events?{wrong}")).await;
        assert!(
            !all.contains(&target),
            "{wrong} should not find event {n}: {all:?}"
        );
    }

    // Paging walks every result once, in pages of perPage.
    let (all, pages) =
        query_all(&http, &base, "/epcis/events?EQ_bizStep=receiving&perPage=7").await;
    assert_eq!(all.len(), RECEIVING, "{all:?}");
    assert_eq!(all.iter().collect::<BTreeSet<_>>().len(), RECEIVING);
    assert_eq!(pages, RECEIVING.div_ceil(7));
    let (all, _) = query_all(&http, &base, "/epcis/events?perPage=4").await;
    assert_eq!(all.len(), 5 + RECEIVING);
    assert_eq!(all.iter().collect::<BTreeSet<_>>().len(), 5 + RECEIVING);

    // Browse paths.
    let (ids, _) = query(&http, &base, "/epcis/bizSteps/shipping/events").await;
    assert_eq!(ids, vec![id(2)]);
    let (ids, _) = query(&http, &base, "/epcis/eventTypes/AggregationEvent/events").await;
    assert_eq!(ids, vec![id(4)]);
    let (ids, _) = query(
        &http,
        &base,
        &format!("/epcis/epcs/{}/events", enc(S1_LINK)),
    )
    .await;
    assert_eq!(ids, vec![id(2), id(4)]);
    let (ids, _) = query(
        &http,
        &base,
        &format!(
            "/epcis/epcs/{}/events?eventType=AggregationEvent",
            enc(S1_URN)
        ),
    )
    .await;
    assert_eq!(ids, vec![id(4)]);
    let (status, _, event) = get(&http, &format!("{base}/epcis/events/{}", enc(&id(3)))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(event["type"], "TransformationEvent");

    // Bad parameters: 400 naming the parameter.
    // 400: the request does not fit the API document; 422: it does, but a
    // rule the document cannot state refuses the value.
    let malformed = StatusCode::BAD_REQUEST;
    let unprocessable = StatusCode::UNPROCESSABLE_ENTITY;
    for (query, param, expected) in [
        ("colour=red", "colour", malformed),
        ("eventType=QuantityEvent", "eventType", unprocessable),
        ("GE_eventTime=yesterday", "GE_eventTime", unprocessable),
        ("perPage=0", "perPage", malformed),
        ("perPage=5000", "perPage", malformed),
        ("MATCH_anyEPC=not%20a%20uri", "MATCH_anyEPC", unprocessable),
        (
            "MATCH_epc=urn%3Aepc%3Aid%3Asgtin%3A0614141.107346.20%25",
            "MATCH_epc",
            unprocessable,
        ),
        ("nextPageToken=zz", "nextPageToken", unprocessable),
        ("GT_maxValue_CEL=warm", "GT_maxValue_CEL", malformed),
        (
            "EQ_bizStep=shipping&EQ_bizStep=receiving",
            "EQ_bizStep",
            malformed,
        ),
        ("eventType=", "eventType", malformed),
    ] {
        let (status, _, problem) = get(&http, &format!("{base}/epcis/events?{query}")).await;
        assert_eq!(status, expected, "{query}: {problem}");
        assert_eq!(
            problem["type"], "https://lotline.dev/problems/bad-query",
            "{query}"
        );
        assert_eq!(problem["problems"][0]["field"], param, "{query}: {problem}");
    }
    let (status, _, problem) = get(&http, &format!("{base}/epcis/eventTypes/Nope/events")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(problem["problems"][0]["field"], "eventType");

    the_rest_of_simple_event_query(&http, &base).await;
    node.shutdown().await;
}

const PGLN: &str = "urn:epc:id:pgln:0614141.00001";
const OTHER_PGLN: &str = "urn:epc:id:pgln:0614141.00002";
const PO: &str = "urn:epcglobal:cbv:bt:0614141073467:PO-1";

/// Goal: the SimpleEventQuery parameters beyond the first subset (typed
/// sources, destinations and business transactions, quantities, the error
/// reason, ILMD and extension fields, master-data attributes, ordering and
/// count limits). Method: capture E6, which carries each of those fields,
/// with master data for its bizLocation in the header; then a right and a
/// wrong filter per parameter, and the count limits on the 20 fillers.
async fn the_rest_of_simple_event_query(http: &reqwest::Client, base: &str) {
    let e6 = with(
        base_event(6, "ObjectEvent", 6),
        json!({
            "action": "ADD", "bizStep": "commissioning", "epcList": [S4],
            "quantityList": [{"epcClass": lot_uri("D"), "quantity": 9, "uom": "KGM"}],
            "bizLocation": {"id": B2},
            "sourceList": [{"type": "owning_party", "source": PGLN}],
            "destinationList": [{"type": "owning_party", "destination": OTHER_PGLN}],
            "bizTransactionList": [{"type": "po", "bizTransaction": PO}],
            "ilmd": {"example:lotNumber": "L7", "example:bestBefore": "2027-01-01T00:00:00Z",
                     "example:meta": {"example:grade": "A"}},
            "example:weight": 12.5
        }),
    );
    let doc = json!({
        "@context": ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld",
                     {"example": "https://example.org/ns/"}],
        "type": "EPCISDocument", "schemaVersion": "2.0", "creationDate": "2026-03-06T00:00:00Z",
        "epcisHeader": {"epcisMasterData": {"vocabularyList": [{
            "type": "urn:epcglobal:epcis:vtype:BusinessLocation",
            "vocabularyElementList": [{"id": B2, "attributes": [
                {"id": "urn:epcglobal:cbv:mda#name", "attribute": "Plant Two"}
            ]}]
        }]}},
        "epcisBody": {"eventList": [e6]}
    });
    let response = http
        .post(format!("{base}/epcis/capture"))
        .json(&doc)
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::ACCEPTED,
        "{:?}",
        response.text().await
    );
    let mut found = false;
    for _ in 0..800 {
        let (ids, _) = query(
            http,
            base,
            &format!("/epcis/events?EQ_eventID={}", enc(&id(6))),
        )
        .await;
        if !ids.is_empty() {
            found = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(found, "E6 committed");
    // The master data carrier commits with E6 (one document, one chunk).
    let cases: Vec<(String, String, usize)> = vec![
        (
            format!("EQ_source_owning_party={}", enc(PGLN)),
            format!("EQ_source_possessing_party={}", enc(PGLN)),
            6,
        ),
        (
            format!("EQ_source_owning_party={}", enc(PGLN)),
            format!("EQ_source_owning_party={}", enc(OTHER_PGLN)),
            6,
        ),
        (
            format!(
                "EQ_destination_urn:epcglobal:cbv:sdt:owning_party={}",
                enc(OTHER_PGLN)
            ),
            format!("EQ_destination_owning_party={}", enc(PGLN)),
            6,
        ),
        (
            format!("EQ_bizTransaction_po={}", enc(PO)),
            format!("EQ_bizTransaction_inv={}", enc(PO)),
            6,
        ),
        ("GT_quantity=8".into(), "GT_quantity=9".into(), 6),
        ("EQ_quantity=9".into(), "LT_quantity=9".into(), 6),
        (
            "EQ_errorReason=incorrect_data".into(),
            "EQ_errorReason=did_not_occur".into(),
            5,
        ),
        (
            "EQ_ILMD_example:lotNumber=L7".into(),
            "EQ_ILMD_example:lotNumber=L8".into(),
            6,
        ),
        (
            format!("GE_ILMD_example:bestBefore={}", enc("2026-12-31T00:00:00Z")),
            format!("GE_ILMD_example:bestBefore={}", enc("2027-01-02T00:00:00Z")),
            6,
        ),
        (
            "EXISTS_ILMD_example:lotNumber".into(),
            "EXISTS_ILMD_example:nothing".into(),
            6,
        ),
        (
            "EQ_INNER_ILMD_example:grade=A".into(),
            "EQ_INNER_ILMD_example:grade=B".into(),
            6,
        ),
        (
            "GT_example:weight=12".into(),
            "GT_example:weight=13".into(),
            6,
        ),
        (
            "EXISTS_example:weight".into(),
            "EXISTS_example:height".into(),
            6,
        ),
        (
            "HASATTR_bizLocation=name".into(),
            "HASATTR_bizLocation=address".into(),
            6,
        ),
        (
            format!("EQ_ATTR_bizLocation_name={}", enc("Plant Two")),
            format!("EQ_ATTR_bizLocation_name={}", enc("Plant One")),
            6,
        ),
        (
            "orderBy=recordTime&orderDirection=ASC&EQ_bizStep=commissioning".into(),
            "orderBy=recordTime&EQ_bizStep=shipping".into(),
            6,
        ),
    ];
    for (right, wrong, n) in &cases {
        let target = id(*n);
        let (all, _) = query_all(http, base, &format!("/epcis/events?{right}")).await;
        assert!(
            all.contains(&target),
            "{right} should find event {n}: {all:?}"
        );
        let (all, _) = query_all(http, base, &format!("/epcis/events?{wrong}")).await;
        assert!(
            !all.contains(&target),
            "{wrong} should not find event {n}: {all:?}"
        );
    }

    // Count limits: one answer, no next page.
    let (ids, link) = query(
        http,
        base,
        "/epcis/events?EQ_bizStep=receiving&eventCountLimit=3&perPage=2",
    )
    .await;
    assert_eq!((ids.len(), link), (2, None));
    let (ids, link) = query(
        http,
        base,
        "/epcis/events?EQ_bizStep=receiving&eventCountLimit=3",
    )
    .await;
    assert_eq!((ids.len(), link), (3, None));
    let (ids, link) = query(
        http,
        base,
        "/epcis/events?EQ_bizStep=receiving&maxEventCount=20",
    )
    .await;
    assert_eq!((ids.len(), link), (RECEIVING, None));
    let (status, _, problem) = get(
        http,
        &format!("{base}/epcis/events?EQ_bizStep=receiving&maxEventCount=19"),
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{problem}");
    assert_eq!(
        problem["type"],
        "https://lotline.dev/problems/query-too-large"
    );

    for (query, param, expected) in [
        (
            "orderBy=eventTime",
            "orderBy",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "orderDirection=DESC",
            "orderDirection",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "eventCountLimit=0",
            "eventCountLimit",
            StatusCode::BAD_REQUEST,
        ),
        (
            "eventCountLimit=2&maxEventCount=2",
            "maxEventCount",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "EQ_ATTR_epcClass_name=x",
            "EQ_ATTR_epcClass_name",
            StatusCode::BAD_REQUEST,
        ),
        (
            "GT_ILMD_example:bestBefore=soon",
            "GT_ILMD_example:bestBefore",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        ("EQ_source_=x", "EQ_source_", StatusCode::BAD_REQUEST),
        ("GT_quantity=many", "GT_quantity", StatusCode::BAD_REQUEST),
    ] {
        let (status, _, problem) = get(http, &format!("{base}/epcis/events?{query}")).await;
        assert_eq!(status, expected, "{query}: {problem}");
        assert_eq!(problem["problems"][0]["field"], param, "{query}: {problem}");
    }
}

/// One request the test webhook receiver accepted.
#[derive(Clone, Debug)]
struct Received {
    delivery: String,
    signature: String,
    body: Vec<u8>,
}

type Inbox = std::sync::Arc<std::sync::Mutex<Vec<Received>>>;

/// A real HTTP receiver on `listener`: answers 200 to every request and
/// keeps what it got.
fn receive(listener: tokio::net::TcpListener, inbox: Inbox) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let inbox = inbox.clone();
            tokio::spawn(async move {
                let mut buffer = Vec::new();
                let mut chunk = [0u8; 4096];
                let (head, start) = loop {
                    match socket.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buffer.extend_from_slice(&chunk[..n]),
                    }
                    if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                        break (String::from_utf8_lossy(&buffer[..end]).to_string(), end + 4);
                    }
                };
                let header = |name: &str| {
                    head.lines()
                        .filter_map(|l| l.split_once(':'))
                        .find(|(k, _)| k.trim().eq_ignore_ascii_case(name))
                        .map(|(_, v)| v.trim().to_owned())
                        .unwrap_or_default()
                };
                let length: usize = header("content-length").parse().unwrap_or(0);
                while buffer.len() < start + length {
                    match socket.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buffer.extend_from_slice(&chunk[..n]),
                    }
                }
                inbox.lock().unwrap().push(Received {
                    delivery: header("x-lotline-delivery"),
                    signature: header("gs1-signature"),
                    body: buffer[start..start + length].to_vec(),
                });
                let _ = socket
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                    .await;
                let _ = socket.shutdown().await;
            });
        }
    });
}

/// Captures `events` as the node's capture org and waits for the job.
async fn capture(http: &reqwest::Client, base: &str, events: Vec<Value>) {
    let doc = json!({
        "@context": ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"],
        "type": "EPCISDocument", "schemaVersion": "2.0", "creationDate": "2026-03-01T00:00:00Z",
        "epcisBody": {"eventList": events}
    });
    let response = http
        .post(format!("{base}/epcis/capture"))
        .json(&doc)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    for _ in 0..800 {
        let (_, _, job) = get(http, &format!("{base}{location}")).await;
        if job["running"] == false {
            assert_eq!(job["success"], true, "{job}");
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("capture job did not finish");
}

fn object_event(n: usize, biz_step: &str) -> Value {
    with(
        base_event(n, "ObjectEvent", 5),
        json!({"action": "OBSERVE", "bizStep": biz_step, "epcList": [S1_URN],
            "eventTime": format!("2026-03-05T00:{:02}:00Z", n % 60)}),
    )
}

/// The eventIDs of pushed documents, each checked against the schema.
fn pushed_ids(bodies: &[Vec<u8>]) -> Vec<String> {
    bodies
        .iter()
        .flat_map(|body| {
            let doc: Value = serde_json::from_slice(body).expect("json");
            assert_eq!(lotline_node::epcis::schema::check(&doc), vec![], "{doc}");
            event_ids(&doc)
        })
        .collect()
}

async fn status(http: &reqwest::Client, url: &str) -> Value {
    let (code, _, body) = get(http, url).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    body
}

/// Goal: EPCIS named queries and subscriptions end to end. Method: a real
/// node whose allowlist holds only 127.0.0.1; the distributor saves a
/// query, subscribes a webhook whose port is closed at first, and opens a
/// WebSocket stream (real client); the manufacturer captures two shipping
/// events (the distributor may read them) and one storing event (it may
/// not). The stream and, once a receiver listens on that port, the webhook
/// get exactly the two, signed; the subscription showed `failing` in
/// between; after a restart it is still there, resumes without resending,
/// and pushes a new event; bad requests get their 4xx; deleting the query
/// ends its subscriptions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn named_queries_push_to_webhooks_and_websockets() {
    use futures::StreamExt;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;

    let mut consortium = Consortium::new();
    consortium.config.subscription_allow =
        lotline_node::epcis::subscriptions::destination::Allowlist::parse(&[
            "127.0.0.1/32".to_owned()
        ])
        .unwrap();
    let node = consortium.start().await;
    let base = node.url();
    let maker = support::http_as(&consortium, consortium.capture_org());
    let dist = support::http_as(&consortium, "distributor");
    let anonymous = reqwest::Client::new();

    // Named queries: per org, checked definitions.
    let created = dist
        .post(format!("{base}/epcis/queries"))
        .json(&json!({"name": "objects", "query": {"eventType": ["ObjectEvent"]}}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    assert_eq!(created.headers()["location"], "/epcis/queries/objects");
    let (_, _, listed) = get(&dist, &format!("{base}/epcis/queries")).await;
    assert_eq!(listed[0]["name"], "objects", "{listed}");
    let (code, _, _) = get(&maker, &format!("{base}/epcis/queries/objects")).await;
    assert_eq!(
        code,
        StatusCode::NOT_FOUND,
        "another org's query is not seen"
    );
    for (body, want) in [
        (
            json!({"name": "objects", "query": {}}),
            StatusCode::CONFLICT,
        ),
        (json!({"name": "a/b", "query": {}}), StatusCode::BAD_REQUEST),
        (
            json!({"name": "x", "query": {"EQ_nope": "1"}}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"name": "x", "query": {"EQ_bizStep": [{}]}}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ] {
        let code = dist
            .post(format!("{base}/epcis/queries"))
            .json(&body)
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(code, want, "{body}");
    }
    let (code, _, _) = get(&anonymous, &format!("{base}/epcis/queries")).await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);

    // Subscriptions: only allowed destinations, only streaming.
    let subscriptions = format!("{base}/epcis/queries/objects/subscriptions");
    let token = "distributor-signature-token-0001";
    for (body, want) in [
        (
            json!({"dest": "http://10.9.9.9/hook", "signatureToken": token, "stream": true}),
            StatusCode::FORBIDDEN,
        ),
        (
            json!({"dest": "http://localhost:9/hook", "signatureToken": token, "stream": true}),
            StatusCode::FORBIDDEN,
        ),
        (
            json!({"dest": "http://169.254.169.254/", "signatureToken": token, "stream": true}),
            StatusCode::FORBIDDEN,
        ),
        (
            json!({"dest": "http://127.0.0.1:9/hook", "signatureToken": token, "schedule": {"hour": "1"}}),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"dest": "http://127.0.0.1:9/hook", "signatureToken": token, "stream": false}),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"dest": "http://127.0.0.1:9/hook", "signatureToken": "short", "stream": true}),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"dest": "gopher://127.0.0.1/", "signatureToken": token, "stream": true}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ] {
        let response = dist.post(&subscriptions).json(&body).send().await.unwrap();
        assert_eq!(response.status(), want, "{body}");
    }
    // A port nothing listens on (yet).
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let response = dist
        .post(&subscriptions)
        .json(&json!({"dest": format!("http://127.0.0.1:{port}/hook"), "signatureToken": token, "stream": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let subscription: Value = response.json().await.unwrap();
    let sub_id = subscription["subscriptionID"].as_str().unwrap().to_owned();
    assert!(location.ends_with(&sub_id));
    assert!(
        subscription.get("signatureToken").is_none(),
        "the secret is not echoed"
    );

    // A WebSocket stream of the same query, as the distributor.
    let ws_url = format!(
        "{}/epcis/queries/objects/events?stream=true",
        base.replace("http://", "ws://")
    );
    let mut request = ws_url.as_str().into_client_request().unwrap();
    request.headers_mut().insert(
        "authorization",
        format!("Bearer {}", consortium.tokens["distributor"])
            .parse()
            .unwrap(),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("websocket");
    // Without the upgrade, stream=true is refused.
    let (code, _, _) = get(
        &dist,
        &format!("{base}/epcis/queries/objects/events?stream=true"),
    )
    .await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY);

    capture(
        &maker,
        &base,
        vec![
            object_event(201, "shipping"),
            object_event(202, "storing"),
            object_event(203, "shipping"),
        ],
    )
    .await;
    let expected = vec![id(201), id(203)];

    // The stream: exactly the two readable events, in chain order.
    let mut streamed = Vec::new();
    while streamed.len() < 2 {
        let message = tokio::time::timeout(Duration::from_secs(60), ws.next())
            .await
            .expect("a streamed event within 60 s")
            .expect("stream open")
            .expect("message");
        streamed.push(message.into_data().to_vec());
    }
    assert_eq!(pushed_ids(&streamed), expected);
    let doc: Value = serde_json::from_slice(&streamed[0]).unwrap();
    assert_eq!(doc["epcisBody"]["queryResults"]["queryName"], "objects");

    // The webhook: failing while nothing listens, nothing lost after.
    let mut failing = Value::Null;
    for _ in 0..300 {
        failing = status(&dist, &format!("{base}{location}")).await;
        if failing["lotline:status"] == "failing" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(failing["lotline:status"], "failing", "{failing}");
    assert_eq!(failing["lotline:delivered"], 0);
    let inbox: Inbox = Default::default();
    receive(
        tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("rebind the port"),
        inbox.clone(),
    );
    let mut active = Value::Null;
    for _ in 0..1200 {
        active = status(&dist, &format!("{base}{location}")).await;
        if active["lotline:delivered"] == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(active["lotline:delivered"], 2, "{active}");
    assert_eq!(active["lotline:status"], "active");
    assert!(active["lastNotifiedAt"].is_string());
    let received = inbox.lock().unwrap().clone();
    for r in &received {
        assert!(
            lotline_node::push::sign::verify(token.as_bytes(), &r.signature, &r.body),
            "{r:?}"
        );
        assert!(!lotline_node::push::sign::verify(
            b"another-token-0123456",
            &r.signature,
            &r.body
        ));
        assert!(r.delivery.starts_with(&format!("{sub_id}/")), "{r:?}");
    }
    let bodies: Vec<Vec<u8>> = received.iter().map(|r| r.body.clone()).collect();
    assert_eq!(pushed_ids(&bodies), expected);
    let doc: Value = serde_json::from_slice(&bodies[0]).unwrap();
    assert_eq!(
        doc["epcisBody"]["queryResults"]["subscriptionID"],
        sub_id.as_str()
    );
    drop(ws);
    node.shutdown().await;

    // Restarted: the subscription is still there and resumes after what
    // was acknowledged.
    let node = consortium.start().await;
    let base = node.url();
    let (_, _, listed) = get(
        &dist,
        &format!("{base}/epcis/queries/objects/subscriptions"),
    )
    .await;
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
    capture(&maker, &base, vec![object_event(204, "shipping")]).await;
    for _ in 0..1200 {
        if inbox.lock().unwrap().len() >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let bodies: Vec<Vec<u8>> = inbox
        .lock()
        .unwrap()
        .iter()
        .map(|r| r.body.clone())
        .collect();
    assert_eq!(
        pushed_ids(&bodies),
        vec![id(201), id(203), id(204)],
        "resumed, nothing resent"
    );

    // Deleting the query ends its subscriptions.
    let code = dist
        .delete(format!("{base}/epcis/queries/objects"))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(code, StatusCode::NO_CONTENT);
    let (code, _, _) = get(&dist, &format!("{base}{location}")).await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    node.shutdown().await;
}

/// Goal: two captures of one event that both commit (admitted before
/// either committed) are one event: the first in chain order wins, the
/// later one is left out of queries, its capture job reports
/// duplicate-event. Method: the same event under two eventIDs (the CBV hash
/// ignores the eventID), signed by the client and sent in one batch (the
/// path without the admission repeat check), so both commit in one block:
/// queries by EPC and by the later eventID find only the first. Then
/// rounds of two concurrent capture documents of one event: whichever
/// way each race goes (the second refused at admission with 409, or both
/// committed), exactly one is found and every capture of a repeat that
/// committed is reported duplicate-event by its job.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeat_committed_after_the_first_is_not_a_new_event() {
    let consortium = Consortium::new();
    let node = consortium.start().await;
    let base = node.url();
    let http = support::http_as(&consortium, consortium.capture_org());
    let event = |n: usize, epc: &str, day: u32| {
        with(
            base_event(n, "ObjectEvent", day),
            json!({"action": "OBSERVE", "bizStep": "shipping", "epcList": [epc]}),
        )
    };
    let sign = |n: usize| {
        let event: lotline_core::epcis::Event = serde_json::from_value(event(n, S3, 7)).unwrap();
        consortium.attest(consortium.capture_org(), event)
    };
    let client = support::client_as(&consortium, &node, consortium.capture_org());
    let receipts = client
        .submit_batch(&[sign(303), sign(304)], lotline_core::api::Wait::Committed)
        .await;
    assert!(receipts.is_ok(), "{receipts:?}");
    let (ids, _) = query(
        &http,
        &base,
        &format!("/epcis/events?MATCH_epc={}", enc(S3)),
    )
    .await;
    assert_eq!(ids, vec![id(303)], "first in chain order only");
    let (ids, _) = query(
        &http,
        &base,
        &format!("/epcis/events?EQ_eventID={}", enc(&id(304))),
    )
    .await;
    assert!(ids.is_empty(), "{ids:?}");
    let (ids, _) = query(&http, &base, "/epcis/events?EQ_bizStep=shipping").await;
    assert_eq!(ids, vec![id(303)]);

    for round in 0..5u32 {
        let doc = |n: usize| {
            json!({
                "@context": ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"],
                "type": "EPCISDocument", "schemaVersion": "2.0", "creationDate": "2026-03-07T00:00:00Z",
                "epcisBody": {"eventList": [event(n, S2, 10 + round)]}
            })
        };
        let (a, b) = (400 + 2 * round as usize, 401 + 2 * round as usize);
        let (first, second) = tokio::join!(
            http.post(format!("{base}/epcis/capture"))
                .json(&doc(a))
                .send(),
            http.post(format!("{base}/epcis/capture"))
                .json(&doc(b))
                .send()
        );
        let mut jobs = Vec::new();
        for response in [first.unwrap(), second.unwrap()] {
            match response.status() {
                StatusCode::ACCEPTED => {
                    jobs.push(response.headers()["location"].to_str().unwrap().to_owned())
                }
                StatusCode::CONFLICT => {}
                other => panic!("capture answered {other}"),
            }
        }
        assert!(!jobs.is_empty());
        let mut duplicates = 0;
        for location in &jobs {
            let mut job = Value::Null;
            for _ in 0..800 {
                (_, _, job) = get(&http, &format!("{base}{location}")).await;
                if job["running"] == false {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            assert_eq!(job["running"], false, "{job}");
            if job["errors"].to_string().contains("duplicate-event") {
                assert_eq!(job["success"], false, "{job}");
                assert_eq!(job["lotline:eventsCommitted"], 0, "{job}");
                duplicates += 1;
            } else {
                assert_eq!(job["success"], true, "{job}");
            }
        }
        assert_eq!(
            duplicates,
            jobs.len() - 1,
            "round {round}: one capture wins"
        );
        let day = format!("2026-03-{:02}T00:00:00Z", 10 + round);
        let (ids, _) = query(
            &http,
            &base,
            &format!(
                "/epcis/events?MATCH_epc={}&GE_eventTime={}&LT_eventTime={}",
                enc(S2),
                enc(&day),
                enc(&format!("2026-03-{:02}T00:00:01Z", 10 + round))
            ),
        )
        .await;
        assert_eq!(ids.len(), 1, "round {round}: one event, {ids:?}");
    }
    node.shutdown().await;
}
