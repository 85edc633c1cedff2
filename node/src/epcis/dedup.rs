//! A second capture of the same event is refused: the guard EPCIS capture
//! (`POST /epcis/capture`, `POST /epcis/events`) passes, lineage checks plus
//! the repeat check. Attestations signed by the client
//! (`POST /v1/attestations`) pass the lineage checks only: their signer
//! chose to state the event again (a repeat is still indexed, and marked
//! `lotline:duplicateOf` by queries).
//!
//! "The same event" is the CBV 2.0 event hash
//! (`lotline_core::epcis::event_hash`): two captures that differ only in
//! spelling (field order, list order, URN or Digital Link, a repository's
//! eventID or recordTime) are one event. It is judged against committed
//! state, the `w` listing of `store::events`, which is the same on every
//! node (every node applies the same blocks in the same order), and is
//! scoped to the org that states the event: the refusal names the first
//! capture, which another org's caller may not be allowed to see.
//!
//! Two captures of one event admitted before either commits (on one node
//! or two) both commit; the rule is then applied at block application
//! (`store::events`, "Repeats at application"): the first in chain order
//! is the event, the later one is a repeat, left out of query results, and
//! its capture job reports `duplicate-event` ([`committed_repeat`]).

use lotline_core::epcis::event_hash::event_hash;
use lotline_core::statement::Statement;

use crate::admission::{AdmissionError, StatementGuard};
use lotline_core::attestation::AttestationId;

use crate::parsed::ParsedStatement;
use crate::store::events::{Listing, duplicate_listing_of};
use crate::store::index::Position;
use crate::store::{StoreError, StoreReader};
use crate::trace::LineageGuard;

/// The first capture a committed attestation repeats, if it is a repeat
/// (committed after another capture of the same event by the same org);
/// `None` for a first capture. `duplicate` is its statement's repeated-
/// capture listing (`store::events::duplicate_listing_of`, from the event
/// hash admission computed) and `at` where it was committed: the check
/// reads one listing, not the attestation.
pub fn committed_repeat(
    reader: &StoreReader,
    duplicate: String,
    at: Position,
) -> Result<Option<AttestationId>, StoreError> {
    match reader.event_first(&Listing::Duplicate(duplicate))? {
        Some(first) if first != at => Ok(reader.attestation_at(first)?.map(|(first, _)| first)),
        _ => Ok(None),
    }
}

/// Refuses an event the same org already committed.
#[derive(Clone, Debug)]
pub struct RepeatGuard {
    store: StoreReader,
}

impl RepeatGuard {
    pub fn new(store: StoreReader) -> RepeatGuard {
        RepeatGuard { store }
    }

    /// The committed capture `statement` repeats, if any: its attestation
    /// id and eventID.
    pub fn first(&self, statement: &ParsedStatement) -> Result<Option<AdmissionError>, String> {
        let listing = Listing::Duplicate(duplicate_listing_of(statement));
        let Some(at) = self
            .store
            .event_first(&listing)
            .map_err(|e| e.to_string())?
        else {
            return Ok(None);
        };
        let Some((first, stored)) = self.store.attestation_at(at).map_err(|e| e.to_string())?
        else {
            return Ok(None);
        };
        let event_id = Statement::from_payload(&stored.envelope.payload)
            .ok()
            .and_then(|s| s.event.event_id);
        Ok(Some(AdmissionError::DuplicateEvent {
            hash: event_hash(&statement.event).uri(),
            first,
            event_id,
        }))
    }
}

impl StatementGuard for RepeatGuard {
    fn check(&self, statement: &ParsedStatement) -> Vec<AdmissionError> {
        match self.first(statement) {
            Ok(found) => found.into_iter().collect(),
            Err(error) => {
                // As for lineage: a failing store read must not block
                // writes; the chain stays the judge of what commits.
                tracing::warn!(%error, "repeat check skipped: store read failed");
                Vec::new()
            }
        }
    }
}

/// Every local check an EPCIS capture passes: repeats, master data
/// ownership, then lineage.
#[derive(Clone, Debug)]
pub struct ClientGuard {
    lineage: LineageGuard,
    repeats: RepeatGuard,
    owners: super::master_data::OwnerGuard,
}

impl ClientGuard {
    pub fn new(store: StoreReader) -> ClientGuard {
        ClientGuard {
            lineage: LineageGuard::new(store.clone()),
            repeats: RepeatGuard::new(store.clone()),
            owners: super::master_data::OwnerGuard::new(store),
        }
    }
}

impl StatementGuard for ClientGuard {
    fn check(&self, statement: &ParsedStatement) -> Vec<AdmissionError> {
        let mut problems = self.repeats.check(statement);
        problems.extend(self.owners.check(statement));
        problems.extend(self.lineage.check(statement));
        problems
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use lotline_core::SigningKey;
    use lotline_core::attestation::Envelope;

    use super::*;
    use crate::store::Store;
    use crate::store::testing::Chain;

    /// Goal: the capture job's repeat check after commit, from the listing
    /// admission's event hash gave and the commit's position, agrees with
    /// the indexer's decision. Method: real store; one event stated by org
    /// `o` in block 1, twice more by `o` and once by `p` in block 2 (the
    /// second block indexed from parsed statements, as a node's own
    /// admissions are, the first parsed by the store): each later capture
    /// by `o` repeats the first, the first and `p`'s repeat nothing.
    #[test]
    fn a_commit_repeats_the_first_capture_of_its_listing_by_its_org() {
        let statement = |event_id: &str, org: &str| {
            let mut st = Chain::statement();
            st.event.event_id = Some(event_id.to_owned());
            st.org = org.to_owned();
            st
        };
        let sign =
            |st: &Statement| Envelope::sign(st.to_payload(), &SigningKey::from_seed(&[9; 32]));
        let dir = tempfile::tempdir().expect("tempdir");
        let mut chain = Chain::new();
        let (mut store, _) = Store::open(dir.path(), chain.set.clone()).expect("open");
        let first = statement("e1", "o");
        let one = chain.block(vec![sign(&first)]);
        let first_id = store.commit(&one, |_| Vec::new()).expect("commit")[0];
        let later = [
            statement("e2", "o"),
            statement("e3", "o"),
            statement("e4", "p"),
        ];
        let parsed: Vec<Arc<ParsedStatement>> = later
            .iter()
            .map(|st| Arc::new(ParsedStatement::new(st.clone())))
            .collect();
        let two = chain.block(later.iter().map(sign).collect());
        store
            .commit(&two, |_| parsed.iter().cloned().map(Some).collect())
            .expect("commit");
        let reader = store.reader();
        let at = |height, index| Position { height, index };
        let repeat = |st: &Statement, at: Position| {
            let listing = duplicate_listing_of(&ParsedStatement::new(st.clone()));
            committed_repeat(&reader, listing, at).expect("read")
        };
        assert_eq!(repeat(&first, at(1, 0)), None, "the first capture");
        assert_eq!(repeat(&later[0], at(2, 0)), Some(first_id));
        assert_eq!(repeat(&later[1], at(2, 1)), Some(first_id));
        assert_eq!(repeat(&later[2], at(2, 2)), None, "another org's");
        assert_eq!(
            duplicate_listing_of(&parsed[0]),
            crate::store::events::duplicate_listing(&later[0].event, "o"),
            "the kept name lists as the event's own"
        );
    }
}
