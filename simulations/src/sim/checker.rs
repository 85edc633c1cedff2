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
//! * evidence: honest nodes only accuse Byzantine validators.

use std::collections::{BTreeMap, BTreeSet};

use std::sync::Arc;

use lotline_consensus::{Evidence, QuorumCertificate, Verifier};
use lotline_core::block::{Block, BlockHash, Header};
use lotline_core::certificate::{Finality, Signed};
use lotline_core::crypto::PublicKey;
use lotline_core::hash::Digest;
use lotline_core::validators::ValidatorSet;
use lotline_core::vote::{Vote, VoteKind};

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
    keys: Vec<PublicKey>,
    quorum: usize,
    byzantine: BTreeSet<u16>,
    set: ValidatorSet,
    decided: BTreeMap<u64, (BlockHash, u16)>,
    /// The height that committed each attestation (no id commits twice).
    committed_ids: BTreeMap<lotline_core::attestation::AttestationId, u64>,
    heads: BTreeMap<u16, Header>,
    sent: BTreeMap<(u16, u64), Sent>,
    verifier: Arc<MemoVerifier>,
    finalities: BTreeSet<BlockHash>,
    accusations: BTreeSet<([u8; 64], [u8; 64])>,
    pub violations: Vec<String>,
    pub evidence: u64,
    pub certificates: u64,
    /// The header time (the leader's clock when it built the block) of
    /// every committed height.
    pub proposed_ms: BTreeMap<u64, u64>,
}

impl Checker {
    pub fn new(
        chain_id: Digest,
        keys: Vec<PublicKey>,
        byzantine: BTreeSet<u16>,
        verifier: Arc<MemoVerifier>,
    ) -> Checker {
        let n = keys.len();
        // f = floor((n - 1) / 3); a quorum is everyone but f.
        let f = if n == 0 { 0 } else { (n - 1) / 3 };
        Checker {
            chain_id,
            quorum: n - f,
            byzantine,
            set: ValidatorSet::new(chain_id, keys.clone()),
            keys,
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

    fn valid(
        &mut self,
        signer: u16,
        msg: &[u8],
        signature: &lotline_core::crypto::Signature,
    ) -> bool {
        let Some(key) = self.keys.get(usize::from(signer)).copied() else {
            return false;
        };
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
        let distinct: BTreeSet<u16> = signatures.iter().map(|s| s.signer).collect();
        if distinct.len() < self.quorum {
            return Err(format!(
                "{} distinct signers, quorum is {}",
                distinct.len(),
                self.quorum
            ));
        }
        let msg = self.signing_bytes(kind, epoch, view, block);
        for s in signatures {
            if usize::from(s.signer) >= self.keys.len() {
                return Err(format!("signer {} is not a validator", s.signer));
            }
            if !self.valid(s.signer, &msg, &s.signature) {
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

    /// Whether `validator` follows the protocol in this run.
    pub fn is_honest(&self, validator: u16) -> bool {
        !self.byzantine.contains(&validator)
    }

    pub fn on_commit(&mut self, at_ms: u64, node: u16, block: &Block, finality: &Finality) {
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
            match finality.verify(&self.set, header) {
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
        if certificate.view != tip.view || certificate.block != tip.hash() {
            return Err("certificate is not for the last descendant".to_string());
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
        if vote.signer != node {
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
        let sent = self.sent.entry((node, vote.view)).or_default();
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
        if let Err(e) = evidence.verify(&self.set) {
            self.violation(
                at_ms,
                format!("node {node} produced evidence that does not verify: {e}"),
            );
        }
        let accused = evidence.signer();
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
        let keys: Vec<_> = (1..=4u8).map(|i| SigningKey::from_seed(&[i; 32])).collect();
        let validators = keys.iter().map(SigningKey::public_key).collect();
        let checker = Checker::new(
            Digest([1; 32]),
            validators,
            BTreeSet::from([3]),
            Arc::default(),
        );
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
        checker.on_commit(0, node, &block, &Finality::direct(certificate));
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
}
