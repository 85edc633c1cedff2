//! Violations (anything that makes the run fail) and the figures printed
//! at the end.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::schedule::FaultKind;

/// Everything that must not happen. Each is printed when it is found and
/// again in the summary; any makes the run exit non-zero.
#[derive(Debug)]
pub struct Violations {
    started: Instant,
    list: Mutex<Vec<String>>,
}

impl Violations {
    pub fn new(started: Instant) -> Violations {
        Violations {
            started,
            list: Mutex::new(Vec::new()),
        }
    }

    pub fn record(&self, what: String) {
        eprintln!(
            "[{:>7.1}s] VIOLATION: {what}",
            self.started.elapsed().as_secs_f64()
        );
        if let Ok(mut list) = self.list.lock() {
            list.push(what);
        }
    }

    pub fn all(&self) -> Vec<String> {
        self.list.lock().map(|l| l.clone()).unwrap_or_default()
    }
}

/// What one injected fault did to the cluster.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub kind: FaultKind,
    pub description: String,
    pub hold: Duration,
    /// Heal (restart, SIGCONT, rules removed) to the next commit any node
    /// reported; `None` if none came within the wait.
    pub progress: Option<Duration>,
    /// Per lagging node: heal to its head reaching the others' height at
    /// the heal; `None` if it did not within the wait.
    pub catch_up: Vec<(usize, Option<Duration>)>,
    /// Blocks committed while the fault held (after a short grace).
    pub commits_during: u64,
}

/// `p`-quantile (nearest rank) of `samples`.
pub fn quantile(samples: &[Duration], p: f64) -> Option<Duration> {
    let mut v = samples.to_vec();
    v.sort();
    if v.is_empty() {
        return None;
    }
    let rank = ((v.len() as f64 * p).ceil() as usize).clamp(1, v.len());
    Some(v[rank - 1])
}

pub fn seconds(d: Option<Duration>) -> String {
    d.map(|d| format!("{:.2} s", d.as_secs_f64()))
        .unwrap_or_else(|| "-".into())
}

/// Recovery figures grouped the way the reliability doc reports them.
pub fn recovery_table(outcomes: &[Outcome]) -> String {
    let mut groups: BTreeMap<&str, (Vec<Duration>, usize)> = BTreeMap::new();
    let mut add = |group: &'static str, d: Option<Duration>| {
        let entry = groups.entry(group).or_default();
        match d {
            Some(d) => entry.0.push(d),
            None => entry.1 += 1,
        }
    };
    for o in outcomes {
        let catch_up_group = match o.kind {
            FaultKind::Kill => "catch-up after restart (SIGKILL)",
            FaultKind::Freeze => "catch-up after SIGCONT",
            FaultKind::QuorumLoss => "catch-up after quorum loss",
            FaultKind::RollingRestart => "catch-up after a rolling restart step (SIGTERM)",
            _ => "catch-up after partition heal",
        };
        for (_, d) in &o.catch_up {
            add(catch_up_group, *d);
        }
        let progress_group = if o.kind.keeps_quorum() {
            "next commit after heal (quorum kept)"
        } else {
            "progress resumed after quorum regained"
        };
        add(progress_group, o.progress);
    }
    let mut out =
        String::from("| recovery | samples | p50 | max | never |\n|---|---|---|---|---|\n");
    for (group, (samples, never)) in groups {
        out.push_str(&format!(
            "| {group} | {} | {} | {} | {never} |\n",
            samples.len(),
            seconds(quantile(&samples, 0.5)),
            seconds(samples.iter().max().copied()),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_quantiles() {
        let s: Vec<Duration> = [5, 1, 3, 2, 4].map(Duration::from_secs).to_vec();
        assert_eq!(quantile(&s, 0.5), Some(Duration::from_secs(3)));
        assert_eq!(quantile(&s, 1.0), Some(Duration::from_secs(5)));
        assert_eq!(quantile(&s, 0.0), Some(Duration::from_secs(1)));
        assert_eq!(quantile(&[], 0.5), None);
    }
}
