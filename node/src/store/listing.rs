//! Listings: the chain positions of the events that name one key (a
//! canonical identifier `i`, an org `o`, a bizStep `s`, an event type `t`),
//! packed one sled key per listing and block:
//! ```text
//! prefix | name | 0 | height -> index (u32 BE) index (u32 BE) ...   ascending, each once
//! ```
//! (The eventID `v` and repeated-capture `w` listings, looked up only by
//! whole names, are one run per block instead: `store::hashed`.)
//! Why packed: sled pays per key (a tree descent, a leaf copy and its log
//! record; about 4.8 µs each in the commit path, docs/performance.md), and
//! one key per (name, event) made the listings 16 of sled's 27 keys per
//! event. A block names a site's GLN, its org, its bizStep and its event
//! type hundreds of times, and a lot's serials once when they are
//! serialised and again when they are packed; packed, each costs one key
//! per block.
//!
//! Every listing still reads in chain order: keys sort by name, then height,
//! and a value's indexes ascend. A position is a cursor valid for all of
//! them (the EPCIS query's `nextPageToken`). A block's entries are written
//! whole, in the block's atomic batch, so applying a block again writes the
//! same values.

use std::collections::HashMap;

use super::index::{self, Position};

/// Bytes of one index in a value.
const INDEX_BYTES: usize = 4;

/// `prefix | name | 0 | height`: where one block's entries of a listing go.
pub fn block_key(prefix: u8, name: &str, height: u64) -> Vec<u8> {
    let mut key = index::listing_prefix(prefix, name);
    key.extend_from_slice(&height.to_be_bytes());
    key
}

/// The first key past every block key of `listing` (which ends in the 0
/// after its name): a bounded range stops at the listing's last key
/// instead of reading the leaf that follows it.
fn end_of(listing: &[u8]) -> Vec<u8> {
    let mut end = listing.to_vec();
    if let Some(separator) = end.last_mut() {
        *separator = 1;
    }
    end
}

/// The height a block key of the listing `listing` (its
/// [`index::listing_prefix`]) ends with; `None` for a key of another
/// listing whose name merely starts with this one (it has more bytes
/// before its height).
fn height_of(listing: &[u8], key: &[u8]) -> Option<u64> {
    if key.len() != listing.len() + 8 || !key.starts_with(listing) {
        return None;
    }
    Some(u64::from_be_bytes(key[listing.len()..].try_into().ok()?))
}

/// The indexes a value holds, ascending (a trailing partial index, which
/// the writer never makes, is ignored).
fn indexes(value: &[u8]) -> impl Iterator<Item = u32> + '_ {
    value
        .chunks_exact(INDEX_BYTES)
        .filter_map(|b| b.try_into().ok().map(u32::from_be_bytes))
}

/// One batch's listing entries, gathered by block key until the batch is
/// written ([`Pending::into_writes`]).
#[derive(Default)]
pub(crate) struct Pending {
    entries: HashMap<Vec<u8>, Vec<u32>>,
}

impl Pending {
    /// Lists the event at `at` under `name` in the listing `prefix`.
    pub(crate) fn add(&mut self, prefix: u8, name: &str, at: Position) {
        self.entries
            .entry(block_key(prefix, name, at.height))
            .or_default()
            .push(at.index);
    }

    /// The keys and values to write: indexes ascending, each once.
    pub(crate) fn into_writes(self) -> impl Iterator<Item = (Vec<u8>, Vec<u8>)> {
        self.entries.into_iter().map(|(key, mut at)| {
            at.sort_unstable();
            at.dedup();
            let value = at.iter().flat_map(|i| i.to_be_bytes()).collect();
            (key, value)
        })
    }
}

/// The positions of one listing, in chain order, strictly after a position.
pub struct Positions {
    iter: sled::Iter,
    listing: Vec<u8>,
    after: Option<Position>,
    /// The block key being read: its height and the indexes left in it.
    block: Option<(u64, std::vec::IntoIter<u32>)>,
}

impl std::fmt::Debug for Positions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Positions")
            .field("listing", &self.listing)
            .field("after", &self.after)
            .finish()
    }
}

/// Walks the listing `prefix | name` of `db` in chain order, strictly after
/// `after`.
pub fn positions(db: &sled::Tree, prefix: u8, name: &str, after: Option<Position>) -> Positions {
    let listing = index::listing_prefix(prefix, name);
    let mut start = listing.clone();
    if let Some(at) = after {
        // The block holding `after` is read from its first index on; the
        // ones up to `after` are skipped.
        start.extend_from_slice(&at.height.to_be_bytes());
    }
    Positions {
        iter: db.range(start..end_of(&listing)),
        listing,
        after,
        block: None,
    }
}

impl Iterator for Positions {
    type Item = Result<Position, sled::Error>;

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
                Err(e) => return Some(Err(e)),
            };
            if !key.starts_with(&self.listing) {
                return None;
            }
            let Some(height) = height_of(&self.listing, &key) else {
                continue;
            };
            let at: Vec<u32> = indexes(&value).collect();
            self.block = Some((height, at.into_iter()));
        }
    }
}

/// The newest position of the listing `prefix | name`.
pub fn last(db: &sled::Tree, prefix: u8, name: &str) -> Result<Option<Position>, sled::Error> {
    let listing = index::listing_prefix(prefix, name);
    for entry in db.scan_prefix(&listing).rev() {
        let (key, value) = entry?;
        let Some(height) = height_of(&listing, &key) else {
            continue;
        };
        if let Some(index) = indexes(&value).last() {
            return Ok(Some(Position { height, index }));
        }
    }
    Ok(None)
}

/// The positions of every listing of `prefix` whose name starts with
/// `stem`, in key order (name, then chain position), or `None` past `max`
/// of them. One range scan: the keys are sorted by name.
pub fn under(
    db: &sled::Tree,
    prefix: u8,
    stem: &str,
    max: usize,
) -> Result<Option<Vec<Position>>, sled::Error> {
    let mut scan = vec![prefix];
    scan.extend_from_slice(stem.as_bytes());
    let mut out = Vec::new();
    for entry in db.scan_prefix(&scan) {
        let (key, value) = entry?;
        // `prefix | name | 0 | height`: the name ends at the 0 byte 9
        // bytes from the end.
        let n = key.len();
        if n < scan.len() + 9 || key[n - 9] != 0 {
            continue;
        }
        let Ok(height) = <[u8; 8]>::try_from(&key[n - 8..]) else {
            continue;
        };
        let height = u64::from_be_bytes(height);
        for index in indexes(&value) {
            if out.len() >= max {
                return Ok(None);
            }
            out.push(Position { height, index });
        }
    }
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use proptest::prelude::*;

    use super::*;

    const PREFIX: u8 = b'i';

    /// Names that start with one another and that hold a 0 byte, so the
    /// checks that keep listings apart are exercised.
    const NAMES: [&str; 6] = [
        "a",
        "ab",
        "a\u{0}",
        "b",
        "https://id.gs1.org/01/1",
        "a\u{0}b",
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

        fn under(&self, stem: &str) -> Vec<Position> {
            let mut scan = vec![PREFIX];
            scan.extend_from_slice(stem.as_bytes());
            let mut out = Vec::new();
            for entry in self.0.scan_prefix(&scan) {
                let (key, _) = entry.unwrap();
                if key.len() < scan.len() + 13 || key[key.len() - 13] != 0 {
                    continue;
                }
                let (height, index) = index::listing_position(&key).unwrap();
                out.push(Position { height, index });
            }
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

        /// Goal: packing a block's entries into one key per name changes
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
            for stem in ["", "a", "a\u{0}", "b", "https://"] {
                let all = reference.under(stem);
                prop_assert_eq!(under(&packed, PREFIX, stem, usize::MAX).unwrap(), Some(all.clone()));
                if !all.is_empty() {
                    prop_assert_eq!(under(&packed, PREFIX, stem, all.len() - 1).unwrap(), None);
                }
            }
        }
    }

    #[test]
    fn a_longer_name_is_another_listing() {
        let listing = index::listing_prefix(PREFIX, "shipping");
        let other = block_key(PREFIX, "shipping_extra", 1);
        assert!(!other.starts_with(&listing));
        let zero = block_key(PREFIX, "shipping\u{0}12345678", 1);
        assert_eq!(height_of(&listing, &zero), None);
        assert_eq!(
            height_of(&listing, &block_key(PREFIX, "shipping", 7)),
            Some(7)
        );
    }
}
