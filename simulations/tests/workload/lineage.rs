//! An independent reading of a generated story: the lineage graph, custody
//! and causal order recomputed from the events alone, with none of the
//! generator's bookkeeping, so that a bug in the generator's summary can not
//! hide behind the same bug here (the commonware `invariants.rs` habit).

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use lotline_core::epcis::{Action, Event, EventType, QualityFact};
use lotline_core::gs1::Identifier;
use lotline_sim::WorkItem;

/// The canonical form; panics on an identifier that does not parse, which
/// is itself a failure of the story.
pub fn canonical(id: &str) -> String {
    parsed(id).0
}

/// The canonical form and whether it names a serialised unit. Parsed once
/// per distinct string: a unit is named by its serialisation and by its
/// case, and parsing dominates a debug build's test time.
fn parsed(id: &str) -> (String, bool) {
    thread_local! {
        static SEEN: RefCell<HashMap<String, (String, bool)>> = RefCell::new(HashMap::new());
    }
    SEEN.with(|seen| {
        if let Some(known) = seen.borrow().get(id) {
            return known.clone();
        }
        let identifier = Identifier::parse(id).unwrap_or_else(|e| panic!("{id}: {e}"));
        let answer = (
            identifier.canonical(),
            matches!(identifier, Identifier::Item { .. }),
        );
        seen.borrow_mut().insert(id.to_owned(), answer.clone());
        answer
    })
}

/// Transformation edges (input -> output) between canonical identifiers,
/// plus what the graph needs to answer depth and width questions. Nodes
/// are interned to indices so that a walk per raw lot stays cheap in a
/// debug build.
#[derive(Default)]
pub struct Lineage {
    index: BTreeMap<String, usize>,
    names: Vec<String>,
    forward: Vec<Vec<usize>>,
    backward: Vec<Vec<usize>>,
    is_item: Vec<bool>,
    /// Lots the supplier commissioned (ObjectEvent ADD with quantities).
    pub raw_lots: Vec<String>,
}

impl Lineage {
    pub fn of(items: &[WorkItem]) -> Lineage {
        let mut lineage = Lineage::default();
        for item in items {
            let event = &item.event;
            if event.error_declaration.is_some() {
                continue;
            }
            if event.event_type == EventType::ObjectEvent
                && event.action == Some(Action::Add)
                && item.org == "supplier"
            {
                for q in &event.quantity_list {
                    lineage.raw_lots.push(canonical(&q.epc_class));
                }
            }
            if event.event_type != EventType::TransformationEvent {
                continue;
            }
            let inputs: Vec<usize> = event
                .input_quantity_list
                .iter()
                .map(|q| q.epc_class.as_str())
                .chain(event.input_epc_list.iter().map(String::as_str))
                .map(|id| lineage.node(id))
                .collect();
            let outputs: Vec<usize> = event
                .output_quantity_list
                .iter()
                .map(|q| q.epc_class.as_str())
                .chain(event.output_epc_list.iter().map(String::as_str))
                .map(|id| lineage.node(id))
                .collect();
            for output in outputs {
                for input in &inputs {
                    lineage.add(*input, output);
                }
            }
        }
        lineage
    }

    /// The node of an identifier as sent, created on first sight.
    fn node(&mut self, id: &str) -> usize {
        let (name, is_item) = parsed(id);
        if let Some(node) = self.index.get(&name) {
            return *node;
        }
        let node = self.names.len();
        self.is_item.push(is_item);
        self.index.insert(name.clone(), node);
        self.names.push(name);
        self.forward.push(Vec::new());
        self.backward.push(Vec::new());
        node
    }

    fn add(&mut self, from: usize, to: usize) {
        self.forward[from].push(to);
        self.backward[to].push(from);
    }

    /// The longest backward path from `id`, in transformation edges, and
    /// the node at its far end (the first found among equals).
    pub fn depth(&self, id: &str) -> (u32, String) {
        let Some(&start) = self.index.get(id) else {
            return (0, id.to_owned());
        };
        let mut memo = BTreeMap::new();
        let (depth, origin) = self.depth_memo(start, &mut memo);
        (depth, self.names[origin].clone())
    }

    fn depth_memo(&self, node: usize, memo: &mut BTreeMap<usize, (u32, usize)>) -> (u32, usize) {
        if let Some(known) = memo.get(&node) {
            return *known;
        }
        let mut best = (0, node);
        for &input in &self.backward[node] {
            let (depth, origin) = self.depth_memo(input, memo);
            if depth + 1 > best.0 {
                best = (depth + 1, origin);
            }
        }
        memo.insert(node, best);
        best
    }

    /// Serialised units reachable forward from `id`.
    pub fn units_from(&self, id: &str) -> u64 {
        let Some(&start) = self.index.get(id) else {
            return 0;
        };
        let mut seen = vec![false; self.names.len()];
        seen[start] = true;
        let mut stack = vec![start];
        let mut units = 0;
        while let Some(node) = stack.pop() {
            units += u64::from(self.is_item[node]);
            for &next in &self.forward[node] {
                if !seen[next] {
                    seen[next] = true;
                    stack.push(next);
                }
            }
        }
        units
    }

    /// Kahn's algorithm over every node: true when the graph has a cycle.
    pub fn has_cycle(&self) -> bool {
        let mut indegree: Vec<usize> = self.backward.iter().map(Vec::len).collect();
        let mut ready: Vec<usize> = (0..indegree.len()).filter(|n| indegree[*n] == 0).collect();
        let mut removed = 0;
        while let Some(node) = ready.pop() {
            removed += 1;
            for &to in &self.forward[node] {
                indegree[to] -= 1;
                if indegree[to] == 0 {
                    ready.push(to);
                }
            }
        }
        removed != indegree.len()
    }

    /// Adds the edge `from -> to` (for the positive control of the cycle
    /// check).
    pub fn add_edge(&mut self, from: &str, to: &str) {
        let (from, to) = (self.node(from), self.node(to));
        self.add(from, to);
    }
}

/// Identifiers an event brings into existence.
fn created(event: &Event) -> Vec<String> {
    let mut ids = Vec::new();
    match (event.event_type, event.action) {
        (EventType::ObjectEvent, Some(Action::Add)) => {
            ids.extend(event.epc_list.iter().map(|e| canonical(e)));
            ids.extend(event.quantity_list.iter().map(|q| canonical(&q.epc_class)));
        }
        (EventType::TransformationEvent, _) => {
            ids.extend(event.output_epc_list.iter().map(|e| canonical(e)));
            ids.extend(
                event
                    .output_quantity_list
                    .iter()
                    .map(|q| canonical(&q.epc_class)),
            );
        }
        (EventType::AggregationEvent, Some(Action::Add)) => {
            ids.extend(event.parent_id.iter().map(|p| canonical(p)));
        }
        _ => {}
    }
    ids
}

/// Identifiers an event needs to exist already.
fn used(event: &Event) -> Vec<String> {
    let mut ids: Vec<String> = event
        .input_quantity_list
        .iter()
        .map(|q| canonical(&q.epc_class))
        .chain(event.input_epc_list.iter().map(|e| canonical(e)))
        .chain(event.child_epcs.iter().map(|e| canonical(e)))
        .collect();
    let adds = event.action == Some(Action::Add);
    if event.event_type == EventType::ObjectEvent && !adds {
        ids.extend(event.epc_list.iter().map(|e| canonical(e)));
        ids.extend(event.quantity_list.iter().map(|q| canonical(&q.epc_class)));
    }
    if event.event_type == EventType::AggregationEvent && !adds {
        ids.extend(event.parent_id.iter().map(|p| canonical(p)));
    }
    if let Some(QualityFact::RecallOrder { scope, .. }) = &event.quality {
        ids.extend(scope.iter().map(|s| canonical(s)));
    }
    ids
}

/// Every identifier is created once, before any event uses it. With
/// transformation outputs always new, this also rules out cycles by
/// construction; [`Lineage::has_cycle`] checks that directly as well.
pub fn check_created_before_used(items: &[WorkItem]) -> Result<(), String> {
    let mut known = BTreeSet::new();
    for (index, item) in items.iter().enumerate() {
        let event = &item.event;
        if event.error_declaration.is_some() {
            continue;
        }
        for id in used(event) {
            if !known.contains(&id) {
                return Err(format!("event {index} uses {id} before it exists"));
            }
        }
        for id in created(event) {
            if !known.insert(id.clone()) {
                return Err(format!("event {index} creates {id} a second time"));
            }
        }
    }
    Ok(())
}

/// The party GLN (Digital Link) an org acts as in the demo roles: location
/// reference 00001 under the org's GS1 company prefix.
fn party_of(org: &str) -> Option<String> {
    let prefix = match org {
        "supplier" => "9506001",
        "manufacturer" => "9506002",
        "distributor" => "9506003",
        _ => return None,
    };
    let body = format!("{prefix}00001");
    let check = lotline_core::gs1::check_digit(&body)?;
    Some(format!("https://id.gs1.org/414/{body}{check}"))
}

/// Custody: only the party holding goods ships them, the org attesting a
/// shipment is that party, and a receipt names the destination of the
/// shipment in transit. Containers pass custody to their contents.
pub fn check_custody(items: &[WorkItem]) -> Result<(), String> {
    let mut holder: BTreeMap<String, String> = BTreeMap::new();
    let mut in_transit: BTreeMap<String, String> = BTreeMap::new();
    let mut contents: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (index, item) in items.iter().enumerate() {
        let event = &item.event;
        let ids: Vec<String> = event
            .epc_list
            .iter()
            .map(|e| canonical(e))
            .chain(event.quantity_list.iter().map(|q| canonical(&q.epc_class)))
            .collect();
        let owner = |kind: &str| -> Option<String> {
            event
                .source_list
                .iter()
                .find(|s| s.kind == kind)
                .map(|s| s.source.clone())
        };
        let destination = event
            .destination_list
            .iter()
            .find(|d| d.kind == "owning_party")
            .map(|d| d.destination.clone());
        match event.biz_step.as_deref() {
            Some("commissioning") => {
                let party = party_of(&item.org).ok_or("unknown org")?;
                for id in created(event) {
                    holder.insert(id, party.clone());
                }
            }
            Some("packing") => {
                let parent = canonical(event.parent_id.as_deref().unwrap_or_default());
                let children: Vec<String> = event.child_epcs.iter().map(|c| canonical(c)).collect();
                let party = party_of(&item.org).ok_or("unknown org")?;
                for child in &children {
                    if holder.get(child) != Some(&party) {
                        return Err(format!(
                            "event {index}: {} packs {child} it does not hold",
                            item.org
                        ));
                    }
                }
                holder.insert(parent.clone(), party.clone());
                contents.insert(parent, children);
            }
            Some("shipping") => {
                let source = owner("owning_party").ok_or(format!("event {index}: no source"))?;
                if party_of(&item.org).as_ref() != Some(&source) {
                    return Err(format!("event {index}: {} ships as {source}", item.org));
                }
                let to = destination
                    .clone()
                    .ok_or(format!("event {index}: no destination"))?;
                for id in &ids {
                    if holder.get(id) != Some(&source) {
                        return Err(format!(
                            "event {index}: {source} ships {id} held by {:?}",
                            holder.get(id)
                        ));
                    }
                    in_transit.insert(id.clone(), to.clone());
                }
            }
            Some("receiving") => {
                let to = destination.ok_or(format!("event {index}: no destination"))?;
                for id in &ids {
                    if in_transit.remove(id).as_ref() != Some(&to) {
                        return Err(format!(
                            "event {index}: {id} received at {to} without a shipment there"
                        ));
                    }
                    let mut stack = vec![id.clone()];
                    while let Some(node) = stack.pop() {
                        stack.extend(contents.get(&node).into_iter().flatten().cloned());
                        holder.insert(node, to.clone());
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}
