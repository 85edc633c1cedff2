//! Engine scenarios as table-driven steps (after malachite's `TestStep`):
//! each step feeds one input to the engine under test and names the outputs
//! it must produce (in order, as a subsequence), the outputs it must not
//! produce, and the view it must be in afterwards. The other validators are
//! played by the test, which signs their votes with their keys.

use lotline_consensus::{
    Config, DropReason, Engine, Evidence, EvidenceError, EvidenceKind, Input, Message, Output,
    Proposal, QuorumCertificate, Reconfiguration, Record, Request, TimerKind,
};
use lotline_core::attestation::{AttestationId, Envelope};
use lotline_core::block::{Block, BlockError, BlockHash, Header};
use lotline_core::certificate::{Finality, Signed};
use lotline_core::crypto::SigningKey;
use lotline_core::evidence;
use lotline_core::hash::Digest;
use lotline_core::limits;
use lotline_core::validators::ValidatorSet;
use lotline_core::vote::{Vote, VoteKind};

use VoteKind::{Finalize, Notarize, Nullify};

const CHAIN: Digest = Digest([0x11; 32]);

struct Fixture {
    keys: Vec<SigningKey>,
    set: ValidatorSet,
    engine: Engine,
    /// Every output so far, for the final checks of a scenario.
    log: Vec<Output>,
}

fn keys(n: usize) -> Vec<SigningKey> {
    (0..n)
        .map(|i| SigningKey::from_seed(&[i as u8 + 1; 32]))
        .collect()
}

fn config(keys: &[SigningKey], me: u16) -> Config {
    let validators = keys.iter().map(SigningKey::public_key).collect();
    Config::new(CHAIN, validators, me, keys[usize::from(me)].clone())
}

impl Fixture {
    fn new(n: usize, me: u16) -> Fixture {
        let keys = keys(n);
        let engine = Engine::new(config(&keys, me));
        let set = ValidatorSet::new(CHAIN, keys.iter().map(SigningKey::public_key).collect());
        let mut fixture = Fixture {
            keys,
            set,
            engine,
            log: Vec::new(),
        };
        let outputs = fixture.engine.start();
        fixture.log.extend(outputs);
        fixture
    }

    /// An engine told before it starts that its actor has no work: the
    /// first view starts idle ("Idle views" in the crate documentation).
    fn idle(n: usize, me: u16) -> Fixture {
        let keys = keys(n);
        let mut engine = Engine::new(config(&keys, me));
        let set = ValidatorSet::new(CHAIN, keys.iter().map(SigningKey::public_key).collect());
        let mut log = engine.handle(Input::Work { pending: false });
        assert!(log.is_empty(), "going idle has no outputs: {log:?}");
        log.extend(engine.start());
        Fixture {
            keys,
            set,
            engine,
            log,
        }
    }

    fn n(&self) -> usize {
        self.keys.len()
    }

    /// The parent and attestation ids of the first proposal we broadcast.
    fn proposed(&self) -> (BlockHash, Vec<AttestationId>) {
        let proposal = self
            .log
            .iter()
            .find_map(|o| match o {
                Output::Broadcast(Message::Proposal(p)) => Some(p),
                _ => None,
            })
            .expect("a proposal was broadcast");
        let ids = proposal
            .block
            .attestations
            .iter()
            .map(Envelope::id)
            .collect();
        (proposal.block.header.parent, ids)
    }

    fn leader(&self, view: u64) -> u16 {
        (view % self.n() as u64) as u16
    }

    fn signed(&self, signer: u16, kind: VoteKind, view: u64, block: Digest) -> Vote {
        Vote::sign(
            &self.keys[usize::from(signer)],
            signer,
            &CHAIN,
            kind,
            view,
            block,
        )
    }

    fn vote(&self, signer: u16, kind: VoteKind, view: u64, block: &Block) -> Input {
        let digest = if kind == Nullify {
            Digest::ZERO
        } else {
            block.hash().0
        };
        Input::Message {
            from: signer,
            message: Message::Vote(self.signed(signer, kind, view, digest)),
        }
    }

    fn nullify(&self, signer: u16, view: u64) -> Input {
        Input::Message {
            from: signer,
            message: Message::Vote(self.signed(signer, Nullify, view, Digest::ZERO)),
        }
    }

    fn certificate(
        &self,
        kind: VoteKind,
        view: u64,
        block: Option<&Block>,
        signers: &[u16],
    ) -> QuorumCertificate {
        let digest = block.map_or(Digest::ZERO, |b| b.hash().0);
        let signatures = signers
            .iter()
            .map(|&s| Signed {
                signer: s,
                signature: self.signed(s, kind, view, digest).signature,
            })
            .collect();
        QuorumCertificate {
            kind,
            epoch: 0,
            view,
            block: digest,
            signatures,
        }
    }

    /// A block of the leader of `view` on `parent` (genesis if `None`).
    fn block(&self, view: u64, parent: Option<&Block>, salt: u8) -> Block {
        let attestation =
            Envelope::sign(vec![salt, view as u8], &SigningKey::from_seed(&[0xAA; 32]));
        let (height, parent_hash) = match parent {
            Some(p) => (p.header.height + 1, p.hash()),
            None => (1, Header::genesis_parent(&CHAIN)),
        };
        Block::new(
            CHAIN,
            height,
            view,
            parent_hash,
            1_000 + view,
            self.leader(view),
            vec![attestation],
        )
    }

    fn proposal(
        &self,
        block: &Block,
        parent: Option<&Block>,
        parent_certificate: Option<QuorumCertificate>,
        nullifications: Vec<QuorumCertificate>,
    ) -> Input {
        let leader = block.header.proposer;
        let notarize = self.signed(leader, Notarize, block.header.view, block.hash().0);
        let proposal = Proposal {
            block: block.clone(),
            notarize,
            parent: parent.map(|p| p.header.clone()),
            parent_certificate,
            nullifications,
        };
        Input::Message {
            from: leader,
            message: Message::Proposal(Box::new(proposal)),
        }
    }

    /// Validator `signer` notarizes two different blocks in `view`.
    fn equivocation(&self, signer: u16, view: u64) -> Evidence {
        Evidence {
            first: self.signed(signer, Notarize, view, Digest([1; 32])),
            second: self.signed(signer, Notarize, view, Digest([2; 32])),
        }
    }

    fn gossip(&self, from: u16, evidence: Evidence) -> Input {
        Input::Message {
            from,
            message: Message::Evidence(Box::new(evidence)),
        }
    }

    fn verified(&self, block: &Block) -> Input {
        Input::Verified {
            view: block.header.view,
            block: block.hash(),
            valid: true,
        }
    }

    /// Runs the steps; panics with the step's description on a mismatch.
    fn run(&mut self, steps: Vec<Step>) {
        for step in steps {
            let outputs = self.engine.handle(step.input);
            let mut cursor = 0;
            for expected in &step.expect {
                match outputs[cursor..].iter().position(|o| expected.matches(o)) {
                    Some(offset) => cursor += offset + 1,
                    None => panic!(
                        "step {:?}: expected {expected:?} (in order) in {outputs:#?}",
                        step.desc
                    ),
                }
            }
            for forbidden in &step.forbid {
                assert!(
                    !outputs.iter().any(|o| forbidden.matches(o)),
                    "step {:?}: forbidden {forbidden:?} in {outputs:#?}",
                    step.desc
                );
            }
            assert_journal_before_broadcast(&outputs, &step.desc);
            if let Some(view) = step.view {
                assert_eq!(self.engine.view(), view, "step {:?}: view", step.desc);
            }
            self.log.extend(outputs);
        }
    }

    fn commits(&self) -> Vec<(Block, Finality)> {
        self.log
            .iter()
            .filter_map(|o| match o {
                Output::Commit {
                    block,
                    ids,
                    finality,
                } => {
                    assert_eq!(*ids, block.ids(), "the engine's ids are the bodies' hashes");
                    Some((block.clone(), finality.clone()))
                }
                _ => None,
            })
            .collect()
    }

    fn journal(&self) -> Vec<Vote> {
        self.log
            .iter()
            .filter_map(|o| {
                if let Output::Journal(v) = o {
                    Some(*v)
                } else {
                    None
                }
            })
            .collect()
    }

    fn records(&self) -> Vec<Record> {
        self.log
            .iter()
            .filter_map(|o| {
                if let Output::Persist(r) = o {
                    Some(r.clone())
                } else {
                    None
                }
            })
            .collect()
    }
}

/// Every broadcast own vote was journaled earlier in the same step (or
/// before: restarts rebroadcast journaled votes).
fn assert_journal_before_broadcast(outputs: &[Output], desc: &str) {
    let mut journaled = Vec::new();
    for output in outputs {
        match output {
            Output::Journal(vote) => journaled.push(*vote),
            Output::Broadcast(Message::Proposal(p)) => {
                assert!(
                    journaled.contains(&p.notarize),
                    "step {desc:?}: proposal before its journal record"
                );
            }
            _ => {}
        }
    }
}

/// One expected (or forbidden) output.
#[derive(Debug, Clone)]
enum Expect {
    Journal(VoteKind, u64),
    Vote(VoteKind, u64),
    Certificate(VoteKind, u64),
    Proposal(u64),
    Timer(u64, TimerKind),
    Build(u64),
    Verify(u64),
    Commit(u64),
    Evidence(EvidenceKind, u16),
    /// A broadcast of evidence against this validator.
    GossipEvidence(u16),
    Dropped(fn(&DropReason) -> bool),
    Request,
    /// Block sync from this height.
    Sync(u64),
    Blocks,
    AnyJournal,
    PersistBlock(u64),
    PersistCertificate(VoteKind, u64),
    SendCertificate(u16, VoteKind, u64),
    SendVote(u16, VoteKind, u64),
}

impl Expect {
    fn matches(&self, output: &Output) -> bool {
        match (self, output) {
            (Expect::Journal(kind, view), Output::Journal(v)) => v.kind == *kind && v.view == *view,
            (Expect::AnyJournal, Output::Journal(_)) => true,
            (Expect::Vote(kind, view), Output::Broadcast(Message::Vote(v))) => {
                v.kind == *kind && v.view == *view
            }
            (Expect::Certificate(kind, view), Output::Broadcast(Message::Certificate(c))) => {
                c.kind == *kind && c.view == *view
            }
            (Expect::Proposal(view), Output::Broadcast(Message::Proposal(p))) => {
                p.notarize.view == *view
            }
            (
                Expect::Timer(view, timer),
                Output::SetTimer {
                    view: v, timer: t, ..
                },
            ) => v == view && t == timer,
            (Expect::Build(view), Output::Build { view: v }) => v == view,
            (Expect::Verify(view), Output::Verify { view: v, .. }) => v == view,
            (Expect::Commit(height), Output::Commit { block, .. }) => {
                block.header.height == *height
            }
            (Expect::Evidence(kind, signer), Output::Evidence(e)) => {
                e.kind() == Some(*kind) && e.signer() == *signer
            }
            (Expect::GossipEvidence(signer), Output::Broadcast(Message::Evidence(e))) => {
                e.signer() == *signer
            }
            (Expect::Dropped(predicate), Output::Dropped { reason, .. }) => predicate(reason),
            (
                Expect::Request,
                Output::Send {
                    message: Message::Request(_),
                    ..
                },
            )
            | (Expect::Request, Output::Broadcast(Message::Request(_))) => true,
            (Expect::Sync(from), Output::Sync { height }) => height == from,
            (
                Expect::Blocks,
                Output::Send {
                    message: Message::Blocks(_),
                    ..
                },
            ) => true,
            (Expect::PersistBlock(height), Output::Persist(Record::Block(b))) => {
                b.header.height == *height
            }
            (Expect::PersistCertificate(kind, view), Output::Persist(Record::Certificate(c))) => {
                c.kind == *kind && c.view == *view
            }
            (
                Expect::SendCertificate(to, kind, view),
                Output::Send {
                    to: t,
                    message: Message::Certificate(c),
                },
            ) => t == to && c.kind == *kind && c.view == *view,
            (
                Expect::SendVote(to, kind, view),
                Output::Send {
                    to: t,
                    message: Message::Vote(v),
                },
            ) => t == to && v.kind == *kind && v.view == *view,
            _ => false,
        }
    }
}

struct Step {
    desc: String,
    input: Input,
    expect: Vec<Expect>,
    forbid: Vec<Expect>,
    view: Option<u64>,
}

fn step(desc: &str, input: Input, expect: Vec<Expect>, forbid: Vec<Expect>, view: u64) -> Step {
    Step {
        desc: desc.to_string(),
        input,
        expect,
        forbid,
        view: Some(view),
    }
}

// ---------------------------------------------------------------------------

#[test]
fn n4_happy_path_commits_with_a_verifying_certificate() {
    let mut fx = Fixture::new(4, 0);
    assert_eq!(fx.engine.view(), 1);
    let b1 = fx.block(1, None, 0);
    let steps = vec![
        step(
            "proposal of leader 1 is sent for verification",
            fx.proposal(&b1, None, None, vec![]),
            vec![Expect::Verify(1)],
            vec![Expect::AnyJournal],
            1,
        ),
        step(
            "valid payload: journal then broadcast notarize",
            fx.verified(&b1),
            vec![Expect::Journal(Notarize, 1), Expect::Vote(Notarize, 1)],
            vec![],
            1,
        ),
        step(
            "third notarize is a quorum: notarization, view 2, finalize",
            fx.vote(2, Notarize, 1, &b1),
            vec![
                Expect::Certificate(Notarize, 1),
                Expect::Timer(2, TimerKind::Leader),
                Expect::Journal(Finalize, 1),
                Expect::Vote(Finalize, 1),
            ],
            vec![Expect::Commit(1)],
            2,
        ),
        step(
            "two finalizes are not a quorum",
            fx.vote(1, Finalize, 1, &b1),
            vec![],
            vec![Expect::Commit(1)],
            2,
        ),
        step(
            "the third is: commit height 1",
            fx.vote(3, Finalize, 1, &b1),
            vec![Expect::Certificate(Finalize, 1), Expect::Commit(1)],
            vec![],
            2,
        ),
    ];
    fx.run(steps);
    let commits = fx.commits();
    assert_eq!(commits.len(), 1);
    let (block, finality) = &commits[0];
    assert_eq!(block, &b1);
    assert!(finality.descendants.is_empty());
    finality.certificate.verify(&fx.set, 1, &b1.hash()).unwrap();
    finality.verify(&fx.set, &block.header).unwrap();
    assert_eq!(fx.engine.finalized_view(), 1);
    assert_eq!(fx.engine.committed_height(), 1);
}

#[test]
fn n5_needs_four_votes_not_three() {
    let mut fx = Fixture::new(5, 0);
    let b1 = fx.block(1, None, 0);
    let steps = vec![
        step(
            "proposal",
            fx.proposal(&b1, None, None, vec![]),
            vec![Expect::Verify(1)],
            vec![],
            1,
        ),
        step(
            "own notarize",
            fx.verified(&b1),
            vec![Expect::Journal(Notarize, 1)],
            vec![],
            1,
        ),
        step(
            "3 of 5 (leader, us, 2) is no quorum",
            fx.vote(2, Notarize, 1, &b1),
            vec![],
            vec![Expect::Certificate(Notarize, 1)],
            1,
        ),
        step(
            "4 of 5 is",
            fx.vote(3, Notarize, 1, &b1),
            vec![
                Expect::Certificate(Notarize, 1),
                Expect::Journal(Finalize, 1),
            ],
            vec![],
            2,
        ),
        step(
            "finalize 2 of 5",
            fx.vote(1, Finalize, 1, &b1),
            vec![],
            vec![Expect::Commit(1)],
            2,
        ),
        step(
            "finalize 3 of 5",
            fx.vote(2, Finalize, 1, &b1),
            vec![],
            vec![Expect::Commit(1)],
            2,
        ),
        step(
            "finalize 4 of 5 commits",
            fx.vote(4, Finalize, 1, &b1),
            vec![Expect::Commit(1)],
            vec![],
            2,
        ),
    ];
    fx.run(steps);
    let (block, finality) = &fx.commits()[0];
    assert_eq!(finality.certificate.signatures.len(), 4);
    finality.verify(&fx.set, &block.header).unwrap();
}

#[test]
fn leader_timeout_nullifies_and_the_next_leader_skips_the_view() {
    let mut fx = Fixture::new(4, 0);
    let null1 = fx.certificate(Nullify, 1, None, &[0, 2, 3]);
    let b2 = fx.block(2, None, 0);
    let steps = vec![
        step(
            "leader timer: nullify",
            Input::Timer {
                view: 1,
                timer: TimerKind::Leader,
            },
            vec![
                Expect::Journal(Nullify, 1),
                Expect::Vote(Nullify, 1),
                Expect::Timer(1, TimerKind::Retry),
            ],
            vec![],
            1,
        ),
        step(
            "retry rebroadcasts the nullify",
            Input::Timer {
                view: 1,
                timer: TimerKind::Retry,
            },
            vec![Expect::Vote(Nullify, 1), Expect::Timer(1, TimerKind::Retry)],
            vec![Expect::AnyJournal],
            1,
        ),
        step("one more nullify", fx.nullify(2, 1), vec![], vec![], 1),
        step(
            "third nullify: nullification, view 2 with a longer timeout",
            fx.nullify(3, 1),
            vec![
                Expect::Certificate(Nullify, 1),
                Expect::Timer(2, TimerKind::Leader),
            ],
            vec![Expect::AnyJournal],
            2,
        ),
        step(
            "leader 2 builds on genesis, skipping view 1 with its nullification",
            fx.proposal(&b2, None, None, vec![null1]),
            vec![Expect::Verify(2)],
            vec![],
            2,
        ),
        step(
            "notarize in view 2",
            fx.verified(&b2),
            vec![Expect::Journal(Notarize, 2)],
            vec![],
            2,
        ),
        step(
            "stale timer of view 1 does nothing",
            Input::Timer {
                view: 1,
                timer: TimerKind::Notarization,
            },
            vec![],
            vec![Expect::AnyJournal],
            2,
        ),
    ];
    fx.run(steps);
    let timeouts: Vec<u64> = fx
        .log
        .iter()
        .filter_map(|o| match o {
            Output::SetTimer {
                timer: TimerKind::Leader,
                after_ms,
                ..
            } => Some(*after_ms),
            _ => None,
        })
        .collect();
    assert_eq!(
        timeouts,
        vec![500, 1000],
        "the leader timeout doubles after a nullified view"
    );
}

#[test]
fn a_skip_without_nullification_is_not_voted() {
    let mut fx = Fixture::new(4, 0);
    let b2 = fx.block(2, None, 0);
    let null1 = fx.certificate(Nullify, 1, None, &[1, 2, 3]);
    let mut forged = null1.clone();
    forged.signatures[0].signature.0[3] ^= 1;
    let steps = vec![
        step(
            "proposal for view 2 without the nullification of view 1",
            fx.proposal(&b2, None, None, vec![]),
            vec![Expect::Dropped(|r| {
                *r == DropReason::MissingNullification(1)
            })],
            vec![Expect::Verify(2), Expect::AnyJournal],
            1,
        ),
        step(
            "with a forged nullification",
            fx.proposal(&b2, None, None, vec![forged]),
            vec![Expect::Dropped(|r| *r == DropReason::BadSignature(1))],
            vec![Expect::Verify(2), Expect::AnyJournal],
            1,
        ),
        step(
            "with the real one: we enter view 2 and verify",
            fx.proposal(&b2, None, None, vec![null1]),
            vec![Expect::Certificate(Nullify, 1), Expect::Verify(2)],
            vec![Expect::AnyJournal],
            2,
        ),
    ];
    fx.run(steps);
}

#[test]
fn no_finalize_after_nullify() {
    let mut fx = Fixture::new(4, 0);
    let b1 = fx.block(1, None, 0);
    let notarization = fx.certificate(Notarize, 1, Some(&b1), &[1, 2, 3]);
    let steps = vec![
        step(
            "proposal",
            fx.proposal(&b1, None, None, vec![]),
            vec![Expect::Verify(1)],
            vec![],
            1,
        ),
        step(
            "notarize",
            fx.verified(&b1),
            vec![Expect::Journal(Notarize, 1)],
            vec![],
            1,
        ),
        step(
            "view timer: nullify after notarize is allowed",
            Input::Timer {
                view: 1,
                timer: TimerKind::Notarization,
            },
            vec![Expect::Journal(Nullify, 1)],
            vec![],
            1,
        ),
        step(
            "notarization arrives: view 2, but no finalize",
            Input::Message {
                from: 2,
                message: Message::Certificate(notarization),
            },
            vec![Expect::Timer(2, TimerKind::Leader)],
            vec![Expect::Journal(Finalize, 1), Expect::Vote(Finalize, 1)],
            2,
        ),
    ];
    fx.run(steps);
}

#[test]
fn never_a_second_notarize_and_equivocation_is_evidence() {
    let mut fx = Fixture::new(4, 0);
    let a = fx.block(1, None, 0);
    let b = fx.block(1, None, 1);
    assert_ne!(a.hash(), b.hash());
    let steps = vec![
        step(
            "proposal A",
            fx.proposal(&a, None, None, vec![]),
            vec![Expect::Verify(1)],
            vec![],
            1,
        ),
        step(
            "notarize A",
            fx.verified(&a),
            vec![Expect::Journal(Notarize, 1)],
            vec![],
            1,
        ),
        step(
            "leader also proposes B: evidence, nothing signed",
            fx.proposal(&b, None, None, vec![]),
            vec![Expect::Evidence(EvidenceKind::ConflictingNotarize, 1)],
            vec![Expect::Verify(1), Expect::AnyJournal],
            1,
        ),
        step(
            "a verdict for B is ignored",
            fx.verified(&b),
            vec![],
            vec![Expect::AnyJournal],
            1,
        ),
        step(
            "B again: evidence only once",
            fx.proposal(&b, None, None, vec![]),
            vec![],
            vec![
                Expect::Evidence(EvidenceKind::ConflictingNotarize, 1),
                Expect::AnyJournal,
            ],
            1,
        ),
    ];
    fx.run(steps);
    let notarizes: Vec<Vote> = fx
        .journal()
        .into_iter()
        .filter(|v| v.kind == Notarize)
        .collect();
    assert_eq!(notarizes.len(), 1);
    assert_eq!(notarizes[0].block, a.hash().0);
}

#[test]
fn conflicting_votes_become_self_verifying_evidence_once() {
    let mut fx = Fixture::new(4, 0);
    let a = fx.block(1, None, 0);
    let b = fx.block(1, None, 1);
    let steps = vec![
        step(
            "notarize A by 2",
            fx.vote(2, Notarize, 1, &a),
            vec![],
            vec![],
            1,
        ),
        step(
            "notarize B by 2",
            fx.vote(2, Notarize, 1, &b),
            vec![Expect::Evidence(EvidenceKind::ConflictingNotarize, 2)],
            vec![],
            1,
        ),
        step(
            "again",
            fx.vote(2, Notarize, 1, &b),
            vec![],
            vec![Expect::Evidence(EvidenceKind::ConflictingNotarize, 2)],
            1,
        ),
        step("nullify by 3", fx.nullify(3, 1), vec![], vec![], 1),
        step(
            "finalize by 3 in the same view",
            fx.vote(3, Finalize, 1, &a),
            vec![Expect::Evidence(EvidenceKind::NullifyFinalize, 3)],
            vec![],
            1,
        ),
        step(
            "finalize A by 1",
            fx.vote(1, Finalize, 1, &a),
            vec![],
            vec![],
            1,
        ),
        step(
            "finalize B by 1",
            fx.vote(1, Finalize, 1, &b),
            vec![Expect::Evidence(EvidenceKind::ConflictingFinalize, 1)],
            vec![],
            1,
        ),
    ];
    fx.run(steps);
    let evidence: Vec<Evidence> = fx
        .log
        .iter()
        .filter_map(|o| {
            if let Output::Evidence(e) = o {
                Some(e.clone())
            } else {
                None
            }
        })
        .collect();
    assert_eq!(evidence.len(), 3);
    for e in &evidence {
        assert_eq!(e.verify(&fx.set), Ok(e.key().unwrap()));
    }
}

#[test]
fn detected_evidence_is_broadcast_before_the_actor_keeps_it() {
    // Goal: a conflict the tracker finds leaves for every peer (gossip), and
    // the actor is told to keep it, in one step.
    let mut fx = Fixture::new(4, 0);
    let a = fx.block(1, None, 0);
    let b = fx.block(1, None, 1);
    let steps = vec![
        step(
            "notarize A by 2",
            fx.vote(2, Notarize, 1, &a),
            vec![],
            vec![],
            1,
        ),
        step(
            "notarize B by 2",
            fx.vote(2, Notarize, 1, &b),
            vec![
                Expect::GossipEvidence(2),
                Expect::Evidence(EvidenceKind::ConflictingNotarize, 2),
            ],
            vec![],
            1,
        ),
        step(
            "the same offence gossiped back by a peer is not reported again",
            fx.gossip(1, fx.equivocation(2, 1)),
            vec![],
            vec![
                Expect::GossipEvidence(2),
                Expect::Evidence(EvidenceKind::ConflictingNotarize, 2),
            ],
            1,
        ),
    ];
    fx.run(steps);
}

#[test]
fn gossiped_evidence_is_verified_kept_and_forwarded_once() {
    // Goal: evidence from a peer is checked against the validator set; valid
    // evidence is forwarded and kept once per offence, whatever its view;
    // anything else is dropped with a reason and never kept.
    let mut fx = Fixture::new(4, 0);
    let mut forged = fx.equivocation(3, 2);
    forged.second.signature.0[5] ^= 1;
    let mut no_conflict = fx.equivocation(3, 2);
    no_conflict.second = no_conflict.first;
    let mut two_signers = fx.equivocation(3, 2);
    two_signers.second = fx.signed(2, Notarize, 2, Digest([2; 32]));
    let mut outsider = fx.equivocation(3, 2);
    outsider.first.signer = 9;
    outsider.second.signer = 9;
    let steps = vec![
        step(
            "valid evidence against 2 from 1",
            fx.gossip(1, fx.equivocation(2, 1)),
            vec![
                Expect::GossipEvidence(2),
                Expect::Evidence(EvidenceKind::ConflictingNotarize, 2),
            ],
            vec![],
            1,
        ),
        step(
            "the same offence from 3",
            fx.gossip(3, fx.equivocation(2, 1)),
            vec![],
            vec![
                Expect::GossipEvidence(2),
                Expect::Evidence(EvidenceKind::ConflictingNotarize, 2),
            ],
            1,
        ),
        step(
            "evidence about a far view is still evidence",
            fx.gossip(1, fx.equivocation(2, 1_000_000)),
            vec![Expect::Evidence(EvidenceKind::ConflictingNotarize, 2)],
            vec![],
            1,
        ),
        step(
            "a forged signature",
            fx.gossip(1, forged),
            vec![Expect::Dropped(|r| {
                matches!(r, DropReason::BadSignature(3))
            })],
            vec![
                Expect::GossipEvidence(3),
                Expect::Evidence(EvidenceKind::ConflictingNotarize, 3),
            ],
            1,
        ),
        step(
            "votes that do not conflict",
            fx.gossip(1, no_conflict),
            vec![Expect::Dropped(|r| {
                matches!(r, DropReason::Evidence(EvidenceError::NoConflict))
            })],
            vec![Expect::GossipEvidence(3)],
            1,
        ),
        step(
            "votes of two validators",
            fx.gossip(1, two_signers),
            vec![Expect::Dropped(|r| {
                matches!(r, DropReason::Evidence(EvidenceError::Signers(3, 2)))
            })],
            vec![Expect::GossipEvidence(3)],
            1,
        ),
        step(
            "a signer outside the set",
            fx.gossip(1, outsider),
            vec![Expect::Dropped(|r| {
                matches!(r, DropReason::Evidence(EvidenceError::UnknownSigner(9)))
            })],
            vec![Expect::GossipEvidence(9)],
            1,
        ),
        step(
            "the genuine offence of 3 after the forgery is still taken",
            fx.gossip(2, fx.equivocation(3, 2)),
            vec![Expect::Evidence(EvidenceKind::ConflictingNotarize, 3)],
            vec![],
            1,
        ),
    ];
    fx.run(steps);
}

#[test]
fn a_leader_records_offered_evidence_under_its_header() {
    // Goal: the evidence the actor offers is in the proposed block, each
    // offence once and at most BLOCK_EVIDENCE_MAX, and the header commits
    // to it (so the certificate certifies it).
    let mut fx = Fixture::new(4, 1);
    let mut offered: Vec<Evidence> = (0..20).map(|v| fx.equivocation(2, 100 + v)).collect();
    offered.insert(1, fx.equivocation(2, 100));
    let outputs = fx.engine.handle(Input::Propose {
        attestations: vec![],
        evidence: offered,
        now_ms: 5,
    });
    let proposal = outputs
        .iter()
        .find_map(|o| match o {
            Output::Broadcast(Message::Proposal(p)) => Some(p.clone()),
            _ => None,
        })
        .expect("a proposal");
    let block = &proposal.block;
    assert_eq!(block.evidence.len(), limits::BLOCK_EVIDENCE_MAX);
    let views: Vec<u64> = block.evidence.iter().map(Evidence::view).collect();
    let expected: Vec<u64> = (100..100 + limits::BLOCK_EVIDENCE_MAX as u64).collect();
    assert_eq!(views, expected, "in offered order, the repeat left out");
    assert_eq!(block.header.evidence_root, evidence::root(&block.evidence));
    assert!(block.check_body(&CHAIN).is_ok());
}

#[test]
fn a_proposal_whose_evidence_the_header_does_not_commit_to_is_dropped() {
    // Goal: evidence added to, removed from or malformed in a body under a
    // signed header is caught by the body check before any vote.
    let mut fx = Fixture::new(4, 0);
    let recording = fx
        .block(1, None, 0)
        .with_evidence(vec![fx.equivocation(2, 1)]);
    let mut stripped = recording.clone();
    stripped.evidence.clear();
    let mut not_evidence = fx.block(1, None, 0);
    let vote = fx.signed(2, Notarize, 1, Digest([1; 32]));
    not_evidence = not_evidence.with_evidence(vec![Evidence {
        first: vote,
        second: vote,
    }]);
    let twice = fx
        .block(1, None, 0)
        .with_evidence(vec![fx.equivocation(2, 1), fx.equivocation(2, 1)]);
    let steps = vec![step(
        "evidence removed from a signed body",
        fx.proposal(&stripped, None, None, vec![]),
        vec![Expect::Dropped(|r| {
            matches!(r, DropReason::Block(BlockError::EvidenceRoot { .. }))
        })],
        vec![Expect::Verify(1)],
        1,
    )];
    fx.run(steps);
    for (desc, block, check) in [
        (
            "two votes that do not conflict",
            not_evidence,
            (|r: &DropReason| matches!(r, DropReason::Block(BlockError::NotEvidence { index: 0 })))
                as fn(&DropReason) -> bool,
        ),
        ("one offence twice", twice, |r: &DropReason| {
            matches!(
                r,
                DropReason::Block(BlockError::DuplicateEvidence { index: 1, .. })
            )
        }),
    ] {
        let mut fx = Fixture::new(4, 0);
        let input = fx.proposal(&block, None, None, vec![]);
        fx.run(vec![step(
            desc,
            input,
            vec![Expect::Dropped(check)],
            vec![Expect::Verify(1)],
            1,
        )]);
    }
    let mut fx = Fixture::new(4, 0);
    let input = fx.proposal(&recording, None, None, vec![]);
    fx.run(vec![step(
        "the committed evidence is asked to be verified with the payload",
        input,
        vec![Expect::Verify(1)],
        vec![],
        1,
    )]);
}

#[test]
fn far_future_stale_and_forged_messages_are_dropped() {
    let mut fx = Fixture::new(4, 0);
    let b1 = fx.block(1, None, 0);
    let mut forged = fx.signed(2, Notarize, 1, b1.hash().0);
    forged.signature.0[10] ^= 1;
    let other_chain = Vote::sign(
        &fx.keys[2],
        2,
        &Digest([0x22; 32]),
        Notarize,
        1,
        b1.hash().0,
    );
    let mut unknown = fx.signed(2, Notarize, 1, b1.hash().0);
    unknown.signer = 9;
    let mut wrong_epoch = fx.signed(2, Notarize, 1, b1.hash().0);
    wrong_epoch.epoch = 1;
    let mut bad_cert = fx.certificate(Finalize, 1, Some(&b1), &[1, 2, 3]);
    bad_cert.signatures[1].signature.0[0] ^= 1;
    let short_cert = fx.certificate(Finalize, 1, Some(&b1), &[1, 2]);
    let finalization = fx.certificate(Finalize, 1, Some(&b1), &[1, 2, 3]);
    let msg = |from: u16, message: Message| Input::Message { from, message };
    let steps = vec![
        step(
            "vote 17 views ahead",
            fx.nullify(2, 18),
            vec![Expect::Dropped(|r| {
                matches!(
                    r,
                    DropReason::FutureView {
                        view: 18,
                        limit: 17
                    }
                )
            })],
            vec![],
            1,
        ),
        step(
            "vote 16 views ahead is buffered",
            fx.nullify(2, 17),
            vec![],
            vec![Expect::Dropped(|_| true)],
            1,
        ),
        step(
            "bad signature",
            msg(2, Message::Vote(forged)),
            vec![Expect::Dropped(|r| *r == DropReason::BadSignature(2))],
            vec![],
            1,
        ),
        step(
            "other chain",
            msg(2, Message::Vote(other_chain)),
            vec![Expect::Dropped(|r| *r == DropReason::BadSignature(2))],
            vec![],
            1,
        ),
        step(
            "unknown signer",
            msg(2, Message::Vote(unknown)),
            vec![Expect::Dropped(|r| *r == DropReason::UnknownSigner(9))],
            vec![],
            1,
        ),
        step(
            "unknown sender",
            msg(7, Message::Vote(fx.signed(2, Nullify, 1, Digest::ZERO))),
            vec![Expect::Dropped(|r| *r == DropReason::UnknownPeer(7))],
            vec![],
            1,
        ),
        step(
            "wrong epoch",
            msg(2, Message::Vote(wrong_epoch)),
            vec![Expect::Dropped(|r| *r == DropReason::WrongEpoch(1))],
            vec![],
            1,
        ),
        step(
            "certificate with a bad signature",
            msg(3, Message::Certificate(bad_cert)),
            vec![Expect::Dropped(|r| *r == DropReason::BadSignature(2))],
            vec![Expect::Commit(1)],
            1,
        ),
        step(
            "certificate below quorum",
            msg(3, Message::Certificate(short_cert)),
            vec![Expect::Dropped(|r| matches!(r, DropReason::Certificate(_)))],
            vec![Expect::Commit(1)],
            1,
        ),
        step(
            "proposal by a non-leader",
            {
                let mut input = fx.proposal(&b1, None, None, vec![]);
                if let Input::Message {
                    message: Message::Proposal(p),
                    ..
                } = &mut input
                {
                    p.notarize = fx.signed(2, Notarize, 1, b1.hash().0);
                }
                input
            },
            vec![Expect::Dropped(|r| {
                matches!(r, DropReason::NotLeader { view: 1, signer: 2 })
            })],
            vec![Expect::Verify(1)],
            1,
        ),
        step(
            "proposal with a body that does not match its root",
            {
                let mut input = fx.proposal(&b1, None, None, vec![]);
                if let Input::Message {
                    message: Message::Proposal(p),
                    ..
                } = &mut input
                {
                    p.block.attestations.clear();
                }
                input
            },
            vec![Expect::Dropped(|r| matches!(r, DropReason::Block(_)))],
            vec![Expect::Verify(1)],
            1,
        ),
        step(
            "a finalization jumps us to view 2 and asks for the block",
            msg(3, Message::Certificate(finalization)),
            vec![Expect::Timer(2, TimerKind::Leader), Expect::Request],
            vec![],
            2,
        ),
        step(
            "stale vote of the finalized view",
            fx.vote(3, Notarize, 1, &b1),
            vec![Expect::Dropped(|r| {
                matches!(
                    r,
                    DropReason::StaleView {
                        view: 1,
                        finalized: 1
                    }
                )
            })],
            vec![],
            2,
        ),
        step(
            "the block arrives unasked: its hash is wanted",
            msg(1, Message::Blocks(vec![b1.clone()])),
            vec![Expect::Commit(1)],
            vec![Expect::Dropped(|_| true)],
            2,
        ),
        step(
            "an unrequested block",
            msg(1, Message::Blocks(vec![fx.block(2, Some(&b1), 0)])),
            vec![Expect::Dropped(|r| matches!(r, DropReason::Unrequested(_)))],
            vec![],
            2,
        ),
    ];
    fx.run(steps);
    let (block, finality) = &fx.commits()[0];
    finality.verify(&fx.set, &block.header).unwrap();
}

#[test]
fn a_descendant_finalization_commits_the_notarized_ancestor() {
    let mut fx = Fixture::new(4, 0);
    let b1 = fx.block(1, None, 0);
    let b2 = fx.block(2, Some(&b1), 0);
    let notarization1 = fx.certificate(Notarize, 1, Some(&b1), &[1, 2, 3]);
    let steps = vec![
        step(
            "proposal 1",
            fx.proposal(&b1, None, None, vec![]),
            vec![Expect::Verify(1)],
            vec![],
            1,
        ),
        step(
            "notarize 1",
            fx.verified(&b1),
            vec![Expect::Journal(Notarize, 1)],
            vec![],
            1,
        ),
        step(
            "notarization 1; finalize 1 never gathers a quorum",
            fx.vote(2, Notarize, 1, &b1),
            vec![Expect::Journal(Finalize, 1)],
            vec![],
            2,
        ),
        step(
            "proposal 2 on block 1",
            fx.proposal(&b2, Some(&b1), Some(notarization1), vec![]),
            vec![Expect::Verify(2)],
            vec![],
            2,
        ),
        step(
            "notarize 2",
            fx.verified(&b2),
            vec![Expect::Journal(Notarize, 2)],
            vec![],
            2,
        ),
        step(
            "notarization 2",
            fx.vote(3, Notarize, 2, &b2),
            vec![Expect::Journal(Finalize, 2)],
            vec![],
            3,
        ),
        step(
            "finalize 2 of 3",
            fx.vote(2, Finalize, 2, &b2),
            vec![],
            vec![Expect::Commit(1)],
            3,
        ),
        step(
            "finalization 2 commits 1 then 2",
            fx.vote(3, Finalize, 2, &b2),
            vec![Expect::Commit(1), Expect::Commit(2)],
            vec![],
            3,
        ),
    ];
    fx.run(steps);
    let commits = fx.commits();
    assert_eq!(commits.len(), 2);
    let (first, finality1) = &commits[0];
    let (second, finality2) = &commits[1];
    assert_eq!((first, second), (&b1, &b2));
    assert_eq!(
        finality1.descendants,
        vec![b2.header.clone()],
        "block 1 is final through block 2"
    );
    assert_eq!(finality1.certificate.view, 2);
    finality1.verify(&fx.set, &first.header).unwrap();
    assert!(finality2.descendants.is_empty());
    finality2.verify(&fx.set, &second.header).unwrap();
    // The same finality does not prove a different block.
    assert!(
        finality1
            .verify(&fx.set, &fx.block(1, None, 9).header)
            .is_err()
    );
}

#[test]
fn restore_from_the_journal_never_equivocates() {
    let mut fx = Fixture::new(4, 0);
    let a = fx.block(1, None, 0);
    let b = fx.block(1, None, 1);
    fx.run(vec![
        step(
            "proposal A",
            fx.proposal(&a, None, None, vec![]),
            vec![Expect::Verify(1)],
            vec![],
            1,
        ),
        step(
            "notarize A",
            fx.verified(&a),
            vec![Expect::Journal(Notarize, 1)],
            vec![],
            1,
        ),
    ]);
    let journal = fx.journal();

    // Crash; restart from the journal. The leader (Byzantine) now shows B.
    let mut restarted = Engine::restore(config(&fx.keys, 0), &journal, &[], None).unwrap();
    let outputs = restarted.start();
    assert!(outputs.iter().any(|o| matches!(o, Output::Broadcast(Message::Vote(v)) if v.kind == Notarize && v.block == a.hash().0)), "rebroadcasts what it signed");
    assert!(!outputs.iter().any(|o| matches!(o, Output::Journal(_))));
    fx.engine = restarted;
    fx.run(vec![
        step(
            "B is not verified",
            fx.proposal(&b, None, None, vec![]),
            vec![],
            vec![Expect::Verify(1), Expect::AnyJournal],
            1,
        ),
        step(
            "nor voted",
            fx.verified(&b),
            vec![],
            vec![Expect::AnyJournal],
            1,
        ),
        step(
            "leader timer: a proposal came, no nullify",
            Input::Timer {
                view: 1,
                timer: TimerKind::Leader,
            },
            vec![],
            vec![Expect::AnyJournal],
            1,
        ),
        step(
            "view timer: nullify",
            Input::Timer {
                view: 1,
                timer: TimerKind::Notarization,
            },
            vec![Expect::Journal(Nullify, 1)],
            vec![],
            1,
        ),
    ]);

    // Crash again; the journal now holds notarize(A) and nullify: a
    // notarization of A must not make it finalize.
    let journal = fx.journal();
    let mut again = Engine::restore(config(&fx.keys, 0), &journal, &[], None).unwrap();
    let outputs = again.start();
    assert!(outputs.iter().any(|o| matches!(
        o,
        Output::SetTimer {
            timer: TimerKind::Retry,
            ..
        }
    )));
    fx.engine = again;
    let notarization = fx.certificate(Notarize, 1, Some(&a), &[1, 2, 3]);
    fx.run(vec![step(
        "notarization of A after restart: no finalize",
        Input::Message {
            from: 2,
            message: Message::Certificate(notarization),
        },
        vec![Expect::Timer(2, TimerKind::Leader)],
        vec![Expect::Journal(Finalize, 1)],
        2,
    )]);
    let kinds: Vec<(VoteKind, u64)> = fx.journal().iter().map(|v| (v.kind, v.view)).collect();
    assert_eq!(kinds, vec![(Notarize, 1), (Nullify, 1)]);
}

#[test]
fn restore_after_a_commit_continues_from_the_committed_head() {
    let mut fx = Fixture::new(4, 0);
    let b1 = fx.block(1, None, 0);
    fx.run(vec![
        step(
            "proposal",
            fx.proposal(&b1, None, None, vec![]),
            vec![Expect::Verify(1)],
            vec![],
            1,
        ),
        step("notarize", fx.verified(&b1), vec![], vec![], 1),
        step(
            "notarization",
            fx.vote(2, Notarize, 1, &b1),
            vec![],
            vec![],
            2,
        ),
        step("finalize", fx.vote(2, Finalize, 1, &b1), vec![], vec![], 2),
        step(
            "finalization",
            fx.vote(3, Finalize, 1, &b1),
            vec![Expect::Commit(1)],
            vec![],
            2,
        ),
    ]);
    let (block, finality) = fx.commits().remove(0);
    let journal = fx.journal();
    let restarted = Engine::restore(
        config(&fx.keys, 0),
        &journal,
        &[],
        Some((block.header.clone(), finality)),
    )
    .unwrap();
    assert_eq!(
        (
            restarted.view(),
            restarted.finalized_view(),
            restarted.committed_height()
        ),
        (2, 1, 1)
    );
    fx.engine = restarted;
    // Peers further ahead answer our latest finalization with theirs, also
    // when the chain is idle and nobody else would send anything.
    let started = fx.engine.start();
    assert!(
        started
            .iter()
            .any(|o| Expect::Certificate(Finalize, 1).matches(o)),
        "a restart shows peers its finalization: {started:#?}"
    );
    let b2 = fx.block(2, Some(&b1), 0);
    fx.run(vec![step(
        "proposal on the committed head",
        fx.proposal(&b2, Some(&b1), None, vec![]),
        vec![Expect::Verify(2)],
        vec![],
        2,
    )]);
}

#[test]
fn our_leadership_builds_and_journals_before_broadcasting() {
    // Validator 1 leads view 1.
    let mut fx = Fixture::new(4, 1);
    assert!(
        fx.log
            .iter()
            .any(|o| matches!(o, Output::Build { view: 1 }))
    );
    let steps = vec![
        step(
            "payload: journal our notarize, then broadcast the proposal",
            Input::Propose {
                attestations: vec![],
                evidence: vec![],
                now_ms: 5,
            },
            vec![Expect::Journal(Notarize, 1), Expect::Proposal(1)],
            vec![],
            1,
        ),
        step(
            "a second payload is ignored",
            Input::Propose {
                attestations: vec![],
                evidence: vec![],
                now_ms: 6,
            },
            vec![],
            vec![Expect::AnyJournal],
            1,
        ),
    ];
    fx.run(steps);
    let proposal = fx
        .log
        .iter()
        .find_map(|o| {
            if let Output::Broadcast(Message::Proposal(p)) = o {
                Some(p.clone())
            } else {
                None
            }
        })
        .unwrap();
    assert_eq!(proposal.block.header.height, 1);
    assert_eq!(proposal.block.header.proposer, 1);
    assert_eq!(proposal.notarize.block, proposal.block.hash().0);
    proposal
        .notarize
        .verify(&CHAIN, &fx.keys[1].public_key())
        .unwrap();
}

#[test]
fn a_leader_after_a_nullified_view_carries_the_nullification() {
    // Validator 2 leads view 2.
    let mut fx = Fixture::new(4, 2);
    let steps = vec![
        step(
            "timer",
            Input::Timer {
                view: 1,
                timer: TimerKind::Leader,
            },
            vec![Expect::Journal(Nullify, 1)],
            vec![],
            1,
        ),
        step("nullify 0", fx.nullify(0, 1), vec![], vec![], 1),
        step(
            "nullify 3: view 2, we lead",
            fx.nullify(3, 1),
            vec![Expect::Build(2)],
            vec![],
            2,
        ),
        step(
            "payload",
            Input::Propose {
                attestations: vec![],
                evidence: vec![],
                now_ms: 7,
            },
            vec![Expect::Proposal(2)],
            vec![],
            2,
        ),
    ];
    fx.run(steps);
    let proposal = fx
        .log
        .iter()
        .find_map(|o| {
            if let Output::Broadcast(Message::Proposal(p)) = o {
                Some(p.clone())
            } else {
                None
            }
        })
        .unwrap();
    assert!(proposal.parent.is_none());
    assert_eq!(proposal.nullifications.len(), 1);
    assert_eq!(proposal.nullifications[0].view, 1);
    // Another validator accepts it.
    let mut other = Fixture::new(4, 3);
    other.run(vec![step(
        "the proposal justifies itself",
        Input::Message {
            from: 2,
            message: Message::Proposal(proposal),
        },
        vec![Expect::Certificate(Nullify, 1), Expect::Verify(2)],
        vec![],
        2,
    )]);
}

#[test]
fn a_leader_missing_certificates_asks_for_them() {
    // Validator 3 leads view 3; it jumps there on a nullification of view 2
    // without knowing what happened in view 1.
    let mut fx = Fixture::new(4, 3);
    let null2 = fx.certificate(Nullify, 2, None, &[0, 1, 2]);
    let null1 = fx.certificate(Nullify, 1, None, &[0, 1, 2]);
    let msg = |message| Input::Message { from: 0, message };
    fx.run(vec![
        step(
            "jump to view 3",
            msg(Message::Certificate(null2)),
            vec![Expect::Build(3)],
            vec![],
            3,
        ),
        step(
            "payload, but view 1 is unknown: ask",
            Input::Propose {
                attestations: vec![],
                evidence: vec![],
                now_ms: 1,
            },
            vec![Expect::Request],
            vec![Expect::Proposal(3)],
            3,
        ),
        step(
            "the answer lets us propose",
            msg(Message::Certificate(null1)),
            vec![Expect::Proposal(3)],
            vec![],
            3,
        ),
    ]);
}

#[test]
fn requests_are_answered_from_memory() {
    let mut fx = Fixture::new(4, 0);
    let b1 = fx.block(1, None, 0);
    let null2 = fx.certificate(Nullify, 2, None, &[1, 2, 3]);
    fx.run(vec![
        step(
            "proposal",
            fx.proposal(&b1, None, None, vec![]),
            vec![Expect::Verify(1)],
            vec![],
            1,
        ),
        step(
            "notarization",
            Input::Message {
                from: 1,
                message: Message::Certificate(fx.certificate(Notarize, 1, Some(&b1), &[1, 2, 3])),
            },
            vec![],
            vec![],
            2,
        ),
        step(
            "nullification 2",
            Input::Message {
                from: 1,
                message: Message::Certificate(null2),
            },
            vec![],
            vec![],
            3,
        ),
        step(
            "block request",
            Input::Message {
                from: 2,
                message: Message::Request(Request::Block { hash: b1.hash() }),
            },
            vec![Expect::Blocks],
            vec![],
            3,
        ),
    ]);
    let outputs = fx.engine.handle(Input::Message {
        from: 2,
        message: Message::Request(Request::Certificates { view: 2 }),
    });
    let views: Vec<(VoteKind, u64)> = outputs
        .iter()
        .filter_map(|o| match o {
            Output::Send {
                to: 2,
                message: Message::Certificate(c),
            } => Some((c.kind, c.view)),
            _ => None,
        })
        .collect();
    assert_eq!(views, vec![(Nullify, 2), (Notarize, 1)]);
}

#[test]
fn a_single_validator_finalizes_alone() {
    let mut fx = Fixture::new(1, 0);
    for view in 1..=3 {
        assert!(
            fx.log
                .iter()
                .any(|o| matches!(o, Output::Build { view: v } if *v == view))
        );
        let outputs = fx.engine.handle(Input::Propose {
            attestations: vec![],
            evidence: vec![],
            now_ms: view,
        });
        assert!(
            outputs
                .iter()
                .any(|o| matches!(o, Output::Commit { block, .. } if block.header.height == view))
        );
        fx.log.extend(outputs);
    }
    let mut parent: Option<Header> = None;
    for (block, finality) in fx.commits() {
        block.check_link(parent.as_ref()).unwrap();
        finality.verify(&fx.set, &block.header).unwrap();
        parent = Some(block.header);
    }
}

#[test]
fn block_sync_commits_verified_blocks_only() {
    let mut fx = Fixture::new(4, 0);
    let b1 = fx.block(1, None, 0);
    let b2 = fx.block(2, Some(&b1), 0);
    let cert2 = fx
        .certificate(Finalize, 2, Some(&b2), &[1, 2, 3])
        .to_finalization()
        .unwrap();
    let finality1 = Finality {
        certificate: cert2.clone(),
        descendants: vec![b2.header.clone()],
    };
    let finality2 = Finality::direct(cert2);
    let mut forged = finality2.clone();
    forged.certificate.signatures[0].signature.0[1] ^= 1;
    fx.run(vec![
        step(
            "height 2 before 1",
            Input::Synced {
                block: b2.clone(),
                finality: finality2.clone(),
            },
            vec![Expect::Dropped(|r| matches!(r, DropReason::Block(_)))],
            vec![Expect::Commit(2)],
            1,
        ),
        step(
            "height 1 through its descendant",
            Input::Synced {
                block: b1.clone(),
                finality: finality1,
            },
            vec![Expect::Commit(1), Expect::Timer(3, TimerKind::Leader)],
            vec![],
            3,
        ),
        step(
            "forged finality",
            Input::Synced {
                block: b2.clone(),
                finality: forged,
            },
            vec![Expect::Dropped(|r| matches!(r, DropReason::Finality(_)))],
            vec![Expect::Commit(2)],
            3,
        ),
        step(
            "height 2",
            Input::Synced {
                block: b2.clone(),
                finality: finality2,
            },
            vec![Expect::Commit(2)],
            vec![],
            3,
        ),
    ]);
    assert_eq!(fx.engine.committed_height(), 2);
}

#[test]
fn invalid_payload_is_nullified() {
    let mut fx = Fixture::new(4, 0);
    let b1 = fx.block(1, None, 0);
    fx.run(vec![
        step(
            "proposal",
            fx.proposal(&b1, None, None, vec![]),
            vec![Expect::Verify(1)],
            vec![],
            1,
        ),
        step(
            "invalid payload",
            Input::Verified {
                view: 1,
                block: b1.hash(),
                valid: false,
            },
            vec![Expect::Journal(Nullify, 1)],
            vec![Expect::Journal(Notarize, 1)],
            1,
        ),
    ]);
}

#[test]
fn nullify_votes_of_f_plus_one_validators_make_us_nullify() {
    // n = 4, f = 1: the leader of view 1 is validator 1; 2 and 3 give up.
    let mut fx = Fixture::new(4, 0);
    fx.run(vec![
        step(
            "one nullify (could be the one Byzantine validator): no reason yet",
            fx.nullify(2, 1),
            vec![],
            vec![Expect::Journal(Nullify, 1)],
            1,
        ),
        step(
            "a second (f + 1): at least one honest validator gave up the view; \
             ours makes the quorum",
            fx.nullify(3, 1),
            vec![
                Expect::Journal(Nullify, 1),
                Expect::Vote(Nullify, 1),
                Expect::Certificate(Nullify, 1),
            ],
            vec![],
            2,
        ),
    ]);
}

#[test]
fn a_reconnected_peer_is_sent_our_nullify_and_entry_certificate_at_once() {
    let mut fx = Fixture::new(4, 0);
    let null1 = fx.certificate(Nullify, 1, None, &[1, 2, 3]);
    fx.run(vec![
        step(
            "not stuck: a reconnection sends nothing",
            Input::PeerConnected { peer: 2 },
            vec![],
            vec![Expect::SendVote(2, Nullify, 1)],
            1,
        ),
        step(
            "enter view 2 on a nullification",
            Input::Message {
                from: 1,
                message: Message::Certificate(null1),
            },
            vec![Expect::Timer(2, TimerKind::Leader)],
            vec![],
            2,
        ),
        step(
            "leader 2 is silent: we nullify view 2",
            Input::Timer {
                view: 2,
                timer: TimerKind::Leader,
            },
            vec![Expect::Journal(Nullify, 2)],
            vec![],
            2,
        ),
        step(
            "peer 3 is back: it gets our nullify and the entry certificate now",
            Input::PeerConnected { peer: 3 },
            vec![
                Expect::SendVote(3, Nullify, 2),
                Expect::SendCertificate(3, Nullify, 1),
            ],
            vec![Expect::Vote(Nullify, 2), Expect::AnyJournal],
            2,
        ),
        step(
            "ourselves: nothing",
            Input::PeerConnected { peer: 0 },
            vec![],
            vec![Expect::SendVote(0, Nullify, 2)],
            2,
        ),
        step(
            "an index outside the set: nothing",
            Input::PeerConnected { peer: 9 },
            vec![],
            vec![Expect::SendVote(9, Nullify, 2)],
            2,
        ),
    ]);
}

#[test]
fn the_leaders_own_nullify_makes_us_nullify() {
    let mut fx = Fixture::new(4, 0);
    fx.run(vec![step(
        "leader 1 nullifies view 1",
        fx.nullify(1, 1),
        vec![Expect::Journal(Nullify, 1)],
        vec![],
        1,
    )]);
}

#[test]
fn the_notarized_body_and_certificates_are_persisted_before_they_matter() {
    let mut fx = Fixture::new(4, 0);
    let b1 = fx.block(1, None, 0);
    fx.run(vec![
        step(
            "proposal",
            fx.proposal(&b1, None, None, vec![]),
            vec![Expect::Verify(1)],
            vec![],
            1,
        ),
        step(
            "the body is persisted before the notarize leaves",
            fx.verified(&b1),
            vec![
                Expect::PersistBlock(1),
                Expect::Journal(Notarize, 1),
                Expect::Vote(Notarize, 1),
            ],
            vec![],
            1,
        ),
        step(
            "the notarization is persisted",
            fx.vote(2, Notarize, 1, &b1),
            vec![
                Expect::PersistCertificate(Notarize, 1),
                Expect::Journal(Finalize, 1),
            ],
            vec![],
            2,
        ),
    ]);
    // Every validator that holds block 1 crashes. After a restart from the
    // journal and the records we re-enter view 2, serve the block and hand
    // the notarization to stragglers.
    let mut restarted =
        Engine::restore(config(&fx.keys, 0), &fx.journal(), &fx.records(), None).unwrap();
    assert_eq!(restarted.view(), 2);
    restarted.start();
    fx.engine = restarted;
    fx.run(vec![
        step(
            "a peer asks for the notarized block",
            Input::Message {
                from: 3,
                message: Message::Request(Request::Block { hash: b1.hash() }),
            },
            vec![Expect::Blocks],
            vec![],
            2,
        ),
        step(
            "view timer",
            Input::Timer {
                view: 2,
                timer: TimerKind::Notarization,
            },
            vec![Expect::Journal(Nullify, 2)],
            vec![],
            2,
        ),
        step(
            "retry carries the notarization of view 1",
            Input::Timer {
                view: 2,
                timer: TimerKind::Retry,
            },
            vec![Expect::Vote(Nullify, 2), Expect::Certificate(Notarize, 1)],
            vec![],
            2,
        ),
    ]);
}

#[test]
fn a_restarted_leader_builds_on_a_persisted_notarized_block() {
    // Validator 2 leads view 2.
    let mut fx = Fixture::new(4, 2);
    let b1 = fx.block(1, None, 0);
    fx.run(vec![
        step(
            "proposal",
            fx.proposal(&b1, None, None, vec![]),
            vec![Expect::Verify(1)],
            vec![],
            1,
        ),
        step(
            "notarize",
            fx.verified(&b1),
            vec![Expect::PersistBlock(1)],
            vec![],
            1,
        ),
        step(
            "notarization: we lead view 2",
            fx.vote(3, Notarize, 1, &b1),
            vec![Expect::Build(2)],
            vec![],
            2,
        ),
    ]);
    let mut restarted =
        Engine::restore(config(&fx.keys, 2), &fx.journal(), &fx.records(), None).unwrap();
    let outputs = restarted.start();
    assert!(
        outputs
            .iter()
            .any(|o| matches!(o, Output::Build { view: 2 }))
    );
    fx.engine = restarted;
    fx.run(vec![step(
        "payload",
        Input::Propose {
            attestations: vec![],
            evidence: vec![],
            now_ms: 9,
        },
        vec![Expect::Proposal(2)],
        vec![],
        2,
    )]);
    let proposal = fx
        .log
        .iter()
        .find_map(|o| {
            if let Output::Broadcast(Message::Proposal(p)) = o {
                Some(p.clone())
            } else {
                None
            }
        })
        .unwrap();
    assert_eq!(proposal.parent.as_ref().map(Header::hash), Some(b1.hash()));
    assert_eq!(proposal.block.header.height, 2);
}

#[test]
fn a_peer_behind_the_finalized_view_is_sent_the_finalization_once() {
    let mut fx = Fixture::new(4, 0);
    let b1 = fx.block(1, None, 0);
    let b2 = fx.block(2, Some(&b1), 0);
    let finalization = fx.certificate(Finalize, 2, Some(&b2), &[1, 2, 3]);
    fx.run(vec![
        step(
            "finalization of view 2",
            Input::Message {
                from: 1,
                message: Message::Certificate(finalization),
            },
            vec![Expect::Timer(3, TimerKind::Leader)],
            vec![],
            3,
        ),
        step(
            "validator 3 still votes in view 1",
            fx.nullify(3, 1),
            vec![
                Expect::SendCertificate(3, Finalize, 2),
                Expect::Dropped(|r| matches!(r, DropReason::StaleView { .. })),
            ],
            vec![],
            3,
        ),
        step(
            "once",
            fx.nullify(3, 1),
            vec![],
            vec![Expect::SendCertificate(3, Finalize, 2)],
            3,
        ),
        step(
            "a vote of the finalized view itself is not help-worthy",
            fx.nullify(2, 2),
            vec![],
            vec![Expect::SendCertificate(2, Finalize, 2)],
            3,
        ),
    ]);
}

#[test]
fn a_finalized_block_nobody_serves_falls_back_to_block_sync() {
    let mut fx = Fixture::new(4, 0);
    let b1 = fx.block(1, None, 0);
    let finalization = fx.certificate(Finalize, 1, Some(&b1), &[1, 2, 3]);
    fx.run(vec![step(
        "finalization of an unknown block: fetch it",
        Input::Message {
            from: 1,
            message: Message::Certificate(finalization),
        },
        vec![Expect::Request],
        vec![],
        2,
    )]);
    let mut asked = Vec::new();
    let mut synced = false;
    for tick in 0..4 {
        let outputs = fx.engine.handle(Input::Timer {
            view: 1,
            timer: TimerKind::Leader,
        });
        for output in &outputs {
            match output {
                Output::Send {
                    to,
                    message: Message::Request(Request::Block { hash }),
                } => {
                    assert_eq!(*hash, b1.hash());
                    asked.push(*to);
                }
                Output::Sync { height } => {
                    assert_eq!(*height, 1);
                    assert!(tick >= 2, "block sync before the fetch attempts ran out");
                    synced = true;
                }
                _ => {}
            }
        }
    }
    assert!(synced, "no block sync requested");
    let mut peers = asked.clone();
    peers.sort();
    peers.dedup();
    assert_eq!(
        peers,
        vec![1, 2, 3],
        "each retry asks another peer: {asked:?}"
    );
}

/// Goal: a validator restarted behind on an idle chain catches up at once,
/// not at the heartbeat (a validator restarted with its rotated key sat
/// behind for over 30 s). Its view is idle, so no timer would retry a
/// fetch, and peers that no longer hold the block never answer one: a
/// finalization it lacks the block of makes it block-sync now and on a
/// `Retry` timer every view timeout until the block is committed. A peer
/// that (re)connects is shown our latest finalization (whichever end is
/// behind learns it), and while we lag it we block-sync again, now that
/// a connection is up.
#[test]
fn an_idle_validator_behind_its_finalization_block_syncs_until_it_commits() {
    let mut fx = Fixture::idle(4, 0);
    let b1 = fx.block(1, None, 0);
    let certificate = fx.certificate(Finalize, 1, Some(&b1), &[1, 2, 3]);
    let finality = Finality::direct(certificate.clone().to_finalization().unwrap());
    fx.run(vec![
        step(
            "a finalization of a block we lack, in an idle view: fetch, block-sync, arm a retry",
            Input::Message {
                from: 1,
                message: Message::Certificate(certificate.clone()),
            },
            vec![
                Expect::Request,
                Expect::Sync(1),
                Expect::Timer(2, TimerKind::Retry),
            ],
            view_timers(2),
            2,
        ),
        step(
            "the same again arms no second retry timer",
            Input::Message {
                from: 2,
                message: Message::Certificate(fx.certificate(Finalize, 1, Some(&b1), &[0, 2, 3])),
            },
            vec![],
            vec![Expect::Timer(2, TimerKind::Retry)],
            2,
        ),
        step(
            "the retry: block-sync again and re-arm",
            timer(2, TimerKind::Retry),
            vec![Expect::Sync(1), Expect::Timer(2, TimerKind::Retry)],
            view_timers(2),
            2,
        ),
        step(
            "a peer connects: it gets our finalization, and we block-sync",
            Input::PeerConnected { peer: 3 },
            vec![Expect::SendCertificate(3, Finalize, 1), Expect::Sync(1)],
            vec![],
            2,
        ),
        step(
            "the block arrives by sync: committed",
            Input::Synced {
                block: b1.clone(),
                finality,
            },
            vec![Expect::Commit(1)],
            vec![],
            2,
        ),
        step(
            "caught up: the retry does nothing",
            timer(2, TimerKind::Retry),
            vec![],
            vec![Expect::Sync(1), Expect::Timer(2, TimerKind::Retry)],
            2,
        ),
        step(
            "caught up, a peer connects: it gets our finalization, no block sync",
            Input::PeerConnected { peer: 2 },
            vec![Expect::SendCertificate(2, Finalize, 1)],
            vec![Expect::Sync(1)],
            2,
        ),
    ]);
}

/// The leader timers the engine set, by view, in order.
fn leader_timers(log: &[Output]) -> Vec<(u64, u64)> {
    log.iter()
        .filter_map(|o| match o {
            Output::SetTimer {
                view,
                timer: TimerKind::Leader,
                after_ms,
            } => Some((*view, *after_ms)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_leader_that_missed_its_turn_gets_a_short_timer_until_it_proposes() {
    let mut fx = Fixture::new(4, 0);
    let config = fx.engine.config().clone();
    let steps = vec![
        step(
            "leader 1 is silent: our leader timer nullifies",
            Input::Timer {
                view: 1,
                timer: TimerKind::Leader,
            },
            vec![Expect::Journal(Nullify, 1)],
            vec![],
            1,
        ),
        step("nullify 2", fx.nullify(2, 1), vec![], vec![], 1),
        step(
            "nullify 3: view 1 nullified without a sign of leader 1",
            fx.nullify(3, 1),
            vec![Expect::Certificate(Nullify, 1)],
            vec![],
            2,
        ),
    ];
    fx.run(steps);
    assert!(fx.engine.suspected(1), "a silent leader is suspected");
    assert!(!fx.engine.suspected(2) && !fx.engine.suspected(3));
    // Views 2..=4 pass (view 4 is ours); view 5 is leader 1's next turn.
    let null4 = fx.certificate(Nullify, 4, None, &[1, 2, 3]);
    fx.run(vec![step(
        "jump to view 5 by a nullification of view 4",
        Input::Message {
            from: 2,
            message: Message::Certificate(null4),
        },
        vec![Expect::Timer(5, TimerKind::Leader)],
        vec![],
        5,
    )]);
    let streak = 2; // views 2 and 5 were entered by nullification
    assert_eq!(
        leader_timers(&fx.log).last(),
        Some(&(5, config.suspect_timeout_ms(streak))),
        "the suspect's view waits a fraction of the leader timeout"
    );
    assert!(
        config.suspect_timeout_ms(streak) * lotline_consensus::config::SUSPECT_TIMEOUT_DIVISOR
            == config.leader_timeout_ms(streak)
    );
    // Leader 1 proposes in view 5 (its notarize reaches us first): alive.
    let alive = fx.signed(1, Notarize, 5, Digest([5; 32]));
    fx.run(vec![step(
        "the suspect's own notarize",
        Input::Message {
            from: 1,
            message: Message::Vote(alive),
        },
        vec![],
        vec![],
        5,
    )]);
    assert!(!fx.engine.suspected(1), "a proposal clears the suspicion");
    // View 5 is nullified anyway; leader 1 showed it is alive, so its next
    // turn (view 9) gets the full timer.
    let null8 = fx.certificate(Nullify, 8, None, &[1, 2, 3]);
    let null5 = fx.certificate(Nullify, 5, None, &[0, 2, 3]);
    fx.run(vec![
        step(
            "view 5 nullified after the suspect proposed",
            Input::Message {
                from: 2,
                message: Message::Certificate(null5),
            },
            vec![],
            vec![],
            6,
        ),
        step(
            "jump to view 9",
            Input::Message {
                from: 2,
                message: Message::Certificate(null8),
            },
            vec![Expect::Timer(9, TimerKind::Leader)],
            vec![],
            9,
        ),
    ]);
    assert!(!fx.engine.suspected(1));
    let streak = 4;
    assert_eq!(
        leader_timers(&fx.log).last(),
        Some(&(9, config.leader_timeout_ms(streak)))
    );
}

#[test]
fn a_leader_whose_proposal_we_saw_is_not_suspected_and_stragglers_suspect_nobody() {
    let mut fx = Fixture::new(4, 0);
    let b1 = fx.block(1, None, 0);
    let null1 = fx.certificate(Nullify, 1, None, &[1, 2, 3]);
    fx.run(vec![
        step(
            "leader 1 proposes",
            fx.proposal(&b1, None, None, vec![]),
            vec![Expect::Verify(1)],
            vec![],
            1,
        ),
        step(
            "but the view is nullified (slow verification elsewhere)",
            Input::Message {
                from: 2,
                message: Message::Certificate(null1),
            },
            vec![Expect::Certificate(Nullify, 1)],
            vec![],
            2,
        ),
    ]);
    assert!(!fx.engine.suspected(1), "it proposed: alive");
    // We jump from view 2 to view 7: we sat in view 2 and saw nothing of
    // leader 2; views 3 to 6 we jumped over, and the late nullification of
    // view 3 (leader 3) judges nobody either.
    let null6 = fx.certificate(Nullify, 6, None, &[1, 2, 3]);
    let null3 = fx.certificate(Nullify, 3, None, &[1, 2, 3]);
    fx.run(vec![
        step(
            "jump to view 7",
            Input::Message {
                from: 2,
                message: Message::Certificate(null6),
            },
            vec![],
            vec![],
            7,
        ),
        step(
            "a late nullification of a view we skipped",
            Input::Message {
                from: 2,
                message: Message::Certificate(null3),
            },
            vec![],
            vec![],
            7,
        ),
    ]);
    assert!(!fx.engine.suspected(3), "a view we skipped judges nobody");
    assert!(
        fx.engine.suspected(2),
        "we left view 2 with no sign of leader 2"
    );
}

/// Regression (defect 9): a leader re-proposed an attestation of the block
/// it was building on when that block's proposal reached it only after it
/// had left the block's view (the notarization came first): the actor never
/// saw the block, its pool still held the attestation, and every voter
/// refused the repeat, costing the view.
#[test]
fn a_leader_never_repeats_an_attestation_of_the_chain_it_extends() {
    // Validator 2 leads view 2.
    let mut fx = Fixture::new(4, 2);
    let b1 = fx.block(1, None, 0);
    let notarized = fx.certificate(Notarize, 1, Some(&b1), &[0, 1, 3]);
    let repeated = b1.attestations[0].clone();
    let fresh = Envelope::sign(b"fresh".to_vec(), &SigningKey::from_seed(&[0xBB; 32]));
    fx.run(vec![
        step(
            "view 1 notarized before its proposal reached us: we lead view 2",
            Input::Message {
                from: 0,
                message: Message::Certificate(notarized.clone()),
            },
            vec![Expect::Build(2)],
            vec![],
            2,
        ),
        step(
            "the proposal of view 1 arrives late: kept, not verified",
            fx.proposal(&b1, None, None, vec![]),
            vec![],
            vec![Expect::Verify(1)],
            2,
        ),
        step(
            "the actor's pool still offers b1's attestation",
            Input::Propose {
                attestations: vec![repeated.clone(), fresh.clone()],
                evidence: vec![],
                now_ms: 9,
            },
            vec![Expect::Proposal(2)],
            vec![],
            2,
        ),
    ]);
    assert!(
        fx.engine
            .uncommitted_attestations()
            .contains(&repeated.id()),
        "the actor is told what the chain carries"
    );
    let (parent, ids) = fx.proposed();
    assert_eq!(parent, b1.hash());
    assert_eq!(
        ids,
        vec![fresh.id()],
        "the repeat is left out, the rest kept"
    );
}

/// Regression (defect 9, second cause, seen in chaos campaigns): the
/// payload was built while the parent's body was still being fetched; the
/// body arrived together with the parent's finalization, so the parent
/// committed at once and was no longer an uncommitted ancestor to leave out.
/// The proposal repeated an attestation committed one height below it, and
/// every voter refused it. A commit now takes its attestations out of a
/// waiting payload.
#[test]
fn a_payload_waiting_for_its_parent_loses_what_the_parent_commits() {
    // Validator 2 leads view 2.
    let mut fx = Fixture::new(4, 2);
    let b1 = fx.block(1, None, 0);
    let notarized = fx.certificate(Notarize, 1, Some(&b1), &[0, 1, 3]);
    let finalized = fx.certificate(Finalize, 1, Some(&b1), &[0, 1, 3]);
    let repeated = b1.attestations[0].clone();
    let fresh = Envelope::sign(b"fresh".to_vec(), &SigningKey::from_seed(&[0xBB; 32]));
    fx.run(vec![
        step(
            "view 1 notarized; we never saw its proposal: we lead view 2",
            Input::Message {
                from: 0,
                message: Message::Certificate(notarized),
            },
            vec![Expect::Build(2)],
            vec![],
            2,
        ),
        step(
            "the actor's pool still offers b1's attestation; b1's body is fetched",
            Input::Propose {
                attestations: vec![repeated.clone(), fresh.clone()],
                evidence: vec![],
                now_ms: 9,
            },
            vec![Expect::Request],
            vec![Expect::Proposal(2)],
            2,
        ),
        step(
            "view 1 is finalized, body still missing",
            Input::Message {
                from: 1,
                message: Message::Certificate(finalized),
            },
            vec![],
            vec![Expect::Commit(1), Expect::Proposal(2)],
            2,
        ),
        step(
            "the body arrives: b1 commits and we propose on it",
            Input::Message {
                from: 0,
                message: Message::Blocks(vec![b1.clone()]),
            },
            vec![Expect::Commit(1), Expect::Proposal(2)],
            vec![],
            2,
        ),
    ]);
    let (parent, ids) = fx.proposed();
    assert_eq!(parent, b1.hash());
    assert_eq!(
        ids,
        vec![fresh.id()],
        "what b1 committed is left out, the rest kept"
    );
}

/// Regression (defect 9, third cause, seen in a 15-minute chaos campaign
/// after the second fix): a lagging leader built on a notarized parent
/// whose own parent's body it had never received; what that gap block
/// carried was still in its pool, and the proposal repeated an attestation
/// committed three heights below it. A leader now fetches every uncommitted
/// ancestor's body before it proposes.
#[test]
fn a_leader_fetches_the_bodies_between_its_parent_and_its_head_before_proposing() {
    // Validator 3 leads view 3.
    let mut fx = Fixture::new(4, 3);
    let b1 = fx.block(1, None, 0);
    let b2 = fx.block(2, Some(&b1), 0);
    let cert1 = fx.certificate(Notarize, 1, Some(&b1), &[0, 1, 2]);
    let cert2 = fx.certificate(Notarize, 2, Some(&b2), &[0, 1, 2]);
    let repeated = b1.attestations[0].clone();
    let fresh = Envelope::sign(b"fresh".to_vec(), &SigningKey::from_seed(&[0xBB; 32]));
    fx.run(vec![
        step(
            "view 2 notarized: we lead view 3; we never saw b1 or b2",
            Input::Message {
                from: 0,
                message: Message::Certificate(cert2),
            },
            vec![Expect::Build(3)],
            vec![],
            3,
        ),
        step(
            "b2's proposal arrives late (it names b1 and b1's certificate)",
            fx.proposal(&b2, Some(&b1), Some(cert1), vec![]),
            vec![],
            vec![Expect::Verify(2)],
            3,
        ),
        step(
            "the pool still offers b1's attestation: b1's body is fetched first",
            Input::Propose {
                attestations: vec![repeated.clone(), fresh.clone()],
                evidence: vec![],
                now_ms: 9,
            },
            vec![Expect::Request],
            vec![Expect::Proposal(3)],
            3,
        ),
        step(
            "b1 arrives: we propose on b2, without b1's attestation",
            Input::Message {
                from: 0,
                message: Message::Blocks(vec![b1.clone()]),
            },
            vec![Expect::Proposal(3)],
            vec![],
            3,
        ),
    ]);
    let (parent, ids) = fx.proposed();
    assert_eq!(parent, b2.hash());
    assert!(!ids.contains(&repeated.id()), "b1's attestation repeated");
    assert!(ids.contains(&fresh.id()));
}

// ---- idle views -------------------------------------------------------------

fn timer(view: u64, timer: TimerKind) -> Input {
    Input::Timer { view, timer }
}

/// The timers of an active view, which an idle one must not set.
fn view_timers(view: u64) -> Vec<Expect> {
    vec![
        Expect::Timer(view, TimerKind::Leader),
        Expect::Timer(view, TimerKind::Notarization),
    ]
}

/// Goal: an idle leader proposes nothing and nobody's view timers run
/// until the heartbeat; then the leader asks for a payload and the timers
/// start. Method: validator 1 leads view 1 with no work.
#[test]
fn an_idle_leader_waits_for_its_heartbeat() {
    let mut fx = Fixture::idle(4, 1);
    let start = fx.log.clone();
    assert!(
        start
            .iter()
            .any(|o| Expect::Timer(1, TimerKind::Heartbeat).matches(o))
    );
    for forbidden in view_timers(1).iter().chain([&Expect::Build(1)]) {
        assert!(
            !start.iter().any(|o| forbidden.matches(o)),
            "idle start: {forbidden:?} in {start:#?}"
        );
    }
    let heartbeat = start.iter().find_map(|o| match o {
        Output::SetTimer {
            timer: TimerKind::Heartbeat,
            after_ms,
            ..
        } => Some(*after_ms),
        _ => None,
    });
    assert_eq!(heartbeat, Some(60_000));
    fx.run(vec![
        step(
            "a late payload does not make an idle view propose",
            Input::Propose {
                attestations: vec![],
                evidence: vec![],
                now_ms: 5,
            },
            vec![],
            vec![Expect::Proposal(1), Expect::AnyJournal],
            1,
        ),
        step(
            "heartbeat: build, timers start",
            timer(1, TimerKind::Heartbeat),
            vec![
                Expect::Timer(1, TimerKind::Leader),
                Expect::Timer(1, TimerKind::Notarization),
                Expect::Build(1),
            ],
            vec![],
            1,
        ),
        step(
            "a second heartbeat changes nothing",
            timer(1, TimerKind::Heartbeat),
            vec![],
            vec![Expect::Build(1), Expect::Timer(1, TimerKind::Leader)],
            1,
        ),
        step(
            "the empty payload is proposed",
            Input::Propose {
                attestations: vec![],
                evidence: vec![],
                now_ms: 60_005,
            },
            vec![Expect::Journal(Notarize, 1), Expect::Proposal(1)],
            vec![],
            1,
        ),
    ]);
}

/// Goal: work makes an idle view active at once, with the normal timers,
/// so a dead leader is timed out as under load; going idle again does not
/// stop a view that is already active. Method: replica 0 in view 1.
#[test]
fn work_starts_the_timers_of_an_idle_view_and_a_dead_leader_is_nullified() {
    let mut fx = Fixture::idle(4, 0);
    fx.run(vec![step(
        "the leader timer never fires in an idle view, so nothing happens",
        timer(1, TimerKind::Heartbeat),
        view_timers(1),
        vec![Expect::AnyJournal],
        1,
    )]);
    let mut fx = Fixture::idle(4, 0);
    fx.run(vec![
        step(
            "work: timers start, no build (not the leader)",
            Input::Work { pending: true },
            view_timers(1),
            vec![Expect::Build(1), Expect::AnyJournal],
            1,
        ),
        step(
            "the work is gone again: the active view stays active",
            Input::Work { pending: false },
            vec![],
            vec![Expect::AnyJournal],
            1,
        ),
        step(
            "leader timer: nullify",
            timer(1, TimerKind::Leader),
            vec![Expect::Journal(Nullify, 1), Expect::Vote(Nullify, 1)],
            vec![],
            1,
        ),
        step("a second nullify", fx.nullify(2, 1), vec![], vec![], 1),
        step(
            "third nullify: view 2 starts idle (no work now)",
            fx.nullify(3, 1),
            vec![
                Expect::Certificate(Nullify, 1),
                Expect::Timer(2, TimerKind::Heartbeat),
            ],
            view_timers(2),
            2,
        ),
    ]);
}

/// Goal: f + 1 nullifies end an idle view (an honest validator has work
/// the others did not hear of: they nullify too, rule 5), f do not
/// (Byzantine validators alone can not wake the chain). Method: n = 4,
/// f = 1, replica 0.
#[test]
fn f_plus_one_nullifies_end_an_idle_view_and_f_do_not() {
    let mut fx = Fixture::idle(4, 0);
    fx.run(vec![
        step(
            "one nullify: still idle",
            fx.nullify(2, 1),
            vec![],
            vec![Expect::AnyJournal, Expect::Timer(1, TimerKind::Leader)],
            1,
        ),
        step(
            "two nullifies: we nullify too, which makes the nullification; view 2 starts idle",
            fx.nullify(3, 1),
            vec![
                Expect::Journal(Nullify, 1),
                Expect::Vote(Nullify, 1),
                Expect::Certificate(Nullify, 1),
                Expect::Timer(2, TimerKind::Heartbeat),
            ],
            view_timers(2),
            2,
        ),
    ]);
}

/// Goal: a proposal makes an idle view active (its leader had work we did
/// not hear of yet), and leaving the view carries nothing into the next:
/// it starts idle. Method: replica 2 sees view 1's proposal notarized.
#[test]
fn a_proposal_wakes_an_idle_view_and_the_next_view_starts_idle() {
    let mut fx = Fixture::idle(4, 2);
    let b1 = fx.block(1, None, 0);
    fx.run(vec![
        step(
            "proposal: verify, timers start",
            fx.proposal(&b1, None, None, vec![]),
            vec![
                Expect::Verify(1),
                Expect::Timer(1, TimerKind::Leader),
                Expect::Timer(1, TimerKind::Notarization),
            ],
            vec![],
            1,
        ),
        step(
            "notarize",
            fx.verified(&b1),
            vec![Expect::Journal(Notarize, 1)],
            vec![],
            1,
        ),
        step(
            "the leader's, ours and a third: notarization; view 2, which we lead, starts idle",
            fx.vote(3, Notarize, 1, &b1),
            vec![
                Expect::Certificate(Notarize, 1),
                Expect::Timer(2, TimerKind::Heartbeat),
                Expect::Journal(Finalize, 1),
            ],
            vec![Expect::Build(2), Expect::Timer(2, TimerKind::Leader)],
            2,
        ),
        step(
            "work: the leader of view 2 builds",
            Input::Work { pending: true },
            vec![Expect::Timer(2, TimerKind::Leader), Expect::Build(2)],
            vec![],
            2,
        ),
    ]);
}

/// Goal: f + 1 `nullify` votes for a view that arrived before we entered it
/// count when we enter it (rule 5), as after a healed split where the
/// others nullified a view we reach last. Method: replica 0 gets the
/// nullifies of validators 2 and 3 for view 2 while still in view 1.
#[test]
fn f_plus_one_nullifies_received_early_count_on_entering_the_view() {
    let mut fx = Fixture::new(4, 0);
    fx.run(vec![
        step(
            "an early nullify of view 2",
            fx.nullify(2, 2),
            vec![],
            vec![],
            1,
        ),
        step(
            "a second one: still in view 1, nothing signed",
            fx.nullify(3, 2),
            vec![],
            vec![Expect::AnyJournal],
            1,
        ),
        step(
            "view 1's nullification: enter view 2 and nullify it at once",
            Input::Message {
                from: 2,
                message: Message::Certificate(fx.certificate(Nullify, 1, None, &[1, 2, 3])),
            },
            vec![Expect::Certificate(Nullify, 1), Expect::Journal(Nullify, 2)],
            vec![],
            3,
        ),
    ]);
}

// ---- epochs (validator-set changes at a boundary block) ----

/// Epoch 1 adds a fifth validator; the keys of the four stay.
fn epoch1(keys: &[SigningKey], me: u16, from_height: u64) -> Input {
    let validators = keys.iter().map(SigningKey::public_key).collect();
    Input::Reconfigure(Box::new(Reconfiguration {
        epoch: 1,
        from_height,
        validators,
        index: me,
        key: keys[usize::from(me)].clone(),
        voting: true,
    }))
}

fn signed_in(
    keys: &[SigningKey],
    epoch: u64,
    signer: u16,
    kind: VoteKind,
    view: u64,
    block: &Block,
) -> Vote {
    let digest = if kind == Nullify {
        Digest::ZERO
    } else {
        block.hash().0
    };
    Vote::sign_in(
        &keys[usize::from(signer)],
        signer,
        &CHAIN,
        epoch,
        kind,
        view,
        digest,
    )
}

fn vote_in(
    keys: &[SigningKey],
    epoch: u64,
    signer: u16,
    kind: VoteKind,
    view: u64,
    block: &Block,
) -> Input {
    Input::Message {
        from: signer,
        message: Message::Vote(signed_in(keys, epoch, signer, kind, view, block)),
    }
}

/// The stall found before any code (docs/protocol.md): the boundary block
/// B's view ends notarized with its votes split (two `finalize`, two
/// `nullify` at n = 4), so neither a finalization nor a nullification of
/// that view can form, and nothing above B may be proposed in its epoch.
/// The next leader re-proposes B itself; the epoch finalizes B with its
/// own certificate, and the engine switches to the five validators of
/// epoch 1 at view 1, where epoch-0 votes never count and epoch-0
/// stragglers get B's finalization.
#[test]
fn a_split_boundary_view_is_finalized_by_re_proposing_the_boundary_block() {
    let mut fx = Fixture::new(4, 2);
    let five = keys(5);
    let b = fx.block(1, None, 0);
    let steps = vec![
        step(
            "the next epoch starts at height 2: B (height 1) is the boundary",
            epoch1(&five, 2, 2),
            vec![],
            vec![Expect::Dropped(|_| true)],
            1,
        ),
        step(
            "B is proposed in view 1",
            fx.proposal(&b, None, None, vec![]),
            vec![Expect::Verify(1)],
            vec![],
            1,
        ),
        step(
            "we notarize B",
            fx.verified(&b),
            vec![Expect::Journal(Notarize, 1)],
            vec![],
            1,
        ),
        step(
            "notarization of view 1: view 2 (ours), finalize(1, B)",
            fx.vote(0, Notarize, 1, &b),
            vec![
                Expect::Certificate(Notarize, 1),
                Expect::Build(2),
                Expect::Journal(Finalize, 1),
            ],
            vec![],
            2,
        ),
        step(
            "a second finalize(1, B)",
            fx.vote(1, Finalize, 1, &b),
            vec![],
            vec![Expect::Commit(1)],
            2,
        ),
        step(
            "validator 0 nullified view 1",
            fx.nullify(0, 1),
            vec![],
            vec![Expect::Commit(1)],
            2,
        ),
        step(
            "and validator 3: view 1 is split, neither finalized nor nullified",
            fx.nullify(3, 1),
            vec![],
            vec![
                Expect::Commit(1),
                Expect::Certificate(Nullify, 1),
                Expect::Certificate(Finalize, 1),
            ],
            2,
        ),
        step(
            "our payload: we re-propose B in view 2 instead of a block above it",
            Input::Propose {
                attestations: vec![],
                evidence: vec![],
                now_ms: 5,
            },
            vec![Expect::Journal(Notarize, 2), Expect::Proposal(2)],
            vec![],
            2,
        ),
        step(
            "notarize(2, B) of validator 0",
            fx.vote(0, Notarize, 2, &b),
            vec![],
            vec![],
            2,
        ),
        step(
            "of validator 3: notarization of view 2, finalize(2, B)",
            fx.vote(3, Notarize, 2, &b),
            vec![
                Expect::Certificate(Notarize, 2),
                Expect::Journal(Finalize, 2),
            ],
            vec![],
            3,
        ),
        step(
            "finalize(2, B) of validator 0",
            fx.vote(0, Finalize, 2, &b),
            vec![],
            vec![Expect::Commit(1)],
            3,
        ),
        step(
            "of validator 3: B is final in epoch 0, committed; epoch 1 starts at view 1",
            fx.vote(3, Finalize, 2, &b),
            vec![Expect::Certificate(Finalize, 2), Expect::Commit(1)],
            vec![Expect::Commit(2)],
            1,
        ),
    ];
    fx.run(steps);
    let proposal = fx
        .log
        .iter()
        .find_map(|o| match o {
            Output::Broadcast(Message::Proposal(p)) => Some(p.clone()),
            _ => None,
        })
        .expect("re-proposal");
    assert_eq!(proposal.block, b, "the same block, not one above it");
    let justification = proposal.parent_certificate.as_ref().unwrap();
    assert_eq!((justification.kind, justification.view), (Notarize, 1));
    let commits = fx.commits();
    let (block, finality) = &commits[0];
    assert_eq!(block, &b);
    assert_eq!(
        (finality.certificate.epoch, finality.certificate.view),
        (0, 2)
    );
    finality.verify(&fx.set, &block.header).unwrap();
    assert_eq!(fx.engine.epoch(), 1);
    assert_eq!(fx.engine.finalized_view(), 0);

    // Epoch 1: five validators, quorum 4, leader of view 1 is 1.
    let c = Block::new(CHAIN, 2, 1, b.hash(), 7, 1, vec![]);
    let epoch1_proposal = Input::Message {
        from: 1,
        message: Message::Proposal(Box::new(Proposal {
            block: c.clone(),
            notarize: signed_in(&five, 1, 1, Notarize, 1, &c),
            parent: Some(b.header.clone()),
            parent_certificate: None,
            nullifications: vec![],
        })),
    };
    let old_epoch = |r: &DropReason| {
        matches!(
            r,
            DropReason::OldEpoch {
                epoch: 0,
                current: 1
            }
        )
    };
    let steps = vec![
        step(
            "an epoch-0 straggler's nullify is answered with B's finalization",
            vote_in(&five, 0, 3, Nullify, 3, &b),
            vec![
                Expect::SendCertificate(3, Finalize, 2),
                Expect::Dropped(old_epoch),
            ],
            vec![],
            1,
        ),
        step(
            "epoch-0 notarize votes for view 1 never count in epoch 1",
            vote_in(&five, 0, 0, Notarize, 1, &c),
            vec![Expect::Dropped(old_epoch)],
            vec![Expect::AnyJournal],
            1,
        ),
        step(
            "",
            vote_in(&five, 0, 3, Notarize, 1, &c),
            vec![],
            vec![Expect::AnyJournal],
            1,
        ),
        step(
            "the first block of epoch 1 builds on B like the first block on genesis",
            epoch1_proposal,
            vec![Expect::Verify(1)],
            vec![Expect::Dropped(|_| true)],
            1,
        ),
        step(
            "we notarize it in epoch 1",
            fx.verified(&c),
            vec![Expect::Journal(Notarize, 1)],
            vec![],
            1,
        ),
        step(
            "three of five is no quorum any more",
            vote_in(&five, 1, 0, Notarize, 1, &c),
            vec![],
            vec![Expect::Certificate(Notarize, 1)],
            1,
        ),
        step(
            "the added validator's vote makes four",
            vote_in(&five, 1, 4, Notarize, 1, &c),
            vec![
                Expect::Certificate(Notarize, 1),
                Expect::Journal(Finalize, 1),
            ],
            vec![],
            2,
        ),
    ];
    fx.run(steps);
    let epoch1_votes: Vec<Vote> = fx.journal().into_iter().filter(|v| v.epoch == 1).collect();
    assert_eq!(epoch1_votes.len(), 2, "notarize and finalize of epoch 1");
    let notarization = fx
        .log
        .iter()
        .rev()
        .find_map(|o| match o {
            Output::Broadcast(Message::Certificate(c)) if c.kind == Notarize => Some(c.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(notarization.epoch, 1);
    assert_eq!(notarization.signatures.len(), 4);
    let set1 = ValidatorSet::new(CHAIN, five.iter().map(SigningKey::public_key).collect());
    notarization
        .verify(&set1, &lotline_consensus::Zip215)
        .unwrap();

    // A restart in epoch 1 from B and its epoch-0 finality: epoch-0 votes
    // of the journal are over, the base is B, and the epoch-1 votes hold.
    let mut config = config(&five, 2);
    config.epoch = 1;
    let restored = Engine::restore(
        config,
        &fx.journal(),
        &fx.records(),
        Some((b.header.clone(), finality.clone())),
    )
    .unwrap();
    assert_eq!(
        (restored.epoch(), restored.view(), restored.finalized_view()),
        (1, 2, 0)
    );
    assert_eq!(restored.committed_height(), 1);
}

/// Before the switch the old epoch refuses blocks above the boundary, and a
/// voter takes a re-proposal of B justified by B's notarization.
#[test]
fn nothing_above_the_boundary_and_a_re_proposal_is_voted() {
    let mut fx = Fixture::new(4, 0);
    let b = fx.block(1, None, 0);
    let above = fx.block(2, Some(&b), 1);
    let notarized = fx.certificate(Notarize, 1, Some(&b), &[0, 1, 2]);
    let leader = 2;
    let reproposal = Input::Message {
        from: leader,
        message: Message::Proposal(Box::new(Proposal {
            block: b.clone(),
            notarize: fx.signed(leader, Notarize, 2, b.hash().0),
            parent: None,
            parent_certificate: Some(notarized.clone()),
            nullifications: vec![],
        })),
    };
    let steps = vec![
        step(
            "boundary at height 1",
            epoch1(&keys(5), 0, 2),
            vec![],
            vec![Expect::Dropped(|_| true)],
            1,
        ),
        step(
            "B proposed",
            fx.proposal(&b, None, None, vec![]),
            vec![Expect::Verify(1)],
            vec![],
            1,
        ),
        step(
            "we notarize B",
            fx.verified(&b),
            vec![Expect::Journal(Notarize, 1)],
            vec![],
            1,
        ),
        step(
            "B notarized: view 2",
            fx.vote(2, Notarize, 1, &b),
            vec![Expect::Certificate(Notarize, 1)],
            vec![],
            2,
        ),
        step(
            "a block above B in epoch 0 is refused",
            fx.proposal(&above, Some(&b), Some(notarized), vec![]),
            vec![Expect::Dropped(|r| {
                matches!(
                    r,
                    DropReason::TooFarAhead {
                        height: 2,
                        limit: 1
                    }
                )
            })],
            vec![Expect::Verify(2)],
            2,
        ),
    ];
    fx.run(steps);
    // A fresh voter that did not see B's view gets the re-proposal whole.
    let mut fresh = Fixture::new(4, 3);
    let steps = vec![
        step(
            "boundary at height 1",
            epoch1(&keys(5), 3, 2),
            vec![],
            vec![],
            1,
        ),
        step(
            "the re-proposal of B in view 2",
            reproposal,
            vec![Expect::Verify(2)],
            vec![Expect::Dropped(|_| true)],
            2,
        ),
        step(
            "verified: notarize(2, B)",
            Input::Verified {
                view: 2,
                block: b.hash(),
                valid: true,
            },
            vec![Expect::PersistBlock(1), Expect::Journal(Notarize, 2)],
            vec![],
            2,
        ),
    ];
    fresh.run(steps);
}
