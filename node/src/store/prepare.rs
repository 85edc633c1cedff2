//! The part of indexing an attestation that reads nothing from the store:
//! its statement, its summary and canonical identifiers, its `a` record's
//! compressed bytes, its CBV 2.0 event hash and its lineage records. These
//! are pure functions of the envelope and its chain position, about half
//! of the commit path's CPU per event (identifier parsing, the event hash,
//! zstd, the lineage derivation and its records; docs/performance.md,
//! "Issue 11 targets"), so a
//! block's attestations are prepared on all the machine's cores before the
//! batch is assembled, in block order, on the indexing thread: the batch
//! and everything decided from the store (repeats, exposure, series) stay
//! a sequential pure function of the chain, as every node must derive the
//! same index.

use std::num::NonZeroUsize;
use std::sync::{Arc, OnceLock};

use lotline_core::Envelope;
use lotline_core::attestation::AttestationId;
use lotline_core::lineage::{self, Names};
use lotline_core::statement::Statement;

use super::compression::Dictionary;
use super::index::{self, AttestationMeta, Position};
use super::{Parsed, events, lineage as graph};

/// The fewest attestations a thread is given: starting one (and its zstd
/// context) costs more than preparing a few events, so a block of fewer
/// than twice this many is prepared on the calling thread.
const PARALLEL_MIN: usize = 64;

/// One attestation, ready to be written.
pub(super) struct Prepared {
    /// `None` for a committed payload that no longer parses (an
    /// incompatible code change): it is kept but not indexed.
    pub statement: Parsed,
    pub meta: AttestationMeta,
    /// The `a` record, as stored.
    pub stored: Vec<u8>,
    /// The `a` record's encoding, while the store gathers samples for its
    /// record dictionary (`store::dictionary`).
    pub sample: Option<Vec<u8>>,
    /// The event's repeated-capture listing and lineage, when it parsed.
    pub event: Option<PreparedEvent>,
}

pub(super) struct PreparedEvent {
    /// `events::duplicate_listing`: whether the event repeats a capture is
    /// decided from it, in block order.
    pub duplicate: String,
    /// Written unless the event repeats a capture; `None` if it says
    /// nothing of lineage.
    pub lineage: Option<graph::Records>,
}

/// How a block's `a` records are compressed: with the store's record
/// dictionary once it has one, and with their encodings kept while it
/// gathers samples (`store::dictionary::Stage`).
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Compression<'a> {
    pub dictionary: Option<&'a Dictionary>,
    pub keep_samples: bool,
}

/// Prepares the attestation at `at`; `parsed` is its statement if
/// admission parsed it already.
fn prepare(
    at: Position,
    envelope: &Envelope,
    id: AttestationId,
    parsed: Parsed,
    compression: Compression<'_>,
) -> Prepared {
    let statement = parsed.or_else(|| {
        Statement::from_payload(&envelope.payload)
            .ok()
            .map(|statement| Arc::new(statement.into()))
    });
    // Each identifier parsed once, for the listing and the derivation.
    let (meta, derived) = match statement.as_deref() {
        Some(statement) => {
            let names = Names::of(&statement.event);
            let derived = lineage::derive_named(&statement.event, &names);
            (AttestationMeta::of_named(statement, names), Some(derived))
        }
        None => (AttestationMeta::unparsed(), None),
    };
    let encoding = index::Record {
        id,
        meta: meta.record_meta(),
        envelope: envelope.clone(),
    }
    .encode();
    let stored = index::Record::stored(&encoding, compression.dictionary);
    let sample = compression.keep_samples.then_some(encoding);
    let event = statement
        .as_deref()
        .zip(derived)
        .map(|(statement, derived)| PreparedEvent {
            duplicate: events::duplicate_listing_of(statement),
            lineage: graph::records(at, &id, statement, derived, &meta.listed),
        });
    Prepared {
        statement,
        meta,
        stored,
        sample,
        event,
    }
}

/// Prepares the attestations of the block at `height`, in block order,
/// splitting them across the machine's cores when there are enough of
/// them. `parsed` may be shorter than the block (what admission did not
/// parse is parsed here).
pub(super) fn block(
    height: u64,
    envelopes: &[Envelope],
    ids: &[AttestationId],
    parsed: Vec<Parsed>,
    compression: Compression<'_>,
) -> Vec<Prepared> {
    on_threads(cores(), height, envelopes, ids, parsed, compression)
}

/// One attestation to prepare.
type Work<'a> = (Position, &'a Envelope, AttestationId, Parsed);

/// [`block`] on at most `threads` threads.
fn on_threads(
    threads: usize,
    height: u64,
    envelopes: &[Envelope],
    ids: &[AttestationId],
    parsed: Vec<Parsed>,
    compression: Compression<'_>,
) -> Vec<Prepared> {
    let mut parsed = parsed.into_iter();
    let work: Vec<Work<'_>> = envelopes
        .iter()
        .zip(ids)
        .enumerate()
        .map(|(i, (envelope, &id))| {
            let index = u32::try_from(i).unwrap_or(u32::MAX);
            (
                Position { height, index },
                envelope,
                id,
                parsed.next().flatten(),
            )
        })
        .collect();
    let threads = threads.min(work.len() / PARALLEL_MIN).max(1);
    if threads == 1 {
        return work
            .into_iter()
            .map(|work| run_one(work, compression))
            .collect();
    }
    let chunk = work.len().div_ceil(threads);
    let mut work = work.into_iter();
    let mut chunks: Vec<Vec<Work<'_>>> = (0..threads)
        .map(|_| work.by_ref().take(chunk).collect())
        .collect();
    let first = chunks.remove(0);
    let run = |chunk: Vec<Work<'_>>| -> Vec<Prepared> {
        chunk
            .into_iter()
            .map(|work| run_one(work, compression))
            .collect()
    };
    std::thread::scope(|scope| {
        let others: Vec<_> = chunks
            .into_iter()
            .map(|chunk| scope.spawn(move || run(chunk)))
            .collect();
        let mut out = run(first);
        for handle in others {
            match handle.join() {
                Ok(prepared) => out.extend(prepared),
                // A panic in preparing is a bug; carry it to the caller as
                // the same panic would have been on this thread.
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        out
    })
}

fn run_one((at, envelope, id, parsed): Work<'_>, compression: Compression<'_>) -> Prepared {
    prepare(at, envelope, id, parsed, compression)
}

/// The cores this process may use, read once.
fn cores() -> usize {
    static CORES: OnceLock<usize> = OnceLock::new();
    *CORES.get_or_init(|| {
        std::thread::available_parallelism()
            .map(NonZeroUsize::get)
            .unwrap_or(1)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bulk_load;
    use lotline_sim::workload::Scale;

    /// A few hundred real signed attestations of the generator's story.
    fn story() -> (Vec<Envelope>, Vec<AttestationId>, Vec<Parsed>) {
        let dir = tempfile::tempdir().expect("tempdir");
        let loaded = bulk_load::load(dir.path(), Scale::small(), 1_000, |_, _| {}).expect("load");
        let mut envelopes = Vec::new();
        for height in 1..=loaded.store.height() {
            let record = loaded
                .store
                .read_block(height)
                .expect("read")
                .expect("block");
            envelopes.extend(record.block.attestations);
        }
        envelopes.truncate(700);
        let ids = envelopes.iter().map(Envelope::id).collect();
        // Every other statement as admission would hand it over, the rest
        // parsed in preparing.
        let parsed = envelopes
            .iter()
            .enumerate()
            .map(|(i, envelope)| {
                (i % 2 == 0).then(|| {
                    Arc::new(
                        Statement::from_payload(&envelope.payload)
                            .expect("statement")
                            .into(),
                    )
                })
            })
            .collect();
        (envelopes, ids, parsed)
    }

    fn same(a: &Prepared, b: &Prepared) -> bool {
        a.statement == b.statement
            && a.meta == b.meta
            && a.stored == b.stored
            && match (&a.event, &b.event) {
                (Some(a), Some(b)) => a.duplicate == b.duplicate && a.lineage == b.lineage,
                (None, None) => true,
                _ => false,
            }
    }

    #[test]
    fn a_block_prepared_on_several_threads_is_the_block_prepared_on_one_in_block_order() {
        let (envelopes, ids, parsed) = story();
        assert!(
            envelopes.len() >= 4 * PARALLEL_MIN,
            "enough attestations for four threads"
        );
        let plain = Compression::default();
        let one = on_threads(1, 9, &envelopes, &ids, parsed.clone(), plain);
        for threads in [2, 3, 4] {
            let many = on_threads(threads, 9, &envelopes, &ids, parsed.clone(), plain);
            assert_eq!(many.len(), one.len());
            for (i, (a, b)) in one.iter().zip(&many).enumerate() {
                assert!(same(a, b), "attestation {i} differs on {threads} threads");
            }
        }
        assert!(
            one.iter().all(|p| p.event.is_some()),
            "every statement parsed"
        );
    }

    #[test]
    fn a_payload_that_does_not_parse_is_kept_unindexed() {
        let (mut envelopes, mut ids, _) = story();
        envelopes.truncate(3);
        envelopes[1].payload = b"not a statement".to_vec().into();
        ids.truncate(3);
        let prepared = on_threads(2, 9, &envelopes, &ids, Vec::new(), Compression::default());
        assert!(prepared[1].statement.is_none() && prepared[1].event.is_none());
        assert_eq!(prepared[1].meta, AttestationMeta::unparsed());
        let record = index::Record::from_stored(&prepared[1].stored, None).expect("record");
        assert_eq!(record.envelope, envelopes[1]);
        assert!(prepared[0].event.is_some() && prepared[2].event.is_some());
    }
}
