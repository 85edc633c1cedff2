//! An event's identifiers, each parsed once.
//!
//! Indexing an event needs every identifier it names in three forms: the
//! canonical spelling (its listing, its lineage edges, its custody), the
//! parsed key (a commissioning ties each serial's GTIN to its lot) and its
//! kind (whether a node is found through its listing, whether a unit is a
//! serial). Parsing was a sixth of the write path's CPU when each of those
//! parsed again (docs/performance.md), so [`Names::of`] parses each
//! spelling once and every later step reads the result.
//!
//! The table holds what [`Event::canonical_identifiers`] lists: the
//! identifiers of [`Event::identifiers`] and the readPoint and bizLocation
//! ids. Any other spelling (a destination, a recall's scope) is parsed when
//! asked, so a lookup answers exactly what parsing it would.

use std::borrow::Cow;
use std::collections::HashMap;

use crate::epcis::Event;
use crate::gs1::Identifier;
use crate::trace::NodeKind;

/// One event's identifiers, parsed (module doc).
#[derive(Debug)]
pub struct Names<'e> {
    /// Each spelling to its place in `parsed`, or `None` when it does not
    /// parse (it is then its own canonical form and is not listed).
    spellings: HashMap<&'e str, Option<usize>>,
    /// The identifiers that parse, by canonical form, ascending, each once.
    parsed: Vec<(String, Identifier)>,
}

impl<'e> Names<'e> {
    /// Parses the identifiers `event` is listed under.
    pub fn of(event: &'e Event) -> Names<'e> {
        let locations = event
            .read_point
            .iter()
            .chain(&event.biz_location)
            .map(|l| l.id.as_str());
        let mut spellings: HashMap<&str, Option<usize>> = HashMap::new();
        let mut found: Vec<(&str, String, Identifier)> = Vec::new();
        for spelling in event.identifiers().chain(locations) {
            if spellings.insert(spelling, None).is_some() {
                continue;
            }
            if let Ok(identifier) = Identifier::parse(spelling) {
                found.push((spelling, identifier.canonical(), identifier));
            }
        }
        found.sort_by(|a, b| a.1.cmp(&b.1));
        let mut parsed: Vec<(String, Identifier)> = Vec::with_capacity(found.len());
        for (spelling, canonical, identifier) in found {
            if parsed.last().is_none_or(|(last, _)| *last != canonical) {
                parsed.push((canonical, identifier));
            }
            spellings.insert(spelling, Some(parsed.len() - 1));
        }
        Names { spellings, parsed }
    }

    /// The canonical form of `spelling`, as [`super::canonical`] gives it.
    pub fn canonical(&self, spelling: &str) -> String {
        match self.spellings.get(spelling) {
            Some(Some(at)) => self.parsed[*at].0.clone(),
            Some(None) => spelling.to_owned(),
            None => super::canonical(spelling),
        }
    }

    /// `spelling` parsed, if it parses.
    pub fn identifier(&self, spelling: &str) -> Option<Cow<'_, Identifier>> {
        match self.spellings.get(spelling) {
            Some(Some(at)) => Some(Cow::Borrowed(&self.parsed[*at].1)),
            Some(None) => None,
            None => Identifier::parse(spelling).ok().map(Cow::Owned),
        }
    }

    /// The canonical identifiers the event is listed under, ascending,
    /// each once (what [`Event::canonical_identifiers`] returns), with the
    /// kind of each.
    pub fn into_listed(self) -> Listed {
        let (names, kinds) = self
            .parsed
            .into_iter()
            .map(|(canonical, identifier)| (canonical, NodeKind::of_identifier(&identifier)))
            .unzip();
        Listed { names, kinds }
    }
}

/// The canonical identifiers an event is listed under, ascending, and the
/// kind of each (from [`Names::into_listed`]): what the writer of the
/// index asks of a node the event names without parsing it again.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Listed {
    /// Ascending, each once.
    names: Vec<String>,
    /// The kind of each of `names`, in the same order.
    kinds: Vec<NodeKind>,
}

impl Listed {
    /// The canonical identifiers, ascending, each once.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    pub fn into_names(self) -> Vec<String> {
        self.names
    }

    /// The kind of the listed `canonical` identifier; `None` if the event
    /// is not listed under it.
    pub fn kind(&self, canonical: &str) -> Option<NodeKind> {
        let at = self
            .names
            .binary_search_by(|name| name.as_str().cmp(canonical))
            .ok()?;
        self.kinds.get(at).copied()
    }

    /// The kind of `canonical`, listed or not (parsed when it is not).
    pub fn kind_or_parse(&self, canonical: &str) -> NodeKind {
        self.kind(canonical)
            .unwrap_or_else(|| NodeKind::of(canonical))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::epcis::Event;

    /// Spellings of one item, lot, class, container and location in their
    /// URN and Digital Link forms, and strings that do not parse.
    const SPELLINGS: &[&str] = &[
        "urn:epc:id:sgtin:0614141.107346.2018",
        "https://id.gs1.org/01/00614141073467/21/2018",
        "https://example.com/01/00614141073467/21/2018?x=1",
        "urn:epc:class:lgtin:4012345.012345.998877",
        "https://id.gs1.org/01/04012345123456/10/998877",
        "urn:epc:idpat:sgtin:4012345.098765.*",
        "urn:epc:id:sscc:0614141.1234567890",
        "https://id.gs1.org/00/106141412345678908",
        "urn:epc:id:sgln:0614141.07346.1234",
        "https://id.gs1.org/414/0614141073467",
        "urn:example:not-a-gs1-key",
        "https://id.gs1.org/01/123/21/x",
        "",
    ];

    fn spelling() -> impl Strategy<Value = String> {
        prop_oneof![
            prop::sample::select(SPELLINGS).prop_map(str::to_owned),
            "[a-z:/.0-9]{0,24}",
        ]
    }

    fn event(epcs: Vec<String>, parent: Option<String>, read_point: Option<String>) -> Event {
        let mut event = serde_json::json!({
            "type": "AggregationEvent",
            "eventTime": "2025-03-01T10:15:00.000Z",
            "eventTimeZoneOffset": "+01:00",
            "action": "ADD",
            "childEPCs": epcs,
        });
        if let Some(parent) = parent {
            event["parentID"] = parent.into();
        }
        if let Some(id) = read_point {
            event["readPoint"] = serde_json::json!({ "id": id });
        }
        serde_json::from_value(event).expect("an event")
    }

    proptest! {
        /// Goal: every answer is what parsing the spelling again would give.
        #[test]
        fn a_lookup_answers_what_parsing_would(
            epcs in prop::collection::vec(spelling(), 0..8),
            parent in prop::option::of(spelling()),
            read_point in prop::option::of(spelling()),
            asked in prop::collection::vec(spelling(), 0..4),
        ) {
            let event = event(epcs, parent, read_point);
            let names = Names::of(&event);
            let spellings: Vec<&str> = event
                .identifiers()
                .chain(event.read_point.iter().map(|l| l.id.as_str()))
                .chain(asked.iter().map(String::as_str))
                .collect();
            for spelling in spellings {
                prop_assert_eq!(names.canonical(spelling), super::super::canonical(spelling));
                prop_assert_eq!(
                    names.identifier(spelling).map(Cow::into_owned),
                    Identifier::parse(spelling).ok()
                );
            }
            let listed = names.into_listed();
            // The listing by parsing each spelling on its own.
            let reference: std::collections::BTreeSet<String> = event
                .identifiers()
                .chain(event.read_point.iter().map(|l| l.id.as_str()))
                .filter_map(|s| Identifier::parse(s).ok())
                .map(|id| id.canonical())
                .collect();
            prop_assert_eq!(&listed.names, &reference.into_iter().collect::<Vec<_>>());
            for name in &listed.names {
                prop_assert_eq!(listed.kind(name), Some(NodeKind::of(name)));
            }
            for spelling in &asked {
                prop_assert_eq!(listed.kind_or_parse(spelling), NodeKind::of(spelling));
            }
        }
    }
}
