//! Idle views under the VOPR: intermittent load (bursts with idle gaps,
//! gossiped) through the safety phase with faults, then in the healed
//! liveness phase an idle window that may add only a few blocks and views
//! per heartbeat, and a burst that arrives in the idle view of a leader
//! that has just crashed and must be committed by every up validator
//! within view timeouts, well below the heartbeat (`sim::load`). Then that
//! leader restarts, behind, on a chain idle again, and must reach the
//! others' height within the same bound.
//!
//! The positive controls show that the checks can fail: without idle
//! views (nodes never report their work) the idle window churns, with
//! engines that never hear of work the burst waits for the heartbeat, and
//! with transports that never report a reconnection the restarted leader
//! learns that it is behind only from the heartbeat.

use lotline_sim::sim::{self, Behaviour, Load, SimConfig, Stats};

fn config(seed: u64, validators: usize, byzantine: usize, behaviour: Behaviour) -> SimConfig {
    SimConfig {
        seed,
        validators,
        byzantine,
        behaviour,
        require_liveness: true,
        outage: None,
        load: Load::Intermittent,
        bodies_missing_percent: 0,
        log: false,
        reconfigure: false,
    }
}

/// Runs the seeds; panics listing every failure. Returns the summed
/// counters and how many seeds crashed the idle leader before the burst
/// (each of them restarted it after the burst and saw it rejoin).
fn run_seeds(
    seeds: std::ops::Range<u64>,
    validators: usize,
    byzantine: usize,
    behaviour: Behaviour,
) -> (Stats, u64) {
    let mut failures = Vec::new();
    let mut total = Stats::default();
    let mut dead_leader = 0;
    for seed in seeds {
        let report = sim::run(&config(seed, validators, byzantine, behaviour));
        if !report.ok() {
            failures.push(format!(
                "{}\n  replay: {}",
                report.summary(),
                report.config.replay_command()
            ));
        }
        let s = &report.stats;
        assert!(
            s.wake_ms <= s.wake_bound_ms && s.wake_bound_ms * 2 <= s.heartbeat_ms,
            "seed {seed}: {}",
            report.summary()
        );
        total.commits += s.commits;
        total.crashes += s.crashes;
        total.arrived += s.arrived;
        total.idle_blocks += s.idle_blocks;
        total.idle_views += s.idle_views;
        total.idle_window_ms += s.idle_window_ms;
        total.heartbeat_ms = total.heartbeat_ms.max(s.heartbeat_ms);
        dead_leader += u64::from(s.idle_leader_crashed);
        assert_eq!(
            s.rejoin_ms > 0,
            s.idle_leader_crashed,
            "seed {seed}: a crashed idle leader restarts and rejoins: {}",
            report.summary()
        );
    }
    assert!(
        failures.is_empty(),
        "{} seed(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    (total, dead_leader)
}

#[test]
fn n4_intermittent_load() {
    let (stats, dead_leader) = run_seeds(0..60, 4, 0, Behaviour::Equivocator);
    assert!(stats.crashes > 0 && stats.arrived > 0, "{stats:?}");
    assert_eq!(dead_leader, 60, "every seed crashes the idle leader");
    assert!(
        stats.idle_blocks > 0,
        "the heartbeat never made a block: {stats:?}"
    );
}

#[test]
fn n4_intermittent_load_with_a_byzantine_validator() {
    run_seeds(0..40, 4, 1, Behaviour::Equivocator);
    run_seeds(0..40, 4, 1, Behaviour::Silent);
}

#[test]
fn n7_intermittent_load() {
    let (_, dead_leader) = run_seeds(0..25, 7, 1, Behaviour::Silent);
    assert!(dead_leader > 0, "no seed crashed the idle leader");
    run_seeds(0..25, 7, 2, Behaviour::Equivocator);
}

/// The idle check fires on the protocol without idle views: the same
/// seed with nodes that never tell their engines about work churns.
#[test]
fn positive_control_without_idle_views_the_idle_window_churns() {
    let mut config = config(3, 4, 0, Behaviour::Equivocator);
    config.load = Load::IntermittentUnreported;
    let report = sim::run(&config);
    let failure = report.liveness_failure.unwrap_or_default();
    assert!(failure.contains("idle chain churns"), "{failure:?}");
}

/// The wake-up check fires when engines never hear of work: the burst in
/// the dead leader's view then waits for a heartbeat.
#[test]
fn positive_control_engines_deaf_to_work_miss_the_wake_bound() {
    let mut config = config(3, 4, 0, Behaviour::Equivocator);
    config.load = Load::IntermittentDeaf;
    let report = sim::run(&config);
    let failure = report.liveness_failure.unwrap_or_default();
    assert!(
        failure.contains("dead leader's idle view took"),
        "{failure:?}"
    );
}

/// The rejoin check fires when a restarted validator is not told it is
/// behind: with no reconnection reported, the idle leader restarted after
/// the burst waits for the heartbeat.
#[test]
fn positive_control_unannounced_reconnections_miss_the_rejoin_bound() {
    let mut config = config(3, 4, 0, Behaviour::Equivocator);
    config.load = Load::IntermittentUnannounced;
    let report = sim::run(&config);
    let failure = report.liveness_failure.unwrap_or_default();
    assert!(
        failure.contains("restarted at") && failure.contains("heartbeat"),
        "{failure:?}"
    );
}
