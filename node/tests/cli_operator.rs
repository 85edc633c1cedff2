//! What an operator meets first, through the real binary: `lotline genesis
//! init` makes every org a validator unless told otherwise (so the README's
//! four-process consortium starts), and the node's log is plain text in a
//! file or pipe, or JSON lines with `LOTLINE_LOG_FORMAT=json`.

mod support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use lotline_genesis::Genesis;
use support::{ChildGuard, free_ports};

fn lotline() -> Command {
    Command::new(env!("CARGO_BIN_EXE_lotline"))
}

/// `lotline genesis init` with the README's arguments, on free ports.
fn init(dir: &Path, extra: &[&str]) {
    let api = free_ports(8);
    let out = lotline()
        .args(["genesis", "init", "--dir"])
        .arg(dir)
        .args(["--chain-name", "acme-quality"])
        .args(["--api-port", &api.to_string()])
        .args(["--p2p-port", &(api + 4).to_string()])
        .args(extra)
        .output()
        .expect("run lotline genesis init");
    assert!(
        out.status.success(),
        "genesis init failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The first `lines` lines the node writes to stderr (a pipe), or fewer if
/// it writes no more within the time limit.
fn first_log_lines(config: &Path, format: Option<&str>, lines: usize) -> Vec<String> {
    let mut command = lotline();
    command
        .args(["node", "--config"])
        .arg(config)
        .env("LOTLINE_LOG", "debug")
        .env_remove("NO_COLOR")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    match format {
        Some(format) => command.env("LOTLINE_LOG_FORMAT", format),
        None => command.env_remove("LOTLINE_LOG_FORMAT"),
    };
    let mut node = ChildGuard::spawn(&mut command);
    let stderr = node.child().stderr.take().expect("piped stderr");
    let (send, receive) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if send.send(line).is_err() {
                return;
            }
        }
    });
    let mut out = Vec::new();
    while out.len() < lines {
        match receive.recv_timeout(Duration::from_secs(20)) {
            Ok(line) => out.push(line),
            Err(_) => break,
        }
    }
    drop(node); // killed and reaped; the reader thread ends at EOF
    out
}

#[test]
fn genesis_init_makes_every_org_a_validator_by_default() {
    let dir = tempfile::tempdir().expect("tempdir");
    init(dir.path(), &[]);
    let genesis = Genesis::load(dir.path().join("genesis.toml")).expect("genesis");
    let validators: Vec<&str> = genesis
        .validators()
        .iter()
        .map(|v| v.org.as_str())
        .collect();
    assert_eq!(
        validators,
        ["supplier", "manufacturer", "distributor", "regulator"]
    );
    for org in validators {
        let config = dir.path().join("nodes").join(format!("{org}.toml"));
        assert!(config.is_file(), "the README starts {}", config.display());
    }

    let some = tempfile::tempdir().expect("tempdir");
    init(some.path(), &["--validators", "manufacturer"]);
    let genesis = Genesis::load(some.path().join("genesis.toml")).expect("genesis");
    assert_eq!(genesis.validators().len(), 1);
    assert_eq!(genesis.validators()[0].org, "manufacturer");
}

#[test]
fn logs_to_a_pipe_carry_no_colour_escapes_and_json_lines_parse() {
    let dir = tempfile::tempdir().expect("tempdir");
    init(dir.path(), &["--validators", "manufacturer"]);
    let config = dir.path().join("nodes").join("manufacturer.toml");

    let text = first_log_lines(&config, None, 5);
    assert!(!text.is_empty(), "the node logged nothing");
    for line in &text {
        assert!(
            !line.contains('\u{1b}'),
            "ANSI escape in a piped log: {line:?}"
        );
    }
    assert!(
        text.iter()
            .any(|l| l.contains("INFO") || l.contains("DEBUG")),
        "{text:?}"
    );

    let json = first_log_lines(&config, Some("json"), 5);
    assert!(!json.is_empty(), "the node logged nothing");
    for line in &json {
        let value: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(value["level"].is_string(), "{line}");
        assert!(value["timestamp"].is_string(), "{line}");
        assert!(value["fields"].is_object(), "{line}");
    }
}
