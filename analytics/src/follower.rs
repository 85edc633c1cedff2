//! The follower: keeps a [`Projection`] up with the chain, off the
//! consensus path.
//!
//! It runs on its own thread and reads committed blocks by height from a
//! [`Source`] (the node's store reader) after they are applied; consensus
//! never waits for it. It adds blocks until it is caught up or its buffer
//! is full, then flushes (files, then manifest), publishes the new manifest
//! to the [`Catalog`] the SQL engine reads, and compacts. A failure is
//! logged and retried after a pause: the projection is derived data and
//! must not stop the node (delete the folder to rebuild it from block 1).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::manifest::Manifest;
use crate::projection::{CommittedBlock, Projection, ProjectionError};

/// Where committed blocks come from.
pub trait Source: Send + 'static {
    type Error: std::fmt::Display;
    /// The highest height applied to the store.
    fn height(&self) -> Result<u64, Self::Error>;
    /// The block at `height`, if applied.
    fn block(&self, height: u64) -> Result<Option<CommittedBlock>, Self::Error>;
}

/// The manifest queries plan over: the last one the follower committed.
#[derive(Debug)]
pub struct Catalog {
    dir: PathBuf,
    current: Mutex<Arc<Manifest>>,
    caches: crate::sql::Caches,
}

impl Catalog {
    pub fn new(dir: PathBuf, manifest: Manifest) -> Arc<Catalog> {
        Arc::new(Catalog {
            dir,
            current: Mutex::new(Arc::new(manifest)),
            caches: crate::sql::Caches::default(),
        })
    }

    /// The folder the manifest's paths are relative to.
    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }

    /// What queries over this folder share (footers of its files).
    pub fn caches(&self) -> &crate::sql::Caches {
        &self.caches
    }

    pub fn snapshot(&self) -> Arc<Manifest> {
        match self.current.lock() {
            Ok(m) => m.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn publish(&self, manifest: &Manifest) {
        let next = Arc::new(manifest.clone());
        match self.current.lock() {
            Ok(mut m) => *m = next,
            Err(poisoned) => *poisoned.into_inner() = next,
        }
    }
}

/// How often a caught-up follower looks for new blocks, and the longest
/// it keeps rows buffered before writing them.
pub const POLL: Duration = Duration::from_millis(200);
pub const FLUSH_AFTER: Duration = Duration::from_secs(1);
/// The pause after a failed step.
pub const RETRY_AFTER: Duration = Duration::from_secs(5);

/// Adds every applied block after the projection's height and flushes
/// whenever the buffer fills and once at the end. Used by the follower
/// and by offline commands (`lotline export`).
pub fn catch_up<S: Source>(
    projection: &mut Projection,
    source: &S,
    catalog: Option<&Catalog>,
) -> Result<u64, StepError<S::Error>> {
    let target = source.height().map_err(StepError::Source)?;
    while projection.added_height() < target {
        let height = projection.added_height() + 1;
        let Some(block) = source.block(height).map_err(StepError::Source)? else {
            break;
        };
        projection.add(&block)?;
        if projection.buffer_full() {
            flush(projection, catalog)?;
        }
    }
    flush(projection, catalog)?;
    Ok(projection.height())
}

fn flush(projection: &mut Projection, catalog: Option<&Catalog>) -> Result<(), ProjectionError> {
    projection.flush()?;
    projection.compact()?;
    if let Some(catalog) = catalog {
        catalog.publish(projection.manifest());
    }
    Ok(())
}

#[derive(Debug, thiserror::Error)]
pub enum StepError<E: std::fmt::Display> {
    #[error("reading the store: {0}")]
    Source(E),
    #[error(transparent)]
    Projection(#[from] ProjectionError),
}

/// Runs the follower on a thread of its own until `stop` is set.
pub fn spawn<S: Source>(
    mut projection: Projection,
    source: S,
    catalog: Arc<Catalog>,
    stop: Arc<AtomicBool>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("analytics".into())
        .spawn(move || {
            let mut last_flush = Instant::now();
            while !stop.load(Ordering::Relaxed) {
                match step(&mut projection, &source, &catalog, &mut last_flush) {
                    Ok(true) => {}
                    Ok(false) => std::thread::sleep(POLL),
                    Err(e) => {
                        tracing::warn!(error = %e, height = projection.height(), "analytics projection step failed; retrying");
                        std::thread::sleep(RETRY_AFTER);
                    }
                }
            }
            if let Err(e) = flush(&mut projection, Some(&catalog)) {
                tracing::warn!(error = %e, "analytics projection: last flush failed");
            }
        })
}

/// One step: add what is applied (up to a full buffer); flush when full,
/// or when caught up and the buffer is older than [`FLUSH_AFTER`]. Returns
/// whether there may be more to do at once.
fn step<S: Source>(
    projection: &mut Projection,
    source: &S,
    catalog: &Catalog,
    last_flush: &mut Instant,
) -> Result<bool, StepError<S::Error>> {
    let target = source.height().map_err(StepError::Source)?;
    while projection.added_height() < target && !projection.buffer_full() {
        let height = projection.added_height() + 1;
        let Some(block) = source.block(height).map_err(StepError::Source)? else {
            break;
        };
        projection.add(&block)?;
    }
    let pending = projection.added_height() > projection.height();
    let full = projection.buffer_full();
    if full || (pending && last_flush.elapsed() >= FLUSH_AFTER) {
        let started = Instant::now();
        let rows = projection.flush()?;
        let merged = projection.compact()?;
        catalog.publish(projection.manifest());
        *last_flush = Instant::now();
        tracing::debug!(
            height = projection.height(),
            rows,
            merged,
            ms = started.elapsed().as_millis() as u64,
            "analytics projection flushed"
        );
    }
    Ok(full || projection.added_height() < target)
}
