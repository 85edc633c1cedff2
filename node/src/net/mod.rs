//! The permissioned validator transport: carries opaque bytes between the
//! admitted node keys over libp2p (the validators in force and the nodes
//! that follow the chain), and nothing from anyone else.
//!
//! # Overview
//!
//! [`Network::start`] spawns one tokio task that owns a libp2p `Swarm`
//! (TCP + Noise + Yamux) and returns a [`NetworkHandle`] (cheap to clone,
//! never blocks) and a bounded receiver of [`NetEvent`]s. The node's
//! consensus actor encodes and decodes its own messages (postcard); this
//! layer never looks inside a frame.
//!
//! | what | how | protocol | cap |
//! |---|---|---|---|
//! | votes, certificates, proposals | [`NetworkHandle::send`] / [`NetworkHandle::broadcast`]: records on one long-lived stream per peer and direction, no acknowledgement ([`link`]) | `/lotline/consensus/2` | [`NetConfig::frame_bytes_max`] |
//! | mempool attestations | [`NetworkHandle::gossip`] / [`NetEvent::Gossip`]: the items queued at once packed into one message ([`gossip`]), sent to each connected peer on the same stream | `/lotline/consensus/2` | [`NetConfig::gossip_bytes_max`] |
//! | block sync | [`NetworkHandle::request_sync`] / [`NetEvent::SyncRequest`] | `/lotline/sync/1` | [`NetConfig::sync_request_bytes_max`], [`NetConfig::sync_response_bytes_max`] |
//! | the same, with a peer of an earlier version | frames by request-response (the response is an empty ack), gossip by gossipsub | `/lotline/consensus/1`, topic `lotline/<chain id hex>/mempool/2` | the same |
//!
//! Everything is point-to-point to every other admitted peer: with n <= 7
//! a full mesh of direct streams is faster and simpler than forwarding
//! (protocol.md, "Networking over libp2p"). A validator's gossip and its
//! proposals leave on one stream, in order, so the bodies a proposal names
//! by id arrive before it.

//! # Permissioning
//!
//! A peer's libp2p peer id is derived from its node key; the node's own
//! libp2p identity is its node signing key. Peers are named by their index
//! in the node's peer table ([`Peer`]), which the node extends and whose
//! admitted keys it changes as the validator set does
//! ([`NetworkHandle::set_peers`], `consensus::epoch`). The first behaviour
//! of the swarm is an allow list of the admitted peer ids: a remote that
//! completes the Noise handshake with any other key is disconnected at once
//! (reported as [`NetEvent::Rejected`] and counted), before any protocol
//! handler exists for it; a key no longer admitted is disconnected. As defence in depth, the sender of every request and the author
//! and forwarder of every gossip message are looked up in the validator table
//! again; anything unknown is dropped, logged and counted, never delivered.
//! A peer whose identify protocol version names another chain is
//! disconnected too. Connection limits cap connections per peer (2), in total,
//! and handshakes in progress.
//!
//! The allow list is admission, not authorisation: consensus messages are
//! also signed with the validator key and checked by the engine.
//!
//! # Delivery semantics
//!
//! - `send`/`broadcast`/`gossip` are fire-and-forget. A frame is dropped
//!   (and counted) when the command queue is full, when the peer is not
//!   connected, or when [`NetConfig::frames_in_flight_max`] records already
//!   wait for its stream. Consensus retransmits; the actor is never blocked.
//! - A stream that breaks (the peer reset it after refusing a record, the
//!   connection closed, a write took [`NetConfig::request_timeout`]) fails
//!   what was being written, and the next record opens a fresh one.
//! - Gossip that admitted peers missed because they were not connected is
//!   sent to each when it connects, if that is within a few seconds
//!   ([`gossip::Backlog`]); a voter fetches what it still misses from the
//!   proposer.
//! - Inbound frames, gossip and sync requests are dropped (and counted) when
//!   the event queue is full. [`NetEvent::PeerConnected`] and
//!   [`NetEvent::PeerDisconnected`] can be dropped the same way:
//!   [`NetworkHandle::connected`] is the truth.
//! - Gossip is validated by the node: every [`NetEvent::Gossip`] carries a
//!   [`GossipId`] that the node passes back through
//!   [`NetworkHandle::report_gossip`]. For gossip from a peer of an earlier
//!   version (gossipsub) accept forwards it to the mesh and reject drops it;
//!   unreported messages are not forwarded and age out of gossipsub's cache
//!   within a few heartbeats. Gossip on the stream is never forwarded.
//! - A [`NetEvent::SyncRequest`] is answered through its oneshot within
//!   [`NetConfig::sync_timeout`]; a dropped sender, a late answer or one over
//!   the response cap makes the requester's request fail.
//!
//! # Connections
//!
//! Every peer with a known address is dialled at start and re-dialled after
//! its last connection closes or a dial fails, with a delay that doubles from
//! [`NetConfig::redial_backoff_min`] to [`NetConfig::redial_backoff_max`]
//! and resets once connected. The idle timeout is long
//! ([`NetConfig::idle_timeout`]) because libp2p's 10 s default would churn a
//! quiet consortium. Peers without an address are expected to dial us.
//! A connection whose pings fail is closed and so re-dialled (libp2p
//! reports the second failure in a row, after [`NetConfig::ping_timeout`]
//! and a stream negotiation that gives up after 10 s: about 20 s with the
//! defaults): a partition or a frozen peer drops packets
//! without closing anything, and TCP would otherwise keep the dead
//! connection for minutes and resume on its own backoff long after the
//! network healed (seen in the chaos campaign: 17 s of silence after a
//! heal).
//!
//! # Bounds
//!
//! Every queue is bounded: commands and events ([`NetConfig::queue_len`]),
//! records waiting per peer, sync requests in flight each way, streams per
//! connection, consensus streams per peer
//! ([`link::INBOUND_STREAMS_PER_PEER_MAX`]), connections, pending
//! handshakes, frame and gossip sizes (the length prefix and the record's
//! kind are checked before anything else is read; see [`codec`] and
//! [`link`]), the gossip kept for peers that were away
//! ([`gossip::BACKLOG_BYTES_MAX`]), and gossipsub's messages
//! (`max_transmit_size`; subscriptions are limited to our one topic).
//!
//! # Files
//! - [`config`]: [`NetConfig`] (the peer table at start, from the genesis
//!   validators or the node's `consensus::epoch`) and its limits;
//! - `behaviour.rs`: the composed libp2p behaviour and swarm;
//! - [`link`]: the consensus stream's writers and readers, and its records;
//! - [`codec`]: length-prefixed frames with caps;
//! - [`metrics`]: counters rendered for `/metrics`;
//! - `task.rs`: the swarm task (the only place that touches the `Swarm`;
//!   the stream tasks of [`link`] hold streams, never the swarm).

mod behaviour;
pub mod codec;
pub mod config;
pub mod gossip;
pub mod link;
pub mod metrics;
mod task;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError};

use libp2p::gossipsub::MessageId;
use libp2p::identity::{self, PeerId};
use libp2p::multiaddr::Multiaddr;
use lotline_core::{PublicKey, SigningKey};
use tokio::sync::{mpsc, oneshot, watch};

pub use config::{ConfigError, NetConfig, Peer};
pub use metrics::NetMetrics;

/// What the network tells the node.
#[derive(Debug)]
pub enum NetEvent {
    /// A consensus frame from validator `from` (already acknowledged).
    Frame { from: u16, bytes: Vec<u8> },
    /// A gossiped message authored by validator `from`: the items its
    /// author gossiped, in order ([`gossip`]). Pass `id` to
    /// [`NetworkHandle::report_gossip`] once they are checked: the verdict
    /// is the message's, all its items together.
    Gossip {
        from: u16,
        id: GossipId,
        items: Vec<Vec<u8>>,
    },
    /// A block-sync request; send the response through `reply`.
    SyncRequest {
        from: u16,
        bytes: Vec<u8>,
        reply: oneshot::Sender<Vec<u8>>,
    },
    /// The first connection to a validator is up.
    PeerConnected(u16),
    /// The last connection to a validator is gone.
    PeerDisconnected(u16),
    /// A remote that is not a validator of this chain was refused.
    Rejected { peer: String, reason: String },
}

/// Where the transport hands what it receives. Called from the swarm task
/// and from the stream readers ([`link`]); must not block.
pub trait EventSink: std::fmt::Debug + Send + Sync + 'static {
    /// Hands `event` over; `false` when there is no room (the transport
    /// then counts it dropped).
    fn deliver(&self, event: NetEvent) -> bool;
}

/// The queue [`Network::start`] returns.
impl EventSink for mpsc::Sender<NetEvent> {
    fn deliver(&self, event: NetEvent) -> bool {
        self.try_send(event).is_ok()
    }
}

impl NetEvent {
    /// What it is, for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            NetEvent::Frame { .. } => "frame",
            NetEvent::Gossip { .. } => "gossip",
            NetEvent::SyncRequest { .. } => "sync request",
            NetEvent::PeerConnected(_) => "peer connected",
            NetEvent::PeerDisconnected(_) => "peer disconnected",
            NetEvent::Rejected { .. } => "rejected",
        }
    }
}

/// Identifies a received gossip message for [`NetworkHandle::report_gossip`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GossipId(Via);

/// How a gossip message came.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Via {
    /// From its author over the consensus stream ([`link`]): nothing to
    /// forward, so the verdict is not needed.
    Direct,
    /// By gossipsub, from a peer of an earlier version, which forwards it
    /// to the mesh once accepted.
    Gossipsub {
        message: MessageId,
        propagation_source: PeerId,
    },
}

impl GossipId {
    fn direct() -> Self {
        GossipId(Via::Direct)
    }
}

/// Why a network call failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NetError {
    #[error("network config: {0}")]
    Config(#[from] ConfigError),
    #[error("transport: {0}")]
    Transport(String),
    #[error("{0} is not another validator's index")]
    UnknownPeer(u16),
    #[error("validator {0} is not connected")]
    NotConnected(u16),
    #[error("{len} bytes is over the cap of {max}")]
    TooLarge { len: usize, max: u32 },
    #[error("the network command queue is full")]
    QueueFull,
    #[error("too many sync requests in flight")]
    Busy,
    #[error("request to validator {peer} failed: {reason}")]
    Request { peer: u16, reason: String },
    #[error("the network task has stopped")]
    Closed,
}

/// Starts the transport. See [`Network::start`].
#[derive(Debug)]
pub struct Network;

impl Network {
    /// Validates `config`, binds the listen address, spawns the swarm task
    /// and starts dialling; what it receives goes to a queue of
    /// [`NetConfig::queue_len`] events. `key` is our node signing key; it
    /// must be the key of `config.peers[config.me]`. Must be called inside
    /// a tokio runtime.
    pub fn start(
        config: NetConfig,
        key: &SigningKey,
    ) -> Result<(NetworkHandle, mpsc::Receiver<NetEvent>), NetError> {
        let (events, received) = mpsc::channel(config.queue_len);
        let handle = Network::start_with(config, key, Arc::new(events))?;
        Ok((handle, received))
    }

    /// [`Network::start`], handing what it receives to `sink`: the node's
    /// actor takes frames from its own queue, with no task in between.
    pub fn start_with(
        config: NetConfig,
        key: &SigningKey,
        sink: Arc<dyn EventSink>,
    ) -> Result<NetworkHandle, NetError> {
        config.validate()?;
        let me = usize::from(config.me);
        if config.peers[me].key != key.public_key() {
            return Err(ConfigError::NotMe.into());
        }
        let keypair = {
            // `ed25519_from_bytes` wipes the buffer it is given: a copy.
            let mut seed = key.seed();
            identity::Keypair::ed25519_from_bytes(&mut *seed)
                .map_err(|e| NetError::Transport(e.to_string()))?
        };
        let local_peer_id = keypair.public().to_peer_id();
        let mut ids = Vec::with_capacity(config.peers.len());
        for peer in &config.peers {
            let id =
                config::peer_id_of(&peer.key).ok_or(ConfigError::PeerKey { index: peer.index })?;
            ids.push(id);
        }
        assert_eq!(
            ids[me], local_peer_id,
            "our peer id is derived from our node key"
        );
        let allowed: Vec<PeerId> = config
            .peers
            .iter()
            .zip(&ids)
            .filter(|(peer, id)| peer.admitted && **id != local_peer_id)
            .map(|(_, id)| *id)
            .collect();

        let metrics = Arc::new(NetMetrics::default());
        let validators = config
            .peers
            .iter()
            .filter(|p| p.admitted && p.validator && p.index != config.me)
            .count();
        metrics
            .validator_peers
            .set(i64::try_from(validators).unwrap_or(i64::MAX));
        let mut swarm = behaviour::build_swarm(keypair, &config, &allowed, &metrics)
            .map_err(|e| NetError::Transport(e.to_string()))?;
        let mut control = swarm.behaviour().streams.new_control();
        let incoming = match config.streams {
            true => Some(
                control
                    .accept(link::STREAM_PROTOCOL)
                    .map_err(|e| NetError::Transport(e.to_string()))?,
            ),
            false => None,
        };
        swarm
            .listen_on(config.listen.clone())
            .map_err(|e| NetError::Transport(format!("listen on {}: {e}", config.listen)))?;

        let (command_tx, command_rx) = mpsc::channel(config.queue_len);
        let (listen_tx, listen_rx) = watch::channel(Vec::new());
        let shared = Arc::new(Shared {
            me: config.me,
            keys: Mutex::new(config.peers.iter().map(|p| p.key).collect()),
            frame_bytes_max: config.frame_bytes_max,
            sync_request_bytes_max: config.sync_request_bytes_max,
            gossip_bytes_max: config.gossip_bytes_max,
            local_peer_id,
            connected: AtomicU64::new(0),
            legacy: AtomicU64::new(if config.streams { 0 } else { u64::MAX }),
            admitted: Mutex::new(HashMap::new()),
            sink,
            metrics,
            listen_addrs: listen_rx,
        });
        if let Some(incoming) = incoming {
            link::Acceptor {
                incoming,
                shared: Arc::clone(&shared),
                caps: config.link_caps(),
            }
            .spawn();
        }
        let task = task::Task::new(
            swarm,
            control,
            config,
            ids,
            command_tx.downgrade(),
            command_rx,
            listen_tx,
            Arc::clone(&shared),
        );
        tokio::spawn(task.run());
        Ok(NetworkHandle {
            commands: command_tx,
            shared,
        })
    }
}

/// State shared by the task and every handle.
#[derive(Debug)]
struct Shared {
    me: u16,
    /// The peer table's keys, by index (it only grows).
    keys: Mutex<Vec<PublicKey>>,
    frame_bytes_max: u32,
    sync_request_bytes_max: u32,
    gossip_bytes_max: u32,
    local_peer_id: PeerId,
    /// Bit `i` is set while validator `i` has at least one connection.
    connected: AtomicU64,
    /// Bit `i` is set while validator `i` speaks only request-response for
    /// consensus frames (an earlier version, [`link`]); cleared when it
    /// connects again.
    legacy: AtomicU64,
    /// The admitted peers' indices, for inbound streams (kept by the task).
    admitted: Mutex<HashMap<PeerId, u16>>,
    /// Where received events go.
    sink: Arc<dyn EventSink>,
    metrics: Arc<NetMetrics>,
    listen_addrs: watch::Receiver<Vec<Multiaddr>>,
}

impl Shared {
    fn is_connected(&self, index: u16) -> bool {
        self.connected.load(Relaxed) & (1u64 << index) != 0
    }

    /// The index of `peer` while it is admitted.
    fn admitted_index(&self, peer: &PeerId) -> Option<u16> {
        self.admitted
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(peer)
            .copied()
    }

    /// Hands an event to the node without waiting; counts it if the node
    /// has no room for it.
    fn emit(&self, event: NetEvent) -> bool {
        let kind = event.kind();
        if self.sink.deliver(event) {
            return true;
        }
        self.metrics.events_dropped_queue_full.inc();
        tracing::debug!(kind, "event queue full or closed, event dropped");
        false
    }
}

/// Commands from handles to the task.
#[derive(Debug)]
enum Command {
    Send {
        to: u16,
        frame: codec::Request,
    },
    Broadcast {
        frame: codec::Request,
    },
    Gossip {
        bytes: Vec<u8>,
    },
    ReportGossip {
        message: MessageId,
        propagation_source: PeerId,
        accept: bool,
    },
    /// A record a writer could not send: the peer speaks only
    /// request-response and gossipsub ([`link`]).
    Unlinked {
        to: u16,
        record: link::Record,
    },
    Sync {
        to: u16,
        request: codec::Request,
        reply: oneshot::Sender<Result<Vec<u8>, NetError>>,
    },
    /// The peer table (checked by [`NetworkHandle::set_peers`]).
    SetPeers {
        peers: Vec<Peer>,
    },
    Shutdown {
        done: oneshot::Sender<()>,
    },
}

/// Talks to the swarm task. Clone freely; no method blocks or waits on the
/// network except [`NetworkHandle::shutdown`].
#[derive(Clone, Debug)]
pub struct NetworkHandle {
    commands: mpsc::Sender<Command>,
    shared: Arc<Shared>,
}

impl NetworkHandle {
    /// Sends a consensus frame to validator `to` (fire-and-forget). An `Err`
    /// means it was refused locally (and counted); `Ok` does not mean it
    /// arrived.
    pub fn send(&self, to: u16, frame: Vec<u8>) -> Result<(), NetError> {
        self.check_peer(to)?;
        self.check_frame(&frame)?;
        self.push_frame(Command::Send {
            to,
            frame: Arc::new(frame),
        })
    }

    /// Sends a consensus frame to every other validator, point-to-point.
    pub fn broadcast(&self, frame: Vec<u8>) -> Result<(), NetError> {
        self.check_frame(&frame)?;
        self.push_frame(Command::Broadcast {
            frame: Arc::new(frame),
        })
    }

    /// Publishes `bytes` on the mempool gossip topic, as an item of the
    /// next message the swarm task packs ([`gossip::pack`]). An item that
    /// would not fit in a message by itself is refused.
    pub fn gossip(&self, bytes: Vec<u8>) -> Result<(), NetError> {
        let max = self.shared.gossip_bytes_max;
        if !gossip::fits_alone(bytes.len(), max) {
            self.shared.metrics.oversized_frames.inc();
            return Err(NetError::TooLarge {
                len: bytes.len(),
                max: u32::try_from(gossip::item_bytes_max(max)).unwrap_or(max),
            });
        }
        self.push(Command::Gossip { bytes })
    }

    /// The node's verdict on a [`NetEvent::Gossip`]: `true` forwards it to
    /// the mesh, `false` drops it (gossipsub remembers the id and will not
    /// take it again).
    pub fn report_gossip(&self, id: GossipId, accept: bool) -> Result<(), NetError> {
        match id.0 {
            Via::Direct => Ok(()),
            Via::Gossipsub {
                message,
                propagation_source,
            } => self.push(Command::ReportGossip {
                message,
                propagation_source,
                accept,
            }),
        }
    }

    /// Asks validator `to` for sync data. The receiver yields the response,
    /// or why there is none (not connected, too many in flight, timeout,
    /// refused, over the response cap). If the network stops first, the
    /// receiver itself fails (`RecvError`).
    pub fn request_sync(
        &self,
        to: u16,
        request: Vec<u8>,
    ) -> oneshot::Receiver<Result<Vec<u8>, NetError>> {
        let (reply, response) = oneshot::channel();
        let checked = self.check_peer(to).and_then(|()| {
            let max = self.shared.sync_request_bytes_max;
            if request.len() > max as usize {
                self.shared.metrics.oversized_frames.inc();
                return Err(NetError::TooLarge {
                    len: request.len(),
                    max,
                });
            }
            Ok(())
        });
        match checked {
            Err(e) => {
                let _ = reply.send(Err(e));
            }
            Ok(()) => {
                let command = Command::Sync {
                    to,
                    request: Arc::new(request),
                    reply,
                };
                if let Err(e) = self.commands.try_send(command) {
                    let (error, command) = match e {
                        mpsc::error::TrySendError::Full(c) => (NetError::QueueFull, c),
                        mpsc::error::TrySendError::Closed(c) => (NetError::Closed, c),
                    };
                    if let Command::Sync { reply, .. } = command {
                        let _ = reply.send(Err(error));
                    }
                }
            }
        }
        response
    }

    /// Replaces the peer table: the same keys at the same indices, maybe
    /// more after them, each admitted or not. Newly admitted peers are
    /// allowed and dialled (if they have an address); a peer no longer
    /// admitted is disconnected and refused from then on. The node calls it
    /// as the validator set in force changes (`consensus::epoch`).
    pub fn set_peers(&self, peers: Vec<Peer>) -> Result<(), NetError> {
        let me = self.shared.me;
        config::validate_peers(&peers, me)?;
        let mut keys = self
            .shared
            .keys
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if peers[usize::from(me)].key != keys[usize::from(me)] {
            return Err(ConfigError::NotMe.into());
        }
        config::check_extends(&keys, &peers)?;
        let table: Vec<PublicKey> = peers.iter().map(|p| p.key).collect();
        // Commands are handled in order: once this is queued, a frame to a
        // new index finds its slot.
        self.push(Command::SetPeers { peers })?;
        *keys = table;
        Ok(())
    }

    /// The peers we are connected to now, in index order.
    pub fn connected(&self) -> Vec<u16> {
        let mask = self.shared.connected.load(Relaxed);
        (0..self.peer_count() as u16)
            .filter(|i| mask & (1u64 << i) != 0)
            .collect()
    }

    /// Entries in the peer table (ourselves included).
    pub fn peer_count(&self) -> usize {
        self.shared
            .keys
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// The addresses we listen on (empty until the listener is up).
    pub fn listen_addrs(&self) -> Vec<Multiaddr> {
        self.shared.listen_addrs.borrow().clone()
    }

    pub fn local_peer_id(&self) -> PeerId {
        self.shared.local_peer_id
    }

    /// Our index among the validators.
    pub fn me(&self) -> u16 {
        self.shared.me
    }

    pub fn metrics(&self) -> &Arc<NetMetrics> {
        &self.shared.metrics
    }

    /// Stops the task: closes the listener and every connection. Returns once
    /// the swarm is dropped (the port is free again). Other handles get
    /// [`NetError::Closed`] from then on.
    pub async fn shutdown(&self) {
        let (done, stopped) = oneshot::channel();
        if self.commands.send(Command::Shutdown { done }).await.is_ok() {
            let _ = stopped.await;
        }
    }

    fn check_peer(&self, to: u16) -> Result<(), NetError> {
        if usize::from(to) >= self.peer_count() || to == self.shared.me {
            return Err(NetError::UnknownPeer(to));
        }
        Ok(())
    }

    fn check_frame(&self, frame: &[u8]) -> Result<(), NetError> {
        let max = self.shared.frame_bytes_max;
        if frame.len() > max as usize {
            self.shared.metrics.oversized_frames.inc();
            return Err(NetError::TooLarge {
                len: frame.len(),
                max,
            });
        }
        Ok(())
    }

    fn push_frame(&self, command: Command) -> Result<(), NetError> {
        let pushed = self.push(command);
        if pushed == Err(NetError::QueueFull) {
            self.shared.metrics.frames_dropped_queue_full.inc();
        }
        pushed
    }

    fn push(&self, command: Command) -> Result<(), NetError> {
        self.commands.try_send(command).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => NetError::QueueFull,
            mpsc::error::TrySendError::Closed(_) => NetError::Closed,
        })
    }
}
