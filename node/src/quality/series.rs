//! The measurements of one characteristic of one product class (GTIN), in
//! chain order, as the caller may see them: the input of the control
//! charts.
//!
//! Kept at commit as a series of its own (keyspace `u`, packed in the
//! block's batch by [`flush`], the one writer): chunks of up to
//! [`CHUNK_POINTS`] points, `u | len | gtin | len | characteristic |
//! height | idx` keyed by each chunk's first point, each point holding
//! the value, the spec limits, the unit, the subject and the event's
//! origin ([`super::chunk`]). A chart over 100k points reads about fifty
//! keys and walks them in place (no JSON, no origin lookup, nothing
//! allocated per point to decode), and the alert follower reads from the
//! chunk holding the first point after the last one it judged. When items were
//! measured, one more prefix scan (every serialisation of the GTIN's lots,
//! `StoreReader::edges_under`) gives each item its lot, the rational
//! subgroup of the X-bar/R and p charts.
//!
//! A node that opens a record's private section (`store::Opener`) adds the
//! opened measurements the public event lacks as points marked private
//! ([`index_opened`]); a read lists them only to callers the one rule
//! entitles (`Visibility::can_see_private`, i.e.
//! `access::private::can_read_private`).
//!
//! A record wrapped to a key period (retention, crypto-shredding) must
//! leave nothing readable once the period's key is destroyed, so its
//! opened points are not packed into `u` (sled keeps overwritten bytes in
//! its files until it reclaims them) but kept one per entry in keyspace
//! `v`, sealed under the period's at-rest key (`lotline_core::at_rest`):
//! `v | period | tag(series) | height | idx`, the tag a keyed hash of the
//! series' `u` prefix, so neither the characteristic nor the value is
//! readable without the key. Reads merge the periods whose keys this node
//! still holds; shredding a period removes its entries
//! (`StoreReader::forget_period`), and what sled left of them on disk is
//! sealed under a key that no longer exists.

use std::collections::{BTreeMap, BTreeSet};

use lotline_core::at_rest::PeriodAtRestKey;
use lotline_core::attestation::AttestationId;
use lotline_core::codec::DecodeError;
use lotline_core::epcis::{Measurement, QualityFact};
use lotline_core::gs1::{CANONICAL_HOST, Gtin};
use lotline_core::lineage::Fact;

use super::chunk::{self, CHUNK_POINTS, PointRef};
use super::spc::Point;
use crate::store::index::Position;
use crate::store::lineage::Origin;
use crate::store::{StoreError, StoreReader, Writes};
use crate::trace::Reader;

/// The keyspace of the measurement series.
pub(crate) const PREFIX_SERIES: u8 = b'u';
/// The keyspace of opened points of period-keyed records, sealed (module
/// doc). Its own letter: shredding deletes by `z | period` prefix.
const PREFIX_SEALED: u8 = b'z';
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

/// `z | period`: every sealed point of one key period.
pub(crate) fn sealed_period_prefix(period: u64) -> Vec<u8> {
    let mut key = Vec::with_capacity(9 + 16 + 12);
    key.push(PREFIX_SEALED);
    key.extend_from_slice(&period.to_be_bytes());
    key
}

/// `z | period | tag`: the sealed points of one series (its `u` prefix)
/// in `key`'s period.
fn sealed_series_prefix(key: &PeriodAtRestKey, series: &[u8]) -> Vec<u8> {
    let mut out = sealed_period_prefix(key.period());
    out.extend_from_slice(&key.tag(series));
    out
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
/// about the same subject replaces an earlier one, as in the facts). The
/// points wait in the batch until [`flush`] packs them into chunks.
pub(crate) fn index(batch: &mut Writes, at: Position, origin: &Origin, facts: &[Fact]) {
    for point in points(facts) {
        insert(batch, at, origin, point, false);
    }
}

/// Adds the points of an event this node opened (`store::Opener`) that
/// its public part does not have, marked private: `public` are the public
/// event's facts, `opened` the facts of the event with its private fields
/// restored; `at_rest` the key of the record's key period, if it has one
/// (its points are sealed under it, module doc). A node that cannot open
/// the record adds nothing from its sealed part.
pub(crate) fn index_opened(
    batch: &mut Writes,
    at: Position,
    origin: &Origin,
    public: &[Fact],
    opened: &[Fact],
    at_rest: Option<&PeriodAtRestKey>,
) {
    let charted: BTreeSet<(&str, &str)> = points(public)
        .into_iter()
        .map(|(gtin, name, _, _)| (gtin, name))
        .collect();
    for point in points(opened) {
        if charted.contains(&(point.0, point.1)) {
            continue;
        }
        match at_rest {
            None => insert(batch, at, origin, point, true),
            Some(key) => insert_sealed(batch, at, origin, point, key),
        }
    }
}

/// Puts one point of a period-keyed record in the batch, sealed in its
/// own entry of keyspace `v` (module doc).
fn insert_sealed(
    batch: &mut Writes,
    at: Position,
    origin: &Origin,
    point: (&str, &str, &str, &Measurement),
    key: &PeriodAtRestKey,
) {
    let Some(prefix) = series_prefix(point.0, point.1) else {
        return;
    };
    let mut bytes = Vec::new();
    // Refused only for a string over 4 GiB, as in `insert`.
    if chunk::append(&mut bytes, &point_ref(at, origin, point, true)).is_err() {
        return;
    }
    let name = with_position(sealed_series_prefix(key, &prefix), at);
    let sealed = key.seal(&name, &bytes);
    batch.insert(name, sealed);
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

/// Puts one point in the batch's waiting points of its series.
fn insert(
    batch: &mut Writes,
    at: Position,
    origin: &Origin,
    point: (&str, &str, &str, &Measurement),
    private: bool,
) {
    let Some(prefix) = series_prefix(point.0, point.1) else {
        return;
    };
    let point = point_ref(at, origin, point, private);
    let waiting = batch.series.by_series.entry(prefix).or_default();
    // Only a string over 4 GiB is refused (and leaves the chunk as it
    // was): such a point is not charted (no event that large passes
    // admission).
    let _ = chunk::append(waiting, &point);
}

/// One point of an event as a chunk keeps it.
fn point_ref<'a>(
    at: Position,
    origin: &'a Origin,
    (_, _, subject, first): (&str, &str, &'a str, &'a Measurement),
    private: bool,
) -> PointRef<'a> {
    PointRef {
        at,
        value: first.value,
        spec_min: first.spec_min,
        spec_max: first.spec_max,
        uom: first.uom.as_deref(),
        subject,
        attestation: origin.attestation,
        org: &origin.org,
        event_time: &origin.event_time,
        event_time_ms: origin.event_time_ms,
        event_id: origin.event_id.as_deref(),
        biz_step: origin.biz_step.as_deref(),
        private,
    }
}

/// The points of a batch not yet packed, per series prefix, each series'
/// in chain order (as one unbounded chunk).
#[derive(Debug, Default)]
pub(crate) struct Pending {
    by_series: BTreeMap<Vec<u8>, Vec<u8>>,
}

/// Packs the points `batch` collected into their series' chunks, in the
/// batch: the one writer of keyspace `u`. Each series' last chunk is
/// extended up to [`CHUNK_POINTS`], then new chunks follow, each keyed by
/// its first point, so the chunks are the same however the blocks were
/// batched (and a rebuild from the block log writes the same bytes).
pub(crate) fn flush(store: &StoreReader, batch: &mut Writes) -> Result<(), StoreError> {
    let pending = std::mem::take(&mut batch.series);
    let decode = |source| StoreError::Decode {
        what: "measurement chunk",
        source,
    };
    for (prefix, waiting) in pending.by_series {
        let end = with_position(
            prefix.clone(),
            Position {
                height: u64::MAX,
                index: u32::MAX,
            },
        );
        let last = store
            .last_under(&prefix, &end)?
            .map(|(key, value)| (key.to_vec(), value.to_vec()));
        for (key, value) in pack(&prefix, last, &waiting, CHUNK_POINTS).map_err(decode)? {
            batch.insert(key, value);
        }
    }
    Ok(())
}

/// A chunk's key and bytes.
type Keyed = (Vec<u8>, Vec<u8>);

/// The chunks to write when the points of `waiting` (a chunk) follow the
/// series' `last` stored chunk (key, bytes): the last one extended while
/// it holds fewer than `max` points, then new ones keyed by their first
/// point.
fn pack(
    prefix: &[u8],
    last: Option<Keyed>,
    waiting: &[u8],
    max: u32,
) -> Result<Vec<Keyed>, DecodeError> {
    let mut out = Vec::new();
    let mut current = match last {
        Some((key, bytes)) if chunk::count(&bytes)? < max => Some((key, bytes)),
        _ => None,
    };
    for point in chunk::points(waiting)? {
        let point = point?;
        if let Some((_, bytes)) = &current
            && chunk::count(bytes)? >= max
        {
            out.extend(current.take());
        }
        let (_, bytes) =
            current.get_or_insert_with(|| (with_position(prefix.to_vec(), point.at), Vec::new()));
        chunk::append(bytes, &point)?;
    }
    out.extend(current);
    Ok(out)
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
        // The lots' units as kept at commit (`exposure`): integers, where
        // the lots' serialisation edges were a string per unit.
        let serials = super::exposure::Serials::read(reader, &[format!("{stem}10/")])?;
        for measured in &mut series {
            if measured.point.subgroup.is_none() {
                measured.point.subgroup = serials.lot_of(&measured.subject).map(str::to_owned);
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
    let store = reader.store.clone();
    // The chunk holding the first point after `after` starts at or before
    // it.
    let start = match range.after {
        Some(after) => store
            .last_under(&prefix, &with_position(prefix.clone(), after))?
            .map_or_else(|| prefix.clone(), |(key, _)| key.to_vec()),
        None => prefix.clone(),
    };
    let decode = |source| StoreError::Decode {
        what: "measurement chunk",
        source,
    };
    let mut collect = Collect {
        range,
        stem_len: format!("{CANONICAL_HOST}/01/{gtin}/").len(),
        out: Vec::new(),
        origin: Origin {
            attestation: AttestationId(lotline_core::hash::Digest::ZERO),
            org: String::new(),
            event_time: String::new(),
            event_time_ms: 0,
            event_id: None,
            biz_step: None,
            read_point: None,
        },
    };
    'chunks: for entry in store.scan_from(&prefix, &start) {
        let (_, value) = entry?;
        for point in chunk::points(&value).map_err(decode)? {
            if collect.take(reader, point.map_err(decode)?)? == Flow::Stop {
                break 'chunks;
            }
        }
    }
    // The sealed points of the key periods this node can still open, one
    // entry each (module doc), merged in chain order.
    let public = collect.out.len();
    for key in store.at_rest_keys() {
        let sealed = sealed_series_prefix(&key, &prefix);
        let start = match range.after {
            Some(after) => with_position(sealed.clone(), after),
            None => sealed.clone(),
        };
        'entries: for entry in store.scan_from(&sealed, &start) {
            let (name, value) = entry?;
            let bytes = key.open(&name, &value).map_err(|e| {
                decode(DecodeError::Malformed {
                    what: "sealed measurement",
                    reason: e.to_string(),
                })
            })?;
            for point in chunk::points(&bytes).map_err(decode)? {
                if collect.take(reader, point.map_err(decode)?)? == Flow::Stop {
                    break 'entries;
                }
            }
        }
    }
    let mut out = collect.out;
    if out.len() > public {
        out.sort_by_key(|m| m.at);
    }
    Ok(out)
}

/// Whether a series read goes on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Flow {
    More,
    Stop,
}

/// The points a series read keeps: standing, visible, within its range.
struct Collect {
    range: Range,
    /// Length of the GTIN's subject stem (what follows tells an item).
    stem_len: usize,
    out: Vec<Measured>,
    /// One origin refilled in place for each point's visibility and
    /// retraction check (its strings keep their capacity).
    origin: Origin,
}

impl Collect {
    /// Keeps `point` if it is in range, standing and visible to the reader.
    fn take(&mut self, reader: &mut Reader<'_>, point: PointRef<'_>) -> Result<Flow, SeriesError> {
        let at = point.at;
        if self.range.after.is_some_and(|after| at <= after) {
            return Ok(Flow::More);
        }
        if self.range.until.is_some_and(|until| at.height > until) {
            return Ok(Flow::Stop);
        }
        refill(&mut self.origin, &point);
        if !reader.stands(at, &self.origin)?
            || (point.private && !reader.sees_private(&self.origin))
        {
            return Ok(Flow::More);
        }
        if self.out.len() >= SERIES_POINTS_MAX {
            return Err(SeriesError::TooMany);
        }
        let is_item = point
            .subject
            .get(self.stem_len..)
            .is_some_and(|rest| rest.starts_with("21/"));
        self.out.push(Measured {
            point: Point {
                value: point.value,
                subgroup: (!is_item).then(|| point.subject.to_owned()),
                spec_min: point.spec_min,
                spec_max: point.spec_max,
            },
            subject: point.subject.to_owned(),
            at,
            attestation: point.attestation,
            event_time: point.event_time.to_owned(),
            uom: point.uom.map(str::to_owned),
            private: point.private,
        });
        Ok(Flow::More)
    }
}

/// `origin` made the origin `point` was stated with.
fn refill(origin: &mut Origin, point: &PointRef<'_>) {
    fn set(field: &mut String, text: &str) {
        field.clear();
        field.push_str(text);
    }
    fn set_optional(field: &mut Option<String>, text: Option<&str>) {
        match (field.as_mut(), text) {
            (Some(field), Some(text)) => set(field, text),
            (None, Some(text)) => *field = Some(text.to_owned()),
            (_, None) => *field = None,
        }
    }
    origin.attestation = point.attestation;
    set(&mut origin.org, point.org);
    set(&mut origin.event_time, point.event_time);
    origin.event_time_ms = point.event_time_ms;
    set_optional(&mut origin.event_id, point.event_id);
    set_optional(&mut origin.biz_step, point.biz_step);
}

#[cfg(test)]
mod tests {
    use super::*;

    use lotline_core::hash::Digest;
    use proptest::prelude::*;

    fn point(height: u64, subject: &str) -> PointRef<'_> {
        PointRef {
            at: Position { height, index: 0 },
            value: height as f64,
            spec_min: None,
            spec_max: Some(9.0),
            uom: None,
            subject,
            attestation: AttestationId(Digest([height as u8; 32])),
            org: "org",
            event_time: "2026-01-01T00:00:00Z",
            event_time_ms: 0,
            event_id: None,
            biz_step: Some("inspecting"),
            private: height.is_multiple_of(3),
        }
    }

    /// Packs `heights` as batches of the given sizes into an in-memory
    /// keyspace, as [`flush`] does into sled.
    fn packed(heights: &[u64], batches: &[usize], max: u32) -> BTreeMap<Vec<u8>, Vec<u8>> {
        let prefix = b"u-test".to_vec();
        let mut stored: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
        let mut rest = heights;
        let mut sizes = batches.iter().copied().cycle();
        while !rest.is_empty() {
            let n = sizes.next().unwrap_or(1).clamp(1, rest.len());
            let (batch, tail) = rest.split_at(n);
            rest = tail;
            let mut waiting = Vec::new();
            for &h in batch {
                chunk::append(&mut waiting, &point(h, "s")).expect("append");
            }
            let last = stored
                .iter()
                .next_back()
                .map(|(k, v)| (k.clone(), v.clone()));
            for (key, value) in pack(&prefix, last, &waiting, max).expect("pack") {
                stored.insert(key, value);
            }
        }
        stored
    }

    proptest! {
        #[test]
        fn chunks_hold_every_point_once_in_order_whatever_the_batching(
            n in 0u64..60,
            batches in proptest::collection::vec(1usize..9, 1..5),
            max in 1u32..7,
        ) {
            let heights: Vec<u64> = (1..=n).collect();
            let stored = packed(&heights, &batches, max);
            let whole = packed(&heights, &[heights.len().max(1)], max);
            prop_assert_eq!(&stored, &whole);
            let mut back = Vec::new();
            for (key, value) in &stored {
                let first: Vec<u64> = chunk::points(value).expect("chunk")
                    .map(|p| p.expect("point").at.height).collect();
                prop_assert!(!first.is_empty() && first.len() <= max as usize);
                prop_assert_eq!(key, &with_position(b"u-test".to_vec(), Position { height: first[0], index: 0 }));
                back.extend(first);
            }
            prop_assert_eq!(back, heights);
        }
    }

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
