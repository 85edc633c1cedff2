//! Admitted attestations waiting for a block.
//!
//! Bounded in items and bytes. An id stays *known* from admission until its
//! block is applied to the store, so a duplicate can not slip in while its
//! twin is in flight between the mempool and the store.

use std::collections::{HashMap, HashSet, VecDeque};

use lotline_core::attestation::{AttestationId, Envelope};

use crate::store::index::AttestationMeta;

/// An attestation that passed admission: signature verified once, here.
#[derive(Clone, Debug)]
pub struct Admitted {
    pub id: AttestationId,
    pub envelope: Envelope,
    pub meta: AttestationMeta,
    /// Encoded size, for the block byte limit.
    pub size: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MempoolError {
    #[error("attestation {0} is already pending")]
    Duplicate(AttestationId),
    #[error("the mempool is full ({items} attestations, {bytes} bytes); retry later")]
    Full { items: usize, bytes: usize },
}

#[derive(Debug)]
pub struct Mempool {
    queue: VecDeque<Admitted>,
    pending: HashMap<AttestationId, Envelope>,
    in_flight: HashSet<AttestationId>,
    bytes: usize,
    items_max: usize,
    bytes_max: usize,
}

impl Mempool {
    pub fn new(items_max: usize, bytes_max: usize) -> Mempool {
        assert!(
            items_max > 0 && bytes_max > 0,
            "mempool limits must be positive"
        );
        Mempool {
            queue: VecDeque::new(),
            pending: HashMap::new(),
            in_flight: HashSet::new(),
            bytes: 0,
            items_max,
            bytes_max,
        }
    }

    pub fn insert(&mut self, item: Admitted) -> Result<(), MempoolError> {
        if self.knows(&item.id) {
            return Err(MempoolError::Duplicate(item.id));
        }
        if self.queue.len() >= self.items_max || self.bytes + item.size > self.bytes_max {
            return Err(MempoolError::Full {
                items: self.queue.len(),
                bytes: self.bytes,
            });
        }
        self.bytes += item.size;
        self.pending.insert(item.id, item.envelope.clone());
        self.queue.push_back(item);
        Ok(())
    }

    /// True while the id is pending or in a block not yet applied.
    pub fn knows(&self, id: &AttestationId) -> bool {
        self.pending.contains_key(id) || self.in_flight.contains(id)
    }

    /// The envelope of a pending (not yet in a block) attestation.
    pub fn pending(&self, id: &AttestationId) -> Option<&Envelope> {
        self.pending.get(id)
    }

    /// Takes the oldest items up to the limits; they become in-flight.
    pub fn take(&mut self, items_max: usize, bytes_max: usize) -> Vec<Admitted> {
        let mut out = Vec::new();
        let mut bytes = 0;
        while let Some(front) = self.queue.front() {
            if out.len() == items_max || (!out.is_empty() && bytes + front.size > bytes_max) {
                break;
            }
            let Some(item) = self.queue.pop_front() else {
                break;
            };
            bytes += item.size;
            self.bytes -= item.size;
            self.pending.remove(&item.id);
            self.in_flight.insert(item.id);
            out.push(item);
        }
        out
    }

    /// Forgets ids whose block is applied (or whose block failed).
    pub fn complete(&mut self, ids: impl IntoIterator<Item = AttestationId>) {
        for id in ids {
            self.in_flight.remove(&id);
        }
    }

    pub fn len(&self) -> usize {
        self.queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lotline_core::SigningKey;

    fn item(n: u8) -> Admitted {
        let envelope = Envelope::sign(vec![n], &SigningKey::from_seed(&[1; 32]));
        Admitted {
            id: envelope.id(),
            envelope,
            meta: AttestationMeta {
                org: "o".into(),
                event_type: "ObjectEvent".into(),
                event_time: String::new(),
                biz_step: None,
                identifiers: vec![],
            },
            size: 100,
        }
    }

    #[test]
    fn duplicates_are_refused_until_complete() {
        let mut pool = Mempool::new(10, 10_000);
        pool.insert(item(1)).unwrap();
        assert!(matches!(
            pool.insert(item(1)),
            Err(MempoolError::Duplicate(_))
        ));
        let taken = pool.take(10, 10_000);
        assert_eq!(taken.len(), 1);
        // In flight: still a duplicate.
        assert!(matches!(
            pool.insert(item(1)),
            Err(MempoolError::Duplicate(_))
        ));
        pool.complete(taken.iter().map(|a| a.id));
        assert!(!pool.knows(&item(1).id));
    }

    #[test]
    fn limits_bound_items_and_bytes() {
        let mut pool = Mempool::new(2, 10_000);
        pool.insert(item(1)).unwrap();
        pool.insert(item(2)).unwrap();
        assert!(matches!(
            pool.insert(item(3)),
            Err(MempoolError::Full { .. })
        ));
        assert_eq!(pool.take(10, 150).len(), 1, "byte limit cuts the block");
        assert_eq!(pool.take(10, 150).len(), 1);
        assert!(pool.is_empty());
    }
}
