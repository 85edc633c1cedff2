//! The projection: committed blocks appended as Parquet files, with the
//! manifest as its durable state.
//!
//! ```text
//! <data-dir>/analytics/
//!   manifest.json                                  height reached + every file
//!   events/date=2026-12-03/part-00000001.parquet   one file per (table, date) per flush
//!   identifiers/date=.../...  measurements/  sensor_reports/  lineage/  custody/
//! ```
//!
//! Blocks are added in height order into a bounded in-memory [`Buffer`];
//! [`Projection::flush`] writes one file per (table, date) of the buffer,
//! then the manifest with the new height. The manifest is the commit point:
//! after a crash the projection resumes from the height it names, and any
//! file it does not name is an orphan removed on [`Projection::open`].
//!
//! ## Compaction
//! Flushes under load make many small files. Within a partition, files below
//! [`FILE_ROWS_TARGET`] are grouped by size tier (powers of [`TIER_FANOUT`]
//! rows); when a tier holds [`TIER_FANOUT`] files they are merged into one,
//! so each row is rewritten about log(n) times, not once per flush. The
//! merged file replaces them in one manifest write; the replaced files are
//! deleted only after [`RETIRE_GRACE`], so a query that planned over them
//! still finds them.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::RecordBatch;
use lotline_core::attestation::Envelope;
use lotline_core::statement::Statement;
use lotline_genesis::Genesis;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

use crate::manifest::{self, FileEntry, Manifest, ManifestError};
use crate::rows::{self, Buffer, Committed};
use crate::schema::Table;

/// A flush happens once the buffer holds this many rows (bounded memory:
/// roughly 200 bytes per buffered row).
pub const BUFFER_ROWS_MAX: usize = 262_144;
/// Files with at least this many rows are not merged further.
pub const FILE_ROWS_TARGET: u64 = 4_194_304;
/// Files of one size tier merged together; also the tier base.
pub const TIER_FANOUT: usize = 8;
/// Replaced files stay on disk this long for queries planned before.
pub const RETIRE_GRACE: Duration = Duration::from_secs(120);
/// Rows per Parquet row group (and per batch read back when compacting).
pub const ROW_GROUP_ROWS: usize = 131_072;

/// A committed block as the projection needs it.
#[derive(Clone, Debug)]
pub struct CommittedBlock {
    pub height: u64,
    pub timestamp_ms: u64,
    /// Attestation ids (lowercase hex) and envelopes, in block order.
    pub attestations: Vec<(String, Envelope)>,
}

#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error("{path}: {source}")]
    Parquet {
        path: PathBuf,
        source: parquet::errors::ParquetError,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("arrow: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    #[error("the projection in {path} is of chain {found}, this node's is {expected}")]
    OtherChain {
        path: PathBuf,
        found: String,
        expected: String,
    },
    #[error("block {got} is not the next block ({expected})")]
    OutOfOrder { expected: u64, got: u64 },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ProjectionError + '_ {
    move |source| ProjectionError::Io {
        path: path.to_owned(),
        source,
    }
}

/// The projection of one chain in one folder.
#[derive(Debug)]
pub struct Projection {
    dir: PathBuf,
    genesis: Arc<Genesis>,
    manifest: Manifest,
    buffer: Buffer,
    /// Heights in the buffer: `manifest.height + 1 ..= buffered_to`.
    buffered_to: u64,
    /// Attestations whose payload did not parse (never expected: admission
    /// parsed them), skipped.
    pub skipped: u64,
    retired: Vec<(Instant, PathBuf)>,
    compaction: Compaction,
}

/// When small files are merged (see the module doc).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Compaction {
    /// Files of one size tier merged together; also the tier base (>= 2).
    pub fanout: usize,
    /// Files with at least this many rows are not merged further.
    pub file_rows_target: u64,
}

impl Default for Compaction {
    fn default() -> Compaction {
        Compaction {
            fanout: TIER_FANOUT,
            file_rows_target: FILE_ROWS_TARGET,
        }
    }
}

impl Compaction {
    /// The size tier of a file of `rows` rows, or `None` if it is not merged.
    pub fn tier(self, rows: u64) -> Option<u32> {
        (rows < self.file_rows_target).then(|| rows.max(1).ilog(self.fanout as u64))
    }
}

impl Projection {
    /// Opens (or creates) the projection in `dir` and removes files the
    /// manifest does not list.
    pub fn open(dir: &Path, genesis: Arc<Genesis>) -> Result<Projection, ProjectionError> {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let chain_id = genesis.chain_id().to_string();
        let manifest = match Manifest::load(dir)? {
            Some(m) if m.chain_id != chain_id => {
                return Err(ProjectionError::OtherChain {
                    path: dir.to_owned(),
                    found: m.chain_id,
                    expected: chain_id,
                });
            }
            Some(m) => m,
            None => Manifest::empty(chain_id, manifest::READER_ALL.into()),
        };
        let listed: std::collections::BTreeSet<&str> =
            manifest.files.iter().map(|f| f.path.as_str()).collect();
        for path in manifest::data_files(dir).map_err(io(dir))? {
            if !listed.contains(path.as_str()) {
                let file = dir.join(&path);
                tracing::info!(file = %file.display(), "analytics: removing a file the manifest does not list");
                std::fs::remove_file(&file).map_err(io(&file))?;
            }
        }
        Ok(Projection {
            dir: dir.to_owned(),
            genesis,
            buffered_to: manifest.height,
            manifest,
            buffer: Buffer::default(),
            skipped: 0,
            retired: Vec::new(),
            compaction: Compaction::default(),
        })
    }

    /// Replaces the compaction policy (tests use a small fan-out).
    pub fn with_compaction(mut self, compaction: Compaction) -> Projection {
        assert!(compaction.fanout >= 2, "a fan-out below 2 never merges");
        self.compaction = compaction;
        self
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The durable height: blocks `1..=height` are in the files.
    pub fn height(&self) -> u64 {
        self.manifest.height
    }

    /// The height of the last block added (flushed or not).
    pub fn added_height(&self) -> u64 {
        self.buffered_to
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// True once the buffer should be written.
    pub fn buffer_full(&self) -> bool {
        self.buffer.rows() >= BUFFER_ROWS_MAX
    }

    /// Adds the rows of the next block to the buffer.
    pub fn add(&mut self, block: &CommittedBlock) -> Result<(), ProjectionError> {
        let expected = self.buffered_to + 1;
        if block.height != expected {
            return Err(ProjectionError::OutOfOrder {
                expected,
                got: block.height,
            });
        }
        let block_time_ms = i64::try_from(block.timestamp_ms).unwrap_or(i64::MAX);
        for (position, (id, envelope)) in block.attestations.iter().enumerate() {
            let Ok(statement) = Statement::from_payload(&envelope.payload) else {
                self.skipped += 1;
                continue;
            };
            let readers = rows::readers(&self.genesis, &statement);
            let at = Committed {
                attestation_id: id,
                height: block.height,
                position: u32::try_from(position).unwrap_or(u32::MAX),
                block_time_ms,
            };
            self.buffer.add(at, &statement, &readers);
        }
        self.buffered_to = block.height;
        Ok(())
    }

    /// Writes the buffer as files and commits them with the new height in
    /// the manifest. Returns the rows written.
    pub fn flush(&mut self) -> Result<u64, ProjectionError> {
        if self.buffered_to == self.manifest.height {
            return Ok(0);
        }
        let height_min = self.manifest.height + 1;
        let height_max = self.buffered_to;
        let buffer = std::mem::take(&mut self.buffer);
        let mut next = self.manifest.clone();
        let mut written = 0;
        for ((table, date), rows) in buffer.into_parts() {
            if rows.is_empty() {
                continue;
            }
            let batch = rows.finish()?;
            let entry =
                self.write_file(&mut next, table, &date, [Ok(batch)], height_min, height_max)?;
            written += entry.rows;
            next.files.push(entry);
        }
        next.height = height_max;
        next.store(&self.dir)?;
        self.manifest = next;
        Ok(written)
    }

    /// Writes `batches` as the next file of (`table`, `date`), durably.
    fn write_file(
        &self,
        next: &mut Manifest,
        table: Table,
        date: &str,
        batches: impl IntoIterator<Item = Result<RecordBatch, ProjectionError>>,
        height_min: u64,
        height_max: u64,
    ) -> Result<FileEntry, ProjectionError> {
        let rel = format!(
            "{}/date={date}/part-{:08}.parquet",
            table.name(),
            next.next_file
        );
        next.next_file += 1;
        let path = self.dir.join(&rel);
        let rows = write_parquet(&path, table, batches)?;
        let (blake3, bytes) = manifest::hash_file(&path).map_err(io(&path))?;
        Ok(FileEntry {
            path: rel,
            table: table.name().into(),
            date: date.into(),
            rows,
            bytes,
            blake3,
            height_min,
            height_max,
        })
    }

    /// Merges one tier of small files per partition where a tier is full,
    /// and deletes files retired longer than [`RETIRE_GRACE`] ago. Returns
    /// the number of files merged away.
    pub fn compact(&mut self) -> Result<usize, ProjectionError> {
        self.delete_retired(RETIRE_GRACE);
        let mut next = self.manifest.clone();
        let mut merged = 0;
        for group in merge_groups(&self.manifest, self.compaction) {
            let entries: Vec<FileEntry> = group
                .iter()
                .map(|&i| self.manifest.files[i].clone())
                .collect();
            let Some(first) = entries.first() else {
                continue;
            };
            let table = Table::parse(&first.table).ok_or_else(|| ProjectionError::Io {
                path: self.dir.join(&first.path),
                source: std::io::Error::other("unknown table"),
            })?;
            // Streamed: one row group of one input file in memory at a time.
            let paths: Vec<PathBuf> = entries.iter().map(|e| self.dir.join(&e.path)).collect();
            let batches = paths.iter().flat_map(|p| match read_parquet(p) {
                Ok(reader) => Box::new(reader) as Box<dyn Iterator<Item = _>>,
                Err(e) => Box::new(std::iter::once(Err(e))),
            });
            let height_min = entries.iter().map(|e| e.height_min).min().unwrap_or(0);
            let height_max = entries.iter().map(|e| e.height_max).max().unwrap_or(0);
            let date = first.date.clone();
            let new = self.write_file(&mut next, table, &date, batches, height_min, height_max)?;
            assert_eq!(
                new.rows,
                entries.iter().map(|e| e.rows).sum::<u64>(),
                "compaction keeps every row"
            );
            next.files
                .retain(|f| !entries.iter().any(|e| e.path == f.path));
            next.files.push(new);
            merged += entries.len();
        }
        if merged > 0 {
            next.files.sort_by(|a, b| {
                (a.table.as_str(), a.date.as_str(), a.height_min).cmp(&(
                    b.table.as_str(),
                    b.date.as_str(),
                    b.height_min,
                ))
            });
            next.store(&self.dir)?;
            let now = Instant::now();
            for old in &self.manifest.files {
                if !next.files.iter().any(|f| f.path == old.path) {
                    self.retired.push((now, self.dir.join(&old.path)));
                }
            }
            self.manifest = next;
        }
        Ok(merged)
    }

    /// Deletes retired files older than `grace` (all of them with zero).
    pub fn delete_retired(&mut self, grace: Duration) {
        self.retired.retain(|(at, path)| {
            if at.elapsed() < grace {
                return true;
            }
            if let Err(e) = std::fs::remove_file(path)
                && e.kind() != std::io::ErrorKind::NotFound
            {
                tracing::warn!(file = %path.display(), error = %e, "analytics: cannot delete a replaced file");
            }
            false
        });
    }
}

/// The groups of file indexes to merge: per (table, date), the small files
/// of a full size tier.
fn merge_groups(manifest: &Manifest, policy: Compaction) -> Vec<Vec<usize>> {
    use std::collections::BTreeMap;
    let mut tiers: BTreeMap<(&str, &str, u32), Vec<usize>> = BTreeMap::new();
    for (i, f) in manifest.files.iter().enumerate() {
        if let Some(tier) = policy.tier(f.rows) {
            tiers
                .entry((f.table.as_str(), f.date.as_str(), tier))
                .or_default()
                .push(i);
        }
    }
    tiers
        .into_values()
        .filter(|files| files.len() >= policy.fanout)
        .collect()
}

/// The writer settings of every file: zstd, dictionary encoding, page
/// statistics (readers prune row groups and pages by them).
pub fn writer_properties() -> WriterProperties {
    WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .set_dictionary_enabled(true)
        .set_max_row_group_size(ROW_GROUP_ROWS)
        .set_created_by(format!("lotline-analytics {}", env!("CARGO_PKG_VERSION")))
        .build()
}

/// Writes `batches` to `path` through a temporary file (fdatasync, rename).
/// Returns the rows written.
pub fn write_parquet(
    path: &Path,
    table: Table,
    batches: impl IntoIterator<Item = Result<RecordBatch, ProjectionError>>,
) -> Result<u64, ProjectionError> {
    let parent = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(io(parent))?;
    let tmp = path.with_extension("parquet.tmp");
    let file = File::create(&tmp).map_err(io(&tmp))?;
    let perr = |source| ProjectionError::Parquet {
        path: path.to_owned(),
        source,
    };
    let mut writer =
        ArrowWriter::try_new(file, table.schema(), Some(writer_properties())).map_err(perr)?;
    let mut rows = 0u64;
    for batch in batches {
        let batch = batch?;
        rows += batch.num_rows() as u64;
        writer.write(&batch).map_err(perr)?;
    }
    let file = writer.into_inner().map_err(perr)?;
    file.sync_data().map_err(io(&tmp))?;
    drop(file);
    std::fs::rename(&tmp, path).map_err(io(path))?;
    manifest::sync_dir(parent)?;
    Ok(rows)
}

/// Reads a Parquet file back, a row group's worth of rows at a time.
pub fn read_parquet(
    path: &Path,
) -> Result<impl Iterator<Item = Result<RecordBatch, ProjectionError>> + use<>, ProjectionError> {
    let perr = |source| ProjectionError::Parquet {
        path: path.to_owned(),
        source,
    };
    let file = File::open(path).map_err(io(path))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(perr)?
        .with_batch_size(ROW_GROUP_ROWS)
        .build()
        .map_err(perr)?;
    Ok(reader.map(|batch| batch.map_err(ProjectionError::Arrow)))
}
