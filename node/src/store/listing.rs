//! Listings: the chain positions of the events that name one key (a
//! canonical identifier `i`, an org `o`, a bizStep `s`, an event type `t`),
//! packed one sled key per *bucket* and block. A name is its bucket
//! followed by its tail (at most [`TAIL`] bytes, see [`split`]); the key
//! holds the bucket, the value one run per tail:
//! ```text
//! prefix | bucket | 0 | height
//!     -> ( tail length (u8) | tail | count (u32 BE) | count × index (u32 BE) )*
//!        tails ascending, each once; a run's indexes ascending, each once
//! ```
//! (The eventID `v` and repeated-capture `w` listings, looked up only by
//! whole names, are one run per block instead: `store::hashed`.)
//!
//! Why packed by block: sled pays per key (a tree descent, a leaf copy and
//! its log record; about 4.8 µs each in the commit path,
//! docs/performance.md). A block names a site's GLN, its org, its bizStep
//! and its event type hundreds of times; packed, each costs one key per
//! block.
//!
//! Why by bucket: serial numbers and SSCCs are issued in sequence and a
//! lot's units move together (serialised, packed, shipped in the same
//! events), so one key per serial and block made the identifier listing
//! 6.88 of sled's 8.51 keys per event, at random places in the tree. sled
//! 0.34 keeps about 240 bytes of metadata in memory for every page of its
//! tree, resident or not, and splits a leaf past 16 keys: those keys were
//! nearly all the memory that grows with the store, and a third of the
//! load's CPU (docs/performance.md, "Where a large store's memory goes").
//! With the last 3 bytes of a name's last segment in the value, up to a
//! thousand consecutive serials of a block share one key. Names issued at
//! random share little and cost what they did before, plus a run header.
//!
//! Every listing still reads in chain order: keys sort by bucket, then
//! height, and a run's indexes ascend. A position is a cursor valid for
//! all of them (the EPCIS query's `nextPageToken`). A block's entries are
//! written whole, in the block's atomic batch, so applying a block again
//! writes the same values.

use std::collections::{BTreeMap, HashMap};

use lotline_core::codec::DecodeError;

use super::grouped::PackedError;
use super::index::{self, Position};

/// Bytes at the end of a name kept in the value, beside the tails of the
/// other names of its bucket, rather than in the key. Three decimal digits:
/// a thousand consecutive serials share a key, and a read by one name
/// reads at most a thousand names' runs of a block (about 12 KB).
const TAIL: usize = 3;

/// Bytes of one index in a value.
const INDEX_BYTES: usize = 4;

/// Bytes that end a name's segment: a tail never holds one, so a stem
/// ending in one (a product's Digital Link and `/`) scans its own names
/// only, not its neighbours'.
const SEPARATORS: [u8; 3] = [b'/', b':', b'.'];

/// A name split into its bucket and its tail: the tail is the last
/// [`TAIL`] bytes of the name's last segment, fewer if the segment is
/// shorter. For a name `n` that starts with `s`, the bucket of `s` is a
/// prefix of the bucket of `n` (both keep at least the stem up to its last
/// separator and all but `TAIL` of its bytes), which is what [`under`]
/// relies on.
fn split(name: &[u8]) -> (&[u8], &[u8]) {
    let tail = name
        .iter()
        .rev()
        .take(TAIL)
        .take_while(|b| !SEPARATORS.contains(b))
        .count();
    name.split_at(name.len() - tail)
}

/// `prefix | bucket | 0`: the start of every block key of a bucket.
fn bucket_prefix(prefix: u8, bucket: &[u8]) -> Vec<u8> {
    index::listing_prefix(prefix, bucket)
}

/// `prefix | bucket | 0 | height`: where one block's entries of the names
/// of a bucket go, written over `key` (whose allocation is reused).
fn block_key_into(key: &mut Vec<u8>, prefix: u8, bucket: &[u8], height: u64) {
    index::listing_prefix_into(key, prefix, bucket);
    key.extend_from_slice(&height.to_be_bytes());
}

/// The first key past every block key of `bucket` (a [`bucket_prefix`],
/// which ends in 0): a bounded range stops at the bucket's last key
/// instead of reading the leaf that follows it.
fn end_of(bucket: &[u8]) -> Vec<u8> {
    let mut end = bucket.to_vec();
    if let Some(separator) = end.last_mut() {
        *separator = 1;
    }
    end
}

/// The height a block key of the bucket `bucket` (its [`bucket_prefix`])
/// ends with; `None` for a key of another bucket that merely starts with
/// this one (it has more bytes before its height).
fn height_of(bucket: &[u8], key: &[u8]) -> Option<u64> {
    if key.len() != bucket.len() + 8 || !key.starts_with(bucket) {
        return None;
    }
    Some(u64::from_be_bytes(key[bucket.len()..].try_into().ok()?))
}

/// The bucket and height of any block key of keyspace `prefix`.
fn parse_key(prefix: u8, key: &[u8]) -> Option<(&[u8], u64)> {
    let (rest, height) = key.strip_prefix(&[prefix])?.split_last_chunk::<8>()?;
    let (&separator, bucket) = rest.split_last()?;
    (separator == 0).then(|| (bucket, u64::from_be_bytes(*height)))
}

/// Whether `bucket ++ tail` starts with `stem`, without joining them.
fn joined_starts_with(bucket: &[u8], tail: &[u8], stem: &[u8]) -> bool {
    match stem.split_at_checked(bucket.len()) {
        Some((head, rest)) => head == bucket && tail.starts_with(rest),
        None => bucket.starts_with(stem),
    }
}

/// Why a block value does not decode.
fn malformed(reason: String) -> DecodeError {
    DecodeError::Malformed {
        what: "listing block",
        reason,
    }
}

/// One name's entries in a block value.
#[derive(Debug, Clone, Copy)]
struct Run<'a> {
    tail: &'a [u8],
    /// `count` indexes, 4 bytes each.
    indexes: &'a [u8],
}

impl Run<'_> {
    fn indexes(&self) -> impl Iterator<Item = u32> + '_ {
        self.indexes
            .chunks_exact(INDEX_BYTES)
            .filter_map(|b| b.try_into().ok().map(u32::from_be_bytes))
    }
}

/// The runs of a block value, in tail order; a damaged value ends with an
/// error.
struct Runs<'a> {
    rest: &'a [u8],
}

impl<'a> Runs<'a> {
    fn of(value: &'a [u8]) -> Self {
        Runs { rest: value }
    }

    /// The run of `tail`, if the value has one.
    fn find(self, tail: &[u8]) -> Result<Option<Run<'a>>, DecodeError> {
        for run in self {
            let run = run?;
            match run.tail.cmp(tail) {
                std::cmp::Ordering::Less => continue,
                std::cmp::Ordering::Equal => return Ok(Some(run)),
                std::cmp::Ordering::Greater => break,
            }
        }
        Ok(None)
    }
}

/// The first run of `bytes` and what follows it.
fn parse_run(bytes: &[u8]) -> Result<(Run<'_>, &[u8]), DecodeError> {
    let (&length, rest) = bytes
        .split_first()
        .ok_or_else(|| malformed("empty run".into()))?;
    let length = usize::from(length);
    let (tail, rest) = rest
        .split_at_checked(length)
        .ok_or_else(|| malformed(format!("tail of {length} bytes cut short")))?;
    let (count, rest) = rest
        .split_first_chunk::<4>()
        .ok_or_else(|| malformed("count cut short".into()))?;
    let count = u32::from_be_bytes(*count);
    let (indexes, rest) = usize::try_from(count)
        .ok()
        .and_then(|count| count.checked_mul(INDEX_BYTES))
        .and_then(|bytes| rest.split_at_checked(bytes))
        .ok_or_else(|| malformed(format!("{count} indexes cut short")))?;
    Ok((Run { tail, indexes }, rest))
}

impl<'a> Iterator for Runs<'a> {
    type Item = Result<Run<'a>, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        match parse_run(self.rest) {
            Ok((run, rest)) => {
                self.rest = rest;
                Some(Ok(run))
            }
            Err(e) => {
                self.rest = &[];
                Some(Err(e))
            }
        }
    }
}

/// One batch's listing entries, gathered by block key and tail until the
/// batch is written ([`Pending::into_writes`]).
#[derive(Default)]
pub(crate) struct Pending {
    entries: HashMap<Vec<u8>, BTreeMap<Vec<u8>, Vec<u32>>>,
    /// The block key being looked up, reused: most names of a block share
    /// their bucket with a name listed before, and are listed without an
    /// allocation.
    key: Vec<u8>,
}

impl Pending {
    /// Lists the event at `at` under `name` in the listing `prefix`.
    pub(crate) fn add(&mut self, prefix: u8, name: &str, at: Position) {
        let (bucket, tail) = split(name.as_bytes());
        block_key_into(&mut self.key, prefix, bucket, at.height);
        if !self.entries.contains_key(self.key.as_slice()) {
            self.entries.insert(self.key.clone(), BTreeMap::new());
        }
        let Some(runs) = self.entries.get_mut(self.key.as_slice()) else {
            return;
        };
        match runs.get_mut(tail) {
            Some(indexes) => indexes.push(at.index),
            None => {
                runs.insert(tail.to_vec(), vec![at.index]);
            }
        }
    }

    /// The keys and values to write: tails ascending, each run's indexes
    /// ascending, each once.
    pub(crate) fn into_writes(self) -> impl Iterator<Item = (Vec<u8>, Vec<u8>)> {
        self.entries.into_iter().map(|(key, runs)| {
            let mut value = Vec::new();
            for (tail, mut at) in runs {
                at.sort_unstable();
                at.dedup();
                // A tail has at most TAIL bytes and a block fewer than
                // 2^32 events.
                value.push(tail.len() as u8);
                value.extend_from_slice(&tail);
                value.extend_from_slice(&(at.len() as u32).to_be_bytes());
                value.extend(at.iter().flat_map(|i| i.to_be_bytes()));
            }
            (key, value)
        })
    }
}

/// The positions of one listing, in chain order, strictly after a position.
pub struct Positions {
    iter: sled::Iter,
    bucket: Vec<u8>,
    tail: Vec<u8>,
    after: Option<Position>,
    /// The block key being read: its height and the indexes left in it.
    block: Option<(u64, std::vec::IntoIter<u32>)>,
}

impl std::fmt::Debug for Positions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Positions")
            .field("bucket", &self.bucket)
            .field("tail", &self.tail)
            .field("after", &self.after)
            .finish()
    }
}

/// Walks the listing `prefix | name` of `db` in chain order, strictly after
/// `after`.
pub fn positions(db: &sled::Tree, prefix: u8, name: &str, after: Option<Position>) -> Positions {
    let (bucket, tail) = split(name.as_bytes());
    let bucket = bucket_prefix(prefix, bucket);
    let mut start = bucket.clone();
    if let Some(at) = after {
        // The block holding `after` is read from its first index on; the
        // ones up to `after` are skipped.
        start.extend_from_slice(&at.height.to_be_bytes());
    }
    Positions {
        iter: db.range(start..end_of(&bucket)),
        bucket,
        tail: tail.to_vec(),
        after,
        block: None,
    }
}

impl Iterator for Positions {
    type Item = Result<Position, PackedError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some((height, indexes)) = &mut self.block {
                for index in indexes.by_ref() {
                    let at = Position {
                        height: *height,
                        index,
                    };
                    if self.after.is_none_or(|after| at > after) {
                        return Some(Ok(at));
                    }
                }
                self.block = None;
            }
            let (key, value) = match self.iter.next()? {
                Ok(entry) => entry,
                Err(e) => return Some(Err(e.into())),
            };
            let Some(height) = height_of(&self.bucket, &key) else {
                continue;
            };
            match Runs::of(&value).find(&self.tail) {
                Ok(Some(run)) => {
                    let at: Vec<u32> = run.indexes().collect();
                    self.block = Some((height, at.into_iter()));
                }
                Ok(None) => {}
                Err(e) => return Some(Err(e.into())),
            }
        }
    }
}

/// The newest position of the listing `prefix | name`.
pub fn last(db: &sled::Tree, prefix: u8, name: &str) -> Result<Option<Position>, PackedError> {
    let (bucket, tail) = split(name.as_bytes());
    let bucket = bucket_prefix(prefix, bucket);
    for entry in db.range(bucket.clone()..end_of(&bucket)).rev() {
        let (key, value) = entry?;
        let Some(height) = height_of(&bucket, &key) else {
            continue;
        };
        if let Some(index) = Runs::of(&value)
            .find(tail)?
            .and_then(|run| run.indexes().last())
        {
            return Ok(Some(Position { height, index }));
        }
    }
    Ok(None)
}

/// The positions of every listing of `prefix` whose name starts with
/// `stem`, in key order (bucket, chain position, tail), or `None` past
/// `max` of them. One range scan: the keys are sorted by bucket, and every
/// bucket of a name under `stem` starts with the stem's own bucket
/// ([`split`]).
pub fn under(
    db: &sled::Tree,
    prefix: u8,
    stem: &str,
    max: usize,
) -> Result<Option<Vec<Position>>, PackedError> {
    let stem = stem.as_bytes();
    let mut scan = vec![prefix];
    scan.extend_from_slice(split(stem).0);
    let mut found = Vec::new();
    for entry in db.scan_prefix(&scan) {
        let (key, value) = entry?;
        let Some((bucket, height)) = parse_key(prefix, &key) else {
            continue;
        };
        for run in Runs::of(&value) {
            let run = run?;
            if !joined_starts_with(bucket, run.tail, stem) {
                continue;
            }
            for index in run.indexes() {
                if found.len() >= max {
                    return Ok(None);
                }
                found.push(Position { height, index });
            }
        }
    }
    Ok(Some(found))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use proptest::prelude::*;

    use super::*;

    /// The block key of `bucket` at `height`.
    fn block_key(prefix: u8, bucket: &[u8], height: u64) -> Vec<u8> {
        let mut key = Vec::new();
        block_key_into(&mut key, prefix, bucket, height);
        key
    }

    const PREFIX: u8 = b'i';

    /// Names that start with one another, that share buckets, that end in
    /// or hold a separator or a 0 byte, and that are shorter than a tail,
    /// so the checks that keep listings apart are exercised.
    const NAMES: [&str; 14] = [
        "a",
        "ab",
        "a\u{0}",
        "b",
        "a\u{0}b",
        "abcd",
        "abce",
        "abc",
        "https://id.gs1.org/01/1",
        "https://id.gs1.org/01/1/21/100",
        "https://id.gs1.org/01/1/21/101",
        "https://id.gs1.org/01/1/21/1101",
        "https://id.gs1.org/01/1/21/",
        "urn:x.9",
    ];

    /// Stems for [`under`]: whole names, bucket boundaries, separators.
    const STEMS: [&str; 11] = [
        "",
        "a",
        "a\u{0}",
        "ab",
        "abc",
        "b",
        "https://",
        "https://id.gs1.org/01/1/",
        "https://id.gs1.org/01/1/21/1",
        "https://id.gs1.org/01/1/21/10",
        "urn:x.",
    ];

    /// The layout this module replaced, one key per (name, event), read as
    /// the readers read it: the reference the packed listing must match.
    struct OneKeyPerEvent(sled::Tree);

    impl OneKeyPerEvent {
        fn positions(&self, name: &str, after: Option<Position>) -> Vec<Position> {
            let listing = index::listing_prefix(PREFIX, name);
            let mut start = listing.clone();
            if let Some(at) = after {
                start.extend_from_slice(&at.height.to_be_bytes());
                start.extend_from_slice(&at.index.to_be_bytes());
                start.push(0);
            }
            let mut out = Vec::new();
            for entry in self.0.range(start..) {
                let (key, _) = entry.unwrap();
                if !key.starts_with(&listing) {
                    break;
                }
                if key.len() != listing.len() + 12 {
                    continue;
                }
                let (height, index) = index::listing_position(&key).unwrap();
                out.push(Position { height, index });
            }
            out
        }

        /// Every (name, position) whose name starts with `stem`, sorted.
        fn under(&self, stem: &str) -> Vec<(Vec<u8>, Position)> {
            let mut out = Vec::new();
            for entry in self.0.iter() {
                let (key, _) = entry.unwrap();
                let name = key[1..key.len() - 13].to_vec();
                if name.starts_with(stem.as_bytes()) {
                    let (height, index) = index::listing_position(&key).unwrap();
                    out.push((name, Position { height, index }));
                }
            }
            out.sort();
            out
        }
    }

    /// Blocks of events, each naming some of [`NAMES`] (maybe one twice).
    fn blocks() -> impl Strategy<Value = Vec<Vec<Vec<usize>>>> {
        let event = prop::collection::vec(0..NAMES.len(), 0..4);
        let block = prop::collection::vec(event, 1..12);
        prop::collection::vec(block, 1..6)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// Goal: packing a block's entries into one key per bucket changes
        /// no answer. Method: the same random blocks written both ways
        /// into real sled trees (packed through [`Pending`], the blocks
        /// split over batches as the indexer may), then every listing read
        /// from the start and strictly after every position, newest entry,
        /// and every name stem, compared with the one-key-per-event layout.
        #[test]
        fn packed_listings_read_as_one_key_per_event(blocks in blocks(), split in 1usize..4) {
            let dir = tempfile::tempdir().unwrap();
            let db = sled::Config::new().path(dir.path()).open().unwrap();
            let packed = db.open_tree("packed").unwrap();
            let reference = OneKeyPerEvent(db.open_tree("reference").unwrap());
            let mut every = BTreeSet::new();
            let mut height = 0;
            for batch_blocks in blocks.chunks(split) {
                let mut pending = Pending::default();
                let mut batch = sled::Batch::default();
                for events in batch_blocks {
                    height += 1;
                    for (index, names) in events.iter().enumerate() {
                        let at = Position { height, index: index as u32 };
                        for &n in names {
                            pending.add(PREFIX, NAMES[n], at);
                            reference.0.insert(
                                index::listing_key(PREFIX, NAMES[n], at.height, at.index),
                                index::EMPTY,
                            ).unwrap();
                        }
                    }
                }
                for (key, value) in pending.into_writes() {
                    batch.insert(key, value);
                }
                packed.apply_batch(batch).unwrap();
                // Positions of every block of this batch, for the cursors below.
                for (key, _) in reference.0.iter().map(Result::unwrap) {
                    let (height, index) = index::listing_position(&key).unwrap();
                    every.insert(Position { height, index });
                }
            }
            let afters = std::iter::once(None)
                .chain(every.iter().copied().map(Some))
                .chain(std::iter::once(Some(Position { height: 0, index: u32::MAX })));
            for after in afters {
                for name in NAMES {
                    let read: Vec<Position> = positions(&packed, PREFIX, name, after)
                        .map(Result::unwrap)
                        .collect();
                    prop_assert_eq!(&read, &reference.positions(name, after), "{:?} after {:?}", name, after);
                }
            }
            for name in NAMES {
                prop_assert_eq!(
                    last(&packed, PREFIX, name).unwrap(),
                    reference.positions(name, None).last().copied()
                );
            }
            for stem in STEMS {
                let mut all: Vec<Position> = reference.under(stem).into_iter().map(|(_, at)| at).collect();
                let mut read = under(&packed, PREFIX, stem, usize::MAX).unwrap().unwrap();
                all.sort();
                read.sort();
                prop_assert_eq!(&read, &all, "under {:?}", stem);
                if !all.is_empty() {
                    prop_assert_eq!(under(&packed, PREFIX, stem, all.len() - 1).unwrap(), None);
                }
            }
        }

        /// Goal: a damaged block value is an error, never a panic, and
        /// never read as another name's entries. Method: random bytes
        /// written as the value of a bucket's block key, then read by
        /// every name of the bucket, by newest entry and by stem.
        #[test]
        fn damaged_values_are_errors_not_panics(value in prop::collection::vec(any::<u8>(), 0..64)) {
            let dir = tempfile::tempdir().unwrap();
            let db = sled::Config::new().path(dir.path()).open().unwrap();
            let tree = db.open_tree("packed").unwrap();
            let (bucket, _) = super::split(b"https://id.gs1.org/01/1/21/100");
            tree.insert(block_key(PREFIX, bucket, 1), value).unwrap();
            for name in ["https://id.gs1.org/01/1/21/100", "https://id.gs1.org/01/1/21/1"] {
                for at in positions(&tree, PREFIX, name, None).flatten() {
                    prop_assert_eq!(at.height, 1);
                }
                let _ = last(&tree, PREFIX, name);
            }
            let _ = under(&tree, PREFIX, "https://", usize::MAX);
        }
    }

    #[test]
    fn a_name_splits_at_most_three_bytes_of_its_last_segment() {
        let split = |name: &'static str| {
            let (bucket, tail) = super::split(name.as_bytes());
            (
                std::str::from_utf8(bucket).unwrap(),
                std::str::from_utf8(tail).unwrap(),
            )
        };
        assert_eq!(
            split("https://id.gs1.org/01/09506000134352/21/100000123"),
            ("https://id.gs1.org/01/09506000134352/21/100000", "123")
        );
        assert_eq!(
            split("https://id.gs1.org/01/1/21/7"),
            ("https://id.gs1.org/01/1/21/", "7")
        );
        assert_eq!(
            split("https://id.gs1.org/01/1/"),
            ("https://id.gs1.org/01/1/", "")
        );
        assert_eq!(split("ab"), ("", "ab"));
        assert_eq!(
            split("urn:epc:id:sgtin:0614141.107346.2017"),
            ("urn:epc:id:sgtin:0614141.107346.2", "017")
        );
    }

    #[test]
    fn consecutive_serials_of_a_block_share_one_key() {
        let mut pending = Pending::default();
        for serial in 100_000_000..100_001_000u32 {
            let at = Position {
                height: 7,
                index: serial % 17,
            };
            pending.add(PREFIX, &format!("https://id.gs1.org/01/1/21/{serial}"), at);
        }
        let writes: Vec<_> = pending.into_writes().collect();
        assert_eq!(writes.len(), 1);
        let (key, value) = &writes[0];
        assert_eq!(
            key,
            &block_key(PREFIX, b"https://id.gs1.org/01/1/21/100000", 7)
        );
        assert_eq!(Runs::of(value).count(), 1000);
    }

    #[test]
    fn a_longer_bucket_is_another_listing() {
        let bucket = bucket_prefix(PREFIX, b"shipping");
        let other = block_key(PREFIX, b"shipping_extra", 1);
        assert!(!other.starts_with(&bucket));
        let zero = block_key(PREFIX, b"shipping\x0012345678", 1);
        assert_eq!(height_of(&bucket, &zero), None);
        assert_eq!(
            height_of(&bucket, &block_key(PREFIX, b"shipping", 7)),
            Some(7)
        );
        assert_eq!(
            parse_key(PREFIX, &zero),
            Some((&b"shipping\x0012345678"[..], 1))
        );
    }
}
