//! The block log: the system of record. One record per finalized block:
//! `postcard(BlockRecord { block, finality })` in a [`RecordFile`].
//!
//! On open every block is checked: it decodes, its body matches its header,
//! it links to its parent, and its finality (a certificate for it or for a
//! descendant, with the linking headers) verifies against the validator set. A block is appended and fdatasync'ed before anything else (sled,
//! clients) learns that it is committed.

use std::path::Path;

use lotline_core::attestation::AttestationId;
use lotline_core::block::{Block, BlockError, Header};
use lotline_core::certificate::{Finality, FinalityError};
use lotline_core::codec::{self, DecodeError};
use lotline_core::{ValidatorSet, limits};
use serde::{Deserialize, Serialize};

use super::record_file::{OpenReport, Opened, RecordFile, RecordFileError};

const MAGIC: &[u8; 8] = b"LLBLKLOG";
const VERSION: u32 = 1;
const RECORD_MAX: usize = limits::BLOCK_BYTES_MAX + 64 * 1024;

/// A finalized block and why it is final.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockRecord {
    pub block: Block,
    pub finality: Finality,
}

impl BlockRecord {
    pub fn to_bytes(&self) -> Vec<u8> {
        codec::to_bytes(self)
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<BlockRecord, DecodeError> {
        codec::from_bytes("block record", bytes, RECORD_MAX)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BlockLogError {
    #[error(transparent)]
    File(#[from] RecordFileError),
    #[error("block log record {index} does not decode: {source}")]
    Decode { index: usize, source: DecodeError },
    #[error("block log height {height} is invalid: {source}")]
    Block { height: u64, source: BlockError },
    #[error("block log height {height} is not proven final: {source}")]
    Finality { height: u64, source: FinalityError },
}

/// The block log with an in-memory height -> offset index.
#[derive(Debug)]
pub struct BlockLog {
    file: RecordFile,
    offsets: Vec<u64>,
    head: Option<Header>,
}

impl BlockLog {
    /// Opens and verifies the whole chain. `each` sees every verified block in
    /// order (used to rebuild sled without reading the file twice).
    pub fn open(
        path: &Path,
        set: &ValidatorSet,
        mut each: impl FnMut(&BlockRecord, &[AttestationId]),
    ) -> Result<(BlockLog, OpenReport), BlockLogError> {
        let Opened {
            file,
            records,
            report,
        } = RecordFile::open(path, MAGIC, VERSION, RECORD_MAX)?;
        let mut log = BlockLog {
            file,
            offsets: Vec::with_capacity(records.len()),
            head: None,
        };
        for (index, record) in records.into_iter().enumerate() {
            let (offset, body) = (record.offset, record.body);
            let record = BlockRecord::from_bytes(&body)
                .map_err(|source| BlockLogError::Decode { index, source })?;
            let ids = log.check(set, &record)?;
            each(&record, &ids);
            log.offsets.push(offset);
            log.head = Some(record.block.header);
        }
        Ok((log, report))
    }

    /// Checks that `record` may be the next block of this log.
    /// Returns the block's attestation ids (hashed once, here).
    pub fn check(
        &self,
        set: &ValidatorSet,
        record: &BlockRecord,
    ) -> Result<Vec<AttestationId>, BlockLogError> {
        let height = record.block.header.height;
        let ids = record
            .block
            .check_body(&set.chain_id)
            .map_err(|source| BlockLogError::Block { height, source })?;
        record
            .block
            .check_link(self.head.as_ref())
            .map_err(|source| BlockLogError::Block { height, source })?;
        record
            .finality
            .verify(set, &record.block.header)
            .map_err(|source| BlockLogError::Finality { height, source })?;
        Ok(ids)
    }

    /// Appends and fdatasyncs one block. The caller has checked it.
    pub fn append_durable(&mut self, record: &BlockRecord) -> Result<(), BlockLogError> {
        let offset = self.file.append(&record.to_bytes())?;
        self.file.sync()?;
        self.offsets.push(offset);
        self.head = Some(record.block.header.clone());
        Ok(())
    }

    pub fn head(&self) -> Option<&Header> {
        self.head.as_ref()
    }

    pub fn height(&self) -> u64 {
        self.offsets.len() as u64
    }

    /// Reads the block at `height` (1-based) back from disk.
    pub fn read(&self, height: u64) -> Result<Option<BlockRecord>, BlockLogError> {
        let Some(offset) = height
            .checked_sub(1)
            .and_then(|i| self.offsets.get(usize::try_from(i).ok()?))
        else {
            return Ok(None);
        };
        let body = self.file.read_at(*offset)?;
        let index = usize::try_from(height).unwrap_or(usize::MAX);
        BlockRecord::from_bytes(&body)
            .map(Some)
            .map_err(|source| BlockLogError::Decode { index, source })
    }
}
