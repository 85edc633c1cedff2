//! Checks an audit file: every line parses, every hash matches its fields,
//! sequence numbers count up from 0 without gaps, and every entry links to
//! the one before. Reports the first entry where that fails.
//!
//! What a chain can not show on its own: entries cut off *the end* (the
//! file is then a valid shorter chain). Compare the head ([`Verdict::head`])
//! with one seen earlier, e.g. in a regulator's last export, to catch that.

use std::path::Path;

use lotline_core::Digest;

use super::entry::Entry;

/// The result of checking a whole file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// Entries that check out, from the start.
    pub valid_entries: u64,
    /// seq and hash of the last valid entry.
    pub head: Option<(u64, Digest)>,
    /// Length of the valid prefix of the file, in bytes.
    pub valid_bytes: usize,
    /// The first problem, if any.
    pub problem: Option<Problem>,
}

/// The first thing wrong in a file. `line` is 1-based.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    #[error("line {line}: not an audit entry ({reason})")]
    Unreadable { line: usize, reason: String },
    #[error("line {line}: entry {seq} was edited (its hash does not match its fields)")]
    Edited { line: usize, seq: u64 },
    #[error(
        "line {line}: expected entry {expected}, found entry {found}: entries {expected}..{found} were deleted"
    )]
    Deleted {
        line: usize,
        expected: u64,
        found: u64,
    },
    #[error(
        "line {line}: expected entry {expected}, found entry {found}: entries were reordered or duplicated"
    )]
    Reordered {
        line: usize,
        expected: u64,
        found: u64,
    },
    #[error(
        "line {line}: entry {seq} does not link to the entry before it (that one was replaced, or its hash rewritten)"
    )]
    BrokenLink { line: usize, seq: u64 },
    #[error(
        "the last line is incomplete ({bytes} bytes without a newline): a torn write, or a cut"
    )]
    TornTail { bytes: usize },
}

/// Checks the text of an audit file.
pub fn verify_bytes(bytes: &[u8]) -> Verdict {
    let mut verdict = Verdict {
        valid_entries: 0,
        head: None,
        valid_bytes: 0,
        problem: None,
    };
    let mut prev = Digest::ZERO;
    let mut rest = bytes;
    let mut line_no = 0usize;
    while !rest.is_empty() {
        line_no += 1;
        let Some(end) = rest.iter().position(|b| *b == b'\n') else {
            verdict.problem = Some(Problem::TornTail { bytes: rest.len() });
            return verdict;
        };
        let line = &rest[..end];
        rest = &rest[end + 1..];
        let expected = verdict.valid_entries;
        let entry: Entry = match serde_json::from_slice(line) {
            Ok(entry) => entry,
            Err(e) => {
                verdict.problem = Some(Problem::Unreadable {
                    line: line_no,
                    reason: e.to_string(),
                });
                return verdict;
            }
        };
        let problem = if entry.compute_hash() != entry.hash {
            Some(Problem::Edited {
                line: line_no,
                seq: entry.seq,
            })
        } else if entry.seq > expected {
            Some(Problem::Deleted {
                line: line_no,
                expected,
                found: entry.seq,
            })
        } else if entry.seq < expected {
            Some(Problem::Reordered {
                line: line_no,
                expected,
                found: entry.seq,
            })
        } else if entry.prev != prev {
            Some(Problem::BrokenLink {
                line: line_no,
                seq: entry.seq,
            })
        } else {
            None
        };
        if problem.is_some() {
            verdict.problem = problem;
            return verdict;
        }
        prev = entry.hash;
        verdict.valid_entries += 1;
        verdict.head = Some((entry.seq, entry.hash));
        verdict.valid_bytes = bytes.len() - rest.len();
    }
    verdict
}

/// Checks `path`: an audit file, or a node data dir / audit dir holding one.
pub fn verify_path(path: &Path) -> std::io::Result<(std::path::PathBuf, Verdict)> {
    let file = super::resolve_file(path);
    let bytes = std::fs::read(&file)?;
    Ok((file, verify_bytes(&bytes)))
}
