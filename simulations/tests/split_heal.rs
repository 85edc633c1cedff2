//! A healed two-against-two split (issue 10, chaos finding 3): while the
//! network is cut neither half holds a quorum, every view is nullified and
//! the view timeouts double up to their maximum. When the cut heals, each
//! side's transport reports the other side connected again, and a stuck
//! validator sends its `nullify` and entry certificate to the peer at once
//! (`Input::PeerConnected`): the next block is final within round trips,
//! not after the doubled view timeout that a retry would wait.
//!
//! Without the rule the first block after the heal waits for the next
//! retry timer, anywhere up to `timeout_max_ms` (eight base timeouts here).

use lotline_sim::sim::{self, Behaviour, Load, Outage, Report, SPLIT_TIMEOUTS, SimConfig};

fn run(seed: u64) -> Report {
    sim::run(&SimConfig {
        seed,
        validators: 4,
        byzantine: 0,
        behaviour: Behaviour::Silent,
        require_liveness: true,
        outage: Some(Outage::Split),
        load: Load::Constant,
        bodies_missing_percent: 0,
        log: false,
        reconfigure: false,
    })
}

#[test]
fn a_healed_split_commits_again_within_round_trips_not_a_doubled_timeout() {
    let mut failures = Vec::new();
    for seed in 200..212 {
        let report = run(seed);
        let base = report.options.timeout_base_ms;
        // The split lasted long enough for the timeouts to reach their
        // maximum, so a retry would wait up to eight base timeouts.
        assert!(SPLIT_TIMEOUTS * base > 15 * base);
        let replay = format!("cargo run -p lotline-sim --bin vopr -- --seed {seed} --outage split");
        match report.stats.split_heal_to_commit_ms {
            _ if !report.ok() => failures.push(format!("{}\n  replay: {replay}", report.summary())),
            None => failures.push(format!("no commit after the heal\n  replay: {replay}")),
            // Round trips on the healed network (delays of at most
            // `delay_min + 50` ms) fit well inside one base timeout.
            Some(ms) if ms >= base => failures.push(format!(
                "first commit {ms} ms after the heal (base timeout {base} ms)\n  replay: {replay}"
            )),
            Some(_) => {}
        }
    }
    assert!(
        failures.is_empty(),
        "{} seed(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
