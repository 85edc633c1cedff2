//! The Core Business Vocabulary (CBV 2.0) terms EPCIS fields draw on, and
//! the one rule for a vocabulary value: a CBV term in any of its three
//! spellings (`shipping`, `urn:epcglobal:cbv:bizstep:shipping`,
//! `https://ref.gs1.org/cbv/BizStep-shipping`), or a URI of the user's own
//! vocabulary. A bare word that is not a term is rejected, and so is a CBV
//! URI of the wrong vocabulary or with an unknown term.

use crate::gs1::is_absolute_uri;
use crate::limits::IDENTIFIER_BYTES_MAX;

/// CBV 2.0 business steps.
pub const CBV_BIZ_STEPS: &[&str] = &[
    "accepting",
    "arriving",
    "assembling",
    "collecting",
    "commissioning",
    "consigning",
    "creating_class_instance",
    "cycle_counting",
    "decommissioning",
    "departing",
    "destroying",
    "disassembling",
    "dispensing",
    "encoding",
    "entering_exiting",
    "holding",
    "inspecting",
    "installing",
    "killing",
    "loading",
    "other",
    "packing",
    "picking",
    "receiving",
    "removing",
    "repackaging",
    "repairing",
    "replacing",
    "reserving",
    "retail_selling",
    "sampling",
    "sensor_reporting",
    "shipping",
    "staging_outbound",
    "stock_taking",
    "stocking",
    "storing",
    "transporting",
    "unloading",
    "unpacking",
    "void_shipping",
];

/// CBV 2.0 dispositions.
pub const CBV_DISPOSITIONS: &[&str] = &[
    "active",
    "available",
    "completeness_inferred",
    "completeness_verified",
    "conformant",
    "container_closed",
    "container_open",
    "damaged",
    "destroyed",
    "dispensed",
    "disposed",
    "encoded",
    "expired",
    "in_progress",
    "in_transit",
    "inactive",
    "mismatch_class",
    "mismatch_instance",
    "mismatch_quantity",
    "needs_replacement",
    "no_pedigree_match",
    "non_conformant",
    "non_sellable_other",
    "partially_dispensed",
    "recalled",
    "reserved",
    "retail_sold",
    "returned",
    "sellable_accessible",
    "sellable_not_accessible",
    "stolen",
    "unavailable",
    "unknown",
];

/// CBV 2.0 business transaction types.
pub const CBV_BIZ_TRANSACTION_TYPES: &[&str] = &[
    "bol",
    "cert",
    "desadv",
    "inv",
    "pedigree",
    "po",
    "poc",
    "prodorder",
    "recadv",
    "rma",
    "testprd",
    "testres",
    "upevt",
];

/// CBV 2.0 source/destination types.
pub const CBV_SOURCE_DESTINATION_TYPES: &[&str] = &["owning_party", "possessing_party", "location"];

/// CBV 2.0 error reasons.
pub const CBV_ERROR_REASONS: &[&str] = &["did_not_occur", "incorrect_data"];

/// CBV 2.0 sensor alert types (`sensorReport.exception`).
pub const CBV_SENSOR_ALERT_TYPES: &[&str] = &["ALARM_CONDITION", "ERROR_CONDITION"];

/// CBV 2.0 measurement components (`sensorReport.component`).
pub const CBV_COMPONENTS: &[&str] = &[
    "x",
    "y",
    "z",
    "axial_distance",
    "azimuth",
    "height",
    "spherical_radius",
    "polar_angle",
    "elevation_angle",
    "easting",
    "northing",
    "latitude",
    "longitude",
    "altitude",
];

/// GS1 Web Vocabulary measurement types (`sensorReport.type`), as listed in
/// the EPCIS 2.0 JSON Schema.
pub const MEASUREMENT_TYPES: &[&str] = &[
    "AbsoluteHumidity",
    "AbsorbedDose",
    "AbsorbedDoseRate",
    "Acceleration",
    "Radioactivity",
    "Altitude",
    "AmountOfSubstance",
    "AmountOfSubstancePerUnitVolume",
    "Angle",
    "AngularAcceleration",
    "AngularMomentum",
    "AngularVelocity",
    "Area",
    "Capacitance",
    "Conductance",
    "Conductivity",
    "Count",
    "Density",
    "Dimensionless",
    "DoseEquivalent",
    "DoseEquivalentRate",
    "DynamicViscosity",
    "ElectricCharge",
    "ElectricCurrent",
    "ElectricCurrentDensity",
    "ElectricFieldStrength",
    "Energy",
    "Exposure",
    "Force",
    "Frequency",
    "Illuminance",
    "Inductance",
    "Irradiance",
    "KinematicViscosity",
    "Length",
    "LinearMomentum",
    "Luminance",
    "LuminousFlux",
    "LuminousIntensity",
    "MagneticFlux",
    "MagneticFluxDensity",
    "MagneticVectorPotential",
    "Mass",
    "MassConcentration",
    "MassFlowRate",
    "MassPerAreaTime",
    "MemoryCapacity",
    "MolalityOfSolute",
    "MolarEnergy",
    "MolarMass",
    "MolarVolume",
    "Power",
    "Pressure",
    "RadiantFlux",
    "RadiantIntensity",
    "RelativeHumidity",
    "Resistance",
    "Resistivity",
    "SolidAngle",
    "SpecificVolume",
    "Speed",
    "SurfaceDensity",
    "SurfaceTension",
    "Temperature",
    "Time",
    "Torque",
    "Voltage",
    "Volume",
    "VolumeFlowRate",
    "VolumeFraction",
    "VolumetricFlux",
    "Wavenumber",
];

/// A controlled vocabulary and the URI forms its terms may take.
pub(super) struct Vocabulary {
    name: &'static str,
    terms: &'static [&'static str],
    /// `urn:epcglobal:cbv:bizstep:` etc.; `None` if the vocabulary has none.
    urn: Option<&'static str>,
    /// `https://ref.gs1.org/cbv/BizStep-` etc.
    web: Option<&'static str>,
}

pub(super) const BIZ_STEP: Vocabulary = Vocabulary {
    name: "bizStep",
    terms: CBV_BIZ_STEPS,
    urn: Some("urn:epcglobal:cbv:bizstep:"),
    web: Some("https://ref.gs1.org/cbv/BizStep-"),
};
pub(super) const DISPOSITION: Vocabulary = Vocabulary {
    name: "disposition",
    terms: CBV_DISPOSITIONS,
    urn: Some("urn:epcglobal:cbv:disp:"),
    web: Some("https://ref.gs1.org/cbv/Disp-"),
};
pub(super) const BIZ_TRANSACTION_TYPE: Vocabulary = Vocabulary {
    name: "business transaction type",
    terms: CBV_BIZ_TRANSACTION_TYPES,
    urn: Some("urn:epcglobal:cbv:btt:"),
    web: Some("https://ref.gs1.org/cbv/BTT-"),
};
pub(super) const SOURCE_DESTINATION_TYPE: Vocabulary = Vocabulary {
    name: "source/destination type",
    terms: CBV_SOURCE_DESTINATION_TYPES,
    urn: Some("urn:epcglobal:cbv:sdt:"),
    web: Some("https://ref.gs1.org/cbv/SDT-"),
};
pub(super) const ERROR_REASON: Vocabulary = Vocabulary {
    name: "error reason",
    terms: CBV_ERROR_REASONS,
    urn: Some("urn:epcglobal:cbv:er:"),
    web: Some("https://ref.gs1.org/cbv/ER-"),
};
pub(super) const SENSOR_ALERT_TYPE: Vocabulary = Vocabulary {
    name: "sensor alert type",
    terms: CBV_SENSOR_ALERT_TYPES,
    urn: None,
    web: None,
};
pub(super) const COMPONENT: Vocabulary = Vocabulary {
    name: "component",
    terms: CBV_COMPONENTS,
    urn: None,
    web: None,
};
pub(super) const MEASUREMENT_TYPE: Vocabulary = Vocabulary {
    name: "measurement type",
    terms: MEASUREMENT_TYPES,
    urn: None,
    web: None,
};

impl Vocabulary {
    /// `Ok` for a term of this vocabulary (short, URN or GS1 web URI form)
    /// or a URI of the user's own vocabulary; otherwise why not.
    pub(super) fn check(&self, value: &str) -> Result<(), String> {
        let name = self.name;
        if value.is_empty() {
            return Err(format!("empty {name}"));
        }
        if value.len() > IDENTIFIER_BYTES_MAX {
            return Err(format!(
                "{name} is {} bytes long, more than the {IDENTIFIER_BYTES_MAX} allowed",
                value.len()
            ));
        }
        // Some(Ok(term)) for a CBV URI of this vocabulary, Some(Err) for a
        // CBV URI of another one, None for anything else.
        let cbv_term = |family: &str, own: Option<&str>| -> Option<Result<&str, ()>> {
            if !value.get(..family.len())?.eq_ignore_ascii_case(family) {
                return None;
            }
            Some(match own {
                Some(own)
                    if value
                        .get(..own.len())
                        .is_some_and(|h| h.eq_ignore_ascii_case(own)) =>
                {
                    Ok(&value[own.len()..])
                }
                _ => Err(()),
            })
        };
        let standard = cbv_term("urn:epcglobal:cbv:", self.urn)
            .or_else(|| cbv_term("https://ref.gs1.org/cbv/", self.web));
        match standard {
            Some(Ok(term)) if self.terms.contains(&term) => Ok(()),
            Some(Ok(term)) => Err(format!("{term:?} in {value:?} is not a CBV 2.0 {name}")),
            Some(Err(())) => Err(format!(
                "{value:?} is a CBV URI of another vocabulary, not a {name}"
            )),
            None if self.terms.contains(&value) || is_absolute_uri(value) => Ok(()),
            None => Err(format!("{value:?} is neither a CBV 2.0 {name} nor a URI")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_spellings_of_a_term() {
        for v in [
            "shipping",
            "urn:epcglobal:cbv:bizstep:shipping",
            "https://ref.gs1.org/cbv/BizStep-shipping",
        ] {
            assert_eq!(BIZ_STEP.check(v), Ok(()), "{v}");
        }
        assert!(
            BIZ_STEP
                .check("https://ref.gs1.org/cbv/BizStep-nope")
                .is_err()
        );
        assert!(
            DISPOSITION
                .check("urn:epcglobal:cbv:bizstep:shipping")
                .is_err()
        );
        assert_eq!(DISPOSITION.check("urn:example:disp:quarantined"), Ok(()));
    }

    #[test]
    fn term_lists_are_sorted_where_written_sorted_and_unique() {
        for list in [CBV_BIZ_STEPS, CBV_DISPOSITIONS, CBV_BIZ_TRANSACTION_TYPES] {
            let mut sorted = list.to_vec();
            sorted.sort_unstable();
            sorted.dedup();
            assert_eq!(sorted, list);
        }
    }
}
