//! The request-response codec: a frame is a `u32` big-endian length and then
//! that many bytes, nothing else. The length is read and checked against the
//! protocol's cap *before* any payload is read, and the buffer grows only as
//! bytes actually arrive, so a peer can make us hold at most what it sent, and
//! never more than the cap. Oversized and truncated frames are errors; the
//! request-response handler then drops the stream.
//!
//! One codec type serves both protocols with different caps:
//! `/lotline/consensus/1` (request = a consensus frame, response = an empty
//! ack) and `/lotline/sync/1` (a small request, a large response).

use std::io;
use std::sync::Arc;

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::StreamProtocol;

use super::metrics::NetMetrics;

/// Direct validator traffic: votes, certificates, proposals.
pub const CONSENSUS_PROTOCOL: StreamProtocol = StreamProtocol::new("/lotline/consensus/1");
/// Block sync: a request for finalized blocks, a response carrying them.
pub const SYNC_PROTOCOL: StreamProtocol = StreamProtocol::new("/lotline/sync/1");

/// Outgoing requests are shared, so a broadcast encodes once and every peer's
/// stream writes from the same buffer.
pub type Request = Arc<Vec<u8>>;
pub type Response = Vec<u8>;

/// The bytes of a shared request, copied only if another holder remains.
pub fn into_owned(request: Request) -> Vec<u8> {
    Arc::try_unwrap(request).unwrap_or_else(|shared| (*shared).clone())
}

/// A length-prefixed codec with a cap per direction.
#[derive(Clone, Debug)]
pub struct FrameCodec {
    request_max: u32,
    response_max: u32,
    metrics: Arc<NetMetrics>,
}

impl FrameCodec {
    pub fn new(request_max: u32, response_max: u32, metrics: Arc<NetMetrics>) -> Self {
        FrameCodec {
            request_max,
            response_max,
            metrics,
        }
    }
}

/// A frame whose length prefix is over the cap.
#[derive(Debug, thiserror::Error)]
#[error("frame of {len} bytes is over the cap of {max}")]
pub struct FrameTooLarge {
    pub len: u64,
    pub max: u32,
}

/// Reads one frame of at most `max` bytes.
pub async fn read_frame<T>(io: &mut T, max: u32, metrics: &NetMetrics) -> io::Result<Vec<u8>>
where
    T: AsyncRead + Unpin + Send,
{
    let len = read_len(io).await?;
    check_len(len, max, metrics)?;
    read_body(io, len).await
}

/// Reads a frame's `u32` big-endian length prefix.
pub async fn read_len<T>(io: &mut T) -> io::Result<u32>
where
    T: AsyncRead + Unpin + Send,
{
    let mut prefix = [0u8; 4];
    io.read_exact(&mut prefix).await?;
    Ok(u32::from_be_bytes(prefix))
}

/// Refuses (and counts) a length over `max`, before anything is read.
pub fn check_len(len: u32, max: u32, metrics: &NetMetrics) -> io::Result<()> {
    if len > max {
        metrics.oversized_frames.inc();
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            FrameTooLarge {
                len: len.into(),
                max,
            },
        ));
    }
    Ok(())
}

/// Reads `len` bytes, a frame's body whose length was checked.
pub async fn read_body<T>(io: &mut T, len: u32) -> io::Result<Vec<u8>>
where
    T: AsyncRead + Unpin + Send,
{
    // No `vec![0; len]`: the buffer grows with the bytes that arrive.
    let mut buf = Vec::with_capacity((len as usize).min(64 * 1024));
    io.take(u64::from(len)).read_to_end(&mut buf).await?;
    if buf.len() != len as usize {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("truncated frame: {} of {len} bytes", buf.len()),
        ));
    }
    Ok(buf)
}

/// Writes one frame; refuses (as an error, not a panic) one over `max`.
pub async fn write_frame<T>(io: &mut T, bytes: &[u8], max: u32) -> io::Result<()>
where
    T: AsyncWrite + Unpin + Send,
{
    let len = u32::try_from(bytes.len())
        .ok()
        .filter(|len| *len <= max)
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                FrameTooLarge {
                    len: bytes.len() as u64,
                    max,
                },
            )
        })?;
    io.write_all(&len.to_be_bytes()).await?;
    io.write_all(bytes).await?;
    io.flush().await
}

impl libp2p::request_response::Codec for FrameCodec {
    type Protocol = StreamProtocol;
    type Request = Request;
    type Response = Response;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Request>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_frame(io, self.request_max, &self.metrics)
            .await
            .map(Arc::new)
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Response>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_frame(io, self.response_max, &self.metrics).await
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        req: Request,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_frame(io, &req, self.request_max).await
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        res: Response,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_frame(io, &res, self.response_max).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::executor::block_on;
    use futures::io::Cursor;

    fn framed(len: u32, body: &[u8]) -> Vec<u8> {
        let mut out = len.to_be_bytes().to_vec();
        out.extend_from_slice(body);
        out
    }

    #[test]
    fn round_trip_and_empty_ack() {
        let metrics = NetMetrics::default();
        for body in [&b""[..], b"vote", &[7u8; 1000][..]] {
            let mut wire = Vec::new();
            block_on(write_frame(&mut wire, body, 1000)).unwrap();
            assert_eq!(wire.len(), 4 + body.len());
            let read = block_on(read_frame(&mut Cursor::new(wire), 1000, &metrics)).unwrap();
            assert_eq!(read, body);
        }
        assert_eq!(metrics.oversized_frames.get(), 0);
    }

    #[test]
    fn oversized_length_is_refused_before_reading() {
        let metrics = NetMetrics::default();
        // Claims 4 GiB, sends 3 bytes: refused on the prefix alone.
        let wire = framed(u32::MAX, b"abc");
        let err = block_on(read_frame(&mut Cursor::new(wire), 1000, &metrics)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert_eq!(metrics.oversized_frames.get(), 1);
        // One byte over the cap is over the cap.
        let wire = framed(11, &[0; 11]);
        assert!(block_on(read_frame(&mut Cursor::new(wire), 10, &metrics)).is_err());
        assert_eq!(metrics.oversized_frames.get(), 2);
        // And writing it is refused too.
        let mut out = Vec::new();
        assert!(block_on(write_frame(&mut out, &[0; 11], 10)).is_err());
        assert!(out.is_empty());
    }

    #[test]
    fn truncated_frames_are_errors() {
        let metrics = NetMetrics::default();
        for wire in [vec![], vec![0, 0], framed(10, b"short")] {
            let err = block_on(read_frame(&mut Cursor::new(wire), 1000, &metrics)).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        }
        assert_eq!(metrics.oversized_frames.get(), 0);
    }
}
