//! What a root cause (and a chart's lot subgroups) reads instead of walking
//! the lineage per unit: each lot's serialised units, the units each
//! container was packed with and each party or place was shipped (store
//! format 11), and the units each carrier carried (format 15), written at
//! commit with the events that put them there.
//!
//! ```text
//! l | lot     | 0 | kind | height | idx -> postcard(LotUnits)  the units (fingerprints) one event
//!                                         serialised from the lot (kind: serialised, transformedInto),
//!                                         with the event's origin (format 17)
//! d | node    | 0 | height | idx        -> postcard(Content)   the units one event packed into the
//!                                         container `node` or shipped to `node`, each group with
//!                                         the packing events below it that must stand for it
//! f | carrier | 0 | height | idx        -> postcard(Content)   the units one shipment carried by
//!                                         `carrier` (`lineage::carrier`: the possessing party of
//!                                         its destination list), as `d` holds them
//! ```
//!
//! A unit is named by a fingerprint (the first 8 bytes of its serial's
//! BLAKE3 hash): the population of a product is a million units, and a
//! destination's content most of them, so a query reads integers, not
//! strings. The bad units are matched by their own fingerprints; two
//! serials sharing one is a 1-in-2^64 event per pair.
//!
//! Contents are snapshots: a container's content is what was inside when it
//! was packed into another or shipped (its own packing records up to that
//! commit, [`CONTAINER_LEVELS_MAX`] levels deep). Nothing here decides what
//! a caller sees: every record and every packing event inside a content is
//! judged at read time ([`Judge`]) by the one read-policy rule and against
//! the error declarations, exactly as the lineage records are (a record of
//! an org the caller reads in full whose event id no declaration names
//! stands without loading its origin).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use lotline_core::lineage::{Edge, EdgeKind, Listed};
use lotline_core::statement::Statement;
use lotline_core::trace::NodeKind;
use serde::{Deserialize, Serialize};

use crate::store::index::{self, Position};
use crate::store::lineage::Origin;
use crate::store::{StoreError, StoreReader, Writes};
use crate::trace::Reader;

const PREFIX_LOT_UNITS: u8 = b'l';
const PREFIX_CONTENT: u8 = b'd';
const PREFIX_CARRIED: u8 = b'f';
/// How many container levels above the first a content holds (and a root
/// cause climbs from a unit): a unit in a case in a pallet is one.
pub(crate) const CONTAINER_LEVELS_MAX: usize = 4;

/// The fingerprint of a serial (or an event id) the records name it by.
pub(crate) fn fingerprint(name: &str) -> u64 {
    let hash = blake3::hash(name.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&hash.as_bytes()[..8]);
    u64::from_le_bytes(first)
}

/// A packing event a group of units depends on.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
struct Gate {
    at: Position,
    /// Into the content's `orgs`.
    org: u32,
    /// The event id's fingerprint, 0 for an event without one (which no
    /// declaration can retract).
    event: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Group {
    /// The packing events inside the record's own, outermost first.
    path: Vec<Gate>,
    units: Vec<u64>,
}

/// The value of an `l` record. It carries the serialising event's origin,
/// which every read of a population judges the record by: the event's own
/// lineage record holds every edge of the serialisation too (tens of KB
/// for a lot of a few hundred units), and reading it per lot was a third
/// of a root cause at 1M events.
#[derive(Serialize, Deserialize)]
struct LotUnits<O> {
    origin: O,
    units: Vec<u64>,
}

/// The value of a `d` record.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Content {
    /// The orgs the gates name; the first is the record's own event's.
    orgs: Vec<String>,
    /// The record's own event id fingerprint (0: none).
    event: u64,
    groups: Vec<Group>,
}

/// Which units of a node the index keeps: what was packed into it or
/// shipped to it (`d`), or what it carried (`f`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Held {
    Contents,
    Carried,
}

impl Held {
    fn prefix(self) -> u8 {
        match self {
            Held::Contents => PREFIX_CONTENT,
            Held::Carried => PREFIX_CARRIED,
        }
    }
}

/// `d` contents written earlier in the block being applied, which a later
/// event of the same block packs or ships (sled reads do not see the
/// batch).
#[derive(Debug, Default)]
pub(crate) struct Pending {
    contents: HashMap<String, Vec<(Position, Arc<Content>)>>,
}

fn fingerprint_of_event(event_id: Option<&str>) -> u64 {
    event_id.map_or(0, fingerprint)
}

fn lot_units_key(lot: &str, kind: EdgeKind, at: Position) -> Vec<u8> {
    let mut key = index::listing_prefix(PREFIX_LOT_UNITS, lot);
    key.push(kind_tag(kind));
    key.extend_from_slice(&at.height.to_be_bytes());
    key.extend_from_slice(&at.index.to_be_bytes());
    key
}

fn kind_tag(kind: EdgeKind) -> u8 {
    match kind {
        EdgeKind::TransformedInto => 1,
        _ => 2,
    }
}

fn kind_of_tag(tag: u8) -> EdgeKind {
    if tag == 1 {
        EdgeKind::TransformedInto
    } else {
        EdgeKind::Serialised
    }
}

/// Adds one committed event's `l`, `d` and `f` records to the block's batch
/// (called after `store::lineage::index` with the edges it derived;
/// `listed` is the event's listing, which knows which of its nodes are
/// serials without parsing them again). A pure
/// function of the chain: contents read only committed records and the
/// ones this block wrote before.
pub(crate) fn index(
    reader: &StoreReader,
    batch: &mut Writes,
    at: Position,
    statement: &Statement,
    origin: &Origin,
    listed: &Listed,
    edges: &[Edge],
) -> Result<(), StoreError> {
    let is_item = |node: &str| listed.kind_or_parse(node) == NodeKind::Item;
    let mut serialised: BTreeMap<(&str, u8), Vec<u64>> = BTreeMap::new();
    let mut inside: BTreeMap<(Held, &str), Vec<&str>> = BTreeMap::new();
    let carrier = lotline_core::lineage::carrier(&statement.event);
    for edge in edges {
        match edge.kind {
            // A commissioning's edge ends at an item by construction.
            EdgeKind::Serialised => serialised
                .entry((edge.from.as_str(), kind_tag(edge.kind)))
                .or_default()
                .push(fingerprint(&edge.to)),
            EdgeKind::TransformedInto if is_item(&edge.to) => serialised
                .entry((edge.from.as_str(), kind_tag(edge.kind)))
                .or_default()
                .push(fingerprint(&edge.to)),
            EdgeKind::PackedIn | EdgeKind::ShippedTo => {
                inside
                    .entry((Held::Contents, edge.to.as_str()))
                    .or_default()
                    .push(edge.from.as_str());
                // What a shipment ships, its carrier carries.
                if let (EdgeKind::ShippedTo, Some(carrier)) = (edge.kind, &carrier) {
                    inside
                        .entry((Held::Carried, carrier.as_str()))
                        .or_default()
                        .push(edge.from.as_str());
                }
            }
            _ => {}
        }
    }
    for ((lot, tag), units) in serialised {
        batch.insert(
            lot_units_key(lot, kind_of_tag(tag), at),
            index::encode(&LotUnits { origin, units }),
        );
    }
    let event = fingerprint_of_event(statement.event.event_id.as_deref());
    for ((held, node), children) in inside {
        let mut content = Content {
            orgs: vec![statement.org.clone()],
            event,
            groups: Vec::new(),
        };
        let mut direct = Vec::new();
        for child in children {
            if is_item(child) {
                direct.push(fingerprint(child));
                continue;
            }
            for (packed_at, packed) in contents(reader, &batch.exposure, child)? {
                content.nest(packed_at, &packed);
            }
        }
        if !direct.is_empty() {
            content.groups.insert(
                0,
                Group {
                    path: Vec::new(),
                    units: direct,
                },
            );
        }
        if content.groups.is_empty() {
            continue;
        }
        batch.insert(
            index::listing_key(held.prefix(), node, at.height, at.index),
            index::encode(&content),
        );
        // Only containers are nested into later contents.
        if held == Held::Contents {
            batch
                .exposure
                .contents
                .entry(node.to_owned())
                .or_default()
                .push((at, Arc::new(content)));
        }
    }
    Ok(())
}

impl Content {
    /// Adds the content of a child container packed at `at`, one level
    /// down (levels past [`CONTAINER_LEVELS_MAX`] are left out).
    fn nest(&mut self, at: Position, child: &Content) {
        let own = Gate {
            at,
            org: self.org_slot(child.orgs.first().map_or("", String::as_str)),
            event: child.event,
        };
        for group in &child.groups {
            if group.path.len() + 1 > CONTAINER_LEVELS_MAX {
                continue;
            }
            let mut path = vec![own];
            for gate in &group.path {
                let org = child.orgs.get(gate.org as usize).map_or("", String::as_str);
                path.push(Gate {
                    org: self.org_slot(org),
                    ..*gate
                });
            }
            self.groups.push(Group {
                path,
                units: group.units.clone(),
            });
        }
    }

    /// `org`'s place in `orgs`, added if new.
    fn org_slot(&mut self, org: &str) -> u32 {
        let slot = self.orgs.iter().position(|o| o == org).unwrap_or_else(|| {
            self.orgs.push(org.to_owned());
            self.orgs.len() - 1
        });
        u32::try_from(slot).unwrap_or(u32::MAX)
    }
}

/// Every content record of `node`, committed and in this block's batch, in
/// chain order.
fn contents(
    reader: &StoreReader,
    pending: &Pending,
    node: &str,
) -> Result<Vec<(Position, Arc<Content>)>, StoreError> {
    let mut out = stored_contents(reader, Held::Contents, node)?;
    if let Some(written) = pending.contents.get(node) {
        out.extend(written.iter().cloned());
    }
    Ok(out)
}

fn stored_contents(
    reader: &StoreReader,
    held: Held,
    node: &str,
) -> Result<Vec<(Position, Arc<Content>)>, StoreError> {
    let prefix = index::listing_prefix(held.prefix(), node);
    let mut out = Vec::new();
    for entry in reader.scan_from(&prefix, &prefix) {
        let (key, value) = entry?;
        if key.len() != prefix.len() + 12 {
            continue;
        }
        let Some((height, index)) = index::listing_position(&key) else {
            continue;
        };
        let content: Content = decode("unit content", &value)?;
        out.push((Position { height, index }, Arc::new(content)));
    }
    Ok(out)
}

fn decode<'a, T: Deserialize<'a> + Serialize>(
    what: &'static str,
    bytes: &'a [u8],
) -> Result<T, StoreError> {
    index::decode(what, bytes).map_err(|source| StoreError::Decode { what, source })
}

/// Hashes a fingerprint by itself (it is a hash already).
#[derive(Default)]
pub(crate) struct Unhashed(u64);

impl Hasher for Unhashed {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 = (self.0 << 8) | u64::from(*byte);
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = value;
    }
}

type ByFingerprint<V> = HashMap<u64, V, BuildHasherDefault<Unhashed>>;

/// Judges the records and packing events a read meets: visible to the
/// caller and not retracted ([`Reader::stands`]), each position once.
pub(crate) struct Judge {
    /// Fingerprints of every event id a declaration names (`None`: not
    /// read up front, so every event with an id is looked up).
    declared: Option<HashSet<u64>>,
    judged: HashMap<Position, bool>,
    reads_all: HashMap<String, bool>,
}

impl Judge {
    pub(crate) fn new(reader: &Reader<'_>) -> Judge {
        Judge {
            declared: reader
                .declared_event_ids()
                .map(|ids| ids.iter().map(|id| fingerprint(id)).collect()),
            judged: HashMap::new(),
            reads_all: HashMap::new(),
        }
    }

    /// True if the event at `at`, stated by `org` with an event id of
    /// fingerprint `event`, stands for the caller.
    fn stands(
        &mut self,
        reader: &mut Reader<'_>,
        at: Position,
        org: &str,
        event: u64,
    ) -> Result<bool, StoreError> {
        if let Some(&known) = self.judged.get(&at) {
            return Ok(known);
        }
        let reads_all = match self.reads_all.get(org) {
            Some(&known) => known,
            None => {
                let known = reader.reads_all_of(org);
                self.reads_all.insert(org.to_owned(), known);
                known
            }
        };
        let undeclared = event == 0
            || self
                .declared
                .as_ref()
                .is_some_and(|declared| !declared.contains(&event));
        let stands = if reads_all && undeclared {
            true
        } else {
            let origins = reader.origins.clone();
            let origin = reader.store.origin(at, &origins)?;
            reader.stands(at, &origin)?
        };
        self.judged.insert(at, stands);
        Ok(stands)
    }
}

/// One serialisation record of the population.
#[derive(Debug)]
struct Serialisation {
    lot: String,
    at: Position,
    kind: EdgeKind,
    origin: Arc<Origin>,
}

/// Every unit serialised from the lots of some products, each by its first
/// standing, visible serialisation, with a dense place per unit.
#[derive(Debug, Default)]
pub(crate) struct Serials {
    serialisations: Vec<Serialisation>,
    /// Unit fingerprint -> its place.
    places: ByFingerprint<u32>,
    /// Place -> the serialisation that made it (into `serialisations`).
    made_by: Vec<u32>,
    /// Units per lot.
    units_of: BTreeMap<String, u64>,
    /// Per place, the read of [`Serials::inside`] that last met it (to
    /// count each unit once without a set per read), and the last read.
    met: std::cell::RefCell<(u32, Vec<u32>)>,
}

impl Serials {
    /// The population of the lots under each stem (`.../01/{gtin}/10/`):
    /// one prefix scan of `l` per stem.
    pub(crate) fn read(reader: &mut Reader<'_>, stems: &[String]) -> Result<Serials, StoreError> {
        let mut records: Vec<(Position, String, EdgeKind, Origin, Vec<u64>)> = Vec::new();
        for stem in stems {
            let mut prefix = vec![PREFIX_LOT_UNITS];
            prefix.extend_from_slice(stem.as_bytes());
            for entry in reader.store.scan_from(&prefix, &prefix) {
                let (key, value) = entry?;
                // `l | lot | 0 | kind | height | idx`.
                let n = key.len();
                if n < 1 + 2 + 12 || key[n - 14] != 0 {
                    continue;
                }
                let (Ok(lot), Some((height, index))) = (
                    std::str::from_utf8(&key[1..n - 14]),
                    index::listing_position(&key),
                ) else {
                    continue;
                };
                let LotUnits { origin, units }: LotUnits<Origin> = decode("lot units", &value)?;
                records.push((
                    Position { height, index },
                    lot.to_owned(),
                    kind_of_tag(key[n - 13]),
                    origin,
                    units,
                ));
            }
        }
        records.sort_by_key(|(at, ..)| *at);
        let mut out = Serials::default();
        for (at, lot, kind, origin, units) in records {
            let origin = Arc::new(origin);
            reader.origins.know(at, origin.clone());
            if !reader.stands(at, &origin)? {
                continue;
            }
            let made_by = u32::try_from(out.serialisations.len()).unwrap_or(u32::MAX);
            let mut added = 0u64;
            for unit in units {
                let place = u32::try_from(out.made_by.len()).unwrap_or(u32::MAX);
                if let std::collections::hash_map::Entry::Vacant(entry) = out.places.entry(unit) {
                    entry.insert(place);
                    out.made_by.push(made_by);
                    added += 1;
                }
            }
            if added > 0 {
                *out.units_of.entry(lot.clone()).or_default() += added;
            }
            out.serialisations.push(Serialisation {
                lot,
                at,
                kind,
                origin,
            });
        }
        Ok(out)
    }

    pub(crate) fn units(&self) -> u64 {
        self.made_by.len() as u64
    }

    /// Units per lot, by lot.
    pub(crate) fn units_of(&self) -> &BTreeMap<String, u64> {
        &self.units_of
    }

    pub(crate) fn place(&self, unit: &str) -> Option<u32> {
        self.places.get(&fingerprint(unit)).copied()
    }

    fn made_by(&self, unit: &str) -> Option<&Serialisation> {
        let place = self.place(unit)?;
        let made_by = *self.made_by.get(place as usize)?;
        self.serialisations.get(made_by as usize)
    }

    /// The lot the unit was serialised from.
    pub(crate) fn lot_of(&self, unit: &str) -> Option<&str> {
        self.made_by(unit).map(|s| s.lot.as_str())
    }

    /// The step that serialised the unit from its lot: (lot, position,
    /// kind, origin).
    pub(crate) fn serialised_by(&self, unit: &str) -> Option<(&str, Position, EdgeKind, &Origin)> {
        self.made_by(unit)
            .map(|s| (s.lot.as_str(), s.at, s.kind, s.origin.as_ref()))
    }

    /// The population units `node` holds as `held` says (packed with or
    /// shipped, or carried; standing records whose packing events inside
    /// stand too), as places, each once, in no order.
    pub(crate) fn inside(
        &self,
        reader: &mut Reader<'_>,
        judge: &mut Judge,
        held: Held,
        node: &str,
    ) -> Result<Vec<u32>, StoreError> {
        let mut met = self.met.borrow_mut();
        let (read, by_place) = &mut *met;
        *read = read.wrapping_add(1);
        if *read == 0 || by_place.len() != self.made_by.len() {
            *read = 1;
            *by_place = vec![0; self.made_by.len()];
        }
        let read = *read;
        let mut out = Vec::new();
        for (at, content) in stored_contents(reader.store, held, node)? {
            let org = |i: u32| content.orgs.get(i as usize).map_or("", String::as_str);
            if !judge.stands(reader, at, org(0), content.event)? {
                continue;
            }
            'groups: for group in &content.groups {
                for gate in &group.path {
                    if !judge.stands(reader, gate.at, org(gate.org), gate.event)? {
                        continue 'groups;
                    }
                }
                for unit in &group.units {
                    if let Some(&place) = self.places.get(unit)
                        && let Some(last) = by_place.get_mut(place as usize)
                        && *last != read
                    {
                        *last = read;
                        out.push(place);
                    }
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use lotline_core::gs1::{CANONICAL_HOST, Identifier};
    use lotline_sim::workload::Scale;

    use super::*;
    use crate::store::lineage::End;
    use crate::trace::{SeeAll, Visibility};

    /// Sees everything but claims to read no org in full: every record and
    /// packing event is judged through its origin (the slow path).
    struct EveryRecordJudged;

    impl Visibility for EveryRecordJudged {
        fn can_see(&self, _origin: &Origin) -> bool {
            true
        }
        fn can_see_private(&self, _origin: &Origin) -> bool {
            true
        }
        fn reads_all_of(&self, _org: &str) -> bool {
            false
        }
    }

    /// Sees every org but one.
    struct AllBut(&'static str);

    impl Visibility for AllBut {
        fn can_see(&self, origin: &Origin) -> bool {
            origin.org != self.0
        }
        fn can_see_private(&self, origin: &Origin) -> bool {
            self.can_see(origin)
        }
        fn reads_all_of(&self, org: &str) -> bool {
            org != self.0
        }
    }

    /// What walking the standing lineage finds in a container (packed in
    /// it, up to the same depth), as root cause found it before the index.
    fn walked_inside(reader: &mut Reader<'_>, container: &str, serials: &Serials) -> BTreeSet<u32> {
        let mut out = BTreeSet::new();
        let mut frontier = vec![container.to_owned()];
        for _ in 0..=CONTAINER_LEVELS_MAX {
            let mut next = Vec::new();
            for node in frontier {
                for (_, edge) in reader.edges(&node, End::To).expect("edges") {
                    if edge.kind != EdgeKind::PackedIn {
                        continue;
                    }
                    match serials.place(&edge.other) {
                        Some(place) => {
                            out.insert(place);
                        }
                        None => next.push(edge.other),
                    }
                }
            }
            frontier = next;
        }
        out
    }

    /// What walking finds shipped to a destination: the units shipped, and
    /// the units inside the containers shipped.
    fn walked_shipped(
        reader: &mut Reader<'_>,
        destination: &str,
        serials: &Serials,
    ) -> BTreeSet<u32> {
        shipped(reader, destination, None, serials)
    }

    /// What walking finds carried by `carrier`: the units shipped, and the
    /// units inside the containers shipped, by the standing shipments (to
    /// any destination) whose signed statements name it as their carrier.
    fn walked_carried(
        reader: &mut Reader<'_>,
        destinations: &BTreeSet<String>,
        carrier: &str,
        serials: &Serials,
    ) -> BTreeSet<u32> {
        let mut out = BTreeSet::new();
        for destination in destinations {
            out.extend(shipped(reader, destination, Some(carrier), serials));
        }
        out
    }

    /// The units shipped to `destination` (by `carrier` only, if given).
    fn shipped(
        reader: &mut Reader<'_>,
        destination: &str,
        carrier: Option<&str>,
        serials: &Serials,
    ) -> BTreeSet<u32> {
        let mut out = BTreeSet::new();
        for (_, edge) in reader.edges(destination, End::To).expect("edges") {
            if edge.kind != EdgeKind::ShippedTo {
                continue;
            }
            if let Some(carrier) = carrier {
                let stored = reader
                    .store
                    .attestation(&edge.origin.attestation)
                    .expect("read")
                    .expect("the shipment");
                let statement =
                    Statement::from_payload(&stored.envelope.payload).expect("statement");
                if lotline_core::lineage::carrier(&statement.event).as_deref() != Some(carrier) {
                    continue;
                }
            }
            match serials.place(&edge.other) {
                Some(place) => {
                    out.insert(place);
                }
                None => out.extend(walked_inside(reader, &edge.other, serials)),
            }
        }
        out
    }

    /// The small story loaded in blocks of 7 (contents are built across
    /// blocks and within one), every edge it states, in chain order, and
    /// the carriers its shipments name.
    fn story() -> (
        tempfile::TempDir,
        crate::bulk_load::Loaded,
        Vec<Edge>,
        BTreeSet<String>,
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        let loaded =
            crate::bulk_load::load(dir.path(), Scale::small(), 7, |_, _| {}).expect("load");
        let mut edges = Vec::new();
        let mut carriers = BTreeSet::new();
        for height in 1..=loaded.store.height() {
            let record = loaded
                .store
                .read_block(height)
                .expect("read")
                .expect("block");
            for envelope in &record.block.attestations {
                let statement = Statement::from_payload(&envelope.payload).expect("statement");
                edges.extend(lotline_core::lineage::derive(&statement.event).edges);
                carriers.extend(lotline_core::lineage::carrier(&statement.event));
            }
        }
        (dir, loaded, edges, carriers)
    }

    /// Goal: the contents kept at commit answer what walking the lineage at
    /// read time answers, for every container, destination and carrier of
    /// the story, whoever asks: a caller who sees all, one whose every
    /// record is judged one by one, and callers who may not read one org
    /// (its packing or shipping events then take their units out). Method:
    /// the small story ([`story`]); each node's units both ways, as sets of
    /// places; a carrier's by walking its shipments' edges and reading
    /// each shipment's carrier from its signed statement.
    #[test]
    fn contents_kept_at_commit_answer_what_walking_the_lineage_answers() {
        let (_dir, loaded, edges, carriers) = story();
        let store = loaded.store.reader();
        // Every product's lots, containers and destinations of the story.
        let mut stems = BTreeSet::new();
        let mut containers = BTreeSet::new();
        let mut destinations = BTreeSet::new();
        for edge in edges {
            match edge.kind {
                EdgeKind::Serialised | EdgeKind::TransformedInto => {
                    if let Ok(Identifier::Item { gtin, .. }) = Identifier::parse(&edge.to) {
                        stems.insert(format!("{CANONICAL_HOST}/01/{}/10/", gtin.as_str()));
                    }
                }
                EdgeKind::PackedIn => {
                    containers.insert(edge.to);
                }
                EdgeKind::ShippedTo => {
                    destinations.insert(edge.to);
                }
                _ => {}
            }
        }
        let stems: Vec<String> = stems.into_iter().collect();
        assert!(
            containers.len() > 20 && destinations.len() > 2 && carriers.len() > 2,
            "a story with packing, shipping and carriers"
        );
        let views: [(&str, &dyn Visibility); 5] = [
            ("sees all", &SeeAll),
            ("judged one by one", &EveryRecordJudged),
            ("not the manufacturer", &AllBut("manufacturer")),
            ("not the distributor", &AllBut("distributor")),
            ("not the supplier", &AllBut("supplier")),
        ];
        let mut nonempty = 0usize;
        let mut carried = 0usize;
        for (name, view) in views {
            let mut reader = Reader::new(&store, view);
            reader.know_declarations(1_000).expect("declarations");
            let serials = Serials::read(&mut reader, &stems).expect("serials");
            let mut judge = Judge::new(&reader);
            for (nodes, walked) in [
                (
                    &containers,
                    walked_inside as fn(&mut Reader<'_>, &str, &Serials) -> BTreeSet<u32>,
                ),
                (&destinations, walked_shipped),
            ] {
                for node in nodes {
                    let kept: BTreeSet<u32> = serials
                        .inside(&mut reader, &mut judge, Held::Contents, node)
                        .expect("inside")
                        .into_iter()
                        .collect();
                    let walked = walked(&mut reader, node, &serials);
                    assert_eq!(kept, walked, "{node} as a caller who {name}");
                    nonempty += usize::from(!kept.is_empty());
                }
            }
            for carrier in &carriers {
                let kept: BTreeSet<u32> = serials
                    .inside(&mut reader, &mut judge, Held::Carried, carrier)
                    .expect("carried")
                    .into_iter()
                    .collect();
                let walked = walked_carried(&mut reader, &destinations, carrier, &serials);
                assert_eq!(kept, walked, "carrier {carrier} as a caller who {name}");
                carried += usize::from(!kept.is_empty());
            }
        }
        assert!(nonempty > 50, "most nodes hold units: {nonempty}");
        // Every carrier carried units, except for callers who may not read
        // the shipper that named it.
        assert!(carried >= 3 * carriers.len(), "{carried}");
    }

    /// Goal: a lot's units as kept at commit are its standing
    /// serialisations, each unit under its first. Method: the small story;
    /// every serialised item's lot from the index and from its edges.
    #[test]
    fn a_units_lot_is_its_first_standing_serialisation() {
        let (_dir, loaded, edges, _) = story();
        let store = loaded.store.reader();
        let mut reader = Reader::new(&store, &SeeAll);
        let mut units = BTreeMap::new();
        let mut stems = BTreeSet::new();
        for edge in edges {
            let serialises = matches!(edge.kind, EdgeKind::Serialised | EdgeKind::TransformedInto);
            if let (true, Ok(Identifier::Item { gtin, .. })) =
                (serialises, Identifier::parse(&edge.to))
            {
                let stem = format!("{CANONICAL_HOST}/01/{}/10/", gtin.as_str());
                if edge.from.starts_with(&stem) {
                    stems.insert(stem);
                    units.entry(edge.to).or_insert(edge.from);
                }
            }
        }
        let stems: Vec<String> = stems.into_iter().collect();
        let serials = Serials::read(&mut reader, &stems).expect("serials");
        assert_eq!(serials.units(), units.len() as u64);
        for (unit, lot) in &units {
            assert_eq!(serials.lot_of(unit), Some(lot.as_str()), "{unit}");
        }
        let mut per_lot: BTreeMap<String, u64> = BTreeMap::new();
        for lot in units.values() {
            *per_lot.entry(lot.clone()).or_default() += 1;
        }
        assert_eq!(serials.units_of(), &per_lot);
    }
}
