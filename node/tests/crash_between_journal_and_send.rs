//! A validator killed after its vote is durable but before the vote is sent
//! does not equivocate after restart.
//!
//! Method: three validators run in this process; the fourth runs as the real
//! `lotline node` binary with a crash point that aborts it right after its
//! N-th journal fdatasync (before the send). It is restarted without the
//! crash point on the same data. The honest nodes record evidence of any
//! conflicting votes they see; there must be none, and the chain must go on
//! with the restarted validator (a second validator is stopped, so the
//! quorum of 3 needs it).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{ChildGuard, free_ports};
use lotline_core::api::{Status, Wait};
use lotline_genesis::Genesis;
use lotline_node::consensus::bft::CRASH_AFTER_JOURNAL_SYNC;
use lotline_node::{Node, NodeConfig};

fn event(lot: &str) -> lotline_core::epcis::Event {
    serde_json::from_value(serde_json::json!({
        "type": "ObjectEvent", "eventTime": "2026-03-02T08:00:00Z", "eventTimeZoneOffset": "+08:00",
        "action": "ADD", "bizStep": "commissioning",
        "quantityList": [{"epcClass": format!("https://id.gs1.org/01/09506000134352/10/{lot}"), "quantity": 1.0}]
    }))
    .expect("event")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_validator_killed_between_journal_and_send_does_not_equivocate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let orgs = lotline_node::demo::parse_orgs(lotline_node::demo::DEMO_ORGS).expect("orgs");
    let validators: Vec<String> = orgs.iter().map(|o| o.id.clone()).collect();
    let api = free_ports(8);
    let layout = lotline_node::demo::create_consortium(
        dir.path(),
        "crash",
        &orgs,
        &validators,
        api,
        api + 4,
    )
    .expect("consortium");
    let genesis = Genesis::load(&layout.genesis_path).expect("genesis");
    let signer = lotline_sdk::Signer::from_key_file("supplier", &layout.client_keys["supplier"])
        .expect("key");
    let mut nodes = Vec::new();
    for path in &layout.node_configs[..3] {
        let mut config = NodeConfig::load(path).expect("config");
        config.listen = ([127, 0, 0, 1], 0).into();
        nodes.push(Node::start(&config).await.expect("node"));
    }
    let spawn = |crash: Option<u64>| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_lotline"));
        command
            .args(["node", "--config"])
            .arg(&layout.node_configs[3])
            .env("LOTLINE_LOG", "warn");
        if let Some(n) = crash {
            command.env(CRASH_AFTER_JOURNAL_SYNC, n.to_string());
        }
        ChildGuard::spawn(command.stdout(Stdio::null()).stderr(Stdio::null()))
    };

    // Validator 3 dies after a few durable-but-unsent votes.
    let mut child = spawn(Some(3));
    let client = lotline_sdk::Client::new(&nodes[0].url()).expect("client");
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut i = 0;
    while child.try_wait().is_none() {
        assert!(
            Instant::now() < deadline,
            "validator 3 never reached its crash point"
        );
        let envelope = lotline_sdk::AttestationBuilder::new(genesis.chain_id(), &signer)
            .event(event(&format!("A{i}")))
            .build()
            .expect("envelope");
        let _ = client.submit(&envelope, Wait::Accepted).await;
        i += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Restart it on the same data, then stop validator 2 so progress needs it.
    let child = spawn(None);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let stopped = nodes.remove(2);
    stopped.shutdown().await;
    for n in 0..5 {
        let envelope = lotline_sdk::AttestationBuilder::new(genesis.chain_id(), &signer)
            .event(event(&format!("B{n}")))
            .build()
            .expect("envelope");
        let result = client
            .clone()
            .with_timeout(Duration::from_secs(40))
            .submit(&envelope, Wait::Committed)
            .await
            .expect("submit");
        assert_eq!(
            result.status,
            Status::Committed,
            "the chain goes on with the restarted validator"
        );
    }
    for node in &nodes {
        let evidence = lotline_sdk::Client::new(&node.url()).expect("client");
        let body: serde_json::Value = reqwest::get(format!("{}/v1/evidence", evidence.base_url()))
            .await
            .expect("get")
            .json()
            .await
            .expect("json");
        assert_eq!(
            body,
            serde_json::json!([]),
            "no equivocation evidence after the crash and restart"
        );
    }
    child.kill();
    for node in nodes {
        node.shutdown().await;
    }
}
