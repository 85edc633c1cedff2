//! The vote journal: every vote this validator signs, durable before the vote
//! leaves the process. On restart the engine is restored from it and never
//! signs anything that conflicts with a vote it already cast.

use std::path::Path;

use lotline_core::codec;
use lotline_core::vote::Vote;

use super::record_file::{OpenReport, Opened, RecordFile, RecordFileError};

const MAGIC: &[u8; 8] = b"LLVOTEJL";
const VERSION: u32 = 1;
const RECORD_MAX: usize = 1024;

#[derive(Debug)]
pub struct VoteJournal {
    file: RecordFile,
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
}

impl VoteJournal {
    /// Opens the journal and returns every vote in it, oldest first.
    pub fn open(path: &Path) -> Result<(VoteJournal, Vec<Vote>, OpenReport), VoteJournalError> {
        let Opened {
            file,
            records,
            report,
        } = RecordFile::open(path, MAGIC, VERSION, RECORD_MAX)?;
        let votes = records
            .iter()
            .enumerate()
            .map(|(index, record)| {
                let body = &record.body;
                codec::from_bytes("vote", body, RECORD_MAX)
                    .map_err(|source| VoteJournalError::Decode { index, source })
            })
            .collect::<Result<Vec<Vote>, _>>()?;
        Ok((VoteJournal { file }, votes, report))
    }

    /// Appends a vote; durable only after [`VoteJournal::sync`].
    pub fn append(&mut self, vote: &Vote) -> Result<(), VoteJournalError> {
        self.file.append(&codec::to_bytes(vote))?;
        Ok(())
    }

    pub fn sync(&mut self) -> Result<(), VoteJournalError> {
        Ok(self.file.sync()?)
    }
}
