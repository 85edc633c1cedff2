//! Records kept one per chain position (the attestation records `a`, the
//! lineage event records `y`), packed [`GROUP`] positions to a sled key:
//! ```text
//! prefix | height (u64 BE) | index / GROUP (u32 BE)
//!     -> ( index % GROUP (u8) | length (u32 BE) | record )*   slots ascending, each once
//! ```
//! Why packed: sled 0.34 splits a leaf past 16 keys and keeps metadata in
//! memory for every page of its tree, resident or not (about 250 bytes a
//! page, mostly the list of the page's fragments on disk: a heap profile,
//! docs/performance.md). Keys that only ever append at the right edge of
//! the tree leave pages of 9 keys behind them, so one key per position
//! cost two pages per 9 events for these two keyspaces, a quarter of the
//! tree's pages and of the memory that grows with the store. Packed, they
//! cost 2 keys per 16 events in the commit path instead of 2 per event.
//!
//! Every group is written whole, in its block's atomic batch (a group
//! never spans blocks), so applying a block again writes the same values,
//! and a reader sees a block's records all or none.

use std::collections::BTreeMap;

use lotline_core::codec::DecodeError;

use super::index::{self, Position};

/// Positions per key. 16 records of a few hundred bytes make a value of
/// 4–6 KB and a full leaf of about 100 KB, under the size at which sled
/// moves a page out of its log into a file of its own.
pub const GROUP: u32 = 16;

/// Bytes before each record: its slot and its length.
const HEADER: usize = 1 + 4;

/// The key of the group holding position `at`.
pub fn key(prefix: u8, at: Position) -> [u8; 13] {
    index::position_key(
        prefix,
        Position {
            height: at.height,
            index: at.index / GROUP,
        },
    )
}

/// The slot of `at` in its group.
fn slot(at: Position) -> u8 {
    // `at.index % GROUP` < 16.
    (at.index % GROUP) as u8
}

/// Why a group's value or key does not decode.
fn malformed(reason: String) -> DecodeError {
    DecodeError::Malformed {
        what: "record group",
        reason,
    }
}

/// One block's records, gathered by group until the batch is written
/// ([`Pending::into_writes`]).
#[derive(Default)]
pub(crate) struct Pending {
    groups: BTreeMap<[u8; 13], BTreeMap<u8, Vec<u8>>>,
}

impl Pending {
    /// Keeps `record` as the one at `at` in keyspace `prefix` (a second one
    /// for the same position replaces the first, as a second sled insert
    /// of one key would).
    pub(crate) fn add(&mut self, prefix: u8, at: Position, record: Vec<u8>) {
        self.groups
            .entry(key(prefix, at))
            .or_default()
            .insert(slot(at), record);
    }

    /// The keys and values to write, one per group.
    pub(crate) fn into_writes(self) -> impl Iterator<Item = ([u8; 13], Vec<u8>)> {
        self.groups.into_iter().map(|(key, records)| {
            let size = records.values().map(|r| HEADER + r.len()).sum();
            let mut value = Vec::with_capacity(size);
            for (slot, record) in records {
                value.push(slot);
                // A record is one attestation's or one event's index entry,
                // far below 4 GiB (envelopes are capped at admission).
                let length = u32::try_from(record.len()).unwrap_or(u32::MAX);
                value.extend_from_slice(&length.to_be_bytes());
                value.extend_from_slice(&record);
            }
            (key, value)
        })
    }
}

/// The records of one group's value: (slot, where its bytes are), in slot
/// order. A value the writer could not have made (slots out of range or
/// out of order, a length past the end) is an error, never a panic.
fn records(
    value: &[u8],
) -> impl Iterator<Item = Result<(u8, std::ops::Range<usize>), DecodeError>> + '_ {
    let mut at = 0usize;
    let mut previous: Option<u8> = None;
    std::iter::from_fn(move || {
        if at >= value.len() {
            return None;
        }
        let parsed = record_at(value, at, previous);
        match &parsed {
            Ok((slot, range)) => {
                previous = Some(*slot);
                at = range.end;
            }
            // Nothing after a damaged header can be trusted.
            Err(_) => at = value.len(),
        }
        Some(parsed)
    })
}

/// The record whose header starts at byte `at` of `value`, after the one
/// in slot `previous`.
fn record_at(
    value: &[u8],
    at: usize,
    previous: Option<u8>,
) -> Result<(u8, std::ops::Range<usize>), DecodeError> {
    let header = value
        .get(at..at + HEADER)
        .ok_or_else(|| malformed(format!("a record header is cut at byte {at}")))?;
    let slot = header[0];
    if u32::from(slot) >= GROUP || previous.is_some_and(|p| slot <= p) {
        return Err(malformed(format!("slot {slot} out of range or order")));
    }
    let length = u32::from_be_bytes([header[1], header[2], header[3], header[4]]);
    let start = at + HEADER;
    let end = usize::try_from(length)
        .ok()
        .and_then(|n| start.checked_add(n))
        .filter(|&end| end <= value.len())
        .ok_or_else(|| malformed(format!("slot {slot}'s {length} bytes run past the value")))?;
    Ok((slot, start..end))
}

/// The record at `at` in keyspace `prefix`, `Ok(None)` if there is none.
pub fn get(db: &sled::Tree, prefix: u8, at: Position) -> Result<Option<sled::IVec>, PackedError> {
    let Some(value) = db.get(key(prefix, at))? else {
        return Ok(None);
    };
    let wanted = slot(at);
    for record in records(&value) {
        let (slot, range) = record?;
        if slot == wanted {
            return Ok(Some(value.subslice(range.start, range.len())));
        }
        if slot > wanted {
            break;
        }
    }
    Ok(None)
}

/// Reading a packed value (a record group here, a listing's block in
/// `store::listing`) failed: sled did, or the value is damaged.
#[derive(Debug, thiserror::Error)]
pub enum PackedError {
    #[error(transparent)]
    Sled(#[from] sled::Error),
    #[error(transparent)]
    Decode(#[from] DecodeError),
}

/// The position of the group key `key` in keyspace `prefix` (its first
/// slot), `None` for a key of another shape.
fn group_of(prefix: u8, key: &[u8]) -> Option<Position> {
    if key.len() != 13 || key.first() != Some(&prefix) {
        return None;
    }
    let (height, group) = index::listing_position(key)?;
    Some(Position {
        height,
        index: group.checked_mul(GROUP)?,
    })
}

/// The records of keyspace `prefix` in chain order, strictly after
/// `after`: ([`scan`]).
pub struct Scan {
    iter: sled::Iter,
    prefix: u8,
    after: Option<Position>,
    /// The records left in the group being read.
    group: std::vec::IntoIter<Result<(Position, sled::IVec), PackedError>>,
}

impl std::fmt::Debug for Scan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scan")
            .field("prefix", &self.prefix)
            .field("after", &self.after)
            .finish()
    }
}

/// Walks keyspace `prefix` in chain order, strictly after `after`.
pub fn scan(db: &sled::Tree, prefix: u8, after: Option<Position>) -> Scan {
    let start = match after {
        Some(at) => key(prefix, at).to_vec(),
        None => vec![prefix],
    };
    Scan {
        iter: db.range(start..),
        prefix,
        after,
        group: Vec::new().into_iter(),
    }
}

/// A group's records as positions and values.
fn unpack(first: Position, value: &sled::IVec) -> Vec<Result<(Position, sled::IVec), PackedError>> {
    records(value)
        .map(|record| {
            let (slot, range) = record?;
            let at = Position {
                height: first.height,
                index: first.index + u32::from(slot),
            };
            Ok((at, value.subslice(range.start, range.len())))
        })
        .collect()
}

impl Iterator for Scan {
    type Item = Result<(Position, sled::IVec), PackedError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            for record in self.group.by_ref() {
                match record {
                    Ok((at, _)) if self.after.is_some_and(|after| at <= after) => continue,
                    other => return Some(other),
                }
            }
            let (key, value) = match self.iter.next()? {
                Ok(entry) => entry,
                Err(e) => return Some(Err(e.into())),
            };
            if key.first() != Some(&self.prefix) {
                return None;
            }
            let Some(first) = group_of(self.prefix, &key) else {
                continue;
            };
            self.group = unpack(first, &value).into_iter();
        }
    }
}

/// The last record of keyspace `prefix`, `Ok(None)` if it has none.
pub fn last(db: &sled::Tree, prefix: u8) -> Result<Option<(Position, sled::IVec)>, PackedError> {
    for entry in db.scan_prefix([prefix]).rev() {
        let (key, value) = entry?;
        let Some(first) = group_of(prefix, &key) else {
            continue;
        };
        if let Some(record) = unpack(first, &value).pop() {
            return record.map(Some);
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const PREFIX: u8 = b'a';

    fn at(height: u64, index: u32) -> Position {
        Position { height, index }
    }

    fn tree() -> (tempfile::TempDir, sled::Db) {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::Config::new().path(dir.path()).open().unwrap();
        (dir, db)
    }

    fn write(db: &sled::Db, records: &[(u8, Position, Vec<u8>)]) {
        let mut pending = Pending::default();
        for (prefix, at, record) in records {
            pending.add(*prefix, *at, record.clone());
        }
        let mut batch = sled::Batch::default();
        for (key, value) in pending.into_writes() {
            batch.insert(&key[..], value);
        }
        db.apply_batch(batch).unwrap();
    }

    fn record(at: Position) -> Vec<u8> {
        format!("record {}:{}", at.height, at.index).into_bytes()
    }

    /// Goal: one key holds up to 16 positions, and each reads back alone.
    #[test]
    fn a_block_of_records_takes_one_key_per_sixteen_and_each_reads_back() {
        let (_dir, db) = tree();
        let written: Vec<_> = (0..40)
            .map(|i| (PREFIX, at(3, i), record(at(3, i))))
            .collect();
        write(&db, &written);
        assert_eq!(db.len(), 3, "40 positions in groups of 16");
        for (_, at, bytes) in &written {
            assert_eq!(get(&db, PREFIX, *at).unwrap().as_deref(), Some(&bytes[..]));
        }
        assert_eq!(get(&db, PREFIX, at(3, 40)).unwrap(), None, "past the block");
        assert_eq!(get(&db, PREFIX, at(4, 0)).unwrap(), None, "another block");
        assert_eq!(get(&db, b'y', at(3, 0)).unwrap(), None, "another keyspace");
    }

    /// Goal: a position without a record (a repeated event has no `y`
    /// record) reads as none, and the scan skips it.
    #[test]
    fn gaps_read_as_none_and_are_skipped() {
        let (_dir, db) = tree();
        let written: Vec<_> = [0u32, 2, 15, 16, 31]
            .into_iter()
            .map(|i| (PREFIX, at(1, i), record(at(1, i))))
            .collect();
        write(&db, &written);
        assert_eq!(get(&db, PREFIX, at(1, 1)).unwrap(), None);
        let scanned: Vec<_> = scan(&db, PREFIX, None).map(|r| r.unwrap().0).collect();
        assert_eq!(
            scanned,
            vec![at(1, 0), at(1, 2), at(1, 15), at(1, 16), at(1, 31)]
        );
    }

    /// Goal: the scan is in chain order from any cursor, across groups and
    /// blocks, and stops at its keyspace; `last` is the newest record.
    #[test]
    fn the_scan_reads_in_chain_order_strictly_after_a_cursor() {
        let (_dir, db) = tree();
        let mut all = Vec::new();
        for height in 1..4u64 {
            for index in 0..(height as u32 * 13) {
                all.push(at(height, index));
            }
        }
        let mut written: Vec<_> = all.iter().map(|&p| (PREFIX, p, record(p))).collect();
        written.push((b'b', at(9, 0), b"another keyspace".to_vec()));
        written.push((b'Z', at(0, 0), b"one before".to_vec()));
        write(&db, &written);
        for (i, &cursor) in all.iter().enumerate() {
            let after: Vec<_> = scan(&db, PREFIX, Some(cursor))
                .map(|r| r.unwrap())
                .collect();
            let positions: Vec<_> = after.iter().map(|(p, _)| *p).collect();
            assert_eq!(positions, all[i + 1..].to_vec(), "after {cursor:?}");
            for (p, bytes) in after {
                assert_eq!(&bytes[..], &record(p)[..]);
            }
        }
        let whole: Vec<_> = scan(&db, PREFIX, None).map(|r| r.unwrap().0).collect();
        assert_eq!(whole, all);
        let (newest, bytes) = last(&db, PREFIX).unwrap().unwrap();
        assert_eq!((newest, &bytes[..]), (at(3, 38), &record(at(3, 38))[..]));
        assert_eq!(last(&db, b'q').unwrap(), None);
    }

    /// Goal: writing a block again writes the same values.
    #[test]
    fn writing_a_block_again_changes_nothing() {
        let (_dir, db) = tree();
        let written: Vec<_> = (0..20)
            .map(|i| (PREFIX, at(2, i), record(at(2, i))))
            .collect();
        write(&db, &written);
        let first: Vec<_> = db.iter().map(|e| e.unwrap()).collect();
        write(&db, &written);
        let again: Vec<_> = db.iter().map(|e| e.unwrap()).collect();
        assert_eq!(first, again);
    }

    proptest! {
        /// Any set of records reads back by position and by scan; any
        /// damaged value is an error or a miss, never a panic.
        #[test]
        fn records_read_back_and_damage_never_panics(
            records in proptest::collection::btree_map(
                (0u64..3, 0u32..40),
                proptest::collection::vec(any::<u8>(), 0..40),
                0..60,
            ),
            damage in proptest::collection::vec((any::<u16>(), any::<u8>()), 0..4),
            cut in any::<u16>(),
        ) {
            let (_dir, db) = tree();
            let written: Vec<_> = records
                .iter()
                .map(|(&(h, i), r)| (PREFIX, at(h, i), r.clone()))
                .collect();
            write(&db, &written);
            for ((h, i), bytes) in &records {
                let found = get(&db, PREFIX, at(*h, *i)).unwrap();
                prop_assert_eq!(found.as_deref(), Some(&bytes[..]));
            }
            let scanned: Vec<_> = scan(&db, PREFIX, None).map(|r| r.unwrap()).collect();
            let expected: Vec<_> = records.iter().map(|(&(h, i), r)| (at(h, i), r.clone())).collect();
            let scanned: Vec<_> = scanned.into_iter().map(|(p, v)| (p, v.to_vec())).collect();
            prop_assert_eq!(scanned, expected);
            // Damage every group: flip bytes, cut the tail.
            for entry in db.iter() {
                let (key, value) = entry.unwrap();
                let mut value = value.to_vec();
                for (offset, byte) in &damage {
                    if !value.is_empty() {
                        let n = value.len();
                        value[usize::from(*offset) % n] ^= byte;
                    }
                }
                value.truncate(usize::from(cut) % (value.len() + 1));
                db.insert(key, value).unwrap();
            }
            for (h, i) in records.keys() {
                let _ = get(&db, PREFIX, at(*h, *i));
            }
            for record in scan(&db, PREFIX, None) {
                let _ = record;
            }
            let _ = last(&db, PREFIX);
        }
    }
}
