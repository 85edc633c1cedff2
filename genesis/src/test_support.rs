//! Shared fixtures for the unit tests: the example genesis from the crate
//! documentation and the seeds of its keys.

use lotline_core::SigningKey;

use crate::Genesis;

/// The ```toml block of the crate documentation, so the documented example
/// is the one the tests parse.
pub fn example_toml() -> String {
    let source = include_str!("lib.rs");
    let mut out = String::new();
    let mut inside = false;
    for line in source.lines() {
        let Some(doc) = line.strip_prefix("//!") else {
            continue;
        };
        let doc = doc.strip_prefix(' ').unwrap_or(doc);
        match (inside, doc.trim()) {
            (false, "```toml") => inside = true,
            (true, "```") => break,
            (true, _) => {
                out.push_str(doc);
                out.push('\n');
            }
            _ => {}
        }
    }
    assert!(!out.is_empty(), "lib.rs lost its ```toml example");
    out
}

pub fn example() -> Genesis {
    Genesis::from_toml(&example_toml()).unwrap()
}

/// Client key of acme-supplier in the example.
pub fn supplier_client() -> SigningKey {
    SigningKey::from_seed(&[1; 32])
}

/// Client key of food-agency in the example.
pub fn regulator_client() -> SigningKey {
    SigningKey::from_seed(&[2; 32])
}

/// Node keys of the two validators in the example.
pub fn node_keys() -> [SigningKey; 2] {
    [
        SigningKey::from_seed(&[3; 32]),
        SigningKey::from_seed(&[4; 32]),
    ]
}

/// An EPCIS event from JSON, on top of a minimal valid ObjectEvent.
pub fn event(overrides: serde_json::Value) -> lotline_core::epcis::Event {
    let mut base = serde_json::json!({
        "type": "ObjectEvent",
        "eventTime": "2025-03-01T10:00:00Z",
        "eventTimeZoneOffset": "+00:00",
        "action": "OBSERVE",
        "epcList": ["https://id.gs1.org/01/09506000134352/21/1001"],
    });
    if let (Some(base), Some(extra)) = (base.as_object_mut(), overrides.as_object()) {
        for (k, v) in extra {
            if v.is_null() {
                base.remove(k);
            } else {
                base.insert(k.clone(), v.clone());
            }
        }
    }
    serde_json::from_value(base).unwrap()
}

/// A signed statement of `org` by `key` on `chain_id`.
pub fn attestation(
    chain_id: lotline_core::Digest,
    org: &str,
    key: &SigningKey,
    nonce: u32,
) -> lotline_core::Envelope {
    let event = event(serde_json::json!({ "bizStep": "shipping" }));
    assert_eq!(
        event.validate(),
        vec![],
        "the test event must be valid EPCIS"
    );
    lotline_core::Statement {
        version: lotline_core::statement::STATEMENT_VERSION,
        chain_id,
        org: org.to_owned(),
        key: key.public_key(),
        issued_at_ms: 1_740_823_200_000,
        nonce: format!("{nonce:08x}"),
        event,
        private: None,
    }
    .sign(key)
}

/// A finalized block at height 1 over `attestations`, certified by every
/// key in `signers` (index, key), and the receipt of leaf `leaf`.
pub fn receipt(
    chain_id: lotline_core::Digest,
    attestations: Vec<lotline_core::Envelope>,
    signers: &[(u16, &SigningKey)],
    leaf: usize,
) -> lotline_core::Receipt {
    receipt_at(chain_id, 1, attestations, signers, leaf)
}

/// [`receipt`] for a block at `height` (its parent is not checked by a
/// receipt, so any stands in).
pub fn receipt_at(
    chain_id: lotline_core::Digest,
    height: u64,
    attestations: Vec<lotline_core::Envelope>,
    signers: &[(u16, &SigningKey)],
    leaf: usize,
) -> lotline_core::Receipt {
    receipt_in_epoch(chain_id, height, 0, attestations, signers, leaf)
}

/// [`receipt_at`] certified in `epoch` (signer indices are the epoch's).
pub fn receipt_in_epoch(
    chain_id: lotline_core::Digest,
    height: u64,
    epoch: u64,
    attestations: Vec<lotline_core::Envelope>,
    signers: &[(u16, &SigningKey)],
    leaf: usize,
) -> lotline_core::Receipt {
    use lotline_core::certificate::Signed;
    use lotline_core::{Block, Certificate, Header, merkle::BlockTree};

    let block = Block::new(
        chain_id,
        height,
        0,
        Header::genesis_parent(&chain_id),
        1_740_823_200_050,
        0,
        attestations,
    );
    let hash = block.hash();
    let msg = Certificate::signing_bytes(&chain_id, epoch, 0, &hash);
    let certificate = Certificate {
        epoch,
        view: 0,
        block: hash,
        signatures: signers
            .iter()
            .map(|(i, k)| Signed {
                signer: *i,
                signature: k.sign(&msg),
            })
            .collect(),
    };
    let proof = BlockTree::new(&block.ids()).proof(leaf).unwrap();
    lotline_core::Receipt {
        version: lotline_core::receipt::RECEIPT_VERSION,
        attestation: block.attestations[leaf].clone(),
        leaf_index: u32::try_from(leaf).unwrap(),
        proof,
        header: block.header,
        descendants: Vec::new(),
        certificate,
    }
}

/// The example with encryption keys for both orgs (supplier, regulator):
/// the genesis and the two secret keys.
pub fn example_with_encryption_keys() -> (Genesis, [lotline_core::private::EncryptionSecretKey; 2])
{
    use lotline_core::private::EncryptionSecretKey;
    let keys = [
        EncryptionSecretKey::derive(&[10; 32]),
        EncryptionSecretKey::derive(&[11; 32]),
    ];
    let mut text = example_toml();
    for (client, key) in [
        (supplier_client(), &keys[0]),
        (regulator_client(), &keys[1]),
    ] {
        let line = format!("client_keys = [\"{}\"]", client.public_key().to_hex());
        assert!(text.contains(&line), "example lost {line}");
        text = text.replacen(
            &line,
            &format!("{line}\nencryption_key = \"{}\"", key.public_key().to_hex()),
            1,
        );
    }
    (Genesis::from_toml(&text).unwrap(), keys)
}

/// The example with `[consensus] epoch_blocks = blocks`.
pub fn example_with_epochs(blocks: u64) -> Genesis {
    let text = example_toml();
    let line = "timeout_max_ms = 30000";
    assert!(text.contains(line), "example lost {line}");
    let text = text.replacen(line, &format!("{line}\nepoch_blocks = {blocks}"), 1);
    Genesis::from_toml(&text).unwrap()
}
