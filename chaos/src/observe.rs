//! Watching the nodes from outside, over their public API only.
//!
//! Per node, one task samples `GET /v1/head` every [`HEAD_EVERY`] (the
//! heights the recovery times are measured on) and one task walks
//! `GET /v1/blocks/{h}` up to that head, comparing each block hash with
//! the hash the first node to report height `h` gave: a difference is a
//! fork. Frozen, killed and cut-off nodes simply stop answering; their
//! tasks retry until they answer again.
//!
//! A node's head must never go down, not even across a SIGKILL and
//! restart: a committed block is durable before anyone is told.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lotline_core::BlockHash;
use lotline_sdk::Client;

use crate::report::Violations;

pub const HEAD_EVERY: Duration = Duration::from_millis(100);
/// A frozen node never answers; the sampler gives up on a request after
/// this long and tries again.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

/// The last head a node reported, and when.
#[derive(Clone, Copy, Debug)]
pub struct HeadSample {
    pub height: u64,
    pub at: Instant,
}

#[derive(Debug, Default)]
struct NodeWatch {
    head: Mutex<Option<HeadSample>>,
    /// Highest height whose block hash was compared.
    compared: AtomicU64,
}

#[derive(Debug)]
pub struct Observer {
    nodes: Vec<NodeWatch>,
    /// Height -> (hash, node that reported it first); pruned below the
    /// height every node has been compared up to.
    chain: Mutex<BTreeMap<u64, (BlockHash, usize)>>,
    forks: AtomicU64,
    blocks_compared: AtomicU64,
    violations: Arc<Violations>,
    stop: AtomicBool,
}

impl Observer {
    pub fn new(nodes: usize, violations: Arc<Violations>) -> Observer {
        Observer {
            nodes: (0..nodes).map(|_| NodeWatch::default()).collect(),
            chain: Mutex::new(BTreeMap::new()),
            forks: AtomicU64::new(0),
            blocks_compared: AtomicU64::new(0),
            violations,
            stop: AtomicBool::new(false),
        }
    }

    /// Starts the sampler and block walker of every node.
    pub fn spawn(
        self: &Arc<Self>,
        urls: &[String],
    ) -> anyhow::Result<Vec<tokio::task::JoinHandle<()>>> {
        let mut tasks = Vec::new();
        for (i, url) in urls.iter().enumerate() {
            let client = Client::new(url)?.with_timeout(REQUEST_TIMEOUT);
            tasks.push(tokio::spawn(self.clone().sample_heads(i, client.clone())));
            tasks.push(tokio::spawn(self.clone().walk_blocks(i, client)));
        }
        Ok(tasks)
    }

    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    pub fn head(&self, node: usize) -> Option<HeadSample> {
        self.nodes.get(node)?.head.lock().ok().and_then(|h| *h)
    }

    /// The highest head any of `nodes` reported.
    pub fn max_height_of(&self, nodes: impl IntoIterator<Item = usize>) -> u64 {
        nodes
            .into_iter()
            .filter_map(|n| self.head(n))
            .map(|h| h.height)
            .max()
            .unwrap_or(0)
    }

    pub fn max_height(&self) -> u64 {
        self.max_height_of(0..self.nodes.len())
    }

    /// Height up to which node `node`'s blocks were compared.
    pub fn compared(&self, node: usize) -> u64 {
        self.nodes
            .get(node)
            .map(|n| n.compared.load(Ordering::Relaxed))
            .unwrap_or(0)
    }

    pub fn forks(&self) -> u64 {
        self.forks.load(Ordering::Relaxed)
    }

    pub fn blocks_compared(&self) -> u64 {
        self.blocks_compared.load(Ordering::Relaxed)
    }

    async fn sample_heads(self: Arc<Self>, node: usize, client: Client) {
        let mut highest = 0u64;
        while !self.stop.load(Ordering::Relaxed) {
            if let Ok(head) = client.head().await {
                if head.height < highest {
                    self.violations.record(format!(
                        "n{node}'s head went back from height {highest} to {}: a committed block was lost",
                        head.height
                    ));
                }
                highest = highest.max(head.height);
                if let Ok(mut h) = self.nodes[node].head.lock() {
                    *h = Some(HeadSample {
                        height: head.height,
                        at: Instant::now(),
                    });
                }
            }
            tokio::time::sleep(HEAD_EVERY).await;
        }
    }

    async fn walk_blocks(self: Arc<Self>, node: usize, client: Client) {
        while !self.stop.load(Ordering::Relaxed) {
            let target = self.head(node).map(|h| h.height).unwrap_or(0);
            let mut next = self.compared(node) + 1;
            while next <= target && !self.stop.load(Ordering::Relaxed) {
                match client.block(next).await {
                    Ok(block) => {
                        self.compare(node, next, block.hash);
                        self.nodes[node].compared.store(next, Ordering::Relaxed);
                        next += 1;
                    }
                    Err(_) => break,
                }
            }
            self.prune();
            tokio::time::sleep(HEAD_EVERY).await;
        }
    }

    fn compare(&self, node: usize, height: u64, hash: BlockHash) {
        self.blocks_compared.fetch_add(1, Ordering::Relaxed);
        let Ok(mut chain) = self.chain.lock() else {
            return;
        };
        let (first, by) = *chain.entry(height).or_insert((hash, node));
        if first != hash {
            self.forks.fetch_add(1, Ordering::Relaxed);
            self.violations.record(format!(
                "fork at height {height}: n{by} has block {first}, n{node} has {hash}"
            ));
        }
    }

    /// Drops heights every node has been compared up to.
    fn prune(&self) {
        let low = (0..self.nodes.len())
            .map(|n| self.compared(n))
            .min()
            .unwrap_or(0);
        if let Ok(mut chain) = self.chain.lock() {
            // Keep the lowest common height, so late receipts still match.
            *chain = chain.split_off(&low);
        }
    }
}
