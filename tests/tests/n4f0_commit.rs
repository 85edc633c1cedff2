//! n = 4, no faults: attestations submitted to any node are committed on all
//! four with identical blocks, and a receipt from any node verifies offline
//! against the genesis (a certificate of at least q = 3 validators).

mod support;

use lotline_core::api::{Status, Wait};
use support::n4::{Four, eventually};
use support::{commissioning, lot_uri};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_node_commits_the_same_blocks() {
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
