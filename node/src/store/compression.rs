//! zstd at rest, for the records the store keeps whole: block-log records
//! and sled's attestation records. Both hold JSON statements that repeat
//! field names, vocabulary and identifier stems, so a frame per record
//! compresses them two to ten times for a few microseconds per kilobyte.
//!
//! Decompression is bounded: a record that would decompress past its
//! decoded-size limit is refused without allocating the excess, so a
//! damaged or hostile frame cannot blow up memory.

use std::io::Read;

use lotline_core::codec::DecodeError;

/// zstd of `bytes` at `level`. Compressing an in-memory buffer fails only on
/// an allocation failure inside zstd, which, like a failed encoding
/// ([`lotline_core::codec::to_bytes`]), is a bug and not a condition to
/// carry on from.
pub fn compress(bytes: &[u8], level: i32) -> Vec<u8> {
    match zstd::bulk::compress(bytes, level) {
        Ok(out) => out,
        Err(e) => panic!("zstd compression of an in-memory buffer failed: {e}"),
    }
}

/// Decompresses one zstd frame of a `what` record, refusing more than `max`
/// decompressed bytes.
pub fn decompress(what: &'static str, bytes: &[u8], max: usize) -> Result<Vec<u8>, DecodeError> {
    let malformed = |e: std::io::Error| DecodeError::Malformed {
        what,
        reason: format!("zstd: {e}"),
    };
    let decoder = zstd::stream::read::Decoder::with_buffer(bytes)
        .map_err(malformed)?
        .single_frame();
    let mut out = Vec::new();
    decoder
        .take(max as u64 + 1)
        .read_to_end(&mut out)
        .map_err(malformed)?;
    if out.len() > max {
        return Err(DecodeError::TooLarge {
            what,
            len: out.len(),
            max,
        });
    }
    Ok(out)
}
