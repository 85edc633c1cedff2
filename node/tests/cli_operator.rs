//! What an operator meets first, through the real binary: `lotline genesis
//! init` makes every org a validator unless told otherwise (so the README's
//! four-process consortium starts), and the node's log is plain text in a
//! file or pipe, or JSON lines with `LOTLINE_LOG_FORMAT=json`.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::support::{ChildGuard, free_ports};
use lotline_genesis::Genesis;

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

/// Every file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d)
            .expect("read dir")
            .map_while(Result::ok)
        {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out
}

#[test]
fn secret_keys_never_reach_the_log_and_key_files_are_0600() {
    // Goal (issue 14): key files, including encryption keys, period keys
    // and a retired encryption key after a rotation, are mode 0600, and none of their
    // secrets appears in the node's log at the most verbose level while it
    // starts with `[private]` (current and retired key); nor does a private
    // field's value, while the node commits a record of its own org with
    // it sealed (`lotline attest --private`) and opens it at commit (its
    // measurements go into the quality series). Method: every `seed` of
    // every key file and the marker value are searched for in every log
    // line; the node must have logged that it started and the attest must
    // have succeeded with the field out of the public event, so the scan is
    // of a real start and a real commit.
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    // With a retention rule: period key files too, and the record below
    // is sealed to its key period, which the node opens at commit.
    init(
        dir.path(),
        &[
            "--validators",
            "manufacturer",
            "--retention-period-seconds",
            "31536000",
            "--retention-periods",
            "5",
        ],
    );
    let keys = dir.path().join("keys").join("manufacturer");
    let retired = keys.join("encryption-retired.key");
    lotline_genesis::keys::write_encryption_key(
        &retired,
        &lotline_core::private::EncryptionSecretKey::generate(),
    )
    .expect("retired key");
    let config = dir.path().join("nodes").join("manufacturer.toml");
    // `genesis init` configures `[private]` with the org's current key.
    let text = std::fs::read_to_string(&config).expect("config");
    assert!(text.contains("\n[private]\n"), "{text}");
    let text = text.replacen(
        "\n[private]\n",
        &format!(
            "\n[private]\nretired_keys = [{:?}]\n",
            retired.display().to_string()
        ),
        1,
    );
    std::fs::write(&config, text).expect("config");

    let mut seeds = Vec::new();
    for path in files_under(&dir.path().join("keys")) {
        if path.extension().and_then(|e| e.to_str()) != Some("key") {
            continue;
        }
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", path.display());
        let file: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).expect("key file")).expect("JSON");
        seeds.push(file["seed"].as_str().expect("seed").to_owned());
    }
    assert!(seeds.len() >= 9, "{} key files", seeds.len());
    assert!(
        files_under(&keys)
            .iter()
            .any(|p| p.starts_with(keys.join("periods"))),
        "no period key file was checked"
    );

    let marker = "MARKER-7c2d-log-private";
    let mut command = lotline();
    command
        .args(["node", "--config"])
        .arg(&config)
        .env("LOTLINE_LOG", "trace")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
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
    let mut lines = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while std::time::Instant::now() < deadline {
        match receive.recv_timeout(Duration::from_secs(5)) {
            Ok(line) => {
                let started = line.contains("node started");
                lines.push(line);
                if started {
                    attest_private(dir.path(), &config, marker);
                    // Three more seconds of the running node's log, then stop.
                    let stop_at = std::time::Instant::now() + Duration::from_secs(3);
                    while let Some(left) = stop_at.checked_duration_since(std::time::Instant::now())
                    {
                        match receive.recv_timeout(left) {
                            Ok(line) => lines.push(line),
                            Err(_) => break,
                        }
                    }
                    break;
                }
            }
            Err(_) => break,
        }
    }
    drop(node);
    assert!(
        lines.iter().any(|l| l.contains("node started")),
        "the node did not start: {lines:?}"
    );
    for line in &lines {
        for seed in &seeds {
            assert!(
                !line.contains(seed.as_str()),
                "a key's secret is in the log"
            );
        }
        assert!(!line.contains(marker), "a private value is in the log");
    }
}

/// `lotline attest` of a manufacturer inspection whose `lotline:quality`
/// (method `marker`, one measurement) is sealed, to the node of `config`;
/// checks the committed statement keeps it out of the public event.
fn attest_private(dir: &Path, config: &Path, marker: &str) {
    let node = lotline_node::NodeConfig::load(config).expect("config");
    let event = serde_json::json!({
        "type": "ObjectEvent", "eventTime": "2026-03-02T08:00:00Z", "eventTimeZoneOffset": "+08:00",
        "action": "ADD", "bizStep": "commissioning",
        "quantityList": [{"epcClass": "https://id.gs1.org/01/09506000134352/10/LOG-1", "quantity": 5.0, "uom": "KGM"}],
        "lotline:quality": {
            "kind": "inspection", "result": "pass", "method": marker,
            "measurements": [{"name": "tensile strength", "value": 44.25, "specMin": 40.0, "specMax": 50.0}]
        }
    });
    let event_path = dir.join("private-event.json");
    std::fs::write(&event_path, serde_json::to_vec(&event).expect("json")).expect("write");
    let receipt_path = dir.join("private-receipt.json");
    let out = lotline()
        .args(["attest", "--url"])
        .arg(format!("http://{}", node.listen))
        .args(["--org", "manufacturer", "--genesis"])
        .arg(dir.join("genesis.toml"))
        .arg("--key")
        .arg(dir.join("keys/manufacturer/client.key"))
        .arg("--event")
        .arg(&event_path)
        .args(["--private", "/lotline:quality", "--receipt-out"])
        .arg(&receipt_path)
        .output()
        .expect("run lotline attest");
    assert!(
        out.status.success(),
        "attest: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let receipt = std::fs::read(&receipt_path).expect("receipt");
    assert!(
        !receipt
            .windows(marker.len())
            .any(|w| w == marker.as_bytes())
    );
    let receipt = lotline_core::Receipt::from_json(&receipt).expect("receipt JSON");
    let statement =
        lotline_core::Statement::from_payload(&receipt.attestation.payload).expect("statement");
    assert!(
        statement.private.and_then(|p| p.key_period).is_some(),
        "sealed to a key period"
    );
}
