//! Admitted attestations waiting for a block.
//!
//! Bounded in items and bytes. An id stays *known* from admission until its
//! block is applied to the store, so a duplicate can not slip in while its
//! twin is in flight between the mempool and the store. Ids leave in one
//! place: [`Mempool::remove_committed`], called by the commit step
//! (`consensus/commit.rs`) right after the store has them.
//!
//! The pool also keeps each attestation's statement as admission parsed it,
//! pending and in flight, so the commit step indexes it without parsing the
//! payload again ([`Mempool::statements`]).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use crate::parsed::ParsedStatement;
use crate::store::Parsed;
use lotline_core::attestation::{AttestationId, Envelope};

/// An attestation that passed admission: signature verified once, here;
/// statement parsed once, here.
#[derive(Clone, Debug)]
pub struct Admitted {
    pub id: AttestationId,
    pub envelope: Envelope,
    /// `None` for a governance transaction (not a statement).
    pub statement: Option<Arc<ParsedStatement>>,
    /// Encoded size, for the block byte limit.
    pub size: usize,
}

impl Admitted {
    /// An attestation whose checks passed, with the statement they parsed
    /// (`None` for a governance transaction). Its size counts the payload
    /// and an allowance for the envelope's framing and each signature.
    pub fn new(envelope: Envelope, statement: Option<Arc<ParsedStatement>>) -> Admitted {
        Admitted::hashed(envelope.id(), envelope, statement)
    }

    /// [`Admitted::new`] with the id this node hashed `envelope` to already
    /// (gossip and proposal checks look each envelope up by id first).
    pub fn hashed(
        id: AttestationId,
        envelope: Envelope,
        statement: Option<Arc<ParsedStatement>>,
    ) -> Admitted {
        let size = envelope.payload.len() + 200 + 100 * envelope.signatures.len();
        Admitted {
            id,
            statement,
            envelope,
            size,
        }
    }
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
    /// Arrival order; ids no longer pending are skipped lazily.
    queue: VecDeque<AttestationId>,
    pending: HashMap<AttestationId, Admitted>,
    /// Taken for a block not yet applied, with the parsed statement.
    in_flight: HashMap<AttestationId, Parsed>,
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
            in_flight: HashMap::new(),
            bytes: 0,
            items_max,
            bytes_max,
        }
    }

    pub fn insert(&mut self, item: Admitted) -> Result<(), MempoolError> {
        if self.knows(&item.id) {
            return Err(MempoolError::Duplicate(item.id));
        }
        if self.pending.len() >= self.items_max || self.bytes + item.size > self.bytes_max {
            return Err(MempoolError::Full {
                items: self.pending.len(),
                bytes: self.bytes,
            });
        }
        self.bytes += item.size;
        self.queue.push_back(item.id);
        self.pending.insert(item.id, item);
        Ok(())
    }

    /// True if `items` more attestations of `bytes` in total would be
    /// accepted now (an all-or-nothing batch checks this before inserting).
    pub fn fits(&self, items: usize, bytes: usize) -> bool {
        self.pending.len().saturating_add(items) <= self.items_max
            && self.bytes.saturating_add(bytes) <= self.bytes_max
    }

    /// True while the id is pending or in a block not yet applied.
    pub fn knows(&self, id: &AttestationId) -> bool {
        self.pending.contains_key(id) || self.in_flight.contains_key(id)
    }

    /// A pending (not yet committed) attestation.
    pub fn pending(&self, id: &AttestationId) -> Option<&Admitted> {
        self.pending.get(id)
    }

    /// The statements admission parsed for `ids` (pending or in flight), in
    /// order; `None` for an id the pool does not hold.
    pub fn statements(&self, ids: &[AttestationId]) -> Vec<Parsed> {
        ids.iter()
            .map(|id| {
                self.pending
                    .get(id)
                    .map(|a| a.statement.clone())
                    .or_else(|| self.in_flight.get(id).cloned())
                    .flatten()
            })
            .collect()
    }

    /// Takes the oldest items up to the limits; they stay known (in flight)
    /// until [`Mempool::remove_committed`]. The single-validator producer
    /// uses this: its blocks always commit.
    pub fn take(&mut self, items_max: usize, bytes_max: usize) -> Vec<Admitted> {
        let chosen = self.oldest(items_max, bytes_max, |_| false);
        let mut out = Vec::with_capacity(chosen.len());
        for id in chosen {
            if let Some(item) = self.remove_pending(&id) {
                self.in_flight.insert(id, item.statement.clone());
                out.push(item);
            }
        }
        out
    }

    /// Copies the oldest items up to the limits, skipping `exclude`d ids,
    /// and leaves them pending: a proposal that is never committed (its view
    /// nullified) must not lose them. Multi-validator leaders use this.
    pub fn peek(
        &self,
        items_max: usize,
        bytes_max: usize,
        exclude: impl Fn(&AttestationId) -> bool,
    ) -> Vec<Admitted> {
        self.oldest(items_max, bytes_max, exclude)
            .iter()
            .filter_map(|id| self.pending.get(id).cloned())
            .collect()
    }

    fn oldest(
        &self,
        items_max: usize,
        bytes_max: usize,
        exclude: impl Fn(&AttestationId) -> bool,
    ) -> Vec<AttestationId> {
        let mut out = Vec::new();
        let mut bytes = 0;
        for id in &self.queue {
            if out.len() == items_max {
                break;
            }
            let Some(item) = self.pending.get(id) else {
                continue;
            };
            if exclude(id) {
                continue;
            }
            if !out.is_empty() && bytes + item.size > bytes_max {
                break;
            }
            bytes += item.size;
            out.push(*id);
        }
        out
    }

    /// Marks the ids of a block the block log now holds as in flight: no
    /// proposal takes them again, a duplicate is still refused, and their
    /// statements stay for the indexer, until [`Mempool::remove_committed`].
    pub fn committing(&mut self, ids: &[AttestationId]) {
        for id in ids {
            if let Some(item) = self.remove_pending(id) {
                self.in_flight.insert(*id, item.statement);
            }
        }
    }

    /// Drops committed ids, pending or in flight.
    pub fn remove_committed(&mut self, ids: &[AttestationId]) {
        for id in ids {
            self.remove_pending(id);
            self.in_flight.remove(id);
        }
        self.compact();
    }

    fn remove_pending(&mut self, id: &AttestationId) -> Option<Admitted> {
        let item = self.pending.remove(id)?;
        self.bytes -= item.size;
        Some(item)
    }

    /// Keeps the lazy queue from growing beyond twice the live items.
    fn compact(&mut self) {
        while self
            .queue
            .front()
            .is_some_and(|id| !self.pending.contains_key(id))
        {
            self.queue.pop_front();
        }
        if self.queue.len() > 2 * self.pending.len() + 64 {
            let pending = &self.pending;
            self.queue.retain(|id| pending.contains_key(id));
        }
    }

    pub fn len(&self) -> usize {
        self.pending.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
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
            statement: Some(Arc::new(crate::store::testing::Chain::statement().into())),
            size: 100,
        }
    }

    #[test]
    fn duplicates_are_refused_until_committed() {
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
        pool.remove_committed(&[taken[0].id]);
        assert!(!pool.knows(&item(1).id));
    }

    #[test]
    fn peek_leaves_items_pending_and_commit_removes_them() {
        let mut pool = Mempool::new(10, 10_000);
        for n in 1..=3 {
            pool.insert(item(n)).unwrap();
        }
        let first = pool.peek(2, 10_000, |_| false);
        assert_eq!(first.len(), 2);
        assert_eq!(pool.len(), 3, "peek does not remove");
        let excluded = first[0].id;
        let next = pool.peek(10, 10_000, |id| *id == excluded);
        assert_eq!(next.len(), 2);
        assert!(next.iter().all(|a| a.id != excluded));
        pool.remove_committed(&[first[0].id, first[1].id]);
        assert_eq!(pool.len(), 1);
        assert!(!pool.knows(&first[0].id));
    }

    /// Goal: between the block log append and the index (another thread),
    /// a committed id is neither proposed again nor admitted again, and the
    /// indexer still finds its statement.
    #[test]
    fn committing_ids_leave_proposals_but_stay_known_until_indexed() {
        let mut pool = Mempool::new(10, 10_000);
        for n in 1..=2 {
            pool.insert(item(n)).unwrap();
        }
        let committed = item(1).id;
        pool.committing(&[committed]);
        let proposable = pool.peek(10, 10_000, |_| false);
        assert_eq!(proposable.len(), 1);
        assert_ne!(proposable[0].id, committed);
        assert!(matches!(
            pool.insert(item(1)),
            Err(MempoolError::Duplicate(_))
        ));
        assert!(pool.statements(&[committed])[0].is_some());
        pool.remove_committed(&[committed]);
        assert!(!pool.knows(&committed));
        assert!(pool.statements(&[committed])[0].is_none());
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
