//! `POST /v1/attestations` and `POST /v1/attestations/batch`.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use lotline_core::api::{BatchResult, Status, SubmitResult, WAIT_MAX_MS, Wait};
use lotline_core::attestation::{AttestationId, Envelope};
use lotline_core::limits;
use serde::Deserialize;
use tokio::sync::oneshot;

use super::{ApiContext, ApiError};
use crate::admission::{AdmissionError, Rejection};
use crate::mempool::{Admitted, Mempool, MempoolError};
use crate::state::CommitNotice;
use crate::store::{NotFresh, StoreReader};

/// Default wait for `wait=committed` (the largest is [`WAIT_MAX_MS`]).
const WAIT_DEFAULT_MS: u64 = 10_000;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SubmitParams {
    #[serde(default)]
    wait: Wait,
    timeout_ms: Option<u64>,
}

impl SubmitParams {
    /// The wait; a `timeoutMs` above the documented maximum is refused
    /// rather than silently shortened (the document and the server agree).
    fn timeout(&self) -> Result<Duration, ApiError> {
        let ms = self.timeout_ms.unwrap_or(WAIT_DEFAULT_MS);
        if ms > WAIT_MAX_MS {
            return Err(ApiError::bad_request(
                "bad-query",
                format!("timeoutMs is at most {WAIT_MAX_MS}, got {ms}"),
            ));
        }
        Ok(Duration::from_millis(ms))
    }
}

pub async fn submit(
    State(ctx): State<Arc<ApiContext>>,
    query: Result<Query<SubmitParams>, QueryRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let Query(params) = query?;
    let timeout = params.timeout()?;
    let body = body?;
    let admitted = ctx
        .admission
        .admit_json(&body, &ctx.guard())
        .map_err(|r| reject(&ctx, &r))?;
    let id = admitted.id;
    let waiter = (params.wait == Wait::Committed).then(|| ctx.shared.wait_for(id));
    if let Err(rejection) = enqueue(&ctx, admitted) {
        ctx.shared.forget(&id);
        return Err(reject(&ctx, &rejection));
    }
    let Some(waiter) = waiter else {
        return Ok((StatusCode::ACCEPTED, Json(pending(id))).into_response());
    };
    match tokio::time::timeout(timeout, waiter).await {
        Ok(Ok(notice)) => Ok((StatusCode::OK, Json(committed(id, notice))).into_response()),
        Ok(Err(_)) => Err(stopped(&ctx)),
        Err(_) => {
            ctx.shared.forget(&id);
            Ok((StatusCode::ACCEPTED, Json(pending(id))).into_response())
        }
    }
}

pub async fn submit_batch(
    State(ctx): State<Arc<ApiContext>>,
    query: Result<Query<SubmitParams>, QueryRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<BatchResult>, ApiError> {
    let Query(params) = query?;
    let timeout = params.timeout()?;
    let body = body?;
    let items: Vec<serde_json::Value> = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request(
            "malformed",
            format!("a batch is a JSON array of DSSE envelopes: {e}"),
        )
    })?;
    if items.len() > limits::BATCH_ITEMS_MAX {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too-many-items",
            "Batch too large",
            format!(
                "a batch holds at most {} attestations, got {}",
                limits::BATCH_ITEMS_MAX,
                items.len()
            ),
        ));
    }
    // Decode each item on its own so one bad item rejects only itself.
    let mut results: Vec<Option<SubmitResult>> = vec![None; items.len()];
    let mut decoded = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        match serde_json::from_value::<Envelope>(item) {
            Ok(envelope) => decoded.push((i, envelope)),
            Err(e) => {
                let error = AdmissionError::Decode(lotline_core::codec::DecodeError::Malformed {
                    what: "attestation",
                    reason: e.to_string(),
                });
                results[i] = Some(rejected(&ctx, &[error]));
            }
        }
    }
    let (positions, envelopes): (Vec<usize>, Vec<Envelope>) = decoded.into_iter().unzip();
    let verdicts = ctx.admission.admit_batch_guarded(envelopes, &ctx.guard());
    let mut waiting: Vec<(usize, AttestationId, oneshot::Receiver<CommitNotice>)> = Vec::new();
    for (i, verdict) in positions.into_iter().zip(verdicts) {
        let admitted = match verdict {
            Ok(admitted) => admitted,
            Err(rejection) => {
                results[i] = Some(rejected(&ctx, &rejection));
                continue;
            }
        };
        let id = admitted.id;
        let waiter = (params.wait == Wait::Committed).then(|| ctx.shared.wait_for(id));
        match enqueue(&ctx, admitted) {
            Ok(()) => {
                results[i] = Some(pending(id));
                if let Some(rx) = waiter {
                    waiting.push((i, id, rx));
                }
            }
            Err(rejection) => {
                ctx.shared.forget(&id);
                results[i] = Some(rejected(&ctx, &rejection));
            }
        }
    }
    let deadline = tokio::time::Instant::now() + timeout;
    for (i, id, rx) in waiting {
        match tokio::time::timeout_at(deadline, rx).await {
            Ok(Ok(notice)) => results[i] = Some(committed(id, notice)),
            Ok(Err(_)) => return Err(stopped(&ctx)),
            Err(_) => ctx.shared.forget(&id),
        }
    }
    let results: Vec<SubmitResult> = results.into_iter().flatten().collect();
    let rejected_count = results
        .iter()
        .filter(|r| r.status == Status::Rejected)
        .count();
    Ok(Json(BatchResult {
        accepted: results.len() - rejected_count,
        rejected: rejected_count,
        results,
    }))
}

/// Puts an admitted attestation in the mempool unless it is already known
/// (pending, in flight, or committed).
fn enqueue(ctx: &ApiContext, admitted: Admitted) -> Result<(), Rejection> {
    enqueue_all(ctx, vec![admitted])
}

/// Puts admitted attestations in the mempool all together or not at all:
/// every id must be unknown and the pool must have room for all of them
/// (EPCIS capture's `rollback`). Then notifies the producer and gossips.
pub(super) fn enqueue_all(ctx: &ApiContext, admitted: Vec<Admitted>) -> Result<(), Rejection> {
    let envelopes: Vec<Vec<u8>> = match ctx.net {
        Some(_) => admitted.iter().map(|a| a.envelope.to_bytes()).collect(),
        None => Vec::new(),
    };
    let count = admitted.len();
    {
        // Holding the pool lock while asking the store closes the window in
        // which an id leaves the pool: the actor applies to the store first.
        let mut pool = ctx.shared.pool();
        check_unknown(&pool, &ctx.reader, &admitted)?;
        if ctx.shared.shutting_down() {
            return Err(vec![AdmissionError::Overloaded(
                "the node is shutting down".into(),
            )]);
        }
        let bytes = admitted.iter().map(|a| a.size).sum();
        if !pool.fits(count, bytes) {
            return Err(vec![AdmissionError::Overloaded(format!(
                "the mempool ({} pending) has no room for {count} more attestations \
                 of {bytes} bytes; retry later",
                pool.len()
            ))]);
        }
        for a in admitted {
            // Cannot fail: every id was checked unknown and the room reserved
            // under this same lock.
            pool.insert(a).map_err(|e| match e {
                MempoolError::Duplicate(id) => vec![AdmissionError::Duplicate(id)],
                full @ MempoolError::Full { .. } => {
                    vec![AdmissionError::Overloaded(full.to_string())]
                }
            })?;
        }
    }
    ctx.shared.notify_pool();
    ctx.shared
        .metrics
        .admitted
        .fetch_add(count as u64, std::sync::atomic::Ordering::Relaxed);
    if let Some(net) = &ctx.net {
        for bytes in envelopes {
            if net.gossip(bytes).is_err() {
                // Peers still get it inside the block that carries it; gossip
                // only lets any leader propose it sooner.
                ctx.shared
                    .metrics
                    .gossip_dropped
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
    }
    Ok(())
}

/// Refuses a batch in which any id is repeated, pending, in flight or
/// committed, or whose store lookup fails (the rule for that is
/// [`StoreReader::check_uncommitted`]'s: retry later).
fn check_unknown(
    pool: &Mempool,
    reader: &StoreReader,
    admitted: &[Admitted],
) -> Result<(), Rejection> {
    for (i, a) in admitted.iter().enumerate() {
        let repeated = admitted[..i].iter().any(|b| b.id == a.id);
        if repeated || pool.knows(&a.id) {
            return Err(vec![AdmissionError::Duplicate(a.id)]);
        }
        match reader.check_uncommitted(&a.id) {
            Ok(()) => {}
            Err(NotFresh::Committed(id)) => return Err(vec![AdmissionError::Duplicate(id)]),
            Err(NotFresh::Unknown { id, source }) => {
                tracing::warn!(%id, error = %source, "duplicate check could not read the store; submission refused");
                return Err(vec![AdmissionError::StoreUnavailable(format!(
                    "cannot tell whether attestation {id} is already committed: \
                     the store could not be read; retry"
                ))]);
            }
        }
    }
    Ok(())
}

pub(super) fn reject(ctx: &ApiContext, rejection: &[AdmissionError]) -> ApiError {
    ctx.shared
        .metrics
        .rejected
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    ApiError::from_rejection(rejection)
}

fn rejected(ctx: &ApiContext, rejection: &[AdmissionError]) -> SubmitResult {
    let problem = reject(ctx, rejection).to_problem();
    let id = match rejection.first() {
        Some(AdmissionError::Duplicate(id)) => Some(*id),
        _ => None,
    };
    SubmitResult {
        id,
        status: Status::Rejected,
        height: None,
        receipt: None,
        problem: Some(problem),
    }
}

fn pending(id: AttestationId) -> SubmitResult {
    SubmitResult {
        id: Some(id),
        status: Status::Pending,
        height: None,
        receipt: None,
        problem: None,
    }
}

fn committed(id: AttestationId, notice: CommitNotice) -> SubmitResult {
    SubmitResult {
        id: Some(id),
        status: Status::Committed,
        height: Some(notice.height),
        receipt: Some(notice.receipt),
        problem: None,
    }
}

pub(super) fn stopped(ctx: &ApiContext) -> ApiError {
    let reason = ctx
        .shared
        .failure()
        .unwrap_or_else(|| "the node is shutting down".into());
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "stopped",
        "Node stopped",
        reason,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::index::AttestationMeta;
    use crate::store::testing::Chain;
    use crate::store::{BlockLogError, Store, StoreError};

    fn admitted(n: u32) -> Admitted {
        let envelope = Chain::envelope(n);
        Admitted {
            id: envelope.id(),
            meta: AttestationMeta::of_committed(&envelope),
            envelope,
            size: 100,
        }
    }

    /// Defect: a failed store read in the duplicate check counted as "not
    /// committed" (`unwrap_or(false)`), so a committed attestation could be
    /// admitted again. The read error is made real by removing sled's tree.
    /// Goal: the submission is refused as retryable (503), and even a block
    /// that repeats the attestation is refused by the block log.
    #[test]
    fn a_store_read_error_refuses_as_retryable_and_nothing_commits_twice() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut chain = Chain::new();
        let (mut store, _) = Store::open(dir.path(), chain.set.clone()).expect("open");
        let first = chain.block(vec![Chain::envelope(1)]);
        store
            .commit(&first, &[admitted(1).meta])
            .expect("first commit");
        let pool = Mempool::new(10, 1 << 20);
        let reader = store.reader();
        assert!(matches!(
            check_unknown(&pool, &reader, &[admitted(1)])
                .as_ref()
                .map_err(Vec::as_slice),
            Err([AdmissionError::Duplicate(_)])
        ));
        assert!(check_unknown(&pool, &reader, &[admitted(2)]).is_ok());

        reader.drop_index_for_test();
        for n in [1, 2] {
            let rejection = check_unknown(&pool, &reader, &[admitted(n)]).expect_err("refused");
            assert!(
                matches!(rejection.as_slice(), [AdmissionError::StoreUnavailable(_)]),
                "{rejection:?}"
            );
            let (status, slug, _) = crate::api::classify(&rejection[0]);
            assert_eq!(
                (status, slug),
                (StatusCode::SERVICE_UNAVAILABLE, "store-unavailable")
            );
        }
        let repeat = chain.block(vec![Chain::envelope(1)]);
        assert!(matches!(
            store.commit(&repeat, &[admitted(1).meta]),
            Err(StoreError::Log(BlockLogError::Repeated {
                height: 2,
                committed_at: 1,
                ..
            }))
        ));
        assert_eq!((store.height(), store.attestations()), (1, 1));
    }
}
