//! Breadth-first walks over the lineage graph, and the trace built from one.

use std::collections::{BTreeSet, HashMap, VecDeque};

use lotline_core::attestation::AttestationId;
use lotline_core::trace::{
    Direction, NodeKind, RecallMark, Trace, TraceEdge, TraceFact, TraceNode,
};

use super::{
    DEPTH_DEFAULT, DEPTH_MAX, PROOFS_MAX, Reader, TRACE_NODES_MAX, TraceError, Visibility, source,
};
use crate::store::StoreReader;
use crate::store::index::Position;
use crate::store::lineage::{EdgeRecord, End};

/// `GET /v1/trace/{id}?direction=&depth=&proofs=`.
#[derive(Clone, Debug)]
pub struct TraceRequest {
    pub root: String,
    pub direction: Direction,
    pub depth: Option<u32>,
    pub proofs: bool,
}

/// Which edges a walk follows, and how far.
pub(crate) struct WalkLimits {
    pub depth: u32,
    pub nodes: usize,
    /// Only edges whose event time is in `[from, until)` (unix ms).
    pub window: (Option<i64>, Option<i64>),
    /// Leave out edges to parties and places (recall follows material only).
    pub material_only: bool,
}

/// An edge met by a walk, oriented in material flow (`from` → `to`).
pub(crate) struct Met {
    pub at: Position,
    pub from: String,
    pub to: String,
    pub record: EdgeRecord,
}

pub(crate) struct Walk {
    /// Nodes in the order reached, with their distance from the nearest root.
    pub nodes: Vec<(String, u32)>,
    pub edges: Vec<Met>,
    pub truncated: bool,
}

/// Walks from `roots` along standing edges at `end` of each node.
pub(crate) fn walk(
    reader: &mut Reader<'_>,
    roots: &[String],
    end: End,
    limits: &WalkLimits,
) -> Result<Walk, TraceError> {
    let mut depth_of: HashMap<String, u32> = HashMap::new();
    let mut queue = VecDeque::new();
    let mut walk = Walk {
        nodes: Vec::new(),
        edges: Vec::new(),
        truncated: false,
    };
    for root in roots {
        if depth_of.insert(root.clone(), 0).is_none() {
            walk.nodes.push((root.clone(), 0));
            queue.push_back((root.clone(), 0));
        }
    }
    while let Some((node, depth)) = queue.pop_front() {
        for (at, record) in reader.edges(&node, end)? {
            if limits.material_only && !record.kind.carries_material() {
                continue;
            }
            let time = record.origin.event_time_ms;
            if limits.window.0.is_some_and(|from| time < from)
                || limits.window.1.is_some_and(|until| time >= until)
            {
                continue;
            }
            if depth >= limits.depth {
                walk.truncated = true;
                break;
            }
            let other = record.other.clone();
            if !depth_of.contains_key(&other) {
                if depth_of.len() >= limits.nodes {
                    walk.truncated = true;
                    continue;
                }
                depth_of.insert(other.clone(), depth + 1);
                walk.nodes.push((other.clone(), depth + 1));
                queue.push_back((other.clone(), depth + 1));
            }
            let (from, to) = match end {
                End::From => (node.clone(), other),
                End::To => (other, node.clone()),
            };
            walk.edges.push(Met {
                at,
                from,
                to,
                record,
            });
        }
    }
    Ok(walk)
}

/// Recall marks for every node of a walk: a node is recalled if a standing
/// recall order names it, or names anything it was made from or packed from
/// within the walk. `inherited` seeds the roots (their own ancestry).
pub(super) fn recall_marks(
    reader: &mut Reader<'_>,
    walk: &Walk,
    inherited: &HashMap<String, RecallMark>,
) -> Result<HashMap<String, RecallMark>, TraceError> {
    let mut parents: HashMap<&str, Vec<&str>> = HashMap::new();
    for edge in &walk.edges {
        if edge.record.kind.carries_material() {
            parents.entry(&edge.to).or_default().push(&edge.from);
        }
    }
    let mut own: HashMap<&str, RecallMark> = HashMap::new();
    for (node, _) in &walk.nodes {
        if let Some(mark) = reader.own_recall(node)? {
            own.insert(node, mark);
        } else if let Some(mark) = inherited.get(node) {
            own.insert(node, mark.clone());
        }
    }
    // Propagate along material flow until nothing changes; each pass is
    // linear and a mark only ever spreads, so this ends within depth passes.
    let mut marks: HashMap<String, RecallMark> = own
        .iter()
        .map(|(node, mark)| ((*node).to_owned(), mark.clone()))
        .collect();
    loop {
        let mut changed = false;
        for (node, _) in &walk.nodes {
            if marks.contains_key(node) {
                continue;
            }
            let inherited = parents
                .get(node.as_str())
                .and_then(|ps| ps.iter().find_map(|p| marks.get(*p)))
                .cloned();
            if let Some(mark) = inherited {
                marks.insert(node.clone(), mark);
                changed = true;
            }
        }
        if !changed {
            return Ok(marks);
        }
    }
}

/// A recall order on anything `root` was made from, within a bounded
/// backward walk: a forward trace or scope starting mid-chain still shows
/// the recall of a raw material upstream.
pub(super) fn ancestry_recall(
    reader: &mut Reader<'_>,
    root: &str,
) -> Result<Option<RecallMark>, TraceError> {
    let limits = WalkLimits {
        depth: DEPTH_MAX,
        nodes: TRACE_NODES_MAX,
        window: (None, None),
        material_only: true,
    };
    let ancestors = walk(reader, &[root.to_owned()], End::To, &limits)?;
    let marks = recall_marks(reader, &ancestors, &HashMap::new())?;
    Ok(marks.get(root).cloned())
}

/// Builds a trace from `request.root`.
pub fn trace(
    store: &StoreReader,
    request: &TraceRequest,
    visibility: &dyn Visibility,
) -> Result<Trace, TraceError> {
    let root = super::root_identifier(&request.root)?;
    let depth = request.depth.unwrap_or(DEPTH_DEFAULT);
    if depth > DEPTH_MAX {
        return Err(TraceError::DepthTooLarge(depth));
    }
    let mut reader = Reader::new(store, visibility);
    let end = match request.direction {
        Direction::Backward => End::To,
        Direction::Forward => End::From,
    };
    let limits = WalkLimits {
        depth,
        nodes: TRACE_NODES_MAX,
        window: (None, None),
        material_only: false,
    };
    let walk = walk(&mut reader, std::slice::from_ref(&root), end, &limits)?;

    let mut inherited = HashMap::new();
    if request.direction == Direction::Forward
        && let Some(mark) = ancestry_recall(&mut reader, &root)?
    {
        inherited.insert(root.clone(), mark);
    }
    let marks = recall_marks(&mut reader, &walk, &inherited)?;

    let mut nodes = Vec::with_capacity(walk.nodes.len());
    let mut facts = Vec::new();
    for (id, node_depth) in &walk.nodes {
        let kind = NodeKind::of(id);
        let holder = if kind.is_unit() {
            reader.holder(id)?
        } else {
            None
        };
        for (at, record) in store.facts(id, &reader.origins)? {
            if reader.stands(at, &record.origin)? {
                facts.push(TraceFact {
                    subject: id.clone(),
                    biz_step: record.origin.biz_step.clone(),
                    quality: record.quality,
                    sensors: record.sensors,
                    disposition: record.disposition,
                    source: source(at, &record.origin),
                });
            }
        }
        nodes.push(TraceNode {
            id: id.clone(),
            kind,
            depth: *node_depth,
            holder,
            recalled: marks.get(id).cloned(),
        });
    }
    let edges = walk
        .edges
        .into_iter()
        .map(|met| TraceEdge {
            from: met.from,
            to: met.to,
            kind: met.record.kind,
            quantity: met.record.quantity,
            source: source(met.at, &met.record.origin),
        })
        .collect();
    let mut trace = Trace {
        root,
        direction: request.direction,
        depth,
        nodes,
        edges,
        facts,
        corrections: reader.corrections(),
        truncated: walk.truncated,
        receipts: Vec::new(),
    };
    if request.proofs {
        attach_receipts(store, &mut trace)?;
    }
    Ok(trace)
}

/// Every attestation a trace cites: edges, facts, holders, recall marks and
/// correction declarations.
pub fn cited(trace: &Trace) -> BTreeSet<AttestationId> {
    let mut ids = BTreeSet::new();
    ids.extend(trace.edges.iter().map(|e| e.source.attestation));
    ids.extend(trace.facts.iter().map(|f| f.source.attestation));
    for node in &trace.nodes {
        ids.extend(node.holder.iter().map(|h| h.source.attestation));
        ids.extend(node.recalled.iter().map(|r| r.source.attestation));
    }
    ids.extend(trace.corrections.iter().map(|c| c.declaration.attestation));
    ids
}

fn attach_receipts(store: &StoreReader, trace: &mut Trace) -> Result<(), TraceError> {
    let ids = cited(trace);
    if ids.len() > PROOFS_MAX {
        return Err(TraceError::TooManyProofs(ids.len()));
    }
    for id in ids {
        if let Some(receipt) = store.receipt(&id)? {
            trace.receipts.push(receipt);
        }
    }
    Ok(())
}
