//! Restart benchmark: how long a node with a long chain takes to open.
//!
//! Two modes:
//! - `--mode node` (default): builds a full store of N events with the real
//!   commit path (`bulk_load::load`: block log, sled records, every index),
//!   then starts the real `Node` from its config and times until the API
//!   answers `GET /health`, several times. Then it deletes the block log's
//!   index and times one more start: the full verify every start used to do.
//! - `--mode log`: builds the block log only (`bulk_load::load_log`, every
//!   block checked and fdatasync'ed), for chain lengths a full load would
//!   take hours to build, and times `BlockLog::open` with its index and
//!   without (full verify).
//!
//! ```text
//! cargo build --release -p lotline-node --bin lotline-restart-bench
//! flock /work/coord/release.lock target/release/lotline-restart-bench --mode node --events 100000 --dir /tmp/lrb
//! flock /work/coord/release.lock target/release/lotline-restart-bench --mode log --events 1000000 --dir /tmp/lrb
//! ```

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use lotline_genesis::Genesis;
use lotline_node::store::{BlockLog, Store};
use lotline_node::{Node, NodeConfig, bulk_load};
use lotline_sim::workload::Scale;

/// The same allocator as the `lotline` binary, so figures match the node.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Node,
    Log,
}

struct Args {
    mode: Mode,
    events: u64,
    dir: PathBuf,
    runs: usize,
    reuse: bool,
    block: usize,
}

fn args() -> Result<Args> {
    let mut out = Args {
        mode: Mode::Node,
        events: 100_000,
        dir: std::env::temp_dir().join("lotline-restart-bench"),
        runs: 5,
        reuse: false,
        block: 1_000,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--mode" => {
                out.mode = match value.as_str() {
                    "node" => Mode::Node,
                    "log" => Mode::Log,
                    other => bail!("--mode is node or log, not {other:?}"),
                }
            }
            "--events" => out.events = value.parse()?,
            "--dir" => out.dir = PathBuf::from(value),
            "--runs" => out.runs = value.parse()?,
            "--reuse" => out.reuse = value.parse()?,
            "--block" => out.block = value.parse()?,
            other => bail!(
                "unknown flag {other} (use --mode node|log --events N --dir D --runs R --reuse true|false --block ATTESTATIONS)"
            ),
        }
    }
    Ok(out)
}

fn main() -> Result<()> {
    let args = args()?;
    let mode = match args.mode {
        Mode::Node => "node",
        Mode::Log => "log",
    };
    let dir = args.dir.join(format!("{mode}-{}", args.events));
    if !(args.reuse && dir.exists()) {
        build(&dir, &args)?;
    }
    match args.mode {
        Mode::Node => time_node(&dir, args.runs),
        Mode::Log => time_log(&dir, args.runs),
    }
}

fn build(dir: &Path, args: &Args) -> Result<()> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).with_context(|| format!("clearing {}", dir.display()))?;
    }
    std::fs::create_dir_all(dir)?;
    let scale = Scale::for_events(args.events);
    let mut next_report = 0.0;
    let progress = |done: u64, seconds: f64| {
        if seconds >= next_report {
            eprintln!("  {done} events in {seconds:.0} s");
            next_report = seconds + 30.0;
        }
    };
    let started = Instant::now();
    let events = match args.mode {
        Mode::Node => bulk_load::load(dir, scale, args.block, progress)?.events,
        Mode::Log => bulk_load::load_log(dir, scale, args.block, progress)?.0,
    };
    println!(
        "built: {events} events in blocks of {} in {:.0} s",
        args.block,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The consortium files `bulk_load` wrote under `dir`.
fn node_config(dir: &Path) -> Result<NodeConfig> {
    let path = dir
        .join("consortium")
        .join("nodes")
        .join("manufacturer.toml");
    let mut config = NodeConfig::load(&path)?;
    config.listen = ([127, 0, 0, 1], 0).into();
    Ok(config)
}

fn time_node(dir: &Path, runs: usize) -> Result<()> {
    let config = node_config(dir)?;
    let runtime = tokio::runtime::Runtime::new()?;
    let index = config.data_dir.join("blocks.index");
    let mut up = Vec::new();
    for run in 0..=runs {
        // The last run starts without the block log's index: the full
        // verify every start did before the index existed.
        let full = run == runs;
        if full {
            std::fs::remove_file(&index).context("removing the block index")?;
        }
        // The store alone first (the part that grew with the chain), then
        // the whole node.
        let started = Instant::now();
        let genesis = Genesis::load(&config.genesis)?;
        drop(Store::open(&config.data_dir, genesis.validator_set())?);
        let store_seconds = started.elapsed().as_secs_f64();
        if full {
            // Opening rebuilt it; remove it again for the node's start.
            std::fs::remove_file(&index).context("removing the block index")?;
        }
        let (seconds, report, height) = runtime.block_on(async {
            let started = Instant::now();
            let node = Node::start(&config).await?;
            wait_for_health(&node.url()).await?;
            let seconds = started.elapsed().as_secs_f64();
            let report = node.open_report.clone();
            let height = node.shared.head().height;
            node.shutdown().await;
            anyhow::Ok((seconds, report, height))
        })?;
        println!(
            "start {}: API up in {:.3} s, Store::open alone {store_seconds:.3} s (height {height}, blocks verified at open {}, index rebuilt {}, blocks re-applied to sled {})",
            if full {
                "without index".into()
            } else {
                format!("{}", run + 1)
            },
            seconds,
            report.verified_blocks,
            report.log_index_rebuilt,
            report.reapplied_blocks,
        );
        if !full {
            up.push(seconds);
        }
    }
    up.sort_by(f64::total_cmp);
    if let Some(median) = up.get(up.len() / 2) {
        println!(
            "API up, median of {} starts with the index: {median:.3} s",
            up.len()
        );
    }
    Ok(())
}

async fn wait_for_health(url: &str) -> Result<()> {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        if let Ok(response) = client.get(format!("{url}/health")).send().await
            && response.status().is_success()
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("the node did not answer /health");
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

fn time_log(dir: &Path, runs: usize) -> Result<()> {
    let config = node_config(dir)?;
    let genesis = Genesis::load(&config.genesis)?;
    let set = genesis.validator_set();
    let path = config.data_dir.join("blocks.log");
    let bytes = std::fs::metadata(&path)?.len();
    let mut opens = Vec::new();
    for _ in 0..runs {
        let started = Instant::now();
        let (log, report) = BlockLog::open(&path, &set)?;
        let seconds = started.elapsed().as_secs_f64();
        println!(
            "open with index: {seconds:.3} s (height {}, {} attestations, {bytes} bytes, blocks verified {})",
            log.height(),
            log.attestations(),
            report.verified_blocks
        );
        opens.push(seconds);
    }
    std::fs::remove_file(path.with_extension("index"))?;
    let started = Instant::now();
    let (log, report) = BlockLog::open(&path, &set)?;
    println!(
        "open without index (full verify, the old cost): {:.3} s (height {}, blocks verified {})",
        started.elapsed().as_secs_f64(),
        log.height(),
        report.verified_blocks
    );
    opens.sort_by(f64::total_cmp);
    if let Some(median) = opens.get(opens.len() / 2) {
        println!("BlockLog open, median of {runs} with the index: {median:.3} s");
    }
    Ok(())
}
