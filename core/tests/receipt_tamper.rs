//! Receipts are tamper-evident: a real chain is built in memory (n = 1 and
//! n = 4 validators), every receipt verifies, and then every single-bit
//! change of a receipt's byte form, and a sample of its JSON form, makes
//! decode-then-verify fail.
//!
//! A bit flip that still verifies is a bug in `lotline-core`: the failure
//! message names the field, and the test must not be weakened to pass.

use lotline_core::attestation::Envelope;
use lotline_core::block::{Block, Header};
use lotline_core::certificate::{Certificate, Signed};
use lotline_core::crypto::SigningKey;
use lotline_core::epcis::Event;
use lotline_core::hash::{self, Digest, Domain};
use lotline_core::merkle::BlockTree;
use lotline_core::receipt::{RECEIPT_VERSION, Receipt, ReceiptError, verify_receipt};
use lotline_core::statement::{STATEMENT_VERSION, Statement};
use lotline_core::validators::ValidatorSet;

/// A finalized block of a chain and the receipts of all its attestations.
struct Chain {
    set: ValidatorSet,
    validator_keys: Vec<SigningKey>,
    block: Block,
    certificate: Certificate,
    receipts: Vec<Receipt>,
}

fn event(serial: usize) -> Event {
    let event: Event = serde_json::from_value(serde_json::json!({
        "type": "ObjectEvent",
        "eventTime": "2025-03-01T10:15:00.000Z",
        "eventTimeZoneOffset": "+01:00",
        "action": "OBSERVE",
        "epcList": [format!("https://id.gs1.org/01/09506000134352/21/{serial}")],
        "bizStep": "inspecting",
        "disposition": "conformant",
        "readPoint": {"id": "https://id.gs1.org/414/9506000134376"},
        "lotline:quality": {
            "kind": "inspection",
            "result": "pass",
            "measurements": [{"name": "diameter", "value": 12.02, "uom": "MMT", "specMin": 11.9, "specMax": 12.1}]
        }
    }))
    .expect("an EPCIS ObjectEvent");
    let problems = event.validate();
    assert!(
        problems.is_empty(),
        "the test event must be valid EPCIS: {problems:?}"
    );
    event
}

/// Builds chain `name` of `n` validators whose first block holds `count`
/// attestations of two member keys, certified by the validators in `signers`.
fn build_chain(name: &str, n: usize, count: usize, signers: &[u16]) -> Chain {
    let chain_id = hash::hash(Domain::Genesis, name.as_bytes());
    let validator_keys: Vec<SigningKey> = (0..n)
        .map(|i| SigningKey::from_seed(&[i as u8 + 1; 32]))
        .collect();
    let set = ValidatorSet::new(
        chain_id,
        validator_keys.iter().map(SigningKey::public_key).collect(),
    );
    let members = [
        SigningKey::from_seed(&[101; 32]),
        SigningKey::from_seed(&[102; 32]),
    ];

    let attestations: Vec<Envelope> = (0..count)
        .map(|i| {
            let key = &members[i % 2];
            Statement {
                version: STATEMENT_VERSION,
                chain_id,
                org: ["acme-supplier", "bolt-works"][i % 2].to_owned(),
                key: key.public_key(),
                issued_at_ms: 1_740_820_500_000 + i as u64,
                nonce: format!("{i:016x}"),
                event: event(1000 + i),
                private: None,
            }
            .sign(key)
        })
        .collect();
    let block = Block::new(
        chain_id,
        1,
        3,
        Header::genesis_parent(&chain_id),
        1_740_820_501_000,
        1 % n as u16,
        attestations,
    );
    assert_eq!(block.check_body(&chain_id).map(|ids| ids.len()), Ok(count));

    let hash = block.hash();
    let msg = Certificate::signing_bytes(&chain_id, 0, 3, &hash);
    let certificate = Certificate {
        epoch: 0,
        view: 3,
        block: hash,
        signatures: signers
            .iter()
            .map(|&i| Signed {
                signer: i,
                signature: validator_keys[usize::from(i)].sign(&msg),
            })
            .collect(),
    };
    let tree = BlockTree::new(&block.ids());
    let receipts = (0..count)
        .map(|leaf| Receipt {
            version: RECEIPT_VERSION,
            attestation: block.attestations[leaf].clone(),
            leaf_index: leaf as u32,
            proof: tree.proof(leaf).expect("leaf in range"),
            header: block.header.clone(),
            descendants: Vec::new(),
            certificate: certificate.clone(),
        })
        .collect();
    Chain {
        set,
        validator_keys,
        block,
        certificate,
        receipts,
    }
}

fn n1() -> Chain {
    build_chain("receipt-tamper n=1", 1, 5, &[0])
}

/// n = 4 tolerates f = 1; a quorum is 3. Signer 2 is the one missing.
fn n4() -> Chain {
    build_chain("receipt-tamper n=4", 4, 7, &[0, 1, 3])
}

/// The fields in which `a` and `b` differ, by path.
fn differing_fields(a: &Receipt, b: &Receipt) -> Vec<String> {
    let mut out = Vec::new();
    let mut check = |name: &str, differs: bool| {
        if differs {
            out.push(name.to_owned());
        }
    };
    check("version", a.version != b.version);
    check(
        "attestation.payloadType",
        a.attestation.payload_type != b.attestation.payload_type,
    );
    check(
        "attestation.payload",
        a.attestation.payload != b.attestation.payload,
    );
    check(
        "attestation.signatures.len",
        a.attestation.signatures.len() != b.attestation.signatures.len(),
    );
    for (i, (x, y)) in a
        .attestation
        .signatures
        .iter()
        .zip(&b.attestation.signatures)
        .enumerate()
    {
        check(
            &format!("attestation.signatures[{i}].keyid"),
            x.keyid != y.keyid,
        );
        check(&format!("attestation.signatures[{i}].sig"), x.sig != y.sig);
    }
    check("leafIndex", a.leaf_index != b.leaf_index);
    check("proof", a.proof != b.proof);
    let (h, k) = (&a.header, &b.header);
    check("header.version", h.version != k.version);
    check("header.chain_id", h.chain_id != k.chain_id);
    check("header.height", h.height != k.height);
    check("header.view", h.view != k.view);
    check("header.parent", h.parent != k.parent);
    check("header.root", h.root != k.root);
    check("header.count", h.count != k.count);
    check("header.timestamp_ms", h.timestamp_ms != k.timestamp_ms);
    check("header.proposer", h.proposer != k.proposer);
    let (c, d) = (&a.certificate, &b.certificate);
    check("certificate.epoch", c.epoch != d.epoch);
    check("certificate.view", c.view != d.view);
    check("certificate.block", c.block != d.block);
    check("certificate.signatures", c.signatures != d.signatures);
    if out.is_empty() {
        out.push("(none: decodes to an equal receipt)".to_owned());
    }
    out
}

/// Flips each bit in `positions` (bit indexes) of `bytes`; returns every
/// flip after which `decode` and verification still succeed, with the
/// fields that changed.
fn surviving_flips(
    chain: &Chain,
    original: &Receipt,
    bytes: &[u8],
    positions: impl Iterator<Item = usize>,
    decode: impl Fn(&[u8]) -> Option<Receipt>,
) -> Vec<String> {
    let mut survivors = Vec::new();
    let mut tampered = bytes.to_vec();
    for bit in positions {
        tampered[bit / 8] ^= 1 << (bit % 8);
        if let Some(receipt) = decode(&tampered)
            && verify_receipt(&receipt, &chain.set).is_ok()
        {
            survivors.push(format!(
                "bit {bit} (byte {} {:#04x} -> {:#04x}): {}",
                bit / 8,
                bytes[bit / 8],
                tampered[bit / 8],
                differing_fields(original, &receipt).join(", ")
            ));
        }
        tampered[bit / 8] = bytes[bit / 8];
    }
    survivors
}

fn assert_no_survivors(what: &str, survivors: &[String]) {
    assert!(
        survivors.is_empty(),
        "{what}: {} single-bit changes still verify (a bug in lotline-core):\n{}",
        survivors.len(),
        survivors.join("\n")
    );
}

#[test]
fn every_receipt_of_a_real_chain_verifies() {
    for chain in [n1(), n4()] {
        assert_eq!(
            chain.certificate.verify(&chain.set, 3, &chain.block.hash()),
            Ok(())
        );
        for (leaf, receipt) in chain.receipts.iter().enumerate() {
            let verified = verify_receipt(receipt, &chain.set).expect("an honest receipt verifies");
            assert_eq!(verified.id, chain.block.attestations[leaf].id());
            assert_eq!(verified.block, chain.block.hash());
            assert_eq!(verified.height, 1);
            assert_eq!(
                verified.certified_by,
                chain
                    .certificate
                    .signatures
                    .iter()
                    .map(|s| s.signer)
                    .collect::<Vec<_>>()
            );
            // Both encodings round-trip to a receipt that still verifies.
            let from_bytes = Receipt::from_bytes(&receipt.to_bytes()).expect("postcard round trip");
            assert_eq!(&from_bytes, receipt);
            let json = serde_json::to_vec(receipt).expect("JSON encoding");
            let from_json = Receipt::from_json(&json).expect("JSON round trip");
            assert_eq!(&from_json, receipt);
            assert!(verify_receipt(&from_json, &chain.set).is_ok());
        }
    }
}

#[test]
fn n1_every_postcard_bit_flip_fails() {
    let chain = n1();
    let receipt = &chain.receipts[2];
    let bytes = receipt.to_bytes();
    let survivors = surviving_flips(&chain, receipt, &bytes, 0..bytes.len() * 8, |b| {
        Receipt::from_bytes(b).ok()
    });
    assert_no_survivors(
        &format!("n=1 receipt, {} postcard bytes", bytes.len()),
        &survivors,
    );
}

#[test]
fn n4_every_postcard_bit_flip_fails() {
    let chain = n4();
    let receipt = &chain.receipts[5];
    let bytes = receipt.to_bytes();
    let survivors = surviving_flips(&chain, receipt, &bytes, 0..bytes.len() * 8, |b| {
        Receipt::from_bytes(b).ok()
    });
    assert_no_survivors(
        &format!("n=4 receipt, {} postcard bytes", bytes.len()),
        &survivors,
    );
}

/// A flipped bit in JSON often gives invalid UTF-8 or invalid JSON: that
/// counts as failing. Every bit of every third byte is flipped, and the
/// sample is offset differently for two receipts so every byte position
/// class is covered.
#[test]
fn sampled_json_bit_flips_fail() {
    let chain = n4();
    let mut survivors = Vec::new();
    for (offset, leaf) in [(0usize, 0usize), (1, 5), (2, 6)] {
        let receipt = &chain.receipts[leaf];
        let json = serde_json::to_vec(receipt).expect("JSON encoding");
        let positions = (0..json.len() * 8).filter(|bit| (bit / 8) % 3 == offset);
        survivors.extend(
            surviving_flips(&chain, receipt, &json, positions, |b| {
                Receipt::from_json(b).ok()
            })
            .into_iter()
            .map(|s| format!("leaf {leaf}: {s}")),
        );
    }
    assert_no_survivors("n=4 receipt JSON", &survivors);
}

/// Structural changes that are not single bit flips.
#[test]
fn structural_tampering_fails() {
    let chain = n4();
    let set = &chain.set;
    let good = &chain.receipts[3];
    let fails = |r: &Receipt| verify_receipt(r, set).is_err();

    let mut r = good.clone();
    r.leaf_index = 4;
    assert!(matches!(
        verify_receipt(&r, set),
        Err(ReceiptError::Inclusion { .. })
    ));

    // Another attestation of the same block, with this leaf's proof.
    let mut r = good.clone();
    r.attestation = chain.block.attestations[4].clone();
    assert!(fails(&r));

    let mut r = good.clone();
    r.proof.swap(0, 1);
    assert!(fails(&r));

    let mut r = good.clone();
    r.proof.pop();
    assert!(fails(&r));

    let mut r = good.clone();
    r.proof.clear();
    assert!(fails(&r));

    // A certificate with a repeated signer, or one signature short.
    let mut r = good.clone();
    r.certificate.signatures[1] = r.certificate.signatures[0];
    assert!(fails(&r));
    let mut r = good.clone();
    r.certificate.signatures.pop();
    assert!(fails(&r));

    // A signature of the missing validator 2 under the wrong index.
    let mut r = good.clone();
    let msg = Certificate::signing_bytes(&set.chain_id, 0, 3, &chain.block.hash());
    r.certificate.signatures[2] = Signed {
        signer: 3,
        signature: chain.validator_keys[2].sign(&msg),
    };
    assert!(fails(&r));

    // A notarize vote's signature does not count as a finalize.
    let mut r = good.clone();
    let notarize = lotline_core::vote::signing_bytes(
        &set.chain_id,
        lotline_core::vote::VoteKind::Notarize,
        0,
        3,
        &chain.block.hash().0,
    );
    r.certificate.signatures[0].signature = chain.validator_keys[0].sign(&notarize);
    assert!(fails(&r));

    // The same receipt against another chain's validator set.
    let other = ValidatorSet::new(Digest([0xAA; 32]), set.validators.clone());
    assert!(matches!(
        verify_receipt(good, &other),
        Err(ReceiptError::ChainId { .. })
    ));

    // The receipt of another chain with the same validator keys.
    let other_chain = build_chain("another chain", 4, 7, &[0, 1, 3]);
    assert_ne!(other_chain.set.chain_id, set.chain_id);
    let mut foreign = other_chain.receipts[3].clone();
    foreign.header.chain_id = set.chain_id;
    assert!(fails(&foreign));

    let mut r = good.clone();
    r.version = RECEIPT_VERSION + 1;
    assert!(matches!(
        verify_receipt(&r, set),
        Err(ReceiptError::Version(_))
    ));
}

/// A Merkle proof longer than the tree is deep carries hashes that prove
/// nothing; a receipt with them is not the receipt the node issued.
#[test]
fn a_proof_with_extra_hashes_fails() {
    for chain in [n1(), n4()] {
        let mut r = chain.receipts[0].clone();
        r.proof.push(Digest([0x55; 32]));
        assert!(
            verify_receipt(&r, &chain.set).is_err(),
            "a receipt with an extra, unused proof hash still verifies ({} leaves, proof of {} hashes)",
            chain.block.attestations.len(),
            r.proof.len()
        );
    }
}

/// A receipt with no certificate signatures is a forgery whatever the set:
/// an empty validator set (n = 0, so q = n - f = 0) must certify nothing
/// rather than everything.
#[test]
fn an_empty_validator_set_certifies_nothing() {
    let chain = n1();
    let mut forged = chain.receipts[0].clone();
    forged.certificate.signatures.clear();
    let empty = ValidatorSet::new(chain.set.chain_id, Vec::new());
    assert!(
        verify_receipt(&forged, &empty).is_err(),
        "a receipt without signatures verifies against an empty validator set (quorum() is 0)"
    );
}

/// A hostile header may claim the last height there is: nothing extends
/// it, and checking a claimed child is an error, not an overflow (found by
/// reading the fuzz targets' reach: receipts and sync answers carry
/// headers from outside).
#[test]
fn a_header_at_the_last_height_has_no_child_and_checking_one_does_not_panic() {
    use lotline_core::block::BlockError;
    use lotline_core::certificate::{Finality, FinalityError};
    let chain = build_chain("last-height", 1, 1, &[0]);
    let mut last = chain.block.header.clone();
    last.height = u64::MAX;
    let mut child = chain.block.clone();
    child.header.parent = last.hash();
    child.header.height = 0; // what u64::MAX + 1 would wrap to
    assert!(matches!(
        child.check_link(Some(&last)),
        Err(BlockError::PastLastHeight)
    ));
    let finality = Finality {
        certificate: chain.certificate.clone(),
        descendants: vec![child.header.clone()],
    };
    assert!(matches!(
        finality.verify(&chain.set, &last),
        Err(FinalityError::Link { index: 0 })
    ));
}
