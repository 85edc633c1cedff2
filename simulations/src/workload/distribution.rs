//! After packing: the manufacturer ships a campaign's pallets to one of the
//! distributor's centres; the centre receives them, keeps them cold (with
//! temperature readings; one excursion in the first campaign), breaks the
//! pallets into cases and delivers cases to retail stores.
//!
//! Hauliers carry every shipment (parties, not member orgs): the despatch
//! names the carrier as the goods' `possessing_party` beside their next
//! owner, the receipt as the party that hands them over.
//!
//! Retail stores are trading parties, not member orgs, so the distributor
//! records both the despatch and the store's receipt (the store's receiving
//! advice, `recadv`, relayed as proof of delivery). The recall and the
//! regulator's spot check close the story.

use std::collections::BTreeMap;

use lotline_core::epcis::{
    Action, EventType, InspectionResult, NonConformanceHandling, QualityFact, RecallClass,
    SensorElement, SensorReport, Severity,
};
use serde_json::Value;

use super::build::{self, HOUR_MS, Leg, MINUTE_MS, round1, round2};
use super::ids::{self, CARRIERS, Party, RETAILERS};
use super::production::Pallet;
use super::signal::{EXCURSION_INTERVAL_MINUTES, EXCURSION_READINGS};
use super::story::Story;
use crate::workload::COLD_CHAIN_MAX_CEL;

/// Where a shipment goes from and to, and who carries it.
struct Haul<'a> {
    from: &'a Party,
    to: &'a Party,
    carrier: &'a Party,
}

/// The haulier of every shipment from the manufacturer to a centre.
const LINE_HAUL_CARRIER: u32 = 0;

/// The haulier of retail delivery `order` of `campaign`: the delivery
/// carriers (every carrier but the line-haul one) take a campaign's
/// deliveries in turn, from a turn that is a pure function of the seed and
/// the campaign (so choosing draws nothing from the story's generator).
pub(super) fn delivery_carrier(seed: u64, campaign: u32, order: u64) -> u32 {
    let delivery = u64::from(CARRIERS - 1);
    let turn = ids::pick(seed, u64::from(campaign), delivery);
    1 + ((turn + order) % delivery) as u32
}

impl Story {
    /// Ships, stores, unpacks and delivers campaign `campaign`'s pallets.
    pub(super) fn distribute(&mut self, campaign: u32, pallets: &[Pallet]) {
        let centre = self.centres[campaign as usize % self.centres.len()].clone();
        let manufacturer = self.manufacturer.clone();
        let ssccs: Vec<String> = pallets.iter().map(|p| p.sscc.clone()).collect();
        let haul = Haul {
            from: &manufacturer,
            to: &centre,
            carrier: &ids::carrier(LINE_HAUL_CARRIER),
        };
        self.transport(haul, &ssccs, vec![], (2 * 60, 6 * 60), false);
        self.cold_storage(campaign, &centre, &ssccs);
        for pallet in pallets {
            self.advance(5, 20);
            let mut event = self.event(EventType::AggregationEvent, Some(Action::Delete));
            event.parent_id = Some(pallet.sscc.clone());
            event.child_epcs = pallet.cases.iter().map(|(case, _)| case.clone()).collect();
            event.biz_step = Some("unpacking".to_owned());
            event.disposition = Some("in_progress".to_owned());
            event.read_point = centre.site();
            event.biz_location = centre.site();
            self.push(&centre.org, event);
        }
        let cases: Vec<&(String, Vec<String>)> = pallets.iter().flat_map(|p| &p.cases).collect();
        let warm = self
            .signal
            .as_ref()
            .is_some_and(|s| s.excursion_campaign == campaign);
        for (index, order) in cases
            .chunks(self.scale.cases_per_order as usize)
            .enumerate()
        {
            let store = ids::retailer(self.rng.below(u64::from(RETAILERS)) as u32);
            let ssccs: Vec<String> = order.iter().map(|(case, _)| case.clone()).collect();
            let reference = format!("PO{}", self.document_number());
            let po = self.transaction("po", &store, &reference);
            let excursion = warm && index == 0;
            let carrier = ids::carrier(delivery_carrier(self.seed, campaign, index as u64));
            let haul = Haul {
                from: &centre,
                to: &store,
                carrier: &carrier,
            };
            self.transport(haul, &ssccs, vec![po], (10, 30), excursion);
            let delivered: Vec<String> = order
                .iter()
                .flat_map(|(_, units)| units.iter().cloned())
                .collect();
            self.damage_on_receipt(campaign, index as u64, &centre, &store, &delivered);
            let units = order
                .first()
                .map(|(_, units)| units.clone())
                .unwrap_or_default();
            self.last_retail = Some((store, units));
        }
    }

    /// A shipment from `from` and its receipt at `to`, `transit` minutes
    /// apart, by `carrier`. The sender attests the despatch; the receiver
    /// attests the receipt, or the sender when the receiver is not a
    /// member (a store).
    fn transport(
        &mut self,
        haul: Haul<'_>,
        ssccs: &[String],
        mut transactions: Vec<lotline_core::epcis::BizTransaction>,
        transit: (u64, u64),
        excursion: bool,
    ) {
        let Haul { from, to, carrier } = haul;
        let reference = format!("DA{}", self.document_number());
        transactions.push(self.transaction("desadv", from, &reference));
        self.advance(10, 40);
        let mut event = self.event(EventType::ObjectEvent, Some(Action::Observe));
        event.epc_list = ssccs.to_vec();
        event.biz_step = Some("shipping".to_owned());
        event.disposition = Some("in_transit".to_owned());
        event.read_point = from.site();
        event.biz_transaction_list = transactions.clone();
        (event.source_list, event.destination_list) =
            build::carried(from, to, carrier, Leg::Despatch);
        self.push(&from.org, event);
        if excursion {
            self.slow_excursion(from, ssccs);
        }

        self.advance(transit.0, transit.1);
        let receiver = if to.org.is_empty() {
            &from.org
        } else {
            &to.org
        };
        if to.org.is_empty() {
            let reference = format!("RA{}", self.document_number());
            transactions.push(self.transaction("recadv", to, &reference));
        }
        let mut event = self.event(EventType::ObjectEvent, Some(Action::Observe));
        event.epc_list = ssccs.to_vec();
        event.biz_step = Some("receiving".to_owned());
        event.disposition = Some(
            if to.org.is_empty() {
                "sellable_accessible"
            } else {
                "in_progress"
            }
            .to_owned(),
        );
        event.read_point = to.site();
        event.biz_location = to.site();
        event.biz_transaction_list = transactions;
        (event.source_list, event.destination_list) =
            build::carried(from, to, carrier, Leg::Receipt);
        self.push(receiver, event);
    }

    /// A planted story's damage report: when retail delivery `order` of
    /// `campaign` arrives damaged (`signal::arrives_damaged`), the store
    /// finds the damaged units on receipt and the distributor, which
    /// records the store's receipts, states a non-conformance about them.
    /// Draws only from the signal's generator.
    fn damage_on_receipt(
        &mut self,
        campaign: u32,
        order: u64,
        centre: &Party,
        store: &Party,
        delivered: &[String],
    ) {
        let carrier = delivery_carrier(self.seed, campaign, order);
        if !super::signal::arrives_damaged(self.seed, campaign, order, carrier) {
            return;
        }
        let Some(signal) = self.signal.as_mut() else {
            return;
        };
        let damaged = signal.damaged(carrier, delivered);
        let code = format!("DMG-{:06}", signal.truth.carrier_bad.len());
        self.now_ms += MINUTE_MS + 1;
        let mut event = self.event(EventType::ObjectEvent, Some(Action::Observe));
        event.epc_list = damaged;
        event.biz_step = Some("inspecting".to_owned());
        event.disposition = Some("damaged".to_owned());
        event.read_point = store.site();
        event.biz_location = store.site();
        event.quality = Some(QualityFact::NonConformance {
            code,
            description: "found damaged on receipt at the store: cracked barrel or bent \
                          plunger rod"
                .to_owned(),
            severity: Severity::Major,
            handling: Some(NonConformanceHandling::ReturnToSupplier),
        });
        self.push(&centre.org, event);
        self.summary.non_conformances += 1;
    }

    /// Temperature readings of the pallets in the cold room; in the
    /// campaigns `Scale::has_excursion` picks, one reading is an
    /// excursion, and a non-conformance follows it.
    fn cold_storage(&mut self, campaign: u32, centre: &Party, ssccs: &[String]) {
        let readings = self.scale.storage_readings;
        let excursion = self
            .scale
            .has_excursion(campaign)
            .then(|| self.rng.below(u64::from(readings)) as u32);
        let sensor = format!(
            "https://id.gs1.org/8004/{}TL-{:03}",
            ids::DISTRIBUTOR_PREFIX,
            1 + self.rng.below(50)
        );
        for reading in 0..readings {
            self.advance(30, 120);
            let spike = excursion == Some(reading);
            let reports: Vec<SensorReport> = (0..3u64)
                .map(|k| {
                    let value = if spike && k == 1 {
                        round1(self.between(COLD_CHAIN_MAX_CEL + 0.6, COLD_CHAIN_MAX_CEL + 3.5))
                    } else {
                        round1(self.between(2.5, 7.0))
                    };
                    temperature(value, self.now_ms - (2 - k) * HOUR_MS / 4)
                })
                .collect();
            let peak = reports
                .iter()
                .filter_map(|r| r.value)
                .fold(f64::MIN, f64::max);
            let mut event = self.event(EventType::ObjectEvent, Some(Action::Observe));
            event.epc_list = ssccs.to_vec();
            event.biz_step = Some("storing".to_owned());
            event.disposition = Some("sellable_not_accessible".to_owned());
            event.read_point = centre.site();
            event.biz_location = centre.site();
            event.sensor_element_list = vec![SensorElement {
                sensor_metadata: Some(BTreeMap::from([
                    ("deviceID".to_owned(), Value::from(sensor.clone())),
                    (
                        "time".to_owned(),
                        Value::from(build::format_time(self.now_ms)),
                    ),
                ])),
                sensor_report: reports,
                extensions: BTreeMap::new(),
            }];
            self.push(&centre.org, event);
            if spike {
                self.summary.excursions += 1;
                self.excursion_report(centre, ssccs, peak);
            }
        }
    }

    /// A planted story's slow excursion: the truck's logger, read out by
    /// the sender, shows the load warming above the limit for over an hour
    /// and cooling again. One event with every reading; no custody change.
    fn slow_excursion(&mut self, from: &Party, ssccs: &[String]) {
        let Some(signal) = self.signal.as_mut() else {
            return;
        };
        let profile = signal.excursion_profile();
        let interval_ms = EXCURSION_INTERVAL_MINUTES * MINUTE_MS;
        let start_ms = self.now_ms;
        let reports: Vec<SensorReport> = profile
            .iter()
            .zip(0u64..)
            .map(|(value, k)| temperature(round1(*value), start_ms + k * interval_ms))
            .collect();
        let above = profile
            .iter()
            .filter(|v| round1(**v) > COLD_CHAIN_MAX_CEL)
            .count() as u64;
        let peak = profile.iter().map(|v| round1(*v)).fold(f64::MIN, f64::max);
        self.now_ms = start_ms + u64::from(EXCURSION_READINGS) * interval_ms + 1;
        let logger = format!(
            "https://id.gs1.org/8004/{}TRUCK-{:03}",
            ids::DISTRIBUTOR_PREFIX,
            1 + self.rng_signal_below(90)
        );
        let mut event = self.event(EventType::ObjectEvent, Some(Action::Observe));
        event.epc_list = ssccs.to_vec();
        event.biz_step = Some("transporting".to_owned());
        event.read_point = from.site();
        event.sensor_element_list = vec![SensorElement {
            sensor_metadata: Some(BTreeMap::from([(
                "deviceID".to_owned(),
                Value::from(logger),
            )])),
            sensor_report: reports,
            extensions: BTreeMap::new(),
        }];
        if let Some(signal) = self.signal.as_mut() {
            let truth = &mut signal.truth;
            truth.excursion_event_id = event.event_id.clone().unwrap_or_default();
            truth.excursion_subjects = ssccs.iter().map(|s| ids::canonical(s)).collect();
            truth.excursion_limit_cel = COLD_CHAIN_MAX_CEL;
            truth.excursion_minutes_above = above * EXCURSION_INTERVAL_MINUTES;
            truth.excursion_peak_cel = peak;
        }
        self.push(&from.org, event);
    }

    /// A draw from the signal's generator (0 without a signal).
    fn rng_signal_below(&mut self, n: u64) -> u64 {
        self.signal
            .as_mut()
            .map_or(0, |s| (s.unit() * n as f64) as u64)
    }

    fn excursion_report(&mut self, centre: &Party, ssccs: &[String], peak: f64) {
        self.advance(15, 45);
        let code = format!("NC-{}", self.document_number());
        let mut event = self.event(EventType::ObjectEvent, Some(Action::Observe));
        event.epc_list = ssccs.to_vec();
        event.biz_step = Some("holding".to_owned());
        event.disposition = Some("sellable_not_accessible".to_owned());
        event.read_point = centre.site();
        event.biz_location = centre.site();
        event.quality = Some(QualityFact::NonConformance {
            code,
            description: format!(
                "cold room excursion to {peak} CEL (limit {COLD_CHAIN_MAX_CEL} CEL) for under 30 minutes; \
                 within the product's stability budget"
            ),
            severity: Severity::Minor,
            handling: Some(NonConformanceHandling::UseAsIs),
        });
        self.push(&centre.org, event);
        self.summary.non_conformances += 1;
    }

    /// The manufacturer recalls everything made with the first cure-agent
    /// lot after the supplier reports it contaminated.
    pub(super) fn recall(&mut self) {
        self.advance(6 * 60, 24 * 60);
        let recall_id = format!(
            "RC-{}-{}",
            &build::format_date(self.now_ms)[..4],
            self.document_number()
        );
        let lot = self.summary.recalled_lot.clone();
        let manufacturer = self.manufacturer.clone();
        let mut event = self.event(EventType::ObjectEvent, Some(Action::Observe));
        event.quantity_list = vec![build::whole(&lot)];
        event.biz_step = Some("holding".to_owned());
        event.disposition = Some("recalled".to_owned());
        event.read_point = manufacturer.site();
        event.biz_location = manufacturer.site();
        event.quality = Some(QualityFact::RecallOrder {
            recall_id: recall_id.clone(),
            reason: "supplier notice: cure agent lot contaminated with extractable \
                     nitrosamine precursors; stoppers made from it may exceed the limit"
                .to_owned(),
            class: RecallClass::II,
            scope: vec![lot],
        });
        self.push(&manufacturer.org, event);
        self.summary.recall_id = recall_id;
    }

    /// The regulator weighs two units of the latest retail delivery at the
    /// store.
    pub(super) fn spot_check(&mut self) {
        let Some((store, units)) = self.last_retail.clone() else {
            return;
        };
        self.advance(24 * 60, 48 * 60);
        let sample: Vec<String> = units.into_iter().take(2).collect();
        let regulator = self.regulator.clone();
        let force = round2(self.between(3.0, 7.0));
        let mut event = self.inspection(
            &regulator,
            Vec::new(),
            "market surveillance spot check",
            vec![build::measurement(
                "breakLooseForce",
                force,
                Some("NEW"),
                (2.0, 8.0),
            )],
            "INSP-SCALE-07",
        );
        event.epc_list = sample;
        event.read_point = store.site();
        event.biz_location = store.site();
        if let Some(QualityFact::Inspection { result, .. }) = &event.quality {
            debug_assert_eq!(*result, InspectionResult::Pass);
        }
        self.push(&regulator.org, event);
    }
}

fn temperature(value: f64, at_ms: u64) -> SensorReport {
    SensorReport {
        kind: Some("Temperature".to_owned()),
        value: Some(value),
        min_value: None,
        max_value: None,
        mean_value: None,
        uom: Some("CEL".to_owned()),
        time: Some(build::format_time(at_ms)),
        extensions: BTreeMap::new(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use lotline_core::lineage;

    use super::ids::{self, CARRIERS};
    use crate::workload::{Roles, Scale, SupplyChainWorkload};

    /// Goal: every despatch to a centre or a store names its haulier as
    /// the goods' possessing party beside their next owner, and the
    /// receipt of the same goods names the same haulier handing them over;
    /// the manufacturer's pallets go by the line-haul carrier, the retail
    /// deliveries by the delivery carriers, each of which carries some.
    /// Method: the plain small story of a few seeds, read event by event.
    #[test]
    fn every_shipment_names_the_haulier_that_carries_it() {
        let roles = Roles::demo();
        let line_haul = ids::carrier(super::LINE_HAUL_CARRIER).party;
        for seed in [1, 7, 42] {
            let items = SupplyChainWorkload::generate(seed, Scale::small());
            let mut carried_by: BTreeMap<Vec<String>, String> = BTreeMap::new();
            let mut deliveries: BTreeMap<String, usize> = BTreeMap::new();
            let mut receipts = 0;
            for item in &items {
                let event = &item.event;
                match event.biz_step.as_deref() {
                    Some("shipping") if item.org != roles.supplier => {
                        let carrier = lineage::carrier(event).expect("a carrier");
                        if item.org == roles.manufacturer {
                            assert_eq!(carrier, line_haul, "seed {seed}");
                        } else {
                            assert_ne!(carrier, line_haul, "seed {seed}");
                            *deliveries.entry(carrier.clone()).or_default() += 1;
                        }
                        carried_by.insert(event.epc_list.clone(), carrier);
                    }
                    Some("receiving") if carried_by.contains_key(&event.epc_list) => {
                        let handed_over = event
                            .source_list
                            .iter()
                            .find(|s| s.kind == "possessing_party")
                            .map(|s| s.source.clone());
                        assert_eq!(
                            handed_over.as_ref(),
                            carried_by.get(&event.epc_list),
                            "seed {seed}"
                        );
                        receipts += 1;
                    }
                    _ => {}
                }
            }
            assert_eq!(
                deliveries.len() as u32,
                CARRIERS - 1,
                "seed {seed}: {deliveries:?}"
            );
            assert_eq!(receipts, carried_by.len(), "seed {seed}: each received");
        }
    }
}
