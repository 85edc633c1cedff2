//! `lotline doctor`: checks a node's config, keys, folder, block log, sled,
//! peers and clock, and says what is wrong in plain words.
//!
//! It is safe beside a running node: files are opened for reading only
//! (the block log and index through `record_file::read_records_from`),
//! sled is opened only when the node's API does not answer (sled locks its
//! folder), and the one write is a probe file in the data folder that is
//! removed at once. Each check adds [`Finding`]s; any [`Level::Problem`]
//! makes the command exit 1.

mod files;
mod folder;
mod peers;

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use lotline_genesis::{Genesis, History};

use crate::config::NodeConfig;

/// How long a peer gets to accept a TCP connection or answer HTTP.
pub const PEER_TIMEOUT: Duration = Duration::from_secs(2);
/// Clock difference to a peer beyond which the clock is a problem. Header
/// timestamps and the audit trail's times come from this clock; consensus
/// does not read it, so only a large skew matters.
pub const CLOCK_SKEW_MAX: Duration = Duration::from_secs(5);
/// Free space below which the data folder's disk is a problem.
pub const FREE_BYTES_MIN: u64 = 1024 * 1024 * 1024;
/// Free space below this share of the disk, in percent, is noted.
pub const FREE_PERCENT_MIN: u64 = 5;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Ok,
    /// Worth knowing, nothing to fix (a rebuild the next start does, a
    /// check that could not run).
    Note,
    Problem,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub level: Level,
    /// What was checked: `config`, `genesis`, `node key`, `data folder`,
    /// `disk`, `block log`, `sled`, `peer <org>`, `clock`, ...
    pub area: String,
    pub text: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tag = match self.level {
            Level::Ok => "ok     ",
            Level::Note => "note   ",
            Level::Problem => "PROBLEM",
        };
        write!(f, "{tag} {}: {}", self.area, self.text)
    }
}

/// Everything the checks found, in the order they ran.
#[derive(Debug, Default)]
pub struct Report {
    pub findings: Vec<Finding>,
}

impl Report {
    fn add(&mut self, level: Level, area: impl Into<String>, text: impl Into<String>) {
        self.findings.push(Finding {
            level,
            area: area.into(),
            text: text.into(),
        });
    }

    pub fn ok(&mut self, area: impl Into<String>, text: impl Into<String>) {
        self.add(Level::Ok, area, text);
    }

    pub fn note(&mut self, area: impl Into<String>, text: impl Into<String>) {
        self.add(Level::Note, area, text);
    }

    pub fn problem(&mut self, area: impl Into<String>, text: impl Into<String>) {
        self.add(Level::Problem, area, text);
    }

    pub fn problems(&self) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(|f| f.level == Level::Problem)
    }

    pub fn has_problems(&self) -> bool {
        self.problems().next().is_some()
    }
}

/// The chain's validators by height, to check the block log against and
/// to know which peers the chain admits: the running node's membership
/// history (verified from the genesis), or a stopped node's own index; the
/// genesis alone if neither is there (a chain whose validators changed by
/// vote then fails the finality check, and the note says why). With it,
/// the height it holds the changes through (`None` for the genesis alone).
async fn history(
    config: &NodeConfig,
    genesis: &Genesis,
    running: bool,
    report: &mut Report,
) -> (Arc<History>, Option<u64>) {
    let genesis = Arc::new(genesis.clone());
    let area = "validator sets";
    let found = if running {
        peers::membership_history(config, genesis.clone())
            .await
            .map(Some)
    } else {
        crate::store::stopped_history(&config.data_dir, genesis.clone()).map_err(|e| e.to_string())
    };
    let why = match found {
        Ok(Some((history, height))) => {
            report.ok(
                area,
                format!(
                    "{} governance transaction(s) on the chain; the log is checked against each epoch's validators",
                    history.entries().len()
                ),
            );
            return (history, Some(height));
        }
        Ok(None) => "no index to read them from".to_owned(),
        Err(error) => error,
    };
    report.note(
        area,
        format!("checked against the genesis validators only ({why}); a chain whose validators changed by vote fails that check"),
    );
    (Arc::new(History::new(genesis)), None)
}

/// Runs every check for the node configured at `config_path`. `peer_urls`
/// are other nodes' API URLs for the clock check (the genesis names only
/// their libp2p addresses).
pub async fn run(config_path: &Path, peer_urls: &[String]) -> Report {
    let mut report = Report::default();
    let config = match NodeConfig::load(config_path) {
        Ok(config) => {
            report.ok("config", format!("{} is valid", config_path.display()));
            config
        }
        Err(error) => {
            report.problem("config", format!("{error}; nothing else can be checked"));
            return report;
        }
    };
    let Some(genesis) = files::check_genesis(&config, &mut report) else {
        return report;
    };
    let me = files::check_keys(&config, &genesis, &mut report);
    let running = peers::check_running(&config, &mut report).await;
    let (history, height) = history(&config, &genesis, running, &mut report).await;
    let folder_config = config.clone();
    let folder_history = history.clone();
    let folder = tokio::task::spawn_blocking(move || {
        let mut report = Report::default();
        folder::check(&folder_config, &*folder_history, running, &mut report);
        report
    })
    .await;
    match folder {
        Ok(folder) => report.findings.extend(folder.findings),
        Err(error) => report.problem("data folder", format!("the check stopped: {error}")),
    }
    let admitted = peers::Admitted {
        genesis: &genesis,
        history: &history,
        height: height.unwrap_or(0),
    };
    if let Some(me) = &me {
        files::check_node_role(me, &admitted, height.is_some(), &mut report);
    }
    peers::check_peers(&config, &admitted, me, &mut report).await;
    peers::check_clock(peer_urls, &mut report).await;
    report
}
