//! The `lotline node` processes: spawn (inside a namespace or on
//! loopback), signal, restart, and reap on every path.
//!
//! Each node is a direct child of the harness (`ip netns exec` execs the
//! node in place, so the child's pid is the node's). Dropping a
//! [`NodeProcess`] kills and waits for it; the pids are also written to a
//! file so that a run started after a crashed one (whose destructors never
//! ran) reaps the nodes it left.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use rustix::process::{Pid, Signal, kill_process};

/// One validator process and how to start it again.
#[derive(Debug)]
pub struct NodeProcess {
    pub org: String,
    lotline: PathBuf,
    config: PathBuf,
    pub log: PathBuf,
    namespace: Option<String>,
    child: Option<Child>,
    frozen: bool,
}

impl NodeProcess {
    pub fn new(
        org: String,
        lotline: PathBuf,
        config: PathBuf,
        log: PathBuf,
        namespace: Option<String>,
    ) -> NodeProcess {
        NodeProcess {
            org,
            lotline,
            config,
            log,
            namespace,
            child: None,
            frozen: false,
        }
    }

    /// Starts the node on its data; its stdout and stderr are appended to
    /// its log file.
    pub fn spawn(&mut self) -> Result<()> {
        let log = File::options()
            .create(true)
            .append(true)
            .open(&self.log)
            .with_context(|| format!("opening {}", self.log.display()))?;
        let mut command = match &self.namespace {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).arg(&self.lotline);
                c
            }
            None => Command::new(&self.lotline),
        };
        command
            .arg("node")
            .arg("--config")
            .arg(&self.config)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .env(
                "LOTLINE_LOG",
                std::env::var("LOTLINE_LOG").unwrap_or_else(|_| "info".into()),
            );
        let child = command
            .spawn()
            .with_context(|| format!("starting {} node", self.org))?;
        self.child = Some(child);
        self.frozen = false;
        Ok(())
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    fn signal(&self, signal: Signal) -> Result<()> {
        let pid = self
            .pid()
            .and_then(|p| i32::try_from(p).ok())
            .and_then(Pid::from_raw)
            .with_context(|| format!("{} node is not running", self.org))?;
        kill_process(pid, signal).with_context(|| format!("signalling the {} node", self.org))
    }

    /// SIGKILL and reap: the node gets no chance to flush anything.
    pub fn kill(&mut self) -> Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill().context("SIGKILL")?;
            child.wait().context("reaping a killed node")?;
        }
        self.frozen = false;
        Ok(())
    }

    /// SIGSTOP: the process stays, its sockets stay open, nothing answers.
    pub fn freeze(&mut self) -> Result<()> {
        self.signal(Signal::STOP)?;
        self.frozen = true;
        Ok(())
    }

    /// SIGCONT after [`NodeProcess::freeze`].
    pub fn thaw(&mut self) -> Result<()> {
        self.signal(Signal::CONT)?;
        self.frozen = false;
        Ok(())
    }

    /// The exit status if the node ended on its own (not by the harness).
    pub fn exited(&mut self) -> Option<ExitStatus> {
        let status = self.child.as_mut()?.try_wait().ok()??;
        self.child = None;
        Some(status)
    }

    /// SIGTERM (after SIGCONT if frozen): the node stops accepting,
    /// commits what it admitted and exits.
    pub fn request_stop(&mut self) {
        if self.child.is_none() {
            return;
        }
        if self.frozen {
            let _ = self.thaw();
        }
        let _ = self.signal(Signal::TERM);
    }

    /// Waits until `deadline` for the node to exit, then SIGKILLs it.
    /// Returns the exit status of a node that stopped in time.
    pub fn wait_stopped(&mut self, deadline: Instant) -> Option<ExitStatus> {
        let child = self.child.as_mut()?;
        let mut status = None;
        while Instant::now() < deadline {
            if let Ok(Some(s)) = child.try_wait() {
                status = Some(s);
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        if status.is_some() {
            self.child = None;
        } else {
            let _ = self.kill();
        }
        status
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Writes the running nodes' pids with their config paths to `path`.
pub fn record_pids(path: &Path, nodes: &[NodeProcess]) -> Result<()> {
    let text: String = nodes
        .iter()
        .filter_map(|n| n.pid().map(|pid| format!("{pid} {}\n", n.config.display())))
        .collect();
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// Kills the nodes a previous run recorded in `path`, if they still run
/// the recorded config (a pid reused by another program is left alone).
pub fn reap_recorded(path: &Path) {
    let Ok(text) = std::fs::read_to_string(path) else {
        return;
    };
    for line in text.lines() {
        let Some((pid, config)) = line.split_once(' ') else {
            continue;
        };
        let Ok(pid) = pid.parse::<i32>() else {
            continue;
        };
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(" node --config ")
            && cmdline.contains(config)
            && let Some(pid) = Pid::from_raw(pid)
        {
            let _ = kill_process(pid, Signal::KILL);
        }
    }
    let _ = std::fs::remove_file(path);
}

/// The last `lines` lines of a log file, for error messages.
pub fn log_tail(path: &Path, lines: usize) -> String {
    let Ok(mut file) = File::open(path) else {
        return format!("({} is not readable)", path.display());
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = file.seek(SeekFrom::Start(len.saturating_sub(64 * 1024)));
    let mut text = String::new();
    let mut bytes = Vec::new();
    if file.read_to_end(&mut bytes).is_ok() {
        text = String::from_utf8_lossy(&bytes).into_owned();
    }
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// The four node processes, with their pids recorded for crash cleanup.
#[derive(Debug)]
pub struct Cluster {
    pub nodes: Vec<NodeProcess>,
    pid_file: PathBuf,
}

impl Cluster {
    pub fn new(nodes: Vec<NodeProcess>, pid_file: PathBuf) -> Cluster {
        Cluster { nodes, pid_file }
    }

    pub fn start_all(&mut self) -> Result<()> {
        for node in &mut self.nodes {
            node.spawn()?;
        }
        self.record_pids()
    }

    /// Restarts node `i` on its data.
    pub fn restart(&mut self, i: usize) -> Result<()> {
        self.nodes[i].spawn()?;
        self.record_pids()
    }

    pub fn record_pids(&self) -> Result<()> {
        record_pids(&self.pid_file, &self.nodes)
    }

    /// Nodes that ended without being told to, with the tail of their log.
    pub fn unexpected_exits(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        for (i, node) in self.nodes.iter_mut().enumerate() {
            if let Some(status) = node.exited() {
                out.push(format!(
                    "n{i} ({}) exited on its own ({status}); last log lines:\n{}",
                    node.org,
                    log_tail(&node.log, 20)
                ));
            }
        }
        out
    }

    /// SIGTERM to every node at once (a node exits 0 after committing
    /// what it admitted), SIGKILL after `grace`. One line per node.
    pub fn shutdown(&mut self, grace: Duration) -> Vec<String> {
        for node in &mut self.nodes {
            node.request_stop();
        }
        let deadline = Instant::now() + grace;
        let lines = self
            .nodes
            .iter_mut()
            .enumerate()
            .map(|(i, node)| match node.wait_stopped(deadline) {
                Some(status) => format!("n{i} ({}): {status}", node.org),
                None => format!(
                    "n{i} ({}): killed after {grace:?} without exiting",
                    node.org
                ),
            })
            .collect();
        let _ = std::fs::remove_file(&self.pid_file);
        lines
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // Each NodeProcess kills and reaps itself; the pid file is then stale.
        for node in &mut self.nodes {
            let _ = node.kill();
        }
        let _ = std::fs::remove_file(&self.pid_file);
    }
}
