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

use crate::store::events::{Listing, duplicate_listing};
use crate::store::{StoreError, StoreReader};
use crate::trace::LineageGuard;

/// The first capture `id` repeats, if the committed attestation `id` is a
/// repeat (committed after another capture of the same event by the same
/// org); `None` for a first capture or an attestation not committed.
pub fn committed_repeat(
    reader: &StoreReader,
    id: &AttestationId,
) -> Result<Option<AttestationId>, StoreError> {
    let Some(stored) = reader.attestation(id)? else {
        return Ok(None);
    };
    let Ok(statement) = Statement::from_payload(&stored.envelope.payload) else {
        return Ok(None);
    };
    let listing = Listing::Duplicate(duplicate_listing(&statement.event, &statement.org));
    let at = crate::store::index::Position {
        height: stored.height,
        index: stored.index,
    };
    match reader.event_first(&listing)? {
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
    pub fn first(&self, statement: &Statement) -> Result<Option<AdmissionError>, String> {
        let listing = Listing::Duplicate(duplicate_listing(&statement.event, &statement.org));
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
    fn check(&self, statement: &Statement) -> Vec<AdmissionError> {
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
    fn check(&self, statement: &Statement) -> Vec<AdmissionError> {
        let mut problems = self.repeats.check(statement);
        problems.extend(self.owners.check(statement));
        problems.extend(self.lineage.check(statement));
        problems
    }
}
