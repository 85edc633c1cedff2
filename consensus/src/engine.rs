//! The multi-validator Simplex engine: [`Engine::handle`].
//!
//! # Deviations from Simplex (Chan & Pass 2023), and why
//!
//! * **Leaders** rotate round-robin over the genesis order
//!   ([`crate::leader`]); the paper elects them at random (a hash of the
//!   iteration) for adaptive adversaries. A consortium of known
//!   organisations wants predictable, auditable leaders (design.md).
//! * **Views are not heights.** The paper adds a dummy block for a
//!   nullified iteration; here (as in commonware) a nullified view adds no
//!   block, and the parent rule asks for a nullification of every skipped
//!   view instead.
//! * **Proposals carry their justification** (parent header, the parent's
//!   certificate, the skipped views' nullifications). The paper relies on
//!   every honest node having forwarded every certificate; carrying them lets
//!   a voter that jumped views check a proposal on its own. A leader missing
//!   certificates asks peers ([`crate::Request::Certificates`]).
//! * **Finalize after leaving a view.** A node signs `finalize(v, h)` on the
//!   first notarization of `v` it learns of, even after it has moved past
//!   `v`, as long as it did not nullify `v` (the paper's rule, applied to
//!   late certificates).
//! * **Timeouts back off**: the leader timeout doubles with every consecutive
//!   nullified view (capped), resets on a finalization; a stuck node
//!   rebroadcasts its nullify and its entry certificate every view timeout.
//!   Retries are unbounded in number but bounded in rate.
//! * **Suspected leaders get a short leader timer.** A leader whose last
//!   turn was nullified without a proposal seen is waited for
//!   [`Config::suspect_timeout_ms`] (a fortieth of the leader timeout), until
//!   it proposes again ([`crate::leader`] explains the rule and why it is a
//!   local timer, not a change of leader schedule). One dead validator of
//!   four then costs a fortieth of a timeout per four views, not a timeout.
//! * **First vote counts.** A validator's first vote of each kind in a view
//!   is counted; a conflicting later one only becomes [`Evidence`].
//! * **Pipeline limit**: blocks more than [`PIPELINE_HEIGHTS_MAX`] above
//!   the committed height are neither built nor voted for, so every
//!   committed block's [`Finality`] fits the receipt limit.
//! * **More is durable than own votes.** Besides the vote journal the
//!   engine persists ([`Record`]) the body of every block it notarizes
//!   (before the vote leaves) and every certificate it stores. A notarized
//!   view can only be skipped with a nullification, so if every holder of a
//!   notarized body lost it in a crash the chain would stall for good; and a
//!   straggler needs the certificate of the view it is stuck in even after
//!   every holder restarted. The simulator found both.
//! * **Stragglers are helped**: a peer that sends messages of a view below
//!   our finalized view gets our latest finalization (once per finalized
//!   view); retries also carry it.
//! * **Epochs restart views at 1** and are rooted at the previous epoch's
//!   boundary block, which that epoch finalizes itself, by re-proposing it
//!   if its own view ended without a finalization (crate documentation,
//!   "Epochs"). Commonware's simplex also runs one instance per epoch.
//!
//! [`PIPELINE_HEIGHTS_MAX`]: crate::config::PIPELINE_HEIGHTS_MAX
//! [`Finality`]: lotline_core::certificate::Finality

use std::collections::BTreeMap;
use std::num::NonZeroU64;

use lotline_core::block::{Block, BlockHash, Header};
use lotline_core::certificate::Finality;
use lotline_core::hash::Digest;
use lotline_core::limits;
use lotline_core::validators::ValidatorSet;
use lotline_core::vote::{self, Vote, VoteKind};

use crate::certificate::QuorumCertificate;
use crate::config::Config;
use crate::held::HeldBlocks;
use crate::journal::{self, RestoreError};
use crate::leader::Suspects;
use crate::proposal::Payload;
use crate::view::Round;
use crate::votes::Insert;
use crate::{DropReason, Input, Message, Output, Record, TimerKind};

/// The highest finalization the engine knows of.
#[derive(Clone, Debug)]
pub(crate) struct Finalized {
    pub view: u64,
    pub block: BlockHash,
    /// `None` only for the genesis parent (view 0).
    pub certificate: Option<QuorumCertificate>,
}

/// How a view was entered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Entry {
    Notarized,
    Nullified,
    Finalized,
}

/// A Simplex validator as a pure state machine.
#[derive(Debug)]
pub struct Engine {
    pub(crate) config: Config,
    pub(crate) set: ValidatorSet,
    pub(crate) quorum: usize,
    /// The current view; always above `finalized.view`.
    pub(crate) view: u64,
    /// Views above `finalized.view` we hold votes or certificates for.
    pub(crate) rounds: BTreeMap<u64, Round>,
    pub(crate) finalized: Finalized,
    /// The last committed header; `None` before the first block.
    pub(crate) committed: Option<Header>,
    /// Uncommitted block bodies (proposals that passed the checks, fetched
    /// ancestors of notarized blocks).
    pub(crate) blocks: HeldBlocks,
    /// Uncommitted headers we know (bodies' headers and proposals' parents).
    pub(crate) headers: BTreeMap<BlockHash, Header>,
    /// Recently committed blocks by height, to answer peers' requests.
    pub(crate) recent: BTreeMap<u64, Block>,
    pub(crate) recent_heights: BTreeMap<BlockHash, u64>,
    /// Blocks being fetched, with the attempts so far.
    pub(crate) wanted: BTreeMap<BlockHash, u32>,
    /// Consecutive views entered by nullification since the last finalization.
    pub(crate) streak: u32,
    /// Leaders that missed their last turn: their views get a short timer.
    pub(crate) suspects: Suspects,
    /// The certificate that let us enter `view`.
    pub(crate) entry: Option<QuorumCertificate>,
    /// The actor's last word on whether it holds work to order
    /// ([`Input::Work`]); true until it says otherwise.
    pub(crate) pending: bool,
    /// The current view is active: its timers run and, if we lead it, we
    /// asked for a payload. See "Idle views" in the crate documentation.
    pub(crate) active: bool,
    /// The leader's payload, waiting for the parent to be known.
    pub(crate) payload: Option<Payload>,
    /// The finalized view we last told each lagging peer about.
    pub(crate) helped: BTreeMap<u16, u64>,
    /// Offences already reported (bounded, see `EVIDENCE_SEEN_MAX`).
    pub(crate) evidence_seen: crate::evidence::Seen,
    /// The next epoch, once the actor told us ([`Input::Reconfigure`]):
    /// the current epoch ends at `from_height - 1`.
    pub(crate) next: Option<crate::Reconfiguration>,
    /// The finalization (of the previous epoch) of the block this epoch is
    /// rooted at; `None` in epoch 0. Stragglers of the previous epoch get it.
    pub(crate) base: Option<QuorumCertificate>,
    /// Our view when we last sent `base` to each straggler.
    pub(crate) helped_base: BTreeMap<u16, u64>,
    /// A `Retry` timer is armed to catch up with our finalization from an
    /// idle view (`Engine::catch_up`).
    pub(crate) catch_up_armed: bool,
    /// Outputs of the step in progress.
    pub(crate) out: Vec<Output>,
}

impl Engine {
    /// A fresh engine: no journal, nothing committed.
    pub fn new(config: Config) -> Engine {
        config.assert();
        let set = config.validator_set();
        let quorum = set.quorum();
        let genesis = Header::genesis_parent(&config.chain_id);
        Engine {
            set,
            quorum,
            view: 1,
            rounds: BTreeMap::new(),
            finalized: Finalized {
                view: 0,
                block: genesis,
                certificate: None,
            },
            committed: None,
            blocks: HeldBlocks::default(),
            headers: BTreeMap::new(),
            recent: BTreeMap::new(),
            recent_heights: BTreeMap::new(),
            wanted: BTreeMap::new(),
            streak: 0,
            suspects: Suspects::default(),
            entry: None,
            pending: true,
            active: false,
            payload: None,
            helped: BTreeMap::new(),
            evidence_seen: Default::default(),
            next: None,
            base: None,
            helped_base: BTreeMap::new(),
            catch_up_armed: false,
            out: Vec::new(),
            config,
        }
    }

    /// Rebuilds an engine after a restart from every vote in the journal,
    /// every persisted [`Record`] and the last committed block with its
    /// finality. The engine re-enters the highest journaled view (or the
    /// view after the highest persisted certificate) and never signs a vote
    /// that conflicts with a journaled one. Call [`Engine::start`] next.
    pub fn restore(
        config: Config,
        journal: &[Vote],
        records: &[Record],
        last_finalized: Option<(Header, Finality)>,
    ) -> Result<Engine, RestoreError> {
        let mut engine = Engine::new(config);
        if let Some((header, finality)) = last_finalized {
            assert!(
                header.chain_id == engine.config.chain_id,
                "committed header of another chain"
            );
            let certificate = QuorumCertificate::from_finalization(&finality.certificate);
            assert!(
                certificate.view >= header.view,
                "finality certifies an older view"
            );
            assert!(
                certificate.epoch <= engine.config.epoch,
                "committed block is final in a later epoch than the config's"
            );
            if certificate.epoch < engine.config.epoch {
                // The boundary block of the previous epoch: our base.
                assert!(
                    finality.descendants.is_empty(),
                    "a boundary block is final by its own certificate"
                );
                engine.finalized = Finalized {
                    view: 0,
                    block: header.hash(),
                    certificate: Some(certificate.clone()),
                };
                engine.base = Some(certificate);
            } else {
                engine.finalized = Finalized {
                    view: certificate.view,
                    block: BlockHash(certificate.block),
                    certificate: Some(certificate),
                };
                for descendant in finality.descendants {
                    engine.headers.insert(descendant.hash(), descendant);
                }
            }
            engine.committed = Some(header);
        }
        engine.restore_records(records);
        let follows = usize::from(engine.config.index) >= engine.config.validators.len();
        let views = journal::own_votes(
            journal,
            engine.config.index,
            engine.config.epoch,
            engine.finalized.view,
            follows,
        )?;
        let after_certificates = engine.rounds.keys().next_back().map_or(0, |v| v + 1);
        engine.view = journal::restart_view(&views, engine.finalized.view).max(after_certificates);
        engine.entry = engine.entry_certificate();
        for (view, own) in views {
            let round = engine.round_mut(view);
            for vote in own.all() {
                let inserted = round.votes.insert(vote);
                assert!(
                    inserted == Insert::New,
                    "journal votes conflict after the journal check"
                );
            }
            round.own = own;
        }
        assert!(engine.view > engine.finalized.view);
        Ok(engine)
    }

    /// Records from our own journal (trusted like our votes): the highest
    /// finalization first, then certificates above it, then blocks above
    /// the committed height.
    fn restore_records(&mut self, records: &[Record]) {
        let epoch = self.config.epoch;
        let certificates: Vec<&QuorumCertificate> = records
            .iter()
            .filter_map(|r| match r {
                Record::Certificate(c) if c.epoch == epoch => Some(c),
                _ => None,
            })
            .collect();
        let committed_height = self.committed_height();
        for record in records {
            if let Record::Block(block) = record
                && block.header.height > committed_height
            {
                self.headers.insert(block.hash(), block.header.clone());
                self.blocks.insert(block.hash(), block.clone());
            }
        }
        let finalization = certificates
            .iter()
            .filter(|c| c.kind == VoteKind::Finalize && c.view > self.finalized.view)
            .max_by_key(|c| c.view);
        if let Some(certificate) = finalization {
            self.finalized = Finalized {
                view: certificate.view,
                block: BlockHash(certificate.block),
                certificate: Some((*certificate).clone()),
            };
        }
        let floor = self.finalized.view;
        for certificate in certificates.iter().filter(|c| c.view > floor) {
            let round = self.round_mut(certificate.view);
            let slot = match certificate.kind {
                VoteKind::Notarize => &mut round.notarization,
                VoteKind::Nullify => &mut round.nullification,
                VoteKind::Finalize => &mut round.finalization,
            };
            slot.get_or_insert_with(|| (*certificate).clone());
        }
    }

    /// The outputs of (re)starting: our latest finalization (for peers to
    /// answer with theirs if they are ahead), the current view's timers, a
    /// build request if we lead it, and a rebroadcast of what we already
    /// signed in it.
    pub fn start(&mut self) -> Vec<Output> {
        assert!(self.out.is_empty());
        // A validator restarted behind a chain that has gone idle would hear
        // nothing until the next heartbeat: show peers our latest
        // finalization; any that are further ahead answer with theirs
        // (`help`), and block sync takes it from there.
        if let Some(certificate) = self.finalized.certificate.clone() {
            self.out
                .push(Output::Broadcast(Message::Certificate(certificate)));
        }
        self.start_view();
        let view = self.view;
        let streak = self.streak;
        let own = self.round_mut(view).own.clone();
        for vote in own.all() {
            self.out.push(Output::Broadcast(Message::Vote(vote)));
        }
        if own.nullify.is_some() {
            let after_ms = self.config.view_timeout_ms(streak);
            self.out.push(Output::SetTimer {
                view,
                timer: TimerKind::Retry,
                after_ms,
            });
        }
        self.try_commit();
        self.maybe_switch();
        std::mem::take(&mut self.out)
    }

    /// One step: consumes an input, returns what the actor must do, in order.
    pub fn handle(&mut self, input: Input) -> Vec<Output> {
        assert!(self.out.is_empty());
        match input {
            Input::Propose {
                attestations,
                evidence,
                now_ms,
            } => self.on_propose(attestations, evidence, now_ms),
            Input::Message { from, message } => self.on_message(from, message),
            Input::Timer { view, timer } => self.on_timer(view, timer),
            Input::Verified { view, block, valid } => self.on_verified(view, block, valid),
            Input::Synced { block, finality } => {
                if let Err(reason) = self.on_synced(block, finality) {
                    self.dropped(None, reason);
                }
            }
            Input::PeerConnected { peer } => self.on_peer_connected(peer),
            Input::Work { pending } => {
                self.pending = pending;
                if pending {
                    self.activate();
                }
            }
            Input::Reconfigure(next) => self.on_reconfigure(*next),
        }
        self.maybe_switch();
        assert!(self.view > self.finalized.view);
        std::mem::take(&mut self.out)
    }

    pub fn view(&self) -> u64 {
        self.view
    }

    pub fn finalized_view(&self) -> u64 {
        self.finalized.view
    }

    /// The last committed header (`None` before the first commit).
    pub fn committed(&self) -> Option<&Header> {
        self.committed.as_ref()
    }

    pub fn committed_height(&self) -> u64 {
        self.committed.as_ref().map_or(0, |h| h.height)
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// New leader timeouts (a `setConsensus` in force): timers set from
    /// now on use them, those already running keep theirs. Timeouts are
    /// local waits, not rules every validator must apply at the same step
    /// (crate documentation, "Idle views"), so the actor may change them
    /// between inputs. A cap below the base is raised to it.
    pub fn set_timeouts(&mut self, base_ms: NonZeroU64, max_ms: NonZeroU64) {
        self.config.timeout_base_ms = base_ms;
        self.config.timeout_max_ms = max_ms.max(base_ms);
    }

    /// The epoch we vote (or follow) in.
    pub fn epoch(&self) -> u64 {
        self.config.epoch
    }

    /// The last height of the current epoch, once the next is known.
    pub fn boundary(&self) -> Option<u64> {
        self.next.as_ref().map(|next| next.from_height - 1)
    }

    /// The leader of `view` in this validator set.
    pub fn leader(&self, view: u64) -> u16 {
        crate::leader(view, self.set.len())
    }

    /// True while `validator` is suspected dead: it missed its last turn
    /// and has not proposed since (see [`crate::leader`]).
    pub fn suspected(&self, validator: u16) -> bool {
        self.suspects.contains(validator)
    }

    pub(crate) fn me(&self) -> u16 {
        self.config.index
    }

    pub(crate) fn round_mut(&mut self, view: u64) -> &mut Round {
        self.rounds.entry(view).or_insert_with(Round::new)
    }

    pub(crate) fn dropped(&mut self, from: Option<u16>, reason: DropReason) {
        self.out.push(Output::Dropped { from, reason });
    }

    fn on_message(&mut self, from: u16, message: Message) {
        // A node that follows the epoch without voting (a removed or not
        // yet added validator) may ask for blocks and certificates and show
        // its finalization; everything it says is checked like any peer's.
        let member = usize::from(from) < self.set.len();
        let asks = matches!(message, Message::Request(_) | Message::Certificate(_));
        if !member && !asks {
            return self.dropped(Some(from), DropReason::UnknownPeer(from));
        }
        let result = match message {
            Message::Proposal(proposal) => self.on_proposal(*proposal),
            Message::Vote(vote) => self.on_vote(vote),
            Message::Certificate(certificate) => self.on_certificate(certificate),
            Message::Request(request) => {
                self.on_request(from, request);
                Ok(())
            }
            Message::Blocks(blocks) => self.on_blocks(blocks),
            Message::Evidence(evidence) => self.on_evidence(*evidence),
        };
        if let Err(reason) = result {
            match reason {
                DropReason::StaleView { view, finalized } if view < finalized => self.help(from),
                DropReason::OldEpoch { .. } => self.help_base(from),
                DropReason::WrongEpoch(epoch) if epoch > self.config.epoch => {
                    // Peers are in a later epoch: we missed the boundary
                    // block's finalization; block-sync to it.
                    self.out.push(Output::Sync {
                        height: self.committed_height() + 1,
                    });
                }
                _ => {}
            }
            self.dropped(Some(from), reason);
        }
    }

    /// A straggler of the previous epoch: send it the finalization of our
    /// base (its epoch's boundary block), once per view of ours.
    fn help_base(&mut self, peer: u16) {
        let view = self.view;
        if peer == self.me() || self.helped_base.get(&peer).is_some_and(|v| *v >= view) {
            return;
        }
        if let Some(certificate) = &self.base {
            self.helped_base.insert(peer, view);
            self.out.push(Output::Send {
                to: peer,
                message: Message::Certificate(certificate.clone()),
            });
        }
    }

    /// The epoch check of every vote and certificate.
    pub(crate) fn check_epoch(&self, epoch: u64) -> Result<(), DropReason> {
        let current = self.config.epoch;
        match epoch.cmp(&current) {
            std::cmp::Ordering::Equal => Ok(()),
            std::cmp::Ordering::Less => Err(DropReason::OldEpoch { epoch, current }),
            std::cmp::Ordering::Greater => Err(DropReason::WrongEpoch(epoch)),
        }
    }

    /// The actor learnt the next epoch. Refused (and the actor's bug is
    /// logged) if it does not follow ours, comes after we hold a block at
    /// its first height, or names us wrongly.
    fn on_reconfigure(&mut self, next: crate::Reconfiguration) {
        let refuse = |reason| DropReason::Reconfiguration(reason);
        let held_above = self.headers.values().any(|h| h.height >= next.from_height);
        let reason = if next.epoch != self.config.epoch + 1 {
            Some("not the next epoch")
        } else if next.from_height <= self.committed_height() || held_above {
            Some("its first height is already taken")
        } else if next.validators.is_empty() || next.validators.len() > limits::VALIDATORS_MAX {
            Some("validator count out of range")
        } else if match next.validators.get(usize::from(next.index)) {
            Some(key) => *key != next.key.public_key(),
            None => next.voting,
        } {
            Some("our index and key disagree with the set")
        } else {
            let mut sorted = next.validators.clone();
            sorted.sort();
            sorted.dedup();
            (sorted.len() != next.validators.len()).then_some("a validator key repeats")
        };
        match reason {
            Some(reason) => self.dropped(None, refuse(reason)),
            None => self.next = Some(next),
        }
    }

    /// Switches to the next epoch once its boundary block is committed
    /// (at the end of a step, so no step mixes epochs).
    fn maybe_switch(&mut self) {
        let due = self
            .next
            .as_ref()
            .is_some_and(|next| self.committed_height() + 1 == next.from_height);
        if !due {
            return;
        }
        let committed = self.committed_hash();
        let base = match &self.finalized.certificate {
            Some(c) if BlockHash(c.block) == committed && c.epoch == self.config.epoch => c.clone(),
            // Committed through a descendant's finality: impossible for a
            // boundary block (nothing above it in its epoch); wait.
            _ => return,
        };
        let Some(next) = self.next.take() else { return };
        self.config.epoch = next.epoch;
        self.config.validators = next.validators;
        self.config.index = next.index;
        self.config.key = next.key;
        self.config.voting = next.voting;
        self.config.assert();
        self.set = self.config.validator_set();
        self.quorum = self.set.quorum();
        self.view = 1;
        self.rounds.clear();
        self.finalized = Finalized {
            view: 0,
            block: committed,
            certificate: Some(base.clone()),
        };
        self.base = Some(base);
        let height = self.committed_height();
        self.blocks.retain(|b| b.header.height > height);
        self.headers.retain(|_, h| h.height > height);
        self.wanted.clear();
        self.streak = 0;
        self.suspects = Suspects::default();
        self.entry = None;
        self.active = false;
        self.payload = None;
        self.helped.clear();
        self.helped_base.clear();
        self.catch_up_armed = false;
        self.evidence_seen = Default::default();
        self.start_view();
        self.try_propose(false);
    }

    /// A peer still talks about finalized views: send it our latest
    /// finalization, once per finalized view, so it can catch up.
    fn help(&mut self, peer: u16) {
        let view = self.finalized.view;
        if peer == self.me() || self.helped.get(&peer).is_some_and(|v| *v >= view) {
            return;
        }
        if let Some(certificate) = &self.finalized.certificate {
            self.helped.insert(peer, view);
            self.out.push(Output::Send {
                to: peer,
                message: Message::Certificate(certificate.clone()),
            });
        }
    }

    /// The certificate that justifies being in the current view: the one we
    /// entered by or, after a restart, any we hold for the view before.
    fn entry_certificate(&self) -> Option<QuorumCertificate> {
        if let Some(entry) = &self.entry {
            return Some(entry.clone());
        }
        let previous = self.view - 1;
        if previous == self.finalized.view {
            return self.finalized.certificate.clone();
        }
        let round = self.rounds.get(&previous)?;
        round
            .nullification
            .as_ref()
            .or(round.notarization.as_ref())
            .or(round.finalization.as_ref())
            .cloned()
    }

    // ---- votes ----

    /// Shape and window of a vote, before any signature check.
    pub(crate) fn check_vote(&self, vote: &Vote) -> Result<(), DropReason> {
        if usize::from(vote.signer) >= self.set.len() {
            return Err(DropReason::UnknownSigner(vote.signer));
        }
        self.check_epoch(vote.epoch)?;
        if (vote.kind == VoteKind::Nullify) != (vote.block == Digest::ZERO) {
            return Err(DropReason::Malformed("only nullify has no block"));
        }
        self.check_window(vote.view)
    }

    /// Votes and proposals are taken for views above the finalized one and
    /// at most `future_views_max` above the current one.
    pub(crate) fn check_window(&self, view: u64) -> Result<(), DropReason> {
        if view <= self.finalized.view {
            return Err(DropReason::StaleView {
                view,
                finalized: self.finalized.view,
            });
        }
        let limit = self.view.saturating_add(self.config.future_views_max.get());
        if view > limit {
            return Err(DropReason::FutureView { view, limit });
        }
        Ok(())
    }

    pub(crate) fn verify_vote(&self, vote: &Vote) -> Result<(), DropReason> {
        let key = self
            .set
            .key(vote.signer)
            .ok_or(DropReason::UnknownSigner(vote.signer))?;
        let msg = vote.signing_bytes(&self.config.chain_id);
        let verdicts = self
            .config
            .verifier
            .verify(&[(*key, msg.as_slice(), vote.signature)]);
        match verdicts.as_slice() {
            [true] => Ok(()),
            [false] => Err(DropReason::BadSignature(vote.signer)),
            _ => panic!(
                "verifier returned {} verdicts for one signature",
                verdicts.len()
            ),
        }
    }

    fn on_vote(&mut self, vote: Vote) -> Result<(), DropReason> {
        self.check_vote(&vote)?;
        if self
            .rounds
            .get(&vote.view)
            .is_some_and(|r| r.votes.contains(&vote))
        {
            return Ok(());
        }
        self.verify_vote(&vote)?;
        self.record_vote(vote);
        self.certify(vote.view);
        if vote.kind == VoteKind::Nullify && vote.view == self.view {
            self.join_nullifiers();
        }
        Ok(())
    }

    /// Rule 5: the leader gave up on its own view, or f + 1 validators
    /// did — at least one of them honest, so the view is failing for
    /// someone. Joining them ends a view that validators entered at
    /// different times (half of them nullified it before the other half
    /// arrived, as after a healed split) in a round trip instead of a
    /// doubled timeout. Nullifying is never unsafe before `finalize`.
    /// Checked on each `nullify` of the current view and on entering a
    /// view, since those votes may have arrived before we did.
    fn join_nullifiers(&mut self) {
        let view = self.view;
        let leader = self.leader(view);
        let me = self.me();
        let f_plus_one = self.set.len() - self.quorum + 1;
        let Some(round) = self.rounds.get(&view) else {
            return;
        };
        let leader_gave_up = leader != me && round.votes.has_vote_of(VoteKind::Nullify, leader);
        if leader_gave_up || round.votes.signers(VoteKind::Nullify) >= f_plus_one {
            self.nullify_current();
        }
    }

    /// Counts a verified vote; reports evidence. Does not certify.
    pub(crate) fn record_vote(&mut self, vote: Vote) {
        if vote.kind == VoteKind::Notarize && vote.signer == self.leader(vote.view) {
            // Only a proposing leader signs `notarize` in its own view.
            self.suspects.proposed(vote.signer);
        }
        if let Insert::Conflict(Some(evidence)) = self.round_mut(vote.view).votes.insert(vote) {
            self.report_evidence(*evidence);
        }
    }

    /// Signs and journals an own vote, asserting the per-view rules. The
    /// caller broadcasts it (as a vote or inside a proposal), then certifies.
    pub(crate) fn sign(&mut self, kind: VoteKind, view: u64, block: Digest) -> Vote {
        assert!(
            view > self.finalized.view,
            "signing in finalized view {view}"
        );
        assert!(self.config.voting, "a non-voting validator signs nothing");
        let vote = Vote::sign_in(
            &self.config.key,
            self.config.index,
            &self.config.chain_id,
            self.config.epoch,
            kind,
            view,
            block,
        );
        let round = self.round_mut(view);
        round.own.record(vote);
        let inserted = round.votes.insert(vote);
        assert!(inserted == Insert::New, "own vote was already counted");
        self.out.push(Output::Journal(vote));
        vote
    }

    fn sign_and_broadcast(&mut self, kind: VoteKind, view: u64, block: Digest) {
        if !self.config.voting {
            return;
        }
        let vote = self.sign(kind, view, block);
        self.out.push(Output::Broadcast(Message::Vote(vote)));
        self.certify(view);
    }

    /// Turns every new quorum of `view` into a certificate and acts on it.
    pub(crate) fn certify(&mut self, view: u64) {
        if view <= self.finalized.view {
            return;
        }
        let Some(round) = self.rounds.get(&view) else {
            return;
        };
        let made: Vec<QuorumCertificate> =
            [VoteKind::Notarize, VoteKind::Nullify, VoteKind::Finalize]
                .into_iter()
                .filter(|kind| round.certificate(*kind).is_none())
                .filter_map(|kind| {
                    round.votes.quorum(kind, self.quorum).map(|block| {
                        round
                            .votes
                            .certificate(kind, self.config.epoch, view, block)
                    })
                })
                .collect();
        for certificate in made {
            assert!(certificate.signatures.len() >= self.quorum);
            self.on_quorum_certificate(certificate, true);
        }
    }

    // ---- certificates ----

    fn on_certificate(&mut self, certificate: QuorumCertificate) -> Result<(), DropReason> {
        if self.base.as_ref() == Some(&certificate) {
            // A peer of our epoch showing the base we share.
            return Ok(());
        }
        self.check_epoch(certificate.epoch)?;
        if certificate.view <= self.finalized.view {
            return Err(DropReason::StaleView {
                view: certificate.view,
                finalized: self.finalized.view,
            });
        }
        self.absorb_certificate(certificate)
    }

    /// Verifies a certificate from a peer (unless we hold it already), counts
    /// its votes and acts on it. Certificates at or below the finalized view
    /// teach nothing and are skipped.
    pub(crate) fn absorb_certificate(
        &mut self,
        certificate: QuorumCertificate,
    ) -> Result<(), DropReason> {
        self.check_epoch(certificate.epoch)?;
        if certificate.view <= self.finalized.view {
            return Ok(());
        }
        if (certificate.kind == VoteKind::Nullify) != (certificate.block == Digest::ZERO) {
            return Err(DropReason::Malformed("only a nullification has no block"));
        }
        let known = self
            .rounds
            .get(&certificate.view)
            .and_then(|r| r.certificate(certificate.kind))
            .is_some_and(|c| c.block == certificate.block);
        if known {
            return Ok(());
        }
        self.verify_certificate(&certificate)?;
        let view = certificate.view;
        for vote in certificate.votes() {
            self.record_vote(vote);
        }
        self.on_quorum_certificate(certificate, false);
        self.certify(view);
        Ok(())
    }

    /// Shape, then the signatures we have not verified before (as votes).
    fn verify_certificate(&self, certificate: &QuorumCertificate) -> Result<(), DropReason> {
        certificate
            .check_shape(self.set.len(), self.quorum)
            .map_err(DropReason::Certificate)?;
        let QuorumCertificate {
            kind,
            epoch,
            view,
            block,
            ..
        } = *certificate;
        let msg = vote::signing_bytes(&self.config.chain_id, kind, epoch, view, &block);
        let tracker = self.rounds.get(&view).map(|r| &r.votes);
        let mut signers = Vec::new();
        let mut items = Vec::new();
        for s in &certificate.signatures {
            if tracker.is_some_and(|t| t.has_signature(kind, s.signer, &block, &s.signature)) {
                continue;
            }
            let key = self
                .set
                .key(s.signer)
                .ok_or(DropReason::UnknownSigner(s.signer))?;
            signers.push(s.signer);
            items.push((*key, msg.as_slice(), s.signature));
        }
        let verdicts = self.config.verifier.verify(&items);
        assert!(
            verdicts.len() == items.len(),
            "verifier returned {} verdicts for {}",
            verdicts.len(),
            items.len()
        );
        match signers.iter().zip(verdicts).find(|(_, ok)| !ok) {
            Some((signer, _)) => Err(DropReason::BadSignature(*signer)),
            None => Ok(()),
        }
    }

    /// `local`: we assembled it from votes (so we broadcast it). A received
    /// one is forwarded only if it moved us forward, for stragglers.
    fn on_quorum_certificate(&mut self, certificate: QuorumCertificate, local: bool) {
        match certificate.kind {
            VoteKind::Notarize => self.on_notarization(certificate, local),
            VoteKind::Nullify => self.on_nullification(certificate, local),
            VoteKind::Finalize => self.on_finalization(certificate, local),
        }
    }

    fn on_notarization(&mut self, certificate: QuorumCertificate, local: bool) {
        let view = certificate.view;
        if view <= self.finalized.view || self.round_mut(view).notarization.is_some() {
            return;
        }
        self.round_mut(view).notarization = Some(certificate.clone());
        // Honest validators notarize only the leader's proposal.
        let leader = self.leader(view);
        self.suspects.proposed(leader);
        self.out
            .push(Output::Persist(Record::Certificate(certificate.clone())));
        let advances = view >= self.view;
        if local || advances {
            self.out
                .push(Output::Broadcast(Message::Certificate(certificate.clone())));
        }
        let block = certificate.block;
        if advances {
            self.enter(view + 1, Entry::Notarized, certificate);
        }
        // Rule 4: finalize unless we nullified this view.
        if self.round_mut(view).own.may_finalize() {
            self.sign_and_broadcast(VoteKind::Finalize, view, block);
        }
        self.try_propose(false);
    }

    fn on_nullification(&mut self, certificate: QuorumCertificate, local: bool) {
        let view = certificate.view;
        if view <= self.finalized.view || self.round_mut(view).nullification.is_some() {
            return;
        }
        self.round_mut(view).nullification = Some(certificate.clone());
        self.out
            .push(Output::Persist(Record::Certificate(certificate.clone())));
        let advances = view >= self.view;
        if local || advances {
            self.out
                .push(Output::Broadcast(Message::Certificate(certificate.clone())));
        }
        if advances {
            self.enter(view + 1, Entry::Nullified, certificate);
        }
        self.try_propose(false);
    }

    pub(crate) fn on_finalization(&mut self, certificate: QuorumCertificate, local: bool) {
        let view = certificate.view;
        if view <= self.finalized.view {
            return;
        }
        self.round_mut(view).finalization = Some(certificate.clone());
        self.out
            .push(Output::Persist(Record::Certificate(certificate.clone())));
        let advances = view >= self.view;
        if local || advances {
            self.out
                .push(Output::Broadcast(Message::Certificate(certificate.clone())));
        }
        self.finalized = Finalized {
            view,
            block: BlockHash(certificate.block),
            certificate: Some(certificate.clone()),
        };
        self.streak = 0;
        if advances {
            self.enter(view + 1, Entry::Finalized, certificate);
        }
        self.rounds = self.rounds.split_off(&(view + 1));
        self.try_commit();
        self.try_propose(false);
    }

    // ---- views and timers ----

    /// Moves to `view` (rule 1).
    fn enter(&mut self, view: u64, entry: Entry, certificate: QuorumCertificate) {
        assert!(
            view > self.view,
            "entering view {view} from view {}",
            self.view
        );
        assert!(
            certificate.view + 1 == view,
            "entry certificate is not for the previous view"
        );
        self.judge_leader(self.view);
        self.view = view;
        match entry {
            Entry::Nullified => self.streak = self.streak.saturating_add(1),
            Entry::Finalized => self.streak = 0,
            Entry::Notarized => {}
        }
        self.entry = Some(certificate);
        self.payload = None;
        self.active = false;
        self.start_view();
    }

    /// We leave `view`, the view we were in: suspect its leader if it
    /// showed no sign of proposing (however we leave: by its nullification
    /// or by jumping on a later certificate). Views we jump over judge
    /// nobody, so a straggler catching up suspects at most one leader.
    fn judge_leader(&mut self, view: u64) {
        let leader = self.leader(view);
        if leader == self.me() {
            return;
        }
        let proposed = self.rounds.get(&view).is_some_and(|round| {
            round.proposal.is_some()
                || round.notarization.is_some()
                || round.finalization.is_some()
                || round.votes.has_vote_of(VoteKind::Notarize, leader)
        });
        if !proposed {
            self.suspects.missed_turn(leader);
        }
    }

    /// Starts the current view: active at once if there is work, a
    /// proposal or an own vote in it (we were active in it before a
    /// restart); otherwise idle until the heartbeat or until something
    /// makes it active ([`Engine::activate`]).
    fn start_view(&mut self) {
        let view = self.view;
        let round = self.rounds.entry(view).or_insert_with(Round::new);
        let busy = round.proposal.is_some() || round.own.all().next().is_some();
        if self.pending || busy {
            self.activate();
        } else if !self.active {
            self.out.push(Output::SetTimer {
                view,
                timer: TimerKind::Heartbeat,
                after_ms: self.config.heartbeat_ms.get(),
            });
            if self.unfinalized() {
                self.out.push(Output::SetTimer {
                    view,
                    timer: TimerKind::Finality,
                    after_ms: self.config.view_timeout_ms(self.streak),
                });
            }
        }
        self.join_nullifiers();
    }

    /// True while some notarized block above the finalized view is not
    /// final (its finalization is missing so far).
    fn unfinalized(&self) -> bool {
        self.rounds
            .range(self.finalized.view + 1..)
            .any(|(_, round)| round.notarization.is_some())
    }

    /// Makes the current view active, once: its leader and view timers
    /// start now, we ask for a payload if we lead it, and an early
    /// proposal goes to verification.
    pub(crate) fn activate(&mut self) {
        if self.active {
            return;
        }
        self.active = true;
        let view = self.view;
        let me = self.me();
        let leader = self.leader(view);
        let leader_ms = if leader != me && self.suspects.contains(leader) {
            self.config.suspect_timeout_ms(self.streak)
        } else {
            self.config.leader_timeout_ms(self.streak)
        };
        let view_ms = self.config.view_timeout_ms(self.streak);
        self.out.push(Output::SetTimer {
            view,
            timer: TimerKind::Leader,
            after_ms: leader_ms,
        });
        self.out.push(Output::SetTimer {
            view,
            timer: TimerKind::Notarization,
            after_ms: view_ms,
        });
        let round = self.rounds.entry(view).or_insert_with(Round::new);
        if !round.own.may_notarize() {
            return;
        }
        if leader == me {
            if self.config.voting {
                self.out.push(Output::Build { view });
            }
            return;
        }
        if let Some(hash) = round.proposal
            && !round.verifying
            && let Some((block, ids)) = self.blocks.get_with_ids(&hash)
        {
            round.verifying = true;
            self.out.push(Output::Verify {
                view,
                block: block.clone(),
                ids: ids.to_vec(),
            });
        }
    }

    pub(crate) fn nullify_current(&mut self) {
        let view = self.view;
        if !self.config.voting || !self.round_mut(view).own.may_nullify() {
            return;
        }
        let vote = self.sign(VoteKind::Nullify, view, Digest::ZERO);
        self.out.push(Output::Broadcast(Message::Vote(vote)));
        let after_ms = self.config.view_timeout_ms(self.streak);
        self.out.push(Output::SetTimer {
            view,
            timer: TimerKind::Retry,
            after_ms,
        });
        self.certify(view);
    }

    fn on_timer(&mut self, view: u64, timer: TimerKind) {
        self.retry_fetches();
        if timer == TimerKind::Retry {
            self.catch_up_armed = false;
        }
        if view != self.view {
            return;
        }
        match timer {
            TimerKind::Leader => {
                let round = self.round_mut(view);
                if round.proposal.is_none() && round.own.notarize.is_none() {
                    self.nullify_current();
                }
            }
            TimerKind::Notarization => self.nullify_current(),
            TimerKind::Heartbeat => self.activate(),
            TimerKind::Finality => {
                if self.unfinalized() {
                    self.activate();
                }
            }
            TimerKind::Retry => {
                let stuck = self.stuck_messages();
                if stuck.is_empty() && !self.active {
                    self.try_commit();
                } else if !stuck.is_empty() {
                    self.out.extend(stuck.into_iter().map(Output::Broadcast));
                    let after_ms = self.config.view_timeout_ms(self.streak);
                    self.out.push(Output::SetTimer {
                        view,
                        timer: TimerKind::Retry,
                        after_ms,
                    });
                }
            }
        }
        if self.view == view {
            self.try_propose(true);
        }
    }

    /// What a validator stuck in its view (it nullified it) repeats: its
    /// `nullify`, the certificate that let it enter the view, and the latest
    /// finalization for peers stuck further behind. Empty when not stuck.
    fn stuck_messages(&mut self) -> Vec<Message> {
        let view = self.view;
        let Some(vote) = self.round_mut(view).own.nullify else {
            return Vec::new();
        };
        let mut messages = vec![Message::Vote(vote)];
        let entry = self.entry_certificate();
        if let Some(certificate) = &entry {
            messages.push(Message::Certificate(certificate.clone()));
        }
        if let Some(finalization) = &self.finalized.certificate
            && entry.as_ref() != Some(finalization)
        {
            messages.push(Message::Certificate(finalization.clone()));
        }
        messages
    }

    /// A (re)connected peer is shown our latest finalization, and a
    /// validator of our epoch also gets what our next retry would send it
    /// ([`Input::PeerConnected`]; timers are untouched: the retry still
    /// fires for everyone else). Both ends of a connection do this, so the
    /// one that is behind learns it at once and catches up (a peer further
    /// on answers a stale finalization with its own, or with its epoch's
    /// base). Nothing else would tell it: an idle chain broadcasts nothing
    /// until its heartbeat, a validator in an idle view never nullifies,
    /// and a node that follows without voting sends nothing a validator
    /// could answer. That covers a validator restarted behind on an idle
    /// chain (a re-keyed one that restarted with its new key), one just
    /// added by vote, and one removed that follows.
    fn on_peer_connected(&mut self, peer: u16) {
        if peer == self.config.index {
            return;
        }
        let members =
            usize::from(peer) < self.set.len() && usize::from(self.config.index) < self.set.len();
        let mut messages = if members {
            self.stuck_messages()
        } else {
            Vec::new()
        };
        if let Some(finalization) = &self.finalized.certificate {
            self.helped.insert(peer, self.finalized.view);
            let certificate = Message::Certificate(finalization.clone());
            if !messages.contains(&certificate) {
                messages.push(certificate);
            }
        }
        self.out.extend(
            messages
                .into_iter()
                .map(|message| Output::Send { to: peer, message }),
        );
        if self.finalized.block != self.committed_hash() {
            // We lag our own finalization, and what we asked for may have
            // gone out before any connection was up (a restarted node's
            // fetch and sync find none): block-sync, now that there is one.
            self.out.push(Output::Sync {
                height: self.committed_height() + 1,
            });
        }
    }

    fn on_verified(&mut self, view: u64, block: BlockHash, valid: bool) {
        let current = self.view;
        let Some(round) = self.rounds.get_mut(&view) else {
            return;
        };
        if round.proposal != Some(block) || !round.verifying {
            return;
        }
        round.verifying = false;
        if view != current {
            return;
        }
        if !valid {
            return self.nullify_current();
        }
        if round.own.may_notarize() {
            // The body is durable before the vote that makes it notarizable.
            if let Some(body) = self.blocks.get(&block) {
                self.out.push(Output::Persist(Record::Block(body.clone())));
            }
            self.sign_and_broadcast(VoteKind::Notarize, view, block.0);
        }
    }
}
