//! EPCIS 2.0 REST routes under `/epcis`: capture (`POST /epcis/capture`,
//! `POST /epcis/events`, capture jobs) and query (`GET /epcis/events` and
//! the browse paths). Translation only: reading, signing, the job registry
//! and the query engine are in `crate::epcis`; admission, mempool and gossip
//! are the ones `POST /v1/attestations` uses ([`crate::ingest`]).

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use lotline_core::api::FieldProblem;
use lotline_core::epcis::Event;
use rand_core::RngCore;
use serde_json::Value;
use tokio::sync::oneshot;

use super::submit::{reject, stopped};
use super::{ApiContext, ApiError};
use crate::access::{self, Identity};
use crate::admission::Rejection;
use crate::epcis::capture::{self, ReadError};
use crate::epcis::jobs::{Behaviour, CapturedEvent, Job};
use crate::epcis::{document, query};
use crate::ingest::{Outcome, Tickets};
use crate::mempool::Admitted;

/// How long a capture job waits for its events to commit.
const COMMIT_WAIT: Duration = Duration::from_secs(60);
/// How long `POST /epcis/events` waits before answering 202 instead of 201.
const SINGLE_WAIT: Duration = Duration::from_secs(10);
/// Jobs listed by `GET /epcis/capture`.
const JOBS_LISTED_MAX: usize = 100;
/// The header that selects all-or-nothing or best-effort capture.
const BEHAVIOUR_HEADER: &str = "GS1-Capture-Error-Behaviour";

pub fn routes() -> Router<Arc<ApiContext>> {
    Router::new()
        .route("/epcis/capture", get(list_jobs).post(capture_document))
        .route("/epcis/capture/{captureID}", get(job))
        .route("/epcis/events", get(events).post(capture_event))
        .route("/epcis/events/{eventID}", get(event_by_id))
        .route("/epcis/epcs/{epc}/events", get(events_by_epc))
        .route("/epcis/bizSteps/{bizStep}/events", get(events_by_biz_step))
        .route(
            "/epcis/eventTypes/{eventType}/events",
            get(events_by_event_type),
        )
}

// ------------------------------------------------------------------ capture

/// `POST /epcis/capture`: an EPCISDocument (or EPCISQueryDocument).
async fn capture_document(
    State(ctx): State<Arc<ApiContext>>,
    identity: Identity,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let behaviour = behaviour(&headers)?;
    let body = body?;
    authorize_capture(&ctx, &identity)?;
    let read = capture::read_document(&body).map_err(read_error)?;
    let (job, _finished) = start(&ctx, read.events, behaviour)?;
    let location = format!("/epcis/capture/{}", job.capture_id);
    let mut response = (StatusCode::ACCEPTED, Json(job)).into_response();
    insert_location(&mut response, &location);
    Ok(response)
}

/// `POST /epcis/events`: one event, answered once it is committed (201) or
/// after [`SINGLE_WAIT`] with its capture job (202).
async fn capture_event(
    State(ctx): State<Arc<ApiContext>>,
    identity: Identity,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body?;
    authorize_capture(&ctx, &identity)?;
    let read = capture::read_single(&body).map_err(read_error)?;
    let (job, finished) = start(&ctx, read.events, Behaviour::Rollback)?;
    // The job's own task waits for the commit and records the outcome in
    // the registry, the one source of truth; this waits for that task.
    let deadline = tokio::time::Instant::now() + SINGLE_WAIT;
    let _ = tokio::time::timeout_at(deadline, finished).await;
    let current = ctx.epcis.jobs.get(&job.capture_id).unwrap_or(job.clone());
    if !current.running
        && current.success
        && let Some(captured) = current.events.first()
    {
        return committed_event(&ctx, captured).await;
    }
    let mut response = (StatusCode::ACCEPTED, Json(current)).into_response();
    insert_location(&mut response, &format!("/epcis/capture/{}", job.capture_id));
    Ok(response)
}

/// 201 with the event as a query returns it and its Location.
async fn committed_event(
    ctx: &Arc<ApiContext>,
    captured: &CapturedEvent,
) -> Result<Response, ApiError> {
    let reader = ctx.reader.clone();
    let id = captured.attestation;
    let found = tokio::task::spawn_blocking(move || query::by_attestation(&reader, &id, &|_| true))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::internal("a committed capture is missing from the store"))?;
    let location = format!(
        "/epcis/events/{}",
        lotline_sdk::encode_segment(&captured.event_id)
    );
    let mut response = (
        StatusCode::CREATED,
        Json(document::single_event_json(&found)),
    )
        .into_response();
    insert_location(&mut response, &location);
    Ok(response)
}

/// Signs, admits and enqueues the events of one capture; registers the job
/// and a task that marks it finished when the events commit (the receiver
/// resolves then).
///
/// Under `rollback` any rejected event rejects the request with every
/// problem named (nothing enters the mempool); under `proceed` the rejected
/// events are reported in the job and the others captured.
fn start(
    ctx: &Arc<ApiContext>,
    events: Vec<(String, Event)>,
    behaviour: Behaviour,
) -> Result<(Job, oneshot::Receiver<()>), ApiError> {
    let custodian = custodian(ctx)?;
    let now = now_ms();
    let issued_at_ms = u64::try_from(now).unwrap_or_default();
    let chain_id = ctx.genesis.chain_id();
    let (paths, envelopes): (Vec<String>, Vec<_>) = events
        .into_iter()
        .map(|(path, event)| {
            let envelope = custodian.sign(chain_id, issued_at_ms, random_nonce(), event);
            (path, envelope)
        })
        .unzip();
    let verdicts = ctx.admission.admit_batch_guarded(envelopes, &ctx.guard());
    let mut admitted: Vec<Admitted> = Vec::new();
    let mut errors: Vec<FieldProblem> = Vec::new();
    let mut first_rejection: Option<Rejection> = None;
    for (path, verdict) in paths.iter().zip(verdicts) {
        match verdict {
            Ok(a) => admitted.push(a),
            Err(rejection) => {
                errors.extend(event_problems(path, &rejection));
                first_rejection.get_or_insert(rejection);
            }
        }
    }
    if let Some(rejection) = first_rejection
        && (behaviour == Behaviour::Rollback || admitted.is_empty())
    {
        let mut error = reject(ctx, &rejection);
        error.detail = format!(
            "{} of {} event(s) rejected; nothing was captured. First: {}",
            paths.len() - admitted.len(),
            paths.len(),
            error.detail
        );
        error.problems = errors;
        return Err(error);
    }
    let captured: Vec<CapturedEvent> = admitted
        .iter()
        .map(|a| CapturedEvent {
            event_id: event_id_of(a),
            attestation: a.id,
            height: None,
        })
        .collect();
    let tickets = ctx
        .ingest
        .submit(admitted, true)
        .map_err(|rejection| reject(ctx, &rejection))?;
    let job = Job {
        capture_id: capture_id(),
        created_at: lotline_core::time::format_rfc3339_ms(now),
        finished_at: None,
        running: true,
        success: errors.is_empty(),
        capture_error_behaviour: behaviour,
        errors,
        events: captured,
    };
    ctx.epcis.jobs.insert(job.clone());
    let (finished_tx, finished) = oneshot::channel();
    let task = finish(ctx.clone(), job.capture_id.clone(), tickets);
    tokio::spawn(async move {
        task.await;
        let _ = finished_tx.send(());
    });
    Ok((job, finished))
}

/// Waits for every event of a job to commit, then marks it finished.
async fn finish(ctx: Arc<ApiContext>, capture_id: String, tickets: Tickets) {
    let deadline = tokio::time::Instant::now() + COMMIT_WAIT;
    let mut heights = Vec::new();
    let mut failure: Option<String> = None;
    for (id, outcome) in tickets.wait(deadline).await {
        match outcome {
            Outcome::Committed(notice) => heights.push((id, notice.height)),
            Outcome::Stopped => {
                failure.get_or_insert_with(|| stopped(&ctx).detail);
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
    let finished_at = lotline_core::time::format_rfc3339_ms(now_ms());
    ctx.epcis.jobs.update(&capture_id, |job| {
        for event in &mut job.events {
            event.height = heights
                .iter()
                .find(|(id, _)| *id == event.attestation)
                .map(|(_, h)| *h);
        }
        if let Some(reason) = failure {
            job.success = false;
            job.errors.push(FieldProblem {
                field: "commit".into(),
                reason,
            });
        }
        job.running = false;
        job.finished_at = Some(finished_at);
    });
}

/// Admission problems of one event, named from the document root.
fn event_problems(path: &str, rejection: &[crate::admission::AdmissionError]) -> Vec<FieldProblem> {
    ApiError::from_rejection(rejection)
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

fn event_id_of(admitted: &Admitted) -> String {
    lotline_core::statement::Statement::from_payload(&admitted.envelope.payload)
        .ok()
        .and_then(|s| s.event.event_id)
        .unwrap_or_default()
}

fn custodian(ctx: &ApiContext) -> Result<&capture::Custodian, ApiError> {
    ctx.epcis.custodian.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_IMPLEMENTED,
            "capture-not-configured",
            "EPCIS capture is not configured",
            "this node holds no capture key: add a [capture] section (org, key) to its config, \
             or sign attestations client-side and POST them to /v1/attestations",
        )
    })
}

/// Custodial signing writes as the node's capture org, so only that org's
/// credentials (or this node's operator) may capture or see capture jobs:
/// anonymous 401, anyone else 403.
fn authorize_capture(ctx: &ApiContext, identity: &Identity) -> Result<(), ApiError> {
    let custodian = custodian(ctx)?;
    match identity {
        Identity::Anonymous => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Credential required",
            "EPCIS capture signs with this node's org key: send a bearer token of that org",
        )),
        Identity::Caller(c) if c.operator || c.org == custodian.org => Ok(()),
        Identity::Caller(c) => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "Forbidden",
            format!(
                "this node captures as {:?}; a credential of {:?} may not",
                custodian.org, c.org
            ),
        )),
    }
}

fn behaviour(headers: &HeaderMap) -> Result<Behaviour, ApiError> {
    let Some(value) = headers.get(BEHAVIOUR_HEADER) else {
        return Ok(Behaviour::Rollback);
    };
    value
        .to_str()
        .ok()
        .and_then(Behaviour::parse)
        .ok_or_else(|| {
            let mut error = ApiError::bad_request(
                "bad-header",
                format!("{BEHAVIOUR_HEADER} is rollback or proceed"),
            );
            error.problems.push(FieldProblem {
                field: BEHAVIOUR_HEADER.into(),
                reason: "expected rollback or proceed".into(),
            });
            error
        })
}

/// Maps a body that cannot be captured to its problem.
fn read_error(error: ReadError) -> ApiError {
    let detail = error.to_string();
    match error {
        ReadError::Json(_) => ApiError::bad_request("malformed", detail),
        ReadError::WrongKind { .. } => ApiError::bad_request("not-an-epcis-document", detail),
        ReadError::NoEvents => ApiError::bad_request("no-events", detail),
        ReadError::TooManyEvents { .. } => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too-many-items",
            "Too many events",
            detail,
        ),
        ReadError::Schema(violations) => {
            let mut e = ApiError::new(
                StatusCode::BAD_REQUEST,
                "schema-violation",
                "EPCIS JSON Schema violation",
                detail,
            );
            e.problems = violations
                .into_iter()
                .map(|v| FieldProblem {
                    field: v.pointer,
                    reason: v.reason,
                })
                .collect();
            e
        }
        ReadError::Events {
            problems,
            unknown_type,
        } => {
            let (slug, title) = if unknown_type {
                ("unknown-event-type", "Unknown EPCIS event type")
            } else {
                ("malformed-event", "Malformed EPCIS event")
            };
            let mut e = ApiError::new(StatusCode::BAD_REQUEST, slug, title, detail);
            e.problems = problems;
            e
        }
    }
}

// -------------------------------------------------------------------- jobs

async fn list_jobs(
    State(ctx): State<Arc<ApiContext>>,
    identity: Identity,
) -> Result<Json<Vec<Job>>, ApiError> {
    authorize_capture(&ctx, &identity)?;
    Ok(Json(ctx.epcis.jobs.list(JOBS_LISTED_MAX)))
}

async fn job(
    State(ctx): State<Arc<ApiContext>>,
    identity: Identity,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Job>, ApiError> {
    authorize_capture(&ctx, &identity)?;
    let Path(capture_id) = path?;
    ctx.epcis.jobs.get(&capture_id).map(Json).ok_or_else(|| {
        ApiError::not_found(format!(
            "no capture job {capture_id:?} (jobs are kept in memory, newest {} only)",
            crate::epcis::jobs::JOBS_MAX
        ))
    })
}

// ------------------------------------------------------------------- query

type Pairs = Result<Query<Vec<(String, String)>>, QueryRejection>;

/// `GET /epcis/events`.
async fn events(
    State(ctx): State<Arc<ApiContext>>,
    identity: Identity,
    pairs: Pairs,
) -> Result<Response, ApiError> {
    let Query(pairs) = pairs?;
    run_query(ctx, identity, "/epcis/events".into(), None, pairs).await
}

/// `GET /epcis/epcs/{epc}/events`: `MATCH_anyEPC` with the path's EPC.
async fn events_by_epc(
    State(ctx): State<Arc<ApiContext>>,
    identity: Identity,
    path: Result<Path<String>, PathRejection>,
    pairs: Pairs,
) -> Result<Response, ApiError> {
    let Path(epc) = path?;
    let Query(pairs) = pairs?;
    let base = format!("/epcis/epcs/{}/events", lotline_sdk::encode_segment(&epc));
    run_query(ctx, identity, base, Some(("MATCH_anyEPC", epc)), pairs).await
}

/// `GET /epcis/bizSteps/{bizStep}/events`: `EQ_bizStep`.
async fn events_by_biz_step(
    State(ctx): State<Arc<ApiContext>>,
    identity: Identity,
    path: Result<Path<String>, PathRejection>,
    pairs: Pairs,
) -> Result<Response, ApiError> {
    let Path(step) = path?;
    let Query(pairs) = pairs?;
    let base = format!(
        "/epcis/bizSteps/{}/events",
        lotline_sdk::encode_segment(&step)
    );
    run_query(ctx, identity, base, Some(("EQ_bizStep", step)), pairs).await
}

/// `GET /epcis/eventTypes/{eventType}/events`: `eventType`.
async fn events_by_event_type(
    State(ctx): State<Arc<ApiContext>>,
    identity: Identity,
    path: Result<Path<String>, PathRejection>,
    pairs: Pairs,
) -> Result<Response, ApiError> {
    let Path(kind) = path?;
    let Query(pairs) = pairs?;
    let base = format!(
        "/epcis/eventTypes/{}/events",
        lotline_sdk::encode_segment(&kind)
    );
    run_query(ctx, identity, base, Some(("eventType", kind)), pairs).await
}

/// Parses, runs on a blocking thread, and answers an EPCISQueryDocument
/// with a `Link: <...>; rel="next"` header when there is more.
async fn run_query(
    ctx: Arc<ApiContext>,
    identity: Identity,
    base: String,
    from_path: Option<(&'static str, String)>,
    pairs: Vec<(String, String)>,
) -> Result<Response, ApiError> {
    let mut all = Vec::with_capacity(pairs.len() + 1);
    if let Some((name, value)) = &from_path {
        all.push(((*name).to_owned(), value.clone()));
    }
    all.extend(pairs.iter().cloned());
    let parsed = query::Query::parse(&all).map_err(|e| {
        let mut error = if e.unprocessable {
            ApiError::unprocessable("bad-query", e.to_string())
        } else {
            ApiError::bad_request("bad-query", e.to_string())
        };
        error.problems.push(FieldProblem {
            field: e.param,
            reason: e.reason,
        });
        error
    })?;
    let reader = ctx.reader.clone();
    let genesis = ctx.genesis.clone();
    let page = tokio::task::spawn_blocking(move || {
        query::run(&reader, &parsed, &|st| {
            access::can_read(&genesis, &identity, st)
        })
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(ApiError::internal)?;
    let body = document::query_document(&page.events, now_ms());
    let mut response = Json(body).into_response();
    if let Some(next) = page.next {
        let mut url = base;
        let mut separator = '?';
        for (name, value) in pairs.iter().filter(|(n, _)| n != "nextPageToken") {
            url.push(separator);
            url.push_str(&lotline_sdk::encode_segment(name));
            url.push('=');
            url.push_str(&lotline_sdk::encode_segment(value));
            separator = '&';
        }
        url.push(separator);
        url.push_str("nextPageToken=");
        url.push_str(&query::page_token(next));
        if let Ok(link) = HeaderValue::from_str(&format!("<{url}>; rel=\"next\"")) {
            response.headers_mut().insert(header::LINK, link);
        }
    }
    Ok(response)
}

/// `GET /epcis/events/{eventID}`: the latest event captured under that id.
async fn event_by_id(
    State(ctx): State<Arc<ApiContext>>,
    identity: Identity,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let Path(event_id) = path?;
    let reader = ctx.reader.clone();
    let wanted = event_id.clone();
    let genesis = ctx.genesis.clone();
    let found = tokio::task::spawn_blocking(move || {
        query::by_event_id(&reader, &wanted, &|st| {
            access::can_read(&genesis, &identity, st)
        })
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(ApiError::internal)?;
    match found {
        Some(found) => Ok(Json(document::single_event_json(&found))),
        None => Err(ApiError::not_found(format!(
            "no event with eventID {event_id:?}"
        ))),
    }
}

// ----------------------------------------------------------------- helpers

fn insert_location(response: &mut Response, location: &str) {
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
}

fn random_nonce() -> [u8; 16] {
    let mut bytes = [0u8; 16];
    rand_core::OsRng.fill_bytes(&mut bytes);
    bytes
}

/// An unguessable capture id (so one client cannot walk another's jobs).
fn capture_id() -> String {
    let mut bytes = [0u8; 12];
    rand_core::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or_default()
}
