//! Carrying out one step of the schedule and measuring the recovery.
//!
//! A step: inject the fault, hold it, heal it (restart, SIGCONT, or drop
//! rules removed), then wait until the chain moved past the height it had
//! at the heal (progress resumed) and every node the fault left behind
//! reached the height the others had at the heal (caught up). Both are
//! measured from the heal on the observer's head samples; a sample counts
//! only if it was taken after the heal, so a dead node's last answer
//! cannot pass for a caught-up one.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::net::Network;
use crate::observe::Observer;
use crate::process::Cluster;
use crate::report::{Outcome, Violations};
use crate::schedule::{Fault, NODES, Step, Stop};

/// Time after the fault starts before commits count as "during the
/// fault": votes already in flight when the fault hit may still finish a
/// block.
const GRACE: Duration = Duration::from_secs(2);
/// Faults held at least this long must not stop a chain that kept a quorum.
const LIVENESS_HOLD_MIN: Duration = Duration::from_secs(5);
const POLL: Duration = Duration::from_millis(50);
/// How long a node may take to exit 0 after SIGTERM (it commits what it
/// admitted first) in a rolling restart.
const CLEAN_STOP_MAX: Duration = Duration::from_secs(30);

#[derive(Debug)]
pub struct Injector<'a> {
    pub cluster: &'a mut Cluster,
    pub network: Option<&'a Network>,
    pub observer: &'a Observer,
    pub violations: &'a Violations,
    /// Longer than this to resume or catch up is a violation.
    pub limit: Duration,
    /// How long to keep waiting (and measuring) past the limit.
    pub wait_max: Duration,
    pub started: Instant,
}

impl Injector<'_> {
    pub fn log(&self, what: &str) {
        println!("[{:>7.1}s] {what}", self.started.elapsed().as_secs_f64());
    }

    pub async fn run(&mut self, step: &Step) -> Result<Outcome> {
        let fault = step.fault;
        self.log(&format!("inject: {fault}, hold {} s", step.hold.as_secs()));
        self.apply(&fault)?;
        let grace = GRACE.min(step.hold);
        tokio::time::sleep(grace).await;
        let at_grace = self.observer.max_height();
        tokio::time::sleep(step.hold - grace).await;
        let commits_during = self.observer.max_height().saturating_sub(at_grace);

        self.heal(&fault)?;
        let healed = Instant::now();
        let lagging = fault.lagging();
        let others: Vec<usize> = (0..NODES).filter(|n| !lagging.contains(n)).collect();
        let base = self.observer.max_height();
        let target = if others.is_empty() {
            base
        } else {
            self.observer.max_height_of(others.iter().copied())
        };
        let (progress, catch_up) = self.recover(healed, base, target, &lagging).await;
        let outcome = Outcome {
            kind: fault.kind(),
            description: fault.to_string(),
            hold: step.hold,
            progress,
            catch_up,
            commits_during,
        };
        self.judge(&outcome, target);
        for exit in self.cluster.unexpected_exits() {
            self.violations.record(exit);
        }
        self.log(&format!(
            "healed: next commit after {}, caught up {} (target height {target}); {commits_during} blocks during the fault",
            crate::report::seconds(progress),
            outcome
                .catch_up
                .iter()
                .map(|(n, d)| format!("n{n} {}", crate::report::seconds(*d)))
                .collect::<Vec<_>>()
                .join(", "),
        ));
        tokio::time::sleep(step.settle).await;
        Ok(outcome)
    }

    fn apply(&mut self, fault: &Fault) -> Result<()> {
        match *fault {
            Fault::Kill { node } => self.cluster.nodes[node].kill(),
            Fault::Restart { node } => {
                // An upgrade's stop: SIGTERM, the node commits what it
                // admitted and must exit 0 in time.
                let process = &mut self.cluster.nodes[node];
                process.request_stop();
                let deadline = Instant::now() + CLEAN_STOP_MAX;
                match tokio::task::block_in_place(|| process.wait_stopped(deadline)) {
                    Some(status) if status.success() => Ok(()),
                    Some(status) => {
                        self.violations.record(format!(
                            "rolling restart: n{node} exited with {status} on SIGTERM, not cleanly"
                        ));
                        Ok(())
                    }
                    None => {
                        self.violations.record(format!(
                            "rolling restart: n{node} did not exit within {CLEAN_STOP_MAX:?} of SIGTERM (killed)"
                        ));
                        Ok(())
                    }
                }
            }
            Fault::Freeze { node } => self.cluster.nodes[node].freeze(),
            Fault::QuorumLoss { nodes } => {
                for (node, stop) in nodes {
                    match stop {
                        Stop::Kill => self.cluster.nodes[node].kill()?,
                        Stop::Freeze => self.cluster.nodes[node].freeze()?,
                    }
                }
                Ok(())
            }
            Fault::Split { .. }
            | Fault::Isolate { .. }
            | Fault::Deaf { .. }
            | Fault::OneWay { .. } => {
                let network = self
                    .network
                    .context("partition faults need network namespaces")?;
                for (from, to) in fault.cuts() {
                    network.cut(from, to)?;
                }
                Ok(())
            }
        }
    }

    fn heal(&mut self, fault: &Fault) -> Result<()> {
        match *fault {
            Fault::Kill { node } | Fault::Restart { node } => self.cluster.restart(node),
            Fault::Freeze { node } => self.cluster.nodes[node].thaw(),
            Fault::QuorumLoss { nodes } => {
                for (node, stop) in nodes {
                    match stop {
                        Stop::Kill => self.cluster.restart(node)?,
                        Stop::Freeze => self.cluster.nodes[node].thaw()?,
                    }
                }
                Ok(())
            }
            Fault::Split { .. }
            | Fault::Isolate { .. }
            | Fault::Deaf { .. }
            | Fault::OneWay { .. } => self
                .network
                .context("partition faults need network namespaces")?
                .heal(),
        }
    }

    /// Waits for progress past `base` and for each lagging node to reach
    /// `target`, up to `wait_max`.
    async fn recover(
        &self,
        healed: Instant,
        base: u64,
        target: u64,
        lagging: &[usize],
    ) -> (Option<Duration>, Vec<(usize, Option<Duration>)>) {
        let mut progress = None;
        let mut caught: Vec<(usize, Option<Duration>)> =
            lagging.iter().map(|&n| (n, None)).collect();
        while healed.elapsed() < self.wait_max {
            if progress.is_none() {
                progress = (0..NODES)
                    .filter_map(|n| self.observer.head(n))
                    .filter(|h| h.at > healed && h.height > base)
                    .map(|h| h.at - healed)
                    .min();
            }
            for (node, done) in caught.iter_mut().filter(|(_, d)| d.is_none()) {
                if let Some(h) = self.observer.head(*node)
                    && h.at > healed
                    && h.height >= target
                {
                    *done = Some(h.at - healed);
                }
            }
            if progress.is_some() && caught.iter().all(|(_, d)| d.is_some()) {
                break;
            }
            tokio::time::sleep(POLL).await;
        }
        (progress, caught)
    }

    fn judge(&self, o: &Outcome, target: u64) {
        let limit = self.limit;
        let late = |d: Option<Duration>| d.is_none_or(|d| d > limit);
        if late(o.progress) {
            self.violations.record(format!(
                "{}: no commit within {limit:?} of the heal (measured {})",
                o.description,
                crate::report::seconds(o.progress)
            ));
        }
        for (node, d) in &o.catch_up {
            if late(*d) {
                self.violations.record(format!(
                    "{}: n{node} did not reach height {target} within {limit:?} of the heal (measured {})",
                    o.description,
                    crate::report::seconds(*d)
                ));
            }
        }
        // Three of four validators are a quorum: one faulty node must not
        // stop the chain. Judged only when the fault held a few seconds
        // past the grace, so that a slow view change still fits.
        if o.kind.keeps_quorum() && o.hold >= LIVENESS_HOLD_MIN && o.commits_during == 0 {
            self.violations.record(format!(
                "{}: no block committed in {} s although three validators could vote",
                o.description,
                (o.hold - GRACE).as_secs()
            ));
        }
        if !o.kind.keeps_quorum() && o.commits_during > 0 {
            self.violations.record(format!(
                "{}: {} blocks were committed while no quorum could vote",
                o.description, o.commits_during
            ));
        }
    }
}
