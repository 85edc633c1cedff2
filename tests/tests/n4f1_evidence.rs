//! n = 4, one Byzantine validator that equivocates: the regulator's
//! validator (index 3) signs two different `notarize` votes for one view with
//! its real key and sends both to its peers over its real libp2p connection.
//! The honest validators detect the conflict, gossip the evidence, and a
//! later leader records it in a block; once that block is final, all four
//! nodes list the same recorded evidence at the same height and block, and
//! the evidence verifies against the genesis alone.

use crate::support::n4::{Four, eventually, one_at_a_time};
use lotline_core::api::{BlockView, EvidenceEntry, EvidenceStatus};
use lotline_core::codec;
use lotline_core::evidence::{self, EvidenceKind};
use lotline_core::hash::Digest;
use lotline_core::vote::{Vote, VoteKind};
use lotline_node::consensus::Message;
use lotline_node::consensus::bft::Frame;

const BYZANTINE: u16 = 3;

async fn evidence_of(http: &reqwest::Client, url: &str) -> Vec<EvidenceEntry> {
    http.get(format!("{url}/v1/evidence"))
        .send()
        .await
        .expect("GET /v1/evidence")
        .json()
        .await
        .expect("evidence JSON")
}

async fn block_of(http: &reqwest::Client, url: &str, height: u64) -> BlockView {
    http.get(format!("{url}/v1/blocks/{height}"))
        .send()
        .await
        .expect("GET block")
        .json()
        .await
        .expect("block JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_equivocation_is_recorded_in_a_finalized_block_on_every_node() {
    let _serial = one_at_a_time().await;
    // The chain must move without submissions (the evidence rides in a
    // later block): a short heartbeat keeps the idle chain making blocks.
    let mut four = Four::new();
    for config in &mut four.configs {
        config.heartbeat_ms = std::num::NonZeroU64::new(100).expect("non-zero");
    }
    let nodes = four.start_all().await;
    let http = reqwest::Client::new();
    let chain = four.genesis.chain_id();
    let key =
        lotline_genesis::keys::read_signing_key(&four.configs[usize::from(BYZANTINE)].node_key)
            .expect("the Byzantine validator's key");
    let net = nodes[usize::from(BYZANTINE)]
        .net
        .clone()
        .expect("a multi-validator node has a network");
    eventually("the consortium finalizes blocks", 30, || {
        nodes.iter().all(|n| n.shared.head().height >= 1)
    })
    .await;

    // The votes must land in the receivers' window: above their finalized
    // view and at most 16 views ahead. Aim a few views past the latest
    // finalization (not one the Byzantine validator leads) and try again if
    // the chain was faster than the frames.
    let mut detected = false;
    for attempt in 0..5 {
        let height = nodes[0].shared.head().height;
        let finalized = block_of(&http, &nodes[0].url(), height)
            .await
            .finality
            .certificate
            .view;
        let mut view = finalized + 3;
        if view % 4 == u64::from(BYZANTINE) {
            view += 1;
        }
        for block in [[0xB1; 32], [0xB2; 32]] {
            let vote = Vote::sign(
                &key,
                BYZANTINE,
                &chain,
                VoteKind::Notarize,
                view,
                Digest(block),
            );
            net.broadcast(codec::to_bytes(&Frame::Message(Message::Vote(vote))))
                .expect("frame queued");
        }
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(3);
        while tokio::time::Instant::now() < deadline {
            if !evidence_of(&http, &nodes[0].url()).await.is_empty() {
                detected = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        if detected {
            break;
        }
        eprintln!("attempt {attempt}: no evidence yet (view {view}); again");
    }
    assert!(detected, "an honest node detected the equivocation");

    // Every node, the accused one included, ends up with the evidence
    // recorded by a finalized block.
    let mut lists = Vec::new();
    for node in &nodes {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
        let list = loop {
            let list = evidence_of(&http, &node.url()).await;
            if list.iter().any(|e| e.status == EvidenceStatus::Recorded) {
                break list;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "node {} never recorded the evidence: {list:?}",
                node.url()
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        };
        lists.push(list);
    }
    let recorded: Vec<&EvidenceEntry> = lists
        .iter()
        .map(|list| {
            assert_eq!(list.len(), 1, "one offence, listed once: {list:?}");
            &list[0]
        })
        .collect();
    let first = recorded[0];
    assert_eq!(first.validator, BYZANTINE);
    assert_eq!(first.org, "regulator");
    assert_eq!(first.kind, EvidenceKind::ConflictingNotarize);
    for (i, entry) in recorded.iter().enumerate() {
        assert_eq!(*entry, first, "node {i} lists the same recorded evidence");
    }
    let set = four.genesis.validator_set();
    let proved = first
        .evidence
        .verify(&set)
        .expect("verifies against the genesis");
    assert_eq!(proved.signer, BYZANTINE);

    // The recording block is the same on every node, its header commits to
    // exactly this evidence, and its finality certificate is a quorum.
    let height = first.height.expect("a recorded entry has a height");
    for node in &nodes {
        let block = block_of(&http, &node.url(), height).await;
        assert_eq!(Some(block.hash), first.block);
        assert_eq!(
            block.header.evidence_root,
            evidence::root(std::slice::from_ref(&first.evidence))
        );
        assert!(block.finality.certificate.signatures.len() >= 3);
    }

    // The chain keeps finalizing after recording (and does not record the
    // offence twice).
    let after = nodes[0].shared.head().height + 2;
    eventually("the chain keeps going", 30, || {
        nodes.iter().all(|n| n.shared.head().height >= after)
    })
    .await;
    for node in &nodes {
        let list = evidence_of(&http, &node.url()).await;
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].height, Some(height));
    }
    for node in nodes {
        node.shutdown().await;
    }
}
