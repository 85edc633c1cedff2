//! The vote journal: every vote this validator signs, and the engine's
//! persisted records (certificates, notarized blocks), durable before any
//! vote that depends on them leaves the process. On restart the engine is
//! restored from it and never signs anything that conflicts with a vote it
//! already cast.
//!
//! Entries below the committed height are dead weight; [`VoteJournal::open`]
//! rewrites the file without them once it grows past
//! [`COMPACT_BYTES`] (write a new file, fdatasync, rename, fsync the folder).

use std::path::{Path, PathBuf};

use lotline_consensus::Record;
use lotline_core::codec;
use lotline_core::vote::Vote;
use serde::{Deserialize, Serialize};

use super::record_file::{OpenReport, Opened, RecordFile, RecordFileError, sync_parent_dir};

const MAGIC: &[u8; 8] = b"LLVOTEJL";
const VERSION: u32 = 2;
const RECORD_MAX: usize = lotline_core::limits::BLOCK_BYTES_MAX + 64 * 1024;
/// Rewrite the journal at open when it is larger than this.
pub const COMPACT_BYTES: u64 = 16 * 1024 * 1024;

/// One journal entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum JournalEntry {
    Vote(Vote),
    Record(Record),
}

/// What the journal held at open.
#[derive(Debug, Default)]
pub struct Journaled {
    pub votes: Vec<Vote>,
    pub records: Vec<Record>,
}

#[derive(Debug)]
pub struct VoteJournal {
    file: RecordFile,
    path: PathBuf,
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
}

/// What compaction keeps: entries that still matter above the committed
/// view and height. Votes of the finalized view are kept too (restore checks
/// them against new votes).
#[derive(Clone, Copy, Debug, Default)]
pub struct KeepAbove {
    pub view: u64,
    pub height: u64,
}

impl VoteJournal {
    /// Opens the journal and returns every entry in it, oldest first,
    /// compacting it first if it is large.
    pub fn open(
        path: &Path,
        keep: KeepAbove,
    ) -> Result<(VoteJournal, Journaled, OpenReport), VoteJournalError> {
        Self::open_compacting(path, keep, COMPACT_BYTES)
    }

    /// [`VoteJournal::open`] with an explicit compaction threshold.
    pub fn open_compacting(
        path: &Path,
        keep: KeepAbove,
        compact_bytes: u64,
    ) -> Result<(VoteJournal, Journaled, OpenReport), VoteJournalError> {
        let Opened {
            file,
            records,
            report,
        } = RecordFile::open(path, MAGIC, VERSION, RECORD_MAX)?;
        let mut journaled = Journaled::default();
        for (index, record) in records.iter().enumerate() {
            let entry: JournalEntry = codec::from_bytes("journal entry", &record.body, RECORD_MAX)
                .map_err(|source| VoteJournalError::Decode { index, source })?;
            match entry {
                JournalEntry::Vote(vote) => journaled.votes.push(vote),
                JournalEntry::Record(record) => journaled.records.push(record),
            }
        }
        let mut journal = VoteJournal {
            file,
            path: path.to_owned(),
        };
        if journal.file.len() > compact_bytes {
            journaled.votes.retain(|v| v.view >= keep.view);
            journaled.records.retain(|r| match r {
                Record::Certificate(c) => c.view >= keep.view,
                Record::Block(b) => b.header.height > keep.height,
            });
            journal = journal.rewrite(&journaled)?;
        }
        Ok((journal, journaled, report))
    }

    fn rewrite(self, keep: &Journaled) -> Result<VoteJournal, VoteJournalError> {
        let tmp = self.path.with_extension("journal.compacting");
        let _ = std::fs::remove_file(&tmp);
        let Opened { mut file, .. } = RecordFile::open(&tmp, MAGIC, VERSION, RECORD_MAX)?;
        for vote in &keep.votes {
            file.append(&codec::to_bytes(&JournalEntry::Vote(*vote)))?;
        }
        for record in &keep.records {
            file.append(&codec::to_bytes(&JournalEntry::Record(record.clone())))?;
        }
        file.sync()?;
        drop(file);
        let io = |source| VoteJournalError::Io {
            path: self.path.clone(),
            source,
        };
        std::fs::rename(&tmp, &self.path).map_err(io)?;
        sync_parent_dir(&self.path).map_err(io)?;
        let Opened { file, .. } = RecordFile::open(&self.path, MAGIC, VERSION, RECORD_MAX)?;
        Ok(VoteJournal {
            file,
            path: self.path,
        })
    }

    /// Appends a vote; durable only after [`VoteJournal::sync`].
    pub fn append(&mut self, vote: &Vote) -> Result<(), VoteJournalError> {
        self.file
            .append(&codec::to_bytes(&JournalEntry::Vote(*vote)))?;
        Ok(())
    }

    /// Appends an engine record; durable only after [`VoteJournal::sync`].
    pub fn append_record(&mut self, record: &Record) -> Result<(), VoteJournalError> {
        self.file
            .append(&codec::to_bytes(&JournalEntry::Record(record.clone())))?;
        Ok(())
    }

    pub fn sync(&mut self) -> Result<(), VoteJournalError> {
        Ok(self.file.sync()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lotline_core::SigningKey;
    use lotline_core::hash::Digest;
    use lotline_core::vote::VoteKind;

    #[test]
    fn votes_survive_reopen_and_compaction_keeps_recent_ones() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("votes.journal");
        let key = SigningKey::from_seed(&[1; 32]);
        const THRESHOLD: u64 = 10_000;
        let (mut journal, journaled, _) =
            VoteJournal::open_compacting(&path, KeepAbove::default(), THRESHOLD).unwrap();
        assert!(journaled.votes.is_empty());
        // Enough votes to pass the compaction threshold.
        let vote = Vote::sign(
            &key,
            0,
            &Digest::ZERO,
            VoteKind::Finalize,
            1,
            Digest([1; 32]),
        );
        let count = 200;
        for view in 1..=count {
            journal.append(&Vote { view, ..vote }).unwrap();
        }
        journal.sync().unwrap();
        drop(journal);
        let keep = KeepAbove {
            view: count - 5,
            height: 0,
        };
        let (_, journaled, _) = VoteJournal::open_compacting(&path, keep, THRESHOLD).unwrap();
        assert_eq!(
            journaled.votes.len(),
            6,
            "compaction keeps views >= the finalized view"
        );
        let (_, again, _) = VoteJournal::open(&path, KeepAbove::default()).unwrap();
        assert_eq!(
            again.votes, journaled.votes,
            "the compacted file reopens with the same votes"
        );
    }
}
