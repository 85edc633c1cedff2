//! `lotline backup`: a consistent copy of a node's data folder while the
//! node runs.
//!
//! # Why a prefix copy is consistent
//!
//! The block log is append-only and a block's index entry is written only
//! after the block is fdatasync'ed in the log (`store::block_index`). So
//! the index, read at any moment, names a height `H` whose blocks are all
//! durable in the log, and the log's bytes up to the end of block `H` never
//! change again. The backup reads the index once, then copies exactly that
//! prefix of the log (checking each record's checksum and that it starts
//! where the index says) and the first `H` index entries, while the node
//! goes on appending behind it. Nothing is locked and the node is not told.
//!
//! Beside them: the genesis (public; lets an offsite copy be checked on its
//! own), the audit trail up to its last complete line, and, only with
//! `--with-keys`, the key files (mode 0600). sled is not copied: it is
//! derived from the log, and a copy taken under a running sled would not
//! be consistent. `manifest.json` ([`super::manifest`]) is written last.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use lotline_core::block::Header;

use super::manifest::{self, FileEntry, Formats, MANIFEST_VERSION, Manifest};
use super::now_ms;
use crate::progress::{Progress, Unit};
use crate::store::block_index::{self, IndexEntry};
use crate::store::block_log::{self, BlockRecord};
use crate::store::record_file::{self, HEADER_LEN, RECORD_PREFIX_LEN, Record, RecordFileError};

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    File(#[from] RecordFileError),
    #[error("{path} is not empty; a backup goes into a new or empty folder")]
    TargetNotEmpty { path: PathBuf },
    #[error(
        "{path}: no block index; start the node once (it writes the index) before backing it up"
    )]
    NoIndex { path: PathBuf },
    #[error(
        "the block index and the block log disagree at height {height} ({detail}); if the node was restarting, run the backup again"
    )]
    Disagrees { height: u64, detail: String },
    #[error("the block at height {height} does not decode: {source}")]
    Decode {
        height: u64,
        source: lotline_core::codec::DecodeError,
    },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> BackupError + '_ {
    move |source| BackupError::Io {
        path: path.to_owned(),
        source,
    }
}

/// What to back up besides the data folder.
#[derive(Debug, Default)]
pub struct Extras {
    /// The genesis file, copied as `genesis.toml`.
    pub genesis: Option<PathBuf>,
    /// Key files to copy into `keys/` (empty unless `--with-keys`).
    pub keys: Vec<PathBuf>,
}

/// Backs up the data folder `data_dir` into the new or empty folder `to`.
pub fn backup(data_dir: &Path, to: &Path, extras: &Extras) -> Result<Manifest, BackupError> {
    prepare_target(to)?;
    let index_path = data_dir.join("blocks.index");
    if !index_path.exists() {
        return Err(BackupError::NoIndex { path: index_path });
    }
    let (index_records, _) = record_file::read_records(
        &index_path,
        block_index::MAGIC,
        block_index::VERSION,
        block_index::ENTRY_MAX,
    )?;
    let entries = entries(&index_records)?;
    let mut files = Vec::new();
    let head = copy_log(
        &data_dir.join("blocks.log"),
        &to.join(manifest::BLOCK_LOG_FILE),
        &entries,
        &mut files,
    )?;
    let index_bytes = index_prefix(&index_records);
    files.push(write_file(
        &to.join(manifest::BLOCK_INDEX_FILE),
        manifest::BLOCK_INDEX_FILE,
        &index_bytes,
        None,
    )?);
    if let Some(genesis) = &extras.genesis {
        let bytes = std::fs::read(genesis).map_err(io_err(genesis))?;
        files.push(write_file(
            &to.join(manifest::GENESIS_FILE),
            manifest::GENESIS_FILE,
            &bytes,
            None,
        )?);
    }
    let audit = data_dir
        .join(crate::audit::DIR_NAME)
        .join(crate::audit::FILE_NAME);
    if audit.exists() {
        let bytes = std::fs::read(&audit).map_err(io_err(&audit))?;
        // Up to the last complete line: the node may be appending one.
        let end = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        files.push(write_file(
            &to.join(manifest::AUDIT_FILE),
            manifest::AUDIT_FILE,
            &bytes[..end],
            None,
        )?);
    }
    if !extras.keys.is_empty() {
        let dir = to.join(manifest::KEYS_DIR);
        std::fs::create_dir(&dir).map_err(io_err(&dir))?;
        for key in &extras.keys {
            let name = key
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "key".into());
            let bytes = std::fs::read(key).map_err(io_err(key))?;
            let rel = format!("{}/{name}", manifest::KEYS_DIR);
            files.push(write_file(&dir.join(&name), &rel, &bytes, Some(0o600))?);
        }
    }
    let manifest = Manifest {
        manifest_version: MANIFEST_VERSION,
        lotline_version: env!("CARGO_PKG_VERSION").to_owned(),
        chain_id: head.as_ref().map(|h| h.chain_id.to_hex()),
        height: entries.len() as u64,
        head_hash: head.as_ref().map(|h| h.hash().0.to_hex()),
        head_view: head.as_ref().map_or(0, |h| h.view),
        created_at_ms: now_ms(),
        formats: Formats::current(),
        files,
        keys_included: !extras.keys.is_empty(),
    };
    write_manifest(to, &manifest)?;
    Ok(manifest)
}

/// Creates `to`, or accepts it if it exists and is empty.
fn prepare_target(to: &Path) -> Result<(), BackupError> {
    match std::fs::read_dir(to) {
        Ok(mut listing) => {
            if listing.next().is_some() {
                return Err(BackupError::TargetNotEmpty {
                    path: to.to_owned(),
                });
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(to).map_err(io_err(to))
        }
        Err(source) => Err(BackupError::Io {
            path: to.to_owned(),
            source,
        }),
    }
}

/// The index entries, checked to be heights 1, 2, ... (as the node's own
/// open checks them).
fn entries(records: &[Record]) -> Result<Vec<IndexEntry>, BackupError> {
    let mut entries = Vec::with_capacity(records.len());
    for (i, record) in records.iter().enumerate() {
        let height = i as u64 + 1;
        let entry = IndexEntry::from_bytes(&record.body).ok_or(BackupError::Disagrees {
            height,
            detail: "index entry does not decode".into(),
        })?;
        if entry.height != height {
            return Err(BackupError::Disagrees {
                height,
                detail: format!("index entry names height {}", entry.height),
            });
        }
        entries.push(entry);
    }
    Ok(entries)
}

/// The index file as it was up to its last entry: header and records
/// re-encoded exactly as the record file writes them.
fn index_prefix(records: &[Record]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(block_index::MAGIC);
    out.extend_from_slice(&block_index::VERSION.to_be_bytes());
    for record in records {
        let len = u32::try_from(record.body.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&crc32fast::hash(&record.body).to_be_bytes());
        out.extend_from_slice(&record.body);
    }
    out
}

/// Copies the log's prefix that ends with the last indexed block, checking
/// every record against the index. Returns the head's header.
fn copy_log(
    from: &Path,
    to: &Path,
    entries: &[IndexEntry],
    files: &mut Vec<FileEntry>,
) -> Result<Option<Header>, BackupError> {
    let source = File::open(from).map_err(io_err(from))?;
    let mut header = [0u8; HEADER_LEN as usize];
    source.read_exact_at(&mut header, 0).map_err(io_err(from))?;
    record_file::check_header(from, &header, block_log::MAGIC, block_log::VERSION)?;
    let end = match entries.last() {
        None => HEADER_LEN,
        Some(last) => last.offset + RECORD_PREFIX_LEN + read_prefix(&source, from, last.offset)?.0,
    };
    let out = File::create(to).map_err(io_err(to))?;
    let mut writer = BufWriter::with_capacity(1 << 20, &out);
    let mut hasher = blake3::Hasher::new();
    let mut emit = |bytes: &[u8]| -> Result<(), BackupError> {
        hasher.update(bytes);
        writer.write_all(bytes).map_err(io_err(to))
    };
    emit(&header)?;
    let mut progress = Progress::new("backing up the block log", end, Unit::Bytes);
    let mut offset = HEADER_LEN;
    let mut last_body = Vec::new();
    for entry in entries {
        if entry.offset != offset {
            return Err(BackupError::Disagrees {
                height: entry.height,
                detail: format!(
                    "index says offset {}, the previous block ends at {offset}",
                    entry.offset
                ),
            });
        }
        let (len, crc) = read_prefix(&source, from, offset)?;
        if len > block_log::RECORD_MAX as u64 {
            return Err(BackupError::Disagrees {
                height: entry.height,
                detail: format!("record length {len} beyond the limit"),
            });
        }
        let mut body = vec![0u8; len as usize];
        source
            .read_exact_at(&mut body, offset + RECORD_PREFIX_LEN)
            .map_err(io_err(from))?;
        if crc32fast::hash(&body) != crc {
            return Err(RecordFileError::Corrupt {
                path: from.to_owned(),
                offset,
                reason: "checksum mismatch on read",
                following: end.saturating_sub(offset + RECORD_PREFIX_LEN + len),
            }
            .into());
        }
        emit(&(len as u32).to_be_bytes())?;
        emit(&crc.to_be_bytes())?;
        emit(&body)?;
        offset += RECORD_PREFIX_LEN + len;
        progress.advance(RECORD_PREFIX_LEN + len);
        last_body = body;
    }
    progress.finish();
    writer.flush().map_err(io_err(to))?;
    drop(writer);
    out.sync_all().map_err(io_err(to))?;
    files.push(FileEntry {
        path: manifest::BLOCK_LOG_FILE.into(),
        bytes: offset,
        blake3: hasher.finalize().to_hex().to_string(),
    });
    let Some(last) = entries.last() else {
        return Ok(None);
    };
    // The head, and the same confirmation the node's open makes: the last
    // index entry describes this block.
    let record = BlockRecord::from_stored(&last_body).map_err(|source| BackupError::Decode {
        height: last.height,
        source,
    })?;
    let ids = record.block.ids();
    if record.block.header.height != last.height
        || IndexEntry::new(last.height, last.offset, &ids) != *last
    {
        return Err(BackupError::Disagrees {
            height: last.height,
            detail: "the index entry does not describe the block".into(),
        });
    }
    Ok(Some(record.block.header))
}

/// A record's length and checksum at `offset`.
fn read_prefix(file: &File, path: &Path, offset: u64) -> Result<(u64, u32), BackupError> {
    let mut prefix = [0u8; RECORD_PREFIX_LEN as usize];
    file.read_exact_at(&mut prefix, offset)
        .map_err(io_err(path))?;
    let len = u32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]);
    let crc = u32::from_be_bytes([prefix[4], prefix[5], prefix[6], prefix[7]]);
    Ok((u64::from(len), crc))
}

/// Writes and fdatasyncs a new file; returns its manifest entry.
fn write_file(
    path: &Path,
    rel: &str,
    bytes: &[u8],
    mode: Option<u32>,
) -> Result<FileEntry, BackupError> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    if let Some(mode) = mode {
        options.mode(mode);
    }
    let mut file = options.open(path).map_err(io_err(path))?;
    file.write_all(bytes).map_err(io_err(path))?;
    file.sync_all().map_err(io_err(path))?;
    Ok(FileEntry {
        path: rel.to_owned(),
        bytes: bytes.len() as u64,
        blake3: blake3::hash(bytes).to_hex().to_string(),
    })
}

/// The manifest, last and atomically: a temporary file, fdatasync'ed,
/// renamed, then the folder fsync'ed.
fn write_manifest(to: &Path, manifest: &Manifest) -> Result<(), BackupError> {
    let tmp = to.join(format!("{}.tmp", manifest::MANIFEST_FILE));
    let mut json = serde_json::to_vec_pretty(manifest).map_err(|e| BackupError::Io {
        path: tmp.clone(),
        source: std::io::Error::other(e),
    })?;
    json.push(b'\n');
    let mut file = File::create(&tmp).map_err(io_err(&tmp))?;
    file.write_all(&json).map_err(io_err(&tmp))?;
    file.sync_all().map_err(io_err(&tmp))?;
    let path = to.join(manifest::MANIFEST_FILE);
    std::fs::rename(&tmp, &path).map_err(io_err(&path))?;
    File::open(to)
        .and_then(|dir| dir.sync_all())
        .map_err(io_err(to))
}
