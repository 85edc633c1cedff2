//! EPCIS 2.0 REST routes under `/epcis`: capture (`POST /epcis/capture`,
//! `POST /epcis/events`, capture jobs) and query (`GET /epcis/events` and
//! the browse paths). Translation only: headers, credentials and bodies in,
//! problems and documents out. The capture flow (job, parser thread,
//! pipeline, commit wait) is `crate::epcis::flow`; reading, signing, the job
//! registry, XML and the query engine are in `crate::epcis`; admission,
//! mempool and gossip are the ones `POST /v1/attestations` uses
//! ([`crate::ingest`]).

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use lotline_core::api::FieldProblem;
use lotline_core::limits::CAPTURE_BYTES_MAX;
use serde_json::Value;

use super::submit::reject;
use super::{ApiContext, ApiError};
use crate::access::{self, Identity};
use crate::epcis::bulk::{self, Broken, Finish, Refusal};
use crate::epcis::capture::{self, ReadError};
use crate::epcis::jobs::{Behaviour, Job};
use crate::epcis::stream::StreamError;
use crate::epcis::{document, flow, fsma, master_data, query, xml};

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
        .route("/v1/master-data/{identifier}", get(master_data_route))
        .route("/v1/fsma204", get(fsma_route))
}

/// `GET /v1/fsma204?tlc=...|gtin=...&from&until&format=csv|xlsx`: the FDA
/// FSMA 204 sortable spreadsheet ([`fsma`]) of the records the caller may
/// read.
async fn fsma_route(
    State(ctx): State<Arc<ApiContext>>,
    identity: Identity,
    pairs: Pairs,
) -> Result<Response, ApiError> {
    let Query(pairs) = pairs?;
    let mut seen = std::collections::BTreeMap::new();
    for (name, value) in &pairs {
        if !matches!(name.as_str(), "tlc" | "gtin" | "from" | "until" | "format") {
            return Err(ApiError::bad_request(
                "bad-query",
                format!("unknown parameter {name:?} (tlc, gtin, from, until, format)"),
            ));
        }
        if seen.insert(name.as_str(), value.as_str()).is_some() {
            return Err(ApiError::bad_request(
                "bad-query",
                format!("{name} given more than once"),
            ));
        }
    }
    let xlsx = match seen.get("format").copied().unwrap_or("csv") {
        "csv" => false,
        "xlsx" => true,
        other => {
            return Err(ApiError::bad_request(
                "bad-query",
                format!("format {other:?}: csv or xlsx"),
            ));
        }
    };
    let request = fsma::Request::parse(
        seen.get("tlc").copied(),
        seen.get("gtin").copied(),
        seen.get("from").copied(),
        seen.get("until").copied(),
    )
    .map_err(fsma_error)?;
    let reader = ctx.reader.clone();
    let genesis = ctx.rules();
    let rows = tokio::task::spawn_blocking(move || {
        fsma::rows(&reader, &request, &|st| {
            access::can_read(&genesis, &identity, st)
        })
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(fsma_error)?;
    if !xlsx {
        return Ok((
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"fsma204.csv\"",
                ),
            ],
            fsma::csv(&rows),
        )
            .into_response());
    }
    fsma_xlsx(&rows)
}

#[cfg(feature = "xlsx")]
fn fsma_xlsx(rows: &[fsma::Row]) -> Result<Response, ApiError> {
    let bytes = fsma::xlsx(rows).map_err(ApiError::internal)?;
    Ok((
        [
            (
                header::CONTENT_TYPE,
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            ),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"fsma204.xlsx\"",
            ),
        ],
        bytes,
    )
        .into_response())
}

#[cfg(not(feature = "xlsx"))]
fn fsma_xlsx(_rows: &[fsma::Row]) -> Result<Response, ApiError> {
    Err(ApiError::new(
        StatusCode::NOT_IMPLEMENTED,
        "not-built",
        "Not built",
        "this node was built without the xlsx feature; ask for format=csv",
    ))
}

fn fsma_error(error: fsma::FsmaError) -> ApiError {
    match error {
        fsma::FsmaError::BadRequest { .. } => {
            ApiError::unprocessable("bad-query", error.to_string())
        }
        fsma::FsmaError::TooLarge => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too-large",
            "Too large",
            error.to_string(),
        ),
        fsma::FsmaError::Store(e) => ApiError::internal(e),
    }
}

/// `GET /v1/master-data/{identifier}`: the owner's current master data of
/// a product, location or party, with the typed view of it. Any member
/// may read it (master data exists to name things for everyone).
async fn master_data_route(
    State(ctx): State<Arc<ApiContext>>,
    _identity: Identity,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let Path(identifier) = path?;
    let reader = ctx.reader.clone();
    let wanted = identifier.clone();
    let entry = tokio::task::spawn_blocking(move || master_data::lookup(&reader, &wanted))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;
    let Some(entry) = entry else {
        return Err(ApiError::not_found(format!(
            "no master data for {identifier:?}"
        )));
    };
    Ok(Json(master_data::entry_json(&entry)))
}

// ------------------------------------------------------------------ capture

/// `POST /epcis/capture`: an EPCISDocument (or EPCISQueryDocument) of any
/// size up to [`CAPTURE_BYTES_MAX`], streamed through
/// [`crate::epcis::bulk`]; answered once every event is in the mempool (or
/// the document is refused), with the job that follows the commits.
async fn capture_document(
    State(ctx): State<Arc<ApiContext>>,
    identity: Identity,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let behaviour = behaviour(&headers)?;
    authorize_capture(&ctx, &identity)?;
    let body = if is_xml(&headers) {
        xml_as_json(body).await?
    } else {
        body
    };
    let max = ctx.epcis.document_bytes_max.min(CAPTURE_BYTES_MAX as u64);
    if let Some(length) = content_length(&headers)
        && length > max
    {
        return Err(broken_error(&Broken::Stream(StreamError::TooLarge { max })));
    }
    let (job, finish) =
        flow::capture_document(parts(&ctx)?, behaviour, max, body.into_data_stream()).await;
    let location = format!("/epcis/capture/{}", job.capture_id);
    match finish {
        Finish::Refused(refusal) => Err(refusal_error(&ctx, refusal)),
        Finish::Captured { broken } => {
            let mut response = match broken {
                Some(broken @ Broken::Stream(StreamError::TooLarge { .. })) => {
                    let mut error = broken_error(&broken);
                    error.detail = format!(
                        "{}; under proceed the {} events before it were captured (job {})",
                        error.detail, job.events_captured, job.capture_id
                    );
                    error.into_response()
                }
                _ => (StatusCode::ACCEPTED, Json(job)).into_response(),
            };
            insert_location(&mut response, &location);
            Ok(response)
        }
    }
}

/// True when the request says its body is XML (`application/xml`,
/// `text/xml`, or any `+xml` type).
fn is_xml(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            let essence = v
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            essence == "application/xml" || essence == "text/xml" || essence.ends_with("+xml")
        })
        .unwrap_or(false)
}

/// An XML capture document, read whole (up to
/// [`xml::XML_DOCUMENT_BYTES_MAX`]) and converted to the JSON-LD document
/// the capture pipeline reads ([`crate::epcis::xml`]).
async fn xml_as_json(body: Body) -> Result<Body, ApiError> {
    let max = xml::XML_DOCUMENT_BYTES_MAX;
    let bytes = axum::body::to_bytes(body, max)
        .await
        .map_err(|_| xml_error(&xml::XmlError::TooLarge { max }))?;
    let document = tokio::task::spawn_blocking(move || xml::read_document(&bytes))
        .await
        .map_err(ApiError::internal)?
        .map_err(|e| xml_error(&e))?;
    let json = serde_json::to_vec(&document).map_err(ApiError::internal)?;
    Ok(Body::from(json))
}

/// An XML document that cannot be captured, as its problem.
fn xml_error(error: &xml::XmlError) -> ApiError {
    use xml::XmlError as E;
    let detail = error.to_string();
    match error {
        E::TooLarge { .. } => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too-large",
            "Capture document too large",
            detail,
        ),
        E::Dtd | E::Entity(_) => ApiError::bad_request("xml-entities-refused", detail),
        E::Malformed(_) | E::TooDeep { .. } | E::TooManyElements { .. } => {
            ApiError::bad_request("malformed-xml", detail)
        }
        E::NotEpcis(_) => ApiError::bad_request("not-an-epcis-document", detail),
        E::Version(_) => ApiError::bad_request("unsupported-version", detail),
        E::Shape { path, reason } => {
            let mut e = ApiError::bad_request("malformed-event", detail.clone());
            e.problems.push(FieldProblem {
                field: path.clone(),
                reason: reason.clone(),
            });
            e
        }
    }
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

fn parts(ctx: &ApiContext) -> Result<Arc<bulk::Parts>, ApiError> {
    custodian(ctx)?;
    Ok(Arc::new(bulk::Parts {
        admission: ctx.admission.clone(),
        ingest: ctx.ingest.clone(),
        epcis: ctx.epcis.clone(),
        reader: ctx.reader.clone(),
        chain_id: ctx.genesis.chain_id(),
    }))
}

/// `POST /epcis/events`: one event, answered once it is committed (201) or
/// after [`flow::SINGLE_WAIT`] with its capture job (202).
async fn capture_event(
    State(ctx): State<Arc<ApiContext>>,
    identity: Identity,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body?;
    authorize_capture(&ctx, &identity)?;
    let outcome = flow::capture_event(parts(&ctx)?, &body)
        .await
        .map_err(|e| match e {
            flow::CaptureError::Read(e) => read_error(e),
            other => ApiError::internal(other),
        })?;
    match outcome {
        flow::Single::Refused(refusal) => Err(refusal_error(&ctx, refusal)),
        flow::Single::Committed(found) => {
            let location = format!(
                "/epcis/events/{}",
                lotline_sdk::encode_segment(found.event.event_id.as_deref().unwrap_or_default())
            );
            let mut response = (
                StatusCode::CREATED,
                Json(document::single_event_json(&found)),
            )
                .into_response();
            insert_location(&mut response, &location);
            Ok(response)
        }
        flow::Single::Pending(job) => {
            let location = format!("/epcis/capture/{}", job.capture_id);
            let mut response = (StatusCode::ACCEPTED, Json(job)).into_response();
            insert_location(&mut response, &location);
            Ok(response)
        }
    }
}

/// A capture of which nothing was captured, as its problem.
fn refusal_error(ctx: &ApiContext, refusal: Refusal) -> ApiError {
    match refusal {
        Refusal::Broken(broken) => broken_error(&broken),
        Refusal::Node(rejection) => reject(ctx, &rejection),
        Refusal::Events(problems) => {
            let mut error = if problems.schema {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "schema-violation",
                    "EPCIS JSON Schema violation",
                    "the document violates the EPCIS 2.0 JSON Schema",
                )
            } else if problems.unreadable {
                let (slug, title) = if problems.unknown_type {
                    ("unknown-event-type", "Unknown EPCIS event type")
                } else {
                    ("malformed-event", "Malformed EPCIS event")
                };
                ApiError::new(StatusCode::BAD_REQUEST, slug, title, "")
            } else {
                match &problems.first_rejection {
                    Some(rejection) => reject(ctx, rejection),
                    None => ApiError::internal("a refused capture without a problem"),
                }
            };
            let first = match error.detail.is_empty() {
                true => problems
                    .list
                    .first()
                    .map(|p| format!("{}: {}", p.field, p.reason))
                    .unwrap_or_default(),
                false => error.detail.clone(),
            };
            error.detail = format!(
                "{} of {} event(s) rejected; nothing was captured. First: {first}",
                problems.rejected, problems.read
            );
            error.problems = problems.list;
            error
        }
    }
}

/// A document that could not be read, as its problem.
fn broken_error(broken: &Broken) -> ApiError {
    let detail = broken.to_string();
    match broken {
        Broken::Read(e) => read_error(e.clone()),
        Broken::LateContext => ApiError::bad_request("context-after-events", detail),
        Broken::Stream(StreamError::Json(_)) => ApiError::bad_request("malformed", detail),
        Broken::Stream(
            StreamError::TooLarge { .. }
            | StreamError::EventTooLarge { .. }
            | StreamError::OutlineTooLarge,
        ) => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too-large",
            "Capture document too large",
            detail,
        ),
        Broken::Stream(StreamError::Body(_)) => ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "body-unreadable",
            "Request body not received",
            detail,
        ),
        Broken::Stream(StreamError::Halted) => ApiError::internal(detail),
    }
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
    headers: HeaderMap,
    pairs: Pairs,
) -> Result<Response, ApiError> {
    let Query(pairs) = pairs?;
    let format = Format::of(&headers);
    run_query(
        ctx,
        identity,
        format,
        "/epcis/events".into(),
        Vec::new(),
        pairs,
    )
    .await
}

/// `GET /epcis/epcs/{epc}/events`: `MATCH_anyEPC` with the path's EPC.
async fn events_by_epc(
    State(ctx): State<Arc<ApiContext>>,
    identity: Identity,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    pairs: Pairs,
) -> Result<Response, ApiError> {
    let format = Format::of(&headers);
    let Path(epc) = path?;
    let Query(pairs) = pairs?;
    let base = format!("/epcis/epcs/{}/events", lotline_sdk::encode_segment(&epc));
    run_query(
        ctx,
        identity,
        format,
        base,
        vec![("MATCH_anyEPC".to_owned(), epc)],
        pairs,
    )
    .await
}

/// `GET /epcis/bizSteps/{bizStep}/events`: `EQ_bizStep`.
async fn events_by_biz_step(
    State(ctx): State<Arc<ApiContext>>,
    identity: Identity,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    pairs: Pairs,
) -> Result<Response, ApiError> {
    let format = Format::of(&headers);
    let Path(step) = path?;
    let Query(pairs) = pairs?;
    let base = format!(
        "/epcis/bizSteps/{}/events",
        lotline_sdk::encode_segment(&step)
    );
    run_query(
        ctx,
        identity,
        format,
        base,
        vec![("EQ_bizStep".to_owned(), step)],
        pairs,
    )
    .await
}

/// `GET /epcis/eventTypes/{eventType}/events`: `eventType`.
async fn events_by_event_type(
    State(ctx): State<Arc<ApiContext>>,
    identity: Identity,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    pairs: Pairs,
) -> Result<Response, ApiError> {
    let format = Format::of(&headers);
    let Path(kind) = path?;
    let Query(pairs) = pairs?;
    let base = format!(
        "/epcis/eventTypes/{}/events",
        lotline_sdk::encode_segment(&kind)
    );
    run_query(
        ctx,
        identity,
        format,
        base,
        vec![("eventType".to_owned(), kind)],
        pairs,
    )
    .await
}

/// Parses, runs on a blocking thread, and answers an EPCISQueryDocument
/// with a `Link: <...>; rel="next"` header when there is more.
/// `fixed` pairs come from the path (or a named query's definition) and
/// are not repeated in the next page's link.
pub(super) async fn run_query(
    ctx: Arc<ApiContext>,
    identity: Identity,
    format: Format,
    base: String,
    fixed: Vec<(String, String)>,
    pairs: Vec<(String, String)>,
) -> Result<Response, ApiError> {
    let mut all = fixed;
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
    let genesis = ctx.rules();
    let page = tokio::task::spawn_blocking(move || {
        query::run(&reader, &parsed, &|st| {
            access::can_read(&genesis, &identity, st)
        })
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(ApiError::internal)?;
    if page.too_many {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "query-too-large",
            "Query too large",
            "more events match than maxEventCount (or more index entries than one answer may examine): narrow the query, or page it without maxEventCount",
        ));
    }
    let body = document::query_document(&page.events, crate::clock::unix_ms_i64());
    let mut response = match format {
        Format::Json => Json(body).into_response(),
        Format::Xml => {
            let text = xml::write::query_document(&body);
            ([(header::CONTENT_TYPE, "application/xml")], text).into_response()
        }
    };
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
    let genesis = ctx.rules();
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

/// The syntax a query answers in: JSON-LD unless the `Accept` header names
/// an XML type before any JSON one (the EPCIS REST bindings' two syntaxes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Format {
    Json,
    Xml,
}

impl Format {
    pub(super) fn of(headers: &HeaderMap) -> Format {
        let accept = headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        for range in accept.split(',') {
            let essence = range
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            if essence == "application/xml" || essence == "text/xml" {
                return Format::Xml;
            }
            if essence.contains("json") {
                return Format::Json;
            }
        }
        Format::Json
    }
}

fn insert_location(response: &mut Response, location: &str) {
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
}
