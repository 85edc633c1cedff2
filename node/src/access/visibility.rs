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
    can_read_facts(rules, identity, &RecordFacts::of(statement))
}

/// [`can_read`] from a record's facts alone: what the analytics
/// projection keeps of a record, so SQL and exports apply this rule, with
/// the membership in force, when a query runs.
pub fn can_read_facts(rules: &Genesis, identity: &Identity, facts: &RecordFacts<'_>) -> bool {
    rules.read_policy().can_read(reader(rules, identity), facts)
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use lotline_core::SigningKey;
    use lotline_genesis::governance::{Change, Membership};
    use lotline_genesis::{OrgFile, Role};

    use super::*;
    use crate::access::Caller;

    fn genesis() -> Genesis {
        let dir = tempfile::tempdir().unwrap();
        let orgs = crate::demo::parse_orgs(crate::demo::DEMO_ORGS).unwrap();
        lotline_genesis::init::init_consortium_with_validators(
            dir.path(),
            "t",
            &orgs,
            &["manufacturer".into()],
            None,
        )
        .unwrap()
        .genesis
    }

    fn caller(org: &str, role: Role) -> Identity {
        Identity::Caller(Caller {
            org: org.into(),
            role,
            credential: format!("{org}-1"),
            operator: false,
        })
    }

    /// A supplier's shipping record: shared with the downstream roles by
    /// the default read policy, not public.
    fn shipping() -> Statement {
        let key = SigningKey::from_seed(&[1; 32]);
        Statement {
            version: lotline_core::statement::STATEMENT_VERSION,
            chain_id: lotline_core::hash::Digest([0; 32]),
            org: "supplier".into(),
            key: key.public_key(),
            issued_at_ms: 0,
            nonce: "n".into(),
            event: serde_json::from_value(serde_json::json!({
                "type": "ObjectEvent",
                "eventTime": "2024-05-01T10:00:00Z",
                "eventTimeZoneOffset": "+00:00",
                "action": "OBSERVE",
                "bizStep": "shipping",
                "epcList": ["urn:epc:id:sgtin:0614141.107346.2017"]
            }))
            .unwrap(),
            private: None,
        }
    }

    /// Goal: the rule judges a caller by the membership it is given, not by
    /// its credential. Method: an org added by governance reads by the role
    /// the membership gives it; a caller whose org is not a member reads as
    /// anonymous, whatever role its credential claims.
    #[test]
    fn callers_are_judged_by_the_membership_in_force() {
        let genesis = Arc::new(genesis());
        let record = shipping();
        let newco = caller("newco", Role::Distributor);
        assert!(!can_read(&genesis, &newco, &record), "not a member yet");
        assert!(!reads_all_of(&genesis, &newco, "newco"));

        let added = Membership::genesis(genesis.clone())
            .apply(
                &Change::AddOrg {
                    org: OrgFile {
                        id: "newco".into(),
                        name: "New Co".into(),
                        role: Role::Distributor,
                        client_keys: vec![SigningKey::from_seed(&[7; 32]).public_key().to_hex()],
                        encryption_key: None,
                    },
                },
                2,
            )
            .unwrap();
        let rules = added.rules();
        assert!(
            can_read(rules, &newco, &record),
            "distributors read shipping"
        );
        assert!(reads_all_of(rules, &newco, "newco"));

        // A credential claiming a full-read role gets the member's role.
        let claims_more = caller("supplier", Role::Regulator);
        assert!(!reads_everything(rules, &claims_more));
        assert!(reads_everything(
            rules,
            &caller("regulator", Role::Regulator)
        ));
        // An org that is not a member reads like an anonymous caller.
        let stranger = caller("stranger", Role::Regulator);
        assert!(!reads_everything(rules, &stranger));
        assert!(!can_read(rules, &stranger, &record));
        assert!(!stranger.may_export_audit(rules));
    }
}
