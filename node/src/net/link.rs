//! Consensus frames and mempool gossip over one long-lived stream per peer
//! and direction (`/lotline/consensus/2`).
//!
//! Request-response (`/lotline/consensus/1`) opened a stream, negotiated it,
//! waited for an empty ack and armed a timer for every frame, and every
//! frame crossed both swarm tasks: at four validators, twelve frames a
//! block per validator, that was most of the transport's CPU and, on a busy
//! runtime, about 5 ms a hop (docs/performance.md, session 26). gossipsub
//! delivered each gossip message about three times to every validator (its
//! author's copy and the mesh's forwards) and added its own control
//! messages. Here a [`Writer`] task per peer opens one stream and writes
//! [`Record`]s into it as they come, several at once when they queue up;
//! on the other side a reader task per inbound stream hands each record to
//! the node directly. A validator's gossip reaches each peer once, from its
//! author, on the stream its consensus frames take: the bodies gossiped
//! before a proposal arrive before it.
//!
//! A record on the stream is a `u32` big-endian length, then a kind byte
//! ([`Kind`]), then the frame or the packed gossip message ([`super::gossip`]).
//!
//! The reader sends back, every [`ACK_EVERY`] records, how many it has
//! read (a `u64` big-endian), on the stream's other direction.
//!
//! Delivery stays fire-and-forget, with the same bounds:
//! - at most [`super::NetConfig::frames_in_flight_max`] records are written
//!   and not yet acknowledged, and as many more wait for the writer; more
//!   are dropped (and counted), as consensus retransmits and a voter
//!   fetches the bodies it misses from the proposer. So a peer that stops
//!   reading (frozen, partitioned) finds at most that many stale records
//!   when it resumes, not a whole yamux window of them to verify and
//!   discard before its catch-up (without the acknowledgements the chaos
//!   harness measured 10 s to catch up after a 7 s freeze, 1.8–2.3 s with
//!   request-response);
//! - a write or a stream opening that takes longer than
//!   [`super::NetConfig::request_timeout`] fails the records (counted),
//!   and the stream is opened again for the next ones; so does a stream the
//!   peer closed or reset (it refused a record);
//! - a peer that does not speak `/lotline/consensus/2` (a node of an
//!   earlier version, during a rolling upgrade) is marked, and frames to it
//!   go by request-response and gossip by gossipsub until it reconnects;
//! - inbound records are capped by [`super::NetConfig::frame_bytes_max`]
//!   or [`super::NetConfig::gossip_bytes_max`] by kind, refused on the
//!   length prefix and kind byte, and a peer may hold at most
//!   [`INBOUND_STREAMS_PER_PEER_MAX`] streams open at once.

use std::collections::HashMap;
use std::io;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures::{AsyncRead, AsyncReadExt, AsyncWriteExt, StreamExt};
use libp2p::identity::PeerId;
use libp2p::{Stream, StreamProtocol};
use libp2p_stream::{Control, IncomingStreams, OpenStreamError};
use tokio::sync::mpsc;

use super::{Command, GossipId, NetEvent, NetMetrics, Shared, codec, gossip};

/// Consensus frames and gossip, one stream per peer and direction: records
/// of a `u32` big-endian length, a [`Kind`] byte and the bytes, no
/// acknowledgement.
pub const STREAM_PROTOCOL: StreamProtocol = StreamProtocol::new("/lotline/consensus/2");

/// Inbound consensus streams one peer may hold open at once: one per
/// connection (two at most) and the streams a writer re-opened while the
/// reader of its last one has not seen it close yet.
pub const INBOUND_STREAMS_PER_PEER_MAX: u32 = 4;

/// Frames written to a stream in one write when they queued up, in bytes
/// (one frame is always written whole, however large).
const WRITE_BATCH_BYTES: usize = 256 * 1024;

/// A reader acknowledges every this many records ([`Open`]): the count of
/// records it has read, a `u64` big-endian, written back on the stream.
/// `frames_in_flight_max` must be at least this (the config checks it), or
/// a writer would wait for an acknowledgement that never comes.
pub const ACK_EVERY: u64 = 8;

/// What a record carries: its first byte after the length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// A consensus frame, at most `frame_bytes_max` bytes.
    Frame = 0,
    /// A packed gossip message ([`super::gossip::pack`]), at most
    /// `gossip_bytes_max` bytes.
    Gossip = 1,
}

impl Kind {
    fn of(byte: u8) -> Option<Kind> {
        match byte {
            0 => Some(Kind::Frame),
            1 => Some(Kind::Gossip),
            _ => None,
        }
    }
}

/// The largest body of each [`Kind`] a reader takes.
#[derive(Clone, Copy, Debug)]
pub struct Caps {
    pub frame: u32,
    pub gossip: u32,
}

impl Caps {
    fn of(self, kind: Kind) -> u32 {
        match kind {
            Kind::Frame => self.frame,
            Kind::Gossip => self.gossip,
        }
    }
}

/// Appends one record to `out`: the length of what follows, the kind, the
/// body. `None` (and nothing appended) for a body over `caps`.
pub fn encode_record(kind: Kind, body: &[u8], caps: Caps, out: &mut Vec<u8>) -> Option<()> {
    if body.len() > caps.of(kind) as usize {
        return None;
    }
    let len = u32::try_from(body.len() + 1).ok()?;
    out.extend_from_slice(&len.to_be_bytes());
    out.push(kind as u8);
    out.extend_from_slice(body);
    Some(())
}

/// Reads one record. The length and kind are checked against `caps` before
/// the body is read, and the body grows only as its bytes arrive
/// ([`codec::read_body`]): a peer makes us hold at most what it sent, and
/// never more than the cap of the kind it names.
pub async fn read_record<T>(
    io: &mut T,
    caps: Caps,
    metrics: &NetMetrics,
) -> io::Result<(Kind, Vec<u8>)>
where
    T: AsyncRead + Unpin + Send,
{
    let len = codec::read_len(io).await?;
    let Some(body_len) = len.checked_sub(1) else {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "empty record"));
    };
    let mut kind = [0u8; 1];
    io.read_exact(&mut kind).await?;
    let kind = Kind::of(kind[0]).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("unknown record kind {}", kind[0]),
        )
    })?;
    codec::check_len(body_len, caps.of(kind), metrics)?;
    Ok((kind, codec::read_body(io, body_len).await?))
}

/// One record for a peer's stream; a broadcast shares the bytes.
#[derive(Clone, Debug)]
pub(super) struct Record {
    pub kind: Kind,
    pub bytes: codec::Request,
}

/// The sending half of a peer's link: records for its [`Writer`].
pub(super) type Link = mpsc::Sender<Record>;

/// Writes one peer's records into its stream.
pub(super) struct Writer {
    pub to: u16,
    pub peer: PeerId,
    pub control: Control,
    pub timeout: Duration,
    pub caps: Caps,
    /// Records written and not yet acknowledged, at most ([`Open`]).
    pub in_flight_max: u64,
    pub shared: Arc<Shared>,
    /// Where records go back when the peer only speaks request-response
    /// and gossipsub (weak: the swarm task stops once every handle is gone).
    pub commands: mpsc::WeakSender<Command>,
}

impl Writer {
    /// Spawns the writer; it ends when the returned link is dropped.
    pub(super) fn spawn(self, capacity: usize) -> Link {
        let (link, records) = mpsc::channel(capacity.max(1));
        tokio::spawn(self.run(records));
        link
    }

    async fn run(mut self, mut records: mpsc::Receiver<Record>) {
        let mut open: Option<Open> = None;
        let mut batch: Vec<Record> = Vec::new();
        let mut bytes: Vec<u8> = Vec::new();
        loop {
            let credit = match &open {
                None => self.in_flight_max,
                Some(open) => self.in_flight_max.saturating_sub(open.written - open.acked),
            };
            let received = match open.as_mut() {
                None => records.recv_many(&mut batch, 1).await,
                Some(stream) => {
                    tokio::select! {
                        received = records.recv_many(&mut batch, 1), if credit > 0 => received,
                        read = stream.read_ack() => {
                            if let Err(error) = read {
                                // Closed or reset by the peer (it refused a
                                // record, or its reader stopped): the next
                                // record goes on a fresh stream.
                                tracing::debug!(to = self.to, %error, "consensus stream closed by the peer");
                                self.shared.metrics.frames_failed.inc();
                                open = None;
                            }
                            continue;
                        }
                    }
                }
            };
            if received == 0 {
                return;
            }
            let mut len = batch[0].bytes.len();
            while len < WRITE_BATCH_BYTES && (batch.len() as u64) < credit {
                match records.try_recv() {
                    Ok(record) => {
                        len += record.bytes.len();
                        batch.push(record);
                    }
                    Err(_) => break,
                }
            }
            let count = batch.len() as u64;
            let metrics = Arc::clone(&self.shared.metrics);
            if !self.shared.is_connected(self.to) {
                open = None;
                metrics.frames_dropped_peer.inc_by(count);
                batch.clear();
                continue;
            }
            if open.is_none() {
                match self.open().await {
                    Ok(stream) => open = Some(Open::new(stream)),
                    Err(Opened::Legacy) => {
                        let Some(commands) = self.commands.upgrade() else {
                            return;
                        };
                        for record in batch.drain(..) {
                            let to = self.to;
                            if commands.try_send(Command::Unlinked { to, record }).is_err() {
                                metrics.frames_dropped_queue_full.inc();
                            }
                        }
                        continue;
                    }
                    Err(Opened::Failed) => {
                        metrics.frames_failed.inc_by(count);
                        batch.clear();
                        continue;
                    }
                }
            }
            bytes.clear();
            for record in batch.drain(..) {
                // The handle refused records over the caps: none is skipped.
                let _ = encode_record(record.kind, &record.bytes, self.caps, &mut bytes);
            }
            let Some(stream) = open.as_mut() else {
                continue;
            };
            let written = tokio::time::timeout(self.timeout, async {
                stream.stream.write_all(&bytes).await?;
                stream.stream.flush().await
            })
            .await;
            if matches!(written, Ok(Ok(()))) {
                stream.written += count;
            } else {
                tracing::debug!(to = self.to, ?written, "consensus stream broke; reopening");
                metrics.frames_failed.inc_by(count);
                open = None;
            }
            // Frames are only small; a batch that grew large is not kept.
            if bytes.capacity() > 4 * WRITE_BATCH_BYTES {
                bytes = Vec::new();
            }
        }
    }

    async fn open(&mut self) -> Result<Stream, Opened> {
        let opened = tokio::time::timeout(
            self.timeout,
            self.control.open_stream(self.peer, STREAM_PROTOCOL),
        )
        .await;
        match opened {
            Ok(Ok(stream)) => Ok(stream),
            Ok(Err(OpenStreamError::UnsupportedProtocol(_))) => {
                tracing::info!(
                    to = self.to,
                    "peer does not speak {STREAM_PROTOCOL}: frames go by request-response"
                );
                self.shared.legacy.fetch_or(1u64 << self.to, Relaxed);
                Err(Opened::Legacy)
            }
            Ok(Err(error)) => {
                tracing::debug!(to = self.to, %error, "consensus stream not opened");
                Err(Opened::Failed)
            }
            Err(_) => {
                tracing::debug!(to = self.to, "consensus stream not opened in time");
                Err(Opened::Failed)
            }
        }
    }
}

/// A writer's open stream and its acknowledgements: the reader sends back
/// the count of records it has read every [`ACK_EVERY`] records, and the
/// writer keeps at most `frames_in_flight_max` written and not yet counted.
/// So a peer that stops reading (frozen, partitioned) is sent at most that
/// many records, as request-response bounded it, instead of a whole yamux
/// window (256 KiB or more) of frames it would have to verify and discard
/// when it resumes.
struct Open {
    stream: Stream,
    written: u64,
    acked: u64,
    ack: [u8; 8],
    ack_len: usize,
}

impl Open {
    fn new(stream: Stream) -> Self {
        Open {
            stream,
            written: 0,
            acked: 0,
            ack: [0; 8],
            ack_len: 0,
        }
    }

    /// Reads acknowledgement bytes; cancel-safe (a partial count is kept).
    /// An error once the stream is closed or reset, or for a count that
    /// goes back or past what was written.
    async fn read_ack(&mut self) -> io::Result<()> {
        let n = self.stream.read(&mut self.ack[self.ack_len..]).await?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        self.ack_len += n;
        if self.ack_len == self.ack.len() {
            self.ack_len = 0;
            let read = u64::from_be_bytes(self.ack);
            if read < self.acked || read > self.written {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "acknowledged {read} records of {} written (before: {})",
                        self.written, self.acked
                    ),
                ));
            }
            self.acked = read;
        }
        Ok(())
    }
}

/// Why [`Writer::open`] has no stream.
enum Opened {
    /// The peer speaks only request-response.
    Legacy,
    Failed,
}

/// Takes the inbound consensus streams and reads each in its own task.
pub(super) struct Acceptor {
    pub incoming: IncomingStreams,
    pub shared: Arc<Shared>,
    pub caps: Caps,
}

impl Acceptor {
    pub(super) fn spawn(self) {
        tokio::spawn(self.run());
    }

    async fn run(mut self) {
        let open: Arc<Mutex<HashMap<u16, u32>>> = Arc::default();
        while let Some((peer, stream)) = self.incoming.next().await {
            let Some(from) = self.shared.admitted_index(&peer) else {
                self.shared.metrics.unknown_peer_messages.inc();
                tracing::warn!(%peer, "consensus stream from a non-validator dropped");
                continue;
            };
            {
                let mut open = open.lock().unwrap_or_else(PoisonError::into_inner);
                let streams = open.entry(from).or_default();
                if *streams >= INBOUND_STREAMS_PER_PEER_MAX {
                    tracing::debug!(from, "consensus stream refused: too many open");
                    continue; // dropping it resets the stream
                }
                *streams += 1;
            }
            let reader = Reader {
                from,
                stream,
                shared: Arc::clone(&self.shared),
                caps: self.caps,
                open: Arc::clone(&open),
            };
            tokio::spawn(reader.run());
        }
    }
}

/// Reads one inbound stream's records and hands them to the node.
struct Reader {
    from: u16,
    stream: Stream,
    shared: Arc<Shared>,
    caps: Caps,
    open: Arc<Mutex<HashMap<u16, u32>>>,
}

impl Reader {
    /// Reads until the stream ends or a record is refused; returning drops
    /// the stream, which resets it, and the writer opens a fresh one.
    async fn run(mut self) {
        let from = self.from;
        let mut read = 0u64;
        loop {
            let event = match self.next_event().await {
                Ok(event) => event,
                Err(error) => {
                    tracing::debug!(from, %error, "consensus stream ended");
                    return;
                }
            };
            self.shared.emit(event);
            read += 1;
            if read.is_multiple_of(ACK_EVERY) {
                let acked = async {
                    self.stream.write_all(&read.to_be_bytes()).await?;
                    self.stream.flush().await
                };
                if let Err(error) = acked.await {
                    tracing::debug!(from, %error, "consensus stream ended");
                    return;
                }
            }
        }
    }

    async fn next_event(&mut self) -> io::Result<NetEvent> {
        let metrics = &self.shared.metrics;
        let from = self.from;
        match read_record(&mut self.stream, self.caps, metrics).await? {
            (Kind::Frame, bytes) => {
                metrics.frames_in.inc();
                Ok(NetEvent::Frame { from, bytes })
            }
            (Kind::Gossip, bytes) => {
                let items = gossip::unpack(&bytes, self.caps.gossip).map_err(|error| {
                    metrics.malformed_gossip.inc();
                    io::Error::new(io::ErrorKind::InvalidData, error.to_string())
                })?;
                metrics.gossip_in.inc();
                Ok(NetEvent::Gossip {
                    from,
                    id: GossipId::direct(),
                    items,
                })
            }
        }
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(streams) = open.get_mut(&self.from) {
            *streams = streams.saturating_sub(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use futures::executor::block_on;
    use futures::io::Cursor;
    use proptest::prelude::*;

    use super::*;

    const CAPS: Caps = Caps {
        frame: 100,
        gossip: 1_000,
    };

    fn read(wire: &[u8], metrics: &NetMetrics) -> io::Result<(Kind, Vec<u8>)> {
        block_on(read_record(&mut Cursor::new(wire), CAPS, metrics))
    }

    #[test]
    fn each_kind_is_capped_by_its_own_limit_before_its_body_is_read() {
        let metrics = NetMetrics::default();
        let mut wire = Vec::new();
        encode_record(Kind::Gossip, &[1; 1_000], CAPS, &mut wire).unwrap();
        assert_eq!(
            read(&wire, &metrics).unwrap(),
            (Kind::Gossip, vec![1; 1_000])
        );
        // A frame the size of a gossip message is over the frame cap: the
        // prefix and kind alone refuse it.
        let mut prefix = 1_001u32.to_be_bytes().to_vec();
        prefix.push(Kind::Frame as u8);
        let error = read(&prefix, &metrics).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
        assert_eq!(metrics.oversized_frames.get(), 1);
        // And the writer does not encode one.
        let mut out = Vec::new();
        assert!(encode_record(Kind::Frame, &[0; 101], CAPS, &mut out).is_none());
        assert!(out.is_empty());
    }

    #[test]
    fn empty_unknown_and_truncated_records_are_errors() {
        let metrics = NetMetrics::default();
        let empty = read(&[0, 0, 0, 0], &metrics).unwrap_err();
        assert!(empty.to_string().contains("empty record"), "{empty}");
        let unknown = read(&[0, 0, 0, 1, 7], &metrics).unwrap_err();
        assert!(
            unknown.to_string().contains("unknown record kind 7"),
            "{unknown}"
        );
        let truncated = read(&[0, 0, 0, 5, 0, 1, 2], &metrics).unwrap_err();
        assert_eq!(truncated.kind(), io::ErrorKind::UnexpectedEof);
        assert_eq!(metrics.oversized_frames.get(), 0);
    }

    proptest! {
        #[test]
        fn records_read_back_as_written_in_order(
            records in prop::collection::vec((any::<bool>(), prop::collection::vec(any::<u8>(), 0..100)), 0..20),
        ) {
            let metrics = NetMetrics::default();
            let mut wire = Vec::new();
            for (gossip, body) in &records {
                let kind = if *gossip { Kind::Gossip } else { Kind::Frame };
                prop_assert!(encode_record(kind, body, CAPS, &mut wire).is_some());
            }
            let mut io = Cursor::new(wire);
            for (gossip, body) in records {
                let (kind, read) = block_on(read_record(&mut io, CAPS, &metrics)).unwrap();
                prop_assert_eq!(kind == Kind::Gossip, gossip);
                prop_assert_eq!(read, body);
            }
            prop_assert!(block_on(read_record(&mut io, CAPS, &metrics)).is_err());
        }

        #[test]
        fn reading_arbitrary_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
            let _ = read(&bytes, &NetMetrics::default());
        }
    }
}
