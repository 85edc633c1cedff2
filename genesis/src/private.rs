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

use lotline_core::private::EncryptionPublicKey;
use lotline_core::statement::Statement;

use crate::model::{Genesis, Org};
use crate::read_policy::{Reader, RecordFacts};

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
        "the private section wraps to org {org:?} under key {used}, but genesis gives it {genesis}"
    )]
    WrongKey {
        org: String,
        used: EncryptionPublicKey,
        genesis: EncryptionPublicKey,
    },
}

impl Genesis {
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

    /// The (org, key) pairs a private section for this record must be
    /// wrapped to: what a submitter seals for.
    pub fn private_recipients(
        &self,
        facts: &RecordFacts<'_>,
    ) -> Result<Vec<(String, EncryptionPublicKey)>, RecipientError> {
        self.private_readers(facts)
            .into_iter()
            .map(|o| match o.encryption_key {
                Some(key) => Ok((o.id.clone(), key)),
                None => Err(RecipientError::NoEncryptionKey { org: o.id.clone() }),
            })
            .collect()
    }

    /// Checks a statement's private section (if any) against
    /// [`Genesis::private_recipients`]. Every problem, not just the first.
    pub fn check_private_recipients(&self, statement: &Statement) -> Vec<RecipientError> {
        let Some(private) = &statement.private else {
            return Vec::new();
        };
        let facts = RecordFacts::of(statement);
        let mut problems = Vec::new();
        let mut required = BTreeMap::new();
        for org in self.private_readers(&facts) {
            match org.encryption_key {
                Some(key) => {
                    required.insert(org.id.as_str(), key);
                }
                None => problems.push(RecipientError::NoEncryptionKey {
                    org: org.id.clone(),
                }),
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
    use lotline_core::statement::STATEMENT_VERSION_PRIVATE;

    /// A supplier inspection whose sensor readings and order are private,
    /// sealed for `recipients`.
    fn private_statement(
        genesis: &Genesis,
        recipients: &[(String, EncryptionPublicKey)],
    ) -> Statement {
        let full = event(serde_json::json!({
            "bizStep": "inspecting",
            "bizTransactionList": [{"type": "po", "bizTransaction": "urn:epcglobal:cbv:bt:9506000134352:PO-7"}],
            "sensorElementList": [{"sensorReport": [{"type": "Temperature", "value": 71.5, "uom": "CEL"}]}],
        }));
        let (public, section) = private::seal(
            &full,
            &["/sensorElementList".into(), "/bizTransactionList".into()],
            recipients,
        )
        .unwrap();
        Statement {
            version: STATEMENT_VERSION_PRIVATE,
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
        let required = g.private_recipients(&facts).unwrap();
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

    #[test]
    fn a_genesis_without_the_regulators_key_can_not_take_private_records() {
        let g = example();
        let s = any_statement(&g);
        assert!(matches!(
            g.private_recipients(&RecordFacts::of(&s)),
            Err(RecipientError::NoEncryptionKey { .. })
        ));
    }

    #[test]
    fn a_disclosure_verifies_against_the_receipt_and_an_edited_one_fails() {
        // Goal: a third party holding only the receipt and one disclosed
        // field checks it offline; any edit of value or salt fails.
        let (g, keys) = example_with_encryption_keys();
        let required = g
            .private_recipients(&RecordFacts::of(&any_statement(&g)))
            .unwrap();
        let statement = private_statement(&g, &required);
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
