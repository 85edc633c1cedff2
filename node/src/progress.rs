//! Progress of long operations (backup, restore, the block log's full
//! verify, re-indexing sled at start): a bar on stderr when it is a
//! terminal, a log line every [`LOG_EVERY`] otherwise.
//!
//! Nothing is shown for an operation that ends within [`QUIET_FOR`], so
//! quick runs (and tests) stay silent. No dependency: one line of text
//! redrawn with `\r` is all a bar needs, and a log shipper reads the
//! periodic lines (`what`, `done`, `total`, `percent` fields).

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// Nothing is shown before an operation has run this long.
pub const QUIET_FOR: Duration = Duration::from_secs(1);
/// Least time between two redraws of the bar.
const REDRAW_EVERY: Duration = Duration::from_millis(200);
/// Least time between two log lines (not a terminal).
pub const LOG_EVERY: Duration = Duration::from_secs(5);
/// Characters of the bar itself.
const BAR_WIDTH: u64 = 30;

/// What is counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    Bytes,
    Blocks,
}

/// One operation's progress. Call [`advance`](Self::advance) as work is
/// done and [`finish`](Self::finish) at the end.
#[derive(Debug)]
pub struct Progress {
    what: &'static str,
    unit: Unit,
    total: u64,
    done: u64,
    terminal: bool,
    started: Instant,
    shown: Option<Instant>,
}

impl Progress {
    pub fn new(what: &'static str, total: u64, unit: Unit) -> Progress {
        Progress {
            what,
            unit,
            total,
            done: 0,
            terminal: std::io::stderr().is_terminal(),
            started: Instant::now(),
            shown: None,
        }
    }

    pub fn advance(&mut self, n: u64) {
        self.done = self.done.saturating_add(n);
        let now = Instant::now();
        if now.duration_since(self.started) < QUIET_FOR {
            return;
        }
        let every = if self.terminal {
            REDRAW_EVERY
        } else {
            LOG_EVERY
        };
        if self.shown.is_some_and(|at| now.duration_since(at) < every) {
            return;
        }
        self.shown = Some(now);
        self.show();
    }

    /// Shows the final state, if anything was shown before.
    pub fn finish(&mut self) {
        if self.shown.is_none() {
            return;
        }
        self.show();
        if self.terminal {
            eprintln!();
        }
        self.shown = None;
    }

    fn show(&self) {
        let percent = (self.done.min(self.total) * 100)
            .checked_div(self.total)
            .unwrap_or(100);
        if self.terminal {
            let filled = (self.done.min(self.total) * BAR_WIDTH)
                .checked_div(self.total)
                .unwrap_or(BAR_WIDTH);
            let bar: String = (0..BAR_WIDTH)
                .map(|i| if i < filled { '#' } else { '-' })
                .collect();
            let mut err = std::io::stderr().lock();
            let _ = write!(
                err,
                "\r{} [{bar}] {percent:>3}% {} / {}",
                self.what,
                self.amount(self.done),
                self.amount(self.total)
            );
            let _ = err.flush();
        } else {
            tracing::info!(
                what = self.what,
                done = self.done,
                total = self.total,
                percent,
                "progress"
            );
        }
    }

    fn amount(&self, n: u64) -> String {
        match self.unit {
            Unit::Bytes => format!("{:.1} MiB", n as f64 / (1024.0 * 1024.0)),
            Unit::Blocks => format!("{n} blocks"),
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        // An operation that failed half-way still ends the bar's line.
        if self.terminal && self.shown.is_some() {
            eprintln!();
        }
    }
}
