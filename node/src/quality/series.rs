//! The measurements of one characteristic of one product class (GTIN), in
//! chain order, as the caller may see them: the input of the control
//! charts.
//!
//! Two prefix scans, whatever the number of lots: the quality facts of every
//! lot and item of the GTIN (`StoreReader::facts_under`), and, when items
//! were measured, every serialisation of the GTIN's lots
//! (`StoreReader::edges_under`), which gives each item its lot, the
//! rational subgroup of the X-bar/R and p charts.

use std::collections::HashMap;

use lotline_core::attestation::AttestationId;
use lotline_core::epcis::QualityFact;
use lotline_core::gs1::{CANONICAL_HOST, Gtin};

use super::spc::Point;
use crate::store::StoreError;
use crate::store::index::Position;
use crate::trace::Reader;

/// Most measurements one chart reads; a bigger series is refused rather
/// than read partly (the caller narrows nothing yet, so this bounds work).
pub const SERIES_POINTS_MAX: usize = 1_000_000;

/// One measurement with where it came from.
#[derive(Clone, Debug, PartialEq)]
pub struct Measured {
    pub point: Point,
    /// The lot or item measured (canonical).
    pub subject: String,
    pub at: Position,
    pub attestation: AttestationId,
    pub event_time: String,
    pub uom: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum SeriesError {
    #[error("{0:?} is not a GTIN: {1}")]
    BadGtin(String, String),
    #[error("characteristic must be 1 to {max} characters", max = CHARACTERISTIC_MAX)]
    BadCharacteristic,
    #[error("more than {SERIES_POINTS_MAX} measurements")]
    TooMany,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Longest characteristic name accepted.
pub const CHARACTERISTIC_MAX: usize = 128;

/// The GTIN-14 of a request (GTIN-8/12/13 padded), check digit verified by
/// the one GS1 rule (`gs1::Gtin::parse`).
pub fn parse_gtin(raw: &str) -> Result<String, SeriesError> {
    Gtin::parse(raw)
        .map(|g| g.as_str().to_owned())
        .map_err(|e| SeriesError::BadGtin(lotline_core::api::excerpt(raw), e.to_string()))
}

/// The standing, visible measurements named `characteristic` of lots and
/// items of `gtin`, in chain order (one per event and subject group: an
/// event measuring several lots at once is one point, charted under its
/// first lot).
pub(crate) fn read(
    reader: &mut Reader<'_>,
    gtin: &str,
    characteristic: &str,
) -> Result<Vec<Measured>, SeriesError> {
    let gtin = parse_gtin(gtin)?;
    if characteristic.is_empty() || characteristic.chars().count() > CHARACTERISTIC_MAX {
        return Err(SeriesError::BadCharacteristic);
    }
    let stem = format!("{CANONICAL_HOST}/01/{gtin}/");
    let origins = reader.origins.clone();
    let facts = reader.store.facts_under(&stem, &origins)?;
    let mut by_event: HashMap<Position, Measured> = HashMap::new();
    let mut items = false;
    for (subject, (at, fact)) in facts {
        let Some(QualityFact::Inspection { measurements, .. }) = &fact.quality else {
            continue;
        };
        let Some(measurement) = measurements.iter().find(|m| m.name == characteristic) else {
            continue;
        };
        // The same event about another subject (scans go node by node):
        // the first subject stands for the event.
        if by_event.contains_key(&at) {
            continue;
        }
        if !reader.stands(at, &fact.origin)? {
            continue;
        }
        let is_item = subject[stem.len()..].starts_with("21/");
        items |= is_item;
        let subgroup = (!is_item).then(|| subject.clone());
        by_event.insert(
            at,
            Measured {
                point: Point {
                    value: measurement.value,
                    subgroup,
                    spec_min: measurement.spec_min,
                    spec_max: measurement.spec_max,
                },
                subject,
                at,
                attestation: fact.origin.attestation,
                event_time: fact.origin.event_time.clone(),
                uom: measurement.uom.clone(),
            },
        );
        if by_event.len() > SERIES_POINTS_MAX {
            return Err(SeriesError::TooMany);
        }
    }
    if items {
        let lots = format!("{stem}10/");
        let mut lot_of: HashMap<String, String> = HashMap::new();
        for (lot, (_, edge)) in super::serialisations(reader, &lots)? {
            lot_of.entry(edge.other).or_insert(lot);
        }
        for measured in by_event.values_mut() {
            if measured.point.subgroup.is_none() {
                measured.point.subgroup = lot_of.get(&measured.subject).cloned();
            }
        }
    }
    let mut series: Vec<Measured> = by_event.into_values().collect();
    series.sort_by_key(|m| m.at);
    Ok(series)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gtins_are_checked_by_their_check_digit() {
        assert_eq!(
            parse_gtin("09506001110010").ok().as_deref(),
            Some("09506001110010")
        );
        assert!(parse_gtin("09506001110011").is_err());
        assert!(parse_gtin("0950600111001x").is_err());
    }
}
