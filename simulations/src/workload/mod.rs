//! A deterministic, streaming supply-chain workload: prefilled syringes from
//! raw materials to retail shelves, as EPCIS 2.0 events in causal order,
//! from a few hundred events (the demo) to millions (the benchmarks).
//!
//! ```text
//! supplier      per campaign, a fresh lot of each used-up material:
//!               commission (quantity, ilmd, certificate) at one of 3 plants -> ship
//! manufacturer  receive -> incoming inspection (first delivery: one lot fails,
//!               non-conformance, quarantine)
//!               level 1 mixing / formulating -> 2 forming -> 3 curing
//!               -> 4 filling (sub-assembly) -> 5 assembly: one finished lot,
//!               in-process inspections at every level (one failure, concession)
//!               per pallet: serialise units (SGTIN) -> pack cases (SSCC)
//!               -> pack the pallet (SSCC) -> ship to a distribution centre
//! distributor   receive -> cold storage readings (excursions > 8 CEL in the
//!               first, the last and every 100th campaign; non-conformance) -> unpack pallets -> ship case orders to
//!               retail stores -> store receipt (recadv, recorded by the
//!               distributor: stores are parties, not member orgs)
//! one-offs      a correction (campaign 0: an inspection re-sent with the same
//!               eventID and an errorDeclaration, plus its corrective event);
//!               a recall order by the manufacturer over the first cure-agent
//!               lot (the widest raw lot); the regulator's spot check at a store
//! ```
//!
//! # Planted quality signal
//!
//! [`SupplyChainWorkload::planted`] adds causes for the quality tools to
//! find from the data alone (a drifting supplier, a bad lot whose units fail
//! their end-of-line test more often, a slow cold-chain excursion) and
//! [`Workload::truth`] names them; see `signal.rs`. `lotline demo` loads
//! the planted story; the benchmarks load the plain one.
//!
//! # Shape and scale
//!
//! The process is fixed (`production.rs` draws it): every campaign crosses the
//! same five transformation levels, so a serial always traces back through
//! six TransformationEvents (five levels and its serialisation). A
//! [`Scale`] only sets counts: campaigns, pallets, cases, units, orders and
//! readings. The width comes from lot lifetimes: a cure-agent lot lasts
//! [`Scale::campaigns_per_cure_lot`] campaigns and so reaches that many
//! campaigns' units. [`Scale::for_events`] keeps the shape and picks the
//! number of campaigns, so 100k and 1M events differ only in how many
//! campaigns there are.
//!
//! # Streaming
//!
//! [`Workload`] is an iterator. It generates one campaign at a time into a
//! buffer and drains it, so memory holds one campaign (about 240 events at
//! benchmark shape) and one lot per material, whatever the length of the
//! story. [`WorkloadSummary`] is filled in along the way, not by scanning
//! the events.
//!
//! # Determinism
//!
//! Everything is a pure function of the seed, the [`Scale`] and the
//! [`Roles`]: values come from the simulator's seeded generator
//! ([`crate::sim::rng::Rng`]), event ids from the seed and a counter
//! (`ids::event_id`), never from a clock or the OS. Counts depend on the
//! scale only ([`Scale::event_count`]); the seed changes values (quantities,
//! measurements, times, stores, GTINs, carriers); a planted story's count
//! depends on the seed too (its damaged deliveries), and is known before it
//! is told. Event times increase, except that a
//! re-sent event keeps the time of the event it retracts (its
//! `declarationTime` is new).

mod build;
mod distribution;
mod ids;
mod materials;
mod production;
mod scale;
mod signal;
mod story;
mod summary;
mod supply;

use lotline_core::epcis::Event;

pub use scale::{Scale, Serials};
pub use signal::Truth;
pub use summary::WorkloadSummary;

use signal::Signal;
use story::Story;

/// Cold chain upper limit, degrees Celsius.
pub const COLD_CHAIN_MAX_CEL: f64 = 8.0;

/// The org ids that play each part of the story (genesis org ids).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Roles {
    pub supplier: String,
    pub manufacturer: String,
    pub distributor: String,
    pub regulator: String,
}

impl Roles {
    /// The org ids of `lotline demo`: `supplier`, `manufacturer`,
    /// `distributor`, `regulator`.
    pub fn demo() -> Roles {
        Roles {
            supplier: "supplier".to_owned(),
            manufacturer: "manufacturer".to_owned(),
            distributor: "distributor".to_owned(),
            regulator: "regulator".to_owned(),
        }
    }
}

/// One event and the org that attests it.
#[derive(Clone, Debug, PartialEq)]
pub struct WorkItem {
    /// The issuing org's id.
    pub org: String,
    pub event: Event,
}

/// The supply-chain story generator.
#[derive(Clone, Copy, Debug, Default)]
pub struct SupplyChainWorkload;

impl SupplyChainWorkload {
    /// The story for `seed` at `scale`, with the demo org ids
    /// ([`Roles::demo`]), in causal order.
    pub fn generate(seed: u64, scale: Scale) -> Vec<WorkItem> {
        Self::generate_for(seed, scale, &Roles::demo())
    }

    /// The story for `seed` at `scale`, attested by the given orgs.
    pub fn generate_for(seed: u64, scale: Scale, roles: &Roles) -> Vec<WorkItem> {
        Self::stream(seed, scale, roles).collect()
    }

    /// The story and its summary, collected.
    pub fn generate_with_summary(
        seed: u64,
        scale: Scale,
        roles: &Roles,
    ) -> (Vec<WorkItem>, WorkloadSummary) {
        let mut workload = Self::stream(seed, scale, roles);
        let items: Vec<WorkItem> = workload.by_ref().collect();
        (items, workload.summary().cloned().unwrap_or_default())
    }

    /// The story as a stream, for stories too long to hold in memory.
    pub fn stream(seed: u64, scale: Scale, roles: &Roles) -> Workload {
        Self::stream_with(seed, scale, roles, None)
    }

    /// The story with planted quality causes (`signal.rs`): the plain
    /// story's events and values plus a drifting supplier, a bad lot whose
    /// units fail their functional test more often, a slow cold-chain
    /// excursion and a carrier that damages what it delivers.
    /// [`Workload::truth`] names them once the stream ends.
    pub fn planted(seed: u64, scale: Scale, roles: &Roles) -> Workload {
        let scale = scale.at_least_one();
        Self::stream_with(seed, scale, roles, Some(Signal::new(seed, scale)))
    }

    fn stream_with(seed: u64, scale: Scale, roles: &Roles, signal: Option<Signal>) -> Workload {
        let scale = scale.at_least_one();
        let events = scale.event_count()
            + signal
                .as_ref()
                .map_or(0, |_| signal::extra_events(seed, scale));
        Workload {
            story: Story::new(seed, scale, roles, signal),
            next_campaign: 0,
            remaining: events,
            events,
            summary: None,
        }
    }
}

/// The story, one event at a time (see the module docs on streaming).
#[derive(Debug)]
pub struct Workload {
    story: Story,
    next_campaign: u32,
    remaining: u64,
    /// Events the whole story has (plain or planted).
    events: u64,
    summary: Option<WorkloadSummary>,
}

impl Workload {
    /// The summary, once the iterator has returned `None`.
    pub fn summary(&self) -> Option<&WorkloadSummary> {
        if self.story.out.is_empty() {
            self.summary.as_ref()
        } else {
            None
        }
    }

    /// What a planted story planted, once the iterator has returned `None`
    /// (`None` for a plain story).
    pub fn truth(&self) -> Option<&Truth> {
        self.summary()?;
        self.story.signal.as_ref().map(|s| &s.truth)
    }

    /// The scale being generated (counts raised to at least 1).
    pub fn scale(&self) -> Scale {
        self.story.scale
    }
}

impl Iterator for Workload {
    type Item = WorkItem;

    fn next(&mut self) -> Option<WorkItem> {
        loop {
            if let Some(item) = self.story.out.pop_front() {
                self.remaining = self.remaining.saturating_sub(1);
                return Some(item);
            }
            if self.summary.is_some() {
                return None;
            }
            if self.next_campaign < self.story.scale.campaigns {
                self.story.campaign(self.next_campaign);
                self.next_campaign += 1;
            } else {
                let summary = self.story.epilogue();
                assert_eq!(
                    summary.events, self.events,
                    "Scale::event_count (plus the planted events) disagrees with the story"
                );
                self.summary = Some(summary);
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let remaining = usize::try_from(self.remaining).unwrap_or(usize::MAX);
        (remaining, Some(remaining))
    }
}

impl ExactSizeIterator for Workload {}
