//! Getting what we lack and committing what is final (rule 7).
//!
//! Two ways to get blocks: *fetch* asks peers' engines for a notarized or
//! recently committed block by hash (and its ancestors); *sync*
//! ([`crate::Output::Sync`]) asks the actor to copy finalized blocks with
//! their finalities from peers' block logs, for gaps longer than peers keep
//! in memory or than one `Finality` can prove.

use std::collections::BTreeSet;

use lotline_core::attestation::{AttestationId, Envelope};
use lotline_core::block::{Block, BlockError, BlockHash, Header};
use lotline_core::certificate::Finality;
use lotline_core::evidence::Evidence;

use crate::certificate::QuorumCertificate;
use crate::config::{
    FETCH_ATTEMPTS_BEFORE_SYNC, FETCH_BLOCKS_MAX, PIPELINE_HEIGHTS_MAX, SKIP_VIEWS_MAX,
    WANTED_BLOCKS_MAX,
};
use crate::engine::Engine;
use crate::{DropReason, Message, Output, Record, Request, TimerKind};

impl Engine {
    pub(crate) fn committed_hash(&self) -> BlockHash {
        match &self.committed {
            Some(header) => header.hash(),
            None => Header::genesis_parent(&self.config.chain_id),
        }
    }

    /// The header of an uncommitted, the last committed or a recently
    /// committed block.
    pub(crate) fn header_of(&self, hash: &BlockHash) -> Option<Header> {
        if let Some(header) = self.committed.as_ref().filter(|h| h.hash() == *hash) {
            return Some(header.clone());
        }
        if let Some(header) = self.headers.get(hash) {
            return Some(header.clone());
        }
        self.recent_block(hash).map(|b| b.header.clone())
    }

    fn recent_block(&self, hash: &BlockHash) -> Option<&Block> {
        self.recent_heights
            .get(hash)
            .and_then(|height| self.recent.get(height))
    }

    /// Starts fetching a block we know only by (authenticated) hash.
    pub(crate) fn want(&mut self, hash: BlockHash) {
        let known = self.blocks.contains_key(&hash) || self.recent_heights.contains_key(&hash);
        if known || self.wanted.contains_key(&hash) || self.wanted.len() >= WANTED_BLOCKS_MAX {
            return;
        }
        self.wanted.insert(hash, 0);
        self.request_block(hash, 0);
    }

    /// Asks one peer, a different one on each attempt.
    fn request_block(&mut self, hash: BlockHash, attempt: u32) {
        let n = self.set.len();
        if n < 2 {
            return;
        }
        let others = u64::try_from(n - 1).unwrap_or(1);
        let offset = 1 + u64::from(attempt) % others;
        let peer = (u64::from(self.me()) + offset) % u64::try_from(n).unwrap_or(1);
        let to = u16::try_from(peer).unwrap_or(0);
        assert!(to != self.me());
        self.out.push(Output::Send {
            to,
            message: Message::Request(Request::Block { hash }),
        });
    }

    /// On every timer: ask again for what has not come; if a finalized block
    /// stays missing, ask the actor to block-sync too.
    pub(crate) fn retry_fetches(&mut self) {
        let wanted: Vec<(BlockHash, u32)> = self
            .wanted
            .iter()
            .map(|(h, a)| (*h, a.saturating_add(1)))
            .collect();
        let mut stuck = false;
        for (hash, attempt) in wanted {
            self.wanted.insert(hash, attempt);
            self.request_block(hash, attempt);
            stuck |= attempt >= FETCH_ATTEMPTS_BEFORE_SYNC;
        }
        if stuck && self.finalized.block != self.committed_hash() {
            self.out.push(Output::Sync {
                height: self.committed_height() + 1,
            });
        }
    }

    pub(crate) fn on_request(&mut self, from: u16, request: Request) {
        match request {
            Request::Block { hash } => {
                let mut blocks = Vec::new();
                let mut cursor = hash;
                while blocks.len() < FETCH_BLOCKS_MAX {
                    let Some(block) = self
                        .blocks
                        .get(&cursor)
                        .or_else(|| self.recent_block(&cursor))
                    else {
                        break;
                    };
                    cursor = block.header.parent;
                    blocks.push(block.clone());
                }
                if !blocks.is_empty() {
                    self.out.push(Output::Send {
                        to: from,
                        message: Message::Blocks(blocks),
                    });
                }
            }
            Request::Certificates { view } => {
                for certificate in self.justification(view) {
                    self.out.push(Output::Send {
                        to: from,
                        message: Message::Certificate(certificate),
                    });
                }
            }
        }
    }

    /// Walking down from `view`: nullifications until a notarization, or
    /// down to the finalized view and its finalization.
    fn justification(&self, view: u64) -> Vec<QuorumCertificate> {
        let mut certificates = Vec::new();
        let mut cursor = view.min(self.view);
        while cursor > self.finalized.view && certificates.len() <= SKIP_VIEWS_MAX {
            let Some(round) = self.rounds.get(&cursor) else {
                return certificates;
            };
            if let Some(certificate) = round.notarization.as_ref().or(round.finalization.as_ref()) {
                certificates.push(certificate.clone());
                return certificates;
            }
            let Some(nullification) = &round.nullification else {
                return certificates;
            };
            certificates.push(nullification.clone());
            cursor -= 1;
        }
        if cursor <= self.finalized.view
            && let Some(finalization) = &self.finalized.certificate
        {
            certificates.push(finalization.clone());
        }
        certificates
    }

    /// An answer to our block request: the wanted block, then ancestors
    /// linked by hash.
    pub(crate) fn on_blocks(&mut self, blocks: Vec<Block>) -> Result<(), DropReason> {
        if blocks.len() > FETCH_BLOCKS_MAX {
            return Err(DropReason::Malformed("too many blocks in one answer"));
        }
        let committed_height = self.committed_height();
        let limit = committed_height.saturating_add(PIPELINE_HEIGHTS_MAX);
        let mut expected: Option<BlockHash> = None;
        for block in blocks {
            let hash = block.hash();
            match expected {
                None if !self.wanted.contains_key(&hash) => {
                    return Err(DropReason::Unrequested(hash));
                }
                Some(parent) if parent != hash => break,
                _ => {}
            }
            if block.header.height <= committed_height || self.blocks.contains_key(&hash) {
                break;
            }
            let ids = block
                .check_body(&self.config.chain_id)
                .map_err(DropReason::Block)?;
            if block.header.height > limit {
                self.out.push(Output::Sync {
                    height: committed_height + 1,
                });
                return Err(DropReason::TooFarAhead {
                    height: block.header.height,
                    limit,
                });
            }
            self.wanted.remove(&hash);
            expected = Some(block.header.parent);
            self.headers.insert(hash, block.header.clone());
            self.out.push(Output::Persist(Record::Block(block.clone())));
            self.blocks.insert_with_ids(hash, block, ids);
        }
        self.try_commit();
        self.try_propose(false);
        Ok(())
    }

    /// A finalized block is missing and the view is idle: it has no timer
    /// to retry the fetch before the heartbeat, a peer that no longer
    /// holds the block in memory never answers it, and the request may
    /// have gone out before any connection was up (a validator restarted
    /// behind on an idle chain). Block-sync the final gap now, and again
    /// on a `Retry` timer every view timeout until it is committed (the
    /// actor asks another peer each time; one may be silent).
    pub(crate) fn catch_up(&mut self) {
        self.out.push(Output::Sync {
            height: self.committed_height() + 1,
        });
        if !self.catch_up_armed {
            self.catch_up_armed = true;
            self.out.push(Output::SetTimer {
                view: self.view,
                timer: TimerKind::Retry,
                after_ms: self.config.view_timeout_ms(self.streak),
            });
        }
    }

    /// Rule 7: commits the finalized block and its uncommitted ancestors, in
    /// height order, once all their bodies are here.
    pub(crate) fn try_commit(&mut self) {
        let target = self.finalized.block;
        let committed_hash = self.committed_hash();
        if target == committed_hash {
            return;
        }
        let Some(certificate) = self
            .finalized
            .certificate
            .as_ref()
            .and_then(QuorumCertificate::to_finalization)
        else {
            return;
        };
        let committed_height = self.committed_height();
        let mut path: Vec<BlockHash> = Vec::new();
        let mut cursor = target;
        while cursor != committed_hash {
            let Some(block) = self.blocks.get(&cursor) else {
                self.want(cursor);
                if !self.active {
                    self.catch_up();
                }
                return;
            };
            if block.header.height <= committed_height {
                return self.dropped(
                    None,
                    DropReason::ConflictingFinalization(block.header.height),
                );
            }
            if path.len() as u64 >= PIPELINE_HEIGHTS_MAX {
                self.out.push(Output::Sync {
                    height: committed_height + 1,
                });
                return;
            }
            path.push(cursor);
            cursor = block.header.parent;
        }
        path.reverse();
        let chain: Vec<(Block, Vec<AttestationId>)> = path
            .iter()
            .filter_map(|hash| self.blocks.remove_with_ids(hash))
            .collect();
        assert!(chain.len() == path.len(), "a walked block vanished");
        let Some((tip, _)) = chain.last() else { return };
        // Only the boundary block is finalized in a later view than its
        // own (re-proposed), and nothing above it is of its epoch.
        let boundary = self.boundary();
        let reproposed = boundary == Some(tip.header.height) && certificate.view > tip.header.view;
        if tip.header.view != certificate.view && !reproposed {
            return self.dropped(
                None,
                DropReason::Malformed("finalization view differs from the block's view"),
            );
        }
        if boundary.is_some_and(|b| tip.header.height > b) {
            return self.dropped(
                None,
                DropReason::Malformed("a finalized block above the epoch's boundary"),
            );
        }
        let headers: Vec<Header> = chain.iter().map(|(b, _)| b.header.clone()).collect();
        for (index, (block, ids)) in chain.into_iter().enumerate() {
            let finality = Finality {
                certificate: certificate.clone(),
                descendants: headers[index + 1..].to_vec(),
            };
            self.out.push(Output::Commit {
                block: block.clone(),
                ids,
                finality,
            });
            self.remember_committed(block);
        }
        self.after_commit();
    }

    fn remember_committed(&mut self, block: Block) {
        let height = block.header.height;
        assert!(height == self.committed_height() + 1, "commit out of order");
        if let Some(parent) = &self.committed {
            assert!(
                block.header.parent == parent.hash(),
                "commit does not extend the head"
            );
        }
        self.committed = Some(block.header.clone());
        self.drop_committed_from_payload(&block);
        if self.config.committed_blocks_retained > 0 {
            self.recent_heights.insert(block.hash(), height);
            self.recent.insert(height, block);
        }
        while self.recent.len() > self.config.committed_blocks_retained {
            let Some((_, old)) = self.recent.pop_first() else {
                break;
            };
            self.recent_heights.remove(&old.hash());
        }
    }

    /// A payload waiting for its parent (a fetched body, a certificate) was
    /// built from the actor's pool before this block committed: what the
    /// block carries leaves the payload with the commit, or the proposal
    /// would repeat it and voters would refuse the view (issue 10, defect
    /// 9: a parent fetched and committed at once is no longer an
    /// uncommitted ancestor that `try_propose` leaves out).
    fn drop_committed_from_payload(&mut self, block: &Block) {
        let Some(payload) = self.payload.as_mut() else {
            return;
        };
        if !payload.attestations.is_empty() && !block.attestations.is_empty() {
            let committed: BTreeSet<_> = block.attestations.iter().map(Envelope::id).collect();
            payload
                .attestations
                .retain(|envelope| !committed.contains(&envelope.id()));
        }
        if !payload.evidence.is_empty() && !block.evidence.is_empty() {
            let recorded: BTreeSet<_> = block.evidence.iter().filter_map(Evidence::key).collect();
            payload
                .evidence
                .retain(|e| e.key().is_none_or(|key| !recorded.contains(&key)));
        }
    }

    fn after_commit(&mut self) {
        let height = self.committed_height();
        self.blocks.retain(|b| b.header.height > height);
        self.headers.retain(|_, h| h.height > height);
        self.wanted.clear();
    }

    /// A finalized block from block sync: it must extend the committed head
    /// and its finality must verify on its own.
    pub(crate) fn on_synced(&mut self, block: Block, finality: Finality) -> Result<(), DropReason> {
        let expected = self.committed_height() + 1;
        if block.header.height != expected {
            return Err(DropReason::Block(BlockError::Height {
                expected,
                got: block.header.height,
            }));
        }
        block
            .check_link(self.committed.as_ref())
            .map_err(DropReason::Block)?;
        let ids = block
            .check_body(&self.config.chain_id)
            .map_err(DropReason::Block)?;
        // A certificate of another epoch must not pass because the two
        // sets share keys: the epoch is checked, then the signatures.
        self.check_epoch(finality.certificate.epoch)?;
        if self.boundary().is_some_and(|b| block.header.height > b) {
            return Err(DropReason::TooFarAhead {
                height: block.header.height,
                limit: block.header.height - 1,
            });
        }
        finality
            .verify(&self.set, &block.header)
            .map_err(DropReason::Finality)?;
        let hash = block.hash();
        self.out.push(Output::Commit {
            block: block.clone(),
            ids,
            finality: finality.clone(),
        });
        self.blocks.remove(&hash);
        self.remember_committed(block);
        let certificate = QuorumCertificate::from_finalization(&finality.certificate);
        if certificate.view > self.finalized.view {
            self.on_finalization(certificate, false);
        }
        self.after_commit();
        self.try_commit();
        Ok(())
    }
}
