//! Supplier scorecards and the recall register, from one prefix scan of
//! every quality fact on GS1 product identifiers (`facts_under`), as the
//! caller may see them.
//!
//! - A lot's **supplier** is the org that certified it (as the supplier
//!   alert rule in `alerts/detect.rs` says), or else the org that stated
//!   its earliest lineage edge (the event that made or first used it).
//! - **Non-conformance rate**: lots found non-conforming (a failed
//!   inspection or a non-conformance report) among the lots judged.
//! - **PPM**: failed inspection results per million inspection results on
//!   the supplier's lots.
//! - **Certificate coverage**: the share of the supplier's lots that carry
//!   a certificate.
//! - The **recall register**: every standing recall order, with the
//!   identifiers it names.

use std::collections::BTreeMap;

use lotline_core::attestation::AttestationId;
use lotline_core::epcis::{InspectionResult, QualityFact, RecallClass};
use lotline_core::gs1::CANONICAL_HOST;
use lotline_core::trace::NodeKind;
use serde::Serialize;

use crate::store::lineage::End;
use crate::store::{StoreError, StoreReader};
use crate::trace::{Reader, Visibility};

/// Most lots attributed to suppliers in one answer (each costs an edge
/// lookup when it carries no certificate); the rest are counted as
/// `lots_unattributed`.
pub const LOTS_MAX: usize = 20_000;

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Scorecard {
    pub org: String,
    pub lots: u64,
    pub certified_lots: u64,
    pub judged_lots: u64,
    pub failed_lots: u64,
    pub inspections: u64,
    pub failed_inspections: u64,
}

impl Scorecard {
    pub fn nc_rate(&self) -> Option<f64> {
        (self.judged_lots > 0).then(|| self.failed_lots as f64 / self.judged_lots as f64)
    }

    pub fn ppm(&self) -> Option<f64> {
        (self.inspections > 0)
            .then(|| self.failed_inspections as f64 * 1e6 / self.inspections as f64)
    }

    pub fn certificate_coverage(&self) -> Option<f64> {
        (self.lots > 0).then(|| self.certified_lots as f64 / self.lots as f64)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Recall {
    pub recall_id: String,
    pub class: RecallClass,
    pub reason: String,
    pub org: String,
    pub attestation: AttestationId,
    pub height: u64,
    pub event_time: String,
    /// The identifiers the order names (as indexed).
    pub scope: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Overview {
    pub scorecards: Vec<Scorecard>,
    pub recalls: Vec<Recall>,
    pub lots_unattributed: u64,
}

#[derive(Default)]
struct Lot {
    certifier: Option<String>,
    judged: bool,
    failed: bool,
    inspections: u64,
    failed_inspections: u64,
}

/// Scorecards of every supplier and the recall register.
pub fn overview(store: &StoreReader, visibility: &dyn Visibility) -> Result<Overview, StoreError> {
    let mut reader = Reader::new(store, visibility);
    let origins = reader.origins.clone();
    let stem = format!("{CANONICAL_HOST}/01/");
    let mut lots: BTreeMap<String, Lot> = BTreeMap::new();
    let mut recalls: BTreeMap<AttestationId, Recall> = BTreeMap::new();
    for (node, (at, fact)) in store.facts_under(&stem, &origins)? {
        if fact.quality.is_none() || !reader.stands(at, &fact.origin)? {
            continue;
        }
        let is_lot = NodeKind::of(&node) == NodeKind::Lot;
        match fact.quality {
            Some(QualityFact::RecallOrder {
                recall_id,
                class,
                reason,
                ..
            }) => {
                recalls
                    .entry(fact.origin.attestation)
                    .or_insert_with(|| Recall {
                        recall_id,
                        class,
                        reason,
                        org: fact.origin.org.clone(),
                        attestation: fact.origin.attestation,
                        height: at.height,
                        event_time: fact.origin.event_time.clone(),
                        scope: Vec::new(),
                    })
                    .scope
                    .push(node);
            }
            Some(QualityFact::Certificate { .. }) if is_lot => {
                lots.entry(node)
                    .or_default()
                    .certifier
                    .get_or_insert_with(|| fact.origin.org.clone());
            }
            Some(QualityFact::Inspection { result, .. }) if is_lot => {
                let lot = lots.entry(node).or_default();
                lot.judged = true;
                lot.inspections += 1;
                if result == InspectionResult::Fail {
                    lot.failed = true;
                    lot.failed_inspections += 1;
                }
            }
            Some(QualityFact::NonConformance { .. }) if is_lot => {
                let lot = lots.entry(node).or_default();
                lot.judged = true;
                lot.failed = true;
            }
            _ => {}
        }
    }
    let mut cards: BTreeMap<String, Scorecard> = BTreeMap::new();
    let mut unattributed = 0u64;
    for (attributed, (id, lot)) in lots.into_iter().enumerate() {
        let supplier = match lot.certifier.clone() {
            Some(org) => Some(org),
            None if attributed < LOTS_MAX => producer(&mut reader, &id)?,
            None => None,
        };
        let Some(org) = supplier else {
            unattributed += 1;
            continue;
        };
        let card = cards.entry(org.clone()).or_insert_with(|| Scorecard {
            org,
            ..Scorecard::default()
        });
        card.lots += 1;
        card.certified_lots += u64::from(lot.certifier.is_some());
        card.judged_lots += u64::from(lot.judged);
        card.failed_lots += u64::from(lot.failed);
        card.inspections += lot.inspections;
        card.failed_inspections += lot.failed_inspections;
    }
    let mut recalls: Vec<Recall> = recalls.into_values().collect();
    recalls.sort_by_key(|r| std::cmp::Reverse(r.height));
    Ok(Overview {
        scorecards: cards.into_values().collect(),
        recalls,
        lots_unattributed: unattributed,
    })
}

/// The org that stated the lot's earliest standing lineage edge.
fn producer(reader: &mut Reader<'_>, lot: &str) -> Result<Option<String>, StoreError> {
    let mut earliest = None;
    for end in [End::To, End::From] {
        for (at, edge) in reader.edges(lot, end)? {
            if earliest.as_ref().is_none_or(|(a, _)| at < *a) {
                earliest = Some((at, edge.origin.org.clone()));
            }
        }
    }
    Ok(earliest.map(|(_, org)| org))
}
