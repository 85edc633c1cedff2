//! What the transport needs to know: who the validators are, where to find
//! them, and every limit on what a peer may send.
//!
//! [`NetConfig::from_validators`] builds it from the genesis validators (a
//! peer's identity is its node key; its `p2p` hint is its dial address) and
//! [`NetConfig::validate`] checks every field, one [`ConfigError`] variant per
//! broken constraint, naming the field.

use std::time::Duration;

use libp2p::identity::{self, PeerId};
use libp2p::multiaddr::Multiaddr;
use lotline_core::limits::{ATTESTATION_BYTES_MAX, BLOCK_BYTES_MAX, VALIDATORS_MAX};
use lotline_core::{Digest, PublicKey};
use lotline_genesis::{Genesis, Validator};

/// Slack on top of the largest block for the rest of a consensus message (a
/// proposal's notarize vote, parent header and certificates).
pub const FRAME_OVERHEAD_BYTES: u32 = 1024 * 1024;
/// Default cap on one direct consensus frame: a proposal carries a block.
pub const FRAME_BYTES_MAX: u32 = BLOCK_BYTES_MAX as u32 + FRAME_OVERHEAD_BYTES;
/// Default cap on a block-sync request (a height or a hash and a count).
pub const SYNC_REQUEST_BYTES_MAX: u32 = 64 * 1024;
/// Default cap on a block-sync response: a finalized block with its finality.
pub const SYNC_RESPONSE_BYTES_MAX: u32 = BLOCK_BYTES_MAX as u32 + 4 * 1024 * 1024;
/// Default cap on a gossiped message (gossipsub's whole RPC): room for
/// hundreds of typical attestations of about a kilobyte, packed
/// ([`super::gossip`]), and for the largest one alone.
pub const GOSSIP_BYTES_MAX: u32 = 512 * 1024;
/// The connected-peer set is a `u64` bit mask.
pub const PEERS_MAX: usize = 64;

const _: () = assert!(VALIDATORS_MAX <= PEERS_MAX);
const _: () = assert!((BLOCK_BYTES_MAX as u64) + (FRAME_OVERHEAD_BYTES as u64) <= u32::MAX as u64);
const _: () = assert!(SYNC_REQUEST_BYTES_MAX < FRAME_BYTES_MAX);
const _: () = assert!(FRAME_BYTES_MAX <= SYNC_RESPONSE_BYTES_MAX);
// gossipsub refuses a max_transmit_size below 100 bytes.
const _: () = assert!(GOSSIP_BYTES_MAX as usize >= GOSSIP_BYTES_MIN);
/// The least `gossip_bytes_max`: a message must hold the largest attestation.
const GOSSIP_BYTES_MIN: usize = super::gossip::message_bytes_for(ATTESTATION_BYTES_MAX);

/// One node key as the transport sees it. `index` is its position in the
/// node's peer table (the genesis validators first, then keys the chain's
/// governance brought in, in the order this node learnt them) and is how
/// every other part of the node names it. The table only grows while the
/// node runs; whether a key may connect is `admitted`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Peer {
    pub index: u16,
    pub key: PublicKey,
    /// Where to dial it; `None` means it dials us.
    pub addr: Option<Multiaddr>,
    /// May connect and exchange traffic with us now: a validator of the
    /// epoch in force or of the next one, or a node that follows the chain
    /// (`consensus::epoch::Epochs::peers`). A key no longer admitted is
    /// disconnected and refused.
    pub admitted: bool,
    /// A validator of the epoch in force or of the next one (not a node
    /// that only follows): what the peer gauges count, so a stopped
    /// follower does not look like a validator that is down.
    pub validator: bool,
}

/// Transport configuration. Build with [`NetConfig::new`] or
/// [`NetConfig::from_validators`], adjust fields, and [`NetConfig::validate`]
/// (which [`crate::net::Network::start`] also calls).
#[derive(Clone, Debug)]
pub struct NetConfig {
    /// Where to listen, e.g. `/ip4/0.0.0.0/tcp/7101`.
    pub listen: Multiaddr,
    /// The peer table at start, ourselves included: the genesis validators
    /// in order, then any other key (see [`Peer`]).
    pub peers: Vec<Peer>,
    /// Our own index in `peers`.
    pub me: u16,
    /// Names the gossip topic and the identify protocol version, so nodes of
    /// two chains that share a key never mix traffic.
    pub chain_id: Digest,
    /// Largest consensus frame, both directions (`/lotline/consensus/2`
    /// and `/1`).
    pub frame_bytes_max: u32,
    /// Largest request on `/lotline/sync/1`.
    pub sync_request_bytes_max: u32,
    /// Largest response on `/lotline/sync/1`.
    pub sync_response_bytes_max: u32,
    /// The largest gossip message, with its items packed
    /// ([`super::gossip`]), on the consensus stream and as gossipsub's
    /// `max_transmit_size`; the same on every node.
    pub gossip_bytes_max: u32,
    /// A consensus stream not opened, or records not written, in this time
    /// fail (and a frame sent by request-response not acknowledged).
    pub request_timeout: Duration,
    /// A sync request not answered in this time fails; also how long the
    /// node's actor has to answer an inbound one.
    pub sync_timeout: Duration,
    /// A connection with no traffic is closed after this (libp2p's default of
    /// 10 s would churn an idle consortium); closed ones are re-dialled.
    pub idle_timeout: Duration,
    /// How often each connection is pinged.
    pub ping_interval: Duration,
    /// A connection whose ping is not answered in this time is closed and
    /// re-dialled. A partition drops packets without closing anything, and
    /// TCP alone would keep retransmitting into it for minutes, then resume
    /// on its own backed-off schedule long after the network healed.
    pub ping_timeout: Duration,
    /// First re-dial delay after a connection closes or a dial fails.
    pub redial_backoff_min: Duration,
    /// The delay doubles per failure up to this.
    pub redial_backoff_max: Duration,
    /// Capacity of the command queue (handle → task) and of the event queue
    /// (task → node).
    pub queue_len: usize,
    /// Records (frames and gossip) waiting for a peer's stream, or frames
    /// unacknowledged by a peer of an earlier version; more are dropped.
    pub frames_in_flight_max: u32,
    /// Sync requests in flight, each direction, over all peers.
    pub sync_in_flight_max: u32,
    /// Speak `/lotline/consensus/2` ([`super::link`]). `false` makes the
    /// node speak as one of an earlier version: consensus frames by
    /// request-response and gossip by gossipsub only. For rehearsing a
    /// rolling upgrade (node/tests/net_permissioned.rs); not a setting.
    pub streams: bool,
}

/// A broken constraint in a [`NetConfig`], naming the field.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("peers: {count} validators, the transport supports 1..={max}")]
    PeerCount { count: usize, max: usize },
    #[error("peers[{position}].index is {index}, it must equal its position")]
    PeerIndex { position: usize, index: u16 },
    #[error("peers[{index}].key is not a valid Ed25519 public key")]
    PeerKey { index: u16 },
    #[error("peers[{index}].key appears twice")]
    DuplicateKey { index: u16 },
    #[error("peers[{index}].addr {addr:?} is not a multiaddr")]
    PeerAddr { index: u16, addr: String },
    #[error("me is {me}, there are {count} validators")]
    Me { me: u16, count: usize },
    #[error("peers[me].key does not match our node key")]
    NotMe,
    #[error("peers[{index}] is not the key the running transport has at that index")]
    PeerMoved { index: u16 },
    #[error("{field} is {value}, it must be in {min}..={max}")]
    OutOfRange {
        field: &'static str,
        value: u64,
        min: u64,
        max: u64,
    },
    #[error("redial_backoff_min must be > 0 and <= redial_backoff_max")]
    Backoff,
}

impl NetConfig {
    /// A configuration with the default limits.
    pub fn new(listen: Multiaddr, peers: Vec<Peer>, me: u16, chain_id: Digest) -> Self {
        NetConfig {
            listen,
            peers,
            me,
            chain_id,
            frame_bytes_max: FRAME_BYTES_MAX,
            sync_request_bytes_max: SYNC_REQUEST_BYTES_MAX,
            sync_response_bytes_max: SYNC_RESPONSE_BYTES_MAX,
            gossip_bytes_max: GOSSIP_BYTES_MAX,
            request_timeout: Duration::from_secs(10),
            sync_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(30 * 60),
            ping_interval: Duration::from_secs(2),
            ping_timeout: Duration::from_secs(10),
            redial_backoff_min: Duration::from_millis(250),
            // Validators are few and known: re-dialling each every few
            // seconds is cheap, and bounds how long a healed partition
            // stays apart.
            redial_backoff_max: Duration::from_secs(4),
            queue_len: 1024,
            frames_in_flight_max: 64,
            sync_in_flight_max: 16,
            streams: true,
        }
    }

    /// Peers from genesis validators: index = position, key = node key,
    /// address = the `p2p` hint.
    pub fn from_validators(
        validators: &[Validator],
        me: u16,
        chain_id: Digest,
        listen: Multiaddr,
    ) -> Result<Self, ConfigError> {
        let mut peers = Vec::with_capacity(validators.len().min(PEERS_MAX));
        for (position, v) in validators.iter().enumerate() {
            let count = validators.len();
            let index = u16::try_from(position).map_err(|_| ConfigError::PeerCount {
                count,
                max: PEERS_MAX,
            })?;
            let addr = match &v.p2p {
                None => None,
                Some(text) => {
                    Some(
                        text.parse::<Multiaddr>()
                            .map_err(|_| ConfigError::PeerAddr {
                                index,
                                addr: text.clone(),
                            })?,
                    )
                }
            };
            peers.push(Peer {
                index,
                key: v.node_key,
                addr,
                admitted: true,
                validator: true,
            });
        }
        let config = NetConfig::new(listen, peers, me, chain_id);
        config.validate()?;
        Ok(config)
    }

    /// [`NetConfig::from_validators`] on a loaded genesis.
    pub fn from_genesis(
        genesis: &Genesis,
        me: u16,
        listen: Multiaddr,
    ) -> Result<Self, ConfigError> {
        NetConfig::from_validators(genesis.validators(), me, genesis.chain_id(), listen)
    }

    /// Checks every field. `start` calls it; calling it early gives the
    /// operator the error before anything binds a port.
    pub fn validate(&self) -> Result<(), ConfigError> {
        validate_peers(&self.peers, self.me)?;
        range(
            "frame_bytes_max",
            self.frame_bytes_max.into(),
            1,
            u32::MAX.into(),
        )?;
        range(
            "sync_request_bytes_max",
            self.sync_request_bytes_max.into(),
            1,
            u32::MAX.into(),
        )?;
        range(
            "sync_response_bytes_max",
            self.sync_response_bytes_max.into(),
            1,
            u32::MAX.into(),
        )?;
        // A message holds the largest attestation.
        range(
            "gossip_bytes_max",
            self.gossip_bytes_max.into(),
            GOSSIP_BYTES_MIN as u64,
            u32::MAX.into(),
        )?;
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        range("request_timeout", ms(self.request_timeout), 1, 3_600_000)?;
        range("sync_timeout", ms(self.sync_timeout), 1, 3_600_000)?;
        range("idle_timeout", ms(self.idle_timeout), 1, 86_400_000)?;
        range("ping_interval", ms(self.ping_interval), 10, 3_600_000)?;
        range("ping_timeout", ms(self.ping_timeout), 10, 3_600_000)?;
        if self.redial_backoff_min.is_zero() || self.redial_backoff_min > self.redial_backoff_max {
            return Err(ConfigError::Backoff);
        }
        range(
            "redial_backoff_max",
            ms(self.redial_backoff_max),
            1,
            3_600_000,
        )?;
        range("queue_len", self.queue_len as u64, 1, 1 << 20)?;
        range(
            "frames_in_flight_max",
            self.frames_in_flight_max.into(),
            2 * super::link::ACK_EVERY,
            4096,
        )?;
        range(
            "sync_in_flight_max",
            self.sync_in_flight_max.into(),
            1,
            4096,
        )?;
        Ok(())
    }

    /// The gossipsub topic: `lotline/<chain id hex>/mempool/1`.
    pub fn gossip_topic(&self) -> String {
        // 2: packed messages (`super::gossip`); 1 carried one attestation each.
        format!("lotline/{}/mempool/2", self.chain_id.to_hex())
    }

    /// The identify protocol version; a peer announcing another one is on
    /// another chain and is disconnected.
    /// The caps of the records on a consensus stream, by kind.
    pub fn link_caps(&self) -> super::link::Caps {
        super::link::Caps {
            frame: self.frame_bytes_max,
            gossip: self.gossip_bytes_max,
        }
    }

    pub fn protocol_version(&self) -> String {
        format!("/lotline/{}/1", self.chain_id.to_hex())
    }
}

/// Checks a peer table: 1 to [`PEERS_MAX`] entries, each at its index,
/// each key a valid Ed25519 point and present once, `me` among them.
pub fn validate_peers(peers: &[Peer], me: u16) -> Result<(), ConfigError> {
    let count = peers.len();
    if count == 0 || count > PEERS_MAX {
        return Err(ConfigError::PeerCount {
            count,
            max: PEERS_MAX,
        });
    }
    if usize::from(me) >= count {
        return Err(ConfigError::Me { me, count });
    }
    let mut seen = std::collections::BTreeSet::new();
    for (position, peer) in peers.iter().enumerate() {
        if usize::from(peer.index) != position {
            return Err(ConfigError::PeerIndex {
                position,
                index: peer.index,
            });
        }
        peer_id_of(&peer.key).ok_or(ConfigError::PeerKey { index: peer.index })?;
        if !seen.insert(peer.key) {
            return Err(ConfigError::DuplicateKey { index: peer.index });
        }
    }
    Ok(())
}

/// Checks that `new` extends the table `old` (the keys of the running
/// transport, in order): a key keeps its index for the life of the
/// process, so indices held elsewhere in the node stay meaningful.
pub fn check_extends(old: &[PublicKey], new: &[Peer]) -> Result<(), ConfigError> {
    for (index, key) in old.iter().enumerate() {
        if new.get(index).map(|p| p.key) != Some(*key) {
            return Err(ConfigError::PeerMoved {
                index: u16::try_from(index).unwrap_or(u16::MAX),
            });
        }
    }
    Ok(())
}

fn range(field: &'static str, value: u64, min: u64, max: u64) -> Result<(), ConfigError> {
    if value < min || value > max {
        return Err(ConfigError::OutOfRange {
            field,
            value,
            min,
            max,
        });
    }
    Ok(())
}

/// The libp2p peer id of a validator's node key, or `None` if the key is not
/// an Ed25519 point.
pub fn peer_id_of(key: &PublicKey) -> Option<PeerId> {
    let key = identity::ed25519::PublicKey::try_from_bytes(&key.0).ok()?;
    Some(PeerId::from_public_key(&identity::PublicKey::from(key)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use lotline_core::SigningKey;

    fn peers(n: u8) -> Vec<Peer> {
        (0..n)
            .map(|i| Peer {
                index: u16::from(i),
                key: SigningKey::from_seed(&[i + 1; 32]).public_key(),
                addr: None,
                admitted: true,
                validator: true,
            })
            .collect()
    }

    fn listen() -> Multiaddr {
        "/ip4/127.0.0.1/tcp/0".parse().unwrap()
    }

    #[test]
    fn defaults_are_valid() {
        let config = NetConfig::new(listen(), peers(4), 2, Digest::ZERO);
        assert_eq!(config.validate(), Ok(()));
        assert!(config.gossip_topic().starts_with("lotline/0000"));
    }

    #[test]
    fn each_broken_constraint_names_its_field() {
        let config = NetConfig::new(listen(), peers(4), 4, Digest::ZERO);
        assert_eq!(config.validate(), Err(ConfigError::Me { me: 4, count: 4 }));

        let mut config = NetConfig::new(listen(), peers(4), 0, Digest::ZERO);
        config.peers[3].key = config.peers[1].key;
        assert_eq!(
            config.validate(),
            Err(ConfigError::DuplicateKey { index: 3 })
        );

        let mut config = NetConfig::new(listen(), peers(4), 0, Digest::ZERO);
        config.peers[2].index = 7;
        assert_eq!(
            config.validate(),
            Err(ConfigError::PeerIndex {
                position: 2,
                index: 7
            })
        );

        let mut config = NetConfig::new(listen(), peers(4), 0, Digest::ZERO);
        config.gossip_bytes_max = 99;
        assert!(matches!(
            config.validate(),
            Err(ConfigError::OutOfRange {
                field: "gossip_bytes_max",
                ..
            })
        ));

        let mut config = NetConfig::new(listen(), peers(4), 0, Digest::ZERO);
        config.redial_backoff_min = config.redial_backoff_max + Duration::from_secs(1);
        assert_eq!(config.validate(), Err(ConfigError::Backoff));
    }

    #[test]
    fn peer_ids_come_from_node_keys() {
        let key = SigningKey::from_seed(&[9; 32]);
        let mut seed = key.seed();
        let keypair = identity::Keypair::ed25519_from_bytes(&mut *seed).unwrap();
        assert_eq!(
            peer_id_of(&key.public_key()),
            Some(keypair.public().to_peer_id())
        );
    }
}
