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
use tokio::time::Instant;

use super::{ApiContext, ApiError};
use crate::admission::AdmissionError;
use crate::ingest::Outcome;
use crate::state::CommitNotice;

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
    let wait = params.wait == Wait::Committed;
    let tickets = ctx
        .ingest
        .submit(vec![admitted], wait)
        .map_err(|r| reject(&ctx, &r))?;
    let deadline = Instant::now() + timeout;
    match tickets.wait(deadline).await.pop() {
        Some((id, Outcome::Committed(notice))) => {
            Ok((StatusCode::OK, Json(committed(id, *notice))).into_response())
        }
        Some((id, Outcome::Pending)) => {
            Ok((StatusCode::ACCEPTED, Json(pending(id))).into_response())
        }
        Some((_, Outcome::Stopped)) => Err(stopped(&ctx)),
        None => Err(ApiError::internal(
            "a submission of one attestation has no ticket",
        )),
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
    // Each item enters the pool on its own: a duplicate rejects only itself.
    let wait = params.wait == Wait::Committed;
    let mut accepted = Vec::new();
    for (i, verdict) in positions.into_iter().zip(verdicts) {
        match verdict.and_then(|admitted| ctx.ingest.submit(vec![admitted], wait)) {
            Ok(tickets) => accepted.push((i, tickets)),
            Err(rejection) => results[i] = Some(rejected(&ctx, &rejection)),
        }
    }
    let deadline = Instant::now() + timeout;
    for (i, tickets) in accepted {
        for (id, outcome) in tickets.wait(deadline).await {
            results[i] = Some(match outcome {
                Outcome::Committed(notice) => committed(id, *notice),
                Outcome::Pending => pending(id),
                Outcome::Stopped => return Err(stopped(&ctx)),
            });
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

pub(super) fn reject(ctx: &ApiContext, rejection: &[AdmissionError]) -> ApiError {
    ctx.shared.metrics.rejected.inc();
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
