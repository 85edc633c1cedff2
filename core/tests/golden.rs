//! Golden vectors: fixed seeds and fixed inputs give these exact bytes and
//! hashes. The constants were observed once and committed.
//!
//! Regenerating any of them is a FORMAT CHANGE (of the statement JSON, DSSE
//! PAE, a hash domain, the header, vote, certificate, evidence or receipt
//! encoding) and must be reviewed as one: old receipts, blocks and
//! signatures stop verifying. When a test fails it prints every mismatching
//! constant.
//!
//! Last reviewed change: header version 2 adds `evidence_root` (the block
//! records equivocation evidence), so the header, block, certificate and
//! receipt vectors changed; attestation and vote vectors did not.

use lotline_core::attestation::Envelope;
use lotline_core::block::{Block, Header};
use lotline_core::certificate::{Certificate, Signed};
use lotline_core::codec;
use lotline_core::crypto::SigningKey;
use lotline_core::evidence::{self, Evidence};
use lotline_core::hash::{self, Digest, Domain};
use lotline_core::merkle::BlockTree;
use lotline_core::receipt::{RECEIPT_VERSION, Receipt, verify_receipt};
use lotline_core::statement::{STATEMENT_VERSION, Statement};
use lotline_core::validators::ValidatorSet;
use lotline_core::vote::{self, Vote, VoteKind};

const MEMBER_PUBLIC_KEY: &str = "d04ab232742bb4ab3a1368bd4615e4e6d0224ab71a016baf8520a332c9778737";
const STATEMENT_PAYLOAD_BLAKE3: &str =
    "c803664caef210fc3f8e6cdcade4a72f312dddbc612b9426fbcdd27b11dc297a";
const ATTESTATION_ID: &str = "e625b594dc5e0e42b5f62c6a91f3703b0a900091e366d5dfcee35ddce71c1618";
const ATTESTATION_SIGNATURE: &str = "0e3f6bb015ad31e273b00470326b498dc13c73a9e7270193934a2279df1c18499515e63ec653611d4018d04d04b2480bf9eacff8e161270846240b60c81a370e";
const ENVELOPE_BYTES_BLAKE3: &str =
    "a552bcd65737520331ecbf79a5b2cd05fce31e96320cda08dcc667497329d4f9";
const ENVELOPE_JSON_BLAKE3: &str =
    "b6e974cda3de7e9ad20f2e4f8626c92e78ecbc5a208843827227e0abd4fd891c";
const MERKLE_ROOT: &str = "faca06585a10480227d6bbb228adf648926801f9b9d6782c7ae32b6dad65cb51";
const HEADER_BYTES: &str = "02e6e30cb5caf7257eeb4ff5354a02d855bf7194e9201dec4914c48c0b3e4e32220102e6e30cb5caf7257eeb4ff5354a02d855bf7194e9201dec4914c48c0b3e4e3222faca06585a10480227d6bbb228adf648926801f9b9d6782c7ae32b6dad65cb5103560603cadffc72ea38632f1f10e980205564ecc612b6f5124b69dfdf8d151fd088a4f387d53202";
const HEADER_HASH: &str = "6c16d7a84022d2fbe1b5baaab19eb2b33e47a4360f04b3fc3f7331ca855a5305";
const BLOCK_BYTES_BLAKE3: &str = "92e32cf72f0f04bfd0325b0f851aab9bc31d5269dc3f85ef7c3d4849b7afe3e2";
const VOTE_SIGNING_BYTES_NOTARIZE: &str = "6c6f746c696e652f76312f766f7465e6e30cb5caf7257eeb4ff5354a02d855bf7194e9201dec4914c48c0b3e4e322200000000000000000000000000000000074242424242424242424242424242424242424242424242424242424242424242";
const VOTE_SIGNING_BYTES_NULLIFY: &str = "6c6f746c696e652f76312f766f7465e6e30cb5caf7257eeb4ff5354a02d855bf7194e9201dec4914c48c0b3e4e322200000000000000000100000000000000070000000000000000000000000000000000000000000000000000000000000000";
const VOTE_SIGNING_BYTES_FINALIZE: &str = "6c6f746c696e652f76312f766f7465e6e30cb5caf7257eeb4ff5354a02d855bf7194e9201dec4914c48c0b3e4e322200000000000000010200000000000000074242424242424242424242424242424242424242424242424242424242424242";
const VOTE_BYTES_FINALIZE: &str = "020007424242424242424242424242424242424242424242424242424242424242424201de24b4413d0b7646ff1d97f786cc14f07f1911997328be902f3f937309c646fb42f86f763f1454040aac875d17df2476550c7f9e941f43daccd3674cf96fdb0a";
const CERTIFICATE_BYTES_BLAKE3: &str =
    "90d1027ee1fa98938ad36de4134487fff0d7a36b1e57955588fd1f6734e270ee";
const RECEIPT_BYTES_BLAKE3: &str =
    "31e9f0119955bd5ccb64dcd7ff0f3b46f90bfe11088df472f216c49ba7030b0f";
const EVIDENCE_ROOT_EMPTY: &str =
    "560603cadffc72ea38632f1f10e980205564ecc612b6f5124b69dfdf8d151fd0";
const EVIDENCE_BYTES: &str = "0000074242424242424242424242424242424242424242424242424242424242424242014f61a4b9c0d3282ceb71b30a8e23b13026eb28d7cb9fa1e128c91f2836cc8981ded6eb3893a212cc632392a150dd0f6fd9a673e5b7faa4ca232d24f6a92d040b000007434343434343434343434343434343434343434343434343434343434343434301b11d04ad3d4b84d726b60599d9831dba993562e816d20d6583d144a85a49d894ffefdd1402f40f9665fe8bf7130f3b775b74c963b3c53e399b1c114338274301";
const EVIDENCE_JSON_BLAKE3: &str =
    "6239df3bf319ac4dd0e8330fc5ee043e907c89bed0f968a825c5e8dbde701fae";
const BLOCK_WITH_EVIDENCE_HEADER_HASH: &str =
    "c12542c42aa586abe7e65215fda90e2555049918b6be56d0bd8ae806c3dae6f8";
const RECEIPT_JSON_BLAKE3: &str =
    "cea6ca84d3e8305180b16389052d0523deb251e10ec77ef338a5977b6ef433a8";

/// Collects (name, expected, actual) and fails once, listing every mismatch
/// as a ready-to-paste constant.
#[derive(Default)]
struct Golden {
    mismatches: Vec<String>,
}

impl Golden {
    fn check(&mut self, name: &str, expected: &str, actual: impl AsRef<str>) {
        let actual = actual.as_ref();
        if expected != actual {
            self.mismatches.push(format!(
                "const {name}: &str = \"{actual}\"; // was \"{expected}\""
            ));
        }
    }

    fn finish(self) {
        assert!(
            self.mismatches.is_empty(),
            "golden vectors changed; this is a format change:\n{}",
            self.mismatches.join("\n")
        );
    }
}

fn blake3_hex(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex().to_string()
}

fn chain_id() -> Digest {
    hash::hash(Domain::Genesis, b"lotline golden vectors v1")
}

fn member() -> SigningKey {
    SigningKey::from_seed(&[0x11; 32])
}

fn validators() -> Vec<SigningKey> {
    (0u8..4)
        .map(|i| SigningKey::from_seed(&[0xA0 + i; 32]))
        .collect()
}

fn statement(nonce: &str) -> Statement {
    let event: lotline_core::epcis::Event = serde_json::from_value(serde_json::json!({
        "type": "ObjectEvent",
        "eventTime": "2025-03-01T10:15:00.000Z",
        "eventTimeZoneOffset": "+01:00",
        "action": "OBSERVE",
        "quantityList": [{"epcClass": "https://id.gs1.org/01/09506000134352/10/LOT-2025-001", "quantity": 200, "uom": "KGM"}],
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
    let problems = lotline_core::epcis::Event::validate(&event);
    assert!(
        problems.is_empty(),
        "the golden event must be valid EPCIS: {problems:?}"
    );
    Statement {
        version: STATEMENT_VERSION,
        chain_id: chain_id(),
        org: "acme-supplier".to_owned(),
        key: member().public_key(),
        issued_at_ms: 1_740_820_500_000,
        nonce: nonce.to_owned(),
        event,
        private: None,
    }
}

fn envelopes() -> Vec<Envelope> {
    ["0001", "0002", "0003"]
        .iter()
        .map(|n| statement(n).sign(&member()))
        .collect()
}

fn block() -> Block {
    let id = chain_id();
    Block::new(
        id,
        1,
        2,
        Header::genesis_parent(&id),
        1_740_820_501_000,
        2,
        envelopes(),
    )
}

fn certificate(block: &Block) -> Certificate {
    let keys = validators();
    let hash = block.hash();
    let msg = Certificate::signing_bytes(&chain_id(), 0, 2, &hash);
    Certificate {
        epoch: 0,
        view: 2,
        block: hash,
        signatures: [0u16, 2, 3]
            .iter()
            .map(|&i| Signed {
                signer: i,
                signature: keys[usize::from(i)].sign(&msg),
            })
            .collect(),
    }
}

fn receipt() -> Receipt {
    let block = block();
    let certificate = certificate(&block);
    Receipt {
        version: RECEIPT_VERSION,
        attestation: block.attestations[1].clone(),
        leaf_index: 1,
        proof: BlockTree::new(&block.ids())
            .proof(1)
            .expect("leaf 1 exists"),
        header: block.header,
        descendants: Vec::new(),
        certificate,
    }
}

#[test]
fn attestation_vectors() {
    let mut g = Golden::default();
    let statement = statement("0001");
    let payload = statement.to_payload();
    let envelope = statement.sign(&member());
    g.check(
        "MEMBER_PUBLIC_KEY",
        MEMBER_PUBLIC_KEY,
        member().public_key().to_hex(),
    );
    g.check(
        "STATEMENT_PAYLOAD_BLAKE3",
        STATEMENT_PAYLOAD_BLAKE3,
        blake3_hex(&payload),
    );
    g.check("ATTESTATION_ID", ATTESTATION_ID, envelope.id().to_string());
    g.check(
        "ATTESTATION_SIGNATURE",
        ATTESTATION_SIGNATURE,
        hex::encode(envelope.signatures[0].sig.0),
    );
    g.check(
        "ENVELOPE_BYTES_BLAKE3",
        ENVELOPE_BYTES_BLAKE3,
        blake3_hex(&envelope.to_bytes()),
    );
    g.check(
        "ENVELOPE_JSON_BLAKE3",
        ENVELOPE_JSON_BLAKE3,
        blake3_hex(&serde_json::to_vec(&envelope).expect("JSON")),
    );
    g.finish();
    // The id is BLAKE3 of the PAE in the attestation domain, and the payload
    // parses back to the statement that was signed.
    assert_eq!(
        envelope.id().0,
        hash::hash(Domain::Attestation, &envelope.pae())
    );
    assert_eq!(
        Statement::from_payload(&envelope.payload).expect("parses"),
        statement
    );
    assert!(envelope.verify().is_ok());
}

#[test]
fn header_and_block_vectors() {
    let mut g = Golden::default();
    let block = block();
    g.check("MERKLE_ROOT", MERKLE_ROOT, block.header.root.to_hex());
    g.check(
        "HEADER_BYTES",
        HEADER_BYTES,
        hex::encode(codec::to_bytes(&block.header)),
    );
    g.check("HEADER_HASH", HEADER_HASH, block.hash().to_string());
    g.check(
        "BLOCK_BYTES_BLAKE3",
        BLOCK_BYTES_BLAKE3,
        blake3_hex(&block.to_bytes()),
    );
    g.finish();
    assert_eq!(
        block.hash().0,
        hash::hash(Domain::Header, &codec::to_bytes(&block.header))
    );
}

/// Validator 1 notarizes two different blocks in view 7.
fn equivocation() -> Evidence {
    let key = &validators()[1];
    let vote = |block: u8| {
        Vote::sign(
            key,
            1,
            &chain_id(),
            VoteKind::Notarize,
            7,
            Digest([block; 32]),
        )
    };
    Evidence {
        first: vote(0x42),
        second: vote(0x43),
    }
}

#[test]
fn evidence_vectors() {
    let mut g = Golden::default();
    let evidence = equivocation();
    g.check(
        "EVIDENCE_ROOT_EMPTY",
        EVIDENCE_ROOT_EMPTY,
        evidence::root(&[]).to_hex(),
    );
    g.check(
        "EVIDENCE_BYTES",
        EVIDENCE_BYTES,
        hex::encode(codec::to_bytes(&evidence)),
    );
    g.check(
        "EVIDENCE_JSON_BLAKE3",
        EVIDENCE_JSON_BLAKE3,
        blake3_hex(&serde_json::to_vec(&evidence).expect("JSON")),
    );
    let recording = block().with_evidence(vec![evidence.clone()]);
    g.check(
        "BLOCK_WITH_EVIDENCE_HEADER_HASH",
        BLOCK_WITH_EVIDENCE_HEADER_HASH,
        recording.hash().to_string(),
    );
    g.finish();
    let set = ValidatorSet::new(
        chain_id(),
        validators().iter().map(SigningKey::public_key).collect(),
    );
    assert!(evidence.verify(&set).is_ok());
    assert_eq!(block().header.evidence_root, evidence::root(&[]));
    assert!(recording.check_body(&chain_id()).is_ok());
}

#[test]
fn vote_vectors() {
    let mut g = Golden::default();
    let chain = chain_id();
    let block = Digest([0x42; 32]);
    g.check(
        "VOTE_SIGNING_BYTES_NOTARIZE",
        VOTE_SIGNING_BYTES_NOTARIZE,
        hex::encode(vote::signing_bytes(
            &chain,
            VoteKind::Notarize,
            0,
            7,
            &block,
        )),
    );
    g.check(
        "VOTE_SIGNING_BYTES_NULLIFY",
        VOTE_SIGNING_BYTES_NULLIFY,
        hex::encode(vote::signing_bytes(
            &chain,
            VoteKind::Nullify,
            0,
            7,
            &Digest::ZERO,
        )),
    );
    g.check(
        "VOTE_SIGNING_BYTES_FINALIZE",
        VOTE_SIGNING_BYTES_FINALIZE,
        hex::encode(vote::signing_bytes(
            &chain,
            VoteKind::Finalize,
            1,
            7,
            &block,
        )),
    );
    let finalize = Vote::sign(&validators()[1], 1, &chain, VoteKind::Finalize, 7, block);
    g.check(
        "VOTE_BYTES_FINALIZE",
        VOTE_BYTES_FINALIZE,
        hex::encode(codec::to_bytes(&finalize)),
    );
    g.finish();
    assert!(
        finalize
            .verify(&chain, &validators()[1].public_key())
            .is_ok()
    );
    // The layout the module documents: namespace, chain id, epoch, kind, view, block.
    let bytes = vote::signing_bytes(&chain, VoteKind::Finalize, 1, 7, &block);
    let ns = vote::VOTE_NAMESPACE.len();
    assert_eq!(bytes.len(), ns + 32 + 8 + 1 + 8 + 32);
    assert_eq!(&bytes[..ns], b"lotline/v1/vote");
    assert_eq!(&bytes[ns..ns + 32], chain.as_bytes());
    assert_eq!(&bytes[ns + 32..ns + 40], &1u64.to_be_bytes());
    assert_eq!(bytes[ns + 40], 2);
    assert_eq!(&bytes[ns + 41..ns + 49], &7u64.to_be_bytes());
    assert_eq!(&bytes[ns + 49..], block.as_bytes());
}

#[test]
fn certificate_and_receipt_vectors() {
    let mut g = Golden::default();
    let receipt = receipt();
    g.check(
        "CERTIFICATE_BYTES_BLAKE3",
        CERTIFICATE_BYTES_BLAKE3,
        blake3_hex(&codec::to_bytes(&receipt.certificate)),
    );
    g.check(
        "RECEIPT_BYTES_BLAKE3",
        RECEIPT_BYTES_BLAKE3,
        blake3_hex(&receipt.to_bytes()),
    );
    g.check(
        "RECEIPT_JSON_BLAKE3",
        RECEIPT_JSON_BLAKE3,
        blake3_hex(&serde_json::to_vec(&receipt).expect("JSON")),
    );
    g.finish();
    let set = ValidatorSet::new(
        chain_id(),
        validators().iter().map(SigningKey::public_key).collect(),
    );
    let verified = verify_receipt(&receipt, &set).expect("the golden receipt verifies");
    assert_eq!(verified.certified_by, vec![0, 2, 3]);
}
