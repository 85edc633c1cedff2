//! `lotline restore`: a data folder from a backup, checked end to end
//! before the node may use it.
//!
//! In order, stopping at the first problem with an error that names it:
//! 1. the manifest reads and its formats are this version's;
//! 2. every file the manifest names has its size and BLAKE3 hash (a damaged
//!    or swapped file is refused here, by name);
//! 3. the backup's chain is the genesis's chain;
//! 4. the block log is verified in full against the genesis validators,
//!    through the node's own open ([`BlockLog::open`] without an index):
//!    every checksum, body, parent link and finality certificate; it must
//!    end at the manifest's height and head hash, and the index that open
//!    writes must equal the backup's;
//! 5. the audit trail's hash chain is intact.
//!
//! All of it happens in a staging folder beside the target, which is
//! renamed into place only at the end, with the [`Marker`] in it: the
//! node starts as a non-voting follower (see [`super::restored`]). sled is
//! not written: the node builds it from the block log at start, and then
//! catches up from its peers by block sync.

use std::path::{Path, PathBuf};

use crate::store::epochs::ValidatorSets;

use super::manifest::{self, Formats, Manifest, ManifestError, hash_file};
use super::now_ms;
use super::restored::{self, Marker, MarkerError};
use crate::progress::{Progress, Unit};
use crate::store::{BlockLog, BlockLogError};

#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("backup file {file} is missing")]
    MissingFile { file: String },
    #[error(
        "backup file {file} is damaged: the manifest says {expected_bytes} bytes with BLAKE3 {expected}, the file has {found_bytes} bytes with BLAKE3 {found}"
    )]
    Damaged {
        file: String,
        expected_bytes: u64,
        expected: String,
        found_bytes: u64,
        found: String,
    },
    #[error("the backup is of {what} format {found}; this lotline reads format {expected}")]
    Format {
        what: &'static str,
        found: u32,
        expected: u32,
    },
    #[error("the backup is of chain {backup}, the genesis is chain {genesis}")]
    ChainMismatch { backup: String, genesis: String },
    #[error("{path} exists and is not empty; restore writes a new data folder")]
    TargetNotEmpty { path: PathBuf },
    #[error("the backup's block log does not verify against the genesis: {0}")]
    Log(#[from] BlockLogError),
    #[error(
        "the backup's block log ends at height {found} (head {found_hash}), the manifest says height {expected} (head {expected_hash})"
    )]
    Head {
        expected: u64,
        expected_hash: String,
        found: u64,
        found_hash: String,
    },
    #[error("the backup's blocks.index does not describe its block log")]
    Index,
    #[error("the backup's audit trail is broken: {0}")]
    Audit(String),
    #[error(transparent)]
    Marker(#[from] MarkerError),
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> RestoreError + '_ {
    move |source| RestoreError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Checks the backup in `from` and writes it as the data folder `data_dir`
/// (new or empty) of a validator of `set`'s chain.
pub fn restore(
    from: &Path,
    data_dir: &Path,
    set: &dyn ValidatorSets,
) -> Result<Manifest, RestoreError> {
    let manifest = check(from, set)?;
    ensure_empty(data_dir)?;
    let staging = staging_path(data_dir);
    if staging.exists() {
        // Left by an interrupted restore of this same target: ours to remove.
        std::fs::remove_dir_all(&staging).map_err(io_err(&staging))?;
    }
    std::fs::create_dir_all(&staging).map_err(io_err(&staging))?;
    let result = fill(from, &staging, &manifest, set).and_then(|()| {
        if data_dir.exists() {
            // Empty (checked above): rename replaces it.
            std::fs::remove_dir(data_dir).map_err(io_err(data_dir))?;
        }
        std::fs::rename(&staging, data_dir).map_err(io_err(data_dir))?;
        crate::store::record_file::sync_parent_dir(data_dir).map_err(io_err(data_dir))
    });
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&staging);
    }
    result.map(|()| manifest)
}

/// Steps 1 to 3: the manifest, every file's hash, the chain.
pub fn check(from: &Path, set: &dyn ValidatorSets) -> Result<Manifest, RestoreError> {
    let manifest = Manifest::read(from)?;
    let current = Formats::current();
    for (what, found, expected) in [
        ("block log", manifest.formats.block_log, current.block_log),
        (
            "block index",
            manifest.formats.block_index,
            current.block_index,
        ),
    ] {
        if found != expected {
            return Err(RestoreError::Format {
                what,
                found,
                expected,
            });
        }
    }
    let total = manifest.files.iter().map(|f| f.bytes).sum();
    let mut progress = Progress::new("checking the backup's files", total, Unit::Bytes);
    for file in &manifest.files {
        let path = from.join(&file.path);
        if !path.exists() {
            return Err(RestoreError::MissingFile {
                file: file.path.clone(),
            });
        }
        let (bytes, hash) = hash_file(&path).map_err(io_err(&path))?;
        let found = hash.to_hex().to_string();
        if bytes != file.bytes || found != file.blake3 {
            return Err(RestoreError::Damaged {
                file: file.path.clone(),
                expected_bytes: file.bytes,
                expected: file.blake3.clone(),
                found_bytes: bytes,
                found,
            });
        }
        progress.advance(bytes);
    }
    progress.finish();
    for required in [manifest::BLOCK_LOG_FILE, manifest::BLOCK_INDEX_FILE] {
        if manifest.file(required).is_none() {
            return Err(RestoreError::MissingFile {
                file: required.into(),
            });
        }
    }
    let genesis = set.chain_id().to_hex();
    if let Some(backup) = &manifest.chain_id
        && *backup != genesis
    {
        return Err(RestoreError::ChainMismatch {
            backup: backup.clone(),
            genesis,
        });
    }
    Ok(manifest)
}

/// Steps 4 and 5, into `staging`, then the marker.
fn fill(
    from: &Path,
    staging: &Path,
    manifest: &Manifest,
    set: &dyn ValidatorSets,
) -> Result<(), RestoreError> {
    let log_path = staging.join("blocks.log");
    copy(&from.join(manifest::BLOCK_LOG_FILE), &log_path)?;
    // No index beside it: the open verifies every block and writes one.
    let (log, _) = BlockLog::open(&log_path, set)?;
    let found_hash = log.head().map(|h| h.hash().0.to_hex());
    if log.height() != manifest.height || found_hash != manifest.head_hash {
        return Err(RestoreError::Head {
            expected: manifest.height,
            expected_hash: manifest.head_hash.clone().unwrap_or_default(),
            found: log.height(),
            found_hash: found_hash.unwrap_or_default(),
        });
    }
    drop(log);
    let rebuilt = staging.join("blocks.index");
    let backup_index = from.join(manifest::BLOCK_INDEX_FILE);
    if std::fs::read(&rebuilt).map_err(io_err(&rebuilt))?
        != std::fs::read(&backup_index).map_err(io_err(&backup_index))?
    {
        return Err(RestoreError::Index);
    }
    if manifest.file(manifest::AUDIT_FILE).is_some() {
        let source = from.join(manifest::AUDIT_FILE);
        let bytes = std::fs::read(&source).map_err(io_err(&source))?;
        if let Some(problem) = crate::audit::verify_bytes(&bytes).problem {
            return Err(RestoreError::Audit(problem.to_string()));
        }
        let dir = staging.join(crate::audit::DIR_NAME);
        std::fs::create_dir(&dir).map_err(io_err(&dir))?;
        copy(&source, &dir.join(crate::audit::FILE_NAME))?;
    }
    Marker {
        restored_at_ms: now_ms(),
        backup_height: manifest.height,
        backup_head_hash: manifest.head_hash.clone(),
        backup_head_view: manifest.head_view,
        backup_created_at_ms: manifest.created_at_ms,
        note: restored::NOTE.into(),
    }
    .write(staging)?;
    Ok(())
}

/// Copies a file and fdatasyncs the copy.
fn copy(from: &Path, to: &Path) -> Result<(), RestoreError> {
    std::fs::copy(from, to).map_err(io_err(from))?;
    std::fs::File::open(to)
        .and_then(|f| f.sync_all())
        .map_err(io_err(to))
}

fn ensure_empty(data_dir: &Path) -> Result<(), RestoreError> {
    match std::fs::read_dir(data_dir) {
        Ok(mut listing) => match listing.next() {
            Some(_) => Err(RestoreError::TargetNotEmpty {
                path: data_dir.to_owned(),
            }),
            None => Ok(()),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(RestoreError::Io {
            path: data_dir.to_owned(),
            source,
        }),
    }
}

/// `<data_dir>.restoring`, beside the target (same file system, so the
/// final rename is atomic).
fn staging_path(data_dir: &Path) -> PathBuf {
    let mut name = data_dir
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_else(|| "data".into());
    name.push(".restoring");
    data_dir.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::backup::{self, Extras};
    use crate::store::testing::Chain;

    /// A data folder with a three-block log (and its index) and its backup.
    fn backed_up(dir: &Path, chain: &mut Chain) -> PathBuf {
        let data = dir.join("data");
        std::fs::create_dir_all(&data).unwrap();
        let (mut log, _) = BlockLog::open(&data.join("blocks.log"), &chain.set).unwrap();
        for b in 0..3u32 {
            let record = chain.block(vec![Chain::envelope(b)]);
            let ids = log.check(&chain.set, &record).unwrap();
            log.append_durable(&record, &ids).unwrap();
        }
        drop(log);
        let to = dir.join("backup");
        let manifest = backup::backup(&data, &to, &Extras::default()).unwrap();
        assert_eq!(manifest.height, 3);
        to
    }

    /// Goal: restore never overwrites data and never accepts another
    /// chain's backup. Method: a non-empty target, a backup a second time
    /// into a used folder, and a validator set of another chain.
    #[test]
    fn restore_refuses_a_used_folder_and_another_chain() {
        let dir = tempfile::tempdir().unwrap();
        let mut chain = Chain::new();
        let from = backed_up(dir.path(), &mut chain);
        assert!(matches!(
            backup::backup(&dir.path().join("data"), &from, &Extras::default()),
            Err(backup::BackupError::TargetNotEmpty { .. })
        ));
        let used = dir.path().join("used");
        std::fs::create_dir_all(&used).unwrap();
        std::fs::write(used.join("blocks.log"), b"keep me").unwrap();
        assert!(matches!(
            restore(&from, &used, &chain.set),
            Err(RestoreError::TargetNotEmpty { .. })
        ));
        assert_eq!(std::fs::read(used.join("blocks.log")).unwrap(), b"keep me");
        let mut other = chain.set.clone();
        other.chain_id = lotline_core::hash::Digest([7; 32]);
        assert!(matches!(
            restore(&from, &dir.path().join("other"), &other),
            Err(RestoreError::ChainMismatch { .. })
        ));
        let restored = dir.path().join("restored");
        let manifest = restore(&from, &restored, &chain.set).unwrap();
        assert_eq!(manifest.height, 3);
        assert!(Marker::read(&restored).unwrap().is_some());
        assert!(!staging_path(&restored).exists());
    }
}
