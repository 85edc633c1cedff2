//! Exports: the projection's files copied to another folder, for one reader.
//!
//! An export has the projection's layout and schema and a manifest of its
//! own. For `all` (a regulator, an operator) every file is copied as is, so
//! its hash is the projection's. For an org, every file is rewritten with
//! only the rows whose `readers` name that org — the genesis read policy,
//! evaluated when the row was projected ([`crate::rows::readers`]) — so an
//! org's export holds exactly what the org reads through the API.

use std::path::{Path, PathBuf};

use arrow::array::{Array, BooleanArray, StringArray};
use arrow::compute::filter_record_batch;

use crate::manifest::{self, FileEntry, Manifest, READER_ALL};
use crate::projection::{self, ProjectionError};
use crate::schema::Table;

/// Whose rows an export holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Audience {
    /// Every row: for full-read roles and operators.
    All,
    /// The rows this org may read.
    Org(String),
}

impl Audience {
    fn name(&self) -> &str {
        match self {
            Audience::All => READER_ALL,
            Audience::Org(org) => org,
        }
    }
}

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
    #[error("{0} is not empty; export into a new or empty folder")]
    NotEmpty(PathBuf),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a column of strings named readers")]
    NoReaders { path: PathBuf },
}

/// Writes the files of `source` (a projection's manifest, paths relative
/// to `source_dir`) visible to `audience` into `to`, then its manifest.
pub fn export(
    source_dir: &Path,
    source: &Manifest,
    audience: &Audience,
    to: &Path,
    mut progress: impl FnMut(Progress),
) -> Result<Manifest, ExportError> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| ExportError::Io { path, source }
    };
    std::fs::create_dir_all(to).map_err(io(to))?;
    if std::fs::read_dir(to).map_err(io(to))?.next().is_some() {
        return Err(ExportError::NotEmpty(to.to_owned()));
    }
    let mut out = Manifest::empty(source.chain_id.clone(), audience.name().to_owned());
    out.height = source.height;
    out.next_file = source.next_file;
    let mut report = Progress {
        files_total: source.files.len(),
        rows_total: source.files.iter().map(|f| f.rows).sum(),
        ..Progress::default()
    };
    for entry in &source.files {
        let from = source_dir.join(&entry.path);
        let dest = to.join(&entry.path);
        let rows = match audience {
            Audience::All => {
                let parent = dest.parent().unwrap_or(to);
                std::fs::create_dir_all(parent).map_err(io(parent))?;
                std::fs::copy(&from, &dest).map_err(io(&dest))?;
                entry.rows
            }
            Audience::Org(org) => filter_file(&from, &dest, entry, org)?,
        };
        report.files_done += 1;
        report.rows_read += entry.rows;
        report.rows_written += rows;
        if rows > 0 {
            let (blake3, bytes) = manifest::hash_file(&dest).map_err(io(&dest))?;
            out.files.push(FileEntry {
                rows,
                bytes,
                blake3,
                ..entry.clone()
            });
        }
        progress(report);
    }
    out.store(to)?;
    Ok(out)
}

/// Rewrites `from` into `dest` keeping the rows `org` reads; writes no
/// file when none is left. Returns the rows kept.
fn filter_file(from: &Path, dest: &Path, entry: &FileEntry, org: &str) -> Result<u64, ExportError> {
    let table = Table::parse(&entry.table).ok_or_else(|| ExportError::NoReaders {
        path: from.to_owned(),
    })?;
    let needle = format!(",{org},");
    let from_path = from.to_owned();
    // Streamed: one row group in memory at a time.
    let batches = projection::read_parquet(from)?.map(move |batch| {
        let batch = batch?;
        let readers = batch
            .column_by_name("readers")
            .and_then(|c| c.as_any().downcast_ref::<StringArray>())
            .ok_or_else(|| ProjectionError::Io {
                path: from_path.clone(),
                source: std::io::Error::other("no readers column of strings"),
            })?;
        let mask: BooleanArray = (0..readers.len())
            .map(|i| Some(readers.is_valid(i) && readers.value(i).contains(&needle)))
            .collect();
        Ok(filter_record_batch(&batch, &mask)?)
    });
    let rows = projection::write_parquet(dest, table, batches)?;
    if rows == 0 {
        std::fs::remove_file(dest).map_err(|source| ExportError::Io {
            path: dest.to_owned(),
            source,
        })?;
    }
    Ok(rows)
}
