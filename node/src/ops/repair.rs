//! `lotline repair`: mends a block log damaged in the middle from the
//! other validators.
//!
//! A node notices such damage itself: a checksum mismatch when it reads an
//! older block (block sync answers stop before it, so the damaged range is
//! never served) or when it verifies its tail at start (it then refuses to
//! start, naming the offset). Its sled index is unaffected, so reads through
//! the API keep working; the block log, the system of record, is what must
//! be mended.
//!
//! A running validator mends its log by itself with the same steps
//! (`consensus::mend`: [`scan`] and [`fetch`] off the consensus thread,
//! [`mend_open`] on it). With the node stopped, `lotline repair`:
//!
//! 1. reads every block the index (`blocks.index`) names, read only and
//!    record by record, so one damaged record does not hide the ones after
//!    it ([`scan`]): a checksum mismatch, a body that does not decode, or a
//!    block that is not the one the index describes is damage;
//! 2. joins the validators' network with the node's own key and asks them,
//!    by block sync, for each damaged height; an answer is taken only if
//!    the block is at that height, its body matches its header, its ids are
//!    the ones the index recorded, it links to the intact blocks on either
//!    side, and its finality certificate verifies against the validators
//!    of its epoch (the chain's own sets, read from the stopped node's
//!    index: a validator voted in or re-keyed repairs too, with the peers
//!    it runs with, `consensus::epoch::join`); otherwise the next peer is
//!    asked;
//! 3. writes a new log beside the old one (intact records copied byte for
//!    byte, mended ones re-encoded) and verifies it in full through
//!    [`BlockLog::open`], which also writes its index; it must end at the
//!    old head;
//! 4. moves the damaged log aside (`blocks.log.damaged-<ms>`, kept as
//!    evidence) and the new log and index into place.
//!
//! sled is not touched: it was built from the same blocks.
//!
//! Not here: a damaged index (the next start rebuilds it from the log), a
//! damaged unindexed tail (the start truncates a torn record and refuses
//! damage followed by data), or a damaged block that no peer can give
//! (restore from a backup, docs/operations.md).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::store::epochs::ValidatorSets;
use lotline_core::block::Header;
use lotline_core::codec;
use lotline_genesis::Genesis;
use tokio::sync::mpsc;

use crate::config::NodeConfig;
use crate::consensus::bft::{SYNC_ANSWER_BYTES_MAX, SyncRequest, SyncResponse};
use crate::net::{NetEvent, Network};
use crate::store::block_index::{self, IndexEntry};
use crate::store::block_log::{self, BlockLog, BlockRecord};
use crate::store::record_file::{self, RecordFile, RecordFileError};

#[derive(Debug, thiserror::Error)]
pub enum RepairError {
    #[error("{path}: {message}")]
    Read { path: PathBuf, message: String },
    #[error(
        "{path}: no block index; without it a damaged record hides the ones after it. Restore from a backup (docs/operations.md, Restore)"
    )]
    NoIndex { path: PathBuf },
    #[error("the block index is damaged ({0}); start the node once to rebuild it from the log")]
    Index(String),
    #[error("genesis {path}: {message}")]
    Genesis { path: PathBuf, message: String },
    #[error("node key {path}: {message}")]
    NodeKey { path: PathBuf, message: String },
    #[error(
        "the node key is no node of this chain (a validator or follower of the genesis or of a vote)"
    )]
    NotValidator,
    #[error("node key {key} is no longer admitted from height {from} ({change}): {advice}")]
    Retired {
        key: lotline_core::PublicKey,
        from: u64,
        change: &'static str,
        advice: String,
    },
    #[error("a single validator has no peers to repair from; restore from a backup")]
    Solo,
    #[error(
        "cannot join the validators' network on {listen} ({message}); is the node still running? Stop it first"
    )]
    Network { listen: String, message: String },
    #[error("no validator connected within {0:?}; check that the others run and are reachable")]
    NoPeers(Duration),
    #[error("no peer gave a verifiable block {height}: {reasons}")]
    Unrepaired { height: u64, reasons: String },
    #[error(
        "the unindexed tail of the log after height {height} is damaged ({message}); see docs/operations.md, Crashes and recovery"
    )]
    Tail { height: u64, message: String },
    #[error("the repaired log does not verify: {0}")]
    Verify(String),
    #[error("the repaired log ends at height {found}, the damaged one at {expected}")]
    Head { expected: u64, found: u64 },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the damage changed while its blocks were fetched (now {now:?}, fetched {fetched:?})")]
    Changed { now: Vec<u64>, fetched: Vec<u64> },
    #[error("the mended log does not reopen: {0}")]
    Reopen(#[from] crate::store::StoreError),
}

/// A damaged block fetched from a validator and verified: (height, the
/// block and its finality, the validator that gave it).
pub type Fetched = Vec<(u64, BlockRecord, u16)>;

/// One damaged block of the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Damaged {
    pub height: u64,
    /// Where its record starts in `blocks.log`.
    pub offset: u64,
    pub reason: String,
}

/// What [`scan`] read.
#[derive(Debug)]
pub struct Scan {
    /// The index entries, heights 1, 2, ...
    pub entries: Vec<IndexEntry>,
    pub damaged: Vec<Damaged>,
    /// Where the records after the last indexed block start; `None` when
    /// the last indexed block is damaged and more bytes follow it.
    tail_offset: Option<u64>,
}

/// What [`repair`] did.
#[derive(Debug)]
pub struct Report {
    pub height: u64,
    /// The heights mended, each with the validator that gave it.
    pub repaired: Vec<(u64, u16)>,
    /// Where the damaged log was moved.
    pub damaged_log: Option<PathBuf>,
}

fn read_err(path: &Path, e: impl std::fmt::Display) -> RepairError {
    RepairError::Read {
        path: path.to_owned(),
        message: e.to_string(),
    }
}

/// Detection: reads every block the index of `data_dir` names (read only;
/// safe beside a running node, which only appends).
pub fn scan(data_dir: &Path) -> Result<Scan, RepairError> {
    let index_path = data_dir.join("blocks.index");
    let log_path = data_dir.join("blocks.log");
    if !index_path.exists() {
        return Err(RepairError::NoIndex { path: index_path });
    }
    let (records, _) = record_file::read_records(
        &index_path,
        block_index::MAGIC,
        block_index::VERSION,
        block_index::ENTRY_MAX,
    )
    .map_err(|e| RepairError::Index(e.to_string()))?;
    let mut entries = Vec::with_capacity(records.len());
    for (i, record) in records.iter().enumerate() {
        match IndexEntry::from_bytes(&record.body) {
            Some(entry) if entry.height == i as u64 + 1 => entries.push(entry),
            _ => {
                return Err(RepairError::Index(format!(
                    "entry {} does not decode",
                    i + 1
                )));
            }
        }
    }
    let file = File::open(&log_path).map_err(|e| read_err(&log_path, e))?;
    let mut damaged = Vec::new();
    let mut tail_offset = None;
    for entry in &entries {
        match read_block(&file, &log_path, entry) {
            Ok((_, end)) => tail_offset = Some(end),
            Err(reason) => {
                // Where the next record starts, if the length before the
                // damage can be believed: only the file's end is trusted.
                tail_offset = claimed_end(&file, entry.offset)
                    .filter(|&end| file.metadata().is_ok_and(|m| m.len() == end));
                damaged.push(Damaged {
                    height: entry.height,
                    offset: entry.offset,
                    reason,
                });
            }
        }
    }
    Ok(Scan {
        entries,
        damaged,
        tail_offset,
    })
}

/// Where the record at `offset` ends by its length prefix (unchecked).
fn claimed_end(file: &File, offset: u64) -> Option<u64> {
    use std::os::unix::fs::FileExt;
    let mut prefix = [0u8; 4];
    file.read_exact_at(&mut prefix, offset).ok()?;
    Some(offset + record_file::RECORD_PREFIX_LEN + u64::from(u32::from_be_bytes(prefix)))
}

/// Reads and checks the block `entry` names: the record (checksum), its
/// decoding, and that it is the block the index describes. Returns it and
/// where its record ends, or why it is damaged.
fn read_block(file: &File, path: &Path, entry: &IndexEntry) -> Result<(BlockRecord, u64), String> {
    let body = record_file::read_record_at(file, path, entry.offset, block_log::RECORD_MAX)
        .map_err(|e| match e {
            RecordFileError::Corrupt { reason, .. } => reason.to_owned(),
            other => other.to_string(),
        })?;
    let end = entry.offset + record_file::RECORD_PREFIX_LEN + body.len() as u64;
    let record = BlockRecord::from_stored(&body).map_err(|e| e.to_string())?;
    if record.block.header.height != entry.height
        || IndexEntry::new(entry.height, entry.offset, &record.block.ids()) != *entry
    {
        return Err("not the block the index describes".into());
    }
    Ok((record, end))
}

/// Refuses, in plain words, a key the chain no longer admits at the height
/// after `applied` (the peers, at least as far along, refuse it too):
/// which change retired it from which height, and for a rotated validator
/// key the key to repair with instead.
fn still_admitted(
    genesis: &Genesis,
    history: &lotline_genesis::History,
    applied: u64,
    key: &lotline_core::PublicKey,
) -> Result<(), RepairError> {
    use crate::consensus::epoch;
    let next = applied + 1;
    let admitted = epoch::admitted(genesis, history, history.at(next).epoch().0, next);
    if admitted.contains(key) {
        return Ok(());
    }
    let Some(retired) = epoch::retirement(genesis, history, key) else {
        return Ok(());
    };
    Err(RepairError::Retired {
        key: *key,
        from: retired.from,
        change: retired.change,
        advice: retired.advice(),
    })
}

/// Repairs the log of the node `config` describes (the node stopped),
/// waiting up to `connect` for a peer. A log without damage is left alone.
pub async fn repair(config: &NodeConfig, connect: Duration) -> Result<Report, RepairError> {
    let genesis = Genesis::load(&config.genesis).map_err(|e| RepairError::Genesis {
        path: config.genesis.clone(),
        message: e.to_string(),
    })?;
    let key = lotline_genesis::keys::read_signing_key(&config.node_key).map_err(|e| {
        RepairError::NodeKey {
            path: config.node_key.clone(),
            message: e.to_string(),
        }
    })?;
    let genesis = std::sync::Arc::new(genesis);
    let data_dir = &config.data_dir;
    // The chain's own validator sets (a validator voted in or re-keyed, a
    // later epoch's set) from the stopped node's index; the genesis alone
    // without one.
    let (history, applied) = crate::store::stopped_history(data_dir, genesis.clone())?
        .unwrap_or_else(|| {
            let genesis_only = lotline_genesis::History::new(genesis.clone());
            (std::sync::Arc::new(genesis_only), 0)
        });
    let named = crate::consensus::epoch::node_keys(&genesis, &history)
        .iter()
        .any(|(k, _)| *k == key.public_key());
    if !named {
        return Err(RepairError::NotValidator);
    }
    still_admitted(&genesis, &history, applied, &key.public_key())?;
    let scan = scan(data_dir)?;
    let height = scan.entries.len() as u64;
    if scan.damaged.is_empty() {
        return Ok(Report {
            height,
            repaired: Vec::new(),
            damaged_log: None,
        });
    }
    for d in &scan.damaged {
        tracing::warn!(height = d.height, offset = d.offset, reason = %d.reason, "damaged block");
    }
    if history.validator_set_at(height + 1).len() == 1 {
        return Err(RepairError::Solo);
    }

    // As the node joins (its peers dial it back at its address), or on
    // any port: repairing only dials out.
    let join = |listen: Option<&str>| {
        crate::consensus::epoch::join(
            &genesis,
            &key,
            false,
            config.p2p_peers.iter().cloned().collect(),
            listen,
            &history,
            height,
        )
    };
    let joined = match join(config.p2p_listen.as_deref()) {
        Err(crate::consensus::epoch::JoinError::NoAddress) => join(Some("/ip4/0.0.0.0/tcp/0")),
        joined => joined,
    };
    let net_config = joined
        .map_err(|e| RepairError::Network {
            listen: config.p2p_listen.clone().unwrap_or_default(),
            message: e.to_string(),
        })?
        .2;
    let listen = net_config.listen.to_string();
    let net_err = |message: String| RepairError::Network { listen, message };
    let (net, events) = Network::start(net_config, &key).map_err(|e| net_err(e.to_string()))?;
    let drain = tokio::spawn(ignore_events(events));
    let fetched = fetch(&net, &*history, &scan, data_dir, connect).await;
    net.shutdown().await;
    drain.abort();
    let fetched = fetched?;

    let report = rewrite(data_dir, &*history, &scan, fetched)?;
    Ok(report)
}

/// The repairing process answers nobody: it drops what peers send.
async fn ignore_events(mut events: mpsc::Receiver<NetEvent>) {
    while events.recv().await.is_some() {}
}

/// Fetches and verifies every damaged block of `scan` from the validators
/// `net` connects to, waiting up to `connect` for one.
pub async fn fetch(
    net: &crate::net::NetworkHandle,
    set: &dyn ValidatorSets,
    scan: &Scan,
    data_dir: &Path,
    connect: Duration,
) -> Result<Fetched, RepairError> {
    let deadline = tokio::time::Instant::now() + connect;
    while net.connected().is_empty() {
        if tokio::time::Instant::now() >= deadline {
            return Err(RepairError::NoPeers(connect));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let log_path = data_dir.join("blocks.log");
    let file = File::open(&log_path).map_err(|e| read_err(&log_path, e))?;
    let header_at = |height: u64| -> Option<Header> {
        let entry = scan
            .entries
            .get(usize::try_from(height.checked_sub(1)?).ok()?)?;
        read_block(&file, &log_path, entry)
            .ok()
            .map(|(r, _)| r.block.header)
    };
    let mut out: Vec<(u64, BlockRecord, u16)> = Vec::new();
    for damaged in &scan.damaged {
        let h = damaged.height;
        let entry = &scan.entries[usize::try_from(h - 1).unwrap_or(usize::MAX)];
        // The parent: intact on disk, or mended just before.
        let parent = match out.last() {
            Some((ph, record, _)) if *ph + 1 == h => Some(record.block.header.clone()),
            _ => header_at(h - 1),
        };
        let child = header_at(h + 1);
        let mut reasons = Vec::new();
        let mut got = None;
        for peer in net.connected() {
            let request = codec::to_bytes(&SyncRequest {
                from_height: h,
                max_blocks: 1,
            });
            let answer = match net.request_sync(peer, request).await {
                Ok(Ok(bytes)) => bytes,
                Ok(Err(e)) => {
                    reasons.push(format!("validator {peer}: {e}"));
                    continue;
                }
                Err(_) => {
                    reasons.push(format!("validator {peer}: network stopped"));
                    continue;
                }
            };
            match verify(&answer, h, entry, parent.as_ref(), child.as_ref(), set) {
                Ok(record) => {
                    got = Some((record, peer));
                    break;
                }
                Err(reason) => reasons.push(format!("validator {peer}: {reason}")),
            }
        }
        match got {
            Some((record, peer)) => {
                tracing::info!(height = h, peer, "damaged block fetched and verified");
                out.push((h, record, peer));
            }
            None => {
                return Err(RepairError::Unrepaired {
                    height: h,
                    reasons: reasons.join("; "),
                });
            }
        }
    }
    Ok(out)
}

/// Whether a sync answer holds the block that belongs at `height`.
fn verify(
    answer: &[u8],
    height: u64,
    entry: &IndexEntry,
    parent: Option<&Header>,
    child: Option<&Header>,
    sets: &dyn ValidatorSets,
) -> Result<BlockRecord, String> {
    let set = sets.set_at(height);
    let response: SyncResponse = codec::from_bytes("sync response", answer, SYNC_ANSWER_BYTES_MAX)
        .map_err(|e| e.to_string())?;
    let Some(record) = response.records.into_iter().next() else {
        return Err("it has no block at that height".into());
    };
    let header = &record.block.header;
    if header.height != height {
        return Err(format!("sent height {} instead", header.height));
    }
    let ids = record
        .block
        .check_body(&set.chain_id)
        .map_err(|e| format!("body: {e}"))?;
    if IndexEntry::new(height, entry.offset, &ids) != *entry {
        return Err("its attestations are not the ones this log held".into());
    }
    if height == 1 || parent.is_some() {
        record
            .block
            .check_link(parent)
            .map_err(|e| format!("link to the parent: {e}"))?;
    }
    if let Some(child) = child
        && child.parent != record.block.hash()
    {
        return Err("the next block does not link to it".into());
    }
    record
        .finality
        .verify(&set, header)
        .map_err(|e| format!("finality: {e}"))?;
    Ok(record)
}

/// Mends the log of the running node whose store is `store`, from blocks
/// fetched for an earlier [`scan`]. Called between two commits by the one
/// thread that appends, so nothing is written meanwhile: it scans again
/// (blocks appended since are copied as they are), takes the fetched blocks
/// only if the damage is still exactly theirs, rewrites and verifies the log
/// as `lotline repair` does, and reopens it.
pub fn mend_open(store: &mut crate::store::Store, fetched: Fetched) -> Result<Report, RepairError> {
    let data_dir = store.dir().to_owned();
    let scan = scan(&data_dir)?;
    let now: Vec<u64> = scan.damaged.iter().map(|d| d.height).collect();
    let mended: Vec<u64> = fetched.iter().map(|(h, _, _)| *h).collect();
    if now != mended {
        return Err(RepairError::Changed {
            now,
            fetched: mended,
        });
    }
    let sets = store.sets().clone();
    let report = rewrite(&data_dir, sets.sets(), &scan, fetched)?;
    store.reopen_log()?;
    Ok(report)
}

/// Writes the mended log beside the old one, verifies it in full, and moves
/// it into place.
fn rewrite(
    data_dir: &Path,
    set: &dyn ValidatorSets,
    scan: &Scan,
    fetched: Fetched,
) -> Result<Report, RepairError> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| RepairError::Io { path, source }
    };
    let log_path = data_dir.join("blocks.log");
    let staging = data_dir.join("repair.staging");
    match std::fs::remove_dir_all(&staging) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(&staging)(e)),
    }
    std::fs::create_dir_all(&staging).map_err(io(&staging))?;
    let staged_log = staging.join("blocks.log");
    let height = scan.entries.len() as u64;
    {
        let old = File::open(&log_path).map_err(io(&log_path))?;
        let mut new = RecordFile::open(
            &staged_log,
            block_log::MAGIC,
            block_log::VERSION,
            block_log::RECORD_MAX,
        )
        .map_err(|e| read_err(&staged_log, e))?
        .file;
        let mut mended = fetched.iter().peekable();
        for entry in &scan.entries {
            let body = match mended.peek() {
                Some((h, record, _)) if *h == entry.height => {
                    mended.next();
                    record.to_stored()
                }
                _ => record_file::read_record_at(
                    &old,
                    &log_path,
                    entry.offset,
                    block_log::RECORD_MAX,
                )
                .map_err(|e| read_err(&log_path, e))?,
            };
            new.append(&body).map_err(|e| read_err(&staged_log, e))?;
        }
        // Blocks appended after the index's last synced entry.
        let Some(tail_offset) = scan.tail_offset else {
            return Err(RepairError::Tail {
                height,
                message: "the last indexed block is damaged and bytes follow it".into(),
            });
        };
        if !scan.entries.is_empty() {
            let (tail, _) = record_file::read_records_from(
                &log_path,
                block_log::MAGIC,
                block_log::VERSION,
                block_log::RECORD_MAX,
                tail_offset,
            )
            .map_err(|e| RepairError::Tail {
                height,
                message: e.to_string(),
            })?;
            for record in tail {
                new.append(&record.body)
                    .map_err(|e| read_err(&staged_log, e))?;
            }
        }
        new.sync().map_err(|e| read_err(&staged_log, e))?;
    }
    // The full verify: no index in the staging folder.
    let (log, _) =
        BlockLog::open(&staged_log, set).map_err(|e| RepairError::Verify(e.to_string()))?;
    let found = log.height();
    drop(log);
    if found < height {
        return Err(RepairError::Head {
            expected: height,
            found,
        });
    }
    let aside = data_dir.join(format!("blocks.log.damaged-{}", super::now_ms()));
    std::fs::rename(&log_path, &aside).map_err(io(&log_path))?;
    std::fs::rename(&staged_log, &log_path).map_err(io(&staged_log))?;
    let index_path = data_dir.join("blocks.index");
    std::fs::rename(staging.join("blocks.index"), &index_path).map_err(io(&index_path))?;
    record_file::sync_parent_dir(&log_path).map_err(io(data_dir))?;
    std::fs::remove_dir_all(&staging).map_err(io(&staging))?;
    Ok(Report {
        height: found,
        repaired: fetched.iter().map(|(h, _, peer)| (*h, *peer)).collect(),
        damaged_log: Some(aside),
    })
}
