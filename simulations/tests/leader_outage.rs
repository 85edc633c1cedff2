//! A validator down while the others carry on (issue 10, defect 8): one
//! honest validator of four crashes for good, or freezes and resumes, when
//! the liveness phase starts. The others must stay safe, keep committing,
//! and spend a whole leader timeout only in the missing leader's first
//! turns ([`OUTAGE_FIRST_TURNS`]: the turn in which they learn it is gone);
//! every later turn of a dead leader costs the short timer of a suspected
//! leader. A frozen validator that resumes must lead committed blocks again.
//!
//! Without the suspected-leader rule every one of the dead leader's turns
//! waits a whole timeout and `outage_full_timeouts == outage_turns`.

use lotline_sim::sim::{
    self, Behaviour, Load, OUTAGE_FIRST_TURNS, OUTAGE_LIVENESS_HEIGHTS, Outage, Report, SimConfig,
};

fn run(seed: u64, outage: Outage) -> Report {
    sim::run(&SimConfig {
        seed,
        validators: 4,
        byzantine: 0,
        behaviour: Behaviour::Silent,
        require_liveness: true,
        outage: Some(outage),
        load: Load::Constant,
        bodies_missing_percent: 0,
        log: false,
        reconfigure: false,
    })
}

/// Safety, liveness and the bound on whole timeouts, for every seed.
fn check(seeds: std::ops::Range<u64>, outage: Outage) -> Vec<Report> {
    let mut failures = Vec::new();
    let mut reports = Vec::new();
    for seed in seeds {
        let report = run(seed, outage);
        let s = &report.stats;
        let mut problems = Vec::new();
        if !report.ok() {
            problems.push("unsafe or not live".to_string());
        }
        if s.outage_full_timeouts > OUTAGE_FIRST_TURNS as u64 {
            problems.push(format!(
                "whole timeouts in {} of the missing leader's views (at most {OUTAGE_FIRST_TURNS})",
                s.outage_full_timeouts
            ));
        }
        // A later turn of a suspect costs its short timer plus the
        // nullify votes' trip, far below a whole timeout.
        if s.outage_later_turn_ms_max >= report.options.timeout_base_ms {
            problems.push(format!(
                "a later turn of the missing leader took {} ms (timeout {} ms)",
                s.outage_later_turn_ms_max, report.options.timeout_base_ms
            ));
        }
        if !problems.is_empty() {
            failures.push(format!(
                "{}\n  {}\n  replay: {}",
                report.summary(),
                problems.join("; "),
                report.config.replay_command()
            ));
        }
        reports.push(report);
    }
    assert!(
        failures.is_empty(),
        "{} seed(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    reports
}

#[test]
fn a_crashed_validator_costs_whole_timeouts_only_in_its_first_turns() {
    let reports = check(0..8, Outage::Crash);
    let turns: u64 = reports.iter().map(|r| r.stats.outage_turns).sum();
    let full: u64 = reports.iter().map(|r| r.stats.outage_full_timeouts).sum();
    // The scenario means something: the dead leader was due many times.
    assert!(
        turns >= 8 * 3 * (OUTAGE_LIVENESS_HEIGHTS / 4 / 2),
        "only {turns} turns of the dead leader over 8 seeds"
    );
    assert!(full * 4 < turns, "{full} whole timeouts in {turns} turns");
}

#[test]
fn a_frozen_validator_costs_little_while_frozen_and_leads_again_after_it_resumes() {
    let reports = check(100..108, Outage::Freeze);
    let turns: u64 = reports.iter().map(|r| r.stats.outage_turns).sum();
    assert!(turns >= 8 * 3, "only {turns} turns of the frozen leader");
    for report in &reports {
        assert!(
            report.stats.outage_blocks_after_resume > 0,
            "the resumed validator never led a committed block again: {}",
            report.summary()
        );
    }
}
