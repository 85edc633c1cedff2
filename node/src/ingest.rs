//! The write path between admission and consensus, in one place.
//!
//! A client's admitted attestations (signatures verified once, in
//! [`crate::admission`]) enter the mempool here and nowhere else, all of a
//! request or none; they go to the peers from here; and whoever asked waits
//! for their commit here, with one deadline, whatever the route —
//! `POST /v1/attestations`, its batch form, or an EPCIS capture job. The
//! handlers translate HTTP into these calls and the outcomes back into HTTP.
//!
//! Why the order matters: a waiter is registered before its attestation can
//! enter the pool, so no commit can slip past it; and the pool lock is held
//! while the store is asked whether an id is committed, which closes the
//! window in which the commit step (`consensus/commit.rs`: store first, then
//! the pool) could let a duplicate in.

use std::collections::BTreeSet;
use std::sync::Arc;

use lotline_core::attestation::AttestationId;
use tokio::sync::{Notify, oneshot};
use tokio::time::Instant;

use crate::admission::{AdmissionError, Rejection};
use crate::mempool::{Admitted, Mempool, MempoolError};
use crate::net::NetworkHandle;
use crate::state::{CommitNotice, Shared};
use crate::store::{NotFresh, StoreReader};

/// Where admitted attestations go: the pool, the peers, the waiters.
#[derive(Clone, Debug)]
pub struct Ingest {
    shared: Arc<Shared>,
    reader: StoreReader,
    /// Peers get every attestation admitted here (multi-validator nodes).
    net: Option<NetworkHandle>,
}

/// How a client's wait for one attestation ended.
#[derive(Debug)]
pub enum Outcome {
    Committed(Box<CommitNotice>),
    /// Not committed by the deadline; it stays pending and can be looked up.
    Pending,
    /// The node stopped (or failed) before the commit.
    Stopped,
}

/// A client's claim on the commits of what it submitted, in submission
/// order. Dropping it (the client went away) withdraws the claim.
#[derive(Debug)]
pub struct Tickets {
    shared: Arc<Shared>,
    waiting: Vec<(AttestationId, Option<oneshot::Receiver<CommitNotice>>)>,
    /// When the claim was registered, before admission into the pool.
    since: std::time::Instant,
}

impl Ingest {
    pub fn new(shared: Arc<Shared>, reader: StoreReader, net: Option<NetworkHandle>) -> Ingest {
        Ingest {
            shared,
            reader,
            net,
        }
    }

    /// Puts `admitted` in the mempool all together or not at all — every id
    /// unknown (not repeated, pending, in flight or committed; a store that
    /// can not tell refuses, see [`StoreReader::check_uncommitted`]), room for
    /// all — then wakes the block producer and gossips them. With `wait`,
    /// the tickets can be waited on for the commits.
    pub fn submit(&self, admitted: Vec<Admitted>, wait: bool) -> Result<Tickets, Rejection> {
        self.try_submit(admitted, wait)
            .map_err(|refused| match refused {
                Refused::Full { rejection, .. } | Refused::Other(rejection) => rejection,
            })
    }

    /// [`Ingest::submit`] for bulk loads (EPCIS capture documents): when the
    /// pool has no room for the whole submission it waits and tries again
    /// instead of refusing, so a loader that outruns consensus is slowed to
    /// its pace, never dropped, and holds no more than this one submission.
    /// It wakes when `room` is notified (the caller's own earlier
    /// submissions committed) or after [`ROOM_RECHECK`] (room made by
    /// others' commits, which nothing here is told of). A submission larger
    /// than an empty pool, and every other refusal, is returned at once.
    pub async fn submit_when_room(
        &self,
        admitted: Vec<Admitted>,
        wait: bool,
        room: &Notify,
    ) -> Result<Tickets, Rejection> {
        let mut admitted = admitted;
        loop {
            match self.try_submit(admitted, wait) {
                Ok(tickets) => return Ok(tickets),
                Err(Refused::Other(rejection)) => return Err(rejection),
                Err(Refused::Full { back, rejection }) => {
                    if self.shared.pool().is_empty() {
                        return Err(rejection);
                    }
                    admitted = back;
                    let _ = tokio::time::timeout(ROOM_RECHECK, room.notified()).await;
                }
            }
        }
    }

    fn try_submit(&self, admitted: Vec<Admitted>, wait: bool) -> Result<Tickets, Refused> {
        let mut tickets = Tickets {
            since: std::time::Instant::now(),
            shared: self.shared.clone(),
            waiting: admitted
                .iter()
                .map(|a| (a.id, wait.then(|| self.shared.wait_for(a.id))))
                .collect(),
        };
        let count = admitted.len();
        let envelopes = {
            let mut pool = self.shared.pool();
            match self.admit_all(&mut pool, admitted) {
                Ok(envelopes) => envelopes,
                Err(refused) => {
                    drop(pool);
                    tickets.withdraw();
                    return Err(refused);
                }
            }
        };
        self.shared.notify_pool();
        self.shared.metrics.admitted.inc_by(count as u64);
        if let Some(net) = &self.net {
            for bytes in envelopes {
                if net.gossip(bytes).is_err() {
                    // Peers still get it inside the block that carries it;
                    // gossip only lets any leader propose it sooner.
                    self.shared.metrics.gossip_dropped.inc();
                }
            }
        }
        Ok(tickets)
    }

    /// The checks and the inserts, under one pool lock; the envelopes to
    /// gossip (none without peers).
    fn admit_all(
        &self,
        pool: &mut Mempool,
        admitted: Vec<Admitted>,
    ) -> Result<Vec<Vec<u8>>, Refused> {
        check_unknown(pool, &self.reader, &admitted).map_err(Refused::Other)?;
        if self.shared.shutting_down() {
            return Err(Refused::Other(vec![AdmissionError::Overloaded(
                "the node is shutting down".into(),
            )]));
        }
        let count = admitted.len();
        let bytes = admitted.iter().map(|a| a.size).sum();
        if !pool.fits(count, bytes) {
            let rejection = vec![AdmissionError::Overloaded(format!(
                "the mempool ({} pending) has no room for {count} more attestations \
                 of {bytes} bytes; retry later",
                pool.len()
            ))];
            return Err(Refused::Full {
                back: admitted,
                rejection,
            });
        }
        let envelopes: Vec<Vec<u8>> = match self.net {
            Some(_) => admitted.iter().map(|a| a.envelope.to_bytes()).collect(),
            None => Vec::new(),
        };
        for a in admitted {
            // Cannot fail: every id was checked unknown and the room
            // reserved under this same lock.
            pool.insert(a).map_err(|e| {
                Refused::Other(match e {
                    MempoolError::Duplicate(id) => vec![AdmissionError::Duplicate(id)],
                    full @ MempoolError::Full { .. } => {
                        vec![AdmissionError::Overloaded(full.to_string())]
                    }
                })
            })?;
        }
        Ok(envelopes)
    }
}

/// How long [`Ingest::submit_when_room`] waits before looking for room again
/// when nobody tells it of any.
pub const ROOM_RECHECK: std::time::Duration = std::time::Duration::from_millis(20);

/// Why a submission did not enter the pool.
enum Refused {
    /// No room for all of it now: the submission back, to try again.
    Full {
        back: Vec<Admitted>,
        rejection: Rejection,
    },
    Other(Rejection),
}

impl Tickets {
    /// Waits until `deadline` for every commit. Ids not committed by then
    /// stay pending (their claim is withdrawn); the outcomes are in
    /// submission order.
    pub async fn wait(mut self, deadline: Instant) -> Vec<(AttestationId, Outcome)> {
        let waiting = std::mem::take(&mut self.waiting);
        let mut outcomes = Vec::with_capacity(waiting.len());
        for (id, rx) in waiting {
            let outcome = match rx {
                None => Outcome::Pending,
                Some(rx) => match tokio::time::timeout_at(deadline, rx).await {
                    Ok(Ok(notice)) => {
                        self.shared.metrics.submit_commit_seconds.observe(
                            notice
                                .committed_at
                                .saturating_duration_since(self.since)
                                .as_secs_f64(),
                        );
                        Outcome::Committed(Box::new(notice))
                    }
                    Ok(Err(_)) => Outcome::Stopped,
                    Err(_) => {
                        self.shared.forget(&id);
                        Outcome::Pending
                    }
                },
            };
            outcomes.push((id, outcome));
        }
        outcomes
    }

    /// The ids, in submission order.
    pub fn ids(&self) -> impl Iterator<Item = &AttestationId> {
        self.waiting.iter().map(|(id, _)| id)
    }

    fn withdraw(&mut self) {
        for (id, rx) in self.waiting.drain(..) {
            drop(rx);
            self.shared.forget(&id);
        }
    }
}

impl Drop for Tickets {
    fn drop(&mut self) {
        self.withdraw();
    }
}

/// Refuses a submission in which any id is repeated, pending, in flight or
/// committed, or whose store lookup fails (the rule for that is
/// [`StoreReader::check_uncommitted`]'s: retry later).
fn check_unknown(
    pool: &Mempool,
    reader: &StoreReader,
    admitted: &[Admitted],
) -> Result<(), Rejection> {
    let mut seen = BTreeSet::new();
    for a in admitted {
        if !seen.insert(a.id) || pool.knows(&a.id) {
            return Err(vec![AdmissionError::Duplicate(a.id)]);
        }
        match reader.check_uncommitted(&a.id) {
            Ok(()) => {}
            Err(NotFresh::Committed(id)) => return Err(vec![AdmissionError::Duplicate(id)]),
            Err(NotFresh::Unknown { id, source }) => {
                tracing::warn!(%id, error = %source, "duplicate check could not read the store; submission refused");
                return Err(vec![AdmissionError::StoreUnavailable(format!(
                    "cannot tell whether attestation {id} is already committed: \
                     the store could not be read; retry"
                ))]);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;

    use super::*;
    use crate::state::Shared;
    use crate::store::testing::Chain;
    use crate::store::{BlockLogError, Store, StoreError};

    fn admitted(n: u32) -> Admitted {
        let envelope = Chain::envelope(n);
        Admitted {
            id: envelope.id(),
            statement: Some(Arc::new(crate::store::testing::Chain::statement().into())),
            envelope,
            size: 100,
        }
    }

    /// Defect: a failed store read in the duplicate check counted as "not
    /// committed" (`unwrap_or(false)`), so a committed attestation could be
    /// admitted again. The read error is made real by removing sled's tree.
    /// Goal: the submission is refused as retryable (503), and even a block
    /// that repeats the attestation is refused by the block log. An id no
    /// committed id shares a prefix with needs no store read since format
    /// 20 (the block log's filter answers it), so a broken sled does not
    /// refuse it.
    #[test]
    fn a_store_read_error_refuses_as_retryable_and_nothing_commits_twice() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut chain = Chain::new();
        let (mut store, _) = Store::open(dir.path(), chain.set.clone()).expect("open");
        let first = chain.block(vec![Chain::envelope(1)]);
        store.commit(&first, |_| Vec::new()).expect("first commit");
        let pool = Mempool::new(10, 1 << 20);
        let reader = store.reader();
        assert!(matches!(
            check_unknown(&pool, &reader, &[admitted(1)])
                .as_ref()
                .map_err(Vec::as_slice),
            Err([AdmissionError::Duplicate(_)])
        ));
        assert!(check_unknown(&pool, &reader, &[admitted(2)]).is_ok());

        reader.drop_index_for_test();
        let rejection = check_unknown(&pool, &reader, &[admitted(1)]).expect_err("refused");
        assert!(
            matches!(rejection.as_slice(), [AdmissionError::StoreUnavailable(_)]),
            "{rejection:?}"
        );
        let (status, slug, _) = crate::api::classify(&rejection[0]);
        assert_eq!(
            (status, slug),
            (StatusCode::SERVICE_UNAVAILABLE, "store-unavailable")
        );
        assert!(check_unknown(&pool, &reader, &[admitted(2)]).is_ok());
        let repeat = chain.block(vec![Chain::envelope(1)]);
        assert!(matches!(
            store.commit(&repeat, |_| Vec::new()),
            Err(StoreError::Log(BlockLogError::Repeated {
                height: 2,
                committed_at: 1,
                ..
            }))
        ));
        assert_eq!((store.height(), store.attestations()), (1, 1));
    }

    /// A submission is all or nothing, and a client's claim on commits ends
    /// with its request: refused, dropped (the client went away) or past its
    /// deadline, no waiter is left behind in the node.
    #[tokio::test]
    async fn a_submission_enters_whole_or_not_at_all_and_no_claim_outlives_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut chain = Chain::new();
        let (mut store, _) = Store::open(dir.path(), chain.set.clone()).expect("open");
        let first = chain.block(vec![Chain::envelope(1)]);
        store.commit(&first, |_| Vec::new()).expect("commit");
        let shared = Shared::new(
            Mempool::new(10, 1 << 20),
            Default::default(),
            Chain::governance(),
        );
        let ingest = Ingest::new(shared.clone(), store.reader(), None);

        let refused = ingest
            .submit(vec![admitted(2), admitted(1)], true)
            .expect_err("1 is committed");
        assert!(matches!(refused.as_slice(), [AdmissionError::Duplicate(_)]));
        assert!(shared.pool().is_empty(), "nothing of a refused submission");
        assert_eq!(shared.waited_ids(), 0);
        let repeated = ingest
            .submit(vec![admitted(2), admitted(2)], false)
            .expect_err("an id twice in one submission");
        assert!(matches!(
            repeated.as_slice(),
            [AdmissionError::Duplicate(_)]
        ));

        let tickets = ingest
            .submit(vec![admitted(2), admitted(3)], true)
            .expect("fresh");
        assert_eq!(tickets.ids().count(), 2);
        assert_eq!(shared.waited_ids(), 2);
        drop(tickets);
        assert_eq!(shared.waited_ids(), 0, "the client went away");
        assert_eq!(shared.pool().len(), 2, "what it submitted stays pending");

        let tickets = ingest.submit(vec![admitted(4)], true).expect("fresh");
        let deadline = Instant::now() + std::time::Duration::from_millis(20);
        let outcomes = tickets.wait(deadline).await;
        assert!(matches!(outcomes.as_slice(), [(_, Outcome::Pending)]));
        assert_eq!(shared.waited_ids(), 0, "past its deadline");
    }
}
