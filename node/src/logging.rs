//! How the `lotline` binary logs: to stderr, as text or JSON lines, in
//! colour only on a terminal, and never flooding.
//!
//! - `LOTLINE_LOG` is the filter (`info,sled=warn` by default; the
//!   `tracing_subscriber::EnvFilter` syntax, e.g. `debug` or
//!   `info,lotline_node::net=debug`).
//! - `LOTLINE_LOG_FORMAT=json` writes one JSON object per line for log
//!   shippers; `text` (the default) is for people. Colour escapes are written
//!   only when stderr is a terminal and `NO_COLOR` is unset, so a log file or
//!   a pipe holds plain text.
//! - A statement that fires over and over (a frozen peer can make one fire
//!   thousands of times a second) is written at most [`REPEATS_PER_WINDOW`]
//!   times per [`WINDOW`]; once per window a single line says how many were
//!   left out, so the count is never lost.
//! - libp2p's gossipsub logs whole messages in its warnings ("Send Queue
//!   full" with the RPC body), so its target is held at `error` unless the
//!   operator names it in `LOTLINE_LOG`. The node reports slow peers itself,
//!   without bodies (`net::task`, the `SlowPeer` event).

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tracing::callsite::Identifier;
use tracing::{Level, Metadata};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer as _;
use tracing_subscriber::layer::{Context, Filter, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;

/// The filter when `LOTLINE_LOG` is unset or unparsable.
pub const DEFAULT_FILTER: &str = "info,sled=warn";
/// Targets whose log lines carry message bodies at `warn` and below.
const NOISY_TARGETS: [&str; 1] = ["libp2p_gossipsub"];
/// How often one statement may be written per window.
pub const REPEATS_PER_WINDOW: u32 = 10;
/// The window the repeat limit counts in.
pub const WINDOW: Duration = Duration::from_secs(10);

/// The output format, from `LOTLINE_LOG_FORMAT`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

impl Format {
    /// `text` or `json` (any case); anything else is an error naming the value.
    pub fn parse(value: &str) -> Result<Format, String> {
        match value.trim().to_ascii_lowercase().as_str() {
            "" | "text" => Ok(Format::Text),
            "json" => Ok(Format::Json),
            other => Err(format!(
                "LOTLINE_LOG_FORMAT must be `text` or `json`, not `{other}`"
            )),
        }
    }
}

/// The filter for `directives` (the value of `LOTLINE_LOG`, if any): the
/// operator's directives, plus `error` for the noisy targets they did not name.
pub fn filter(directives: Option<&str>) -> EnvFilter {
    let mut text = directives
        .filter(|d| EnvFilter::try_new(d).is_ok())
        .unwrap_or(DEFAULT_FILTER)
        .to_owned();
    for target in NOISY_TARGETS {
        if !text.contains(target) {
            text.push_str(&format!(",{target}=error"));
        }
    }
    EnvFilter::try_new(&text).unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER))
}

/// Installs the process's subscriber from the environment. A bad
/// `LOTLINE_LOG_FORMAT` is reported on stderr and text is used: logging must
/// never be the reason a node does not start.
pub fn init() {
    let format = match Format::parse(&std::env::var("LOTLINE_LOG_FORMAT").unwrap_or_default()) {
        Ok(format) => format,
        Err(reason) => {
            eprintln!("warning: {reason}; logging as text");
            Format::Text
        }
    };
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let repeats = Repeats::new(REPEATS_PER_WINDOW, WINDOW);
    install(
        filter(std::env::var("LOTLINE_LOG").ok().as_deref()),
        format,
        ansi,
        repeats.clone(),
        std::io::stderr,
    );
    // Reports what the repeat limit left out, once per window, from outside
    // any logging call (a filter must not log).
    let _ = std::thread::Builder::new()
        .name("log-repeats".into())
        .spawn(move || {
            loop {
                std::thread::sleep(WINDOW);
                repeats.report_suppressed();
            }
        });
}

/// Builds and installs the subscriber; `writer` makes each line's writer.
/// Returns false when a subscriber was already installed.
pub fn install<W>(
    filter: EnvFilter,
    format: Format,
    ansi: bool,
    repeats: Repeats,
    writer: W,
) -> bool
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    let registry = tracing_subscriber::registry().with(filter);
    match format {
        Format::Text => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_ansi(ansi)
                    .with_writer(writer)
                    .with_filter(repeats),
            )
            .try_init()
            .is_ok(),
        Format::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_ansi(false)
                    .with_writer(writer)
                    .with_filter(repeats),
            )
            .try_init()
            .is_ok(),
    }
}

/// The repeat limit: a per-layer filter counting events per callsite in
/// fixed windows. Cheap when quiet (one map lookup under a mutex per
/// event written); bounded by the number of callsites in the binary.
#[derive(Clone)]
pub struct Repeats {
    inner: Arc<Mutex<RepeatState>>,
    max: u32,
    window: Duration,
}

impl std::fmt::Debug for Repeats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Repeats")
            .field("max", &self.max)
            .field("window", &self.window)
            .finish_non_exhaustive()
    }
}

struct RepeatState {
    by_callsite: HashMap<Identifier, Count>,
}

struct Count {
    since: Instant,
    written: u32,
    suppressed: u64,
    name: &'static str,
    target: &'static str,
}

impl Repeats {
    pub fn new(max: u32, window: Duration) -> Repeats {
        Repeats {
            inner: Arc::new(Mutex::new(RepeatState {
                by_callsite: HashMap::new(),
            })),
            max,
            window,
        }
    }

    /// Whether an event from `metadata` may be written now.
    fn admit(&self, metadata: &Metadata<'static>, now: Instant) -> bool {
        let mut state = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let count = state
            .by_callsite
            .entry(metadata.callsite())
            .or_insert(Count {
                since: now,
                written: 0,
                suppressed: 0,
                name: metadata.name(),
                target: metadata.target(),
            });
        if now.duration_since(count.since) >= self.window {
            count.since = now;
            count.written = 0;
        }
        if count.written < self.max {
            count.written += 1;
            true
        } else {
            count.suppressed += 1;
            false
        }
    }

    /// Takes the counts of lines left out since the last call.
    pub fn take_suppressed(&self) -> Vec<(&'static str, &'static str, u64)> {
        let mut state = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        state
            .by_callsite
            .values_mut()
            .filter(|c| c.suppressed > 0)
            .map(|c| (c.target, c.name, std::mem::take(&mut c.suppressed)))
            .collect()
    }

    /// Logs one line per statement whose repeats were left out.
    pub fn report_suppressed(&self) {
        for (target, statement, suppressed) in self.take_suppressed() {
            tracing::warn!(
                target: "lotline::log",
                from = target,
                statement,
                suppressed,
                "repeated log lines left out"
            );
        }
    }
}

impl<S> Filter<S> for Repeats {
    fn enabled(&self, _: &Metadata<'_>, _: &Context<'_, S>) -> bool {
        true
    }

    fn event_enabled(&self, event: &tracing::Event<'_>, _: &Context<'_, S>) -> bool {
        let metadata = event.metadata();
        // Debug and trace are asked for on purpose: written in full.
        if *metadata.level() > Level::INFO {
            return true;
        }
        self.admit(metadata, Instant::now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Captures what the subscriber writes.
    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Capture {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("lock").extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'w> tracing_subscriber::fmt::MakeWriter<'w> for Capture {
        type Writer = Capture;
        fn make_writer(&'w self) -> Capture {
            self.clone()
        }
    }

    fn lines(capture: &Capture) -> Vec<String> {
        String::from_utf8(capture.0.lock().expect("lock").clone())
            .expect("utf-8")
            .lines()
            .map(str::to_owned)
            .collect()
    }

    fn subscriber(format: Format, repeats: Repeats, capture: Capture) -> impl tracing::Subscriber {
        let registry = tracing_subscriber::registry().with(filter(Some("info")));
        let layer = tracing_subscriber::fmt::layer()
            .with_ansi(false)
            .with_writer(capture);
        match format {
            Format::Text => registry.with(layer.with_filter(repeats).boxed()),
            Format::Json => registry.with(layer.json().with_filter(repeats).boxed()),
        }
    }

    #[test]
    fn a_flood_of_one_warning_is_cut_to_the_limit_and_the_rest_is_counted() {
        let capture = Capture::default();
        let repeats = Repeats::new(REPEATS_PER_WINDOW, Duration::from_secs(3600));
        tracing::subscriber::with_default(
            subscriber(Format::Text, repeats.clone(), capture.clone()),
            || {
                for i in 0..8_270 {
                    tracing::warn!(i, "Send Queue full");
                }
                tracing::warn!("another statement is not affected");
                repeats.report_suppressed();
            },
        );
        let lines = lines(&capture);
        let floods = lines
            .iter()
            .filter(|l| l.contains("Send Queue full"))
            .count();
        assert_eq!(floods, REPEATS_PER_WINDOW as usize);
        assert!(lines.iter().any(|l| l.contains("another statement")));
        let summary = lines
            .iter()
            .find(|l| l.contains("repeated log lines left out"))
            .expect("a summary line");
        assert!(summary.contains("suppressed=8260"), "{summary}");
        assert!(repeats.take_suppressed().is_empty(), "counted once");
    }

    #[test]
    fn the_limit_starts_again_in_the_next_window() {
        let repeats = Repeats::new(2, Duration::from_millis(50));
        let capture = Capture::default();
        tracing::subscriber::with_default(
            subscriber(Format::Text, repeats, capture.clone()),
            || {
                for round in 0..2 {
                    for _ in 0..5 {
                        tracing::warn!(round, "again");
                    }
                    std::thread::sleep(Duration::from_millis(60));
                }
            },
        );
        assert_eq!(lines(&capture).len(), 4);
    }

    #[test]
    fn json_lines_parse_and_carry_level_message_and_fields() {
        let capture = Capture::default();
        tracing::subscriber::with_default(
            subscriber(
                Format::Json,
                Repeats::new(REPEATS_PER_WINDOW, WINDOW),
                capture.clone(),
            ),
            || tracing::info!(height = 7u64, "block committed"),
        );
        let lines = lines(&capture);
        assert_eq!(lines.len(), 1);
        let line: serde_json::Value = serde_json::from_str(&lines[0]).expect("one JSON object");
        assert_eq!(line["level"], "INFO");
        assert_eq!(line["fields"]["message"], "block committed");
        assert_eq!(line["fields"]["height"], 7);
    }

    #[test]
    fn gossipsub_warnings_with_bodies_are_held_back_unless_asked_for() {
        let quiet = filter(Some("info"));
        assert!(
            quiet.to_string().contains("libp2p_gossipsub=error"),
            "{quiet}"
        );
        let default = filter(None);
        assert!(default.to_string().contains("libp2p_gossipsub=error"));
        let asked = filter(Some("info,libp2p_gossipsub=debug"));
        assert!(
            !asked.to_string().contains("libp2p_gossipsub=error"),
            "{asked}"
        );
    }

    #[test]
    fn formats_parse_and_a_wrong_one_is_named() {
        assert_eq!(Format::parse(""), Ok(Format::Text));
        assert_eq!(Format::parse("JSON"), Ok(Format::Json));
        let error = Format::parse("xml").expect_err("refused");
        assert!(error.contains("`xml`"), "{error}");
    }
}
