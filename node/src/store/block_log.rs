//! The block log: the system of record. One record per finalized block:
//! `zstd(postcard(BlockRecord { block, finality }))` in a [`RecordFile`].
//!
//! Records are compressed at rest (format version 2): a block's statements
//! are JSON that repeats its field names, org keys and vocabulary, so zstd
//! keeps about a third of it (docs/performance.md, "Storage per event").
//! Compression is lossless and below the checksum: a record read back
//! decompresses to the exact postcard bytes that were written, so every
//! envelope, and so every receipt, carries the exact signed bytes. The
//! record checksum covers the compressed body (damage is found before
//! decompressing), and decompression is bounded by [`RECORD_MAX`]. A log of
//! version 1 (uncompressed) is refused at open with a version error.
//!
//! Every block is checked before it is appended: it decodes, its body
//! matches its header, it links to its parent, it repeats no attestation
//! committed in an earlier block (judged from the log's own committed-id
//! filter, [`super::committed_ids::CommittedIds`], never from sled), and its
//! finality (a certificate for it or for a descendant, with the linking
//! headers) verifies against the validator set. A block is appended and fdatasync'ed
//! before anything else (sled, clients) learns that it is committed.
//!
//! Opening costs the tail, not the chain: the block index
//! ([`super::block_index`]) holds one entry per verified block (offset and
//! id prefixes), so open reads the index, re-reads the last indexed block to
//! confirm the index describes this log, and checks only the blocks after
//! it. Without a usable index (missing, damaged, or disagreeing with the
//! log) the whole log is verified, as before, and the index written again.
//! Records before the tail are still checksummed whenever they are read.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use lotline_core::attestation::AttestationId;
use lotline_core::block::{Block, BlockError, Header};
use lotline_core::certificate::{Finality, FinalityError};
use lotline_core::codec::{self, DecodeError};
use lotline_core::limits;
use lotline_core::validators::ValidatorSet;
use serde::{Deserialize, Serialize};

use crate::progress::{Progress, Unit};

use super::block_index::{BlockIndex, IndexEntry, IndexError};
use super::committed_ids::{HeightOutOfRange, SharedIds};
use super::compression;
use super::epochs::ValidatorSets;
use super::record_file::{KEPT_BUFFER_BYTES_MAX, Opened, Record, RecordFile, RecordFileError};

pub const MAGIC: &[u8; 8] = b"LLBLKLOG";
/// 2: records are zstd-compressed (1: plain postcard).
pub const VERSION: u32 = 2;
/// A decoded record's size limit (a block at its limit plus its finality).
pub const RECORD_MAX: usize = limits::BLOCK_BYTES_MAX + 64 * 1024;
/// zstd's default level: about 3x on generator blocks at a few ms per
/// 1,000-attestation block; higher levels gained little for far more time.
const COMPRESSION_LEVEL: i32 = 3;

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

    /// The record as the block log keeps it: [`to_bytes`](Self::to_bytes),
    /// compressed.
    pub fn to_stored(&self) -> Vec<u8> {
        let mut stored = Vec::new();
        self.write_stored(&mut Vec::new(), &mut stored);
        stored
    }

    /// [`to_stored`](Self::to_stored), appended to `out`, with `encoded`
    /// (emptied first) holding the uncompressed bytes: the log appends a
    /// block of a megabyte at every commit, into buffers it keeps.
    fn write_stored(&self, encoded: &mut Vec<u8>, out: &mut Vec<u8>) {
        encoded.clear();
        codec::encode_onto(self, encoded);
        compression::compress_onto(encoded, COMPRESSION_LEVEL, out);
    }

    /// Decodes what [`to_stored`](Self::to_stored) wrote. The decompressed
    /// bytes are bounded by the record limit before they are decoded.
    pub fn from_stored(bytes: &[u8]) -> Result<BlockRecord, DecodeError> {
        BlockRecord::from_bytes(&decompress(bytes)?)
    }
}

fn decompress(bytes: &[u8]) -> Result<Vec<u8>, DecodeError> {
    compression::decompress("block record", bytes, RECORD_MAX)
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
    #[error(
        "block log height {height} repeats attestation {id}, committed at height {committed_at}"
    )]
    Repeated {
        height: u64,
        id: AttestationId,
        committed_at: u64,
    },
    #[error("the committed-id filter cannot hold height {height}: {source}")]
    Filter {
        height: u64,
        source: HeightOutOfRange,
    },
    #[error("block log height {height} is indexed but cannot be read back")]
    Missing { height: u64 },
    #[error("block index {path}: {source}")]
    Index { path: PathBuf, source: IndexError },
}

/// What opening the log found and did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct LogOpenReport {
    /// Bytes cut off the end of the log (a torn last write).
    pub truncated_bytes: u64,
    /// Blocks read, decoded and verified: the tail after the index, or
    /// every block when the index was rebuilt.
    pub verified_blocks: u64,
    /// The index was unusable and was written again from a full verify.
    pub index_rebuilt: bool,
}

/// Whether the log verifies a finality's signatures or only its shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Signatures {
    /// A block from outside the engine (block sync, repair, import, a
    /// log read at open): verify them.
    Verify,
    /// The consensus engine's own commit ([`BlockLog::check_hashed`]).
    VerifiedByEngine,
}

/// The block log, with its height -> offset table and committed-id filter.
#[derive(Debug)]
pub struct BlockLog {
    file: RecordFile,
    index: BlockIndex,
    offsets: Vec<u64>,
    committed: SharedIds,
    head: Option<Header>,
    /// The last appended block's uncompressed encoding: its buffer, kept
    /// for the next as the record file keeps its own
    /// ([`KEPT_BUFFER_BYTES_MAX`]).
    encoded: Vec<u8>,
}

impl BlockLog {
    /// Opens the log, verifying the blocks its index does not vouch for
    /// (see the module doc). The index lives next to the log, at
    /// `path` with the extension `index`.
    pub fn open(
        path: &Path,
        set: &dyn ValidatorSets,
    ) -> Result<(BlockLog, LogOpenReport), BlockLogError> {
        let index_path = path.with_extension("index");
        match BlockLog::open_indexed(path, &index_path, set) {
            Ok(Some(opened)) => return Ok(opened),
            Ok(None) => {}
            Err(error) => tracing::warn!(
                %error,
                "block index unusable; verifying the whole block log and rebuilding it"
            ),
        }
        BlockLog::open_full(path, &index_path, set)
    }

    /// Opens from the index; `None` if there is no index to open from.
    fn open_indexed(
        path: &Path,
        index_path: &Path,
        set: &dyn ValidatorSets,
    ) -> Result<Option<(BlockLog, LogOpenReport)>, BlockLogError> {
        let index_err = |source| BlockLogError::Index {
            path: index_path.to_owned(),
            source,
        };
        let (index, entries) = BlockIndex::open(index_path).map_err(index_err)?;
        let Some(last) = entries.last() else {
            return Ok(None);
        };
        // The log from the last indexed block on: that block (to confirm the
        // index describes this log and to learn the head), then the tail.
        let Opened {
            file,
            records,
            report,
        } = RecordFile::open_from(path, MAGIC, VERSION, RECORD_MAX, last.offset)?;
        let mut records = records.into_iter();
        let height = last.height;
        let confirmed = match records.next() {
            Some(record) if record.offset == last.offset => decode(height, &record)?,
            _ => return Err(BlockLogError::Missing { height }),
        };
        let ids = confirmed.block.ids();
        if confirmed.block.header.height != height
            || IndexEntry::new(height, last.offset, &ids) != *last
        {
            return Err(index_err(IndexError::Disagrees { height }));
        }
        let mut log = BlockLog {
            file,
            index,
            offsets: Vec::with_capacity(entries.len()),
            committed: SharedIds::default(),
            head: Some(confirmed.block.header),
            encoded: Vec::new(),
        };
        for entry in entries {
            log.committed
                .insert(entry.height, entry.prefixes)
                .map_err(|source| BlockLogError::Filter {
                    height: entry.height,
                    source,
                })?;
            log.offsets.push(entry.offset);
        }
        let mut report = LogOpenReport {
            truncated_bytes: report.truncated_bytes,
            ..LogOpenReport::default()
        };
        // The tail is checked against the sets of its epochs: learn them
        // from the indexed blocks the caller has not seen (its index lags
        // the log by the blocks a crash left unindexed).
        for learnt in set.observed().saturating_add(1)..=log.height() {
            let record = log
                .read(learnt)?
                .ok_or(BlockLogError::Missing { height: learnt })?;
            set.observe(&record.block);
        }
        log.verify_and_index(records, set, &mut report)?;
        Ok(Some((log, report)))
    }

    /// Verifies every block and writes the index again.
    fn open_full(
        path: &Path,
        index_path: &Path,
        set: &dyn ValidatorSets,
    ) -> Result<(BlockLog, LogOpenReport), BlockLogError> {
        let Opened {
            file,
            records,
            report,
        } = RecordFile::open(path, MAGIC, VERSION, RECORD_MAX)?;
        let index = BlockIndex::create(index_path).map_err(|source| BlockLogError::Index {
            path: index_path.to_owned(),
            source,
        })?;
        let mut log = BlockLog {
            file,
            index,
            offsets: Vec::with_capacity(records.len()),
            committed: SharedIds::default(),
            head: None,
            encoded: Vec::new(),
        };
        let mut report = LogOpenReport {
            truncated_bytes: report.truncated_bytes,
            index_rebuilt: true,
            ..LogOpenReport::default()
        };
        log.verify_and_index(records.into_iter(), set, &mut report)?;
        Ok((log, report))
    }

    /// Checks `records` as the next blocks of this log and indexes them.
    fn verify_and_index(
        &mut self,
        records: impl ExactSizeIterator<Item = Record>,
        set: &dyn ValidatorSets,
        report: &mut LogOpenReport,
    ) -> Result<(), BlockLogError> {
        let mut progress = Progress::new(
            "verifying the block log",
            records.len() as u64,
            Unit::Blocks,
        );
        for record in records {
            progress.advance(1);
            let height = self.height() + 1;
            let offset = record.offset;
            let record = decode(height, &record)?;
            let ids = self.check(set, &record)?;
            self.index_block(&record, offset, &ids)?;
            set.observe(&record.block);
            report.verified_blocks += 1;
        }
        progress.finish();
        self.index.sync()?;
        Ok(())
    }

    /// Checks that `record` may be the next block of this log: its
    /// finality against the validators of its height's epoch.
    /// Returns the block's attestation ids (hashed once, here).
    pub fn check(
        &self,
        sets: &dyn ValidatorSets,
        record: &BlockRecord,
    ) -> Result<Vec<AttestationId>, BlockLogError> {
        let height = record.block.header.height;
        let set = sets.set_at(height);
        let ids = record
            .block
            .check_body(&set.chain_id)
            .map_err(|source| BlockLogError::Block { height, source })?;
        self.check_place(&set, record, &ids, Signatures::Verify)?;
        Ok(ids)
    }

    /// [`BlockLog::check`] of a block the consensus engine finalized in
    /// this process (`Output::Commit`): it derived the ids from the bodies
    /// and verified every signature of the finality, each once — as a vote
    /// it counted or on the certificate's receipt — so the log checks the
    /// body against the ids (`Block::check_hashed`) and the finality for
    /// shape only, instead of hashing and verifying a second time.
    pub fn check_hashed(
        &self,
        sets: &dyn ValidatorSets,
        record: &BlockRecord,
        ids: &[AttestationId],
    ) -> Result<(), BlockLogError> {
        let height = record.block.header.height;
        let set = sets.set_at(height);
        record
            .block
            .check_hashed(&set.chain_id, ids)
            .map_err(|source| BlockLogError::Block { height, source })?;
        self.check_place(&set, record, ids, Signatures::VerifiedByEngine)
    }

    /// What a checked body must also be to come next: linked to the head,
    /// repeating no committed id, finalized by `set`.
    fn check_place(
        &self,
        set: &ValidatorSet,
        record: &BlockRecord,
        ids: &[AttestationId],
        signatures: Signatures,
    ) -> Result<(), BlockLogError> {
        let height = record.block.header.height;
        record
            .block
            .check_link(self.head.as_ref())
            .map_err(|source| BlockLogError::Block { height, source })?;
        self.check_not_committed(height, ids)?;
        let header = &record.block.header;
        match signatures {
            Signatures::Verify => record.finality.verify(set, header),
            Signatures::VerifiedByEngine => record.finality.check_structure(set, header),
        }
        .map_err(|source| BlockLogError::Finality { height, source })
    }

    /// Refuses ids already in an earlier block: the filter names candidate
    /// blocks, each read back once to confirm.
    fn check_not_committed(&self, height: u64, ids: &[AttestationId]) -> Result<(), BlockLogError> {
        let mut candidates: BTreeMap<u64, Vec<&AttestationId>> = BTreeMap::new();
        for id in ids {
            for at in self.committed.candidates(id) {
                candidates.entry(at).or_default().push(id);
            }
        }
        for (committed_at, wanted) in candidates {
            let block = self
                .read(committed_at)?
                .ok_or(BlockLogError::Missing {
                    height: committed_at,
                })?
                .block
                .ids();
            if let Some(id) = wanted.into_iter().find(|id| block.contains(id)) {
                return Err(BlockLogError::Repeated {
                    height,
                    id: *id,
                    committed_at,
                });
            }
        }
        Ok(())
    }

    /// Records a checked block that is durable at `offset`.
    fn index_block(
        &mut self,
        record: &BlockRecord,
        offset: u64,
        ids: &[AttestationId],
    ) -> Result<(), BlockLogError> {
        let height = record.block.header.height;
        let entry = IndexEntry::new(height, offset, ids);
        self.index.append(&entry)?;
        self.committed
            .insert(height, entry.prefixes)
            .map_err(|source| BlockLogError::Filter { height, source })?;
        self.offsets.push(offset);
        self.head = Some(record.block.header.clone());
        Ok(())
    }

    /// Appends and fdatasyncs one block. The caller has checked it;
    /// `ids` are what [`BlockLog::check`] returned.
    pub fn append_durable(
        &mut self,
        record: &BlockRecord,
        ids: &[AttestationId],
    ) -> Result<(), BlockLogError> {
        let encoded = &mut self.encoded;
        let offset = self
            .file
            .append_with(|out| record.write_stored(encoded, out))?;
        if encoded.capacity() > KEPT_BUFFER_BYTES_MAX {
            *encoded = Vec::new();
        }
        self.file.sync()?;
        self.index_block(record, offset, ids)?;
        Ok(self.index.sync_if_due()?)
    }

    /// Makes `with` this log's committed-id filter, moving what the log
    /// read at open into it: the store's readers hold `with` and find
    /// committed ids through it ([`SharedIds`]).
    pub fn share_committed_ids(&mut self, with: &SharedIds) {
        with.replace_with(&self.committed);
        self.committed = with.clone();
    }

    /// Attestations in the log.
    pub fn attestations(&self) -> u64 {
        self.committed.len()
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
        BlockRecord::from_stored(&body)
            .map(Some)
            .map_err(|source| BlockLogError::Decode { index, source })
    }
}

/// Decodes the log record expected to hold the block at `height`.
fn decode(height: u64, record: &Record) -> Result<BlockRecord, BlockLogError> {
    BlockRecord::from_stored(&record.body).map_err(|source| BlockLogError::Decode {
        index: usize::try_from(height.saturating_sub(1)).unwrap_or(usize::MAX),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::Chain;

    /// A log of `blocks` blocks of three attestations each.
    fn build(path: &Path, chain: &mut Chain, blocks: u32) -> BlockLog {
        let (mut log, report) = BlockLog::open(path, &chain.set).unwrap();
        assert_eq!(report.verified_blocks, 0);
        for b in 0..blocks {
            let envelopes = (0..3).map(|i| Chain::envelope(b * 3 + i)).collect();
            let record = chain.block(envelopes);
            let ids = log.check(&chain.set, &record).unwrap();
            log.append_durable(&record, &ids).unwrap();
        }
        log
    }

    /// Goal: compression at rest changes no byte a receipt carries. Method:
    /// write blocks of compressible payloads, reopen, and compare every
    /// envelope read back with what was signed, byte for byte; the log must
    /// be smaller than the plain records it holds.
    #[test]
    fn records_are_compressed_and_read_back_bit_exact() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("blocks.log");
        let mut chain = Chain::new();
        let key = lotline_core::SigningKey::from_seed(&[9; 32]);
        let (mut log, _) = BlockLog::open(&path, &chain.set).unwrap();
        let mut written = Vec::new();
        let mut plain = 0;
        for b in 0..3u32 {
            let envelopes: Vec<_> = (0..20u32)
                .map(|i| {
                    let payload = format!("{{\"event\":\"ObjectEvent\",\"n\":{}}}", b * 20 + i);
                    lotline_core::Envelope::sign(payload.into_bytes(), &key)
                })
                .collect();
            let record = chain.block(envelopes);
            plain += record.to_bytes().len();
            let ids = log.check(&chain.set, &record).unwrap();
            log.append_durable(&record, &ids).unwrap();
            written.push(record);
        }
        drop(log);
        let (log, _) = BlockLog::open(&path, &chain.set).unwrap();
        for (height, record) in (1..).zip(&written) {
            let read = log.read(height).unwrap().unwrap();
            assert_eq!(&read, record);
            assert_eq!(read.to_bytes(), record.to_bytes());
            for (a, b) in read
                .block
                .attestations
                .iter()
                .zip(&record.block.attestations)
            {
                assert_eq!(a.to_bytes(), b.to_bytes());
            }
        }
        let on_disk = std::fs::metadata(&path).unwrap().len() as usize;
        assert!(on_disk < plain, "{on_disk} bytes on disk for {plain} plain");
    }

    /// Goal: a log written before compression is never misread. Method: a
    /// file with the version 1 header is refused with a version error.
    #[test]
    fn an_uncompressed_log_of_version_1_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("blocks.log");
        let mut header = MAGIC.to_vec();
        header.extend_from_slice(&1u32.to_be_bytes());
        std::fs::write(&path, header).unwrap();
        match BlockLog::open(&path, &Chain::new().set) {
            Err(BlockLogError::File(RecordFileError::Version {
                found: 1,
                expected: VERSION,
                ..
            })) => {}
            other => panic!("expected a version error, got {other:?}"),
        }
    }

    /// Goal: a record that decompresses beyond the record limit is refused,
    /// not decoded. Method: a small frame of RECORD_MAX + 1 zero bytes.
    #[test]
    fn decompression_is_bounded_by_the_record_limit() {
        let bomb = compression::compress(&vec![0u8; RECORD_MAX + 1], COMPRESSION_LEVEL);
        assert!(bomb.len() < 64 * 1024);
        assert!(matches!(
            BlockRecord::from_stored(&bomb),
            Err(DecodeError::TooLarge { .. })
        ));
        assert!(matches!(
            BlockRecord::from_stored(b"not zstd"),
            Err(DecodeError::Malformed { .. })
        ));
    }

    /// Defect: `check` accepted a block repeating an attestation committed
    /// in an earlier block. It is refused from the log's own knowledge (no
    /// sled here at all), after a reopen too.
    #[test]
    fn a_block_repeating_an_earlier_attestation_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("blocks.log");
        let mut chain = Chain::new();
        let log = build(&path, &mut chain, 4);
        let repeat = chain.block(vec![Chain::envelope(100), Chain::envelope(4)]);
        let expected = Chain::envelope(4).id();
        for log in [log, BlockLog::open(&path, &chain.set).unwrap().0] {
            match log.check(&chain.set, &repeat) {
                Err(BlockLogError::Repeated {
                    height: 5,
                    id,
                    committed_at: 2,
                }) if id == expected => {}
                other => panic!("expected a repeat refusal, got {other:?}"),
            }
            // Only the repeat was wrong: the same height with fresh ids passes.
            chain.rollback_to(log.head());
            let fresh = chain.block(vec![Chain::envelope(100), Chain::envelope(101)]);
            assert!(log.check(&chain.set, &fresh).is_ok());
            chain.rollback_to(log.head());
        }
    }

    /// Goal: every finality signature is verified once per node. A block
    /// from outside the engine has its signatures verified here: a forged
    /// one is refused. The engine's own commit (`check_hashed`), whose
    /// signatures the engine verified as votes, is checked for shape only,
    /// and a shape that is wrong (a certificate of another block, no
    /// signers) is still refused.
    #[test]
    fn a_finality_is_verified_once_and_its_shape_always() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("blocks.log");
        let mut chain = Chain::new();
        let log = build(&path, &mut chain, 2);
        let good = chain.block(vec![Chain::envelope(50)]);
        let ids = good.block.ids();
        assert!(log.check(&chain.set, &good).is_ok());
        assert!(log.check_hashed(&chain.set, &good, &ids).is_ok());

        let mut forged = good.clone();
        forged.finality.certificate.signatures[0].signature.0[7] ^= 1;
        assert!(matches!(
            log.check(&chain.set, &forged),
            Err(BlockLogError::Finality { height: 3, .. })
        ));
        assert!(log.check_hashed(&chain.set, &forged, &ids).is_ok());

        let mut elsewhere = good.clone();
        elsewhere.finality.certificate.block =
            lotline_core::block::BlockHash(lotline_core::hash::Digest([9; 32]));
        let mut unsigned = good.clone();
        unsigned.finality.certificate.signatures.clear();
        for wrong in [elsewhere, unsigned] {
            assert!(matches!(
                log.check_hashed(&chain.set, &wrong, &ids),
                Err(BlockLogError::Finality { height: 3, .. })
            ));
        }
    }

    /// Defect: open verified every block. A reopened log reads its index
    /// and verifies only the blocks after it.
    #[test]
    fn reopening_verifies_only_the_blocks_after_the_index() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("blocks.log");
        let mut chain = Chain::new();
        let log = build(&path, &mut chain, 10);
        let head = log.head().cloned();
        drop(log);
        let (log, report) = BlockLog::open(&path, &chain.set).unwrap();
        assert_eq!(report, LogOpenReport::default());
        assert_eq!((log.height(), log.attestations()), (10, 30));
        assert_eq!(log.head(), head.as_ref());
        drop(log);
        // An index missing its last three entries (a power loss before its
        // fdatasync): exactly those three blocks are verified again.
        let index_path = path.with_extension("index");
        let (_, entries) = BlockIndex::open(&index_path).unwrap();
        let mut index = BlockIndex::create(&index_path).unwrap();
        for entry in &entries[..7] {
            index.append(entry).unwrap();
        }
        index.sync().unwrap();
        drop(index);
        let (log, report) = BlockLog::open(&path, &chain.set).unwrap();
        assert_eq!((report.verified_blocks, report.index_rebuilt), (3, false));
        assert_eq!((log.height(), log.attestations()), (10, 30));
        assert_eq!(log.read(10).unwrap().unwrap().block.header, head.unwrap());
        drop(log);
        // ... and the index is whole again.
        let (_, report) = BlockLog::open(&path, &chain.set).unwrap();
        assert_eq!(report.verified_blocks, 0);
    }

    /// A damaged, missing or foreign index falls back to verifying the
    /// whole log, and writes the index again.
    #[test]
    fn an_unusable_index_falls_back_to_a_full_verify() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("blocks.log");
        let index_path = path.with_extension("index");
        let mut chain = Chain::new();
        drop(build(&path, &mut chain, 6));

        // Damage in the middle of the index.
        let mut bytes = std::fs::read(&index_path).unwrap();
        bytes[40] ^= 0xff;
        std::fs::write(&index_path, &bytes).unwrap();
        let (log, report) = BlockLog::open(&path, &chain.set).unwrap();
        assert_eq!((report.verified_blocks, report.index_rebuilt), (6, true));
        assert_eq!((log.height(), log.attestations()), (6, 18));
        drop(log);

        // Missing.
        std::fs::remove_file(&index_path).unwrap();
        let (_, report) = BlockLog::open(&path, &chain.set).unwrap();
        assert_eq!((report.verified_blocks, report.index_rebuilt), (6, true));

        // The index of another log (same heights, other blocks).
        let other = dir.path().join("other.log");
        let mut other_chain = Chain::new();
        let other_log = build(&other, &mut other_chain, 1);
        let record = other_chain.block(vec![Chain::envelope(999)]);
        let ids = other_log.check(&other_chain.set, &record).unwrap();
        let mut other_log = other_log;
        other_log.append_durable(&record, &ids).unwrap();
        drop(other_log);
        std::fs::copy(other.with_extension("index"), &index_path).unwrap();
        let (log, report) = BlockLog::open(&path, &chain.set).unwrap();
        assert_eq!((report.verified_blocks, report.index_rebuilt), (6, true));
        assert_eq!(log.attestations(), 18);
    }
}
