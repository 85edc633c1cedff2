//! Governance transactions in the index: one key per chain position that
//! holds one, so the node rebuilds its membership history at open without
//! reading the block log.
//!
//! ```text
//! c | height (u64 BE) | index (u32 BE) -> empty     (the record is the `a` entry)
//! ```
//!
//! Written in the block's atomic sled batch like every other index entry
//! and rebuilt with them from the block log. Stores written before this
//! keyspace existed hold no governance transaction (admission refused their
//! payload type), so an absent keyspace is a correct, empty one: no format
//! bump.

use lotline_core::Envelope;
use lotline_genesis::governance::PAYLOAD_TYPE;

use super::index::{self, Position};
use super::{StoreError, StoreReader};

/// The keyspace prefix.
pub const PREFIX_GOVERNANCE: u8 = b'c';

/// Adds the entry of a governance transaction at `at` to a block's batch;
/// other payloads add nothing.
pub(super) fn index(batch: &mut super::Writes, at: Position, envelope: &Envelope) {
    if envelope.payload_type == PAYLOAD_TYPE {
        batch.insert(
            &index::position_key(PREFIX_GOVERNANCE, at)[..],
            index::EMPTY,
        );
    }
}

impl StoreReader {
    /// Every committed governance transaction, in chain order, with where
    /// it sits.
    pub fn governance(&self) -> Result<Vec<(Position, Envelope)>, StoreError> {
        let mut out = Vec::new();
        for entry in self.db.scan_prefix([PREFIX_GOVERNANCE]) {
            let (key, _) = entry.map_err(|e| self.sled_err(e))?;
            let Some((height, index)) = index::listing_position(&key[..]) else {
                continue;
            };
            let at = Position { height, index };
            let (_, stored) = self.attestation_at(at)?.ok_or(StoreError::Missing {
                what: "governance transaction",
                at,
            })?;
            out.push((at, stored.envelope));
        }
        Ok(out)
    }
}
