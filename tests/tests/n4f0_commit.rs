//! n = 4, no faults: attestations submitted to any node are committed on all
//! four with identical blocks, and a receipt from any node verifies offline
//! against the genesis (a certificate of at least q = 3 validators).

use crate::support::n4::{Four, eventually, one_at_a_time};
use crate::support::{GTIN, commissioning, lot_uri};
use lotline_core::api::{Status, Wait};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_node_commits_the_same_blocks() {
    let _serial = one_at_a_time().await;
    let four = Four::new();
    let nodes = four.start_all().await;
    let orgs = ["supplier", "manufacturer", "distributor", "regulator"];
    let mut submitted = Vec::new();
    // Each node receives attestations; only the supplier commissions lots, so
    // its signed events are submitted through every node in turn.
    for (i, node) in nodes.iter().enumerate() {
        let client = lotline_sdk::Client::new(&node.url()).expect("client");
        let envelopes: Vec<_> = (0..5)
            .map(|n| {
                lotline_sdk::AttestationBuilder::new(
                    four.genesis.chain_id(),
                    &four.signers["supplier"],
                )
                .event(commissioning(&format!("N{i}-{n}")))
                .build()
                .expect("envelope")
            })
            .collect();
        let result = client
            .submit_batch(&envelopes, Wait::Committed)
            .await
            .expect("batch");
        assert_eq!(result.accepted, 5, "node {i} ({}) accepted all", orgs[i]);
        for r in &result.results {
            assert_eq!(r.status, Status::Committed, "node {i}");
        }
        submitted.extend(envelopes);
    }

    let target = nodes
        .iter()
        .map(|n| n.shared.head().height)
        .max()
        .unwrap_or(0);
    eventually("all nodes reach the same height", 30, || {
        nodes.iter().all(|n| n.shared.head().height >= target)
    })
    .await;
    let clients: Vec<_> = nodes
        .iter()
        .map(|n| lotline_sdk::Client::new(&n.url()).expect("client"))
        .collect();
    for height in 1..=target {
        let first = clients[0].block(height).await.expect("block");
        for (i, client) in clients.iter().enumerate().skip(1) {
            let block = client.block(height).await.expect("block");
            assert_eq!(
                block.hash, first.hash,
                "height {height}: node {i} differs from node 0"
            );
        }
    }
    // Every attestation is on every node, and every node's receipt verifies
    // offline with a certificate of at least 3 of the 4 validators.
    for envelope in &submitted {
        for (i, client) in clients.iter().enumerate() {
            let receipt = client
                .receipt(&envelope.id())
                .await
                .unwrap_or_else(|e| panic!("node {i}: {e}"));
            let verified = four
                .genesis
                .verify_receipt(&receipt)
                .expect("receipt verifies offline");
            assert!(
                verified.certified_by.len() >= 3,
                "quorum of n - f = 3 signers"
            );
        }
    }
    let listing = clients[3]
        .by_identifier(&lot_uri("N0-1"), None, None)
        .await
        .expect("listing");
    assert_eq!(listing.items.len(), 1, "indexes are built on every node");
    for node in nodes {
        node.shutdown().await;
    }
}

/// Every byte string a node folder holds: each file as it is, and every
/// zstd frame inside it decompressed (the block log and sled store records
/// as zstd frames, so a plain scan alone could miss plaintext).
fn folder_contents(dir: &std::path::Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let bytes = std::fs::read(&path).expect("read file");
            let magic = [0x28, 0xb5, 0x2f, 0xfd];
            for at in 0..bytes.len().saturating_sub(4) {
                if bytes[at..at + 4] == magic {
                    let mut decoded = Vec::new();
                    let mut decoder = match zstd::stream::read::Decoder::new(&bytes[at..]) {
                        Ok(d) => d.single_frame(),
                        Err(_) => continue,
                    };
                    if std::io::Read::read_to_end(&mut decoder, &mut decoded).is_ok()
                        || !decoded.is_empty()
                    {
                        out.push((path.clone(), decoded));
                    }
                }
            }
            out.push((path, bytes));
        }
    }
    out
}

fn holds(
    contents: &[(std::path::PathBuf, Vec<u8>)],
    needle: impl AsRef<[u8]>,
) -> Option<std::path::PathBuf> {
    let needle = needle.as_ref();
    contents
        .iter()
        .find(|(_, bytes)| bytes.windows(needle.len()).any(|w| w == needle))
        .map(|(path, _)| path.clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn private_fields_are_plaintext_only_to_entitled_orgs() {
    // Goal (issue 14): a private field is replicated and certified as
    // ciphertext by all four nodes, is read in plaintext by the issuer and
    // the regulator (API and SDK), is refused to an org the read policy
    // does not entitle, and its marker appears in no node's data folder
    // (block log, sled, audit file; zstd frames decompressed). A public
    // marker of the same record is found by the same scan, so the scan can
    // fail. Then one disclosed field verifies against the receipt offline
    // and an edited one does not.
    let _serial = one_at_a_time().await;
    let four = Four::new();
    let nodes = four.start_all().await;
    let marker = "MARKER-7f3a9c-tensile-secret";
    let mut event = serde_json::to_value(commissioning("PRIV-1")).expect("event");
    event["lotline:quality"]["method"] = marker.into();
    let event: lotline_core::epcis::Event = serde_json::from_value(event).expect("event");
    let envelope =
        lotline_sdk::AttestationBuilder::new(four.genesis.chain_id(), &four.signers["supplier"])
            .event(event)
            .private_fields(
                &four.genesis,
                vec![
                    "/lotline:quality/method".into(),
                    "/lotline:quality/measurements".into(),
                ],
            )
            .build()
            .expect("envelope");
    let id = envelope.id();
    let supplier_node = lotline_sdk::Client::new(&nodes[0].url()).expect("client");
    supplier_node
        .submit(&envelope, Wait::Committed)
        .await
        .expect("committed");
    let target = nodes[0].shared.head().height;
    eventually("all nodes apply the private record", 30, || {
        nodes.iter().all(|n| n.shared.head().height >= target)
    })
    .await;

    // Orgs and roles in node order: supplier, manufacturer, distributor, regulator.
    let as_org = |node: usize, org: &str| {
        lotline_sdk::Client::new(&nodes[node].url())
            .expect("client")
            .with_bearer_token(four.tokens[org].clone())
    };
    for (node, org) in [(0, "supplier"), (3, "regulator")] {
        let fields = as_org(node, org)
            .private_fields(&id)
            .await
            .unwrap_or_else(|e| panic!("{org} on its node: {e}"));
        assert_eq!(fields[0].value, serde_json::json!(marker), "{org}");
        let receipt = as_org(node, org).receipt(&id).await.expect("receipt");
        four.genesis
            .verify_disclosure(&receipt, &fields[0])
            .expect("disclosure verifies");
        let mut edited = fields[0].clone();
        edited.value = serde_json::json!("MARKER-edited");
        assert!(four.genesis.verify_disclosure(&receipt, &edited).is_err());
    }
    // EPCIS capture over HTTP marks members private with `lotline:private`
    // (JSON pointers), as JSON and as XML: the node seals them exactly as
    // the SDK does, and the same orgs read them.
    let http = reqwest::Client::new();
    let base = nodes[0].url();
    let json_marker = "MARKER-c4d1-captured-json";
    let mut captured = serde_json::to_value(commissioning("PRIV-CAP-J")).expect("event");
    captured["@context"] = serde_json::json!([
        "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld",
        {"lotline": "https://lotline.dev/epcis/"}
    ]);
    captured["lotline:quality"]["method"] = json_marker.into();
    captured["lotline:private"] = serde_json::json!(["/lotline:quality/method"]);
    let response = http
        .post(format!("{base}/epcis/events"))
        .bearer_auth(&four.tokens["supplier"])
        .json(&captured)
        .send()
        .await
        .expect("capture JSON");
    assert_eq!(response.status().as_u16(), 201);
    let body: serde_json::Value = response.json().await.expect("captured event");
    assert!(body.get("lotline:private").is_none(), "{body}");
    let json_id: lotline_core::AttestationId = body["lotline:attestation"]["id"]
        .as_str()
        .expect("attestation id")
        .parse()
        .expect("id");
    let xml_marker = "MARKER-9e07-captured-xml";
    let xml = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<epcis:EPCISDocument xmlns:epcis="urn:epcglobal:epcis:xsd:2" xmlns:lotline="https://lotline.dev/epcis/"
    xmlns:example="http://ns.example.com/epcis" creationDate="2026-03-02T08:00:00Z" schemaVersion="2.0">
  <EPCISBody><EventList><ObjectEvent>
    <eventTime>2026-03-02T09:00:00.000Z</eventTime><eventTimeZoneOffset>+08:00</eventTimeZoneOffset>
    <action>ADD</action>
    <bizStep>urn:epcglobal:cbv:bizstep:commissioning</bizStep>
    <disposition>urn:epcglobal:cbv:disp:active</disposition>
    <readPoint><id>https://id.gs1.org/414/9506000134352</id></readPoint>
    <quantityList><quantityElement><epcClass>https://id.gs1.org/01/{GTIN}/10/PRIV-CAP-X</epcClass><quantity>500</quantity><uom>KGM</uom></quantityElement></quantityList>
    <example:recipe>{xml_marker}</example:recipe>
    <lotline:private>/example:recipe</lotline:private>
  </ObjectEvent></EventList></EPCISBody>
</epcis:EPCISDocument>"#
    );
    let response = http
        .post(format!("{base}/epcis/capture"))
        .bearer_auth(&four.tokens["supplier"])
        .header("content-type", "application/xml")
        .body(xml)
        .send()
        .await
        .expect("capture XML");
    assert_eq!(response.status().as_u16(), 202);
    let location = response.headers()["location"]
        .to_str()
        .expect("location")
        .to_owned();
    let mut job = serde_json::Value::Null;
    for _ in 0..600 {
        job = http
            .get(format!("{base}{location}"))
            .bearer_auth(&four.tokens["supplier"])
            .send()
            .await
            .expect("job")
            .json()
            .await
            .expect("job JSON");
        if job["running"] == false {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(job["success"], true, "{job}");
    let xml_id: lotline_core::AttestationId = job["lotline:events"][0]["attestation"]
        .as_str()
        .expect("attestation id")
        .parse()
        .expect("id");
    for captured_id in [json_id, xml_id] {
        let mut tries = 0;
        while as_org(0, "supplier").receipt(&captured_id).await.is_err() {
            tries += 1;
            assert!(tries < 600, "captured {captured_id} never committed");
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }
    let target = nodes[0].shared.head().height;
    eventually("all nodes reach the captured records' height", 30, || {
        nodes.iter().all(|n| n.shared.head().height >= target)
    })
    .await;
    for (captured_id, path, marker) in [
        (json_id, "/lotline:quality/method", json_marker),
        (xml_id, "/example:recipe", xml_marker),
    ] {
        for (node, org) in [(0, "supplier"), (3, "regulator")] {
            let fields = as_org(node, org)
                .private_fields(&captured_id)
                .await
                .unwrap_or_else(|e| panic!("{org} on its node, captured {path}: {e}"));
            assert_eq!(fields.len(), 1, "{org}: {fields:?}");
            assert_eq!(fields[0].path, path);
            assert_eq!(fields[0].value, serde_json::json!(marker), "{org}");
        }
        // The public record, served by a node whose org is no recipient.
        let public = as_org(1, "supplier")
            .attestation(&captured_id)
            .await
            .expect("public part");
        let text = serde_json::to_string(&public).expect("json");
        assert!(!text.contains(marker), "the public record holds {marker}");
        assert!(
            !text.contains("lotline:private"),
            "the instruction is kept: {text}"
        );
    }

    // The manufacturer may see the public part, not the private fields.
    match as_org(1, "manufacturer").private_fields(&id).await {
        Err(lotline_sdk::SdkError::Rejected {
            status: 403,
            problem,
        }) => {
            assert_eq!(problem.slug(), "private-not-entitled");
        }
        other => panic!("manufacturer: expected 403, got {other:?}"),
    }
    // The regulator asking a node whose org is not a recipient: that node
    // can not open it.
    match as_org(2, "regulator").private_fields(&id).await {
        Err(lotline_sdk::SdkError::Rejected {
            status: 409,
            problem,
        }) => {
            assert_eq!(problem.slug(), "private-not-on-this-node");
        }
        other => panic!("regulator via distributor node: expected 409, got {other:?}"),
    }

    for node in nodes {
        node.shutdown().await;
    }
    for (i, config) in four.configs.iter().enumerate() {
        let contents = folder_contents(&config.data_dir);
        for marker in [marker, json_marker, xml_marker] {
            assert_eq!(
                holds(&contents, marker),
                None,
                "node {i}: the private marker {marker} is on disk in plaintext"
            );
        }
        assert!(
            holds(&contents, "PRIV-CAP-X").is_some(),
            "node {i}: the scan finds the XML record's public lot"
        );
        assert!(
            holds(&contents, "PRIV-1").is_some(),
            "node {i}: the scan finds the record's public lot (the scan can fail)"
        );
    }
}

/// The supplier's 36 commissioning inspections of lots `{prefix}-{i}`, each
/// with its "tensile strength" measurements sealed: 30 in control around
/// 45, then six at `shifted`, far beyond 3 sigma (a run rule fires).
fn sealed_inspections(four: &Four, prefix: &str, shifted: f64) -> Vec<lotline_core::Envelope> {
    (0..36)
        .map(|i| {
            let mut event =
                serde_json::to_value(commissioning(&format!("{prefix}-{i}"))).expect("e");
            let value = if i < 30 {
                45.0 + [-0.2, -0.1, 0.0, 0.1, 0.2][i % 5]
            } else {
                shifted
            };
            event["lotline:quality"]["measurements"][0]["value"] = value.into();
            let event: lotline_core::epcis::Event = serde_json::from_value(event).expect("e");
            lotline_sdk::AttestationBuilder::new(four.genesis.chain_id(), &four.signers["supplier"])
                .event(event)
                .private_fields(&four.genesis, vec!["/lotline:quality/measurements".into()])
                .build()
                .expect("envelope")
        })
        .collect()
}

/// Submits `envelopes` to node 0 in batches of 12 until committed, and
/// waits for every node to apply them; returns node 0's client.
async fn commit_everywhere(
    nodes: &[lotline_node::Node],
    envelopes: &[lotline_core::Envelope],
) -> lotline_sdk::Client {
    let client = lotline_sdk::Client::new(&nodes[0].url()).expect("client");
    for chunk in envelopes.chunks(12) {
        client
            .submit_batch(chunk, Wait::Committed)
            .await
            .expect("committed");
    }
    let target = nodes[0].shared.head().height;
    eventually("all nodes apply the sealed records", 30, || {
        nodes.iter().all(|n| n.shared.head().height >= target)
    })
    .await;
    client
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sealed_measurements_chart_and_alert_only_for_entitled_orgs() {
    // Goal (issue 14): a supplier seals its measurements; the nodes of the
    // recipient orgs (supplier, regulator) index them as private points, the
    // entitled callers see the chart and the alert it fires, an org the
    // read rule does not entitle sees neither the values nor an alert, and
    // the nodes that cannot open the records hold no measured value.
    // Method: 36 sealed commissioning inspections of one GTIN's "tensile
    // strength", the last six shifted far beyond 3 sigma (a run rule); the
    // supplier's and the distributor's nodes state alerts as their orgs.
    let _serial = one_at_a_time().await;
    let mut four = Four::new();
    for node in [0, 2] {
        let capture = four.configs[node].capture.clone().expect("[capture]");
        four.configs[node].alerts = Some(lotline_node::config::AlertsConfig {
            org: capture.org,
            key: capture.key,
            supplier_nc_rate_max: 1.0,
            supplier_lots_min: 1_000,
            from: lotline_node::config::AlertsFrom::Genesis,
        });
    }
    let nodes = four.start_all().await;
    let shifted = 48.371_f64;
    let envelopes = sealed_inspections(&four, "SEAL", shifted);
    commit_everywhere(&nodes, &envelopes).await;

    let http = reqwest::Client::new();
    let token = |org: &str| format!("Bearer {}", four.tokens[org]);
    let chart = |node: usize, org: Option<&str>| {
        let mut request = http.get(format!(
            "{}/v1/spc/{GTIN}/tensile%20strength?points=100",
            nodes[node].url()
        ));
        if let Some(org) = org {
            request = request.header("authorization", token(org));
        }
        request.send()
    };
    // Entitled callers on their own orgs' nodes: every point, marked private.
    for (node, org) in [(0, "supplier"), (3, "regulator"), (0, "regulator")] {
        let response = chart(node, Some(org)).await.expect("chart");
        assert_eq!(response.status(), 200, "{org} on node {node}");
        let body: serde_json::Value = response.json().await.expect("json");
        assert_eq!(body["count"], 36, "{org} on node {node}");
        let points = body["points"].as_array().expect("points");
        assert!(points.iter().all(|p| p["private"] == true), "{body}");
        assert_eq!(points[35]["value"], shifted, "{org} on node {node}");
        assert!(!body["signals"].as_array().expect("signals").is_empty());
    }
    // The distributor may read the (public) records but not their private
    // part; anonymous callers neither; and a node whose org is no recipient
    // indexed nothing from the sealed part, whoever asks.
    for (node, org) in [
        (0, Some("distributor")),
        (0, None),
        (2, Some("distributor")),
        (2, Some("regulator")),
        (1, Some("manufacturer")),
    ] {
        let response = chart(node, org).await.expect("chart");
        assert_eq!(response.status(), 404, "{org:?} on node {node}");
        let text = response.text().await.expect("body");
        assert!(!text.contains("48.371"), "{text}");
    }

    // The supplier's node judges the sealed series and states the alert,
    // which names the lot and the rule, never a value.
    let alerts = |node: usize, org: &str, query: &str| {
        let request = http
            .get(format!("{}/v1/alerts?limit=100{query}", nodes[node].url()))
            .header("authorization", token(org));
        async move {
            let response = request.send().await.expect("alerts");
            assert_eq!(response.status(), 200);
            let body: serde_json::Value = response.json().await.expect("json");
            body["alerts"].as_array().cloned().unwrap_or_default()
        }
    };
    let mut listed = Vec::new();
    for _ in 0..600 {
        listed = alerts(0, "supplier", "&rule=runRule").await;
        if !listed.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        !listed.is_empty(),
        "the supplier's node states a run-rule alert"
    );
    for alert in &listed {
        assert_eq!(alert["org"], "supplier");
        assert!(
            alert["subject"]
                .as_str()
                .expect("subject")
                .contains("tensile strength")
        );
        assert!(!alert.to_string().contains("48.37"), "{alert}");
    }
    // The distributor's node judged every block and stated nothing about
    // the series it cannot open; the distributor reads no alert of it.
    let judged = nodes[0].shared.head().height;
    let distributor_alerts = nodes[2].alerts.clone().expect("alerter");
    eventually("the distributor's node judges every block", 60, || {
        distributor_alerts
            .progress
            .height
            .load(std::sync::atomic::Ordering::Relaxed)
            >= judged
    })
    .await;
    assert!(alerts(3, "regulator", "&org=distributor").await.is_empty());
    assert!(alerts(0, "distributor", "").await.is_empty());

    for node in nodes {
        node.shutdown().await;
    }
    // The measured value is on the disks of the recipients' nodes only
    // (postcard keeps an f64 as its 8 little-endian bytes, which is what
    // the scan finds on the supplier's node: the scan can fail).
    let bytes = shifted.to_le_bytes();
    for (i, config) in four.configs.iter().enumerate() {
        let contents = folder_contents(&config.data_dir);
        let found = holds(&contents, bytes).or_else(|| holds(&contents, "48.371"));
        match i {
            0 | 3 => assert!(found.is_some(), "node {i}: the recipient indexes the value"),
            _ => assert_eq!(found, None, "node {i}: a sealed value on disk"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_shredded_period_is_unreadable_everywhere_and_receipts_still_verify() {
    // Goal (issue 14, crypto-shredding): on a consortium with 3-second key
    // periods and one period of retention, a private record is readable by
    // the issuer and the regulator until the committed chain passes its
    // key period; then every node deletes its org's key of that period
    // (and records it in its audit trail), the record's private fields
    // answer 410 on every recipient node and open with no key left on
    // disk, while the receipt, fetched again afterwards, and a disclosure
    // handed out before still verify offline. Method: public attestations
    // are committed once a second until the issuer's node answers 410.
    let _serial = one_at_a_time().await;
    let four = Four::new().with_retention(3, 60);
    let nodes = four.start_all().await;
    let marker = "MARKER-5b1e-shredded-secret";
    let mut event = serde_json::to_value(commissioning("SHRED-1")).expect("event");
    event["lotline:quality"]["method"] = marker.into();
    let event: lotline_core::epcis::Event = serde_json::from_value(event).expect("event");
    let envelope =
        lotline_sdk::AttestationBuilder::new(four.genesis.chain_id(), &four.signers["supplier"])
            .event(event)
            .private_fields(&four.genesis, vec!["/lotline:quality/method".into()])
            .build()
            .expect("envelope");
    let id = envelope.id();
    let statement = lotline_core::Statement::from_payload(&envelope.payload).expect("statement");
    let period = statement
        .private
        .as_ref()
        .and_then(|p| p.key_period)
        .expect("a key period");
    let as_org = |node: usize, org: &str| {
        lotline_sdk::Client::new(&nodes[node].url())
            .expect("client")
            .with_bearer_token(four.tokens[org].clone())
    };
    as_org(0, "supplier")
        .submit(&envelope, Wait::Committed)
        .await
        .expect("committed");
    let fields = as_org(0, "supplier")
        .private_fields(&id)
        .await
        .expect("readable before its period ends");
    assert_eq!(fields[0].value, serde_json::json!(marker));
    let disclosure = fields[0].clone();

    // Move the chain on until the issuer's node has shredded the period.
    let mut lot = 0;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(90);
    loop {
        match as_org(0, "supplier").private_fields(&id).await {
            Ok(_) => {}
            Err(lotline_sdk::SdkError::Rejected {
                status: 410,
                problem,
            }) => {
                assert_eq!(problem.slug(), "private-shredded");
                break;
            }
            Err(e) => panic!("issuer before shredding: {e}"),
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "period {period} never shredded"
        );
        lot += 1;
        let tick = lotline_sdk::AttestationBuilder::new(
            four.genesis.chain_id(),
            &four.signers["supplier"],
        )
        .event(commissioning(&format!("TICK-{lot}")))
        .build()
        .expect("tick");
        as_org(0, "supplier")
            .submit(&tick, Wait::Committed)
            .await
            .expect("tick committed");
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
    let target = nodes[0].shared.head().height;
    eventually("all nodes apply the shredding block", 30, || {
        nodes.iter().all(|n| n.shared.head().height >= target)
    })
    .await;
    // Every recipient node answers 410; the others never held the key.
    for (node, org) in [(0, "supplier"), (3, "regulator")] {
        let mut answer = None;
        for _ in 0..100 {
            match as_org(node, org).private_fields(&id).await {
                Err(lotline_sdk::SdkError::Rejected { status: 410, .. }) => {
                    answer = Some(410);
                    break;
                }
                other => {
                    answer = Some(match other {
                        Ok(_) => 200,
                        Err(lotline_sdk::SdkError::Rejected { status, .. }) => status,
                        Err(_) => 0,
                    });
                }
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert_eq!(answer, Some(410), "{org} on node {node}");
    }
    for (node, org) in [(1, "regulator"), (2, "regulator")] {
        match as_org(node, org).private_fields(&id).await {
            Err(lotline_sdk::SdkError::Rejected { status: 409, .. }) => {}
            other => panic!("node {node}: expected 409, got {other:?}"),
        }
    }
    // No node keeps a key of the period; each recorded the act; the
    // long-term key does not open a period-keyed section.
    for config in &four.configs {
        let private = config.private.as_ref().expect("[private]");
        let dir = private.period_keys.as_ref().expect("period keys");
        eventually("the period key is deleted", 30, || {
            !dir.join(format!("{period}.key")).exists()
        })
        .await;
        assert!(
            dir.join(format!("{}.key", period + 5)).exists(),
            "a later period's key must stay"
        );
        let long_term = lotline_genesis::keys::read_encryption_key(&private.key).expect("key");
        assert!(lotline_sdk::open_private(&envelope, &private.org, &long_term).is_err());
    }
    let receipt = as_org(1, "regulator").receipt(&id).await.expect("receipt");
    four.genesis
        .verify_receipt(&receipt)
        .expect("receipt verifies");
    four.genesis
        .verify_disclosure(&receipt, &disclosure)
        .expect("an earlier disclosure still verifies");
    for node in nodes {
        node.shutdown().await;
    }
    for (i, config) in four.configs.iter().enumerate() {
        let audit = folder_contents(&config.data_dir.join("audit"));
        assert!(
            holds(&audit, format!("shred key period {period} ")).is_some(),
            "node {i}: the shredding is not in the audit trail"
        );
        let contents = folder_contents(&config.data_dir);
        assert_eq!(holds(&contents, marker), None, "node {i}: marker on disk");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_shredded_period_takes_its_measurements_off_charts_and_disks() {
    // Goal (issue 14, charts under retention): on a consortium with
    // 20-second key periods and one period of retention, a supplier's
    // sealed measurements are charted on the recipients' nodes (supplier,
    // regulator) and the supplier's node states the run-rule alert they
    // fire; once the period is shredded the charts no longer hold them,
    // no data folder holds the measured value (raw or zstd-decompressed,
    // as text or as the 8 bytes of the f64), the alert stays on chain
    // without a value, and a receipt still verifies. Method: as the
    // sealed-measurements test (36 inspections, the last six far beyond
    // 3 sigma), sealed in one key period; then public shipments once a
    // second until the supplier's chart is gone.
    let _serial = one_at_a_time().await;
    let mut four = Four::new().with_retention(20, 6);
    let capture = four.configs[0].capture.clone().expect("[capture]");
    four.configs[0].alerts = Some(lotline_node::config::AlertsConfig {
        org: capture.org,
        key: capture.key,
        supplier_nc_rate_max: 1.0,
        supplier_lots_min: 1_000,
        from: lotline_node::config::AlertsFrom::Genesis,
    });
    let nodes = four.start_all().await;
    // Seal at the start of a key period, so the charts and the alert are
    // checked at least 20 s before the period can expire.
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as u64;
    if now_ms % 20_000 > 5_000 {
        tokio::time::sleep(std::time::Duration::from_millis(20_000 - now_ms % 20_000)).await;
    }
    let shifted = 48.371_f64;
    let envelopes = sealed_inspections(&four, "KEPT", shifted);
    let period = envelopes
        .iter()
        .map(|e| {
            lotline_core::Statement::from_payload(&e.payload)
                .expect("statement")
                .private
                .and_then(|p| p.key_period)
                .expect("a key period")
        })
        .max()
        .expect("36 records");
    let client = commit_everywhere(&nodes, &envelopes).await;

    let http = reqwest::Client::new();
    let token = |org: &str| format!("Bearer {}", four.tokens[org]);
    let chart = |node: usize, org: &str| {
        http.get(format!(
            "{}/v1/spc/{GTIN}/tensile%20strength?points=100",
            nodes[node].url()
        ))
        .header("authorization", token(org))
        .send()
    };
    for (node, org) in [(0, "supplier"), (3, "regulator")] {
        let response = chart(node, org).await.expect("chart");
        assert_eq!(response.status(), 200, "{org} on node {node}");
        let body: serde_json::Value = response.json().await.expect("json");
        assert_eq!(body["count"], 36, "{org} on node {node}");
        assert_eq!(body["points"][35]["value"], shifted, "{org} on node {node}");
        assert_eq!(body["points"][35]["private"], true);
    }
    let alerts = || {
        let request = http
            .get(format!(
                "{}/v1/alerts?limit=100&rule=runRule",
                nodes[0].url()
            ))
            .header("authorization", token("supplier"));
        async move {
            let response = request.send().await.expect("alerts");
            assert_eq!(response.status(), 200);
            let body: serde_json::Value = response.json().await.expect("json");
            body["alerts"].as_array().cloned().unwrap_or_default()
        }
    };
    let mut raised = Vec::new();
    for _ in 0..150 {
        raised = alerts().await;
        if !raised.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        !raised.is_empty(),
        "the supplier's node states a run-rule alert"
    );
    let receipt = client.receipt(&envelopes[35].id()).await.expect("receipt");

    // Move the chain on until the supplier's node has shredded the period
    // and its chart has no point left.
    let as_supplier = client
        .clone()
        .with_bearer_token(four.tokens["supplier"].clone());
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(90);
    let mut lot = 0;
    while chart(0, "supplier").await.expect("chart").status() != 404 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "period {period} never left the chart"
        );
        lot += 1;
        let tick = lotline_sdk::AttestationBuilder::new(
            four.genesis.chain_id(),
            &four.signers["supplier"],
        )
        .event(shipping(&format!("TICK-{lot}")))
        .build()
        .expect("tick");
        as_supplier
            .submit(&tick, Wait::Committed)
            .await
            .expect("tick committed");
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
    eventually("the regulator's node forgets the period", 30, || {
        !four.configs[3]
            .private
            .as_ref()
            .and_then(|p| p.period_keys.as_ref())
            .expect("period keys")
            .join(format!("{period}.key"))
            .exists()
    })
    .await;
    let mut status = 0;
    for _ in 0..100 {
        status = chart(3, "regulator")
            .await
            .expect("chart")
            .status()
            .as_u16();
        if status == 404 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(status, 404, "the regulator's chart after shredding");
    // The alert is the supplier's signed record: it stays, naming the rule,
    // the characteristic and the lot, never the value.
    // (More run rules may have fired on the six shifted points since the
    // first was listed: each alert listed then is still listed.)
    let after = alerts().await;
    assert!(raised.iter().all(|a| after.contains(a)), "{after:?}");
    assert!(!after.iter().any(|a| a.to_string().contains("48.37")));
    four.genesis
        .verify_receipt(&receipt)
        .expect("the receipt still verifies");
    for node in nodes {
        node.shutdown().await;
    }
    let bytes = shifted.to_le_bytes();
    for (i, config) in four.configs.iter().enumerate() {
        let contents = folder_contents(&config.data_dir);
        assert_eq!(
            holds(&contents, bytes).or_else(|| holds(&contents, "48.371")),
            None,
            "node {i}: a shredded measurement on disk"
        );
    }
}

/// The monitoring folder at the workspace root (alerting rules, their
/// promtool unit tests, the Grafana dashboard).
fn monitoring() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("monitoring")
}

/// `promtool` from `$LOTLINE_PROMTOOL` or the PATH (Debian package
/// `prometheus`; `.ci/run` installs it). Missing is a failure, not a skip:
/// rules nobody checked are not known to load.
fn promtool(args: &[&std::ffi::OsStr]) -> String {
    let program = std::env::var_os("LOTLINE_PROMTOOL").unwrap_or_else(|| "promtool".into());
    let output = std::process::Command::new(&program)
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "run {program:?} ({e}): install Debian package `prometheus` or set LOTLINE_PROMTOOL"
            )
        });
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "promtool {args:?}:\n{text}");
    text
}

/// Every `lotline_...` metric name in `text`, without the sample suffixes
/// a histogram's series add (`_bucket`, `_sum`, `_count`).
fn metric_names(text: &str) -> std::collections::BTreeSet<String> {
    let bytes = text.as_bytes();
    let mut names = std::collections::BTreeSet::new();
    let mut i = 0;
    while let Some(at) = text[i..].find("lotline_") {
        let start = i + at;
        let before_ok =
            start == 0 || !(bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_');
        let mut end = start;
        while end < bytes.len() && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_') {
            end += 1;
        }
        // "lotline_" alone is prose ("every lotline_ metric"), not a name.
        if before_ok && end > start + "lotline_".len() {
            names.insert(text[start..end].to_owned());
        }
        i = end;
    }
    names
}

/// The sample names a `/metrics` body serves (histograms as their
/// `_bucket`, `_sum` and `_count` series).
fn served(body: &str) -> std::collections::BTreeSet<String> {
    body.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(str::to_owned)
        .collect()
}

/// One sample's value: `name` exactly, without labels.
fn sample(body: &str, name: &str) -> f64 {
    body.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} not served:\n{body}"))
}

/// Goal: the operator's view holds together. The alerting rules load and
/// their unit tests pass in a real `promtool`; the dashboard's queries
/// parse; and every `lotline_` metric that the rules and the dashboard name
/// is served by each of four running nodes after a commit, with the values
/// the nodes' own state implies (height, peers, a submit-to-commit
/// latency observed, the HTTP histogram labelled by route template).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_metric_the_alerts_and_dashboard_use_is_served() {
    let _serial = one_at_a_time().await;
    let dir = monitoring();
    let rules = dir.join("alerts.yml");
    let text = promtool(&["check".as_ref(), "rules".as_ref(), rules.as_os_str()]);
    assert!(text.contains("SUCCESS: 10 rules found"), "{text}");
    let rule_tests = dir.join("alerts.test.yml");
    promtool(&["test".as_ref(), "rules".as_ref(), rule_tests.as_os_str()]);

    // The dashboard's queries, with Grafana's variables filled in, as
    // recording rules: promtool parses each one.
    let dashboard_text =
        std::fs::read_to_string(dir.join("grafana-dashboard.json")).expect("dashboard");
    let dashboard: serde_json::Value = serde_json::from_str(&dashboard_text).expect("JSON");
    let mut exprs = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().into_iter().flatten() {
            exprs.push(target["expr"].as_str().expect("expr").to_owned());
        }
    }
    assert!(exprs.len() >= 20, "{} queries", exprs.len());
    let mut recording = String::from("groups:\n  - name: dashboard\n    rules:\n");
    for (i, expr) in exprs.iter().enumerate() {
        let expr = expr
            .replace("$__rate_interval", "1m")
            .replace("$job", "lotline")
            .replace("$instance", ".*");
        recording.push_str(&format!(
            "      - record: dashboard:query{i}\n        expr: {}\n",
            serde_json::Value::String(expr)
        ));
    }
    let scratch = tempfile::tempdir().expect("tempdir");
    let recording_path = scratch.path().join("dashboard-queries.yml");
    std::fs::write(&recording_path, recording).expect("write");
    promtool(&[
        "check".as_ref(),
        "rules".as_ref(),
        recording_path.as_os_str(),
    ]);

    let rules_text = std::fs::read_to_string(&rules).expect("rules");
    let mut used = metric_names(&rules_text);
    used.extend(metric_names(&exprs.join("\n")));
    assert!(used.len() >= 30, "{used:?}");

    let four = Four::new();
    let nodes = four.start_all().await;
    let client = lotline_sdk::Client::new(&nodes[0].url()).expect("client");
    let envelopes: Vec<_> = (0..4)
        .map(|n| {
            lotline_sdk::AttestationBuilder::new(four.genesis.chain_id(), &four.signers["supplier"])
                .event(commissioning(&format!("M-{n}")))
                .build()
                .expect("envelope")
        })
        .collect();
    let result = client
        .submit_batch(&envelopes, Wait::Committed)
        .await
        .expect("batch");
    assert_eq!(result.accepted, 4);
    // Under load the wait may end first: the commits still come.
    let waited = result
        .results
        .iter()
        .filter(|r| r.status == Status::Committed)
        .count();
    eventually("all four committed on every node", 120, || {
        nodes.iter().all(|n| n.shared.head().attestations >= 4)
    })
    .await;
    let target = nodes[0].shared.head().height;
    assert!(target >= 1);
    eventually("every node connected to the three others", 30, || {
        nodes.iter().all(|n| {
            n.net
                .as_ref()
                .is_some_and(|net| net.metrics().connected_peers.get() == 3)
        })
    })
    .await;

    let http = reqwest::Client::new();
    for (i, node) in nodes.iter().enumerate() {
        let scrape = || {
            http.get(format!("{}/metrics", node.url()))
                .bearer_auth(&four.operator_tokens[i])
                .send()
        };
        // A labelled series (the HTTP histogram by route) exists once a
        // request was answered; as under Prometheus, the first scrape is one.
        scrape().await.expect("metrics");
        let response = scrape().await.expect("metrics");
        assert_eq!(response.status(), 200, "node {i}");
        let content_type = response.headers()[reqwest::header::CONTENT_TYPE]
            .to_str()
            .expect("ascii")
            .to_owned();
        assert!(
            content_type.starts_with("application/openmetrics-text"),
            "{content_type}"
        );
        let body = response.text().await.expect("body");
        assert!(body.ends_with("# EOF\n"), "node {i}");
        let names = served(&body);
        let missing: Vec<&String> = used
            .iter()
            .filter(|name| {
                !["", "_bucket", "_sum", "_count"]
                    .iter()
                    .any(|suffix| names.contains(&format!("{name}{suffix}")))
            })
            .collect();
        assert!(
            missing.is_empty(),
            "node {i} does not serve {missing:?}:\n{body}"
        );
        assert!(
            sample(&body, "lotline_store_height") >= target as f64,
            "node {i}"
        );
        assert_eq!(
            sample(&body, "lotline_net_validator_peers"),
            3.0,
            "node {i}"
        );
        assert_eq!(
            sample(&body, "lotline_net_connected_peers"),
            3.0,
            "node {i}"
        );
        assert_eq!(sample(&body, "lotline_node_failed"), 0.0, "node {i}");
        assert!(
            sample(&body, "lotline_store_disk_free_bytes") > 0.0,
            "node {i}"
        );
        assert!(
            sample(&body, "lotline_store_block_log_bytes") > 0.0,
            "node {i}"
        );
        assert!(
            sample(&body, "lotline_store_commit_seconds_count") >= 1.0,
            "node {i}"
        );
        assert!(
            sample(&body, "lotline_consensus_vote_sync_seconds_count") >= 1.0,
            "node {i}"
        );
        if i == 0 {
            // One observation per attestation whose commit the batch
            // waited for on node 0.
            assert_eq!(
                sample(&body, "lotline_ingest_submit_commit_seconds_count"),
                waited as f64
            );
            assert!(
                body.contains(r#"lotline_api_request_seconds_count{method="POST",route="/v1/attestations/batch",status="2xx"} 1"#),
                "{body}"
            );
        }
    }
    for node in nodes {
        node.shutdown().await;
    }
}

/// Goal: membership changes by consortium vote on four real nodes. A key
/// rotation signed by two orgs is refused as under the threshold (three of
/// four), commits with a third signature; an added org can not submit
/// before the stated height and can after it; the rotated-away key is
/// refused from that height on and the new key accepted. Receipts from
/// before and after verify offline with the genesis and the node's
/// membership-history file alone, and a restarted node reloads the history.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn membership_changes_by_vote_take_effect_at_their_height() {
    use lotline_genesis::governance::{self, Change, Proposal};
    use lotline_sdk::{AttestationBuilder, Client, Signer};

    let _serial = one_at_a_time().await;
    let four = Four::new();
    let mut nodes = four.start_all().await;
    let client = Client::new(&nodes[0].url()).expect("client");
    let chain = four.genesis.chain_id();
    let old = &four.signers["supplier"];
    let attest = |signer: &Signer, lot: &str| {
        AttestationBuilder::new(chain, signer)
            .event(commissioning(lot))
            .build()
            .expect("envelope")
    };
    let committed = |result: lotline_core::api::SubmitResult| {
        assert_eq!(result.status, Status::Committed);
        result.receipt.expect("receipt")
    };
    let refused_as = |result: Result<lotline_core::api::SubmitResult, lotline_sdk::SdkError>| {
        let error = result.expect_err("refused");
        let problem = error.problem().expect("a problem answer").clone();
        (problem.slug().to_owned(), problem.detail)
    };

    let before = committed(
        client
            .submit(&attest(old, "GOV-0"), Wait::Committed)
            .await
            .expect("submit"),
    );
    // A supplier's shipping: shared with downstream roles, not public, and
    // not with suppliers until the read policy below says so.
    let shipping = AttestationBuilder::new(chain, old)
        .event(shipping("GOV-0"))
        .build()
        .expect("envelope");
    let shipped = committed(
        client
            .submit(&shipping, Wait::Committed)
            .await
            .expect("shipping"),
    );
    let effective = nodes[0].shared.head().height + 8;
    let fresh = Signer::new("supplier", lotline_core::SigningKey::from_seed(&[42; 32]));
    let newco = Signer::new("newco", lotline_core::SigningKey::from_seed(&[43; 32]));
    let proposal = |nonce: &str, change: Change| Proposal {
        version: governance::VERSION,
        chain_id: chain,
        effective_height: effective,
        nonce: nonce.into(),
        reason: "test".into(),
        change,
    };
    let mut rotate = governance::unsigned(&proposal(
        "rotate-1",
        Change::RotateKey {
            org: "supplier".into(),
            old_key: old.public_key(),
            new_key: fresh.public_key(),
        },
    ));
    let (slug, _) = refused_as(client.submit(&rotate, Wait::Committed).await);
    assert_eq!(slug, "governance-under-threshold", "unsigned");
    four.signers["supplier"].sign_governance(&mut rotate);
    four.signers["manufacturer"].sign_governance(&mut rotate);
    let (slug, detail) = refused_as(client.submit(&rotate, Wait::Committed).await);
    assert_eq!(slug, "governance-under-threshold");
    assert!(detail.contains("threshold is 3"), "{detail}");
    four.signers["distributor"].sign_governance(&mut rotate);
    committed(
        client
            .submit(&rotate, Wait::Committed)
            .await
            .expect("rotation"),
    );
    let mut add = governance::unsigned(&proposal(
        "add-1",
        Change::AddOrg {
            org: lotline_genesis::OrgFile {
                id: "newco".into(),
                name: "New Co".into(),
                role: lotline_genesis::Role::Supplier,
                client_keys: vec![newco.public_key().to_hex()],
                encryption_key: None,
            },
        },
    ));
    for org in ["manufacturer", "distributor", "regulator"] {
        four.signers[org].sign_governance(&mut add);
    }
    committed(client.submit(&add, Wait::Committed).await.expect("add org"));
    // The read policy too changes by vote: suppliers (so newco) also read
    // suppliers' shipping records, from the same height.
    let (write_policy, mut read_policy) = four.genesis.policy_files();
    read_policy.share.push(lotline_genesis::ShareFile {
        from: "supplier".into(),
        to: vec!["role:supplier".into()],
        event_types: None,
        biz_steps: Some(vec!["shipping".into()]),
        quality: None,
    });
    let mut set_policy = governance::unsigned(&proposal(
        "read-1",
        Change::SetPolicy {
            policy: write_policy,
            read_policy: Some(read_policy),
        },
    ));
    for org in ["manufacturer", "distributor", "regulator"] {
        four.signers[org].sign_governance(&mut set_policy);
    }
    committed(
        client
            .submit(&set_policy, Wait::Committed)
            .await
            .expect("read policy"),
    );

    // Before the stated height: the new key and the new org are unknown.
    let (slug, _) = refused_as(
        client
            .submit(&attest(&fresh, "GOV-early"), Wait::Committed)
            .await,
    );
    assert_eq!(slug, "unknown-key");
    let (slug, _) = refused_as(
        client
            .submit(&attest(&newco, "GOV-early-2"), Wait::Committed)
            .await,
    );
    assert_eq!(slug, "unknown-key");
    let mut n = 0;
    while nodes[0].shared.head().height + 1 < effective {
        n += 1;
        let filler = attest(&four.signers["manufacturer"], &format!("GOV-fill-{n}"));
        committed(
            client
                .submit(&filler, Wait::Committed)
                .await
                .expect("filler"),
        );
    }

    // From the stated height on: the old key is refused, the new key and
    // the new org are accepted, on any node.
    let (slug, _) = refused_as(
        client
            .submit(&attest(old, "GOV-late"), Wait::Committed)
            .await,
    );
    assert_eq!(slug, "unknown-key");
    let other = Client::new(&nodes[2].url()).expect("client");
    let after = committed(
        other
            .submit(&attest(&fresh, "GOV-1"), Wait::Committed)
            .await
            .expect("new key"),
    );
    assert!(after.header.height >= effective);
    committed(
        other
            .submit(&attest(&newco, "GOV-2"), Wait::Committed)
            .await
            .expect("new org"),
    );

    // Offline: the genesis and the membership history, nothing else.
    let file = other.membership_history().await.expect("history");
    let genesis = std::sync::Arc::new(four.genesis.clone());
    let history = file.follow(genesis).expect("the history follows");
    assert_eq!(history.entries().len(), 3);
    assert!(history.entries().iter().all(|e| e.void.is_none()));
    assert!(four.genesis.verify_receipt(&after).is_err());
    four.genesis
        .verify_receipt_in(&after, &history)
        .expect("after the rotation");
    four.genesis
        .verify_receipt_in(&before, &history)
        .expect("before the rotation");

    // A restarted node rebuilds the same membership from its store, and
    // accepts an API credential for the org voted in.
    let last = nodes.pop().expect("node");
    last.shutdown().await;
    let token = lotline_node::access::credentials::new_token("newco-reader");
    let mut config = four.configs[3].clone();
    config
        .credentials
        .push(lotline_node::access::CredentialEntry {
            id: "newco-reader".into(),
            org: "newco".into(),
            role: "supplier".into(),
            token_hash: lotline_node::access::credentials::token_hash(&token).to_hex(),
        });
    let restarted = lotline_node::Node::start(&config).await.expect("restart");
    let reloaded = restarted.shared.governance.history();
    assert_eq!(reloaded.entries(), history.entries());

    // Reads follow the membership and read policy in force: newco reads
    // the supplier's shipping record (shared with role:supplier by vote),
    // an anonymous caller does not.
    let http = reqwest::Client::new();
    let url = format!(
        "{}/v1/attestations/{}",
        restarted.url(),
        shipped.attestation.id()
    );
    let status_as = |token: Option<String>| {
        let request = http.get(&url);
        let request = match token {
            Some(token) => request.bearer_auth(token),
            None => request,
        };
        async move { request.send().await.expect("read").status().as_u16() }
    };
    assert_eq!(status_as(Some(token.clone())).await, 200, "newco reads");
    assert_eq!(status_as(None).await, 404, "not public");

    // SQL judges by the same rule at query time: the shipping row was
    // projected before newco existed and before the vote shared it, and
    // newco's own commissioning is its own. The projection follows the
    // store off the commit path: wait for it (generous: shared machine).
    let shipped_id = shipped.attestation.id().to_string();
    let sql_ids = |sql: &'static str| {
        let request = http
            .post(format!("{}/v1/sql", restarted.url()))
            .bearer_auth(token.clone())
            .json(&serde_json::json!({ "sql": sql }));
        async move {
            let response = request.send().await.expect("sql");
            assert_eq!(response.status().as_u16(), 200, "newco may query");
            let answer: serde_json::Value = response.json().await.expect("json");
            answer["rows"]
                .as_array()
                .expect("rows")
                .iter()
                .map(|r| r["attestation_id"].as_str().expect("id").to_owned())
                .collect::<Vec<_>>()
        }
    };
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let own = sql_ids("SELECT attestation_id FROM events WHERE org = 'newco'").await;
        let shared = sql_ids("SELECT attestation_id FROM events WHERE biz_step = 'shipping'").await;
        if !own.is_empty() && shared.contains(&shipped_id) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "newco's SQL view: own {own:?}, shipping {shared:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }

    // newco leaves by vote: from the effect height on its token is refused.
    let leave_at = restarted.shared.head().height + 3;
    let mut remove = governance::unsigned(&Proposal {
        effective_height: leave_at,
        ..proposal(
            "remove-1",
            Change::RemoveOrg {
                org: "newco".into(),
            },
        )
    });
    for org in ["manufacturer", "distributor", "regulator"] {
        four.signers[org].sign_governance(&mut remove);
    }
    committed(
        client
            .submit(&remove, Wait::Committed)
            .await
            .expect("remove org"),
    );
    assert_eq!(status_as(Some(token.clone())).await, 200, "not yet");
    while restarted.shared.governance.next_height() < leave_at {
        n += 1;
        let filler = attest(&four.signers["manufacturer"], &format!("GOV-fill-{n}"));
        committed(
            client
                .submit(&filler, Wait::Committed)
                .await
                .expect("filler"),
        );
    }
    eventually("node 3 commits up to the removal", 30, || {
        restarted.shared.governance.next_height() >= leave_at
    })
    .await;
    assert_eq!(status_as(Some(token)).await, 401, "removed org");
    assert_eq!(
        restarted.shared.governance.history().entries().len(),
        4,
        "the removal is recorded"
    );
    restarted.shutdown().await;
    for node in nodes {
        node.shutdown().await;
    }
}

/// What the validator-set tests share: the supplier's numbered
/// commissioning attestations, submitted through one node and committed.
struct Lots<'a> {
    four: &'a Four,
    client: lotline_sdk::Client,
    prefix: &'static str,
    next: u32,
}

impl<'a> Lots<'a> {
    fn new(four: &'a Four, node: &lotline_node::Node, prefix: &'static str) -> Lots<'a> {
        let client = lotline_sdk::Client::new(&node.url()).expect("client");
        Lots {
            four,
            client,
            prefix,
            next: 0,
        }
    }

    /// Submits `envelope` and waits for its commit; its receipt. The
    /// node's own wait ends after 10 s; on a loaded machine a view that
    /// waits out a stopped leader may take longer, so a pending answer is
    /// followed by asking for the receipt for up to 30 s more.
    async fn commit_envelope(&self, envelope: &lotline_core::Envelope) -> Receipt {
        let result = self
            .client
            .submit(envelope, Wait::Committed)
            .await
            .expect("submit");
        if let Some(receipt) = result.receipt {
            assert_eq!(result.status, Status::Committed);
            return receipt;
        }
        assert_eq!(result.status, Status::Pending, "accepted");
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            if let Ok(receipt) = self.client.receipt(&envelope.id()).await {
                return receipt;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "not committed within 40 s"
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    /// Commits the next lot's commissioning.
    async fn commit(&mut self) -> Receipt {
        self.next += 1;
        let envelope = lotline_sdk::AttestationBuilder::new(
            self.four.genesis.chain_id(),
            &self.four.signers["supplier"],
        )
        .event(commissioning(&format!("{}-{}", self.prefix, self.next)))
        .build()
        .expect("envelope");
        self.commit_envelope(&envelope).await
    }

    /// Commits lots until one lands at `height` or above; its receipt.
    async fn commit_until(&mut self, height: u64) -> Receipt {
        loop {
            let receipt = self.commit().await;
            if receipt.header.height >= height {
                return receipt;
            }
        }
    }

    /// A validator-set change signed by `orgs` (the threshold is q of the
    /// set in force), effective from `effective` (for a validator change a
    /// lower bound of its boundary).
    fn vote(
        &self,
        nonce: &str,
        effective: u64,
        change: lotline_genesis::governance::Change,
        orgs: [&str; 3],
    ) -> lotline_core::Envelope {
        use lotline_genesis::governance::{self, Proposal};
        let mut envelope = governance::unsigned(&Proposal {
            version: governance::VERSION,
            chain_id: self.four.genesis.chain_id(),
            effective_height: effective,
            nonce: nonce.into(),
            reason: format!("test: {nonce}"),
            change,
        });
        for org in orgs {
            self.four.signers[org].sign_governance(&mut envelope);
        }
        envelope
    }

    /// The fifth org "newco" (a distributor with a fresh client key) joins
    /// by the vote of `orgs`, effective from `node`'s next height.
    async fn join_newco(&self, node: &lotline_node::Node, orgs: [&str; 3]) -> Receipt {
        let join = self.vote(
            "add-org-newco",
            node.shared.governance.next_height(),
            lotline_genesis::governance::Change::AddOrg {
                org: lotline_genesis::OrgFile {
                    id: "newco".into(),
                    name: "New Co".into(),
                    role: lotline_genesis::Role::Distributor,
                    client_keys: vec![lotline_core::SigningKey::generate().public_key().to_hex()],
                    encryption_key: None,
                },
            },
            orgs,
        );
        self.commit_envelope(&join).await
    }

    /// Offline: the membership history this node serves, followed from
    /// the genesis alone.
    async fn history(&self) -> lotline_genesis::History {
        let file = self.client.membership_history().await.expect("history");
        file.follow(std::sync::Arc::new(self.four.genesis.clone()))
            .expect("the history follows")
    }

    /// Every receipt verifies with the genesis and `history`, each against
    /// its own epoch's validators.
    fn verify_all<'r>(
        &self,
        history: &lotline_genesis::History,
        receipts: impl IntoIterator<Item = &'r Receipt>,
    ) {
        for receipt in receipts {
            self.four
                .genesis
                .verify_receipt_in(receipt, history)
                .expect("verifies against its epoch's set");
        }
    }
}

type Receipt = lotline_core::receipt::Receipt;

/// The validator indices whose signatures certify `receipt`.
fn signers(receipt: &Receipt) -> std::collections::BTreeSet<u16> {
    receipt
        .certificate
        .signatures
        .iter()
        .map(|s| s.signer)
        .collect()
}

/// Goal (issue 15, validator-set changes): a validator removed by vote
/// leaves the set at its epoch boundary (the first multiple of the genesis
/// `epoch_blocks` more than half an epoch above the change), the other
/// three keep committing with certificates of the new epoch (q = 3 of 3,
/// indices moved up past the removed one), and the removed node follows
/// the chain without voting. A validator restarted after the boundary
/// resumes in the new epoch. Receipts from before and after verify offline
/// with the genesis and the membership-history file, each against its own
/// epoch's validators; the genesis alone refuses the later one.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_validator_removed_by_vote_leaves_at_the_epoch_boundary() {
    use lotline_genesis::governance::{self, Change};

    let _serial = one_at_a_time().await;
    let four = Four::new().with_epoch_blocks(10);
    let mut nodes = four.start_all().await;
    let mut lots = Lots::new(&four, &nodes[0], "EPOCH");
    let before = lots.commit().await;

    // The manufacturer's validator (index 1 of 4) leaves by vote of three
    // member orgs (the threshold under the current set: q = 3 of 4).
    let leaving = four.genesis.validators()[1].node_key;
    // For a validator change the stated height is a lower bound of the
    // boundary; like any change's, it may not have passed at submission.
    let effective = nodes[0].shared.head().height + 2;
    let remove = lots.vote(
        "remove-validator-1",
        effective,
        Change::RemoveValidator { node_key: leaving },
        ["supplier", "distributor", "regulator"],
    );
    let voted = lots.commit_envelope(&remove).await;
    let from = governance::boundary(voted.header.height, effective, 10);
    assert!(
        from > voted.header.height + 5,
        "more than half an epoch ahead"
    );

    // Commit through the boundary and a few blocks past it.
    let after = lots.commit_until(from + 3).await;
    assert_eq!(after.certificate.epoch, 1, "certified in the new epoch");
    assert_eq!(
        signers(&after).len(),
        3,
        "all three validators of epoch 1 sign (q = 3 of 3)"
    );
    // The removed node follows the chain to the same head.
    let head = after.header.height;
    eventually("the removed validator follows", 30, || {
        nodes[1].shared.head().height >= head
    })
    .await;

    // Offline: the genesis and the membership history, nothing else.
    let history = Lots::new(&four, &nodes[2], "OTHER").history().await;
    let set = history.validator_set_at(from);
    assert_eq!((set.epoch, set.len()), (1, 3));
    assert!(!set.validators.contains(&leaving));
    assert_eq!(history.validator_set_at(from - 1).len(), 4);
    lots.verify_all(&history, [&before, &after]);
    assert!(
        four.genesis.verify_receipt(&after).is_err(),
        "the genesis set alone does not certify epoch 1"
    );

    // A validator of epoch 1 restarts: it opens its log (verifying each
    // block against its epoch's set) and resumes voting in epoch 1; with
    // q = 3 of 3 nothing commits without it.
    let restarting = nodes.remove(2);
    restarting.shutdown().await;
    let restarted = lotline_node::Node::start(&four.configs[2])
        .await
        .expect("restart in epoch 1");
    let again = lots.commit().await;
    assert_eq!(again.certificate.epoch, 1);
    lots.verify_all(&history, [&again]);
    restarted.shutdown().await;
    for node in nodes {
        node.shutdown().await;
    }
}

/// Goal (issue 15, validator-set changes): a fifth org and its validator
/// join by vote and the chain commits with five. The fifth org's node
/// starts as a follower that nobody admits (its key is in no genesis);
/// once the consortium's `addValidator` commits, the four admit its key
/// and dial its `p2p` hint, it catches up from genesis verifying each
/// block, and from the epoch boundary on it votes: with one of the
/// original four stopped the remaining four are exactly the quorum
/// (q = 4 of 5), so every commit then carries the new validator's
/// signature. Receipts from before and after verify offline with the
/// genesis and the membership-history file.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_fifth_org_and_validator_added_by_vote_commit_with_five() {
    use lotline_genesis::governance::{self, Change};

    let _serial = one_at_a_time().await;
    let four = Four::new().with_epoch_blocks(10);
    let mut nodes = four.start_all().await;
    let (config, node_key, p2p) = four.joining_node("newco");
    let fifth = lotline_node::Node::start(&config)
        .await
        .expect("a node the genesis does not name starts as a follower");
    let mut lots = Lots::new(&four, &nodes[0], "FIFTH");
    let before = lots.commit().await;
    assert_eq!(
        fifth.shared.head().height,
        0,
        "no validator admits a key the chain does not name"
    );

    // The vote: the org joins, then its validator (each signed by three
    // member orgs, the threshold under q = 3 of 4).
    let voters = ["supplier", "manufacturer", "regulator"];
    lots.join_newco(&nodes[0], voters).await;
    let effective = nodes[0].shared.governance.next_height();
    let add = lots.vote(
        "add-validator-newco",
        effective,
        Change::AddValidator {
            org: "newco".into(),
            node_key: node_key.public_key(),
            p2p: Some(p2p),
        },
        voters,
    );
    let voted = lots.commit_envelope(&add).await;
    let from = governance::boundary(voted.header.height, effective, 10);

    // Admitted once the change commits: the fifth syncs from genesis
    // (each block checked against its epoch's set) up to the vote.
    eventually("the joining node catches up to the vote", 30, || {
        fifth.shared.head().height >= voted.header.height
    })
    .await;

    // Commit through the boundary: the set of epoch 1 has five.
    let after = lots.commit_until(from + 2).await;
    assert_eq!(after.certificate.epoch, 1, "certified in the new epoch");
    let head = after.header.height;
    eventually("the new validator reaches the head", 30, || {
        fifth.shared.head().height >= head
    })
    .await;

    // One of the original four stops: the four left are exactly the
    // quorum of five, so nothing commits without the new validator.
    nodes.remove(3).shutdown().await;
    let mut with_five = Vec::new();
    for _ in 0..3 {
        let receipt = lots.commit().await;
        assert_eq!(receipt.certificate.epoch, 1);
        assert_eq!(
            signers(&receipt),
            [0, 1, 2, 4].into(),
            "q = 4 of 5: the three left of the four and the new validator (index 4)"
        );
        with_five.push(receipt);
    }

    // Offline: the genesis and the membership history, nothing else.
    let history = Lots::new(&four, &nodes[1], "OTHER").history().await;
    let set = history.validator_set_at(from);
    assert_eq!((set.epoch, set.len(), set.quorum()), (1, 5, 4));
    assert_eq!(set.validators[4], node_key.public_key());
    assert_eq!(history.validator_set_at(from - 1).len(), 4);
    lots.verify_all(&history, [&before, &after].into_iter().chain(&with_five));
    assert!(
        four.genesis.verify_receipt(&with_five[0]).is_err(),
        "the genesis set alone does not certify epoch 1"
    );
    fifth.shutdown().await;
    for node in nodes {
        node.shutdown().await;
    }
}

/// Goal (issue 15, follower nodes): an org without a validator runs a
/// node. A fifth org's node, its key in no genesis, is refused by the four
/// while no vote names it. Once the consortium adds the org and then its
/// follower node (`addNode`, effective the next height: no epoch boundary,
/// the set stays four), the four admit the key and dial its `p2p` hint: it
/// block-syncs from genesis to the head, follows new commits to the same
/// head hash as the validators without voting, and serves a receipt that
/// verifies offline with the genesis. After a `removeNode` vote takes
/// effect the four disconnect and refuse it: it stops advancing while the
/// chain goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_follower_node_of_a_new_org_is_admitted_and_retired_by_vote() {
    use lotline_genesis::governance::Change;

    let _serial = one_at_a_time().await;
    let four = Four::new();
    let nodes = four.start_all().await;
    let (config, node_key, p2p) = four.joining_node("newco");
    let follower = lotline_node::Node::start(&config)
        .await
        .expect("a node the genesis does not name starts");
    let mut lots = Lots::new(&four, &nodes[0], "FOLLOW");
    lots.commit().await;
    lots.commit().await;
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    assert_eq!(
        follower.shared.head().height,
        0,
        "no validator admits a key no vote names"
    );

    // The vote: the org joins, then its follower node (each signed by
    // three member orgs, the threshold under q = 3 of 4).
    let voters = ["supplier", "manufacturer", "regulator"];
    lots.join_newco(&nodes[0], voters).await;
    let add = lots.vote(
        "add-node-newco",
        nodes[0].shared.governance.next_height(),
        Change::AddNode {
            org: "newco".into(),
            node_key: node_key.public_key(),
            p2p: Some(p2p),
        },
        voters,
    );
    let voted = lots.commit_envelope(&add).await;

    // Admitted from the next height: it syncs up to the vote, then follows.
    eventually("the follower block-syncs to the vote", 30, || {
        follower.shared.head().height >= voted.header.height
    })
    .await;
    let after = lots.commit().await;
    let set = nodes[0]
        .shared
        .governance
        .history()
        .validator_set_at(after.header.height);
    assert_eq!(set.len(), 4, "still four validators");
    assert!(!set.validators.contains(&node_key.public_key()));
    assert!(signers(&after).iter().all(|&i| i < 4), "signed by the four");
    eventually("the follower reaches the validators' head", 30, || {
        let (theirs, ours) = (nodes[1].shared.head(), follower.shared.head());
        ours.height >= after.header.height
            && (ours.height, ours.hash) == (theirs.height, theirs.hash)
    })
    .await;
    let served = lotline_sdk::Client::new(&follower.url())
        .expect("client")
        .receipt(&after.attestation.id())
        .await
        .expect("the follower serves the receipt");
    assert_eq!(served.header, after.header);
    four.genesis
        .verify_receipt(&served)
        .expect("the follower's receipt verifies with the genesis");
    // `lotline doctor` on a validator checks the peers the chain admits
    // now: the follower too, at its `p2p` hint.
    let doctor_peers = || async {
        let path = four.live_config_file(0, &nodes[0]);
        let report = lotline_node::ops::doctor::run(&path, &[]).await;
        let peers: Vec<(String, lotline_node::ops::doctor::Level)> = report
            .findings
            .into_iter()
            .filter(|f| f.area.starts_with("peer "))
            .map(|f| (f.area, f.level))
            .collect();
        peers
    };
    let follower_area = format!(
        "peer newco follower {}",
        &node_key.public_key().to_hex()[..8]
    );
    let peers = doctor_peers().await;
    assert_eq!(
        peers.len(),
        4,
        "three validators and the follower: {peers:?}"
    );
    assert!(
        peers.contains(&(follower_area.clone(), lotline_node::ops::doctor::Level::Ok)),
        "{peers:?}"
    );

    // removeNode: from its effect height on, the four refuse the key.
    let remove = lots.vote(
        "remove-node-newco",
        nodes[0].shared.governance.next_height(),
        Change::RemoveNode {
            node_key: node_key.public_key(),
        },
        voters,
    );
    let retired = lots.commit_envelope(&remove).await;
    let effect = retired.header.height + 1;
    lots.commit_until(effect + 2).await;
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let stopped = follower.shared.head().height;
    let last = lots.commit_until(effect + 5).await;
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    assert_eq!(
        follower.shared.head().height,
        stopped,
        "a retired follower advances no further"
    );
    // Each validator drops it when it commits the block before the effect
    // height; a finalization already in flight may still reach it once.
    assert!(
        stopped < last.header.height && stopped <= effect + 1,
        "it stopped at the removal ({stopped}, removal effective at {effect}, head {})",
        last.header.height
    );
    let peers = doctor_peers().await;
    assert!(
        peers.iter().all(|(area, _)| !area.contains("newco")),
        "a retired follower is no peer to check: {peers:?}"
    );
    follower.shutdown().await;
    for node in nodes {
        node.shutdown().await;
    }
}

/// Goal (issue 15, validator-set changes): a validator's node key rotated
/// by vote. The others admit the new key as soon as the rotation commits;
/// up to the boundary the validator signs with its old key, after it the
/// old key is a fault of the new epoch (the other three are its quorum,
/// q = 3 of 4). Restarted with the new key file it catches up and votes
/// under its old index: with another validator stopped, every commit
/// carries the new key's signature. Receipts verify offline with the
/// genesis and the membership-history file. Stopped, it repairs a block of
/// the new epoch damaged in its log, with its new key.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_validator_restarted_with_its_rotated_key_keeps_signing() {
    use lotline_genesis::governance::{self, Change};

    let _serial = one_at_a_time().await;
    let four = Four::new().with_epoch_blocks(10);
    let mut nodes = four.start_all().await;
    let mut lots = Lots::new(&four, &nodes[0], "ROTATE");
    let before = lots.commit().await;

    // The distributor's validator (index 2) gets a new node key by vote.
    let old_key = four.genesis.validators()[2].node_key;
    let new_key = lotline_core::SigningKey::generate();
    let new_key_path = four.dir.path().join("distributor-node-2.key");
    lotline_genesis::keys::write_signing_key(&new_key_path, &new_key).expect("key file");
    let effective = nodes[0].shared.governance.next_height();
    let rotate = lots.vote(
        "rotate-node-key-2",
        effective,
        Change::RotateNodeKey {
            old_key,
            new_key: new_key.public_key(),
        },
        ["supplier", "manufacturer", "regulator"],
    );
    let voted = lots.commit_envelope(&rotate).await;
    let from = governance::boundary(voted.header.height, effective, 10);

    // Through the boundary: the old key signs no certificate of epoch 1.
    let after = lots.commit_until(from + 1).await;
    assert_eq!(after.certificate.epoch, 1);

    // The validator restarts with its new key file, same folder and port.
    nodes.remove(2).shutdown().await;
    let mut config = four.configs[2].clone();
    config.node_key = new_key_path;
    let rotated = lotline_node::Node::start(&config)
        .await
        .unwrap_or_else(|e| panic!("restart with the rotated key: {e}"));
    let head = after.header.height;
    eventually("the rotated validator catches up", 30, || {
        rotated.shared.head().height >= head
    })
    .await;

    // Another validator stops (the regulator's): the three left need the
    // rotated key.
    nodes.remove(2).shutdown().await;
    let mut with_new_key = Vec::new();
    for _ in 0..3 {
        let receipt = lots.commit().await;
        assert_eq!(receipt.certificate.epoch, 1);
        assert_eq!(
            signers(&receipt),
            [0, 1, 2].into(),
            "q = 3 of 4, index 2 signs"
        );
        with_new_key.push(receipt);
    }

    let history = lots.history().await;
    assert_eq!(
        history.validator_set_at(from).validators[2],
        new_key.public_key()
    );
    assert_eq!(history.validator_set_at(from - 1).validators[2], old_key);
    lots.verify_all(&history, [&before, &after].into_iter().chain(&with_new_key));

    // Stopped, the re-keyed validator mends a block of epoch 1 damaged in
    // the middle of its log, with its new key: `lotline repair` reads the
    // chain's sets from the node's index and joins with the peers it runs
    // with (with the genesis set alone the key is no validator, and the
    // block's certificate does not verify).
    let damaged = with_new_key[0].header.height;
    eventually("the rotated validator has the block", 30, || {
        rotated.shared.head().height > damaged
    })
    .await;
    rotated.shutdown().await;
    crate::support::n4::damage_block(&config.data_dir, damaged);
    // With the key file the rotation replaced, repair says so plainly
    // (which change, from which height, which key) instead of waiting for
    // peers that refuse it.
    let stale = lotline_node::NodeConfig {
        node_key: four.configs[2].node_key.clone(),
        ..config.clone()
    };
    match lotline_node::ops::repair::repair(&stale, std::time::Duration::from_secs(60)).await {
        Err(lotline_node::ops::repair::RepairError::Retired {
            key,
            from: retired_from,
            change,
            advice,
        }) => {
            assert_eq!(
                (key, retired_from, change),
                (old_key, from, "rotateNodeKey")
            );
            assert!(
                advice.contains(&new_key.public_key().to_hex()),
                "names the key to use: {advice}"
            );
        }
        other => panic!("repair with the replaced key: {other:?}"),
    }
    let report = lotline_node::ops::repair::repair(&config, std::time::Duration::from_secs(60))
        .await
        .unwrap_or_else(|e| panic!("repair with the rotated key: {e}"));
    assert_eq!(
        report.repaired.iter().map(|r| r.0).collect::<Vec<_>>(),
        vec![damaged]
    );
    for node in nodes {
        node.shutdown().await;
    }
}

/// Goal (issue 15, governance): consensus parameters change by vote. A
/// `setConsensus` of `blockMaxAttestations = 1` holds from its effect
/// height on every leader: a batch submitted after it lands one
/// attestation per block. One naming no parameter is refused with its
/// reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn consensus_parameters_change_by_vote_from_their_height() {
    use lotline_genesis::governance::Change;

    let _serial = one_at_a_time().await;
    let four = Four::new();
    let nodes = four.start_all().await;
    let mut lots = Lots::new(&four, &nodes[0], "PARAMS");
    lots.commit().await;
    let voters = ["supplier", "manufacturer", "regulator"];
    let nothing = lots.vote(
        "set-consensus-0",
        nodes[0].shared.governance.next_height(),
        Change::SetConsensus {
            block_max_attestations: None,
            block_interval_ms: None,
            timeout_base_ms: None,
            timeout_max_ms: None,
        },
        voters,
    );
    let refused = lots
        .client
        .submit(&nothing, Wait::Committed)
        .await
        .expect_err("a change of nothing");
    assert!(
        refused.to_string().contains("names no parameter"),
        "{refused}"
    );

    let one = lots.vote(
        "set-consensus-1",
        nodes[0].shared.governance.next_height(),
        Change::SetConsensus {
            block_max_attestations: Some(1),
            block_interval_ms: None,
            timeout_base_ms: None,
            timeout_max_ms: None,
        },
        voters,
    );
    let voted = lots.commit_envelope(&one).await;
    let from = voted.header.height + 1;
    // Every node holds it from its effect height on.
    eventually("every node commits the change", 30, || {
        nodes
            .iter()
            .all(|n| n.shared.governance.next_height() >= from)
    })
    .await;
    for node in &nodes {
        let params = *node
            .shared
            .governance
            .history()
            .at(from)
            .rules()
            .consensus();
        assert_eq!(params.block_max_attestations, 1);
        assert_eq!(
            node.shared
                .governance
                .history()
                .at(from - 1)
                .rules()
                .consensus(),
            four.genesis.consensus()
        );
    }

    // A batch submitted through each node: one attestation per block.
    let mut heights = std::collections::BTreeSet::new();
    for (i, node) in nodes.iter().enumerate() {
        let client = lotline_sdk::Client::new(&node.url()).expect("client");
        let batch: Vec<_> = (0..3)
            .map(|n| {
                lotline_sdk::AttestationBuilder::new(
                    four.genesis.chain_id(),
                    &four.signers["supplier"],
                )
                .event(commissioning(&format!("PARAMS-BATCH-{i}-{n}")))
                .build()
                .expect("envelope")
            })
            .collect();
        let result = client
            .submit_batch(&batch, Wait::Committed)
            .await
            .expect("batch");
        for r in &result.results {
            assert_eq!(r.status, Status::Committed);
            let height = r.receipt.as_ref().expect("receipt").header.height;
            assert!(height >= from);
            assert!(heights.insert(height), "two attestations in block {height}");
        }
    }
    assert_eq!(heights.len(), 12);
    for node in nodes {
        node.shutdown().await;
    }
}

/// A shipping of lot `lot` by its holder (not public under the default
/// read policy: shared with the downstream roles).
fn shipping(lot: &str) -> lotline_core::epcis::Event {
    serde_json::from_value(serde_json::json!({
        "type": "ObjectEvent",
        "eventTime": "2026-03-02T09:00:00.000Z",
        "eventTimeZoneOffset": "+08:00",
        "action": "OBSERVE",
        "bizStep": "shipping",
        "disposition": "in_transit",
        "quantityList": [{"epcClass": lot_uri(lot), "quantity": 500.0, "uom": "KGM"}],
        "readPoint": {"id": "https://id.gs1.org/414/9506000134352"}
    }))
    .expect("event")
}
