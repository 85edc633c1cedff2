//! A run is a pure function of its seed: the same seed twice gives the
//! same trace hash; different seeds give different ones (so the hash can
//! tell runs apart at all).

use lotline_sim::sim::{self, Behaviour, Load, SimConfig};

fn config(seed: u64) -> SimConfig {
    SimConfig {
        seed,
        validators: 4,
        byzantine: 1,
        behaviour: Behaviour::Equivocator,
        require_liveness: true,
        outage: None,
        load: Load::Constant,
        bodies_missing_percent: 0,
        log: false,
        reconfigure: false,
    }
}

#[test]
fn same_seed_same_trace() {
    for seed in [3, 17] {
        let first = sim::run(&config(seed));
        let second = sim::run(&config(seed));
        assert_eq!(
            first.trace, second.trace,
            "seed {seed} is not deterministic"
        );
        assert_eq!(first.heights, second.heights);
        assert_eq!(first.stats.events, second.stats.events);
    }
}

#[test]
fn different_seeds_differ() {
    let traces: std::collections::BTreeSet<_> =
        (0..6).map(|seed| sim::run(&config(seed)).trace).collect();
    assert_eq!(traces.len(), 6, "two seeds produced the same trace");
}
