//! The Viewstamped Operation Replicator, Lotline edition: runs the Simplex
//! engine under the deterministic simulator.
//!
//! ```text
//! vopr --seed 42                     one seed, print its trace hash
//! vopr --seeds 100 [--from 1000]     seeds from..from+100
//! options: --validators N (default 4) --byzantine K (default 0)
//!          --behaviour equivocator|silent|abstainer|withholder  --no-liveness  --verbose  --log (every event)
//!          --bodies-missing PERCENT  bodies a validator lacks when a proposal names them
//!          --outage crash|freeze|split   one honest validator down in the liveness phase
//!          --reconfigure           add/remove/rotate a validator at every epoch boundary
//!          --load intermittent     bursts with idle gaps; idle and wake-up checks
//!                 (intermittent-unreported|intermittent-deaf: their positive controls)
//! ```
//! Exits non-zero if any seed breaks an invariant; prints the seed.

use std::process::ExitCode;
use std::time::Instant;

use lotline_sim::sim::{self, Behaviour, Load, Outage, SimConfig};

struct Args {
    seed: Option<u64>,
    seeds: u64,
    from: u64,
    validators: usize,
    byzantine: usize,
    behaviour: Behaviour,
    liveness: bool,
    outage: Option<Outage>,
    load: Load,
    verbose: bool,
    log: bool,
    bodies_missing_percent: u8,
    reconfigure: bool,
}

fn parse() -> Result<Args, String> {
    let mut args = Args {
        seed: None,
        seeds: 1,
        from: 0,
        validators: 4,
        byzantine: 0,
        behaviour: Behaviour::Equivocator,
        liveness: true,
        outage: None,
        load: Load::Constant,
        verbose: false,
        log: false,
        bodies_missing_percent: 0,
        reconfigure: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        let number = |s: String| s.parse::<u64>().map_err(|e| format!("{s}: {e}"));
        match flag.as_str() {
            "--seed" => args.seed = Some(number(value("--seed")?)?),
            "--seeds" => args.seeds = number(value("--seeds")?)?,
            "--from" => args.from = number(value("--from")?)?,
            "--validators" => args.validators = number(value("--validators")?)? as usize,
            "--byzantine" => args.byzantine = number(value("--byzantine")?)? as usize,
            "--behaviour" => {
                args.behaviour = match value("--behaviour")?.as_str() {
                    "equivocator" => Behaviour::Equivocator,
                    "silent" => Behaviour::Silent,
                    "abstainer" => Behaviour::Abstainer,
                    "withholder" => Behaviour::Withholder,
                    other => return Err(format!("unknown behaviour {other}")),
                }
            }
            "--no-liveness" => args.liveness = false,
            "--outage" => {
                args.outage = Some(match value("--outage")?.as_str() {
                    "crash" => Outage::Crash,
                    "freeze" => Outage::Freeze,
                    "split" => Outage::Split,
                    other => return Err(format!("unknown outage {other}")),
                })
            }
            "--load" => {
                args.load = match value("--load")?.as_str() {
                    "constant" => Load::Constant,
                    "intermittent" => Load::Intermittent,
                    "intermittent-unreported" => Load::IntermittentUnreported,
                    "intermittent-deaf" => Load::IntermittentDeaf,
                    "intermittent-unannounced" => Load::IntermittentUnannounced,
                    other => return Err(format!("unknown load {other}")),
                }
            }
            "--bodies-missing" => {
                let percent = number(value("--bodies-missing")?)?;
                args.bodies_missing_percent =
                    u8::try_from(percent.min(100)).map_err(|e| e.to_string())?;
            }
            "--reconfigure" => args.reconfigure = true,
            "--verbose" => args.verbose = true,
            "--log" => args.log = true,
            "--help" | "-h" => return Err(String::new()),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if args.validators == 0 || args.byzantine >= args.validators {
        return Err("need 0 <= byzantine < validators".to_string());
    }
    Ok(args)
}

fn main() -> ExitCode {
    let args = match parse() {
        Ok(args) => args,
        Err(message) => {
            if !message.is_empty() {
                eprintln!("vopr: {message}");
            }
            eprintln!(
                "usage: vopr (--seed N | --seeds N [--from S]) [--validators N] [--byzantine K] [--behaviour equivocator|silent|abstainer|withholder] [--no-liveness] [--outage crash|freeze|split] [--load constant|intermittent] [--bodies-missing PERCENT] [--reconfigure] [--verbose] [--log]"
            );
            return ExitCode::from(2);
        }
    };
    let seeds: Vec<u64> = match args.seed {
        Some(seed) => vec![seed],
        None => (args.from..args.from + args.seeds).collect(),
    };
    let started = Instant::now();
    let mut failed = Vec::new();
    for seed in &seeds {
        let config = SimConfig {
            seed: *seed,
            validators: args.validators,
            byzantine: args.byzantine,
            behaviour: args.behaviour,
            require_liveness: args.liveness,
            outage: args.outage,
            load: args.load,
            bodies_missing_percent: args.bodies_missing_percent,
            log: args.log,
            reconfigure: args.reconfigure,
        };
        let report = sim::run(&config);
        if args.verbose || args.seed.is_some() || !report.ok() {
            println!("{}", report.summary());
        }
        if args.seed.is_some() {
            println!("trace {}", report.trace);
        }
        if !report.ok() {
            failed.push(*seed);
        }
    }
    let elapsed = started.elapsed();
    println!(
        "{} seed(s), {} failed{} in {:.1}s (commit {})",
        seeds.len(),
        failed.len(),
        if failed.is_empty() {
            String::new()
        } else {
            format!(": {failed:?}")
        },
        elapsed.as_secs_f64(),
        option_env!("LOTLINE_COMMIT").unwrap_or("unknown; set LOTLINE_COMMIT"),
    );
    if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
