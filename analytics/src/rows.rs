//! One committed event as rows of every table: a pure function of the signed
//! statement and its chain position.
//!
//! Lineage and custody rows come from [`lotline_core::lineage::derive`], the
//! same derivation the node indexes and the SDK re-checks traces with, so the
//! `lineage` table holds exactly the edges a trace can follow. Measurements
//! and sensor reports are the event's own values, unsummarised.
//!
//! Every row carries its record's `read_facts` ([`crate::facts`]); who may
//! read them is decided when a query runs, not here.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanBuilder, Float64Builder, Int32Builder, Int64Builder, RecordBatch,
    StringBuilder, TimestampMillisecondBuilder,
};
use lotline_core::epcis::{Action, Event, QualityFact, normalize_vocabulary};
use lotline_core::lineage::{self, CustodyState};
use lotline_core::statement::Statement;
use serde::Serialize;

use crate::schema::{Kind, Table};

/// Where and when an event was committed.
#[derive(Clone, Copy, Debug)]
pub struct Committed<'a> {
    /// Lowercase hex attestation id.
    pub attestation_id: &'a str,
    pub height: u64,
    /// Index of the attestation in its block.
    pub position: u32,
    /// The proposer's clock at the block, unix milliseconds.
    pub block_time_ms: i64,
}

/// One cell, in the order of [`Table::columns`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Cell<'a> {
    Str(Option<&'a str>),
    I64(i64),
    I32(i32),
    F64(Option<f64>),
    Bool(bool),
    Time(Option<i64>),
}

/// Column builders for one (table, month) partition of a flush.
#[derive(Debug)]
pub struct Rows {
    table: Table,
    columns: Vec<Column>,
    len: usize,
}

#[derive(Debug)]
enum Column {
    Str(StringBuilder),
    I64(Int64Builder),
    I32(Int32Builder),
    F64(Float64Builder),
    Bool(BooleanBuilder),
    Time(TimestampMillisecondBuilder),
}

impl Rows {
    pub fn new(table: Table) -> Rows {
        let columns = table
            .columns()
            .map(|(_, kind, _)| match kind {
                Kind::Str => Column::Str(StringBuilder::new()),
                Kind::I64 => Column::I64(Int64Builder::new()),
                Kind::I32 => Column::I32(Int32Builder::new()),
                Kind::F64 => Column::F64(Float64Builder::new()),
                Kind::Bool => Column::Bool(BooleanBuilder::new()),
                Kind::Time => Column::Time(TimestampMillisecondBuilder::new()),
            })
            .collect();
        Rows {
            table,
            columns,
            len: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends one row. A row that does not fit the schema is a bug in this
    /// module, not a property of the data: it panics.
    fn push(&mut self, row: &[Cell<'_>]) {
        assert_eq!(row.len(), self.columns.len(), "{:?} row width", self.table);
        for (column, cell) in self.columns.iter_mut().zip(row) {
            match (column, *cell) {
                (Column::Str(b), Cell::Str(v)) => b.append_option(v),
                (Column::I64(b), Cell::I64(v)) => b.append_value(v),
                (Column::I32(b), Cell::I32(v)) => b.append_value(v),
                (Column::F64(b), Cell::F64(v)) => b.append_option(v),
                (Column::Bool(b), Cell::Bool(v)) => b.append_value(v),
                (Column::Time(b), Cell::Time(v)) => b.append_option(v),
                (_, cell) => panic!("{:?}: cell {cell:?} does not fit its column", self.table),
            }
        }
        self.len += 1;
    }

    /// The rows as one Arrow batch in the table's schema.
    pub fn finish(mut self) -> Result<RecordBatch, arrow::error::ArrowError> {
        let arrays: Vec<ArrayRef> = self
            .columns
            .iter_mut()
            .map(|column| -> ArrayRef {
                match column {
                    Column::Str(b) => Arc::new(b.finish()),
                    Column::I64(b) => Arc::new(b.finish()),
                    Column::I32(b) => Arc::new(b.finish()),
                    Column::F64(b) => Arc::new(b.finish()),
                    Column::Bool(b) => Arc::new(b.finish()),
                    Column::Time(b) => Arc::new(b.finish().with_timezone("UTC")),
                }
            })
            .collect();
        RecordBatch::try_new(self.table.schema(), arrays)
    }
}

/// Rows of a flush, by table and event month.
#[derive(Debug, Default)]
pub struct Buffer {
    parts: BTreeMap<(Table, String), Rows>,
    rows: usize,
    events: usize,
}

impl Buffer {
    /// Rows held, over all tables.
    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn events(&self) -> usize {
        self.events
    }

    pub fn into_parts(self) -> BTreeMap<(Table, String), Rows> {
        self.parts
    }

    fn rows_of(&mut self, table: Table, month: &str) -> &mut Rows {
        self.parts
            .entry((table, month.to_owned()))
            .or_insert_with(|| Rows::new(table))
    }

    fn push(&mut self, table: Table, month: &str, row: &[Cell<'_>]) {
        self.rows_of(table, month).push(row);
        self.rows += 1;
    }

    /// Adds every row `statement` contributes. `read_facts` is
    /// [`crate::facts::encode`] of its facts.
    pub fn add(&mut self, at: Committed<'_>, statement: &Statement, read_facts: &str) {
        let event = &statement.event;
        // Admission refused events whose time does not parse; a record that
        // reaches here without one is dated by its block.
        let event_time =
            lotline_core::time::parse_rfc3339_ms(&event.event_time).unwrap_or(at.block_time_ms);
        let month = month_of(event_time);
        let common = || {
            let mut cells = Vec::with_capacity(24);
            cells.extend([
                Cell::Str(Some(at.attestation_id)),
                Cell::I64(i64::try_from(at.height).unwrap_or(i64::MAX)),
                Cell::I32(i32::try_from(at.position).unwrap_or(i32::MAX)),
                Cell::Time(Some(event_time)),
                Cell::Str(Some(read_facts)),
            ]);
            cells
        };
        self.events += 1;

        // events
        let biz_step = event.biz_step_short();
        let disposition = event.disposition.as_deref().map(normalize_vocabulary);
        let quality_kind = event.quality.as_ref().map(|q| tag(&q.kind()));
        let (result, nc_code, nc_severity) = match &event.quality {
            Some(QualityFact::Inspection { result, .. }) => (Some(tag(result)), None, None),
            Some(QualityFact::NonConformance { code, severity, .. }) => {
                (None, Some(code.as_str()), Some(tag(severity)))
            }
            _ => (None, None, None),
        };
        let record_time = event
            .record_time
            .as_deref()
            .and_then(|t| lotline_core::time::parse_rfc3339_ms(t).ok());
        let derived = lineage::derive(event);
        let mut row = common();
        row.extend([
            Cell::Str(event.event_id.as_deref()),
            Cell::Time(Some(at.block_time_ms)),
            Cell::Str(Some(&event.event_time_zone_offset)),
            Cell::Time(record_time),
            Cell::Str(Some(&statement.org)),
            Cell::Str(Some(event.event_type.as_str())),
            Cell::Str(event.action.map(Action::as_str)),
            Cell::Str(biz_step.as_deref()),
            Cell::Str(disposition.as_deref()),
            Cell::Str(event.read_point.as_ref().map(|l| l.id.as_str())),
            Cell::Str(event.biz_location.as_ref().map(|l| l.id.as_str())),
            Cell::Str(quality_kind.as_deref()),
            Cell::Str(result.as_deref()),
            Cell::Str(nc_code),
            Cell::Str(nc_severity.as_deref()),
            Cell::Str(derived.retracts.as_deref()),
        ]);
        self.push(Table::Events, &month, &row);

        // identifiers
        for (role, id, quantity, uom) in identifiers(event) {
            let canonical = lineage::canonical(id);
            let mut row = common();
            row.extend([
                Cell::Str(Some(&canonical)),
                Cell::Str(Some(role)),
                Cell::F64(quantity),
                Cell::Str(uom),
            ]);
            self.push(Table::Identifiers, &month, &row);
        }

        // measurements: the first subject names what was inspected (an
        // inspection is stated about one lot or item in practice; the
        // `identifiers` table has them all).
        let subject = event.identifiers().next().map(lineage::canonical);
        if let Some(QualityFact::Inspection {
            result,
            method,
            measurements,
            instrument,
            private,
        }) = &event.quality
        {
            let result = tag(result);
            for m in measurements {
                let mut row = common();
                row.extend([
                    Cell::Str(subject.as_deref()),
                    Cell::Str(Some(&m.name)),
                    Cell::F64(Some(m.value)),
                    Cell::Str(m.uom.as_deref()),
                    Cell::F64(m.spec_min),
                    Cell::F64(m.spec_max),
                    Cell::Bool(m.within_spec()),
                    Cell::Str(Some(&result)),
                    Cell::Str(biz_step.as_deref()),
                    Cell::Str(method.as_deref()),
                    Cell::Str(instrument.as_ref().map(|i| i.id.as_str())),
                    Cell::Bool(*private),
                ]);
                self.push(Table::Measurements, &month, &row);
            }
        }

        // sensor reports
        for element in &event.sensor_element_list {
            let device = element
                .sensor_metadata
                .as_ref()
                .and_then(|m| m.get("deviceID"))
                .and_then(|v| v.as_str());
            let element_time = element
                .sensor_metadata
                .as_ref()
                .and_then(|m| m.get("time"))
                .and_then(|v| v.as_str());
            for report in &element.sensor_report {
                let kind = report
                    .kind
                    .as_deref()
                    .map(|k| k.rsplit([':', '#', '/']).next().unwrap_or(k))
                    .unwrap_or("");
                let time = report
                    .time
                    .as_deref()
                    .or(element_time)
                    .and_then(|t| lotline_core::time::parse_rfc3339_ms(t).ok());
                let mut row = common();
                row.extend([
                    Cell::Str(subject.as_deref()),
                    Cell::Str(Some(kind)),
                    Cell::F64(report.value),
                    Cell::F64(report.min_value),
                    Cell::F64(report.max_value),
                    Cell::F64(report.mean_value),
                    Cell::Str(report.uom.as_deref()),
                    Cell::Time(time),
                    Cell::Str(device),
                ]);
                self.push(Table::SensorReports, &month, &row);
            }
        }

        // lineage
        for edge in &derived.edges {
            let kind = tag(&edge.kind);
            let mut row = common();
            row.extend([
                Cell::Str(Some(&edge.from)),
                Cell::Str(Some(&edge.to)),
                Cell::Str(Some(&kind)),
                Cell::F64(edge.quantity.as_ref().map(|q| q.value)),
                Cell::Str(edge.quantity.as_ref().and_then(|q| q.uom.as_deref())),
            ]);
            self.push(Table::Lineage, &month, &row);
        }

        // custody
        if let Some(custody) = &derived.custody {
            let (state, location, to_party, to_location) = match &custody.state {
                CustodyState::Held { location } => ("held", location.as_deref(), None, None),
                CustodyState::InTransit {
                    to_party,
                    to_location,
                } => (
                    "in_transit",
                    None,
                    to_party.as_deref(),
                    to_location.as_deref(),
                ),
                CustodyState::Ended => ("ended", None, None, None),
            };
            for subject in &custody.subjects {
                let mut row = common();
                row.extend([
                    Cell::Str(Some(subject)),
                    Cell::Str(Some(state)),
                    Cell::Str(location),
                    Cell::Str(to_party),
                    Cell::Str(to_location),
                ]);
                self.push(Table::Custody, &month, &row);
            }
        }
    }
}

/// `YYYY-MM` of a UTC instant: the partition of a row (see
/// [`crate::schema::PARTITION_KEY`] for why a month, not a day).
pub fn month_of(ms: i64) -> String {
    let text = lotline_core::time::format_rfc3339_ms(ms);
    // `YYYY-MM-DDT...` (a year outside 0..=9999 is signed: `+10000-...`),
    // so the month ends at the last `-` of the date.
    let date = text.split_once('T').map_or(text.as_str(), |(date, _)| date);
    date.rsplit_once('-')
        .map_or(date, |(month, _)| month)
        .to_owned()
}

/// The serde name of a unit enum (`pass`, `nonConformance`, `transformedInto`).
fn tag<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        other => panic!("not a unit enum: {other:?}"),
    }
}

type IdentifierRow<'a> = (&'static str, &'a str, Option<f64>, Option<&'a str>);

/// Every identifier an event names, with its role.
fn identifiers(event: &Event) -> Vec<IdentifierRow<'_>> {
    let mut out: Vec<IdentifierRow<'_>> = Vec::new();
    for id in &event.epc_list {
        out.push(("epc", id, None, None));
    }
    for q in &event.quantity_list {
        out.push(("quantity", &q.epc_class, q.quantity, q.uom.as_deref()));
    }
    if let Some(parent) = &event.parent_id {
        out.push(("parent", parent, None, None));
    }
    for id in &event.child_epcs {
        out.push(("child", id, None, None));
    }
    for q in &event.child_quantity_list {
        out.push(("child_quantity", &q.epc_class, q.quantity, q.uom.as_deref()));
    }
    for id in &event.input_epc_list {
        out.push(("input", id, None, None));
    }
    for q in &event.input_quantity_list {
        out.push(("input_quantity", &q.epc_class, q.quantity, q.uom.as_deref()));
    }
    for id in &event.output_epc_list {
        out.push(("output", id, None, None));
    }
    for q in &event.output_quantity_list {
        out.push((
            "output_quantity",
            &q.epc_class,
            q.quantity,
            q.uom.as_deref(),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::month_of;

    #[test]
    fn month_of_is_the_utc_month() {
        // 2026-12-31T23:59:59.999Z and one millisecond later.
        assert_eq!(month_of(1_798_761_599_999), "2026-12");
        assert_eq!(month_of(1_798_761_600_000), "2027-01");
        assert_eq!(month_of(0), "1970-01");
        assert_eq!(month_of(-1), "1969-12");
        // Years outside 0..=9999 are signed in RFC 3339's extension.
        assert_eq!(month_of(253_402_300_800_000), "+10000-01");
    }
}
