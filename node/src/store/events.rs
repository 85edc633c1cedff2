//! The EPCIS query index: secondary keys that let `GET /epcis/events` start
//! from the most selective filter instead of scanning the chain.
//!
//! Written once per committed attestation, inside the block's atomic sled
//! batch (so the index is never ahead of or behind the records), next to the
//! identifier index `i` that `store::index` already keeps:
//! ```text
//! s | bizStep short  | 0 | height -> idx ...  (EQ_bizStep, /epcis/bizSteps/{s}/events)
//! t | event type     | 0 | height -> idx ...  (eventType)
//! v | height -> (digest of eventID, idx) ...  (EQ_eventID, /epcis/events/{eventID})
//! w | height -> (digest of duplicate name, idx) ...  (a repeated capture)
//! ```
//! `s` and `t` are listings packed one key per name and block, the block's
//! indexes in the value (`store::listing`); `v` and `w`, only ever looked
//! up by a whole name, are one sorted run per block found through an
//! in-memory filter (`store::hashed`).
//! The duplicate name is the CBV 2.0 event hash of the event (hex, with
//! `+errorDeclaration` for a correction; `event_hash::duplicate_name`),
//! `|`, and the org that stated it. Its first entry is the event a later
//! capture by the same org repeats (`POST /epcis/capture` refuses it, 409
//! `duplicate-event`). Scoped to the org because a refusal must not reveal
//! that another org, whose events the caller may not read, stated the
//! same event. Every node applies the same blocks in the same order, so
//! every node names the same first event.
//!
//! **Repeats at application.** Two captures of one event can both commit
//! when both were admitted before either committed (through two nodes, or
//! two requests racing on one). The rule is decided here, when a block is
//! applied, from the chain alone: the first in chain order is the event;
//! a later one (its `w` listing already has an entry, committed or earlier
//! in the same batch) is recorded as a repeat of it, with its `w` entry
//! only, and gets no `v`, `s`, `t` or lineage keys. Queries skip it
//! (`epcis::query`), and its capture job reports `duplicate-event`
//! (`epcis::dedup::committed_repeat`). The attestation itself stays on the
//! chain with its receipt, as every committed attestation does.
//! Everything else is a bounded scan of the attestation records themselves
//! (the `a` keyspace, in chain order: `store::grouped`).
//! Every listing reads in chain order, and one position is a cursor valid
//! for all of them (the query's `nextPageToken`).

use lotline_core::statement::Statement;

use super::index::{self, Position};
use super::{StoreError, StoreReader, grouped, hashed, listing, packed_error, sled_error};

pub const PREFIX_EVENT_ID: u8 = b'v';
pub const PREFIX_BIZ_STEP: u8 = b's';
pub const PREFIX_EVENT_TYPE: u8 = b't';
pub const PREFIX_DUPLICATE: u8 = b'w';

/// The `w` listing name of an event stated by `org`.
pub fn duplicate_listing(event: &lotline_core::epcis::Event, org: &str) -> String {
    duplicate_listing_named(&lotline_core::epcis::event_hash::duplicate_name(event), org)
}

/// [`duplicate_listing`] of a parsed statement, from the event hash it
/// keeps (computed once per statement: `crate::parsed`).
pub fn duplicate_listing_of(parsed: &crate::parsed::ParsedStatement) -> String {
    duplicate_listing_named(parsed.duplicate_name(), &parsed.org)
}

fn duplicate_listing_named(name: &str, org: &str) -> String {
    format!("{name}|{org}")
}

/// Adds one committed event's query keys to the block's batch; a `repeat`
/// (see the module doc) gets its `w` entry only. `duplicate` is the event's
/// [`duplicate_listing`], which the caller has already computed to decide
/// `repeat` (the CBV event hash serialises the whole event: once per event
/// is enough).
pub(super) fn index(
    batch: &mut super::Writes,
    at: Position,
    statement: &Statement,
    duplicate: &str,
    repeat: bool,
) {
    let event = &statement.event;
    batch.list(PREFIX_DUPLICATE, duplicate, at);
    if repeat {
        return;
    }
    if let Some(event_id) = &event.event_id {
        batch.list(PREFIX_EVENT_ID, event_id, at);
    }
    if let Some(step) = event.biz_step_short() {
        batch.list(PREFIX_BIZ_STEP, &step, at);
    }
    batch.list(PREFIX_EVENT_TYPE, event.event_type.as_str(), at);
}

/// Which listing a query walks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Listing {
    /// `i`: every event naming this canonical identifier (any role).
    Identifier(String),
    /// `v`: events with this eventID.
    EventId(String),
    /// `s`: events with this bizStep (CBV short form).
    BizStep(String),
    /// `t`: events of this type.
    EventType(String),
    /// `w`: the captures of one event by one org ([`duplicate_listing`]).
    Duplicate(String),
    /// `a`: every event, in chain order (the records themselves).
    All,
}

impl Listing {
    /// The keyspace and name of a listing, packed (`store::listing`) or
    /// hashed (`v`, `w`: `store::hashed`); `None` for [`Listing::All`],
    /// which walks the records themselves.
    fn packed(&self) -> Option<(u8, &str)> {
        match self {
            Listing::Identifier(name) => Some((index::PREFIX_IDENTIFIER, name)),
            Listing::EventId(name) => Some((PREFIX_EVENT_ID, name)),
            Listing::BizStep(name) => Some((PREFIX_BIZ_STEP, name)),
            Listing::EventType(name) => Some((PREFIX_EVENT_TYPE, name)),
            Listing::Duplicate(name) => Some((PREFIX_DUPLICATE, name)),
            Listing::All => None,
        }
    }
}

/// A lazy walk over one listing, in chain order, strictly after a position.
#[derive(Debug)]
pub enum Cursor {
    /// A packed listing (`store::listing`).
    Listed(listing::Positions),
    /// A hashed listing (`store::hashed`): the few positions of one
    /// eventID or repeated capture, found whole.
    Hashed(std::vec::IntoIter<Result<Position, sled::Error>>),
    /// Every record: the `a` keyspace (`store::grouped`).
    All(grouped::Scan),
}

impl Iterator for Cursor {
    type Item = Result<Position, StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Cursor::Listed(positions) => positions
                .next()
                .map(|p| p.map_err(|e| packed_error("listing", e))),
            Cursor::Hashed(positions) => positions.next().map(|p| p.map_err(sled_error)),
            Cursor::All(records) => records.next().map(|r| {
                r.map(|(at, _)| at)
                    .map_err(|e| packed_error("attestation", e))
            }),
        }
    }
}

impl StoreReader {
    /// Walks `listing` in chain order, starting strictly after `after`.
    pub fn event_cursor(&self, listing: &Listing, after: Option<Position>) -> Cursor {
        let Some((prefix, name)) = listing.packed() else {
            return Cursor::All(grouped::scan(&self.db, index::PREFIX_ATTESTATION, after));
        };
        if hashed::is_hashed(prefix) {
            let found = hashed::positions(&self.db, &self.hashed, prefix, name, after);
            let found: Vec<_> = match found {
                Ok(positions) => positions.into_iter().map(Ok).collect(),
                Err(e) => vec![Err(e)],
            };
            return Cursor::Hashed(found.into_iter());
        }
        Cursor::Listed(listing::positions(&self.db, prefix, name, after))
    }

    /// The oldest entry of a listing (the first capture of an event).
    pub fn event_first(&self, listing: &Listing) -> Result<Option<Position>, StoreError> {
        match listing.packed() {
            // Not through `event_cursor`: that collects every position of
            // a hashed listing, and a block's application asks this once
            // per event (the repeat rule in the module doc).
            Some((prefix, name)) if hashed::is_hashed(prefix) => {
                hashed::first(&self.db, &self.hashed, prefix, name).map_err(|e| self.sled_err(e))
            }
            _ => self.event_cursor(listing, None).next().transpose(),
        }
    }

    /// The positions of every `i` listing whose identifier starts with
    /// `name_prefix` (a product's Digital Link and `/`: its lots and
    /// serials; the index is sorted by name, so this is one range scan:
    /// `listing::under`), in no promised order, or `None` past `max`
    /// entries.
    pub fn identifier_prefix_positions(
        &self,
        name_prefix: &str,
        max: usize,
    ) -> Result<Option<Vec<Position>>, StoreError> {
        listing::under(&self.db, index::PREFIX_IDENTIFIER, name_prefix, max)
            .map_err(|e| packed_error("identifier listing", e))
    }

    /// The most recent entry of a listing (the latest capture of an eventID).
    pub fn event_last(&self, listing: &Listing) -> Result<Option<Position>, StoreError> {
        match listing.packed() {
            Some((prefix, name)) if hashed::is_hashed(prefix) => {
                hashed::last(&self.db, &self.hashed, prefix, name).map_err(|e| self.sled_err(e))
            }
            Some((prefix, name)) => {
                listing::last(&self.db, prefix, name).map_err(|e| packed_error("listing", e))
            }
            // The newest record.
            None => grouped::last(&self.db, index::PREFIX_ATTESTATION)
                .map(|last| last.map(|(at, _)| at))
                .map_err(|e| packed_error("attestation", e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Goal: the repeat rule at block application. Method: real store,
    /// three statements of one event by one org under three eventIDs (the
    /// CBV hash ignores the eventID), the first in block 1, the other two
    /// in block 2; a fourth by another org. Only the first and the other
    /// org's get `v`/`t` keys; all four are in their `w` listings, the
    /// first of each listing being the winner; reopening (which re-applies
    /// nothing) and re-applying from scratch decide the same.
    #[test]
    fn a_repeat_in_a_later_block_or_the_same_block_is_not_indexed() {
        use crate::store::Store;
        use crate::store::testing::Chain;
        use lotline_core::SigningKey;
        use lotline_core::attestation::Envelope;

        let statement = |event_id: &str, org: &str| {
            let mut st = Chain::statement();
            st.event.event_id = Some(event_id.to_owned());
            st.org = org.to_owned();
            Envelope::sign(st.to_payload(), &SigningKey::from_seed(&[9; 32]))
        };
        let dir = tempfile::tempdir().unwrap();
        let mut chain = Chain::new();
        let (mut store, _) = Store::open(dir.path(), chain.set.clone()).unwrap();
        let one = chain.block(vec![statement("e1", "o")]);
        store.commit(&one, |_| Vec::new()).unwrap();
        let two = chain.block(vec![
            statement("e2", "o"),
            statement("e3", "o"),
            statement("e4", "p"),
        ]);
        store.commit(&two, |_| Vec::new()).unwrap();
        let check = |reader: &StoreReader| {
            let first = |listing: Listing| reader.event_first(&listing).unwrap();
            let p = |height, index| Some(Position { height, index });
            assert_eq!(first(Listing::EventId("e1".into())), p(1, 0));
            assert_eq!(first(Listing::EventId("e2".into())), None);
            assert_eq!(first(Listing::EventId("e3".into())), None);
            assert_eq!(first(Listing::EventId("e4".into())), p(2, 2));
            let event = Chain::statement().event;
            let listed = |org: &str| {
                reader
                    .event_cursor(&Listing::Duplicate(duplicate_listing(&event, org)), None)
                    .map(|p| p.unwrap())
                    .collect::<Vec<_>>()
            };
            assert_eq!(
                listed("o"),
                vec![
                    Position {
                        height: 1,
                        index: 0
                    },
                    Position {
                        height: 2,
                        index: 0
                    },
                    Position {
                        height: 2,
                        index: 1
                    }
                ]
            );
            assert_eq!(
                listed("p"),
                vec![Position {
                    height: 2,
                    index: 2
                }]
            );
            let typed = reader
                .event_cursor(&Listing::EventType("ObjectEvent".into()), None)
                .count();
            assert_eq!(typed, 2, "the winner and the other org's event");
        };
        check(&store.reader());
        drop(store);
        // Rebuilt from the block log alone: the same decision.
        std::fs::remove_dir_all(dir.path().join("index.sled")).unwrap();
        let (store, report) = Store::open(dir.path(), chain.set.clone()).unwrap();
        assert_eq!(report.reapplied_blocks, 2);
        check(&store.reader());
    }

    /// Goal: the first and newest entries of the record walk and of a
    /// packed listing, and a cursor resumed strictly after a position, on a
    /// real store of two blocks.
    #[test]
    fn first_last_and_resumed_walks_agree_with_chain_order() {
        use crate::store::Store;
        use crate::store::testing::Chain;

        let dir = tempfile::tempdir().unwrap();
        let mut chain = Chain::new();
        let (mut store, _) = Store::open(dir.path(), chain.set.clone()).unwrap();
        let one = chain.block(vec![Chain::envelope(1), Chain::envelope(2)]);
        store.commit(&one, |_| Vec::new()).unwrap();
        let two = chain.block(vec![Chain::envelope(3)]);
        store.commit(&two, |_| Vec::new()).unwrap();
        let reader = store.reader();
        let p = |height, index| Position { height, index };
        assert_eq!(reader.event_first(&Listing::All).unwrap(), Some(p(1, 0)));
        assert_eq!(reader.event_last(&Listing::All).unwrap(), Some(p(2, 0)));
        let after = |at| {
            reader
                .event_cursor(&Listing::All, at)
                .map(Result::unwrap)
                .collect::<Vec<_>>()
        };
        assert_eq!(after(None), vec![p(1, 0), p(1, 1), p(2, 0)]);
        assert_eq!(after(Some(p(1, 0))), vec![p(1, 1), p(2, 0)]);
        assert_eq!(after(Some(p(2, 0))), vec![]);
        // Payloads that are not statements are listed under the empty org.
        let org = reader.list(index::PREFIX_ORG, "", Some((1, 0)), 10, &|_| true);
        let listed: Vec<_> = org
            .unwrap()
            .items
            .iter()
            .map(|s| (s.height, s.index))
            .collect();
        assert_eq!(listed, vec![(1, 1), (2, 0)]);
    }

    #[test]
    fn record_keys_sort_in_chain_order() {
        let key =
            |height, index| grouped::key(index::PREFIX_ATTESTATION, Position { height, index });
        let (a, b, c) = (key(1, 7), key(2, 0), key(2, 16));
        assert!(a < b && b < c);
        assert_eq!(key(2, 0), key(2, 15), "16 positions share a key");
    }

    #[test]
    fn listing_prefixes_keep_names_apart() {
        // "shipping" must not list "shipping_extra" entries: the name is
        // followed by a 0 byte in the prefix.
        let a = index::listing_prefix(PREFIX_BIZ_STEP, "shipping");
        let b = index::listing_key(PREFIX_BIZ_STEP, "shipping_extra", 1, 0);
        assert!(!b.starts_with(&a));
    }
}
