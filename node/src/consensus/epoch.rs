//! The node's side of epochs (docs/protocol.md, "Validator-set changes"):
//! which engine config the actor starts in, which `Input::Reconfigure` it
//! owes its engine, which node keys the transport admits, and how the
//! transport's peers map to the epoch's validator indices.
//!
//! # The peer table
//!
//! The transport names peers by their index in this node's *peer table*:
//! the genesis validators' node keys in genesis order, then our own key if
//! it is not one of them (a node that joins by vote starts as a
//! follower), then each other key the genesis (`[[followers]]`) or the
//! committed governance names (`addValidator`, `rotateNodeKey`'s new key,
//! `addNode`) once it is first admitted, in chain order. A
//! node's libp2p identity is its node key. The table only grows while the
//! node runs (an index keeps its meaning); it is built again at each start
//! from the keys admitted then, so keys the chain retired do not pile up.
//! Indices are local: no message carries one.
//!
//! # Who is admitted
//!
//! [`admitted`] is decided from the committed history and the engine's
//! epoch `e`: the validators of epoch `e`, those of epoch `e + 1` once a
//! change makes one (around a boundary the union of both, so a joining
//! validator syncs before it must vote and a leaving one still helps
//! finish its last epoch), and *followers*: the follower nodes of the
//! membership in force at the next height (the genesis `[[followers]]`
//! and `addNode`, until a `removeNode`, `revokeKey` or `removeOrg` takes
//! effect: an org change, so every node drops them at the same height), and
//! validators of an earlier epoch removed by `removeValidator` whose org
//! is still a member and whose key is not revoked (they follow the chain
//! and are served blocks; the engine drops their votes, module `roster`).
//! A key a `rotateNodeKey` replaced
//! is admitted no longer once the engine has left the epoch it signed in
//! (a rotation is often a key that leaked). Whoever is not admitted is
//! disconnected and refused by the transport's allow list.
//!
//! # Rosters
//!
//! The engine names validators by their position in the epoch's set. An
//! epoch's *roster* (as in the simulator's `sim/roster.rs`) is the epoch's
//! validators in order, followed by every other key of the peer table in
//! table order: every peer has one engine index per epoch, a non-member's
//! at or above the set's size (its engine follows the chain without
//! voting, and its requests are served).

use std::collections::{BTreeMap, BTreeSet};

use libp2p::multiaddr::Multiaddr;
use lotline_consensus::Reconfiguration;
use lotline_core::crypto::{PublicKey, SigningKey};
use lotline_genesis::governance::Change;
use lotline_genesis::{Genesis, History, Membership};

use crate::net::{NetConfig, Peer};

/// Why a node cannot join the validators' network ([`join`]).
#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    #[error("p2p listen {addr:?}: {message}")]
    Listen { addr: String, message: String },
    #[error(
        "this validator has no p2p address: set [p2p] listen in the node config or p2p in genesis"
    )]
    NoAddress,
}

/// How a node whose store holds `height` blocks joins the validators'
/// network: the epochs' bookkeeping in the epoch of the next height, that
/// epoch's membership, and the transport's config (the peer table of every
/// key the chain admits; `listen`, else our own address in it). One way for
/// `Node::start` and `lotline repair`, so a validator added or re-keyed by
/// vote repairs with the peers it runs with.
pub fn join(
    genesis: &Genesis,
    key: &SigningKey,
    may_vote: bool,
    addrs: BTreeMap<PublicKey, Multiaddr>,
    listen: Option<&str>,
    history: &History,
    height: u64,
) -> Result<(Epochs, std::sync::Arc<Membership>, NetConfig), JoinError> {
    let current = history.at(height + 1);
    let mut epochs = Epochs::new(genesis, key.clone(), may_vote, addrs, &current);
    let me = epochs.me();
    let peers = epochs
        .peers(genesis, history, current.epoch().0, height + 1)
        .unwrap_or_default();
    let listen = match listen {
        Some(addr) => addr.parse().map_err(|e| JoinError::Listen {
            addr: addr.to_owned(),
            message: format!("{e}"),
        })?,
        None => peers
            .get(usize::from(me))
            .and_then(|p| p.addr.clone())
            .ok_or(JoinError::NoAddress)?,
    };
    let config = NetConfig::new(listen, peers, me, genesis.chain_id());
    Ok((epochs, current, config))
}

/// Peer (genesis index) <-> engine index in one epoch (module doc).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Roster {
    epoch: u64,
    /// Engine index -> peer, `None` for a validator no peer is.
    peers: Vec<Option<u16>>,
    /// Peer -> engine index.
    indices: Vec<u16>,
}

impl Roster {
    /// The roster of the epoch whose validators are `validators`, over the
    /// transport's peers `peers` (the genesis node keys, in order).
    pub fn new(epoch: u64, validators: &[PublicKey], peers: &[PublicKey]) -> Roster {
        let peer_of = |key: &PublicKey| {
            peers
                .iter()
                .position(|p| p == key)
                .and_then(|i| u16::try_from(i).ok())
        };
        let mut order: Vec<Option<u16>> = validators.iter().map(peer_of).collect();
        for (peer, key) in peers.iter().enumerate() {
            if !validators.contains(key) {
                order.push(u16::try_from(peer).ok());
            }
        }
        let mut indices = vec![u16::MAX; peers.len()];
        for (index, peer) in order.iter().enumerate() {
            if let (Some(peer), Ok(index)) = (peer, u16::try_from(index)) {
                indices[usize::from(*peer)] = index;
            }
        }
        Roster {
            epoch,
            peers: order,
            indices,
        }
    }

    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The engine index of transport peer `peer`.
    pub fn index_of(&self, peer: u16) -> Option<u16> {
        self.indices
            .get(usize::from(peer))
            .copied()
            .filter(|i| *i != u16::MAX)
    }

    /// The transport peer of engine index `index`, if one is.
    pub fn peer_of(&self, index: u16) -> Option<u16> {
        self.peers.get(usize::from(index)).copied().flatten()
    }
}

/// What the chain says about a node key: its org and its `p2p` hint (the
/// genesis entry, the `addValidator` or `addNode` that brought it; a
/// rotated key's successor inherits both), whether a `rotateNodeKey`
/// replaced it, and whether it was named as a follower (`[[followers]]`,
/// `addNode`: admitted while the membership lists it).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyFacts {
    pub org: String,
    pub p2p: Option<String>,
    pub rotated_away: bool,
    pub follower: bool,
}

impl KeyFacts {
    fn of(node: &lotline_genesis::Validator, follower: bool) -> KeyFacts {
        KeyFacts {
            org: node.org.clone(),
            p2p: node.p2p.clone(),
            rotated_away: false,
            follower,
        }
    }
}

/// Every node key the genesis and the committed history name, validators'
/// and followers', in table order (genesis validators, genesis followers,
/// then chain order), with what is known of it.
pub fn node_keys(genesis: &Genesis, history: &History) -> Vec<(PublicKey, KeyFacts)> {
    let validators = genesis.validators().iter().map(|v| KeyFacts::of(v, false));
    let followers = genesis.followers().iter().map(|f| KeyFacts::of(f, true));
    let mut keys: Vec<(PublicKey, KeyFacts)> = genesis
        .validators()
        .iter()
        .chain(genesis.followers())
        .map(|v| v.node_key)
        .zip(validators.chain(followers))
        .collect();
    for entry in history.entries().iter().filter(|e| e.void.is_none()) {
        match &entry.proposal.change {
            Change::AddValidator { org, node_key, p2p }
            | Change::AddNode { org, node_key, p2p }
                if !keys.iter().any(|(k, _)| k == node_key) =>
            {
                let facts = KeyFacts {
                    org: org.clone(),
                    p2p: p2p.clone(),
                    rotated_away: false,
                    follower: matches!(entry.proposal.change, Change::AddNode { .. }),
                };
                keys.push((*node_key, facts));
            }
            // A follower's key voted in as a validator (after its
            // `removeNode`): a validator's key from then on.
            Change::AddValidator { node_key, .. } => {
                if let Some((_, facts)) = keys.iter_mut().find(|(k, _)| k == node_key) {
                    facts.follower = false;
                }
            }
            Change::RotateNodeKey { old_key, new_key } => {
                let Some(at) = keys.iter().position(|(k, _)| k == old_key) else {
                    continue;
                };
                keys[at].1.rotated_away = true;
                let facts = KeyFacts {
                    rotated_away: false,
                    ..keys[at].1.clone()
                };
                if !keys.iter().any(|(k, _)| k == new_key) {
                    keys.push((*new_key, facts));
                }
            }
            _ => {}
        }
    }
    keys
}

/// The org whose node key `key` is, if the chain names it.
pub fn org_of(genesis: &Genesis, history: &History, key: &PublicKey) -> Option<String> {
    node_keys(genesis, history)
        .into_iter()
        .find(|(k, _)| k == key)
        .map(|(_, facts)| facts.org)
}

/// Why the chain stopped admitting a node key: the change, the height it
/// took effect, and for a rotated validator key the key that signs for it
/// now (the last of a chain of rotations).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Retired {
    pub from: u64,
    pub change: &'static str,
    pub successor: Option<PublicKey>,
}

impl Retired {
    /// What the operator holding the retired key does instead, in plain
    /// words (`lotline repair` and `lotline doctor` say the same).
    pub fn advice(&self) -> String {
        match self.successor {
            Some(successor) => format!(
                "use the node key that replaced it, {successor} (the node_key file the node runs with now)"
            ),
            None => "the consortium retired this node, so no peer serves it; restore from a backup instead"
                .to_owned(),
        }
    }
}

/// The first committed change that retired `key` (`rotateNodeKey` of it,
/// `removeNode`, `revokeKey`, or `removeOrg` of a follower's org), in
/// effect order; `None` if none did.
pub fn retirement(genesis: &Genesis, history: &History, key: &PublicKey) -> Option<Retired> {
    let org = org_of(genesis, history, key);
    let mut entries: Vec<_> = history
        .entries()
        .iter()
        .filter(|e| e.void.is_none())
        .collect();
    entries.sort_by_key(|e| (e.effective, e.height, e.index));
    let successor = |from: &PublicKey| {
        let mut current = *from;
        for entry in &entries {
            if let Change::RotateNodeKey { old_key, new_key } = &entry.proposal.change
                && *old_key == current
            {
                current = *new_key;
            }
        }
        current
    };
    entries.iter().find_map(|entry| {
        let change = &entry.proposal.change;
        let retires = match change {
            Change::RotateNodeKey { old_key, .. } => old_key == key,
            Change::RemoveNode { node_key } => node_key == key,
            Change::RevokeKey { key: revoked } => revoked == key,
            Change::RemoveOrg { org: removed } => org.as_ref() == Some(removed),
            _ => false,
        };
        retires.then(|| Retired {
            from: entry.effective,
            change: change.kind(),
            successor: matches!(change, Change::RotateNodeKey { .. }).then(|| successor(key)),
        })
    })
}

/// The node keys the transport admits while the engine is in `epoch`
/// (module doc, "Who is admitted"): the validators of `epoch` and of the
/// next epoch if there is one, and the followers among the other keys the
/// chain names, judged by the membership in force at `height` (the next
/// height to commit).
pub fn admitted(
    genesis: &Genesis,
    history: &History,
    epoch: u64,
    height: u64,
) -> BTreeSet<PublicKey> {
    let mut admitted: BTreeSet<PublicKey> = BTreeSet::new();
    for number in [epoch, epoch + 1] {
        if let Some(membership) = history.epoch(number) {
            admitted.extend(keys(&membership));
        }
    }
    let now = history.at(height);
    admitted.extend(now.followers().iter().map(|f| f.node_key));
    for (key, facts) in node_keys(genesis, history) {
        let member = now.rules().org(&facts.org).is_some();
        if member && !facts.follower && !facts.rotated_away && now.revoked_from(&key).is_none() {
            admitted.insert(key);
        }
    }
    admitted
}

/// The membership's validator keys, in order.
pub fn keys(membership: &Membership) -> Vec<PublicKey> {
    membership.validator_set().validators
}

/// Our index and whether we vote in the epoch of `membership`: a member
/// votes with its node key (unless `may_vote` is false: a restored
/// validator), anyone else follows.
pub fn our_place(
    membership: &Membership,
    roster: &Roster,
    me: u16,
    key: &SigningKey,
) -> (u16, bool) {
    let member = keys(membership).contains(&key.public_key());
    let index = roster.index_of(me).unwrap_or(u16::MAX);
    (index, member)
}

/// What the actor tells its engine about the epoch of `membership`.
pub fn reconfiguration(
    membership: &Membership,
    peers: &[PublicKey],
    me: u16,
    key: &SigningKey,
    may_vote: bool,
) -> Reconfiguration {
    let (epoch, from_height) = membership.epoch();
    let validators = keys(membership);
    let roster = Roster::new(epoch, &validators, peers);
    let (index, member) = our_place(membership, &roster, me, key);
    Reconfiguration {
        epoch,
        from_height,
        validators,
        index,
        key: key.clone(),
        voting: member && may_vote,
    }
}

/// The actor's epoch bookkeeping: the peer table, the roster of the
/// engine's epoch and the next epoch it has told the engine.
#[derive(Debug)]
pub struct Epochs {
    /// The transport's peer table: node keys by peer index (module doc).
    peers: Vec<PublicKey>,
    /// Our peer index.
    me: u16,
    key: SigningKey,
    /// False for a validator restored from a backup (it never votes until
    /// `lotline resume-voting` and a restart).
    may_vote: bool,
    /// Dial addresses the operator configured (`[p2p] peers`), before the
    /// chain's `p2p` hints.
    addrs: BTreeMap<PublicKey, Multiaddr>,
    roster: Roster,
    /// The next epoch last told to the engine: number, first height, set.
    told: Option<(u64, u64, Vec<PublicKey>)>,
    /// The peer table last given to the transport.
    sent: Vec<Peer>,
}

impl Epochs {
    /// Bookkeeping for an engine that starts in the epoch of `current`,
    /// with the genesis keys and ours in the peer table ([`Epochs::peers`]
    /// adds the rest).
    pub fn new(
        genesis: &Genesis,
        key: SigningKey,
        may_vote: bool,
        addrs: BTreeMap<PublicKey, Multiaddr>,
        current: &Membership,
    ) -> Epochs {
        let mut peers: Vec<PublicKey> = genesis.validators().iter().map(|v| v.node_key).collect();
        if !peers.contains(&key.public_key()) {
            peers.push(key.public_key());
        }
        let me = peers
            .iter()
            .position(|k| *k == key.public_key())
            .and_then(|i| u16::try_from(i).ok())
            .unwrap_or(u16::MAX);
        let roster = Roster::new(current.epoch().0, &keys(current), &peers);
        Epochs {
            peers,
            me,
            key,
            may_vote,
            addrs,
            roster,
            told: None,
            sent: Vec::new(),
        }
    }

    /// Our peer index.
    pub fn me(&self) -> u16 {
        self.me
    }

    /// What the engine starts with in the epoch of `current` (an engine
    /// config's epoch, validators, index, voting).
    pub fn start(&self, current: &Membership) -> Reconfiguration {
        reconfiguration(current, &self.peers, self.me, &self.key, self.may_vote)
    }

    pub fn roster(&self) -> &Roster {
        &self.roster
    }

    /// Adds the `admitted` keys the table lacks, in chain order (module
    /// doc, "The peer table"), and maps the roster over them. Only an
    /// admitted key needs an index (a validator no peer is has an engine
    /// index and no peer), so the table of a node that starts holds the
    /// genesis keys, ours and the keys admitted since: it stays within
    /// the transport's bound however many keys the chain retired.
    fn learn(&mut self, genesis: &Genesis, history: &History, admitted: &BTreeSet<PublicKey>) {
        let before = self.peers.len();
        for (key, _) in node_keys(genesis, history) {
            if admitted.contains(&key) && !self.peers.contains(&key) {
                self.peers.push(key);
            }
        }
        if self.peers.len() != before {
            let epoch = self.roster.epoch;
            let validators = history.epoch(epoch).map(|m| keys(&m)).unwrap_or_default();
            self.roster = Roster::new(epoch, &validators, &self.peers);
        }
    }

    /// The peer table for the transport while the engine is in `epoch`
    /// and `height` is the next to commit: every key, each admitted or
    /// not ([`admitted`]), with its address (the operator's, else the
    /// chain's hint). `None` if it is the table the transport has.
    pub fn peers(
        &mut self,
        genesis: &Genesis,
        history: &History,
        epoch: u64,
        height: u64,
    ) -> Option<Vec<Peer>> {
        let admitted = admitted(genesis, history, epoch, height);
        self.learn(genesis, history, &admitted);
        let validators: BTreeSet<PublicKey> = [epoch, epoch + 1]
            .into_iter()
            .filter_map(|number| history.epoch(number))
            .flat_map(|membership| keys(&membership))
            .collect();
        let hints: BTreeMap<PublicKey, Option<String>> = node_keys(genesis, history)
            .into_iter()
            .map(|(key, facts)| (key, facts.p2p))
            .collect();
        let table: Vec<Peer> = self
            .peers
            .iter()
            .enumerate()
            .map(|(index, key)| {
                let hint = hints.get(key).cloned().flatten();
                Peer {
                    index: u16::try_from(index).unwrap_or(u16::MAX),
                    key: *key,
                    addr: self
                        .addrs
                        .get(key)
                        .cloned()
                        .or_else(|| hint.and_then(|h| h.parse().ok())),
                    admitted: usize::from(self.me) == index || admitted.contains(key),
                    validator: validators.contains(key),
                }
            })
            .collect();
        if table == self.sent {
            return None;
        }
        self.sent = table.clone();
        Some(table)
    }

    /// The transport did not take the last table: give it again.
    pub fn forget_sent(&mut self) {
        self.sent.clear();
    }

    /// Follows the engine into epoch `epoch` (it switched when it committed
    /// the boundary block): the roster becomes that epoch's.
    pub fn follow(&mut self, epoch: u64, history: &History) {
        if self.roster.epoch == epoch {
            return;
        }
        if let Some(membership) = history.epoch(epoch) {
            let validators = keys(&membership);
            self.roster = Roster::new(epoch, &validators, &self.peers);
            tracing::info!(epoch, validators = validators.len(), "entered a new epoch");
        }
    }

    /// The epoch after the engine's (`engine_epoch`), once committed
    /// governance makes one and unless the engine has been told it as it
    /// stands. Told again when a later change of the same boundary alters
    /// it (the engine takes the latest until it reaches the boundary).
    pub fn owed(&mut self, history: &History, engine_epoch: u64) -> Option<Reconfiguration> {
        let next = history.epoch(engine_epoch + 1)?;
        let told = (next.epoch().0, next.epoch().1, keys(&next));
        if self.told.as_ref() == Some(&told) {
            return None;
        }
        self.told = Some(told);
        Some(reconfiguration(
            &next,
            &self.peers,
            self.me,
            &self.key,
            self.may_vote,
        ))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn key(seed: u8) -> PublicKey {
        SigningKey::from_seed(&[seed; 32]).public_key()
    }

    /// Four orgs, each running one validator (node keys seeds 1..=4,
    /// client keys seeds 11..=14), epochs of 4.
    pub(crate) fn four_orgs() -> Genesis {
        let mut toml = String::from(
            "chain_name = \"t\"\n[consensus]\nblock_max_attestations = 100\nblock_interval_ms = 10\ntimeout_base_ms = 100\ntimeout_max_ms = 1000\nepoch_blocks = 4\n",
        );
        for i in 1..=4u8 {
            let client = SigningKey::from_seed(&[10 + i; 32]).public_key().to_hex();
            toml += &format!(
                "[[orgs]]\nid = \"o{i}\"\nname = \"O{i}\"\nrole = \"distributor\"\nclient_keys = [\"{client}\"]\n"
            );
        }
        for i in 1..=4u8 {
            toml += &format!(
                "[[validators]]\norg = \"o{i}\"\nnode_key = \"{}\"\np2p = \"/ip4/127.0.0.1/tcp/{}\"\n",
                key(i).to_hex(),
                7100 + u16::from(i)
            );
        }
        Genesis::from_toml(&toml).unwrap()
    }

    /// Records `change` at `height`, signed by orgs o1..o3 (q = 3 of 4).
    pub(crate) fn record(history: &mut History, height: u64, nonce: &str, change: Change) {
        use lotline_genesis::governance::{self, Proposal};
        let mut envelope = governance::unsigned(&Proposal {
            version: governance::VERSION,
            chain_id: history.genesis().chain_id(),
            effective_height: 0,
            nonce: nonce.into(),
            reason: String::new(),
            change,
        });
        for i in 1..=3u8 {
            governance::add_signature(&mut envelope, &SigningKey::from_seed(&[10 + i; 32]));
        }
        history.record(height, 0, &envelope).unwrap();
    }

    /// Goal (module doc, "Who is admitted"): around a boundary the union
    /// of both epochs' validators; after it the new set and the followers
    /// (a removed validator of a member org), not a key a rotation
    /// replaced; an org that leaves takes its follower with it. The peer
    /// table gains a key when it is first admitted, with the chain's `p2p`
    /// hint (a rotated key's successor inherits its predecessor's).
    #[test]
    fn admission_follows_the_epochs() {
        let genesis = std::sync::Arc::new(four_orgs());
        let mut history = History::new(genesis.clone());
        let (added, rotated) = (key(5), key(6));
        record(
            &mut history,
            2,
            "remove",
            Change::RemoveValidator { node_key: key(2) },
        );
        record(
            &mut history,
            2,
            "rotate",
            Change::RotateNodeKey {
                old_key: key(3),
                new_key: rotated,
            },
        );
        record(
            &mut history,
            3,
            "add",
            Change::AddValidator {
                org: "o4".into(),
                node_key: added,
                p2p: Some("/ip4/127.0.0.1/tcp/7105".into()),
            },
        );
        assert_eq!(history.epoch(1).map(|m| m.epoch().1), Some(8));
        let set = |keys: &[PublicKey]| keys.iter().copied().collect::<BTreeSet<_>>();

        // Epoch 0 with epoch 1 announced: everyone of both.
        let around = admitted(&genesis, &history, 0, 4);
        assert_eq!(
            around,
            set(&[key(1), key(2), key(3), key(4), rotated, added])
        );
        // In epoch 1: its set and the removed validator (o2 is a member);
        // the replaced key is out.
        let after = admitted(&genesis, &history, 1, 9);
        assert_eq!(after, set(&[key(1), key(2), key(4), rotated, added]));
        assert_eq!(
            retirement(&genesis, &history, &key(3)),
            Some(Retired {
                from: 8,
                change: "rotateNodeKey",
                successor: Some(rotated)
            }),
            "retired at the boundary; the new key signs for it"
        );
        assert_eq!(
            retirement(&genesis, &history, &key(2)),
            None,
            "a follower now"
        );
        // Its node key revoked, the removed validator no longer follows.
        let mut revoking = history.clone();
        record(
            &mut revoking,
            9,
            "revoke",
            Change::RevokeKey { key: key(2) },
        );
        assert!(!admitted(&genesis, &revoking, 1, 10).contains(&key(2)));
        // o2 leaves: its removed validator no longer follows.
        record(
            &mut history,
            9,
            "leave",
            Change::RemoveOrg { org: "o2".into() },
        );
        let gone = admitted(&genesis, &history, 1, 10);
        assert_eq!(gone, set(&[key(1), key(4), rotated, added]));

        // The table: genesis keys, then the new keys as first admitted.
        let signing = SigningKey::from_seed(&[1; 32]);
        let current = history.at(9);
        let mut epochs = Epochs::new(&genesis, signing, true, BTreeMap::new(), &current);
        let table = epochs.peers(&genesis, &history, 1, 10).unwrap();
        let keys: Vec<PublicKey> = table.iter().map(|p| p.key).collect();
        assert_eq!(keys, [key(1), key(2), key(3), key(4), rotated, added]);
        let admitted: Vec<bool> = table.iter().map(|p| p.admitted).collect();
        assert_eq!(admitted, [true, false, false, true, true, true]);
        let validators: Vec<bool> = table.iter().map(|p| p.validator).collect();
        assert_eq!(validators, [true, false, false, true, true, true]);
        // In epoch 0, o2 still a member: the removed validator follows
        // (admitted) but is a validator only until the boundary.
        let mut earlier = Epochs::new(
            &genesis,
            SigningKey::from_seed(&[1; 32]),
            true,
            BTreeMap::new(),
            &history.at(4),
        );
        let table = earlier.peers(&genesis, &history, 1, 9).unwrap();
        let flags: Vec<(bool, bool)> = table.iter().map(|p| (p.admitted, p.validator)).collect();
        assert_eq!(
            flags,
            [
                (true, true),
                (true, false),
                (false, false),
                (true, true),
                (true, true),
                (true, true)
            ]
        );
        assert_eq!(
            table[4].addr,
            Some("/ip4/127.0.0.1/tcp/7103".parse().unwrap()),
            "the rotated key inherits the hint"
        );
        assert_eq!(epochs.peers(&genesis, &history, 1, 10), None, "unchanged");
        assert_eq!(epochs.roster().index_of(4), Some(1));
    }

    /// Goal (module doc, "Who is admitted"): a follower node voted in by
    /// `addNode` is admitted from the change's effect height (the next
    /// height, no epoch boundary), enters the peer table with its `p2p`
    /// hint as a non-validator, and is dropped from the effect height of
    /// its `removeNode` on, by every node alike.
    #[test]
    fn followers_are_admitted_from_their_height_until_removed() {
        let genesis = std::sync::Arc::new(four_orgs());
        let mut history = History::new(genesis.clone());
        let follower = key(7);
        record(
            &mut history,
            2,
            "add-node",
            Change::AddNode {
                org: "o4".into(),
                node_key: follower,
                p2p: Some("/ip4/127.0.0.1/tcp/7107".into()),
            },
        );
        assert!(history.epoch(1).is_none(), "no new epoch");
        assert!(!admitted(&genesis, &history, 0, 2).contains(&follower));
        assert!(admitted(&genesis, &history, 0, 3).contains(&follower));
        assert_eq!(org_of(&genesis, &history, &follower).as_deref(), Some("o4"));

        let signing = SigningKey::from_seed(&[1; 32]);
        let mut epochs = Epochs::new(&genesis, signing, true, BTreeMap::new(), &history.at(3));
        let table = epochs.peers(&genesis, &history, 0, 3).unwrap();
        let entry = table.iter().find(|p| p.key == follower).unwrap();
        assert_eq!((entry.admitted, entry.validator), (true, false));
        assert_eq!(entry.addr, Some("/ip4/127.0.0.1/tcp/7107".parse().unwrap()));
        assert_eq!(
            epochs.roster().index_of(entry.index),
            Some(4),
            "above the set"
        );

        record(
            &mut history,
            5,
            "remove-node",
            Change::RemoveNode { node_key: follower },
        );
        assert!(admitted(&genesis, &history, 0, 5).contains(&follower));
        assert!(!admitted(&genesis, &history, 0, 6).contains(&follower));
        let table = epochs.peers(&genesis, &history, 0, 6).unwrap();
        let entry = table.iter().find(|p| p.key == follower).unwrap();
        assert!(!entry.admitted, "disconnected and refused");
        assert_eq!(
            retirement(&genesis, &history, &follower),
            Some(Retired {
                from: 6,
                change: "removeNode",
                successor: None
            })
        );
        assert_eq!(retirement(&genesis, &history, &key(1)), None);

        // A follower the genesis lists is admitted from the first height,
        // with its hint, until a vote removes it.
        let listed = format!(
            "{}[[followers]]\norg = \"o2\"\nnode_key = \"{}\"\np2p = \"/ip4/127.0.0.1/tcp/7108\"\n",
            four_orgs().to_toml(),
            key(8).to_hex()
        );
        let genesis = std::sync::Arc::new(Genesis::from_toml(&listed).unwrap());
        let mut history = History::new(genesis.clone());
        assert!(admitted(&genesis, &history, 0, 1).contains(&key(8)));
        let mut epochs = Epochs::new(
            &genesis,
            SigningKey::from_seed(&[1; 32]),
            true,
            BTreeMap::new(),
            &history.at(1),
        );
        let table = epochs.peers(&genesis, &history, 0, 1).unwrap();
        let entry = table.iter().find(|p| p.key == key(8)).unwrap();
        assert_eq!((entry.admitted, entry.validator), (true, false));
        assert_eq!(entry.addr, Some("/ip4/127.0.0.1/tcp/7108".parse().unwrap()));
        record(
            &mut history,
            3,
            "remove-listed",
            Change::RemoveNode { node_key: key(8) },
        );
        assert!(!admitted(&genesis, &history, 0, 4).contains(&key(8)));
    }

    /// Goal: every peer has one engine index per epoch and back; removed
    /// validators follow above the set; a validator no peer is has an
    /// index and no peer.
    #[test]
    fn peers_map_to_the_epochs_indices_and_back() {
        let peers = [key(1), key(2), key(3), key(4)];
        let same = Roster::new(0, &peers, &peers);
        for p in 0..4 {
            assert_eq!(same.index_of(p), Some(p));
            assert_eq!(same.peer_of(p), Some(p));
        }
        // Validator 1 removed: 0, 2, 3 become 0, 1, 2; peer 1 follows at 3.
        let three = Roster::new(1, &[key(1), key(3), key(4)], &peers);
        assert_eq!(
            (0..4).map(|p| three.index_of(p)).collect::<Vec<_>>(),
            [Some(0), Some(3), Some(1), Some(2)]
        );
        assert_eq!(three.peer_of(3), Some(1));
        assert_eq!(three.peer_of(4), None);
        // A fifth validator with a key no peer has.
        let five = Roster::new(2, &[key(1), key(2), key(3), key(4), key(5)], &peers);
        assert_eq!(five.index_of(3), Some(3));
        assert_eq!(five.peer_of(4), None);
        assert_eq!(five.index_of(9), None);
    }
}
