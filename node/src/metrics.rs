//! Node metrics at `/metrics`, in the OpenMetrics text format
//! (`prometheus-client`), which Prometheus scrapes as it does its own.
//!
//! Names follow `lotline_<concern>_<noun>_<unit>`. Counters are registered
//! without their `_total` suffix and seconds with [`Unit::Seconds`]; the
//! encoder appends both, so a counter registered as
//! `lotline_consensus_blocks` is served as `lotline_consensus_blocks_total`
//! (and help texts end without a period: the encoder adds one).
//! Every metric is documented for operators in docs/operations.md
//! ("Metrics"); the alerting rules and the Grafana dashboard under
//! `monitoring/` use only names that a test finds on a running node.
//!
//! Latencies are histograms with one bucket layout ([`latency_buckets`]),
//! so quantiles come from Prometheus (`histogram_quantile`) over any window
//! and any number of nodes, and a node keeps a fixed few counters per
//! histogram instead of raw samples.
//!
//! Modules with metrics of their own (the network, the capture pipeline)
//! register them here once at start ([`Metrics::register`]); values that
//! live elsewhere (height, mempool, disk) are read when `/metrics` is
//! served ([`Sample`]).

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

/// The content type of the body [`Metrics::render`] returns.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Upper bounds of every latency histogram, seconds: 0.5 ms to about 64 s,
/// each 1.5 times the one before (30 buckets). One layout for all, so
/// panels and alerts can compare them; the factor bounds a quantile's
/// interpolation error to half a bucket.
pub fn latency_buckets() -> impl Iterator<Item = f64> {
    // Rounded to the microsecond, so bounds read `0.001125`, not
    // `0.0011250000000000002`.
    exponential_buckets(0.0005, 1.5, 30).map(|b| (b * 1e6).round() / 1e6)
}

fn latency() -> Histogram {
    Histogram::new(latency_buckets())
}

/// A gauge holding seconds (a float).
pub type SecondsGauge = Gauge<f64, AtomicU64>;

/// The labels of an HTTP request's latency: the route template (never the
/// concrete path, which would grow without bound), the method and the
/// status class.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    pub method: String,
    pub route: String,
    pub status: String,
}

/// Values read from other parts of the node when `/metrics` is served.
#[derive(Clone, Copy, Debug, Default)]
pub struct Sample {
    pub height: u64,
    pub mempool: usize,
    /// The node stopped after a storage error (`/health` is 503).
    pub failed: bool,
}

#[derive(Debug)]
pub struct Metrics {
    registry: Mutex<Registry>,
    data_dir: OnceLock<PathBuf>,
    height: Gauge,
    mempool: Gauge,
    failed: Gauge,
    disk_free_bytes: Gauge,
    block_log_bytes: Gauge,
    /// When the last block was committed (or the process started), Unix
    /// seconds: "no finalization for N seconds" is `time() - this`.
    last_commit: SecondsGauge,
    pub blocks: Counter,
    pub committed_attestations: Counter,
    pub admitted: Counter,
    pub rejected: Counter,
    pub http_requests: Counter,
    pub consensus_dropped: Counter,
    pub consensus_evidence: Counter,
    /// Proposals refused because they repeat an attestation seen before.
    pub consensus_repeat_proposals: Counter,
    /// Attestations a voter asked a proposer for: named by id in a
    /// proposal and in neither its mempool nor its gossip queue.
    pub consensus_bodies_wanted: Counter,
    /// Damaged block-log records replaced by verified copies from peers
    /// (`consensus::mend`).
    pub blocks_mended: Counter,
    pub gossip_dropped: Counter,
    /// Audit entries that could not be made durable (each one a 503).
    pub audit_write_failures: Counter,
    /// The whole commit of one block: from its block log append to its
    /// index write (the index trails on its own thread).
    pub commit_seconds: Histogram,
    /// Block log check, append and fdatasync of one block (the commit
    /// point).
    pub log_append_seconds: Histogram,
    /// One sled batch of the indexer: the records and indexes of every
    /// block queued behind the log (one block when it keeps up).
    pub index_apply_seconds: Histogram,
    /// fdatasync of the vote journal before votes are sent.
    pub vote_sync_seconds: Histogram,
    /// A block's header timestamp (its proposer's clock) to its local
    /// commit.
    pub finality_seconds: Histogram,
    /// A waiting submission's admission to its commit on this node.
    pub submit_commit_seconds: Histogram,
    /// HTTP requests by route, method and status class.
    pub http_seconds: Family<HttpLabels, Histogram, fn() -> Histogram>,
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let metrics = Metrics {
            registry: Mutex::new(Registry::default()),
            data_dir: OnceLock::new(),
            height: Gauge::default(),
            mempool: Gauge::default(),
            failed: Gauge::default(),
            disk_free_bytes: Gauge::default(),
            block_log_bytes: Gauge::default(),
            last_commit: SecondsGauge::default(),
            blocks: Counter::default(),
            committed_attestations: Counter::default(),
            admitted: Counter::default(),
            rejected: Counter::default(),
            http_requests: Counter::default(),
            consensus_dropped: Counter::default(),
            consensus_bodies_wanted: Counter::default(),
            consensus_evidence: Counter::default(),
            consensus_repeat_proposals: Counter::default(),
            blocks_mended: Counter::default(),
            gossip_dropped: Counter::default(),
            audit_write_failures: Counter::default(),
            commit_seconds: latency(),
            log_append_seconds: latency(),
            index_apply_seconds: latency(),
            vote_sync_seconds: latency(),
            finality_seconds: latency(),
            submit_commit_seconds: latency(),
            http_seconds: Family::new_with_constructor(latency),
        };
        metrics.last_commit.set(crate::clock::unix_seconds());
        metrics.register(|r| metrics.register_own(r));
        metrics
    }

    fn register_own(&self, r: &mut Registry) {
        r.register(
            "lotline_store_height",
            "Height of the last committed block",
            self.height.clone(),
        );
        r.register(
            "lotline_mempool_attestations",
            "Attestations waiting for a block",
            self.mempool.clone(),
        );
        r.register(
            "lotline_node_failed",
            "1 if the node stopped after a storage error (/health answers 503), else 0",
            self.failed.clone(),
        );
        r.register_with_unit(
            "lotline_store_disk_free",
            "Bytes free for this user on the data folder's file system",
            Unit::Bytes,
            self.disk_free_bytes.clone(),
        );
        r.register_with_unit(
            "lotline_store_block_log",
            "Size of the block log",
            Unit::Bytes,
            self.block_log_bytes.clone(),
        );
        r.register(
            "lotline_consensus_last_commit_timestamp_seconds",
            "Unix time of the last block committed by this process (its start time before the first)",
            self.last_commit.clone(),
        );
        let counters: [(&str, &str, &Counter); 12] = [
            (
                "lotline_consensus_blocks",
                "Blocks committed by this process",
                &self.blocks,
            ),
            (
                "lotline_store_committed_attestations",
                "Attestations committed by this process",
                &self.committed_attestations,
            ),
            (
                "lotline_admission_admitted",
                "Attestations admitted to the mempool",
                &self.admitted,
            ),
            (
                "lotline_admission_rejected",
                "Submissions rejected at admission",
                &self.rejected,
            ),
            (
                "lotline_api_requests",
                "HTTP requests answered (any status)",
                &self.http_requests,
            ),
            (
                "lotline_consensus_dropped",
                "Consensus inputs dropped (bad, stale or far-future messages, full queues)",
                &self.consensus_dropped,
            ),
            (
                "lotline_consensus_repeat_proposals",
                "Proposals refused because they repeat an attestation committed or in an ancestor",
                &self.consensus_repeat_proposals,
            ),
            (
                "lotline_consensus_bodies_wanted",
                "Attestations asked of a proposer because a proposal named them and gossip had not brought them",
                &self.consensus_bodies_wanted,
            ),
            (
                "lotline_block_log_mended_blocks",
                "Damaged block-log records the node replaced with verified copies from validators",
                &self.blocks_mended,
            ),
            (
                "lotline_consensus_evidence",
                "Equivocation evidence recorded",
                &self.consensus_evidence,
            ),
            (
                "lotline_mempool_gossip_dropped",
                "Attestations not gossiped because the network queue was full",
                &self.gossip_dropped,
            ),
            (
                "lotline_audit_write_failures",
                "Audit entries that could not be made durable; each refused its request with 503",
                &self.audit_write_failures,
            ),
        ];
        for (name, help, counter) in counters {
            r.register(name, help, counter.clone());
        }
        let histograms: [(&str, &str, &Histogram); 6] = [
            (
                "lotline_store_commit",
                "Committing one block: from its block log append to its index write (the index trails on its own thread)",
                &self.commit_seconds,
            ),
            (
                "lotline_store_log_append",
                "Checking one block, appending it to the block log and fdatasync'ing it (the commit point)",
                &self.log_append_seconds,
            ),
            (
                "lotline_store_index_apply",
                "One sled batch of the indexer: records and indexes of every block queued behind the log",
                &self.index_apply_seconds,
            ),
            (
                "lotline_consensus_vote_sync",
                "fdatasync of the vote journal before votes are sent",
                &self.vote_sync_seconds,
            ),
            (
                "lotline_consensus_finality",
                "A block's header timestamp (its proposer's clock) to its commit here",
                &self.finality_seconds,
            ),
            (
                "lotline_ingest_submit_commit",
                "A submission that waits for its commit: admission to commit on this node",
                &self.submit_commit_seconds,
            ),
        ];
        for (name, help, histogram) in histograms {
            r.register_with_unit(name, help, Unit::Seconds, histogram.clone());
        }
        r.register_with_unit(
            "lotline_api_request",
            "HTTP requests by route template, method and status class",
            Unit::Seconds,
            self.http_seconds.clone(),
        );
    }

    /// Lets a module register its own metrics (once, at start).
    pub fn register(&self, f: impl FnOnce(&mut Registry)) {
        f(&mut self.registry.lock().unwrap_or_else(|p| p.into_inner()));
    }

    /// The data folder whose disk and block log `/metrics` reports.
    pub fn watch_data_dir(&self, dir: &Path) {
        let _ = self.data_dir.set(dir.to_path_buf());
    }

    /// Records one committed block: `took` from the start of its block log
    /// append to its index write (the halves are timed where they run,
    /// `consensus/commit.rs`).
    pub fn observe_commit(&self, took: Duration, attestations: usize) {
        self.blocks.inc();
        self.committed_attestations.inc_by(attestations as u64);
        self.commit_seconds.observe(took.as_secs_f64());
        self.last_commit.set(crate::clock::unix_seconds());
    }

    /// Records a block's proposal-to-commit time (header timestamp to local
    /// commit, both Unix milliseconds). A proposer clock ahead of ours
    /// counts as 0.
    pub fn observe_finality(&self, proposed_ms: u64, now_ms: u64) {
        self.finality_seconds
            .observe(now_ms.saturating_sub(proposed_ms) as f64 / 1e3);
    }

    /// The OpenMetrics text of every registered metric ([`CONTENT_TYPE`]).
    pub fn render(&self, sample: Sample) -> String {
        self.height.set(clamp(sample.height));
        self.mempool.set(clamp(sample.mempool as u64));
        self.failed.set(i64::from(sample.failed));
        if let Some(dir) = self.data_dir.get() {
            if let Ok(free) = fs2::available_space(dir) {
                self.disk_free_bytes.set(clamp(free));
            }
            if let Ok(meta) = std::fs::metadata(dir.join("blocks.log")) {
                self.block_log_bytes.set(clamp(meta.len()));
            }
        }
        self.text()
    }

    /// The OpenMetrics text as it stands, without sampling the values read
    /// at serving time (in-process readers: benchmarks, tests).
    pub fn text(&self) -> String {
        let mut out = String::new();
        let registry = self.registry.lock().unwrap_or_else(|p| p.into_inner());
        // Writing into a String does not fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &registry);
        out
    }
}

/// Runs `f`, observing how long it took in `histogram`.
pub fn timed<T>(histogram: &Histogram, f: impl FnOnce() -> T) -> T {
    let started = std::time::Instant::now();
    let out = f();
    histogram.observe(started.elapsed().as_secs_f64());
    out
}

fn clamp(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// The classic buckets of one histogram series read back from OpenMetrics
/// text: what a benchmark or test that runs a node in-process uses to get
/// quantiles, the way Prometheus's `histogram_quantile` does.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Buckets {
    /// (upper bound, cumulative count), ascending; the last is `+Inf`.
    pub cumulative: Vec<(f64, u64)>,
}

impl Buckets {
    /// The `<name>_bucket` series without labels other than `le` in `text`
    /// (`name` with its unit, e.g. `lotline_consensus_finality_seconds`).
    pub fn parse(text: &str, name: &str) -> Buckets {
        let prefix = format!("{name}_bucket{{le=\"");
        let mut cumulative = Vec::new();
        for line in text.lines() {
            let Some(rest) = line.strip_prefix(&prefix) else {
                continue;
            };
            let Some((le, count)) = rest.split_once("\"} ") else {
                continue;
            };
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                match le.parse() {
                    Ok(v) => v,
                    Err(_) => continue,
                }
            };
            if let Ok(count) = count.trim().parse() {
                cumulative.push((le, count));
            }
        }
        Buckets { cumulative }
    }

    /// Observations counted.
    pub fn count(&self) -> u64 {
        self.cumulative.last().map_or(0, |&(_, c)| c)
    }

    /// The observations made after `earlier` (the same series read before).
    pub fn since(&self, earlier: &Buckets) -> Buckets {
        let cumulative = self
            .cumulative
            .iter()
            .map(|&(le, count)| {
                let before = earlier
                    .cumulative
                    .iter()
                    .find(|&&(l, _)| l == le)
                    .map_or(0, |&(_, c)| c);
                (le, count.saturating_sub(before))
            })
            .collect();
        Buckets { cumulative }
    }

    /// The `q` quantile, interpolated linearly inside its bucket as
    /// Prometheus does; `None` without observations. A quantile in the
    /// `+Inf` bucket is reported as the highest finite bound.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        let rank = q.clamp(0.0, 1.0) * total as f64;
        let mut lower = (0.0, 0u64);
        for &(le, count) in &self.cumulative {
            if count as f64 >= rank {
                if le.is_infinite() {
                    return Some(lower.0);
                }
                let in_bucket = (count - lower.1) as f64;
                if in_bucket == 0.0 {
                    return Some(le);
                }
                return Some(lower.0 + (le - lower.0) * (rank - lower.1 as f64) / in_bucket);
            }
            lower = (le, count);
        }
        Some(lower.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Goal: the names tests, benches and dashboards read are served, with
    /// the counter and unit suffixes the encoder adds, and a histogram's
    /// buckets read back into the quantile its observations imply.
    #[test]
    fn renders_names_and_histograms_that_read_back() {
        let metrics = Metrics::new();
        metrics.observe_commit(Duration::from_millis(4), 5);
        for ms in [10u64, 20, 30, 40, 1000] {
            metrics.observe_finality(0, ms);
        }
        let text = metrics.render(Sample {
            height: 7,
            mempool: 2,
            failed: false,
        });
        for line in [
            "lotline_store_height 7",
            "lotline_mempool_attestations 2",
            "lotline_node_failed 0",
            "lotline_consensus_blocks_total 1",
            "lotline_store_committed_attestations_total 5",
            "lotline_store_commit_seconds_count 1",
            "lotline_consensus_finality_seconds_count 5",
            "# EOF",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }
        let buckets = Buckets::parse(&text, "lotline_consensus_finality_seconds");
        assert_eq!(buckets.count(), 5);
        assert_eq!(buckets.cumulative.len(), 31);
        let median = buckets.quantile(0.5).expect("observations");
        // Rank 2.5 of 5 lies between 20 ms and 30 ms: in the bucket
        // 28.8-43.2 ms that holds the third observation.
        assert!((0.0288..=0.0433).contains(&median), "{median}");
        let p99 = buckets.quantile(0.99).expect("observations");
        assert!((0.6..=1.3).contains(&p99), "{p99}");
        assert_eq!(buckets.since(&buckets).count(), 0);
        assert_eq!(Buckets::default().quantile(0.5), None);
    }

    #[test]
    fn a_proposer_clock_ahead_counts_as_zero() {
        let metrics = Metrics::new();
        metrics.observe_finality(5_000, 1_000);
        let text = metrics.render(Sample::default());
        let buckets = Buckets::parse(&text, "lotline_consensus_finality_seconds");
        assert_eq!(buckets.cumulative.first().map(|b| b.1), Some(1));
    }
}
