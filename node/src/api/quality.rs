//! Quality routes: `GET /v1/spc/{gtin}/{characteristic}`,
//! `POST /v1/root-cause`, `GET /v1/cold-chain/{identifier}` and `GET /v1/alerts`. Both read on the blocking pool (a chart reads
//! every measurement of a product class; a root cause walks every lot of
//! the bad units' products) and see what the read policy lets the caller
//! see ([`CallerVisibility`]).

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::routing::{get, post};
use serde::Deserialize;

use super::{ApiContext, ApiError, trace_error};
use crate::access::Identity;
use crate::quality::alerts::{self, AlertsRequest};
use crate::quality::{
    self, Chart, ChartError, ChartRequest, ColdChain, ColdChainError, RootCause, RootCauseError,
    RootCauseRequest, SeriesError, Subgrouping,
};
use crate::trace::CallerVisibility;
use lotline_core::epcis::AlertRule;

pub fn routes() -> Router<Arc<ApiContext>> {
    Router::new()
        .route("/v1/spc/{gtin}/{characteristic}", get(chart_route))
        .route("/v1/root-cause", post(root_cause_route))
        .route("/v1/cold-chain/{identifier}", get(cold_chain_route))
        .route("/v1/alerts", get(alerts_route))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertsParams {
    rule: Option<String>,
    org: Option<String>,
    subject: Option<String>,
    #[serde(rename = "sinceHeight")]
    since_height: Option<u64>,
    after: Option<String>,
    limit: Option<usize>,
}

impl AlertsParams {
    fn parse(self) -> Result<AlertsRequest, ApiError> {
        let rule = match &self.rule {
            None => None,
            Some(name) => Some(
                AlertRule::ALL
                    .into_iter()
                    .find(|r| r.name() == name)
                    .ok_or_else(|| {
                        let names: Vec<&str> = AlertRule::ALL.iter().map(|r| r.name()).collect();
                        ApiError::bad_request(
                            "bad-query",
                            format!(
                                "rule must be one of {}, not {}",
                                names.join(", "),
                                lotline_core::api::excerpt(name)
                            ),
                        )
                    })?,
            ),
        };
        let limit = self.limit.unwrap_or(alerts::list::PAGE_DEFAULT);
        if limit == 0 || limit > alerts::list::PAGE_MAX {
            return Err(ApiError::bad_request(
                "bad-query",
                format!("limit must be 1 to {}, got {limit}", alerts::list::PAGE_MAX),
            ));
        }
        let after = match &self.after {
            None => None,
            Some(cursor) => Some(alerts::list::parse_cursor(cursor).ok_or_else(|| {
                ApiError::bad_request(
                    "bad-query",
                    format!(
                        "after must be a cursor from `next`, got {}",
                        lotline_core::api::excerpt(cursor)
                    ),
                )
            })?),
        };
        Ok(AlertsRequest {
            rule,
            org: self.org,
            subject: self.subject,
            since_height: self.since_height,
            after,
            limit,
        })
    }
}

/// `GET /v1/alerts`: the committed alerts the caller may read.
async fn alerts_route(
    State(ctx): State<Arc<ApiContext>>,
    identity: Identity,
    query: Result<Query<AlertsParams>, QueryRejection>,
) -> Result<Json<alerts::Listed>, ApiError> {
    let Query(params) = query?;
    let request = params.parse()?;
    let reader = ctx.reader.clone();
    let genesis = ctx.rules();
    let listed = tokio::task::spawn_blocking(move || {
        let visible = |stored: &crate::store::index::StoredAttestation| {
            crate::access::can_read_payload(
                &genesis,
                &identity,
                &stored.meta.org,
                &stored.envelope.payload,
            )
        };
        alerts::list(&reader, &request, &visible)
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(ApiError::internal)?;
    Ok(Json(listed))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChartParams {
    baseline: Option<usize>,
    points: Option<usize>,
    subgroup: Option<String>,
}

async fn chart_route(
    State(ctx): State<Arc<ApiContext>>,
    identity: Identity,
    path: Result<Path<(String, String)>, PathRejection>,
    query: Result<Query<ChartParams>, QueryRejection>,
) -> Result<Json<Chart>, ApiError> {
    let Path((gtin, characteristic)) = path?;
    let Query(params) = query?;
    let subgroup = match params.subgroup.as_deref() {
        None => Subgrouping::Lot,
        Some(name) => Subgrouping::parse(name).ok_or_else(|| {
            ApiError::bad_request(
                "bad-query",
                format!(
                    "subgroup must be lot or day, not {}",
                    lotline_core::api::excerpt(name)
                ),
            )
        })?,
    };
    let request = ChartRequest {
        gtin,
        characteristic,
        baseline: params.baseline,
        points: params.points,
        subgroup,
    };
    let reader = ctx.reader.clone();
    let genesis = ctx.rules();
    let chart = tokio::task::spawn_blocking(move || {
        let visibility = CallerVisibility::new(&genesis, &identity, &reader);
        quality::chart(&reader, &request, &visibility)
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(chart_error)?;
    Ok(Json(chart))
}

async fn root_cause_route(
    State(ctx): State<Arc<ApiContext>>,
    identity: Identity,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<RootCause>, ApiError> {
    let body = body?;
    let request: RootCauseRequest = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request("malformed", format!("root cause request: {e}")))?;
    let reader = ctx.reader.clone();
    let genesis = ctx.rules();
    let answer = tokio::task::spawn_blocking(move || {
        let visibility = CallerVisibility::new(&genesis, &identity, &reader);
        quality::root_cause(&reader, &request, &visibility)
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(root_cause_error)?;
    Ok(Json(answer))
}

async fn cold_chain_route(
    State(ctx): State<Arc<ApiContext>>,
    identity: Identity,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<ColdChain>, ApiError> {
    let Path(identifier) = path?;
    let reader = ctx.reader.clone();
    let genesis = ctx.rules();
    let answer = tokio::task::spawn_blocking(move || {
        let visibility = CallerVisibility::new(&genesis, &identity, &reader);
        quality::cold_chain(&reader, &identifier, &visibility)
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(|error| match error {
        ColdChainError::Trace(e) => trace_error(e),
        e @ ColdChainError::NoLimits(_) => {
            ApiError::unprocessable("no-storage-limits", e.to_string())
        }
        e @ ColdChainError::TooMany => ApiError::unprocessable("too-large", e.to_string()),
    })?;
    Ok(Json(answer))
}

/// The one mapping from chart errors to problem documents.
pub(crate) fn chart_error(error: ChartError) -> ApiError {
    let detail = error.to_string();
    match error {
        ChartError::Series(e) => series_error(e),
        ChartError::BadPoints(_) | ChartError::BadBaseline(_) => {
            ApiError::bad_request("bad-query", detail)
        }
        ChartError::Spc(_) => ApiError::unprocessable("too-few-measurements", detail),
        ChartError::NoMeasurements { .. } => ApiError::not_found(detail),
    }
}

/// The one mapping from a series request's errors (a chart's, a root
/// cause's `failing`) to problem documents.
fn series_error(error: SeriesError) -> ApiError {
    let detail = error.to_string();
    match error {
        SeriesError::BadGtin(..) => ApiError::unprocessable("invalid-identifier", detail),
        SeriesError::BadCharacteristic => ApiError::bad_request("bad-query", detail),
        SeriesError::TooMany => ApiError::unprocessable("too-many-measurements", detail),
        SeriesError::Store(e) => ApiError::internal(e),
    }
}

/// The one mapping from root-cause errors to problem documents.
pub(crate) fn root_cause_error(error: RootCauseError) -> ApiError {
    let detail = error.to_string();
    match error {
        RootCauseError::BadCount(_) => ApiError::bad_request("invalid-request", detail),
        RootCauseError::NoUnits(_) | RootCauseError::NothingFailed { .. } => {
            ApiError::unprocessable("no-bad-units", detail)
        }
        RootCauseError::TooManyLots
        | RootCauseError::TooManyUnits
        | RootCauseError::TooManyFailing => ApiError::unprocessable("too-large", detail),
        RootCauseError::Series(e) => series_error(e),
        RootCauseError::Trace(e) => trace_error(e),
        RootCauseError::Store(e) => ApiError::internal(e),
    }
}
