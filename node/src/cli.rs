//! The `lotline` command line: genesis, node, attest, verify, keygen, demo,
//! backup, restore, resume-voting, repair, doctor.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use lotline_core::api::Wait;
use lotline_core::receipt::Receipt;
use lotline_genesis::Genesis;

use crate::config::NodeConfig;
use crate::node::Node;

#[derive(Debug, Parser)]
#[command(
    name = "lotline",
    version,
    about = "Lotline: a permissioned ledger for manufacturing quality traceability"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create or inspect a consortium genesis.
    Genesis {
        #[command(subcommand)]
        command: GenesisCommand,
    },
    /// Run a node from a config file.
    Node {
        #[arg(long)]
        config: PathBuf,
    },
    /// Sign a JSON EPCIS event as an org and submit it.
    Attest {
        /// Node API URL, e.g. http://127.0.0.1:8080
        #[arg(long)]
        url: String,
        #[arg(long)]
        genesis: PathBuf,
        #[arg(long)]
        org: String,
        /// The org's client key file.
        #[arg(long)]
        key: PathBuf,
        /// A file holding one EPCIS 2.0 event (JSON).
        #[arg(long)]
        event: PathBuf,
        /// Seal this event member privately (a JSON pointer such as
        /// `/lotline:quality/measurements`; repeatable): a version 2
        /// statement, encrypted to the orgs genesis entitles, with a salted
        /// commitment per field (docs/confidentiality.md).
        #[arg(long = "private", value_name = "POINTER")]
        private: Vec<String>,
        /// Wait until committed and write the receipt here.
        #[arg(long)]
        receipt_out: Option<PathBuf>,
    },
    /// Verify receipt files (JSON or postcard) or proof bundles (JSON, from
    /// an audit report or a provenance page) offline against a genesis,
    /// printing one line per event. Exit code 0 if all verify, 1 if any does
    /// not (each failure named), 2 if a file cannot be read or decoded.
    /// With `--disclosure`: one receipt, and each disclosed private field
    /// (JSON `{path, value, salt}`) is checked against the commitment in
    /// its signed statement.
    Verify {
        #[arg(long)]
        genesis: PathBuf,
        /// A membership-history file (`lotline governance history`): judge
        /// each signer by the membership at its receipt's height. Not with
        /// --disclosure (disclosures are checked against the genesis).
        #[arg(long, conflicts_with = "disclosure")]
        membership: Option<PathBuf>,
        #[arg(required = true)]
        receipts: Vec<PathBuf>,
        /// A selective disclosure file to check against the receipt
        /// (repeatable).
        #[arg(long, value_name = "FILE")]
        disclosure: Vec<PathBuf>,
    },
    /// Membership changes by consortium vote: propose, sign, submit,
    /// fetch the membership history (docs/operations.md).
    Governance {
        #[command(subcommand)]
        command: crate::ops::governance::GovernanceCommand,
    },
    /// Write a new Ed25519 signing key file (mode 0600).
    Keygen {
        #[arg(long)]
        out: PathBuf,
    },
    /// Run a local consortium with demo data on embedded defaults.
    Demo(crate::demo::DemoArgs),
    /// API credentials.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// The audit trail.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Back up a node's data folder while it runs: the block log up to a
    /// committed height, its index, the audit trail, a manifest with BLAKE3
    /// hashes; keys only with --with-keys (docs/operations.md, "Backups").
    Backup(crate::ops::commands::BackupArgs),
    /// Write a data folder from a backup after verifying every file and
    /// every block against the genesis; the node starts as a non-voting
    /// follower until `lotline resume-voting`.
    Restore(crate::ops::commands::RestoreArgs),
    /// Let a restored validator vote again (removes its restore marker);
    /// read docs/operations.md, "Restoring a validator", first.
    ResumeVoting(crate::ops::commands::ResumeVotingArgs),
    /// Mend a block log damaged in the middle (node stopped): find the
    /// damaged blocks through the index, fetch them from the other
    /// validators by block sync, verify their certificates, rewrite the log
    /// (docs/operations.md, "Repair from peers").
    Repair(crate::ops::commands::RepairArgs),
    /// Check a node's config, keys, data folder, block log, sled, peers and
    /// clock; print findings in plain words; exit 1 on any problem.
    Doctor(crate::ops::commands::DoctorArgs),
    /// Copy the analytics projection (Parquet + manifest) to a folder or an
    /// S3-compatible object store, for every reader or for one org;
    /// `lotline export verify DIR|s3://...` checks one.
    #[cfg(feature = "analytics")]
    Export(ExportArgs),
    /// Run a read-only SQL query over a data directory's analytics projection.
    #[cfg(feature = "analytics")]
    Sql {
        /// The node's data directory.
        #[arg(long)]
        data_dir: PathBuf,
        /// Answer with the rows this org may read by the membership in
        /// force (default: every row); needs --genesis.
        #[arg(long)]
        org: Option<String>,
        /// Catch the projection up with the store first and read the
        /// membership in force from it (the node must be stopped); the
        /// genesis file of the chain.
        #[arg(long)]
        genesis: Option<PathBuf>,
        /// json, csv, arrow (IPC stream) or parquet.
        #[arg(long, default_value = "json")]
        format: String,
        sql: String,
    },
}

#[cfg(feature = "analytics")]
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
struct ExportArgs {
    #[command(subcommand)]
    command: Option<ExportCommand>,
    /// The node's data directory.
    #[arg(long, required = true)]
    data_dir: Option<PathBuf>,
    /// The (new or empty) folder to write, or `s3://bucket/prefix` (an
    /// empty prefix; credentials, region and endpoint from the AWS_*
    /// environment variables: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
    /// AWS_REGION, AWS_ENDPOINT_URL, AWS_ALLOW_HTTP...).
    #[arg(long, required = true)]
    to: Option<String>,
    /// Only the rows this org may read by the membership in force
    /// (default: every row); needs --genesis.
    #[arg(long)]
    org: Option<String>,
    /// Catch the projection up with the store first and read the
    /// membership in force from it (the node must be stopped); the genesis
    /// file of the chain.
    #[arg(long)]
    genesis: Option<PathBuf>,
}

#[cfg(feature = "analytics")]
#[derive(Debug, Subcommand)]
enum ExportCommand {
    /// Check an export (or a projection) against its manifest: exit 0 if
    /// every file's BLAKE3, size, rows and heights match and no file is
    /// unlisted, 1 naming every mismatch, 2 if there is no readable manifest.
    Verify {
        /// A folder or `s3://bucket/prefix` (AWS_* variables as for --to).
        dir: String,
    },
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Make a new API token: prints the token (once; it is not stored) and
    /// the `[[api.credentials]]` lines to paste into the node config.
    New {
        #[arg(long)]
        org: String,
        /// The org's genesis role, or `operator`.
        #[arg(long)]
        role: String,
        /// Credential id (shown in the audit trail); default `<org>-<role>`.
        #[arg(long)]
        id: Option<String>,
        /// Check org and role against this genesis first.
        #[arg(long)]
        genesis: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Check an audit file (or a node data dir): exit 0 if the chain is
    /// intact, 1 with the first broken, deleted, edited or reordered entry.
    Verify { path: PathBuf },
}

#[derive(Debug, Subcommand)]
enum GenesisCommand {
    /// Create a consortium folder: genesis.toml, keys per org, a node config
    /// per validator.
    Init {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long, default_value = "lotline-consortium")]
        chain_name: String,
        /// Orgs as id:role[:name], comma separated.
        #[arg(long, default_value = crate::demo::DEMO_ORGS)]
        orgs: String,
        /// Which orgs run validators (comma separated); default: all.
        #[arg(long)]
        validators: Option<String>,
        /// First API port; validator i listens on port + i.
        #[arg(long, default_value_t = 8080)]
        api_port: u16,
        /// First libp2p port; validator i listens on port + i (several validators).
        #[arg(long, default_value_t = 7100)]
        p2p_port: u16,
        /// A retention rule (crypto-shredding, docs/confidentiality.md):
        /// the length of one key period, in seconds.
        #[arg(long, requires = "retention_periods")]
        retention_period_seconds: Option<u64>,
        /// How many periods records are kept unless a class says otherwise.
        #[arg(long, requires = "retention_period_seconds")]
        retention_periods: Option<u32>,
        /// A retention class, name=bizStep+bizStep:periods (repeatable),
        /// e.g. logistics=shipping+receiving:2.
        #[arg(long = "retention-class", requires = "retention_period_seconds")]
        retention_classes: Vec<String>,
        /// Period keys are written for records issued over this many
        /// periods from now (later ones need keys announced by governance).
        #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..=100))]
        retention_key_periods: u64,
    },
    /// Print a genesis file's chain id after validating it.
    Id {
        #[arg(long)]
        genesis: PathBuf,
    },
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    crate::logging::init();
    let result = match cli.command {
        Command::Verify {
            genesis,
            receipts,
            disclosure,
            ..
        } if !disclosure.is_empty() => return verify_disclosures(&genesis, &receipts, &disclosure),
        Command::Verify {
            genesis,
            membership,
            receipts,
            ..
        } => return verify(&genesis, membership.as_deref(), &receipts),
        Command::Governance { command } => {
            runtime().and_then(|rt| rt.block_on(crate::ops::governance::run(command)))
        }
        Command::Keygen { out } => keygen(&out),
        Command::Genesis { command } => genesis_command(command),
        Command::Node { config } => runtime().and_then(|rt| rt.block_on(run_node(&config))),
        Command::Attest {
            url,
            genesis,
            org,
            key,
            event,
            private,
            receipt_out,
        } => runtime().and_then(|rt| {
            rt.block_on(attest(
                &url,
                &genesis,
                &org,
                &key,
                &event,
                private,
                receipt_out.as_deref(),
            ))
        }),
        Command::Demo(args) => runtime().and_then(|rt| rt.block_on(crate::demo::run(args))),
        Command::Token {
            command:
                TokenCommand::New {
                    org,
                    role,
                    id,
                    genesis,
                },
        } => token_new(&org, &role, id, genesis.as_deref()),
        Command::Audit {
            command: AuditCommand::Verify { path },
        } => return audit_verify(&path),
        Command::Backup(args) => crate::ops::commands::backup(args),
        Command::Restore(args) => crate::ops::commands::restore(args),
        Command::ResumeVoting(args) => crate::ops::commands::resume_voting(args),
        #[cfg(feature = "analytics")]
        Command::Export(args) => match (args.command, args.data_dir, args.to) {
            (Some(ExportCommand::Verify { dir }), _, _) => {
                match crate::analytics::cli::target(&dir) {
                    Ok(at) => return crate::analytics::cli::verify(&at),
                    Err(e) => {
                        eprintln!("error: {e:#}");
                        return ExitCode::from(2);
                    }
                }
            }
            (None, Some(data_dir), Some(to)) => crate::analytics::cli::target(&to).and_then(|to| {
                crate::analytics::cli::export(
                    &data_dir,
                    args.genesis.as_deref(),
                    &to,
                    args.org.as_deref(),
                )
            }),
            _ => Err(anyhow::anyhow!("lotline export needs --data-dir and --to")),
        },
        #[cfg(feature = "analytics")]
        Command::Sql {
            data_dir,
            org,
            genesis,
            format,
            sql,
        } => {
            crate::analytics::cli::sql(&data_dir, genesis.as_deref(), org.as_deref(), &format, &sql)
        }
        Command::Repair(args) => {
            runtime().and_then(|rt| rt.block_on(crate::ops::commands::repair(args)))
        }
        Command::Doctor(args) => {
            return match runtime() {
                Ok(rt) => rt.block_on(crate::ops::commands::doctor(args)),
                Err(error) => {
                    eprintln!("error: {error:#}");
                    ExitCode::from(2)
                }
            };
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// Runs a node until SIGINT or SIGTERM, then shuts down cleanly.
async fn run_node(config: &Path) -> Result<()> {
    let config = NodeConfig::load(config)?;
    let node = Node::start(&config).await?;
    println!(
        "lotline node serving {} (chain {})",
        node.url(),
        node.genesis.chain_id()
    );
    wait_for_signal(&node).await;
    let failure = node.shared.failure();
    node.shutdown().await;
    if let Some(reason) = failure {
        bail!("node stopped: {reason}");
    }
    Ok(())
}

/// Waits for SIGINT/SIGTERM or for the node to stop by itself.
pub async fn wait_for_signal(node: &Node) {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let stopped = async {
        while !node.shared.shutting_down() {
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: shutting down"),
        _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending::<()>().await } } => {
            tracing::info!("SIGTERM: shutting down")
        }
        _ = stopped => {}
    }
}

fn token_new(org: &str, role: &str, id: Option<String>, genesis: Option<&Path>) -> Result<()> {
    use crate::access::credentials;
    let id = id.unwrap_or_else(|| format!("{org}-{role}"));
    if !credentials::valid_credential_id(&id) {
        bail!("credential id {id:?} must be 1 to 64 characters of a-z, 0-9 and '-'");
    }
    if let Some(path) = genesis {
        let genesis = Genesis::load(path)?;
        let Some(member) = genesis.org(org) else {
            bail!("org {org:?} is not in {}", path.display());
        };
        if role != credentials::OPERATOR && role != member.role.as_str() {
            bail!(
                "org {org:?} has role {}; use --role {} or --role operator",
                member.role,
                member.role
            );
        }
    }
    let issued = credentials::issue(&id, org, role);
    println!("token (shown once, give it to the caller; send as `Authorization: Bearer <token>`):");
    println!("  {}", issued.token);
    println!("\nadd to the node config:\n\n{}", issued.config_lines);
    Ok(())
}

/// `lotline audit verify`: 0 intact, 1 tampered, 2 unreadable.
fn audit_verify(path: &Path) -> ExitCode {
    match crate::audit::verify_path(path) {
        Err(e) => {
            eprintln!("error: {}: {e}", path.display());
            ExitCode::from(2)
        }
        Ok((file, verdict)) => {
            let head = verdict
                .head
                .map(|(seq, hash)| format!("head entry {seq}, hash {hash}"))
                .unwrap_or_else(|| "empty".into());
            match verdict.problem {
                None => {
                    println!(
                        "OK   {}: {} entries, {head}",
                        file.display(),
                        verdict.valid_entries
                    );
                    ExitCode::SUCCESS
                }
                Some(problem) => {
                    println!(
                        "FAIL {}: {problem} ({} valid entries before it, {head})",
                        file.display(),
                        verdict.valid_entries
                    );
                    ExitCode::from(1)
                }
            }
        }
    }
}

fn keygen(out: &Path) -> Result<()> {
    let key = lotline_core::SigningKey::generate();
    lotline_genesis::keys::write_signing_key(out, &key)?;
    println!("{}", key.public_key());
    Ok(())
}

fn genesis_command(command: GenesisCommand) -> Result<()> {
    match command {
        GenesisCommand::Id { genesis } => {
            let genesis = Genesis::load(&genesis)?;
            println!("{}", genesis.chain_id());
            Ok(())
        }
        GenesisCommand::Init {
            dir,
            chain_name,
            orgs,
            validators,
            api_port,
            p2p_port,
            retention_period_seconds,
            retention_periods,
            retention_classes,
            retention_key_periods,
        } => {
            let specs = crate::demo::parse_orgs(&orgs)?;
            let retention = match (retention_period_seconds, retention_periods) {
                (Some(period_seconds), Some(default_periods)) => {
                    Some(lotline_genesis::RetentionSpec {
                        period_seconds,
                        default_periods,
                        classes: retention_classes
                            .iter()
                            .map(|c| parse_retention_class(c))
                            .collect::<Result<_>>()?,
                        issued_from_ms: crate::clock::unix_ms(),
                        issued_periods: retention_key_periods,
                    })
                }
                _ => None,
            };
            let validators: Vec<String> = match validators {
                Some(list) => list.split(',').map(|s| s.trim().to_owned()).collect(),
                None => specs.iter().map(|s| s.id.clone()).collect(),
            };
            let layout = crate::demo::create_consortium_with(
                &dir,
                &chain_name,
                &specs,
                &validators,
                api_port,
                p2p_port,
                retention.as_ref(),
            )?;
            println!(
                "consortium {} (chain id {})",
                layout.genesis_path.display(),
                layout.chain_id
            );
            for config in &layout.node_configs {
                println!("  lotline node --config {}", config.display());
            }
            Ok(())
        }
    }
}

/// `name=bizStep+bizStep:periods`, e.g. `logistics=shipping+receiving:2`.
fn parse_retention_class(text: &str) -> Result<lotline_genesis::RetentionClass> {
    let bad = || anyhow::anyhow!("retention class {text:?}: expected name=bizStep+bizStep:periods");
    let (name, rest) = text.split_once('=').ok_or_else(bad)?;
    let (steps, periods) = rest.rsplit_once(':').ok_or_else(bad)?;
    Ok(lotline_genesis::RetentionClass {
        name: name.trim().to_owned(),
        biz_steps: steps.split('+').map(|s| s.trim().to_owned()).collect(),
        periods: periods.trim().parse().map_err(|_| bad())?,
    })
}

async fn attest(
    url: &str,
    genesis: &Path,
    org: &str,
    key: &Path,
    event: &Path,
    private: Vec<String>,
    receipt_out: Option<&Path>,
) -> Result<()> {
    let genesis = Genesis::load(genesis)?;
    let signer = lotline_sdk::Signer::from_key_file(org, key)?;
    let event_json: serde_json::Value = serde_json::from_slice(
        &std::fs::read(event).with_context(|| format!("reading {}", event.display()))?,
    )
    .with_context(|| format!("{} is not JSON", event.display()))?;
    let builder =
        lotline_sdk::AttestationBuilder::new(genesis.chain_id(), &signer).event_json(event_json)?;
    let envelope = if private.is_empty() {
        builder
    } else {
        builder.private_fields(&genesis, private)
    }
    .build()?;
    let client = lotline_sdk::Client::new(url)?;
    let wait = if receipt_out.is_some() {
        Wait::Committed
    } else {
        Wait::Accepted
    };
    let result = client.submit(&envelope, wait).await?;
    println!(
        "{}",
        serde_json::to_string_pretty(&serde_json::json!({
            "id": result.id, "status": result.status, "height": result.height,
        }))?
    );
    if let (Some(path), Some(receipt)) = (receipt_out, &result.receipt) {
        let verified = genesis.verify_receipt(receipt)?;
        std::fs::write(path, serde_json::to_vec_pretty(receipt)?)
            .with_context(|| format!("writing {}", path.display()))?;
        println!(
            "receipt for height {} written to {} (verified offline)",
            verified.height,
            path.display()
        );
    }
    Ok(())
}

/// `lotline verify`: exit 0 if every receipt verifies, 1 if any does not,
/// 2 if the genesis or a file can not be read.
fn verify(genesis: &Path, membership: Option<&Path>, receipts: &[PathBuf]) -> ExitCode {
    let genesis = match Genesis::load(genesis) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("error: genesis {}: {e}", genesis.display());
            return ExitCode::from(2);
        }
    };
    let history =
        match membership.map(|path| (path, crate::ops::governance::follow_file(&genesis, path))) {
            None => None,
            Some((_, Ok(history))) => Some(history),
            Some((path, Err(e))) => {
                eprintln!("error: membership history {}: {e:#}", path.display());
                return ExitCode::from(2);
            }
        };
    let check = |r: &Receipt| match &history {
        Some(history) => genesis.verify_receipt_in(r, history),
        None => genesis.verify_receipt(r),
    };
    let mut all_ok = true;
    for path in receipts {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) => {
                eprintln!("error: {}: {e}", path.display());
                return ExitCode::from(2);
            }
        };
        if lotline_core::bundle::ProofBundle::sniff(&bytes) {
            match verify_bundle_file(&genesis, path, &bytes) {
                Some(ok) => all_ok &= ok,
                None => return ExitCode::from(2),
            }
            continue;
        }
        match decode_receipt(&bytes).and_then(|r| check(&r).map_err(|e| e.to_string())) {
            Ok(v) => println!(
                "OK   {}: attestation {} committed at height {} in block {}, certified by validator(s) {:?}",
                path.display(),
                v.id,
                v.height,
                v.block,
                v.certified_by
            ),
            Err(reason) => {
                all_ok = false;
                println!("FAIL {}: {reason}", path.display());
            }
        }
    }
    if all_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// `lotline verify --disclosure`: the receipt verifies as with plain
/// `verify`, then each disclosed field against its commitment. Exit 0 if
/// all hold, 1 if any does not, 2 if a file can not be read or decoded.
fn verify_disclosures(genesis: &Path, receipts: &[PathBuf], disclosures: &[PathBuf]) -> ExitCode {
    let [receipt_path] = receipts else {
        eprintln!("error: --disclosure checks against exactly one receipt");
        return ExitCode::from(2);
    };
    let genesis = match Genesis::load(genesis) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("error: genesis {}: {e}", genesis.display());
            return ExitCode::from(2);
        }
    };
    let receipt = match std::fs::read(receipt_path)
        .map_err(|e| e.to_string())
        .and_then(|bytes| decode_receipt(&bytes))
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {}: {e}", receipt_path.display());
            return ExitCode::from(2);
        }
    };
    let mut all_ok = true;
    for path in disclosures {
        let disclosure: lotline_core::private::Disclosure = match std::fs::read(path)
            .map_err(|e| e.to_string())
            .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
        {
            Ok(d) => d,
            Err(e) => {
                eprintln!("error: {}: not a disclosure: {e}", path.display());
                return ExitCode::from(2);
            }
        };
        match genesis.verify_disclosure(&receipt, &disclosure) {
            Ok(v) => println!(
                "OK   {}: field {} of attestation {} (height {}) matches its signed commitment",
                path.display(),
                disclosure.path,
                v.id,
                v.height
            ),
            Err(reason) => {
                all_ok = false;
                println!("FAIL {}: {reason}", path.display());
            }
        }
    }
    if all_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// Checks every receipt of a proof bundle and prints one line per event;
/// `Some(all verified)`, or `None` (after printing why) when the file is not
/// a readable bundle.
fn verify_bundle_file(genesis: &Genesis, path: &Path, bytes: &[u8]) -> Option<bool> {
    let bundle = match lotline_core::bundle::ProofBundle::from_json(bytes) {
        Ok(b) => b,
        Err(e) => {
            eprintln!(
                "error: {}: not a readable proof bundle: {e}",
                path.display()
            );
            return None;
        }
    };
    println!(
        "bundle {}: {} ({} receipts, {} withheld), generated {}",
        path.display(),
        bundle.subject,
        bundle.receipts.len(),
        bundle.withheld.len(),
        bundle.generated_at
    );
    let report = lotline_sdk::verify_bundle(&bundle, genesis);
    if let Some((bundle_chain, genesis_chain)) = report.chain_mismatch {
        println!("FAIL bundle is for chain {bundle_chain}, the genesis is chain {genesis_chain}");
    }
    for verdict in &report.verdicts {
        match &verdict.result {
            Ok(v) => println!(
                "OK   event {}: attestation {} committed at height {}, certified by validator(s) {:?}",
                verdict.index, v.id, v.height, v.certified_by
            ),
            Err(e) => println!(
                "FAIL event {}: attestation {} (claimed height {}): {e}",
                verdict.index, verdict.attestation, verdict.height
            ),
        }
    }
    for withheld in &bundle.withheld {
        println!(
            "--   attestation {} at height {} withheld, not proven: {}",
            withheld.attestation, withheld.height, withheld.reason
        );
    }
    let failed = report.failures().count();
    if report.all_ok() {
        println!("all {} receipts verify", report.verdicts.len());
    } else {
        println!("{failed} of {} receipts FAIL", report.verdicts.len());
    }
    Some(report.all_ok())
}

/// A receipt file is JSON (starts with `{`) or postcard. JSON must be in the
/// form Lotline writes it (compact or pretty, optional final newline): JSON
/// has many spellings of one value (hex case, escapes, spacing), and a
/// verifier that accepted them all could not say "these bytes are what the
/// node served". Postcard has one encoding per value by construction.
fn decode_receipt(bytes: &[u8]) -> Result<Receipt, String> {
    if bytes.first() != Some(&b'{') {
        return Receipt::from_bytes(bytes).map_err(|e| e.to_string());
    }
    let receipt = Receipt::from_json(bytes).map_err(|e| e.to_string())?;
    let body = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    let compact = serde_json::to_vec(&receipt).map_err(|e| e.to_string())?;
    let pretty = serde_json::to_vec_pretty(&receipt).map_err(|e| e.to_string())?;
    if body != compact.as_slice() && body != pretty.as_slice() {
        return Err("the receipt JSON is not in the form Lotline writes (was it edited?)".into());
    }
    Ok(receipt)
}
