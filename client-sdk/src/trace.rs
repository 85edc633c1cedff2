//! Offline check of a trace served with `proofs=true`: every edge, fact,
//! holder, recall mark and correction must be stated by an attestation whose
//! receipt verifies against the pinned genesis, at the height the trace
//! claims, by the org it names. The statements are re-derived with the same
//! function the node indexes with ([`lotline_core::lineage::derive`]), so a
//! node cannot invent, redirect or re-attribute an edge.
//!
//! What this does not prove: completeness. A node can leave edges out; ask
//! several nodes, or a regulator's node, when omission matters.

use std::collections::BTreeMap;

use lotline_core::attestation::AttestationId;
use lotline_core::lineage::{self, Derived};
use lotline_core::trace::{Source, Trace};
use lotline_core::{Receipt, Statement};
use lotline_genesis::Genesis;

/// Why a trace does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TraceVerifyError {
    #[error("receipt for {id} does not verify: {reason}")]
    Receipt { id: AttestationId, reason: String },
    #[error("{what} cites attestation {id}, which has no receipt in the trace")]
    MissingReceipt { what: String, id: AttestationId },
    #[error("{what} claims {claim}, but attestation {id} says otherwise")]
    Mismatch {
        what: String,
        id: AttestationId,
        claim: String,
    },
}

/// What a verified trace rests on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedTrace {
    /// Attestations checked, each with the validators that certified it.
    pub attestations: usize,
    /// Validator indexes that certified at least one of them.
    pub certified_by: Vec<u16>,
}

struct Proven {
    source_height: u64,
    org: String,
    derived: Derived,
}

/// Verifies every claim of `trace` against its receipts and `genesis`.
pub fn verify_trace(trace: &Trace, genesis: &Genesis) -> Result<VerifiedTrace, TraceVerifyError> {
    let mut proven: BTreeMap<AttestationId, Proven> = BTreeMap::new();
    let mut certified_by = std::collections::BTreeSet::new();
    for receipt in &trace.receipts {
        let (id, entry, signers) = prove(receipt, genesis)?;
        certified_by.extend(signers);
        proven.insert(id, entry);
    }
    let check = |what: String, source: &Source, claim: String, holds: &dyn Fn(&Derived) -> bool| {
        let id = source.attestation;
        let Some(p) = proven.get(&id) else {
            return Err(TraceVerifyError::MissingReceipt { what, id });
        };
        if p.source_height != source.height || p.org != source.org || !holds(&p.derived) {
            return Err(TraceVerifyError::Mismatch { what, id, claim });
        }
        Ok(())
    };
    for edge in &trace.edges {
        check(
            format!("edge {} -> {}", edge.from, edge.to),
            &edge.source,
            format!("{:?}", edge.kind),
            &|d| {
                d.edges
                    .iter()
                    .any(|e| e.from == edge.from && e.to == edge.to && e.kind == edge.kind)
            },
        )?;
    }
    for fact in &trace.facts {
        check(
            format!("fact about {}", fact.subject),
            &fact.source,
            "a quality fact".to_owned(),
            &|d| {
                d.facts.iter().any(|f| {
                    f.subjects.contains(&fact.subject)
                        && f.quality == fact.quality
                        && f.sensors == fact.sensors
                })
            },
        )?;
    }
    for node in &trace.nodes {
        if let Some(holder) = &node.holder {
            check(
                format!("holder of {}", node.id),
                &holder.source,
                format!("custody of {}", holder.via),
                &|d| {
                    d.custody.as_ref().is_some_and(|c| {
                        c.subjects.contains(&holder.via) && c.state == holder.state
                    })
                },
            )?;
        }
        if let Some(mark) = &node.recalled {
            check(
                format!("recall of {}", node.id),
                &mark.source,
                format!("recall {} of {}", mark.recall_id, mark.suspect),
                &|d| {
                    d.recall.as_ref().is_some_and(|r| {
                        r.recall_id == mark.recall_id && r.scope.contains(&mark.suspect)
                    })
                },
            )?;
        }
    }
    for correction in &trace.corrections {
        check(
            format!("correction of {}", correction.event_id),
            &correction.declaration,
            "an error declaration".to_owned(),
            &|d| d.retracts.as_deref() == Some(correction.event_id.as_str()),
        )?;
    }
    Ok(VerifiedTrace {
        attestations: proven.len(),
        certified_by: certified_by.into_iter().collect(),
    })
}

fn prove(
    receipt: &Receipt,
    genesis: &Genesis,
) -> Result<(AttestationId, Proven, Vec<u16>), TraceVerifyError> {
    let id = receipt.attestation.id();
    let verified = genesis
        .verify_receipt(receipt)
        .map_err(|e| TraceVerifyError::Receipt {
            id,
            reason: e.to_string(),
        })?;
    let statement = Statement::from_payload(&receipt.attestation.payload).map_err(|e| {
        TraceVerifyError::Receipt {
            id,
            reason: e.to_string(),
        }
    })?;
    let proven = Proven {
        source_height: verified.height,
        org: statement.org.clone(),
        derived: lineage::derive(&statement.event),
    };
    Ok((verified.id, proven, verified.certified_by))
}
