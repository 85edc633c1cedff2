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

/// `lotline verify --disclosure`, exit code and stdout.
fn verify_disclosure(
    genesis: &std::path::Path,
    receipt: &std::path::Path,
    disclosure: &std::path::Path,
) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_lotline"))
        .args(["verify", "--genesis"])
        .arg(genesis)
        .arg(receipt)
        .arg("--disclosure")
        .arg(disclosure)
        .output()
        .expect("run lotline verify");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_attest_then_a_disclosure_verifies_offline_and_an_edited_one_fails() {
    // Goal (issue 14): on a consortium made by `lotline genesis init` with
    // a retention rule (the CLI alone: period key files, `[private]
    // period_keys`), `lotline attest --private` seals the named member (the
    // stored statement is version 2 without it in the public event) to the
    // period keys, the issuer opens it with its key file for the record's
    // period, and `lotline verify --disclosure` accepts the disclosed field
    // against the receipt and genesis alone (exit 0) and refuses an edited
    // value (exit 1).
    let dir = tempfile::tempdir().expect("tempdir");
    let init = Command::new(env!("CARGO_BIN_EXE_lotline"))
        .args(["genesis", "init", "--dir"])
        .arg(dir.path())
        .args(["--chain-name", "disclose", "--validators", "manufacturer"])
        .args([
            "--retention-period-seconds",
            "31536000",
            "--retention-periods",
            "5",
        ])
        .args(["--retention-class", "logistics=shipping+receiving:2"])
        .output()
        .expect("run lotline genesis init");
    assert!(
        init.status.success(),
        "genesis init: {}",
        String::from_utf8_lossy(&init.stderr)
    );
    let genesis_path = dir.path().join("genesis.toml");
    let supplier_keys = dir.path().join("keys").join("supplier");
    let retention = Genesis::load(&genesis_path)
        .expect("genesis")
        .retention()
        .cloned()
        .expect("[retention] in genesis");
    assert_eq!(retention.classes[0].periods, 2);
    let config_path = dir.path().join("nodes").join("manufacturer.toml");
    let mut config = NodeConfig::load(&config_path).expect("config");
    let period_keys = config.private.as_ref().and_then(|p| p.period_keys.clone());
    assert_eq!(
        period_keys.as_deref(),
        Some(
            dir.path()
                .join("nodes/../keys/manufacturer/periods")
                .as_path()
        )
    );
    config.listen = ([127, 0, 0, 1], 0).into();
    let node = Node::start(&config).await.expect("node");
    let event = serde_json::json!({
        "type": "ObjectEvent", "eventTime": "2026-03-02T08:00:00Z", "eventTimeZoneOffset": "+08:00",
        "action": "ADD", "bizStep": "commissioning",
        "epcList": ["https://id.gs1.org/01/09506000134352/21/SN-9"],
        "ilmd": {"cbvmda:lotNumber": "LOT-PRIVATE-77"}
    });
    let event_path = dir.path().join("event.json");
    std::fs::write(&event_path, serde_json::to_vec(&event).expect("json")).expect("write");
    let receipt_path = dir.path().join("receipt.json");
    let mut attest = Command::new(env!("CARGO_BIN_EXE_lotline"));
    attest
        .args([
            "attest",
            "--url",
            &node.url(),
            "--org",
            "supplier",
            "--genesis",
        ])
        .arg(&genesis_path)
        .arg("--key")
        .arg(supplier_keys.join("client.key"))
        .arg("--event")
        .arg(&event_path)
        .args(["--private", "/ilmd", "--receipt-out"])
        .arg(&receipt_path);
    let out = tokio::task::spawn_blocking(move || attest.output())
        .await
        .expect("join")
        .expect("run lotline attest");
    assert!(
        out.status.success(),
        "attest: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let receipt = lotline_core::Receipt::from_json(&std::fs::read(&receipt_path).expect("receipt"))
        .expect("receipt JSON");
    let statement =
        lotline_core::Statement::from_payload(&receipt.attestation.payload).expect("statement");
    assert_eq!(statement.version, 3);
    assert!(
        statement.event.ilmd.is_none(),
        "ilmd left in the public event"
    );
    // Commissioning is a quality record: kept the default 5 periods.
    let period = statement
        .private
        .as_ref()
        .and_then(|p| p.key_period)
        .expect("sealed for a key period");
    assert_eq!(
        period,
        retention.period_of(statement.issued_at_ms) + 5,
        "key period"
    );
    let key_path = supplier_keys.join("periods").join(format!("{period}.key"));
    let key = lotline_genesis::keys::read_encryption_key(&key_path).expect("period key");
    let fields = lotline_sdk::open_private(&receipt.attestation, "supplier", &key).expect("open");
    assert_eq!(fields[0].value["cbvmda:lotNumber"], "LOT-PRIVATE-77");

    let disclosure_path = dir.path().join("disclosure.json");
    std::fs::write(
        &disclosure_path,
        serde_json::to_vec(&fields[0]).expect("json"),
    )
    .expect("write");
    let (code, stdout) = verify_disclosure(&genesis_path, &receipt_path, &disclosure_path);
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.starts_with("OK"), "{stdout}");
    let mut edited = fields[0].clone();
    edited.value["cbvmda:lotNumber"] = "LOT-PRIVATE-78".into();
    std::fs::write(&disclosure_path, serde_json::to_vec(&edited).expect("json")).expect("write");
    let (code, stdout) = verify_disclosure(&genesis_path, &receipt_path, &disclosure_path);
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.starts_with("FAIL"), "{stdout}");
    node.shutdown().await;
}
