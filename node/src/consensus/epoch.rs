//! The node's side of epochs (docs/protocol.md, "Validator-set changes"):
//! which engine config the actor starts in, which `Input::Reconfigure` it
//! owes its engine, and how the transport's peers map to the epoch's
//! validator indices.
//!
//! The transport names peers by their genesis index: a validator's libp2p
//! identity is its genesis node key, and the network admits the genesis
//! validators only. The engine names validators by their position in the
//! epoch's set. An epoch's *roster* (as in the simulator's
//! `sim/roster.rs`) is the epoch's validators in order, followed by every
//! genesis validator that is not one of them, in genesis order: every
//! peer has one engine index per epoch, a non-member's at or above the
//! set's size (its engine follows the chain without voting, and its
//! requests are served). A validator of the epoch whose key is not a
//! genesis node key (added, or rotated, by governance) has an index but no
//! peer: the transport can not reach it yet (not built, see the protocol
//! document's list).

use lotline_consensus::Reconfiguration;
use lotline_core::crypto::{PublicKey, SigningKey};
use lotline_genesis::{History, Membership};

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

/// The actor's epoch bookkeeping: the roster of the engine's epoch and
/// the next epoch it has told the engine.
#[derive(Debug)]
pub struct Epochs {
    /// The transport's peers: the genesis node keys, in order.
    peers: Vec<PublicKey>,
    /// Our peer index (genesis index).
    me: u16,
    key: SigningKey,
    /// False for a validator restored from a backup (it never votes until
    /// `lotline resume-voting` and a restart).
    may_vote: bool,
    roster: Roster,
    /// The next epoch last told to the engine: number, first height, set.
    told: Option<(u64, u64, Vec<PublicKey>)>,
}

impl Epochs {
    /// Bookkeeping for an engine that starts in the epoch of `current`.
    pub fn new(
        peers: Vec<PublicKey>,
        me: u16,
        key: SigningKey,
        may_vote: bool,
        current: &Membership,
    ) -> Epochs {
        let roster = Roster::new(current.epoch().0, &keys(current), &peers);
        Epochs {
            peers,
            me,
            key,
            may_vote,
            roster,
            told: None,
        }
    }

    /// What the engine starts with in the epoch of `current` (an engine
    /// config's epoch, validators, index, voting).
    pub fn start(&self, current: &Membership) -> Reconfiguration {
        reconfiguration(current, &self.peers, self.me, &self.key, self.may_vote)
    }

    pub fn roster(&self) -> &Roster {
        &self.roster
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
mod tests {
    use super::*;

    fn key(seed: u8) -> PublicKey {
        SigningKey::from_seed(&[seed; 32]).public_key()
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
