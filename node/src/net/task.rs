//! The swarm task: the only code that touches the `Swarm`. One loop over
//! local commands, finished sync replies, the re-dial timer and swarm events.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use libp2p::gossipsub::{self, MessageAcceptance, PublishError};
use libp2p::identity::PeerId;
use libp2p::multiaddr::Multiaddr;
use libp2p::ping;
use libp2p::request_response::{self, OutboundRequestId, ResponseChannel};
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::swarm::{DialError, ListenError, SwarmEvent};
use libp2p::{Swarm, allow_block_list, identify};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::{Instant, MissedTickBehavior};

use super::behaviour::{Behaviour, BehaviourEvent};
use super::codec;
use super::config::NetConfig;
use super::link::{Kind, Link, Record, Writer};
use super::{Command, GossipId, NetError, NetEvent, Shared, Via, gossip};

type SyncReply = (
    Result<Result<Vec<u8>, oneshot::error::RecvError>, tokio::time::error::Elapsed>,
    ResponseChannel<codec::Response>,
    u16,
);
/// Distinct refused peers remembered so each is reported once.
const REJECTED_REMEMBERED_MAX: usize = 256;
/// Commands taken from the queue in one turn of the loop: the gossip among
/// them is packed together.
const COMMANDS_PER_TURN: usize = 256;
/// Where the answer to one of our sync requests goes.
type SyncWaiter = oneshot::Sender<Result<Vec<u8>, NetError>>;

/// One peer's connection state.
struct Slot {
    id: PeerId,
    addr: Option<Multiaddr>,
    /// Allowed to connect (see [`super::Peer::admitted`]).
    admitted: bool,
    /// Counted by the peer gauges ([`super::Peer::validator`]).
    validator: bool,
    /// Frames for this peer's consensus stream (`link.rs`), once one was sent.
    link: Option<Link>,
    /// Consensus frames sent by request-response (to a peer of an earlier
    /// version) and not yet acknowledged or failed.
    in_flight: u32,
    /// The next re-dial delay.
    backoff: Duration,
    redial_at: Option<Instant>,
}

pub(super) struct Task {
    swarm: Swarm<Behaviour>,
    /// Opens the peers' consensus streams.
    control: libp2p_stream::Control,
    /// Our own command queue, for writers that hand frames back.
    commands_tx: mpsc::WeakSender<Command>,
    config: NetConfig,
    slots: Vec<Slot>,
    by_id: HashMap<PeerId, u16>,
    topic: gossipsub::TopicHash,
    commands: mpsc::Receiver<Command>,
    listen_tx: watch::Sender<Vec<Multiaddr>>,
    shared: Arc<Shared>,
    /// Our consensus frames in flight -> the peer they went to.
    frames_out: HashMap<OutboundRequestId, u16>,
    /// Our sync requests in flight.
    sync_out: HashMap<OutboundRequestId, (u16, SyncWaiter)>,
    /// Inbound sync requests waiting for the node's answer.
    sync_in: FuturesUnordered<BoxFuture<'static, SyncReply>>,
    /// Refused peers already reported, at most [`REJECTED_REMEMBERED_MAX`].
    rejected: HashSet<String>,
    /// Gossip that admitted peers missed, sent when they connect.
    backlog: gossip::Backlog,
    /// Gossip items held back by the pace ([`gossip::Pace`]).
    held: Vec<Vec<u8>>,
    pace: gossip::Pace,
}

impl Task {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        swarm: Swarm<Behaviour>,
        control: libp2p_stream::Control,
        config: NetConfig,
        ids: Vec<PeerId>,
        commands_tx: mpsc::WeakSender<Command>,
        commands: mpsc::Receiver<Command>,
        listen_tx: watch::Sender<Vec<Multiaddr>>,
        shared: Arc<Shared>,
    ) -> Self {
        assert_eq!(ids.len(), config.peers.len());
        let now = Instant::now();
        let slots: Vec<Slot> = config
            .peers
            .iter()
            .zip(&ids)
            .map(|(peer, id)| {
                let dial = peer.index != config.me && peer.admitted && peer.addr.is_some();
                Slot {
                    id: *id,
                    addr: peer.addr.clone(),
                    admitted: peer.admitted && peer.index != config.me,
                    validator: peer.validator,
                    link: None,
                    in_flight: 0,
                    backoff: config.redial_backoff_min,
                    redial_at: dial.then_some(now),
                }
            })
            .collect();
        let by_id = config
            .peers
            .iter()
            .zip(&ids)
            .filter(|(peer, _)| peer.index != config.me)
            .map(|(peer, id)| (*id, peer.index))
            .collect();
        *shared
            .admitted
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = slots
            .iter()
            .zip(0u16..)
            .filter(|(slot, _)| slot.admitted)
            .map(|(slot, index)| (slot.id, index))
            .collect();
        let topic = gossipsub::IdentTopic::new(config.gossip_topic()).hash();
        Task {
            swarm,
            control,
            commands_tx,
            config,
            slots,
            by_id,
            topic,
            commands,
            listen_tx,
            shared,
            frames_out: HashMap::new(),
            sync_out: HashMap::new(),
            sync_in: FuturesUnordered::new(),
            rejected: HashSet::new(),
            backlog: gossip::Backlog::default(),
            held: Vec::new(),
            pace: gossip::Pace::default(),
        }
    }

    pub(super) async fn run(mut self) {
        let tick = (self.config.redial_backoff_min / 2)
            .clamp(Duration::from_millis(10), Duration::from_millis(500));
        let mut redial = tokio::time::interval(tick);
        redial.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut commands = Vec::with_capacity(COMMANDS_PER_TURN);
        let done = loop {
            // Unbiased: a node that keeps the command queue full must not
            // starve the swarm (which does the actual sending), nor the
            // reverse.
            tokio::select! {
                received = self.commands.recv_many(&mut commands, COMMANDS_PER_TURN) => {
                    if received == 0 {
                        break None;
                    }
                    if let Some(done) = self.on_commands(&mut commands) {
                        break Some(done);
                    }
                }
                Some(reply) = self.sync_in.next(), if !self.sync_in.is_empty() => {
                    self.on_sync_reply(reply);
                }
                _ = redial.tick() => self.redial_due(Instant::now()),
                _ = tokio::time::sleep_until(self.pace.due()), if !self.held.is_empty() => {
                    self.publish_held();
                }
                event = self.swarm.select_next_some() => self.on_swarm_event(event),
            }
        };
        tracing::info!(me = self.config.me, "network stopping");
        self.shared.connected.store(0, Relaxed);
        self.shared.metrics.connected_peers.set(0);
        // Dropping the swarm closes the listener and every connection.
        drop(self.swarm);
        if let Some(done) = done {
            let _ = done.send(());
        }
    }

    // ---- commands -------------------------------------------------------

    /// Runs the commands received in one turn, in order. Gossip items are
    /// held and leave packed ([`gossip::pack`]) when the pace allows
    /// ([`gossip::Pace`]), or before the next consensus frame or shutdown.
    /// `Some` when one of them was a shutdown (the rest are dropped).
    fn on_commands(&mut self, commands: &mut Vec<Command>) -> Option<oneshot::Sender<()>> {
        for command in commands.drain(..) {
            match command {
                Command::Gossip { bytes } => self.held.push(bytes),
                Command::Shutdown { done } => {
                    self.publish_held();
                    return Some(done);
                }
                command @ (Command::Send { .. } | Command::Broadcast { .. }) => {
                    // A proposal names attestations by id: their bodies
                    // leave first, so peers seldom have to fetch them.
                    self.publish_held();
                    self.on_command(command);
                }
                command => self.on_command(command),
            }
        }
        if !self.held.is_empty() && self.pace.due() <= Instant::now() {
            self.publish_held();
        }
        None
    }

    /// Publishes the held gossip items, packed.
    fn publish_held(&mut self) {
        let items = std::mem::take(&mut self.held);
        if items.is_empty() {
            return;
        }
        self.pace.published(Instant::now());
        self.shared
            .metrics
            .gossip_items_out
            .inc_by(items.len() as u64);
        for message in gossip::pack(items, self.config.gossip_bytes_max) {
            self.publish(message);
        }
    }

    fn on_command(&mut self, command: Command) {
        match command {
            Command::Send { to, frame } => self.send_frame(to, frame),
            Command::Broadcast { frame } => {
                for to in 0..self.slots.len() as u16 {
                    if self.slots[usize::from(to)].admitted {
                        self.send_frame(to, Arc::clone(&frame));
                    }
                }
            }
            Command::ReportGossip {
                message,
                propagation_source,
                accept,
            } => {
                let acceptance = if accept {
                    MessageAcceptance::Accept
                } else {
                    MessageAcceptance::Reject
                };
                self.report(&message, &propagation_source, acceptance);
            }
            Command::Unlinked { to, record } => match record.kind {
                // The peer is marked as speaking request-response now.
                Kind::Frame => self.send_frame(to, record.bytes),
                Kind::Gossip => {
                    let bytes = codec::into_owned(record.bytes);
                    self.publish_gossipsub(bytes);
                }
            },
            Command::Sync { to, request, reply } => self.send_sync(to, request, reply),
            Command::SetPeers { peers } => self.set_peers(peers),
            Command::Gossip { .. } | Command::Shutdown { .. } => {
                unreachable!("handled by on_commands")
            }
        }
    }

    /// Sends a packed gossip message to every connected peer, on its
    /// stream ([`link`](super::link)), and by gossipsub as well while a
    /// connected peer speaks only that (its copy reaches the others too;
    /// they drop the duplicates). Admitted peers that are not connected get
    /// it when they connect, if that is soon ([`gossip::Backlog`]).
    fn publish(&mut self, bytes: Vec<u8>) {
        let message = Arc::new(bytes);
        let (mut missed, mut legacy) = (0u64, false);
        for to in 0..self.slots.len() as u16 {
            if to == self.config.me || !self.slots[usize::from(to)].admitted {
                continue;
            }
            if !self.ready(to) {
                missed |= 1u64 << to;
            } else if self.is_legacy(to) {
                legacy = true;
            } else {
                self.gossip_to(to, Arc::clone(&message));
            }
        }
        self.shared.metrics.gossip_out.inc();
        let dropped = self
            .backlog
            .keep(Instant::now(), Arc::clone(&message), missed);
        self.shared.metrics.gossip_failed.inc_by(dropped as u64);
        if legacy {
            let bytes = codec::into_owned(message);
            self.publish_gossipsub(bytes);
        }
    }

    /// Queues a gossip message on `to`'s stream.
    fn gossip_to(&mut self, to: u16, message: codec::Request) {
        let record = Record {
            kind: Kind::Gossip,
            bytes: message,
        };
        if self.link(to).try_send(record).is_err() {
            self.shared.metrics.gossip_dropped_slow_peer.inc();
        }
    }

    /// Publishes on the gossipsub topic, for peers of an earlier version.
    fn publish_gossipsub(&mut self, bytes: Vec<u8>) {
        match self
            .swarm
            .behaviour_mut()
            .gossipsub
            .publish(self.topic.clone(), bytes)
        {
            Ok(_) => {}
            Err(e) => {
                self.shared.metrics.gossip_failed.inc();
                match e {
                    PublishError::Duplicate => tracing::trace!("gossip: duplicate"),
                    e => tracing::debug!(error = %e, "gossip publish failed"),
                }
            }
        }
    }

    /// Peer `index` connected: send it the gossip it missed.
    fn send_backlog(&mut self, index: u16) {
        let owed = self.backlog.take_for(Instant::now(), index);
        if !owed.is_empty() {
            tracing::debug!(
                peer = index,
                messages = owed.len(),
                "sending gossip it missed while not connected"
            );
        }
        for message in owed {
            if self.is_legacy(index) {
                let bytes = codec::into_owned(message);
                self.publish_gossipsub(bytes);
            } else {
                self.gossip_to(index, message);
            }
        }
    }

    fn send_frame(&mut self, to: u16, frame: codec::Request) {
        assert!(usize::from(to) < self.slots.len() && to != self.config.me);
        if !self.ready(to) {
            self.shared.metrics.frames_dropped_peer.inc();
            tracing::debug!(to, "frame dropped: peer not connected");
            return;
        }
        if self.is_legacy(to) {
            return self.request_frame(to, frame);
        }
        let record = Record {
            kind: Kind::Frame,
            bytes: frame,
        };
        match self.link(to).try_send(record) {
            Ok(()) => {
                self.shared.metrics.frames_out.inc();
            }
            Err(_) => {
                self.shared.metrics.frames_dropped_peer.inc();
                tracing::debug!(to, "frame dropped: the peer's stream is behind");
            }
        }
    }

    /// Whether `to` is another admitted peer with a connection.
    fn ready(&self, to: u16) -> bool {
        let slot = &self.slots[usize::from(to)];
        to != self.config.me && slot.admitted && self.swarm.is_connected(&slot.id)
    }

    /// Whether `to` speaks only request-response and gossipsub.
    fn is_legacy(&self, to: u16) -> bool {
        self.shared.legacy.load(Relaxed) & (1u64 << to) != 0
    }

    /// The link to `to`, its writer started on first use.
    fn link(&mut self, to: u16) -> &Link {
        let index = usize::from(to);
        let peer = self.slots[index].id;
        self.slots[index].link.get_or_insert_with(|| {
            Writer {
                to,
                peer,
                control: self.control.clone(),
                timeout: self.config.request_timeout,
                caps: self.config.link_caps(),
                in_flight_max: self.config.frames_in_flight_max.into(),
                shared: Arc::clone(&self.shared),
                commands: self.commands_tx.clone(),
            }
            .spawn(self.config.frames_in_flight_max as usize)
        })
    }

    /// Sends a frame by request-response, to a peer of an earlier version.
    fn request_frame(&mut self, to: u16, frame: codec::Request) {
        let slot = &mut self.slots[usize::from(to)];
        if slot.in_flight >= self.config.frames_in_flight_max {
            self.shared.metrics.frames_dropped_peer.inc();
            tracing::debug!(
                to,
                in_flight = slot.in_flight,
                "frame dropped: too many in flight"
            );
            return;
        }
        slot.in_flight += 1;
        let id = self
            .swarm
            .behaviour_mut()
            .consensus
            .send_request(&slot.id, frame);
        self.frames_out.insert(id, to);
        self.shared.metrics.frames_out.inc();
    }

    fn send_sync(&mut self, to: u16, request: codec::Request, reply: SyncWaiter) {
        let index = usize::from(to);
        assert!(index < self.slots.len() && to != self.config.me);
        let peer = self.slots[index].id;
        if !self.slots[index].admitted || !self.swarm.is_connected(&peer) {
            let _ = reply.send(Err(NetError::NotConnected(to)));
            return;
        }
        if self.sync_out.len() >= self.config.sync_in_flight_max as usize {
            let _ = reply.send(Err(NetError::Busy));
            return;
        }
        let id = self.swarm.behaviour_mut().sync.send_request(&peer, request);
        self.sync_out.insert(id, (to, reply));
        self.shared.metrics.sync_requests_out.inc();
    }

    fn on_sync_reply(&mut self, (answer, channel, from): SyncReply) {
        let bytes = match answer {
            Ok(Ok(bytes)) => bytes,
            Ok(Err(_)) => {
                tracing::debug!(from, "sync request dropped by the node");
                return;
            }
            Err(_) => {
                tracing::debug!(from, "sync request not answered in time");
                return;
            }
        };
        let max = self.config.sync_response_bytes_max;
        if bytes.len() > max as usize {
            self.shared.metrics.oversized_frames.inc();
            tracing::warn!(
                from,
                len = bytes.len(),
                max,
                "sync response over the cap, not sent"
            );
            return;
        }
        if self
            .swarm
            .behaviour_mut()
            .sync
            .send_response(channel, bytes)
            .is_err()
        {
            tracing::debug!(from, "sync requester went away");
        }
    }

    // ---- connections ----------------------------------------------------

    /// Takes a new peer table (checked by the handle: it extends ours):
    /// adds the new slots, updates addresses, allows and dials newly
    /// admitted peers, refuses and disconnects those no longer admitted,
    /// and sizes the connection limits to the admitted count.
    fn set_peers(&mut self, peers: Vec<super::Peer>) {
        let now = Instant::now();
        for peer in peers {
            let index = usize::from(peer.index);
            if peer.index == self.config.me {
                continue;
            }
            if index >= self.slots.len() {
                let Some(id) = super::config::peer_id_of(&peer.key) else {
                    continue; // validated by the handle
                };
                self.by_id.insert(id, peer.index);
                self.slots.push(Slot {
                    id,
                    addr: None,
                    admitted: false,
                    validator: false,
                    link: None,
                    in_flight: 0,
                    backoff: self.config.redial_backoff_min,
                    redial_at: None,
                });
            }
            let slot = &mut self.slots[index];
            if peer.addr.is_some() {
                slot.addr = peer.addr;
            }
            slot.validator = peer.validator;
            if slot.admitted == peer.admitted {
                continue;
            }
            slot.admitted = peer.admitted;
            let mut admitted = self
                .shared
                .admitted
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let allow = &mut self.swarm.behaviour_mut().allow;
            if peer.admitted {
                admitted.insert(slot.id, peer.index);
                allow.allow_peer(slot.id);
                tracing::info!(peer = peer.index, key = %peer.key, "peer admitted");
                slot.backoff = self.config.redial_backoff_min;
                slot.redial_at = slot.addr.is_some().then_some(now);
            } else {
                // Closes its connections; `ConnectionClosed` clears its bit.
                admitted.remove(&slot.id);
                slot.link = None;
                allow.disallow_peer(slot.id);
                tracing::info!(peer = peer.index, key = %peer.key, "peer no longer admitted: disconnected");
                slot.redial_at = None;
            }
        }
        let admitted = self.slots.iter().filter(|s| s.admitted).count();
        *self.swarm.behaviour_mut().limits.limits_mut() = super::behaviour::limits_for(admitted);
        self.count_peers();
    }

    /// The peer gauges: admitted validators (of the epoch in force or the
    /// next, ourselves excluded), and how many of them are connected.
    fn count_peers(&self) {
        let mask = self.shared.connected.load(Relaxed);
        let (mut validators, mut connected) = (0i64, 0i64);
        for (index, slot) in self.slots.iter().enumerate() {
            if slot.admitted && slot.validator {
                validators += 1;
                connected += i64::from(mask & (1u64 << index) != 0);
            }
        }
        self.shared.metrics.validator_peers.set(validators);
        self.shared.metrics.connected_peers.set(connected);
    }

    fn redial_due(&mut self, now: Instant) {
        for index in 0..self.slots.len() {
            if self.slots[index].redial_at.is_some_and(|at| at <= now) {
                self.slots[index].redial_at = None;
                self.dial(index);
            }
        }
    }

    fn dial(&mut self, index: usize) {
        let slot = &self.slots[index];
        let Some(addr) = slot.addr.clone() else {
            return;
        };
        if !slot.admitted {
            return;
        }
        if self.swarm.is_connected(&slot.id) {
            return;
        }
        self.shared.metrics.dials.inc();
        let opts = DialOpts::peer_id(slot.id)
            .condition(PeerCondition::DisconnectedAndNotDialing)
            .addresses(vec![addr])
            .build();
        match self.swarm.dial(opts) {
            Ok(()) => {}
            // A dial is already under way; its outcome re-schedules.
            Err(DialError::DialPeerConditionFalse(_)) => {}
            Err(e) => {
                tracing::debug!(peer = index, error = %e, "dial refused");
                self.schedule_redial(index);
            }
        }
    }

    /// Re-dials `index` after its current backoff, then doubles the backoff.
    fn schedule_redial(&mut self, index: usize) {
        let max = self.config.redial_backoff_max;
        let slot = &mut self.slots[index];
        if !slot.admitted || slot.addr.is_none() || slot.redial_at.is_some() {
            return;
        }
        slot.redial_at = Some(Instant::now() + slot.backoff);
        slot.backoff = (slot.backoff * 2).min(max);
    }

    fn set_connected(&self, index: u16, up: bool) {
        let bit = 1u64 << index;
        if up {
            self.shared.connected.fetch_or(bit, Relaxed);
        } else {
            self.shared.connected.fetch_and(!bit, Relaxed);
        }
        self.count_peers();
    }

    fn on_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::Behaviour(event) => self.on_behaviour_event(event),
            SwarmEvent::ConnectionEstablished {
                peer_id,
                num_established,
                endpoint,
                ..
            } => {
                let admitted = self
                    .by_id
                    .get(&peer_id)
                    .copied()
                    .filter(|i| self.slots[usize::from(*i)].admitted);
                let Some(index) = admitted else {
                    // The allow list makes this unreachable; refuse anyway.
                    self.shared.metrics.unknown_peer_messages.inc();
                    tracing::warn!(%peer_id, "connection from a non-validator got past the allow list");
                    let _ = self.swarm.disconnect_peer_id(peer_id);
                    return;
                };
                // The backoff is reset only once identify shows the remote
                // kept the connection and speaks our protocol: a remote
                // that accepts and then drops us is re-dialled ever slower.
                self.slots[usize::from(index)].redial_at = None;
                if num_established.get() == 1 {
                    tracing::info!(peer = index, addr = %endpoint.get_remote_address(), "validator connected");
                    // It may have been upgraded: try its stream again.
                    if self.config.streams {
                        self.shared.legacy.fetch_and(!(1u64 << index), Relaxed);
                    }
                    self.set_connected(index, true);
                    self.emit(NetEvent::PeerConnected(index));
                    self.send_backlog(index);
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established,
                cause,
                ..
            } => {
                let Some(&index) = self.by_id.get(&peer_id) else {
                    return;
                };
                if num_established == 0 {
                    tracing::info!(peer = index, cause = ?cause, "validator disconnected");
                    self.set_connected(index, false);
                    self.emit(NetEvent::PeerDisconnected(index));
                    self.schedule_redial(usize::from(index));
                }
            }
            SwarmEvent::OutgoingConnectionError { peer_id, error, .. } => {
                if let Some(&index) = peer_id.as_ref().and_then(|p| self.by_id.get(p)) {
                    tracing::debug!(peer = index, error = %error, "dial failed");
                    self.schedule_redial(usize::from(index));
                }
            }
            SwarmEvent::IncomingConnectionError {
                error,
                peer_id,
                send_back_addr,
                ..
            } => match error {
                ListenError::Denied { cause }
                    if cause
                        .downcast_ref::<allow_block_list::NotAllowed>()
                        .is_some() =>
                {
                    let peer =
                        peer_id.map_or_else(|| send_back_addr.to_string(), |p| p.to_string());
                    self.reject(peer, cause.to_string());
                }
                ListenError::Denied { cause } => {
                    tracing::debug!(addr = %send_back_addr, %cause, "inbound connection over a limit");
                }
                error => {
                    tracing::debug!(addr = %send_back_addr, error = %error, "inbound handshake failed")
                }
            },
            SwarmEvent::NewListenAddr { address, .. } => {
                tracing::info!(%address, "listening");
                self.listen_tx.send_modify(|addrs| {
                    if addrs.len() < 16 {
                        addrs.push(address);
                    }
                });
            }
            SwarmEvent::ExpiredListenAddr { address, .. } => {
                self.listen_tx
                    .send_modify(|addrs| addrs.retain(|a| *a != address));
            }
            SwarmEvent::ListenerClosed { reason, .. } => {
                tracing::warn!(?reason, "listener closed");
            }
            SwarmEvent::ListenerError { error, .. } => tracing::warn!(%error, "listener error"),
            _ => {}
        }
    }

    /// Counts every refusal; logs and reports each refused peer once (a
    /// non-member that keeps dialling must not flood the log or the node).
    fn reject(&mut self, peer: String, reason: String) {
        self.shared.metrics.rejected_peers.inc();
        if self.rejected.len() >= REJECTED_REMEMBERED_MAX {
            self.rejected.clear();
        }
        if !self.rejected.insert(peer.clone()) {
            tracing::trace!(%peer, "refused again");
            return;
        }
        tracing::warn!(%peer, %reason, "refused a peer that is not a validator of this chain");
        self.emit(NetEvent::Rejected { peer, reason });
    }

    // ---- behaviours -----------------------------------------------------

    fn on_behaviour_event(&mut self, event: BehaviourEvent) {
        match event {
            BehaviourEvent::Allow(never) | BehaviourEvent::Limits(never) => match never {},
            BehaviourEvent::Streams(()) => {}
            BehaviourEvent::Consensus(event) => self.on_consensus_event(event),
            BehaviourEvent::Sync(event) => self.on_sync_event(event),
            BehaviourEvent::Gossipsub(event) => self.on_gossip_event(event),
            BehaviourEvent::Identify(event) => self.on_identify_event(event),
            BehaviourEvent::Ping(event) => self.on_ping_event(event),
        }
    }

    fn on_consensus_event(
        &mut self,
        event: request_response::Event<codec::Request, codec::Response>,
    ) {
        use request_response::{Event, Message};
        match event {
            Event::Message {
                peer,
                message:
                    Message::Request {
                        request, channel, ..
                    },
                ..
            } => {
                let Some(from) = self.validator(&peer, "consensus frame") else {
                    return; // Dropping `channel` refuses the request.
                };
                // Fire-and-forget: acknowledge on receipt.
                let _ = self
                    .swarm
                    .behaviour_mut()
                    .consensus
                    .send_response(channel, Vec::new());
                self.shared.metrics.frames_in.inc();
                let bytes = codec::into_owned(request);
                self.emit(NetEvent::Frame { from, bytes });
            }
            Event::Message {
                message: Message::Response { request_id, .. },
                ..
            } => self.frame_settled(request_id, true),
            Event::OutboundFailure {
                request_id, error, ..
            } => {
                tracing::debug!(%error, "consensus frame failed");
                self.frame_settled(request_id, false);
            }
            Event::InboundFailure { peer, error, .. } => {
                tracing::debug!(%peer, %error, "inbound consensus frame failed");
            }
            Event::ResponseSent { .. } => {}
        }
    }

    fn frame_settled(&mut self, request_id: OutboundRequestId, acked: bool) {
        let Some(to) = self.frames_out.remove(&request_id) else {
            return;
        };
        let slot = &mut self.slots[usize::from(to)];
        assert!(slot.in_flight > 0);
        slot.in_flight -= 1;
        if !acked {
            self.shared.metrics.frames_failed.inc();
        }
    }

    fn on_sync_event(&mut self, event: request_response::Event<codec::Request, codec::Response>) {
        use request_response::{Event, Message};
        match event {
            Event::Message {
                peer,
                message:
                    Message::Request {
                        request, channel, ..
                    },
                ..
            } => {
                let Some(from) = self.validator(&peer, "sync request") else {
                    return;
                };
                self.shared.metrics.sync_requests_in.inc();
                if self.sync_in.len() >= self.config.sync_in_flight_max as usize {
                    tracing::debug!(from, "sync request refused: too many in flight");
                    return;
                }
                let (reply, answer) = oneshot::channel();
                let bytes = codec::into_owned(request);
                if !self.emit(NetEvent::SyncRequest { from, bytes, reply }) {
                    return;
                }
                let timeout = self.config.sync_timeout;
                self.sync_in.push(Box::pin(async move {
                    (tokio::time::timeout(timeout, answer).await, channel, from)
                }));
            }
            Event::Message {
                message:
                    Message::Response {
                        request_id,
                        response,
                    },
                ..
            } => {
                if let Some((_, reply)) = self.sync_out.remove(&request_id) {
                    let _ = reply.send(Ok(response));
                }
            }
            Event::OutboundFailure {
                request_id, error, ..
            } => {
                if let Some((peer, reply)) = self.sync_out.remove(&request_id) {
                    let _ = reply.send(Err(NetError::Request {
                        peer,
                        reason: error.to_string(),
                    }));
                }
            }
            Event::InboundFailure { peer, error, .. } => {
                tracing::debug!(%peer, %error, "inbound sync request failed");
            }
            Event::ResponseSent { .. } => {}
        }
    }

    fn on_gossip_event(&mut self, event: gossipsub::Event) {
        let (propagation_source, message_id, message) = match event {
            gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            } => (propagation_source, message_id, message),
            gossipsub::Event::SlowPeer {
                peer_id,
                failed_messages,
            } => {
                // Reported once per heartbeat with counts, never bodies; the
                // log's repeat limit bounds a peer frozen for hours.
                let dropped = failed_messages.priority + failed_messages.non_priority;
                self.shared
                    .metrics
                    .gossip_dropped_slow_peer
                    .inc_by(u64::try_from(dropped).unwrap_or(u64::MAX));
                tracing::warn!(
                    peer = %peer_id,
                    dropped,
                    "a slow or frozen peer is not reading gossip; messages to it were dropped"
                );
                return;
            }
            _ => return,
        };
        let forwarder = self.validator(&propagation_source, "gossip forwarder");
        let author = match message.source {
            Some(source) => self.validator(&source, "gossip author"),
            None => None,
        };
        let (Some(_), Some(from)) = (forwarder, author) else {
            self.report(&message_id, &propagation_source, MessageAcceptance::Reject);
            return;
        };
        let items = match gossip::unpack(&message.data, self.config.gossip_bytes_max) {
            Ok(items) => items,
            Err(error) => {
                self.shared.metrics.malformed_gossip.inc();
                tracing::debug!(from, %error, "refusing a malformed gossip message");
                self.report(&message_id, &propagation_source, MessageAcceptance::Reject);
                return;
            }
        };
        self.shared.metrics.gossip_in.inc();
        let id = GossipId(Via::Gossipsub {
            message: message_id.clone(),
            propagation_source,
        });
        let delivered = self.emit(NetEvent::Gossip { from, id, items });
        if !delivered {
            self.report(&message_id, &propagation_source, MessageAcceptance::Ignore);
        }
    }

    /// A connection whose pings fail is closed, so that the peer is
    /// re-dialled (`ConnectionClosed`) instead of waiting out TCP's
    /// retransmission backoff on a path that dropped our packets.
    fn on_ping_event(&mut self, event: ping::Event) {
        let Err(failure) = event.result else {
            return;
        };
        let peer = self.by_id.get(&event.peer).copied();
        self.shared.metrics.ping_failures.inc();
        tracing::info!(?peer, %failure, "closing a connection whose pings fail");
        self.swarm.close_connection(event.connection);
    }

    fn report(
        &mut self,
        message: &gossipsub::MessageId,
        propagation_source: &PeerId,
        acceptance: MessageAcceptance,
    ) {
        self.swarm
            .behaviour_mut()
            .gossipsub
            .report_message_validation_result(message, propagation_source, acceptance);
    }

    fn on_identify_event(&mut self, event: identify::Event) {
        let identify::Event::Received { peer_id, info, .. } = event else {
            return;
        };
        let ours = self.config.protocol_version();
        if info.protocol_version != ours {
            self.reject(
                peer_id.to_string(),
                format!(
                    "protocol version {:?}, ours is {ours:?}",
                    info.protocol_version
                ),
            );
            let _ = self.swarm.disconnect_peer_id(peer_id);
            return;
        }
        if let Some(&index) = self.by_id.get(&peer_id) {
            self.slots[usize::from(index)].backoff = self.config.redial_backoff_min;
        }
    }

    // ---- helpers --------------------------------------------------------

    /// The index of `peer` if it is admitted, or `None` (logged and
    /// counted): defence in depth behind the allow list.
    fn validator(&self, peer: &PeerId, what: &str) -> Option<u16> {
        let index = self
            .by_id
            .get(peer)
            .copied()
            .filter(|i| self.slots[usize::from(*i)].admitted);
        if index.is_none() {
            self.shared.metrics.unknown_peer_messages.inc();
            tracing::warn!(%peer, what, "dropped: sender is not a validator");
        }
        index
    }

    /// Hands an event to the node without waiting; counts it if the queue
    /// is full or gone.
    fn emit(&self, event: NetEvent) -> bool {
        self.shared.emit(event)
    }
}
