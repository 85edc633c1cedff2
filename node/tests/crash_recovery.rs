//! Durability under SIGKILL: every attestation the node acknowledged as
//! committed is there after the process is killed mid-load and restarted.
//!
//! Method: run the real `lotline node` binary, drive it with concurrent
//! `wait=committed` clients, SIGKILL it while they are writing, restart it on
//! the same data, and look up every acknowledged id (receipt must verify).
//! Done twice, so the second restart also recovers from a log that already
//! went through one recovery.

use crate::support;

use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::ChildGuard;
use lotline_core::AttestationId;
use lotline_core::api::{Status, Wait};
use lotline_genesis::Genesis;
use lotline_sdk::{AttestationBuilder, Client, Signer};

fn spawn_node(config: &std::path::Path) -> ChildGuard {
    ChildGuard::spawn(
        Command::new(env!("CARGO_BIN_EXE_lotline"))
            .args(["node", "--config"])
            .arg(config)
            .env("LOTLINE_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit()),
    )
}

async fn wait_healthy(client: &Client) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if client.health().await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("node did not become healthy");
}

fn event(lot: &str) -> lotline_core::epcis::Event {
    serde_json::from_value(serde_json::json!({
        "type": "ObjectEvent",
        "eventTime": "2026-03-02T08:00:00.000Z",
        "eventTimeZoneOffset": "+08:00",
        "action": "ADD",
        "bizStep": "commissioning",
        "quantityList": [{"epcClass": format!("https://id.gs1.org/01/09506000134352/10/{lot}"), "quantity": 1.0}]
    }))
    .expect("event")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_attestation_survives_sigkill() {
    let dir = tempfile::tempdir().expect("tempdir");
    let orgs = lotline_node::demo::parse_orgs(lotline_node::demo::DEMO_ORGS).expect("orgs");
    let layout = lotline_node::demo::create_consortium(
        dir.path(),
        "crash",
        &orgs,
        &["manufacturer".into()],
        support::free_ports(1),
        0,
    )
    .expect("consortium");
    let genesis = Genesis::load(&layout.genesis_path).expect("genesis");
    let signer =
        Arc::new(Signer::from_key_file("supplier", &layout.client_keys["supplier"]).expect("key"));
    let config = layout.node_configs[0].clone();
    let url = {
        let text = std::fs::read_to_string(&config).expect("config");
        let listen = text
            .lines()
            .find_map(|l| l.strip_prefix("listen = "))
            .expect("listen")
            .trim_matches('"')
            .to_owned();
        format!("http://{listen}")
    };
    let client = Client::new(&url)
        .expect("client")
        .with_timeout(Duration::from_secs(5));
    let acknowledged: Arc<Mutex<BTreeSet<AttestationId>>> = Arc::default();

    for round in 0..2 {
        let child = spawn_node(&config);
        wait_healthy(&client).await;
        let mut writers = Vec::new();
        for writer in 0..8 {
            let (client, signer, acked, chain) = (
                client.clone(),
                signer.clone(),
                acknowledged.clone(),
                genesis.chain_id(),
            );
            writers.push(tokio::spawn(async move {
                for i in 0.. {
                    let envelope = AttestationBuilder::new(chain, &signer)
                        .event(event(&format!("R{round}W{writer}N{i}")))
                        .build()
                        .expect("envelope");
                    match client.submit(&envelope, Wait::Committed).await {
                        Ok(r) if r.status == Status::Committed => {
                            acked.lock().expect("lock").insert(envelope.id());
                        }
                        Ok(_) => {}
                        Err(_) => return, // the node is gone
                    }
                }
            }));
        }
        // Let load build up, then kill without warning.
        let start_acks = acknowledged.lock().expect("lock").len();
        let deadline = Instant::now() + Duration::from_secs(20);
        while acknowledged.lock().expect("lock").len() < start_acks + 300
            && Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        child.kill(); // SIGKILL, then reap
        for w in writers {
            let _ = w.await;
        }
        assert!(
            acknowledged.lock().expect("lock").len() >= start_acks + 300,
            "round {round}: load did not build up"
        );
    }

    let child = spawn_node(&config);
    wait_healthy(&client).await;
    let acked = acknowledged.lock().expect("lock").clone();
    for id in &acked {
        let receipt = client
            .receipt(id)
            .await
            .unwrap_or_else(|e| panic!("acknowledged {id} lost after SIGKILL: {e}"));
        genesis.verify_receipt(&receipt).expect("receipt verifies");
    }
    // The chain still accepts writes after two crashes.
    let after = AttestationBuilder::new(genesis.chain_id(), &signer)
        .event(event("AFTER"))
        .build()
        .expect("envelope");
    let result = client
        .submit(&after, Wait::Committed)
        .await
        .expect("submit after recovery");
    assert_eq!(result.status, Status::Committed);
    child.kill();
    eprintln!(
        "{} acknowledged attestations all present after 2 SIGKILLs",
        acked.len()
    );
}
