//! State shared between the HTTP API and the consensus actor.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};

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

/// How a local admission wakes a consensus actor that sleeps with nothing
/// to order. The BFT actor waits on its event queue, not on the pool's
/// condition variable, and without this it would look at the pool on a
/// timer: a client's attestation on an idle chain waited up to that poll,
/// and every idle node woke 200 times a second to look.
///
/// The actor marks itself idle *before* it looks at the pool a last time,
/// and an admission calls [`IdleWake::notify`] *after* its attestation is
/// in the pool, so one of the two sees the other: either the look finds
/// the attestation or the admission finds the mark and wakes the actor.
#[derive(Default)]
pub struct IdleWake {
    idle: AtomicBool,
    wake: OnceLock<Box<dyn Fn() + Send + Sync>>,
}

impl std::fmt::Debug for IdleWake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdleWake")
            .field("idle", &self.idle.load(Ordering::Relaxed))
            .field("installed", &self.wake.get().is_some())
            .finish()
    }
}

impl IdleWake {
    /// How to wake the actor (installed once, when it starts).
    pub fn install(&self, wake: impl Fn() + Send + Sync + 'static) {
        let _ = self.wake.set(Box::new(wake));
    }

    /// The actor is about to look at the pool a last time, then sleep.
    pub fn sleeping(&self) {
        self.idle.store(true, Ordering::SeqCst);
    }

    /// The actor woke (for whatever reason): no admission need wake it.
    pub fn awake(&self) {
        self.idle.store(false, Ordering::SeqCst);
    }

    /// Wakes the actor if it sleeps idle; at most one wake per sleep.
    pub fn notify(&self) {
        if self.idle.swap(false, Ordering::SeqCst)
            && let Some(wake) = self.wake.get()
        {
            wake();
        }
    }
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
    /// Wakes an idle consensus actor when the pool gains items.
    pub idle: IdleWake,
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
            idle: IdleWake::default(),
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
        self.idle.notify();
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    fn counted() -> (IdleWake, Arc<AtomicUsize>) {
        let wakes = Arc::new(AtomicUsize::new(0));
        let idle = IdleWake::default();
        let counter = wakes.clone();
        idle.install(move || {
            counter.fetch_add(1, Ordering::SeqCst);
        });
        (idle, wakes)
    }

    /// Goal: an admission wakes an actor that sleeps idle, once per sleep,
    /// and never one that is awake (it looks at the pool itself).
    #[test]
    fn an_admission_wakes_an_idle_actor_once_per_sleep() {
        let (idle, wakes) = counted();
        idle.notify();
        assert_eq!(wakes.load(Ordering::SeqCst), 0, "awake: no wake");
        idle.sleeping();
        idle.notify();
        idle.notify();
        assert_eq!(wakes.load(Ordering::SeqCst), 1, "one wake per sleep");
        idle.awake();
        idle.notify();
        assert_eq!(wakes.load(Ordering::SeqCst), 1);
        idle.sleeping();
        idle.notify();
        assert_eq!(wakes.load(Ordering::SeqCst), 2);
    }
}
