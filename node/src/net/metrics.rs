//! Transport counters, shared between the swarm task, the codec and every
//! handle, registered in the node's `/metrics` ([`NetMetrics::register`]).
//! Names follow `lotline_net_<noun>_<unit>`.

use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// A monotonically increasing count (`prometheus-client`'s; clones share
/// the value).
pub type Counter = prometheus_client::metrics::counter::Counter;

/// Every transport counter. One instance per [`crate::net::Network`].
#[derive(Debug, Default)]
pub struct NetMetrics {
    /// Consensus frames delivered to the node.
    pub frames_in: Counter,
    /// Consensus frames handed to a connection (one per peer for a broadcast).
    pub frames_out: Counter,
    /// Frames dropped because the command queue was full.
    pub frames_dropped_queue_full: Counter,
    /// Frames dropped because the peer was not connected or too many
    /// records already waited for its stream (unacknowledged frames, for a
    /// peer of an earlier version); also gossip its writer held when the
    /// connection went. Gossip refused by a full stream queue is counted in
    /// `gossip_dropped_slow_peer`.
    pub frames_dropped_peer: Counter,
    /// Outgoing records (frames, and gossip on the stream) that failed:
    /// timeout, a stream that broke or that the peer reset, refused by it.
    pub frames_failed: Counter,
    /// Inbound events (frames, gossip, sync requests) dropped because the
    /// node's event queue was full.
    pub events_dropped_queue_full: Counter,
    /// Frames over the cap, in either direction, refused by the codec or
    /// before sending.
    pub oversized_frames: Counter,
    /// Connections refused because the remote is not a genesis validator, or
    /// is on another chain.
    pub rejected_peers: Counter,
    /// Frames, requests or gossip attributed to a peer id outside the allow
    /// list that got past it (should stay 0: defence in depth).
    pub unknown_peer_messages: Counter,
    /// Gossip messages delivered to the node.
    pub gossip_in: Counter,
    /// Gossip messages published.
    pub gossip_out: Counter,
    /// Items packed into gossip messages: over `gossip_out` (and
    /// `gossip_failed`), how many items the swarm task packs to a message.
    pub gossip_items_out: Counter,
    /// Gossip messages refused because they do not decode as a list of
    /// items (a peer on another version, or a faulty one).
    pub malformed_gossip: Counter,
    /// Gossip publishes that failed (no subscribed peer yet, duplicate, ...).
    pub gossip_failed: Counter,
    /// Gossip messages dropped because a peer's send queue was full (a slow
    /// or frozen peer; it catches up through block sync).
    pub gossip_dropped_slow_peer: Counter,
    /// Sync requests sent and received.
    pub sync_requests_out: Counter,
    pub sync_requests_in: Counter,
    /// Dial attempts (initial and re-dials).
    pub dials: Counter,
    /// Connections closed because their pings failed (a partition, a
    /// frozen peer).
    pub ping_failures: Counter,
    /// Validators (of the epoch in force or the next) we are connected to
    /// now; followers are not counted.
    pub connected_peers: Gauge,
    /// The other validators of the epoch in force or the next:
    /// connected_peers below this means a peer is down or unreachable.
    pub validator_peers: Gauge,
}

impl NetMetrics {
    /// Registers every counter and gauge in the node's registry.
    pub fn register(&self, registry: &mut Registry) {
        let counters: [(&str, &str, &Counter); 19] = [
            (
                "lotline_net_frames_in",
                "Consensus frames received from validators",
                &self.frames_in,
            ),
            (
                "lotline_net_frames_out",
                "Consensus frames sent to validators",
                &self.frames_out,
            ),
            (
                "lotline_net_frames_dropped_queue_full",
                "Outgoing frames dropped because the command queue was full",
                &self.frames_dropped_queue_full,
            ),
            (
                "lotline_net_frames_dropped_peer",
                "Outgoing frames dropped because the peer was not connected or had too many in flight",
                &self.frames_dropped_peer,
            ),
            (
                "lotline_net_frames_failed",
                "Outgoing frames that failed in transit",
                &self.frames_failed,
            ),
            (
                "lotline_net_events_dropped_queue_full",
                "Inbound frames, gossip or requests dropped because the node's queue was full",
                &self.events_dropped_queue_full,
            ),
            (
                "lotline_net_oversized_frames",
                "Frames refused for being over the size cap",
                &self.oversized_frames,
            ),
            (
                "lotline_net_rejected_peers",
                "Connections refused because the peer is not a validator of this chain",
                &self.rejected_peers,
            ),
            (
                "lotline_net_unknown_peer_messages",
                "Messages from peers outside the allow list (should be 0)",
                &self.unknown_peer_messages,
            ),
            (
                "lotline_net_gossip_in",
                "Gossip messages received",
                &self.gossip_in,
            ),
            (
                "lotline_net_gossip_out",
                "Gossip messages published",
                &self.gossip_out,
            ),
            (
                "lotline_net_gossip_items_out",
                "Items (attestations) packed into gossip messages",
                &self.gossip_items_out,
            ),
            (
                "lotline_net_malformed_gossip",
                "Gossip messages refused because they do not decode",
                &self.malformed_gossip,
            ),
            (
                "lotline_net_gossip_failed",
                "Gossip publishes that failed",
                &self.gossip_failed,
            ),
            (
                "lotline_net_gossip_dropped_slow_peer",
                "Gossip messages dropped because a slow or frozen peer's send queue was full",
                &self.gossip_dropped_slow_peer,
            ),
            (
                "lotline_net_sync_requests_out",
                "Block-sync requests sent",
                &self.sync_requests_out,
            ),
            (
                "lotline_net_sync_requests_in",
                "Block-sync requests received",
                &self.sync_requests_in,
            ),
            (
                "lotline_net_dials",
                "Dial attempts to validators",
                &self.dials,
            ),
            (
                "lotline_net_ping_failures",
                "Connections closed because their pings failed (partition, frozen peer)",
                &self.ping_failures,
            ),
        ];
        for (name, help, counter) in counters {
            registry.register(name, help, counter.clone());
        }
        registry.register(
            "lotline_net_connected_peers",
            "Validators (of the epoch in force or the next) this node is connected to",
            self.connected_peers.clone(),
        );
        registry.register(
            "lotline_net_validator_peers",
            "The other validators of the epoch in force or the next (connected_peers below this: a peer is down)",
            self.validator_peers.clone(),
        );
    }

    /// The OpenMetrics text of these metrics alone (tests of the network
    /// without a node).
    pub fn render(&self) -> String {
        let mut registry = Registry::default();
        self.register(&mut registry);
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_metric_once() {
        let metrics = NetMetrics::default();
        metrics.frames_in.inc_by(3);
        metrics.rejected_peers.inc();
        let text = metrics.render();
        assert!(text.contains("\nlotline_net_frames_in_total 3\n"));
        assert!(text.contains("\nlotline_net_rejected_peers_total 1\n"));
        assert!(text.contains("# TYPE lotline_net_connected_peers gauge"));
        assert_eq!(text.matches("# TYPE ").count(), 21);
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            assert!(line.starts_with("lotline_net_"), "{line}");
        }
    }
}
