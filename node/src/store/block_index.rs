//! The block index: one small record per block of the log, written after the
//! block is verified and fdatasync'ed, so that opening the log needs neither
//! to read, decode nor verify the blocks it already verified.
//!
//! ```text
//! file  = record file ("LLBLKIDX", version 1), one record per block, in order
//! entry = height (u64 BE) || offset of the block in the log (u64 BE)
//!         || first 8 bytes of each attestation id (u64 BE)*
//! ```
//!
//! An entry exists only for a block that passed [`super::BlockLog::check`]
//! and is durable in the log, so the index is a "verified through here" mark
//! as well as the offsets and the committed-id filter
//! ([`super::committed_ids`]). It is derived data: fdatasync'ed only every
//! [`SYNC_EVERY_BLOCKS`] blocks (a block's own fdatasync is what makes it
//! committed), and when it is missing, torn, damaged or disagrees with the
//! log, the log is verified in full and the index written again.

use std::path::Path;

use lotline_core::attestation::AttestationId;
use lotline_core::limits;

use super::committed_ids::prefix;
use super::record_file::{Opened, RecordFile, RecordFileError};

pub const MAGIC: &[u8; 8] = b"LLBLKIDX";
pub const VERSION: u32 = 1;
const ENTRY_FIXED: usize = 16;
pub const ENTRY_MAX: usize = ENTRY_FIXED + 8 * limits::BLOCK_ATTESTATIONS_MAX;

/// Blocks appended between two fdatasyncs of the index: after a power loss
/// at most this many blocks are verified again at open (a process crash
/// loses nothing: the OS has the writes).
pub const SYNC_EVERY_BLOCKS: u32 = 64;

/// What the index says about one block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexEntry {
    pub height: u64,
    pub offset: u64,
    pub prefixes: Vec<u64>,
}

impl IndexEntry {
    pub fn new(height: u64, offset: u64, ids: &[AttestationId]) -> IndexEntry {
        IndexEntry {
            height,
            offset,
            prefixes: ids.iter().map(prefix).collect(),
        }
    }

    fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(ENTRY_FIXED + 8 * self.prefixes.len());
        out.extend_from_slice(&self.height.to_be_bytes());
        out.extend_from_slice(&self.offset.to_be_bytes());
        for p in &self.prefixes {
            out.extend_from_slice(&p.to_be_bytes());
        }
        out
    }

    pub fn from_bytes(bytes: &[u8]) -> Option<IndexEntry> {
        if bytes.len() < ENTRY_FIXED || !(bytes.len() - ENTRY_FIXED).is_multiple_of(8) {
            return None;
        }
        let word = |chunk: &[u8]| chunk.try_into().ok().map(u64::from_be_bytes);
        Some(IndexEntry {
            height: word(&bytes[..8])?,
            offset: word(&bytes[8..16])?,
            prefixes: bytes[ENTRY_FIXED..]
                .chunks_exact(8)
                .map(word)
                .collect::<Option<_>>()?,
        })
    }
}

/// Why the index cannot be used (the log is then verified in full).
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error(transparent)]
    File(#[from] RecordFileError),
    #[error("block index entry {index} does not decode")]
    Decode { index: usize },
    #[error("block index entry {index} is for height {height}, expected {expected}")]
    Height {
        index: usize,
        height: u64,
        expected: u64,
    },
    #[error("block index entry for height {height} points before its predecessor")]
    Offset { height: u64 },
    #[error("block index entry for height {height} does not describe the block log's block")]
    Disagrees { height: u64 },
}

#[derive(Debug)]
pub struct BlockIndex {
    file: RecordFile,
    unsynced: u32,
}

impl BlockIndex {
    /// Opens the index and returns its entries, checked to be heights
    /// 1, 2, ... at increasing offsets. A torn last entry is cut off.
    pub fn open(path: &Path) -> Result<(BlockIndex, Vec<IndexEntry>), IndexError> {
        let Opened { file, records, .. } = RecordFile::open(path, MAGIC, VERSION, ENTRY_MAX)?;
        let mut entries: Vec<IndexEntry> = Vec::with_capacity(records.len());
        for (index, record) in records.iter().enumerate() {
            let entry = IndexEntry::from_bytes(&record.body).ok_or(IndexError::Decode { index })?;
            let expected = index as u64 + 1;
            if entry.height != expected {
                return Err(IndexError::Height {
                    index,
                    height: entry.height,
                    expected,
                });
            }
            if entries.last().is_some_and(|e| e.offset >= entry.offset) {
                return Err(IndexError::Offset {
                    height: entry.height,
                });
            }
            entries.push(entry);
        }
        Ok((BlockIndex { file, unsynced: 0 }, entries))
    }

    /// Deletes the index at `path` and starts an empty one.
    pub fn create(path: &Path) -> Result<BlockIndex, IndexError> {
        match std::fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(IndexError::File(RecordFileError::Io {
                    path: path.to_owned(),
                    source,
                }));
            }
        }
        let Opened { file, .. } = RecordFile::open(path, MAGIC, VERSION, ENTRY_MAX)?;
        Ok(BlockIndex { file, unsynced: 0 })
    }

    /// Appends the entry of a block that is verified and durable in the log.
    /// Not durable until [`sync`](Self::sync) or [`sync_if_due`](Self::sync_if_due).
    pub fn append(&mut self, entry: &IndexEntry) -> Result<(), RecordFileError> {
        self.file.append(&entry.to_bytes())?;
        self.unsynced = self.unsynced.saturating_add(1);
        Ok(())
    }

    /// fdatasyncs once [`SYNC_EVERY_BLOCKS`] entries wait (while running;
    /// rebuilding the whole index syncs once at the end instead).
    pub fn sync_if_due(&mut self) -> Result<(), RecordFileError> {
        if self.unsynced >= SYNC_EVERY_BLOCKS {
            self.sync()?;
        }
        Ok(())
    }

    pub fn sync(&mut self) -> Result<(), RecordFileError> {
        self.file.sync()?;
        self.unsynced = 0;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_and_out_of_order_entries_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("blocks.index");
        let mut index = BlockIndex::create(&path).unwrap();
        let entries = [
            IndexEntry {
                height: 1,
                offset: 12,
                prefixes: vec![1, 2, u64::MAX],
            },
            IndexEntry {
                height: 2,
                offset: 500,
                prefixes: vec![],
            },
        ];
        for e in &entries {
            index.append(e).unwrap();
        }
        index.sync().unwrap();
        drop(index);
        let (mut index, read) = BlockIndex::open(&path).unwrap();
        assert_eq!(read, entries);
        index
            .append(&IndexEntry {
                height: 4,
                offset: 900,
                prefixes: vec![],
            })
            .unwrap();
        index.sync().unwrap();
        drop(index);
        assert!(matches!(
            BlockIndex::open(&path),
            Err(IndexError::Height { index: 2, .. })
        ));
    }
}
