//! What the store holds, by keyspace: the logical bytes of every sled key
//! prefix and the bytes each file takes on disk. For benchmarks and
//! operators sizing a node (docs/performance.md, "Storage per event"); a
//! full scan of the index, so never on a request path.

use std::collections::BTreeMap;
use std::path::Path;

use super::{StoreError, StoreReader};

/// The logical size of one sled keyspace (all keys sharing a first byte).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Keyspace {
    pub prefix: u8,
    pub keys: u64,
    pub key_bytes: u64,
    pub value_bytes: u64,
}

impl Keyspace {
    /// What the keyspace holds (the module that owns it documents its keys).
    pub fn name(&self) -> &'static str {
        name(self.prefix)
    }

    pub fn bytes(&self) -> u64 {
        self.key_bytes + self.value_bytes
    }
}

/// The keyspace names, by first key byte.
fn name(prefix: u8) -> &'static str {
    match prefix {
        b'a' => "attestation record",
        b'b' => "block meta",
        b'c' => "governance transactions",
        b'd' => "container and destination units (quality)",
        b'e' => "evidence",
        b'f' => "carrier units (quality)",
        b'g' => "lineage edges of unlisted nodes",
        b'h' => "custody",
        b'i' => "identifier listing",
        b'l' => "lot units (quality)",
        b'm' => "marks",
        b'n' => "id -> position (format 19 and earlier)",
        b'o' => "org listing",
        b'p' => "chain position listing",
        b'q' => "quality facts",
        b'r' => "recall orders",
        b's' => "bizStep listing",
        b't' => "eventType listing",
        b'u' => "measurement series (quality)",
        b'v' => "eventID listing",
        b'w' => "event hash and org (repeated captures)",
        b'x' => "error declarations",
        b'y' => "event origin, custody and edges",
        b'z' => "sealed measurement points (quality, retention)",
        _ => "unknown",
    }
}

/// Bytes a file tree takes: its length, and what the file system allocated
/// (less for sparse files, more for the last block of each file).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DiskBytes {
    pub apparent: u64,
    pub allocated: u64,
}

/// The bytes under `path` (a file or a directory, recursively).
pub fn disk_bytes(path: &Path) -> std::io::Result<DiskBytes> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::symlink_metadata(path)?;
    let mut out = DiskBytes {
        apparent: meta.len(),
        allocated: meta.blocks() * 512,
    };
    if meta.is_dir() {
        out = DiskBytes::default();
        for entry in std::fs::read_dir(path)? {
            let inner = disk_bytes(&entry?.path())?;
            out.apparent += inner.apparent;
            out.allocated += inner.allocated;
        }
    }
    Ok(out)
}

impl StoreReader {
    /// Every keyspace's key count and logical bytes, by first key byte.
    pub fn keyspaces(&self) -> Result<Vec<Keyspace>, StoreError> {
        let mut spaces: BTreeMap<u8, Keyspace> = BTreeMap::new();
        for entry in self.db.iter() {
            let (key, value) = entry.map_err(|e| self.sled_err(e))?;
            let prefix = key.first().copied().unwrap_or(0);
            let space = spaces.entry(prefix).or_insert_with(|| Keyspace {
                prefix,
                ..Keyspace::default()
            });
            space.keys += 1;
            space.key_bytes += key.len() as u64;
            space.value_bytes += value.len() as u64;
        }
        Ok(spaces.into_values().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;
    use crate::store::testing::Chain;

    /// Goal: the counts are the store's real keys. Method: commit one block
    /// of three non-statement payloads (no event indexes) and check the
    /// attestation and block keyspaces against what the block wrote.
    #[test]
    fn keyspaces_count_what_a_block_wrote() {
        let dir = tempfile::tempdir().unwrap();
        let mut chain = Chain::new();
        let (mut store, _) = Store::open(dir.path(), chain.set.clone()).unwrap();
        let record = chain.block((0..3).map(Chain::envelope).collect());
        store.commit(&record, |_| Vec::new()).unwrap();
        let spaces = store.reader().keyspaces().unwrap();
        let attestations = spaces.iter().find(|s| s.prefix == b'a').unwrap();
        // Format 22: the block's three records share one key (`store::grouped`).
        assert_eq!((attestations.keys, attestations.key_bytes), (1, 13));
        assert!(attestations.value_bytes > 3 * 64, "holds the envelopes");
        // Format 20: ids are found through the block's record and the log's
        // filter, not a key per attestation.
        assert!(spaces.iter().all(|s| s.prefix != b'n'));
        let blocks = spaces.iter().find(|s| s.prefix == b'b').unwrap();
        assert_eq!(blocks.keys, 1);
        assert_eq!(blocks.name(), "block meta");
        let total = disk_bytes(dir.path()).unwrap();
        assert!(total.apparent > 0);
    }
}
