//! The bill of materials of a prefilled syringe: seven raw materials from
//! three supplier plants, how much of each a campaign uses, how many
//! campaigns one lot lasts, and the incoming-inspection test for each.
//!
//! The lifetimes are what give the lineage graph its width: a lot that lasts
//! `k` campaigns reaches the units of `k` campaigns. The cure agent (used by
//! the gram) lasts longest, [`crate::workload::Scale::campaigns_per_cure_lot`]
//! campaigns; it is the "wide" raw lot of the benchmarks and the recall.

/// A lot holds what its campaigns draw from it times an overage in this
/// range, so no campaign runs short.
pub(super) const LOT_OVERAGE: (f64, f64) = (1.05, 1.30);

/// Which raw material; the index into [`MATERIALS`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Material {
    Elastomer,
    Filler,
    CureAgent,
    DrugSubstance,
    Excipient,
    Barrel,
    PlungerRod,
}

impl Material {
    pub const ALL: [Material; 7] = [
        Material::Elastomer,
        Material::Filler,
        Material::CureAgent,
        Material::DrugSubstance,
        Material::Excipient,
        Material::Barrel,
        Material::PlungerRod,
    ];

    pub fn spec(self) -> &'static Spec {
        &MATERIALS[self as usize]
    }

    /// How many campaigns one lot lasts; the cure agent's comes from the
    /// scale, every other is fixed.
    pub fn life_campaigns(self, cure_lot_campaigns: u32) -> u32 {
        match self {
            Material::CureAgent => cure_lot_campaigns.max(1),
            other => other.spec().life_campaigns,
        }
    }
}

/// The static facts of one raw material.
#[derive(Debug)]
pub(super) struct Spec {
    /// Lot number prefix (set 82, short).
    pub lot_prefix: &'static str,
    /// GS1 item reference under the supplier's prefix.
    pub item_reference: u64,
    /// Which supplier plant makes it (`0..SUPPLIER_PLANTS`).
    pub plant: u32,
    /// UN/ECE Rec. 20 unit of the lot quantity.
    pub uom: &'static str,
    /// What one production order draws from the lot, in `uom`, per unit
    /// of product (scaled by the campaign's unit count).
    pub use_per_unit: f64,
    /// Campaigns one lot lasts (ignored for the cure agent).
    pub life_campaigns: u32,
    /// Incoming-inspection measurement: name, uom, spec min, spec max.
    pub test: (&'static str, Option<&'static str>, f64, f64),
    /// The standard the supplier's certificate cites.
    pub certificate_standard: &'static str,
}

const MATERIALS: [Spec; 7] = [
    Spec {
        lot_prefix: "BIIR",
        item_reference: 11_001,
        plant: 0,
        uom: "KGM",
        use_per_unit: 0.002,
        life_campaigns: 1,
        test: ("mooneyViscosityML1+8", None, 41.0, 51.0),
        certificate_standard: "EN 10204 3.1",
    },
    Spec {
        lot_prefix: "CLAY",
        item_reference: 11_002,
        plant: 0,
        uom: "KGM",
        use_per_unit: 0.001,
        life_campaigns: 2,
        test: ("moisture", Some("P1"), 0.0, 0.5),
        certificate_standard: "EN 10204 3.1",
    },
    Spec {
        lot_prefix: "CURE",
        item_reference: 11_003,
        plant: 1,
        uom: "KGM",
        use_per_unit: 0.000_1,
        life_campaigns: 1,
        test: ("assay", Some("P1"), 98.0, 102.0),
        certificate_standard: "EN 10204 3.1",
    },
    Spec {
        lot_prefix: "API",
        item_reference: 12_001,
        plant: 1,
        uom: "KGM",
        use_per_unit: 0.000_5,
        life_campaigns: 1,
        test: ("assay", Some("P1"), 98.0, 102.0),
        certificate_standard: "ICH Q7 certificate of analysis",
    },
    Spec {
        lot_prefix: "BUF",
        item_reference: 12_002,
        plant: 1,
        uom: "KGM",
        use_per_unit: 0.004,
        life_campaigns: 3,
        test: ("pH", None, 6.8, 7.4),
        certificate_standard: "Ph. Eur. certificate of analysis",
    },
    Spec {
        lot_prefix: "BRL",
        item_reference: 13_001,
        plant: 2,
        uom: "H87",
        use_per_unit: 1.0,
        life_campaigns: 1,
        test: ("innerDiameter", Some("MMT"), 6.30, 6.40),
        certificate_standard: "ISO 11040-4",
    },
    Spec {
        lot_prefix: "ROD",
        item_reference: 13_002,
        plant: 2,
        uom: "H87",
        use_per_unit: 1.0,
        life_campaigns: 2,
        test: ("rodLength", Some("MMT"), 68.0, 70.0),
        certificate_standard: "ISO 11040-6",
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_consistent() {
        for material in Material::ALL {
            let spec = material.spec();
            assert!(spec.test.2 < spec.test.3, "{material:?}");
            assert!(spec.life_campaigns >= 1, "{material:?}");
            assert!(spec.use_per_unit > 0.0, "{material:?}");
            assert!(spec.plant < super::super::ids::SUPPLIER_PLANTS);
        }
        assert_eq!(Material::CureAgent.life_campaigns(8), 8);
        assert_eq!(Material::CureAgent.life_campaigns(0), 1);
        assert_eq!(Material::Filler.life_campaigns(8), 2);
    }
}
