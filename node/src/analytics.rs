//! The analytics projection in the node: the store as its block source, and
//! the follower thread's start and stop (see the `lotline-analytics` crate
//! and docs/analytics.md).
//!
//! The follower reads what the store has applied, by height, on a thread of
//! its own: the commit path neither waits for it nor knows it exists. Its
//! folder is `<data-dir>/analytics`; deleting it rebuilds the projection
//! from block 1 at the next start.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use lotline_analytics::{Catalog, CommittedBlock, Projection, ProjectionError, Source};
use lotline_genesis::Genesis;
use prometheus_client::metrics::gauge::Gauge;

use crate::store::index::Position;
use crate::store::{StoreError, StoreReader};

/// The projection's folder in a node's data directory.
pub fn dir(data_dir: &Path) -> PathBuf {
    data_dir.join("analytics")
}

/// Committed blocks from the store's read side.
#[derive(Debug, Clone)]
pub struct StoreSource(pub StoreReader);

impl Source for StoreSource {
    type Error = StoreError;

    fn height(&self) -> Result<u64, StoreError> {
        self.0.applied_height()
    }

    fn block(&self, height: u64) -> Result<Option<CommittedBlock>, StoreError> {
        let Some(meta) = self.0.block(height)? else {
            return Ok(None);
        };
        let mut attestations = Vec::with_capacity(meta.ids.len());
        for index in 0..meta.ids.len() {
            let at = Position {
                height,
                index: u32::try_from(index).unwrap_or(u32::MAX),
            };
            let (id, stored) = self.0.attestation_at(at)?.ok_or(StoreError::Missing {
                what: "attestation",
                at,
            })?;
            attestations.push((id.to_string(), stored.envelope));
        }
        Ok(Some(CommittedBlock {
            height,
            timestamp_ms: meta.header.timestamp_ms,
            attestations,
        }))
    }
}

/// Queries that run at once: each may hold its memory limit
/// ([`lotline_analytics::sql::Limits`]), so this bounds the memory SQL can
/// take on a node. A query that finds no slot within [`QUERY_WAIT`] is
/// answered 503.
pub const QUERIES_MAX: usize = 2;
pub const QUERY_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Worker threads of the SQL runtime: DataFusion's work for every query
/// runs there, never on the runtime that serves the API and drives
/// consensus, so a heavy query competes for the CPU only through the OS
/// scheduler, as one more thread.
pub const SQL_THREADS: usize = 1;

/// The projection's gauges on `/metrics`.
#[derive(Debug, Default)]
struct Gauges {
    height: Gauge,
    lag_blocks: Gauge,
    files: Gauge,
    rows: Gauge,
    queries_running: Gauge,
}

/// A running follower, the catalog queries read, and the runtime they run
/// on.
#[derive(Debug)]
pub struct Analytics {
    pub catalog: Arc<Catalog>,
    /// Slots for running queries ([`QUERIES_MAX`]).
    pub queries: Arc<tokio::sync::Semaphore>,
    /// Where [`Analytics::run`] puts SQL work (threads `lotline-sql`).
    sql: tokio::runtime::Handle,
    sql_runtime: Mutex<Option<tokio::runtime::Runtime>>,
    gauges: Gauges,
    stop: Arc<AtomicBool>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Analytics {
    /// Opens the projection in `data_dir` and starts following `reader`.
    pub fn start(
        data_dir: &Path,
        genesis: Arc<Genesis>,
        reader: StoreReader,
    ) -> Result<Analytics, ProjectionError> {
        let dir = dir(data_dir);
        let projection = Projection::open(&dir, genesis)?;
        tracing::info!(height = projection.height(), dir = %dir.display(), "analytics projection opened");
        let catalog = Catalog::new(dir, projection.manifest().clone());
        let stop = Arc::new(AtomicBool::new(false));
        let thread = lotline_analytics::follower::spawn(
            projection,
            StoreSource(reader),
            catalog.clone(),
            stop.clone(),
        )
        .map_err(|source| ProjectionError::Io {
            path: data_dir.to_owned(),
            source,
        })?;
        let sql_runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(SQL_THREADS)
            .thread_name("lotline-sql")
            .enable_all()
            .build()
            .map_err(|source| ProjectionError::Io {
                path: data_dir.to_owned(),
                source,
            })?;
        Ok(Analytics {
            catalog,
            queries: Arc::new(tokio::sync::Semaphore::new(QUERIES_MAX)),
            sql: sql_runtime.handle().clone(),
            sql_runtime: Mutex::new(Some(sql_runtime)),
            gauges: Gauges::default(),
            stop,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Runs `work` (a query and the encoding of its answer) on the SQL
    /// runtime and waits for it there; `None` if that runtime has stopped.
    pub async fn run<T: Send + 'static>(
        &self,
        work: impl std::future::Future<Output = T> + Send + 'static,
    ) -> Option<T> {
        self.sql.spawn(work).await.ok()
    }

    /// Registers the projection's gauges (`/metrics`; docs/analytics.md,
    /// "Metrics"), once at start.
    pub fn register_metrics(&self, r: &mut prometheus_client::registry::Registry) {
        let g = &self.gauges;
        for (name, help, gauge) in [
            (
                "lotline_analytics_height",
                "Height up to which the analytics projection (what SQL and exports read) holds every block",
                &g.height,
            ),
            (
                "lotline_analytics_lag_blocks",
                "Blocks committed to the store but not yet in the analytics projection",
                &g.lag_blocks,
            ),
            (
                "lotline_analytics_files",
                "Parquet files of the analytics projection",
                &g.files,
            ),
            (
                "lotline_analytics_rows",
                "Rows in the analytics projection, over all tables",
                &g.rows,
            ),
            (
                "lotline_analytics_queries_running",
                "SQL queries running now (at most QUERIES_MAX)",
                &g.queries_running,
            ),
        ] {
            r.register(name, help, gauge.clone());
        }
    }

    /// Sets the gauges from the current manifest and the store's `height`
    /// (the lag is what SQL does not see yet); called when `/metrics` is
    /// served.
    pub fn sample_metrics(&self, height: u64) {
        let manifest = self.catalog.snapshot();
        let running = QUERIES_MAX.saturating_sub(self.queries.available_permits());
        let clamp = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        let g = &self.gauges;
        g.height.set(clamp(manifest.height));
        g.lag_blocks
            .set(clamp(height.saturating_sub(manifest.height)));
        g.files.set(clamp(manifest.files.len() as u64));
        g.rows
            .set(clamp(manifest.files.iter().map(|f| f.rows).sum()));
        g.queries_running.set(clamp(running as u64));
    }

    /// Stops the follower after its last flush, and the SQL runtime
    /// (queries still running are dropped).
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
        let thread = crate::state::lock(&self.thread).take();
        if let Some(thread) = thread {
            let _ = thread.join();
        }
        if let Some(runtime) = crate::state::lock(&self.sql_runtime).take() {
            // Not a blocking shutdown: this may run inside the API's runtime.
            runtime.shutdown_background();
        }
    }
}

impl Drop for Analytics {
    fn drop(&mut self) {
        // Dropping a runtime blocks, which panics inside another runtime.
        if let Some(runtime) = crate::state::lock(&self.sql_runtime).take() {
            runtime.shutdown_background();
        }
    }
}

/// `lotline export`, `lotline export verify` and `lotline sql`: the
/// operator's commands over a data directory's projection.
pub mod cli {
    use std::io::{IsTerminal, Write};
    use std::path::{Path, PathBuf};
    use std::process::ExitCode;
    use std::sync::Arc;
    use std::time::Instant;

    use anyhow::{Context, Result, bail};
    use lotline_analytics::answer::{self, Format};
    use lotline_analytics::export::{self, Progress, Target};
    use lotline_analytics::manifest::{self, Manifest};
    use lotline_analytics::remote;
    use lotline_analytics::sql::{self, Limits, Visibility};
    use lotline_analytics::{Catalog, Projection};
    use lotline_genesis::Genesis;

    use super::StoreSource;
    use crate::access::{self, Caller, Identity};
    use crate::governance::Governance;
    use crate::store::Store;

    /// The projection's manifest in `data_dir`, first caught up with the
    /// store when `genesis` is given (the node must be stopped: the store
    /// is opened for writing). With `genesis`, also the membership in force
    /// after the store's last block (orgs, roles and read policy as votes
    /// left them): what `--org` is judged by.
    fn projection(
        data_dir: &Path,
        genesis: Option<&Path>,
    ) -> Result<(PathBuf, Manifest, Option<Arc<Genesis>>)> {
        let dir = super::dir(data_dir);
        let mut rules = None;
        if let Some(path) = genesis {
            let genesis = Arc::new(Genesis::load(path)?);
            let governance = Arc::new(Governance::new(genesis.clone()));
            let (store, _) = Store::open(data_dir, governance.clone())
                .context("opening the store (is the node still running?)")?;
            let mut projection = Projection::open(&dir, genesis.clone())?;
            let source = StoreSource(store.reader());
            let height = lotline_analytics::follower::catch_up(&mut projection, &source, None)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            projection.delete_retired(std::time::Duration::ZERO);
            eprintln!("projection caught up to height {height}");
            // The store learnt the history while it opened the log.
            rules = Some(governance.rules_now());
        }
        let manifest = Manifest::load(&dir)?.with_context(|| {
            format!(
                "no projection in {} (start the node, or pass --genesis)",
                dir.display()
            )
        })?;
        Ok((dir, manifest, rules))
    }

    /// Every row, or the rows `org` reads by the API's read rule under
    /// `rules` (the membership in force).
    fn visibility(org: Option<&str>, rules: Option<Arc<Genesis>>) -> Result<Visibility> {
        let Some(org) = org else {
            return Ok(Visibility::All);
        };
        let Some(rules) = rules else {
            bail!(
                "--org needs --genesis: an org's rows are judged by the membership in force, \
                 read from the store (the node must be stopped)"
            );
        };
        let Some(member) = rules.org(org) else {
            bail!("{org} is not a member org of the membership in force");
        };
        let identity = Identity::Caller(Caller {
            org: org.to_owned(),
            role: member.role,
            credential: "lotline-cli".into(),
            operator: false,
        });
        Ok(Visibility::org(org, move |facts| {
            access::can_read_facts(&rules, &identity, facts)
        }))
    }

    /// `--to DIR` or `--to s3://bucket/prefix`; for S3 the `AWS_*`
    /// variables of the environment configure the client
    /// (`lotline_analytics::remote`).
    pub fn target(to: &str) -> Result<Target> {
        Ok(Target::parse(to, std::env::vars())?)
    }

    pub fn export(
        data_dir: &Path,
        genesis: Option<&Path>,
        to: &Target,
        org: Option<&str>,
    ) -> Result<()> {
        let (dir, manifest, rules) = projection(data_dir, genesis)?;
        let audience = visibility(org, rules)?;
        let started = Instant::now();
        let terminal = std::io::stderr().is_terminal();
        let mut last_log = Instant::now();
        let out = export::export(&dir, &manifest, &audience, to, |p: Progress| {
            let seconds = started.elapsed().as_secs_f64().max(1e-3);
            let rate = p.rows_read as f64 / seconds;
            let left = (p.rows_total - p.rows_read) as f64 / rate.max(1.0);
            let line = format!(
                "{}/{} files, {} rows read, {} written, {:.0} rows/s, {:.0} s left",
                p.files_done, p.files_total, p.rows_read, p.rows_written, rate, left
            );
            if terminal {
                eprint!("\r{line}   ");
            } else if last_log.elapsed().as_secs() >= 5 || p.files_done == p.files_total {
                tracing::info!("export: {line}");
                last_log = Instant::now();
            }
        })?;
        if terminal {
            eprintln!();
        }
        let rows: u64 = out.files.iter().map(|f| f.rows).sum();
        println!(
            "exported {} files, {rows} rows, heights 1..={}, reader {} to {} in {:.1} s",
            out.files.len(),
            out.height,
            out.reader,
            to,
            started.elapsed().as_secs_f64()
        );
        Ok(())
    }

    /// 0 if every file matches the manifest, 1 if any does not (each
    /// mismatch named), 2 if the manifest cannot be read.
    pub fn verify(at: &Target) -> ExitCode {
        let verified = match at {
            Target::Dir(dir) => manifest::verify(dir).map_err(anyhow::Error::from),
            Target::S3(location) => remote::block_on(remote::verify(location))
                .map_err(anyhow::Error::from)
                .and_then(|v| v.map_err(anyhow::Error::from)),
        };
        match verified {
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::from(2)
            }
            Ok(v) if v.mismatches.is_empty() => {
                println!(
                    "OK   {at}: {} files, {} rows, {} bytes, heights 1..={}, reader {}, chain {}",
                    v.files,
                    v.rows,
                    v.bytes,
                    v.manifest.height,
                    v.manifest.reader,
                    v.manifest.chain_id
                );
                ExitCode::SUCCESS
            }
            Ok(v) => {
                for m in &v.mismatches {
                    println!("FAIL {m}");
                }
                ExitCode::from(1)
            }
        }
    }

    pub fn sql(
        data_dir: &Path,
        genesis: Option<&Path>,
        org: Option<&str>,
        format: &str,
        text: &str,
    ) -> Result<()> {
        let Some(format) = Format::parse(format) else {
            bail!("unknown format {format:?}: json, csv, arrow or parquet");
        };
        let (dir, manifest, rules) = projection(data_dir, genesis)?;
        let catalog = Catalog::new(dir, manifest);
        let who = visibility(org, rules)?;
        let limits = match format {
            Format::Json => Limits::default(),
            _ => Limits::download(),
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?;
        let answer = runtime
            .block_on(sql::query(&catalog, &who, text, limits))
            .map_err(|e| anyhow::anyhow!("{} ({})", e, e.reason()))?;
        let bytes = answer::encode(&answer, format)?;
        std::io::stdout().write_all(&bytes)?;
        if format == Format::Json {
            println!();
        }
        Ok(())
    }
}
