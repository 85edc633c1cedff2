//! Trace and recall routes: `GET /v1/trace/{id}` and
//! `POST /v1/recalls/scope`. The walks run on the blocking pool: a recall
//! scope can touch tens of thousands of sled keys.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use lotline_core::trace::{Direction, RecallScope, RecallScopeRequest, Trace};
use serde::Deserialize;

use super::{ApiContext, ApiError};
use crate::access::Identity;
use crate::trace::{self, CallerVisibility, TraceError, TraceRequest};

pub fn routes() -> Router<Arc<ApiContext>> {
    Router::new()
        .route("/v1/trace/{identifier}", get(trace_route))
        .route("/v1/recalls/scope", post(recall_scope_route))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TraceParams {
    direction: Option<Direction>,
    depth: Option<u32>,
    proofs: Option<bool>,
}

async fn trace_route(
    State(ctx): State<Arc<ApiContext>>,
    identity: Identity,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<TraceParams>, QueryRejection>,
) -> Result<Json<Trace>, ApiError> {
    let Path(root) = path?;
    let Query(params) = query?;
    let request = TraceRequest {
        root,
        direction: params.direction.unwrap_or_default(),
        depth: params.depth,
        proofs: params.proofs.unwrap_or(false),
    };
    let reader = ctx.reader.clone();
    let genesis = ctx.rules();
    let trace = tokio::task::spawn_blocking(move || {
        let visibility = CallerVisibility::new(&genesis, &identity, &reader);
        trace::trace(&reader, &request, &visibility)
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(trace_error)?;
    Ok(Json(trace))
}

async fn recall_scope_route(
    State(ctx): State<Arc<ApiContext>>,
    identity: Identity,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<RecallScope>, ApiError> {
    let body = body?;
    let request: RecallScopeRequest = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request("malformed", format!("recall scope request: {e}")))?;
    let reader = ctx.reader.clone();
    let genesis = ctx.rules();
    let scope = tokio::task::spawn_blocking(move || {
        let visibility = CallerVisibility::new(&genesis, &identity, &reader);
        trace::recall_scope(&reader, &request, &visibility)
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(trace_error)?;
    Ok(Json(scope))
}

/// The one mapping from trace errors to problem documents.
pub(crate) fn trace_error(error: TraceError) -> ApiError {
    match &error {
        TraceError::BadIdentifier(..) => {
            ApiError::unprocessable("invalid-identifier", error.to_string())
        }
        TraceError::DepthTooLarge(_) => ApiError::bad_request("bad-query", error.to_string()),
        TraceError::BadRequest { field, .. } => {
            let mut api = ApiError::bad_request("invalid-request", error.to_string());
            api.problems.push(lotline_core::api::FieldProblem {
                field: (*field).to_owned(),
                reason: error.to_string(),
            });
            api
        }
        TraceError::TooManyProofs(_) => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "too-many-proofs",
            "Too many proofs",
            error.to_string(),
        ),
        TraceError::Store(e) => ApiError::internal(e),
    }
}
