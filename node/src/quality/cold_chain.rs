//! The cold chain of one serial, lot or container: every temperature logger
//! record about it or a container it travelled in, evaluated against the
//! storage limits of its product(s) from their lot master data.
//!
//! ```text
//! identifier -> subjects: itself and the containers it was packed in
//!            -> products: the lots it was made from (a container: the lots
//!               of the serials inside), whose creating event's ilmd states
//!               lotline:storageTemperatureMinCel / ...MaxCel; several
//!               products tighten to the strictest limits
//!            -> readings: the sensor facts of the subjects; each logger
//!               (sensor element) of each event is one series
//!            -> excursions (`excursion.rs`): time outside, peak, open
//! ```
//!
//! Limits come from the data, never from a constant: a product without
//! stated limits is refused (`NoLimits`), not judged against 2-8 CEL.

use std::collections::{BTreeMap, BTreeSet};

use lotline_core::attestation::AttestationId;
use lotline_core::gs1::Identifier;
use lotline_core::lineage::EdgeKind;
use lotline_core::statement::Statement;
use serde::Serialize;
use serde_json::Value;

use super::excursion::{self, Excursion, Limits, Reading};
use crate::store::StoreReader;
use crate::store::lineage::End;
use crate::trace::{Reader, TraceError, Visibility, root_identifier};

/// The lot master data keys of a product's storage limits.
pub const ILMD_MIN_CEL: &str = "lotline:storageTemperatureMinCel";
pub const ILMD_MAX_CEL: &str = "lotline:storageTemperatureMaxCel";
/// Container levels followed up from a serial (case, pallet, ...).
const CONTAINER_LEVELS_MAX: u32 = 4;
/// Serials of a container read for their products.
const CONTENTS_MAX: usize = 10_000;
/// Logger records read for one answer.
const RECORDS_MAX: usize = 10_000;

#[derive(Debug, thiserror::Error)]
pub enum ColdChainError {
    #[error(transparent)]
    Trace(#[from] TraceError),
    #[error("no visible product of {0} states storage temperature limits ({ILMD_MAX_CEL})")]
    NoLimits(String),
    #[error("more than {RECORDS_MAX} logger records")]
    TooMany,
}

impl From<crate::store::StoreError> for ColdChainError {
    fn from(e: crate::store::StoreError) -> ColdChainError {
        ColdChainError::Trace(TraceError::Store(e))
    }
}

/// One excursion and the record that shows it.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Logged {
    #[serde(flatten)]
    pub excursion: Excursion,
    pub start: String,
    pub end: String,
    /// The serial, lot or container the logger record is about.
    pub subject: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    pub attestation: AttestationId,
    pub height: u64,
}

/// `GET /v1/cold-chain/{identifier}`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ColdChain {
    pub identifier: String,
    pub limits: Limits,
    /// The lots whose master data gave the limits.
    pub limits_from: Vec<String>,
    /// The identifier and the containers it travelled in.
    pub subjects: Vec<String>,
    pub loggers: usize,
    pub readings: usize,
    pub excursions: Vec<Logged>,
    /// Minutes outside the limits, summed over every excursion.
    pub minutes_outside: f64,
}

/// The cold chain of `raw` as `visibility` lets the caller see it.
pub fn cold_chain(
    store: &StoreReader,
    raw: &str,
    visibility: &dyn Visibility,
) -> Result<ColdChain, ColdChainError> {
    let root = root_identifier(raw)?;
    let mut reader = Reader::new(store, visibility);
    let subjects = containers(&mut reader, &root)?;
    let (limits, limits_from) = product_limits(&mut reader, &root)?;
    if limits.max.is_none() && limits.min.is_none() {
        return Err(ColdChainError::NoLimits(root));
    }
    let mut seen = BTreeSet::new();
    let (mut loggers, mut readings) = (0usize, 0usize);
    let mut found = Vec::new();
    for subject in &subjects {
        for (at, fact) in store.facts(subject, &reader.origins.clone())? {
            if fact.sensors.is_empty() || !seen.insert(fact.origin.attestation) {
                continue;
            }
            if !reader.stands(at, &fact.origin)? {
                continue;
            }
            if seen.len() > RECORDS_MAX {
                return Err(ColdChainError::TooMany);
            }
            let Some(stored) = store.attestation(&fact.origin.attestation)? else {
                continue;
            };
            let Ok(statement) = Statement::from_payload(&stored.envelope.payload) else {
                continue;
            };
            for element in &statement.event.sensor_element_list {
                let device = element
                    .sensor_metadata
                    .as_ref()
                    .and_then(|m| m.get("deviceID"))
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                let series: Vec<Reading> = element
                    .sensor_report
                    .iter()
                    .filter(|r| {
                        r.kind.as_deref().is_some_and(|k| {
                            k.rsplit([':', '#', '/']).next() == Some("Temperature")
                        }) && r.uom.as_deref().is_none_or(|u| u == "CEL")
                    })
                    .filter_map(|r| {
                        let at_ms = r
                            .time
                            .as_deref()
                            .and_then(|t| lotline_core::time::parse_rfc3339_ms(t).ok())
                            .unwrap_or(fact.origin.event_time_ms);
                        let value = r.value.or(r.max_value).or(r.mean_value)?;
                        Some(Reading { at_ms, value })
                    })
                    .collect();
                if series.is_empty() {
                    continue;
                }
                loggers += 1;
                readings += series.len();
                for excursion in excursion::excursions(&series, limits) {
                    found.push(Logged {
                        start: lotline_core::time::format_rfc3339_ms(excursion.start_ms),
                        end: lotline_core::time::format_rfc3339_ms(excursion.end_ms),
                        excursion,
                        subject: subject.clone(),
                        device: device.clone(),
                        attestation: fact.origin.attestation,
                        height: at.height,
                    });
                }
            }
        }
    }
    found.sort_by_key(|l| l.excursion.start_ms);
    Ok(ColdChain {
        identifier: root,
        limits,
        limits_from,
        subjects,
        loggers,
        readings,
        minutes_outside: found.iter().map(|l| l.excursion.minutes).sum(),
        excursions: found,
    })
}

/// `root` and every container it was packed in, a few levels up.
fn containers(reader: &mut Reader<'_>, root: &str) -> Result<Vec<String>, ColdChainError> {
    let mut out = vec![root.to_owned()];
    let mut frontier = vec![root.to_owned()];
    for _ in 0..CONTAINER_LEVELS_MAX {
        let mut next = Vec::new();
        for node in &frontier {
            for (_, edge) in reader.edges(node, End::From)? {
                if edge.kind == EdgeKind::PackedIn && !out.contains(&edge.other) {
                    out.push(edge.other.clone());
                    next.push(edge.other);
                }
            }
        }
        if next.is_empty() {
            break;
        }
        frontier = next;
    }
    Ok(out)
}

/// The lots `root` is (a lot), was made from (a serial) or holds (a
/// container), and their tightened storage limits.
fn product_limits(
    reader: &mut Reader<'_>,
    root: &str,
) -> Result<(Limits, Vec<String>), ColdChainError> {
    let mut items = Vec::new();
    let mut lots = BTreeSet::new();
    match Identifier::parse(root) {
        Ok(Identifier::Lot { .. }) => {
            lots.insert(root.to_owned());
        }
        Ok(Identifier::Item { .. }) => items.push(root.to_owned()),
        _ => {
            // A container: the serials inside, down its packing.
            let mut frontier = vec![root.to_owned()];
            for _ in 0..CONTAINER_LEVELS_MAX {
                let mut next = Vec::new();
                for node in &frontier {
                    for (_, edge) in reader.edges(node, End::To)? {
                        if edge.kind != EdgeKind::PackedIn || items.len() >= CONTENTS_MAX {
                            continue;
                        }
                        if matches!(Identifier::parse(&edge.other), Ok(Identifier::Item { .. })) {
                            items.push(edge.other);
                        } else {
                            next.push(edge.other);
                        }
                    }
                }
                frontier = next;
            }
        }
    }
    for item in &items {
        for (_, edge) in reader.edges(item, End::To)? {
            if matches!(edge.kind, EdgeKind::Serialised | EdgeKind::TransformedInto)
                && matches!(Identifier::parse(&edge.other), Ok(Identifier::Lot { .. }))
            {
                lots.insert(edge.other);
            }
        }
    }
    let mut limits = Limits::default();
    let mut from = Vec::new();
    // The products' own storage range (their owner's master data), then
    // each lot's: the strictest of everything stated holds.
    let mut gtins = BTreeSet::new();
    for id in lots.iter().chain(&items) {
        if let Ok(Identifier::Lot { gtin, .. } | Identifier::Item { gtin, .. }) =
            Identifier::parse(id)
        {
            gtins.insert(gtin.as_str().to_owned());
        }
    }
    for gtin in &gtins {
        if let Some(stated) = product_storage_limits(reader.store, gtin)? {
            limits = limits.tighten(stated);
            from.push(format!("https://id.gs1.org/01/{gtin}"));
        }
    }
    let mut read: BTreeMap<AttestationId, Option<Limits>> = BTreeMap::new();
    for lot in lots {
        // The event that made the lot states its master data.
        for (_, edge) in reader.edges(&lot, End::To)? {
            if edge.kind != EdgeKind::TransformedInto {
                continue;
            }
            let attestation = edge.origin.attestation;
            let stated = match read.get(&attestation) {
                Some(known) => *known,
                None => {
                    let stated = stated_limits(reader.store, &attestation)?;
                    read.insert(attestation, stated);
                    stated
                }
            };
            if let Some(stated) = stated {
                limits = limits.tighten(stated);
                from.push(lot.clone());
                break;
            }
        }
    }
    Ok((limits, from))
}

/// A product's storage temperature limits from its master data
/// (`epcis::master_data`, the GTIN owner's `storageTemperature`), if stated.
/// The one place product limits are read; lot master data (`ilmd`) can only
/// tighten them.
pub fn product_storage_limits(
    store: &StoreReader,
    gtin: &str,
) -> Result<Option<Limits>, ColdChainError> {
    let class = format!("https://id.gs1.org/01/{gtin}");
    let Some(range) = crate::epcis::master_data::storage_temperature(store, &class)? else {
        return Ok(None);
    };
    let limits = Limits {
        min: range.min_celsius,
        max: range.max_celsius,
    };
    Ok((limits.min.is_some() || limits.max.is_some()).then_some(limits))
}

/// The storage limits an event's ilmd states, if any.
fn stated_limits(
    store: &StoreReader,
    attestation: &AttestationId,
) -> Result<Option<Limits>, ColdChainError> {
    let Some(stored) = store.attestation(attestation)? else {
        return Ok(None);
    };
    let Ok(statement) = Statement::from_payload(&stored.envelope.payload) else {
        return Ok(None);
    };
    let Some(ilmd) = &statement.event.ilmd else {
        return Ok(None);
    };
    let number = |key: &str| ilmd.get(key).and_then(Value::as_f64);
    let limits = Limits {
        min: number(ILMD_MIN_CEL),
        max: number(ILMD_MAX_CEL),
    };
    Ok((limits.min.is_some() || limits.max.is_some()).then_some(limits))
}
