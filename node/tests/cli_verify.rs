//! `lotline verify`: a receipt fetched over HTTP verifies offline against the
//! genesis file (exit 0) and fails after any edit of its bytes (exit 1).

use std::process::Command;

use lotline_core::api::Wait;
use lotline_genesis::Genesis;
use lotline_node::{Node, NodeConfig};

fn verify(genesis: &std::path::Path, receipt: &std::path::Path) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_lotline"))
        .args(["verify", "--genesis"])
        .arg(genesis)
        .arg(receipt)
        .output()
        .expect("run lotline verify");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_receipt_verifies_and_any_edit_fails() {
    let dir = tempfile::tempdir().expect("tempdir");
    let orgs = lotline_node::demo::parse_orgs(lotline_node::demo::DEMO_ORGS).expect("orgs");
    let layout = lotline_node::demo::create_consortium(
        dir.path(),
        "verify",
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
    let event = serde_json::json!({
        "type": "ObjectEvent", "eventTime": "2026-03-02T08:00:00Z", "eventTimeZoneOffset": "+08:00",
        "action": "ADD", "bizStep": "commissioning",
        "epcList": ["https://id.gs1.org/01/09506000134352/21/SN-1"]
    });
    let envelope = lotline_sdk::AttestationBuilder::new(genesis.chain_id(), &signer)
        .event_json(event)
        .expect("event")
        .build()
        .expect("envelope");
    let client = lotline_sdk::Client::new(&node.url()).expect("client");
    client
        .submit(&envelope, Wait::Committed)
        .await
        .expect("submit");

    // The JSON form, exactly as served.
    let json = reqwest::get(format!(
        "{}/v1/attestations/{}/receipt",
        node.url(),
        envelope.id()
    ))
    .await
    .expect("get")
    .bytes()
    .await
    .expect("body");
    let path = dir.path().join("receipt.json");
    std::fs::write(&path, &json).expect("write");
    let (code, stdout) = verify(&layout.genesis_path, &path);
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.starts_with("OK"), "{stdout}");

    // Every byte position, edited (each byte replaced by a different byte of
    // the same class so the file still looks like JSON where possible).
    // All of the first 400 bytes, then every 7th (each run starts a process).
    let positions: Vec<usize> = (0..json.len()).filter(|i| *i < 400 || i % 7 == 0).collect();
    for &i in &positions {
        let mut edited = json.to_vec();
        edited[i] = match edited[i] {
            b'0'..=b'8' | b'a'..=b'e' | b'A'..=b'Y' => edited[i] + 1,
            b'9' => b'0',
            b'f' => b'a',
            b'Z' => b'A',
            b'z' => b'y',
            other => other ^ 0x01,
        };
        std::fs::write(&path, &edited).expect("write");
        let (code, stdout) = verify(&layout.genesis_path, &path);
        assert_eq!(
            code, 1,
            "edit at byte {i} ({:?}) still verifies: {stdout}",
            json[i] as char
        );
    }
    assert!(positions.len() > 400);

    // The postcard form too.
    let bytes = reqwest::get(format!(
        "{}/v1/attestations/{}/receipt?format=postcard",
        node.url(),
        envelope.id()
    ))
    .await
    .expect("get")
    .bytes()
    .await
    .expect("body");
    let bin = dir.path().join("receipt.bin");
    std::fs::write(&bin, &bytes).expect("write");
    assert_eq!(verify(&layout.genesis_path, &bin).0, 0);
    let mut edited = bytes.to_vec();
    let last = edited.len() - 1;
    edited[last] ^= 0x80;
    std::fs::write(&bin, &edited).expect("write");
    assert_eq!(verify(&layout.genesis_path, &bin).0, 1);
    node.shutdown().await;
}
