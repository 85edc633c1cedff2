//! The fault schedule: a pure function of (seed, duration, fault kinds).
//!
//! The same seed gives the same faults, on the same nodes, with the same
//! hold times, in the same order; that is what `--seed` replays. Wall-clock
//! timing still varies (how long a node takes to catch up decides when the
//! next fault starts), so a replay reproduces the schedule, not the exact
//! interleaving with the load.
//!
//! The first round injects every kind once, in a seeded order, whatever
//! the duration (a run shorter than that round takes as long as the round
//! does), so every run covers every kind; later steps draw kinds at random
//! and are planned, and run, only while the duration lasts.

use std::fmt;
use std::time::Duration;

use lotline_sim::sim::rng::Rng;

/// Number of validator processes the harness runs.
pub const NODES: usize = 4;

/// What kind of fault a step injects (the `--faults` names).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, clap::ValueEnum)]
pub enum FaultKind {
    /// SIGKILL one node, restart it on its data.
    Kill,
    /// SIGSTOP one node (a frozen peer), then SIGCONT.
    Freeze,
    /// Two nodes stopped (killed or frozen): no quorum; then both recover.
    QuorumLoss,
    /// Partition 2|2: neither side has a quorum.
    Split,
    /// Partition 1|3: one node cut off from the other three.
    Isolate,
    /// Asymmetric: one node hears no peer, every peer still hears it.
    Deaf,
    /// Asymmetric between two nodes: A reaches B, B does not reach A.
    OneWay,
    /// Every node in turn stopped with SIGTERM (it must exit 0) and
    /// restarted on its data once the previous one caught up: an upgrade
    /// rolled through the consortium under load.
    RollingRestart,
}

impl FaultKind {
    pub const ALL: [FaultKind; 8] = [
        FaultKind::Kill,
        FaultKind::Freeze,
        FaultKind::QuorumLoss,
        FaultKind::Split,
        FaultKind::Isolate,
        FaultKind::Deaf,
        FaultKind::OneWay,
        FaultKind::RollingRestart,
    ];

    /// Kinds that need network namespaces.
    pub fn is_partition(self) -> bool {
        matches!(
            self,
            FaultKind::Split | FaultKind::Isolate | FaultKind::Deaf | FaultKind::OneWay
        )
    }

    /// Whether the three other validators keep a quorum during the fault.
    pub fn keeps_quorum(self) -> bool {
        !matches!(self, FaultKind::QuorumLoss | FaultKind::Split)
    }

    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Kill => "kill",
            FaultKind::Freeze => "freeze",
            FaultKind::QuorumLoss => "quorum-loss",
            FaultKind::Split => "split",
            FaultKind::Isolate => "isolate",
            FaultKind::Deaf => "deaf",
            FaultKind::OneWay => "one-way",
            FaultKind::RollingRestart => "rolling-restart",
        }
    }
}

/// How a node is taken down when quorum is lost.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    Kill,
    Freeze,
}

/// One fault with the nodes it hits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    Kill {
        node: usize,
    },
    Freeze {
        node: usize,
    },
    QuorumLoss {
        nodes: [(usize, Stop); 2],
    },
    /// `side` is cut off from the other two nodes.
    Split {
        side: [usize; 2],
    },
    Isolate {
        node: usize,
    },
    Deaf {
        node: usize,
    },
    /// Packets `from` → `to` are delivered, `to` → `from` dropped.
    OneWay {
        from: usize,
        to: usize,
    },
    /// One step of a rolling restart: SIGTERM, a clean exit, restart.
    Restart {
        node: usize,
    },
}

impl Fault {
    pub fn kind(&self) -> FaultKind {
        match self {
            Fault::Kill { .. } => FaultKind::Kill,
            Fault::Freeze { .. } => FaultKind::Freeze,
            Fault::QuorumLoss { .. } => FaultKind::QuorumLoss,
            Fault::Split { .. } => FaultKind::Split,
            Fault::Isolate { .. } => FaultKind::Isolate,
            Fault::Deaf { .. } => FaultKind::Deaf,
            Fault::OneWay { .. } => FaultKind::OneWay,
            Fault::Restart { .. } => FaultKind::RollingRestart,
        }
    }

    /// The nodes whose view of the chain falls behind during the fault:
    /// after the heal each must catch up with the others.
    pub fn lagging(&self) -> Vec<usize> {
        match *self {
            Fault::Kill { node }
            | Fault::Restart { node }
            | Fault::Freeze { node }
            | Fault::Isolate { node }
            | Fault::Deaf { node } => vec![node],
            Fault::QuorumLoss { nodes } => nodes.iter().map(|(n, _)| *n).collect(),
            Fault::Split { .. } => (0..NODES).collect(),
            Fault::OneWay { from, to } => vec![from, to],
        }
    }

    /// Directed links `(from, to)` whose packets are dropped.
    pub fn cuts(&self) -> Vec<(usize, usize)> {
        let others = |node: usize| (0..NODES).filter(move |&o| o != node);
        match *self {
            Fault::Split { side } => {
                let rest: Vec<usize> = (0..NODES).filter(|n| !side.contains(n)).collect();
                let mut cuts = Vec::new();
                for &a in &side {
                    for &b in &rest {
                        cuts.push((a, b));
                        cuts.push((b, a));
                    }
                }
                cuts
            }
            Fault::Isolate { node } => others(node).flat_map(|o| [(node, o), (o, node)]).collect(),
            Fault::Deaf { node } => others(node).map(|o| (o, node)).collect(),
            Fault::OneWay { from, to } => vec![(to, from)],
            Fault::Kill { .. }
            | Fault::Restart { .. }
            | Fault::Freeze { .. }
            | Fault::QuorumLoss { .. } => Vec::new(),
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Fault::Kill { node } => write!(f, "kill n{node}, restart"),
            Fault::Restart { node } => {
                write!(f, "rolling restart: SIGTERM n{node}, clean exit, restart")
            }
            Fault::Freeze { node } => write!(f, "freeze n{node} (SIGSTOP), SIGCONT"),
            Fault::QuorumLoss { nodes } => {
                let how = |s: Stop| match s {
                    Stop::Kill => "kill",
                    Stop::Freeze => "freeze",
                };
                write!(
                    f,
                    "quorum loss: {} n{} + {} n{}",
                    how(nodes[0].1),
                    nodes[0].0,
                    how(nodes[1].1),
                    nodes[1].0
                )
            }
            Fault::Split { side } => {
                let rest: Vec<String> = (0..NODES)
                    .filter(|n| !side.contains(n))
                    .map(|n| format!("n{n}"))
                    .collect();
                write!(
                    f,
                    "partition n{} n{} vs {}",
                    side[0],
                    side[1],
                    rest.join(" ")
                )
            }
            Fault::Isolate { node } => write!(f, "partition n{node} vs the other three"),
            Fault::Deaf { node } => write!(f, "asymmetric: n{node} hears no peer, peers hear it"),
            Fault::OneWay { from, to } => {
                write!(
                    f,
                    "asymmetric: n{from} -> n{to} delivered, n{to} -> n{from} dropped"
                )
            }
        }
    }
}

/// One step: inject `fault`, keep it for `hold`, heal, wait for recovery,
/// then let the cluster run clean for `settle`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Step {
    pub fault: Fault,
    pub hold: Duration,
    pub settle: Duration,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Schedule {
    pub seed: u64,
    /// Clean load before the first fault.
    pub warmup: Duration,
    pub steps: Vec<Step>,
    /// The first `first_round` steps (one per kind) run even past the
    /// duration.
    pub first_round: usize,
}

/// Time a step is expected to take beyond hold and settle (the recovery
/// wait), used only to size the plan; the run stops injecting at its end
/// whatever the plan says.
const RECOVERY_ESTIMATE: Duration = Duration::from_secs(3);
pub const WARMUP: Duration = Duration::from_secs(10);

/// The schedule for `seed` over `duration`, using only `kinds` (in the
/// order of [`FaultKind::ALL`]; an empty list means no faults).
pub fn plan(seed: u64, duration: Duration, kinds: &[FaultKind]) -> Schedule {
    let mut rng = Rng::new(seed);
    let kinds: Vec<FaultKind> = FaultKind::ALL
        .into_iter()
        .filter(|k| kinds.contains(k))
        .collect();
    let mut steps = Vec::new();
    let mut planned = WARMUP;
    // Long campaigns also hold some faults long enough for the chain to
    // move far ahead of the lagging node (catch-up over many blocks).
    let campaign = duration >= Duration::from_secs(600);
    let mut round: Vec<FaultKind> = Vec::new();
    // Steps of the first round (every kind once); it runs whatever the
    // duration.
    let mut first_round = None;
    // The bound guards against an endless plan if durations were ever zero.
    while !kinds.is_empty() && steps.len() < 100_000 {
        if round.is_empty() {
            if steps.is_empty() {
                round = kinds.clone();
                rng.shuffle(&mut round);
            } else {
                first_round.get_or_insert(steps.len());
                round.push(kinds[rng.below(kinds.len() as u64) as usize]);
            }
        }
        let kind = round.remove(0);
        let mut batch = Vec::new();
        if kind == FaultKind::RollingRestart {
            // Every node in turn: each step's recovery waits for the
            // restarted node to catch up before the next goes down.
            for node in 0..NODES {
                batch.push(Step {
                    fault: Fault::Restart { node },
                    hold: Duration::from_secs(rng.range(1, 3)),
                    settle: Duration::from_secs(rng.range(1, 3)),
                });
            }
        } else {
            let hold_s = if campaign && rng.chance(0.1) {
                rng.range(20, 60)
            } else {
                match kind {
                    FaultKind::Kill | FaultKind::Freeze => rng.range(2, 8),
                    _ => rng.range(3, 10),
                }
            };
            batch.push(Step {
                fault: fault(kind, &mut rng),
                hold: Duration::from_secs(hold_s),
                settle: Duration::from_secs(rng.range(3, 6)),
            });
        }
        planned += batch
            .iter()
            .map(|step| step.hold + step.settle + RECOVERY_ESTIMATE)
            .sum::<Duration>();
        if planned > duration && first_round.is_some() {
            break;
        }
        steps.extend(batch);
    }
    Schedule {
        seed,
        first_round: first_round.unwrap_or(steps.len()),
        warmup: WARMUP,
        steps,
    }
}

fn fault(kind: FaultKind, rng: &mut Rng) -> Fault {
    let node = |rng: &mut Rng| rng.below(NODES as u64) as usize;
    let two = |rng: &mut Rng| {
        let mut all = [0, 1, 2, 3];
        rng.shuffle(&mut all);
        [all[0], all[1]]
    };
    match kind {
        FaultKind::Kill => Fault::Kill { node: node(rng) },
        FaultKind::Freeze => Fault::Freeze { node: node(rng) },
        FaultKind::QuorumLoss => {
            let [a, b] = two(rng);
            let stop = |rng: &mut Rng| {
                if rng.chance(0.5) {
                    Stop::Kill
                } else {
                    Stop::Freeze
                }
            };
            Fault::QuorumLoss {
                nodes: [(a, stop(rng)), (b, stop(rng))],
            }
        }
        FaultKind::Split => {
            let mut side = two(rng);
            side.sort_unstable();
            Fault::Split { side }
        }
        FaultKind::Isolate => Fault::Isolate { node: node(rng) },
        FaultKind::Deaf => Fault::Deaf { node: node(rng) },
        FaultKind::OneWay => {
            let [from, to] = two(rng);
            Fault::OneWay { from, to }
        }
        FaultKind::RollingRestart => Fault::Restart { node: node(rng) },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_replays_the_same_schedule() {
        let d = Duration::from_secs(150);
        assert_eq!(plan(1, d, &FaultKind::ALL), plan(1, d, &FaultKind::ALL));
        assert_ne!(
            plan(1, d, &FaultKind::ALL).steps,
            plan(2, d, &FaultKind::ALL).steps
        );
    }

    #[test]
    fn every_run_covers_every_kind_and_later_steps_fit_the_duration() {
        for (seed, secs) in (0..200).zip([30, 120, 150, 600].into_iter().cycle()) {
            let d = Duration::from_secs(secs);
            let schedule = plan(seed, d, &FaultKind::ALL);
            // The rolling restart is one step per node.
            assert_eq!(schedule.first_round, FaultKind::ALL.len() + NODES - 1);
            let rolling: Vec<usize> = schedule.steps[..schedule.first_round]
                .iter()
                .filter_map(|s| match s.fault {
                    Fault::Restart { node } => Some(node),
                    _ => None,
                })
                .collect();
            assert_eq!(rolling, vec![0, 1, 2, 3], "seed {seed}");
            for kind in FaultKind::ALL {
                assert!(
                    schedule.steps.iter().any(|s| s.fault.kind() == kind),
                    "seed {seed}: no {kind:?}"
                );
            }
            if schedule.steps.len() > schedule.first_round {
                let total: Duration = schedule
                    .steps
                    .iter()
                    .map(|s| s.hold + s.settle + RECOVERY_ESTIMATE)
                    .sum::<Duration>()
                    + schedule.warmup;
                assert!(total <= d, "seed {seed}: {total:?}");
            }
        }
    }

    #[test]
    fn only_the_chosen_kinds_are_planned() {
        let kinds = [FaultKind::Kill, FaultKind::Freeze];
        let schedule = plan(3, Duration::from_secs(600), &kinds);
        assert!(schedule.steps.len() > 10);
        assert!(
            schedule
                .steps
                .iter()
                .all(|s| kinds.contains(&s.fault.kind()))
        );
        assert!(plan(3, Duration::from_secs(600), &[]).steps.is_empty());
    }

    #[test]
    fn cuts_match_the_fault() {
        let split = Fault::Split { side: [0, 2] };
        let cuts = split.cuts();
        assert_eq!(cuts.len(), 8);
        assert!(cuts.contains(&(0, 1)) && cuts.contains(&(1, 0)));
        assert!(!cuts.contains(&(0, 2)) && !cuts.contains(&(1, 3)));
        assert_eq!(Fault::Isolate { node: 1 }.cuts().len(), 6);
        let deaf = Fault::Deaf { node: 3 }.cuts();
        assert_eq!(deaf, vec![(0, 3), (1, 3), (2, 3)]);
        assert_eq!(Fault::OneWay { from: 1, to: 2 }.cuts(), vec![(2, 1)]);
        assert!(Fault::Kill { node: 0 }.cuts().is_empty());
    }
}
