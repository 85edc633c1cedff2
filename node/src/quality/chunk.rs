//! The byte layout of one chunk of a measurement series (keyspace `u`,
//! [`super::series`]): up to [`CHUNK_POINTS`] points packed in one sled
//! value, so a chart over 100k points reads tens of keys instead of one
//! key per point, and walks each value in place: a [`PointRef`] borrows
//! its strings from the stored bytes (nothing is allocated per point to
//! decode it).
//!
//! A chunk is `version | count u32 | record*`; a record is
//! `height u64 | index u32 | flags u8 | value f64 | spec_min f64 |
//! spec_max f64 | attestation [32] | event_time_ms i64` (flags: which
//! optional fields are present, and whether the point is private) followed by six
//! length-prefixed (u32) strings: subject, org, event time, unit, eventID,
//! bizStep (the last three absent unless their flag is set). Integers are
//! big-endian, floats their IEEE bits little-endian (as postcard, and so
//! every other record of the store, keeps an f64). Appending a point is
//! appending its record and bumping the count: a chunk's bytes depend only
//! on the points it holds, not on how the blocks that wrote them were
//! batched.

use lotline_core::attestation::AttestationId;
use lotline_core::codec::DecodeError;
use lotline_core::hash::Digest;

use crate::store::index::Position;

/// Most points one chunk holds; the next point starts a new chunk.
pub const CHUNK_POINTS: u32 = 2048;

const VERSION: u8 = 1;
const HEADER: usize = 5;
const WHAT: &str = "measurement chunk";

const HAS_SPEC_MIN: u8 = 1;
const HAS_SPEC_MAX: u8 = 2;
const HAS_UOM: u8 = 4;
const HAS_EVENT_ID: u8 = 8;
const HAS_BIZ_STEP: u8 = 16;
const PRIVATE: u8 = 32;
const FLAGS_KNOWN: u8 = 63;

/// One point as a chunk holds it, borrowing from the chunk's bytes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PointRef<'a> {
    pub at: Position,
    pub value: f64,
    pub spec_min: Option<f64>,
    pub spec_max: Option<f64>,
    pub uom: Option<&'a str>,
    /// The lot or item measured (canonical).
    pub subject: &'a str,
    pub attestation: AttestationId,
    pub org: &'a str,
    pub event_time: &'a str,
    pub event_time_ms: i64,
    pub event_id: Option<&'a str>,
    pub biz_step: Option<&'a str>,
    /// Opened from the record's private section by this node's org key
    /// (`store::Opener`): read only by callers the read rule entitles.
    pub private: bool,
}

/// Appends `point` to `chunk` (an empty `chunk` becomes a chunk of one
/// point). The caller keeps a chunk at or under [`CHUNK_POINTS`]
/// ([`count`]); a chunk whose header does not decode is refused.
pub fn append(chunk: &mut Vec<u8>, point: &PointRef<'_>) -> Result<(), DecodeError> {
    let texts = || {
        [point.subject, point.org, point.event_time]
            .into_iter()
            .chain(point.uom)
            .chain(point.event_id)
            .chain(point.biz_step)
    };
    // Checked before anything is written: a refused point leaves the
    // chunk as it was.
    if let Some(long) = texts().find(|text| u32::try_from(text.len()).is_err()) {
        return Err(malformed(format!("a string of {} bytes", long.len())));
    }
    if chunk.is_empty() {
        chunk.push(VERSION);
        chunk.extend_from_slice(&0u32.to_be_bytes());
    }
    let count = count(chunk)?;
    let next = count
        .checked_add(1)
        .ok_or_else(|| malformed("too many points".to_owned()))?;
    chunk[1..HEADER].copy_from_slice(&next.to_be_bytes());
    chunk.extend_from_slice(&point.at.height.to_be_bytes());
    chunk.extend_from_slice(&point.at.index.to_be_bytes());
    let flag = |present: bool, bit: u8| if present { bit } else { 0 };
    let flags = flag(point.spec_min.is_some(), HAS_SPEC_MIN)
        | flag(point.spec_max.is_some(), HAS_SPEC_MAX)
        | flag(point.uom.is_some(), HAS_UOM)
        | flag(point.event_id.is_some(), HAS_EVENT_ID)
        | flag(point.biz_step.is_some(), HAS_BIZ_STEP)
        | flag(point.private, PRIVATE);
    chunk.push(flags);
    for float in [
        point.value,
        point.spec_min.unwrap_or(0.0),
        point.spec_max.unwrap_or(0.0),
    ] {
        chunk.extend_from_slice(&float.to_le_bytes());
    }
    chunk.extend_from_slice(&point.attestation.0.0);
    chunk.extend_from_slice(&point.event_time_ms.to_be_bytes());
    for text in texts() {
        let len = u32::try_from(text.len()).unwrap_or(u32::MAX);
        chunk.extend_from_slice(&len.to_be_bytes());
        chunk.extend_from_slice(text.as_bytes());
    }
    Ok(())
}

/// How many points `chunk` says it holds.
pub fn count(chunk: &[u8]) -> Result<u32, DecodeError> {
    match chunk {
        [VERSION, a, b, c, d, ..] => Ok(u32::from_be_bytes([*a, *b, *c, *d])),
        [version, ..] => Err(malformed(format!("version {version}"))),
        [] => Err(malformed("empty".to_owned())),
    }
}

/// The points of `chunk`, in the order they were appended; a record that
/// does not decode, a count the records do not match, or bytes after the
/// last record end the walk with an error.
pub fn points(chunk: &[u8]) -> Result<Points<'_>, DecodeError> {
    let left = count(chunk)?;
    Ok(Points {
        rest: chunk.get(HEADER..).unwrap_or_default(),
        left,
        failed: false,
    })
}

/// The walk over one chunk's points ([`points`]).
#[derive(Debug)]
pub struct Points<'a> {
    rest: &'a [u8],
    left: u32,
    failed: bool,
}

impl<'a> Iterator for Points<'a> {
    type Item = Result<PointRef<'a>, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        if self.left == 0 {
            if self.rest.is_empty() {
                return None;
            }
            self.failed = true;
            return Some(Err(DecodeError::Trailing {
                what: WHAT,
                trailing: self.rest.len(),
            }));
        }
        match record(&mut self.rest) {
            Ok(point) => {
                self.left -= 1;
                Some(Ok(point))
            }
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

fn record<'a>(rest: &mut &'a [u8]) -> Result<PointRef<'a>, DecodeError> {
    let height = u64::from_be_bytes(take(rest)?);
    let index = u32::from_be_bytes(take(rest)?);
    let [flags] = take::<1>(rest)?;
    if flags & !FLAGS_KNOWN != 0 {
        return Err(malformed(format!("flags {flags:#x}")));
    }
    let value = f64::from_le_bytes(take(rest)?);
    let spec_min = f64::from_le_bytes(take(rest)?);
    let spec_max = f64::from_le_bytes(take(rest)?);
    let attestation = AttestationId(Digest(take(rest)?));
    let event_time_ms = i64::from_be_bytes(take(rest)?);
    let subject = text(rest)?;
    let org = text(rest)?;
    let event_time = text(rest)?;
    let optional = |rest: &mut &'a [u8], flag: u8| -> Result<Option<&'a str>, DecodeError> {
        if flags & flag == 0 {
            Ok(None)
        } else {
            text(rest).map(Some)
        }
    };
    let uom = optional(rest, HAS_UOM)?;
    let event_id = optional(rest, HAS_EVENT_ID)?;
    let biz_step = optional(rest, HAS_BIZ_STEP)?;
    Ok(PointRef {
        at: Position { height, index },
        value,
        spec_min: (flags & HAS_SPEC_MIN != 0).then_some(spec_min),
        spec_max: (flags & HAS_SPEC_MAX != 0).then_some(spec_max),
        uom,
        subject,
        attestation,
        org,
        event_time,
        event_time_ms,
        event_id,
        biz_step,
        private: flags & PRIVATE != 0,
    })
}

fn take<const N: usize>(rest: &mut &[u8]) -> Result<[u8; N], DecodeError> {
    let Some((head, tail)) = rest.split_first_chunk::<N>() else {
        return Err(malformed(format!(
            "a record cut short ({} bytes left, {N} needed)",
            rest.len()
        )));
    };
    *rest = tail;
    Ok(*head)
}

fn text<'a>(rest: &mut &'a [u8]) -> Result<&'a str, DecodeError> {
    let len = u32::from_be_bytes(take(rest)?);
    let len = usize::try_from(len).map_err(|_| malformed(format!("a string of {len} bytes")))?;
    if rest.len() < len {
        return Err(malformed(format!(
            "a string of {len} bytes with {} left",
            rest.len()
        )));
    }
    let (bytes, tail) = rest.split_at(len);
    *rest = tail;
    std::str::from_utf8(bytes).map_err(|e| malformed(format!("a string that is not UTF-8: {e}")))
}

fn malformed(reason: String) -> DecodeError {
    DecodeError::Malformed { what: WHAT, reason }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[derive(Clone, Debug)]
    struct Owned {
        at: (u64, u32),
        value: f64,
        spec_min: Option<f64>,
        spec_max: Option<f64>,
        uom: Option<String>,
        subject: String,
        attestation: [u8; 32],
        org: String,
        event_time: String,
        event_time_ms: i64,
        event_id: Option<String>,
        biz_step: Option<String>,
        private: bool,
    }

    impl Owned {
        fn as_ref(&self) -> PointRef<'_> {
            PointRef {
                at: Position {
                    height: self.at.0,
                    index: self.at.1,
                },
                value: self.value,
                spec_min: self.spec_min,
                spec_max: self.spec_max,
                uom: self.uom.as_deref(),
                subject: &self.subject,
                attestation: AttestationId(Digest(self.attestation)),
                org: &self.org,
                event_time: &self.event_time,
                event_time_ms: self.event_time_ms,
                event_id: self.event_id.as_deref(),
                biz_step: self.biz_step.as_deref(),
                private: self.private,
            }
        }
    }

    fn float() -> impl Strategy<Value = f64> {
        prop_oneof![
            any::<f64>(),
            Just(-0.0),
            Just(f64::NAN),
            Just(f64::INFINITY)
        ]
    }

    fn owned() -> impl Strategy<Value = Owned> {
        (
            (any::<u64>(), any::<u32>()),
            float(),
            proptest::option::of(float()),
            proptest::option::of(float()),
            proptest::option::of(".{0,8}"),
            ".{0,40}",
            any::<[u8; 32]>(),
            ".{0,12}",
            (".{0,30}", any::<i64>(), any::<bool>()),
            proptest::option::of(".{0,20}"),
            proptest::option::of(".{0,20}"),
        )
            .prop_map(
                |(
                    at,
                    value,
                    spec_min,
                    spec_max,
                    uom,
                    subject,
                    attestation,
                    org,
                    time,
                    event_id,
                    biz_step,
                )| Owned {
                    at,
                    value,
                    spec_min,
                    spec_max,
                    uom,
                    subject,
                    attestation,
                    org,
                    event_time: time.0,
                    event_time_ms: time.1,
                    event_id,
                    biz_step,
                    private: time.2,
                },
            )
    }

    /// Equal as stored: floats by their bits (NaN, -0.0 kept).
    fn same(a: &PointRef<'_>, b: &PointRef<'_>) -> bool {
        let bits = |f: Option<f64>| f.map(f64::to_bits);
        a.at == b.at
            && a.value.to_bits() == b.value.to_bits()
            && bits(a.spec_min) == bits(b.spec_min)
            && bits(a.spec_max) == bits(b.spec_max)
            && (a.uom, a.subject, a.org, a.event_time) == (b.uom, b.subject, b.org, b.event_time)
            && a.attestation == b.attestation
            && a.event_time_ms == b.event_time_ms
            && (a.event_id, a.biz_step, a.private) == (b.event_id, b.biz_step, b.private)
    }

    proptest! {
        #[test]
        fn a_chunk_gives_back_exactly_the_points_appended(points in proptest::collection::vec(owned(), 0..40)) {
            let mut chunk = Vec::new();
            for point in &points {
                append(&mut chunk, &point.as_ref()).expect("append");
            }
            if points.is_empty() {
                prop_assert!(chunk.is_empty());
                return Ok(());
            }
            prop_assert_eq!(count(&chunk).expect("count") as usize, points.len());
            let back: Vec<PointRef<'_>> = points_of(&chunk);
            prop_assert_eq!(back.len(), points.len());
            for (a, b) in back.iter().zip(&points) {
                prop_assert!(same(a, &b.as_ref()), "{a:?} != {:?}", b.as_ref());
            }
        }

        #[test]
        fn a_damaged_chunk_is_an_error_or_other_points_never_a_panic(
            written in proptest::collection::vec(owned(), 1..6),
            cut in any::<prop::sample::Index>(),
            flip in any::<prop::sample::Index>(),
            byte in any::<u8>(),
        ) {
            let mut chunk = Vec::new();
            for point in &written {
                append(&mut chunk, &point.as_ref()).expect("append");
            }
            let mut damaged = chunk.clone();
            let i = flip.index(damaged.len());
            damaged[i] ^= byte | 1;
            if let Ok(walk) = points(&damaged) {
                let _ = walk.count();
            }
            let cut = cut.index(chunk.len());
            let walk = points(&chunk[..cut]);
            let all_ok = walk.is_ok_and(|w| w.collect::<Result<Vec<_>, _>>().is_ok());
            prop_assert!(!all_ok, "a cut chunk walked whole");
        }
    }

    fn points_of(chunk: &[u8]) -> Vec<PointRef<'_>> {
        points(chunk)
            .expect("header")
            .collect::<Result<_, _>>()
            .expect("points")
    }

    #[test]
    fn bad_headers_are_errors() {
        assert!(count(&[]).is_err());
        assert!(count(&[2, 0, 0, 0, 0]).is_err());
        assert!(points(&[1, 0, 0]).is_err());
        let trailing: Vec<_> = points(&[1, 0, 0, 0, 0, 9]).expect("header").collect();
        assert!(matches!(
            trailing.as_slice(),
            [Err(DecodeError::Trailing { trailing: 1, .. })]
        ));
    }
}
