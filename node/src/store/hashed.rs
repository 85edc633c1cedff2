//! The listings looked up only by a whole name: the eventID listing `v` and
//! the repeated-capture listing `w` (`store::events`). Since index format
//! 21 they are kept as one sorted run per block and keyspace, found through
//! an in-memory filter, instead of a sled key per name and block:
//! ```text
//! v | height -> (digest of the name: 16 bytes, index: u32 BE) ...   sorted
//! w | height -> (same)
//! ```
//! where the digest is [`index::digest_name`].
//!
//! **Why.** A listing key per name and block puts each new eventID or event
//! hash at a random place in sled's tree, because these names are unlike
//! every earlier one (a UUID, a hash). Each such insert rewrites a leaf,
//! and the old copy stays on disk until sled cleans its segment: measured,
//! each of the two keyspaces cost about 700 bytes of sled's disk and a
//! tenth of the load rate per event (docs/performance.md, "Fewer random
//! keys"). A run per block is one key at the tree's right edge, where
//! every block appends; sled's disk then follows the logical bytes.
//!
//! **Finding a name.** An in-memory filter per keyspace maps the first 8
//! bytes of each digest to the heights of the blocks whose run holds it
//! (`committed_ids::CommittedIds`, 12 bytes per entry). A lookup reads the
//! run of each candidate block and binary-searches the whole digest; a
//! name nobody used, the common case of the repeated-capture check at
//! admission, reads no sled at all. Two names whose digests share 8 bytes
//! only cost a run read; sharing all 16 takes about 2^64 names chosen
//! together ([`index::digest_name`]).
//!
//! **Why the filter is never behind sled.** The runs in sled are the truth;
//! the filter only says which to read. A block's entries enter the filter
//! *before* its batch is applied ([`Filters::record`]), so a run sled holds
//! is always findable; an entry whose run is not there yet (or was cut
//! back) names a block without that digest and finds nothing. At open the
//! filter is rebuilt from the runs on a thread of its own
//! ([`Filters::load_in_background`]): one ordered scan of two keyspaces,
//! 20 bytes per event each, which lookups wait for and nothing else does.

use std::collections::BTreeMap;
use std::sync::{Arc, Condvar, Mutex, PoisonError};

use super::committed_ids::SharedIds;
use super::events::{PREFIX_DUPLICATE, PREFIX_EVENT_ID};
use super::index::{self, Position};

/// Bytes of one run entry: a 16-byte digest and a 4-byte index.
pub const ENTRY_BYTES: usize = 20;
const DIGEST_BYTES: usize = 16;

/// One entry of a run: a name's digest and the event's index in the block.
type Entry = ([u8; DIGEST_BYTES], u32);

/// Whether `prefix` is a hashed listing's keyspace.
pub fn is_hashed(prefix: u8) -> bool {
    matches!(prefix, PREFIX_EVENT_ID | PREFIX_DUPLICATE)
}

/// `prefix | height`: the key of one block's run.
pub fn run_key(prefix: u8, height: u64) -> [u8; 9] {
    let mut key = [0u8; 9];
    key[0] = prefix;
    key[1..].copy_from_slice(&height.to_be_bytes());
    key
}

/// The height a run key ends with; `None` for a key of another shape.
fn height_of(prefix: u8, key: &[u8]) -> Option<u64> {
    let (&first, height) = key.split_first()?;
    if first != prefix {
        return None;
    }
    Some(u64::from_be_bytes(height.try_into().ok()?))
}

/// The filter key of a digest: its first 8 bytes.
fn filter_prefix(digest: &[u8; DIGEST_BYTES]) -> u64 {
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first)
}

/// The entries of a run, in stored order (a trailing partial entry, which
/// the writer never makes, is ignored).
fn entries(run: &[u8]) -> impl Iterator<Item = Entry> + '_ {
    run.chunks_exact(ENTRY_BYTES).filter_map(entry)
}

/// One entry's digest and index, from its [`ENTRY_BYTES`].
fn entry(bytes: &[u8]) -> Option<Entry> {
    let digest = bytes.get(..DIGEST_BYTES)?.try_into().ok()?;
    let index = u32::from_be_bytes(bytes.get(DIGEST_BYTES..ENTRY_BYTES)?.try_into().ok()?);
    Some((digest, index))
}

/// The filter keys of a sorted run's entries, each once.
fn filter_prefixes(entries: impl Iterator<Item = Entry>) -> Vec<u64> {
    let mut prefixes: Vec<u64> = entries.map(|(d, _)| filter_prefix(&d)).collect();
    prefixes.dedup();
    prefixes
}

/// The indexes of `digest` in a sorted run, ascending: a binary search
/// over the run's bytes in place (a run is a whole block's entries; the
/// lookup allocates only its answer), then the entries equal to it.
fn indexes_of(run: &[u8], digest: &[u8; DIGEST_BYTES]) -> Vec<u32> {
    let (run, _partial) = run.as_chunks::<ENTRY_BYTES>();
    let start = run.partition_point(|entry| entry[..DIGEST_BYTES] < digest[..]);
    run[start..]
        .iter()
        .map_while(|bytes| entry(bytes).filter(|(d, _)| d == digest))
        .map(|(_, index)| index)
        .collect()
}

/// One batch's hashed-listing entries, gathered by keyspace and block
/// until the batch is written ([`Pending::into_runs`]).
#[derive(Default)]
pub(crate) struct Pending {
    runs: BTreeMap<(u8, u64), Vec<Entry>>,
}

/// One block's run, ready for the batch and the filter.
pub(crate) struct Run {
    pub prefix: u8,
    pub height: u64,
    pub key: [u8; 9],
    pub value: Vec<u8>,
    /// The filter prefixes of its digests, each once.
    pub filter_prefixes: Vec<u64>,
}

impl Pending {
    /// Lists the event at `at` under `name` in the hashed listing `prefix`.
    pub(crate) fn add(&mut self, prefix: u8, name: &str, at: Position) {
        self.runs
            .entry((prefix, at.height))
            .or_default()
            .push((index::digest_name(name), at.index));
    }

    /// The runs to write: entries sorted by digest, then index, each once.
    pub(crate) fn into_runs(self) -> impl Iterator<Item = Run> {
        self.runs
            .into_iter()
            .map(|((prefix, height), mut entries)| {
                entries.sort_unstable();
                entries.dedup();
                let filter_prefixes = filter_prefixes(entries.iter().copied());
                let value = entries
                    .iter()
                    .flat_map(|(digest, index)| digest.iter().copied().chain(index.to_be_bytes()))
                    .collect();
                Run {
                    prefix,
                    height,
                    key: run_key(prefix, height),
                    value,
                    filter_prefixes,
                }
            })
    }
}

/// The two keyspaces' filters, shared by every reader of one store.
#[derive(Debug, Clone, Default)]
pub struct Filters {
    event_ids: SharedIds,
    duplicates: SharedIds,
    loaded: Arc<Loaded>,
}

/// Whether the filters hold every run sled held when the store opened.
#[derive(Debug)]
struct Loaded {
    /// `None` while a load runs; then its outcome (an error as text: the
    /// one load's error is handed to every lookup that waited for it).
    state: Mutex<Option<Result<(), String>>>,
    done: Condvar,
}

impl Default for Loaded {
    /// Nothing to load: new filters of an empty or a tool's store.
    fn default() -> Self {
        Loaded {
            state: Mutex::new(Some(Ok(()))),
            done: Condvar::new(),
        }
    }
}

impl Loaded {
    fn set(&self, state: Option<Result<(), String>>) {
        *self.state.lock().unwrap_or_else(PoisonError::into_inner) = state;
        self.done.notify_all();
    }
}

impl Filters {
    fn of(&self, prefix: u8) -> Option<&SharedIds> {
        match prefix {
            PREFIX_EVENT_ID => Some(&self.event_ids),
            PREFIX_DUPLICATE => Some(&self.duplicates),
            _ => None,
        }
    }

    /// Notes a run about to be written (see the module doc: before its
    /// batch is applied). A height past the filter's range is left out of
    /// it: such a run would not be found, and 2^32 blocks is far beyond a
    /// chain's life (`committed_ids::HeightOutOfRange`).
    pub(crate) fn record(&self, run: &Run) {
        if let Some(filter) = self.of(run.prefix)
            && let Err(error) = filter.insert(run.height, run.filter_prefixes.iter().copied())
        {
            tracing::error!(%error, "hashed listing run left out of its filter");
        }
    }

    /// Fills both filters from the runs `db` holds, on a thread of its own,
    /// and makes lookups wait until it is done ([`Filters::wait_loaded`]).
    ///
    /// Why not at open: the runs are 40 bytes per event, 400 MB at 10M
    /// events, seconds of reading that a restarting node's API, its other
    /// reads and consensus need not wait for; only a lookup by eventID or
    /// a repeated-capture check does. Runs recorded while it loads go in
    /// too: an entry held twice costs 12 bytes and names its block once.
    pub fn load_in_background(&self, db: sled::Tree) {
        self.loaded.set(None);
        let filters = self.clone();
        let load = move || {
            let outcome =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| filters.load(&db)));
            let outcome = match outcome {
                Ok(Ok(())) => Ok(()),
                Ok(Err(error)) => Err(error.to_string()),
                Err(_) => Err("the load stopped".to_owned()),
            };
            if let Err(error) = &outcome {
                tracing::error!(%error, "eventID and repeated-capture filters did not load; their lookups fail");
            }
            filters.loaded.set(Some(outcome));
        };
        let spawned = std::thread::Builder::new()
            .name("lotline-hashed-filters".to_owned())
            .spawn(load.clone());
        if spawned.is_err() {
            load();
        }
    }

    /// Fills both filters from the runs `db` holds, now.
    pub fn load(&self, db: &sled::Tree) -> Result<(), sled::Error> {
        for prefix in [PREFIX_EVENT_ID, PREFIX_DUPLICATE] {
            let Some(filter) = self.of(prefix) else {
                continue;
            };
            for entry in db.scan_prefix([prefix]) {
                let (key, run) = entry?;
                let Some(height) = height_of(prefix, &key) else {
                    continue;
                };
                if let Err(error) = filter.insert(height, filter_prefixes(entries(&run))) {
                    tracing::error!(%error, "hashed listing run left out of its filter");
                }
            }
        }
        Ok(())
    }

    /// Waits for a load begun by [`Filters::load_in_background`]; its error,
    /// if it failed (a lookup then fails: the capture check counts the
    /// event as possibly repeated, `StoreReader::check_uncommitted`'s rule).
    pub fn wait_loaded(&self) -> Result<(), sled::Error> {
        let mut state = self
            .loaded
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        loop {
            match &*state {
                None => {
                    state = self
                        .loaded
                        .done
                        .wait(state)
                        .unwrap_or_else(PoisonError::into_inner)
                }
                Some(Ok(())) => return Ok(()),
                Some(Err(error)) => {
                    return Err(sled::Error::Io(std::io::Error::other(format!(
                        "eventID and repeated-capture filters: {error}"
                    ))));
                }
            }
        }
    }

    /// Entries held in the filters, both keyspaces (memory: 12 bytes each).
    pub fn len(&self) -> u64 {
        self.event_ids.len() + self.duplicates.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The positions listed under `name` in the hashed listing `prefix`, in
/// chain order, strictly after `after`.
pub fn positions(
    db: &sled::Tree,
    filters: &Filters,
    prefix: u8,
    name: &str,
    after: Option<Position>,
) -> Result<Vec<Position>, sled::Error> {
    let Some(filter) = filters.of(prefix) else {
        return Ok(Vec::new());
    };
    filters.wait_loaded()?;
    let digest = index::digest_name(name);
    let mut out = Vec::new();
    for height in filter.candidates_of(filter_prefix(&digest)) {
        if after.is_some_and(|after| height < after.height) {
            continue;
        }
        let Some(run) = db.get(run_key(prefix, height))? else {
            continue;
        };
        out.extend(
            indexes_of(&run, &digest)
                .into_iter()
                .map(|index| Position { height, index })
                .filter(|at| after.is_none_or(|after| *at > after)),
        );
    }
    Ok(out)
}

/// The oldest position listed under `name`: the first candidate block
/// holding it. It reads runs only until it finds one, so a name listed in
/// many blocks (an event captured again and again) costs one run read, not
/// one per block as [`positions`] would.
pub fn first(
    db: &sled::Tree,
    filters: &Filters,
    prefix: u8,
    name: &str,
) -> Result<Option<Position>, sled::Error> {
    end(db, filters, prefix, name, End::Oldest)
}

/// The newest position listed under `name`: the last candidate block
/// holding it.
pub fn last(
    db: &sled::Tree,
    filters: &Filters,
    prefix: u8,
    name: &str,
) -> Result<Option<Position>, sled::Error> {
    end(db, filters, prefix, name, End::Newest)
}

/// Which end of a listing [`end`] finds.
#[derive(Clone, Copy, PartialEq, Eq)]
enum End {
    Oldest,
    Newest,
}

/// The position at one end of `name`'s listing: candidate blocks in chain
/// order from that end, until a run holds the whole digest.
fn end(
    db: &sled::Tree,
    filters: &Filters,
    prefix: u8,
    name: &str,
    end: End,
) -> Result<Option<Position>, sled::Error> {
    let Some(filter) = filters.of(prefix) else {
        return Ok(None);
    };
    filters.wait_loaded()?;
    let digest = index::digest_name(name);
    let mut heights = filter.candidates_of(filter_prefix(&digest));
    if end == End::Newest {
        heights.reverse();
    }
    for height in heights {
        let Some(run) = db.get(run_key(prefix, height))? else {
            continue;
        };
        let indexes = indexes_of(&run, &digest);
        let index = match end {
            End::Oldest => indexes.first(),
            End::Newest => indexes.last(),
        };
        if let Some(&index) = index {
            return Ok(Some(Position { height, index }));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn at(height: u64, index: u32) -> Position {
        Position { height, index }
    }

    fn db() -> (tempfile::TempDir, sled::Tree) {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::store::open_sled(&dir.path().join("sled")).unwrap();
        let tree = db.open_tree("t").unwrap();
        (dir, tree)
    }

    /// Writes a batch's runs the way the store does: filter first, then sled.
    fn write(db: &sled::Tree, filters: &Filters, pending: Pending) {
        for run in pending.into_runs() {
            filters.record(&run);
            db.insert(run.key, run.value).unwrap();
        }
    }

    #[test]
    fn a_name_is_found_in_every_block_that_lists_it_in_chain_order() {
        let (_dir, db) = db();
        let filters = Filters::default();
        let mut batch = Pending::default();
        batch.add(PREFIX_EVENT_ID, "urn:uuid:a", at(1, 4));
        batch.add(PREFIX_EVENT_ID, "urn:uuid:b", at(1, 0));
        batch.add(PREFIX_EVENT_ID, "urn:uuid:a", at(1, 2));
        batch.add(PREFIX_EVENT_ID, "urn:uuid:a", at(3, 0));
        batch.add(PREFIX_DUPLICATE, "urn:uuid:a", at(2, 9));
        write(&db, &filters, batch);

        let find = |prefix, name, after| positions(&db, &filters, prefix, name, after).unwrap();
        assert_eq!(
            find(PREFIX_EVENT_ID, "urn:uuid:a", None),
            vec![at(1, 2), at(1, 4), at(3, 0)]
        );
        assert_eq!(
            find(PREFIX_EVENT_ID, "urn:uuid:a", Some(at(1, 2))),
            vec![at(1, 4), at(3, 0)]
        );
        assert_eq!(find(PREFIX_EVENT_ID, "urn:uuid:b", None), vec![at(1, 0)]);
        // The keyspaces are apart: the same name under `w` is another listing.
        assert_eq!(find(PREFIX_DUPLICATE, "urn:uuid:a", None), vec![at(2, 9)]);
        assert_eq!(find(PREFIX_EVENT_ID, "urn:uuid:c", None), vec![]);
        assert_eq!(
            last(&db, &filters, PREFIX_EVENT_ID, "urn:uuid:a").unwrap(),
            Some(at(3, 0))
        );
        assert_eq!(
            last(&db, &filters, PREFIX_EVENT_ID, "urn:uuid:c").unwrap(),
            None
        );
        assert_eq!(
            first(&db, &filters, PREFIX_EVENT_ID, "urn:uuid:a").unwrap(),
            Some(at(1, 2))
        );
        assert_eq!(
            first(&db, &filters, PREFIX_EVENT_ID, "urn:uuid:c").unwrap(),
            None
        );
    }

    #[test]
    fn filters_rebuilt_from_sled_find_what_the_written_ones_found() {
        let (_dir, db) = db();
        let written = Filters::default();
        let mut batch = Pending::default();
        for i in 0..50u32 {
            batch.add(
                PREFIX_DUPLICATE,
                &format!("hash-{}", i % 7),
                at(u64::from(i / 10) + 1, i),
            );
        }
        write(&db, &written, batch);
        let loaded = Filters::default();
        loaded.load(&db).unwrap();
        assert_eq!(loaded.len(), written.len());
        for n in 0..8 {
            let name = format!("hash-{n}");
            assert_eq!(
                positions(&db, &loaded, PREFIX_DUPLICATE, &name, None).unwrap(),
                positions(&db, &written, PREFIX_DUPLICATE, &name, None).unwrap(),
            );
        }
        assert_eq!(
            positions(&db, &loaded, PREFIX_DUPLICATE, "hash-3", None).unwrap(),
            vec![
                at(1, 3),
                at(2, 10),
                at(2, 17),
                at(3, 24),
                at(4, 31),
                at(4, 38),
                at(5, 45)
            ]
        );
    }

    /// A store's open loads the filters on a thread of its own; a lookup
    /// made meanwhile waits for it and finds what a loaded filter finds,
    /// with runs recorded during the load as well.
    #[test]
    fn a_lookup_waits_for_the_background_load_and_misses_nothing() {
        let (_dir, db) = db();
        let mut batch = Pending::default();
        for height in 1..=300u64 {
            for index in 0..20u32 {
                batch.add(
                    PREFIX_DUPLICATE,
                    &format!("hash-{height}-{index}"),
                    at(height, index),
                );
            }
        }
        write(&db, &Filters::default(), batch);
        let filters = Filters::default();
        filters.load_in_background(db.clone());
        let mut later = Pending::default();
        later.add(PREFIX_DUPLICATE, "hash-7-3", at(301, 0));
        write(&db, &filters, later);
        assert_eq!(
            positions(&db, &filters, PREFIX_DUPLICATE, "hash-7-3", None).unwrap(),
            vec![at(7, 3), at(301, 0)]
        );
        assert_eq!(
            last(&db, &filters, PREFIX_DUPLICATE, "hash-300-19").unwrap(),
            Some(at(300, 19))
        );
        filters.wait_loaded().unwrap();
        assert!(filters.len() >= 6_001);
    }

    /// A filter entry whose run is not in sled (written before a batch that
    /// then failed, or cut back) names a block and finds nothing there.
    #[test]
    fn a_filter_entry_without_its_run_finds_nothing() {
        let (_dir, db) = db();
        let filters = Filters::default();
        let mut batch = Pending::default();
        batch.add(PREFIX_EVENT_ID, "urn:uuid:a", at(5, 1));
        for run in batch.into_runs() {
            filters.record(&run);
        }
        assert_eq!(
            positions(&db, &filters, PREFIX_EVENT_ID, "urn:uuid:a", None).unwrap(),
            vec![]
        );
        assert_eq!(filters.len(), 1);
    }

    #[test]
    fn a_run_with_a_digest_sharing_the_filter_prefix_lists_only_its_own_name() {
        // Craft a run holding another digest with the same first 8 bytes.
        let (_dir, db) = db();
        let filters = Filters::default();
        let digest = index::digest_name("urn:uuid:a");
        let mut twin = digest;
        twin[15] ^= 1;
        let mut value = Vec::new();
        for (d, i) in [(digest.min(twin), 0u32), (digest.max(twin), 1)] {
            value.extend_from_slice(&d);
            value.extend_from_slice(&i.to_be_bytes());
        }
        let run = Run {
            prefix: PREFIX_EVENT_ID,
            height: 2,
            key: run_key(PREFIX_EVENT_ID, 2),
            value: value.clone(),
            filter_prefixes: vec![filter_prefix(&digest)],
        };
        filters.record(&run);
        db.insert(run.key, value).unwrap();
        let own = if digest < twin { 0 } else { 1 };
        assert_eq!(
            positions(&db, &filters, PREFIX_EVENT_ID, "urn:uuid:a", None).unwrap(),
            vec![at(2, own)]
        );
    }

    proptest! {
        /// Any listing written as runs reads back as the same positions, in
        /// chain order, from any cursor; a damaged run (any bytes) never
        /// panics a reader.
        #[test]
        fn runs_read_back_what_was_listed(
            listed in proptest::collection::vec((0u8..5, 1u64..6, 0u32..40), 0..120),
            cut in (1u64..6, 0u32..40),
            junk in proptest::collection::vec(any::<u8>(), 0..70),
        ) {
            let (_dir, db) = db();
            let filters = Filters::default();
            let mut batch = Pending::default();
            for (name, height, index) in &listed {
                batch.add(PREFIX_EVENT_ID, &format!("n{name}"), at(*height, *index));
            }
            write(&db, &filters, batch);
            for name in 0u8..6 {
                let mut expected: Vec<Position> = listed
                    .iter()
                    .filter(|(n, _, _)| *n == name)
                    .map(|(_, h, i)| at(*h, *i))
                    .collect();
                expected.sort();
                expected.dedup();
                let name = format!("n{name}");
                prop_assert_eq!(&positions(&db, &filters, PREFIX_EVENT_ID, &name, None).unwrap(), &expected);
                let after = at(cut.0, cut.1);
                let later: Vec<Position> = expected.iter().copied().filter(|p| *p > after).collect();
                prop_assert_eq!(positions(&db, &filters, PREFIX_EVENT_ID, &name, Some(after)).unwrap(), later);
                prop_assert_eq!(last(&db, &filters, PREFIX_EVENT_ID, &name).unwrap(), expected.last().copied());
                prop_assert_eq!(first(&db, &filters, PREFIX_EVENT_ID, &name).unwrap(), expected.first().copied());
            }
            db.insert(run_key(PREFIX_EVENT_ID, 1), junk).unwrap();
            let _ = positions(&db, &filters, PREFIX_EVENT_ID, "n0", None).unwrap();
            filters.load(&db).unwrap();
        }
    }
}
