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
use crate::access::{self, Identity};
use crate::store::index;
use crate::store::index::StoredAttestation;

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

/// The one 404 for an attestation that is absent *or* hidden from the
/// caller: same status, same body, so a response never tells them apart.
fn no_attestation(id: &AttestationId) -> ApiError {
    ApiError::not_found(format!("no attestation {id}"))
}

/// A committed attestation if it exists and `identity` may see it.
fn visible_attestation(
    ctx: &ApiContext,
    identity: &Identity,
    id: &AttestationId,
) -> Result<Option<StoredAttestation>, ApiError> {
    Ok(ctx
        .reader
        .attestation(id)
        .map_err(ApiError::internal)?
        .filter(|stored| visible(ctx, identity, stored)))
}

fn visible(ctx: &ApiContext, identity: &Identity, stored: &StoredAttestation) -> bool {
    access::can_read_payload(
        &ctx.rules(),
        identity,
        &stored.meta.org,
        &stored.envelope.payload,
    )
}

pub async fn attestation(
    State(ctx): State<Arc<ApiContext>>,
    identity: Identity,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<AttestationView>, ApiError> {
    let Path(raw) = path?;
    let id = parse_id(&raw)?;
    if ctx.reader.contains(&id).map_err(ApiError::internal)? {
        let stored =
            visible_attestation(&ctx, &identity, &id)?.ok_or_else(|| no_attestation(&id))?;
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
        Some(envelope)
            if access::can_read_payload(&ctx.rules(), &identity, "", &envelope.payload) =>
        {
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
        _ => Err(no_attestation(&id)),
    }
}

fn statement_json(payload: &[u8]) -> serde_json::Value {
    serde_json::from_slice(payload).unwrap_or(serde_json::Value::Null)
}

/// `GET /v1/attestations/{id}/private`: a committed record's private fields
/// in plaintext, for a caller the private read rule entitles, opened with
/// this node's org key (docs/confidentiality.md).
pub async fn private_fields(
    State(ctx): State<Arc<ApiContext>>,
    identity: Identity,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    use crate::access::private::{self, PrivateReadError};
    let Path(raw) = path?;
    let id = parse_id(&raw)?;
    let stored = visible_attestation(&ctx, &identity, &id)?.ok_or_else(|| no_attestation(&id))?;
    let statement = lotline_core::Statement::from_payload(&stored.envelope.payload)
        .map_err(ApiError::internal)?;
    match private::open(
        &ctx.rules(),
        ctx.private_key.as_ref(),
        &identity,
        &statement,
    ) {
        Ok(opened) => Ok(Json(serde_json::json!({
            "id": id,
            "openedBy": opened.opened_by,
            "fields": opened.fields,
            "event": opened.event,
        }))),
        Err(e @ PrivateReadError::NotPrivate) => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not-private",
            "No private fields",
            e.to_string(),
        )),
        Err(e @ PrivateReadError::NotEntitled) => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "private-not-entitled",
            "Not entitled to private fields",
            e.to_string(),
        )),
        Err(e @ PrivateReadError::NotHere(_)) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "private-not-on-this-node",
            "This node can not open these private fields",
            e.to_string(),
        )),
        Err(e @ PrivateReadError::Shredded(_)) => Err(ApiError::new(
            StatusCode::GONE,
            "private-shredded",
            "Private fields destroyed under the retention rule",
            e.to_string(),
        )),
        Err(e @ PrivateReadError::Open(_)) => Err(ApiError::internal(e)),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiptParams {
    /// `json` (default) or `postcard` (the byte form).
    format: Option<String>,
}

pub async fn receipt(
    State(ctx): State<Arc<ApiContext>>,
    identity: Identity,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<ReceiptParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Path(raw) = path?;
    let Query(params) = query?;
    let id = parse_id(&raw)?;
    let absent = || ApiError::not_found(format!("no committed attestation {id}"));
    if visible_attestation(&ctx, &identity, &id)?.is_none() {
        return Err(absent());
    }
    let receipt = ctx
        .reader
        .receipt(&id)
        .map_err(ApiError::internal)?
        .ok_or_else(absent)?;
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

/// A block: header and finality for everyone (they hold no record content,
/// and receipts are checked against them), and of its attestation ids only
/// those the caller may see. The header's `count` and Merkle root are
/// public facts of the chain; which ids they cover is not.
pub async fn block(
    State(ctx): State<Arc<ApiContext>>,
    identity: Identity,
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
    let attestations = if access::reads_everything(&ctx.rules(), &identity) {
        meta.ids
    } else {
        let mut shown = Vec::with_capacity(meta.ids.len());
        for id in meta.ids {
            if visible_attestation(&ctx, &identity, &id)?.is_some() {
                shown.push(id);
            }
        }
        shown
    };
    Ok(Json(BlockView {
        hash: meta.header.hash(),
        header: meta.header,
        finality: meta.finality,
        attestations,
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
    identity: Identity,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<PageParams>, QueryRejection>,
) -> Result<Json<Listing>, ApiError> {
    let Path(raw) = path?;
    let Query(page) = query?;
    let identifier = Identifier::parse(&raw).map_err(|e| {
        ApiError::unprocessable(
            "invalid-identifier",
            format!("{raw:?} is not a usable identifier: {e}"),
        )
    })?;
    let (limit, after) = page.parse()?;
    let all = access::reads_everything(&ctx.rules(), &identity);
    let filter = |stored: &StoredAttestation| all || visible(&ctx, &identity, stored);
    let listing = ctx
        .reader
        .list(
            index::PREFIX_IDENTIFIER,
            &identifier.canonical(),
            after,
            limit,
            &filter,
        )
        .map_err(ApiError::internal)?;
    Ok(Json(listing))
}

pub async fn by_org(
    State(ctx): State<Arc<ApiContext>>,
    identity: Identity,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<PageParams>, QueryRejection>,
) -> Result<Json<Listing>, ApiError> {
    let Path(org) = path?;
    let Query(page) = query?;
    if ctx.rules().org(&org).is_none() {
        return Err(ApiError::not_found(format!(
            "no organisation {org:?} in this consortium"
        )));
    }
    let (limit, after) = page.parse()?;
    let all = access::reads_all_of(&ctx.rules(), &identity, &org);
    let filter = |stored: &StoredAttestation| all || visible(&ctx, &identity, stored);
    Ok(Json(
        ctx.reader
            .list(index::PREFIX_ORG, &org, after, limit, &filter)
            .map_err(ApiError::internal)?,
    ))
}

/// `GET /v1/evidence`: equivocations, each a pair of conflicting signed
/// votes that anyone can check against the validators of their epoch (the
/// genesis, or the membership history): those a finalized block records
/// (with its height and hash, the same on every node), then those this
/// node holds that no block records yet (`pending`). `validator` is the
/// index in the votes' epoch; `org` is the org that ran it then.
pub async fn evidence(
    State(ctx): State<Arc<ApiContext>>,
) -> Result<Json<Vec<EvidenceEntry>>, ApiError> {
    let stored = ctx.reader.evidence().map_err(ApiError::internal)?;
    let history = ctx.shared.governance.history();
    let mut entries: Vec<EvidenceEntry> = stored
        .into_iter()
        .filter_map(|s| {
            let key = s.evidence.key()?;
            let org = history.epoch(s.evidence.first.epoch).and_then(|m| {
                m.rules()
                    .validators()
                    .get(usize::from(key.signer))
                    .map(|v| v.org.clone())
            });
            Some(EvidenceEntry {
                validator: key.signer,
                org: org.unwrap_or_default(),
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

/// Metrics are for the node operator's credential: they describe this
/// node's load and peers, which are its operator's business.
pub async fn metrics(
    State(ctx): State<Arc<ApiContext>>,
    identity: Identity,
) -> Result<Response, ApiError> {
    require_operator(&identity, "metrics")?;
    let sample = crate::metrics::Sample {
        height: ctx.shared.head().height,
        mempool: ctx.shared.pool().len(),
        failed: ctx.shared.failure().is_some(),
    };
    #[cfg(feature = "analytics")]
    if let Some(analytics) = &ctx.analytics {
        analytics.sample_metrics(sample.height);
    }
    let body = ctx.shared.metrics.render(sample);
    Ok(([(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)], body).into_response())
}

/// 401 without a credential, 403 with one that is not an operator's.
pub fn require_operator(identity: &Identity, what: &str) -> Result<(), ApiError> {
    match identity {
        Identity::Anonymous => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Unauthorized",
            format!("{what} need a credential: send Authorization: Bearer <token>"),
        )),
        Identity::Caller(c) if !c.operator => Err(forbidden(format!(
            "{what} are for the node operator's credential; {} is not one",
            c.credential
        ))),
        Identity::Caller(_) => Ok(()),
    }
}

pub fn forbidden(detail: String) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, "forbidden", "Forbidden", detail)
}

pub async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}
