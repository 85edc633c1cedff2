//! `lotline demo`: a local consortium with a realistic supply chain, on
//! embedded defaults, and the consortium layout that `genesis init` writes.
//!
//! The demo folder holds everything (genesis, keys, node configs, data), so
//! running the demo again reuses it: the node restarts from its block log and
//! the story is not loaded twice.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use lotline_core::api::{Status, Wait};
use lotline_core::hash::Digest;
use lotline_genesis::init::OrgSpec;
use lotline_genesis::{Genesis, Role};
use lotline_sim::workload::{Roles, Scale, SupplyChainWorkload};

use crate::config::NodeConfig;
use crate::node::Node;

/// The demo consortium: id:role:name.
pub const DEMO_ORGS: &str = "supplier:supplier:Jiangsu Polymer Materials Co.,manufacturer:manufacturer:Shenzhen Precision Devices Ltd.,distributor:distributor:Huadong Cold-Chain Distribution,regulator:regulator:Municipal Market Supervision Bureau";

#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// The demo folder (created if missing, reused if present).
    #[arg(long, default_value = "lotline-demo")]
    pub dir: PathBuf,
    /// API port of the node.
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Seed of the generated supply chain.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Load the data, print the summary and exit instead of serving.
    #[arg(long)]
    pub exit_after_load: bool,
}

/// What `create_consortium` wrote.
#[derive(Debug)]
pub struct ConsortiumLayout {
    pub genesis_path: PathBuf,
    pub chain_id: Digest,
    pub node_configs: Vec<PathBuf>,
    /// org id -> client key path.
    pub client_keys: BTreeMap<String, PathBuf>,
}

/// Parses `id:role[:name]` items separated by commas.
pub fn parse_orgs(list: &str) -> Result<Vec<OrgSpec>> {
    list.split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|item| {
            let mut parts = item.trim().splitn(3, ':');
            let id = parts.next().unwrap_or_default().to_owned();
            let role: Role = parts
                .next()
                .with_context(|| format!("org {item:?} has no role (expected id:role[:name])"))?
                .parse()
                .map_err(|e| anyhow::anyhow!("org {item:?}: {e}"))?;
            let name = parts
                .next()
                .map(str::to_owned)
                .unwrap_or_else(|| id.clone());
            Ok(OrgSpec { id, name, role })
        })
        .collect()
}

/// Creates a consortium folder with genesis, keys and one node config per
/// validator (API on `api_port + i`, data in `data/<org>`).
pub fn create_consortium(
    dir: &Path,
    chain_name: &str,
    orgs: &[OrgSpec],
    validators: &[String],
    api_port: u16,
) -> Result<ConsortiumLayout> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let out = lotline_genesis::init::init_consortium_with_validators(
        dir, chain_name, orgs, validators, None,
    )?;
    let mut node_configs = Vec::new();
    for (i, validator) in out.genesis.validators().iter().enumerate() {
        let Some(keys) = out.keys.iter().find(|k| k.org == validator.org) else {
            continue;
        };
        let port = api_port
            .checked_add(u16::try_from(i)?)
            .context("API port out of range")?;
        let listen: SocketAddr = ([127, 0, 0, 1], port).into();
        let nodes = dir.join("nodes");
        std::fs::create_dir_all(&nodes)?;
        let path = nodes.join(format!("{}.toml", validator.org));
        let rel = |p: &Path| -> PathBuf { Path::new("..").join(p.strip_prefix(dir).unwrap_or(p)) };
        let text = NodeConfig::render(
            &Path::new("..").join("data").join(&validator.org),
            &rel(&out.genesis_path),
            &rel(&keys.node_key),
            listen,
        );
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        node_configs.push(path);
    }
    Ok(ConsortiumLayout {
        genesis_path: out.genesis_path.clone(),
        chain_id: out.genesis.chain_id(),
        node_configs,
        client_keys: out
            .keys
            .iter()
            .map(|k| (k.org.clone(), k.client_key.clone()))
            .collect(),
    })
}

/// The layout of an existing consortium folder (written by `create_consortium`).
fn existing_layout(dir: &Path) -> Result<ConsortiumLayout> {
    let genesis_path = dir.join(lotline_genesis::init::GENESIS_FILE);
    let genesis = Genesis::load(&genesis_path)?;
    let node_configs = genesis
        .validators()
        .iter()
        .map(|v| dir.join("nodes").join(format!("{}.toml", v.org)))
        .collect();
    let client_keys = genesis
        .orgs()
        .iter()
        .map(|o| {
            (
                o.id.clone(),
                dir.join("keys").join(&o.id).join("client.key"),
            )
        })
        .collect();
    Ok(ConsortiumLayout {
        genesis_path,
        chain_id: genesis.chain_id(),
        node_configs,
        client_keys,
    })
}

pub async fn run(args: DemoArgs) -> Result<()> {
    let fresh = !args.dir.join(lotline_genesis::init::GENESIS_FILE).exists();
    let layout = if fresh {
        let orgs = parse_orgs(DEMO_ORGS)?;
        create_consortium(
            &args.dir,
            "lotline-demo",
            &orgs,
            &["manufacturer".to_owned()],
            args.port,
        )?
    } else {
        existing_layout(&args.dir)?
    };
    let Some(config_path) = layout.node_configs.first() else {
        bail!("the demo genesis has no validator")
    };
    let mut config = NodeConfig::load(config_path)?;
    config.listen = ([127, 0, 0, 1], args.port).into();
    let node = Node::start(&config).await.with_context(|| {
        format!(
            "starting the demo node on port {} (is it in use? try --port)",
            args.port
        )
    })?;
    let url = node.url();

    let genesis = Genesis::load(&layout.genesis_path)?;
    if node.shared.head().height == 0 {
        load_story(&url, &genesis, &layout, args.seed).await?;
    } else {
        println!(
            "reusing {} at height {}",
            args.dir.display(),
            node.shared.head().height
        );
    }
    let receipt_path = save_example_receipt(&url, &args.dir).await?;
    print_summary(&node, &args.dir, &layout, receipt_path.as_deref());
    if !args.exit_after_load {
        println!("\nserving; press Ctrl-C to stop");
        crate::cli::wait_for_signal(&node).await;
    }
    node.shutdown().await;
    Ok(())
}

/// Signs every event of the generated story with its org's key and submits
/// them in batches, waiting for commitment.
async fn load_story(
    url: &str,
    genesis: &Genesis,
    layout: &ConsortiumLayout,
    seed: u64,
) -> Result<()> {
    let items = SupplyChainWorkload::generate_for(seed, Scale::demo(), &Roles::demo());
    let client = lotline_sdk::Client::new(url)?;
    let mut signers = BTreeMap::new();
    for (org, path) in &layout.client_keys {
        signers.insert(
            org.clone(),
            lotline_sdk::Signer::from_key_file(org.clone(), path)?,
        );
    }
    let mut envelopes = Vec::with_capacity(items.len());
    for item in &items {
        let signer = signers
            .get(&item.org)
            .with_context(|| format!("no key for org {}", item.org))?;
        envelopes.push(
            lotline_sdk::AttestationBuilder::new(genesis.chain_id(), signer)
                .event(item.event.clone())
                .build()?,
        );
    }
    let mut committed = 0;
    // Several submits, so the story spans several blocks as it would live.
    for chunk in envelopes.chunks(8) {
        let result = client.submit_batch(chunk, Wait::Committed).await?;
        for (i, r) in result.results.iter().enumerate() {
            match (&r.status, &r.problem) {
                (Status::Committed, _) => committed += 1,
                (_, Some(problem)) => bail!(
                    "demo event {i} was rejected: {} ({})",
                    problem.title,
                    problem.detail
                ),
                (status, None) => bail!("demo event {i} is {status:?} after waiting"),
            }
        }
    }
    println!("loaded the demo supply chain: {committed} attestations committed");
    Ok(())
}

async fn save_example_receipt(url: &str, dir: &Path) -> Result<Option<PathBuf>> {
    let client = lotline_sdk::Client::new(url)?;
    let Ok(block) = client.block(1).await else {
        return Ok(None);
    };
    let Some(id) = block.attestations.first() else {
        return Ok(None);
    };
    let receipt = client.receipt(id).await?;
    let path = dir.join("example-receipt.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&receipt)?)?;
    Ok(Some(path))
}

fn print_summary(node: &Node, dir: &Path, layout: &ConsortiumLayout, receipt: Option<&Path>) {
    let url = node.url();
    let head = node.shared.head();
    println!(
        "\nLotline demo consortium \"lotline-demo\" (chain {})",
        layout.chain_id
    );
    println!("  folder:      {}", dir.display());
    println!("  validator:   manufacturer  API {url}");
    println!(
        "  head:        height {}, {} attestations",
        head.height, head.attestations
    );
    println!("\nTry:");
    println!("  curl {url}/v1/head");
    println!("  curl {url}/v1/blocks/1");
    println!("  curl {url}/v1/orgs/supplier/attestations");
    let lot = SupplyChainWorkload::generate_for(42, Scale::demo(), &Roles::demo())
        .into_iter()
        .flat_map(|w| w.event.canonical_identifiers())
        .find(|id| id.contains("/10/"));
    if let Some(lot) = lot {
        println!(
            "  curl {url}/v1/identifiers/{}/attestations",
            lotline_sdk::encode_segment(&lot)
        );
    }
    println!("  curl {url}/openapi.json");
    if let Some(receipt) = receipt {
        println!(
            "  lotline verify --genesis {} {}",
            layout.genesis_path.display(),
            receipt.display()
        );
    }
}
