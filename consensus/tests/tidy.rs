//! Tidy (TigerBeetle `src/tidy.zig`): the engine stays a pure state machine.
//! Fails if any source file of the crate names an I/O runtime, a clock, a
//! source of randomness, or a hash-ordered collection.

use std::fs;
use std::path::{Path, PathBuf};

/// Written in pieces so that this file does not trip its own check if it
/// is ever moved under `src/`.
const BANNED: [[&str; 2]; 8] = [
    ["to", "kio"],
    ["lib", "p2p"],
    ["sl", "ed"],
    ["Instant::", "now"],
    ["SystemTime::", "now"],
    ["rand", "::"],
    ["Hash", "Map"],
    ["Hash", "Set"],
];

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = fs::read_dir(dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display()));
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn the_engine_names_no_io_clock_randomness_or_hash_order() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    sources(&root.join("src"), &mut files);
    assert!(files.len() >= 8, "tidy found only {} files", files.len());
    let mut problems = Vec::new();
    for file in &files {
        let text = fs::read_to_string(file).unwrap();
        for (number, line) in text.lines().enumerate() {
            for [a, b] in BANNED {
                let banned = format!("{a}{b}");
                if line.contains(&banned) {
                    problems.push(format!(
                        "{}:{}: names `{banned}`",
                        file.display(),
                        number + 1
                    ));
                }
            }
        }
    }
    let manifest = fs::read_to_string(root.join("Cargo.toml")).unwrap();
    for [a, b] in BANNED.iter().take(3) {
        let banned = format!("{a}{b}");
        if manifest.contains(&banned) {
            problems.push(format!("Cargo.toml depends on `{banned}`"));
        }
    }
    assert!(
        problems.is_empty(),
        "the consensus engine must stay sans-IO:\n{}",
        problems.join("\n")
    );
}
