//! A real single-validator consortium for end-to-end tests: genesis and keys
//! in a temporary folder, a node on a loopback port, real sled, real HTTP.
#![allow(dead_code)]

pub mod browser;
pub mod n4;
pub mod public_story;

use std::collections::BTreeMap;
use std::path::PathBuf;

use lotline_core::Envelope;
use lotline_core::epcis::Event;
use lotline_genesis::Genesis;
use lotline_node::{Node, NodeConfig};
use lotline_sdk::{AttestationBuilder, Client, Signer};

pub struct Consortium {
    pub dir: tempfile::TempDir,
    pub genesis: Genesis,
    pub genesis_path: PathBuf,
    pub config: NodeConfig,
    pub signers: BTreeMap<String, Signer>,
    pub keys: BTreeMap<String, lotline_core::SigningKey>,
    /// org id -> that org's API token (accepted by the node).
    pub tokens: BTreeMap<String, String>,
    /// The node operator's token (the validator org's operator credential).
    pub operator_token: String,
}

impl Consortium {
    /// Four orgs (supplier, manufacturer, distributor, regulator); the
    /// manufacturer runs the validator.
    pub fn new() -> Consortium {
        Consortium::with_orgs(lotline_node::demo::DEMO_ORGS)
    }

    /// Orgs as `id:role[:name]`, comma separated; must include the
    /// `manufacturer` org, which runs the validator.
    pub fn with_orgs(orgs: &str) -> Consortium {
        let dir = tempfile::tempdir().expect("tempdir");
        let orgs = lotline_node::demo::parse_orgs(orgs).expect("orgs");
        let layout = lotline_node::demo::create_consortium(
            dir.path(),
            "test",
            &orgs,
            &["manufacturer".into()],
            0,
            0,
        )
        .expect("consortium");
        let mut config = NodeConfig::load(&layout.node_configs[0]).expect("node config");
        config.listen = ([127, 0, 0, 1], 0).into();
        let genesis = Genesis::load(&layout.genesis_path).expect("genesis");
        let signers = layout
            .client_keys
            .iter()
            .map(|(org, path)| {
                (
                    org.clone(),
                    Signer::from_key_file(org.clone(), path).expect("key"),
                )
            })
            .collect();
        let keys = layout
            .client_keys
            .iter()
            .map(|(org, path)| {
                (
                    org.clone(),
                    lotline_genesis::keys::read_signing_key(path).expect("key"),
                )
            })
            .collect();
        let read = |path: &PathBuf| std::fs::read_to_string(path).expect("token file");
        let tokens = layout
            .tokens
            .iter()
            .map(|(org, path)| (org.clone(), read(path)))
            .collect();
        let operator_token = read(&layout.operator_tokens["manufacturer"]);
        Consortium {
            dir,
            genesis,
            genesis_path: layout.genesis_path,
            config,
            signers,
            keys,
            tokens,
            operator_token,
        }
    }

    /// A consortium whose manufacturer (the org the node captures EPCIS
    /// documents as, see its `[capture]`) may also emit every event type
    /// and bizStep: the GS1 examples use steps outside the default role
    /// policy (`transporting`, a custom URI).
    pub fn with_open_capture_policy() -> Consortium {
        let mut consortium = Consortium::new();
        let rule = "\n[[policy]]\nrole = \"manufacturer\"\n\
            event_types = [\"ObjectEvent\", \"AggregationEvent\", \"TransactionEvent\", \"TransformationEvent\", \"AssociationEvent\"]\n\
            biz_steps = [\"*\"]\n\
            quality = [\"inspection\", \"nonConformance\", \"recallOrder\", \"certificate\", \"document\"]\n";
        let mut text = std::fs::read_to_string(&consortium.genesis_path).expect("genesis");
        text.push_str(rule);
        std::fs::write(&consortium.genesis_path, text).expect("genesis");
        consortium.genesis = Genesis::load(&consortium.genesis_path).expect("genesis");
        consortium
    }

    /// The org the node signs captured EPCIS events as.
    pub fn capture_org(&self) -> &str {
        self.config
            .capture
            .as_ref()
            .map(|c| c.org.as_str())
            .expect("the test node has a [capture] section")
    }

    pub async fn start(&self) -> Node {
        Node::start(&self.config).await.expect("node starts")
    }

    pub fn signer(&self, org: &str) -> &Signer {
        &self.signers[org]
    }

    /// Signs `event` as `org`.
    pub fn attest(&self, org: &str, event: Event) -> Envelope {
        AttestationBuilder::new(self.genesis.chain_id(), self.signer(org))
            .event(event)
            .build()
            .expect("valid event")
    }
}

pub fn client(node: &Node) -> Client {
    Client::new(&node.url()).expect("client")
}

/// A raw HTTP client that sends `org`'s API token with every request.
pub fn http_as(c: &Consortium, org: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    let value = format!("Bearer {}", c.tokens[org]);
    headers.insert(
        reqwest::header::AUTHORIZATION,
        value.parse().expect("header value"),
    );
    reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .expect("client")
}

/// An SDK client that reads as `org` (with its API token).
pub fn client_as(c: &Consortium, node: &Node, org: &str) -> Client {
    client(node).with_bearer_token(c.tokens[org].clone())
}

/// A statement for `org` (signed by `org`'s key unless changed), issued
/// now (nodes bound a client's `issuedAtMs` by their clock).
pub fn statement(consortium: &Consortium, org: &str, event: Event) -> lotline_core::Statement {
    let issued_at_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as u64;
    lotline_core::Statement {
        version: 1,
        chain_id: consortium.genesis.chain_id(),
        org: org.to_owned(),
        key: consortium.keys[org].public_key(),
        issued_at_ms,
        nonce: "00112233445566778899aabbccddeeff".into(),
        event,
        private: None,
    }
}

/// The GS1 example GTIN with a valid check digit.
pub const GTIN: &str = "09506000134352";

/// A supplier's commissioning of lot `lot` with an inspection that passed.
pub fn commissioning(lot: &str) -> Event {
    serde_json::from_value(serde_json::json!({
        "type": "ObjectEvent",
        "eventTime": "2026-03-02T08:00:00.000Z",
        "eventTimeZoneOffset": "+08:00",
        "action": "ADD",
        "bizStep": "commissioning",
        "disposition": "active",
        "quantityList": [{"epcClass": format!("https://id.gs1.org/01/{GTIN}/10/{lot}"), "quantity": 500.0, "uom": "KGM"}],
        "readPoint": {"id": "https://id.gs1.org/414/9506000134352"},
        "lotline:quality": {
            "kind": "inspection", "result": "pass", "method": "GB/T 1040 tensile test",
            "measurements": [{"name": "tensile strength", "value": 42.5, "uom": "MPA", "specMin": 40.0, "specMax": 50.0}]
        }
    }))
    .expect("event")
}

/// The canonical Digital Link of lot `lot`.
pub fn lot_uri(lot: &str) -> String {
    format!("https://id.gs1.org/01/{GTIN}/10/{lot}")
}
