//! One audit entry and its place in the hash chain.
//!
//! `hash = BLAKE3("lotline/v1/log-entry", postcard(seq, time_ms, caller, org,
//! client, action, resource, outcome, prev))` and `prev` is the hash of the
//! entry before (zero for the first). Editing any field changes the hash;
//! editing it *and* recomputing the hash breaks the next entry's `prev`;
//! deleting or reordering entries breaks `seq` and `prev`.

use lotline_core::Digest;
use lotline_core::hash::{Domain, hash};
use serde::{Deserialize, Serialize};

/// What kind of access an entry records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// A read by an authenticated caller (anything beyond the public projection).
    Read,
    /// A write (submit) by an authenticated caller.
    Write,
    /// An export of the audit trail.
    Export,
    /// Operator business: metrics, node start.
    Admin,
    /// A bearer token that did not authenticate.
    AuthFailure,
}

impl Action {
    pub const fn as_str(self) -> &'static str {
        match self {
            Action::Read => "read",
            Action::Write => "write",
            Action::Export => "export",
            Action::Admin => "admin",
            Action::AuthFailure => "auth-failure",
        }
    }
}

/// The fields a caller of the log supplies; the log adds seq, time and links.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Access {
    /// Credential id, `anonymous` or `node`.
    pub caller: String,
    pub org: Option<String>,
    /// The client's IP address, if over the network.
    pub client: Option<String>,
    pub action: Action,
    /// Method and path with query, e.g. `GET /v1/attestations/ab..`.
    pub resource: String,
    /// The HTTP status served.
    pub outcome: u16,
}

/// One line of the audit file (JSON).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Entry {
    pub seq: u64,
    pub time_ms: u64,
    pub caller: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
    pub action: Action,
    pub resource: String,
    pub outcome: u16,
    pub prev: Digest,
    pub hash: Digest,
}

/// The hashed form: every field but `hash`, in a fixed order.
#[derive(Serialize)]
struct Hashed<'a> {
    seq: u64,
    time_ms: u64,
    caller: &'a str,
    org: Option<&'a str>,
    client: Option<&'a str>,
    action: &'static str,
    resource: &'a str,
    outcome: u16,
    prev: Digest,
}

impl Entry {
    /// Builds the entry that follows `prev` (at `seq`) and computes its hash.
    pub fn new(seq: u64, time_ms: u64, access: Access, prev: Digest) -> Entry {
        let mut entry = Entry {
            seq,
            time_ms,
            caller: access.caller,
            org: access.org,
            client: access.client,
            action: access.action,
            resource: access.resource,
            outcome: access.outcome,
            prev,
            hash: Digest::ZERO,
        };
        entry.hash = entry.compute_hash();
        entry
    }

    /// The hash the fields give (what `hash` must be).
    pub fn compute_hash(&self) -> Digest {
        let hashed = Hashed {
            seq: self.seq,
            time_ms: self.time_ms,
            caller: &self.caller,
            org: self.org.as_deref(),
            client: self.client.as_deref(),
            action: self.action.as_str(),
            resource: &self.resource,
            outcome: self.outcome,
            prev: self.prev,
        };
        hash(Domain::LogEntry, &lotline_core::codec::to_bytes(&hashed))
    }

    /// The JSON line (with its `\n`).
    pub fn to_line(&self) -> Vec<u8> {
        let mut line = match serde_json::to_vec(self) {
            Ok(bytes) => bytes,
            Err(e) => panic!("JSON encoding of an audit entry failed: {e}"),
        };
        line.push(b'\n');
        line
    }
}
