//! Node metrics, rendered in the Prometheus text format at `/metrics`.
//! Names follow `lotline_<concern>_<noun>_<unit>`.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

#[derive(Debug, Default)]
pub struct Metrics {
    pub blocks: AtomicU64,
    pub committed_attestations: AtomicU64,
    pub commit_micros_sum: AtomicU64,
    pub admitted: AtomicU64,
    pub rejected: AtomicU64,
    pub http_requests: AtomicU64,
    pub consensus_dropped: AtomicU64,
    pub consensus_evidence: AtomicU64,
    /// Proposals refused because they repeat an attestation seen before.
    pub consensus_repeat_proposals: AtomicU64,
    pub gossip_dropped: AtomicU64,
    /// Proposal-to-commit times of recent blocks (header timestamp to local
    /// commit), milliseconds, newest last; bounded.
    pub finality_ms: std::sync::Mutex<std::collections::VecDeque<u32>>,
}

/// How many recent finality times are kept.
pub const FINALITY_SAMPLES_MAX: usize = 65_536;

impl Metrics {
    /// Records a block's proposal-to-commit time.
    pub fn observe_finality(&self, proposed_ms: u64, now_ms: u64) {
        let ms = u32::try_from(now_ms.saturating_sub(proposed_ms)).unwrap_or(u32::MAX);
        let mut samples = self.finality_ms.lock().unwrap_or_else(|p| p.into_inner());
        if samples.len() == FINALITY_SAMPLES_MAX {
            samples.pop_front();
        }
        samples.push_back(ms);
    }

    pub fn observe_commit(&self, took: Duration, attestations: usize) {
        self.blocks.fetch_add(1, Relaxed);
        self.committed_attestations
            .fetch_add(attestations as u64, Relaxed);
        self.commit_micros_sum
            .fetch_add(took.as_micros() as u64, Relaxed);
    }

    pub fn render(&self, height: u64, mempool: usize) -> String {
        let mut out = String::new();
        let mut gauge = |name: &str, help: &str, kind: &str, value: f64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        };
        gauge(
            "lotline_store_height",
            "Height of the last committed block.",
            "gauge",
            height as f64,
        );
        gauge(
            "lotline_mempool_attestations",
            "Attestations waiting for a block.",
            "gauge",
            mempool as f64,
        );
        gauge(
            "lotline_consensus_blocks_total",
            "Blocks committed by this process.",
            "counter",
            self.blocks.load(Relaxed) as f64,
        );
        gauge(
            "lotline_store_committed_attestations_total",
            "Attestations committed by this process.",
            "counter",
            self.committed_attestations.load(Relaxed) as f64,
        );
        gauge(
            "lotline_store_commit_seconds_sum",
            "Time spent making blocks durable and indexed.",
            "counter",
            self.commit_micros_sum.load(Relaxed) as f64 / 1e6,
        );
        gauge(
            "lotline_admission_admitted_total",
            "Attestations admitted to the mempool.",
            "counter",
            self.admitted.load(Relaxed) as f64,
        );
        gauge(
            "lotline_admission_rejected_total",
            "Attestations rejected at admission.",
            "counter",
            self.rejected.load(Relaxed) as f64,
        );
        gauge(
            "lotline_api_requests_total",
            "HTTP requests served.",
            "counter",
            self.http_requests.load(Relaxed) as f64,
        );
        gauge(
            "lotline_consensus_dropped_total",
            "Consensus inputs dropped (bad, stale or far-future messages, full queues).",
            "counter",
            self.consensus_dropped.load(Relaxed) as f64,
        );
        gauge(
            "lotline_consensus_repeat_proposals_total",
            "Proposals refused because they repeat an attestation committed or in an ancestor.",
            "counter",
            self.consensus_repeat_proposals.load(Relaxed) as f64,
        );
        gauge(
            "lotline_consensus_evidence_total",
            "Equivocation evidence recorded.",
            "counter",
            self.consensus_evidence.load(Relaxed) as f64,
        );
        gauge(
            "lotline_mempool_gossip_dropped_total",
            "Attestations not gossiped because the network queue was full.",
            "counter",
            self.gossip_dropped.load(Relaxed) as f64,
        );
        out
    }
}
