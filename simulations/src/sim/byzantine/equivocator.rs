//! `equivocator`: runs an honest engine but, as leader, signs two different
//! blocks and shows each to half of the honest validators; the whole
//! coalition then notarizes *and* finalizes each block towards its half.
//! Outside its own views it sends `finalize` to one half and `nullify` to
//! the other. With at most f such validators every honest node stays safe
//! (and reports evidence); with f + 1 (n = 3f + 1) two halves can each
//! gather a quorum, which the checker must catch.
//!
//! Across epochs (`--reconfigure`) it signs with its key and index of each
//! vote's epoch; once removed from the set it keeps signing with its last
//! key for every certificate it sees: honest validators must never count
//! those votes (the checker fails any certificate with a signer outside
//! its epoch).

use std::collections::{BTreeMap, BTreeSet};

use lotline_consensus::{Message, Output, Proposal};
use lotline_core::crypto::SigningKey;
use lotline_core::hash::Digest;
use lotline_core::vote::{Vote, VoteKind};

use crate::sim::node::{Ctx, Node, Packet};
use crate::sim::roster::Roster;

/// An (epoch, view) pair: views restart in every epoch.
type EpochView = (u64, u64);

#[derive(Debug)]
pub struct Coalition {
    chain_id: Digest,
    /// The Byzantine nodes (their keys of each epoch are the roster's).
    members: BTreeSet<u16>,
    honest: Vec<u16>,
    roster: Roster,
    /// The two honest halves of every view the coalition split.
    halves: BTreeMap<EpochView, (Vec<u16>, Vec<u16>)>,
    split: BTreeSet<EpochView>,
}

impl Coalition {
    pub fn new(
        chain_id: Digest,
        keys: BTreeMap<u16, SigningKey>,
        honest: Vec<u16>,
        roster: Roster,
    ) -> Coalition {
        Coalition {
            chain_id,
            members: keys.keys().copied().collect(),
            honest,
            roster,
            halves: BTreeMap::new(),
            split: BTreeSet::new(),
        }
    }

    /// The honest halves for `view`, drawn once.
    fn halves(
        &mut self,
        view: EpochView,
        ctx_rng: &mut crate::sim::rng::Rng,
    ) -> (Vec<u16>, Vec<u16>) {
        let honest = &self.honest;
        self.halves
            .entry(view)
            .or_insert_with(|| {
                let mut shuffled = honest.clone();
                ctx_rng.shuffle(&mut shuffled);
                let y = shuffled.split_off(shuffled.len() / 2);
                (shuffled, y)
            })
            .clone()
    }

    fn is_split(&self, view: EpochView) -> bool {
        self.split.contains(&view)
    }

    /// Node `signer`'s vote in `epoch`, with its key and index there.
    fn sign(
        &self,
        signer: u16,
        epoch: u64,
        kind: VoteKind,
        view: u64,
        block: Digest,
    ) -> Option<Vote> {
        self.members.contains(&signer).then(|| {
            let key = self.roster.key(epoch, signer);
            let index = self.roster.index_of(epoch, signer);
            Vote::sign_in(&key, index, &self.chain_id, epoch, kind, view, block)
        })
    }
}

pub fn execute(node: &mut Node, outputs: Vec<Output>, ctx: &mut Ctx) {
    let me = node.index;
    let epoch = node.output_epoch;
    let own = ctx.roster.index_of(epoch, me);
    let member = ctx.roster.is_member(epoch, me);
    for output in outputs {
        match output {
            Output::Journal(_)
            | Output::Persist(_)
            | Output::Evidence(_)
            | Output::Dropped { .. } => {}
            Output::Commit {
                block, finality, ..
            } => {
                node.on_committed(&block);
                node.chain.push((block, finality));
            }
            Output::Broadcast(Message::Proposal(proposal)) if proposal.notarize.signer == own => {
                split_proposal(me, *proposal, ctx);
            }
            Output::Broadcast(Message::Vote(vote)) if vote.signer == own => {
                if ctx.coalition.is_split((vote.epoch, vote.view)) {
                    continue;
                }
                if vote.kind == VoteKind::Finalize {
                    let (x, y) = ctx.coalition.halves((vote.epoch, vote.view), ctx.rng);
                    let nullify = ctx.coalition.sign(
                        me,
                        vote.epoch,
                        VoteKind::Nullify,
                        vote.view,
                        Digest::ZERO,
                    );
                    for to in x {
                        ctx.send(me, to, Packet::Consensus(Message::Vote(vote)));
                    }
                    for to in y {
                        if let Some(nullify) = nullify {
                            ctx.send(me, to, Packet::Consensus(Message::Vote(nullify)));
                        }
                    }
                } else {
                    ctx.broadcast(me, Packet::Consensus(Message::Vote(vote)));
                }
            }
            // Do not leak certificates across the halves of a split view.
            Output::Broadcast(Message::Certificate(certificate))
                if ctx
                    .coalition
                    .is_split((certificate.epoch, certificate.view)) => {}
            // Removed from the set: vote anyway, with the last key.
            Output::Broadcast(Message::Certificate(certificate))
                if !member && certificate.epoch == epoch =>
            {
                let forged = ctx.coalition.sign(
                    me,
                    epoch,
                    certificate.kind,
                    certificate.view,
                    certificate.block,
                );
                ctx.broadcast(me, Packet::Consensus(Message::Certificate(certificate)));
                if let Some(vote) = forged {
                    ctx.broadcast(me, Packet::Consensus(Message::Vote(vote)));
                }
            }
            Output::Broadcast(message) => ctx.broadcast(me, Packet::Consensus(message)),
            Output::Send { to, message } => {
                if let Some(to) = node.node_of(ctx, to) {
                    ctx.send(me, to, Packet::Consensus(message));
                }
            }
            other => node.schedule(other, ctx),
        }
    }
}

/// Two blocks for one view, each shown to one half, each voted by the
/// whole coalition towards that half.
fn split_proposal(leader: u16, proposal: Proposal, ctx: &mut Ctx) {
    let view = proposal.notarize.view;
    let epoch = proposal.notarize.epoch;
    let (x, y) = ctx.coalition.halves((epoch, view), ctx.rng);
    ctx.coalition.split.insert((epoch, view));
    let mut twin = proposal.clone();
    // A re-proposed boundary block has no twin: another block of its
    // height and view is not notarized, so nobody would vote for it.
    if twin.block.header.view == view {
        twin.block.header.timestamp_ms ^= 1;
    }
    let a = proposal.block.hash().0;
    let b = twin.block.hash().0;
    let Some(notarize) = ctx
        .coalition
        .sign(leader, epoch, VoteKind::Notarize, view, b)
    else {
        return;
    };
    twin.notarize = notarize;
    for to in &x {
        ctx.send(
            leader,
            *to,
            Packet::Consensus(Message::Proposal(Box::new(proposal.clone()))),
        );
    }
    for to in &y {
        ctx.send(
            leader,
            *to,
            Packet::Consensus(Message::Proposal(Box::new(twin.clone()))),
        );
    }
    let members: Vec<u16> = ctx.coalition.members.iter().copied().collect();
    for member in members {
        for (half, block) in [(&x, a), (&y, b)] {
            for kind in [VoteKind::Notarize, VoteKind::Finalize] {
                let Some(vote) = ctx.coalition.sign(member, epoch, kind, view, block) else {
                    continue;
                };
                for to in half {
                    ctx.send(member, *to, Packet::Consensus(Message::Vote(vote)));
                }
            }
        }
    }
}
