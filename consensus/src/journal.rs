//! Restoring from the vote journal: the votes we signed, grouped by view.
//!
//! The journal is our own write-ahead log, so it is trusted to be ours, but
//! it is still checked: a vote by another signer means a wrong key or a
//! wrong file, and two conflicting votes mean we equivocated before. Both
//! stop the engine from starting rather than letting it sign more.
//!
//! [`KeepAbove`] says which journal entries a restore still needs once the
//! block log holds a finalized block: the rule by which the node's journal
//! and the simulator's compact themselves.

use std::collections::BTreeMap;

use lotline_core::block::Header;
use lotline_core::certificate::Finality;
use lotline_core::vote::{Vote, VoteKind};

use crate::Record;
use crate::view::Own;

/// What a restore needs from the journal, given the last block of the block
/// log (durable) and its finality: own votes and certificates of views at
/// or above the finality's view, blocks above the block's height.
///
/// Why that is enough: [`crate::Engine::restore`] takes the finality as its
/// floor, ignores own votes below it (nothing at or below a finalized view
/// is ever signed again, and the votes of the floor view itself are kept so
/// that they are checked against) and certificates below it, and keeps only
/// blocks above the committed height. The floor must come from the block
/// log, never from a finalization held only in memory: a vote dropped for a
/// view that the block log can not prove final could be signed again,
/// differently, after a crash.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KeepAbove {
    /// The epoch of the floor's finality: votes and certificates of older
    /// epochs are dropped, of newer ones kept (views restart at 1 in each).
    pub epoch: u64,
    pub view: u64,
    pub height: u64,
}

impl KeepAbove {
    /// The floor after committing `header` with `finality`.
    pub fn committed(header: &Header, finality: &Finality) -> KeepAbove {
        KeepAbove {
            epoch: finality.certificate.epoch,
            view: finality.certificate.view,
            height: header.height,
        }
    }

    /// Own votes and certificates are kept by their view (of the floor's
    /// epoch; see [`KeepAbove::keeps`] across epochs).
    pub fn keeps_view(&self, view: u64) -> bool {
        view >= self.view
    }

    /// Own votes and certificates of `epoch` are kept by (epoch, view).
    pub fn keeps(&self, epoch: u64, view: u64) -> bool {
        (epoch, view) >= (self.epoch, self.view)
    }

    /// Blocks are kept by their height.
    pub fn keeps_height(&self, height: u64) -> bool {
        height > self.height
    }

    pub fn keeps_vote(&self, vote: &Vote) -> bool {
        self.keeps(vote.epoch, vote.view)
    }

    pub fn keeps_record(&self, record: &Record) -> bool {
        match record {
            Record::Certificate(c) => self.keeps(c.epoch, c.view),
            Record::Block(b) => self.keeps_height(b.header.height),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RestoreError {
    #[error("journal vote for view {view} is signed by validator {signer}, we are {own}")]
    ForeignVote { view: u64, signer: u16, own: u16 },
    #[error("journal holds conflicting votes for view {view}")]
    Conflict { view: u64 },
    #[error("journal vote for view {view} has epoch {epoch}")]
    Epoch { view: u64, epoch: u64 },
}

/// The own votes of `epoch` of every view above `floor` (the finalized
/// view; nothing at or below it is ever signed again). Votes of older
/// epochs are over; one of a newer epoch means the block log lost the
/// boundary block the journal had already crossed: refused.
///
/// `follows`: we are not one of the epoch's validators and sign nothing
/// in it. Its votes in our journal were signed with a node key we no
/// longer hold (a validator re-keyed by `rotateNodeKey` and restarted with
/// its new key before its store reached the boundary): they bind nothing
/// we can sign and are skipped. A vote of a newer epoch is still refused.
pub(crate) fn own_votes(
    journal: &[Vote],
    own: u16,
    epoch: u64,
    floor: u64,
    follows: bool,
) -> Result<BTreeMap<u64, Own>, RestoreError> {
    let mut views: BTreeMap<u64, Own> = BTreeMap::new();
    for vote in journal {
        if vote.epoch < epoch || (follows && vote.epoch == epoch) {
            continue;
        }
        if follows {
            return Err(RestoreError::Epoch {
                view: vote.view,
                epoch: vote.epoch,
            });
        }
        if vote.signer != own {
            return Err(RestoreError::ForeignVote {
                view: vote.view,
                signer: vote.signer,
                own,
            });
        }
        if vote.epoch != epoch {
            return Err(RestoreError::Epoch {
                view: vote.view,
                epoch: vote.epoch,
            });
        }
        if vote.view <= floor {
            continue;
        }
        let entry = views.entry(vote.view).or_default();
        let same = match vote.kind {
            VoteKind::Notarize => entry.notarize,
            VoteKind::Nullify => entry.nullify,
            VoteKind::Finalize => entry.finalize,
        };
        match same {
            // The journal may hold a vote twice (re-journaled after restart).
            Some(existing) if existing.block == vote.block => continue,
            Some(_) => return Err(RestoreError::Conflict { view: vote.view }),
            None => {}
        }
        let allowed = match vote.kind {
            VoteKind::Notarize => entry.nullify.is_none(),
            VoteKind::Nullify => entry.finalize.is_none(),
            VoteKind::Finalize => entry.nullify.is_none(),
        };
        if !allowed {
            return Err(RestoreError::Conflict { view: vote.view });
        }
        entry.record(*vote);
    }
    Ok(views)
}

/// The view to re-enter: the highest view we voted in, or the one after it
/// if we finalized there (we only finalize after leaving a view), and never
/// at or below the finalized view.
pub(crate) fn restart_view(views: &BTreeMap<u64, Own>, floor: u64) -> u64 {
    let journaled = views
        .iter()
        .next_back()
        .map(|(view, own)| {
            if own.finalize.is_some() {
                view.saturating_add(1)
            } else {
                *view
            }
        })
        .unwrap_or(0);
    journaled.max(floor.saturating_add(1)).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use lotline_core::crypto::SigningKey;
    use lotline_core::hash::Digest;

    fn vote(signer: u16, kind: VoteKind, view: u64, block: u8) -> Vote {
        Vote::sign(
            &SigningKey::from_seed(&[1; 32]),
            signer,
            &Digest::ZERO,
            kind,
            view,
            Digest([block; 32]),
        )
    }

    #[test]
    fn table_of_journals() {
        use VoteKind::*;
        type Row = (&'static str, Vec<Vote>, u64, Result<u64, RestoreError>);
        let table: Vec<Row> = vec![
            ("empty", vec![], 0, Ok(1)),
            ("empty after a finalized view", vec![], 9, Ok(10)),
            ("notarized view 3", vec![vote(0, Notarize, 3, 1)], 0, Ok(3)),
            (
                "finalized view 3 means we had left it",
                vec![vote(0, Notarize, 3, 1), vote(0, Finalize, 3, 1)],
                0,
                Ok(4),
            ),
            (
                "votes below the floor are ignored",
                vec![vote(0, Nullify, 3, 0)],
                5,
                Ok(6),
            ),
            (
                "re-journaled vote",
                vec![vote(0, Nullify, 3, 0), vote(0, Nullify, 3, 0)],
                0,
                Ok(3),
            ),
            (
                "two notarize",
                vec![vote(0, Notarize, 3, 1), vote(0, Notarize, 3, 2)],
                0,
                Err(RestoreError::Conflict { view: 3 }),
            ),
            (
                "nullify then finalize",
                vec![vote(0, Nullify, 3, 0), vote(0, Finalize, 3, 2)],
                0,
                Err(RestoreError::Conflict { view: 3 }),
            ),
            (
                "someone else's vote",
                vec![vote(2, Nullify, 3, 0)],
                0,
                Err(RestoreError::ForeignVote {
                    view: 3,
                    signer: 2,
                    own: 0,
                }),
            ),
        ];
        for (desc, journal, floor, expected) in table {
            let got =
                own_votes(&journal, 0, 0, floor, false).map(|views| restart_view(&views, floor));
            assert_eq!(got, expected, "{desc}");
        }
    }

    /// Goal: a node outside the epoch's set (a re-keyed validator whose new
    /// key is not in the epoch yet) skips its journal's votes of that
    /// epoch, signed with its old key, instead of refusing to start; a vote
    /// of a later epoch is still refused.
    #[test]
    fn a_follower_skips_votes_of_its_old_key() {
        let old = vec![vote(2, VoteKind::Notarize, 8, 1)];
        assert_eq!(
            own_votes(&old, 4, 0, 0, false).err(),
            Some(RestoreError::ForeignVote {
                view: 8,
                signer: 2,
                own: 4
            })
        );
        assert!(own_votes(&old, 4, 0, 0, true).is_ok_and(|views| views.is_empty()));
        let later = vec![Vote {
            epoch: 1,
            ..vote(2, VoteKind::Notarize, 3, 1)
        }];
        assert_eq!(
            own_votes(&later, 4, 0, 0, true).err(),
            Some(RestoreError::Epoch { view: 3, epoch: 1 })
        );
    }
}
