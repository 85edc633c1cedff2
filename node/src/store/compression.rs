//! zstd at rest, for the records the store keeps whole: block-log records
//! and sled's attestation records. Both hold JSON statements that repeat
//! field names, vocabulary and identifier stems, so a frame per record
//! compresses them two to ten times for a few microseconds per kilobyte.
//!
//! Decompression is bounded: a record that would decompress past its
//! decoded-size limit is refused without allocating the excess, so a
//! damaged or hostile frame cannot blow up memory.

use std::cell::RefCell;
use std::io::{Cursor, Read};

use lotline_core::codec::DecodeError;
use zstd::zstd_safe::{self, CCtx, CDict, DCtx, DDict};

thread_local! {
    /// One compression context per thread, kept between records: zstd
    /// allocates and clears a context of several hundred kilobytes, and
    /// creating one per record was 4 % of all CPU at four validators
    /// (docs/performance.md, "zstd contexts"). Each call sets its level or
    /// dictionary afresh, so one context serves every kind of record.
    static COMPRESSOR: RefCell<Option<CCtx<'static>>> = const { RefCell::new(None) };
    /// The same for decompression (the analytics follower and every API
    /// read decompress records one at a time).
    static DECOMPRESSOR: RefCell<Option<DCtx<'static>>> = const { RefCell::new(None) };
}

/// A zstd dictionary: what records of one kind have in common (field names,
/// vocabulary, identifier stems, keys), given to zstd so that a small record
/// compresses as if it followed many like it. A frame written with one names
/// the dictionary's id in its header ([`frame_dictionary`]).
pub struct Dictionary {
    id: u32,
    bytes: Vec<u8>,
    compress: CDict<'static>,
    decompress: DDict<'static>,
}

impl std::fmt::Debug for Dictionary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dictionary")
            .field("id", &self.id)
            .field("bytes", &self.bytes.len())
            .finish()
    }
}

impl Dictionary {
    /// Trains a dictionary of at most `max_bytes` from `samples`, compressing
    /// at `level`. zstd's trainer is deterministic: the same samples give
    /// the same dictionary, and its id is a hash of its content. `None` if
    /// zstd finds nothing worth a dictionary (too few or too small samples).
    pub fn train(samples: &[Vec<u8>], max_bytes: usize, level: i32) -> Option<Dictionary> {
        let sizes: Vec<usize> = samples.iter().map(Vec::len).collect();
        let joined = samples.concat();
        let mut bytes = Vec::with_capacity(max_bytes);
        zstd_safe::train_from_buffer(&mut bytes, &joined, &sizes).ok()?;
        Dictionary::from_bytes(bytes, level).ok()
    }

    /// A dictionary [`Dictionary::bytes`] gave, to compress at `level`.
    /// Refuses bytes that are not a zstd dictionary with an id (raw
    /// content would be accepted by zstd, but frames could not name it).
    pub fn from_bytes(bytes: Vec<u8>, level: i32) -> Result<Dictionary, DecodeError> {
        let malformed = |reason: &str| DecodeError::Malformed {
            what: "zstd dictionary",
            reason: reason.to_string(),
        };
        let id = zstd_safe::get_dict_id_from_dict(&bytes)
            .ok_or_else(|| malformed("no zstd dictionary header"))?
            .get();
        let compress = CDict::try_create(&bytes, level)
            .ok_or_else(|| malformed("zstd refused the dictionary"))?;
        let decompress =
            DDict::try_create(&bytes).ok_or_else(|| malformed("zstd refused the dictionary"))?;
        Ok(Dictionary {
            id,
            bytes,
            compress,
            decompress,
        })
    }

    /// The id frames written with this dictionary carry.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The dictionary as it is stored.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }
}

/// The id of the dictionary a frame was written with; `None` for a frame
/// written without one (or bytes that are no frame).
pub fn frame_dictionary(bytes: &[u8]) -> Option<u32> {
    zstd_safe::get_dict_id_from_frame(bytes).map(|id| id.get())
}

/// zstd of `bytes` at `level`, as one frame that records its content size
/// (what [`decompress`] bounds its output by).
pub fn compress(bytes: &[u8], level: i32) -> Vec<u8> {
    let mut out = Vec::new();
    compress_onto(bytes, level, &mut out);
    out
}

/// [`compress`], appended to `out`: a caller that compresses large
/// records again and again writes them into one kept buffer.
pub fn compress_onto(bytes: &[u8], level: i32, out: &mut Vec<u8>) {
    with_compressor(bytes, out, |cctx, out| cctx.compress(out, bytes, level))
}

/// zstd of `bytes` with `dictionary`, at the dictionary's level, as one
/// frame that records its content size and the dictionary's id.
pub fn compress_with(bytes: &[u8], dictionary: &Dictionary) -> Vec<u8> {
    let mut out = Vec::new();
    with_compressor(bytes, &mut out, |cctx, out| {
        cctx.compress_using_cdict(out, bytes, &dictionary.compress)
    });
    out
}

/// Runs `compress` with this thread's context, appending its frame to
/// `out`, with room made for any frame of `bytes`. Compressing an
/// in-memory buffer into such a buffer fails only on an allocation failure
/// inside zstd, which, like a failed encoding
/// ([`lotline_core::codec::to_bytes`]), is a bug and not a condition to
/// carry on from.
fn with_compressor(
    bytes: &[u8],
    out: &mut Vec<u8>,
    compress: impl FnOnce(&mut CCtx<'static>, &mut Cursor<&mut Vec<u8>>) -> zstd_safe::SafeResult,
) {
    out.reserve(zstd_safe::compress_bound(bytes.len()));
    let end = out.len() as u64;
    let mut after = Cursor::new(out);
    after.set_position(end);
    let result = COMPRESSOR.with(|cell| {
        let mut slot = cell.borrow_mut();
        let cctx = slot.get_or_insert_with(CCtx::create);
        compress(cctx, &mut after)
    });
    match result {
        Ok(_) => {}
        Err(code) => panic!(
            "zstd compression of an in-memory buffer failed: {}",
            zstd_safe::get_error_name(code)
        ),
    }
}

/// Decompresses one zstd frame of a `what` record, refusing more than `max`
/// decompressed bytes. A frame written with a dictionary is refused: see
/// [`decompress_with`].
///
/// A frame that states its content size (every frame [`compress`] writes)
/// is decompressed in one call into a buffer of exactly that size, with
/// this thread's context; a stated size above `max` is refused before
/// anything is allocated, and a frame that would write past its stated
/// size fails inside zstd. Bytes after the frame are refused. A frame
/// without a stated size is read as a stream, bounded the same way.
pub fn decompress(what: &'static str, bytes: &[u8], max: usize) -> Result<Vec<u8>, DecodeError> {
    decompress_with(what, bytes, max, None)
}

/// [`decompress`] of a frame that may have been written with `dictionary`.
/// A frame naming a dictionary other than the one given (or any, when none
/// is given) is refused with the id it names.
pub fn decompress_with(
    what: &'static str,
    bytes: &[u8],
    max: usize,
    dictionary: Option<&Dictionary>,
) -> Result<Vec<u8>, DecodeError> {
    let malformed = |reason: String| DecodeError::Malformed { what, reason };
    let frame_len = zstd_safe::find_frame_compressed_size(bytes)
        .map_err(|code| malformed(format!("zstd: {}", zstd_safe::get_error_name(code))))?;
    if frame_len != bytes.len() {
        return Err(malformed(format!(
            "zstd: {} bytes after the frame",
            bytes.len() - frame_len
        )));
    }
    let named = frame_dictionary(bytes);
    let dictionary = match (named, dictionary) {
        (None, _) => None,
        (Some(id), Some(dictionary)) if dictionary.id == id => Some(dictionary),
        (Some(id), _) => {
            return Err(malformed(format!(
                "zstd: the frame needs dictionary {id}, which is not at hand"
            )));
        }
    };
    let stated = zstd_safe::get_frame_content_size(bytes)
        .map_err(|_| malformed("zstd: unreadable frame header".to_string()))?;
    let Some(stated) = stated else {
        if dictionary.is_some() {
            return Err(malformed(
                "zstd: a dictionary frame that does not state its size".to_string(),
            ));
        }
        return decompress_stream(what, bytes, max);
    };
    let len = usize::try_from(stated).unwrap_or(usize::MAX);
    if len > max {
        return Err(DecodeError::TooLarge { what, len, max });
    }
    let mut out = Vec::with_capacity(len);
    DECOMPRESSOR
        .with(|cell| {
            let mut slot = cell.borrow_mut();
            let dctx = slot.get_or_insert_with(DCtx::create);
            match dictionary {
                Some(dictionary) => {
                    dctx.decompress_using_ddict(&mut out, bytes, &dictionary.decompress)
                }
                None => dctx.decompress(&mut out, bytes),
            }
        })
        .map_err(|code| malformed(format!("zstd: {}", zstd_safe::get_error_name(code))))?;
    if out.len() != len {
        return Err(malformed(format!(
            "zstd: the frame states {len} bytes and holds {}",
            out.len()
        )));
    }
    Ok(out)
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
        fn arbitrary_bytes_are_refused_or_bounded_with_a_dictionary_at_hand(
            bytes in proptest::collection::vec(any::<u8>(), 0..512),
        ) {
            static TRAINED: std::sync::OnceLock<Dictionary> = std::sync::OnceLock::new();
            let dictionary =
                TRAINED.get_or_init(|| Dictionary::train(&records(1_000), 16 * 1024, 1).expect("trained"));
            if let Ok(out) = decompress_with("record", &bytes, 1024, Some(dictionary)) {
                prop_assert!(out.len() <= 1024);
            }
        }

        #[test]
        fn a_frame_compressed_onto_a_buffer_follows_what_it_held(
            held in proptest::collection::vec(any::<u8>(), 0..64),
            bytes in proptest::collection::vec(any::<u8>(), 0..4096),
        ) {
            let mut out = held.clone();
            compress_onto(&bytes, 3, &mut out);
            prop_assert_eq!(&out[..held.len()], &held[..]);
            prop_assert_eq!(&out[held.len()..], &compress(&bytes, 3)[..]);
        }

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

    /// Records alike in shape and vocabulary, unlike in their values.
    fn records(n: usize) -> Vec<Vec<u8>> {
        (0..n)
            .map(|i| {
                format!(
                    r#"{{"org":"supplier","type":"ObjectEvent","eventTime":"2026-03-{:02}T10:{:02}:{:02}.643Z","action":"ADD","epcList":["https://id.gs1.org/01/09506001120026/21/{:08}"],"bizStep":"{}","disposition":"active","readPoint":{{"id":"https://id.gs1.org/414/95060010003{:02}"}}}}"#,
                    1 + i % 28,
                    i % 60,
                    (i * 7) % 60,
                    i * 7919 % 100_000_000,
                    ["commissioning", "packing", "shipping", "receiving"][i % 4],
                    i % 17,
                )
                .into_bytes()
            })
            .collect()
    }

    #[test]
    fn a_dictionary_is_trained_the_same_from_the_same_samples_and_named_by_its_content() {
        let samples = records(1_000);
        let a = Dictionary::train(&samples, 16 * 1024, 1).expect("trained");
        let b = Dictionary::train(&samples, 16 * 1024, 1).expect("trained");
        assert_eq!(a.bytes(), b.bytes());
        assert_eq!(a.id(), b.id());
        let again = Dictionary::from_bytes(a.bytes().to_vec(), 1).expect("stored form");
        assert_eq!(again.id(), a.id());
    }

    #[test]
    fn a_record_compressed_with_a_dictionary_is_smaller_and_reads_back_with_it_only() {
        let samples = records(1_200);
        let dictionary = Dictionary::train(&samples[..1_000], 16 * 1024, 1).expect("trained");
        let record = &samples[1_100];
        let plain = compress(record, 1);
        let framed = compress_with(record, &dictionary);
        assert!(
            framed.len() * 2 < plain.len(),
            "{} bytes with the dictionary, {} without",
            framed.len(),
            plain.len()
        );
        assert_eq!(frame_dictionary(&framed), Some(dictionary.id()));
        assert_eq!(frame_dictionary(&plain), None);
        let max = record.len();
        assert_eq!(
            &decompress_with("record", &framed, max, Some(&dictionary)).unwrap(),
            record
        );
        // A plain frame reads back whether or not a dictionary is at hand.
        assert_eq!(
            &decompress_with("record", &plain, max, Some(&dictionary)).unwrap(),
            record
        );
        let err = decompress("record", &framed, max).unwrap_err().to_string();
        assert!(
            err.contains(&format!("dictionary {}", dictionary.id())),
            "{err}"
        );
        let other = Dictionary::train(&records(900), 8 * 1024, 1).expect("trained");
        assert_ne!(other.id(), dictionary.id());
        let err = decompress_with("record", &framed, max, Some(&other))
            .unwrap_err()
            .to_string();
        assert!(err.contains("not at hand"), "{err}");
        assert!(matches!(
            decompress_with("record", &framed, max - 1, Some(&dictionary)),
            Err(DecodeError::TooLarge { .. })
        ));
    }

    #[test]
    fn bytes_that_are_no_dictionary_are_refused() {
        for bytes in [
            Vec::new(),
            b"raw content, no header".to_vec(),
            vec![0x37, 0xa4, 0x30, 0xec],
        ] {
            assert!(Dictionary::from_bytes(bytes, 1).is_err());
        }
        assert!(Dictionary::train(&records(3), 16 * 1024, 1).is_none());
    }

    #[test]
    fn levels_can_alternate_on_one_thread() {
        let a = compress(b"block record", 3);
        let b = compress(b"attestation record", 1);
        assert_eq!(decompress("r", &a, 64).unwrap(), b"block record");
        assert_eq!(decompress("r", &b, 64).unwrap(), b"attestation record");
    }
}
