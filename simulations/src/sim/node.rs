//! A simulated validator: the engine plus the actor's duties (journal
//! before send, timers, payloads, verification verdicts, block log, block
//! sync), with crashes that lose what was not synced.
//!
//! Payloads follow the node's rules: every validator's pool holds the same
//! attestations (gossip delivered them all), oldest first, so leaders
//! compete for the same ones; a leader leaves out what its chain committed
//! and what the engine's uncommitted blocks carry; a verifier refuses a
//! block that repeats an attestation of its committed chain or of an
//! ancestor whose body it holds, as `bft.rs` does. A refusal of an honest
//! leader's block is a lost view ([`Stats::repeat_refusals`]).
//!
//! Proposals travel by attestation id, as in the node
//! (`lotline_consensus::relay`): a voter rebuilds the block from the bodies
//! it holds and asks the proposer for the rest. Under constant load every
//! body is at hand unless the run makes a share of them missing
//! ([`Options::bodies_missing_percent`], decided per node and id, so that it
//! draws nothing from the run's randomness); a withholding leader
//! ([`Role::Withholder`]) proposes an attestation nobody else holds and
//! answers no want.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

use lotline_consensus::relay::{self, CompactProposal, Offer, Reassembly};
use lotline_consensus::{Config, Engine, Input, KeepAbove, Message, Output, Record, TimerKind};
use lotline_core::attestation::{AttestationId, Envelope};
use lotline_core::block::{Block, BlockHash};
use lotline_core::certificate::Finality;
use lotline_core::crypto::SigningKey;

use crate::sim::byzantine::{self, Coalition};
use crate::sim::checker::Checker;
use crate::sim::clock::Queue;
use crate::sim::journal::Journal;
use crate::sim::network::Network;
use crate::sim::rng::Rng;
use crate::sim::roster::Roster;
use crate::sim::{Options, Stats, Trace};

/// Records a block-sync answer carries at most.
const SYNC_RECORDS_MAX: usize = 16;
/// How long a block-sync request is outstanding before another is sent.
const SYNC_RETRY_MS: u64 = 1_000;
/// Pre-signed synthetic attestations shared by every run of the process.
const ATTESTATION_POOL: usize = 1024;
/// Attestations a leader proposes at most: few, so that the pool lasts.
const PAYLOAD_MAX: usize = 3;
/// Attestations a leader proposes at most under intermittent load.
const PROPOSAL_ATTESTATIONS_MAX: usize = 16;

/// What travels between simulated nodes.
#[derive(Clone, Debug)]
pub enum Packet {
    Consensus(Message),
    /// Block sync: finalized records from `height` upwards.
    SyncRequest {
        height: u64,
    },
    SyncResponse(Vec<(Block, Finality)>),
    /// An attestation gossiped by the validator that admitted it
    /// (intermittent load).
    Gossip(Envelope),
    /// A proposal by attestation id (`relay`).
    Compact(Box<CompactProposal>),
    /// "Send me these bodies of your proposal for `view`."
    Want {
        view: u64,
        ids: Vec<AttestationId>,
    },
    /// The answer to a want.
    Bodies(Vec<Envelope>),
}

impl Packet {
    /// The packet that carries an engine message: a proposal by id.
    pub fn carrying(message: Message) -> Packet {
        match message {
            Message::Proposal(proposal) => {
                Packet::Compact(Box::new(CompactProposal::of(&proposal)))
            }
            other => Packet::Consensus(other),
        }
    }
}

#[derive(Debug)]
pub enum Event {
    Deliver {
        from: u16,
        to: u16,
        packet: Packet,
    },
    Timer {
        node: u16,
        incarnation: u32,
        view: u64,
        timer: TimerKind,
    },
    /// The actor builds the leader's payload now, from its pool as it is
    /// at this moment (as the node's actor does, on the thread that also
    /// commits), and hands it to the engine.
    Build {
        node: u16,
        incarnation: u32,
    },
    /// An actor's answer to its own engine (payload, verdict).
    Local {
        node: u16,
        incarnation: u32,
        input: Input,
    },
    Crash {
        node: u16,
    },
    Restart {
        node: u16,
    },
    PartitionStart,
    PartitionEnd,
    /// The end of a split outage ([`crate::sim::Outage::Split`]).
    SplitEnd,
    Heal,
    /// Intermittent load: `count` attestations arrive at one validator;
    /// `wake`: the burst of the liveness phase, which is timed.
    Arrive {
        count: u64,
        wake: bool,
    },
    /// Intermittent load: the idle window of the liveness phase.
    IdleStart,
    IdleEnd,
    /// Intermittent load: the idle leader crashed before the timed burst
    /// restarts, behind, once the others committed it.
    Rejoin {
        node: u16,
    },
}

/// What a node tells its engine about work (`Input::Work`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WorkReport {
    /// Nothing: the engine is always pending (constant load, and the
    /// control that runs intermittent load without idle views).
    Never,
    /// Whether its mempool holds an attestation no uncommitted block
    /// carries, as the node's actor does.
    Mempool,
    /// Always "no work" (a control: only heartbeats move the chain).
    AlwaysIdle,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Honest,
    Equivocator,
    Silent,
    /// Honest, except that as leader it proposes an attestation only it
    /// holds, and it answers no want: its proposals can never be rebuilt.
    Withholder,
}

/// Everything a node may touch while it carries out outputs.
#[derive(Debug)]
pub struct Ctx<'a> {
    pub now_ms: u64,
    pub n: usize,
    pub rng: &'a mut Rng,
    pub queue: &'a mut Queue<Event>,
    pub network: &'a mut Network,
    pub checker: &'a mut Checker,
    pub coalition: &'a mut Coalition,
    pub trace: &'a mut Trace,
    pub stats: &'a mut Stats,
    pub options: &'a Options,
    /// Node ids and epoch indices: the transport speaks node ids, the
    /// engine indices of its epoch.
    pub roster: &'a Roster,
    /// Intermittent load: leaders propose from their mempool.
    pub intermittent: bool,
    /// Safety phase: crashes may happen.
    pub faults: bool,
    pub log: bool,
}

impl Ctx<'_> {
    pub fn send(&mut self, from: u16, to: u16, packet: Packet) {
        for delay in self.network.route(self.rng, from, to) {
            self.queue.schedule(
                self.now_ms + delay,
                Event::Deliver {
                    from,
                    to,
                    packet: packet.clone(),
                },
            );
        }
    }

    pub fn broadcast(&mut self, from: u16, packet: Packet) {
        for to in 0..self.n as u16 {
            if to != from {
                self.send(from, to, packet.clone());
            }
        }
    }
}

#[derive(Debug)]
pub struct Node {
    pub index: u16,
    pub role: Role,
    pub config: Config,
    /// `None` while crashed (and always for a silent node).
    pub engine: Option<Engine>,
    pub incarnation: u32,
    pub journal: Journal,
    /// The block log: survives crashes.
    pub chain: Vec<(Block, Finality)>,
    /// What `chain` carries, as the store's duplicate check sees it.
    committed_ids: BTreeSet<AttestationId>,
    /// Uncommitted bodies the actor knows (proposed, persisted, verified):
    /// the ancestors its payload check walks. Lost in a crash.
    bodies: BTreeMap<BlockHash, Block>,
    sync_until_ms: u64,
    /// Block sync asks the connected peers in turn (as the actor does).
    next_sync_peer: u64,
    /// Intermittent load: the node tells its engine about work, as the
    /// node's actor does; under constant load it never does.
    reports_work: WorkReport,
    /// Attestations learnt (admitted or gossiped) and not committed here;
    /// lost on a crash, like the node's mempool.
    pub mempool: BTreeMap<AttestationId, Envelope>,
    /// What the engine was last told (`Input::Work`).
    work: Option<bool>,
    /// Proposals that arrived by id, waiting for bodies. Lost in a crash.
    reassembly: Reassembly,
    /// A validator that never votes (`Behaviour::Abstainer`).
    abstainer: bool,
    /// The epoch whose reconfiguration the engine was last given.
    fed: Option<u64>,
    /// The engine's epoch when it produced the outputs being carried out:
    /// their indices are of that epoch (a step that crosses a boundary
    /// switches only at its end).
    pub output_epoch: u64,
}

/// The pre-signed attestations by id (constant load: every validator holds
/// them, as gossip would have delivered them).
fn pooled(id: &AttestationId) -> Option<Envelope> {
    static INDEX: OnceLock<BTreeMap<AttestationId, Envelope>> = OnceLock::new();
    INDEX
        .get_or_init(|| attestation_pool().iter().cloned().collect())
        .get(id)
        .cloned()
}

/// Whether node `index` lacks the body of `id` in a run that makes
/// `percent` of them missing: a function of the two, not a draw.
fn lacks(percent: u8, index: u16, id: &AttestationId) -> bool {
    if percent == 0 {
        return false;
    }
    let bytes = id.0.0;
    let mixed = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
        .wrapping_add(u32::from(index).wrapping_mul(2_654_435_761));
    mixed % 100 < u32::from(percent)
}

/// The body of `id` as node `index` holds it, for rebuilding a proposal.
fn held(
    mempool: &BTreeMap<AttestationId, Envelope>,
    ctx: &Ctx,
    index: u16,
    id: &AttestationId,
) -> Option<Envelope> {
    if lacks(ctx.options.bodies_missing_percent, index, id) {
        return None;
    }
    mempool
        .get(id)
        .cloned()
        .or_else(|| if ctx.intermittent { None } else { pooled(id) })
}

fn attestation_pool() -> &'static [(AttestationId, Envelope)] {
    static POOL: OnceLock<Vec<(AttestationId, Envelope)>> = OnceLock::new();
    POOL.get_or_init(|| {
        let key = SigningKey::from_seed(&[0x5A; 32]);
        (0..ATTESTATION_POOL)
            .map(|i| {
                let envelope = Envelope::sign(format!("{{\"counter\":{i}}}").into_bytes(), &key);
                (envelope.id(), envelope)
            })
            .collect()
    })
}

impl Node {
    pub fn new(index: u16, role: Role, config: Config, reports_work: WorkReport) -> Node {
        let engine = (role != Role::Silent).then(|| Engine::new(config.clone()));
        let abstainer = !config.voting && usize::from(config.index) < config.validators.len();
        Node {
            abstainer,
            fed: None,
            output_epoch: 0,
            index,
            role,
            config,
            engine,
            incarnation: 0,
            journal: Journal::default(),
            chain: Vec::new(),
            committed_ids: BTreeSet::new(),
            bodies: BTreeMap::new(),
            sync_until_ms: 0,
            next_sync_peer: 0,
            reports_work,
            mempool: BTreeMap::new(),
            work: None,
            reassembly: Reassembly::default(),
        }
    }

    pub fn is_up(&self) -> bool {
        self.engine.is_some()
    }

    pub fn start(&mut self, ctx: &mut Ctx) {
        // As the node's actor: the engine hears about work before it starts.
        self.report_work(ctx);
        if let Some(engine) = &mut self.engine {
            self.output_epoch = engine.epoch();
            let outputs = engine.start();
            self.execute(outputs, ctx);
        }
        self.feed_next_epoch(ctx);
    }

    /// As the node's actor when a validator change commits: the engine
    /// learns the next epoch (here as soon as it enters the current one,
    /// which is earlier than any block it may build above the boundary).
    fn feed_next_epoch(&mut self, ctx: &mut Ctx) {
        let Some(engine) = &self.engine else {
            return;
        };
        let next = engine.epoch() + 1;
        if engine.boundary().is_some() || self.fed == Some(next) {
            return;
        }
        let Some(reconfiguration) = ctx
            .roster
            .reconfiguration(next, self.index, !self.abstainer)
        else {
            return;
        };
        self.fed = Some(next);
        self.input(Input::Reconfigure(Box::new(reconfiguration)), ctx);
    }

    /// The engine config of `epoch` for this node.
    fn config_for(&self, roster: &Roster, epoch: u64) -> Config {
        let mut config = self.config.clone();
        if let Some(r) = roster.reconfiguration(epoch, self.index, !self.abstainer) {
            config.epoch = epoch;
            config.validators = r.validators;
            config.index = r.index;
            config.key = r.key;
            config.voting = r.voting;
        }
        config
    }

    /// The engine's index of node `node` (the transport's sender).
    fn engine_index(&self, ctx: &Ctx, node: u16) -> u16 {
        let epoch = self.engine.as_ref().map_or(0, Engine::epoch);
        ctx.roster.index_of(epoch, node)
    }

    /// The node with index `index` in the epoch of the outputs at hand.
    pub fn node_of(&self, ctx: &Ctx, index: u16) -> Option<u16> {
        ctx.roster.node_of(self.output_epoch, index)
    }

    pub fn input(&mut self, input: Input, ctx: &mut Ctx) {
        // The cluster names the peer by node id.
        let input = match input {
            Input::PeerConnected { peer } => Input::PeerConnected {
                peer: self.engine_index(ctx, peer),
            },
            other => other,
        };
        let Some(engine) = &mut self.engine else {
            return;
        };
        if ctx.log {
            eprintln!(
                "{:>6} n{} v{} <- {}",
                ctx.now_ms,
                self.index,
                engine.view(),
                describe_input(&input)
            );
        }
        self.output_epoch = engine.epoch();
        let outputs = engine.handle(input);
        if ctx.log {
            for output in &outputs {
                eprintln!(
                    "{:>6} n{}    -> {}",
                    ctx.now_ms,
                    self.index,
                    describe_output(output)
                );
            }
        }
        self.execute(outputs, ctx);
        self.report_work(ctx);
        self.feed_next_epoch(ctx);
    }

    /// Tells the engine when "is there work?" changes: an attestation in
    /// the mempool that no block that may still commit carries (the node's
    /// `BftActor::report_work`).
    fn report_work(&mut self, ctx: &mut Ctx) {
        let Some(engine) = &self.engine else {
            return;
        };
        let pending = match self.reports_work {
            WorkReport::Never => return,
            WorkReport::AlwaysIdle => false,
            WorkReport::Mempool => {
                let in_flight = engine.live_attestations();
                self.mempool.keys().any(|id| !in_flight.contains(id))
            }
        };
        if self.work == Some(pending) {
            return;
        }
        self.work = Some(pending);
        self.input(Input::Work { pending }, ctx);
    }

    /// Attestations admitted here (a client's submit): kept and gossiped.
    pub fn admit(&mut self, attestations: Vec<Envelope>, ctx: &mut Ctx) {
        if !self.is_up() {
            return;
        }
        for envelope in attestations {
            let id = envelope.id();
            if self.committed_ids.contains(&id) {
                continue;
            }
            self.mempool.insert(id, envelope.clone());
            ctx.broadcast(self.index, Packet::Gossip(envelope));
        }
        self.report_work(ctx);
    }

    /// True if this node's chain committed `id`.
    pub fn has_committed(&self, id: &AttestationId) -> bool {
        self.committed_ids.contains(id)
    }

    /// A block this node committed: its attestations leave the mempool.
    pub fn on_committed(&mut self, block: &Block) {
        for envelope in &block.attestations {
            let id = envelope.id();
            self.mempool.remove(&id);
            self.committed_ids.insert(id);
        }
    }

    pub fn deliver(&mut self, from: u16, packet: Packet, ctx: &mut Ctx) {
        if !self.is_up() {
            return;
        }
        match packet {
            Packet::Consensus(message) => {
                let from = self.engine_index(ctx, from);
                self.input(Input::Message { from, message }, ctx)
            }
            Packet::SyncRequest { height } => {
                let start = usize::try_from(height.saturating_sub(1)).unwrap_or(usize::MAX);
                let records: Vec<_> = self
                    .chain
                    .iter()
                    .skip(start)
                    .take(SYNC_RECORDS_MAX)
                    .cloned()
                    .collect();
                if !records.is_empty() {
                    ctx.send(self.index, from, Packet::SyncResponse(records));
                }
            }
            Packet::SyncResponse(records) => {
                ctx.stats.syncs += 1;
                self.sync_until_ms = 0;
                for (block, finality) in records {
                    self.input(Input::Synced { block, finality }, ctx);
                }
            }
            Packet::Gossip(envelope) => {
                let id = envelope.id();
                if !self.committed_ids.contains(&id) && !self.mempool.contains_key(&id) {
                    self.mempool.insert(id, envelope);
                    self.report_work(ctx);
                    if !self.reassembly.is_empty() {
                        let index = self.index;
                        let mempool = &self.mempool;
                        let complete = self.reassembly.retry(|id| held(mempool, ctx, index, id));
                        self.rebuilt(complete, ctx);
                    }
                }
            }
            Packet::Compact(compact) => {
                if let Some(engine) = &self.engine {
                    self.reassembly.prune_below(engine.view());
                }
                ctx.stats.proposals_by_id += 1;
                let index = self.index;
                let mempool = &self.mempool;
                let offer = self
                    .reassembly
                    .offer(from, *compact, |id| held(mempool, ctx, index, id));
                match offer {
                    Offer::Whole(proposal) => self.rebuilt(vec![(from, *proposal)], ctx),
                    Offer::Want { from, view, ids } => {
                        ctx.stats.wants += 1;
                        ctx.send(self.index, from, Packet::Want { view, ids });
                    }
                    Offer::Refused(_) => ctx.stats.dropped_bad += 1,
                }
            }
            Packet::Want { view, ids } => {
                if self.role == Role::Withholder {
                    return;
                }
                let ours: BTreeMap<AttestationId, Envelope> = self
                    .bodies
                    .values()
                    .filter(|b| b.header.view == view)
                    .flat_map(|b| b.attestations.iter().map(|e| (e.id(), e.clone())))
                    .collect();
                let bodies = relay::answer(&ids, usize::MAX, |id| {
                    ours.get(id)
                        .cloned()
                        .or_else(|| self.mempool.get(id).cloned())
                });
                ctx.send(self.index, from, Packet::Bodies(bodies));
            }
            Packet::Bodies(bodies) => {
                ctx.stats.bodies_fetched += bodies.len() as u64;
                let complete = self.reassembly.receive(bodies);
                self.rebuilt(complete, ctx);
            }
        }
    }

    /// Rebuilt proposals go to the engine as if they had come whole.
    fn rebuilt(&mut self, complete: Vec<(u16, lotline_consensus::Proposal)>, ctx: &mut Ctx) {
        for (from, proposal) in complete {
            let from = self.engine_index(ctx, from);
            let message = Message::Proposal(Box::new(proposal));
            self.input(Input::Message { from, message }, ctx);
        }
    }

    fn execute(&mut self, outputs: Vec<Output>, ctx: &mut Ctx) {
        match self.role {
            Role::Honest | Role::Withholder => self.execute_honest(outputs, ctx),
            Role::Equivocator => byzantine::equivocator::execute(self, outputs, ctx),
            Role::Silent => {}
        }
    }

    /// The honest actor: journal, then sync before the first send.
    fn execute_honest(&mut self, outputs: Vec<Output>, ctx: &mut Ctx) {
        // Only an honest node crashes (`crash` ignores the others); the draw
        // is made for every role so that a run's other random choices stay
        // the same. A withholder that "crashed" here used to stop executing
        // its outputs without going down, dropping a commit.
        let crash_at = (ctx.faults && ctx.rng.chance(ctx.options.crash_mid_step))
            .then(|| ctx.rng.below(outputs.len() as u64 + 1) as usize)
            .filter(|_| self.role == Role::Honest);
        for (position, output) in outputs.into_iter().enumerate() {
            if crash_at == Some(position) {
                return self.crash(ctx);
            }
            match output {
                Output::Journal(vote) => {
                    if self.abstainer {
                        ctx.checker.on_abstainer_vote(ctx.now_ms, self.index, &vote);
                    }
                    self.journal.append(vote)
                }
                Output::Persist(record) => {
                    if let Record::Block(block) = &record {
                        self.bodies.insert(block.hash(), block.clone());
                    }
                    self.journal.append_record(record)
                }
                Output::Broadcast(message) => {
                    self.before_send(&message, ctx);
                    ctx.broadcast(self.index, Packet::carrying(message));
                }
                Output::Send { to, message } => {
                    self.before_send(&message, ctx);
                    if let Some(to) = self.node_of(ctx, to) {
                        ctx.send(self.index, to, Packet::carrying(message));
                    }
                }
                Output::Commit {
                    block,
                    ids,
                    finality,
                } => {
                    // The block log is written after what binds is durable,
                    // as in the node's actor.
                    if self.journal.owes_sync() {
                        self.journal.sync();
                    }
                    ctx.checker
                        .on_commit(ctx.now_ms, self.index, &block, &ids, &finality);
                    ctx.trace
                        .record(&[b"commit", &self.index.to_be_bytes(), &block.hash().0.0]);
                    ctx.stats.commits += 1;
                    if !ctx.checker.proposer_is_honest(&block.header) {
                        ctx.stats.byzantine_blocks_committed += 1;
                    }
                    let height = block.header.height;
                    self.committed_ids
                        .extend(block.attestations.iter().map(Envelope::id));
                    self.bodies.retain(|_, b| b.header.height > height);
                    let keep = KeepAbove::committed(&block.header, &finality);
                    self.on_committed(&block);
                    self.chain.push((block, finality));
                    self.journal.compact(keep);
                    ctx.stats.journal_entries_max = ctx
                        .stats
                        .journal_entries_max
                        .max(self.journal.entries() as u64);
                }
                Output::Evidence(evidence) => {
                    ctx.checker.on_evidence(ctx.now_ms, self.index, &evidence)
                }
                Output::Dropped { reason, .. } => {
                    ctx.stats.dropped += 1;
                    if !reason.is_benign() {
                        ctx.stats.dropped_bad += 1;
                    }
                }
                other => self.schedule(other, ctx),
            }
        }
    }

    /// The journal sync barrier, and the checker's view of what leaves.
    fn before_send(&mut self, message: &Message, ctx: &mut Ctx) {
        if self.journal.owes_sync() {
            self.journal.sync();
        }
        let own = match message {
            Message::Vote(vote) => Some(vote),
            Message::Proposal(proposal) => Some(&proposal.notarize),
            Message::Certificate(certificate) => {
                ctx.checker
                    .on_certificate_sent(ctx.now_ms, self.index, certificate);
                None
            }
            Message::Request(_) | Message::Blocks(_) | Message::Evidence(_) => None,
        };
        if let Some(vote) = own.filter(|v| v.signer == ctx.roster.index_of(v.epoch, self.index)) {
            let durable = self.journal.is_durable(vote);
            ctx.checker
                .on_vote_sent(ctx.now_ms, self.index, vote, durable);
        }
    }

    /// Timers, payload requests, verification and block sync: the same for
    /// every role that runs an engine.
    pub fn schedule(&mut self, output: Output, ctx: &mut Ctx) {
        let (node, incarnation) = (self.index, self.incarnation);
        match output {
            Output::SetTimer {
                view,
                timer,
                after_ms,
            } => {
                ctx.queue.schedule(
                    ctx.now_ms + after_ms,
                    Event::Timer {
                        node,
                        incarnation,
                        view,
                        timer,
                    },
                );
            }
            Output::Build { view: _ } => {
                let at = ctx.now_ms + ctx.rng.range(1, ctx.options.build_delay_max_ms);
                ctx.queue.schedule(at, Event::Build { node, incarnation });
            }
            Output::Verify { view, block, ids } => {
                ctx.checker.on_ids(ctx.now_ms, node, &block, &ids);
                let valid = self.payload_is_fresh(&block);
                if valid {
                    self.bodies.insert(block.hash(), block.clone());
                } else if ctx.checker.proposer_is_honest(&block.header) {
                    ctx.stats.repeat_refusals += 1;
                }
                if !valid && ctx.log {
                    eprintln!(
                        "{:>6} n{node} REFUSES v{view} h{} of n{}: it repeats an attestation",
                        ctx.now_ms, block.header.height, block.header.proposer
                    );
                }
                let input = Input::Verified {
                    view,
                    block: block.hash(),
                    valid,
                };
                let at = ctx.now_ms + ctx.rng.range(1, ctx.options.verify_delay_max_ms);
                ctx.queue.schedule(
                    at,
                    Event::Local {
                        node,
                        incarnation,
                        input,
                    },
                );
            }
            Output::Sync { height } if ctx.now_ms >= self.sync_until_ms && ctx.n > 1 => {
                // As the actor's block sync: one of the peers the
                // transport is connected to, none if there is none.
                let peers: Vec<u16> = (0..ctx.n as u16)
                    .filter(|peer| *peer != node && ctx.network.connected(node, *peer))
                    .collect();
                if peers.is_empty() {
                    return;
                }
                self.sync_until_ms = ctx.now_ms + SYNC_RETRY_MS;
                let peer = peers[(self.next_sync_peer % peers.len() as u64) as usize];
                self.next_sync_peer += 1;
                ctx.send(node, peer, Packet::SyncRequest { height });
            }
            _ => {}
        }
    }

    /// The leader's payload, from the pool as it is now: the oldest
    /// attestations its chain did not commit and no block that may still
    /// commit carries (`Engine::live_attestations`, as `BftActor::propose`).
    pub fn build(&mut self, ctx: &mut Ctx) {
        let Some(engine) = &self.engine else {
            return;
        };
        let in_flight = engine.live_attestations();
        let fresh =
            |id: &AttestationId| !self.committed_ids.contains(id) && !in_flight.contains(id);
        let attestations = if ctx.intermittent {
            self.mempool
                .iter()
                .filter(|(id, _)| fresh(id))
                .take(PROPOSAL_ATTESTATIONS_MAX)
                .map(|(_, envelope)| envelope.clone())
                .collect()
        } else {
            attestation_pool()
                .iter()
                .filter(|(id, _)| fresh(id))
                .take(PAYLOAD_MAX)
                .map(|(_, envelope)| envelope.clone())
                .collect()
        };
        let mut attestations: Vec<Envelope> = attestations;
        if self.role == Role::Withholder {
            // An attestation only this leader holds, never gossiped.
            let key = SigningKey::from_seed(&[0xE1; 32]);
            let payload = format!("withheld by {} in view {}", self.index, engine.view());
            attestations.push(Envelope::sign(payload.into_bytes(), &key));
        }
        let input = Input::Propose {
            attestations,
            evidence: Vec::new(),
            now_ms: ctx.now_ms,
        };
        self.input(input, ctx);
    }

    /// The actor's payload check (`bft.rs`): no attestation twice in the
    /// block, none its chain committed, none an ancestor it holds carries.
    fn payload_is_fresh(&self, block: &Block) -> bool {
        let mut seen = BTreeSet::new();
        let mut parent = block.header.parent;
        while let Some(ancestor) = self.bodies.get(&parent) {
            seen.extend(ancestor.attestations.iter().map(Envelope::id));
            parent = ancestor.header.parent;
        }
        block.attestations.iter().all(|envelope| {
            let id = envelope.id();
            !self.committed_ids.contains(&id) && seen.insert(id)
        })
    }

    /// Power cut: the engine and unsynced journal records are gone; the
    /// block log and the synced journal stay.
    pub fn crash(&mut self, ctx: &mut Ctx) {
        if !self.is_up() || self.role != Role::Honest {
            return;
        }
        self.engine = None;
        self.bodies.clear();
        self.mempool.clear();
        self.reassembly = Reassembly::default();
        self.work = None;
        self.journal.crash();
        ctx.network.disconnect(self.index, ctx.n);
        self.incarnation += 1;
        ctx.stats.crashes += 1;
        ctx.trace.record(&[b"crash", &self.index.to_be_bytes()]);
        let downtime = ctx.rng.range(50, ctx.options.downtime_max_ms);
        ctx.queue
            .schedule(ctx.now_ms + downtime, Event::Restart { node: self.index });
    }

    /// Restart from the synced journal and the block log.
    pub fn restart(&mut self, ctx: &mut Ctx) {
        if self.is_up() || self.role != Role::Honest {
            return;
        }
        let last = self
            .chain
            .last()
            .map(|(block, finality)| (block.header.clone(), finality.clone()));
        // The epoch of the next height: a block log ending at a boundary
        // block restores into the next epoch.
        let epoch = ctx.roster.epoch_of_height(self.chain.len() as u64 + 1);
        self.fed = None;
        match Engine::restore(
            self.config_for(ctx.roster, epoch),
            self.journal.synced(),
            self.journal.records(),
            last,
        ) {
            Ok(engine) => {
                self.engine = Some(engine);
                self.incarnation += 1;
                ctx.stats.restarts += 1;
                ctx.trace.record(&[b"restart", &self.index.to_be_bytes()]);
                self.start(ctx);
            }
            Err(e) => ctx
                .checker
                .violations
                .push(format!("node {} can not restore: {e}", self.index)),
        }
    }
}

fn describe_message(message: &Message) -> String {
    match message {
        Message::Evidence(e) => format!(
            "evidence {:?} against {} v{}",
            e.kind(),
            e.signer(),
            e.view()
        ),
        Message::Proposal(p) => format!(
            "proposal v{} h{} {} parent_v{:?} nulls{:?}",
            p.notarize.view,
            p.block.header.height,
            short(&p.block.hash().0),
            p.parent.as_ref().map(|h| h.view),
            p.nullifications.iter().map(|c| c.view).collect::<Vec<_>>()
        ),
        Message::Vote(v) => format!(
            "vote {:?} v{} {} by {}",
            v.kind,
            v.view,
            short(&v.block),
            v.signer
        ),
        Message::Certificate(c) => format!(
            "cert {:?} v{} {} ({} sigs)",
            c.kind,
            c.view,
            short(&c.block),
            c.signatures.len()
        ),
        Message::Request(r) => format!("request {r:?}"),
        Message::Blocks(b) => format!(
            "blocks {:?}",
            b.iter().map(|b| b.header.height).collect::<Vec<_>>()
        ),
    }
}

fn describe_input(input: &Input) -> String {
    match input {
        Input::Propose { attestations, .. } => {
            format!("propose ({} attestations)", attestations.len())
        }
        Input::Message { from, message } => format!("from {from}: {}", describe_message(message)),
        Input::Timer { view, timer } => format!("timer {timer:?} v{view}"),
        Input::Verified { view, block, valid } => {
            format!("verified v{view} {} {valid}", short(&block.0))
        }
        Input::Synced { block, .. } => format!("synced h{}", block.header.height),
        Input::PeerConnected { peer } => format!("connected to {peer}"),
        Input::Work { pending } => format!("work pending {pending}"),
        Input::Reconfigure(next) => format!(
            "epoch {} from height {}: {} validators, we are {}",
            next.epoch,
            next.from_height,
            next.validators.len(),
            next.index
        ),
    }
}

fn describe_output(output: &Output) -> String {
    match output {
        Output::Journal(v) => format!("journal {:?} v{} {}", v.kind, v.view, short(&v.block)),
        Output::Persist(Record::Certificate(c)) => format!("persist {:?} v{}", c.kind, c.view),
        Output::Persist(Record::Block(b)) => {
            format!("persist block h{} v{}", b.header.height, b.header.view)
        }
        Output::Broadcast(m) => format!("broadcast {}", describe_message(m)),
        Output::Send { to, message } => format!("send {to} {}", describe_message(message)),
        Output::SetTimer {
            view,
            timer,
            after_ms,
        } => format!("timer {timer:?} v{view} +{after_ms}"),
        Output::Build { view } => format!("build v{view}"),
        Output::Verify { view, block, .. } => format!("verify v{view} {}", short(&block.hash().0)),
        Output::Commit {
            block, finality, ..
        } => format!(
            "COMMIT h{} v{} {} (cert v{}, {} descendants)",
            block.header.height,
            block.header.view,
            short(&block.hash().0),
            finality.certificate.view,
            finality.descendants.len()
        ),
        Output::Sync { height } => format!("sync from h{height}"),
        Output::Evidence(e) => format!(
            "evidence {:?} against {} v{}",
            e.kind(),
            e.signer(),
            e.view()
        ),
        Output::Dropped { from, reason } => format!("dropped from {from:?}: {reason}"),
    }
}

fn short(digest: &lotline_core::hash::Digest) -> String {
    digest.to_hex()[..8].to_string()
}
