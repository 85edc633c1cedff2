//! Proposals: the leader builds one (rule 2), voters check one (rule 3).

use std::collections::BTreeSet;

use lotline_core::attestation::{AttestationId, Envelope};
use lotline_core::block::{Block, BlockHash, Header};
use lotline_core::evidence::Evidence;
use lotline_core::limits;
use lotline_core::vote::VoteKind;

use crate::certificate::QuorumCertificate;
use crate::config::{PIPELINE_HEIGHTS_MAX, SKIP_VIEWS_MAX};
use crate::engine::Engine;
use crate::{DropReason, Message, Output, Proposal, Record, Request};

/// The actor's payload for our proposal in `view`.
#[derive(Clone, Debug)]
pub(crate) struct Payload {
    pub view: u64,
    pub attestations: Vec<Envelope>,
    pub evidence: Vec<Evidence>,
    pub now_ms: u64,
}

/// A parent a leader may build on, with its justification.
#[derive(Debug)]
pub(crate) struct Parent {
    /// `None`: the genesis parent.
    pub header: Option<Header>,
    pub certificate: Option<QuorumCertificate>,
    pub nullifications: Vec<QuorumCertificate>,
}

/// Why a leader can not build yet.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Missing {
    /// The parent is known to be notarized but we lack its header.
    Block(BlockHash),
    /// No certificate for this view: neither notarized nor nullified, as far
    /// as we know.
    Certificate(u64),
    /// More than `SKIP_VIEWS_MAX` nullified views in a row.
    TooManySkips,
}

impl Engine {
    pub(crate) fn on_propose(
        &mut self,
        mut attestations: Vec<Envelope>,
        mut evidence: Vec<Evidence>,
        now_ms: u64,
    ) {
        let view = self.view;
        // A payload answers a `Build`, which only an active view asks for;
        // one that arrives late, for a view we left, must not make an idle
        // view propose.
        if self.leader(view) != self.me() || !self.active || !self.config.voting {
            return;
        }
        let round = self.round_mut(view);
        if !round.own.may_notarize() || round.proposal.is_some() {
            return;
        }
        attestations.truncate(limits::BLOCK_ATTESTATIONS_MAX);
        // One offence once per block, so the body check passes.
        let mut keys = std::collections::BTreeSet::new();
        evidence.retain(|e| e.key().is_some_and(|key| keys.insert(key)));
        evidence.truncate(limits::BLOCK_EVIDENCE_MAX);
        self.payload = Some(Payload {
            view,
            attestations,
            evidence,
            now_ms,
        });
        self.try_propose(true);
    }

    /// Proposes if we lead the current view, hold a payload and know a
    /// parent. `ask`: request missing certificates from peers (only on the
    /// actor's inputs and timers, so that requests are rate-limited).
    pub(crate) fn try_propose(&mut self, ask: bool) {
        let view = self.view;
        match &self.payload {
            Some(payload) if payload.view == view => {}
            Some(_) => {
                self.payload = None;
                return;
            }
            None => return,
        }
        let leader = self.leader(view);
        let me = self.me();
        let round = self.round_mut(view);
        if leader != me || !round.own.may_notarize() || round.proposal.is_some() {
            self.payload = None;
            return;
        }
        let parent = match self.select_parent(view) {
            Ok(parent) => parent,
            Err(Missing::Block(hash)) => return self.want(hash),
            Err(Missing::Certificate(missing)) => {
                if ask {
                    let request = Request::Certificates { view: missing };
                    self.out.push(Output::Broadcast(Message::Request(request)));
                }
                return;
            }
            Err(Missing::TooManySkips) => return,
        };
        let height = parent.header.as_ref().map_or(0, |h| h.height) + 1;
        if self.boundary().is_some_and(|b| height > b) {
            return self.repropose(view, parent);
        }
        if height > self.committed_height().saturating_add(PIPELINE_HEIGHTS_MAX) {
            return;
        }
        let chain_id = self.config.chain_id;
        let parent_hash = parent
            .header
            .as_ref()
            .map_or_else(|| Header::genesis_parent(&chain_id), Header::hash);
        // Every uncommitted ancestor's body first: what the payload must
        // leave out is only known from them (a lagging leader that built on
        // a notarized parent over a gap repeated what the gap committed).
        if let Some(missing) = self.missing_ancestor(parent_hash) {
            return self.want(missing);
        }
        let Some(mut payload) = self.payload.take() else {
            return;
        };
        // The actor's pool still holds what uncommitted ancestors carry (an
        // id leaves it only when its block commits), and the actor may not
        // know every ancestor (a proposal that arrived after we left its
        // view, a fetched block): voters would refuse the repeat and the
        // view would be lost.
        let in_chain = self.ancestor_attestations(parent_hash);
        if !in_chain.is_empty() {
            payload
                .attestations
                .retain(|envelope| !in_chain.contains(&envelope.id()));
        }
        let (block, ids) = Block::new_hashed(
            chain_id,
            height,
            view,
            parent_hash,
            payload.now_ms,
            leader,
            payload.attestations,
        );
        let block = block.with_evidence(payload.evidence);
        let hash = block.hash();
        self.out.push(Output::Persist(Record::Block(block.clone())));
        let notarize = self.sign(VoteKind::Notarize, view, hash.0);
        self.round_mut(view).proposal = Some(hash);
        self.headers.insert(hash, block.header.clone());
        self.blocks.insert_with_ids(hash, block.clone(), ids);
        let proposal = Proposal {
            block,
            notarize,
            parent: parent.header,
            parent_certificate: parent.certificate,
            nullifications: parent.nullifications,
        };
        self.out
            .push(Output::Broadcast(Message::Proposal(Box::new(proposal))));
        self.certify(view);
    }

    /// Our parent would be the epoch's boundary block B (notarized, not
    /// known final): nothing may go above it in this epoch, so we propose
    /// B itself again, justified by its notarization and the nullified
    /// views since (crate documentation, "Epochs"). Our payload is unused.
    fn repropose(&mut self, view: u64, parent: Parent) {
        let (Some(header), Some(certificate)) = (parent.header, parent.certificate) else {
            // B is the finalized block: it commits, and we switch epochs.
            self.payload = None;
            return;
        };
        if certificate.kind != VoteKind::Notarize {
            self.payload = None;
            return;
        }
        let hash = header.hash();
        let Some(block) = self.blocks.get(&hash).cloned() else {
            return self.want(hash);
        };
        self.payload = None;
        self.out.push(Output::Persist(Record::Block(block.clone())));
        let notarize = self.sign(VoteKind::Notarize, view, hash.0);
        self.round_mut(view).proposal = Some(hash);
        let proposal = Proposal {
            block,
            notarize,
            parent: None,
            parent_certificate: Some(certificate),
            nullifications: parent.nullifications,
        };
        self.out
            .push(Output::Broadcast(Message::Proposal(Box::new(proposal))));
        self.certify(view);
    }

    /// The first block on the way down from `tip` to the committed head
    /// whose body we do not hold, if any.
    fn missing_ancestor(&self, tip: BlockHash) -> Option<BlockHash> {
        let committed_height = self.committed_height();
        let head = self.committed.as_ref().map_or_else(
            || Header::genesis_parent(&self.config.chain_id),
            Header::hash,
        );
        let mut cursor = tip;
        loop {
            if cursor == head || self.recent_heights.contains_key(&cursor) {
                return None;
            }
            match self.blocks.get(&cursor) {
                Some(block) if block.header.height > committed_height + 1 => {
                    cursor = block.header.parent;
                }
                // Its parent is the committed head (checked when the block
                // was verified or fetched).
                Some(_) => return None,
                None => return Some(cursor),
            }
        }
    }

    /// Ids carried by `tip` and its uncommitted ancestors whose bodies we
    /// hold (committed ones are the actor's store's to know).
    fn ancestor_attestations(&self, tip: BlockHash) -> BTreeSet<AttestationId> {
        let mut ids = BTreeSet::new();
        let mut cursor = tip;
        while let Some((block, carried)) = self.blocks.get_with_ids(&cursor) {
            ids.extend(carried.iter().copied());
            cursor = block.header.parent;
        }
        ids
    }

    /// Ids carried by every uncommitted block body the engine holds: what a
    /// leader's actor leaves out of a payload, so that the attestations the
    /// engine would drop ([`Engine::try_propose`]) do not take the room of
    /// others. Blocks at or below the committed height are forgotten, so an
    /// id of an abandoned fork is offered again once its height commits.
    pub fn uncommitted_attestations(&self) -> BTreeSet<AttestationId> {
        self.blocks.all_ids().copied().collect()
    }

    /// Ids carried by the blocks that may still commit, as far as this
    /// engine knows: the current view's proposal and every notarized block
    /// above the finalized view, with their uncommitted ancestors. What a
    /// leader's actor leaves out of a payload and what does not count as
    /// work: an attestation in a block of a view that was left without a
    /// notarization (an equivocating or late leader's) is pending again at
    /// once, not only when some block commits at that height. The engine
    /// still drops repeats of the chosen parent's chain itself
    /// ([`Engine::try_propose`]), and voters refuse them.
    pub fn live_attestations(&self) -> BTreeSet<AttestationId> {
        let mut tips: Vec<BlockHash> = self
            .rounds
            .range(self.finalized.view + 1..)
            .filter_map(|(_, round)| round.notarization.as_ref())
            .map(|certificate| BlockHash(certificate.block))
            .collect();
        if let Some(proposal) = self.rounds.get(&self.view).and_then(|r| r.proposal) {
            tips.push(proposal);
        }
        let mut seen = BTreeSet::new();
        let mut ids = BTreeSet::new();
        for tip in tips {
            let mut cursor = tip;
            while seen.insert(cursor) {
                let Some((block, carried)) = self.blocks.get_with_ids(&cursor) else {
                    break;
                };
                ids.extend(carried.iter().copied());
                cursor = block.header.parent;
            }
        }
        ids
    }

    /// How many attestations the uncommitted block bodies carry (with
    /// repeats): a cheap upper bound of [`Engine::uncommitted_attestations`].
    pub fn uncommitted_attestation_count(&self) -> usize {
        self.blocks.blocks().map(|b| b.attestations.len()).sum()
    }

    /// Rule 2: walking down from `view - 1`, skip nullified views until a
    /// notarized (or the finalized) block.
    pub(crate) fn select_parent(&self, view: u64) -> Result<Parent, Missing> {
        assert!(view > self.finalized.view);
        let mut nullifications = Vec::new();
        let mut cursor = view - 1;
        loop {
            if cursor <= self.finalized.view {
                assert!(cursor == self.finalized.view);
                if self.finalized.certificate.is_none() {
                    return Ok(Parent {
                        header: None,
                        certificate: None,
                        nullifications,
                    });
                }
                let block = self.finalized.block;
                let header = self.header_of(&block).ok_or(Missing::Block(block))?;
                // The base of an epoch is final by the previous epoch's
                // certificate: voters of this epoch hold it as theirs.
                let certificate = if self.finalized.view == 0 {
                    None
                } else {
                    self.finalized.certificate.clone()
                };
                return Ok(Parent {
                    header: Some(header),
                    certificate,
                    nullifications,
                });
            }
            let round = self.rounds.get(&cursor);
            if let Some(certificate) =
                round.and_then(|r| r.notarization.as_ref().or(r.finalization.as_ref()))
            {
                let block = BlockHash(certificate.block);
                let header = self.header_of(&block).ok_or(Missing::Block(block))?;
                return Ok(Parent {
                    header: Some(header),
                    certificate: Some(certificate.clone()),
                    nullifications,
                });
            }
            match round.and_then(|r| r.nullification.as_ref()) {
                Some(_) if nullifications.len() == SKIP_VIEWS_MAX => {
                    return Err(Missing::TooManySkips);
                }
                Some(nullification) => nullifications.push(nullification.clone()),
                None => return Err(Missing::Certificate(cursor)),
            }
            cursor -= 1;
        }
    }

    /// A proposal from a peer (rule 3). The leader's vote is counted even if
    /// the rest is refused; only the first valid proposal of a view is kept.
    pub(crate) fn on_proposal(&mut self, proposal: Proposal) -> Result<(), DropReason> {
        let Proposal {
            block,
            notarize,
            parent,
            parent_certificate,
            nullifications,
        } = proposal;
        let view = notarize.view;
        self.check_vote(&notarize)?;
        if notarize.kind != VoteKind::Notarize {
            return Err(DropReason::Malformed(
                "a proposal carries the leader's notarize",
            ));
        }
        let leader = self.leader(view);
        if notarize.signer != leader {
            return Err(DropReason::NotLeader {
                view,
                signer: notarize.signer,
            });
        }
        let boundary = self.boundary();
        // The boundary block again, in a later view (see `repropose`).
        let reproposal = block.header.view != view;
        if reproposal {
            if boundary != Some(block.header.height) || block.header.view > view {
                return Err(DropReason::Malformed(
                    "header view does not match the vote, and it is no boundary re-proposal",
                ));
            }
        } else if block.header.proposer != leader {
            return Err(DropReason::Malformed(
                "header view or proposer does not match the vote",
            ));
        }
        if let Some(boundary) = boundary
            && block.header.height > boundary
        {
            return Err(DropReason::TooFarAhead {
                height: block.header.height,
                limit: boundary,
            });
        }
        let hash = block.hash();
        if hash.0 != notarize.block {
            return Err(DropReason::Malformed(
                "the leader's vote is not for this block",
            ));
        }
        if nullifications.len() > SKIP_VIEWS_MAX {
            return Err(DropReason::Malformed("too many nullifications"));
        }
        if !self
            .rounds
            .get(&view)
            .is_some_and(|r| r.votes.contains(&notarize))
        {
            self.verify_vote(&notarize)?;
            self.record_vote(notarize);
        }
        if self.rounds.get(&view).is_some_and(|r| r.proposal.is_some()) {
            self.certify(view);
            return Ok(());
        }
        let ids = block
            .check_body(&self.config.chain_id)
            .map_err(DropReason::Block)?;
        let justified_by = match (&parent_certificate, reproposal) {
            (Some(certificate), true) if certificate.block == hash.0 => Some(certificate.view),
            (_, true) => {
                return Err(DropReason::Malformed(
                    "a re-proposal carries the block's own notarization",
                ));
            }
            (_, false) => None,
        };
        if let Some(certificate) = parent_certificate {
            if !matches!(certificate.kind, VoteKind::Notarize | VoteKind::Finalize) {
                return Err(DropReason::Malformed(
                    "parent certificate is a nullification",
                ));
            }
            self.absorb_certificate(certificate)?;
        }
        for certificate in nullifications {
            if certificate.kind != VoteKind::Nullify {
                return Err(DropReason::Malformed(
                    "skipped view certificate is not a nullification",
                ));
            }
            self.absorb_certificate(certificate)?;
        }
        // The justification may have finalized the re-proposed block
        // itself (our finalize completed its quorum): nothing to vote for.
        if reproposal
            && (self.finalized.block == hash || self.committed_height() >= block.header.height)
        {
            return Ok(());
        }
        // The certificates may have finalized past this view.
        if view <= self.finalized.view {
            return Err(DropReason::StaleView {
                view,
                finalized: self.finalized.view,
            });
        }
        match justified_by {
            Some(notarized_in) => self.check_reproposal(&hash, notarized_in, view)?,
            None => self.check_parent(&block.header, parent.as_ref())?,
        }
        let limit = self.committed_height().saturating_add(PIPELINE_HEIGHTS_MAX);
        if block.header.height > limit {
            return Err(DropReason::TooFarAhead {
                height: block.header.height,
                limit,
            });
        }
        self.accept_proposal(view, block, ids, parent);
        Ok(())
    }

    /// `view`: the proposal's (the block's own, or a later one for a
    /// re-proposed boundary block).
    fn accept_proposal(
        &mut self,
        view: u64,
        block: Block,
        ids: Vec<AttestationId>,
        parent: Option<Header>,
    ) {
        let hash = block.hash();
        let committed_height = self.committed_height();
        if let Some(parent) = parent.filter(|p| p.height > committed_height) {
            self.headers.insert(parent.hash(), parent);
        }
        self.headers.insert(hash, block.header.clone());
        self.wanted.remove(&hash);
        let current = self.view;
        let round = self.round_mut(view);
        round.proposal = Some(hash);
        if view == current && round.own.may_notarize() {
            round.verifying = true;
            self.out.push(Output::Verify {
                view,
                block: block.clone(),
                ids: ids.clone(),
            });
        }
        self.blocks.insert_with_ids(hash, block, ids);
        // A proposal is a sign of work: the view's timers start, so that a
        // proposal that does not gather a notarization still ends the view.
        if view == self.view {
            self.activate();
        }
        self.certify(view);
        self.try_commit();
    }

    /// The parent rule for a re-proposed boundary block: notarized in
    /// `notarized_in` (below `view`) and every view between nullified.
    fn check_reproposal(
        &self,
        hash: &BlockHash,
        notarized_in: u64,
        view: u64,
    ) -> Result<(), DropReason> {
        if notarized_in >= view || notarized_in < self.finalized.view {
            return Err(DropReason::Parent(
                "re-proposal's notarization is not between the finalized view and the view",
            ));
        }
        let notarized = if notarized_in == self.finalized.view {
            self.finalized.block == *hash
        } else {
            self.rounds
                .get(&notarized_in)
                .is_some_and(|r| r.notarized(hash).is_some())
        };
        if !notarized {
            return Err(DropReason::Parent("re-proposed block is not notarized"));
        }
        self.nullified_between(notarized_in, view)
    }

    /// The parent rule: the parent is notarized (or is the finalized block)
    /// and every view between it and the proposal is nullified.
    pub(crate) fn check_parent(
        &self,
        header: &Header,
        parent: Option<&Header>,
    ) -> Result<(), DropReason> {
        let chain_id = self.config.chain_id;
        let view = header.view;
        let parent_view = match parent {
            None => {
                if header.parent != Header::genesis_parent(&chain_id) || header.height != 1 {
                    return Err(DropReason::Parent(
                        "a block without parent header must be the first",
                    ));
                }
                0
            }
            Some(p) if self.finalized.view == 0 && header.parent == self.finalized.block => {
                // The epoch's base (or genesis' first block): it plays the
                // part of view 0, like the genesis parent.
                if p.hash() != header.parent || p.height.checked_add(1) != Some(header.height) {
                    return Err(DropReason::Parent(
                        "parent header does not hash to the epoch's base",
                    ));
                }
                0
            }
            Some(p) => {
                if p.hash() != header.parent {
                    return Err(DropReason::Parent(
                        "parent header does not hash to the parent",
                    ));
                }
                if p.chain_id != chain_id {
                    return Err(DropReason::Parent("parent header is of another chain"));
                }
                if p.height.checked_add(1) != Some(header.height) {
                    return Err(DropReason::Parent("height does not follow the parent"));
                }
                if p.view >= view {
                    return Err(DropReason::Parent("parent view is not below the view"));
                }
                p.view
            }
        };
        if parent_view < self.finalized.view {
            return Err(DropReason::Parent("parent is below the finalized view"));
        }
        if parent_view == self.finalized.view {
            if header.parent != self.finalized.block {
                return Err(DropReason::Parent(
                    "parent conflicts with the finalized block",
                ));
            }
        } else if self
            .rounds
            .get(&parent_view)
            .is_none_or(|r| r.notarized(&header.parent).is_none())
        {
            return Err(DropReason::Parent("parent is not notarized"));
        }
        self.nullified_between(parent_view, view)
    }

    /// Every view strictly between `after` and `view` is nullified: a
    /// proposal may only skip views the quorum gave up on (the parent rule
    /// and a boundary block's re-proposal share it).
    fn nullified_between(&self, after: u64, view: u64) -> Result<(), DropReason> {
        for skipped in after + 1..view {
            if self
                .rounds
                .get(&skipped)
                .is_none_or(|r| r.nullification.is_none())
            {
                return Err(DropReason::MissingNullification(skipped));
            }
        }
        Ok(())
    }
}
