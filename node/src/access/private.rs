//! Private fields on read: who may see plaintext, and opening a version 2
//! statement with this node's org key.
//!
//! Every node stores the ciphertext; a node holds plaintext only in memory,
//! for the length of one request, and only when the operator gave it its
//! org's encryption key (`[private]` in the node config) and that org is a
//! recipient. The one exception is the index of a recipient's node, which
//! keeps the opened measurements for the quality series ([`OrgKey`] as
//! `store::Opener`), sealed under the period's at-rest key when the record
//! has a key period. A caller sees plaintext only if the read policy's private
//! rule entitles it ([`lotline_genesis::ReadPolicy::can_read_private`]):
//! the same rule admission used to choose the recipients. Nothing here logs
//! a value or a key.

use lotline_core::at_rest::PeriodAtRestKey;
use lotline_core::epcis::Event;
use lotline_core::private::{self, Disclosure, EncryptionSecretKey, PrivateError};
use lotline_core::statement::Statement;
use lotline_genesis::{Genesis, RecordFacts};

use super::Identity;
use super::shred::{PeriodKeyError, PeriodKeys};

/// This node's org encryption key (`[private]`), checked against genesis
/// at start.
#[derive(Debug)]
pub struct OrgKey {
    pub org: String,
    /// The org's current encryption key first, then its retired ones
    /// (`[private] retired_keys`): a wrap names its key, and the matching
    /// one opens it.
    pub keys: Vec<EncryptionSecretKey>,
    /// The org's period keys (`[private] period_keys`), on a consortium with
    /// retention classes: sections with a key period open with these, never
    /// with `key`.
    pub periods: Option<std::sync::Arc<PeriodKeys>>,
}

/// The opened private fields of one record.
#[derive(Debug)]
pub struct Opened {
    /// The org whose key opened them (this node's).
    pub opened_by: String,
    pub fields: Vec<Disclosure>,
    /// The event with the fields restored.
    pub event: Event,
}

#[derive(Debug, thiserror::Error)]
pub enum PrivateReadError {
    #[error("the record has no private fields")]
    NotPrivate,
    #[error("the caller may read this record but not its private fields")]
    NotEntitled,
    #[error(
        "this node holds no key that opens the record's private fields; ask a node of a recipient org ({0})"
    )]
    NotHere(String),
    #[error(transparent)]
    Shredded(PeriodKeyError),
    #[error("the private section does not open: {0}")]
    Open(PrivateError),
}

/// Whether `identity` may read the private fields of `statement`.
/// `rules` is the membership in force (see [`super::visibility`]).
pub fn can_read_private(rules: &Genesis, identity: &Identity, statement: &Statement) -> bool {
    rules.read_policy().can_read_private(
        super::visibility::reader(rules, identity),
        &RecordFacts::of(statement),
    )
}

/// Opens `statement`'s private fields for `identity` with this node's key.
/// The caller must already have checked that `identity` may see the record
/// at all (a hidden record answers like an absent one before this).
pub fn open(
    genesis: &Genesis,
    key: Option<&OrgKey>,
    identity: &Identity,
    statement: &Statement,
) -> Result<Opened, PrivateReadError> {
    let section = statement
        .private
        .as_ref()
        .ok_or(PrivateReadError::NotPrivate)?;
    if !can_read_private(genesis, identity, statement) {
        return Err(PrivateReadError::NotEntitled);
    }
    let recipients = || section.recipient_orgs().collect::<Vec<_>>().join(", ");
    let key = key
        .filter(|k| section.recipient_orgs().any(|org| org == k.org))
        .ok_or_else(|| PrivateReadError::NotHere(recipients()))?;
    let fields = match section.key_period {
        None => section.open_with(&key.org, &key.keys),
        Some(period) => {
            let periods = key
                .periods
                .as_ref()
                .ok_or_else(|| PrivateReadError::NotHere(recipients()))?;
            let period_key = periods.key(period).map_err(|e| match e {
                PeriodKeyError::Shredded { .. } => PrivateReadError::Shredded(e),
                PeriodKeyError::Missing { .. } => PrivateReadError::NotHere(recipients()),
                PeriodKeyError::Bad { .. } => PrivateReadError::Open(PrivateError::UnwrapFailed),
            })?;
            section.open(&key.org, &period_key)
        }
    }
    .map_err(|e| match e {
        // A wrap to a key this node was not given (an org key rotated
        // before this node's keyring had it): another node of the org may.
        PrivateError::NoKeyFor(_) => PrivateReadError::NotHere(recipients()),
        e => PrivateReadError::Open(e),
    })?;
    let event = private::reveal(&statement.event, &fields).map_err(PrivateReadError::Open)?;
    Ok(Opened {
        opened_by: key.org.clone(),
        fields,
        event,
    })
}

/// The event member that carries measurements (`Event::quality`).
const QUALITY_MEMBER: &str = "/lotline:quality";

/// Opening at commit, for the index (`store::Opener`): a node whose org is
/// a recipient indexes the measurements of the records it opens, marked
/// private. A section wrapped to a key period opens with the period's key
/// while this node holds it, and what the index derives from it is sealed
/// under the period's at-rest key, so shredding the period leaves nothing
/// of it readable (`quality::series`, `access::shred`).
impl crate::store::Opener for OrgKey {
    fn open(&self, statement: &Statement) -> Option<crate::store::OpenedAtCommit> {
        let section = statement.private.as_ref()?;
        if !section.recipient_orgs().any(|org| org == self.org) {
            return None;
        }
        // Only measurements reach the index: a section whose (public)
        // paths seal nothing of the quality member is not opened, so
        // sealing prices or parties costs the commit path nothing.
        if !section
            .fields
            .iter()
            .any(|f| f.path == QUALITY_MEMBER || f.path.starts_with(&format!("{QUALITY_MEMBER}/")))
        {
            return None;
        }
        let (fields, at_rest) = match section.key_period {
            None => (section.open_with(&self.org, &self.keys).ok()?, None),
            Some(period) => {
                let key = self.periods.as_ref()?.key(period).ok()?;
                (
                    section.open(&self.org, &key).ok()?,
                    Some(PeriodAtRestKey::derive(period, &key)),
                )
            }
        };
        let event = private::reveal(&statement.event, &fields).ok()?;
        Some(crate::store::OpenedAtCommit {
            event: std::sync::Arc::new(event),
            at_rest,
        })
    }

    fn at_rest_keys(&self) -> Vec<PeriodAtRestKey> {
        self.periods
            .as_ref()
            .map(|p| p.at_rest_keys())
            .unwrap_or_default()
    }

    /// The org and its keys' public halves; and whether period keys are
    /// held (the folder's keys change as periods are shredded, which must
    /// not rebuild the index: a shredded period's records no longer open).
    fn fingerprint(&self) -> Vec<u8> {
        let mut out = self.org.clone().into_bytes();
        for key in &self.keys {
            out.push(b'/');
            out.extend_from_slice(key.public_key().to_hex().as_bytes());
        }
        if self.periods.is_some() {
            out.extend_from_slice(b"/periods");
        }
        out
    }
}
