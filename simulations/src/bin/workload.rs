//! Streams the supply-chain workload and reports how fast it is generated,
//! without holding it: the generator half of the store benchmarks.
//!
//! ```text
//! workload --events 1000000 [--seed 7] [--validate]
//! workload --seed 7 --truth truth.json [--events N]
//! ```
//! `--validate` also runs `Event::validate` on every event (slower; it
//! measures validation, not generation). Prints events/s and the summary.
//!
//! `--truth FILE` generates the planted story (`SupplyChainWorkload::planted`)
//! and writes what was planted to FILE as JSON: the bad lot under `cause`,
//! the units whose functional test failed under `bad`, the drifting
//! supplier and the slow excursion beside them. Without `--events` it is the
//! story `lotline demo --seed N` loads (`Scale::demo`).

use std::process::ExitCode;
use std::time::Instant;

use lotline_sim::{Roles, Scale, SupplyChainWorkload};

struct Args {
    events: Option<u64>,
    seed: u64,
    validate: bool,
    truth: Option<std::path::PathBuf>,
}

fn parse() -> Result<Args, String> {
    let mut args = Args {
        events: None,
        seed: 7,
        validate: false,
        truth: None,
    };
    let mut words = std::env::args().skip(1);
    while let Some(word) = words.next() {
        let mut number = |name: &str| -> Result<u64, String> {
            words
                .next()
                .and_then(|v| v.replace('_', "").parse().ok())
                .ok_or_else(|| format!("{name} needs a number"))
        };
        match word.as_str() {
            "--events" => args.events = Some(number("--events")?),
            "--seed" => args.seed = number("--seed")?,
            "--validate" => args.validate = true,
            "--truth" => {
                let path = words.next().ok_or("--truth needs a file")?;
                args.truth = Some(path.into());
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(args)
}

fn main() -> ExitCode {
    let args = match parse() {
        Ok(args) => args,
        Err(e) => {
            eprintln!(
                "workload: {e}\nusage: workload [--events N] [--seed S] [--validate] [--truth FILE]"
            );
            return ExitCode::FAILURE;
        }
    };
    let scale = match (args.events, &args.truth) {
        (Some(events), _) => Scale::for_events(events),
        (None, Some(_)) => Scale::demo(),
        (None, None) => Scale::for_events(100_000),
    };
    let started = Instant::now();
    let mut stream = if args.truth.is_some() {
        SupplyChainWorkload::planted(args.seed, scale, &Roles::demo())
    } else {
        SupplyChainWorkload::stream(args.seed, scale, &Roles::demo())
    };
    let (mut events, mut identifiers, mut invalid) = (0u64, 0u64, 0u64);
    for item in stream.by_ref() {
        events += 1;
        identifiers += item.event.identifiers().count() as u64;
        if args.validate && !item.event.validate().is_empty() {
            invalid += 1;
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    println!("{scale:?}");
    println!(
        "{events} events ({identifiers} identifiers) in {seconds:.2} s: {:.0} events/s{}",
        events as f64 / seconds,
        if args.validate { ", validated" } else { "" }
    );
    if let Some(summary) = stream.summary() {
        println!("{summary:#?}");
    }
    if let (Some(path), Some(truth)) = (&args.truth, stream.truth()) {
        let text = format!("{:#}\n", truth.to_json());
        if let Err(e) = std::fs::write(path, text) {
            eprintln!("workload: writing {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
        println!(
            "truth: {} ({} bad units) -> {}",
            truth.cause,
            truth.bad.len(),
            path.display()
        );
    }
    if invalid > 0 {
        eprintln!("{invalid} events failed validation");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
