//! The `lotline backup`, `restore`, `resume-voting`, `repair` and `doctor` commands: argument
//! handling and what they print. The work is in [`super::backup`],
//! [`super::restore`] and [`super::restored`].

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use lotline_genesis::Genesis;

use super::backup::{self, Extras};
use super::restored::Marker;
use crate::config::NodeConfig;

#[derive(Debug, clap::Args)]
pub struct BackupArgs {
    /// The node's config (data folder, genesis, key files).
    #[arg(long, required_unless_present = "data_dir")]
    pub config: Option<PathBuf>,
    /// The node's data folder (without a config: no genesis, no keys).
    #[arg(long, conflicts_with = "config")]
    pub data_dir: Option<PathBuf>,
    /// A new or empty folder for the backup.
    #[arg(long)]
    pub to: PathBuf,
    /// Also copy the node's key files (mode 0600). Off by default: a backup
    /// usually travels further than a key should.
    #[arg(long, requires = "config")]
    pub with_keys: bool,
}

#[derive(Debug, clap::Args)]
pub struct RestoreArgs {
    /// The backup folder (holding manifest.json).
    #[arg(long)]
    pub from: PathBuf,
    /// The node's config: its genesis, and its data folder unless
    /// --data-dir names another.
    #[arg(long, required_unless_present = "genesis")]
    pub config: Option<PathBuf>,
    /// The genesis to verify the blocks against (without --config).
    #[arg(long, requires = "data_dir")]
    pub genesis: Option<PathBuf>,
    /// The data folder to write (must not exist or be empty).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct RepairArgs {
    /// The node's config (stop the node first).
    #[arg(long)]
    pub config: PathBuf,
    /// How long to wait for a validator to connect, seconds.
    #[arg(long, default_value_t = 30)]
    pub connect_secs: u64,
}

#[derive(Debug, clap::Args)]
pub struct DoctorArgs {
    #[arg(long)]
    pub config: PathBuf,
    /// Another node's API URL (repeatable), for the clock comparison.
    #[arg(long = "peer-url")]
    pub peer_urls: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct ResumeVotingArgs {
    #[arg(long, required_unless_present = "data_dir")]
    pub config: Option<PathBuf>,
    #[arg(long, conflicts_with = "config")]
    pub data_dir: Option<PathBuf>,
}

pub fn backup(args: BackupArgs) -> Result<()> {
    let (data_dir, extras) = match &args.config {
        Some(path) => {
            let config = NodeConfig::load(path)?;
            let mut keys = Vec::new();
            if args.with_keys {
                keys.push(config.node_key.clone());
                keys.extend(config.capture.iter().map(|c| c.key.clone()));
            }
            let extras = Extras {
                genesis: Some(config.genesis.clone()),
                keys,
            };
            (config.data_dir, extras)
        }
        None => (
            args.data_dir.clone().context("--config or --data-dir")?,
            Extras::default(),
        ),
    };
    let manifest = backup::backup(&data_dir, &args.to, &extras)
        .with_context(|| format!("backing up {}", data_dir.display()))?;
    println!(
        "backup of {} at height {} (head {}) written to {}",
        data_dir.display(),
        manifest.height,
        manifest.head_hash.as_deref().unwrap_or("none"),
        args.to.display()
    );
    for file in &manifest.files {
        println!(
            "  {:<14} {:>12} bytes  blake3 {}",
            file.path, file.bytes, file.blake3
        );
    }
    if manifest.keys_included {
        println!("key files are included (mode 0600): keep this backup as secret as the keys");
    } else {
        println!(
            "key files are NOT included (use --with-keys to copy them); back them up separately"
        );
    }
    Ok(())
}

pub fn restore(args: RestoreArgs) -> Result<()> {
    let (genesis_path, data_dir) = match &args.config {
        Some(path) => {
            let config = NodeConfig::load(path)?;
            (
                config.genesis,
                args.data_dir.clone().unwrap_or(config.data_dir),
            )
        }
        None => (
            args.genesis.clone().context("--config or --genesis")?,
            args.data_dir.clone().context("--data-dir")?,
        ),
    };
    let genesis = Genesis::load(&genesis_path)
        .with_context(|| format!("genesis {}", genesis_path.display()))?;
    // Every block is verified against its epoch's validators, learnt from
    // the governance transactions of the blocks before it.
    let governance = crate::governance::Governance::new(std::sync::Arc::new(genesis));
    let manifest = super::restore::restore(&args.from, &data_dir, &governance)
        .with_context(|| format!("restoring {}", args.from.display()))?;
    println!(
        "restored height {} (head {}) into {}; every block verified against the genesis",
        manifest.height,
        manifest.head_hash.as_deref().unwrap_or("none"),
        data_dir.display()
    );
    println!(
        "the node builds its sled index at start and catches up from its peers; it does NOT vote until `lotline resume-voting` (docs/operations.md, \"Restoring a validator\")"
    );
    if manifest.keys_included {
        println!(
            "the backup holds key files in {}/keys; install them yourself (mode 0600) if this machine needs them",
            args.from.display()
        );
    }
    Ok(())
}

pub fn resume_voting(args: ResumeVotingArgs) -> Result<()> {
    let data_dir = data_dir_of(args.config.as_deref(), args.data_dir)?;
    let Some(marker) = Marker::read(&data_dir)? else {
        bail!(
            "{} has no restore marker; the node votes already",
            data_dir.display()
        );
    };
    Marker::clear(&data_dir)?;
    println!(
        "restore marker removed from {} (restored from height {} at {} ms): the node votes after its next start",
        data_dir.display(),
        marker.backup_height,
        marker.restored_at_ms
    );
    Ok(())
}

/// Mends a block log damaged in the middle from the other validators.
pub async fn repair(args: RepairArgs) -> Result<()> {
    let config = NodeConfig::load(&args.config)?;
    let report = super::repair::repair(&config, std::time::Duration::from_secs(args.connect_secs))
        .await
        .with_context(|| format!("repairing {}", config.data_dir.join("blocks.log").display()))?;
    match &report.damaged_log {
        None => println!(
            "block log intact: every one of {} indexed blocks reads back and matches its index",
            report.height
        ),
        Some(aside) => {
            for (height, peer) in &report.repaired {
                println!("height {height}: fetched from validator {peer}, certificate verified");
            }
            println!(
                "repaired {} block(s); the log verifies in full to height {}; the damaged log is kept at {}",
                report.repaired.len(),
                report.height,
                aside.display()
            );
        }
    }
    Ok(())
}

/// Prints every finding; exit 0 if none is a problem, 1 otherwise.
pub async fn doctor(args: DoctorArgs) -> std::process::ExitCode {
    let report = super::doctor::run(&args.config, &args.peer_urls).await;
    for finding in &report.findings {
        println!("{finding}");
    }
    let problems = report.problems().count();
    if problems == 0 {
        println!("no problems found");
        std::process::ExitCode::SUCCESS
    } else {
        println!("{problems} problem(s) found");
        std::process::ExitCode::from(1)
    }
}

fn data_dir_of(config: Option<&Path>, data_dir: Option<PathBuf>) -> Result<PathBuf> {
    match (config, data_dir) {
        (_, Some(dir)) => Ok(dir),
        (Some(path), None) => Ok(NodeConfig::load(path)?.data_dir),
        (None, None) => bail!("--config or --data-dir"),
    }
}
