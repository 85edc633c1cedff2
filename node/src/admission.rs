//! Admission: what may enter the mempool.
//!
//! In order, cheapest first: decode with size limits; envelope shape (payload
//! type, one signature, key id); statement (version, no unknown fields, chain
//! id, nonce); the key belongs to a member org and that org is the one the
//! statement names; the org's role may emit this event; the event is valid.
//! Then the signature is verified (ZIP-215), once per attestation: for a
//! batch, in one batch verification. Only an attestation whose signature
//! verifies reaches anything that reads the store: the [`StatementGuard`]
//! (custody lookups, graph walks of thousands of nodes) here, the duplicate
//! lookup at insertion. Submitting needs no credential, so a forged envelope
//! must cost the node a signature check and nothing more.
//!
//! Membership (which keys belong to which org, the write policy) is the
//! membership in force at the height of the block the attestation enters
//! ([`crate::governance`]): for a submission, the next block's height; for
//! a proposal, the proposal's own height, with the governance transactions
//! of its uncommitted ancestors ([`Admission::admit_batch_at`],
//! [`Admission::check_at`]). Governance transactions (their own payload
//! type) are admitted here too: signatures of a threshold of member orgs
//! instead of one signature and a statement.
//!
//! A client's submission (the API, EPCIS capture; not peers' gossip or
//! proposals) must also be issued within a bound of this node's clock
//! ([`Admission::bounding_issued_at`], `[admission] issued_at_skew_ms`):
//! `issuedAtMs` chooses a record's key period (retention, crypto-shredding,
//! `docs/confidentiality.md`), so a statement dated years ahead would keep
//! its private data readable years past its retention, and one dated back
//! would lose it early. It is a local rule, not a consensus rule (it reads
//! a clock): a proposal is judged without it, and gossip too, so a peer
//! whose clock is a little off is not penalised for relaying.
//!
//! Problems that do not depend on each other are all reported together (R7):
//! a caller fixing one should not discover the next only on the next try.
//! A bad signature is decisive: the guard's problems are only judged for a
//! statement its signer really made.

use std::sync::Arc;

use lotline_core::attestation::{AttestationId, Envelope, EnvelopeError};
use lotline_core::codec::DecodeError;
use lotline_core::crypto::{BatchVerifier, PublicKey};
use lotline_core::epcis::EventProblem;
use lotline_core::hash::Digest;
use lotline_core::statement::{
    STATEMENT_VERSION, STATEMENT_VERSION_COMPACT, STATEMENT_VERSION_PRIVATE, Statement,
    is_supported_version,
};
use lotline_genesis::governance::{self, GovernanceError, History, Membership};
use lotline_genesis::{Genesis, PolicyError, RecipientError};

use crate::governance::Governance;
use crate::mempool::Admitted;
use crate::parsed::ParsedStatement;

/// Longest accepted nonce.
pub const NONCE_CHARS_MAX: usize = 128;

/// Default of `[admission] issued_at_skew_ms`: how far a client's
/// `issuedAtMs` may be from the node's clock, either way (5 minutes).
pub const ISSUED_AT_SKEW_MS_DEFAULT: u64 = 300_000;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AdmissionError {
    #[error("the attestation is not a valid DSSE envelope: {0}")]
    Decode(DecodeError),
    #[error("{0}")]
    Envelope(EnvelopeError),
    #[error("the payload is not a valid Lotline statement: {0}")]
    Statement(DecodeError),
    #[error(
        "statement version {0} is not supported (this node accepts {STATEMENT_VERSION}, {STATEMENT_VERSION_PRIVATE} and {STATEMENT_VERSION_COMPACT})"
    )]
    Version(u16),
    /// A private section not wrapped to exactly the orgs genesis entitles
    /// ([`lotline_genesis::Genesis::check_private_recipients`]).
    #[error("{0}")]
    PrivateRecipients(RecipientError),
    #[error("statement is for chain {got}, this node serves chain {expected}")]
    WrongChain { expected: Digest, got: Digest },
    #[error("nonce must be 1 to {NONCE_CHARS_MAX} characters, got {0}")]
    Nonce(usize),
    /// A client's `issuedAtMs` further than the node's bound from its
    /// clock ([`Admission::bounding_issued_at`]).
    #[error(
        "issuedAtMs {issued_at_ms} is {} ms {} this node's clock ({now_ms}); at most {skew_ms} ms is accepted, because issuedAtMs decides how long private fields are kept",
        issued_at_ms.abs_diff(*now_ms),
        if issued_at_ms < now_ms { "behind" } else { "ahead of" }
    )]
    IssuedAt {
        issued_at_ms: u64,
        now_ms: u64,
        skew_ms: u64,
    },
    #[error("key {0} is not a client key of any member organisation")]
    UnknownKey(PublicKey),
    #[error("key {key} was revoked by the consortium (from height {from})")]
    RevokedKey { key: PublicKey, from: u64 },
    /// A governance transaction that is malformed, under-signed or does
    /// not apply ([`lotline_genesis::governance`]).
    #[error("{0}")]
    Governance(GovernanceError),
    #[error("statement names key {statement} but the envelope is signed by {signer}")]
    KeyMismatch {
        statement: PublicKey,
        signer: PublicKey,
    },
    #[error("key {key} belongs to org {owner:?}, but the statement claims org {claimed:?}")]
    WrongOrg {
        key: PublicKey,
        owner: String,
        claimed: String,
    },
    #[error("{0}")]
    Policy(PolicyError),
    #[error("the event is not valid ({} problem(s))", .0.len())]
    InvalidEvent(Vec<EventProblem>),
    #[error("the signature does not verify under key {0}")]
    BadSignature(PublicKey),
    #[error("attestation {0} was already submitted")]
    Duplicate(AttestationId),
    #[error("the node is overloaded: {0}")]
    Overloaded(String),
    /// The duplicate check could not read the store
    /// ([`crate::store::StoreReader::check_uncommitted`]): retryable.
    #[error("{0}")]
    StoreUnavailable(String),
    #[error("{0}")]
    Lineage(LineageProblem),
    /// The org already committed this event, or the same capture holds it
    /// earlier (same CBV 2.0 event hash): [`crate::epcis::dedup`].
    #[error("repeats the event of attestation {first}{}", event_id.as_ref().map(|id| format!(" (eventID {id})")).unwrap_or_default())]
    DuplicateEvent {
        hash: String,
        first: AttestationId,
        event_id: Option<String>,
    },
    /// Master data about an identifier whose master data another org
    /// stated first ([`crate::epcis::master_data`]).
    #[error("the master data of {identifier} belongs to org {owner:?}, which stated it first")]
    NotOwner { identifier: String, owner: String },
}

/// A problem with what an event says about lineage, judged against the
/// committed chain ([`StatementGuard`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineageProblem {
    #[error("{field}: {id} is held by {holder}, not by the submitting org")]
    NotHolder {
        field: String,
        id: String,
        holder: String,
    },
    #[error("{field}: {id} no longer exists (decommissioned or destroyed)")]
    Ended { field: String, id: String },
    #[error("{field}: {id} would become its own ancestor (cyclic lineage)")]
    Cycle { field: String, id: String },
}

impl LineageProblem {
    pub fn field(&self) -> &str {
        match self {
            LineageProblem::NotHolder { field, .. }
            | LineageProblem::Ended { field, .. }
            | LineageProblem::Cycle { field, .. } => field,
        }
    }
}

/// Checks of a valid statement against local state, for submissions from
/// clients only: peers' proposals and gossip are judged by consensus rules
/// alone, which must not depend on how far this node's store has got.
pub trait StatementGuard {
    fn check(&self, statement: &ParsedStatement) -> Vec<AdmissionError>;
}

/// No local checks (peer traffic, tests).
#[derive(Debug, Clone, Copy)]
pub struct NoGuard;

impl StatementGuard for NoGuard {
    fn check(&self, _statement: &ParsedStatement) -> Vec<AdmissionError> {
        Vec::new()
    }
}

/// All problems of one attestation, most decisive first.
pub type Rejection = Vec<AdmissionError>;

/// Checks attestations against one genesis and its membership history.
#[derive(Debug, Clone)]
pub struct Admission {
    genesis: Arc<Genesis>,
    governance: Arc<Governance>,
    /// Largest distance of a client's `issuedAtMs` from the clock, in ms;
    /// `None`: unbounded (tests and tools; a node always sets it).
    issued_at_skew_ms: Option<u64>,
}

/// Where an attestation is judged: the membership history, the height of
/// the block it would enter, and whether it is a new submission (which
/// also gets the checks a block does not make: a governance change whose
/// effect height is past, or that does not apply, is refused).
#[derive(Clone, Copy)]
struct At<'a> {
    history: &'a History,
    height: u64,
    submission: bool,
    /// A client's submission: `issuedAtMs` is bounded by the clock.
    client: bool,
}

/// Passed every check that reads nothing but the envelope and the
/// membership; a statement's signature and the guard are still to come.
#[derive(Debug)]
struct Prechecked {
    envelope: Envelope,
    kind: Kind,
}

/// Not boxed: one lives per attestation for the length of its admission,
/// and the statement moves on into an `Arc` (boxing adds an allocation on
/// the write path for nothing).
#[derive(Debug)]
#[expect(clippy::large_enum_variant)]
enum Kind {
    Statement {
        signer: PublicKey,
        statement: Statement,
    },
    /// Signatures already verified (a handful, one by one).
    Governance,
}

impl Admission {
    /// Admission for a chain with no governance transaction (tests, tools).
    pub fn new(genesis: Arc<Genesis>) -> Admission {
        Admission::with_governance(Arc::new(Governance::new(genesis)))
    }

    /// Admission that follows the node's membership history.
    pub fn with_governance(governance: Arc<Governance>) -> Admission {
        Admission {
            genesis: governance.history().genesis().clone(),
            governance,
            issued_at_skew_ms: None,
        }
    }

    /// Refuses a client's statement issued more than `skew_ms` from this
    /// node's clock, either way ([`AdmissionError::IssuedAt`]).
    pub fn bounding_issued_at(mut self, skew_ms: u64) -> Admission {
        self.issued_at_skew_ms = Some(skew_ms);
        self
    }

    pub fn genesis(&self) -> &Genesis {
        &self.genesis
    }

    pub fn governance(&self) -> &Arc<Governance> {
        &self.governance
    }

    /// Admits one envelope given as JSON bytes.
    pub fn admit_json(
        &self,
        body: &[u8],
        guard: &dyn StatementGuard,
    ) -> Result<Admitted, Rejection> {
        let envelope = Envelope::from_json(body).map_err(|e| vec![AdmissionError::Decode(e)])?;
        self.admit_guarded(envelope, guard)
    }

    /// Admits one decoded envelope the node made itself (no clock bound).
    pub fn admit(&self, envelope: Envelope) -> Result<Admitted, Rejection> {
        self.admit_one(envelope, &NoGuard, false)
    }

    /// Admits one decoded envelope from a client that also passes `guard`.
    pub fn admit_guarded(
        &self,
        envelope: Envelope,
        guard: &dyn StatementGuard,
    ) -> Result<Admitted, Rejection> {
        self.admit_one(envelope, guard, true)
    }

    fn admit_one(
        &self,
        envelope: Envelope,
        guard: &dyn StatementGuard,
        client: bool,
    ) -> Result<Admitted, Rejection> {
        let history = self.governance.history();
        let at = self.next(&history, client);
        let checked = self.precheck(envelope, at)?;
        if let Kind::Statement { signer, .. } = &checked.kind {
            let signature = checked.envelope.signatures[0].sig;
            signer
                .verify(&checked.envelope.pae(), &signature)
                .map_err(|_| vec![AdmissionError::BadSignature(*signer)])?;
        }
        finish(checked, None, guard)
    }

    /// Admits a batch from peers' gossip: each item on its own, signatures
    /// in one batch check (same ZIP-215 verdicts as single verification).
    ///
    /// Judged by the block rules at the next height, not a new
    /// submission's: the node that took it from its client made those
    /// checks at its own next height. A peer one block ahead would
    /// otherwise refuse a governance change effective at the height it has
    /// just passed, which a block still admits (it takes effect at the
    /// next height), and the change would wait in the one pool that holds
    /// it until that node leads a view: on an idle chain, the heartbeat.
    ///
    /// Each envelope comes with the id this node hashed it to (gossip looks
    /// every item up in the pool before admitting it), so it is not hashed
    /// again.
    pub fn admit_batch(
        &self,
        hashed: Vec<(AttestationId, Envelope)>,
    ) -> Vec<Result<Admitted, Rejection>> {
        let history = self.governance.history();
        let at = At {
            submission: false,
            ..self.next(&history, false)
        };
        let items = hashed.into_iter().map(|(id, e)| (Some(id), e)).collect();
        self.batch(items, &NoGuard, at)
    }

    /// [`Admission::admit_batch`] for a client's batch: each item also
    /// passes `guard` and the clock bound.
    pub fn admit_batch_guarded(
        &self,
        envelopes: Vec<Envelope>,
        guard: &dyn StatementGuard,
    ) -> Vec<Result<Admitted, Rejection>> {
        let history = self.governance.history();
        let at = self.next(&history, true);
        let items = envelopes.into_iter().map(|e| (None, e)).collect();
        self.batch(items, guard, at)
    }

    /// Admits a proposal's attestations for a block at `height`, under
    /// `history` (the committed one extended with the proposal's
    /// uncommitted ancestors): consensus rules only, no local guard. Each
    /// comes with its id as the engine hashed it (`Output::Verify`).
    pub fn admit_batch_at(
        &self,
        hashed: Vec<(AttestationId, Envelope)>,
        history: &History,
        height: u64,
    ) -> Vec<Result<Admitted, Rejection>> {
        let at = At {
            history,
            height,
            submission: false,
            client: false,
        };
        let items = hashed.into_iter().map(|(id, e)| (Some(id), e)).collect();
        self.batch(items, &NoGuard, at)
    }

    fn next<'a>(&self, history: &'a History, client: bool) -> At<'a> {
        At {
            history,
            height: self.governance.next_height(),
            submission: true,
            client,
        }
    }

    /// The clock bound on a client's `issuedAtMs`, if it is broken.
    fn issued_at_problem(&self, statement: &Statement) -> Option<AdmissionError> {
        let skew_ms = self.issued_at_skew_ms?;
        let now_ms = crate::clock::unix_ms();
        (statement.issued_at_ms.abs_diff(now_ms) > skew_ms).then_some(AdmissionError::IssuedAt {
            issued_at_ms: statement.issued_at_ms,
            now_ms,
            skew_ms,
        })
    }

    /// Admits `items`, each with its id if the caller hashed it already.
    fn batch(
        &self,
        items: Vec<(Option<AttestationId>, Envelope)>,
        guard: &dyn StatementGuard,
        at: At<'_>,
    ) -> Vec<Result<Admitted, Rejection>> {
        let (ids, prechecked): (
            Vec<Option<AttestationId>>,
            Vec<Result<Prechecked, Rejection>>,
        ) = items
            .into_iter()
            .map(|(id, e)| (id, self.precheck(e, at)))
            .unzip();
        let paes: Vec<Option<(PublicKey, Vec<u8>)>> = prechecked
            .iter()
            .map(|c| match c {
                Ok(Prechecked {
                    envelope,
                    kind: Kind::Statement { signer, .. },
                }) => Some((*signer, envelope.pae())),
                _ => None,
            })
            .collect();
        let mut batch = BatchVerifier::with_capacity(paes.len());
        for (checked, pae) in prechecked.iter().zip(&paes) {
            if let (Ok(checked), Some((signer, pae))) = (checked, pae) {
                batch.push(*signer, pae, checked.envelope.signatures[0].sig);
            }
        }
        let mut verdicts = batch.verify().into_iter();
        prechecked
            .into_iter()
            .zip(ids)
            .map(|(checked, id)| {
                let checked = checked?;
                let Kind::Statement { signer, .. } = &checked.kind else {
                    return finish(checked, id, guard);
                };
                match verdicts.next() {
                    Some(Ok(())) => finish(checked, id, guard),
                    _ => Err(vec![AdmissionError::BadSignature(*signer)]),
                }
            })
            .collect()
    }

    /// Every check that needs neither a statement's signature nor the store.
    fn precheck(&self, envelope: Envelope, at: At<'_>) -> Result<Prechecked, Rejection> {
        if envelope.payload_type == governance::PAYLOAD_TYPE {
            let checked = if at.submission {
                at.history.check_new(&envelope, at.height)
            } else {
                at.history.approve(&envelope, at.height)
            };
            return match checked {
                Ok(_) => Ok(Prechecked {
                    envelope,
                    kind: Kind::Governance,
                }),
                Err(e) => Err(vec![AdmissionError::Governance(e)]),
            };
        }
        let signer = envelope
            .check_shape()
            .map_err(|e| vec![AdmissionError::Envelope(e)])?;
        let statement = Statement::from_payload(&envelope.payload)
            .map_err(|e| vec![AdmissionError::Statement(e)])?;
        let mut problems = Vec::new();
        if !is_supported_version(statement.version) {
            problems.push(AdmissionError::Version(statement.version));
        }
        let chain_id = self.genesis.chain_id();
        if statement.chain_id != chain_id {
            problems.push(AdmissionError::WrongChain {
                expected: chain_id,
                got: statement.chain_id,
            });
        }
        if statement.nonce.is_empty() || statement.nonce.chars().count() > NONCE_CHARS_MAX {
            problems.push(AdmissionError::Nonce(statement.nonce.chars().count()));
        }
        if at.client {
            problems.extend(self.issued_at_problem(&statement));
        }
        if statement.key != signer {
            problems.push(AdmissionError::KeyMismatch {
                statement: statement.key,
                signer,
            });
        }
        let membership = at.history.at(at.height);
        member_problems(&membership, signer, &statement, &mut problems);
        let event_problems = statement.event.validate();
        if !event_problems.is_empty() {
            problems.push(AdmissionError::InvalidEvent(event_problems));
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(Prechecked {
            envelope,
            kind: Kind::Statement { signer, statement },
        })
    }
}

/// Whether an attestation admitted earlier (its signature verified) may
/// still enter a block at `height` under `history`: its key may have been
/// rotated away or revoked, its org removed, the policy changed since.
pub fn check_at(admitted: &Admitted, history: &History, height: u64) -> Result<(), Rejection> {
    match &admitted.statement {
        Some(statement) => {
            let membership = history.at(height);
            let mut problems = Vec::new();
            member_problems(&membership, statement.key, statement, &mut problems);
            if problems.is_empty() {
                Ok(())
            } else {
                Err(problems)
            }
        }
        None => history
            .approve(&admitted.envelope, height)
            .map(drop)
            .map_err(|e| vec![AdmissionError::Governance(e)]),
    }
}

/// Items a leader took from the pool, sorted for a block at one of
/// `heights` (the leader may build on uncommitted parents, so it does not
/// know which): `keep` passes at every height; `drop` fails at the first
/// (it can never enter again: membership changes only take effect, they
/// are not undone); the rest pass now but not at a later height and are
/// left out of this proposal. With no governance transaction in the
/// history nothing is checked: the genesis membership admitted them.
pub fn sort_for_proposal(
    items: Vec<Admitted>,
    history: &History,
    heights: std::ops::RangeInclusive<u64>,
) -> (Vec<Admitted>, Vec<(Admitted, Rejection)>) {
    if history.entries().is_empty() {
        return (items, Vec::new());
    }
    let first = *heights.start();
    let mut keep = Vec::with_capacity(items.len());
    let mut dropped = Vec::new();
    for item in items {
        if let Err(rejection) = check_at(&item, history, first) {
            dropped.push((item, rejection));
        } else if heights.clone().all(|h| check_at(&item, history, h).is_ok()) {
            keep.push(item);
        }
    }
    (keep, dropped)
}

/// What the membership says about `signer` writing `statement`: the key
/// is a member org's (not revoked), that org is the one named, its role may
/// write the event, and a private section is wrapped to the entitled orgs.
fn member_problems(
    membership: &Membership,
    signer: PublicKey,
    statement: &Statement,
    problems: &mut Vec<AdmissionError>,
) {
    let rules = membership.rules();
    problems.extend(
        rules
            .check_private_recipients(statement)
            .into_iter()
            .map(AdmissionError::PrivateRecipients),
    );
    match rules.key_owner(&signer) {
        None => problems.push(match membership.revoked_from(&signer) {
            Some(from) => AdmissionError::RevokedKey { key: signer, from },
            None => AdmissionError::UnknownKey(signer),
        }),
        Some(owner) if owner.id != statement.org => problems.push(AdmissionError::WrongOrg {
            key: signer,
            owner: owner.id.clone(),
            claimed: statement.org.clone(),
        }),
        Some(owner) => {
            if let Err(e) = rules.check_write(owner, &statement.event) {
                problems.push(AdmissionError::Policy(e));
            }
        }
    }
}

/// The last step, for an attestation whose signature verified: the guard's
/// checks against local state (statements only: the guard judges events).
/// The last step of admission: the local guard, then the pooled form.
/// `id` is the envelope's if the caller hashed it already.
fn finish(
    checked: Prechecked,
    id: Option<AttestationId>,
    guard: &dyn StatementGuard,
) -> Result<Admitted, Rejection> {
    let Prechecked { envelope, kind } = checked;
    let statement = match kind {
        Kind::Statement { statement, .. } => {
            let statement = ParsedStatement::new(statement);
            let problems = guard.check(&statement);
            if !problems.is_empty() {
                return Err(problems);
            }
            Some(Arc::new(statement))
        }
        Kind::Governance => None,
    };
    Ok(match id {
        Some(id) => Admitted::hashed(id, envelope, statement),
        None => Admitted::new(envelope, statement),
    })
}

#[cfg(test)]
mod tests {
    use lotline_core::SigningKey;
    use lotline_core::block::{Block, Header};
    use lotline_genesis::governance::{self, Change, GovernanceError, Proposal};

    use super::*;
    use crate::consensus::epoch::tests::{four_orgs, key};

    /// A node key rotation effective at `effective`, signed by orgs o1..o3
    /// (q = 3 of 4).
    fn rotation(genesis: &Genesis, effective: u64) -> Envelope {
        let mut envelope = governance::unsigned(&Proposal {
            version: governance::VERSION,
            chain_id: genesis.chain_id(),
            effective_height: effective,
            nonce: "rotate-2".into(),
            reason: String::new(),
            change: Change::RotateNodeKey {
                old_key: key(2),
                new_key: key(9),
            },
        });
        for i in 1..=3u8 {
            governance::add_signature(&mut envelope, &SigningKey::from_seed(&[10 + i; 32]));
        }
        envelope
    }

    /// Goal: a governance change one node admitted from its client at
    /// height h is relayed by a peer that has already committed h (CI saw
    /// such a change wait 40 s in the one pool that held it). Method: a
    /// node at height 2 judges a change effective at 2: refused from a
    /// client (its effect height has passed), admitted from gossip (a
    /// block at 3 takes it, effective at its next boundary).
    #[test]
    fn a_peer_relays_a_change_whose_effect_height_it_has_passed() {
        let genesis = Arc::new(four_orgs());
        let governance = Arc::new(Governance::new(genesis.clone()));
        let admission = Admission::with_governance(governance.clone());
        let mut parent = Header::genesis_parent(&genesis.chain_id());
        for height in 1..=2 {
            let block = Block::new(genesis.chain_id(), height, height, parent, 0, 0, vec![]);
            parent = block.hash();
            governance.commit(&block);
        }
        let change = rotation(&genesis, 2);

        let refused = admission.admit(change.clone()).unwrap_err();
        assert!(
            matches!(
                refused.as_slice(),
                [AdmissionError::Governance(GovernanceError::PastHeight {
                    effective: 2,
                    next: 3
                })]
            ),
            "{refused:?}"
        );
        let relayed = admission.admit_batch(vec![(change.id(), change.clone())]);
        assert!(matches!(relayed.as_slice(), [Ok(_)]), "{relayed:?}");

        // Gossip is still judged: one signature short of the threshold.
        let mut short =
            governance::unsigned(&governance::decode(&change, &genesis.chain_id()).unwrap());
        governance::add_signature(&mut short, &SigningKey::from_seed(&[11; 32]));
        let relayed = admission.admit_batch(vec![(short.id(), short)]);
        assert!(
            matches!(
                relayed.as_slice(),
                [Err(e)] if matches!(e.as_slice(), [AdmissionError::Governance(GovernanceError::UnderThreshold { .. })])
            ),
            "{relayed:?}"
        );
    }
}
