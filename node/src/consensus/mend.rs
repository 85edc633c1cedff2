//! A running validator mends its own block log from its peers.
//!
//! The block log is the system of record; a record damaged in the middle
//! (a bad sector, a stray write) is never served: a sync answer ends before
//! it. `lotline repair` mends such a log with the node stopped; a running
//! validator does the same by itself, with the same steps
//! (`ops::repair`), so that one bad sector does not wait for an operator:
//!
//! 1. A round starts when a read meets damage (a sync answer) and, as a
//!    scrub, at start and then every `[storage] scrub_secs`, so damage in
//!    blocks nobody asks for is found too.
//! 2. Off the consensus thread: `repair::scan` reads every indexed block
//!    back (read only; the actor only appends meanwhile) and, if some are
//!    damaged, `repair::fetch` asks the connected validators for them and
//!    keeps only a block that is at its height, matches its header and the
//!    ids the index recorded, links to its neighbours and carries a finality
//!    certificate of the validators.
//! 3. On the consensus thread, between two events, so nothing is appended
//!    meanwhile: `repair::mend_open` scans again, rewrites the log beside the
//!    old one (intact records byte for byte), verifies it in full, swaps it
//!    in (the damaged one is kept as `blocks.log.damaged-<ms>`) and the store
//!    reopens it. The thread pauses for that verify (about 13 s per million
//!    events on the reference machine); the other validators keep the quorum.
//!
//! A round that cannot finish (no peer, no verifiable answer, damage that
//! moved meanwhile) is logged and tried again after [`RETRY_AFTER`].

use std::path::PathBuf;
use std::sync::mpsc::SyncSender;
use std::time::{Duration, Instant};

use crate::store::epochs::ChainSets;

use super::bft::Event;
use crate::net::NetworkHandle;
use crate::ops::repair::{self, Fetched, RepairError};

/// How long a round waits for a connected validator.
const CONNECT: Duration = Duration::from_secs(10);

/// The pause after a round that could not mend.
pub const RETRY_AFTER: Duration = Duration::from_secs(30);

/// What a round found, sent back to the consensus thread.
#[derive(Debug)]
pub enum Round {
    /// Every indexed block reads back intact.
    Intact,
    /// The damaged blocks, fetched and verified.
    Fetched(Fetched),
    /// Why this round could not fetch them.
    Failed(RepairError),
}

/// When the next round runs; owned by the consensus actor.
#[derive(Debug)]
pub struct Mend {
    /// Time between scrubs; `None`: only when a read meets damage.
    scrub: Option<Duration>,
    next: Option<Instant>,
    running: bool,
    /// Damage was seen while a round ran: another one right after it.
    again: bool,
}

impl Mend {
    /// A first scrub at `now` (at start), then every `scrub`.
    pub fn new(scrub: Option<Duration>, now: Instant) -> Mend {
        Mend {
            scrub,
            next: scrub.map(|_| now),
            running: false,
            again: false,
        }
    }

    /// A read met damage at `now`: a round as soon as none runs.
    pub fn damage_seen(&mut self, now: Instant) {
        if self.running {
            self.again = true;
        } else {
            self.next = Some(now);
        }
    }

    /// Whether a round should start now; if so it counts as running.
    pub fn start_due(&mut self, now: Instant) -> bool {
        if self.running || self.next.is_none_or(|at| at > now) {
            return false;
        }
        self.running = true;
        self.next = None;
        true
    }

    /// A round ended; `mended` says whether the log is now whole.
    pub fn finished(&mut self, mended: bool, now: Instant) {
        self.running = false;
        self.next = if !mended {
            Some(now + RETRY_AFTER)
        } else if std::mem::take(&mut self.again) {
            Some(now)
        } else {
            self.scrub.map(|every| now + every)
        };
    }
}

/// Runs steps 1–2 on a thread of its own (the scan reads the whole log; the
/// fetch waits on the network) and sends the [`Round`] to the actor.
pub fn start_round(
    runtime: tokio::runtime::Handle,
    net: NetworkHandle,
    set: ChainSets,
    dir: PathBuf,
    events: SyncSender<Event>,
) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("mend".into())
        .spawn(move || {
            let round = match repair::scan(&dir) {
                Err(error) => Round::Failed(error),
                Ok(scan) if scan.damaged.is_empty() => Round::Intact,
                Ok(scan) => {
                    for d in &scan.damaged {
                        tracing::error!(height = d.height, offset = d.offset, reason = %d.reason, "block log damaged; fetching the block from the validators");
                    }
                    match runtime.block_on(repair::fetch(&net, set.sets(), &scan, &dir, CONNECT)) {
                        Ok(fetched) => Round::Fetched(fetched),
                        Err(error) => Round::Failed(error),
                    }
                }
            };
            // Blocks until the actor has room; it stops only at shutdown.
            let _ = events.send(Event::Mend(round));
        })
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scrub_runs_at_start_then_every_interval_and_never_twice_at_once() {
        let start = Instant::now();
        let mut mend = Mend::new(Some(Duration::from_secs(60)), start);
        assert!(mend.start_due(start));
        assert!(!mend.start_due(start), "one round at a time");
        mend.finished(true, start);
        assert!(!mend.start_due(start + Duration::from_secs(59)));
        assert!(mend.start_due(start + Duration::from_secs(60)));
    }

    #[test]
    fn damage_seen_during_a_round_runs_another_right_after_it() {
        let now = Instant::now();
        let mut mend = Mend::new(Some(Duration::from_secs(3600)), now);
        assert!(mend.start_due(now));
        mend.damage_seen(now);
        assert!(!mend.start_due(now), "one round at a time");
        mend.finished(true, now);
        assert!(mend.start_due(now));
    }

    #[test]
    fn damage_seen_starts_a_round_even_without_scrubs() {
        let now = Instant::now();
        let mut mend = Mend::new(None, now);
        assert!(!mend.start_due(now));
        mend.damage_seen(now);
        assert!(mend.start_due(now));
    }

    #[test]
    fn a_round_that_could_not_mend_is_retried_later() {
        let now = Instant::now();
        let mut mend = Mend::new(None, now);
        mend.damage_seen(now);
        assert!(mend.start_due(now));
        mend.finished(false, now);
        assert!(!mend.start_due(now + RETRY_AFTER - Duration::from_millis(1)));
        assert!(mend.start_due(now + RETRY_AFTER));
    }
}
