//! `lotline governance`: propose a membership change, collect the orgs'
//! signatures on it one by one, submit it, and fetch the membership
//! history (docs/operations.md, "Changing the membership"). The rules are
//! in [`lotline_genesis::governance`]; this file reads and writes files
//! and talks to a node through the SDK.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use lotline_core::Envelope;
use lotline_genesis::governance::{self, Change, Proposal};
use lotline_genesis::{Genesis, HistoryFile};
use lotline_sdk::{Client, Signer, Wait};

#[derive(Debug, clap::Subcommand)]
pub enum GovernanceCommand {
    /// Write an unsigned proposal (a DSSE envelope, JSON) for one change.
    Propose {
        #[arg(long)]
        genesis: PathBuf,
        /// The change as JSON, e.g. {"rotateKey":{"org":"acme","oldKey":"..","newKey":".."}}
        /// (forms: addOrg, removeOrg, rotateKey, revokeKey, setPolicy, addValidator,
        /// removeValidator, rotateNodeKey, setConsensus, addNode, removeNode).
        #[arg(long)]
        change: PathBuf,
        /// The first height at which the change holds.
        #[arg(long)]
        effective_height: u64,
        /// Makes this proposal distinct from an earlier one of the same change.
        #[arg(long)]
        nonce: String,
        #[arg(long, default_value = "")]
        reason: String,
        #[arg(long)]
        out: PathBuf,
    },
    /// Add one org's signature to a proposal file, in place.
    Sign {
        /// The signing org (its client key signs).
        #[arg(long)]
        org: String,
        #[arg(long)]
        key: PathBuf,
        proposal: PathBuf,
    },
    /// Submit a signed proposal to a node and wait until it is committed.
    Submit {
        #[arg(long)]
        url: String,
        proposal: PathBuf,
    },
    /// Save the node's membership-history file, after following it from
    /// the genesis (for `lotline verify --membership`).
    History {
        #[arg(long)]
        url: String,
        #[arg(long)]
        genesis: PathBuf,
        #[arg(long)]
        out: PathBuf,
    },
}

pub async fn run(command: GovernanceCommand) -> Result<()> {
    match command {
        GovernanceCommand::Propose {
            genesis,
            change,
            effective_height,
            nonce,
            reason,
            out,
        } => {
            let genesis = Genesis::load(&genesis)?;
            let change: Change = serde_json::from_slice(&read(&change)?)
                .with_context(|| format!("{} is not a governance change", change.display()))?;
            let proposal = Proposal {
                version: governance::VERSION,
                chain_id: genesis.chain_id(),
                effective_height,
                nonce,
                reason,
                change,
            };
            let envelope = governance::unsigned(&proposal);
            governance::decode(&envelope, &genesis.chain_id())?;
            write(&out, &envelope)?;
            println!(
                "proposal {} ({}) from height {effective_height} written to {}; each approving org now runs `lotline governance sign`",
                envelope.id(),
                proposal.change.kind(),
                out.display()
            );
        }
        GovernanceCommand::Sign { org, key, proposal } => {
            let mut envelope = load(&proposal)?;
            if envelope.payload_type != governance::PAYLOAD_TYPE {
                bail!("{} is not a governance proposal", proposal.display());
            }
            let signer = Signer::from_key_file(&org, &key)?;
            signer.sign_governance(&mut envelope);
            write(&proposal, &envelope)?;
            println!(
                "{} signed proposal {} ({} signature(s) now)",
                org,
                envelope.id(),
                envelope.signatures.len()
            );
        }
        GovernanceCommand::Submit { url, proposal } => {
            let envelope = load(&proposal)?;
            let client = Client::new(&url)?;
            let result = client.submit(&envelope, Wait::Committed).await?;
            println!(
                "{}",
                serde_json::to_string_pretty(&serde_json::json!({
                    "id": result.id, "status": result.status, "height": result.height,
                }))?
            );
        }
        GovernanceCommand::History { url, genesis, out } => {
            let genesis = std::sync::Arc::new(Genesis::load(&genesis)?);
            let file = Client::new(&url)?.membership_history().await?;
            let history = file.follow(genesis)?;
            std::fs::write(&out, serde_json::to_vec_pretty(&file)?)
                .with_context(|| format!("writing {}", out.display()))?;
            println!(
                "{} governance transaction(s) through height {} verified and written to {}",
                history.entries().len(),
                file.through_height,
                out.display()
            );
        }
    }
    Ok(())
}

/// Reads and follows a membership-history file (for `lotline verify`).
pub fn follow_file(genesis: &Genesis, path: &Path) -> Result<lotline_genesis::governance::History> {
    let file = HistoryFile::from_json(&read(path)?)?;
    Ok(file.follow(std::sync::Arc::new(genesis.clone()))?)
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

fn load(path: &Path) -> Result<Envelope> {
    Envelope::from_json(&read(path)?)
        .with_context(|| format!("{} is not a DSSE envelope", path.display()))
}

fn write(path: &Path, envelope: &Envelope) -> Result<()> {
    std::fs::write(path, serde_json::to_vec_pretty(envelope)?)
        .with_context(|| format!("writing {}", path.display()))
}
