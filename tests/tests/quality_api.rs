//! The quality routes over real HTTP on a running node: the planted demo
//! story (`lotline demo`'s) is submitted as its orgs, then a regulator asks
//! for a control chart and a root cause, an anonymous caller sees only
//! what the read policy makes public, and bad input is answered with problem documents naming the reason.

mod support;

use lotline_core::api::Wait;
use lotline_sim::workload::{Roles, Scale, SupplyChainWorkload};
use serde_json::{Value, json};
use support::{Consortium, client_as, http_as};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn charts_and_root_causes_over_http_follow_the_read_policy() {
    let consortium = Consortium::new();
    let node = consortium.start().await;
    let client = client_as(&consortium, &node, "regulator");
    let mut workload = SupplyChainWorkload::planted(42, Scale::demo(), &Roles::demo());
    let items: Vec<_> = workload.by_ref().collect();
    let truth = workload.truth().cloned().expect("truth");
    // Consecutive events of one org go together, as `lotline demo` sends them.
    let mut start = 0;
    while start < items.len() {
        let org = items[start].org.clone();
        let end = items[start..]
            .iter()
            .position(|w| w.org != org)
            .map_or(items.len(), |n| start + n)
            .min(start + 50);
        let envelopes: Vec<_> = items[start..end]
            .iter()
            .map(|w| consortium.attest(&w.org, w.event.clone()))
            .collect();
        client
            .submit_batch(&envelopes, Wait::Committed)
            .await
            .unwrap_or_else(|e| panic!("{org}'s events are committed: {e}"));
        start = end;
    }

    let http = http_as(&consortium, "regulator");
    let url = node.url();
    let chart_url = format!(
        "{url}/v1/spc/{}/{}?baseline=2",
        truth.drift_gtin, truth.drift_characteristic
    );
    let response = http.get(&chart_url).send().await.expect("chart");
    assert_eq!(response.status(), 200);
    let chart: Value = response.json().await.expect("json");
    // Demo scale: three accepted elastomer lots and the rejected one.
    assert_eq!(chart["count"], 4, "{chart}");
    assert!(chart["limits"]["ucl"].as_f64() >= chart["limits"]["lcl"].as_f64());
    assert_eq!(chart["points"].as_array().map(Vec::len), Some(4));

    let response = http
        .post(format!("{url}/v1/root-cause"))
        .json(&json!({"bad": truth.bad}))
        .send()
        .await
        .expect("root cause");
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.expect("json");
    assert_eq!(answer["population"]["badUnits"], truth.bad.len());
    let findings = answer["findings"].as_array().expect("findings");
    let top_lot = findings
        .iter()
        .find(|f| f["kind"] == "lot")
        .expect("a lot finding");
    let mut named: Vec<&str> = vec![top_lot["factor"].as_str().unwrap_or_default()];
    named.extend(
        top_lot["confounded"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str),
    );
    assert!(named.contains(&truth.cause.as_str()), "{top_lot:#}");
    assert!(top_lot["evidence"][0]["path"][0]["attestation"].is_string());

    // The read policy scopes both routes. Inspections are public in the
    // default policy, so an anonymous caller charts the same measurements;
    // but the serialisations (they carry production orders) are not, so it
    // cannot group serials by lot, and it has no unit to analyse.
    let Ok(lotline_core::gs1::Identifier::Item { gtin, .. }) =
        lotline_core::gs1::Identifier::parse(&truth.exposed[0])
    else {
        panic!("not a serial: {}", truth.exposed[0]);
    };
    let unit_chart = format!("{url}/v1/spc/{}/activationForce", gtin.as_str());
    let as_regulator: Value = http
        .get(&unit_chart)
        .send()
        .await
        .expect("chart")
        .json()
        .await
        .expect("json");
    let anonymous = reqwest::Client::new();
    let response = anonymous.get(&unit_chart).send().await.expect("chart");
    assert_eq!(response.status(), 200);
    let as_anonymous: Value = response.json().await.expect("json");
    assert_eq!(as_anonymous["count"], as_regulator["count"]);
    assert!(as_regulator["count"].as_u64() > Some(20), "{as_regulator}");
    assert_eq!(as_regulator["subgroups"].as_array().map(Vec::len), Some(2));
    assert_eq!(as_anonymous["subgroups"].as_array().map(Vec::len), Some(0));
    let response = anonymous
        .post(format!("{url}/v1/root-cause"))
        .json(&json!({"bad": truth.bad}))
        .send()
        .await
        .expect("root cause");
    assert_eq!(response.status(), 422);

    // The cold chain of the case the truck carried, by its product's limits.
    let case = lotline_sdk::encode_segment(&truth.excursion_subjects[0]);
    let response = http
        .get(format!("{url}/v1/cold-chain/{case}"))
        .send()
        .await
        .expect("cold chain");
    assert_eq!(response.status(), 200);
    let cold: Value = response.json().await.expect("json");
    assert_eq!(cold["limits"]["max"], truth.excursion_limit_cel);
    assert!(cold["minutesOutside"].as_f64() >= Some(60.0), "{cold}");

    // Bad input: problem documents with the reason in `type`.
    for (request, status, kind) in [
        (
            http.get(format!("{url}/v1/spc/09506001110011/x")),
            422,
            "invalid-identifier",
        ),
        (
            http.get(format!("{url}/v1/spc/09506001110010/x?baseline=1")),
            400,
            "bad-query",
        ),
        (
            http.get(format!("{url}/v1/spc/09506001110010/x?points=0")),
            400,
            "bad-query",
        ),
        (
            http.get(format!("{url}/v1/spc/09506001110010/noSuchThing")),
            404,
            "not-found",
        ),
        (
            http.post(format!("{url}/v1/root-cause"))
                .json(&json!({"bad": []})),
            400,
            "invalid-request",
        ),
        (
            http.post(format!("{url}/v1/root-cause")).body("{"),
            400,
            "malformed",
        ),
        (
            http.post(format!("{url}/v1/root-cause"))
                .json(&json!({"bad": ["urn:x:y"]})),
            422,
            "no-bad-units",
        ),
    ] {
        let response = request.send().await.expect("send");
        assert_eq!(response.status(), status, "{kind}");
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap_or_default()
            .to_owned();
        assert!(
            content_type.starts_with("application/problem+json"),
            "{content_type}"
        );
        let problem: Value = response.json().await.expect("problem");
        assert!(
            problem["type"].as_str().unwrap_or_default().ends_with(kind),
            "{problem}"
        );
    }
    node.shutdown().await;
}
