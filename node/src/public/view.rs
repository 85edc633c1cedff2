//! What the public may see: one [`Visibility`] (which records) and one
//! projection (which fields), and the consumer's view of a unit built from
//! them.
//!
//! This is the single seam for R19. The access layer maps the genesis read
//! policy's "public" rule onto [`PublicView`]; everything a consumer page, a
//! public JSON answer or a public proof bundle shows goes through
//! [`provenance`] and [`discloses_private`]. Left out on purpose: customer
//! identities (ship-to parties, current holders), prices and commercial
//! documents (`bizTransactionList`), and measurements of inspections marked
//! `private`.

use std::collections::{BTreeMap, BTreeSet};

use lotline_core::epcis::{InspectionResult, QualityFact, RecallClass, Severity};
use lotline_core::gs1::Identifier;
use lotline_core::lineage::EdgeKind;
use lotline_core::trace::{Direction, NodeKind, Source, Trace, TraceFact};
use lotline_core::{Statement, attestation::AttestationId};
use lotline_genesis::Genesis;
use serde::Serialize;

use crate::epcis::master_data;
use crate::store::StoreReader;
use crate::store::lineage::Origin;
use crate::trace::{self, TraceError, TraceRequest, Visibility};

/// The refrigerated range a cold-chain summary checks readings against
/// (°C, inclusive) when the product's master data states no storage
/// temperature range (`crate::epcis::master_data::storage_temperature`);
/// 2-8 °C is the common refrigerated range.
pub const COLD_CHAIN_RANGE_CEL: (f64, f64) = (2.0, 8.0);
/// How far a consumer view looks into the containers that held a unit
/// (item -> case -> pallet -> ...).
const CONTAINER_DEPTH: u32 = 4;

/// Records the consumer view is *derived* from: those stated by a member of
/// the consortium. The page shows only the projection built in
/// [`provenance`] (no parties, prices or private measurements); whole
/// records (receipts in the public proof bundle) are given out only when the
/// genesis read policy shows them to anonymous callers
/// (`crate::access::can_read`), so no endpoint reveals more of a record than
/// `GET /v1/attestations/{id}` would.
#[derive(Debug, Clone, Copy)]
pub struct PublicView<'g> {
    pub genesis: &'g Genesis,
}

impl Visibility for PublicView<'_> {
    fn can_see(&self, origin: &Origin) -> bool {
        self.genesis.org(&origin.org).is_some()
    }

    /// `can_see` judges by the org alone.
    fn reads_all_of(&self, org: &str) -> bool {
        self.genesis.org(org).is_some()
    }

    /// Anonymous callers never read private fields.
    fn can_see_private(&self, _origin: &Origin) -> bool {
        false
    }
}

/// True if a statement's payload holds something the public must not read
/// (so its full receipt may not go into a public proof bundle). The rule is
/// the read policy's ([`lotline_genesis::read_policy::publishable`]): one
/// definition of what the public never sees, for pages, bundles and the API.
pub fn discloses_private(statement: &Statement) -> bool {
    !lotline_genesis::read_policy::publishable(&statement.event)
}

/// The consumer's view of one unit (JSON at `/public/v1/provenance/...`,
/// HTML on the resolver page).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Provenance {
    pub id: String,
    pub kind: NodeKind,
    pub label: String,
    pub gtin: Option<String>,
    /// From the product's master data.
    pub product_name: Option<String>,
    pub brand: Option<String>,
    pub lot: Option<String>,
    pub serial: Option<String>,
    pub recall: Option<PublicRecall>,
    pub materials: Vec<Material>,
    pub steps: Vec<Step>,
    pub cold_chain: Option<ColdChain>,
    pub verified: Vec<Verifier>,
    /// Attestations the view rests on.
    pub attestations: Vec<Cited>,
    /// Records left out because an error declaration retracted them.
    pub corrections: usize,
    pub truncated: bool,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PublicRecall {
    pub recall_id: String,
    pub class: RecallClass,
    pub reason: String,
    /// The lot the order named (this unit or something it was made from).
    pub suspect: String,
    pub issued_by: String,
    pub time: String,
}

/// A raw material at the start of the unit's history.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Material {
    pub id: String,
    pub label: String,
    pub supplier: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum StepKind {
    Production,
    Serialisation,
    Packing,
    Inspection,
    NonConformance,
    Certificate,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Step {
    pub kind: StepKind,
    pub time: String,
    pub org: String,
    pub subject: String,
    /// Inputs of a production step, as labels.
    pub inputs: Vec<String>,
    pub result: Option<InspectionResult>,
    pub method: Option<String>,
    pub measurements: Vec<PublicMeasurement>,
    /// True when the inspection's measurements are private (R19).
    pub withheld: bool,
    pub detail: Option<String>,
    pub severity: Option<Severity>,
    pub height: u64,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PublicMeasurement {
    pub name: String,
    pub value: f64,
    pub uom: Option<String>,
    pub within_spec: bool,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ColdChain {
    pub readings: usize,
    pub min: f64,
    pub max: f64,
    pub range: (f64, f64),
    pub excursion: bool,
}

/// An organisation whose validators certified blocks the view rests on.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Verifier {
    pub org: String,
    pub name: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Cited {
    pub attestation: AttestationId,
    pub height: u64,
}

/// A short human label for an identifier ("GTIN 0950... lot R1").
pub fn label(id: &str) -> String {
    match Identifier::parse(id) {
        Ok(Identifier::Item { gtin, serial }) => format!("GTIN {gtin} · SN {serial}"),
        Ok(Identifier::Lot { gtin, lot }) => format!("GTIN {gtin} · LOT {lot}"),
        Ok(Identifier::Product { gtin }) => format!("GTIN {gtin}"),
        Ok(Identifier::Sscc(sscc)) => format!("SSCC {sscc}"),
        Ok(Identifier::Location { gln, .. }) => format!("GLN {gln}"),
        Ok(Identifier::Other(_)) | Err(_) => id.to_owned(),
    }
}

/// [`label`] preceded by the product's or place's master data name, when
/// its owner stated one ("Pasteurised milk 1 l · GTIN ... · LOT R1").
fn named_label(store: &StoreReader, id: &str) -> String {
    let key = master_data::product_class(id).unwrap_or_else(|| id.to_owned());
    match master_data::name(store, &key) {
        Ok(Some(name)) => format!("{name} · {}", label(id)),
        _ => label(id),
    }
}

/// `2026-03-02T08:00:00.000Z` -> `2026-03-02 08:00 UTC`.
fn short_time(t: &str) -> String {
    match (t.get(..10), t.get(11..16)) {
        (Some(day), Some(hm)) if t.ends_with('Z') => format!("{day} {hm} UTC"),
        (Some(day), Some(hm)) => format!("{day} {hm}"),
        _ => t.to_owned(),
    }
}

/// Builds the public view of `root` (any identifier form).
pub fn provenance(
    store: &StoreReader,
    genesis: &Genesis,
    root: &str,
) -> Result<Provenance, TraceError> {
    let visibility = PublicView { genesis };
    let backward = trace::trace(
        store,
        &TraceRequest {
            root: root.to_owned(),
            direction: Direction::Backward,
            depth: None,
            proofs: false,
        },
        &visibility,
    )?;
    let id = backward.root.clone();
    let kind = NodeKind::of(&id);
    // Sensor readings and packing are stated about the containers that held
    // an item, which lie forward of it.
    let containers = if matches!(kind, NodeKind::Item | NodeKind::Container) {
        Some(trace::trace(
            store,
            &TraceRequest {
                root: id.clone(),
                direction: Direction::Forward,
                depth: Some(CONTAINER_DEPTH),
                proofs: false,
            },
            &visibility,
        )?)
    } else {
        None
    };
    let org_name = |org: &str| {
        genesis
            .org(org)
            .map_or_else(|| org.to_owned(), |o| o.name.clone())
    };
    let mut cited: BTreeMap<AttestationId, u64> = BTreeMap::new();
    let mut cite = |s: &Source| {
        cited.insert(s.attestation, s.height);
    };

    let recall = backward
        .nodes
        .first()
        .and_then(|n| n.recalled.as_ref())
        .map(|mark| {
            cite(&mark.source);
            PublicRecall {
                recall_id: mark.recall_id.clone(),
                class: mark.class,
                reason: mark.reason.clone(),
                suspect: label(&mark.suspect),
                issued_by: org_name(&mark.source.org),
                time: short_time(&mark.source.event_time),
            }
        });

    let made: BTreeSet<&str> = backward
        .edges
        .iter()
        .filter(|e| e.kind.carries_material())
        .map(|e| e.to.as_str())
        .collect();
    let materials = backward
        .nodes
        .iter()
        .filter(|n| n.depth > 0 && n.kind == NodeKind::Lot && !made.contains(n.id.as_str()))
        .map(|n| {
            let first_fact = backward
                .facts
                .iter()
                .filter(|f| f.subject == n.id)
                .min_by(|a, b| a.source.event_time.cmp(&b.source.event_time));
            Material {
                id: n.id.clone(),
                label: named_label(store, &n.id),
                supplier: first_fact.map(|f| org_name(&f.source.org)),
            }
        })
        .collect();

    let mut steps = production_steps(&backward, &org_name, &mut cite);
    let mut facts: Vec<&TraceFact> = backward.facts.iter().collect();
    let mut container_ids = BTreeSet::new();
    if let Some(forward) = &containers {
        let mut held = BTreeSet::from([id.as_str()]);
        // Edges come in walk order, so a container is reached after its child.
        for edge in &forward.edges {
            if edge.kind == EdgeKind::PackedIn && held.contains(edge.from.as_str()) {
                held.insert(edge.to.as_str());
                container_ids.insert(edge.to.clone());
                cite(&edge.source);
                steps.push(Step::plain(
                    StepKind::Packing,
                    &edge.source,
                    org_name(&edge.source.org),
                    label(&edge.to),
                ));
            }
        }
        facts.extend(
            forward
                .facts
                .iter()
                .filter(|f| container_ids.contains(&f.subject)),
        );
    }

    let mut readings = Vec::new();
    for fact in &facts {
        for sensor in &fact.sensors {
            let celsius = sensor.uom.as_deref().is_none_or(|u| u == "CEL");
            if sensor.kind.ends_with("Temperature") && celsius {
                readings.extend(sensor.min);
                readings.extend(sensor.max);
                cite(&fact.source);
            }
        }
        if let Some(step) = quality_step(fact, &org_name) {
            cite(&fact.source);
            steps.push(step);
        }
    }
    steps.sort_by(|a, b| a.time.cmp(&b.time));
    let product = master_data::product(store, &id)?.unwrap_or_default();
    let range = product
        .storage_temperature
        .map(|t| {
            (
                t.min_celsius.unwrap_or(f64::NEG_INFINITY),
                t.max_celsius.unwrap_or(f64::INFINITY),
            )
        })
        .unwrap_or(COLD_CHAIN_RANGE_CEL);
    let cold_chain = cold_chain(&readings, range);

    let mut verified = Vec::new();
    let mut seen = BTreeSet::new();
    let heights: BTreeSet<u64> = cited.values().copied().collect();
    for height in heights {
        let Some(block) = store.block(height)? else {
            continue;
        };
        for signed in &block.finality.certificate.signatures {
            if let Some(org) = genesis.validator_org(signed.signer)
                && seen.insert(org.id.clone())
            {
                verified.push(Verifier {
                    org: org.id.clone(),
                    name: org.name.clone(),
                });
            }
        }
    }
    let (gtin, lot, serial) = match Identifier::parse(&id) {
        Ok(Identifier::Item { gtin, serial }) => (Some(gtin.to_string()), None, Some(serial)),
        Ok(Identifier::Lot { gtin, lot }) => (Some(gtin.to_string()), Some(lot), None),
        Ok(Identifier::Product { gtin }) => (Some(gtin.to_string()), None, None),
        _ => (None, None, None),
    };
    Ok(Provenance {
        label: label(&id),
        id,
        kind,
        gtin,
        product_name: product.name,
        brand: product.brand,
        lot: lot.or_else(|| serial_lot(&backward)),
        serial,
        recall,
        materials,
        steps,
        cold_chain,
        verified,
        attestations: cited
            .into_iter()
            .map(|(attestation, height)| Cited {
                attestation,
                height,
            })
            .collect(),
        corrections: backward.corrections.len(),
        truncated: backward.truncated,
    })
}

/// The lot an item was serialised from, if the trace shows it.
fn serial_lot(trace: &Trace) -> Option<String> {
    let edge = trace
        .edges
        .iter()
        .find(|e| e.kind == EdgeKind::Serialised && e.to == trace.root)?;
    match Identifier::parse(&edge.from) {
        Ok(Identifier::Lot { lot, .. }) => Some(lot),
        _ => None,
    }
}

/// One step per transformation or serialisation event.
fn production_steps(
    trace: &Trace,
    org_name: &dyn Fn(&str) -> String,
    cite: &mut dyn FnMut(&Source),
) -> Vec<Step> {
    let mut by_event: BTreeMap<(AttestationId, &str), Step> = BTreeMap::new();
    for edge in &trace.edges {
        let kind = match edge.kind {
            EdgeKind::TransformedInto => StepKind::Production,
            EdgeKind::Serialised => StepKind::Serialisation,
            _ => continue,
        };
        cite(&edge.source);
        let step = by_event
            .entry((edge.source.attestation, edge.to.as_str()))
            .or_insert_with(|| {
                Step::plain(
                    kind,
                    &edge.source,
                    org_name(&edge.source.org),
                    label(&edge.to),
                )
            });
        if kind == StepKind::Production {
            step.inputs.push(label(&edge.from));
        }
    }
    // Serialising many items from one lot is one step, not one per item.
    let mut steps: Vec<Step> = Vec::new();
    for step in by_event.into_values() {
        let repeat = step.kind == StepKind::Serialisation
            && steps
                .iter()
                .any(|s| s.kind == step.kind && s.height == step.height && s.time == step.time);
        if !repeat {
            steps.push(step);
        }
    }
    steps
}

/// The public projection of a quality fact: private measurements dropped.
fn quality_step(fact: &TraceFact, org_name: &dyn Fn(&str) -> String) -> Option<Step> {
    let mut step = Step::plain(
        StepKind::Inspection,
        &fact.source,
        org_name(&fact.source.org),
        label(&fact.subject),
    );
    match fact.quality.as_ref()? {
        QualityFact::Inspection {
            result,
            method,
            measurements,
            private,
            ..
        } => {
            step.result = Some(*result);
            step.method = method.clone();
            step.withheld = *private && !measurements.is_empty();
            if !private {
                step.measurements = measurements
                    .iter()
                    .map(|m| PublicMeasurement {
                        name: m.name.clone(),
                        value: m.value,
                        uom: m.uom.clone(),
                        within_spec: m.within_spec(),
                    })
                    .collect();
            }
        }
        QualityFact::NonConformance { code, severity, .. } => {
            step.kind = StepKind::NonConformance;
            step.detail = Some(code.clone());
            step.severity = Some(*severity);
        }
        QualityFact::Certificate {
            standard,
            issuer,
            valid_until,
            ..
        } => {
            step.kind = StepKind::Certificate;
            step.detail = Some(format!("{standard} · {issuer} · {valid_until}"));
        }
        // Alerts are internal warnings between members, not a consumer's
        // step.
        QualityFact::RecallOrder { .. }
        | QualityFact::Document { .. }
        | QualityFact::Alert { .. } => return None,
    }
    Some(step)
}

fn cold_chain(readings: &[f64], range: (f64, f64)) -> Option<ColdChain> {
    let min = readings.iter().copied().reduce(f64::min)?;
    let max = readings.iter().copied().reduce(f64::max)?;
    let (low, high) = range;
    Some(ColdChain {
        readings: readings.len(),
        min,
        max,
        range,
        excursion: min < low || max > high,
    })
}

impl Step {
    fn plain(kind: StepKind, source: &Source, org: String, subject: String) -> Step {
        Step {
            kind,
            time: short_time(&source.event_time),
            org,
            subject,
            inputs: Vec::new(),
            result: None,
            method: None,
            measurements: Vec::new(),
            withheld: false,
            detail: None,
            severity: None,
            height: source.height,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_times_are_short() {
        assert_eq!(
            label("https://id.gs1.org/01/09506000134352/10/R1"),
            "GTIN 09506000134352 · LOT R1"
        );
        assert_eq!(
            short_time("2026-03-02T08:05:00.000Z"),
            "2026-03-02 08:05 UTC"
        );
    }

    #[test]
    fn cold_chain_flags_a_reading_outside_the_range() {
        let r = COLD_CHAIN_RANGE_CEL;
        assert!(!cold_chain(&[2.5, 7.9], r).unwrap().excursion);
        assert!(cold_chain(&[4.0, 9.5], r).unwrap().excursion);
        assert!(cold_chain(&[1.9], r).unwrap().excursion);
        assert!(cold_chain(&[], r).is_none());
        // A product's own range (master data) replaces the default.
        assert!(!cold_chain(&[0.5, 6.0], (0.0, 6.5)).unwrap().excursion);
        assert!(cold_chain(&[7.0], (0.0, 6.5)).unwrap().excursion);
    }
}
