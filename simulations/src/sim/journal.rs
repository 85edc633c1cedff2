//! A simulated vote journal: appends (votes and persisted records)
//! are pending until `sync`; a crash loses everything pending, as a power
//! cut loses what was not fdatasync'ed. Compaction drops what restore no
//! longer needs by the node's rule ([`KeepAbove`]), after every commit.

use std::collections::BTreeSet;

use lotline_consensus::{KeepAbove, Record};
use lotline_core::vote::Vote;

#[derive(Debug, Default, Clone)]
pub struct Journal {
    synced: Vec<Vote>,
    pending: Vec<Vote>,
    records: Vec<Record>,
    pending_records: Vec<Record>,
    /// (view, kind, block) of every synced vote, for the checker.
    index: BTreeSet<(u64, u8, [u8; 32])>,
}

impl Journal {
    pub fn append(&mut self, vote: Vote) {
        self.pending.push(vote);
    }

    pub fn append_record(&mut self, record: Record) {
        self.pending_records.push(record);
    }

    /// Whether something that binds this validator is pending: an own vote
    /// or a block it persisted. It must be durable before any message
    /// leaves or the block log grows; pending certificates alone wait for
    /// the next sync (docs/protocol.md, "durability").
    pub fn owes_sync(&self) -> bool {
        !self.pending.is_empty()
            || self
                .pending_records
                .iter()
                .any(|record| matches!(record, Record::Block(_)))
    }

    pub fn sync(&mut self) {
        for vote in self.pending.drain(..) {
            self.index
                .insert((vote.view, vote.kind as u8, vote.block.0));
            self.synced.push(vote);
        }
        self.records.append(&mut self.pending_records);
    }

    /// The node's journal compaction after a commit: everything appended is
    /// durable afterwards, and only what `keep` keeps is left. Done after
    /// every commit (the node does it when the file is large enough), so
    /// that every restart tests the rule.
    pub fn compact(&mut self, keep: KeepAbove) {
        self.sync();
        self.synced.retain(|vote| keep.keeps_vote(vote));
        self.records.retain(|record| keep.keeps_record(record));
    }

    /// Votes and records held (synced or not).
    pub fn entries(&self) -> usize {
        self.synced.len() + self.pending.len() + self.records.len() + self.pending_records.len()
    }

    /// Power cut: unsynced appends are gone.
    pub fn crash(&mut self) {
        self.pending.clear();
        self.pending_records.clear();
    }

    pub fn records(&self) -> &[Record] {
        &self.records
    }

    pub fn synced(&self) -> &[Vote] {
        &self.synced
    }

    pub fn is_durable(&self, vote: &Vote) -> bool {
        self.index
            .contains(&(vote.view, vote.kind as u8, vote.block.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lotline_core::crypto::SigningKey;
    use lotline_core::hash::Digest;
    use lotline_core::vote::VoteKind;

    #[test]
    fn a_crash_loses_only_unsynced_votes() {
        let key = SigningKey::from_seed(&[1; 32]);
        let vote = |view| {
            Vote::sign(
                &key,
                0,
                &Digest::ZERO,
                VoteKind::Nullify,
                view,
                Digest::ZERO,
            )
        };
        let mut journal = Journal::default();
        journal.append(vote(1));
        journal.sync();
        journal.append(vote(2));
        assert!(journal.owes_sync());
        journal.crash();
        assert_eq!(journal.synced(), &[vote(1)]);
        assert!(journal.is_durable(&vote(1)) && !journal.is_durable(&vote(2)));
    }
}
