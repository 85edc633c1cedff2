//! Writes the seed corpora under `fuzz/corpus/<target>/` from real values:
//! statements of the simulator's demo story signed by the fixture
//! consortium, the messages four real Simplex engines exchange while they
//! commit those statements, the committed blocks with their finality,
//! receipts and a proof bundle that verify against the fixture genesis,
//! and the GS1 EPCIS examples of `shared/fixtures` when they are present.
//!
//! ```text
//! cargo run --manifest-path fuzz/Cargo.toml --example seed_corpus -- [fixtures dir]
//! ```
//! The fixtures dir defaults to `../shared/fixtures` (beside the checkout).
//! Output is deterministic except for the fixture files found.

use std::collections::{BTreeMap, VecDeque};
use std::fs;
use std::path::{Path, PathBuf};

use lotline_consensus::{Engine, Input, Message, Output, Request};
use lotline_core::block::Block;
use lotline_core::bundle::ProofBundle;
use lotline_core::certificate::Finality;
use lotline_core::codec;
use lotline_core::evidence::Evidence;
use lotline_core::merkle::BlockTree;
use lotline_core::receipt::{RECEIPT_VERSION, Receipt};
use lotline_core::statement::{
    STATEMENT_VERSION, STATEMENT_VERSION_COMPACT, STATEMENT_VERSION_PRIVATE, Statement,
};
use lotline_core::vote::{Vote, VoteKind};
use lotline_core::{Digest, Envelope};
use lotline_fuzz::{client_key, engine, genesis, node_key, org_index};
use lotline_node::NodeConfig;
use lotline_node::consensus::bft::{Frame, SyncRequest, SyncResponse};
use lotline_node::epcis::query::page_token;
use lotline_node::net::gossip;
use lotline_node::net::link::{Caps, Kind, encode_record};
use lotline_node::store::BlockRecord;
use lotline_node::store::index::Position;
use serde_json::{Value, json};

/// Story events signed into attestations (enough for every event type).
const ATTESTATIONS: usize = 24;
/// Attestations per proposed block.
const PER_BLOCK: usize = 4;

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let fixtures = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures"));
    let mut out = Out { root, written: 0 };

    let envelopes = attestations(&mut out);
    private_sections(&mut out);
    private_statements(&mut out);
    let run = commit_in_cluster(&envelopes);
    messages(&mut out, &run);
    blocks_and_receipts(&mut out, &run);
    events_and_documents(&mut out, &fixtures);
    queries(&mut out);
    identifiers(&mut out);
    configs(&mut out);
    governance(&mut out);
    series_chunks(&mut out);
    println!("{} seed files under {}", out.written, out.root.display());
}

struct Out {
    root: PathBuf,
    written: usize,
}

impl Out {
    fn write(&mut self, target: &str, name: &str, bytes: &[u8]) {
        let dir = self.root.join(target);
        fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        let path = dir.join(name);
        fs::write(&path, bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        self.written += 1;
    }
}

/// Story events as statements signed by their org's fixture key; seeds for
/// the statement and both envelope targets. Every one passes admission.
fn attestations(out: &mut Out) -> Vec<Envelope> {
    let chain_id = genesis().chain_id();
    let mut envelopes = Vec::new();
    for (n, item) in lotline_fuzz::story().iter().take(ATTESTATIONS).enumerate() {
        let index = org_index(&item.org).unwrap_or_else(|| panic!("unknown org {}", item.org));
        let key = client_key(index);
        let statement = Statement {
            version: STATEMENT_VERSION,
            chain_id,
            org: item.org.clone(),
            key: key.public_key(),
            issued_at_ms: 1_763_800_000_000 + n as u64,
            nonce: format!("seed-{n}"),
            event: item.event.clone(),
            private: None,
        };
        let envelope = statement.sign(&key);
        if let Err(problems) = lotline_fuzz::admission().admit(envelope.clone()) {
            panic!("seed attestation {n} is not admitted: {problems:?}");
        }
        if n % 3 == 0 {
            out.write(
                "statement",
                &format!("story-{n:02}.json"),
                &envelope.payload,
            );
            let json = serde_json::to_vec(&envelope).unwrap_or_default();
            out.write("envelope_json", &format!("story-{n:02}.json"), &json);
            out.write(
                "envelope_postcard",
                &format!("story-{n:02}.bin"),
                &envelope.to_bytes(),
            );
        }
        envelopes.push(envelope);
    }
    envelopes
}

/// Sealed private sections of story events (one to three recipients), in
/// both forms (object and compact), for the `private_section` target.
fn private_sections(out: &mut Out) {
    use lotline_core::private::{EncryptionSecretKey, Suite, seal_as};
    let keys: Vec<EncryptionSecretKey> = (1..=3u8)
        .map(|i| EncryptionSecretKey::derive(&[i; 32]))
        .collect();
    for (n, item) in lotline_fuzz::story().iter().take(6).enumerate() {
        let paths = private_paths(&item.event);
        if paths.is_empty() {
            continue;
        }
        let recipients: Vec<(String, _)> = keys
            .iter()
            .take(1 + n % 3)
            .enumerate()
            .map(|(i, k)| (format!("org-{i}"), k.public_key()))
            .collect();
        // Every other one sealed for a key period (retention classes).
        let period = (n % 2 == 1).then_some(60 + n as u64);
        for (suite, form) in [(Suite::Object, "object"), (Suite::Compact, "compact")] {
            match seal_as(&item.event, &paths, &recipients, period, suite) {
                Ok((_, section)) => out.write(
                    "private_section",
                    &format!("story-{n:02}-{form}.json"),
                    &serde_json::to_vec(&section).unwrap_or_default(),
                ),
                Err(e) => panic!("seed private section {n} does not seal: {e}"),
            }
        }
    }
}

/// Up to two members of `event` to seal: where a party or a site is.
fn private_paths(event: &lotline_core::epcis::Event) -> Vec<String> {
    let event = serde_json::to_value(event).unwrap_or_default();
    ["readPoint", "bizLocation", "quantityList", "epcList"]
        .into_iter()
        .filter(|member| event.get(*member).is_some())
        .take(2)
        .map(|member| format!("/{member}"))
        .collect()
}

/// Story statements with a private section in each form (version 2's
/// object, version 3's compact string), signed by their org's fixture key,
/// for the statement and both envelope targets. The fixture genesis gives
/// no org an encryption key, so admission refuses them (no recipient can
/// be checked): they seed the decoders and that refusal.
fn private_statements(out: &mut Out) {
    use lotline_core::private::{EncryptionSecretKey, Suite, seal_as};
    let chain_id = genesis().chain_id();
    let reader = EncryptionSecretKey::derive(&[1; 32]).public_key();
    for (n, item) in lotline_fuzz::story().iter().enumerate().take(ATTESTATIONS) {
        let paths = private_paths(&item.event);
        if n % 6 != 1 || paths.is_empty() {
            continue;
        }
        let index = org_index(&item.org).unwrap_or_else(|| panic!("unknown org {}", item.org));
        let key = client_key(index);
        for (suite, version, form) in [
            (Suite::Object, STATEMENT_VERSION_PRIVATE, "v2"),
            (Suite::Compact, STATEMENT_VERSION_COMPACT, "v3"),
        ] {
            let recipients = [(item.org.clone(), reader)];
            let (event, section) = seal_as(&item.event, &paths, &recipients, None, suite)
                .unwrap_or_else(|e| panic!("seed private statement {n} does not seal: {e}"));
            let statement = Statement {
                version,
                chain_id,
                org: item.org.clone(),
                key: key.public_key(),
                issued_at_ms: 1_763_800_000_000 + n as u64,
                nonce: format!("seed-private-{n}"),
                event,
                private: Some(section),
            };
            let envelope = statement.sign(&key);
            if Statement::from_payload(&envelope.payload).is_err() {
                panic!("seed private statement {n} ({form}) does not decode");
            }
            let name = format!("story-{n:02}-{form}");
            out.write("statement", &format!("{name}.json"), &envelope.payload);
            let json = serde_json::to_vec(&envelope).unwrap_or_default();
            out.write("envelope_json", &format!("{name}.json"), &json);
            out.write(
                "envelope_postcard",
                &format!("{name}.bin"),
                &envelope.to_bytes(),
            );
        }
    }
}

/// What a cluster run produced.
struct Run {
    /// Every distinct message sent, by a short name of its kind.
    messages: BTreeMap<String, Message>,
    /// Validator 0's commits, in height order.
    commits: Vec<(Block, Finality)>,
}

/// Four engines of the fixture consortium on a lossless, instant network,
/// until `envelopes` are committed.
fn commit_in_cluster(envelopes: &[Envelope]) -> Run {
    let n = lotline_fuzz::ORGS.len();
    let mut engines: Vec<Engine> = (0..n)
        .map(|i| {
            let validators = genesis().validator_set().validators;
            let index = u16::try_from(i).unwrap_or(0);
            Engine::new(lotline_consensus::Config::new(
                genesis().chain_id(),
                validators,
                index,
                node_key(i),
            ))
        })
        .collect();
    let mut pending: VecDeque<Envelope> = envelopes.iter().cloned().collect();
    let mut run = Run {
        messages: BTreeMap::new(),
        commits: Vec::new(),
    };
    let mut inbox: VecDeque<(usize, Input)> = VecDeque::new();
    let mut now_ms = 1_763_800_000_000u64;
    let mut outputs: VecDeque<(usize, Output)> = VecDeque::new();
    for (i, engine) in engines.iter_mut().enumerate() {
        outputs.extend(engine.start().into_iter().map(|o| (i, o)));
    }
    let committed_all = |run: &Run| {
        run.commits
            .iter()
            .map(|(b, _)| b.attestations.len())
            .sum::<usize>()
            >= envelopes.len()
    };
    for _ in 0..100_000 {
        if let Some((i, output)) = outputs.pop_front() {
            let from = u16::try_from(i).unwrap_or(0);
            match output {
                Output::Broadcast(message) => {
                    remember(&mut run, &message);
                    for j in (0..n).filter(|j| *j != i) {
                        inbox.push_back((
                            j,
                            Input::Message {
                                from,
                                message: message.clone(),
                            },
                        ));
                    }
                }
                Output::Send { to, message } => {
                    remember(&mut run, &message);
                    inbox.push_back((usize::from(to), Input::Message { from, message }));
                }
                Output::Build { .. } => {
                    let take = pending.len().min(PER_BLOCK);
                    now_ms += 50;
                    inbox.push_back((
                        i,
                        Input::Propose {
                            attestations: pending.drain(..take).collect(),
                            evidence: Vec::new(),
                            now_ms,
                        },
                    ));
                }
                Output::Verify { view, block, .. } => inbox.push_back((
                    i,
                    Input::Verified {
                        view,
                        block: block.hash(),
                        valid: true,
                    },
                )),
                Output::Commit {
                    block, finality, ..
                } if i == 0 => {
                    run.commits.push((block, finality));
                }
                Output::Dropped { from, reason } if !reason.is_benign() => {
                    panic!("validator {i} dropped a message of {from:?}: {reason}")
                }
                _ => {}
            }
            continue;
        }
        if committed_all(&run) {
            break;
        }
        let Some((i, input)) = inbox.pop_front() else {
            break;
        };
        outputs.extend(engines[i].handle(input).into_iter().map(|o| (i, o)));
    }
    assert!(
        committed_all(&run),
        "the cluster committed {} blocks, not all attestations",
        run.commits.len()
    );
    run
}

fn remember(run: &mut Run, message: &Message) {
    let name = match message {
        Message::Proposal(p) => format!("proposal-view{}", p.notarize.view),
        Message::Vote(v) => format!("vote-{:?}-view{}", v.kind, v.view).to_lowercase(),
        Message::Certificate(c) => {
            format!("certificate-{:?}-view{}", c.kind, c.view).to_lowercase()
        }
        Message::Request(_) => "request".to_owned(),
        Message::Blocks(_) => "blocks".to_owned(),
        Message::Evidence(_) => "evidence".to_owned(),
    };
    // Views 1 and 2 are enough: later ones only differ in numbers.
    if !name.contains("view") || name.ends_with("view1") || name.ends_with("view2") {
        run.messages.entry(name).or_insert_with(|| message.clone());
    }
}

/// Consensus and sync messages, and the frames that carry them.
fn messages(out: &mut Out, run: &Run) {
    let mut all = run.messages.clone();
    let (first, _) = &run.commits[0];
    all.insert(
        "request-block".into(),
        Message::Request(Request::Block { hash: first.hash() }),
    );
    all.insert(
        "request-certificates".into(),
        Message::Request(Request::Certificates { view: 2 }),
    );
    all.insert("blocks".into(), Message::Blocks(vec![first.clone()]));
    // Validator 1 equivocates in view 1: the evidence a detector gossips.
    let chain_id = genesis().chain_id();
    let key = node_key(1);
    let vote = |block: u8| {
        Vote::sign(
            &key,
            1,
            &chain_id,
            VoteKind::Notarize,
            1,
            Digest([block; 32]),
        )
    };
    all.insert(
        "evidence".into(),
        Message::Evidence(Box::new(Evidence {
            first: vote(1),
            second: vote(2),
        })),
    );
    for (name, message) in &all {
        // On the wire a message travels in a frame, a proposal by id.
        let bytes = codec::to_bytes(&Frame::carrying(message.clone()));
        out.write("consensus_message", &format!("{name}.bin"), &bytes);
        if name.starts_with("vote") || name.starts_with("proposal") {
            let mut frame = u32::try_from(bytes.len())
                .unwrap_or(0)
                .to_be_bytes()
                .to_vec();
            frame.extend_from_slice(&bytes);
            out.write("net_frame", &format!("{name}.bin"), &frame);
            let mut record = Vec::new();
            if encode_record(Kind::Frame, &bytes, LINK_CAPS, &mut record).is_some() {
                out.write("net_record", &format!("{name}.bin"), &record);
            }
        }
    }
    out.write("net_frame", "empty-ack.bin", &[0, 0, 0, 0]);
    // Gossip travels on the same stream: a packed message of two items.
    let packed = gossip::pack(
        vec![b"attestation one".to_vec(), b"attestation two".to_vec()],
        LINK_CAPS.gossip,
    );
    for (i, message) in packed.iter().enumerate() {
        let mut record = Vec::new();
        if encode_record(Kind::Gossip, message, LINK_CAPS, &mut record).is_some() {
            out.write("net_record", &format!("gossip{i}.bin"), &record);
        }
    }
}

/// The caps of the `net_record` target.
const LINK_CAPS: Caps = Caps {
    frame: 4096,
    gossip: 16 * 1024,
};

/// Blocks, block records, sync answers, receipts and a proof bundle.
fn blocks_and_receipts(out: &mut Out, run: &Run) {
    let mut bundle = ProofBundle::new(
        genesis().chain_id(),
        "seed lots".into(),
        "2026-01-01T00:00:00Z".into(),
    );
    let mut records = Vec::new();
    for (height, (block, finality)) in run.commits.iter().enumerate().take(3) {
        let height = height + 1;
        out.write("block", &format!("height{height}.bin"), &block.to_bytes());
        let record = BlockRecord {
            block: block.clone(),
            finality: finality.clone(),
        };
        out.write(
            "sync_message",
            &format!("record-height{height}.bin"),
            &record.to_bytes(),
        );
        records.push(record);
        let ids = block.ids();
        let tree = BlockTree::new(&ids);
        for (index, attestation) in block.attestations.iter().enumerate().take(2) {
            let receipt = Receipt {
                version: RECEIPT_VERSION,
                attestation: attestation.clone(),
                leaf_index: u32::try_from(index).unwrap_or(0),
                proof: tree.proof(index).unwrap_or_default(),
                header: block.header.clone(),
                descendants: finality.descendants.clone(),
                certificate: finality.certificate.clone(),
            };
            if let Err(e) = genesis().verify_receipt(&receipt) {
                panic!("seed receipt does not verify: {e}");
            }
            let name = format!("height{height}-leaf{index}");
            out.write("receipt", &format!("{name}.bin"), &receipt.to_bytes());
            let json = serde_json::to_vec_pretty(&receipt).unwrap_or_default();
            out.write("receipt", &format!("{name}.json"), &json);
            bundle.receipts.push(receipt);
        }
    }
    let json = serde_json::to_vec_pretty(&bundle).unwrap_or_default();
    out.write("proof_bundle", "bundle.json", &json);
    let request = SyncRequest {
        from_height: 1,
        max_blocks: 64,
    };
    out.write("sync_message", "request.bin", &codec::to_bytes(&request));
    let response = SyncResponse { records };
    out.write("sync_message", "response.bin", &codec::to_bytes(&response));
    // A fresh engine accepts the answer: the seed reaches the commit path.
    let mut fresh = engine(0);
    let mut committed = 0;
    for record in response.records {
        let outputs = fresh.handle(Input::Synced {
            block: record.block,
            finality: record.finality,
        });
        committed += outputs
            .iter()
            .filter(|o| matches!(o, Output::Commit { .. }))
            .count();
    }
    assert!(committed > 0, "the sync answer seed commits nothing");
}

/// Single events (the story's and the fixtures'), capture documents.
fn events_and_documents(out: &mut Out, fixtures: &Path) {
    let story = lotline_fuzz::story();
    let mut seen_types = BTreeMap::new();
    for item in story {
        let json = serde_json::to_value(&item.event).unwrap_or_default();
        let kind = json["type"].as_str().unwrap_or("event").to_owned();
        let step = json["bizStep"].as_str().unwrap_or("none").to_owned();
        if seen_types
            .insert((kind.clone(), step.clone()), ())
            .is_none()
        {
            let bytes = serde_json::to_vec_pretty(&json).unwrap_or_default();
            out.write("epcis_event", &format!("story-{kind}-{step}.json"), &bytes);
        }
    }
    let list: Vec<Value> = story
        .iter()
        .take(6)
        .map(|i| serde_json::to_value(&i.event).unwrap_or_default())
        .collect();
    let document = json!({
        "@context": ["https://ref.gs1.org/standards/epcis/epcis-context.jsonld"],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": "2026-01-01T00:00:00Z",
        "epcisBody": { "eventList": list },
    });
    let bytes = serde_json::to_vec_pretty(&document).unwrap_or_default();
    out.write("epcis_capture", "story-document.json", &bytes);

    if let Ok(dir) = fs::read_dir(fixtures.join("epcis-xml")) {
        let mut files: Vec<PathBuf> = dir.flatten().map(|e| e.path()).collect();
        files.sort();
        for path in files
            .iter()
            .filter(|p| p.extension().is_some_and(|e| e == "xml"))
        {
            let Ok(bytes) = fs::read(path) else { continue };
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            out.write("epcis_xml", &name, &bytes);
        }
    }
    let Ok(dir) = fs::read_dir(fixtures.join("epcis")) else {
        eprintln!(
            "no fixtures at {}: GS1 examples skipped",
            fixtures.display()
        );
        return;
    };
    let mut files: Vec<PathBuf> = dir.flatten().map(|e| e.path()).collect();
    files.sort();
    for path in files {
        let Ok(bytes) = fs::read(&path) else { continue };
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        out.write("epcis_capture", &name, &bytes);
        let Ok(document) = serde_json::from_slice::<Value>(&bytes) else {
            continue;
        };
        let events = document["epcisBody"]["eventList"].as_array().or_else(|| {
            document["epcisBody"]["queryResults"]["resultsBody"]["eventList"].as_array()
        });
        for (i, event) in events.into_iter().flatten().enumerate() {
            let mut event = event.clone();
            if let (Some(object), Some(context)) = (event.as_object_mut(), document.get("@context"))
            {
                object.entry("@context").or_insert_with(|| context.clone());
            }
            let bytes = serde_json::to_vec_pretty(&event).unwrap_or_default();
            let stem = name.trim_end_matches(".jsonld");
            out.write("epcis_event", &format!("gs1-{stem}-{i}.json"), &bytes);
            out.write("epcis_capture", &format!("gs1-{stem}-{i}.json"), &bytes);
        }
    }
}

/// Query strings as they follow `?` in `GET /epcis/events`.
fn queries(out: &mut Out) {
    let token = page_token(Position {
        height: 12,
        index: 3,
    });
    let queries = [
        "eventType=ObjectEvent|TransformationEvent&perPage=10".to_owned(),
        "GE_eventTime=2025-01-01T00:00:00Z&LT_eventTime=2027-01-01T00:00:00.000%2B01:00".to_owned(),
        "EQ_bizStep=shipping|urn:epcglobal:cbv:bizstep:receiving&EQ_disposition=in_transit".to_owned(),
        "EQ_bizLocation=urn:epc:id:sgln:9506000.13435.0&EQ_readPoint=https://id.gs1.org/414/9506000134352".to_owned(),
        "MATCH_epc=https://id.gs1.org/01/09506000134352/21/1001&MATCH_anyEPC=urn:epc:id:sscc:9506000.0000000001".to_owned(),
        "MATCH_epcClass=urn:epc:class:lgtin:9506000.013435.ABC1&MATCH_anyEPCClass=https://example.com/01/9506000134352/10/ABC1".to_owned(),
        "EQ_type=gs1:Temperature&GT_maxValue_CEL=8&LE_value_CEL=-2.5".to_owned(),
        "EXISTS_errorDeclaration&EQ_eventID=urn:uuid:00000000-0000-4000-8000-000000000000".to_owned(),
        format!("nextPageToken={token}&perPage=1000"),
        "MATCH_inputEPCClass=urn:epc:idpat:sgtin:9506000.013435.*&MATCH_outputEPC=urn:epc:id:sgtin:9506000.013435.1001".to_owned(),
        "GE_recordTime=2026-01-01T00:00:00Z&LT_recordTime=2026-12-31T23:59:59.999Z".to_owned(),
    ];
    for (i, query) in queries.iter().enumerate() {
        out.write(
            "epcis_query",
            &format!("query-{i:02}.txt"),
            query.as_bytes(),
        );
    }
}

/// Identifiers: every kind the parser models, in every spelling it accepts.
fn identifiers(out: &mut Out) {
    let mut ids: Vec<String> = [
        "https://id.gs1.org/01/09506000134352/21/1001",
        "https://example.com/01/9506000134352/10/ABC1?17=260101#x",
        "https://brand.example/dl/01/9506000134352/10/ABC%2F1/21/S%201",
        "http://id.gs1.org/00/095060001343520000",
        "https://id.gs1.org/414/9506000134352/254/5",
        "https://id.gs1.org/01/9506000134352/22/V1/10/ABC1",
        "urn:epc:id:sgtin:9506000.013435.1001",
        "urn:epc:class:lgtin:9506000.013435.ABC%2F1",
        "urn:epc:idpat:sgtin:9506000.013435.*",
        "urn:epc:id:sscc:9506000.0000000001",
        "urn:epc:id:sgln:9506000.13435.0",
        "urn:epc:id:sgln:9506000.13435.ext%2D1",
        "urn:uuid:00000000-0000-4000-8000-000000000000",
        "https://erp.example/lots/42",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    for item in lotline_fuzz::story().iter().take(40) {
        ids.extend(item.event.canonical_identifiers());
    }
    ids.sort();
    ids.dedup();
    for (i, id) in ids.iter().take(40).enumerate() {
        out.write("digital_link", &format!("id-{i:02}.txt"), id.as_bytes());
    }
}

/// The fixture genesis with an encryption key per org and a retention
/// rule with two periods of keys (format lotline/genesis/v4).
fn with_retention() -> String {
    use lotline_core::private::EncryptionSecretKey;
    let mut text = genesis().to_toml();
    for (i, org) in genesis().orgs().iter().enumerate() {
        let line = format!("id = \"{}\"\n", org.id);
        let key = EncryptionSecretKey::derive(&[50 + i as u8; 32]).public_key();
        text = text.replacen(
            &line,
            &format!("{line}encryption_key = \"{}\"\n", key.to_hex()),
            1,
        );
    }
    let mut keys = std::collections::BTreeMap::new();
    for (i, org) in genesis().orgs().iter().enumerate() {
        for period in 60..62u64 {
            let seed = 100 + i as u8 * 2 + (period - 60) as u8;
            keys.insert(
                (org.id.clone(), period),
                EncryptionSecretKey::derive(&[seed; 32]).public_key(),
            );
        }
    }
    let retention = lotline_genesis::Retention {
        period_seconds: 31_536_000,
        default_periods: 5,
        classes: vec![lotline_genesis::RetentionClass {
            name: "logistics".into(),
            biz_steps: vec!["shipping".into(), "receiving".into()],
            periods: 2,
        }],
        keys,
    };
    match lotline_genesis::Genesis::from_toml(&text).and_then(|g| g.with_retention(retention)) {
        Ok(g) => g.to_toml(),
        Err(e) => panic!("seed genesis with retention: {e}"),
    }
}

/// Genesis and node config files.
fn configs(out: &mut Out) {
    out.write(
        "genesis_toml",
        "fixture.toml",
        genesis().to_toml().as_bytes(),
    );
    let mut with_shares = genesis().to_toml();
    with_shares.push_str(
        "\n[[read_policy.share]]\nfrom = \"supplier\"\nto = [\"members\", \"role:manufacturer\", \"public\"]\nbiz_steps = [\"shipping\"]\nevent_types = [\"ObjectEvent\"]\nquality = [\"certificate\"]\n",
    );
    out.write("genesis_toml", "with-shares.toml", with_shares.as_bytes());
    out.write(
        "genesis_toml",
        "with-retention.toml",
        with_retention().as_bytes(),
    );

    let minimal = NodeConfig::render(
        Path::new("data"),
        Path::new("genesis.toml"),
        Path::new("node.key"),
        "127.0.0.1:7000".parse().unwrap_or_else(|e| panic!("{e}")),
    );
    out.write("node_config", "minimal.toml", minimal.as_bytes());
    let full = format!(
        "{minimal}{}\n[api.tls]\ncert = \"cert.pem\"\nkey = \"key.pem\"\n\n\
         [[api.credentials]]\nid = \"erp-1\"\norg = \"supplier\"\nrole = \"supplier\"\n\
         token_hash = \"{}\"\n\n\
         [api.rate_limit]\nper_ip_per_s = 10\nper_ip_burst = 20\nper_credential_per_s = 100\n\
         per_credential_burst = 200\nbuckets_max = 64\n\n\
         [mempool]\nattestations_max = 1000\nbytes_max = 1048576\n\n\
         [p2p]\nlisten = \"/ip4/127.0.0.1/tcp/7100\"\n\n[consensus]\nheartbeat_ms = 60000\n",
        NodeConfig::render_capture("supplier", Path::new("client.key")),
        "ab".repeat(32),
    );
    out.write("node_config", "full.toml", full.as_bytes());
}

/// Governance seeds: a key rotation signed by enough orgs (admitted), the
/// same under-signed and unsigned, and a membership-history file (empty).
fn governance(out: &mut Out) {
    use lotline_genesis::governance::{self, Change, HistoryFile, Proposal};
    let g = genesis();
    let proposal = Proposal {
        version: governance::VERSION,
        chain_id: g.chain_id(),
        effective_height: 10,
        nonce: "seed-rotate".into(),
        reason: "seed".into(),
        change: Change::RotateKey {
            org: g.orgs()[0].id.clone(),
            old_key: client_key(0).public_key(),
            new_key: lotline_core::SigningKey::from_seed(&[0x77; 32]).public_key(),
        },
    };
    let mut envelope = governance::unsigned(&proposal);
    let json = |e: &Envelope| serde_json::to_vec_pretty(e).unwrap_or_default();
    out.write("governance", "unsigned.json", &json(&envelope));
    governance::add_signature(&mut envelope, &client_key(0));
    out.write("governance", "under_threshold.json", &json(&envelope));
    for i in 1..g.orgs().len() {
        governance::add_signature(&mut envelope, &client_key(i));
    }
    if let Err(problems) = lotline_fuzz::admission().admit(envelope.clone()) {
        panic!("seed governance transaction is not admitted: {problems:?}");
    }
    out.write("governance", "rotate.json", &json(&envelope));
    let file = HistoryFile::new(g.chain_id(), 0, Vec::new());
    out.write(
        "governance",
        "history_empty.json",
        &serde_json::to_vec_pretty(&file).unwrap_or_default(),
    );
}

/// Chunks of a measurement series as the store packs them: one point, a
/// few with every optional field, none of the optional fields.
fn series_chunks(out: &mut Out) {
    use lotline_node::quality::chunk::{self, PointRef};
    let point = |height: u64, full: bool| PointRef {
        at: Position { height, index: 3 },
        value: 41.5 + height as f64,
        spec_min: full.then_some(30.0),
        spec_max: full.then_some(55.0),
        uom: full.then_some("NEW"),
        subject: "https://id.gs1.org/01/09506000134352/21/1001",
        attestation: lotline_core::attestation::AttestationId(Digest([height as u8; 32])),
        org: "org1",
        event_time: "2026-03-01T08:00:00Z",
        event_time_ms: 1_772_352_000_000,
        event_id: full.then_some("ni:///sha-256;abc?ver=CBV2.0"),
        biz_step: full.then_some("https://ref.gs1.org/cbv/BizStep-inspecting"),
        private: false,
    };
    for (i, (n, full)) in [(1, true), (4, true), (3, false)].into_iter().enumerate() {
        let mut bytes = Vec::new();
        for height in 1..=n {
            chunk::append(&mut bytes, &point(height, full)).expect("seed chunk");
        }
        out.write("series_chunk", &format!("chunk-{i}.bin"), &bytes);
    }
}
