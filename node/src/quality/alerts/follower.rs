//! The alert follower: a thread that judges each block after the store has
//! applied it, signs what fires as the `[alerts]` org and hands it to the
//! write path (`ingest.rs`, the same one `POST /v1/attestations` uses).
//!
//! Persistence: `<data-dir>/alerts/state.json` holds the last judged height
//! and the supplier counts, replaced atomically (temporary file, fsync,
//! rename). It is written after a block's firings were submitted, so a
//! crash in between judges that block again; its firings rebuild the same
//! envelopes (module doc of `alerts`), which ingest refuses as already
//! pending or committed. Deleting the folder judges the chain again from
//! block 1 and states nothing twice: the keys the org has on the chain are
//! read when the follower starts and skipped.
//!
//! `[alerts] from = "head"` starts a follower with no saved position at the
//! head instead; the state keeps that height (`since`), and firings whose
//! trigger is at or below it are never stated, also after restarts and
//! although the first block that touches a chart judges its whole series
//! (the chart's statistics need it).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lotline_core::epcis::QualityFact;
use lotline_core::statement::Statement;
use lotline_genesis::Genesis;
use serde::{Deserialize, Serialize};

use super::detect::{self, Committed, SupplierState, Thresholds};
use crate::access::{Caller, Identity};
use crate::admission::{Admission, AdmissionError};
use crate::config::AlertsFrom;
use crate::epcis::capture::Custodian;
use crate::ingest::Ingest;
use crate::store::index::Position;
use crate::store::{StoreError, StoreReader};
use crate::trace::CallerVisibility;

/// How often the follower looks for newly applied blocks.
pub const POLL: Duration = Duration::from_millis(50);
/// Wait before retrying a block whose judgement or submission failed.
pub const RETRY_AFTER: Duration = Duration::from_millis(500);
/// Judged blocks between state writes when nothing fires.
const PERSIST_EVERY: u64 = 256;

#[derive(Debug, thiserror::Error)]
pub enum AlertsError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not an alert follower state: {message}")]
    State { path: PathBuf, message: String },
    #[error("org {0:?} is not in genesis")]
    UnknownOrg(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The persisted position.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct State {
    height: u64,
    /// Triggers at or below this height are not stated (`from = "head"`).
    #[serde(default)]
    since: u64,
    suppliers: BTreeMap<String, SupplierState>,
}

/// What the follower has done, for `/metrics`-style reads and tests.
#[derive(Debug, Default)]
pub struct Progress {
    /// The last judged height.
    pub height: AtomicU64,
    /// Alerts handed to the write path since start.
    pub submitted: AtomicU64,
}

/// A running alert follower.
#[derive(Debug)]
pub struct Alerter {
    pub progress: Arc<Progress>,
    stop: Arc<AtomicBool>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

/// What the follower needs from the node.
#[derive(Debug)]
pub struct Parts {
    pub data_dir: PathBuf,
    pub genesis: Arc<Genesis>,
    pub reader: StoreReader,
    pub ingest: Ingest,
    pub admission: Admission,
    pub custodian: Custodian,
    pub from: AlertsFrom,
    pub thresholds: Thresholds,
}

/// The follower's folder in a node's data directory.
pub fn dir(data_dir: &Path) -> PathBuf {
    data_dir.join("alerts")
}

impl Alerter {
    /// Reads the persisted position and the org's stated keys, then starts
    /// the thread.
    pub fn start(parts: Parts) -> Result<Alerter, AlertsError> {
        let folder = dir(&parts.data_dir);
        std::fs::create_dir_all(&folder).map_err(|source| AlertsError::Io {
            path: folder.clone(),
            source,
        })?;
        let state = match read_state(&folder.join(STATE_FILE))? {
            Some(state) => state,
            None if parts.from == AlertsFrom::Head => {
                let head = parts.reader.applied_height()?;
                let state = State {
                    height: head,
                    since: head,
                    suppliers: BTreeMap::new(),
                };
                write_state(&folder, &state)?;
                tracing::info!(
                    height = head,
                    "alerts: starting at the head, stating nothing before it"
                );
                state
            }
            None => State::default(),
        };
        let Some(org) = parts.genesis.org(&parts.custodian.org) else {
            return Err(AlertsError::UnknownOrg(parts.custodian.org.clone()));
        };
        let identity = Identity::Caller(Caller {
            org: org.id.clone(),
            role: org.role,
            credential: "alerts".into(),
            operator: false,
        });
        let raised = stated_keys(&parts.reader, &parts.custodian.org)?;
        let progress = Arc::new(Progress::default());
        progress.height.store(state.height, Ordering::Relaxed);
        let stop = Arc::new(AtomicBool::new(false));
        let mut follower = Follower {
            folder,
            parts,
            identity,
            state,
            raised,
            charts: detect::Charts::default(),
            forgotten: 0,
            progress: progress.clone(),
            stop: stop.clone(),
            unsaved: 0,
        };
        let thread = std::thread::Builder::new()
            .name("alerts".into())
            .spawn(move || follower.run())
            .map_err(|source| AlertsError::Io {
                path: PathBuf::from("alerts thread"),
                source,
            })?;
        Ok(Alerter {
            progress,
            stop,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Stops the thread after the block it is judging (its state saved).
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Release);
        let handle = crate::state::lock(&self.thread).take();
        if let Some(handle) = handle {
            let _ = handle.join();
        }
    }
}

const STATE_FILE: &str = "state.json";

/// The saved state; `None` if the follower never saved one.
fn read_state(path: &Path) -> Result<Option<State>, AlertsError> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| AlertsError::State {
                path: path.to_owned(),
                message: e.to_string(),
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(AlertsError::Io {
            path: path.to_owned(),
            source,
        }),
    }
}

fn write_state(folder: &Path, state: &State) -> Result<(), AlertsError> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| AlertsError::Io { path, source }
    };
    let tmp = folder.join("state.json.tmp");
    let bytes = serde_json::to_vec(state).map_err(|e| AlertsError::State {
        path: tmp.clone(),
        message: e.to_string(),
    })?;
    {
        use std::io::Write;
        let mut file = std::fs::File::create(&tmp).map_err(io(&tmp))?;
        file.write_all(&bytes).map_err(io(&tmp))?;
        file.sync_data().map_err(io(&tmp))?;
    }
    let target = folder.join(STATE_FILE);
    std::fs::rename(&tmp, &target).map_err(io(&target))?;
    if let Ok(dir) = std::fs::File::open(folder) {
        let _ = dir.sync_all();
    }
    Ok(())
}

/// The keys of every alert `org` has on the chain.
fn stated_keys(reader: &StoreReader, org: &str) -> Result<BTreeSet<String>, AlertsError> {
    let mut keys = BTreeSet::new();
    let mut after = None;
    loop {
        let page = super::list::scan(reader, after, super::list::SCAN_PAGE)?;
        for (_, stored) in &page.items {
            if stored.meta.org != org {
                continue;
            }
            if let Ok(statement) = Statement::from_payload(&stored.envelope.payload)
                && let Some(QualityFact::Alert { key, .. }) = statement.event.quality
            {
                keys.insert(key);
            }
        }
        match page.next {
            Some(next) => after = Some(next),
            None => return Ok(keys),
        }
    }
}

struct Follower {
    folder: PathBuf,
    parts: Parts,
    identity: Identity,
    state: State,
    /// Keys this org has stated (or handed to the write path).
    raised: BTreeSet<String>,
    /// Each chart's judging state (in memory: rebuilt from the chain the
    /// first time a block touches a chart after a start).
    charts: detect::Charts,
    /// The store's count of forgotten key periods when `charts` was last
    /// kept: a chart state holds recent values, which may come from a
    /// period since shredded, so the states go when the count moves.
    forgotten: u64,
    progress: Arc<Progress>,
    stop: Arc<AtomicBool>,
    unsaved: u64,
}

/// How judging one block ended.
enum Judged {
    Done {
        fired: bool,
    },
    /// Try the same block again later (the pool is full, the store could
    /// not be read).
    Retry,
}

impl Follower {
    fn run(&mut self) {
        while !self.stop.load(Ordering::Acquire) {
            let applied = match self.parts.reader.applied_height() {
                Ok(height) => height,
                Err(error) => {
                    tracing::warn!(%error, "alerts: applied height unreadable");
                    std::thread::sleep(RETRY_AFTER);
                    continue;
                }
            };
            if self.state.height >= applied {
                self.save_if_due(true);
                std::thread::sleep(POLL);
                continue;
            }
            let height = self.state.height + 1;
            match self.judge(height) {
                Judged::Done { fired } => {
                    self.state.height = height;
                    self.progress.height.store(height, Ordering::Release);
                    self.unsaved += 1;
                    self.save_if_due(fired);
                }
                Judged::Retry => std::thread::sleep(RETRY_AFTER),
            }
        }
        self.save_if_due(true);
    }

    fn save_if_due(&mut self, now: bool) {
        if self.unsaved == 0 || (!now && self.unsaved < PERSIST_EVERY) {
            return;
        }
        match write_state(&self.folder, &self.state) {
            Ok(()) => self.unsaved = 0,
            Err(error) => tracing::error!(%error, "alerts: position not saved"),
        }
    }

    fn judge(&mut self, height: u64) -> Judged {
        let reader = &self.parts.reader;
        let block = match read_block(reader, height) {
            Ok(Some(block)) => block,
            Ok(None) => return Judged::Retry,
            Err(error) => {
                tracing::warn!(%error, height, "alerts: block unreadable");
                return Judged::Retry;
            }
        };
        let committed: Vec<Committed<'_>> = block
            .iter()
            .map(|(id, at, statement)| Committed {
                id: *id,
                at: *at,
                statement,
            })
            .collect();
        for record in &committed {
            if record.statement.org == self.parts.custodian.org
                && let Some(QualityFact::Alert { key, .. }) = &record.statement.event.quality
            {
                self.raised.insert(key.clone());
            }
        }
        let forgotten = reader.forgotten();
        if forgotten != self.forgotten {
            self.charts = detect::Charts::default();
            self.forgotten = forgotten;
        }
        let visibility = CallerVisibility::new(&self.parts.genesis, &self.identity, reader);
        let mut suppliers = self.state.suppliers.clone();
        let mut charts = self.charts.clone();
        let firings = match detect::detect(
            reader,
            &visibility,
            &committed,
            height,
            self.parts.thresholds,
            &mut suppliers,
            &mut charts,
        ) {
            Ok(firings) => firings,
            Err(error) => {
                tracing::warn!(%error, height, "alerts: block not judged");
                return Judged::Retry;
            }
        };
        let mut fired = false;
        for firing in firings {
            if self.raised.contains(&firing.key) || firing.trigger_height <= self.state.since {
                continue;
            }
            match self.submit(&firing) {
                Submitted::Yes => {
                    fired = true;
                    self.progress.submitted.fetch_add(1, Ordering::Relaxed);
                    self.raised.insert(firing.key);
                }
                Submitted::Never => {
                    self.raised.insert(firing.key);
                }
                Submitted::Later => return Judged::Retry,
            }
        }
        self.state.suppliers = suppliers;
        self.charts = charts;
        Judged::Done { fired }
    }

    fn submit(&self, firing: &super::Firing) -> Submitted {
        let reader = &self.parts.reader;
        let time_ms = match reader.block(firing.trigger_height) {
            Ok(Some(meta)) => meta.header.timestamp_ms,
            Ok(None) | Err(_) => return Submitted::Later,
        };
        let event = firing.event(i64::try_from(time_ms).unwrap_or(i64::MAX));
        let envelope = self.parts.custodian.sign(
            self.parts.genesis.chain_id(),
            time_ms,
            firing.nonce(),
            event,
        );
        let admitted = match self.parts.admission.admit(envelope) {
            Ok(admitted) => admitted,
            Err(problems) => {
                // The genesis policy does not let this org state alerts,
                // or the alert does not validate: a configuration matter,
                // not something a retry mends.
                let reasons: Vec<String> = problems.iter().map(ToString::to_string).collect();
                tracing::warn!(key = %firing.key, ?reasons, "alerts: alert refused by admission");
                return Submitted::Never;
            }
        };
        let id = admitted.id;
        match self.parts.ingest.submit(vec![admitted], false) {
            Ok(_) => {
                tracing::info!(%id, key = %firing.key, "alert stated");
                Submitted::Yes
            }
            Err(problems) => match problems.first() {
                Some(AdmissionError::Duplicate(_)) => Submitted::Never,
                Some(AdmissionError::Overloaded(_) | AdmissionError::StoreUnavailable(_)) => {
                    Submitted::Later
                }
                _ => {
                    tracing::warn!(key = %firing.key, "alerts: alert refused by the write path");
                    Submitted::Never
                }
            },
        }
    }
}

enum Submitted {
    Yes,
    /// Already pending or committed, or never admissible.
    Never,
    Later,
}

pub type Block = Vec<(
    lotline_core::attestation::AttestationId,
    Position,
    Statement,
)>;

/// The parsed statements of the block at `height`, in block order.
/// The committed, parseable records of the block at `height` (what the
/// follower judges; the quality bench times the same read).
pub fn read_block(reader: &StoreReader, height: u64) -> Result<Option<Block>, StoreError> {
    let Some(meta) = reader.block(height)? else {
        return Ok(None);
    };
    let mut out = Vec::with_capacity(meta.ids.len());
    for index in 0..meta.ids.len() {
        let at = Position {
            height,
            index: u32::try_from(index).unwrap_or(u32::MAX),
        };
        let Some((id, stored)) = reader.attestation_at(at)? else {
            return Err(StoreError::Missing {
                what: "attestation",
                at,
            });
        };
        // Admission parsed every committed statement; one that does not
        // parse now carries nothing to judge.
        if let Ok(statement) = Statement::from_payload(&stored.envelope.payload) {
            out.push((id, at, statement));
        }
    }
    Ok(Some(out))
}
