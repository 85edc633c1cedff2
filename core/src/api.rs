//! The JSON shapes of the node's HTTP API, shared by the node (which serves
//! them) and the SDK (which reads them): one definition, no drift.
//!
//! Errors are RFC 9457 `application/problem+json` documents ([`Problem`]) whose
//! `type` is a stable URI under [`PROBLEM_BASE`].

use serde::{Deserialize, Serialize};

use crate::attestation::{AttestationId, Envelope};
use crate::block::{BlockHash, Header};
use crate::certificate::Finality;
use crate::evidence::{Evidence, EvidenceKind};
use crate::hash::Digest;
use crate::receipt::Receipt;

/// Every problem `type` is this base followed by a stable slug.
pub const PROBLEM_BASE: &str = "https://lotline.dev/problems/";

/// An RFC 9457 problem document.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// Field-level problems, when the request had several.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<FieldProblem>,
}

impl Problem {
    /// The slug of the `type` URI (`duplicate`, `bad-signature`, ...).
    pub fn slug(&self) -> &str {
        self.kind.strip_prefix(PROBLEM_BASE).unwrap_or(&self.kind)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldProblem {
    pub field: String,
    pub reason: String,
}

/// Characters of an error message kept on each side of the elided middle
/// by [`excerpt`].
pub const EXCERPT_SIDE_CHARS: usize = 160;

/// A short, escaped excerpt of a message that may quote outside input.
///
/// Why: error messages quote what they refuse (serde quotes a whole bad
/// string, validators quote a bad value), and an 8 MB string quoted twice
/// made a 16 MB answer, held in memory per request. Every problem a node
/// serves or keeps passes through here: at most [`EXCERPT_SIDE_CHARS`]
/// characters of the start and of the end are kept (the end of a serde
/// message says what was expected and where), the middle is replaced by a
/// marker that says how much was cut, and control characters are escaped so
/// a quoted excerpt cannot forge log lines or terminal output.
pub fn excerpt(message: &str) -> String {
    let total = message.chars().count();
    if total <= 2 * EXCERPT_SIDE_CHARS {
        return escape_controls(message);
    }
    let head_end = message
        .char_indices()
        .nth(EXCERPT_SIDE_CHARS)
        .map_or(message.len(), |(i, _)| i);
    let tail_start = message
        .char_indices()
        .nth(total - EXCERPT_SIDE_CHARS)
        .map_or(message.len(), |(i, _)| i);
    let cut = tail_start - head_end;
    format!(
        "{}…[{cut} bytes elided]…{}",
        escape_controls(&message[..head_end]),
        escape_controls(&message[tail_start..])
    )
}

fn escape_controls(part: &str) -> String {
    let mut out = String::with_capacity(part.len());
    for c in part.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

impl FieldProblem {
    /// This problem with field and reason passed through [`excerpt`].
    pub fn bounded(&self) -> FieldProblem {
        FieldProblem {
            field: excerpt(&self.field),
            reason: excerpt(&self.reason),
        }
    }
}

/// The longest `timeoutMs` a `wait=committed` submit may ask for; more is
/// refused (400), as the API document says.
pub const WAIT_MAX_MS: u64 = 50_000;

/// How long a submit waits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Wait {
    /// Return once admitted to the mempool (202).
    #[default]
    Accepted,
    /// Return once the block holding it is durable, with its receipt (200).
    Committed,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pending,
    Committed,
    Rejected,
}

/// Answer to a submit (one attestation, or one item of a batch).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SubmitResult {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<AttestationId>,
    pub status: Status,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt: Option<Receipt>,
    /// Why an item of a batch was rejected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<Problem>,
}

/// Answer to a batch submit: one result per item, in request order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BatchResult {
    pub accepted: usize,
    pub rejected: usize,
    pub results: Vec<SubmitResult>,
}

/// `GET /v1/attestations/{id}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AttestationView {
    pub id: AttestationId,
    pub status: Status,
    pub org: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u64>,
    pub attestation: Envelope,
    /// The signed statement, decoded from the payload for convenience.
    pub statement: serde_json::Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt: Option<Receipt>,
}

/// `GET /v1/blocks/{height}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BlockView {
    pub hash: BlockHash,
    pub header: Header,
    pub finality: Finality,
    pub attestations: Vec<AttestationId>,
}

/// `GET /v1/head`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Head {
    pub chain_id: Digest,
    pub chain_name: String,
    pub height: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<BlockHash>,
    pub attestations: u64,
}

/// One line of a listing by identifier or org.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AttestationSummary {
    pub id: AttestationId,
    pub height: u64,
    /// Position in the block.
    pub index: u32,
    pub org: String,
    pub event_type: String,
    pub event_time: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub biz_step: Option<String>,
}

/// A page of a listing; pass `next` back as `after` for the next page.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Listing {
    /// The canonical form of the identifier (or the org id) listed.
    pub key: String,
    pub items: Vec<AttestationSummary>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// `GET /health`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    pub status: String,
    pub height: u64,
    pub mempool: usize,
}

/// One equivocation as `GET /v1/evidence` lists it: who, when, what rule,
/// whether the chain records it yet, and the two signed votes (which anyone
/// verifies against the genesis).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EvidenceEntry {
    /// Index of the validator in the genesis.
    pub validator: u16,
    /// The org that runs it.
    pub org: String,
    pub view: u64,
    pub kind: EvidenceKind,
    pub status: EvidenceStatus,
    /// The height of the finalized block that records it (when recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block: Option<BlockHash>,
    pub evidence: Evidence,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EvidenceStatus {
    /// This node verified it; a coming block will record it.
    Pending,
    /// A finalized block records it, the same on every node.
    Recorded,
}

#[cfg(test)]
mod excerpt_tests {
    use super::{EXCERPT_SIDE_CHARS, excerpt};

    #[test]
    fn short_messages_are_kept_whole() {
        assert_eq!(excerpt("expected a string"), "expected a string");
    }

    #[test]
    fn long_messages_keep_both_ends_and_say_what_was_cut() {
        let message = format!(
            "invalid type: string \"{}\", expected struct Envelope",
            "é".repeat(1_000_000)
        );
        let short = excerpt(&message);
        assert!(
            short.chars().count() < 2 * EXCERPT_SIDE_CHARS + 40,
            "{short}"
        );
        assert!(short.starts_with("invalid type: string"));
        assert!(short.ends_with("expected struct Envelope"));
        assert!(short.contains("bytes elided"));
    }

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(excerpt("a\nb\u{1b}[31m"), "a\\nb\\u{1b}[31m");
    }
}
