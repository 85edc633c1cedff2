//! The lineage graph: which lots, serials and containers were made from,
//! packed into or shipped as which, maintained at commit.

use lotline_core::attestation::AttestationId;
use lotline_core::statement::Statement;

use super::StoreError;
use super::index::Position;

/// Adds one committed event's edges to the block's batch.
pub(super) fn index(
    _db: &sled::Tree,
    _batch: &mut sled::Batch,
    _at: Position,
    _id: &AttestationId,
    _statement: &Statement,
) -> Result<(), StoreError> {
    Ok(())
}
