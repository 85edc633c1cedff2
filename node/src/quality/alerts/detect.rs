//! What fires when a block commits: the rules its records touch, judged on
//! the whole committed history as the alerting org may read it.
//!
//! - a measurement extends a control chart (a GTIN's characteristic): its
//!   run rules (each run of consecutive signalling points is one firing,
//!   keyed by its first point) and its EWMA and CUSUM first signals, with
//!   limits from a fixed baseline of the first [`BASELINE_POINTS`] points
//!   so that a point judged once is judged the same way later. That is
//!   what makes judging incremental: the follower keeps each chart's state
//!   ([`Charts`]: baseline mean and sigma, the last points the run rules
//!   look back on, the EWMA and CUSUM statistics) and judges only the
//!   points committed since the last one it judged, reading them from the
//!   series keyspace (`quality::series`). The state is rebuilt from the
//!   chain (the whole series up to the block judged, judged as a chart
//!   judges it) the first time a block touches the chart after a start,
//!   and after any block that retracts an event (a retraction can remove a
//!   point already judged); the firings are the same either way;
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
use crate::quality::series::{self, Measured, Range, SeriesError};
use crate::quality::spc::{self, CusumState, EwmaState, Rule};
use crate::quality::{ColdChainError, cold_chain};
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

/// What the follower keeps per chart between blocks, in memory: rebuilt
/// from the chain when missing (see the module doc).
#[derive(Clone, Debug, Default)]
pub struct Charts {
    charts: BTreeMap<(String, String), ChartState>,
}

impl Charts {
    /// Charts whose state is kept.
    pub fn len(&self) -> usize {
        self.charts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.charts.is_empty()
    }
}

/// Points the run rules look back on before the point judged (the
/// longest rule, eight on one side, spans eight points).
const LOOK_BACK: usize = 7;

/// One chart past its baseline, as judged up to `last`.
#[derive(Clone, Debug)]
struct ChartState {
    last: Position,
    mean: f64,
    sigma: f64,
    /// The last [`LOOK_BACK`] values, oldest first.
    window: Vec<f64>,
    /// The rules the last point completed (a run continuing is no new
    /// firing).
    last_rules: Vec<Rule>,
    ewma: EwmaState,
    ewma_fired: bool,
    cusum: CusumState,
    cusum_fired: bool,
    /// A measurement that is not a finite number: the chart refuses the
    /// series (`spc::analyse`), so nothing is judged on it.
    refused: bool,
}

/// What one block touches.
#[derive(Debug, Default)]
struct Touched {
    charts: BTreeMap<(String, String), ()>,
    /// The block retracts an event (judged charts may have lost a point).
    retracts: bool,
    logged: BTreeSet<String>,
    /// Lot -> the first record of the block that judged it.
    lots: BTreeMap<String, (AttestationId, Position)>,
}

/// What `block` touches, with the private fields this node opens restored
/// (`store::Opener`): a chart extended only by sealed measurements is
/// judged where they were indexed, and its points are read under the
/// alerting org's rights like every other.
fn touched(store: &StoreReader, block: &[Committed<'_>]) -> Touched {
    let mut out = Touched::default();
    for record in block {
        let opened = store.opened(&record.id, record.statement);
        let event = opened.as_deref().unwrap_or(&record.statement.event);
        if matches!(event.quality, Some(QualityFact::Alert { .. })) {
            continue;
        }
        let derived = lotline_core::lineage::derive(event);
        out.retracts |= derived.retracts.is_some();
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
/// `visibility` lets the alerting org see the chain up to `height`.
/// Updates `suppliers` and `charts`.
pub fn detect(
    store: &StoreReader,
    visibility: &dyn Visibility,
    block: &[Committed<'_>],
    height: u64,
    thresholds: Thresholds,
    suppliers: &mut BTreeMap<String, SupplierState>,
    charts: &mut Charts,
) -> Result<Vec<Firing>, DetectError> {
    let touched = touched(store, block);
    if touched.retracts {
        charts.charts.clear();
    }
    let mut out = Vec::new();
    let mut reader = Reader::new(store, visibility);
    for (gtin, characteristic) in touched.charts.keys() {
        out.extend(chart_firings(
            &mut reader,
            charts,
            gtin,
            characteristic,
            height,
        )?);
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

/// The firings of the points of one chart committed since the last one
/// judged, up to `height`.
fn chart_firings(
    reader: &mut Reader<'_>,
    charts: &mut Charts,
    gtin: &str,
    characteristic: &str,
    height: u64,
) -> Result<Vec<Firing>, DetectError> {
    let key = (gtin.to_owned(), characteristic.to_owned());
    let after = charts.charts.get(&key).map(|state| state.last);
    let range = Range {
        after,
        until: Some(height),
    };
    let points = match series::read_range(reader, gtin, characteristic, range) {
        Ok(points) => points,
        Err(SeriesError::Store(e)) => return Err(DetectError::Store(e)),
        // A characteristic name a chart cannot take, or a series too long
        // to chart: nothing to judge.
        Err(_) => return Ok(Vec::new()),
    };
    let judge = Judge {
        gtin,
        characteristic,
    };
    match charts.charts.get_mut(&key) {
        Some(state) => Ok(judge.extend(state, &points)),
        None => {
            let (firings, state) = judge.whole(&points);
            if let Some(state) = state {
                charts.charts.insert(key, state);
            }
            Ok(firings)
        }
    }
}

/// Judges one chart's points.
struct Judge<'a> {
    gtin: &'a str,
    characteristic: &'a str,
}

impl Judge<'_> {
    /// The whole series, as a chart with the fixed baseline judges it; and
    /// the state to judge later points by (none while the series is no
    /// longer than its baseline: it is read whole again next time).
    fn whole(&self, series: &[Measured]) -> (Vec<Firing>, Option<ChartState>) {
        let Some(last) = series.last() else {
            return (Vec::new(), None);
        };
        if series.len() <= BASELINE_POINTS {
            return (Vec::new(), None);
        }
        let points: Vec<spc::Point> = series.iter().map(|m| m.point.clone()).collect();
        let analysis = match spc::analyse(&points, BASELINE_POINTS) {
            Ok(analysis) => analysis,
            Err(_) => {
                let refused = ChartState {
                    last: last.at,
                    mean: 0.0,
                    sigma: 0.0,
                    window: Vec::new(),
                    last_rules: Vec::new(),
                    ewma: EwmaState::new(0.0, 0.0),
                    ewma_fired: true,
                    cusum: CusumState::new(0.0, 0.0),
                    cusum_fired: true,
                    refused: true,
                };
                return (Vec::new(), Some(refused));
            }
        };
        let violations = &analysis.individuals.violations;
        let mut out = Vec::new();
        for (index, rules) in violations.iter().enumerate() {
            let previous = index.checked_sub(1).map(|i| &violations[i]);
            out.extend(self.runs(rules, previous, &series[index]));
        }
        let (mean, sigma) = (analysis.baseline.mean, analysis.baseline.sigma);
        for (first, name) in [
            (analysis.ewma.first_signal, "ewma"),
            (analysis.cusum.first_signal, "cusum"),
        ] {
            if let Some(i) = first {
                out.push(self.drift(name, &series[i]));
            }
        }
        // The statistics as they stand after the last point.
        let mut ewma = EwmaState::new(mean, sigma);
        let mut cusum = CusumState::new(mean, sigma);
        for (i, m) in series.iter().enumerate() {
            let skipped = analysis.baseline.excluded.contains(&i);
            ewma.step(m.point.value, skipped);
            cusum.step(m.point.value, skipped);
        }
        let values: Vec<f64> = series.iter().map(|m| m.point.value).collect();
        let state = ChartState {
            last: last.at,
            mean,
            sigma,
            window: values[values.len() - LOOK_BACK..].to_vec(),
            last_rules: violations.last().cloned().unwrap_or_default(),
            ewma,
            ewma_fired: analysis.ewma.first_signal.is_some(),
            cusum,
            cusum_fired: analysis.cusum.first_signal.is_some(),
            refused: false,
        };
        (out, Some(state))
    }

    /// The points after the state's last, judged by its baseline (the
    /// same rules, statistics and firings as [`Judge::whole`] on the
    /// series they extend).
    fn extend(&self, state: &mut ChartState, points: &[Measured]) -> Vec<Firing> {
        let Some(last) = points.last() else {
            return Vec::new();
        };
        state.last = last.at;
        if state.refused || points.iter().any(|m| !m.point.value.is_finite()) {
            state.refused = true;
            return Vec::new();
        }
        let mut values = state.window.clone();
        values.extend(points.iter().map(|m| m.point.value));
        let rules = spc::run_rules(&values, state.mean, state.sigma);
        let mut out = Vec::new();
        let (mut ewma_drift, mut cusum_drift) = (None, None);
        for (j, measured) in points.iter().enumerate() {
            let i = state.window.len() + j;
            let previous = if j == 0 {
                &state.last_rules
            } else {
                &rules[i - 1]
            };
            out.extend(self.runs(&rules[i], Some(previous), measured));
            let ewma = state.ewma.step(measured.point.value, false);
            if !state.ewma_fired && ewma.signals {
                state.ewma_fired = true;
                ewma_drift = Some(self.drift("ewma", measured));
            }
            if state.cusum.step(measured.point.value, false) && !state.cusum_fired {
                state.cusum_fired = true;
                cusum_drift = Some(self.drift("cusum", measured));
            }
        }
        // Run rules first, then drift, as `whole` lists them.
        out.extend(ewma_drift);
        out.extend(cusum_drift);
        state.last_rules = rules.last().cloned().unwrap_or_default();
        state.window = values[values.len() - LOOK_BACK..].to_vec();
        out
    }

    /// The runs a point starts: each rule it completes that the point
    /// before did not.
    fn runs(&self, rules: &[Rule], previous: Option<&Vec<Rule>>, at: &Measured) -> Vec<Firing> {
        let (gtin, characteristic) = (self.gtin, self.characteristic);
        rules
            .iter()
            .filter(|rule| !previous.is_some_and(|p| p.contains(rule)))
            .map(|rule| {
                let name = rule_name(rule);
                Firing {
                    rule: AlertRule::RunRule,
                    key: format!("runRule|{gtin}|{characteristic}|{name}|{}", at.attestation),
                    subject: format!("{gtin} {characteristic}"),
                    summary: format!(
                        "{characteristic} of GTIN {gtin}: {name} from {} on",
                        at.subject
                    ),
                    trigger: at.attestation,
                    trigger_height: at.at.height,
                    identifiers: vec![at.subject.clone()],
                }
            })
            .collect()
    }

    fn drift(&self, name: &str, at: &Measured) -> Firing {
        let (gtin, characteristic) = (self.gtin, self.characteristic);
        let attestation = at.attestation;
        Firing {
            rule: AlertRule::Drift,
            key: format!("drift|{gtin}|{characteristic}|{name}|{attestation}"),
            subject: format!("{gtin} {characteristic}"),
            summary: format!(
                "{characteristic} of GTIN {gtin}: {} drift signal at {}, before any run rule needs it",
                name.to_uppercase(),
                at.subject
            ),
            trigger: attestation,
            trigger_height: at.at.height,
            identifiers: vec![at.subject.clone()],
        }
    }
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
