//! `lotline verify` on proof bundles: the JSON bundle of a regulator report,
//! fetched over HTTP from a running node, verifies offline against the
//! genesis (exit 0, one OK line per event); after an edit of one event's
//! signed payload it fails (exit 1) naming that event and still checks the
//! others; an unreadable bundle is exit 2.

use std::path::Path;
use std::process::Command;

use lotline_core::api::Wait;
use lotline_core::bundle::ProofBundle;
use lotline_genesis::Genesis;
use lotline_node::{Node, NodeConfig};

fn verify(genesis: &Path, file: &Path) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_lotline"))
        .args(["verify", "--genesis"])
        .arg(genesis)
        .arg(file)
        .output()
        .expect("run lotline verify");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_bundle_verifies_and_a_tampered_event_is_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let orgs = lotline_node::demo::parse_orgs(lotline_node::demo::DEMO_ORGS).expect("orgs");
    let layout = lotline_node::demo::create_consortium(
        dir.path(),
        "bundle",
        &orgs,
        &["manufacturer".into()],
        0,
        0,
    )
    .expect("consortium");
    let mut config = NodeConfig::load(&layout.node_configs[0]).expect("config");
    config.listen = ([127, 0, 0, 1], 0).into();
    let node = Node::start(&config).await.expect("node");
    let genesis = Genesis::load(&layout.genesis_path).expect("genesis");
    let signer = lotline_sdk::Signer::from_key_file("supplier", &layout.client_keys["supplier"])
        .expect("key");
    let client = lotline_sdk::Client::new(&node.url()).expect("client");
    for serial in 1..=3 {
        let event = serde_json::json!({
            "type": "ObjectEvent", "eventTime": format!("2026-03-02T08:0{serial}:00Z"),
            "eventTimeZoneOffset": "+08:00", "action": "ADD", "bizStep": "commissioning",
            "epcList": [format!("https://id.gs1.org/01/09506000134352/21/SN-{serial}")]
        });
        let envelope = lotline_sdk::AttestationBuilder::new(genesis.chain_id(), &signer)
            .event_json(event)
            .expect("event")
            .build()
            .expect("envelope");
        client
            .submit(&envelope, Wait::Committed)
            .await
            .expect("submit");
    }

    // Reports are for roles that read every org's records.
    let token = std::fs::read_to_string(&layout.tokens["regulator"]).expect("token");
    let json = reqwest::Client::new()
        .get(format!(
            "{}/v1/reports/orgs/supplier?format=json",
            node.url()
        ))
        .bearer_auth(token.trim())
        .send()
        .await
        .expect("get")
        .bytes()
        .await
        .expect("body");
    let path = dir.path().join("bundle.json");
    std::fs::write(&path, &json).expect("write");
    let (code, out) = verify(&layout.genesis_path, &path);
    assert_eq!(code, 0, "{out}");
    assert_eq!(out.matches("\nOK   event").count(), 3, "{out}");
    assert!(out.contains("all 3 receipts verify"), "{out}");

    // Edit the second event's signed payload: that event, and only it, fails.
    let mut bundle = ProofBundle::from_json(&json).expect("bundle");
    let mut payload = bundle.receipts[1].attestation.payload.to_vec();
    let at = payload
        .windows(4)
        .position(|w| w == b"SN-2")
        .expect("serial in payload");
    payload[at + 3] = b'9';
    bundle.receipts[1].attestation.payload = payload.into();
    std::fs::write(&path, serde_json::to_vec_pretty(&bundle).unwrap()).expect("write");
    let (code, out) = verify(&layout.genesis_path, &path);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("FAIL event 1:"), "{out}");
    assert!(
        out.contains("OK   event 0") && out.contains("OK   event 2"),
        "{out}"
    );
    assert!(out.contains("1 of 3 receipts FAIL"), "{out}");

    // A bundle for another chain fails as a whole.
    let mut other = ProofBundle::from_json(&json).expect("bundle");
    other.chain_id = lotline_core::Digest([9; 32]);
    std::fs::write(&path, serde_json::to_vec(&other).unwrap()).expect("write");
    assert_eq!(verify(&layout.genesis_path, &path).0, 1);

    // Unreadable: truncated JSON, and a bundle of an unknown version.
    std::fs::write(&path, &json[..json.len() / 2]).expect("write");
    let (code, out) = verify(&layout.genesis_path, &path);
    assert_eq!(code, 2, "{out}");
    let newer =
        String::from_utf8(json.to_vec())
            .unwrap()
            .replacen("\"version\": 1", "\"version\": 9", 1);
    std::fs::write(&path, newer).expect("write");
    assert_eq!(verify(&layout.genesis_path, &path).0, 2);
    node.shutdown().await;
}
