//! The simulated network: per-message delay (and so reordering), loss,
//! duplication, and partitions that heal. One [`NetworkOptions`] is drawn
//! per seed.

use std::collections::BTreeSet;

use crate::sim::rng::Rng;

#[derive(Clone, Debug, PartialEq)]
pub struct NetworkOptions {
    pub delay_min_ms: u64,
    pub delay_max_ms: u64,
    /// Probability that a message is lost.
    pub drop: f64,
    /// Probability that a message is delivered twice.
    pub duplicate: f64,
    /// Mean gap between partitions; `None`: no partitions.
    pub partition_gap_ms: Option<u64>,
    pub partition_max_ms: u64,
}

impl NetworkOptions {
    pub fn draw(rng: &mut Rng) -> NetworkOptions {
        let delay_min_ms = rng.range(1, 20);
        let delay_max_ms = delay_min_ms + rng.range(0, 250);
        let drop = if rng.chance(0.3) {
            0.0
        } else {
            rng.range(1, 150) as f64 / 1000.0
        };
        let duplicate = if rng.chance(0.5) {
            0.0
        } else {
            rng.range(1, 100) as f64 / 1000.0
        };
        let partition_gap_ms = rng.chance(0.6).then(|| rng.range(500, 4000));
        NetworkOptions {
            delay_min_ms,
            delay_max_ms,
            drop,
            duplicate,
            partition_gap_ms,
            partition_max_ms: rng.range(200, 3000),
        }
    }

    /// The network of the liveness phase: same latency floor, bounded
    /// jitter, nothing lost, no partitions.
    pub fn healed(&self) -> NetworkOptions {
        NetworkOptions {
            delay_min_ms: self.delay_min_ms,
            delay_max_ms: self.delay_max_ms.min(self.delay_min_ms + 50),
            drop: 0.0,
            duplicate: 0.0,
            partition_gap_ms: None,
            partition_max_ms: 0,
        }
    }
}

#[derive(Debug)]
pub struct Network {
    pub options: NetworkOptions,
    /// The side of each node while partitioned.
    partition: Option<Vec<bool>>,
    /// (from, to): `from` has no connection to `to`, so its transport drops
    /// what it sends there (the node's "frame dropped: peer not ready"):
    /// both ways from a node's crash until each end's transport reports
    /// the reconnection ([`Network::connect`], `Input::PeerConnected`). A
    /// restarted node's first broadcasts are lost this way, as they are
    /// on libp2p before its dials complete.
    unconnected: BTreeSet<(u16, u16)>,
    pub sent: u64,
    pub lost: u64,
}

impl Network {
    pub fn new(options: NetworkOptions) -> Network {
        Network {
            options,
            partition: None,
            unconnected: BTreeSet::new(),
            sent: 0,
            lost: 0,
        }
    }

    /// The delays after which a message from `from` reaches `to`: none if it
    /// is lost, two if it is duplicated.
    pub fn route(&mut self, rng: &mut Rng, from: u16, to: u16) -> Vec<u64> {
        self.sent += 1;
        if self.unconnected.contains(&(from, to)) {
            self.lost += 1;
            return Vec::new();
        }
        let cut = self
            .partition
            .as_ref()
            .is_some_and(|side| side[usize::from(from)] != side[usize::from(to)]);
        if cut || rng.chance(self.options.drop) {
            self.lost += 1;
            return Vec::new();
        }
        let mut delays = vec![rng.range(self.options.delay_min_ms, self.options.delay_max_ms)];
        if rng.chance(self.options.duplicate) {
            delays.push(rng.range(self.options.delay_min_ms, self.options.delay_max_ms));
        }
        delays
    }

    /// `node` crashed: every connection to and from it is gone.
    pub fn disconnect(&mut self, node: u16, n: usize) {
        for other in (0..n as u16).filter(|other| *other != node) {
            self.unconnected.insert((node, other));
            self.unconnected.insert((other, node));
        }
    }

    /// Whether `from` has a connection to `to` (a partition cuts links, it
    /// does not close connections).
    pub fn connected(&self, from: u16, to: u16) -> bool {
        !self.unconnected.contains(&(from, to))
    }

    /// `from`'s transport reports its connection to `to`.
    pub fn connect(&mut self, from: u16, to: u16) {
        self.unconnected.remove(&(from, to));
    }

    /// Splits the nodes into two non-empty sides.
    pub fn partition(&mut self, rng: &mut Rng, n: usize) {
        if n < 2 {
            return;
        }
        let mut side: Vec<bool> = (0..n).map(|_| rng.chance(0.5)).collect();
        if side.iter().all(|s| *s) || side.iter().all(|s| !*s) {
            let flip = rng.below(n as u64) as usize;
            side[flip] = !side[flip];
        }
        self.partition = Some(side);
    }

    /// Cuts the network along the given sides (`true` and `false`).
    pub fn split(&mut self, side: Vec<bool>) {
        self.partition = Some(side);
    }

    /// The pairs of nodes the current partition cuts apart.
    pub fn cut_pairs(&self) -> Vec<(u16, u16)> {
        let Some(side) = &self.partition else {
            return Vec::new();
        };
        let n = side.len() as u16;
        let mut pairs = Vec::new();
        for a in 0..n {
            for b in a + 1..n {
                if side[usize::from(a)] != side[usize::from(b)] {
                    pairs.push((a, b));
                }
            }
        }
        pairs
    }

    pub fn heal_partition(&mut self) {
        self.partition = None;
    }

    pub fn is_partitioned(&self) -> bool {
        self.partition.is_some()
    }

    /// Liveness phase: no more faults.
    pub fn heal(&mut self) {
        self.options = self.options.healed();
        self.partition = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_cut_only_across_sides_and_heal() {
        let mut rng = Rng::new(3);
        let options = NetworkOptions {
            drop: 0.0,
            duplicate: 0.0,
            ..NetworkOptions::draw(&mut rng)
        };
        let mut network = Network::new(options);
        network.partition(&mut rng, 4);
        let side = network.partition.clone().unwrap();
        for from in 0..4u16 {
            for to in 0..4u16 {
                let delivered = !network.route(&mut rng, from, to).is_empty();
                assert_eq!(delivered, side[usize::from(from)] == side[usize::from(to)]);
            }
        }
        network.heal();
        assert!(!network.route(&mut rng, 0, 3).is_empty());
    }
}
