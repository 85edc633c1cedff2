//! One production campaign at the manufacturer: five transformation levels
//! with in-process inspections, then serialisation and packing.
//!
//! ```text
//! level 1  mixing       elastomer + filler + cure agent -> compound A, compound B
//!          formulating  drug substance + excipient      -> bulk solution
//! level 2  forming      compound A                      -> sheets 1, 2
//!                       compound A + compound B         -> sheet 3
//! level 3  curing       sheets 1 + 2 -> stoppers 1;  sheet 3 -> stoppers 2
//! level 4  filling      bulk + barrels + stoppers n     -> filled syringes n
//! level 5  assembly     filled 1 + filled 2 + plunger rods -> finished lot
//! serialisation (per pallet)  finished lot -> SGTIN units
//! packing                      units -> cases (SSCC) -> pallet (SSCC)
//! ```
//!
//! Inputs are shared by several outputs (compound A, the bulk, the barrels)
//! and outputs consume several inputs, so each campaign is a DAG whose
//! longest path, elastomer to unit, crosses six TransformationEvents.

use lotline_core::epcis::{
    Action, ErrorDeclaration, EventType, NonConformanceHandling, QualityFact, Severity,
};

use super::build::{self, measurement, round2, round3};
use super::ids::{self, MANUFACTURER_PREFIX};
use super::materials::Material;
use super::signal::{BACKGROUND_FAILURE, BAD_LOT_FAILURE, FUNCTIONAL_TEST};
use super::story::{Level, LotRef, Output, Story};

/// Bulk solution per unit, litres (fill volume plus line losses).
const LITRES_PER_UNIT: f64 = 0.001_1;

/// A packed pallet: its SSCC and its cases (SSCC and units; one campaign's
/// pallets are held at a time, for the retail deliveries and the spot
/// check).
#[derive(Clone, Debug)]
pub(super) struct Pallet {
    pub sscc: String,
    pub cases: Vec<(String, Vec<String>)>,
}

/// An in-process test: one measurement against its specification.
#[derive(Clone, Copy, Debug)]
struct Test {
    name: &'static str,
    uom: Option<&'static str>,
    spec: (f64, f64),
}

const MOONEY: Test = Test {
    name: "mooneyViscosityML1+4",
    uom: None,
    spec: (35.0, 45.0),
};
const ASSAY: Test = Test {
    name: "assay",
    uom: Some("P1"),
    spec: (95.0, 105.0),
};
const THICKNESS: Test = Test {
    name: "sheetThickness",
    uom: Some("MMT"),
    spec: (1.9, 2.1),
};
const HARDNESS: Test = Test {
    name: "hardnessShoreA",
    uom: None,
    spec: (45.0, 55.0),
};

/// What one campaign makes.
#[derive(Clone, Copy, Debug)]
struct Plan {
    campaign: u32,
    units: f64,
}

/// The fill volume test of the campaign's product (1 mL or 0.5 mL).
fn fill_volume(campaign: u32) -> Test {
    let spec = if campaign.is_multiple_of(2) {
        (1.00, 1.05)
    } else {
        (0.50, 0.53)
    };
    Test {
        name: "fillVolume",
        uom: Some("MLT"),
        spec,
    }
}

/// The campaign in which the stoppers of curing line 2 fail hardness.
fn nonconforming_campaign(campaigns: u32) -> u32 {
    campaigns.min(2) - 1
}

impl Story {
    /// Levels 1 to 5 of campaign `campaign`; returns the finished lot.
    pub(super) fn produce(&mut self, campaign: u32) -> LotRef {
        let raw = Material::ALL.map(|m| {
            self.stock
                .get(&m)
                .map_or_else(|| LotRef::raw("urn:lotline:missing"), |r| r.lot.clone())
        });
        let plan = Plan {
            campaign,
            units: self.scale.units_per_campaign() as f64,
        };
        let [elastomer, filler, cure, drug, excipient, barrels, rods] = &raw;
        let compounds = self.mix(&plan, [elastomer, filler, cure]);
        let bulk = self.formulate(&plan, drug, excipient);
        let sheets = self.form(&plan, &compounds);
        let stoppers = self.cure(&plan, &sheets);
        let filled = self.fill(&plan, &bulk, barrels, &stoppers);
        self.assemble(&plan, &filled, rods)
    }

    /// Level 1: two compound batches from the same three raw lots.
    fn mix(&mut self, plan: &Plan, raw: [&LotRef; 3]) -> [LotRef; 2] {
        let amounts = [Material::Elastomer, Material::Filler, Material::CureAgent]
            .map(|m| round3(m.spec().use_per_unit * plan.units / 2.0));
        let inputs: Vec<(&LotRef, f64, &str)> = raw
            .iter()
            .zip(amounts)
            .map(|(lot, kg)| (*lot, kg, "KGM"))
            .collect();
        let compound_kg = round3(amounts.iter().sum::<f64>());
        let output = self.wip(0, "CMP", plan.campaign, "A", compound_kg, Some("KGM"));
        let [a] = self.level(Level::Mixing, plan.campaign, &inputs, output);
        let output = self.wip(0, "CMP", plan.campaign, "B", compound_kg, Some("KGM"));
        let [b] = self.level(Level::Mixing, plan.campaign, &inputs, output);
        self.compound_inspections(plan.campaign, &a, &b);
        [a, b]
    }

    /// Level 1, the other branch: the bulk drug solution.
    fn formulate(&mut self, plan: &Plan, drug: &LotRef, excipient: &LotRef) -> LotRef {
        let kilos = |m: Material| round3(m.spec().use_per_unit * plan.units);
        let inputs = [
            (drug, kilos(Material::DrugSubstance), "KGM"),
            (excipient, kilos(Material::Excipient), "KGM"),
        ];
        let litres = round3(plan.units * LITRES_PER_UNIT);
        let output = self.wip(1, "BLK", plan.campaign, "", litres, Some("LTR"));
        let [bulk] = self.level(Level::Formulating, plan.campaign, &inputs, output);
        self.check(plan.campaign, &[&bulk], ASSAY, false);
        bulk
    }

    /// Level 2: compound A is shared by all three sheets; sheet 3 also
    /// takes compound B.
    fn form(&mut self, plan: &Plan, [a, b]: &[LotRef; 2]) -> [LotRef; 3] {
        let (campaign, quarter) = (plan.campaign, (plan.units / 4.0).ceil());
        let kg = round3(plan.units * 0.000_6);
        let mut outputs = self.wip(2, "SHT", campaign, "1", quarter, None);
        outputs.extend(self.wip(2, "SHT", campaign, "2", quarter, None));
        let [s1, s2] = self.level(Level::Forming, campaign, &[(a, kg, "KGM")], outputs);
        let output = self.wip(2, "SHT", campaign, "3", 2.0 * quarter, None);
        let inputs = [(a, round3(kg / 2.0), "KGM"), (b, kg, "KGM")];
        let [s3] = self.level(Level::Forming, campaign, &inputs, output);
        self.check(campaign, &[&s1, &s2, &s3], THICKNESS, false);
        [s1, s2, s3]
    }

    /// Level 3: sheets 1 and 2 cure into one stopper lot, sheet 3 into
    /// another, which fails hardness in one campaign.
    fn cure(&mut self, plan: &Plan, [s1, s2, s3]: &[LotRef; 3]) -> [LotRef; 2] {
        let (campaign, quarter) = (plan.campaign, (plan.units / 4.0).ceil());
        let count = (plan.units * 0.55).ceil();
        let output = self.wip(3, "STP", campaign, "1", count, None);
        let inputs = [(s1, quarter, "H87"), (s2, quarter, "H87")];
        let [p1] = self.level(Level::Curing, campaign, &inputs, output);
        let output = self.wip(3, "STP", campaign, "2", count, None);
        let inputs = [(s3, 2.0 * quarter, "H87")];
        let [p2] = self.level(Level::Curing, campaign, &inputs, output);
        self.check(campaign, &[&p1], HARDNESS, false);
        let fails = campaign == nonconforming_campaign(self.scale.campaigns);
        self.check(campaign, &[&p2], HARDNESS, fails);
        if let Some(signal) = self.signal.as_mut()
            && signal.bad_campaign == campaign
        {
            signal.truth.cause = ids::canonical(&p2.class);
        }
        [p1, p2]
    }

    /// Level 4 (sub-assembly): the bulk and the barrels are shared by both
    /// filling lines, each with its own stoppers.
    fn fill(
        &mut self,
        plan: &Plan,
        bulk: &LotRef,
        barrels: &LotRef,
        [p1, p2]: &[LotRef; 2],
    ) -> [LotRef; 2] {
        let half = (plan.units / 2.0).ceil();
        let litres = round3(plan.units * LITRES_PER_UNIT / 2.0);
        let volume = fill_volume(plan.campaign);
        let mut line = |name: &str, stoppers: &LotRef| {
            let output = self.wip(4, "FIL", plan.campaign, name, half, None);
            let inputs = [
                (bulk, litres, "LTR"),
                (barrels, half, "H87"),
                (stoppers, half, "H87"),
            ];
            let [filled] = self.level(Level::Filling, plan.campaign, &inputs, output);
            self.check(plan.campaign, &[&filled], volume, false);
            filled
        };
        [line("1", p1), line("2", p2)]
    }

    /// Level 5: both filled lots and the plunger rods become the finished
    /// lot, which passes final inspection.
    fn assemble(&mut self, plan: &Plan, [f1, f2]: &[LotRef; 2], rods: &LotRef) -> LotRef {
        let half = (plan.units / 2.0).ceil();
        let lot_number = format!("PFS{:06}", plan.campaign);
        let output = vec![Output {
            class: ids::lgtin(&self.product_gtin(plan.campaign), &lot_number),
            lot_number,
            amount: plan.units,
            uom: None,
        }];
        let inputs = [
            (f1, half, "H87"),
            (f2, half, "H87"),
            (rods, plan.units, "H87"),
        ];
        let [finished] = self.level(Level::Assembly, plan.campaign, &inputs, output);
        self.final_inspection(plan.campaign, &finished);
        finished
    }

    /// A transformation with exactly `N` outputs, as an array.
    fn level<const N: usize>(
        &mut self,
        level: Level,
        campaign: u32,
        inputs: &[(&LotRef, f64, &str)],
        outputs: Vec<Output>,
    ) -> [LotRef; N] {
        let made = self.transform(level, campaign, inputs, outputs);
        assert_eq!(made.len(), N, "{level:?} made {} lots", made.len());
        let mut made = made.into_iter();
        std::array::from_fn(|_| {
            made.next()
                .unwrap_or_else(|| LotRef::raw("urn:lotline:missing"))
        })
    }

    /// The one output `<code><campaign><suffix>` of work-in-progress item
    /// `kind`.
    fn wip(
        &self,
        kind: u64,
        code: &str,
        campaign: u32,
        suffix: &str,
        amount: f64,
        uom: Option<&'static str>,
    ) -> Vec<Output> {
        let lot_number = format!("{code}{campaign:06}{suffix}");
        vec![Output {
            class: ids::lgtin(&self.wip_gtin(kind), &lot_number),
            lot_number,
            amount,
            uom,
        }]
    }

    /// Campaigns alternate between the 1 mL and the 0.5 mL product.
    fn product_gtin(&self, campaign: u32) -> String {
        self.product_gtins[campaign as usize % 2].clone()
    }

    /// An in-process check of `lots`; when `fails`, the value is out of
    /// spec and a minor non-conformance (use as is, under concession)
    /// follows.
    fn check(&mut self, campaign: u32, lots: &[&LotRef], test: Test, fails: bool) {
        let (min, max) = test.spec;
        let margin = (max - min) * 0.1;
        let value = if fails {
            round2(self.between(max + margin, max + 2.0 * margin))
        } else {
            round2(self.between(min + margin, max - margin))
        };
        self.advance(10, 40);
        let manufacturer = self.manufacturer.clone();
        let what = lots.iter().map(|lot| build::whole(&lot.class)).collect();
        let measured = measurement(test.name, value, test.uom, test.spec);
        let event = self.inspection(
            &manufacturer,
            what,
            "in-process control",
            vec![measured],
            "QC-IPC-02",
        );
        self.push(&manufacturer.org, event);
        if !fails {
            return;
        }
        self.advance(10, 30);
        let code = format!("NC-{}", self.document_number());
        let mut event = self.event(EventType::ObjectEvent, Some(Action::Observe));
        event.quantity_list = lots.iter().map(|lot| build::whole(&lot.class)).collect();
        event.biz_step = Some("holding".to_owned());
        event.disposition = Some("non_conformant".to_owned());
        event.read_point = manufacturer.site();
        event.biz_location = manufacturer.site();
        event.quality = Some(QualityFact::NonConformance {
            code,
            description: format!(
                "campaign {campaign}: {} {value} above {max}; \
                 released under concession after a functional test",
                test.name
            ),
            severity: Severity::Minor,
            handling: Some(NonConformanceHandling::UseAsIs),
        });
        self.push(&manufacturer.org, event);
        self.summary.non_conformances += 1;
    }

    /// The two compound checks. In campaign 0 the first is recorded against
    /// the wrong lot (compound B), then re-sent with the same eventID and an
    /// errorDeclaration naming the corrective event, which follows.
    fn compound_inspections(&mut self, campaign: u32, a: &LotRef, b: &LotRef) {
        let value = round2(self.between(37.0, 43.0));
        let manufacturer = self.manufacturer.clone();
        let inspect = |s: &mut Self, lot: &LotRef| {
            s.advance(10, 40);
            let what = vec![build::whole(&lot.class)];
            s.inspection(
                &manufacturer,
                what,
                "in-process control",
                vec![measurement(MOONEY.name, value, MOONEY.uom, MOONEY.spec)],
                "QC-IPC-01",
            )
        };
        let correcting = campaign == 0;
        let first = inspect(self, if correcting { b } else { a });
        self.push(&manufacturer.org, first.clone());
        let second = inspect(self, b);
        self.push(&manufacturer.org, second);
        if !correcting {
            return;
        }
        self.advance(30, 90);
        let corrective_id = self.next_event_id();
        let corrected_id = first.event_id.clone().unwrap_or_default();
        let mut retraction = first.clone();
        retraction.error_declaration = Some(ErrorDeclaration {
            declaration_time: build::format_time(self.now_ms),
            reason: Some("incorrect_data".to_owned()),
            corrective_event_ids: vec![corrective_id.clone()],
            extensions: Default::default(),
        });
        self.push(&manufacturer.org, retraction);
        self.advance(1, 5);
        let mut corrective = first;
        corrective.event_id = Some(corrective_id.clone());
        corrective.event_time = build::format_time(self.now_ms);
        corrective.quantity_list = vec![build::whole(&a.class)];
        self.push(&manufacturer.org, corrective);
        self.summary.corrected_event_id = corrected_id;
        self.summary.corrective_event_id = corrective_id;
    }

    fn final_inspection(&mut self, campaign: u32, finished: &LotRef) {
        self.advance(20, 60);
        let manufacturer = self.manufacturer.clone();
        let measurements = vec![
            measurement(
                "breakLooseForce",
                round2(self.between(3.0, 7.0)),
                Some("NEW"),
                (2.0, 8.0),
            ),
            measurement(
                "glideForce",
                round2(self.between(1.5, 5.0)),
                Some("NEW"),
                (1.0, 6.0),
            ),
        ];
        let mut event = self.inspection(
            &manufacturer,
            vec![build::whole(&finished.class)],
            "final inspection, AQL 0.65 sampling",
            measurements,
            "QC-FIN-03",
        );
        if let Some(QualityFact::Inspection { private, .. }) = &mut event.quality {
            *private = campaign % 2 == 1;
        }
        self.push(&manufacturer.org, event);
    }

    /// Serialises the finished lot pallet by pallet and packs units into
    /// cases and cases onto pallets.
    pub(super) fn pack(&mut self, campaign: u32, finished: &LotRef) -> Vec<Pallet> {
        let per_case = self.scale.items_per_case as usize;
        let per_pallet = per_case * self.scale.cases_per_pallet as usize;
        let gtin = self.product_gtin(campaign);
        let mut pallets = Vec::with_capacity(self.scale.pallets_per_campaign as usize);
        for _ in 0..self.scale.pallets_per_campaign {
            let units: Vec<String> = (0..per_pallet)
                .map(|_| {
                    self.next_serial += 1;
                    ids::sgtin(&gtin, self.scale.serials.issue(self.next_serial))
                })
                .collect();
            if self.summary.deep_serial.is_empty() {
                self.summary.deep_serial = ids::canonical(&units[0]);
                self.summary.deep_levels = finished.depth + 1;
                self.summary.deep_raw_lot = ids::canonical(&finished.origin);
            }
            // Each event owns its identifiers: copy the cases' units once,
            // then hand the serialisation event the originals.
            let per_case_units: Vec<Vec<String>> =
                units.chunks(per_case).map(<[String]>::to_vec).collect();
            let tested = self.signal.is_some().then(|| units.clone());
            self.serialise(campaign, finished, units);
            for unit in tested.into_iter().flatten() {
                self.functional_test(campaign, unit);
            }
            let mut cases = Vec::with_capacity(per_case_units.len());
            for children in per_case_units {
                let sscc = self.next_sscc();
                self.aggregate(&sscc, children.clone());
                cases.push((sscc, children));
            }
            let sscc = self.next_sscc();
            self.aggregate(&sscc, cases.iter().map(|(case, _)| case.clone()).collect());
            pallets.push(Pallet { sscc, cases });
        }
        pallets
    }

    /// A planted story's end-of-line functional test of one unit: units of
    /// the bad campaign (its line-2 stoppers) fail far more often, and pass
    /// closer to the limit when they pass.
    fn functional_test(&mut self, campaign: u32, unit: String) {
        let Some(signal) = self.signal.as_mut() else {
            return;
        };
        let (name, uom, min, max) = FUNCTIONAL_TEST;
        let exposed = signal.bad_campaign == campaign;
        let failure = if exposed {
            BAD_LOT_FAILURE
        } else {
            BACKGROUND_FAILURE
        };
        let fails = signal.chance(failure);
        let value = if fails {
            max + 0.1 + 1.5 * signal.unit()
        } else {
            let mean = if exposed { 6.2 } else { 5.0 };
            (mean + 0.6 * signal.normal()).clamp(min + 0.5, max - 0.1)
        };
        let canonical = ids::canonical(&unit);
        if exposed {
            signal.truth.exposed.push(canonical.clone());
        }
        if fails {
            signal.truth.bad.push(canonical);
        }
        // The plain story's generator is not drawn from: its values stay.
        self.now_ms += 20_000 + 1;
        let manufacturer = self.manufacturer.clone();
        let instrument = lotline_core::epcis::Instrument {
            id: format!("https://id.gs1.org/8004/{MANUFACTURER_PREFIX}QC-EOL-04"),
            calibrated_until: Some(build::format_time(self.now_ms + 180 * build::DAY_MS)),
        };
        let mut event = self.inspection_with(
            &manufacturer,
            Vec::new(),
            "end-of-line functional test",
            vec![measurement(name, round2(value), Some(uom), (min, max))],
            instrument,
        );
        event.epc_list = vec![unit];
        self.push(&manufacturer.org, event);
    }

    fn serialise(&mut self, campaign: u32, finished: &LotRef, units: Vec<String>) {
        self.advance(10, 30);
        let order = self.production_order(Level::Serialising, campaign);
        let mut event = self.event(EventType::TransformationEvent, None);
        event.input_quantity_list = vec![build::count(&finished.class, units.len() as u64)];
        event.output_epc_list = units;
        event.biz_step = Some("commissioning".to_owned());
        event.disposition = Some("active".to_owned());
        event.read_point = self.manufacturer.site();
        event.biz_location = self.manufacturer.site();
        event.biz_transaction_list = vec![order];
        let manufacturer = self.manufacturer.org.clone();
        self.push(&manufacturer, event);
    }

    fn next_sscc(&mut self) -> String {
        self.next_sscc += 1;
        let extension = self.rng.below(10);
        ids::sscc(extension, MANUFACTURER_PREFIX, self.next_sscc)
    }

    fn aggregate(&mut self, parent: &str, children: Vec<String>) {
        self.advance(1, 4);
        let mut event = self.event(EventType::AggregationEvent, Some(Action::Add));
        event.parent_id = Some(parent.to_owned());
        event.child_epcs = children;
        event.biz_step = Some("packing".to_owned());
        event.disposition = Some("in_progress".to_owned());
        event.read_point = self.manufacturer.site();
        event.biz_location = self.manufacturer.site();
        let manufacturer = self.manufacturer.org.clone();
        self.push(&manufacturer, event);
    }
}
