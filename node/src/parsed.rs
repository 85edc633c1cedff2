//! A statement as admission parsed it, carried from admission through the
//! mempool to the indexer, with what the steps after admission derive from
//! it computed once.
//!
//! The CBV 2.0 event hash of a statement's event is needed three times on
//! the capture path: by the repeat check at admission (`epcis::dedup`), by
//! the indexer for the repeated-capture listing (`store::events`), and by
//! the capture job when it reports which commits were repeats. It
//! canonicalises and sorts the whole event (about 10 µs for a generator
//! event, docs/performance.md), so it is computed on first use and kept
//! here, beside the statement it belongs to. The statement is immutable
//! once parsed, so the kept name can not go stale.

use std::ops::Deref;
use std::sync::OnceLock;

use lotline_core::epcis::event_hash;
use lotline_core::statement::Statement;

/// One parsed statement and its event's repeated-capture name, computed at
/// most once.
#[derive(Debug)]
pub struct ParsedStatement {
    statement: Statement,
    duplicate_name: OnceLock<String>,
}

impl ParsedStatement {
    pub fn new(statement: Statement) -> ParsedStatement {
        ParsedStatement {
            statement,
            duplicate_name: OnceLock::new(),
        }
    }

    /// A statement whose repeated-capture name this node computed from it
    /// before, and kept where the statement could not be (the capture
    /// spool, whose records carry a CRC): the name is trusted as the
    /// statement's own.
    pub fn with_duplicate_name(statement: Statement, name: String) -> ParsedStatement {
        ParsedStatement {
            statement,
            duplicate_name: OnceLock::from(name),
        }
    }

    /// `event_hash::duplicate_name` of the statement's event, computed on
    /// the first call.
    pub fn duplicate_name(&self) -> &str {
        self.duplicate_name
            .get_or_init(|| event_hash::duplicate_name(&self.statement.event))
    }

    pub fn statement(&self) -> &Statement {
        &self.statement
    }
}

impl Deref for ParsedStatement {
    type Target = Statement;

    fn deref(&self) -> &Statement {
        &self.statement
    }
}

impl From<Statement> for ParsedStatement {
    fn from(statement: Statement) -> ParsedStatement {
        ParsedStatement::new(statement)
    }
}

impl PartialEq for ParsedStatement {
    /// Two parsed statements are equal when their statements are: the kept
    /// name is a function of the statement.
    fn eq(&self, other: &ParsedStatement) -> bool {
        self.statement == other.statement
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Goal: the kept name is the event hash's own, on every call.
    #[test]
    fn the_kept_name_is_the_event_hash_of_the_event() {
        for workload in lotline_sim::workload::SupplyChainWorkload::generate(
            3,
            lotline_sim::workload::Scale::demo(),
        )
        .into_iter()
        .take(50)
        {
            let expected = event_hash::duplicate_name(&workload.event);
            let statement = Statement {
                version: lotline_core::statement::STATEMENT_VERSION,
                chain_id: lotline_core::hash::Digest([7; 32]),
                org: workload.org.clone(),
                key: lotline_core::SigningKey::from_seed(&[7; 32]).public_key(),
                issued_at_ms: 0,
                nonce: "n".into(),
                event: workload.event,
                private: None,
            };
            let parsed = ParsedStatement::new(statement);
            assert_eq!(parsed.duplicate_name(), expected);
            assert_eq!(parsed.duplicate_name(), expected);
        }
    }
}
