//! The supply-chain workload as a specification: deterministic, valid,
//! allowed by the default policy, causal, and with the depth and width the
//! benchmarks rely on, each recomputed from the events by `lineage` rather
//! than taken from the generator.

mod lineage;

use std::collections::BTreeSet;

use lotline_core::epcis::{EventType, QualityFact, QualityKind};
use lotline_core::{SigningKey, time};
use lotline_genesis::{ConsensusParams, Genesis, Org, ReadPolicy, Role, Validator, default_policy};
use lotline_sim::workload::COLD_CHAIN_MAX_CEL;
use lotline_sim::{Roles, Scale, SupplyChainWorkload, WorkItem, WorkloadSummary};
use proptest::prelude::*;

use lineage::{Lineage, canonical, check_created_before_used, check_custody};

fn story(seed: u64, scale: Scale) -> (Vec<WorkItem>, WorkloadSummary) {
    SupplyChainWorkload::generate_with_summary(seed, scale, &Roles::demo())
}

/// A genesis with the four demo orgs in their roles and the default policy.
fn demo_genesis() -> Genesis {
    let roles = [
        ("supplier", Role::Supplier),
        ("manufacturer", Role::Manufacturer),
        ("distributor", Role::Distributor),
        ("regulator", Role::Regulator),
    ];
    let orgs: Vec<Org> = roles
        .iter()
        .zip(1u8..)
        .map(|((id, role), seed)| Org {
            id: (*id).to_owned(),
            name: id.to_uppercase(),
            role: *role,
            client_keys: vec![SigningKey::from_seed(&[seed; 32]).public_key()],
            encryption_key: None,
        })
        .collect();
    let validators: Vec<Validator> = roles
        .iter()
        .zip(11u8..)
        .map(|((id, _), seed)| Validator {
            org: (*id).to_owned(),
            node_key: SigningKey::from_seed(&[seed; 32]).public_key(),
            p2p: None,
        })
        .collect();
    Genesis::from_parts(
        "sim".to_owned(),
        ConsensusParams::default(),
        orgs,
        validators,
        default_policy(),
        ReadPolicy::default(),
    )
    .unwrap()
}

/// Every event validates with zero problems and the genesis lets its org
/// write it.
fn assert_valid_and_allowed(genesis: &Genesis, items: &[WorkItem], label: &str) {
    for (index, item) in items.iter().enumerate() {
        let problems = item.event.validate();
        assert!(
            problems.is_empty(),
            "{label} event {index}: {problems:?}\n{:?}",
            item.event
        );
        let org = genesis
            .org(&item.org)
            .unwrap_or_else(|| panic!("no org {}", item.org));
        if let Err(e) = genesis.check_write(org, &item.event) {
            panic!("{label} event {index}: {e}");
        }
    }
}

/// Recomputes every summary figure from the events and compares.
fn assert_summary_matches_events(items: &[WorkItem], summary: &WorkloadSummary, scale: Scale) {
    assert_eq!(summary.events, items.len() as u64);
    assert_eq!(summary.events, scale.event_count());
    let graph = Lineage::of(items);
    assert!(!graph.has_cycle());

    let (depth, origin) = graph.depth(&summary.deep_serial);
    assert_eq!(depth, summary.deep_levels, "deep_levels");
    assert_eq!(origin, summary.deep_raw_lot, "deep_raw_lot");
    assert!(graph.raw_lots.contains(&origin));

    let widths: Vec<(u64, &String)> = graph
        .raw_lots
        .iter()
        .map(|lot| (graph.units_from(lot), lot))
        .collect();
    let widest = widths.iter().map(|(units, _)| *units).max().unwrap();
    assert_eq!(
        widest, summary.wide_units,
        "wide_units is the widest raw lot"
    );
    assert_eq!(graph.units_from(&summary.wide_raw_lot), summary.wide_units);
    assert_eq!(summary.raw_lots, graph.raw_lots.len() as u64);
    let units: BTreeSet<String> = items
        .iter()
        .filter(|i| i.event.event_type == EventType::TransformationEvent)
        .flat_map(|i| i.event.output_epc_list.iter().map(|e| canonical(e)))
        .collect();
    assert_eq!(units.len() as u64, summary.units);

    let recalls: Vec<(&String, &Vec<String>)> = items
        .iter()
        .filter_map(|i| match &i.event.quality {
            Some(QualityFact::RecallOrder {
                recall_id, scope, ..
            }) => Some((recall_id, scope)),
            _ => None,
        })
        .collect();
    assert_eq!(recalls.len(), 1);
    assert_eq!(recalls[0].0, &summary.recall_id);
    assert_eq!(recalls[0].1, &vec![summary.recalled_lot.clone()]);

    let kinds: Vec<QualityKind> = items
        .iter()
        .filter_map(|i| i.event.quality.as_ref().map(QualityFact::kind))
        .collect();
    let nc = kinds
        .iter()
        .filter(|k| **k == QualityKind::NonConformance)
        .count();
    assert_eq!(nc as u32, summary.non_conformances);
    let excursions = items
        .iter()
        .flat_map(|i| &i.event.sensor_element_list)
        .flat_map(|e| &e.sensor_report)
        .filter(|r| {
            r.kind.as_deref() == Some("Temperature")
                && r.value.is_some_and(|v| v > COLD_CHAIN_MAX_CEL)
        })
        .count();
    assert_eq!(excursions as u32, summary.excursions);

    for id in [
        &summary.deep_serial,
        &summary.deep_raw_lot,
        &summary.wide_raw_lot,
        &summary.recalled_lot,
    ] {
        assert_eq!(&canonical(id), id, "summary ids are canonical");
    }
}

/// The correction: one eventID appears twice, the second time identical
/// apart from an errorDeclaration whose corrective event follows it.
fn assert_one_correction(items: &[WorkItem], summary: &WorkloadSummary) {
    let with_id = |id: &str| -> Vec<usize> {
        items
            .iter()
            .enumerate()
            .filter(|(_, i)| i.event.event_id.as_deref() == Some(id))
            .map(|(n, _)| n)
            .collect()
    };
    let sent = with_id(&summary.corrected_event_id);
    assert_eq!(sent.len(), 2, "the corrected event is sent twice");
    let (original, retraction) = (&items[sent[0]].event, &items[sent[1]].event);
    assert!(original.error_declaration.is_none());
    let declaration = retraction
        .error_declaration
        .clone()
        .expect("an errorDeclaration");
    let mut stripped = retraction.clone();
    stripped.error_declaration = None;
    assert_eq!(
        &stripped, original,
        "re-sent unchanged apart from the declaration"
    );
    assert_eq!(
        declaration.corrective_event_ids,
        vec![summary.corrective_event_id.clone()]
    );
    let corrective = with_id(&summary.corrective_event_id);
    assert_eq!(corrective.len(), 1);
    assert!(corrective[0] > sent[1]);
    assert_ne!(
        items[corrective[0]].event.quantity_list,
        original.quantity_list
    );

    let ids: Vec<&str> = items
        .iter()
        .filter_map(|i| i.event.event_id.as_deref())
        .collect();
    assert_eq!(ids.len(), items.len(), "every event has an eventID");
    let distinct: BTreeSet<&str> = ids.iter().copied().collect();
    assert_eq!(
        distinct.len(),
        items.len() - 1,
        "only the retraction repeats an id"
    );
}

/// Event times never go back; a retraction keeps its original's time and
/// declares at a time that does not go back.
fn assert_time_order(items: &[WorkItem]) {
    let mut last = 0;
    for (index, item) in items.iter().enumerate() {
        let at = match &item.event.error_declaration {
            Some(d) => time::parse_rfc3339_ms(&d.declaration_time).unwrap(),
            None => item.event.event_time_ms().unwrap(),
        };
        assert!(at >= last, "event {index} goes back in time");
        last = at;
    }
}

fn assert_whole_story(seed: u64, scale: Scale, label: &str) {
    let (items, summary) = story(seed, scale);
    assert_valid_and_allowed(&demo_genesis(), &items, label);
    check_created_before_used(&items).unwrap_or_else(|e| panic!("{label}: {e}"));
    check_custody(&items).unwrap_or_else(|e| panic!("{label}: {e}"));
    assert_summary_matches_events(&items, &summary, scale);
    assert_one_correction(&items, &summary);
    assert_time_order(&items);
}

#[test]
fn demo_and_small_stories_hold_every_property() {
    for seed in 0..4 {
        assert_whole_story(seed, Scale::demo(), &format!("demo seed {seed}"));
        assert_whole_story(seed, Scale::small(), &format!("small seed {seed}"));
    }
}

#[test]
fn the_demo_is_a_few_hundred_events_with_every_kind_of_fact() {
    let (items, summary) = story(42, Scale::demo());
    assert!(items.len() <= 300, "{}", items.len());
    let types: BTreeSet<EventType> = items.iter().map(|i| i.event.event_type).collect();
    assert_eq!(
        types,
        BTreeSet::from([
            EventType::ObjectEvent,
            EventType::AggregationEvent,
            EventType::TransformationEvent
        ])
    );
    let steps: BTreeSet<String> = items
        .iter()
        .filter_map(|i| i.event.biz_step_short())
        .collect();
    for step in [
        "commissioning",
        "assembling",
        "shipping",
        "receiving",
        "inspecting",
        "holding",
        "packing",
        "unpacking",
        "storing",
    ] {
        assert!(steps.contains(step), "no {step}");
    }
    let kinds: BTreeSet<QualityKind> = items
        .iter()
        .filter_map(|i| i.event.quality.as_ref().map(QualityFact::kind))
        .collect();
    assert_eq!(
        kinds,
        BTreeSet::from([
            QualityKind::Inspection,
            QualityKind::NonConformance,
            QualityKind::RecallOrder,
            QualityKind::Certificate
        ])
    );
    let orgs: BTreeSet<&str> = items.iter().map(|i| i.org.as_str()).collect();
    assert_eq!(
        orgs,
        BTreeSet::from(["supplier", "manufacturer", "distributor", "regulator"])
    );
    assert_eq!(summary.non_conformances, 4);
    assert_eq!(summary.excursions, 2);
    assert_eq!(summary.deep_levels, 6);
    assert_eq!(
        summary.wide_raw_lot, summary.recalled_lot,
        "the recall scope is the widest lot"
    );
    assert_eq!(summary.wide_units, 3 * Scale::demo().units_per_campaign());
}

#[test]
fn same_seed_same_story_other_seed_other_values_same_counts() {
    let (a, summary_a) = story(7, Scale::small());
    let (b, summary_b) = story(7, Scale::small());
    assert_eq!(a, b);
    assert_eq!(summary_a, summary_b);
    let json = |items: &[WorkItem]| {
        serde_json::to_string(&items.iter().map(|i| (&i.org, &i.event)).collect::<Vec<_>>())
            .unwrap()
    };
    assert_eq!(json(&a), json(&b));
    let (c, summary_c) = story(8, Scale::small());
    assert_ne!(a, c);
    assert_ne!(summary_a.deep_serial, summary_c.deep_serial);
    assert_eq!(a.len(), c.len());
    assert_eq!(summary_a.deep_levels, summary_c.deep_levels);
    assert_eq!(summary_a.wide_units, summary_c.wide_units);
}

#[test]
fn the_roles_decide_who_attests() {
    let roles = Roles {
        supplier: "acme-polymers".to_owned(),
        manufacturer: "syringe-works".to_owned(),
        distributor: "coldlink".to_owned(),
        regulator: "agency".to_owned(),
    };
    let items = SupplyChainWorkload::generate_for(1, Scale::demo(), &roles);
    let orgs: BTreeSet<&str> = items.iter().map(|i| i.org.as_str()).collect();
    assert_eq!(
        orgs,
        BTreeSet::from(["acme-polymers", "syringe-works", "coldlink", "agency"])
    );
    let demo = SupplyChainWorkload::generate(1, Scale::demo());
    let events = |items: &[WorkItem]| items.iter().map(|i| i.event.clone()).collect::<Vec<_>>();
    assert_eq!(
        events(&items),
        events(&demo),
        "roles change attesters, not events"
    );
}

#[test]
fn the_benchmark_shape_reaches_its_targets_at_twenty_thousand_events() {
    // Goal: at a size a debug test can afford, the benchmark shape already
    // gives >= 5 levels back from a unit and >= 10,000 units forward from
    // one raw lot, recomputed from the events.
    let scale = Scale::for_events(20_000);
    let (items, summary) = story(3, scale);
    assert!(
        items.len() >= 20_000 && items.len() < 20_300,
        "{}",
        items.len()
    );
    assert_summary_matches_events(&items, &summary, scale);
    check_created_before_used(&items).unwrap();
    assert!(summary.deep_levels >= 5, "{}", summary.deep_levels);
    assert!(summary.wide_units >= 10_000, "{}", summary.wide_units);
    assert_eq!(
        summary.wide_raw_lot, summary.recalled_lot,
        "the recall scope is the widest lot"
    );
}

#[test]
fn the_stream_is_the_collected_story_and_knows_its_length() {
    let scale = Scale::small();
    let mut stream = SupplyChainWorkload::stream(5, scale, &Roles::demo());
    assert_eq!(stream.len() as u64, scale.event_count());
    assert!(stream.summary().is_none());
    let first: Vec<WorkItem> = stream.by_ref().take(10).collect();
    assert_eq!(stream.len() as u64, scale.event_count() - 10);
    assert!(stream.summary().is_none(), "no summary before the end");
    let rest: Vec<WorkItem> = stream.by_ref().collect();
    let summary = stream.summary().cloned().expect("a summary at the end");
    let (collected, expected) = story(5, scale);
    assert_eq!([first, rest].concat(), collected);
    assert_eq!(summary, expected);
}

#[test]
fn the_checks_have_teeth() {
    // Positive controls: each independent check fails on a story broken in
    // the way it guards against.
    let (items, _) = story(2, Scale::demo());

    let mut invalid = items[0].event.clone();
    invalid.event_time = "2026-03-02 08:00".to_owned();
    assert!(!invalid.validate().is_empty());

    let genesis = demo_genesis();
    let shipping = items
        .iter()
        .find(|i| i.event.biz_step.as_deref() == Some("shipping"))
        .unwrap();
    let regulator = genesis.org("regulator").unwrap();
    assert!(genesis.check_write(regulator, &shipping.event).is_err());

    let mut early = items.clone();
    let transform = early
        .iter()
        .position(|i| i.event.event_type == EventType::TransformationEvent)
        .unwrap();
    let moved = early.remove(transform);
    early.insert(0, moved);
    assert!(check_created_before_used(&early).is_err());

    let mut stolen = items.clone();
    let ship = stolen
        .iter()
        .position(|i| i.org == "distributor" && i.event.biz_step.as_deref() == Some("shipping"))
        .unwrap();
    stolen[ship].org = "supplier".to_owned();
    assert!(check_custody(&stolen).is_err());

    let mut graph = Lineage::of(&items);
    assert!(!graph.has_cycle());
    let serial = items
        .iter()
        .find_map(|i| i.event.output_epc_list.first())
        .unwrap();
    graph.add_edge(&canonical(serial), &graph.raw_lots[1].clone());
    assert!(graph.has_cycle());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    /// Any seed: valid, allowed, causal, and the summary agrees with the
    /// events.
    #[test]
    fn any_seed_tells_a_consistent_story(seed in any::<u64>()) {
        assert_whole_story(seed, Scale::demo(), &format!("seed {seed}"));
    }
}
