//! The projection: committed blocks appended as Parquet files, with the
//! manifest as its durable state.
//!
//! ```text
//! <data-dir>/analytics/
//!   manifest.json                                        height reached + every file
//!   events/event_month=2026-12/part-00000001.parquet     one file per (table, month) per flush
//!   identifiers/event_month=.../...  measurements/  sensor_reports/  lineage/  custody/
//! ```
//!
//! Blocks are added in height order into a bounded in-memory [`Buffer`];
//! [`Projection::flush`] writes one file per (table, month) of the buffer,
//! then the manifest with the new height. The manifest is the commit point:
//! after a crash the projection resumes from the height it names, and any
//! file it does not name is an orphan removed on [`Projection::open`].
//!
//! ## Compaction
//! Flushes make small files; compaction merges them within a partition
//! (files below [`FILE_ROWS_TARGET`] rows), two ways:
//! - *Hot* partitions, those the last flush wrote to (the current month
//!   under load, a new file every second), merge by size tier: files of
//!   about the same size (the same power of [`TIER_FANOUT`] rows) are
//!   merged once a tier holds [`TIER_FANOUT`] of them, so each row is
//!   rewritten about log(n) times, not once per flush.
//! - *Cold* partitions, those the last flush did not write to (a month
//!   that has ended, every partition after a restart), have their small
//!   files merged, in height order, into as few files of at most
//!   [`FILE_ROWS_TARGET`] rows as they fit: the tiers' leftovers and a
//!   month that ended with two flushes in it end as one file. A cold
//!   partition is rewritten again only if a late event lands in it.
//!
//! Memory stays bounded: merging streams one row group of one input file
//! at a time. The merged file replaces its inputs in one manifest write;
//! the replaced files are deleted only after [`RETIRE_GRACE`], so a query
//! that planned over them still finds them.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::RecordBatch;
use lotline_core::attestation::Envelope;
use lotline_core::statement::Statement;
use lotline_genesis::{Genesis, RecordFacts};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

use crate::facts;
use crate::manifest::{self, FileEntry, Manifest, ManifestError};
use crate::rows::{Buffer, Committed};
use crate::schema::{PARTITION_KEY, Table};

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
    manifest: Manifest,
    buffer: Buffer,
    /// Heights in the buffer: `manifest.height + 1 ..= buffered_to`.
    buffered_to: u64,
    /// Attestations whose payload did not parse (never expected: admission
    /// parsed them), skipped.
    pub skipped: u64,
    retired: Vec<(Instant, PathBuf)>,
    compaction: Compaction,
    /// The (table, month) partitions the last flush wrote to: only their
    /// size tiers are merged (see the module doc).
    hot: BTreeSet<(String, String)>,
    /// `read_facts` values in the buffer the manifest does not list yet.
    new_facts: BTreeSet<String>,
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
        let loaded = match Manifest::load(dir) {
            Err(ManifestError::Format { found, .. }) if found < manifest::FORMAT => {
                // Derived data in an older layout: rebuilt from block 1.
                tracing::warn!(dir = %dir.display(), found, format = manifest::FORMAT,
                    "analytics: the projection is of an older layout; rebuilding it");
                remove_data_set(dir)?;
                None
            }
            other => other?,
        };
        let manifest = match loaded {
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
            buffered_to: manifest.height,
            manifest,
            buffer: Buffer::default(),
            skipped: 0,
            retired: Vec::new(),
            compaction: Compaction::default(),
            hot: BTreeSet::new(),
            new_facts: BTreeSet::new(),
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
            let facts = facts::encode(&RecordFacts::of(&statement));
            let at = Committed {
                attestation_id: id,
                height: block.height,
                position: u32::try_from(position).unwrap_or(u32::MAX),
                block_time_ms,
            };
            self.buffer.add(at, &statement, &facts);
            if self.manifest.facts.binary_search(&facts).is_err() {
                self.new_facts.insert(facts);
            }
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
        let mut hot = BTreeSet::new();
        for ((table, month), rows) in buffer.into_parts() {
            if rows.is_empty() {
                continue;
            }
            let batch = rows.finish()?;
            let entry = self.write_file(
                &mut next,
                (table, &month),
                batch.num_rows() as u64,
                [Ok(batch)],
                (height_min, height_max),
            )?;
            written += entry.rows;
            hot.insert((entry.table.clone(), entry.month.clone()));
            next.files.push(entry);
        }
        for facts in std::mem::take(&mut self.new_facts) {
            next.add_facts(&facts);
        }
        next.height = height_max;
        next.store(&self.dir)?;
        self.manifest = next;
        self.hot = hot;
        Ok(written)
    }

    /// Writes `batches`, at most `rows_max` rows of blocks `heights`
    /// (lowest, highest), as the next file of (`table`, `month`), durably.
    fn write_file(
        &self,
        next: &mut Manifest,
        (table, month): (Table, &str),
        rows_max: u64,
        batches: impl IntoIterator<Item = Result<RecordBatch, ProjectionError>>,
        (height_min, height_max): (u64, u64),
    ) -> Result<FileEntry, ProjectionError> {
        let rel = format!(
            "{}/{PARTITION_KEY}={month}/part-{:08}.parquet",
            table.name(),
            next.next_file
        );
        next.next_file += 1;
        let path = self.dir.join(&rel);
        let rows = write_parquet(&path, table, rows_max, batches)?;
        let (blake3, bytes) = manifest::hash_file(&path).map_err(io(&path))?;
        Ok(FileEntry {
            path: rel,
            table: table.name().into(),
            month: month.into(),
            rows,
            bytes,
            blake3,
            height_min,
            height_max,
        })
    }

    /// Merges small files: full size tiers of hot partitions, every small
    /// file of cold ones (see the module doc); deletes files retired longer
    /// than [`RETIRE_GRACE`] ago. Returns the number of files merged away.
    pub fn compact(&mut self) -> Result<usize, ProjectionError> {
        self.delete_retired(RETIRE_GRACE);
        // A merged file may fill the next tier up: merge until none is full.
        let mut merged = 0;
        loop {
            match self.compact_once()? {
                0 => return Ok(merged),
                n => merged += n,
            }
        }
    }

    /// One pass of [`Projection::compact`] over the current manifest.
    fn compact_once(&mut self) -> Result<usize, ProjectionError> {
        let mut next = self.manifest.clone();
        let mut merged = 0;
        for group in merge_groups(&self.manifest, self.compaction, &self.hot) {
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
            let month = first.month.clone();
            let rows: u64 = entries.iter().map(|e| e.rows).sum();
            let new = self.write_file(
                &mut next,
                (table, &month),
                rows,
                batches,
                (height_min, height_max),
            )?;
            assert_eq!(new.rows, rows, "compaction keeps every row");
            next.files
                .retain(|f| !entries.iter().any(|e| e.path == f.path));
            next.files.push(new);
            merged += entries.len();
        }
        if merged > 0 {
            next.files.sort_by(|a, b| {
                (a.table.as_str(), a.month.as_str(), a.height_min).cmp(&(
                    b.table.as_str(),
                    b.month.as_str(),
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

/// Removes the manifest and every table folder of `dir`.
fn remove_data_set(dir: &Path) -> Result<(), ProjectionError> {
    let manifest = dir.join(manifest::FILE_NAME);
    match std::fs::remove_file(&manifest) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(&manifest)(e)),
        _ => {}
    }
    for table in Table::ALL {
        let folder = dir.join(table.name());
        match std::fs::remove_dir_all(&folder) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(&folder)(e)),
            _ => {}
        }
    }
    Ok(())
}

/// The groups of file indexes to merge, per (table, month) partition: in a
/// hot partition the files of each full size tier; in a cold one its small
/// files in height order, packed into groups of at most
/// `policy.file_rows_target` rows (a group of one is left alone).
fn merge_groups(
    manifest: &Manifest,
    policy: Compaction,
    hot: &BTreeSet<(String, String)>,
) -> Vec<Vec<usize>> {
    let mut partitions: BTreeMap<(&str, &str), Vec<usize>> = BTreeMap::new();
    for (i, f) in manifest.files.iter().enumerate() {
        if policy.tier(f.rows).is_some() {
            partitions
                .entry((f.table.as_str(), f.month.as_str()))
                .or_default()
                .push(i);
        }
    }
    let mut groups = Vec::new();
    for ((table, month), mut small) in partitions {
        if small.len() < 2 {
            continue;
        }
        if hot.contains(&(table.to_owned(), month.to_owned())) {
            let mut tiers: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
            for i in small {
                if let Some(tier) = policy.tier(manifest.files[i].rows) {
                    tiers.entry(tier).or_default().push(i);
                }
            }
            groups.extend(
                tiers
                    .into_values()
                    .filter(|files| files.len() >= policy.fanout),
            );
            continue;
        }
        small.sort_by_key(|&i| manifest.files[i].height_min);
        let mut group: Vec<usize> = Vec::new();
        let mut rows = 0u64;
        for i in small {
            let file_rows = manifest.files[i].rows;
            if !group.is_empty() && rows + file_rows > policy.file_rows_target {
                if group.len() >= 2 {
                    groups.push(std::mem::take(&mut group));
                }
                group.clear();
                rows = 0;
            }
            group.push(i);
            rows += file_rows;
        }
        if group.len() >= 2 {
            groups.push(group);
        }
    }
    groups
}

/// The writer settings of every file: zstd, dictionary encoding, page
/// statistics (readers prune row groups and pages by them).
pub fn writer_properties() -> WriterProperties {
    writer_builder().build()
}

fn writer_builder() -> parquet::file::properties::WriterPropertiesBuilder {
    WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .set_dictionary_enabled(true)
        .set_max_row_group_size(ROW_GROUP_ROWS)
        .set_created_by(format!("lotline-analytics {}", env!("CARGO_PKG_VERSION")))
}

/// The columns a quality engineer looks one value up in ("every
/// measurement of this lot", "every event of this EPC"): their values
/// are spread over every month, so min/max statistics cannot skip a file
/// and a bloom filter can (DataFusion, DuckDB, Spark and Trino read them).
pub fn bloom_filter_columns(table: Table) -> &'static [&'static str] {
    match table {
        Table::Identifiers => &["identifier"],
        Table::Measurements => &["subject"],
        _ => &[],
    }
}

/// False positive rate of the bloom filters: a lookup opens about one
/// file in a hundred that does not hold the value.
pub const BLOOM_FILTER_FPP: f64 = 0.01;

/// [`writer_properties`] for a file of `table` of at most `rows_max` rows:
/// bloom filters on [`bloom_filter_columns`] sized for that many distinct
/// values (a filter sized for the writer's default of a million values
/// would cost ~1 MB per file, more than most files' data).
pub fn file_properties(table: Table, rows_max: u64) -> WriterProperties {
    let ndv = rows_max.clamp(1, ROW_GROUP_ROWS as u64);
    bloom_filter_columns(table)
        .iter()
        .fold(writer_builder(), |builder, column| {
            let path = parquet::schema::types::ColumnPath::from(*column);
            builder
                .set_column_bloom_filter_enabled(path.clone(), true)
                .set_column_bloom_filter_fpp(path.clone(), BLOOM_FILTER_FPP)
                .set_column_bloom_filter_ndv(path, ndv)
        })
        .build()
}

/// Writes `batches`, at most `rows_max` rows, to `path` through a
/// temporary file (fdatasync, rename). Returns the rows written.
pub fn write_parquet(
    path: &Path,
    table: Table,
    rows_max: u64,
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
        ArrowWriter::try_new(file, table.schema(), Some(file_properties(table, rows_max)))
            .map_err(perr)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn file(table: &str, month: &str, rows: u64, height: u64) -> FileEntry {
        FileEntry {
            path: format!("{table}/{PARTITION_KEY}={month}/part-{height:08}.parquet"),
            table: table.into(),
            month: month.into(),
            rows,
            bytes: rows * 10,
            blake3: String::new(),
            height_min: height,
            height_max: height,
        }
    }

    fn manifest(files: Vec<FileEntry>) -> Manifest {
        let mut m = Manifest::empty("00".into(), manifest::READER_ALL.into());
        m.files = files;
        m
    }

    const POLICY: Compaction = Compaction {
        fanout: 4,
        file_rows_target: 1_000,
    };

    #[test]
    fn a_hot_partition_merges_full_size_tiers_only() {
        // Tier 0 (1-3 rows): three files, not full; tier 1 (4-15): four.
        let files = vec![
            file("events", "2026-01", 1, 1),
            file("events", "2026-01", 2, 2),
            file("events", "2026-01", 3, 3),
            file("events", "2026-01", 5, 4),
            file("events", "2026-01", 6, 5),
            file("events", "2026-01", 7, 6),
            file("events", "2026-01", 8, 7),
        ];
        let hot = BTreeSet::from([("events".to_owned(), "2026-01".to_owned())]);
        let groups = merge_groups(&manifest(files), POLICY, &hot);
        assert_eq!(groups, vec![vec![3, 4, 5, 6]]);
    }

    #[test]
    fn a_cold_partition_packs_its_small_files_up_to_the_target() {
        let files = vec![
            // Cold: 600 + 300 fit one file, 700 starts the next with 200.
            file("events", "2026-01", 300, 2),
            file("events", "2026-01", 600, 1),
            file("events", "2026-01", 700, 3),
            file("events", "2026-01", 200, 4),
            // At the target: not merged.
            file("events", "2026-01", 1_000, 5),
            // Other partitions: one small file each, nothing to merge.
            file("events", "2026-02", 10, 6),
            file("identifiers", "2026-01", 10, 7),
        ];
        let groups = merge_groups(&manifest(files), POLICY, &BTreeSet::new());
        assert_eq!(groups, vec![vec![1, 0], vec![2, 3]]);
    }

    #[test]
    fn a_lone_small_file_between_big_ones_is_left_alone() {
        let files = vec![
            file("events", "2026-01", 900, 1),
            file("events", "2026-01", 900, 2),
            file("events", "2026-01", 900, 3),
        ];
        assert!(merge_groups(&manifest(files), POLICY, &BTreeSet::new()).is_empty());
    }
}

#[cfg(test)]
mod bloom_tests {
    use super::*;
    use crate::schema::Kind;
    use arrow::array::{
        ArrayRef, BooleanArray, Float64Array, Int32Array, Int64Array, StringArray,
        TimestampMillisecondArray,
    };
    use parquet::file::properties::ReaderProperties;
    use parquet::file::reader::FileReader;
    use parquet::file::serialized_reader::{ReadOptionsBuilder, SerializedFileReader};

    /// `rows` rows of `table`: each string column holds `{column}-{i}`.
    fn batch(table: Table, rows: usize) -> RecordBatch {
        let columns: Vec<ArrayRef> = table
            .columns()
            .map(|(name, kind, _)| -> ArrayRef {
                let n = 0..rows;
                match kind {
                    Kind::Str => Arc::new(StringArray::from_iter_values(
                        n.map(|i| format!("{name}-{i}")),
                    )),
                    Kind::I64 => Arc::new(Int64Array::from_iter_values(n.map(|i| i as i64))),
                    Kind::I32 => Arc::new(Int32Array::from_iter_values(n.map(|i| i as i32))),
                    Kind::F64 => Arc::new(Float64Array::from_iter_values(n.map(|i| i as f64))),
                    Kind::Bool => Arc::new(BooleanArray::from_iter(n.map(|i| Some(i % 2 == 0)))),
                    Kind::Time => Arc::new(
                        TimestampMillisecondArray::from_iter_values(n.map(|i| i as i64))
                            .with_timezone("UTC"),
                    ),
                }
            })
            .collect();
        RecordBatch::try_new(table.schema(), columns).expect("batch")
    }

    /// Writes `rows` rows of `table`; returns the file's reader (bloom
    /// filters read) and its size in bytes.
    fn written(table: Table, rows: usize) -> (SerializedFileReader<File>, u64) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("part.parquet");
        let n = write_parquet(&path, table, rows as u64, [Ok(batch(table, rows))]).expect("write");
        assert_eq!(n, rows as u64);
        let options = ReadOptionsBuilder::new()
            .with_reader_properties(
                ReaderProperties::builder()
                    .set_read_bloom_filter(true)
                    .build(),
            )
            .build();
        let file = File::open(&path).expect("open");
        let bytes = file.metadata().expect("metadata").len();
        let reader = SerializedFileReader::new_with_options(file, options).expect("reader");
        (reader, bytes)
    }

    fn column_index(table: Table, name: &str) -> usize {
        table.columns().position(|c| c.0 == name).expect("column")
    }

    /// Goal: a lookup of one identifier or one measured lot can skip a file
    /// that does not hold it (every value it holds passes its filter, about
    /// one absent value in a hundred does), and the filter is sized for the
    /// file, not for the writer's default of a million values (~1 MB).
    #[test]
    fn lookup_columns_carry_a_bloom_filter_sized_for_the_file() {
        for (table, column) in [
            (Table::Identifiers, "identifier"),
            (Table::Measurements, "subject"),
        ] {
            assert_eq!(bloom_filter_columns(table), &[column]);
            let rows = 2_000;
            let (reader, bytes) = written(table, rows);
            let group = reader.get_row_group(0).expect("row group");
            let filter = group
                .get_column_bloom_filter(column_index(table, column))
                .expect("a bloom filter");
            for i in 0..rows {
                assert!(
                    filter.check(&format!("{column}-{i}").as_str()),
                    "{column}-{i}"
                );
            }
            let false_positives = (0..10_000)
                .filter(|i| filter.check(&format!("absent-{i}").as_str()))
                .count();
            assert!(false_positives < 300, "{false_positives} of 10,000");
            assert!(
                bytes < 256 << 10,
                "{} file of {rows} rows: {bytes} bytes",
                table.name()
            );
        }
    }

    /// Goal: columns nobody looks one value up in carry no filter (each
    /// filter costs bytes in every file).
    #[test]
    fn other_columns_carry_no_bloom_filter() {
        let (reader, _) = written(Table::Events, 100);
        let group = reader.get_row_group(0).expect("row group");
        for (i, (name, _, _)) in Table::Events.columns().enumerate() {
            assert!(group.get_column_bloom_filter(i).is_none(), "{name}");
        }
        assert!(bloom_filter_columns(Table::Events).is_empty());
    }
}
