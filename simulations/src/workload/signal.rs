//! Planted quality signal: causes the analysis tools must find from the
//! data alone, and the truth about them, written aside for tests.
//!
//! A planted story ([`crate::SupplyChainWorkload::planted`]) is the plain
//! story of the same seed and scale plus four causes:
//!
//! - **a drifting supplier**: from a start campaign on, the elastomer
//!   plant's incoming-inspection Mooney viscosity climbs lot by lot while
//!   staying inside its specification (what EWMA and CUSUM are for);
//! - **a bad lot**: every unit gets an end-of-line functional test
//!   (`activationForce`), and the units made from one stopper lot (curing
//!   line 2 of one campaign) fail it far more often than the rest, which
//!   fail now and then (background noise, so the signal is statistical);
//! - **a slow excursion**: one retail shipment's logger records the truck
//!   warming slowly above the cold-chain limit for over an hour and cooling
//!   again (time above the limit, not one spike). The products' storage
//!   limits are stated in their finished lots' master data
//!   ([`STORAGE_CEL`]), and the truck carries the cold-kept one;
//! - **a rough carrier**: one of the delivery hauliers damages units on
//!   its retail deliveries (each unit [`BAD_CARRIER_DAMAGE`] of the time),
//!   the others now and then one unit; the store reports the damaged units
//!   on receipt (a non-conformance, recorded by the distributor).
//!
//! The causes draw from their own generator (seeded from the story's seed),
//! so the plain story's draws, and so its values, are unchanged; only the
//! added events shift later event ids. Nothing here is read by the
//! analysis code: the truth leaves through [`Truth::to_json`] only.
//!
//! What the data cannot tell apart it does not pretend to: the stopper lot
//! reaches exactly the units of its campaign, as every other lot made for
//! that campaign does, so a root-cause finding names the bad lot together
//! with the lots it is confounded with.

use serde_json::{Value, json};

use super::Scale;
use super::distribution::delivery_carrier;
use super::ids::{self, CARRIERS};
use crate::sim::rng::Rng;

/// Mixed into the seed for the signal's own generator.
const SIGNAL_SEED_SALT: u64 = 0x5157_414c_4954_5900;
/// Mixed into the seed to choose the rough carrier, the deliveries that
/// arrive damaged and the damaged units (a generator of their own, so the
/// other causes draw what they drew before the carrier was planted).
const CARRIER_SEED_SALT: u64 = 0x4341_5252_4945_5200;
const DAMAGE_SEED_SALT: u64 = 0x4441_4d41_4745_4400;

/// Each unit of the rough carrier's deliveries arrives damaged with this
/// probability (at least one unit per delivery).
pub(super) const BAD_CARRIER_DAMAGE: f64 = 0.4;
/// Percent of the other carriers' deliveries that arrive with one damaged
/// unit (background, so the signal is statistical).
const BACKGROUND_DAMAGE_PERCENT: u64 = 5;

/// Functional-test failure probability of units from the bad lot.
pub(super) const BAD_LOT_FAILURE: f64 = 0.35;
/// Functional-test failure probability of every other unit.
pub(super) const BACKGROUND_FAILURE: f64 = 0.02;
/// The functional test: name, uom, spec limits (N).
pub(super) const FUNCTIONAL_TEST: (&str, &str, f64, f64) = ("activationForce", "NEW", 2.0, 8.0);

/// Mooney viscosity of in-control elastomer lots: mean and spread.
const DRIFT_BASE: (f64, f64) = (45.0, 0.6);
/// How much the mean climbs per drifting lot; capped below the spec max.
const DRIFT_STEP: f64 = 0.5;
const DRIFT_CAP: f64 = 50.0;

/// Logger readings of the slow excursion, ten minutes apart.
pub(super) const EXCURSION_READINGS: u32 = 19;
pub(super) const EXCURSION_INTERVAL_MINUTES: u64 = 10;
/// Peak temperature above the ambient start, degrees Celsius.
const EXCURSION_BASE_CEL: f64 = 5.0;
const EXCURSION_RISE_CEL: f64 = 5.2;

/// Storage limits (min, max CEL) of the two products, stated in their
/// finished lots' master data: the 1 mL product is kept cold, the 0.5 mL
/// one is stable at room temperature (so its cold-room readings are no
/// excursions).
pub(super) const STORAGE_CEL: [(f64, f64); 2] = [(2.0, 8.0), (2.0, 25.0)];
pub(super) const ILMD_MIN_CEL: &str = "lotline:storageTemperatureMinCel";
pub(super) const ILMD_MAX_CEL: &str = "lotline:storageTemperatureMaxCel";

/// Events a planted story adds to the plain one: one functional test per
/// unit, one logger event and one damage report per delivery that arrives
/// damaged.
pub(super) fn extra_events(seed: u64, scale: Scale) -> u64 {
    let mut damaged = 0;
    for campaign in 0..scale.campaigns {
        for order in 0..scale.orders_per_campaign() {
            let carrier = delivery_carrier(seed, campaign, order);
            damaged += u64::from(arrives_damaged(seed, campaign, order, carrier));
        }
    }
    u64::from(scale.campaigns) * scale.units_per_campaign() + 1 + damaged
}

/// The rough carrier of the story of `seed`: one of the delivery carriers.
pub(super) fn bad_carrier(seed: u64) -> u32 {
    1 + ids::pick(seed ^ CARRIER_SEED_SALT, 0, u64::from(CARRIERS - 1)) as u32
}

/// True when retail delivery `order` of `campaign`, by `carrier`, arrives
/// with damaged units: every delivery of the rough carrier, and
/// [`BACKGROUND_DAMAGE_PERCENT`] of the others. A pure function, so the
/// story's length is known before it is told.
pub(super) fn arrives_damaged(seed: u64, campaign: u32, order: u64, carrier: u32) -> bool {
    carrier == bad_carrier(seed)
        || ids::pick(
            seed ^ DAMAGE_SEED_SALT,
            (u64::from(campaign) << 32) | order,
            100,
        ) < BACKGROUND_DAMAGE_PERCENT
}

/// The planted causes of one story and what they produced so far.
#[derive(Debug)]
pub(super) struct Signal {
    rng: Rng,
    /// The campaign whose line-2 stopper lot is bad.
    pub bad_campaign: u32,
    /// The first campaign whose elastomer lot has drifted.
    pub drift_campaign: u32,
    /// The campaign whose first retail shipment warms up.
    pub excursion_campaign: u32,
    /// Draws which units of a damaged delivery are damaged.
    damage: Rng,
    pub truth: Truth,
}

/// What was planted: the identifiers the tools should name.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Truth {
    pub seed: u64,
    /// The bad lot (canonical Digital Link).
    pub cause: String,
    /// Units whose functional test failed (canonical), in story order.
    pub bad: Vec<String>,
    /// Units made from the bad lot (canonical), failing or not.
    pub exposed: Vec<String>,
    /// The drifting material: its GTIN, characteristic and supplier plant.
    pub drift_gtin: String,
    pub drift_characteristic: String,
    pub drift_supplier: String,
    /// The first drifted lot (canonical); later lots of the material
    /// drift further.
    pub drift_first_lot: String,
    /// The logger event of the slow excursion and the containers it covers.
    pub excursion_event_id: String,
    pub excursion_subjects: Vec<String>,
    pub excursion_limit_cel: f64,
    pub excursion_minutes_above: u64,
    pub excursion_peak_cel: f64,
    /// The rough carrier (its party, canonical) and the units reported
    /// damaged on receipt (canonical, in story order; the other carriers'
    /// odd damaged unit among them).
    pub carrier: String,
    pub carrier_bad: Vec<String>,
}

impl Truth {
    /// The truth file: `cause` and `bad` as `workload --truth` promises,
    /// the other two causes beside them.
    pub fn to_json(&self) -> Value {
        json!({
            "seed": self.seed,
            "cause": self.cause,
            "bad": self.bad,
            "exposed": self.exposed,
            "drift": {
                "gtin": self.drift_gtin,
                "characteristic": self.drift_characteristic,
                "supplier": self.drift_supplier,
                "firstLot": self.drift_first_lot,
            },
            "excursion": {
                "eventId": self.excursion_event_id,
                "subjects": self.excursion_subjects,
                "limitCel": self.excursion_limit_cel,
                "minutesAbove": self.excursion_minutes_above,
                "peakCel": self.excursion_peak_cel,
            },
            "carrier": {
                "party": self.carrier,
                "bad": self.carrier_bad,
            },
        })
    }
}

impl Signal {
    pub fn new(seed: u64, scale: Scale) -> Signal {
        let mut rng = Rng::new(seed ^ SIGNAL_SEED_SALT);
        let campaigns = scale.campaigns.max(1);
        // Campaigns alternate between two products; the bad lot's product
        // must have another campaign, or no unit of it is good to compare.
        let candidates: Vec<u32> = (0..campaigns)
            .filter(|c| c + 2 < campaigns || *c >= 2)
            .collect();
        let bad_campaign = if candidates.is_empty() {
            0
        } else {
            candidates[rng.below(candidates.len() as u64) as usize]
        };
        // Drift in the second half, so the first half is a clean baseline.
        let drift_campaign = campaigns / 2;
        // The truck warms up with the cold-kept product (even campaigns).
        let excursion_campaign = 2 * rng.below(u64::from(campaigns.div_ceil(2))) as u32;
        Signal {
            rng,
            bad_campaign,
            drift_campaign,
            excursion_campaign,
            damage: Rng::new(seed ^ DAMAGE_SEED_SALT),
            truth: Truth {
                seed,
                carrier: ids::canonical(&ids::carrier(bad_carrier(seed)).party),
                ..Truth::default()
            },
        }
    }

    /// The units of a delivery by `carrier` that arrives damaged: each
    /// with [`BAD_CARRIER_DAMAGE`] for the rough carrier (at least one),
    /// one for any other. Recorded in the truth.
    pub fn damaged(&mut self, carrier: u32, delivered: &[String]) -> Vec<String> {
        let mut out: Vec<String> = if carrier == bad_carrier(self.truth.seed) {
            delivered
                .iter()
                .filter(|_| self.damage.chance(BAD_CARRIER_DAMAGE))
                .cloned()
                .collect()
        } else {
            Vec::new()
        };
        if out.is_empty() && !delivered.is_empty() {
            let one = self.damage.below(delivered.len() as u64) as usize;
            out.extend(delivered.get(one).cloned());
        }
        self.truth
            .carrier_bad
            .extend(out.iter().map(|unit| ids::canonical(unit)));
        out
    }

    /// Standard normal, from twelve uniforms (Irwin-Hall): no libm needed,
    /// and tails beyond 6 sigma never occur, which a story wants.
    pub fn normal(&mut self) -> f64 {
        (0..12).map(|_| self.unit()).sum::<f64>() - 6.0
    }

    pub fn unit(&mut self) -> f64 {
        (self.rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn chance(&mut self, p: f64) -> bool {
        self.rng.chance(p)
    }

    /// The incoming Mooney viscosity of the elastomer lot delivered for
    /// `campaign`: in control before the drift, then climbing.
    pub fn drifted_viscosity(&mut self, campaign: u32) -> f64 {
        let climbed = campaign
            .checked_sub(self.drift_campaign)
            .map_or(0.0, |k| DRIFT_STEP * f64::from(k + 1));
        let mean = (DRIFT_BASE.0 + climbed).min(DRIFT_CAP);
        (mean + DRIFT_BASE.1 * self.normal()).min(DRIFT_CAP + 0.8)
    }

    /// The logger profile of the slow excursion: a half sine from the base
    /// up by the rise and back, with a little noise; one value per reading.
    pub fn excursion_profile(&mut self) -> Vec<f64> {
        let last = f64::from(EXCURSION_READINGS - 1);
        (0..EXCURSION_READINGS)
            .map(|k| {
                let phase = std::f64::consts::PI * f64::from(k) / last;
                let noise = 0.3 * (self.unit() - 0.5);
                EXCURSION_BASE_CEL + EXCURSION_RISE_CEL * phase.sin() + noise
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use lotline_core::epcis::{EventType, QualityFact};

    use crate::workload::{Roles, Scale, SupplyChainWorkload, WorkItem};

    fn planted(seed: u64, scale: Scale) -> (Vec<WorkItem>, super::Truth) {
        let mut stream = SupplyChainWorkload::planted(seed, scale, &Roles::demo());
        let items: Vec<WorkItem> = stream.by_ref().collect();
        let truth = stream.truth().cloned().unwrap_or_default();
        (items, truth)
    }

    #[test]
    fn a_planted_story_is_the_plain_story_plus_its_causes() {
        // Goal: planting changes nothing a plain-story user relies on.
        // Method: the plain story's events, minus ids and times, appear in
        // the planted one in the same order, except the elastomer incoming
        // inspections, whose values the drift replaces.
        let scale = Scale::small();
        let plain = SupplyChainWorkload::generate(7, scale);
        let (items, _) = planted(7, scale);
        assert_eq!(
            items.len() as u64,
            scale.event_count() + super::extra_events(7, scale)
        );
        let shape = |w: &WorkItem| {
            let e = &w.event;
            (
                w.org.clone(),
                e.event_type,
                e.biz_step.clone(),
                e.epc_list.clone(),
                e.quantity_list.clone(),
                e.child_epcs.clone(),
                e.output_epc_list.clone(),
            )
        };
        let added = |w: &WorkItem| {
            matches!(w.event.biz_step.as_deref(), Some("transporting"))
                || w.event.disposition.as_deref() == Some("damaged")
                || matches!(&w.event.quality, Some(QualityFact::Inspection { method: Some(m), .. }) if m == "end-of-line functional test")
        };
        let planted_shapes: Vec<_> = items.iter().filter(|w| !added(w)).map(shape).collect();
        let plain_shapes: Vec<_> = plain.iter().map(shape).collect();
        assert_eq!(planted_shapes, plain_shapes);
        // The plain story itself is untouched by the planting code.
        assert_eq!(plain, SupplyChainWorkload::generate(7, scale));
    }

    #[test]
    fn the_truth_names_what_the_story_holds() {
        // Goal: the truth file is about identifiers that exist, and the
        // causes are strong enough to be found. Method: for several seeds,
        // check every named identifier against the events.
        for seed in [1, 2, 3, 42] {
            let (items, truth) = planted(seed, Scale::small());
            assert!(
                items.iter().all(|w| w.event.validate().is_empty()),
                "seed {seed}"
            );
            let mut ids = BTreeSet::new();
            for w in &items {
                ids.extend(w.event.identifiers().map(lotline_core::lineage::canonical));
            }
            assert!(ids.contains(&truth.cause), "seed {seed}: {}", truth.cause);
            assert!(ids.contains(&truth.drift_first_lot), "seed {seed}");
            assert!(!truth.bad.is_empty() && !truth.exposed.is_empty());
            assert!(truth.bad.iter().all(|u| ids.contains(u)));
            let exposed: BTreeSet<&String> = truth.exposed.iter().collect();
            let bad_exposed = truth.bad.iter().filter(|u| exposed.contains(u)).count();
            // Most bad units come from the bad lot.
            assert!(2 * bad_exposed > truth.bad.len(), "seed {seed}: {truth:?}");
            assert!(truth.excursion_minutes_above >= 60, "{truth:?}");
            assert!(truth.excursion_peak_cel > truth.excursion_limit_cel);
            let logger = items
                .iter()
                .find(|w| w.event.event_id.as_deref() == Some(&truth.excursion_event_id))
                .map(|w| w.event.event_type);
            assert_eq!(logger, Some(EventType::ObjectEvent));
            // The rough carrier carries deliveries, and the units reported
            // damaged are units it carried, but for a few.
            let carried = carried_by(&items, &truth.carrier);
            assert!(!carried.is_empty(), "seed {seed}: {}", truth.carrier);
            assert!(truth.carrier_bad.iter().all(|u| ids.contains(u)));
            let by_it = truth
                .carrier_bad
                .iter()
                .filter(|u| carried.contains(*u))
                .count();
            assert!(
                4 * by_it > 3 * truth.carrier_bad.len() && by_it < carried.len(),
                "seed {seed}: {by_it} of {} damaged units by {}, which carried {}",
                truth.carrier_bad.len(),
                truth.carrier,
                carried.len()
            );
        }
    }

    /// The units inside the cases a despatch names `carrier` on (as the
    /// possessing party of its destination list), from the events alone.
    fn carried_by(items: &[WorkItem], carrier: &str) -> BTreeSet<String> {
        let mut inside: std::collections::BTreeMap<String, Vec<String>> = Default::default();
        let mut out = BTreeSet::new();
        for w in items {
            let e = &w.event;
            if e.event_type == EventType::AggregationEvent
                && let Some(parent) = &e.parent_id
            {
                inside
                    .entry(lotline_core::lineage::canonical(parent))
                    .or_default()
                    .extend(
                        e.child_epcs
                            .iter()
                            .map(|c| lotline_core::lineage::canonical(c)),
                    );
            }
            if lotline_core::lineage::carrier(e).as_deref() == Some(carrier) {
                for case in &e.epc_list {
                    for unit in inside
                        .get(&lotline_core::lineage::canonical(case))
                        .into_iter()
                        .flatten()
                    {
                        out.insert(unit.clone());
                    }
                }
            }
        }
        out
    }

    #[test]
    fn the_cold_kept_product_has_the_story_limit() {
        assert_eq!(super::STORAGE_CEL[0].1, crate::workload::COLD_CHAIN_MAX_CEL);
    }

    #[test]
    fn the_same_seed_plants_the_same_truth() {
        let (a, ta) = planted(9, Scale::demo());
        let (b, tb) = planted(9, Scale::demo());
        assert_eq!(a, b);
        assert_eq!(ta, tb);
        let (_, other) = planted(10, Scale::demo());
        assert_ne!(ta.bad, other.bad);
    }
}
