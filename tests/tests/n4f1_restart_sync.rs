//! n = 4, one validator down: the other three keep committing (q = 3). The
//! stopped node restarts on its data, catches up by block sync, and then
//! votes again: with another validator stopped, progress needs its vote.

use crate::support::commissioning;
use crate::support::n4::{Four, eventually, one_at_a_time};
use lotline_core::api::{Status, Wait};

async fn commit_some(four: &Four, node: &lotline_node::Node, tag: &str, n: usize) -> u64 {
    let client = lotline_sdk::Client::new(&node.url()).expect("client");
    let envelopes: Vec<_> = (0..n)
        .map(|i| {
            lotline_sdk::AttestationBuilder::new(four.genesis.chain_id(), &four.signers["supplier"])
                .event(commissioning(&format!("{tag}-{i}")))
                .build()
                .expect("envelope")
        })
        .collect();
    let result = client
        .submit_batch(&envelopes, Wait::Committed)
        .await
        .expect("batch");
    let mut height = 0;
    for r in &result.results {
        assert_eq!(r.status, Status::Committed, "{tag}: {:?}", r.problem);
        height = height.max(r.height.unwrap_or(0));
    }
    height
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stopped_validator_catches_up_by_sync_and_votes_again() {
    let _serial = one_at_a_time().await;
    let four = Four::new();
    let mut nodes: Vec<Option<lotline_node::Node>> =
        four.start_all().await.into_iter().map(Some).collect();
    commit_some(&four, nodes[0].as_ref().expect("node"), "before", 5).await;

    // Stop validator 3 (the regulator): the other three keep committing.
    if let Some(node) = nodes[3].take() {
        node.shutdown().await;
    }
    let during = commit_some(&four, nodes[0].as_ref().expect("node"), "during", 10).await;
    assert!(during > 0);

    // Restart it on its data: it catches up by block sync.
    let restarted = four.start(3).await;
    eventually("the restarted validator catches up", 60, || {
        restarted.shared.head().height >= during
    })
    .await;
    nodes[3] = Some(restarted);

    // Stop validator 2: the quorum of 3 now needs validator 3's votes, so
    // progress proves the restarted validator votes again.
    if let Some(node) = nodes[2].take() {
        node.shutdown().await;
    }
    let after = commit_some(&four, nodes[0].as_ref().expect("node"), "after", 5).await;
    assert!(
        after > during,
        "the chain progressed with the restarted validator voting"
    );
    let node3 = nodes[3].as_ref().expect("node");
    eventually("the restarted validator commits the new blocks", 30, || {
        node3.shared.head().height >= after
    })
    .await;
    let client0 =
        lotline_sdk::Client::new(&nodes[0].as_ref().expect("node").url()).expect("client");
    let client3 = lotline_sdk::Client::new(&node3.url()).expect("client");
    for height in 1..=after {
        assert_eq!(
            client0.block(height).await.expect("block").hash,
            client3.block(height).await.expect("block").hash,
            "height {height}"
        );
    }
    for node in nodes.into_iter().flatten() {
        node.shutdown().await;
    }
}
