//! A deterministic simulator for the Simplex engine, in the shape of
//! TigerBeetle's VOPR: n validators run the real [`lotline_consensus::Engine`]
//! over a simulated network ([`network`]), virtual time ([`clock`]) and
//! journals that lose unsynced votes on a crash ([`journal`]), some of them
//! Byzantine ([`byzantine`]), while a [`checker`] with its own arithmetic
//! watches every commit, certificate, vote and piece of evidence.
//!
//! A run is a pure function of its [`SimConfig`]: the seed draws one
//! [`Options`] (network faults, crash rates, timeouts, phase lengths), then a
//! *safety phase* with faults, then a *liveness phase* on a healed network
//! (crashed nodes restarted) that must add [`Options::liveness_heights`]
//! finalized heights on every honest node within [`Options::liveness_ms`].
//! The [`Report`] carries a trace hash: the same seed gives the same hash.
//!
//! With an [`Outage`], one honest validator goes down when the liveness
//! phase starts — crashed for good, or frozen (it processes nothing, as
//! under SIGSTOP, and everything sent to it waits) and then resumed — and
//! the phase runs longer: the others must keep committing, and the time
//! they spend waiting for the missing leader is measured per view
//! ([`Stats::outage_turns`], [`Stats::outage_full_timeouts`]). A split
//! outage cuts the network two against two instead and measures how soon
//! after the heal a block is final ([`Stats::split_heal_to_commit_ms`]).
//!
//! Whenever a cut between two nodes heals (a partition ends, a node
//! restarts) each of them gets [`lotline_consensus::Input::PeerConnected`]
//! for the other a network delay later, as the node's transport reports a
//! re-established connection.
//!
//! With `reconfigure` ([`SimConfig::reconfigure`], `vopr --reconfigure`)
//! the validator set changes at every epoch boundary ([`roster`]); the
//! checker takes each certificate's quorum and keys from its epoch.
//!
//! With [`Load::Intermittent`], work is no longer always there: attestations
//! arrive in bursts at one validator, which gossips them, with idle gaps in
//! between, and each node tells its engine whether it holds work
//! (`Input::Work`), as the node's actor does. The liveness phase then first
//! waits for the chain to settle, watches an idle window in which the
//! chain may add at most one block and two views per heartbeat (no empty
//! block churn, no nullify storm), and then crashes the leader of the
//! current idle view and lets a burst arrive: it must be committed by every
//! up validator within a bound made of the view timeouts, well below the
//! heartbeat ([`load`]).

pub mod byzantine;
pub mod checker;
pub mod clock;
mod cluster;
pub mod journal;
pub mod load;
pub mod network;
pub mod node;
pub mod rng;
pub mod roster;
pub mod verifier;

use lotline_core::hash::{self, Digest, Domain};

pub use cluster::{OUTAGE_FIRST_TURNS, SPLIT_TIMEOUTS, run};
use network::NetworkOptions;
use rng::Rng;

/// Which Byzantine behaviour the faulty validators show.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Behaviour {
    Equivocator,
    Silent,
    /// Not Byzantine: validators restored from a backup, which run with
    /// `Config::voting` off (they follow on the others' certificates and
    /// sign nothing). The checker holds them to every honest rule (they
    /// must commit the same chain) and fails the run if one journals a vote.
    Abstainer,
    /// Leaders that propose attestations nobody else holds and answer no
    /// want (`relay`): their views must time out, nothing else.
    Withholder,
}

impl Behaviour {
    /// The name `vopr --behaviour` takes.
    pub fn name(self) -> &'static str {
        match self {
            Behaviour::Equivocator => "equivocator",
            Behaviour::Silent => "silent",
            Behaviour::Abstainer => "abstainer",
            Behaviour::Withholder => "withholder",
        }
    }
}

/// How work arrives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Load {
    /// Every leader always has an attestation to propose (the engine is
    /// never told that there is no work).
    Constant,
    /// Bursts with idle gaps, gossiped; see [`load`].
    Intermittent,
    /// Positive control of the idle check: intermittent load, but the nodes
    /// never tell their engines about work, so every view is active (the
    /// protocol before idle views). The idle window must fail.
    IntermittentUnreported,
    /// Positive control of the wake-up check: the nodes always tell their
    /// engines that there is no work, so only heartbeats move the chain.
    /// The timed burst must miss its bound.
    IntermittentDeaf,
    /// Positive control of the rejoin check: transports reconnect but the
    /// engines are never told (no `Input::PeerConnected`), so the idle
    /// leader restarted behind on an idle chain, whose first broadcasts
    /// found no connection, hears nothing until the heartbeat. Its rejoin
    /// must miss its bound.
    IntermittentUnannounced,
}

impl Load {
    pub fn intermittent(self) -> bool {
        self != Load::Constant
    }

    /// How the nodes of a run tell their engines about work.
    pub fn work_report(self) -> node::WorkReport {
        match self {
            Load::Constant | Load::IntermittentUnreported => node::WorkReport::Never,
            Load::Intermittent | Load::IntermittentUnannounced => node::WorkReport::Mempool,
            Load::IntermittentDeaf => node::WorkReport::AlwaysIdle,
        }
    }
}

/// A validator that goes down when the liveness phase starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outage {
    /// Stops and never comes back (kill -9, power off).
    Crash,
    /// Processes nothing for a while (SIGSTOP, a VM pause), then resumes
    /// where it was; messages sent to it wait in its buffers.
    Freeze,
    /// Not one validator: the network splits two against two (no quorum on
    /// either side) long enough for the view timeouts to double to their
    /// maximum, then heals. Needs four validators.
    Split,
}

/// Heights the liveness phase of an outage run must add: enough for the
/// missing validator to be due as leader many times.
pub const OUTAGE_LIVENESS_HEIGHTS: u64 = 40;

/// One run.
#[derive(Clone, Debug)]
pub struct SimConfig {
    pub seed: u64,
    pub validators: usize,
    pub byzantine: usize,
    pub behaviour: Behaviour,
    /// Fail the run if the liveness phase makes no progress (off for the
    /// positive control, where more than f validators are Byzantine).
    pub require_liveness: bool,
    /// One honest validator down during the liveness phase.
    pub outage: Option<Outage>,
    pub load: Load,
    /// Share of bodies each validator lacks (see [`Options`]).
    pub bodies_missing_percent: u8,
    /// Print every event and output to stderr (for debugging one seed).
    pub log: bool,
    /// Change the validator set at epoch boundaries ([`roster`]): two spare
    /// nodes, an add, remove or rotate at every boundary, under the same
    /// crashes, partitions and Byzantine validators.
    pub reconfigure: bool,
}

impl SimConfig {
    /// The `vopr` command that replays this run exactly (failure messages
    /// of the seed tests print it).
    pub fn replay_command(&self) -> String {
        let load = match self.load {
            Load::Constant => "constant",
            Load::Intermittent => "intermittent",
            Load::IntermittentUnreported => "intermittent-unreported",
            Load::IntermittentDeaf => "intermittent-deaf",
            Load::IntermittentUnannounced => "intermittent-unannounced",
        };
        let mut command = format!(
            "cargo run -p lotline-sim --bin vopr -- --seed {} --validators {} --byzantine {} --behaviour {} --load {load}",
            self.seed,
            self.validators,
            self.byzantine,
            self.behaviour.name()
        );
        if let Some(outage) = self.outage {
            let outage = match outage {
                Outage::Crash => "crash",
                Outage::Freeze => "freeze",
                Outage::Split => "split",
            };
            command.push_str(&format!(" --outage {outage}"));
        }
        if self.bodies_missing_percent > 0 {
            command.push_str(&format!(
                " --bodies-missing {}",
                self.bodies_missing_percent
            ));
        }
        if !self.require_liveness {
            command.push_str(" --no-liveness");
        }
        if self.reconfigure {
            command.push_str(" --reconfigure");
        }
        command
    }
}

/// Everything a seed draws.
#[derive(Clone, Debug)]
pub struct Options {
    pub network: NetworkOptions,
    pub timeout_base_ms: u64,
    pub timeout_max_ms: u64,
    pub future_views_max: u64,
    /// Small values force lagging nodes onto block sync.
    pub committed_blocks_retained: usize,
    /// Mean gap between crashes of honest nodes; `None`: no crashes.
    pub crash_gap_ms: Option<u64>,
    /// Probability that an honest node crashes in the middle of carrying
    /// out one step's outputs (after some journal appends, before sync).
    pub crash_mid_step: f64,
    pub downtime_max_ms: u64,
    pub build_delay_max_ms: u64,
    pub verify_delay_max_ms: u64,
    pub safety_ms: u64,
    pub liveness_ms: u64,
    pub liveness_heights: u64,
    /// Share of attestation bodies (in percent) a validator lacks when a
    /// proposal names them, so it must ask the proposer (`relay`). Set by
    /// the run's config, not drawn.
    pub bodies_missing_percent: u8,
}

impl Options {
    pub fn draw(rng: &mut Rng) -> Options {
        let network = NetworkOptions::draw(rng);
        let timeout_base_ms = rng.range(50, 300);
        Options {
            network,
            timeout_base_ms,
            timeout_max_ms: timeout_base_ms * rng.range(4, 16),
            future_views_max: rng.range(2, 16),
            committed_blocks_retained: if rng.chance(0.3) {
                rng.range(0, 4) as usize
            } else {
                256
            },
            crash_gap_ms: rng.chance(0.6).then(|| rng.range(300, 3000)),
            crash_mid_step: if rng.chance(0.5) {
                0.0
            } else {
                rng.range(1, 20) as f64 / 1000.0
            },
            downtime_max_ms: rng.range(100, 3000),
            // The actor always takes some time: a zero delay would let a
            // single validator commit forever without the clock moving.
            build_delay_max_ms: rng.range(1, 30),
            verify_delay_max_ms: rng.range(1, 30),
            safety_ms: rng.range(2_000, 6_000),
            liveness_ms: 60_000,
            liveness_heights: 3,
            bodies_missing_percent: 0,
        }
    }
}

/// Counters of a run.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    pub events: u64,
    pub messages: u64,
    pub lost: u64,
    pub commits: u64,
    pub crashes: u64,
    pub restarts: u64,
    pub partitions: u64,
    pub syncs: u64,
    pub evidence: u64,
    pub dropped: u64,
    /// Drops other than stale views and unrequested answers.
    pub dropped_bad: u64,
    pub certificates_checked: u64,
    /// Signature verdicts asked for, and signatures really verified.
    pub verdicts: u64,
    pub verified: u64,
    pub max_view: u64,
    pub end_ms: u64,
    /// Intermittent load: attestations that arrived, and committed ones.
    pub arrived: u64,
    /// Intermittent load: blocks and views of the idle window, and its
    /// length; the heartbeat.
    pub idle_blocks: u64,
    pub idle_views: u64,
    pub idle_window_ms: u64,
    pub heartbeat_ms: u64,
    /// Intermittent load: from the burst in the dead leader's view to its
    /// commit on every up validator, and the bound for it.
    pub wake_ms: u64,
    pub wake_bound_ms: u64,
    /// Intermittent load: the leader of the idle view crashed before the
    /// timed burst (a quorum stayed up without it).
    pub idle_leader_crashed: bool,
    /// Intermittent load: from the crashed idle leader's restart, once the
    /// others committed the burst, to its reaching their height on the
    /// idle chain (0 if it was not crashed).
    pub rejoin_ms: u64,
    /// The most entries an honest node's journal held right after a
    /// commit compacted it.
    pub journal_entries_max: u64,
    /// Outage runs: views led by the missing validator that an up honest
    /// validator sat through while it was down (one per observer and view).
    pub outage_turns: u64,
    /// Those views in which some honest validator waited at least the full
    /// leader timeout (`timeout_base_ms`): a whole timeout on a dead leader.
    pub outage_full_timeouts: u64,
    /// The longest stay in one of those views after the first
    /// [`OUTAGE_FIRST_TURNS`], in ms.
    pub outage_later_turn_ms_max: u64,
    /// Committed blocks the frozen validator proposed after it resumed.
    pub outage_blocks_after_resume: u64,
    /// Honest leaders' proposals that an honest verifier refused for
    /// repeating an attestation (each costs a view; the leader rules must
    /// keep this at zero).
    pub repeat_refusals: u64,
    /// Proposals that arrived by id, the wants sent for missing bodies and
    /// the bodies fetched with them (`relay`).
    pub proposals_by_id: u64,
    pub wants: u64,
    pub bodies_fetched: u64,
    /// Commits (at honest nodes) of blocks a Byzantine validator proposed.
    pub byzantine_blocks_committed: u64,
    /// Split runs: from the heal to the first block an honest node
    /// finalized after it, in ms.
    pub split_heal_to_commit_ms: Option<u64>,
    /// Reconfiguring runs: the highest epoch an honest node reached, and
    /// boundary blocks committed through a re-proposal (finalized in a
    /// later view than their own).
    pub epochs: u64,
    pub reproposed_boundaries: u64,
}

/// The outcome of one run.
#[derive(Clone, Debug)]
pub struct Report {
    pub config: SimConfig,
    pub options: Options,
    pub trace: Digest,
    /// Committed height of each honest node at the end.
    pub heights: Vec<u64>,
    pub violations: Vec<String>,
    pub liveness_failure: Option<String>,
    pub stats: Stats,
}

impl Report {
    pub fn safe(&self) -> bool {
        self.violations.is_empty()
    }

    /// Safe, live, and no honest leader lost a view to a repeated
    /// attestation (with at most f Byzantine validators; more can fork the
    /// chain and make anything look repeated).
    pub fn ok(&self) -> bool {
        let f = self.config.validators.saturating_sub(1) / 3;
        let leaders_sound = self.config.byzantine > f || self.stats.repeat_refusals == 0;
        self.safe() && self.liveness_failure.is_none() && leaders_sound
    }

    pub fn summary(&self) -> String {
        let c = &self.config;
        let s = &self.stats;
        format!(
            "seed {} n={} byzantine={} ({:?}) trace {} heights {:?} views {} commits {} repeats refused {} by id {} wants {} bodies fetched {} msgs {} lost {} crashes {} syncs {} evidence {} drops {}/{} verified {}/{} end {}ms{}{}{}{}{}",
            c.seed,
            c.validators,
            c.byzantine,
            c.behaviour,
            self.trace,
            self.heights,
            s.max_view,
            s.commits,
            s.repeat_refusals,
            s.proposals_by_id,
            s.wants,
            s.bodies_fetched,
            s.messages,
            s.lost,
            s.crashes,
            s.syncs,
            s.evidence,
            s.dropped_bad,
            s.dropped,
            s.verified,
            s.verdicts,
            s.end_ms,
            match c.load {
                Load::Constant => String::new(),
                _ => format!(
                    " load: {} arrived, heartbeat {}ms, idle window {}ms: {} blocks {} views; wake {}ms (bound {}ms)",
                    s.arrived,
                    s.heartbeat_ms,
                    s.idle_window_ms,
                    s.idle_blocks,
                    s.idle_views,
                    s.wake_ms,
                    s.wake_bound_ms
                ),
            },
            if c.reconfigure {
                format!(
                    " epochs {} re-proposed boundaries {}",
                    s.epochs, s.reproposed_boundaries
                )
            } else {
                String::new()
            },
            match c.outage {
                None => String::new(),
                Some(Outage::Split) => format!(
                    " outage split: heal to commit {}",
                    s.split_heal_to_commit_ms
                        .map_or("never".to_string(), |ms| format!("{ms}ms"))
                ),
                Some(outage) => format!(
                    " outage {outage:?}: turns {} full timeouts {} later turn max {}ms blocks after resume {}",
                    s.outage_turns,
                    s.outage_full_timeouts,
                    s.outage_later_turn_ms_max,
                    s.outage_blocks_after_resume
                ),
            },
            if self.violations.is_empty() {
                String::new()
            } else {
                format!("\n  VIOLATIONS:\n    {}", self.violations.join("\n    "))
            },
            self.liveness_failure
                .as_ref()
                .map(|l| format!("\n  LIVENESS: {l}"))
                .unwrap_or_default(),
        )
    }
}

/// A running hash of everything that happened, to compare runs.
#[derive(Debug, Default)]
pub struct Trace {
    digest: Digest,
}

impl Trace {
    pub fn record(&mut self, parts: &[&[u8]]) {
        let mut all: Vec<&[u8]> = Vec::with_capacity(parts.len() + 1);
        all.push(&self.digest.0);
        all.extend_from_slice(parts);
        self.digest = hash::hash_parts(Domain::LogEntry, &all);
    }

    pub fn digest(&self) -> Digest {
        self.digest
    }
}
