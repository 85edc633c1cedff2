//! A deterministic supply-chain workload: the story of lots from a raw
//! material supplier through a manufacturer and a distributor to a regulator's
//! spot check, as EPCIS 2.0 events in causal order.
//!
//! ```text
//! supplier      commission raw lots (+ material certificate) -> ship
//! manufacturer  receive -> incoming inspection (one lot fails -> non-conformance, quarantine)
//!               per batch: transform lots into a finished lot -> final inspection
//!               -> serialise items -> pack cases (SSCC) -> ship
//! distributor   receive -> cold storage with temperature readings (one excursion > 8 CEL)
//! regulator     spot inspection of sampled items
//! ```
//!
//! Everything is a pure function of the seed and the [`Scale`]: values come
//! from a splitmix64 generator, never from a clock or the OS. Identifiers are
//! GS1 Digital Link URIs on the `9506...` demo company prefixes, with check
//! digits from [`gs1::check_digit`].

use std::collections::BTreeMap;

use lotline_core::epcis::{
    Action, BizTransaction, Destination, DocumentRef, Event, EventType, InspectionResult,
    Instrument, Location, Measurement, NonConformanceHandling, QualityFact, QuantityElement,
    SensorElement, SensorReport, Severity, Source,
};
use lotline_core::{gs1, time};
use serde_json::Value;

/// The org ids that play each part of the story (genesis org ids).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Roles {
    pub supplier: String,
    pub manufacturer: String,
    pub distributor: String,
    pub regulator: String,
}

impl Roles {
    /// The org ids of `lotline demo`: `supplier`, `manufacturer`,
    /// `distributor`, `regulator`.
    pub fn demo() -> Roles {
        Roles {
            supplier: "supplier".to_owned(),
            manufacturer: "manufacturer".to_owned(),
            distributor: "distributor".to_owned(),
            regulator: "regulator".to_owned(),
        }
    }
}

/// How much happens. Every count is taken as at least 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Scale {
    /// Raw-material lots the supplier commissions (two materials, alternating).
    /// With 3 or more, one lot fails incoming inspection.
    pub raw_lots: usize,
    /// Finished-goods batches (one transformation each, one shipment each).
    pub batches: usize,
    /// Cases (SSCCs) packed per batch.
    pub cases_per_batch: usize,
    /// Serialised items per case.
    pub items_per_case: usize,
    /// Cold-storage sensor events per shipment at the distributor.
    pub storage_readings: usize,
}

impl Scale {
    /// The demo: 59 events.
    pub fn demo() -> Scale {
        Scale {
            raw_lots: 8,
            batches: 3,
            cases_per_batch: 4,
            items_per_case: 6,
            storage_readings: 4,
        }
    }

    fn at_least_one(self) -> Scale {
        Scale {
            raw_lots: self.raw_lots.max(1),
            batches: self.batches.max(1),
            cases_per_batch: self.cases_per_batch.max(1),
            items_per_case: self.items_per_case.max(1),
            storage_readings: self.storage_readings.max(1),
        }
    }

    /// The number of events [`SupplyChainWorkload::generate`] produces.
    pub fn event_count(self) -> usize {
        let s = self.at_least_one();
        let failing = usize::from(failure_possible(s.raw_lots));
        // supplier: commission each lot, one shipment
        let supplier = s.raw_lots + 1;
        // manufacturer: receive, inspect each lot, non-conformance
        let incoming = 1 + s.raw_lots + failing;
        // per batch: transform, final inspection, serialise, pack, ship
        let per_batch = 4 + s.cases_per_batch;
        // distributor per batch: receive, storage readings
        let distributor = 1 + s.storage_readings;
        supplier + incoming + s.batches * (per_batch + distributor) + 1
    }
}

impl Default for Scale {
    fn default() -> Scale {
        Scale::demo()
    }
}

/// One event and the org that attests it.
#[derive(Clone, Debug, PartialEq)]
pub struct WorkItem {
    /// The issuing org's id.
    pub org: String,
    pub event: Event,
}

/// The supply-chain story generator.
#[derive(Clone, Copy, Debug, Default)]
pub struct SupplyChainWorkload;

impl SupplyChainWorkload {
    /// The story for `seed` at `scale`, with the demo org ids
    /// ([`Roles::demo`]), in causal order.
    pub fn generate(seed: u64, scale: Scale) -> Vec<WorkItem> {
        Self::generate_for(seed, scale, &Roles::demo())
    }

    /// The story for `seed` at `scale`, attested by the given orgs.
    pub fn generate_for(seed: u64, scale: Scale, roles: &Roles) -> Vec<WorkItem> {
        Story::new(seed, scale.at_least_one(), roles).run()
    }
}

/// The start of every story: 2026-03-02T08:00:00.000Z.
const START_MS: u64 = 1_772_438_400_000;
const TIME_ZONE_OFFSET: &str = "+08:00";
/// Cold chain upper limit, degrees Celsius.
pub const COLD_CHAIN_MAX_CEL: f64 = 8.0;

const MINUTE_MS: u64 = 60_000;
const HOUR_MS: u64 = 60 * MINUTE_MS;
const DAY_MS: u64 = 24 * HOUR_MS;

/// GS1 company prefixes (7 digits) under the GS1 demo range 950.
const SUPPLIER_PREFIX: &str = "9506001";
const MANUFACTURER_PREFIX: &str = "9506002";
const DISTRIBUTOR_PREFIX: &str = "9506003";
const REGULATOR_PREFIX: &str = "9506004";

fn failure_possible(raw_lots: usize) -> bool {
    raw_lots >= 3
}

/// The two raw materials; lot `i` is of material `i % 2`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Material {
    Resin,
    Masterbatch,
}

impl Material {
    fn of_lot(index: usize) -> Material {
        if index.is_multiple_of(2) {
            Material::Resin
        } else {
            Material::Masterbatch
        }
    }

    fn lot_prefix(self) -> &'static str {
        match self {
            Material::Resin => "PP",
            Material::Masterbatch => "MB",
        }
    }
}

#[derive(Clone, Debug)]
struct RawLot {
    material: Material,
    class: String,
    kilograms: f64,
    passed: bool,
}

/// An org's GLNs: the party itself and its site.
#[derive(Clone, Debug)]
struct Party {
    org: String,
    party: String,
    site: String,
}

impl Party {
    fn new(org: &str, prefix: &str) -> Party {
        Party {
            org: org.to_owned(),
            party: format!(
                "https://id.gs1.org/414/{}",
                with_check_digit(&format!("{prefix}00001"))
            ),
            site: format!(
                "https://id.gs1.org/414/{}",
                with_check_digit(&format!("{prefix}00010"))
            ),
        }
    }

    fn site(&self) -> Option<Location> {
        Some(Location {
            id: self.site.clone(),
            extensions: BTreeMap::new(),
        })
    }
}

struct Story {
    rng: SplitMix64,
    scale: Scale,
    now_ms: u64,
    items: Vec<WorkItem>,
    supplier: Party,
    manufacturer: Party,
    distributor: Party,
    regulator: Party,
    resin_gtin: String,
    masterbatch_gtin: String,
    product_gtin: String,
    next_serial: u64,
    next_sscc: u64,
    next_document: u64,
}

impl Story {
    fn new(seed: u64, scale: Scale, roles: &Roles) -> Story {
        let mut rng = SplitMix64(seed);
        let resin_item = rng.below(50_000);
        let resin_gtin = gtin(SUPPLIER_PREFIX, resin_item);
        let masterbatch_gtin = gtin(SUPPLIER_PREFIX, resin_item + 50_000);
        let product_gtin = gtin(MANUFACTURER_PREFIX, rng.below(100_000));
        let next_serial = 100_000 + rng.below(800_000) * 1_000;
        let next_sscc = rng.below(900_000) * 1_000;
        let next_document = 1000 + rng.below(8000);
        Story {
            rng,
            scale,
            now_ms: START_MS,
            items: Vec::new(),
            supplier: Party::new(&roles.supplier, SUPPLIER_PREFIX),
            manufacturer: Party::new(&roles.manufacturer, MANUFACTURER_PREFIX),
            distributor: Party::new(&roles.distributor, DISTRIBUTOR_PREFIX),
            regulator: Party::new(&roles.regulator, REGULATOR_PREFIX),
            resin_gtin,
            masterbatch_gtin,
            product_gtin,
            next_serial,
            next_sscc,
            next_document,
        }
    }

    fn run(mut self) -> Vec<WorkItem> {
        let mut lots = self.commission_raw_lots();
        self.ship_raw_lots(&lots);
        self.inspect_raw_lots(&mut lots);
        for batch in 0..self.scale.batches {
            let cases = self.produce_batch(batch, &lots);
            self.ship_and_store(batch, &cases);
        }
        self.spot_inspection();
        self.items
    }

    // ---- supplier ----------------------------------------------------------

    fn commission_raw_lots(&mut self) -> Vec<RawLot> {
        let mut lots = Vec::with_capacity(self.scale.raw_lots);
        let lot_base = 10_000 + self.rng.below(80_000);
        for index in 0..self.scale.raw_lots {
            let material = Material::of_lot(index);
            let gtin = match material {
                Material::Resin => &self.resin_gtin,
                Material::Masterbatch => &self.masterbatch_gtin,
            };
            let lot_number = format!("{}{}", material.lot_prefix(), lot_base + index as u64);
            let class = lgtin(gtin, &lot_number);
            let kilograms = match material {
                Material::Resin => 500.0 * (2 + self.rng.below(4)) as f64,
                Material::Masterbatch => 25.0 * (2 + self.rng.below(4)) as f64,
            };
            self.advance(20, 90);
            let issued = self.now_ms - 3 * DAY_MS;
            let certificate = QualityFact::Certificate {
                certificate_id: format!("EN10204-3.1-{}", self.document_number()),
                issuer: self.supplier.party.clone(),
                standard: "EN 10204 3.1".to_owned(),
                valid_from: format_time(issued),
                valid_until: format_time(issued + 365 * DAY_MS),
                document: Some(self.document("certificates", "application/pdf")),
            };
            let mut event = self.event(EventType::ObjectEvent);
            event.action = Some(Action::Add);
            event.quantity_list = vec![kilos(&class, kilograms)];
            event.biz_step = Some("commissioning".to_owned());
            event.disposition = Some("active".to_owned());
            event.read_point = self.supplier.site();
            event.biz_location = self.supplier.site();
            event.ilmd = Some(BTreeMap::from([
                (
                    "cbvmda:lotNumber".to_owned(),
                    Value::from(lot_number.clone()),
                ),
                (
                    "cbvmda:itemExpirationDate".to_owned(),
                    Value::from(format_date(self.now_ms + 730 * DAY_MS)),
                ),
            ]));
            event.quality = Some(certificate);
            self.push(&self.supplier.org.clone(), event);
            lots.push(RawLot {
                material,
                class,
                kilograms,
                passed: true,
            });
        }
        lots
    }

    fn ship_raw_lots(&mut self, lots: &[RawLot]) {
        self.advance(60, 240);
        let quantities: Vec<QuantityElement> = lots
            .iter()
            .map(|lot| kilos(&lot.class, lot.kilograms))
            .collect();
        let desadv = self.despatch_advice(&self.supplier.clone());
        let mut event = self.event(EventType::ObjectEvent);
        event.action = Some(Action::Observe);
        event.quantity_list = quantities.clone();
        event.biz_step = Some("shipping".to_owned());
        event.disposition = Some("in_transit".to_owned());
        event.read_point = self.supplier.site();
        event.biz_transaction_list = vec![desadv.clone()];
        (event.source_list, event.destination_list) = transfer(&self.supplier, &self.manufacturer);
        self.push(&self.supplier.org.clone(), event);

        self.advance(18 * 60, 30 * 60);
        let mut event = self.event(EventType::ObjectEvent);
        event.action = Some(Action::Observe);
        event.quantity_list = quantities;
        event.biz_step = Some("receiving".to_owned());
        event.disposition = Some("in_progress".to_owned());
        event.read_point = self.manufacturer.site();
        event.biz_location = self.manufacturer.site();
        event.biz_transaction_list = vec![desadv];
        (event.source_list, event.destination_list) = transfer(&self.supplier, &self.manufacturer);
        self.push(&self.manufacturer.org.clone(), event);
    }

    // ---- manufacturer ------------------------------------------------------

    fn inspect_raw_lots(&mut self, lots: &mut [RawLot]) {
        let failing =
            failure_possible(lots.len()).then(|| self.rng.below(lots.len() as u64) as usize);
        for (index, lot) in lots.iter_mut().enumerate() {
            let fails = failing == Some(index);
            let (measurements, moisture) = self.incoming_measurements(lot.material, fails);
            let result = if fails {
                InspectionResult::Fail
            } else {
                InspectionResult::Pass
            };
            lot.passed = !fails;
            self.advance(30, 120);
            let instrument = self.instrument(MANUFACTURER_PREFIX, "LAB-MOIST-01");
            let mut event = self.event(EventType::ObjectEvent);
            event.action = Some(Action::Observe);
            event.quantity_list = vec![QuantityElement {
                epc_class: lot.class.clone(),
                quantity: None,
                uom: None,
                extensions: BTreeMap::new(),
            }];
            event.biz_step = Some("inspecting".to_owned());
            event.disposition = Some(
                if fails {
                    "non_conformant"
                } else {
                    "conformant"
                }
                .to_owned(),
            );
            event.read_point = self.manufacturer.site();
            event.biz_location = self.manufacturer.site();
            event.quality = Some(QualityFact::Inspection {
                result,
                method: Some(
                    "incoming inspection, ISO 1133 melt flow and Karl Fischer moisture".to_owned(),
                ),
                measurements,
                instrument: Some(instrument),
                private: false,
            });
            self.push(&self.manufacturer.org.clone(), event);

            if fails {
                self.advance(10, 45);
                let mut event = self.event(EventType::ObjectEvent);
                event.action = Some(Action::Observe);
                event.quantity_list = vec![kilos(&lot.class, lot.kilograms)];
                event.biz_step = Some("holding".to_owned());
                event.disposition = Some("non_conformant".to_owned());
                event.read_point = self.manufacturer.site();
                event.biz_location = self.manufacturer.site();
                event.quality = Some(QualityFact::NonConformance {
                    code: format!("NC-{}", self.document_number()),
                    description: format!(
                        "moisture {moisture:.2} % above the specification maximum of 0.10 %"
                    ),
                    severity: Severity::Major,
                    handling: Some(NonConformanceHandling::Quarantine),
                });
                self.push(&self.manufacturer.org.clone(), event);
            }
        }
    }

    /// Melt flow and moisture; when `fails`, moisture is out of spec.
    fn incoming_measurements(
        &mut self,
        material: Material,
        fails: bool,
    ) -> (Vec<Measurement>, f64) {
        let (mfr_min, mfr_max) = match material {
            Material::Resin => (10.0, 14.0),
            Material::Masterbatch => (18.0, 26.0),
        };
        let mfr = round2(self.rng.between(mfr_min + 0.5, mfr_max - 0.5));
        let moisture = if fails {
            round2(self.rng.between(0.14, 0.30))
        } else {
            round2(self.rng.between(0.02, 0.08))
        };
        let measurements = vec![
            Measurement {
                name: "meltFlowRate".to_owned(),
                value: mfr,
                uom: None,
                spec_min: Some(mfr_min),
                spec_max: Some(mfr_max),
            },
            Measurement {
                name: "moisture".to_owned(),
                value: moisture,
                uom: Some("P1".to_owned()),
                spec_min: None,
                spec_max: Some(0.10),
            },
        ];
        (measurements, moisture)
    }

    /// Transforms lots into a finished lot, inspects, serialises and packs it.
    /// Returns the SSCCs of the cases and their items.
    fn produce_batch(&mut self, batch: usize, lots: &[RawLot]) -> Vec<(String, Vec<String>)> {
        let lot_number = format!(
            "CAP{}-{:02}",
            format_date(self.now_ms).replace('-', ""),
            batch + 1
        );
        let finished = lgtin(&self.product_gtin, &lot_number);
        let item_count = self.scale.cases_per_batch * self.scale.items_per_case;

        let mut inputs = Vec::new();
        for material in [Material::Resin, Material::Masterbatch] {
            let usable: Vec<&RawLot> = lots
                .iter()
                .filter(|l| l.material == material && l.passed)
                .collect();
            if usable.is_empty() {
                continue;
            }
            let lot = usable[batch % usable.len()];
            let used = match material {
                Material::Resin => 100.0 + 10.0 * self.rng.below(20) as f64,
                Material::Masterbatch => 2.0 + 0.5 * self.rng.below(8) as f64,
            };
            inputs.push(kilos(&lot.class, used));
        }
        self.advance(2 * 60, 6 * 60);
        let mut event = self.event(EventType::TransformationEvent);
        event.input_quantity_list = inputs;
        event.output_quantity_list = vec![QuantityElement {
            epc_class: finished.clone(),
            quantity: Some(item_count as f64),
            uom: None,
            extensions: BTreeMap::new(),
        }];
        event.biz_step = Some("commissioning".to_owned());
        event.disposition = Some("active".to_owned());
        event.read_point = self.manufacturer.site();
        event.biz_location = self.manufacturer.site();
        event.ilmd = Some(BTreeMap::from([
            (
                "cbvmda:lotNumber".to_owned(),
                Value::from(lot_number.clone()),
            ),
            (
                "cbvmda:itemExpirationDate".to_owned(),
                Value::from(format_date(self.now_ms + 1095 * DAY_MS)),
            ),
        ]));
        self.push(&self.manufacturer.org.clone(), event);

        // Final inspection of the finished lot.
        self.advance(30, 90);
        let torque = round2(self.rng.between(1.4, 2.0));
        let weight = round2(self.rng.between(2.45, 2.75));
        let instrument = self.instrument(MANUFACTURER_PREFIX, "QC-TORQUE-02");
        let mut event = self.event(EventType::ObjectEvent);
        event.action = Some(Action::Observe);
        event.quantity_list = vec![QuantityElement {
            epc_class: finished.clone(),
            quantity: None,
            uom: None,
            extensions: BTreeMap::new(),
        }];
        event.biz_step = Some("inspecting".to_owned());
        event.disposition = Some("conformant".to_owned());
        event.read_point = self.manufacturer.site();
        event.biz_location = self.manufacturer.site();
        event.quality = Some(QualityFact::Inspection {
            result: InspectionResult::Pass,
            method: Some("final inspection, AQL 1.0 sampling".to_owned()),
            measurements: vec![
                Measurement {
                    name: "removalTorque".to_owned(),
                    value: torque,
                    uom: Some("NU".to_owned()),
                    spec_min: Some(1.2),
                    spec_max: Some(2.2),
                },
                Measurement {
                    name: "capWeight".to_owned(),
                    value: weight,
                    uom: Some("GRM".to_owned()),
                    spec_min: Some(2.4),
                    spec_max: Some(2.8),
                },
            ],
            instrument: Some(instrument),
            private: batch % 2 == 1,
        });
        self.push(&self.manufacturer.org.clone(), event);

        // Serialise the items of the lot.
        let serials: Vec<String> = (0..item_count)
            .map(|_| {
                self.next_serial += 1;
                format!(
                    "https://id.gs1.org/01/{}/21/{}",
                    self.product_gtin, self.next_serial
                )
            })
            .collect();
        self.advance(20, 60);
        let mut event = self.event(EventType::ObjectEvent);
        event.action = Some(Action::Add);
        event.epc_list = serials.clone();
        event.biz_step = Some("commissioning".to_owned());
        event.disposition = Some("active".to_owned());
        event.read_point = self.manufacturer.site();
        event.biz_location = self.manufacturer.site();
        event.ilmd = Some(BTreeMap::from([(
            "cbvmda:lotNumber".to_owned(),
            Value::from(lot_number),
        )]));
        self.push(&self.manufacturer.org.clone(), event);

        // Pack them into cases.
        let mut cases = Vec::with_capacity(self.scale.cases_per_batch);
        for children in serials.chunks(self.scale.items_per_case) {
            self.next_sscc += 1;
            let extension = self.rng.below(10);
            let sscc = with_check_digit(&format!(
                "{extension}{MANUFACTURER_PREFIX}{:09}",
                self.next_sscc
            ));
            let parent = format!("https://id.gs1.org/00/{sscc}");
            self.advance(5, 20);
            let mut event = self.event(EventType::AggregationEvent);
            event.action = Some(Action::Add);
            event.parent_id = Some(parent.clone());
            event.child_epcs = children.to_vec();
            event.biz_step = Some("packing".to_owned());
            event.disposition = Some("in_progress".to_owned());
            event.read_point = self.manufacturer.site();
            event.biz_location = self.manufacturer.site();
            self.push(&self.manufacturer.org.clone(), event);
            cases.push((parent, children.to_vec()));
        }
        cases
    }

    // ---- manufacturer -> distributor ---------------------------------------

    fn ship_and_store(&mut self, batch: usize, cases: &[(String, Vec<String>)]) {
        let ssccs: Vec<String> = cases.iter().map(|(sscc, _)| sscc.clone()).collect();
        let desadv = self.despatch_advice(&self.manufacturer.clone());
        self.advance(60, 180);
        let mut event = self.event(EventType::ObjectEvent);
        event.action = Some(Action::Observe);
        event.epc_list = ssccs.clone();
        event.biz_step = Some("shipping".to_owned());
        event.disposition = Some("in_transit".to_owned());
        event.read_point = self.manufacturer.site();
        event.biz_transaction_list = vec![desadv.clone()];
        (event.source_list, event.destination_list) =
            transfer(&self.manufacturer, &self.distributor);
        self.push(&self.manufacturer.org.clone(), event);

        self.advance(12 * 60, 24 * 60);
        let mut event = self.event(EventType::ObjectEvent);
        event.action = Some(Action::Observe);
        event.epc_list = ssccs.clone();
        event.biz_step = Some("receiving".to_owned());
        event.disposition = Some("in_progress".to_owned());
        event.read_point = self.distributor.site();
        event.biz_location = self.distributor.site();
        event.biz_transaction_list = vec![desadv];
        (event.source_list, event.destination_list) =
            transfer(&self.manufacturer, &self.distributor);
        self.push(&self.distributor.org.clone(), event);

        // The excursion happens once, in the first shipment's storage.
        let excursion =
            (batch == 0).then(|| self.rng.below(self.scale.storage_readings as u64) as usize);
        let sensor = format!(
            "https://id.gs1.org/8004/{DISTRIBUTOR_PREFIX}TL-{:03}",
            1 + self.rng.below(50)
        );
        for reading in 0..self.scale.storage_readings {
            self.advance(5 * 60, 7 * 60);
            let reports = (0..3u64)
                .map(|k| {
                    let spike = excursion == Some(reading) && k == 1;
                    let value = if spike {
                        round1(self.rng.between(8.6, 11.5))
                    } else {
                        round1(self.rng.between(2.5, 7.0))
                    };
                    SensorReport {
                        kind: Some("Temperature".to_owned()),
                        value: Some(value),
                        min_value: None,
                        max_value: None,
                        mean_value: None,
                        uom: Some("CEL".to_owned()),
                        time: Some(format_time(self.now_ms - (2 - k) * HOUR_MS)),
                        extensions: BTreeMap::new(),
                    }
                })
                .collect();
            let mut event = self.event(EventType::ObjectEvent);
            event.action = Some(Action::Observe);
            event.epc_list = ssccs.clone();
            event.biz_step = Some("storing".to_owned());
            event.disposition = Some("sellable_not_accessible".to_owned());
            event.read_point = self.distributor.site();
            event.biz_location = self.distributor.site();
            event.sensor_element_list = vec![SensorElement {
                sensor_metadata: Some(BTreeMap::from([
                    ("deviceID".to_owned(), Value::from(sensor.clone())),
                    ("time".to_owned(), Value::from(format_time(self.now_ms))),
                ])),
                sensor_report: reports,
                extensions: BTreeMap::new(),
            }];
            self.push(&self.distributor.org.clone(), event);
        }
    }

    // ---- regulator ---------------------------------------------------------

    fn spot_inspection(&mut self) {
        let all: Vec<String> = self
            .items
            .iter()
            .filter(|item| item.event.event_type == EventType::AggregationEvent)
            .flat_map(|item| item.event.child_epcs.clone())
            .collect();
        let first = self.rng.below(all.len() as u64) as usize;
        let second =
            (first + 1 + self.rng.below((all.len() as u64).saturating_sub(1).max(1)) as usize)
                % all.len();
        let mut sample = vec![all[first].clone()];
        if second != first {
            sample.push(all[second].clone());
        }
        self.advance(24 * 60, 48 * 60);
        let weight = round2(self.rng.between(2.45, 2.75));
        let instrument = self.instrument(REGULATOR_PREFIX, "INSP-SCALE-07");
        let mut event = self.event(EventType::ObjectEvent);
        event.action = Some(Action::Observe);
        event.epc_list = sample;
        event.biz_step = Some("inspecting".to_owned());
        event.disposition = Some("conformant".to_owned());
        event.read_point = self.distributor.site();
        event.biz_location = self.distributor.site();
        event.quality = Some(QualityFact::Inspection {
            result: InspectionResult::Pass,
            method: Some("market surveillance spot check".to_owned()),
            measurements: vec![Measurement {
                name: "capWeight".to_owned(),
                value: weight,
                uom: Some("GRM".to_owned()),
                spec_min: Some(2.4),
                spec_max: Some(2.8),
            }],
            instrument: Some(instrument),
            private: false,
        });
        self.push(&self.regulator.org.clone(), event);
    }

    // ---- helpers -----------------------------------------------------------

    /// An event of `event_type` at the current time with a fresh eventID.
    fn event(&mut self, event_type: EventType) -> Event {
        Event {
            event_type,
            event_id: Some(format!("urn:uuid:{}", self.rng.uuid())),
            event_time: format_time(self.now_ms),
            event_time_zone_offset: TIME_ZONE_OFFSET.to_owned(),
            record_time: None,
            certification_info: None,
            error_declaration: None,
            action: None,
            epc_list: Vec::new(),
            quantity_list: Vec::new(),
            parent_id: None,
            child_epcs: Vec::new(),
            child_quantity_list: Vec::new(),
            input_epc_list: Vec::new(),
            input_quantity_list: Vec::new(),
            output_epc_list: Vec::new(),
            output_quantity_list: Vec::new(),
            transformation_id: None,
            biz_step: None,
            disposition: None,
            persistent_disposition: None,
            biz_transaction_list: Vec::new(),
            source_list: Vec::new(),
            destination_list: Vec::new(),
            read_point: None,
            biz_location: None,
            sensor_element_list: Vec::new(),
            ilmd: None,
            quality: None,
            extensions: BTreeMap::new(),
        }
    }

    fn push(&mut self, org: &str, event: Event) {
        self.items.push(WorkItem {
            org: org.to_owned(),
            event,
        });
    }

    /// Moves the clock forward by a whole number of minutes in `[min, max]`.
    fn advance(&mut self, min_minutes: u64, max_minutes: u64) {
        let minutes = min_minutes + self.rng.below(max_minutes - min_minutes + 1);
        self.now_ms += minutes * MINUTE_MS + self.rng.below(1000);
    }

    fn document_number(&mut self) -> u64 {
        self.next_document += 1;
        self.next_document
    }

    /// A reference to an off-chain document; its digest is simulated.
    fn document(&mut self, folder: &str, media_type: &str) -> DocumentRef {
        let number = self.document_number();
        let digest: String = (0..4)
            .map(|_| format!("{:016x}", self.rng.next_u64()))
            .collect();
        DocumentRef {
            uri: format!("https://docs.supplier.example/{folder}/{number}.pdf"),
            media_type: media_type.to_owned(),
            blake3: digest,
        }
    }

    fn instrument(&mut self, prefix: &str, asset: &str) -> Instrument {
        Instrument {
            id: format!("https://id.gs1.org/8004/{prefix}{asset}"),
            calibrated_until: Some(format_time(
                self.now_ms + (30 + self.rng.below(300)) * DAY_MS,
            )),
        }
    }

    fn despatch_advice(&mut self, from: &Party) -> BizTransaction {
        let gln = from.party.rsplit('/').next().unwrap_or_default().to_owned();
        BizTransaction {
            kind: Some("desadv".to_owned()),
            biz_transaction: format!("urn:epcglobal:cbv:bt:{gln}:DA{}", self.document_number()),
        }
    }
}

/// Source and destination lists of a change of ownership and possession.
fn transfer(from: &Party, to: &Party) -> (Vec<Source>, Vec<Destination>) {
    let sources = vec![
        Source {
            kind: "owning_party".to_owned(),
            source: from.party.clone(),
        },
        Source {
            kind: "location".to_owned(),
            source: from.site.clone(),
        },
    ];
    let destinations = vec![
        Destination {
            kind: "owning_party".to_owned(),
            destination: to.party.clone(),
        },
        Destination {
            kind: "location".to_owned(),
            destination: to.site.clone(),
        },
    ];
    (sources, destinations)
}

fn kilos(class: &str, kilograms: f64) -> QuantityElement {
    QuantityElement {
        epc_class: class.to_owned(),
        quantity: Some(kilograms),
        uom: Some("KGM".to_owned()),
        extensions: BTreeMap::new(),
    }
}

/// GTIN-14: indicator 0, company prefix, 5-digit item reference, check digit.
fn gtin(prefix: &str, item_reference: u64) -> String {
    with_check_digit(&format!("0{prefix}{:05}", item_reference % 100_000))
}

/// LGTIN as a Digital Link URI.
fn lgtin(gtin: &str, lot: &str) -> String {
    format!("https://id.gs1.org/01/{gtin}/10/{lot}")
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// Appends the GS1 mod-10 check digit ([`gs1::check_digit`]) to a string
/// of digits. Only ever called with digits formatted here.
fn with_check_digit(digits: &str) -> String {
    match gs1::check_digit(digits) {
        Some(check) => format!("{digits}{check}"),
        None => digits.to_owned(),
    }
}

/// RFC 3339 UTC with milliseconds: `2026-03-02T08:00:00.000Z`.
fn format_time(unix_ms: u64) -> String {
    time::format_rfc3339_ms(i64::try_from(unix_ms).unwrap_or(i64::MAX))
}

/// `YYYY-MM-DD` (UTC).
fn format_date(unix_ms: u64) -> String {
    let mut date = format_time(unix_ms);
    date.truncate("YYYY-MM-DD".len());
    date
}

/// splitmix64 (Steele, Lea, Flood 2014): tiny, fast, and enough for
/// reproducible test data. Not for anything secret.
#[derive(Clone, Debug)]
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform-ish in `0..n` (modulo bias is irrelevant here); 0 when n is 0.
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }

    /// Uniform in `[lo, hi)`.
    fn between(&mut self, lo: f64, hi: f64) -> f64 {
        let unit = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        lo + (hi - lo) * unit
    }

    /// A random (version 4) UUID.
    fn uuid(&mut self) -> String {
        let (hi, lo) = (self.next_u64(), self.next_u64());
        let hi = (hi & !0xF000) | 0x4000;
        let lo = (lo & !(0b11 << 62)) | (0b10 << 62);
        format!(
            "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
            hi >> 32,
            (hi >> 16) & 0xFFFF,
            hi & 0xFFFF,
            lo >> 48,
            lo & 0xFFFF_FFFF_FFFF
        )
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use lotline_core::epcis::QualityKind;

    use super::*;

    fn demo(seed: u64) -> Vec<WorkItem> {
        SupplyChainWorkload::generate(seed, Scale::demo())
    }

    #[test]
    fn same_seed_same_story() {
        let a = demo(42);
        let b = demo(42);
        assert_eq!(a, b);
        let json = |items: &[WorkItem]| {
            serde_json::to_string(&items.iter().map(|i| (&i.org, &i.event)).collect::<Vec<_>>())
                .unwrap()
        };
        assert_eq!(json(&a), json(&b));
    }

    #[test]
    fn different_seed_different_story() {
        assert_ne!(demo(1), demo(2));
        assert_ne!(demo(0), demo(u64::MAX));
    }

    #[test]
    fn every_event_is_valid() {
        for seed in 0..20 {
            for (index, item) in demo(seed).iter().enumerate() {
                let problems = item.event.validate();
                assert!(
                    problems.is_empty(),
                    "seed {seed} event {index} ({:?}): {problems:?}",
                    item.event
                );
            }
        }
    }

    #[test]
    fn demo_tells_the_whole_story() {
        for seed in 0..20 {
            let items = demo(seed);
            assert_eq!(items.len(), Scale::demo().event_count());
            assert!((50..=70).contains(&items.len()), "{} events", items.len());

            let types: BTreeSet<EventType> = items.iter().map(|i| i.event.event_type).collect();
            assert_eq!(
                types,
                BTreeSet::from([
                    EventType::ObjectEvent,
                    EventType::AggregationEvent,
                    EventType::TransformationEvent
                ])
            );
            let steps: BTreeSet<String> = items
                .iter()
                .filter_map(|i| i.event.biz_step.clone())
                .collect();
            for step in [
                "commissioning",
                "shipping",
                "receiving",
                "inspecting",
                "holding",
                "packing",
                "storing",
            ] {
                assert!(steps.contains(step), "seed {seed}: no {step}");
            }
            let fails = items
                .iter()
                .filter(|i| {
                    matches!(
                        &i.event.quality,
                        Some(QualityFact::Inspection {
                            result: InspectionResult::Fail,
                            ..
                        })
                    )
                })
                .count();
            assert_eq!(fails, 1, "seed {seed}");
            let kinds: Vec<QualityKind> = items
                .iter()
                .filter_map(|i| i.event.quality.as_ref())
                .map(|q| q.kind())
                .collect();
            assert_eq!(
                kinds
                    .iter()
                    .filter(|k| **k == QualityKind::NonConformance)
                    .count(),
                1
            );
            assert!(kinds.contains(&QualityKind::Certificate));
            let excursions = items
                .iter()
                .flat_map(|i| &i.event.sensor_element_list)
                .flat_map(|e| &e.sensor_report)
                .filter(|r| {
                    r.kind.as_deref() == Some("Temperature")
                        && r.value.is_some_and(|v| v > COLD_CHAIN_MAX_CEL)
                })
                .count();
            assert_eq!(excursions, 1, "seed {seed}");

            let orgs: BTreeSet<&str> = items.iter().map(|i| i.org.as_str()).collect();
            assert_eq!(
                orgs,
                BTreeSet::from(["supplier", "manufacturer", "distributor", "regulator"])
            );
        }
    }

    #[test]
    fn the_validator_has_teeth() {
        // Guards `every_event_is_valid` against a validator that accepts anything.
        let mut event = demo(1)[0].event.clone();
        let class = &mut event.quantity_list[0].epc_class;
        let bad_check_digit = class.replace("/01/09506001", "/01/19506001");
        *class = bad_check_digit;
        event.event_time = "2026-03-02 08:00".to_owned();
        assert!(event.validate().len() >= 2, "{:?}", event.validate());
    }

    #[test]
    fn the_default_policy_lets_every_role_write_its_part() {
        use lotline_core::SigningKey;
        use lotline_genesis::{
            ConsensusParams, Genesis, Org, ReadPolicy, Role, Validator, default_policy,
        };

        let roles = [
            ("supplier", Role::Supplier),
            ("manufacturer", Role::Manufacturer),
            ("distributor", Role::Distributor),
            ("regulator", Role::Regulator),
        ];
        let orgs: Vec<Org> = roles
            .iter()
            .zip(1u8..)
            .map(|((id, role), seed)| Org {
                id: (*id).to_owned(),
                name: id.to_uppercase(),
                role: *role,
                client_keys: vec![SigningKey::from_seed(&[seed; 32]).public_key()],
            })
            .collect();
        let validators: Vec<Validator> = roles
            .iter()
            .zip(11u8..)
            .map(|((id, _), seed)| Validator {
                org: (*id).to_owned(),
                node_key: SigningKey::from_seed(&[seed; 32]).public_key(),
                p2p: None,
            })
            .collect();
        let genesis = Genesis::from_parts(
            "sim".to_owned(),
            ConsensusParams::default(),
            orgs,
            validators,
            default_policy(),
            ReadPolicy::default(),
        )
        .unwrap();
        for seed in 0..5 {
            for item in demo(seed) {
                let org = genesis.org(&item.org).unwrap();
                if let Err(e) = genesis.check_write(org, &item.event) {
                    panic!("seed {seed}: {e}");
                }
            }
        }
    }

    #[test]
    fn inspection_results_agree_with_their_measurements() {
        for item in demo(7) {
            if let Some(QualityFact::Inspection {
                result,
                measurements,
                ..
            }) = &item.event.quality
            {
                let within = measurements.iter().all(Measurement::within_spec);
                assert_eq!(
                    *result == InspectionResult::Pass,
                    within,
                    "{:?}",
                    item.event
                );
            }
        }
    }

    #[test]
    fn times_increase_and_ids_are_unique() {
        let items = demo(3);
        assert_eq!(
            items[0].event.event_time.len(),
            "2026-03-02T08:00:00.000Z".len()
        );
        assert!(items[0].event.event_time.as_str() > "2026-03-02T08:00:00.000Z");
        for pair in items.windows(2) {
            assert!(pair[0].event.event_time < pair[1].event.event_time);
        }
        let ids: BTreeSet<&str> = items
            .iter()
            .filter_map(|i| i.event.event_id.as_deref())
            .collect();
        assert_eq!(ids.len(), items.len());
        assert!(
            items
                .iter()
                .all(|i| i.event.event_time_zone_offset == "+08:00")
        );
    }

    #[test]
    fn gs1_keys_have_valid_check_digits() {
        // Examples published by GS1 (GTIN, GLN, SSCC).
        assert_eq!(with_check_digit("0950600013435"), "09506000134352");
        assert_eq!(with_check_digit("0061414112345"), "00614141123452");
        assert_eq!(with_check_digit("950600013437"), "9506000134376");
        assert_eq!(with_check_digit("10614141234567890"), "106141412345678908");
        let valid = |key: &str| {
            let (body, check) = key.split_at(key.len() - 1);
            gs1::check_digit(body).map(|d| d.to_string()).as_deref() == Some(check)
        };
        let mut keys = 0;
        for item in demo(11) {
            for id in item.event.identifiers() {
                let mut segments = id.trim_start_matches("https://id.gs1.org/").split('/');
                let (ai, key) = (segments.next().unwrap(), segments.next().unwrap());
                let expected_len = match ai {
                    "01" => 14,
                    "00" => 18,
                    other => panic!("unexpected AI {other} in {id}"),
                };
                assert_eq!(key.len(), expected_len, "{id}");
                assert!(valid(key), "{id}");
                let parsed = gs1::Identifier::parse(id).unwrap_or_else(|e| panic!("{id}: {e}"));
                assert!(!matches!(parsed, gs1::Identifier::Other(_)), "{id}");
                keys += 1;
            }
            for place in item.event.read_point.iter().chain(&item.event.biz_location) {
                let gln = place.id.trim_start_matches("https://id.gs1.org/414/");
                assert_eq!(gln.len(), 13);
                assert!(valid(gln), "{gln}");
                let parsed = gs1::Identifier::parse(&place.id)
                    .unwrap_or_else(|e| panic!("{}: {e}", place.id));
                assert!(
                    matches!(parsed, gs1::Identifier::Location { .. }),
                    "{}",
                    place.id
                );
            }
        }
        assert!(keys > 100);
    }

    #[test]
    fn events_survive_a_statement_round_trip() {
        use lotline_core::{Digest, SigningKey, Statement};
        let key = SigningKey::from_seed(&[5; 32]);
        for item in demo(5) {
            let statement = Statement {
                version: 1,
                chain_id: Digest([1; 32]),
                org: item.org.clone(),
                key: key.public_key(),
                issued_at_ms: START_MS,
                nonce: "00".into(),
                event: item.event.clone(),
            };
            let envelope = statement.sign(&key);
            assert!(envelope.check_shape().is_ok());
            assert_eq!(
                Statement::from_payload(&envelope.payload).unwrap(),
                statement
            );
        }
    }

    #[test]
    fn clock_and_uuid_helpers() {
        assert_eq!(format_time(START_MS), "2026-03-02T08:00:00.000Z");
        assert_eq!(format_time(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_time(951_782_400_123), "2000-02-29T00:00:00.123Z");
        let uuid = SplitMix64(9).uuid();
        assert_eq!(uuid.len(), 36);
        assert_eq!(&uuid[14..15], "4");
        assert!(matches!(&uuid[19..20], "8" | "9" | "a" | "b"));
    }

    #[test]
    fn tiny_scales_still_make_sense() {
        let zero = Scale {
            raw_lots: 0,
            batches: 0,
            cases_per_batch: 0,
            items_per_case: 0,
            storage_readings: 0,
        };
        let items = SupplyChainWorkload::generate(1, zero);
        assert_eq!(items.len(), zero.event_count());
        assert!(items.iter().all(|i| i.event.validate().is_empty()));
        let transform = items
            .iter()
            .find(|i| i.event.event_type == EventType::TransformationEvent)
            .unwrap();
        assert!(!transform.event.input_quantity_list.is_empty());
    }
}
