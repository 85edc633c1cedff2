//! The single-validator engine: n = 1, quorum 1.
//!
//! Per view: build the block on the committed head, sign `notarize` and
//! `finalize` (journaled), and commit with a certificate of that one
//! signature. Views never repeat: after a restart the engine starts above
//! every view in the journal and the log, so it can not sign two different
//! blocks for one view even if it crashed between signing and committing.

use lotline_core::block::{Block, BlockHash, Header};
use lotline_core::certificate::{Certificate, Finality, Signed};
use lotline_core::crypto::SigningKey;
use lotline_core::hash::Digest;
use lotline_core::vote::{Vote, VoteKind};

use super::{Input, Output};

#[derive(Debug)]
pub struct SoloEngine {
    chain_id: Digest,
    key: SigningKey,
    /// Next view to propose in.
    view: u64,
    height: u64,
    parent: BlockHash,
}

impl SoloEngine {
    /// Restores from the committed head and every vote in the journal.
    pub fn new(
        chain_id: Digest,
        key: SigningKey,
        head: Option<&Header>,
        journal: &[Vote],
    ) -> SoloEngine {
        let last_logged = head.map(|h| h.view).unwrap_or(0);
        let last_voted = journal.iter().map(|v| v.view).max().unwrap_or(0);
        SoloEngine {
            chain_id,
            key,
            view: last_logged.max(last_voted) + 1,
            height: head.map(|h| h.height).unwrap_or(0),
            parent: head
                .map(Header::hash)
                .unwrap_or_else(|| Header::genesis_parent(&chain_id)),
        }
    }

    pub fn view(&self) -> u64 {
        self.view
    }

    pub fn handle(&mut self, input: Input) -> Vec<Output> {
        match input {
            // A lone validator meets no equivocation: no evidence to record.
            Input::Propose {
                attestations,
                now_ms,
                evidence: _,
            } => {
                if attestations.is_empty() {
                    return Vec::new();
                }
                let view = self.view;
                let (block, ids) = Block::new_hashed(
                    self.chain_id,
                    self.height + 1,
                    view,
                    self.parent,
                    now_ms,
                    0,
                    attestations,
                );
                let hash = block.hash();
                let notarize = Vote::sign(
                    &self.key,
                    0,
                    &self.chain_id,
                    VoteKind::Notarize,
                    view,
                    hash.0,
                );
                let finalize = Vote::sign(
                    &self.key,
                    0,
                    &self.chain_id,
                    VoteKind::Finalize,
                    view,
                    hash.0,
                );
                let certificate = Certificate {
                    epoch: finalize.epoch,
                    view,
                    block: hash,
                    signatures: vec![Signed {
                        signer: 0,
                        signature: finalize.signature,
                    }],
                };
                self.view += 1;
                self.height += 1;
                self.parent = hash;
                vec![
                    Output::Journal(notarize),
                    Output::Journal(finalize),
                    Output::Commit {
                        block,
                        ids,
                        finality: Finality::direct(certificate),
                    },
                ]
            }
            // A single validator has no peers, no view timers and nothing
            // to block-sync from; it proposes only when it has work, so it
            // needs no word about pending work either.
            Input::Message { .. }
            | Input::Timer { .. }
            | Input::Verified { .. }
            | Input::Synced { .. }
            | Input::PeerConnected { .. }
            | Input::Reconfigure(_) => Vec::new(),
            Input::Work { .. } => Vec::new(),
        }
    }

    /// Undo the in-memory advance of a block whose commit failed, so the next
    /// block links to the real head. The view stays advanced: a view in which
    /// we signed is never reused.
    pub fn rollback_to(&mut self, head: Option<&Header>) {
        self.height = head.map(|h| h.height).unwrap_or(0);
        self.parent = head
            .map(Header::hash)
            .unwrap_or_else(|| Header::genesis_parent(&self.chain_id));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lotline_core::ValidatorSet;
    use lotline_core::attestation::Envelope;

    fn engine(journal: &[Vote], head: Option<&Header>) -> (SoloEngine, ValidatorSet) {
        let key = SigningKey::from_seed(&[5; 32]);
        let set = ValidatorSet::new(Digest([1; 32]), vec![key.public_key()]);
        (SoloEngine::new(set.chain_id, key, head, journal), set)
    }

    fn propose(engine: &mut SoloEngine, n: u8) -> Vec<Output> {
        let attestations = (0..n)
            .map(|i| Envelope::sign(vec![i], &SigningKey::from_seed(&[i; 32])))
            .collect();
        engine.handle(Input::Propose {
            attestations,
            evidence: Vec::new(),
            now_ms: 1000,
        })
    }

    #[test]
    fn a_proposal_journals_both_votes_then_commits_a_valid_chain() {
        let (mut engine, set) = engine(&[], None);
        let outputs = propose(&mut engine, 3);
        assert!(
            matches!(outputs.as_slice(), [Output::Journal(n), Output::Journal(f), Output::Commit { .. }]
            if n.kind == VoteKind::Notarize && f.kind == VoteKind::Finalize)
        );
        let Output::Commit {
            block,
            ids,
            finality,
        } = &outputs[2]
        else {
            unreachable!()
        };
        assert_eq!(block.check_body(&set.chain_id).unwrap(), *ids);
        block.check_link(None).unwrap();
        finality.verify(&set, &block.header).unwrap();
        let second = propose(&mut engine, 1);
        let Output::Commit { block: next, .. } = &second[2] else {
            unreachable!()
        };
        next.check_link(Some(&block.header)).unwrap();
    }

    #[test]
    fn empty_proposals_do_nothing() {
        let (mut engine, _) = engine(&[], None);
        assert!(propose(&mut engine, 0).is_empty());
        assert_eq!(engine.view(), 1);
    }

    #[test]
    fn restart_never_reuses_a_journaled_view() {
        let (mut engine, _) = engine(&[], None);
        let outputs = propose(&mut engine, 1);
        let Output::Journal(vote) = outputs[1] else {
            unreachable!()
        };
        // Crash after journaling, before the commit reached the log.
        let (restarted, _) = self::engine(&[vote], None);
        assert!(restarted.view() > vote.view);
    }
}
