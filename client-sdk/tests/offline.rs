//! The SDK without a node: building and signing attestations, key files, and
//! verifying receipts against a pinned genesis. (HTTP paths are tested end to
//! end against real nodes in the workspace's `tests/` crate.)

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::time::{SystemTime, UNIX_EPOCH};

use lotline_core::block::{Block, Header};
use lotline_core::certificate::{Certificate, Signed};
use lotline_core::epcis::{Event, QuantityElement};
use lotline_core::merkle::BlockTree;
use lotline_core::private::Suite;
use lotline_core::receipt::RECEIPT_VERSION;
use lotline_core::{Digest, SigningKey, limits};
use lotline_genesis::keys::{KeyFileError, write_signing_key};
use lotline_sdk::{
    AttestationBuilder, Envelope, Genesis, Receipt, ReceiptVerifyError, SdkError, Signer,
    Statement, verify_receipt,
};
use serde_json::json;

const CHAIN: Digest = Digest([7; 32]);
const NOW: u64 = 1_772_438_400_000;

fn signer() -> Signer {
    Signer::new("supplier", SigningKey::from_seed(&[11; 32]))
}

fn event_json() -> serde_json::Value {
    json!({
        "type": "ObjectEvent",
        "eventID": "urn:uuid:6f1c2a4e-1d2b-4c3d-9e8f-0a1b2c3d4e5f",
        "eventTime": "2026-03-02T08:00:00.000Z",
        "eventTimeZoneOffset": "+08:00",
        "action": "ADD",
        "bizStep": "commissioning",
        "disposition": "active",
        "quantityList": [
            { "epcClass": "https://id.gs1.org/01/09506000134352/10/LOT-1", "quantity": 500.0, "uom": "KGM" }
        ],
        "readPoint": { "id": "https://id.gs1.org/414/9506000134376" },
        "lotline:quality": {
            "kind": "inspection",
            "result": "pass",
            "measurements": [{ "name": "moisture", "value": 0.06, "uom": "P1", "specMax": 0.1 }]
        }
    })
}

fn event() -> Event {
    serde_json::from_value(event_json()).unwrap()
}

#[test]
fn built_envelopes_verify_and_their_statement_parses_back() {
    let signer = signer();
    let envelope = AttestationBuilder::new(CHAIN, &signer)
        .event(event())
        .issued_at_ms(NOW)
        .nonce("n-1")
        .build()
        .unwrap();
    assert_eq!(envelope.verify(), Ok(signer.public_key()));
    assert_eq!(envelope.payload_type, Statement::payload_type());
    let statement = Statement::from_payload(&envelope.payload).unwrap();
    assert_eq!(
        statement,
        Statement {
            version: 1,
            chain_id: CHAIN,
            org: "supplier".into(),
            key: signer.public_key(),
            issued_at_ms: NOW,
            nonce: "n-1".into(),
            event: event(),
            private: None,
        }
    );
    // The JSON (API) form round-trips and still verifies.
    let wire = serde_json::to_vec(&envelope).unwrap();
    let back = Envelope::from_json(&wire).unwrap();
    assert_eq!(back, envelope);
    assert!(back.verify().is_ok());
    // Same statement, same id: that is what makes a retry idempotent.
    let again = AttestationBuilder::new(CHAIN, &signer)
        .event(event())
        .issued_at_ms(NOW)
        .nonce("n-1")
        .build()
        .unwrap();
    assert_eq!(again.id(), envelope.id());
}

#[test]
fn defaults_are_now_and_a_fresh_random_nonce() {
    let signer = signer();
    let before = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let a = AttestationBuilder::new(CHAIN, &signer)
        .event(event())
        .build()
        .unwrap();
    let b = AttestationBuilder::new(CHAIN, &signer)
        .event(event())
        .build()
        .unwrap();
    let after = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let (sa, sb) = (
        Statement::from_payload(&a.payload).unwrap(),
        Statement::from_payload(&b.payload).unwrap(),
    );
    assert!((before..=after).contains(&sa.issued_at_ms));
    assert_eq!(sa.nonce.len(), 32);
    assert!(sa.nonce.bytes().all(|c| c.is_ascii_hexdigit()));
    assert_ne!(sa.nonce, sb.nonce);
    assert_ne!(a.id(), b.id());
}

#[test]
fn event_json_is_the_same_as_a_typed_event() {
    let signer = signer();
    let from_json = AttestationBuilder::new(CHAIN, &signer)
        .event_json(event_json())
        .unwrap()
        .issued_at_ms(NOW)
        .nonce("x")
        .build()
        .unwrap();
    let typed = AttestationBuilder::new(CHAIN, &signer)
        .event(event())
        .issued_at_ms(NOW)
        .nonce("x")
        .build()
        .unwrap();
    assert_eq!(from_json, typed);
}

#[test]
fn event_json_of_the_wrong_shape_says_what_is_wrong() {
    let mut json = event_json();
    json.as_object_mut().unwrap().remove("eventTime");
    let err = AttestationBuilder::new(CHAIN, &signer())
        .event_json(json)
        .unwrap_err();
    assert!(matches!(err, SdkError::EventJson(_)), "{err:?}");
    assert!(err.to_string().contains("eventTime"), "{err}");

    let mut json = event_json();
    json["type"] = json!("RecallEvent");
    let err = AttestationBuilder::new(CHAIN, &signer())
        .event_json(json)
        .unwrap_err();
    assert!(matches!(err, SdkError::EventJson(_)), "{err:?}");
}

#[test]
fn no_event_no_attestation() {
    let err = AttestationBuilder::new(CHAIN, &signer())
        .build()
        .unwrap_err();
    assert!(matches!(err, SdkError::MissingEvent), "{err:?}");
}

/// An event wrong in several ways: a time that is not RFC 3339, an offset
/// that is not one, no action on an ObjectEvent, a GTIN with a bad check
/// digit, an unknown bare field.
fn invalid_event() -> Event {
    let mut event = event();
    event.event_time = "yesterday".into();
    event.event_time_zone_offset = "CET".into();
    event.action = None;
    event.quantity_list = vec![QuantityElement {
        epc_class: "https://id.gs1.org/01/09506000134353/10/LOT-1".into(),
        quantity: Some(1.0),
        uom: None,
        extensions: Default::default(),
    }];
    event.extensions.insert("bogusField".into(), json!(1));
    event
}

#[test]
fn invalid_events_are_refused_with_every_problem_before_signing() {
    let event = invalid_event();
    let expected = event.validate();
    let result = AttestationBuilder::new(CHAIN, &signer())
        .event(event)
        .build();
    if expected.is_empty() {
        // core's Event::validate is not written yet (it returns no problems);
        // the builder must then pass the event through unchanged.
        eprintln!("Event::validate found no problems: core's validator is still a stub");
        assert!(result.is_ok());
        return;
    }
    match result {
        Err(SdkError::InvalidEvent(problems)) => {
            assert_eq!(problems, expected);
            assert!(problems.len() >= 3, "{problems:?}");
        }
        other => panic!("expected InvalidEvent, got {other:?}"),
    }
}

#[test]
fn oversized_statements_are_refused_before_sending() {
    let mut event = event();
    event.extensions.insert(
        "example:blob".into(),
        json!("x".repeat(limits::STATEMENT_BYTES_MAX)),
    );
    let problems = event.validate();
    let err = AttestationBuilder::new(CHAIN, &signer())
        .event(event)
        .build()
        .unwrap_err();
    if problems.is_empty() {
        assert!(
            matches!(
                err,
                SdkError::Envelope(lotline_core::attestation::EnvelopeError::PayloadTooLarge { max, .. })
                    if max == limits::STATEMENT_BYTES_MAX
            ),
            "{err:?}"
        );
    } else {
        assert!(matches!(err, SdkError::InvalidEvent(_)), "{err:?}");
    }
}

#[test]
fn signer_reads_a_key_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("client.key");
    let key = SigningKey::from_seed(&[21; 32]);
    write_signing_key(&path, &key).unwrap();
    let signer = Signer::from_key_file("manufacturer", &path).unwrap();
    assert_eq!(signer.public_key(), key.public_key());
    assert_eq!(signer.org(), "manufacturer");
    // The secret never shows in Debug output.
    let debug = format!("{signer:?}");
    assert!(!debug.contains(&hex::encode([21u8; 32])), "{debug}");
    let envelope = AttestationBuilder::new(CHAIN, &signer)
        .event(event())
        .build()
        .unwrap();
    assert_eq!(envelope.verify(), Ok(key.public_key()));

    match Signer::from_key_file("manufacturer", dir.path().join("missing.key")) {
        Err(SdkError::KeyFile(KeyFileError::Io { .. })) => {}
        other => panic!("expected KeyFile(Io), got {other:?}"),
    }
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    match Signer::from_key_file("manufacturer", &path) {
        Err(SdkError::KeyFile(KeyFileError::InsecurePermissions { mode: 0o644, .. })) => {}
        other => panic!("expected KeyFile(InsecurePermissions), got {other:?}"),
    }
}

// ---- receipts ---------------------------------------------------------------

struct Chain {
    genesis: Genesis,
    validators: Vec<SigningKey>,
    member: Signer,
}

fn chain(name: &str) -> Chain {
    let validators: Vec<SigningKey> = (1..=4u8).map(|i| SigningKey::from_seed(&[i; 32])).collect();
    let member = Signer::new("supplier", SigningKey::from_seed(&[40; 32]));
    let manufacturer = SigningKey::from_seed(&[41; 32]);
    let mut toml = format!(
        r#"
chain_name = "{name}"

[consensus]
block_max_attestations = 1000
block_interval_ms = 50
timeout_base_ms = 1000
timeout_max_ms = 30000

[[orgs]]
id = "supplier"
name = "Supplier Ltd"
role = "supplier"
client_keys = ["{}"]

[[orgs]]
id = "manufacturer"
name = "Manufacturer GmbH"
role = "manufacturer"
client_keys = ["{}"]
"#,
        member.public_key(),
        manufacturer.public_key()
    );
    for (i, key) in validators.iter().enumerate() {
        let org = if i % 2 == 0 {
            "supplier"
        } else {
            "manufacturer"
        };
        toml.push_str(&format!(
            "\n[[validators]]\norg = \"{org}\"\nnode_key = \"{}\"\n",
            key.public_key()
        ));
    }
    let genesis = Genesis::from_toml(&toml).unwrap();
    Chain {
        genesis,
        validators,
        member,
    }
}

/// A receipt for `envelope` as leaf 1 of a 3-attestation block, certified by
/// validators `signers`.
fn receipt(chain: &Chain, envelope: &Envelope, signers: &[u16]) -> Receipt {
    let chain_id = chain.genesis.chain_id();
    let other = |n: &str| {
        AttestationBuilder::new(chain_id, &chain.member)
            .event(event())
            .issued_at_ms(NOW)
            .nonce(n)
            .build()
            .unwrap()
    };
    let attestations = vec![other("a"), envelope.clone(), other("c")];
    let block = Block::new(
        chain_id,
        1,
        2,
        Header::genesis_parent(&chain_id),
        NOW,
        0,
        attestations,
    );
    let proof = BlockTree::new(&block.ids()).proof(1).unwrap();
    let hash = block.hash();
    let message = Certificate::signing_bytes(&chain_id, 0, 2, &hash);
    let signatures = signers
        .iter()
        .map(|&i| Signed {
            signer: i,
            signature: chain.validators[usize::from(i)].sign(&message),
        })
        .collect();
    Receipt {
        version: RECEIPT_VERSION,
        attestation: envelope.clone(),
        leaf_index: 1,
        proof,
        header: block.header.clone(),
        descendants: Vec::new(),
        certificate: Certificate {
            epoch: 0,
            view: 2,
            block: hash,
            signatures,
        },
    }
}

#[test]
fn a_receipt_verifies_offline_against_the_pinned_genesis() {
    let chain = chain("sdk-test");
    let envelope = AttestationBuilder::new(chain.genesis.chain_id(), &chain.member)
        .event(event())
        .build()
        .unwrap();
    let receipt = receipt(&chain, &envelope, &[0, 2, 3]);

    // The JSON form, as a node serves it.
    let json = serde_json::to_vec(&receipt).unwrap();
    let receipt = Receipt::from_json(&json).unwrap();
    let verified = verify_receipt(&receipt, &chain.genesis).unwrap();
    assert_eq!(verified.id, envelope.id());
    assert_eq!(verified.signer, chain.member.public_key());
    assert_eq!(verified.height, 1);
    assert_eq!(verified.certified_by, vec![0, 2, 3]);

    // The same proof through core's check against the validator set alone.
    let by_set =
        lotline_sdk::verify_receipt_with_validators(&receipt, &chain.genesis.validator_set())
            .unwrap();
    assert_eq!(by_set, verified);
}

#[test]
fn receipts_that_prove_nothing_are_refused() {
    let chain = chain("sdk-test");
    let envelope = AttestationBuilder::new(chain.genesis.chain_id(), &chain.member)
        .event(event())
        .build()
        .unwrap();

    // Too few validators (quorum of 4 is 3).
    let weak = receipt(&chain, &envelope, &[0, 1]);
    assert!(matches!(
        verify_receipt(&weak, &chain.genesis),
        Err(ReceiptVerifyError::Receipt(_))
    ));

    // A tampered attestation no longer matches its signature or the root.
    let mut tampered = receipt(&chain, &envelope, &[0, 1, 2]);
    let mut payload = tampered.attestation.payload.to_vec();
    payload[10] ^= 1;
    tampered.attestation.payload = payload.into();
    assert!(matches!(
        verify_receipt(&tampered, &chain.genesis),
        Err(ReceiptVerifyError::Receipt(_))
    ));

    // A genesis the verifier did not pin (another chain) proves nothing.
    let other = chain_named_other();
    let genuine = receipt(&chain, &envelope, &[0, 1, 2]);
    assert!(verify_receipt(&genuine, &other).is_err());

    // A validly certified attestation by a key no member owns.
    let outsider = Signer::new("supplier", SigningKey::from_seed(&[99; 32]));
    let foreign = AttestationBuilder::new(chain.genesis.chain_id(), &outsider)
        .event(event())
        .build()
        .unwrap();
    let foreign = receipt(&chain, &foreign, &[1, 2, 3]);
    assert!(matches!(
        verify_receipt(&foreign, &chain.genesis),
        Err(ReceiptVerifyError::NotMember { key }) if key == outsider.public_key()
    ));
}

fn chain_named_other() -> Genesis {
    chain("another-chain").genesis
}

#[test]
fn sdk_errors_say_what_is_unknown() {
    let id = envelope_id();
    let timeout = SdkError::Timeout { id };
    let text = timeout.to_string();
    assert!(
        text.contains("may still be committed") && text.contains(&id.to_string()),
        "{text}"
    );
}

fn envelope_id() -> lotline_sdk::AttestationId {
    AttestationBuilder::new(CHAIN, &signer())
        .event(event())
        .build()
        .unwrap()
        .id()
}

#[test]
fn a_valid_receipt_for_another_attestation_is_a_mismatch() {
    let chain = chain("sdk-test");
    let chain_id = chain.genesis.chain_id();
    let mine = AttestationBuilder::new(chain_id, &chain.member)
        .event(event())
        .nonce("mine")
        .build()
        .unwrap();
    let theirs = AttestationBuilder::new(chain_id, &chain.member)
        .event(event())
        .nonce("theirs")
        .build()
        .unwrap();
    let receipt = receipt(&chain, &theirs, &[0, 1, 2]);
    assert!(verify_receipt(&receipt, &chain.genesis).is_ok());
    match lotline_sdk::verify_receipt_for(&mine.id(), &receipt, &chain.genesis) {
        Err(SdkError::ReceiptMismatch { expected, got }) => {
            assert_eq!((expected, got), (mine.id(), theirs.id()));
        }
        other => panic!("expected ReceiptMismatch, got {other:?}"),
    }
    assert!(lotline_sdk::verify_receipt_for(&theirs.id(), &receipt, &chain.genesis).is_ok());
}

// ---- private fields ----------------------------------------------------------

/// `chain(name)` with encryption keys for both orgs and a share rule that
/// names the manufacturer for the supplier's records; the two secret keys.
fn private_chain(name: &str) -> (Chain, [lotline_sdk::EncryptionSecretKey; 2]) {
    let base = chain(name);
    let keys = [
        lotline_sdk::EncryptionSecretKey::derive(&[50; 32]),
        lotline_sdk::EncryptionSecretKey::derive(&[51; 32]),
    ];
    let mut toml = base.genesis.to_toml();
    for (org, key) in ["supplier", "manufacturer"].iter().zip(&keys) {
        let at = toml.find(&format!("id = \"{org}\"")).unwrap();
        let line_end = at + toml[at..].find('\n').unwrap();
        toml.insert_str(
            line_end,
            &format!("\nencryption_key = \"{}\"", key.public_key().to_hex()),
        );
    }
    assert!(toml.contains("[read_policy]"));
    toml.push_str("\n[[read_policy.share]]\nfrom = \"supplier\"\nto = [\"org:manufacturer\"]\n");
    let genesis = Genesis::from_toml(&toml).unwrap();
    (
        Chain {
            genesis,
            validators: base.validators,
            member: base.member,
        },
        keys,
    )
}

#[test]
fn private_fields_open_for_entitled_orgs_and_disclose_one_field_offline() {
    // Goal: the builder seals the marked members for exactly the orgs the
    // genesis entitles (issuer + an org a share rule names); both open them,
    // a receipt verifies, one disclosed field checks against it offline and
    // an edited one fails. Compact sections (version 3, the default) and
    // object-form ones (version 2) alike.
    for (suite, version) in [(Suite::Compact, 3), (Suite::Object, 2)] {
        private_fields_round_trip(suite, version);
    }
}

fn private_fields_round_trip(suite: Suite, version: u16) {
    let (chain, keys) = private_chain("private-sdk");
    let envelope = AttestationBuilder::new(chain.genesis.chain_id(), &chain.member)
        .event(event())
        .issued_at_ms(NOW)
        .nonce("p-1")
        .private_fields(&chain.genesis, vec!["/lotline:quality/measurements".into()])
        .private_suite(suite)
        .build()
        .unwrap();
    let payload = String::from_utf8_lossy(&envelope.payload).into_owned();
    assert!(!payload.contains("moisture"), "the measurement is sealed");
    let statement = Statement::from_payload(&envelope.payload).unwrap();
    assert_eq!(statement.version, version);
    let recipients: Vec<&str> = statement
        .private
        .as_ref()
        .unwrap()
        .recipient_orgs()
        .collect();
    assert_eq!(recipients, ["supplier", "manufacturer"]);

    let mine = lotline_sdk::open_private(&envelope, "supplier", &keys[0]).unwrap();
    let theirs = lotline_sdk::open_private(&envelope, "manufacturer", &keys[1]).unwrap();
    assert_eq!(mine, theirs);
    assert_eq!(mine[0].value[0]["name"], "moisture");
    assert!(matches!(
        lotline_sdk::open_private(&envelope, "manufacturer", &keys[0]),
        Err(SdkError::Private(_))
    ));

    let r = receipt(&chain, &envelope, &[0, 1, 2]);
    chain.genesis.verify_receipt(&r).unwrap();
    chain.genesis.verify_disclosure(&r, &mine[0]).unwrap();
    let mut edited = mine[0].clone();
    edited.value[0]["value"] = json!(0.05);
    assert!(matches!(
        chain.genesis.verify_disclosure(&r, &edited),
        Err(ReceiptVerifyError::Disclosure(_))
    ));
}
