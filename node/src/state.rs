//! State shared between the HTTP API and the consensus actor.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use lotline_core::attestation::AttestationId;
use lotline_core::block::BlockHash;
use lotline_core::receipt::Receipt;
use tokio::sync::oneshot;

use crate::mempool::Mempool;
use crate::metrics::Metrics;

/// A committed attestation, as told to a waiting client.
#[derive(Clone, Debug)]
pub struct CommitNotice {
    pub height: u64,
    pub receipt: Receipt,
    /// When the block was committed here (submit-to-commit latency).
    pub committed_at: std::time::Instant,
}

/// The committed head, for `/v1/head` and `/health`.
#[derive(Clone, Debug, Default)]
pub struct HeadView {
    pub height: u64,
    pub hash: Option<BlockHash>,
    pub attestations: u64,
}

#[derive(Debug)]
pub struct Shared {
    pool: Mutex<Mempool>,
    /// Signalled when the pool gains items or shutdown starts.
    ready: Condvar,
    waiters: Mutex<HashMap<AttestationId, Vec<oneshot::Sender<CommitNotice>>>>,
    head: Mutex<HeadView>,
    shutdown: AtomicBool,
    /// Set when the node stopped because storage failed.
    failed: Mutex<Option<String>>,
    pub metrics: Metrics,
    /// The membership history; fed at commit ([`crate::consensus::commit`]).
    pub governance: Arc<crate::governance::Governance>,
}

/// Locks a mutex, recovering from poisoning: every critical section here
/// leaves its data consistent before any operation that could panic.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Shared {
    pub fn new(
        pool: Mempool,
        head: HeadView,
        governance: Arc<crate::governance::Governance>,
    ) -> Arc<Shared> {
        Arc::new(Shared {
            pool: Mutex::new(pool),
            ready: Condvar::new(),
            waiters: Mutex::new(HashMap::new()),
            head: Mutex::new(head),
            shutdown: AtomicBool::new(false),
            failed: Mutex::new(None),
            metrics: Metrics::default(),
            governance,
        })
    }

    pub fn pool(&self) -> MutexGuard<'_, Mempool> {
        lock(&self.pool)
    }

    /// Waits (up to `timeout`) for the pool to satisfy `until`.
    pub fn wait_pool<'a>(
        &self,
        guard: MutexGuard<'a, Mempool>,
        timeout: std::time::Duration,
    ) -> MutexGuard<'a, Mempool> {
        match self.ready.wait_timeout(guard, timeout) {
            Ok((g, _)) => g,
            Err(p) => p.into_inner().0,
        }
    }

    pub fn notify_pool(&self) {
        self.ready.notify_all();
    }

    /// Registers interest in an id's commit.
    pub fn wait_for(&self, id: AttestationId) -> oneshot::Receiver<CommitNotice> {
        let (tx, rx) = oneshot::channel();
        lock(&self.waiters).entry(id).or_default().push(tx);
        rx
    }

    /// How many ids someone waits for (tests: no claim outlives its request).
    #[cfg(test)]
    pub(crate) fn waited_ids(&self) -> usize {
        lock(&self.waiters).len()
    }

    /// Drops interest (the request ended without waiting).
    pub fn forget(&self, id: &AttestationId) {
        let mut waiters = lock(&self.waiters);
        if let Some(list) = waiters.get_mut(id) {
            list.retain(|tx| !tx.is_closed());
            if list.is_empty() {
                waiters.remove(id);
            }
        }
    }

    pub fn take_waiters(
        &self,
        ids: &[AttestationId],
    ) -> Vec<(usize, Vec<oneshot::Sender<CommitNotice>>)> {
        let mut waiters = lock(&self.waiters);
        if waiters.is_empty() {
            return Vec::new();
        }
        ids.iter()
            .enumerate()
            .filter_map(|(i, id)| waiters.remove(id).map(|w| (i, w)))
            .collect()
    }

    pub fn head(&self) -> HeadView {
        lock(&self.head).clone()
    }

    pub fn set_head(&self, head: HeadView) {
        *lock(&self.head) = head;
    }

    pub fn shutting_down(&self) -> bool {
        self.shutdown.load(Ordering::Acquire)
    }

    pub fn begin_shutdown(&self) {
        self.shutdown.store(true, Ordering::Release);
        self.ready.notify_all();
    }

    pub fn fail(&self, reason: String) {
        *lock(&self.failed) = Some(reason);
        self.begin_shutdown();
    }

    pub fn failure(&self) -> Option<String> {
        lock(&self.failed).clone()
    }
}
