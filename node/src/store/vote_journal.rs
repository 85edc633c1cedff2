//! The vote journal: every vote this validator signs, and the engine's
//! persisted records (certificates, notarized blocks), durable before any
//! vote that depends on them leaves the process. On restart the engine is
//! restored from it and never signs anything that conflicts with a vote it
//! already cast.
//!
//! # Compaction
//!
//! Entries at or below what the block log has made final are dead weight:
//! restore ignores own votes and certificates of views below the last
//! committed finalization and blocks at or below the committed height
//! ([`KeepAbove`]). The journal drops them by rewriting itself, in one
//! place, [`VoteJournal::compact`], which both the actors (after each
//! commit) and [`VoteJournal::open`] call. It rewrites only when the file
//! is larger than twice the bytes that would survive plus
//! [`COMPACT_SLACK_BYTES`], so that an idle chain's journal stays below
//! about one slack and a loaded one is rewritten at most once per its own
//! live size appended (each byte is copied about once).
//!
//! The rewrite is atomic: the kept entries go to `votes.journal.compacting`,
//! which is fdatasync'ed, renamed over the journal, and the folder is
//! fsync'ed. A crash before the rename leaves the old journal (the stray
//! file is replaced on the next rewrite); after it, the new one. Either
//! holds every entry restore needs, and every entry appended before the
//! rewrite (synced or not) is durable after it.
//!
//! Only the block log's durable finality may set the floor: the journal
//! must never drop a vote of a view the block log can not yet prove final,
//! or a restarted validator could sign a conflicting vote there.

use std::path::{Path, PathBuf};

pub use lotline_consensus::KeepAbove;
use lotline_consensus::Record;
use lotline_core::codec;
use lotline_core::vote::Vote;
use serde::{Deserialize, Serialize};

use super::record_file::{OpenReport, Opened, RecordFile, RecordFileError, sync_parent_dir};

const MAGIC: &[u8; 8] = b"LLVOTEJL";
const VERSION: u32 = 2;
const RECORD_MAX: usize = lotline_core::limits::BLOCK_BYTES_MAX + 64 * 1024;
/// Bytes of dead entries the journal may carry beyond its live size before
/// it is rewritten: bounds an idle validator's journal (one view of idle
/// chain journals about 2 KB) without rewriting after every commit.
pub const COMPACT_SLACK_BYTES: u64 = 1024 * 1024;
/// The file header and each record's prefix (see `record_file`).
const HEADER_BYTES: u64 = 12;
const RECORD_PREFIX_BYTES: u64 = 8;

/// One journal entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum JournalEntry {
    Vote(Vote),
    Record(Record),
}

/// A [`JournalEntry`] as it is written, borrowing what it journals: a
/// block's record is a megabyte, and copying it only to write it was a
/// share of the consensus thread. Encodes exactly as the entry it mirrors
/// (postcard writes a variant's index and its value, never a name).
#[derive(Serialize)]
#[serde(rename = "JournalEntry")]
enum EntryRef<'a> {
    Vote(&'a Vote),
    Record(&'a Record),
}

/// What the journal held at open (after compaction, only live entries).
#[derive(Debug, Default)]
pub struct Journaled {
    pub votes: Vec<Vote>,
    pub records: Vec<Record>,
}

/// Where an entry is in the file and what decides whether it is kept.
#[derive(Clone, Copy, Debug)]
struct Slot {
    offset: u64,
    bytes: u64,
    floor: Floor,
}

/// An entry's claim to be kept: a vote or certificate by its view, a block
/// by its height.
#[derive(Clone, Copy, Debug)]
enum Floor {
    View(u64),
    Height(u64),
}

impl Floor {
    fn of(entry: &JournalEntry) -> Floor {
        match entry {
            JournalEntry::Vote(vote) => Floor::of_ref(&EntryRef::Vote(vote)),
            JournalEntry::Record(record) => Floor::of_ref(&EntryRef::Record(record)),
        }
    }

    fn of_ref(entry: &EntryRef) -> Floor {
        match entry {
            EntryRef::Vote(vote) => Floor::View(vote.view),
            EntryRef::Record(Record::Certificate(c)) => Floor::View(c.view),
            EntryRef::Record(Record::Block(b)) => Floor::Height(b.header.height),
        }
    }

    fn kept(self, keep: KeepAbove) -> bool {
        match self {
            Floor::View(view) => keep.keeps_view(view),
            Floor::Height(height) => keep.keeps_height(height),
        }
    }
}

#[derive(Debug)]
pub struct VoteJournal {
    file: RecordFile,
    path: PathBuf,
    /// Every entry in the file, in order.
    slots: Vec<Slot>,
    slack_bytes: u64,
    /// Rewrites since open (for tests and logs).
    compactions: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum VoteJournalError {
    #[error(transparent)]
    File(#[from] RecordFileError),
    #[error("vote journal record {index} does not decode: {source}")]
    Decode {
        index: usize,
        source: codec::DecodeError,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: the rewritten journal reads back {read} entries, {written} were written")]
    Rewrite {
        path: PathBuf,
        written: usize,
        read: usize,
    },
}

impl VoteJournal {
    /// Opens the journal and returns its live entries, oldest first,
    /// compacting it first if it is due ([`VoteJournal::compact`]).
    pub fn open(
        path: &Path,
        keep: KeepAbove,
    ) -> Result<(VoteJournal, Journaled, OpenReport), VoteJournalError> {
        Self::open_with_slack(path, keep, COMPACT_SLACK_BYTES)
    }

    /// [`VoteJournal::open`] with an explicit slack (tests use small ones).
    pub fn open_with_slack(
        path: &Path,
        keep: KeepAbove,
        slack_bytes: u64,
    ) -> Result<(VoteJournal, Journaled, OpenReport), VoteJournalError> {
        let Opened {
            file,
            records,
            report,
        } = RecordFile::open(path, MAGIC, VERSION, RECORD_MAX)?;
        let mut journaled = Journaled::default();
        let mut slots = Vec::with_capacity(records.len());
        for (index, record) in records.into_iter().enumerate() {
            let entry: JournalEntry = codec::from_bytes("journal entry", &record.body, RECORD_MAX)
                .map_err(|source| VoteJournalError::Decode { index, source })?;
            let floor = Floor::of(&entry);
            slots.push(Slot {
                offset: record.offset,
                bytes: RECORD_PREFIX_BYTES + record.body.len() as u64,
                floor,
            });
            if !floor.kept(keep) {
                continue;
            }
            match entry {
                JournalEntry::Vote(vote) => journaled.votes.push(vote),
                JournalEntry::Record(record) => journaled.records.push(record),
            }
        }
        let mut journal = VoteJournal {
            file,
            path: path.to_owned(),
            slots,
            slack_bytes,
            compactions: 0,
        };
        journal.compact(keep)?;
        Ok((journal, journaled, report))
    }

    /// Appends a vote; durable only after [`VoteJournal::sync`].
    pub fn append(&mut self, vote: &Vote) -> Result<(), VoteJournalError> {
        self.append_entry(&EntryRef::Vote(vote))
    }

    /// Appends an engine record; durable only after [`VoteJournal::sync`].
    pub fn append_record(&mut self, record: &Record) -> Result<(), VoteJournalError> {
        self.append_entry(&EntryRef::Record(record))
    }

    fn append_entry(&mut self, entry: &EntryRef) -> Result<(), VoteJournalError> {
        let offset = self
            .file
            .append_with(|out| codec::encode_onto(entry, out))?;
        self.slots.push(Slot {
            offset,
            bytes: self.file.len() - offset,
            floor: Floor::of_ref(entry),
        });
        Ok(())
    }

    pub fn sync(&mut self) -> Result<(), VoteJournalError> {
        Ok(self.file.sync()?)
    }

    /// The file's size in bytes.
    pub fn len(&self) -> u64 {
        self.file.len()
    }

    /// True when the journal holds no entry.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Rewrites since the journal was opened.
    pub fn compactions(&self) -> u64 {
        self.compactions
    }

    /// Drops the entries `keep` no longer needs if the file is larger than
    /// twice its live bytes plus the slack; returns whether it rewrote.
    /// Everything appended so far is durable afterwards when it did.
    /// `keep` must come from the block log's durable head (see the module
    /// documentation); a failure leaves the old file in place and the caller
    /// stops the node, as for any journal write.
    pub fn compact(&mut self, keep: KeepAbove) -> Result<bool, VoteJournalError> {
        let live: u64 = HEADER_BYTES
            + self
                .slots
                .iter()
                .filter(|s| s.floor.kept(keep))
                .map(|s| s.bytes)
                .sum::<u64>();
        let due = self.file.len() > live.saturating_mul(2).saturating_add(self.slack_bytes);
        if !due {
            return Ok(false);
        }
        let tmp = self.path.with_extension("journal.compacting");
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| VoteJournalError::Io { path, source }
        };
        match std::fs::remove_file(&tmp) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(&tmp)(e)),
            _ => {}
        }
        let Opened { mut file, .. } = RecordFile::open(&tmp, MAGIC, VERSION, RECORD_MAX)?;
        let mut slots = Vec::new();
        for slot in self.slots.iter().filter(|s| s.floor.kept(keep)) {
            let body = self.file.read_at(slot.offset)?;
            let offset = file.append(&body)?;
            slots.push(Slot { offset, ..*slot });
        }
        file.sync()?;
        drop(file);
        std::fs::rename(&tmp, &self.path).map_err(io(&self.path))?;
        sync_parent_dir(&self.path).map_err(io(&self.path))?;
        let Opened { file, records, .. } =
            RecordFile::open(&self.path, MAGIC, VERSION, RECORD_MAX)?;
        if records.len() != slots.len() {
            return Err(VoteJournalError::Rewrite {
                path: self.path.clone(),
                written: slots.len(),
                read: records.len(),
            });
        }
        let mut file = file;
        file.keep_buffer_of(&mut self.file);
        self.file = file;
        self.slots = slots;
        self.compactions += 1;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lotline_core::SigningKey;
    use lotline_core::hash::Digest;
    use lotline_core::vote::VoteKind;

    fn vote(view: u64) -> Vote {
        let key = SigningKey::from_seed(&[1; 32]);
        Vote::sign(
            &key,
            0,
            &Digest::ZERO,
            VoteKind::Finalize,
            view,
            Digest([1; 32]),
        )
    }

    /// Goal: an entry is written byte for byte as the entry it mirrors, so
    /// a journal reads back what was written (borrowing changed no format).
    #[test]
    fn a_borrowed_entry_encodes_as_the_entry() {
        let vote = vote(7);
        assert_eq!(
            codec::to_bytes(&EntryRef::Vote(&vote)),
            codec::to_bytes(&JournalEntry::Vote(vote))
        );
        let mut chain = crate::store::testing::Chain::new();
        let envelopes = (0..3).map(crate::store::testing::Chain::envelope).collect();
        let block = Record::Block(chain.block(envelopes).block);
        let mut onto = b"held".to_vec();
        codec::encode_onto(&EntryRef::Record(&block), &mut onto);
        let owned = codec::to_bytes(&JournalEntry::Record(block));
        assert_eq!(&onto[..4], b"held");
        assert_eq!(&onto[4..], &owned[..]);
    }

    /// Goal: open compacts a large journal by the same rule as at run time.
    /// Method: 200 views of votes, reopen with a floor near the end and a
    /// small slack, then reopen again without a floor.
    #[test]
    fn votes_survive_reopen_and_compaction_keeps_recent_ones() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("votes.journal");
        const SLACK: u64 = 10_000;
        let (mut journal, journaled, _) =
            VoteJournal::open_with_slack(&path, KeepAbove::default(), SLACK).unwrap();
        assert!(journaled.votes.is_empty() && journal.is_empty());
        let count = 200;
        for view in 1..=count {
            journal.append(&vote(view)).unwrap();
        }
        journal.sync().unwrap();
        drop(journal);
        let keep = KeepAbove {
            epoch: 0,
            view: count - 5,
            height: 0,
        };
        let (journal, journaled, _) = VoteJournal::open_with_slack(&path, keep, SLACK).unwrap();
        assert_eq!(journal.compactions(), 1);
        assert_eq!(
            journaled.votes.len(),
            6,
            "compaction keeps views >= the finalized view"
        );
        drop(journal);
        let (_, again, _) = VoteJournal::open(&path, KeepAbove::default()).unwrap();
        assert_eq!(
            again.votes, journaled.votes,
            "the compacted file reopens with the same votes"
        );
    }

    /// Goal: a journal compacted after every commit stays bounded however
    /// long the chain runs, and keeps every entry restore needs, including
    /// ones appended but not yet synced when it was rewritten.
    /// Method: 5,000 views of votes and certificates-sized records with the
    /// floor one view behind; check the bound every view, then reopen.
    #[test]
    fn runtime_compaction_bounds_the_file_and_keeps_the_live_entries() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("votes.journal");
        const SLACK: u64 = 8_192;
        let (mut journal, _, _) =
            VoteJournal::open_with_slack(&path, KeepAbove::default(), SLACK).unwrap();
        let mut largest = 0;
        let views = 5_000;
        for view in 1..=views {
            journal.append(&vote(view)).unwrap();
            journal
                .append(&Vote {
                    kind: VoteKind::Notarize,
                    ..vote(view)
                })
                .unwrap();
            if view % 3 == 0 {
                journal.sync().unwrap();
            }
            let keep = KeepAbove {
                epoch: 0,
                view: view - 1,
                height: 0,
            };
            journal.compact(keep).unwrap();
            largest = largest.max(journal.len());
        }
        assert!(
            journal.compactions() > 10,
            "{} rewrites",
            journal.compactions()
        );
        assert!(
            largest <= 2 * 1024 + SLACK + 1024,
            "the journal reached {largest} bytes"
        );
        // Not synced since the last rewrite: the last view's votes.
        drop(journal);
        let keep = KeepAbove {
            epoch: 0,
            view: views - 1,
            height: 0,
        };
        let (_, journaled, _) = VoteJournal::open_with_slack(&path, keep, SLACK).unwrap();
        let mut views_kept: Vec<u64> = journaled.votes.iter().map(|v| v.view).collect();
        views_kept.dedup();
        assert_eq!(views_kept, vec![views - 1, views]);
    }

    /// Goal: a crash in the middle of a rewrite loses nothing. Method: leave
    /// a half-written `.compacting` file beside the journal (a crash before
    /// the rename), reopen and compact again.
    #[test]
    fn a_stray_rewrite_file_from_a_crash_is_ignored_and_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("votes.journal");
        let (mut journal, _, _) =
            VoteJournal::open_with_slack(&path, KeepAbove::default(), 0).unwrap();
        for view in 1..=50 {
            journal.append(&vote(view)).unwrap();
        }
        journal.sync().unwrap();
        drop(journal);
        let tmp = path.with_extension("journal.compacting");
        std::fs::write(&tmp, b"LLVOTEJL\0\0\0\x02torn").unwrap();
        let keep = KeepAbove {
            epoch: 0,
            view: 40,
            height: 0,
        };
        let (journal, journaled, _) = VoteJournal::open_with_slack(&path, keep, 0).unwrap();
        assert_eq!(journal.compactions(), 1);
        assert_eq!(journaled.votes.len(), 11);
        assert!(!tmp.exists(), "the rename consumed the rewrite file");
        drop(journal);
        let (_, again, _) = VoteJournal::open(&path, KeepAbove::default()).unwrap();
        assert_eq!(again.votes, journaled.votes);
    }
}
