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
    /// API port of the first node; node i serves on port + i.
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// libp2p port of the first node; node i listens on port + i.
    #[arg(long, default_value_t = 7100)]
    pub p2p_port: u16,
    /// Seed of the generated supply chain (the planted story: `workload
    /// --seed N --truth FILE` names its quality causes).
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
    /// org id -> file holding that org's API token (accepted by every node).
    pub tokens: BTreeMap<String, PathBuf>,
    /// validator org id -> file holding its node operator's API token.
    pub operator_tokens: BTreeMap<String, PathBuf>,
}

/// Where an org's API token (or its operator token) is kept in a consortium folder.
fn token_path(dir: &Path, org: &str, operator: bool) -> PathBuf {
    let name = if operator {
        "operator.token"
    } else {
        "api.token"
    };
    dir.join("keys").join(org).join(name)
}

/// Issues a token, writes it to `path` (mode 0600) and returns its config lines.
fn issue_token(path: &Path, id: &str, org: &str, role: &str) -> Result<String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let issued = crate::access::credentials::issue(id, org, role);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    file.write_all(issued.token.as_bytes())?;
    file.sync_all()?;
    Ok(issued.config_lines)
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
/// validator (API on `api_port + i`, libp2p on `p2p_port + i` when there
/// are several validators, data in `data/<org>`).
pub fn create_consortium(
    dir: &Path,
    chain_name: &str,
    orgs: &[OrgSpec],
    validators: &[String],
    api_port: u16,
    p2p_port: u16,
) -> Result<ConsortiumLayout> {
    create_consortium_with(dir, chain_name, orgs, validators, api_port, p2p_port, None)
}

/// The first of `n` consecutive loopback ports that are free now, for a
/// consortium started in this process or by children it spawns (the
/// benchmarks, the tests).
///
/// The ports lie below Linux's ephemeral range (32768 and up), so no
/// outgoing connection is handed one between this probe and the node's
/// bind. Every call in a process starts past the ranges it handed out
/// before — a range is bound later, and probing alone would give two
/// callers the same ports — and the first starts at an offset derived from
/// the process id, so processes running side by side rarely meet either.
pub fn free_port_range(n: u16) -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    const LOW: u32 = 20_000;
    const SPAN: u32 = 12_000;
    static HANDED_OUT: AtomicU32 = AtomicU32::new(0);
    let start = std::process::id() % SPAN;
    loop {
        let offset = HANDED_OUT.fetch_add(u32::from(n) + 1, Ordering::Relaxed);
        let first = LOW + (start + offset) % SPAN;
        let Ok(base) = u16::try_from(first) else {
            continue;
        };
        if first + u32::from(n) <= LOW + SPAN
            && (0..n).all(|i| std::net::TcpListener::bind(("127.0.0.1", base + i)).is_ok())
        {
            return base;
        }
    }
}

/// [`create_consortium`] with a retention rule (`lotline genesis init
/// --retention-*`): period key files per org, and each node's `[private]`
/// names its org's folder of them.
pub fn create_consortium_with(
    dir: &Path,
    chain_name: &str,
    orgs: &[OrgSpec],
    validators: &[String],
    api_port: u16,
    p2p_port: u16,
    retention: Option<&lotline_genesis::RetentionSpec>,
) -> Result<ConsortiumLayout> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let p2p = (validators.len() > 1).then_some(p2p_port);
    let out = lotline_genesis::init::init_consortium_with_retention(
        dir, chain_name, orgs, validators, p2p, retention,
    )?;
    // One read credential per org, accepted by every node (a demo
    // convenience: in production each node's operator issues its own).
    let mut member_credentials = String::new();
    let mut tokens = BTreeMap::new();
    for org in out.genesis.orgs() {
        let path = token_path(dir, &org.id, false);
        member_credentials.push('\n');
        member_credentials.push_str(&issue_token(
            &path,
            &format!("{}-reader", org.id),
            &org.id,
            org.role.as_str(),
        )?);
        tokens.insert(org.id.clone(), path);
    }
    let mut operator_tokens = BTreeMap::new();
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
        let operator_path = token_path(dir, &validator.org, true);
        let operator = issue_token(
            &operator_path,
            &format!("{}-operator", validator.org),
            &validator.org,
            crate::access::credentials::OPERATOR,
        )?;
        operator_tokens.insert(validator.org.clone(), operator_path);
        let mut text = format!(
            "{}{member_credentials}\n{operator}",
            NodeConfig::render(
                &Path::new("..").join("data").join(&validator.org),
                &rel(&out.genesis_path),
                &rel(&keys.node_key),
                listen,
            )
        );
        // EPCIS capture on each node signs as the org that runs it.
        text.push_str(&NodeConfig::render_capture(
            &validator.org,
            &rel(&keys.client_key),
        ));
        // Each node opens the private fields wrapped to the org that runs it.
        text.push_str(&NodeConfig::render_private(
            &validator.org,
            &rel(&keys.encryption_key),
            keys.period_keys.as_deref().map(rel).as_deref(),
        ));
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
        tokens,
        operator_tokens,
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
    let tokens = genesis
        .orgs()
        .iter()
        .map(|o| (o.id.clone(), token_path(dir, &o.id, false)))
        .collect();
    let operator_tokens = genesis
        .validators()
        .iter()
        .map(|v| (v.org.clone(), token_path(dir, &v.org, true)))
        .collect();
    Ok(ConsortiumLayout {
        genesis_path,
        chain_id: genesis.chain_id(),
        node_configs,
        client_keys,
        tokens,
        operator_tokens,
    })
}

pub async fn run(args: DemoArgs) -> Result<()> {
    let fresh = !args.dir.join(lotline_genesis::init::GENESIS_FILE).exists();
    let layout = if fresh {
        let orgs = parse_orgs(DEMO_ORGS)?;
        let validators: Vec<String> = orgs.iter().map(|o| o.id.clone()).collect();
        create_consortium(
            &args.dir,
            "lotline-demo",
            &orgs,
            &validators,
            args.port,
            args.p2p_port,
        )?
    } else {
        existing_layout(&args.dir)?
    };
    let genesis = Genesis::load(&layout.genesis_path)?;
    let mut nodes = Vec::new();
    for (i, path) in layout.node_configs.iter().enumerate() {
        let mut config = NodeConfig::load(path)?;
        let port = args
            .port
            .checked_add(u16::try_from(i)?)
            .context("API port out of range")?;
        config.listen = ([127, 0, 0, 1], port).into();
        let node = Node::start(&config).await.with_context(|| {
            format!(
                "starting the node of {} on port {port} (in use? try --port)",
                path.display()
            )
        })?;
        nodes.push(node);
    }
    wait_connected(&nodes).await;
    let urls: BTreeMap<String, String> = genesis
        .validators()
        .iter()
        .zip(&nodes)
        .map(|(v, n)| (v.org.clone(), n.url()))
        .collect();

    if nodes.iter().all(|n| n.shared.head().height == 0) {
        load_story(&urls, &genesis, &layout, args.seed).await?;
    } else {
        println!(
            "reusing {} at height {}",
            args.dir.display(),
            nodes[0].shared.head().height
        );
    }
    let first = nodes.first().map(Node::url).unwrap_or_default();
    let receipt_path = save_example_receipt(&first, &args.dir).await?;
    print_summary(&nodes, &urls, &args.dir, &layout, receipt_path.as_deref());
    if !args.exit_after_load {
        println!("\nserving; press Ctrl-C to stop");
        if let Some(node) = nodes.first() {
            crate::cli::wait_for_signal(node).await;
        }
    }
    for node in nodes {
        node.shutdown().await;
    }
    Ok(())
}

/// Waits (bounded) until every validator sees all the others.
async fn wait_connected(nodes: &[Node]) {
    let want = nodes.len().saturating_sub(1);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    while tokio::time::Instant::now() < deadline {
        if nodes.iter().all(|n| {
            n.net
                .as_ref()
                .is_none_or(|net| net.connected().len() >= want)
        }) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    tracing::warn!("not every validator connected within 20 s; continuing");
}

/// The members of a story event the demo seals privately (statement
/// version 2, docs/confidentiality.md):
/// - business transactions: the orders, dispatch advices and invoices that
///   carry prices and customers' order references;
/// - measurements (`lotline:quality` `measurements`): test results and the
///   in-process controls' process parameters. The nodes of the orgs that
///   may open them chart and alert on them (`store::Opener`,
///   `quality::series`); other orgs see the inspection's result only;
/// - customer identities: on a leg to a customer (an event under a
///   customer's purchase order, `po`), the destination parties and
///   location, and the read point and business location when they are the
///   customer's site (the store's receipt).
///
/// What trace, custody's holders, the write policy and the cold chain read
/// stays public: identifiers, times, bizStep, disposition, sensor data and
/// lot master data (the storage limits).
fn private_paths(event: &lotline_core::epcis::Event) -> Vec<String> {
    let mut paths = Vec::new();
    if !event.biz_transaction_list.is_empty() {
        paths.push("/bizTransactionList".to_owned());
    }
    if matches!(
        &event.quality,
        Some(lotline_core::epcis::QualityFact::Inspection { measurements, .. }) if !measurements.is_empty()
    ) {
        paths.push("/lotline:quality/measurements".to_owned());
    }
    let to_customer = event
        .biz_transaction_list
        .iter()
        .any(|t| t.kind.as_deref() == Some("po"));
    if to_customer && !event.destination_list.is_empty() {
        paths.push("/destinationList".to_owned());
        let customer_site = |location: &Option<lotline_core::epcis::Location>| {
            location.as_ref().is_some_and(|l| {
                event
                    .destination_list
                    .iter()
                    .any(|d| d.kind == "location" && d.destination == l.id)
            })
        };
        if customer_site(&event.read_point) {
            paths.push("/readPoint".to_owned());
        }
        if customer_site(&event.biz_location) {
            paths.push("/bizLocation".to_owned());
        }
    }
    paths
}

/// Signs every event of the generated story with its org's key and submits
/// it through that org's own node, in story order, waiting for commitment.
async fn load_story(
    urls: &BTreeMap<String, String>,
    genesis: &Genesis,
    layout: &ConsortiumLayout,
    seed: u64,
) -> Result<()> {
    // The planted story: `workload --seed N --truth FILE` writes what the
    // quality tools should find in it.
    let items: Vec<_> = SupplyChainWorkload::planted(seed, Scale::demo(), &Roles::demo()).collect();
    let mut signers = BTreeMap::new();
    for (org, path) in &layout.client_keys {
        signers.insert(
            org.clone(),
            lotline_sdk::Signer::from_key_file(org.clone(), path)?,
        );
    }
    let any_url = urls.values().next().cloned().context("no node")?;
    let mut committed = 0;
    // Consecutive events of one org go together, like an ERP's bulk upload.
    let mut start = 0;
    while start < items.len() {
        let org = &items[start].org;
        let end = items[start..]
            .iter()
            .position(|w| &w.org != org)
            .map_or(items.len(), |n| start + n)
            .min(start + 8);
        let signer = signers
            .get(org)
            .with_context(|| format!("no key for org {org}"))?;
        let envelopes = items[start..end]
            .iter()
            .map(|item| {
                let builder = lotline_sdk::AttestationBuilder::new(genesis.chain_id(), signer)
                    .event(item.event.clone());
                match private_paths(&item.event) {
                    paths if paths.is_empty() => builder,
                    paths => builder.private_fields(genesis, paths),
                }
                .build()
            })
            .collect::<Result<Vec<_>, _>>()?;
        let client = lotline_sdk::Client::new(urls.get(org).unwrap_or(&any_url))?;
        let result = client.submit_batch(&envelopes, Wait::Committed).await?;
        for (i, r) in result.results.iter().enumerate() {
            match (&r.status, &r.problem) {
                (Status::Committed, _) => committed += 1,
                (_, Some(problem)) => bail!(
                    "demo event {} was rejected: {} ({})",
                    start + i,
                    problem.title,
                    problem.detail
                ),
                (status, None) => bail!("demo event {} is {status:?} after waiting", start + i),
            }
        }
        start = end;
    }
    println!("loaded the demo supply chain: {committed} attestations committed");
    Ok(())
}

/// Saves the receipt of the first *public* attestation (anyone may check it).
async fn save_example_receipt(url: &str, dir: &Path) -> Result<Option<PathBuf>> {
    let client = lotline_sdk::Client::new(url)?;
    let head = client.head().await?.height;
    // The first block that holds an attestation (idle views make empty ones).
    for height in 1..=head {
        let block = client.block(height).await?;
        if let Some(id) = block.attestations.first() {
            let receipt = client.receipt(id).await?;
            let path = dir.join("example-receipt.json");
            std::fs::write(&path, serde_json::to_vec_pretty(&receipt)?)?;
            return Ok(Some(path));
        }
    }
    Ok(None)
}

fn print_summary(
    nodes: &[Node],
    urls: &BTreeMap<String, String>,
    dir: &Path,
    layout: &ConsortiumLayout,
    receipt: Option<&Path>,
) {
    let url = nodes.first().map(Node::url).unwrap_or_default();
    let head = nodes.first().map(|n| n.shared.head()).unwrap_or_default();
    println!(
        "\nLotline demo consortium \"lotline-demo\" (chain {})",
        layout.chain_id
    );
    println!("  folder: {}", dir.display());
    println!(
        "  head:   height {}, {} attestations",
        head.height, head.attestations
    );
    println!("  validators (one node per organisation):");
    for (org, node_url) in urls {
        println!("    {org:<13} {node_url}");
    }
    println!("\nTry (anonymous callers see the public projection only):");
    println!("  curl {url}/v1/head");
    println!("  curl {url}/v1/blocks/1");
    println!("  curl {url}/v1/orgs/supplier/attestations");
    let lot = SupplyChainWorkload::generate_for(42, Scale::demo(), &Roles::demo())
        .into_iter()
        .flat_map(|w| w.event.canonical_identifiers())
        .find(|id| id.contains("/10/"));
    if let Some(lot) = &lot {
        println!(
            "  curl {url}/v1/identifiers/{}/attestations",
            lotline_sdk::encode_segment(lot)
        );
    }
    println!("  curl {url}/openapi.json");
    if let Some(token) = layout
        .tokens
        .get("regulator")
        .or(layout.tokens.values().next())
    {
        println!("With an org's API token (regulators read everything; each read is audited):");
        println!(
            "  curl -H \"Authorization: Bearer $(cat {})\" {url}/v1/orgs/supplier/attestations",
            token.display()
        );
        println!(
            "  curl -H \"Authorization: Bearer $(cat {})\" {url}/v1/audit",
            token.display()
        );
    }
    println!(
        "  (tokens: {}/keys/<org>/api.token; new ones: lotline token new --org X --role Y)",
        dir.display()
    );
    print_public_urls(&url, lot.as_deref());
    if let Some(receipt) = receipt {
        println!(
            "  lotline verify --genesis {} {}",
            layout.genesis_path.display(),
            receipt.display()
        );
    }
}

/// The public edge for one demo serial: its consumer page (scan target), its
/// QR codes, and a regulator's report on a lot.
fn print_public_urls(url: &str, lot: Option<&str>) {
    let serial = SupplyChainWorkload::generate_for(42, Scale::demo(), &Roles::demo())
        .into_iter()
        .flat_map(|w| w.event.canonical_identifiers())
        .find(|id| id.contains("/21/"));
    let host = lotline_core::gs1::CANONICAL_HOST;
    if let Some(path) = serial.as_deref().and_then(|s| s.strip_prefix(host)) {
        println!("\nConsumer page of a demo serial (open on a phone, ?lang=zh for Chinese):");
        println!("  {url}{path}");
        println!("  QR codes: {url}/qr{path}?format=png  {url}/qr{path}?format=svg");
    }
    if let Some(lot) = lot {
        let segment = lotline_sdk::encode_segment(lot);
        println!(
            "Regulator report of a lot (html, ?format=csv, ?format=json for the proof bundle):"
        );
        println!("  {url}/v1/reports/lots/{segment}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Goal: the demo's story still commits with its measurements and
    /// customer identities sealed. Method: every planted event is sealed
    /// by [`private_paths`] through the SDK's one sealing pipeline, and
    /// its public part passes the checks admission makes (event
    /// validation, the write policy, the recipients); the inspections'
    /// measurements and the customer legs' destinations are among the
    /// sealed members.
    #[test]
    fn the_story_seals_measurements_and_customers_and_passes_admission_checks() {
        let dir = tempfile::tempdir().unwrap();
        let orgs = parse_orgs(DEMO_ORGS).unwrap();
        let validators: Vec<String> = orgs.iter().map(|o| o.id.clone()).collect();
        let layout = create_consortium(dir.path(), "t", &orgs, &validators, 0, 0).unwrap();
        let genesis = Genesis::load(&layout.genesis_path).unwrap();
        let signers: BTreeMap<String, lotline_sdk::Signer> = layout
            .client_keys
            .iter()
            .map(|(org, path)| {
                let signer = lotline_sdk::Signer::from_key_file(org.clone(), path).unwrap();
                (org.clone(), signer)
            })
            .collect();
        let (mut measurements, mut customers) = (0, 0);
        for item in SupplyChainWorkload::planted(7, Scale::demo(), &Roles::demo()) {
            let paths = private_paths(&item.event);
            measurements += usize::from(paths.iter().any(|p| p.ends_with("/measurements")));
            customers += usize::from(paths.iter().any(|p| p == "/destinationList"));
            let envelope =
                lotline_sdk::AttestationBuilder::new(genesis.chain_id(), &signers[&item.org])
                    .event(item.event.clone())
                    .private_fields(&genesis, paths.clone())
                    .build()
                    .unwrap();
            let statement =
                lotline_core::statement::Statement::from_payload(&envelope.payload).unwrap();
            assert_eq!(statement.private.is_some(), !paths.is_empty());
            assert_eq!(statement.event.validate(), Vec::new(), "{paths:?}");
            assert_eq!(genesis.check_private_recipients(&statement), Vec::new());
            let org = genesis.org(&item.org).unwrap();
            genesis
                .check_write(org, &statement.event)
                .unwrap_or_else(|e| panic!("{paths:?}: {e}"));
        }
        assert!(measurements > 10, "{measurements} sealed inspections");
        assert!(customers > 0, "{customers} sealed customer legs");
    }
}
