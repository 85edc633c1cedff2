//! Root-cause localisation: which upstream factors do the bad units share
//! more than the good units of the same products do?
//!
//! ```text
//! bad ids (serials, lots, containers, attestation ids)
//!   -> bad units (serialised items; a lot or container stands for the
//!      units it reaches forward, an attestation for the units its event names)
//!   -> products: the GTINs of the bad units
//!   -> population: every unit serialised from a lot of those GTINs
//!      (the lots' unit records kept at commit, `exposure::Serials`)
//!   -> factors of each finished lot, shared by all its units: every lot
//!      and material its backward trace reaches, and its production day
//!   -> factors of each bad unit: the containers it was packed in, the
//!      parties those were shipped to and the carriers that carried them
//!      (their units from the contents kept at commit, `exposure`)
//!   -> factors with identical exposure are one finding (confounded: the
//!      data cannot tell them apart, and the answer says so)
//!   -> one-sided Fisher exact test per finding, Benjamini-Hochberg over all
//!      findings tested, ranked by p, then lift
//! ```
//!
//! Each finding carries its 2x2 counts and up to three trace paths from the
//! factor to an exposed bad unit, every step naming the attestation (and
//! height) that states it, so an engineer can check each link.
//!
//! Work: one backward walk per finished lot of the products over edges
//! each read once (the reader remembers them: the lots of a campaign share
//! their whole upstream), a forward walk per bad unit, and one range read
//! per product and per container or destination of a bad unit, whose
//! records hold integers (unit fingerprints), not strings; never a walk
//! per unit of the population, never a scan of the whole store. Every
//! record, and every packing event inside a content, is judged by the read
//! policy and against retractions (`exposure::Judge`, `trace::Reader`).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use lotline_core::attestation::AttestationId;
use lotline_core::gs1::{CANONICAL_HOST, Identifier};
use lotline_core::lineage::EdgeKind;
use lotline_core::statement::Statement;
use serde::{Deserialize, Serialize};

use super::exposure::{CONTAINER_LEVELS_MAX, Held, Judge, Serials};
use super::series::SeriesError;
use super::stats::{self, LogFactorials, Table};
use crate::store::lineage::{EdgeRecord, End, Origin};
use crate::store::{StoreError, StoreReader};
use crate::trace::{
    DEPTH_DEFAULT, Met, Reader, TRACE_NODES_MAX, TraceError, Visibility, WalkLimits, walk,
};

/// Most ids one request may name.
pub const BAD_IDS_MAX: usize = 10_000;
/// Most failed measurements a `failing` query may name.
pub const FAILING_MAX: usize = 100_000;
/// Most findings an answer lists.
pub const FINDINGS_MAX: usize = 50;
/// Trace paths per finding.
pub const EVIDENCE_PATHS_MAX: usize = 3;
/// Most finished lots (of the bad units' products) one analysis walks.
pub const LOTS_MAX: usize = 20_000;
/// Most units a population may hold.
pub const POPULATION_MAX: u64 = 5_000_000;
/// Error declarations read up front (more: each record's is looked up).
pub(crate) const DECLARATIONS_PRELOAD_MAX: usize = 10_000;

/// `POST /v1/root-cause`: the bad units by id, by a failing measurement,
/// or both (their union).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RootCauseRequest {
    /// Serials, lots or containers (Digital Link or EPC URN) or attestation
    /// ids whose units are bad.
    #[serde(default)]
    pub bad: Vec<String>,
    /// Every unit or lot of a product class whose measurement of a
    /// characteristic lies outside the specification limits it was stated
    /// with: "the units that failed the end-of-line test".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failing: Option<Failing>,
}

/// A query for bad units: the failed measurements of one series (the
/// series a control chart draws, `GET /v1/spc/{gtin}/{characteristic}`).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Failing {
    pub gtin: String,
    pub characteristic: String,
}

#[derive(Debug, thiserror::Error)]
pub enum RootCauseError {
    #[error("bad must name at most {BAD_IDS_MAX} ids, not {0}, and bad or failing must name some")]
    BadCount(usize),
    #[error("more than {FAILING_MAX} measurements of the failing series are out of specification")]
    TooManyFailing,
    #[error(
        "no visible measurement of {characteristic:?} for GTIN {gtin} lies outside its specification limits"
    )]
    NothingFailed {
        gtin: String,
        characteristic: String,
    },
    #[error(transparent)]
    Series(#[from] SeriesError),
    #[error("none of the ids names a unit this caller may see: {0}")]
    NoUnits(String),
    #[error("the products of the bad units have more than {LOTS_MAX} lots")]
    TooManyLots,
    #[error("the products of the bad units have more than {POPULATION_MAX} units")]
    TooManyUnits,
    #[error(transparent)]
    Trace(#[from] TraceError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// How the two ends of an evidence step are linked: a lineage edge, or a
/// shipment's carrier (which is no edge of the lineage: the goods went to
/// their next owner, the carrier only held them on the way).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum LinkKind {
    TransformedInto,
    Serialised,
    PackedIn,
    AssociatedWith,
    ShippedTo,
    /// `from` was carried by the carrier `to` (the party a shipment names
    /// as the goods' possessing party on their way, `lineage::carrier`).
    CarriedBy,
}

impl From<EdgeKind> for LinkKind {
    fn from(kind: EdgeKind) -> LinkKind {
        match kind {
            EdgeKind::TransformedInto => LinkKind::TransformedInto,
            EdgeKind::Serialised => LinkKind::Serialised,
            EdgeKind::PackedIn => LinkKind::PackedIn,
            EdgeKind::AssociatedWith => LinkKind::AssociatedWith,
            EdgeKind::ShippedTo => LinkKind::ShippedTo,
        }
    }
}

/// One link of a trace path, in material flow.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Step {
    pub from: String,
    pub to: String,
    pub kind: LinkKind,
    pub attestation: AttestationId,
    pub height: u64,
    pub event_time: String,
}

/// How one bad unit is exposed to a factor.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Evidence {
    pub unit: String,
    pub path: Vec<Step>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum FactorKind {
    /// A lot (raw material, intermediate or finished) upstream of units.
    Lot,
    /// Another class or item upstream (a product class, a serialised part).
    Material,
    /// A transformation step and where it ran (`bizStep` at `readPoint`:
    /// a line, a cell, a machine) upstream of units, across the lots it
    /// made: "every lot assembled on line 2".
    ProcessStep,
    /// The day the units' finished lot was made (UTC).
    ProductionDay,
    /// A case or pallet (SSCC) units were packed in.
    Container,
    /// A party or place units were shipped to.
    Destination,
    /// A haulier that carried units (`carrier:<party>`: the possessing
    /// party a shipment names beside the goods' next owner).
    Carrier,
}

/// How a carrier is named as a factor (its party id after the prefix).
const CARRIER_FACTOR: &str = "carrier:";

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    pub factor: String,
    pub kind: FactorKind,
    /// Factors with exactly the same exposure (the data cannot separate
    /// them from `factor`).
    pub confounded: Vec<String>,
    pub bad_exposed: u64,
    pub good_exposed: u64,
    pub bad_unexposed: u64,
    pub good_unexposed: u64,
    /// Bad rate among the exposed over the bad rate among all units.
    pub lift: f64,
    pub p_value: f64,
    /// Benjamini-Hochberg adjusted over every finding tested.
    pub q_value: f64,
    pub evidence: Vec<Evidence>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Unresolved {
    pub id: String,
    pub reason: String,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Population {
    /// GTINs of the bad units.
    pub products: Vec<String>,
    pub lots: usize,
    pub units: u64,
    pub bad_units: u64,
}

/// The answer of `POST /v1/root-cause`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RootCause {
    pub population: Population,
    pub unresolved: Vec<Unresolved>,
    /// Findings tested (the m of the Benjamini-Hochberg adjustment).
    pub tested: usize,
    pub findings: Vec<Finding>,
    pub method: &'static str,
}

const METHOD: &str = "one-sided Fisher exact test per factor (bad units over-represented among \
     the units exposed to it), Benjamini-Hochberg adjusted; population: every unit serialised \
     from a lot of the bad units' products";

/// The link by which a walk reached a node, towards its root.
#[derive(Clone, Debug)]
struct Link {
    toward: String,
    step: Step,
}

/// What a finished lot's units share.
#[derive(Debug, Default)]
struct LotFactors {
    /// Upstream node -> the link towards the finished lot.
    links: HashMap<String, Link>,
    factors: Vec<(String, FactorKind)>,
}

/// Ranks the factors the bad units share (see the module doc).
pub fn root_cause(
    store: &StoreReader,
    request: &RootCauseRequest,
    visibility: &dyn Visibility,
) -> Result<RootCause, RootCauseError> {
    if request.bad.len() > BAD_IDS_MAX || (request.bad.is_empty() && request.failing.is_none()) {
        return Err(RootCauseError::BadCount(request.bad.len()));
    }
    let mut reader = Reader::new(store, visibility);
    let failed = match &request.failing {
        Some(failing) => failed_subjects(&mut reader, failing)?,
        None => Vec::new(),
    };
    if let Some(failing) = &request.failing
        && failed.is_empty()
        && request.bad.is_empty()
    {
        return Err(RootCauseError::NothingFailed {
            gtin: lotline_core::api::excerpt(&failing.gtin),
            characteristic: lotline_core::api::excerpt(&failing.characteristic),
        });
    }
    // The lots of a product share their upstream (every lot of a campaign
    // the same materials): each node's edges are read once for all walks.
    reader.remember_edges();
    reader.know_declarations(DECLARATIONS_PRELOAD_MAX)?;
    let mut unresolved = Vec::new();
    let mut bad = BTreeSet::new();
    for id in request.bad.iter().chain(&failed) {
        match resolve(&mut reader, visibility, id)? {
            Ok(units) if !units.is_empty() => bad.extend(units),
            Ok(_) => unresolved.push(Unresolved {
                id: lotline_core::api::excerpt(id),
                reason: "reaches no serialised unit".to_owned(),
            }),
            Err(reason) => unresolved.push(Unresolved {
                id: lotline_core::api::excerpt(id),
                reason,
            }),
        }
    }

    // The population: every unit of the bad units' products, by lot, from
    // the lots' unit records kept at commit (`exposure`).
    let products: BTreeSet<String> = bad
        .iter()
        .filter_map(|unit| match Identifier::parse(unit) {
            Ok(Identifier::Item { gtin, .. }) => Some(gtin.as_str().to_owned()),
            _ => None,
        })
        .collect();
    let stems: Vec<String> = products
        .iter()
        .map(|gtin| format!("{CANONICAL_HOST}/01/{gtin}/10/"))
        .collect();
    let population = Serials::read(&mut reader, &stems)?;
    if population.units() > POPULATION_MAX {
        return Err(RootCauseError::TooManyUnits);
    }
    let units_of = population.units_of();
    if units_of.len() > LOTS_MAX {
        return Err(RootCauseError::TooManyLots);
    }
    for unit in &bad {
        if population.place(unit).is_none() {
            unresolved.push(Unresolved {
                id: unit.clone(),
                reason: "no visible serialisation from a lot".to_owned(),
            });
        }
    }
    bad.retain(|unit| population.place(unit).is_some());
    if bad.is_empty() {
        let names: Vec<&str> = unresolved.iter().map(|u| u.reason.as_str()).collect();
        return Err(RootCauseError::NoUnits(names.join("; ")));
    }
    let total = population.units();
    let bad_total = bad.len() as u64;

    // Lot-level factors: what each finished lot's backward trace reaches.
    let mut lot_factors: BTreeMap<String, LotFactors> = BTreeMap::new();
    for lot in units_of.keys() {
        lot_factors.insert((*lot).to_owned(), upstream(&mut reader, lot)?);
    }
    // Exposure by factor: which finished lots (all their units) carry it.
    let mut lots_of_factor: BTreeMap<(String, FactorKind), BTreeSet<&str>> = BTreeMap::new();
    for (lot, factors) in &lot_factors {
        for factor in &factors.factors {
            lots_of_factor
                .entry(factor.clone())
                .or_default()
                .insert(lot.as_str());
        }
    }
    let mut bad_per_lot: HashMap<&str, u64> = HashMap::new();
    for unit in &bad {
        if let Some(lot) = population.lot_of(unit) {
            *bad_per_lot.entry(lot).or_default() += 1;
        }
    }
    // Findings keyed by exposure, so confounded factors merge.
    let mut by_exposure: BTreeMap<Exposure, Vec<(String, FactorKind)>> = BTreeMap::new();
    for (factor, lots) in &lots_of_factor {
        let exposed: u64 = lots.iter().map(|l| units_of[*l]).sum();
        let bad_exposed: u64 = lots
            .iter()
            .map(|l| bad_per_lot.get(l).copied().unwrap_or(0))
            .sum();
        let key = Exposure::Lots(
            lots.iter().map(|l| (*l).to_owned()).collect(),
            exposed,
            bad_exposed,
        );
        by_exposure.entry(key).or_default().push(factor.clone());
    }

    // Unit-level factors, from the bad units only (a factor no bad unit
    // has cannot be over-represented among them); their exposure from the
    // contents kept at commit.
    let bad_at: HashMap<u32, &str> = bad
        .iter()
        .filter_map(|u| Some((population.place(u)?, u.as_str())))
        .collect();
    let mut unit_paths: HashMap<(String, String), Vec<Step>> = HashMap::new();
    let mut unit_factors: BTreeMap<(String, FactorKind), BTreeSet<String>> = BTreeMap::new();
    let mut carriers = Carriers::default();
    for unit in &bad {
        for (factor, kind, path) in packing(&mut reader, &mut carriers, unit)? {
            unit_paths
                .entry((factor.clone(), unit.clone()))
                .or_insert(path);
            unit_factors.entry((factor, kind)).or_default();
        }
    }
    reader.forget_edges();
    let mut judge = Judge::new(&reader);
    for (factor, kind) in unit_factors.keys() {
        let (held, node) = match factor.strip_prefix(CARRIER_FACTOR) {
            Some(party) if *kind == FactorKind::Carrier => (Held::Carried, party),
            _ => (Held::Contents, factor.as_str()),
        };
        let members = population.inside(&mut reader, &mut judge, held, node)?;
        let mut digest = 0u64;
        let mut bad_members: Vec<&str> = Vec::new();
        for place in &members {
            digest = digest.wrapping_add(mix(u64::from(*place)));
            if let Some(unit) = bad_at.get(place) {
                bad_members.push(unit);
            }
        }
        bad_members.sort_unstable();
        let key = Exposure::Units {
            exposed: members.len() as u64,
            bad: bad_members.into_iter().map(str::to_owned).collect(),
            digest,
        };
        by_exposure
            .entry(key)
            .or_default()
            .push((factor.clone(), *kind));
    }

    // Test every exposure group with a contrast.
    let logs = LogFactorials::new(total);
    let mut tested: Vec<(Table, Vec<Factor>, &Exposure)> = Vec::new();
    for (exposure, factors) in &by_exposure {
        let (exposed, bad_exposed) = exposure.counts();
        if bad_exposed == 0 || exposed >= total {
            continue;
        }
        let table = Table {
            bad_exposed,
            good_exposed: exposed - bad_exposed,
            bad_unexposed: bad_total - bad_exposed,
            good_unexposed: total - exposed - (bad_total - bad_exposed),
        };
        tested.push((table, factors.clone(), exposure));
    }
    let p: Vec<f64> = tested
        .iter()
        .map(|(t, _, _)| stats::fisher_greater(*t, &logs))
        .collect();
    let q = stats::benjamini_hochberg(&p);
    let mut ranked: Vec<usize> = (0..tested.len()).collect();
    let lift = |i: usize| tested[i].0.lift().unwrap_or(0.0);
    ranked.sort_by(|&a, &b| {
        p[a].total_cmp(&p[b])
            .then(lift(b).total_cmp(&lift(a)))
            .then(tested[a].1.cmp(&tested[b].1))
    });
    let mut findings = Vec::new();
    for &i in ranked.iter().take(FINDINGS_MAX) {
        let (table, mut factors, exposure) = (tested[i].0, tested[i].1.clone(), tested[i].2);
        // The factor nearest the units first (the finished lot before its
        // inputs); lots before days.
        factors.sort_by_key(|(f, kind)| (*kind, depth_hint(&lot_factors, f), f.clone()));
        let (factor, kind) = factors.remove(0);
        let evidence = evidence(
            &factor,
            exposure,
            &bad,
            &population,
            &lot_factors,
            &unit_paths,
        );
        findings.push(Finding {
            factor,
            kind,
            confounded: factors.into_iter().map(|(f, _)| f).collect(),
            bad_exposed: table.bad_exposed,
            good_exposed: table.good_exposed,
            bad_unexposed: table.bad_unexposed,
            good_unexposed: table.good_unexposed,
            lift: lift(i),
            p_value: p[i],
            q_value: q[i],
            evidence,
        });
    }
    Ok(RootCause {
        population: Population {
            products: products.into_iter().collect(),
            lots: units_of.len(),
            units: total,
            bad_units: bad_total,
        },
        unresolved,
        tested: tested.len(),
        findings,
        method: METHOD,
    })
}

/// A factor and its kind.
type Factor = (String, FactorKind);

/// Who is exposed to a factor: whole finished lots, or single units.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Exposure {
    /// Finished lots, units exposed, bad units exposed.
    Lots(Vec<String>, u64, u64),
    /// Units: how many, the bad ones among them (ascending), and an
    /// order-free digest of the whole set (factors with the same units are
    /// one finding; two different sets share all three with odds of
    /// 1 in 2^64).
    Units {
        exposed: u64,
        bad: Vec<String>,
        digest: u64,
    },
}

/// A 64-bit mix (splitmix64's finaliser): spreads a place over the digest.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

impl Exposure {
    fn counts(&self) -> (u64, u64) {
        match self {
            Exposure::Lots(_, exposed, bad) => (*exposed, *bad),
            Exposure::Units { exposed, bad, .. } => (*exposed, bad.len() as u64),
        }
    }
}

fn step(
    from: &str,
    to: &str,
    kind: impl Into<LinkKind>,
    at: crate::store::index::Position,
    origin: &Origin,
) -> Step {
    Step {
        from: from.to_owned(),
        to: to.to_owned(),
        kind: kind.into(),
        attestation: origin.attestation,
        height: at.height,
        event_time: origin.event_time.clone(),
    }
}

/// The subjects (units or lots) of the standing, visible measurements of
/// `failing`'s series that lie outside the specification limits they were
/// stated with, each once, in chain order.
fn failed_subjects(
    reader: &mut Reader<'_>,
    failing: &Failing,
) -> Result<Vec<String>, RootCauseError> {
    let gtin = super::series::parse_gtin(&failing.gtin)?;
    let series = super::series::read_range(
        reader,
        &gtin,
        &failing.characteristic,
        super::series::Range::default(),
    )?;
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for measured in series {
        if measured.point.out_of_spec() && seen.insert(measured.subject.clone()) {
            if out.len() >= FAILING_MAX {
                return Err(RootCauseError::TooManyFailing);
            }
            out.push(measured.subject);
        }
    }
    Ok(out)
}

/// The units `id` stands for, or why it stands for none.
fn resolve(
    reader: &mut Reader<'_>,
    visibility: &dyn Visibility,
    id: &str,
) -> Result<Result<Vec<String>, String>, RootCauseError> {
    if let Ok(attestation) = id.parse::<AttestationId>() {
        let Some(stored) = reader.store.attestation(&attestation)? else {
            return Ok(Err("no such attestation".to_owned()));
        };
        let origin = Origin {
            attestation,
            org: stored.meta.org.clone(),
            event_time: stored.meta.event_time.clone(),
            event_time_ms: 0,
            event_id: None,
            biz_step: stored.meta.biz_step.clone(),
            read_point: None,
        };
        if !visibility.can_see(&origin) {
            return Ok(Err("no such attestation".to_owned()));
        }
        let Ok(statement) = Statement::from_payload(&stored.envelope.payload) else {
            return Ok(Err("the attestation's statement does not parse".to_owned()));
        };
        let mut units = Vec::new();
        for subject in statement.event.canonical_identifiers() {
            units.extend(units_of_node(reader, &subject)?);
        }
        return Ok(Ok(units));
    }
    match Identifier::parse(id) {
        Ok(identifier) => units_of_node(reader, &identifier.canonical()).map(Ok),
        Err(e) => Ok(Err(format!("not an identifier or attestation id: {e}"))),
    }
}

/// A serial is itself; a lot or container, the serials it reaches forward.
fn units_of_node(reader: &mut Reader<'_>, node: &str) -> Result<Vec<String>, RootCauseError> {
    if is_item(node) {
        return Ok(vec![node.to_owned()]);
    }
    if !matches!(
        Identifier::parse(node),
        Ok(Identifier::Lot { .. } | Identifier::Sscc(_))
    ) {
        return Ok(Vec::new());
    }
    let limits = WalkLimits {
        depth: DEPTH_DEFAULT,
        nodes: TRACE_NODES_MAX,
        window: (None, None),
        material_only: true,
    };
    let reached = walk(reader, &[node.to_owned()], End::From, &limits)?;
    let mut units: Vec<String> = reached
        .nodes
        .into_iter()
        .map(|(n, _)| n)
        .filter(|n| is_item(n))
        .collect();
    // Containers lead back down to their items.
    if matches!(Identifier::parse(node), Ok(Identifier::Sscc(_))) {
        let down = walk(reader, &[node.to_owned()], End::To, &limits)?;
        units.extend(
            down.nodes
                .into_iter()
                .map(|(n, _)| n)
                .filter(|n| is_item(n)),
        );
    }
    units.sort();
    units.dedup();
    Ok(units)
}

fn is_item(node: &str) -> bool {
    matches!(Identifier::parse(node), Ok(Identifier::Item { .. }))
}

fn kind_of(node: &str) -> FactorKind {
    match Identifier::parse(node) {
        Ok(Identifier::Lot { .. }) => FactorKind::Lot,
        _ => FactorKind::Material,
    }
}

/// The backward trace of a finished lot: every node it reaches (and the
/// lot itself), the link towards the lot for each, and its production day.
fn upstream(reader: &mut Reader<'_>, lot: &str) -> Result<LotFactors, RootCauseError> {
    let limits = WalkLimits {
        depth: DEPTH_DEFAULT,
        nodes: TRACE_NODES_MAX,
        window: (None, None),
        material_only: true,
    };
    let reached = walk(reader, &[lot.to_owned()], End::To, &limits)?;
    let mut out = LotFactors::default();
    // The link an edge gives its upstream end (or a step factor) towards
    // the finished lot.
    let link = |met: &Met| Link {
        toward: met.to.clone(),
        step: step(
            &met.from,
            &met.to,
            met.record.kind,
            met.at,
            &met.record.origin,
        ),
    };
    for met in &reached.edges {
        if let Some(factor) = process_step(&met.record)
            && !out.links.contains_key(&factor)
        {
            out.links.insert(factor.clone(), link(met));
            out.factors.push((factor, FactorKind::ProcessStep));
        }
        if met.to == lot
            && !out
                .factors
                .iter()
                .any(|(_, k)| *k == FactorKind::ProductionDay)
        {
            let day = met.record.origin.event_time.get(..10).unwrap_or_default();
            out.factors
                .push((format!("day:{day}"), FactorKind::ProductionDay));
        }
        if met.from != lot && !out.links.contains_key(&met.from) {
            out.links.insert(met.from.clone(), link(met));
        }
    }
    for (node, _) in &reached.nodes {
        out.factors.push((node.clone(), kind_of(node)));
    }
    Ok(out)
}

/// The process-step factor of a transformation edge: its step at its read
/// point (`step:assembling@<readPoint>`), or none for other edges and for
/// events that name no read point. Steps without a `bizStep` are named by
/// their kind of edge.
fn process_step(edge: &EdgeRecord) -> Option<String> {
    if edge.kind != EdgeKind::TransformedInto {
        return None;
    }
    let read_point = edge.origin.read_point.as_deref()?;
    let step = edge.origin.biz_step.as_deref().unwrap_or("transforming");
    Some(format!("step:{step}@{read_point}"))
}

/// The carrier each shipment names, by the shipment's attestation: the
/// bad units of one delivery share its shipment, read once.
#[derive(Default)]
struct Carriers(HashMap<AttestationId, Option<String>>);

impl Carriers {
    /// The carrier of the shipment `origin` states (`lineage::carrier`),
    /// if it names one. The caller saw the shipment's edge, so it may read
    /// the event.
    fn of(&mut self, reader: &Reader<'_>, origin: &Origin) -> Result<Option<String>, StoreError> {
        if let Some(known) = self.0.get(&origin.attestation) {
            return Ok(known.clone());
        }
        let carrier = reader
            .store
            .attestation(&origin.attestation)?
            .and_then(|stored| Statement::from_payload(&stored.envelope.payload).ok())
            .and_then(|statement| lotline_core::lineage::carrier(&statement.event));
        self.0.insert(origin.attestation, carrier.clone());
        Ok(carrier)
    }
}

/// The containers a unit was packed in (and theirs, a few levels up), the
/// parties those, or the unit, were shipped to and the carriers that
/// carried them there; each with the path from the factor's side to the
/// unit.
fn packing(
    reader: &mut Reader<'_>,
    carriers: &mut Carriers,
    unit: &str,
) -> Result<Vec<(String, FactorKind, Vec<Step>)>, RootCauseError> {
    let mut out = Vec::new();
    // (node, path from node down to the unit)
    let mut frontier: Vec<(String, Vec<Step>)> = vec![(unit.to_owned(), Vec::new())];
    for _ in 0..=CONTAINER_LEVELS_MAX {
        let mut next = Vec::new();
        for (node, path) in frontier {
            for (at, edge) in reader.edges(&node, End::From)? {
                let link = step(&node, &edge.other, edge.kind, at, &edge.origin);
                let mut reaching = vec![link];
                reaching.extend(path.iter().cloned());
                match edge.kind {
                    EdgeKind::PackedIn => {
                        out.push((edge.other.clone(), FactorKind::Container, reaching.clone()));
                        next.push((edge.other, reaching));
                    }
                    EdgeKind::ShippedTo => {
                        if let Some(carrier) = carriers.of(reader, &edge.origin)? {
                            let by = step(&node, &carrier, LinkKind::CarriedBy, at, &edge.origin);
                            let carried = std::iter::once(by).chain(path.iter().cloned()).collect();
                            out.push((
                                format!("{CARRIER_FACTOR}{carrier}"),
                                FactorKind::Carrier,
                                carried,
                            ));
                        }
                        out.push((edge.other, FactorKind::Destination, reaching));
                    }
                    _ => {}
                }
            }
        }
        if next.is_empty() {
            break;
        }
        frontier = next;
    }
    Ok(out)
}

/// Orders a finding's factors: the one nearest the units first.
fn depth_hint(lots: &BTreeMap<String, LotFactors>, factor: &str) -> usize {
    lots.values()
        .find_map(|l| {
            if l.links.contains_key(factor) {
                let mut depth = 1;
                let mut node = factor;
                while let Some(link) = l.links.get(node) {
                    node = &link.toward;
                    depth += 1;
                    if depth > 64 {
                        break;
                    }
                }
                Some(depth)
            } else {
                None
            }
        })
        .unwrap_or(0)
}

/// Up to [`EVIDENCE_PATHS_MAX`] paths from `factor` to exposed bad units.
fn evidence(
    factor: &str,
    exposure: &Exposure,
    bad: &BTreeSet<String>,
    population: &Serials,
    lots: &BTreeMap<String, LotFactors>,
    unit_paths: &HashMap<(String, String), Vec<Step>>,
) -> Vec<Evidence> {
    let mut out = Vec::new();
    match exposure {
        Exposure::Lots(exposed_lots, _, _) => {
            for unit in bad {
                if out.len() >= EVIDENCE_PATHS_MAX {
                    break;
                }
                let Some(lot) = population.lot_of(unit) else {
                    continue;
                };
                if exposed_lots
                    .binary_search_by(|l| l.as_str().cmp(lot))
                    .is_err()
                {
                    continue;
                }
                let mut path = Vec::new();
                if let Some(factors) = lots.get(lot) {
                    let mut node = factor;
                    while let Some(link) = factors.links.get(node) {
                        path.push(link.step.clone());
                        node = &link.toward;
                        if path.len() > 64 {
                            break;
                        }
                    }
                }
                path.extend(
                    population
                        .serialised_by(unit)
                        .map(|(lot, at, kind, origin)| step(lot, unit, kind, at, origin)),
                );
                out.push(Evidence {
                    unit: unit.clone(),
                    path,
                });
            }
        }
        Exposure::Units { bad: hits, .. } => {
            for unit in hits {
                if out.len() >= EVIDENCE_PATHS_MAX {
                    break;
                }
                let mut path = unit_paths
                    .get(&(factor.to_owned(), unit.clone()))
                    .cloned()
                    .unwrap_or_default();
                // Stored from the factor's side down to the unit: reverse
                // into material flow (unit first).
                path.reverse();
                out.push(Evidence {
                    unit: unit.clone(),
                    path,
                });
            }
        }
    }
    out
}
