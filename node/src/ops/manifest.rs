//! A backup's `manifest.json`: what the backup holds and how to check it.
//!
//! The manifest is written last, after every file it names is fdatasync'ed:
//! a folder without one is an unfinished backup and restore refuses it.
//! Each file is named with its size and BLAKE3 hash, so restore finds a
//! damaged or swapped file before it reads a block (and says which).

use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The manifest's own layout version.
pub const MANIFEST_VERSION: u32 = 1;
pub const MANIFEST_FILE: &str = "manifest.json";

/// Files of a backup, relative to its folder.
pub const BLOCK_LOG_FILE: &str = "blocks.log";
pub const BLOCK_INDEX_FILE: &str = "blocks.index";
pub const GENESIS_FILE: &str = "genesis.toml";
pub const AUDIT_FILE: &str = "audit.jsonl";
pub const KEYS_DIR: &str = "keys";

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub manifest_version: u32,
    /// The `lotline` version that wrote the backup.
    pub lotline_version: String,
    /// Hex chain id of the blocks (absent for an empty chain).
    pub chain_id: Option<String>,
    /// The last block in the backup; 0 for an empty chain.
    pub height: u64,
    /// Hex hash of the block at `height`.
    pub head_hash: Option<String>,
    /// The consensus view of the block at `height`.
    pub head_view: u64,
    /// Wall clock of the backup, unix milliseconds (informational).
    pub created_at_ms: u64,
    pub formats: Formats,
    pub files: Vec<FileEntry>,
    /// Whether `keys/` holds the node's key files (`--with-keys`).
    pub keys_included: bool,
}

/// Storage format versions the backup's files were written under.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Formats {
    pub block_log: u32,
    pub block_index: u32,
    /// sled's layout at the time (sled is not in the backup; restore
    /// rebuilds it under the layout of the version that starts the node).
    pub sled_index: u32,
}

impl Formats {
    pub fn current() -> Formats {
        Formats {
            block_log: crate::store::block_log::VERSION,
            block_index: crate::store::block_index::VERSION,
            sled_index: crate::store::index::FORMAT,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    /// Relative to the backup folder, `/`-separated.
    pub path: String,
    pub bytes: u64,
    /// Hex BLAKE3 of the file's bytes.
    pub blake3: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("{path}: no manifest; this is not a finished backup (the manifest is written last)")]
    Missing { path: PathBuf },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a backup manifest: {source}")]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("{path}: manifest version {found} is not supported (expected {expected})")]
    Version {
        path: PathBuf,
        found: u32,
        expected: u32,
    },
    #[error("{path}: unsafe file path {name:?} in the manifest")]
    UnsafePath { path: PathBuf, name: String },
}

impl Manifest {
    pub fn read(dir: &Path) -> Result<Manifest, ManifestError> {
        let path = dir.join(MANIFEST_FILE);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ManifestError::Missing { path });
            }
            Err(source) => return Err(ManifestError::Io { path, source }),
        };
        let manifest: Manifest =
            serde_json::from_slice(&bytes).map_err(|source| ManifestError::Parse {
                path: path.clone(),
                source,
            })?;
        if manifest.manifest_version != MANIFEST_VERSION {
            return Err(ManifestError::Version {
                path,
                found: manifest.manifest_version,
                expected: MANIFEST_VERSION,
            });
        }
        // Names come from a file that may have been edited: never let one
        // reach outside the backup folder.
        for file in &manifest.files {
            let safe = !file.path.is_empty()
                && !file.path.starts_with('/')
                && file
                    .path
                    .split('/')
                    .all(|part| !part.is_empty() && part != "." && part != "..");
            if !safe {
                return Err(ManifestError::UnsafePath {
                    path,
                    name: file.path.clone(),
                });
            }
        }
        Ok(manifest)
    }

    pub fn file(&self, name: &str) -> Option<&FileEntry> {
        self.files.iter().find(|f| f.path == name)
    }
}

/// Size and BLAKE3 of a file, read in chunks.
pub fn hash_file(path: &Path) -> std::io::Result<(u64, blake3::Hash)> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut bytes = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        bytes += n as u64;
    }
    Ok((bytes, hasher.finalize()))
}
