//! Quality benchmark: builds a store from the planted story (real
//! signatures, blocks and the real commit path with every index), then
//! measures, as server time on the store:
//! - root cause (`POST /v1/root-cause`) for N bad units (default 1,000):
//!   failures of the planted lot's units, and units the planted rough
//!   carrier damaged (spread over the story),
//! - the control chart (`GET /v1/spc/...`) of the end-of-line test of one
//!   product (one measurement per unit: 100k or more at the default size),
//! - the alert follower's work on a committed block (`alerts::detect` on
//!   the last blocks of the store, as `follower.rs` judges them, its chart
//!   states built by judging the block before them, as after a start): the
//!   part of the commit-to-alert latency the node computes; the alert's own
//!   signing and commit add one block interval,
//!
//! and prints each against a bound measured in the same run on the same
//! store: the prefix scans the answer cannot do without (the products'
//! serialisations for a root cause, the product's facts for a chart).
//!
//! With `--alert-latency N` it measures instead, on a real node started on
//! the store (HTTP API, consensus, the alert follower signing as the
//! regulator), the time from the commit of an event that breaks a run rule
//! to its alert being listed at `GET /v1/alerts`, N times (after one
//! in-control point that builds the chart's state, reported apart).
//!
//! ```text
//! cargo build --release -p lotline-node --bin lotline-quality-bench
//! target/release/lotline-quality-bench --events 1000000 --dir /tmp/lotline-quality-bench
//! target/release/lotline-quality-bench --events 1000000 --dir /tmp/lotline-quality-bench --reuse true
//! ```

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use lotline_core::gs1::{CANONICAL_HOST, Identifier};
use lotline_core::lineage::EdgeKind;
use lotline_node::bulk_load;
use lotline_node::quality::{self, ChartRequest, RootCauseRequest};
use lotline_node::store::StoreReader;
use lotline_node::store::lineage::{End, Origins};
use lotline_node::trace::SeeAll;
use lotline_sim::workload::{Roles, Scale, SupplyChainWorkload, Truth};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const BLOCK_ATTESTATIONS: usize = 1_000;
const SEED: u64 = 7;

struct Args {
    events: u64,
    bad: usize,
    dir: PathBuf,
    iterations: usize,
    reuse: bool,
    /// Rounds of the real-node alert latency measurement (0: not run).
    alert_latency: usize,
}

fn args() -> Result<Args> {
    let mut out = Args {
        events: 1_000_000,
        bad: 1_000,
        dir: std::env::temp_dir().join("lotline-quality-bench"),
        iterations: 5,
        reuse: false,
        alert_latency: 0,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--events" => out.events = value.replace('_', "").parse()?,
            "--bad" => out.bad = value.parse()?,
            "--dir" => out.dir = PathBuf::from(value),
            "--iterations" => out.iterations = value.parse::<usize>()?.max(1),
            "--reuse" => out.reuse = value.parse()?,
            "--alert-latency" => out.alert_latency = value.parse()?,
            other => bail!(
                "unknown flag {other} (use --events N --bad N --dir D --iterations I --reuse true|false --alert-latency N)"
            ),
        }
    }
    Ok(out)
}

/// The planted story's scale with at least `events` events in all (the
/// plain story plus its planted causes' events, which the stream counts
/// before it is told).
fn scale_for(events: u64) -> Scale {
    let shape = Scale::for_events(1);
    let per_campaign = |campaigns: u32| {
        let scale = Scale { campaigns, ..shape };
        SupplyChainWorkload::planted(SEED, scale, &Roles::demo()).len() as u64
    };
    let mut campaigns = 1u32;
    while per_campaign(campaigns) < events {
        campaigns += 1;
    }
    Scale { campaigns, ..shape }
}

fn main() -> Result<()> {
    let args = args()?;
    let scale = scale_for(args.events);
    let dir = args.dir.join(format!("store-{}", args.events));
    if args.alert_latency > 0 {
        return alert_latency::measure(&dir, scale, args.reuse, args.alert_latency);
    }
    let (reader, truth, events) = if args.reuse && dir.exists() {
        reopen(&dir, scale)?
    } else {
        build(&dir, scale)?
    };
    println!(
        "# lotline-quality-bench: {events} events ({} campaigns), seed {SEED}",
        scale.campaigns
    );
    root_cause(&reader, &truth, args.bad, args.iterations)?;
    carrier_root_cause(&reader, &truth, args.bad, args.iterations)?;
    chart(&reader, &truth, args.iterations)?;
    alert_judging(&reader)?;
    Ok(())
}

/// Blocks judged by the alert bench (the latest ones).
const ALERT_BLOCKS: u64 = 5;

fn alert_judging(reader: &StoreReader) -> Result<()> {
    use lotline_node::quality::alerts::{detect, follower};
    let head = reader.applied_height()?;
    let thresholds = detect::Thresholds {
        supplier_nc_rate_max: 0.1,
        supplier_lots_min: 5,
    };
    let mut times = Vec::new();
    let mut fired = 0usize;
    let mut charts = 0usize;
    let mut states = detect::Charts::default();
    let mut suppliers = std::collections::BTreeMap::new();
    let first = head.saturating_sub(ALERT_BLOCKS).max(1);
    let mut start_ms = 0.0;
    for height in first..=head {
        let started = Instant::now();
        let block = follower::read_block(reader, height)?.context("block missing")?;
        let committed: Vec<detect::Committed<'_>> = block
            .iter()
            .map(|(id, at, statement)| detect::Committed {
                id: *id,
                at: *at,
                statement,
            })
            .collect();
        let firings = detect::detect(
            reader,
            &SeeAll,
            &committed,
            height,
            thresholds,
            &mut suppliers,
            &mut states,
        )?;
        let ms = started.elapsed().as_secs_f64() * 1e3;
        if height == first && first < head {
            // The first block after a start builds the chart states (each
            // touched chart read and judged whole): reported apart.
            start_ms = ms;
            continue;
        }
        times.push(ms);
        fired += firings.len();
        charts += committed
            .iter()
            .filter(|c| {
                matches!(
                    c.statement.event.quality,
                    Some(lotline_core::epcis::QualityFact::Inspection { .. })
                )
            })
            .count();
    }
    let max = times.iter().copied().fold(0.0, f64::max);
    times.sort_by(f64::total_cmp);
    println!(
        "alert judging of the last {} blocks ({} records with inspections, {fired} firings, {} charts kept): \
         median {:.1} ms, max {max:.1} ms per block (commit-to-alert latency before the alert's own commit); \
         first block after a start (chart states built from the chain) {start_ms:.1} ms",
        times.len(),
        charts,
        states.len(),
        times[times.len() / 2],
    );
    Ok(())
}

fn build(dir: &Path, scale: Scale) -> Result<(StoreReader, Truth, u64)> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).with_context(|| format!("clearing {}", dir.display()))?;
    }
    std::fs::create_dir_all(dir)?;
    let started = Instant::now();
    let (loaded, truth) = bulk_load::load_planted(dir, SEED, scale, BLOCK_ATTESTATIONS)?;
    println!(
        "loaded {} events in {:.1} s ({:.0} events/s)",
        loaded.events,
        started.elapsed().as_secs_f64(),
        loaded.events as f64 / started.elapsed().as_secs_f64()
    );
    loaded.store.reader().flush()?;
    Ok((loaded.store.reader(), truth, loaded.events))
}

fn reopen(dir: &Path, scale: Scale) -> Result<(StoreReader, Truth, u64)> {
    let (store, _, _) = bulk_load::reopen(dir, scale)?;
    let mut workload = SupplyChainWorkload::planted(SEED, scale, &Roles::demo());
    let events = workload.by_ref().count() as u64;
    let truth = workload.truth().cloned().context("no truth")?;
    Ok((store.reader(), truth, events))
}

/// Median and best of `iterations` runs, in milliseconds.
fn time<T>(iterations: usize, mut run: impl FnMut() -> Result<T>) -> Result<(f64, f64, T)> {
    let mut times = Vec::with_capacity(iterations);
    let mut last = None;
    for _ in 0..iterations {
        let started = Instant::now();
        last = Some(run()?);
        times.push(started.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    let answer = last.context("no run")?;
    Ok((times[times.len() / 2], times[0], answer))
}

fn gtin_of(unit: &str) -> Result<String> {
    match Identifier::parse(unit) {
        Ok(Identifier::Item { gtin, .. }) => Ok(gtin.as_str().to_owned()),
        _ => bail!("{unit} is not a serial"),
    }
}

fn root_cause(reader: &StoreReader, truth: &Truth, bad: usize, iterations: usize) -> Result<()> {
    // The failing units made from the planted lot, topped up with the
    // other (background) failures in chain order, then with exposed units
    // when the story has fewer failures: the signal among noise. (The first
    // `bad` failures alone may all predate the planted lot's campaign in a
    // large story, and then there is nothing to find.)
    let exposed: std::collections::BTreeSet<&String> = truth.exposed.iter().collect();
    let mut units: Vec<String> = truth
        .bad
        .iter()
        .filter(|u| exposed.contains(u))
        .take(bad)
        .cloned()
        .collect();
    for unit in &truth.bad {
        if units.len() >= bad {
            break;
        }
        if !exposed.contains(unit) {
            units.push(unit.clone());
        }
    }
    for unit in &truth.exposed {
        if units.len() >= bad {
            break;
        }
        if !units.contains(unit) {
            units.push(unit.clone());
        }
    }
    let request = RootCauseRequest {
        bad: units,
        failing: None,
    };
    let (median, best, answer, rank) =
        timed_root_cause(reader, &request, &truth.cause, iterations)?;
    // The bound: the serialisation scans of the same products, alone.
    let products: std::collections::BTreeSet<String> = request
        .bad
        .iter()
        .map(|u| gtin_of(u))
        .collect::<Result<_>>()?;
    let (scan_median, _, edges) = time(iterations, || {
        let origins = Origins::default();
        let mut edges = 0usize;
        for gtin in &products {
            let stem = format!("{CANONICAL_HOST}/01/{gtin}/10/");
            for kind in [EdgeKind::Serialised, EdgeKind::TransformedInto] {
                edges += reader.edges_under(&stem, End::From, kind, &origins)?.len();
            }
        }
        Ok(edges)
    })?;
    println!(
        "root cause, {} bad units of {} ({} lots, {} findings tested): median {median:.1} ms, best {best:.1} ms; \
         planted lot in finding {}; serialisation scans alone ({edges} edges) {scan_median:.1} ms, ratio {:.1}",
        answer.population.bad_units,
        answer.population.units,
        answer.population.lots,
        answer.tested,
        rank.map_or("none".to_owned(), |r| format!("#{}", r + 1)),
        median / scan_median.max(1e-9),
    );
    Ok(())
}

/// Root cause of `request`, timed; its answer and the rank of the finding
/// that names `cause` (or is confounded with it).
fn timed_root_cause(
    reader: &StoreReader,
    request: &RootCauseRequest,
    cause: &str,
    iterations: usize,
) -> Result<(f64, f64, quality::RootCause, Option<usize>)> {
    let (median, best, answer) = time(iterations, || {
        Ok(quality::root_cause(reader, request, &SeeAll)?)
    })?;
    let rank = answer
        .findings
        .iter()
        .position(|f| f.factor == cause || f.confounded.iter().any(|c| c == cause));
    Ok((median, best, answer, rank))
}

/// Root cause for `bad` of the units the rough carrier damaged (every
/// k-th in story order, so they span the story's campaigns): its cost
/// with the carriers read, and where the carrier ranks.
fn carrier_root_cause(
    reader: &StoreReader,
    truth: &Truth,
    bad: usize,
    iterations: usize,
) -> Result<()> {
    let stride = (truth.carrier_bad.len() / bad.max(1)).max(1);
    let request = RootCauseRequest {
        bad: truth
            .carrier_bad
            .iter()
            .step_by(stride)
            .take(bad)
            .cloned()
            .collect(),
        failing: None,
    };
    let cause = format!("carrier:{}", truth.carrier);
    let (median, best, answer, rank) = timed_root_cause(reader, &request, &cause, iterations)?;
    println!(
        "root cause, {} damaged units of {} ({} findings tested): median {median:.1} ms, best {best:.1} ms; \
         planted carrier in finding {}",
        answer.population.bad_units,
        answer.population.units,
        answer.tested,
        rank.map_or("none".to_owned(), |r| format!("#{}", r + 1)),
    );
    Ok(())
}

fn chart(reader: &StoreReader, truth: &Truth, iterations: usize) -> Result<()> {
    let gtin = gtin_of(truth.exposed.first().context("no exposed unit")?)?;
    let request = ChartRequest {
        gtin: gtin.clone(),
        characteristic: "activationForce".to_owned(),
        baseline: Some(25),
        points: Some(500),
        subgroup: Default::default(),
    };
    let (median, best, answer) = time(iterations, || {
        Ok(quality::chart(reader, &request, &SeeAll)?)
    })?;
    let (scan_median, _, facts) = time(iterations, || {
        let origins = Origins::default();
        let stem = format!("{CANONICAL_HOST}/01/{gtin}/");
        Ok(reader.facts_under(&stem, &origins)?.len())
    })?;
    let flagged = answer
        .subgroups
        .iter()
        .filter(|g| g.p_out_of_control)
        .count();
    println!(
        "control chart, {} measurements of {gtin} activationForce ({} lots listed, {flagged} out of control on the p-chart): \
         median {median:.1} ms, best {best:.1} ms; facts scan alone ({facts} facts) {scan_median:.1} ms, ratio {:.1}",
        answer.count,
        answer.subgroups.len(),
        median / scan_median.max(1e-9),
    );
    Ok(())
}

/// Commit-to-alert latency on a real node (`--alert-latency N`).
mod alert_latency {
    use std::path::Path;
    use std::time::{Duration, Instant};

    use anyhow::{Context, Result, bail};
    use lotline_core::epcis::{Event, InspectionResult, QualityFact};
    use lotline_core::statement::Statement;
    use lotline_node::config::{AlertsConfig, AlertsFrom, NodeConfig};
    use lotline_node::quality::{self, ChartRequest};
    use lotline_node::trace::SeeAll;
    use lotline_sdk::{AttestationBuilder, Client, Signer, Wait};
    use lotline_sim::workload::Scale;
    use serde_json::Value;

    /// How long one alert may take before the run fails.
    const ALERT_WAIT: Duration = Duration::from_secs(60);
    const POLL: Duration = Duration::from_millis(5);

    pub fn measure(dir: &Path, scale: Scale, reuse: bool, rounds: usize) -> Result<()> {
        // The store, built or reopened, then closed: the node opens it.
        let (template, center, head, events) = {
            let (reader, truth, events) = if reuse && dir.exists() {
                super::reopen(dir, scale)?
            } else {
                super::build(dir, scale)?
            };
            let gtin = super::gtin_of(truth.exposed.first().context("no exposed unit")?)?;
            let request = ChartRequest {
                gtin,
                characteristic: "activationForce".to_owned(),
                baseline: Some(25),
                points: Some(1),
                subgroup: Default::default(),
            };
            let chart = quality::chart(&reader, &request, &SeeAll)?;
            let last = chart.points.last().context("an empty chart")?;
            let stored = reader
                .attestation(&last.attestation)?
                .context("the chart's last point has no record")?;
            let statement = Statement::from_payload(&stored.envelope.payload)?;
            (
                statement,
                chart.limits.center,
                reader.applied_height()?,
                events,
            )
        };
        let consortium = dir.join("consortium");
        let mut config = NodeConfig::load(&consortium.join("nodes").join("manufacturer.toml"))?;
        config.listen = "127.0.0.1:0".parse()?;
        // The bulk loader indexed the store without private keys; a node
        // opening it with its org's keys would rebuild the whole index
        // first (824 s at 1M events), and the series it charts are the
        // same without them.
        config.private = None;
        let keys = consortium.join("keys");
        config.alerts = Some(AlertsConfig {
            org: "regulator".to_owned(),
            key: keys.join("regulator").join("client.key"),
            supplier_nc_rate_max: 0.1,
            supplier_lots_min: 5,
            // As a node that begins alerting on a long chain: the history
            // is judged for the charts' statistics, nothing of it stated.
            from: AlertsFrom::Head,
        });
        // A saved position from an earlier run would decide instead.
        let state = config.data_dir.join("alerts");
        if state.exists() {
            std::fs::remove_dir_all(&state)?;
        }
        println!(
            "# lotline-quality-bench --alert-latency: {events} events, head {head}; a real node (HTTP, consensus, alert follower as the regulator)"
        );
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        runtime.block_on(run(&config, &keys, template, center, rounds))
    }

    /// The template event as a new inspection, just after it, with `value`.
    fn point(template: &Statement, value: f64, n: usize) -> Result<Event> {
        let mut event = template.event.clone();
        let Some(QualityFact::Inspection {
            measurements,
            result,
            ..
        }) = &mut event.quality
        else {
            bail!("the chart's last point is not an inspection");
        };
        for measurement in measurements.iter_mut() {
            if measurement.name == "activationForce" {
                measurement.value = value;
            }
        }
        // The stated result follows the limits (a node refuses an event
        // whose result contradicts its measurements).
        *result = if measurements.iter().all(|m| m.within_spec()) {
            InspectionResult::Pass
        } else {
            InspectionResult::Fail
        };
        // Just after the template's time: its instrument's calibration
        // still holds then (the story's dates, not the clock's).
        let at = template
            .event
            .event_time_ms()
            .context("the template has no time")?;
        event.event_time = lotline_core::time::format_rfc3339_ms(at + i64::try_from(n)? + 1);
        event.event_id = Some(format!("urn:uuid:00000000-0000-4000-8000-{n:012}"));
        Ok(event)
    }

    async fn run(
        config: &NodeConfig,
        keys: &Path,
        template: Statement,
        center: f64,
        rounds: usize,
    ) -> Result<()> {
        let started = Instant::now();
        let node = lotline_node::Node::start(config).await?;
        println!("node started in {:.1} s", started.elapsed().as_secs_f64());
        let token = |org: &str| std::fs::read_to_string(keys.join(org).join("api.token"));
        let submitter =
            Client::new(&node.url())?.with_bearer_token(token(&template.org)?.trim().to_owned());
        let signer =
            Signer::from_key_file(&template.org, keys.join(&template.org).join("client.key"))?;
        let http = reqwest::Client::new();
        let regulator = format!("Bearer {}", token("regulator")?.trim());
        // In control: the chart's center line (the story's last point,
        // the template, may itself be out of control, and a point only
        // fires a rule the point before it did not).
        let normal = center;
        let alerts = node
            .alerts
            .clone()
            .context("the node runs no alert follower")?;
        let chain_id = node.genesis.chain_id();
        let submit = |event: Event| {
            let envelope = AttestationBuilder::new(chain_id, &signer)
                .event(event)
                .build();
            let submitter = &submitter;
            async move {
                let envelope = envelope?;
                let result = submitter.submit(&envelope, Wait::Committed).await?;
                let height = result.height.context("not committed")?;
                anyhow::Ok((envelope.id(), height))
            }
        };
        let judged = |height: u64| {
            let alerts = alerts.clone();
            async move {
                let waited = Instant::now();
                while alerts
                    .progress
                    .height
                    .load(std::sync::atomic::Ordering::Acquire)
                    < height
                {
                    if waited.elapsed() > ALERT_WAIT {
                        bail!("the follower did not judge block {height}");
                    }
                    tokio::time::sleep(POLL).await;
                }
                anyhow::Ok(waited.elapsed())
            }
        };
        // One in-control point: the first block that touches the chart
        // after a start builds its state from the whole series.
        let warm = Instant::now();
        let (_, height) = submit(point(&template, normal, 0)?).await?;
        judged(height).await?;
        println!(
            "first point after the start (commit, then the chart's state built and judged): {:.1} ms",
            warm.elapsed().as_secs_f64() * 1e3
        );
        let mut from_commit = Vec::new();
        let mut from_submit = Vec::new();
        for round in 1..=rounds {
            // Far outside any limit: rule 1 fires on it.
            let submitted = Instant::now();
            let (id, height) =
                submit(point(&template, normal * 50.0 + 1_000.0, 2 * round - 1)?).await?;
            let committed = Instant::now();
            let listed = loop {
                let page: Value = http
                    .get(format!(
                        "{}/v1/alerts?sinceHeight={height}&limit=1000",
                        node.url()
                    ))
                    .header("authorization", &regulator)
                    .send()
                    .await?
                    .json()
                    .await?;
                let found = page["alerts"]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|alert| alert["trigger"] == id.to_string()));
                if found {
                    break Instant::now();
                }
                if committed.elapsed() > ALERT_WAIT {
                    bail!("no alert for {id} within {ALERT_WAIT:?}");
                }
                tokio::time::sleep(POLL).await;
            };
            from_commit.push((listed - committed).as_secs_f64() * 1e3);
            from_submit.push((listed - submitted).as_secs_f64() * 1e3);
            // An in-control point ends the run, so the next outlier is a
            // new firing.
            let (_, height) = submit(point(&template, normal, 2 * round)?).await?;
            judged(height).await?;
        }
        let summary = |mut v: Vec<f64>| {
            v.sort_by(f64::total_cmp);
            (v[v.len() / 2], v[v.len() - 1])
        };
        let (median, max) = summary(from_commit);
        let (submit_median, submit_max) = summary(from_submit);
        println!(
            "alert latency over {rounds} rule-1 points: commit (the submit's committed answer) -> alert listed at GET /v1/alerts: median {median:.1} ms, max {max:.1} ms; submit -> listed: median {submit_median:.1} ms, max {submit_max:.1} ms"
        );
        node.shutdown().await;
        Ok(())
    }
}
