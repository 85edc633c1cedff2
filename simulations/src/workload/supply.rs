//! Raw materials: the supplier commissions lots (with a material
//! certificate) at its plants and ships them; the manufacturer receives
//! them and inspects each lot on arrival. In the first delivery one extra
//! elastomer lot fails incoming inspection and is quarantined; it never
//! enters production.

use std::collections::BTreeMap;

use lotline_core::epcis::{
    Action, DocumentRef, EventType, NonConformanceHandling, QualityFact, Severity,
};
use serde_json::Value;

use super::build::{self, DAY_MS};
use super::ids;
use super::materials::{LOT_OVERAGE, Material};
use super::story::{LotRef, RawLot, Story};

/// A lot commissioned for a delivery.
#[derive(Debug)]
struct Delivered {
    material: Material,
    raw: RawLot,
    quantity: f64,
    passes: bool,
}

impl Story {
    /// The delivery before campaign `campaign`: a new lot of every material
    /// whose current lot is used up.
    pub(super) fn deliver(&mut self, campaign: u32) {
        let mut lots = Vec::new();
        if campaign == 0 {
            lots.push(self.commission(Material::Elastomer, campaign, false));
        }
        for material in Material::ALL {
            let life = material.life_campaigns(self.scale.campaigns_per_cure_lot);
            if campaign.is_multiple_of(life) {
                lots.push(self.commission(material, campaign, true));
            }
        }
        self.ship_to_manufacturer(&lots);
        for lot in lots {
            self.inspect_incoming(&lot, campaign);
            if lot.passes && lot.material == Material::CureAgent && campaign == 0 {
                // The first cure-agent lot reaches the most units: the
                // supplier later reports it contaminated, hence the recall.
                self.summary.recalled_lot = ids::canonical(&lot.raw.lot.class);
            }
            if lot.passes {
                if let Some(old) = self.stock.insert(lot.material, lot.raw.clone()) {
                    self.width.close(&old.lot.class);
                }
                self.width.open(&lot.raw.lot.class, self.summary.raw_lots);
            }
            self.summary.raw_lots += 1;
        }
    }

    /// The supplier commissions one lot at the material's plant.
    fn commission(&mut self, material: Material, campaign: u32, passes: bool) -> Delivered {
        let spec = material.spec();
        let number = self.raw_lot_base + u64::from(campaign) * 10 + material as u64;
        let suffix = if passes { "" } else { "R" };
        let lot_number = format!("{}{number}{suffix}", spec.lot_prefix);
        let gtin = ids::gtin(ids::SUPPLIER_PREFIX, spec.item_reference);
        let class = ids::lgtin(&gtin, &lot_number);
        let life = material.life_campaigns(self.scale.campaigns_per_cure_lot);
        let needed = spec.use_per_unit * self.scale.units_per_campaign() as f64 * f64::from(life);
        let quantity = (needed * self.between(LOT_OVERAGE.0, LOT_OVERAGE.1)).ceil();
        let plant = self.plants[spec.plant as usize % self.plants.len()].clone();

        self.advance(10, 60);
        let certificate = self.certificate(spec.certificate_standard);
        let mut event = self.event(EventType::ObjectEvent, Some(Action::Add));
        event.quantity_list = vec![build::quantity(&class, quantity, spec.uom)];
        event.biz_step = Some("commissioning".to_owned());
        event.disposition = Some("active".to_owned());
        event.read_point = plant.site();
        event.biz_location = plant.site();
        event.ilmd = Some(BTreeMap::from([
            (
                "cbvmda:lotNumber".to_owned(),
                Value::from(lot_number.clone()),
            ),
            (
                "cbvmda:itemExpirationDate".to_owned(),
                Value::from(build::format_date(self.now_ms + 730 * DAY_MS)),
            ),
        ]));
        event.quality = Some(certificate);
        self.push(&plant.org, event);
        Delivered {
            material,
            raw: RawLot {
                lot: LotRef::raw(&class),
                lot_number,
            },
            quantity,
            passes,
        }
    }

    /// An EN 10204 style material certificate issued a few days ago.
    fn certificate(&mut self, standard: &str) -> QualityFact {
        let issued = self.now_ms - 3 * DAY_MS;
        let number = self.document_number();
        let digest: String = (0..4)
            .map(|_| format!("{:016x}", self.rng.next_u64()))
            .collect();
        QualityFact::Certificate {
            certificate_id: format!("COA-{number}"),
            issuer: self.supplier.party.clone(),
            standard: standard.to_owned(),
            valid_from: build::format_time(issued),
            valid_until: build::format_time(issued + 365 * DAY_MS),
            document: Some(DocumentRef {
                uri: format!("https://docs.supplier.example/certificates/{number}.pdf"),
                media_type: "application/pdf".to_owned(),
                blake3: digest,
            }),
        }
    }

    /// One despatch from the supplier's site, one receipt at the plant.
    fn ship_to_manufacturer(&mut self, lots: &[Delivered]) {
        let quantities: Vec<_> = lots
            .iter()
            .map(|lot| build::quantity(&lot.raw.lot.class, lot.quantity, lot.material.spec().uom))
            .collect();
        let (supplier, manufacturer) = (self.supplier.clone(), self.manufacturer.clone());
        let reference = format!("DA{}", self.document_number());
        let desadv = self.transaction("desadv", &supplier, &reference);

        self.advance(60, 240);
        let mut event = self.event(EventType::ObjectEvent, Some(Action::Observe));
        event.quantity_list = quantities.clone();
        event.biz_step = Some("shipping".to_owned());
        event.disposition = Some("in_transit".to_owned());
        event.read_point = supplier.site();
        event.biz_transaction_list = vec![desadv.clone()];
        (event.source_list, event.destination_list) = build::transfer(&supplier, &manufacturer);
        self.push(&supplier.org, event);

        self.advance(2 * 60, 8 * 60);
        let mut event = self.event(EventType::ObjectEvent, Some(Action::Observe));
        event.quantity_list = quantities;
        event.biz_step = Some("receiving".to_owned());
        event.disposition = Some("in_progress".to_owned());
        event.read_point = manufacturer.site();
        event.biz_location = manufacturer.site();
        event.biz_transaction_list = vec![desadv];
        (event.source_list, event.destination_list) = build::transfer(&supplier, &manufacturer);
        self.push(&manufacturer.org, event);
    }

    /// The incoming test of the lot's material; a failing lot is put on
    /// hold with a non-conformance.
    fn inspect_incoming(&mut self, lot: &Delivered, campaign: u32) {
        let (name, uom, min, max) = lot.material.spec().test;
        let margin = (max - min) * 0.1;
        let mut value = if lot.passes {
            build::round2(self.between(min + margin, max - margin))
        } else {
            build::round2(self.between(max + margin, max + 4.0 * margin))
        };
        if let Some(signal) = self.signal.as_mut()
            && lot.passes
            && lot.material == Material::Elastomer
        {
            value = build::round2(signal.drifted_viscosity(campaign));
            let truth = &mut signal.truth;
            if campaign == signal.drift_campaign {
                truth.drift_gtin =
                    ids::gtin(ids::SUPPLIER_PREFIX, lot.material.spec().item_reference);
                truth.drift_characteristic = name.to_owned();
                let plant = lot.material.spec().plant as usize % self.plants.len();
                truth.drift_supplier = ids::canonical(&self.plants[plant].site);
                truth.drift_first_lot = ids::canonical(&lot.raw.lot.class);
            }
        }
        let measurement = build::measurement(name, value, uom, (min, max));
        self.advance(20, 90);
        let manufacturer = self.manufacturer.clone();
        let event = self.inspection(
            &manufacturer,
            vec![build::whole(&lot.raw.lot.class)],
            "incoming inspection against the supplier's certificate",
            vec![measurement],
            "LAB-IN-01",
        );
        self.push(&manufacturer.org, event);
        if lot.passes {
            return;
        }
        self.advance(10, 45);
        let code = format!("NC-{}", self.document_number());
        let mut event = self.event(EventType::ObjectEvent, Some(Action::Observe));
        event.quantity_list = vec![build::quantity(
            &lot.raw.lot.class,
            lot.quantity,
            lot.material.spec().uom,
        )];
        event.biz_step = Some("holding".to_owned());
        event.disposition = Some("non_conformant".to_owned());
        event.read_point = manufacturer.site();
        event.biz_location = manufacturer.site();
        event.quality = Some(QualityFact::NonConformance {
            code,
            description: format!(
                "incoming lot {}: {name} {value} outside the specification [{min}, {max}]",
                lot.raw.lot_number
            ),
            severity: Severity::Major,
            handling: Some(NonConformanceHandling::Quarantine),
        });
        self.push(&manufacturer.org, event);
        self.summary.non_conformances += 1;
    }
}
