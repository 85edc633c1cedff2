//! What happens when a block is final, the same for every engine: make it
//! durable and indexed, publish the new head, answer waiting clients, and
//! drop its attestations from the mempool.

use std::time::Instant;

use lotline_core::attestation::AttestationId;

use crate::state::{CommitNotice, HeadView, Shared};
use crate::store::index::BlockMeta;
use crate::store::{BlockRecord, Store, StoreError, receipt_from};

/// Commits `record`, indexing the statements the mempool holds as admission
/// parsed them. On error nothing was acknowledged; the caller stops the node.
pub fn commit(store: &mut Store, shared: &Shared, record: BlockRecord) -> Result<(), StoreError> {
    let started = Instant::now();
    let ids = store.commit(&record, |ids| shared.pool().statements(ids))?;
    shared.metrics.observe_commit(started.elapsed(), ids.len());
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    shared
        .metrics
        .observe_finality(record.block.header.timestamp_ms, now_ms);
    let header = &record.block.header;
    let previous = shared.head();
    shared.set_head(HeadView {
        height: header.height,
        hash: Some(header.hash()),
        attestations: previous.attestations + u64::from(header.count),
    });
    // The store has the ids now, so removing them from the pool can not open
    // a window for a duplicate (see `crate::ingest`).
    shared.pool().remove_committed(&ids);
    notify_waiters(store, shared, record, &ids);
    Ok(())
}

/// Answers clients waiting for any of `ids` with their receipt.
fn notify_waiters(store: &Store, shared: &Shared, record: BlockRecord, ids: &[AttestationId]) {
    let waiting = shared.take_waiters(ids);
    if waiting.is_empty() {
        return;
    }
    let header = record.block.header;
    let height = header.height;
    let tree = store.reader().tree(height, ids);
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
            });
        }
    }
}
