//! The capture flow of `POST /epcis/capture` and `POST /epcis/events`,
//! without HTTP: a job registered before the first byte is read, the body
//! handed to the streaming parser thread frame by frame, the pipeline
//! ([`super::bulk`]: checks, custodial signing, admission, all-or-nothing
//! enqueue), and the job's life until its events commit. The handlers in
//! `api::epcis` only translate the request into these calls and the
//! outcome into a response.
//!
//! ```text
//! body frames --forward_body (idle cut)--> parser thread (bulk::parse)
//!     --chunks--> bulk::run --> mempool; job task --> commits --> job
//! ```

use std::fmt::Display;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use rand_core::RngCore;
use tokio::sync::{Notify, mpsc};

use super::bulk::{self, Finish, Parts, Refusal};
use super::capture::ReadError;
use super::jobs::{Behaviour, CapturedEvent, Job};
use super::query::{self, Found};
use super::stream::ChannelReader;
use crate::store::StoreError;

/// How long `POST /epcis/events` waits for the commit before it answers
/// with the job instead of the event.
pub const SINGLE_WAIT: Duration = Duration::from_secs(10);
/// Body frames queued between the HTTP side and the parser thread.
const BODY_FRAMES_QUEUED: usize = 4;
/// A capture upload that sends nothing for this long is cut.
pub const BODY_IDLE_MAX: Duration = Duration::from_secs(30);

/// Captures one document streamed from `body` (at most `max` bytes) and
/// returns its job (as it stands when every event is in the mempool) and
/// how it ended. A document of which nothing was captured leaves no job.
pub async fn capture_document<S, E>(
    parts: Arc<Parts>,
    behaviour: Behaviour,
    max: u64,
    body: S,
) -> (Job, Finish)
where
    S: Stream<Item = Result<Bytes, E>> + Send + Unpin,
    E: Display,
{
    let (frames_tx, frames_rx) = mpsc::channel(BODY_FRAMES_QUEUED);
    let (chunks_tx, chunks_rx) = mpsc::channel(1);
    let parser = tokio::task::spawn_blocking(move || {
        bulk::parse(ChannelReader::new(frames_rx), max, &chunks_tx);
    });
    let (job, finished) = register(&parts.epcis, behaviour);
    let drive = bulk::run(
        parts.clone(),
        job.capture_id.clone(),
        behaviour,
        chunks_rx,
        finished,
    );
    let (_, finish) = tokio::join!(forward_body(body, frames_tx), drive);
    let _ = parser.await;
    (settle(&parts, job, &finish), finish)
}

/// How a one-event capture ended.
#[derive(Debug)]
pub enum Single {
    /// Committed within [`SINGLE_WAIT`]: the event as a query returns it.
    Committed(Box<Found>),
    /// Captured, not yet committed (or its commit failed): the job.
    Pending(Job),
    /// Nothing was captured.
    Refused(Refusal),
}

/// Captures one event (`POST /epcis/events`) and waits up to
/// [`SINGLE_WAIT`] for its commit.
pub async fn capture_event(parts: Arc<Parts>, body: &[u8]) -> Result<Single, CaptureError> {
    let chunk = bulk::single(body).map_err(CaptureError::Read)?;
    let (tx, rx) = mpsc::channel(2);
    let _ = tx.send(chunk).await;
    let _ = tx.send(bulk::Input::End(Ok(1))).await;
    drop(tx);
    let (job, finished) = register(&parts.epcis, Behaviour::Rollback);
    let finish = bulk::run(
        parts.clone(),
        job.capture_id.clone(),
        Behaviour::Rollback,
        rx,
        finished.clone(),
    )
    .await;
    if let Finish::Refused(refusal) = finish {
        parts.epcis.jobs.remove(&job.capture_id);
        return Ok(Single::Refused(refusal));
    }
    // The job's own task waits for the commit and records the outcome in
    // the registry, the one source of truth; this waits for that task.
    let _ = tokio::time::timeout(SINGLE_WAIT, finished.notified()).await;
    let current = parts.epcis.jobs.get(&job.capture_id).unwrap_or(job);
    if !current.running
        && current.success
        && let Some(captured) = current.events.first()
    {
        return committed(&parts, captured).await.map(Single::Committed);
    }
    Ok(Single::Pending(current))
}

/// Why a one-event capture could not run at all.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("{0}")]
    Read(ReadError),
    #[error("the store could not be read: {0}")]
    Store(String),
    #[error("a committed capture is missing from the store")]
    Missing,
}

/// The committed event of a finished one-event job.
async fn committed(parts: &Parts, captured: &CapturedEvent) -> Result<Box<Found>, CaptureError> {
    let reader = parts.reader.clone();
    let id = captured.attestation;
    let found = tokio::task::spawn_blocking(move || query::by_attestation(&reader, &id, &|_| true))
        .await
        .map_err(|e| CaptureError::Store(e.to_string()))?
        .map_err(|e: StoreError| CaptureError::Store(e.to_string()))?;
    found.map(Box::new).ok_or(CaptureError::Missing)
}

/// The job as it stands after `finish`: removed when nothing was captured.
fn settle(parts: &Parts, job: Job, finish: &Finish) -> Job {
    match finish {
        Finish::Refused(_) => {
            parts.epcis.jobs.remove(&job.capture_id);
            job
        }
        Finish::Captured { .. } => parts.epcis.jobs.get(&job.capture_id).unwrap_or(job),
    }
}

/// Passes the request body to the parser thread frame by frame; a stall
/// longer than [`BODY_IDLE_MAX`] or a failed read ends it with an error.
async fn forward_body<S, E>(mut frames: S, tx: mpsc::Sender<Result<Bytes, String>>)
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: Display,
{
    loop {
        let item = match tokio::time::timeout(BODY_IDLE_MAX, frames.next()).await {
            Err(_) => Err(format!("no body bytes for {} s", BODY_IDLE_MAX.as_secs())),
            Ok(None) => return,
            Ok(Some(Ok(bytes))) => Ok(bytes),
            Ok(Some(Err(error))) => Err(error.to_string()),
        };
        let failed = item.is_err();
        if tx.send(item).await.is_err() || failed {
            return;
        }
    }
}

/// Registers a running job before anything is read, so its progress can be
/// followed (`GET /epcis/capture`) while the document streams in.
fn register(epcis: &super::Epcis, behaviour: Behaviour) -> (Job, Arc<Notify>) {
    let job = Job {
        capture_id: capture_id(),
        created_at: crate::clock::now_rfc3339(),
        finished_at: None,
        running: true,
        success: true,
        capture_error_behaviour: behaviour,
        errors: Vec::new(),
        events: Vec::new(),
        events_captured: 0,
        events_committed: 0,
        events_rejected: 0,
    };
    epcis.jobs.insert(job.clone());
    (job, Arc::new(Notify::new()))
}

/// An unguessable capture id (so one client cannot walk another's jobs).
fn capture_id() -> String {
    let mut bytes = [0u8; 12];
    rand_core::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}
