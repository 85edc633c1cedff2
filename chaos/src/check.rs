//! The end-of-run checks, on every node, after the last fault is healed
//! and the load has stopped:
//!
//! 1. every node reaches the highest head any node reported (convergence);
//! 2. every node's blocks have been compared with the others' up to there
//!    (the observer's walk; a mismatch is a fork);
//! 3. every acknowledged attestation has, on every node, a receipt that
//!    verifies offline against the genesis and names the block the
//!    acknowledging receipt named (a missing one is a lost write). Nodes
//!    often serve byte-identical receipts; bytes already verified (by the
//!    writer at acknowledgement, or on another node) are not verified
//!    again: the verdict is a pure function of the bytes and the genesis;
//! 4. in-doubt attestations are looked up, for the figures only.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use lotline_core::AttestationId;
use lotline_core::api::Status;
use lotline_genesis::Genesis;
use lotline_sdk::{Client, SdkError};

use crate::load::{Acked, ReceiptDigest, receipt_digest};
use crate::observe::Observer;
use crate::report::Violations;

/// How long the nodes get to agree on one height once every fault is
/// healed, and for the observer to compare every block up to it.
const CONVERGE_LIMIT: Duration = Duration::from_secs(60);
const COMPARE_LIMIT: Duration = Duration::from_secs(180);
/// Receipt requests in flight per node.
const CONCURRENCY: usize = 16;
const ATTEMPTS: usize = 5;

#[derive(Debug, Default)]
pub struct CheckFigures {
    pub final_height: u64,
    /// Acknowledged ids missing (or not provable) on at least one node.
    pub lost: usize,
    /// Per node: receipts checked, missing, not verifying.
    pub per_node: Vec<(usize, usize, usize)>,
    pub in_doubt_committed: usize,
    pub in_doubt_not_committed: usize,
    pub check_time: Duration,
}

pub async fn run(
    urls: &[String],
    reader_token: &str,
    genesis: &Genesis,
    observer: &Observer,
    acked: Vec<Acked>,
    in_doubt: Vec<AttestationId>,
    violations: &Violations,
) -> anyhow::Result<CheckFigures> {
    let started = Instant::now();
    let n = urls.len();
    let target = observer.max_height();
    let since = Instant::now();
    wait_for(CONVERGE_LIMIT, || {
        (0..n).all(|i| {
            observer
                .head(i)
                .is_some_and(|h| h.at > since && h.height >= target)
        })
    })
    .await;
    for i in 0..n {
        let h = observer.head(i).map(|h| h.height).unwrap_or(0);
        if h < target {
            violations.record(format!(
                "n{i} is at height {h}, {CONVERGE_LIMIT:?} after the last heal the others reached {target}"
            ));
        }
    }
    wait_for(COMPARE_LIMIT, || {
        (0..n).all(|i| observer.compared(i) >= target)
    })
    .await;
    for i in 0..n {
        let compared = observer.compared(i);
        if compared < target {
            violations.record(format!(
                "n{i}'s blocks were compared only up to height {compared} of {target}"
            ));
        }
    }

    let acked = Arc::new(acked);
    let genesis = Arc::new(genesis.clone());
    let verified: Verified = Arc::new(Mutex::new(acked.iter().map(|a| a.receipt).collect()));
    let mut tasks = Vec::new();
    for (i, url) in urls.iter().enumerate() {
        let client = Client::new(url)?
            .with_bearer_token(reader_token.to_owned())
            .with_timeout(Duration::from_secs(10));
        let (acked, genesis, verified) = (acked.clone(), genesis.clone(), verified.clone());
        tasks.push(tokio::spawn(async move {
            let results: Vec<(AttestationId, Result<(), String>)> =
                futures::stream::iter(acked.iter().copied())
                    .map(|a| {
                        let (client, genesis, verified) =
                            (client.clone(), genesis.clone(), verified.clone());
                        async move { (a.id, check_receipt(&client, &genesis, &verified, &a).await) }
                    })
                    .buffer_unordered(CONCURRENCY)
                    .collect()
                    .await;
            (i, results)
        }));
    }
    let mut lost = std::collections::BTreeSet::new();
    let mut per_node = Vec::new();
    for task in tasks {
        let (i, results) = task.await?;
        let (mut missing, mut bad) = (0, 0);
        for (id, result) in &results {
            if let Err(why) = result {
                lost.insert(*id);
                if why.starts_with("missing") {
                    missing += 1;
                } else {
                    bad += 1;
                }
                // One line per problem would drown the summary in a bad run.
                if missing + bad <= 20 {
                    violations.record(format!("n{i}: acknowledged attestation {id}: {why}"));
                }
            }
        }
        if missing + bad > 20 {
            violations.record(format!(
                "n{i}: {} more acknowledged attestations missing or unprovable",
                missing + bad - 20
            ));
        }
        per_node.push((results.len(), missing, bad));
    }

    // In-doubt outcomes, from the first node (figures only: an in-doubt
    // attestation may legitimately have been committed or not).
    let client = Client::new(&urls[0])?
        .with_bearer_token(reader_token.to_owned())
        .with_timeout(Duration::from_secs(10));
    let statuses: Vec<bool> = futures::stream::iter(in_doubt)
        .map(|id| {
            let client = client.clone();
            async move {
                matches!(client.attestation(&id).await, Ok(v) if v.status == Status::Committed)
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    let in_doubt_committed = statuses.iter().filter(|c| **c).count();
    Ok(CheckFigures {
        final_height: target,
        lost: lost.len(),
        per_node,
        in_doubt_committed,
        in_doubt_not_committed: statuses.len() - in_doubt_committed,
        check_time: started.elapsed(),
    })
}

/// The receipt of `a` on one node, verified; retried on transport errors.
/// Digests of receipt bytes that verified.
type Verified = Arc<Mutex<HashSet<ReceiptDigest>>>;

async fn check_receipt(
    client: &Client,
    genesis: &Arc<Genesis>,
    verified: &Verified,
    a: &Acked,
) -> Result<(), String> {
    let mut last = String::new();
    for attempt in 0..ATTEMPTS {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
        }
        match client.receipt(&a.id).await {
            Ok(receipt) => {
                let digest = receipt_digest(&receipt);
                let known = verified.lock().is_ok_and(|set| set.contains(&digest));
                let (id, height, block) = if known {
                    let header = &receipt.header;
                    (receipt.attestation.id(), header.height, header.hash())
                } else {
                    // Off the runtime's threads: a debug build spends
                    // milliseconds per verification.
                    let genesis = genesis.clone();
                    let v = tokio::task::spawn_blocking(move || genesis.verify_receipt(&receipt))
                        .await
                        .map_err(|e| format!("verification task: {e}"))?
                        .map_err(|e| format!("receipt does not verify: {e}"))?;
                    if let Ok(mut set) = verified.lock() {
                        set.insert(digest);
                    }
                    (v.id, v.height, v.block)
                };
                if id != a.id {
                    return Err(format!("the node served the receipt of {id} instead"));
                }
                if block != a.block || height != a.height {
                    return Err(format!(
                        "receipt names block {block} at height {height}, the acknowledgement named {} at {}",
                        a.block, a.height
                    ));
                }
                return Ok(());
            }
            Err(SdkError::Rejected { status: 404, .. }) => {
                return Err("missing (404: no committed attestation)".into());
            }
            Err(e) => last = e.to_string(),
        }
    }
    Err(format!("no answer after {ATTEMPTS} attempts: {last}"))
}

async fn wait_for(limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline && !done() {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
