//! `POST /v1/sql`: read-only SQL over the analytics projection. Translates
//! HTTP to [`lotline_analytics::sql::query`] and back; who sees which rows
//! is the read rule ([`access::reads_everything`], else
//! [`access::can_read_facts`] per row) with the membership in force.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use lotline_analytics::answer::{self, Format};
use lotline_analytics::sql::{self, Limits, SqlError, Visibility};
use serde::Deserialize;

use super::{ApiContext, ApiError};
use crate::access::{self, Identity};

/// The request body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SqlRequest {
    sql: String,
    /// `json` (default), `csv`, `arrow` (IPC stream) or `parquet`; else the
    /// `Accept` header decides.
    #[serde(default)]
    format: Option<String>,
}

pub async fn sql(
    State(ctx): State<Arc<ApiContext>>,
    identity: Identity,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let Identity::Caller(caller) = &identity else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Unauthorized",
            "SQL needs a member's credential: its rows are what that member may read",
        ));
    };
    let body = body?;
    let request: SqlRequest = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request(
            "malformed",
            format!(
                "the body is {{\"sql\": \"...\", \"format\": \"json|csv|arrow|parquet\"}}: {e}"
            ),
        )
    })?;
    // The document's bounds (JSON Schema counts characters).
    let chars = request.sql.chars().count();
    if chars == 0 || chars > sql::SQL_CHARS_MAX {
        return Err(ApiError::bad_request(
            "malformed",
            format!(
                "sql holds 1 to {} characters, not {chars}",
                sql::SQL_CHARS_MAX
            ),
        ));
    }
    let format = match &request.format {
        Some(name) => Format::parse(name).ok_or_else(|| {
            ApiError::bad_request("malformed", format!("unknown format {name:?}"))
        })?,
        None => accepted(&headers),
    };
    let Some(analytics) = &ctx.analytics else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "analytics-unavailable",
            "Analytics unavailable",
            "this node does not run the analytics projection",
        ));
    };
    // The read rule with the membership in force now: an org voted in,
    // or a read policy changed by vote, applies to every row.
    let rules = ctx.rules();
    let who = if access::reads_everything(&rules, &identity) {
        Visibility::All
    } else {
        let reader = identity.clone();
        Visibility::org(caller.org.clone(), move |facts| {
            access::can_read_facts(&rules, &reader, facts)
        })
    };
    let busy = || {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "analytics-busy",
            "Analytics busy",
            format!(
                "{} SQL queries are running on this node; retry shortly",
                crate::analytics::QUERIES_MAX
            ),
        )
    };
    let _slot = tokio::time::timeout(
        crate::analytics::QUERY_WAIT,
        analytics.queries.clone().acquire_owned(),
    )
    .await
    .map_err(|_| busy())?
    .map_err(|_| busy())?;
    // The query and the encoding of its answer run on the SQL runtime
    // (crate::analytics::SQL_THREADS), not on the one serving this request.
    let catalog = analytics.catalog.clone();
    let text = request.sql;
    let bytes = analytics
        .run(async move {
            let limits = match format {
                Format::Json => Limits::default(),
                _ => Limits::download(),
            };
            let answer = sql::query(&catalog, &who, &text, limits)
                .await
                .map_err(refused)?;
            answer::encode(&answer, format).map_err(ApiError::internal)
        })
        .await
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "analytics-unavailable",
                "Analytics unavailable",
                "the node is stopping its analytics",
            )
        })??;
    let mut response = (StatusCode::OK, bytes).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.media_type()),
    );
    Ok(response)
}

/// The first format the `Accept` header names that we serve; JSON when it
/// names none (or is absent).
fn accepted(headers: &HeaderMap) -> Format {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|media| Format::from_media_type(media.split(';').next().unwrap_or("").trim()))
        .next()
        .unwrap_or(Format::Json)
}

/// Every refusal is a 422 naming its reason; a failure of ours is a 500.
fn refused(e: SqlError) -> ApiError {
    let title = match &e {
        SqlError::Syntax(_) => "SQL does not parse",
        SqlError::NotReadOnly(_) => "SQL is not a read-only query",
        SqlError::UnknownTable(_) => "SQL names a table that is not readable",
        SqlError::Limit(_) => "SQL query over its limits",
        SqlError::Invalid(_) => "SQL does not plan",
        SqlError::Internal(_) => return ApiError::internal(e),
    };
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        e.reason(),
        title,
        e.to_string(),
    )
}
