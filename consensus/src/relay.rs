//! Proposals that name their attestations by id instead of carrying them.
//!
//! Every attestation reaches every validator's mempool when it is admitted
//! (the node gossips it), so a leader's proposal carries ids, not bodies
//! ([`CompactProposal`]): each attestation crosses the network once. A
//! voter rebuilds the block from its own mempool and asks the proposer only
//! for the bodies it lacks (a *want*; the answer carries the bodies). Until
//! a proposal is whole the engine has not seen it, so to the engine a
//! proposal whose bodies never come — a Byzantine leader naming ids nobody
//! holds, or an answer lost on the way — is a proposal that never arrived:
//! its view times out and is nullified, as for a silent leader. No engine
//! rule changes. A rebuilt block is checked against its header like any
//! other (`Block::check_body` in the engine): a body is only ever taken for
//! the id it hashes to, and ids that do not make the header's root make an
//! invalid proposal.
//!
//! Pure, like the engine: the caller supplies the lookups, so the node's
//! actor and the simulator run the same reassembly.

use std::collections::{BTreeMap, BTreeSet};

use lotline_core::attestation::{AttestationId, Envelope};
use lotline_core::block::{Block, Header};
use lotline_core::evidence::Evidence;
use lotline_core::limits;
use lotline_core::vote::Vote;
use serde::{Deserialize, Serialize};

use crate::{Proposal, QuorumCertificate};

/// Proposals waiting for bodies at most; a newer one evicts the oldest.
/// A voter votes in one view at a time, so a few cover reordering.
pub const WAITING_PROPOSALS_MAX: usize = 8;

/// A proposal as it travels: [`Proposal`] with the block's attestations
/// replaced by their ids, in block order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompactProposal {
    pub header: Header,
    pub ids: Vec<AttestationId>,
    pub evidence: Vec<Evidence>,
    pub notarize: Vote,
    pub parent: Option<Header>,
    pub parent_certificate: Option<QuorumCertificate>,
    pub nullifications: Vec<QuorumCertificate>,
}

impl CompactProposal {
    pub fn of(proposal: &Proposal) -> CompactProposal {
        CompactProposal {
            header: proposal.block.header.clone(),
            ids: proposal.block.ids(),
            evidence: proposal.block.evidence.clone(),
            notarize: proposal.notarize,
            parent: proposal.parent.clone(),
            parent_certificate: proposal.parent_certificate.clone(),
            nullifications: proposal.nullifications.clone(),
        }
    }

    /// The view the proposal is for (its leader's notarize vote's).
    pub fn view(&self) -> u64 {
        self.notarize.view
    }

    /// The proposal with `bodies[id]` for each id; `None` if one is absent.
    fn rebuild(self, bodies: &BTreeMap<AttestationId, Envelope>) -> Option<Proposal> {
        let attestations = self
            .ids
            .iter()
            .map(|id| bodies.get(id).cloned())
            .collect::<Option<Vec<Envelope>>>()?;
        Some(Proposal {
            block: Block {
                header: self.header,
                attestations,
                evidence: self.evidence,
            },
            notarize: self.notarize,
            parent: self.parent,
            parent_certificate: self.parent_certificate,
            nullifications: self.nullifications,
        })
    }
}

/// What became of a compact proposal on arrival.
#[derive(Debug, PartialEq, Eq)]
pub enum Offer {
    /// Every body was at hand: give the proposal to the engine.
    Whole(Box<Proposal>),
    /// Parked: ask `from` for these bodies.
    Want {
        from: u16,
        view: u64,
        ids: Vec<AttestationId>,
    },
    /// Not parked, with the reason (it can never become valid).
    Refused(&'static str),
}

/// A proposal waiting for bodies.
#[derive(Debug)]
struct Waiting {
    from: u16,
    compact: CompactProposal,
    bodies: BTreeMap<AttestationId, Envelope>,
    missing: BTreeSet<AttestationId>,
}

/// Compact proposals waiting for their missing bodies, by view.
#[derive(Debug, Default)]
pub struct Reassembly {
    waiting: BTreeMap<u64, Waiting>,
}

impl Reassembly {
    /// A compact proposal arrived from `from`; `lookup` finds the bodies
    /// this validator holds (its mempool).
    pub fn offer(
        &mut self,
        from: u16,
        compact: CompactProposal,
        lookup: impl Fn(&AttestationId) -> Option<Envelope>,
    ) -> Offer {
        if compact.ids.len() > limits::BLOCK_ATTESTATIONS_MAX {
            return Offer::Refused("more attestation ids than a block may hold");
        }
        if compact.ids.len() != compact.header.count as usize {
            return Offer::Refused("attestation ids disagree with the header's count");
        }
        let mut bodies = BTreeMap::new();
        let mut missing = BTreeSet::new();
        for id in &compact.ids {
            match lookup(id) {
                Some(envelope) => {
                    bodies.insert(*id, envelope);
                }
                None => {
                    missing.insert(*id);
                }
            }
        }
        let view = compact.view();
        if missing.is_empty() {
            return match compact.rebuild(&bodies) {
                Some(proposal) => Offer::Whole(Box::new(proposal)),
                None => Offer::Refused("a body went missing while rebuilding"),
            };
        }
        let ids = missing.iter().copied().collect();
        self.waiting.insert(
            view,
            Waiting {
                from,
                compact,
                bodies,
                missing,
            },
        );
        while self.waiting.len() > WAITING_PROPOSALS_MAX {
            self.waiting.pop_first();
        }
        Offer::Want { from, view, ids }
    }

    /// Bodies that arrived (a proposer's answer to a want). Each is taken
    /// only for the id it hashes to. Returns the proposals they complete,
    /// with who sent each, in view order.
    pub fn receive(&mut self, bodies: Vec<Envelope>) -> Vec<(u16, Proposal)> {
        for envelope in bodies {
            let id = envelope.id();
            for waiting in self.waiting.values_mut() {
                if waiting.missing.remove(&id) {
                    waiting.bodies.insert(id, envelope.clone());
                }
            }
        }
        self.take_complete()
    }

    /// Looks up the missing bodies again (new attestations reached the
    /// mempool by gossip). Returns the proposals now complete.
    pub fn retry(
        &mut self,
        lookup: impl Fn(&AttestationId) -> Option<Envelope>,
    ) -> Vec<(u16, Proposal)> {
        for waiting in self.waiting.values_mut() {
            let found: Vec<(AttestationId, Envelope)> = waiting
                .missing
                .iter()
                .filter_map(|id| lookup(id).map(|e| (*id, e)))
                .collect();
            for (id, envelope) in found {
                waiting.missing.remove(&id);
                waiting.bodies.insert(id, envelope);
            }
        }
        self.take_complete()
    }

    fn take_complete(&mut self) -> Vec<(u16, Proposal)> {
        let complete: Vec<u64> = self
            .waiting
            .iter()
            .filter(|(_, w)| w.missing.is_empty())
            .map(|(view, _)| *view)
            .collect();
        complete
            .into_iter()
            .filter_map(|view| {
                let waiting = self.waiting.remove(&view)?;
                let proposal = waiting.compact.rebuild(&waiting.bodies)?;
                Some((waiting.from, proposal))
            })
            .collect()
    }

    /// Forgets proposals for views before `view`: the engine no longer
    /// votes in them.
    pub fn prune_below(&mut self, view: u64) {
        self.waiting = self.waiting.split_off(&view);
    }

    /// Proposals waiting for bodies.
    pub fn len(&self) -> usize {
        self.waiting.len()
    }

    pub fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }

    /// Ids still missing, over all waiting proposals.
    pub fn missing(&self) -> usize {
        self.waiting.values().map(|w| w.missing.len()).sum()
    }
}

/// A proposer's answer to a want: the bodies it holds among `ids`, in the
/// order asked, at most `bytes_max` of encoded envelopes (at least one).
pub fn answer(
    ids: &[AttestationId],
    bytes_max: usize,
    lookup: impl Fn(&AttestationId) -> Option<Envelope>,
) -> Vec<Envelope> {
    let mut out = Vec::new();
    let mut bytes = 0;
    for id in ids.iter().take(limits::BLOCK_ATTESTATIONS_MAX) {
        let Some(envelope) = lookup(id) else {
            continue;
        };
        let size = envelope.payload.len() + 256;
        if !out.is_empty() && bytes + size > bytes_max {
            break;
        }
        bytes += size;
        out.push(envelope);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use lotline_core::SigningKey;
    use lotline_core::hash::Digest;
    use lotline_core::vote::VoteKind;

    fn envelope(n: u32) -> Envelope {
        Envelope::sign(n.to_be_bytes().to_vec(), &SigningKey::from_seed(&[3; 32]))
    }

    fn proposal(view: u64, attestations: Vec<Envelope>) -> Proposal {
        let chain = Digest([7; 32]);
        let block = Block::new(
            chain,
            1,
            view,
            Header::genesis_parent(&chain),
            0,
            0,
            attestations,
        );
        let key = SigningKey::from_seed(&[4; 32]);
        Proposal {
            notarize: Vote::sign(&key, 0, &chain, VoteKind::Notarize, view, block.hash().0),
            block,
            parent: None,
            parent_certificate: None,
            nullifications: Vec::new(),
        }
    }

    fn pool(envelopes: &[Envelope]) -> BTreeMap<AttestationId, Envelope> {
        envelopes.iter().map(|e| (e.id(), e.clone())).collect()
    }

    /// Goal: with every body in the mempool, the compact form rebuilds the
    /// very proposal the leader made (same block hash, same bodies).
    #[test]
    fn a_proposal_whose_bodies_are_all_known_is_rebuilt_exactly() {
        let bodies: Vec<Envelope> = (0..5).map(envelope).collect();
        let sent = proposal(3, bodies.clone());
        let known = pool(&bodies);
        let mut reassembly = Reassembly::default();
        let offer = reassembly.offer(1, CompactProposal::of(&sent), |id| known.get(id).cloned());
        assert_eq!(offer, Offer::Whole(Box::new(sent)));
        assert!(reassembly.is_empty());
    }

    /// Goal: missing bodies are asked of the proposer, and its answer (or
    /// late gossip) completes the proposal; a body is taken only for the id
    /// it hashes to, so a forged answer completes nothing.
    #[test]
    fn missing_bodies_are_wanted_then_late_bodies_complete_the_proposal() {
        let bodies: Vec<Envelope> = (0..4).map(envelope).collect();
        let sent = proposal(5, bodies.clone());
        let known = pool(&bodies[..2]);
        let mut reassembly = Reassembly::default();
        let offer = reassembly.offer(2, CompactProposal::of(&sent), |id| known.get(id).cloned());
        let Offer::Want { from, view, ids } = offer else {
            panic!("expected a want, got {offer:?}");
        };
        assert_eq!((from, view), (2, 5));
        assert_eq!(ids.len(), 2);
        assert!(
            reassembly.receive(vec![envelope(99)]).is_empty(),
            "a forged body"
        );
        assert!(reassembly.receive(vec![bodies[2].clone()]).is_empty());
        assert_eq!(reassembly.missing(), 1);
        let late = pool(&bodies[3..]);
        let done = reassembly.retry(|id| late.get(id).cloned());
        assert_eq!(done, vec![(2, sent)]);
        assert!(reassembly.is_empty());
    }

    /// Goal: a proposal whose bodies never come (a Byzantine leader naming
    /// unknown ids) stays parked without bound only up to the cap, and is
    /// forgotten once its view is over; a count that disagrees with the
    /// header is refused at once.
    #[test]
    fn unknown_ids_wait_bounded_and_expire_with_their_view() {
        let mut reassembly = Reassembly::default();
        for view in 1..=(WAITING_PROPOSALS_MAX as u64 + 3) {
            let sent = proposal(view, vec![envelope(view as u32)]);
            let offer = reassembly.offer(0, CompactProposal::of(&sent), |_| None);
            assert!(matches!(offer, Offer::Want { .. }));
        }
        assert_eq!(reassembly.len(), WAITING_PROPOSALS_MAX);
        reassembly.prune_below(WAITING_PROPOSALS_MAX as u64 + 3);
        assert_eq!(reassembly.len(), 1);
        let mut lying = CompactProposal::of(&proposal(20, vec![envelope(1)]));
        lying.ids.push(envelope(2).id());
        assert!(matches!(
            reassembly.offer(0, lying, |_| None),
            Offer::Refused(_)
        ));
    }

    /// Goal: an answer holds only bodies the proposer has, bounded in bytes.
    #[test]
    fn an_answer_is_what_the_proposer_holds_within_the_byte_bound() {
        let bodies: Vec<Envelope> = (0..10).map(envelope).collect();
        let known = pool(&bodies[..6]);
        let ids: Vec<AttestationId> = bodies.iter().map(Envelope::id).collect();
        assert_eq!(
            answer(&ids, usize::MAX, |id| known.get(id).cloned()).len(),
            6
        );
        assert_eq!(answer(&ids, 1, |id| known.get(id).cloned()).len(), 1);
    }
}
