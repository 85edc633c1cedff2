//! `GET /v1/audit`: the audit trail export, for regulators and auditors (by
//! the genesis read policy) and the node operator: 401 without a
//! credential, 403 with another one.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::routing::get;
use serde::{Deserialize, Serialize};

use super::{ApiContext, ApiError};
use crate::access::Identity;
use crate::audit::Entry;

/// Entries per export page: default and maximum.
const PAGE_DEFAULT: usize = 1000;
const PAGE_MAX: usize = 10_000;

pub fn routes() -> Router<Arc<ApiContext>> {
    Router::new().route("/v1/audit", get(export))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportParams {
    /// Entries with a greater seq.
    after: Option<u64>,
    limit: Option<usize>,
}

/// A page of the audit trail. `next` is the `after` of the next page.
#[derive(Debug, Serialize)]
pub struct Export {
    pub entries: Vec<Entry>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<u64>,
}

async fn export(
    State(ctx): State<Arc<ApiContext>>,
    identity: Identity,
    query: Result<Query<ExportParams>, QueryRejection>,
) -> Result<Json<Export>, ApiError> {
    if identity.caller().is_none() {
        super::read::require_operator(&identity, "audit exports")?;
    }
    if !identity.may_export_audit(&ctx.rules()) {
        return Err(super::read::forbidden(
            "the audit trail is exported to regulators, auditors and the node operator".into(),
        ));
    }
    let Query(params) = query?;
    let limit = params.limit.unwrap_or(PAGE_DEFAULT);
    if limit == 0 || limit > PAGE_MAX {
        return Err(ApiError::bad_request(
            "bad-query",
            format!("limit must be 1 to {PAGE_MAX}, got {limit}"),
        ));
    }
    let audit = ctx.audit.clone();
    let mut entries = tokio::task::spawn_blocking(move || audit.read(params.after, limit + 1))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;
    let next = if entries.len() > limit {
        entries.truncate(limit);
        entries.last().map(|e| e.seq)
    } else {
        None
    };
    Ok(Json(Export { entries, next }))
}
