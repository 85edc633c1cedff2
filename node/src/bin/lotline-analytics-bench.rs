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
//! ```text
//! cargo build --release -p lotline-node --bin lotline-analytics-bench
//! flock /work/coord/release.lock target/release/lotline-analytics-bench --events 100000
//! ```

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use lotline_analytics::follower::catch_up;
use lotline_analytics::sql::{self, Limits, Visibility};
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
root, runs, queries = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3])
con = duckdb.connect()
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

struct Args {
    events: u64,
    dir: PathBuf,
    runs: usize,
}

fn args() -> Result<Args> {
    let mut out = Args {
        events: 100_000,
        dir: std::env::temp_dir().join("lotline-analytics-bench"),
        runs: 5,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--events" => out.events = value.parse()?,
            "--dir" => out.dir = PathBuf::from(value),
            "--runs" => out.runs = value.parse()?,
            other => bail!("unknown flag {other} (use --events N --dir D --runs R)"),
        }
    }
    if out.runs == 0 {
        bail!("--runs must be at least 1");
    }
    Ok(out)
}

fn main() -> Result<()> {
    let args = args()?;
    let venv = readers_venv()?;
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
    let commit_rate = loaded.events as f64 / loaded.seconds;
    println!(
        "store: {} events committed in {:.1} s ({commit_rate:.0} events/s, signing included)",
        loaded.events, loaded.seconds
    );
    let lot = loaded.summary.wide_raw_lot.clone();
    let genesis = std::sync::Arc::new(loaded.genesis);
    let reader = loaded.store.reader();

    let dir = args.dir.join("analytics");
    let started = Instant::now();
    let mut projection = Projection::open(&dir, genesis)?;
    catch_up(&mut projection, &StoreSource(reader), None).map_err(|e| anyhow::anyhow!("{e}"))?;
    projection.delete_retired(Duration::ZERO);
    let seconds = started.elapsed().as_secs_f64();
    let manifest = projection.manifest().clone();
    let rows: u64 = manifest.files.iter().map(|f| f.rows).sum();
    let bytes: u64 = manifest.files.iter().map(|f| f.bytes).sum();
    let rate = loaded.events as f64 / seconds;
    println!(
        "projection: {} events ({rows} rows, {} files) in {seconds:.1} s = {rate:.0} events/s, {:.1}x the commit rate above",
        loaded.events,
        manifest.files.len(),
        rate / commit_rate
    );
    println!(
        "parquet: {bytes} bytes = {:.1} bytes/event; {}",
        bytes as f64 / loaded.events as f64,
        Table::ALL
            .iter()
            .map(|t| format!("{} {} rows", t.name(), manifest.rows_of(*t)))
            .collect::<Vec<_>>()
            .join(", ")
    );

    let selective = format!(
        "SELECT name, value, uom, spec_min, spec_max, result, event_time FROM measurements WHERE subject = '{lot}' ORDER BY event_time, name"
    );
    let queries = [
        ("full-scan", FULL_SCAN.to_owned()),
        ("selective", selective),
    ];
    let datafusion = datafusion_times(&dir, &manifest, &queries, args.runs)?;
    let duckdb = duckdb_times(&venv, &dir, &queries, args.runs)?;
    println!("\n| query | rows | DataFusion median ms | DuckDB median ms | DataFusion / DuckDB |");
    println!("|---|---|---|---|---|");
    for ((name, _), (df_rows, df_ms)) in queries.iter().zip(&datafusion) {
        let duck = &duckdb[*name];
        let duck_ms = duck["median_ms"].as_f64().context("duckdb time")?;
        let duck_rows = duck["rows"].as_u64().context("duckdb rows")?;
        if duck_rows != *df_rows as u64 {
            bail!("{name}: DataFusion answered {df_rows} rows, DuckDB {duck_rows}");
        }
        println!(
            "| {name} | {df_rows} | {df_ms:.1} | {duck_ms:.1} | {:.2} |",
            df_ms / duck_ms
        );
    }
    Ok(())
}

/// Median milliseconds and rows of each query in DataFusion, after one
/// warm-up run, with the node's limits.
fn datafusion_times(
    dir: &Path,
    manifest: &Manifest,
    queries: &[(&str, String)],
    runs: usize,
) -> Result<Vec<(usize, f64)>> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let catalog = Catalog::new(dir.to_owned(), manifest.clone());
    let mut out = Vec::new();
    for (name, text) in queries {
        let run = || {
            runtime.block_on(sql::query(
                &catalog,
                &Visibility::All,
                text,
                Limits::default(),
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
