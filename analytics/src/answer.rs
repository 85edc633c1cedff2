//! An SQL answer in the formats readers ask for: JSON for a screen, CSV
//! for a spreadsheet, Arrow IPC and Parquet for other tools.

use arrow::datatypes::SchemaRef;
use parquet::arrow::ArrowWriter;
use serde::Serialize;

use crate::sql::Answer;

/// The formats an answer is served in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Json,
    Csv,
    /// Arrow IPC stream format.
    Arrow,
    Parquet,
}

impl Format {
    pub fn parse(name: &str) -> Option<Format> {
        match name {
            "json" => Some(Format::Json),
            "csv" => Some(Format::Csv),
            "arrow" => Some(Format::Arrow),
            "parquet" => Some(Format::Parquet),
            _ => None,
        }
    }

    /// The format a media type names (an `Accept` entry).
    pub fn from_media_type(media: &str) -> Option<Format> {
        match media {
            "application/json" => Some(Format::Json),
            "text/csv" => Some(Format::Csv),
            "application/vnd.apache.arrow.stream" => Some(Format::Arrow),
            "application/vnd.apache.parquet" => Some(Format::Parquet),
            _ => None,
        }
    }

    pub fn media_type(self) -> &'static str {
        match self {
            Format::Json => "application/json",
            Format::Csv => "text/csv",
            Format::Arrow => "application/vnd.apache.arrow.stream",
            Format::Parquet => "application/vnd.apache.parquet",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    #[error("arrow: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    #[error("parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
}

/// A column of a JSON answer.
#[derive(Debug, Serialize)]
pub struct Column {
    pub name: String,
    #[serde(rename = "type")]
    pub data_type: String,
}

/// The JSON answer: columns, rows as objects, and the chain height the
/// data covers.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JsonAnswer {
    pub columns: Vec<Column>,
    pub rows: serde_json::Value,
    pub row_count: usize,
    pub height: u64,
}

pub fn columns(schema: &SchemaRef) -> Vec<Column> {
    schema
        .fields()
        .iter()
        .map(|f| Column {
            name: f.name().clone(),
            data_type: f.data_type().to_string(),
        })
        .collect()
}

/// The answer's bytes in `format`.
pub fn encode(answer: &Answer, format: Format) -> Result<Vec<u8>, EncodeError> {
    let mut out = Vec::new();
    match format {
        Format::Json => {
            let mut rows = Vec::new();
            {
                let mut writer = arrow::json::WriterBuilder::new()
                    .with_explicit_nulls(true)
                    .build::<_, arrow::json::writer::JsonArray>(&mut rows);
                for batch in &answer.batches {
                    writer.write(batch)?;
                }
                writer.finish()?;
            }
            let rows = if rows.is_empty() {
                serde_json::Value::Array(Vec::new())
            } else {
                serde_json::from_slice(&rows)?
            };
            serde_json::to_writer(
                &mut out,
                &JsonAnswer {
                    columns: columns(&answer.schema),
                    rows,
                    row_count: answer.rows,
                    height: answer.height,
                },
            )?;
        }
        Format::Csv => {
            let mut writer = arrow::csv::WriterBuilder::new()
                .with_header(true)
                .build(&mut out);
            if answer.batches.is_empty() {
                writer.write(&arrow::array::RecordBatch::new_empty(answer.schema.clone()))?;
            }
            for batch in &answer.batches {
                writer.write(batch)?;
            }
        }
        Format::Arrow => {
            let mut writer = arrow::ipc::writer::StreamWriter::try_new(&mut out, &answer.schema)?;
            for batch in &answer.batches {
                writer.write(batch)?;
            }
            writer.finish()?;
        }
        Format::Parquet => {
            let props = crate::projection::writer_properties();
            let mut writer = ArrowWriter::try_new(&mut out, answer.schema.clone(), Some(props))?;
            for batch in &answer.batches {
                writer.write(batch)?;
            }
            writer.close()?;
        }
    }
    Ok(out)
}
