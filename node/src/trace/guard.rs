//! Lineage checks of a client's submission against the committed chain:
//! an org may only consume, pack or ship goods it holds, and no event may
//! make an identifier its own ancestor.
//!
//! Judged on committed state only, and leniently where the chain cannot know:
//! goods in transit may be acted on by anyone (the receiver's `receiving`
//! may not be committed yet, and parties are GLNs, not org ids), and
//! identifiers the chain has never seen are new. Peers' proposals are never
//! judged by this (see [`crate::admission::StatementGuard`]).

use lotline_core::epcis::{Action, Event, EventType};
use lotline_core::lineage::{CustodyState, canonical};
use lotline_core::statement::Statement;

use super::graph::{WalkLimits, walk};
use super::{Reader, SeeAll};
use crate::admission::{AdmissionError, LineageProblem, StatementGuard};
use crate::parsed::ParsedStatement;
use crate::store::StoreReader;
use crate::store::lineage::End;

/// How far a cycle check looks; a larger ancestry is not checked (the
/// graph walk is cycle-safe either way).
const CYCLE_WALK_NODES_MAX: usize = 5_000;

/// The guard client submissions pass through.
#[derive(Clone, Debug)]
pub struct LineageGuard {
    store: StoreReader,
}

impl LineageGuard {
    pub fn new(store: StoreReader) -> LineageGuard {
        LineageGuard { store }
    }
}

impl StatementGuard for LineageGuard {
    fn check(&self, statement: &ParsedStatement) -> Vec<AdmissionError> {
        match check(&self.store, statement) {
            Ok(problems) => problems.into_iter().map(AdmissionError::Lineage).collect(),
            Err(error) => {
                // A store read failing must not block writes: the chain stays
                // the judge of what commits. Log and let it through.
                tracing::warn!(%error, "lineage check skipped: store read failed");
                Vec::new()
            }
        }
    }
}

/// The identifiers an event consumes, packs or ships, with their field path.
fn acted_on(event: &Event) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut add = |field: String, id: &str| out.push((field, canonical(id)));
    match event.event_type {
        EventType::TransformationEvent => {
            for (i, id) in event.input_epc_list.iter().enumerate() {
                add(format!("inputEPCList[{i}]"), id);
            }
            for (i, q) in event.input_quantity_list.iter().enumerate() {
                add(format!("inputQuantityList[{i}].epcClass"), &q.epc_class);
            }
        }
        EventType::AggregationEvent if event.action == Some(Action::Add) => {
            for (i, id) in event.child_epcs.iter().enumerate() {
                add(format!("childEPCs[{i}]"), id);
            }
        }
        _ => {}
    }
    let shipping = event
        .biz_step_short()
        .is_some_and(|s| s == "shipping" || s == "departing");
    if shipping {
        for (i, id) in event.epc_list.iter().enumerate() {
            add(format!("epcList[{i}]"), id);
        }
        for (i, q) in event.quantity_list.iter().enumerate() {
            add(format!("quantityList[{i}].epcClass"), &q.epc_class);
        }
        if let Some(parent) = &event.parent_id {
            add("parentID".to_owned(), parent);
        }
    }
    out
}

fn check(
    store: &StoreReader,
    statement: &Statement,
) -> Result<Vec<LineageProblem>, super::TraceError> {
    let event = &statement.event;
    if event.error_declaration.is_some() {
        // A declaration repeats the event it retracts; custody has moved on.
        return Ok(Vec::new());
    }
    let mut reader = Reader::new(store, &SeeAll);
    let mut problems = Vec::new();
    for (field, id) in acted_on(event) {
        let Some(holder) = reader.holder(&id)? else {
            continue;
        };
        match holder.state {
            CustodyState::Held { .. } if holder.org != statement.org => {
                problems.push(LineageProblem::NotHolder {
                    field,
                    id,
                    holder: holder.org,
                });
            }
            CustodyState::Ended => problems.push(LineageProblem::Ended { field, id }),
            _ => {}
        }
    }
    problems.extend(cycles(&mut reader, event)?);
    Ok(problems)
}

/// An output (or container) that is already an ancestor of an input (or
/// child) would close a cycle.
fn cycles(
    reader: &mut Reader<'_>,
    event: &Event,
) -> Result<Vec<LineageProblem>, super::TraceError> {
    let (sources, targets): (Vec<String>, Vec<(String, String)>) = match event.event_type {
        EventType::TransformationEvent => (
            event
                .input_epc_list
                .iter()
                .map(|s| canonical(s))
                .chain(
                    event
                        .input_quantity_list
                        .iter()
                        .map(|q| canonical(&q.epc_class)),
                )
                .collect(),
            event
                .output_epc_list
                .iter()
                .enumerate()
                .map(|(i, s)| (format!("outputEPCList[{i}]"), canonical(s)))
                .chain(event.output_quantity_list.iter().enumerate().map(|(i, q)| {
                    (
                        format!("outputQuantityList[{i}].epcClass"),
                        canonical(&q.epc_class),
                    )
                }))
                .collect(),
        ),
        EventType::AggregationEvent | EventType::AssociationEvent
            if event.action == Some(Action::Add) =>
        {
            let Some(parent) = &event.parent_id else {
                return Ok(Vec::new());
            };
            (
                event.child_epcs.iter().map(|s| canonical(s)).collect(),
                vec![("parentID".to_owned(), canonical(parent))],
            )
        }
        _ => return Ok(Vec::new()),
    };
    if sources.is_empty() || targets.is_empty() {
        return Ok(Vec::new());
    }
    let limits = WalkLimits {
        depth: super::DEPTH_MAX,
        nodes: CYCLE_WALK_NODES_MAX,
        window: (None, None),
        material_only: true,
    };
    let ancestry = walk(reader, &sources, End::To, &limits)?;
    Ok(targets
        .into_iter()
        .filter(|(_, target)| ancestry.nodes.iter().any(|(node, _)| node == target))
        .map(|(field, id)| LineageProblem::Cycle { field, id })
        .collect())
}
