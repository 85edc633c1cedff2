//! Receipt verification against a genesis: core's offline check plus the
//! membership questions only the genesis can answer.

use lotline_core::codec::DecodeError;
use lotline_core::private::{Disclosure, PrivateError};
use lotline_core::receipt::ReceiptError;
use lotline_core::statement::{
    STATEMENT_VERSION, STATEMENT_VERSION_COMPACT, STATEMENT_VERSION_PRIVATE, is_supported_version,
};
use lotline_core::{Digest, PublicKey, Receipt, Statement, VerifiedReceipt, verify_receipt};

use crate::Genesis;

/// Why a receipt does not prove a member's attestation on this chain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReceiptVerifyError {
    /// The proof itself (signature, inclusion, certificate, chain) fails.
    #[error(transparent)]
    Receipt(#[from] ReceiptError),
    #[error("the attestation is signed by {key}, which is not a client key of any member org")]
    NotMember { key: PublicKey },
    #[error("the attested payload is not a statement: {0}")]
    Statement(DecodeError),
    #[error(
        "statement version {0} is not supported (this verifier knows versions {STATEMENT_VERSION}, {STATEMENT_VERSION_PRIVATE} and {STATEMENT_VERSION_COMPACT})"
    )]
    StatementVersion(u16),
    #[error("the statement is for chain {got}, this genesis is chain {expected}")]
    StatementChain { expected: Digest, got: Digest },
    #[error("the statement names key {statement}, but the attestation is signed by {signer}")]
    StatementKey {
        statement: PublicKey,
        signer: PublicKey,
    },
    #[error("key {key} belongs to org {owner:?}, but the statement claims org {claimed:?}")]
    StatementOrg {
        key: PublicKey,
        owner: String,
        claimed: String,
    },
    #[error("the attested statement has no private fields to disclose")]
    NotPrivate,
    #[error("the disclosure does not match the receipt: {0}")]
    Disclosure(PrivateError),
}

impl Genesis {
    /// Verifies `receipt` offline: core's [`verify_receipt`] against
    /// [`Genesis::validator_set`], then that the signer is a client key of a
    /// member org, and that the signed statement parses, is for this chain,
    /// names the signing key and names that key's org.
    pub fn verify_receipt(&self, receipt: &Receipt) -> Result<VerifiedReceipt, ReceiptVerifyError> {
        self.verify_receipt_under(receipt, &self.validator_set(), self)
    }

    /// [`Genesis::verify_receipt`] after membership changes: the
    /// certificate is checked against the validators of the receipt's
    /// epoch and the signer must be a member under the membership in force
    /// at the receipt's height, which `history` (this chain's, followed
    /// from a membership-history file:
    /// [`crate::governance::HistoryFile::follow`]) gives.
    pub fn verify_receipt_in(
        &self,
        receipt: &Receipt,
        history: &crate::governance::History,
    ) -> Result<VerifiedReceipt, ReceiptVerifyError> {
        let membership = history.at(receipt.header.height);
        self.verify_receipt_under(receipt, &membership.validator_set(), membership.rules())
    }

    /// The receipt's proof against `validators`; the signer's membership
    /// against `rules`.
    fn verify_receipt_under(
        &self,
        receipt: &Receipt,
        validators: &lotline_core::ValidatorSet,
        rules: &Genesis,
    ) -> Result<VerifiedReceipt, ReceiptVerifyError> {
        let verified = verify_receipt(receipt, validators)?;
        let owner = rules
            .key_owner(&verified.signer)
            .ok_or(ReceiptVerifyError::NotMember {
                key: verified.signer,
            })?;
        let statement = Statement::from_payload(&receipt.attestation.payload)
            .map_err(ReceiptVerifyError::Statement)?;
        if !is_supported_version(statement.version) {
            return Err(ReceiptVerifyError::StatementVersion(statement.version));
        }
        if statement.chain_id != self.chain_id() {
            return Err(ReceiptVerifyError::StatementChain {
                expected: self.chain_id(),
                got: statement.chain_id,
            });
        }
        if statement.key != verified.signer {
            return Err(ReceiptVerifyError::StatementKey {
                statement: statement.key,
                signer: verified.signer,
            });
        }
        if statement.org != owner.id {
            return Err(ReceiptVerifyError::StatementOrg {
                key: verified.signer,
                owner: owner.id.clone(),
                claimed: statement.org,
            });
        }
        Ok(verified)
    }

    /// Checks a selective disclosure (one private field: path, value, salt)
    /// offline against a receipt: the receipt verifies as with
    /// [`Genesis::verify_receipt`], and the field matches the salted
    /// commitment inside the signed statement. The verifier learns the
    /// disclosed field and nothing else of the private section.
    pub fn verify_disclosure(
        &self,
        receipt: &Receipt,
        disclosure: &Disclosure,
    ) -> Result<VerifiedReceipt, ReceiptVerifyError> {
        let verified = self.verify_receipt(receipt)?;
        let statement = Statement::from_payload(&receipt.attestation.payload)
            .map_err(ReceiptVerifyError::Statement)?;
        let private = statement
            .private
            .as_ref()
            .ok_or(ReceiptVerifyError::NotPrivate)?;
        private
            .verify_disclosure(disclosure)
            .map_err(ReceiptVerifyError::Disclosure)?;
        Ok(verified)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{
        attestation, example, node_keys, receipt, regulator_client, supplier_client,
    };
    use lotline_core::{Envelope, SigningKey};

    fn certified(genesis: &Genesis, attestations: Vec<Envelope>, leaf: usize) -> Receipt {
        let nodes = node_keys();
        receipt(
            genesis.chain_id(),
            attestations,
            &[(0, &nodes[0]), (1, &nodes[1])],
            leaf,
        )
    }

    #[test]
    fn accepts_a_real_receipt_for_every_leaf() {
        let g = example();
        let (supplier, regulator) = (supplier_client(), regulator_client());
        let envelopes = vec![
            attestation(g.chain_id(), "acme-supplier", &supplier, 1),
            attestation(g.chain_id(), "food-agency", &regulator, 2),
            attestation(g.chain_id(), "acme-supplier", &supplier, 3),
        ];
        for leaf in 0..envelopes.len() {
            let r = certified(&g, envelopes.clone(), leaf);
            let verified = g.verify_receipt(&r).unwrap();
            assert_eq!(verified.id, envelopes[leaf].id());
            assert_eq!(verified.certified_by, vec![0, 1]);
            assert_eq!(
                g.key_owner(&verified.signer).map(|o| o.id.as_str()),
                Some(["acme-supplier", "food-agency"][leaf % 2])
            );
        }
    }

    #[test]
    fn rejects_a_non_member_signer() {
        let g = example();
        let outsider = SigningKey::from_seed(&[50; 32]);
        let r = certified(
            &g,
            vec![attestation(g.chain_id(), "acme-supplier", &outsider, 1)],
            0,
        );
        assert_eq!(
            g.verify_receipt(&r),
            Err(ReceiptVerifyError::NotMember {
                key: outsider.public_key()
            })
        );
        // A validator's node key is not a member client key either.
        let node = &node_keys()[0];
        let r = certified(
            &g,
            vec![attestation(g.chain_id(), "acme-supplier", node, 1)],
            0,
        );
        assert_eq!(
            g.verify_receipt(&r),
            Err(ReceiptVerifyError::NotMember {
                key: node.public_key()
            })
        );
    }

    #[test]
    fn rejects_a_statement_that_misnames_org_key_or_chain() {
        let g = example();
        let supplier = supplier_client();
        let r = certified(
            &g,
            vec![attestation(g.chain_id(), "food-agency", &supplier, 1)],
            0,
        );
        assert!(matches!(
            g.verify_receipt(&r),
            Err(ReceiptVerifyError::StatementOrg { owner, claimed, .. }) if owner == "acme-supplier" && claimed == "food-agency"
        ));

        let other_chain = lotline_core::Digest([9; 32]);
        let r = certified(
            &g,
            vec![attestation(other_chain, "acme-supplier", &supplier, 1)],
            0,
        );
        assert!(
            matches!(g.verify_receipt(&r), Err(ReceiptVerifyError::StatementChain { got, .. }) if got == other_chain)
        );

        let mut statement = Statement::from_payload(
            &attestation(g.chain_id(), "acme-supplier", &supplier, 1).payload,
        )
        .unwrap();
        statement.key = regulator_client().public_key();
        let r = certified(&g, vec![statement.sign(&supplier)], 0);
        assert!(matches!(
            g.verify_receipt(&r),
            Err(ReceiptVerifyError::StatementKey { .. })
        ));

        let r = certified(
            &g,
            vec![Envelope::sign(
                b"{\"not\":\"a statement\"}".to_vec(),
                &supplier,
            )],
            0,
        );
        assert!(matches!(
            g.verify_receipt(&r),
            Err(ReceiptVerifyError::Statement(_))
        ));
    }

    #[test]
    fn rejects_a_receipt_of_another_chain_or_certifier() {
        let g = example();
        let supplier = supplier_client();
        // Certified by keys that are not this genesis' validators.
        let strangers = [
            SigningKey::from_seed(&[60; 32]),
            SigningKey::from_seed(&[61; 32]),
        ];
        let r = receipt(
            g.chain_id(),
            vec![attestation(g.chain_id(), "acme-supplier", &supplier, 1)],
            &[(0, &strangers[0]), (1, &strangers[1])],
            0,
        );
        assert!(matches!(
            g.verify_receipt(&r),
            Err(ReceiptVerifyError::Receipt(ReceiptError::Finality(_)))
        ));
        // Only one of two validators signed: no quorum.
        let nodes = node_keys();
        let r = receipt(
            g.chain_id(),
            vec![attestation(g.chain_id(), "acme-supplier", &supplier, 1)],
            &[(0, &nodes[0])],
            0,
        );
        assert!(matches!(
            g.verify_receipt(&r),
            Err(ReceiptVerifyError::Receipt(ReceiptError::Finality(_)))
        ));
        // A block of another chain.
        let other = Genesis::from_toml(
            &crate::test_support::example_toml().replace("lotline-demo", "other"),
        )
        .unwrap();
        let r = certified(
            &other,
            vec![attestation(other.chain_id(), "acme-supplier", &supplier, 1)],
            0,
        );
        assert!(matches!(
            g.verify_receipt(&r),
            Err(ReceiptVerifyError::Receipt(ReceiptError::ChainId { .. }))
        ));
    }
}
