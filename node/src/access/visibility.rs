//! The visibility rule, the one function every read path calls before it
//! shows, lists or counts a record.
//!
//! The decision itself is the read policy
//! ([`lotline_genesis::ReadPolicy::can_read`]); this module turns a caller
//! and a stored record into its inputs. A record whose payload no longer
//! parses is visible to its own org and to full readers only, never public
//! (its facts are unknown, so nothing can be shared on their strength).
//!
//! The `rules` argument is the membership in force (`ApiContext::rules`,
//! `Governance::rules_now`): its orgs, roles and read policy, which
//! governance changes by vote. A caller whose org is not a member of it
//! (removed, or not yet in force) reads as an anonymous caller, and a
//! member's role is the membership's, not the credential's.

use lotline_core::statement::Statement;
use lotline_genesis::{Genesis, Reader, RecordFacts};

use super::Identity;

/// Whether `identity` may see the attestation whose signed statement is
/// `statement`. Hidden records must look exactly like absent ones to the
/// caller: same status, same body, no trace in listings or counts.
pub fn can_read(rules: &Genesis, identity: &Identity, statement: &Statement) -> bool {
    rules
        .read_policy()
        .can_read(reader(rules, identity), &RecordFacts::of(statement))
}

/// [`can_read`] from the raw payload bytes of an envelope.
pub fn can_read_payload(
    genesis: &Genesis,
    identity: &Identity,
    record_org: &str,
    payload: &[u8],
) -> bool {
    match Statement::from_payload(payload) {
        Ok(statement) => can_read(genesis, identity, &statement),
        Err(_) => reads_all_of(genesis, identity, record_org),
    }
}

/// True if `identity` sees every record of `org` without looking at the
/// records (its own org, or a full-read role). Lets listings skip the
/// per-record check.
pub fn reads_all_of(rules: &Genesis, identity: &Identity, org: &str) -> bool {
    match reader(rules, identity) {
        Reader::Anonymous => false,
        Reader::Member { org: own, role } => {
            own == org || rules.read_policy().reads_everything(role)
        }
    }
}

/// True if `identity` reads every record of every org.
pub fn reads_everything(rules: &Genesis, identity: &Identity) -> bool {
    match reader(rules, identity) {
        Reader::Anonymous => false,
        Reader::Member { role, .. } => rules.read_policy().reads_everything(role),
    }
}

/// The reader `identity` is under `rules`: a member with the role the
/// membership gives its org, or anonymous if its org is not a member.
pub(crate) fn reader<'a>(rules: &'a Genesis, identity: &Identity) -> Reader<'a> {
    match identity {
        Identity::Anonymous => Reader::Anonymous,
        Identity::Caller(c) => match rules.org(&c.org) {
            Some(org) => Reader::Member {
                org: &org.id,
                role: org.role,
            },
            None => Reader::Anonymous,
        },
    }
}
