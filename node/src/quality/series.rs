//! The measurements of one characteristic of one product class (GTIN), in
//! chain order, as the caller may see them: the input of the control
//! charts.
//!
//! Kept at commit as a series of its own (keyspace `u`, written in the
//! block's batch by [`index`]): one key per measured event,
//! `u | len | gtin | len | characteristic | height | idx`, whose value
//! holds the value, the spec limits, the unit, the subject and the event's
//! origin. A chart reads its series as one sequential range of O(points)
//! bytes (no JSON, no origin lookup per point), and the alert follower
//! reads only the points after the last one it judged. When items were
//! measured, one more prefix scan (every serialisation of the GTIN's lots,
//! `StoreReader::edges_under`) gives each item its lot, the rational
//! subgroup of the X-bar/R and p charts.
//!
//! A node that opens a record's private section (`store::Opener`) adds the
//! opened measurements the public event lacks as points marked private
//! ([`index_opened`]); a read lists them only to callers the one rule
//! entitles (`Visibility::can_see_private`, i.e.
//! `access::private::can_read_private`).

use std::collections::{BTreeMap, BTreeSet};

use std::collections::HashMap;

use lotline_core::attestation::AttestationId;
use lotline_core::epcis::{Measurement, QualityFact};
use lotline_core::gs1::{CANONICAL_HOST, Gtin};
use lotline_core::lineage::Fact;
use serde::{Deserialize, Serialize};

use super::spc::Point;
use crate::store::index::{self, Position};
use crate::store::lineage::Origin;
use crate::store::{StoreError, Writes};
use crate::trace::Reader;

/// The keyspace of the measurement series.
pub(crate) const PREFIX_SERIES: u8 = b'u';
/// Error declarations read up front by a series read.
const DECLARATIONS_PRELOAD_MAX: usize = 10_000;

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
    /// From the record's private section: read only by callers the read
    /// rule entitles to it (`access::private::can_read_private`).
    pub private: bool,
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

/// One point as the series keyspace keeps it.
#[derive(Debug, Serialize, Deserialize)]
struct Stored {
    value: f64,
    spec_min: Option<f64>,
    spec_max: Option<f64>,
    uom: Option<String>,
    subject: String,
    origin: Origin,
    /// Opened from the record's private section by this node's org key
    /// (`store::Opener`).
    private: bool,
}

/// `u | len | gtin | len | characteristic`: the start of one series
/// (lengths make every series' keys a range of their own, whatever bytes
/// a characteristic holds). `None` for a name too long to chart.
fn series_prefix(gtin: &str, characteristic: &str) -> Option<Vec<u8>> {
    let gtin_len = u8::try_from(gtin.len()).ok()?;
    if characteristic.chars().count() > CHARACTERISTIC_MAX {
        return None;
    }
    let name_len = u16::try_from(characteristic.len()).ok()?;
    let mut key = Vec::with_capacity(4 + gtin.len() + characteristic.len() + 12);
    key.push(PREFIX_SERIES);
    key.push(gtin_len);
    key.extend_from_slice(gtin.as_bytes());
    key.extend_from_slice(&name_len.to_be_bytes());
    key.extend_from_slice(characteristic.as_bytes());
    Some(key)
}

fn with_position(mut key: Vec<u8>, at: Position) -> Vec<u8> {
    key.extend_from_slice(&at.height.to_be_bytes());
    key.extend_from_slice(&at.index.to_be_bytes());
    key
}

/// The GTIN of a canonical lot or item subject (`.../01/{gtin}/...`), as
/// the text stands: the same stem the quality facts are found under.
fn gtin_of_subject(subject: &str) -> Option<&str> {
    let rest = subject.strip_prefix(CANONICAL_HOST)?.strip_prefix("/01/")?;
    let (gtin, _) = rest.split_once('/')?;
    Some(gtin)
}

/// Adds one committed event's measurement points to `batch` (called where
/// the lineage facts are written, `store::lineage::index`): per GTIN and
/// characteristic, one point for the event, under its first subject (in
/// the facts' key order) whose inspection names the characteristic, with
/// the value the facts keep for that subject (a later fact of the event
/// about the same subject replaces an earlier one, as in the facts).
pub(crate) fn index(batch: &mut Writes, at: Position, origin: &Origin, facts: &[Fact]) {
    for (gtin, name, subject, first) in points(facts) {
        insert(batch, at, origin, (gtin, name, subject, first), false);
    }
}

/// Adds the points of an event this node opened (`store::Opener`) that
/// its public part does not have, marked private: `public` are the public
/// event's facts, `opened` the facts of the event with its private fields
/// restored. A node that cannot open the record adds nothing from its
/// sealed part.
pub(crate) fn index_opened(
    batch: &mut Writes,
    at: Position,
    origin: &Origin,
    public: &[Fact],
    opened: &[Fact],
) {
    let charted: BTreeSet<(&str, &str)> = points(public)
        .into_iter()
        .map(|(gtin, name, _, _)| (gtin, name))
        .collect();
    for point in points(opened) {
        if !charted.contains(&(point.0, point.1)) {
            insert(batch, at, origin, point, true);
        }
    }
}

/// One event's points (module doc of [`index`]): GTIN, characteristic,
/// subject and the measurement.
fn points(facts: &[Fact]) -> Vec<(&str, &str, &str, &Measurement)> {
    let mut by_subject: BTreeMap<&str, &Fact> = BTreeMap::new();
    for fact in facts {
        for subject in &fact.subjects {
            by_subject.insert(subject, fact);
        }
    }
    let mut claimed: BTreeSet<(&str, &str)> = BTreeSet::new();
    let mut out = Vec::new();
    for (subject, fact) in by_subject {
        let Some(QualityFact::Inspection { measurements, .. }) = &fact.quality else {
            continue;
        };
        let Some(gtin) = gtin_of_subject(subject) else {
            continue;
        };
        for measurement in measurements {
            if !claimed.insert((gtin, measurement.name.as_str())) {
                continue;
            }
            // The first measurement of that name in the fact, as a chart
            // reads it.
            if let Some(first) = measurements.iter().find(|m| m.name == measurement.name) {
                out.push((gtin, measurement.name.as_str(), subject, first));
            }
        }
    }
    out
}

fn insert(
    batch: &mut Writes,
    at: Position,
    origin: &Origin,
    (gtin, name, subject, first): (&str, &str, &str, &Measurement),
    private: bool,
) {
    let Some(prefix) = series_prefix(gtin, name) else {
        return;
    };
    let stored = Stored {
        value: first.value,
        spec_min: first.spec_min,
        spec_max: first.spec_max,
        uom: first.uom.clone(),
        subject: subject.to_owned(),
        origin: origin.clone(),
        private,
    };
    batch.insert(with_position(prefix, at), index::encode(&stored));
}

/// Which part of a series to read.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Range {
    /// Only points after this one.
    pub after: Option<Position>,
    /// Only points committed at or below this height.
    pub until: Option<u64>,
}

/// The standing, visible measurements named `characteristic` of lots and
/// items of `gtin`, in chain order (one per event: an event measuring
/// several lots at once is one point, charted under its first lot), each
/// with the lot it was made in as its subgroup.
pub(crate) fn read(
    reader: &mut Reader<'_>,
    gtin: &str,
    characteristic: &str,
) -> Result<Vec<Measured>, SeriesError> {
    let gtin = parse_gtin(gtin)?;
    let mut series = read_range(reader, &gtin, characteristic, Range::default())?;
    let stem = format!("{CANONICAL_HOST}/01/{gtin}/");
    if series.iter().any(|m| m.point.subgroup.is_none()) {
        let lots = format!("{stem}10/");
        let mut lot_of: HashMap<String, String> = HashMap::new();
        for (lot, (_, edge)) in super::serialisations(reader, &lots)? {
            lot_of.entry(edge.other).or_insert(lot);
        }
        for measured in &mut series {
            if measured.point.subgroup.is_none() {
                measured.point.subgroup = lot_of.get(&measured.subject).cloned();
            }
        }
    }
    Ok(series)
}

/// The standing, visible points of one series within `range`, in chain
/// order; an item's point has no subgroup yet ([`read`] adds its lot).
pub(crate) fn read_range(
    reader: &mut Reader<'_>,
    gtin: &str,
    characteristic: &str,
    range: Range,
) -> Result<Vec<Measured>, SeriesError> {
    if characteristic.is_empty() || characteristic.chars().count() > CHARACTERISTIC_MAX {
        return Err(SeriesError::BadCharacteristic);
    }
    let Some(prefix) = series_prefix(gtin, characteristic) else {
        return Err(SeriesError::BadCharacteristic);
    };
    reader.know_declarations(DECLARATIONS_PRELOAD_MAX)?;
    let start = match range.after {
        Some(after) => with_position(prefix.clone(), after),
        None => prefix.clone(),
    };
    let stem_len = format!("{CANONICAL_HOST}/01/{gtin}/").len();
    let mut out = Vec::new();
    let store = reader.store.clone();
    for entry in store.scan_from(&prefix, &start) {
        let (key, value) = entry?;
        let Some(at) = key_position(&key) else {
            continue;
        };
        if range.after.is_some_and(|after| at <= after) {
            continue;
        }
        if range.until.is_some_and(|until| at.height > until) {
            break;
        }
        let stored: Stored =
            index::decode("measurement point", &value).map_err(|source| StoreError::Decode {
                what: "measurement point",
                source,
            })?;
        if !reader.stands(at, &stored.origin)?
            || (stored.private && !reader.sees_private(&stored.origin))
        {
            continue;
        }
        if out.len() >= SERIES_POINTS_MAX {
            return Err(SeriesError::TooMany);
        }
        let is_item = stored
            .subject
            .get(stem_len..)
            .is_some_and(|rest| rest.starts_with("21/"));
        out.push(Measured {
            point: Point {
                value: stored.value,
                subgroup: (!is_item).then(|| stored.subject.clone()),
                spec_min: stored.spec_min,
                spec_max: stored.spec_max,
            },
            subject: stored.subject,
            at,
            attestation: stored.origin.attestation,
            event_time: stored.origin.event_time,
            uom: stored.uom,
            private: stored.private,
        });
    }
    Ok(out)
}

/// The chain position a series key ends with.
fn key_position(key: &[u8]) -> Option<Position> {
    let n = key.len().checked_sub(12)?;
    let height = u64::from_be_bytes(key.get(n..n + 8)?.try_into().ok()?);
    let index = u32::from_be_bytes(key.get(n + 8..)?.try_into().ok()?);
    Some(Position { height, index })
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
