//! The story's state and the steps every chapter shares: the clock, event
//! ids, pushing events, inspections and transformations. The chapters are
//! `supply` (raw lots), `production` (five levels, serialisation, packing)
//! and `distribution` (shipping, cold storage, retail, recall, spot check).
//!
//! Events go into `out`, one campaign at a time; the iterator in `mod.rs`
//! drains it before asking for the next campaign, so memory holds one
//! campaign's events plus one lot per material, whatever the scale.

use std::collections::{BTreeMap, VecDeque};

use lotline_core::epcis::{
    Action, BizTransaction, Event, EventType, InspectionResult, Instrument, Measurement,
    QualityFact, QuantityElement,
};
use serde_json::Value;

use super::build::{self, DAY_MS, MINUTE_MS, START_MS};
use super::ids::{self, Party};
use super::materials::Material;
use super::signal::Signal;
use super::summary::{Width, WorkloadSummary};
use super::{Roles, Scale, WorkItem};
use crate::sim::rng::Rng;

/// A lot as the lineage sees it: its class, its depth (TransformationEvents
/// between it and the raw lots) and the raw lot at the end of its deepest
/// backward path.
#[derive(Clone, Debug)]
pub(super) struct LotRef {
    pub class: String,
    pub depth: u32,
    pub origin: String,
}

impl LotRef {
    pub fn raw(class: &str) -> LotRef {
        LotRef {
            class: class.to_owned(),
            depth: 0,
            origin: class.to_owned(),
        }
    }

    /// The depth and origin of a lot made from `inputs`: one level below
    /// the deepest input (the first of equals).
    pub fn made_from(class: String, inputs: &[&LotRef]) -> LotRef {
        let mut deepest: Option<&LotRef> = None;
        for input in inputs {
            if deepest.is_none_or(|d| input.depth > d.depth) {
                deepest = Some(input);
            }
        }
        LotRef {
            class,
            depth: deepest.map_or(0, |d| d.depth) + 1,
            origin: deepest.map_or_else(String::new, |d| d.origin.clone()),
        }
    }
}

/// One output of a transformation: a new lot, its number, and how much of
/// it was made (`uom` `None` counts units).
#[derive(Clone, Debug)]
pub(super) struct Output {
    pub class: String,
    pub lot_number: String,
    pub amount: f64,
    pub uom: Option<&'static str>,
}

/// A raw-material lot in the manufacturer's stock.
#[derive(Clone, Debug)]
pub(super) struct RawLot {
    pub lot: LotRef,
    pub lot_number: String,
}

/// One transformation level: its CBV bizStep and its production-order code.
#[derive(Clone, Copy, Debug)]
pub(super) enum Level {
    Mixing,
    Formulating,
    Forming,
    Curing,
    Filling,
    Assembly,
    Serialising,
}

impl Level {
    fn biz_step(self) -> &'static str {
        match self {
            Level::Filling | Level::Assembly => "assembling",
            _ => "commissioning",
        }
    }

    fn order_code(self) -> &'static str {
        match self {
            Level::Mixing => "MIX",
            Level::Formulating => "FRM",
            Level::Forming => "MLD",
            Level::Curing => "CUR",
            Level::Filling => "FIL",
            Level::Assembly => "ASM",
            Level::Serialising => "SER",
        }
    }
}

#[derive(Debug)]
pub(super) struct Story {
    pub seed: u64,
    pub rng: Rng,
    pub scale: Scale,
    pub now_ms: u64,
    /// Event ids handed out so far (the input of [`ids::event_id`]).
    pub ids_issued: u64,
    pub out: VecDeque<WorkItem>,
    pub supplier: Party,
    pub plants: Vec<Party>,
    pub manufacturer: Party,
    pub centres: Vec<Party>,
    pub regulator: Party,
    pub stock: BTreeMap<Material, RawLot>,
    pub product_gtins: [String; 2],
    pub wip_gtin_base: u64,
    pub next_serial: u64,
    pub next_sscc: u64,
    pub next_document: u64,
    pub raw_lot_base: u64,
    pub width: Width,
    /// The store and units of the latest retail delivery (for the spot check).
    pub last_retail: Option<(Party, Vec<String>)>,
    pub summary: WorkloadSummary,
    /// The planted causes, in a planted story.
    pub signal: Option<Signal>,
}

impl Story {
    pub fn new(seed: u64, scale: Scale, roles: &Roles, signal: Option<Signal>) -> Story {
        use super::ids::{
            DISTRIBUTION_CENTRES, DISTRIBUTOR_PREFIX, MANUFACTURER_PREFIX, REGULATOR_PREFIX,
            SUPPLIER_PLANTS, SUPPLIER_PREFIX,
        };
        let mut rng = Rng::new(seed);
        let product = 20_000 + rng.below(40_000);
        let plants = (0..SUPPLIER_PLANTS)
            .map(|plant| Party::new(&roles.supplier, SUPPLIER_PREFIX, 20 + 10 * plant))
            .collect();
        let centres = (0..DISTRIBUTION_CENTRES)
            .map(|dc| Party::new(&roles.distributor, DISTRIBUTOR_PREFIX, 10 + 10 * dc))
            .collect();
        Story {
            seed,
            scale,
            now_ms: START_MS,
            ids_issued: 0,
            out: VecDeque::new(),
            supplier: Party::new(&roles.supplier, SUPPLIER_PREFIX, 10),
            plants,
            manufacturer: Party::new(&roles.manufacturer, MANUFACTURER_PREFIX, 10),
            centres,
            regulator: Party::new(&roles.regulator, REGULATOR_PREFIX, 10),
            stock: BTreeMap::new(),
            product_gtins: [
                ids::gtin(MANUFACTURER_PREFIX, product),
                ids::gtin(MANUFACTURER_PREFIX, product + 1),
            ],
            wip_gtin_base: 70_000 + rng.below(20_000),
            next_serial: 100_000 + rng.below(800_000) * 1_000,
            next_sscc: rng.below(900_000) * 1_000,
            next_document: 1000 + rng.below(8000),
            raw_lot_base: 10_000 + rng.below(80_000),
            width: Width::default(),
            last_retail: None,
            summary: WorkloadSummary {
                campaigns: scale.campaigns,
                ..WorkloadSummary::default()
            },
            signal,
            rng,
        }
    }

    /// Campaign `index`: raw lots where needed, the five levels, packing,
    /// distribution, and the recall after the last campaign of the first
    /// cure-agent lot.
    pub fn campaign(&mut self, index: u32) {
        self.deliver(index);
        let finished = self.produce(index);
        let pallets = self.pack(index, &finished);
        self.distribute(index, &pallets);
        let units = self.scale.units_per_campaign();
        self.summary.units += units;
        let used: Vec<String> = self
            .stock
            .values()
            .map(|raw| raw.lot.class.clone())
            .collect();
        for lot in used {
            self.width.credit(&lot, units);
        }
        if index + 1 == self.recall_campaign() {
            self.recall();
        }
    }

    /// The campaign after which the recall is issued: the last one that
    /// used the first cure-agent lot.
    pub fn recall_campaign(&self) -> u32 {
        self.scale.campaigns_per_cure_lot.min(self.scale.campaigns)
    }

    /// After the last campaign: the regulator's spot check; then the
    /// summary is complete.
    pub fn epilogue(&mut self) -> WorkloadSummary {
        self.spot_check();
        let (wide_raw_lot, wide_units) = self.width.finish();
        self.summary.wide_raw_lot = ids::canonical(&wide_raw_lot);
        self.summary.wide_units = wide_units;
        self.summary.clone()
    }

    // ---- shared steps ------------------------------------------------------

    /// A blank event at the current time with the next event id.
    pub fn event(&mut self, event_type: EventType, action: Option<Action>) -> Event {
        let id = self.next_event_id();
        build::blank(event_type, action, id, self.now_ms)
    }

    pub fn next_event_id(&mut self) -> String {
        let id = ids::event_id(self.seed, self.ids_issued);
        self.ids_issued += 1;
        id
    }

    pub fn push(&mut self, org: &str, event: Event) {
        self.summary.events += 1;
        self.out.push_back(WorkItem {
            org: org.to_owned(),
            event,
        });
    }

    /// Moves the clock forward by a whole number of minutes in `[min, max]`
    /// plus some milliseconds, so that no two events share a time.
    pub fn advance(&mut self, min_minutes: u64, max_minutes: u64) {
        let minutes = self.rng.range(min_minutes, max_minutes.max(min_minutes));
        self.now_ms += minutes * MINUTE_MS + 1 + self.rng.below(999);
    }

    /// Uniform in `[low, high)`.
    pub fn between(&mut self, low: f64, high: f64) -> f64 {
        let unit = (self.rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        low + (high - low) * unit
    }

    pub fn document_number(&mut self) -> u64 {
        self.next_document += 1;
        self.next_document
    }

    /// A business transaction id of `party`: `urn:epcglobal:cbv:bt:<gln>:<ref>`.
    pub fn transaction(&mut self, kind: &str, party: &Party, reference: &str) -> BizTransaction {
        BizTransaction {
            kind: Some(kind.to_owned()),
            biz_transaction: format!("urn:epcglobal:cbv:bt:{}:{reference}", party.party_gln()),
        }
    }

    pub fn instrument(&mut self, prefix: &str, asset: &str) -> Instrument {
        Instrument {
            id: format!("https://id.gs1.org/8004/{prefix}{asset}"),
            calibrated_until: Some(build::format_time(
                self.now_ms + (30 + self.rng.below(300)) * DAY_MS,
            )),
        }
    }

    /// An inspection of `what` at `site` by `org`, passing when every
    /// measurement is within spec.
    pub fn inspection(
        &mut self,
        inspector: &Party,
        what: Vec<QuantityElement>,
        method: &str,
        measurements: Vec<Measurement>,
        asset: &str,
    ) -> Event {
        let prefix = inspector
            .party_gln()
            .get(..7)
            .unwrap_or_default()
            .to_owned();
        let instrument = self.instrument(&prefix, asset);
        self.inspection_with(inspector, what, method, measurements, instrument)
    }

    /// [`Story::inspection`] with a given instrument (draws nothing).
    pub fn inspection_with(
        &mut self,
        inspector: &Party,
        what: Vec<QuantityElement>,
        method: &str,
        measurements: Vec<Measurement>,
        instrument: Instrument,
    ) -> Event {
        let passed = measurements.iter().all(Measurement::within_spec);
        let mut event = self.event(EventType::ObjectEvent, Some(Action::Observe));
        event.quantity_list = what;
        event.biz_step = Some("inspecting".to_owned());
        event.disposition = Some(
            if passed {
                "conformant"
            } else {
                "non_conformant"
            }
            .to_owned(),
        );
        event.read_point = inspector.site();
        event.biz_location = inspector.site();
        event.quality = Some(QualityFact::Inspection {
            result: if passed {
                InspectionResult::Pass
            } else {
                InspectionResult::Fail
            },
            method: Some(method.to_owned()),
            measurements,
            instrument: Some(instrument),
            private: false,
        });
        event
    }

    /// A manufacturer's TransformationEvent of `level` in campaign
    /// `campaign`: `inputs` (lot, quantity, uom) become `outputs`.
    /// Returns the outputs as lineage lots.
    /// Where a level's step runs: the finished lots are assembled on two
    /// lines (the site's GLN with extension `ASM1` or `ASM2`), each product
    /// on both, two campaigns at a time on each; every other step at the
    /// site itself. Root cause ranks steps by read point, so the story
    /// gives it lines to tell apart.
    fn line_of(&self, level: Level, campaign: u32) -> String {
        match level {
            Level::Assembly => format!(
                "{}/254/{}{}",
                self.manufacturer.site,
                level.order_code(),
                1 + (campaign / 2) % 2
            ),
            _ => self.manufacturer.site.clone(),
        }
    }

    pub fn transform(
        &mut self,
        level: Level,
        campaign: u32,
        inputs: &[(&LotRef, f64, &str)],
        outputs: Vec<Output>,
    ) -> Vec<LotRef> {
        assert!(!inputs.is_empty() && !outputs.is_empty());
        self.advance(20, 90);
        let order = self.production_order(level, campaign);
        let mut event = self.event(EventType::TransformationEvent, None);
        event.input_quantity_list = inputs
            .iter()
            .map(|(lot, amount, uom)| build::quantity(&lot.class, *amount, uom))
            .collect();
        event.output_quantity_list = outputs
            .iter()
            .map(|output| match output.uom {
                Some(uom) => build::quantity(&output.class, output.amount, uom),
                None => build::count(&output.class, output.amount as u64),
            })
            .collect();
        event.biz_step = Some(level.biz_step().to_owned());
        event.disposition = Some("in_progress".to_owned());
        event.read_point = Some(ids::location(&self.line_of(level, campaign)));
        event.biz_location = self.manufacturer.site();
        event.biz_transaction_list = vec![order];
        let mut ilmd = self.lot_master_data(&outputs);
        if matches!(level, Level::Assembly) && self.signal.is_some() {
            // A planted story states each product's storage limits in its
            // finished lots' master data: the cold chain is judged by them.
            let (min, max) = super::signal::STORAGE_CEL[campaign as usize % 2];
            ilmd.insert(super::signal::ILMD_MIN_CEL.to_owned(), Value::from(min));
            ilmd.insert(super::signal::ILMD_MAX_CEL.to_owned(), Value::from(max));
        }
        event.ilmd = Some(ilmd);
        let org = self.manufacturer.org.clone();
        self.push(&org, event);
        let input_lots: Vec<&LotRef> = inputs.iter().map(|(lot, _, _)| *lot).collect();
        outputs
            .into_iter()
            .map(|output| LotRef::made_from(output.class, &input_lots))
            .collect()
    }

    /// ilmd of a transformation: the lot number when there is one output,
    /// and the expiry date every output shares.
    fn lot_master_data(&self, outputs: &[Output]) -> BTreeMap<String, Value> {
        let mut ilmd = BTreeMap::from([(
            "cbvmda:itemExpirationDate".to_owned(),
            Value::from(build::format_date(self.now_ms + 730 * DAY_MS)),
        )]);
        if let [output] = outputs {
            ilmd.insert(
                "cbvmda:lotNumber".to_owned(),
                Value::from(output.lot_number.clone()),
            );
        }
        ilmd
    }

    pub fn production_order(&mut self, level: Level, campaign: u32) -> BizTransaction {
        let manufacturer = self.manufacturer.clone();
        let reference = format!("{}{campaign:06}", level.order_code());
        self.transaction("prodorder", &manufacturer, &reference)
    }

    /// The GTIN of a work-in-progress item (compound, sheet, ...), `kind`
    /// `0..5`, under the manufacturer's prefix.
    pub fn wip_gtin(&self, kind: u64) -> String {
        ids::gtin(ids::MANUFACTURER_PREFIX, self.wip_gtin_base + kind)
    }
}
