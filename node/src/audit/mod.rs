//! The audit trail (R20, R25): who read, exported or administered what, and
//! when, in a hash-chained file that shows any edit, deletion or reordering.
//!
//! ```text
//! <data_dir>/audit/audit.jsonl   one JSON entry per line:
//! {"seq":0,"timeMs":..,"caller":"sup-reader","org":"supplier","client":"127.0.0.1",
//!  "action":"read","resource":"GET /v1/attestations/ab..","outcome":200,
//!  "prev":"00..00","hash":"9f.."}
//! ```
//! What is logged: every request made with a credential (reads, writes,
//! exports, metrics), and every refused token. Anonymous requests see only
//! the public projection and are not logged (they carry no identity, and
//! logging them would let anyone grow the file).
//!
//! Durability: an entry is fdatasync'ed before its request is answered
//! ([`log`]). Checking: [`verify`] (also `lotline audit verify`).
//! Export: `GET /v1/audit` for regulators, auditors and the node operator.
//!
//! Why JSON lines and not the store's record file: the file is meant to be
//! handed to a regulator and read with ordinary tools; the hash chain is
//! its checksum, and a torn last line is cut at open like a torn record.

pub mod entry;
pub mod log;
pub mod verify;

use std::path::{Path, PathBuf};

pub use entry::{Access, Action, Entry};
pub use log::{AuditError, AuditLog};
pub use verify::{Problem, Verdict, verify_bytes, verify_path};

/// The audit file's name in its directory.
pub const FILE_NAME: &str = "audit.jsonl";
/// The audit directory's name in a node's data dir.
pub const DIR_NAME: &str = "audit";

/// The audit file for `path`: the file itself, an audit dir, or a data dir.
pub fn resolve_file(path: &Path) -> PathBuf {
    if path.is_dir() {
        let in_data_dir = path.join(DIR_NAME).join(FILE_NAME);
        if in_data_dir.exists() {
            return in_data_dir;
        }
        return path.join(FILE_NAME);
    }
    path.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access(i: usize) -> Access {
        Access {
            caller: format!("cred-{i}"),
            org: Some("supplier".into()),
            client: Some("127.0.0.1".into()),
            action: if i.is_multiple_of(2) {
                Action::Read
            } else {
                Action::Export
            },
            resource: format!("GET /v1/attestations/{i}"),
            outcome: 200,
        }
    }

    /// Writes five entries through the real writer and returns the file's lines.
    async fn five_entries(dir: &Path) -> Vec<String> {
        let log = AuditLog::open(dir).unwrap();
        for i in 0..5 {
            log.record(access(i)).await.unwrap();
        }
        let text = std::fs::read_to_string(dir.join(FILE_NAME)).unwrap();
        text.lines().map(str::to_owned).collect()
    }

    fn check(lines: &[String]) -> Verdict {
        let mut text = lines.join("\n");
        text.push('\n');
        verify_bytes(text.as_bytes())
    }

    /// Goal: an intact log verifies, survives a restart, and continues its
    /// chain. Method: write, reopen, write more, verify.
    #[tokio::test]
    async fn an_intact_log_verifies_and_continues_after_restart() {
        let dir = tempfile::tempdir().unwrap();
        let lines = five_entries(dir.path()).await;
        let verdict = check(&lines);
        assert_eq!((verdict.valid_entries, verdict.problem), (5, None));
        let log = AuditLog::open(dir.path()).unwrap();
        log.record(access(9)).await.unwrap();
        let (_, verdict) = verify_path(dir.path()).unwrap();
        assert_eq!((verdict.valid_entries, verdict.problem), (6, None));
        assert_eq!(log.read(Some(3), 10).unwrap().len(), 2);
        assert_eq!(log.read(None, 2).unwrap()[1].seq, 1);
    }

    /// Goal: each kind of tampering is detected at the right entry.
    /// Method: edit, edit-and-rehash, delete, reorder and cut lines of a
    /// real log, and verify each copy.
    #[tokio::test]
    async fn tampering_is_detected_at_the_first_bad_entry() {
        let dir = tempfile::tempdir().unwrap();
        let lines = five_entries(dir.path()).await;

        let mut edited = lines.clone();
        edited[2] = edited[2].replace("\"outcome\":200", "\"outcome\":404");
        assert_eq!(
            check(&edited).problem,
            Some(Problem::Edited { line: 3, seq: 2 })
        );

        // Edited and re-hashed: the next entry no longer links.
        let mut entry: Entry = serde_json::from_str(&lines[2]).unwrap();
        entry.caller = "someone-else".into();
        entry.hash = entry.compute_hash();
        let mut rehashed = lines.clone();
        rehashed[2] = serde_json::to_string(&entry).unwrap();
        assert_eq!(
            check(&rehashed).problem,
            Some(Problem::BrokenLink { line: 4, seq: 3 })
        );

        let mut deleted = lines.clone();
        deleted.remove(1);
        assert_eq!(
            check(&deleted).problem,
            Some(Problem::Deleted {
                line: 2,
                expected: 1,
                found: 2
            })
        );

        let mut reordered = lines.clone();
        reordered.swap(1, 3);
        assert_eq!(
            check(&reordered).problem,
            Some(Problem::Deleted {
                line: 2,
                expected: 1,
                found: 3
            })
        );
        let mut duplicated = lines.clone();
        duplicated.insert(2, lines[1].clone());
        assert_eq!(
            check(&duplicated).problem,
            Some(Problem::Reordered {
                line: 3,
                expected: 2,
                found: 1
            })
        );

        // Renumbered after a deletion, hashes recomputed: links break.
        let mut renumbered: Vec<Entry> = lines
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        renumbered.remove(1);
        for (i, e) in renumbered.iter_mut().enumerate() {
            e.seq = i as u64;
            e.hash = e.compute_hash();
        }
        let renumbered: Vec<String> = renumbered
            .iter()
            .map(|e| serde_json::to_string(e).unwrap())
            .collect();
        assert_eq!(
            check(&renumbered).problem,
            Some(Problem::BrokenLink { line: 2, seq: 1 })
        );

        let mut garbage = lines.clone();
        garbage[0] = "{not json".into();
        assert!(matches!(
            check(&garbage).problem,
            Some(Problem::Unreadable { line: 1, .. })
        ));

        // A cut at the end is a valid shorter chain: only the head tells.
        let cut = check(&lines[..3]);
        assert_eq!((cut.valid_entries, cut.problem), (3, None));
        assert_ne!(cut.head, check(&lines).head);
    }

    /// Goal: a torn last line (crash mid-append) is cut at open; damage in
    /// the middle refuses to open. Method: write the files by hand.
    #[tokio::test]
    async fn open_cuts_a_torn_tail_and_refuses_damage() {
        let dir = tempfile::tempdir().unwrap();
        let lines = five_entries(dir.path()).await;
        let file = dir.path().join(FILE_NAME);
        let mut text = lines.join("\n");
        text.push('\n');
        std::fs::write(&file, format!("{text}{{\"seq\":5,\"ti")).unwrap();
        assert!(matches!(
            verify_path(&file).unwrap().1.problem,
            Some(Problem::TornTail { .. })
        ));
        let log = AuditLog::open(dir.path()).unwrap();
        log.record(access(5)).await.unwrap();
        let (_, verdict) = verify_path(&file).unwrap();
        assert_eq!((verdict.valid_entries, verdict.problem), (6, None));
        drop(log);

        let mut damaged = lines.clone();
        damaged.remove(2);
        std::fs::write(&file, damaged.join("\n") + "\n").unwrap();
        assert!(matches!(
            AuditLog::open(dir.path()),
            Err(AuditError::Damaged {
                problem: Problem::Deleted { .. },
                ..
            })
        ));
    }
}
