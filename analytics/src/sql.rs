//! Read-only SQL over the projection with Apache DataFusion, per caller.
//!
//! Every query gets a fresh session over one manifest snapshot (so
//! compaction under it changes nothing it sees) in which the six tables
//! are views: for a full reader the files, for an org the rows whose
//! `read_facts` its read rule accepts, asked when the query runs
//! ([`Visibility`], [`crate::facts`]). The underlying files are never
//! registered under a name, so no SQL text reaches rows the view hides.
//!
//! A query is refused, with a [`SqlError`] naming the reason, when:
//! - it does not parse, or is more than one statement ([`SqlError::Syntax`]);
//! - it is not a query: DDL, DML, `COPY`, `SET`, `EXPLAIN`... ([`SqlError::NotReadOnly`]);
//! - it names a table that is not one of the six ([`SqlError::UnknownTable`]);
//! - the tables it names hold more bytes than `scan_bytes_max`, it needs
//!   more memory than `memory_bytes_max`, runs longer than `time_max`,
//!   answers more than `rows_max` rows or more than `answer_bytes_max` of
//!   them ([`SqlError::Limit`]);
//! - it does not plan (unknown column, type mismatch) ([`SqlError::Invalid`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, Field, SchemaRef};
use arrow::error::ArrowError;
use datafusion::catalog::MemTable;
use datafusion::datasource::TableProvider;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::error::DataFusionError;
use datafusion::execution::cache::DefaultFilesMetadataCache;
use datafusion::execution::cache::cache_manager::{CacheManagerConfig, FileMetadataCache};
use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::physical_plan::display::DisplayableExecutionPlan;
use datafusion::physical_plan::{ExecutionPlan, execute_stream};
use datafusion::prelude::{SessionConfig, SessionContext, col, lit};
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::Statement as SqlStatement;
use futures::StreamExt;

use crate::facts;
use crate::follower::Catalog;
use crate::manifest::Manifest;
use crate::schema::Table;

/// Whose rows a query sees.
pub use crate::facts::Visibility;

/// The bounds of one query.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub time_max: Duration,
    /// DataFusion's memory pool for the query (sorts, joins, aggregates).
    pub memory_bytes_max: usize,
    /// Compressed bytes of the files of the tables the query names.
    pub scan_bytes_max: u64,
    /// Rows in the answer.
    pub rows_max: usize,
    /// Arrow memory of the answer, held until it is encoded.
    pub answer_bytes_max: usize,
}

impl Default for Limits {
    /// For an answer read as JSON: a screenful of rows, at most.
    fn default() -> Limits {
        Limits {
            time_max: Duration::from_secs(30),
            memory_bytes_max: 512 << 20,
            scan_bytes_max: 8 << 30,
            rows_max: 100_000,
            answer_bytes_max: 128 << 20,
        }
    }
}

impl Limits {
    /// For an answer downloaded as CSV, Arrow IPC or Parquet (a large
    /// answer for another tool): bounded by its memory, not by its rows.
    pub fn download() -> Limits {
        Limits {
            rows_max: 10_000_000,
            ..Limits::default()
        }
    }
}

/// The longest SQL text accepted, in characters (the API document's
/// `maxLength`).
pub const SQL_CHARS_MAX: usize = 16 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum SqlError {
    #[error("the SQL does not parse: {0}")]
    Syntax(String),
    #[error("only a single SELECT query is allowed; this is {0}")]
    NotReadOnly(String),
    #[error(
        "there is no table {0:?} (tables: events, identifiers, measurements, sensor_reports, lineage, custody)"
    )]
    UnknownTable(String),
    #[error("{0}")]
    Limit(String),
    #[error("the query does not plan: {0}")]
    Invalid(String),
    #[error("the query failed: {0}")]
    Internal(String),
}

impl SqlError {
    /// A stable short name of the reason (the problem type's last part).
    pub fn reason(&self) -> &'static str {
        match self {
            SqlError::Syntax(_) => "sql-syntax",
            SqlError::NotReadOnly(_) => "sql-not-read-only",
            SqlError::UnknownTable(_) => "sql-unknown-table",
            SqlError::Limit(_) => "sql-limit",
            SqlError::Invalid(_) => "sql-invalid",
            SqlError::Internal(_) => "sql-internal",
        }
    }
}

/// An answer: its schema, batches and row count, and the height of the
/// data it was computed over.
#[derive(Debug)]
pub struct Answer {
    pub schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
    pub rows: usize,
    pub height: u64,
}

/// How DataFusion reads the files. [`Tuning::default`] is what the node
/// uses; the benchmark names the settings it measured with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Tuning {
    /// Threads a query's scan, joins and aggregates are split over
    /// (DataFusion's `target_partitions`, also the listing's file groups).
    pub threads: usize,
    /// Evaluate filters while decoding Parquet (late materialisation:
    /// other columns are decoded only for rows that pass) and reorder
    /// them cheapest first.
    pub pushdown_filters: bool,
    /// Merge every file's footer statistics at planning (row counts,
    /// min/max for join order). Off: with daily partitions (manifest
    /// format 1: a file per table and date, hundreds per table) merging
    /// their statistics cost more planning time than it saved (the
    /// benchmark's one-lot query: 546 ms with, 320 ms without, same run;
    /// docs/performance.md has the figures with monthly partitions too).
    /// Row groups and pages are still pruned by their statistics when
    /// each file is opened.
    pub collect_statistics: bool,
    /// Read string columns as `Utf8View` (views over the decoded pages)
    /// instead of copying every value into a `Utf8` array: the tables are
    /// declared to DataFusion with view types; answers are cast back to
    /// the schema's `Utf8`. On: at 100k events the full scan went from
    /// 2.66-3.22x DuckDB to 2.28x and the one-lot query from 1.66-1.80x
    /// to 1.54x in the same run (docs/performance.md, "Analytics").
    pub view_types: bool,
    /// Hash-partition both inputs of a join over the threads (DataFusion's
    /// `repartition_joins`). Off: every join collects its build side once
    /// and streams the probe side without repartitioning it, which saves
    /// hashing and copying the 15M-row `identifiers` probe side of the
    /// documented defect-rate query. The node keeps it off: at 1M events
    /// that query took 1,872 ms with both this and
    /// [`Tuning::join_dynamic_filter`] off against 2,174 ms with only the
    /// dynamic filter off (medians of three rounds in one lock hold;
    /// docs/performance.md, "Analytics", session 13).
    pub repartition_joins: bool,
    /// Read each file's page index (min/max per page) and prune pages by
    /// it. The footer cache keeps it with the footer.
    pub page_index: bool,
    /// Push each hash join's build side into its probe side's scan as a
    /// filter (DataFusion's `enable_join_dynamic_filter_pushdown`: the
    /// keys' min/max and a lookup in the join's hash table, evaluated per
    /// row while decoding with [`Tuning::pushdown_filters`]). The node
    /// keeps it off: the projection's join key, `attestation_id`, is a
    /// hash, so the keys' min/max prune no file or page, and the per-row
    /// lookup costs more than the rows it drops save. The defect-rate
    /// query at 1M events took 3,252-3,430 ms with it and 2,174 ms
    /// without (joins repartitioned); 2,655 and 1,872 ms (joins collected).
    pub join_dynamic_filter: bool,
}

impl Default for Tuning {
    fn default() -> Tuning {
        Tuning {
            threads: 2,
            pushdown_filters: true,
            collect_statistics: false,
            view_types: true,
            repartition_joins: false,
            page_index: true,
            join_dynamic_filter: false,
        }
    }
}

/// Bytes of Parquet footers (and page indexes) kept across queries.
/// Files are never rewritten under a name (the projection and exports
/// number them), and the cache also checks size and modification time.
pub const FOOTER_CACHE_BYTES: usize = 64 << 20;

/// What queries over one folder share: the footers of its files, so a
/// query does not open and parse every footer again (the cost that grows
/// with the number of files, not their size), bounded (LRU); and each
/// table as DataFusion lists it ([`Prepared`]).
#[derive(Debug)]
pub struct Caches {
    footers: Arc<dyn FileMetadataCache>,
    tables: Mutex<HashMap<(Table, Tuning), Prepared>>,
}

/// A table over the files one manifest lists for it: its parsed file
/// URLs and, with [`Tuning::collect_statistics`], each file's statistics,
/// kept while the manifest lists the same files (a query otherwise parses
/// every path and merges every footer's statistics again). Per-caller
/// views, memory pools and limits are still made per query, on top.
#[derive(Debug)]
struct Prepared {
    paths: Vec<String>,
    table: Arc<dyn TableProvider>,
}

/// Prepared tables kept: six tables under the node's tuning, and a few
/// other tunings (the benchmark's); past it the map starts again.
const PREPARED_MAX: usize = 24;

impl Default for Caches {
    fn default() -> Caches {
        Caches {
            footers: Arc::new(DefaultFilesMetadataCache::new(FOOTER_CACHE_BYTES)),
            tables: Mutex::new(HashMap::new()),
        }
    }
}

impl Caches {
    /// `table` over `manifest`'s files: the prepared one if the manifest
    /// still lists the same files for it, else `make`'s (then kept).
    fn table(
        &self,
        table: Table,
        tuning: Tuning,
        manifest: &Manifest,
        make: impl FnOnce() -> Result<Arc<dyn TableProvider>, SqlError>,
    ) -> Result<Arc<dyn TableProvider>, SqlError> {
        let paths = || manifest.files_of(table).map(|f| f.path.as_str());
        let key = (table, tuning);
        if let Some(prepared) = self.prepared().get(&key)
            && prepared.paths.iter().map(String::as_str).eq(paths())
        {
            return Ok(prepared.table.clone());
        }
        let made = make()?;
        let mut tables = self.prepared();
        if tables.len() >= PREPARED_MAX && !tables.contains_key(&key) {
            tables.clear();
        }
        tables.insert(
            key,
            Prepared {
                paths: paths().map(str::to_owned).collect(),
                table: made.clone(),
            },
        );
        Ok(made)
    }

    fn prepared(&self) -> std::sync::MutexGuard<'_, HashMap<(Table, Tuning), Prepared>> {
        self.tables.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Runs `sql` for `who` over the catalog's current snapshot.
pub async fn query(
    catalog: &Catalog,
    who: &Visibility,
    sql: &str,
    limits: Limits,
) -> Result<Answer, SqlError> {
    query_with(catalog, who, sql, limits, Tuning::default()).await
}

/// [`query`] with other engine settings (the benchmark's comparisons).
pub async fn query_with(
    catalog: &Catalog,
    who: &Visibility,
    sql: &str,
    limits: Limits,
    tuning: Tuning,
) -> Result<Answer, SqlError> {
    Ok(profile(catalog, who, sql, limits, tuning).await?.0)
}

/// [`query_with`], and the physical plan it ran with each operator's
/// metrics (rows, time, bytes and files pruned): what `EXPLAIN ANALYZE`
/// shows, which callers may not run (it is not a query). For the
/// benchmark's profiles.
pub async fn profile(
    catalog: &Catalog,
    who: &Visibility,
    sql: &str,
    limits: Limits,
    tuning: Tuning,
) -> Result<(Answer, String), SqlError> {
    let manifest = catalog.snapshot();
    let run = run(catalog, &manifest, who, sql, limits, tuning);
    match tokio::time::timeout(limits.time_max, run).await {
        Ok(Ok((answer, plan))) => Ok((
            answer,
            DisplayableExecutionPlan::with_metrics(plan.as_ref())
                .indent(true)
                .to_string(),
        )),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(SqlError::Limit(format!(
            "the query ran longer than {} s",
            limits.time_max.as_secs_f64()
        ))),
    }
}

async fn run(
    catalog: &Catalog,
    manifest: &Manifest,
    who: &Visibility,
    sql: &str,
    limits: Limits,
    tuning: Tuning,
) -> Result<(Answer, Arc<dyn ExecutionPlan>), SqlError> {
    let chars = sql.chars().count();
    if chars > SQL_CHARS_MAX {
        return Err(SqlError::Limit(format!(
            "the SQL is {chars} characters, more than {SQL_CHARS_MAX}"
        )));
    }
    let ctx = session(limits, tuning, catalog.caches())?;
    let state = ctx.state();
    let statement = state
        .sql_to_statement(sql, &state.config().options().sql_parser.dialect)
        .map_err(|e| SqlError::Syntax(e.strip_backtrace()))?;
    let is_query =
        matches!(&statement, DfStatement::Statement(s) if matches!(**s, SqlStatement::Query(_)));
    if !is_query {
        return Err(SqlError::NotReadOnly(statement_kind(&statement)));
    }
    let references = state
        .resolve_table_references(&statement)
        .map_err(|e| SqlError::Invalid(e.strip_backtrace()))?;
    let mut scan_bytes = 0u64;
    let mut tables = Vec::new();
    for reference in &references {
        let qualified = reference.schema().is_some_and(|s| s != "public")
            || reference.catalog().is_some_and(|c| c != "datafusion");
        match Table::parse(reference.table()) {
            Some(table) if !qualified => {
                if !tables.contains(&table) {
                    tables.push(table);
                    scan_bytes += manifest.files_of(table).map(|f| f.bytes).sum::<u64>();
                }
            }
            // CTE names are not among the references; anything else is a
            // table the caller may not read (there is none but the six).
            _ => return Err(SqlError::UnknownTable(reference.to_string())),
        }
    }
    if scan_bytes > limits.scan_bytes_max {
        return Err(SqlError::Limit(format!(
            "the tables named hold {scan_bytes} bytes, more than the scan limit of {}",
            limits.scan_bytes_max
        )));
    }
    // Only the tables the query names: each view lists its files.
    for &table in &tables {
        let view = view(&ctx, catalog, manifest, table, who, tuning)?;
        ctx.register_table(table.name(), view)
            .map_err(|e| SqlError::Internal(e.strip_backtrace()))?;
    }
    let plan = state
        .statement_to_plan(statement)
        .await
        .map_err(|e| classify(e, SqlError::Invalid))?;
    datafusion::execution::context::SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false)
        .verify_plan(&plan)
        .map_err(|e| SqlError::NotReadOnly(e.strip_backtrace()))?;
    let frame = ctx
        .execute_logical_plan(plan)
        .await
        .map_err(|e| classify(e, SqlError::Invalid))?;
    let schema = plain_strings(frame.schema().as_arrow());
    let plan = frame
        .create_physical_plan()
        .await
        .map_err(|e| classify(e, SqlError::Internal))?;
    let mut stream = execute_stream(plan.clone(), ctx.task_ctx())
        .map_err(|e| classify(e, SqlError::Internal))?;
    let mut batches = Vec::new();
    let mut rows = 0usize;
    let mut bytes = 0usize;
    while let Some(batch) = stream.next().await {
        let batch = batch.map_err(|e| classify(e, SqlError::Internal))?;
        let batch = cast_to(&schema, &batch).map_err(|e| SqlError::Internal(e.to_string()))?;
        rows += batch.num_rows();
        bytes += batch.get_array_memory_size();
        if rows > limits.rows_max {
            return Err(SqlError::Limit(format!(
                "the answer has more than {} rows; aggregate, filter or add LIMIT{}",
                limits.rows_max,
                if limits.rows_max < Limits::download().rows_max {
                    ", or download it as csv, arrow or parquet"
                } else {
                    ""
                }
            )));
        }
        if bytes > limits.answer_bytes_max {
            return Err(SqlError::Limit(format!(
                "the answer holds more than {} bytes; aggregate, filter, select fewer columns or add LIMIT",
                limits.answer_bytes_max
            )));
        }
        batches.push(batch);
    }
    let answer = Answer {
        schema,
        batches,
        rows,
        height: manifest.height,
    };
    Ok((answer, plan))
}

fn session(limits: Limits, tuning: Tuning, caches: &Caches) -> Result<SessionContext, SqlError> {
    // No spilling: a query over its memory limit is refused, and a query
    // from the API never writes files on the node. The memory pool is the
    // query's own; the footer cache is the folder's.
    let runtime = RuntimeEnvBuilder::new()
        .with_memory_limit(limits.memory_bytes_max, 1.0)
        .with_cache_manager(
            CacheManagerConfig::default()
                .with_file_metadata_cache(Some(caches.footers.clone()))
                .with_metadata_cache_limit(FOOTER_CACHE_BYTES),
        )
        .with_disk_manager_builder(
            DiskManagerBuilder::default().with_mode(DiskManagerMode::Disabled),
        )
        .build_arc()
        .map_err(|e| SqlError::Internal(e.strip_backtrace()))?;
    let mut config = SessionConfig::new()
        .with_target_partitions(tuning.threads.max(1))
        .with_collect_statistics(tuning.collect_statistics)
        .with_information_schema(false);
    let parquet = &mut config.options_mut().execution.parquet;
    parquet.pushdown_filters = tuning.pushdown_filters;
    parquet.reorder_filters = tuning.pushdown_filters;
    parquet.enable_page_index = tuning.page_index;
    parquet.schema_force_view_types = tuning.view_types;
    parquet.pruning = true;
    let optimizer = &mut config.options_mut().optimizer;
    optimizer.repartition_joins = tuning.repartition_joins;
    optimizer.enable_join_dynamic_filter_pushdown = tuning.join_dynamic_filter;
    Ok(SessionContext::new_with_config_rt(config, runtime))
}

/// `schema` with `Utf8View` fields as `Utf8`: the types answers are given
/// in, whatever the scan read them as ([`Tuning::view_types`]).
fn plain_strings(schema: &arrow::datatypes::Schema) -> SchemaRef {
    strings_as(schema, &DataType::Utf8View, DataType::Utf8)
}

/// `schema` with every field of type `from` retyped to `to` (the one
/// rewrite between the declared `Utf8` strings and the reader's views).
fn strings_as(schema: &arrow::datatypes::Schema, from: &DataType, to: DataType) -> SchemaRef {
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| {
            if f.data_type() == from {
                f.as_ref().clone().with_data_type(to.clone())
            } else {
                f.as_ref().clone()
            }
        })
        .collect();
    Arc::new(arrow::datatypes::Schema::new(fields))
}

/// `batch` in `schema` (the same columns, views cast to `Utf8`).
fn cast_to(schema: &SchemaRef, batch: &RecordBatch) -> Result<RecordBatch, ArrowError> {
    if batch.schema_ref() == schema {
        return Ok(batch.clone());
    }
    let columns = batch
        .columns()
        .iter()
        .zip(schema.fields())
        .map(|(column, field)| arrow::compute::cast(column, field.data_type()))
        .collect::<Result<Vec<_>, _>>()?;
    RecordBatch::try_new(schema.clone(), columns)
}

/// The table's schema as DataFusion reads it: strings as `Utf8View` when
/// `view_types` (the Parquet reader hands out views over its pages).
fn read_schema(table: Table, view_types: bool) -> SchemaRef {
    let schema = table.schema();
    if !view_types {
        return schema;
    }
    strings_as(&schema, &DataType::Utf8, DataType::Utf8View)
}

/// The table as `who` sees it, over the manifest's files.
fn view(
    ctx: &SessionContext,
    catalog: &Catalog,
    manifest: &Manifest,
    table: Table,
    who: &Visibility,
    tuning: Tuning,
) -> Result<Arc<dyn TableProvider>, SqlError> {
    let internal = |e: DataFusionError| SqlError::Internal(e.strip_backtrace());
    let base = catalog.caches().table(table, tuning, manifest, || {
        listing(ctx, catalog.dir(), manifest, table, tuning)
    })?;
    match who.readable(&manifest.facts) {
        None => Ok(base),
        Some(readable) => {
            // The values are data, not SQL text: literals of an IN list.
            let keep = if readable.is_empty() {
                lit(false)
            } else {
                col(facts::COLUMN).in_list(readable.into_iter().map(lit).collect(), false)
            };
            let frame = ctx
                .read_table(base)
                .and_then(|f| f.filter(keep))
                .map_err(internal)?;
            Ok(frame.into_view())
        }
    }
}

/// The table over the manifest's files, for every reader (no view).
fn listing(
    ctx: &SessionContext,
    dir: &std::path::Path,
    manifest: &Manifest,
    table: Table,
    tuning: Tuning,
) -> Result<Arc<dyn TableProvider>, SqlError> {
    let internal = |e: DataFusionError| SqlError::Internal(e.strip_backtrace());
    let schema = read_schema(table, tuning.view_types);
    let files: Vec<ListingTableUrl> = manifest
        .files_of(table)
        .map(|f| {
            let path = dir.join(&f.path);
            ListingTableUrl::parse(path.to_string_lossy()).map_err(internal)
        })
        .collect::<Result<_, _>>()?;
    if files.is_empty() {
        return Ok(Arc::new(
            MemTable::try_new(schema, vec![vec![]]).map_err(internal)?,
        ));
    }
    // The session's Parquet settings (pushdown, page index) and its
    // threads and statistics: `ListingOptions::new` alone scans with
    // one thread and without them. The table keeps the statistics it
    // collects, per file, for as long as it is prepared.
    let state = ctx.state();
    let format = ParquetFormat::default().with_options(state.table_options().parquet.clone());
    let options = ListingOptions::new(Arc::new(format))
        .with_file_extension(".parquet")
        .with_session_config_options(state.config());
    let config = ListingTableConfig::new_with_multi_paths(files)
        .with_listing_options(options)
        .with_schema(schema);
    Ok(Arc::new(ListingTable::try_new(config).map_err(internal)?))
}

/// Resource errors are limits; everything else goes to `otherwise`.
fn classify(e: DataFusionError, otherwise: fn(String) -> SqlError) -> SqlError {
    match e.find_root() {
        DataFusionError::ResourcesExhausted(reason) => SqlError::Limit(format!(
            "the query needs more memory than its limit: {reason}"
        )),
        _ => otherwise(e.strip_backtrace()),
    }
}

fn statement_kind(statement: &DfStatement) -> String {
    let text = statement.to_string();
    let word: String = text
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ");
    lotline_core::api::excerpt(&word)
}
