//! Streams the supply-chain workload and reports how fast it is generated,
//! without holding it: the generator half of the store benchmarks.
//!
//! ```text
//! workload --events 1000000 [--seed 7] [--validate]
//! ```
//! `--validate` also runs `Event::validate` on every event (slower; it
//! measures validation, not generation). Prints events/s and the summary.

use std::process::ExitCode;
use std::time::Instant;

use lotline_sim::{Roles, Scale, SupplyChainWorkload};

struct Args {
    events: u64,
    seed: u64,
    validate: bool,
}

fn parse() -> Result<Args, String> {
    let mut args = Args {
        events: 100_000,
        seed: 7,
        validate: false,
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
            "--events" => args.events = number("--events")?,
            "--seed" => args.seed = number("--seed")?,
            "--validate" => args.validate = true,
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(args)
}

fn main() -> ExitCode {
    let args = match parse() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("workload: {e}\nusage: workload --events N [--seed S] [--validate]");
            return ExitCode::FAILURE;
        }
    };
    let scale = Scale::for_events(args.events);
    let started = Instant::now();
    let mut stream = SupplyChainWorkload::stream(args.seed, scale, &Roles::demo());
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
    if invalid > 0 {
        eprintln!("{invalid} events failed validation");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
