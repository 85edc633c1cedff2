//! `lotline doctor` on a real one-validator node: a healthy folder (with
//! the node running and stopped) has no problem, and each of three broken
//! folders is named in plain words: a key file others can read, a damaged
//! head block in the log, a data folder anyone may write.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::support::{Consortium, client, commissioning};
use lotline_core::api::{Status, Wait};
use lotline_node::ops::doctor::{self, Level, Report};

fn config_file(c: &Consortium) -> PathBuf {
    c.dir.path().join("nodes").join("manufacturer.toml")
}

fn problems(report: &Report) -> Vec<String> {
    report.problems().map(ToString::to_string).collect()
}

fn finding<'a>(report: &'a Report, area: &str) -> &'a doctor::Finding {
    report
        .findings
        .iter()
        .find(|f| f.area == area)
        .unwrap_or_else(|| panic!("no {area} finding in {:#?}", report.findings))
}

fn set_mode(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_passes_a_healthy_node_and_names_what_is_broken() {
    let c = Consortium::new();
    let node = c.start().await;
    let envelopes: Vec<_> = (0..6)
        .map(|i| c.attest("supplier", commissioning(&format!("doctor-{i}"))))
        .collect();
    for r in client(&node)
        .submit_batch(&envelopes, Wait::Committed)
        .await
        .expect("batch")
        .results
    {
        assert_eq!(r.status, Status::Committed);
    }

    // Healthy and running: the config file names the node's real port.
    let path = config_file(&c);
    let text = std::fs::read_to_string(&path).expect("config");
    let live = c.dir.path().join("nodes").join("live.toml");
    std::fs::write(
        &live,
        text.replace("127.0.0.1:0", &node.api_addr.to_string()),
    )
    .expect("write");
    let report = doctor::run(&live, &[node.url()]).await;
    assert!(!report.has_problems(), "{:#?}", report.findings);
    assert!(finding(&report, "node").text.starts_with("running"));
    assert_eq!(
        finding(&report, "sled").level,
        Level::Note,
        "sled untouched while running"
    );
    assert_eq!(finding(&report, "clock").level, Level::Ok);
    // The chain's validator sets come from the running node's verified
    // membership history (from the stopped node's index below).
    assert_eq!(finding(&report, "validator sets").level, Level::Ok);
    node.shutdown().await;

    // Healthy and stopped: sled is opened and its layout read.
    let report = doctor::run(&path, &[]).await;
    assert!(!report.has_problems(), "{:#?}", report.findings);
    // (`disk` may be a note on a nearly full test machine; never a problem here.)
    for area in [
        "config",
        "genesis",
        "node key",
        "capture key",
        "data folder",
        "peers",
        "validator sets",
    ] {
        assert_eq!(finding(&report, area).level, Level::Ok, "{area}");
    }
    assert!(finding(&report, "block log").text.starts_with("height "));
    assert_eq!(finding(&report, "sled").level, Level::Ok);

    // Broken 1: the node key readable by others.
    set_mode(&c.config.node_key, 0o644);
    let report = doctor::run(&path, &[]).await;
    let found = problems(&report);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(found[0].contains("node key"), "{found:#?}");
    set_mode(&c.config.node_key, 0o600);

    // Broken 2: the head block of the log damaged (a bad copy, a bad disk).
    let log = c.config.data_dir.join("blocks.log");
    let mut bytes = std::fs::read(&log).expect("log");
    let at = bytes.len() - 20;
    bytes[at] ^= 0x5a;
    std::fs::write(&log, &bytes).expect("write");
    let report = doctor::run(&path, &[]).await;
    let found = problems(&report);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(
        found[0].contains("block log") && found[0].contains("restore"),
        "{found:#?}"
    );
    bytes[at] ^= 0x5a;
    std::fs::write(&log, &bytes).expect("write");
    assert!(!doctor::run(&path, &[]).await.has_problems());

    // Broken 3: a data folder any user may write.
    set_mode(&c.config.data_dir, 0o777);
    let report = doctor::run(&path, &[]).await;
    let found = problems(&report);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(found[0].contains("any user"), "{found:#?}");
    set_mode(&c.config.data_dir, 0o755);
}

/// Every file of a data folder, by name, with its bytes (sled's folder
/// left out: it is derived and rebuilt).
fn folder_bytes(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.is_file())
        .map(|p| {
            let name = p.file_name().expect("name").to_string_lossy().into_owned();
            (name, std::fs::read(&p).expect("read"))
        })
        .collect()
}

/// Goal: a node meeting a storage format it does not know (a folder written
/// by a newer Lotline, as a rolling upgrade rolled back would leave) says
/// which file and which versions, changes nothing, and does not start; the
/// same folder with its own versions starts again with the same head.
/// Method: a real one-validator node commits and stops; the version field
/// of `blocks.log`, then of `votes.journal`, is set to a future version;
/// `Node::start` must fail naming the file and both versions, the folder
/// must be byte-identical afterwards, and `lotline doctor` names it too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storage_format_from_a_newer_version_is_named_and_nothing_changes() {
    let c = Consortium::new();
    let node = c.start().await;
    let envelopes: Vec<_> = (0..3)
        .map(|i| c.attest("supplier", commissioning(&format!("format-{i}"))))
        .collect();
    client(&node)
        .submit_batch(&envelopes, Wait::Committed)
        .await
        .expect("batch");
    let head = node.shared.head().height;
    node.shutdown().await;
    let data = c.config.data_dir.clone();

    for (file, ours) in [("blocks.log", 2u32), ("votes.journal", 2u32)] {
        let path = data.join(file);
        let original = std::fs::read(&path).expect("read");
        assert_eq!(
            original[8..12],
            ours.to_be_bytes(),
            "{file}'s version field"
        );
        let mut newer = original.clone();
        newer[8..12].copy_from_slice(&(ours + 1).to_be_bytes());
        std::fs::write(&path, &newer).expect("write");
        let before = folder_bytes(&data);

        let error = lotline_node::Node::start(&c.config)
            .await
            .expect_err("a newer format must not start")
            .to_string();
        let expected = format!(
            "format version {} is not supported (expected {ours})",
            ours + 1
        );
        assert!(error.contains(file) && error.contains(&expected), "{error}");
        assert_eq!(folder_bytes(&data), before, "{file}: nothing changed");

        let report = doctor::run(&config_file(&c), &[]).await;
        if file == "blocks.log" {
            let found = problems(&report);
            assert!(found.iter().any(|p| p.contains(&expected)), "{found:#?}");
        }
        std::fs::write(&path, &original).expect("write");
    }
    let node = c.start().await;
    assert_eq!(node.shared.head().height, head);
    node.shutdown().await;
}
