//! The zstd dictionary of a store's `a` records.
//!
//! An `a` record compressed on its own was the largest keyspace: 745 of
//! 2,522 logical bytes per event at 100k generator events, while the block
//! log, which compresses a whole block in one frame, holds the same
//! envelopes in 157. What a record shares with the others is most of it:
//! the chain id and the members' keys in every statement, EPCIS field names,
//! CBV vocabulary, GS1 identifier stems. A dictionary trained on the chain's
//! own first records gives each record that context (the idea of RocksDB's
//! per-file zstd dictionaries, here one per store).
//!
//! What the dictionary is and where it is used is a pure function of the
//! chain, so every node and every rebuild from the block log writes the
//! same bytes:
//! - the first [`SAMPLES`] attestations are compressed without a dictionary;
//!   their encodings are the samples;
//! - in the block where the last sample lands, after its records, the
//!   dictionary is trained (zstd's trainer is deterministic and names the
//!   dictionary by a hash of its content) and written in that block's batch
//!   under `m | "dictionary" | id`;
//! - every attestation of a later block is compressed with it; its frame
//!   names the dictionary's id, which is how a read finds it.
//!
//! If zstd finds nothing to train on, records stay as they were.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use lotline_core::codec::DecodeError;

use super::compression::{self, Dictionary};
use super::index;
use super::{StoreError, StoreReader, grouped, packed_error};

/// Attestations a dictionary is trained on: about 1.6 MB of generator
/// records, a hundred times the dictionary (zstd's rule of thumb), trained
/// once in a store's life at the block that completes them. On the
/// generator's statements 4,096 samples gave a dictionary 5 % better (144
/// against 151 bytes a statement), at the price of 3,072 more records
/// compressed without one (docs/performance.md, "A dictionary for
/// attestation records").
pub const SAMPLES: usize = 1024;

/// The most bytes a dictionary may take: zstd's default size, enough for
/// the vocabulary, keys and stems records repeat.
const DICTIONARY_BYTES_MAX: usize = 16 * 1024;

/// A stored dictionary larger than this is damage, not a dictionary.
const STORED_BYTES_MAX: usize = 4 * DICTIONARY_BYTES_MAX;

/// `m | "dictionary" | id (u32 BE)`: a dictionary's key.
pub fn key(id: u32) -> Vec<u8> {
    let mut key = KEY_PREFIX.to_vec();
    key.extend_from_slice(&id.to_be_bytes());
    key
}

/// The prefix of every dictionary key.
pub const KEY_PREFIX: &[u8] = b"mdictionary";

/// Where a store's record dictionary stands, as a batch sees it.
#[derive(Debug)]
pub(super) enum Stage {
    /// Fewer than [`SAMPLES`] attestations so far: their encodings.
    Gathering(Vec<Vec<u8>>),
    /// Records of later blocks are compressed with this.
    Trained(Arc<Dictionary>),
    /// zstd trained nothing from the samples: records stay plain.
    Plain,
}

impl Stage {
    /// The dictionary this block's records are compressed with.
    pub fn dictionary(&self) -> Option<&Dictionary> {
        match self {
            Stage::Trained(dictionary) => Some(dictionary),
            Stage::Gathering(_) | Stage::Plain => None,
        }
    }

    /// True while records' encodings are samples.
    pub fn gathering(&self) -> bool {
        matches!(self, Stage::Gathering(_))
    }

    /// Takes one record's encoding, in chain order, while samples are
    /// gathered.
    pub fn gather(&mut self, encoding: Vec<u8>) {
        if let Stage::Gathering(samples) = self
            && samples.len() < SAMPLES
        {
            samples.push(encoding);
        }
    }

    /// After a block's records: trains the dictionary if the samples are
    /// complete, and returns it to be written with the block.
    pub fn end_block(&mut self) -> Option<Arc<Dictionary>> {
        let Stage::Gathering(samples) = self else {
            return None;
        };
        if samples.len() < SAMPLES {
            return None;
        }
        let trained = Dictionary::train(
            samples,
            DICTIONARY_BYTES_MAX,
            index::RECORD_COMPRESSION_LEVEL,
        )
        .map(Arc::new);
        *self = match &trained {
            Some(dictionary) => Stage::Trained(Arc::clone(dictionary)),
            None => Stage::Plain,
        };
        trained
    }
}

/// A store's record dictionary, shared by its readers: the stage the
/// indexer carries from batch to batch, and the dictionaries reads have
/// looked up, by id.
#[derive(Debug, Default)]
pub(super) struct Dictionaries {
    /// `None` until read from sled, and while a batch holds it.
    stage: Mutex<Option<Stage>>,
    by_id: RwLock<HashMap<u32, Arc<Dictionary>>>,
}

impl Dictionaries {
    /// The stage a new batch starts from, read from sled when not known.
    /// Taken: a batch that fails leaves it unknown, so the next one reads
    /// what sled really holds.
    pub fn begin(&self, reader: &StoreReader) -> Result<Stage, StoreError> {
        let taken = self.stage.lock().ok().and_then(|mut stage| stage.take());
        match taken {
            Some(stage) => Ok(stage),
            None => load(reader),
        }
    }

    /// Keeps `stage` for the next batch, once this one is written.
    pub fn end(&self, stage: Stage) {
        if let Stage::Trained(dictionary) = &stage
            && let Ok(mut by_id) = self.by_id.write()
        {
            by_id.insert(dictionary.id(), Arc::clone(dictionary));
        }
        if let Ok(mut slot) = self.stage.lock() {
            *slot = Some(stage);
        }
    }

    /// The dictionary `id`, which a stored frame names.
    pub fn get(&self, reader: &StoreReader, id: u32) -> Result<Arc<Dictionary>, StoreError> {
        if let Some(dictionary) = self.by_id.read().ok().and_then(|d| d.get(&id).cloned()) {
            return Ok(dictionary);
        }
        let bytes = reader.raw_get(&key(id))?.ok_or_else(|| {
            malformed(format!(
                "a record names dictionary {id}, which the store does not hold"
            ))
        })?;
        let dictionary = Arc::new(decode(&bytes)?);
        if dictionary.id() != id {
            return Err(malformed(format!(
                "the dictionary kept as {id} is {}",
                dictionary.id()
            )));
        }
        if let Ok(mut by_id) = self.by_id.write() {
            by_id.insert(id, Arc::clone(&dictionary));
        }
        Ok(dictionary)
    }
}

const WHAT: &str = "record dictionary";

/// A stored dictionary that cannot be used, and why.
fn malformed(reason: String) -> StoreError {
    StoreError::Decode {
        what: WHAT,
        source: DecodeError::Malformed { what: WHAT, reason },
    }
}

fn decode(bytes: &[u8]) -> Result<Dictionary, StoreError> {
    if bytes.len() > STORED_BYTES_MAX {
        return Err(StoreError::Decode {
            what: WHAT,
            source: DecodeError::TooLarge {
                what: WHAT,
                len: bytes.len(),
                max: STORED_BYTES_MAX,
            },
        });
    }
    Dictionary::from_bytes(bytes.to_vec(), index::RECORD_COMPRESSION_LEVEL)
        .map_err(|source| StoreError::Decode { what: WHAT, source })
}

/// The stage of the store as written: its dictionary if it has one, else
/// the encodings of its first attestations (all of them written plain).
fn load(reader: &StoreReader) -> Result<Stage, StoreError> {
    if let Some(entry) = reader.scan_from(KEY_PREFIX, KEY_PREFIX).next() {
        let (_, bytes) = entry?;
        return Ok(Stage::Trained(Arc::new(decode(&bytes)?)));
    }
    let mut samples = Vec::new();
    let what = "attestation";
    for entry in grouped::scan(&reader.db, index::PREFIX_ATTESTATION, None).take(SAMPLES) {
        let (_, bytes) = entry.map_err(|e| packed_error(what, e))?;
        let record = index::Record::from_stored(&bytes, None)
            .map_err(|source| StoreError::Decode { what, source })?;
        samples.push(record.encode());
    }
    Ok(if samples.len() < SAMPLES {
        Stage::Gathering(samples)
    } else {
        Stage::Plain
    })
}

/// The dictionary a stored frame was written with, if any.
pub fn of_frame(bytes: &[u8]) -> Option<u32> {
    compression::frame_dictionary(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(i: usize) -> Vec<u8> {
        format!(
            r#"{{"org":"supplier","eventTime":"2026-03-02T10:{:02}:{:02}Z","epc":"https://id.gs1.org/01/09506001120026/21/{:06}","bizStep":"{}"}}"#,
            i % 60,
            i * 7 % 60,
            i * 7919 % 1_000_000,
            ["commissioning", "packing", "shipping"][i % 3]
        )
        .into_bytes()
    }

    #[test]
    fn samples_are_the_first_attestations_and_the_dictionary_is_trained_at_the_block_that_completes_them()
     {
        let mut stage = Stage::Gathering(Vec::new());
        for i in 0..SAMPLES - 1 {
            stage.gather(sample(i));
        }
        assert!(stage.end_block().is_none(), "one sample short");
        assert!(stage.gathering() && stage.dictionary().is_none());
        // The block that completes the samples has more records after the
        // last sample: they are not samples.
        for i in SAMPLES - 1..SAMPLES + 10 {
            stage.gather(sample(i));
        }
        let Stage::Gathering(samples) = &stage else {
            panic!("still gathering until the block ends");
        };
        assert_eq!(samples.len(), SAMPLES);
        assert_eq!(samples[SAMPLES - 1], sample(SAMPLES - 1));
        let trained = stage.end_block().expect("trained");
        assert_eq!(stage.dictionary().map(Dictionary::id), Some(trained.id()));
        assert!(!stage.gathering());
        assert!(stage.end_block().is_none(), "trained once");
    }

    #[test]
    fn samples_zstd_trains_nothing_from_leave_records_plain_for_good() {
        let mut stage = Stage::Gathering(vec![Vec::new(); SAMPLES]);
        assert!(stage.end_block().is_none());
        assert!(matches!(stage, Stage::Plain));
        assert!(stage.dictionary().is_none() && !stage.gathering());
    }

    #[test]
    fn a_dictionary_key_names_its_id() {
        assert_eq!(key(0x0102_0304), b"mdictionary\x01\x02\x03\x04".to_vec());
        assert!(key(7).starts_with(KEY_PREFIX));
    }
}
