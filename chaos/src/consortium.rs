//! The consortium under test, made by the real `lotline genesis init`,
//! then moved to the addresses the nodes run on.
//!
//! `genesis init` writes a loopback layout (API on 127.0.0.1:8080 + i,
//! libp2p on /ip4/127.0.0.1/tcp/7100 + i). The harness rewrites, per
//! validator, the genesis `p2p` hint (not part of the chain id, so the
//! chain stays the one `init` made; checked) and the config's
//! `api.listen`, and lifts the API rate limits: every harness client calls
//! from one address, and a limiter answering 429 would be measured instead
//! of the node.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail, ensure};
use lotline_genesis::Genesis;
use lotline_sdk::Signer;

/// The four orgs, one validator each (id:role:name).
const ORGS: &str = "supplier:supplier:Chaos Supplier,manufacturer:manufacturer:Chaos Manufacturer,\
distributor:distributor:Chaos Distributor,regulator:regulator:Chaos Regulator";
const VALIDATORS: &str = "supplier,manufacturer,distributor,regulator";
/// The org whose read token the checker uses: regulators read everything.
const READER_ORG: &str = "regulator";
const INIT_API_PORT: u16 = 8080;
const INIT_P2P_PORT: u16 = 7100;

/// Where one node listens.
#[derive(Clone, Copy, Debug)]
pub struct NodeAddr {
    pub ip: Ipv4Addr,
    pub api_port: u16,
    pub p2p_port: u16,
}

#[derive(Debug)]
pub struct Consortium {
    pub genesis: Genesis,
    /// Validator org of node `i` (genesis order).
    pub orgs: Vec<String>,
    pub configs: Vec<PathBuf>,
    pub urls: Vec<String>,
    /// The signer of node `i`'s org.
    pub signers: Vec<Signer>,
    /// A read credential of the regulator (sees every attestation).
    pub reader_token: String,
}

/// Runs `lotline genesis init` in `dir` and moves node `i` to `addrs[i]`.
pub fn create(lotline: &Path, dir: &Path, addrs: &[NodeAddr]) -> Result<Consortium> {
    let out = Command::new(lotline)
        .arg("genesis")
        .arg("init")
        .arg("--dir")
        .arg(dir)
        .args(["--chain-name", "chaos", "--orgs", ORGS])
        .args(["--validators", VALIDATORS])
        .args(["--api-port", &INIT_API_PORT.to_string()])
        .args(["--p2p-port", &INIT_P2P_PORT.to_string()])
        .output()
        .with_context(|| format!("running {} genesis init", lotline.display()))?;
    if !out.status.success() {
        bail!(
            "lotline genesis init failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let genesis_path = dir.join("genesis.toml");
    let made = Genesis::load(&genesis_path).context("the genesis init wrote")?;
    let orgs: Vec<String> = made.validators().iter().map(|v| v.org.clone()).collect();
    ensure!(
        orgs.len() == addrs.len(),
        "genesis init made {} validators ({}), the harness runs {}",
        orgs.len(),
        orgs.join(", "),
        addrs.len()
    );

    let mut text = std::fs::read_to_string(&genesis_path)?;
    let hint = |a: &NodeAddr| format!("/ip4/{}/tcp/{}", a.ip, a.p2p_port);
    let placeholders: Vec<String> = (0..addrs.len()).map(|i| format!("@p2p-{i}@")).collect();
    for (i, placeholder) in placeholders.iter().enumerate() {
        let port = INIT_P2P_PORT + i as u16;
        replace_once(
            &mut text,
            &format!("\"/ip4/127.0.0.1/tcp/{port}\""),
            &format!("\"{placeholder}\""),
        )
        .context("genesis p2p hint")?;
    }
    for (placeholder, addr) in placeholders.iter().zip(addrs) {
        replace_once(&mut text, placeholder, &hint(addr))?;
    }
    std::fs::write(&genesis_path, &text)?;
    let genesis = Genesis::load(&genesis_path).context("the rewritten genesis")?;
    ensure!(
        genesis.chain_id() == made.chain_id(),
        "moving p2p hints changed the chain id"
    );
    for (v, addr) in genesis.validators().iter().zip(addrs) {
        ensure!(
            v.p2p.as_deref() == Some(hint(addr).as_str()),
            "p2p hint of {}",
            v.org
        );
    }

    let mut configs = Vec::new();
    let mut urls = Vec::new();
    let mut signers = Vec::new();
    for (i, (org, addr)) in orgs.iter().zip(addrs).enumerate() {
        let path = dir.join("nodes").join(format!("{org}.toml"));
        let mut config =
            std::fs::read_to_string(&path).with_context(|| format!("{}", path.display()))?;
        let port = INIT_API_PORT + i as u16;
        replace_once(
            &mut config,
            &format!("listen = \"127.0.0.1:{port}\""),
            &format!("listen = \"{}:{}\"", addr.ip, addr.api_port),
        )
        .with_context(|| format!("api.listen in {}", path.display()))?;
        config.push_str(RATE_LIMITS_LIFTED);
        std::fs::write(&path, config)?;
        configs.push(path);
        urls.push(format!("http://{}:{}", addr.ip, addr.api_port));
        let key = dir.join("keys").join(org).join("client.key");
        signers.push(Signer::from_key_file(org.clone(), &key)?);
    }
    let token_path = dir.join("keys").join(READER_ORG).join("api.token");
    let reader_token = std::fs::read_to_string(&token_path)
        .with_context(|| format!("reading {}", token_path.display()))?
        .trim()
        .to_owned();
    Ok(Consortium {
        genesis,
        orgs,
        configs,
        urls,
        signers,
        reader_token,
    })
}

const RATE_LIMITS_LIFTED: &str = "
# lotline-chaos: every harness client calls from one address; the limits
# are lifted so that the run measures the node, not the limiter.
[api.rate_limit]
per_ip_per_s = 4294967295
per_ip_burst = 4294967295
per_credential_per_s = 4294967295
per_credential_burst = 4294967295
";

fn replace_once(text: &mut String, from: &str, to: &str) -> Result<()> {
    let found = text.matches(from).count();
    ensure!(
        found == 1,
        "expected {from:?} once in the file genesis init wrote, found it {found} times"
    );
    *text = text.replacen(from, to, 1);
    Ok(())
}
