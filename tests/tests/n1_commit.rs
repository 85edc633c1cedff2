//! A single-validator node commits what it accepts, proves it with receipts
//! that verify offline, indexes it, and keeps it across restarts.

use crate::support::{Consortium, client, commissioning, lot_uri};
use lotline_core::api::{Status, Wait};

/// Goal: `wait=committed` answers with a receipt that verifies against the
/// genesis alone, and the attestation, block and head agree with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_submit_returns_a_receipt_that_verifies_offline() {
    let consortium = Consortium::new();
    let node = consortium.start().await;
    let client = client(&node);
    let envelope = consortium.attest("supplier", commissioning("LOT-A1"));
    let result = client
        .submit(&envelope, Wait::Committed)
        .await
        .expect("submit");
    assert_eq!(result.status, Status::Committed);
    let receipt = result.receipt.expect("receipt");
    let verified = consortium
        .genesis
        .verify_receipt(&receipt)
        .expect("receipt verifies");
    assert_eq!(verified.id, envelope.id());
    assert_eq!(Some(verified.height), result.height);

    let view = client
        .attestation(&envelope.id())
        .await
        .expect("attestation");
    assert_eq!(view.status, Status::Committed);
    assert_eq!(view.org, "supplier");
    assert_eq!(view.statement["event"]["bizStep"], "commissioning");
    assert_eq!(
        client.receipt(&envelope.id()).await.expect("receipt"),
        receipt
    );
    let head = client.head().await.expect("head");
    assert_eq!(head.height, verified.height);
    assert_eq!(head.chain_id, consortium.genesis.chain_id());
    let block = client.block(verified.height).await.expect("block");
    assert!(block.attestations.contains(&envelope.id()));
    node.shutdown().await;
}

/// Goal: a batch commits its good items and rejects each bad one on its own,
/// with the reason; listings by identifier and org find what was committed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_items_are_judged_one_by_one_and_indexed() {
    let consortium = Consortium::new();
    let node = consortium.start().await;
    let client = client(&node);
    let good: Vec<_> = (0..20)
        .map(|i| consortium.attest("supplier", commissioning(&format!("LOT-B{i}"))))
        .collect();
    let mut batch = good.clone();
    // The regulator may not commission lots.
    batch.insert(5, consortium.attest("regulator", commissioning("LOT-R")));
    // A replay of an item in the same batch.
    batch.push(good[0].clone());
    let result = client
        .submit_batch(&batch, Wait::Committed)
        .await
        .expect("batch");
    assert_eq!((result.accepted, result.rejected), (20, 2));
    let problem = result.results[5]
        .problem
        .as_ref()
        .expect("rejected item has a problem");
    assert_eq!(problem.slug(), "policy-denied");
    assert_eq!(
        result.results[21]
            .problem
            .as_ref()
            .expect("duplicate")
            .slug(),
        "duplicate"
    );
    for (i, r) in result
        .results
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 5 && *i != 21)
    {
        assert_eq!(r.status, Status::Committed, "item {i}");
        consortium
            .genesis
            .verify_receipt(r.receipt.as_ref().expect("receipt"))
            .expect("verifies");
    }

    let listing = client
        .by_identifier(&lot_uri("LOT-B3"), None, None)
        .await
        .expect("listing");
    assert_eq!(listing.items.len(), 1);
    assert_eq!(listing.items[0].id, good[3].id());
    // The EPC URN of the same lot finds the same attestation.
    let urn = "urn:epc:class:lgtin:9506000.013435.LOT-B3";
    let by_urn = client
        .by_identifier(urn, None, None)
        .await
        .expect("listing by URN");
    assert_eq!(by_urn.items, listing.items);

    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = client
            .by_org("supplier", Some(7), after.as_deref())
            .await
            .expect("page");
        seen.extend(page.items.iter().map(|s| s.id));
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(
        seen.len(),
        20,
        "paging returns every supplier attestation exactly once"
    );
    node.shutdown().await;
}

/// Goal: committed data survives a clean restart and the chain continues.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_keeps_the_chain_and_continues_it() {
    let consortium = Consortium::new();
    let node = consortium.start().await;
    let first = consortium.attest("supplier", commissioning("LOT-C1"));
    let r1 = client(&node)
        .submit(&first, Wait::Committed)
        .await
        .expect("submit");
    node.shutdown().await;

    let node = consortium.start().await;
    let client = client(&node);
    assert_eq!(
        client
            .receipt(&first.id())
            .await
            .expect("receipt after restart"),
        r1.receipt.expect("receipt")
    );
    let replay = client
        .submit(&first, Wait::Committed)
        .await
        .expect_err("replay after restart");
    assert_eq!(replay.problem().expect("problem").slug(), "duplicate");
    let second = consortium.attest("supplier", commissioning("LOT-C2"));
    let r2 = client
        .submit(&second, Wait::Committed)
        .await
        .expect("submit");
    assert_eq!(r2.height, Some(2));
    consortium
        .genesis
        .verify_receipt(&r2.receipt.expect("receipt"))
        .expect("verifies");
    node.shutdown().await;
}
