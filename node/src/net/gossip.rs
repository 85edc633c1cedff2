//! Gossip messages: the items a node gossips (attestation envelopes, opaque
//! here), several to one gossipsub message.
//!
//! Why packed: gossipsub's cost is per message, not per byte. Each message
//! is an RPC, a Yamux frame and a Noise record per peer, a message-id hash,
//! a cache entry, a timer and a validation round trip through the node.
//! With one attestation per message, four validators at saturation spent a
//! quarter of their CPU in gossipsub (docs/performance.md, "Where the four
//! validators' time goes now"). The swarm task packs the items that are
//! queued when it turns to them (`task.rs`), and publishes at most once per
//! [`PACE`]: single submits arriving a millisecond or two apart (one HTTP
//! request each) leave together instead of one message each, while a node
//! that has not gossiped for a [`PACE`] sends an item at once, so a quiet
//! node adds no latency. Held items also leave before any consensus frame,
//! so a proposal that names an attestation by id follows its body.
//!
//! The wire form is postcard's encoding of a list of byte strings:
//! ```text
//! count (varint) | ( length (varint) | bytes )*      count >= 1
//! ```
//! A message is judged whole (forwarded or not), and its id is its content's
//! hash, so a message forwarded by two peers is still taken once.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use lotline_core::codec::{self, DecodeError};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

/// Room kept in a message's `gossip_bytes_max` (gossipsub's
/// `max_transmit_size`, which counts its whole RPC) for gossipsub's own
/// fields around the payload: the topic, the author, the sequence number
/// and their protobuf tags.
pub const RPC_OVERHEAD_BYTES: usize = 1024;

/// One gossiped item, raw bytes in postcard.
#[derive(Serialize, Deserialize)]
struct Item(#[serde(with = "codec::base64_bytes")] Vec<u8>);

/// The payload bytes a message of `gossip_bytes_max` may carry.
fn payload_max(gossip_bytes_max: u32) -> usize {
    usize::try_from(gossip_bytes_max)
        .unwrap_or(usize::MAX)
        .saturating_sub(RPC_OVERHEAD_BYTES)
}

/// Bytes of postcard's varint for `n`.
fn varint_len(n: usize) -> usize {
    let bits = usize::BITS - (n | 1).leading_zeros();
    bits.div_ceil(7) as usize
}

/// Bytes an item of `len` bytes adds to a message: its length and itself.
fn framed_len(len: usize) -> usize {
    varint_len(len) + len
}

/// The smallest `gossip_bytes_max` whose messages hold an item of `len`
/// bytes alone.
pub const fn message_bytes_for(len: usize) -> usize {
    // A count of 1 and a length of at most 5 varint bytes.
    RPC_OVERHEAD_BYTES + 1 + 5 + len
}

/// Whether an item of `len` bytes fits in a message by itself, the
/// condition for gossiping it at all.
pub fn fits_alone(len: usize, gossip_bytes_max: u32) -> bool {
    varint_len(1) + framed_len(len) <= payload_max(gossip_bytes_max)
}

/// The largest item [`fits_alone`] in a message of `gossip_bytes_max`.
pub fn item_bytes_max(gossip_bytes_max: u32) -> usize {
    let room = payload_max(gossip_bytes_max).saturating_sub(varint_len(1));
    // The item's length prefix is no longer than `room`'s.
    let mut len = room.saturating_sub(varint_len(room));
    while fits_alone(len + 1, gossip_bytes_max) {
        len += 1;
    }
    len
}

/// Packs `items`, in order, into as few messages as the size allows: each
/// message holds consecutive items and is at most `gossip_bytes_max` less
/// [`RPC_OVERHEAD_BYTES`]. An item that does not fit alone
/// ([`fits_alone`]; [`super::NetworkHandle::gossip`] refuses those) goes
/// in a message of its own.
pub fn pack(items: Vec<Vec<u8>>, gossip_bytes_max: u32) -> Vec<Vec<u8>> {
    let budget = payload_max(gossip_bytes_max);
    let mut messages = Vec::new();
    let mut message: Vec<Item> = Vec::new();
    let mut framed = 0;
    for item in items {
        let len = framed_len(item.len());
        if !message.is_empty() && varint_len(message.len() + 1) + framed + len > budget {
            messages.push(codec::to_bytes(&message));
            message.clear();
            framed = 0;
        }
        framed += len;
        message.push(Item(item));
    }
    if !message.is_empty() {
        messages.push(codec::to_bytes(&message));
    }
    messages
}

/// The items of a received message, in order. Refuses a message over
/// `gossip_bytes_max`, one that is not a canonical list of byte strings
/// (nothing after it), and an empty one, which no node packs.
pub fn unpack(bytes: &[u8], gossip_bytes_max: u32) -> Result<Vec<Vec<u8>>, DecodeError> {
    let max = usize::try_from(gossip_bytes_max).unwrap_or(usize::MAX);
    let items: Vec<Item> = codec::from_bytes("gossip message", bytes, max)?;
    if items.is_empty() {
        return Err(DecodeError::Malformed {
            what: "gossip message",
            reason: "it holds no items".into(),
        });
    }
    Ok(items.into_iter().map(|item| item.0).collect())
}

/// Least time between two gossip publishes of a node. Short against a
/// consensus round (the most an item waits, and only while the node is
/// busy), long against the gap between a busy node's single submits: at
/// 1,200 single submits/s on four validators it packs three to four items
/// a message (one before) and the commit latency's p99 fell by a fifth to
/// a third (docs/performance.md, session 25).
pub const PACE: Duration = Duration::from_millis(5);

/// When the swarm task may next publish gossip: at once if it has not
/// published for [`PACE`], else when that much has passed since it last
/// did. Items that arrive in between wait and leave packed together.
#[derive(Debug, Default)]
pub struct Pace {
    last: Option<Instant>,
}

impl Pace {
    /// The earliest instant of the next publish.
    pub fn due(&self) -> Instant {
        match self.last {
            Some(last) => last + PACE,
            None => Instant::now(),
        }
    }

    pub fn published(&mut self, at: Instant) {
        self.last = Some(at);
    }
}

/// How long gossip is kept for admitted peers that were not connected
/// when it left: long enough for a node that has just started to meet its
/// peers, or for a dropped connection to come back, and short against the
/// time an attestation waits to be ordered (later, the proposer's answer
/// covers what a voter missed).
pub const BACKLOG_KEPT_FOR: Duration = Duration::from_secs(5);
/// The most gossip bytes kept in the [`Backlog`].
pub const BACKLOG_BYTES_MAX: usize = 16 * 1024 * 1024;

/// Gossip messages some admitted peers missed (they were not connected),
/// each with the peers still owed it, for at most [`BACKLOG_KEPT_FOR`] and
/// [`BACKLOG_BYTES_MAX`] bytes. Without it an attestation submitted right
/// after a start reached no other validator: the others stayed idle, so
/// the view could not change to a leader holding it until the heartbeat
/// (n4f0_commit saw waits of over 24 s, about one run in twenty).
#[derive(Debug, Default)]
pub struct Backlog {
    kept: VecDeque<Owed>,
    bytes: usize,
}

#[derive(Debug)]
struct Owed {
    at: Instant,
    message: Arc<Vec<u8>>,
    /// Bit `i`: peer `i` has not had it.
    peers: u64,
}

impl Backlog {
    /// Keeps `message` for `peers` (a mask of peer indices), forgetting
    /// what is older than [`BACKLOG_KEPT_FOR`] (a peer away for long is not
    /// owed it); drops the oldest past the byte cap and returns how many
    /// messages that dropped.
    pub fn keep(&mut self, at: Instant, message: Arc<Vec<u8>>, peers: u64) -> usize {
        while let Some(oldest) = self.kept.front() {
            if at.duration_since(oldest.at) <= BACKLOG_KEPT_FOR {
                break;
            }
            self.bytes -= oldest.message.len();
            self.kept.pop_front();
        }
        if peers == 0 {
            return 0;
        }
        self.bytes += message.len();
        self.kept.push_back(Owed { at, message, peers });
        let mut dropped = 0;
        while self.bytes > BACKLOG_BYTES_MAX {
            let Some(oldest) = self.kept.pop_front() else {
                break;
            };
            self.bytes -= oldest.message.len();
            dropped += 1;
        }
        dropped
    }

    /// The messages peer `index` is owed, oldest first, now that it
    /// connected; forgets those older than [`BACKLOG_KEPT_FOR`] and those
    /// every peer has had.
    pub fn take_for(&mut self, now: Instant, index: u16) -> Vec<Arc<Vec<u8>>> {
        let bit = 1u64 << index;
        let mut owed = Vec::new();
        for entry in &mut self.kept {
            if entry.peers & bit != 0 && now.duration_since(entry.at) <= BACKLOG_KEPT_FOR {
                owed.push(Arc::clone(&entry.message));
            }
            entry.peers &= !bit;
        }
        let bytes = &mut self.bytes;
        self.kept.retain(|entry| {
            let keep = entry.peers != 0 && now.duration_since(entry.at) <= BACKLOG_KEPT_FOR;
            if !keep {
                *bytes -= entry.message.len();
            }
            keep
        });
        owed
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// The size every test packs to: room for a few small items.
    const SMALL: u32 = (RPC_OVERHEAD_BYTES + 100) as u32;

    #[test]
    fn varint_len_is_postcards() {
        for n in [0usize, 1, 127, 128, 16_383, 16_384, 2_097_151, 2_097_152] {
            let encoded = codec::to_bytes(&(n as u64));
            assert_eq!(varint_len(n), encoded.len(), "{n}");
        }
    }

    #[test]
    fn the_largest_item_is_the_last_that_fits_alone() {
        for max in [0, 1_000, SMALL, 1_151, 1_152, 17_410, 530_000] {
            let largest = item_bytes_max(max);
            assert!(largest == 0 || fits_alone(largest, max), "{max}");
            assert!(!fits_alone(largest + 1, max), "{max}");
        }
    }

    #[test]
    fn an_item_that_fits_alone_is_sent_alone_and_a_larger_one_is_not_allowed() {
        let max = message_bytes_for(500) as u32;
        assert!(fits_alone(500, max));
        assert!(!fits_alone(600, max));
        let messages = pack(vec![vec![7; 500]], max);
        assert_eq!(messages.len(), 1);
        assert!(messages[0].len() + RPC_OVERHEAD_BYTES <= max as usize);
        assert_eq!(unpack(&messages[0], max).unwrap(), vec![vec![7; 500]]);
    }

    #[test]
    fn malformed_messages_are_refused_with_a_reason() {
        let empty = codec::to_bytes(&Vec::<Item>::new());
        let reason = unpack(&empty, SMALL).unwrap_err().to_string();
        assert!(reason.contains("holds no items"), "{reason}");

        let one = pack(vec![b"attestation".to_vec()], SMALL).remove(0);
        let truncated = &one[..one.len() - 1];
        assert!(matches!(
            unpack(truncated, SMALL),
            Err(DecodeError::Malformed { .. })
        ));
        let mut trailing = one.clone();
        trailing.push(0);
        assert!(matches!(
            unpack(&trailing, SMALL),
            Err(DecodeError::Trailing { .. })
        ));
        // A count of one written in two bytes: one value, one encoding.
        let mut overlong = vec![0x81, 0x00];
        overlong.extend_from_slice(&one[1..]);
        assert!(unpack(&overlong, SMALL).is_err());
        let large = vec![0; 2 * SMALL as usize];
        assert!(matches!(
            unpack(&large, SMALL),
            Err(DecodeError::TooLarge { .. })
        ));
        // A count far beyond the bytes present allocates nothing large.
        assert!(unpack(&[0xff, 0xff, 0xff, 0xff, 0x0f], SMALL).is_err());
    }

    proptest! {
        #[test]
        fn packing_keeps_every_item_in_order_within_the_size(
            items in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..200), 0..60),
            max in (RPC_OVERHEAD_BYTES as u32 + 210)..(RPC_OVERHEAD_BYTES as u32 + 3_000),
        ) {
            let messages = pack(items.clone(), max);
            let mut unpacked = Vec::new();
            for (i, message) in messages.iter().enumerate() {
                prop_assert!(message.len() <= payload_max(max));
                let these = unpack(message, max).unwrap();
                // Greedy: the next message's first item did not fit here.
                if let Some(next) = messages.get(i + 1) {
                    let first = unpack(next, max).unwrap().remove(0);
                    prop_assert!(message.len() + framed_len(first.len()) + 1 > payload_max(max));
                }
                unpacked.extend(these);
            }
            prop_assert_eq!(unpacked, items);
        }

        #[test]
        fn unpack_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
            let _ = unpack(&bytes, SMALL);
        }
    }

    #[test]
    fn a_peer_that_connects_gets_what_it_missed_once_and_in_order() {
        let mut backlog = Backlog::default();
        let at = Instant::now();
        let (a, b) = (Arc::new(b"a".to_vec()), Arc::new(b"b".to_vec()));
        assert_eq!(backlog.keep(at, Arc::clone(&a), 0b0110), 0);
        assert_eq!(backlog.keep(at, Arc::clone(&b), 0b0100), 0);
        assert_eq!(backlog.keep(at, Arc::new(b"none".to_vec()), 0), 0);
        assert_eq!(backlog.take_for(at, 2), [Arc::clone(&a), b]);
        assert!(backlog.take_for(at, 2).is_empty());
        assert_eq!(backlog.take_for(at, 1), [a]);
        assert!(backlog.kept.is_empty());
        assert_eq!(backlog.bytes, 0);
    }

    #[test]
    fn gossip_older_than_the_window_is_forgotten() {
        let mut backlog = Backlog::default();
        let at = Instant::now();
        backlog.keep(at, Arc::new(b"old".to_vec()), 0b10);
        let later = at + BACKLOG_KEPT_FOR + Duration::from_millis(1);
        assert!(backlog.take_for(later, 1).is_empty());
        assert!(backlog.kept.is_empty());
        assert_eq!(backlog.bytes, 0);
    }

    #[test]
    fn a_peer_away_for_long_is_not_owed_old_gossip() {
        let mut backlog = Backlog::default();
        let at = Instant::now();
        backlog.keep(at, Arc::new(b"old".to_vec()), 0b10);
        let later = at + BACKLOG_KEPT_FOR + Duration::from_millis(1);
        // Keeping anything later forgets it: no count, it was not refused.
        assert_eq!(backlog.keep(later, Arc::new(b"new".to_vec()), 0b100), 0);
        assert_eq!(backlog.kept.len(), 1);
        assert_eq!(backlog.bytes, 3);
        assert!(backlog.take_for(later, 1).is_empty());
    }

    #[test]
    fn the_backlog_drops_the_oldest_past_its_byte_cap() {
        let mut backlog = Backlog::default();
        let at = Instant::now();
        let big = Arc::new(vec![0; BACKLOG_BYTES_MAX / 2]);
        assert_eq!(backlog.keep(at, Arc::new(b"first".to_vec()), 0b10), 0);
        assert_eq!(backlog.keep(at, Arc::clone(&big), 0b10), 0);
        assert_eq!(backlog.keep(at, Arc::clone(&big), 0b10), 1);
        assert!(backlog.bytes <= BACKLOG_BYTES_MAX);
        assert_eq!(backlog.take_for(at, 1).len(), 2);
    }

    #[test]
    fn a_node_that_has_not_gossiped_publishes_at_once() {
        let pace = Pace::default();
        assert!(pace.due() <= Instant::now());
    }

    #[test]
    fn after_a_publish_the_next_waits_one_pace() {
        let mut pace = Pace::default();
        let at = Instant::now();
        pace.published(at);
        assert_eq!(pace.due(), at + PACE);
        let later = at + 3 * PACE;
        pace.published(later);
        assert_eq!(pace.due(), later + PACE);
    }
}
