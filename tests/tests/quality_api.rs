//! The quality routes over real HTTP on a running node: the planted demo
//! story (`lotline demo`'s) is submitted as its orgs, then a regulator asks
//! for a control chart and a root cause, an anonymous caller sees only
//! what the read policy makes public, and bad input is answered with problem documents naming the reason.
//! A node with `[alerts]` states what fires on the same story as signed
//! alerts, once each, also across restarts and a lost follower state.

use crate::support;

use crate::support::{Consortium, client_as, http_as};
use lotline_core::api::Wait;
use lotline_sim::workload::{Roles, Scale, SupplyChainWorkload, Truth};
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn charts_and_root_causes_over_http_follow_the_read_policy() {
    let consortium = Consortium::new();
    let node = consortium.start().await;
    let truth = load_planted(&consortium, &node, 42).await;

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
    let by_day: Value = http
        .get(format!("{chart_url}&subgroup=day"))
        .send()
        .await
        .expect("chart")
        .json()
        .await
        .expect("json");
    assert_eq!(by_day["count"], 4, "{by_day}");
    assert!(
        by_day["subgroups"].as_array().is_some_and(|g| g
            .iter()
            .all(|g| g["key"].as_str().map(str::len) == Some(10))),
        "subgroups are days: {by_day}"
    );

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

    // The units stores reported damaged on receipt: the planted rough
    // carrier is the most significant finding, and its evidence ends with
    // the unit's case carried by it.
    let response = http
        .post(format!("{url}/v1/root-cause"))
        .json(&json!({"bad": truth.carrier_bad}))
        .send()
        .await
        .expect("root cause");
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.expect("json");
    let top = &answer["findings"][0];
    assert_eq!(top["kind"], "carrier", "{top:#}");
    assert_eq!(
        top["factor"],
        format!("carrier:{}", truth.carrier),
        "{top:#}"
    );
    let path = top["evidence"][0]["path"].as_array().expect("a path");
    let last = path.last().expect("a step");
    assert_eq!(last["kind"], "carriedBy", "{top:#}");
    assert_eq!(last["to"], truth.carrier.as_str(), "{top:#}");

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

    // The product's own master data (its owner's storage range, captured
    // as an EPCIS header vocabulary) tightens the lot's limit: the
    // strictest stated range holds, and the answer names where it came from.
    let lot = cold["limitsFrom"][0].as_str().expect("a lot").to_owned();
    let gtin = lot
        .split("/01/")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .expect("gtin")
        .to_owned();
    let product = format!("https://id.gs1.org/01/{gtin}");
    let document = json!({
        "@context": ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": "2026-03-02T08:00:00Z",
        "epcisHeader": {"epcisMasterData": {"vocabularyList": [
            {"type": "urn:epcglobal:epcis:vtype:EPCClass", "vocabularyElementList": [
                {"id": product, "attributes": [
                    {"id": "https://lotline.dev/epcis/storageTemperatureMin", "attribute": 2},
                    {"id": "https://lotline.dev/epcis/storageTemperatureMax", "attribute": 6.5}
                ]}
            ]}
        ]}},
        "epcisBody": {"eventList": [{
            "type": "ObjectEvent",
            "eventTime": "2026-03-02T08:00:00.000Z",
            "eventTimeZoneOffset": "+08:00",
            "action": "OBSERVE",
            "bizStep": "inspecting",
            "quantityList": [{"epcClass": lot}]
        }]}
    });
    let manufacturer = http_as(&consortium, "manufacturer");
    let response = manufacturer
        .post(format!("{url}/epcis/capture"))
        .json(&document)
        .send()
        .await
        .expect("capture");
    assert_eq!(
        response.status(),
        202,
        "{}",
        response.text().await.unwrap_or_default()
    );
    let mut tightened = Value::Null;
    for _ in 0..400 {
        tightened = http
            .get(format!("{url}/v1/cold-chain/{case}"))
            .send()
            .await
            .expect("cold chain")
            .json()
            .await
            .expect("json");
        if tightened["limits"]["max"] == 6.5 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(tightened["limits"]["max"], 6.5, "{tightened}");
    assert_eq!(tightened["limits"]["min"], 2.0, "{tightened}");
    assert!(
        tightened["limitsFrom"]
            .as_array()
            .is_some_and(|from| from.iter().any(|f| *f == product.as_str())),
        "{tightened}"
    );
    assert!(tightened["minutesOutside"].as_f64() > cold["minutesOutside"].as_f64());

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
            http.get(format!("{url}/v1/spc/09506001110010/x?subgroup=week")),
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

/// Gives the node `[alerts]` signing as the regulator (custodially, with a
/// key file of its client key), starting `from` there.
fn alert_as_regulator(consortium: &mut Consortium, from: lotline_node::config::AlertsFrom) {
    let key = consortium.dir.path().join("regulator-alerts.key");
    lotline_genesis::keys::write_signing_key(&key, &consortium.keys["regulator"])
        .expect("key file");
    consortium.config.alerts = Some(lotline_node::config::AlertsConfig {
        org: "regulator".into(),
        key,
        supplier_nc_rate_max: 0.1,
        supplier_lots_min: 2,
        from,
    });
}

/// Submits the planted story of `seed` (`lotline demo`'s) as its orgs,
/// consecutive events of one org together, and returns its truth.
async fn load_planted(consortium: &Consortium, node: &lotline_node::Node, seed: u64) -> Truth {
    let client = client_as(consortium, node, "regulator");
    let mut workload = SupplyChainWorkload::planted(seed, Scale::demo(), &Roles::demo());
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
    truth
}

/// The alerts of `url` as `http` sees them with `query`, every page.
async fn alerts(http: &reqwest::Client, url: &str, query: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let cursor = after
            .as_ref()
            .map(|a| format!("&after={a}"))
            .unwrap_or_default();
        let response = http
            .get(format!("{url}/v1/alerts?limit=2{query}{cursor}"))
            .send()
            .await
            .expect("alerts");
        assert_eq!(response.status(), 200);
        let page: Value = response.json().await.expect("json");
        out.extend(page["alerts"].as_array().cloned().unwrap_or_default());
        match page["next"].as_str() {
            Some(next) => after = Some(next.to_owned()),
            None => return out,
        }
    }
}

/// Waits (generously: other builds share the cores) until the node's alert
/// follower has judged every committed block.
async fn caught_up(node: &lotline_node::Node) {
    let alerts = node.alerts.as_ref().expect("[alerts] configured");
    for _ in 0..1_200 {
        let head = node.shared.head().height;
        let judged = alerts
            .progress
            .height
            .load(std::sync::atomic::Ordering::Acquire);
        if judged >= head && head > 0 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the alert follower did not catch up in 120 s");
}

/// Goal: rules that fire on committed records become signed alerts on the
/// chain, once per firing. Method: a node whose `[alerts]` signs as the
/// regulator runs the planted story (a truck's slow excursion, a bad
/// stopper lot's failing units); the planted excursion must be listed as
/// an alert stated by the regulator, committed with a receipt; every key
/// is listed once; filters and bad queries are checked; then the node
/// restarts, and restarts again with its follower's state deleted, and
/// the same alerts (no more) are listed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fired_rules_are_stated_once_as_signed_alerts() {
    // Alerts judge what their org may read. A cold-chain excursion needs
    // the distributor's logger records and the manufacturer's lot master
    // data (the limits) together, which in the default read policy only
    // full-read roles hold: the node signs its alerts as the regulator
    // (custodially, as `[capture]` does for the manufacturer).
    let mut consortium = Consortium::new();
    alert_as_regulator(&mut consortium, lotline_node::config::AlertsFrom::Genesis);
    let node = consortium.start().await;
    let truth = load_planted(&consortium, &node, 42).await;
    caught_up(&node).await;
    // Alerts are submitted after the commit they judge: wait for them too.
    caught_up(&node).await;
    let http = http_as(&consortium, "regulator");
    let url = node.url();
    let mut listed = Vec::new();
    for _ in 0..600 {
        listed = alerts(&http, &url, "").await;
        if listed.iter().any(|a| a["rule"] == "excursion") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let excursions: Vec<&Value> = listed.iter().filter(|a| a["rule"] == "excursion").collect();
    assert!(!excursions.is_empty(), "{listed:#?}");
    let subjects: Vec<&str> = excursions
        .iter()
        .filter_map(|a| a["subject"].as_str())
        .collect();
    assert!(
        truth.excursion_subjects.iter().any(|s| subjects
            .iter()
            .any(|t| t.contains(s.as_str()) || s.contains(t))),
        "planted {:?}, alerted {subjects:?}",
        truth.excursion_subjects
    );
    let mut keys: Vec<&str> = listed.iter().filter_map(|a| a["key"].as_str()).collect();
    let count = keys.len();
    keys.sort_unstable();
    keys.dedup();
    assert_eq!(keys.len(), count, "one firing, one alert: {listed:#?}");
    for alert in &listed {
        assert_eq!(alert["org"], "regulator");
        let id = alert["attestation"].as_str().expect("id");
        let receipt = http
            .get(format!("{url}/v1/attestations/{id}/receipt"))
            .send()
            .await
            .expect("receipt");
        assert_eq!(receipt.status(), 200, "alert {id} is committed");
    }

    // Filters, and bad queries named.
    let only = alerts(&http, &url, "&rule=excursion").await;
    assert_eq!(only.len(), excursions.len());
    let by_subject = alerts(
        &http,
        &url,
        &format!(
            "&subject={}",
            lotline_sdk::encode_segment(excursions[0]["subject"].as_str().unwrap_or_default())
        ),
    )
    .await;
    assert!(!by_subject.is_empty());
    assert!(
        by_subject
            .iter()
            .all(|a| a["subject"] == excursions[0]["subject"])
    );
    let none = alerts(&http, &url, "&org=supplier").await;
    assert!(none.is_empty());
    for query in [
        "rule=nope",
        "limit=0",
        "limit=5000",
        "after=x",
        "colour=red",
    ] {
        let response = http
            .get(format!("{url}/v1/alerts?{query}"))
            .send()
            .await
            .expect("alerts");
        assert_eq!(response.status(), 400, "{query}");
        let problem: Value = response.json().await.expect("problem");
        assert!(problem["detail"].is_string(), "{problem}");
    }
    // The alert bizStep is shared with no one in the default read policy:
    // an anonymous caller reads none.
    let anonymous = alerts(&reqwest::Client::new(), &url, "").await;
    assert!(anonymous.is_empty(), "{anonymous:#?}");
    // The dashboard lists them (the latest first) with links to the chart
    // or the genealogy of their subject; a supplier's dashboard lists none.
    let (session, _) = dashboard_login(&consortium, &url, "regulator").await;
    let overview = no_redirects()
        .get(format!("{url}/dashboard"))
        .header("cookie", &session)
        .send()
        .await
        .expect("overview")
        .text()
        .await
        .expect("html");
    let rows = overview.matches("<tr class=\"alert\">").count();
    assert_eq!(rows, listed.len().min(50), "latest alerts on the overview");
    assert!(overview.contains("<a class=\"subject\" href=\"/dashboard/trace?"));
    if listed
        .iter()
        .any(|a| a["rule"] == "runRule" || a["rule"] == "drift")
    {
        assert!(overview.contains("<a class=\"subject\" href=\"/dashboard/spc?"));
    }
    let (session, _) = dashboard_login(&consortium, &url, "supplier").await;
    let overview = no_redirects()
        .get(format!("{url}/dashboard"))
        .header("cookie", &session)
        .send()
        .await
        .expect("overview")
        .text()
        .await
        .expect("html");
    assert!(
        !overview.contains("<tr class=\"alert\">"),
        "the read policy hides alerts"
    );

    // A restart judges nothing twice; neither does a follower whose state
    // was lost (it re-judges the chain from block 1).
    node.shutdown().await;
    for lose_state in [false, true] {
        if lose_state {
            std::fs::remove_dir_all(consortium.config.data_dir.join("alerts"))
                .expect("alerts state");
        }
        let node = consortium.start().await;
        let client = client_as(&consortium, &node, "manufacturer");
        let marker = support::commissioning(&format!("AFTER-RESTART-{lose_state}"));
        client
            .submit(&consortium.attest("manufacturer", marker), Wait::Committed)
            .await
            .expect("a later block");
        caught_up(&node).await;
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        caught_up(&node).await;
        let again = alerts(&http_as(&consortium, "regulator"), &node.url(), "").await;
        assert_eq!(
            again.len(),
            listed.len(),
            "after restart (state lost: {lose_state})"
        );
        node.shutdown().await;
    }
}

/// Goal: a node that begins alerting on a long chain (`[alerts] from =
/// "head"`) states nothing of the history, only what commits after.
/// Method: the planted story (whose stopper lot's units fail
/// `activationForce`: rule 1 fires on its history) is committed with no
/// `[alerts]`; the node restarts with `from = "head"`. An in-control
/// inspection touches the chart, so the follower judges its whole series:
/// no alert may name a trigger of the history. Then a point far outside
/// the limits is stated as an alert naming it; after a restart, too, only
/// points stated after the start are triggers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_started_at_the_head_states_only_what_commits_after() {
    let mut consortium = Consortium::new();
    let node = consortium.start().await;
    load_planted(&consortium, &node, 42).await;
    node.shutdown().await;
    alert_as_regulator(&mut consortium, lotline_node::config::AlertsFrom::Head);
    let (org, template) = last_inspection(42, "activationForce");
    let submit = |node: &lotline_node::Node, event: lotline_core::epcis::Event| {
        let client = client_as(&consortium, node, &org);
        let envelope = consortium.attest(&org, event);
        async move {
            client
                .submit(&envelope, Wait::Committed)
                .await
                .expect("committed");
            envelope.id().to_string()
        }
    };
    let http = http_as(&consortium, "regulator");
    let node = consortium.start().await;
    let normal = submit(&node, inspection(&template, 5.0, 1)).await;
    caught_up(&node).await;
    caught_up(&node).await;
    let listed = alerts(&http, &node.url(), "").await;
    assert!(
        listed.iter().all(|a| a["trigger"] == normal.as_str()),
        "nothing of the history is stated: {listed:#?}"
    );
    let outlier = submit(&node, inspection(&template, 1_000.0, 2)).await;
    let mut listed = Vec::new();
    for _ in 0..600 {
        listed = alerts(&http, &node.url(), "").await;
        if listed.iter().any(|a| a["trigger"] == outlier.as_str()) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        listed.iter().any(|a| a["trigger"] == outlier.as_str()),
        "the point after the start is stated: {listed:#?}"
    );
    assert!(
        listed
            .iter()
            .all(|a| a["trigger"] == outlier.as_str() || a["trigger"] == normal.as_str()),
        "{listed:#?}"
    );
    node.shutdown().await;
    let node = consortium.start().await;
    let third = submit(&node, inspection(&template, 5.0, 3)).await;
    caught_up(&node).await;
    caught_up(&node).await;
    let after_start = [normal, outlier, third];
    let again = alerts(&http, &node.url(), "").await;
    assert!(
        again.len() >= listed.len()
            && again
                .iter()
                .all(|a| after_start.iter().any(|id| a["trigger"] == id.as_str())),
        "a restart keeps the start: {again:#?}"
    );
    node.shutdown().await;
}

/// The planted story's last inspection measuring `characteristic`, and
/// the org that stated it.
fn last_inspection(seed: u64, characteristic: &str) -> (String, lotline_core::epcis::Event) {
    SupplyChainWorkload::planted(seed, Scale::demo(), &Roles::demo())
        .filter(|item| {
            matches!(
                &item.event.quality,
                Some(lotline_core::epcis::QualityFact::Inspection { measurements, .. })
                    if measurements.iter().any(|m| m.name == characteristic)
            )
        })
        .last()
        .map(|item| (item.org, item.event))
        .expect("the story measures it")
}

/// `template` as a new inspection `n` ms after it whose measurements all
/// read `value`, its result following the limits.
fn inspection(
    template: &lotline_core::epcis::Event,
    value: f64,
    n: i64,
) -> lotline_core::epcis::Event {
    use lotline_core::epcis::{InspectionResult, QualityFact};
    let mut event = template.clone();
    if let Some(QualityFact::Inspection {
        measurements,
        result,
        ..
    }) = &mut event.quality
    {
        for measurement in measurements.iter_mut() {
            measurement.value = value;
        }
        *result = if measurements.iter().all(|m| m.within_spec()) {
            InspectionResult::Pass
        } else {
            InspectionResult::Fail
        };
    }
    let at = template.event_time_ms().expect("a time");
    event.event_time = lotline_core::time::format_rfc3339_ms(at + n);
    event.event_id = Some(format!("urn:uuid:00000000-0000-4000-8000-{n:012}"));
    event
}

/// One request a test receiver accepted.
#[derive(Clone, Debug)]
struct Received {
    delivery: String,
    signature: String,
    body: Vec<u8>,
}

/// A real HTTP receiver on loopback that answers 503 to its first
/// `fail_first` requests and 200 after; returns its address, what it
/// accepted and how many requests it saw.
async fn receiver(
    fail_first: usize,
) -> (
    std::net::SocketAddr,
    std::sync::Arc<std::sync::Mutex<Vec<Received>>>,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
) {
    use std::sync::atomic::Ordering;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let accepted = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (accepted2, seen2) = (accepted.clone(), seen.clone());
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let (accepted, seen) = (accepted2.clone(), seen2.clone());
            tokio::spawn(async move {
                let mut buffer = Vec::new();
                let mut chunk = [0u8; 4096];
                let (head, body_start) = loop {
                    let Ok(n) = socket.read(&mut chunk).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    buffer.extend_from_slice(&chunk[..n]);
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
                while buffer.len() < body_start + length {
                    let Ok(n) = socket.read(&mut chunk).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    buffer.extend_from_slice(&chunk[..n]);
                }
                let status = if seen.fetch_add(1, Ordering::SeqCst) < fail_first {
                    "503 Service Unavailable"
                } else {
                    accepted.lock().expect("lock").push(Received {
                        delivery: header("x-lotline-delivery"),
                        signature: header("x-lotline-signature"),
                        body: buffer[body_start..body_start + length].to_vec(),
                    });
                    "200 OK"
                };
                let response =
                    format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
                let _ = socket.write_all(response.as_bytes()).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    (addr, accepted, seen)
}

/// Goal: alerts reach a configured webhook signed, in order, at least once,
/// through failures and restarts. Method: a real local receiver refuses
/// the first three requests (503) and then accepts; the node (alerts as the
/// regulator, one `[[webhooks]]` reading as the regulator) runs the planted
/// story; every listed alert must arrive with a valid HMAC-SHA256
/// signature and a delivery id, in chain order, after retries; after a
/// restart the saved position means nothing is delivered again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_reach_a_webhook_signed_after_failures_and_restarts() {
    let (addr, accepted, seen) = receiver(3).await;
    let mut consortium = Consortium::new();
    alert_as_regulator(&mut consortium, lotline_node::config::AlertsFrom::Genesis);
    let secret = b"0123456789abcdef-shared-secret";
    let secret_path = consortium.dir.path().join("qa.hmac");
    std::fs::write(&secret_path, secret).expect("secret");
    consortium.config.webhooks = vec![lotline_node::config::WebhookConfig {
        id: "qa".into(),
        url: format!("http://{addr}/hook"),
        secret: secret_path,
        reads_as: "regulator".into(),
    }];
    let node = consortium.start().await;
    load_planted(&consortium, &node, 7).await;
    caught_up(&node).await;
    let http = http_as(&consortium, "regulator");
    let mut listed = Vec::new();
    let mut delivered = Vec::new();
    for _ in 0..1_200 {
        listed = alerts(&http, &node.url(), "").await;
        delivered = accepted.lock().expect("lock").clone();
        if !listed.is_empty() && delivered.len() >= listed.len() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(!listed.is_empty());
    assert_eq!(delivered.len(), listed.len(), "every alert delivered once");
    for (received, alert) in delivered.iter().zip(&listed) {
        assert!(
            lotline_node::push::sign::verify(secret, &received.signature, &received.body),
            "{received:?}"
        );
        assert!(!lotline_node::push::sign::verify(
            b"not-the-secret-at-all",
            &received.signature,
            &received.body
        ));
        assert!(received.delivery.starts_with("qa/"), "{received:?}");
        let body: Value = serde_json::from_slice(&received.body).expect("json body");
        assert_eq!(&body, alert, "in chain order, as GET /v1/alerts lists them");
    }
    let progress = &node.webhooks[0].progress;
    assert!(progress.failures.load(std::sync::atomic::Ordering::Relaxed) >= 3);
    assert!(seen.load(std::sync::atomic::Ordering::SeqCst) >= listed.len() + 3);
    node.shutdown().await;

    // Restarted, the endpoint resumes from its saved position: nothing
    // acknowledged is sent again.
    let node = consortium.start().await;
    caught_up(&node).await;
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    assert_eq!(accepted.lock().expect("lock").len(), listed.len());
    assert_eq!(
        node.webhooks[0]
            .progress
            .position
            .load(std::sync::atomic::Ordering::Acquire),
        progress_position(&delivered)
    );
    node.shutdown().await;
}

/// The position of the last delivery (`qa/<position>`).
fn progress_position(delivered: &[Received]) -> u64 {
    delivered
        .last()
        .and_then(|r| r.delivery.strip_prefix("qa/"))
        .and_then(|p| p.parse().ok())
        .unwrap_or(0)
}

/// A plain HTTP client that follows no redirects (the tests read them).
fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// `application/x-www-form-urlencoded` from pairs.
fn form(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", lotline_sdk::encode_segment(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// The `name=value` of cookie `name` among a response's `Set-Cookie`s,
/// with the whole header.
fn set_cookie(response: &reqwest::Response, name: &str) -> Option<(String, String)> {
    response
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(|v| {
            (
                v.split(';').next().unwrap_or_default().to_owned(),
                v.to_owned(),
            )
        })
}

/// The value of the hidden `csrf` input of a page.
fn csrf_of(html: &str) -> String {
    let at = html.find("name=\"csrf\" value=\"").expect("a csrf field") + 19;
    html[at..].split('"').next().expect("csrf value").to_owned()
}

/// Logs in as `org` through the login form; returns the session cookie
/// and the session's CSRF token.
async fn dashboard_login(consortium: &Consortium, url: &str, org: &str) -> (String, String) {
    let http = no_redirects();
    let page = http
        .get(format!("{url}/dashboard/login"))
        .send()
        .await
        .expect("login page");
    let (nonce, _) = set_cookie(&page, "lotline_login").expect("a login cookie");
    let csrf = csrf_of(&page.text().await.expect("html"));
    let response = http
        .post(format!("{url}/dashboard/login"))
        .header("cookie", &nonce)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[("csrf", &csrf), ("token", &consortium.tokens[org])]))
        .send()
        .await
        .expect("login");
    assert_eq!(response.status(), 303, "{org} logs in");
    let (session, _) = set_cookie(&response, "lotline_session").expect("a session cookie");
    let overview = http
        .get(format!("{url}/dashboard"))
        .header("cookie", &session)
        .send()
        .await
        .expect("overview");
    assert_eq!(overview.status(), 200);
    let csrf = csrf_of(&overview.text().await.expect("html"));
    (session, csrf)
}

/// The dashboard over real HTTP: no session sends the browser to the login
/// page; a wrong token and a post without (or with a wrong) CSRF token are
/// refused; the login sets an HttpOnly, SameSite=Strict cookie; the pages
/// show charts, scorecards, genealogy and root causes as the API shows them
/// to the same org (the read policy scopes both); logout ends the session.
/// The regulator's lot report carries the same genealogy picture.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_sessions_are_csrf_safe_and_scoped_by_the_read_policy() {
    let consortium = Consortium::new();
    let node = consortium.start().await;
    let truth = load_planted(&consortium, &node, 42).await;
    let url = node.url();
    let url = url.as_str();
    let http = no_redirects();

    // No session: every dashboard page redirects to the login page.
    for path in ["/dashboard", "/dashboard/trace", "/dashboard/spc"] {
        let response = http.get(format!("{url}{path}")).send().await.expect("page");
        assert_eq!(response.status(), 303, "{path}");
        assert_eq!(response.headers()["location"], "/dashboard/login");
    }
    let response = http
        .get(format!("{url}/dashboard"))
        .header("cookie", "lotline_session=00ff")
        .send()
        .await
        .expect("page");
    assert_eq!(response.status(), 303, "an unknown session is no session");

    // The login form: a wrong token is refused (401), and so is a post
    // without the login cookie's CSRF token or with another one (403).
    let page = http
        .get(format!("{url}/dashboard/login?lang=zh"))
        .send()
        .await
        .expect("login page");
    assert_eq!(page.status(), 200);
    let (nonce, header) = set_cookie(&page, "lotline_login").expect("a login cookie");
    assert!(header.contains("HttpOnly") && header.contains("SameSite=Strict"));
    let csrf = csrf_of(&page.text().await.expect("html"));
    let post = |cookie: String, body: String| {
        let http = http.clone();
        async move {
            http.post(format!("{url}/dashboard/login"))
                .header("cookie", cookie)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body)
                .send()
                .await
                .expect("login")
        }
    };
    let token = consortium.tokens["regulator"].as_str();
    let wrong = post(
        nonce.clone(),
        form(&[("csrf", &csrf), ("token", "c1.deadbeef")]),
    )
    .await;
    assert_eq!(wrong.status(), 401);
    assert!(set_cookie(&wrong, "lotline_session").is_none());
    assert!(wrong.text().await.unwrap().contains("login-error"));
    for body in [
        form(&[("token", token)]),
        form(&[("csrf", &"0".repeat(64)), ("token", token)]),
    ] {
        let refused = post(nonce.clone(), body).await;
        assert_eq!(refused.status(), 403);
        assert!(set_cookie(&refused, "lotline_session").is_none());
    }
    let no_cookie = post(String::new(), form(&[("csrf", &csrf), ("token", token)])).await;
    assert_eq!(
        no_cookie.status(),
        403,
        "the CSRF token is bound to its cookie"
    );
    let good = post(nonce.clone(), form(&[("csrf", &csrf), ("token", token)])).await;
    assert_eq!(good.status(), 303);
    let (session, header) = set_cookie(&good, "lotline_session").expect("a session cookie");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(header.contains(attribute), "{header}");
    }
    assert!(!header.contains("Secure"), "no TLS on this node");

    let get = |path: String, cookie: String| {
        let http = http.clone();
        async move {
            let response = http
                .get(format!("{url}{path}"))
                .header("cookie", cookie)
                .send()
                .await
                .expect("page");
            let status = response.status().as_u16();
            (status, response.text().await.expect("html"))
        }
    };
    let (status, overview) = get("/dashboard?lang=en".into(), session.clone()).await;
    assert_eq!(status, 200);
    let csrf = csrf_of(&overview);
    for section in ["id=\"alerts\"", "id=\"suppliers\"", "id=\"recalls\""] {
        assert!(overview.contains(section), "{section}");
    }
    assert!(overview.contains("class=\"scorecard\""), "scorecards");
    assert!(
        overview.contains("<tr class=\"scorecard\"><td>supplier</td>"),
        "the supplier org is scored"
    );
    assert!(overview.contains("class=\"recall\""), "the planted recall");

    // The control chart of the drifting characteristic, as SVG.
    let (status, chart) = get(
        format!(
            "/dashboard/spc?gtin={}&characteristic={}",
            truth.drift_gtin,
            lotline_sdk::encode_segment(&truth.drift_characteristic)
        ),
        session.clone(),
    )
    .await;
    assert_eq!(
        status,
        200,
        "{}",
        &chart[chart.find("<main>").unwrap_or(0)..]
    );
    assert!(chart.contains("<svg class=\"chart\"") && chart.contains("UCL"));

    // The genealogy of the planted cause: every edge links its attestation.
    let cause = lotline_sdk::encode_segment(&truth.cause);
    let (status, trace) = get(format!("/dashboard/trace?id={cause}"), session.clone()).await;
    assert_eq!(status, 200);
    assert!(trace.contains("<svg class=\"genealogy\""));
    let edges = trace
        .matches("<a class=\"edge\" href=\"/v1/attestations/")
        .count();
    assert!(edges > 0, "linked edges");
    let first = trace.split("<a class=\"edge\" href=\"").nth(1).unwrap();
    let link = first.split('"').next().unwrap().to_owned();
    let (status, _) = get(link.clone(), session.clone()).await;
    assert_eq!(
        status, 200,
        "the session cookie reads the attestation {link}"
    );

    // The root-cause tool: a post without or with a wrong CSRF token is
    // refused; with it, the planted cause is among the findings.
    let bad = truth.bad.join("\n");
    let root_cause = |cookie: String, body: String| {
        let http = http.clone();
        async move {
            let response = http
                .post(format!("{url}/dashboard/root-cause"))
                .header("cookie", cookie)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body)
                .send()
                .await
                .expect("root cause");
            let status = response.status().as_u16();
            (status, response.text().await.expect("html"))
        }
    };
    let (status, _) = root_cause(session.clone(), form(&[("bad", &bad)])).await;
    assert_eq!(status, 403, "no CSRF token");
    let (status, _) = root_cause(
        session.clone(),
        form(&[("csrf", &"0".repeat(64)), ("bad", &bad)]),
    )
    .await;
    assert_eq!(status, 403, "a wrong CSRF token");
    let (status, found) =
        root_cause(session.clone(), form(&[("csrf", &csrf), ("bad", &bad)])).await;
    assert_eq!(status, 200);
    assert!(found.contains("class=\"finding\""));
    assert!(found.contains(&truth.cause), "the planted cause is found");
    assert!(found.contains("class=\"evidence\" href=\"/v1/attestations/"));
    // The units stores reported damaged on receipt: the carrier that
    // delivered them is a finding, named in the page's language, its
    // evidence ending with the shipment that carried them.
    let damaged = truth.carrier_bad.join("\n");
    for (lang, kind, link) in [("en", "Carrier", "carried by"), ("zh", "承运商", "承运")] {
        let (status, page) = root_cause(
            session.clone(),
            form(&[("csrf", &csrf), ("bad", &damaged), ("lang", lang)]),
        )
        .await;
        assert_eq!(status, 200, "{lang}");
        assert!(page.contains(&truth.carrier), "{lang}: {page}");
        assert!(page.contains(&format!("<td>{kind}</td>")), "{lang}: {page}");
        assert!(page.contains(&format!(">{link}</a>")), "{lang}: {page}");
    }
    // The cookie is no credential for the JSON API's posts.
    let api = http
        .post(format!("{url}/v1/root-cause"))
        .header("cookie", &session)
        .json(&json!({"bad": truth.bad}))
        .send()
        .await
        .expect("root cause");
    assert_eq!(api.status(), 422, "answered as anonymous");

    // Scoped by the read policy: each org's dashboard shows what the API
    // shows that org (findings, genealogy size), and the regulator reads
    // more than a distributor does.
    let mut findings = Vec::new();
    for org in ["regulator", "distributor"] {
        let (session, csrf) = dashboard_login(&consortium, url, org).await;
        let (status, page) =
            root_cause(session.clone(), form(&[("csrf", &csrf), ("bad", &bad)])).await;
        let response = http_as(&consortium, org)
            .post(format!("{url}/v1/root-cause"))
            .json(&json!({"bad": truth.bad}))
            .send()
            .await
            .expect("root cause");
        assert_eq!(status, response.status().as_u16(), "{org}");
        let count = page.matches("class=\"finding\"").count();
        if status == 200 {
            let answer: Value = response.json().await.expect("json");
            assert_eq!(
                count,
                answer["findings"].as_array().map_or(0, Vec::len),
                "{org}"
            );
        }
        findings.push(count);
    }
    assert!(findings[0] > findings[1], "{findings:?}");

    // The regulator's lot report draws the same genealogy.
    let report = http_as(&consortium, "regulator")
        .get(format!("{url}/v1/reports/lots/{cause}"))
        .send()
        .await
        .expect("report");
    assert_eq!(report.status(), 200);
    let report = report.text().await.expect("html");
    assert!(report.contains("<svg class=\"genealogy\""));
    assert_eq!(
        report.matches("<a class=\"edge\"").count(),
        edges,
        "the same picture"
    );

    // Logout needs the CSRF token too, then the session is gone.
    let logout = |body: String| {
        let http = http.clone();
        let session = session.clone();
        async move {
            http.post(format!("{url}/dashboard/logout"))
                .header("cookie", session)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body)
                .send()
                .await
                .expect("logout")
        }
    };
    assert_eq!(logout(String::new()).await.status(), 403);
    let out = logout(form(&[("csrf", &csrf)])).await;
    assert_eq!(out.status(), 303);
    let (_, cleared) = set_cookie(&out, "lotline_session").expect("cleared");
    assert!(cleared.contains("Max-Age=0"));
    let (status, _) = get("/dashboard".into(), session.clone()).await;
    assert_eq!(status, 303, "the session ended");
    node.shutdown().await;
}

/// The dashboard in a real browser (headless Chromium over the DevTools
/// protocol): the user types a token into the login form; the browser keeps
/// the session cookie (scripts can not read it) and shows the overview in
/// Chinese, the genealogy of the planted cause, a control chart and the
/// root-cause findings. Screenshots are kept under `target/artifacts/`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_works_in_headless_chromium() {
    let consortium = Consortium::new();
    let node = consortium.start().await;
    let truth = load_planted(&consortium, &node, 42).await;
    let url = node.url();
    let token = consortium.tokens["regulator"].clone();
    tokio::task::spawn_blocking(move || {
        use support::browser::{Browser, artifacts, png_size};
        let mut browser = Browser::start(1280);
        browser.open(&format!("{url}/dashboard/trace"));
        assert_eq!(
            browser.eval("location.pathname"),
            json!("/dashboard/login"),
            "no session: the login page"
        );
        browser.open(&format!("{url}/dashboard/login?lang=zh"));
        browser.submit(&format!(
            "document.getElementById('token').value = {}; document.getElementById('login').submit(); true",
            json!(token)
        ));
        assert_eq!(browser.eval("location.pathname"), json!("/dashboard"));
        assert_eq!(browser.eval("document.cookie"), json!(""), "HttpOnly");
        let text = browser.eval("document.body.innerText");
        let text = text.as_str().unwrap_or_default();
        assert!(text.contains("供应商评分卡") && text.contains("召回状态"), "{text}");
        let shots = artifacts();
        let png = browser.screenshot(&shots.join("dashboard-overview-zh.png"));
        assert_eq!(png_size(&png).0, 1280);

        let cause = lotline_sdk::encode_segment(&truth.cause);
        browser.open(&format!("{url}/dashboard/trace?lang=en&id={cause}"));
        let edges = browser.eval("document.querySelectorAll('svg.genealogy a.edge').length");
        assert!(
            edges.as_u64() > Some(0),
            "{edges} {}",
            browser.eval("location.href + ' ' + document.body.innerHTML.slice(0, 3000)")
        );
        browser.screenshot(&shots.join("dashboard-genealogy-en.png"));

        browser.open(&format!(
            "{url}/dashboard/spc?lang=en&gtin={}&characteristic={}",
            truth.drift_gtin,
            lotline_sdk::encode_segment(&truth.drift_characteristic)
        ));
        let points = browser.eval("document.querySelectorAll('svg.chart circle').length");
        assert!(points.as_u64() > Some(0), "{points}");
        browser.screenshot(&shots.join("dashboard-chart-en.png"));

        browser.open(&format!("{url}/dashboard/root-cause?lang=en"));
        browser.submit(&format!(
            "document.getElementById('bad').value = {}; document.querySelector('#root-cause form').submit(); true",
            json!(truth.bad.join("\n"))
        ));
        let findings = browser.eval("document.querySelectorAll('tr.finding').length");
        assert!(findings.as_u64() > Some(0), "{findings}");
        let text = browser.eval("document.body.innerText");
        assert!(
            text.as_str().unwrap_or_default().contains(&truth.cause),
            "the planted cause is shown"
        );
        browser.screenshot(&shots.join("dashboard-root-cause-en.png"));
    })
    .await
    .expect("browser session");
    node.shutdown().await;
}
