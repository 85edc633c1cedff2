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

use super::build::{self, measurement, round2};
use super::ids::{self, MANUFACTURER_PREFIX};
use super::materials::Material;
use super::story::{Level, LotRef, Story};

/// Units of each case remembered after packing (for the spot check); the
/// rest live only in the events.
const SAMPLE_UNITS: usize = 2;

/// A packed pallet: its SSCC and its cases (SSCC and the first
/// [`SAMPLE_UNITS`] units).
#[derive(Clone, Debug)]
pub(super) struct Pallet {
    pub sscc: String,
    pub cases: Vec<(String, Vec<String>)>,
}

/// The campaign in which the stoppers of curing line 2 fail hardness.
fn nonconforming_campaign(campaigns: u32) -> u32 {
    campaigns.min(2) - 1
}

impl Story {
    /// Levels 1 to 5 of campaign `campaign`; returns the finished lot.
    pub(super) fn produce(&mut self, campaign: u32) -> LotRef {
        let lot = |m: Material| {
            self.stock
                .get(&m)
                .map_or_else(|| LotRef::raw("urn:lotline:missing"), |raw| raw.lot.clone())
        };
        let [elastomer, filler, cure, drug, excipient, barrels, rods] = Material::ALL.map(lot);
        let units = self.scale.units_per_campaign() as f64;
        let kilos = |m: Material| round2(m.spec().use_per_unit * units / 2.0);

        // Level 1.
        let compound_class = |s: &Self, suffix: &str| s.wip_lot(0, "CMP", campaign, suffix);
        let (a_class, a_number) = compound_class(self, "A");
        let (b_class, b_number) = compound_class(self, "B");
        let mixed = kilos(Material::Elastomer) + kilos(Material::Filler);
        let inputs = [
            (&elastomer, kilos(Material::Elastomer), "KGM"),
            (&filler, kilos(Material::Filler), "KGM"),
            (&cure, kilos(Material::CureAgent), "KGM"),
        ];
        let [compound_a] = self.level(
            Level::Mixing,
            campaign,
            &inputs,
            vec![(a_class, a_number, mixed, Some("KGM"))],
        );
        let [compound_b] = self.level(
            Level::Mixing,
            campaign,
            &inputs,
            vec![(b_class, b_number, mixed, Some("KGM"))],
        );
        let (bulk_class, bulk_number) = self.wip_lot(1, "BLK", campaign, "");
        let [bulk] = self.level(
            Level::Formulating,
            campaign,
            &[
                (
                    &drug,
                    round2(units * Material::DrugSubstance.spec().use_per_unit),
                    "KGM",
                ),
                (
                    &excipient,
                    round2(units * Material::Excipient.spec().use_per_unit),
                    "KGM",
                ),
            ],
            vec![(bulk_class, bulk_number, round2(units * 0.0011), Some("LTR"))],
        );
        self.compound_inspections(campaign, &compound_a, &compound_b);
        self.check(
            campaign,
            &[&bulk],
            "assay",
            Some("P1"),
            (95.0, 105.0),
            false,
        );

        // Level 2.
        let sheet = |s: &Self, n: &str| s.wip_lot(2, "SHT", campaign, n);
        let ((s1, n1), (s2, n2), (s3, n3)) = (sheet(self, "1"), sheet(self, "2"), sheet(self, "3"));
        let sheets = self.transform(
            Level::Forming,
            campaign,
            &[(&compound_a, mixed, "KGM")],
            vec![(s1, n1, units / 4.0, None), (s2, n2, units / 4.0, None)],
        );
        let [sheet_3] = self.level(
            Level::Forming,
            campaign,
            &[
                (&compound_a, mixed / 2.0, "KGM"),
                (&compound_b, mixed, "KGM"),
            ],
            vec![(s3, n3, units / 2.0, None)],
        );
        let all_sheets: Vec<&LotRef> = sheets.iter().chain([&sheet_3]).collect();
        self.check(
            campaign,
            &all_sheets,
            "sheetThickness",
            Some("MMT"),
            (1.9, 2.1),
            false,
        );

        // Level 3.
        let (p1, pn1) = self.wip_lot(3, "STP", campaign, "1");
        let (p2, pn2) = self.wip_lot(3, "STP", campaign, "2");
        let stoppers = units * 0.55;
        let [stoppers_1] = self.level(
            Level::Curing,
            campaign,
            &[
                (&sheets[0], units / 4.0, "H87"),
                (&sheets[1], units / 4.0, "H87"),
            ],
            vec![(p1, pn1, stoppers, None)],
        );
        let [stoppers_2] = self.level(
            Level::Curing,
            campaign,
            &[(&sheet_3, units / 2.0, "H87")],
            vec![(p2, pn2, stoppers, None)],
        );
        self.check(
            campaign,
            &[&stoppers_1],
            "hardnessShoreA",
            None,
            (45.0, 55.0),
            false,
        );
        let fails = campaign == nonconforming_campaign(self.scale.campaigns);
        self.check(
            campaign,
            &[&stoppers_2],
            "hardnessShoreA",
            None,
            (45.0, 55.0),
            fails,
        );

        // Level 4.
        let half = (units / 2.0).ceil();
        let litres = round2(units * 0.0011 / 2.0);
        let mut filled = Vec::new();
        for (n, stoppers) in [("1", &stoppers_1), ("2", &stoppers_2)] {
            let (class, number) = self.wip_lot(4, "FIL", campaign, n);
            let inputs = [
                (&bulk, litres, "LTR"),
                (&barrels, half, "H87"),
                (stoppers, half, "H87"),
            ];
            let [lot] = self.level(
                Level::Filling,
                campaign,
                &inputs,
                vec![(class, number, half, None)],
            );
            filled.push(lot);
        }
        let fill_spec = self.fill_spec(campaign);
        self.check(
            campaign,
            &[&filled[0]],
            "fillVolume",
            Some("MLT"),
            fill_spec,
            false,
        );
        self.check(
            campaign,
            &[&filled[1]],
            "fillVolume",
            Some("MLT"),
            fill_spec,
            false,
        );

        // Level 5.
        let (class, number) = self.finished_lot(campaign);
        let inputs = [
            (&filled[0], half, "H87"),
            (&filled[1], half, "H87"),
            (&rods, units, "H87"),
        ];
        let [finished] = self.level(
            Level::Assembly,
            campaign,
            &inputs,
            vec![(class, number, units, None)],
        );
        self.final_inspection(campaign, &finished);
        finished
    }

    /// A transformation with exactly `N` outputs, as an array.
    fn level<const N: usize>(
        &mut self,
        level: Level,
        campaign: u32,
        inputs: &[(&LotRef, f64, &str)],
        outputs: Vec<(String, String, f64, Option<&str>)>,
    ) -> [LotRef; N] {
        let made = self.transform(level, campaign, inputs, outputs);
        assert_eq!(made.len(), N);
        let mut made = made.into_iter();
        std::array::from_fn(|_| {
            made.next()
                .unwrap_or_else(|| LotRef::raw("urn:lotline:missing"))
        })
    }

    /// Class and lot number of a work-in-progress lot.
    fn wip_lot(&self, kind: u64, code: &str, campaign: u32, suffix: &str) -> (String, String) {
        let number = format!("{code}{campaign:06}{suffix}");
        (ids::lgtin(&self.wip_gtin(kind), &number), number)
    }

    /// Class and lot number of the finished lot; campaigns alternate between
    /// the 1 mL and the 0.5 mL product.
    fn finished_lot(&self, campaign: u32) -> (String, String) {
        let number = format!("PFS{campaign:06}");
        let gtin = &self.product_gtins[campaign as usize % 2];
        (ids::lgtin(gtin, &number), number)
    }

    fn product_gtin(&self, campaign: u32) -> String {
        self.product_gtins[campaign as usize % 2].clone()
    }

    fn fill_spec(&self, campaign: u32) -> (f64, f64) {
        if campaign.is_multiple_of(2) {
            (1.00, 1.05)
        } else {
            (0.50, 0.53)
        }
    }

    /// An in-process check of `lots` with one measurement; when `fails`,
    /// the value is out of spec and a minor non-conformance (use as is,
    /// under concession) follows.
    fn check(
        &mut self,
        campaign: u32,
        lots: &[&LotRef],
        name: &str,
        uom: Option<&str>,
        spec: (f64, f64),
        fails: bool,
    ) {
        let (min, max) = spec;
        let margin = (max - min) * 0.1;
        let value = if fails {
            round2(self.between(max + margin, max + 2.0 * margin))
        } else {
            round2(self.between(min + margin, max - margin))
        };
        self.advance(10, 40);
        let manufacturer = self.manufacturer.clone();
        let what = lots.iter().map(|lot| build::whole(&lot.class)).collect();
        let event = self.inspection(
            &manufacturer,
            what,
            "in-process control",
            vec![measurement(name, value, uom, spec)],
            "QC-IPC-02",
        );
        self.push(&manufacturer.org, event);
        if fails {
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
                    "campaign {campaign}: {name} {value} above {max}; released under concession after a functional test"
                ),
                severity: Severity::Minor,
                handling: Some(NonConformanceHandling::UseAsIs),
            });
            self.push(&manufacturer.org, event);
            self.summary.non_conformances += 1;
        }
    }

    /// The two compound checks. In campaign 0 the first is recorded against
    /// the wrong lot (compound B), then re-sent with the same eventID and an
    /// errorDeclaration naming the corrective event, which follows.
    fn compound_inspections(&mut self, campaign: u32, a: &LotRef, b: &LotRef) {
        let spec = (35.0, 45.0);
        let value = round2(self.between(37.0, 43.0));
        let manufacturer = self.manufacturer.clone();
        let inspect = |s: &mut Self, lot: &LotRef| {
            s.advance(10, 40);
            let what = vec![build::whole(&lot.class)];
            s.inspection(
                &manufacturer,
                what,
                "in-process control",
                vec![measurement("mooneyViscosityML1+4", value, None, spec)],
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
                    ids::sgtin(&gtin, self.next_serial)
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
            self.serialise(campaign, finished, units);
            let mut cases = Vec::with_capacity(per_case_units.len());
            for children in per_case_units {
                let sscc = self.next_sscc();
                let sample = children.iter().take(SAMPLE_UNITS).cloned().collect();
                self.aggregate(&sscc, children);
                cases.push((sscc, sample));
            }
            let sscc = self.next_sscc();
            self.aggregate(&sscc, cases.iter().map(|(case, _)| case.clone()).collect());
            pallets.push(Pallet { sscc, cases });
        }
        pallets
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
