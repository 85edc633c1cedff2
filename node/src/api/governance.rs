//! Governance reads: the membership history a verifier follows, and a
//! summary of the changes for operators. Submitting a governance
//! transaction is `POST /v1/attestations` (admission tells the two kinds
//! apart by payload type).

use std::sync::Arc;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use lotline_genesis::governance::HistoryFile;
use serde::Serialize;

use super::ApiContext;
use super::problem::ApiError;

pub fn routes() -> Router<Arc<ApiContext>> {
    Router::new()
        .route("/v1/governance", get(list))
        .route("/v1/governance/history", get(history))
}

/// One committed governance transaction, as operators read it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct EntryView {
    id: String,
    height: u64,
    index: u32,
    kind: &'static str,
    effective_height: u64,
    approvers: Vec<String>,
    /// Why the change did not apply when it took effect, if it did not.
    #[serde(skip_serializing_if = "Option::is_none")]
    void: Option<String>,
    proposal: lotline_genesis::Proposal,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ListView {
    committed_height: u64,
    /// The distinct member orgs a change needs at the next height.
    threshold: usize,
    entries: Vec<EntryView>,
}

async fn list(State(ctx): State<Arc<ApiContext>>) -> Json<ListView> {
    let governance = ctx.admission.governance();
    let history = governance.history();
    let next = governance.next_height();
    Json(ListView {
        committed_height: governance.committed(),
        threshold: history.threshold(&history.at(next)),
        entries: history
            .entries()
            .iter()
            .map(|e| EntryView {
                id: e.id.to_string(),
                height: e.height,
                index: e.index,
                kind: e.proposal.change.kind(),
                effective_height: e.effective,
                approvers: e.approvers.clone(),
                void: e.void.clone(),
                proposal: e.proposal.clone(),
            })
            .collect(),
    })
}

/// The membership-history file: a receipt for every governance
/// transaction the index holds, through the head the API serves.
async fn history(State(ctx): State<Arc<ApiContext>>) -> Result<Json<HistoryFile>, ApiError> {
    let through = ctx.shared.head().height;
    let history = ctx.admission.governance().history();
    let mut receipts = Vec::new();
    for entry in history.entries().iter().filter(|e| e.height <= through) {
        let receipt = ctx
            .reader
            .receipt(&entry.id)
            .map_err(ApiError::internal)?
            .ok_or_else(|| {
                ApiError::internal(format!(
                    "governance transaction {} at height {} has no receipt",
                    entry.id, entry.height
                ))
            })?;
        receipts.push(receipt);
    }
    Ok(Json(HistoryFile::new(
        ctx.genesis.chain_id(),
        through,
        receipts,
    )))
}
