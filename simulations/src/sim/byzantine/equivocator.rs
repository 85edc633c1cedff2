//! `equivocator`: runs an honest engine but, as leader, signs two different
//! blocks and shows each to half of the honest validators; the whole
//! coalition then notarizes *and* finalizes each block towards its half.
//! Outside its own views it sends `finalize` to one half and `nullify` to
//! the other. With at most f such validators every honest node stays safe
//! (and reports evidence); with f + 1 (n = 3f + 1) two halves can each
//! gather a quorum, which the checker must catch.

use std::collections::{BTreeMap, BTreeSet};

use lotline_consensus::{Message, Output, Proposal};
use lotline_core::crypto::SigningKey;
use lotline_core::hash::Digest;
use lotline_core::vote::{Vote, VoteKind};

use crate::sim::node::{Ctx, Node, Packet};

#[derive(Debug, Default)]
pub struct Coalition {
    chain_id: Digest,
    keys: BTreeMap<u16, SigningKey>,
    honest: Vec<u16>,
    /// The two honest halves of every view the coalition split.
    halves: BTreeMap<u64, (Vec<u16>, Vec<u16>)>,
    split: BTreeSet<u64>,
}

impl Coalition {
    pub fn new(chain_id: Digest, keys: BTreeMap<u16, SigningKey>, honest: Vec<u16>) -> Coalition {
        Coalition {
            chain_id,
            keys,
            honest,
            halves: BTreeMap::new(),
            split: BTreeSet::new(),
        }
    }

    /// The honest halves for `view`, drawn once.
    fn halves(&mut self, view: u64, ctx_rng: &mut crate::sim::rng::Rng) -> (Vec<u16>, Vec<u16>) {
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

    fn is_split(&self, view: u64) -> bool {
        self.split.contains(&view)
    }

    fn sign(&self, signer: u16, kind: VoteKind, view: u64, block: Digest) -> Option<Vote> {
        self.keys
            .get(&signer)
            .map(|key| Vote::sign(key, signer, &self.chain_id, kind, view, block))
    }
}

pub fn execute(node: &mut Node, outputs: Vec<Output>, ctx: &mut Ctx) {
    let me = node.index;
    for output in outputs {
        match output {
            Output::Journal(_)
            | Output::Persist(_)
            | Output::Evidence(_)
            | Output::Dropped { .. } => {}
            Output::Commit { block, finality } => {
                node.on_committed(&block);
                node.chain.push((block, finality));
            }
            Output::Broadcast(Message::Proposal(proposal)) if proposal.notarize.signer == me => {
                split_proposal(*proposal, ctx);
            }
            Output::Broadcast(Message::Vote(vote)) if vote.signer == me => {
                if ctx.coalition.is_split(vote.view) {
                    continue;
                }
                if vote.kind == VoteKind::Finalize {
                    let (x, y) = ctx.coalition.halves(vote.view, ctx.rng);
                    let nullify =
                        ctx.coalition
                            .sign(me, VoteKind::Nullify, vote.view, Digest::ZERO);
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
                if ctx.coalition.is_split(certificate.view) => {}
            Output::Broadcast(message) => ctx.broadcast(me, Packet::Consensus(message)),
            Output::Send { to, message } => ctx.send(me, to, Packet::Consensus(message)),
            other => node.schedule(other, ctx),
        }
    }
}

/// Two blocks for one view, each shown to one half, each voted by the
/// whole coalition towards that half.
fn split_proposal(proposal: Proposal, ctx: &mut Ctx) {
    let view = proposal.notarize.view;
    let leader = proposal.notarize.signer;
    let (x, y) = ctx.coalition.halves(view, ctx.rng);
    ctx.coalition.split.insert(view);
    let mut twin = proposal.clone();
    twin.block.header.timestamp_ms ^= 1;
    let a = proposal.block.hash().0;
    let b = twin.block.hash().0;
    let Some(notarize) = ctx.coalition.sign(leader, VoteKind::Notarize, view, b) else {
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
    let members: Vec<u16> = ctx.coalition.keys.keys().copied().collect();
    for member in members {
        for (half, block) in [(&x, a), (&y, b)] {
            for kind in [VoteKind::Notarize, VoteKind::Finalize] {
                let Some(vote) = ctx.coalition.sign(member, kind, view, block) else {
                    continue;
                };
                for to in half {
                    ctx.send(member, *to, Packet::Consensus(Message::Vote(vote)));
                }
            }
        }
    }
}
