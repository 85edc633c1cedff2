//! Four validators (supplier, manufacturer, distributor, regulator) in one
//! process over real libp2p on loopback, with real sled and HTTP.

use std::time::Duration;

use lotline_genesis::Genesis;
use lotline_node::{Node, NodeConfig};
use lotline_sdk::Signer;

pub struct Four {
    pub dir: tempfile::TempDir,
    pub genesis: Genesis,
    pub configs: Vec<NodeConfig>,
    pub signers: std::collections::BTreeMap<String, Signer>,
    /// Each node's operator token (for `/metrics`), in node order.
    pub operator_tokens: Vec<String>,
    /// org id -> that org's member API token (accepted by every node).
    pub tokens: std::collections::BTreeMap<String, String>,
}

/// Four-node tests run one at a time, across every file: two consortia of
/// four at once on a small shared machine miss their commit waits. Hold the
/// guard for the whole test.
pub async fn one_at_a_time() -> tokio::sync::MutexGuard<'static, ()> {
    static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    ONE_AT_A_TIME.lock().await
}

impl Four {
    pub fn new() -> Four {
        let dir = tempfile::tempdir().expect("tempdir");
        let orgs = lotline_node::demo::parse_orgs(lotline_node::demo::DEMO_ORGS).expect("orgs");
        let validators: Vec<String> = orgs.iter().map(|o| o.id.clone()).collect();
        let layout = lotline_node::demo::create_consortium(
            dir.path(),
            "n4",
            &orgs,
            &validators,
            0,
            lotline_node::demo::free_port_range(4),
        )
        .expect("consortium");
        let configs = layout
            .node_configs
            .iter()
            .map(|p| {
                let mut c = NodeConfig::load(p).expect("config");
                c.listen = ([127, 0, 0, 1], 0).into();
                c
            })
            .collect();
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
        let genesis = Genesis::load(&layout.genesis_path).expect("genesis");
        let operator_tokens = genesis
            .validators()
            .iter()
            .map(|v| {
                let path = &layout.operator_tokens[&v.org];
                std::fs::read_to_string(path)
                    .expect("operator token")
                    .trim()
                    .to_owned()
            })
            .collect();
        let tokens = layout
            .tokens
            .iter()
            .map(|(org, path)| {
                let token = std::fs::read_to_string(path).expect("member token");
                (org.clone(), token.trim().to_owned())
            })
            .collect();
        Four {
            tokens,
            operator_tokens,
            dir,
            genesis,
            configs,
            signers,
        }
    }

    /// Gives the consortium a retention rule (crypto-shredding, issue 14):
    /// periods of `period_seconds`, every record kept one period, and for
    /// each org fresh period keys covering the next `periods` periods,
    /// written 0600 to a folder per node that its `[private]` names. The
    /// genesis file is rewritten (a new chain id) before any node starts.
    #[allow(dead_code)]
    pub fn with_retention(mut self, period_seconds: u64, periods: u64) -> Four {
        use lotline_core::private::EncryptionSecretKey;
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_millis() as u64;
        let first = now_ms / (period_seconds * 1000);
        let mut keys = std::collections::BTreeMap::new();
        let mut dirs = std::collections::BTreeMap::new();
        for org in self.genesis.orgs() {
            let dir = self.dir.path().join("period-keys").join(&org.id);
            std::fs::create_dir_all(&dir).expect("period key folder");
            for period in first..first + periods {
                let key = EncryptionSecretKey::generate();
                lotline_genesis::keys::write_encryption_key(
                    &dir.join(format!("{period}.key")),
                    &key,
                )
                .expect("period key file");
                keys.insert((org.id.clone(), period), key.public_key());
            }
            dirs.insert(org.id.clone(), dir);
        }
        let retention = lotline_genesis::Retention {
            period_seconds,
            default_periods: 1,
            classes: Vec::new(),
            keys,
        };
        self.genesis = self.genesis.with_retention(retention).expect("retention");
        std::fs::write(&self.configs[0].genesis, self.genesis.to_toml()).expect("genesis");
        for config in &mut self.configs {
            let private = config.private.as_mut().expect("[private]");
            private.period_keys = Some(dirs[&private.org].clone());
        }
        self
    }

    /// Gives the consortium epochs of `blocks` heights (validator-set
    /// changes take effect at their boundary), rewriting the genesis file
    /// (a new chain id) before any node starts.
    #[allow(dead_code)]
    pub fn with_epoch_blocks(mut self, blocks: u64) -> Four {
        self.genesis = self
            .genesis
            .with_epoch_blocks(blocks)
            .expect("epoch length");
        std::fs::write(&self.configs[0].genesis, self.genesis.to_toml()).expect("genesis");
        self
    }

    /// A node for an org that is not in the genesis: a fresh node key
    /// (written 0600 next to the others), its own data folder and a free
    /// libp2p port on loopback (returned: the `p2p` hint of its
    /// `addValidator`), no API credentials and none of the genesis orgs'
    /// key sections. It starts as a follower of the four.
    #[allow(dead_code)]
    pub fn joining_node(&self, name: &str) -> (NodeConfig, lotline_core::SigningKey, String) {
        let key = lotline_core::SigningKey::generate();
        let folder = self.dir.path().join(name);
        std::fs::create_dir_all(&folder).expect("node folder");
        let key_path = folder.join("node.key");
        lotline_genesis::keys::write_signing_key(&key_path, &key).expect("node key");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let p2p = format!("/ip4/127.0.0.1/tcp/{port}");
        let mut config = self.configs[0].clone();
        config.data_dir = folder.join("data");
        config.node_key = key_path;
        config.p2p_listen = Some(p2p.clone());
        config.credentials.clear();
        config.capture = None;
        config.alerts = None;
        config.private = None;
        config.webhooks.clear();
        (config, key, p2p)
    }

    /// The config file of validator `i` (as the consortium layout wrote
    /// it) with its API address made `node`'s, running: for the tools that
    /// read a config file and ask the node (`lotline doctor`).
    #[allow(dead_code)]
    pub fn live_config_file(&self, i: usize, node: &Node) -> std::path::PathBuf {
        let org = &self.genesis.validators()[i].org;
        let nodes = self.dir.path().join("nodes");
        let text = std::fs::read_to_string(nodes.join(format!("{org}.toml"))).expect("config");
        let live: Vec<String> = text
            .lines()
            .map(|line| {
                if line.starts_with("listen = ") && !line.contains("/ip4/") {
                    format!("listen = \"{}\"", node.api_addr)
                } else {
                    line.to_owned()
                }
            })
            .collect();
        let path = nodes.join(format!("{org}-live.toml"));
        std::fs::write(&path, live.join("\n")).expect("live config");
        path
    }

    pub async fn start(&self, i: usize) -> Node {
        Node::start(&self.configs[i]).await.expect("node starts")
    }

    pub async fn start_all(&self) -> Vec<Node> {
        let mut nodes = Vec::new();
        for i in 0..self.configs.len() {
            nodes.push(self.start(i).await);
        }
        nodes
    }
}

/// Waits until `cond` holds, polling; panics with `what` after `secs`.
/// Flips one byte inside the stored record of block `height` in the
/// stopped node's `data_dir/blocks.log` (past the record's header), as a
/// disk fault would, and returns the record's index entry.
#[allow(dead_code)]
pub fn damage_block(
    data_dir: &std::path::Path,
    height: u64,
) -> lotline_node::store::block_index::IndexEntry {
    let scanned = lotline_node::ops::repair::scan(data_dir).expect("scan");
    let entry = scanned.entries[usize::try_from(height - 1).expect("height")].clone();
    let log = data_dir.join("blocks.log");
    let mut bytes = std::fs::read(&log).expect("read");
    bytes[usize::try_from(entry.offset).expect("offset") + 8 + 5] ^= 0x55;
    std::fs::write(&log, bytes).expect("write");
    entry
}

pub async fn eventually(what: &str, secs: u64, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
