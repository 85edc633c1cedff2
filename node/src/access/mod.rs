//! Who is calling and what they may see: API credentials, the caller
//! identity, the visibility rule and abuse limits.
//!
//! - [`credentials`]: bearer tokens per org and role, stored hashed;
//! - [`Identity`]: the axum extractor handlers take (anonymous or a caller);
//! - [`visibility`]: [`can_read`], the one rule every read path applies;
//! - [`private`]: who reads private fields (statement version 2) and
//!   opening them with this node's org key;
//! - [`rate_limit`]: token buckets per credential and per client IP;
//! - [`guard`]: the middleware that authenticates, limits and audits.
//!
//! Writes (`POST /v1/attestations*`) need no credential: the member
//! signature on the attestation is the authentication that counts, and a
//! gateway can relay members' signed attestations. Reads beyond the public
//! projection need a credential. A bad token is refused (401), never
//! treated as anonymous, so a client learns its token is wrong.

pub mod credentials;
pub mod guard;
pub mod private;
pub mod rate_limit;
pub mod shred;
pub mod visibility;

use std::convert::Infallible;
use std::net::IpAddr;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use lotline_genesis::Role;

pub use credentials::{Credential, CredentialEntry, CredentialError, Credentials};
pub use rate_limit::{Limiter, Rate};
pub use visibility::{can_read, can_read_facts, can_read_payload, reads_all_of, reads_everything};

/// An authenticated caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    pub org: String,
    /// The org's role in genesis.
    pub role: Role,
    /// The credential id (named in the audit trail).
    pub credential: String,
    /// A node operator's credential.
    pub operator: bool,
}

/// Who is making a request. Handlers take it as an extractor; the
/// [`guard`] middleware puts it in the request, and a request that did not
/// pass through it is anonymous (the safe default).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Identity {
    #[default]
    Anonymous,
    Caller(Caller),
}

impl Identity {
    pub fn caller(&self) -> Option<&Caller> {
        match self {
            Identity::Anonymous => None,
            Identity::Caller(c) => Some(c),
        }
    }

    /// Regulators, auditors (by the read policy in force, `rules`) and the
    /// node operator may export the audit trail.
    pub fn may_export_audit(&self, rules: &lotline_genesis::Genesis) -> bool {
        self.is_operator() || visibility::reads_everything(rules, self)
    }

    pub fn is_operator(&self) -> bool {
        self.caller().is_some_and(|c| c.operator)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Identity {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Identity, Infallible> {
        Ok(parts
            .extensions
            .get::<Identity>()
            .cloned()
            .unwrap_or_default())
    }
}

/// The limits and credentials of one node's API.
#[derive(Debug)]
pub struct Access {
    pub credentials: Credentials,
    pub per_ip: Limiter<IpAddr>,
    pub per_credential: Limiter<String>,
}

/// Rate-limit settings (node config `[api.rate_limit]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub per_ip: Rate,
    pub per_credential: Rate,
    /// Buckets kept per kind of key (memory bound).
    pub buckets_max: usize,
}

impl Access {
    pub fn new(credentials: Credentials, limits: Limits) -> Access {
        Access {
            credentials,
            per_ip: Limiter::new(limits.per_ip, limits.buckets_max),
            per_credential: Limiter::new(limits.per_credential, limits.buckets_max),
        }
    }
}
