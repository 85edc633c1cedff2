//! The invariants of a run, recomputed with the checker's own arithmetic
//! (commonware `fuzz/src/invariants.rs`): its own quorum size, its own
//! signing bytes, its own count of distinct signers, its own header links.
//! A bug in a production predicate can not hide from it; the production
//! predicates (`Finality::verify`, `Evidence::verify`) are checked as well.
//! Signature verdicts come from the run's [`MemoVerifier`], keyed by the
//! exact (key, message, signature) the checker built itself, so a memo hit
//! is the ZIP-215 verdict of the checker's own bytes.
//!
//! * agreement: no two honest nodes commit different blocks at one height;
//! * validity: each honest node's commits extend each other, bodies match
//!   headers, and every finality proves its block;
//! * certificates: every certificate an honest node sends has at least q
//!   distinct, valid signers;
//! * own votes: no honest node sends two conflicting votes (across
//!   restarts), and none sends a vote before it is durable;
//! * evidence: honest nodes only accuse Byzantine validators;
//! * epochs (`--reconfigure`): every certificate's quorum, signers and keys
//!   are those of its own epoch (computed here from the [`Roster`]), so no
//!   certificate mixes epochs and a validator outside an epoch (a removed
//!   one) never counts in it; every committed block is final by a
//!   certificate of the epoch its height belongs to, and only an epoch's
//!   boundary block may be certified in a later view than its own (the
//!   re-proposal).

use std::collections::{BTreeMap, BTreeSet};

use std::sync::Arc;

use lotline_consensus::{Evidence, QuorumCertificate, Verifier};
use lotline_core::attestation::AttestationId;
use lotline_core::block::{Block, BlockHash, Header};
use lotline_core::certificate::{Finality, Signed};
use lotline_core::crypto::PublicKey;
use lotline_core::hash::Digest;
use lotline_core::validators::ValidatorSet;
use lotline_core::vote::{Vote, VoteKind};

use crate::sim::roster::Roster;
use crate::sim::verifier::MemoVerifier;

const NAMESPACE: &[u8] = b"lotline/v1/vote";
const NOTARIZE: u8 = 0;
const NULLIFY: u8 = 1;
const FINALIZE: u8 = 2;
const DESCENDANTS_MAX: usize = 256;

#[derive(Debug, Default, Clone, Copy)]
struct Sent {
    notarize: Option<Digest>,
    nullify: bool,
    finalize: Option<Digest>,
}

#[derive(Debug)]
pub struct Checker {
    chain_id: Digest,
    roster: Roster,
    byzantine: BTreeSet<u16>,
    decided: BTreeMap<u64, (BlockHash, u16)>,
    /// The height that committed each attestation (no id commits twice).
    committed_ids: BTreeMap<lotline_core::attestation::AttestationId, u64>,
    heads: BTreeMap<u16, Header>,
    /// By (node, epoch, view).
    sent: BTreeMap<(u16, u64, u64), Sent>,
    verifier: Arc<MemoVerifier>,
    finalities: BTreeSet<BlockHash>,
    accusations: BTreeSet<([u8; 64], [u8; 64])>,
    pub violations: Vec<String>,
    pub evidence: u64,
    pub certificates: u64,
    /// Boundary blocks committed with a certificate of a later view.
    pub reproposed_boundaries: u64,
    /// The header time (the leader's clock when it built the block) of
    /// every committed height.
    pub proposed_ms: BTreeMap<u64, u64>,
}

impl Checker {
    pub fn new(roster: Roster, byzantine: BTreeSet<u16>, verifier: Arc<MemoVerifier>) -> Checker {
        Checker {
            chain_id: roster.chain_id(),
            roster,
            byzantine,
            decided: BTreeMap::new(),
            committed_ids: BTreeMap::new(),
            heads: BTreeMap::new(),
            sent: BTreeMap::new(),
            verifier,
            finalities: BTreeSet::new(),
            accusations: BTreeSet::new(),
            violations: Vec::new(),
            evidence: 0,
            certificates: 0,
            reproposed_boundaries: 0,
            proposed_ms: BTreeMap::new(),
        }
    }

    fn violation(&mut self, at_ms: u64, message: String) {
        self.violations.push(format!("t={at_ms}ms: {message}"));
    }

    fn signing_bytes(&self, kind: u8, epoch: u64, view: u64, block: &Digest) -> Vec<u8> {
        let mut bytes = NAMESPACE.to_vec();
        bytes.extend_from_slice(&self.chain_id.0);
        bytes.extend_from_slice(&epoch.to_be_bytes());
        bytes.push(kind);
        bytes.extend_from_slice(&view.to_be_bytes());
        bytes.extend_from_slice(&block.0);
        bytes
    }

    /// The validator keys of `epoch`, in order.
    fn keys(&self, epoch: u64) -> Vec<PublicKey> {
        self.roster
            .epoch(epoch)
            .map(|e| e.keys())
            .unwrap_or_default()
    }

    /// The production validator set of `epoch` (empty if there is none).
    fn set(&self, epoch: u64) -> ValidatorSet {
        ValidatorSet::new(self.chain_id, self.keys(epoch)).in_epoch(epoch)
    }

    fn valid(
        &mut self,
        key: PublicKey,
        msg: &[u8],
        signature: &lotline_core::crypto::Signature,
    ) -> bool {
        self.verifier.verify(&[(key, msg, *signature)]) == [true]
    }

    /// At least q distinct known signers, each signature valid.
    fn check_signatures(
        &mut self,
        kind: u8,
        epoch: u64,
        view: u64,
        block: &Digest,
        signatures: &[Signed],
    ) -> Result<(), String> {
        self.certificates += 1;
        // The epoch's own set: n, f = floor((n - 1) / 3), a quorum is
        // everyone but f.
        let keys = self.keys(epoch);
        let n = keys.len();
        if n == 0 {
            return Err(format!("epoch {epoch} does not exist"));
        }
        let quorum = n - (n - 1) / 3;
        let distinct: BTreeSet<u16> = signatures.iter().map(|s| s.signer).collect();
        if distinct.len() < quorum {
            return Err(format!(
                "{} distinct signers, quorum is {quorum} (epoch {epoch})",
                distinct.len(),
            ));
        }
        let msg = self.signing_bytes(kind, epoch, view, block);
        for s in signatures {
            let Some(key) = keys.get(usize::from(s.signer)).copied() else {
                return Err(format!(
                    "signer {} is not a validator of epoch {epoch}",
                    s.signer
                ));
            };
            if !self.valid(key, &msg, &s.signature) {
                return Err(format!("signature of {} does not verify", s.signer));
            }
        }
        Ok(())
    }

    /// A validator running with `Config::voting` off signed a vote: the
    /// rule that keeps a restored validator from contradicting votes it
    /// lost is broken.
    pub fn on_abstainer_vote(&mut self, at_ms: u64, node: u16, vote: &lotline_core::vote::Vote) {
        self.violation(
            at_ms,
            format!(
                "node {node} does not vote but signed {:?} in view {}",
                vote.kind, vote.view
            ),
        );
    }

    /// Whether node `validator` follows the protocol in this run.
    pub fn is_honest(&self, validator: u16) -> bool {
        !self.byzantine.contains(&validator)
    }

    /// Whether the proposer of `header` (an index of its height's epoch)
    /// is an honest node.
    pub fn proposer_is_honest(&self, header: &Header) -> bool {
        let epoch = self.roster.epoch_of_height(header.height);
        self.roster
            .node_of(epoch, header.proposer)
            .is_none_or(|node| self.is_honest(node))
    }

    /// The ids the engine handed over with `block` (`Output::Verify`,
    /// `Output::Commit`) must be its bodies' own: the node's block log
    /// checks the body against them instead of hashing it again.
    pub fn on_ids(&mut self, at_ms: u64, node: u16, block: &Block, ids: &[AttestationId]) {
        if block.ids() != ids {
            self.violation(
                at_ms,
                format!(
                    "node {node}: the engine's ids for height {} are not its bodies' hashes",
                    block.header.height
                ),
            );
        }
    }

    pub fn on_commit(
        &mut self,
        at_ms: u64,
        node: u16,
        block: &Block,
        ids: &[AttestationId],
        finality: &Finality,
    ) {
        self.on_ids(at_ms, node, block, ids);
        let header = &block.header;
        self.proposed_ms
            .entry(header.height)
            .or_insert(header.timestamp_ms);
        let hash = header.hash();
        let (expected_height, expected_parent) = match self.heads.get(&node) {
            Some(head) => (head.height + 1, head.hash()),
            None => (1, BlockHash(self.chain_id)),
        };
        if header.height != expected_height || header.parent != expected_parent {
            self.violation(
                at_ms,
                format!(
                    "node {node}: commit at height {} does not extend its head",
                    header.height
                ),
            );
        }
        if let Err(e) = block.check_body(&self.chain_id) {
            self.violation(
                at_ms,
                format!("node {node}: committed body does not match header: {e}"),
            );
        }
        match self.decided.get(&header.height) {
            Some((other, first)) if *other != hash => {
                let message = format!(
                    "AGREEMENT: node {node} committed {hash} at height {}, node {first} committed {other}",
                    header.height
                );
                self.violation(at_ms, message);
            }
            Some(_) => {}
            None => {
                self.decided.insert(header.height, (hash, node));
                for envelope in &block.attestations {
                    let id = envelope.id();
                    match self.committed_ids.insert(id, header.height) {
                        Some(earlier) if earlier != header.height => self.violation(
                            at_ms,
                            format!(
                                "attestation {id} committed at height {earlier} and again at {}",
                                header.height
                            ),
                        ),
                        _ => {}
                    }
                }
            }
        }
        if let Err(e) = self.check_finality(header, finality) {
            self.violation(
                at_ms,
                format!(
                    "node {node}: finality of height {} is invalid: {e}",
                    header.height
                ),
            );
        }
        // The production predicate too, once per committed block (its own
        // arithmetic above checks every node's finality).
        let key = hash;
        if !self.finalities.contains(&key) {
            let set = self.set(finality.certificate.epoch);
            match finality.verify(&set, header) {
                Ok(()) => {
                    self.finalities.insert(key);
                }
                Err(e) => self.violation(
                    at_ms,
                    format!(
                        "node {node}: Finality::verify fails at height {}: {e}",
                        header.height
                    ),
                ),
            }
        }
        self.heads.insert(node, header.clone());
    }

    fn check_finality(&mut self, header: &Header, finality: &Finality) -> Result<(), String> {
        if finality.descendants.len() > DESCENDANTS_MAX {
            return Err(format!("{} descendants", finality.descendants.len()));
        }
        let mut tip = header.clone();
        for next in &finality.descendants {
            if next.parent != tip.hash() || next.height != tip.height + 1 {
                return Err(format!(
                    "descendant at height {} does not link",
                    next.height
                ));
            }
            tip = next.clone();
        }
        let certificate = &finality.certificate;
        if certificate.block != tip.hash() {
            return Err("certificate is not for the last descendant".to_string());
        }
        let epoch = self.roster.epoch_of_height(tip.height);
        if certificate.epoch != epoch {
            return Err(format!(
                "height {} is of epoch {epoch}, its certificate of epoch {}",
                tip.height, certificate.epoch
            ));
        }
        if certificate.view != tip.view {
            // Only the boundary block, re-proposed in a later view of its
            // epoch (the certificate may prove its ancestors too).
            let boundary = self.roster.boundary(epoch) == Some(tip.height);
            if !boundary || certificate.view < tip.view {
                return Err(format!(
                    "certificate of view {} for a block of view {}",
                    certificate.view, tip.view
                ));
            }
            if header.height == tip.height && !self.finalities.contains(&tip.hash()) {
                self.reproposed_boundaries += 1;
            }
        }
        self.check_signatures(
            FINALIZE,
            certificate.epoch,
            certificate.view,
            &certificate.block.0,
            &certificate.signatures,
        )
    }

    pub fn on_certificate_sent(&mut self, at_ms: u64, node: u16, certificate: &QuorumCertificate) {
        let kind = match certificate.kind {
            VoteKind::Notarize => NOTARIZE,
            VoteKind::Nullify => NULLIFY,
            VoteKind::Finalize => FINALIZE,
        };
        let result = self.check_signatures(
            kind,
            certificate.epoch,
            certificate.view,
            &certificate.block,
            &certificate.signatures,
        );
        if let Err(e) = result {
            self.violation(
                at_ms,
                format!(
                    "node {node} sent a bad {:?} certificate for view {}: {e}",
                    certificate.kind, certificate.view
                ),
            );
        }
    }

    /// An own vote leaving honest `node`; `durable`: it is in the synced journal.
    pub fn on_vote_sent(&mut self, at_ms: u64, node: u16, vote: &Vote, durable: bool) {
        if vote.signer != self.roster.index_of(vote.epoch, node) {
            return;
        }
        if !durable {
            self.violation(
                at_ms,
                format!(
                    "node {node} sent {:?} for view {} before it was durable",
                    vote.kind, vote.view
                ),
            );
        }
        let sent = self.sent.entry((node, vote.epoch, vote.view)).or_default();
        let conflict = match vote.kind {
            VoteKind::Notarize => sent
                .notarize
                .replace(vote.block)
                .is_some_and(|b| b != vote.block),
            VoteKind::Finalize => {
                sent.nullify
                    || sent
                        .finalize
                        .replace(vote.block)
                        .is_some_and(|b| b != vote.block)
            }
            VoteKind::Nullify => {
                sent.nullify = true;
                sent.finalize.is_some()
            }
        };
        if conflict {
            self.violation(
                at_ms,
                format!(
                    "EQUIVOCATION: honest node {node} sent conflicting {:?} in view {}",
                    vote.kind, vote.view
                ),
            );
        }
    }

    pub fn on_evidence(&mut self, at_ms: u64, node: u16, evidence: &Evidence) {
        self.evidence += 1;
        // Several nodes report the same pair: check each pair once.
        if !self
            .accusations
            .insert((evidence.first.signature.0, evidence.second.signature.0))
        {
            return;
        }
        let epoch = evidence.first.epoch;
        if let Err(e) = evidence.verify(&self.set(epoch)) {
            self.violation(
                at_ms,
                format!("node {node} produced evidence that does not verify: {e}"),
            );
        }
        let accused = self
            .roster
            .node_of(epoch, evidence.signer())
            .unwrap_or(evidence.signer());
        if !self.byzantine.contains(&accused) {
            self.violation(
                at_ms,
                format!(
                    "node {node} accused honest validator {accused} in view {}",
                    evidence.view()
                ),
            );
        }
    }

    /// Committed height of `node`.
    pub fn height(&self, node: u16) -> u64 {
        self.heads.get(&node).map_or(0, |h| h.height)
    }

    /// True if some violation is an agreement violation.
    pub fn agreement_violated(&self) -> bool {
        self.violations.iter().any(|v| v.contains("AGREEMENT"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lotline_core::crypto::SigningKey;

    fn setup() -> (Checker, Vec<SigningKey>) {
        let roster = Roster::fixed(Digest([1; 32]), 9, 4);
        let keys: Vec<_> = (0..4u16).map(|i| roster.key(0, i)).collect();
        let checker = Checker::new(roster, BTreeSet::from([3]), Arc::default());
        (checker, keys)
    }

    fn commit(checker: &mut Checker, keys: &[SigningKey], node: u16, salt: u8, signers: &[u16]) {
        let block = Block::new(
            Digest([1; 32]),
            1,
            1,
            BlockHash(Digest([1; 32])),
            salt.into(),
            1,
            vec![],
        );
        let hash = block.hash();
        let signatures = signers
            .iter()
            .map(|&s| Signed {
                signer: s,
                signature: Vote::sign(
                    &keys[usize::from(s)],
                    s,
                    &Digest([1; 32]),
                    VoteKind::Finalize,
                    1,
                    hash.0,
                )
                .signature,
            })
            .collect();
        let certificate = lotline_core::certificate::Certificate {
            epoch: 0,
            view: 1,
            block: hash,
            signatures,
        };
        let ids = block.ids();
        checker.on_commit(0, node, &block, &ids, &Finality::direct(certificate));
    }

    #[test]
    fn catches_engine_ids_that_are_not_the_bodies_hashes() {
        let (mut checker, keys) = setup();
        let envelope = |n: u8| lotline_core::Envelope::sign(vec![n], &keys[0]);
        let block = Block::new(
            Digest([1; 32]),
            1,
            1,
            BlockHash(Digest([1; 32])),
            0,
            1,
            vec![envelope(1), envelope(2)],
        );
        checker.on_ids(0, 0, &block, &block.ids());
        assert!(checker.violations.is_empty(), "{:?}", checker.violations);
        let mut swapped = block.ids();
        swapped.reverse();
        checker.on_ids(0, 0, &block, &swapped);
        assert!(
            checker
                .violations
                .iter()
                .any(|v| v.contains("not its bodies' hashes"))
        );
    }

    #[test]
    fn catches_disagreement_short_certificates_and_honest_equivocation() {
        let (mut checker, keys) = setup();
        commit(&mut checker, &keys, 0, 0, &[0, 1, 2]);
        assert!(checker.violations.is_empty(), "{:?}", checker.violations);
        commit(&mut checker, &keys, 1, 1, &[0, 1, 2]);
        assert!(checker.agreement_violated());
        let (mut checker, keys) = setup();
        commit(&mut checker, &keys, 0, 0, &[0, 1]);
        assert!(checker.violations.iter().any(|v| v.contains("quorum is 3")));
        let (mut checker, keys) = setup();
        let vote = |kind, block| Vote::sign(&keys[0], 0, &Digest([1; 32]), kind, 4, block);
        checker.on_vote_sent(0, 0, &vote(VoteKind::Nullify, Digest::ZERO), true);
        assert!(checker.violations.is_empty());
        checker.on_vote_sent(0, 0, &vote(VoteKind::Finalize, Digest([2; 32])), true);
        assert!(
            checker
                .violations
                .iter()
                .any(|v| v.contains("EQUIVOCATION"))
        );
        checker.on_vote_sent(0, 0, &vote(VoteKind::Notarize, Digest([2; 32])), false);
        assert!(
            checker
                .violations
                .iter()
                .any(|v| v.contains("before it was durable"))
        );
    }

    /// Positive control of the epoch checks: a certificate counts only
    /// signers of its own epoch, signed over its own epoch.
    #[test]
    fn a_certificate_with_an_outsider_or_another_epochs_bytes_fails() {
        let mut rng = crate::sim::rng::Rng::new(3);
        let roster = Roster::draw(Digest([1; 32]), 3, (4, 2, 4), 5, &mut rng);
        let e1 = roster.epoch(1).unwrap().clone();
        let outsider = (0..6u16).find(|n| !e1.members.contains(n)).unwrap();
        let quorum = e1.n() - (e1.n() - 1) / 3;
        let certify = |epoch_signed: u64, signers: &[u16]| {
            let signatures = signers
                .iter()
                .map(|&node| {
                    let index = roster.index_of(1, node);
                    let vote = Vote::sign_in(
                        &roster.key(1, node),
                        index,
                        &Digest([1; 32]),
                        epoch_signed,
                        VoteKind::Notarize,
                        2,
                        Digest([7; 32]),
                    );
                    Signed {
                        signer: index,
                        signature: vote.signature,
                    }
                })
                .collect();
            QuorumCertificate {
                kind: VoteKind::Notarize,
                epoch: 1,
                view: 2,
                block: Digest([7; 32]),
                signatures,
            }
        };
        let members: Vec<u16> = e1.members[..quorum].to_vec();
        let mut checker = Checker::new(roster.clone(), BTreeSet::new(), Arc::default());
        checker.on_certificate_sent(0, 0, &certify(1, &members));
        assert!(checker.violations.is_empty(), "{:?}", checker.violations);
        let mut with_outsider = members.clone();
        with_outsider[0] = outsider;
        checker.on_certificate_sent(0, 0, &certify(1, &with_outsider));
        assert!(
            checker
                .violations
                .iter()
                .any(|v| v.contains("not a validator of epoch 1")),
            "{:?}",
            checker.violations
        );
        let mut checker = Checker::new(roster.clone(), BTreeSet::new(), Arc::default());
        checker.on_certificate_sent(0, 0, &certify(0, &members));
        assert!(
            checker
                .violations
                .iter()
                .any(|v| v.contains("does not verify")),
            "{:?}",
            checker.violations
        );
    }
}
