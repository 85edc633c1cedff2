//! Who a private section must be wrapped to: the consortium rule that
//! admission applies to every version 2 statement, on every node alike.
//!
//! The recipients of a statement's private section must be exactly the orgs
//! [`crate::ReadPolicy::can_read_private`] entitles for the record (the
//! issuer, full readers such as regulators, orgs a share rule names), each
//! with the encryption key genesis gives it. Fewer would hide data from a
//! regulator; more would hand it to an org the consortium did not agree
//! should read it.

use std::collections::BTreeMap;

use lotline_core::private::Suite;
use lotline_core::private::{self, EncryptionPublicKey, PrivateError};
use lotline_core::statement::Statement;

use crate::model::{Genesis, Org};
use crate::read_policy::{Reader, RecordFacts};

/// What a private section must be sealed for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Wrapping {
    /// The key period (retention), or `None` without retention classes.
    pub key_period: Option<u64>,
    /// (org id, the key to wrap to), in genesis order.
    pub recipients: Vec<(String, EncryptionPublicKey)>,
}

/// Why a private section's recipients are not the ones genesis requires.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RecipientError {
    #[error(
        "org {org:?} may read this record's private fields but has no encryption key in genesis, so the record can not be private"
    )]
    NoEncryptionKey { org: String },
    #[error("the private section is not wrapped to org {org:?}, which the read policy entitles")]
    Missing { org: String },
    #[error("the private section is wrapped to {org:?}, which the read policy does not entitle")]
    NotEntitled { org: String },
    #[error(
        "org {org:?} may read this record's private fields but genesis announces no key of it for key period {period}, so the record can not be private yet"
    )]
    NoPeriodKey { org: String, period: u64 },
    #[error(
        "the private section is sealed for key period {found:?}, but by the retention rule this record's key period is {expected:?}"
    )]
    WrongPeriod {
        expected: Option<u64>,
        found: Option<u64>,
    },
    #[error(
        "the private section wraps to org {org:?} under key {used}, but genesis gives it {genesis}"
    )]
    WrongKey {
        org: String,
        used: EncryptionPublicKey,
        genesis: EncryptionPublicKey,
    },
}

/// Why a statement's fields could not be sealed ([`Genesis::seal_private`]).
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// A path that names no member of the event, or may not be private.
    #[error("{0}")]
    Private(#[from] PrivateError),
    /// Genesis does not let this record be private (an entitled org
    /// without an encryption key, or without a key for the period).
    #[error("{0}")]
    Recipients(#[from] RecipientError),
}

impl Genesis {
    /// Seals the members of `statement`'s event at `paths` into a private
    /// section wrapped to exactly the orgs admission requires (the one
    /// sealing pipeline: SDK and CLI `attest --private`, EPCIS capture's
    /// `lotline:private`, `lotline demo`). The recipients follow from the
    /// public part's facts and the record's key period from `issuedAtMs`,
    /// so the statement must be complete but for the section. No paths:
    /// the statement is left as it is (version 1). The section is compact
    /// (version 3); [`Genesis::seal_private_as`] chooses the form.
    pub fn seal_private(
        &self,
        statement: &mut Statement,
        paths: &[String],
    ) -> Result<(), SealError> {
        self.seal_private_as(statement, paths, Suite::default())
    }

    /// [`Genesis::seal_private`] in the form `suite` names
    /// ([`Suite::Object`]: a version 2 statement).
    pub fn seal_private_as(
        &self,
        statement: &mut Statement,
        paths: &[String],
        suite: Suite,
    ) -> Result<(), SealError> {
        if paths.is_empty() {
            return Ok(());
        }
        let (public, _) = private::split_event(&statement.event, paths)?;
        let facts_of = Statement {
            event: public,
            private: None,
            ..statement.clone()
        };
        let wrapping =
            self.private_recipients(&RecordFacts::of(&facts_of), statement.issued_at_ms)?;
        let (public, section) = private::seal_as(
            &statement.event,
            paths,
            &wrapping.recipients,
            wrapping.key_period,
            suite,
        )?;
        statement.event = public;
        statement.private = Some(section);
        statement.version = Statement::version_for(&statement.private);
        Ok(())
    }

    /// The orgs entitled to read the private fields of a record with these
    /// facts, in genesis order.
    pub fn private_readers(&self, facts: &RecordFacts<'_>) -> Vec<&Org> {
        self.orgs()
            .iter()
            .filter(|o| {
                self.read_policy().can_read_private(
                    Reader::Member {
                        org: &o.id,
                        role: o.role,
                    },
                    facts,
                )
            })
            .collect()
    }

    /// The key period a private section of a record with these facts,
    /// issued at `issued_at_ms`, must be sealed for: `None` on a consortium
    /// without retention classes ([`crate::retention`]).
    pub fn key_period(&self, facts: &RecordFacts<'_>, issued_at_ms: u64) -> Option<u64> {
        self.retention()
            .map(|r| r.key_period(issued_at_ms, facts.biz_step.as_deref()))
    }

    /// The key `org` must be wrapped to: its key for `period`, or its
    /// long-term key without retention classes.
    fn wrapping_key(
        &self,
        org: &crate::Org,
        period: Option<u64>,
    ) -> Result<EncryptionPublicKey, RecipientError> {
        let long_term = org
            .encryption_key
            .ok_or_else(|| RecipientError::NoEncryptionKey {
                org: org.id.clone(),
            })?;
        match (period, self.retention()) {
            (Some(period), Some(retention)) => {
                retention
                    .key(&org.id, period)
                    .ok_or_else(|| RecipientError::NoPeriodKey {
                        org: org.id.clone(),
                        period,
                    })
            }
            _ => Ok(long_term),
        }
    }

    /// What a private section for this record, issued at `issued_at_ms`,
    /// must be sealed for: the key period and the (org, key) pairs.
    pub fn private_recipients(
        &self,
        facts: &RecordFacts<'_>,
        issued_at_ms: u64,
    ) -> Result<Wrapping, RecipientError> {
        let key_period = self.key_period(facts, issued_at_ms);
        let recipients = self
            .private_readers(facts)
            .into_iter()
            .map(|o| Ok((o.id.clone(), self.wrapping_key(o, key_period)?)))
            .collect::<Result<_, RecipientError>>()?;
        Ok(Wrapping {
            key_period,
            recipients,
        })
    }

    /// Checks a statement's private section (if any) against
    /// [`Genesis::private_recipients`]. Every problem, not just the first.
    pub fn check_private_recipients(&self, statement: &Statement) -> Vec<RecipientError> {
        let Some(private) = &statement.private else {
            return Vec::new();
        };
        let facts = RecordFacts::of(statement);
        let mut problems = Vec::new();
        let key_period = self.key_period(&facts, statement.issued_at_ms);
        if private.key_period != key_period {
            // The recipients' keys are then checked against the period the
            // rule requires, so every wrap to a wrong period's key is named.
            problems.push(RecipientError::WrongPeriod {
                expected: key_period,
                found: private.key_period,
            });
        }
        let mut required = BTreeMap::new();
        for org in self.private_readers(&facts) {
            match self.wrapping_key(org, key_period) {
                Ok(key) => {
                    required.insert(org.id.as_str(), key);
                }
                Err(e) => problems.push(e),
            }
        }
        for recipient in &private.recipients {
            match required.remove(recipient.org.as_str()) {
                None => problems.push(RecipientError::NotEntitled {
                    org: lotline_core::api::excerpt(&recipient.org),
                }),
                Some(key) if key != recipient.key => problems.push(RecipientError::WrongKey {
                    org: recipient.org.clone(),
                    used: recipient.key,
                    genesis: key,
                }),
                Some(_) => {}
            }
        }
        problems.extend(required.into_keys().map(|org| RecipientError::Missing {
            org: org.to_owned(),
        }));
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ReceiptVerifyError;
    use crate::test_support::{
        event, example, example_with_encryption_keys, node_keys, receipt, supplier_client,
    };
    use lotline_core::private::{self, EncryptionSecretKey, PrivateError};
    use lotline_core::statement::{STATEMENT_VERSION_COMPACT, STATEMENT_VERSION_PRIVATE};

    /// A supplier inspection whose sensor readings and order are private,
    /// sealed for `recipients` (compact: version 3).
    fn private_statement(
        genesis: &Genesis,
        recipients: &[(String, EncryptionPublicKey)],
    ) -> Statement {
        private_statement_as(genesis, recipients, Suite::Compact)
    }

    /// [`private_statement`] in the form `suite` names.
    fn private_statement_as(
        genesis: &Genesis,
        recipients: &[(String, EncryptionPublicKey)],
        suite: Suite,
    ) -> Statement {
        let full = event(serde_json::json!({
            "bizStep": "inspecting",
            "bizTransactionList": [{"type": "po", "bizTransaction": "urn:epcglobal:cbv:bt:9506000134352:PO-7"}],
            "sensorElementList": [{"sensorReport": [{"type": "Temperature", "value": 71.5, "uom": "CEL"}]}],
        }));
        let (public, section) = private::seal_as(
            &full,
            &["/sensorElementList".into(), "/bizTransactionList".into()],
            recipients,
            None,
            suite,
        )
        .unwrap();
        Statement {
            version: match suite {
                Suite::Object => STATEMENT_VERSION_PRIVATE,
                Suite::Compact => STATEMENT_VERSION_COMPACT,
            },
            chain_id: genesis.chain_id(),
            org: "acme-supplier".into(),
            key: supplier_client().public_key(),
            issued_at_ms: 1_740_823_200_000,
            nonce: "p1".into(),
            event: public,
            private: Some(section),
        }
    }

    /// The statement sealed for a throwaway recipient: for its facts.
    fn any_statement(genesis: &Genesis) -> Statement {
        let throwaway = EncryptionSecretKey::derive(&[99; 32]).public_key();
        private_statement(genesis, &[("nobody".into(), throwaway)])
    }

    #[test]
    fn the_issuer_and_the_regulator_are_the_recipients_and_nobody_else() {
        // Goal: the recipients genesis requires are the issuer and the full
        // reader; a section wrapped to them passes, and each deviation is
        // named.
        let (g, keys) = example_with_encryption_keys();
        let s = any_statement(&g);
        let facts = RecordFacts::of(&s);
        let required = g
            .private_recipients(&facts, s.issued_at_ms)
            .unwrap()
            .recipients;
        assert_eq!(
            required,
            vec![
                ("acme-supplier".to_owned(), keys[0].public_key()),
                ("food-agency".to_owned(), keys[1].public_key()),
            ]
        );
        let good = private_statement(&g, &required);
        assert_eq!(g.check_private_recipients(&good), vec![]);

        let missing = private_statement(&g, &required[..1]);
        assert_eq!(
            g.check_private_recipients(&missing),
            vec![RecipientError::Missing {
                org: "food-agency".into()
            }]
        );
        let outsider = EncryptionSecretKey::derive(&[12; 32]).public_key();
        let mut extra = required.clone();
        extra.push(("rival-co".into(), outsider));
        assert_eq!(
            g.check_private_recipients(&private_statement(&g, &extra)),
            vec![RecipientError::NotEntitled {
                org: "rival-co".into()
            }]
        );
        let wrong = vec![required[0].clone(), ("food-agency".into(), outsider)];
        assert!(matches!(
            g.check_private_recipients(&private_statement(&g, &wrong)).as_slice(),
            [RecipientError::WrongKey { org, .. }] if org == "food-agency"
        ));
        // Both recipients open it.
        for (org, key) in [("acme-supplier", &keys[0]), ("food-agency", &keys[1])] {
            good.private.as_ref().unwrap().open(org, key).unwrap();
        }
    }

    /// The example with a retention rule (1-year periods, logistics 2,
    /// everything else 5) and period keys for both keyed orgs in period 60
    /// (where an inspection issued in 2025, period 55, lands).
    fn with_retention() -> (Genesis, [EncryptionSecretKey; 2]) {
        let (g, _) = example_with_encryption_keys();
        let period_keys = [
            EncryptionSecretKey::derive(&[20; 32]),
            EncryptionSecretKey::derive(&[21; 32]),
        ];
        let retention = crate::Retention {
            period_seconds: 365 * 86_400,
            default_periods: 5,
            classes: vec![crate::RetentionClass {
                name: "logistics".into(),
                biz_steps: vec!["shipping".into(), "receiving".into()],
                periods: 2,
            }],
            keys: [
                (
                    ("acme-supplier".to_owned(), 60),
                    period_keys[0].public_key(),
                ),
                (("food-agency".to_owned(), 60), period_keys[1].public_key()),
            ]
            .into_iter()
            .collect(),
        };
        (g.with_retention(retention).unwrap(), period_keys)
    }

    #[test]
    fn with_retention_the_wraps_go_to_the_period_keys() {
        // Goal: on a consortium with retention classes a private section
        // must name its key period and be wrapped to the entitled orgs'
        // keys for it; one sealed the old way (long-term keys, no period)
        // is refused with both problems named; the rule survives the TOML
        // round trip and is part of the chain id.
        let (g, period_keys) = with_retention();
        let (plain, long_term) = example_with_encryption_keys();
        assert_ne!(g.chain_id(), plain.chain_id());
        let back = Genesis::from_toml(&g.to_toml()).unwrap();
        assert_eq!(back, g);
        assert_eq!(back.chain_id(), g.chain_id());

        let any = any_statement(&g);
        let wrapping = g
            .private_recipients(&RecordFacts::of(&any), any.issued_at_ms)
            .unwrap();
        assert_eq!(wrapping.key_period, Some(60));
        assert_eq!(
            wrapping.recipients,
            vec![
                ("acme-supplier".to_owned(), period_keys[0].public_key()),
                ("food-agency".to_owned(), period_keys[1].public_key()),
            ]
        );
        let sealed = |recipients: &[(String, EncryptionPublicKey)], period| {
            let mut s = private_statement(&g, recipients);
            let full = event(serde_json::json!({
                "bizStep": "inspecting",
                "sensorElementList": [{"sensorReport": [{"type": "Temperature", "value": 71.5}]}],
            }));
            let (public, section) =
                private::seal_for_period(&full, &["/sensorElementList".into()], recipients, period)
                    .unwrap();
            s.event = public;
            s.private = Some(section);
            s
        };
        let good = sealed(&wrapping.recipients, Some(60));
        assert_eq!(g.check_private_recipients(&good), vec![]);
        good.private
            .as_ref()
            .unwrap()
            .open("food-agency", &period_keys[1])
            .unwrap();
        // The long-term key does not open a period-keyed section.
        assert!(
            good.private
                .as_ref()
                .unwrap()
                .open("food-agency", &long_term[1])
                .is_err()
        );
        let old_way = plain
            .private_recipients(&RecordFacts::of(&any), any.issued_at_ms)
            .unwrap();
        let problems = g.check_private_recipients(&sealed(&old_way.recipients, None));
        assert_eq!(
            problems[0],
            RecipientError::WrongPeriod {
                expected: Some(60),
                found: None
            }
        );
        assert_eq!(problems.len(), 3, "{problems:?}");
        // A record whose key period has no announced keys can not be private.
        let mut later = any.clone();
        later.issued_at_ms += 365 * 86_400 * 1000;
        assert!(matches!(
            g.private_recipients(&RecordFacts::of(&later), later.issued_at_ms),
            Err(RecipientError::NoPeriodKey { period: 61, .. })
        ));
    }

    #[test]
    fn the_regulator_is_a_recipient_even_when_the_read_policy_omits_it() {
        // Goal (issue 14, "always the regulators"): a consortium whose read
        // policy gives no role full reads still wraps every private
        // section to its regulator, besides the issuer.
        let (g, keys) = example_with_encryption_keys();
        let text = g.to_toml();
        let start = text
            .find("full_read_roles")
            .expect("full_read_roles in genesis");
        let end = start + text[start..].find(']').expect("a list") + 1;
        let narrowed = format!("{}full_read_roles = []{}", &text[..start], &text[end..]);
        let narrowed = Genesis::from_toml(&narrowed).unwrap();
        assert!(narrowed.read_policy().full_read_roles.is_empty());
        let s = any_statement(&narrowed);
        let required = narrowed
            .private_recipients(&RecordFacts::of(&s), s.issued_at_ms)
            .unwrap()
            .recipients;
        assert_eq!(
            required,
            vec![
                ("acme-supplier".to_owned(), keys[0].public_key()),
                ("food-agency".to_owned(), keys[1].public_key()),
            ]
        );
    }

    #[test]
    fn a_genesis_without_the_regulators_key_can_not_take_private_records() {
        let g = example();
        let s = any_statement(&g);
        assert!(matches!(
            g.private_recipients(&RecordFacts::of(&s), s.issued_at_ms),
            Err(RecipientError::NoEncryptionKey { .. })
        ));
    }

    #[test]
    fn a_disclosure_verifies_against_the_receipt_and_an_edited_one_fails() {
        // Goal: a third party holding only the receipt and one disclosed
        // field checks it offline; any edit of value or salt fails. For
        // compact (version 3) and object-form (version 2) records alike.
        for suite in [Suite::Compact, Suite::Object] {
            disclosure_verifies_against_the_receipt(suite);
        }
    }

    fn disclosure_verifies_against_the_receipt(suite: Suite) {
        let (g, keys) = example_with_encryption_keys();
        let any = any_statement(&g);
        let required = g
            .private_recipients(&RecordFacts::of(&any), any.issued_at_ms)
            .unwrap()
            .recipients;
        let statement = private_statement_as(&g, &required, suite);
        assert_eq!(
            Statement::from_payload(&statement.to_payload()).unwrap(),
            statement
        );
        let envelope = statement.sign(&supplier_client());
        let nodes = node_keys();
        let r = receipt(
            g.chain_id(),
            vec![envelope],
            &[(0, &nodes[0]), (1, &nodes[1])],
            0,
        );
        g.verify_receipt(&r).unwrap();
        let opened = statement
            .private
            .as_ref()
            .unwrap()
            .open("food-agency", &keys[1])
            .unwrap();
        let disclosure = opened
            .into_iter()
            .find(|d| d.path == "/bizTransactionList")
            .unwrap();
        g.verify_disclosure(&r, &disclosure).unwrap();
        let mut edited = disclosure.clone();
        edited.value[0]["bizTransaction"] = "urn:epcglobal:cbv:bt:9506000134352:PO-8".into();
        assert!(matches!(
            g.verify_disclosure(&r, &edited),
            Err(ReceiptVerifyError::Disclosure(
                PrivateError::DisclosureMismatch(_)
            ))
        ));
        let mut resalted = disclosure;
        resalted.salt.0[0] ^= 1;
        assert!(g.verify_disclosure(&r, &resalted).is_err());
    }
}
