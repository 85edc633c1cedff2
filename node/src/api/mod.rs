//! The HTTP API (axum): `/v1/...` JSON, `/health`, `/metrics`,
//! `/openapi.json`. JSON shapes are `lotline_core::api`; errors are
//! `application/problem+json` ([`problem`]).

mod audit;
mod epcis;
mod governance;
mod problem;
mod quality;
mod queries;
mod read;
pub mod serve;
#[cfg(feature = "analytics")]
mod sql;
mod submit;
mod trace;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::routing::{get, post};
use lotline_genesis::Genesis;

pub use problem::{ApiError, classify};
pub(crate) use quality::{chart_error, root_cause_error};
pub(crate) use trace::trace_error;

use crate::admission::Admission;
use crate::state::Shared;
use crate::store::StoreReader;

/// Everything a handler needs.
#[derive(Debug)]
pub struct ApiContext {
    pub shared: Arc<Shared>,
    pub reader: StoreReader,
    pub admission: Admission,
    pub genesis: Arc<Genesis>,
    pub genesis_toml: String,
    /// Where admitted attestations go: mempool, peers, commit waiters.
    pub ingest: crate::ingest::Ingest,
    /// EPCIS capture signer and capture jobs.
    pub epcis: Arc<crate::epcis::Epcis>,
    /// Credentials and rate limits ([`crate::access`]).
    pub access: crate::access::Access,
    /// Where every non-public access is recorded ([`crate::audit`]).
    pub audit: crate::audit::AuditLog,
    /// EPCIS named queries and subscriptions.
    pub subscriptions: Arc<crate::epcis::subscriptions::Subscriptions>,
    /// This node's org encryption key (`[private]`), if configured.
    pub private_key: Option<crate::access::private::OrgKey>,
    /// The analytics projection `POST /v1/sql` reads ([`crate::analytics`]).
    #[cfg(feature = "analytics")]
    pub analytics: Option<Arc<crate::analytics::Analytics>>,
    /// Dashboard sessions ([`crate::dashboard::session`]).
    pub sessions: crate::dashboard::session::Sessions,
}

impl ApiContext {
    /// The membership rules in force now (orgs, roles, read policy): the
    /// `genesis` argument of every read-rule call. `self.genesis` stays the
    /// chain's genesis (chain id, validators, receipts).
    pub fn rules(&self) -> Arc<Genesis> {
        self.shared.governance.rules_now()
    }

    /// The local lineage checks client submissions pass.
    pub fn guard(&self) -> crate::trace::LineageGuard {
        crate::trace::LineageGuard::new(self.reader.clone())
    }
}

/// Longest a request may take, waiting included.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest a capture document upload may take (`POST /epcis/capture`): it
/// streams up to [`lotline_core::limits::CAPTURE_BYTES_MAX`] at the pace of
/// the write path; a stalled upload is cut sooner by the capture route's
/// own idle timeout.
pub const CAPTURE_REQUEST_TIMEOUT: Duration = Duration::from_secs(30 * 60);

pub fn router(ctx: Arc<ApiContext>) -> Router {
    let router = Router::new();
    #[cfg(feature = "analytics")]
    let router = router.route("/v1/sql", post(sql::sql));
    router
        .route("/v1/attestations", post(submit::submit))
        .route("/v1/attestations/batch", post(submit::submit_batch))
        .route("/v1/attestations/{id}", get(read::attestation))
        .route("/v1/attestations/{id}/receipt", get(read::receipt))
        .route("/v1/attestations/{id}/private", get(read::private_fields))
        .route("/v1/blocks/{height}", get(read::block))
        .route("/v1/head", get(read::head))
        .route(
            "/v1/identifiers/{identifier}/attestations",
            get(read::by_identifier),
        )
        .route("/v1/orgs/{org}/attestations", get(read::by_org))
        .route("/v1/genesis", get(read::genesis))
        .route("/v1/evidence", get(read::evidence))
        .merge(governance::routes())
        .merge(audit::routes())
        .route("/health", get(read::health))
        .route("/metrics", get(read::metrics))
        .route("/openapi.json", get(read::openapi))
        .merge(trace::routes())
        .merge(quality::routes())
        .merge(epcis::routes())
        .merge(queries::routes())
        .merge(crate::public::routes())
        .merge(crate::dashboard::routes())
        .fallback(|| async { ApiError::not_found("no such route") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method-not-allowed",
                "Method not allowed",
                "this route does not accept that method",
            )
        })
        .layer(axum::middleware::from_fn_with_state(
            ctx.clone(),
            crate::access::guard::guard,
        ))
        .layer(DefaultBodyLimit::max(
            lotline_core::limits::HTTP_BODY_BYTES_MAX,
        ))
        .layer(axum::middleware::from_fn(deadline))
        .layer(axum::middleware::from_fn_with_state(
            ctx.clone(),
            observe_request,
        ))
        .with_state(ctx)
}

/// Answers 408 when a request takes longer than it may:
/// [`CAPTURE_REQUEST_TIMEOUT`] for a capture document, [`REQUEST_TIMEOUT`]
/// for everything else.
async fn deadline(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let limit = if request.method() == axum::http::Method::POST
        && request.uri().path() == "/epcis/capture"
    {
        CAPTURE_REQUEST_TIMEOUT
    } else {
        REQUEST_TIMEOUT
    };
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => axum::response::IntoResponse::into_response(StatusCode::REQUEST_TIMEOUT),
    }
}

/// Counts and times every request, refused ones (401, 429, 408) too: the
/// outermost layer, for `lotline_api_requests_total` and
/// `lotline_api_request_seconds`. The route label is the matched template
/// (`/v1/blocks/{height}`), so a client choosing paths can not grow the
/// label set; anything unrouted is `unmatched`.
async fn observe_request(
    axum::extract::State(ctx): axum::extract::State<Arc<ApiContext>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let started = std::time::Instant::now();
    let method = request.method().as_str().to_owned();
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |m| m.as_str().to_owned());
    let response = next.run(request).await;
    let metrics = &ctx.shared.metrics;
    metrics.http_requests.inc();
    let labels = crate::metrics::HttpLabels {
        method,
        route,
        status: format!("{}xx", response.status().as_u16() / 100),
    };
    metrics
        .http_seconds
        .get_or_create(&labels)
        .observe(started.elapsed().as_secs_f64());
    response
}

/// The routes the OpenAPI document must describe (checked by a test).
pub const ROUTES: &[(&str, &str)] = &[
    ("post", "/v1/attestations"),
    ("post", "/v1/attestations/batch"),
    ("get", "/v1/attestations/{id}"),
    ("get", "/v1/attestations/{id}/receipt"),
    ("get", "/v1/attestations/{id}/private"),
    ("get", "/v1/blocks/{height}"),
    ("get", "/v1/head"),
    ("get", "/v1/identifiers/{identifier}/attestations"),
    ("get", "/v1/orgs/{org}/attestations"),
    ("get", "/v1/genesis"),
    ("get", "/v1/evidence"),
    ("get", "/v1/governance"),
    ("get", "/v1/governance/history"),
    ("get", "/v1/audit"),
    ("get", "/health"),
    ("get", "/metrics"),
    ("get", "/openapi.json"),
    ("get", "/v1/trace/{identifier}"),
    ("post", "/v1/recalls/scope"),
    ("get", "/v1/spc/{gtin}/{characteristic}"),
    ("post", "/v1/root-cause"),
    ("get", "/v1/cold-chain/{identifier}"),
    ("get", "/v1/alerts"),
    ("post", "/v1/sql"),
    ("post", "/epcis/capture"),
    ("get", "/epcis/capture"),
    ("get", "/epcis/capture/{captureID}"),
    ("post", "/epcis/events"),
    ("get", "/epcis/events"),
    ("get", "/epcis/events/{eventID}"),
    ("get", "/epcis/epcs/{epc}/events"),
    ("get", "/epcis/bizSteps/{bizStep}/events"),
    ("get", "/epcis/eventTypes/{eventType}/events"),
    ("get", "/v1/master-data/{identifier}"),
    ("get", "/v1/fsma204"),
    ("get", "/epcis/queries"),
    ("post", "/epcis/queries"),
    ("get", "/epcis/queries/{queryName}"),
    ("delete", "/epcis/queries/{queryName}"),
    ("get", "/epcis/queries/{queryName}/events"),
    ("get", "/epcis/queries/{queryName}/subscriptions"),
    ("post", "/epcis/queries/{queryName}/subscriptions"),
    (
        "get",
        "/epcis/queries/{queryName}/subscriptions/{subscriptionID}",
    ),
    (
        "delete",
        "/epcis/queries/{queryName}/subscriptions/{subscriptionID}",
    ),
    // The public edge (`crate::public`).
    ("get", "/01/{gtin}"),
    ("get", "/01/{gtin}/10/{lot}"),
    ("get", "/01/{gtin}/21/{serial}"),
    ("get", "/01/{gtin}/10/{lot}/21/{serial}"),
    ("get", "/00/{sscc}"),
    ("get", "/.well-known/gs1resolver"),
    ("get", "/qr/01/{gtin}"),
    ("get", "/qr/01/{gtin}/10/{lot}"),
    ("get", "/qr/01/{gtin}/21/{serial}"),
    ("get", "/qr/00/{sscc}"),
    ("get", "/public/v1/provenance/{identifier}"),
    ("get", "/public/v1/recall-status/{identifier}"),
    ("get", "/public/v1/proof/{identifier}"),
    ("get", "/public/v1/dpp/{identifier}"),
    ("get", "/.well-known/did.json"),
    ("get", "/v1/reports/lots/{identifier}"),
    ("get", "/v1/reports/recalls/{attestation}"),
    ("get", "/v1/reports/orgs/{org}"),
];

#[cfg(test)]
mod tests {
    #[test]
    fn openapi_document_describes_every_route() {
        let doc: serde_json::Value = serde_json::from_str(super::read::OPENAPI).unwrap();
        assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
        for (method, path) in super::ROUTES {
            assert!(
                doc["paths"][path][method].is_object(),
                "{method} {path} is not documented"
            );
        }
        // The guard in front of every route can answer 401 (a bad
        // Authorization header), 429 (rate limit) and 503 (audit trail
        // unavailable), so every operation documents them; every path
        // parameter of the route is a required parameter of the operation.
        for (method, path) in super::ROUTES {
            let operation = &doc["paths"][path][method];
            for status in ["401", "429", "503"] {
                assert!(
                    operation["responses"][status].is_object(),
                    "{method} {path} does not document {status}"
                );
            }
            let documented: Vec<&str> = operation["parameters"]
                .as_array()
                .map(|ps| {
                    ps.iter()
                        .filter(|p| p["in"] == "path" && p["required"] == true)
                        .filter_map(|p| p["name"].as_str())
                        .collect()
                })
                .unwrap_or_default();
            for segment in path.split('/') {
                if let Some(name) = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                    assert!(
                        documented.contains(&name),
                        "{method} {path}: path parameter {name} is not documented as required"
                    );
                }
            }
        }
        assert_eq!(
            doc["paths"].as_object().unwrap().len(),
            super::ROUTES
                .iter()
                .map(|r| r.1)
                .collect::<std::collections::BTreeSet<_>>()
                .len()
        );
    }
}
