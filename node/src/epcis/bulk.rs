//! Capturing a document of any size in bounded memory: the pipeline behind
//! `POST /epcis/capture` (and, with one event, `POST /epcis/events`).
//!
//! ```text
//! body frames --(channel, 4 frames)--> parser thread (stream.rs)
//!   --(channel, 1 chunk of CAPTURE_CHUNK_EVENTS raw events)--> driver:
//!       prepare (blocking pool, one chunk a core at once, taken in
//!                document order): schema, event model, custodial
//!                signature, admission (one batch verification; the
//!                repeat check's event hash is kept for the indexer)
//!       proceed:  Ingest::submit_when_room  (waits for mempool room)
//!       rollback: spool to disk; once the whole document is known good,
//!                 replay the spool chunk by chunk through submit_when_room
//!   per enqueued chunk: a task waiting for its commits (job progress)
//! ```
//!
//! Memory: at most a few chunks of events are held at once (one being parsed,
//! one in the channel, one a core being prepared, up to four), and their
//! *admitted* events wait to enter the mempool or the spool; the
//! `lotline_epcis_capture_held_events_max` metric reports the highest count
//! of those. The mempool's own bound then applies, and a loader that outruns
//! consensus is slowed to its pace, never dropped.
//!
//! `GS1-Capture-Error-Behaviour` on a stream:
//! - `rollback` (the default): all or nothing. The document is read to its
//!   end first; every event is checked and signed and its attestation
//!   spooled to a file under the node's data directory. Only when the whole
//!   document passed does anything enter the mempool. A problem anywhere
//!   (including malformed JSON or an oversized document after the first
//!   million events) refuses the request and captures nothing. The one
//!   exception is the node itself refusing during the replay (shutting
//!   down, store unreadable): the job then says how many events were
//!   captured before it, never silently.
//! - `proceed`: each chunk is captured as soon as it is checked; rejected
//!   events are reported in the job. If the stream itself breaks (malformed
//!   JSON, too large, client gone) the events before the break stay
//!   captured and the job names the break. A document whose every event is
//!   refused is refused as under rollback.
//! - Both: the document's `@context` must come before its event list once
//!   the list has more than [`CAPTURE_CHUNK_EVENTS`] events (it is copied
//!   into each event before signing); smaller documents may give it
//!   anywhere. Document-level members (`type`, `schemaVersion`, ...) are
//!   checked against the schema when the document ends.

use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use lotline_core::api::FieldProblem;
use lotline_core::attestation::{AttestationId, Envelope};
use lotline_core::epcis::event_hash;
use lotline_core::hash::Digest;
use lotline_core::limits::CAPTURE_CHUNK_EVENTS;
use lotline_genesis::SealError;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use rand_core::RngCore;
use serde_json::{Map, Value};
use tokio::sync::{Notify, mpsc, oneshot};
use tokio::task::{JoinError, JoinHandle, JoinSet};
use tokio::time::Instant;

use super::capture::{self, BodyKind, ReadError};
use super::jobs::{Behaviour, CapturedEvent, JOB_ERRORS_MAX, JOB_EVENTS_LISTED_MAX};
use super::master_data;
use super::schema;
use super::stream::{self, Halt, Piece, StreamError};
use crate::admission::{Admission, AdmissionError, Rejection};
use crate::ingest::{Ingest, Outcome};
use crate::mempool::Admitted;
use crate::parsed::ParsedStatement;
use crate::store::StoreReader;
use crate::store::events::duplicate_listing_of;
use crate::store::index::Position;

/// How long the events of one enqueued chunk may take to commit, counted
/// from when the chunk before it committed whole (`commit_deadline`), before
/// the job reports them pending.
pub const COMMIT_WAIT: Duration = Duration::from_secs(60);

/// Error fields of a job that name the capture itself, not an event.
const JOB_FIELDS: [&str; 3] = ["commit", "capture", "document"];

/// What the pipeline needs from the node.
#[derive(Debug, Clone)]
pub struct Parts {
    pub admission: Admission,
    pub ingest: Ingest,
    pub epcis: Arc<super::Epcis>,
    pub reader: StoreReader,
    pub chain_id: Digest,
}

/// Counters of the capture pipeline, registered in `/metrics`.
#[derive(Debug, Default)]
pub struct Counters {
    /// Admitted events not yet in the mempool or the spool, now.
    held: Gauge,
    /// The most ever held at once.
    held_max: Gauge,
    /// Events captured (enqueued) by capture documents since start.
    captured: Counter,
}

impl Counters {
    fn hold(&self, n: usize) {
        let n = i64::try_from(n).unwrap_or(i64::MAX);
        let now = self.held.inc_by(n).saturating_add(n);
        self.held_max.inner().fetch_max(now, Relaxed);
    }

    fn release(&self, n: usize) {
        self.held.dec_by(i64::try_from(n).unwrap_or(i64::MAX));
    }

    pub fn held_max(&self) -> usize {
        usize::try_from(self.held_max.get()).unwrap_or(0)
    }

    /// Registers these counters in the node's registry.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "lotline_epcis_capture_held_events",
            "Admitted capture events not yet in the mempool or spool",
            self.held.clone(),
        );
        registry.register(
            "lotline_epcis_capture_held_events_max",
            "Most admitted capture events ever held outside the mempool and spool at once",
            self.held_max.clone(),
        );
        registry.register(
            "lotline_epcis_captured_events",
            "Events captured from EPCIS documents",
            self.captured.clone(),
        );
    }
}

/// One raw event of the list: its index, its path for problems, its JSON.
#[derive(Debug)]
pub struct RawEvent {
    pub path: String,
    pub raw: Value,
}

/// What the parser hands the driver.
#[derive(Debug)]
pub enum Input {
    /// Up to [`CAPTURE_CHUNK_EVENTS`] events and the document's `@context`.
    Chunk {
        events: Vec<RawEvent>,
        context: Option<Arc<Value>>,
    },
    /// The document ended: its event count, or why it could not be read.
    End(Result<usize, Broken>),
}

/// Why a document could not be read (or was not an EPCIS document).
#[derive(Debug, Clone, PartialEq)]
pub enum Broken {
    Stream(StreamError),
    Read(ReadError),
    /// More than a chunk of events before the document's `@context`.
    LateContext,
}

impl std::fmt::Display for Broken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Broken::Stream(e) => write!(f, "{e}"),
            Broken::Read(e) => write!(f, "{e}"),
            Broken::LateContext => write!(
                f,
                "a document of more than {CAPTURE_CHUNK_EVENTS} events must give its @context \
                 before epcisBody (it is copied into each event as it streams)"
            ),
        }
    }
}

/// Parses `body` on the calling (blocking) thread and sends its events to
/// `tx` in chunks. Returns when the document ended or the driver went away.
pub fn parse(body: impl Read, document_max: u64, tx: &mpsc::Sender<Input>) {
    let mut context: Option<Arc<Value>> = None;
    let mut events: Vec<RawEvent> = Vec::with_capacity(CAPTURE_CHUNK_EVENTS);
    let mut sent_any = false;
    let mut late = false;
    let mut gone = false;
    let mut master_data = 0usize;
    let result = stream::read(body, document_max, &mut |piece| {
        match piece {
            Piece::Context(value) => {
                context = Some(Arc::new(value.clone()));
                return Ok(());
            }
            Piece::Header(header) => {
                // Master data elements are captured as events of the
                // document (see `master_data`), in the same chunks.
                let carriers = master_data::carriers(header, crate::clock::unix_ms_i64());
                master_data += carriers.len();
                events.extend(carriers);
            }
            Piece::Event { kind, index, raw } => {
                events.push(RawEvent {
                    path: format!("{}[{index}]", list_path(kind)),
                    raw,
                });
            }
        }
        while events.len() >= CAPTURE_CHUNK_EVENTS {
            if context.is_none() && !sent_any {
                late = true;
                return Err(Halt);
            }
            let rest = events.split_off(CAPTURE_CHUNK_EVENTS);
            let chunk = Input::Chunk {
                events: std::mem::replace(&mut events, rest),
                context: context.clone(),
            };
            sent_any = true;
            if tx.blocking_send(chunk).is_err() {
                gone = true;
                return Err(Halt);
            }
        }
        Ok(())
    });
    if gone {
        return;
    }
    let end = match result {
        Ok(outline) => check_outline(outline, master_data).map(|count| (count, true)),
        Err(StreamError::Halted) if late => Err(Broken::LateContext),
        Err(e) => Err(Broken::Stream(e)),
    };
    // The complete events read before a break are still given: under
    // `proceed` they are captured, under `rollback` nothing is.
    if !events.is_empty() && (context.is_some() || sent_any || end.is_ok()) {
        let chunk = Input::Chunk {
            events,
            context: context.clone(),
        };
        if tx.blocking_send(chunk).is_err() {
            return;
        }
    }
    let _ = tx.blocking_send(Input::End(end.map(|(count, _)| count)));
}

fn list_path(kind: BodyKind) -> &'static str {
    match kind {
        BodyKind::QueryDocument => "epcisBody.queryResults.resultsBody.eventList",
        _ => "epcisBody.eventList",
    }
}

/// The document-level checks, once the document has ended: its type, the
/// schema over everything but the events, at least one event or master
/// data element (`master_data` of them were read from the header).
fn check_outline(outline: stream::Outline, master_data: usize) -> Result<usize, Broken> {
    let declared = outline.skeleton.get("type").and_then(Value::as_str);
    if !matches!(declared, Some("EPCISDocument" | "EPCISQueryDocument")) {
        return Err(Broken::Read(ReadError::WrongKind {
            expected: "an EPCISDocument or EPCISQueryDocument",
            found: declared.unwrap_or("(none)").to_owned(),
        }));
    }
    let violations = schema::check(&Value::Object(outline.skeleton));
    if !violations.is_empty() {
        return Err(Broken::Read(ReadError::Schema(violations)));
    }
    if master_data == 0 && (outline.kind.is_none() || outline.events == 0) {
        return Err(Broken::Read(ReadError::NoEvents));
    }
    Ok(outline.events + master_data)
}

/// One event body for `POST /epcis/events`, as a one-event chunk.
pub fn single(body: &[u8]) -> Result<Input, ReadError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| ReadError::Json(e.to_string()))?;
    let found = value
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("(none)");
    if matches!(found, "EPCISDocument" | "EPCISQueryDocument") {
        return Err(ReadError::WrongKind {
            expected: "one EPCIS event (documents go to /epcis/capture)",
            found: found.to_owned(),
        });
    }
    Ok(Input::Chunk {
        events: vec![RawEvent {
            path: String::new(),
            raw: value,
        }],
        context: None,
    })
}

// ------------------------------------------------------------------ driver

/// How a capture ended, for the handler to translate.
#[derive(Debug)]
pub enum Finish {
    /// Something was captured (or, under `proceed`, is being): the job
    /// says what; `broken` is a break of the stream after that.
    Captured { broken: Option<Broken> },
    /// Nothing was captured.
    Refused(Refusal),
}

/// Why nothing of a document was captured.
#[derive(Debug)]
pub enum Refusal {
    Broken(Broken),
    /// Some events were refused (all of them, under `proceed`).
    Events(Problems),
    /// The node refused to enqueue (shutting down, store unavailable).
    Node(Rejection),
}

/// The problems of the events of one document, bounded.
#[derive(Debug, Default)]
pub struct Problems {
    pub list: Vec<FieldProblem>,
    /// Events refused in total (the list keeps [`JOB_ERRORS_MAX`]).
    pub rejected: usize,
    /// Events read in total.
    pub read: usize,
    pub schema: bool,
    pub unreadable: bool,
    pub unknown_type: bool,
    /// The first admission refusal, for its status and type.
    pub first_rejection: Option<Rejection>,
}

impl Problems {
    fn push(&mut self, problems: impl IntoIterator<Item = FieldProblem>) {
        for p in problems {
            if self.list.len() < JOB_ERRORS_MAX {
                self.list.push(p.bounded());
            }
        }
    }

    fn absorb(&mut self, other: Problems) {
        self.rejected += other.rejected;
        self.read += other.read;
        self.schema |= other.schema;
        self.unreadable |= other.unreadable;
        self.unknown_type |= other.unknown_type;
        if self.first_rejection.is_none() {
            self.first_rejection = other.first_rejection;
        }
        self.push(other.list);
    }
}

/// A chunk after checking, signing and admission.
struct Prepared {
    admitted: Vec<Admitted>,
    captured: Vec<CapturedEvent>,
    problems: Problems,
}

/// Drives one capture from `rx` to the mempool, updating job `capture_id`
/// as chunks are captured. Returns once every event is in the mempool (or
/// refused); the commits are awaited by a task that finishes the job, and
/// `finished` is notified when it has.
pub async fn run(
    parts: Arc<Parts>,
    capture_id: String,
    behaviour: Behaviour,
    mut rx: mpsc::Receiver<Input>,
    finished: Arc<Notify>,
) -> Finish {
    let mut driver = Driver {
        parts: parts.clone(),
        capture_id,
        problems: Problems::default(),
        captured: 0,
        waiters: JoinSet::new(),
        previous_chunk: None,
        room: Arc::new(Notify::new()),
        spool: None,
    };
    let mut end: Option<Result<usize, Broken>> = None;
    // Chunks being prepared, oldest first: up to `ahead` at once, each on
    // its own blocking thread, taken in document order.
    let ahead = prepare_ahead();
    let mut preparing: VecDeque<JoinHandle<Prepared>> = VecDeque::with_capacity(ahead);
    let mut reading = true;
    loop {
        tokio::select! {
            // The oldest chunk first: it is what the mempool or the spool
            // waits for, and what frees memory.
            biased;
            Some(prepared) = oldest(&mut preparing) => {
                preparing.pop_front();
                if let Err(refusal) = driver.chunk(behaviour, prepared).await {
                    driver.abandon(preparing).await;
                    return Finish::Refused(refusal);
                }
            }
            input = rx.recv(), if reading && preparing.len() < ahead => match input {
                Some(Input::Chunk { events, context }) => {
                    preparing.push_back(driver.start(events, context));
                }
                Some(Input::End(result)) => {
                    end = Some(result);
                    reading = false;
                }
                None => reading = false,
            },
            else => break,
        }
    }
    drop(rx);
    let broken = match end {
        Some(Ok(_)) => None,
        Some(Err(broken)) => Some(broken),
        None => Some(Broken::Stream(StreamError::Body(
            "the document reader stopped".into(),
        ))),
    };
    let finish = match behaviour {
        Behaviour::Rollback => driver.end_rollback(broken).await,
        Behaviour::Proceed => driver.end_proceed(broken),
    };
    if matches!(finish, Finish::Captured { .. }) {
        driver.finish_when_committed(finished);
    }
    finish
}

struct Driver {
    parts: Arc<Parts>,
    capture_id: String,
    problems: Problems,
    /// Events enqueued so far.
    captured: usize,
    /// One task per enqueued chunk, waiting for its commits.
    waiters: JoinSet<()>,
    /// Told by the last enqueued chunk's waiter whether that chunk committed
    /// whole; the next chunk's clock starts then (`commit_deadline`).
    previous_chunk: Option<oneshot::Receiver<bool>>,
    /// Notified when a chunk of this capture committed: room in the pool.
    room: Arc<Notify>,
    spool: Option<Spool>,
}

impl Driver {
    /// Starts checking, signing and admitting one chunk on a blocking
    /// thread.
    fn start(&self, events: Vec<RawEvent>, context: Option<Arc<Value>>) -> JoinHandle<Prepared> {
        let parts = self.parts.clone();
        tokio::task::spawn_blocking(move || prepare(&parts, events, context.as_deref()))
    }

    /// Takes one prepared chunk, in document order: spooled under
    /// `rollback` while the document is clean, enqueued under `proceed`.
    async fn chunk(
        &mut self,
        behaviour: Behaviour,
        prepared: Result<Prepared, JoinError>,
    ) -> Result<(), Refusal> {
        let prepared = prepared
            .map_err(|e| Refusal::Node(overloaded(format!("capture worker failed: {e}"))))?;
        let reported = self.problems.rejected as u64;
        let parts = self.parts.clone();
        let rollback_clean = behaviour == Behaviour::Rollback
            && self.problems.rejected == 0
            && prepared.problems.rejected == 0;
        let mut spool = self.spool.take();
        let (prepared, spool, spooled) = tokio::task::spawn_blocking(move || {
            let mut spooled = Ok(());
            if rollback_clean {
                spooled = spool_chunk(&parts, &mut spool, &prepared.admitted, &prepared.captured);
            }
            parts.epcis.counters.release(prepared.admitted.len());
            (prepared, spool, spooled)
        })
        .await
        .map_err(|e| Refusal::Node(overloaded(format!("capture worker failed: {e}"))))?;
        self.spool = spool;
        spooled.map_err(|e| Refusal::Node(overloaded(format!("capture spool: {e}"))))?;
        let Prepared {
            admitted,
            captured,
            problems,
        } = prepared;
        self.problems.absorb(problems);
        match behaviour {
            Behaviour::Rollback => Ok(()),
            Behaviour::Proceed => {
                if self.problems.rejected as u64 > reported {
                    let rejected = self.problems.list.clone();
                    let count = self.problems.rejected as u64;
                    self.parts.epcis.jobs.update(&self.capture_id, |job| {
                        // The events' problems, after the job's own (commit,
                        // capture), which this must not overwrite.
                        job.errors
                            .retain(|e| JOB_FIELDS.contains(&e.field.as_str()));
                        job.errors.extend(rejected);
                        job.success = false;
                        job.events_rejected = count;
                    });
                }
                if admitted.is_empty() {
                    return Ok(());
                }
                match self.enqueue(admitted, captured).await {
                    Ok(()) => Ok(()),
                    Err(rejection) if self.captured == 0 => Err(Refusal::Node(rejection)),
                    Err(rejection) => {
                        self.record_failure(&rejection);
                        Ok(())
                    }
                }
            }
        }
    }

    /// Into the mempool, waiting for room; then a task that waits for the
    /// commits and counts them into the job.
    async fn enqueue(
        &mut self,
        admitted: Vec<Admitted>,
        captured: Vec<CapturedEvent>,
    ) -> Result<(), Rejection> {
        let count = admitted.len();
        // Each event's repeated-capture listing, from the name admission
        // kept: a commit is a repeat if the listing starts elsewhere.
        let listings: HashMap<AttestationId, String> = admitted
            .iter()
            .filter_map(|a| Some((a.id, duplicate_listing_of(a.statement.as_deref()?))))
            .collect();
        let counters = &self.parts.epcis.counters;
        counters.hold(count);
        let submitted = self
            .parts
            .ingest
            .submit_when_room(admitted, true, &self.room)
            .await;
        counters.release(count);
        let tickets = submitted?;
        counters.captured.inc_by(count as u64);
        self.captured += count;
        let listed_from = self.captured - count;
        let listed: Vec<CapturedEvent> = captured
            .into_iter()
            .take(JOB_EVENTS_LISTED_MAX.saturating_sub(listed_from))
            .collect();
        let total = self.captured as u64;
        self.parts.epcis.jobs.update(&self.capture_id, |job| {
            job.events_captured = total;
            job.events.extend(listed);
        });
        let epcis = self.parts.epcis.clone();
        let capture_id = self.capture_id.clone();
        let room = self.room.clone();
        let reader = self.parts.reader.clone();
        let enqueued = Instant::now();
        let (committed_whole, next_chunk) = oneshot::channel();
        let previous_chunk = self.previous_chunk.replace(next_chunk);
        self.waiters.spawn(async move {
            let deadline = commit_deadline(enqueued, previous_chunk).await;
            let outcomes = tickets.wait(deadline).await;
            let whole = outcomes
                .iter()
                .all(|(_, o)| matches!(o, Outcome::Committed(_)));
            let _ = committed_whole.send(whole);
            room.notify_one();
            let repeats = tokio::task::spawn_blocking({
                let mut listings = listings;
                let committed: Vec<_> = outcomes
                    .iter()
                    .filter_map(|(id, o)| match o {
                        Outcome::Committed(notice) => {
                            let at = Position {
                                height: notice.height,
                                index: notice.receipt.leaf_index,
                            };
                            Some((*id, listings.remove(id)?, at))
                        }
                        _ => None,
                    })
                    .collect();
                move || repeats_among(&reader, committed)
            })
            .await
            .unwrap_or_default();
            record_commits(&epcis, &capture_id, outcomes, &repeats);
        });
        // Reap waiters that are done, so finished ones are not kept.
        while self.waiters.try_join_next().is_some() {}
        Ok(())
    }

    /// Waits out the chunks still being prepared when the capture is
    /// refused, releasing what they hold: nothing of them is captured.
    async fn abandon(&self, preparing: VecDeque<JoinHandle<Prepared>>) {
        for handle in preparing {
            if let Ok(prepared) = handle.await {
                self.parts.epcis.counters.release(prepared.admitted.len());
            }
        }
    }

    fn record_failure(&self, rejection: &Rejection) {
        let reason = rejection
            .first()
            .map(ToString::to_string)
            .unwrap_or_default();
        let captured = self.captured;
        self.parts.epcis.jobs.update(&self.capture_id, |job| {
            job.success = false;
            job.errors.push(FieldProblem {
                field: "capture".into(),
                reason: format!(
                    "the node refused further events after {captured} were captured: {reason}"
                ),
            });
        });
    }

    async fn end_rollback(&mut self, broken: Option<Broken>) -> Finish {
        if let Some(broken) = broken {
            return Finish::Refused(Refusal::Broken(broken));
        }
        if self.problems.rejected > 0 {
            return Finish::Refused(Refusal::Events(std::mem::take(&mut self.problems)));
        }
        let Some(spool) = self.spool.take() else {
            return Finish::Refused(Refusal::Broken(Broken::Read(ReadError::NoEvents)));
        };
        let mut replay = match spool.replay() {
            Ok(replay) => replay,
            Err(e) => {
                return Finish::Refused(Refusal::Node(overloaded(format!("capture spool: {e}"))));
            }
        };
        loop {
            let chunk = tokio::task::block_in_place(|| replay.next_chunk(CAPTURE_CHUNK_EVENTS));
            let chunk = match chunk {
                Ok(chunk) if chunk.is_empty() => break,
                Ok(chunk) => chunk,
                Err(e) => {
                    let rejection = overloaded(format!("capture spool: {e}"));
                    if self.captured == 0 {
                        return Finish::Refused(Refusal::Node(rejection));
                    }
                    self.record_failure(&rejection);
                    break;
                }
            };
            let captured = chunk.iter().map(|(_, c)| c.clone()).collect();
            let admitted = chunk.into_iter().map(|(a, _)| a).collect();
            if let Err(rejection) = self.enqueue(admitted, captured).await {
                if self.captured == 0 {
                    return Finish::Refused(Refusal::Node(rejection));
                }
                self.record_failure(&rejection);
                break;
            }
        }
        Finish::Captured { broken: None }
    }

    fn end_proceed(&mut self, broken: Option<Broken>) -> Finish {
        if self.captured == 0 {
            return Finish::Refused(match broken {
                Some(broken) => Refusal::Broken(broken),
                None => Refusal::Events(std::mem::take(&mut self.problems)),
            });
        }
        if let Some(broken) = &broken {
            let captured = self.captured;
            let reason = broken.to_string();
            self.parts.epcis.jobs.update(&self.capture_id, |job| {
                job.success = false;
                job.errors.push(FieldProblem {
                    field: "document".into(),
                    reason: format!("{reason}; the {captured} events before it were captured"),
                });
            });
        }
        Finish::Captured { broken }
    }

    /// A task that waits for every chunk's commits, then finishes the job.
    fn finish_when_committed(&mut self, finished: Arc<Notify>) {
        let mut waiters = std::mem::take(&mut self.waiters);
        let epcis = self.parts.epcis.clone();
        let capture_id = self.capture_id.clone();
        tokio::spawn(async move {
            while waiters.join_next().await.is_some() {}
            let finished_at = crate::clock::now_rfc3339();
            epcis.jobs.update(&capture_id, |job| {
                job.running = false;
                job.finished_at = Some(finished_at);
            });
            finished.notify_one();
        });
    }
}

type Repeats = Vec<(AttestationId, AttestationId)>;

/// Which of `committed` (each with its repeated-capture listing and where
/// it was committed) were committed as repeats of an earlier capture
/// (`super::dedup::committed_repeat`), with the first capture's id. A store
/// read that fails reports nothing (the job then counts them committed).
fn repeats_among(
    reader: &StoreReader,
    committed: Vec<(AttestationId, String, Position)>,
) -> Repeats {
    committed
        .into_iter()
        .filter_map(
            |(id, listing, at)| match super::dedup::committed_repeat(reader, listing, at) {
                Ok(first) => first.map(|first| (id, first)),
                Err(error) => {
                    tracing::warn!(%error, "repeat check after commit skipped");
                    None
                }
            },
        )
        .collect()
}

/// When a chunk's wait for its commits ends. Chunks commit in the order they
/// were enqueued, so a chunk's clock starts when the chunk before it has
/// committed whole: a long document on a busy node is not reported pending
/// while its chunks are still committing one after another, and a stalled
/// chain is still reported `COMMIT_WAIT` after the last chunk that committed.
/// When the chunk before did not commit whole, the clock runs from this
/// chunk's own enqueueing, as it would alone.
async fn commit_deadline(enqueued: Instant, previous: Option<oneshot::Receiver<bool>>) -> Instant {
    let previous_committed = match previous {
        Some(previous) => previous.await.unwrap_or(false),
        None => false,
    };
    if previous_committed {
        Instant::now() + COMMIT_WAIT
    } else {
        enqueued + COMMIT_WAIT
    }
}

/// Counts one chunk's commits into its job; a repeat committed after the
/// first capture of its event is reported `duplicate-event` instead.
fn record_commits(
    epcis: &super::Epcis,
    capture_id: &str,
    outcomes: Vec<(AttestationId, Outcome)>,
    repeats: &Repeats,
) {
    let mut committed = 0u64;
    let mut heights = Vec::new();
    let mut failure: Option<String> = None;
    for (id, outcome) in outcomes {
        match outcome {
            Outcome::Committed(_) if repeats.iter().any(|(r, _)| *r == id) => {}
            Outcome::Committed(notice) => {
                committed += 1;
                heights.push((id, notice.height));
            }
            Outcome::Stopped => {
                failure.get_or_insert_with(|| "the node stopped before the commit".into());
            }
            Outcome::Pending => {
                failure.get_or_insert_with(|| {
                    format!(
                        "not committed within {} s; the attestations stay pending and \
                         can be looked up by id",
                        COMMIT_WAIT.as_secs()
                    )
                });
            }
        }
    }
    epcis.jobs.update(capture_id, |job| {
        job.events_committed += committed;
        for (repeat, first) in repeats {
            let event_id = job
                .events
                .iter()
                .find(|e| e.attestation == *repeat)
                .map(|e| e.event_id.clone())
                .unwrap_or_default();
            job.success = false;
            job.events_rejected += 1;
            job.errors.push(FieldProblem {
                field: format!("eventID {event_id}"),
                reason: format!(
                    "duplicate-event: attestation {repeat} committed after another capture of the same event (attestation {first}); it is not indexed as a new event"
                ),
            });
        }
        for event in &mut job.events {
            if event.height.is_none()
                && let Some((_, h)) = heights.iter().find(|(id, _)| *id == event.attestation)
            {
                event.height = Some(*h);
            }
        }
        if let Some(reason) = failure {
            job.success = false;
            if !job.errors.iter().any(|e| e.field == "commit") {
                job.errors.push(FieldProblem {
                    field: "commit".into(),
                    reason,
                });
            }
        }
    });
}

/// How many chunks are prepared at once: one a core, up to four. A chunk's
/// preparation (schema, signing, one batch verification) is one thread's
/// work; the parser and, under `proceed`, the commit path run beside it.
/// A capture holds at most this many chunks of admitted events at once.
pub fn prepare_ahead() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(4))
}

/// The oldest chunk's preparation, when it is done; `None` when no chunk
/// is being prepared.
async fn oldest(
    preparing: &mut VecDeque<JoinHandle<Prepared>>,
) -> Option<Result<Prepared, JoinError>> {
    match preparing.front_mut() {
        Some(handle) => Some(handle.await),
        None => None,
    }
}

fn overloaded(detail: String) -> Rejection {
    vec![AdmissionError::Overloaded(detail)]
}

/// Checks, signs and admits one chunk (CPU work, on a blocking thread).
fn prepare(parts: &Parts, events: Vec<RawEvent>, context: Option<&Value>) -> Prepared {
    let mut problems = Problems {
        read: events.len(),
        ..Problems::default()
    };
    let Some(custodian) = parts.epcis.custodian.as_ref() else {
        // The handler refuses before reading when there is no custodian.
        problems.rejected = events.len();
        return Prepared {
            admitted: Vec::new(),
            captured: Vec::new(),
            problems,
        };
    };
    let issued_at_ms = crate::clock::unix_ms();
    // Private members are sealed for the orgs the membership in force
    // entitles, as admission will require.
    let governance = parts.admission.governance();
    let membership = governance.history().at(governance.next_height());
    let mut paths = Vec::with_capacity(events.len());
    let mut envelopes = Vec::with_capacity(events.len());
    let mut ids: Vec<String> = Vec::with_capacity(events.len());
    for RawEvent { path, raw } in events {
        let mut raw = with_context(raw, context);
        let violations = schema::check(&raw);
        if !violations.is_empty() {
            problems.rejected += 1;
            problems.schema = true;
            let pointer = pointer_of(&path);
            problems.push(violations.into_iter().map(|v| FieldProblem {
                field: format!("{pointer}{}", v.pointer),
                reason: v.reason,
            }));
            continue;
        }
        let private = match capture::take_private(&mut raw, &path) {
            Ok(private) => private,
            Err(problem) => {
                problems.rejected += 1;
                problems.unreadable = true;
                problems.push([problem]);
                continue;
            }
        };
        let event = match capture::read_event(&raw, None, &path) {
            Ok(event) => event,
            Err((problem, unknown)) => {
                problems.rejected += 1;
                problems.unreadable = true;
                problems.unknown_type |= unknown;
                problems.push([problem]);
                continue;
            }
        };
        let nonce = random_nonce();
        let sealed = custodian.seal(
            membership.rules(),
            parts.chain_id,
            issued_at_ms,
            nonce,
            event,
            &private,
        );
        let mut statement = match sealed {
            Ok(statement) => statement,
            Err(SealError::Recipients(e)) => {
                let rejection: Rejection = vec![AdmissionError::PrivateRecipients(e)];
                problems.rejected += 1;
                problems.push(event_problems(&path, &rejection));
                problems.first_rejection.get_or_insert(rejection);
                continue;
            }
            Err(SealError::Private(e)) => {
                problems.rejected += 1;
                problems.unreadable = true;
                problems.push([FieldProblem {
                    field: capture::join(&path, capture::PRIVATE_KEY),
                    reason: e.to_string(),
                }]);
                continue;
            }
        };
        let event_id = capture::name_event(&mut statement.event);
        envelopes.push(statement.sign(&custodian.key));
        ids.push(event_id);
        paths.push(path);
    }
    let guard = super::dedup::ClientGuard::new(parts.reader.clone());
    let verdicts = parts.admission.admit_batch_guarded(envelopes, &guard);
    let mut admitted: Vec<Admitted> = Vec::with_capacity(verdicts.len());
    let mut captured: Vec<CapturedEvent> = Vec::with_capacity(verdicts.len());
    // Where each event's repeated-capture name was first admitted in this
    // chunk, by the name admission's repeat check computed.
    let mut seen: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for ((path, event_id), verdict) in paths.iter().zip(ids).zip(verdicts) {
        match verdict {
            Ok(a) => {
                // The same event twice in one chunk: the later one repeats
                // the earlier (neither is committed yet, so the committed
                // index cannot tell; see `dedup`). Judged on the public
                // event, as every node judges committed ones.
                let name = a.statement.as_ref().map(|s| s.duplicate_name());
                if let Some(&first) = name.and_then(|name| seen.get(name)) {
                    let rejection: Rejection = vec![AdmissionError::DuplicateEvent {
                        hash: a
                            .statement
                            .as_ref()
                            .map(|s| event_hash::event_hash(&s.event).uri())
                            .unwrap_or_default(),
                        first: admitted[first].id,
                        event_id: Some(captured[first].event_id.clone()),
                    }];
                    problems.rejected += 1;
                    problems.push(event_problems(path, &rejection));
                    problems.first_rejection.get_or_insert(rejection);
                    continue;
                }
                if let Some(name) = name {
                    seen.insert(name.to_owned(), admitted.len());
                }
                captured.push(CapturedEvent {
                    event_id,
                    attestation: a.id,
                    height: None,
                });
                admitted.push(a);
            }
            Err(rejection) => {
                problems.rejected += 1;
                problems.push(event_problems(path, &rejection));
                problems.first_rejection.get_or_insert(rejection);
            }
        }
    }
    parts.epcis.counters.hold(admitted.len());
    Prepared {
        admitted,
        captured,
        problems,
    }
}

/// The document's `@context` copied into an event that has none (see
/// [`capture`]'s module doc), before the schema sees it.
fn with_context(raw: Value, context: Option<&Value>) -> Value {
    match (raw, context) {
        (Value::Object(mut object), Some(context)) if !object.contains_key("@context") => {
            let mut with = Map::with_capacity(object.len() + 1);
            with.insert("@context".into(), context.clone());
            with.append(&mut object);
            Value::Object(with)
        }
        (raw, _) => raw,
    }
}

/// `epcisBody.eventList[3]` as a JSON pointer, `/epcisBody/eventList/3`.
fn pointer_of(path: &str) -> String {
    if path.is_empty() {
        return String::new();
    }
    let mut out = String::new();
    for part in path.split('.') {
        match part.split_once('[') {
            Some((name, index)) => {
                out.push('/');
                out.push_str(name);
                out.push('/');
                out.push_str(index.trim_end_matches(']'));
            }
            None => {
                out.push('/');
                out.push_str(part);
            }
        }
    }
    out
}

/// Admission problems of one event, named from the document root.
pub fn event_problems(path: &str, rejection: &[AdmissionError]) -> Vec<FieldProblem> {
    crate::api::ApiError::from_rejection(rejection)
        .problems
        .into_iter()
        .map(|p| FieldProblem {
            field: match p.field.strip_prefix("event.") {
                Some(rest) => capture::join(path, rest),
                None => capture::join(path, &p.field),
            },
            reason: p.reason,
        })
        .collect()
}

fn random_nonce() -> [u8; 16] {
    let mut bytes = [0u8; 16];
    rand_core::OsRng.fill_bytes(&mut bytes);
    bytes
}

// ------------------------------------------------------------------- spool

fn spool_chunk(
    parts: &Parts,
    spool: &mut Option<Spool>,
    admitted: &[Admitted],
    captured: &[CapturedEvent],
) -> io::Result<()> {
    if spool.is_none() {
        *spool = Some(Spool::create(&parts.epcis.spool_dir)?);
    }
    match spool {
        Some(spool) => spool.write(admitted, captured),
        None => Ok(()),
    }
}

/// The longest spool record: an envelope, a head whose event id is part of
/// the statement (so no longer than one), a repeated-capture name and the
/// framing. A longer length is damage, and is refused before anything is
/// allocated for it.
const SPOOL_RECORD_BYTES_MAX: usize =
    lotline_core::limits::ATTESTATION_BYTES_MAX + lotline_core::limits::STATEMENT_BYTES_MAX + 1024;

/// Admitted attestations of a `rollback` capture, on disk until the whole
/// document is known good. Record: u32 LE length of the rest, u32 LE
/// CRC-32 of the body, and the body: u32 LE length of the head, the head
/// (postcard of the size, the event id and the event's repeated-capture
/// name, which admission computed) and the envelope's postcard bytes. A
/// record whose CRC does not match ends the replay with an error. The file
/// is removed when the spool (or its replay) is dropped; a node start
/// removes any left by a crash ([`clear_spool_dir`]).
struct Spool {
    path: PathBuf,
    file: Option<BufWriter<File>>,
}

impl Spool {
    fn create(dir: &Path) -> io::Result<Spool> {
        std::fs::create_dir_all(dir)?;
        let mut name = [0u8; 12];
        rand_core::OsRng.fill_bytes(&mut name);
        let path = dir.join(format!("{}.spool", hex::encode(name)));
        let file = File::create_new(&path)?;
        Ok(Spool {
            path,
            file: Some(BufWriter::with_capacity(1 << 20, file)),
        })
    }

    fn write(&mut self, admitted: &[Admitted], captured: &[CapturedEvent]) -> io::Result<()> {
        let Some(file) = self.file.as_mut() else {
            return Err(io::Error::other("spool already replayed"));
        };
        let mut body = Vec::new();
        for (a, c) in admitted.iter().zip(captured) {
            let name = a.statement.as_ref().map_or("", |s| s.duplicate_name());
            let head = postcard::to_stdvec(&(a.size as u64, &c.event_id, name))
                .map_err(io::Error::other)?;
            body.clear();
            body.extend_from_slice(
                &u32::try_from(head.len())
                    .map_err(io::Error::other)?
                    .to_le_bytes(),
            );
            body.extend_from_slice(&head);
            body.extend_from_slice(&a.envelope.to_bytes());
            let len = u32::try_from(4 + body.len()).map_err(io::Error::other)?;
            file.write_all(&len.to_le_bytes())?;
            file.write_all(&crc32fast::hash(&body).to_le_bytes())?;
            file.write_all(&body)?;
        }
        Ok(())
    }

    fn replay(mut self) -> io::Result<Replay> {
        if let Some(mut file) = self.file.take() {
            file.flush()?;
        }
        let file = File::open(&self.path)?;
        Ok(Replay {
            reader: BufReader::with_capacity(1 << 20, file),
            _spool: self,
        })
    }
}

impl Drop for Spool {
    fn drop(&mut self) {
        drop(self.file.take());
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Reading a spool back, in the order it was written.
struct Replay {
    reader: BufReader<File>,
    _spool: Spool,
}

impl Replay {
    fn next_chunk(&mut self, max: usize) -> io::Result<Vec<(Admitted, CapturedEvent)>> {
        let mut out = Vec::with_capacity(max);
        while out.len() < max {
            let mut len = [0u8; 4];
            match self.reader.read_exact(&mut len) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => break,
                Err(e) => return Err(e),
            }
            let len = u32::from_le_bytes(len) as usize;
            if len > SPOOL_RECORD_BYTES_MAX {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("damaged record (length {len})"),
                ));
            }
            let mut record = vec![0u8; len];
            self.reader.read_exact(&mut record)?;
            out.push(decode_record(&record)?);
        }
        Ok(out)
    }
}

fn decode_record(record: &[u8]) -> io::Result<(Admitted, CapturedEvent)> {
    let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_owned());
    let (crc, body) = record
        .split_at_checked(4)
        .ok_or_else(|| bad("short record"))?;
    if crc32fast::hash(body).to_le_bytes() != crc {
        return Err(bad("damaged record (CRC mismatch)"));
    }
    let (head_len, rest) = body
        .split_at_checked(4)
        .ok_or_else(|| bad("short record"))?;
    let head_len = u32::from_le_bytes(head_len.try_into().map_err(|_| bad("short record"))?);
    let (head, envelope) = rest
        .split_at_checked(head_len as usize)
        .ok_or_else(|| bad("short record"))?;
    let (size, event_id, name): (u64, String, String) =
        postcard::from_bytes(head).map_err(|_| bad("bad record head"))?;
    let envelope = Envelope::from_bytes(envelope).map_err(|_| bad("bad envelope"))?;
    // The spool keeps envelopes only (a statement does not round-trip
    // through postcard): parsing again is what bounded memory costs a
    // spilled capture. The event hash admission computed comes with it
    // (the CRC above stands for it), for the commit's repeat check and the
    // indexer.
    let statement = lotline_core::statement::Statement::from_payload(&envelope.payload)
        .map_err(|_| bad("bad statement"))?;
    let statement = if name.is_empty() {
        ParsedStatement::new(statement)
    } else {
        ParsedStatement::with_duplicate_name(statement, name)
    };
    let id = envelope.id();
    Ok((
        Admitted {
            id,
            envelope,
            statement: Some(Arc::new(statement)),
            size: usize::try_from(size).map_err(|_| bad("bad size"))?,
        },
        CapturedEvent {
            event_id,
            attestation: id,
            height: None,
        },
    ))
}

/// Removes spools left by a node that stopped mid-capture (their captures
/// were never acknowledged).
pub fn clear_spool_dir(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.path().extension().is_some_and(|e| e == "spool") {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_become_pointers() {
        assert_eq!(
            pointer_of("epcisBody.eventList[3]"),
            "/epcisBody/eventList/3"
        );
        assert_eq!(pointer_of(""), "");
    }

    #[test]
    fn a_missing_context_is_copied_in_first() {
        let raw = serde_json::json!({"type": "ObjectEvent"});
        let ctx = serde_json::json!(["c"]);
        let with = with_context(raw, Some(&ctx));
        assert_eq!(with["@context"], ctx);
        assert_eq!(with.as_object().unwrap().keys().next().unwrap(), "@context");
    }

    fn admitted(n: u8) -> (Admitted, CapturedEvent) {
        let mut statement = crate::store::testing::Chain::statement();
        statement.nonce = format!("nonce-{n}");
        let envelope = Envelope::sign(
            statement.to_payload(),
            &lotline_core::SigningKey::from_seed(&[n; 32]),
        );
        let parsed = Arc::new(ParsedStatement::new(statement));
        let admitted = Admitted::new(envelope, Some(parsed));
        let captured = CapturedEvent {
            event_id: format!("urn:uuid:{n}"),
            attestation: admitted.id,
            height: None,
        };
        (admitted, captured)
    }

    /// Goal: a spool gives back what was spooled, in order, with the
    /// event hash admission computed; a damaged record ends the replay
    /// with an error instead of handing on a wrong attestation or name.
    #[test]
    fn a_spool_replays_its_records_and_refuses_a_damaged_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (admitted, captured): (Vec<_>, Vec<_>) = (1..=3).map(admitted).unzip();
        let mut spool = Spool::create(dir.path()).expect("create");
        spool.write(&admitted, &captured).expect("write");
        let path = spool.path.clone();
        let mut replay = spool.replay().expect("replay");
        let back = replay.next_chunk(10).expect("read");
        assert_eq!(back.len(), 3);
        for ((a, c), (b, d)) in admitted.iter().zip(&captured).zip(&back) {
            assert_eq!(a.id, b.id);
            assert_eq!(a.size, b.size);
            assert_eq!(c.event_id, d.event_id);
            let (a, b) = (a.statement.as_ref().unwrap(), b.statement.as_ref().unwrap());
            assert_eq!(a.statement(), b.statement());
            assert_eq!(a.duplicate_name(), b.duplicate_name());
        }
        assert!(replay.next_chunk(10).expect("end").is_empty());
        drop(replay);
        assert!(!path.exists(), "a replayed spool is removed");

        let mut spool = Spool::create(dir.path()).expect("create");
        spool.write(&admitted, &captured).expect("write");
        let path = spool.path.clone();
        let mut replay = spool.replay().expect("replay");
        // One bit of the last record's envelope flipped on disk.
        let mut bytes = std::fs::read(&path).expect("read");
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(&path, bytes).expect("write");
        let error = replay.next_chunk(10).expect_err("damaged");
        assert!(error.to_string().contains("CRC"), "{error}");
    }
}
