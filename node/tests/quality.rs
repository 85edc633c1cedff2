//! Quality intelligence against planted truth: a planted story (a bad
//! stopper lot, a drifting supplier) is signed and committed into a real
//! store, and the tools must find what was planted from the records alone.
//! The truth is only compared with the answers; the tools never see it.

use std::collections::{BTreeMap, BTreeSet};

use lotline_core::gs1::Identifier;
use lotline_core::lineage::{self, EdgeKind};
use lotline_core::statement::Statement;
use lotline_node::bulk_load;
use lotline_node::quality::root_cause::{FactorKind, Failing, LinkKind};
use lotline_node::quality::{self, ChartRequest, RootCauseRequest};
use lotline_node::trace::SeeAll;
use lotline_sim::workload::{Scale, Truth};

const BLOCK: usize = 50;

fn load(seed: u64, scale: Scale) -> (tempfile::TempDir, bulk_load::Loaded, Truth) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (loaded, truth) = bulk_load::load_planted(dir.path(), seed, scale, BLOCK).expect("load");
    (dir, loaded, truth)
}

#[test]
fn root_cause_names_the_planted_lot_for_several_seeds() {
    // Goal: from the failing units alone, the ranking puts the planted
    // stopper lot in the most significant lot-level finding, significant
    // after the false discovery rate adjustment, and near the top overall.
    // Method: several seeds (so the bad campaign and the noise differ),
    // the truth's bad units as the request.
    for seed in [1, 2, 3, 5] {
        let (_dir, loaded, truth) = load(seed, Scale::small());
        let reader = loaded.store.reader();
        let request = RootCauseRequest {
            bad: truth.bad.clone(),
            failing: None,
        };
        let answer = quality::root_cause(&reader, &request, &SeeAll).expect("root cause");
        assert_eq!(answer.population.bad_units, truth.bad.len() as u64);
        assert!(answer.unresolved.is_empty(), "{:?}", answer.unresolved);
        let top_lot = answer
            .findings
            .iter()
            .position(|f| f.kind == FactorKind::Lot)
            .expect("a lot finding");
        let finding = &answer.findings[top_lot];
        let named = finding.factor == truth.cause || finding.confounded.contains(&truth.cause);
        assert!(named, "seed {seed}: {} not in {finding:#?}", truth.cause);
        assert!(top_lot < 3, "seed {seed}: the lot finding ranks {top_lot}");
        assert!(finding.q_value < 0.01, "seed {seed}: {finding:#?}");
        assert!(finding.lift > 2.0, "seed {seed}: {finding:#?}");
        // The counts add up to the population.
        let n = finding.bad_exposed
            + finding.good_exposed
            + finding.bad_unexposed
            + finding.good_unexposed;
        assert_eq!(n, answer.population.units);
        // Evidence: paths from the cause side to a bad unit, every step
        // naming an attestation that exists.
        assert!(!finding.evidence.is_empty());
        for evidence in &finding.evidence {
            assert!(truth.bad.contains(&evidence.unit));
            let last = evidence.path.last().expect("a path");
            assert_eq!(last.to, evidence.unit);
            for step in &evidence.path {
                assert!(
                    reader
                        .attestation(&step.attestation)
                        .expect("read")
                        .is_some()
                );
            }
        }
    }
}

#[test]
fn root_cause_names_the_carrier_whose_deliveries_arrived_damaged_for_several_seeds() {
    // Goal: from the units stores reported damaged on receipt alone, the
    // top finding is the rough carrier planted in the story (a carrier
    // factor, significant, with lift), although its deliveries mix lots,
    // days and stores; and each evidence path runs from a damaged unit
    // through its case to the carrier, the last step stated by a shipment
    // whose signed event names that carrier as the goods' possessing party.
    // Method: several seeds (so the rough carrier, its deliveries and the
    // damage differ), the truth's damaged units as the request.
    for seed in [1, 2, 3, 5] {
        let (_dir, loaded, truth) = load(seed, Scale::small());
        let reader = loaded.store.reader();
        let request = RootCauseRequest {
            bad: truth.carrier_bad.clone(),
            failing: None,
        };
        let answer = quality::root_cause(&reader, &request, &SeeAll).expect("root cause");
        assert_eq!(answer.population.bad_units, truth.carrier_bad.len() as u64);
        let top = &answer.findings[0];
        let carrier = format!("carrier:{}", truth.carrier);
        assert_eq!(top.kind, FactorKind::Carrier, "seed {seed}: {top:#?}");
        assert_eq!(top.factor, carrier, "seed {seed}: {top:#?}");
        assert!(top.q_value < 0.01, "seed {seed}: {top:#?}");
        assert!(top.lift > 2.0, "seed {seed}: {top:#?}");
        assert!(top.good_exposed > 0, "the carrier damaged only some units");
        // The other carriers damaged a unit now and then: never first.
        for other in answer.findings.iter().skip(1) {
            if other.kind == FactorKind::Carrier {
                assert!(other.p_value > top.p_value, "seed {seed}: {other:#?}");
            }
        }
        assert!(!top.evidence.is_empty());
        for evidence in &top.evidence {
            assert!(truth.carrier_bad.contains(&evidence.unit));
            let first = evidence.path.first().expect("a path");
            assert_eq!(first.from, evidence.unit);
            let last = evidence.path.last().expect("a path");
            assert_eq!(last.kind, LinkKind::CarriedBy);
            assert_eq!(last.to, truth.carrier);
            let stored = reader
                .attestation(&last.attestation)
                .expect("read")
                .expect("the shipment's attestation");
            let event = Statement::from_payload(&stored.envelope.payload)
                .expect("statement")
                .event;
            assert_eq!(
                lineage::carrier(&event).as_deref(),
                Some(truth.carrier.as_str())
            );
            let shipped: Vec<String> = event
                .epc_list
                .iter()
                .map(|e| lineage::canonical(e))
                .collect();
            assert!(shipped.contains(&last.from), "{last:#?}");
        }
    }
}

#[test]
fn root_cause_accepts_lots_and_attestations_and_reports_what_it_cannot_use() {
    // Goal: bad ids by lot or by attestation resolve to units; ids that
    // name nothing are reported, not fatal; nothing at all is an error.
    let (_dir, loaded, truth) = load(2, Scale::small());
    let reader = loaded.store.reader();
    // A carrier is a factor, not a bad id: its party and its factor name
    // are reported as naming no unit, like an id that names nothing.
    let by_lot = RootCauseRequest {
        bad: vec![
            truth.cause.clone(),
            "urn:example:nothing".to_owned(),
            truth.carrier.clone(),
            format!("carrier:{}", truth.carrier),
        ],
        failing: None,
    };
    let answer = quality::root_cause(&reader, &by_lot, &SeeAll).expect("root cause");
    assert_eq!(answer.population.bad_units, truth.exposed.len() as u64);
    assert_eq!(answer.unresolved.len(), 3, "{:?}", answer.unresolved);
    // An attestation id stands for the units its event names: the failed
    // functional test of one bad unit.
    let origins = lotline_node::store::lineage::Origins::default();
    let facts = reader.facts(&truth.bad[0], &origins).expect("facts");
    let (_, fact) = facts.last().expect("the unit's test");
    let by_attestation = RootCauseRequest {
        bad: vec![fact.origin.attestation.to_string()],
        failing: None,
    };
    let answer = quality::root_cause(&reader, &by_attestation, &SeeAll).expect("root cause");
    assert_eq!(answer.population.bad_units, 1);
    let none = RootCauseRequest {
        bad: vec!["not an id".to_owned()],
        failing: None,
    };
    assert!(quality::root_cause(&reader, &none, &SeeAll).is_err());
    let empty = RootCauseRequest::default();
    assert!(quality::root_cause(&reader, &empty, &SeeAll).is_err());
}

#[test]
fn root_cause_takes_the_bad_units_from_a_failing_measurement() {
    // Goal: "the units that failed the end-of-line test" is a request of
    // its own: the bad units are exactly those whose activationForce lies
    // outside the limits it was stated with, and the planted lot is found
    // from them as from the truth's list. A request naming a product or a
    // characteristic that is not one is refused, not answered empty.
    let (_dir, loaded, truth) = load(3, Scale::small());
    let reader = loaded.store.reader();
    let product = gtin_of(&truth.exposed[0]);
    let failing = |gtin: &str, characteristic: &str| RootCauseRequest {
        bad: Vec::new(),
        failing: Some(Failing {
            gtin: gtin.to_owned(),
            characteristic: characteristic.to_owned(),
        }),
    };
    let answer = quality::root_cause(&reader, &failing(&product, "activationForce"), &SeeAll)
        .expect("root cause");
    let expected = truth.bad.iter().filter(|u| gtin_of(u) == product).count();
    assert_eq!(answer.population.bad_units, expected as u64);
    let lot = answer
        .findings
        .iter()
        .find(|f| f.kind == FactorKind::Lot)
        .expect("a lot finding");
    assert!(
        lot.factor == truth.cause || lot.confounded.contains(&truth.cause),
        "{} not in {lot:#?}",
        truth.cause
    );
    assert!(quality::root_cause(&reader, &failing("123", "activationForce"), &SeeAll).is_err());
    assert!(quality::root_cause(&reader, &failing(&product, ""), &SeeAll).is_err());
    // A characteristic nothing measured names no unit: an error that says so.
    assert!(quality::root_cause(&reader, &failing(&product, "noSuchTest"), &SeeAll).is_err());
}

#[test]
fn root_cause_names_the_assembly_line_the_bad_units_share() {
    // Goal: when the bad units come from every lot one line assembled, and
    // from no single lot or material, the top finding is that step at that
    // line (its read point), with evidence starting at an assembly on it.
    // Method: a story of 12 campaigns (each product assembled three times
    // on each of two lines); which finished lots each line assembled and
    // which units each lot became are read from the signed statements
    // themselves, not from the analysis. Bad: half the units of one
    // product's line-2 lots, and one unit in twelve of its line-1 lots.
    let scale = Scale {
        campaigns: 12,
        ..Scale::small()
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let loaded = bulk_load::load(dir.path(), scale, BLOCK, |_, _| {}).expect("load");
    let store = &loaded.store;
    let mut line_of_lot: BTreeMap<String, String> = BTreeMap::new();
    let mut units_of_lot: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for height in 1..=store.height() {
        let record = store.read_block(height).expect("read").expect("block");
        for envelope in &record.block.attestations {
            let statement = Statement::from_payload(&envelope.payload).expect("statement");
            let event = &statement.event;
            let line = event
                .read_point
                .as_ref()
                .map(|l| l.id.clone())
                .filter(|id| id.contains("/254/"));
            for edge in lineage::derive(event).edges {
                let to_serial = matches!(Identifier::parse(&edge.to), Ok(Identifier::Item { .. }));
                match (edge.kind, &line) {
                    (EdgeKind::TransformedInto, Some(line)) => {
                        line_of_lot.insert(edge.to, line.clone());
                    }
                    (EdgeKind::TransformedInto | EdgeKind::Serialised, _) if to_serial => {
                        units_of_lot.entry(edge.from).or_default().push(edge.to);
                    }
                    _ => {}
                }
            }
        }
    }
    let lines: BTreeSet<&String> = line_of_lot.values().collect();
    assert_eq!(lines.len(), 2, "two assembly lines: {lines:?}");
    let line_2 = (*lines.iter().last().expect("a line")).clone();
    let product = gtin_of(&units_of_lot[line_of_lot.keys().next().expect("a lot")][0]);
    let mut bad = Vec::new();
    let mut line_2_lots = 0;
    for (lot, line) in &line_of_lot {
        let units = &units_of_lot[lot];
        if gtin_of(&units[0]) != product {
            continue;
        }
        let every = if *line == line_2 {
            line_2_lots += 1;
            2
        } else {
            12
        };
        bad.extend(units.iter().step_by(every).cloned());
    }
    assert_eq!(line_2_lots, 3, "{line_of_lot:#?}");

    let reader = store.reader();
    let answer = quality::root_cause(&reader, &RootCauseRequest { bad, failing: None }, &SeeAll)
        .expect("root cause");
    let top = &answer.findings[0];
    let factor = format!("step:assembling@{line_2}");
    assert_eq!(top.kind, FactorKind::ProcessStep, "{top:#?}");
    assert!(
        top.factor == factor || top.confounded.contains(&factor),
        "{factor} not in {top:#?}"
    );
    assert!(top.q_value < 0.01, "{top:#?}");
    // The evidence starts with an assembly on that line, stated by an
    // attestation whose event names the line as its read point.
    assert!(!top.evidence.is_empty());
    for evidence in &top.evidence {
        let first = evidence.path.first().expect("a path");
        assert_eq!(first.kind, LinkKind::TransformedInto);
        let stored = reader
            .attestation(&first.attestation)
            .expect("read")
            .expect("the assembly's attestation");
        let statement = Statement::from_payload(&stored.envelope.payload).expect("statement");
        let read_point = statement.event.read_point.map(|l| l.id);
        assert_eq!(read_point.as_deref(), Some(line_2.as_str()));
        assert_eq!(evidence.path.last().expect("a path").to, evidence.unit);
    }
}

#[test]
fn control_charts_see_the_drift_and_the_bad_lot() {
    // Goal: the EWMA and CUSUM of the drifting supplier's incoming
    // inspections signal at or after its first drifted lot and before the
    // drift has gone far; the p-chart of the end-of-line test flags the
    // bad campaign's finished lot. Method: a story with 24 campaigns (one
    // elastomer lot each, drift from campaign 12), baseline 10 lots.
    let scale = Scale {
        campaigns: 24,
        ..Scale::small()
    };
    let (_dir, loaded, truth) = load(11, scale);
    let reader = loaded.store.reader();
    let request = ChartRequest {
        gtin: truth.drift_gtin.clone(),
        characteristic: truth.drift_characteristic.clone(),
        baseline: Some(10),
        points: Some(1000),
        subgroup: Default::default(),
    };
    let chart = quality::chart(&reader, &request, &SeeAll).expect("chart");
    // One incoming inspection per elastomer lot, plus the rejected one.
    assert_eq!(chart.count, 25);
    assert_eq!(
        chart.baseline.excluded,
        vec![0],
        "the rejected lot: {:?}",
        chart.baseline
    );
    let first = chart
        .points
        .iter()
        .position(|p| p.subject == truth.drift_first_lot)
        .expect("the first drifted lot is charted");
    for (name, signal) in [("ewma", &chart.ewma), ("cusum", &chart.cusum)] {
        let at = signal.first_signal.expect("a signal");
        assert!(
            at >= first && at < first + 8,
            "{name} at {at}, drift from {first}"
        );
    }
    let cpk = chart.capability.cpk.expect("cpk");
    assert!(cpk > 1.0, "an in-control baseline is capable: {cpk}");

    // The end-of-line test of one product: the bad campaign's lot is out
    // of control on the p-chart, if the bad campaign made this product.
    let Ok(Identifier::Item { gtin, .. }) = Identifier::parse(&truth.exposed[0]) else {
        panic!("not a serial: {}", truth.exposed[0]);
    };
    let mut request = ChartRequest {
        gtin: gtin.as_str().to_owned(),
        characteristic: "activationForce".to_owned(),
        baseline: None,
        points: Some(100_000),
        subgroup: Default::default(),
    };
    let all = quality::chart(&reader, &request, &SeeAll)
        .expect("chart")
        .count;
    // Phase I over the whole history (a retrospective p-chart).
    request.baseline = Some(all);
    let chart = quality::chart(&reader, &request, &SeeAll).expect("chart");
    let flagged: Vec<&str> = chart
        .subgroups
        .iter()
        .filter(|g| g.p_out_of_control && g.p > chart.p_bar)
        .map(|g| g.key.as_str())
        .collect();
    let bad_lot = chart
        .points
        .iter()
        .find(|p| p.subject == truth.exposed[0])
        .and_then(|p| p.lot.clone())
        .expect("the exposed unit's lot");
    assert!(
        flagged.contains(&bad_lot.as_str()),
        "{bad_lot} not in {flagged:?}"
    );

    // The same test by period: one subgroup per UTC day of the event
    // time, covering every point once; with the whole history as phase I
    // the overall share of defectives (p-bar) does not depend on how the
    // points are grouped.
    request.subgroup = quality::Subgrouping::Day;
    let by_day = quality::chart(&reader, &request, &SeeAll).expect("chart");
    assert!(!by_day.subgroups.is_empty());
    for group in &by_day.subgroups {
        assert_eq!(group.key.len(), 10, "a day: {}", group.key);
        assert!(lotline_core::time::parse_rfc3339_ms(&format!("{}T00:00:00Z", group.key)).is_ok());
    }
    assert_eq!(by_day.subgroups_omitted, 0);
    assert_eq!(
        by_day.subgroups.iter().map(|g| g.n).sum::<usize>(),
        by_day.count
    );
    assert!(
        (by_day.p_bar - chart.p_bar).abs() < 1e-12,
        "{} vs {}",
        by_day.p_bar,
        chart.p_bar
    );
}

#[test]
fn chart_requests_that_mean_nothing_are_refused() {
    let (_dir, loaded, truth) = load(3, Scale::demo());
    let reader = loaded.store.reader();
    let ask = |gtin: &str, characteristic: &str, baseline: Option<usize>| {
        quality::chart(
            &reader,
            &ChartRequest {
                gtin: gtin.to_owned(),
                characteristic: characteristic.to_owned(),
                baseline,
                points: None,
                subgroup: Default::default(),
            },
            &SeeAll,
        )
    };
    assert!(ask("09506001110011", "x", None).is_err(), "check digit");
    assert!(
        ask(&truth.drift_gtin, "", None).is_err(),
        "empty characteristic"
    );
    assert!(ask(&truth.drift_gtin, "noSuchThing", None).is_err());
    assert!(ask(&truth.drift_gtin, &truth.drift_characteristic, Some(1)).is_err());
    assert!(ask(&truth.drift_gtin, &truth.drift_characteristic, Some(1000)).is_err());
    assert!(ask(&truth.drift_gtin, &truth.drift_characteristic, None).is_ok());
}

#[test]
fn the_cold_chain_finds_the_slow_excursion_by_the_products_own_limits() {
    // Goal: the truck's slow excursion is found on the cases it carried
    // and on a serial inside them, measured in time above the limit the
    // product's master data states; the room-temperature product is judged
    // by its own, wider limits. Method: several seeds; the truth is only
    // compared with the answers.
    for seed in [1, 4, 6] {
        let (_dir, loaded, truth) = load(seed, Scale::small());
        let reader = loaded.store.reader();
        let case = &truth.excursion_subjects[0];
        let answer = quality::cold_chain(&reader, case, &SeeAll).expect("cold chain");
        assert_eq!(answer.limits.max, Some(truth.excursion_limit_cel));
        let truck: Vec<_> = answer
            .excursions
            .iter()
            .filter(|e| e.device.as_deref().is_some_and(|d| d.contains("TRUCK")))
            .collect();
        assert_eq!(truck.len(), 1, "seed {seed}: {answer:#?}");
        let minutes = truck[0].excursion.minutes;
        let planted = truth.excursion_minutes_above as f64;
        assert!(
            (minutes - planted).abs() <= 20.0,
            "seed {seed}: {minutes} vs {planted}"
        );
        assert_eq!(truck[0].excursion.peak, truth.excursion_peak_cel);
        // A serial inside sees the excursion of the case it travelled in.
        let origins = lotline_node::store::lineage::Origins::default();
        let inside = reader
            .edges(case, lotline_node::store::lineage::End::To, None, &origins)
            .expect("edges")
            .into_iter()
            .map(|(_, e)| e.other)
            .find(|o| o.contains("/21/"))
            .expect("a serial in the case");
        let serial = quality::cold_chain(&reader, &inside, &SeeAll).expect("cold chain");
        assert!(serial.subjects.contains(case));
        assert!(
            serial
                .excursions
                .iter()
                .any(|e| e.attestation == truck[0].attestation)
        );
    }
    // The room-temperature product's finished lot states 25 CEL.
    let mut workload = lotline_sim::workload::SupplyChainWorkload::planted(
        1,
        Scale::small(),
        &lotline_sim::workload::Roles::demo(),
    );
    let lot = workload
        .by_ref()
        .find(|w| {
            w.event.ilmd.as_ref().is_some_and(|ilmd| {
                ilmd.get("lotline:storageTemperatureMaxCel") == Some(&serde_json::json!(25.0))
            })
        })
        .and_then(|w| {
            w.event
                .output_quantity_list
                .first()
                .map(|q| q.epc_class.clone())
        })
        .expect("a room-temperature lot");
    let (_dir, loaded, _) = load(1, Scale::small());
    let reader = loaded.store.reader();
    let answer = quality::cold_chain(&reader, &lot, &SeeAll).expect("cold chain");
    assert_eq!(answer.limits.max, Some(25.0));
    assert_eq!(answer.limits_from, vec![lot]);
    // Without stated limits (a raw lot), the answer is a refusal, not 2-8.
    let raw = quality::cold_chain(&reader, &answer.identifier.replace("PFS", "NOPE"), &SeeAll);
    assert!(matches!(raw, Err(quality::ColdChainError::NoLimits(_))));
}

#[test]
fn incremental_alert_judging_fires_what_judging_whole_charts_fires() {
    // Goal: the alert follower's incremental judging (chart states kept
    // from block to block, only new points judged) fires exactly what
    // judging every touched chart whole at every block fires (as a start
    // or a retraction does), each firing once. Method: two planted
    // stories, every block judged both ways; the set of firing keys must
    // be equal, run-rule and drift firings among them, and the incremental
    // judging must never fire a key twice.
    use lotline_node::quality::alerts::{Firing, detect, follower};
    for seed in [2, 11] {
        let scale = Scale {
            campaigns: 12,
            ..Scale::small()
        };
        let (_dir, loaded, _truth) = load(seed, scale);
        let reader = loaded.store.reader();
        let thresholds = detect::Thresholds {
            supplier_nc_rate_max: 0.1,
            supplier_lots_min: 5,
        };
        let head = reader.applied_height().expect("height");
        let (mut kept, mut suppliers_kept) = (detect::Charts::default(), Default::default());
        let mut suppliers_whole = Default::default();
        let mut incremental: Vec<String> = Vec::new();
        let mut whole = std::collections::BTreeSet::new();
        let only_charts = |firings: Vec<Firing>| {
            firings
                .into_iter()
                .filter(|f| f.key.starts_with("runRule|") || f.key.starts_with("drift|"))
                .map(|f| f.key)
                .collect::<Vec<_>>()
        };
        for height in 1..=head {
            let block = follower::read_block(&reader, height)
                .expect("block")
                .expect("present");
            let committed: Vec<detect::Committed<'_>> = block
                .iter()
                .map(|(id, at, statement)| detect::Committed {
                    id: *id,
                    at: *at,
                    statement,
                })
                .collect();
            let fired = detect::detect(
                &reader,
                &SeeAll,
                &committed,
                height,
                thresholds,
                &mut suppliers_kept,
                &mut kept,
            )
            .expect("incremental");
            incremental.extend(only_charts(fired));
            let fired = detect::detect(
                &reader,
                &SeeAll,
                &committed,
                height,
                thresholds,
                &mut suppliers_whole,
                &mut detect::Charts::default(),
            )
            .expect("whole");
            whole.extend(only_charts(fired));
        }
        let unique: std::collections::BTreeSet<String> = incremental.iter().cloned().collect();
        assert_eq!(
            unique.len(),
            incremental.len(),
            "seed {seed}: a key fired twice"
        );
        assert_eq!(unique, whole, "seed {seed}");
        assert!(
            whole.iter().any(|k| k.starts_with("runRule|")),
            "seed {seed}: {whole:?}"
        );
        assert!(!kept.is_empty());
    }
}

#[test]
fn a_charts_series_keyspace_holds_what_the_quality_facts_hold() {
    // Goal: the measurement series written at commit (keyspace `u`) gives a
    // chart exactly the points the quality facts give: one per event, under
    // its first subject of the GTIN, in chain order. Method: a planted
    // story; every characteristic of every product read both ways (the
    // facts by one prefix scan, as charts read them before `u`). Two
    // campaigns of the benchmark shape (2,880 units), so the end-of-line
    // series spans two chunks; then the index is rebuilt from the block log
    // (one block per batch, not the bulk load's batches) and every chart
    // must give the same points again.
    use lotline_core::epcis::QualityFact;
    use lotline_core::gs1::CANONICAL_HOST;
    use lotline_node::store::lineage::Origins;
    let scale = Scale::for_events(4_000);
    let (dir, loaded, truth) = load(3, scale);
    let reader = loaded.store.reader();
    let mut compared = 0;
    let mut longest = 0;
    let mut charts = Vec::new();
    for gtin in [
        truth.drift_gtin.clone(),
        gtin_of(truth.exposed.first().expect("exposed")),
    ] {
        let stem = format!("{CANONICAL_HOST}/01/{gtin}/");
        let facts = reader
            .facts_under(&stem, &Origins::default())
            .expect("facts");
        let mut names = std::collections::BTreeSet::new();
        for (_, (_, fact)) in &facts {
            if let Some(QualityFact::Inspection { measurements, .. }) = &fact.quality {
                names.extend(measurements.iter().map(|m| m.name.clone()));
            }
        }
        assert!(!names.is_empty(), "{gtin}");
        for name in names {
            let mut by_event = std::collections::BTreeMap::new();
            for (subject, (at, fact)) in &facts {
                let Some(QualityFact::Inspection { measurements, .. }) = &fact.quality else {
                    continue;
                };
                let Some(m) = measurements.iter().find(|m| m.name == name) else {
                    continue;
                };
                by_event
                    .entry((at.height, at.index))
                    .or_insert((m.value, subject.clone()));
            }
            let request = ChartRequest {
                gtin: gtin.clone(),
                characteristic: name.clone(),
                baseline: Some(2),
                points: Some(100_000),
                subgroup: Default::default(),
            };
            let chart = match quality::chart(&reader, &request, &SeeAll) {
                Ok(chart) => chart,
                Err(e) => {
                    assert!(by_event.len() < 2, "{gtin} {name}: {e}");
                    continue;
                }
            };
            let from_facts: Vec<(u64, f64, String)> = by_event
                .into_iter()
                .map(|((height, _), (value, subject))| (height, value, subject))
                .collect();
            let from_series: Vec<(u64, f64, String)> = chart
                .points
                .iter()
                .map(|p| (p.height, p.value, p.subject.clone()))
                .collect();
            assert_eq!(from_series, from_facts, "{gtin} {name}");
            compared += from_series.len();
            longest = longest.max(from_series.len());
            charts.push((request, points_of(&chart)));
        }
    }
    assert!(compared > 50, "{compared}");
    let chunk = lotline_node::quality::chunk::CHUNK_POINTS as usize;
    assert!(longest > chunk, "no series spans two chunks: {longest}");
    drop(reader);
    drop(loaded);
    std::fs::remove_dir_all(bulk_load::index_path(dir.path()).expect("index path")).expect("rm");
    let (store, report, _) = bulk_load::reopen(dir.path(), scale).expect("reopen");
    assert!(report.reapplied_blocks > 0, "{report:?}");
    let reader = store.reader();
    for (request, points) in charts {
        let chart = quality::chart(&reader, &request, &SeeAll).expect("chart after rebuild");
        assert_eq!(points_of(&chart), points, "{}", request.characteristic);
    }
}

/// What a chart says about each point it lists.
fn points_of(chart: &quality::Chart) -> Vec<(u64, u64, String, Option<String>, String)> {
    chart
        .points
        .iter()
        .map(|p| {
            (
                p.height,
                p.value.to_bits(),
                p.subject.clone(),
                p.lot.clone(),
                p.event_time.clone(),
            )
        })
        .collect()
}

fn gtin_of(unit: &str) -> String {
    match Identifier::parse(unit) {
        Ok(Identifier::Item { gtin, .. }) => gtin.as_str().to_owned(),
        other => panic!("{unit} is not a serial: {other:?}"),
    }
}
