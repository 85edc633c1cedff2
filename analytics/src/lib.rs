//! Put every committed event in columnar files that any big-data tool reads,
//! and answer read-only SQL over them.
//!
//! - [`schema`]: the Arrow schema of the six tables (docs/analytics.md).
//! - [`rows`]: one event as rows, with the facts the read rule looks at.
//! - [`facts`]: those facts (`read_facts`) and whose rows a reader sees.
//! - [`projection`]: Parquet files (zstd, dictionary encoding, Hive-style
//!   `event_month=` partitions) and the manifest as the durable height; compaction.
//! - [`follower`]: the thread that keeps the projection up with the store.
//! - [`manifest`]: the manifest and `verify` (BLAKE3, rows, heights).
//! - [`export`]: a copy of the files for one reader (an org or everyone),
//!   to a folder or an S3-compatible object store.
//! - [`remote`]: data sets in an object store (upload, download, verify).
//! - [`sql`]: DataFusion over the files, per-caller visibility and limits.
//!
//! Not here: reading the store (the node implements [`follower::Source`]),
//! HTTP, and any rule of its own about who may read what: the node passes
//! its read rule, with the membership in force, to each query and export
//! ([`facts::Visibility`]).

#![forbid(unsafe_code)]

pub mod answer;
pub mod export;
pub mod facts;
pub mod follower;
pub mod manifest;
pub mod projection;
pub mod remote;
pub mod rows;
pub mod schema;
pub mod sql;

pub use arrow;
pub use follower::{Catalog, Source};
pub use manifest::Manifest;
pub use projection::{CommittedBlock, Projection, ProjectionError};
pub use schema::Table;
