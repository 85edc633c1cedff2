//! The read policy: who may read which attestation. A consortium rule, so it
//! lives in genesis and is part of the chain id (two nodes that disagree on
//! who may see what are not running the same consortium).
//!
//! ```toml
//! [read_policy]
//! full_read_roles = ["regulator", "auditor"]   # read everything
//!
//! [[read_policy.share]]                         # one share rule
//! from = "*"                                    # an org id, or "*" for every org
//! to = ["public"]                               # "public", "members", "org:<id>", "role:<role>"
//! biz_steps = ["commissioning", "inspecting"]   # optional filters; absent = any
//! # event_types = ["ObjectEvent"]
//! # quality = ["inspection", "recallOrder"]
//! ```
//!
//! The decision ([`ReadPolicy::can_read`]) is a pure function of the reader,
//! the record's facts and this policy:
//! 1. an org always reads its own records;
//! 2. a member whose role is in `full_read_roles` reads everything;
//! 3. otherwise a record is readable if one share rule matches it (all of
//!    the rule's filters hold) and names the reader in `to`.
//!
//! Private fields (statement version 2) have a narrower rule,
//! [`ReadPolicy::can_read_private`]: the issuing org, every regulator
//! (whatever `full_read_roles` says: regulators are always recipients,
//! issue 14), full readers, and orgs a matching share rule *names*
//! (`org:<id>` or `role:<role>`).
//! `members` and `public` share a record's public part only. The node
//! serves plaintext by this rule and admission requires a statement's
//! private section to be wrapped to exactly these orgs
//! ([`crate::Genesis::private_readers`]), so the rule that decides who may
//! read is also the one that decides who can.
//!
//! "public" reaches everyone, anonymous callers included, but only for a
//! record that is *publishable* ([`RecordFacts::publishable`]): one without
//! private measurements, business transactions (orders, invoices: prices),
//! source or destination parties (customer identities), sensor data or
//! custom extensions (R19). No rule can publish such a record; it can still
//! be shared with members, orgs or roles.

use lotline_core::epcis::{Event, EventType, QualityFact, QualityKind};
use lotline_core::statement::Statement;
use serde::{Deserialize, Serialize};

use crate::model::Role;
use crate::policy::{self, quality_kind_name};

/// Whom a share rule shares with.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Audience {
    /// Everyone, anonymous callers included (publishable records only).
    Public,
    /// Every member org.
    Members,
    /// One member org, by id.
    Org(String),
    /// Every member org with this role.
    Role(Role),
}

impl Audience {
    /// The genesis-file spelling: `public`, `members`, `org:<id>`, `role:<role>`.
    pub fn to_file_string(&self) -> String {
        match self {
            Audience::Public => "public".into(),
            Audience::Members => "members".into(),
            Audience::Org(id) => format!("org:{id}"),
            Audience::Role(role) => format!("role:{role}"),
        }
    }

    /// Parses the file spelling. `None` for anything else (the caller names
    /// the rule in its error).
    pub fn parse(text: &str) -> Option<Audience> {
        match text {
            "public" => Some(Audience::Public),
            "members" => Some(Audience::Members),
            _ => {
                if let Some(id) = text.strip_prefix("org:") {
                    Some(Audience::Org(id.to_owned()))
                } else {
                    text.strip_prefix("role:")
                        .and_then(|r| r.parse().ok())
                        .map(Audience::Role)
                }
            }
        }
    }

    fn includes(&self, reader: &Reader<'_>) -> bool {
        match (self, reader) {
            (Audience::Public, _) => true,
            (_, Reader::Anonymous) => false,
            (Audience::Members, Reader::Member { .. }) => true,
            (Audience::Org(id), Reader::Member { org, .. }) => id == org,
            (Audience::Role(role), Reader::Member { role: r, .. }) => role == r,
        }
    }
}

/// One share rule. Every filter that is `Some` must hold for the rule to
/// match a record; `None` matches anything.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShareRule {
    /// The issuing org, or `None` for every org (`"*"` in the file).
    pub from: Option<String>,
    pub to: Vec<Audience>,
    pub event_types: Option<Vec<EventType>>,
    /// CBV short names (normalised when the genesis is built).
    pub biz_steps: Option<Vec<String>>,
    /// The record must carry a quality fact of one of these kinds.
    pub quality: Option<Vec<QualityKind>>,
}

impl ShareRule {
    fn matches(&self, facts: &RecordFacts<'_>) -> bool {
        self.from.as_deref().is_none_or(|org| org == facts.org)
            && self
                .event_types
                .as_ref()
                .is_none_or(|types| types.contains(&facts.event_type))
            && self.biz_steps.as_ref().is_none_or(|steps| {
                facts
                    .biz_step
                    .as_deref()
                    .is_some_and(|step| steps.iter().any(|s| s == step))
            })
            && self
                .quality
                .as_ref()
                .is_none_or(|kinds| facts.quality.is_some_and(|kind| kinds.contains(&kind)))
    }
}

/// Which roles read everything, and what is shared beyond the issuing org.
/// Absent from a genesis file: nobody reads more than their own records.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReadPolicy {
    pub full_read_roles: Vec<Role>,
    pub share: Vec<ShareRule>,
}

/// Who is reading. Built by the node from an authenticated credential; a
/// `Member` is trusted to be who it says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reader<'a> {
    Anonymous,
    Member { org: &'a str, role: Role },
}

/// What the read policy looks at in a record: derived from the signed
/// statement, so a submitter can not label its own record "public" by any
/// field other than the ones the consortium's rules name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordFacts<'a> {
    /// The issuing org.
    pub org: &'a str,
    pub event_type: EventType,
    /// bizStep in CBV short form.
    pub biz_step: Option<String>,
    pub quality: Option<QualityKind>,
    /// Whether the record may be shown to anonymous callers at all (R19).
    pub publishable: bool,
}

impl<'a> RecordFacts<'a> {
    pub fn of(statement: &'a Statement) -> RecordFacts<'a> {
        let event = &statement.event;
        RecordFacts {
            org: &statement.org,
            event_type: event.event_type,
            biz_step: event.biz_step_short(),
            quality: event.quality.as_ref().map(QualityFact::kind),
            publishable: publishable(event),
        }
    }
}

/// True if nothing in `event` is kept off public pages (R19): private
/// measurements, business transactions (prices, orders), source and
/// destination parties (customers), sensor data and custom extensions.
pub fn publishable(event: &Event) -> bool {
    let private_inspection = matches!(
        event.quality,
        Some(QualityFact::Inspection { private: true, .. })
    );
    !private_inspection
        && event.biz_transaction_list.is_empty()
        && event.source_list.is_empty()
        && event.destination_list.is_empty()
        && event.sensor_element_list.is_empty()
        && event.extensions.is_empty()
}

impl ReadPolicy {
    pub fn reads_everything(&self, role: Role) -> bool {
        self.full_read_roles.contains(&role)
    }

    /// The visibility rule (see the module doc). Pure: the same inputs give
    /// the same answer on every node.
    pub fn can_read(&self, reader: Reader<'_>, facts: &RecordFacts<'_>) -> bool {
        if let Reader::Member { org, role } = reader
            && (org == facts.org || self.reads_everything(role))
        {
            return true;
        }
        self.share.iter().any(|rule| {
            rule.matches(facts)
                && rule.to.iter().any(|audience| {
                    audience.includes(&reader)
                        && (*audience != Audience::Public || facts.publishable)
                })
        })
    }
}

impl ReadPolicy {
    /// Whether a member may read a record's private fields (module doc).
    /// Anonymous callers never may.
    pub fn can_read_private(&self, reader: Reader<'_>, facts: &RecordFacts<'_>) -> bool {
        let Reader::Member { org, role } = reader else {
            return false;
        };
        if org == facts.org || role == Role::Regulator || self.reads_everything(role) {
            return true;
        }
        self.share.iter().any(|rule| {
            rule.matches(facts)
                && rule.to.iter().any(|audience| match audience {
                    Audience::Org(id) => id == org,
                    Audience::Role(r) => *r == role,
                    Audience::Public | Audience::Members => false,
                })
        })
    }
}

/// The read policy `genesis init` writes: regulators and auditors read
/// everything; commissioning and inspection facts, recall orders and
/// certificates are public (the consumer page shows them); shipping and
/// receiving records are shared with the roles downstream in the chain.
pub fn default_read_policy() -> ReadPolicy {
    let steps = |s: &[&str]| Some(s.iter().map(|s| (*s).to_owned()).collect());
    ReadPolicy {
        full_read_roles: vec![Role::Regulator, Role::Auditor],
        share: vec![
            ShareRule {
                from: None,
                to: vec![Audience::Public],
                event_types: None,
                biz_steps: steps(&["commissioning", "inspecting"]),
                quality: None,
            },
            ShareRule {
                from: None,
                to: vec![Audience::Public],
                event_types: None,
                biz_steps: None,
                quality: Some(vec![QualityKind::RecallOrder, QualityKind::Certificate]),
            },
            ShareRule {
                from: None,
                to: vec![
                    Audience::Role(Role::Manufacturer),
                    Audience::Role(Role::Distributor),
                    Audience::Role(Role::Retailer),
                    Audience::Role(Role::Logistics),
                ],
                event_types: None,
                biz_steps: steps(&["shipping", "departing", "arriving", "receiving"]),
                quality: None,
            },
        ],
    }
}

/// The TOML form of the read policy: names are strings so that a bad one
/// gets an error naming its rule.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadPolicyFile {
    #[serde(default)]
    pub full_read_roles: Vec<Role>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub share: Vec<ShareFile>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShareFile {
    pub from: String,
    pub to: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_types: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub biz_steps: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quality: Option<Vec<String>>,
}

/// Any org, in `from`.
pub const ANY_ORG: &str = "*";

/// Why a read policy in a file is not valid (before org ids are checked).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReadPolicyError {
    #[error(
        "read_policy.share[{rule}].to names {value:?}; an audience is \"public\", \"members\", \"org:<id>\" or \"role:<role>\""
    )]
    UnknownAudience { rule: usize, value: String },
    #[error("read_policy.share[{rule}] names unknown event type {value:?}")]
    UnknownEventType { rule: usize, value: String },
    #[error(
        "read_policy.share[{rule}] names unknown quality kind {value:?}; the kinds are inspection, nonConformance, recallOrder, certificate, document"
    )]
    UnknownQualityKind { rule: usize, value: String },
    #[error("read_policy.share[{rule}].from names org {org:?}, which is not in [[orgs]]")]
    UnknownFromOrg { rule: usize, org: String },
    #[error("read_policy.share[{rule}].to names org {org:?}, which is not in [[orgs]]")]
    UnknownToOrg { rule: usize, org: String },
    #[error("read_policy.share[{rule}].{field} is an empty list, so the rule shares nothing")]
    EmptyList { rule: usize, field: &'static str },
    #[error("read_policy.share[{rule}].biz_steps has an empty bizStep")]
    EmptyBizStep { rule: usize },
}

impl ReadPolicyFile {
    pub(crate) fn into_typed(self) -> Result<ReadPolicy, ReadPolicyError> {
        let mut share = Vec::with_capacity(self.share.len());
        for (rule, s) in self.share.into_iter().enumerate() {
            let to =
                s.to.iter()
                    .map(|a| {
                        Audience::parse(a).ok_or_else(|| ReadPolicyError::UnknownAudience {
                            rule,
                            value: a.clone(),
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()?;
            let event_types = s
                .event_types
                .map(|names| {
                    names
                        .iter()
                        .map(|n| {
                            n.parse::<EventType>()
                                .map_err(|_| ReadPolicyError::UnknownEventType {
                                    rule,
                                    value: n.clone(),
                                })
                        })
                        .collect::<Result<Vec<_>, _>>()
                })
                .transpose()?;
            let quality = s
                .quality
                .map(|names| {
                    names
                        .iter()
                        .map(|n| {
                            policy::parse_quality_kind(n).ok_or_else(|| {
                                ReadPolicyError::UnknownQualityKind {
                                    rule,
                                    value: n.clone(),
                                }
                            })
                        })
                        .collect::<Result<Vec<_>, _>>()
                })
                .transpose()?;
            share.push(ShareRule {
                from: (s.from != ANY_ORG).then_some(s.from),
                to,
                event_types,
                biz_steps: s.biz_steps,
                quality,
            });
        }
        Ok(ReadPolicy {
            full_read_roles: self.full_read_roles,
            share,
        })
    }

    pub(crate) fn from_typed(policy: &ReadPolicy) -> ReadPolicyFile {
        ReadPolicyFile {
            full_read_roles: policy.full_read_roles.clone(),
            share: policy
                .share
                .iter()
                .map(|r| ShareFile {
                    from: r.from.clone().unwrap_or_else(|| ANY_ORG.to_owned()),
                    to: r.to.iter().map(Audience::to_file_string).collect(),
                    event_types: r
                        .event_types
                        .as_ref()
                        .map(|t| t.iter().map(|t| t.as_str().to_owned()).collect()),
                    biz_steps: r.biz_steps.clone(),
                    quality: r
                        .quality
                        .as_ref()
                        .map(|k| k.iter().map(|k| quality_kind_name(*k).to_owned()).collect()),
                })
                .collect(),
        }
    }
}

/// Checks org references and empty lists, and normalises bizSteps to the
/// CBV short form. `is_org` tells whether an org id is in the genesis.
pub(crate) fn check(
    policy: &mut ReadPolicy,
    is_org: impl Fn(&str) -> bool,
) -> Result<(), ReadPolicyError> {
    for (rule, share) in policy.share.iter_mut().enumerate() {
        if let Some(org) = &share.from
            && !is_org(org)
        {
            return Err(ReadPolicyError::UnknownFromOrg {
                rule,
                org: org.clone(),
            });
        }
        if share.to.is_empty() {
            return Err(ReadPolicyError::EmptyList { rule, field: "to" });
        }
        for audience in &share.to {
            if let Audience::Org(org) = audience
                && !is_org(org)
            {
                return Err(ReadPolicyError::UnknownToOrg {
                    rule,
                    org: org.clone(),
                });
            }
        }
        let empty = [
            ("event_types", share.event_types.as_ref().map(Vec::len)),
            ("biz_steps", share.biz_steps.as_ref().map(Vec::len)),
            ("quality", share.quality.as_ref().map(Vec::len)),
        ];
        if let Some((field, _)) = empty.iter().find(|(_, len)| *len == Some(0)) {
            return Err(ReadPolicyError::EmptyList { rule, field });
        }
        for step in share.biz_steps.iter_mut().flatten() {
            if step.trim().is_empty() {
                return Err(ReadPolicyError::EmptyBizStep { rule });
            }
            *step = lotline_core::epcis::normalize_vocabulary(step);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts<'a>(
        org: &'a str,
        step: Option<&str>,
        quality: Option<QualityKind>,
    ) -> RecordFacts<'a> {
        RecordFacts {
            org,
            event_type: EventType::ObjectEvent,
            biz_step: step.map(str::to_owned),
            quality,
            publishable: true,
        }
    }

    fn member(org: &str, role: Role) -> Reader<'_> {
        Reader::Member { org, role }
    }

    /// Goal: the default policy gives each kind of reader what the module doc
    /// promises. Method: a table of (reader, record) -> expected decision.
    #[test]
    fn default_policy_decisions() {
        let p = default_read_policy();
        let own_private = facts("supplier", Some("storing"), None);
        let commissioning = facts("supplier", Some("commissioning"), None);
        let shipping = facts("supplier", Some("shipping"), None);
        let recall = facts("regulator", None, Some(QualityKind::RecallOrder));
        let non_conformance = facts("supplier", None, Some(QualityKind::NonConformance));
        let mut private_commissioning = commissioning.clone();
        private_commissioning.publishable = false;
        let anon = Reader::Anonymous;
        let supplier = member("supplier", Role::Supplier);
        let other_supplier = member("supplier-2", Role::Supplier);
        let manufacturer = member("manufacturer", Role::Manufacturer);
        let regulator = member("regulator", Role::Regulator);
        let auditor = member("audit-firm", Role::Auditor);
        let table: &[(&str, Reader<'_>, &RecordFacts<'_>, bool)] = &[
            ("own record", supplier, &own_private, true),
            (
                "another org's private record",
                manufacturer,
                &own_private,
                false,
            ),
            (
                "same role, another org",
                other_supplier,
                &own_private,
                false,
            ),
            ("anonymous, private record", anon, &own_private, false),
            ("regulator reads all", regulator, &own_private, true),
            ("auditor reads all", auditor, &non_conformance, true),
            ("commissioning is public", anon, &commissioning, true),
            (
                "public reaches members too",
                manufacturer,
                &commissioning,
                true,
            ),
            ("recall is public", anon, &recall, true),
            (
                "unpublishable is never public",
                anon,
                &private_commissioning,
                false,
            ),
            (
                "unpublishable, member",
                manufacturer,
                &private_commissioning,
                false,
            ),
            ("shipping shared downstream", manufacturer, &shipping, true),
            (
                "shipping not shared with suppliers",
                other_supplier,
                &shipping,
                false,
            ),
            ("shipping not public", anon, &shipping, false),
            (
                "non-conformance stays private",
                manufacturer,
                &non_conformance,
                false,
            ),
        ];
        for (name, reader, facts, expected) in table {
            assert_eq!(p.can_read(*reader, facts), *expected, "{name}");
        }
    }

    #[test]
    fn filters_and_audiences() {
        let rule = ShareRule {
            from: Some("supplier".into()),
            to: vec![Audience::Org("manufacturer".into())],
            event_types: Some(vec![EventType::TransformationEvent]),
            biz_steps: None,
            quality: Some(vec![QualityKind::Inspection]),
        };
        let p = ReadPolicy {
            full_read_roles: vec![],
            share: vec![rule],
        };
        let mut f = facts("supplier", None, Some(QualityKind::Inspection));
        let reader = member("manufacturer", Role::Manufacturer);
        assert!(!p.can_read(reader, &f), "event type filter");
        f.event_type = EventType::TransformationEvent;
        assert!(p.can_read(reader, &f));
        assert!(!p.can_read(member("distributor", Role::Manufacturer), &f));
        f.quality = None;
        assert!(!p.can_read(reader, &f), "quality filter needs a fact");
        f.quality = Some(QualityKind::Inspection);
        f.org = "other";
        assert!(!p.can_read(reader, &f), "from filter");
    }

    /// Goal: a bad read policy in a genesis file is refused with an error
    /// naming the rule and the bad value. Method: edit the documented example.
    #[test]
    fn genesis_file_errors_name_the_rule() {
        let text = crate::test_support::example_toml();
        let cases = [
            (
                "to = [\"public\"]",
                "to = [\"everyone\"]",
                "share[0].to names \"everyone\"",
            ),
            (
                "from = \"*\"",
                "from = \"nobody\"",
                "share[0].from names org \"nobody\"",
            ),
            (
                "\"role:manufacturer\"",
                "\"role:boss\"",
                "share[1].to names \"role:boss\"",
            ),
            (
                "\"members\"",
                "\"org:nobody\"",
                "share[1].to names org \"nobody\"",
            ),
            (
                "biz_steps = [\"shipping\"]",
                "biz_steps = []",
                "share[1].biz_steps is an empty list",
            ),
            (
                "biz_steps = [\"shipping\"]",
                "quality = [\"gossip\"]",
                "unknown quality kind \"gossip\"",
            ),
        ];
        for (from, to, expected) in cases {
            assert!(text.contains(from), "{from}");
            let err = crate::Genesis::from_toml(&text.replacen(from, to, 1))
                .unwrap_err()
                .to_string();
            assert!(err.contains(expected), "{err} does not contain {expected}");
        }
        let example = crate::test_support::example();
        assert_eq!(example.read_policy().share.len(), 2);
        assert_eq!(
            crate::Genesis::from_toml(&example.to_toml()).unwrap(),
            example
        );
    }

    #[test]
    fn audience_spelling_round_trips() {
        for a in [
            Audience::Public,
            Audience::Members,
            Audience::Org("acme".into()),
            Audience::Role(Role::Retailer),
        ] {
            assert_eq!(Audience::parse(&a.to_file_string()), Some(a));
        }
        for bad in ["everyone", "role:boss", "Public", "org", ""] {
            assert_eq!(Audience::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn check_names_the_broken_rule() {
        let is_org = |o: &str| o == "acme";
        let base = || ReadPolicy {
            full_read_roles: vec![],
            share: vec![ShareRule {
                from: None,
                to: vec![Audience::Public],
                event_types: None,
                biz_steps: Some(vec!["urn:epcglobal:cbv:bizstep:shipping".into()]),
                quality: None,
            }],
        };
        let mut ok = base();
        check(&mut ok, is_org).unwrap();
        assert_eq!(ok.share[0].biz_steps, Some(vec!["shipping".into()]));
        let mut p = base();
        p.share[0].from = Some("nobody".into());
        assert!(matches!(
            check(&mut p, is_org),
            Err(ReadPolicyError::UnknownFromOrg { rule: 0, .. })
        ));
        let mut p = base();
        p.share[0].to = vec![Audience::Org("nobody".into())];
        assert!(matches!(
            check(&mut p, is_org),
            Err(ReadPolicyError::UnknownToOrg { rule: 0, .. })
        ));
        let mut p = base();
        p.share[0].to.clear();
        assert_eq!(
            check(&mut p, is_org),
            Err(ReadPolicyError::EmptyList {
                rule: 0,
                field: "to"
            })
        );
        let mut p = base();
        p.share[0].quality = Some(vec![]);
        assert_eq!(
            check(&mut p, is_org),
            Err(ReadPolicyError::EmptyList {
                rule: 0,
                field: "quality"
            })
        );
    }
}
