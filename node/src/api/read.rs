//! Read routes: attestations, receipts, blocks, head, listings, genesis,
//! health, metrics and the OpenAPI document.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use lotline_core::api::{
    AttestationView, BlockView, EvidenceEntry, EvidenceStatus, Head, Health, Listing, Status,
};
use lotline_core::attestation::AttestationId;
use lotline_core::gs1::Identifier;
use serde::Deserialize;

use super::{ApiContext, ApiError};
use crate::store::index;

/// The OpenAPI 3.1 document of this API.
pub const OPENAPI: &str = include_str!("openapi.json");

/// Items per listing page: default and maximum.
const PAGE_DEFAULT: usize = 100;
const PAGE_MAX: usize = 1000;

fn parse_id(raw: &str) -> Result<AttestationId, ApiError> {
    raw.parse().map_err(|e| {
        ApiError::bad_request("bad-id", format!("an attestation id is 64 hex digits: {e}"))
    })
}

pub async fn attestation(
    State(ctx): State<Arc<ApiContext>>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<AttestationView>, ApiError> {
    let Path(raw) = path?;
    let id = parse_id(&raw)?;
    if let Some(stored) = ctx.reader.attestation(&id).map_err(ApiError::internal)? {
        let receipt = ctx.reader.receipt(&id).map_err(ApiError::internal)?;
        return Ok(Json(AttestationView {
            id,
            status: Status::Committed,
            org: stored.meta.org.clone(),
            height: Some(stored.height),
            statement: statement_json(&stored.envelope.payload),
            attestation: stored.envelope,
            receipt,
        }));
    }
    let pending = ctx.shared.pool().pending(&id).map(|a| a.envelope.clone());
    match pending {
        Some(envelope) => {
            let statement = statement_json(&envelope.payload);
            let org = statement["org"].as_str().unwrap_or_default().to_owned();
            Ok(Json(AttestationView {
                id,
                status: Status::Pending,
                org,
                height: None,
                attestation: envelope,
                statement,
                receipt: None,
            }))
        }
        None => Err(ApiError::not_found(format!("no attestation {id}"))),
    }
}

fn statement_json(payload: &[u8]) -> serde_json::Value {
    serde_json::from_slice(payload).unwrap_or(serde_json::Value::Null)
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiptParams {
    /// `json` (default) or `postcard` (the byte form).
    format: Option<String>,
}

pub async fn receipt(
    State(ctx): State<Arc<ApiContext>>,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<ReceiptParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Path(raw) = path?;
    let Query(params) = query?;
    let id = parse_id(&raw)?;
    let receipt = ctx
        .reader
        .receipt(&id)
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::not_found(format!("no committed attestation {id}")))?;
    match params.format.as_deref() {
        None | Some("json") => Ok(Json(receipt).into_response()),
        Some("postcard") => Ok((
            [(
                header::CONTENT_TYPE,
                "application/vnd.lotline.receipt.v1+postcard",
            )],
            receipt.to_bytes(),
        )
            .into_response()),
        Some(other) => Err(ApiError::bad_request(
            "bad-query",
            format!("format must be json or postcard, got {other:?}"),
        )),
    }
}

pub async fn block(
    State(ctx): State<Arc<ApiContext>>,
    path: Result<Path<u64>, PathRejection>,
) -> Result<Json<BlockView>, ApiError> {
    let Path(height) = path?;
    let meta = ctx
        .reader
        .block(height)
        .map_err(ApiError::internal)?
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "no block at height {height} (head is {})",
                ctx.shared.head().height
            ))
        })?;
    Ok(Json(BlockView {
        hash: meta.header.hash(),
        header: meta.header,
        finality: meta.finality,
        attestations: meta.ids,
    }))
}

pub async fn head(State(ctx): State<Arc<ApiContext>>) -> Json<Head> {
    let head = ctx.shared.head();
    Json(Head {
        chain_id: ctx.genesis.chain_id(),
        chain_name: ctx.genesis.chain_name().to_owned(),
        height: head.height,
        hash: head.hash,
        attestations: head.attestations,
    })
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageParams {
    limit: Option<usize>,
    after: Option<String>,
}

impl PageParams {
    fn parse(&self) -> Result<(usize, Option<(u64, u32)>), ApiError> {
        let limit = self.limit.unwrap_or(PAGE_DEFAULT);
        if limit == 0 || limit > PAGE_MAX {
            return Err(ApiError::bad_request(
                "bad-query",
                format!("limit must be 1 to {PAGE_MAX}, got {limit}"),
            ));
        }
        let after = match &self.after {
            None => None,
            Some(cursor) => {
                let parsed = cursor
                    .split_once('.')
                    .and_then(|(h, i)| Some((h.parse().ok()?, i.parse().ok()?)))
                    .ok_or_else(|| {
                        ApiError::bad_request(
                            "bad-query",
                            format!("after must be a cursor from `next`, got {cursor:?}"),
                        )
                    })?;
                Some(parsed)
            }
        };
        Ok((limit, after))
    }
}

pub async fn by_identifier(
    State(ctx): State<Arc<ApiContext>>,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<PageParams>, QueryRejection>,
) -> Result<Json<Listing>, ApiError> {
    let Path(raw) = path?;
    let Query(page) = query?;
    let identifier = Identifier::parse(&raw).map_err(|e| {
        ApiError::bad_request(
            "invalid-identifier",
            format!("{raw:?} is not a usable identifier: {e}"),
        )
    })?;
    let (limit, after) = page.parse()?;
    let listing = ctx
        .reader
        .list(
            index::PREFIX_IDENTIFIER,
            &identifier.canonical(),
            after,
            limit,
        )
        .map_err(ApiError::internal)?;
    Ok(Json(listing))
}

pub async fn by_org(
    State(ctx): State<Arc<ApiContext>>,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<PageParams>, QueryRejection>,
) -> Result<Json<Listing>, ApiError> {
    let Path(org) = path?;
    let Query(page) = query?;
    if ctx.genesis.org(&org).is_none() {
        return Err(ApiError::not_found(format!(
            "no organisation {org:?} in this consortium"
        )));
    }
    let (limit, after) = page.parse()?;
    Ok(Json(
        ctx.reader
            .list(index::PREFIX_ORG, &org, after, limit)
            .map_err(ApiError::internal)?,
    ))
}

/// `GET /v1/evidence`: equivocations, each a pair of conflicting signed
/// votes that anyone can check against the genesis: those a finalized block
/// records (with its height and hash, the same on every node), then those
/// this node holds that no block records yet (`pending`).
pub async fn evidence(
    State(ctx): State<Arc<ApiContext>>,
) -> Result<Json<Vec<EvidenceEntry>>, ApiError> {
    let stored = ctx.reader.evidence().map_err(ApiError::internal)?;
    let validators = ctx.genesis.validators();
    let mut entries: Vec<EvidenceEntry> = stored
        .into_iter()
        .filter_map(|s| {
            let key = s.evidence.key()?;
            Some(EvidenceEntry {
                validator: key.signer,
                org: validators
                    .get(usize::from(key.signer))
                    .map(|v| v.org.clone())
                    .unwrap_or_default(),
                view: key.view,
                kind: key.kind,
                status: match s.recorded {
                    Some(_) => EvidenceStatus::Recorded,
                    None => EvidenceStatus::Pending,
                },
                height: s.recorded.map(|r| r.height),
                block: s.recorded.map(|r| r.block),
                evidence: s.evidence,
            })
        })
        .collect();
    entries.sort_by_key(|e| (e.height.is_none(), e.height, e.validator, e.view));
    Ok(Json(entries))
}

pub async fn genesis(State(ctx): State<Arc<ApiContext>>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/toml")],
        ctx.genesis_toml.clone(),
    )
        .into_response()
}

pub async fn health(State(ctx): State<Arc<ApiContext>>) -> Response {
    let health = Health {
        status: if ctx.shared.failure().is_some() {
            "failed".into()
        } else {
            "ok".into()
        },
        height: ctx.shared.head().height,
        mempool: ctx.shared.pool().len(),
    };
    let status = if ctx.shared.failure().is_some() {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    (status, Json(health)).into_response()
}

pub async fn metrics(State(ctx): State<Arc<ApiContext>>) -> Response {
    let body = ctx
        .shared
        .metrics
        .render(ctx.shared.head().height, ctx.shared.pool().len());
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}

pub async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}
