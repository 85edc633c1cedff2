//! Errors of the SDK, sorted by who is at fault: the transport, the node (it
//! said no, or said something we do not understand), the caller's event, or
//! the proof. Every variant says what is known and what is not.

use lotline_core::AttestationId;
use lotline_core::api::Problem;
use lotline_core::attestation::EnvelopeError;
use lotline_core::epcis::EventProblem;
use lotline_genesis::keys::KeyFileError;
use lotline_genesis::{GenesisError, ReceiptVerifyError};

/// Everything that can go wrong in the SDK.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SdkError {
    /// The request did not complete (connection refused or reset, DNS, an
    /// unreadable body). Whether the node saw a submit is unknown: look the
    /// attestation up by its id before re-submitting (a re-submit of the same
    /// envelope is answered `duplicate` if it did arrive).
    #[error("HTTP transport error: {0}")]
    Http(#[from] reqwest::Error),

    /// The node answered with an RFC 9457 problem: it refused the request.
    /// [`Problem::slug`] is the stable reason (`duplicate`, `bad-signature`,
    /// `unknown-key`, `revoked-key`, `wrong-org`, `wrong-chain`, `policy-denied`,
    /// `invalid-event`, `malformed`, `too-large`, `governance-under-threshold`,
    /// `governance-invalid`, ...).
    #[error("the node rejected the request (HTTP {status}, {}): {}", problem.slug(), problem.detail)]
    Rejected { status: u16, problem: Problem },

    /// The node answered something this SDK does not understand: an
    /// unexpected status, or a body that is not the documented JSON.
    #[error("unexpected response from the node (HTTP {status}): {body_snippet}")]
    UnexpectedResponse { status: u16, body_snippet: String },

    /// The event is not valid EPCIS 2.0 (or not valid Lotline quality data);
    /// nothing was signed or sent. Each problem names its field.
    #[error("the event is not valid: {}", join_problems(.0))]
    InvalidEvent(Vec<EventProblem>),

    /// The JSON given as an event does not have the shape of an EPCIS 2.0
    /// event (a missing field, a wrong type); nothing was signed or sent.
    #[error("the JSON is not an EPCIS 2.0 event: {0}")]
    EventJson(#[source] serde_json::Error),

    /// [`crate::AttestationBuilder::build`] was called before an event was set.
    #[error("no event was given to the attestation builder")]
    MissingEvent,

    /// The signed envelope would be refused by every node (for example the
    /// statement is larger than the payload limit); nothing was sent.
    #[error("the attestation is not acceptable: {0}")]
    Envelope(#[from] EnvelopeError),

    /// A private field could not be sealed or opened (a path that names no
    /// member of the event, a key that opens no wrap, a tampered section).
    #[error("private fields: {0}")]
    Private(#[from] lotline_core::private::PrivateError),

    /// Genesis does not let this record be private (an org entitled to
    /// read it has no encryption key).
    #[error("private recipients: {0}")]
    Recipients(#[from] lotline_genesis::RecipientError),

    /// The statement has no private section to open or disclose.
    #[error("the attestation has no private fields")]
    NotPrivate,

    /// The system clock reads before 1970; pass `issued_at_ms` explicitly.
    #[error("the system clock reads before the unix epoch; set issued_at_ms explicitly")]
    ClockBeforeEpoch,

    /// A batch has more envelopes than a node accepts in one request.
    #[error("a batch holds at most {max} attestations, this one has {len}")]
    BatchTooLarge { len: usize, max: usize },

    /// The receipt does not prove what it claims under the pinned genesis.
    #[error("the receipt does not verify: {0}")]
    Verify(#[from] ReceiptVerifyError),

    /// The node returned a receipt, valid or not, for another attestation
    /// than the one submitted.
    #[error("the node returned a receipt for attestation {got}, not for the submitted {expected}")]
    ReceiptMismatch {
        expected: AttestationId,
        got: AttestationId,
    },

    /// The signing key file could not be read or is not a Lotline key file.
    #[error("key file: {0}")]
    KeyFile(#[from] KeyFileError),

    /// The genesis served by the node ([`crate::Client::genesis`]) is not a
    /// valid genesis.
    #[error("the node served a genesis that is not valid: {0}")]
    Genesis(#[source] GenesisError),

    /// The wait for commitment ended before the attestation was committed.
    /// This does **not** mean it was rejected: it was admitted (or its fate is
    /// unknown) and may still be committed. Look it up by `id` with
    /// [`crate::Client::attestation`] or [`crate::Client::receipt`].
    #[error("timed out waiting for attestation {id}; it may still be committed, look it up by id")]
    Timeout { id: AttestationId },

    /// The node's base URL, or a URL built from it, is not usable.
    #[error("URL {url:?} is not usable: {reason}")]
    Url { url: String, reason: String },
}

impl SdkError {
    /// The node's problem, when the node refused the request.
    pub fn problem(&self) -> Option<&Problem> {
        match self {
            SdkError::Rejected { problem, .. } => Some(problem),
            _ => None,
        }
    }
}

fn join_problems(problems: &[EventProblem]) -> String {
    let parts: Vec<String> = problems
        .iter()
        .map(|p| format!("{}: {}", p.field, p.reason))
        .collect();
    parts.join("; ")
}
