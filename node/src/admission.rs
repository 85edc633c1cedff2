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
    STATEMENT_VERSION, STATEMENT_VERSION_PRIVATE, Statement, is_supported_version,
};
use lotline_genesis::{Genesis, PolicyError, RecipientError};

use crate::mempool::Admitted;

/// Longest accepted nonce.
pub const NONCE_CHARS_MAX: usize = 128;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AdmissionError {
    #[error("the attestation is not a valid DSSE envelope: {0}")]
    Decode(DecodeError),
    #[error("{0}")]
    Envelope(EnvelopeError),
    #[error("the payload is not a valid Lotline statement: {0}")]
    Statement(DecodeError),
    #[error(
        "statement version {0} is not supported (this node accepts {STATEMENT_VERSION} and {STATEMENT_VERSION_PRIVATE})"
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
    #[error("key {0} is not a client key of any member organisation")]
    UnknownKey(PublicKey),
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
    fn check(&self, statement: &Statement) -> Vec<AdmissionError>;
}

/// No local checks (peer traffic, tests).
#[derive(Debug, Clone, Copy)]
pub struct NoGuard;

impl StatementGuard for NoGuard {
    fn check(&self, _statement: &Statement) -> Vec<AdmissionError> {
        Vec::new()
    }
}

/// All problems of one attestation, most decisive first.
pub type Rejection = Vec<AdmissionError>;

/// Checks attestations against one genesis.
#[derive(Debug, Clone)]
pub struct Admission {
    genesis: Arc<Genesis>,
}

/// Passed every check that reads nothing but the envelope and the genesis;
/// the signature and the guard are still to come.
#[derive(Debug)]
struct Prechecked {
    envelope: Envelope,
    signer: PublicKey,
    statement: Statement,
}

impl Admission {
    pub fn new(genesis: Arc<Genesis>) -> Admission {
        Admission { genesis }
    }

    pub fn genesis(&self) -> &Genesis {
        &self.genesis
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

    /// Admits one decoded envelope.
    pub fn admit(&self, envelope: Envelope) -> Result<Admitted, Rejection> {
        self.admit_guarded(envelope, &NoGuard)
    }

    /// Admits one decoded envelope that also passes `guard`.
    pub fn admit_guarded(
        &self,
        envelope: Envelope,
        guard: &dyn StatementGuard,
    ) -> Result<Admitted, Rejection> {
        let checked = self.precheck(envelope)?;
        let signature = checked.envelope.signatures[0].sig;
        checked
            .signer
            .verify(&checked.envelope.pae(), &signature)
            .map_err(|_| vec![AdmissionError::BadSignature(checked.signer)])?;
        finish(checked, guard)
    }

    /// Admits a batch: each item on its own, signatures in one batch check
    /// (same ZIP-215 verdicts as single verification).
    pub fn admit_batch(&self, envelopes: Vec<Envelope>) -> Vec<Result<Admitted, Rejection>> {
        self.admit_batch_guarded(envelopes, &NoGuard)
    }

    /// [`Admission::admit_batch`], each item also passing `guard`.
    pub fn admit_batch_guarded(
        &self,
        envelopes: Vec<Envelope>,
        guard: &dyn StatementGuard,
    ) -> Vec<Result<Admitted, Rejection>> {
        let prechecked: Vec<Result<Prechecked, Rejection>> =
            envelopes.into_iter().map(|e| self.precheck(e)).collect();
        let paes: Vec<Option<Vec<u8>>> = prechecked
            .iter()
            .map(|c| c.as_ref().ok().map(|c| c.envelope.pae()))
            .collect();
        let mut batch = BatchVerifier::with_capacity(paes.len());
        for (checked, pae) in prechecked.iter().zip(&paes) {
            if let (Ok(checked), Some(pae)) = (checked, pae) {
                batch.push(checked.signer, pae, checked.envelope.signatures[0].sig);
            }
        }
        let mut verdicts = batch.verify().into_iter();
        prechecked
            .into_iter()
            .map(|checked| {
                let checked = checked?;
                match verdicts.next() {
                    Some(Ok(())) => finish(checked, guard),
                    _ => Err(vec![AdmissionError::BadSignature(checked.signer)]),
                }
            })
            .collect()
    }

    /// Every check that needs neither the signature nor the store.
    fn precheck(&self, envelope: Envelope) -> Result<Prechecked, Rejection> {
        let signer = envelope
            .check_shape()
            .map_err(|e| vec![AdmissionError::Envelope(e)])?;
        let statement = Statement::from_payload(&envelope.payload)
            .map_err(|e| vec![AdmissionError::Statement(e)])?;
        let mut problems = Vec::new();
        if !is_supported_version(statement.version) {
            problems.push(AdmissionError::Version(statement.version));
        }
        problems.extend(
            self.genesis
                .check_private_recipients(&statement)
                .into_iter()
                .map(AdmissionError::PrivateRecipients),
        );
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
        if statement.key != signer {
            problems.push(AdmissionError::KeyMismatch {
                statement: statement.key,
                signer,
            });
        }
        match self.genesis.key_owner(&signer) {
            None => problems.push(AdmissionError::UnknownKey(signer)),
            Some(owner) if owner.id != statement.org => problems.push(AdmissionError::WrongOrg {
                key: signer,
                owner: owner.id.clone(),
                claimed: statement.org.clone(),
            }),
            Some(owner) => {
                if let Err(e) = self.genesis.check_write(owner, &statement.event) {
                    problems.push(AdmissionError::Policy(e));
                }
            }
        }
        let event_problems = statement.event.validate();
        if !event_problems.is_empty() {
            problems.push(AdmissionError::InvalidEvent(event_problems));
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(Prechecked {
            envelope,
            signer,
            statement,
        })
    }
}

/// The last step, for an attestation whose signature verified: the guard's
/// checks against local state.
fn finish(checked: Prechecked, guard: &dyn StatementGuard) -> Result<Admitted, Rejection> {
    let problems = guard.check(&checked.statement);
    if !problems.is_empty() {
        return Err(problems);
    }
    let size = checked.envelope.payload.len() + 200;
    Ok(Admitted {
        id: checked.envelope.id(),
        statement: std::sync::Arc::new(checked.statement),
        envelope: checked.envelope,
        size,
    })
}
