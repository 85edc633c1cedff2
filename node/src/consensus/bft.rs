//! The multi-validator actor: carries out the Simplex engine's outputs over
//! the permissioned network, the vote journal, the block log and the mempool.
//!
//! One OS thread owns the engine, the journal and the store writer. Inputs
//! arrive on one bounded channel (network events, block-sync answers); timers
//! live in a local queue. Output order is the engine's, with one rule added
//! here: before anything is sent, everything journaled so far is fdatasync'ed,
//! so no vote leaves before it is durable.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::time::{Duration, Instant};

use lotline_consensus::held::HeldBlocks;
use lotline_consensus::relay::{self, CompactProposal, Offer, Reassembly};
use lotline_consensus::{Engine, Input, Message, Output, Record, TimerKind};
use lotline_core::attestation::{AttestationId, Envelope};
use lotline_core::block::Block;
use lotline_core::codec;
use lotline_core::evidence::{Evidence, EvidenceKey};
use lotline_core::limits;
use serde::{Deserialize, Serialize};

use super::commit;
use super::epoch::Epochs;
use super::evidence;
use super::mend::{self, Mend};
use super::{BlockPolicy, Halt};
use crate::admission::{self, Admission};
use crate::net::{EventSink, NetError, NetEvent, NetworkHandle};
use crate::state::Shared;
use crate::store::vote_journal::{KeepAbove, VoteJournal};
use crate::store::{BlockRecord, NotFresh, Store, StoreReader};
use lotline_genesis::governance::{self, History};

/// Largest consensus message accepted from a peer.
pub const MESSAGE_BYTES_MAX: usize = limits::BLOCK_BYTES_MAX + 1024 * 1024;
/// Blocks per block-sync answer (also bounded by bytes).
pub const SYNC_BLOCKS_MAX: u16 = 64;
/// Bytes of blocks an answerer puts in one block-sync answer: it stops
/// adding blocks past this (one block alone may exceed it, up to the block
/// log's record bound).
pub const SYNC_RESPONSE_BYTES_MAX: usize = limits::BLOCK_BYTES_MAX;
/// The largest block-sync answer a node decodes (the actor, `lotline
/// repair`, the running node's mend): the answer's blocks and their
/// framing, within the network's wire cap for sync responses.
pub const SYNC_ANSWER_BYTES_MAX: usize = SYNC_RESPONSE_BYTES_MAX + 1024 * 1024;
const _: () = assert!(crate::store::block_log::RECORD_MAX < SYNC_ANSWER_BYTES_MAX);
const _: () =
    assert!(SYNC_ANSWER_BYTES_MAX <= crate::net::config::SYNC_RESPONSE_BYTES_MAX as usize);
/// Inputs waiting for the actor.
pub const EVENTS_MAX: usize = 4096;
/// Heights past the next one a leader's proposal must be admissible at
/// (it may build on that many uncommitted parents): an attestation whose
/// key a governance change retires within them waits instead of making
/// the proposal refused.
pub const PROPOSAL_HEIGHTS_AHEAD: u64 = 2;

/// What validators send each other on the consensus channel: the engine's
/// messages, except that a proposal travels by attestation id, with the
/// wants and bodies that complete it (`lotline_consensus::relay`: each
/// attestation crosses the network once, by gossip at admission).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Frame {
    Message(Message),
    Proposal(Box<CompactProposal>),
    /// "Send me these bodies of your proposal for `view`."
    Want {
        view: u64,
        ids: Vec<AttestationId>,
    },
    /// The answer to a want: the bodies the proposer holds.
    Bodies {
        view: u64,
        bodies: Vec<Envelope>,
    },
}

impl Frame {
    /// The frame that carries an engine message: a proposal by id, the
    /// rest as they are.
    pub fn carrying(message: Message) -> Frame {
        match message {
            Message::Proposal(proposal) => {
                Frame::Proposal(Box::new(CompactProposal::of(&proposal)))
            }
            other => Frame::Message(other),
        }
    }
}

/// Block sync: "send me finalized blocks from this height".
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncRequest {
    pub from_height: u64,
    pub max_blocks: u16,
}

/// Block sync answer: consecutive blocks with their finality proofs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncResponse {
    pub records: Vec<BlockRecord>,
}

/// What wakes the actor.
#[derive(Debug)]
pub enum Event {
    Net(NetEvent),
    Synced {
        from: u16,
        answer: Result<Vec<u8>, NetError>,
    },
    /// A round of mending the block log ended its fetch (`mend`).
    Mend(mend::Round),
    /// The pool gained attestations while the actor slept idle
    /// ([`crate::state::IdleWake`]): the tick after it reports the work.
    Work,
}

/// The actor's queue as the network's [`EventSink`]: frames, gossip and
/// sync requests go from the stream readers and the swarm task straight to
/// the actor, with no task in between. Full, it drops (and counts), which
/// consensus tolerates by retransmitting.
#[derive(Debug)]
pub struct ActorSink {
    pub tx: SyncSender<Event>,
    pub shared: Arc<Shared>,
}

impl EventSink for ActorSink {
    fn deliver(&self, event: NetEvent) -> bool {
        match self.tx.try_send(Event::Net(event)) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) => {
                self.shared.metrics.consensus_dropped.inc();
                false
            }
            Err(TrySendError::Disconnected(_)) => false,
        }
    }
}

#[derive(Debug)]
pub struct BftActor {
    pub engine: Engine,
    pub journal: VoteJournal,
    pub store: Store,
    /// The commit step's second half (`commit.rs`).
    pub indexer: commit::Indexer,
    pub shared: Arc<Shared>,
    pub net: NetworkHandle,
    pub admission: Admission,
    pub policy: BlockPolicy,
    pub events: Receiver<Event>,
    pub events_tx: SyncSender<Event>,
    pub runtime: tokio::runtime::Handle,
    pub state: ActorState,
    /// When the block log is next read back and mended from peers.
    pub mend: Mend,
    /// The engine's epoch and the next one it is owed (`epoch`), and how
    /// transport peers map to the epoch's validator indices.
    pub epochs: Epochs,
}

/// The actor's own bookkeeping (not consensus state).
#[derive(Debug, Default)]
pub struct ActorState {
    timers: BTreeMap<(Instant, u64), (u64, TimerKind)>,
    timer_seq: u64,
    /// We lead this view and owe the engine a payload since this instant.
    build: Option<(u64, Instant)>,
    /// When we last proposed a block or were asked to verify one: the
    /// start of the gap a leader keeps between blocks under load.
    last_block: Option<Instant>,
    /// What we last told the engine about pending work (`Input::Work`).
    work: Option<bool>,
    /// Uncommitted blocks we proposed, verified or persisted, by hash.
    blocks: HeldBlocks,
    /// The vote journal holds a binding record not yet fdatasync'ed: an
    /// own vote, or a block this validator notarizes. It must be durable
    /// before any message leaves (docs/protocol.md, "durability"), so that
    /// no restart can sign against it. Certificates (other validators'
    /// votes, kept so a restart re-enters the view after them) do not set
    /// it: no message depends on their being durable, so they ride with the
    /// next binding record's fdatasync, and a crash before it loses only
    /// certificates no own vote has built on, which peers hold or their
    /// durable votes form again.
    binding_unsynced: bool,
    syncing: bool,
    next_sync_peer: usize,
    journal_syncs: u64,
    last_sync: Option<Instant>,
    /// Gossip messages whose attestations wait for one batch verification.
    gossip: Vec<(u16, crate::net::GossipId, Vec<Vec<u8>>)>,
    /// The attestations in `gossip`.
    gossip_items: usize,
    /// Verified evidence no committed block records yet.
    evidence: evidence::Pool,
    /// Proposals that arrived by id, waiting for bodies.
    reassembly: Reassembly,
}

/// Gossiped attestations verified together (more wait at most one tick).
pub const GOSSIP_BATCH_MAX: usize = 64;

/// Least time between two block-sync requests.
pub const SYNC_INTERVAL_MIN: Duration = Duration::from_millis(200);

/// The longest the actor sleeps without an event or a due timer. Nothing
/// waits for it: frames, gossip and local admissions
/// ([`crate::state::IdleWake`]) wake the actor; it bounds how long a
/// change the actor is told of by no event (none is known) would wait.
pub const SLEEP_MAX: Duration = Duration::from_millis(100);

/// The environment variable of the crash test: abort the process right
/// after the N-th journal fdatasync, before the votes it made durable are
/// sent. Used by `node/tests/crash_between_journal_and_send.rs` to prove a
/// restarted validator never equivocates; unset in normal operation.
pub const CRASH_AFTER_JOURNAL_SYNC: &str = "LOTLINE_CRASH_AFTER_JOURNAL_SYNC";

fn crash_point(syncs: u64) {
    static AT: std::sync::OnceLock<Option<u64>> = std::sync::OnceLock::new();
    let at = AT.get_or_init(|| {
        std::env::var(CRASH_AFTER_JOURNAL_SYNC)
            .ok()
            .and_then(|v| v.parse().ok())
    });
    if *at == Some(syncs) {
        eprintln!("{CRASH_AFTER_JOURNAL_SYNC}={syncs}: aborting between journal and send");
        std::process::abort();
    }
}

impl BftActor {
    pub fn run(mut self) {
        match evidence::Pool::load(&self.store.reader()) {
            Ok(pool) => self.state.evidence = pool,
            Err(error) => return self.fail(Halt::Store(error)),
        }
        self.state.evidence.retain_epoch(self.engine.config().epoch);
        // A restart between a validator-set change and its boundary: the
        // engine learns the next epoch again from the committed history.
        if let Err(reason) = self.tell_next_epoch() {
            return self.fail(reason);
        }
        // The engine learns whether there is work before it starts its view,
        // so a restart of an idle chain does not propose an empty block.
        if let Err(reason) = self.report_work() {
            return self.fail(reason);
        }
        let outputs = self.engine.start();
        if let Err(reason) = self.execute(outputs) {
            return self.fail(reason);
        }
        while !self.shared.shutting_down() {
            if let Err(reason) = self.tick() {
                return self.fail(reason);
            }
        }
        tracing::info!(
            height = self.store.height(),
            view = self.engine.view(),
            "consensus actor stopped"
        );
    }

    fn fail(&self, reason: Halt) {
        reason.stop(&self.shared);
    }

    /// Fires due timers, proposes when ready, then waits for one event.
    fn tick(&mut self) -> Result<(), Halt> {
        let now = Instant::now();
        while let Some((&(at, seq), &(view, timer))) = self.state.timers.iter().next() {
            if at > now {
                break;
            }
            self.state.timers.remove(&(at, seq));
            self.step(Input::Timer { view, timer })?;
        }
        self.report_work()?;
        if let Some((view, since)) = self.state.build
            && self.ready_to_build(since)
        {
            self.state.build = None;
            self.propose(view)?;
        }
        if self.mend.start_due(Instant::now()) {
            self.start_mend();
        }
        let mut wait = SLEEP_MAX;
        if self.state.work == Some(false) {
            // Marked idle before the last look, so an admission after the
            // look wakes us (`IdleWake`).
            self.shared.idle.sleeping();
            self.report_work()?;
        }
        if let Some((&(at, _), _)) = self.state.timers.iter().next() {
            wait = wait.min(at.saturating_duration_since(Instant::now()));
        }
        if self.state.build.is_some() {
            wait = wait.min(Duration::from_millis(1));
        }
        if !self.state.gossip.is_empty() {
            wait = Duration::ZERO;
        }
        let event = self.events.recv_timeout(wait);
        self.shared.idle.awake();
        match event {
            Ok(event) => self.on_event(event),
            Err(RecvTimeoutError::Timeout) => {
                self.admit_gossip();
                Ok(())
            }
            Err(RecvTimeoutError::Disconnected) => {
                self.shared.begin_shutdown();
                Ok(())
            }
        }
    }

    /// A leader proposes when its block is full, or after `linger` and
    /// at least `gap` after the last block it saw
    /// ([`super::BlockPolicy::leader_may_cut`]). The engine asks only in an
    /// active view (work, a due heartbeat, or peers leaving the view), so
    /// with nothing to propose the answer is an empty block then.
    fn ready_to_build(&self, since: Instant) -> bool {
        let pending = self.shared.pool().len();
        let last_block = self.state.last_block.map(|at| at.elapsed());
        self.policy
            .leader_may_cut(pending, since.elapsed(), last_block)
            || self.shared.shutting_down()
    }

    /// Tells the engine when the answer to "is there work to order?"
    /// changes: an attestation in the mempool that no block that may still
    /// commit carries (`Engine::live_attestations`), or evidence that no
    /// uncommitted block records.
    /// Run after every event, so the engine never enters a view on a stale
    /// answer by more than one event.
    fn report_work(&mut self) -> Result<(), Halt> {
        let pending = self.has_work();
        if self.state.work == Some(pending) {
            return Ok(());
        }
        self.state.work = Some(pending);
        tracing::debug!(pending, view = self.engine.view(), "work changed");
        self.step(Input::Work { pending })
    }

    fn has_work(&self) -> bool {
        if !self
            .state
            .evidence
            .select(&self.evidence_in_flight())
            .is_empty()
        {
            return true;
        }
        let pool = self.shared.pool();
        if pool.is_empty() {
            return false;
        }
        // Under load the pool outnumbers what is in flight: no set needed.
        if pool.len() > self.engine.uncommitted_attestation_count() {
            return true;
        }
        let in_flight = self.engine.live_attestations();
        !pool
            .peek(1, usize::MAX, |id| in_flight.contains(id))
            .is_empty()
    }

    /// Offences recorded by uncommitted blocks we hold.
    fn evidence_in_flight(&self) -> BTreeSet<EvidenceKey> {
        self.state
            .blocks
            .blocks()
            .flat_map(|b| b.evidence.iter().filter_map(Evidence::key))
            .collect()
    }

    /// Answers the engine's `Build`: the oldest pending attestations that
    /// no block which may still commit carries (`live_attestations`: the
    /// notarized blocks above the finalized one, their ancestors, the
    /// current proposal). The exclusion comes from the engine, which holds
    /// every uncommitted block body (ours, verified, arrived after we left
    /// its view, fetched); this actor's own `blocks` miss some of those,
    /// and a leader that offered an ancestor's attestation again lost the
    /// view to voters refusing the repeat (issue 10, defect 9). The engine
    /// also drops such repeats itself (`try_propose`); this keeps them from
    /// taking the room of others. What only a block of a view left without
    /// notarization carries (an equivocating leader's) is offered again at
    /// once: it is the work `report_work` announces.
    fn propose(&mut self, view: u64) -> Result<(), Halt> {
        let in_flight: BTreeSet<AttestationId> = self.engine.live_attestations();
        let evidence = self.state.evidence.select(&self.evidence_in_flight());
        let items = self.shared.pool().peek(
            self.policy.attestations_max,
            limits::BLOCK_BYTES_MAX / 2,
            |id| in_flight.contains(id),
        );
        // The block's height is not known here (it may build on uncommitted
        // parents): propose only what the membership allows at the next
        // few heights, and drop what it no longer allows at all.
        let governance = &self.shared.governance;
        let next = governance.next_height();
        let (items, stale) = admission::sort_for_proposal(
            items,
            &governance.history(),
            next..=next + PROPOSAL_HEIGHTS_AHEAD,
        );
        if !stale.is_empty() {
            let ids: Vec<AttestationId> = stale.iter().map(|(a, _)| a.id).collect();
            for (item, rejection) in &stale {
                tracing::warn!(id = %item.id, ?rejection, "pending attestation no longer admissible; dropped");
            }
            self.shared.pool().remove_committed(&ids);
        }
        tracing::debug!(view, attestations = items.len(), "proposing");
        self.state.last_block = Some(Instant::now());
        let attestations = items.into_iter().map(|a| a.envelope).collect();
        self.step(Input::Propose {
            attestations,
            evidence,
            now_ms: crate::clock::unix_ms(),
        })
    }

    fn on_event(&mut self, event: Event) -> Result<(), Halt> {
        match event {
            Event::Net(NetEvent::Frame { from, bytes }) => {
                match codec::from_bytes::<Frame>("consensus frame", &bytes, MESSAGE_BYTES_MAX) {
                    Ok(Frame::Message(message)) => {
                        if let Some(from) = self.epochs.roster().index_of(from) {
                            self.step(Input::Message { from, message })?
                        }
                    }
                    Ok(Frame::Proposal(compact)) => self.on_compact(from, *compact)?,
                    Ok(Frame::Want { view, ids }) => self.answer_want(from, view, &ids),
                    Ok(Frame::Bodies { view, bodies }) => {
                        tracing::debug!(from, view, bodies = bodies.len(), "proposal bodies");
                        let complete = self.state.reassembly.receive(bodies);
                        self.propose_to_engine(complete)?;
                    }
                    Err(error) => {
                        self.shared.metrics.consensus_dropped.inc();
                        tracing::warn!(from, %error, "undecodable consensus frame dropped");
                    }
                }
            }
            Event::Net(NetEvent::Gossip { from, id, items }) => {
                self.state.gossip_items += items.len();
                self.state.gossip.push((from, id, items));
                if self.state.gossip_items >= GOSSIP_BATCH_MAX {
                    self.admit_gossip();
                }
            }
            Event::Net(NetEvent::SyncRequest { from, bytes, reply }) => {
                let answer = self.answer_sync(&bytes);
                tracing::debug!(from, blocks = answer.records.len(), "serving block sync");
                let _ = reply.send(codec::to_bytes(&answer));
            }
            // The net task logs (dis)connections; a stuck engine re-sends
            // its nullify to a peer that is back.
            Event::Net(NetEvent::PeerConnected(peer)) => {
                if let Some(peer) = self.epochs.roster().index_of(peer) {
                    self.step(Input::PeerConnected { peer })?
                }
            }
            Event::Net(NetEvent::PeerDisconnected(_)) => {}
            Event::Net(NetEvent::Rejected { peer, reason }) => {
                tracing::warn!(%peer, %reason, "non-member peer refused")
            }
            Event::Mend(round) => self.finish_mend(round)?,
            Event::Work => {}
            Event::Synced { from, answer } => {
                self.state.syncing = false;
                match answer.map_err(|e| e.to_string()).and_then(|bytes| {
                    codec::from_bytes::<SyncResponse>(
                        "sync response",
                        &bytes,
                        SYNC_ANSWER_BYTES_MAX,
                    )
                    .map_err(|e| e.to_string())
                }) {
                    Ok(response) => {
                        tracing::info!(from, blocks = response.records.len(), "block sync answer");
                        for record in response.records {
                            self.step(Input::Synced {
                                block: record.block,
                                finality: record.finality,
                            })?;
                        }
                    }
                    Err(error) => tracing::warn!(from, %error, "block sync failed; will retry"),
                }
            }
        }
        Ok(())
    }

    /// A proposal by id: whole from the mempool, or parked while its
    /// proposer is asked for the missing bodies.
    fn on_compact(&mut self, from: u16, compact: CompactProposal) -> Result<(), Halt> {
        self.state.reassembly.prune_below(self.engine.view());
        // Bodies that came by gossip and wait for their batch verification
        // go into the mempool first: asking the proposer for them would
        // cost a round trip and a second verification.
        self.admit_gossip();
        let offer = {
            let pool = self.shared.pool();
            self.state.reassembly.offer(from, compact, |id| {
                pool.pending(id).map(|a| a.envelope.clone())
            })
        };
        match offer {
            Offer::Whole(proposal) => self.propose_to_engine(vec![(from, *proposal)]),
            Offer::Want { from, view, ids } => {
                self.shared
                    .metrics
                    .consensus_bodies_wanted
                    .inc_by(ids.len() as u64);
                tracing::debug!(
                    from,
                    view,
                    missing = ids.len(),
                    "asking the proposer for bodies"
                );
                let frame = Frame::Want { view, ids };
                if self.net.send(from, codec::to_bytes(&frame)).is_err() {
                    self.shared.metrics.consensus_dropped.inc();
                }
                Ok(())
            }
            Offer::Refused(reason) => {
                self.shared.metrics.consensus_dropped.inc();
                tracing::warn!(from, reason, "compact proposal refused");
                Ok(())
            }
        }
    }

    /// Hands rebuilt proposals to the engine, as if they had come whole
    /// (`from`: the transport peer, mapped to its index in the epoch).
    fn propose_to_engine(
        &mut self,
        complete: Vec<(u16, lotline_consensus::Proposal)>,
    ) -> Result<(), Halt> {
        for (from, proposal) in complete {
            let Some(from) = self.epochs.roster().index_of(from) else {
                continue;
            };
            self.step(Input::Message {
                from,
                message: Message::Proposal(Box::new(proposal)),
            })?;
        }
        Ok(())
    }

    /// Answers a peer's want with the bodies of our proposal for `view`
    /// (or of our mempool) that it names, bounded in bytes.
    fn answer_want(&self, from: u16, view: u64, ids: &[AttestationId]) {
        let ours: BTreeMap<AttestationId, &Envelope> = self
            .state
            .blocks
            .blocks_with_ids()
            .filter(|(b, _)| b.header.view == view)
            .flat_map(|(b, ids)| ids.iter().copied().zip(&b.attestations))
            .collect();
        let bodies = {
            let pool = self.shared.pool();
            relay::answer(ids, SYNC_RESPONSE_BYTES_MAX, |id| {
                ours.get(id)
                    .map(|e| (*e).clone())
                    .or_else(|| pool.pending(id).map(|a| a.envelope.clone()))
            })
        };
        tracing::debug!(
            from,
            view,
            wanted = ids.len(),
            sent = bodies.len(),
            "answering a want"
        );
        let frame = Frame::Bodies { view, bodies };
        if self.net.send(from, codec::to_bytes(&frame)).is_err() {
            self.shared.metrics.consensus_dropped.inc();
        }
    }

    /// Admits the gossiped attestations collected so far into the mempool,
    /// signatures checked in one batch (the same ZIP-215 verdicts as one by
    /// one), once: a block holding them later needs no second check. A
    /// message is forwarded when every attestation in it was admitted or
    /// already known, and dropped otherwise: an honest author gossips only
    /// what it admitted.
    fn admit_gossip(&mut self) {
        let batch = std::mem::take(&mut self.state.gossip);
        self.state.gossip_items = 0;
        if batch.is_empty() {
            return;
        }
        let reader = self.store.reader();
        let mut verdicts: Vec<Option<bool>> = Vec::new();
        let mut fresh = Vec::new();
        for bytes in batch.iter().flat_map(|(_, _, items)| items) {
            let verdict = match Envelope::from_bytes(bytes) {
                Err(_) => Some(false),
                Ok(envelope) => {
                    let id = envelope.id();
                    if self.shared.pool().knows(&id) {
                        Some(true)
                    } else if reader.check_uncommitted(&id).is_err() {
                        Some(false)
                    } else {
                        fresh.push((id, envelope));
                        None
                    }
                }
            };
            verdicts.push(verdict);
        }
        let mut admitted = self.admission.admit_batch(fresh).into_iter();
        let mut verdicts = verdicts.into_iter();
        for (from, id, items) in batch {
            let mut rejected = 0;
            for verdict in verdicts.by_ref().take(items.len()) {
                let accepted = verdict.unwrap_or_else(|| match admitted.next() {
                    Some(Ok(item)) => {
                        let _ = self.shared.pool().insert(item);
                        true
                    }
                    _ => false,
                });
                rejected += usize::from(!accepted);
            }
            if rejected > 0 {
                tracing::debug!(
                    from,
                    rejected,
                    of = items.len(),
                    "gossiped attestations rejected"
                );
            }
            let _ = self.net.report_gossip(id, rejected == 0);
        }
        if !self.state.reassembly.is_empty() {
            let complete = {
                let pool = self.shared.pool();
                self.state
                    .reassembly
                    .retry(|id| pool.pending(id).map(|a| a.envelope.clone()))
            };
            if let Err(reason) = self.propose_to_engine(complete) {
                self.fail(reason);
            }
        }
    }

    fn answer_sync(&mut self, bytes: &[u8]) -> SyncResponse {
        let mut records = Vec::new();
        let Ok(request) = codec::from_bytes::<SyncRequest>("sync request", bytes, 64) else {
            return SyncResponse { records };
        };
        let mut size = 0;
        let last = request
            .from_height
            .saturating_add(u64::from(request.max_blocks.min(SYNC_BLOCKS_MAX)));
        for height in request.from_height.max(1)..last {
            match self.store.read_block(height) {
                Ok(Some(record)) => {
                    size += record.to_bytes().len();
                    if size > SYNC_RESPONSE_BYTES_MAX && !records.is_empty() {
                        break;
                    }
                    records.push(record);
                }
                Ok(None) => break,
                // Damage is never served: the answer ends before it, and
                // the node mends it from its peers (`mend`).
                Err(error) => {
                    tracing::error!(
                        height,
                        %error,
                        "block log damaged: not serving it; mending it from the validators"
                    );
                    self.mend.damage_seen(Instant::now());
                    break;
                }
            }
        }
        SyncResponse { records }
    }

    /// Tells the engine the next epoch if committed governance makes one it
    /// has not been told (at start; after a commit it is a follow-up input).
    fn tell_next_epoch(&mut self) -> Result<(), Halt> {
        let owed = self.epochs.owed(
            &self.shared.governance.history(),
            self.engine.config().epoch,
        );
        match owed {
            Some(next) => self.step(Input::Reconfigure(Box::new(next))),
            None => Ok(()),
        }
    }

    /// After the engine switched epochs (it committed the boundary block),
    /// maps peers by the new epoch's roster and drops pending evidence of
    /// the old one (its indices mean nothing now, and a block may record
    /// only evidence of its own epoch).
    fn follow_epoch(&mut self) {
        let epoch = self.engine.config().epoch;
        if self.epochs.roster().epoch() != epoch {
            self.epochs.follow(epoch, &self.shared.governance.history());
            self.state.evidence.retain_epoch(epoch);
            self.refresh_peers();
        }
    }

    /// Takes the consensus parameters in force for the next block (a
    /// committed `setConsensus` from its effect height on): how this node
    /// cuts blocks as a leader, and its engine's timeouts.
    fn follow_params(&mut self) {
        let governance = &self.shared.governance;
        let membership = governance.history().at(governance.next_height());
        let params = membership.rules().consensus();
        let policy = super::BlockPolicy::of(params);
        let (base, max) = super::timeouts(params);
        let config = self.engine.config();
        if (config.timeout_base_ms, config.timeout_max_ms) != (base, max)
            || policy.attestations_max != self.policy.attestations_max
            || policy.interval != self.policy.interval
        {
            tracing::info!(
                block_max_attestations = policy.attestations_max,
                block_interval_ms = params.block_interval_ms,
                timeout_base_ms = base.get(),
                timeout_max_ms = max.get(),
                "consensus parameters in force"
            );
            self.policy = policy;
            self.engine.set_timeouts(base, max);
        }
    }

    /// Gives the transport the peer table the committed history and the
    /// engine's epoch make, if it changed (`epoch`, "Who is admitted"): a
    /// validator added by vote is admitted once the change commits, one
    /// that left (or a replaced key) is dropped once the engine has left
    /// its last epoch.
    fn refresh_peers(&mut self) {
        let governance = &self.shared.governance;
        let history = governance.history();
        let table = self.epochs.peers(
            history.genesis(),
            &history,
            self.engine.config().epoch,
            governance.next_height(),
        );
        if let Some(table) = table
            && let Err(error) = self.net.set_peers(table)
        {
            // Queue full: the next commit tries again.
            tracing::warn!(%error, "peer table not updated");
            self.epochs.forget_sent();
        }
    }

    /// Feeds one input to the engine and carries out everything it leads to.
    fn step(&mut self, input: Input) -> Result<(), Halt> {
        let outputs = self.engine.handle(input);
        self.execute(outputs)
    }

    fn execute(&mut self, outputs: Vec<Output>) -> Result<(), Halt> {
        let mut queue: VecDeque<Output> = outputs.into();
        while let Some(output) = queue.pop_front() {
            let follow_up = self.perform(output)?;
            if let Some(input) = follow_up {
                queue.extend(self.engine.handle(input));
            }
        }
        self.follow_epoch();
        self.flush_journal()
    }

    /// Carries out one output; may produce an input for the engine.
    fn perform(&mut self, output: Output) -> Result<Option<Input>, Halt> {
        self.follow_epoch();
        match output {
            Output::Journal(vote) => {
                self.journal.append(&vote)?;
                self.state.binding_unsynced = true;
            }
            Output::Persist(record) => {
                if let Record::Block(block) = &record {
                    self.state.blocks.insert(block.hash(), block.clone());
                    self.state.binding_unsynced = true;
                }
                self.journal.append_record(&record)?;
            }
            Output::Broadcast(message) => {
                self.flush_journal()?;
                if self
                    .net
                    .broadcast(codec::to_bytes(&Frame::carrying(message)))
                    .is_err()
                {
                    self.shared.metrics.consensus_dropped.inc();
                }
            }
            Output::Send { to, message } => {
                self.flush_journal()?;
                let Some(to) = self.epochs.roster().peer_of(to) else {
                    return Ok(None);
                };
                if self
                    .net
                    .send(to, codec::to_bytes(&Frame::carrying(message)))
                    .is_err()
                {
                    self.shared.metrics.consensus_dropped.inc();
                }
            }
            Output::SetTimer {
                view,
                timer,
                after_ms,
            } => {
                self.state.timer_seq += 1;
                let at = Instant::now() + Duration::from_millis(after_ms);
                self.state
                    .timers
                    .insert((at, self.state.timer_seq), (view, timer));
            }
            Output::Build { view } => self.state.build = Some((view, Instant::now())),
            Output::Verify { view, block, ids } => {
                self.state.last_block = Some(Instant::now());
                let hash = block.hash();
                let valid = self.verify_payload(&block, &ids);
                if valid {
                    self.state.blocks.insert_with_ids(hash, block, ids);
                }
                return Ok(Some(Input::Verified {
                    view,
                    block: hash,
                    valid,
                }));
            }
            Output::Commit {
                block,
                ids,
                finality,
            } => {
                // The block log is the durable form of finality: only what
                // binds must precede it (a restart reads the committed
                // finality from the log, not the journal's certificate).
                self.flush_journal()?;
                let keep = KeepAbove::committed(&block.header, &finality);
                self.state.evidence.remove_recorded(&block);
                // Until the indexer has it, a committed block stays among the
                // known blocks, so the payload check's ancestor walk (not
                // sled) refuses a proposal that repeats its attestations or
                // evidence (`verify_payload`); a synced block was not there.
                let hash = block.hash();
                if !self.state.blocks.contains_key(&hash) {
                    self.state
                        .blocks
                        .insert_with_ids(hash, block.clone(), ids.clone());
                }
                commit::commit(
                    &mut self.store,
                    &self.indexer,
                    &self.shared,
                    BlockRecord { block, finality },
                    ids,
                )?;
                let indexed = self.indexer.indexed();
                self.state.blocks.retain(|b| b.header.height > indexed);
                // The block log is durable now: its finality is the floor.
                self.journal.compact(keep)?;
                self.refresh_peers();
                self.follow_params();
                // A committed validator-set change: the engine learns the
                // next epoch now, more than half an epoch before it starts.
                let owed = self.epochs.owed(
                    &self.shared.governance.history(),
                    self.engine.config().epoch,
                );
                if let Some(next) = owed {
                    tracing::info!(
                        epoch = next.epoch,
                        from_height = next.from_height,
                        validators = next.validators.len(),
                        voting = next.voting,
                        "validator-set change committed; the engine learns the next epoch"
                    );
                    return Ok(Some(Input::Reconfigure(Box::new(next))));
                }
            }
            Output::Sync { height } => self.start_sync(height),
            Output::Evidence(evidence) => self.keep_evidence(evidence)?,
            Output::Dropped { from, reason } => {
                self.shared.metrics.consensus_dropped.inc();
                if reason.is_benign() {
                    tracing::debug!(?from, %reason, "consensus input dropped");
                } else {
                    tracing::warn!(?from, %reason, "consensus input dropped");
                }
            }
        }
        Ok(None)
    }

    /// Verified evidence from the engine (it has been broadcast): kept as
    /// pending, in memory and in sled, unless a committed block already
    /// records the offence or the pool is full.
    fn keep_evidence(&mut self, evidence: Evidence) -> Result<(), Halt> {
        let Some(key) = evidence.key() else {
            return Ok(());
        };
        self.shared.metrics.consensus_evidence.inc();
        let reader = self.store.reader();
        if let Some(recorded) = reader.evidence_recorded(key)? {
            tracing::info!(
                ?key,
                height = recorded.height,
                "equivocation evidence already on chain"
            );
            return Ok(());
        }
        if key.signer == self.engine.config().index {
            tracing::error!(
                ?key,
                "evidence against OUR validator key: it signs somewhere else too"
            );
        } else {
            tracing::warn!(?key, "equivocation evidence");
        }
        if self.state.evidence.keep(evidence.clone()) {
            reader.keep_evidence(&evidence)?;
        } else {
            tracing::warn!(
                ?key,
                pending = self.state.evidence.len(),
                "evidence pool full or offence pending; not kept again"
            );
        }
        Ok(())
    }

    /// fdatasyncs the journal if it holds something binding unsynced:
    /// before anything leaves, and before a commit. The sync makes
    /// everything appended durable, certificates too.
    fn flush_journal(&mut self) -> Result<(), Halt> {
        if self.state.binding_unsynced {
            let journal = &mut self.journal;
            crate::metrics::timed(&self.shared.metrics.vote_sync_seconds, || journal.sync())?;
            self.state.binding_unsynced = false;
            self.state.journal_syncs += 1;
            crash_point(self.state.journal_syncs);
        }
        Ok(())
    }

    /// Admission for a proposal's payload: no attestation already committed
    /// or in an uncommitted ancestor, and each passes admission (signatures
    /// batch-verified, except those already verified into our mempool); the
    /// evidence verifies and records new offences only
    /// ([`evidence::check_proposal`]).
    fn verify_payload(&mut self, block: &Block, ids: &[AttestationId]) -> bool {
        let reader = self.store.reader();
        let mut ancestors = BTreeSet::new();
        let mut ancestor_evidence = BTreeSet::new();
        let mut parent = block.header.parent;
        while let Some((ancestor, carried)) = self.state.blocks.get_with_ids(&parent) {
            ancestors.extend(carried.iter().copied());
            ancestor_evidence.extend(ancestor.evidence.iter().filter_map(Evidence::key));
            parent = ancestor.header.parent;
        }
        if let Err(refusal) = evidence::check_proposal(
            block,
            &self.store.sets().set_at(block.header.height),
            &ancestor_evidence,
            |key| Ok(reader.evidence_recorded(key)?.map(|r| r.height)),
        ) {
            tracing::warn!(%refusal, "proposal carries evidence that may not be recorded");
            return false;
        }
        // Membership at this block's height: the committed history plus
        // the governance transactions of its uncommitted ancestors.
        let height = block.header.height;
        let history = self.history_for(block);
        let mut unverified = Vec::new();
        {
            let pool = self.shared.pool();
            for (envelope, &id) in block.attestations.iter().zip(ids) {
                if let Some(repeat) = self.repeat_of(&reader, &ancestors, &id) {
                    let header = &block.header;
                    tracing::warn!(
                        %id,
                        %repeat,
                        view = header.view,
                        height = header.height,
                        proposer = self.engine.leader(header.view),
                        head = self.shared.head().height,
                        "proposal refused: it repeats an attestation"
                    );
                    self.shared.metrics.consensus_repeat_proposals.inc();
                    return false;
                }
                match pool.pending(&id) {
                    None => unverified.push((id, envelope.clone())),
                    Some(admitted) if !history.entries().is_empty() => {
                        if let Err(rejection) = admission::check_at(admitted, &history, height) {
                            tracing::warn!(
                                %id,
                                height,
                                ?rejection,
                                "proposal refused: the membership at its height refuses an attestation"
                            );
                            return false;
                        }
                    }
                    Some(_) => {}
                }
            }
        }
        if unverified.is_empty() {
            return true;
        }
        let verdicts = self.admission.admit_batch_at(unverified, &history, height);
        let mut pool = self.shared.pool();
        for verdict in verdicts {
            match verdict {
                Ok(admitted) => {
                    let _ = pool.insert(admitted);
                }
                Err(rejection) => {
                    tracing::warn!(
                        ?rejection,
                        "proposal carries an attestation that fails admission"
                    );
                    return false;
                }
            }
        }
        true
    }

    /// The membership history a proposal is judged by: the committed one,
    /// extended with the governance transactions of the proposal's
    /// uncommitted ancestors (which this node knows: it walked them).
    fn history_for(&self, block: &Block) -> Arc<History> {
        let base = self.shared.governance.history();
        let committed = self.shared.governance.committed();
        let mut pending = Vec::new();
        let mut parent = block.header.parent;
        while let Some(ancestor) = self.state.blocks.get(&parent) {
            if ancestor.header.height <= committed {
                break;
            }
            if ancestor
                .attestations
                .iter()
                .any(|e| e.payload_type == governance::PAYLOAD_TYPE)
            {
                pending.push(ancestor);
            }
            parent = ancestor.header.parent;
        }
        if pending.is_empty() {
            return base;
        }
        let mut history = (*base).clone();
        for ancestor in pending.into_iter().rev() {
            crate::governance::record_block(&mut history, ancestor);
        }
        Arc::new(history)
    }

    /// Where a proposal's attestation was seen before, if it was: in an
    /// uncommitted ancestor, in a committed block (and which), or the store
    /// could not tell (fail closed). The three have different causes — a
    /// leader that lost track of its own chain, one that lags behind the
    /// commits, a failing disk — so the refusal names which.
    fn repeat_of(
        &self,
        reader: &StoreReader,
        ancestors: &BTreeSet<AttestationId>,
        id: &AttestationId,
    ) -> Option<Repeat> {
        if ancestors.contains(id) {
            return Some(Repeat::InAncestor);
        }
        match reader.check_uncommitted(id) {
            Ok(()) => None,
            Err(NotFresh::Committed(_)) => Some(Repeat::Committed(
                reader.attestation(id).ok().flatten().map(|a| a.height),
            )),
            Err(NotFresh::Unknown { source, .. }) => Some(Repeat::Unknown(source.to_string())),
        }
    }

    /// Asks one connected peer (round robin) for finalized blocks, at most
    /// one request in flight and one every [`SYNC_INTERVAL_MIN`]: the engine
    /// asks again on every input while it is stuck.
    /// Reads the block log back and fetches what is damaged, off this
    /// thread (`mend`).
    fn start_mend(&mut self) {
        let started = mend::start_round(
            self.runtime.clone(),
            self.net.clone(),
            self.store.sets().clone(),
            self.store.dir().to_owned(),
            self.events_tx.clone(),
        );
        if let Err(error) = started {
            tracing::warn!(%error, "cannot start reading the block log back");
            self.mend.finished(false, Instant::now());
        }
    }

    /// Swaps the fetched blocks into the log; nothing is appended meanwhile
    /// (this thread is the one that appends). A failure after the swap
    /// began leaves the log's files in an unknown state: the node stops.
    fn finish_mend(&mut self, round: mend::Round) -> Result<(), Halt> {
        let now = Instant::now();
        let fetched = match round {
            mend::Round::Intact => {
                tracing::debug!(height = self.store.height(), "block log read back intact");
                self.mend.finished(true, now);
                return Ok(());
            }
            mend::Round::Failed(error) => {
                tracing::error!(%error, retry_secs = mend::RETRY_AFTER.as_secs(), "block log damaged and not mended yet");
                self.mend.finished(false, now);
                return Ok(());
            }
            mend::Round::Fetched(fetched) => fetched,
        };
        match crate::ops::repair::mend_open(&mut self.store, fetched) {
            Ok(report) => {
                for (height, peer) in &report.repaired {
                    tracing::warn!(height, peer, damaged_log = ?report.damaged_log, "block log mended from a validator");
                }
                self.shared
                    .metrics
                    .blocks_mended
                    .inc_by(report.repaired.len() as u64);
                self.mend.finished(true, now);
                Ok(())
            }
            Err(crate::ops::repair::RepairError::Io { path, source }) => {
                Err(Halt::Store(crate::store::StoreError::Io { path, source }))
            }
            Err(crate::ops::repair::RepairError::Reopen(error)) => Err(Halt::Store(error)),
            Err(error) => {
                tracing::error!(%error, retry_secs = mend::RETRY_AFTER.as_secs(), "block log not mended this round");
                self.mend.finished(false, now);
                Ok(())
            }
        }
    }

    fn start_sync(&mut self, height: u64) {
        if self.state.syncing
            || self
                .state
                .last_sync
                .is_some_and(|t| t.elapsed() < SYNC_INTERVAL_MIN)
        {
            return;
        }
        self.state.last_sync = Some(Instant::now());
        let peers = self.net.connected();
        if peers.is_empty() {
            return;
        }
        let peer = peers[self.state.next_sync_peer % peers.len()];
        self.state.next_sync_peer += 1;
        self.state.syncing = true;
        let request = codec::to_bytes(&SyncRequest {
            from_height: height,
            max_blocks: SYNC_BLOCKS_MAX,
        });
        let answer = self.net.request_sync(peer, request);
        let tx = self.events_tx.clone();
        tracing::info!(peer, height, "block sync requested");
        self.runtime.spawn(async move {
            let answer = match answer.await {
                Ok(result) => result,
                Err(_) => Err(NetError::Closed),
            };
            let _ = tx.try_send(Event::Synced { from: peer, answer });
        });
    }
}

/// Why a proposal's attestation counts as a repeat ([`BftActor::repeat_of`]).
#[derive(Debug)]
enum Repeat {
    InAncestor,
    Committed(Option<u64>),
    Unknown(String),
}

impl std::fmt::Display for Repeat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Repeat::InAncestor => f.write_str("in an uncommitted ancestor"),
            Repeat::Committed(Some(height)) => write!(f, "committed at height {height}"),
            Repeat::Committed(None) => f.write_str("committed"),
            Repeat::Unknown(error) => write!(f, "the store cannot tell ({error})"),
        }
    }
}
