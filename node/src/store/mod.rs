//! Storage: the block log is the system of record; sled holds attestation
//! records and indexes derived from it.
//!
//! Write path, per finalized block: append block + certificate to the block
//! log and fdatasync, then apply one atomic sled batch (records, indexes and
//! the applied height). Nobody is told a block is committed before both.
//! sled's own flush is not an fsync, so after a crash sled may be behind the
//! log: [`Store::open`] re-applies what is missing (the batch is idempotent).
//! If sled does not open at all, it is moved aside and rebuilt from the log.
//!
//! Opening reads the block log's index and verifies only the blocks after
//! it, and re-applies only what sled lacks: its cost follows the tail, not
//! the chain (docs/performance.md, "Restart").

pub mod block_index;
pub mod block_log;
pub mod committed_ids;
mod compression;
pub mod dictionary;
pub mod epochs;
pub mod events;
pub mod evidence;
pub mod governance;
pub mod grouped;
pub mod hashed;
pub mod index;
pub mod lineage;
pub mod listing;
mod prepare;
pub mod record_file;
pub mod stats;
pub mod vote_journal;

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use epochs::ChainSets;
use lotline_core::api::{AttestationSummary, Listing};
use lotline_core::at_rest::PeriodAtRestKey;
use lotline_core::attestation::AttestationId;
use lotline_core::merkle::BlockTree;
use lotline_core::receipt::{RECEIPT_VERSION, Receipt};
use lotline_core::statement::Statement;

use crate::progress::{Progress, Unit};
pub use block_log::{BlockLog, BlockLogError, BlockRecord, LogOpenReport};
use committed_ids::SharedIds;
use index::{BlockMeta, StoredAttestation};
pub use record_file::{OpenReport, Opened, Record, RecordFile, RecordFileError};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Log(#[from] BlockLogError),
    #[error("sled at {path}: {source}")]
    Sled { path: PathBuf, source: sled::Error },
    #[error("sled record {what} does not decode: {source}")]
    Decode {
        what: &'static str,
        source: lotline_core::codec::DecodeError,
    },
    #[error("sled record {what} does not decode: {source}")]
    Json {
        what: &'static str,
        source: serde_json::Error,
    },
    #[error("sled has no {what} record at height {} index {}", at.height, at.index)]
    Missing {
        what: &'static str,
        at: index::Position,
    },
    /// The indexer thread stopped (it failed first and said why).
    #[error("the indexer stopped; the node is stopping")]
    IndexerStopped,
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// sled's folder stayed locked for [`SLED_LOCK_WAIT`]: another process
    /// has it open (is a node already running on this data folder?).
    #[error(
        "{path} is in use by another process (is a node already running on this data folder?): {source}"
    )]
    InUse { path: PathBuf, source: sled::Error },
    /// A replaced block log ([`Store::reopen_log`]) ends below the head the
    /// node had committed.
    #[error("the reopened block log ends at height {found}, the node had committed {expected}")]
    LogBehind { expected: u64, found: u64 },
}

/// What opening the store found and did; logged at startup.
#[derive(Debug, Default, Clone)]
pub struct StoreOpenReport {
    pub height: u64,
    pub log_truncated_bytes: u64,
    /// Blocks read and verified from the log (the tail after its index).
    pub verified_blocks: u64,
    /// The block log's index was unusable and was rebuilt by a full verify.
    pub log_index_rebuilt: bool,
    pub reapplied_blocks: u64,
    pub sled_rebuilt: bool,
}

/// The write side: owned by the one task that commits blocks.
#[derive(Debug)]
pub struct Store {
    dir: PathBuf,
    log: BlockLog,
    reader: StoreReader,
    /// The validators of each height's epoch (`epochs`).
    sets: ChainSets,
}

/// The read side: cheap to clone, safe to use from any task.
#[derive(Clone, Debug)]
pub struct StoreReader {
    db: sled::Tree,
    /// The database `db` lives in (tests remove the tree through it to make
    /// every read fail, see [`StoreReader::drop_index_for_test`]; node-local
    /// state lives in its own trees, see [`StoreReader::local_tree`]).
    sled: sled::Db,
    trees: TreeCache,
    /// This node's org key, when the operator gave one: the records it
    /// opens add their private measurements to the index ([`Opener`]).
    opener: Option<Arc<dyn Opener>>,
    /// What the opener opened at commit, for the alert follower judging
    /// the same records next ([`StoreReader::opened`]).
    opened: Arc<Mutex<OpenedRecently>>,
    /// How many key periods this node forgot ([`StoreReader::forget_period`]):
    /// readers that keep values derived from opened points (the alert
    /// follower's chart states) drop them when it moves.
    forgotten: Arc<std::sync::atomic::AtomicU64>,
    /// The `a` records' zstd dictionary (`store::dictionary`).
    dictionaries: Arc<dictionary::Dictionaries>,
    /// The block log's committed-id filter, through which a committed id's
    /// position is found ([`StoreReader::position`]).
    committed: SharedIds,
    /// Which blocks hold an eventID's or a repeated capture's entries
    /// (`store::hashed`).
    hashed: hashed::Filters,
}

/// The events this node opened at commit ([`Opener`]), by attestation id:
/// the alert follower, which judges each block right after it is indexed,
/// takes them from here instead of opening the same sections again (one
/// HPKE open per record and node). In memory only, the latest
/// [`OPENED_RECENTLY`]; emptied when a key period is shredded
/// ([`StoreReader::forget_period`]), so nothing here outlives a shredded
/// key.
#[derive(Debug, Default)]
struct OpenedRecently {
    order: VecDeque<AttestationId>,
    events: std::collections::HashMap<AttestationId, Arc<lotline_core::epcis::Event>>,
}

const OPENED_RECENTLY: usize = 4096;

impl OpenedRecently {
    fn remember(&mut self, id: AttestationId, event: Arc<lotline_core::epcis::Event>) {
        if self.events.insert(id, event).is_none() {
            self.order.push_back(id);
        }
        while self.order.len() > OPENED_RECENTLY {
            if let Some(old) = self.order.pop_front() {
                self.events.remove(&old);
            }
        }
    }

    /// Hands `id`'s event out once (its place in `order` goes with the
    /// eviction that reaches it).
    fn take(&mut self, id: &AttestationId) -> Option<Arc<lotline_core::epcis::Event>> {
        self.events.remove(id)
    }
}

/// Opens a record's private section at commit, for a node whose org is a
/// recipient (`access::private::OrgKey`). The index then holds the opened
/// measurements as points marked private (`quality::series`), which read
/// paths show only to callers the read rule entitles
/// (`access::private::can_read_private`). A node that cannot open a record
/// indexes nothing from its sealed part, so plaintext reaches only the
/// disks of recipient orgs' nodes; and what a record wrapped to a key
/// period adds is sealed under that period's at-rest key, so it becomes
/// unreadable when the period is shredded (`lotline_core::at_rest`).
pub trait Opener: Send + Sync + std::fmt::Debug {
    /// The event with its private fields restored, or `None` when this
    /// opener does not open `statement`.
    fn open(&self, statement: &Statement) -> Option<OpenedAtCommit>;
    /// The at-rest keys of the key periods this node can still open.
    fn at_rest_keys(&self) -> Vec<PeriodAtRestKey>;
    /// Names the keys (never key material): an index written under other
    /// keys is rebuilt at open, so it holds exactly what these keys open.
    fn fingerprint(&self) -> Vec<u8>;
}

/// A record's event with its private fields restored ([`Opener::open`]).
#[derive(Debug)]
pub struct OpenedAtCommit {
    pub event: Arc<lotline_core::epcis::Event>,
    /// Set when the section is wrapped to a key period: what the index
    /// derives from `event` is sealed under this key.
    pub at_rest: Option<PeriodAtRestKey>,
}

/// Why an attestation id may not be written now ([`StoreReader::check_uncommitted`]).
#[derive(Debug, thiserror::Error)]
pub enum NotFresh {
    #[error("attestation {0} is already committed")]
    Committed(AttestationId),
    #[error("cannot tell whether attestation {id} is committed ({source}); retry")]
    Unknown {
        id: AttestationId,
        source: StoreError,
    },
}

const TREE_CACHE: usize = 16;

/// The one sled tree everything derived lives in.
const TREE: &str = "lotline";

/// Recently built block trees, by height.
type TreeCache = Arc<Mutex<VecDeque<(u64, Arc<BlockTree>)>>>;

impl Store {
    /// Opens the block log (verifying the chain) and brings sled up to it.
    /// `sets`: a fixed [`lotline_core::ValidatorSet`], or the node's governance, which
    /// learns each epoch's set from the chain ([`epochs`]).
    pub fn open(
        dir: &Path,
        sets: impl Into<ChainSets>,
    ) -> Result<(Store, StoreOpenReport), StoreError> {
        Store::open_with(dir, sets, None)
    }

    /// [`Store::open`] for a node that opens the private sections its org
    /// key opens ([`Opener`]).
    pub fn open_with(
        dir: &Path,
        sets: impl Into<ChainSets>,
        opener: Option<Arc<dyn Opener>>,
    ) -> Result<(Store, StoreOpenReport), StoreError> {
        let sets: ChainSets = sets.into();
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Io {
            path: dir.to_owned(),
            source,
        })?;
        let sled_path = dir.join("index.sled");
        let mut report = StoreOpenReport::default();
        let db = match open_sled(&sled_path) {
            Ok(db) => db,
            // Held by another process (a second node on this folder): the
            // index is not damaged, and moving it aside under its owner
            // would be.
            Err(error) if is_locked(&error) => {
                return Err(StoreError::InUse {
                    path: sled_path,
                    source: error,
                });
            }
            Err(error) => {
                tracing::warn!(%error, "sled index does not open; moving it aside and rebuilding from the block log");
                let aside = dir.join(format!("index.sled.damaged-{}", std::process::id()));
                std::fs::rename(&sled_path, &aside).map_err(|source| StoreError::Io {
                    path: sled_path.clone(),
                    source,
                })?;
                report.sled_rebuilt = true;
                open_sled(&sled_path).map_err(|source| StoreError::Sled {
                    path: sled_path.clone(),
                    source,
                })?
            }
        };
        let tree = db.open_tree(TREE).map_err(|source| StoreError::Sled {
            path: sled_path.clone(),
            source,
        })?;
        let reader = StoreReader {
            db: tree,
            sled: db,
            trees: Arc::new(Mutex::new(VecDeque::new())),
            opener,
            opened: Default::default(),
            forgotten: Default::default(),
            dictionaries: Default::default(),
            committed: Default::default(),
            hashed: Default::default(),
        };
        let found = reader.format()?;
        let opened_by = reader
            .db
            .get(index::KEY_OPENER)
            .map_err(|e| reader.sled_err(e))?;
        // A node opening with other keys than the index was written with
        // rebuilds it; a tool opening without keys (doctor, export) keeps
        // it as it is.
        let other_keys = reader.opener.is_some()
            && opened_by.as_deref().unwrap_or_default() != reader.opener_fingerprint();
        if reader.applied_height()? > 0 && (found != index::FORMAT || other_keys) {
            tracing::warn!(
                found,
                expected = index::FORMAT,
                other_keys,
                "sled index was written under another layout or other private keys; rebuilding it from the block log"
            );
            reader.db.clear().map_err(|source| StoreError::Sled {
                path: sled_path.clone(),
                source,
            })?;
            report.sled_rebuilt = true;
        }
        reader.hashed.load_in_background(reader.db.clone());
        let applied = reader.applied_height()?;
        sets.load(&reader, applied)?;
        let (mut log, log_report) = BlockLog::open(&dir.join("blocks.log"), sets.sets())?;
        log.share_committed_ids(&reader.committed);
        report.log_truncated_bytes = log_report.truncated_bytes;
        report.verified_blocks = log_report.verified_blocks;
        report.log_index_rebuilt = log_report.index_rebuilt;
        report.height = log.height();
        let mut progress = Progress::new(
            "indexing blocks into sled",
            log.height().saturating_sub(applied),
            Unit::Blocks,
        );
        for height in applied + 1..=log.height() {
            let record = log.read(height)?.ok_or(BlockLogError::Missing { height })?;
            reader.apply(&record, &record.block.ids(), Vec::new())?;
            report.reapplied_blocks += 1;
            progress.advance(1);
        }
        progress.finish();
        if applied > log.height() {
            // sled saw blocks the log lost: impossible unless the log was
            // replaced. Rebuild the index so it never serves unlogged data.
            tracing::warn!(
                applied,
                log = log.height(),
                "sled is ahead of the block log; rebuilding"
            );
            reader.db.clear().map_err(|source| StoreError::Sled {
                path: sled_path.clone(),
                source,
            })?;
            report.sled_rebuilt = true;
            // The hashed-listing filters may name blocks sled no longer
            // holds: a hint without its run finds nothing (`store::hashed`).
            sets.load(&reader, 0)?;
            for height in 1..=log.height() {
                if let Some(record) = log.read(height)? {
                    sets.observe(&record.block);
                    reader.apply(&record, &record.block.ids(), Vec::new())?;
                }
            }
        }
        reader.db.flush().map_err(|source| StoreError::Sled {
            path: sled_path,
            source,
        })?;
        let dir = dir.to_owned();
        Ok((
            Store {
                dir,
                log,
                reader,
                sets,
            },
            report,
        ))
    }

    pub fn reader(&self) -> StoreReader {
        self.reader.clone()
    }

    /// The folder of the block log, its index and sled.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The validators of each height's epoch.
    pub fn sets(&self) -> &ChainSets {
        &self.sets
    }

    /// Opens the block log again after `ops::repair` replaced its file under
    /// the running node (`consensus::mend`). The mended log holds the same
    /// blocks, so it must reach the head this store had; sled, built from
    /// those blocks, is left as it is.
    pub fn reopen_log(&mut self) -> Result<(), StoreError> {
        let (mut log, _) = BlockLog::open(&self.dir.join("blocks.log"), self.sets.sets())?;
        if log.height() < self.log.height() {
            return Err(StoreError::LogBehind {
                expected: self.log.height(),
                found: log.height(),
            });
        }
        log.share_committed_ids(&self.reader.committed);
        self.log = log;
        Ok(())
    }

    pub fn height(&self) -> u64 {
        self.log.height()
    }

    pub fn head(&self) -> Option<&lotline_core::Header> {
        self.log.head()
    }

    /// Attestations committed, from the block log (no scan).
    pub fn attestations(&self) -> u64 {
        self.log.attestations()
    }

    /// Commits a finalized block: check, log + fdatasync, then sled.
    /// `parsed` is asked, once the block checks, for the statements of its
    /// attestation ids that admission already parsed (the mempool keeps
    /// them), so that a payload is parsed once per node; what it does not
    /// have is parsed here. Returns the attestation ids, in block order.
    pub fn commit(
        &mut self,
        record: &BlockRecord,
        parsed: impl FnOnce(&[AttestationId]) -> Vec<Parsed>,
    ) -> Result<Vec<AttestationId>, StoreError> {
        let ids = self.append(record)?;
        self.reader.apply(record, &ids, parsed(&ids))?;
        Ok(ids)
    }

    /// The commit point without the index: checks the block and appends it
    /// to the block log, fdatasync'ed. The node's actors index it on another
    /// thread ([`StoreReader::apply_blocks`], `consensus/commit.rs`); until
    /// then sled is behind the log, which [`Store::open`] repairs after a
    /// crash. Returns the attestation ids, in block order.
    pub fn append(&mut self, record: &BlockRecord) -> Result<Vec<AttestationId>, StoreError> {
        let ids = self.log.check(self.sets.sets(), record)?;
        self.append_checked(record, ids)
    }

    /// [`Store::append`] of a block the consensus engine finalized
    /// (`Output::Commit`): each envelope is hashed and each finality
    /// signature verified once per node, by the engine
    /// ([`BlockLog::check_hashed`]).
    pub fn append_hashed(
        &mut self,
        record: &BlockRecord,
        ids: Vec<AttestationId>,
    ) -> Result<Vec<AttestationId>, StoreError> {
        self.log.check_hashed(self.sets.sets(), record, &ids)?;
        self.append_checked(record, ids)
    }

    fn append_checked(
        &mut self,
        record: &BlockRecord,
        ids: Vec<AttestationId>,
    ) -> Result<Vec<AttestationId>, StoreError> {
        self.log.append_durable(record, &ids)?;
        self.sets.observe(&record.block);
        Ok(ids)
    }

    /// Reads a committed block back from the log.
    pub fn read_block(&self, height: u64) -> Result<Option<BlockRecord>, StoreError> {
        Ok(self.log.read(height)?)
    }
}

/// A statement admission already parsed, or `None` (a block from sync or
/// from the log: the store parses it).
pub type Parsed = Option<Arc<crate::parsed::ParsedStatement>>;

/// One block's sled writes: the atomic batch, and how many keys it holds.
#[derive(Default)]
pub(crate) struct Writes {
    batch: sled::Batch,
    keys: usize,
    /// Measurement points waiting to be packed into their series' chunks
    /// when the batch is written (`quality::series::flush`).
    pub(crate) series: crate::quality::series::Pending,
    /// Container and destination contents written earlier in the block
    /// (`quality::exposure`).
    pub(crate) exposure: crate::quality::exposure::Pending,
    /// Listing entries, packed one key per name and block when the batch
    /// is written (`store::listing`).
    listings: listing::Pending,
    /// The eventID and repeated-capture entries, one run per keyspace and
    /// block (`store::hashed`).
    hashed: hashed::Pending,
    /// The per-position records, packed 16 to a key (`store::grouped`).
    records: grouped::Pending,
    /// The nodes' own custody records, one key per node and block
    /// (`store::lineage`).
    pub(crate) custody: lineage::CustodyPending,
}

impl Writes {
    pub(crate) fn insert(&mut self, key: impl Into<sled::IVec>, value: impl Into<sled::IVec>) {
        self.keys += 1;
        self.batch.insert(key, value);
    }

    /// Lists the event at `at` under `name` in the listing `prefix`
    /// (packed, `store::listing`, or hashed, `store::hashed`).
    pub(crate) fn list(&mut self, prefix: u8, name: &str, at: index::Position) {
        if hashed::is_hashed(prefix) {
            self.hashed.add(prefix, name, at);
        } else {
            self.listings.add(prefix, name, at);
        }
    }

    /// Keeps `record` as the one at `at` in the per-position keyspace
    /// `prefix` (`store::grouped`).
    pub(crate) fn record(&mut self, prefix: u8, at: index::Position, record: Vec<u8>) {
        self.records.add(prefix, at, record);
    }

    /// Adds the gathered records and listings to the batch, and notes the
    /// hashed runs in `filters` now, before the batch is applied
    /// (`store::hashed`).
    fn pack(&mut self, filters: &hashed::Filters) {
        for (key, value) in std::mem::take(&mut self.records).into_writes() {
            self.insert(&key[..], value);
        }
        for (key, value) in std::mem::take(&mut self.listings).into_writes() {
            self.insert(key, value);
        }
        for (key, value) in std::mem::take(&mut self.custody).into_writes() {
            self.insert(key, value);
        }
        for run in std::mem::take(&mut self.hashed).into_runs() {
            filters.record(&run);
            self.insert(&run.key[..], run.value);
        }
    }
}

/// One block's records and indexes, added to `batch`. `parsed` are the
/// statements already parsed, in block order (missing or `None` entries
/// are parsed here): every index entry is derived here, from them, what
/// needs no store read first and on every core (`prepare`), then the batch
/// in block order.
fn write_block(
    batch: &mut Writes,
    record: &BlockRecord,
    ids: &[AttestationId],
    parsed: Vec<Parsed>,
    seen: &mut Seen<'_>,
) -> Result<(), StoreError> {
    let header = &record.block.header;
    let height = header.height;
    let envelopes = &record.block.attestations;
    let compression = prepare::Compression {
        dictionary: seen.dictionary.dictionary(),
        keep_samples: seen.dictionary.gathering(),
    };
    let prepared = prepare::block(height, envelopes, ids, parsed, compression);
    for (i, ((envelope, &id), prepared)) in envelopes.iter().zip(ids).zip(prepared).enumerate() {
        let index = u32::try_from(i).unwrap_or(u32::MAX);
        let at = index::Position { height, index };
        let prepare::Prepared {
            statement,
            meta,
            stored,
            sample,
            event,
        } = prepared;
        if let Some(sample) = sample {
            seen.dictionary.gather(sample);
        }
        for identifier in meta.listed.names() {
            batch.list(index::PREFIX_IDENTIFIER, identifier, at);
        }
        batch.list(index::PREFIX_ORG, &meta.org, at);
        batch.record(index::PREFIX_ATTESTATION, at, stored);
        governance::index(batch, at, envelope);
        let (Some(statement), Some(event)) = (&statement, event) else {
            continue;
        };
        let repeat = seen.repeats(&event.duplicate)?;
        events::index(batch, at, statement, &event.duplicate, repeat);
        if repeat {
            continue;
        }
        let opened = seen.reader.open_at_commit(&id, statement);
        if let Some(records) = event.lineage {
            let (origin, edges) = lineage::index(batch, at, records, opened.as_ref());
            crate::quality::exposure::index(
                seen.reader,
                batch,
                at,
                statement,
                &origin,
                &meta.listed,
                &edges,
            )?;
        }
    }
    let meta = BlockMeta {
        header: header.clone(),
        finality: record.finality.clone(),
        ids: ids.to_vec(),
    };
    batch.insert(&index::block_key(height)[..], index::encode(&meta));
    evidence::index_block(batch, &record.block);
    if let Some(trained) = seen.dictionary.end_block() {
        batch.insert(&dictionary::key(trained.id())[..], trained.bytes());
    }
    Ok(())
}

/// What a batch has seen, in chain order. Which events, to tell a repeated
/// capture (`store::events`, "Repeats at application"): the `w` listings
/// written earlier in this batch, then the committed ones. And where the
/// record dictionary stands (`store::dictionary`). A pure function of the
/// chain: every node decides the same.
struct Seen<'a> {
    reader: &'a StoreReader,
    in_batch: std::collections::BTreeSet<String>,
    dictionary: dictionary::Stage,
}

impl Seen<'_> {
    /// True if `listing` already has a capture; records this one.
    fn repeats(&mut self, listing: &str) -> Result<bool, StoreError> {
        if !self.in_batch.insert(listing.to_owned()) {
            return Ok(true);
        }
        Ok(self
            .reader
            .event_first(&events::Listing::Duplicate(listing.to_owned()))?
            .is_some())
    }
}

/// Frees the tree nodes a batch of `keys` inserts replaced.
///
/// sled copies a node on every insert and hands the old copy to
/// crossbeam-epoch, whose collector frees at most 8 bags of 64 per
/// collection and collects once per 128 pins. A block's batch runs under a
/// single pin, so it leaves far more garbage than later pins collect: memory
/// grew with everything ever written (2 GB after 60k events, on the way to
/// tens of GB at a million). Flushing after each batch — each flush advances
/// the epoch and frees up to 8 bags — keeps it flat (about 1 GB at 60k and
/// at 120k events; docs/performance.md). A flush with nothing to free costs
/// well under a microsecond.
fn collect_replaced_nodes(keys: usize) {
    // About two replaced nodes per insert, 512 freed per flush, with margin.
    for _ in 0..keys / 64 + 64 {
        crossbeam_epoch::pin().flush();
    }
}

/// The layout version and applied height of the sled index at `path`, for
/// `lotline doctor` on a stopped node (sled locks its folder: this fails
/// while a node has it open). `None` if there is no sled index there.
pub fn sled_marks(path: &Path) -> Result<Option<(u32, u64)>, StoreError> {
    let Some(reader) = index_reader(path)? else {
        return Ok(None);
    };
    Ok(Some((reader.format()?, reader.applied_height()?)))
}

/// The membership history a stopped node's index holds (its governance
/// keyspace, through its applied height), for the tools that check or mend
/// its block log (`lotline doctor`, `lotline repair`): the validators of
/// every epoch, not only the genesis ones. `None` without an index, or with
/// one of another layout (the next start rebuilds it). sled allows one
/// process: this fails while the node runs. With it, the height the index
/// applied (the history holds every change committed up to it).
pub fn stopped_history(
    data_dir: &Path,
    genesis: Arc<lotline_genesis::Genesis>,
) -> Result<Option<(Arc<lotline_genesis::History>, u64)>, StoreError> {
    let Some(reader) = index_reader(&data_dir.join("index.sled"))? else {
        return Ok(None);
    };
    if reader.format()? != index::FORMAT {
        return Ok(None);
    }
    let applied = reader.applied_height()?;
    let governance = crate::governance::Governance::open(genesis, &reader, applied)?;
    Ok(Some((governance.history(), applied)))
}

/// The index at `path` opened as it is, without keys and without
/// rebuilding anything; `None` if there is none. Its eventID and
/// repeated-capture filters stay empty (`store::hashed`): the tools it
/// serves read marks and governance, never those listings.
fn index_reader(path: &Path) -> Result<Option<StoreReader>, StoreError> {
    if !path.exists() {
        return Ok(None);
    }
    let err = |source| StoreError::Sled {
        path: path.to_owned(),
        source,
    };
    let db = open_sled(path).map_err(err)?;
    let tree = db.open_tree(TREE).map_err(err)?;
    Ok(Some(StoreReader {
        db: tree,
        sled: db,
        trees: Arc::new(Mutex::new(VecDeque::new())),
        opener: None,
        opened: Default::default(),
        forgotten: Default::default(),
        dictionaries: Default::default(),
        committed: Default::default(),
        hashed: Default::default(),
    }))
}

/// sled without its page compression: zstd (the "compression" feature)
/// cut sled's disk per event from 14.1 KB to 4.7 KB on the 100k generator
/// store but cut the load rate 3.2x (1,774 -> 554 events/s), in the commit
/// path; docs/performance.md, "Storage per event".
///
/// A folder another `sled::Db` holds is refused with a lock error. One
/// dropped a moment ago in this process lets go of it a little later
/// (sled's own threads close its file), so the open is retried for up to
/// [`SLED_LOCK_WAIT`] before the lock counts as another process's. Public
/// for tests that edit a closed store's sled directly.
pub fn open_sled(path: &Path) -> Result<sled::Db, sled::Error> {
    let open = || {
        sled::Config::new()
            .path(path)
            .cache_capacity(256 * 1024 * 1024)
            .open()
    };
    let deadline = std::time::Instant::now() + SLED_LOCK_WAIT;
    loop {
        match open() {
            Err(error) if is_locked(&error) && std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            opened => return opened,
        }
    }
}

/// How long [`open_sled`] waits for a locked folder.
const SLED_LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Whether sled refused to open because another `Db` holds its folder's
/// lock. sled 0.34.7 says so only in the message of an I/O error
/// (`Config::try_lock`).
fn is_locked(error: &sled::Error) -> bool {
    matches!(error, sled::Error::Io(io) if io.to_string().starts_with("could not acquire lock"))
}

/// A failed sled call of the index.
pub(crate) fn sled_error(source: sled::Error) -> StoreError {
    StoreError::Sled {
        path: PathBuf::from("index.sled"),
        source,
    }
}

/// A failed read of a packed value named `what`: a `store::grouped`
/// record or a `store::listing` block.
pub(crate) fn packed_error(what: &'static str, error: grouped::PackedError) -> StoreError {
    match error {
        grouped::PackedError::Sled(source) => sled_error(source),
        grouped::PackedError::Decode(source) => StoreError::Decode { what, source },
    }
}

impl StoreReader {
    fn sled_err(&self, source: sled::Error) -> StoreError {
        sled_error(source)
    }

    /// Writes one block's records and indexes in one atomic batch. `ids`
    /// are the block's attestation ids (from the block check), in order;
    /// `parsed` the statements already parsed, in the same order (missing
    /// or `None` entries are parsed here).
    fn apply(
        &self,
        record: &BlockRecord,
        ids: &[AttestationId],
        parsed: Vec<Parsed>,
    ) -> Result<(), StoreError> {
        let mut batch = Writes::default();
        let mut seen = Seen {
            reader: self,
            in_batch: Default::default(),
            dictionary: self.dictionaries.begin(self)?,
        };
        write_block(&mut batch, record, ids, parsed, &mut seen)?;
        self.write(batch, record.block.header.height)?;
        self.dictionaries.end(seen.dictionary);
        Ok(())
    }

    /// Writes consecutive appended blocks' records and indexes in one
    /// atomic batch (an indexer that fell behind catches up with one sled
    /// batch, not one per block). `parsed` holds each block's statements as
    /// for [`StoreReader::apply`].
    pub fn apply_blocks(
        &self,
        blocks: &[(&BlockRecord, &[AttestationId])],
        parsed: Vec<Vec<Parsed>>,
    ) -> Result<(), StoreError> {
        let Some(last) = blocks.last() else {
            return Ok(());
        };
        let mut batch = Writes::default();
        let mut parsed = parsed.into_iter();
        let mut seen = Seen {
            reader: self,
            in_batch: Default::default(),
            dictionary: self.dictionaries.begin(self)?,
        };
        for (record, ids) in blocks {
            write_block(
                &mut batch,
                record,
                ids,
                parsed.next().unwrap_or_default(),
                &mut seen,
            )?;
        }
        self.write(batch, last.0.block.header.height)?;
        self.dictionaries.end(seen.dictionary);
        Ok(())
    }

    /// Applies `batch` with the applied height and the layout version.
    fn write(&self, mut batch: Writes, height: u64) -> Result<(), StoreError> {
        crate::quality::series::flush(self, &mut batch)?;
        batch.pack(&self.hashed);
        batch.insert(index::KEY_APPLIED, &height.to_be_bytes()[..]);
        batch.insert(index::KEY_FORMAT, &index::FORMAT.to_be_bytes()[..]);
        batch.insert(index::KEY_OPENER, self.opener_fingerprint());
        let keys = batch.keys;
        self.db
            .apply_batch(batch.batch)
            .map_err(|e| self.sled_err(e))?;
        collect_replaced_nodes(keys);
        Ok(())
    }

    /// The last entry whose key begins with `prefix` and is at most `upto`:
    /// where a keyspace another module packs in chunks (`quality::series`)
    /// finds the chunk to append to or to start reading from.
    pub(crate) fn last_under(
        &self,
        prefix: &[u8],
        upto: &[u8],
    ) -> Result<Option<(sled::IVec, sled::IVec)>, StoreError> {
        match self.db.range(prefix.to_vec()..=upto.to_vec()).next_back() {
            Some(Ok((key, value))) if key.starts_with(prefix) => Ok(Some((key, value))),
            Some(Ok(_)) | None => Ok(None),
            Some(Err(e)) => Err(self.sled_err(e)),
        }
    }

    /// The entries from `start` on whose keys begin with `prefix`, in key
    /// order: the read side of a keyspace another module lays out and
    /// writes in the block's batch (`quality::series`, `u`).
    pub(crate) fn scan_from<'a>(
        &'a self,
        prefix: &'a [u8],
        start: &[u8],
    ) -> impl Iterator<Item = Result<(sled::IVec, sled::IVec), StoreError>> + 'a {
        self.db
            .range(start.to_vec()..)
            .take_while(move |entry| {
                entry.as_ref().is_ok_and(|(key, _)| key.starts_with(prefix)) || entry.is_err()
            })
            .map(move |entry| entry.map_err(|e| self.sled_err(e)))
    }

    pub fn applied_height(&self) -> Result<u64, StoreError> {
        Ok(self.mark(index::KEY_APPLIED)?.map_or(0, u64::from_be_bytes))
    }

    /// A fixed-size `m` record; `None` if absent or of another size.
    fn mark<const N: usize>(&self, key: &[u8]) -> Result<Option<[u8; N]>, StoreError> {
        let value = self.db.get(key).map_err(|e| self.sled_err(e))?;
        Ok(value.and_then(|v| <[u8; N]>::try_from(v.as_ref()).ok()))
    }

    /// Writes sled's dirty pages to its files (not an fsync; the block log
    /// is what makes a block durable). Returns the bytes written.
    pub fn flush(&self) -> Result<usize, StoreError> {
        self.db.flush().map_err(|e| self.sled_err(e))
    }

    /// What [`Store::open`] compares with the keys the index was written
    /// under (empty without keys).
    fn opener_fingerprint(&self) -> Vec<u8> {
        self.opener
            .as_ref()
            .map(|o| o.fingerprint())
            .unwrap_or_default()
    }

    /// The event of `statement` with its private fields restored, if this
    /// node's key opens them (the index's [`Opener`]), remembered for
    /// [`StoreReader::opened`].
    fn open_at_commit(&self, id: &AttestationId, statement: &Statement) -> Option<OpenedAtCommit> {
        statement.private.as_ref()?;
        let opened = self.opener.as_ref()?.open(statement)?;
        if let Ok(mut recent) = self.opened.lock() {
            recent.remember(*id, opened.event.clone());
        }
        Some(opened)
    }

    /// The at-rest keys of the key periods this node can still open
    /// ([`Opener::at_rest_keys`]; none without an opener).
    pub(crate) fn at_rest_keys(&self) -> Vec<PeriodAtRestKey> {
        self.opener
            .as_ref()
            .map(|o| o.at_rest_keys())
            .unwrap_or_default()
    }

    /// Forgets what this node derived from key period `period`'s plaintext,
    /// once its key is shredded (`access::shred`): the index entries sealed
    /// under the period's at-rest key (`quality::series`, keyspace `v`;
    /// unreadable already without the key, removed so nothing is left to
    /// guess at) and every opened event held in memory; and tells the
    /// readers that keep derived values ([`StoreReader::forgotten`]). A
    /// rebuild of the index from the block log cannot bring them back: the
    /// key no longer opens the records.
    pub fn forget_period(&self, period: u64) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        for entry in self
            .db
            .scan_prefix(crate::quality::series::sealed_period_prefix(period))
            .keys()
        {
            batch.remove(entry.map_err(|e| self.sled_err(e))?);
        }
        self.db.apply_batch(batch).map_err(|e| self.sled_err(e))?;
        if let Ok(mut recent) = self.opened.lock() {
            *recent = OpenedRecently::default();
        }
        self.forgotten
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        Ok(())
    }

    /// How many key periods this node has forgotten since it started
    /// ([`StoreReader::forget_period`]).
    pub(crate) fn forgotten(&self) -> u64 {
        self.forgotten.load(std::sync::atomic::Ordering::Acquire)
    }

    /// The committed record `id`'s event with its private fields restored,
    /// if this node's key opens them: what the indexer opened at commit
    /// (taken, so it is handed out once), or opened now for a record
    /// committed before this node started or too long ago.
    pub(crate) fn opened(
        &self,
        id: &AttestationId,
        statement: &Statement,
    ) -> Option<Arc<lotline_core::epcis::Event>> {
        statement.private.as_ref()?;
        let remembered = self.opened.lock().ok().and_then(|mut o| o.take(id));
        remembered.or_else(|| Some(self.opener.as_ref()?.open(statement)?.event))
    }

    /// The layout version the index was written under (1 if unmarked).
    pub fn format(&self) -> Result<u32, StoreError> {
        Ok(self.mark(index::KEY_FORMAT)?.map_or(1, u32::from_be_bytes))
    }

    pub fn contains(&self, id: &AttestationId) -> Result<bool, StoreError> {
        Ok(self.position(id)?.is_some())
    }

    /// Where the attestation `id` sits in the chain, if it is committed and
    /// this index has applied its block.
    ///
    /// Found through the block log's committed-id filter ([`SharedIds`]),
    /// which names the blocks whose ids share the id's first 8 bytes, and
    /// each such block's `b` record, which lists its ids: no sled key per
    /// attestation (format 20). A fresh id, the common case of the
    /// duplicate check, costs one bucket scan in memory and no sled read. An
    /// index opened without its log (`sled_marks`, `stopped_history`) finds
    /// no id.
    pub fn position(&self, id: &AttestationId) -> Result<Option<index::Position>, StoreError> {
        let candidates = self.committed.candidates(id);
        if candidates.is_empty() {
            return Ok(None);
        }
        // The log is ahead of sled by the blocks not yet applied: a reader
        // sees only what sled holds.
        let applied = self.applied_height()?;
        for height in candidates.into_iter().filter(|h| *h <= applied) {
            let Some(bytes) = self.raw_get(&index::block_key(height))? else {
                continue;
            };
            let found = BlockMeta::index_of(&bytes, id).map_err(|source| StoreError::Decode {
                what: "block",
                source,
            })?;
            if let Some(index) = found {
                return Ok(Some(index::Position { height, index }));
            }
        }
        Ok(None)
    }

    /// The duplicate check before anything is written or voted for
    /// (submission, gossip, a proposal's payload), and the one rule for a
    /// store read that fails there: the id counts as *possibly committed*.
    /// It is not admitted (HTTP 503 with `Retry-After`, the client retries),
    /// not taken from gossip (it arrives again in the block that carries
    /// it), and a proposal carrying it gets no vote (its view times out and
    /// moves on). Fail closed: a write refused for a moment costs a retry;
    /// one let through could commit an attestation twice and overwrite its
    /// record. The block log refuses a repeat on its own as well
    /// ([`BlockLog::check`]), so this rule keeps a read error from turning
    /// into a refused block.
    pub fn check_uncommitted(&self, id: &AttestationId) -> Result<(), NotFresh> {
        match self.contains(id) {
            Ok(false) => Ok(()),
            Ok(true) => Err(NotFresh::Committed(*id)),
            Err(source) => Err(NotFresh::Unknown { id: *id, source }),
        }
    }

    /// A tree of node-local state kept beside the index (named queries and
    /// subscriptions, `epcis::subscriptions`): not derived from the chain,
    /// so never cleared by a format change or a re-apply. It shares sled's
    /// fate: a database that does not open is moved aside whole.
    pub fn local_tree(&self, name: &str) -> Result<sled::Tree, StoreError> {
        debug_assert_ne!(name, TREE, "the index tree is not node-local state");
        self.sled.open_tree(name).map_err(|e| self.sled_err(e))
    }

    /// Removes the index tree so that every later read through this reader
    /// fails with a real sled error: the seam for store-failure tests.
    #[cfg(test)]
    pub(crate) fn drop_index_for_test(&self) {
        self.sled.drop_tree(TREE).expect("drop tree");
    }

    pub fn attestation(&self, id: &AttestationId) -> Result<Option<StoredAttestation>, StoreError> {
        let Some(at) = self.position(id)? else {
            return Ok(None);
        };
        Ok(self.attestation_at(at)?.map(|(_, stored)| stored))
    }

    /// The attestation at chain position `at`, with its id.
    pub fn attestation_at(
        &self,
        at: index::Position,
    ) -> Result<Option<(AttestationId, StoredAttestation)>, StoreError> {
        let what = "attestation";
        let Some(bytes) = grouped::get(&self.db, index::PREFIX_ATTESTATION, at)
            .map_err(|e| packed_error(what, e))?
        else {
            return Ok(None);
        };
        let dictionary = dictionary::of_frame(&bytes)
            .map(|id| self.dictionaries.get(self, id))
            .transpose()?;
        let record = index::Record::from_stored(&bytes, dictionary.as_deref())
            .map_err(|source| StoreError::Decode { what, source })?;
        Ok(Some(record.at(at)))
    }

    pub fn block(&self, height: u64) -> Result<Option<BlockMeta>, StoreError> {
        self.get("block", &index::block_key(height))
    }

    /// The header of a committed block, without decoding its ids and
    /// certificate (tens of kilobytes for a full block): the header is the
    /// first field of [`BlockMeta`], so it is the leading value of the record.
    pub fn block_header(&self, height: u64) -> Result<Option<lotline_core::Header>, StoreError> {
        let what = "block header";
        let Some(bytes) = self
            .db
            .get(index::block_key(height))
            .map_err(|e| self.sled_err(e))?
        else {
            return Ok(None);
        };
        let (header, _) = postcard::take_from_bytes(&bytes).map_err(|e| StoreError::Decode {
            what,
            source: lotline_core::codec::DecodeError::Malformed {
                what,
                reason: e.to_string(),
            },
        })?;
        Ok(Some(header))
    }

    /// One sled value as it is stored.
    fn raw_get(&self, key: &[u8]) -> Result<Option<sled::IVec>, StoreError> {
        self.db.get(key).map_err(|e| self.sled_err(e))
    }

    /// Reads and decodes one sled record.
    fn get<T: serde::de::DeserializeOwned + serde::Serialize>(
        &self,
        what: &'static str,
        key: &[u8],
    ) -> Result<Option<T>, StoreError> {
        let Some(bytes) = self.db.get(key).map_err(|e| self.sled_err(e))? else {
            return Ok(None);
        };
        index::decode(what, &bytes)
            .map(Some)
            .map_err(|source| StoreError::Decode { what, source })
    }

    /// Builds the receipt of a committed attestation.
    pub fn receipt(&self, id: &AttestationId) -> Result<Option<Receipt>, StoreError> {
        let Some(stored) = self.attestation(id)? else {
            return Ok(None);
        };
        let Some(block) = self.block(stored.height)? else {
            return Ok(None);
        };
        let tree = self.tree(stored.height, &block.ids);
        Ok(receipt_from(&tree, stored.envelope, stored.index, &block))
    }

    /// The Merkle tree of a block, from a small cache (receipts of one block
    /// are often asked for together).
    pub fn tree(&self, height: u64, ids: &[AttestationId]) -> Arc<BlockTree> {
        let mut cache = self.trees.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, tree)) = cache.iter().find(|(h, _)| *h == height) {
            return tree.clone();
        }
        let tree = Arc::new(BlockTree::new(ids));
        if cache.len() >= TREE_CACHE {
            cache.pop_front();
        }
        cache.push_back((height, tree.clone()));
        tree
    }

    /// Lists attestations under an identifier (or org) in chain order,
    /// showing only those `visible` accepts.
    ///
    /// Hidden entries leave no trace: they are skipped before the page is
    /// counted, and `next` is set only when a *visible* entry follows the
    /// page, so a caller can not tell from the page size or the cursor that
    /// hidden entries exist. At most [`LIST_SCAN_MAX`] entries are examined
    /// per call; if that runs out first, `next` is the position of the last
    /// entry examined, so the caller can go on (this one case says that
    /// something hidden lies there; see docs/api.md).
    pub fn list(
        &self,
        prefix: u8,
        name: &str,
        after: Option<(u64, u32)>,
        limit: usize,
        visible: &dyn Fn(&StoredAttestation) -> bool,
    ) -> Result<Listing, StoreError> {
        let after = after.map(|(height, index)| index::Position { height, index });
        let mut items = Vec::new();
        let mut next = None;
        let mut last_examined: Option<index::Position> = None;
        for (scanned, entry) in listing::positions(&self.db, prefix, name, after).enumerate() {
            let at = entry.map_err(|e| packed_error("listing", e))?;
            if scanned == LIST_SCAN_MAX {
                next = last_examined.map(|at| format!("{}.{}", at.height, at.index));
                break;
            }
            last_examined = Some(at);
            let Some((id, stored)) = self.attestation_at(at)? else {
                continue;
            };
            if !visible(&stored) {
                continue;
            }
            if items.len() == limit {
                // A visible entry follows: the cursor is the last item returned.
                next = items
                    .last()
                    .map(|s: &AttestationSummary| format!("{}.{}", s.height, s.index));
                break;
            }
            items.push(summary(id, &stored));
        }
        Ok(Listing {
            key: name.to_owned(),
            items,
            next,
        })
    }
}

/// Listing entries examined per call at most (visible or not).
pub const LIST_SCAN_MAX: usize = 20_000;

fn summary(id: AttestationId, stored: &StoredAttestation) -> AttestationSummary {
    AttestationSummary {
        id,
        height: stored.height,
        index: stored.index,
        org: stored.meta.org.clone(),
        event_type: stored.meta.event_type.clone(),
        event_time: stored.meta.event_time.clone(),
        biz_step: stored.meta.biz_step.clone(),
    }
}

/// A receipt from a block's tree; `None` if the index is out of range.
pub fn receipt_from(
    tree: &BlockTree,
    envelope: lotline_core::Envelope,
    index: u32,
    block: &BlockMeta,
) -> Option<Receipt> {
    let proof = tree.proof(usize::try_from(index).ok()?)?;
    Some(Receipt {
        version: RECEIPT_VERSION,
        attestation: envelope,
        leaf_index: index,
        proof,
        header: block.header.clone(),
        descendants: block.finality.descendants.clone(),
        certificate: block.finality.certificate.clone(),
    })
}

/// A one-validator chain for store tests: real blocks, real certificates.
#[cfg(test)]
pub(crate) mod testing {
    use lotline_core::attestation::Envelope;
    use lotline_core::hash::Digest;
    use lotline_core::{SigningKey, ValidatorSet};

    use super::BlockRecord;
    use crate::consensus::solo::SoloEngine;
    use crate::consensus::{Input, Output};

    pub struct Chain {
        pub set: ValidatorSet,
        engine: SoloEngine,
    }

    impl Chain {
        pub fn new() -> Chain {
            let key = SigningKey::from_seed(&[5; 32]);
            let set = ValidatorSet::new(Digest([1; 32]), vec![key.public_key()]);
            let engine = SoloEngine::new(set.chain_id, key, None, &[]);
            Chain { set, engine }
        }

        /// An empty membership history for a one-org, one-validator
        /// genesis (tests that need a [`crate::state::Shared`]).
        pub fn governance() -> std::sync::Arc<crate::governance::Governance> {
            let client = SigningKey::from_seed(&[9; 32]).public_key().to_hex();
            let node = SigningKey::from_seed(&[5; 32]).public_key().to_hex();
            let toml = format!(
                "chain_name = \"test\"\n[consensus]\nblock_max_attestations = 100\nblock_interval_ms = 10\ntimeout_base_ms = 100\ntimeout_max_ms = 1000\n[[orgs]]\nid = \"o\"\nname = \"O\"\nrole = \"supplier\"\nclient_keys = [\"{client}\"]\n[[validators]]\norg = \"o\"\nnode_key = \"{node}\"\n"
            );
            let genesis = lotline_genesis::Genesis::from_toml(&toml).expect("test genesis");
            std::sync::Arc::new(crate::governance::Governance::new(std::sync::Arc::new(
                genesis,
            )))
        }

        /// An attestation with payload `n` (not a statement: the store
        /// keeps it and indexes it under no event).
        pub fn envelope(n: u32) -> Envelope {
            Envelope::sign(n.to_be_bytes().to_vec(), &SigningKey::from_seed(&[9; 32]))
        }

        /// A valid statement for tests that carry one without reading it
        /// (its payload need not be the envelope's).
        pub fn statement() -> lotline_core::statement::Statement {
            let key = SigningKey::from_seed(&[1; 32]);
            lotline_core::statement::Statement {
                version: lotline_core::statement::STATEMENT_VERSION,
                chain_id: lotline_core::hash::Digest([0; 32]),
                org: "o".into(),
                key: key.public_key(),
                issued_at_ms: 0,
                nonce: "n".into(),
                event: serde_json::from_value(serde_json::json!({
                    "type": "ObjectEvent",
                    "eventTime": "2024-05-01T10:00:00Z",
                    "eventTimeZoneOffset": "+00:00",
                    "action": "OBSERVE",
                    "epcList": ["urn:epc:id:sgtin:0614141.107346.2017"]
                }))
                .unwrap(),
                private: None,
            }
        }

        /// Builds the next block on `head` again.
        pub fn rollback_to(&mut self, head: Option<&lotline_core::Header>) {
            self.engine.rollback_to(head);
        }

        /// The next block, certified, holding `attestations`.
        pub fn block(&mut self, attestations: Vec<Envelope>) -> BlockRecord {
            let outputs = self.engine.handle(Input::Propose {
                attestations,
                evidence: Vec::new(),
                now_ms: 1_000,
            });
            outputs
                .into_iter()
                .find_map(|o| match o {
                    Output::Commit {
                        block, finality, ..
                    } => Some(BlockRecord { block, finality }),
                    _ => None,
                })
                .expect("the solo engine commits a non-empty proposal")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(n: u64) -> Arc<lotline_core::epcis::Event> {
        let json = serde_json::json!({
            "type": "ObjectEvent",
            "eventTime": lotline_core::time::format_rfc3339_ms(n as i64),
            "eventTimeZoneOffset": "+00:00",
            "action": "OBSERVE",
            "epcList": ["urn:epc:id:sgtin:4012345.011111.1001"],
        });
        Arc::new(serde_json::from_value(json).unwrap())
    }

    fn id(n: u64) -> AttestationId {
        AttestationId(lotline_core::hash::hash(
            lotline_core::hash::Domain::Attestation,
            &n.to_le_bytes(),
        ))
    }

    #[test]
    fn a_committed_id_is_found_at_its_position_once_sled_applied_its_block_and_after_a_reopen() {
        // Goal (format 20): ids are found through the log's filter and the
        // block's record, never ahead of sled, and not by a prefix alone.
        use testing::Chain;
        let dir = tempfile::tempdir().unwrap();
        let mut chain = Chain::new();
        let (mut store, _) = Store::open(dir.path(), chain.set.clone()).unwrap();
        let first = chain.block((0..3).map(Chain::envelope).collect());
        let first_ids = store.commit(&first, |_| Vec::new()).unwrap();
        let reader = store.reader();
        let at = |height, index| Some(index::Position { height, index });
        assert_eq!(reader.position(&first_ids[2]).unwrap(), at(1, 2));

        // In the log, not yet in sled: not found, and not counted committed.
        let second = chain.block((3..5).map(Chain::envelope).collect());
        let second_ids = store.append(&second).unwrap();
        assert_eq!(reader.position(&second_ids[0]).unwrap(), None);
        assert!(!reader.contains(&second_ids[0]).unwrap());
        reader.apply(&second, &second_ids, Vec::new()).unwrap();
        assert_eq!(reader.position(&second_ids[0]).unwrap(), at(2, 0));
        assert!(reader.contains(&second_ids[1]).unwrap());

        // An id sharing a committed id's first 8 bytes names its block as a
        // candidate, which does not list it.
        let mut near = first_ids[1].0.0;
        near[31] ^= 1;
        let near = AttestationId(lotline_core::hash::Digest(near));
        assert_eq!(reader.position(&near).unwrap(), None);
        assert_eq!(reader.position(&id(7)).unwrap(), None);
        assert_eq!(reader.attestation(&near).unwrap(), None);

        // A reopened store rebuilds the filter from the block index.
        drop((reader, store));
        let (store, report) = Store::open(dir.path(), chain.set.clone()).unwrap();
        assert!(!report.sled_rebuilt);
        let reader = store.reader();
        for (height, ids) in [(1, &first_ids), (2, &second_ids)] {
            for (index, id) in ids.iter().enumerate() {
                assert_eq!(reader.position(id).unwrap(), at(height, index as u32));
                let stored = reader.attestation(id).unwrap().unwrap();
                assert_eq!(stored.envelope.id(), *id);
            }
        }
    }

    #[test]
    fn an_index_another_store_holds_is_reported_in_use_and_left_where_it_is() {
        // Defect: every sled open error counted as damage, so a second
        // store on a folder (a second node started on it) moved the live
        // index aside and rebuilt it. Goal: refused as in use, nothing
        // moved; and a store dropped a moment ago does not count as a
        // holder (sled lets go of its lock on its own threads).
        use testing::Chain;
        let dir = tempfile::tempdir().unwrap();
        let chain = Chain::new();
        let (first, _) = Store::open(dir.path(), chain.set.clone()).unwrap();
        let error = Store::open(dir.path(), chain.set.clone()).unwrap_err();
        assert!(matches!(error, StoreError::InUse { .. }), "{error}");
        assert!(error.to_string().contains("in use by another process"));
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(
            names.iter().all(|name| !name.contains("damaged")),
            "{names:?}"
        );
        drop(first);
        for _ in 0..5 {
            let (store, report) = Store::open(dir.path(), chain.set.clone()).unwrap();
            assert!(!report.sled_rebuilt);
            drop(store);
        }
    }

    #[test]
    fn an_id_is_found_in_a_block_record_where_the_decoded_record_lists_it() {
        // Goal: `BlockMeta::index_of` reads postcard's layout as the full
        // decode does, and a cut or inconsistent record is an error.
        use testing::Chain;
        let mut chain = Chain::new();
        let record = chain.block((0..40).map(Chain::envelope).collect());
        let meta = BlockMeta {
            header: record.block.header.clone(),
            finality: record.finality.clone(),
            ids: record.block.ids(),
        };
        let bytes = index::encode(&meta);
        let decoded: BlockMeta = index::decode("block", &bytes).unwrap();
        for (i, id) in decoded.ids.iter().enumerate() {
            assert_eq!(BlockMeta::index_of(&bytes, id).unwrap(), Some(i as u32));
        }
        assert_eq!(BlockMeta::index_of(&bytes, &id(1)).unwrap(), None);
        for cut in [bytes.len() - 1, bytes.len() - 32, 10] {
            assert!(
                BlockMeta::index_of(&bytes[..cut], &id(1)).is_err(),
                "cut at {cut}"
            );
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(BlockMeta::index_of(&longer, &id(1)).is_err());
    }

    #[test]
    fn an_event_opened_at_commit_is_handed_out_once_and_the_oldest_go_first() {
        // Goal: the alert follower gets what the indexer opened without a
        // second open, once; plaintext held in memory stays bounded.
        let mut opened = OpenedRecently::default();
        opened.remember(id(1), event(1));
        assert_eq!(opened.take(&id(1)), Some(event(1)));
        assert_eq!(opened.take(&id(1)), None, "handed out twice");
        for n in 0..OPENED_RECENTLY as u64 + 10 {
            opened.remember(id(n), event(n));
        }
        assert!(opened.events.len() <= OPENED_RECENTLY);
        assert_eq!(opened.take(&id(0)), None, "the oldest is evicted");
        let last = OPENED_RECENTLY as u64 + 9;
        assert_eq!(opened.take(&id(last)), Some(event(last)));
    }
}
