//! Exports: the projection's files copied to a folder or an S3-compatible
//! object store, for one reader.
//!
//! An export has the projection's layout and schema and a manifest of its
//! own. For `all` (a regulator, an operator) every file is copied as is, so
//! its hash is the projection's. For an org, every file is rewritten with
//! only the rows whose `read_facts` the org's read rule accepts — the
//! node's rule with the membership in force at export time
//! ([`crate::facts`]) — so an org's export holds exactly what the org reads
//! through the API.
//!
//! One pipeline for both targets: each file is made (or, for `all`, found)
//! on local disk, hashed, then published, one at a time; the manifest is
//! published last. A folder target writes the files in place; an object
//! store target uploads each from a scratch folder and deletes it, so an
//! export to S3 needs local disk for one file only.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use arrow::array::{Array, BooleanArray, StringArray};
use arrow::compute::filter_record_batch;

use crate::facts;
use crate::manifest::{self, FileEntry, Manifest};
use crate::projection::{self, ProjectionError};
use crate::remote::{Location, RemoteError};
use crate::schema::Table;

/// Where an export goes.
#[derive(Debug, Clone)]
pub enum Target {
    /// A new or empty local folder.
    Dir(PathBuf),
    /// A prefix with no objects in an S3-compatible bucket.
    S3(Location),
}

impl Target {
    /// `s3://bucket[/prefix]` (configured by the `AWS_*` pairs of `env`,
    /// see [`crate::remote`]), else a folder.
    pub fn parse(
        text: &str,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Target, RemoteError> {
        if text.starts_with("s3://") {
            Ok(Target::S3(Location::s3(text, env)?))
        } else {
            Ok(Target::Dir(PathBuf::from(text)))
        }
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Dir(dir) => write!(f, "{}", dir.display()),
            Target::S3(at) => f.write_str(at.url()),
        }
    }
}

/// Whose rows an export holds: every row, or an org's by its read rule.
pub use crate::facts::Visibility as Audience;

/// How far an export is: reported after every file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    pub files_done: usize,
    pub files_total: usize,
    pub rows_read: u64,
    pub rows_total: u64,
    pub rows_written: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Projection(#[from] ProjectionError),
    #[error(transparent)]
    Manifest(#[from] manifest::ManifestError),
    #[error("{0} is not empty; export into a new or empty folder or prefix")]
    NotEmpty(String),
    #[error(transparent)]
    Remote(#[from] RemoteError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a column of strings named read_facts")]
    NoReaders { path: PathBuf },
}

/// Writes the files of `source` (a projection's manifest, paths relative
/// to `source_dir`) visible to `audience` to `to`, then its manifest.
pub fn export(
    source_dir: &Path,
    source: &Manifest,
    audience: &Audience,
    to: &Target,
    mut progress: impl FnMut(Progress),
) -> Result<Manifest, ExportError> {
    let mut sink: Box<dyn Sink> = match to {
        Target::Dir(dir) => Box::new(DirSink::open(dir)?),
        Target::S3(at) => Box::new(S3Sink::open(at)?),
    };
    let mut out = Manifest::empty(source.chain_id.clone(), audience.name().to_owned());
    out.height = source.height;
    out.next_file = source.next_file;
    let readable: Option<HashSet<&str>> = audience
        .readable(&source.facts)
        .map(|r| r.into_iter().collect());
    out.facts = match &readable {
        None => source.facts.clone(),
        Some(r) => source
            .facts
            .iter()
            .filter(|f| r.contains(f.as_str()))
            .cloned()
            .collect(),
    };
    let mut report = Progress {
        files_total: source.files.len(),
        rows_total: source.files.iter().map(|f| f.rows).sum(),
        ..Progress::default()
    };
    for entry in &source.files {
        let (local, rows) = match &readable {
            None => (source_dir.join(&entry.path), entry.rows),
            Some(readable) => {
                let scratch = sink.scratch(&entry.path)?;
                let rows = filter_file(&source_dir.join(&entry.path), &scratch, entry, readable)?;
                (scratch, rows)
            }
        };
        report.files_done += 1;
        report.rows_read += entry.rows;
        report.rows_written += rows;
        if rows > 0 {
            let (blake3, bytes) = manifest::hash_file(&local).map_err(io(&local))?;
            sink.publish(&entry.path, &local)?;
            out.files.push(FileEntry {
                rows,
                bytes,
                blake3,
                ..entry.clone()
            });
        }
        progress(report);
    }
    sink.finish(&out)?;
    Ok(out)
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ExportError {
    let path = path.to_owned();
    move |source| ExportError::Io { path, source }
}

/// Where the files of an export are published.
trait Sink {
    /// A local path to write the file `rel` into before [`Sink::publish`].
    fn scratch(&mut self, rel: &str) -> Result<PathBuf, ExportError>;
    /// Makes the finished local file `local` the data set's `rel`.
    fn publish(&mut self, rel: &str, local: &Path) -> Result<(), ExportError>;
    /// Publishes the manifest, last.
    fn finish(&mut self, manifest: &Manifest) -> Result<(), ExportError>;
}

/// A local folder: files are written (or copied) in place.
struct DirSink {
    to: PathBuf,
}

impl DirSink {
    fn open(to: &Path) -> Result<DirSink, ExportError> {
        std::fs::create_dir_all(to).map_err(io(to))?;
        if std::fs::read_dir(to).map_err(io(to))?.next().is_some() {
            return Err(ExportError::NotEmpty(to.display().to_string()));
        }
        Ok(DirSink { to: to.to_owned() })
    }
}

impl Sink for DirSink {
    fn scratch(&mut self, rel: &str) -> Result<PathBuf, ExportError> {
        let dest = self.to.join(rel);
        let parent = dest.parent().unwrap_or(&self.to);
        std::fs::create_dir_all(parent).map_err(io(parent))?;
        Ok(dest)
    }

    fn publish(&mut self, rel: &str, local: &Path) -> Result<(), ExportError> {
        let dest = self.scratch(rel)?;
        if dest != local {
            std::fs::copy(local, &dest).map_err(io(&dest))?;
        }
        Ok(())
    }

    fn finish(&mut self, manifest: &Manifest) -> Result<(), ExportError> {
        Ok(manifest.store(&self.to)?)
    }
}

/// An S3 prefix: files are uploaded from a scratch folder, one at a time.
struct S3Sink {
    at: Location,
    runtime: tokio::runtime::Runtime,
    scratch: tempfile::TempDir,
}

impl S3Sink {
    fn open(at: &Location) -> Result<S3Sink, ExportError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(io(Path::new(at.url())))?;
        let scratch = tempfile::tempdir().map_err(io(&std::env::temp_dir()))?;
        if !runtime.block_on(at.list())?.is_empty() {
            return Err(ExportError::NotEmpty(at.url().to_owned()));
        }
        Ok(S3Sink {
            at: at.clone(),
            runtime,
            scratch,
        })
    }
}

impl Sink for S3Sink {
    fn scratch(&mut self, rel: &str) -> Result<PathBuf, ExportError> {
        Ok(self.scratch.path().join(rel.replace('/', "_")))
    }

    fn publish(&mut self, rel: &str, local: &Path) -> Result<(), ExportError> {
        self.runtime.block_on(self.at.upload(local, rel))?;
        if local.starts_with(self.scratch.path()) {
            std::fs::remove_file(local).map_err(io(local))?;
        }
        Ok(())
    }

    fn finish(&mut self, manifest: &Manifest) -> Result<(), ExportError> {
        Ok(self
            .runtime
            .block_on(self.at.put(manifest::FILE_NAME, manifest.to_bytes()))?)
    }
}

/// Rewrites `from` into `dest` keeping the rows whose `read_facts` are
/// `readable`; writes no file when none is left. Returns the rows kept.
fn filter_file(
    from: &Path,
    dest: &Path,
    entry: &FileEntry,
    readable: &HashSet<&str>,
) -> Result<u64, ExportError> {
    let table = Table::parse(&entry.table).ok_or_else(|| ExportError::NoReaders {
        path: from.to_owned(),
    })?;
    let from_path = from.to_owned();
    // Streamed: one row group in memory at a time.
    let batches = projection::read_parquet(from)?.map(move |batch| {
        let batch = batch?;
        let facts = batch
            .column_by_name(facts::COLUMN)
            .and_then(|c| c.as_any().downcast_ref::<StringArray>())
            .ok_or_else(|| ProjectionError::Io {
                path: from_path.clone(),
                source: std::io::Error::other("no read_facts column of strings"),
            })?;
        let mask: BooleanArray = (0..facts.len())
            .map(|i| Some(facts.is_valid(i) && readable.contains(facts.value(i))))
            .collect();
        Ok(filter_record_batch(&batch, &mask)?)
    });
    let rows = projection::write_parquet(dest, table, entry.rows, batches)?;
    if rows == 0 {
        std::fs::remove_file(dest).map_err(|source| ExportError::Io {
            path: dest.to_owned(),
            source,
        })?;
    }
    Ok(rows)
}
