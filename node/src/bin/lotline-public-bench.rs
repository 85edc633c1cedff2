//! `lotline-public-bench`: server latency of the consumer provenance page
//! for a lot with a five-level history, at a fixed request rate.
//!
//! ```text
//! cargo build --release -p lotline-node --bin lotline-public-bench
//! target/release/lotline-public-bench [--rate 200] [--seconds 20] [--workers 16] [--filler 500] [--serve 0]
//! ```
//! 1. Starts one validator (real block log, sled, axum) on loopback and
//!    loads a story: two raw lots, five transformation levels L1..L5 (each
//!    with an inspection), 40 serials of L5 packed in cases and a pallet,
//!    shipped, received and stored with temperature readings, plus
//!    `--filler` unrelated lots so the store is not trivially small.
//! 2. Sends `GET /01/{gtin}/10/L5` (the page, HTML) at a fixed `--rate`
//!    requests/s for `--seconds` over `--workers` keep-alive connections
//!    (default 16), each request on a schedule; latency is counted from the
//!    scheduled time, so a slow server shows as latency, not as a lower rate
//!    (as wrk2 does). Prints p50/p90/p99/max and errors.
//! 3. With `--serve N`, keeps serving N seconds afterwards so an external
//!    tool (`wrk`) can be pointed at the printed URL.
//!
//! The client runs in this process on the same two cores as the node: the
//! latencies are an upper bound of server time.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use lotline_core::api::Wait;
use lotline_core::epcis::Event;
use lotline_genesis::Genesis;
use lotline_node::{Node, NodeConfig};
use lotline_sdk::{AttestationBuilder, Client, Signer};
use serde_json::{Value, json};

/// The same allocator as the `lotline` binary, so figures match the node.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Args {
    rate: u64,
    seconds: u64,
    filler: u32,
    serve: u64,
    workers: u64,
}

fn args() -> Args {
    let mut out = Args {
        rate: 200,
        seconds: 20,
        filler: 500,
        serve: 0,
        workers: 16,
    };
    let argv: Vec<String> = std::env::args().collect();
    for pair in argv.windows(2) {
        match pair[0].as_str() {
            "--rate" => out.rate = pair[1].parse().unwrap_or(out.rate).clamp(1, 5000),
            "--seconds" => out.seconds = pair[1].parse().unwrap_or(out.seconds).clamp(1, 600),
            "--filler" => out.filler = pair[1].parse().unwrap_or(out.filler).min(100_000),
            "--workers" => out.workers = pair[1].parse().unwrap_or(out.workers).clamp(1, 1024),
            "--serve" => out.serve = pair[1].parse().unwrap_or(out.serve).min(3600),
            _ => {}
        }
    }
    out
}

fn gtin(item: u32) -> String {
    let body = format!("0950600{item:06}");
    let digit = lotline_core::gs1::check_digit(&body).unwrap_or(0);
    format!("{body}{digit}")
}

fn lot(item: u32, lot: &str) -> String {
    format!("https://id.gs1.org/01/{}/10/{lot}", gtin(item))
}

fn sscc(n: u32) -> String {
    let body = format!("09506000{n:09}");
    let digit = lotline_core::gs1::check_digit(&body).unwrap_or(0);
    format!("https://id.gs1.org/00/{body}{digit}")
}

const SITE: &str = "https://id.gs1.org/414/9506000134352";

fn event(minute: u32, value: Value) -> Result<Event> {
    let mut base = json!({
        "eventTime": format!("2026-03-{:02}T{:02}:{:02}:00.000Z", 2 + minute / 1440, minute / 60 % 24, minute % 60),
        "eventTimeZoneOffset": "+08:00",
        "bizLocation": {"id": SITE},
    });
    if let (Value::Object(base), Value::Object(value)) = (&mut base, value) {
        base.extend(value);
    }
    Ok(serde_json::from_value(base)?)
}

fn inspection(minute: u32, subject: &str) -> Result<Event> {
    event(
        minute,
        json!({"type": "ObjectEvent", "action": "OBSERVE", "bizStep": "inspecting",
            "quantityList": [{"epcClass": subject, "quantity": 100.0, "uom": "KGM"}],
            "lotline:quality": {"kind": "inspection", "result": "pass", "method": "in-process check",
                "measurements": [{"name": "hardness", "value": 61.0, "uom": "HRC", "specMin": 58.0, "specMax": 64.0}]}}),
    )
}

/// The story, as (org, event) in commit order; returns the L5 lot.
fn story(filler: u32) -> Result<(Vec<(&'static str, Event)>, String)> {
    let mut events = Vec::new();
    let raw = [lot(1, "RA"), lot(1, "RB")];
    for (i, r) in raw.iter().enumerate() {
        let minute = u32::try_from(i)?;
        events.push((
            "supplier",
            event(
                minute,
                json!({"type": "ObjectEvent", "action": "ADD", "bizStep": "commissioning",
                "quantityList": [{"epcClass": r, "quantity": 500.0, "uom": "KGM"}],
                "lotline:quality": {"kind": "inspection", "result": "pass", "method": "incoming"}}),
            )?,
        ));
    }
    let mut inputs: Vec<String> = raw.to_vec();
    let mut minute = 10;
    for level in 1..=5u32 {
        let output = lot(1 + level, &format!("L{level}"));
        let input_list: Vec<Value> = inputs
            .iter()
            .map(|i| json!({"epcClass": i, "quantity": 100.0, "uom": "KGM"}))
            .collect();
        events.push((
            "manufacturer",
            event(
                minute,
                json!({"type": "TransformationEvent", "bizStep": "commissioning",
                "inputQuantityList": input_list,
                "outputQuantityList": [{"epcClass": output, "quantity": 100.0, "uom": "KGM"}]}),
            )?,
        ));
        events.push(("manufacturer", inspection(minute + 5, &output)?));
        inputs = vec![output];
        minute += 30;
    }
    let l5 = inputs.remove(0);
    let serials: Vec<String> = (1..=40)
        .map(|s| format!("https://id.gs1.org/01/{}/21/{s}", gtin(6)))
        .collect();
    events.push((
        "manufacturer",
        event(
            minute,
            json!({"type": "ObjectEvent", "action": "ADD", "bizStep": "commissioning",
            "epcList": serials, "ilmd": {"cbvmda:lotNumber": "L5"},
            "@context": [{"cbvmda": "urn:epcglobal:cbv:mda:"}]}),
        )?,
    ));
    let cases: Vec<String> = (1..=4).map(sscc).collect();
    for (case, children) in cases.iter().zip(serials.chunks(10)) {
        events.push((
            "manufacturer",
            event(
                minute + 10,
                json!({"type": "AggregationEvent", "action": "ADD", "bizStep": "packing",
                "parentID": case, "childEPCs": children}),
            )?,
        ));
    }
    let pallet = sscc(100);
    events.push((
        "manufacturer",
        event(
            minute + 20,
            json!({"type": "AggregationEvent", "action": "ADD", "bizStep": "packing",
            "parentID": pallet, "childEPCs": cases}),
        )?,
    ));
    events.push((
        "manufacturer",
        event(
            minute + 30,
            json!({"type": "ObjectEvent", "action": "OBSERVE", "bizStep": "shipping",
            "epcList": [pallet]}),
        )?,
    ));
    events.push((
        "distributor",
        event(
            minute + 90,
            json!({"type": "ObjectEvent", "action": "OBSERVE", "bizStep": "receiving",
            "epcList": [pallet]}),
        )?,
    ));
    for reading in 0..6u32 {
        events.push((
            "distributor",
            event(minute + 120 + reading * 60, json!({"type": "ObjectEvent", "action": "OBSERVE", "bizStep": "storing",
                "epcList": [pallet],
                "sensorElementList": [{"sensorReport": [{"type": "gs1:Temperature", "value": 3.0 + f64::from(reading), "uom": "CEL"}]}]}))?,
        ));
    }
    for n in 0..filler {
        events.push((
            "supplier",
            event(n % 1440, json!({"type": "ObjectEvent", "action": "ADD", "bizStep": "commissioning",
                "quantityList": [{"epcClass": lot(50 + n % 7, &format!("F{n}")), "quantity": 10.0, "uom": "KGM"}]}))?,
        ));
    }
    Ok((events, l5))
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let args = args();
    let dir = std::env::temp_dir().join(format!("lotline-public-bench-{}", std::process::id()));
    let orgs = lotline_node::demo::parse_orgs(lotline_node::demo::DEMO_ORGS)?;
    let layout = lotline_node::demo::create_consortium(
        &dir,
        "public-bench",
        &orgs,
        &["manufacturer".into()],
        0,
        0,
    )?;
    let mut config = NodeConfig::load(&layout.node_configs[0])?;
    config.listen = ([127, 0, 0, 1], 0).into();
    let node = Node::start(&config).await?;
    let genesis = Genesis::load(&layout.genesis_path)?;
    let client = Client::new(&node.url())?;
    let (events, l5) = story(args.filler)?;
    let loaded = Instant::now();
    let mut batch: Vec<lotline_core::Envelope> = Vec::new();
    let count = events.len();
    for (i, (org, event)) in events.into_iter().enumerate() {
        let signer = Signer::from_key_file(org, &layout.client_keys[org])?;
        batch.push(
            AttestationBuilder::new(genesis.chain_id(), &signer)
                .event(event)
                .build()?,
        );
        // Story events in order (each depends on the last); filler in bulk.
        if i < count.saturating_sub(args.filler as usize) || batch.len() == 500 || i + 1 == count {
            let result = client.submit_batch(&batch, Wait::Committed).await?;
            if let Some(problem) = result.results.iter().find_map(|r| r.problem.as_ref()) {
                anyhow::bail!(
                    "story event rejected: {} ({})",
                    problem.title,
                    problem.detail
                );
            }
            batch.clear();
        }
    }
    let path = l5
        .strip_prefix(lotline_core::gs1::CANONICAL_HOST)
        .context("L5 path")?;
    let url = format!("{}{path}", node.url());
    println!(
        "loaded {count} events in {:.1} s; head height {}",
        loaded.elapsed().as_secs_f64(),
        node.shared.head().height
    );
    let http = reqwest::Client::new();
    let page = http.get(&url).send().await?;
    anyhow::ensure!(
        page.status().is_success(),
        "page answered {}",
        page.status()
    );
    let body = page.text().await?;
    let steps = body.matches("<li>").count();
    println!("page {url}: {} bytes, {steps} list entries", body.len());

    // Warm-up, then the open-loop run.
    for _ in 0..50 {
        http.get(&url).send().await?.bytes().await?;
    }
    let total = args.rate * args.seconds;
    let interval = Duration::from_nanos(1_000_000_000 / args.rate);
    let start = tokio::time::Instant::now();
    // `workers` connections share the schedule: request k is due at
    // start + k * interval and goes out on connection k % workers. Latency
    // counts from the due time, not the send time, so a request delayed by
    // a slow predecessor on its connection is charged the wait (no
    // coordinated omission, as in wrk2).
    let workers = args.workers.min(total);
    let mut tasks = Vec::new();
    for worker in 0..workers {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(1)
            .build()?;
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            let mut k = worker;
            while k < total {
                let due = start + interval * u32::try_from(k).unwrap_or(u32::MAX);
                tokio::time::sleep_until(due).await;
                let ok = match http.get(&url).send().await {
                    Ok(r) => r.status().is_success() && r.bytes().await.is_ok(),
                    Err(_) => false,
                };
                out.push((due.elapsed(), ok));
                k += workers;
            }
            out
        }));
    }
    let mut latencies = Vec::new();
    let mut errors = 0;
    for task in tasks {
        for (latency, ok) in task.await? {
            if !ok {
                errors += 1;
            }
            latencies.push(latency);
        }
    }
    let wall = start.elapsed().as_secs_f64();
    latencies.sort();
    println!(
        "{} requests at {} req/s target ({:.1} req/s achieved) over {:.1} s, {errors} errors",
        latencies.len(),
        args.rate,
        latencies.len() as f64 / wall,
        wall
    );
    println!(
        "latency p50 {}  p90 {}  p99 {}  max {}",
        ms(percentile(&latencies, 50.0)),
        ms(percentile(&latencies, 90.0)),
        ms(percentile(&latencies, 99.0)),
        ms(latencies.last().copied().unwrap_or_default())
    );
    if args.serve > 0 {
        println!("serving {url} for {} s", args.serve);
        tokio::time::sleep(Duration::from_secs(args.serve)).await;
    }
    node.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
