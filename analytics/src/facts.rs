//! What the read rule needs to know about a row, and whose rows a reader
//! sees.
//!
//! Every row carries [`COLUMN`] (`read_facts`): the facts of its record
//! that the read policy looks at ([`RecordFacts`]: issuing org, event
//! type, bizStep, quality kind, publishable), encoded by [`encode`]. The
//! manifest lists every distinct value its files hold
//! ([`crate::Manifest::facts`]); a few dozen on a real chain.
//!
//! Who may read which facts is not decided here. The node hands SQL and
//! exports the read rule (`access::visibility`) evaluated with the
//! membership in force when the query runs, as a predicate
//! ([`Visibility::Org`]); they keep the rows whose facts it accepts. So an
//! org voted in, or a read policy changed by vote, reaches rows projected
//! before the vote, and there is one read rule, not a copy of it here.
//!
//! Private fields (statement version 2) never reach a row: the projection
//! sees the public event only, and sealed fields stay sealed.

use std::fmt;
use std::sync::Arc;

use lotline_core::epcis::{EventType, QualityKind};
use lotline_genesis::RecordFacts;

/// The column of every table that holds [`encode`] of its record's facts.
pub const COLUMN: &str = "read_facts";

/// The facts as a JSON array, `[org, eventType, bizStep|null,
/// qualityKind|null, publishable]`: a readable, unambiguous key any reader
/// can parse (bizStep may be a full URI, so no separator is safe).
pub fn encode(facts: &RecordFacts<'_>) -> String {
    let quality = facts.quality.map(|k| {
        match serde_json::to_value(k) {
            Ok(serde_json::Value::String(s)) => s,
            // A unit enum serializes to its tag; anything else is a bug.
            other => panic!("quality kind is not a unit enum: {other:?}"),
        }
    });
    serde_json::json!([
        facts.org,
        facts.event_type.as_str(),
        facts.biz_step,
        quality,
        facts.publishable
    ])
    .to_string()
}

/// The facts [`encode`] wrote, owned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Facts {
    pub org: String,
    pub event_type: EventType,
    pub biz_step: Option<String>,
    pub quality: Option<QualityKind>,
    pub publishable: bool,
}

impl Facts {
    /// `None` for a value [`encode`] does not write: a reader shows no row
    /// whose facts it cannot read (fail closed).
    pub fn decode(text: &str) -> Option<Facts> {
        type Encoded = (String, String, Option<String>, Option<QualityKind>, bool);
        let (org, event_type, biz_step, quality, publishable): Encoded =
            serde_json::from_str(text).ok()?;
        Some(Facts {
            org,
            event_type: event_type.parse().ok()?,
            biz_step,
            quality,
            publishable,
        })
    }

    /// What the read policy looks at.
    pub fn record(&self) -> RecordFacts<'_> {
        RecordFacts {
            org: &self.org,
            event_type: self.event_type,
            biz_step: self.biz_step.clone(),
            quality: self.quality,
            publishable: self.publishable,
        }
    }
}

/// The read rule for one reader: true if it may read a record with these
/// facts. Built by the node from `access::visibility` and the membership
/// in force.
pub type Rule = Arc<dyn Fn(&RecordFacts<'_>) -> bool + Send + Sync>;

/// Whose rows a query or an export holds.
#[derive(Clone)]
pub enum Visibility {
    /// Every row (full-read roles, the operator).
    All,
    /// The rows `reads` accepts; `org` names the reader (an export's
    /// manifest `reader`).
    Org { org: String, reads: Rule },
}

impl Visibility {
    pub fn org(
        org: impl Into<String>,
        reads: impl Fn(&RecordFacts<'_>) -> bool + Send + Sync + 'static,
    ) -> Visibility {
        Visibility::Org {
            org: org.into(),
            reads: Arc::new(reads),
        }
    }

    /// `all`, or the org.
    pub fn name(&self) -> &str {
        match self {
            Visibility::All => crate::manifest::READER_ALL,
            Visibility::Org { org, .. } => org,
        }
    }

    /// The values of `listed` (a manifest's facts) this reader reads;
    /// `None` for every row.
    pub fn readable<'a>(&self, listed: &'a [String]) -> Option<Vec<&'a str>> {
        match self {
            Visibility::All => None,
            Visibility::Org { reads, .. } => Some(
                listed
                    .iter()
                    .filter(|text| Facts::decode(text).is_some_and(|f| reads(&f.record())))
                    .map(String::as_str)
                    .collect(),
            ),
        }
    }
}

impl fmt::Debug for Visibility {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Visibility::All => f.write_str("All"),
            Visibility::Org { org, .. } => f.debug_tuple("Org").field(org).finish(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Goal: every fact the read policy looks at survives the column, and
    /// a value that is not an encoding is readable by no org.
    #[test]
    fn facts_round_trip_and_junk_fails_closed() {
        for (step, quality, publishable) in [
            (
                Some("urn:x|y,\"z\"".to_owned()),
                Some(QualityKind::RecallOrder),
                true,
            ),
            (None, None, false),
            (
                Some("shipping".to_owned()),
                Some(QualityKind::Inspection),
                false,
            ),
        ] {
            let record = RecordFacts {
                org: "supplier",
                event_type: EventType::TransformationEvent,
                biz_step: step,
                quality,
                publishable,
            };
            let text = encode(&record);
            assert_eq!(Facts::decode(&text).unwrap().record(), record, "{text}");
        }
        let listed = vec![
            "junk".to_owned(),
            ",supplier,".to_owned(),
            encode(&RecordFacts {
                org: "supplier",
                event_type: EventType::ObjectEvent,
                biz_step: None,
                quality: None,
                publishable: true,
            }),
        ];
        let everyone = Visibility::org("x", |_| true);
        assert_eq!(
            everyone.readable(&listed).unwrap(),
            vec![listed[2].as_str()]
        );
        assert_eq!(Visibility::All.readable(&listed), None);
    }
}
