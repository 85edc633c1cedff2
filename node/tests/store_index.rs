//! The sled index as stored: every lineage edge an event states is found
//! from both of its ends, with its quantity and its origin; every custody
//! record an event states for a node is read back for that node, and no
//! other (whether stored per node or reached through the node's edges); a block header
//! read alone is the header of the full block record; and an index written
//! under another layout is rebuilt from the block log at open and answers
//! exactly as before; attestation records are compressed with one
//! dictionary the store trains from its first attestations, and sled
//! rebuilt from the block log holds the same bytes. Real sled, real block
//! log, a real signed workload.

use std::collections::HashMap;

use lotline_core::lineage;
use lotline_core::statement::Statement;
use lotline_core::trace::{Direction, RecallScopeRequest};
use lotline_node::bulk_load;
use lotline_node::store::index::Position;
use lotline_node::store::lineage::{End, Origins};
use lotline_node::store::{self, Store, dictionary, index};
use lotline_node::trace::{self, SeeAll, TraceRequest};
use lotline_sim::workload::Scale;

/// Blocks of a few attestations, so events land at many positions.
const BLOCK: usize = 7;

fn backward(root: &str) -> TraceRequest {
    TraceRequest {
        root: root.to_owned(),
        direction: Direction::Backward,
        depth: None,
        proofs: false,
    }
}

fn scope(lot: &str) -> RecallScopeRequest {
    RecallScopeRequest {
        suspects: vec![lot.to_owned()],
        from: None,
        until: None,
    }
}

#[test]
fn every_stated_edge_is_read_back_from_both_ends_with_quantity_and_origin() {
    let dir = tempfile::tempdir().expect("tempdir");
    let loaded = bulk_load::load(dir.path(), Scale::small(), BLOCK, |_, _| {}).expect("load");
    let store: &Store = &loaded.store;
    let reader = store.reader();
    let origins = Origins::default();
    let mut checked = 0usize;
    for height in 1..=store.height() {
        let record = store.read_block(height).expect("read").expect("block");
        for (envelope, id) in record.block.attestations.iter().zip(record.block.ids()) {
            let statement = Statement::from_payload(&envelope.payload).expect("statement");
            let derived = lineage::derive(&statement.event);
            // Count each (from, to, kind) the event states, then find as
            // many from each end (an event may state an edge twice).
            let mut stated: HashMap<(String, String, lineage::EdgeKind), usize> = HashMap::new();
            for edge in &derived.edges {
                *stated
                    .entry((edge.from.clone(), edge.to.clone(), edge.kind))
                    .or_default() += 1;
            }
            for edge in &derived.edges {
                let key = (edge.from.clone(), edge.to.clone(), edge.kind);
                let forward = reader
                    .edges(&edge.from, End::From, Some(edge.kind), &origins)
                    .expect("forward edges");
                let found: Vec<_> = forward
                    .iter()
                    .filter(|(_, r)| r.origin.attestation == id && r.other == edge.to)
                    .collect();
                assert_eq!(found.len(), stated[&key], "forward {key:?} of {id}");
                assert!(found.iter().all(|(at, r)| {
                    r.quantity == edge.quantity
                        && r.kind == edge.kind
                        && at.height == height
                        && r.origin.org == statement.org
                        && r.origin.event_id == statement.event.event_id
                }));
                let backward = reader
                    .edges(&edge.to, End::To, None, &origins)
                    .expect("backward edges");
                let found = backward
                    .iter()
                    .filter(|(_, r)| {
                        r.origin.attestation == id && r.other == edge.from && r.kind == edge.kind
                    })
                    .count();
                assert_eq!(found, stated[&key], "backward {key:?} of {id}");
                checked += 1;
            }
        }
    }
    assert!(
        checked > 400,
        "the small story states hundreds of edges, checked {checked}"
    );
}

/// Goal: custody stored once per event for the nodes its edges name reads
/// back exactly as per-node records did. Method: from the block log,
/// derive every custody record each event states for each subject; walk
/// each node's custody newest first through the store and require the
/// same positions, states and origins, in the same order.
#[test]
fn every_stated_custody_is_read_back_for_each_subject_and_no_other() {
    use lotline_node::store::index::Position;
    let dir = tempfile::tempdir().expect("tempdir");
    let loaded = bulk_load::load(dir.path(), Scale::small(), BLOCK, |_, _| {}).expect("load");
    let store: &Store = &loaded.store;
    let reader = store.reader();
    let origins = Origins::default();
    let mut stated: HashMap<String, Vec<(Position, lineage::CustodyState, _)>> = HashMap::new();
    for height in 1..=store.height() {
        let record = store.read_block(height).expect("read").expect("block");
        for (index, (envelope, id)) in
            (0..).zip(record.block.attestations.iter().zip(record.block.ids()))
        {
            let statement = Statement::from_payload(&envelope.payload).expect("statement");
            let Some(custody) = lineage::derive(&statement.event).custody else {
                continue;
            };
            for subject in custody.subjects {
                stated.entry(subject).or_default().push((
                    Position { height, index },
                    custody.state.clone(),
                    id,
                ));
            }
        }
    }
    assert!(
        stated.len() > 200,
        "the small story moves hundreds of units"
    );
    for (node, mut expected) in stated {
        expected.reverse();
        let mut found = Vec::new();
        let none = reader
            .latest_custody(&node, &origins, |at, record| {
                found.push((at, record.state.clone(), record.origin.attestation));
                Ok(false)
            })
            .expect("custody");
        assert!(none.is_none());
        assert_eq!(found, expected, "custody of {node}");
    }
}

#[test]
fn an_index_of_another_layout_is_rebuilt_from_the_block_log_and_answers_the_same() {
    let dir = tempfile::tempdir().expect("tempdir");
    let loaded = bulk_load::load(dir.path(), Scale::small(), BLOCK, |_, _| {}).expect("load");
    let summary = loaded.summary.clone();
    let reader = loaded.store.reader();
    let trace_before =
        trace::trace(&reader, &backward(&summary.deep_serial), &SeeAll).expect("trace");
    let scope_before =
        trace::recall_scope(&reader, &scope(&summary.wide_raw_lot), &SeeAll).expect("scope");
    assert!(trace_before.nodes.len() > 5 && scope_before.totals.units > 10);
    drop((reader, loaded));

    // What an index of layout 1 looks like to this release: no layout mark,
    // and lineage records in a form it cannot decode.
    {
        let db = store::open_sled(&bulk_load::index_path(dir.path()).expect("path")).expect("sled");
        let tree = db.open_tree("lotline").expect("tree");
        assert!(tree.remove(index::KEY_FORMAT).expect("remove").is_some());
        let mut stale = Vec::new();
        for entry in tree.scan_prefix(b"g") {
            let (key, _) = entry.expect("entry");
            stale.push(key);
        }
        for key in stale {
            tree.insert(key, &br#"{"other":"json of layout 1"}"#[..])
                .expect("insert");
        }
        db.flush().expect("flush");
    }

    let (store, report, summary_again) =
        bulk_load::reopen(dir.path(), Scale::small()).expect("reopen");
    assert!(report.sled_rebuilt, "a foreign layout must be rebuilt");
    assert_eq!(summary_again.deep_serial, summary.deep_serial);
    let reader = store.reader();
    assert_eq!(reader.format().expect("format"), index::FORMAT);
    let trace_after =
        trace::trace(&reader, &backward(&summary.deep_serial), &SeeAll).expect("trace");
    let scope_after =
        trace::recall_scope(&reader, &scope(&summary.wide_raw_lot), &SeeAll).expect("scope");
    assert_eq!(trace_after, trace_before);
    assert_eq!(scope_after, scope_before);
    drop((reader, store));

    // The rebuilt index carries the mark: the next open keeps it.
    let (_, report, _) = bulk_load::reopen(dir.path(), Scale::small()).expect("reopen");
    assert!(!report.sled_rebuilt);
}

#[test]
fn a_block_header_read_alone_is_the_header_of_the_full_record() {
    let dir = tempfile::tempdir().expect("tempdir");
    let loaded = bulk_load::load(dir.path(), Scale::small(), BLOCK, |_, _| {}).expect("load");
    let reader = loaded.store.reader();
    for height in 1..=loaded.store.height() {
        let full = reader.block(height).expect("block").expect("present");
        let header = reader
            .block_header(height)
            .expect("header")
            .expect("present");
        assert_eq!(header, full.header);
    }
    let beyond = loaded.store.height() + 1;
    assert!(reader.block_header(beyond).expect("header").is_none());
}

/// Every `a` record (position, stored bytes) and every record dictionary
/// (key, bytes) of the store under `dir`, read from sled directly (the
/// store must be closed).
type Raw = (Vec<(Position, Vec<u8>)>, Vec<(Vec<u8>, Vec<u8>)>);

fn raw_records(dir: &std::path::Path) -> Raw {
    let db = store::open_sled(&bulk_load::index_path(dir).expect("path")).expect("sled");
    let tree = db.open_tree("lotline").expect("tree");
    let read = |prefix: &[u8]| -> Vec<(Vec<u8>, Vec<u8>)> {
        tree.scan_prefix(prefix)
            .map(|entry| {
                let (key, value) = entry.expect("entry");
                (key.to_vec(), value.to_vec())
            })
            .collect()
    };
    let records = store::grouped::scan(&tree, index::PREFIX_ATTESTATION, None)
        .map(|entry| {
            let (at, value) = entry.expect("record");
            (at, value.to_vec())
        })
        .collect();
    (records, read(dictionary::KEY_PREFIX))
}

#[test]
fn a_store_trains_one_record_dictionary_from_its_first_attestations_and_a_rebuild_writes_the_same_bytes()
 {
    const BLOCK: usize = 250;
    let dir = tempfile::tempdir().expect("tempdir");
    let events = dictionary::SAMPLES as u64 + 4 * BLOCK as u64;
    let loaded =
        bulk_load::load(dir.path(), Scale::for_events(events), BLOCK, |_, _| {}).expect("load");
    let height = loaded.store.height();
    let mut envelopes = Vec::new();
    for h in 1..=height {
        let record = loaded.store.read_block(h).expect("read").expect("block");
        envelopes.extend(record.block.attestations);
    }
    drop(loaded);
    let (records, dictionaries) = raw_records(dir.path());
    assert_eq!(records.len(), envelopes.len());

    // One dictionary, first used by the block after the one holding the
    // last sample; every record before that block is plain.
    assert_eq!(dictionaries.len(), 1, "one dictionary");
    let id = u32::from_be_bytes(
        dictionaries[0].0[dictionary::KEY_PREFIX.len()..]
            .try_into()
            .expect("id"),
    );
    let trained_in = records[dictionary::SAMPLES - 1].0.height;
    let (mut plain, mut with) = ((0usize, 0usize), (0usize, 0usize));
    for (at, value) in &records {
        let named = dictionary::of_frame(value);
        if at.height > trained_in {
            assert_eq!(named, Some(id), "a record after the dictionary's block");
            with = (with.0 + 1, with.1 + value.len());
        } else {
            assert_eq!(named, None, "a record up to the dictionary's block");
            plain = (plain.0 + 1, plain.1 + value.len());
        }
    }
    assert!(with.0 >= 2 * BLOCK, "{} records use the dictionary", with.0);
    let (plain_mean, with_mean) = (plain.1 / plain.0, with.1 / with.0);
    assert!(
        with_mean * 3 < plain_mean * 2,
        "records with the dictionary: {with_mean} B, without: {plain_mean} B"
    );

    // Every record reads back as the block log holds it.
    let (store, _, _) = bulk_load::reopen(dir.path(), Scale::for_events(events)).expect("reopen");
    let reader = store.reader();
    for (i, envelope) in envelopes.iter().enumerate() {
        let stored = reader
            .attestation(&envelope.id())
            .expect("read")
            .unwrap_or_else(|| panic!("attestation {i}"));
        assert_eq!(&stored.envelope, envelope);
    }
    drop((reader, store));

    // sled behind the block log while it still gathered samples (a crash
    // before sled's flush; a rebuild from the block log is the same with
    // nothing applied): the reapplied blocks take the samples sled holds,
    // train the same dictionary and write the same records.
    let cut = trained_in - 1;
    {
        let db = store::open_sled(&bulk_load::index_path(dir.path()).expect("path")).expect("sled");
        let tree = db.open_tree("lotline").expect("tree");
        tree.insert(index::KEY_APPLIED, &cut.to_be_bytes()[..])
            .expect("applied");
        for (at, _) in records.iter().filter(|(at, _)| at.height > cut) {
            let key = store::grouped::key(index::PREFIX_ATTESTATION, *at);
            tree.remove(key).expect("remove");
        }
        for (key, _) in &dictionaries {
            tree.remove(key).expect("remove");
        }
        db.flush().expect("flush");
    }
    let (_, report, _) = bulk_load::reopen(dir.path(), Scale::for_events(events)).expect("reopen");
    assert_eq!(report.reapplied_blocks, height - cut);
    assert_eq!(raw_records(dir.path()), (records, dictionaries));
}
