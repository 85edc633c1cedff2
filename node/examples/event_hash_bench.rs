//! Times the CBV event hash (`lotline_core::epcis::event_hash`), which every
//! node computes for every event it indexes and every capture computes
//! again for its repeated-capture check: over the workload generator's
//! events, then over GS1's sensor examples. Each figure is also given as
//! the share of one core the hash would take at the ingest target of
//! 10,000 events/s. The digest of every hash is printed so that a faster
//! build can be checked to hash alike.
//!
//! `cargo run --release -p lotline-node --example event_hash_bench [events]`
use std::time::Instant;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use lotline_core::epcis::event_hash;
use lotline_sim::workload::{Scale, SupplyChainWorkload};

/// The one-validator ingest target (issue 11), events/s.
const TARGET: u64 = 10_000;

fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(50_000);
    let items = SupplyChainWorkload::generate(7, Scale::for_events(n));
    let events: Vec<_> = items.into_iter().map(|w| w.event).collect();
    let mut check = 0u8;
    for round in 0..5 {
        let t = Instant::now();
        for event in &events {
            check ^= event_hash::event_hash(event).0[0];
        }
        let dt = t.elapsed();
        let per_event = dt.as_secs_f64() * 1e6 / events.len() as f64;
        println!(
            "round {round}: {} events, {per_event:.2} µs per event, {:.1} % of a core at {TARGET} events/s",
            events.len(),
            per_event * TARGET as f64 / 1e4
        );
    }
    let mut sum = 0u64;
    for event in &events {
        for b in event_hash::event_hash(event).0 {
            sum = sum.wrapping_mul(31).wrapping_add(u64::from(b));
        }
    }
    println!("digest of every hash: {sum:016x} ({check})");

    // Sensor reports: GS1's sensor examples, each event hashed many times.
    let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/fixtures/epcis");
    let mut sensor = Vec::new();
    for name in [
        "SensorDataExample1",
        "SensorDataExample2",
        "SensorDataExample3",
    ] {
        let Ok(text) = std::fs::read_to_string(format!("{fixtures}/{name}.jsonld")) else {
            continue;
        };
        let document: serde_json::Value = serde_json::from_str(&text).expect("fixture JSON");
        for event in document["epcisBody"]["eventList"]
            .as_array()
            .into_iter()
            .flatten()
        {
            if let Ok(event) = serde_json::from_value::<lotline_core::epcis::Event>(event.clone()) {
                sensor.push(event);
            }
        }
    }
    if !sensor.is_empty() {
        let t = Instant::now();
        let rounds = 20_000;
        for _ in 0..rounds {
            for event in &sensor {
                check ^= event_hash::event_hash(event).0[0];
            }
        }
        let per_event = t.elapsed().as_secs_f64() * 1e6 / (rounds * sensor.len()) as f64;
        println!(
            "sensor examples: {} events, {per_event:.2} µs per event, {:.1} % of a core at {TARGET} events/s ({check})",
            sensor.len(),
            per_event * TARGET as f64 / 1e4
        );
    }
}
