//! The manifest: what a projection or an export holds, and how to check it.
//!
//! `manifest.json` lists every Parquet file with its BLAKE3 hash, byte size,
//! row count and the block heights its rows come from, plus the chain id,
//! whose view the files are (`reader`: `all` or one org) and the height the
//! files cover (blocks `1..=height`). It is written last and atomically
//! (temporary file, fdatasync, rename, fsync of the folder): files it does
//! not list are not part of the data set, so a crash between writing a
//! file and the manifest leaves an orphan that the next open removes.
//!
//! [`verify`] recomputes everything a file entry claims and also refuses
//! files the manifest does not list: an edited, truncated, replaced, added or
//! removed file fails.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::file::statistics::Statistics;
use serde::{Deserialize, Serialize};

use crate::schema::{PARTITION_KEY, Table};

pub const FILE_NAME: &str = "manifest.json";
/// 3: rows carry `read_facts` and the manifest lists their values
/// (`facts`), so visibility is decided at query time; 2 carried `readers`
/// (orgs judged by the genesis at projection time); 2 and 3 partition by
/// event month (`event_month=YYYY-MM`, entries name a `month`); 1 by event
/// date (`date=`).
pub const FORMAT: u32 = 3;
/// The `reader` of a data set with every row.
pub const READER_ALL: &str = "all";

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Manifest {
    pub format: u32,
    /// Lowercase hex chain id of the genesis the rows come from.
    pub chain_id: String,
    /// `all`, or the org whose read permissions chose the rows.
    pub reader: String,
    /// The files hold every row of blocks `1..=height` that `reader` may read.
    pub height: u64,
    /// The number the next file written gets (file names are never reused).
    pub next_file: u64,
    /// Every distinct `read_facts` value in the files, sorted
    /// ([`crate::facts`]): what a reader's rule is asked about at query
    /// time. A row whose value is not listed is shown to no org reader.
    pub facts: Vec<String>,
    pub files: Vec<FileEntry>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FileEntry {
    /// Relative to the manifest's folder, `/`-separated:
    /// `events/event_month=2026-12/part-00000042.parquet`.
    pub path: String,
    pub table: String,
    /// The partition: UTC month (`YYYY-MM`) of the rows' event time.
    pub month: String,
    pub rows: u64,
    pub bytes: u64,
    /// Lowercase hex BLAKE3 of the file's bytes.
    pub blake3: String,
    /// Lowest and highest block height of a row in the file.
    pub height_min: u64,
    pub height_max: u64,
}

impl Manifest {
    pub fn empty(chain_id: String, reader: String) -> Manifest {
        Manifest {
            format: FORMAT,
            chain_id,
            reader,
            height: 0,
            next_file: 1,
            facts: Vec::new(),
            files: Vec::new(),
        }
    }

    /// The files of `table`, in height order.
    pub fn files_of(&self, table: Table) -> impl Iterator<Item = &FileEntry> {
        self.files.iter().filter(move |f| f.table == table.name())
    }

    /// Rows of `table` over all its files.
    pub fn rows_of(&self, table: Table) -> u64 {
        self.files_of(table).map(|f| f.rows).sum()
    }

    /// Adds a `read_facts` value to [`Manifest::facts`] (kept sorted).
    pub fn add_facts(&mut self, value: &str) {
        if let Err(at) = self.facts.binary_search_by(|f| f.as_str().cmp(value)) {
            self.facts.insert(at, value.to_owned());
        }
    }

    /// Reads `dir/manifest.json`; `None` if there is none.
    pub fn load(dir: &Path) -> Result<Option<Manifest>, ManifestError> {
        let path = dir.join(FILE_NAME);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(ManifestError::Io { path, source }),
        };
        let manifest: Manifest =
            serde_json::from_slice(&bytes).map_err(|source| ManifestError::Json {
                path: path.clone(),
                source,
            })?;
        if manifest.format != FORMAT {
            return Err(ManifestError::Format {
                path,
                found: manifest.format,
            });
        }
        Ok(Some(manifest))
    }

    /// Writes `dir/manifest.json` atomically and durably.
    pub fn store(&self, dir: &Path) -> Result<(), ManifestError> {
        write_atomic(&dir.join(FILE_NAME), &self.to_bytes())
    }

    /// The bytes of `manifest.json`: pretty JSON and a newline.
    pub fn to_bytes(&self) -> Vec<u8> {
        // Structs of strings and integers, no maps: serializing cannot fail.
        let mut bytes = serde_json::to_vec_pretty(self).expect("a manifest serializes");
        bytes.push(b'\n');
        bytes
    }
}

/// Writes `path` through a temporary file, fdatasync and rename, then
/// fsyncs the folder so the rename survives a crash.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ManifestError> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| ManifestError::Io { path, source }
    };
    let tmp = path.with_extension("tmp");
    let mut file = File::create(&tmp).map_err(io(&tmp))?;
    file.write_all(bytes).map_err(io(&tmp))?;
    file.sync_data().map_err(io(&tmp))?;
    drop(file);
    std::fs::rename(&tmp, path).map_err(io(path))?;
    sync_dir(path.parent().unwrap_or(Path::new(".")))
}

pub fn sync_dir(dir: &Path) -> Result<(), ManifestError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| ManifestError::Io {
            path: dir.to_owned(),
            source,
        })
}

/// Lowercase hex BLAKE3 of a file, and its length.
pub fn hash_file(path: &Path) -> Result<(String, u64), std::io::Error> {
    let mut file = File::open(path)?;
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut len = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        len += n as u64;
        hasher.update(&buf[..n]);
    }
    Ok((hasher.finalize().to_hex().to_string(), len))
}

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Json {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("{path}: manifest format {found}, this build reads {FORMAT}")]
    Format { path: PathBuf, found: u32 },
}

/// One way a data set differs from its manifest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Mismatch {
    #[error("{path}: missing")]
    Missing { path: String },
    #[error("{path}: cannot read: {reason}")]
    Unreadable { path: String, reason: String },
    #[error("{path}: {found} bytes, the manifest says {expected}")]
    Size {
        path: String,
        expected: u64,
        found: u64,
    },
    #[error("{path}: BLAKE3 {found}, the manifest says {expected}")]
    Hash {
        path: String,
        expected: String,
        found: String,
    },
    #[error("{path}: {found} rows, the manifest says {expected}")]
    Rows {
        path: String,
        expected: u64,
        found: u64,
    },
    #[error("{path}: heights {min}..={max} outside the manifest's {expected_min}..={expected_max}")]
    Heights {
        path: String,
        min: i64,
        max: i64,
        expected_min: u64,
        expected_max: u64,
    },
    #[error("{path}: not listed in the manifest")]
    Unlisted { path: String },
    #[error("{path}: entry names table {table:?} or a path outside its table and month")]
    BadEntry { path: String, table: String },
    #[error("{path}: event times in months {first}..={last}, the partition is {expected}")]
    Month {
        path: String,
        first: String,
        last: String,
        expected: String,
    },
}

/// What [`verify`] checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub manifest: Manifest,
    pub files: usize,
    pub rows: u64,
    pub bytes: u64,
    /// Every difference found; empty when the data set matches.
    pub mismatches: Vec<Mismatch>,
}

/// Recomputes every file's hash, size, row count and height range against
/// the manifest in `dir`, and looks for files it does not list. Collects
/// every mismatch rather than stopping at the first.
pub fn verify(dir: &Path) -> Result<Verified, ManifestError> {
    let Some(manifest) = Manifest::load(dir)? else {
        return Err(ManifestError::Io {
            path: dir.join(FILE_NAME),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no manifest"),
        });
    };
    let mut mismatches = Vec::new();
    let (mut rows, mut bytes) = (0, 0);
    for entry in &manifest.files {
        rows += entry.rows;
        bytes += entry.bytes;
        if let Some(m) =
            check_entry_path(entry).or_else(|| check_file(&dir.join(&entry.path), entry))
        {
            mismatches.push(m);
        }
    }
    let listed: std::collections::HashSet<&str> =
        manifest.files.iter().map(|f| f.path.as_str()).collect();
    for path in data_files(dir).map_err(|source| ManifestError::Io {
        path: dir.to_owned(),
        source,
    })? {
        if !listed.contains(path.as_str()) {
            mismatches.push(Mismatch::Unlisted { path });
        }
    }
    Ok(Verified {
        files: manifest.files.len(),
        manifest,
        rows,
        bytes,
        mismatches,
    })
}

/// A [`Mismatch::BadEntry`] if `entry` names no table or a path outside
/// the folder of its table and month (the manifest may come from an
/// attacker).
pub fn check_entry_path(entry: &FileEntry) -> Option<Mismatch> {
    let partition = format!("{}/{PARTITION_KEY}={}/", entry.table, entry.month);
    let safe = Table::parse(&entry.table).is_some()
        && !entry.month.is_empty()
        && !entry.month.contains('/')
        && entry
            .path
            .strip_prefix(&partition)
            .is_some_and(|file| !file.is_empty() && !file.contains('/'))
        && entry.path.split('/').all(|c| !c.is_empty() && c != "..");
    (!safe).then(|| Mismatch::BadEntry {
        path: entry.path.clone(),
        table: entry.table.clone(),
    })
}

/// The first way the local `file` differs from `entry`, if any.
pub fn check_file(file: &Path, entry: &FileEntry) -> Option<Mismatch> {
    let path = entry.path.clone();
    let (hash, len) = match hash_file(file) {
        Ok(found) => found,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Some(Mismatch::Missing { path });
        }
        Err(e) => {
            return Some(Mismatch::Unreadable {
                path,
                reason: e.to_string(),
            });
        }
    };
    if len != entry.bytes {
        return Some(Mismatch::Size {
            path,
            expected: entry.bytes,
            found: len,
        });
    }
    if hash != entry.blake3 {
        return Some(Mismatch::Hash {
            path,
            expected: entry.blake3.clone(),
            found: hash,
        });
    }
    let footer = match footer_facts(file) {
        Ok(facts) => facts,
        Err(reason) => return Some(Mismatch::Unreadable { path, reason }),
    };
    if footer.rows != entry.rows {
        return Some(Mismatch::Rows {
            path,
            expected: entry.rows,
            found: footer.rows,
        });
    }
    if let Some((min, max)) = footer.heights {
        let inside = |h: i64| {
            u64::try_from(h).is_ok_and(|h| (entry.height_min..=entry.height_max).contains(&h))
        };
        if !inside(min) || !inside(max) {
            return Some(Mismatch::Heights {
                path,
                min,
                max,
                expected_min: entry.height_min,
                expected_max: entry.height_max,
            });
        }
    }
    if let Some((first, last)) = footer.event_times {
        let (first, last) = (crate::rows::month_of(first), crate::rows::month_of(last));
        if first != entry.month || last != entry.month {
            return Some(Mismatch::Month {
                path,
                first,
                last,
                expected: entry.month.clone(),
            });
        }
    }
    None
}

/// What a Parquet footer says: rows, and the min/max of `height` and of
/// `event_time` (unix ms) over its row groups.
#[derive(Debug)]
pub struct Footer {
    pub rows: u64,
    pub heights: Option<(i64, i64)>,
    pub event_times: Option<(i64, i64)>,
}

pub fn footer_facts(file: &Path) -> Result<Footer, String> {
    let reader = File::open(file)
        .map_err(|e| e.to_string())
        .and_then(|f| SerializedFileReader::new(f).map_err(|e| e.to_string()))?;
    let meta = reader.metadata();
    let rows = u64::try_from(meta.file_metadata().num_rows()).map_err(|e| e.to_string())?;
    let range = |name: &str| -> Result<Option<(i64, i64)>, String> {
        let column = meta
            .file_metadata()
            .schema_descr()
            .columns()
            .iter()
            .position(|c| c.name() == name)
            .ok_or_else(|| format!("no {name} column"))?;
        let mut range: Option<(i64, i64)> = None;
        for group in meta.row_groups() {
            match group.column(column).statistics() {
                Some(Statistics::Int64(s)) => {
                    if let (Some(&lo), Some(&hi)) = (s.min_opt(), s.max_opt()) {
                        range = Some(match range {
                            Some((a, b)) => (a.min(lo), b.max(hi)),
                            None => (lo, hi),
                        });
                    }
                }
                _ => return Err(format!("{name} column has no Int64 statistics")),
            }
        }
        Ok(range)
    };
    Ok(Footer {
        rows,
        heights: range("height")?,
        event_times: range("event_time")?,
    })
}

/// Every `*.parquet` under the table folders of `dir`, as manifest paths.
pub fn data_files(dir: &Path) -> Result<Vec<String>, std::io::Error> {
    let mut out = Vec::new();
    for table in Table::ALL {
        let table_dir = dir.join(table.name());
        let partitions = match std::fs::read_dir(&table_dir) {
            Ok(p) => p,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        for partition in partitions {
            let partition = partition?;
            let name = partition.file_name().to_string_lossy().into_owned();
            if !partition.file_type()?.is_dir() {
                out.push(format!("{}/{name}", table.name()));
                continue;
            }
            for file in std::fs::read_dir(partition.path())? {
                let file = file?.file_name().to_string_lossy().into_owned();
                out.push(format!("{}/{name}/{file}", table.name()));
            }
        }
    }
    out.sort();
    Ok(out)
}
