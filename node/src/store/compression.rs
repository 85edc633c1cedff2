//! zstd at rest, for the records the store keeps whole: block-log records
//! and sled's attestation records. Both hold JSON statements that repeat
//! field names, vocabulary and identifier stems, so a frame per record
//! compresses them two to ten times for a few microseconds per kilobyte.
//!
//! Decompression is bounded: a record that would decompress past its
//! decoded-size limit is refused without allocating the excess, so a
//! damaged or hostile frame cannot blow up memory.

use std::cell::RefCell;
use std::io::Read;

use lotline_core::codec::DecodeError;

thread_local! {
    /// One compression context per thread, kept between records: zstd
    /// allocates and clears a context of several hundred kilobytes, and
    /// creating one per record was 4 % of all CPU at four validators
    /// (docs/performance.md, "zstd contexts").
    static COMPRESSOR: RefCell<Option<(i32, zstd::bulk::Compressor<'static>)>> =
        const { RefCell::new(None) };
    /// The same for decompression (the analytics follower and every API
    /// read decompress records one at a time).
    static DECOMPRESSOR: RefCell<Option<zstd::bulk::Decompressor<'static>>> =
        const { RefCell::new(None) };
}

/// zstd of `bytes` at `level`, as one frame that records its content size
/// (what [`decompress`] bounds its output by). Compressing an in-memory
/// buffer fails only on an allocation failure inside zstd, which, like a
/// failed encoding ([`lotline_core::codec::to_bytes`]), is a bug and not a
/// condition to carry on from.
pub fn compress(bytes: &[u8], level: i32) -> Vec<u8> {
    let result = COMPRESSOR.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.as_ref().map(|(l, _)| *l) != Some(level) {
            *slot = Some((level, zstd::bulk::Compressor::new(level)?));
        }
        match slot.as_mut() {
            Some((_, compressor)) => compressor.compress(bytes),
            None => unreachable!("the slot was filled above"),
        }
    });
    match result {
        Ok(out) => out,
        Err(e) => panic!("zstd compression of an in-memory buffer failed: {e}"),
    }
}

/// Decompresses one zstd frame of a `what` record, refusing more than `max`
/// decompressed bytes.
///
/// A frame that states its content size (every frame [`compress`] writes)
/// is decompressed in one call into a buffer of exactly that size, with
/// this thread's context; a stated size above `max` is refused before
/// anything is allocated, and a frame that would write past its stated
/// size fails inside zstd. Bytes after the frame are refused. A frame
/// without a stated size is read as a stream, bounded the same way.
pub fn decompress(what: &'static str, bytes: &[u8], max: usize) -> Result<Vec<u8>, DecodeError> {
    let malformed = |reason: String| DecodeError::Malformed { what, reason };
    let frame_len = zstd::zstd_safe::find_frame_compressed_size(bytes)
        .map_err(|code| malformed(format!("zstd: {}", zstd::zstd_safe::get_error_name(code))))?;
    if frame_len != bytes.len() {
        return Err(malformed(format!(
            "zstd: {} bytes after the frame",
            bytes.len() - frame_len
        )));
    }
    let stated = zstd::zstd_safe::get_frame_content_size(bytes)
        .map_err(|_| malformed("zstd: unreadable frame header".to_string()))?;
    let Some(stated) = stated else {
        return decompress_stream(what, bytes, max);
    };
    let len = usize::try_from(stated).unwrap_or(usize::MAX);
    if len > max {
        return Err(DecodeError::TooLarge { what, len, max });
    }
    DECOMPRESSOR.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            *slot =
                Some(zstd::bulk::Decompressor::new().map_err(|e| malformed(format!("zstd: {e}")))?);
        }
        let Some(decompressor) = slot.as_mut() else {
            unreachable!("the slot was filled above")
        };
        let mut out = Vec::with_capacity(len);
        decompressor
            .decompress_to_buffer(bytes, &mut out)
            .map_err(|e| malformed(format!("zstd: {e}")))?;
        if out.len() != len {
            return Err(malformed(format!(
                "zstd: the frame states {len} bytes and holds {}",
                out.len()
            )));
        }
        Ok(out)
    })
}

/// The streaming path, for frames that do not state their size.
fn decompress_stream(what: &'static str, bytes: &[u8], max: usize) -> Result<Vec<u8>, DecodeError> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn streamed(bytes: &[u8]) -> Vec<u8> {
        // A stream encoder does not state the content size in the header.
        let mut encoder = zstd::stream::write::Encoder::new(Vec::new(), 1).unwrap();
        std::io::Write::write_all(&mut encoder, bytes).unwrap();
        encoder.finish().unwrap()
    }

    proptest! {
        #[test]
        fn what_is_compressed_decompresses_to_the_same_bytes(
            bytes in proptest::collection::vec(any::<u8>(), 0..4096),
            level in 1i32..4,
        ) {
            let frame = compress(&bytes, level);
            prop_assert_eq!(decompress("record", &frame, bytes.len()).unwrap(), bytes.clone());
            prop_assert_eq!(decompress("record", &streamed(&bytes), bytes.len()).unwrap(), bytes);
        }

        #[test]
        fn arbitrary_bytes_are_refused_or_bounded(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            if let Ok(out) = decompress("record", &bytes, 1024) {
                prop_assert!(out.len() <= 1024);
            }
        }
    }

    #[test]
    fn a_stated_size_above_the_limit_is_refused_before_decompressing() {
        let frame = compress(&[7u8; 10_000], 1);
        assert!(matches!(
            decompress("record", &frame, 9_999),
            Err(DecodeError::TooLarge {
                len: 10_000,
                max: 9_999,
                ..
            })
        ));
    }

    #[test]
    fn an_unstated_size_above_the_limit_is_refused_while_streaming() {
        let frame = streamed(&[7u8; 10_000]);
        assert!(matches!(
            decompress("record", &frame, 9_999),
            Err(DecodeError::TooLarge { max: 9_999, .. })
        ));
    }

    #[test]
    fn bytes_after_the_frame_are_refused() {
        let mut frame = compress(b"one record", 1);
        frame.extend_from_slice(&compress(b"another", 1));
        let err = decompress("record", &frame, 1024).unwrap_err().to_string();
        assert!(err.contains("after the frame"), "{err}");
    }

    #[test]
    fn a_truncated_frame_is_refused() {
        let frame = compress(&[1u8; 2048], 1);
        assert!(decompress("record", &frame[..frame.len() - 3], 4096).is_err());
    }

    #[test]
    fn levels_can_alternate_on_one_thread() {
        let a = compress(b"block record", 3);
        let b = compress(b"attestation record", 1);
        assert_eq!(decompress("r", &a, 64).unwrap(), b"block record");
        assert_eq!(decompress("r", &b, 64).unwrap(), b"attestation record");
    }
}
