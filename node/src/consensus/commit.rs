//! What happens when a block is final, the same for every engine, in two
//! halves on two threads.
//!
//! The consensus actor makes the block durable: it appends it to the block
//! log and fdatasyncs (the commit point), marks its ids in the mempool as
//! committing (no proposal takes them again, no client can submit a twin),
//! and hands it to the [`Indexer`]. The indexer thread writes the sled
//! records and indexes — several queued blocks in one batch when it is
//! behind — then publishes the new head, drops the ids from the mempool and
//! answers waiting clients. So the next view's votes and the next block's
//! fdatasync overlap the previous block's indexing instead of waiting for it,
//! while every read still sees a state the block log has reached (the head
//! moves only after the index has the block) and a client's receipt still
//! means that the API can read what it names.
//!
//! After a crash the index may lack the last appended blocks; opening the
//! store re-applies them from the log ([`Store::open`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;
use std::time::Instant;

use lotline_core::attestation::AttestationId;

use crate::state::{CommitNotice, HeadView, Shared};
use crate::store::index::BlockMeta;
use crate::store::{BlockRecord, Store, StoreError, StoreReader, receipt_from};

/// Appended blocks waiting for the indexer at most; the consensus actor
/// waits when the indexer is this far behind (backpressure, bounded memory).
pub const INDEX_QUEUE_BLOCKS: usize = 8;

/// A block in the log, not yet in the index.
struct Appended {
    record: BlockRecord,
    ids: Vec<AttestationId>,
    /// When its commit began (the commit latency runs to its index write).
    started: Instant,
}

/// The indexer thread: the second half of the commit step (module doc).
/// Dropping it lets the thread index what is queued and joins it.
#[derive(Debug)]
pub struct Indexer {
    tx: Option<SyncSender<Appended>>,
    thread: Option<JoinHandle<()>>,
    /// The highest height the index holds.
    indexed: Arc<AtomicU64>,
}

impl Indexer {
    /// Starts the indexer for a store whose index holds `indexed` blocks.
    pub fn start(
        reader: StoreReader,
        shared: Arc<Shared>,
        indexed: u64,
    ) -> std::io::Result<Indexer> {
        let (tx, rx) = sync_channel(INDEX_QUEUE_BLOCKS);
        let indexed = Arc::new(AtomicU64::new(indexed));
        let height = indexed.clone();
        let thread = std::thread::Builder::new()
            .name("indexer".into())
            .spawn(move || index_blocks(&rx, &reader, &shared, &height))?;
        Ok(Indexer {
            tx: Some(tx),
            thread: Some(thread),
            indexed,
        })
    }

    /// The highest height the index holds: blocks at or below it are in
    /// sled; the ones above it only in the block log (and the actor's view).
    pub fn indexed(&self) -> u64 {
        self.indexed.load(Ordering::Acquire)
    }
}

impl Drop for Indexer {
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Commits `record`: the block log's half here, the index's on the indexer
/// thread (module doc). On error nothing was acknowledged; the caller stops
/// the node.
pub fn commit(
    store: &mut Store,
    indexer: &Indexer,
    shared: &Shared,
    record: BlockRecord,
    ids: Vec<AttestationId>,
) -> Result<(), StoreError> {
    let started = Instant::now();
    let ids = crate::metrics::timed(&shared.metrics.log_append_seconds, || {
        store.append_hashed(&record, ids)
    })?;
    shared.governance.commit(&record.block);
    shared.pool().committing(&ids);
    let tx = indexer.tx.as_ref().ok_or(StoreError::IndexerStopped)?;
    tx.send(Appended {
        record,
        ids,
        started,
    })
    .map_err(|_| StoreError::IndexerStopped)
}

/// The indexer thread's loop: until the actor drops its end, index what is
/// queued, one sled batch for all of it, then publish block by block. A
/// store error stops the node (as a failed block log append does).
fn index_blocks(
    rx: &Receiver<Appended>,
    reader: &StoreReader,
    shared: &Shared,
    indexed: &AtomicU64,
) {
    while let Ok(first) = rx.recv() {
        let mut queued = vec![first];
        while queued.len() < INDEX_QUEUE_BLOCKS {
            match rx.try_recv() {
                Ok(next) => queued.push(next),
                Err(_) => break,
            }
        }
        let parsed = {
            let pool = shared.pool();
            queued.iter().map(|b| pool.statements(&b.ids)).collect()
        };
        let blocks: Vec<(&BlockRecord, &[AttestationId])> = queued
            .iter()
            .map(|b| (&b.record, b.ids.as_slice()))
            .collect();
        let applied = crate::metrics::timed(&shared.metrics.index_apply_seconds, || {
            reader.apply_blocks(&blocks, parsed)
        });
        if let Err(error) = applied {
            tracing::error!(%error, "indexing failed; stopping the node");
            shared.fail(format!("indexing failed: {error}"));
            return;
        }
        for block in queued {
            let height = block.record.block.header.height;
            publish(reader, shared, block);
            indexed.store(height, Ordering::Release);
        }
    }
}

/// What follows a block's indexing: metrics, the head, the mempool, the
/// waiting clients — in that order, so that nobody hears of a commit the
/// API can not read yet.
fn publish(reader: &StoreReader, shared: &Shared, block: Appended) {
    let Appended {
        record,
        ids,
        started,
    } = block;
    shared.metrics.observe_commit(started.elapsed(), ids.len());
    shared
        .metrics
        .observe_finality(record.block.header.timestamp_ms, crate::clock::unix_ms());
    let header = &record.block.header;
    let previous = shared.head();
    shared.set_head(HeadView {
        height: header.height,
        hash: Some(header.hash()),
        attestations: previous.attestations + u64::from(header.count),
    });
    // The index has the ids now, so removing them from the pool can not
    // open a window for a duplicate (see `crate::ingest`).
    shared.pool().remove_committed(&ids);
    notify_waiters(reader, shared, record, &ids);
}

/// Answers clients waiting for any of `ids` with their receipt.
fn notify_waiters(
    reader: &StoreReader,
    shared: &Shared,
    record: BlockRecord,
    ids: &[AttestationId],
) {
    let waiting = shared.take_waiters(ids);
    if waiting.is_empty() {
        return;
    }
    let committed_at = Instant::now();
    let header = record.block.header;
    let height = header.height;
    let tree = reader.tree(height, ids);
    let meta = BlockMeta {
        header,
        finality: record.finality,
        ids: ids.to_vec(),
    };
    let mut attestations: Vec<Option<lotline_core::Envelope>> =
        record.block.attestations.into_iter().map(Some).collect();
    for (index, senders) in waiting {
        let Some(envelope) = attestations.get_mut(index).and_then(Option::take) else {
            continue;
        };
        let Some(receipt) = receipt_from(
            &tree,
            envelope,
            u32::try_from(index).unwrap_or(u32::MAX),
            &meta,
        ) else {
            continue;
        };
        for tx in senders {
            let _ = tx.send(CommitNotice {
                height,
                receipt: receipt.clone(),
                committed_at,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mempool::Mempool;
    use crate::store::testing::Chain;

    /// Goal: a block the log holds but the index never got (a crash between
    /// the two halves) is indexed when the store opens, so no acknowledged
    /// write depends on the indexer having run.
    #[test]
    fn a_block_appended_but_not_indexed_is_indexed_at_open() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut chain = Chain::new();
        let (mut store, _) = Store::open(dir.path(), chain.set.clone()).expect("open");
        let record = chain.block(vec![Chain::envelope(1), Chain::envelope(2)]);
        let ids = store.append(&record).expect("append");
        assert!(store.reader().attestation(&ids[0]).expect("read").is_none());
        drop(store);
        let (store, report) = Store::open(dir.path(), chain.set.clone()).expect("reopen");
        assert_eq!(report.reapplied_blocks, 1);
        for id in &ids {
            assert!(store.reader().attestation(id).expect("read").is_some());
        }
    }

    /// Goal: the head moves, the mempool lets go and a waiting client hears
    /// of its commit only once the index holds the block, and blocks queued
    /// while the indexer is busy are all indexed, in order.
    #[test]
    fn clients_hear_of_a_commit_only_after_the_index_has_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut chain = Chain::new();
        let (mut store, _) = Store::open(dir.path(), chain.set.clone()).expect("open");
        let shared = Shared::new(
            Mempool::new(100, 1 << 20),
            HeadView::default(),
            Chain::governance(),
        );
        let indexer = Indexer::start(store.reader(), shared.clone(), 0).expect("indexer");
        let records: Vec<BlockRecord> = (0..3u32)
            .map(|n| chain.block(vec![Chain::envelope(10 * n), Chain::envelope(10 * n + 1)]))
            .collect();
        let last_id = records[2].block.attestations[1].id();
        let mut notice = shared.wait_for(last_id);
        for record in records {
            let ids = record.block.ids();
            commit(&mut store, &indexer, &shared, record, ids).expect("commit");
        }
        let reader = store.reader();
        let notice = loop {
            match notice.try_recv() {
                Ok(notice) => break notice,
                Err(tokio::sync::oneshot::error::TryRecvError::Empty) => {
                    std::thread::sleep(std::time::Duration::from_millis(5))
                }
                Err(error) => panic!("no commit notice: {error}"),
            }
        };
        assert_eq!(notice.height, 3);
        assert!(reader.attestation(&last_id).expect("read").is_some());
        assert!(shared.head().height >= 3);
        assert_eq!(reader.applied_height().expect("applied"), 3);
        drop(indexer);
        assert_eq!(shared.head().height, 3);
        assert!(shared.failure().is_none());
    }
}
