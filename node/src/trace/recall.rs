//! Recall scope: from suspect lots forward to every affected lot, serial and
//! container, with who holds each now and the stated quantities.

use std::collections::{BTreeMap, HashMap};

use lotline_core::lineage::Quantity;
use lotline_core::time;
use lotline_core::trace::{
    AffectedUnit, HolderCount, NodeKind, RecallScope, RecallScopeRequest, ScopeTotals,
};

use super::graph::{WalkLimits, ancestry_recall, recall_marks, walk};
use super::{DEPTH_MAX, Reader, SCOPE_UNITS_MAX, TraceError, Visibility, in_transit};
use crate::store::StoreReader;
use crate::store::lineage::End;

/// Most suspects one request may name.
pub const SUSPECTS_MAX: usize = 1_000;

/// The request body, as the API receives it.
pub type RecallRequest = RecallScopeRequest;

/// Computes the recall scope of `request.suspects`.
pub fn recall_scope(
    store: &StoreReader,
    request: &RecallScopeRequest,
    visibility: &dyn Visibility,
) -> Result<RecallScope, TraceError> {
    if request.suspects.is_empty() {
        return Err(TraceError::BadRequest {
            field: "suspects",
            reason: "name at least one suspect lot or item".to_owned(),
        });
    }
    if request.suspects.len() > SUSPECTS_MAX {
        return Err(TraceError::BadRequest {
            field: "suspects",
            reason: format!("at most {SUSPECTS_MAX} suspects per request"),
        });
    }
    let mut suspects = Vec::with_capacity(request.suspects.len());
    for raw in &request.suspects {
        let id = super::root_identifier(raw)?;
        if !suspects.contains(&id) {
            suspects.push(id);
        }
    }
    let bound = |field: &'static str, value: &Option<String>| {
        value
            .as_deref()
            .map(time::parse_rfc3339_ms)
            .transpose()
            .map_err(|e| TraceError::BadRequest {
                field,
                reason: e.to_string(),
            })
    };
    let window = (
        bound("from", &request.from)?,
        bound("until", &request.until)?,
    );
    if let (Some(from), Some(until)) = window
        && from >= until
    {
        return Err(TraceError::BadRequest {
            field: "until",
            reason: "must be after `from`".to_owned(),
        });
    }

    let mut reader = Reader::new(store, visibility);
    let limits = WalkLimits {
        depth: DEPTH_MAX,
        nodes: SCOPE_UNITS_MAX,
        window,
        material_only: true,
    };
    let walk = walk(&mut reader, &suspects, End::From, &limits)?;
    let mut inherited = HashMap::new();
    for suspect in &suspects {
        if let Some(mark) = ancestry_recall(&mut reader, suspect)? {
            inherited.insert(suspect.clone(), mark);
        }
    }
    let marks = recall_marks(&mut reader, &walk, &inherited)?;

    let mut quantities: HashMap<&str, Quantity> = HashMap::new();
    for edge in &walk.edges {
        if let Some(quantity) = &edge.record.quantity {
            quantities
                .entry(edge.to.as_str())
                .or_insert_with(|| quantity.clone());
        }
    }

    let mut totals = ScopeTotals::default();
    let mut by_uom: BTreeMap<String, f64> = BTreeMap::new();
    let mut by_holder: BTreeMap<(String, bool), u64> = BTreeMap::new();
    let mut units = Vec::new();
    for (id, depth) in &walk.nodes {
        let kind = NodeKind::of(id);
        if !kind.is_unit() {
            continue;
        }
        let holder = reader.holder(id)?;
        let quantity = quantities.get(id.as_str()).cloned();
        totals.units += 1;
        match kind {
            NodeKind::Item => totals.items += 1,
            NodeKind::Lot | NodeKind::Product => {
                totals.lots += 1;
                if let Some(q) = &quantity {
                    *by_uom.entry(q.uom.clone().unwrap_or_default()).or_default() += q.value;
                }
            }
            NodeKind::Container => totals.containers += 1,
            NodeKind::Location | NodeKind::Other => {}
        }
        if let Some(holder) = &holder {
            *by_holder
                .entry((holder.org.clone(), in_transit(holder)))
                .or_default() += 1;
        }
        units.push(AffectedUnit {
            id: id.clone(),
            kind,
            depth: *depth,
            quantity,
            holder,
            recalled: marks.get(id).cloned(),
        });
    }
    totals.quantities = by_uom
        .into_iter()
        .map(|(uom, value)| Quantity {
            value,
            uom: (!uom.is_empty()).then_some(uom),
        })
        .collect();
    totals.by_holder = by_holder
        .into_iter()
        .map(|((org, in_transit), units)| HolderCount {
            org,
            in_transit,
            units,
        })
        .collect();
    Ok(RecallScope {
        suspects,
        units,
        totals,
        corrections: reader.corrections(),
        truncated: walk.truncated,
    })
}
