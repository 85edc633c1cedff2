//! Loads a generated supply chain into a one-validator store through the
//! real commit path: every event signed by its org's key, held in the
//! mempool with its parsed statement as admission leaves it, blocks taken
//! from the pool and certified by the solo engine, and committed by the
//! node's commit step ([`commit::commit`]: block log + fdatasync on the
//! committing thread, sled records and every index on the indexer thread).
//! For benchmarks and store tests, which need large stores of known content
//! far faster than HTTP submission would build them. What it leaves out of
//! the node's path is admission's checks and signature verification.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use lotline_consensus::{Input, Output};
use lotline_core::attestation::AttestationId;
use lotline_core::statement::{STATEMENT_VERSION, Statement};
use lotline_core::{Envelope, SigningKey};
use lotline_genesis::Genesis;
use lotline_sim::workload::{Roles, Scale, SupplyChainWorkload, Truth, Workload, WorkloadSummary};

use crate::NodeConfig;
use crate::consensus::commit::{self, Indexer};
use crate::consensus::solo::SoloEngine;
use crate::governance::Governance;
use crate::mempool::{Admitted, Mempool};
use crate::state::{HeadView, Shared};
use crate::store::{BlockLog, BlockRecord, Parsed, Store, StoreOpenReport};

/// The workload's seed: one story per scale, the same in every run.
const SEED: u64 = 7;
/// The issue time stamped on every statement (the story's events carry
/// their own event times).
const ISSUED_AT_MS: u64 = 1_772_438_400_000;

/// A store and what was loaded into it.
#[derive(Debug)]
pub struct Loaded {
    pub store: Store,
    pub genesis: Genesis,
    pub summary: WorkloadSummary,
    /// Events committed.
    pub events: u64,
    /// Wall time of generating, signing and committing.
    pub seconds: f64,
    /// Time the signing thread spent signing, beside the committing one.
    pub sign_seconds: f64,
}

/// The consortium files under `dir`: genesis, keys and the one validator's
/// node config, whose data directory holds the store.
fn paths(dir: &Path) -> (PathBuf, PathBuf) {
    let consortium = dir.join("consortium");
    (
        consortium.join(lotline_genesis::init::GENESIS_FILE),
        consortium.join("nodes").join("manufacturer.toml"),
    )
}

/// Creates a consortium in the empty directory `dir` (the demo orgs, the
/// manufacturer as the one validator) and loads the story of `scale` into
/// its validator's store, in blocks of `block_size` attestations.
/// `progress(events, seconds)` is called after every block.
pub fn load(
    dir: &Path,
    scale: Scale,
    block_size: usize,
    progress: impl FnMut(u64, f64),
) -> Result<Loaded> {
    let workload = SupplyChainWorkload::stream(SEED, scale, &Roles::demo());
    load_story(dir, workload, block_size, progress).map(|(loaded, _)| loaded)
}

/// Like [`load`], with the planted story of `seed` (quality causes for the
/// analysis tools); returns what was planted beside the store. Tests use
/// the truth to check the tools; the tools never see it.
pub fn load_planted(
    dir: &Path,
    seed: u64,
    scale: Scale,
    block_size: usize,
) -> Result<(Loaded, Truth)> {
    let workload = SupplyChainWorkload::planted(seed, scale, &Roles::demo());
    let (loaded, truth) = load_story(dir, workload, block_size, |_, _| {})?;
    Ok((loaded, truth.context("a planted story without its truth")?))
}

fn load_story(
    dir: &Path,
    workload: Workload,
    block_size: usize,
    progress: impl FnMut(u64, f64),
) -> Result<(Loaded, Option<Truth>)> {
    let consortium = Consortium::create(dir)?;
    let (mut store, _) = Store::open(&consortium.data_dir, consortium.genesis.validator_set())?;
    let mut engine = SoloEngine::new(
        consortium.genesis.chain_id(),
        consortium.node_key.clone(),
        store.head(),
        &[],
    );
    let governance = Governance::open(
        Arc::new(consortium.genesis.clone()),
        &store.reader(),
        store.height(),
    )?;
    let shared = Shared::new(
        Mempool::new(consortium.mempool.0, consortium.mempool.1),
        HeadView::default(),
        Arc::new(governance),
    );
    let indexer = Indexer::start(store.reader(), shared.clone(), store.height())?;
    let story = sign_story(
        &consortium,
        workload,
        block_size,
        progress,
        |block, statements| {
            let taken = pool_and_take(&shared, block, statements)?;
            for (record, ids) in certify(&mut engine, taken) {
                commit::commit(&mut store, &indexer, &shared, record, ids)?;
            }
            Ok(())
        },
    )?;
    // The indexer indexes what is queued before it stops: part of the load.
    let draining = Instant::now();
    drop(indexer);
    if let Some(failure) = shared.failure() {
        anyhow::bail!("the indexer stopped: {failure}");
    }
    let loaded = Loaded {
        store,
        genesis: consortium.genesis,
        summary: story.summary,
        events: story.events,
        seconds: story.seconds + draining.elapsed().as_secs_f64(),
        sign_seconds: story.sign_seconds,
    };
    Ok((loaded, story.truth))
}

/// Puts one block's signed statements into the pool as admission would
/// (each with the statement it parsed, which the indexer reads back instead
/// of parsing the payload again), then takes them as the solo actor does:
/// in flight until the commit step indexes them.
fn pool_and_take(
    shared: &Shared,
    block: Vec<Envelope>,
    statements: &[Parsed],
) -> Result<Vec<Envelope>> {
    let mut pool = shared.pool();
    let count = block.len();
    for (envelope, statement) in block.into_iter().zip(statements) {
        pool.insert(Admitted::new(envelope, statement.clone()))?;
    }
    Ok(pool
        .take(count, usize::MAX)
        .into_iter()
        .map(|admitted| admitted.envelope)
        .collect())
}

/// Like [`load`], but writes the block log only (every block checked and
/// fdatasync'ed, its index written), not sled: for measuring what grows with
/// the chain (opening the log) at sizes a full load would take hours to
/// build. Returns the events written and the path of the log.
pub fn load_log(
    dir: &Path,
    scale: Scale,
    block_size: usize,
    progress: impl FnMut(u64, f64),
) -> Result<(u64, PathBuf)> {
    let consortium = Consortium::create(dir)?;
    let set = consortium.genesis.validator_set();
    let path = consortium.data_dir.join("blocks.log");
    std::fs::create_dir_all(&consortium.data_dir)?;
    let (mut log, _) = BlockLog::open(&path, &set)?;
    let mut engine = SoloEngine::new(
        consortium.genesis.chain_id(),
        consortium.node_key.clone(),
        log.head(),
        &[],
    );
    let workload = SupplyChainWorkload::stream(SEED, scale, &Roles::demo());
    let story = sign_story(&consortium, workload, block_size, progress, |block, _| {
        for (record, ids) in certify(&mut engine, block) {
            log.check_hashed(&set, &record, &ids)?;
            log.append_durable(&record, &ids)?;
        }
        Ok(())
    })?;
    Ok((story.events, path))
}

/// The consortium [`load`] writes into, with what loading needs of it.
struct Consortium {
    genesis: Genesis,
    data_dir: PathBuf,
    node_key: SigningKey,
    keys: BTreeMap<String, SigningKey>,
    /// The node config's mempool limits (attestations, bytes).
    mempool: (usize, usize),
}

impl Consortium {
    fn create(dir: &Path) -> Result<Consortium> {
        let orgs = crate::demo::parse_orgs(crate::demo::DEMO_ORGS)?;
        let layout = crate::demo::create_consortium(
            &dir.join("consortium"),
            "bulk-load",
            &orgs,
            &["manufacturer".into()],
            0,
            0,
        )?;
        let genesis = Genesis::load(&layout.genesis_path)?;
        let config = NodeConfig::load(&layout.node_configs[0])?;
        let node_key = lotline_genesis::keys::read_signing_key(&config.node_key)?;
        let keys = layout
            .client_keys
            .iter()
            .map(|(org, path)| Ok((org.clone(), lotline_genesis::keys::read_signing_key(path)?)))
            .collect::<Result<_>>()?;
        Ok(Consortium {
            genesis,
            data_dir: config.data_dir,
            node_key,
            keys,
            mempool: (config.mempool_attestations_max, config.mempool_bytes_max),
        })
    }
}

/// A signed story and how long it took.
struct Story {
    summary: WorkloadSummary,
    truth: Option<Truth>,
    events: u64,
    seconds: f64,
    sign_seconds: f64,
}

/// Generates and signs the story `workload` streams, handing `commit` one block's
/// envelopes and metadata at a time. Generating and signing run on a thread
/// of their own, a few blocks ahead, as a consortium's members sign on their
/// own machines: what the caller's thread spends is the node's commit path.
fn sign_story(
    consortium: &Consortium,
    workload: Workload,
    block_size: usize,
    mut progress: impl FnMut(u64, f64),
    mut commit: impl FnMut(Vec<Envelope>, &[Parsed]) -> Result<()>,
) -> Result<Story> {
    /// Signed blocks waiting for the committing thread: enough to keep it
    /// busy, bounded so memory does not grow with the story.
    const AHEAD: usize = 2;
    let started = Instant::now();
    let block_size = block_size.max(1);
    let (blocks, signed) = std::sync::mpsc::sync_channel::<(Vec<Envelope>, Vec<Parsed>)>(AHEAD);
    std::thread::scope(|scope| {
        let signer = scope.spawn(move || sign_blocks(consortium, workload, block_size, blocks));
        let mut committed = 0u64;
        let mut failed = None;
        for (block, metas) in signed.iter() {
            committed += block.len() as u64;
            if let Err(e) = commit(block, &metas) {
                failed = Some(e);
                break;
            }
            progress(committed, started.elapsed().as_secs_f64());
        }
        // Dropping the receiver stops the signer at its next block.
        drop(signed);
        let signed = match signer.join() {
            Ok(signed) => signed,
            Err(panic) => std::panic::resume_unwind(panic),
        };
        if let Some(e) = failed {
            return Err(e);
        }
        let (workload, sign_seconds) = signed?;
        let summary = workload
            .summary()
            .cloned()
            .context("the workload ended without a summary")?;
        Ok(Story {
            summary,
            truth: workload.truth().cloned(),
            events: committed,
            seconds: started.elapsed().as_secs_f64(),
            sign_seconds,
        })
    })
}

/// The signing side of [`sign_story`]: each item of `workload` as a statement
/// signed by its org's key, sent in blocks of `block_size`. Returns the
/// drained workload (for its summary) and the seconds spent signing.
fn sign_blocks(
    consortium: &Consortium,
    mut workload: Workload,
    block_size: usize,
    blocks: std::sync::mpsc::SyncSender<(Vec<Envelope>, Vec<Parsed>)>,
) -> Result<(Workload, f64)> {
    let genesis = &consortium.genesis;
    let mut sign_time = Duration::ZERO;
    let mut block = Vec::with_capacity(block_size);
    let mut metas = Vec::with_capacity(block_size);
    for (nonce, item) in workload.by_ref().enumerate() {
        let key = consortium
            .keys
            .get(&item.org)
            .with_context(|| format!("no key for org {}", item.org))?;
        let statement = Statement {
            version: STATEMENT_VERSION,
            chain_id: genesis.chain_id(),
            org: item.org,
            key: key.public_key(),
            issued_at_ms: ISSUED_AT_MS,
            nonce: format!("{nonce:016x}"),
            event: item.event,
            private: None,
        };
        let t = Instant::now();
        block.push(statement.sign(key));
        sign_time += t.elapsed();
        metas.push(Some(Arc::new(statement.into())));
        if block.len() == block_size {
            let full = (std::mem::take(&mut block), std::mem::take(&mut metas));
            if blocks.send(full).is_err() {
                // The committing side stopped (it failed): its error is
                // the one to report.
                return Ok((workload, sign_time.as_secs_f64()));
            }
        }
    }
    if !block.is_empty() {
        // A send fails only when the committing side stopped (see above).
        let _ = blocks.send((block, metas));
    }
    Ok((workload, sign_time.as_secs_f64()))
}

/// Opens a store [`load`] built in `dir` earlier; the story of `scale` is
/// generated again (not signed or committed) for its summary.
pub fn reopen(dir: &Path, scale: Scale) -> Result<(Store, StoreOpenReport, WorkloadSummary)> {
    let (store, report, _) = reopen_store(dir)?;
    let mut workload = SupplyChainWorkload::stream(SEED, scale, &Roles::demo());
    workload.by_ref().for_each(drop);
    let summary = workload
        .summary()
        .cloned()
        .context("the workload ended without a summary")?;
    Ok((store, report, summary))
}

/// Opens the store [`load`] built in `dir` earlier, with its genesis,
/// without generating the story again.
pub fn reopen_store(dir: &Path) -> Result<(Store, StoreOpenReport, Genesis)> {
    let (genesis_path, config_path) = paths(dir);
    let genesis = Genesis::load(&genesis_path)?;
    let config = NodeConfig::load(&config_path)?;
    let (store, report) = Store::open(&config.data_dir, genesis.validator_set())?;
    Ok((store, report, genesis))
}

/// The sled index directory of the store [`load`] built in `dir`.
pub fn index_path(dir: &Path) -> Result<PathBuf> {
    let (_, config_path) = paths(dir);
    Ok(NodeConfig::load(&config_path)?.data_dir.join("index.sled"))
}

/// Proposes `block` to the solo engine; returns the block it certifies,
/// with the ids it hashed in building it.
fn certify(
    engine: &mut SoloEngine,
    block: Vec<Envelope>,
) -> Vec<(BlockRecord, Vec<AttestationId>)> {
    engine
        .handle(Input::Propose {
            attestations: block,
            evidence: Vec::new(),
            now_ms: ISSUED_AT_MS,
        })
        .into_iter()
        .filter_map(|output| match output {
            Output::Commit {
                block,
                ids,
                finality,
            } => Some((BlockRecord { block, finality }, ids)),
            _ => None,
        })
        .collect()
}
