//! What fires when a block commits: the rules its records touch, judged on
//! the whole committed history as the alerting org may read it.
//!
//! - a measurement extends a control chart (a GTIN's characteristic): its
//!   run rules (each run of consecutive signalling points is one firing,
//!   keyed by its first point) and its EWMA and CUSUM first signals, with
//!   limits from a fixed baseline of the first [`BASELINE_POINTS`] points
//!   so that a point judged once is judged the same way later;
//! - a logger record: the cold chain of what it logged, by its products'
//!   limits (`quality::cold_chain`); each excursion is one firing, keyed by
//!   the logged subject and the excursion's start;
//! - an inspection or non-conformance of a lot: the lot's supplier (the org
//!   that certified the lot) gets its lots judged again; when the share of
//!   its non-conforming lots rises above the node's threshold (with enough
//!   lots judged), that crossing is one firing.

use std::collections::{BTreeMap, BTreeSet};

use lotline_core::attestation::AttestationId;
use lotline_core::epcis::{AlertRule, InspectionResult, QualityFact};
use lotline_core::gs1::Identifier;
use lotline_core::statement::Statement;
use serde::{Deserialize, Serialize};

use super::Firing;
use crate::quality::{ChartError, ChartRequest, ColdChainError, chart, cold_chain};
use crate::store::index::Position;
use crate::store::{StoreError, StoreReader};
use crate::trace::{Reader, Visibility};

/// Baseline points of the charts alerts judge by; a chart with no more
/// points than this raises nothing yet.
pub const BASELINE_POINTS: usize = 25;
/// Charts, logged subjects and lots one block may ask to be judged; the
/// rest wait for a later block that touches them (bounds a block's work).
pub const TOUCHED_MAX: usize = 256;

/// The supplier rule's thresholds (`[alerts]` in the node config).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Thresholds {
    pub supplier_nc_rate_max: f64,
    pub supplier_lots_min: u32,
}

/// What the follower carries from block to block (persisted with its
/// position): per supplier, the lots judged and the non-conforming ones.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SupplierState {
    pub judged: BTreeSet<String>,
    pub failed: BTreeSet<String>,
    /// Above the threshold at the last judgement.
    pub over: bool,
    /// Times the rate rose above the threshold (numbers the firings).
    pub crossings: u32,
}

/// One committed record of the block being judged.
#[derive(Debug)]
pub struct Committed<'a> {
    pub id: AttestationId,
    pub at: Position,
    pub statement: &'a Statement,
}

/// What one block touches.
#[derive(Debug, Default)]
struct Touched {
    charts: BTreeMap<(String, String), ()>,
    logged: BTreeSet<String>,
    /// Lot -> the first record of the block that judged it.
    lots: BTreeMap<String, (AttestationId, Position)>,
}

fn touched(block: &[Committed<'_>]) -> Touched {
    let mut out = Touched::default();
    for record in block {
        let event = &record.statement.event;
        if matches!(event.quality, Some(QualityFact::Alert { .. })) {
            continue;
        }
        let derived = lotline_core::lineage::derive(event);
        for fact in &derived.facts {
            for subject in &fact.subjects {
                if !fact.sensors.is_empty() && out.logged.len() < TOUCHED_MAX {
                    out.logged.insert(subject.clone());
                }
                let parsed = Identifier::parse(subject);
                if let Some(QualityFact::Inspection { measurements, .. }) = &fact.quality
                    && let Ok(Identifier::Item { gtin, .. } | Identifier::Lot { gtin, .. }) =
                        &parsed
                {
                    for m in measurements {
                        if out.charts.len() < TOUCHED_MAX {
                            out.charts
                                .insert((gtin.as_str().to_owned(), m.name.clone()), ());
                        }
                    }
                }
                let judges = matches!(
                    fact.quality,
                    Some(QualityFact::Inspection { .. } | QualityFact::NonConformance { .. })
                );
                if judges
                    && matches!(parsed, Ok(Identifier::Lot { .. }))
                    && out.lots.len() < TOUCHED_MAX
                {
                    out.lots
                        .entry(subject.clone())
                        .or_insert((record.id, record.at));
                }
            }
        }
    }
    out
}

#[derive(Debug, thiserror::Error)]
pub enum DetectError {
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Everything that fires on `block` (committed at `height`), as
/// `visibility` lets the alerting org see the chain. Updates `suppliers`.
pub fn detect(
    store: &StoreReader,
    visibility: &dyn Visibility,
    block: &[Committed<'_>],
    height: u64,
    thresholds: Thresholds,
    suppliers: &mut BTreeMap<String, SupplierState>,
) -> Result<Vec<Firing>, DetectError> {
    let touched = touched(block);
    let mut out = Vec::new();
    for (gtin, characteristic) in touched.charts.keys() {
        out.extend(chart_firings(store, visibility, gtin, characteristic)?);
    }
    for subject in &touched.logged {
        out.extend(excursion_firings(store, visibility, subject)?);
    }
    out.extend(supplier_firings(
        store,
        visibility,
        &touched.lots,
        height,
        thresholds,
        suppliers,
    )?);
    Ok(out)
}

fn chart_firings(
    store: &StoreReader,
    visibility: &dyn Visibility,
    gtin: &str,
    characteristic: &str,
) -> Result<Vec<Firing>, DetectError> {
    let request = ChartRequest {
        gtin: gtin.to_owned(),
        characteristic: characteristic.to_owned(),
        baseline: Some(BASELINE_POINTS),
        points: Some(1),
        subgroup: Default::default(),
    };
    let chart = match chart(store, &request, visibility) {
        Ok(chart) if chart.count > BASELINE_POINTS => chart,
        Err(ChartError::Series(crate::quality::SeriesError::Store(e))) => {
            return Err(DetectError::Store(e));
        }
        // Too few points yet, nothing visible, or a characteristic name a
        // chart cannot take: nothing to judge.
        Ok(_) | Err(_) => return Ok(Vec::new()),
    };
    let mut out = Vec::new();
    let by_index: BTreeMap<usize, &crate::quality::Signal> =
        chart.signals.iter().map(|s| (s.index, s)).collect();
    for signal in &chart.signals {
        for rule in &signal.rules {
            // A run of consecutive points breaking one rule is one firing.
            let continues = signal
                .index
                .checked_sub(1)
                .and_then(|i| by_index.get(&i))
                .is_some_and(|previous| previous.rules.contains(rule));
            if continues {
                continue;
            }
            let name = rule_name(rule);
            out.push(Firing {
                rule: AlertRule::RunRule,
                key: format!(
                    "runRule|{gtin}|{characteristic}|{name}|{}",
                    signal.attestation
                ),
                subject: format!("{gtin} {characteristic}"),
                summary: format!(
                    "{characteristic} of GTIN {gtin}: {name} from {} on",
                    signal.subject
                ),
                trigger: signal.attestation,
                trigger_height: signal.height,
                identifiers: vec![signal.subject.clone()],
            });
        }
    }
    for (detector, name) in [(&chart.ewma, "ewma"), (&chart.cusum, "cusum")] {
        let (Some(attestation), Some(height), Some(subject)) =
            (detector.attestation, detector.height, &detector.subject)
        else {
            continue;
        };
        out.push(Firing {
            rule: AlertRule::Drift,
            key: format!("drift|{gtin}|{characteristic}|{name}|{attestation}"),
            subject: format!("{gtin} {characteristic}"),
            summary: format!(
                "{characteristic} of GTIN {gtin}: {} drift signal at {subject}, before any run rule needs it",
                name.to_uppercase()
            ),
            trigger: attestation,
            trigger_height: height,
            identifiers: vec![subject.clone()],
        });
    }
    Ok(out)
}

fn rule_name(rule: &crate::quality::spc::Rule) -> String {
    serde_json::to_value(rule)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| format!("{rule:?}"))
}

fn excursion_firings(
    store: &StoreReader,
    visibility: &dyn Visibility,
    subject: &str,
) -> Result<Vec<Firing>, DetectError> {
    let chain = match cold_chain(store, subject, visibility) {
        Ok(chain) => chain,
        // Nothing states the product's limits, or the subject is not
        // traceable: there is nothing to judge by, never a default.
        Err(ColdChainError::Trace(crate::trace::TraceError::Store(e))) => {
            return Err(DetectError::Store(e));
        }
        Err(ColdChainError::NoLimits(_) | ColdChainError::Trace(_) | ColdChainError::TooMany) => {
            return Ok(Vec::new());
        }
    };
    let mut out = Vec::new();
    for logged in &chain.excursions {
        let excursion = &logged.excursion;
        let side = match excursion.side {
            crate::quality::excursion::Side::Above => "above",
            crate::quality::excursion::Side::Below => "below",
        };
        out.push(Firing {
            rule: AlertRule::Excursion,
            key: format!("excursion|{}|{}|{side}", logged.subject, logged.start),
            subject: logged.subject.clone(),
            summary: format!(
                "{}: temperature {side} the {} CEL limit from {}",
                logged.subject, excursion.limit, logged.start
            ),
            trigger: logged.attestation,
            trigger_height: logged.height,
            identifiers: vec![logged.subject.clone()],
        });
    }
    Ok(out)
}

/// The lot's supplier and whether the lot was judged and found
/// non-conforming, from its visible, standing facts.
fn judge_lot(
    reader: &mut Reader<'_>,
    lot: &str,
) -> Result<(Option<String>, bool, bool), StoreError> {
    let origins = reader.origins.clone();
    let (mut supplier, mut judged, mut failed) = (None, false, false);
    for (at, fact) in reader.store.facts(lot, &origins)? {
        if !reader.stands(at, &fact.origin)? {
            continue;
        }
        match &fact.quality {
            Some(QualityFact::Certificate { .. }) => {
                supplier.get_or_insert_with(|| fact.origin.org.clone());
            }
            Some(QualityFact::Inspection { result, .. }) => {
                judged = true;
                failed |= *result == InspectionResult::Fail;
            }
            Some(QualityFact::NonConformance { .. }) => {
                judged = true;
                failed = true;
            }
            _ => {}
        }
    }
    Ok((supplier, judged, failed))
}

fn supplier_firings(
    store: &StoreReader,
    visibility: &dyn Visibility,
    lots: &BTreeMap<String, (AttestationId, Position)>,
    height: u64,
    thresholds: Thresholds,
    suppliers: &mut BTreeMap<String, SupplierState>,
) -> Result<Vec<Firing>, DetectError> {
    let mut reader = Reader::new(store, visibility);
    // Supplier -> the first record of this block that judged one of its lots.
    let mut changed: BTreeMap<String, (AttestationId, String)> = BTreeMap::new();
    for (lot, (id, _)) in lots {
        let (Some(supplier), judged, failed) = judge_lot(&mut reader, lot)? else {
            continue;
        };
        let state = suppliers.entry(supplier.clone()).or_default();
        if judged {
            state.judged.insert(lot.clone());
        }
        if failed {
            state.failed.insert(lot.clone());
        } else {
            state.failed.remove(lot);
        }
        changed.entry(supplier).or_insert((*id, lot.clone()));
    }
    let mut out = Vec::new();
    for (supplier, (trigger, lot)) in changed {
        let Some(state) = suppliers.get_mut(&supplier) else {
            continue;
        };
        let judged = state.judged.len();
        let failed = state.failed.len();
        let rate = failed as f64 / judged.max(1) as f64;
        let enough = judged >= thresholds.supplier_lots_min as usize;
        let over = enough && rate > thresholds.supplier_nc_rate_max;
        if over && !state.over {
            state.crossings = state.crossings.saturating_add(1);
            out.push(Firing {
                rule: AlertRule::SupplierNonConformance,
                key: format!("supplierNonConformance|{supplier}|{}", state.crossings),
                subject: supplier.clone(),
                summary: format!(
                    "supplier {supplier}: {failed} of {judged} judged lots non-conforming, above {}%",
                    thresholds.supplier_nc_rate_max * 100.0
                ),
                trigger,
                trigger_height: height,
                identifiers: vec![lot],
            });
        }
        state.over = over;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_names_are_the_api_names() {
        assert_eq!(
            rule_name(&crate::quality::spc::Rule::BeyondThreeSigma),
            "beyondThreeSigma"
        );
    }
}
