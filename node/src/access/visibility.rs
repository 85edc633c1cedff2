//! The visibility rule, the one function every read path calls before it
//! shows, lists or counts a record.
//!
//! The decision itself is the genesis read policy
//! ([`lotline_genesis::ReadPolicy::can_read`]); this module turns a caller
//! and a stored record into its inputs. A record whose payload no longer
//! parses is visible to its own org and to full readers only, never public
//! (its facts are unknown, so nothing can be shared on their strength).

use lotline_core::statement::Statement;
use lotline_genesis::{Genesis, Reader, RecordFacts};

use super::Identity;

/// Whether `identity` may see the attestation whose signed statement is
/// `statement`. Hidden records must look exactly like absent ones to the
/// caller: same status, same body, no trace in listings or counts.
pub fn can_read(genesis: &Genesis, identity: &Identity, statement: &Statement) -> bool {
    genesis
        .read_policy()
        .can_read(reader(identity), &RecordFacts::of(statement))
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
pub fn reads_all_of(genesis: &Genesis, identity: &Identity, org: &str) -> bool {
    match identity {
        Identity::Anonymous => false,
        Identity::Caller(c) => c.org == org || genesis.read_policy().reads_everything(c.role),
    }
}

/// True if `identity` reads every record of every org.
pub fn reads_everything(genesis: &Genesis, identity: &Identity) -> bool {
    match identity {
        Identity::Anonymous => false,
        Identity::Caller(c) => genesis.read_policy().reads_everything(c.role),
    }
}

fn reader(identity: &Identity) -> Reader<'_> {
    match identity {
        Identity::Anonymous => Reader::Anonymous,
        Identity::Caller(c) => Reader::Member {
            org: &c.org,
            role: c.role,
        },
    }
}
