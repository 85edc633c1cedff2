//! Traceability benchmark: builds stores of N committed events from the
//! supply-chain generator (real signatures, real blocks and certificates,
//! the real store commit path with every index), then measures, as server
//! time on the store:
//! - backward trace of the generator's deepest finished serial,
//! - recall scope of the raw-material lot that reached the most units,
//! - the EPCIS query `MATCH_anyEPC` on one lot (its class form,
//!   `MATCH_anyEPCClass`) and on one serial,
//!
//! and prints how each grows from the smallest to the largest store next to
//! the answer size, and against this machine's sled prefix-scan cost (the
//! unit of work every walk is made of).
//!
//! ```text
//! cargo build --release -p lotline-node --bin lotline-trace-bench
//! target/release/lotline-trace-bench --events 100000,1000000 --dir /tmp/lotline-trace-bench
//! # measure stores built by an earlier run again, without rebuilding them:
//! target/release/lotline-trace-bench --events 1000000 --dir /tmp/lotline-trace-bench --reuse true
//! # also print the bytes per event of every sled keyspace and of each file:
//! target/release/lotline-trace-bench --events 100000 --dir /tmp/lotline-trace-bench --stats true
//! # 1M then 10M in one run, deleting each store once measured (a 10M store
//! # takes tens of GB; two at once may not fit):
//! target/release/lotline-trace-bench --events 1000000,10000000 --dir /tmp/ltb --stats true --keep false
//! # the story's item serials scattered over twelve digits (as many pharma
//! # serials are) instead of issued in sequence:
//! target/release/lotline-trace-bench --events 1000000 --serials randomised --keep false
//! ```

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use lotline_core::trace::{Direction, NodeKind, RecallScopeRequest};
use lotline_node::bulk_load;
use lotline_node::epcis::query::Query;
use lotline_node::store::StoreReader;
use lotline_node::trace::{self, SeeAll, TraceRequest};
use lotline_sim::workload::{Scale, Serials, WorkloadSummary};

/// The same allocator as the `lotline` binary, so figures match the node.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Attestations per block while loading: the genesis default
/// `block_max_attestations`, the size of a node's blocks under load. (sled
/// keeps every node version a batch replaces until the batch ends, so the
/// loader's memory grows with the block; see docs/performance.md.)
const BLOCK_ATTESTATIONS: usize = 1_000;

struct Args {
    events: Vec<u64>,
    dir: PathBuf,
    iterations: usize,
    reuse: bool,
    block: usize,
    stats: bool,
    /// Whether each store stays on disk after it is measured.
    keep: bool,
    serials: Serials,
}

const USAGE: &str = "usage: lotline-trace-bench [--events N[,N..]] [--dir D] [--iterations I] [--reuse true|false] [--block ATTESTATIONS] [--stats true|false] [--keep true|false] [--serials sequential|randomised]";

fn args() -> Result<Args> {
    let mut out = Args {
        events: vec![100_000, 1_000_000],
        dir: std::env::temp_dir().join("lotline-trace-bench"),
        iterations: 200,
        reuse: false,
        block: BLOCK_ATTESTATIONS,
        stats: false,
        keep: true,
        serials: Serials::Sequential,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--help" || flag == "-h" {
            println!("{USAGE}");
            std::process::exit(0);
        }
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--events" => {
                out.events = value
                    .split(',')
                    .map(|v| v.trim().parse().with_context(|| format!("bad count {v:?}")))
                    .collect::<Result<_>>()?
            }
            "--dir" => out.dir = PathBuf::from(value),
            "--iterations" => out.iterations = value.parse()?,
            "--reuse" => out.reuse = value.parse()?,
            "--block" => out.block = value.parse()?,
            "--stats" => out.stats = value.parse()?,
            "--keep" => out.keep = value.parse()?,
            "--serials" => {
                out.serials = match value.as_str() {
                    "sequential" => Serials::Sequential,
                    "randomised" => Serials::Randomised,
                    other => bail!("--serials takes sequential or randomised, not {other:?}"),
                }
            }
            other => bail!("unknown flag {other}\n{USAGE}"),
        }
    }
    Ok(out)
}

fn main() -> Result<()> {
    let args = args()?;
    println!("# lotline-trace-bench: stores of {:?} events", args.events);
    let mut rows = Vec::new();
    for &events in &args.events {
        let dir = args.dir.join(format!("store-{events}"));
        let (reader, summary, load) = if args.reuse && dir.exists() {
            reopen(&dir, scale(events, args.serials))?
        } else {
            build(&dir, scale(events, args.serials), args.block)?
        };
        let committed = load.events;
        let row = measure(&reader, &summary, args.iterations, events, load)?;
        row.print();
        if args.stats {
            print_storage(&reader, &dir, committed)?;
        }
        if !args.keep {
            drop(reader);
            std::fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
        }
        rows.push(row);
    }
    if let (Some(first), Some(last)) = (rows.first(), rows.last())
        && rows.len() > 1
    {
        println!(
            "\n## growth from {} to {} events",
            first.events, last.events
        );
        let growth = |a: f64, b: f64| if a > 0.0 { b / a } else { f64::NAN };
        println!(
            "store x{:.1}; backward trace p99 x{:.2} (answer x{:.2}); recall scope x{:.2} (answer x{:.2}); MATCH_anyEPCClass p99 x{:.2} (answer x{:.2}); attestation by id p99 x{:.2}; load rate x{:.2}",
            growth(first.events as f64, last.events as f64),
            growth(first.trace_p99_ms, last.trace_p99_ms),
            growth(first.trace_nodes as f64, last.trace_nodes as f64),
            growth(first.scope_ms, last.scope_ms),
            growth(first.scope_units as f64, last.scope_units as f64),
            growth(first.query_p99_ms, last.query_p99_ms),
            growth(first.query_events as f64, last.query_events as f64),
            growth(first.by_id_p99_ms, last.by_id_p99_ms),
            growth(first.load_per_s, last.load_per_s),
        );
    }
    Ok(())
}

struct Load {
    /// Events in the store (the generator's count is close to, not exactly, the request).
    events: u64,
    seconds: f64,
    sign_seconds: f64,
}

/// The benchmark story of at least `events` events, its serials issued as
/// `serials` says.
fn scale(events: u64, serials: Serials) -> Scale {
    Scale {
        serials,
        ..Scale::for_events(events)
    }
}

/// Builds a fresh store of the story of `scale` in `dir` with the real
/// commit path ([`bulk_load`]), then flushes sled so queries meet a settled
/// store.
fn build(dir: &Path, scale: Scale, block: usize) -> Result<(StoreReader, WorkloadSummary, Load)> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).with_context(|| format!("clearing {}", dir.display()))?;
    }
    std::fs::create_dir_all(dir)?;
    let mut next_report = 100_000;
    let loaded = bulk_load::load(dir, scale, block, |done, seconds| {
        if done >= next_report {
            eprintln!("  {done} events committed ({:.0}/s)", done as f64 / seconds);
            next_report += 100_000;
        }
    })?;
    let load = Load {
        events: loaded.events,
        seconds: loaded.seconds,
        sign_seconds: loaded.sign_seconds,
    };
    let flushing = Instant::now();
    let flushed = loaded.store.reader().flush()?;
    println!(
        "\n## store of {} events ({} blocks of up to {block}): loaded in {:.1} s ({:.0} events/s; signing {:.1} s, on a thread of its own); sled flushed {:.0} MB more in {:.1} s; peak memory {}",
        loaded.events,
        loaded.store.height(),
        load.seconds,
        loaded.events as f64 / load.seconds,
        load.sign_seconds,
        flushed as f64 / 1e6,
        flushing.elapsed().as_secs_f64(),
        peak_memory()
    );
    Ok((loaded.store.reader(), loaded.summary, load))
}

/// The process's peak resident memory so far (Linux `VmHWM`).
fn peak_memory() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with("VmHWM:"))
                .map(|line| line.trim_start_matches("VmHWM:").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

/// Opens a store an earlier run built in `dir`.
fn reopen(dir: &Path, scale: Scale) -> Result<(StoreReader, WorkloadSummary, Load)> {
    // The open alone, timed (the workload summary below is generated again).
    let opening = Instant::now();
    let (store, report, _) = bulk_load::reopen_store(dir)?;
    let opened = opening.elapsed().as_secs_f64();
    drop(store);
    let (store, _, summary) = bulk_load::reopen(dir, scale)?;
    println!(
        "\n## store of {} blocks, reopened: Store::open {opened:.2} s (sled rebuilt: {}; {} blocks reapplied)",
        report.height, report.sled_rebuilt, report.reapplied_blocks
    );
    let load = Load {
        events: store.attestations(),
        seconds: f64::NAN,
        sign_seconds: f64::NAN,
    };
    Ok((store.reader(), summary, load))
}

/// Bytes per event of every sled keyspace (logical: keys and values as
/// written) and of each store file on disk.
fn print_storage(reader: &StoreReader, dir: &Path, events: u64) -> Result<()> {
    use lotline_node::store::stats;
    let started = Instant::now();
    let spaces = reader.keyspaces()?;
    let per = |n: u64| n as f64 / events.max(1) as f64;
    println!(
        "\n## storage of {events} events, per event (keyspace scan {:.1} s)",
        started.elapsed().as_secs_f64()
    );
    println!("| keyspace | keys | key bytes | value bytes | bytes |");
    println!("|---|---|---|---|---|");
    let mut total = stats::Keyspace::default();
    for space in &spaces {
        println!(
            "| `{}` {} | {:.2} | {:.0} | {:.0} | {:.0} |",
            char::from(space.prefix),
            space.name(),
            per(space.keys),
            per(space.key_bytes),
            per(space.value_bytes),
            per(space.bytes())
        );
        total.keys += space.keys;
        total.key_bytes += space.key_bytes;
        total.value_bytes += space.value_bytes;
    }
    println!(
        "| sled, logical | {:.2} | {:.0} | {:.0} | {:.0} |",
        per(total.keys),
        per(total.key_bytes),
        per(total.value_bytes),
        per(total.bytes())
    );
    let index = bulk_load::index_path(dir)?;
    let data = index.parent().context("the index has a data directory")?;
    let sled = stats::disk_bytes(&index)?;
    let log = stats::disk_bytes(&data.join("blocks.log"))?;
    let log_index = stats::disk_bytes(&data.join("blocks.index"))?;
    let all = stats::disk_bytes(data)?;
    let show = |what: &str, bytes: stats::DiskBytes| {
        println!(
            "{what}: {:.0} B/event on disk ({:.0} allocated), {:.1} MB",
            per(bytes.apparent),
            per(bytes.allocated),
            bytes.apparent as f64 / 1e6
        )
    };
    show("sled", sled);
    println!(
        "sled on disk / logical: x{:.2}",
        sled.apparent as f64 / total.bytes().max(1) as f64
    );
    show("block log", log);
    show("block index", log_index);
    show("store total", all);
    Ok(())
}

struct Row {
    events: u64,
    trace_p50_ms: f64,
    trace_p99_ms: f64,
    trace_nodes: usize,
    trace_levels: usize,
    scope_ms: f64,
    scope_units: u64,
    scope_items: u64,
    query_p50_ms: f64,
    query_p99_ms: f64,
    query_events: usize,
    serial_p99_ms: f64,
    serial_events: usize,
    by_id_p50_ms: f64,
    by_id_p99_ms: f64,
    scan_us: f64,
    load_per_s: f64,
}

impl Row {
    fn print(&self) {
        println!(
            "backward trace: p50 {:.2} ms, p99 {:.2} ms ({} nodes, {} transformation levels) = {:.0} prefix scans' worth",
            self.trace_p50_ms,
            self.trace_p99_ms,
            self.trace_nodes,
            self.trace_levels,
            self.trace_p99_ms * 1000.0 / self.scan_us
        );
        println!(
            "recall scope: {:.0} ms for {} units ({} serialised items) = {:.2} µs/unit, {:.1}x one prefix scan per unit",
            self.scope_ms,
            self.scope_units,
            self.scope_items,
            self.scope_ms * 1000.0 / self.scope_units.max(1) as f64,
            self.scope_ms * 1000.0 / self.scope_units.max(1) as f64 / self.scan_us
        );
        println!(
            "MATCH_anyEPCClass on one lot: p50 {:.2} ms, p99 {:.2} ms ({} events)",
            self.query_p50_ms, self.query_p99_ms, self.query_events
        );
        println!(
            "MATCH_anyEPC on one serial: p99 {:.2} ms ({} events)",
            self.serial_p99_ms, self.serial_events
        );
        println!(
            "attestation by id (GET /v1/attestations/{{id}}): p50 {:.3} ms, p99 {:.3} ms",
            self.by_id_p50_ms, self.by_id_p99_ms
        );
        println!(
            "machine: one sled prefix scan (seek + first key) {:.2} µs on this store; load {:.0} events/s",
            self.scan_us, self.load_per_s
        );
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn timed<T>(iterations: usize, mut f: impl FnMut() -> Result<T>) -> Result<(Vec<f64>, T)> {
    let mut samples = Vec::with_capacity(iterations);
    let mut last = None;
    for _ in 0..iterations.max(1) {
        let t = Instant::now();
        let out = f()?;
        samples.push(t.elapsed().as_secs_f64() * 1000.0);
        last = Some(out);
    }
    samples.sort_by(f64::total_cmp);
    let last = last.context("no iteration ran")?;
    Ok((samples, last))
}

fn measure(
    reader: &StoreReader,
    summary: &WorkloadSummary,
    iterations: usize,
    events: u64,
    load: Load,
) -> Result<Row> {
    // The unit of work: one sled prefix scan that finds a key.
    let (scan_samples, _) = timed(iterations * 10, || {
        Ok(reader.edges(
            &summary.deep_serial,
            lotline_node::store::lineage::End::To,
            None,
            &lotline_node::store::lineage::Origins::default(),
        )?)
    })?;
    let scan_us = percentile(&scan_samples, 0.5) * 1000.0;

    let request = TraceRequest {
        root: summary.deep_serial.clone(),
        direction: Direction::Backward,
        depth: None,
        proofs: false,
    };
    let (trace_samples, trace) =
        timed(iterations, || Ok(trace::trace(reader, &request, &SeeAll)?))?;
    if !trace.nodes.iter().any(|n| n.id == summary.deep_raw_lot) {
        bail!(
            "the backward trace of {} misses {}",
            summary.deep_serial,
            summary.deep_raw_lot
        );
    }
    let trace_levels = longest_transformation_path(&trace);

    let scope_request = RecallScopeRequest {
        suspects: vec![summary.wide_raw_lot.clone()],
        from: None,
        until: None,
    };
    let (scope_samples, scope) = timed(5, || {
        Ok(trace::recall_scope(reader, &scope_request, &SeeAll)?)
    })?;
    let scope_items = scope
        .units
        .iter()
        .filter(|u| u.kind == NodeKind::Item)
        .count() as u64;

    let (query_samples, query_events) = timed(iterations, || {
        query_any_epc(reader, "MATCH_anyEPCClass", &summary.deep_raw_lot)
    })?;
    let (serial_samples, serial_events) = timed(iterations, || {
        query_any_epc(reader, "MATCH_anyEPC", &summary.deep_serial)
    })?;

    // Ids spread over the whole chain, read back one at a time.
    let applied = reader.applied_height()?;
    let mut ids = Vec::with_capacity(iterations);
    for i in 0..iterations.max(1) as u64 {
        let height = 1 + i.wrapping_mul(7919) % applied.max(1);
        let Some(block) = reader.block(height)? else {
            continue;
        };
        if !block.ids.is_empty() {
            let at = (i as usize).wrapping_mul(104_729) % block.ids.len();
            ids.push(block.ids[at]);
        }
    }
    let mut next = ids.iter().cycle();
    let (by_id_samples, _) = timed(ids.len(), || {
        let id = next.next().context("no committed id to read")?;
        reader
            .attestation(id)?
            .with_context(|| format!("committed attestation {id} not found by id"))
    })?;

    Ok(Row {
        events,
        trace_p50_ms: percentile(&trace_samples, 0.5),
        trace_p99_ms: percentile(&trace_samples, 0.99),
        trace_nodes: trace.nodes.len(),
        trace_levels,
        scope_ms: percentile(&scope_samples, 0.5),
        scope_units: scope.totals.units,
        scope_items,
        query_p50_ms: percentile(&query_samples, 0.5),
        query_p99_ms: percentile(&query_samples, 0.99),
        query_events,
        serial_p99_ms: percentile(&serial_samples, 0.99),
        serial_events,
        by_id_p50_ms: percentile(&by_id_samples, 0.5),
        by_id_p99_ms: percentile(&by_id_samples, 0.99),
        scan_us,
        load_per_s: events as f64 / load.seconds,
    })
}

/// Transformation edges on the longest path from the trace's root.
fn longest_transformation_path(trace: &lotline_core::trace::Trace) -> usize {
    use std::collections::HashMap;
    let mut best: HashMap<&str, usize> = HashMap::new();
    // Nodes come in breadth-first order; relax edges until stable (DAG).
    for _ in 0..trace.nodes.len().min(128) {
        let mut changed = false;
        for edge in &trace.edges {
            let here = best.get(edge.to.as_str()).copied().unwrap_or(0);
            let step = usize::from(edge.kind == lotline_core::lineage::EdgeKind::TransformedInto);
            let there = best.entry(edge.from.as_str()).or_insert(0);
            if here + step > *there {
                *there = here + step;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    best.values().copied().max().unwrap_or(0)
}

/// `MATCH_anyEPC` (a serial) or `MATCH_anyEPCClass` (a lot: a class-level
/// identifier, which EPCIS matches with the class form) through the EPCIS
/// query engine: parse, plan, index walk, event decode and filter; the first
/// page.
fn query_any_epc(reader: &StoreReader, parameter: &str, id: &str) -> Result<usize> {
    let params = [(parameter.to_owned(), id.to_owned())];
    let query = Query::parse(&params).map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let page = lotline_node::epcis::query::run(reader, &query, &|_| true)?;
    Ok(page.events.len())
}
