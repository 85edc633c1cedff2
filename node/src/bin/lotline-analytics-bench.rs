//! Analytics benchmark (not run in CI): builds a store of N committed events
//! from the supply-chain generator through the real commit path, projects
//! it to Parquet with the follower's catch-up, and then runs the same two
//! queries over the same files with DataFusion (in process, as
//! `POST /v1/sql` does) and with DuckDB (from PyPI, the venv of
//! `scripts/analytics-readers`), side by side in one run:
//! - full scan: defect rate by supplier lot and week (docs/analytics.md),
//! - selective: every measurement of one lot.
//!
//! Prints the projection rate against the store's commit rate in the same
//! run, Parquet bytes per event, and each query's median time in both
//! engines with the ratio DataFusion / DuckDB.
//!
//! Both engines read the same files with the same number of threads
//! (`--threads`, default 2: DataFusion's `target_partitions` and tokio
//! workers, DuckDB's `SET threads`), and both keep Parquet footers across
//! the runs of a query (DataFusion: the node's footer cache, `sql::Caches`;
//! DuckDB: `SET parquet_metadata_cache = true`). DataFusion runs with the
//! node's settings (`sql::Tuning::default`) unless `--pushdown`,
//! `--statistics`, `--view-types`, `--repartition-joins`, `--page-index`
//! or `--join-dynamic-filter` (true or false) say otherwise;
//! `--partitions P` sets DataFusion's `target_partitions` apart from the
//! threads. DuckDB's time of the full scan swings ~2x between processes at
//! the same load, so `--rounds N` alternates the two engines N times (a
//! fresh DuckDB process each round) and reports the median over rounds.
//!
//! A large store does not fit one sitting: `--phase build` makes the
//! store and the projection in `--dir` and records what it measured in
//! `--dir/bench.json`; `--phase query` reuses them (no rebuild) and runs
//! the queries; `--phase all` (the default) does both. `--phase project`
//! projects the kept store again (the Parquet layout changed, not the
//! chain). `--explain true` prints DataFusion's plan of each query with
//! its operators' metrics (what `EXPLAIN ANALYZE` shows) after the runs.
//!
//! ```text
//! cargo build --release -p lotline-node --bin lotline-analytics-bench
//! lotline-analytics-bench --events 100000 --dir /tmp/lab --runs 5
//! lotline-analytics-bench --events 1000000 --dir /tmp/lab1m --phase build
//! lotline-analytics-bench --dir /tmp/lab1m --phase query --runs 5
//! ```

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use lotline_analytics::follower::catch_up;
use lotline_analytics::sql::{self, Limits, Tuning, Visibility};
use lotline_analytics::{Catalog, Manifest, Projection, Table};
use lotline_node::analytics::StoreSource;
use lotline_node::bulk_load;
use lotline_sim::workload::Scale;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The full-scan query: the documented defect rate by supplier lot and week.
const FULL_SCAN: &str = "WITH supplier_lots AS (
  SELECT DISTINCT i.identifier AS lot
  FROM events e JOIN identifiers i ON i.attestation_id = e.attestation_id
  WHERE e.org = 'supplier' AND e.biz_step = 'commissioning'
),
inspections AS (
  SELECT i.identifier AS lot, e.event_time, e.inspection_result
  FROM events e JOIN identifiers i ON i.attestation_id = e.attestation_id
  WHERE e.quality_kind = 'inspection'
)
SELECT l.lot,
       date_trunc('week', x.event_time) AS week,
       count(*) AS inspections,
       sum(CASE WHEN x.inspection_result = 'fail' THEN 1 ELSE 0 END) AS failed,
       avg(CASE WHEN x.inspection_result = 'fail' THEN 1.0 ELSE 0.0 END) AS defect_rate
FROM inspections x JOIN supplier_lots l ON l.lot = x.lot
GROUP BY l.lot, date_trunc('week', x.event_time)
ORDER BY 2, 1";

/// DuckDB's side: the same views over the same files, each query timed
/// `runs` times after one warm-up; prints JSON.
const DUCKDB: &str = r#"
import json, sys, time, duckdb
root, runs, queries, threads = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3]), int(sys.argv[4])
con = duckdb.connect()
con.sql(f"SET threads = {threads}")
con.sql("SET parquet_metadata_cache = true")
con.sql("SET enable_progress_bar = false")
for t in ["events", "identifiers", "measurements", "sensor_reports", "lineage", "custody"]:
    con.sql(f"CREATE VIEW {t} AS SELECT * FROM read_parquet('{root}/{t}/*/*.parquet', hive_partitioning = true)")
out = {}
for name, text in queries.items():
    rows = len(con.sql(text).fetchall())
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        con.sql(text).fetchall()
        times.append(time.perf_counter() - t)
    times.sort()
    out[name] = {"rows": rows, "median_ms": times[len(times) // 2] * 1000}
print(json.dumps(out))
"#;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    Build,
    Project,
    Query,
    All,
}

struct Args {
    events: u64,
    dir: PathBuf,
    runs: usize,
    /// Times DataFusion's and DuckDB's runs alternate.
    rounds: usize,
    phase: Phase,
    tuning: Tuning,
    /// DataFusion's `target_partitions` when not `--threads` (the tokio
    /// workers and DuckDB's threads stay `--threads`).
    partitions: Option<usize>,
    explain: bool,
}

/// What `--phase build` measured, for `--phase query`.
#[derive(serde::Serialize, serde::Deserialize)]
struct Built {
    events: u64,
    commit_seconds: f64,
    projection_seconds: f64,
    /// The lot of the selective query.
    lot: String,
}

fn flag_bool(value: &str) -> Result<bool> {
    match value {
        "true" => Ok(true),
        "false" => Ok(false),
        other => bail!("{other}: use true or false"),
    }
}

fn args() -> Result<Args> {
    let mut out = Args {
        events: 100_000,
        dir: std::env::temp_dir().join("lotline-analytics-bench"),
        runs: 5,
        rounds: 1,
        phase: Phase::All,
        tuning: Tuning::default(),
        partitions: None,
        explain: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--events" => out.events = value.parse()?,
            "--dir" => out.dir = PathBuf::from(value),
            "--runs" => out.runs = value.parse()?,
            "--rounds" => out.rounds = value.parse()?,
            "--threads" => out.tuning.threads = value.parse()?,
            "--pushdown" => out.tuning.pushdown_filters = flag_bool(&value)?,
            "--statistics" => out.tuning.collect_statistics = flag_bool(&value)?,
            "--view-types" => out.tuning.view_types = flag_bool(&value)?,
            "--repartition-joins" => out.tuning.repartition_joins = flag_bool(&value)?,
            "--page-index" => out.tuning.page_index = flag_bool(&value)?,
            "--join-dynamic-filter" => out.tuning.join_dynamic_filter = flag_bool(&value)?,
            "--partitions" => out.partitions = Some(value.parse()?),
            "--explain" => out.explain = flag_bool(&value)?,
            "--phase" => {
                out.phase = match value.as_str() {
                    "build" => Phase::Build,
                    "project" => Phase::Project,
                    "query" => Phase::Query,
                    "all" => Phase::All,
                    other => bail!("--phase {other}: use build, project, query or all"),
                }
            }
            other => bail!(
                "unknown flag {other} (use --events N --dir D --runs R --rounds N --phase build|project|query|all --threads T --pushdown B --statistics B --view-types B --repartition-joins B --page-index B --join-dynamic-filter B --partitions P --explain B)"
            ),
        }
    }
    if out.runs == 0 || out.rounds == 0 || out.tuning.threads == 0 || out.partitions == Some(0) {
        bail!("--runs, --rounds, --threads and --partitions must be at least 1");
    }
    Ok(out)
}

fn main() -> Result<()> {
    let args = args()?;
    let venv = readers_venv()?;
    let dir = args.dir.join("analytics");
    let built = match args.phase {
        Phase::Query => read_built(&args.dir)?,
        Phase::Project => project(&args.dir, read_built(&args.dir)?)?,
        Phase::Build | Phase::All => build(&args)?,
    };
    let manifest = Manifest::load(&dir)?.context("no manifest.json: run --phase build first")?;
    let commit_rate = built.events as f64 / built.commit_seconds;
    let rate = built.events as f64 / built.projection_seconds;
    let rows: u64 = manifest.files.iter().map(|f| f.rows).sum();
    let bytes: u64 = manifest.files.iter().map(|f| f.bytes).sum();
    println!(
        "store: {} events committed in {:.1} s ({commit_rate:.0} events/s, signing included)",
        built.events, built.commit_seconds
    );
    println!(
        "projection: {} events ({rows} rows, {} files) in {:.1} s = {rate:.0} events/s, {:.1}x the commit rate above",
        built.events,
        manifest.files.len(),
        built.projection_seconds,
        rate / commit_rate
    );
    let partitions: std::collections::BTreeSet<(&str, &str)> = manifest
        .files
        .iter()
        .map(|f| (f.table.as_str(), f.month.as_str()))
        .collect();
    println!(
        "layout: {} files in {} (table, month) partitions; median file {} rows, {} bytes",
        manifest.files.len(),
        partitions.len(),
        median(manifest.files.iter().map(|f| f.rows)),
        median(manifest.files.iter().map(|f| f.bytes)),
    );
    println!(
        "parquet: {bytes} bytes = {:.1} bytes/event; {}",
        bytes as f64 / built.events as f64,
        Table::ALL
            .iter()
            .map(|t| format!("{} {} rows", t.name(), manifest.rows_of(*t)))
            .collect::<Vec<_>>()
            .join(", ")
    );
    if args.phase != Phase::Query {
        let daily = daily_partitions(&dir, &manifest)?;
        println!(
            "format 1 layout (one partition per table and UTC day) for the same rows: {daily} partitions, so at least {daily} files"
        );
    }
    if matches!(args.phase, Phase::Build | Phase::Project) {
        return Ok(());
    }

    let lot = &built.lot;
    let selective = format!(
        "SELECT name, value, uom, spec_min, spec_max, result, event_time FROM measurements WHERE subject = '{lot}' ORDER BY event_time, name"
    );
    let queries = [
        ("full-scan", FULL_SCAN.to_owned()),
        ("selective", selective),
    ];
    let workers = args.tuning.threads;
    let t = Tuning {
        threads: args.partitions.unwrap_or(workers),
        ..args.tuning
    };
    println!(
        "\nboth engines: {workers} threads, footers cached across runs; DataFusion target_partitions={} pushdown_filters={} collect_statistics={} view_types={} repartition_joins={} page_index={} join_dynamic_filter={}; median of {} runs after one warm-up, {} rounds (DataFusion, then DuckDB in a fresh process); load {}",
        t.threads,
        t.pushdown_filters,
        t.collect_statistics,
        t.view_types,
        t.repartition_joins,
        t.page_index,
        t.join_dynamic_filter,
        args.runs,
        args.rounds,
        load()
    );
    // Per query: each round's (DataFusion, DuckDB) median.
    let mut rounds: Vec<Vec<(f64, f64)>> = vec![Vec::new(); queries.len()];
    let mut answered = vec![0usize; queries.len()];
    for round in 1..=args.rounds {
        let datafusion = datafusion_times(&dir, &manifest, &queries, args.runs, t, workers)?;
        let duckdb = duckdb_times(&venv, &dir, &queries, args.runs, workers)?;
        for (q, ((name, _), (df_rows, df_ms))) in queries.iter().zip(&datafusion).enumerate() {
            let duck = &duckdb[*name];
            let duck_ms = duck["median_ms"].as_f64().context("duckdb time")?;
            let duck_rows = duck["rows"].as_u64().context("duckdb rows")?;
            if duck_rows != *df_rows as u64 {
                bail!("{name}: DataFusion answered {df_rows} rows, DuckDB {duck_rows}");
            }
            println!(
                "round {round} {name}: DataFusion {df_ms:.1} ms, DuckDB {duck_ms:.1} ms, {:.2}; load {}",
                df_ms / duck_ms,
                load()
            );
            rounds[q].push((*df_ms, duck_ms));
            answered[q] = *df_rows;
        }
    }
    println!(
        "\n| query | rows | DataFusion median ms (range) | DuckDB median ms (range) | ratio of medians | median of the rounds' ratios |"
    );
    println!("|---|---|---|---|---|---|");
    for (((name, _), times), rows) in queries.iter().zip(&rounds).zip(&answered) {
        let df = spread(times.iter().map(|x| x.0));
        let duck = spread(times.iter().map(|x| x.1));
        let ratio = spread(times.iter().map(|x| x.0 / x.1));
        println!(
            "| {name} | {rows} | {:.1} ({:.1}-{:.1}) | {:.1} ({:.1}-{:.1}) | {:.2} | {:.2} |",
            df.1,
            df.0,
            df.2,
            duck.1,
            duck.0,
            duck.2,
            df.1 / duck.1,
            ratio.1
        );
    }
    println!("load after: {}", load());
    if args.explain {
        explain(&dir, &manifest, &queries, t, workers)?;
    }
    Ok(())
}

/// What `--phase build` recorded in `dir`.
fn read_built(dir: &Path) -> Result<Built> {
    let path = dir.join("bench.json");
    let text = std::fs::read(&path)
        .with_context(|| format!("{}: run --phase build first", path.display()))?;
    Ok(serde_json::from_slice(&text)?)
}

/// Projects the store `--phase build` kept in `dir` again, from block 1,
/// into a new `analytics` folder; records the new projection time.
fn project(dir: &Path, built: Built) -> Result<Built> {
    let (store, _, genesis) = bulk_load::reopen_store(&dir.join("store"))
        .context("the store of --phase build (deleted?)")?;
    let out = dir.join("analytics");
    if out.exists() {
        std::fs::remove_dir_all(&out)?;
    }
    let seconds = catch_up_from_block_1(&out, std::sync::Arc::new(genesis), store.reader())?;
    let built = Built {
        projection_seconds: seconds,
        ..built
    };
    std::fs::write(dir.join("bench.json"), serde_json::to_vec(&built)?)?;
    Ok(built)
}

/// Projects the whole store into `out`; returns the seconds it took.
fn catch_up_from_block_1(
    out: &Path,
    genesis: std::sync::Arc<lotline_genesis::Genesis>,
    reader: lotline_node::store::StoreReader,
) -> Result<f64> {
    let started = Instant::now();
    let mut projection = Projection::open(out, genesis)?;
    catch_up(&mut projection, &StoreSource(reader), None).map_err(|e| anyhow::anyhow!("{e}"))?;
    projection.delete_retired(Duration::ZERO);
    Ok(started.elapsed().as_secs_f64())
}

/// Prints DataFusion's plan of each query with its operators' metrics.
fn explain(
    dir: &Path,
    manifest: &Manifest,
    queries: &[(&str, String)],
    tuning: Tuning,
    workers: usize,
) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()?;
    let catalog = Catalog::new(dir.to_owned(), manifest.clone());
    for (name, text) in queries {
        // Once first, so the profile is of a run with cached footers like
        // the timed ones (this catalog's caches start empty).
        runtime
            .block_on(sql::query_with(
                &catalog,
                &Visibility::All,
                text,
                BENCH_LIMITS,
                tuning,
            ))
            .map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
        let (_, plan) = runtime
            .block_on(sql::profile(
                &catalog,
                &Visibility::All,
                text,
                BENCH_LIMITS,
                tuning,
            ))
            .map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
        println!("\n{name}, DataFusion's plan with metrics (one run, footers cached):\n{plan}");
    }
    Ok(())
}

/// The (table, day) partitions of the rows: the file count of the daily
/// layout (format 1) before compaction could merge anything.
fn daily_partitions(dir: &Path, manifest: &Manifest) -> Result<u64> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let catalog = Catalog::new(dir.to_owned(), manifest.clone());
    let mut total = 0;
    for table in Table::ALL {
        let text = format!(
            "SELECT count(DISTINCT date_trunc('day', event_time)) AS n FROM {}",
            table.name()
        );
        let answer = runtime
            .block_on(sql::query_with(
                &catalog,
                &Visibility::All,
                &text,
                BENCH_LIMITS,
                Tuning::default(),
            ))
            .map_err(|e| anyhow::anyhow!("{text}: {e}"))?;
        let n = answer
            .batches
            .first()
            .and_then(|b| {
                b.column(0)
                    .as_any()
                    .downcast_ref::<lotline_analytics::arrow::array::Int64Array>()
                    .map(|a| a.value(0))
            })
            .context("a count")?;
        total += u64::try_from(n)?;
    }
    Ok(total)
}

/// The machine's load average (1, 5, 15 minutes), printed with the figures.
fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

/// (min, median, max) of `values`.
fn spread(values: impl Iterator<Item = f64>) -> (f64, f64, f64) {
    let mut values: Vec<f64> = values.collect();
    values.sort_by(f64::total_cmp);
    match (values.first(), values.get(values.len() / 2), values.last()) {
        (Some(&min), Some(&median), Some(&max)) => (min, median, max),
        _ => (f64::NAN, f64::NAN, f64::NAN),
    }
}

fn median(values: impl Iterator<Item = u64>) -> u64 {
    let mut values: Vec<u64> = values.collect();
    values.sort_unstable();
    values.get(values.len() / 2).copied().unwrap_or(0)
}

/// Builds the store through the commit path and projects it; records the
/// figures in `bench.json` beside them.
fn build(args: &Args) -> Result<Built> {
    if args.dir.exists() {
        std::fs::remove_dir_all(&args.dir)?;
    }
    std::fs::create_dir_all(&args.dir)?;
    println!("# lotline-analytics-bench: {} events", args.events);
    let loaded = bulk_load::load(
        &args.dir.join("store"),
        Scale::for_events(args.events),
        1_000,
        |_, _| {},
    )?;
    let lot = loaded.summary.wide_raw_lot.clone();
    let genesis = std::sync::Arc::new(loaded.genesis);
    let projection_seconds =
        catch_up_from_block_1(&args.dir.join("analytics"), genesis, loaded.store.reader())?;
    let built = Built {
        events: loaded.events,
        commit_seconds: loaded.seconds,
        projection_seconds,
        lot,
    };
    std::fs::write(args.dir.join("bench.json"), serde_json::to_vec(&built)?)?;
    Ok(built)
}

/// The node's limits but for time and memory: a full scan of a 1M-event
/// store may take longer than an API caller's 30 s on a loaded machine, and
/// DuckDB runs without a memory limit of ours.
const BENCH_LIMITS: Limits = Limits {
    time_max: Duration::from_secs(600),
    memory_bytes_max: 4 << 30,
    scan_bytes_max: 8 << 30,
    rows_max: 100_000,
    answer_bytes_max: 128 << 20,
};

/// Median milliseconds and rows of each query in DataFusion, after one
/// warm-up run, with [`BENCH_LIMITS`].
fn datafusion_times(
    dir: &Path,
    manifest: &Manifest,
    queries: &[(&str, String)],
    runs: usize,
    tuning: Tuning,
    workers: usize,
) -> Result<Vec<(usize, f64)>> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()?;
    let catalog = Catalog::new(dir.to_owned(), manifest.clone());
    let mut out = Vec::new();
    for (name, text) in queries {
        let run = || {
            runtime.block_on(sql::query_with(
                &catalog,
                &Visibility::All,
                text,
                BENCH_LIMITS,
                tuning,
            ))
        };
        let rows = run().map_err(|e| anyhow::anyhow!("{name}: {e}"))?.rows;
        let mut times = Vec::with_capacity(runs);
        for _ in 0..runs {
            let t = Instant::now();
            run().map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
            times.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        times.sort_by(f64::total_cmp);
        out.push((rows, times[times.len() / 2]));
    }
    Ok(out)
}

fn duckdb_times(
    venv: &Path,
    dir: &Path,
    queries: &[(&str, String)],
    runs: usize,
    threads: usize,
) -> Result<serde_json::Value> {
    let map: serde_json::Map<String, serde_json::Value> = queries
        .iter()
        .map(|(n, t)| ((*n).to_owned(), serde_json::Value::from(t.clone())))
        .collect();
    let out = std::process::Command::new(venv.join("bin/python"))
        .args(["-c", DUCKDB])
        .arg(dir)
        .arg(runs.to_string())
        .arg(serde_json::Value::Object(map).to_string())
        .arg(threads.to_string())
        .output()?;
    if !out.status.success() {
        bail!("duckdb: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(serde_json::from_slice(&out.stdout)?)
}

/// The venv `scripts/analytics-readers` makes (or `$LOTLINE_ANALYTICS_VENV`).
fn readers_venv() -> Result<PathBuf> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/analytics-readers");
    let out = std::process::Command::new(&script)
        .output()
        .with_context(|| format!("running {}", script.display()))?;
    if !out.status.success() {
        bail!(
            "{}: {}",
            script.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(PathBuf::from(String::from_utf8(out.stdout)?.trim()))
}
