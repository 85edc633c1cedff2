//! The EPCIS 2.0 query engine: parameters into a typed [`Query`], a plan
//! that starts from the most selective index, filtering on the decoded
//! event, and paging by chain position.
//!
//! **Plan.** Every listing of the store's query index is in chain order, so
//! the engine walks *one* parameter's listings (several values of it are
//! merged by position) and tests every other parameter on the event itself.
//! The driving parameter is the first present of: `EQ_eventID` (index `v`),
//! a `MATCH_*` (identifier index `i`), `EQ_bizLocation` / `EQ_readPoint`
//! (also `i`: locations are indexed identifiers), `EQ_bizStep` (`s`),
//! `eventType` (`t`); with none of them the whole chain (`p`) is walked. The
//! cost of a query is therefore the size of the driving listing up to one
//! page, never the size of the store, whenever a selective parameter is
//! given.
//!
//! **Bounds.** A page holds at most [`PER_PAGE_MAX`] events, and one request
//! examines at most [`EXAMINED_MAX`] index entries: a query whose filters
//! reject most of the driving listing returns a short (possibly empty) page
//! with a `nextPageToken` to continue from, instead of running unbounded.
//!
//! **Matching.** Identifiers (EPCs, classes, locations) are compared in
//! their canonical form ([`Identifier::canonical`]), so an EPC URN finds an
//! event that used a Digital Link and back. Only exact identifiers match:
//! EPC patterns (`urn:epc:idpat:...`) are accepted and canonicalised to the
//! product, which matches events naming the product itself, not its lots.
//! Vocabulary values compare in CBV short form (`shipping`).

use std::collections::BTreeSet;
use std::fmt;

use lotline_core::attestation::AttestationId;
use lotline_core::epcis::event_hash::{EventHash, event_hash};
use lotline_core::epcis::{Action, Event, EventType, SensorReport, normalize_vocabulary};
use lotline_core::gs1::Identifier;
use lotline_core::statement::Statement;
use lotline_core::time;

use crate::store::events::{Cursor, Listing, duplicate_listing};
use crate::store::index::Position;
use crate::store::{StoreError, StoreReader};

/// Events per page: default and maximum.
pub const PER_PAGE_DEFAULT: usize = 100;
pub const PER_PAGE_MAX: usize = 1000;
/// Index entries one request may examine.
pub const EXAMINED_MAX: usize = 20_000;
/// Values of one parameter (`a|b|c`).
pub const VALUES_MAX: usize = 100;

const _: () = assert!(PER_PAGE_DEFAULT <= PER_PAGE_MAX && PER_PAGE_MAX <= EXAMINED_MAX);

/// A parameter that cannot be used, named.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{param}: {reason}")]
pub struct ParamError {
    pub param: String,
    pub reason: String,
    /// The value has the documented shape but a rule the API document
    /// cannot state refuses it (an identifier or time grammar, an unknown
    /// event type, a page token): the API answers 422 instead of 400.
    pub unprocessable: bool,
}

/// A [`ParamError`] about a value of the right shape (see `unprocessable`).
fn value_error(param: &str, reason: impl fmt::Display) -> ParamError {
    ParamError {
        unprocessable: true,
        ..param_error(param, reason)
    }
}

fn param_error(param: &str, reason: impl fmt::Display) -> ParamError {
    ParamError {
        param: param.to_owned(),
        reason: reason.to_string(),
        unprocessable: false,
    }
}

/// Which identifier fields a `MATCH_*` parameter looks at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// `MATCH_epc`: epcList, childEPCs.
    Epc,
    /// `MATCH_parentID`.
    Parent,
    /// `MATCH_inputEPC`: inputEPCList.
    InputEpc,
    /// `MATCH_outputEPC`: outputEPCList.
    OutputEpc,
    /// `MATCH_anyEPC`: epcList, childEPCs, inputEPCList, outputEPCList, parentID.
    AnyEpc,
    /// `MATCH_epcClass`: quantityList, childQuantityList.
    EpcClass,
    /// `MATCH_inputEPCClass`: inputQuantityList.
    InputEpcClass,
    /// `MATCH_outputEPCClass`: outputQuantityList.
    OutputEpcClass,
    /// `MATCH_anyEPCClass`: every quantity list.
    AnyEpcClass,
}

impl Role {
    const ALL: [(&'static str, Role); 9] = [
        ("MATCH_epc", Role::Epc),
        ("MATCH_parentID", Role::Parent),
        ("MATCH_inputEPC", Role::InputEpc),
        ("MATCH_outputEPC", Role::OutputEpc),
        ("MATCH_anyEPC", Role::AnyEpc),
        ("MATCH_epcClass", Role::EpcClass),
        ("MATCH_inputEPCClass", Role::InputEpcClass),
        ("MATCH_outputEPCClass", Role::OutputEpcClass),
        ("MATCH_anyEPCClass", Role::AnyEpcClass),
    ];

    /// The identifiers of `event` in this role, as sent.
    fn values(self, event: &Event) -> Vec<&str> {
        fn epcs<'a>(lists: &[&'a Vec<String>]) -> Vec<&'a str> {
            lists
                .iter()
                .flat_map(|l| l.iter().map(String::as_str))
                .collect()
        }
        fn classes<'a>(lists: &[&'a Vec<lotline_core::epcis::QuantityElement>]) -> Vec<&'a str> {
            lists
                .iter()
                .flat_map(|l| l.iter().map(|q| q.epc_class.as_str()))
                .collect()
        }
        match self {
            Role::Epc => epcs(&[&event.epc_list, &event.child_epcs]),
            Role::Parent => event.parent_id.as_deref().into_iter().collect(),
            Role::InputEpc => epcs(&[&event.input_epc_list]),
            Role::OutputEpc => epcs(&[&event.output_epc_list]),
            Role::AnyEpc => {
                let mut all = epcs(&[
                    &event.epc_list,
                    &event.child_epcs,
                    &event.input_epc_list,
                    &event.output_epc_list,
                ]);
                all.extend(event.parent_id.as_deref());
                all
            }
            Role::EpcClass => classes(&[&event.quantity_list, &event.child_quantity_list]),
            Role::InputEpcClass => classes(&[&event.input_quantity_list]),
            Role::OutputEpcClass => classes(&[&event.output_quantity_list]),
            Role::AnyEpcClass => classes(&[
                &event.quantity_list,
                &event.child_quantity_list,
                &event.input_quantity_list,
                &event.output_quantity_list,
            ]),
        }
    }
}

/// A sensor report field a numeric filter compares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SensorField {
    Value,
    MinValue,
    MaxValue,
    MeanValue,
}

impl SensorField {
    fn parse(s: &str) -> Option<SensorField> {
        Some(match s {
            "value" => SensorField::Value,
            "minValue" => SensorField::MinValue,
            "maxValue" => SensorField::MaxValue,
            "meanValue" => SensorField::MeanValue,
            _ => return None,
        })
    }

    fn of(self, report: &SensorReport) -> Option<f64> {
        match self {
            SensorField::Value => report.value,
            SensorField::MinValue => report.min_value,
            SensorField::MaxValue => report.max_value,
            SensorField::MeanValue => report.mean_value,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compare {
    Eq,
    Gt,
    Ge,
    Lt,
    Le,
}

impl Compare {
    fn parse(s: &str) -> Option<Compare> {
        Some(match s {
            "EQ" => Compare::Eq,
            "GT" => Compare::Gt,
            "GE" => Compare::Ge,
            "LT" => Compare::Lt,
            "LE" => Compare::Le,
            _ => return None,
        })
    }

    fn holds(self, left: f64, right: f64) -> bool {
        match self {
            Compare::Eq => left == right,
            Compare::Gt => left > right,
            Compare::Ge => left >= right,
            Compare::Lt => left < right,
            Compare::Le => left <= right,
        }
    }
}

/// `GT_maxValue_CEL=8`: a report's `maxValue` in `CEL` is greater than 8.
#[derive(Clone, Debug, PartialEq)]
pub struct SensorCondition {
    pub field: SensorField,
    pub compare: Compare,
    pub uom: String,
    pub bound: f64,
}

/// `EQ_source_<type>`, `EQ_destination_<type>`, `EQ_bizTransaction_<type>`:
/// an entry of that type (CBV short form) whose value is one of `values`
/// (identifiers in canonical form when they parse, else as sent).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Typed {
    pub kind: String,
    pub values: Vec<String>,
}

impl Typed {
    fn holds<'a>(&self, entries: impl IntoIterator<Item = (&'a str, &'a str)>) -> bool {
        entries.into_iter().any(|(kind, value)| {
            normalize_vocabulary(kind) == self.kind && self.values.contains(&identity_of(value))
        })
    }
}

/// Where an ILMD or extension-field parameter looks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// `..._ILMD_<name>`: a top-level member of `ilmd`.
    Ilmd,
    /// `..._<prefix:name>`: a top-level extension member of the event.
    Event,
    /// `..._INNER_ILMD_<name>`: a member at any depth inside `ilmd`.
    InnerIlmd,
    /// `..._INNER_<name>`: a member at any depth inside an extension member.
    Inner,
}

/// What a field parameter asks of the field's value.
#[derive(Clone, Debug, PartialEq)]
pub enum FieldTest {
    /// `EQ_`: the value (a string, number or boolean) is one of these.
    Eq(Vec<String>),
    /// `GT_`/`GE_`/`LT_`/`LE_`: a number, or an RFC 3339 time, compared.
    Compare(Compare, Bound),
    /// `EXISTS_`: the member is present.
    Exists,
}

/// A comparison bound: numeric, or a time (ms since the epoch).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Bound {
    Number(f64),
    Time(i64),
}

/// `EQ_ILMD_example:lot=7`, `GT_example:weight=5`, `EXISTS_INNER_ex:x`.
/// Names are compared as sent (`prefix:localName`, with the prefix the
/// capture document bound), not resolved to namespace URIs.
#[derive(Clone, Debug, PartialEq)]
pub struct FieldCondition {
    pub scope: Scope,
    pub name: String,
    pub test: FieldTest,
}

/// A location's master-data attributes as (attribute id, value as text).
pub type Attributes = Vec<(String, String)>;
/// Gives the attributes of an identifier's master data (cached by [`run`]).
pub type AttributeLookup<'a> = dyn FnMut(&str) -> Result<Attributes, StoreError> + 'a;

/// Which event field a master-data attribute parameter looks through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttrField {
    ReadPoint,
    BizLocation,
}

/// `HASATTR_bizLocation=name` (the location's master data has that
/// attribute) and `EQ_ATTR_bizLocation_name=Plant 1` (with one of those
/// values). Attributes match by full id or local name
/// (`urn:epcglobal:cbv:mda#name` or `name`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttrCondition {
    pub field: AttrField,
    pub attributes: Vec<String>,
    /// `None` for `HASATTR_`.
    pub values: Option<Vec<String>>,
}

/// A parsed `GET /epcis/events` query. Empty lists mean "no filter".
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Query {
    pub event_types: Vec<EventType>,
    /// `EQ_action`: ADD, OBSERVE or DELETE.
    pub actions: Vec<Action>,
    pub event_time_ge: Option<i64>,
    pub event_time_lt: Option<i64>,
    pub record_time_ge: Option<i64>,
    pub record_time_lt: Option<i64>,
    /// CBV short forms.
    pub biz_steps: Vec<String>,
    pub dispositions: Vec<String>,
    /// Canonical identifiers.
    pub biz_locations: Vec<String>,
    pub read_points: Vec<String>,
    /// Each `MATCH_*` with its canonical identifiers.
    pub matches: Vec<(Role, Vec<String>)>,
    pub event_ids: Vec<String>,
    pub error_declaration: bool,
    /// `EQ_type`: sensor report types, short form (`Temperature`).
    pub sensor_types: Vec<String>,
    pub sensor_conditions: Vec<SensorCondition>,
    pub sources: Vec<Typed>,
    pub destinations: Vec<Typed>,
    pub biz_transactions: Vec<Typed>,
    /// `EQ_errorReason`, CBV short form.
    pub error_reasons: Vec<String>,
    /// `EQ_quantity`, `GT_quantity`...: some quantity element satisfies each.
    pub quantity_conditions: Vec<(Compare, f64)>,
    pub field_conditions: Vec<FieldCondition>,
    /// Tested by [`run`] against master data (needs the store).
    pub attr_conditions: Vec<AttrCondition>,
    /// `eventCountLimit`: at most this many events, one answer, no next page.
    pub event_count_limit: Option<usize>,
    /// `maxEventCount`: all matching events in one answer, or
    /// [`Page::too_many`] if more than this many match.
    pub max_event_count: Option<usize>,
    pub per_page: usize,
    pub after: Option<Position>,
}

impl Query {
    /// Parses query-string pairs. Unknown, repeated or empty parameters and
    /// values that do not parse are errors naming the parameter.
    pub fn parse(pairs: &[(String, String)]) -> Result<Query, ParamError> {
        let mut query = Query {
            per_page: PER_PAGE_DEFAULT,
            ..Query::default()
        };
        let mut seen = BTreeSet::new();
        for (name, value) in pairs {
            if !seen.insert(name.as_str()) {
                return Err(param_error(
                    name,
                    "given more than once; list several values as a|b",
                ));
            }
            query.apply(name, value)?;
        }
        if query.event_count_limit.is_some() && query.max_event_count.is_some() {
            return Err(value_error(
                "maxEventCount",
                "eventCountLimit and maxEventCount exclude each other",
            ));
        }
        Ok(query)
    }

    /// Adds one parameter.
    fn apply(&mut self, name: &str, value: &str) -> Result<(), ParamError> {
        match name {
            "eventType" => {
                self.event_types = values(name, value)?
                    .into_iter()
                    .map(|v| {
                        v.parse::<EventType>()
                            .map_err(|_| value_error(name, format!("unknown event type {v:?}")))
                    })
                    .collect::<Result<_, _>>()?;
            }
            "EQ_action" => {
                self.actions = values(name, value)?
                    .into_iter()
                    .map(|v| match v.as_str() {
                        "ADD" => Ok(Action::Add),
                        "OBSERVE" => Ok(Action::Observe),
                        "DELETE" => Ok(Action::Delete),
                        _ => Err(value_error(
                            name,
                            format!("{v:?} is not ADD, OBSERVE or DELETE"),
                        )),
                    })
                    .collect::<Result<_, _>>()?;
            }
            "GE_eventTime" => self.event_time_ge = Some(instant(name, value)?),
            "LT_eventTime" => self.event_time_lt = Some(instant(name, value)?),
            "GE_recordTime" => self.record_time_ge = Some(instant(name, value)?),
            "LT_recordTime" => self.record_time_lt = Some(instant(name, value)?),
            "EQ_bizStep" => self.biz_steps = vocabulary(name, value)?,
            "EQ_disposition" => self.dispositions = vocabulary(name, value)?,
            "EQ_bizLocation" => self.biz_locations = identifiers(name, value)?,
            "EQ_readPoint" => self.read_points = identifiers(name, value)?,
            "EQ_eventID" => self.event_ids = values(name, value)?,
            "EXISTS_errorDeclaration" => {
                if !matches!(value, "" | "true") {
                    return Err(param_error(
                        name,
                        "takes no value (or \"true\"): it selects events that carry an errorDeclaration",
                    ));
                }
                self.error_declaration = true;
            }
            "EQ_type" => {
                self.sensor_types = values(name, value)?
                    .iter()
                    .map(|v| sensor_type_short(v))
                    .collect();
            }
            "perPage" => {
                let n: usize = value.parse().map_err(|_| {
                    param_error(name, format!("{value:?} is not a positive integer"))
                })?;
                if !(1..=PER_PAGE_MAX).contains(&n) {
                    return Err(param_error(
                        name,
                        format!("must be 1 to {PER_PAGE_MAX}, got {n}"),
                    ));
                }
                self.per_page = n;
            }
            "nextPageToken" => {
                self.after = Some(parse_token(value).map_err(|r| value_error(name, r))?)
            }
            "EQ_errorReason" => self.error_reasons = vocabulary(name, value)?,
            "eventCountLimit" => self.event_count_limit = Some(count(name, value)?),
            "maxEventCount" => self.max_event_count = Some(count(name, value)?),
            "orderBy" => {
                if normalize_vocabulary(value) != "recordTime" {
                    return Err(value_error(
                        name,
                        "only recordTime: results come in chain (commit) order; ordering by another field needs a sort over every match, unbounded",
                    ));
                }
            }
            "orderDirection" => {
                if value != "ASC" {
                    return Err(value_error(
                        name,
                        "only ASC: the index is walked forward from the page token",
                    ));
                }
            }
            _ => {
                if let Some(&(_, role)) = Role::ALL.iter().find(|(n, _)| *n == name) {
                    self.matches.push((role, identifiers(name, value)?));
                } else if let Some(kind) = name.strip_prefix("EQ_source_") {
                    self.sources.push(typed(name, kind, value)?);
                } else if let Some(kind) = name.strip_prefix("EQ_destination_") {
                    self.destinations.push(typed(name, kind, value)?);
                } else if let Some(kind) = name.strip_prefix("EQ_bizTransaction_") {
                    self.biz_transactions.push(typed(name, kind, value)?);
                } else if let Some(compare) = quantity_compare(name) {
                    let bound = number(name, value)?;
                    self.quantity_conditions.push((compare, bound));
                } else if let Some(condition) = attr_condition(name, value)? {
                    self.attr_conditions.push(condition);
                } else if let Some(condition) = field_condition(name, value)? {
                    self.field_conditions.push(condition);
                } else if let Some(condition) = sensor_condition(name, value)? {
                    self.sensor_conditions.push(condition);
                } else {
                    return Err(param_error(
                        name,
                        "unknown query parameter (see docs/epcis.md for the supported subset)",
                    ));
                }
            }
        }
        Ok(())
    }

    /// The listings to walk (merged), most selective parameter first; see
    /// the module doc.
    pub fn plan(&self) -> Vec<Listing> {
        if !self.event_ids.is_empty() {
            return self
                .event_ids
                .iter()
                .cloned()
                .map(Listing::EventId)
                .collect();
        }
        if let Some((_, ids)) = self.matches.first() {
            return ids.iter().cloned().map(Listing::Identifier).collect();
        }
        for locations in [&self.biz_locations, &self.read_points] {
            if !locations.is_empty() {
                return locations.iter().cloned().map(Listing::Identifier).collect();
            }
        }
        if !self.biz_steps.is_empty() {
            return self
                .biz_steps
                .iter()
                .cloned()
                .map(Listing::BizStep)
                .collect();
        }
        if !self.event_types.is_empty() {
            return self
                .event_types
                .iter()
                .map(|t| Listing::EventType(t.as_str().to_owned()))
                .collect();
        }
        vec![Listing::All]
    }

    /// True when `event`, recorded at `record_time_ms`, passes every filter.
    pub fn matches(&self, event: &Event, record_time_ms: i64) -> bool {
        let within = |t: Option<i64>, ge: Option<i64>, lt: Option<i64>| match t {
            Some(t) => ge.is_none_or(|g| t >= g) && lt.is_none_or(|l| t < l),
            None => ge.is_none() && lt.is_none(),
        };
        let any_of = |wanted: &[String], have: Option<String>| {
            wanted.is_empty() || have.is_some_and(|h| wanted.contains(&h))
        };
        (self.event_types.is_empty() || self.event_types.contains(&event.event_type))
            && (self.actions.is_empty() || event.action.is_some_and(|a| self.actions.contains(&a)))
            && within(
                event.event_time_ms(),
                self.event_time_ge,
                self.event_time_lt,
            )
            && within(
                Some(record_time_ms),
                self.record_time_ge,
                self.record_time_lt,
            )
            && any_of(&self.biz_steps, event.biz_step_short())
            && any_of(
                &self.dispositions,
                event.disposition.as_deref().map(normalize_vocabulary),
            )
            && any_of(
                &self.biz_locations,
                event.biz_location.as_ref().and_then(|l| canonical(&l.id)),
            )
            && any_of(
                &self.read_points,
                event.read_point.as_ref().and_then(|l| canonical(&l.id)),
            )
            && (self.event_ids.is_empty()
                || event
                    .event_id
                    .as_ref()
                    .is_some_and(|id| self.event_ids.contains(id)))
            && (!self.error_declaration || event.error_declaration.is_some())
            && self.matches.iter().all(|(role, wanted)| {
                role.values(event)
                    .into_iter()
                    .filter_map(canonical)
                    .any(|id| wanted.contains(&id))
            })
            && self.sensor_matches(event)
            && self.why_matches(event)
            && self.quantity_conditions.iter().all(|(compare, bound)| {
                [
                    &event.quantity_list,
                    &event.child_quantity_list,
                    &event.input_quantity_list,
                    &event.output_quantity_list,
                ]
                .into_iter()
                .flatten()
                .any(|q| q.quantity.is_some_and(|n| compare.holds(n, *bound)))
            })
            && self
                .field_conditions
                .iter()
                .all(|condition| condition.holds(event))
    }

    /// Sources, destinations, business transactions and the error reason.
    fn why_matches(&self, event: &Event) -> bool {
        self.sources.iter().all(|t| {
            t.holds(
                event
                    .source_list
                    .iter()
                    .map(|s| (s.kind.as_str(), s.source.as_str())),
            )
        }) && self.destinations.iter().all(|t| {
            t.holds(
                event
                    .destination_list
                    .iter()
                    .map(|d| (d.kind.as_str(), d.destination.as_str())),
            )
        }) && self.biz_transactions.iter().all(|t| {
            t.holds(event.biz_transaction_list.iter().filter_map(|b| {
                b.kind
                    .as_deref()
                    .map(|kind| (kind, b.biz_transaction.as_str()))
            }))
        }) && (self.error_reasons.is_empty()
            || event
                .error_declaration
                .as_ref()
                .and_then(|d| d.reason.as_deref())
                .is_some_and(|r| self.error_reasons.contains(&normalize_vocabulary(r))))
    }

    /// The master-data attribute conditions, with `lookup` giving the
    /// attributes of an identifier's master data (cached by the caller).
    pub fn attrs_match(
        &self,
        event: &Event,
        lookup: &mut AttributeLookup<'_>,
    ) -> Result<bool, StoreError> {
        for condition in &self.attr_conditions {
            let location = match condition.field {
                AttrField::ReadPoint => event.read_point.as_ref(),
                AttrField::BizLocation => event.biz_location.as_ref(),
            };
            let Some(location) = location else {
                return Ok(false);
            };
            let attributes = lookup(&location.id)?;
            let found = attributes.iter().any(|(id, value)| {
                condition
                    .attributes
                    .iter()
                    .any(|wanted| attribute_named(id, wanted))
                    && condition
                        .values
                        .as_ref()
                        .is_none_or(|vs| vs.contains(value))
            });
            if !found {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Some single sensor report satisfies `EQ_type` and every condition.
    fn sensor_matches(&self, event: &Event) -> bool {
        if self.sensor_types.is_empty() && self.sensor_conditions.is_empty() {
            return true;
        }
        event
            .sensor_element_list
            .iter()
            .flat_map(|element| &element.sensor_report)
            .any(|report| {
                let kind = report.kind.as_deref().map(sensor_type_short);
                (self.sensor_types.is_empty()
                    || kind.is_some_and(|k| self.sensor_types.contains(&k)))
                    && self.sensor_conditions.iter().all(|c| {
                        report.uom.as_deref() == Some(c.uom.as_str())
                            && c.field
                                .of(report)
                                .is_some_and(|v| c.compare.holds(v, c.bound))
                    })
            })
    }
}

/// `a|b|c`, none empty, at most [`VALUES_MAX`].
fn values(name: &str, value: &str) -> Result<Vec<String>, ParamError> {
    if value.is_empty() {
        return Err(param_error(name, "needs a value"));
    }
    let list: Vec<String> = value.split('|').map(str::to_owned).collect();
    if list.len() > VALUES_MAX {
        return Err(param_error(
            name,
            format!("at most {VALUES_MAX} values, got {}", list.len()),
        ));
    }
    if list.iter().any(String::is_empty) {
        return Err(param_error(name, "an empty value between '|' separators"));
    }
    Ok(list)
}

fn instant(name: &str, value: &str) -> Result<i64, ParamError> {
    time::parse_rfc3339_ms(value).map_err(|e| value_error(name, e))
}

fn vocabulary(name: &str, value: &str) -> Result<Vec<String>, ParamError> {
    Ok(values(name, value)?
        .iter()
        .map(|v| normalize_vocabulary(v))
        .collect())
}

/// EPCs, classes or locations in canonical form; each must parse.
fn identifiers(name: &str, value: &str) -> Result<Vec<String>, ParamError> {
    values(name, value)?
        .iter()
        .map(|v| {
            Identifier::parse(v)
                .map(|id| id.canonical())
                .map_err(|e| value_error(name, format!("{v:?}: {e}")))
        })
        .collect()
}

fn canonical(value: &str) -> Option<String> {
    Identifier::parse(value).ok().map(|id| id.canonical())
}

/// `gs1:Temperature` and `https://gs1.org/voc/Temperature` are `Temperature`.
fn sensor_type_short(value: &str) -> String {
    value
        .strip_prefix("gs1:")
        .or_else(|| value.strip_prefix("https://gs1.org/voc/"))
        .unwrap_or(value)
        .to_owned()
}

/// An identifier in canonical form when it parses, else as sent (source
/// and destination values may be any URI).
fn identity_of(value: &str) -> String {
    canonical(value).unwrap_or_else(|| value.to_owned())
}

fn typed(name: &str, kind: &str, value: &str) -> Result<Typed, ParamError> {
    if kind.is_empty() {
        return Err(param_error(
            name,
            "the type follows the parameter name, e.g. EQ_source_owning_party",
        ));
    }
    Ok(Typed {
        kind: normalize_vocabulary(kind),
        values: values(name, value)?
            .iter()
            .map(|v| identity_of(v))
            .collect(),
    })
}

fn number(name: &str, value: &str) -> Result<f64, ParamError> {
    value
        .parse()
        .ok()
        .filter(|b: &f64| b.is_finite())
        .ok_or_else(|| param_error(name, format!("{value:?} is not a finite number")))
}

/// `eventCountLimit`, `maxEventCount`: 1 to [`PER_PAGE_MAX`] (one answer).
fn count(name: &str, value: &str) -> Result<usize, ParamError> {
    let n: usize = value
        .parse()
        .map_err(|_| param_error(name, format!("{value:?} is not a positive integer")))?;
    if !(1..=PER_PAGE_MAX).contains(&n) {
        return Err(param_error(
            name,
            format!("must be 1 to {PER_PAGE_MAX} (one answer), got {n}"),
        ));
    }
    Ok(n)
}

fn quantity_compare(name: &str) -> Option<Compare> {
    Compare::parse(name.strip_suffix("_quantity")?)
}

/// True when an attribute id names `wanted` (its full id or local name).
fn attribute_named(id: &str, wanted: &str) -> bool {
    id == wanted || id.rsplit(['#', '/', ':']).next() == Some(wanted)
}

/// `HASATTR_<field>=<attr>|...` and `EQ_ATTR_<field>_<attr>=<value>|...`.
fn attr_condition(name: &str, value: &str) -> Result<Option<AttrCondition>, ParamError> {
    let field_of = |field: &str| match field {
        "readPoint" => Ok(AttrField::ReadPoint),
        "bizLocation" => Ok(AttrField::BizLocation),
        _ => Err(param_error(
            name,
            "master data attributes are queried through readPoint or bizLocation",
        )),
    };
    if let Some(field) = name.strip_prefix("HASATTR_") {
        return Ok(Some(AttrCondition {
            field: field_of(field)?,
            attributes: values(name, value)?,
            values: None,
        }));
    }
    if let Some(rest) = name.strip_prefix("EQ_ATTR_") {
        let Some((field, attribute)) = rest.split_once('_').filter(|(_, a)| !a.is_empty()) else {
            return Err(param_error(
                name,
                "EQ_ATTR_<readPoint|bizLocation>_<attribute>",
            ));
        };
        return Ok(Some(AttrCondition {
            field: field_of(field)?,
            attributes: vec![attribute.to_owned()],
            values: Some(values(name, value)?),
        }));
    }
    Ok(None)
}

/// ILMD and extension-field parameters; `None` if the name is not one.
/// Extension names carry their prefix (`example:weight`), which tells them
/// from the standard parameters.
fn field_condition(name: &str, value: &str) -> Result<Option<FieldCondition>, ParamError> {
    let Some((op, rest)) = name.split_once('_') else {
        return Ok(None);
    };
    let (scope, field) = if let Some(f) = rest.strip_prefix("INNER_ILMD_") {
        (Scope::InnerIlmd, f)
    } else if let Some(f) = rest.strip_prefix("ILMD_") {
        (Scope::Ilmd, f)
    } else if let Some(f) = rest.strip_prefix("INNER_") {
        (Scope::Inner, f)
    } else {
        (Scope::Event, rest)
    };
    if scope == Scope::Event && !field.contains(':') {
        return Ok(None);
    }
    let test = match op {
        "EQ" => FieldTest::Eq(values(name, value)?),
        "EXISTS" => {
            if !matches!(value, "" | "true") {
                return Err(param_error(name, "takes no value (or \"true\")"));
            }
            FieldTest::Exists
        }
        other => {
            let Some(compare) = Compare::parse(other) else {
                return Ok(None);
            };
            let bound = match value.parse::<f64>() {
                Ok(n) if n.is_finite() => Bound::Number(n),
                _ => Bound::Time(time::parse_rfc3339_ms(value).map_err(|_| {
                    value_error(
                        name,
                        format!("{value:?} is neither a number nor an RFC 3339 time"),
                    )
                })?),
            };
            FieldTest::Compare(compare, bound)
        }
    };
    if field.is_empty() {
        return Err(param_error(name, "names no field"));
    }
    Ok(Some(FieldCondition {
        scope,
        name: field.to_owned(),
        test,
    }))
}

impl FieldCondition {
    fn holds(&self, event: &Event) -> bool {
        let ilmd = event.ilmd.as_ref();
        let mut found: Vec<&serde_json::Value> = Vec::new();
        match self.scope {
            Scope::Ilmd => found.extend(ilmd.and_then(|m| m.get(&self.name))),
            Scope::Event => found.extend(event.extensions.get(&self.name)),
            Scope::InnerIlmd => {
                for v in ilmd.into_iter().flat_map(|m| m.values()) {
                    nested(v, &self.name, &mut found);
                }
            }
            Scope::Inner => {
                for v in event.extensions.values() {
                    nested(v, &self.name, &mut found);
                }
            }
        }
        found.into_iter().any(|v| self.test.holds(v))
    }
}

/// Members named `name` at any depth inside `value`.
fn nested<'a>(value: &'a serde_json::Value, name: &str, out: &mut Vec<&'a serde_json::Value>) {
    match value {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                if k == name {
                    out.push(v);
                }
                nested(v, name, out);
            }
        }
        serde_json::Value::Array(items) => {
            for v in items {
                nested(v, name, out);
            }
        }
        _ => {}
    }
}

impl FieldTest {
    fn holds(&self, value: &serde_json::Value) -> bool {
        use serde_json::Value;
        match self {
            FieldTest::Exists => true,
            FieldTest::Eq(wanted) => match value {
                Value::String(s) => wanted.contains(s),
                Value::Number(n) => n
                    .as_f64()
                    .is_some_and(|n| wanted.iter().any(|w| w.parse::<f64>() == Ok(n))),
                Value::Bool(b) => wanted.contains(&b.to_string()),
                _ => false,
            },
            FieldTest::Compare(compare, Bound::Number(bound)) => {
                let n = match value {
                    Value::Number(n) => n.as_f64(),
                    Value::String(s) => s.parse::<f64>().ok(),
                    _ => None,
                };
                n.is_some_and(|n| compare.holds(n, *bound))
            }
            FieldTest::Compare(compare, Bound::Time(bound)) => value
                .as_str()
                .and_then(|s| time::parse_rfc3339_ms(s).ok())
                .is_some_and(|t| {
                    #[expect(clippy::cast_precision_loss, reason = "ms fit f64 exactly up to 2^53")]
                    compare.holds(t as f64, *bound as f64)
                }),
        }
    }
}

/// `GT_maxValue_CEL=8`; `None` if the name is not of that shape at all.
fn sensor_condition(name: &str, value: &str) -> Result<Option<SensorCondition>, ParamError> {
    let mut parts = name.splitn(3, '_');
    let (Some(op), Some(field), Some(uom)) = (parts.next(), parts.next(), parts.next()) else {
        return Ok(None);
    };
    let (Some(compare), Some(field)) = (Compare::parse(op), SensorField::parse(field)) else {
        return Ok(None);
    };
    if uom.is_empty() || !uom.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(param_error(
            name,
            "the unit of measure after the field is a UN/CEFACT code such as CEL",
        ));
    }
    let bound: f64 = value
        .parse()
        .ok()
        .filter(|b: &f64| b.is_finite())
        .ok_or_else(|| param_error(name, format!("{value:?} is not a finite number")))?;
    Ok(Some(SensorCondition {
        field,
        compare,
        uom: uom.to_owned(),
        bound,
    }))
}

/// The opaque page token: the chain position of the last event examined,
/// as 24 hex digits (height, index).
pub fn page_token(at: Position) -> String {
    format!("{:016x}{:08x}", at.height, at.index)
}

fn parse_token(token: &str) -> Result<Position, String> {
    let bad = || format!("{token:?} is not a page token this node issued");
    if token.len() != 24 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad());
    }
    let height = u64::from_str_radix(&token[..16], 16).map_err(|_| bad())?;
    let index = u32::from_str_radix(&token[16..], 16).map_err(|_| bad())?;
    Ok(Position { height, index })
}

/// One event a query found.
#[derive(Clone, Debug)]
pub struct Found {
    pub at: Position,
    pub id: AttestationId,
    pub org: String,
    pub event: Event,
    /// The event's CBV 2.0 hash (`lotline:eventHash`).
    pub hash: EventHash,
    /// The first capture of the same event by the same org, when this is a
    /// later one (admitted before the first committed; see
    /// [`crate::epcis::dedup`]). Query listings leave such repeats out; it
    /// is set only when one is read by its attestation id.
    pub duplicate_of: Option<AttestationId>,
    /// Commit time: the proposer's clock in the block header.
    pub record_time_ms: i64,
}

/// A page of results and where the next one starts.
#[derive(Debug, Default)]
pub struct Page {
    pub events: Vec<Found>,
    pub next: Option<Position>,
    /// Index entries examined (for tests and metrics).
    pub examined: usize,
    /// The last entry examined: where a caller that found nothing may go
    /// on from (subscriptions skip what they have already ruled out).
    pub last: Option<Position>,
    /// `maxEventCount` was given and more events match (or more entries
    /// than one request may examine would have to be counted).
    pub too_many: bool,
}

/// Merges several cursors by chain position, dropping repeats (an event
/// naming two of the wanted identifiers is listed under both).
struct Merge {
    cursors: Vec<std::iter::Peekable<Cursor>>,
    last: Option<Position>,
}

impl Iterator for Merge {
    type Item = Result<Position, StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let mut best: Option<(usize, Position)> = None;
            for (i, cursor) in self.cursors.iter_mut().enumerate() {
                match cursor.peek() {
                    None => {}
                    Some(Err(_)) => {
                        let Some(Err(e)) = cursor.next() else {
                            continue;
                        };
                        return Some(Err(e));
                    }
                    Some(Ok(at)) if best.is_none_or(|(_, b)| *at < b) => {
                        best = Some((i, *at));
                    }
                    Some(Ok(_)) => {}
                }
            }
            let (i, _) = best?;
            let Some(Ok(at)) = self.cursors[i].next() else {
                continue;
            };
            if self.last == Some(at) {
                continue;
            }
            self.last = Some(at);
            return Some(Ok(at));
        }
    }
}

/// Which committed statements the caller may see (the access layer's
/// `can_read`); hidden events are skipped before the page is cut, exactly as
/// if they did not exist.
pub type Visible<'a> = &'a dyn Fn(&Statement) -> bool;

/// Runs a query against the store: one page.
pub fn run(reader: &StoreReader, query: &Query, visible: Visible<'_>) -> Result<Page, StoreError> {
    let cursors = query
        .plan()
        .iter()
        .map(|listing| reader.event_cursor(listing, query.after).peekable())
        .collect();
    let mut merged = Merge {
        cursors,
        last: None,
    }
    .peekable();
    let mut page = Page::default();
    let mut block_time: Option<(u64, i64)> = None;
    let per_page = match (query.event_count_limit, query.max_event_count) {
        (Some(limit), _) => limit.min(query.per_page),
        (None, Some(max)) => max + 1,
        (None, None) => query.per_page,
    };
    let mut attributes: std::collections::BTreeMap<String, Attributes> =
        std::collections::BTreeMap::new();
    let mut lookup = |id: &str| -> Result<Attributes, StoreError> {
        if let Some(known) = attributes.get(id) {
            return Ok(known.clone());
        }
        let found: Attributes = crate::epcis::master_data::lookup(reader, id)?
            .map(|entry| {
                entry
                    .element
                    .attributes
                    .iter()
                    .map(|a| {
                        let value = match &a.attribute {
                            serde_json::Value::String(s) => s.clone(),
                            other => other.to_string(),
                        };
                        (a.id.clone(), value)
                    })
                    .collect()
            })
            .unwrap_or_default();
        attributes.insert(id.to_owned(), found.clone());
        Ok(found)
    };
    while let Some(entry) = merged.next() {
        let at = entry?;
        page.examined += 1;
        page.last = Some(at);
        // A repeat of an earlier capture (committed after it) is not an
        // event of its own (`store::events`, "Repeats at application").
        if let Some(found) = load(reader, at, &mut block_time, visible)?
            && found.duplicate_of.is_none()
            && query.matches(&found.event, found.record_time_ms)
            && (query.attr_conditions.is_empty() || query.attrs_match(&found.event, &mut lookup)?)
        {
            page.events.push(found);
        }
        let full = page.events.len() >= per_page;
        if full || page.examined >= EXAMINED_MAX {
            if merged.peek().is_some() {
                page.next = Some(at);
            }
            break;
        }
    }
    if let Some(max) = query.max_event_count {
        page.too_many = page.events.len() > max || page.next.is_some();
        page.events.truncate(max);
    }
    if query.event_count_limit.is_some() || query.max_event_count.is_some() {
        page.next = None;
    }
    Ok(page)
}

/// The committed event at `at`, with its block's time (cached across
/// consecutive events of one block).
fn load(
    reader: &StoreReader,
    at: Position,
    block_time: &mut Option<(u64, i64)>,
    visible: Visible<'_>,
) -> Result<Option<Found>, StoreError> {
    let Some((id, stored)) = reader.attestation_at(at)? else {
        return Ok(None);
    };
    let Ok(statement) = Statement::from_payload(&stored.envelope.payload) else {
        return Ok(None);
    };
    if !visible(&statement) {
        return Ok(None);
    }
    let record_time_ms = match *block_time {
        Some((height, ms)) if height == at.height => ms,
        _ => {
            let ms = reader
                .block_header(at.height)?
                .map(|header| i64::try_from(header.timestamp_ms).unwrap_or(i64::MAX))
                .unwrap_or_default();
            *block_time = Some((at.height, ms));
            ms
        }
    };
    let hash = event_hash(&statement.event);
    let listing = Listing::Duplicate(duplicate_listing(&statement.event, &statement.org));
    let duplicate_of = match reader.event_first(&listing)? {
        Some(first) if first != at => reader.attestation_at(first)?.map(|(id, _)| id),
        _ => None,
    };
    Ok(Some(Found {
        at,
        id,
        org: statement.org,
        event: statement.event,
        hash,
        duplicate_of,
        record_time_ms,
    }))
}

/// The committed event carried by attestation `id`.
pub fn by_attestation(
    reader: &StoreReader,
    id: &AttestationId,
    visible: Visible<'_>,
) -> Result<Option<Found>, StoreError> {
    let Some(at) = reader.position(id)? else {
        return Ok(None);
    };
    load(reader, at, &mut None, visible)
}

/// The latest committed event with this eventID (an error declaration is
/// captured under the eventID of the event it corrects, so the latest one
/// is the repository's current view of that event).
pub fn by_event_id(
    reader: &StoreReader,
    event_id: &str,
    visible: Visible<'_>,
) -> Result<Option<Found>, StoreError> {
    let Some(at) = reader.event_last(&Listing::EventId(event_id.to_owned()))? else {
        return Ok(None);
    };
    load(reader, at, &mut None, visible)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eq_action_selects_by_action_and_refuses_other_words() {
        // Goal: EQ_action filters on the event's action (several values
        // OR-ed) and names a word that is not an action.
        let q = parse("EQ_action=ADD|DELETE").unwrap();
        assert!(!q.matches(&shipping(), 0), "shipping is an OBSERVE");
        assert!(parse("EQ_action=OBSERVE").unwrap().matches(&shipping(), 0));
        let e = parse("EQ_action=observe").unwrap_err();
        assert_eq!(e.param, "EQ_action");
        assert!(e.unprocessable);
    }

    fn parse(query: &str) -> Result<Query, ParamError> {
        let pairs: Vec<(String, String)> = query
            .split('&')
            .filter(|s| !s.is_empty())
            .map(|kv| {
                let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                (k.to_owned(), v.to_owned())
            })
            .collect();
        Query::parse(&pairs)
    }

    fn event(json: serde_json::Value) -> Event {
        serde_json::from_value(json).unwrap()
    }

    fn shipping() -> Event {
        event(serde_json::json!({
            "type": "ObjectEvent",
            "eventID": "urn:uuid:1",
            "eventTime": "2024-05-01T10:00:00Z",
            "eventTimeZoneOffset": "+00:00",
            "action": "OBSERVE",
            "bizStep": "urn:epcglobal:cbv:bizstep:shipping",
            "disposition": "in_transit",
            "epcList": ["urn:epc:id:sgtin:0614141.107346.2017"],
            "readPoint": {"id": "urn:epc:id:sgln:0614141.07346.1234"},
            "sensorElementList": [{"sensorReport": [
                {"type": "gs1:Temperature", "minValue": 2.0, "maxValue": 9.5, "uom": "CEL"},
                {"type": "Humidity", "value": 40.0, "uom": "A93"}
            ]}]
        }))
    }

    #[test]
    fn no_parameter_walks_the_chain_with_the_default_page() {
        let q = parse("").unwrap();
        assert_eq!(q.per_page, PER_PAGE_DEFAULT);
        assert_eq!(q.plan(), vec![Listing::All]);
        assert!(q.matches(&shipping(), 0));
    }

    #[test]
    fn unknown_repeated_and_malformed_parameters_are_named() {
        for (query, param) in [
            ("colour=red", "colour"),
            ("eventType=QuantityEvent", "eventType"),
            ("GE_eventTime=yesterday", "GE_eventTime"),
            ("perPage=0", "perPage"),
            ("perPage=100000", "perPage"),
            ("nextPageToken=zz", "nextPageToken"),
            ("MATCH_anyEPC=not a uri", "MATCH_anyEPC"),
            (
                "MATCH_epc=urn:epc:id:sgtin:0614141.107346.2017|",
                "MATCH_epc",
            ),
            ("EQ_bizStep=shipping&EQ_bizStep=receiving", "EQ_bizStep"),
            ("GT_maxValue_CEL=warm", "GT_maxValue_CEL"),
            ("GT_maxValue_=1", "GT_maxValue_"),
            ("EXISTS_errorDeclaration=no", "EXISTS_errorDeclaration"),
            ("EQ_eventID=", "EQ_eventID"),
        ] {
            let err = parse(query).unwrap_err();
            assert_eq!(err.param, param, "{query}: {err}");
        }
    }

    #[test]
    fn the_most_selective_parameter_drives_the_plan() {
        let q = parse("eventType=ObjectEvent&EQ_bizStep=shipping&MATCH_anyEPC=https://id.gs1.org/01/00614141073467/21/2017").unwrap();
        assert_eq!(
            q.plan(),
            vec![Listing::Identifier(
                "https://id.gs1.org/01/00614141073467/21/2017".into()
            )]
        );
        let q = parse("eventType=ObjectEvent&EQ_bizStep=shipping|receiving").unwrap();
        assert_eq!(
            q.plan(),
            vec![
                Listing::BizStep("shipping".into()),
                Listing::BizStep("receiving".into())
            ]
        );
        let q = parse("eventType=ObjectEvent&EQ_eventID=urn:uuid:1").unwrap();
        assert_eq!(q.plan(), vec![Listing::EventId("urn:uuid:1".into())]);
    }

    #[test]
    fn every_filter_excludes_a_wrong_value_and_includes_the_right_one() {
        let e = shipping();
        for (right, wrong) in [
            ("eventType=ObjectEvent", "eventType=AggregationEvent"),
            (
                "GE_eventTime=2024-05-01T10:00:00Z",
                "GE_eventTime=2024-05-01T10:00:01Z",
            ),
            (
                "LT_eventTime=2024-05-01T10:00:01Z",
                "LT_eventTime=2024-05-01T10:00:00Z",
            ),
            ("EQ_bizStep=shipping", "EQ_bizStep=receiving"),
            (
                "EQ_bizStep=https://ref.gs1.org/cbv/BizStep-shipping",
                "EQ_bizStep=urn:epcglobal:cbv:bizstep:receiving",
            ),
            ("EQ_disposition=in_transit", "EQ_disposition=active"),
            (
                "EQ_readPoint=https://id.gs1.org/414/0614141073467/254/1234",
                "EQ_readPoint=urn:epc:id:sgln:0614141.07346.9",
            ),
            (
                "MATCH_epc=https://id.gs1.org/01/10614141073464/21/2017",
                "MATCH_epc=urn:epc:id:sgtin:0614141.107346.2018",
            ),
            (
                "MATCH_anyEPC=urn:epc:id:sgtin:0614141.107346.2017",
                "MATCH_inputEPC=urn:epc:id:sgtin:0614141.107346.2017",
            ),
            ("EQ_eventID=urn:uuid:2|urn:uuid:1", "EQ_eventID=urn:uuid:2"),
            (
                "EQ_type=Temperature&GT_maxValue_CEL=8",
                "EQ_type=Temperature&GT_maxValue_CEL=10",
            ),
            ("LE_minValue_CEL=2", "LT_minValue_CEL=2"),
            (
                "EQ_type=https://gs1.org/voc/Temperature",
                "EQ_type=Humidity&GT_maxValue_CEL=8",
            ),
            (
                "GE_recordTime=1970-01-01T00:00:00Z",
                "LT_recordTime=1970-01-01T00:00:00Z",
            ),
        ] {
            assert!(parse(right).unwrap().matches(&e, 0), "{right} should match");
            assert!(
                !parse(wrong).unwrap().matches(&e, 0),
                "{wrong} should not match"
            );
        }
        assert!(!parse("EXISTS_errorDeclaration").unwrap().matches(&e, 0));
        let mut declared = e.clone();
        declared.error_declaration = Some(lotline_core::epcis::ErrorDeclaration {
            declaration_time: "2024-05-02T00:00:00Z".into(),
            reason: None,
            corrective_event_ids: vec![],
            extensions: Default::default(),
        });
        assert!(
            parse("EXISTS_errorDeclaration")
                .unwrap()
                .matches(&declared, 0)
        );
    }

    #[test]
    fn page_tokens_round_trip() {
        let at = Position {
            height: 123_456,
            index: 7,
        };
        assert_eq!(parse_token(&page_token(at)), Ok(at));
        assert!(parse_token("0000").is_err());
    }
}
