//! What a generated story contains, recorded while it is generated, so that
//! tests and benchmarks need not re-derive it from a million events.

use std::collections::BTreeMap;

/// The facts of one story that callers query for. Every identifier is the
/// canonical GS1 Digital Link ([`lotline_core::gs1::Identifier::canonical`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WorkloadSummary {
    /// Events generated (equals [`crate::workload::Scale::event_count`]).
    pub events: u64,
    /// Production campaigns.
    pub campaigns: u32,
    /// Raw-material lots commissioned, including the one that failed
    /// incoming inspection.
    pub raw_lots: u64,
    /// Serialised units (SGTINs).
    pub units: u64,
    /// A finished unit whose backward trace is the deepest.
    pub deep_serial: String,
    /// TransformationEvents on the longest backward path from
    /// `deep_serial` to a raw-material lot: five process levels plus the
    /// serialisation that turned the finished lot into units.
    pub deep_levels: u32,
    /// The raw-material lot at the far end of that path.
    pub deep_raw_lot: String,
    /// The raw-material lot that reaches the most units forward (the first
    /// one, if several tie).
    pub wide_raw_lot: String,
    /// Serialised units reachable forward from `wide_raw_lot`.
    pub wide_units: u64,
    /// The raw-material lot in the scope of the recall order.
    pub recalled_lot: String,
    /// `recallId` of the recall order.
    pub recall_id: String,
    /// The eventID that was sent twice: first as an event, then again with
    /// an `errorDeclaration` that retracts it.
    pub corrected_event_id: String,
    /// The event that replaces it (`correctiveEventIDs`).
    pub corrective_event_id: String,
    /// NonConformance quality facts.
    pub non_conformances: u32,
    /// Temperature readings above the cold-chain limit.
    pub excursions: u32,
}

/// Units reached per raw lot while the lot is in use: bounded by the number
/// of lots in stock at once (one per material), because a lot is settled
/// against the running best as soon as a newer lot replaces it.
#[derive(Clone, Debug, Default)]
pub(super) struct Width {
    live: BTreeMap<String, (u64, u64)>,
    best: Option<(u64, u64, String)>,
}

impl Width {
    /// A new raw lot; `order` breaks ties in favour of the earliest lot.
    pub fn open(&mut self, lot: &str, order: u64) {
        assert!(
            self.live.insert(lot.to_owned(), (order, 0)).is_none(),
            "raw lot {lot} opened twice"
        );
    }

    /// `units` more units were made from `lot`.
    pub fn credit(&mut self, lot: &str, units: u64) {
        if let Some((_, reached)) = self.live.get_mut(lot) {
            *reached += units;
        }
    }

    /// `lot` will reach no more units.
    pub fn close(&mut self, lot: &str) {
        let Some((order, reached)) = self.live.remove(lot) else {
            return;
        };
        let better = match &self.best {
            None => true,
            Some((best_reached, best_order, _)) => {
                reached > *best_reached || (reached == *best_reached && order < *best_order)
            }
        };
        if better {
            self.best = Some((reached, order, lot.to_owned()));
        }
    }

    /// Closes every live lot and returns the widest: (lot, units).
    pub fn finish(&mut self) -> (String, u64) {
        let open: Vec<String> = self.live.keys().cloned().collect();
        for lot in open {
            self.close(&lot);
        }
        self.best
            .as_ref()
            .map(|(reached, _, lot)| (lot.clone(), *reached))
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_widest_lot_wins_and_ties_go_to_the_earliest() {
        let mut width = Width::default();
        width.open("a", 0);
        width.open("b", 1);
        width.credit("a", 10);
        width.credit("b", 10);
        width.close("b");
        width.open("c", 2);
        width.credit("c", 5);
        assert_eq!(width.finish(), ("a".to_owned(), 10));

        let mut width = Width::default();
        width.open("a", 0);
        width.credit("a", 1);
        width.open("b", 1);
        width.credit("b", 2);
        assert_eq!(width.finish(), ("b".to_owned(), 2));
    }
}
