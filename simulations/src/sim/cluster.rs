//! The driver: builds the cluster for a seed, runs the event loop through
//! the safety and liveness phases, and reports.

use std::collections::{BTreeMap, BTreeSet};
use std::num::NonZeroU64;
use std::sync::Arc;

use lotline_consensus::{Config, Message, Verifier};
use lotline_core::attestation::{AttestationId, Envelope};
use lotline_core::crypto::SigningKey;
use lotline_core::hash::{self, Domain};

use crate::sim::byzantine::Coalition;
use crate::sim::checker::Checker;
use crate::sim::clock::Queue;
use crate::sim::load::Plan;
use crate::sim::network::Network;
use crate::sim::node::{Ctx, Event, Node, Packet, Role};
use crate::sim::rng::Rng;
use crate::sim::roster::Roster;
use crate::sim::verifier::MemoVerifier;
use crate::sim::{
    Behaviour, Load, OUTAGE_LIVENESS_HEIGHTS, Options, Outage, Report, SimConfig, Stats, Trace,
};

/// A run that processes more events than this has stalled in a loop.
const EVENTS_MAX: u64 = 5_000_000;
/// Nodes beyond the initial validators that a reconfiguring run may add.
const SPARE_NODES: usize = 2;
/// Heights per epoch of a reconfiguring run, drawn in this range: short,
/// so that a run crosses many boundaries under faults.
const EPOCH_BLOCKS: (u64, u64) = (3, 12);
/// Seeds the reconfiguration draws (xor the run's seed).
const RECONFIGURE_STREAM: u64 = 0x5EC0_F1C0_0E90_C4B5;

struct Simulation {
    config: SimConfig,
    options: Options,
    rng: Rng,
    queue: Queue<Event>,
    network: Network,
    checker: Checker,
    memo: Arc<MemoVerifier>,
    coalition: Coalition,
    /// Who validates in which epoch (one epoch without `--reconfigure`).
    roster: Roster,
    nodes: Vec<Node>,
    trace: Trace,
    stats: Stats,
    faults: bool,
    /// Liveness phase: the height every honest node must reach.
    target: Option<u64>,
    /// The validator that went down when the liveness phase started.
    down: Option<Down>,
    /// Per node: the view it is in and when it entered it.
    entered: Vec<Option<(u64, u64)>>,
    /// Views of the missing leader that honest validators sat through
    /// while it was down, with the longest time one of them spent in it.
    turns: BTreeMap<u64, u64>,
    /// A split outage: when it healed, and the highest honest height then.
    split_healed: Option<(u64, u64)>,
    /// Intermittent load: the plan, the attestations made so far, the idle
    /// window's start (time, top view), the timed burst,
    /// and a broken idle or wake-up bound.
    plan: Option<Plan>,
    made: u64,
    idle_from: Option<(u64, u64)>,
    wake: Option<Wake>,
    rejoin: Option<Rejoin>,
    load_failure: Option<String>,
}

/// The crashed idle leader's restart after the timed burst: who, when,
/// the others' height then, and when it reached it.
#[derive(Clone, Copy, Debug)]
struct Rejoin {
    node: u16,
    at_ms: u64,
    height: u64,
    done_ms: Option<u64>,
}

/// The timed burst of an intermittent run.
#[derive(Clone, Debug)]
struct Wake {
    at_ms: u64,
    ids: Vec<AttestationId>,
    done_ms: Option<u64>,
}

/// An [`Outage`] in progress.
#[derive(Clone, Copy, Debug)]
struct Down {
    node: u16,
    outage: Outage,
    from_ms: u64,
    /// A freeze ends here; a crash never does.
    until_ms: Option<u64>,
}

/// The missing leader's first turns after it went down, which may cost
/// whole timeouts: validators learn that it is gone in its first turn they
/// sit through, and a validator that jumped over that view (it was behind,
/// or restarting) learns in the next one, holding the others' nullification
/// back with it.
pub const OUTAGE_FIRST_TURNS: usize = 2;

/// How long a split outage lasts, in base timeouts: the timeouts double
/// once per nullified view (base, 2, 4, 8 times the base: 15 in all) up to
/// `timeout_max_ms`, eight times the base in outage runs.
pub const SPLIT_TIMEOUTS: u64 = 16;

/// A freeze run goes on at least this long after the validator resumed,
/// so that it is due as leader several times.
const AFTER_RESUME_MS: u64 = 3_000;

/// How long a frozen validator stays frozen, at least and at most.
const FREEZE_MS: (u64, u64) = (2_000, 5_000);

/// Runs one seed to the end and reports.
pub fn run(config: &SimConfig) -> Report {
    let simulation = Simulation::new(config.clone());
    simulation.run()
}

fn nonzero(value: u64) -> NonZeroU64 {
    NonZeroU64::new(value).unwrap_or(NonZeroU64::MIN)
}

impl Simulation {
    fn new(config: SimConfig) -> Simulation {
        assert!(config.validators >= 1 && config.validators <= 64);
        assert!(config.byzantine < config.validators);
        let mut seed_rng = Rng::new(config.seed);
        let mut options = Options::draw(&mut seed_rng);
        options.bodies_missing_percent = config.bodies_missing_percent;
        let mut rng = seed_rng.fork();
        let n = config.validators;
        let plan = config
            .load
            .intermittent()
            .then(|| Plan::draw(config.seed, &options));
        if let Some(plan) = &plan {
            assert!(
                config.outage.is_none(),
                "intermittent load brings its own outage"
            );
            options.liveness_ms = plan.liveness_ms();
        }
        if config.outage.is_some() {
            let f = (n - 1) / 3;
            assert!(
                n - config.byzantine > n - f,
                "an outage needs a quorum of honest validators without the missing one"
            );
            // Long enough for many turns of the missing leader, and a leader
            // timeout well above the healed network's delays, so that a view
            // that lasts a whole timeout can only be a timeout.
            options.liveness_heights = OUTAGE_LIVENESS_HEIGHTS;
            options.timeout_base_ms = 400 + config.seed % 600;
            options.timeout_max_ms = options.timeout_base_ms * 8;
        }
        let chain_id = hash::hash(Domain::Genesis, &config.seed.to_be_bytes());
        let roster = if config.reconfigure {
            assert!(
                config.outage.is_none() && !config.load.intermittent(),
                "--reconfigure runs constant load without an outage"
            );
            assert!(
                config.behaviour != Behaviour::Abstainer,
                "--reconfigure does not combine with abstainers"
            );
            // Its own stream: the other draws of the seed stay as they are.
            let mut draw = Rng::new(config.seed ^ RECONFIGURE_STREAM);
            let epoch_blocks = draw.range(EPOCH_BLOCKS.0, EPOCH_BLOCKS.1);
            // The liveness phase must cross a boundary too.
            options.liveness_heights = epoch_blocks + 2;
            // Every epoch keeps the Byzantine validators within f.
            let validators_min = (3 * config.byzantine + 1).clamp(4, n.max(4));
            Roster::draw(
                chain_id,
                config.seed,
                (n, SPARE_NODES, validators_min),
                epoch_blocks,
                &mut draw,
            )
        } else {
            Roster::fixed(chain_id, config.seed, n)
        };
        let total = roster.nodes();
        let keys: Vec<SigningKey> = (0..total as u16).map(|i| roster.key(0, i)).collect();
        let mut order: Vec<u16> = (0..n as u16).collect();
        rng.shuffle(&mut order);
        let faulty: BTreeSet<u16> = order.iter().take(config.byzantine).copied().collect();
        // Abstainers are honest validators that do not vote.
        let (byzantine, abstaining) = match config.behaviour {
            Behaviour::Abstainer => (BTreeSet::new(), faulty),
            _ => (faulty, BTreeSet::new()),
        };
        let honest: Vec<u16> = (0..total as u16)
            .filter(|i| !byzantine.contains(i))
            .collect();
        let memo = Arc::new(MemoVerifier::default());
        let verifier: Arc<dyn Verifier> = memo.clone();
        let validators: Vec<_> = roster.epoch(0).map(|e| e.keys()).unwrap_or_default();
        let nodes = (0..total as u16)
            .map(|index| {
                let mut node_config = Config::new(
                    chain_id,
                    validators.clone(),
                    roster.index_of(0, index),
                    keys[usize::from(index)].clone(),
                );
                node_config.timeout_base_ms = nonzero(options.timeout_base_ms);
                node_config.timeout_max_ms = nonzero(options.timeout_max_ms);
                node_config.future_views_max = nonzero(options.future_views_max);
                node_config.committed_blocks_retained = options.committed_blocks_retained;
                node_config.verifier = verifier.clone();
                if let Some(plan) = &plan {
                    node_config.heartbeat_ms = nonzero(plan.heartbeat_ms);
                }
                node_config.voting = !abstaining.contains(&index) && roster.is_member(0, index);
                let role = match (byzantine.contains(&index), config.behaviour) {
                    (false, _) | (true, Behaviour::Abstainer) => Role::Honest,
                    (true, Behaviour::Equivocator) => Role::Equivocator,
                    (true, Behaviour::Silent) => Role::Silent,
                    (true, Behaviour::Withholder) => Role::Withholder,
                };
                Node::new(index, role, node_config, config.load.work_report())
            })
            .collect();
        let coalition_keys: BTreeMap<u16, SigningKey> = byzantine
            .iter()
            .map(|&i| (i, keys[usize::from(i)].clone()))
            .collect();
        Simulation {
            checker: Checker::new(roster.clone(), byzantine, memo.clone()),
            memo,
            coalition: Coalition::new(chain_id, coalition_keys, honest, roster.clone()),
            roster,
            network: Network::new(options.network.clone()),
            queue: Queue::default(),
            nodes,
            trace: Trace::default(),
            stats: Stats::default(),
            faults: true,
            target: None,
            down: None,
            entered: vec![None; total],
            turns: BTreeMap::new(),
            split_healed: None,
            plan,
            made: 0,
            idle_from: None,
            wake: None,
            rejoin: None,
            load_failure: None,
            rng,
            options,
            config,
        }
    }

    fn honest(&self) -> impl Iterator<Item = &Node> {
        self.nodes.iter().filter(|n| n.role == Role::Honest)
    }

    /// The honest nodes the liveness phase waits for: all but one that
    /// crashed for good.
    fn expected(&self) -> impl Iterator<Item = &Node> {
        let gone = self
            .down
            .filter(|d| d.outage == Outage::Crash)
            .map(|d| d.node);
        self.honest().filter(move |n| Some(n.index) != gone)
    }

    fn view_of(&self, index: u16) -> Option<u64> {
        self.nodes
            .get(usize::from(index))
            .and_then(|n| n.engine.as_ref().map(|e| e.view()))
    }

    /// Gives node `index` a context and runs `f` on it.
    fn with_node(&mut self, index: u16, f: impl FnOnce(&mut Node, &mut Ctx)) {
        let before = self.view_of(index);
        self.with_node_untracked(index, f);
        let after = self.view_of(index);
        self.track_view(index, before, after);
    }

    /// Follows each node's view to time the missing leader's turns.
    fn track_view(&mut self, index: u16, before: Option<u64>, after: Option<u64>) {
        let now_ms = self.queue.now_ms();
        let slot = usize::from(index);
        let Some(after) = after else {
            self.entered[slot] = None;
            return;
        };
        match self.entered[slot] {
            Some((view, since)) if before == Some(view) && after != view => {
                self.judge_turn(index, view, since, now_ms);
                self.entered[slot] = Some((after, now_ms));
            }
            Some((view, _)) if view == after => {}
            _ => self.entered[slot] = Some((after, now_ms)),
        }
    }

    /// `observer` left `view` after sitting in it from `since`: if the
    /// missing validator led it and was down all along, count the turn.
    fn judge_turn(&mut self, observer: u16, view: u64, since: u64, now_ms: u64) {
        let Some(down) = self.down else {
            return;
        };
        let honest = self
            .nodes
            .get(usize::from(observer))
            .is_some_and(|n| n.role == Role::Honest);
        let leader = lotline_consensus::leader(view, self.nodes.len());
        if !honest || observer == down.node || leader != down.node {
            return;
        }
        if since < down.from_ms || down.until_ms.is_some_and(|until| now_ms > until) {
            return;
        }
        let spent = now_ms - since;
        if self.config.log {
            eprintln!("{now_ms:>6} n{observer} TURN of n{leader} in v{view}: {spent} ms");
        }
        self.stats.outage_turns += 1;
        let longest = self.turns.entry(view).or_insert(0);
        *longest = (*longest).max(spent);
    }

    /// The node an event is for, if it can be frozen.
    fn frozen_until(&self, event: &Event) -> Option<u64> {
        let target = match event {
            Event::Deliver { to, .. } => *to,
            Event::Timer { node, .. }
            | Event::Build { node, .. }
            | Event::Local { node, .. }
            | Event::Crash { node }
            | Event::Restart { node }
            | Event::Rejoin { node } => *node,
            Event::PartitionStart
            | Event::PartitionEnd
            | Event::SplitEnd
            | Event::Heal
            | Event::Arrive { .. }
            | Event::IdleStart
            | Event::IdleEnd => return None,
        };
        self.down
            .filter(|d| d.node == target && d.outage == Outage::Freeze)
            .and_then(|d| d.until_ms)
    }

    fn with_node_untracked(&mut self, index: u16, f: impl FnOnce(&mut Node, &mut Ctx)) {
        let now_ms = self.queue.now_ms();
        let n = self.nodes.len();
        let mut ctx = Ctx {
            now_ms,
            n,
            rng: &mut self.rng,
            queue: &mut self.queue,
            network: &mut self.network,
            checker: &mut self.checker,
            coalition: &mut self.coalition,
            trace: &mut self.trace,
            stats: &mut self.stats,
            options: &self.options,
            roster: &self.roster,
            intermittent: self.plan.is_some(),
            faults: self.faults,
            log: self.config.log,
        };
        if let Some(node) = self.nodes.get_mut(usize::from(index)) {
            f(node, &mut ctx);
        }
    }

    fn run(mut self) -> Report {
        for index in 0..self.nodes.len() as u16 {
            self.with_node(index, |node, ctx| node.start(ctx));
        }
        if let Some(gap) = self.options.network.partition_gap_ms {
            let at = self.rng.range(0, 2 * gap);
            self.queue.schedule(at, Event::PartitionStart);
        }
        self.schedule_crash();
        if let Some(plan) = &self.plan {
            for &(at, count) in &plan.bursts {
                self.queue
                    .schedule(at, Event::Arrive { count, wake: false });
            }
        }
        self.queue.schedule(self.options.safety_ms, Event::Heal);
        let deadline = self.options.safety_ms + self.options.liveness_ms;
        let mut liveness_failure = None;
        while let Some((now_ms, event)) = self.queue.pop() {
            if now_ms > deadline {
                break;
            }
            self.stats.events += 1;
            if self.stats.events > EVENTS_MAX {
                liveness_failure = Some(format!("more than {EVENTS_MAX} events"));
                break;
            }
            self.dispatch(now_ms, event);
            if !self.checker.violations.is_empty() {
                break;
            }
            self.time_split_recovery(now_ms);
            if self.plan.is_some() {
                if self.woke(now_ms) && self.rejoined(now_ms) {
                    break;
                }
                continue;
            }
            let resumed_long_enough = self
                .down
                .and_then(|d| d.until_ms)
                .is_none_or(|until| now_ms >= until + AFTER_RESUME_MS);
            if resumed_long_enough
                && self.target.is_some_and(|target| {
                    self.expected()
                        .all(|n| self.checker.height(n.index) >= target)
                })
            {
                break;
            }
        }
        self.stats.end_ms = self.queue.now_ms();
        if self.plan.is_some() {
            if liveness_failure.is_none() {
                liveness_failure = self.load_verdict();
            }
        } else if let Some(target) = self.target {
            let behind: Vec<(u16, u64)> = self
                .expected()
                .map(|n| (n.index, self.checker.height(n.index)))
                .filter(|(_, h)| *h < target)
                .collect();
            if !behind.is_empty() && liveness_failure.is_none() {
                liveness_failure = Some(format!(
                    "no progress after healing: target height {target}, behind (node, height): {behind:?}, views {:?}",
                    self.honest()
                        .map(|n| n.engine.as_ref().map_or(0, |e| e.view()))
                        .collect::<Vec<_>>()
                ));
            }
        } else {
            liveness_failure
                .get_or_insert_with(|| "the run ended before the liveness phase".to_string());
        }
        if !self.config.require_liveness {
            liveness_failure = None;
        }
        self.report(liveness_failure)
    }

    fn dispatch(&mut self, now_ms: u64, event: Event) {
        // A frozen node handles nothing; what reaches it waits until it
        // resumes, in order.
        if let Some(until) = self.frozen_until(&event)
            && now_ms < until
        {
            self.queue.schedule(until, event);
            return;
        }
        match event {
            Event::Deliver { from, to, packet } => {
                self.stats.messages += 1;
                let (tag, view) = packet_summary(&packet);
                self.trace.record(&[
                    &now_ms.to_be_bytes(),
                    &[tag],
                    &from.to_be_bytes(),
                    &to.to_be_bytes(),
                    &view.to_be_bytes(),
                ]);
                self.with_node(to, |node, ctx| node.deliver(from, packet, ctx));
            }
            Event::Timer {
                node,
                incarnation,
                view,
                timer,
            } => {
                self.trace.record(&[
                    &now_ms.to_be_bytes(),
                    b"T",
                    &node.to_be_bytes(),
                    &view.to_be_bytes(),
                ]);
                self.stats.max_view = self.stats.max_view.max(view);
                self.with_node(node, |node, ctx| {
                    if node.incarnation == incarnation {
                        node.input(lotline_consensus::Input::Timer { view, timer }, ctx);
                    }
                });
            }
            Event::Build { node, incarnation } => {
                self.trace
                    .record(&[&now_ms.to_be_bytes(), b"B", &node.to_be_bytes()]);
                self.with_node(node, |node, ctx| {
                    if node.incarnation == incarnation {
                        node.build(ctx);
                    }
                });
            }
            Event::Local {
                node,
                incarnation,
                input,
            } => {
                self.trace
                    .record(&[&now_ms.to_be_bytes(), b"L", &node.to_be_bytes()]);
                // The positive control of the rejoin check: the transport
                // connects, the engine is not told.
                let unannounced = self.config.load == Load::IntermittentUnannounced;
                self.with_node(node, |node, ctx| {
                    if node.incarnation != incarnation {
                        return;
                    }
                    if let lotline_consensus::Input::PeerConnected { peer } = input {
                        ctx.network.connect(node.index, peer);
                        if unannounced {
                            return;
                        }
                    }
                    node.input(input, ctx);
                });
            }
            Event::Crash { node } => {
                if self.faults {
                    if self.config.log {
                        eprintln!("{now_ms:>6} n{node} CRASH");
                    }
                    self.with_node(node, |node, ctx| node.crash(ctx));
                    self.schedule_crash();
                }
            }
            Event::Restart { node } => {
                let gone = self
                    .down
                    .is_some_and(|d| d.node == node && d.outage == Outage::Crash);
                if !gone {
                    self.with_node(node, |node, ctx| node.restart(ctx));
                    self.reconnect_all(node);
                }
            }
            Event::PartitionStart => {
                if self.faults {
                    if self.config.log {
                        eprintln!("{now_ms:>6} PARTITION");
                    }
                    self.stats.partitions += 1;
                    self.network.partition(&mut self.rng, self.nodes.len());
                    let length = self.rng.range(100, self.options.network.partition_max_ms);
                    self.queue.schedule(now_ms + length, Event::PartitionEnd);
                    self.trace.record(&[&now_ms.to_be_bytes(), b"P"]);
                }
            }
            Event::SplitEnd => {
                self.heal_cuts();
                let top = self.top_height();
                self.split_healed = Some((now_ms, top));
            }
            Event::PartitionEnd => {
                if !self.faults {
                    // A safety-phase partition: the heal ended it already.
                    return;
                }
                self.heal_cuts();
                if let Some(gap) = self.options.network.partition_gap_ms {
                    let at = now_ms + self.rng.range(gap / 2, gap * 2);
                    self.queue.schedule(at, Event::PartitionStart);
                }
            }
            Event::Heal => {
                if self.config.log {
                    eprintln!("{now_ms:>6} HEAL");
                }
                self.heal()
            }
            Event::Arrive { count, wake } => self.arrive(now_ms, count, wake),
            Event::IdleStart => self.idle_from = Some((now_ms, self.top_view())),
            Event::IdleEnd => self.idle_end(now_ms),
            Event::Rejoin { node } => {
                if self.config.log {
                    eprintln!("{now_ms:>6} RESTART the idle leader n{node}");
                }
                self.down = None;
                self.with_node(node, |node, ctx| node.restart(ctx));
                self.reconnect_all(node);
            }
        }
    }

    // ---- intermittent load ----

    /// The highest view of an up validator the run waits for.
    fn top_view(&self) -> u64 {
        self.expected()
            .filter_map(|n| n.engine.as_ref().map(|e| e.view()))
            .max()
            .unwrap_or(0)
    }

    /// `count` new attestations reach one validator, which gossips them.
    fn arrive(&mut self, now_ms: u64, count: u64, wake: bool) {
        let candidates: Vec<u16> = if wake {
            self.expected()
                .filter(|n| n.is_up())
                .map(|n| n.index)
                .collect()
        } else {
            (0..self.nodes.len() as u16).collect()
        };
        if candidates.is_empty() {
            return;
        }
        let origin = candidates[self.rng.below(candidates.len() as u64) as usize];
        let client = SigningKey::from_seed(&[0x5B; 32]);
        let attestations: Vec<Envelope> = (0..count)
            .map(|_| {
                self.made += 1;
                let body = format!("{{\"seed\":{},\"item\":{}}}", self.config.seed, self.made);
                Envelope::sign(body.into_bytes(), &client)
            })
            .collect();
        self.stats.arrived += count;
        if wake {
            self.wake = Some(Wake {
                at_ms: now_ms,
                ids: attestations.iter().map(Envelope::id).collect(),
                done_ms: None,
            });
        }
        if self.config.log {
            eprintln!("{now_ms:>6} ARRIVE {count} at n{origin} (wake {wake})");
        }
        self.trace
            .record(&[&now_ms.to_be_bytes(), b"A", &origin.to_be_bytes()]);
        self.with_node(origin, |node, ctx| node.admit(attestations, ctx));
    }

    /// The end of the idle window: check its blocks and views, then crash
    /// the leader of the current view (if a quorum stays up) and let the
    /// timed burst arrive in its view.
    fn idle_end(&mut self, now_ms: u64) {
        let Some(plan) = self.plan.clone() else {
            return;
        };
        if let Some((from_ms, from_view)) = self.idle_from {
            let window = now_ms - from_ms;
            // Blocks built in the window (some commit later, with a
            // descendant's finalization).
            let blocks = self
                .checker
                .proposed_ms
                .values()
                .filter(|at| (from_ms..now_ms).contains(*at))
                .count() as u64;
            let views = self.top_view().saturating_sub(from_view);
            self.stats.idle_window_ms = window;
            self.stats.idle_blocks = blocks;
            self.stats.idle_views = views;
            let byzantine = self.config.byzantine;
            let (blocks_max, views_max) = (
                plan.idle_blocks_max(window, byzantine),
                plan.idle_views_max(window, byzantine),
            );
            if blocks > blocks_max || views > views_max {
                self.load_failure.get_or_insert(format!(
                    "idle chain churns: {blocks} blocks and {views} views in {window} ms, at most {blocks_max} and {views_max} with a heartbeat of {} ms",
                    plan.heartbeat_ms
                ));
            }
        }
        let n = self.nodes.len();
        let quorum = n - (n - 1) / 3;
        let leader = lotline_consensus::leader(self.top_view(), n);
        let crashable = self
            .nodes
            .get(usize::from(leader))
            .is_some_and(|node| node.role == Role::Honest && node.is_up());
        if crashable && n - self.config.byzantine > quorum {
            if self.config.log {
                eprintln!("{now_ms:>6} CRASH the idle leader n{leader}");
            }
            self.with_node(leader, |node, ctx| node.crash(ctx));
            self.stats.idle_leader_crashed = true;
            self.down = Some(Down {
                node: leader,
                outage: Outage::Crash,
                from_ms: now_ms,
                until_ms: None,
            });
        }
        let count = self.rng.range(1, 6);
        let at = now_ms + self.rng.range(1, 30);
        self.queue.schedule(at, Event::Arrive { count, wake: true });
    }

    /// True once every up validator committed the timed burst; records how
    /// long it took.
    fn woke(&mut self, now_ms: u64) -> bool {
        let Some(wake) = &self.wake else {
            return false;
        };
        if wake.done_ms.is_some() {
            return true;
        }
        let done = self
            .expected()
            .all(|n| wake.ids.iter().all(|id| n.has_committed(id)));
        if !done {
            return false;
        }
        let took = now_ms - wake.at_ms;
        self.stats.wake_ms = took;
        if let Some(wake) = &mut self.wake {
            wake.done_ms = Some(now_ms);
        }
        true
    }

    /// After the burst: restarts the idle leader crashed before it, half a
    /// bound after the others committed the burst, once what they sent
    /// about it has landed or been lost (the chain is idle again, so
    /// nothing but the reconnection tells it that it is behind). True once
    /// it reached the others' height, or its bound passed (the verdict
    /// then fails), or nobody was crashed.
    fn rejoined(&mut self, now_ms: u64) -> bool {
        let Some(bound) = self.plan.as_ref().map(|p| p.wake_bound_ms) else {
            return true;
        };
        match self.rejoin {
            None => {
                let Some(down) = self.down.filter(|d| d.outage == Outage::Crash) else {
                    return true;
                };
                let at_ms = now_ms + bound / 2;
                let height = self.top_height();
                if self.config.log {
                    eprintln!(
                        "{now_ms:>6} the idle leader n{} restarts at {at_ms} ms, behind height {height}",
                        down.node
                    );
                }
                self.queue
                    .schedule(at_ms, Event::Rejoin { node: down.node });
                self.rejoin = Some(Rejoin {
                    node: down.node,
                    at_ms,
                    height,
                    done_ms: None,
                });
                false
            }
            Some(Rejoin {
                done_ms: Some(_), ..
            }) => true,
            Some(rejoin) if now_ms < rejoin.at_ms => false,
            Some(rejoin) => {
                if self.checker.height(rejoin.node) >= rejoin.height {
                    self.stats.rejoin_ms = now_ms - rejoin.at_ms;
                    self.rejoin = Some(Rejoin {
                        done_ms: Some(now_ms),
                        ..rejoin
                    });
                    return true;
                }
                now_ms > rejoin.at_ms + bound
            }
        }
    }

    /// The liveness verdict of an intermittent run.
    fn load_verdict(&mut self) -> Option<String> {
        let plan = self.plan.clone()?;
        self.stats.heartbeat_ms = plan.heartbeat_ms;
        self.stats.wake_bound_ms = plan.wake_bound_ms;
        if let Some(failure) = self.load_failure.take() {
            return Some(failure);
        }
        let Some(wake) = &self.wake else {
            return Some("the run ended before the timed burst".to_string());
        };
        match wake.done_ms {
            None => Some(format!(
                "the burst that arrived at {} ms was not committed by every up validator: heights {:?}, views {:?}",
                wake.at_ms,
                self.expected()
                    .map(|n| self.checker.height(n.index))
                    .collect::<Vec<_>>(),
                self.expected()
                    .map(|n| n.engine.as_ref().map_or(0, |e| e.view()))
                    .collect::<Vec<_>>()
            )),
            Some(done) if done - wake.at_ms > plan.wake_bound_ms => Some(format!(
                "the burst that arrived at {} ms in a dead leader's idle view took {} ms, bound {} ms (heartbeat {} ms)",
                wake.at_ms,
                done - wake.at_ms,
                plan.wake_bound_ms,
                plan.heartbeat_ms
            )),
            Some(_) => self.rejoin_verdict(plan.wake_bound_ms, plan.heartbeat_ms),
        }
    }

    /// The rejoin of the crashed idle leader, if it was crashed.
    fn rejoin_verdict(&self, bound_ms: u64, heartbeat_ms: u64) -> Option<String> {
        let rejoin = self.rejoin?;
        match rejoin.done_ms {
            Some(done) if done - rejoin.at_ms <= bound_ms => None,
            done => Some(format!(
                "the idle leader n{} restarted at {} ms behind height {} reached it {}, bound {bound_ms} ms (heartbeat {heartbeat_ms} ms)",
                rejoin.node,
                rejoin.at_ms,
                rejoin.height,
                done.map_or_else(
                    || format!("not at all (height {})", self.checker.height(rejoin.node)),
                    |done| format!("after {} ms", done - rejoin.at_ms)
                ),
            )),
        }
    }

    fn schedule_crash(&mut self) {
        let Some(gap) = self.options.crash_gap_ms else {
            return;
        };
        let honest: Vec<u16> = self.honest().map(|n| n.index).collect();
        if honest.is_empty() {
            return;
        }
        let node = honest[self.rng.below(honest.len() as u64) as usize];
        let at = self.queue.now_ms() + self.rng.range(gap / 2, gap * 2);
        self.queue.schedule(at, Event::Crash { node });
    }

    /// Liveness phase: no more faults, crashed nodes come back.
    fn heal(&mut self) {
        self.faults = false;
        self.heal_cuts();
        self.network.heal();
        self.trace.record(&[b"heal"]);
        let down: Vec<u16> = self
            .honest()
            .filter(|n| !n.is_up())
            .map(|n| n.index)
            .collect();
        for index in down {
            self.with_node(index, |node, ctx| node.restart(ctx));
            self.reconnect_all(index);
        }
        let top = self.top_height();
        self.target = Some(top + self.options.liveness_heights);
        if let Some(plan) = &self.plan {
            let now_ms = self.queue.now_ms();
            self.queue
                .schedule(now_ms + plan.settle_ms, Event::IdleStart);
            self.queue
                .schedule(now_ms + plan.settle_ms + plan.idle_ms, Event::IdleEnd);
            return;
        }
        self.start_outage();
    }

    fn top_height(&self) -> u64 {
        self.honest()
            .map(|n| self.checker.height(n.index))
            .max()
            .unwrap_or(0)
    }

    /// Ends the partition; every pair it cut apart reconnects.
    fn heal_cuts(&mut self) {
        for (a, b) in self.network.cut_pairs() {
            self.reconnect(a, b);
        }
        self.network.heal_partition();
    }

    /// A node that restarted reconnects to every other node.
    fn reconnect_all(&mut self, node: u16) {
        for other in 0..self.nodes.len() as u16 {
            if other != node {
                self.reconnect(node, other);
            }
        }
    }

    /// `a` and `b` learn, a network delay from now, that their transport is
    /// connected again ([`lotline_consensus::Input::PeerConnected`]).
    fn reconnect(&mut self, a: u16, b: u16) {
        let now_ms = self.queue.now_ms();
        for (node, peer) in [(a, b), (b, a)] {
            let Some(incarnation) = self
                .nodes
                .get(usize::from(node))
                .filter(|n| n.is_up())
                .map(|n| n.incarnation)
            else {
                continue;
            };
            let options = &self.network.options;
            let at = now_ms + self.rng.range(options.delay_min_ms, options.delay_max_ms);
            self.queue.schedule(
                at,
                Event::Local {
                    node,
                    incarnation,
                    input: lotline_consensus::Input::PeerConnected { peer },
                },
            );
        }
    }

    /// Split runs: the first block finalized after the heal.
    fn time_split_recovery(&mut self, now_ms: u64) {
        if let Some((healed_ms, height)) = self.split_healed
            && self.stats.split_heal_to_commit_ms.is_none()
            && self.top_height() > height
        {
            self.stats.split_heal_to_commit_ms = Some(now_ms - healed_ms);
        }
    }

    /// Takes one honest validator down for the liveness phase, or splits
    /// the network two against two.
    fn start_outage(&mut self) {
        let Some(outage) = self.config.outage else {
            return;
        };
        if outage == Outage::Split {
            return self.start_split();
        }
        let honest: Vec<u16> = self.honest().map(|n| n.index).collect();
        let node = honest[self.rng.below(honest.len() as u64) as usize];
        let now_ms = self.queue.now_ms();
        let until_ms = match outage {
            Outage::Crash => {
                self.with_node(node, |node, ctx| node.crash(ctx));
                None
            }
            Outage::Freeze => Some(now_ms + self.rng.range(FREEZE_MS.0, FREEZE_MS.1)),
            Outage::Split => unreachable!("a split takes no validator down"),
        };
        if self.config.log {
            eprintln!("{now_ms:>6} OUTAGE {outage:?} of n{node} until {until_ms:?}");
        }
        self.trace.record(&[b"outage", &node.to_be_bytes()]);
        self.down = Some(Down {
            node,
            outage,
            from_ms: now_ms,
            until_ms,
        });
    }

    /// Cuts the network in halves (neither holds a quorum) for
    /// [`SPLIT_TIMEOUTS`] base timeouts: long enough for the view timeouts
    /// to double up to their maximum; then the partition ends.
    fn start_split(&mut self) {
        let n = self.nodes.len();
        let mut order: Vec<u16> = (0..n as u16).collect();
        self.rng.shuffle(&mut order);
        let mut side = vec![false; n];
        for &index in order.iter().take(n / 2) {
            side[usize::from(index)] = true;
        }
        let now_ms = self.queue.now_ms();
        let until_ms = now_ms + SPLIT_TIMEOUTS * self.options.timeout_base_ms;
        if self.config.log {
            eprintln!("{now_ms:>6} SPLIT {side:?} until {until_ms}");
        }
        self.trace.record(&[b"split"]);
        self.network.split(side);
        self.queue.schedule(until_ms, Event::SplitEnd);
    }

    /// Committed blocks the frozen validator proposed after it resumed.
    fn blocks_after_resume(&self) -> u64 {
        let Some(Down {
            node,
            until_ms: Some(until),
            ..
        }) = self.down
        else {
            return 0;
        };
        self.honest()
            .map(|n| {
                n.chain
                    .iter()
                    .filter(|(block, _)| {
                        block.header.proposer == node && block.header.timestamp_ms >= until
                    })
                    .count() as u64
            })
            .max()
            .unwrap_or(0)
    }

    fn report(self, liveness_failure: Option<String>) -> Report {
        let blocks_after_resume = self.blocks_after_resume();
        let mut stats = self.stats;
        stats.outage_blocks_after_resume = blocks_after_resume;
        let timeout = self.options.timeout_base_ms;
        stats.outage_full_timeouts =
            self.turns.values().filter(|ms| **ms >= timeout).count() as u64;
        stats.outage_later_turn_ms_max = self
            .turns
            .values()
            .skip(OUTAGE_FIRST_TURNS)
            .copied()
            .max()
            .unwrap_or(0);
        stats.lost = self.network.lost;
        stats.evidence = self.checker.evidence;
        stats.certificates_checked = self.checker.certificates;
        stats.reproposed_boundaries = self.checker.reproposed_boundaries;
        stats.epochs = self
            .nodes
            .iter()
            .filter_map(|n| n.engine.as_ref().map(|e| e.epoch()))
            .max()
            .unwrap_or(0);
        (stats.verdicts, stats.verified) = self.memo.counts();
        let heights = self
            .nodes
            .iter()
            .filter(|n| n.role == Role::Honest)
            .map(|n| self.checker.height(n.index))
            .collect();
        let mut trace = self.trace;
        trace.record(&[
            b"end",
            &stats.end_ms.to_be_bytes(),
            &stats.commits.to_be_bytes(),
        ]);
        Report {
            config: self.config,
            options: self.options,
            trace: trace.digest(),
            heights,
            violations: self.checker.violations,
            liveness_failure,
            stats,
        }
    }
}

fn packet_summary(packet: &Packet) -> (u8, u64) {
    match packet {
        Packet::Consensus(Message::Proposal(p)) => (1, p.notarize.view),
        Packet::Consensus(Message::Vote(v)) => (2 + v.kind as u8, v.view),
        Packet::Consensus(Message::Certificate(c)) => (5 + c.kind as u8, c.view),
        Packet::Consensus(Message::Request(_)) => (8, 0),
        Packet::Consensus(Message::Blocks(b)) => (9, b.len() as u64),
        Packet::Consensus(Message::Evidence(e)) => (12, e.view()),
        Packet::SyncRequest { height } => (10, *height),
        Packet::SyncResponse(records) => (11, records.len() as u64),
        Packet::Gossip(_) => (13, 0),
        // A proposal by id is the proposal, as far as the trace goes.
        Packet::Compact(p) => (1, p.view()),
        Packet::Want { view, .. } => (14, *view),
        Packet::Bodies(bodies) => (15, bodies.len() as u64),
    }
}
