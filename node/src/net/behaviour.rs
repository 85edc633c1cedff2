//! The composed libp2p behaviour and the swarm that drives it.
//!
//! Field order matters: libp2p asks each behaviour in declaration order
//! whether to accept an established connection, so the allow list comes
//! first and refuses a key that is not admitted before any other behaviour
//! builds a handler for it; connection limits come second. Both change
//! while the node runs, as the validator set does (`task.rs`, `set_peers`).

use std::collections::HashSet;
use std::error::Error;
use std::fmt;
use std::sync::Arc;

use libp2p::gossipsub::{
    self, IdentityTransform, MessageAuthenticity, ValidationMode, WhitelistSubscriptionFilter,
};
use libp2p::swarm::NetworkBehaviour;
use libp2p::{
    Swarm, SwarmBuilder, allow_block_list, connection_limits, identify, identity, noise, ping,
    request_response, tcp, yamux,
};

use super::codec::{CONSENSUS_PROTOCOL, FrameCodec, SYNC_PROTOCOL};
use super::config::NetConfig;
use super::metrics::NetMetrics;

/// Connections per validator: one each way when both dial at once.
pub const CONNECTIONS_PER_PEER_MAX: u32 = 2;
/// Handshakes in progress from whoever dials us: bounds what unauthenticated
/// remotes can make us spend before the allow list sees their peer id.
pub const PENDING_INCOMING_MAX: u32 = 16;
/// Inbound streams negotiating protocols at once, per connection.
pub const NEGOTIATING_INBOUND_STREAMS_MAX: usize = 64;
/// Gossip mesh degree bounds, valid for 4–7 validators and still valid if the
/// set grows (gossipsub requires `outbound_min <= low <= n <= high` and
/// `2 * outbound_min <= n`).
const MESH_N_LOW: usize = 2;
const MESH_N: usize = 4;
const MESH_N_HIGH: usize = 8;
const MESH_OUTBOUND_MIN: usize = 1;
const _: () = assert!(MESH_OUTBOUND_MIN <= MESH_N_LOW && MESH_N_LOW <= MESH_N);
const _: () = assert!(MESH_N <= MESH_N_HIGH && 2 * MESH_OUTBOUND_MIN <= MESH_N);

pub type Gossipsub = gossipsub::Behaviour<IdentityTransform, WhitelistSubscriptionFilter>;
pub type FrameBehaviour = request_response::Behaviour<FrameCodec>;

#[derive(NetworkBehaviour)]
pub struct Behaviour {
    pub allow: allow_block_list::Behaviour<allow_block_list::AllowedPeers>,
    pub limits: connection_limits::Behaviour,
    /// Consensus frames on long-lived streams (`link.rs`).
    pub streams: libp2p_stream::Behaviour,
    /// Consensus frames by request-response, for peers of an earlier
    /// version that do not speak the streams' protocol.
    pub consensus: FrameBehaviour,
    pub sync: FrameBehaviour,
    pub gossipsub: Gossipsub,
    pub identify: identify::Behaviour,
    pub ping: ping::Behaviour,
}

impl fmt::Debug for Behaviour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Behaviour")
            .field("allowed", &self.allow.allowed_peers().len())
            .finish_non_exhaustive()
    }
}

type BoxError = Box<dyn Error + Send + Sync>;

/// Builds the swarm: TCP + Noise + Yamux, our behaviour, a long idle timeout.
/// Does not listen or dial.
pub fn build_swarm(
    keypair: identity::Keypair,
    config: &NetConfig,
    allowed: &[identity::PeerId],
    metrics: &Arc<NetMetrics>,
) -> Result<Swarm<Behaviour>, BoxError> {
    let swarm = SwarmBuilder::with_existing_identity(keypair)
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )?
        .with_behaviour(|key| make_behaviour(key, config, allowed, metrics))?
        .with_swarm_config(|c| {
            c.with_idle_connection_timeout(config.idle_timeout)
                .with_max_negotiating_inbound_streams(NEGOTIATING_INBOUND_STREAMS_MAX)
        })
        .build();
    Ok(swarm)
}

fn make_behaviour(
    key: &identity::Keypair,
    config: &NetConfig,
    allowed: &[identity::PeerId],
    metrics: &Arc<NetMetrics>,
) -> Result<Behaviour, BoxError> {
    let mut allow = allow_block_list::Behaviour::<allow_block_list::AllowedPeers>::default();
    for peer in allowed {
        allow.allow_peer(*peer);
    }
    let limits = connection_limits::Behaviour::new(limits_for(allowed.len()));
    let consensus = request_response::Behaviour::with_codec(
        FrameCodec::new(config.frame_bytes_max, 0, Arc::clone(metrics)),
        [(CONSENSUS_PROTOCOL, request_response::ProtocolSupport::Full)],
        request_response::Config::default()
            .with_request_timeout(config.request_timeout)
            .with_max_concurrent_streams(config.frames_in_flight_max as usize * 2),
    );
    let sync = request_response::Behaviour::with_codec(
        FrameCodec::new(
            config.sync_request_bytes_max,
            config.sync_response_bytes_max,
            Arc::clone(metrics),
        ),
        [(SYNC_PROTOCOL, request_response::ProtocolSupport::Full)],
        request_response::Config::default()
            .with_request_timeout(config.sync_timeout)
            .with_max_concurrent_streams(config.sync_in_flight_max as usize),
    );
    let gossipsub = make_gossipsub(key, config)?;
    let identify = identify::Behaviour::new(
        identify::Config::new(config.protocol_version(), key.public())
            .with_agent_version(format!("lotline/{}", env!("CARGO_PKG_VERSION")))
            .with_cache_size(0),
    );
    let ping = ping::Behaviour::new(
        ping::Config::new()
            .with_interval(config.ping_interval)
            .with_timeout(config.ping_timeout),
    );
    Ok(Behaviour {
        allow,
        limits,
        streams: libp2p_stream::Behaviour::new(),
        consensus,
        sync,
        gossipsub,
        identify,
        ping,
    })
}

/// The connection limits with `admitted` peers: [`CONNECTIONS_PER_PEER_MAX`]
/// each, in total that many times the peers, and [`PENDING_INCOMING_MAX`]
/// handshakes. Set again whenever the admitted peers change.
pub fn limits_for(admitted: usize) -> connection_limits::ConnectionLimits {
    let n = u32::try_from(admitted).unwrap_or(u32::MAX);
    connection_limits::ConnectionLimits::default()
        .with_max_established_per_peer(Some(CONNECTIONS_PER_PEER_MAX))
        .with_max_established(Some(n.saturating_mul(CONNECTIONS_PER_PEER_MAX)))
        .with_max_pending_incoming(Some(PENDING_INCOMING_MAX))
}

fn make_gossipsub(key: &identity::Keypair, config: &NetConfig) -> Result<Gossipsub, BoxError> {
    let gossip_config = gossipsub::ConfigBuilder::default()
        // Messages wait for the node's verdict before being forwarded.
        .validate_messages()
        // Messages carry their author and a sequence number but no
        // gossipsub signature: see `make_gossipsub`.
        .validation_mode(ValidationMode::Permissive)
        // Content addressing: the same attestation from two nodes is one message.
        .message_id_fn(|m: &gossipsub::Message| {
            gossipsub::MessageId::from(blake3::hash(&m.data).as_bytes().to_vec())
        })
        .max_transmit_size(config.gossip_bytes_max as usize)
        .mesh_n_low(MESH_N_LOW)
        .mesh_n(MESH_N)
        .mesh_n_high(MESH_N_HIGH)
        .mesh_outbound_min(MESH_OUTBOUND_MIN)
        .gossip_lazy(MESH_N)
        .flood_publish(true)
        .build()?;
    let topic = gossipsub::IdentTopic::new(config.gossip_topic());
    let filter = WhitelistSubscriptionFilter(HashSet::from([topic.hash()]));
    // No gossipsub signatures. gossipsub verifies the signature of every
    // copy it receives, before deduplication: with a full mesh that is two to
    // three Ed25519 verifications per node per attestation, on top of the one
    // admission does, plus a signature per publish. They would add nothing:
    // every peer is a validator authenticated by Noise and the allow list
    // (the propagation source is checked on every message), and every
    // attestation carries its member's signature, which admission verifies.
    // The author field stays (unsigned) for logs and the author check.
    let mut gossipsub = Gossipsub::new_with_subscription_filter(
        MessageAuthenticity::Author(key.public().to_peer_id()),
        gossip_config,
        filter,
    )?;
    gossipsub.subscribe(&topic)?;
    Ok(gossipsub)
}
