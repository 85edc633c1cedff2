//! `vopr --reconfigure` in CI: the validator set changes (add, remove,
//! rotate) at every epoch boundary under crashes, partitions and one
//! Byzantine validator; the checker takes every certificate's quorum and
//! keys from its own epoch. The runs must cross several boundaries and
//! re-propose some boundary blocks, or the green result means little.

use lotline_sim::sim::{self, Behaviour, Load, SimConfig, Stats};

fn config(seed: u64, byzantine: usize, behaviour: Behaviour) -> SimConfig {
    SimConfig {
        seed,
        validators: 4,
        byzantine,
        behaviour,
        require_liveness: true,
        outage: None,
        load: Load::Constant,
        bodies_missing_percent: 0,
        log: false,
        reconfigure: true,
    }
}

fn run_seeds(seeds: std::ops::Range<u64>, byzantine: usize, behaviour: Behaviour) -> Stats {
    let mut failures = Vec::new();
    let mut total = Stats::default();
    for seed in seeds {
        let report = sim::run(&config(seed, byzantine, behaviour));
        if !report.ok() {
            failures.push(format!(
                "{}\n  replay: {}",
                report.summary(),
                report.config.replay_command()
            ));
        }
        let s = &report.stats;
        total.commits += s.commits;
        total.crashes += s.crashes;
        total.partitions += s.partitions;
        total.evidence += s.evidence;
        total.epochs += s.epochs;
        total.reproposed_boundaries += s.reproposed_boundaries;
    }
    assert!(
        failures.is_empty(),
        "{} seed(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    total
}

#[test]
fn reconfigurations_under_faults_stay_safe_and_live() {
    let stats = run_seeds(0..60, 0, Behaviour::Equivocator);
    assert!(stats.epochs >= 120, "few boundaries crossed: {stats:?}");
    assert!(
        stats.reproposed_boundaries > 0,
        "no boundary re-proposed: {stats:?}"
    );
    assert!(stats.crashes > 0 && stats.partitions > 0, "{stats:?}");
}

#[test]
fn reconfigurations_with_an_equivocator_stay_safe_and_live() {
    let stats = run_seeds(100..150, 1, Behaviour::Equivocator);
    assert!(stats.evidence > 0, "no equivocation detected: {stats:?}");
    assert!(stats.epochs >= 50, "{stats:?}");
}
