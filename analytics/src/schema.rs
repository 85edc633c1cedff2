//! The Arrow schema of every table: the one definition the writer, the SQL
//! engine, exports and docs/analytics.md follow.
//!
//! Every table carries the attestation that stated the row, the block height
//! it committed at, the event time, and `read_facts`: what the read policy
//! looks at in the row's record (see [`crate::facts`]). Files
//! are partitioned by the UTC month of the event time
//! (`event_month=YYYY-MM`, [`PARTITION_KEY`]), Hive style; the month is in
//! the path, not in the file.
//!
//! Column types are the ones every Parquet reader knows: signed integers
//! (Spark has no unsigned ones), UTF-8 strings (dictionary-encoded in the
//! file), doubles and UTC millisecond timestamps.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

/// The Hive partition key of every table: `{table}/event_month=YYYY-MM/`.
///
/// A month, not a day: a partition is the unit compaction merges within,
/// and a chain that commits a few hundred events a day (the workload
/// generator's clock runs about 80) would leave one tiny file per table and
/// day that nothing could merge — 6,336 files of ~10 kB for 100k events
/// with daily partitions, 252 with monthly ones (docs/performance.md).
/// Readers still prune by event time: by the folder name (DuckDB, Spark)
/// or by the `event_time` statistics of each row group.
pub const PARTITION_KEY: &str = "event_month";

/// The tables of the projection, in the order they are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Table {
    Events,
    Identifiers,
    Measurements,
    SensorReports,
    Lineage,
    Custody,
}

impl Table {
    pub const ALL: [Table; 6] = [
        Table::Events,
        Table::Identifiers,
        Table::Measurements,
        Table::SensorReports,
        Table::Lineage,
        Table::Custody,
    ];

    /// The table's name in SQL and its folder in the layout.
    pub fn name(self) -> &'static str {
        match self {
            Table::Events => "events",
            Table::Identifiers => "identifiers",
            Table::Measurements => "measurements",
            Table::SensorReports => "sensor_reports",
            Table::Lineage => "lineage",
            Table::Custody => "custody",
        }
    }

    pub fn parse(name: &str) -> Option<Table> {
        Table::ALL.into_iter().find(|t| t.name() == name)
    }

    /// The columns of the table, after the common ones ([`COMMON`]).
    fn own_columns(self) -> &'static [(&'static str, Kind, bool)] {
        use Kind::*;
        match self {
            Table::Events => &[
                ("event_id", Str, true),
                ("block_time", Time, false),
                ("event_time_zone", Str, false),
                ("record_time", Time, true),
                ("org", Str, false),
                ("event_type", Str, false),
                ("action", Str, true),
                ("biz_step", Str, true),
                ("disposition", Str, true),
                ("read_point", Str, true),
                ("biz_location", Str, true),
                ("quality_kind", Str, true),
                ("inspection_result", Str, true),
                ("nonconformance_code", Str, true),
                ("nonconformance_severity", Str, true),
                ("retracts_event_id", Str, true),
            ],
            Table::Identifiers => &[
                ("identifier", Str, false),
                ("role", Str, false),
                ("quantity", F64, true),
                ("uom", Str, true),
            ],
            Table::Measurements => &[
                ("subject", Str, true),
                ("name", Str, false),
                ("value", F64, false),
                ("uom", Str, true),
                ("spec_min", F64, true),
                ("spec_max", F64, true),
                ("within_spec", Bool, false),
                ("result", Str, false),
                ("inspection_kind", Str, true),
                ("method", Str, true),
                ("instrument_id", Str, true),
                ("private", Bool, false),
            ],
            Table::SensorReports => &[
                ("subject", Str, true),
                ("type", Str, false),
                ("value", F64, true),
                ("min_value", F64, true),
                ("max_value", F64, true),
                ("mean_value", F64, true),
                ("uom", Str, true),
                ("time", Time, true),
                ("device_id", Str, true),
            ],
            Table::Lineage => &[
                ("from_id", Str, false),
                ("to_id", Str, false),
                ("kind", Str, false),
                ("quantity", F64, true),
                ("uom", Str, true),
            ],
            Table::Custody => &[
                ("subject", Str, false),
                ("state", Str, false),
                ("location", Str, true),
                ("to_party", Str, true),
                ("to_location", Str, true),
            ],
        }
    }

    /// The Arrow schema of the table: [`COMMON`] then its own columns.
    pub fn schema(self) -> SchemaRef {
        let fields: Vec<Field> = self
            .columns()
            .map(|(name, kind, nullable)| Field::new(name, kind.data_type(), nullable))
            .collect();
        Arc::new(Schema::new(fields))
    }

    /// Every column with its kind and nullability, in file order.
    pub fn columns(self) -> impl Iterator<Item = (&'static str, Kind, bool)> {
        COMMON.iter().chain(self.own_columns()).copied()
    }
}

/// The columns every table starts with.
pub const COMMON: &[(&str, Kind, bool)] = &[
    ("attestation_id", Kind::Str, false),
    ("height", Kind::I64, false),
    ("position", Kind::I32, false),
    ("event_time", Kind::Time, false),
    ("read_facts", Kind::Str, false),
];

/// The value kinds a column may hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Str,
    I64,
    I32,
    F64,
    Bool,
    /// Milliseconds since the Unix epoch, UTC.
    Time,
}

impl Kind {
    pub fn data_type(self) -> DataType {
        match self {
            Kind::Str => DataType::Utf8,
            Kind::I64 => DataType::Int64,
            Kind::I32 => DataType::Int32,
            Kind::F64 => DataType::Float64,
            Kind::Bool => DataType::Boolean,
            Kind::Time => DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Goal: table names round-trip and no table repeats a column name (a
    /// repeated name would make the Arrow schema ambiguous in SQL).
    #[test]
    fn names_and_columns_are_unique() {
        for table in Table::ALL {
            assert_eq!(Table::parse(table.name()), Some(table));
            let mut names: Vec<&str> = table.columns().map(|c| c.0).collect();
            let n = names.len();
            names.sort_unstable();
            names.dedup();
            assert_eq!(names.len(), n, "{}", table.name());
            assert_eq!(table.schema().fields().len(), n);
        }
        assert_eq!(Table::parse("read_facts"), None);
    }
}
