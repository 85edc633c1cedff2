//! The state of one view (compare commonware's voter `round.rs`).

use lotline_core::block::BlockHash;
use lotline_core::hash::Digest;
use lotline_core::vote::{Vote, VoteKind};

use crate::certificate::QuorumCertificate;
use crate::votes::VoteTracker;

/// What we signed in a view. Filled from the journal on restore, so the
/// checks below hold across restarts.
#[derive(Debug, Default, Clone)]
pub(crate) struct Own {
    pub notarize: Option<Vote>,
    pub nullify: Option<Vote>,
    pub finalize: Option<Vote>,
}

impl Own {
    /// Rule 3: one notarize per view, never after nullify.
    pub(crate) fn may_notarize(&self) -> bool {
        self.notarize.is_none() && self.nullify.is_none() && self.finalize.is_none()
    }

    /// Rule 5: nullify once, never after finalize.
    pub(crate) fn may_nullify(&self) -> bool {
        self.nullify.is_none() && self.finalize.is_none()
    }

    /// Rule 4: finalize once, never after nullify.
    pub(crate) fn may_finalize(&self) -> bool {
        self.finalize.is_none() && self.nullify.is_none()
    }

    /// Records an own vote, asserting that it breaks no rule.
    pub(crate) fn record(&mut self, vote: Vote) {
        match vote.kind {
            VoteKind::Notarize => {
                assert!(
                    self.notarize.is_none(),
                    "second notarize in view {}",
                    vote.view
                );
                assert!(
                    self.nullify.is_none(),
                    "notarize after nullify in view {}",
                    vote.view
                );
                self.notarize = Some(vote);
            }
            VoteKind::Nullify => {
                assert!(
                    self.nullify.is_none(),
                    "second nullify in view {}",
                    vote.view
                );
                assert!(
                    self.finalize.is_none(),
                    "nullify after finalize in view {}",
                    vote.view
                );
                assert!(vote.block == Digest::ZERO, "nullify with a block");
                self.nullify = Some(vote);
            }
            VoteKind::Finalize => {
                assert!(
                    self.finalize.is_none(),
                    "second finalize in view {}",
                    vote.view
                );
                assert!(
                    self.nullify.is_none(),
                    "finalize after nullify in view {}",
                    vote.view
                );
                self.finalize = Some(vote);
            }
        }
    }

    pub(crate) fn all(&self) -> impl Iterator<Item = Vote> + '_ {
        self.notarize
            .iter()
            .chain(self.nullify.iter())
            .chain(self.finalize.iter())
            .copied()
    }
}

#[derive(Debug)]
pub(crate) struct Round {
    pub votes: VoteTracker,
    /// The first valid proposal of the leader (checked, block stored).
    pub proposal: Option<BlockHash>,
    /// `Output::Verify` sent for `proposal`, no answer yet.
    pub verifying: bool,
    pub own: Own,
    pub notarization: Option<QuorumCertificate>,
    pub nullification: Option<QuorumCertificate>,
    pub finalization: Option<QuorumCertificate>,
}

impl Round {
    pub(crate) fn new() -> Round {
        Round {
            votes: VoteTracker::default(),
            proposal: None,
            verifying: false,
            own: Own::default(),
            notarization: None,
            nullification: None,
            finalization: None,
        }
    }

    /// The stored certificate of `kind`.
    pub(crate) fn certificate(&self, kind: VoteKind) -> Option<&QuorumCertificate> {
        match kind {
            VoteKind::Notarize => self.notarization.as_ref(),
            VoteKind::Nullify => self.nullification.as_ref(),
            VoteKind::Finalize => self.finalization.as_ref(),
        }
    }

    /// A certificate that the block `block` of this view is notarized (a
    /// finalization implies a notarization by at least f + 1 honest
    /// validators).
    pub(crate) fn notarized(&self, block: &BlockHash) -> Option<&QuorumCertificate> {
        [self.notarization.as_ref(), self.finalization.as_ref()]
            .into_iter()
            .flatten()
            .find(|c| c.block == block.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lotline_core::crypto::SigningKey;

    fn vote(kind: VoteKind) -> Vote {
        let block = if kind == VoteKind::Nullify {
            Digest::ZERO
        } else {
            Digest([1; 32])
        };
        Vote::sign(
            &SigningKey::from_seed(&[1; 32]),
            0,
            &Digest::ZERO,
            kind,
            2,
            block,
        )
    }

    #[test]
    fn own_vote_rules() {
        let mut own = Own::default();
        assert!(own.may_notarize() && own.may_nullify() && own.may_finalize());
        own.record(vote(VoteKind::Notarize));
        assert!(!own.may_notarize() && own.may_nullify() && own.may_finalize());
        own.record(vote(VoteKind::Nullify));
        assert!(!own.may_finalize());
        let mut finalized = Own::default();
        finalized.record(vote(VoteKind::Finalize));
        assert!(!finalized.may_nullify() && !finalized.may_notarize());
    }

    #[test]
    #[should_panic(expected = "finalize after nullify")]
    fn finalize_after_nullify_is_a_bug() {
        let mut own = Own::default();
        own.record(vote(VoteKind::Nullify));
        own.record(vote(VoteKind::Finalize));
    }
}
