//! Traceability over the lineage graph (`store::lineage`): backward and
//! forward traces (向前查源、向后追踪) and recall scope.
//!
//! Reads only: every answer is computed from committed records, skipping the
//! ones an error declaration retracted and reporting those corrections. Work
//! grows with the size of the answer (one sled prefix scan per node reached),
//! not with the size of the store.

mod graph;
mod guard;
mod recall;

use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

use lotline_core::attestation::AttestationId;
use lotline_core::gs1::Identifier;
use lotline_core::lineage::{CustodyState, EdgeKind};
use lotline_core::statement::Statement;
use lotline_core::trace::{Correction, Holder, RecallMark, Source};

pub(crate) use graph::{Met, WalkLimits, walk};
pub use graph::{TraceRequest, cited, trace};
pub use guard::LineageGuard;
pub use recall::{RecallRequest, recall_scope};

use crate::store::index::Position;
use crate::store::lineage::{At, CustodyRecord, EdgeRecord, End, Origin, Origins};
use crate::store::{StoreError, StoreReader};

/// Default and largest trace depth (edges from the root).
pub const DEPTH_DEFAULT: u32 = 16;
pub const DEPTH_MAX: u32 = 64;
/// Most nodes a trace visits before it reports `truncated`.
pub const TRACE_NODES_MAX: usize = 20_000;
/// Most units a recall scope reports before it reports `truncated`.
pub const SCOPE_UNITS_MAX: usize = 250_000;
/// Most attestations a trace with `proofs=true` may cite.
pub const PROOFS_MAX: usize = 2_000;
/// How many container levels a holder lookup climbs.
const CONTAINER_LEVELS_MAX: u32 = 8;

#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    #[error("{0:?} is not an identifier Lotline can trace: {1}")]
    BadIdentifier(String, String),
    #[error("depth {0} is above the maximum {DEPTH_MAX}")]
    DepthTooLarge(u32),
    #[error("{field}: {reason}")]
    BadRequest { field: &'static str, reason: String },
    #[error("the trace cites {0} attestations; proofs are limited to {PROOFS_MAX} (lower depth)")]
    TooManyProofs(usize),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Which records a caller may see. Records stated by an org the caller may
/// not read are left out of answers as if they did not exist.
pub trait Visibility {
    fn can_see(&self, origin: &Origin) -> bool;
    /// Whether the caller may also see what this node opened from the
    /// record's private section (measurements marked private in the
    /// quality series): the one rule, `access::private::can_read_private`.
    fn can_see_private(&self, origin: &Origin) -> bool;
    /// True if the caller sees every record `org` states: then an index
    /// kept per org (`quality::exposure`) is read without judging each
    /// record's origin. False is always safe (each record is judged).
    fn reads_all_of(&self, org: &str) -> bool;
}

/// Sees everything (node-internal use, and callers entitled to all data).
#[derive(Clone, Copy, Debug)]
pub struct SeeAll;

impl Visibility for SeeAll {
    fn can_see(&self, _origin: &Origin) -> bool {
        true
    }

    fn can_see_private(&self, _origin: &Origin) -> bool {
        true
    }

    fn reads_all_of(&self, _org: &str) -> bool {
        true
    }
}

/// What a caller may see under the genesis read policy
/// ([`crate::access::can_read`]): a record is judged by its whole signed
/// statement, loaded once per attestation per request.
pub struct CallerVisibility<'a> {
    genesis: &'a lotline_genesis::Genesis,
    identity: &'a crate::access::Identity,
    store: &'a StoreReader,
    judged: std::cell::RefCell<HashMap<AttestationId, bool>>,
    judged_private: std::cell::RefCell<HashMap<AttestationId, bool>>,
}

impl<'a> CallerVisibility<'a> {
    pub fn new(
        genesis: &'a lotline_genesis::Genesis,
        identity: &'a crate::access::Identity,
        store: &'a StoreReader,
    ) -> CallerVisibility<'a> {
        CallerVisibility {
            genesis,
            identity,
            store,
            judged: std::cell::RefCell::new(HashMap::new()),
            judged_private: std::cell::RefCell::new(HashMap::new()),
        }
    }
}

impl std::fmt::Debug for CallerVisibility<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallerVisibility")
            .field("identity", self.identity)
            .finish_non_exhaustive()
    }
}

impl Visibility for CallerVisibility<'_> {
    fn reads_all_of(&self, org: &str) -> bool {
        crate::access::reads_all_of(self.genesis, self.identity, org)
    }

    fn can_see(&self, origin: &Origin) -> bool {
        if crate::access::reads_all_of(self.genesis, self.identity, &origin.org) {
            return true;
        }
        if let Some(&seen) = self.judged.borrow().get(&origin.attestation) {
            return seen;
        }
        // A record that cannot be loaded is not shown (fail closed).
        let seen = match self.store.attestation(&origin.attestation) {
            Ok(Some(stored)) => crate::access::can_read_payload(
                self.genesis,
                self.identity,
                &origin.org,
                &stored.envelope.payload,
            ),
            Ok(None) | Err(_) => false,
        };
        self.judged.borrow_mut().insert(origin.attestation, seen);
        seen
    }

    fn can_see_private(&self, origin: &Origin) -> bool {
        // The issuer and full readers read every private field
        // (`ReadPolicy::can_read_private` starts with exactly this test):
        // no statement load per point for them.
        if crate::access::reads_all_of(self.genesis, self.identity, &origin.org) {
            return true;
        }
        if let Some(&seen) = self.judged_private.borrow().get(&origin.attestation) {
            return seen;
        }
        // Judged on the whole signed statement, like the private fields
        // endpoint; a record that cannot be loaded or parsed is not shown.
        let seen = match self.store.attestation(&origin.attestation) {
            Ok(Some(stored)) => {
                Statement::from_payload(&stored.envelope.payload).is_ok_and(|statement| {
                    crate::access::private::can_read_private(
                        self.genesis,
                        self.identity,
                        &statement,
                    )
                })
            }
            Ok(None) | Err(_) => false,
        };
        self.judged_private
            .borrow_mut()
            .insert(origin.attestation, seen);
        seen
    }
}

/// The canonical form of a traceable identifier from a request.
pub fn root_identifier(raw: &str) -> Result<String, TraceError> {
    Identifier::parse(raw)
        .map(|id| id.canonical())
        .map_err(|e| TraceError::BadIdentifier(raw.to_owned(), e.to_string()))
}

/// Standing edges by node and end.
type EdgeMemo = HashMap<(String, End), Vec<At<EdgeRecord>>>;

/// Per-request reading context: the store, what the caller may see, and the
/// retractions met so far (each declaration is looked up once).
pub(crate) struct Reader<'a> {
    pub(crate) store: &'a StoreReader,
    visibility: &'a dyn Visibility,
    declarations: HashMap<(String, String, Position), bool>,
    corrections: BTreeMap<AttestationId, Correction>,
    holders: HashMap<String, Option<(Position, Holder)>>,
    /// Who stated each event met, read once per request.
    pub(crate) origins: Rc<Origins>,
    /// Every event id an error declaration names, when read up front
    /// ([`Reader::know_declarations`]): a record whose event id is not in it
    /// stands without a per-record lookup.
    declared: Option<std::collections::HashSet<String>>,
    /// The standing edges met so far, by node and end, when an analysis
    /// walks many overlapping traces ([`Reader::remember_edges`]).
    edge_memo: Option<EdgeMemo>,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(store: &'a StoreReader, visibility: &'a dyn Visibility) -> Reader<'a> {
        Reader {
            store,
            visibility,
            declarations: HashMap::new(),
            corrections: BTreeMap::new(),
            holders: HashMap::new(),
            origins: Rc::default(),
            declared: None,
            edge_memo: None,
        }
    }

    /// Reads the event ids of every error declaration once (if there are
    /// at most `max`), so that judging many records (a control chart's
    /// measurements) costs one lookup per declaration, not one per record.
    /// The answers are the same as without it.
    pub(crate) fn know_declarations(&mut self, max: usize) -> Result<(), StoreError> {
        if self.declared.is_none() {
            self.declared = self.store.declared_event_ids(max)?;
        }
        Ok(())
    }

    /// Keeps every node's standing edges once read: walks from many roots
    /// that share their upstream (a root cause walks back from every lot of
    /// a product) read each shared node once. The answers are the same as
    /// without it.
    pub(crate) fn remember_edges(&mut self) {
        self.edge_memo.get_or_insert_with(HashMap::new);
    }

    /// Stops remembering edges (and frees those remembered): walks that
    /// share nothing follow.
    pub(crate) fn forget_edges(&mut self) {
        self.edge_memo = None;
    }

    /// The event ids error declarations name, if read up front
    /// ([`Reader::know_declarations`]).
    pub(crate) fn declared_event_ids(&self) -> Option<&std::collections::HashSet<String>> {
        self.declared.as_ref()
    }

    /// True if the caller sees every record `org` states
    /// ([`Visibility::reads_all_of`]).
    pub(crate) fn reads_all_of(&self, org: &str) -> bool {
        self.visibility.reads_all_of(org)
    }

    /// True if the caller may see what this node opened from the record's
    /// private section ([`Visibility::can_see_private`]).
    pub(crate) fn sees_private(&self, origin: &Origin) -> bool {
        self.visibility.can_see_private(origin)
    }

    /// True if the record stands: visible to the caller and not retracted.
    /// A retraction found is remembered as a correction for the answer.
    pub(crate) fn stands(&mut self, at: Position, origin: &Origin) -> Result<bool, StoreError> {
        if !self.visibility.can_see(origin) {
            return Ok(false);
        }
        let Some(event_id) = &origin.event_id else {
            return Ok(true);
        };
        if self
            .declared
            .as_ref()
            .is_some_and(|declared| !declared.contains(event_id))
        {
            return Ok(true);
        }
        let key = (event_id.clone(), origin.org.clone(), at);
        if let Some(&stands) = self.declarations.get(&key) {
            return Ok(stands);
        }
        let declaration = self
            .store
            .declaration(event_id, &origin.org, at, &self.origins)?;
        let stands = match declaration {
            Some((declared_at, declaration)) if self.visibility.can_see(&declaration.origin) => {
                self.corrections
                    .entry(origin.attestation)
                    .or_insert_with(|| Correction {
                        event_id: event_id.clone(),
                        retracted: origin.attestation,
                        declaration: source(declared_at, &declaration.origin),
                        reason: declaration.reason.clone(),
                    });
                false
            }
            _ => true,
        };
        self.declarations.insert(key, stands);
        Ok(stands)
    }

    /// The standing edges at one end of a node (of one kind, if given).
    pub(crate) fn edges(
        &mut self,
        node: &str,
        end: End,
    ) -> Result<Vec<At<EdgeRecord>>, StoreError> {
        if let Some(known) = self
            .edge_memo
            .as_ref()
            .and_then(|memo| memo.get(&(node.to_owned(), end)))
        {
            return Ok(known.clone());
        }
        let all = self.store.edges(node, end, None, &self.origins)?;
        let standing = self.standing(all)?;
        if let Some(memo) = &mut self.edge_memo {
            memo.insert((node.to_owned(), end), standing.clone());
        }
        Ok(standing)
    }

    fn standing(&mut self, edges: Vec<At<EdgeRecord>>) -> Result<Vec<At<EdgeRecord>>, StoreError> {
        let mut out = Vec::new();
        for (at, edge) in edges {
            if self.stands(at, &edge.origin)? {
                out.push((at, edge));
            }
        }
        Ok(out)
    }

    /// The latest standing custody record of the node itself.
    fn own_custody(&mut self, node: &str) -> Result<Option<At<CustodyRecord>>, StoreError> {
        let origins = self.origins.clone();
        self.store
            .latest_custody(node, &origins, |at, record| self.stands(at, &record.origin))
    }

    /// Who holds `node` now: its own latest custody, or a container's if that
    /// is later (a pallet shipped carries its cases and their items).
    fn holder(&mut self, node: &str) -> Result<Option<Holder>, StoreError> {
        self.holder_at_level(node, 0)
            .map(|found| found.map(|(_, holder)| holder))
    }

    fn holder_at_level(
        &mut self,
        node: &str,
        level: u32,
    ) -> Result<Option<(Position, Holder)>, StoreError> {
        if let Some(known) = self.holders.get(node) {
            return Ok(known.clone());
        }
        let mut best: Option<(Position, Holder)> = self.own_custody(node)?.map(|(at, record)| {
            (
                at,
                Holder {
                    org: record.origin.org.clone(),
                    state: record.state.clone(),
                    via: node.to_owned(),
                    source: source(at, &record.origin),
                },
            )
        });
        if level < CONTAINER_LEVELS_MAX {
            let containers =
                self.store
                    .edges(node, End::From, Some(EdgeKind::PackedIn), &self.origins)?;
            for (_, edge) in self.standing(containers)? {
                if let Some((at, holder)) = self.holder_at_level(&edge.other, level + 1)?
                    && best.as_ref().is_none_or(|(b, _)| at > *b)
                {
                    best = Some((at, holder));
                }
            }
        }
        self.holders.insert(node.to_owned(), best.clone());
        Ok(best)
    }

    /// Standing recall orders that name `node` as a suspect.
    fn own_recall(&mut self, node: &str) -> Result<Option<RecallMark>, StoreError> {
        for (at, record) in self.store.recalls(node, &self.origins)? {
            if self.stands(at, &record.origin)? {
                return Ok(Some(RecallMark {
                    recall_id: record.recall_id,
                    class: record.class,
                    reason: record.reason,
                    suspect: node.to_owned(),
                    source: source(at, &record.origin),
                }));
            }
        }
        Ok(None)
    }

    fn corrections(&mut self) -> Vec<Correction> {
        std::mem::take(&mut self.corrections)
            .into_values()
            .collect()
    }
}

pub(crate) fn source(at: Position, origin: &Origin) -> Source {
    Source {
        attestation: origin.attestation,
        height: at.height,
        org: origin.org.clone(),
        event_time: origin.event_time.clone(),
    }
}

/// True if a holder's state is in transit.
pub fn in_transit(holder: &Holder) -> bool {
    matches!(holder.state, CustodyState::InTransit { .. })
}
