//! The data folder: permissions, free disk, the block log's tail against
//! its index and the chain's validator sets, sled's layout, the restore
//! marker.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use lotline_core::block::Header;

use super::{FREE_BYTES_MIN, FREE_PERCENT_MIN, Report};
use crate::config::NodeConfig;
use crate::ops::restored::Marker;
use crate::store::block_index::{self, IndexEntry};
use crate::store::block_log::{self, BlockRecord};
use crate::store::epochs::ValidatorSets;
use crate::store::record_file::{self, Record};

const AREA_LOG: &str = "block log";

/// `running`: the node's API answered, so sled is not opened. `sets`: the
/// chain's validators by height (`history` in the module `doctor`).
pub fn check(config: &NodeConfig, sets: &dyn ValidatorSets, running: bool, report: &mut Report) {
    let dir = &config.data_dir;
    if !dir.exists() {
        report.note(
            "data folder",
            format!(
                "{} does not exist yet; the node creates it at its first start",
                dir.display()
            ),
        );
        check_disk(dir.parent().unwrap_or(Path::new(".")), report);
        return;
    }
    check_permissions(dir, report);
    check_disk(dir, report);
    check_log(dir, sets, report);
    if running {
        report.note(
            "sled",
            "not opened: the node is running and holds it (it checks and rebuilds sled itself at start)",
        );
    } else {
        check_sled(dir, report);
    }
    match Marker::read(dir) {
        Ok(None) => {}
        Ok(Some(marker)) => report.note(
            "restore marker",
            format!(
                "restored from a backup at height {}: this validator does not vote until `lotline resume-voting` (docs/operations.md, \"Restoring a validator\")",
                marker.backup_height
            ),
        ),
        Err(error) => report.problem("restore marker", error.to_string()),
    }
}

fn check_permissions(dir: &Path, report: &mut Report) {
    let area = "data folder";
    let mode = match std::fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => meta.permissions().mode() & 0o777,
        Ok(_) => {
            return report.problem(area, format!("{} is not a folder", dir.display()));
        }
        Err(error) => return report.problem(area, format!("{}: {error}", dir.display())),
    };
    if mode & 0o002 != 0 {
        report.problem(
            area,
            format!(
                "{} (mode {mode:o}) can be written by any user; chmod o-w it",
                dir.display()
            ),
        );
        return;
    }
    // The node must be able to create files here; a probe says so for sure.
    let probe = dir.join(".lotline-doctor-probe");
    let written = std::fs::write(&probe, b"probe");
    let _ = std::fs::remove_file(&probe);
    match written {
        Ok(()) => report.ok(
            area,
            format!("{} is writable (mode {mode:o})", dir.display()),
        ),
        Err(error) => report.problem(
            area,
            format!(
                "{} is not writable by this user ({error}); run the node as the folder's owner",
                dir.display()
            ),
        ),
    }
}

fn check_disk(dir: &Path, report: &mut Report) {
    let area = "disk";
    let (free, total) = match (fs2::available_space(dir), fs2::total_space(dir)) {
        (Ok(free), Ok(total)) => (free, total),
        (Err(error), _) | (_, Err(error)) => {
            return report.note(area, format!("free space unknown: {error}"));
        }
    };
    let percent = (free * 100).checked_div(total).unwrap_or(0);
    let gib = |b: u64| b as f64 / (1024.0 * 1024.0 * 1024.0);
    let text = format!(
        "{:.1} GiB free of {:.1} GiB ({percent}%)",
        gib(free),
        gib(total)
    );
    if free < FREE_BYTES_MIN {
        report.problem(
            area,
            format!(
                "{text}: below {} GiB; a full disk stops the node (a failed write stops it on purpose)",
                FREE_BYTES_MIN / (1024 * 1024 * 1024)
            ),
        );
    } else if percent < FREE_PERCENT_MIN {
        report.note(
            area,
            format!(
                "{text}: below {FREE_PERCENT_MIN}%; plan for more (about 3.5 GB per million events, docs/operations.md, \"Sizing\")"
            ),
        );
    } else {
        report.ok(area, text);
    }
}

/// The index reads, and the log from the last indexed block on: that block
/// is the one the index describes, every later record is intact, and each
/// of those blocks checks (body, parent link, finality against the validators
/// of the block's epoch).
fn check_log(dir: &Path, sets: &dyn ValidatorSets, report: &mut Report) {
    let log_path = dir.join("blocks.log");
    let index_path = dir.join("blocks.index");
    if !log_path.exists() {
        report.note(AREA_LOG, "no blocks.log yet (a new node)");
        return;
    }
    let entries = if index_path.exists() {
        match read_index(&index_path) {
            Ok(entries) => entries,
            Err(text) => {
                report.note(
                    "block index",
                    format!("{text}; the next start verifies the whole log and writes it again"),
                );
                Vec::new()
            }
        }
    } else {
        report.note(
            "block index",
            "missing; the next start verifies the whole log and writes it",
        );
        Vec::new()
    };
    let start = entries.last().map_or(record_file::HEADER_LEN, |e| e.offset);
    let records = match record_file::read_records_from(
        &log_path,
        block_log::MAGIC,
        block_log::VERSION,
        block_log::RECORD_MAX,
        start,
    ) {
        Ok((records, _)) => records,
        Err(error) => {
            return report.problem(
                AREA_LOG,
                format!("{error}; restore the data folder from a backup (docs/operations.md, \"Restore\")"),
            );
        }
    };
    match check_tail(&entries, &records, sets) {
        Ok((height, head, tail)) => {
            let head = head.map_or("none".into(), |h| h.hash().to_string());
            report.ok(
                AREA_LOG,
                format!(
                    "height {height}, head {head}; the last indexed block and {tail} block(s) after it verify against the validators of their epoch"
                ),
            );
        }
        Err(text) => report.problem(
            AREA_LOG,
            format!(
                "{text}; restore the data folder from a backup (docs/operations.md, \"Restore\")"
            ),
        ),
    }
}

fn read_index(path: &Path) -> Result<Vec<IndexEntry>, String> {
    let (records, _) = record_file::read_records(
        path,
        block_index::MAGIC,
        block_index::VERSION,
        block_index::ENTRY_MAX,
    )
    .map_err(|e| e.to_string())?;
    let mut entries = Vec::with_capacity(records.len());
    for (i, record) in records.iter().enumerate() {
        let entry = IndexEntry::from_bytes(&record.body)
            .ok_or_else(|| format!("block index entry {i} does not decode"))?;
        if entry.height != i as u64 + 1 {
            return Err(format!(
                "block index entry {i} names height {}",
                entry.height
            ));
        }
        entries.push(entry);
    }
    Ok(entries)
}

/// (height, head, blocks checked after the last indexed one).
fn check_tail(
    entries: &[IndexEntry],
    records: &[Record],
    sets: &dyn ValidatorSets,
) -> Result<(u64, Option<Header>, u64), String> {
    let mut records = records.iter();
    let mut head: Option<Header> = None;
    let mut height = entries.len() as u64;
    if let Some(last) = entries.last() {
        let record = records
            .next()
            .filter(|r| r.offset == last.offset)
            .ok_or_else(|| {
                format!(
                    "no block at offset {} where the index puts height {height}",
                    last.offset
                )
            })?;
        let block = decode(height, record)?;
        if block.block.header.height != height
            || IndexEntry::new(height, last.offset, &block.block.ids()) != *last
        {
            return Err(format!(
                "height {height} is not the block the index describes"
            ));
        }
        block
            .finality
            .verify(&sets.set_at(height), &block.block.header)
            .map_err(|e| format!("height {height}: finality does not verify: {e}"))?;
        head = Some(block.block.header);
    }
    let mut tail = 0;
    for record in records {
        height += 1;
        let block = decode(height, record)?;
        block
            .block
            .check_body(&sets.chain_id())
            .map_err(|e| format!("height {height}: {e}"))?;
        block
            .block
            .check_link(head.as_ref())
            .map_err(|e| format!("height {height}: {e}"))?;
        block
            .finality
            .verify(&sets.set_at(height), &block.block.header)
            .map_err(|e| format!("height {height}: finality does not verify: {e}"))?;
        head = Some(block.block.header);
        tail += 1;
    }
    Ok((height, head, tail))
}

fn decode(height: u64, record: &Record) -> Result<BlockRecord, String> {
    BlockRecord::from_stored(&record.body).map_err(|e| {
        format!(
            "height {height} (offset {}) does not decode: {e}",
            record.offset
        )
    })
}

fn check_sled(dir: &Path, report: &mut Report) {
    let area = "sled";
    match crate::store::sled_marks(&dir.join("index.sled")) {
        Ok(None) => report.note(area, "no sled index yet; the next start builds it from the block log"),
        Ok(Some((format, applied))) if format == crate::store::index::FORMAT || applied == 0 => {
            report.ok(area, format!("layout {format}, blocks applied up to height {applied}"));
        }
        Ok(Some((format, applied))) => report.note(
            area,
            format!(
                "written under layout {format}, this version uses {}: the next start rebuilds it from the block log ({applied} blocks; about 13 minutes per million events)",
                crate::store::index::FORMAT
            ),
        ),
        Err(error) => report.note(
            area,
            format!("does not open ({error}); the next start moves it aside and rebuilds it from the block log"),
        ),
    }
}
