//! EPCIS 2.0 query over HTTP on a real one-node consortium: each query
//! parameter includes the event it should and excludes it when the filter
//! is wrong; paging walks every result exactly once; the browse paths work;
//! every answer validates against the EPCIS JSON Schema; bad parameters are
//! 400s naming the parameter.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use support::{Consortium, lot_uri};

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
    node.shutdown().await;
}
