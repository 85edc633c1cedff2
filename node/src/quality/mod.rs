//! Quality intelligence over the committed records: control charts for a
//! product class's measurements and root-cause localisation for a set of
//! bad units.
//!
//! - `spc.rs`: the charts, pure (I-MR, X-bar/R and p by lot, run rules,
//!   Cp/Cpk, EWMA, CUSUM);
//! - `stats.rs`: Fisher's exact test and Benjamini-Hochberg, pure;
//! - `series.rs`: one characteristic's measurements of one GTIN as the
//!   caller may see them;
//! - `excursion.rs`: time outside a product's storage limits, pure;
//!   `cold_chain.rs`: the logger records of a serial, lot or container and
//!   the limits its products' lot master data state;
//! - `root_cause.rs`: the upstream factors bad units share, ranked against
//!   the good units of the same products, with the trace paths that prove
//!   each exposure;
//! - `exposure.rs`: each lot's units and each container's and destination's
//!   units, kept at commit, which root cause and the charts' lot subgroups
//!   read instead of walking the lineage per unit;
//! - `scorecard.rs`: supplier scorecards (PPM, non-conformance rate,
//!   certificate coverage) and the recall register.
//!
//! Reads only, through the trace module's `Reader`: every record is judged
//! by the one read-policy rule (`access::can_read`, via `Visibility`) and
//! retracted events are skipped, exactly as traces do.

pub mod alerts;
pub mod chunk;
pub mod cold_chain;
pub mod excursion;
pub(crate) mod exposure;
pub mod root_cause;
pub mod scorecard;
pub mod series;
pub mod spc;
pub mod stats;

use lotline_core::attestation::AttestationId;
use serde::Serialize;

use crate::store::StoreReader;
use crate::trace::{Reader, Visibility};

pub use cold_chain::{ColdChain, ColdChainError, cold_chain};
pub use root_cause::{RootCause, RootCauseError, RootCauseRequest, root_cause};
pub use series::SeriesError;

/// Most points a chart answer lists (the statistics cover every point).
pub const CHART_POINTS_MAX: usize = 100_000;
/// Points listed when the caller does not say.
pub const CHART_POINTS_DEFAULT: usize = 500;
/// Baseline points when the caller does not say: half the series, at least
/// 2 and at most 25 (the handbooks' 20 to 25 subgroups).
pub const BASELINE_DEFAULT_MAX: usize = 25;
/// Most signals a chart answer lists.
pub const SIGNALS_MAX: usize = 1_000;

/// `GET /v1/spc/{gtin}/{characteristic}?baseline=&points=&subgroup=`.
#[derive(Clone, Debug, Default)]
pub struct ChartRequest {
    pub gtin: String,
    pub characteristic: String,
    pub baseline: Option<usize>,
    pub points: Option<usize>,
    pub subgroup: Subgrouping,
}

/// What the X-bar/R and p charts group points by.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Subgrouping {
    /// The lot each measured unit was made in (or the measured lot).
    #[default]
    Lot,
    /// The UTC day of the measurement's event time (a p-chart by period).
    Day,
}

impl Subgrouping {
    /// `lot` or `day`, as the API names them.
    pub fn parse(name: &str) -> Option<Subgrouping> {
        match name {
            "lot" => Some(Subgrouping::Lot),
            "day" => Some(Subgrouping::Day),
            _ => None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ChartError {
    #[error(transparent)]
    Series(#[from] SeriesError),
    #[error(transparent)]
    Spc(#[from] spc::SpcError),
    #[error("no visible measurements named {characteristic:?} for GTIN {gtin}")]
    NoMeasurements {
        gtin: String,
        characteristic: String,
    },
    #[error("points must be 1 to {CHART_POINTS_MAX}, not {0}")]
    BadPoints(usize),
    #[error("baseline must be at least 2 points, not {0}")]
    BadBaseline(usize),
}

/// One point as a chart answer lists it.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChartPoint {
    pub index: usize,
    pub value: f64,
    pub subject: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lot: Option<String>,
    pub attestation: AttestationId,
    pub height: u64,
    pub event_time: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub moving_range: Option<f64>,
    pub ewma: f64,
    pub cusum_upper: f64,
    pub cusum_lower: f64,
    pub out_of_spec: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub violations: Vec<spc::Rule>,
    /// Opened from the record's private section: listed only to callers
    /// entitled to read it (`access::private::can_read_private`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub private: bool,
}

/// A point that broke a run rule.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Signal {
    pub index: usize,
    pub rules: Vec<spc::Rule>,
    pub subject: String,
    pub attestation: AttestationId,
    pub height: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Detector {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_signal: Option<usize>,
    /// The subject of the first signalling point.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// The attestation that stated the first signalling point.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attestation: Option<AttestationId>,
    /// The height of the block that committed it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub height: Option<u64>,
}

/// `GET /v1/spc/{gtin}/{characteristic}`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Chart {
    pub gtin: String,
    pub characteristic: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uom: Option<String>,
    pub count: usize,
    pub baseline: spc::Baseline,
    pub limits: spc::Limits,
    pub moving_range: spc::Limits,
    pub capability: spc::Capability,
    pub subgroup_sigma: f64,
    pub p_bar: f64,
    /// The latest subgroups (as many as points are listed).
    pub subgroups: Vec<spc::Subgroup>,
    pub subgroups_omitted: usize,
    pub ewma: Detector,
    pub cusum: Detector,
    pub signals: Vec<Signal>,
    pub points: Vec<ChartPoint>,
    /// Earlier points not listed (`points` lists the latest ones).
    pub points_omitted: usize,
}

/// The control chart of one characteristic of one GTIN, as `visibility`
/// lets the caller see it.
pub fn chart(
    store: &StoreReader,
    request: &ChartRequest,
    visibility: &dyn Visibility,
) -> Result<Chart, ChartError> {
    let listed = request.points.unwrap_or(CHART_POINTS_DEFAULT);
    if listed == 0 || listed > CHART_POINTS_MAX {
        return Err(ChartError::BadPoints(listed));
    }
    if let Some(baseline) = request.baseline.filter(|b| *b < 2) {
        return Err(ChartError::BadBaseline(baseline));
    }
    let mut reader = Reader::new(store, visibility);
    let series = series::read(&mut reader, &request.gtin, &request.characteristic)?;
    if series.is_empty() {
        return Err(ChartError::NoMeasurements {
            gtin: lotline_core::api::excerpt(&request.gtin),
            characteristic: lotline_core::api::excerpt(&request.characteristic),
        });
    }
    let points: Vec<spc::Point> = series
        .iter()
        .map(|m| {
            let mut point = m.point.clone();
            if request.subgroup == Subgrouping::Day {
                point.subgroup = m.event_time.get(..10).map(str::to_owned);
            }
            point
        })
        .collect();
    let baseline = request
        .baseline
        .unwrap_or((points.len() / 2).clamp(2, BASELINE_DEFAULT_MAX));
    let analysis = spc::analyse(&points, baseline)?;
    let detector = |first: Option<usize>| Detector {
        first_signal: first,
        subject: first.map(|i| series[i].subject.clone()),
        attestation: first.map(|i| series[i].attestation),
        height: first.map(|i| series[i].at.height),
    };
    let signals = analysis
        .individuals
        .violations
        .iter()
        .enumerate()
        .filter(|(_, rules)| !rules.is_empty())
        .take(SIGNALS_MAX)
        .map(|(index, rules)| Signal {
            index,
            rules: rules.clone(),
            subject: series[index].subject.clone(),
            attestation: series[index].attestation,
            height: series[index].at.height,
        })
        .collect();
    let skip = series.len().saturating_sub(listed);
    let mut subgroups = analysis.subgroups.groups;
    let subgroups_omitted = subgroups.len().saturating_sub(listed);
    subgroups.drain(..subgroups_omitted);
    let listed_points = series
        .iter()
        .enumerate()
        .skip(skip)
        .map(|(index, m)| ChartPoint {
            index,
            value: m.point.value,
            subject: m.subject.clone(),
            lot: m.point.subgroup.clone(),
            attestation: m.attestation,
            height: m.at.height,
            event_time: m.event_time.clone(),
            moving_range: analysis.individuals.moving_ranges[index],
            ewma: analysis.ewma.z[index],
            cusum_upper: analysis.cusum.upper[index],
            cusum_lower: analysis.cusum.lower[index],
            out_of_spec: !lotline_core::epcis::Measurement {
                name: String::new(),
                value: m.point.value,
                uom: None,
                spec_min: m.point.spec_min,
                spec_max: m.point.spec_max,
            }
            .within_spec(),
            violations: analysis.individuals.violations[index].clone(),
            private: m.private,
        })
        .collect();
    Ok(Chart {
        gtin: series::parse_gtin(&request.gtin)?,
        characteristic: request.characteristic.clone(),
        uom: series.last().and_then(|m| m.uom.clone()),
        count: series.len(),
        limits: analysis.individuals.limits,
        moving_range: analysis.individuals.moving_range,
        capability: analysis.capability,
        subgroup_sigma: analysis.subgroups.sigma,
        p_bar: analysis.subgroups.p_bar,
        subgroups,
        subgroups_omitted,
        ewma: detector(analysis.ewma.first_signal),
        cusum: detector(analysis.cusum.first_signal),
        baseline: analysis.baseline,
        signals,
        points: listed_points,
        points_omitted: skip,
    })
}
