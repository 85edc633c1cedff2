//! The `RESTORED` marker: a data folder written by `lotline restore`.
//!
//! A validator restored from a backup has lost every vote it signed after
//! the backup. Voting again could contradict one of them (two different
//! votes of one validator in one view), which is exactly the fault the
//! protocol tolerates only f times: with f Byzantine validators besides,
//! two conflicting blocks could both be certified. So the node reads the
//! marker at start and, while it is there, signs nothing: with several
//! validators it follows the chain as a non-voting replica (block sync and
//! certificates from peers; it forms no vote, no proposal); a single
//! validator, which has no peers to follow, does not start.
//!
//! The marker is removed only by an operator (`lotline resume-voting`),
//! after making sure the condition in docs/operations.md ("Restoring a
//! validator") holds: the old instance is stopped for good and the chain
//! has since finalized a view that began after it stopped.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub const MARKER_FILE: &str = "RESTORED";

/// What the marker records (for the operator; the node only checks that
/// it exists).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Marker {
    /// When the restore ran, unix milliseconds.
    pub restored_at_ms: u64,
    /// The backup's height, head hash and head view.
    pub backup_height: u64,
    pub backup_head_hash: Option<String>,
    pub backup_head_view: u64,
    /// When the backup was taken, unix milliseconds.
    pub backup_created_at_ms: u64,
    pub note: String,
}

pub const NOTE: &str = "This validator was restored from a backup and does not vote until an operator runs `lotline resume-voting` (docs/operations.md, \"Restoring a validator\").";

#[derive(Debug, thiserror::Error)]
pub enum MarkerError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a restore marker: {source}")]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
}

impl Marker {
    pub fn path(data_dir: &Path) -> PathBuf {
        data_dir.join(MARKER_FILE)
    }

    /// The marker of `data_dir`, if there is one. A marker that does not
    /// parse still counts (it is an error, never a silent "no marker").
    pub fn read(data_dir: &Path) -> Result<Option<Marker>, MarkerError> {
        let path = Marker::path(data_dir);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|source| MarkerError::Parse { path, source }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(MarkerError::Io { path, source }),
        }
    }

    /// Writes the marker durably into `data_dir`.
    pub fn write(&self, data_dir: &Path) -> Result<(), MarkerError> {
        let path = Marker::path(data_dir);
        let io = |source| MarkerError::Io {
            path: path.clone(),
            source,
        };
        let mut json = serde_json::to_vec_pretty(self).map_err(|e| io(std::io::Error::other(e)))?;
        json.push(b'\n');
        let mut file = std::fs::File::create(&path).map_err(io)?;
        file.write_all(&json).map_err(io)?;
        file.sync_all().map_err(io)?;
        crate::store::record_file::sync_parent_dir(&path).map_err(io)
    }

    /// Removes the marker durably; `false` if there was none.
    pub fn clear(data_dir: &Path) -> Result<bool, MarkerError> {
        let path = Marker::path(data_dir);
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(source) => return Err(MarkerError::Io { path, source }),
        }
        crate::store::record_file::sync_parent_dir(&path)
            .map_err(|source| MarkerError::Io { path, source })?;
        Ok(true)
    }
}
