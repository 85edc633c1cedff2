//! Which attestation ids the block log holds, so that a block repeating one
//! committed earlier is refused by the log itself, whatever state sled is in.
//!
//! Kept in memory as a hash filter: the first 8 bytes of each id (ids are
//! BLAKE3 digests, so the prefixes are uniform) and the height of the block
//! that holds it, in [`BUCKETS`] unsorted buckets chosen by the prefix's top
//! bits. A lookup scans one bucket; a matching prefix only names a *candidate*
//! block, which the caller confirms exactly by reading that block from the
//! log (a false match needs two ids sharing 64 bits: about n / 2^64 per
//! lookup, so in practice never).
//!
//! Memory is 12 bytes per id plus the buckets' spare capacity: about 120 MB
//! at 10 million ids, against 320 MB for the ids themselves or ~285 MB for a
//! hash map of prefix to height. The structure is rebuilt at open from the
//! block index (`index_file.rs`), 8 bytes per id read sequentially, not from
//! the blocks.

use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use lotline_core::attestation::AttestationId;

/// Number of buckets (a power of two). At 10 million ids a bucket holds about
/// 600 prefixes, a 5 KB scan; an empty store costs 16,384 × 48 bytes.
pub const BUCKETS: usize = 1 << 14;
const BUCKET_SHIFT: u32 = 64 - BUCKETS.trailing_zeros();

#[derive(Debug, Default, Clone)]
struct Bucket {
    prefixes: Vec<u64>,
    heights: Vec<u32>,
}

/// The filter over committed ids; see the module doc.
#[derive(Debug, Clone)]
pub struct CommittedIds {
    buckets: Vec<Bucket>,
    len: u64,
}

impl Default for CommittedIds {
    fn default() -> Self {
        CommittedIds {
            buckets: vec![Bucket::default(); BUCKETS],
            len: 0,
        }
    }
}

/// The filter key of an id: its first 8 bytes.
pub fn prefix(id: &AttestationId) -> u64 {
    let bytes = id.0.as_bytes();
    u64::from_be_bytes([
        bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5], bytes[6], bytes[7],
    ])
}

/// A block height as stored in the filter.
///
/// Heights are kept in 32 bits (4 billion blocks); one beyond that is
/// refused rather than silently wrapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("block height {0} is beyond the committed-id filter's range (2^32 - 1)")]
pub struct HeightOutOfRange(pub u64);

impl CommittedIds {
    /// Records the ids (by prefix) of the block at `height`.
    pub fn insert(
        &mut self,
        height: u64,
        prefixes: impl IntoIterator<Item = u64>,
    ) -> Result<(), HeightOutOfRange> {
        let height = u32::try_from(height).map_err(|_| HeightOutOfRange(height))?;
        for prefix in prefixes {
            let bucket = &mut self.buckets[bucket_of(prefix)];
            bucket.prefixes.push(prefix);
            bucket.heights.push(height);
            self.len += 1;
        }
        Ok(())
    }

    /// Heights of the blocks that may hold `id` (each must be confirmed by
    /// reading the block); empty if no committed id shares its prefix.
    pub fn candidates(&self, id: &AttestationId) -> impl Iterator<Item = u64> + '_ {
        self.candidates_of(prefix(id))
    }

    /// Heights recorded under a filter key: the same filter serves keys
    /// other than ids (`store::hashed`'s listings).
    pub fn candidates_of(&self, prefix: u64) -> impl Iterator<Item = u64> + '_ {
        let bucket = &self.buckets[bucket_of(prefix)];
        bucket
            .prefixes
            .iter()
            .zip(&bucket.heights)
            .filter(move |(p, _)| **p == prefix)
            .map(|(_, h)| u64::from(*h))
    }

    /// Ids recorded.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

fn bucket_of(prefix: u64) -> usize {
    // BUCKET_SHIFT leaves the top log2(BUCKETS) bits: always < BUCKETS.
    usize::try_from(prefix >> BUCKET_SHIFT).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use lotline_core::hash::Digest;

    fn id(first: [u8; 8], rest: u8) -> AttestationId {
        let mut bytes = [rest; 32];
        bytes[..8].copy_from_slice(&first);
        AttestationId(Digest(bytes))
    }

    #[test]
    fn a_recorded_prefix_names_its_block_and_others_name_none() {
        let mut ids = CommittedIds::default();
        let a = id([1, 2, 3, 4, 5, 6, 7, 8], 0);
        let b = id([0xff; 8], 0);
        ids.insert(3, [prefix(&a)]).unwrap();
        ids.insert(9, [prefix(&b)]).unwrap();
        assert_eq!(ids.candidates(&a).collect::<Vec<_>>(), vec![3]);
        assert_eq!(ids.candidates(&b).collect::<Vec<_>>(), vec![9]);
        // Same bucket, other prefix: no candidate.
        assert_eq!(ids.candidates(&id([1, 2, 3, 4, 5, 6, 7, 9], 0)).count(), 0);
        // Same prefix, other id: a candidate the caller must confirm.
        assert_eq!(ids.candidates(&id([1, 2, 3, 4, 5, 6, 7, 8], 1)).count(), 1);
        assert_eq!(ids.len(), 2);
        assert_eq!(
            ids.insert(u64::from(u32::MAX) + 1, [1]),
            Err(HeightOutOfRange(u64::from(u32::MAX) + 1))
        );
    }
}

/// One filter shared by the block log, which fills it as blocks become
/// durable, and the store's readers, which find a committed id's block
/// through it ([`crate::store::StoreReader::position`]): the same 12 bytes
/// per id serve the log's repeat check and the readers' lookups, in place
/// of a sled key per attestation (index format 20 dropped the `n` keyspace,
/// whose random keys cost about 700 bytes of sled's disk per event).
#[derive(Debug, Clone, Default)]
pub struct SharedIds(Arc<RwLock<CommittedIds>>);

impl SharedIds {
    /// A panic while the lock was held leaves at worst one block's prefixes
    /// half recorded, which only makes a lookup miss or confirm a candidate
    /// it reads anyway: the filter stays usable.
    fn read(&self) -> RwLockReadGuard<'_, CommittedIds> {
        self.0
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, CommittedIds> {
        self.0
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// [`CommittedIds::insert`].
    pub fn insert(
        &self,
        height: u64,
        prefixes: impl IntoIterator<Item = u64>,
    ) -> Result<(), HeightOutOfRange> {
        self.write().insert(height, prefixes)
    }

    /// [`CommittedIds::candidates`], ascending, collected so that no lock is
    /// held while the caller reads the blocks.
    pub fn candidates(&self, id: &AttestationId) -> Vec<u64> {
        self.candidates_of(prefix(id))
    }

    /// [`CommittedIds::candidates_of`], ascending, each once, collected as
    /// [`SharedIds::candidates`].
    pub fn candidates_of(&self, prefix: u64) -> Vec<u64> {
        let mut heights: Vec<u64> = self.read().candidates_of(prefix).collect();
        heights.sort_unstable();
        heights.dedup();
        heights
    }

    pub fn len(&self) -> u64 {
        self.read().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Moves `other`'s ids into this cell, dropping what it held: a log
    /// opened again hands its filter to the readers that already share
    /// this one.
    pub fn replace_with(&self, other: &SharedIds) {
        if Arc::ptr_eq(&self.0, &other.0) {
            return;
        }
        let ids = std::mem::take(&mut *other.write());
        *self.write() = ids;
    }
}
