//! The Lotline node: admits signed quality attestations, orders them into
//! blocks, makes them durable, indexes them, and serves them over HTTP.
//!
//! Layout (one folder or file per concern):
//! - [`admission`]: what may enter (decode, signature, membership, policy, event validity);
//! - [`governance`]: the membership history that admission and block checks consult;
//! - [`mempool`]: admitted attestations waiting for a block;
//! - [`consensus`]: the sans-IO engine and the actor that carries out its outputs;
//! - [`store`]: block log (system of record), vote journal, sled records and indexes;
//! - [`api`]: the axum routes; [`access`]: credentials, visibility, rate limits;
//! - [`audit`]: the hash-chained audit trail of non-public reads, exports and admin;
//! - [`trace`]: lineage reads; [`quality`]: control charts and root-cause ranking over them;
//! - [`node`]: the wiring; [`config`]: the operator's TOML; [`cli`]: the `lotline` binary.
//!
//! Not here: types and rules shared with the SDK (in `lotline-core`), the
//! consortium definition (in `lotline-genesis`).

pub mod access;
pub mod admission;
#[cfg(feature = "analytics")]
pub mod analytics;
pub mod api;
pub mod audit;
pub mod bulk_load;
pub mod cli;
pub mod clock;
pub mod config;
pub mod consensus;
pub mod dashboard;
pub mod demo;
pub mod epcis;
pub mod governance;
pub mod ingest;
pub mod logging;
pub mod mempool;
pub mod metrics;
pub mod net;
pub mod node;
pub mod ops;
pub mod parsed;
pub mod progress;
pub mod public;
pub mod push;
pub mod quality;
pub mod state;
pub mod store;
pub mod tls;
pub mod trace;

pub use config::NodeConfig;
pub use node::Node;
