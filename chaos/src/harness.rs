//! One run: network, consortium, nodes, observer, load, the schedule, the
//! final check, the figures.
//!
//! Cleanup on every path: the guards are locals of [`run`], declared so
//! that they drop in the right order (nodes, then namespaces, then the
//! instance lock) whether `run` returns, fails with `?`, panics, or is
//! dropped by `main` on SIGINT/SIGTERM/SIGHUP. A run that was SIGKILLed
//! leaves its nodes and namespaces behind; the next run of the same
//! instance removes them before it starts ([`net::remove_leftovers`],
//! [`process::reap_recorded`]).

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::Args;
use crate::consortium::{self, NodeAddr};
use crate::inject::Injector;
use crate::load::{self, Load};
use crate::net::{self, Instance, Network};
use crate::observe::Observer;
use crate::process::{self, Cluster, NodeProcess};
use crate::report::{self, Violations};
use crate::schedule::{self, FaultKind, NODES, Schedule};

/// Time for four fresh nodes to start and commit a first block. Generous:
/// on a loaded 2-core CI machine a debug node takes a few seconds to open.
const STARTUP_LIMIT: Duration = Duration::from_secs(60);
/// Recovery is measured (not judged) up to this long after a heal.
const WAIT_MAX: Duration = Duration::from_secs(60);
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

pub async fn run(args: Args) -> Result<bool> {
    let started = Instant::now();
    let seed = args.seed.unwrap_or_else(clock_seed);
    let kinds = fault_kinds(&args)?;
    let schedule = schedule::plan(seed, args.duration, &kinds);
    print_plan(&args, &schedule);
    if args.plan_only {
        return Ok(true);
    }
    if !args.loopback {
        net::preflight()?;
    }
    let lotline = lotline_binary(args.lotline.as_deref())?;

    // Guards, in drop order last to first: instance lock, network, nodes.
    let instance = Instance::claim()?;
    process::reap_recorded(&net::pid_file(instance.index));
    let network = match args.loopback {
        true => None,
        false => Some(Network::create(&instance, NODES)?),
    };
    let dir = match &args.dir {
        Some(d) => d.clone(),
        None => std::env::temp_dir().join(format!(
            "lotline-chaos-{}-{}",
            instance.index,
            std::process::id()
        )),
    };
    if dir.join("consortium").exists() {
        bail!("{} already holds a run; pass an empty --dir", dir.display());
    }
    std::fs::create_dir_all(dir.join("logs"))
        .with_context(|| format!("creating {}", dir.display()))?;
    println!("run folder: {}", dir.display());
    let addrs = match &network {
        Some(_) => (0..NODES)
            .map(|i| NodeAddr {
                ip: Network::node_ip(instance.index, i),
                api_port: 8080,
                p2p_port: 7100,
            })
            .collect(),
        None => loopback_addrs()?,
    };
    let consortium = consortium::create(&lotline, &dir.join("consortium"), &addrs)?;
    let nodes = (0..NODES)
        .map(|i| {
            let org = consortium.orgs[i].clone();
            NodeProcess::new(
                org.clone(),
                lotline.clone(),
                consortium.configs[i].clone(),
                dir.join("logs").join(format!("n{i}-{org}.log")),
                network.as_ref().map(|n| n.namespace(i)),
            )
        })
        .collect();
    let mut cluster = Cluster::new(nodes, net::pid_file(instance.index));
    cluster.start_all()?;

    let violations = Arc::new(Violations::new(started));
    let observer = Arc::new(Observer::new(NODES, violations.clone()));
    observer.spawn(&consortium.urls)?;
    wait_for_start(&mut cluster, &observer).await?;
    println!(
        "[{:>7.1}s] four nodes up at {}",
        started.elapsed().as_secs_f64(),
        consortium.urls.join(" ")
    );

    let load = Arc::new(Load {
        genesis: consortium.genesis.clone(),
        urls: consortium.urls.clone(),
        ledger: Default::default(),
        violations: violations.clone(),
        stop: AtomicBool::new(false),
    });
    let load_started = Instant::now();
    let writers = load::spawn_writers(
        &load,
        &consortium.signers,
        usize::from(args.writers_per_org),
    )?;
    tokio::time::sleep(schedule.warmup).await;

    let end = load_started + args.duration;
    let mut injector = Injector {
        cluster: &mut cluster,
        network: network.as_ref(),
        observer: &observer,
        violations: &violations,
        limit: args.recovery_limit,
        wait_max: WAIT_MAX.max(args.recovery_limit * 2),
        started,
    };
    let mut outcomes = Vec::new();
    for (i, step) in schedule.steps.iter().enumerate() {
        if i >= schedule.first_round && Instant::now() + step.hold + step.settle > end {
            break;
        }
        outcomes.push(injector.run(step).await?);
    }
    injector.log("faults done; clean load until the end of the run");
    tokio::time::sleep_until(end.max(Instant::now()).into()).await;
    load.stop.store(true, Ordering::Relaxed);
    let load_time = load_started.elapsed();
    for writer in writers {
        // A writer finishes its submit in flight, bounded by its timeout.
        match tokio::time::timeout(load::SUBMIT_TIMEOUT + Duration::from_secs(5), writer).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => violations.record(format!("a writer task failed: {e}")),
            Err(_) => violations.record("a writer did not finish its last submit".into()),
        }
    }
    for exit in cluster.unexpected_exits() {
        violations.record(exit);
    }
    injector_log(started, "load stopped; checking every node");

    let acked = load.ledger.acked();
    let in_doubt = load.ledger.in_doubt();
    let figures = crate::check::run(
        &consortium.urls,
        &consortium.reader_token,
        &consortium.genesis,
        &observer,
        acked.clone(),
        in_doubt.clone(),
        &violations,
    )
    .await?;
    observer.stop();
    let shutdown = cluster.shutdown(SHUTDOWN_GRACE);

    let all = violations.all();
    print_figures(&Figures {
        args: &args,
        schedule: &schedule,
        lotline: &lotline,
        load: &load,
        load_time,
        acked: acked.len(),
        in_doubt: in_doubt.len(),
        outcomes: &outcomes,
        check: &figures,
        forks: observer.forks(),
        blocks_compared: observer.blocks_compared(),
        shutdown: &shutdown,
        violations: &all,
    });
    let passed = all.is_empty();
    if passed && !args.keep {
        drop(cluster);
        let _ = std::fs::remove_dir_all(&dir);
    } else {
        println!("run folder kept: {} (node logs in logs/)", dir.display());
    }
    Ok(passed)
}

fn injector_log(started: Instant, what: &str) {
    println!("[{:>7.1}s] {what}", started.elapsed().as_secs_f64());
}

fn clock_seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1)
        % 1_000_000
}

fn fault_kinds(args: &Args) -> Result<Vec<FaultKind>> {
    let chosen: Vec<FaultKind> = if args.faults.is_empty() {
        FaultKind::ALL
            .into_iter()
            .filter(|k| !(args.loopback && k.is_partition()))
            .collect()
    } else {
        args.faults.clone()
    };
    if args.loopback
        && let Some(k) = chosen.iter().find(|k| k.is_partition())
    {
        bail!(
            "--faults {}: partitions need network namespaces, which --loopback does not make",
            k.name()
        );
    }
    Ok(chosen)
}

/// `--lotline`, or `lotline` next to this binary (both are built into the
/// same target folder).
fn lotline_binary(given: Option<&Path>) -> Result<PathBuf> {
    let path = match given {
        Some(p) => p.to_path_buf(),
        None => std::env::current_exe()?
            .parent()
            .context("this binary has no folder")?
            .join("lotline"),
    };
    if !path.is_file() {
        bail!(
            "{} not found: build it (`cargo build -p lotline-node --bin lotline`) or pass --lotline",
            path.display()
        );
    }
    // Absolute, because node processes run with another working folder.
    Ok(std::fs::canonicalize(&path)?)
}

/// Free loopback ports, two per node (held together, then released).
fn loopback_addrs() -> Result<Vec<NodeAddr>> {
    let listeners = (0..NODES * 2)
        .map(|_| TcpListener::bind((Ipv4Addr::LOCALHOST, 0)))
        .collect::<std::io::Result<Vec<_>>>()?;
    let ports = listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.port()))
        .collect::<std::io::Result<Vec<_>>>()?;
    Ok((0..NODES)
        .map(|i| NodeAddr {
            ip: Ipv4Addr::LOCALHOST,
            api_port: ports[2 * i],
            p2p_port: ports[2 * i + 1],
        })
        .collect())
}

async fn wait_for_start(cluster: &mut Cluster, observer: &Observer) -> Result<()> {
    let deadline = Instant::now() + STARTUP_LIMIT;
    while Instant::now() < deadline {
        let exits = cluster.unexpected_exits();
        if !exits.is_empty() {
            bail!("a node did not start:\n{}", exits.join("\n"));
        }
        // Every node answers: an idle chain makes no block before the load
        // starts (only a heartbeat a minute), so the writers' first commits
        // are what shows the consortium formed.
        if (0..NODES).all(|i| observer.head(i).is_some()) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let tails: Vec<String> = cluster
        .nodes
        .iter()
        .enumerate()
        .map(|(i, n)| {
            format!(
                "n{i} height {:?}:\n{}",
                observer.head(i).map(|h| h.height),
                process::log_tail(&n.log, 10)
            )
        })
        .collect();
    bail!(
        "the nodes did not all answer within {STARTUP_LIMIT:?}:\n{}",
        tails.join("\n")
    )
}

fn print_plan(args: &Args, schedule: &Schedule) {
    println!(
        "lotline-chaos: seed {} (replay: --seed {} --duration {}s{}), {} faults planned",
        schedule.seed,
        schedule.seed,
        args.duration.as_secs(),
        if args.loopback { " --loopback" } else { "" },
        schedule.steps.len()
    );
    let mut at = schedule.warmup;
    for (i, step) in schedule.steps.iter().enumerate() {
        println!(
            "  {i:>3}. ~{:>5} s  {} (hold {} s, settle {} s)",
            at.as_secs(),
            step.fault,
            step.hold.as_secs(),
            step.settle.as_secs()
        );
        at += step.hold + step.settle;
    }
}

struct Figures<'a> {
    args: &'a Args,
    schedule: &'a Schedule,
    lotline: &'a Path,
    load: &'a Load,
    load_time: Duration,
    acked: usize,
    in_doubt: usize,
    outcomes: &'a [report::Outcome],
    check: &'a crate::check::CheckFigures,
    forks: u64,
    blocks_compared: u64,
    shutdown: &'a [String],
    violations: &'a [String],
}

fn print_figures(f: &Figures<'_>) {
    let mut by_kind: BTreeMap<&str, usize> = BTreeMap::new();
    for o in f.outcomes {
        *by_kind.entry(o.kind.name()).or_default() += 1;
    }
    let faults: Vec<String> = by_kind.iter().map(|(k, n)| format!("{k} {n}")).collect();
    let profile = if f.lotline.components().any(|c| c.as_os_str() == "release") {
        "release"
    } else {
        "debug"
    };
    println!("\n## lotline-chaos figures\n");
    println!("| figure | value |\n|---|---|");
    println!(
        "| run | seed {}, {} s of load, {} writers, {} nodes, `lotline` {profile} build |",
        f.schedule.seed,
        f.load_time.as_secs(),
        usize::from(f.args.writers_per_org) * NODES,
        if f.args.loopback {
            "loopback"
        } else {
            "namespaced"
        }
    );
    println!(
        "| acknowledged attestations | {} ({:.1}/s) |",
        f.acked,
        f.acked as f64 / f.load_time.as_secs_f64()
    );
    println!(
        "| submits / in doubt (later committed, not) | {} / {} ({}, {}) |",
        f.load.ledger.submits.load(Ordering::Relaxed),
        f.in_doubt,
        f.check.in_doubt_committed,
        f.check.in_doubt_not_committed
    );
    println!(
        "| faults injected ({} planned) | {} ({}) |",
        f.schedule.steps.len(),
        f.outcomes.len(),
        faults.join(", ")
    );
    println!("| acknowledged writes lost | {} |", f.check.lost);
    println!("| forks | {} |", f.forks);
    println!(
        "| blocks compared across nodes / final height | {} / {} |",
        f.blocks_compared, f.check.final_height
    );
    println!(
        "| receipts verified per node (missing, not verifying) | {} |",
        f.check
            .per_node
            .iter()
            .enumerate()
            .map(|(i, (n, m, b))| format!("n{i} {n} ({m}, {b})"))
            .collect::<Vec<_>>()
            .join("; ")
    );
    println!(
        "| final check took | {:.1} s |",
        f.check.check_time.as_secs_f64()
    );
    println!("\n{}", report::recovery_table(f.outcomes));
    println!("| fault | hold | next commit | caught up | blocks during |\n|---|---|---|---|---|");
    for o in f.outcomes {
        let caught: Vec<String> = o
            .catch_up
            .iter()
            .map(|(n, d)| format!("n{n} {}", report::seconds(*d)))
            .collect();
        println!(
            "| {} | {} s | {} | {} | {} |",
            o.description,
            o.hold.as_secs(),
            report::seconds(o.progress),
            caught.join(", "),
            o.commits_during
        );
    }
    let refused = f.load.ledger.refused();
    if !refused.is_empty() {
        let lines: Vec<String> = refused.iter().map(|(k, n)| format!("{k}: {n}")).collect();
        println!(
            "\nsubmits not acknowledged, by reason: {}",
            lines.join(", ")
        );
    }
    println!("node shutdown (SIGTERM): {}", f.shutdown.join("; "));
    if f.violations.is_empty() {
        println!("\nPASS: no violation");
    } else {
        println!("\nFAIL: {} violation(s):", f.violations.len());
        for v in f.violations {
            println!("  - {v}");
        }
    }
}
