//! `lotline export`, `lotline export verify` and `lotline sql` as an
//! operator runs them: on a stopped node's data directory (the generated
//! demo story committed through the real commit path).
#![cfg(feature = "analytics")]

use std::path::Path;
use std::process::{Command, Output};

use lotline_node::NodeConfig;
use lotline_sim::workload::Scale;

fn lotline(args: &[&str], paths: &[&Path]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_lotline"));
    command.args(args);
    for path in paths {
        command.arg(path);
    }
    command.output().expect("run lotline")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Goal: the commands catch the projection up, export for one org, verify
/// the export (exit 0), refuse an edited one (exit 1) and answer SQL or
/// name why not. Method: run the real binary.
#[test]
fn export_verify_and_sql_commands() {
    let dir = tempfile::tempdir().unwrap();
    let loaded = lotline_node::bulk_load::load(dir.path(), Scale::demo(), 8, |_, _| {}).unwrap();
    let events = loaded.events;
    drop(loaded);
    let consortium = dir.path().join("consortium");
    let genesis = consortium.join(lotline_genesis::init::GENESIS_FILE);
    let data_dir = NodeConfig::load(&consortium.join("nodes/manufacturer.toml"))
        .unwrap()
        .data_dir;
    let to = dir.path().join("export-supplier");

    let out = lotline(
        &["export", "--org", "supplier", "--data-dir"],
        &[
            &data_dir,
            Path::new("--genesis"),
            &genesis,
            Path::new("--to"),
            &to,
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("reader supplier"),
        "{}",
        text(&out.stdout)
    );

    let out = lotline(&["export", "verify"], &[&to]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    assert!(text(&out.stdout).starts_with("OK"));

    let out = lotline(
        &["sql", "--data-dir"],
        &[&data_dir, Path::new("SELECT count(*) AS n FROM events")],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answer["rows"][0]["n"], serde_json::json!(events));

    let out = lotline(
        &["sql", "--data-dir"],
        &[
            &data_dir,
            Path::new("INSERT INTO events SELECT * FROM events"),
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("sql-not-read-only"),
        "{}",
        text(&out.stderr)
    );

    // Edit one byte of one exported file.
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(to.join("manifest.json")).unwrap()).unwrap();
    let file = to.join(manifest["files"][0]["path"].as_str().unwrap());
    let mut bytes = std::fs::read(&file).unwrap();
    bytes[4] ^= 0x20;
    std::fs::write(&file, bytes).unwrap();
    let out = lotline(&["export", "verify"], &[&to]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stdout).contains("FAIL"), "{}", text(&out.stdout));
}
