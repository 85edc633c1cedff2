//! `lotline:quality`: the quality facts EPCIS has no field for, as one typed,
//! namespaced extension of an event. JSON-LD context prefix:
//! `"lotline": "https://lotline.dev/ns/quality#"`.

use serde::{Deserialize, Serialize};

/// One quality fact carried by an event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase", deny_unknown_fields)]
pub enum QualityFact {
    /// An inspection or test and its outcome (incoming, in-process, final).
    #[serde(rename_all = "camelCase")]
    Inspection {
        result: InspectionResult,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        method: Option<String>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        measurements: Vec<Measurement>,
        /// The measuring device and its calibration state (R7).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        instrument: Option<Instrument>,
        /// Private measurements are not shown on public pages (R19).
        #[serde(default)]
        private: bool,
    },
    /// A non-conformance found and how it is handled.
    #[serde(rename_all = "camelCase")]
    NonConformance {
        code: String,
        description: String,
        severity: Severity,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        handling: Option<NonConformanceHandling>,
    },
    /// A recall order over lots or items.
    #[serde(rename_all = "camelCase")]
    RecallOrder {
        recall_id: String,
        reason: String,
        class: RecallClass,
        /// Identifiers (Digital Link or EPC URN) of suspect lots or items.
        scope: Vec<String>,
    },
    /// A certificate (material, conformity, calibration) held for the items.
    #[serde(rename_all = "camelCase")]
    Certificate {
        certificate_id: String,
        issuer: String,
        standard: String,
        valid_from: String,
        valid_until: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        document: Option<DocumentRef>,
    },
    /// A reference to an off-chain document by digest (R5: unstructured data).
    #[serde(rename_all = "camelCase")]
    Document { document: DocumentRef },
    /// A quality rule fired on committed records: the detecting node's org
    /// states it so that the warning itself is signed, dated and on the
    /// chain. Carried by an ObjectEvent with bizStep [`ALERT_BIZ_STEP`].
    #[serde(rename_all = "camelCase")]
    Alert {
        rule: AlertRule,
        /// One firing, one key: the same excursion always yields the same
        /// key, so a node that re-evaluates never states it twice.
        key: String,
        /// What was judged: a GTIN and characteristic, a container, a
        /// supplier.
        subject: String,
        /// One sentence a quality engineer reads.
        summary: String,
        /// The attestation id (hex) of the record that fired the rule.
        trigger: String,
    },
}

/// The bizStep of alert events (a URI: CBV has no step for "a rule fired").
/// Its own bizStep gives alerts their own EPCIS listing and lets the write
/// and read policies name them.
pub const ALERT_BIZ_STEP: &str = "urn:lotline:bizstep:qualityAlert";

/// Which kind of rule an alert reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum AlertRule {
    /// A Western Electric or Nelson run rule on a control chart.
    RunRule,
    /// EWMA or CUSUM: a drift before a specification limit is crossed.
    Drift,
    /// Time outside a product's storage temperature limits.
    Excursion,
    /// A supplier's non-conformance rate above the node's threshold.
    SupplierNonConformance,
}

impl AlertRule {
    pub const ALL: [AlertRule; 4] = [
        AlertRule::RunRule,
        AlertRule::Drift,
        AlertRule::Excursion,
        AlertRule::SupplierNonConformance,
    ];

    /// The camelCase name used in JSON and query filters.
    pub const fn name(self) -> &'static str {
        match self {
            AlertRule::RunRule => "runRule",
            AlertRule::Drift => "drift",
            AlertRule::Excursion => "excursion",
            AlertRule::SupplierNonConformance => "supplierNonConformance",
        }
    }
}

impl QualityFact {
    pub fn kind(&self) -> QualityKind {
        match self {
            QualityFact::Inspection { .. } => QualityKind::Inspection,
            QualityFact::NonConformance { .. } => QualityKind::NonConformance,
            QualityFact::RecallOrder { .. } => QualityKind::RecallOrder,
            QualityFact::Certificate { .. } => QualityKind::Certificate,
            QualityFact::Document { .. } => QualityKind::Document,
            QualityFact::Alert { .. } => QualityKind::Alert,
        }
    }
}

/// The kinds of [`QualityFact`], for policy tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum QualityKind {
    Inspection,
    NonConformance,
    RecallOrder,
    Certificate,
    Document,
    Alert,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum InspectionResult {
    Pass,
    Fail,
    Conditional,
}

/// A measured value and its specification limits.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Measurement {
    pub name: String,
    pub value: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uom: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec_min: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec_max: Option<f64>,
}

impl Measurement {
    /// True when the value lies within the given limits (inclusive).
    pub fn within_spec(&self) -> bool {
        self.spec_min.is_none_or(|min| self.value >= min)
            && self.spec_max.is_none_or(|max| self.value <= max)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Instrument {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calibrated_until: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Severity {
    Minor,
    Major,
    Critical,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum NonConformanceHandling {
    Rework,
    Scrap,
    UseAsIs,
    ReturnToSupplier,
    Quarantine,
}

/// Recall classes as regulators use them (I most serious).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RecallClass {
    I,
    II,
    III,
}

/// An off-chain document identified by its BLAKE3 digest.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DocumentRef {
    pub uri: String,
    pub media_type: String,
    /// Lowercase hex BLAKE3-256 of the document bytes.
    pub blake3: String,
}
