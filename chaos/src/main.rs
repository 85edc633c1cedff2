//! `lotline-chaos`: four real `lotline node` processes under signed load,
//! with faults injected on a seeded schedule, and a checker that no
//! acknowledged write was lost, no node forked, and the cluster recovered
//! within a stated time after every fault.
//!
//! ```text
//! cargo build -p lotline-node --bin lotline -p lotline-chaos
//! sudo target/debug/lotline-chaos --duration 150s --seed 1      # CI's short run
//! sudo target/debug/lotline-chaos --duration 6h                 # a campaign
//! ```
//! Needs root (network namespaces, veth pairs, nftables) unless
//! `--loopback`, which runs without partitions. See docs/reliability.md.

mod check;
mod consortium;
mod harness;
mod inject;
mod load;
mod net;
mod observe;
mod process;
mod report;
mod schedule;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

use crate::schedule::FaultKind;

#[derive(Debug, Parser)]
#[command(
    name = "lotline-chaos",
    about = "Four real lotline nodes under signed load, with seeded faults (kills, freezes, quorum loss, partitions) and a checker"
)]
pub struct Args {
    /// How long to inject faults under load: 150s, 20m, 6h.
    #[arg(long, default_value = "150s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Seed of the fault schedule (printed; pass it again to replay).
    /// Default: from the clock.
    #[arg(long)]
    pub seed: Option<u64>,
    /// The `lotline` binary. Default: `lotline` next to this binary.
    #[arg(long)]
    pub lotline: Option<PathBuf>,
    /// Writer tasks per org (four orgs).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u8).range(1..=99))]
    pub writers_per_org: u8,
    /// Progress must resume, and every node left behind must catch up,
    /// within this long of each heal.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub recovery_limit: Duration,
    /// Only these fault kinds (comma separated). Default: all.
    #[arg(long, value_enum, value_delimiter = ',')]
    pub faults: Vec<FaultKind>,
    /// Run the nodes on 127.0.0.1 without network namespaces: no root
    /// needed, and no partition faults.
    #[arg(long)]
    pub loopback: bool,
    /// The run folder (consortium, node data, node logs). Default: a new
    /// folder in the temp dir, removed after a passing run.
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Keep the run folder after a passing run.
    #[arg(long)]
    pub keep: bool,
    /// Print the schedule for the seed and duration, and exit.
    #[arg(long)]
    pub plan_only: bool,
}

/// `150s`, `20m`, `6h`, `1h30m` or a plain number of seconds.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let mut total = 0u64;
    let mut number = String::new();
    for c in text.trim().chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            _ => return Err(format!("{text:?}: unknown unit {c:?} (use s, m or h)")),
        };
        let n: u64 = number
            .parse()
            .map_err(|_| format!("{text:?}: a number must come before {c:?}"))?;
        total = total.saturating_add(n.saturating_mul(unit));
        number.clear();
    }
    if !number.is_empty() {
        total = total.saturating_add(
            number
                .parse::<u64>()
                .map_err(|e| format!("{text:?}: {e}"))?,
        );
    }
    if total == 0 {
        return Err(format!("{text:?}: the duration must be positive"));
    }
    Ok(Duration::from_secs(total))
}

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("lotline-chaos: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        tokio::select! {
            result = harness::run(args) => result,
            signal = interrupted() => Err(anyhow::anyhow!("interrupted by {signal}; nodes, namespaces and links were removed")),
        }
    });
    // Tasks still running (writers, samplers) hold no process or network
    // guard; those were dropped with the harness future above.
    runtime.shutdown_timeout(Duration::from_secs(5));
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("lotline-chaos: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Resolves on SIGINT, SIGTERM or SIGHUP, so the harness future is dropped
/// and its guards kill the nodes and remove the namespaces.
async fn interrupted() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut int), Ok(mut term), Ok(mut hup)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = int.recv() => "SIGINT",
        _ = term.recv() => "SIGTERM",
        _ = hup.recv() => "SIGHUP",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("150s"), Ok(Duration::from_secs(150)));
        assert_eq!(parse_duration("20m"), Ok(Duration::from_secs(1200)));
        assert_eq!(parse_duration("6h"), Ok(Duration::from_secs(21_600)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert!(parse_duration("5d").is_err());
        assert!(parse_duration("m").is_err());
        assert!(parse_duration("0s").is_err());
    }
}
