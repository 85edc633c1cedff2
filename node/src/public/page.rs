//! The consumer provenance page (server-rendered HTML, askama template
//! `templates/provenance.html`, text from [`super::i18n`]) and the public
//! JSON and proof bundle behind it. Everything shown comes from
//! [`view::provenance`], the public projection.

use std::sync::Arc;

use askama::Template;
use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use lotline_core::Statement;
use lotline_core::bundle::{ProofBundle, Withheld};
use lotline_core::epcis::InspectionResult;
use serde::Serialize;

use super::i18n::{Lang, Messages};
use super::view::{self, Provenance, PublicRecall};
use crate::api::{ApiContext, ApiError, trace_error};
use crate::store::index;

#[derive(Template)]
#[template(path = "provenance.html")]
struct PageTemplate<'a> {
    m: &'static Messages,
    p: &'a Provenance,
    proof_href: String,
}

/// True if this node holds any committed record naming `canonical`.
pub fn known(ctx: &ApiContext, canonical: &str) -> Result<bool, ApiError> {
    let listing = ctx
        .reader
        .list(index::PREFIX_IDENTIFIER, canonical, None, 1, &|_| true)
        .map_err(ApiError::internal)?;
    Ok(!listing.items.is_empty())
}

/// The public view of `raw`, computed on the blocking pool (a history walk
/// reads many sled keys); 404 if the node knows nothing of it.
pub async fn load(ctx: &Arc<ApiContext>, raw: &str) -> Result<Provenance, ApiError> {
    let id = crate::trace::root_identifier(raw).map_err(trace_error)?;
    if !known(ctx, &id)? {
        return Err(ApiError::not_found(format!(
            "this node holds no record of {id}"
        )));
    }
    load_known(ctx, id).await
}

/// [`load`] for a canonical identifier already known to this node.
pub async fn load_known(ctx: &Arc<ApiContext>, id: String) -> Result<Provenance, ApiError> {
    let task_ctx = ctx.clone();
    tokio::task::spawn_blocking(move || view::provenance(&task_ctx.reader, &task_ctx.rules(), &id))
        .await
        .map_err(ApiError::internal)?
        .map_err(trace_error)
}

/// Renders the page for an already loaded view.
pub fn render(p: &Provenance, lang: Lang, base: &str) -> Result<Response, ApiError> {
    let page = PageTemplate {
        m: lang.messages(),
        p,
        proof_href: format!(
            "{base}/public/v1/proof/{}",
            lotline_sdk::encode_segment(&p.id)
        ),
    };
    let html = page.render().map_err(ApiError::internal)?;
    let mut response = html.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(
        header::CONTENT_LANGUAGE,
        HeaderValue::from_static(lang.messages().lang),
    );
    headers.insert(
        header::VARY,
        HeaderValue::from_static("Accept, Accept-Language"),
    );
    Ok(response)
}

/// `GET /public/v1/provenance/{identifier}`: the page's content as JSON.
pub async fn provenance_json(
    State(ctx): State<Arc<ApiContext>>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Provenance>, ApiError> {
    let Path(raw) = path?;
    Ok(Json(load(&ctx, &raw).await?))
}

/// `GET /public/v1/recall-status/{identifier}` (GS1 `gs1:recallStatus`).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RecallStatus {
    pub id: String,
    pub recalled: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recall: Option<PublicRecall>,
}

pub async fn recall_status(
    State(ctx): State<Arc<ApiContext>>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<RecallStatus>, ApiError> {
    let Path(raw) = path?;
    let p = load(&ctx, &raw).await?;
    Ok(Json(RecallStatus {
        id: p.id,
        recalled: p.recall.is_some(),
        recall: p.recall,
    }))
}

/// `GET /public/v1/proof/{identifier}`: receipts for the records the page
/// shows. A record whose payload holds private fields is listed under
/// `withheld` instead (a receipt carries the whole signed payload, and
/// selective disclosure is not in this version).
pub async fn proof_bundle(
    State(ctx): State<Arc<ApiContext>>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let Path(raw) = path?;
    let p = load(&ctx, &raw).await?;
    let task_ctx = ctx.clone();
    let bundle = tokio::task::spawn_blocking(move || public_bundle(&task_ctx, &p))
        .await
        .map_err(ApiError::internal)??;
    let body = serde_json::to_vec_pretty(&bundle).map_err(ApiError::internal)?;
    let file = format!(
        "attachment; filename=\"lotline-proof-{}.json\"",
        short(&bundle)
    );
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Ok(value) = HeaderValue::from_str(&file) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    Ok(response)
}

fn short(bundle: &ProofBundle) -> String {
    bundle.chain_id.to_string().chars().take(8).collect()
}

fn public_bundle(ctx: &ApiContext, p: &Provenance) -> Result<ProofBundle, ApiError> {
    let mut bundle = ProofBundle::new(
        ctx.genesis.chain_id(),
        format!("public provenance of {}", p.id),
        super::now_rfc3339(),
    );
    let rules = ctx.rules();
    for cited in &p.attestations {
        let Some(stored) = ctx
            .reader
            .attestation(&cited.attestation)
            .map_err(ApiError::internal)?
        else {
            continue;
        };
        // A full receipt discloses the whole signed record: only records
        // the read policy shows to anonymous callers (which already keeps
        // private fields out, R19) go in; the rest are listed as withheld.
        let public = Statement::from_payload(&stored.envelope.payload).is_ok_and(|s| {
            !view::discloses_private(&s)
                && crate::access::can_read(&rules, &crate::access::Identity::Anonymous, &s)
        });
        if !public {
            bundle.withheld.push(Withheld {
                attestation: cited.attestation,
                height: cited.height,
                reason: "not public under the consortium's read policy (R19)".to_owned(),
            });
        } else if let Some(receipt) = ctx
            .reader
            .receipt(&cited.attestation)
            .map_err(ApiError::internal)?
        {
            bundle.receipts.push(receipt);
        }
    }
    Ok(bundle)
}
