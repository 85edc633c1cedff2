//! The write policy: which role may attest which event types, bizSteps and
//! quality facts.
//!
//! Rules are alternatives: an event is allowed when *one* rule for the
//! org's role allows its event type, its bizStep and its quality fact kind
//! together. A role without any rule can not write (it may still read).

use lotline_core::epcis::{Event, EventType, QualityKind};

use crate::model::{Org, Role};

/// The bizStep entry that allows every bizStep, and events without one.
pub const ANY_BIZ_STEP: &str = "*";

/// One rule of the policy table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyRule {
    pub role: Role,
    pub event_types: Vec<EventType>,
    /// CBV bizSteps in short form (`shipping`), or [`ANY_BIZ_STEP`].
    /// Standard URN and Web URI forms are normalised to the short form when a
    /// genesis is built. Custom bizSteps (URIs) are compared verbatim.
    pub biz_steps: Vec<String>,
    /// The `lotline:quality` kinds the rule allows. An event without a
    /// quality fact needs none.
    pub quality: Vec<QualityKind>,
}

impl PolicyRule {
    /// True if the rule allows `biz_step` (short form); `None` (an event
    /// without bizStep) is allowed only by [`ANY_BIZ_STEP`].
    pub fn allows_biz_step(&self, biz_step: Option<&str>) -> bool {
        let any = self.biz_steps.iter().any(|s| s == ANY_BIZ_STEP);
        match biz_step {
            None => any,
            Some(step) => any || self.biz_steps.iter().any(|s| s == step),
        }
    }
}

/// Why an org may not write an event. Each variant carries what the HTTP
/// layer needs to say exactly why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("org {org:?} has role {role}, and no policy rule lets that role write anything")]
    NoRule { org: String, role: Role },
    #[error("role {role} (org {org:?}) may not write {}", event_type.as_str())]
    EventType {
        org: String,
        role: Role,
        event_type: EventType,
    },
    #[error("role {role} (org {org:?}) may not write {} with {}", event_type.as_str(), describe_step(biz_step.as_deref()))]
    BizStep {
        org: String,
        role: Role,
        event_type: EventType,
        /// Short form; `None` when the event has no bizStep.
        biz_step: Option<String>,
    },
    #[error("role {role} (org {org:?}) may not attach a {} quality fact to {} with {}", quality_kind_name(*kind), event_type.as_str(), describe_step(biz_step.as_deref()))]
    QualityKind {
        org: String,
        role: Role,
        event_type: EventType,
        biz_step: Option<String>,
        kind: QualityKind,
    },
}

fn describe_step(step: Option<&str>) -> String {
    match step {
        Some(step) => format!("bizStep {step:?}"),
        None => "no bizStep".to_owned(),
    }
}

/// The name of a quality kind in genesis files and in the `kind` tag of
/// `lotline:quality` (camelCase).
pub const fn quality_kind_name(kind: QualityKind) -> &'static str {
    match kind {
        QualityKind::Inspection => "inspection",
        QualityKind::NonConformance => "nonConformance",
        QualityKind::RecallOrder => "recallOrder",
        QualityKind::Certificate => "certificate",
        QualityKind::Document => "document",
        QualityKind::Alert => "alert",
    }
}

/// Every quality kind, for parsing names.
pub const QUALITY_KINDS: [QualityKind; 6] = [
    QualityKind::Inspection,
    QualityKind::NonConformance,
    QualityKind::RecallOrder,
    QualityKind::Certificate,
    QualityKind::Document,
    QualityKind::Alert,
];

pub(crate) fn parse_quality_kind(name: &str) -> Option<QualityKind> {
    QUALITY_KINDS
        .into_iter()
        .find(|k| quality_kind_name(*k) == name)
}

/// Checks `event` against the rules for `org`'s role. The error names the
/// first aspect (event type, then bizStep, then quality kind) that no rule
/// allows.
pub(crate) fn check_write(
    rules: &[PolicyRule],
    org: &Org,
    event: &Event,
) -> Result<(), PolicyError> {
    let role = org.role;
    let event_type = event.event_type;
    let mut for_role = rules.iter().filter(|r| r.role == role).peekable();
    if for_role.peek().is_none() {
        return Err(PolicyError::NoRule {
            org: org.id.clone(),
            role,
        });
    }
    let mut typed = for_role
        .filter(|r| r.event_types.contains(&event_type))
        .peekable();
    if typed.peek().is_none() {
        return Err(PolicyError::EventType {
            org: org.id.clone(),
            role,
            event_type,
        });
    }
    // Master data (`lotline:masterData`, no bizStep, no quality fact)
    // describes the org's own products and places: any role that may write
    // the carrier's event type may state it.
    if lotline_core::epcis::master_data::is_master_data(event)
        && event.biz_step.is_none()
        && event.quality.is_none()
    {
        return Ok(());
    }
    let biz_step = event.biz_step_short();
    let mut stepped = typed
        .filter(|r| r.allows_biz_step(biz_step.as_deref()))
        .peekable();
    if stepped.peek().is_none() {
        return Err(PolicyError::BizStep {
            org: org.id.clone(),
            role,
            event_type,
            biz_step,
        });
    }
    let Some(kind) = event.quality.as_ref().map(|q| q.kind()) else {
        return Ok(());
    };
    if stepped.any(|r| r.quality.contains(&kind)) {
        return Ok(());
    }
    Err(PolicyError::QualityKind {
        org: org.id.clone(),
        role,
        event_type,
        biz_step,
        kind,
    })
}

/// The policy table `lotline genesis init` writes: one rule per role, with
/// the CBV bizSteps each role plausibly performs. Consortia edit it.
pub fn default_policy() -> Vec<PolicyRule> {
    use EventType::{
        AggregationEvent, AssociationEvent, ObjectEvent, TransactionEvent, TransformationEvent,
    };
    use QualityKind::{Certificate, Document, Inspection, NonConformance, RecallOrder};

    fn rule(
        role: Role,
        event_types: &[EventType],
        biz_steps: &[&str],
        quality: &[QualityKind],
    ) -> PolicyRule {
        PolicyRule {
            role,
            event_types: event_types.to_vec(),
            biz_steps: biz_steps.iter().map(|s| (*s).to_owned()).collect(),
            quality: quality.to_vec(),
        }
    }

    let mut rules = vec![
        rule(
            Role::Supplier,
            &[
                ObjectEvent,
                AggregationEvent,
                TransactionEvent,
                TransformationEvent,
            ],
            &[
                "commissioning",
                "creating_class_instance",
                "receiving",
                "accepting",
                "inspecting",
                "sampling",
                "packing",
                "unpacking",
                "loading",
                "staging_outbound",
                "shipping",
                "departing",
                "storing",
                "holding",
                "decommissioning",
                "destroying",
            ],
            &[Inspection, NonConformance, Certificate, Document],
        ),
        rule(
            Role::Manufacturer,
            &[
                ObjectEvent,
                AggregationEvent,
                TransactionEvent,
                TransformationEvent,
                AssociationEvent,
            ],
            &[
                "commissioning",
                "creating_class_instance",
                "encoding",
                "receiving",
                "accepting",
                "arriving",
                "inspecting",
                "sampling",
                "assembling",
                "disassembling",
                "installing",
                "removing",
                "replacing",
                "repairing",
                "repackaging",
                "dispensing",
                "packing",
                "unpacking",
                "picking",
                "loading",
                "unloading",
                "staging_outbound",
                "shipping",
                "departing",
                "storing",
                "holding",
                "sensor_reporting",
                "decommissioning",
                "destroying",
                "killing",
                "void_shipping",
            ],
            &[
                Inspection,
                NonConformance,
                RecallOrder,
                Certificate,
                Document,
            ],
        ),
        rule(
            Role::Distributor,
            &[ObjectEvent, AggregationEvent, TransactionEvent],
            &[
                "arriving",
                "receiving",
                "accepting",
                "inspecting",
                "storing",
                "stocking",
                "holding",
                "picking",
                "packing",
                "unpacking",
                "repackaging",
                "loading",
                "unloading",
                "staging_outbound",
                "shipping",
                "departing",
                "transporting",
                "sensor_reporting",
                "cycle_counting",
                "stock_taking",
                "void_shipping",
                "destroying",
            ],
            &[Inspection, NonConformance, Document],
        ),
        rule(
            Role::Retailer,
            &[ObjectEvent, AggregationEvent, TransactionEvent],
            &[
                "arriving",
                "receiving",
                "accepting",
                "inspecting",
                "unpacking",
                "storing",
                "stocking",
                "holding",
                "retail_selling",
                "removing",
                "cycle_counting",
                "stock_taking",
                "decommissioning",
                "destroying",
            ],
            &[Inspection, NonConformance, Document],
        ),
        rule(
            Role::Logistics,
            &[ObjectEvent, AggregationEvent, TransactionEvent],
            &[
                "arriving",
                "receiving",
                "loading",
                "unloading",
                "transporting",
                "departing",
                "shipping",
                "storing",
                "holding",
                "staging_outbound",
                "entering_exiting",
                "sensor_reporting",
            ],
            &[Inspection, Document],
        ),
        rule(
            Role::Regulator,
            &[ObjectEvent, TransactionEvent],
            &["inspecting", "sampling", "holding", "destroying"],
            &[Inspection, NonConformance, RecallOrder, Document],
        ),
        rule(
            Role::Auditor,
            &[ObjectEvent],
            &["inspecting", "sampling"],
            &[Inspection, NonConformance, Certificate, Document],
        ),
    ];
    // Every role's node may state the quality alerts it detects
    // (`lotline:quality` kind `alert`, bizStep `ALERT_BIZ_STEP`).
    for rule in &mut rules {
        rule.biz_steps
            .push(lotline_core::epcis::ALERT_BIZ_STEP.to_owned());
        rule.quality.push(QualityKind::Alert);
    }
    rules
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_policy_covers_every_role_once() {
        let policy = default_policy();
        for role in Role::ALL {
            assert_eq!(
                policy.iter().filter(|r| r.role == role).count(),
                1,
                "{role}"
            );
        }
    }

    #[test]
    fn quality_kind_names_round_trip_and_match_the_json_tag() {
        for kind in QUALITY_KINDS {
            assert_eq!(parse_quality_kind(quality_kind_name(kind)), Some(kind));
            let json = serde_json::to_value(kind).unwrap();
            assert_eq!(json, quality_kind_name(kind));
        }
        assert_eq!(parse_quality_kind("Inspection"), None);
    }
}

#[cfg(test)]
mod check_tests {
    use super::*;
    use crate::test_support::{event, example};
    use serde_json::json;

    fn supplier_writes(overrides: serde_json::Value) -> Result<(), PolicyError> {
        let g = example();
        g.check_write(g.org("acme-supplier").unwrap(), &event(overrides))
    }

    fn regulator_writes(overrides: serde_json::Value) -> Result<(), PolicyError> {
        let g = example();
        g.check_write(g.org("food-agency").unwrap(), &event(overrides))
    }

    #[test]
    fn allows_what_a_rule_allows() {
        assert_eq!(supplier_writes(json!({"bizStep": "shipping"})), Ok(()));
        assert_eq!(
            supplier_writes(json!({"bizStep": "urn:epcglobal:cbv:bizstep:shipping"})),
            Ok(())
        );
        assert_eq!(
            supplier_writes(json!({"bizStep": "https://ref.gs1.org/cbv/BizStep-packing"})),
            Ok(())
        );
        assert_eq!(
            supplier_writes(
                json!({"bizStep": "inspecting", "lotline:quality": {"kind": "inspection", "result": "pass"}})
            ),
            Ok(())
        );
        assert_eq!(
            supplier_writes(json!({"type": "TransactionEvent", "bizStep": "shipping"})),
            Ok(())
        );
        // The regulator's rule has "*": any bizStep, and none.
        assert_eq!(
            regulator_writes(json!({"bizStep": "retail_selling"})),
            Ok(())
        );
        assert_eq!(regulator_writes(json!({})), Ok(()));
        let recall = json!({"kind": "recallOrder", "recallId": "R-1", "reason": "salmonella", "class": "I",
                            "scope": ["https://id.gs1.org/01/09506000134352/10/LOT1"]});
        assert_eq!(
            regulator_writes(json!({"bizStep": "holding", "lotline:quality": recall})),
            Ok(())
        );
    }

    #[test]
    fn denies_an_event_type() {
        assert_eq!(
            supplier_writes(json!({"type": "TransformationEvent", "bizStep": "commissioning"})),
            Err(PolicyError::EventType {
                org: "acme-supplier".into(),
                role: Role::Supplier,
                event_type: EventType::TransformationEvent
            })
        );
        let err = regulator_writes(json!({"type": "AggregationEvent"})).unwrap_err();
        assert_eq!(
            err.to_string(),
            "role regulator (org \"food-agency\") may not write AggregationEvent"
        );
    }

    #[test]
    fn denies_a_biz_step_or_its_absence() {
        assert_eq!(
            supplier_writes(json!({"bizStep": "urn:epcglobal:cbv:bizstep:retail_selling"})),
            Err(PolicyError::BizStep {
                org: "acme-supplier".into(),
                role: Role::Supplier,
                event_type: EventType::ObjectEvent,
                biz_step: Some("retail_selling".into()),
            })
        );
        assert_eq!(
            supplier_writes(json!({})),
            Err(PolicyError::BizStep {
                org: "acme-supplier".into(),
                role: Role::Supplier,
                event_type: EventType::ObjectEvent,
                biz_step: None,
            })
        );
    }

    #[test]
    fn denies_a_quality_kind() {
        let nc = json!({"kind": "nonConformance", "code": "NC-7", "description": "burr", "severity": "minor"});
        assert_eq!(
            supplier_writes(json!({"bizStep": "inspecting", "lotline:quality": nc})),
            Err(PolicyError::QualityKind {
                org: "acme-supplier".into(),
                role: Role::Supplier,
                event_type: EventType::ObjectEvent,
                biz_step: Some("inspecting".into()),
                kind: QualityKind::NonConformance,
            })
        );
    }

    #[test]
    fn a_role_without_rules_writes_nothing() {
        let g = example();
        let mut auditor = g.org("food-agency").unwrap().clone();
        auditor.role = Role::Auditor;
        assert_eq!(
            g.check_write(&auditor, &event(json!({"bizStep": "inspecting"}))),
            Err(PolicyError::NoRule {
                org: "food-agency".into(),
                role: Role::Auditor
            })
        );
    }

    #[test]
    fn one_rule_must_allow_type_step_and_kind_together() {
        let rules = vec![
            PolicyRule {
                role: Role::Distributor,
                event_types: vec![EventType::ObjectEvent],
                biz_steps: vec!["shipping".into()],
                quality: vec![],
            },
            PolicyRule {
                role: Role::Distributor,
                event_types: vec![EventType::ObjectEvent, EventType::AggregationEvent],
                biz_steps: vec!["inspecting".into()],
                quality: vec![QualityKind::Inspection],
            },
        ];
        let org = Org {
            id: "d".into(),
            name: "D".into(),
            role: Role::Distributor,
            client_keys: vec![],
            encryption_key: None,
        };
        let inspection = json!({"kind": "inspection", "result": "fail"});
        let check = |v| check_write(&rules, &org, &event(v));
        assert_eq!(check(json!({"bizStep": "shipping"})), Ok(()));
        assert_eq!(
            check(json!({"bizStep": "inspecting", "lotline:quality": inspection.clone()})),
            Ok(())
        );
        assert!(matches!(
            check(json!({"bizStep": "shipping", "lotline:quality": inspection})),
            Err(PolicyError::QualityKind {
                kind: QualityKind::Inspection,
                ..
            })
        ));
        assert!(matches!(
            check(json!({"type": "AggregationEvent", "bizStep": "shipping"})),
            Err(PolicyError::BizStep {
                event_type: EventType::AggregationEvent,
                ..
            })
        ));
    }

    #[test]
    fn default_policy_fits_a_demo_supply_chain() {
        let genesis_rules = default_policy();
        let org = |role| Org {
            id: role_id(role),
            name: "x".into(),
            role,
            client_keys: vec![],
            encryption_key: None,
        };
        fn role_id(role: Role) -> String {
            role.as_str().to_owned()
        }
        let allowed = [
            (
                Role::Supplier,
                json!({"bizStep": "commissioning", "action": "ADD"}),
            ),
            (
                Role::Supplier,
                json!({"bizStep": "inspecting", "lotline:quality": {"kind": "certificate", "certificateId": "C1", "issuer": "TUV", "standard": "EN 10204 3.1", "validFrom": "2025-01-01", "validUntil": "2026-01-01"}}),
            ),
            (
                Role::Manufacturer,
                json!({"type": "TransformationEvent", "bizStep": "assembling"}),
            ),
            (
                Role::Manufacturer,
                json!({"bizStep": "holding", "lotline:quality": {"kind": "recallOrder", "recallId": "R", "reason": "r", "class": "II", "scope": []}}),
            ),
            (Role::Distributor, json!({"bizStep": "sensor_reporting"})),
            (Role::Logistics, json!({"bizStep": "transporting"})),
            (Role::Retailer, json!({"bizStep": "retail_selling"})),
            (
                Role::Regulator,
                json!({"bizStep": "inspecting", "lotline:quality": {"kind": "inspection", "result": "pass"}}),
            ),
            (
                Role::Auditor,
                json!({"bizStep": "inspecting", "lotline:quality": {"kind": "document", "document": {"uri": "https://x", "mediaType": "application/pdf", "blake3": "00"}}}),
            ),
        ];
        for (role, v) in allowed {
            assert_eq!(
                check_write(&genesis_rules, &org(role), &event(v.clone())),
                Ok(()),
                "{role}: {v}"
            );
        }
        let denied = [
            (
                Role::Retailer,
                json!({"type": "TransformationEvent", "bizStep": "assembling"}),
            ),
            (Role::Logistics, json!({"bizStep": "retail_selling"})),
            (
                Role::Supplier,
                json!({"bizStep": "holding", "lotline:quality": {"kind": "recallOrder", "recallId": "R", "reason": "r", "class": "II", "scope": []}}),
            ),
            (Role::Auditor, json!({"bizStep": "shipping"})),
        ];
        for (role, v) in denied {
            assert!(
                check_write(&genesis_rules, &org(role), &event(v.clone())).is_err(),
                "{role}: {v}"
            );
        }
    }
}
